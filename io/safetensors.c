/* The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of
 * JSON describing each tensor's dtype, shape and byte range, then the data. The writer
 * emits what the reference implementation emits for the same tensors, so files compare
 * byte for byte; the reader applies the reference's validation rules, with the strict JSON
 * parser of io/json.c that says what is wrong and at which byte. */
#include "wrn_io.h"
#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER 100000000u /* the reference implementation's limit */

static const struct {
  const char *name;
  size_t size;
} dtypes[WRN_ST_DTYPE_COUNT] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

const char *wrn_st_dtype_name(wrn_st_dtype t) {
  return (unsigned)t < WRN_ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

size_t wrn_st_dtype_size(wrn_st_dtype t) {
  return (unsigned)t < WRN_ST_DTYPE_COUNT ? dtypes[t].size : 0;
}

/* ---------------------------------------------------------------- shared helpers */

static int utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s);
  for (size_t i = 0; i < n;) {
    size_t k = wrn_io_utf8_seq(p + i, n - i);
    if (!k) return 0;
    i += k;
  }
  return 1;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= sizeof tmp) {
    b->oom = 1;
    return;
  }
  sb_put(b, tmp, (size_t)k);
}

/* A JSON string as serde_json writes it: quote, backslash and control characters escaped
 * (\b \f \n \r \t, else \u00xx in lower-case hex), everything else verbatim. */
static void sb_json_string(sbuf *b, const char *s) {
  static const char hex[] = "0123456789abcdef";
  sb_put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned c = *p;
    char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      default:
        if (c >= 0x20) {
          sb_put(b, p, 1);
          continue;
        }
        esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
        n = 6;
    }
    sb_put(b, esc, n);
  }
  sb_put(b, "\"", 1);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ---------------------------------------------------------------- writer */

typedef struct st_entry {
  char *name;
  wrn_st_dtype dtype;
  int ndim;
  int64_t *shape;
  const void *data;
  size_t nbytes;
} st_entry;

struct wrn_st_writer {
  st_entry *t;
  int n, cap;
  char **keys, **vals;
  int nm, capm;
};

wrn_status wrn_st_writer_new(wrn_st_writer **out) {
  if (!out) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_st_writer_new: out is NULL");
  *out = calloc(1, sizeof **out);
  return *out ? WRN_OK : wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_st_writer_new: no memory");
}

void wrn_st_writer_free(wrn_st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->t[i].name), free(w->t[i].shape);
  for (int i = 0; i < w->nm; i++) free(w->keys[i]), free(w->vals[i]);
  free(w->t), free(w->keys), free(w->vals), free(w);
}

wrn_status wrn_st_writer_add(wrn_st_writer *w, const char *name, wrn_st_dtype dtype, int ndim,
                             const int64_t *shape, const void *data) {
  const char *fn = "wrn_st_writer_add";
  if (!w || !name)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", fn, !w ? "w" : "name");
  if (!*name || strcmp(name, "__metadata__") == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor name '%s' is not allowed", fn, name);
  if (!utf8_valid(name))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor name '%s' is not valid UTF-8", fn,
                    name);
  if ((unsigned)dtype >= WRN_ST_DTYPE_COUNT)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has unknown dtype %d", fn,
                    name, (int)dtype);
  if (ndim < 0 || ndim > 64 || (ndim > 0 && !shape))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has bad ndim %d%s", fn, name,
                    ndim, ndim > 0 && !shape ? " with a NULL shape" : "");
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' dimension %d is %lld", fn,
                      name, d, (long long)shape[d]);
    if (shape[d] > 0 && numel > SIZE_MAX / (size_t)shape[d] / dtypes[dtype].size)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' is too large", fn, name);
    numel *= (size_t)shape[d];
  }
  size_t nbytes = numel * dtypes[dtype].size;
  if (nbytes && !data)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' has NULL data", fn, name);
  for (int i = 0; i < w->n; i++)
    if (strcmp(w->t[i].name, name) == 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: tensor '%s' was already added", fn, name);
  if (w->n == w->cap) {
    int cap = w->cap ? 2 * w->cap : 16;
    st_entry *t = realloc(w->t, (size_t)cap * sizeof *t);
    if (!t) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", fn);
    w->t = t, w->cap = cap;
  }
  st_entry *e = &w->t[w->n];
  e->name = dup_str(name);
  e->shape = malloc((ndim ? (size_t)ndim : 1) * sizeof *e->shape);
  if (!e->name || !e->shape) {
    free(e->name), free(e->shape);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", fn);
  }
  if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
  e->dtype = dtype, e->ndim = ndim, e->data = data, e->nbytes = nbytes;
  w->n++;
  return WRN_OK;
}

wrn_status wrn_st_writer_meta(wrn_st_writer *w, const char *key, const char *value) {
  const char *fn = "wrn_st_writer_meta";
  if (!w || !key || !value)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                    !w ? "w" : !key ? "key" : "value");
  if (!utf8_valid(key) || !utf8_valid(value))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: key or value of '%s' is not valid UTF-8",
                    fn, key);
  for (int i = 0; i < w->nm; i++)
    if (strcmp(w->keys[i], key) == 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: key '%s' was already added", fn, key);
  if (w->nm == w->capm) {
    int cap = w->capm ? 2 * w->capm : 8;
    char **k = realloc(w->keys, (size_t)cap * sizeof *k);
    if (k) w->keys = k;
    char **v = realloc(w->vals, (size_t)cap * sizeof *v);
    if (v) w->vals = v;
    if (!k || !v) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", fn);
    w->capm = cap;
  }
  char *k = dup_str(key), *v = dup_str(value);
  if (!k || !v) {
    free(k), free(v);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", fn);
  }
  w->keys[w->nm] = k, w->vals[w->nm] = v, w->nm++;
  return WRN_OK;
}

/* The reference implementation's order: descending dtype (its enum is in alignment order),
 * then name, which keeps every tensor's offset aligned to its element size. */
static int cmp_write_order(const void *a, const void *b) {
  const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
  if (x->dtype != y->dtype) return x->dtype > y->dtype ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Folder part of a path, for the temporary file and the folder fsync. */
static void dir_of(const char *path, char *out, size_t n) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(out, n, ".");
  else if (slash == path) snprintf(out, n, "/");
  else snprintf(out, n, "%.*s", (int)(slash - path), path);
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r = fsync(fd);
  /* Some file systems cannot fsync a folder; the rename is then as durable as it gets. */
  if (r != 0 && (errno == EINVAL || errno == ENOTSUP)) r = 0;
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

wrn_status wrn_st_writer_write(wrn_st_writer *w, const char *path) {
  const char *fn = "wrn_st_writer_write";
  if (!w || !path || !*path)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: %s", fn, !w ? "w is NULL" : "no path");
  const st_entry **order = malloc((w->n ? (size_t)w->n : 1) * sizeof *order);
  if (!order) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory", fn);
  for (int i = 0; i < w->n; i++) order[i] = &w->t[i];
  qsort(order, (size_t)w->n, sizeof *order, cmp_write_order);

  sbuf h = {0};
  sb_str(&h, "{");
  if (w->nm) {
    sb_str(&h, "\"__metadata__\":{");
    for (int i = 0; i < w->nm; i++) {
      if (i) sb_str(&h, ",");
      sb_json_string(&h, w->keys[i]);
      sb_str(&h, ":");
      sb_json_string(&h, w->vals[i]);
    }
    sb_str(&h, "}");
  }
  size_t off = 0;
  for (int k = 0; k < w->n; k++) {
    const st_entry *e = order[k];
    if (k || w->nm) sb_str(&h, ",");
    sb_json_string(&h, e->name);
    sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dtypes[e->dtype].name);
    for (int d = 0; d < e->ndim; d++) sb_printf(&h, d ? ",%lld" : "%lld", (long long)e->shape[d]);
    sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
    off += e->nbytes;
  }
  sb_str(&h, "}");
  while (h.len % 8) sb_str(&h, " ");
  if (h.oom) {
    free(h.p), free(order);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory for the header of '%s'", fn, path);
  }

  char dir[4096], tmp[4200];
  dir_of(path, dir, sizeof dir);
  static unsigned counter;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int e = errno;
    free(h.p), free(order);
    return wrn_fail(WRN_STATUS_IO, "%s: cannot create a temporary file next to '%s': %s", fn, path,
                    strerror(e));
  }
  FILE *fp = fdopen(fd, "wb");
  const char *failed = NULL;
  int err = 0;
  if (!fp) {
    failed = "fdopen", err = errno;
    close(fd);
  } else {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if (fwrite(len8, 1, 8, fp) != 8 || fwrite(h.p, 1, h.len, fp) != h.len) failed = "write";
    for (int k = 0; k < w->n && !failed; k++) {
      const st_entry *e = order[k];
      if (e->nbytes && fwrite(e->data, 1, e->nbytes, fp) != e->nbytes) failed = "write";
    }
    if (!failed && fflush(fp) != 0) failed = "write";
    if (failed) err = errno;
    if (!failed && fsync(fileno(fp)) != 0) failed = "fsync", err = errno;
    if (fclose(fp) != 0 && !failed) failed = "close", err = errno;
  }
  if (!failed && rename(tmp, path) != 0) failed = "rename", err = errno;
  free(h.p), free(order);
  if (failed) {
    unlink(tmp);
    return wrn_fail(WRN_STATUS_IO, "%s: writing '%s' failed at %s: %s; the file was not changed",
                    fn, path, failed, strerror(err));
  }
  if (fsync_dir(dir) != 0)
    return wrn_fail(WRN_STATUS_IO,
                    "%s: '%s' was written, but fsync of its folder '%s' failed (%s): the new "
                    "file may not survive a power loss",
                    fn, path, dir, strerror(errno));
  return WRN_OK;
}

/* ---------------------------------------------------------------- reader */

struct wrn_st_file {
  char *path;
  wrn_st_tensor *t; /* [n] in offset order */
  int n;
  const wrn_st_tensor **by_name; /* [n] sorted by name */
  char **keys, **vals;
  int nm;
  unsigned char *data;
  size_t data_size;
};

void wrn_st_close(wrn_st_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) free((char *)f->t[i].name), free((int64_t *)f->t[i].shape);
  for (int i = 0; i < f->nm; i++) free(f->keys[i]), free(f->vals[i]);
  free(f->t), free(f->by_name), free(f->keys), free(f->vals), free(f->data), free(f->path);
  free(f);
}

static wrn_status fmt_err(const wrn_st_file *f, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static wrn_status fmt_err(const wrn_st_file *f, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return wrn_fail(WRN_STATUS_FORMAT, "safetensors '%s': %s", f->path, msg);
}

typedef struct range {
  uint64_t begin, end;
  int idx;
} range;

static int cmp_range(const void *a, const void *b) {
  const range *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp((*(const wrn_st_tensor *const *)a)->name, (*(const wrn_st_tensor *const *)b)->name);
}

/* Turns the parsed header into tensors and metadata, checking each entry and the byte
 * ranges against the data area. */
static wrn_status interpret(wrn_st_file *f, const struct wrn_jv *root) {
  if (root->type != WRN_JV_OBJECT) return fmt_err(f, "the header is not a JSON object");
  int nt = 0;
  for (size_t k = 0; k < root->n; k++) nt += strcmp(root->keys[k], "__metadata__") != 0;
  f->t = calloc(nt ? (size_t)nt : 1, sizeof *f->t);
  range *r = malloc((nt ? (size_t)nt : 1) * sizeof *r);
  if (!f->t || !r) {
    free(r);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "safetensors '%s': no memory", f->path);
  }
  wrn_status st = WRN_OK;
  for (size_t k = 0; k < root->n && st == WRN_OK; k++) {
    const char *name = root->keys[k];
    const struct wrn_jv *v = &root->items[k];
    if (strcmp(name, "__metadata__") == 0) {
      if (v->type == WRN_JV_NULL) continue;
      if (v->type != WRN_JV_OBJECT) {
        st = fmt_err(f, "\"__metadata__\" is not an object (byte %zu of the header)", v->pos);
        break;
      }
      f->keys = calloc(v->n ? v->n : 1, sizeof *f->keys);
      f->vals = calloc(v->n ? v->n : 1, sizeof *f->vals);
      if (!f->keys || !f->vals) {
        st = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "safetensors '%s': no memory", f->path);
        break;
      }
      for (size_t m = 0; m < v->n; m++) {
        if (v->items[m].type != WRN_JV_STRING) {
          st = fmt_err(f, "\"__metadata__\" entry '%s' is not a string (byte %zu of the header)",
                       v->keys[m], v->items[m].pos);
          break;
        }
        f->keys[m] = dup_str(v->keys[m]);
        f->vals[m] = dup_str(v->items[m].str);
        f->nm = (int)m + 1;
        if (!f->keys[m] || !f->vals[m]) {
          st = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "safetensors '%s': no memory", f->path);
          break;
        }
      }
      continue;
    }
    if (v->type != WRN_JV_OBJECT) {
      st = fmt_err(f, "tensor '%s' is not described by an object (byte %zu of the header)", name,
                   v->pos);
      break;
    }
    const struct wrn_jv *dt = wrn_io_json_get(v, "dtype"), *sh = wrn_io_json_get(v, "shape"),
                        *of = wrn_io_json_get(v, "data_offsets");
    if (!dt || !sh || !of) {
      st = fmt_err(f, "tensor '%s' has no \"%s\"", name, !dt ? "dtype" : !sh ? "shape" : "data_offsets");
      break;
    }
    int dtype = -1;
    for (int d = 0; dt->type == WRN_JV_STRING && d < WRN_ST_DTYPE_COUNT; d++)
      if (strcmp(dt->str, dtypes[d].name) == 0) dtype = d;
    if (dtype < 0) {
      st = fmt_err(f, "tensor '%s' has unknown dtype %s%s%s", name, dt->type == WRN_JV_STRING ? "'" : "",
                   dt->type == WRN_JV_STRING ? dt->str : "(not a string)", dt->type == WRN_JV_STRING ? "'" : "");
      break;
    }
    if (sh->type != WRN_JV_ARRAY) {
      st = fmt_err(f, "tensor '%s' shape is not an array", name);
      break;
    }
    if (of->type != WRN_JV_ARRAY || of->n != 2 || !of->items[0].is_uint || !of->items[1].is_uint) {
      st = fmt_err(f, "tensor '%s' data_offsets is not [begin, end] with non-negative integers "
                      "(byte %zu of the header)",
                   name, of->pos);
      break;
    }
    wrn_st_tensor *t = &f->t[f->n];
    int64_t *shape = malloc((sh->n ? sh->n : 1) * sizeof *shape);
    t->name = dup_str(name);
    t->shape = shape;
    f->n++;
    if (!shape || !t->name) {
      st = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "safetensors '%s': no memory", f->path);
      break;
    }
    size_t esize = dtypes[dtype].size, numel = 1;
    int overflow = 0;
    for (size_t d = 0; d < sh->n && st == WRN_OK; d++) {
      const struct wrn_jv *e = &sh->items[d];
      if (!e->is_uint || e->u > (uint64_t)INT64_MAX) {
        st = fmt_err(f, "tensor '%s' shape entry %zu is not a non-negative integer", name, d);
        break;
      }
      shape[d] = (int64_t)e->u;
      if (e->u && numel > SIZE_MAX / e->u / esize) overflow = 1;
      else numel *= (size_t)e->u;
    }
    if (st != WRN_OK) break;
    t->dtype = (wrn_st_dtype)dtype;
    t->ndim = (int)sh->n;
    uint64_t b = of->items[0].u, e = of->items[1].u;
    if (overflow) {
      st = fmt_err(f, "tensor '%s' shape is too large", name);
      break;
    }
    t->numel = numel;
    t->nbytes = numel * esize;
    if (e < b) {
      st = fmt_err(f, "tensor '%s' data_offsets [%llu, %llu] end before they begin", name,
                   (unsigned long long)b, (unsigned long long)e);
      break;
    }
    if (e - b != t->nbytes) {
      st = fmt_err(f, "tensor '%s': dtype %s and its shape need %zu bytes, but data_offsets "
                      "[%llu, %llu] hold %llu",
                   name, dtypes[dtype].name, t->nbytes, (unsigned long long)b,
                   (unsigned long long)e, (unsigned long long)(e - b));
      break;
    }
    if (e > f->data_size) {
      st = fmt_err(f, "tensor '%s' data_offsets [%llu, %llu] run past the end of the data area "
                      "(%zu bytes; the file is truncated?)",
                   name, (unsigned long long)b, (unsigned long long)e, f->data_size);
      break;
    }
    r[f->n - 1] = (range){b, e, f->n - 1};
  }
  if (st == WRN_OK) {
    /* The reference implementation requires the tensors to tile the data area exactly. */
    qsort(r, (size_t)f->n, sizeof *r, cmp_range);
    uint64_t at = 0;
    for (int k = 0; k < f->n && st == WRN_OK; k++) {
      const char *name = f->t[r[k].idx].name;
      if (r[k].begin < at)
        st = fmt_err(f, "tensor '%s' data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]",
                     name, (unsigned long long)r[k].begin, (unsigned long long)r[k].end,
                     f->t[r[k - 1].idx].name, (unsigned long long)r[k - 1].begin,
                     (unsigned long long)r[k - 1].end);
      else if (r[k].begin > at)
        st = fmt_err(f, "bytes %llu..%llu of the data area belong to no tensor (gap before '%s')",
                     (unsigned long long)at, (unsigned long long)r[k].begin, name);
      at = r[k].end;
    }
    if (st == WRN_OK && at != f->data_size)
      st = fmt_err(f, "the tensors end at byte %llu of the data area, which has %zu bytes",
                   (unsigned long long)at, f->data_size);
  }
  if (st == WRN_OK) {
    /* offset order for wrn_st_at: permute the tensors by their sorted ranges */
    wrn_st_tensor *sorted = malloc((f->n ? (size_t)f->n : 1) * sizeof *sorted);
    f->by_name = malloc((f->n ? (size_t)f->n : 1) * sizeof *f->by_name);
    if (!sorted || !f->by_name) {
      free(sorted);
      st = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "safetensors '%s': no memory", f->path);
    } else {
      for (int k = 0; k < f->n; k++) {
        sorted[k] = f->t[r[k].idx];
        sorted[k].data = f->data + r[k].begin;
      }
      free(f->t);
      f->t = sorted;
      for (int k = 0; k < f->n; k++) f->by_name[k] = &f->t[k];
      qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    }
  }
  free(r);
  return st;
}

wrn_status wrn_st_open(wrn_st_file **out, const char *path) {
  if (!out || !path)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_st_open: %s is NULL", !out ? "out" : "path");
  *out = NULL;
  wrn_st_file *f = calloc(1, sizeof *f);
  if (!f || !(f->path = dup_str(path))) {
    free(f);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_st_open: no memory");
  }
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    int e = errno;
    wrn_st_close(f);
    return wrn_fail(WRN_STATUS_IO, "safetensors: cannot open '%s': %s", path, strerror(e));
  }
  wrn_status st = WRN_OK;
  char *header = NULL;
  struct wrn_jv root;
  memset(&root, 0, sizeof root);
  struct stat sb;
  unsigned char len8[8];
  uint64_t hlen = 0, size = 0;
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = wrn_fail(WRN_STATUS_IO, "safetensors: '%s' is not a readable regular file", path);
    goto done;
  }
  size = (uint64_t)sb.st_size;
  if (size < 8) {
    st = fmt_err(f, "the file has %llu bytes, fewer than the 8-byte header length",
                 (unsigned long long)size);
    goto done;
  }
  if (fread(len8, 1, 8, fp) != 8) {
    st = wrn_fail(WRN_STATUS_IO, "safetensors: cannot read '%s': %s", path, strerror(errno));
    goto done;
  }
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
  if (hlen == 0 || hlen > ST_MAX_HEADER) {
    st = hlen == 0 ? fmt_err(f, "header length 0: there is no header (corrupt file?)")
                   : fmt_err(f, "header length %llu is above the 100,000,000-byte limit "
                                "(corrupt file?)",
                             (unsigned long long)hlen);
    goto done;
  }
  if (hlen > size - 8) {
    st = fmt_err(f, "header length %llu runs past the end of the file (%llu bytes)",
                 (unsigned long long)hlen, (unsigned long long)size);
    goto done;
  }
  header = malloc((size_t)hlen);
  f->data_size = (size_t)(size - 8 - hlen);
  f->data = malloc(f->data_size ? f->data_size : 1);
  if (!header || !f->data) {
    st = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "safetensors: no memory to read '%s' (%llu bytes)",
                  path, (unsigned long long)size);
    goto done;
  }
  if (fread(header, 1, (size_t)hlen, fp) != hlen ||
      (f->data_size && fread(f->data, 1, f->data_size, fp) != f->data_size)) {
    st = wrn_fail(WRN_STATUS_IO, "safetensors: reading '%s' failed: %s", path,
                  ferror(fp) ? strerror(errno) : "the file became shorter");
    goto done;
  }
  char ctx[4200];
  snprintf(ctx, sizeof ctx, "safetensors '%s': bad JSON header", path);
  if ((st = wrn_io_json_parse(&root, header, (size_t)hlen, ctx, "the header", 8, 1)) != WRN_OK)
    goto done;
  st = interpret(f, &root);
done:
  wrn_io_json_clear(&root);
  free(header);
  fclose(fp);
  if (st != WRN_OK) {
    wrn_st_close(f);
    return st;
  }
  *out = f;
  return WRN_OK;
}

int wrn_st_count(const wrn_st_file *f) { return f ? f->n : 0; }

const wrn_st_tensor *wrn_st_at(const wrn_st_file *f, int i) {
  return f && i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const wrn_st_tensor *wrn_st_find(const wrn_st_file *f, const char *name) {
  if (!f || !name) return NULL;
  int lo = 0, hi = f->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(name, f->by_name[mid]->name);
    if (c == 0) return f->by_name[mid];
    if (c < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

static void shape_str(char *out, size_t n, int ndim, const int64_t *shape) {
  size_t at = 0;
  at += (size_t)snprintf(out, n, "[");
  for (int d = 0; d < ndim && at < n; d++)
    at += (size_t)snprintf(out + at, n - at, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (at < n) snprintf(out + at, n - at, "]");
}

wrn_status wrn_st_read(const wrn_st_file *f, const char *name, wrn_st_dtype dtype, int ndim,
                       const int64_t *shape, void *dst, size_t dst_bytes) {
  if (!f || !name || (!dst && dst_bytes))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_st_read: %s is NULL",
                    !f ? "f" : !name ? "name" : "dst");
  const wrn_st_tensor *t = wrn_st_find(f, name);
  if (!t) return wrn_fail(WRN_STATUS_FORMAT, "safetensors '%s' has no tensor '%s'", f->path, name);
  if (t->dtype != dtype)
    return wrn_fail(WRN_STATUS_FORMAT, "safetensors '%s': tensor '%s' is %s, expected %s", f->path,
                    name, wrn_st_dtype_name(t->dtype), wrn_st_dtype_name(dtype));
  if (ndim >= 0) {
    int same = ndim == t->ndim && (ndim == 0 || shape);
    for (int d = 0; same && d < ndim; d++) same = shape[d] == t->shape[d];
    if (!same) {
      char a[256], b[256];
      shape_str(a, sizeof a, t->ndim, t->shape);
      shape_str(b, sizeof b, shape ? ndim : 0, shape);
      return wrn_fail(WRN_STATUS_FORMAT, "safetensors '%s': tensor '%s' has shape %s, expected %s",
                      f->path, name, a, b);
    }
  }
  if (dst_bytes != t->nbytes)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_st_read: tensor '%s' in '%s' has %zu bytes, the destination %zu", name,
                    f->path, t->nbytes, dst_bytes);
  if (t->nbytes) memcpy(dst, t->data, t->nbytes);
  return WRN_OK;
}

const char *wrn_st_meta(const wrn_st_file *f, const char *key) {
  for (int i = 0; f && key && i < f->nm; i++)
    if (strcmp(f->keys[i], key) == 0) return f->vals[i];
  return NULL;
}

int wrn_st_meta_count(const wrn_st_file *f) { return f ? f->nm : 0; }

void wrn_st_meta_at(const wrn_st_file *f, int i, const char **key, const char **value) {
  int ok = f && i >= 0 && i < f->nm;
  if (key) *key = ok ? f->keys[i] : NULL;
  if (value) *value = ok ? f->vals[i] : NULL;
}
