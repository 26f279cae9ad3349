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
static void pool_geom_args(wrn_args *k, const wrn_pool_shape *s) {
  wrn_arg_uint(k, (cl_uint)(s->n * s->c));
  wrn_arg_int(k, s->h);
  wrn_arg_int(k, s->w);
  wrn_arg_int(k, wrn_pool_out_h(s));
  wrn_arg_int(k, wrn_pool_out_w(s));
  wrn_arg_int(k, s->k);
  wrn_arg_int(k, s->stride);
  wrn_arg_int(k, s->pad);
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
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_AVGPOOL_GLOBAL_FWD, &k));
  size_t kmax = 0;
  WRN_TRY(wrn_kernel_wg_max(&k, &kmax));
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
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, x);
  wrn_arg_uint(&k, (cl_uint)planes);
  wrn_arg_uint(&k, (cl_uint)hw);
  wrn_arg_uint(&k, (cl_uint)tpp);
  wrn_arg_real(&k, 1.0 / (double)hw);
  wrn_arg_local(&k, lsz * ctx->real_size);
  size_t gws = wrn_round_up(planes * tpp, lsz);
  return wrn_launch(&k, 1, &gws, &lsz, WRN_CAT_POOL, 0);
}

static int pool_is_global(const wrn_pool_shape *s) {
  return s->pad == 0 && s->k == s->h && s->k == s->w;
}

wrn_status wrn_avgpool_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s) {
  WRN_TRY(pool_check("avgpool_forward", ctx, s, y, "y", x, "x", NULL, NULL));
  if (pool_is_global(s)) return avgpool_global(ctx, y, x, s);
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_AVGPOOL_FWD, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, x);
  pool_geom_args(&k, s);
  wrn_arg_real(&k, 1.0 / ((double)s->k * s->k));
  return wrn_launch_1d(&k, pool_out_elems(s), WRN_CAT_POOL);
}

wrn_status wrn_avgpool_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, const wrn_pool_shape *s,
                                int accumulate) {
  WRN_TRY(pool_check("avgpool_backward", ctx, s, dx, "dx", dy, "dy", NULL, NULL));
  if (accumulate != 0 && accumulate != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "avgpool_backward: accumulate must be 0 or 1, got %d", accumulate);
  wrn_args k;
  if (pool_is_global(s)) {
    /* One window per plane: a broadcast, without the generic kernel's window search. */
    WRN_TRY(wrn_kernel_args(ctx, WRN_K_AVGPOOL_GLOBAL_BWD, &k));
    wrn_arg_mem(&k, dx);
    wrn_arg_mem(&k, dy);
    wrn_arg_uint(&k, (cl_uint)(s->n * s->c));
    wrn_arg_uint(&k, (cl_uint)(s->h * s->w));
    wrn_arg_real(&k, 1.0 / ((double)s->k * s->k));
    wrn_arg_int(&k, accumulate);
    return wrn_launch_1d(&k, pool_in_elems(s), WRN_CAT_POOL);
  }
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_AVGPOOL_BWD, &k));
  wrn_arg_mem(&k, dx);
  wrn_arg_mem(&k, dy);
  pool_geom_args(&k, s);
  wrn_arg_real(&k, 1.0 / ((double)s->k * s->k));
  wrn_arg_int(&k, accumulate);
  return wrn_launch_1d(&k, pool_in_elems(s), WRN_CAT_POOL);
}

wrn_status wrn_maxpool_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s) {
  WRN_TRY(pool_check("maxpool_forward", ctx, s, y, "y", x, "x", NULL, NULL));
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_MAXPOOL_FWD, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_mem(&k, x);
  pool_geom_args(&k, s);
  return wrn_launch_1d(&k, pool_out_elems(s), WRN_CAT_POOL);
}

wrn_status wrn_maxpool_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem x,
                                const wrn_pool_shape *s, int accumulate) {
  WRN_TRY(pool_check("maxpool_backward", ctx, s, dx, "dx", dy, "dy", &x, "x"));
  if (accumulate != 0 && accumulate != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "maxpool_backward: accumulate must be 0 or 1, got %d", accumulate);
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_MAXPOOL_BWD, &k));
  wrn_arg_mem(&k, dx);
  wrn_arg_mem(&k, dy);
  wrn_arg_mem(&k, x);
  pool_geom_args(&k, s);
  wrn_arg_int(&k, accumulate);
  return wrn_launch_1d(&k, pool_in_elems(s), WRN_CAT_POOL);
}
