/* wrn report: merges wrn bench --json results, from any number of machines, into one
 * Markdown + SVG report (the same report wrn bench --report writes for one run). */
#include "bench_report.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 256

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn report A.json [B.json ...] --out DIR\n"
          "Merges the results of `wrn bench --json FILE` made on different machines (and\n"
          "devices, vendors, models, batch sizes) into DIR/report.md with DIR/images_per_s.svg\n"
          "and DIR/profile.svg (PNG copies too where rsvg-convert is installed): images/s sorted\n"
          "within each model, TFLOP/s and the share of each device's own measured peak, peak\n"
          "memory, kernel-ready times, the per-op profile, and each machine's CPU and how busy\n"
          "it was while it measured.\n");
}

int cmd_report(int argc, char **argv) {
  const char *files[MAX_FILES], *out = NULL;
  int n = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--out")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "wrn report: --out needs a folder\n");
        return 2;
      }
      out = argv[++i];
      continue;
    }
    if (!strncmp(a, "--", 2)) {
      fprintf(stderr, "wrn report: unknown flag '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (n == MAX_FILES) {
      fprintf(stderr, "wrn report: at most %d files\n", MAX_FILES);
      return 2;
    }
    files[n++] = a;
  }
  if (!n || !out) {
    fprintf(stderr, "wrn report: give one or more bench JSON files and --out DIR\n");
    usage(stderr);
    return 2;
  }
  bench_set *sets = calloc((size_t)n, sizeof *sets);
  if (!sets) return 1;
  int rc = 0, rows = 0;
  for (int i = 0; i < n && !rc; i++) {
    rc = bench_json_read("report", files[i], &sets[i]);
    rows += sets[i].n;
  }
  if (!rc) rc = bench_report_write("report", out, sets, n);
  if (!rc) printf("report: %s/report.md (%d rows from %d files)\n", out, rows, n);
  for (int i = 0; i < n; i++) bench_set_free(&sets[i]);
  free(sets);
  return rc;
}
