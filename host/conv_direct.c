/* Direct convolution (cl/direct.cl) for CPU devices: all three passes of 3x3 (pad 1) and 1x1
 * (pad 0) layers at stride 1 or 2. The weight gradient sums chunks of images into partial
 * weights (the workspace) that a second kernel adds in chunk order. Backward data at stride 1 is the forward of dy
 * with the channels exchanged and the filter flipped; at stride 2 a transposed kernel keeps
 * dx's even and odd columns apart. No workspace: each work-item keeps
 * whole output rows of a few channels in vector registers and reads the input rows in place,
 * which on layers with few channels (16-64) beats both im2col (whose column buffer is 9x
 * the input) and Winograd (whose transforms move 2.25x the input and output through memory
 * for GEMMs with a reduction of only 16-64).
 *
 * Parameters: VW lanes per vector, CO output channels per work-item; the row is WO / VW
 * vectors. The tuner tries a few (VW, CO) whose accumulators fit 8-24 vector registers.
 * Inside a stride-1 row the neighbouring taps are unaligned loads; lane-crossing shuffles
 * (only at the row's ends, and for stride 2) cost more than the multiply-adds they feed. */
#include "conv_internal.h"

#include <string.h>

/* The forward-shaped problem of a pass. */
typedef struct dir_geom {
  int C, H, W, O, HO, WO;
  int flip;
  size_t wso, wsc; /* weight strides of (output, input) channel */
} dir_geom;

/* The backward data of a stride-2 layer runs its own kernel (direct_convt2), which keeps a
 * dx row as its even and odd columns, each as wide as a row of dy. */
static int transposed(const wrn_conv_shape *s, wrn_conv_pass pass) {
  return pass == WRN_CONV_BACKWARD_DATA && s->stride == 2;
}

/* Reals per work-item row held in registers per output channel, and the vector count. */
static int row_reals(const wrn_conv_shape *s, wrn_conv_pass pass) {
  if (transposed(s, pass)) return 2 * conv_wo(s);
  if (pass == WRN_CONV_BACKWARD_WEIGHT) return conv_wo(s);
  return pass == WRN_CONV_BACKWARD_DATA ? s->w : conv_wo(s);
}
static int row_vectors(const wrn_conv_shape *s, wrn_conv_pass pass, int vw) {
  return (transposed(s, pass) ? conv_wo(s) : row_reals(s, pass)) / vw;
}

static void geom(const wrn_conv_shape *s, wrn_conv_pass pass, dir_geom *g) {
  const size_t kk = (size_t)s->k * s->k;
  if (pass == WRN_CONV_BACKWARD_DATA) {
    g->C = s->c_out, g->H = conv_ho(s), g->W = conv_wo(s);
    g->O = s->c_in, g->HO = s->h, g->WO = s->w;
    g->flip = s->stride == 1, g->wso = kk, g->wsc = (size_t)s->c_in * kk;
  } else {
    g->C = s->c_in, g->H = s->h, g->W = s->w;
    g->O = s->c_out, g->HO = conv_ho(s), g->WO = conv_wo(s);
    g->flip = 0, g->wso = (size_t)s->c_in * kk, g->wsc = kk;
  }
}

static const char *const dir_keys[] = {"VW", "CO", "IPC"};

static int dir_vw(const conv_params *p) { return conv_param(p, "VW", 8); }
static int dir_co(const conv_params *p) { return conv_param(p, "CO", 4); }
/* Backward weight: images per chunk of the split reduction. */
static int dir_ipc(const conv_params *p) { return conv_param(p, "IPC", 4); }

static int direct_supports(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                           const conv_params *p) {
  if (!ctx || !(ctx->dev.type & CL_DEVICE_TYPE_CPU)) return 0;
  for (int i = 0; p && i < p->n; i++)
    if (strcmp(p->key[i], dir_keys[0]) && strcmp(p->key[i], dir_keys[1]) &&
        (strcmp(p->key[i], dir_keys[2]) || pass != WRN_CONV_BACKWARD_WEIGHT))
      return 0;
  if (pass == WRN_CONV_BACKWARD_WEIGHT && (dir_ipc(p) < 1 || dir_ipc(p) > 65536)) return 0;
  if (!((s->k == 3 && s->pad == 1) || (s->k == 1 && s->pad == 0))) return 0;
  if (s->stride != 1 && s->stride != 2) return 0;
  if (s->stride == 2 && s->w % 2) return 0;
  const int vw = dir_vw(p), co = dir_co(p);
  if (vw != 4 && vw != 8 && vw != 16) return 0;
  if (co < 1 || co > 32) return 0;
  const int wo = transposed(s, pass) ? conv_wo(s) : row_reals(s, pass);
  return wo % vw == 0 && wo / vw <= 8;
}

/* Backward weight: the chunk count for images_per_chunk ipc, raised until the partial sums
 * (one weight-sized block per chunk) fit max_ws (0: no bound); 0 when not even one fits. */
static int wgrad_chunks(const wrn_conv_shape *s, int ipc, size_t max_ws) {
  const size_t wsize = (size_t)s->c_out * s->c_in * s->k * s->k;
  if (ipc > s->n) ipc = s->n;
  for (;;) {
    const int chunks = (s->n + ipc - 1) / ipc;
    if (!max_ws || (size_t)chunks * wsize <= max_ws) return chunks;
    if (chunks == 1) return 0;
    ipc *= 2;
    if (ipc > s->n) ipc = s->n;
  }
}

static size_t direct_workspace(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                               const conv_params *p, size_t max_ws) {
  if (pass != WRN_CONV_BACKWARD_WEIGHT) return 0;
  const int chunks = wgrad_chunks(s, dir_ipc(p), max_ws);
  return chunks ? (size_t)chunks * s->c_out * s->c_in * s->k * s->k : (size_t)-1;
}

static int direct_candidates(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             conv_params *out, int max) {
  dir_geom g;
  geom(s, pass, &g);
  if (pass == WRN_CONV_BACKWARD_WEIGHT) {
    /* 9 (or 1) vector sums per input channel: one or two channels per work-item. */
    static const int wc[][2] = {{1, 4}, {1, 16}, {2, 4}};
    const int vw = conv_wo(s) % 8 == 0 ? 8 : 4;
    int n = 0;
    for (size_t i = 0; i < sizeof wc / sizeof wc[0] && n < max; i++) {
      memset(&out[n], 0, sizeof out[n]);
      conv_param_set(conv_param_set(conv_param_set(&out[n], "VW", vw), "CO", wc[i][0]), "IPC",
                     wc[i][1]);
      n++;
    }
    return n;
  }
  /* A row of WO reals in units of 32-byte registers; accumulator budgets of 16, 8 and 12
   * such registers in vectors of 8 (AVX2 has 16), 16 and 24 in vectors of 16 (for 32
   * registers of twice the width). */
  const size_t rs = ctx ? ctx->real_size : 4;
  const size_t reals = (size_t)row_reals(s, pass);
  const int u = (int)((reals * rs + 31) / 32) > 0 ? (int)((reals * rs + 31) / 32) : 1;
  const int wo = transposed(s, pass) ? conv_wo(s) : row_reals(s, pass);
  static const int budget[2][3] = {{16, 8, 12}, {16, 24, 0}};
  int n = 0;
  for (int vi = 0; vi < 2; vi++) {
    const int vw = vi == 0 ? 8 : 16;
    if (wo % vw) continue;
    for (int b = 0; b < 3 && budget[vi][b] && n < max; b++) {
      int co = budget[vi][b] / u;
      if (co < 1) co = 1;
      if (co > g.O) co = g.O;
      if (co < 1) co = 1;
      if (co > 16) co = 16;
      int dup = 0;
      for (int j = 0; j < n; j++) dup |= conv_param(&out[j], "VW", 0) == vw && conv_param(&out[j], "CO", 0) == co;
      if (dup) continue;
      memset(&out[n], 0, sizeof out[n]);
      conv_param_set(conv_param_set(&out[n], "VW", vw), "CO", co);
      n++;
    }
  }
  if (n == 0 && max > 0) { /* rows of 4 lanes: the one tile that fits */
    memset(&out[0], 0, sizeof out[0]);
    conv_param_set(conv_param_set(&out[0], "VW", 4), "CO", 4);
    n = 1;
  }
  return n;
}

/* Launches a kernel over (blocks of co channels, rows, planes): work-groups of the blocks of
 * a row times a few rows, so that neighbouring work-items read the same rows while they are
 * in cache. */
static wrn_status launch_blocks(wrn_ctx *ctx, wrn_args *k, int channels, int co, int rows,
                                size_t planes, wrn_conv_pass pass, double flops) {
  const size_t cap = ctx->max_wg < 64 ? ctx->max_wg : 64;
  const size_t blocks = ((size_t)channels + (size_t)co - 1) / (size_t)co;
  size_t l0 = blocks < cap ? blocks : cap, l1 = 1;
  while (l1 * 2 <= (size_t)rows && l0 * l1 * 2 <= 16) l1 *= 2;
  size_t gws[3] = {wrn_round_up(blocks, l0), wrn_round_up((size_t)rows, l1), planes};
  size_t lws[3] = {l0, l1, 1};
  return wrn_launch(k, 3, gws, lws, conv_cat(pass), flops);
}

static wrn_status direct_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             const wrn_conv_io *io, const conv_params *p) {
  dir_geom g;
  geom(s, pass, &g);
  const int vw = dir_vw(p), co = dir_co(p);
  char defs[96];
  snprintf(defs, sizeof defs, "-DDIR_K=%d -DDIR_S=%d -DDIR_FLIP=%d -DDIR_VW=%d -DDIR_NV=%d -DDIR_CO=%d",
           s->k, s->stride, g.flip, vw, row_vectors(s, pass, vw), co);
  wrn_args k;
  if (pass == WRN_CONV_BACKWARD_WEIGHT) {
    const int chunks = wgrad_chunks(s, dir_ipc(p), io->ws.mem ? io->ws_elems : 0);
    if (!chunks || !io->ws.mem)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "direct backward weight: no workspace for "
                      "the partial sums (%zu elements given)", io->ws_elems);
    /* Images per chunk, and the chunks both kernels then use (at most `chunks`). */
    const int ipc = (s->n + chunks - 1) / chunks, nchunks = (s->n + ipc - 1) / ipc;
    WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_DIRECT_WGRAD, defs, &k));
    wrn_arg_mem(&k, io->ws);
    wrn_arg_mem(&k, io->a);
    wrn_arg_mem(&k, io->b);
    wrn_arg_int(&k, s->c_in);
    wrn_arg_int(&k, s->h);
    wrn_arg_int(&k, s->w);
    wrn_arg_int(&k, s->c_out);
    wrn_arg_int(&k, conv_ho(s));
    wrn_arg_int(&k, s->n);
    wrn_arg_int(&k, ipc);
    WRN_TRY(launch_blocks(ctx, &k, s->c_in, co, s->c_out, (size_t)nchunks, pass, conv_flops(s)));
    const size_t count = (size_t)s->c_out * s->c_in * s->k * s->k;
    WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_DIRECT_WSUM, defs, &k));
    wrn_arg_mem(&k, io->out);
    wrn_arg_mem(&k, io->ws);
    wrn_arg_int(&k, (int)count);
    wrn_arg_int(&k, nchunks);
    wrn_arg_int(&k, io->accumulate);
    size_t l = 64, gs = wrn_round_up(count, l);
    return wrn_launch(&k, 1, &gs, &l, conv_cat(pass), 0);
  }
  if (transposed(s, pass)) {
    WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_DIRECT_CONVT2, defs, &k));
    wrn_arg_mem(&k, io->out);
    wrn_arg_mem(&k, io->a);
    wrn_arg_mem(&k, io->b);
    wrn_arg_int(&k, s->c_in);
    wrn_arg_int(&k, s->h);
    wrn_arg_int(&k, s->c_out);
    wrn_arg_int(&k, conv_ho(s));
    wrn_arg_int(&k, io->accumulate);
    return launch_blocks(ctx, &k, s->c_in, co, s->h, (size_t)s->n, pass, conv_flops(s));
  }
  WRN_TRY(wrn_kernel_variant_args(ctx, WRN_K_DIRECT_CONV, defs, &k));
  wrn_arg_mem(&k, io->out);
  wrn_arg_mem(&k, io->a);
  wrn_arg_mem(&k, io->b);
  wrn_arg_mem(&k, io->add.mem ? io->add : io->out);
  wrn_arg_int(&k, g.C);
  wrn_arg_int(&k, g.H);
  wrn_arg_int(&k, g.W);
  wrn_arg_int(&k, g.O);
  wrn_arg_int(&k, g.HO);
  wrn_arg_ulong(&k, g.wso);
  wrn_arg_ulong(&k, g.wsc);
  wrn_arg_int(&k, io->accumulate);
  wrn_arg_int(&k, pass == WRN_CONV_FORWARD && io->add.mem != NULL);
  return launch_blocks(ctx, &k, g.O, co, g.HO, (size_t)s->n, pass, conv_flops(s));
}

const conv_algo wrn_conv_algo_direct = {"direct", direct_supports, direct_workspace,
                                        direct_candidates, direct_run};
