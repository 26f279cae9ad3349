#include "args.h"
#include "wrn_io.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_int(const char *cmd, const char *flag, const char *val, long lo, long hi, int *out) {
  int64_t v;
  if (wrn_parse_i64(val, lo, hi, &v) != 0) {
    fprintf(stderr, "wrn %s: %s wants an integer in %ld..%ld, got '%s'\n", cmd, flag, lo, hi, val);
    return 2;
  }
  *out = (int)v;
  return 0;
}

int arg_u64(const char *cmd, const char *flag, const char *val, uint64_t *out) {
  uint64_t v;
  if (wrn_parse_u64(val, &v) != 0) {
    fprintf(stderr, "wrn %s: %s wants a non-negative integer, got '%s'\n", cmd, flag, val);
    return 2;
  }
  *out = (uint64_t)v;
  return 0;
}

int arg_double(const char *cmd, const char *flag, const char *val, double lo, double hi,
               double *out) {
  double v;
  if (wrn_parse_real(val, lo, hi, &v) != 0) {
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
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[24];
    int64_t v = 0;
    if (len < sizeof item) {
      memcpy(item, p, len);
      item[len] = '\0';
    }
    if (len >= sizeof item || wrn_parse_i64(item, lo, hi, &v) != 0 || *count >= max) {
      fprintf(stderr,
              "wrn %s: %s wants up to %d comma-separated integers in %d..%d, got '%s'\n", cmd,
              flag, max, lo, hi, val);
      return 2;
    }
    out[(*count)++] = (int)v;
    if (!end) break;
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

int arg_once(const char *cmd, const char *flag, const char *val, int allow_empty,
             const char **seen, int *n, int max) {
  for (int i = 0; i < *n; i++)
    if (!strcmp(seen[i], flag)) {
      fprintf(stderr, "wrn %s: %s is given twice; give each flag once\n", cmd, flag);
      return 2;
    }
  if (val && !val[0] && !allow_empty) {
    fprintf(stderr, "wrn %s: %s has an empty value (leave the flag out for its default)\n",
            cmd, flag);
    return 2;
  }
  if (*n >= max) {
    fprintf(stderr, "wrn %s: too many flags\n", cmd);
    return 2;
  }
  seen[(*n)++] = flag;
  return 0;
}
