/* Average and max pooling: forward and backward against the naive scatter-form reference in
 * float and double, both accumulate modes, ties and all-negative inputs for max pooling,
 * central differences in double, bad shapes. */
#include "harness.h"
#include "ref_pool.h"

#include <math.h>
#include <string.h>

/* n, c, h, w, k, stride, pad */
static const wrn_pool_shape shapes[] = {
    {3, 5, 8, 8, 8, 1, 0},     /* the WRN head: global 8x8 */
    {2, 3, 7, 7, 7, 1, 0},     /* global, odd */
    {2, 3, 5, 5, 5, 2, 0},     /* global with a stride (still one window) */
    {1, 1, 1, 1, 1, 1, 0},     /* one element */
    {2, 3, 9, 11, 3, 2, 1},    /* ImageNet stem window, odd sizes */
    {1, 2, 16, 16, 3, 2, 1},   /* stem window, even */
    {2, 2, 8, 8, 2, 2, 0},     /* k=2 s2 */
    {1, 3, 7, 9, 2, 2, 0},     /* k=2 s2, odd: last row/column dropped */
    {2, 1, 5, 6, 3, 1, 1},     /* heavy overlap */
    {1, 2, 10, 7, 4, 3, 2},    /* pad 2, stride 3 */
    {5, 7, 17, 13, 5, 2, 2},   /* several work-groups of outputs, odd everything */
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

enum { AVG, MAX };
/* Input kinds for max pooling: distinct values, small integers (many ties), all negative
 * (so padding, if it counted as 0, would win). */
enum { DISTINCT, TIES, NEGATIVE };

static double worst_f32, worst_f64, worst_num;

static void track(double *w, const double *got, const double *ref, size_t n) {
  double d = t_max_abs_diff(got, ref, n);
  if (d > *w) *w = d;
}

static void fill_x(double *x, size_t n, int kind, uint64_t seed) {
  t_rand(x, n, -1, 1, seed);
  for (size_t i = 0; i < n; i++) {
    if (kind == TIES) x[i] = floor(3 * x[i]);
    if (kind == NEGATIVE) x[i] = -1.5 + 0.5 * x[i];
  }
}

static void pool_case(wrn_ctx *ctx, int op, const wrn_pool_shape *s, int kind) {
  int planes = s->n * s->c;
  int oh = ref_pool_out(s->h, s->k, s->stride, s->pad),
      ow = ref_pool_out(s->w, s->k, s->stride, s->pad);
  assert_int_equal(wrn_pool_out_h(s), oh);
  assert_int_equal(wrn_pool_out_w(s), ow);
  size_t nin = (size_t)planes * s->h * s->w, nout = (size_t)planes * oh * ow;
  double *x = malloc(nin * sizeof *x), *y = malloc(nout * sizeof *y),
         *ry = malloc(nout * sizeof *ry), *dy = malloc(nout * sizeof *dy),
         *dx0 = malloc(nin * sizeof *dx0), *dx = malloc(nin * sizeof *dx),
         *rdx = malloc(nin * sizeof *rdx);
  fill_x(x, nin, kind, nin + (uint64_t)kind);
  t_rand(dy, nout, -1, 1, nout + 5);
  t_rand(dx0, nin, -1, 1, nin + 6);
  t_round(ctx, x, nin), t_round(ctx, dy, nout), t_round(ctx, dx0, nin);
  cl_mem X = t_upload(ctx, x, nin), Y = t_zeros(ctx, nout), DY = t_upload(ctx, dy, nout);
  if (op == AVG) {
    WT_OK(wrn_avgpool_forward(ctx, t_mem(Y), t_mem(X), s));
    ref_avgpool_forward(ry, x, planes, s->h, s->w, s->k, s->stride, s->pad);
  } else {
    WT_OK(wrn_maxpool_forward(ctx, t_mem(Y), t_mem(X), s));
    ref_maxpool_forward(ry, NULL, x, planes, s->h, s->w, s->k, s->stride, s->pad);
  }
  t_download(ctx, y, Y, nout);
  int f64 = wrn_ctx_dtype(ctx) == WRN_F64;
  /* Float average: a sum of at most 64 values of size 1 then one scaling: ~1e-6 relative,
   * with 1e-6 absolute for sums near 0. Max pooling selects a value: exact. Double: 1e-14. */
  t_tol tf = op == MAX ? (t_tol){0, 0}
                       : t_tol_for(ctx, (t_tol){1e-6, 1e-6}, (t_tol){1e-14, 1e-14});
  t_check_close(op == AVG ? "avgpool y" : "maxpool y", y, ry, nout, tf.atol, tf.rtol);
  track(f64 ? &worst_f64 : &worst_f32, y, ry, nout);
  /* Backward sums at most ceil(k/stride)^2 (<= 9 here) gradients of size 1: 1e-6 in float. */
  t_tol tb = t_tol_for(ctx, (t_tol){1e-6, 1e-6}, (t_tol){1e-14, 1e-14});
  for (int acc = 0; acc < 2; acc++) {
    cl_mem DX = t_upload(ctx, dx0, nin);
    memcpy(rdx, dx0, nin * sizeof *rdx);
    if (op == AVG) {
      WT_OK(wrn_avgpool_backward(ctx, t_mem(DX), t_mem(DY), s, acc));
      ref_avgpool_backward(rdx, dy, planes, s->h, s->w, s->k, s->stride, s->pad, acc);
    } else {
      WT_OK(wrn_maxpool_backward(ctx, t_mem(DX), t_mem(DY), t_mem(X), s, acc));
      ref_maxpool_backward(rdx, dy, x, planes, s->h, s->w, s->k, s->stride, s->pad, acc);
    }
    t_download(ctx, dx, DX, nin);
    t_check_close(op == AVG ? "avgpool dx" : "maxpool dx", dx, rdx, nin, tb.atol, tb.rtol);
    track(f64 ? &worst_f64 : &worst_f32, dx, rdx, nin);
    wrn_release(&DX);
  }
  wrn_release(&X), wrn_release(&Y), wrn_release(&DY);
  free(x), free(y), free(ry), free(dy), free(dx0), free(dx), free(rdx);
}

static void test_pool_reference(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t i = 0; i < NSHAPES; i++) {
      pool_case(ctx, AVG, &shapes[i], DISTINCT);
      for (int kind = DISTINCT; kind <= NEGATIVE; kind++)
        pool_case(ctx, MAX, &shapes[i], kind);
    }
  }
}

/* The WRN-28-10 head at a batch of 16 (640 channels, 8x8): many planes per work-group. */
static void test_pool_global_large(void **state) {
  (void)state;
  wrn_pool_shape s = {16, 640, 8, 8, 8, 1, 0};
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    pool_case(ctx, AVG, &s, DISTINCT);
  }
}

/* ---------------------------------------------------------------- central differences */

typedef struct fd_ctx {
  wrn_ctx *ctx;
  const wrn_pool_shape *s;
  int op;
  cl_mem X, Y;
  const double *r;
  double *y;
  size_t nin, nout;
} fd_ctx;

static double fd_loss(const double *x, void *user) {
  fd_ctx *f = user;
  WT_OK(wrn_write(f->ctx, t_mem(f->X), x, f->nin));
  if (f->op == AVG) WT_OK(wrn_avgpool_forward(f->ctx, t_mem(f->Y), t_mem(f->X), f->s));
  else WT_OK(wrn_maxpool_forward(f->ctx, t_mem(f->Y), t_mem(f->X), f->s));
  t_download(f->ctx, f->y, f->Y, f->nout);
  double l = 0;
  for (size_t i = 0; i < f->nout; i++) l += f->r[i] * f->y[i];
  return l;
}

static void test_pool_numeric(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  static const size_t pick[] = {1, 4, 7, 8, 9};
  for (size_t pi = 0; pi < sizeof pick / sizeof pick[0]; pi++) {
    const wrn_pool_shape *s = &shapes[pick[pi]];
    size_t nin = (size_t)s->n * s->c * s->h * s->w,
           nout = (size_t)s->n * s->c * wrn_pool_out_h(s) * wrn_pool_out_w(s);
    for (int op = AVG; op <= MAX; op++) {
      double *x = malloc(nin * sizeof *x), *r = malloc(nout * sizeof *r),
             *y = malloc(nout * sizeof *y), *num = malloc(nin * sizeof *num),
             *got = malloc(nin * sizeof *got);
      /* Distinct random values: the gaps (~1e-3 and up) dwarf the step, so max pooling is
       * differentiable at every point probed. */
      fill_x(x, nin, DISTINCT, 900 + nin);
      t_rand(r, nout, -1, 1, 901 + nout);
      fd_ctx f = {ctx, s, op, t_upload(ctx, x, nin), t_zeros(ctx, nout), r, y, nin, nout};
      cl_mem DY = t_upload(ctx, r, nout), DX = t_zeros(ctx, nin);
      if (op == AVG) WT_OK(wrn_avgpool_backward(ctx, t_mem(DX), t_mem(DY), s, 0));
      else WT_OK(wrn_maxpool_backward(ctx, t_mem(DX), t_mem(DY), t_mem(f.X), s, 0));
      t_download(ctx, got, DX, nin);
      /* Piecewise linear: central differences with h = 1e-6 are exact up to cancellation,
       * ~1e-16 * |loss| (~10) / 1e-6 = 1e-9. */
      t_numeric_grad(fd_loss, x, nin, 1e-6, num, &f);
      t_check_close(op == AVG ? "avgpool dx vs central differences"
                              : "maxpool dx vs central differences",
                    got, num, nin, 1e-8, 1e-7);
      track(&worst_num, got, num, nin);
      wrn_release(&f.X), wrn_release(&f.Y), wrn_release(&DY), wrn_release(&DX);
      free(x), free(r), free(y), free(num), free(got);
    }
  }
}

/* ---------------------------------------------------------------- bad shapes and buffers */

static void expect_bad(wrn_status s, const char *fn, const char *what) {
  assert_int_equal(s, WRN_STATUS_INVALID_ARGUMENT);
  if (!strstr(wrn_last_error(), fn) || !strstr(wrn_last_error(), what))
    fail_msg("message '%s' should name %s and %s", wrn_last_error(), fn, what);
}

static void test_pool_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  cl_mem M = t_zeros(ctx, 256);
  wrn_mem m = t_mem(M), none = {NULL, 0};
  wrn_pool_shape ok = {1, 2, 4, 4, 2, 2, 0};
  wrn_pool_shape pad_k = {1, 2, 4, 4, 2, 2, 2}, too_big = {1, 2, 4, 4, 7, 1, 1},
                 stride0 = {1, 2, 4, 4, 2, 0, 0}, n0 = {0, 2, 4, 4, 2, 2, 0},
                 w_neg = {1, 2, 4, -4, 2, 2, 0};
  assert_int_equal(wrn_pool_out_h(&ok), 2);
  assert_int_equal(wrn_pool_out_h(&pad_k), -1);
  assert_int_equal(wrn_pool_out_w(&too_big), -1);
  assert_int_equal(wrn_pool_out_h(NULL), -1);
  expect_bad(wrn_avgpool_forward(ctx, m, m, &pad_k), "avgpool_forward", "pad=2");
  expect_bad(wrn_avgpool_forward(ctx, m, m, &too_big), "avgpool_forward", "empty");
  expect_bad(wrn_avgpool_forward(ctx, m, m, NULL), "avgpool_forward", "shape");
  expect_bad(wrn_avgpool_backward(ctx, m, none, &ok, 0), "avgpool_backward", "dy");
  expect_bad(wrn_avgpool_backward(ctx, m, m, &ok, 2), "avgpool_backward", "accumulate");
  expect_bad(wrn_maxpool_forward(ctx, none, m, &ok), "maxpool_forward", "y");
  expect_bad(wrn_maxpool_forward(ctx, m, m, &stride0), "maxpool_forward", "stride=0");
  expect_bad(wrn_maxpool_forward(ctx, m, m, &n0), "maxpool_forward", "n=0");
  expect_bad(wrn_maxpool_backward(ctx, m, m, none, &ok, 0), "maxpool_backward", "x");
  expect_bad(wrn_maxpool_backward(ctx, m, m, m, &w_neg, 0), "maxpool_backward", "w=-4");
  expect_bad(wrn_maxpool_backward(ctx, m, m, m, &ok, -1), "maxpool_backward", "accumulate");
  wrn_release(&M);
}

static int teardown(void **state) {
  (void)state;
  print_message("pool largest |error|: f32 vs reference %.3g, f64 vs reference %.3g, f64 vs "
                "central differences %.3g\n",
                worst_f32, worst_f64, worst_num);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_reference),
      cmocka_unit_test(test_pool_global_large),
      cmocka_unit_test(test_pool_numeric),
      cmocka_unit_test(test_pool_bad_args),
  };
  return WT_RUN_GROUP("pool", tests, NULL, teardown);
}
