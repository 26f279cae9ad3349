/* Batch norm (cl/bn.cl): training forward, inference forward, backward; ReLU optionally fused.
 *
 * Training forward: bn_stats_partial (one work-group per (image chunk, channel)) ->
 * bn_stats_final (one work-group per channel: save_mean, save_invstd, running stats) ->
 * bn_apply (per element). Backward: bn_bwd_partial -> bn_bwd_final (dgamma, dbeta and the
 * per-channel dx coefficients) -> bn_bwd_dx. The partials live in a scratch buffer owned by
 * the context, so no call allocates once the largest layer has been seen. */
#include "internal.h"

#include <math.h>

/* Values a partial-reduction work-group reduces: enough per work-item (16) to hide memory
 * latency on GPUs, few enough that a channel of a 32x32 layer at batch 128 still spreads over
 * 32 work-groups (the stem's 16 channels alone must fill a large GPU). */
#define BN_CHUNK_VALUES 4096
/* Work-group size of the per-channel merge of partials (a channel rarely has more). */
#define BN_FINAL_WG 64

static size_t pow2_floor(size_t v) {
  size_t p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}

static size_t pow2_ceil(size_t v) {
  size_t p = 1;
  while (p < v) p *= 2;
  return p;
}

/* A power-of-two work-group size no larger than 256 that kernel k can run with. */
static wrn_status bn_wg(wrn_ctx *ctx, wrn_args *k, size_t cap, size_t *out) {
  size_t kmax = 0;
  WRN_TRY(wrn_kernel_wg_max(k, &kmax));
  size_t l = cap;
  if (ctx->max_wg < l) l = ctx->max_wg;
  if (kmax && kmax < l) l = kmax;
  *out = pow2_floor(l ? l : 1);
  return WRN_OK;
}

static wrn_status bn_scratch(wrn_ctx *ctx, size_t elems, cl_mem *out) {
  size_t bytes = elems * ctx->real_size;
  if (ctx->bn_scratch_bytes < bytes) {
    /* Kernels already enqueued on the old buffer keep it alive until they finish. */
    wrn_release(&ctx->bn_scratch);
    ctx->bn_scratch_bytes = 0;
    WRN_TRY(wrn_alloc(ctx, bytes, "batch-norm scratch", &ctx->bn_scratch));
    ctx->bn_scratch_bytes = bytes;
  }
  *out = ctx->bn_scratch;
  return WRN_OK;
}

/* Checks the sizes and that no buffer is NULL; names[i] labels bufs[i] in the message. */
static wrn_status bn_check(const char *fn, wrn_ctx *ctx, int n, int c, int hw,
                           const wrn_mem *bufs, const char *const *names, int nbufs) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL context", fn);
  for (int i = 0; i < nbufs; i++)
    if (!bufs[i].mem)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: buffer %s is NULL", fn, names[i]);
  if (n < 1 || c < 1 || hw < 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: sizes must be positive, got n=%d c=%d hw=%d", fn, n, c, hw);
  /* Grids put c and n in dimensions 1 and 2, which some devices (NVIDIA) cap at 65535
   * work-groups; per-channel sizes use 32-bit integers. */
  if (n > 65535 || c > 65535)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: n=%d and c=%d must each be at most 65535; split the batch", fn, n, c);
  if ((double)n * c * hw > (double)INT32_MAX)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: n*c*hw = %.0f elements is too large (at most %d per call); split "
                    "the batch",
                    fn, (double)n * c * hw, INT32_MAX);
  return WRN_OK;
}

static wrn_status bn_flag(const char *fn, const char *what, int v) {
  if (v != 0 && v != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: %s must be 0 or 1, got %d", fn, what, v);
  return WRN_OK;
}

/* A (l0, l1) work-group for a (hw, rows) layout: l0 covers hw up to the total, l1 the rest,
 * both within the device's per-dimension limits. */
static wrn_status bn_wg2(wrn_ctx *ctx, wrn_args *k, int hw, size_t *l0, size_t *l1) {
  size_t total = 0, dims[3] = {0, 0, 0};
  WRN_TRY(bn_wg(ctx, k, 256, &total));
  WRN_CL_CHECK(clGetDeviceInfo(ctx->dev.device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof dims, dims,
                               NULL));
  size_t a = pow2_ceil((size_t)hw);
  if (a > total) a = total;
  if (dims[0] && a > dims[0]) a = pow2_floor(dims[0]);
  size_t b = total / a;
  if (dims[1] && b > dims[1]) b = pow2_floor(dims[1]);
  *l0 = a;
  *l1 = b;
  return WRN_OK;
}

/* Values per vector load in the partial and element-wise kernels: 8 (or 4) where rows allow on CPU devices,
 * whose SIMD lanes then fill; 1 on GPUs (neighbouring work-items read neighbouring values). */
static int bn_vw(const wrn_ctx *ctx, int hw) {
  if (!(ctx->dev.type & CL_DEVICE_TYPE_CPU)) return 1;
  return hw % 8 == 0 ? 8 : hw % 4 == 0 ? 4 : 1;
}

/* Launches an element-wise kernel on the (hw, c, n) grid. */
static wrn_status bn_launch_elem(wrn_ctx *ctx, wrn_args *k, int n, int c, int hw) {
  size_t l0, l1;
  hw /= bn_vw(ctx, hw); /* vectors per row */
  WRN_TRY(bn_wg2(ctx, k, hw, &l0, &l1));
  if (l1 > pow2_ceil((size_t)c)) l1 = pow2_ceil((size_t)c);
  size_t g[3] = {wrn_round_up((size_t)hw, l0), wrn_round_up((size_t)c, l1), (size_t)n};
  size_t l[3] = {l0, l1, 1};
  return wrn_launch(k, 3, g, l, WRN_CAT_BN, 0);
}

/* How a channel's images are cut into chunks for the partial reductions. */
typedef struct bn_plan {
  size_t l0, l1;      /* work-group of the partial kernel */
  cl_uint ipc;        /* images per chunk */
  cl_uint nchunks;    /* chunks per channel */
} bn_plan;


/* Kernel id of bn.cl built for rows of hw values. */
static wrn_status bn_kernel(wrn_ctx *ctx, wrn_kid id, int hw, wrn_args *k) {
  char defs[32];
  snprintf(defs, sizeof defs, "-DBN_VW=%d", bn_vw(ctx, hw));
  return wrn_kernel_variant_args(ctx, id, defs, k);
}

/* On CPU devices a work-group runs on one core, its work-items one after another, and each
 * group costs a fixed overhead: few items with long vector loops over chunks 16x larger
 * are faster there (measured 2x on PoCL), while a GPU wants many items. */
static wrn_status bn_plan_make(wrn_ctx *ctx, wrn_args *partial, int n, int hw, bn_plan *pl) {
  const int cpu = (ctx->dev.type & CL_DEVICE_TYPE_CPU) != 0;
  WRN_TRY(bn_wg2(ctx, partial, hw / bn_vw(ctx, hw), &pl->l0, &pl->l1));
  if (cpu) {
    if (pl->l0 > 16) pl->l0 = 16;
    pl->l1 = 1;
  }
  size_t ipc = (cpu ? 16 : 1) * BN_CHUNK_VALUES / (size_t)hw;
  if (ipc < 1) ipc = 1;
  if (ipc > (size_t)n) ipc = (size_t)n;
  pl->ipc = (cl_uint)ipc;
  pl->nchunks = (cl_uint)(((size_t)n + ipc - 1) / ipc);
  return WRN_OK;
}

static wrn_status bn_launch_partial(wrn_ctx *ctx, wrn_args *k, int c, const bn_plan *pl) {
  size_t g[3] = {pl->l0, pl->l1 * pl->nchunks, (size_t)c}, l[3] = {pl->l0, pl->l1, 1};
  return wrn_launch(k, 3, g, l, WRN_CAT_BN, 0);
}

wrn_status wrn_bn_forward_train(wrn_ctx *ctx, wrn_mem y, wrn_mem save_mean, wrn_mem save_invstd,
                                wrn_mem running_mean, wrn_mem running_var, wrn_mem x,
                                wrn_mem gamma, wrn_mem beta, int n, int c, int hw,
                                double momentum, double eps, int relu) {
  static const char *fn = "bn_forward_train";
  const wrn_mem bufs[] = {y, save_mean, save_invstd, running_mean, running_var, x, gamma, beta};
  static const char *const names[] = {"y",           "save_mean", "save_invstd", "running_mean",
                                      "running_var", "x",         "gamma",       "beta"};
  WRN_TRY(bn_check(fn, ctx, n, c, hw, bufs, names, 8));
  if (!(momentum >= 0 && momentum <= 1))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: momentum must be in [0, 1], got %g", fn,
                    momentum);
  if (!(eps > 0) || !isfinite(eps))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: eps must be positive and finite, got %g",
                    fn, eps);
  WRN_TRY(bn_flag(fn, "relu", relu));

  wrn_args kp, kf, ka;
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_STATS_PARTIAL, hw, &kp));
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_STATS_FINAL, hw, &kf));
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_APPLY, hw, &ka));
  bn_plan pl;
  WRN_TRY(bn_plan_make(ctx, &kp, n, hw, &pl));
  cl_mem scratch;
  WRN_TRY(bn_scratch(ctx, 2 * (size_t)pl.nchunks * (size_t)c, &scratch));
  wrn_mem part = {scratch, 0};
  size_t rs = ctx->real_size;

  wrn_arg_mem(&kp, part);
  wrn_arg_mem(&kp, x);
  wrn_arg_uint(&kp, (cl_uint)n);
  wrn_arg_uint(&kp, (cl_uint)c);
  wrn_arg_uint(&kp, (cl_uint)hw);
  wrn_arg_uint(&kp, pl.ipc);
  wrn_arg_uint(&kp, pl.nchunks);
  wrn_arg_local(&kp, pl.l0 * pl.l1 * sizeof(cl_uint));
  wrn_arg_local(&kp, pl.l0 * pl.l1 * rs);
  wrn_arg_local(&kp, pl.l0 * pl.l1 * rs);
  WRN_TRY(bn_launch_partial(ctx, &kp, c, &pl));

  size_t lf;
  WRN_TRY(bn_wg(ctx, &kf, BN_FINAL_WG, &lf));
  wrn_arg_mem(&kf, save_mean);
  wrn_arg_mem(&kf, save_invstd);
  wrn_arg_mem(&kf, running_mean);
  wrn_arg_mem(&kf, running_var);
  wrn_arg_mem(&kf, part);
  wrn_arg_uint(&kf, (cl_uint)n);
  wrn_arg_uint(&kf, (cl_uint)hw);
  wrn_arg_uint(&kf, pl.ipc);
  wrn_arg_uint(&kf, pl.nchunks);
  wrn_arg_real(&kf, momentum);
  wrn_arg_real(&kf, eps);
  wrn_arg_local(&kf, lf * sizeof(cl_uint));
  wrn_arg_local(&kf, lf * rs);
  wrn_arg_local(&kf, lf * rs);
  size_t gf = lf * (size_t)c;
  WRN_TRY(wrn_launch(&kf, 1, &gf, &lf, WRN_CAT_BN, 0));

  wrn_arg_mem(&ka, y);
  wrn_arg_mem(&ka, x);
  wrn_arg_mem(&ka, save_mean);
  wrn_arg_mem(&ka, save_invstd);
  wrn_arg_mem(&ka, gamma);
  wrn_arg_mem(&ka, beta);
  wrn_arg_uint(&ka, (cl_uint)c);
  wrn_arg_uint(&ka, (cl_uint)hw);
  wrn_arg_int(&ka, 0);
  wrn_arg_real(&ka, eps);
  wrn_arg_int(&ka, relu);
  return bn_launch_elem(ctx, &ka, n, c, hw);
}

wrn_status wrn_bn_forward_infer(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem gamma, wrn_mem beta,
                                wrn_mem running_mean, wrn_mem running_var, int n, int c, int hw,
                                double eps, int relu) {
  static const char *fn = "bn_forward_infer";
  const wrn_mem bufs[] = {y, x, gamma, beta, running_mean, running_var};
  static const char *const names[] = {"y", "x", "gamma", "beta", "running_mean", "running_var"};
  WRN_TRY(bn_check(fn, ctx, n, c, hw, bufs, names, 6));
  if (!(eps > 0) || !isfinite(eps))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: eps must be positive and finite, got %g",
                    fn, eps);
  WRN_TRY(bn_flag(fn, "relu", relu));
  wrn_args ka;
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_APPLY, hw, &ka));
  wrn_arg_mem(&ka, y);
  wrn_arg_mem(&ka, x);
  wrn_arg_mem(&ka, running_mean);
  wrn_arg_mem(&ka, running_var);
  wrn_arg_mem(&ka, gamma);
  wrn_arg_mem(&ka, beta);
  wrn_arg_uint(&ka, (cl_uint)c);
  wrn_arg_uint(&ka, (cl_uint)hw);
  wrn_arg_int(&ka, 1);
  wrn_arg_real(&ka, eps);
  wrn_arg_int(&ka, relu);
  return bn_launch_elem(ctx, &ka, n, c, hw);
}

wrn_status wrn_bn_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dgamma, wrn_mem dbeta, wrn_mem dy,
                           wrn_mem x, wrn_mem y, wrn_mem gamma, wrn_mem save_mean,
                           wrn_mem save_invstd, int n, int c, int hw, int relu,
                           int accumulate_dx, int accumulate_params) {
  WRN_TRY(bn_flag("bn_backward", "relu", relu));
  return wrn_bn_backward_mask(ctx, dx, dgamma, dbeta, dy, x, y, gamma, (wrn_mem){NULL, 0},
                              save_mean, save_invstd, n, c, hw, relu, accumulate_dx,
                              accumulate_params);
}

wrn_status wrn_bn_backward_mask(wrn_ctx *ctx, wrn_mem dx, wrn_mem dgamma, wrn_mem dbeta,
                                wrn_mem dy, wrn_mem x, wrn_mem y, wrn_mem gamma, wrn_mem beta,
                                wrn_mem save_mean, wrn_mem save_invstd, int n, int c, int hw,
                                int relu, int accumulate_dx, int accumulate_params) {
  static const char *fn = "bn_backward";
  const wrn_mem bufs[] = {dx, dgamma, dbeta, dy, x, gamma, save_mean, save_invstd,
                          relu == 2 ? beta : y};
  static const char *const names2[] = {"dx",    "dgamma",    "dbeta",       "dy",  "x",
                                       "gamma", "save_mean", "save_invstd", "beta"};
  static const char *const names1[] = {"dx",    "dgamma",    "dbeta",       "dy", "x",
                                       "gamma", "save_mean", "save_invstd", "y"};
  if (relu < 0 || relu > 2)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: relu must be 0, 1 or 2, got %d", fn, relu);
  /* y is read only for the ReLU mask from y (relu 1), beta only for the recomputed one. */
  WRN_TRY(bn_check(fn, ctx, n, c, hw, bufs, relu == 2 ? names2 : names1, relu ? 9 : 8));
  if (!y.mem) y = x; /* any valid buffer: the kernels never read it */
  if (!beta.mem) beta = gamma;
  WRN_TRY(bn_flag(fn, "accumulate_dx", accumulate_dx));
  WRN_TRY(bn_flag(fn, "accumulate_params", accumulate_params));

  wrn_args kp, kf, kd;
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_BWD_PARTIAL, hw, &kp));
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_BWD_FINAL, hw, &kf));
  WRN_TRY(bn_kernel(ctx, WRN_K_BN_BWD_DX, hw, &kd));
  bn_plan pl;
  WRN_TRY(bn_plan_make(ctx, &kp, n, hw, &pl));
  size_t npart = 2 * (size_t)pl.nchunks * (size_t)c;
  cl_mem scratch;
  WRN_TRY(bn_scratch(ctx, npart + 3 * (size_t)c, &scratch));
  wrn_mem part = {scratch, 0}, coef = {scratch, npart};
  size_t rs = ctx->real_size;

  wrn_arg_mem(&kp, part);
  wrn_arg_mem(&kp, dy);
  wrn_arg_mem(&kp, x);
  wrn_arg_mem(&kp, y);
  wrn_arg_mem(&kp, save_mean);
  wrn_arg_mem(&kp, gamma);
  wrn_arg_mem(&kp, beta);
  wrn_arg_mem(&kp, save_invstd);
  wrn_arg_uint(&kp, (cl_uint)n);
  wrn_arg_uint(&kp, (cl_uint)c);
  wrn_arg_uint(&kp, (cl_uint)hw);
  wrn_arg_uint(&kp, pl.ipc);
  wrn_arg_uint(&kp, pl.nchunks);
  wrn_arg_int(&kp, relu);
  wrn_arg_local(&kp, pl.l0 * pl.l1 * rs);
  wrn_arg_local(&kp, pl.l0 * pl.l1 * rs);
  WRN_TRY(bn_launch_partial(ctx, &kp, c, &pl));

  size_t lf;
  WRN_TRY(bn_wg(ctx, &kf, BN_FINAL_WG, &lf));
  wrn_arg_mem(&kf, dgamma);
  wrn_arg_mem(&kf, dbeta);
  wrn_arg_mem(&kf, coef);
  wrn_arg_mem(&kf, part);
  wrn_arg_mem(&kf, gamma);
  wrn_arg_mem(&kf, save_invstd);
  wrn_arg_uint(&kf, (cl_uint)n);
  wrn_arg_uint(&kf, (cl_uint)hw);
  wrn_arg_uint(&kf, pl.nchunks);
  wrn_arg_int(&kf, accumulate_params);
  wrn_arg_local(&kf, lf * rs);
  wrn_arg_local(&kf, lf * rs);
  size_t gf = lf * (size_t)c;
  WRN_TRY(wrn_launch(&kf, 1, &gf, &lf, WRN_CAT_BN, 0));

  wrn_arg_mem(&kd, dx);
  wrn_arg_mem(&kd, dy);
  wrn_arg_mem(&kd, x);
  wrn_arg_mem(&kd, y);
  wrn_arg_mem(&kd, save_mean);
  wrn_arg_mem(&kd, gamma);
  wrn_arg_mem(&kd, beta);
  wrn_arg_mem(&kd, save_invstd);
  wrn_arg_mem(&kd, coef);
  wrn_arg_uint(&kd, (cl_uint)c);
  wrn_arg_uint(&kd, (cl_uint)hw);
  wrn_arg_int(&kd, relu);
  wrn_arg_int(&kd, accumulate_dx);
  return bn_launch_elem(ctx, &kd, n, c, hw);
}
