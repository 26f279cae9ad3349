/* wrn selftest on the test device: every convolution algorithm and every op gets a row and
 * passes; a result offset on purpose (WRN_SELFTEST_PERTURB, for this test) fails its rows
 * and the exit status, in a convolution and in another op; bad flags exit 2. */
#include "harness.h"

#include <string.h>
#include <sys/wait.h>

static char cli[2048], device[256];
static char out[1 << 17];

/* Runs "ENV wrn selftest ARGS" with stdout and stderr in out; returns the exit status. */
static int selftest(const char *env, const char *args) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s %s selftest --device %s %s 2>&1", env, cli, device, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t len = fread(out, 1, sizeof out - 1, p);
  out[len] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect(const char *needle) {
  if (!strstr(out, needle)) fail_msg("expected '%s' in the output:\n%s", needle, out);
}

/* Lines of out that start with `op` and end with `verdict`. */
static int rows(const char *op, const char *verdict) {
  int n = 0;
  for (const char *l = out; *l;) {
    const char *e = strchr(l, '\n');
    size_t len = e ? (size_t)(e - l) : strlen(l);
    size_t vl = strlen(verdict);
    if (!strncmp(l, op, strlen(op)) && len >= vl && !strncmp(l + len - vl, verdict, vl)) n++;
    l += len + (e != NULL);
  }
  return n;
}

static void test_all_pass(void **state) {
  (void)state;
  int rc = selftest("", "");
  if (rc != 0) fail_msg("selftest exited %d:\n%s", rc, out);
  fputs(out, stdout); /* the table, for the record */
  for (int i = 0; i < wrn_conv_algo_count(); i++) {
    char op[64];
    snprintf(op, sizeof op, "conv %s ", wrn_conv_algo_name(i));
    if (rows(op, " ok") < 1) fail_msg("no passing row for %s:\n%s", op, out);
  }
  /* im2col and implicit run all three passes. */
  assert_int_equal(rows("conv im2col ", " ok"), 3);
  static const char *const ops[] = {"gemm own ",      "gemm clblast ", "bn ",      "relu ",
                                    "add ",           "avgpool ",      "maxpool ", "dropout ",
                                    "softmax-xent ",  "sgd ",          "augment ", "linear "};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (rows(ops[i], " ok") < 1) fail_msg("no passing row for %s:\n%s", ops[i], out);
  assert_int_equal(rows("gemm own ", " ok"), 4);
  assert_int_equal(rows("", "FAIL"), 0);
  expect("checks passed");
}

static void test_failure_detected(void **state) {
  (void)state;
  /* Every GEMM row offset: all eight fail, nothing else runs, the exit status says so. */
  int rc = selftest("WRN_SELFTEST_PERTURB=gemm", "--only gemm");
  if (rc != 1) fail_msg("perturbed selftest exited %d:\n%s", rc, out);
  assert_int_equal(rows("gemm ", "FAIL"), 8);
  assert_int_equal(rows("", " ok"), 0);
  expect("8 of 8 checks FAILED");
  /* A convolution algorithm's rows. */
  rc = selftest("WRN_SELFTEST_PERTURB=im2col", "--only 'conv im2col'");
  if (rc != 1) fail_msg("perturbed selftest exited %d:\n%s", rc, out);
  assert_int_equal(rows("conv im2col ", "FAIL"), 3);
  /* The perturbation touches only the rows it names. */
  rc = selftest("WRN_SELFTEST_PERTURB=linear", "--only sgd");
  if (rc != 0) fail_msg("selftest exited %d:\n%s", rc, out);
  assert_int_equal(rows("sgd ", " ok"), 2);
}

static void test_bad_flags(void **state) {
  (void)state;
  assert_int_equal(selftest("", "--frobnicate"), 2);
  expect("--frobnicate");
  assert_int_equal(selftest("", "--only nothing-matches"), 2);
  expect("nothing-matches");
  assert_int_equal(selftest("", "--dtype half"), 2);
  expect("--dtype");
}

static int setup(void **state) {
  (void)state;
  const char *c = getenv("WRN_CLI"), *d = getenv("WRN_TEST_DEVICE");
  snprintf(cli, sizeof cli, "%s", c ? c : "../wrn");
  snprintf(device, sizeof device, "%s", d ? d : "cpu");
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_all_pass),
                                     cmocka_unit_test(test_failure_detected),
                                     cmocka_unit_test(test_bad_flags)};
  return WT_RUN_GROUP("selftest", tests, setup, NULL);
}
