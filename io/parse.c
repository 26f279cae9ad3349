/* Strict numbers from text (wrn_io.h): the whole string in plain decimal, checked against a
 * range, for flags and for what files store. */
#include "wrn_io.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

static int digit(char c) { return c >= '0' && c <= '9'; }

/* [-]digits, nothing else. */
static int integer_form(const char *s, int sign_ok) {
  if (*s == '-' && sign_ok) s++;
  if (!digit(*s)) return 0;
  while (digit(*s)) s++;
  return *s == '\0';
}

/* [-](digits[.digits*] | .digits)([eE][+-]digits)?, nothing else. */
static int real_form(const char *s) {
  int nd = 0;
  if (*s == '-') s++;
  while (digit(*s)) s++, nd++;
  if (*s == '.') {
    s++;
    while (digit(*s)) s++, nd++;
  }
  if (!nd) return 0;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    if (!digit(*s)) return 0;
    while (digit(*s)) s++;
  }
  return *s == '\0';
}

int wrn_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  if (!s || !integer_form(s, 1)) return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = (int64_t)v;
  return 0;
}

int wrn_parse_u64(const char *s, uint64_t *out) {
  if (!s || !integer_form(s, 0)) return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = (uint64_t)v;
  return 0;
}

int wrn_parse_real(const char *s, double lo, double hi, double *out) {
  if (!s || !real_form(s)) return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  /* ERANGE is an overflow or an underflow; a tiny value that rounds to 0 or a subnormal is
   * still the number asked for. */
  if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1)) return -1;
  if (!(v >= lo && v <= hi)) return -1;
  *out = v;
  return 0;
}
