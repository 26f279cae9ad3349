/* wrn plot, wrn compare, wrn report and wrn --version on files made here with known values:
 * the numbers they print are checked against values worked out by hand, a cut-short log line
 * is skipped with a warning, bad input gets a message and a nonzero exit, and the bench report
 * sorts, merges machines, omits empty categories and warns about a busy machine. */
#include "harness.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char cli[2048], tmp[2048];
static char out[1 << 17];

static int run(const char *fmt, ...) {
  char args[8192], cmd[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t len = fread(out, 1, sizeof out - 1, p);
  out[len] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect_in(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("expected '%s' in:\n%.6000s", needle, text);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  b[n] = '\0';
  fclose(f);
  return b;
}

static int count(const char *text, const char *needle) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)); p++) n++;
  return n;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* A run of `epochs` epochs with base_lr `lr`: test_acc = 50 + 5 e (the best is the last one,
 * except in run b, whose epoch 3 is the best), train_acc = 40 + 10 e, lr drops x0.2 at 3. */
static void make_run(const char *name, double lr, int epochs, int best3) {
  char dir[4096], path[4200], line[1024];
  snprintf(dir, sizeof dir, "%s/%s", tmp, name);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/log.jsonl", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  for (int e = 1; e <= epochs; e++) {
    double acc = best3 && e == 3 ? 90.0 : 50.0 + 5 * e;
    snprintf(line, sizeof line,
             "{\"model\":\"wrn-16-4\",\"data\":\"d\",\"base_lr\":%g,\"seed\":1,\"epoch\":%d,"
             "\"lr\":%g,\"loss\":1,\"train_loss\":1,\"train_acc\":%g,\"test_loss\":1,"
             "\"test_acc\":%g,\"train_time\":10,\"test_time\":2,\"n_parameters\":5}\n",
             lr, e, e >= 3 ? lr * 0.2 : lr, 40.0 + 10 * e, acc);
    fputs(line, f);
  }
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  const char *c = getenv("WRN_CLI");
  snprintf(cli, sizeof cli, "%s", c ? c : "../wrn");
  snprintf(tmp, sizeof tmp, "/tmp/wrn-report-XXXXXX");
  return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  t_rm_tree(tmp);
  return 0;
}

static void test_version(void **state) {
  (void)state;
  assert_int_equal(run("--version"), 0);
  char want[256];
  snprintf(want, sizeof want, "wrn %s\n", wrn_version());
  assert_string_equal(out, want);
  assert_true(strlen(wrn_version()) >= 5);
}

static void test_plot_and_compare(void **state) {
  (void)state;
  make_run("a", 0.1, 4, 0);
  make_run("b", 0.05, 4, 1);
  /* Run b: a line cut short by a crash, then epoch 4 written again (the later one counts). */
  char path[4200];
  snprintf(path, sizeof path, "%s/b/log.jsonl", tmp);
  FILE *f = fopen(path, "a");
  fputs("{\"model\":\"wrn-16-4\",\"epoch\":5,\"test_a\n", f);
  fputs("{\"model\":\"wrn-16-4\",\"data\":\"d\",\"base_lr\":0.05,\"seed\":1,\"epoch\":4,"
        "\"lr\":0.01,\"train_acc\":81,\"test_acc\":71,\"train_time\":10,\"test_time\":2}\n", f);
  fclose(f);
  assert_int_equal(run("plot %s/a %s/b/log.jsonl --out %s/p.svg --png off", tmp, tmp, tmp), 0);
  expect_in(out, "line 5");
  expect_in(out, "skipped");
  snprintf(path, sizeof path, "%s/p.svg", tmp);
  char *svg = slurp(path);
  expect_in(svg, "<svg");
  /* Run a: final test error 100 - 70 = 30%, best the last. Run b: best 10% at epoch 3, final
   * 100 - 71 = 29% (the rewritten epoch 4). */
  expect_in(svg, "wrn-16-4  a: final test error 30.00%, best 30.00% (epoch 4), 4 epochs");
  expect_in(svg, "wrn-16-4  b: final test error 29.00%, best 10.00% (epoch 3), 4 epochs");
  /* Test, train and learning rate: three lines per run, the train error dashed. */
  assert_int_equal(count(svg, "<polyline"), 6);
  assert_int_equal(count(svg, "stroke-dasharray"), 2);
  free(svg);
  /* One run: the plot goes beside its log; log scale. */
  assert_int_equal(run("plot %s/a --log --png off", tmp), 0);
  snprintf(path, sizeof path, "%s/a/curves.svg", tmp);
  svg = slurp(path);
  expect_in(svg, "log scale");
  free(svg);
  /* Compare: the option that differs, best/final errors, the summed time (4 x 12 s). */
  assert_int_equal(run("compare %s/a %s/b", tmp, tmp), 0);
  expect_in(out, "base_lr=0.1 ");
  expect_in(out, "base_lr=0.05");
  expect_in(out, "30.00% (epoch 4)");
  expect_in(out, "10.00% (epoch 3)");
  expect_in(out, "29.00%");
  expect_in(out, "48.0 s");
  if (strstr(out, "seed=")) fail_msg("seed is the same in both runs:\n%s", out);
  assert_int_equal(run("compare %s/a %s/b --markdown", tmp, tmp), 0);
  expect_in(out, "| run | model | options that differ |");
  /* Bad input. */
  assert_int_equal(run("plot %s/nowhere", tmp), 1);
  expect_in(out, "nowhere: No such file");
  snprintf(path, sizeof path, "%s/empty", tmp);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/empty/log.jsonl", tmp);
  write_file(path, "\n");
  assert_int_equal(run("compare %s/empty", tmp), 1);
  expect_in(out, "no epoch records");
  assert_int_equal(run("plot"), 2);
  assert_int_equal(run("plot %s/a --ymax -3", tmp), 2);
  expect_in(out, "--ymax");
  assert_int_equal(run("compare %s/a --sideways", tmp), 2);
  /* An unwritable output leaves no partial file and says where. */
  assert_int_equal(run("plot %s/a --out %s/no/such/dir/p.svg --png off", tmp, tmp), 1);
  expect_in(out, "no/such/dir/p.svg");
}

static const char *busy_json =
    "{\"model\":\"wrn-16-4\",\"mode\":\"train\",\"steps\":3,\"warmup\":1,\"profile_steps\":1,"
    "\"dropout\":0,\"wrn_version\":\"0.1.0-test\",\"host\":{\"name\":\"amdbox\",\"cpu\":\"Test "
    "CPU 9000\",\"os\":\"Linux\",\"cores\":8,\"load_avg_start\":[3.5,2,1],\"load_avg_end\":"
    "[4,2,1],\"other_cpu_cores\":2.5,\"busy\":true},\"rows\":[\n"
    "{\"platform\":\"AMD APP\",\"vendor\":\"AMD\",\"device\":\"Radeon Test\",\"driver\":\"1.0\","
    "\"device_index\":\"0:0\",\"batch\":128,\"ok\":true,\"error\":null,\"ms_per_step\":"
    "{\"median\":100,\"min\":99,\"p25\":99.5,\"p75\":101,\"max\":102},\"images_per_s\":1280,"
    "\"tflops\":3.1,\"peak_gflops\":20000,\"peak_share\":0.155,\"mem_peak_bytes\":1048576000,"
    "\"ready_cold_s\":2,\"ready_warm_s\":0.5,\"warmup_s\":1,\"profile\":[{\"op\":\"conv "
    "forward\",\"ms\":60,\"share\":0.6,\"launches\":16,\"gflops\":9000},{\"op\":\"batch norm\","
    "\"ms\":39.95,\"share\":0.3995,\"launches\":40,\"gflops\":null},{\"op\":\"loss\",\"ms\":0.05,"
    "\"share\":0.0005,\"launches\":1,\"gflops\":null}]},\n"
    "{\"platform\":\"AMD APP\",\"vendor\":\"AMD\",\"device\":\"Radeon Test\",\"driver\":\"1.0\","
    "\"device_index\":\"0:0\",\"batch\":100000,\"ok\":false,\"error\":\"needs 99999 MiB\"}\n]}\n";

static void test_report_merge(void **state) {
  (void)state;
  char a[4200], b[4200], dir[4200];
  snprintf(a, sizeof a, "%s/amd.json", tmp);
  write_file(a, busy_json);
  /* A result from before hosts were recorded: the folder names the machine. */
  snprintf(dir, sizeof dir, "%s/h100", tmp);
  mkdir(dir, 0755);
  snprintf(b, sizeof b, "%s/h100/bench.json", tmp);
  char src[4200];
  snprintf(src, sizeof src, "%s/docs/bench/h100/bench-16-4.json", WRN_SOURCE_DIR);
  char *old = slurp(src);
  write_file(b, old);
  free(old);
  assert_int_equal(run("report %s %s --out %s/rep", a, b, tmp), 0);
  expect_in(out, "3 rows from 2 files");
  snprintf(dir, sizeof dir, "%s/rep/report.md", tmp);
  char *md = slurp(dir);
  expect_in(md, "2 result sets from 2 machines");
  expect_in(md, "| amdbox | Test CPU 9000 | 8 |");
  expect_in(md, "**Warning:** amdbox was busy");
  expect_in(md, "2.50 of its 8 cores");
  /* Sorted by images/s within the model: the H100 (1758.6) before the Radeon (1280), then the
   * failed row. */
  const char *h = strstr(md, "| h100 | NVIDIA H100"), *r = strstr(md, "| amdbox | Radeon Test");
  const char *fl = strstr(md, "failed: needs 99999 MiB");
  assert_non_null(h), assert_non_null(r), assert_non_null(fl);
  assert_true(h < r && r < fl);
  expect_in(md, "| 1280.0 | 3.100 | 15.5% (20000) | 1000.0 |");
  /* Shares: 60% and 39.95% of 100 ms; the loss's 0.05% reads "<0.1%". */
  expect_in(md, "| conv forward | 60.00 | 60.0% | 16 | 9000.0 |");
  expect_in(md, "| loss | 0.05 | <0.1% | 1 |  |");
  free(md);
  snprintf(dir, sizeof dir, "%s/rep/profile.svg", tmp);
  char *svg = slurp(dir);
  /* Legend: only categories that occur (dropout occurs in neither file). */
  expect_in(svg, ">conv forward</text>");
  expect_in(svg, ">batch norm</text>");
  if (strstr(svg, ">dropout</text>")) fail_msg("the empty dropout category is in the legend");
  expect_in(svg, ">60%</text>");
  free(svg);
  snprintf(dir, sizeof dir, "%s/rep/images_per_s.svg", tmp);
  svg = slurp(dir);
  expect_in(svg, "1280.0 img/s, 3.10 TFLOP/s, 15.5% of its peak");
  expect_in(svg, "failed: needs 99999 MiB");
  expect_in(svg, ">amdbox</text>");
  expect_in(svg, ">h100</text>");
  free(svg);
  /* Bad input files. */
  snprintf(b, sizeof b, "%s/broken.json", tmp);
  write_file(b, "{\"model\":\"wrn-16-4\",\"rows\":[}");
  assert_int_equal(run("report %s --out %s/rep2", b, tmp), 1);
  expect_in(out, "broken.json");
  write_file(b, "{\"rows\":[]}");
  assert_int_equal(run("report %s --out %s/rep2", b, tmp), 1);
  expect_in(out, "not a wrn bench --json file");
  assert_int_equal(run("report %s/missing.json --out %s/rep2", tmp, tmp), 1);
  expect_in(out, "missing.json");
  assert_int_equal(run("report %s", a), 2);
  expect_in(out, "--out");
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_version),
                                     cmocka_unit_test(test_plot_and_compare),
                                     cmocka_unit_test(test_report_merge)};
  return WT_RUN_GROUP("report", tests, setup, teardown);
}
