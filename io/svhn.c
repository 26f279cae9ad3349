/* SVHN (Netzer et al. 2011), format 2 (cropped 32x32 digits): train_32x32.mat, test_32x32.mat
 * and extra_32x32.mat, MATLAB files holding X (32x32x3xN uint8, column-major: row, column,
 * channel, image) and y (N labels 1..10, 10 meaning the digit 0), read with libmatio. The
 * images are read in slabs and turned into the [n][c][h][w] layout of wrn_split; labels
 * become 0..9 (the digit). */
#include "io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SVHN_IMG 3072 /* 3 x 32 x 32 */
#define SVHN_TRY(expr)                                                                      \
  do {                                                                                      \
    wrn_status svhn_try_s_ = (expr);                                                        \
    if (svhn_try_s_ != WRN_OK) return svhn_try_s_;                                          \
  } while (0)

#ifndef WRN_HAVE_MATIO

int wrn_svhn_available(void) { return 0; }

wrn_status wrn_svhn_open(wrn_dataset *ds, const char *dir, const wrn_dataset_options *o) {
  (void)ds, (void)o;
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                  "SVHN ('%s'): this wrn was built without libmatio (Debian: libmatio-dev), "
                  "which reads the .mat files; rebuild with it installed",
                  dir ? dir : "");
}

#else

#include <matio.h>

int wrn_svhn_available(void) { return 1; }

typedef struct svhn_file {
  char path[4096];
  mat_t *mat;
  matvar_t *x, *y; /* headers only (Mat_VarReadInfo) */
  size_t n;
} svhn_file;

static void svhn_close(svhn_file *f) {
  if (f->x) Mat_VarFree(f->x);
  if (f->y) Mat_VarFree(f->y);
  if (f->mat) Mat_Close(f->mat);
  f->x = f->y = NULL;
  f->mat = NULL;
}

static void dims_str(const matvar_t *v, char *out, size_t n) {
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < v->rank && o < n; i++)
    o += (size_t)snprintf(out + o, n - o, "%s%zu", i ? "x" : "", v->dims[i]);
}

static const char *version_name(enum mat_ft v) {
  return v == MAT_FT_MAT73 ? "v7.3 (HDF5)" : v == MAT_FT_MAT5 ? "v5" : v == MAT_FT_MAT4 ? "v4" : "unknown";
}

static uint32_t get_u32(const unsigned char *b, int swap) {
  uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return swap ? (v >> 24) | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24 : v;
}

/* libmatio sizes its buffers from the tags' byte counts before it reads what they count (a
 * name of 4 GiB in a file of 700 bytes). For a v5 file, checks first that every top-level
 * element fits in the file and that the tags of an uncompressed matrix's parts (flags,
 * dims, name) fit in the matrix; other versions are left to libmatio. */
static wrn_status svhn_check_tags(const char *path, size_t file_size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return wrn_fail(WRN_STATUS_IO, "SVHN: cannot open '%s': %s", path, strerror(errno));
  unsigned char h[128], t[8];
  wrn_status s = WRN_OK;
  if (file_size < 128 || fread(h, 1, 128, fp) != 128) goto done; /* libmatio says why */
  const int swap = h[126] == 'M' && h[127] == 'I';
  if (!swap && !(h[126] == 'I' && h[127] == 'M')) goto done;
  const unsigned version = swap ? (unsigned)h[124] << 8 | h[125] : (unsigned)h[125] << 8 | h[124];
  if (version != 0x0100) goto done; /* v7.3 (HDF5) */
  for (size_t at = 128; at + 8 <= file_size && s == WRN_OK;) {
    if (fseek(fp, (long)at, SEEK_SET) != 0 || fread(t, 1, 8, fp) != 8) break;
    const uint32_t type = get_u32(t, swap), nbytes = get_u32(t + 4, swap);
    if (type >> 16) { /* a small element: its data packed in the tag */
      at += 8;
      continue;
    }
    if (nbytes > file_size - at - 8) {
      s = wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': an element at byte %zu claims %u bytes, "
                   "past the end of the file (%zu bytes); truncated or damaged", path, at,
                   (unsigned)nbytes, file_size);
      break;
    }
    if (type == 14) { /* miMATRIX: array flags, dims, name, then the data */
      size_t in = 0;
      for (int part = 0; part < 3 && in + 8 <= nbytes && s == WRN_OK; part++) {
        if (fseek(fp, (long)(at + 8 + in), SEEK_SET) != 0 || fread(t, 1, 8, fp) != 8) break;
        const uint32_t pt = get_u32(t, swap), pn = get_u32(t + 4, swap);
        const size_t len = pt >> 16 ? 8 : 8 + (((size_t)pn + 7) & ~(size_t)7);
        if (!(pt >> 16) && pn > nbytes - in - 8)
          s = wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': the matrix at byte %zu has a part of "
                       "%u bytes, more than the matrix holds (%u bytes); damaged file", path,
                       at, (unsigned)pn, (unsigned)nbytes);
        in += len;
      }
    }
    at += 8 + (size_t)nbytes;
  }
done:
  fclose(fp);
  return s;
}

/* Opens a file and checks X and y: names, types, dims and that they agree on N. */
static wrn_status svhn_probe(svhn_file *f, const char *dir, const char *name) {
  memset(f, 0, sizeof *f);
  int k = snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
  if (k < 0 || (size_t)k >= sizeof f->path)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "SVHN: path '%s/%s' is too long", dir, name);
  struct stat st;
  if (stat(f->path, &st) != 0) {
    int e = errno;
    return wrn_fail(WRN_STATUS_IO, "SVHN: '%s' %s; expected train_32x32.mat and "
                    "test_32x32.mat (and extra_32x32.mat for --svhn-extra on) from "
                    "http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)",
                    f->path, e == ENOENT ? "is missing" : strerror(e));
  }
  if (!S_ISREG(st.st_mode))
    return wrn_fail(WRN_STATUS_IO, "SVHN: '%s' is not a regular file", f->path);
  SVHN_TRY(svhn_check_tags(f->path, (size_t)st.st_size));
  f->mat = Mat_Open(f->path, MAT_ACC_RDONLY);
  if (!f->mat)
    return wrn_fail(WRN_STATUS_FORMAT,
                    "SVHN: '%s' is not a MATLAB file libmatio can read (truncated, another "
                    "format, or a v7.3/HDF5 file and this libmatio has no HDF5 support)",
                    f->path);
  const enum mat_ft ver = Mat_GetVersion(f->mat);
  f->x = Mat_VarReadInfo(f->mat, "X");
  if (!f->x) {
    Mat_Rewind(f->mat);
    return wrn_fail(WRN_STATUS_FORMAT,
                    "SVHN: '%s' (MATLAB %s) has no variable 'X' (the 32x32x3xN images); "
                    "is it the cropped-digits format 2 file?",
                    f->path, version_name(ver));
  }
  Mat_Rewind(f->mat);
  f->y = Mat_VarReadInfo(f->mat, "y");
  if (!f->y)
    return wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s' has no variable 'y' (the N labels 1..10)",
                    f->path);
  char d[96];
  dims_str(f->x, d, sizeof d);
  if (f->x->rank != 4 || f->x->dims[0] != 32 || f->x->dims[1] != 32 || f->x->dims[2] != 3 ||
      f->x->dims[3] < 1)
    return wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': X is %s, expected 32x32x3xN", f->path, d);
  if (f->x->class_type != MAT_C_UINT8 || f->x->isComplex)
    return wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': X is not a real uint8 array (class %d)",
                    f->path, (int)f->x->class_type);
  f->n = f->x->dims[3];
  /* What X claims against what the file can hold: raw, or deflated (at most 1032:1). */
  const size_t fsize = (size_t)st.st_size, ratio = f->x->compression == MAT_COMPRESSION_NONE ? 1 : 1032;
  if (f->n > fsize * ratio / SVHN_IMG + 1)
    return wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': X claims %zu images, more than a file of "
                    "%zu bytes holds; truncated or damaged", f->path, f->n, fsize);
  size_t yn = 1;
  for (int i = 0; i < f->y->rank; i++) yn *= f->y->dims[i];
  dims_str(f->y, d, sizeof d);
  if (f->y->rank != 2 || (f->y->dims[0] != 1 && f->y->dims[1] != 1) || yn != f->n)
    return wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': y is %s, expected %zux1 (one label per "
                    "image of X)", f->path, d, f->n);
  if (f->y->isComplex || f->y->class_type == MAT_C_CHAR || f->y->class_type == MAT_C_CELL ||
      f->y->class_type == MAT_C_STRUCT || f->y->class_type == MAT_C_SPARSE)
    return wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': y is not a real numeric array", f->path);
  return WRN_OK;
}

/* The first `take` labels as 0..9. */
static wrn_status svhn_labels(svhn_file *f, size_t take, int32_t *out) {
  double *y = malloc(f->n * sizeof *y);
  if (!y) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "SVHN: no memory for the labels of '%s'", f->path);
  /* Read as stored, then converted: matio reads into the variable's own class. */
  Mat_Rewind(f->mat);
  matvar_t *v = Mat_VarRead(f->mat, "y");
  wrn_status s = WRN_OK;
  if (!v || !v->data) {
    s = wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': reading y failed (truncated file?)", f->path);
  } else {
    for (size_t i = 0; i < f->n; i++) {
      const char *p = (const char *)v->data;
      switch (v->class_type) {
      case MAT_C_DOUBLE: y[i] = ((const double *)(const void *)p)[i]; break;
      case MAT_C_SINGLE: y[i] = ((const float *)(const void *)p)[i]; break;
      case MAT_C_UINT8: y[i] = ((const uint8_t *)(const void *)p)[i]; break;
      case MAT_C_INT8: y[i] = ((const int8_t *)(const void *)p)[i]; break;
      case MAT_C_UINT16: y[i] = ((const uint16_t *)(const void *)p)[i]; break;
      case MAT_C_INT16: y[i] = ((const int16_t *)(const void *)p)[i]; break;
      case MAT_C_UINT32: y[i] = ((const uint32_t *)(const void *)p)[i]; break;
      case MAT_C_INT32: y[i] = ((const int32_t *)(const void *)p)[i]; break;
      case MAT_C_UINT64: y[i] = (double)((const uint64_t *)(const void *)p)[i]; break;
      case MAT_C_INT64: y[i] = (double)((const int64_t *)(const void *)p)[i]; break;
      default: y[i] = -1; break;
      }
    }
    for (size_t i = 0; i < take && s == WRN_OK; i++) {
      if (!(y[i] >= 1 && y[i] <= 10 && y[i] == (double)(int)y[i]))
        s = wrn_fail(WRN_STATUS_FORMAT,
                     "SVHN: '%s': label %zu is %g, outside 1..10 (10 is the digit 0)", f->path,
                     i + 1, y[i]);
      else out[i] = (int)y[i] % 10;
    }
  }
  if (v) Mat_VarFree(v);
  free(y);
  return s;
}

/* The first `take` images, MATLAB's column-major 32x32x3 turned into [c][h][w]. */
static wrn_status svhn_images(svhn_file *f, size_t take, uint8_t *out) {
  enum { SLAB = 1024 };
  uint8_t *buf = malloc((size_t)SLAB * SVHN_IMG);
  if (!buf) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "SVHN: no memory to read '%s'", f->path);
  wrn_status s = WRN_OK;
  for (size_t done = 0; done < take && s == WRN_OK;) {
    size_t k = take - done < SLAB ? take - done : SLAB;
    int start[4] = {0, 0, 0, (int)done}, stride[4] = {1, 1, 1, 1}, edge[4] = {32, 32, 3, (int)k};
    if (Mat_VarReadData(f->mat, f->x, buf, start, stride, edge) != 0) {
      s = wrn_fail(WRN_STATUS_FORMAT, "SVHN: '%s': reading images %zu..%zu of X failed "
                   "(truncated file?)", f->path, done + 1, done + k);
      break;
    }
    for (size_t i = 0; i < k; i++) {
      const uint8_t *src = buf + i * SVHN_IMG;
      uint8_t *dst = out + (done + i) * SVHN_IMG;
      for (int c = 0; c < 3; c++)
        for (int w = 0; w < 32; w++)
          for (int h = 0; h < 32; h++) dst[c * 1024 + h * 32 + w] = src[c * 1024 + w * 32 + h];
    }
    done += k;
  }
  free(buf);
  return s;
}

static wrn_status load_split(wrn_split *sp, svhn_file *files, int nfiles, size_t limit) {
  size_t total = 0;
  for (int i = 0; i < nfiles; i++) total += files[i].n;
  size_t n = limit && limit < total ? limit : total;
  sp->c = 3, sp->h = 32, sp->w = 32;
  sp->n_classes = 10;
  sp->images = malloc(n * SVHN_IMG);
  sp->labels = malloc(n * sizeof *sp->labels);
  if (!sp->images || !sp->labels)
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "SVHN: no host memory for %zu images (%zu bytes)",
                    n, n * (size_t)SVHN_IMG);
  size_t at = 0;
  for (int i = 0; i < nfiles && at < n; i++) {
    size_t take = files[i].n < n - at ? files[i].n : n - at;
    SVHN_TRY(svhn_labels(&files[i], take, sp->labels + at));
    SVHN_TRY(svhn_images(&files[i], take, sp->images + at * SVHN_IMG));
    at += take;
  }
  sp->n = n;
  return WRN_OK;
}

wrn_status wrn_svhn_open(wrn_dataset *ds, const char *dir, const wrn_dataset_options *o) {
  svhn_file f[3];
  memset(f, 0, sizeof f);
  const int extra = o->svhn_extra;
  wrn_status s = svhn_probe(&f[0], dir, "train_32x32.mat");
  if (s == WRN_OK && extra) s = svhn_probe(&f[1], dir, "extra_32x32.mat");
  if (s == WRN_OK) s = svhn_probe(&f[2], dir, "test_32x32.mat");
  if (s == WRN_OK) {
    ds->kind = WRN_DATASET_SVHN;
    ds->n_classes = 10;
    s = load_split(&ds->train, f, extra ? 2 : 1, o->train_limit);
  }
  if (s == WRN_OK) s = load_split(&ds->test, &f[2], 1, o->test_limit);
  for (int i = 0; i < 3; i++) svhn_close(&f[i]);
  return s;
}

#endif
