/* Small SVG writing helpers for wrn plot and the bench reports: escaped text, axes with
 * "nice" tick values (linear and log), a qualitative palette, atomic writes, and PNG copies
 * through rsvg-convert where it is installed. */
#ifndef WRN_SVG_H
#define WRN_SVG_H

#include <stdio.h>

/* Distinct colours (Tableau 10, then 10 more of similar weight), for runs and op categories. */
#define SVG_PALETTE_SIZE 20
const char *svg_colour(int i); /* i modulo the palette */

/* Writes s with <, >, &, " escaped. */
void svg_escape(FILE *f, const char *s);
/* <text> at (x, y); anchor "start" | "middle" | "end"; extra: more attributes or NULL. */
void svg_text(FILE *f, double x, double y, const char *anchor, const char *extra,
              const char *text);
void svg_begin(FILE *f, int width, int height);
void svg_end(FILE *f);

/* Up to max tick values covering [lo, hi] at steps of 1, 2 or 5 times a power of ten; the
 * first tick <= lo and the last >= hi, so the axis range is [ticks[0], ticks[n-1]]. */
int svg_ticks(double lo, double hi, int max, double *ticks);
/* Ticks for a log axis over [lo, hi] (both > 0): 1, 2, 5 times powers of ten, or only the
 * powers when that gives more than max; the range widens to the ticks around it. */
int svg_log_ticks(double lo, double hi, int max, double *ticks);
/* A tick label: the fewest decimals that show the value ("0.0008", "20", "1500"); %g outside
 * 1e-4 .. 1e7. */
void svg_num(char *out, size_t n, double v);

/* A plot area: maps values to pixels, linear or logarithmic in y. */
typedef struct svg_axes {
  double x0, y0, w, h;       /* pixel box: left, top, width, height */
  double xlo, xhi, ylo, yhi; /* value ranges */
  int ylog;
} svg_axes;
double svg_px(const svg_axes *a, double x);
double svg_py(const svg_axes *a, double y);
/* Draws the frame, gridlines and tick labels of both axes and the axis titles (either may be
 * NULL). */
void svg_axes_draw(FILE *f, const svg_axes *a, const double *xt, int nx, const double *yt,
                   int ny, const char *xtitle, const char *ytitle);

/* Opens path.tmp for writing; svg_close renames it over path when everything was written.
 * Both print "wrn <cmd>: cannot write PATH: reason" and return NULL / 1 on failure, leaving an
 * existing file at path untouched. */
FILE *svg_open(const char *cmd, const char *path);
int svg_close(const char *cmd, FILE *f, const char *path);
/* Converts an SVG file to PNG (same name, .png) with rsvg-convert. Returns 0 when written, 1
 * when rsvg-convert is not installed (quietly), 2 when it failed (after a message). */
int svg_to_png(const char *cmd, const char *svg_path, char *png_path, size_t n);

#endif
