/* A strict JSON (RFC 8259) reader: one value in memory becomes a tree; anything the grammar
 * does not allow (trailing commas, leading zeros, bad escapes, invalid UTF-8, unpaired
 * surrogates, duplicate keys) is refused with the problem and its byte position. Read by the
 * safetensors header parser and, through wrn_io.h's wrn_jv_* functions, by the tools that
 * read logs and benchmark results. */
#include "io_internal.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 64 /* nesting; a safetensors header needs 3 */

typedef struct wrn_jv jval;

typedef struct jparser {
  const char *s;
  size_t n, i;
  const char *ctx, *unit; /* for messages */
  size_t base;
  int depth;
} jparser;

void wrn_io_json_clear(jval *v) {
  if (!v) return;
  free(v->str);
  for (size_t k = 0; k < v->n; k++) {
    wrn_io_json_clear(&v->items[k]);
    if (v->keys) free(v->keys[k]);
  }
  free(v->items);
  free(v->keys);
  memset(v, 0, sizeof *v);
}

static wrn_status jerr(const jparser *p, size_t at, const char *what) {
  if (p->base == SIZE_MAX)
    return wrn_fail(WRN_STATUS_FORMAT, "%s: %s at byte %zu of %s", p->ctx, what, at, p->unit);
  return wrn_fail(WRN_STATUS_FORMAT, "%s: %s at byte %zu of %s (file offset %zu)", p->ctx, what,
                  at, p->unit, at + p->base);
}

static void jws(jparser *p) {
  while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                         p->s[p->i] == '\r'))
    p->i++;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    char c = s[k];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void sb_utf8(sbuf *b, unsigned cp) {
  unsigned char u[4];
  size_t n;
  if (cp < 0x80) u[0] = (unsigned char)cp, n = 1;
  else if (cp < 0x800) u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 63)), n = 2;
  else if (cp < 0x10000)
    u[0] = (unsigned char)(0xE0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
    u[2] = (unsigned char)(0x80 | (cp & 63)), n = 3;
  else
    u[0] = (unsigned char)(0xF0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63)),
    u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)), u[3] = (unsigned char)(0x80 | (cp & 63)), n = 4;
  sb_put(b, u, n);
}

/* p->i is at the opening quote. */
static wrn_status jstring(jparser *p, char **out) {
  sbuf b = {0};
  sb_put(&b, "", 0);
  size_t start = p->i++;
  for (;;) {
    if (p->i >= p->n) {
      free(b.p);
      return jerr(p, start, "unterminated string");
    }
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '"') {
      p->i++;
      break;
    }
    if (c < 0x20) {
      free(b.p);
      return jerr(p, p->i, "unescaped control character in a string");
    }
    if (c == '\\') {
      if (p->i + 1 >= p->n) {
        free(b.p);
        return jerr(p, start, "unterminated string");
      }
      char e = p->s[p->i + 1];
      const char *simple = strchr("\"\\/bfnrt", e);
      if (e && simple) {
        static const char map[] = "\"\\/\b\f\n\r\t";
        sb_put(&b, &map[simple - "\"\\/bfnrt"], 1);
        p->i += 2;
        continue;
      }
      if (e != 'u') {
        free(b.p);
        return jerr(p, p->i, "invalid escape sequence in a string");
      }
      unsigned cp, lo;
      if (p->i + 6 > p->n || !hex4(p->s + p->i + 2, &cp)) {
        free(b.p);
        return jerr(p, p->i, "bad \\u escape (four hex digits expected)");
      }
      size_t at = p->i;
      p->i += 6;
      if (cp >= 0xDC00 && cp <= 0xDFFF) {
        free(b.p);
        return jerr(p, at, "unpaired low surrogate in a \\u escape");
      }
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->i + 6 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u' ||
            !hex4(p->s + p->i + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
          free(b.p);
          return jerr(p, at, "high surrogate in a \\u escape without its low half");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p->i += 6;
      }
      if (cp == 0) {
        free(b.p);
        return jerr(p, at, "\\u0000 in a string (not supported)");
      }
      sb_utf8(&b, cp);
      continue;
    }
    size_t k = wrn_io_utf8_seq((const unsigned char *)p->s + p->i, p->n - p->i);
    if (!k) {
      free(b.p);
      return jerr(p, p->i, "invalid UTF-8 in a string");
    }
    sb_put(&b, p->s + p->i, k);
    p->i += k;
  }
  if (b.oom) {
    free(b.p);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", p->ctx);
  }
  *out = b.p;
  return WRN_OK;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A JSON number (already checked) as a double, with '.' as the decimal point whatever the
 * locale: strtod reads the locale's, so the '.' is swapped for it first. */
static double to_double(const char *s, size_t n) {
  char tmp[64], *buf = n < sizeof tmp ? tmp : malloc(n + 1);
  if (!buf) return NAN;
  memcpy(buf, s, n);
  buf[n] = '\0';
  char *dot = strchr(buf, '.');
  const char *dp = localeconv()->decimal_point;
  if (dot && dp && dp[0] && !dp[1]) *dot = dp[0];
  double v = strtod(buf, NULL);
  if (buf != tmp) free(buf);
  return v;
}

static wrn_status jnumber(jparser *p, jval *v) {
  size_t start = p->i;
  int neg = 0, integral = 1, overflow = 0;
  uint64_t u = 0;
  if (p->s[p->i] == '-') neg = 1, p->i++;
  if (p->i >= p->n || !is_digit(p->s[p->i])) return jerr(p, start, "bad number");
  if (p->s[p->i] == '0' && p->i + 1 < p->n && is_digit(p->s[p->i + 1]))
    return jerr(p, start, "number with a leading zero");
  while (p->i < p->n && is_digit(p->s[p->i])) {
    unsigned d = (unsigned)(p->s[p->i] - '0');
    if (u > (UINT64_MAX - d) / 10) overflow = 1;
    u = u * 10 + d;
    p->i++;
  }
  if (p->i < p->n && p->s[p->i] == '.') {
    integral = 0, p->i++;
    if (p->i >= p->n || !is_digit(p->s[p->i])) return jerr(p, start, "bad number (digit after '.')");
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    integral = 0, p->i++;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
    if (p->i >= p->n || !is_digit(p->s[p->i])) return jerr(p, start, "bad number exponent");
    while (p->i < p->n && is_digit(p->s[p->i])) p->i++;
  }
  v->type = WRN_JV_NUMBER;
  v->is_uint = !neg && integral && !overflow;
  v->u = u;
  v->num = to_double(p->s + start, p->i - start);
  return WRN_OK;
}

static wrn_status jvalue(jparser *p, jval *v);

static wrn_status jgrow(jparser *p, jval *v, size_t *cap, int obj) {
  if (v->n < *cap) return WRN_OK;
  size_t c = *cap ? 2 * *cap : 4;
  jval *it = realloc(v->items, c * sizeof *it);
  if (it) v->items = it;
  char **k = obj ? realloc(v->keys, c * sizeof *k) : NULL;
  if (k) v->keys = k;
  if (!it || (obj && !k))
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", p->ctx);
  *cap = c;
  return WRN_OK;
}

static wrn_status jcontainer(jparser *p, jval *v, int obj) {
  char close = obj ? '}' : ']';
  v->type = obj ? WRN_JV_OBJECT : WRN_JV_ARRAY;
  if (++p->depth > JSON_MAX_DEPTH) return jerr(p, p->i, "nesting too deep");
  p->i++;
  size_t cap = 0;
  jws(p);
  if (p->i < p->n && p->s[p->i] == close) {
    p->i++, p->depth--;
    return WRN_OK;
  }
  for (;;) {
    wrn_status st = jgrow(p, v, &cap, obj);
    if (st != WRN_OK) return st;
    jval *item = &v->items[v->n];
    memset(item, 0, sizeof *item);
    jws(p);
    if (obj) {
      v->keys[v->n] = NULL;
      if (p->i >= p->n || p->s[p->i] != '"')
        return jerr(p, p->i, p->i < p->n && p->s[p->i] == '}' ? "trailing comma in an object"
                                                              : "object key (a string) expected");
      size_t kpos = p->i;
      char *key;
      if ((st = jstring(p, &key)) != WRN_OK) return st;
      for (size_t k = 0; k < v->n; k++)
        if (strcmp(v->keys[k], key) == 0) {
          free(key);
          return jerr(p, kpos, "duplicate key in an object");
        }
      v->keys[v->n] = key;
      v->n++; /* counted now so that jfree releases the key on a later error */
      jws(p);
      if (p->i >= p->n || p->s[p->i] != ':') return jerr(p, p->i, "':' expected after a key");
      p->i++;
      if ((st = jvalue(p, item)) != WRN_OK) return st;
    } else {
      if (p->i < p->n && p->s[p->i] == ']') return jerr(p, p->i, "trailing comma in an array");
      v->n++;
      if ((st = jvalue(p, item)) != WRN_OK) return st;
    }
    jws(p);
    if (p->i >= p->n) return jerr(p, p->i, obj ? "unterminated object" : "unterminated array");
    if (p->s[p->i] == ',') {
      p->i++;
      continue;
    }
    if (p->s[p->i] == close) {
      p->i++, p->depth--;
      return WRN_OK;
    }
    return jerr(p, p->i, obj ? "',' or '}' expected" : "',' or ']' expected");
  }
}

static wrn_status jvalue(jparser *p, jval *v) {
  jws(p);
  v->pos = p->i;
  if (p->i >= p->n) return jerr(p, p->i, "unexpected end of the header");
  char c = p->s[p->i];
  if (c == '{' || c == '[') return jcontainer(p, v, c == '{');
  if (c == '"') {
    v->type = WRN_JV_STRING;
    return jstring(p, &v->str);
  }
  if (c == '-' || is_digit(c)) return jnumber(p, v);
  static const char *lits[] = {"true", "false", "null"};
  for (int k = 0; k < 3; k++) {
    size_t l = strlen(lits[k]);
    if (p->n - p->i >= l && memcmp(p->s + p->i, lits[k], l) == 0) {
      v->type = k < 2 ? WRN_JV_BOOL : WRN_JV_NULL;
      v->num = k == 0;
      p->i += l;
      return WRN_OK;
    }
  }
  char what[64];
  if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
    snprintf(what, sizeof what, "unexpected character '%c'", c);
  else
    snprintf(what, sizeof what, "unexpected byte 0x%02x", (unsigned char)c);
  return jerr(p, p->i, what);
}

const jval *wrn_io_json_get(const jval *obj, const char *key) {
  for (size_t k = 0; k < obj->n; k++)
    if (strcmp(obj->keys[k], key) == 0) return &obj->items[k];
  return NULL;
}


wrn_status wrn_io_json_parse(jval *root, const char *text, size_t n, const char *ctx,
                             const char *unit, size_t base, int want_object) {
  memset(root, 0, sizeof *root);
  jparser p = {text, n, 0, ctx, unit, base, 0};
  jws(&p);
  if (want_object && (p.i >= p.n || text[p.i] != '{'))
    return jerr(&p, p.i, "the text must start with '{'");
  wrn_status st = jvalue(&p, root);
  if (st != WRN_OK) return st;
  jws(&p);
  if (p.i != p.n)
    return jerr(&p, p.i, want_object ? "unexpected content after the JSON object"
                                     : "unexpected content after the JSON value");
  return WRN_OK;
}

/* ---------------------------------------------------------------- public reader */

wrn_status wrn_jv_parse(wrn_jv **out, const char *text, size_t n, const char *what) {
  if (!out || (!text && n))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_jv_parse: %s is NULL", !out ? "out" : "text");
  *out = NULL;
  jval *v = malloc(sizeof *v);
  if (!v) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory to parse JSON", what);
  char ctx[512];
  snprintf(ctx, sizeof ctx, "%s: bad JSON", what ? what : "JSON");
  wrn_status st = wrn_io_json_parse(v, text ? text : "", n, ctx, "it", SIZE_MAX, 0);
  if (st != WRN_OK) {
    wrn_jv_free(v);
    return st;
  }
  *out = v;
  return WRN_OK;
}

void wrn_jv_free(wrn_jv *v) {
  if (!v) return;
  wrn_io_json_clear(v);
  free(v);
}

wrn_jv_type wrn_jv_kind(const wrn_jv *v) { return v ? v->type : WRN_JV_NULL; }

size_t wrn_jv_count(const wrn_jv *v) {
  return v && (v->type == WRN_JV_ARRAY || v->type == WRN_JV_OBJECT) ? v->n : 0;
}

const wrn_jv *wrn_jv_item(const wrn_jv *v, size_t i) {
  return i < wrn_jv_count(v) ? &v->items[i] : NULL;
}

const char *wrn_jv_key(const wrn_jv *v, size_t i) {
  return v && v->type == WRN_JV_OBJECT && i < v->n ? v->keys[i] : NULL;
}

const wrn_jv *wrn_jv_get(const wrn_jv *obj, const char *key) {
  return obj && obj->type == WRN_JV_OBJECT && key ? wrn_io_json_get(obj, key) : NULL;
}

const char *wrn_jv_string(const wrn_jv *v) {
  return v && v->type == WRN_JV_STRING ? v->str : NULL;
}

double wrn_jv_number(const wrn_jv *v, double fallback) {
  return v && (v->type == WRN_JV_NUMBER || v->type == WRN_JV_BOOL) ? v->num : fallback;
}
