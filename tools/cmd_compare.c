/* wrn compare: one line per run from its log.jsonl: model, the options in which the runs
 * differ, epochs, best and final test error, and time. */
#include "cli.h"
#include "runlog.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 256

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn compare RUN [RUN...] [--markdown]\n"
          "Prints a table of runs (RUN: a run folder or its log.jsonl): model, the options in\n"
          "which the runs differ (all compared, each run's own values shown), epochs, best\n"
          "test error and its epoch, final test and train error, training + test time, and\n"
          "the device and wrn version where the log records them. --markdown: a Markdown\n"
          "table.\n");
}

static void duration(double s, char *out, size_t n) {
  if (!isfinite(s)) snprintf(out, n, "-");
  else if (s < 120) snprintf(out, n, "%.1f s", s);
  else if (s < 7200) snprintf(out, n, "%.0fm %02.0fs", floor(s / 60), fmod(s, 60));
  else snprintf(out, n, "%.0fh %02.0fm", floor(s / 3600), floor(fmod(s, 3600) / 60));
}

/* The keys that describe a run and are shown in their own columns, not among the options. */
static int own_column(const char *k) {
  return !strcmp(k, "model") || !strcmp(k, "device") || !strcmp(k, "wrn_version");
}

/* The option `key` of run r as text ("-" when the run does not record it). */
static void opt(const run_log *r, const char *key, char *out, size_t n) {
  const wrn_jv *v = wrn_jv_get(r->last, key);
  if (v) run_log_text(v, out, n);
  else snprintf(out, n, "-");
}

typedef struct cell {
  char *s[9];
} cell;

int cmd_compare(int argc, char **argv) {
  const char *args[MAX_RUNS];
  int n = 0, md = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--markdown")) {
      md = 1;
      continue;
    }
    if (!strncmp(argv[i], "--", 2)) {
      fprintf(stderr, "wrn compare: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
    if (n == MAX_RUNS) {
      fprintf(stderr, "wrn compare: at most %d runs\n", MAX_RUNS);
      return 2;
    }
    args[n++] = argv[i];
  }
  if (!n) {
    fprintf(stderr, "wrn compare: give at least one run folder (or log.jsonl)\n");
    usage(stderr);
    return 2;
  }
  run_log *r = calloc((size_t)n, sizeof *r);
  cell *rows = calloc((size_t)n + 1, sizeof *rows);
  int rc = !r || !rows;
  for (int i = 0; i < n && !rc; i++) rc = run_log_read("compare", args[i], &r[i]);
  if (rc) goto done;
  /* Options in which the runs differ: every key any run's last record holds, compared. */
  enum { C_RUN, C_MODEL, C_OPTS, C_EPOCHS, C_BEST, C_FINAL, C_TRAIN, C_TIME, C_DEVICE };
  static const char *const head[9] = {"run",         "model",       "options that differ",
                                      "epochs",      "best test err", "final test err",
                                      "final train err", "time",    "device / version"};
  size_t cap = 8192;
  for (int i = 0; i <= n && !rc; i++)
    for (int c = 0; c < 9 && !rc; c++)
      if (!(rows[i].s[c] = calloc(1, cap))) rc = 1;
  if (rc) goto done;
  for (int c = 0; c < 9; c++) snprintf(rows[0].s[c], cap, "%s", head[c]);
  char a[2048], b[2048];
  for (int k = 0; k < n; k++)
    for (size_t j = 0; j < wrn_jv_count(r[k].last); j++) {
      const char *key = wrn_jv_key(r[k].last, j);
      if (run_log_is_metric(key) || own_column(key)) continue;
      int seen = 0;
      for (int q = 0; q < k && !seen; q++) seen = wrn_jv_get(r[q].last, key) != NULL;
      if (seen) continue; /* handled with the first run that has it */
      int differ = 0;
      opt(&r[0], key, a, sizeof a);
      for (int q = 1; q < n && !differ; q++) {
        opt(&r[q], key, b, sizeof b);
        differ = strcmp(a, b) != 0;
      }
      if (!differ) continue;
      for (int q = 0; q < n; q++) {
        char *o = rows[q + 1].s[C_OPTS];
        opt(&r[q], key, b, sizeof b);
        size_t len = strlen(o);
        snprintf(o + len, cap - len, "%s%s=%s", len ? " " : "", key, b);
      }
    }
  for (int k = 0; k < n; k++) {
    cell *c = &rows[k + 1];
    const run_epoch *last = &r[k].ep[r[k].n - 1];
    int best = run_log_best(&r[k]);
    snprintf(c->s[C_RUN], cap, "%s", r[k].name);
    snprintf(c->s[C_MODEL], cap, "%s", r[k].model);
    if (!c->s[C_OPTS][0]) snprintf(c->s[C_OPTS], cap, "-");
    snprintf(c->s[C_EPOCHS], cap, "%d", last->epoch);
    if (best >= 0)
      snprintf(c->s[C_BEST], cap, "%.2f%% (epoch %d)", 100 - r[k].ep[best].test_acc,
               r[k].ep[best].epoch);
    else snprintf(c->s[C_BEST], cap, "-");
    if (isfinite(last->test_acc)) snprintf(c->s[C_FINAL], cap, "%.2f%%", 100 - last->test_acc);
    else snprintf(c->s[C_FINAL], cap, "-");
    if (isfinite(last->train_acc)) snprintf(c->s[C_TRAIN], cap, "%.2f%%", 100 - last->train_acc);
    else snprintf(c->s[C_TRAIN], cap, "-");
    duration(run_log_seconds(&r[k]), c->s[C_TIME], cap);
    opt(&r[k], "device", a, sizeof a);
    opt(&r[k], "wrn_version", b, sizeof b);
    snprintf(c->s[C_DEVICE], cap, "%s%s%s", a, strcmp(b, "-") ? " / " : "", strcmp(b, "-") ? b : "");
  }
  /* Columns that hold nothing for any run are left out. */
  int show[9];
  for (int c = 0; c < 9; c++) {
    show[c] = 0;
    for (int k = 1; k <= n; k++) show[c] |= strcmp(rows[k].s[c], "-") != 0;
  }
  show[C_RUN] = show[C_MODEL] = 1;
  size_t w[9] = {0};
  for (int k = 0; k <= n; k++)
    for (int c = 0; c < 9; c++)
      if (strlen(rows[k].s[c]) > w[c]) w[c] = strlen(rows[k].s[c]);
  for (int k = 0; k <= n; k++) {
    int first = 1;
    for (int c = 0; c < 9; c++) {
      if (!show[c]) continue;
      int right = c >= C_EPOCHS && c <= C_TIME && k > 0;
      if (md) printf("%s %s", first ? "|" : " |", rows[k].s[c]);
      else printf(right ? "%s%*s" : "%s%-*s", first ? "" : "  ", (int)w[c], rows[k].s[c]);
      first = 0;
    }
    printf(md ? " |\n" : "\n");
    if (k == 0 && md) {
      for (int c = 0; c < 9; c++)
        if (show[c]) printf("|%s", c >= C_EPOCHS && c <= C_TIME ? "---:" : "---");
      printf("|\n");
    }
  }
done:
  for (int i = 0; rows && i <= n; i++)
    for (int c = 0; c < 9; c++) free(rows[i].s[c]);
  for (int i = 0; r && i < n; i++) run_log_free(&r[i]);
  free(rows);
  free(r);
  return rc;
}
