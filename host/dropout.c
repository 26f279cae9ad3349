/* Inverted dropout (cl/dropout.cl). The mask is never stored: backward draws it again from
 * (seed, counter, element index), which costs one Philox call per element and no memory. */
#include "internal.h"

#include <math.h>

static wrn_status dropout_run(wrn_ctx *ctx, const char *fn, wrn_mem out, wrn_mem in, size_t n,
                              size_t first, double p, uint64_t seed, uint64_t counter,
                              int accumulate) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL context", fn);
  if (!out.mem || !in.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: buffer %s is NULL", fn,
                    !out.mem ? "output" : "input");
  if (n == 0) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: n must be positive", fn);
  if (!(p >= 0 && p < 1))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: p must be in [0, 1), got %g", fn, p);
  if (accumulate != 0 && accumulate != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: accumulate must be 0 or 1, got %d", fn,
                    accumulate);
  /* Plain copy onto itself: nothing to do. */
  if (p == 0 && !accumulate && out.mem == in.mem && out.off == in.off) return WRN_OK;
  /* wrn_u01(r) = (r >> 8) / 2^24 exactly, so u01 >= p <=> (r >> 8) >= ceil(p 2^24); p 2^24 is
   * exact in double. */
  cl_uint thresh = (cl_uint)ceil(p * 16777216.0);
  double scale = 1.0 / (1.0 - p);
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_DROPOUT_APPLY, &k));
  wrn_arg_mem(&k, out);
  wrn_arg_mem(&k, in);
  wrn_arg_ulong(&k, (cl_ulong)n);
  wrn_arg_uint(&k, thresh);
  wrn_arg_real(&k, scale);
  wrn_arg_uint(&k, (cl_uint)seed);
  wrn_arg_uint(&k, (cl_uint)(seed >> 32));
  wrn_arg_uint(&k, (cl_uint)counter);
  wrn_arg_uint(&k, (cl_uint)(counter >> 32));
  wrn_arg_int(&k, accumulate);
  wrn_arg_ulong(&k, (cl_ulong)first);
  return wrn_launch_1d(&k, n, WRN_CAT_DROPOUT);
}

wrn_status wrn_dropout_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n, double p,
                               uint64_t seed, uint64_t counter) {
  return dropout_run(ctx, "dropout_forward", y, x, n, 0, p, seed, counter, 0);
}

wrn_status wrn_dropout_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, size_t n, double p,
                                uint64_t seed, uint64_t counter, int accumulate) {
  return dropout_run(ctx, "dropout_backward", dx, dy, n, 0, p, seed, counter, accumulate);
}

wrn_status wrn_dropout_forward_at(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n, size_t first,
                                  double p, uint64_t seed, uint64_t counter) {
  return dropout_run(ctx, "dropout_forward", y, x, n, first, p, seed, counter, 0);
}

wrn_status wrn_dropout_backward_at(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, size_t n, size_t first,
                                   double p, uint64_t seed, uint64_t counter, int accumulate) {
  return dropout_run(ctx, "dropout_backward", dx, dy, n, first, p, seed, counter, accumulate);
}
