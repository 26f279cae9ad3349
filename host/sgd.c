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
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_SGD_STEP, &k));
  wrn_arg_mem(&k, param);
  wrn_arg_mem(&k, grad);
  wrn_arg_mem(&k, mom);
  wrn_arg_ulong(&k, (cl_ulong)n);
  wrn_arg_real(&k, o->lr);
  wrn_arg_real(&k, o->momentum);
  wrn_arg_real(&k, o->weight_decay);
  wrn_arg_int(&k, o->nesterov ? 1 : 0);
  wrn_arg_int(&k, o->first_step ? 1 : 0);
  return wrn_launch_1d(&k, n, WRN_CAT_OPTIM);
}
