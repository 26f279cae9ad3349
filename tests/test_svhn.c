/* SVHN reader on small .mat files written here with libmatio (v5 plain and compressed, v7.3
 * when this libmatio has HDF5): pixels against the column-major layout, labels 1..10 with 10
 * as digit 0, train + extra, limits, detection from the folder; and the messages for broken
 * files (wrong variable names, wrong dims, labels out of range, a y of the wrong length,
 * non-MATLAB and truncated files, a missing test file). Then wrn train on such a folder
 * takes the SVHN recipe's defaults. Skips (77) when wrn was built without libmatio. */
#include "harness.h"
#include "wrn_io.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WRN_HAVE_MATIO

int main(void) {
  printf("SKIP: wrn was built without libmatio (Debian: libmatio-dev), so there is no SVHN "
         "reader to test\n");
  return 77;
}

#else

#include <matio.h>

static char tmp_root[256];

static int setup_tmp(void **state) {
  (void)state;
  snprintf(tmp_root, sizeof tmp_root, "/tmp/wrn_test_svhn_XXXXXX");
  return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown_tmp(void **state) {
  (void)state;
  t_rm_tree(tmp_root);
  return 0;
}

static void make_case_dir(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", tmp_root, name);
  t_rm_tree(out);
  assert_int_equal(mkdir(out, 0755), 0);
}

/* The pixel of image n (global index `base + n`), channel c, row h, column w: asymmetric in
 * h and w so that a transposition shows. */
static uint8_t pixel(size_t n, int c, int h, int w) {
  return (uint8_t)(n * 37 + (size_t)c * 101 + (size_t)h * 3 + (size_t)w * 11);
}

/* The label (1..10) of image n. */
static double label_of(size_t n) { return (double)(n % 10 + 1); }

typedef struct mat_spec {
  const char *xname, *yname;
  size_t dims[4]; /* X's dims; dims[3] = N */
  int rank;
  size_t ylen;   /* y is ylen x 1 */
  double bad_label; /* 0: none; else written as label 3 */
  size_t base;   /* global index of the first image */
  enum mat_ft ver;
  enum matio_compression comp;
} mat_spec;

static mat_spec good(size_t n, size_t base) {
  mat_spec s = {"X", "y", {32, 32, 3, n}, 4, n, 0, base, MAT_FT_MAT5, MAT_COMPRESSION_NONE};
  return s;
}

/* Writes a .mat file; 0 when this libmatio cannot create that version. */
static int write_mat(const char *dir, const char *name, const mat_spec *s) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  unlink(p);
  mat_t *m = Mat_CreateVer(p, NULL, s->ver);
  if (!m) return 0;
  size_t count = 1;
  for (int i = 0; i < s->rank; i++) count *= s->dims[i];
  uint8_t *x = malloc(count);
  assert_non_null(x);
  /* MATLAB order: X(h, w, c, n) at h + 32 (w + 32 (c + 3 n)). */
  size_t d0 = s->dims[0], d1 = s->dims[1], d2 = s->rank > 2 ? s->dims[2] : 1;
  for (size_t i = 0; i < count; i++) {
    size_t h = i % d0, w = (i / d0) % d1, c = (i / (d0 * d1)) % d2, n = i / (d0 * d1 * d2);
    x[i] = pixel(s->base + n, (int)c, (int)h, (int)w);
  }
  matvar_t *v = Mat_VarCreate(s->xname, MAT_C_UINT8, MAT_T_UINT8, s->rank, (size_t *)s->dims,
                              x, 0);
  assert_non_null(v);
  assert_int_equal(Mat_VarWrite(m, v, s->comp), 0);
  Mat_VarFree(v);
  double *y = malloc((s->ylen ? s->ylen : 1) * sizeof *y);
  for (size_t i = 0; i < s->ylen; i++) y[i] = label_of(s->base + i);
  if (s->bad_label != 0 && s->ylen > 3) y[3] = s->bad_label;
  size_t yd[2] = {s->ylen, 1};
  v = Mat_VarCreate(s->yname, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, yd, y, 0);
  assert_non_null(v);
  assert_int_equal(Mat_VarWrite(m, v, s->comp), 0);
  Mat_VarFree(v);
  Mat_Close(m);
  free(x), free(y);
  return 1;
}

static void write_good_folder(const char *dir, enum mat_ft ver, enum matio_compression comp) {
  mat_spec tr = good(5, 0), ex = good(4, 5), te = good(3, 100);
  tr.ver = ex.ver = te.ver = ver;
  tr.comp = ex.comp = te.comp = comp;
  assert_true(write_mat(dir, "train_32x32.mat", &tr));
  assert_true(write_mat(dir, "extra_32x32.mat", &ex));
  assert_true(write_mat(dir, "test_32x32.mat", &te));
}

/* Every pixel and label of a split against the generator (images base .. base + n). */
static void check_split(const wrn_split *sp, size_t n, size_t base) {
  assert_int_equal(sp->n, n);
  assert_int_equal(sp->c, 3);
  assert_int_equal(sp->h, 32);
  assert_int_equal(sp->w, 32);
  for (size_t i = 0; i < n; i++) {
    int want = (int)label_of(base + i) % 10;
    if (sp->labels[i] != want)
      fail_msg("image %zu: label %d, want %d (the file's %g)", i, sp->labels[i], want,
               label_of(base + i));
    for (int c = 0; c < 3; c++)
      for (int h = 0; h < 32; h++)
        for (int w = 0; w < 32; w++) {
          uint8_t got = sp->images[i * 3072 + (size_t)c * 1024 + (size_t)h * 32 + (size_t)w];
          if (got != pixel(base + i, c, h, w))
            fail_msg("image %zu c%d (%d,%d): %d, want %d", i, c, h, w, got,
                     pixel(base + i, c, h, w));
        }
  }
}

static void read_good(enum mat_ft ver, enum matio_compression comp, const char *name) {
  char dir[512];
  make_case_dir(dir, sizeof dir, name);
  write_good_folder(dir, ver, comp);
  assert_int_equal(wrn_dataset_detect(dir), WRN_DATASET_SVHN);
  wrn_dataset ds;
  WT_OK(wrn_dataset_open(&ds, dir, NULL)); /* auto: found by train_32x32.mat; no extra */
  assert_int_equal(ds.kind, WRN_DATASET_SVHN);
  assert_int_equal(ds.n_classes, 10);
  check_split(&ds.train, 5, 0);
  check_split(&ds.test, 3, 100);
  wrn_dataset_free(&ds);
  wrn_dataset_options o = {WRN_DATASET_SVHN, WRN_LABELS_FINE, 0, 0, 1};
  WT_OK(wrn_dataset_open(&ds, dir, &o)); /* train + extra */
  check_split(&ds.train, 9, 0);
  wrn_dataset_free(&ds);
  o.train_limit = 7, o.test_limit = 2; /* the limit runs on into extra */
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  check_split(&ds.train, 7, 0);
  check_split(&ds.test, 2, 100);
  wrn_dataset_free(&ds);
}

static void test_read_v5(void **state) {
  (void)state;
  read_good(MAT_FT_MAT5, MAT_COMPRESSION_NONE, "v5");
}

static void test_read_v5_compressed(void **state) {
  (void)state;
  read_good(MAT_FT_MAT5, MAT_COMPRESSION_ZLIB, "v5z");
}

static void test_read_v73(void **state) {
  (void)state;
  char dir[512];
  make_case_dir(dir, sizeof dir, "v73probe");
  mat_spec s = good(2, 0);
  s.ver = MAT_FT_MAT73;
  if (!write_mat(dir, "train_32x32.mat", &s)) {
    printf("  this libmatio writes no v7.3 (HDF5) files; the v7.3 case is not run\n");
    return;
  }
  /* Built with HDF5, it reads them too: the official files are v5, but a re-saved one is
   * read the same. */
  read_good(MAT_FT_MAT73, MAT_COMPRESSION_NONE, "v73");
}

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

/* A good folder with train_32x32.mat replaced by `bad`. */
static wrn_status open_with_bad_train(const char *name, const mat_spec *bad, wrn_dataset *ds) {
  char dir[512];
  make_case_dir(dir, sizeof dir, name);
  write_good_folder(dir, MAT_FT_MAT5, MAT_COMPRESSION_NONE);
  assert_true(write_mat(dir, "train_32x32.mat", bad));
  wrn_dataset_options o = {WRN_DATASET_SVHN, WRN_LABELS_FINE, 0, 0, 0};
  wrn_status s = wrn_dataset_open(ds, dir, &o);
  assert_null(ds->train.images); /* nothing kept on failure */
  return s;
}

static void test_broken_files(void **state) {
  (void)state;
  wrn_dataset ds;
  mat_spec s = good(5, 0);
  s.xname = "images";
  expect_error(open_with_bad_train("xname", &s, &ds), WRN_STATUS_FORMAT, "train_32x32.mat",
               "no variable 'X'", NULL);
  s = good(5, 0);
  s.yname = "labels";
  expect_error(open_with_bad_train("yname", &s, &ds), WRN_STATUS_FORMAT, "train_32x32.mat",
               "no variable 'y'", NULL);
  s = good(5, 0);
  s.dims[2] = 1; /* greyscale */
  expect_error(open_with_bad_train("dims", &s, &ds), WRN_STATUS_FORMAT, "X is 32x32x1x5",
               "expected 32x32x3xN", NULL);
  s = good(5, 0);
  s.rank = 3, s.dims[2] = 15; /* 32x32x15: no image axis */
  s.ylen = 15;
  expect_error(open_with_bad_train("rank", &s, &ds), WRN_STATUS_FORMAT, "X is 32x32x15", NULL);
  s = good(5, 0);
  s.ylen = 4;
  expect_error(open_with_bad_train("ylen", &s, &ds), WRN_STATUS_FORMAT, "y is 4x1",
               "one label per image", NULL);
  s = good(5, 0);
  s.bad_label = 11;
  expect_error(open_with_bad_train("label11", &s, &ds), WRN_STATUS_FORMAT, "label 4 is 11",
               "outside 1..10", NULL);
  s.bad_label = -1;
  expect_error(open_with_bad_train("label0", &s, &ds), WRN_STATUS_FORMAT, "label 4 is -1",
               NULL);
  s.bad_label = 2.5;
  expect_error(open_with_bad_train("label25", &s, &ds), WRN_STATUS_FORMAT, "label 4 is 2.5",
               NULL);
}

static void test_broken_folders(void **state) {
  (void)state;
  char dir[512], p[1024];
  wrn_dataset ds;
  wrn_dataset_options o = {WRN_DATASET_SVHN, WRN_LABELS_FINE, 0, 0, 0};
  /* No test file. */
  make_case_dir(dir, sizeof dir, "notest");
  write_good_folder(dir, MAT_FT_MAT5, MAT_COMPRESSION_NONE);
  snprintf(p, sizeof p, "%s/test_32x32.mat", dir);
  unlink(p);
  expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_IO, "test_32x32.mat", "is missing",
               NULL);
  /* --svhn-extra on without extra_32x32.mat. */
  make_case_dir(dir, sizeof dir, "noextra");
  write_good_folder(dir, MAT_FT_MAT5, MAT_COMPRESSION_NONE);
  snprintf(p, sizeof p, "%s/extra_32x32.mat", dir);
  unlink(p);
  o.svhn_extra = 1;
  expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_IO, "extra_32x32.mat", NULL);
  o.svhn_extra = 0;
  WT_OK(wrn_dataset_open(&ds, dir, &o));
  wrn_dataset_free(&ds);
  /* Not a MATLAB file at all. */
  make_case_dir(dir, sizeof dir, "text");
  write_good_folder(dir, MAT_FT_MAT5, MAT_COMPRESSION_NONE);
  snprintf(p, sizeof p, "%s/train_32x32.mat", dir);
  FILE *fp = fopen(p, "wb");
  assert_non_null(fp);
  fputs("<html>404 Not Found</html>\n", fp);
  fclose(fp);
  expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_FORMAT, "train_32x32.mat",
               "not a MATLAB file", NULL);
  /* Truncated: a good compressed file cut short, then a plain one. */
  for (int z = 0; z < 2; z++) {
    make_case_dir(dir, sizeof dir, z ? "truncz" : "trunc");
    write_good_folder(dir, MAT_FT_MAT5, z ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
    snprintf(p, sizeof p, "%s/train_32x32.mat", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size / 2), 0);
    wrn_status s = wrn_dataset_open(&ds, dir, &o);
    if (s == WRN_OK) fail_msg("a truncated %s file was read", z ? "compressed" : "plain");
    assert_non_null(strstr(wrn_last_error(), "train_32x32.mat"));
    printf("  expected error: %s\n", wrn_last_error());
  }
  assert_int_equal(wrn_dataset_kind_parse("svhn", &o.kind), WRN_OK);
  assert_int_equal(o.kind, WRN_DATASET_SVHN);
  assert_string_equal(wrn_dataset_kind_name(WRN_DATASET_SVHN), "svhn");
}

/* Writes v (native order, as libmatio wrote the file) at byte `at` of path. */
static void patch_u32(const char *path, long at, uint32_t v) {
  FILE *fp = fopen(path, "r+b");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, at, SEEK_SET), 0);
  assert_int_equal(fwrite(&v, 4, 1, fp), 1);
  assert_int_equal(fclose(fp), 0);
}

/* Tags whose byte counts exceed what the file holds: refused before libmatio sizes buffers
 * from them (it allocated and touched 4 GiB for a 700-byte file; found by
 * tests/fuzz/fuzz_svhn). An uncompressed v5 file: the 128-byte header, then X's matrix tag
 * (type, bytes), its array flags (16 bytes), its dims tag at 152 and the dims at 160. */
static void test_damaged_tags(void **state) {
  (void)state;
  const struct {
    long at;
    uint32_t v;
    const char *want;
  } c[] = {{132, 0x7ffffff0u, "past the end of the file"},
           {156, 0xfffffff0u, "more than the matrix holds"},
           {172, 1000000u, "X claims 1000000 images"}};
  for (int i = 0; i < 3; i++) {
    char dir[512], p[1024], name[16];
    snprintf(name, sizeof name, "tags%d", i);
    make_case_dir(dir, sizeof dir, name);
    write_good_folder(dir, MAT_FT_MAT5, MAT_COMPRESSION_NONE);
    snprintf(p, sizeof p, "%s/train_32x32.mat", dir);
    patch_u32(p, c[i].at, c[i].v);
    wrn_dataset ds;
    wrn_dataset_options o = {WRN_DATASET_SVHN, WRN_LABELS_FINE, 0, 0, 0};
    expect_error(wrn_dataset_open(&ds, dir, &o), WRN_STATUS_FORMAT, "train_32x32.mat",
                 c[i].want, NULL);
    assert_null(ds.train.images);
    wrn_dataset_free(&ds);
  }
}

/* wrn train on an SVHN folder: the recipe's SVHN defaults, each still a flag. */
static void test_train_recipe(void **state) {
  (void)state;
  const char *cli = getenv("WRN_CLI");
  if (!cli) skip();
  char dir[512], run[600], cmd[4096], p[700];
  make_case_dir(dir, sizeof dir, "train");
  mat_spec tr = good(16, 0), ex = good(8, 16), te = good(8, 100);
  assert_true(write_mat(dir, "train_32x32.mat", &tr));
  assert_true(write_mat(dir, "extra_32x32.mat", &ex));
  assert_true(write_mat(dir, "test_32x32.mat", &te));
  for (int k = 0; k < 2; k++) {
    snprintf(run, sizeof run, "%s/run%d", tmp_root, k);
    snprintf(cmd, sizeof cmd, "%s train --data %s --model wrn-10-1 --batch 8 --epochs 1 "
             "--out %s %s > %s.out 2>&1", cli, dir, run, k ? "--lr 0.05 --svhn-extra off" : "",
             run);
    int rc = system(cmd);
    snprintf(p, sizeof p, "%s.out", run);
    size_t n = 0;
    FILE *fp = fopen(p, "rb");
    char out[1 << 15] = "";
    if (fp) {
      n = fread(out, 1, sizeof out - 1, fp);
      fclose(fp);
    }
    out[n] = '\0';
    if (rc != 0) fail_msg("%s exited %d:\n%s", cmd, rc, out);
    snprintf(p, sizeof p, "%s/log.jsonl", run);
    fp = fopen(p, "rb");
    assert_non_null(fp);
    char log[1 << 15];
    n = fread(log, 1, sizeof log - 1, fp);
    log[n] = '\0';
    fclose(fp);
    const char *want[] = {k ? "\"base_lr\":0.05" : "\"base_lr\":0.01", "\"dropout\":0.4",
                          "\"lr_decay\":0.1", "\"epochs\":1", "\"augment\":\"off\"",
                          "\"meanstd\":\"off\"", k ? "\"svhn_extra\":\"off\"" : "\"svhn_extra\":\"on\"",
                          "\"dataset\":\"auto\""};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
      if (!strstr(log, want[i])) fail_msg("log.jsonl lacks %s:\n%s", want[i], log);
    if (!strstr(out, k ? "16 training" : "24 training"))
      fail_msg("expected %d training images:\n%s", k ? 16 : 24, out);
  }
  /* wrn eval feeds the checkpoint's pixels / 255 too: the accuracy it prints is the one the
   * run logged for its last epoch. */
  snprintf(cmd, sizeof cmd, "%s eval --checkpoint %s/last.safetensors --data %s > %s.eval 2>&1",
           cli, run, dir, run);
  int rc = system(cmd);
  snprintf(p, sizeof p, "%s.eval", run);
  FILE *fp = fopen(p, "rb");
  char out[1 << 15] = "";
  size_t n = fp ? fread(out, 1, sizeof out - 1, fp) : 0;
  if (fp) fclose(fp);
  out[n] = '\0';
  if (rc != 0) fail_msg("%s exited %d:\n%s", cmd, rc, out);
  snprintf(p, sizeof p, "%s/log.jsonl", run);
  fp = fopen(p, "rb");
  assert_non_null(fp);
  char log[1 << 15];
  n = fread(log, 1, sizeof log - 1, fp);
  log[n] = '\0';
  fclose(fp);
  const char *ta = strstr(log, "\"test_acc\":");
  const char *acc = strstr(out, "accuracy ");
  assert_non_null(ta);
  assert_non_null(acc);
  double logged = strtod(ta + 11, NULL), printed = strtod(acc + 9, NULL);
  if (fabs(logged - printed) > 0.006)
    fail_msg("wrn eval prints accuracy %.2f%%, the run logged %.4f%%:\n%s", printed, logged, out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_v5), cmocka_unit_test(test_read_v5_compressed),
      cmocka_unit_test(test_read_v73), cmocka_unit_test(test_broken_files),
      cmocka_unit_test(test_broken_folders), cmocka_unit_test(test_damaged_tags),
      cmocka_unit_test(test_train_recipe)};
  return WT_RUN_GROUP("svhn", tests, setup_tmp, teardown_tmp);
}

#endif
