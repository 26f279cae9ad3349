/* Convolution: every algorithm x pass x shape of one table against the naive reference
 * (ref/ref_conv.c), in float and double, with NaN-filled outputs (a result that read
 * them would show), both accumulate modes and the fused residual add; backward passes
 * against double central differences of the same algorithm's forward; the tuner and its
 * store; argument checks; the profile's FLOP counts.
 *
 * Adding a shape is one line in `cases`; a new algorithm in the library's table is picked
 * up with all of its parameter sets (wrn_conv_algo_variants) and gets its error bound from
 * `tol_for`. */
#include "harness.h"
#include "ref_conv.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct conv_case {
  wrn_conv_shape s; /* (n, c_in, h, w, c_out, k, stride, pad) */
  size_t ws_bound;  /* the algorithms' workspace bound: 0 is none (the whole batch at once) */
} conv_case;

/* One channel, batch 1, odd sizes, both strides, 1x1 and 3x3, the 7x7/2/3 ImageNet stem,
 * c_out that is no multiple of any tile, maps that are no multiple of a Winograd tile, the
 * run-of-8 im2col kernels (rows of 8k pixels), and a bound that cuts the batch in chunks. */
static const conv_case cases[] = {
    {{1, 1, 5, 5, 1, 3, 1, 1}, 0},     {{2, 3, 7, 6, 5, 3, 2, 1}, 0},
    {{3, 4, 8, 8, 6, 1, 1, 0}, 0},     {{2, 5, 9, 9, 3, 1, 2, 0}, 0},
    {{1, 16, 32, 32, 16, 3, 1, 1}, 0}, {{2, 2, 6, 5, 3, 2, 2, 0}, 0},
    {{2, 3, 5, 7, 2, 3, 3, 2}, 0},     {{3, 2, 8, 16, 3, 3, 1, 1}, 0},
    {{2, 2, 5, 24, 3, 3, 1, 1}, 0},    {{2, 3, 7, 16, 4, 3, 2, 1}, 0},
    {{2, 3, 9, 32, 2, 1, 2, 0}, 0},    {{1, 1, 8, 8, 1, 3, 1, 1}, 0},
    {{3, 2, 4, 8, 3, 1, 1, 0}, 0},     {{2, 2, 3, 4, 3, 1, 1, 0}, 0},
    {{2, 3, 19, 17, 5, 7, 2, 3}, 0},   {{2, 7, 11, 13, 19, 3, 1, 1}, 0},
    {{3, 17, 8, 8, 33, 3, 1, 1}, 0},   {{2, 5, 7, 9, 4, 3, 1, 0}, 0},
    {{4, 6, 10, 10, 7, 3, 1, 1}, 2000}, {{5, 3, 7, 6, 4, 3, 2, 1}, 600},
    {{3, 4, 8, 8, 6, 1, 1, 0}, 1},
};
#define NCASES (sizeof cases / sizeof cases[0])

static size_t out_elems(const wrn_conv_shape *s) {
  return (size_t)s->n * s->c_out * wrn_conv_out_h(s) * wrn_conv_out_w(s);
}
static size_t in_elems(const wrn_conv_shape *s) { return (size_t)s->n * s->c_in * s->h * s->w; }
static size_t w_elems(const wrn_conv_shape *s) { return (size_t)s->c_out * s->c_in * s->k * s->k; }

/* Terms summed per output of a pass (the length of its dot products). */
static size_t terms(const wrn_conv_shape *s, wrn_conv_pass pass) {
  const size_t P = (size_t)wrn_conv_out_h(s) * wrn_conv_out_w(s);
  switch (pass) {
  case WRN_CONV_FORWARD: return (size_t)s->c_in * s->k * s->k;
  case WRN_CONV_BACKWARD_DATA: return (size_t)s->c_out * s->k * s->k + 1;
  case WRN_CONV_BACKWARD_WEIGHT: return (size_t)s->n * P + 1;
  }
  return 1;
}

/* Tolerance for a sum of L products of values in [-1, 1]. Direct sums (im2col, implicit,
 * split-K, FFT's exact-in-theory products aside) round like eps * L in the worst case we see:
 * atol 3e-7 * L is about 5 eps * L in float, 1e-15 * L about 9 eps * L in double, rtol covers
 * the final rounding of large results. Winograd's transforms multiply values by their matrix
 * entries before the sum and divide after, which amplifies the rounding: F(2x2,3x3) by
 * entries up to 1 (a small factor), F(4x4,3x3) by entries up to 8 in A and 5 in B (measured
 * 10-40x the direct error). The FFT's error grows like eps * log(size) * the input norm. The
 * measured largest errors are printed at the end, per algorithm and pass. */
static t_tol tol_for(wrn_ctx *ctx, const char *algo, const wrn_conv_shape *s,
                     wrn_conv_pass pass) {
  const double L = (double)terms(s, pass);
  double f = 1;
  if (!strncmp(algo, "winograd2", 9)) f = 4;
  else if (!strncmp(algo, "winograd4", 9)) f = 64;
  else if (!strncmp(algo, "fft", 3)) f = 16;
  return t_tol_for(ctx, (t_tol){3e-7 * L * f, 1e-6 * f}, (t_tol){1e-15 * L * f, 1e-12 * f});
}

static cl_mem nan_buffer(wrn_ctx *ctx, size_t n) {
  cl_mem m = t_zeros(ctx, n);
  WT_OK(wrn_fill(ctx, t_mem(m), NAN, n));
  return m;
}

/* Largest errors against the reference: [algorithm][dtype][pass], and the worst relative to
 * the sum length (err / L) to compare algorithms. */
#define MAX_ALGOS 16
static double largest_err[MAX_ALGOS][2][3];
static int combos_run[MAX_ALGOS][2][3];

static void note_err(int ai, wrn_ctx *ctx, wrn_conv_pass pass, const double *got,
                     const double *ref, size_t n) {
  double d = t_max_abs_diff(got, ref, n);
  int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  if (d > largest_err[ai][dt][pass]) largest_err[ai][dt][pass] = d;
  combos_run[ai][dt][pass]++;
}

/* The operands of one case, host and device copies. */
typedef struct operands {
  const wrn_conv_shape *s;
  size_t nx, ny, nw;
  double *x, *w, *dy, *add, *y0, *dx0, *dw0; /* y0/dx0/dw0: prior outputs for accumulate */
  double *ref[3];                            /* forward, backward data, backward weight */
  cl_mem X, W, DY, ADD;
} operands;

static void operands_make(operands *o, wrn_ctx *ctx, const wrn_conv_shape *s, uint64_t seed) {
  memset(o, 0, sizeof *o);
  o->s = s;
  o->nx = in_elems(s), o->ny = out_elems(s), o->nw = w_elems(s);
  double **arr[] = {&o->x, &o->w, &o->dy, &o->add, &o->y0, &o->dx0, &o->dw0};
  const size_t len[] = {o->nx, o->nw, o->ny, o->ny, o->ny, o->nx, o->nw};
  for (int i = 0; i < 7; i++) {
    *arr[i] = malloc(len[i] * sizeof(double));
    t_rand(*arr[i], len[i], -1, 1, seed + (uint64_t)i);
    t_round(ctx, *arr[i], len[i]);
  }
  o->ref[0] = malloc(o->ny * sizeof(double));
  o->ref[1] = malloc(o->nx * sizeof(double));
  o->ref[2] = malloc(o->nw * sizeof(double));
  ref_conv_forward(o->ref[0], o->x, o->w, s);
  ref_conv_backward_data(o->ref[1], o->dy, o->w, s);
  ref_conv_backward_weight(o->ref[2], o->dy, o->x, s);
  o->X = t_upload(ctx, o->x, o->nx), o->W = t_upload(ctx, o->w, o->nw);
  o->DY = t_upload(ctx, o->dy, o->ny), o->ADD = t_upload(ctx, o->add, o->ny);
}

static void operands_free(operands *o) {
  free(o->x), free(o->w), free(o->dy), free(o->add), free(o->y0), free(o->dx0), free(o->dw0);
  for (int i = 0; i < 3; i++) free(o->ref[i]);
  wrn_release(&o->X), wrn_release(&o->W), wrn_release(&o->DY), wrn_release(&o->ADD);
}

/* One choice on one pass of one case: accumulate off (output NaN first), accumulate on
 * (output holds prior values), and for the forward the fused add, each against the
 * reference. */
static void run_pass(wrn_ctx *ctx, int ai, const char *algo, const operands *o,
                     wrn_conv_pass pass, size_t bound) {
  const wrn_conv_shape *s = o->s;
  size_t ws_n = wrn_conv_algo_workspace(ctx, algo, s, pass, bound);
  if (ws_n == (size_t)-1) return; /* this choice does not fit the bound */
  if (bound) assert_true(ws_n <= bound);
  cl_mem WS = ws_n ? t_zeros(ctx, ws_n) : NULL;
  /* The workspace starts as NaN too: an algorithm must not read what it did not write. */
  if (WS) WT_OK(wrn_fill(ctx, t_mem(WS), NAN, ws_n));
  const size_t nout = pass == WRN_CONV_FORWARD ? o->ny : pass == WRN_CONV_BACKWARD_DATA ? o->nx : o->nw;
  const double *prior = pass == WRN_CONV_FORWARD ? o->y0 : pass == WRN_CONV_BACKWARD_DATA ? o->dx0 : o->dw0;
  const cl_mem A = pass == WRN_CONV_FORWARD ? o->X : o->DY;
  const cl_mem B = pass == WRN_CONV_BACKWARD_WEIGHT ? o->X : o->W;
  double *got = malloc(nout * sizeof *got);
  const t_tol tol = tol_for(ctx, algo, s, pass);
  char what[256];
  const int modes = pass == WRN_CONV_FORWARD ? 4 : 2; /* + add, + add and accumulate */
  for (int mode = 0; mode < modes; mode++) {
    const int acc = mode & 1, with_add = mode >= 2;
    cl_mem OUT = acc ? t_upload(ctx, prior, nout) : nan_buffer(ctx, nout);
    wrn_conv_io io = {t_mem(OUT), t_mem(A), t_mem(B), {with_add ? o->ADD : NULL, 0}, acc,
                      t_mem(WS), ws_n};
    WT_OK(wrn_conv_run(ctx, algo, pass, s, &io));
    t_download(ctx, got, OUT, nout);
    for (size_t i = 0; i < nout; i++) {
      if (acc) got[i] -= prior[i];
      if (with_add) got[i] -= o->add[i];
    }
    snprintf(what, sizeof what, "%s %s%s%s (%s, n=%d c_in=%d %dx%d c_out=%d k=%d s=%d p=%d ws %zu)",
             algo, wrn_conv_pass_name(pass), acc ? " accumulate" : "", with_add ? " add" : "",
             wrn_ctx_dtype(ctx) == WRN_F64 ? "double" : "float", s->n, s->c_in, s->h, s->w,
             s->c_out, s->k, s->stride, s->pad, bound);
    /* The add and the prior values are exact in the output's type only up to rounding of
     * the final sum: widen atol by one ulp of values of size 2. */
    const double slack = (acc || with_add) ? (wrn_ctx_dtype(ctx) == WRN_F64 ? 1e-15 : 5e-7) : 0;
    t_check_close(what, got, o->ref[pass], nout, tol.atol + slack, tol.rtol);
    note_err(ai, ctx, pass, got, o->ref[pass], nout);
    wrn_release(&OUT);
  }
  free(got);
  wrn_release(&WS);
}

/* Every algorithm, every pass it supports, on every case with its default parameters; every
 * parameter set it offers on the cases marked here (each variant is a separate kernel build,
 * and the first build of each costs seconds on PoCL). */
static int all_variants(size_t ci) { return ci == 1 || ci == 4 || ci == 15 || ci == 18; }

static void test_table(void **state) {
  (void)state;
  const int na = wrn_conv_algo_count();
  assert_true(na >= 1 && na <= MAX_ALGOS);
  assert_string_equal(wrn_conv_algo_name(0), "im2col");
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t ci = 0; ci < NCASES; ci++) {
      operands o;
      operands_make(&o, ctx, &cases[ci].s, 100 + 10 * ci);
      for (int ai = 0; ai < na; ai++)
        for (int pass = 0; pass < WRN_CONV_PASSES; pass++) {
          char v[16][WRN_CONV_CHOICE_MAX];
          int nv = wrn_conv_algo_variants(ctx, ai, &cases[ci].s, (wrn_conv_pass)pass, v,
                                          all_variants(ci) ? 16 : 1);
          for (int j = 0; j < nv; j++)
            run_pass(ctx, ai, v[j], &o, (wrn_conv_pass)pass, cases[ci].ws_bound);
        }
      operands_free(&o);
    }
  }
  /* im2col runs everything; every algorithm ran somewhere in float. */
  for (int pass = 0; pass < 3; pass++) assert_true(combos_run[0][0][pass] > 0);
  for (int ai = 0; ai < na; ai++) {
    int any = 0;
    for (int pass = 0; pass < 3; pass++) any += combos_run[ai][0][pass];
    if (!any) fail_msg("algorithm %s ran on none of the cases", wrn_conv_algo_name(ai));
  }
}

/* ---------------------------------------------------------------- central differences */

typedef struct grad_ctx {
  wrn_ctx *ctx;
  const char *algo;
  const wrn_conv_shape *s;
  const double *x, *w, *r; /* the fixed operands; r weighs the outputs */
  int wrt_w;               /* differentiate with respect to w (else x) */
  cl_mem WS;
  size_t ws_n;
} grad_ctx;

/* sum(r .* conv(x, w)) with the algorithm's own forward on the device. */
static double conv_scalar(const double *v, void *user) {
  grad_ctx *g = user;
  const size_t nx = in_elems(g->s), ny = out_elems(g->s), nw = w_elems(g->s);
  cl_mem X = t_upload(g->ctx, g->wrt_w ? g->x : v, nx);
  cl_mem W = t_upload(g->ctx, g->wrt_w ? v : g->w, nw);
  cl_mem Y = t_zeros(g->ctx, ny);
  wrn_conv_io io = {t_mem(Y), t_mem(X), t_mem(W), {NULL, 0}, 0, t_mem(g->WS), g->ws_n};
  WT_OK(wrn_conv_run(g->ctx, g->algo, WRN_CONV_FORWARD, g->s, &io));
  double *y = malloc(ny * sizeof *y);
  t_download(g->ctx, y, Y, ny);
  double f = 0;
  for (size_t i = 0; i < ny; i++) f += g->r[i] * y[i];
  free(y);
  wrn_release(&X), wrn_release(&W), wrn_release(&Y);
  return f;
}

static double largest_fd_err[MAX_ALGOS][2]; /* [algorithm][data, weight] */

/* Backward passes of each algorithm (default parameters) against central differences of
 * its forward, in double. f is linear in each operand, so central differences are exact but
 * for rounding: with h = 0.01 and |f| ~ 10 that is ~1e-13; atol 1e-11 leaves room. */
static void test_numeric_gradients(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  const wrn_conv_shape gs[] = {{2, 2, 5, 4, 3, 3, 2, 1}, {1, 3, 4, 5, 2, 3, 1, 1},
                               {3, 2, 5, 5, 3, 1, 2, 0}, {2, 3, 4, 3, 2, 1, 1, 0},
                               {2, 2, 3, 8, 2, 3, 1, 1}, {2, 2, 6, 6, 2, 3, 1, 1},
                               {1, 2, 9, 9, 2, 7, 2, 3}};
  for (int ai = 0; ai < wrn_conv_algo_count(); ai++)
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
      const wrn_conv_shape *s = &gs[i];
      char fwd[1][WRN_CONV_CHOICE_MAX], bd[1][WRN_CONV_CHOICE_MAX], bw[1][WRN_CONV_CHOICE_MAX];
      if (wrn_conv_algo_variants(ctx, ai, s, WRN_CONV_FORWARD, fwd, 1) < 1) continue;
      const int has_bd = wrn_conv_algo_variants(ctx, ai, s, WRN_CONV_BACKWARD_DATA, bd, 1);
      const int has_bw = wrn_conv_algo_variants(ctx, ai, s, WRN_CONV_BACKWARD_WEIGHT, bw, 1);
      const size_t nx = in_elems(s), ny = out_elems(s), nw = w_elems(s);
      double *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *r = malloc(ny * sizeof *r);
      double *num = malloc((nx > nw ? nx : nw) * sizeof *num);
      double *got = malloc((nx > nw ? nx : nw) * sizeof *got);
      t_rand(x, nx, -1, 1, 500 + i), t_rand(w, nw, -1, 1, 600 + i), t_rand(r, ny, -1, 1, 700 + i);
      size_t ws_n = 0;
      for (int p = 0; p < 3; p++) {
        const char *c = p == 0 ? fwd[0] : p == 1 ? bd[0] : bw[0];
        if ((p == 1 && !has_bd) || (p == 2 && !has_bw)) continue;
        size_t need = wrn_conv_algo_workspace(ctx, c, s, (wrn_conv_pass)p, 0);
        if (need != (size_t)-1 && need > ws_n) ws_n = need;
      }
      grad_ctx g = {ctx, fwd[0], s, x, w, r, 0, ws_n ? t_zeros(ctx, ws_n) : NULL, ws_n};
      cl_mem R = t_upload(ctx, r, ny), X = t_upload(ctx, x, nx), W = t_upload(ctx, w, nw);
      const double h = 1e-2;
      char what[400];
      if (has_bd) {
        t_numeric_grad(conv_scalar, x, nx, h, num, &g);
        cl_mem DX = t_zeros(ctx, nx);
        wrn_conv_io io = {t_mem(DX), t_mem(R), t_mem(W), {NULL, 0}, 0, t_mem(g.WS), ws_n};
        WT_OK(wrn_conv_run(ctx, bd[0], WRN_CONV_BACKWARD_DATA, s, &io));
        t_download(ctx, got, DX, nx);
        snprintf(what, sizeof what, "%s backward data vs central differences of %s", bd[0], fwd[0]);
        t_check_close(what, got, num, nx, 1e-11, 1e-11);
        double d = t_max_abs_diff(got, num, nx);
        if (d > largest_fd_err[ai][0]) largest_fd_err[ai][0] = d;
        wrn_release(&DX);
      }
      if (has_bw) {
        g.wrt_w = 1;
        t_numeric_grad(conv_scalar, w, nw, h, num, &g);
        cl_mem DW = t_zeros(ctx, nw);
        wrn_conv_io io = {t_mem(DW), t_mem(R), t_mem(X), {NULL, 0}, 0, t_mem(g.WS), ws_n};
        WT_OK(wrn_conv_run(ctx, bw[0], WRN_CONV_BACKWARD_WEIGHT, s, &io));
        t_download(ctx, got, DW, nw);
        snprintf(what, sizeof what, "%s backward weight vs central differences of %s", bw[0], fwd[0]);
        t_check_close(what, got, num, nw, 1e-11, 1e-11);
        double d = t_max_abs_diff(got, num, nw);
        if (d > largest_fd_err[ai][1]) largest_fd_err[ai][1] = d;
        wrn_release(&DW);
      }
      wrn_release(&R), wrn_release(&X), wrn_release(&W), wrn_release(&g.WS);
      free(x), free(w), free(r), free(num), free(got);
    }
}

/* ---------------------------------------------------------------- chunking */

/* Bounds that split the batch agree with the whole batch (to rounding: GEMM shapes and so
 * summation orders differ), for every algorithm; and the im2col sizing function. */
static void test_chunks(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const wrn_conv_shape s = {4, 3, 9, 8, 5, 3, 1, 1};
  const size_t P = 72, K = 27, per_img = P * (K + 5);
  assert_int_equal(wrn_conv_workspace(&s, 0), s.n * per_img);
  assert_int_equal(wrn_conv_workspace(&s, per_img * 5 / 2), 2 * per_img);
  assert_int_equal(wrn_conv_workspace(&s, 1), K * P); /* one image, which needs no mat */
  const wrn_conv_shape pw = {3, 4, 8, 8, 6, 1, 1, 0};
  assert_int_equal(wrn_conv_workspace(&pw, 1), 0); /* 1x1 stride 1 of one image: none */
  operands o;
  operands_make(&o, ctx, &s, 77);
  for (int ai = 0; ai < wrn_conv_algo_count(); ai++)
    for (int pass = 0; pass < 3; pass++) {
      char v[1][WRN_CONV_CHOICE_MAX];
      if (wrn_conv_algo_variants(ctx, ai, &s, (wrn_conv_pass)pass, v, 1) < 1) continue;
      const size_t whole = wrn_conv_algo_workspace(ctx, v[0], &s, (wrn_conv_pass)pass, 0);
      /* Half of it, and the least the algorithm accepts (found by halving). */
      size_t least = whole;
      while (least > 1 &&
             wrn_conv_algo_workspace(ctx, v[0], &s, (wrn_conv_pass)pass, least / 2) != (size_t)-1)
        least /= 2;
      run_pass(ctx, ai, v[0], &o, (wrn_conv_pass)pass, whole / 2 ? whole / 2 : 0);
      run_pass(ctx, ai, v[0], &o, (wrn_conv_pass)pass, least);
    }
  operands_free(&o);
}

/* ---------------------------------------------------------------- the tuner */

/* The tuner picks a supported choice, stores it in the cache folder, finds it there from a
 * fresh context without measuring, ignores a damaged store, and honours WRN_CONV_ALGO. */
static void test_tuner(void **state) {
  (void)state;
  char dir[] = "/tmp/wrn-tune-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  const char *old_xdg = getenv("XDG_CACHE_HOME");
  char *saved = old_xdg ? strdup(old_xdg) : NULL;
  setenv("XDG_CACHE_HOME", dir, 1);
  unsetenv("WRN_CONV_ALGO");
  wrn_device_info dev = *wrn_ctx_device(t_ctx32());
  wrn_ctx_options opt = {0};
  const wrn_conv_shape s = {2, 4, 8, 8, 6, 3, 1, 1};
  char c1[WRN_CONV_CHOICE_MAX], c2[WRN_CONV_CHOICE_MAX];
  int measured = -1;
  for (int round = 0; round < 2; round++) {
    wrn_ctx *ctx = NULL;
    WT_OK(wrn_ctx_open(&ctx, &dev, &opt));
    WT_OK(wrn_conv_choose(ctx, &s, WRN_CONV_FORWARD, 0, round ? c2 : c1, sizeof c1, &measured));
    assert_int_equal(measured, round == 0); /* timed once, then read from the store */
    assert_true(wrn_conv_algo_supports(ctx, round ? c2 : c1, &s, WRN_CONV_FORWARD));
    /* The same context asks its memory. */
    WT_OK(wrn_conv_choose(ctx, &s, WRN_CONV_FORWARD, 0, c2, sizeof c2, &measured));
    assert_int_equal(measured, 0);
    assert_string_equal(c1, c2);
    wrn_ctx_free(ctx);
  }
  /* Damage every line of the store: the next context measures again, and rewrites it. */
  char path[512] = "";
  char cmd[700];
  snprintf(cmd, sizeof cmd, "ls %s/wrn/tune-*.txt", dir);
  FILE *ls = popen(cmd, "r");
  assert_non_null(ls);
  assert_non_null(fgets(path, sizeof path, ls));
  pclose(ls);
  path[strcspn(path, "\n")] = '\0';
  snprintf(cmd, sizeof cmd, "sed -i 's/\\t[0-9a-f]*$/\\t0123456789abcdef/' %s", path);
  assert_int_equal(system(cmd), 0);
  wrn_ctx *ctx = NULL;
  WT_OK(wrn_ctx_open(&ctx, &dev, &opt));
  WT_OK(wrn_conv_choose(ctx, &s, WRN_CONV_FORWARD, 0, c2, sizeof c2, &measured));
  assert_int_equal(measured, 1);
  /* Forcing: a supported algorithm is used as asked, an unsupported one falls back to im2col,
   * a malformed one is refused with a message naming the variable. */
  setenv("WRN_CONV_ALGO", "im2col", 1);
  WT_OK(wrn_conv_choose(ctx, &s, WRN_CONV_BACKWARD_WEIGHT, 0, c2, sizeof c2, &measured));
  assert_string_equal(c2, "im2col");
  assert_int_equal(measured, 0);
  setenv("WRN_CONV_ALGO", "no-such-algo", 1);
  assert_int_equal(wrn_conv_choose(ctx, &s, WRN_CONV_FORWARD, 0, c2, sizeof c2, NULL),
                   WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "WRN_CONV_ALGO"));
  unsetenv("WRN_CONV_ALGO");
  wrn_ctx_free(ctx);
  /* WRN_NO_CACHE: nothing is read, so it measures, and nothing is written. */
  t_rm_tree(dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  setenv("WRN_NO_CACHE", "1", 1);
  WT_OK(wrn_ctx_open(&ctx, &dev, &opt));
  WT_OK(wrn_conv_choose(ctx, &s, WRN_CONV_FORWARD, 0, c2, sizeof c2, &measured));
  assert_int_equal(measured, 1);
  wrn_ctx_free(ctx);
  unsetenv("WRN_NO_CACHE");
  snprintf(cmd, sizeof cmd, "%s/wrn", dir);
  struct stat st;
  if (stat(cmd, &st) == 0) {
    snprintf(cmd, sizeof cmd, "ls %s/wrn | grep -c tune- >/dev/null", dir);
    assert_int_not_equal(system(cmd), 0);
  }
  t_rm_tree(dir);
  if (saved) setenv("XDG_CACHE_HOME", saved, 1);
  else unsetenv("XDG_CACHE_HOME");
  free(saved);
}

/* ---------------------------------------------------------------- arguments */

static void expect_status(wrn_status got, wrn_status want, const char *fn, const char *what) {
  assert_int_equal(got, want);
  if (!strstr(wrn_last_error(), fn) || !strstr(wrn_last_error(), what))
    fail_msg("message '%s' should name %s and %s", wrn_last_error(), fn, what);
}
static void expect_invalid(wrn_status st, const char *fn, const char *what) {
  expect_status(st, WRN_STATUS_INVALID_ARGUMENT, fn, what);
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
      {{2, 3, 6, 6, 4, 0, 1, 1}, "kernel 0"},  {{2, 3, 6, 6, 4, 3, 0, 1}, "stride 0"},
      {{2, 3, 6, 6, 4, 3, 1, -1}, "pad -1"},   {{2, 3, 2, 6, 4, 5, 1, 0}, "output < 1"},
      {{0, 3, 6, 6, 4, 3, 1, 1}, "n=0"},       {{2, 0, 6, 6, 4, 3, 1, 1}, "c_in=0"},
      {{2, 3, 6, 6, -4, 3, 1, 1}, "c_out=-4"}, {{2, 3, 6, 0, 4, 3, 1, 1}, "w=0"},
  };
  cl_mem B = t_zeros(ctx, 4096);
  wrn_mem m = t_mem(B), none = {NULL, 0};
  const wrn_conv_io io_ok = {m, m, m, none, 0, m, 4096};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const wrn_conv_shape *s = &bad[i].s;
    assert_int_equal(wrn_conv_out_h(s), -1);
    assert_int_equal(wrn_conv_out_w(s), -1);
    assert_int_equal(wrn_conv_workspace(s, 0), 0);
    expect_invalid(wrn_conv_check(s), "conv", bad[i].what);
    for (int pass = 0; pass < 3; pass++)
      expect_invalid(wrn_conv_run(ctx, "im2col", (wrn_conv_pass)pass, s, &io_ok), "conv_run",
                     bad[i].what);
    expect_invalid(wrn_conv_choose(ctx, s, WRN_CONV_FORWARD, 0, (char[64]){0}, 64, NULL), "conv",
                   bad[i].what);
    for (int ai = 0; ai < wrn_conv_algo_count(); ai++) {
      assert_int_equal(wrn_conv_algo_supports(ctx, wrn_conv_algo_name(ai), s, WRN_CONV_FORWARD), 0);
      assert_true(wrn_conv_algo_workspace(ctx, wrn_conv_algo_name(ai), s, WRN_CONV_FORWARD, 0) ==
                  (size_t)-1);
    }
  }
  assert_int_equal(wrn_conv_out_h(NULL), -1);
  expect_invalid(wrn_conv_check(NULL), "conv", "NULL shape");
  expect_invalid(wrn_conv_run(ctx, "im2col", WRN_CONV_FORWARD, NULL, &io_ok), "conv_run", "NULL shape");
  expect_invalid(wrn_conv_run(ctx, "im2col", WRN_CONV_FORWARD, &good, NULL), "conv_run", "NULL");

  static const char *names[3][3] = {{"(y)", "(x)", "(w)"}, {"(dx)", "(dy)", "(w)"},
                                    {"(dw)", "(dy)", "(x)"}};
  for (int pass = 0; pass < 3; pass++)
    for (int j = 0; j < 3; j++) {
      wrn_conv_io io = io_ok;
      if (j == 0) io.out = none;
      if (j == 1) io.a = none;
      if (j == 2) io.b = none;
      expect_invalid(wrn_conv_run(ctx, "im2col", (wrn_conv_pass)pass, &good, &io), "conv_run",
                     names[pass][j]);
    }
  wrn_conv_io io = io_ok;
  io.add = m;
  expect_invalid(wrn_conv_run(ctx, "im2col", WRN_CONV_BACKWARD_DATA, &good, &io), "conv_run",
                 "forward pass only");
  io = io_ok;
  io.accumulate = 2;
  expect_invalid(wrn_conv_run(ctx, "im2col", WRN_CONV_FORWARD, &good, &io), "conv_run",
                 "accumulate");
  expect_invalid(wrn_conv_run(ctx, "im2col", (wrn_conv_pass)3, &good, &io_ok), "conv_run", "pass 3");
  /* Choices that are not choices. */
  const char *malformed[] = {"nope", "im2col:", "im2col:TM", "im2col:TM=", "im2col:TM=x",
                             "im2col:tm=4", "im2col:TM=4,", "im2col:TM=-1", "winograd4:TM=4=5"};
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    assert_int_equal(wrn_conv_algo_supports(ctx, malformed[i], &good, WRN_CONV_FORWARD), 0);
    expect_invalid(wrn_conv_run(ctx, malformed[i], WRN_CONV_FORWARD, &good, &io_ok), "conv_run",
                   "not an algorithm choice");
  }
  /* im2col takes no parameters. */
  assert_int_equal(wrn_conv_algo_supports(ctx, "im2col:TM=4", &good, WRN_CONV_FORWARD), 0);
  expect_status(wrn_conv_run(ctx, "im2col:TM=4", WRN_CONV_FORWARD, &good, &io_ok),
                WRN_STATUS_UNSUPPORTED, "conv_run", "does not support");

  /* One image of this shape needs K*P = 27*36 = 972 elements. */
  assert_int_equal(wrn_conv_workspace(&good, 1), 972);
  io = io_ok;
  io.ws_elems = 971;
  expect_invalid(wrn_conv_run(ctx, "im2col", WRN_CONV_FORWARD, &good, &io), "conv_run", "too small");
  io.ws = none;
  expect_invalid(wrn_conv_run(ctx, "im2col", WRN_CONV_BACKWARD_WEIGHT, &good, &io), "conv_run",
                 "NULL buffer");
  /* The fixed-algorithm wrappers go through the same checks. */
  expect_invalid(wrn_conv_forward(ctx, none, m, m, &good, m, 4096), "conv_run", "(y)");
  expect_invalid(wrn_conv_backward_data(ctx, m, m, m, &good, m, 100, 0), "conv_run", "too small");
  wrn_release(&B);
}

/* The profile counts 2*c_out*K*n*P FLOPs per pass, for each algorithm. */
static void test_profile(void **state) {
  (void)state;
  wrn_device_info dev = *wrn_ctx_device(t_ctx32());
  wrn_ctx_options o = {0};
  o.profile = 1;
  wrn_ctx *ctx = NULL;
  WT_OK(wrn_ctx_open(&ctx, &dev, &o));
  const wrn_conv_shape s = {3, 4, 6, 6, 5, 3, 1, 1};
  const double flops = 2.0 * 5 * (4 * 9) * 3 * 36;
  cl_mem X = t_zeros(ctx, in_elems(&s)), Y = t_zeros(ctx, out_elems(&s)),
         W = t_zeros(ctx, w_elems(&s));
  for (int ai = 0; ai < wrn_conv_algo_count(); ai++)
    for (int pass = 0; pass < 3; pass++) {
      char v[1][WRN_CONV_CHOICE_MAX];
      if (wrn_conv_algo_variants(ctx, ai, &s, (wrn_conv_pass)pass, v, 1) < 1) continue;
      size_t ws_n = wrn_conv_algo_workspace(ctx, v[0], &s, (wrn_conv_pass)pass, 0);
      cl_mem WS = ws_n ? t_zeros(ctx, ws_n) : NULL;
      const cl_mem out = pass == 0 ? Y : pass == 1 ? X : W, a = pass == 0 ? X : Y,
                   b = pass == 2 ? X : W;
      wrn_conv_io io = {t_mem(out), t_mem(a), t_mem(b), {NULL, 0}, 0, t_mem(WS), ws_n};
      wrn_profile p;
      WT_OK(wrn_profile_collect(ctx, NULL));
      memset(&p, 0, sizeof p);
      WT_OK(wrn_conv_run(ctx, v[0], (wrn_conv_pass)pass, &s, &io));
      WT_OK(wrn_profile_collect(ctx, &p));
      const wrn_op_cat cat = pass == 0 ? WRN_CAT_CONV_FWD
                             : pass == 1 ? WRN_CAT_CONV_BWD_DATA
                                         : WRN_CAT_CONV_BWD_WEIGHT;
      if (p.flops[cat] != flops)
        fail_msg("%s %s: profile counts %.0f FLOPs, want %.0f", v[0],
                 wrn_conv_pass_name((wrn_conv_pass)pass), p.flops[cat], flops);
      assert_true(p.launches[cat] >= 1);
      wrn_release(&WS);
    }
  wrn_release(&X), wrn_release(&Y), wrn_release(&W);
  wrn_ctx_free(ctx);
}

static int teardown(void **state) {
  (void)state;
  printf("largest |result - reference| per algorithm (float | double), forward / backward "
         "data / backward weight:\n");
  for (int ai = 0; ai < wrn_conv_algo_count(); ai++)
    printf("  %-10s %.3g / %.3g / %.3g | %.3g / %.3g / %.3g (cases %d/%d/%d); double vs "
           "central differences: data %.3g, weight %.3g\n",
           wrn_conv_algo_name(ai), largest_err[ai][0][0], largest_err[ai][0][1],
           largest_err[ai][0][2], largest_err[ai][1][0], largest_err[ai][1][1],
           largest_err[ai][1][2], combos_run[ai][0][0], combos_run[ai][0][1],
           combos_run[ai][0][2], largest_fd_err[ai][0], largest_fd_err[ai][1]);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  /* The suite measures nothing: every choice is explicit, and the tuner test uses a cache
   * folder of its own. */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),   cmocka_unit_test(test_numeric_gradients),
      cmocka_unit_test(test_chunks),  cmocka_unit_test(test_tuner),
      cmocka_unit_test(test_bad_args), cmocka_unit_test(test_profile),
  };
  return WT_RUN_GROUP("conv", tests, NULL, teardown);
}
