/* CIFAR reader against the raw bytes of the sample folder, its error messages on broken
 * folders made in a temporary directory, CIFAR-100 on tiny synthetic files, the full data
 * set when it is present, and the batch loader's order guarantees. */
#include "harness.h"
#include "wrn_io.h"

#include <dirent.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC10 3073
#define REC100 3074
#define IMG 3072

static const char *source_dir(void) {
  const char *s = getenv("WRN_SOURCE_DIR");
  return s && *s ? s : WRN_SOURCE_DIR;
}

static void sample_dir(char *out, size_t n) {
  snprintf(out, n, "%s/data/cifar10-sample", source_dir());
}

/* Reads a whole file into memory (test side, independent of the library). */
static unsigned char *slurp(const char *path, size_t *size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) fail_msg("cannot open %s", path);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  *size = (size_t)n;
  return b;
}

/* Fails unless `got` is `want` and the message contains every string of the NULL-ended
 * list (the file name at least). */
static void expect_error(wrn_status got, wrn_status want, ...) {
  const char *msg = wrn_last_error();
  if (got != want)
    fail_msg("expected %s, got %s: %s", wrn_status_name(want), wrn_status_name(got), msg);
  va_list ap;
  va_start(ap, want);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
    if (!strstr(msg, s)) fail_msg("message lacks '%s': %s", s, msg);
  va_end(ap);
  printf("  expected error: %s\n", msg);
}

/* ---------------------------------------------------------------- temp folders */

static char tmp_root[256];

static int setup_tmp(void **state) {
  (void)state;
  snprintf(tmp_root, sizeof tmp_root, "/tmp/wrn_test_cifar_XXXXXX");
  return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown_tmp(void **state) {
  (void)state;
  t_rm_tree(tmp_root);
  return 0;
}

/* A fresh empty folder under the temp root. */
static void make_case_dir(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", tmp_root, name);
  t_rm_tree(out);
  assert_int_equal(mkdir(out, 0755), 0);
}

/* Writes `nrec` records of `rec` bytes: label byte(s) from label(i), pixels from i, then
 * `extra` stray bytes. */
static void write_records(const char *dir, const char *name, size_t nrec, size_t rec,
                          int (*label)(size_t, int), size_t extra) {
  char p[1024];
  if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p) fail_msg("path too long: %s", dir);
  FILE *fp = fopen(p, "wb");
  assert_non_null(fp);
  unsigned char *r = malloc(rec);
  for (size_t i = 0; i < nrec; i++) {
    size_t nl = rec - IMG;
    for (size_t k = 0; k < nl; k++) r[k] = (unsigned char)label(i, (int)k);
    for (size_t k = nl; k < rec; k++) r[k] = (unsigned char)(i * 31 + k * 7);
    assert_int_equal(fwrite(r, 1, rec, fp), rec);
  }
  for (size_t k = 0; k < extra; k++) fputc(0, fp);
  fclose(fp);
  free(r);
}

static int label10(size_t i, int k) { return (int)(i % 10) + k; }
static int label10_bad(size_t i, int k) { return i == 2 ? 10 : (int)(i % 10) + k; }
/* CIFAR-100: coarse (k = 0) and fine (k = 1) labels that stay consistent */
static int label100(size_t i, int k) { return k == 0 ? (int)(i * 7 % 100) / 5 : (int)(i * 7 % 100); }
static int label100_bad(size_t i, int k) { return i == 1 && k == 1 ? 100 : label100(i, k); }

/* ---------------------------------------------------------------- sample folder */

static void check_split_against_raw(const wrn_split *sp, const char *path, size_t n) {
  size_t size;
  unsigned char *raw = slurp(path, &size);
  assert_true(size >= n * REC10);
  for (size_t i = 0; i < n; i++) {
    if (sp->labels[i] != raw[i * REC10])
      fail_msg("%s record %zu: label %d, raw %d", path, i, sp->labels[i], raw[i * REC10]);
    if (memcmp(sp->images + i * IMG, raw + i * REC10 + 1, IMG) != 0)
      fail_msg("%s record %zu: image bytes differ", path, i);
  }
  free(raw);
}

static void test_sample(void **state) {
  (void)state;
  char dir[1024], p[1100];
  sample_dir(dir, sizeof dir);
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, NULL));
  assert_int_equal(ds.kind, WRN_DATASET_CIFAR10);
  assert_int_equal(ds.n_classes, 10);
  assert_int_equal(ds.train.n, 2000);
  assert_int_equal(ds.test.n, 500);
  assert_int_equal(ds.train.c, 3), assert_int_equal(ds.train.h, 32), assert_int_equal(ds.train.w, 32);
  assert_int_equal(ds.test.n_classes, 10);
  int seen[10] = {0};
  for (size_t i = 0; i < ds.train.n; i++) {
    assert_in_range(ds.train.labels[i], 0, 9);
    seen[ds.train.labels[i]] = 1;
  }
  for (size_t i = 0; i < ds.test.n; i++) assert_in_range(ds.test.labels[i], 0, 9);
  for (int c = 0; c < 10; c++) assert_true(seen[c]);
  /* first record spelled out, then every record */
  snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
  size_t size;
  unsigned char *raw = slurp(p, &size);
  assert_int_equal(size, 2000 * REC10);
  assert_int_equal(ds.train.labels[0], raw[0]);
  assert_memory_equal(ds.train.images, raw + 1, IMG);
  free(raw);
  check_split_against_raw(&ds.train, p, 2000);
  snprintf(p, sizeof p, "%s/test_batch.bin", dir);
  check_split_against_raw(&ds.test, p, 500);
  wrn_dataset_free(&ds);
  wrn_dataset_free(&ds); /* idempotent */
}

static void test_limits(void **state) {
  (void)state;
  char dir[1024], p[1100];
  sample_dir(dir, sizeof dir);
  wrn_dataset_options o = {WRN_DATASET_CIFAR10, WRN_LABELS_FINE, 123, 7, 0};
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  assert_int_equal(ds.train.n, 123);
  assert_int_equal(ds.test.n, 7);
  snprintf(p, sizeof p, "%s/data_batch_1.bin", dir);
  check_split_against_raw(&ds.train, p, 123);
  snprintf(p, sizeof p, "%s/test_batch.bin", dir);
  check_split_against_raw(&ds.test, p, 7);
  wrn_dataset_free(&ds);
  o.train_limit = 1000000, o.test_limit = 0; /* above the size: everything */
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  assert_int_equal(ds.train.n, 2000);
  assert_int_equal(ds.test.n, 500);
  wrn_dataset_free(&ds);
}

/* Several training batches are concatenated in order. */
static void test_multiple_batches(void **state) {
  (void)state;
  char dir[1024];
  make_case_dir(dir, sizeof dir, "multi");
  write_records(dir, "data_batch_1.bin", 3, REC10, label10, 0);
  write_records(dir, "data_batch_2.bin", 4, REC10, label10, 0);
  write_records(dir, "data_batch_3.bin", 2, REC10, label10, 0);
  write_records(dir, "test_batch.bin", 5, REC10, label10, 0);
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, NULL));
  assert_int_equal(ds.train.n, 9);
  assert_int_equal(ds.test.n, 5);
  static const int want[9] = {0, 1, 2, 0, 1, 2, 3, 0, 1};
  for (int i = 0; i < 9; i++) assert_int_equal(ds.train.labels[i], want[i]);
  /* record 3 is the first of data_batch_2: pixels made from its index in that file (0) */
  assert_int_equal(ds.train.images[3 * IMG], (unsigned char)(1 * 7));
  assert_int_equal(ds.train.images[2 * IMG], (unsigned char)(2 * 31 + 1 * 7));
  wrn_dataset_free(&ds);
  /* a limit that ends inside the second file */
  wrn_dataset_options o = {WRN_DATASET_AUTO, WRN_LABELS_FINE, 5, 0, 0};
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  assert_int_equal(ds.train.n, 5);
  assert_int_equal(ds.train.labels[4], 1);
  wrn_dataset_free(&ds);
}

static void test_errors(void **state) {
  (void)state;
  char dir[1024], p[1100];
  wrn_dataset ds;

  snprintf(dir, sizeof dir, "%s/no_such_folder", tmp_root);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_IO, "no_such_folder",
               "does not exist", "test_batch.bin", "train.bin", NULL);
  assert_null(ds.train.images);

  make_case_dir(dir, sizeof dir, "empty_folder");
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_IO, "empty_folder",
               "data_batch_1.bin", "train.bin", NULL);

  make_case_dir(dir, sizeof dir, "no_test");
  write_records(dir, "data_batch_1.bin", 4, REC10, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_IO, "no_test/test_batch.bin",
               "missing", NULL);

  make_case_dir(dir, sizeof dir, "truncated");
  write_records(dir, "data_batch_1.bin", 3, REC10, label10, 100);
  write_records(dir, "test_batch.bin", 2, REC10, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_FORMAT,
               "truncated/data_batch_1.bin", "9319 bytes", "3073-byte record", "100 bytes over",
               NULL);

  /* records without the label byte: the size is wrong for CIFAR-10 */
  make_case_dir(dir, sizeof dir, "wrong_size");
  write_records(dir, "data_batch_1.bin", 4, REC10, label10, 0);
  write_records(dir, "test_batch.bin", 3, IMG, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_FORMAT, "wrong_size/test_batch.bin",
               "9216 bytes", "3073", NULL);

  make_case_dir(dir, sizeof dir, "empty_file");
  write_records(dir, "data_batch_1.bin", 0, REC10, label10, 0);
  write_records(dir, "test_batch.bin", 2, REC10, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_FORMAT,
               "empty_file/data_batch_1.bin", "empty", NULL);

  make_case_dir(dir, sizeof dir, "bad_label");
  write_records(dir, "data_batch_1.bin", 5, REC10, label10_bad, 0);
  write_records(dir, "test_batch.bin", 2, REC10, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_FORMAT, "bad_label/data_batch_1.bin",
               "record 2", "label 10", "0..9", NULL);
  assert_null(ds.train.images); /* nothing leaks into ds on failure */
  /* the bad record lies beyond a limit of 2: not read, not reported */
  wrn_dataset_options o = {WRN_DATASET_AUTO, WRN_LABELS_FINE, 2, 0, 0};
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  wrn_dataset_free(&ds);

  make_case_dir(dir, sizeof dir, "gap");
  write_records(dir, "data_batch_1.bin", 2, REC10, label10, 0);
  write_records(dir, "data_batch_3.bin", 2, REC10, label10, 0);
  write_records(dir, "test_batch.bin", 2, REC10, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_IO, "data_batch_3.bin",
               "data_batch_2.bin", NULL);

  /* asking for CIFAR-100 in a CIFAR-10 folder */
  sample_dir(dir, sizeof dir);
  o = (wrn_dataset_options){WRN_DATASET_CIFAR100, WRN_LABELS_FINE, 0, 0, 0};
  expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_IO, "cifar10-sample/train.bin",
               "missing", NULL);

  /* the parent of the data folder gets a hint */
  make_case_dir(dir, sizeof dir, "parent");
  snprintf(p, sizeof p, "%s/cifar-10-batches-bin", dir);
  assert_int_equal(mkdir(p, 0755), 0);
  write_records(p, "data_batch_1.bin", 1, REC10, label10, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_IO, "parent",
               "cifar-10-batches-bin subfolder", NULL);

  /* a file given instead of a folder */
  sample_dir(dir, sizeof dir);
  snprintf(p, sizeof p, "%s/README.md", dir);
  expect_error(wrn_dataset_open(&ds, p, NULL), WRN_STATUS_IO, "README.md", "not a folder", NULL);

  expect_error(wrn_dataset_open(&ds, NULL, NULL), WRN_STATUS_INVALID_ARGUMENT, "wrn_dataset_open",
               NULL);
  o = (wrn_dataset_options){(wrn_dataset_kind)7, WRN_LABELS_FINE, 0, 0, 0};
  expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_INVALID_ARGUMENT, "kind 7", NULL);
}

static void test_parse(void **state) {
  (void)state;
  wrn_dataset_kind k;
  wrn_labels l;
  WT_OK(wrn_dataset_kind_parse("cifar100", &k));
  assert_int_equal(k, WRN_DATASET_CIFAR100);
  WT_OK(wrn_dataset_kind_parse("auto", &k));
  assert_int_equal(k, WRN_DATASET_AUTO);
  WT_OK(wrn_dataset_kind_parse("svhn", &k));
  assert_int_equal(k, WRN_DATASET_SVHN);
  WT_OK(wrn_dataset_kind_parse("imagefolder", &k));
  assert_int_equal(k, WRN_DATASET_IMAGEFOLDER);
  expect_error(wrn_dataset_kind_parse("mnist", &k), WRN_STATUS_INVALID_ARGUMENT, "mnist",
               "cifar10", "svhn", NULL);
  WT_OK(wrn_labels_parse("coarse", &l));
  assert_int_equal(l, WRN_LABELS_COARSE);
  expect_error(wrn_labels_parse("medium", &l), WRN_STATUS_INVALID_ARGUMENT, "medium", "fine",
               NULL);
  assert_string_equal(wrn_dataset_kind_name(WRN_DATASET_CIFAR10), "cifar10");
}

static void test_cifar100(void **state) {
  (void)state;
  char dir[1024];
  make_case_dir(dir, sizeof dir, "c100");
  write_records(dir, "train.bin", 6, REC100, label100, 0);
  write_records(dir, "test.bin", 3, REC100, label100, 0);
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, NULL));
  assert_int_equal(ds.kind, WRN_DATASET_CIFAR100);
  assert_int_equal(ds.n_classes, 100);
  assert_int_equal(ds.train.n, 6);
  assert_int_equal(ds.test.n, 3);
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(ds.train.labels[i], label100(i, 1));
    assert_int_equal(ds.train.images[i * IMG], (unsigned char)(i * 31 + 2 * 7));
  }
  wrn_dataset_free(&ds);
  wrn_dataset_options o = {WRN_DATASET_AUTO, WRN_LABELS_COARSE, 0, 2, 0};
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  assert_int_equal(ds.n_classes, 20);
  assert_int_equal(ds.test.n, 2);
  for (size_t i = 0; i < 6; i++) assert_int_equal(ds.train.labels[i], label100(i, 0));
  wrn_dataset_free(&ds);

  /* a CIFAR-10 folder read as CIFAR-100 and the other way round */
  o = (wrn_dataset_options){WRN_DATASET_CIFAR10, WRN_LABELS_FINE, 0, 0, 0};
  expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_IO, "c100/data_batch_1.bin", NULL);

  make_case_dir(dir, sizeof dir, "c100_bad");
  write_records(dir, "train.bin", 3, REC100, label100, 0);
  write_records(dir, "test.bin", 3, REC100, label100_bad, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_FORMAT, "c100_bad/test.bin",
               "record 1", "fine label 100", NULL);

  make_case_dir(dir, sizeof dir, "c100_trunc");
  write_records(dir, "train.bin", 3, REC10, label10, 0); /* CIFAR-10 sized records */
  write_records(dir, "test.bin", 3, REC100, label100, 0);
  expect_error(wrn_dataset_open(&ds, dir, NULL), WRN_STATUS_FORMAT, "c100_trunc/train.bin",
               "3074-byte record", NULL);
}

static void test_full_cifar10(void **state) {
  (void)state;
  char dir[4096];
  if (!t_cifar_dir(dir, sizeof dir)) {
    printf("  full CIFAR-10 not found (set WRN_DATA_DIR): skipped\n");
    skip();
  }
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, NULL));
  assert_int_equal(ds.train.n, 50000);
  assert_int_equal(ds.test.n, 10000);
  int count_train[10] = {0}, count_test[10] = {0};
  for (size_t i = 0; i < ds.train.n; i++) count_train[ds.train.labels[i]]++;
  for (size_t i = 0; i < ds.test.n; i++) count_test[ds.test.labels[i]]++;
  for (int c = 0; c < 10; c++) {
    assert_int_equal(count_train[c], 5000);
    assert_int_equal(count_test[c], 1000);
  }
  /* the sample is the head of the full set */
  char s[1024];
  sample_dir(s, sizeof s);
  wrn_dataset sm;
  WT_OK(wrn_dataset_open(&sm, s, NULL));
  assert_memory_equal(sm.train.images, ds.train.images, sm.train.n * IMG);
  assert_memory_equal(sm.test.images, ds.test.images, sm.test.n * IMG);
  wrn_dataset_free(&sm);
  wrn_dataset_free(&ds);
}

/* ---------------------------------------------------------------- loader */

/* A split whose labels are the indices and whose pixels encode them. */
static wrn_split make_split(size_t n) {
  wrn_split s = {malloc(n * IMG), malloc(n * sizeof(int32_t)), n, 3, 32, 32, 10};
  for (size_t i = 0; i < n; i++) {
    s.labels[i] = (int32_t)i;
    for (size_t k = 0; k < IMG; k++) s.images[i * IMG + k] = (uint8_t)(i * 13 + k);
  }
  return s;
}

static void free_split(wrn_split *s) { free(s->images), free(s->labels); }

/* Runs one epoch from first_step, appending every label seen to order[] (returns how
 * many) and checking each batch's images, indices and step. */
static size_t run_epoch(wrn_loader *L, const wrn_split *s, uint64_t epoch, int64_t first_step,
                        int32_t *order, int *counts, int *nbatches) {
  WT_OK(wrn_loader_start_epoch(L, epoch, first_step));
  size_t got = 0;
  int nb = 0;
  for (;;) {
    wrn_batch b;
    WT_OK(wrn_loader_next(L, &b));
    if (b.count == 0) break;
    assert_int_equal(b.step, first_step + nb);
    for (int j = 0; j < b.count; j++) {
      int32_t idx = b.labels[j];
      assert_int_equal((uint32_t)idx, b.indices[j]);
      assert_memory_equal(b.images + (size_t)j * IMG, s->images + (size_t)idx * IMG, IMG);
      order[got++] = idx;
    }
    if (counts) counts[nb] = b.count;
    nb++;
  }
  if (nbatches) *nbatches = nb;
  /* after the end it keeps saying so */
  wrn_batch b;
  WT_OK(wrn_loader_next(L, &b));
  assert_int_equal(b.count, 0);
  return got;
}

static void test_loader_epochs(void **state) {
  (void)state;
  const size_t n = 103;
  const int batch = 10;
  wrn_split s = make_split(n);
  int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  int counts[16], nb;
  wrn_loader *L;

  /* evaluation mode: every index once, last batch smaller */
  WT_OK(wrn_loader_open(&L, &s, batch, 1, 0, 42));
  assert_int_equal(wrn_loader_steps(L), 11);
  assert_int_equal(run_epoch(L, &s, 0, 0, a, counts, &nb), n);
  assert_int_equal(nb, 11);
  for (int i = 0; i < 10; i++) assert_int_equal(counts[i], batch);
  assert_int_equal(counts[10], 3);
  int *seen = calloc(n, sizeof *seen);
  for (size_t i = 0; i < n; i++) seen[a[i]]++;
  for (size_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
  int identity = 1;
  for (size_t i = 0; i < n; i++) identity &= a[i] == (int32_t)i;
  assert_false(identity);
  /* the order is wrn_shuffle_order's */
  uint32_t *perm = malloc(n * sizeof *perm);
  wrn_shuffle_order(perm, n, 42, 0);
  for (size_t i = 0; i < n; i++) assert_int_equal(a[i], (int32_t)perm[i]);

  /* same (seed, epoch): same order, also after other epochs ran in between */
  assert_int_equal(run_epoch(L, &s, 1, 0, b, NULL, NULL), n);
  assert_memory_not_equal(a, b, n * sizeof *a);
  assert_int_equal(run_epoch(L, &s, 0, 0, b, NULL, NULL), n);
  assert_memory_equal(a, b, n * sizeof *a);
  wrn_loader_free(L);

  /* another loader, same seed: same order; another seed: different */
  WT_OK(wrn_loader_open(&L, &s, batch, 1, 0, 42));
  assert_int_equal(run_epoch(L, &s, 0, 0, b, NULL, NULL), n);
  assert_memory_equal(a, b, n * sizeof *a);
  wrn_loader_free(L);
  WT_OK(wrn_loader_open(&L, &s, batch, 1, 0, 43));
  assert_int_equal(run_epoch(L, &s, 0, 0, b, NULL, NULL), n);
  assert_memory_not_equal(a, b, n * sizeof *a);
  wrn_loader_free(L);

  /* training mode: the tail of the permutation is dropped */
  WT_OK(wrn_loader_open(&L, &s, batch, 1, 1, 42));
  assert_int_equal(wrn_loader_steps(L), 10);
  assert_int_equal(run_epoch(L, &s, 0, 0, b, counts, &nb), 100);
  assert_int_equal(nb, 10);
  for (int i = 0; i < 10; i++) assert_int_equal(counts[i], batch);
  assert_memory_equal(a, b, 100 * sizeof *a);

  /* starting at step s equals skipping s batches, for every s */
  for (int64_t first = 0; first <= 10; first++) {
    size_t got = run_epoch(L, &s, 0, first, b, NULL, &nb);
    assert_int_equal(got, (size_t)(10 - first) * batch);
    assert_int_equal(nb, 10 - first);
    assert_memory_equal(a + first * batch, b, got * sizeof *b);
  }
  /* restarting while a batch is in flight, then resuming mid-epoch */
  for (int rep = 0; rep < 20; rep++) {
    wrn_batch bt;
    WT_OK(wrn_loader_start_epoch(L, 5, 0));
    WT_OK(wrn_loader_next(L, &bt));
    WT_OK(wrn_loader_start_epoch(L, 0, 3));
    WT_OK(wrn_loader_next(L, &bt));
    assert_int_equal(bt.step, 3);
    assert_int_equal(bt.count, batch);
    for (int j = 0; j < batch; j++) assert_int_equal(bt.labels[j], a[30 + j]);
  }
  wrn_loader_free(L);

  /* no shuffle: the split's order */
  WT_OK(wrn_loader_open(&L, &s, 7, 0, 0, 42));
  assert_int_equal(wrn_loader_steps(L), 15);
  assert_int_equal(run_epoch(L, &s, 3, 0, b, NULL, NULL), n);
  for (size_t i = 0; i < n; i++) assert_int_equal(b[i], (int32_t)i);
  wrn_loader_free(L);

  /* batch larger than the split in evaluation mode: one batch */
  WT_OK(wrn_loader_open(&L, &s, 1000, 1, 0, 1));
  assert_int_equal(wrn_loader_steps(L), 1);
  assert_int_equal(run_epoch(L, &s, 0, 0, b, counts, &nb), n);
  assert_int_equal(counts[0], (int)n);
  wrn_loader_free(L);

  free(seen), free(perm), free(a), free(b);
  free_split(&s);
}

static void test_loader_errors(void **state) {
  (void)state;
  wrn_split s = make_split(5);
  wrn_loader *L = NULL;
  expect_error(wrn_loader_open(&L, &s, 0, 1, 1, 0), WRN_STATUS_INVALID_ARGUMENT, "batch size 0",
               NULL);
  assert_null(L);
  expect_error(wrn_loader_open(&L, NULL, 4, 1, 1, 0), WRN_STATUS_INVALID_ARGUMENT, "split", NULL);
  expect_error(wrn_loader_open(&L, &s, 8, 1, 1, 0), WRN_STATUS_INVALID_ARGUMENT, "5 images",
               "batch of 8", NULL);
  WT_OK(wrn_loader_open(&L, &s, 2, 1, 1, 0));
  wrn_batch b;
  expect_error(wrn_loader_next(L, &b), WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_start_epoch",
               NULL);
  expect_error(wrn_loader_start_epoch(L, 0, 3), WRN_STATUS_INVALID_ARGUMENT, "first_step 3",
               "0..2", NULL);
  expect_error(wrn_loader_start_epoch(L, 0, -1), WRN_STATUS_INVALID_ARGUMENT, "first_step -1",
               NULL);
  WT_OK(wrn_loader_start_epoch(L, 0, 2)); /* resuming at the very end: an empty epoch */
  WT_OK(wrn_loader_next(L, &b));
  assert_int_equal(b.count, 0);
  wrn_loader_free(L);
  wrn_loader_free(NULL);
  free_split(&s);
}

/* The shuffle is uniform: for n = 3 each of the 6 orders shows up about equally often
 * (a biased Fisher-Yates, e.g. drawing j from all n positions, fails this clearly). */
static void test_shuffle_uniform(void **state) {
  (void)state;
  int hist[6] = {0};
  const int epochs = 6000;
  for (int e = 0; e < epochs; e++) {
    uint32_t p[3];
    wrn_shuffle_order(p, 3, 7, (uint64_t)e);
    int code = (int)(p[0] * 2 + (p[1] > p[2]));
    hist[code]++;
  }
  /* expected 1000 each, standard deviation about 29: 150 is over 5 sigma */
  for (int k = 0; k < 6; k++)
    if (hist[k] < 850 || hist[k] > 1150) fail_msg("order %d appeared %d times of %d", k, hist[k], epochs);
  uint32_t one = 99;
  wrn_shuffle_order(&one, 1, 1, 1);
  assert_int_equal(one, 0);
}

/* The loader over the real sample: one training epoch sees 1,920 distinct images. */
static void test_loader_sample(void **state) {
  (void)state;
  char dir[1024];
  sample_dir(dir, sizeof dir);
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, NULL));
  wrn_loader *L;
  WT_OK(wrn_loader_open(&L, &ds.train, 128, 1, 1, 2024));
  assert_int_equal(wrn_loader_steps(L), 15);
  WT_OK(wrn_loader_start_epoch(L, 0, 0));
  char *seen = calloc(ds.train.n, 1);
  int total = 0;
  for (;;) {
    wrn_batch b;
    WT_OK(wrn_loader_next(L, &b));
    if (!b.count) break;
    for (int j = 0; j < b.count; j++) {
      assert_false(seen[b.indices[j]]);
      seen[b.indices[j]] = 1;
      assert_int_equal(b.labels[j], ds.train.labels[b.indices[j]]);
      assert_memory_equal(b.images + (size_t)j * IMG, ds.train.images + (size_t)b.indices[j] * IMG, IMG);
    }
    total += b.count;
  }
  assert_int_equal(total, 15 * 128);
  free(seen);
  wrn_loader_free(L);
  wrn_dataset_free(&ds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sample),         cmocka_unit_test(test_limits),
      cmocka_unit_test(test_multiple_batches), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_parse),          cmocka_unit_test(test_cifar100),
      cmocka_unit_test(test_full_cifar10),   cmocka_unit_test(test_loader_epochs),
      cmocka_unit_test(test_loader_errors),  cmocka_unit_test(test_shuffle_uniform),
      cmocka_unit_test(test_loader_sample),
  };
  return WT_RUN_GROUP("cifar", tests, setup_tmp, teardown_tmp);
}
