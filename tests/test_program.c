/* Kernel programs: the on-disk binary cache (cold build, warm load, a corrupt or foreign entry
 * rebuilt rather than trusted, WRN_NO_CACHE), loading sources from WRN_CL_DIR, and a failing
 * build whose error carries the compiler's log. Each case uses its own cache folder. */
#include "harness.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char cache_root[256];

static wrn_ctx *open_ctx(wrn_status *st) {
  wrn_device_info dev;
  const char *sel = getenv("WRN_TEST_DEVICE");
  WT_OK(wrn_device_select(sel ? sel : "cpu", &dev));
  wrn_ctx_options o = {WRN_F32, 0, 0};
  wrn_ctx *c = NULL;
  *st = wrn_ctx_open(&c, &dev, &o);
  return c;
}

/* Paths of the cache entries, up to max. */
static int entries(char paths[][1024], int max) {
  char dir[400];
  snprintf(dir, sizeof dir, "%s/wrn", cache_root);
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < max)
    if (strstr(e->d_name, ".bin")) snprintf(paths[n++], 1024, "%s/%s", dir, e->d_name);
  closedir(d);
  return n;
}

static void test_cache(void **state) {
  (void)state;
  snprintf(cache_root, sizeof cache_root, "/tmp/wrn-cache-XXXXXX");
  assert_non_null(mkdtemp(cache_root));
  setenv("XDG_CACHE_HOME", cache_root, 1);
  unsetenv("WRN_NO_CACHE");
  wrn_status st;
  wrn_ctx *c = open_ctx(&st);
  WT_OK(st);
  int total = wrn_ctx_programs_total(c);
  double cold = wrn_ctx_build_seconds(c);
  assert_int_equal(wrn_ctx_programs_cached(c), 0);
  wrn_ctx_free(c);
  char paths[64][1024];
  assert_int_equal(entries(paths, 64), total);
  c = open_ctx(&st);
  WT_OK(st);
  assert_int_equal(wrn_ctx_programs_cached(c), total);
  double warm = wrn_ctx_build_seconds(c);
  print_message("%d programs: cold build %.3f s, warm load %.3f s\n", total, cold, warm);
  wrn_ctx_free(c);
  /* Corrupt one entry (flip bytes in the binary) and truncate another: both are rebuilt. */
  FILE *f = fopen(paths[0], "r+b");
  assert_non_null(f);
  fseek(f, -16, SEEK_END);
  fputs("garbage-garbage!", f);
  fclose(f);
  assert_int_equal(truncate(paths[1], 20), 0);
  c = open_ctx(&st);
  WT_OK(st);
  assert_int_equal(wrn_ctx_programs_cached(c), total - 2);
  /* The kernels still run: relu of a known vector. */
  double x[3] = {-1, 2, -3}, y[3];
  cl_mem X = t_upload(c, x, 3), Y = t_zeros(c, 3);
  WT_OK(wrn_relu_forward(c, t_mem(Y), t_mem(X), 3));
  t_download(c, y, Y, 3);
  assert_true(y[0] == 0 && y[1] == 2 && y[2] == 0);
  wrn_release(&X), wrn_release(&Y);
  wrn_ctx_free(c);
  /* Rewritten: all cached again. */
  c = open_ctx(&st);
  assert_int_equal(wrn_ctx_programs_cached(c), total);
  wrn_ctx_free(c);
  /* A foreign entry (right name, another key inside) is refused: swap two entries' bytes. */
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'", paths[2], paths[3]);
  assert_int_equal(system(cmd), 0);
  c = open_ctx(&st);
  assert_int_equal(wrn_ctx_programs_cached(c), total - 1);
  wrn_ctx_free(c);
  /* WRN_NO_CACHE=1: nothing read. */
  setenv("WRN_NO_CACHE", "1", 1);
  c = open_ctx(&st);
  WT_OK(st);
  assert_int_equal(wrn_ctx_programs_cached(c), 0);
  wrn_ctx_free(c);
  unsetenv("WRN_NO_CACHE");
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache_root);
  assert_int_equal(system(cmd), 0);
  unsetenv("XDG_CACHE_HOME");
}

static void test_cl_dir_and_build_log(void **state) {
  (void)state;
  const char *src = getenv("WRN_SOURCE_DIR");
  char dir[] = "/tmp/wrn-cldir-XXXXXX", cmd[4096];
  assert_non_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd, "cp '%s'/cl/* '%s'/", src ? src : WRN_SOURCE_DIR, dir);
  assert_int_equal(system(cmd), 0);
  setenv("WRN_CL_DIR", dir, 1);
  setenv("WRN_NO_CACHE", "1", 1);
  wrn_status st;
  wrn_ctx *c = open_ctx(&st);
  WT_OK(st);
  wrn_ctx_free(c);
  /* Break one kernel file: the error names the file and carries the compiler's log. */
  snprintf(cmd, sizeof cmd, "printf '\\n__kernel void broken(__global float *p) { p[0] = undeclared_thing; }\\n' >> '%s/eltwise.cl'", dir);
  assert_int_equal(system(cmd), 0);
  c = open_ctx(&st);
  assert_null(c);
  assert_int_equal(st, WRN_STATUS_BUILD);
  print_message("build error: %.300s\n", wrn_last_error());
  assert_non_null(strstr(wrn_last_error(), "eltwise.cl"));
  assert_non_null(strstr(wrn_last_error(), "undeclared_thing"));
  /* A folder without the files is refused with its path. */
  setenv("WRN_CL_DIR", "/nonexistent-wrn-cl", 1);
  c = open_ctx(&st);
  assert_null(c);
  assert_int_equal(st, WRN_STATUS_IO);
  assert_non_null(strstr(wrn_last_error(), "/nonexistent-wrn-cl"));
  unsetenv("WRN_CL_DIR");
  unsetenv("WRN_NO_CACHE");
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_device_select(void **state) {
  (void)state;
  wrn_device_info d;
  WT_OK(wrn_device_select("0:0", &d));
  assert_int_equal(d.platform_index, 0);
  assert_int_equal(wrn_device_select("no-such-device-xyz", &d), WRN_STATUS_NO_DEVICE);
  assert_non_null(strstr(wrn_last_error(), "no-such-device-xyz"));
  assert_int_equal(wrn_device_select("9:9", &d), WRN_STATUS_NO_DEVICE);
  wrn_device_info *list;
  int n;
  WT_OK(wrn_devices_list(&list, &n));
  assert_true(n >= 1);
  /* A name substring, case-insensitive, finds the same device. */
  char part[8];
  snprintf(part, sizeof part, "%.6s", list[0].name);
  for (char *p = part; *p; p++) *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
  WT_OK(wrn_device_select(part, &d));
  free(list);
  /* No platform at all: the message explains the ICD folder and OCL_ICD_VENDORS. */
  char empty[] = "/tmp/wrn-icd-XXXXXX", cmd[512];
  assert_non_null(mkdtemp(empty));
  snprintf(cmd, sizeof cmd, "OCL_ICD_VENDORS=%s %s devices 2>&1 | grep -q OCL_ICD_VENDORS", empty,
           getenv("WRN_CLI") ? getenv("WRN_CLI") : "../wrn");
  assert_int_equal(system(cmd), 0);
  rmdir(empty);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_device_select),
                                     cmocka_unit_test(test_cache),
                                     cmocka_unit_test(test_cl_dir_and_build_log)};
  return WT_RUN_GROUP("program", tests, NULL, NULL);
}
