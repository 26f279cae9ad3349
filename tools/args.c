#include "args.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_int(const char *cmd, const char *flag, const char *val, long lo, long hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(val, &end, 10);
  if (errno || end == val || *end || v < lo || v > hi) {
    fprintf(stderr, "wrn %s: %s wants an integer in %ld..%ld, got '%s'\n", cmd, flag, lo, hi, val);
    return 2;
  }
  *out = (int)v;
  return 0;
}

int arg_u64(const char *cmd, const char *flag, const char *val, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(val, &end, 10);
  if (errno || end == val || *end || val[0] == '-') {
    fprintf(stderr, "wrn %s: %s wants a non-negative integer, got '%s'\n", cmd, flag, val);
    return 2;
  }
  *out = (uint64_t)v;
  return 0;
}

int arg_double(const char *cmd, const char *flag, const char *val, double lo, double hi,
               double *out) {
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  if (errno || end == val || *end || !isfinite(v) || v < lo || v > hi) {
    fprintf(stderr, "wrn %s: %s wants a number in [%g, %g], got '%s'\n", cmd, flag, lo, hi, val);
    return 2;
  }
  *out = v;
  return 0;
}

int arg_int_list(const char *cmd, const char *flag, const char *val, int lo, int hi, int *out,
                 int max, int *count) {
  *count = 0;
  if (!val[0]) return 0;
  const char *p = val;
  while (1) {
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || end == p || v < lo || v > hi || (*end && *end != ',') || *count >= max) {
      fprintf(stderr,
              "wrn %s: %s wants up to %d comma-separated integers in %d..%d, got '%s'\n", cmd,
              flag, max, lo, hi, val);
      return 2;
    }
    out[(*count)++] = (int)v;
    if (!*end) break;
    p = end + 1;
  }
  return 0;
}

int arg_choice(const char *cmd, const char *flag, const char *val, const char *const *choices,
               int *out) {
  for (int i = 0; choices[i]; i++)
    if (!strcmp(val, choices[i])) {
      *out = i;
      return 0;
    }
  fprintf(stderr, "wrn %s: %s wants one of", cmd, flag);
  for (int i = 0; choices[i]; i++) fprintf(stderr, "%s %s", i ? "," : "", choices[i]);
  fprintf(stderr, "; got '%s'\n", val);
  return 2;
}

const char *arg_value(const char *cmd, int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "wrn %s: %s needs a value\n", cmd, argv[*i]);
    return NULL;
  }
  return argv[++*i];
}
