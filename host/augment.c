/* Input pipeline: flip, reflection-pad crop, normalisation and cutout of uint8 images
 * (cl/augment.cl). */
#include "internal.h"

#include <math.h>

/* The kernels' wrn_below (cl/common.h): uniform integer in [0, n) by multiply-shift. */
static uint32_t below(uint32_t x, uint32_t n) { return (uint32_t)(((uint64_t)x * n) >> 32); }

wrn_augment wrn_augment_recipe(void) {
  wrn_augment a = {1, 4, {125.3f, 123.0f, 113.9f}, {63.0f, 62.1f, 66.7f}, 0, 0, 0};
  return a;
}

/* Offsets count in the padded image. With augmentation off there is no padding, so the
 * offsets are 0 and there is no flip, whatever a->pad holds. */
void wrn_augment_params(const wrn_augment *a, int i, int *flip, int *dy, int *dx) {
  int f = 0, oy = 0, ox = 0;
  if (a && a->augment && a->pad >= 0) {
    uint32_t ctr[4] = {(uint32_t)i, 0u, (uint32_t)a->step, (uint32_t)(a->step >> 32)};
    uint32_t key[2] = {(uint32_t)a->seed, (uint32_t)(a->seed >> 32)};
    uint32_t r[4];
    wrn_philox4x32(ctr, key, r);
    uint32_t span = 2u * (uint32_t)a->pad + 1u;
    f = (int)(r[0] & 1u);
    oy = (int)below(r[1], span);
    ox = (int)below(r[2], span);
  }
  if (flip) *flip = f;
  if (dy) *dy = oy;
  if (dx) *dx = ox;
}

int wrn_augment_cutout(const wrn_augment *a, int i, int h, int w, int *y0, int *x0) {
  int on = a && a->cutout > 0 && h > 0 && w > 0;
  int cy = 0, cx = 0;
  if (on) {
    uint32_t ctr[4] = {(uint32_t)i, 1u, (uint32_t)a->step, (uint32_t)(a->step >> 32)};
    uint32_t key[2] = {(uint32_t)a->seed, (uint32_t)(a->seed >> 32)};
    uint32_t r[4];
    wrn_philox4x32(ctr, key, r);
    cy = (int)below(r[0], (uint32_t)h) - a->cutout / 2;
    cx = (int)below(r[1], (uint32_t)w) - a->cutout / 2;
  }
  if (y0) *y0 = cy;
  if (x0) *x0 = cx;
  return on;
}

wrn_status wrn_augment_forward(wrn_ctx *ctx, wrn_mem y, cl_mem img, size_t img_off, int n,
                               int c, int h, int w, const wrn_augment *a) {
  return wrn_augment_forward_at(ctx, y, img, img_off, n, 0, c, h, w, a);
}

wrn_status wrn_augment_forward_at(wrn_ctx *ctx, wrn_mem y, cl_mem img, size_t img_off, int n,
                                  size_t first, int c, int h, int w, const wrn_augment *a) {
  static const char *fn = "augment_forward";
  if (!ctx || !a)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL %s", fn, ctx ? "options" : "context");
  if (!y.mem || !img)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL buffer (y %p, img %p)", fn,
                    (void *)y.mem, (void *)img);
  if (n <= 0 || h <= 0 || w <= 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: n = %d, h = %d, w = %d must be positive", fn, n, h, w);
  if (c < 1 || c > 3)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: c = %d channels; mean/std hold 3, so c must be 1..3", fn, c);
  if (a->augment && (a->pad < 0 || a->pad >= h || a->pad >= w))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: pad = %d must be >= 0 and smaller than h = %d and w = %d (one "
                    "reflection)",
                    fn, a->pad, h, w);
  if (a->cutout < 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: cutout = %d must be >= 0", fn, a->cutout);
  for (int ch = 0; ch < c; ch++)
    if (!isfinite(a->mean[ch]) || !isfinite(a->std[ch]) || a->std[ch] == 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                      "%s: channel %d has mean = %g, std = %g (need finite, std != 0)", fn, ch,
                      (double)a->mean[ch], (double)a->std[ch]);
  /* The kernel indexes planes and pixels in 32 bits. */
  size_t hw = (size_t)h * (size_t)w, planes = (size_t)n * (size_t)c;
  if (hw > UINT32_MAX || planes > UINT32_MAX || hw * planes / hw != planes)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: batch %d x %d x %d x %d is too large", fn,
                    n, c, h, w);
  /* img_off counts bytes, y.off counts reals: check the byte span, where a unit mix-up is
   * easy to make. */
  size_t bytes = 0, need = hw * planes;
  WRN_CL_CHECK(clGetMemObjectInfo(img, CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
  if (img_off > bytes || need > bytes - img_off)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: images need bytes [%zu, %zu) but the buffer holds %zu bytes", fn,
                    img_off, img_off + need, bytes);

  float mean[3] = {0, 0, 0}, sd[3] = {1, 1, 1};
  for (int ch = 0; ch < c; ch++) mean[ch] = a->mean[ch], sd[ch] = a->std[ch];
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_AUGMENT, &k));
  wrn_arg_mem(&k, y);
  wrn_arg_buf(&k, img);
  wrn_arg_ulong(&k, (cl_ulong)img_off);
  wrn_arg_int(&k, c);
  wrn_arg_int(&k, h);
  wrn_arg_int(&k, w);
  wrn_arg_int(&k, a->augment ? 1 : 0);
  wrn_arg_int(&k, a->augment ? a->pad : 0);
  wrn_arg_uint(&k, (cl_uint)a->seed);
  wrn_arg_uint(&k, (cl_uint)(a->seed >> 32));
  wrn_arg_uint(&k, (cl_uint)a->step);
  wrn_arg_uint(&k, (cl_uint)(a->step >> 32));
  for (int ch = 0; ch < 3; ch++) wrn_arg_real(&k, mean[ch]);
  for (int ch = 0; ch < 3; ch++) wrn_arg_real(&k, sd[ch]);
  wrn_arg_int(&k, a->cutout);
  /* A slice of a global batch: its draws are keyed by the samples' indices in the whole. */
  if (first > UINT32_MAX / (size_t)c - (size_t)n)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: first sample %zu is too large", fn, first);
  wrn_arg_uint(&k, (cl_uint)(first * (size_t)c));
  const size_t run = (ctx->dev.type & CL_DEVICE_TYPE_CPU) ? (size_t)w : 1;
  wrn_arg_int(&k, (int)run);
  const size_t items = hw / run;
  size_t lws[2] = {ctx->max_wg < 256 ? ctx->max_wg : 256, 1};
  if (run > 1) lws[0] = items < 64 ? items : 64;
  size_t gws[2] = {wrn_round_up(items, lws[0]), planes};
  return wrn_launch(&k, 2, gws, lws, WRN_CAT_AUGMENT, 0);
}
