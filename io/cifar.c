/* CIFAR-10 / CIFAR-100 in their official binary layouts, read whole into host memory.
 * Every file is checked against the record size before anything is read, so that a
 * truncated download is reported as such rather than as a strange label later on. */
#include "io_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_IMG 3072           /* 3 x 32 x 32 */
#define CIFAR10_REC (1 + CIFAR_IMG)
#define CIFAR100_REC (2 + CIFAR_IMG)
#define CIFAR10_MAX_BATCHES 64   /* far above the official 5; bounds the directory probing */

static const char *expected_layouts =
    "expected CIFAR-10 (data_batch_1.bin .. data_batch_5.bin and test_batch.bin, from "
    "cifar-10-binary.tar.gz), CIFAR-100 (train.bin and test.bin, from "
    "cifar-100-binary.tar.gz) or SVHN (train_32x32.mat and test_32x32.mat)";

typedef struct cifar_file {
  char path[4096];
  size_t records;
} cifar_file;

static int path_join(char *out, size_t n, const char *dir, const char *name) {
  int k = snprintf(out, n, "%s/%s", dir, name);
  return k >= 0 && (size_t)k < n;
}

static int file_exists(const char *dir, const char *name) {
  char p[4096];
  struct stat st;
  return path_join(p, sizeof p, dir, name) && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Checks that a file exists and holds a whole, non-zero number of records. */
static wrn_status probe_file(cifar_file *f, const char *dir, const char *name, size_t rec,
                             const char *kind) {
  if (!path_join(f->path, sizeof f->path, dir, name))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_dataset_open: path '%s/%s' is too long",
                    dir, name);
  struct stat st;
  if (stat(f->path, &st) != 0) {
    int e = errno;
    if (e == ENOENT)
      return wrn_fail(WRN_STATUS_IO, "%s: '%s' is missing; %s", kind, f->path, expected_layouts);
    return wrn_fail(WRN_STATUS_IO, "%s: cannot read '%s': %s", kind, f->path, strerror(e));
  }
  if (!S_ISREG(st.st_mode))
    return wrn_fail(WRN_STATUS_IO, "%s: '%s' is not a regular file", kind, f->path);
  size_t size = (size_t)st.st_size;
  if (size == 0)
    return wrn_fail(WRN_STATUS_FORMAT,
                    "%s: '%s' is empty (0 bytes); expected a non-empty multiple of the "
                    "%zu-byte record",
                    kind, f->path, rec);
  if (size % rec != 0)
    return wrn_fail(WRN_STATUS_FORMAT,
                    "%s: '%s' has %zu bytes, not a multiple of the %zu-byte record "
                    "(%zu whole records and %zu bytes over): the file is truncated or not a "
                    "%s file",
                    kind, f->path, size, rec, size / rec, size % rec, kind);
  f->records = size / rec;
  return WRN_OK;
}

/* Reads the first `take` records of a file into images/labels, checking both label bytes
 * of CIFAR-100 records so that a CIFAR-10 file read as CIFAR-100 is caught. */
static wrn_status read_records(const cifar_file *f, size_t take, size_t rec, int label_byte,
                               int n_classes, const char *kind, uint8_t *images,
                               int32_t *labels) {
  FILE *fp = fopen(f->path, "rb");
  if (!fp) return wrn_fail(WRN_STATUS_IO, "%s: cannot open '%s': %s", kind, f->path,
                           strerror(errno));
  enum { CHUNK = 512 };
  uint8_t *buf = malloc(CHUNK * rec);
  if (!buf) {
    fclose(fp);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no memory to read '%s'", kind, f->path);
  }
  wrn_status st = WRN_OK;
  for (size_t done = 0; done < take && st == WRN_OK;) {
    size_t k = take - done < CHUNK ? take - done : CHUNK;
    size_t got = fread(buf, rec, k, fp);
    if (got != k) {
      st = wrn_fail(WRN_STATUS_IO, "%s: reading '%s' stopped at record %zu of %zu: %s", kind,
                    f->path, done + got, take,
                    ferror(fp) ? strerror(errno) : "unexpected end of file (file changed?)");
      break;
    }
    for (size_t r = 0; r < k; r++) {
      const uint8_t *p = buf + r * rec;
      size_t idx = done + r;
      if (rec == CIFAR100_REC && (p[0] >= 20 || p[1] >= 100)) {
        st = wrn_fail(WRN_STATUS_FORMAT,
                      "%s: '%s' record %zu has coarse label %d and fine label %d; expected "
                      "0..19 and 0..99",
                      kind, f->path, idx, p[0], p[1]);
        break;
      }
      int label = p[label_byte];
      if (label >= n_classes) {
        st = wrn_fail(WRN_STATUS_FORMAT, "%s: '%s' record %zu has label %d, outside 0..%d",
                      kind, f->path, idx, label, n_classes - 1);
        break;
      }
      labels[idx] = label;
      memcpy(images + idx * CIFAR_IMG, p + (rec - CIFAR_IMG), CIFAR_IMG);
    }
    done += k;
  }
  free(buf);
  fclose(fp);
  return st;
}

/* Fills one split from consecutive files, keeping the first `limit` records (0 = all). */
static wrn_status load_split(wrn_split *sp, const cifar_file *files, int nfiles, size_t limit,
                             size_t rec, int label_byte, int n_classes, const char *kind) {
  size_t total = 0;
  for (int i = 0; i < nfiles; i++) total += files[i].records;
  size_t n = limit && limit < total ? limit : total;
  sp->c = 3, sp->h = 32, sp->w = 32;
  sp->n_classes = n_classes;
  sp->images = malloc(n * CIFAR_IMG);
  sp->labels = malloc(n * sizeof *sp->labels);
  if (!sp->images || !sp->labels)
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "%s: no host memory for %zu images (%zu bytes)",
                    kind, n, n * (size_t)CIFAR_IMG);
  size_t at = 0;
  for (int i = 0; i < nfiles && at < n; i++) {
    size_t take = files[i].records < n - at ? files[i].records : n - at;
    wrn_status st = read_records(&files[i], take, rec, label_byte, n_classes, kind,
                                 sp->images + at * CIFAR_IMG, sp->labels + at);
    if (st != WRN_OK) return st;
    at += take;
  }
  sp->n = n;
  return WRN_OK;
}

static wrn_status open_cifar10(wrn_dataset *ds, const char *dir, const wrn_dataset_options *o) {
  const char *kind = "CIFAR-10";
  cifar_file files[CIFAR10_MAX_BATCHES], test;
  int nb = 0;
  char name[64];
  while (nb < CIFAR10_MAX_BATCHES) {
    snprintf(name, sizeof name, "data_batch_%d.bin", nb + 1);
    if (!file_exists(dir, name)) break;
    wrn_status st = probe_file(&files[nb], dir, name, CIFAR10_REC, kind);
    if (st != WRN_OK) return st;
    nb++;
  }
  if (nb == 0) {
    char p[4096];
    path_join(p, sizeof p, dir, "data_batch_1.bin");
    return wrn_fail(WRN_STATUS_IO, "%s: '%s' is missing; %s", kind, p, expected_layouts);
  }
  /* A later batch after a hole means a batch went missing, which would silently shrink the
   * training set. */
  for (int j = nb + 2; j <= nb + 5 && j <= CIFAR10_MAX_BATCHES; j++) {
    snprintf(name, sizeof name, "data_batch_%d.bin", j);
    if (file_exists(dir, name))
      return wrn_fail(WRN_STATUS_IO,
                      "%s: folder '%s' has %s but no data_batch_%d.bin; training batches must "
                      "be data_batch_1.bin .. data_batch_N.bin without gaps",
                      kind, dir, name, nb + 1);
  }
  wrn_status st = probe_file(&test, dir, "test_batch.bin", CIFAR10_REC, kind);
  if (st != WRN_OK) return st;
  ds->kind = WRN_DATASET_CIFAR10;
  ds->n_classes = 10;
  st = load_split(&ds->train, files, nb, o->train_limit, CIFAR10_REC, 0, 10, kind);
  if (st == WRN_OK) st = load_split(&ds->test, &test, 1, o->test_limit, CIFAR10_REC, 0, 10, kind);
  return st;
}

static wrn_status open_cifar100(wrn_dataset *ds, const char *dir, const wrn_dataset_options *o) {
  const char *kind = "CIFAR-100";
  cifar_file train, test;
  wrn_status st = probe_file(&train, dir, "train.bin", CIFAR100_REC, kind);
  if (st == WRN_OK) st = probe_file(&test, dir, "test.bin", CIFAR100_REC, kind);
  if (st != WRN_OK) return st;
  int coarse = o->labels == WRN_LABELS_COARSE;
  int nc = coarse ? 20 : 100;
  ds->kind = WRN_DATASET_CIFAR100;
  ds->n_classes = nc;
  st = load_split(&ds->train, &train, 1, o->train_limit, CIFAR100_REC, coarse ? 0 : 1, nc, kind);
  if (st == WRN_OK)
    st = load_split(&ds->test, &test, 1, o->test_limit, CIFAR100_REC, coarse ? 0 : 1, nc, kind);
  return st;
}

wrn_status wrn_dataset_open(wrn_dataset *ds, const char *dir, const wrn_dataset_options *opts) {
  if (!ds) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_dataset_open: ds is NULL");
  memset(ds, 0, sizeof *ds);
  if (!dir || !*dir)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_dataset_open: no folder given; %s",
                    expected_layouts);
  wrn_dataset_options o = {WRN_DATASET_AUTO, WRN_LABELS_FINE, 0, 0, 0};
  if (opts) o = *opts;
  if (o.kind != WRN_DATASET_AUTO && o.kind != WRN_DATASET_CIFAR10 &&
      o.kind != WRN_DATASET_CIFAR100 && o.kind != WRN_DATASET_SVHN)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_dataset_open: %s %d",
                    o.kind == WRN_DATASET_IMAGEFOLDER
                        ? "image folders are read with wrn_imagefolder_open, not as kind"
                        : "unknown kind", (int)o.kind);
  if (o.labels != WRN_LABELS_FINE && o.labels != WRN_LABELS_COARSE)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_dataset_open: unknown labels %d",
                    (int)o.labels);
  struct stat st;
  if (stat(dir, &st) != 0) {
    int e = errno;
    return wrn_fail(WRN_STATUS_IO, "dataset folder '%s' %s; %s", dir,
                    e == ENOENT ? "does not exist" : strerror(e), expected_layouts);
  }
  if (!S_ISDIR(st.st_mode))
    return wrn_fail(WRN_STATUS_IO, "dataset path '%s' is not a folder; %s", dir,
                    expected_layouts);
  wrn_dataset_kind kind = o.kind;
  if (kind == WRN_DATASET_AUTO) {
    kind = wrn_dataset_detect(dir);
    if (kind == WRN_DATASET_AUTO || kind == WRN_DATASET_IMAGEFOLDER) {
      /* The archives unpack into a subfolder; pointing at its parent is a common slip. */
      const char *hint = file_exists(dir, "cifar-10-batches-bin/data_batch_1.bin")
                             ? " (it has a cifar-10-batches-bin subfolder: use that)"
                         : file_exists(dir, "cifar-100-binary/train.bin")
                             ? " (it has a cifar-100-binary subfolder: use that)"
                             : "";
      return wrn_fail(WRN_STATUS_IO,
                      "dataset folder '%s' has neither data_batch_1.bin, train.bin nor "
                      "train_32x32.mat%s; %s", dir, hint, expected_layouts);
    }
  }
  wrn_status s = kind == WRN_DATASET_CIFAR10    ? open_cifar10(ds, dir, &o)
                 : kind == WRN_DATASET_CIFAR100 ? open_cifar100(ds, dir, &o)
                                                : wrn_svhn_open(ds, dir, &o);
  if (s != WRN_OK) wrn_dataset_free(ds);
  return s;
}

wrn_dataset_kind wrn_dataset_detect(const char *dir) {
  if (!dir) return WRN_DATASET_AUTO;
  if (file_exists(dir, "data_batch_1.bin")) return WRN_DATASET_CIFAR10;
  if (file_exists(dir, "train.bin")) return WRN_DATASET_CIFAR100;
  if (file_exists(dir, "train_32x32.mat")) return WRN_DATASET_SVHN;
  char t[4096], v[4096];
  struct stat st;
  if (path_join(t, sizeof t, dir, "train") && path_join(v, sizeof v, dir, "val") &&
      stat(t, &st) == 0 && S_ISDIR(st.st_mode) && stat(v, &st) == 0 && S_ISDIR(st.st_mode))
    return WRN_DATASET_IMAGEFOLDER;
  return WRN_DATASET_AUTO;
}

void wrn_dataset_free(wrn_dataset *ds) {
  if (!ds) return;
  free(ds->train.images);
  free(ds->train.labels);
  free(ds->test.images);
  free(ds->test.labels);
  memset(ds, 0, sizeof *ds);
}

const char *wrn_dataset_kind_name(wrn_dataset_kind k) {
  switch (k) {
    case WRN_DATASET_AUTO: return "auto";
    case WRN_DATASET_CIFAR10: return "cifar10";
    case WRN_DATASET_CIFAR100: return "cifar100";
    case WRN_DATASET_SVHN: return "svhn";
    case WRN_DATASET_IMAGEFOLDER: return "imagefolder";
  }
  return "?";
}

wrn_status wrn_dataset_kind_parse(const char *s, wrn_dataset_kind *out) {
  static const wrn_dataset_kind all[] = {WRN_DATASET_AUTO, WRN_DATASET_CIFAR10,
                                         WRN_DATASET_CIFAR100, WRN_DATASET_SVHN,
                                         WRN_DATASET_IMAGEFOLDER};
  for (size_t i = 0; s && out && i < sizeof all / sizeof all[0]; i++)
    if (strcmp(s, wrn_dataset_kind_name(all[i])) == 0) {
      *out = all[i];
      return WRN_OK;
    }
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                  "unknown dataset kind '%s'; expected auto, cifar10, cifar100, svhn or imagefolder",
                  s ? s : "(null)");
}

wrn_status wrn_labels_parse(const char *s, wrn_labels *out) {
  if (s && out && strcmp(s, "fine") == 0) {
    *out = WRN_LABELS_FINE;
    return WRN_OK;
  }
  if (s && out && strcmp(s, "coarse") == 0) {
    *out = WRN_LABELS_COARSE;
    return WRN_OK;
  }
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                  "unknown CIFAR-100 labels '%s'; expected fine (100 classes) or coarse (20)",
                  s ? s : "(null)");
}
