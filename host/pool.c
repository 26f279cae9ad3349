/* Average and max pooling (cl/pool.cl), NCHW, square windows. */
#include "internal.h"

static int pool_out(int size, const wrn_pool_shape *s) {
  if (!s || size < 1 || s->k < 1 || s->stride < 1 || s->pad < 0 || s->pad >= s->k) return -1;
  long span = (long)size + 2L * s->pad - s->k;
  if (span < 0) return -1;
  return (int)(span / s->stride + 1);
}

int wrn_pool_out_h(const wrn_pool_shape *s) { return s ? pool_out(s->h, s) : -1; }
int wrn_pool_out_w(const wrn_pool_shape *s) { return s ? pool_out(s->w, s) : -1; }

static wrn_status pool_check(const char *fn, wrn_ctx *ctx, const wrn_pool_shape *s, wrn_mem a,
                             const char *an, wrn_mem b, const char *bn, const wrn_mem *c,
                             const char *cn) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL context", fn);
  if (!s) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL shape", fn);
  if (!a.mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: buffer %s is NULL", fn, an);
  if (!b.mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: buffer %s is NULL", fn, bn);
  if (c && !c->mem) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: buffer %s is NULL", fn, cn);
  if (s->n < 1 || s->c < 1 || s->h < 1 || s->w < 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: sizes must be positive, got n=%d c=%d h=%d w=%d", fn, s->n, s->c, s->h,
                    s->w);
  if (s->k < 1 || s->stride < 1 || s->pad < 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: need k >= 1, stride >= 1, pad >= 0; got k=%d stride=%d pad=%d", fn,
                    s->k, s->stride, s->pad);
  if (s->pad >= s->k)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: pad=%d must be smaller than the window k=%d (a window of padding only "
                    "has no value)",
                    fn, s->pad, s->k);
  if (wrn_pool_out_h(s) < 1 || wrn_pool_out_w(s) < 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: window k=%d with pad=%d does not fit the %dx%d input (output would be "
                    "empty)",
                    fn, s->k, s->pad, s->h, s->w);
  double planes = (double)s->n * s->c;
  if (planes * s->h * s->w > (double)INT32_MAX ||
      planes * wrn_pool_out_h(s) * wrn_pool_out_w(s) > (double)INT32_MAX)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: %dx%dx%dx%d is too large for one call (at most %d elements); split "
                    "the batch",
                    fn, s->n, s->c, s->h, s->w, INT32_MAX);
  return WRN_OK;
}

/* Arguments 4.. shared by the windowed kernels: planes, h, w, oh, ow, k, stride, pad. */
static wrn_status pool_geom_args(cl_kernel k, cl_uint i, const wrn_pool_shape *s) {
  WRN_ARG(k, i, cl_uint, (cl_uint)(s->n * s->c));
  WRN_ARG(k, i + 1, cl_int, s->h);
  WRN_ARG(k, i + 2, cl_int, s->w);
  WRN_ARG(k, i + 3, cl_int, wrn_pool_out_h(s));
  WRN_ARG(k, i + 4, cl_int, wrn_pool_out_w(s));
  WRN_ARG(k, i + 5, cl_int, s->k);
  WRN_ARG(k, i + 6, cl_int, s->stride);
  WRN_ARG(k, i + 7, cl_int, s->pad);
  return WRN_OK;
}

static size_t pool_in_elems(const wrn_pool_shape *s) {
  return (size_t)s->n * s->c * s->h * s->w;
}
static size_t pool_out_elems(const wrn_pool_shape *s) {
  return (size_t)s->n * s->c * wrn_pool_out_h(s) * wrn_pool_out_w(s);
}

/* The WRN head: one window covering the whole map. Several work-items share a plane so that
 * a work-group reads one contiguous block instead of each work-item striding alone. */
static wrn_status avgpool_global(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s) {
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "pool", "avgpool_global_fwd", &k));
  size_t kmax = 0;
  WRN_CL_CHECK(clGetKernelWorkGroupInfo(k, ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof kmax, &kmax, NULL));
  size_t lsz = 256;
  if (ctx->max_wg < lsz) lsz = ctx->max_wg;
  if (kmax && kmax < lsz) lsz = kmax;
  size_t p2 = 1;
  while (p2 * 2 <= lsz) p2 *= 2;
  lsz = p2;
  /* About four values per work-item, at most 32 work-items per plane. */
  size_t hw = (size_t)s->h * s->w, tpp = 1;
  while (tpp * 2 <= 32 && tpp * 2 * 4 <= hw) tpp *= 2;
  if (tpp > lsz) tpp = lsz;
  size_t planes = (size_t)s->n * s->c;
  WRN_ARG_MEM(k, 0, y);
  WRN_ARG_MEM(k, 2, x);
  WRN_ARG(k, 4, cl_uint, (cl_uint)planes);
  WRN_ARG(k, 5, cl_uint, (cl_uint)hw);
  WRN_ARG(k, 6, cl_uint, (cl_uint)tpp);
  WRN_ARG_REAL(ctx, k, 7, 1.0 / (double)hw);
  WRN_CL_CHECK(clSetKernelArg(k, 8, lsz * ctx->real_size, NULL));
  size_t gws = wrn_round_up(planes * tpp, lsz);
  return wrn_enqueue(ctx, k, 1, &gws, &lsz, WRN_CAT_POOL, 0);
}

static int pool_is_global(const wrn_pool_shape *s) {
  return s->pad == 0 && s->k == s->h && s->k == s->w;
}

wrn_status wrn_avgpool_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s) {
  WRN_TRY(pool_check("avgpool_forward", ctx, s, y, "y", x, "x", NULL, NULL));
  if (pool_is_global(s)) return avgpool_global(ctx, y, x, s);
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "pool", "avgpool_fwd", &k));
  WRN_ARG_MEM(k, 0, y);
  WRN_ARG_MEM(k, 2, x);
  WRN_TRY(pool_geom_args(k, 4, s));
  WRN_ARG_REAL(ctx, k, 12, 1.0 / ((double)s->k * s->k));
  return wrn_enqueue_1d(ctx, k, pool_out_elems(s), WRN_CAT_POOL);
}

wrn_status wrn_avgpool_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, const wrn_pool_shape *s,
                                int accumulate) {
  WRN_TRY(pool_check("avgpool_backward", ctx, s, dx, "dx", dy, "dy", NULL, NULL));
  if (accumulate != 0 && accumulate != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "avgpool_backward: accumulate must be 0 or 1, got %d", accumulate);
  cl_kernel k;
  if (pool_is_global(s)) {
    /* One window per plane: a broadcast, without the generic kernel's window search. */
    WRN_TRY(wrn_kernel_get(ctx, "pool", "avgpool_global_bwd", &k));
    WRN_ARG_MEM(k, 0, dx);
    WRN_ARG_MEM(k, 2, dy);
    WRN_ARG(k, 4, cl_uint, (cl_uint)(s->n * s->c));
    WRN_ARG(k, 5, cl_uint, (cl_uint)(s->h * s->w));
    WRN_ARG_REAL(ctx, k, 6, 1.0 / ((double)s->k * s->k));
    WRN_ARG(k, 7, cl_int, accumulate);
    return wrn_enqueue_1d(ctx, k, pool_in_elems(s), WRN_CAT_POOL);
  }
  WRN_TRY(wrn_kernel_get(ctx, "pool", "avgpool_bwd", &k));
  WRN_ARG_MEM(k, 0, dx);
  WRN_ARG_MEM(k, 2, dy);
  WRN_TRY(pool_geom_args(k, 4, s));
  WRN_ARG_REAL(ctx, k, 12, 1.0 / ((double)s->k * s->k));
  WRN_ARG(k, 13, cl_int, accumulate);
  return wrn_enqueue_1d(ctx, k, pool_in_elems(s), WRN_CAT_POOL);
}

wrn_status wrn_maxpool_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s) {
  WRN_TRY(pool_check("maxpool_forward", ctx, s, y, "y", x, "x", NULL, NULL));
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "pool", "maxpool_fwd", &k));
  WRN_ARG_MEM(k, 0, y);
  WRN_ARG_MEM(k, 2, x);
  WRN_TRY(pool_geom_args(k, 4, s));
  return wrn_enqueue_1d(ctx, k, pool_out_elems(s), WRN_CAT_POOL);
}

wrn_status wrn_maxpool_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem x,
                                const wrn_pool_shape *s, int accumulate) {
  WRN_TRY(pool_check("maxpool_backward", ctx, s, dx, "dx", dy, "dy", &x, "x"));
  if (accumulate != 0 && accumulate != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "maxpool_backward: accumulate must be 0 or 1, got %d", accumulate);
  cl_kernel k;
  WRN_TRY(wrn_kernel_get(ctx, "pool", "maxpool_bwd", &k));
  WRN_ARG_MEM(k, 0, dx);
  WRN_ARG_MEM(k, 2, dy);
  WRN_ARG_MEM(k, 4, x);
  WRN_TRY(pool_geom_args(k, 6, s));
  WRN_ARG(k, 14, cl_int, accumulate);
  return wrn_enqueue_1d(ctx, k, pool_in_elems(s), WRN_CAT_POOL);
}
