#include "svg.h"

#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *const palette[SVG_PALETTE_SIZE] = {
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac", "#1b3a6b", "#8cd17d", "#b6992d", "#499894",
    "#86bcb6", "#d37295", "#79706e", "#d4a6c8", "#a0cbe8", "#fabfd2"};

const char *svg_colour(int i) {
  return palette[((i % SVG_PALETTE_SIZE) + SVG_PALETTE_SIZE) % SVG_PALETTE_SIZE];
}

void svg_escape(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '"') fputs("&quot;", f);
    else fputc(*s, f);
  }
}

void svg_text(FILE *f, double x, double y, const char *anchor, const char *extra,
              const char *text) {
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor,
          extra ? " " : "", extra ? extra : "");
  svg_escape(f, text);
  fputs("</text>\n", f);
}

void svg_begin(FILE *f, int width, int height) {
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
          "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
          "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          width, height, width, height);
}

void svg_end(FILE *f) { fputs("</svg>\n", f); }

int svg_ticks(double lo, double hi, int max, double *ticks) {
  if (max < 2) max = 2;
  if (!(hi > lo)) hi = lo + 1;
  static const double mult[] = {1, 2, 5};
  double p = pow(10, floor(log10((hi - lo) / (max - 1)))), step = 0, first = 0;
  int count = 0;
  for (int k = 0; !step; k++) {
    double c = mult[k % 3] * p * pow(10, k / 3);
    first = floor(lo / c + 1e-9) * c;
    count = (int)(ceil(hi / c - 1e-9) - floor(lo / c + 1e-9)) + 1;
    if (count <= max) step = c;
  }
  for (int i = 0; i < count; i++) {
    double v = first + step * i;
    ticks[i] = fabs(v) < step * 1e-9 ? 0 : v;
  }
  return count;
}

int svg_log_ticks(double lo, double hi, int max, double *ticks) {
  static const double m125[] = {1, 2, 5}, m19[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  int e0 = (int)floor(log10(lo) + 1e-9), e1 = (int)ceil(log10(hi) - 1e-9);
  if (e1 <= e0) e1 = e0 + 1;
  /* Multiples 1-2-5 of powers of ten from the last one <= lo to the first one >= hi; on a
   * range too narrow for 4 of those, every multiple 1..9. */
  for (int pass = 0; pass < 2; pass++) {
    const double *mult = pass ? m19 : m125;
    int nm = pass ? 9 : 3, n = 0;
    for (int e = e0; e <= e1; e++)
      for (int m = 0; m < nm; m++) {
        double v = mult[m] * pow(10, e);
        if (v <= lo * (1 + 1e-9)) n = 0;
        if (n < 64) ticks[n++] = v;
        if (v >= hi * (1 - 1e-9)) goto done;
      }
  done:
    if (n >= 4 || pass) {
      if (n <= max) return n;
      break;
    }
  }
  int n = 0;
  for (int e = e0; e <= e1 && n < max; e++) ticks[n++] = pow(10, e);
  return n;
}

void svg_num(char *out, size_t n, double v) {
  double m = fabs(v);
  if (v == 0 || m >= 1e7 || m < 1e-4) {
    snprintf(out, n, "%g", v);
    return;
  }
  for (int d = 0; d <= 8; d++) {
    snprintf(out, n, "%.*f", d, v);
    if (fabs(strtod(out, NULL) - v) <= 1e-9 * m) return;
  }
}

double svg_px(const svg_axes *a, double x) {
  return a->x0 + a->w * (x - a->xlo) / (a->xhi - a->xlo);
}

double svg_py(const svg_axes *a, double y) {
  double t = a->ylog ? (log10(y) - log10(a->ylo)) / (log10(a->yhi) - log10(a->ylo))
                     : (y - a->ylo) / (a->yhi - a->ylo);
  return a->y0 + a->h * (1 - t);
}

void svg_axes_draw(FILE *f, const svg_axes *a, const double *xt, int nx, const double *yt,
                   int ny, const char *xtitle, const char *ytitle) {
  char s[32];
  for (int i = 0; i < ny; i++) {
    double y = svg_py(a, yt[i]);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
            a->x0, y, a->x0 + a->w, y);
    svg_num(s, sizeof s, yt[i]);
    svg_text(f, a->x0 - 6, y + 4, "end", "fill=\"#444\"", s);
  }
  for (int i = 0; i < nx; i++) {
    double x = svg_px(a, xt[i]);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
            x, a->y0, x, a->y0 + a->h);
    svg_num(s, sizeof s, xt[i]);
    svg_text(f, x, a->y0 + a->h + 16, "middle", "fill=\"#444\"", s);
  }
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
             "stroke=\"#666\"/>\n", a->x0, a->y0, a->w, a->h);
  if (xtitle) svg_text(f, a->x0 + a->w / 2, a->y0 + a->h + 34, "middle", NULL, xtitle);
  if (ytitle) {
    fprintf(f, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\">",
            a->x0 - 48, a->y0 + a->h / 2);
    svg_escape(f, ytitle);
    fputs("</text>\n", f);
  }
}

FILE *svg_open(const char *cmd, const char *path) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) fprintf(stderr, "wrn %s: cannot write %s: %s\n", cmd, tmp, strerror(errno));
  return f;
}

int svg_close(const char *cmd, FILE *f, const char *path) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad || rename(tmp, path) != 0) {
    fprintf(stderr, "wrn %s: cannot write %s: %s\n", cmd, path, strerror(errno ? errno : EIO));
    remove(tmp);
    return 1;
  }
  return 0;
}

/* True when an executable `name` is on PATH. */
static int on_path(const char *name) {
  const char *path = getenv("PATH");
  if (!path) return 0;
  char dir[4096];
  for (const char *p = path; *p;) {
    size_t n = strcspn(p, ":");
    snprintf(dir, sizeof dir, "%.*s/%s", (int)n, p, name);
    if (n && access(dir, X_OK) == 0) return 1;
    p += n + (p[n] == ':');
  }
  return 0;
}

int svg_to_png(const char *cmd, const char *svg_path, char *png_path, size_t n) {
  size_t len = strlen(svg_path);
  if (len > 4 && !strcmp(svg_path + len - 4, ".svg")) len -= 4;
  snprintf(png_path, n, "%.*s.png", (int)len, svg_path);
  if (!on_path("rsvg-convert")) return 1;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", png_path);
  char *argv[] = {"rsvg-convert", "-b", "white", "-o", tmp, (char *)svg_path, NULL};
  pid_t pid;
  int st = 0;
  if (posix_spawnp(&pid, "rsvg-convert", NULL, NULL, argv, environ) != 0 ||
      waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
      rename(tmp, png_path) != 0) {
    fprintf(stderr, "wrn %s: rsvg-convert could not make %s from %s\n", cmd, png_path, svg_path);
    remove(tmp);
    return 2;
  }
  return 0;
}
