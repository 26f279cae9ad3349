/* libwrn input/output: CIFAR data sets, a background batch loader, safetensors checkpoints,
 * JSON-lines logs and a JSON reader. Host code only; follows wrn.h's conventions (functions
 * return wrn_status, wrn_last_error() says which file and what is wrong, nothing exits). */
#ifndef WRN_IO_H
#define WRN_IO_H

#include <stddef.h>
#include <stdint.h>

#include "wrn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- numbers from text */

/* Strict numbers for flags and stored values: the whole string in plain decimal (an
 * optional leading '-' for signed and real values; no spaces, '+' signs, hexadecimal, inf
 * or nan), within [lo, hi]. 0 on success, -1 otherwise (*out unchanged). Reals take
 * "1", "0.5", ".5", "5e-4". */
int wrn_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int wrn_parse_u64(const char *s, uint64_t *out);
int wrn_parse_real(const char *s, double lo, double hi, double *out);

/* ---------------------------------------------------------------- data sets */

typedef enum wrn_dataset_kind {
  WRN_DATASET_AUTO = 0, /* detect from the files present */
  WRN_DATASET_CIFAR10 = 1,
  WRN_DATASET_CIFAR100 = 2,
  WRN_DATASET_SVHN = 3, /* needs libmatio at build time */
  WRN_DATASET_IMAGEFOLDER = 4 /* DIR/train and DIR/val image folders (wrn_imagefolder_open;
                                 wrn_dataset_open does not read them) */
} wrn_dataset_kind;

typedef enum wrn_labels {
  WRN_LABELS_FINE = 0,  /* CIFAR-100: 100 classes */
  WRN_LABELS_COARSE = 1 /* CIFAR-100: 20 superclasses */
} wrn_labels;

typedef struct wrn_dataset_options {
  wrn_dataset_kind kind;
  wrn_labels labels;  /* CIFAR-100 only */
  size_t train_limit; /* keep the first N training images; 0 keeps all */
  size_t test_limit;  /* same for the test split */
  int svhn_extra;     /* SVHN: 1 appends extra_32x32.mat to the training split */
} wrn_dataset_options;

/* One split in host memory. */
typedef struct wrn_split {
  uint8_t *images; /* [n][c][h][w], CIFAR order: R plane, G plane, B plane */
  int32_t *labels; /* [n] in 0 .. n_classes-1 */
  size_t n;
  int c, h, w; /* 3, 32, 32 */
  int n_classes;
} wrn_split;

typedef struct wrn_dataset {
  wrn_dataset_kind kind; /* the detected kind, never AUTO */
  int n_classes;
  wrn_split train, test;
} wrn_dataset;

/* Reads a CIFAR-10 folder (data_batch_1.bin .. data_batch_N.bin, N >= 1 consecutive, and
 * test_batch.bin), a CIFAR-100 folder (train.bin, test.bin) or an SVHN folder
 * (train_32x32.mat, test_32x32.mat, with svhn_extra extra_32x32.mat: MATLAB files of X
 * 32x32x3xN uint8 and y 1..10, 10 being the digit 0, which becomes label 0). opts may be
 * NULL (auto, fine labels, no limits, no extra). Checks every file's size against the
 * record size (SVHN: X's and y's names, types and dims) and every label read against the
 * class count. *ds is zeroed first; free with wrn_dataset_free. */
wrn_status wrn_dataset_open(wrn_dataset *ds, const char *dir, const wrn_dataset_options *opts);
void wrn_dataset_free(wrn_dataset *ds); /* safe on a zeroed or freed struct */
const char *wrn_dataset_kind_name(wrn_dataset_kind k); /* "auto", "cifar10", "cifar100", "svhn", "imagefolder" */
/* The kind a folder holds by its files (what AUTO would read), or AUTO when none fits. */
wrn_dataset_kind wrn_dataset_detect(const char *dir);
/* Parse option strings ("auto"/"cifar10"/"cifar100"/"svhn", "fine"/"coarse"); INVALID_ARGUMENT
 * with a message listing the accepted values otherwise. */
wrn_status wrn_dataset_kind_parse(const char *s, wrn_dataset_kind *out);
wrn_status wrn_labels_parse(const char *s, wrn_labels *out);

/* ---------------------------------------------------------------- image folders */

/* A folder in PyTorch's ImageFolder layout, root/<class>/<file>: classes are the
 * subfolders sorted by name (label = position), files sorted by name within each class;
 * names starting with '.' are ignored. Only the list is read here. */
typedef struct wrn_imagefolder wrn_imagefolder;
wrn_status wrn_imagefolder_open(wrn_imagefolder **out, const char *dir);
void wrn_imagefolder_free(wrn_imagefolder *f);
size_t wrn_imagefolder_count(const wrn_imagefolder *f);
int wrn_imagefolder_classes(const wrn_imagefolder *f);
const char *wrn_imagefolder_class_name(const wrn_imagefolder *f, int i);
const char *wrn_imagefolder_path(const wrn_imagefolder *f, size_t i); /* "<class>/<file>" */
int32_t wrn_imagefolder_label(const wrn_imagefolder *f, size_t i);

/* torchvision's ImageNet pipelines: train, RandomResizedCrop(size, scale, ratio) and a
 * horizontal flip drawn from Philox keyed by (seed, epoch, image index); eval, Resize(resize)
 * of the shorter side and CenterCrop(size). Output uint8 RGB planes [3][size][size]; the
 * ImageNet mean/std normalisation is the network's input step (wrn_augment). */
typedef struct wrn_image_pipeline {
  int train;
  int size, resize;            /* 224, 256 */
  double scale_lo, scale_hi;   /* 0.08, 1 */
  double ratio_lo, ratio_hi;   /* 3/4, 4/3 */
  uint64_t seed;
} wrn_image_pipeline;
wrn_image_pipeline wrn_image_pipeline_default(int train);
/* The crop of a w x h picture, in its pixels (x, y, cw, ch), and whether it is flipped. */
typedef struct wrn_image_box {
  double x, y, cw, ch;
  int flip;
} wrn_image_box;
void wrn_image_crop(const wrn_image_pipeline *p, int w, int h, uint64_t epoch, uint64_t index,
                    wrn_image_box *box);

/* A JPEG decoder (libjpeg-turbo), one per thread. Greyscale and CMYK pictures become RGB
 * (CMYK as PIL's convert("RGB")); the decode is scaled by 1/2, 1/4 or 1/8 when the crop stays
 * at least size x size. Without libjpeg-turbo at build time wrn_jpeg_new fails saying so. */
typedef struct wrn_jpeg wrn_jpeg;
int wrn_jpeg_available(void);
wrn_status wrn_jpeg_new(wrn_jpeg **out);
void wrn_jpeg_free(wrn_jpeg *j);
/* Decodes `path` through the pipeline into out[3][size][size]: FORMAT (naming the file) when
 * it is not a JPEG or is damaged (truncated included), IO when it cannot be read. */
wrn_status wrn_jpeg_load(wrn_jpeg *j, const char *path, const wrn_image_pipeline *p,
                         uint64_t epoch, uint64_t index, uint8_t *out);

/* Files that did not decode: how many, the first one and why. */
typedef struct wrn_image_skips {
  size_t skipped;
  char first_path[4096];
  char first_error[1024];
} wrn_image_skips;
/* Decodes images idx[0..n) of f on `threads` threads into images[kept][3][size][size] and
 * their labels (and, when kept_index is not NULL, their indices), in order; files that fail
 * are left out and counted in *skips (which accumulates across calls; NULL ignores them).
 * Fails only for what is not a bad file (memory, no decoder, an index out of range). */
wrn_status wrn_imagefolder_load(const wrn_imagefolder *f, const size_t *idx, int n,
                                const wrn_image_pipeline *p, uint64_t epoch, int threads,
                                uint8_t *images, int32_t *labels, uint32_t *kept_index,
                                int *kept, wrn_image_skips *skips);

/* ---------------------------------------------------------------- batch loader */

/* The order of an epoch: perm[0..n) is a permutation of 0..n-1, a Fisher-Yates shuffle
 * driven by Philox4x32-10 keyed by (seed, epoch). Depends on nothing else. */
void wrn_shuffle_order(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch);

typedef struct wrn_batch {
  const uint8_t *images;   /* [count][c][h][w] */
  const int32_t *labels;   /* [count] */
  const uint32_t *indices; /* [count] positions in the split */
  int count;               /* 0 at the end of the epoch */
  int64_t step;            /* index of this batch in the epoch */
} wrn_batch;

typedef struct wrn_loader wrn_loader;

/* A loader over `split` (not copied: it must outlive the loader) that gathers batches of
 * `batch` images on a background thread, one batch ahead of the caller (two buffers).
 * shuffle=0 keeps the split's order. drop_last=1 (training) drops the last partial batch;
 * 0 (evaluation) keeps it, smaller. */
wrn_status wrn_loader_open(wrn_loader **out, const wrn_split *split, int batch, int shuffle,
                           int drop_last, uint64_t seed);
/* Starts epoch `epoch` at batch `first_step` (0 normally; the step to resume from after a
 * checkpoint). The order depends only on (seed, epoch), so starting at step s gives the
 * batches that skipping s batches would. Discards any batch prepared before. */
wrn_status wrn_loader_start_epoch(wrn_loader *L, uint64_t epoch, int64_t first_step);
/* Waits for the next batch of the epoch. b->count is 0 once the epoch is over. The
 * pointers stay valid until the next call to wrn_loader_next, _start_epoch or _free. */
wrn_status wrn_loader_next(wrn_loader *L, wrn_batch *b);
int64_t wrn_loader_steps(const wrn_loader *L); /* batches per epoch */
/* A loader over an image folder (not copied: it must outlive the loader): each batch is
 * decoded through the pipeline p (its crops drawn from (p->seed, epoch, image index)) on
 * `threads` threads, [count][3][size][size]. Files that do not decode are left out, so a
 * batch may hold fewer images; wrn_loader_skips tells how many so far and the first. */
wrn_status wrn_loader_open_folder(wrn_loader **out, const wrn_imagefolder *f,
                                  const wrn_image_pipeline *p, int threads, int batch,
                                  int shuffle, int drop_last, uint64_t seed);
void wrn_loader_skips(wrn_loader *L, wrn_image_skips *out);
void wrn_loader_free(wrn_loader *L);

/* ---------------------------------------------------------------- safetensors */

/* Element types of the safetensors format, in the format's own alignment order. */
typedef enum wrn_st_dtype {
  WRN_ST_BOOL = 0,
  WRN_ST_U8,
  WRN_ST_I8,
  WRN_ST_F8_E5M2,
  WRN_ST_F8_E4M3,
  WRN_ST_I16,
  WRN_ST_U16,
  WRN_ST_F16,
  WRN_ST_BF16,
  WRN_ST_I32,
  WRN_ST_U32,
  WRN_ST_F32,
  WRN_ST_F64,
  WRN_ST_I64,
  WRN_ST_U64,
  WRN_ST_DTYPE_COUNT
} wrn_st_dtype;
const char *wrn_st_dtype_name(wrn_st_dtype t); /* "F32", ...; "?" when out of range */
size_t wrn_st_dtype_size(wrn_st_dtype t);      /* bytes per element; 0 when out of range */

typedef struct wrn_st_writer wrn_st_writer;

wrn_status wrn_st_writer_new(wrn_st_writer **out);
/* Adds a tensor. `data` (little-endian, C order, product(shape) elements) is not copied:
 * it must stay valid until wrn_st_writer_write. ndim 0 is a scalar. Names must be unique,
 * non-empty and not "__metadata__". */
wrn_status wrn_st_writer_add(wrn_st_writer *w, const char *name, wrn_st_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
/* Adds a string entry to "__metadata__" (keys unique; both strings copied). */
wrn_status wrn_st_writer_meta(wrn_st_writer *w, const char *key, const char *value);
/* Writes the file atomically, in the layout the safetensors library writes (tensors by
 * descending alignment then name, compact JSON, header padded with spaces to 8 bytes): a
 * temporary file in the same folder, fsync, rename over `path`, fsync of the folder. On
 * failure the temporary file is removed and an existing `path` is left as it was. */
wrn_status wrn_st_writer_write(wrn_st_writer *w, const char *path);
void wrn_st_writer_free(wrn_st_writer *w);

typedef struct wrn_st_file wrn_st_file;

typedef struct wrn_st_tensor {
  const char *name;
  wrn_st_dtype dtype;
  int ndim;
  const int64_t *shape; /* [ndim] */
  size_t numel, nbytes;
  const void *data; /* nbytes bytes, inside the file's buffer; 8-byte aligned offsets are not
                       guaranteed, so copy before reading wide types in place */
} wrn_st_tensor;

/* Reads and validates a whole file: header length, strict JSON, dtypes, shapes, offsets
 * (consistent with dtype and shape, contiguous, covering the data area exactly, as the
 * safetensors library requires). WRN_STATUS_IO when it cannot be read, WRN_STATUS_FORMAT
 * naming the file and the problem (with the byte position for JSON errors) otherwise. */
wrn_status wrn_st_open(wrn_st_file **out, const char *path);
void wrn_st_close(wrn_st_file *f);
int wrn_st_count(const wrn_st_file *f);
const wrn_st_tensor *wrn_st_at(const wrn_st_file *f, int i); /* in file order */
const wrn_st_tensor *wrn_st_find(const wrn_st_file *f, const char *name); /* NULL if absent */
/* Copies tensor `name` into dst after checking it exists with this dtype and shape
 * (ndim < 0 skips the shape check); the message names the file and the tensor. */
wrn_status wrn_st_read(const wrn_st_file *f, const char *name, wrn_st_dtype dtype, int ndim,
                       const int64_t *shape, void *dst, size_t dst_bytes);
const char *wrn_st_meta(const wrn_st_file *f, const char *key); /* NULL if absent */
int wrn_st_meta_count(const wrn_st_file *f);
void wrn_st_meta_at(const wrn_st_file *f, int i, const char **key, const char **value);

/* ---------------------------------------------------------------- JSON lines */

/* A flat JSON object built key by key: {"epoch":3,"lr":0.1,...}. */
typedef struct wrn_json wrn_json;
wrn_status wrn_json_new(wrn_json **out);
void wrn_json_free(wrn_json *j);
void wrn_json_clear(wrn_json *j); /* back to {} */
/* Keys and string values are escaped (invalid UTF-8 becomes U+FFFD). Doubles use the
 * shortest form that reads back to the same value, with '.' whatever the locale; NaN and
 * infinities are written as null. A NULL string value is written as null. */
wrn_status wrn_json_str(wrn_json *j, const char *key, const char *value);
wrn_status wrn_json_int(wrn_json *j, const char *key, int64_t value);
wrn_status wrn_json_double(wrn_json *j, const char *key, double value);
wrn_status wrn_json_bool(wrn_json *j, const char *key, int value);
const char *wrn_json_text(const wrn_json *j); /* the object, no newline; valid until the next
                                                 change */

typedef struct wrn_jsonl wrn_jsonl;
/* Opens (creates) `path` for appending. If the file ends in a partial line (a crash while
 * writing), a newline is added so the next record starts on its own line. */
wrn_status wrn_jsonl_open(wrn_jsonl **out, const char *path);
/* Appends the object as one line with a single write, then fsync. On failure the file is
 * cut back to its previous length, so no reported record is ever half written. If line is
 * not NULL it receives the text written (without the newline), valid like wrn_json_text. */
wrn_status wrn_jsonl_append(wrn_jsonl *l, const wrn_json *obj, const char **line);
/* Like wrn_jsonl_open, but a partial last line is cut off instead, so the file holds only
 * whole lines (a record never reported as written); *cut (may be NULL) gets the bytes
 * removed. */
wrn_status wrn_jsonl_open_trim(wrn_jsonl **out, const char *path, size_t *cut);
/* Appends text (one record, no newline in it) as wrn_jsonl_append does an object. */
wrn_status wrn_jsonl_append_line(wrn_jsonl *l, const char *text);
void wrn_jsonl_close(wrn_jsonl *l);

/* ---------------------------------------------------------------- JSON reader */

/* A strict JSON (RFC 8259) parser, the one the safetensors reader uses: a text becomes a tree
 * of values. Anything the grammar does not allow (trailing commas, leading zeros, bad
 * escapes, invalid UTF-8, unpaired surrogates, duplicate keys, nesting past 64) is refused
 * with the problem and its byte position. Strings are UTF-8 and may not hold U+0000. */
typedef struct wrn_jv wrn_jv;
typedef enum wrn_jv_type {
  WRN_JV_NULL = 0,
  WRN_JV_BOOL,
  WRN_JV_NUMBER,
  WRN_JV_STRING,
  WRN_JV_ARRAY,
  WRN_JV_OBJECT
} wrn_jv_type;
/* Parses text[0..n) as one JSON value (whitespace around it allowed). `what` names the text in
 * messages: "runs/a/log.jsonl line 3" gives "runs/a/log.jsonl line 3: bad JSON: trailing comma
 * in an object at byte 41 of it" (WRN_STATUS_FORMAT). Free with wrn_jv_free. */
wrn_status wrn_jv_parse(wrn_jv **out, const char *text, size_t n, const char *what);
void wrn_jv_free(wrn_jv *root); /* only a root from wrn_jv_parse; NULL is fine */
/* Each accessor takes NULL (and values of the wrong type) and then returns NULL, 0 or the
 * fallback, so a path can be followed without a check at every step:
 * wrn_jv_number(wrn_jv_get(wrn_jv_get(row, "ms_per_step"), "median"), NAN). */
wrn_jv_type wrn_jv_kind(const wrn_jv *v);                     /* WRN_JV_NULL for NULL */
size_t wrn_jv_count(const wrn_jv *v);                         /* items of an array or object */
const wrn_jv *wrn_jv_item(const wrn_jv *v, size_t i);         /* i-th item of an array/object */
const char *wrn_jv_key(const wrn_jv *obj, size_t i);          /* i-th key of an object */
const wrn_jv *wrn_jv_get(const wrn_jv *obj, const char *key); /* member of an object */
const char *wrn_jv_string(const wrn_jv *v);                   /* a string's text */
double wrn_jv_number(const wrn_jv *v, double fallback);       /* a number (true 1, false 0) */

#ifdef __cplusplus
}
#endif
#endif
