/* Dropout: the device mask equals the host Philox reference bit for bit (float and double
 * contexts alike), the keep rate lies within binomial bounds, forward and backward draw the
 * same mask, another counter or seed draws another, p == 0 copies, backward in both
 * accumulate modes and against central differences, bad arguments. */
#include "harness.h"
#include "ref_dropout.h"

#include <math.h>
#include <string.h>

/* Seeds and counters with both 32-bit halves non-zero, so a swapped or dropped half shows. */
static const uint64_t SEED = 0x0123456789abcdefull, CTR = 0x00000007fedcba98ull;

static double worst_f32, worst_num;

/* Runs forward on x (no zeros) and reads the mask back as y != 0; checks kept values equal
 * x / (1 - p). Returns the number kept. */
static size_t device_mask(wrn_ctx *ctx, unsigned char *keep, const double *x, size_t n,
                          double p, uint64_t seed, uint64_t ctr) {
  double *y = malloc(n * sizeof *y), *ref = malloc(n * sizeof *ref);
  cl_mem X = t_upload(ctx, x, n), Y = t_zeros(ctx, n);
  WT_OK(wrn_dropout_forward(ctx, t_mem(Y), t_mem(X), n, p, seed, ctr));
  t_download(ctx, y, Y, n);
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    keep[i] = y[i] != 0;
    kept += keep[i];
    ref[i] = keep[i] ? x[i] / (1 - p) : 0;
  }
  /* One rounding of the scale and one of the product: 2^-23 relative in float. */
  t_tol tol = t_tol_for(ctx, (t_tol){0, 3e-7}, (t_tol){0, 1e-15});
  t_check_close("dropout kept values", y, ref, n, tol.atol, tol.rtol);
  if (wrn_ctx_dtype(ctx) == WRN_F32) {
    double d = t_max_abs_diff(y, ref, n);
    if (d > worst_f32) worst_f32 = d;
  }
  wrn_release(&X), wrn_release(&Y);
  free(y), free(ref);
  return kept;
}

static void test_dropout_mask(void **state) {
  (void)state;
  const size_t n = 100003;
  static const double ps[] = {0.1, 0.3, 0.5, 0.9};
  double *x = malloc(n * sizeof *x);
  unsigned char *keep = malloc(n), *ref = malloc(n);
  t_rand(x, n, 0.5, 1.5, 31);
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    t_round(ctx, x, n);
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
      double p = ps[k];
      size_t kept = device_mask(ctx, keep, x, n, p, SEED, CTR);
      ref_dropout_mask(ref, n, p, SEED, CTR);
      for (size_t i = 0; i < n; i++)
        if (keep[i] != ref[i])
          fail_msg("p=%g: element %zu kept=%d on the device, %d on the host", p, i, keep[i],
                   ref[i]);
      /* Binomial(n, 1-p): 5 standard deviations. */
      double mu = n * (1 - p), sd = sqrt(n * p * (1 - p));
      if (fabs((double)kept - mu) > 5 * sd)
        fail_msg("p=%g: kept %zu of %zu, expected %.0f +- %.0f", p, kept, n, mu, 5 * sd);
    }
  }
  free(x), free(keep), free(ref);
}

/* p exactly at a 2^-24 grid point: u01 == p must keep (>=), so the threshold is not off by
 * one; checked through the host reference on a mask of the right density. */
static void test_dropout_grid_p(void **state) {
  (void)state;
  const size_t n = 20000;
  wrn_ctx *ctx = t_ctx32();
  double *x = malloc(n * sizeof *x);
  unsigned char *keep = malloc(n), *ref = malloc(n);
  t_rand(x, n, 0.5, 1.5, 32);
  t_round(ctx, x, n);
  /* p = u01 of some element's own draw: that element sits exactly on the threshold. */
  uint32_t key[2] = {(uint32_t)SEED, (uint32_t)(SEED >> 32)}, r[4];
  uint32_t c[4] = {123, 0, (uint32_t)CTR, (uint32_t)(CTR >> 32)};
  wrn_philox4x32(c, key, r);
  double p = wrn_u01(r[0]);
  assert_true(p < 1);
  device_mask(ctx, keep, x, n, p, SEED, CTR);
  ref_dropout_mask(ref, n, p, SEED, CTR);
  assert_int_equal(ref[123], 1);
  assert_memory_equal(keep, ref, n);
  free(x), free(keep), free(ref);
}

static size_t count_diff(const unsigned char *a, const unsigned char *b, size_t n) {
  size_t d = 0;
  for (size_t i = 0; i < n; i++) d += a[i] != b[i];
  return d;
}

static void test_dropout_keys(void **state) {
  (void)state;
  const size_t n = 4099;
  const double p = 0.5;
  wrn_ctx *ctx = t_ctx32();
  double *x = malloc(n * sizeof *x);
  unsigned char *a = malloc(n), *b = malloc(n);
  t_rand(x, n, 0.5, 1.5, 33);
  t_round(ctx, x, n);
  device_mask(ctx, a, x, n, p, SEED, CTR);
  device_mask(ctx, b, x, n, p, SEED, CTR);
  assert_int_equal(count_diff(a, b, n), 0);
  /* Independent masks at p = 0.5 differ in about half the places; far fewer means the key
   * or counter is ignored (or only one half of it is used). */
  const uint64_t other[][2] = {{SEED, CTR + 1},
                               {SEED, CTR + (1ull << 32)},
                               {SEED + 1, CTR},
                               {SEED + (1ull << 32), CTR}};
  for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
    device_mask(ctx, b, x, n, p, other[k][0], other[k][1]);
    size_t d = count_diff(a, b, n);
    if (d < n / 3)
      fail_msg("key %zu: only %zu of %zu mask bits differ from the original key", k, d, n);
  }
  free(x), free(a), free(b);
}

static void test_dropout_backward(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 255, 1000, 4099};
  const double p = 0.3;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      size_t n = sizes[si];
      double *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy),
             *dx0 = malloc(n * sizeof *dx0), *got = malloc(n * sizeof *got),
             *ref = malloc(n * sizeof *ref);
      unsigned char *fmask = malloc(n), *rmask = malloc(n);
      t_rand(x, n, 0.5, 1.5, 40 + n);
      t_rand(dy, n, -1, 1, 41 + n);
      t_rand(dx0, n, -1, 1, 42 + n);
      t_round(ctx, x, n), t_round(ctx, dy, n), t_round(ctx, dx0, n);
      /* The forward's mask, which backward must reproduce. */
      device_mask(ctx, fmask, x, n, p, SEED, CTR);
      ref_dropout_mask(rmask, n, p, SEED, CTR);
      assert_memory_equal(fmask, rmask, n);
      cl_mem DY = t_upload(ctx, dy, n);
      for (int acc = 0; acc < 2; acc++) {
        cl_mem DX = t_upload(ctx, dx0, n);
        WT_OK(wrn_dropout_backward(ctx, t_mem(DX), t_mem(DY), n, p, SEED, CTR, acc));
        t_download(ctx, got, DX, n);
        for (size_t i = 0; i < n; i++)
          ref[i] = (fmask[i] ? dy[i] / (1 - p) : 0) + (acc ? dx0[i] : 0);
        /* Scale and product rounded once each, plus the add: ~3e-7 of values of size ~2. */
        t_tol tol = t_tol_for(ctx, (t_tol){1e-6, 1e-6}, (t_tol){1e-15, 1e-15});
        t_check_close("dropout dx", got, ref, n, tol.atol, tol.rtol);
        if (dt == WRN_F32) {
          double d = t_max_abs_diff(got, ref, n);
          if (d > worst_f32) worst_f32 = d;
        }
        wrn_release(&DX);
      }
      wrn_release(&DY);
      free(x), free(dy), free(dx0), free(got), free(ref), free(fmask), free(rmask);
    }
  }
}

/* p == 0: forward copies (also onto itself), backward passes through in both modes. */
static void test_dropout_p0(void **state) {
  (void)state;
  const size_t n = 1000;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    double *x = malloc(n * sizeof *x), *d0 = malloc(n * sizeof *d0), *got = malloc(n * sizeof *got),
           *ref = malloc(n * sizeof *ref);
    t_rand(x, n, -1, 1, 51);
    t_rand(d0, n, -1, 1, 52);
    t_round(ctx, x, n), t_round(ctx, d0, n);
    cl_mem X = t_upload(ctx, x, n), Y = t_zeros(ctx, n);
    WT_OK(wrn_dropout_forward(ctx, t_mem(Y), t_mem(X), n, 0, SEED, CTR));
    t_download(ctx, got, Y, n);
    t_check_close("dropout p=0 copy", got, x, n, 0, 0);
    WT_OK(wrn_dropout_forward(ctx, t_mem(X), t_mem(X), n, 0, SEED, CTR));
    t_download(ctx, got, X, n);
    t_check_close("dropout p=0 in place", got, x, n, 0, 0);
    for (int acc = 0; acc < 2; acc++) {
      cl_mem DX = t_upload(ctx, d0, n);
      WT_OK(wrn_dropout_backward(ctx, t_mem(DX), t_mem(X), n, 0, SEED, CTR, acc));
      t_download(ctx, got, DX, n);
      for (size_t i = 0; i < n; i++) ref[i] = x[i] + (acc ? d0[i] : 0);
      t_tol tol = t_tol_for(ctx, (t_tol){1e-7, 1e-7}, (t_tol){1e-16, 1e-16});
      t_check_close("dropout p=0 backward", got, ref, n, tol.atol, tol.rtol);
      wrn_release(&DX);
    }
    wrn_release(&X), wrn_release(&Y);
    free(x), free(d0), free(got), free(ref);
  }
}

/* The mask is indexed within the call: a view at an element offset draws the same mask as
 * the same data at offset 0. */
static void test_dropout_offset(void **state) {
  (void)state;
  const size_t n = 777, off = 13;
  const double p = 0.4;
  wrn_ctx *ctx = t_ctx32();
  double *x = malloc((n + off) * sizeof *x), *y = malloc((n + off) * sizeof *y);
  unsigned char *ref = malloc(n);
  t_rand(x, n + off, 0.5, 1.5, 61);
  t_round(ctx, x, n + off);
  cl_mem X = t_upload(ctx, x, n + off), Y = t_zeros(ctx, n + off);
  wrn_mem xv = {X, off}, yv = {Y, off};
  WT_OK(wrn_dropout_forward(ctx, yv, xv, n, p, SEED, CTR));
  t_download(ctx, y, Y, n + off);
  ref_dropout_mask(ref, n, p, SEED, CTR);
  for (size_t i = 0; i < off; i++) assert_true(y[i] == 0);
  for (size_t i = 0; i < n; i++) assert_int_equal(y[off + i] != 0, ref[i]);
  wrn_release(&X), wrn_release(&Y);
  free(x), free(y), free(ref);
}

typedef struct fd_ctx {
  wrn_ctx *ctx;
  cl_mem X, Y;
  const double *r;
  double *y;
  size_t n;
  double p;
} fd_ctx;

static double fd_loss(const double *x, void *user) {
  fd_ctx *f = user;
  WT_OK(wrn_write(f->ctx, t_mem(f->X), x, f->n));
  WT_OK(wrn_dropout_forward(f->ctx, t_mem(f->Y), t_mem(f->X), f->n, f->p, SEED, CTR));
  t_download(f->ctx, f->y, f->Y, f->n);
  double l = 0;
  for (size_t i = 0; i < f->n; i++) l += f->r[i] * f->y[i];
  return l;
}

static void test_dropout_numeric(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  const size_t n = 300;
  double *x = malloc(n * sizeof *x), *r = malloc(n * sizeof *r), *y = malloc(n * sizeof *y),
         *num = malloc(n * sizeof *num), *got = malloc(n * sizeof *got);
  t_rand(x, n, -1, 1, 71);
  t_rand(r, n, -1, 1, 72);
  fd_ctx f = {ctx, t_upload(ctx, x, n), t_zeros(ctx, n), r, y, n, 0.25};
  cl_mem DY = t_upload(ctx, r, n), DX = t_zeros(ctx, n);
  WT_OK(wrn_dropout_backward(ctx, t_mem(DX), t_mem(DY), n, f.p, SEED, CTR, 0));
  t_download(ctx, got, DX, n);
  t_numeric_grad(fd_loss, x, n, 1e-6, num, &f);
  /* Linear in x: only cancellation, ~1e-16 * |loss| (~10) / 1e-6 = 1e-9. */
  t_check_close("dropout dx vs central differences", got, num, n, 1e-8, 1e-7);
  worst_num = t_max_abs_diff(got, num, n);
  wrn_release(&f.X), wrn_release(&f.Y), wrn_release(&DY), wrn_release(&DX);
  free(x), free(r), free(y), free(num), free(got);
}

static void expect_bad(wrn_status s, const char *fn, const char *what) {
  assert_int_equal(s, WRN_STATUS_INVALID_ARGUMENT);
  if (!strstr(wrn_last_error(), fn) || !strstr(wrn_last_error(), what))
    fail_msg("message '%s' should name %s and %s", wrn_last_error(), fn, what);
}

static void test_dropout_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  cl_mem M = t_zeros(ctx, 16);
  wrn_mem m = t_mem(M), none = {NULL, 0};
  expect_bad(wrn_dropout_forward(ctx, m, m, 16, 1.0, 1, 2), "dropout_forward", "p must");
  expect_bad(wrn_dropout_forward(ctx, m, m, 16, -0.1, 1, 2), "dropout_forward", "p must");
  expect_bad(wrn_dropout_forward(ctx, m, m, 16, NAN, 1, 2), "dropout_forward", "p must");
  expect_bad(wrn_dropout_forward(ctx, m, none, 16, 0.5, 1, 2), "dropout_forward", "input");
  expect_bad(wrn_dropout_forward(ctx, m, m, 0, 0.5, 1, 2), "dropout_forward", "n must");
  expect_bad(wrn_dropout_backward(ctx, none, m, 16, 0.5, 1, 2, 0), "dropout_backward", "output");
  expect_bad(wrn_dropout_backward(ctx, m, m, 16, 1.5, 1, 2, 0), "dropout_backward", "p must");
  expect_bad(wrn_dropout_backward(ctx, m, m, 16, 0.5, 1, 2, 7), "dropout_backward",
             "accumulate");
  wrn_release(&M);
}

static int teardown(void **state) {
  (void)state;
  print_message("dropout largest |error|: f32 vs reference %.3g, f64 vs central differences "
                "%.3g\n",
                worst_f32, worst_num);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dropout_mask),     cmocka_unit_test(test_dropout_grid_p),
      cmocka_unit_test(test_dropout_keys),     cmocka_unit_test(test_dropout_backward),
      cmocka_unit_test(test_dropout_p0),       cmocka_unit_test(test_dropout_offset),
      cmocka_unit_test(test_dropout_numeric),  cmocka_unit_test(test_dropout_bad_args),
  };
  return WT_RUN_GROUP("dropout", tests, NULL, teardown);
}
