/* Where a checkpoint says its run stands, read as strictly as flags are (train_internal.h),
 * and the log a resumed run continues. */
#include "train_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *find(const char *const *keys, const char *const *vals, int n,
                        const char *key) {
  for (int i = 0; i < n; i++)
    if (keys[i] && vals[i] && !strcmp(keys[i], key)) return vals[i];
  return NULL;
}

static wrn_status bad(const char *path, const char *key, const char *v, const char *want) {
  return wrn_fail(WRN_STATUS_FORMAT,
                  "%s: its metadata %s='%.64s%s' is not %s: the checkpoint is damaged", path,
                  key, v ? v : "", v && strlen(v) > 64 ? "..." : "", want);
}

static wrn_status get_i64(const char *const *keys, const char *const *vals, int n,
                          const char *path, const char *key, int required, int64_t lo,
                          int64_t hi, int64_t *out) {
  const char *v = find(keys, vals, n, key);
  char want[96];
  snprintf(want, sizeof want, "an integer in %" PRId64 "..%" PRId64, lo, hi);
  if (!v) return required ? bad(path, key, NULL, "there (a required value)") : WRN_OK;
  return wrn_parse_i64(v, lo, hi, out) == 0 ? WRN_OK : bad(path, key, v, want);
}

static wrn_status get_real(const char *const *keys, const char *const *vals, int n,
                           const char *path, const char *key, double lo, double hi,
                           double *out) {
  const char *v = find(keys, vals, n, key);
  char want[96];
  snprintf(want, sizeof want, "a number in [%g, %g]", lo, hi);
  if (!v) return WRN_OK;
  return wrn_parse_real(v, lo, hi, out) == 0 ? WRN_OK : bad(path, key, v, want);
}

wrn_status wrn_resume_point_parse(wrn_resume_point *r, const char *const *keys,
                                  const char *const *vals, int n, const char *path,
                                  int epochs, int64_t steps_per_epoch, int batch) {
  memset(r, 0, sizeof *r);
  if (epochs < 1 || steps_per_epoch < 1 || batch < 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_resume_point_parse: bad run size");
  const char *fmt = find(keys, vals, n, "format");
  if (fmt && strcmp(fmt, "wrn-checkpoint-1"))
    return bad(path, "format", fmt, "wrn-checkpoint-1");
  int64_t ep = 0, seen_max;
  const char *ev = find(keys, vals, n, "epoch");
  if (ev && wrn_parse_i64(ev, 0, 100000, &ep) == 0 && ep > epochs)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: the run has completed %d epochs, more than --epochs %d", path, (int)ep,
                    epochs);
  wrn_status s = get_i64(keys, vals, n, path, "epoch", 1, 0, epochs, &ep);
  if (s == WRN_OK)
    s = get_i64(keys, vals, n, path, "step_in_epoch", 1, 0, steps_per_epoch - 1, &r->step);
  if (s != WRN_OK) return s;
  r->completed = (int)ep;
  seen_max = r->step * batch;
  if ((s = get_i64(keys, vals, n, path, "partial_seen", 0, 0, seen_max, &r->seen)) ||
      (s = get_i64(keys, vals, n, path, "partial_correct", 0, 0, r->seen, &r->correct)) ||
      (s = get_real(keys, vals, n, path, "partial_loss_sum", 0, 1e300, &r->loss_sum)) ||
      (s = get_real(keys, vals, n, path, "partial_train_time", 0, 1e12, &r->train_time)) ||
      (s = get_real(keys, vals, n, path, "best_test_acc", 0, 100, &r->best_acc)))
    return s;
  int64_t gs = 0;
  return get_i64(keys, vals, n, path, "global_step", 0, 0, INT64_MAX / 2, &gs);
}

/* The "epoch" of a log line: -1 when the line is not a JSON object with an integral one. */
static int line_epoch(const char *text, size_t len) {
  wrn_jv *v;
  if (wrn_jv_parse(&v, text, len, "log line") != WRN_OK) return -1;
  const wrn_jv *e = wrn_jv_get(v, "epoch");
  double x = wrn_jv_number(e, -1);
  int ep = wrn_jv_kind(v) == WRN_JV_OBJECT && wrn_jv_kind(e) == WRN_JV_NUMBER && x >= 1 &&
                   x <= 1e9 && x == (double)(int)x
               ? (int)x
               : -1;
  wrn_jv_free(v);
  return ep;
}

wrn_status wrn_resume_log_line_check(const char *line, int epoch, const char *path) {
  if (strchr(line, '\n') || line_epoch(line, strlen(line)) != epoch)
    return wrn_fail(WRN_STATUS_FORMAT,
                    "%s: its metadata log_line is not the JSON record of epoch %d: the "
                    "checkpoint is damaged",
                    path, epoch);
  return WRN_OK;
}

wrn_status wrn_resume_log_last_epoch(const char *path, int *epoch) {
  *epoch = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return WRN_OK;
    return wrn_fail(WRN_STATUS_IO, "cannot read the log %s: %s", path, strerror(errno));
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n') break; /* a torn last line is no record */
    int ep = line_epoch(line, (size_t)len - 1);
    if (ep > 0) *epoch = ep;
  }
  int err = ferror(f);
  free(line);
  fclose(f);
  return err ? wrn_fail(WRN_STATUS_IO, "cannot read the log %s", path) : WRN_OK;
}
