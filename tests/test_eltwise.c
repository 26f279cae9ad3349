/* ReLU, residual add and axpy against naive C, in float and double, both accumulate modes;
 * Philox against the published known-answer vectors. */
#include "harness.h"

#include <math.h>
#include <string.h>

static const size_t sizes[] = {1, 7, 255, 256, 1000, 4099};

static void relu_case(wrn_ctx *ctx, size_t n, int acc) {
  double *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy), *dx0 = malloc(n * sizeof *dx0);
  double *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
  t_rand(x, n, -1, 1, n);
  t_rand(dy, n, -1, 1, n + 1);
  t_rand(dx0, n, -1, 1, n + 2);
  t_round(ctx, x, n), t_round(ctx, dy, n), t_round(ctx, dx0, n);
  cl_mem X = t_upload(ctx, x, n), Y = t_zeros(ctx, n), DY = t_upload(ctx, dy, n),
         DX = t_upload(ctx, dx0, n);
  WT_OK(wrn_relu_forward(ctx, t_mem(Y), t_mem(X), n));
  t_download(ctx, got, Y, n);
  for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
  t_check_close("relu forward", got, ref, n, 0, 0);
  WT_OK(wrn_relu_backward(ctx, t_mem(DX), t_mem(DY), t_mem(Y), n, acc));
  t_download(ctx, got, DX, n);
  for (size_t i = 0; i < n; i++) ref[i] = (x[i] > 0 ? dy[i] : 0) + (acc ? dx0[i] : 0);
  t_tol tol = t_tol_for(ctx, (t_tol){1e-6, 1e-6}, (t_tol){1e-15, 1e-15});
  t_check_close("relu backward", got, ref, n, tol.atol, tol.rtol);
  wrn_release(&X), wrn_release(&Y), wrn_release(&DY), wrn_release(&DX);
  free(x), free(dy), free(dx0), free(ref), free(got);
}

static void test_relu(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int acc = 0; acc < 2; acc++) relu_case(ctx, sizes[s], acc);
  }
}

static void test_add_axpy(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    t_tol tol = t_tol_for(ctx, (t_tol){1e-6, 1e-6}, (t_tol){1e-15, 1e-15});
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t n = sizes[s];
      double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *ref = malloc(n * sizeof *ref),
             *got = malloc(n * sizeof *got);
      t_rand(a, n, -2, 2, 11 + n);
      t_rand(b, n, -2, 2, 12 + n);
      t_round(ctx, a, n), t_round(ctx, b, n);
      cl_mem A = t_upload(ctx, a, n), B = t_upload(ctx, b, n), Y = t_zeros(ctx, n);
      WT_OK(wrn_add_forward(ctx, t_mem(Y), t_mem(A), t_mem(B), n));
      t_download(ctx, got, Y, n);
      for (size_t i = 0; i < n; i++) ref[i] = a[i] + b[i];
      t_check_close("add", got, ref, n, tol.atol, tol.rtol);
      for (int acc = 0; acc < 2; acc++) {
        cl_mem Z = t_upload(ctx, b, n);
        WT_OK(wrn_axpy(ctx, t_mem(Z), t_mem(A), -0.75, n, acc));
        t_download(ctx, got, Z, n);
        for (size_t i = 0; i < n; i++) ref[i] = -0.75 * a[i] + (acc ? b[i] : 0);
        t_check_close("axpy", got, ref, n, tol.atol, tol.rtol);
        wrn_release(&Z);
      }
      wrn_release(&A), wrn_release(&B), wrn_release(&Y);
      free(a), free(b), free(ref), free(got);
    }
  }
}

static void test_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  wrn_mem none = {NULL, 0};
  assert_int_equal(wrn_relu_forward(ctx, none, none, 4), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "relu_forward"));
}

static void test_philox_kat(void **state) {
  (void)state;
  /* Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors). */
  uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0}, o[4];
  wrn_philox4x32(c0, k0, o);
  assert_int_equal(o[0], 0x6627e8d5u);
  assert_int_equal(o[1], 0xe169c58du);
  assert_int_equal(o[2], 0xbc57ac4cu);
  assert_int_equal(o[3], 0x9b00dbd8u);
  uint32_t c1[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
           k1[2] = {0xffffffffu, 0xffffffffu};
  wrn_philox4x32(c1, k1, o);
  assert_int_equal(o[0], 0x408f276du);
  assert_int_equal(o[1], 0x41c83b0eu);
  assert_int_equal(o[2], 0xa20bc7c6u);
  assert_int_equal(o[3], 0x6d5451fdu);
}

static int teardown(void **state) {
  (void)state;
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_kat),
      cmocka_unit_test(test_relu),
      cmocka_unit_test(test_add_axpy),
      cmocka_unit_test(test_bad_args),
  };
  return WT_RUN_GROUP("eltwise", tests, NULL, teardown);
}
