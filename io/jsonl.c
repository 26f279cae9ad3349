/* JSON-lines logs: a flat object builder and an appender that writes each record as one
 * line with a single write() and an fsync, so that a record reported as written is whole
 * on disk and a crash leaves at most one partial last line, which the next open fences off
 * with a newline. */
#include "wrn_io.h"
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct wrn_json {
  char *p;      /* "{...": the closing brace and NUL are kept just past len */
  size_t len, cap;
  int fields;
};

static wrn_status put(wrn_json *j, const char *d, size_t n) {
  if (j->len + n + 2 > j->cap) {
    size_t cap = j->cap ? j->cap : 128;
    while (cap < j->len + n + 2) cap *= 2;
    char *q = realloc(j->p, cap);
    if (!q) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_json: no memory for a %zu-byte line",
                            j->len + n);
    j->p = q, j->cap = cap;
  }
  memcpy(j->p + j->len, d, n);
  j->len += n;
  j->p[j->len] = '}';
  j->p[j->len + 1] = 0;
  return WRN_OK;
}

wrn_status wrn_json_new(wrn_json **out) {
  if (!out) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_json_new: out is NULL");
  wrn_json *j = calloc(1, sizeof *j);
  if (!j || put(j, "{", 1) != WRN_OK) {
    if (j) free(j->p);
    free(j);
    *out = NULL;
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_json_new: no memory");
  }
  *out = j;
  return WRN_OK;
}

void wrn_json_free(wrn_json *j) {
  if (!j) return;
  free(j->p);
  free(j);
}

void wrn_json_clear(wrn_json *j) {
  if (!j) return;
  j->len = 1;
  j->fields = 0;
  j->p[1] = '}';
  j->p[2] = 0;
}

const char *wrn_json_text(const wrn_json *j) { return j ? j->p : "{}"; }

static wrn_status put_string(wrn_json *j, const char *s) {
  static const char hex[] = "0123456789abcdef";
  wrn_status st = put(j, "\"", 1);
  size_t n = strlen(s);
  for (size_t i = 0; i < n && st == WRN_OK;) {
    unsigned c = (unsigned char)s[i];
    char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default: break;
    }
    if (esc[1]) {
      st = put(j, esc, 2);
      i++;
    } else if (c < 0x20) {
      esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
      st = put(j, esc, 6);
      i++;
    } else {
      size_t k = wrn_io_utf8_seq((const unsigned char *)s + i, n - i);
      if (k) {
        st = put(j, s + i, k);
        i += k;
      } else {
        /* One replacement character per bad byte, as decoders commonly do. */
        st = put(j, "\\ufffd", 6);
        i++;
      }
    }
  }
  if (st == WRN_OK) st = put(j, "\"", 1);
  return st;
}

/* Appends `,"key":` (no comma for the first field); on failure the object is unchanged. */
static wrn_status put_key(wrn_json *j, const char *fn, const char *key, size_t *mark) {
  if (!j || !key)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", fn, !j ? "j" : "key");
  *mark = j->len;
  wrn_status st = j->fields ? put(j, ",", 1) : WRN_OK;
  if (st == WRN_OK) st = put_string(j, key);
  if (st == WRN_OK) st = put(j, ":", 1);
  return st;
}

static wrn_status finish(wrn_json *j, size_t mark, wrn_status st) {
  if (st != WRN_OK) {
    j->len = mark;
    j->p[mark] = '}';
    j->p[mark + 1] = 0;
    return st;
  }
  j->fields++;
  return WRN_OK;
}

wrn_status wrn_json_str(wrn_json *j, const char *key, const char *value) {
  size_t mark;
  wrn_status st = put_key(j, "wrn_json_str", key, &mark);
  if (!j || !key) return st;
  if (st == WRN_OK) st = value ? put_string(j, value) : put(j, "null", 4);
  return finish(j, mark, st);
}

wrn_status wrn_json_int(wrn_json *j, const char *key, int64_t value) {
  size_t mark;
  wrn_status st = put_key(j, "wrn_json_int", key, &mark);
  if (!j || !key) return st;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lld", (long long)value);
  if (st == WRN_OK) st = put(j, buf, (size_t)n);
  return finish(j, mark, st);
}

wrn_status wrn_json_bool(wrn_json *j, const char *key, int value) {
  size_t mark;
  wrn_status st = put_key(j, "wrn_json_bool", key, &mark);
  if (!j || !key) return st;
  if (st == WRN_OK) st = value ? put(j, "true", 4) : put(j, "false", 5);
  return finish(j, mark, st);
}

/* The shortest of %.15g / %.16g / %.17g that reads back to the same double: 15 digits
 * always survive a decimal -> double -> decimal trip (DBL_DIG), 17 always survive the
 * other way, so this gives the short form whenever one exists. The locale's decimal point
 * is replaced by '.', and integral values keep a ".0" so that readers see a float. */
static void format_double(char *out, size_t n, double v) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, v);
    if (strtod(out, NULL) == v) break;
  }
  const char *dp = localeconv()->decimal_point;
  size_t dl = dp ? strlen(dp) : 0;
  if (dl && strcmp(dp, ".") != 0) {
    char *at = strstr(out, dp);
    if (at) {
      *at = '.';
      memmove(at + 1, at + dl, strlen(at + dl) + 1);
    }
  }
  if (!strpbrk(out, ".eE")) {
    size_t l = strlen(out);
    if (l + 2 < n) memcpy(out + l, ".0", 3);
  }
}

wrn_status wrn_json_double(wrn_json *j, const char *key, double value) {
  size_t mark;
  wrn_status st = put_key(j, "wrn_json_double", key, &mark);
  if (!j || !key) return st;
  char buf[64];
  if (isfinite(value))
    format_double(buf, sizeof buf, value);
  else
    snprintf(buf, sizeof buf, "null");
  if (st == WRN_OK) st = put(j, buf, strlen(buf));
  return finish(j, mark, st);
}

/* ---------------------------------------------------------------- appender */

struct wrn_jsonl {
  int fd;
  char *path;
};

static wrn_status write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return WRN_STATUS_IO;
    }
    p += k, n -= (size_t)k;
  }
  return WRN_OK;
}

/* The length of the file's whole lines: up to and including its last newline. */
static int whole_lines_end(int fd, off_t size, off_t *end) {
  char buf[4096];
  off_t pos = size;
  while (pos > 0) {
    size_t k = pos > (off_t)sizeof buf ? sizeof buf : (size_t)pos;
    if (pread(fd, buf, k, pos - (off_t)k) != (ssize_t)k) return -1;
    for (size_t i = k; i-- > 0;)
      if (buf[i] == '\n') {
        *end = pos - (off_t)k + (off_t)i + 1;
        return 0;
      }
    pos -= (off_t)k;
  }
  *end = 0;
  return 0;
}

static wrn_status jsonl_open(wrn_jsonl **out, const char *path, int trim, size_t *cut) {
  if (cut) *cut = 0;
  if (!out || !path || !*path)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_jsonl_open: %s",
                    !out ? "out is NULL" : "no path");
  *out = NULL;
  wrn_jsonl *l = calloc(1, sizeof *l);
  size_t pl = strlen(path) + 1;
  if (!l || !(l->path = malloc(pl))) {
    free(l);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_jsonl_open: no memory");
  }
  memcpy(l->path, path, pl);
  l->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (l->fd < 0) {
    int e = errno;
    wrn_jsonl_close(l);
    return wrn_fail(WRN_STATUS_IO, "log: cannot open '%s' for appending: %s", path, strerror(e));
  }
  struct stat sb;
  char last = '\n';
  if (fstat(l->fd, &sb) != 0 ||
      (sb.st_size > 0 && pread(l->fd, &last, 1, sb.st_size - 1) != 1)) {
    int e = errno;
    wrn_jsonl_close(l);
    return wrn_fail(WRN_STATUS_IO, "log: cannot read the end of '%s': %s", path, strerror(e));
  }
  if (last != '\n' && trim) {
    off_t end = 0;
    if (whole_lines_end(l->fd, sb.st_size, &end) != 0 || ftruncate(l->fd, end) != 0 ||
        fsync(l->fd) != 0) {
      int e = errno;
      wrn_jsonl_close(l);
      return wrn_fail(WRN_STATUS_IO, "log: cannot cut the partial last line of '%s': %s", path,
                      strerror(e));
    }
    if (cut) *cut = (size_t)(sb.st_size - end);
  } else if (last != '\n' && (write_all(l->fd, "\n", 1) != WRN_OK || fsync(l->fd) != 0)) {
    int e = errno;
    wrn_jsonl_close(l);
    return wrn_fail(WRN_STATUS_IO, "log: cannot end the partial last line of '%s': %s", path,
                    strerror(e));
  }
  *out = l;
  return WRN_OK;
}

wrn_status wrn_jsonl_open(wrn_jsonl **out, const char *path) {
  return jsonl_open(out, path, 0, NULL);
}

wrn_status wrn_jsonl_open_trim(wrn_jsonl **out, const char *path, size_t *cut) {
  return jsonl_open(out, path, 1, cut);
}

wrn_status wrn_jsonl_append_line(wrn_jsonl *l, const char *text) {
  if (!l || !text)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_jsonl_append_line: %s is NULL",
                    !l ? "l" : "text");
  size_t n = strlen(text);
  if (memchr(text, '\n', n))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "log: a record for '%s' holds a newline",
                    l->path);
  /* Text and newline go out in one write() so that concurrent appenders cannot interleave
   * inside a line; the copy is small next to the fsync. */
  char *buf = malloc(n + 1);
  if (!buf) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_jsonl_append: no memory");
  memcpy(buf, text, n);
  buf[n] = '\n';
  struct stat sb;
  off_t before = fstat(l->fd, &sb) == 0 ? sb.st_size : -1;
  const char *failed = NULL;
  if (write_all(l->fd, buf, n + 1) != WRN_OK) failed = "write";
  else if (fsync(l->fd) != 0) failed = "fsync";
  int e = errno;
  free(buf);
  if (failed) {
    /* Take the partial record back so that the file holds only whole lines. */
    int cut = before >= 0 && ftruncate(l->fd, before) == 0;
    return wrn_fail(WRN_STATUS_IO, "log: %s to '%s' failed: %s; the record was %s", failed,
                    l->path, strerror(e), cut ? "removed again" : "possibly left partial");
  }
  return WRN_OK;
}

wrn_status wrn_jsonl_append(wrn_jsonl *l, const wrn_json *obj, const char **line) {
  if (line) *line = NULL;
  if (!l || !obj)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_jsonl_append: %s is NULL", !l ? "l" : "obj");
  const char *text = wrn_json_text(obj);
  wrn_status s = wrn_jsonl_append_line(l, text);
  if (s == WRN_OK && line) *line = text;
  return s;
}

void wrn_jsonl_close(wrn_jsonl *l) {
  if (!l) return;
  if (l->fd >= 0 && l->path) close(l->fd);
  free(l->path);
  free(l);
}
