#include "runlog.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const metric_keys[] = {"epoch",      "lr",        "loss",      "train_loss",
                                          "train_acc",  "test_loss", "test_acc",  "train_time",
                                          "test_time",  "n_parameters", NULL};

int run_log_is_metric(const char *key) {
  for (const char *const *k = metric_keys; *k; k++)
    if (!strcmp(*k, key)) return 1;
  return 0;
}

void run_log_text(const wrn_jv *v, char *out, size_t n) {
  switch (wrn_jv_kind(v)) {
  case WRN_JV_STRING: snprintf(out, n, "%s", wrn_jv_string(v)); break;
  case WRN_JV_BOOL: snprintf(out, n, "%s", wrn_jv_number(v, 0) ? "true" : "false"); break;
  case WRN_JV_NUMBER: {
    double x = wrn_jv_number(v, 0);
    for (int p = 1; p <= 17; p++) {
      snprintf(out, n, "%.*g", p, x);
      if (strtod(out, NULL) == x) break;
    }
    break;
  }
  case WRN_JV_NULL: snprintf(out, n, "null"); break;
  default: snprintf(out, n, "%s", wrn_jv_kind(v) == WRN_JV_ARRAY ? "[...]" : "{...}");
  }
}

static int cmp_epoch(const void *a, const void *b) {
  const run_epoch *x = a, *y = b;
  return (x->epoch > y->epoch) - (x->epoch < y->epoch);
}

int run_log_read(const char *cmd, const char *arg, run_log *r) {
  memset(r, 0, sizeof *r);
  struct stat st;
  if (strlen(arg) + sizeof "/log.jsonl" > sizeof r->path) {
    fprintf(stderr, "wrn %s: the path %.40s... is %zu characters long, the most is %zu\n", cmd,
            arg, strlen(arg), sizeof r->path - sizeof "/log.jsonl");
    return 1;
  }
  if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
    snprintf(r->path, sizeof r->path, "%s/log.jsonl", arg);
    snprintf(r->name, sizeof r->name, "%s", arg);
  } else {
    snprintf(r->path, sizeof r->path, "%s", arg);
    snprintf(r->name, sizeof r->name, "%s", arg);
    char *slash = strrchr(r->name, '/');
    if (slash && !strcmp(slash, "/log.jsonl")) *slash = '\0';
  }
  /* The folder's own name, without a trailing slash or the path above it. */
  size_t len = strlen(r->name);
  while (len > 1 && r->name[len - 1] == '/') r->name[--len] = '\0';
  char *base = strrchr(r->name, '/');
  if (base && base[1]) memmove(r->name, base + 1, strlen(base + 1) + 1);
  snprintf(r->model, sizeof r->model, "?");
  FILE *f = fopen(r->path, "r");
  if (!f) {
    fprintf(stderr, "wrn %s: cannot read %s: %s (give a run folder or its log.jsonl)\n", cmd,
            r->path, strerror(errno));
    return 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  int lineno = 0, cap_ep = 0, last_epoch = -1, bad = 0;
  while ((got = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t n = (size_t)got;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
    if (!n) continue;
    char what[4200];
    snprintf(what, sizeof what, "%s line %d", r->path, lineno);
    wrn_jv *v;
    if (wrn_jv_parse(&v, line, n, what) != WRN_OK) {
      fprintf(stderr, "wrn %s: warning: %s; line skipped\n", cmd, wrn_last_error());
      bad++;
      continue;
    }
    double e = wrn_jv_number(wrn_jv_get(v, "epoch"), NAN);
    if (wrn_jv_kind(v) != WRN_JV_OBJECT || !(e >= 0) || e != floor(e) || e > 1e9) {
      fprintf(stderr, "wrn %s: warning: %s is not an epoch record (no \"epoch\"); line skipped\n",
              cmd, what);
      wrn_jv_free(v);
      bad++;
      continue;
    }
    run_epoch rec = {(int)e,
                     wrn_jv_number(wrn_jv_get(v, "lr"), NAN),
                     wrn_jv_number(wrn_jv_get(v, "train_loss"), NAN),
                     wrn_jv_number(wrn_jv_get(v, "train_acc"), NAN),
                     wrn_jv_number(wrn_jv_get(v, "test_loss"), NAN),
                     wrn_jv_number(wrn_jv_get(v, "test_acc"), NAN),
                     wrn_jv_number(wrn_jv_get(v, "train_time"), NAN),
                     wrn_jv_number(wrn_jv_get(v, "test_time"), NAN)};
    int k = 0;
    while (k < r->n && r->ep[k].epoch != rec.epoch) k++;
    if (k == r->n) {
      if (r->n == cap_ep) {
        int nc = cap_ep ? 2 * cap_ep : 64;
        run_epoch *p = realloc(r->ep, (size_t)nc * sizeof *p);
        if (!p) {
          fprintf(stderr, "wrn %s: out of memory reading %s\n", cmd, r->path);
          wrn_jv_free(v);
          free(line);
          fclose(f);
          return 1;
        }
        r->ep = p, cap_ep = nc;
      }
      r->n++;
    }
    r->ep[k] = rec;
    if (rec.epoch >= last_epoch) {
      last_epoch = rec.epoch;
      wrn_jv_free(r->last);
      r->last = v;
    } else {
      wrn_jv_free(v);
    }
  }
  int rerr = ferror(f);
  free(line);
  fclose(f);
  if (rerr) {
    fprintf(stderr, "wrn %s: reading %s failed\n", cmd, r->path);
    return 1;
  }
  if (!r->n) {
    fprintf(stderr, "wrn %s: %s holds no epoch records%s\n", cmd, r->path,
            bad ? " that could be read" : " (the run has not finished an epoch yet?)");
    return 1;
  }
  qsort(r->ep, (size_t)r->n, sizeof *r->ep, cmp_epoch);
  const char *m = wrn_jv_string(wrn_jv_get(r->last, "model"));
  if (m) snprintf(r->model, sizeof r->model, "%s", m);
  return 0;
}

void run_log_free(run_log *r) {
  free(r->ep);
  wrn_jv_free(r->last);
  r->ep = NULL, r->last = NULL, r->n = 0;
}

int run_log_best(const run_log *r) {
  int best = -1;
  for (int i = 0; i < r->n; i++)
    if (isfinite(r->ep[i].test_acc) && (best < 0 || r->ep[i].test_acc > r->ep[best].test_acc))
      best = i;
  return best;
}

double run_log_seconds(const run_log *r) {
  double s = 0;
  for (int i = 0; i < r->n; i++) {
    if (isfinite(r->ep[i].train_time)) s += r->ep[i].train_time;
    if (isfinite(r->ep[i].test_time)) s += r->ep[i].test_time;
  }
  return s;
}
