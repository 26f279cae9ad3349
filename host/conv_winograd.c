/* Winograd F(2x2,3x3) and F(4x4,3x3) for 3x3 stride-1 convolutions (cl/winograd.cl): all
 * three passes as transform -> one batched GEMM over the a*a transform points -> transform.
 *
 *   forward          V = G w G^T, U = B^T x B,  M_xi = V_xi U_xi   (c_out x c_in x tiles),
 *                    y (+)= A^T M A (+ add)
 *   backward data    the forward of dy with the flipped, channel-exchanged filter, padded by
 *                    2 - pad (dx has the input's size)
 *   backward weight  U = B^T x B, E = A dy A^T,  S_xi = E_xi U_xi^T  (c_out x tiles x c_in),
 *                    dw (+)= G^T S G
 *
 * The workspace holds V (or S) once and U, M (or E) for a chunk of images; a bound smaller
 * than the whole batch runs the chunks in turn (the weight gradient's S sums over them in
 * chunk order, so results do not depend on timing). Multiplies per output fall from 9 per
 * input channel to a^2/m^2: 4 (F2) and 2.25 (F4). */
#include "conv_internal.h"

#include <string.h>

typedef struct wino_geom {
  int m, a;            /* output tile, transform tile */
  int O, I;            /* output and input channels of the (forward-shaped) problem */
  int H, W, HO, WO;    /* input and output maps */
  int pad;             /* padding of the input transform */
  int th, tw;          /* tiles per image */
} wino_geom;

/* The forward-shaped problem of a pass: forward as given; backward data exchanges the
 * channels and maps and pads by 2 - pad; backward weight tiles the output map. */
static void geom(const wrn_conv_shape *s, wrn_conv_pass pass, int m, wino_geom *g) {
  const int ho = conv_ho(s), wo = conv_wo(s);
  g->m = m, g->a = m + 2;
  if (pass == WRN_CONV_BACKWARD_DATA) {
    g->O = s->c_in, g->I = s->c_out, g->H = ho, g->W = wo, g->HO = s->h, g->WO = s->w;
    g->pad = 2 - s->pad;
  } else {
    g->O = s->c_out, g->I = s->c_in, g->H = s->h, g->W = s->w, g->HO = ho, g->WO = wo;
    g->pad = s->pad;
  }
  g->th = (g->HO + m - 1) / m, g->tw = (g->WO + m - 1) / m;
}

static size_t per_image(const wino_geom *g) {
  return (size_t)g->a * g->a * (size_t)(g->I + g->O) * (size_t)g->th * (size_t)g->tw;
}
static size_t fixed_part(const wino_geom *g) { return (size_t)g->a * g->a * (size_t)g->O * g->I; }

static int wino_supports(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                         const conv_params *p) {
  return (!p || p->n == 0) && s->k == 3 && s->stride == 1 && s->pad <= 2;
}

static size_t wino_workspace_m(const wrn_conv_shape *s, wrn_conv_pass pass, int m, size_t max_ws) {
  wino_geom g;
  geom(s, pass, m, &g);
  int nb = conv_chunk(s, per_image(&g), fixed_part(&g), max_ws);
  return nb < 1 ? (size_t)-1 : fixed_part(&g) + (size_t)nb * per_image(&g);
}

static int wino_candidates(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                           conv_params *out, int max) {
  if (max < 1) return 0;
  memset(out, 0, sizeof *out);
  return 1;
}

/* Tiles per work-item: the most (8, 4, 2, 1) that divides a row of tiles. */
static int tiles_per_item(const wino_geom *g) {
  int vt = 8;
  while (vt > 1 && g->tw % vt) vt /= 2;
  return vt;
}

static void wino_defs(const wino_geom *g, char *out, size_t n) {
  snprintf(out, n, "-DWINO_M=%d -DWINO_VT=%d", g->m, tiles_per_item(g));
}

/* 2-D launch over (contiguous index, rows), groups of up to 256 along dimension 0. */
static wrn_status launch2(wrn_args *k, size_t d0, size_t d1, wrn_conv_pass pass) {
  size_t l0 = 1;
  const size_t cap = k->ctx->max_wg < 256 ? k->ctx->max_wg : 256;
  while (l0 < d0 && l0 < cap) l0 *= 2;
  size_t lws[2] = {l0, 1};
  size_t gws[2] = {wrn_round_up(d0, l0), d1};
  return wrn_launch(k, 2, gws, lws, conv_cat(pass), 0);
}

/* 3-D launch over (tile columns, tile rows, planes). */
static wrn_status launch_tiles(wrn_args *k, const wino_geom *g, size_t planes, wrn_conv_pass pass) {
  const size_t cap = k->ctx->max_wg < 256 ? k->ctx->max_wg : 256;
  const size_t groups = (size_t)(g->tw / tiles_per_item(g));
  size_t l0 = 1, l1 = 1;
  while (l0 < groups && l0 < cap) l0 *= 2;
  while (l1 < (size_t)g->th && l0 * l1 < cap) l1 *= 2;
  size_t lws[3] = {l0, l1, 1};
  size_t gws[3] = {wrn_round_up(groups, l0), wrn_round_up((size_t)g->th, l1), planes};
  return wrn_launch(k, 3, gws, lws, conv_cat(pass), 0);
}

static wrn_status input_transform(wrn_ctx *ctx, const char *defs, wrn_mem U, wrn_mem x,
                                  const wino_geom *g, int T, wrn_conv_pass pass) {
  wrn_args k;
  WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_WINO_INPUT, defs, &k));
  wrn_arg_mem(&k, U);
  wrn_arg_mem(&k, x);
  wrn_arg_int(&k, g->I);
  wrn_arg_int(&k, g->H);
  wrn_arg_int(&k, g->W);
  wrn_arg_int(&k, g->pad);
  wrn_arg_int(&k, g->th);
  wrn_arg_int(&k, g->tw);
  wrn_arg_int(&k, T);
  return launch_tiles(&k, g, (size_t)(T / (g->th * g->tw)) * (size_t)g->I, pass);
}

/* Forward and backward data: the same pipeline on the forward-shaped problem. */
static wrn_status run_forward_like(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                                   const wrn_conv_io *io, int m) {
  wino_geom g;
  geom(s, pass, m, &g);
  char defs[48];
  wino_defs(&g, defs, sizeof defs);
  const size_t aa = (size_t)g.a * g.a;
  const int nb = conv_chunk(s, per_image(&g), fixed_part(&g), io->ws.mem ? io->ws_elems : 0);
  wrn_mem V = io->ws;
  wrn_args k;
  WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_WINO_FILTER, defs, &k));
  wrn_arg_mem(&k, V);
  wrn_arg_mem(&k, io->b);
  wrn_arg_int(&k, g.O);
  wrn_arg_int(&k, g.I);
  wrn_arg_int(&k, pass == WRN_CONV_BACKWARD_DATA);
  WRN_TRY(launch2(&k, (size_t)g.I, (size_t)g.O, pass));
  const size_t in_img = (size_t)g.I * g.H * g.W, out_img = (size_t)g.O * g.HO * g.WO;
  const size_t per = (size_t)g.th * g.tw;
  for (int i0 = 0; i0 < s->n; i0 += nb) {
    const int cnt = s->n - i0 < nb ? s->n - i0 : nb;
    const int T = cnt * (int)per;
    wrn_mem U = wrn_mem_at(io->ws, fixed_part(&g));
    wrn_mem M = wrn_mem_at(U, aa * (size_t)g.I * (size_t)T);
    WRN_TRY(input_transform(ctx, defs, U, wrn_mem_at(io->a, (size_t)i0 * in_img), &g, T, pass));
    /* The multiply-adds of the whole pass are counted on the GEMMs (useful FLOPs of the
     * direct convolution), so the profile's GFLOP/s compare across algorithms. */
    WRN_TRY(wrn_gemm_strided(ctx, conv_cat(pass), 0, 0, (size_t)g.O, (size_t)T, (size_t)g.I, 1.0,
                             V, (size_t)g.I, (size_t)g.O * g.I, U, (size_t)T,
                             (size_t)g.I * T, 0.0, M, (size_t)T, (size_t)g.O * T, aa,
                             conv_flops(s) * cnt / s->n));
    WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_WINO_OUTPUT, defs, &k));
    const wrn_mem y = wrn_mem_at(io->out, (size_t)i0 * out_img);
    const wrn_mem add = io->add.mem ? wrn_mem_at(io->add, (size_t)i0 * out_img) : y;
    wrn_arg_mem(&k, y);
    wrn_arg_mem(&k, M);
    wrn_arg_mem(&k, add);
    wrn_arg_int(&k, g.O);
    wrn_arg_int(&k, g.HO);
    wrn_arg_int(&k, g.WO);
    wrn_arg_int(&k, g.th);
    wrn_arg_int(&k, g.tw);
    wrn_arg_int(&k, T);
    wrn_arg_int(&k, io->accumulate);
    wrn_arg_int(&k, io->add.mem != NULL);
    WRN_TRY(launch_tiles(&k, &g, (size_t)cnt * g.O, pass));
  }
  return WRN_OK;
}

static wrn_status run_backward_weight(wrn_ctx *ctx, const wrn_conv_shape *s,
                                      const wrn_conv_io *io, int m) {
  const wrn_conv_pass pass = WRN_CONV_BACKWARD_WEIGHT;
  wino_geom g;
  geom(s, pass, m, &g);
  char defs[48];
  wino_defs(&g, defs, sizeof defs);
  const size_t aa = (size_t)g.a * g.a;
  const int nb = conv_chunk(s, per_image(&g), fixed_part(&g), io->ws.mem ? io->ws_elems : 0);
  wrn_mem S = io->ws;
  const size_t in_img = (size_t)g.I * g.H * g.W, out_img = (size_t)g.O * g.HO * g.WO;
  const size_t per = (size_t)g.th * g.tw;
  wrn_args k;
  for (int i0 = 0; i0 < s->n; i0 += nb) {
    const int cnt = s->n - i0 < nb ? s->n - i0 : nb;
    const int T = cnt * (int)per;
    wrn_mem U = wrn_mem_at(io->ws, fixed_part(&g));
    wrn_mem E = wrn_mem_at(U, aa * (size_t)g.I * (size_t)T);
    WRN_TRY(input_transform(ctx, defs, U, wrn_mem_at(io->b, (size_t)i0 * in_img), &g, T, pass));
    WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_WINO_GRAD_OUTPUT, defs, &k));
    wrn_arg_mem(&k, E);
    wrn_arg_mem(&k, wrn_mem_at(io->a, (size_t)i0 * out_img));
    wrn_arg_int(&k, g.O);
    wrn_arg_int(&k, g.HO);
    wrn_arg_int(&k, g.WO);
    wrn_arg_int(&k, g.th);
    wrn_arg_int(&k, g.tw);
    wrn_arg_int(&k, T);
    WRN_TRY(launch_tiles(&k, &g, (size_t)cnt * g.O, pass));
    /* S_xi (+)= E_xi U_xi^T; chunks after the first add to the earlier ones. */
    WRN_TRY(wrn_gemm_strided(ctx, conv_cat(pass), 0, 1, (size_t)g.O, (size_t)g.I, (size_t)T,
                             1.0, E, (size_t)T, (size_t)g.O * T, U, (size_t)T, (size_t)g.I * T,
                             i0 > 0 ? 1.0 : 0.0, S, (size_t)g.I, (size_t)g.O * g.I, aa,
                             conv_flops(s) * cnt / s->n));
  }
  WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_WINO_GRAD_FILTER, defs, &k));
  wrn_arg_mem(&k, io->out);
  wrn_arg_mem(&k, S);
  wrn_arg_int(&k, g.O);
  wrn_arg_int(&k, g.I);
  wrn_arg_int(&k, io->accumulate);
  return launch2(&k, (size_t)g.I, (size_t)g.O, pass);
}

#define WINO_ALGO(M)                                                                        \
  static size_t wino##M##_workspace(const wrn_ctx *ctx, const wrn_conv_shape *s,            \
                                    wrn_conv_pass pass, const conv_params *p, size_t max) { \
    return wino_workspace_m(s, pass, M, max);                                               \
  }                                                                                         \
  static wrn_status wino##M##_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, \
                                  const wrn_conv_io *io, const conv_params *p) {            \
    return pass == WRN_CONV_BACKWARD_WEIGHT ? run_backward_weight(ctx, s, io, M)            \
                                            : run_forward_like(ctx, s, pass, io, M);        \
  }                                                                                         \
  const conv_algo wrn_conv_algo_winograd##M = {"winograd" #M, wino_supports,                \
                                               wino##M##_workspace, wino_candidates,        \
                                               wino##M##_run};

WINO_ALGO(2)
WINO_ALGO(4)
