/* Element-wise ops (cl/eltwise.cl). */
#include "internal.h"

wrn_status wrn_relu_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n) {
  if (!y.mem || !x.mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "relu_forward: NULL buffer");
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "eltwise", "relu_fwd", &k));
  WRN_ARG_MEM(k, 0, y);
  WRN_ARG_MEM(k, 2, x);
  WRN_ARG(k, 4, cl_ulong, n);
  return wrn_enqueue_1d(ctx, k, n, WRN_CAT_RELU);
}

wrn_status wrn_relu_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem y, size_t n,
                             int accumulate) {
  if (!dx.mem || !dy.mem || !y.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "relu_backward: NULL buffer");
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "eltwise", "relu_bwd", &k));
  WRN_ARG_MEM(k, 0, dx);
  WRN_ARG_MEM(k, 2, dy);
  WRN_ARG_MEM(k, 4, y);
  WRN_ARG(k, 6, cl_ulong, n);
  WRN_ARG(k, 7, cl_int, accumulate ? 1 : 0);
  return wrn_enqueue_1d(ctx, k, n, WRN_CAT_RELU);
}

wrn_status wrn_add_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem a, wrn_mem b, size_t n) {
  if (!y.mem || !a.mem || !b.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "add_forward: NULL buffer");
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "eltwise", "add_fwd", &k));
  WRN_ARG_MEM(k, 0, y);
  WRN_ARG_MEM(k, 2, a);
  WRN_ARG_MEM(k, 4, b);
  WRN_ARG(k, 6, cl_ulong, n);
  return wrn_enqueue_1d(ctx, k, n, WRN_CAT_ADD);
}

wrn_status wrn_axpy(wrn_ctx *ctx, wrn_mem y, wrn_mem x, double alpha, size_t n, int accumulate) {
  if (!y.mem || !x.mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "axpy: NULL buffer");
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "eltwise", "axpy", &k));
  WRN_ARG_MEM(k, 0, y);
  WRN_ARG_MEM(k, 2, x);
  WRN_ARG_REAL(ctx, k, 4, alpha);
  WRN_ARG(k, 5, cl_ulong, n);
  WRN_ARG(k, 6, cl_int, accumulate ? 1 : 0);
  return wrn_enqueue_1d(ctx, k, n, WRN_CAT_ADD);
}
