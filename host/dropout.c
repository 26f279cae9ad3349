/* Inverted dropout (cl/dropout.cl). The mask is never stored: backward draws it again from
 * (seed, counter, element index), which costs one Philox call per element and no memory. */
#include "internal.h"

#include <math.h>

static wrn_status dropout_run(wrn_ctx *ctx, const char *fn, wrn_mem out, wrn_mem in, size_t n,
                              double p, uint64_t seed, uint64_t counter, int accumulate) {
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
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "dropout", "dropout_apply", &k));
  WRN_ARG_MEM(k, 0, out);
  WRN_ARG_MEM(k, 2, in);
  WRN_ARG(k, 4, cl_ulong, (cl_ulong)n);
  WRN_ARG(k, 5, cl_uint, thresh);
  WRN_ARG_REAL(ctx, k, 6, scale);
  WRN_ARG(k, 7, cl_uint, (cl_uint)seed);
  WRN_ARG(k, 8, cl_uint, (cl_uint)(seed >> 32));
  WRN_ARG(k, 9, cl_uint, (cl_uint)counter);
  WRN_ARG(k, 10, cl_uint, (cl_uint)(counter >> 32));
  WRN_ARG(k, 11, cl_int, accumulate);
  return wrn_enqueue_1d(ctx, k, n, WRN_CAT_DROPOUT);
}

wrn_status wrn_dropout_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n, double p,
                               uint64_t seed, uint64_t counter) {
  return dropout_run(ctx, "dropout_forward", y, x, n, p, seed, counter, 0);
}

wrn_status wrn_dropout_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, size_t n, double p,
                                uint64_t seed, uint64_t counter, int accumulate) {
  return dropout_run(ctx, "dropout_backward", dx, dy, n, p, seed, counter, accumulate);
}
