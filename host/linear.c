/* Fully connected layer: GEMMs (wrn_gemm) plus the bias kernels of cl/linear.cl.
 * Row-major throughout: x[n][in], w[out][in], b[out], y[n][out]. */
#include "internal.h"

#include <limits.h>

/* Row-major C[m][n] = op(A) op(B) + beta C over k, in the context's type (wrn_gemm). */
static wrn_status gemm(wrn_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, wrn_mem a,
                       size_t lda, wrn_mem b, size_t ldb, double beta, wrn_mem c, size_t ldc) {
  return wrn_gemm(ctx, WRN_CAT_LINEAR, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

static wrn_status check_sizes(const char *fn, wrn_ctx *ctx, int n, int in, int out) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL context", fn);
  if (n <= 0 || in <= 0 || out <= 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: sizes must be positive (n=%d in=%d out=%d)",
                    fn, n, in, out);
  /* The kernels index rows and columns with int. */
  if ((long long)n * out > INT_MAX)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: n*out = %lld is too large", fn,
                    (long long)n * out);
  return WRN_OK;
}

/* Power-of-two work-group width (<= 64) for the row kernels. */
static size_t row_wg(const wrn_ctx *ctx) {
  size_t l = 64;
  while (l > ctx->max_wg) l /= 2;
  return l;
}

wrn_status wrn_linear_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem w, wrn_mem b, int n,
                              int in, int out) {
  WRN_TRY(check_sizes("linear_forward", ctx, n, in, out));
  if (!y.mem || !x.mem || !w.mem || !b.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "linear_forward: NULL buffer (%s)",
                    !y.mem ? "y" : !x.mem ? "x" : !w.mem ? "w" : "b");
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_BIAS_FILL, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, b);
  wrn_arg_int(&k, n);
  wrn_arg_int(&k, out);
  size_t lws[2] = {row_wg(ctx), 1}, gws[2] = {wrn_round_up((size_t)out, lws[0]), (size_t)n};
  WRN_TRY(wrn_launch(&k, 2, gws, lws, WRN_CAT_LINEAR, 0));
  /* y[n][out] = x[n][in] w[out][in]^T + y */
  return gemm(ctx, 0, 1, (size_t)n, (size_t)out, (size_t)in, x, (size_t)in, w, (size_t)in, 1.0,
              y, (size_t)out);
}

wrn_status wrn_linear_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dw, wrn_mem db, wrn_mem dy,
                               wrn_mem x, wrn_mem w, int n, int in, int out, int accumulate) {
  WRN_TRY(check_sizes("linear_backward", ctx, n, in, out));
  if (!dw.mem || !db.mem || !dy.mem || !x.mem || (dx.mem && !w.mem))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "linear_backward: NULL buffer (%s)",
                    !dw.mem ? "dw" : !db.mem ? "db" : !dy.mem ? "dy" : !x.mem ? "x" : "w");
  const double beta = accumulate ? 1.0 : 0.0;
  /* dx[n][in] (+)= dy[n][out] w[out][in] */
  if (dx.mem)
    WRN_TRY(gemm(ctx, 0, 0, (size_t)n, (size_t)in, (size_t)out, dy, (size_t)out, w, (size_t)in,
                 beta, dx, (size_t)in));
  /* dw[out][in] (+)= dy[n][out]^T x[n][in] */
  WRN_TRY(gemm(ctx, 1, 0, (size_t)out, (size_t)in, (size_t)n, dy, (size_t)out, x, (size_t)in,
               beta, dw, (size_t)in));
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_COL_SUM, &k));
  const size_t L = row_wg(ctx);
  wrn_arg_mem(&k, db);
  wrn_arg_mem(&k, dy);
  wrn_arg_int(&k, n);
  wrn_arg_int(&k, out);
  wrn_arg_int(&k, accumulate ? 1 : 0);
  wrn_arg_local(&k, L * ctx->real_size);
  size_t gws = L * (size_t)out;
  return wrn_launch(&k, 1, &gws, &L, WRN_CAT_LINEAR, 0);
}
