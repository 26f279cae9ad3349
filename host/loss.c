/* Softmax cross-entropy (cl/loss.cl). */
#include "internal.h"

#include <math.h>

/* Work-items per sample: k = 1000 classes (ImageNet) take 16 strides; for k = 10 most items
 * idle, but the loss is a tiny part of a step and one size means one PoCL compile. A power of
 * two for the kernel's tree reductions. */
#define WRN_LOSS_WG 64

wrn_status wrn_softmax_xent(wrn_ctx *ctx, wrn_mem loss_out, wrn_mem correct_out,
                            wrn_mem dlogits, wrn_mem logits, cl_mem labels, size_t labels_off,
                            int n, int k, double scale) {
  return wrn_softmax_xent_smooth(ctx, loss_out, correct_out, dlogits, logits, labels,
                                 labels_off, n, k, scale, 0.0);
}

wrn_status wrn_softmax_xent_smooth(wrn_ctx *ctx, wrn_mem loss_out, wrn_mem correct_out,
                                   wrn_mem dlogits, wrn_mem logits, cl_mem labels,
                                   size_t labels_off, int n, int k, double scale,
                                   double smoothing) {
  static const char *fn = "softmax_xent";
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL context", fn);
  if (n <= 0 || k <= 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: n = %d and k = %d must be positive", fn,
                    n, k);
  if (!loss_out.mem || !correct_out.mem || !logits.mem || !labels)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: NULL buffer (loss_out %p, correct_out %p, logits %p, labels %p)", fn,
                    (void *)loss_out.mem, (void *)correct_out.mem, (void *)logits.mem,
                    (void *)labels);
  if (!isfinite(scale))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: scale = %g is not finite", fn, scale);
  if (!(smoothing >= 0 && smoothing < 1))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: label smoothing = %g must be in [0, 1)",
                    fn, smoothing);
  /* The label offset counts int32s, not reals: a unit mix-up is easy, so check the span. */
  size_t lbytes = 0;
  WRN_CL_CHECK(clGetMemObjectInfo(labels, CL_MEM_SIZE, sizeof lbytes, &lbytes, NULL));
  if (labels_off > lbytes / sizeof(cl_int) || (size_t)n > lbytes / sizeof(cl_int) - labels_off)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: labels needs int32 elements [%zu, %zu) but the buffer holds %zu bytes",
                    fn, labels_off, labels_off + (size_t)n, lbytes);

  wrn_args kern;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_SOFTMAX_XENT, &kern));
  size_t kwg = 0;
  WRN_TRY(wrn_kernel_wg_max(&kern, &kwg));
  size_t lws = WRN_LOSS_WG;
  while (lws > 1 && (lws > kwg || lws > ctx->max_wg)) lws >>= 1;
  size_t gws = (size_t)n * lws;

  int has_dl = dlogits.mem != NULL;
  wrn_arg_mem(&kern, loss_out);
  wrn_arg_mem(&kern, correct_out);
  /* A valid buffer is needed even when the kernel does not write dlogits. */
  wrn_arg_mem(&kern, has_dl ? dlogits : logits);
  wrn_arg_mem(&kern, logits);
  wrn_arg_buf(&kern, labels);
  wrn_arg_ulong(&kern, (cl_ulong)labels_off);
  wrn_arg_int(&kern, n);
  wrn_arg_int(&kern, k);
  wrn_arg_real(&kern, scale / n);
  wrn_arg_real(&kern, smoothing);
  wrn_arg_int(&kern, has_dl);
  wrn_arg_local(&kern, lws * ctx->real_size);
  wrn_arg_local(&kern, lws * sizeof(cl_int));
  return wrn_launch(&kern, 1, &gws, &lws, WRN_CAT_LOSS, 0);
}
