/* Convolution as im2col + GEMM (cl/conv.cl, wrn_gemm: CLBlast or cl/gemm.cl).
 *
 * Images are processed in chunks of nb; a chunk of cnt images has N = cnt*P GEMM columns
 * (P = ho*wo). The workspace holds
 *   col[K = c_in*k*k][N]   im2col of the chunk's input (or, backward, the input gradient
 *                          before col2im)
 *   mat[c_out][N]          the output (gradient) in channel-major order
 * One GEMM per chunk then covers every image, which keeps the GEMMs large for small images
 * (8x8 maps give P = 64). A chunk of one image needs no mat: the GEMM reads or writes the
 * image's NCHW slice directly, since [c_out][P] is exactly its layout. A 1x1, stride-1,
 * unpadded conv of one image needs no col either: its input slice already is the matrix.
 *
 *   forward        mat = W[c_out][K] col;            y = layout(mat)
 *   backward data  mat = layout(dy); col = W^T mat;  dx (+)= col2im(col)
 *   backward weight mat = layout(dy); col = im2col(x); dw (+)= mat col^T
 */
#include "conv_internal.h"

#include <string.h>

/* ---------------------------------------------------------------- chunking */

typedef struct conv_plan {
  int ho, wo;
  size_t P, K;   /* pixels per output plane; GEMM depth c_in*k*k */
  int pointwise; /* 1x1, stride 1, pad 0: an input slice is already the col matrix */
  int nb;        /* images per chunk */
} conv_plan;

static void plan_shape(conv_plan *pl, const wrn_conv_shape *s) {
  pl->ho = (s->h + 2 * s->pad - s->k) / s->stride + 1;
  pl->wo = (s->w + 2 * s->pad - s->k) / s->stride + 1;
  pl->P = (size_t)pl->ho * (size_t)pl->wo;
  pl->K = (size_t)s->c_in * (size_t)s->k * (size_t)s->k;
  pl->pointwise = s->k == 1 && s->stride == 1 && s->pad == 0;
  pl->nb = 0;
}

/* Workspace elements for chunks of nb images (monotonic in nb, so the largest nb that fits
 * a given size is well defined and every function finds the same one). */
static size_t ws_need(const conv_plan *pl, const wrn_conv_shape *s, size_t nb) {
  if (nb <= 1) return pl->pointwise ? 0 : pl->K * pl->P;
  return nb * pl->P * (pl->K + (size_t)s->c_out);
}

/* The largest chunk (<= n images) whose workspace fits max_ws (0: unbounded); 0 when not
 * even one image fits. */
static int chunk_images(const conv_plan *pl, const wrn_conv_shape *s, size_t max_ws) {
  if (max_ws == 0) return ws_need(pl, s, 1) == 0 ? 1 : 0;
  size_t per = pl->P * (pl->K + (size_t)s->c_out);
  size_t nb = max_ws / per;
  if (nb >= (size_t)s->n) return s->n;
  if (nb >= 2) return (int)nb;
  return ws_need(pl, s, 1) <= max_ws ? 1 : 0;
}

size_t wrn_conv_workspace(const wrn_conv_shape *s, size_t max_ws_elems) {
  if (wrn_conv_out_h(s) < 1) return 0;
  conv_plan pl;
  plan_shape(&pl, s);
  int nb = max_ws_elems == 0 ? s->n : chunk_images(&pl, s, max_ws_elems);
  if (nb < 1) nb = 1; /* one image is the least any conv can work with */
  return ws_need(&pl, s, (size_t)nb);
}

/* The chunk for a workspace of ws_elems (0: none given). */
static int plan_chunk(conv_plan *pl, const wrn_conv_shape *s, size_t ws_elems) {
  plan_shape(pl, s);
  pl->nb = ws_elems ? chunk_images(pl, s, ws_elems) : (ws_need(pl, s, 1) == 0 ? 1 : 0);
  return pl->nb;
}

/* ---------------------------------------------------------------- launches */

/* Row-major C[m][n] = A[m][k] B[k][n] (op as given) + beta C, in the context's type:
 * CLBlast or our kernels, whichever wrn_gemm measured faster for this shape. */
static wrn_status gemm(wrn_ctx *ctx, wrn_op_cat cat, int ta, int tb, size_t m, size_t n,
                       size_t k, wrn_mem a, size_t lda, wrn_mem b, size_t ldb, double beta,
                       wrn_mem c, size_t ldc) {
  return wrn_gemm(ctx, cat, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

/* Work-groups of up to 256 items: L0 along the pixels of a plane (a power of two covering
 * the plane when it is small), L1 = 256 / L0 planes. Adjacent work-items touch adjacent
 * pixels (coalesced on GPUs), no work-item idles on 8x8 maps, and the groups are large:
 * PoCL pays a fixed cost per work-group, which made 64-item groups twice as slow on CPUs.
 * The plane index is constant along dimension 0, so PoCL hoists its divisions out of its
 * loop over work-items. */
static wrn_status launch_planes(wrn_ctx *ctx, wrn_args *k, size_t pixels, size_t planes) {
  const size_t cap = ctx->max_wg < 256 ? ctx->max_wg : 256;
  size_t l0 = 1;
  while (l0 < pixels && l0 < cap) l0 *= 2;
  size_t lws[2] = {l0, cap / l0};
  size_t gws[2] = {wrn_round_up(pixels, lws[0]), wrn_round_up(planes, lws[1])};
  return wrn_launch(k, 2, gws, lws, WRN_CAT_IM2COL, 0);
}

/* Launch of the run-per-work-item kernels: dimension 0 over runs of 8 pixels along a row,
 * 1 over the rows, 2 over the (image, channel) planes; groups of up to 256 items, powers of
 * two covering the row and then the rows, so small maps still fill a group. */
static wrn_status launch_runs(wrn_ctx *ctx, wrn_args *k, size_t runs, size_t rows,
                              size_t planes) {
  size_t cap = 1;
  while (cap * 2 <= ctx->max_wg && cap < 256) cap *= 2;
  size_t l0 = 1, l1 = 1;
  while (l0 < runs && l0 < cap) l0 *= 2;
  while (l1 < rows && l0 * l1 < cap) l1 *= 2;
  /* At most 64 along dimension 2, the smallest per-dimension limit of common GPUs. */
  size_t lws[3] = {l0, l1, cap / (l0 * l1) < 64 ? cap / (l0 * l1) : 64};
  size_t gws[3] = {wrn_round_up(runs, lws[0]), wrn_round_up(rows, lws[1]),
                   wrn_round_up(planes, lws[2])};
  return wrn_launch(k, 3, gws, lws, WRN_CAT_IM2COL, 0);
}

/* The run-per-work-item kernel for this shape, or NULL: 3x3 pad 1 and 1x1 pad 0, stride 1
 * or 2 (1x1 stride 1 is a plain relayout, handled by the callers), with rows of a multiple
 * of 8 pixels (the input rows for col2im, the output rows for im2col) and, for stride 2, an
 * input exactly twice the output width (the vector reads then stay inside each row). */
static int run_kernel(const wrn_ctx *ctx, const wrn_conv_shape *s, const conv_plan *pl,
                      int is_col2im) {
  /* Runs per work-item are for CPU devices, which vectorise them; on a GPU they make
   * neighbouring work-items write 8 apart (measured 3x slower on an H100 for WRN-28-10's
   * layout work), so GPUs keep one element per work-item. */
  if (!(ctx->dev.type & CL_DEVICE_TYPE_CPU)) return -1;
  const int width = is_col2im ? s->w : pl->wo;
  if (width % 8 != 0) return -1;
  if (s->k == 3 && s->pad == 1 && s->stride == 1)
    return is_col2im ? WRN_K_COL2IM_K3S1P1_V8 : WRN_K_IM2COL_K3S1P1_V8;
  if (s->stride == 2 && s->w == 2 * pl->wo) {
    if (s->k == 3 && s->pad == 1) return is_col2im ? WRN_K_COL2IM_K3S2P1_V8 : WRN_K_IM2COL_K3S2P1_V8;
    if (s->k == 1 && s->pad == 0) return is_col2im ? WRN_K_COL2IM_K1S2P0_V8 : WRN_K_IM2COL_K1S2P0_V8;
  }
  return -1;
}

/* to_nchw: nchw[cnt][C][P] (+)= mat[C][cnt*P]; else mat = nchw reordered (accumulate must
 * be 0). Runs of 16 or 4 pixels per work-item where P allows. */
static wrn_status relayout(wrn_ctx *ctx, int to_nchw, wrn_mem nchw, wrn_mem mat, int C,
                           const conv_plan *pl, int cnt, int accumulate) {
  wrn_args k;
  const int cpu = (ctx->dev.type & CL_DEVICE_TYPE_CPU) != 0; /* see run_kernel */
  const size_t V = !cpu ? 1 : pl->P % 16 == 0 ? 16 : pl->P % 4 == 0 ? 4 : 1;
  static const wrn_kid ids[2][3] = {{WRN_K_NCHW_TO_MAT, WRN_K_NCHW_TO_MAT_V4, WRN_K_NCHW_TO_MAT_V16},
                                     {WRN_K_MAT_TO_NCHW, WRN_K_MAT_TO_NCHW_V4, WRN_K_MAT_TO_NCHW_V16}};
  WRN_TRY(wrn_kernel_args(ctx, ids[to_nchw ? 1 : 0][V == 16 ? 2 : V == 4 ? 1 : 0], &k));
  wrn_arg_mem(&k, to_nchw ? nchw : mat);
  wrn_arg_mem(&k, to_nchw ? mat : nchw);
  wrn_arg_int(&k, C);
  wrn_arg_int(&k, (cl_int)pl->P);
  wrn_arg_int(&k, cnt);
  if (to_nchw) wrn_arg_int(&k, accumulate ? 1 : 0);
  return launch_planes(ctx, &k, pl->P / V, (size_t)cnt * (size_t)C);
}

/* col[K][cnt*P] from x[cnt][c_in][h][w] */
static wrn_status im2col(wrn_ctx *ctx, wrn_mem col, wrn_mem x, const wrn_conv_shape *s,
                         const conv_plan *pl, int cnt) {
  /* 1x1, stride 1, no padding: the col matrix is the input in channel-major order. */
  if (pl->pointwise) return relayout(ctx, 0, x, col, s->c_in, pl, cnt, 0);
  wrn_args k;
  const int run = run_kernel(ctx, s, pl, 0);
  if (run >= 0) {
    WRN_TRY(wrn_kernel_args(ctx, (wrn_kid)run, &k));
    wrn_arg_mem(&k, col);
    wrn_arg_mem(&k, x);
    wrn_arg_int(&k, s->c_in);
    wrn_arg_int(&k, s->h);
    wrn_arg_int(&k, s->w);
    if (s->stride == 1) {
      wrn_arg_int(&k, cnt);
    } else {
      wrn_arg_int(&k, pl->ho);
      wrn_arg_int(&k, pl->wo);
      wrn_arg_int(&k, cnt);
    }
    return launch_runs(ctx, &k, (size_t)pl->wo / 8, (size_t)pl->ho,
                       (size_t)cnt * (size_t)s->c_in);
  }
  WRN_TRY(wrn_kernel_args(ctx, s->k == 3 ? WRN_K_IM2COL_K3 : WRN_K_IM2COL, &k));
  wrn_arg_mem(&k, col);
  wrn_arg_mem(&k, x);
  wrn_arg_int(&k, s->c_in);
  wrn_arg_int(&k, s->h);
  wrn_arg_int(&k, s->w);
  wrn_arg_int(&k, s->k);
  wrn_arg_int(&k, s->stride);
  wrn_arg_int(&k, s->pad);
  wrn_arg_int(&k, pl->ho);
  wrn_arg_int(&k, pl->wo);
  wrn_arg_int(&k, cnt);
  return launch_planes(ctx, &k, pl->P, (size_t)cnt * (size_t)s->c_in);
}

/* dx[cnt][c_in][h][w] (+)= col2im(col[K][cnt*P]) */
static wrn_status col2im(wrn_ctx *ctx, wrn_mem dx, wrn_mem col, const wrn_conv_shape *s,
                         const conv_plan *pl, int cnt, int accumulate) {
  /* 1x1, stride 1, no padding: col2im is the relayout back to NCHW. */
  if (pl->pointwise) return relayout(ctx, 1, dx, col, s->c_in, pl, cnt, accumulate);
  wrn_args k;
  const int run = run_kernel(ctx, s, pl, 1);
  if (run >= 0) {
    WRN_TRY(wrn_kernel_args(ctx, (wrn_kid)run, &k));
    wrn_arg_mem(&k, dx);
    wrn_arg_mem(&k, col);
    wrn_arg_int(&k, s->c_in);
    wrn_arg_int(&k, s->h);
    wrn_arg_int(&k, s->w);
    if (s->stride == 1) {
      wrn_arg_int(&k, cnt);
      wrn_arg_int(&k, accumulate ? 1 : 0);
    } else {
      wrn_arg_int(&k, pl->ho);
      wrn_arg_int(&k, pl->wo);
      wrn_arg_int(&k, cnt);
      wrn_arg_int(&k, accumulate ? 1 : 0);
    }
    return launch_runs(ctx, &k, (size_t)s->w / 8, (size_t)s->h, (size_t)cnt * (size_t)s->c_in);
  }
  /* Copies with the kernel size and stride built in, for the shapes WRNs use. */
  wrn_kid id = WRN_K_COL2IM;
  if ((s->k == 1 || s->k == 3) && (s->stride == 1 || s->stride == 2)) {
    static const wrn_kid fixed[2][2] = {{WRN_K_COL2IM_K1S1, WRN_K_COL2IM_K1S2},
                                        {WRN_K_COL2IM_K3S1, WRN_K_COL2IM_K3S2}};
    id = fixed[s->k == 3][s->stride == 2];
  }
  WRN_TRY(wrn_kernel_args(ctx, id, &k));
  wrn_arg_mem(&k, dx);
  wrn_arg_mem(&k, col);
  wrn_arg_int(&k, s->c_in);
  wrn_arg_int(&k, s->h);
  wrn_arg_int(&k, s->w);
  wrn_arg_int(&k, s->k);
  wrn_arg_int(&k, s->stride);
  wrn_arg_int(&k, s->pad);
  wrn_arg_int(&k, pl->ho);
  wrn_arg_int(&k, pl->wo);
  wrn_arg_int(&k, cnt);
  wrn_arg_int(&k, accumulate ? 1 : 0);
  return launch_planes(ctx, &k, (size_t)s->h * (size_t)s->w, (size_t)cnt * (size_t)s->c_in);
}

/* ---------------------------------------------------------------- the three convs */

static wrn_status forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem w, const wrn_conv_shape *s,
                          wrn_mem ws, size_t ws_elems, int accumulate) {
  conv_plan pl;
  plan_chunk(&pl, s, ws_elems);
  const size_t in_img = (size_t)s->c_in * s->h * s->w, out_img = (size_t)s->c_out * pl.P;
  for (int i0 = 0; i0 < s->n; i0 += pl.nb) {
    const int cnt = s->n - i0 < pl.nb ? s->n - i0 : pl.nb;
    const size_t N = (size_t)cnt * pl.P;
    const wrn_mem xi = wrn_mem_at(x, i0 * in_img), yi = wrn_mem_at(y, i0 * out_img);
    wrn_mem col = ws, mat = wrn_mem_at(ws, pl.K * N);
    if (cnt == 1 && pl.pointwise) col = xi;
    else WRN_TRY(im2col(ctx, col, xi, s, &pl, cnt));
    if (cnt == 1) mat = yi;
    WRN_TRY(gemm(ctx, WRN_CAT_CONV_FWD, 0, 0, (size_t)s->c_out, N, pl.K, w, pl.K, col, N,
                 cnt == 1 && accumulate ? 1.0 : 0.0, mat, N));
    if (cnt > 1) WRN_TRY(relayout(ctx, 1, yi, mat, s->c_out, &pl, cnt, accumulate));
  }
  return WRN_OK;
}

static wrn_status backward_data(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem w,
                                const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                                int accumulate) {
  conv_plan pl;
  plan_chunk(&pl, s, ws_elems);
  const size_t in_img = (size_t)s->c_in * s->h * s->w, out_img = (size_t)s->c_out * pl.P;
  for (int i0 = 0; i0 < s->n; i0 += pl.nb) {
    const int cnt = s->n - i0 < pl.nb ? s->n - i0 : pl.nb;
    const size_t N = (size_t)cnt * pl.P;
    const wrn_mem dxi = wrn_mem_at(dx, i0 * in_img), dyi = wrn_mem_at(dy, i0 * out_img);
    wrn_mem col = ws, mat = wrn_mem_at(ws, pl.K * N);
    if (cnt == 1) mat = dyi;
    else WRN_TRY(relayout(ctx, 0, dyi, mat, s->c_out, &pl, cnt, 0));
    if (cnt == 1 && pl.pointwise) {
      /* col2im of a 1x1 stride-1 conv is the identity: write dx directly. */
      WRN_TRY(gemm(ctx, WRN_CAT_CONV_BWD_DATA, 1, 0, pl.K, N, (size_t)s->c_out, w, pl.K, mat, N,
                   accumulate ? 1.0 : 0.0, dxi, N));
      continue;
    }
    WRN_TRY(gemm(ctx, WRN_CAT_CONV_BWD_DATA, 1, 0, pl.K, N, (size_t)s->c_out, w, pl.K, mat, N,
                 0.0, col, N));
    WRN_TRY(col2im(ctx, dxi, col, s, &pl, cnt, accumulate));
  }
  return WRN_OK;
}

static wrn_status backward_weight(wrn_ctx *ctx, wrn_mem dw, wrn_mem dy, wrn_mem x,
                                  const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                                  int accumulate) {
  conv_plan pl;
  plan_chunk(&pl, s, ws_elems);
  const size_t in_img = (size_t)s->c_in * s->h * s->w, out_img = (size_t)s->c_out * pl.P;
  for (int i0 = 0; i0 < s->n; i0 += pl.nb) {
    const int cnt = s->n - i0 < pl.nb ? s->n - i0 : pl.nb;
    const size_t N = (size_t)cnt * pl.P;
    const wrn_mem xi = wrn_mem_at(x, i0 * in_img), dyi = wrn_mem_at(dy, i0 * out_img);
    wrn_mem col = ws, mat = wrn_mem_at(ws, pl.K * N);
    if (cnt == 1 && pl.pointwise) col = xi;
    else WRN_TRY(im2col(ctx, col, xi, s, &pl, cnt));
    if (cnt == 1) mat = dyi;
    else WRN_TRY(relayout(ctx, 0, dyi, mat, s->c_out, &pl, cnt, 0));
    /* Chunks after the first add to what the earlier ones wrote. */
    const double beta = (accumulate || i0 > 0) ? 1.0 : 0.0;
    WRN_TRY(gemm(ctx, WRN_CAT_CONV_BWD_WEIGHT, 0, 1, (size_t)s->c_out, pl.K, N, mat, N, col, N,
                 beta, dw, pl.K));
  }
  return WRN_OK;
}


/* ---------------------------------------------------------------- the algorithm */

static int im2col_supports(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                           const conv_params *p) {
  return p == NULL || p->n == 0; /* every shape; no parameters */
}

static size_t im2col_workspace(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                               const conv_params *p, size_t max_ws) {
  conv_plan pl;
  plan_shape(&pl, s);
  if (max_ws == 0) return ws_need(&pl, s, (size_t)s->n);
  int nb = chunk_images(&pl, s, max_ws);
  return nb < 1 ? (size_t)-1 : ws_need(&pl, s, (size_t)nb);
}

static int im2col_candidates(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             conv_params *out, int max) {
  if (max < 1) return 0;
  memset(out, 0, sizeof *out);
  return 1;
}

static wrn_status im2col_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                             const wrn_conv_io *io, const conv_params *p) {
  const size_t ws_elems = io->ws.mem ? io->ws_elems : 0;
  int acc = io->accumulate;
  if (pass == WRN_CONV_FORWARD) {
    if (io->add.mem) {
      /* y = add (or y += add), then the convolution accumulates on top. */
      const size_t ny = (size_t)s->n * s->c_out * conv_ho(s) * conv_wo(s);
      WRN_TRY(wrn_axpy(ctx, io->out, io->add, 1.0, ny, acc));
      acc = 1;
    }
    return forward(ctx, io->out, io->a, io->b, s, io->ws, ws_elems, acc);
  }
  if (pass == WRN_CONV_BACKWARD_DATA)
    return backward_data(ctx, io->out, io->a, io->b, s, io->ws, ws_elems, acc);
  return backward_weight(ctx, io->out, io->a, io->b, s, io->ws, ws_elems, acc);
}

const conv_algo wrn_conv_algo_im2col = {"im2col", im2col_supports, im2col_workspace,
                                        im2col_candidates, im2col_run};
