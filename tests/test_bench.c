/* wrn bench: the JSON output's shape (every documented key, sane values) and a failure row
 * (a batch that cannot fit gives a row with its error while the other row runs), plus the
 * report files, and the machine it ran on (host, CPU, load, other processes' use). Runs the
 * real binary on a tiny configuration. */
#include "harness.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) == (size_t)n) b[n] = '\0';
  fclose(f);
  return b;
}

static void expect(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("expected '%s' in:\n%.3000s", needle, text);
}

static void test_json_and_failure_row(void **state) {
  (void)state;
  char dir[] = "/tmp/wrn-bench-XXXXXX", cmd[8192], json[256];
  assert_non_null(mkdtemp(dir));
  snprintf(json, sizeof json, "%s/b.json", dir);
  const char *cli = getenv("WRN_CLI");
  snprintf(cmd, sizeof cmd,
           "%s bench --model wrn-10-1 --batch 4,100000 --steps 3 --warmup 1 --profile-steps 1 "
           "--json %s --report %s/report > %s/out.txt 2>&1",
           cli ? cli : "../wrn", json, dir, dir);
  int st = system(cmd);
  char outp[300];
  snprintf(outp, sizeof outp, "%s/out.txt", dir);
  char *out = slurp(outp);
  assert_non_null(out);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("wrn bench failed:\n%s", out);
  char *j = slurp(json);
  assert_non_null(j);
  /* Top level and one good row. */
  const char *top[] = {"{\"model\":\"wrn-10-1\"", "\"mode\":\"train\"", "\"steps\":3",
                       "\"warmup\":1", "\"rows\":[", "\"wrn_version\":\"",
                       "\"host\":{\"name\":\"", "\"cpu\":\"", "\"cores\":",
                       "\"load_avg_start\":[", "\"load_avg_end\":[", "\"other_cpu_cores\":",
                       "\"busy\":"};
  for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) expect(j, top[i]);
  const char *keys[] = {"\"platform\":", "\"vendor\":",     "\"device\":",
                        "\"driver\":",   "\"batch\":4,",    "\"ok\":true",
                        "\"median\":",   "\"min\":",        "\"max\":",
                        "\"images_per_s\":", "\"tflops\":", "\"peak_gflops\":",
                        "\"peak_share\":", "\"mem_peak_bytes\":", "\"ready_cold_s\":",
                        "\"ready_warm_s\":", "\"profile\":[", "\"op\":\"conv forward\"",
                        "\"op\":\"conv weight grad\"", "\"op\":\"batch norm\"",
                        "\"op\":\"optimiser\"", "\"gflops\":"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) expect(j, keys[i]);
  /* The failure row: its batch, ok false, and an error that says what the model needs. */
  char *fr = strstr(j, "\"batch\":100000");
  assert_non_null(fr);
  expect(fr, "\"ok\":false");
  expect(fr, "\"error\":\"");
  expect(fr, "MiB");
  /* Values: a positive rate in the good row. */
  char *ips = strstr(j, "\"images_per_s\":");
  assert_true(strtod(ips + 15, NULL) > 0);
  /* The report. */
  const char *files[] = {"report.md", "images_per_s.svg", "profile.svg"};
  for (size_t i = 0; i < 3; i++) {
    char p[400];
    snprintf(p, sizeof p, "%s/report/%s", dir, files[i]);
    char *r = slurp(p);
    if (!r) fail_msg("missing %s", p);
    if (i > 0) expect(r, "<svg");
    else expect(r, "| batch |");
    free(r);
  }
  expect(out, "FAILED");
  free(out), free(j);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_bad_flags(void **state) {
  (void)state;
  const char *cli = getenv("WRN_CLI");
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s bench --mode sideways >/dev/null 2>&1", cli ? cli : "../wrn");
  int st = system(cmd);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  snprintf(cmd, sizeof cmd, "%s bench --batch 0 >/dev/null 2>&1", cli ? cli : "../wrn");
  st = system(cmd);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  snprintf(cmd, sizeof cmd, "%s bench --device cpu --all-devices >/dev/null 2>&1", cli ? cli : "../wrn");
  st = system(cmd);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  snprintf(cmd, sizeof cmd, "%s bench --image-size 4 >/dev/null 2>&1", cli ? cli : "../wrn");
  st = system(cmd);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

/* The ImageNet models run through bench at another image size (one step, the layers of
 * wrn-50-2 at 32x32: the stem, max pool and post-activation blocks on the device). */
static void test_resnet_step(void **state) {
  (void)state;
  const char *cli = getenv("WRN_CLI");
  char cmd[4096], out[1 << 16];
  snprintf(cmd, sizeof cmd, "%s bench --model wrn-50-2 --image-size 32 --batch 2 --steps 1 "
           "--warmup 0 --profile-steps 0 --conv-algo im2col --classes 10 2>&1", cli ? cli : "../wrn");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail_msg("%s failed:\n%s", cmd, out);
  if (!strstr(out, "wrn-50-2")) fail_msg("no model in the output:\n%s", out);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_bad_flags),
                                     cmocka_unit_test(test_resnet_step),
                                     cmocka_unit_test(test_json_and_failure_row)};
  return WT_RUN_GROUP("bench", tests, NULL, NULL);
}
