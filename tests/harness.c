#include "harness.h"
#include "wrn_io.h"

#include <math.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static wrn_ctx *ctx32, *ctx64;
static int opened32, opened64;

static wrn_ctx *open_ctx(wrn_dtype dt) {
  const char *sel = getenv("WRN_TEST_DEVICE");
  wrn_device_info dev;
  wrn_status s = wrn_device_select(sel ? sel : "cpu", &dev);
  if (s != WRN_OK) fail_msg("no test device: %s", wrn_last_error());
  if (dt == WRN_F64 && !dev.fp64) return NULL;
  wrn_ctx_options o = {0};
  o.dtype = dt;
  wrn_ctx *c = NULL;
  s = wrn_ctx_open(&c, &dev, &o);
  if (s != WRN_OK) fail_msg("wrn_ctx_open: %s", wrn_last_error());
  return c;
}

wrn_ctx *t_ctx32(void) {
  if (!opened32) {
    ctx32 = open_ctx(WRN_F32);
    opened32 = 1;
  }
  return ctx32;
}

wrn_ctx *t_ctx64(void) {
  if (!opened64) {
    ctx64 = open_ctx(WRN_F64);
    opened64 = 1;
  }
  return ctx64;
}

wrn_ctx *t_ctx(wrn_dtype dt) { return dt == WRN_F64 ? t_ctx64() : t_ctx32(); }

void t_ctx_close_all(void) {
  wrn_ctx_free(ctx32);
  wrn_ctx_free(ctx64);
  ctx32 = ctx64 = NULL;
  opened32 = opened64 = 0;
}

void t_rand(double *x, size_t n, double lo, double hi, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  for (size_t i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x[i] = lo + (hi - lo) * ((double)(s >> 11) / 9007199254740992.0);
  }
}

void t_round(wrn_ctx *ctx, double *x, size_t n) {
  if (wrn_ctx_dtype(ctx) == WRN_F32)
    for (size_t i = 0; i < n; i++) x[i] = (float)x[i];
}

cl_mem t_upload(wrn_ctx *ctx, const double *x, size_t n) {
  cl_mem m;
  WT_OK(wrn_alloc(ctx, (n ? n : 1) * wrn_ctx_real_size(ctx), "test buffer", &m));
  if (wrn_ctx_dtype(ctx) == WRN_F64) {
    WT_OK(wrn_write(ctx, t_mem(m), x, n));
  } else {
    float *f = malloc((n ? n : 1) * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    WT_OK(wrn_write(ctx, t_mem(m), f, n));
    free(f);
  }
  return m;
}

cl_mem t_zeros(wrn_ctx *ctx, size_t n) {
  cl_mem m;
  WT_OK(wrn_alloc(ctx, (n ? n : 1) * wrn_ctx_real_size(ctx), "test buffer", &m));
  return m;
}

void t_download(wrn_ctx *ctx, double *out, cl_mem m, size_t n) {
  WT_OK(wrn_ctx_finish(ctx));
  if (wrn_ctx_dtype(ctx) == WRN_F64) {
    WT_OK(wrn_read(ctx, out, t_mem(m), n));
  } else {
    float *f = malloc((n ? n : 1) * sizeof *f);
    assert_non_null(f);
    WT_OK(wrn_read(ctx, f, t_mem(m), n));
    for (size_t i = 0; i < n; i++) out[i] = f[i];
    free(f);
  }
}

double t_max_abs_diff(const double *got, const double *ref, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(got[i] - ref[i]);
    if (isnan(d)) return INFINITY;
    if (d > m) m = d;
  }
  return m;
}

void t_check_close(const char *what, const double *got, const double *ref, size_t n,
                   double atol, double rtol) {
  size_t bad = 0, worst = 0;
  double worst_d = -1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(got[i] - ref[i]);
    int ok = d <= atol + rtol * fabs(ref[i]);
    if (isnan(got[i]) || isnan(ref[i])) ok = 0, d = INFINITY;
    if (d > worst_d) worst_d = d, worst = i;
    if (!ok) {
      if (bad < 5)
        print_message("  %s[%zu]: got %.9g, want %.9g (diff %.3g)\n", what, i, got[i], ref[i],
                      d);
      bad++;
    }
  }
  if (bad)
    fail_msg("%s: %zu of %zu values outside atol %.3g + rtol %.3g; largest difference %.6g at "
             "[%zu] (got %.9g, want %.9g)",
             what, bad, n, atol, rtol, worst_d, worst, n ? got[worst] : 0.0,
             n ? ref[worst] : 0.0);
}

void t_numeric_grad(t_scalar_fn f, double *x, size_t n, double h, double *grad, void *user) {
  for (size_t i = 0; i < n; i++) {
    double keep = x[i];
    x[i] = keep + h;
    double fp = f(x, user);
    x[i] = keep - h;
    double fm = f(x, user);
    x[i] = keep;
    grad[i] = (fp - fm) / (2 * h);
  }
}

int t_cifar_dir(char *path, size_t n) {
  const char *env = getenv("WRN_DATA_DIR");
  const char *cands[] = {env, "../shared/data/cifar-10-batches-bin",
                         "../../shared/data/cifar-10-batches-bin",
                         "../../../shared/data/cifar-10-batches-bin", WRN_SOURCE_DIR
                         "/../shared/data/cifar-10-batches-bin"};
  for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
    if (!cands[i]) continue;
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/data_batch_1.bin", cands[i]);
    if (stat(p, &st) == 0) {
      snprintf(path, n, "%s", cands[i]);
      return 1;
    }
  }
  return 0;
}

void t_rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[1024];
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
      chmod(p, 0755); /* a test may have made it read-only */
      t_rm_tree(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
  rmdir(dir);
}

void wt_same_tensors(const char *a, const char *b) {
  wrn_st_file *fa, *fb;
  WT_OK(wrn_st_open(&fa, a));
  WT_OK(wrn_st_open(&fb, b));
  assert_int_equal(wrn_st_count(fa), wrn_st_count(fb));
  for (int i = 0; i < wrn_st_count(fa); i++) {
    const wrn_st_tensor *ta = wrn_st_at(fa, i), *tb = wrn_st_find(fb, ta->name);
    assert_non_null(tb);
    assert_int_equal(ta->nbytes, tb->nbytes);
    if (memcmp(ta->data, tb->data, ta->nbytes))
      fail_msg("tensor %s differs between %s and %s", ta->name, a, b);
  }
  wrn_st_close(fa);
  wrn_st_close(fb);
}
