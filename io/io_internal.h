/* Private to io/: helpers shared by the readers and writers. */
#ifndef WRN_IO_INTERNAL_H
#define WRN_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wrn_io.h"

/* SVHN (io/svhn.c): reads the .mat files of `dir` into ds (kind, classes, both splits; the
 * caller frees ds on failure). Without libmatio it fails saying so; wrn_svhn_available
 * tells. */
wrn_status wrn_svhn_open(wrn_dataset *ds, const char *dir, const wrn_dataset_options *o);
int wrn_svhn_available(void);

/* Length of the well-formed UTF-8 sequence starting at s (at most avail bytes), or 0 when
 * it is not one (overlong forms, surrogates and code points past U+10FFFF included). */
size_t wrn_io_utf8_seq(const unsigned char *s, size_t avail);

/* A growing byte buffer, always NUL-terminated once written to; oom is set (and further
 * writes ignored) when memory runs out, so callers check once at the end. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static inline void sb_put(sbuf *b, const void *d, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q, b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = 0;
}

/* A parsed JSON value (io/json.c); wrn_io.h's wrn_jv_* functions read it. */
struct wrn_jv {
  wrn_jv_type type;
  size_t pos;      /* byte offset in the parsed text */
  char *str;       /* WRN_JV_STRING: decoded, NUL-terminated */
  int is_uint;     /* WRN_JV_NUMBER: a non-negative integer that fits in 64 bits */
  uint64_t u;      /* its value */
  double num;      /* WRN_JV_NUMBER: the value as a double; WRN_JV_BOOL: 0 or 1 */
  size_t n;        /* WRN_JV_ARRAY, WRN_JV_OBJECT: items */
  struct wrn_jv *items;
  char **keys;     /* WRN_JV_OBJECT */
};

/* Parses text[0..n) into *root (zeroed first; release with wrn_io_json_clear, also after a
 * failure). Errors read "<ctx>: <problem> at byte <i> of <unit>", followed by
 * " (file offset <i + base>)" unless base is SIZE_MAX. want_object: the text must hold an
 * object, not any value. */
wrn_status wrn_io_json_parse(struct wrn_jv *root, const char *text, size_t n, const char *ctx,
                             const char *unit, size_t base, int want_object);
void wrn_io_json_clear(struct wrn_jv *v);
/* The member `key` of an object, NULL when absent. */
const struct wrn_jv *wrn_io_json_get(const struct wrn_jv *obj, const char *key);

#endif
