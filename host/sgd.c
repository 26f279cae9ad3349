/* SGD step over one flat parameter buffer (cl/sgd.cl). */
#include "internal.h"

#include <math.h>

wrn_status wrn_sgd_step(wrn_ctx *ctx, wrn_mem param, wrn_mem grad, wrn_mem mom, size_t n,
                        const wrn_sgd *o) {
  static const char *fn = "sgd_step";
  if (!ctx || !o)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL %s", fn, ctx ? "options" : "context");
  if (!param.mem || !grad.mem || !mom.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: NULL buffer (param %p, grad %p, mom %p)", fn, (void *)param.mem,
                    (void *)grad.mem, (void *)mom.mem);
  if (n == 0) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: n = 0 parameters", fn);
  /* !(x >= 0) also catches NaN. */
  if (!(o->lr >= 0) || !isfinite(o->lr))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: lr = %g must be finite and >= 0", fn,
                    o->lr);
  if (!(o->momentum >= 0 && o->momentum < 1))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: momentum = %g must be in [0, 1)", fn,
                    o->momentum);
  if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: weight_decay = %g must be finite and >= 0",
                    fn, o->weight_decay);
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "sgd", "sgd_step", &k));
  WRN_ARG_MEM(k, 0, param);
  WRN_ARG_MEM(k, 2, grad);
  WRN_ARG_MEM(k, 4, mom);
  WRN_ARG(k, 6, cl_ulong, (cl_ulong)n);
  WRN_ARG_REAL(ctx, k, 7, o->lr);
  WRN_ARG_REAL(ctx, k, 8, o->momentum);
  WRN_ARG_REAL(ctx, k, 9, o->weight_decay);
  WRN_ARG(k, 10, cl_int, o->nesterov ? 1 : 0);
  WRN_ARG(k, 11, cl_int, o->first_step ? 1 : 0);
  return wrn_enqueue_1d(ctx, k, n, WRN_CAT_OPTIM);
}
