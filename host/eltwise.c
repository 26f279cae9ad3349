/* Element-wise ops (cl/eltwise.cl). */
#include "internal.h"

wrn_status wrn_relu_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n) {
  if (!y.mem || !x.mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "relu_forward: NULL buffer");
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_RELU_FWD, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, x);
  wrn_arg_ulong(&k, n);
  return wrn_launch_1d(&k, n, WRN_CAT_RELU);
}

wrn_status wrn_relu_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem y, size_t n,
                             int accumulate) {
  if (!dx.mem || !dy.mem || !y.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "relu_backward: NULL buffer");
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_RELU_BWD, &k));
  wrn_arg_mem(&k, dx);
  wrn_arg_mem(&k, dy);
  wrn_arg_mem(&k, y);
  wrn_arg_ulong(&k, n);
  wrn_arg_int(&k, accumulate ? 1 : 0);
  return wrn_launch_1d(&k, n, WRN_CAT_RELU);
}

wrn_status wrn_add_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem a, wrn_mem b, size_t n) {
  if (!y.mem || !a.mem || !b.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "add_forward: NULL buffer");
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_ADD_FWD, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, a);
  wrn_arg_mem(&k, b);
  wrn_arg_ulong(&k, n);
  return wrn_launch_1d(&k, n, WRN_CAT_ADD);
}

wrn_status wrn_axpy(wrn_ctx *ctx, wrn_mem y, wrn_mem x, double alpha, size_t n, int accumulate) {
  if (!y.mem || !x.mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "axpy: NULL buffer");
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_AXPY, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, x);
  wrn_arg_real(&k, alpha);
  wrn_arg_ulong(&k, n);
  wrn_arg_int(&k, accumulate ? 1 : 0);
  return wrn_launch_1d(&k, n, WRN_CAT_ADD);
}
