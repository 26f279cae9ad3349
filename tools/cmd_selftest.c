/* wrn selftest: every op of the library, and every convolution algorithm in each pass, on
 * small shapes on one device against the naive double references of ref/ (the ones the
 * tests use), so that a driver can be checked for conformance before its timings are
 * trusted. One table row per op and pass: the largest |device - reference|, the bound
 * |error| <= atol + rtol |reference| every element must meet, and the verdict. */
#include "cli.h"
#include "ref_augment.h"
#include "ref_bn.h"
#include "ref_conv.h"
#include "ref_dropout.h"
#include "ref_gemm.h"
#include "ref_linear.h"
#include "ref_loss.h"
#include "ref_pool.h"
#include "ref_sgd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct selftest {
  wrn_ctx *ctx;
  const char *only;    /* run only the ops whose name contains this ("" all) */
  const char *perturb; /* WRN_SELFTEST_PERTURB: offsets one result of matching rows (tests) */
  int rows, failed;
} selftest;

/* ---------------------------------------------------------------- host <-> device */

static uint64_t rng_state;
/* Doubles uniform in [lo, hi) (xorshift64*), rounded to the device's real type, so that the
 * references see exactly the values the device gets. */
static void fill(selftest *t, double *x, size_t n, double lo, double hi) {
  for (size_t i = 0; i < n; i++) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    double u = (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
    x[i] = lo + (hi - lo) * u;
    if (wrn_ctx_real_size(t->ctx) == 4) x[i] = (double)(float)x[i];
  }
}

static double *alloc_d(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

/* A device buffer of n reals holding x (NULL: NaN, so that a result that reads an output it
 * should only write shows). Returns NULL after a message on failure. */
static cl_mem upload(selftest *t, const double *x, size_t n) {
  size_t rs = wrn_ctx_real_size(t->ctx);
  cl_mem m = NULL;
  if (wrn_alloc(t->ctx, (n ? n : 1) * rs, "selftest operand", &m) != WRN_OK) return NULL;
  wrn_mem mm = {m, 0};
  wrn_status s = x ? WRN_OK : wrn_fill(t->ctx, mm, NAN, n);
  if (x) {
    unsigned char *buf = malloc((n ? n : 1) * rs);
    if (!buf) s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    for (size_t i = 0; buf && i < n; i++) {
      if (rs == 8) ((double *)buf)[i] = x[i];
      else ((float *)buf)[i] = (float)x[i];
    }
    if (buf) s = wrn_write(t->ctx, mm, buf, n);
    free(buf);
  }
  if (s != WRN_OK) wrn_free_mem(t->ctx, &m);
  return m;
}

static wrn_status download(selftest *t, double *out, cl_mem m, size_t n) {
  size_t rs = wrn_ctx_real_size(t->ctx);
  unsigned char *buf = malloc((n ? n : 1) * rs);
  if (!buf) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_mem mm = {m, 0};
  wrn_status s = wrn_read(t->ctx, buf, mm, n);
  for (size_t i = 0; s == WRN_OK && i < n; i++)
    out[i] = rs == 8 ? ((double *)buf)[i] : (double)((float *)buf)[i];
  free(buf);
  return s;
}

static wrn_mem M(cl_mem m) {
  wrn_mem r = {m, 0};
  return r;
}

/* ---------------------------------------------------------------- the table */

static int selected(const selftest *t, const char *op) {
  return !t->only[0] || strstr(op, t->only) != NULL;
}

static void row_print(selftest *t, const char *op, const char *pass, const char *err,
                      const char *tol, int ok) {
  printf("%-22s %-18s %-10s %-22s %s\n", op, pass, err, tol, ok ? "ok" : "FAIL");
  t->rows++;
  t->failed += !ok;
}

/* One row: got[n] against ref[n]. */
static void row(selftest *t, const char *op, const char *pass, double *got, const double *ref,
                size_t n, double atol, double rtol) {
  if (t->perturb[0] && n && strstr(op, t->perturb)) got[n / 2] += 0.1 * (1 + fabs(got[n / 2]));
  double worst = 0;
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(got[i] - ref[i]);
    if (!(d <= atol + rtol * fabs(ref[i]))) ok = 0; /* NaN fails too */
    if (!(d <= worst)) worst = d;
  }
  char e[32], b[64];
  snprintf(e, sizeof e, "%.2e", worst);
  snprintf(b, sizeof b, "%.1e + %.0e|ref|", atol, rtol);
  row_print(t, op, pass, e, b, ok);
}

/* A failed library call: a row that says what failed. */
static void row_error(selftest *t, const char *op, const char *pass) {
  row_print(t, op, pass, "error", "", 0);
  printf("    %s\n", wrn_last_error());
}

/* Runs a library call of an op's check; on failure the row says so and the check ends. */
#define ST_TRY(call)                                                                        \
  do {                                                                                      \
    if ((call) != WRN_OK) {                                                                 \
      row_error(t, op, pass);                                                               \
      goto done;                                                                            \
    }                                                                                       \
  } while (0)
#define ST_UP(var, x, n) ST_TRY(((var) = upload(t, (x), (n))) ? WRN_OK : WRN_STATUS_OPENCL)
#define ST_HOST(ok)                                                                         \
  ST_TRY((ok) ? WRN_OK : wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory"))

/* ---------------------------------------------------------------- convolution */

static const wrn_conv_shape conv_shapes[] = {
    {2, 3, 9, 9, 5, 3, 1, 1},     /* 3x3 stride 1, odd sizes */
    {2, 4, 10, 10, 6, 3, 2, 1},   /* 3x3 stride 2 (a group's first conv) */
    {2, 4, 8, 8, 6, 1, 2, 0},     /* 1x1 stride 2 (a shortcut) */
    {1, 16, 16, 16, 16, 3, 1, 1}, /* wide enough for the tiled kernels */
};
#define N_CONV_SHAPES (sizeof conv_shapes / sizeof conv_shapes[0])

/* Terms summed per output of a pass (the length of its dot products). */
static double conv_terms(const wrn_conv_shape *s, wrn_conv_pass pass) {
  double P = (double)wrn_conv_out_h(s) * wrn_conv_out_w(s);
  return pass == WRN_CONV_FORWARD         ? (double)s->c_in * s->k * s->k
         : pass == WRN_CONV_BACKWARD_DATA ? (double)s->c_out * s->k * s->k
                                          : s->n * P;
}

/* Sums of L products of values in [-1, 1] round like eps L in the worst case: atol 3e-7 L
 * (about 5 float ulps per term), 1e-15 L in double; Winograd's transforms amplify the
 * rounding (F(2x2,3x3) ~4x, F(4x4,3x3) ~64x), and the FFT's error grows with its size
 * (~16x here); tests/test_conv.c measures them. */
static void conv_tol(selftest *t, const char *algo, double L, double *atol, double *rtol) {
  double f = !strncmp(algo, "winograd2", 9) ? 4
             : !strncmp(algo, "winograd4", 9) ? 64
             : !strncmp(algo, "fft", 3)       ? 16
                                              : 1;
  int dbl = wrn_ctx_dtype(t->ctx) == WRN_F64;
  *atol = (dbl ? 1e-15 : 3e-7) * L * f;
  *rtol = (dbl ? 1e-12 : 1e-6) * f;
}

/* One algorithm, one pass, every shape it supports: the row of the shape nearest its bound. */
static void check_conv(selftest *t, int ai, wrn_conv_pass cp) {
  char op[64];
  const char *name = wrn_conv_algo_name(ai), *pass = wrn_conv_pass_name(cp);
  snprintf(op, sizeof op, "conv %s", name);
  if (!selected(t, op)) return;
  double worst = 0, worst_atol = 0, worst_rtol = 0, worst_ratio = -1;
  int ran = 0, ok = 1;
  for (size_t si = 0; si < N_CONV_SHAPES; si++) {
    const wrn_conv_shape *s = &conv_shapes[si];
    char choice[1][WRN_CONV_CHOICE_MAX];
    if (wrn_conv_algo_variants(t->ctx, ai, s, cp, choice, 1) < 1) continue;
    size_t ws_n = wrn_conv_algo_workspace(t->ctx, choice[0], s, cp, 0);
    if (ws_n == (size_t)-1) continue;
    size_t nx = (size_t)s->n * s->c_in * s->h * s->w;
    size_t ny = (size_t)s->n * s->c_out * wrn_conv_out_h(s) * wrn_conv_out_w(s);
    size_t nw = (size_t)s->c_out * s->c_in * s->k * s->k;
    size_t nout = cp == WRN_CONV_FORWARD ? ny : cp == WRN_CONV_BACKWARD_DATA ? nx : nw;
    double *x = alloc_d(nx), *w = alloc_d(nw), *dy = alloc_d(ny), *ref = alloc_d(nout),
           *got = alloc_d(nout);
    cl_mem A = NULL, B = NULL, OUT = NULL, WS = NULL;
    int fine = 0;
    ST_HOST(x && w && dy && ref && got);
    fill(t, x, nx, -1, 1), fill(t, w, nw, -1, 1), fill(t, dy, ny, -1, 1);
    if (cp == WRN_CONV_FORWARD) ref_conv_forward(ref, x, w, s);
    else if (cp == WRN_CONV_BACKWARD_DATA) ref_conv_backward_data(ref, dy, w, s);
    else ref_conv_backward_weight(ref, dy, x, s);
    ST_UP(A, cp == WRN_CONV_FORWARD ? x : dy, cp == WRN_CONV_FORWARD ? nx : ny);
    ST_UP(B, cp == WRN_CONV_BACKWARD_WEIGHT ? x : w, cp == WRN_CONV_BACKWARD_WEIGHT ? nx : nw);
    ST_UP(OUT, NULL, nout);
    if (ws_n) ST_UP(WS, NULL, ws_n);
    wrn_conv_io io = {M(OUT), M(A), M(B), {NULL, 0}, 0, M(WS), ws_n};
    ST_TRY(wrn_conv_run(t->ctx, choice[0], cp, s, &io));
    ST_TRY(download(t, got, OUT, nout));
    if (t->perturb[0] && strstr(op, t->perturb)) got[nout / 2] += 0.1 * (1 + fabs(got[nout / 2]));
    double atol, rtol;
    conv_tol(t, name, conv_terms(s, cp), &atol, &rtol);
    for (size_t i = 0; i < nout; i++) {
      double d = fabs(got[i] - ref[i]), bound = atol + rtol * fabs(ref[i]);
      if (!(d <= bound)) ok = 0;
      if (!(d / bound <= worst_ratio)) {
        worst_ratio = d / bound;
        worst = d, worst_atol = atol, worst_rtol = rtol;
      }
    }
    ran++;
    fine = 1;
  done:
    free(x), free(w), free(dy), free(ref), free(got);
    wrn_free_mem(t->ctx, &A), wrn_free_mem(t->ctx, &B), wrn_free_mem(t->ctx, &OUT);
    wrn_free_mem(t->ctx, &WS);
    if (!fine) return; /* its row was printed */
  }
  if (!ran) return; /* no shape here suits the algorithm in this pass */
  char e[32], b[64];
  snprintf(e, sizeof e, "%.2e", worst);
  snprintf(b, sizeof b, "%.1e + %.0e|ref|", worst_atol, worst_rtol);
  row_print(t, op, pass, e, b, ok);
}

/* ---------------------------------------------------------------- the other ops */

/* Float and double tolerances of the same check. */
static double tol(const selftest *t, double f32, double f64) {
  return wrn_ctx_dtype(t->ctx) == WRN_F64 ? f64 : f32;
}

/* GEMM in its four transposition forms with alpha and beta, through CLBlast and through the
 * library's own kernels (WRN_GEMM chooses; the caller's setting is restored). */
static void check_gemm(selftest *t) {
  const char *op = "gemm", *pass = "";
  if (!selected(t, op)) return;
  const char *user = getenv("WRN_GEMM");
  char keep[64];
  snprintf(keep, sizeof keep, "%s", user ? user : "");
  const size_t m = 37, n = 29, k = 45;
  double *a = alloc_d(m * k), *b = alloc_d(k * n), *c0 = alloc_d(m * n), *ref = alloc_d(m * n),
         *got = alloc_d(m * n);
  cl_mem A = NULL, B = NULL, C = NULL;
  ST_HOST(a && b && c0 && ref && got);
  fill(t, a, m * k, -1, 1), fill(t, b, k * n, -1, 1), fill(t, c0, m * n, -1, 1);
  ST_UP(A, a, m * k);
  ST_UP(B, b, k * n);
  ST_UP(C, c0, m * n);
  static const char *const modes[2] = {"own", "clblast"};
  static const char *const forms[4] = {"nn", "tn", "nt", "tt"};
  for (int md = 0; md < 2; md++)
    for (int f = 0; f < 4; f++) {
      int ta = f & 1, tb = f >> 1;
      char opn[32], pn[32];
      snprintf(opn, sizeof opn, "gemm %s", modes[md]);
      snprintf(pn, sizeof pn, "%s", forms[f]);
      op = opn, pass = pn;
      setenv("WRN_GEMM", modes[md], 1);
      size_t lda = ta ? m : k, ldb = tb ? k : n;
      memcpy(ref, c0, m * n * sizeof *ref);
      ref_gemm(ta, tb, m, n, k, 1.5, a, lda, b, ldb, 0.5, ref, n);
      wrn_free_mem(t->ctx, &C); /* C again holds c0 */
      ST_UP(C, c0, m * n);
      ST_TRY(wrn_gemm(t->ctx, WRN_CAT_OTHER, ta, tb, m, n, k, 1.5, M(A), lda, M(B), ldb, 0.5,
                      M(C), n));
      ST_TRY(download(t, got, C, m * n));
      row(t, op, pass, got, ref, m * n, tol(t, 3e-7 * 1.5 * k + 1e-6, 1e-15 * 1.5 * k),
          tol(t, 1e-6, 1e-12));
    }
done:
  if (keep[0]) setenv("WRN_GEMM", keep, 1);
  else unsetenv("WRN_GEMM");
  free(a), free(b), free(c0), free(ref), free(got);
  wrn_free_mem(t->ctx, &A), wrn_free_mem(t->ctx, &B), wrn_free_mem(t->ctx, &C);
}

/* ReLU forward and backward, the residual add: exact but for the add's one rounding. */
static void check_eltwise(selftest *t) {
  const char *op = "relu", *pass = "forward";
  const size_t n = 1000;
  double *x = alloc_d(n), *y = alloc_d(n), *dy = alloc_d(n), *ref = alloc_d(n),
         *got = alloc_d(n);
  cl_mem X = NULL, Y = NULL, DY = NULL, OUT = NULL;
  ST_HOST(x && y && dy && ref && got);
  fill(t, x, n, -1, 1), fill(t, dy, n, -1, 1);
  ST_UP(X, x, n);
  ST_UP(DY, dy, n);
  ST_UP(OUT, NULL, n);
  if (selected(t, "relu")) {
    ST_TRY(wrn_relu_forward(t->ctx, M(OUT), M(X), n));
    ST_TRY(download(t, got, OUT, n));
    for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
    row(t, op, pass, got, ref, n, 0, 0);
    pass = "backward";
    for (size_t i = 0; i < n; i++) y[i] = ref[i];
    ST_UP(Y, y, n);
    ST_TRY(wrn_relu_backward(t->ctx, M(OUT), M(DY), M(Y), n, 0));
    ST_TRY(download(t, got, OUT, n));
    for (size_t i = 0; i < n; i++) ref[i] = y[i] > 0 ? dy[i] : 0;
    row(t, op, pass, got, ref, n, 0, 0);
  }
  op = "add", pass = "forward";
  if (selected(t, op)) {
    ST_TRY(wrn_add_forward(t->ctx, M(OUT), M(X), M(DY), n));
    ST_TRY(download(t, got, OUT, n));
    for (size_t i = 0; i < n; i++) ref[i] = x[i] + dy[i];
    row(t, op, pass, got, ref, n, 0, tol(t, 1.2e-7, 2.3e-16));
  }
done:
  free(x), free(y), free(dy), free(ref), free(got);
  wrn_free_mem(t->ctx, &X), wrn_free_mem(t->ctx, &Y), wrn_free_mem(t->ctx, &DY);
  wrn_free_mem(t->ctx, &OUT);
}

/* Batch norm: training forward with and without the fused ReLU (output, saved statistics,
 * running statistics), inference, backward; inputs around an offset so the variance is
 * computed from values that do not cancel trivially. */
static void check_bn(selftest *t) {
  const char *op = "bn", *pass = "forward-train";
  if (!selected(t, op)) return;
  const int n = 3, c = 5, hw = 7 * 9;
  const size_t T = (size_t)n * c * hw;
  const double mom = 0.1, eps = 1e-5;
  double *x = alloc_d(T), *dy = alloc_d(T), *g = alloc_d(c), *b = alloc_d(c), *rm = alloc_d(c),
         *rv = alloc_d(c), *ry = alloc_d(T), *mean = alloc_d(c), *inv = alloc_d(c),
         *got = alloc_d(T), *gy = alloc_d(T), *gmean = alloc_d(c), *ginv = alloc_d(c),
         *rdx = alloc_d(T), *rdg = alloc_d(c), *rdb = alloc_d(c);
  cl_mem X = NULL, DY = NULL, G = NULL, Bt = NULL, RM = NULL, RV = NULL, Y = NULL, SM = NULL,
         SI = NULL, DX = NULL, DG = NULL, DB = NULL;
  ST_HOST(x && dy && g && b && rm && rv && ry && mean && inv && got && gy && gmean && ginv &&
          rdx && rdg && rdb);
  fill(t, x, T, 2, 6), fill(t, dy, T, -1, 1), fill(t, g, c, 0.5, 1.5), fill(t, b, c, -0.5, 0.5);
  fill(t, rm, c, -0.1, 0.1), fill(t, rv, c, 0.9, 1.1);
  ST_UP(X, x, T);
  ST_UP(DY, dy, T);
  ST_UP(G, g, c);
  ST_UP(Bt, b, c);
  ST_UP(Y, NULL, T);
  ST_UP(SM, NULL, c);
  ST_UP(SI, NULL, c);
  ST_UP(DX, NULL, T);
  ST_UP(DG, NULL, c);
  ST_UP(DB, NULL, c);
  for (int relu = 0; relu < 2; relu++) {
    pass = relu ? "forward-train+relu" : "forward-train";
    wrn_free_mem(t->ctx, &RM), wrn_free_mem(t->ctx, &RV);
    ST_UP(RM, rm, c);
    ST_UP(RV, rv, c);
    double rrm[5], rrv[5];
    memcpy(rrm, rm, sizeof rrm), memcpy(rrv, rv, sizeof rrv);
    ref_bn_forward_train(ry, mean, inv, rrm, rrv, x, g, b, n, c, hw, mom, eps, relu);
    ST_TRY(wrn_bn_forward_train(t->ctx, M(Y), M(SM), M(SI), M(RM), M(RV), M(X), M(G), M(Bt), n,
                                c, hw, mom, eps, relu));
    ST_TRY(download(t, gy, Y, T));
    row(t, op, pass, gy, ry, T, tol(t, 2e-5, 1e-12), tol(t, 1e-5, 1e-12));
    ST_TRY(download(t, gmean, SM, c));
    ST_TRY(download(t, ginv, SI, c));
    double got_rv[5];
    ST_TRY(download(t, got_rv, RV, c));
    row(t, "bn statistics", pass, ginv, inv, c, tol(t, 1e-6, 1e-12), tol(t, 1e-5, 1e-12));
    row(t, "bn running var", pass, got_rv, rrv, c, tol(t, 1e-6, 1e-12), tol(t, 1e-5, 1e-12));
    /* Backward from the device's own forward (its y and saved statistics). */
    pass = relu ? "backward+relu" : "backward";
    ref_bn_backward(rdx, rdg, rdb, dy, x, gy, g, gmean, ginv, n, c, hw, relu, 0);
    ST_TRY(wrn_bn_backward(t->ctx, M(DX), M(DG), M(DB), M(DY), M(X), M(Y), M(G), M(SM), M(SI),
                           n, c, hw, relu, 0, 0));
    ST_TRY(download(t, got, DX, T));
    row(t, op, pass, got, rdx, T, tol(t, 2e-5, 1e-12), tol(t, 1e-5, 1e-12));
    double gg[5], gb[5];
    ST_TRY(download(t, gg, DG, c));
    ST_TRY(download(t, gb, DB, c));
    row(t, "bn dgamma", pass, gg, rdg, c, tol(t, 1e-4, 1e-11), tol(t, 1e-5, 1e-12));
    row(t, "bn dbeta", pass, gb, rdb, c, tol(t, 1e-4, 1e-11), tol(t, 1e-5, 1e-12));
  }
  pass = "forward-infer";
  ref_bn_forward_infer(ry, x, g, b, rm, rv, n, c, hw, eps, 0);
  wrn_free_mem(t->ctx, &RM), wrn_free_mem(t->ctx, &RV);
  ST_UP(RM, rm, c);
  ST_UP(RV, rv, c);
  ST_TRY(wrn_bn_forward_infer(t->ctx, M(Y), M(X), M(G), M(Bt), M(RM), M(RV), n, c, hw, eps, 0));
  ST_TRY(download(t, got, Y, T));
  row(t, op, pass, got, ry, T, tol(t, 2e-5, 1e-12), tol(t, 1e-5, 1e-12));
done:
  free(x), free(dy), free(g), free(b), free(rm), free(rv), free(ry), free(mean), free(inv);
  free(got), free(gy), free(gmean), free(ginv), free(rdx), free(rdg), free(rdb);
  cl_mem *ms[] = {&X, &DY, &G, &Bt, &RM, &RV, &Y, &SM, &SI, &DX, &DG, &DB};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) wrn_free_mem(t->ctx, ms[i]);
}

/* Average (3x3/2 with padding counted, and the head's global 8x8) and max pooling. */
static void check_pool(selftest *t) {
  const char *op = "avgpool", *pass = "forward";
  static const wrn_pool_shape shapes[2] = {{2, 3, 9, 9, 3, 2, 1}, {2, 4, 8, 8, 8, 1, 0}};
  for (int kind = 0; kind < 2; kind++) {
    op = kind ? "maxpool" : "avgpool";
    if (!selected(t, op)) continue;
    for (int si = 0; si < 2; si++) {
      const wrn_pool_shape *s = &shapes[si];
      int oh = wrn_pool_out_h(s), ow = wrn_pool_out_w(s), planes = s->n * s->c;
      size_t nin = (size_t)planes * s->h * s->w, nout = (size_t)planes * oh * ow;
      double *x = alloc_d(nin), *dy = alloc_d(nout), *ref = alloc_d(nin), *got = alloc_d(nin);
      cl_mem X = NULL, DY = NULL, Y = NULL, DX = NULL;
      char pn[48];
      ST_HOST(x && dy && ref && got);
      fill(t, x, nin, -1, 1), fill(t, dy, nout, -1, 1);
      ST_UP(X, x, nin);
      ST_UP(DY, dy, nout);
      ST_UP(Y, NULL, nout);
      ST_UP(DX, NULL, nin);
      snprintf(pn, sizeof pn, "forward %dx%d/%d", s->k, s->k, s->stride);
      pass = pn;
      if (kind) ref_maxpool_forward(ref, NULL, x, planes, s->h, s->w, s->k, s->stride, s->pad);
      else ref_avgpool_forward(ref, x, planes, s->h, s->w, s->k, s->stride, s->pad);
      ST_TRY(kind ? wrn_maxpool_forward(t->ctx, M(Y), M(X), s)
                  : wrn_avgpool_forward(t->ctx, M(Y), M(X), s));
      ST_TRY(download(t, got, Y, nout));
      row(t, op, pass, got, ref, nout, kind ? 0 : tol(t, 1e-6, 1e-14),
          kind ? 0 : tol(t, 1e-6, 1e-14));
      snprintf(pn, sizeof pn, "backward %dx%d/%d", s->k, s->k, s->stride);
      if (kind)
        ref_maxpool_backward(ref, dy, x, planes, s->h, s->w, s->k, s->stride, s->pad, 0);
      else ref_avgpool_backward(ref, dy, planes, s->h, s->w, s->k, s->stride, s->pad, 0);
      ST_TRY(kind ? wrn_maxpool_backward(t->ctx, M(DX), M(DY), M(X), s, 0)
                  : wrn_avgpool_backward(t->ctx, M(DX), M(DY), s, 0));
      ST_TRY(download(t, got, DX, nin));
      row(t, op, pass, got, ref, nin, tol(t, 1e-6, 1e-14), tol(t, 1e-6, 1e-14));
    done:
      free(x), free(dy), free(ref), free(got);
      wrn_free_mem(t->ctx, &X), wrn_free_mem(t->ctx, &DY), wrn_free_mem(t->ctx, &Y);
      wrn_free_mem(t->ctx, &DX);
    }
  }
}

/* Inverted dropout: the masks drawn from the documented Philox rule. */
static void check_dropout(selftest *t) {
  const char *op = "dropout", *pass = "forward";
  if (!selected(t, op)) return;
  const size_t n = 3001;
  const double p = 0.3;
  const uint64_t seed = 0x1234567890abcdefull, ctr = 77;
  double *x = alloc_d(n), *ref = alloc_d(n), *got = alloc_d(n);
  unsigned char *keep = malloc(n);
  cl_mem X = NULL, Y = NULL;
  ST_HOST(x && ref && got && keep);
  fill(t, x, n, -1, 1);
  ref_dropout_mask(keep, n, p, seed, ctr);
  ST_UP(X, x, n);
  ST_UP(Y, NULL, n);
  for (size_t i = 0; i < n; i++) ref[i] = keep[i] ? x[i] / (1 - p) : 0;
  ST_TRY(wrn_dropout_forward(t->ctx, M(Y), M(X), n, p, seed, ctr));
  ST_TRY(download(t, got, Y, n));
  row(t, op, pass, got, ref, n, 0, tol(t, 3e-7, 1e-15));
  pass = "backward";
  ST_TRY(wrn_dropout_backward(t->ctx, M(Y), M(X), n, p, seed, ctr, 0));
  ST_TRY(download(t, got, Y, n));
  row(t, op, pass, got, ref, n, tol(t, 1e-6, 1e-15), tol(t, 1e-6, 1e-15));
done:
  free(x), free(ref), free(got), free(keep);
  wrn_free_mem(t->ctx, &X), wrn_free_mem(t->ctx, &Y);
}

/* Softmax cross-entropy (loss, correct, dlogits), plain and with label smoothing. */
static void check_loss(selftest *t) {
  const char *op = "softmax-xent", *pass = "forward";
  if (!selected(t, op)) return;
  const int n = 13, k = 10;
  const size_t nk = (size_t)n * k;
  double x[130], lr[13], cr[13], dl[130], got[130];
  int lab[13];
  cl_mem X = NULL, L = NULL, C = NULL, D = NULL, Y = NULL;
  fill(t, x, nk, -4, 4);
  for (int i = 0; i < n; i++) lab[i] = (i * 7) % k;
  ST_UP(X, x, nk);
  ST_UP(L, NULL, (size_t)n);
  ST_UP(C, NULL, (size_t)n);
  ST_UP(D, NULL, nk);
  ST_TRY(wrn_alloc(t->ctx, sizeof lab, "selftest labels", &Y));
  ST_TRY(wrn_write_bytes(t->ctx, Y, 0, lab, sizeof lab));
  for (int smooth = 0; smooth < 2; smooth++) {
    double eps = smooth ? 0.1 : 0;
    pass = smooth ? "forward eps 0.1" : "forward";
    if (smooth) ref_softmax_xent_smooth(lr, dl, x, lab, n, k, 1.0, eps);
    else ref_softmax_xent(lr, cr, dl, x, lab, n, k, 1.0);
    ST_TRY(wrn_softmax_xent_smooth(t->ctx, M(L), M(C), M(D), M(X), Y, 0, n, k, 1.0, eps));
    ST_TRY(download(t, got, L, (size_t)n));
    row(t, op, pass, got, lr, (size_t)n, tol(t, 1e-5, 1e-11), tol(t, 1e-5, 1e-11));
    if (!smooth) {
      ST_TRY(download(t, got, C, (size_t)n));
      row(t, "softmax-xent correct", pass, got, cr, (size_t)n, 0, 0);
    }
    pass = smooth ? "backward eps 0.1" : "backward";
    ST_TRY(download(t, got, D, nk));
    row(t, op, pass, got, dl, nk, tol(t, 1e-6 / n, 1e-12 / n), tol(t, 2e-6, 1e-12));
  }
done:
  wrn_free_mem(t->ctx, &X), wrn_free_mem(t->ctx, &L), wrn_free_mem(t->ctx, &C);
  wrn_free_mem(t->ctx, &D), wrn_free_mem(t->ctx, &Y);
}

/* Nesterov SGD with weight decay: the first step (momentum := gradient) and a later one. */
static void check_sgd(selftest *t) {
  const char *op = "sgd", *pass = "first step";
  if (!selected(t, op)) return;
  const size_t n = 2049;
  double *th = alloc_d(n), *gr = alloc_d(n), *v = alloc_d(n), *got = alloc_d(n);
  cl_mem P = NULL, G = NULL, V = NULL;
  ST_HOST(th && gr && v && got);
  fill(t, th, n, -1, 1), fill(t, gr, n, -1, 1), fill(t, v, n, -1, 1);
  ST_UP(P, th, n);
  ST_UP(G, gr, n);
  ST_UP(V, v, n);
  for (int first = 1; first >= 0; first--) {
    pass = first ? "first step" : "step";
    wrn_sgd o = {0.1, 0.9, 5e-4, 1, first};
    ref_sgd_step(th, gr, v, n, o.lr, o.momentum, o.weight_decay, o.nesterov, first);
    ST_TRY(wrn_sgd_step(t->ctx, M(P), M(G), M(V), n, &o));
    ST_TRY(download(t, got, P, n));
    row(t, op, pass, got, th, n, tol(t, 2e-6, 1e-14), tol(t, 2e-6, 1e-14));
    /* Continue from the device's values, so the second step checks one step's error only. */
    memcpy(th, got, n * sizeof *th);
    ST_TRY(download(t, v, V, n));
  }
done:
  free(th), free(gr), free(v), free(got);
  wrn_free_mem(t->ctx, &P), wrn_free_mem(t->ctx, &G), wrn_free_mem(t->ctx, &V);
}

/* The input pipeline: flip + reflection-padded crop + normalisation + cutout. */
static void check_augment(selftest *t) {
  const char *op = "augment", *pass = "flip+crop+cutout";
  if (!selected(t, op)) return;
  const int n = 6, c = 3, h = 32, w = 32;
  const size_t cnt = (size_t)n * c * h * w;
  double *tmp = alloc_d(cnt), *ref = alloc_d(cnt), *got = alloc_d(cnt);
  uint8_t *img = malloc(cnt);
  cl_mem I = NULL, Y = NULL;
  ST_HOST(tmp && ref && got && img);
  fill(t, tmp, cnt, 0, 256);
  for (size_t i = 0; i < cnt; i++) img[i] = (uint8_t)(tmp[i] < 255 ? tmp[i] : 255);
  wrn_augment a = wrn_augment_recipe();
  a.seed = 0x5eed, a.step = 123, a.cutout = 16;
  ref_augment(ref, img, n, c, h, w, &a);
  ST_TRY(wrn_alloc(t->ctx, cnt, "selftest images", &I));
  ST_TRY(wrn_write_bytes(t->ctx, I, 0, img, cnt));
  ST_UP(Y, NULL, cnt);
  ST_TRY(wrn_augment_forward(t->ctx, M(Y), I, 0, n, c, h, w, &a));
  ST_TRY(download(t, got, Y, cnt));
  row(t, op, pass, got, ref, cnt, tol(t, 1e-6, 1e-14), tol(t, 1e-6, 1e-14));
done:
  free(tmp), free(ref), free(got), free(img);
  wrn_free_mem(t->ctx, &I), wrn_free_mem(t->ctx, &Y);
}

/* The fully connected head: forward, and the three gradients. */
static void check_linear(selftest *t) {
  const char *op = "linear", *pass = "forward";
  if (!selected(t, op)) return;
  const int n = 7, in = 33, out = 10;
  double *x = alloc_d((size_t)n * in), *w = alloc_d((size_t)out * in), *b = alloc_d(out),
         *dy = alloc_d((size_t)n * out), *ry = alloc_d((size_t)n * out),
         *rdx = alloc_d((size_t)n * in), *rdw = alloc_d((size_t)out * in), *rdb = alloc_d(out),
         *got = alloc_d((size_t)out * in);
  cl_mem X = NULL, W = NULL, Bb = NULL, DY = NULL, Y = NULL, DX = NULL, DW = NULL, DB = NULL;
  ST_HOST(x && w && b && dy && ry && rdx && rdw && rdb && got);
  fill(t, x, (size_t)n * in, -1, 1), fill(t, w, (size_t)out * in, -1, 1), fill(t, b, out, -1, 1);
  fill(t, dy, (size_t)n * out, -1, 1);
  ST_UP(X, x, (size_t)n * in);
  ST_UP(W, w, (size_t)out * in);
  ST_UP(Bb, b, out);
  ST_UP(DY, dy, (size_t)n * out);
  ST_UP(Y, NULL, (size_t)n * out);
  ST_UP(DX, NULL, (size_t)n * in);
  ST_UP(DW, NULL, (size_t)out * in);
  ST_UP(DB, NULL, out);
  ref_linear_forward(ry, x, w, b, n, in, out);
  ST_TRY(wrn_linear_forward(t->ctx, M(Y), M(X), M(W), M(Bb), n, in, out));
  ST_TRY(download(t, got, Y, (size_t)n * out));
  row(t, op, pass, got, ry, (size_t)n * out, tol(t, 3e-7 * (in + 1), 1e-15 * (in + 1)),
      tol(t, 1e-6, 1e-12));
  ref_linear_backward(rdx, rdw, rdb, dy, x, w, n, in, out);
  ST_TRY(wrn_linear_backward(t->ctx, M(DX), M(DW), M(DB), M(DY), M(X), M(W), n, in, out, 0));
  pass = "backward dx";
  ST_TRY(download(t, got, DX, (size_t)n * in));
  row(t, op, pass, got, rdx, (size_t)n * in, tol(t, 3e-7 * out, 1e-15 * out), tol(t, 1e-6, 1e-12));
  pass = "backward dw";
  ST_TRY(download(t, got, DW, (size_t)out * in));
  row(t, op, pass, got, rdw, (size_t)out * in, tol(t, 3e-7 * n, 1e-15 * n), tol(t, 1e-6, 1e-12));
  pass = "backward db";
  ST_TRY(download(t, got, DB, out));
  row(t, op, pass, got, rdb, out, tol(t, 3e-7 * n, 1e-15 * n), tol(t, 1e-6, 1e-12));
done:
  free(x), free(w), free(b), free(dy), free(ry), free(rdx), free(rdw), free(rdb), free(got);
  cl_mem *ms[] = {&X, &W, &Bb, &DY, &Y, &DX, &DW, &DB};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) wrn_free_mem(t->ctx, ms[i]);
}

/* ---------------------------------------------------------------- the command */

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn selftest [--device P:D|cpu|gpu|NAME] [--dtype float|double] [--only OP]\n"
          "\n"
          "Runs every op (convolution with every algorithm of the table in its three passes,\n"
          "GEMM through CLBlast and the own kernels, batch norm, ReLU, add, pooling, dropout,\n"
          "softmax cross-entropy, SGD, the input pipeline, the linear layer) on small shapes on\n"
          "the device and compares each result with a naive double-precision reference on the\n"
          "host. Prints one row per op and pass: the largest |error|, the bound every element\n"
          "must meet (atol + rtol |reference|) and ok or FAIL. Exits 1 when any row fails.\n"
          "--only runs the ops whose name contains OP (\"conv\", \"gemm\", \"winograd4\").\n");
}

int cmd_selftest(int argc, char **argv) {
  const char *device = NULL, *only = "", *dtype = "float";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if ((!strcmp(a, "--device") || !strcmp(a, "--only") || !strcmp(a, "--dtype")) &&
        i + 1 < argc) {
      const char *v = argv[++i];
      if (!strcmp(a, "--device")) device = v;
      else if (!strcmp(a, "--only")) only = v;
      else dtype = v;
      continue;
    }
    fprintf(stderr, "wrn selftest: %s '%s'\n",
            strncmp(a, "--", 2) ? "unexpected argument" : "unknown flag or missing value", a);
    usage(stderr);
    return 2;
  }
  if (strcmp(dtype, "float") && strcmp(dtype, "double")) {
    fprintf(stderr, "wrn selftest: --dtype wants float or double, got '%s'\n", dtype);
    return 2;
  }
  wrn_device_info dev;
  if (wrn_device_select(device, &dev) != WRN_OK) {
    cli_error("selftest", "--device");
    return 1;
  }
  wrn_ctx_options co = {!strcmp(dtype, "double") ? WRN_F64 : WRN_F32, 0, 0};
  if (co.dtype == WRN_F64 && !dev.fp64) {
    fprintf(stderr, "wrn selftest: %s has no double precision (cl_khr_fp64)\n", dev.name);
    return 1;
  }
  selftest t = {NULL, only, getenv("WRN_SELFTEST_PERTURB"), 0, 0};
  if (!t.perturb) t.perturb = "";
  if (wrn_ctx_open(&t.ctx, &dev, &co) != WRN_OK) {
    cli_error("selftest", "opening the device");
    return 1;
  }
  printf("selftest: %s (%s, driver %s), %s, wrn %s\n", dev.name, dev.platform_name, dev.driver,
         dtype, wrn_version());
  printf("%-22s %-18s %-10s %-22s %s\n", "op", "pass", "max error", "tolerance", "result");
  fflush(stdout);
  rng_state = 0x9E3779B97F4A7C15ull;
  for (int ai = 0; ai < wrn_conv_algo_count(); ai++) {
    for (int p = 0; p < WRN_CONV_PASSES; p++) check_conv(&t, ai, (wrn_conv_pass)p);
    fflush(stdout);
  }
  void (*const checks[])(selftest *) = {check_gemm,    check_eltwise, check_bn,
                                        check_pool,    check_dropout, check_loss,
                                        check_sgd,     check_augment, check_linear};
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    checks[i](&t);
    fflush(stdout);
  }
  wrn_ctx_free(t.ctx);
  if (!t.rows) {
    fprintf(stderr, "wrn selftest: no op matches --only '%s'\n", only);
    return 2;
  }
  if (t.failed)
    printf("selftest: %d of %d checks FAILED on %s: do not trust this device's results or "
           "timings\n", t.failed, t.rows, dev.name);
  else printf("selftest: all %d checks passed on %s\n", t.rows, dev.name);
  return t.failed ? 1 : 0;
}
