/* The public JSON reader (wrn_jv_*): values of every type, accessors that tolerate NULL and
 * wrong types, numbers read exactly (against strtod and against what wrn_json writes), and
 * refusals that name the text and the byte. The grammar's corner cases are covered through
 * the safetensors header tests, which use the same parser. */
#include "harness.h"
#include "wrn_io.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static wrn_jv *parse(const char *text) {
  wrn_jv *v = NULL;
  WT_OK(wrn_jv_parse(&v, text, strlen(text), "test"));
  return v;
}

static void test_values(void **state) {
  (void)state;
  const char *t = " {\"a\": [1, -2.5e3, 0.1, 18446744073709551615, true, false, null],"
                  " \"s\": \"x\\u00e9\\n\\ud83d\\ude00\", \"o\": {\"k\": {}}, \"e\": []} ";
  wrn_jv *v = parse(t);
  assert_int_equal(wrn_jv_kind(v), WRN_JV_OBJECT);
  assert_int_equal(wrn_jv_count(v), 4);
  assert_string_equal(wrn_jv_key(v, 0), "a");
  assert_string_equal(wrn_jv_key(v, 3), "e");
  assert_null(wrn_jv_key(v, 4));
  const wrn_jv *a = wrn_jv_get(v, "a");
  assert_int_equal(wrn_jv_kind(a), WRN_JV_ARRAY);
  assert_int_equal(wrn_jv_count(a), 7);
  assert_true(wrn_jv_number(wrn_jv_item(a, 0), NAN) == 1.0);
  assert_true(wrn_jv_number(wrn_jv_item(a, 1), NAN) == -2500.0);
  assert_true(wrn_jv_number(wrn_jv_item(a, 2), NAN) == 0.1);
  assert_true(wrn_jv_number(wrn_jv_item(a, 3), NAN) == 18446744073709551615.0);
  assert_true(wrn_jv_number(wrn_jv_item(a, 4), NAN) == 1.0);
  assert_int_equal(wrn_jv_kind(wrn_jv_item(a, 4)), WRN_JV_BOOL);
  assert_true(wrn_jv_number(wrn_jv_item(a, 5), NAN) == 0.0);
  assert_int_equal(wrn_jv_kind(wrn_jv_item(a, 6)), WRN_JV_NULL);
  assert_true(isnan(wrn_jv_number(wrn_jv_item(a, 6), NAN)));
  assert_null(wrn_jv_item(a, 7));
  assert_string_equal(wrn_jv_string(wrn_jv_get(v, "s")), "x\xc3\xa9\n\xf0\x9f\x98\x80");
  assert_int_equal(wrn_jv_kind(wrn_jv_get(wrn_jv_get(v, "o"), "k")), WRN_JV_OBJECT);
  assert_int_equal(wrn_jv_count(wrn_jv_get(v, "e")), 0);
  /* NULL and wrong types give NULL / 0 / the fallback, never a crash. */
  assert_null(wrn_jv_get(a, "x"));
  assert_null(wrn_jv_get(NULL, "x"));
  assert_null(wrn_jv_string(a));
  assert_null(wrn_jv_item(NULL, 0));
  assert_int_equal(wrn_jv_count(wrn_jv_get(v, "s")), 0);
  assert_true(wrn_jv_number(wrn_jv_get(v, "s"), -7) == -7);
  assert_true(wrn_jv_number(wrn_jv_get(wrn_jv_get(v, "nope"), "deeper"), 3) == 3);
  wrn_jv_free(v);
  /* A bare value is a document too. */
  v = parse("42");
  assert_true(wrn_jv_number(v, 0) == 42);
  wrn_jv_free(v);
  wrn_jv_free(NULL);
}

/* What wrn_json writes (shortest round-trip doubles) reads back bit for bit, and each number
 * agrees with strtod on the same text. */
static void test_numbers_round_trip(void **state) {
  (void)state;
  double vals[200];
  t_rand(vals, 200, -1e6, 1e6, 7);
  vals[0] = 5e-324, vals[1] = 1.7976931348623157e308, vals[2] = -0.0, vals[3] = 1.0 / 3;
  for (int i = 100; i < 200; i++) vals[i] = vals[i] * 1e-12;
  wrn_json *j;
  WT_OK(wrn_json_new(&j));
  char key[16];
  for (int i = 0; i < 200; i++) {
    snprintf(key, sizeof key, "k%d", i);
    WT_OK(wrn_json_double(j, key, vals[i]));
  }
  const char *text = wrn_json_text(j);
  wrn_jv *v = parse(text);
  assert_int_equal(wrn_jv_count(v), 200);
  for (int i = 0; i < 200; i++) {
    double got = wrn_jv_number(wrn_jv_item(v, i), NAN);
    if (memcmp(&got, &vals[i], sizeof got))
      fail_msg("k%d: wrote %.17g, read %.17g", i, vals[i], got);
  }
  wrn_jv_free(v);
  wrn_json_free(j);
  const char *nums[] = {"0", "-0", "1e-7", "6.02214076E23", "-1.5e+2", "123456789012345678901234567890"};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    v = parse(nums[i]);
    assert_true(wrn_jv_number(v, NAN) == strtod(nums[i], NULL));
    wrn_jv_free(v);
  }
}

static void expect_refused(const char *text, const char *needle) {
  wrn_jv *v = (wrn_jv *)1;
  wrn_status s = wrn_jv_parse(&v, text, strlen(text), "runs/x/log.jsonl line 3");
  assert_int_equal(s, WRN_STATUS_FORMAT);
  assert_null(v);
  const char *m = wrn_last_error();
  if (!strstr(m, needle) || !strstr(m, "runs/x/log.jsonl line 3"))
    fail_msg("'%s': expected '%s' and the name in: %s", text, needle, m);
}

static void test_refusals(void **state) {
  (void)state;
  expect_refused("{\"a\":1,}", "trailing comma in an object at byte 7");
  expect_refused("{\"a\":1} {}", "after the JSON value at byte 8");
  expect_refused("", "unexpected end");
  expect_refused("[1, 2", "unterminated array");
  expect_refused("{\"a\":1,\"a\":2}", "duplicate key");
  expect_refused("nul", "unexpected character 'n'");
  /* A line cut short by a crash. */
  expect_refused("{\"epoch\":3,\"test_acc\":9", "unterminated object");
}

/* wrn_jsonl_open_trim cuts a partial last line (and only that); records appended after it
 * are whole lines. */
static void test_log_trim(void **state) {
  (void)state;
  char path[] = "/tmp/wrn-json-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "{\"epoch\":1}\n{\"epoch\":2}\n{\"epo";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  wrn_jsonl *l;
  size_t cut = 0;
  WT_OK(wrn_jsonl_open_trim(&l, path, &cut));
  assert_int_equal(cut, 5);
  WT_OK(wrn_jsonl_append_line(l, "{\"epoch\":3}"));
  assert_int_equal(wrn_jsonl_append_line(l, "{\"a\":1}\n{}"), WRN_STATUS_INVALID_ARGUMENT);
  wrn_jsonl_close(l);
  /* Whole lines only: nothing to cut. */
  WT_OK(wrn_jsonl_open_trim(&l, path, &cut));
  assert_int_equal(cut, 0);
  wrn_jsonl_close(l);
  FILE *f = fopen(path, "rb");
  char buf[256] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  assert_string_equal(buf, "{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3}\n");
  /* A file that is one partial line becomes empty. */
  f = fopen(path, "wb");
  fputs("{\"ep", f);
  fclose(f);
  WT_OK(wrn_jsonl_open_trim(&l, path, &cut));
  assert_int_equal(cut, 4);
  wrn_jsonl_close(l);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_size, 0);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_values),
                                     cmocka_unit_test(test_numbers_round_trip),
                                     cmocka_unit_test(test_refusals),
                                     cmocka_unit_test(test_log_trim)};
  return WT_RUN_GROUP("json", tests, NULL, NULL);
}
