/* Implicit-GEMM convolution (cl/implicit.cl) for every shape and pass, and the split-K
 * weight gradient built on the same kernel.
 *
 * Parameters (the tuner tries a few sets, the first is the default): BM x BN work-group
 * tile, BK reduction step, TM x (TNV * VW) work-item tile; SPLIT (splitk only) chunks of the
 * backward weight's reduction over n * ho * wo, summed by a second pass in chunk order.
 * Work-group tiles suit GPUs (coalesced tile loads through local memory); VW > 1 keeps a
 * work-item's columns in vectors for CPU devices. */
#include "conv_internal.h"

#include <string.h>

typedef struct ig_params {
  int bm, bn, bk, tm, tnv, vw, split;
} ig_params;

static ig_params ig_get(const conv_params *p, int split_default) {
  ig_params q = {conv_param(p, "BM", 32), conv_param(p, "BN", 64), conv_param(p, "BK", 16),
                 conv_param(p, "TM", 4),  conv_param(p, "TNV", 1), conv_param(p, "VW", 8),
                 conv_param(p, "SPLIT", split_default)};
  return q;
}

static const char *const ig_keys[] = {"BM", "BN", "BK", "TM", "TNV", "VW", "SPLIT"};

/* Only the keys above, with values the kernel can be built with on this device. */
static int ig_valid(const wrn_ctx *ctx, const conv_params *p, const ig_params *q, int splitk) {
  for (int i = 0; p && i < p->n; i++) {
    int known = 0;
    for (size_t j = 0; j < sizeof ig_keys / sizeof ig_keys[0]; j++)
      known |= !strcmp(p->key[i], ig_keys[j]) && (j < 6 || splitk);
    if (!known) return 0;
  }
  if (q->bm < 1 || q->bn < 1 || q->bk < 1 || q->tm < 1 || q->tnv < 1 || q->split < 1) return 0;
  if (q->bm > 256 || q->bn > 256 || q->bk > 64 || q->tm > 16 || q->tnv > 8 || q->split > 256)
    return 0;
  if (!(q->vw == 1 || q->vw == 4 || q->vw == 8 || q->vw == 16)) return 0;
  if (q->bm % q->tm || q->bn % (q->tnv * q->vw)) return 0;
  if (splitk && q->split < 2) return 0;
  const size_t wg = (size_t)(q->bm / q->tm) * (size_t)(q->bn / (q->tnv * q->vw));
  if (ctx && (wg > ctx->max_wg || wg < 1)) return 0;
  const size_t rs = ctx ? ctx->real_size : 4;
  const size_t local = (size_t)q->bk * ((size_t)q->bm + (size_t)q->bn + 1) * rs;
  if (ctx && ctx->dev.local_mem && local > ctx->dev.local_mem) return 0;
  return 1;
}

/* GEMM sizes of a pass. */
static void ig_mnk(const wrn_conv_shape *s, wrn_conv_pass pass, int *M, int *N, int *K) {
  const int P = conv_ho(s) * conv_wo(s), kk = s->k * s->k;
  switch (pass) {
  case WRN_CONV_FORWARD: *M = s->c_out, *N = s->n * P, *K = s->c_in * kk; break;
  case WRN_CONV_BACKWARD_DATA: *M = s->c_in, *N = s->n * s->h * s->w, *K = s->c_out * kk; break;
  default: *M = s->c_out, *N = s->c_in * kk, *K = s->n * P; break;
  }
}

static int implicit_supports(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             const conv_params *p) {
  ig_params q = ig_get(p, 1);
  return ig_valid(ctx, p, &q, 0);
}

static int splitk_supports(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                           const conv_params *p) {
  ig_params q = ig_get(p, 8);
  return pass == WRN_CONV_BACKWARD_WEIGHT && ig_valid(ctx, p, &q, 1);
}

static size_t implicit_workspace(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                                 const conv_params *p, size_t max_ws) {
  return 0;
}

static size_t splitk_workspace(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                               const conv_params *p, size_t max_ws) {
  ig_params q = ig_get(p, 8);
  int M, N, K;
  ig_mnk(s, pass, &M, &N, &K);
  size_t need = (size_t)q.split * (size_t)M * (size_t)N;
  return max_ws && need > max_ws ? (size_t)-1 : need;
}

/* Tile sets: CPU devices get vector columns and small groups, GPUs scalar columns and
 * 256-item groups of 64 x 64 or 32 x 64 tiles. */
static int ig_candidates(const wrn_ctx *ctx, conv_params *out, int max, int split) {
  const int cpu = (ctx->dev.type & CL_DEVICE_TYPE_CPU) != 0;
  const int d = ctx->dtype == WRN_F64;
  static const int cpu_sets[][6] = {{32, 64, 16, 4, 1, 16}, {24, 64, 32, 6, 1, 8},
                                    {16, 128, 32, 4, 2, 16}};
  static const int gpu_sets[][6] = {{64, 64, 16, 4, 4, 1}, {32, 64, 16, 2, 4, 1},
                                    {64, 128, 8, 8, 4, 1}};
  const int(*sets)[6] = cpu ? cpu_sets : gpu_sets;
  /* Through local memory one value at a time, the tiles are a GPU design: on CPU devices
   * they run at a small share of the GEMM path's speed (docs/performance.md), so the tuner
   * times only one set there. */
  const int sets_n = cpu ? 1 : 3;
  int n = 0;
  for (int i = 0; i < sets_n && n < max; i++) {
    conv_params *p = &out[n];
    memset(p, 0, sizeof *p);
    int vw = sets[i][5];
    if (d && vw == 16) vw = 8;
    conv_param_set(p, "BM", sets[i][0]);
    conv_param_set(p, "BN", sets[i][1]);
    conv_param_set(p, "BK", sets[i][2]);
    conv_param_set(p, "TM", sets[i][3]);
    conv_param_set(p, "TNV", sets[i][4] * (sets[i][5] / vw));
    conv_param_set(p, "VW", vw);
    if (split > 1) conv_param_set(p, "SPLIT", split);
    n++;
  }
  return n;
}

static int implicit_candidates(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                               conv_params *out, int max) {
  return ig_candidates(ctx, out, max, 1);
}

/* Enough chunks that the weight gradient's few output tiles fill the device: 4 and 16. */
static int splitk_candidates(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             conv_params *out, int max) {
  if (pass != WRN_CONV_BACKWARD_WEIGHT) return 0;
  int n = ig_candidates(ctx, out, max, 4);
  if (n < max && !(ctx->dev.type & CL_DEVICE_TYPE_CPU)) n += ig_candidates(ctx, out + n, 1, 16);
  return n;
}

static wrn_status ig_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                         const wrn_conv_io *io, const ig_params *q) {
  int M, N, K;
  ig_mnk(s, pass, &M, &N, &K);
  const int split = pass == WRN_CONV_BACKWARD_WEIGHT ? q->split : 1;
  char defs[200];
  snprintf(defs, sizeof defs,
           "-DIG_PASS=%d -DKS=%d -DBM=%d -DBN=%d -DBK=%d -DTM=%d -DTNV=%d -DVW=%d -DIG_SPLIT=%d",
           (int)pass, s->k, q->bm, q->bn, q->bk, q->tm, q->tnv, q->vw, split);
  /* Chunks of the reduction, whole BK steps each. */
  int kchunk = (K + split - 1) / split;
  kchunk = (kchunk + q->bk - 1) / q->bk * q->bk;
  const int used = (K + kchunk - 1) / kchunk; /* chunks that hold work */
  wrn_args k;
  WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_IGEMM, defs, &k));
  wrn_arg_mem(&k, split > 1 ? io->ws : io->out);
  /* The GEMM's left operand is the weights (forward, backward data) or dy (backward
   * weight); io gives the data first. */
  const int w_left = pass != WRN_CONV_BACKWARD_WEIGHT;
  wrn_arg_mem(&k, w_left ? io->b : io->a);
  wrn_arg_mem(&k, w_left ? io->a : io->b);
  wrn_arg_mem(&k, io->add.mem ? io->add : io->out);
  wrn_arg_int(&k, s->n);
  wrn_arg_int(&k, s->c_in);
  wrn_arg_int(&k, s->h);
  wrn_arg_int(&k, s->w);
  wrn_arg_int(&k, s->c_out);
  wrn_arg_int(&k, conv_ho(s));
  wrn_arg_int(&k, conv_wo(s));
  wrn_arg_int(&k, s->stride);
  wrn_arg_int(&k, s->pad);
  wrn_arg_int(&k, M);
  wrn_arg_int(&k, N);
  wrn_arg_int(&k, K);
  wrn_arg_int(&k, kchunk);
  wrn_arg_int(&k, io->accumulate);
  wrn_arg_int(&k, io->add.mem != NULL);
  const size_t wg0 = (size_t)(q->bn / (q->tnv * q->vw)), wg1 = (size_t)(q->bm / q->tm);
  size_t lws[3] = {wg0, wg1, 1};
  size_t gws[3] = {wg0 * (size_t)((N + q->bn - 1) / q->bn), wg1 * (size_t)((M + q->bm - 1) / q->bm),
                   (size_t)used};
  /* The partial products count the pass's FLOPs; the reduction adds none. */
  WRN_TRY(wrn_launch(&k, 3, gws, lws, conv_cat(pass), conv_flops(s)));
  if (split == 1) return WRN_OK;
  WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_IGEMM_REDUCE, defs, &k));
  wrn_arg_mem(&k, io->out);
  wrn_arg_mem(&k, io->ws);
  wrn_arg_int(&k, M * N);
  wrn_arg_int(&k, used);
  wrn_arg_int(&k, io->accumulate);
  return wrn_launch_1d(&k, (size_t)M * N, conv_cat(pass));
}

static wrn_status implicit_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                               const wrn_conv_io *io, const conv_params *p) {
  ig_params q = ig_get(p, 1);
  q.split = 1;
  return ig_run(ctx, s, pass, io, &q);
}

static wrn_status splitk_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             const wrn_conv_io *io, const conv_params *p) {
  ig_params q = ig_get(p, 8);
  return ig_run(ctx, s, pass, io, &q);
}

const conv_algo wrn_conv_algo_implicit = {"implicit", implicit_supports, implicit_workspace,
                                          implicit_candidates, implicit_run};
const conv_algo wrn_conv_algo_splitk = {"splitk", splitk_supports, splitk_workspace,
                                        splitk_candidates, splitk_run};
