/* Convolution (im2col + CLBlast GEMM): forward, input gradient and weight gradient against a
 * naive direct convolution, in float and double, both accumulate modes, chunked and whole
 * batch; gradients against central differences in double; argument checks; the profile's
 * FLOP count. */
#include "harness.h"
#include "ref_conv.h"

#include <math.h>
#include <string.h>

/* Float tolerance for a sum of L products of values in [-1, 1]: the GEMM adds them in float
 * in some order, and the rounding error of such a sum grows about like eps * L in the worst
 * case we see (eps = 6e-8; partial sums reach sqrt(L) in size and each of L additions rounds
 * at that size). atol = 3e-7 * L gives about 5 eps * L; rtol 1e-6 covers the final rounding
 * of large results. Double: 1e-15 * L is about 9 eps * L with eps = 1.1e-16 (at most 1e-12
 * for the longest sums here, L = 1025). */
static t_tol tol_for(wrn_ctx *ctx, size_t L) {
  return t_tol_for(ctx, (t_tol){3e-7 * (double)L, 1e-6}, (t_tol){1e-15 * (double)L, 1e-12});
}

typedef struct shape_case {
  wrn_conv_shape s;
  size_t ws_bound; /* max_ws_elems for wrn_conv_workspace: 0 is the whole batch at once */
} shape_case;

static size_t out_elems(const wrn_conv_shape *s) {
  return (size_t)s->n * s->c_out * wrn_conv_out_h(s) * wrn_conv_out_w(s);
}
static size_t in_elems(const wrn_conv_shape *s) { return (size_t)s->n * s->c_in * s->h * s->w; }
static size_t w_elems(const wrn_conv_shape *s) { return (size_t)s->c_out * s->c_in * s->k * s->k; }

/* Workspace of wrn_conv_workspace(s, bound) elements; NULL when it needs none. */
static cl_mem ws_alloc(wrn_ctx *ctx, const wrn_conv_shape *s, size_t bound, size_t *elems) {
  *elems = wrn_conv_workspace(s, bound);
  if (*elems == 0) return NULL;
  cl_mem m = NULL;
  WT_OK(wrn_alloc(ctx, *elems * wrn_ctx_real_size(ctx), "test workspace", &m));
  return m;
}

static cl_mem nan_buffer(wrn_ctx *ctx, size_t n) {
  cl_mem m = t_zeros(ctx, n);
  WT_OK(wrn_fill(ctx, t_mem(m), NAN, n));
  return m;
}

static double largest_err[2][3]; /* [dtype][fwd, bwd data, bwd weight] vs the reference */

static void note_err(wrn_ctx *ctx, int which, const double *got, const double *ref, size_t n) {
  double d = t_max_abs_diff(got, ref, n);
  int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  if (d > largest_err[dt][which]) largest_err[dt][which] = d;
}

/* Every function on one shape and workspace bound against the reference; both accumulate
 * modes. accumulate=0 outputs start as NaN, so a result that read them would show. */
static void conv_case(wrn_ctx *ctx, const shape_case *c, uint64_t seed) {
  const wrn_conv_shape *s = &c->s;
  const size_t nx = in_elems(s), ny = out_elems(s), nw = w_elems(s);
  double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *dy = malloc(ny * sizeof *dy);
  double *dx0 = malloc(nx * sizeof *dx0), *dw0 = malloc(nw * sizeof *dw0);
  double *ref_y = malloc(ny * sizeof *ref_y), *ref_dx = malloc(nx * sizeof *ref_dx),
         *ref_dw = malloc(nw * sizeof *ref_dw);
  double *got = malloc((nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)) * sizeof *got);
  t_rand(x, nx, -1, 1, seed), t_rand(w, nw, -1, 1, seed + 1), t_rand(dy, ny, -1, 1, seed + 2);
  t_rand(dx0, nx, -1, 1, seed + 3), t_rand(dw0, nw, -1, 1, seed + 4);
  t_round(ctx, x, nx), t_round(ctx, w, nw), t_round(ctx, dy, ny);
  t_round(ctx, dx0, nx), t_round(ctx, dw0, nw);
  ref_conv_forward(ref_y, x, w, s);
  ref_conv_backward_data(ref_dx, dy, w, s);
  ref_conv_backward_weight(ref_dw, dy, x, s);

  size_t ws_n;
  cl_mem WS = ws_alloc(ctx, s, c->ws_bound, &ws_n);
  wrn_mem ws = t_mem(WS);
  cl_mem X = t_upload(ctx, x, nx), W = t_upload(ctx, w, nw), DY = t_upload(ctx, dy, ny);
  const size_t K = (size_t)s->c_in * s->k * s->k;
  const size_t P = (size_t)wrn_conv_out_h(s) * wrn_conv_out_w(s);

  cl_mem Y = nan_buffer(ctx, ny);
  WT_OK(wrn_conv_forward(ctx, t_mem(Y), t_mem(X), t_mem(W), s, ws, ws_n));
  t_download(ctx, got, Y, ny);
  t_tol tol = tol_for(ctx, K);
  t_check_close("conv forward", got, ref_y, ny, tol.atol, tol.rtol);
  note_err(ctx, 0, got, ref_y, ny);

  /* Each input pixel gets at most c_out*k*k terms. */
  tol = tol_for(ctx, (size_t)s->c_out * s->k * s->k + 1);
  for (int acc = 0; acc < 2; acc++) {
    cl_mem DX = acc ? t_upload(ctx, dx0, nx) : nan_buffer(ctx, nx);
    WT_OK(wrn_conv_backward_data(ctx, t_mem(DX), t_mem(DY), t_mem(W), s, ws, ws_n, acc));
    t_download(ctx, got, DX, nx);
    if (acc)
      for (size_t i = 0; i < nx; i++) got[i] -= dx0[i];
    t_check_close(acc ? "conv backward data (accumulate)" : "conv backward data", got, ref_dx,
                  nx, tol.atol, tol.rtol);
    note_err(ctx, 1, got, ref_dx, nx);
    wrn_release(&DX);
  }
  tol = tol_for(ctx, (size_t)s->n * P + 1);
  for (int acc = 0; acc < 2; acc++) {
    cl_mem DW = acc ? t_upload(ctx, dw0, nw) : nan_buffer(ctx, nw);
    WT_OK(wrn_conv_backward_weight(ctx, t_mem(DW), t_mem(DY), t_mem(X), s, ws, ws_n, acc));
    t_download(ctx, got, DW, nw);
    if (acc)
      for (size_t i = 0; i < nw; i++) got[i] -= dw0[i];
    t_check_close(acc ? "conv backward weight (accumulate)" : "conv backward weight", got,
                  ref_dw, nw, tol.atol, tol.rtol);
    note_err(ctx, 2, got, ref_dw, nw);
    wrn_release(&DW);
  }
  wrn_release(&X), wrn_release(&W), wrn_release(&DY), wrn_release(&Y), wrn_release(&WS);
  free(x), free(w), free(dy), free(dx0), free(dw0), free(ref_y), free(ref_dx), free(ref_dw);
  free(got);
}

/* (n, c_in, h, w, c_out, k, stride, pad): one channel, batch 1, odd sizes, both strides,
 * 1x1 and 3x3, and one layer of realistic width. */
static const wrn_conv_shape shapes[] = {
    {1, 1, 5, 5, 1, 3, 1, 1},     {2, 3, 7, 6, 5, 3, 2, 1},   {3, 4, 8, 8, 6, 1, 1, 0},
    {2, 5, 9, 9, 3, 1, 2, 0},     {1, 16, 32, 32, 16, 3, 1, 1}, {2, 2, 6, 5, 3, 2, 2, 0},
    {2, 3, 5, 7, 2, 3, 3, 2},
    /* The run-of-8 kernels (rows of a multiple of 8 pixels): 3x3 stride 1 with one and with
     * three runs per row (the launch rounds 3 up to 4), 3x3 stride 2 on an odd height, 1x1
     * stride 2, batch 1 with one channel; and 1x1 stride 1 (im2col and col2im are relayouts)
     * with P = 32 (runs of 16) and P = 12 (runs of 4). */
    {3, 2, 8, 16, 3, 3, 1, 1},    {2, 2, 5, 24, 3, 3, 1, 1},  {2, 3, 7, 16, 4, 3, 2, 1},
    {2, 3, 9, 32, 2, 1, 2, 0},    {1, 1, 8, 8, 1, 3, 1, 1},   {3, 2, 4, 8, 3, 1, 1, 0},
    {2, 2, 3, 4, 3, 1, 1, 0},
};

static void test_shapes(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
      shape_case c = {shapes[i], 0};
      conv_case(ctx, &c, 100 + i);
    }
  }
}

/* Bounds that split the batch: chunks of 2 (with a short last chunk of one image), and one
 * image at a time (the GEMMs then read and write the NCHW tensors directly). */
static void test_chunks(void **state) {
  (void)state;
  const wrn_conv_shape cs[] = {{5, 3, 7, 6, 4, 3, 2, 1}, {3, 4, 8, 8, 6, 1, 1, 0}};
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
      const wrn_conv_shape *s = &cs[i];
      const size_t P = (size_t)wrn_conv_out_h(s) * wrn_conv_out_w(s);
      const size_t K = (size_t)s->c_in * s->k * s->k;
      const size_t per_img = P * (K + (size_t)s->c_out);
      /* The unbounded workspace holds the whole batch; a bound of 2.5 images gives 2. */
      assert_int_equal(wrn_conv_workspace(s, 0), s->n * per_img);
      assert_int_equal(wrn_conv_workspace(s, per_img * 5 / 2), 2 * per_img);
      assert_int_equal(wrn_conv_workspace(s, s->n * per_img * 9), s->n * per_img);
      /* Below two images: one image, which for 1x1 stride 1 needs no workspace at all. */
      const size_t one = (s->k == 1 && s->stride == 1 && s->pad == 0) ? 0 : K * P;
      assert_int_equal(wrn_conv_workspace(s, 1), one);
      shape_case c2 = {*s, per_img * 5 / 2}, c1 = {*s, 1};
      conv_case(ctx, &c2, 300 + i);
      conv_case(ctx, &c1, 400 + i);
    }
  }
}

/* Chunked and whole-batch results agree with each other (to rounding: the GEMM shapes and
 * hence CLBlast's summation order differ). */
static void test_chunks_agree(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const wrn_conv_shape s = {4, 3, 9, 8, 5, 3, 1, 1};
  const size_t nx = in_elems(&s), ny = out_elems(&s), nw = w_elems(&s);
  double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *dy = malloc(ny * sizeof *dy);
  t_rand(x, nx, -1, 1, 7), t_rand(w, nw, -1, 1, 8), t_rand(dy, ny, -1, 1, 9);
  cl_mem X = t_upload(ctx, x, nx), W = t_upload(ctx, w, nw), DY = t_upload(ctx, dy, ny);
  const size_t bounds[3] = {0, wrn_conv_workspace(&s, 0) / 2, 1};
  double *res[3][3];
  for (int j = 0; j < 3; j++) {
    size_t ws_n;
    cl_mem WS = ws_alloc(ctx, &s, bounds[j], &ws_n);
    cl_mem Y = t_zeros(ctx, ny), DX = t_zeros(ctx, nx), DW = t_zeros(ctx, nw);
    WT_OK(wrn_conv_forward(ctx, t_mem(Y), t_mem(X), t_mem(W), &s, t_mem(WS), ws_n));
    WT_OK(wrn_conv_backward_data(ctx, t_mem(DX), t_mem(DY), t_mem(W), &s, t_mem(WS), ws_n, 0));
    WT_OK(wrn_conv_backward_weight(ctx, t_mem(DW), t_mem(DY), t_mem(X), &s, t_mem(WS), ws_n, 0));
    res[j][0] = malloc(ny * sizeof(double)), res[j][1] = malloc(nx * sizeof(double));
    res[j][2] = malloc(nw * sizeof(double));
    t_download(ctx, res[j][0], Y, ny), t_download(ctx, res[j][1], DX, nx);
    t_download(ctx, res[j][2], DW, nw);
    wrn_release(&WS), wrn_release(&Y), wrn_release(&DX), wrn_release(&DW);
  }
  /* Each result is within tol_for(L) of the exact value, so two differ by at most twice
   * that: L = c_in*k*k forward, c_out*k*k + 1 for the input gradient, n*P + 1 for the
   * weight gradient. */
  const size_t L[3] = {27, 46, 4 * 72 + 1};
  const size_t cnt[3] = {ny, nx, nw};
  const char *what[3] = {"chunked forward", "chunked backward data", "chunked backward weight"};
  for (int j = 1; j < 3; j++)
    for (int f = 0; f < 3; f++) {
      t_tol tol = tol_for(ctx, L[f]);
      t_check_close(what[f], res[j][f], res[0][f], cnt[f], 2 * tol.atol, 2 * tol.rtol);
    }
  for (int j = 0; j < 3; j++) free(res[j][0]), free(res[j][1]), free(res[j][2]);
  wrn_release(&X), wrn_release(&W), wrn_release(&DY);
  free(x), free(w), free(dy);
}

/* ---------------------------------------------------------------- central differences */

typedef struct grad_ctx {
  wrn_ctx *ctx;
  const wrn_conv_shape *s;
  const double *x, *w, *r; /* the fixed operands; r weighs the outputs */
  int wrt_w;               /* differentiate with respect to w (else x) */
  cl_mem WS;
  size_t ws_n;
} grad_ctx;

/* sum(r .* conv(x, w)) computed on the device, with the varied operand from v. */
static double conv_scalar(const double *v, void *user) {
  grad_ctx *g = user;
  const size_t nx = in_elems(g->s), ny = out_elems(g->s), nw = w_elems(g->s);
  cl_mem X = t_upload(g->ctx, g->wrt_w ? g->x : v, nx);
  cl_mem W = t_upload(g->ctx, g->wrt_w ? v : g->w, nw);
  cl_mem Y = t_zeros(g->ctx, ny);
  WT_OK(wrn_conv_forward(g->ctx, t_mem(Y), t_mem(X), t_mem(W), g->s, t_mem(g->WS), g->ws_n));
  double *y = malloc(ny * sizeof *y);
  t_download(g->ctx, y, Y, ny);
  double f = 0;
  for (size_t i = 0; i < ny; i++) f += g->r[i] * y[i];
  free(y);
  wrn_release(&X), wrn_release(&W), wrn_release(&Y);
  return f;
}

static double largest_fd_err[2]; /* [data, weight] */

static void test_numeric_gradients(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  const wrn_conv_shape gs[] = {
      {2, 2, 5, 4, 3, 3, 2, 1}, {1, 3, 4, 5, 2, 3, 1, 1}, {3, 2, 5, 5, 3, 1, 2, 0},
      {2, 3, 4, 3, 2, 1, 1, 0},
      /* the run-of-8 kernels: 3x3 stride 1 and 2, 1x1 stride 2 */
      {2, 2, 3, 8, 2, 3, 1, 1}, {2, 2, 5, 16, 2, 3, 2, 1}, {2, 2, 4, 16, 2, 1, 2, 0}};
  for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
    const wrn_conv_shape *s = &gs[i];
    const size_t nx = in_elems(s), ny = out_elems(s), nw = w_elems(s);
    double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *r = malloc(ny * sizeof *r);
    double *num = malloc((nx > nw ? nx : nw) * sizeof *num);
    double *got = malloc((nx > nw ? nx : nw) * sizeof *got);
    t_rand(x, nx, -1, 1, 500 + i), t_rand(w, nw, -1, 1, 600 + i), t_rand(r, ny, -1, 1, 700 + i);
    grad_ctx g = {ctx, s, x, w, r, 0, NULL, 0};
    /* Chunks of two images where the batch has more, to cover that path here too. */
    const size_t P = (size_t)wrn_conv_out_h(s) * wrn_conv_out_w(s);
    g.WS = ws_alloc(ctx, s, 2 * P * ((size_t)s->c_in * s->k * s->k + s->c_out), &g.ws_n);
    cl_mem R = t_upload(ctx, r, ny), X = t_upload(ctx, x, nx), W = t_upload(ctx, w, nw);
    /* f is linear in each operand, so central differences are exact but for rounding:
     * with h = 0.01 and |f| ~ 10 that is ~1e-13. atol 1e-11 leaves 100x head room. */
    const double h = 1e-2;

    t_numeric_grad(conv_scalar, x, nx, h, num, &g);
    cl_mem DX = t_zeros(ctx, nx);
    WT_OK(wrn_conv_backward_data(ctx, t_mem(DX), t_mem(R), t_mem(W), s, t_mem(g.WS), g.ws_n, 0));
    t_download(ctx, got, DX, nx);
    t_check_close("conv backward data vs central differences", got, num, nx, 1e-11, 1e-11);
    double d = t_max_abs_diff(got, num, nx);
    if (d > largest_fd_err[0]) largest_fd_err[0] = d;

    g.wrt_w = 1;
    t_numeric_grad(conv_scalar, w, nw, h, num, &g);
    cl_mem DW = t_zeros(ctx, nw);
    WT_OK(wrn_conv_backward_weight(ctx, t_mem(DW), t_mem(R), t_mem(X), s, t_mem(g.WS), g.ws_n,
                                   0));
    t_download(ctx, got, DW, nw);
    t_check_close("conv backward weight vs central differences", got, num, nw, 1e-11, 1e-11);
    d = t_max_abs_diff(got, num, nw);
    if (d > largest_fd_err[1]) largest_fd_err[1] = d;

    wrn_release(&R), wrn_release(&X), wrn_release(&W), wrn_release(&DX), wrn_release(&DW);
    wrn_release(&g.WS);
    free(x), free(w), free(r), free(num), free(got);
  }
}

/* ---------------------------------------------------------------- arguments */

static void expect_invalid(wrn_status st, const char *fn, const char *what) {
  assert_int_equal(st, WRN_STATUS_INVALID_ARGUMENT);
  if (!strstr(wrn_last_error(), fn) || !strstr(wrn_last_error(), what))
    fail_msg("message '%s' should name %s and %s", wrn_last_error(), fn, what);
}

static void test_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const wrn_conv_shape good = {2, 3, 6, 6, 4, 3, 1, 1};
  assert_int_equal(wrn_conv_out_h(&good), 6);
  const wrn_conv_shape strided = {2, 3, 7, 6, 4, 3, 2, 1};
  assert_int_equal(wrn_conv_out_h(&strided), 4);
  assert_int_equal(wrn_conv_out_w(&strided), 3);
  assert_int_equal(wrn_conv_check(&good), WRN_OK);

  struct {
    wrn_conv_shape s;
    const char *what;
  } bad[] = {
      {{2, 3, 6, 6, 4, 0, 1, 1}, "kernel 0"},   {{2, 3, 6, 6, 4, 3, 0, 1}, "stride 0"},
      {{2, 3, 6, 6, 4, 3, 1, -1}, "pad -1"},    {{2, 3, 2, 6, 4, 5, 1, 0}, "output < 1"},
      {{0, 3, 6, 6, 4, 3, 1, 1}, "n=0"},        {{2, 0, 6, 6, 4, 3, 1, 1}, "c_in=0"},
      {{2, 3, 6, 6, -4, 3, 1, 1}, "c_out=-4"},  {{2, 3, 6, 0, 4, 3, 1, 1}, "w=0"},
  };
  cl_mem B = t_zeros(ctx, 4096);
  wrn_mem m = t_mem(B), none = {NULL, 0};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const wrn_conv_shape *s = &bad[i].s;
    assert_int_equal(wrn_conv_out_h(s), -1);
    assert_int_equal(wrn_conv_out_w(s), -1);
    assert_int_equal(wrn_conv_workspace(s, 0), 0);
    expect_invalid(wrn_conv_check(s), "conv", bad[i].what);
    expect_invalid(wrn_conv_forward(ctx, m, m, m, s, m, 4096), "conv_forward", bad[i].what);
    expect_invalid(wrn_conv_backward_data(ctx, m, m, m, s, m, 4096, 0), "conv_backward_data",
                   bad[i].what);
    expect_invalid(wrn_conv_backward_weight(ctx, m, m, m, s, m, 4096, 1),
                   "conv_backward_weight", bad[i].what);
    expect_invalid(wrn_conv_warmup(ctx, s, m, 4096), "conv", bad[i].what);
  }
  assert_int_equal(wrn_conv_out_h(NULL), -1);
  expect_invalid(wrn_conv_check(NULL), "conv", "NULL shape");
  expect_invalid(wrn_conv_forward(ctx, m, m, m, NULL, m, 4096), "conv_forward", "NULL shape");

  expect_invalid(wrn_conv_forward(ctx, none, m, m, &good, m, 4096), "conv_forward", "(y)");
  expect_invalid(wrn_conv_forward(ctx, m, none, m, &good, m, 4096), "conv_forward", "(x)");
  expect_invalid(wrn_conv_forward(ctx, m, m, none, &good, m, 4096), "conv_forward", "(w)");
  expect_invalid(wrn_conv_backward_data(ctx, none, m, m, &good, m, 4096, 0),
                 "conv_backward_data", "(dx)");
  expect_invalid(wrn_conv_backward_data(ctx, m, none, m, &good, m, 4096, 0),
                 "conv_backward_data", "(dy)");
  expect_invalid(wrn_conv_backward_weight(ctx, none, m, m, &good, m, 4096, 0),
                 "conv_backward_weight", "(dw)");
  expect_invalid(wrn_conv_backward_weight(ctx, m, m, none, &good, m, 4096, 0),
                 "conv_backward_weight", "(x)");

  /* One image of this shape needs K*P = 27*36 = 972 elements. */
  assert_int_equal(wrn_conv_workspace(&good, 1), 972);
  expect_invalid(wrn_conv_forward(ctx, m, m, m, &good, m, 971), "conv_forward", "too small");
  expect_invalid(wrn_conv_backward_data(ctx, m, m, m, &good, m, 100, 0), "conv_backward_data",
                 "too small");
  expect_invalid(wrn_conv_backward_weight(ctx, m, m, m, &good, none, 4096, 0),
                 "conv_backward_weight", "NULL buffer");
  expect_invalid(wrn_conv_warmup(ctx, &good, m, 10), "conv_warmup", "too small");
  wrn_release(&B);
}

/* The profile counts 2*c_out*K*n*P FLOPs per conv and sees the layout kernels. */
static void test_profile_and_warmup(void **state) {
  (void)state;
  wrn_device_info dev = *wrn_ctx_device(t_ctx32());
  wrn_ctx_options o = {0};
  o.dtype = WRN_F32;
  o.profile = 1;
  wrn_ctx *ctx = NULL;
  WT_OK(wrn_ctx_open(&ctx, &dev, &o));
  const wrn_conv_shape s = {3, 4, 6, 5, 5, 3, 2, 1};
  size_t ws_n;
  cl_mem WS = ws_alloc(ctx, &s, wrn_conv_workspace(&s, 0) / 2, &ws_n);
  size_t held0, held1, peak;
  wrn_ctx_mem_stats(ctx, &held0, &peak);
  WT_OK(wrn_conv_warmup(ctx, &s, t_mem(WS), ws_n));
  /* Its scratch tensors are returned, and the context's count says so. */
  wrn_ctx_mem_stats(ctx, &held1, &peak);
  assert_int_equal(held1, held0);
  assert_true(peak > held0);
  wrn_profile p;
  WT_OK(wrn_profile_collect(ctx, NULL));
  memset(&p, 0, sizeof p);
  cl_mem X = t_zeros(ctx, in_elems(&s)), Y = t_zeros(ctx, out_elems(&s)),
         W = t_zeros(ctx, w_elems(&s));
  WT_OK(wrn_conv_forward(ctx, t_mem(Y), t_mem(X), t_mem(W), &s, t_mem(WS), ws_n));
  WT_OK(wrn_conv_backward_data(ctx, t_mem(X), t_mem(Y), t_mem(W), &s, t_mem(WS), ws_n, 0));
  WT_OK(wrn_conv_backward_weight(ctx, t_mem(W), t_mem(Y), t_mem(X), &s, t_mem(WS), ws_n, 0));
  WT_OK(wrn_profile_collect(ctx, &p));
  const double flops = 2.0 * 5 * (4 * 9) * 3 * (3 * 3);
  assert_true(p.flops[WRN_CAT_CONV_FWD] == flops);
  assert_true(p.flops[WRN_CAT_CONV_BWD_DATA] == flops);
  assert_true(p.flops[WRN_CAT_CONV_BWD_WEIGHT] == flops);
  /* Chunks of 1 (3 images, room for 1.5): per chunk one im2col forward, one col2im, one
   * im2col for the weight gradient. */
  assert_int_equal(p.launches[WRN_CAT_IM2COL], 9);
  assert_int_equal(p.launches[WRN_CAT_CONV_FWD], 3);
  wrn_release(&X), wrn_release(&Y), wrn_release(&W), wrn_release(&WS);
  wrn_ctx_free(ctx);
}

static int teardown(void **state) {
  (void)state;
  printf("largest |float - ref|: forward %.3g, backward data %.3g, backward weight %.3g\n",
         largest_err[0][0], largest_err[0][1], largest_err[0][2]);
  printf("largest |double - ref|: forward %.3g, backward data %.3g, backward weight %.3g\n",
         largest_err[1][0], largest_err[1][1], largest_err[1][2]);
  printf("largest |double - central differences|: data %.3g, weight %.3g\n", largest_fd_err[0],
         largest_fd_err[1]);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_chunks),
      cmocka_unit_test(test_chunks_agree),
      cmocka_unit_test(test_numeric_gradients),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_profile_and_warmup),
  };
  return cmocka_run_group_tests_name("conv", tests, NULL, teardown);
}
