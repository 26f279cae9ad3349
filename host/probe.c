/* Device peak measurement for the benchmark's "share of peak" (cl/probe.cl). */
#include "internal.h"


static wrn_status probe_once(wrn_ctx *ctx, wrn_mem o, int iters, size_t n, size_t lws,
                             double *dt) {
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_FMA_PROBE, &k));
  wrn_arg_buf(&k, o.mem);
  wrn_arg_real(&k, 0.999999);
  wrn_arg_real(&k, 1e-7);
  wrn_arg_int(&k, iters);
  double t0 = wrn_seconds();
  /* Untimed by the profile: this measures the device, not an op. */
  const int prof = ctx->profile;
  ctx->profile = 0;
  wrn_status s = wrn_launch(&k, 1, &n, &lws, WRN_CAT_OTHER, 0);
  ctx->profile = prof;
  WRN_TRY(s);
  WRN_CL_CHECK(clFinish(ctx->queue));
  *dt = wrn_seconds() - t0;
  return WRN_OK;
}

wrn_status wrn_probe_fma(wrn_ctx *ctx, double *gflops) {
  *gflops = 0;
  size_t lws = ctx->max_wg < 256 ? ctx->max_wg : 256;
  /* Enough work-items to fill every compute unit many times over. */
  size_t n = wrn_round_up((size_t)ctx->dev.compute_units * 1024, lws);
  cl_mem out;
  WRN_TRY(wrn_alloc(ctx, n * ctx->real_size, "the peak probe's output", &out));
  wrn_mem o = {out, 0};
  wrn_status s = WRN_OK;
  int iters = 256;
  double best = 0;
  for (int rep = 0; rep < 12 && s == WRN_OK; rep++) {
    double dt = 0;
    s = probe_once(ctx, o, iters, n, lws, &dt);
    if (s != WRN_OK) break;
    double rate = 2.0 * 8.0 * 16.0 * (double)iters * (double)n / dt / 1e9;
    if (rep > 0 && rate > best) best = rate; /* the first run includes compilation */
    /* Grow the work until one launch takes long enough to time well. */
    if (dt < 0.05 && iters < (1 << 22)) iters *= 4;
  }
  wrn_free_mem(ctx, &out);
  if (s == WRN_OK) *gflops = best;
  return s;
}
