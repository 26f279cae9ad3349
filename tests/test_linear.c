/* Linear layer (CLBlast GEMM + bias kernels): forward and backward against naive loops in
 * float and double, both accumulate modes, dx skipped; gradients against central differences
 * in double; argument checks; the profile's FLOP count. */
#include "harness.h"
#include "ref_linear.h"

#include <math.h>
#include <string.h>

/* Float tolerance for a sum of L products of values in [-1, 1] (see test_conv.c for the
 * reasoning): atol = 3e-7 * L is about 5 eps * L, rtol 1e-6 the final rounding. Double:
 * 1e-15 * L, about 9 eps * L with eps = 1.1e-16. */
static t_tol tol_for(wrn_ctx *ctx, size_t L) {
  return t_tol_for(ctx, (t_tol){3e-7 * (double)L, 1e-6}, (t_tol){1e-15 * (double)L, 1e-12});
}

typedef struct lin_shape {
  int n, in, out;
} lin_shape;

static const lin_shape shapes[] = {{1, 13, 10}, {7, 13, 10}, {1, 1, 1},   {5, 3, 1},
                                   {130, 64, 10}, {7, 300, 100}, {66, 17, 3}};

static double largest_err[2][4]; /* [dtype][y, dx, dw, db] */

static void check(wrn_ctx *ctx, int which, const char *what, const double *got, const double *ref,
                  size_t n, size_t L) {
  t_tol tol = tol_for(ctx, L);
  t_check_close(what, got, ref, n, tol.atol, tol.rtol);
  double d = t_max_abs_diff(got, ref, n);
  int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  if (d > largest_err[dt][which]) largest_err[dt][which] = d;
}

static cl_mem nan_buffer(wrn_ctx *ctx, size_t n) {
  cl_mem m = t_zeros(ctx, n);
  WT_OK(wrn_fill(ctx, t_mem(m), NAN, n));
  return m;
}

static void linear_case(wrn_ctx *ctx, const lin_shape *sh, uint64_t seed) {
  const int n = sh->n, in = sh->in, out = sh->out;
  const size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
  double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(out * sizeof *b);
  double *dy = malloc(ny * sizeof *dy), *dx0 = malloc(nx * sizeof *dx0),
         *dw0 = malloc(nw * sizeof *dw0), *db0 = malloc(out * sizeof *db0);
  double *ry = malloc(ny * sizeof *ry), *rdx = malloc(nx * sizeof *rdx),
         *rdw = malloc(nw * sizeof *rdw), *rdb = malloc(out * sizeof *rdb);
  size_t big = nx > ny ? nx : ny;
  if (nw > big) big = nw;
  double *got = malloc(big * sizeof *got);
  t_rand(x, nx, -1, 1, seed), t_rand(w, nw, -1, 1, seed + 1), t_rand(b, out, -1, 1, seed + 2);
  t_rand(dy, ny, -1, 1, seed + 3), t_rand(dx0, nx, -1, 1, seed + 4);
  t_rand(dw0, nw, -1, 1, seed + 5), t_rand(db0, out, -1, 1, seed + 6);
  t_round(ctx, x, nx), t_round(ctx, w, nw), t_round(ctx, b, out), t_round(ctx, dy, ny);
  t_round(ctx, dx0, nx), t_round(ctx, dw0, nw), t_round(ctx, db0, out);
  ref_linear_forward(ry, x, w, b, n, in, out);
  ref_linear_backward(rdx, rdw, rdb, dy, x, w, n, in, out);

  cl_mem X = t_upload(ctx, x, nx), W = t_upload(ctx, w, nw), B = t_upload(ctx, b, out),
         DY = t_upload(ctx, dy, ny);
  cl_mem Y = nan_buffer(ctx, ny);
  WT_OK(wrn_linear_forward(ctx, t_mem(Y), t_mem(X), t_mem(W), t_mem(B), n, in, out));
  t_download(ctx, got, Y, ny);
  check(ctx, 0, "linear forward", got, ry, ny, (size_t)in + 1);

  /* acc 0 with outputs seeded NaN, acc 1 seeded random; then once more without dx. */
  for (int pass = 0; pass < 3; pass++) {
    const int acc = pass == 1, skip_dx = pass == 2;
    cl_mem DX = acc ? t_upload(ctx, dx0, nx) : nan_buffer(ctx, nx);
    cl_mem DW = acc ? t_upload(ctx, dw0, nw) : nan_buffer(ctx, nw);
    cl_mem DB = acc ? t_upload(ctx, db0, out) : nan_buffer(ctx, out);
    wrn_mem dxm = t_mem(DX), wm = t_mem(W);
    if (skip_dx) dxm.mem = NULL, wm.mem = NULL; /* w is not needed without dx */
    WT_OK(wrn_linear_backward(ctx, dxm, t_mem(DW), t_mem(DB), t_mem(DY), t_mem(X), wm, n, in,
                              out, acc));
    t_download(ctx, got, DX, nx);
    if (skip_dx) {
      for (size_t i = 0; i < nx; i++)
        if (!isnan(got[i])) fail_msg("dx[%zu] was written although dx was skipped", i);
    } else {
      if (acc)
        for (size_t i = 0; i < nx; i++) got[i] -= dx0[i];
      check(ctx, 1, "linear dx", got, rdx, nx, (size_t)out + 1);
    }
    t_download(ctx, got, DW, nw);
    if (acc)
      for (size_t i = 0; i < nw; i++) got[i] -= dw0[i];
    check(ctx, 2, "linear dw", got, rdw, nw, (size_t)n + 1);
    t_download(ctx, got, DB, out);
    if (acc)
      for (int i = 0; i < out; i++) got[i] -= db0[i];
    check(ctx, 3, "linear db", got, rdb, out, (size_t)n + 1);
    wrn_release(&DX), wrn_release(&DW), wrn_release(&DB);
  }
  wrn_release(&X), wrn_release(&W), wrn_release(&B), wrn_release(&DY), wrn_release(&Y);
  free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0);
  free(ry), free(rdx), free(rdw), free(rdb), free(got);
}

static void test_shapes(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
      linear_case(ctx, &shapes[i], 10 * i + 1);
  }
}

/* Views at element offsets: every buffer sits inside a larger one. */
static void test_offsets(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const int n = 3, in = 5, out = 4;
  double x[15], w[20], b[4], dy[12], ry[12], rdx[15], rdw[20], rdb[4];
  t_rand(x, 15, -1, 1, 91), t_rand(w, 20, -1, 1, 92), t_rand(b, 4, -1, 1, 93);
  t_rand(dy, 12, -1, 1, 94);
  t_round(ctx, x, 15), t_round(ctx, w, 20), t_round(ctx, b, 4), t_round(ctx, dy, 12);
  ref_linear_forward(ry, x, w, b, n, in, out);
  ref_linear_backward(rdx, rdw, rdb, dy, x, w, n, in, out);
  double all[256] = {0};
  memcpy(all + 3, x, sizeof x), memcpy(all + 21, w, sizeof w), memcpy(all + 43, b, sizeof b);
  memcpy(all + 50, dy, sizeof dy);
  cl_mem M = t_upload(ctx, all, 256);
  wrn_mem base = t_mem(M);
  wrn_mem mx = wrn_mem_at(base, 3), mw = wrn_mem_at(base, 21), mb = wrn_mem_at(base, 43),
          mdy = wrn_mem_at(base, 50), my = wrn_mem_at(base, 65), mdx = wrn_mem_at(base, 80),
          mdw = wrn_mem_at(base, 97), mdb = wrn_mem_at(base, 119);
  WT_OK(wrn_linear_forward(ctx, my, mx, mw, mb, n, in, out));
  WT_OK(wrn_linear_backward(ctx, mdx, mdw, mdb, mdy, mx, mw, n, in, out, 0));
  t_download(ctx, all, M, 256);
  check(ctx, 0, "linear forward at offsets", all + 65, ry, 12, in + 1);
  check(ctx, 1, "linear dx at offsets", all + 80, rdx, 15, out + 1);
  check(ctx, 2, "linear dw at offsets", all + 97, rdw, 20, n + 1);
  check(ctx, 3, "linear db at offsets", all + 119, rdb, 4, n + 1);
  for (int i = 123; i < 256; i++)
    if (all[i] != 0) fail_msg("element %d past the last view was written", i);
  wrn_release(&M);
}

/* ---------------------------------------------------------------- central differences */

typedef struct lin_grad {
  wrn_ctx *ctx;
  int n, in, out, which; /* which: 0 x, 1 w, 2 b */
  double *x, *w, *b;
  const double *r;
} lin_grad;

/* sum(r .* linear(x, w, b)) on the device, the varied operand taken from v. */
static double lin_scalar(const double *v, void *user) {
  lin_grad *g = user;
  const size_t nx = (size_t)g->n * g->in, ny = (size_t)g->n * g->out,
               nw = (size_t)g->out * g->in;
  cl_mem X = t_upload(g->ctx, g->which == 0 ? v : g->x, nx);
  cl_mem W = t_upload(g->ctx, g->which == 1 ? v : g->w, nw);
  cl_mem B = t_upload(g->ctx, g->which == 2 ? v : g->b, (size_t)g->out);
  cl_mem Y = t_zeros(g->ctx, ny);
  WT_OK(wrn_linear_forward(g->ctx, t_mem(Y), t_mem(X), t_mem(W), t_mem(B), g->n, g->in,
                           g->out));
  double *y = malloc(ny * sizeof *y), f = 0;
  t_download(g->ctx, y, Y, ny);
  for (size_t i = 0; i < ny; i++) f += g->r[i] * y[i];
  free(y);
  wrn_release(&X), wrn_release(&W), wrn_release(&B), wrn_release(&Y);
  return f;
}

static double largest_fd_err;

static void test_numeric_gradients(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  const int n = 4, in = 6, out = 3;
  const size_t nx = (size_t)n * in, ny = (size_t)n * out, nw = (size_t)out * in;
  double x[24], w[18], b[3], r[12], num[24], got[24];
  t_rand(x, nx, -1, 1, 71), t_rand(w, nw, -1, 1, 72), t_rand(b, out, -1, 1, 73);
  t_rand(r, ny, -1, 1, 74);
  lin_grad g = {ctx, n, in, out, 0, x, w, b, r};
  cl_mem X = t_upload(ctx, x, nx), W = t_upload(ctx, w, nw), R = t_upload(ctx, r, ny);
  cl_mem DX = t_zeros(ctx, nx), DW = t_zeros(ctx, nw), DB = t_zeros(ctx, out);
  WT_OK(wrn_linear_backward(ctx, t_mem(DX), t_mem(DW), t_mem(DB), t_mem(R), t_mem(X), t_mem(W),
                            n, in, out, 0));
  /* f is linear in each operand: central differences are exact up to rounding, ~1e-14 with
   * h = 0.01 and |f| ~ 5; atol 1e-11 leaves ample room. */
  const char *names[3] = {"linear dx vs central differences", "linear dw vs central differences",
                          "linear db vs central differences"};
  double *vars[3] = {x, w, b};
  size_t sizes[3] = {nx, nw, (size_t)out};
  cl_mem outs[3] = {DX, DW, DB};
  for (int which = 0; which < 3; which++) {
    g.which = which;
    t_numeric_grad(lin_scalar, vars[which], sizes[which], 1e-2, num, &g);
    t_download(ctx, got, outs[which], sizes[which]);
    t_check_close(names[which], got, num, sizes[which], 1e-11, 1e-11);
    double d = t_max_abs_diff(got, num, sizes[which]);
    if (d > largest_fd_err) largest_fd_err = d;
  }
  wrn_release(&X), wrn_release(&W), wrn_release(&R), wrn_release(&DX), wrn_release(&DW),
      wrn_release(&DB);
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
  cl_mem B = t_zeros(ctx, 64);
  wrn_mem m = t_mem(B), none = {NULL, 0};
  expect_invalid(wrn_linear_forward(ctx, m, m, m, m, 0, 2, 2), "linear_forward", "n=0");
  expect_invalid(wrn_linear_forward(ctx, m, m, m, m, 2, -1, 2), "linear_forward", "in=-1");
  expect_invalid(wrn_linear_forward(ctx, m, m, m, m, 2, 2, 0), "linear_forward", "out=0");
  expect_invalid(wrn_linear_forward(ctx, none, m, m, m, 2, 2, 2), "linear_forward", "(y)");
  expect_invalid(wrn_linear_forward(ctx, m, none, m, m, 2, 2, 2), "linear_forward", "(x)");
  expect_invalid(wrn_linear_forward(ctx, m, m, none, m, 2, 2, 2), "linear_forward", "(w)");
  expect_invalid(wrn_linear_forward(ctx, m, m, m, none, 2, 2, 2), "linear_forward", "(b)");
  expect_invalid(wrn_linear_backward(ctx, m, m, m, m, m, m, 2, 0, 2, 0), "linear_backward",
                 "in=0");
  expect_invalid(wrn_linear_backward(ctx, m, none, m, m, m, m, 2, 2, 2, 0), "linear_backward",
                 "(dw)");
  expect_invalid(wrn_linear_backward(ctx, m, m, none, m, m, m, 2, 2, 2, 0), "linear_backward",
                 "(db)");
  expect_invalid(wrn_linear_backward(ctx, m, m, m, none, m, m, 2, 2, 2, 0), "linear_backward",
                 "(dy)");
  expect_invalid(wrn_linear_backward(ctx, m, m, m, m, none, m, 2, 2, 2, 0), "linear_backward",
                 "(x)");
  expect_invalid(wrn_linear_backward(ctx, m, m, m, m, m, none, 2, 2, 2, 0), "linear_backward",
                 "(w)");
  wrn_release(&B);
}

/* The profile files the GEMMs and bias kernels under "linear" with 2*m*n*k FLOPs each. */
static void test_profile(void **state) {
  (void)state;
  wrn_device_info dev = *wrn_ctx_device(t_ctx32());
  wrn_ctx_options o = {0};
  o.dtype = WRN_F32;
  o.profile = 1;
  wrn_ctx *ctx = NULL;
  WT_OK(wrn_ctx_open(&ctx, &dev, &o));
  const int n = 7, in = 13, out = 10;
  cl_mem X = t_zeros(ctx, 91), W = t_zeros(ctx, 130), B = t_zeros(ctx, 10), Y = t_zeros(ctx, 70),
         DX = t_zeros(ctx, 91), DW = t_zeros(ctx, 130), DB = t_zeros(ctx, 10);
  WT_OK(wrn_profile_collect(ctx, NULL));
  WT_OK(wrn_linear_forward(ctx, t_mem(Y), t_mem(X), t_mem(W), t_mem(B), n, in, out));
  WT_OK(wrn_linear_backward(ctx, t_mem(DX), t_mem(DW), t_mem(DB), t_mem(Y), t_mem(X), t_mem(W),
                            n, in, out, 1));
  wrn_profile p;
  memset(&p, 0, sizeof p);
  WT_OK(wrn_profile_collect(ctx, &p));
  assert_true(p.flops[WRN_CAT_LINEAR] == 3 * 2.0 * n * in * out);
  assert_int_equal(p.launches[WRN_CAT_LINEAR], 5);
  wrn_release(&X), wrn_release(&W), wrn_release(&B), wrn_release(&Y), wrn_release(&DX),
      wrn_release(&DW), wrn_release(&DB);
  wrn_ctx_free(ctx);
}

static int teardown(void **state) {
  (void)state;
  printf("largest |float - ref|: y %.3g, dx %.3g, dw %.3g, db %.3g\n", largest_err[0][0],
         largest_err[0][1], largest_err[0][2], largest_err[0][3]);
  printf("largest |double - ref|: y %.3g, dx %.3g, dw %.3g, db %.3g\n", largest_err[1][0],
         largest_err[1][1], largest_err[1][2], largest_err[1][3]);
  printf("largest |double - central differences|: %.3g\n", largest_fd_err);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_offsets),
      cmocka_unit_test(test_numeric_gradients),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_profile),
  };
  return WT_RUN_GROUP("linear", tests, NULL, teardown);
}
