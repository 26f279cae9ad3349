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
  /* The label offset counts int32s, not reals: a unit mix-up is easy, so check the span. */
  size_t lbytes = 0;
  WRN_CL_CHECK(clGetMemObjectInfo(labels, CL_MEM_SIZE, sizeof lbytes, &lbytes, NULL));
  if (labels_off > lbytes / sizeof(cl_int) || (size_t)n > lbytes / sizeof(cl_int) - labels_off)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: labels needs int32 elements [%zu, %zu) but the buffer holds %zu bytes",
                    fn, labels_off, labels_off + (size_t)n, lbytes);

  cl_kernel kern;
  WRN_TRY(wrn_kernel_get(ctx, "loss", "softmax_xent", &kern));
  size_t kwg = 0;
  WRN_CL_CHECK(clGetKernelWorkGroupInfo(kern, ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof kwg, &kwg, NULL));
  size_t lws = WRN_LOSS_WG;
  while (lws > 1 && (lws > kwg || lws > ctx->max_wg)) lws >>= 1;
  size_t gws = (size_t)n * lws;

  int has_dl = dlogits.mem != NULL;
  WRN_ARG_MEM(kern, 0, loss_out);
  WRN_ARG_MEM(kern, 2, correct_out);
  /* A valid buffer is needed even when the kernel does not write dlogits. */
  WRN_ARG_MEM(kern, 4, has_dl ? dlogits : logits);
  WRN_ARG_MEM(kern, 6, logits);
  WRN_ARG(kern, 8, cl_mem, labels);
  WRN_ARG(kern, 9, cl_ulong, (cl_ulong)labels_off);
  WRN_ARG(kern, 10, cl_int, n);
  WRN_ARG(kern, 11, cl_int, k);
  WRN_ARG_REAL(ctx, kern, 12, scale / n);
  WRN_ARG(kern, 13, cl_int, has_dl);
  WRN_CL_CHECK(clSetKernelArg(kern, 14, lws * ctx->real_size, NULL));
  WRN_CL_CHECK(clSetKernelArg(kern, 15, lws * sizeof(cl_int), NULL));
  return wrn_enqueue(ctx, kern, 1, &gws, &lws, WRN_CAT_LOSS, 0);
}
