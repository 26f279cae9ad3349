/* safetensors: the writer's bytes against hand-built files laid out by the format's rules
 * (and the reference implementation's own known answer), round trips over every writer
 * dtype, atomic replacement, and the reader's refusal of truncated, out-of-range,
 * overlapping, inconsistent and malformed files. The expected bytes are little-endian; the
 * project only targets little-endian hosts. */
#include "harness.h"
#include "wrn_io.h"

#include <dirent.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[256];

static int setup_tmp(void **state) {
  (void)state;
  snprintf(tmp_root, sizeof tmp_root, "/tmp/wrn_test_st_XXXXXX");
  return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown_tmp(void **state) {
  (void)state;
  t_rm_tree(tmp_root);
  return 0;
}

static void tmp_path(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/%s", tmp_root, name);
}

static unsigned char *slurp(const char *path, size_t *size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) fail_msg("cannot open %s", path);
  fseek(fp, 0, SEEK_END);
  long n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  *size = (size_t)n;
  return b;
}

static void spit(const char *path, const void *d, size_t n) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(d, 1, n, fp), n);
  fclose(fp);
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

/* A file image: 8-byte little-endian length of `header` (taken as given, padding
 * included), the header, then `data`. */
static unsigned char *file_image(const char *header, const void *data, size_t ndata,
                                 size_t *size) {
  size_t h = strlen(header);
  *size = 8 + h + ndata;
  unsigned char *b = malloc(*size);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(b + 8, header, h);
  if (ndata) memcpy(b + 8 + h, data, ndata);
  return b;
}

static void expect_file(const char *path, const unsigned char *want, size_t n) {
  size_t size;
  unsigned char *got = slurp(path, &size);
  if (size != n) fail_msg("%s: %zu bytes, expected %zu", path, size, n);
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i])
      fail_msg("%s: byte %zu is 0x%02x, expected 0x%02x", path, i, got[i], want[i]);
  free(got);
}

/* ---------------------------------------------------------------- exact layout */

static void test_exact_bytes(void **state) {
  (void)state;
  char path[512];
  tmp_path(path, sizeof path, "exact.safetensors");
  wrn_st_writer *w;
  size_t n;
  unsigned char *want;

  /* {"a": F32 [2] = 1, 2}: 54 bytes of JSON padded with 2 spaces to 56 */
  static const unsigned char a_data[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};
  const float a[2] = {1.0f, 2.0f};
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_add(w, "a", WRN_ST_F32, 1, (const int64_t[]){2}, a));
  WT_OK(wrn_st_writer_write(w, path));
  wrn_st_writer_free(w);
  want = file_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}  ", a_data, 8,
                    &n);
  assert_int_equal(n, 8 + 56 + 8);
  assert_int_equal(want[0], 56);
  expect_file(path, want, n);
  free(want);

  /* The reference implementation's own known answer: "attn.0" F32 [1,2,3] = 0..5 gives
   * exactly 64 bytes of JSON, so no padding. */
  static const unsigned char attn_data[24] = {0, 0, 0, 0,    0, 0, 0x80, 0x3f, 0, 0, 0,    0x40,
                                              0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40};
  const float attn[6] = {0, 1, 2, 3, 4, 5};
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_add(w, "attn.0", WRN_ST_F32, 3, (const int64_t[]){1, 2, 3}, attn));
  WT_OK(wrn_st_writer_write(w, path));
  wrn_st_writer_free(w);
  want = file_image("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}",
                    attn_data, 24, &n);
  assert_int_equal(want[0], 64);
  expect_file(path, want, n);
  free(want);

  /* Order: metadata first, then descending dtype alignment (I64, F32, U8) whatever the
   * order of adding; a scalar has shape []; metadata strings escaped the way serde_json
   * does. 217 bytes of JSON + 7 spaces = 224. */
  const int64_t c = -2;
  const float fa = 0.5f;
  const uint8_t fb[3] = {1, 2, 3};
  static const unsigned char mixed_data[15] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                               0x00, 0x00, 0x00, 0x3f, 1,    2,    3};
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_add(w, "b", WRN_ST_U8, 1, (const int64_t[]){3}, fb));
  WT_OK(wrn_st_writer_add(w, "a", WRN_ST_F32, 1, (const int64_t[]){1}, &fa));
  WT_OK(wrn_st_writer_add(w, "c", WRN_ST_I64, 0, NULL, &c));
  WT_OK(wrn_st_writer_meta(w, "format", "pt"));
  WT_OK(wrn_st_writer_meta(w, "note", "a\"b\\c\n\x01"));
  WT_OK(wrn_st_writer_write(w, path));
  wrn_st_writer_free(w);
  want = file_image("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"a\\\"b\\\\c\\n\\u0001\"},"
                    "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                    "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[12,15]}}       ",
                    mixed_data, 15, &n);
  assert_int_equal(want[0], 224);
  expect_file(path, want, n);
  free(want);
  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, path));
  assert_int_equal(wrn_st_count(f), 3);
  assert_string_equal(wrn_st_meta(f, "note"), "a\"b\\c\n\x01");
  assert_string_equal(wrn_st_meta(f, "format"), "pt");
  const wrn_st_tensor *t = wrn_st_find(f, "c");
  assert_non_null(t);
  assert_int_equal(t->ndim, 0);
  assert_int_equal(t->numel, 1);
  int64_t cc;
  WT_OK(wrn_st_read(f, "c", WRN_ST_I64, 0, NULL, &cc, sizeof cc));
  assert_int_equal(cc, -2);
  wrn_st_close(f);

  /* no tensors: "{}" and 6 spaces */
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_write(w, path));
  wrn_st_writer_free(w);
  want = file_image("{}      ", NULL, 0, &n);
  expect_file(path, want, n);
  free(want);
  WT_OK(wrn_st_open(&f, path));
  assert_int_equal(wrn_st_count(f), 0);
  assert_null(wrn_st_find(f, "a"));
  wrn_st_close(f);
}

/* ---------------------------------------------------------------- round trip */

static void test_roundtrip(void **state) {
  (void)state;
  char path[512];
  tmp_path(path, sizeof path, "roundtrip.safetensors");
  enum { NW = 16 * 3 * 3 * 3 };
  float *conv = malloc(NW * sizeof *conv);
  double bias[10];
  int64_t step = 123456789012345LL;
  uint32_t lab[7];
  uint8_t img[2 * 3 * 4];
  double r[NW];
  t_rand(r, NW, -1, 1, 5);
  for (int i = 0; i < NW; i++) conv[i] = (float)r[i];
  t_rand(bias, 10, -1e10, 1e10, 6);
  for (int i = 0; i < 7; i++) lab[i] = 0xfffffff0u + (uint32_t)i;
  for (int i = 0; i < 24; i++) img[i] = (uint8_t)(255 - i);

  wrn_st_writer *w;
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_add(w, "img", WRN_ST_U8, 3, (const int64_t[]){2, 3, 4}, img));
  WT_OK(wrn_st_writer_add(w, "group0.block0.conv0", WRN_ST_F32, 4, (const int64_t[]){16, 3, 3, 3},
                          conv));
  WT_OK(wrn_st_writer_add(w, "labels", WRN_ST_U32, 1, (const int64_t[]){7}, lab));
  WT_OK(wrn_st_writer_add(w, "fc.bias", WRN_ST_F64, 1, (const int64_t[]){10}, bias));
  WT_OK(wrn_st_writer_add(w, "step", WRN_ST_I64, 0, NULL, &step));
  WT_OK(wrn_st_writer_add(w, "empty", WRN_ST_F32, 2, (const int64_t[]){0, 5}, NULL));
  WT_OK(wrn_st_writer_add(w, "gr\xc3\xbc\xc3\x9f \"q\"", WRN_ST_U8, 1, (const int64_t[]){1}, img));
  WT_OK(wrn_st_writer_meta(w, "config", "{\"depth\": 28, \"k\": 10}"));
  WT_OK(wrn_st_writer_meta(w, "tab\tkey", "caf\xc3\xa9 \xf0\x9f\x98\x80 \x1f"));
  WT_OK(wrn_st_writer_meta(w, "", ""));
  WT_OK(wrn_st_writer_write(w, path));
  wrn_st_writer_free(w);

  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, path));
  assert_int_equal(wrn_st_count(f), 7);
  /* file order: the format's dtype order descending (I64 > F64 > F32 > U32 > U8), then
   * name; each tensor aligned to its element size */
  const char *order[] = {"step", "fc.bias", "empty", "group0.block0.conv0", "labels",
                         "gr\xc3\xbc\xc3\x9f \"q\"", "img"};
  const unsigned char *prev_end = NULL;
  for (int i = 0; i < 7; i++) {
    const wrn_st_tensor *t = wrn_st_at(f, i);
    assert_string_equal(t->name, order[i]);
    assert_int_equal((uintptr_t)t->data % wrn_st_dtype_size(t->dtype), 0);
    if (prev_end) assert_ptr_equal(t->data, prev_end);
    prev_end = (const unsigned char *)t->data + t->nbytes;
  }
  assert_null(wrn_st_at(f, 7));
  assert_null(wrn_st_at(f, -1));

  const wrn_st_tensor *t = wrn_st_find(f, "group0.block0.conv0");
  assert_non_null(t);
  assert_int_equal(t->dtype, WRN_ST_F32);
  assert_int_equal(t->ndim, 4);
  assert_int_equal(t->shape[0], 16), assert_int_equal(t->shape[3], 3);
  assert_int_equal(t->numel, NW);
  float *conv2 = malloc(NW * sizeof *conv2);
  WT_OK(wrn_st_read(f, "group0.block0.conv0", WRN_ST_F32, 4, (const int64_t[]){16, 3, 3, 3}, conv2,
                    NW * sizeof *conv2));
  assert_memory_equal(conv, conv2, NW * sizeof *conv);
  double bias2[10];
  WT_OK(wrn_st_read(f, "fc.bias", WRN_ST_F64, -1, NULL, bias2, sizeof bias2));
  assert_memory_equal(bias, bias2, sizeof bias);
  int64_t step2;
  WT_OK(wrn_st_read(f, "step", WRN_ST_I64, 0, NULL, &step2, sizeof step2));
  assert_true(step2 == step);
  uint32_t lab2[7];
  WT_OK(wrn_st_read(f, "labels", WRN_ST_U32, 1, (const int64_t[]){7}, lab2, sizeof lab2));
  assert_memory_equal(lab, lab2, sizeof lab);
  uint8_t img2[24];
  WT_OK(wrn_st_read(f, "img", WRN_ST_U8, 3, (const int64_t[]){2, 3, 4}, img2, sizeof img2));
  assert_memory_equal(img, img2, sizeof img);
  t = wrn_st_find(f, "empty");
  assert_int_equal(t->nbytes, 0);
  assert_int_equal(t->shape[0], 0), assert_int_equal(t->shape[1], 5);
  WT_OK(wrn_st_read(f, "empty", WRN_ST_F32, 2, (const int64_t[]){0, 5}, NULL, 0));
  t = wrn_st_find(f, "gr\xc3\xbc\xc3\x9f \"q\"");
  assert_non_null(t);
  assert_int_equal(((const uint8_t *)t->data)[0], 255);

  assert_int_equal(wrn_st_meta_count(f), 3);
  assert_string_equal(wrn_st_meta(f, "config"), "{\"depth\": 28, \"k\": 10}");
  assert_string_equal(wrn_st_meta(f, "tab\tkey"), "caf\xc3\xa9 \xf0\x9f\x98\x80 \x1f");
  assert_string_equal(wrn_st_meta(f, ""), "");
  assert_null(wrn_st_meta(f, "missing"));
  const char *k, *v;
  wrn_st_meta_at(f, 0, &k, &v);
  assert_string_equal(k, "config");
  wrn_st_meta_at(f, 3, &k, &v);
  assert_null(k), assert_null(v);

  /* checked reads name the file and the tensor */
  expect_error(wrn_st_read(f, "fc.bias", WRN_ST_F32, -1, NULL, bias2, sizeof bias2),
               WRN_STATUS_FORMAT, "roundtrip.safetensors", "fc.bias", "F64", "F32", NULL);
  expect_error(wrn_st_read(f, "labels", WRN_ST_U32, 1, (const int64_t[]){8}, lab2, sizeof lab2),
               WRN_STATUS_FORMAT, "roundtrip.safetensors", "labels", "[7]", "[8]", NULL);
  expect_error(wrn_st_read(f, "labels", WRN_ST_U32, 2, (const int64_t[]){7, 1}, lab2, sizeof lab2),
               WRN_STATUS_FORMAT, "labels", "[7, 1]", NULL);
  expect_error(wrn_st_read(f, "fc.weight", WRN_ST_F32, -1, NULL, bias2, 4), WRN_STATUS_FORMAT,
               "roundtrip.safetensors", "fc.weight", NULL);
  expect_error(wrn_st_read(f, "labels", WRN_ST_U32, -1, NULL, lab2, 4), WRN_STATUS_INVALID_ARGUMENT,
               "labels", "28 bytes", NULL);
  wrn_st_close(f);
  free(conv), free(conv2);
}

static void test_writer_args(void **state) {
  (void)state;
  wrn_st_writer *w;
  float x[4] = {0};
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_add(w, "x", WRN_ST_F32, 1, (const int64_t[]){4}, x));
  expect_error(wrn_st_writer_add(w, "x", WRN_ST_F32, 1, (const int64_t[]){4}, x),
               WRN_STATUS_INVALID_ARGUMENT, "'x'", "already", NULL);
  expect_error(wrn_st_writer_add(w, "__metadata__", WRN_ST_F32, 1, (const int64_t[]){4}, x),
               WRN_STATUS_INVALID_ARGUMENT, "__metadata__", NULL);
  expect_error(wrn_st_writer_add(w, "", WRN_ST_F32, 1, (const int64_t[]){4}, x),
               WRN_STATUS_INVALID_ARGUMENT, "not allowed", NULL);
  expect_error(wrn_st_writer_add(w, "neg", WRN_ST_F32, 1, (const int64_t[]){-1}, x),
               WRN_STATUS_INVALID_ARGUMENT, "'neg'", "-1", NULL);
  expect_error(wrn_st_writer_add(w, "nul", WRN_ST_F32, 1, (const int64_t[]){4}, NULL),
               WRN_STATUS_INVALID_ARGUMENT, "'nul'", "NULL data", NULL);
  expect_error(wrn_st_writer_add(w, "dt", (wrn_st_dtype)99, 1, (const int64_t[]){4}, x),
               WRN_STATUS_INVALID_ARGUMENT, "'dt'", "dtype 99", NULL);
  expect_error(wrn_st_writer_add(w, "bad\xff", WRN_ST_F32, 1, (const int64_t[]){4}, x),
               WRN_STATUS_INVALID_ARGUMENT, "UTF-8", NULL);
  expect_error(wrn_st_writer_add(w, "big", WRN_ST_F64, 2,
                                 (const int64_t[]){INT64_C(1) << 40, INT64_C(1) << 40}, x),
               WRN_STATUS_INVALID_ARGUMENT, "'big'", "too large", NULL);
  WT_OK(wrn_st_writer_meta(w, "k", "v"));
  expect_error(wrn_st_writer_meta(w, "k", "w"), WRN_STATUS_INVALID_ARGUMENT, "'k'", NULL);
  char path[512];
  tmp_path(path, sizeof path, "no_such_dir/x.safetensors");
  expect_error(wrn_st_writer_write(w, path), WRN_STATUS_IO, "no_such_dir/x.safetensors", NULL);
  wrn_st_writer_free(w);
  assert_int_equal(wrn_st_dtype_size(WRN_ST_BF16), 2);
  assert_string_equal(wrn_st_dtype_name(WRN_ST_U64), "U64");
  assert_string_equal(wrn_st_dtype_name((wrn_st_dtype)99), "?");
}

/* ---------------------------------------------------------------- atomic replacement */

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static wrn_status write_one(const char *path, float value) {
  wrn_st_writer *w;
  WT_OK(wrn_st_writer_new(&w));
  WT_OK(wrn_st_writer_add(w, "v", WRN_ST_F32, 1, (const int64_t[]){1}, &value));
  wrn_status st = wrn_st_writer_write(w, path);
  wrn_st_writer_free(w);
  return st;
}

static float read_one(const char *path) {
  wrn_st_file *f;
  float v = -1;
  WT_OK(wrn_st_open(&f, path));
  WT_OK(wrn_st_read(f, "v", WRN_ST_F32, 1, (const int64_t[]){1}, &v, sizeof v));
  wrn_st_close(f);
  return v;
}

static void test_atomic(void **state) {
  (void)state;
  char dir[512], path[600], sub[600];
  tmp_path(dir, sizeof dir, "atomic");
  assert_int_equal(mkdir(dir, 0755), 0);
  snprintf(path, sizeof path, "%s/ck.safetensors", dir);
  WT_OK(write_one(path, 1.0f));
  WT_OK(write_one(path, 2.0f)); /* replaces */
  assert_true(read_one(path) == 2.0f);
  assert_int_equal(count_entries(dir), 1); /* no temporary left behind */

  /* the target is a non-empty folder: the rename fails after the whole file was written;
   * the temporary goes away and the folder stays */
  snprintf(sub, sizeof sub, "%s/ck_dir", dir);
  assert_int_equal(mkdir(sub, 0755), 0);
  char inner[700];
  snprintf(inner, sizeof inner, "%s/keep", sub);
  spit(inner, "x", 1);
  expect_error(write_one(sub, 3.0f), WRN_STATUS_IO, "ck_dir", "rename", "not changed", NULL);
  assert_int_equal(count_entries(dir), 2);
  assert_int_equal(count_entries(sub), 1);

  /* a read-only folder: no temporary can be made, the old file stays (root ignores the
   * permission, so this part needs an ordinary user) */
  if (geteuid() != 0) {
    assert_int_equal(chmod(dir, 0555), 0);
    expect_error(write_one(path, 4.0f), WRN_STATUS_IO, "ck.safetensors", "temporary", NULL);
    assert_int_equal(chmod(dir, 0755), 0);
    assert_true(read_one(path) == 2.0f);
    assert_int_equal(count_entries(dir), 2);
  } else {
    printf("  running as root: read-only folder case skipped\n");
  }
}

/* ---------------------------------------------------------------- reader rejects */

static void expect_reject(const char *name, const unsigned char *img, size_t n, ...) {
  char path[512];
  tmp_path(path, sizeof path, name);
  spit(path, img, n);
  wrn_st_file *f = (wrn_st_file *)1;
  wrn_status st = wrn_st_open(&f, path);
  assert_null(f);
  const char *msg = wrn_last_error();
  if (st != WRN_STATUS_FORMAT) fail_msg("%s: expected FORMAT, got %s: %s", name, wrn_status_name(st), msg);
  if (!strstr(msg, name)) fail_msg("%s: message does not name the file: %s", name, msg);
  va_list ap;
  va_start(ap, n);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
    if (!strstr(msg, s)) fail_msg("%s: message lacks '%s': %s", name, s, msg);
  va_end(ap);
  printf("  expected error: %s\n", msg);
  unlink(path);
}

/* Rejects a header (as given) followed by `ndata` zero bytes. */
static void reject_header(const char *name, const char *header, size_t ndata, ...) {
  unsigned char zeros[64] = {0};
  size_t n;
  unsigned char *img = file_image(header, zeros, ndata, &n);
  char path[512];
  tmp_path(path, sizeof path, name);
  spit(path, img, n);
  free(img);
  wrn_st_file *f = (wrn_st_file *)1;
  wrn_status st = wrn_st_open(&f, path);
  assert_null(f);
  const char *msg = wrn_last_error();
  if (st != WRN_STATUS_FORMAT) fail_msg("%s: expected FORMAT, got %s: %s", name, wrn_status_name(st), msg);
  if (!strstr(msg, name)) fail_msg("%s: message does not name the file: %s", name, msg);
  va_list ap;
  va_start(ap, ndata);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
    if (!strstr(msg, s)) fail_msg("%s: message lacks '%s': %s", name, s, msg);
  va_end(ap);
  printf("  expected error: %s\n", msg);
  unlink(path);
}

/* "at byte N of the header" for the first occurrence of `marker` in `header`, plus delta */
static const char *at_byte(const char *header, const char *marker, size_t delta) {
  static char buf[64];
  const char *p = strstr(header, marker);
  assert_non_null(p);
  snprintf(buf, sizeof buf, "at byte %zu of the header", (size_t)(p - header) + delta);
  return buf;
}

#define TA "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_reader_rejects(void **state) {
  (void)state;
  /* a valid file to cut up */
  size_t n;
  unsigned char zeros[16] = {0};
  unsigned char *good = file_image(TA "}", zeros, 8, &n);
  char path[512];
  tmp_path(path, sizeof path, "good.safetensors");
  spit(path, good, n);
  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, path)); /* unpadded headers are legal */
  wrn_st_close(f);

  expect_reject("short.safetensors", good, 5, "5 bytes", "8-byte", NULL);
  expect_reject("truncated.safetensors", good, n - 1, "'a'", "past the end", "7 bytes", NULL);
  expect_reject("nodata.safetensors", good, n - 8, "'a'", "past the end", NULL);
  unsigned char *longer = malloc(n + 1);
  memcpy(longer, good, n);
  longer[n] = 0;
  expect_reject("longer.safetensors", longer, n + 1, "end at byte 8", "9 bytes", NULL);
  free(longer);
  unsigned char bad_len[sizeof zeros + 8];
  memcpy(bad_len, good, 8 + 16);
  bad_len[0] = 200; /* header length 200 in a 24-byte file */
  expect_reject("hlen_past_eof.safetensors", bad_len, 24, "header length 200", "past the end",
                NULL);
  memset(bad_len, 0, 8);
  expect_reject("hlen_zero.safetensors", bad_len, 24, "header length 0", NULL);
  memset(bad_len, 0, 8);
  bad_len[5] = 1; /* 2^40 */
  expect_reject("hlen_huge.safetensors", bad_len, 24, "limit", NULL);
  free(good);

  /* offsets and sizes */
  reject_header("overlap.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, "'b'", "overlap", "'a'", NULL);
  reject_header("out_of_range.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                12, "'b'", "[8, 16]", "past the end", "12 bytes", NULL);
  reject_header("huge_offset.safetensors",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                "\"data_offsets\":[18446744073709551614,18446744073709551615]}}",
                1, "'a'", "past the end", NULL);
  reject_header("size_mismatch.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a'",
                "need 12 bytes", "hold 8", NULL);
  reject_header("gap.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
                20, "8..12", "'b'", NULL);
  reject_header("backwards.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "'a'",
                "end before", NULL);
  reject_header("dtype.safetensors", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                8, "'a'", "unknown dtype 'F33'", NULL);
  reject_header("offsets3.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "'a'",
                "data_offsets", NULL);
  reject_header("offsets_neg.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-0,8]}}", 8, "'a'",
                "data_offsets", NULL);
  reject_header("shape_float.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "'a'",
                "shape entry 0", NULL);
  reject_header("shape_missing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}",
                8, "'a'", "\"shape\"", NULL);
  reject_header("shape_overflow.safetensors",
                "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],"
                "\"data_offsets\":[0,8]}}",
                8, "'a'", "too large", NULL);
  reject_header("meta_number.safetensors", "{\"__metadata__\":{\"epoch\":3}}", 0, "epoch",
                "not a string", NULL);
  reject_header("meta_array.safetensors", "{\"__metadata__\":[]}", 0, "__metadata__", NULL);
  reject_header("not_object.safetensors", "{\"a\":[1,2]}", 0, "'a'", "not described", NULL);

  /* malformed JSON, with the position of the fault */
  const char *h;
  reject_header("unterminated.safetensors", TA, 8, "unterminated object", NULL);
  reject_header("trailing_comma.safetensors", TA ",}", 8, "trailing comma in an object",
                at_byte(TA ",}", ",}", 1), NULL);
  h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}";
  reject_header("trailing_comma_arr.safetensors", h, 8, "trailing comma in an array",
                at_byte(h, ",]", 1), NULL);
  reject_header("bare_key.safetensors", "{a:1}", 0, "object key", "at byte 1 ", NULL);
  h = "{\"a\":{\"dtype\":\"F\\q32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  reject_header("bad_escape.safetensors", h, 8, "invalid escape", at_byte(h, "\\q", 0), NULL);
  h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}";
  reject_header("leading_zero.safetensors", h, 8, "leading zero", at_byte(h, "02", 0), NULL);
  h = TA "} x";
  reject_header("garbage_after.safetensors", h, 8, "after the JSON object", at_byte(h, "x", 0),
                NULL);
  reject_header("array_root.safetensors", "[]      ", 0, "must start with '{'", NULL);
  reject_header("control_char.safetensors", "{\"a\nb\":1}", 0, "control character",
                "at byte 3 ", NULL);
  reject_header("bad_utf8.safetensors", "{\"a\xff\":1}", 0, "UTF-8", "at byte 3 ", NULL);
  reject_header("overlong_utf8.safetensors", "{\"a\xc0\xaf\":1}", 0, "UTF-8", NULL);
  reject_header("bad_literal.safetensors", "{\"a\":tru}", 0, "unexpected character 't'",
                "at byte 5 ", NULL);
  reject_header("duplicate.safetensors",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}",
                0, "duplicate key", at_byte("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],"
                "\"data_offsets\":[0,0]},\"a\"", "},\"a\"", 2), NULL);
  reject_header("lone_surrogate.safetensors", "{\"\\ud800x\":1}", 0, "surrogate", NULL);
  reject_header("nul_escape.safetensors", "{\"a\\u0000\":1}", 0, "\\u0000", NULL);
  reject_header("bad_number.safetensors", "{\"a\":-}", 0, "bad number", NULL);
  reject_header("bad_exponent.safetensors", "{\"a\":1e}", 0, "exponent", NULL);
  reject_header("missing_colon.safetensors", "{\"a\" 1}", 0, "':' expected", NULL);
  reject_header("unterminated_string.safetensors", "{\"abc", 0, "unterminated string", NULL);
  char deep[400];
  strcpy(deep, "{\"a\":");
  for (int i = 0; i < 100; i++) strcat(deep, "[");
  for (int i = 0; i < 100; i++) strcat(deep, "]");
  strcat(deep, "}");
  reject_header("deep.safetensors", deep, 0, "nesting too deep", NULL);
}

/* A file written by hand in another style: pretty-printed, escaped names, metadata null,
 * tensors listed out of offset order. */
static void test_reader_accepts(void **state) {
  (void)state;
  const char *h = "{\n  \"b\\u00e9\": {\"shape\": [1], \"dtype\": \"U8\", \"data_offsets\": [2, 3]},\n"
                  "  \"__metadata__\": null,\n"
                  "  \"\\ud83d\\ude00\\/x\": {\"dtype\": \"I16\", \"shape\": [], \"data_offsets\": "
                  "[0, 2], \"extra\": {\"ignored\": [true, false, null, -1.5e3]}}\n}\n   ";
  const unsigned char data[3] = {0x34, 0x12, 0x7f};
  size_t n;
  unsigned char *img = file_image(h, data, 3, &n);
  char path[512];
  tmp_path(path, sizeof path, "accept.safetensors");
  spit(path, img, n);
  free(img);
  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, path));
  assert_int_equal(wrn_st_count(f), 2);
  assert_int_equal(wrn_st_meta_count(f), 0);
  assert_string_equal(wrn_st_at(f, 0)->name, "\xf0\x9f\x98\x80/x");
  assert_string_equal(wrn_st_at(f, 1)->name, "b\xc3\xa9");
  int16_t s;
  WT_OK(wrn_st_read(f, "\xf0\x9f\x98\x80/x", WRN_ST_I16, 0, NULL, &s, sizeof s));
  assert_int_equal(s, 0x1234);
  uint8_t u;
  WT_OK(wrn_st_read(f, "b\xc3\xa9", WRN_ST_U8, 1, (const int64_t[]){1}, &u, 1));
  assert_int_equal(u, 0x7f);
  wrn_st_close(f);

  tmp_path(path, sizeof path, "missing.safetensors");
  f = (wrn_st_file *)1;
  expect_error(wrn_st_open(&f, path), WRN_STATUS_IO, "missing.safetensors", NULL);
  assert_null(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_bytes),    cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_writer_args),    cmocka_unit_test(test_atomic),
      cmocka_unit_test(test_reader_rejects), cmocka_unit_test(test_reader_accepts),
  };
  return WT_RUN_GROUP("safetensors", tests, setup_tmp, teardown_tmp);
}
