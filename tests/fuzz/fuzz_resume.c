/* libFuzzer target: what a resume reads as text: checkpoint metadata lines "key=value"
 * (wrn_resume_point_parse), training options from stored text (wrn_train_option_set), model
 * names, strict numbers, the log line kept in a checkpoint and a log's last epoch. */
#include "fuzz_util.h"
#include "train_internal.h"
#include "wrn_models.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) abort();
  memcpy(text, data, size);
  text[size] = '\0';
  enum { MAXL = 64 };
  const char *keys[MAXL], *vals[MAXL];
  int n = 0;
  for (char *p = text; p && *p && n < MAXL;) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = '\0';
    char *eq = strchr(p, '=');
    if (eq) {
      *eq = '\0';
      keys[n] = p, vals[n] = eq + 1, n++;
    }
    p = nl ? nl + 1 : NULL;
  }
  wrn_resume_point r;
  if (wrn_resume_point_parse(&r, keys, vals, n, "fuzz.safetensors", 200, 390, 128) == WRN_OK) {
    if (r.completed < 0 || r.completed > 200 || r.step < 0 || r.step >= 390 || r.seen < 0 ||
        r.seen > r.step * 128 || r.correct < 0 || r.correct > r.seen || !isfinite(r.loss_sum) ||
        r.loss_sum < 0 || !(r.best_acc >= 0 && r.best_acc <= 100) || !isfinite(r.train_time))
      abort();
  }
  wrn_train_options o;
  wrn_train_options_default(&o);
  for (int i = 0; i < n; i++) {
    wrn_train_option_set(&o, keys[i], vals[i]);
    wrn_resume_log_line_check(vals[i], 1, "fuzz.safetensors");
    int64_t l;
    double x;
    uint64_t u;
    if (wrn_parse_real(vals[i], -1e308, 1e308, &x) == 0 && !isfinite(x)) abort();
    if (wrn_parse_i64(vals[i], -5, 5, &l) == 0 && (l < -5 || l > 5)) abort();
    wrn_parse_u64(vals[i], &u);
    wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
    if (wrn_model_parse(vals[i], &s) == WRN_OK && (s.depth < 10 || s.width < 1 || s.width > 64))
      abort();
  }
  wrn_train_options_check(&o);
  /* The same text as a log: its last whole record's epoch. */
  char path[512];
  fuzz_write("log.jsonl", data, size, path);
  int ep;
  wrn_resume_log_last_epoch(path, &ep);
  free(text);
  return 0;
}
