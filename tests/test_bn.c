/* Batch norm: training and inference forward against the naive double reference (outputs,
 * saved statistics, running statistics), backward against the reference in both accumulate
 * modes and against central differences in double, bit-reproducibility, bad arguments. */
#include "harness.h"
#include "ref_bn.h"
#include "../host/internal.h" /* wrn_bn_backward_mask */

#include <math.h>
#include <string.h>

typedef struct shape {
  int n, c, hw;
} shape;

/* N = 1 (n = 1, hw = 1); one channel; odd sizes; hw = 1 with a batch (a BN after a linear
 * layer). The reductions cut a channel into chunks of whole images, about 4096 values each:
 * 7x777 gives chunks of 5 and 2 images, 8x1024 two of 4, 3x5000 one image per chunk with a
 * 256-wide work-group looping over the row, 300x16 chunks of 256 and 44 small images. */
static const shape shapes[] = {{1, 1, 1},   {1, 4, 1},    {2, 1, 5},   {3, 5, 49},
                               {37, 3, 1},  {7, 2, 777},  {3, 2, 5000}, {300, 2, 16},
                               {8, 16, 1024}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static const double MOMENTUM = 0.1, EPS = 1e-5;

/* A device buffer holding x after `off` filler values; the op gets it as wrn_mem at off, so
 * that every kernel's element offsets are exercised. */
static cl_mem up_off(wrn_ctx *ctx, const double *x, size_t n, size_t off) {
  double *b = malloc((n + off) * sizeof *b);
  assert_non_null(b);
  for (size_t i = 0; i < off; i++) b[i] = 1e3 + (double)i;
  memcpy(b + off, x, n * sizeof *x);
  cl_mem m = t_upload(ctx, b, n + off);
  free(b);
  return m;
}
static void down_off(wrn_ctx *ctx, double *out, cl_mem m, size_t n, size_t off) {
  double *b = malloc((n + off) * sizeof *b);
  assert_non_null(b);
  t_download(ctx, b, m, n + off);
  memcpy(out, b + off, n * sizeof *out);
  free(b);
}
static wrn_mem at(cl_mem m, size_t off) {
  wrn_mem r = {m, off};
  return r;
}

/* Inputs of one case: x per channel around an offset (channel 0 near 100, to catch a
 * cancelling E[x^2] - E[x]^2), gamma of both signs, running statistics. */
typedef struct bn_data {
  size_t total;
  double *x, *gamma, *beta, *rmean, *rvar;
} bn_data;

static void data_make(wrn_ctx *ctx, bn_data *d, shape s, uint64_t seed) {
  d->total = (size_t)s.n * s.c * s.hw;
  d->x = malloc(d->total * sizeof *d->x);
  d->gamma = malloc(s.c * sizeof(double));
  d->beta = malloc(s.c * sizeof(double));
  d->rmean = malloc(s.c * sizeof(double));
  d->rvar = malloc(s.c * sizeof(double));
  t_rand(d->x, d->total, -1, 1, seed);
  for (size_t i = 0; i < d->total; i++) {
    int ch = (int)(i / s.hw % s.c);
    d->x[i] = (ch == 0 ? 100 : 0.5 * ch) + (1 + 0.25 * ch) * d->x[i];
  }
  t_rand(d->gamma, s.c, 0.5, 1.5, seed + 1);
  for (int ch = 1; ch < s.c; ch += 3) d->gamma[ch] = -d->gamma[ch];
  t_rand(d->beta, s.c, -0.5, 0.5, seed + 2);
  t_rand(d->rmean, s.c, -1, 1, seed + 3);
  t_rand(d->rvar, s.c, 0.5, 1.5, seed + 4);
  t_round(ctx, d->x, d->total), t_round(ctx, d->gamma, s.c), t_round(ctx, d->beta, s.c);
  t_round(ctx, d->rmean, s.c), t_round(ctx, d->rvar, s.c);
}

static void data_free(bn_data *d) {
  free(d->x), free(d->gamma), free(d->beta), free(d->rmean), free(d->rvar);
}

/* The largest errors seen, printed at the end for the report. */
static double worst_f32_fwd, worst_f32_bwd, worst_f64_ref, worst_num;

static void track(double *w, const double *got, const double *ref, size_t n) {
  double d = t_max_abs_diff(got, ref, n);
  if (d > *w) *w = d;
}

static void train_case(wrn_ctx *ctx, shape s, int relu, size_t off) {
  int c = s.c;
  bn_data d;
  data_make(ctx, &d, s, 100 + (uint64_t)s.n * 7 + (uint64_t)s.hw + (uint64_t)relu);
  size_t T = d.total;
  double *y = malloc(T * sizeof *y), *ry = malloc(T * sizeof *ry);
  double *dy = malloc(T * sizeof *dy), *dx0 = malloc(T * sizeof *dx0);
  double *rdx = malloc(T * sizeof *rdx), *gdx = malloc(T * sizeof *gdx);
  double sm[64], si[64], rsm[64], rsi[64], rm[64], rv[64], rrm[64], rrv[64];
  double dg0[64], db0[64], rdg[64], rdb[64], gdg[64], gdb[64];
  assert_true(c <= 64);

  cl_mem X = up_off(ctx, d.x, T, off), G = up_off(ctx, d.gamma, c, off),
         B = up_off(ctx, d.beta, c, off), RM = up_off(ctx, d.rmean, c, off),
         RV = up_off(ctx, d.rvar, c, off), Y = t_zeros(ctx, T + off),
         SM = t_zeros(ctx, c + off), SI = t_zeros(ctx, c + off);
  WT_OK(wrn_bn_forward_train(ctx, at(Y, off), at(SM, off), at(SI, off), at(RM, off),
                             at(RV, off), at(X, off), at(G, off), at(B, off), s.n, c, s.hw,
                             MOMENTUM, EPS, relu));
  down_off(ctx, y, Y, T, off);
  down_off(ctx, sm, SM, c, off);
  down_off(ctx, si, SI, c, off);
  down_off(ctx, rm, RM, c, off);
  down_off(ctx, rv, RV, c, off);
  memcpy(rrm, d.rmean, c * sizeof *rrm);
  memcpy(rrv, d.rvar, c * sizeof *rrv);
  ref_bn_forward_train(ry, rsm, rsi, rrm, rrv, d.x, d.gamma, d.beta, s.n, c, s.hw, MOMENTUM,
                       EPS, relu);

  /* Float: y and the statistics come from Welford/Chan sums in float over up to 8192 values
   * around an offset of 100: ~1e-6 relative on the mean; the variance and 1/std carry ~1e-6
   * relative too; y = gamma (x - mean) s + beta of size ~3 then ~1e-5 absolute. Double: the
   * same arithmetic at 2^-53, so 1e-12 leaves three orders of margin. */
  int f64 = wrn_ctx_dtype(ctx) == WRN_F64;
  t_tol ty = t_tol_for(ctx, (t_tol){2e-5, 1e-5}, (t_tol){1e-12, 1e-12});
  t_tol ts = t_tol_for(ctx, (t_tol){1e-6, 1e-5}, (t_tol){1e-12, 1e-12});
  t_check_close("bn train y", y, ry, T, ty.atol, ty.rtol);
  t_check_close("bn save_mean", sm, rsm, c, ts.atol, ts.rtol);
  t_check_close("bn save_invstd", si, rsi, c, ts.atol, ts.rtol);
  t_check_close("bn running_mean", rm, rrm, c, ts.atol, ts.rtol);
  t_check_close("bn running_var", rv, rrv, c, ts.atol, ts.rtol);
  track(f64 ? &worst_f64_ref : &worst_f32_fwd, y, ry, T);

  /* Inference with the updated running statistics (as read back). */
  WT_OK(wrn_bn_forward_infer(ctx, at(Y, off), at(X, off), at(G, off), at(B, off), at(RM, off),
                             at(RV, off), s.n, c, s.hw, EPS, relu));
  down_off(ctx, gdx, Y, T, off);
  ref_bn_forward_infer(rdx, d.x, d.gamma, d.beta, rm, rv, s.n, c, s.hw, EPS, relu);
  /* Channel 0 is ~100 away from its running mean and gets divided by ~1: float rounding of
   * values near 100 (~1e-5) dominates. */
  t_tol ti = t_tol_for(ctx, (t_tol){2e-5, 1e-5}, (t_tol){1e-12, 1e-12});
  t_check_close("bn infer y", gdx, rdx, T, ti.atol, ti.rtol);
  track(f64 ? &worst_f64_ref : &worst_f32_fwd, gdx, rdx, T);

  /* Backward in both modes, given the device's saved statistics and y (the op's inputs; the
   * statistics were checked above): a float mean near 100 is off by up to half an ulp
   * (4e-6), which shifts dgamma by sum(g) * 4e-6 * invstd, more than the backward's own
   * rounding; and a y rounding to the other side of 0 would flip the ReLU mask. */
  t_rand(dy, T, -1, 1, 7 + T);
  t_rand(dx0, T, -1, 1, 8 + T);
  t_rand(dg0, c, -1, 1, 9 + T);
  t_rand(db0, c, -1, 1, 10 + T);
  t_round(ctx, dy, T), t_round(ctx, dx0, T), t_round(ctx, dg0, c), t_round(ctx, db0, c);
  /* y back to the training output for the mask. */
  cl_mem YT = up_off(ctx, y, T, off), DY = up_off(ctx, dy, T, off);
  /* All four combinations of the two accumulate flags (dx; dgamma and dbeta). */
  for (int mode = 0; mode < 4; mode++) {
    int acc_dx = mode & 1, acc_p = mode >> 1;
    cl_mem DX = up_off(ctx, dx0, T, off), DG = up_off(ctx, dg0, c, off),
           DB = up_off(ctx, db0, c, off);
    WT_OK(wrn_bn_backward(ctx, at(DX, off), at(DG, off), at(DB, off), at(DY, off), at(X, off),
                          at(YT, off), at(G, off), at(SM, off), at(SI, off), s.n, c, s.hw, relu,
                          acc_dx, acc_p));
    down_off(ctx, gdx, DX, T, off);
    down_off(ctx, gdg, DG, c, off);
    down_off(ctx, gdb, DB, c, off);
    /* The reference adds to what its outputs hold: zeros stand for overwrite. */
    for (size_t i = 0; i < T; i++) rdx[i] = acc_dx ? dx0[i] : 0.0;
    for (int i = 0; i < c; i++) rdg[i] = acc_p ? dg0[i] : 0.0, rdb[i] = acc_p ? db0[i] : 0.0;
    ref_bn_backward(rdx, rdg, rdb, dy, d.x, y, d.gamma, sm, si, s.n, c, s.hw, relu, 1);
    /* Float: dx = A (g - B - xhat D) with terms of size ~1 and A up to ~1.5: 1e-5 absolute.
     * dgamma and dbeta sum up to 8192 terms of size ~1 (results ~100): 1e-5 relative plus
     * 1e-4 absolute for sums that cancel. */
    t_tol tdx = t_tol_for(ctx, (t_tol){2e-5, 1e-5}, (t_tol){1e-12, 1e-12});
    t_tol tdp = t_tol_for(ctx, (t_tol){1e-4, 1e-5}, (t_tol){1e-11, 1e-12});
    t_check_close("bn dx", gdx, rdx, T, tdx.atol, tdx.rtol);
    t_check_close("bn dgamma", gdg, rdg, c, tdp.atol, tdp.rtol);
    t_check_close("bn dbeta", gdb, rdb, c, tdp.atol, tdp.rtol);
    track(f64 ? &worst_f64_ref : &worst_f32_bwd, gdx, rdx, T);
    track(f64 ? &worst_f64_ref : &worst_f32_bwd, gdg, rdg, c);
    wrn_release(&DX), wrn_release(&DG), wrn_release(&DB);
  }
  wrn_release(&X), wrn_release(&G), wrn_release(&B), wrn_release(&RM), wrn_release(&RV);
  wrn_release(&Y), wrn_release(&SM), wrn_release(&SI), wrn_release(&YT), wrn_release(&DY);
  free(y), free(ry), free(dy), free(dx0), free(rdx), free(gdx);
  data_free(&d);
}

static void test_bn_reference(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t i = 0; i < NSHAPES; i++)
      for (int relu = 0; relu < 2; relu++) train_case(ctx, shapes[i], relu, (i % 2) * 3);
  }
}

/* ---------------------------------------------------------------- central differences */

enum { WRT_X, WRT_GAMMA, WRT_BETA };

typedef struct fd_ctx {
  wrn_ctx *ctx;
  shape s;
  int relu, wrt;
  cl_mem X, G, B, Y, SM, SI, RM, RV;
  const double *r;
  double *y;
} fd_ctx;

/* sum(r .* y) of the device's training forward with the perturbed input. */
static double fd_loss(const double *v, void *user) {
  fd_ctx *f = user;
  size_t T = (size_t)f->s.n * f->s.c * f->s.hw;
  cl_mem dst = f->wrt == WRT_X ? f->X : f->wrt == WRT_GAMMA ? f->G : f->B;
  WT_OK(wrn_write(f->ctx, t_mem(dst), v, f->wrt == WRT_X ? T : (size_t)f->s.c));
  WT_OK(wrn_bn_forward_train(f->ctx, t_mem(f->Y), t_mem(f->SM), t_mem(f->SI), t_mem(f->RM),
                             t_mem(f->RV), t_mem(f->X), t_mem(f->G), t_mem(f->B), f->s.n, f->s.c,
                             f->s.hw, MOMENTUM, EPS, f->relu));
  t_download(f->ctx, f->y, f->Y, T);
  double l = 0;
  for (size_t i = 0; i < T; i++) l += f->r[i] * f->y[i];
  return l;
}

/* Moves beta of each channel until no pre-ReLU value lies within 0.01 of 0, so that steps
 * of 1e-5 in any input never cross the kink. */
static void keep_off_kink(bn_data *d, shape s) {
  size_t T = d->total;
  double *y = malloc(T * sizeof *y), m[64], is[64], rm[64] = {0}, rv[64] = {0};
  ref_bn_forward_train(y, m, is, rm, rv, d->x, d->gamma, d->beta, s.n, s.c, s.hw, 0, EPS, 0);
  for (int ch = 0; ch < s.c; ch++) {
    for (int tries = 0;; tries++) {
      assert_true(tries < 1000);
      double cand = d->beta[ch] + 0.0137 * tries * (tries % 2 ? 1 : -1);
      int ok = 1;
      for (int i = 0; i < s.n && ok; i++)
        for (int p = 0; p < s.hw && ok; p++) {
          double z = y[((size_t)i * s.c + ch) * s.hw + p] - d->beta[ch] + cand;
          if (fabs(z) < 0.01) ok = 0;
        }
      if (ok) {
        d->beta[ch] = cand;
        break;
      }
    }
  }
  free(y);
}

static void numeric_case(wrn_ctx *ctx, shape s, int relu) {
  bn_data d;
  data_make(ctx, &d, s, 500 + (uint64_t)s.hw + (uint64_t)relu);
  /* Smaller offsets than the reference test: the loss then has size ~1 and the differences
   * keep more digits. */
  for (size_t i = 0; i < d.total; i++) d.x[i] -= 100 * (i / s.hw % s.c == 0);
  if (relu) keep_off_kink(&d, s);
  size_t T = d.total;
  int c = s.c;
  double *r = malloc(T * sizeof *r), *y = malloc(T * sizeof *y), *num = malloc(T * sizeof *num),
         *got = malloc(T * sizeof *got), *zero = calloc(T, sizeof *zero);
  t_rand(r, T, -1, 1, 77 + T);
  fd_ctx f = {ctx, s, relu, WRT_X, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, r, y};
  f.X = t_upload(ctx, d.x, T), f.G = t_upload(ctx, d.gamma, c), f.B = t_upload(ctx, d.beta, c);
  f.RM = t_upload(ctx, d.rmean, c), f.RV = t_upload(ctx, d.rvar, c);
  f.Y = t_zeros(ctx, T), f.SM = t_zeros(ctx, c), f.SI = t_zeros(ctx, c);
  /* Analytic gradients at the unperturbed point: backward of dy = r. */
  fd_loss(d.x, &f);
  cl_mem DY = t_upload(ctx, r, T), DX = t_upload(ctx, zero, T), DG = t_upload(ctx, zero, c),
         DB = t_upload(ctx, zero, c);
  WT_OK(wrn_bn_backward(ctx, t_mem(DX), t_mem(DG), t_mem(DB), t_mem(DY), t_mem(f.X),
                        t_mem(f.Y), t_mem(f.G), t_mem(f.SM), t_mem(f.SI), s.n, c, s.hw, relu,
                        0, 0));
  /* Central differences with h = 1e-5 on a loss of size ~10: truncation ~h^2 |f'''| ~ 1e-9,
   * cancellation ~1e-16 * 10 / 1e-5 = 1e-10; 1e-7 absolute + 1e-6 relative covers both. */
  const double h = 1e-5, atol = 1e-7, rtol = 1e-6;
  t_download(ctx, got, DX, T);
  t_numeric_grad(fd_loss, d.x, T, h, num, &f);
  t_check_close("bn dx vs central differences", got, num, T, atol, rtol);
  track(&worst_num, got, num, T);
  WT_OK(wrn_write(ctx, t_mem(f.X), d.x, T));
  f.wrt = WRT_GAMMA;
  t_download(ctx, got, DG, c);
  t_numeric_grad(fd_loss, d.gamma, c, h, num, &f);
  t_check_close("bn dgamma vs central differences", got, num, c, atol, rtol);
  track(&worst_num, got, num, c);
  WT_OK(wrn_write(ctx, t_mem(f.G), d.gamma, c));
  f.wrt = WRT_BETA;
  t_download(ctx, got, DB, c);
  t_numeric_grad(fd_loss, d.beta, c, h, num, &f);
  t_check_close("bn dbeta vs central differences", got, num, c, atol, rtol);
  track(&worst_num, got, num, c);

  wrn_release(&f.X), wrn_release(&f.G), wrn_release(&f.B), wrn_release(&f.RM);
  wrn_release(&f.RV), wrn_release(&f.Y), wrn_release(&f.SM), wrn_release(&f.SI);
  wrn_release(&DY), wrn_release(&DX), wrn_release(&DG), wrn_release(&DB);
  free(r), free(y), free(num), free(got), free(zero);
  data_free(&d);
}

static void test_bn_numeric(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  static const shape ns[] = {{1, 3, 1}, {1, 1, 6}, {3, 5, 49}, {4, 2, 3}};
  for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
    for (int relu = 0; relu < 2; relu++) numeric_case(ctx, ns[i], relu);
}

/* ---------------------------------------------------------------- reproducibility */

static void test_bn_bits(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  shape s = {8, 16, 1024};
  bn_data d;
  data_make(ctx, &d, s, 4242);
  size_t T = d.total;
  int c = s.c;
  double *a = malloc(T * sizeof *a), *b = malloc(T * sizeof *b), *dy = malloc(T * sizeof *dy);
  t_rand(dy, T, -1, 1, 4343);
  cl_mem X = t_upload(ctx, d.x, T), G = t_upload(ctx, d.gamma, c), B = t_upload(ctx, d.beta, c),
         RM = t_upload(ctx, d.rmean, c), RV = t_upload(ctx, d.rvar, c), Y = t_zeros(ctx, T),
         SM = t_zeros(ctx, c), SI = t_zeros(ctx, c), DY = t_upload(ctx, dy, T),
         DX = t_zeros(ctx, T), DG = t_zeros(ctx, c), DB = t_zeros(ctx, c);
  double run[2][3 * 64];
  for (int k = 0; k < 2; k++) {
    WT_OK(wrn_bn_forward_train(ctx, t_mem(Y), t_mem(SM), t_mem(SI), t_mem(RM), t_mem(RV),
                               t_mem(X), t_mem(G), t_mem(B), s.n, c, s.hw, MOMENTUM, EPS, 1));
    WT_OK(wrn_bn_backward(ctx, t_mem(DX), t_mem(DG), t_mem(DB), t_mem(DY), t_mem(X), t_mem(Y),
                          t_mem(G), t_mem(SM), t_mem(SI), s.n, c, s.hw, 1, 0, 0));
    t_download(ctx, k ? b : a, DX, T);
    t_download(ctx, run[k], SI, c);
    t_download(ctx, run[k] + c, DG, c);
    t_download(ctx, run[k] + 2 * c, DB, c);
  }
  assert_memory_equal(a, b, T * sizeof *a);
  assert_memory_equal(run[0], run[1], 3 * (size_t)c * sizeof(double));
  /* The mask recomputed from x (what the network uses, y never read) gives the same bits as
   * the mask read from y: the forward and backward compute y's sign alike. Y is filled with
   * NaN first, so a kernel that still read it would differ. */
  t_download(ctx, b, Y, T);
  size_t masked = 0;
  for (size_t i = 0; i < T; i++) masked += b[i] == 0;
  assert_true(masked > T / 10 && masked < T - T / 10); /* the mask matters here */
  WT_OK(wrn_fill(ctx, t_mem(Y), NAN, T));
  WT_OK(wrn_bn_backward_mask(ctx, t_mem(DX), t_mem(DG), t_mem(DB), t_mem(DY), t_mem(X), t_mem(Y),
                             t_mem(G), t_mem(B), t_mem(SM), t_mem(SI), s.n, c, s.hw, 2, 0, 0));
  double rec[3 * 64];
  t_download(ctx, b, DX, T);
  t_download(ctx, rec, SI, c);
  t_download(ctx, rec + c, DG, c);
  t_download(ctx, rec + 2 * c, DB, c);
  assert_memory_equal(a, b, T * sizeof *a);
  assert_memory_equal(run[0], rec, 3 * (size_t)c * sizeof(double));
  wrn_release(&X), wrn_release(&G), wrn_release(&B), wrn_release(&RM), wrn_release(&RV);
  wrn_release(&Y), wrn_release(&SM), wrn_release(&SI), wrn_release(&DY), wrn_release(&DX);
  wrn_release(&DG), wrn_release(&DB);
  free(a), free(b), free(dy);
  data_free(&d);
}

/* ---------------------------------------------------------------- bad arguments */

static void expect_bad(wrn_status s, const char *fn, const char *what) {
  assert_int_equal(s, WRN_STATUS_INVALID_ARGUMENT);
  if (!strstr(wrn_last_error(), fn) || !strstr(wrn_last_error(), what))
    fail_msg("message '%s' should name %s and %s", wrn_last_error(), fn, what);
}

static void test_bn_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  cl_mem M = t_zeros(ctx, 64);
  wrn_mem m = t_mem(M), none = {NULL, 0};
  const char *tr = "bn_forward_train", *inf = "bn_forward_infer", *bw = "bn_backward";
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, none, m, m, 2, 2, 2, 0.1, 1e-5, 0), tr,
             "x");
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, m, m, m, 0, 2, 2, 0.1, 1e-5, 0), tr, "n=0");
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, m, m, m, 2, 2, -1, 0.1, 1e-5, 0), tr,
             "hw=-1");
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, m, m, m, 2, 2, 2, 1.5, 1e-5, 0), tr,
             "momentum");
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, m, m, m, 2, 2, 2, 0.1, 0, 0), tr, "eps");
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, m, m, m, 2, 2, 2, 0.1, 1e-5, 2), tr,
             "relu");
  expect_bad(wrn_bn_forward_train(ctx, m, m, m, m, m, m, m, m, 4096, 1024, 1024, 0.1, 1e-5, 0),
             tr, "too large");
  expect_bad(wrn_bn_forward_infer(ctx, m, m, m, m, m, none, 2, 2, 2, 1e-5, 0), inf,
             "running_var");
  expect_bad(wrn_bn_forward_infer(ctx, m, m, m, m, m, m, 2, 0, 2, 1e-5, 0), inf, "c=0");
  expect_bad(wrn_bn_forward_infer(ctx, m, m, m, m, m, m, 2, 2, 2, NAN, 0), inf, "eps");
  expect_bad(wrn_bn_backward(ctx, m, none, m, m, m, m, m, m, m, 2, 2, 2, 0, 0, 0), bw, "dgamma");
  expect_bad(wrn_bn_backward(ctx, m, m, m, m, m, none, m, m, m, 2, 2, 2, 1, 0, 0), bw, "y");
  expect_bad(wrn_bn_backward(ctx, m, m, m, m, m, m, m, m, m, 2, 2, 2, 0, 3, 0), bw, "accumulate_dx");
  expect_bad(wrn_bn_backward(ctx, m, m, m, m, m, m, m, m, m, 2, 2, 2, 0, 0, -1), bw, "accumulate_params");
  expect_bad(wrn_bn_backward(ctx, m, m, m, m, m, m, m, m, m, 2, -2, 2, 0, 0, 0), bw, "c=-2");
  /* Without the ReLU mask y is not needed. */
  WT_OK(wrn_bn_backward(ctx, m, m, m, m, m, none, m, m, m, 2, 2, 2, 0, 0, 0));
  WT_OK(wrn_ctx_finish(ctx));
  wrn_release(&M);
}

static int teardown(void **state) {
  (void)state;
  print_message("bn largest |error|: f32 forward %.3g, f32 backward %.3g, f64 vs reference "
                "%.3g, f64 vs central differences %.3g\n",
                worst_f32_fwd, worst_f32_bwd, worst_f64_ref, worst_num);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bn_reference),
      cmocka_unit_test(test_bn_numeric),
      cmocka_unit_test(test_bn_bits),
      cmocka_unit_test(test_bn_bad_args),
  };
  return WT_RUN_GROUP("bn", tests, NULL, teardown);
}
