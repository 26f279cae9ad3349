/* docs/example_train.c as a user builds it: the system C compiler, strict C11 with warnings as
 * errors, only the public headers and libwrn from this build tree (WRN_EXAMPLE_CC and
 * WRN_EXAMPLE_LIBS, set by tests/CMakeLists.txt). Run on the bundled CIFAR-10 sample, it must
 * exit 0 and report one finite training loss per epoch, falling from the first epoch to the
 * last, with a log line and a checkpoint in its run folder. */
#include "harness.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int run(const char *cmd, char *out, size_t n) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t len = fread(out, 1, n - 1, p);
  out[len] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_example_trains(void **state) {
  (void)state;
  const char *cc = getenv("WRN_EXAMPLE_CC"), *libs = getenv("WRN_EXAMPLE_LIBS"),
             *src = getenv("WRN_SOURCE_DIR");
  if (!src) src = WRN_SOURCE_DIR;
  if (!libs) fail_msg("WRN_EXAMPLE_LIBS is not set: run this test through ctest");
  char dir[] = "/tmp/wrn-example-XXXXXX", cmd[16384], out[1 << 16];
  assert_non_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd,
           "'%s' -std=c11 -Wall -Wextra -pedantic -Werror -I'%s/host' -I'%s/models' -I'%s/io' "
           "'%s/docs/example_train.c' %s -o '%s/example_train' 2>&1",
           cc ? cc : "cc", src, src, src, src, libs, dir);
  if (run(cmd, out, sizeof out) != 0) fail_msg("building the example failed:\n%s\n%s", cmd, out);
  snprintf(cmd, sizeof cmd, "'%s/example_train' '%s/data/cifar10-sample' '%s/run' 2>&1", dir,
           src, dir);
  int rc = run(cmd, out, sizeof out);
  print_message("%s", out);
  if (rc != 0) fail_msg("the example exited with %d", rc);
  double loss[8];
  int epochs = 0;
  for (const char *p = out; (p = strstr(p, "epoch ")) != NULL; p++) {
    int e;
    double l;
    if (sscanf(p, "epoch %d: train loss %lf", &e, &l) != 2) continue;
    assert_int_equal(e, epochs + 1);
    if (!isfinite(l)) fail_msg("epoch %d: train loss %g", e, l);
    if (epochs < 8) loss[epochs] = l;
    epochs++;
  }
  assert_int_equal(epochs, 3);
  if (!(loss[2] < loss[0])) fail_msg("the training loss did not fall: %g -> %g", loss[0], loss[2]);
  char p[512];
  struct stat st;
  snprintf(p, sizeof p, "%s/run/last.safetensors", dir);
  assert_int_equal(stat(p, &st), 0);
  snprintf(p, sizeof p, "%s/run/log.jsonl", dir);
  assert_int_equal(stat(p, &st), 0);
  t_rm_tree(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_example_trains)};
  return WT_RUN_GROUP("example", tests, NULL, NULL);
}
