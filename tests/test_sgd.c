/* SGD step against a double reference over several steps (first_step on the first only),
 * Nesterov on and off, weight decay 0 and 5e-4, sizes that are not multiples of the
 * work-group size, buffers at offsets inside one flat buffer; refused arguments. */
#include "harness.h"
#include "ref_sgd.h"

#include <math.h>
#include <string.h>

enum { STEPS = 4 };

static double worst[2]; /* largest |theta - ref| or |v - ref| per real type */

/* wrn_write takes the context's real type: convert the test's doubles first. */
static void write_reals(wrn_ctx *ctx, wrn_mem dst, const double *x, size_t n) {
  if (wrn_ctx_dtype(ctx) == WRN_F64) {
    WT_OK(wrn_write(ctx, dst, x, n));
    return;
  }
  float *f = malloc(n * sizeof *f);
  assert_non_null(f);
  for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
  WT_OK(wrn_write(ctx, dst, f, n));
  free(f);
}

/* param, grad and mom live in one buffer at offsets off, off + n + 3, off + 2n + 9, as the
 * trainer's flat buffers do, so that a lost offset or a write past n shows. */
static void sgd_case(wrn_ctx *ctx, size_t n, int nesterov, double wd, double mu) {
  size_t off = 5, po = off, go = off + n + 3, vo = off + 2 * n + 9, total = vo + n + 4;
  double *buf = malloc(total * sizeof *buf), *th = malloc(n * sizeof *th),
         *v = malloc(n * sizeof *v), *g = malloc(n * sizeof *g), *got = malloc(total * sizeof *got);
  assert_true(buf && th && v && g && got);
  t_rand(buf, total, -1, 1, 1000 + n);
  t_round(ctx, buf, total);
  /* The momentum buffer starts as NaN: the first step must not read it. */
  for (size_t i = 0; i < n; i++) buf[vo + i] = NAN;
  memcpy(th, buf + po, n * sizeof *th);
  cl_mem B = t_upload(ctx, buf, total);
  wrn_mem bm = t_mem(B);
  wrn_sgd o = {0.1, mu, wd, nesterov, 1};
  /* Each step compounds one rounding of g, v and theta (values ~1, lr 0.1): in float the
   * device drifts from the double reference by a few ulps per step, under 1e-6 relative after
   * 4 steps; v grows to ~1/(1-mu) of g, so atol 2e-6. Double: 1e-14. */
  t_tol tol = t_tol_for(ctx, (t_tol){2e-6, 2e-6}, (t_tol){1e-14, 1e-14});
  for (int s = 0; s < STEPS; s++) {
    t_rand(g, n, -1, 1, 2000 + 17 * n + s);
    t_round(ctx, g, n);
    write_reals(ctx, wrn_mem_at(bm, go), g, n);
    o.first_step = s == 0;
    WT_OK(wrn_sgd_step(ctx, wrn_mem_at(bm, po), wrn_mem_at(bm, go), wrn_mem_at(bm, vo), n, &o));
    ref_sgd_step(th, g, v, n, o.lr, o.momentum, o.weight_decay, nesterov, o.first_step);
    t_download(ctx, got, B, total);
    t_check_close("theta", got + po, th, n, tol.atol, tol.rtol);
    t_check_close("momentum", got + vo, v, n, tol.atol, tol.rtol);
    int dt = wrn_ctx_dtype(ctx) == WRN_F64;
    double d1 = t_max_abs_diff(got + po, th, n), d2 = t_max_abs_diff(got + vo, v, n);
    if (d1 > worst[dt]) worst[dt] = d1;
    if (d2 > worst[dt]) worst[dt] = d2;
  }
  /* Nothing outside the three spans was written. */
  t_check_close("head", got, buf, off, 0, 0);
  t_check_close("gap 1", got + po + n, buf + po + n, go - po - n, 0, 0);
  t_check_close("gap 2", got + go + n, buf + go + n, vo - go - n, 0, 0);
  t_check_close("tail", got + vo + n, buf + vo + n, total - vo - n, 0, 0);
  wrn_release(&B);
  free(buf), free(th), free(v), free(g), free(got);
}

static void test_vs_ref(void **state) {
  (void)state;
  static const size_t sizes[] = {1, 255, 257, 4099};
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int nest = 0; nest < 2; nest++)
        for (int w = 0; w < 2; w++) sgd_case(ctx, sizes[s], nest, w ? 5e-4 : 0, 0.9);
    sgd_case(ctx, 300, 1, 5e-4, 0); /* no momentum: plain SGD with decay */
    print_message("  %s: largest |theta, v - ref| after %d steps %.3g\n",
                  dt ? "double" : "float", STEPS, worst[dt]);
  }
}

/* The recipe's update written out by hand for one parameter, so that the reference itself is
 * checked: theta = 1, grads 0.5 then -0.25, lr 0.1, mu 0.9, wd 0.01, Nesterov. */
static void test_hand_values(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  double th = 1, one = 1;
  cl_mem P = t_upload(ctx, &one, 1), G = t_zeros(ctx, 1), V = t_zeros(ctx, 1);
  wrn_sgd o = {0.1, 0.9, 0.01, 1, 1};
  double g1 = 0.5 + 0.01 * 1; /* 0.51 */
  double v1 = g1;
  th -= 0.1 * (g1 + 0.9 * v1); /* 1 - 0.1 * 0.969 = 0.9031 */
  double grad = 0.5;
  WT_OK(wrn_write(ctx, t_mem(G), &grad, 1));
  WT_OK(wrn_sgd_step(ctx, t_mem(P), t_mem(G), t_mem(V), 1, &o));
  double got;
  t_download(ctx, &got, P, 1);
  assert_true(fabs(got - 0.9031) < 1e-15 && fabs(th - 0.9031) < 1e-15);
  grad = -0.25;
  o.first_step = 0;
  double g2 = -0.25 + 0.01 * 0.9031, v2 = 0.9 * v1 + g2;
  double want = 0.9031 - 0.1 * (g2 + 0.9 * v2);
  WT_OK(wrn_write(ctx, t_mem(G), &grad, 1));
  WT_OK(wrn_sgd_step(ctx, t_mem(P), t_mem(G), t_mem(V), 1, &o));
  t_download(ctx, &got, P, 1);
  assert_true(fabs(got - want) < 1e-15);
  t_download(ctx, &got, V, 1);
  assert_true(fabs(got - v2) < 1e-15);
  wrn_release(&P), wrn_release(&G), wrn_release(&V);
}

static void expect_refused(wrn_status s, const char *word) {
  assert_int_equal(s, WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "sgd_step"));
  if (word && !strstr(wrn_last_error(), word))
    fail_msg("message \"%s\" does not name %s", wrn_last_error(), word);
}

static void test_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  cl_mem B = t_zeros(ctx, 30);
  wrn_mem p = t_mem(B), g = wrn_mem_at(p, 10), v = wrn_mem_at(p, 20), none = {NULL, 0};
  wrn_sgd ok = {0.1, 0.9, 5e-4, 1, 1}, o;
  WT_OK(wrn_sgd_step(ctx, p, g, v, 10, &ok));
  o = ok, o.lr = -0.1;
  expect_refused(wrn_sgd_step(ctx, p, g, v, 10, &o), "lr");
  o = ok, o.lr = NAN;
  expect_refused(wrn_sgd_step(ctx, p, g, v, 10, &o), "lr");
  o = ok, o.momentum = 1;
  expect_refused(wrn_sgd_step(ctx, p, g, v, 10, &o), "momentum");
  o = ok, o.momentum = -0.1;
  expect_refused(wrn_sgd_step(ctx, p, g, v, 10, &o), "momentum");
  o = ok, o.weight_decay = -1;
  expect_refused(wrn_sgd_step(ctx, p, g, v, 10, &o), "weight_decay");
  expect_refused(wrn_sgd_step(ctx, p, g, v, 0, &ok), "n = 0");
  expect_refused(wrn_sgd_step(ctx, none, g, v, 10, &ok), "NULL");
  expect_refused(wrn_sgd_step(ctx, p, none, v, 10, &ok), "NULL");
  expect_refused(wrn_sgd_step(ctx, p, g, none, 10, &ok), "NULL");
  expect_refused(wrn_sgd_step(ctx, p, g, v, 10, NULL), "NULL");
  wrn_release(&B);
}

static int teardown(void **state) {
  (void)state;
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vs_ref),
      cmocka_unit_test(test_hand_values),
      cmocka_unit_test(test_bad_args),
  };
  return WT_RUN_GROUP("sgd", tests, NULL, teardown);
}
