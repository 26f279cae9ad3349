/* wrn plot: training curves of one or more runs, in the manner of the figures of Zagoruyko &
 * Komodakis (2016): train error dashed and test error solid against epochs, one colour per run,
 * and the learning-rate schedule in a panel below on the same epoch axis. */
#include "args.h"
#include "cli.h"
#include "runlog.h"
#include "svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 64

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn plot RUN [RUN...] [--out FILE.svg] [--log] [--ymax P] [--title TEXT]\n"
          "                [--png auto|on|off]\n"
          "Draws train error (dashed) and test error (solid) in %% against epochs from each run's\n"
          "log.jsonl (RUN: a run folder or its log.jsonl), one colour per run, with the\n"
          "learning rate below; the legend gives each run's model and final and best test\n"
          "error. --log puts the error on a log scale (the paper's low-error end stays\n"
          "readable), --ymax caps a linear axis. Writes RUN/curves.svg for one run, else\n"
          "curves.svg, and a PNG beside it when rsvg-convert is installed (--png on: required).\n");
}

/* Error in % of an accuracy in %. */
static double err(double acc) { return isfinite(acc) ? 100.0 - acc : NAN; }

/* A polyline through the finite points, broken where a value is missing (or not drawable on a
 * log axis). */
static void series(FILE *f, const svg_axes *a, const run_log *r, int which, const char *colour,
                   const char *dash, double width) {
  int open = 0;
  for (int i = 0; i < r->n; i++) {
    const run_epoch *e = &r->ep[i];
    double y = which == 0 ? err(e->test_acc) : which == 1 ? err(e->train_acc) : e->lr;
    int ok = isfinite(y) && (!a->ylog || y > 0);
    if (ok && a->ylog && y < a->ylo) y = a->ylo; /* an error of 0 sits on the floor */
    if (ok && y > a->yhi) y = a->yhi;            /* --ymax: clipped at the top */
    if (!ok) {
      if (open) fputs("\"/>\n", f);
      open = 0;
      continue;
    }
    if (!open)
      fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s%s%s points=\"",
              colour, width, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
              dash ? "\"" : "");
    /* An epoch's learning rate holds over the whole epoch: a step from epoch - 1 to epoch. */
    if (which == 2) fprintf(f, "%.1f,%.1f ", svg_px(a, e->epoch - 1), svg_py(a, y));
    fprintf(f, "%.1f,%.1f ", svg_px(a, e->epoch), svg_py(a, y));
    open = 1;
  }
  if (open) fputs("\"/>\n", f);
}

int cmd_plot(int argc, char **argv) {
  const char *runs[MAX_RUNS], *out = NULL, *title = NULL;
  int nruns = 0, ylog = 0, png = 0;
  double ymax = 0;
  static const char *const png_modes[] = {"auto", "on", "off", NULL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--log")) {
      ylog = 1;
      continue;
    }
    if (strncmp(a, "--", 2)) {
      if (nruns == MAX_RUNS) {
        fprintf(stderr, "wrn plot: at most %d runs\n", MAX_RUNS);
        return 2;
      }
      runs[nruns++] = a;
      continue;
    }
    if (!(v = arg_value("plot", argc, argv, &i))) return 2;
    int rc = 0;
    if (!strcmp(a, "--out")) out = v;
    else if (!strcmp(a, "--title")) title = v;
    else if (!strcmp(a, "--ymax")) rc = arg_double("plot", a, v, 1e-6, 100, &ymax);
    else if (!strcmp(a, "--png")) rc = arg_choice("plot", a, v, png_modes, &png);
    else {
      fprintf(stderr, "wrn plot: unknown flag '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (rc) return rc;
  }
  if (!nruns) {
    fprintf(stderr, "wrn plot: give at least one run folder (or log.jsonl)\n");
    usage(stderr);
    return 2;
  }
  run_log *r = calloc((size_t)nruns, sizeof *r);
  if (!r) return 1;
  int rc = 0;
  for (int i = 0; i < nruns && !rc; i++) rc = run_log_read("plot", runs[i], &r[i]);
  if (rc) goto done;
  /* Default: beside the log of a single run, else in the current folder. */
  char path[4200];
  const char *slash = strrchr(r[0].path, '/');
  if (out) snprintf(path, sizeof path, "%s", out);
  else if (nruns == 1 && slash)
    snprintf(path, sizeof path, "%.*s/curves.svg", (int)(slash - r[0].path), r[0].path);
  else snprintf(path, sizeof path, "curves.svg");

  /* Ranges over every run. */
  double emax = 1, errmax = 0, errmin = INFINITY, lrmin = INFINITY, lrmax = 0;
  for (int k = 0; k < nruns; k++)
    for (int i = 0; i < r[k].n; i++) {
      const run_epoch *e = &r[k].ep[i];
      if (e->epoch > emax) emax = e->epoch;
      double v[2] = {err(e->test_acc), err(e->train_acc)};
      for (int j = 0; j < 2; j++)
        if (isfinite(v[j])) {
          if (v[j] > errmax) errmax = v[j];
          if (v[j] > 0 && v[j] < errmin) errmin = v[j];
        }
      if (isfinite(e->lr) && e->lr > 0) {
        if (e->lr < lrmin) lrmin = e->lr;
        if (e->lr > lrmax) lrmax = e->lr;
      }
    }
  if (ymax > 0) errmax = ymax;
  if (!(errmax > 0)) errmax = 100;
  if (!isfinite(errmin)) errmin = errmax / 10;
  int W = 860, left = 78, pw = W - left - 24, top = 46, ph = 380, gap = 62, lh = 110;
  int legend_y = top + ph + gap + lh + 56, H = legend_y + 22 * nruns + 8;
  double xt[32], yt[64], lt[64];
  svg_axes main = {left, top, pw, ph, 0, emax, 0, errmax, ylog};
  int nx = svg_ticks(0, emax, 11, xt);
  main.xhi = xt[nx - 1];
  int ny;
  if (ylog) {
    double lo = errmin < errmax ? errmin : errmax / 10;
    if (lo < 0.01) lo = 0.01;
    ny = svg_log_ticks(lo, errmax, 12, yt);
    main.ylo = yt[0], main.yhi = yt[ny - 1];
  } else {
    ny = svg_ticks(0, errmax, 11, yt);
    main.yhi = ymax > 0 ? ymax : yt[ny - 1];
    while (ny > 1 && yt[ny - 1] > main.yhi * (1 + 1e-9)) ny--;
  }
  FILE *f = svg_open("plot", path);
  if (!f) {
    rc = 1;
    goto done;
  }
  svg_begin(f, W, H);
  char buf[1024];
  if (title) snprintf(buf, sizeof buf, "%s", title);
  else if (nruns == 1) snprintf(buf, sizeof buf, "%s: %s", r[0].model, r[0].name);
  else snprintf(buf, sizeof buf, "%d runs", nruns);
  svg_text(f, left, 26, "start", "font-size=\"16\" font-weight=\"bold\"", buf);
  svg_text(f, left + pw, 26, "end", "fill=\"#555\"",
           "train error dashed, test error solid");
  svg_axes_draw(f, &main, xt, nx, yt, ny, NULL, ylog ? "error (%, log scale)" : "error (%)");
  for (int k = 0; k < nruns; k++) {
    series(f, &main, &r[k], 1, svg_colour(k), "6,4", 1.5);
    series(f, &main, &r[k], 0, svg_colour(k), NULL, 2.2);
  }
  /* The learning rate, on a log axis (the step schedule's drops are equal steps). */
  if (lrmax > 0) {
    svg_axes lra = {left, top + ph + gap, pw, lh, 0, main.xhi, lrmin, lrmax, 1};
    int nl = svg_log_ticks(lrmin, lrmax, 6, lt);
    lra.ylo = lt[0], lra.yhi = lt[nl - 1];
    svg_axes_draw(f, &lra, xt, nx, lt, nl, "epoch", "learning rate");
    for (int k = 0; k < nruns; k++) series(f, &lra, &r[k], 2, svg_colour(k), NULL, 1.6);
  }
  /* Legend: one line per run. */
  for (int k = 0; k < nruns; k++) {
    int y = legend_y + 22 * k;
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n",
            left, y - 4, left + 26, y - 4, svg_colour(k));
    int b = run_log_best(&r[k]);
    const run_epoch *last = &r[k].ep[r[k].n - 1];
    char fin[64] = "no test error", best[96] = "";
    if (isfinite(last->test_acc)) snprintf(fin, sizeof fin, "final test error %.2f%%", err(last->test_acc));
    if (b >= 0)
      snprintf(best, sizeof best, ", best %.2f%% (epoch %d)", err(r[k].ep[b].test_acc),
               r[k].ep[b].epoch);
    snprintf(buf, sizeof buf, "%s  %s: %s%s, %d epochs", r[k].model, r[k].name, fin, best,
             last->epoch);
    svg_text(f, left + 34, y, "start", NULL, buf);
  }
  svg_end(f);
  if ((rc = svg_close("plot", f, path))) goto done;
  printf("plot: %s\n", path);
  if (png != 2) {
    char pngp[4300];
    int p = svg_to_png("plot", path, pngp, sizeof pngp);
    if (p == 0) printf("plot: %s\n", pngp);
    else if (p == 1 && png == 1) {
      fprintf(stderr, "wrn plot: --png on, but rsvg-convert is not installed (Debian: "
                      "librsvg2-bin)\n");
      rc = 1;
    } else if (p == 2) rc = 1;
  }
done:
  for (int i = 0; i < nruns; i++) run_log_free(&r[i]);
  free(r);
  return rc;
}
