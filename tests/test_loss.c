/* Softmax cross-entropy against a double reference (loss, correct, dlogits) in float and
 * double, with large logits for stability; dlogits against central differences of the
 * device's own mean loss in double; first-argmax ties; bad labels; refused arguments; label
 * smoothing against its own reference and central differences, and smoothing 0 giving the
 * plain loss's bits. */
#include "harness.h"
#include "ref_loss.h"

#include <math.h>
#include <string.h>

/* Largest differences seen per real type (0 float, 1 double), printed for the record. */
static double worst_loss[2], worst_dl[2];

static void note(double *w, wrn_ctx *ctx, const double *got, const double *ref, size_t n) {
  double d = t_max_abs_diff(got, ref, n);
  int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  if (d > w[dt]) w[dt] = d;
}

static cl_mem upload_labels(wrn_ctx *ctx, const int *lab, size_t n) {
  cl_mem m;
  WT_OK(wrn_alloc(ctx, n * sizeof(cl_int), "labels", &m));
  WT_OK(wrn_write_bytes(ctx, m, 0, lab, n * sizeof(cl_int)));
  return m;
}

static void make_labels(int *lab, int n, int k, uint64_t seed) {
  double *r = malloc((size_t)n * sizeof *r);
  assert_non_null(r);
  t_rand(r, (size_t)n, 0, k, seed);
  for (int i = 0; i < n; i++) lab[i] = (int)r[i] < k ? (int)r[i] : k - 1;
  free(r);
}

/* Runs one case with every buffer at a nonzero offset (`off` elements of padding in front),
 * so that a kernel ignoring an offset fails. spread: logits uniform in [-spread/2, spread/2]
 * around `center`. */
static void xent_case(wrn_ctx *ctx, int n, int k, double center, double spread, double scale,
                      int with_dl, size_t off) {
  size_t nk = (size_t)n * k;
  double *x = malloc((off + nk) * sizeof *x), *loss = malloc(n * sizeof *loss),
         *corr = malloc(n * sizeof *corr), *dl = malloc(nk * sizeof *dl),
         *got = malloc((off + nk) * sizeof *got), *seed_dl = malloc((off + nk) * sizeof *seed_dl);
  int *lab = malloc((off + n) * sizeof *lab);
  assert_true(x && loss && corr && dl && got && seed_dl && lab);
  t_rand(x, off + nk, center - spread / 2, center + spread / 2, 100 + nk);
  t_round(ctx, x, off + nk);
  for (size_t i = 0; i < off; i++) lab[i] = -7; /* would give NaN if the offset were lost */
  make_labels(lab + off, n, k, 200 + nk);
  ref_softmax_xent(loss, corr, dl, x + off, lab + off, n, k, scale);

  t_rand(seed_dl, off + nk, -1, 1, 300 + nk); /* the kernel must overwrite dlogits */
  t_round(ctx, seed_dl, off + nk);
  cl_mem X = t_upload(ctx, x, off + nk), L = t_upload(ctx, seed_dl, off + n),
         C = t_upload(ctx, seed_dl, off + n), D = t_upload(ctx, seed_dl, off + nk),
         Y = upload_labels(ctx, lab, off + n);
  wrn_mem xm = {X, off}, lm = {L, off}, cm = {C, off}, dm = {with_dl ? D : NULL, off};
  WT_OK(wrn_softmax_xent(ctx, lm, cm, dm, xm, Y, off, n, k, scale));

  /* Loss = (max - x[label]) + log(sum): the reference sees the same rounded logits, so in
   * float only the kernel's roundings remain: the difference of two logits rounds once (up
   * to ulp(1e3) = 6e-5 when the logits spread over 1e3, which is 1e-7 of such a loss), and
   * the sum of k exp's and the log carry a few ulps. atol 2e-6 + rtol 2e-6 of the loss;
   * double: 1e-12 + 1e-12. */
  t_tol tl = t_tol_for(ctx, (t_tol){2e-6, 2e-6}, (t_tol){1e-12, 1e-12});
  t_download(ctx, got, L, off + n);
  t_check_close("loss", got + off, loss, (size_t)n, tl.atol, tl.rtol);
  note(worst_loss, ctx, got + off, loss, (size_t)n);
  t_check_close("loss padding untouched", got, seed_dl, off, 0, 0);
  /* correct is a 0/1 decision on identical inputs: it must match exactly. */
  t_download(ctx, got, C, off + n);
  t_check_close("correct", got + off, corr, (size_t)n, 0, 0);
  /* dlogits: softmax values <= 1 times scale/n, one exp and one division; the label's entry
   * p - 1 cancels, so what counts is p's absolute error: a few ulps on the device, and in
   * the double reference ~|logit| * eps ~ 1e-13 from rounding its log-sum-exp near 1e3.
   * Hence atol in units of |scale|/n: 1e-6 (float), 1e-12 (double), rtol 2e-6 / 1e-12. */
  t_download(ctx, got, D, off + nk);
  if (with_dl) {
    double a = fabs(scale) / n;
    t_tol td = t_tol_for(ctx, (t_tol){1e-6 * a, 2e-6}, (t_tol){1e-12 * a, 1e-12});
    t_check_close("dlogits", got + off, dl, nk, td.atol, td.rtol);
    note(worst_dl, ctx, got + off, dl, nk);
  } else {
    t_check_close("dlogits untouched", got, seed_dl, off + nk, 0, 0);
  }
  wrn_release(&X), wrn_release(&L), wrn_release(&C), wrn_release(&D), wrn_release(&Y);
  free(x), free(loss), free(corr), free(dl), free(got), free(seed_dl), free(lab);
}

static void test_forward_vs_ref(void **state) {
  (void)state;
  static const int ns[] = {1, 7, 128}, ks[] = {10, 100};
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    for (size_t a = 0; a < 3; a++)
      for (size_t b = 0; b < 2; b++) {
        xent_case(ctx, ns[a], ks[b], 0, 10, 1.0, 1, 0);
        /* Stability: logits spread over 1e3, and a large common offset. */
        xent_case(ctx, ns[a], ks[b], 0, 1e3, 1.0, 1, 3);
        xent_case(ctx, ns[a], ks[b], 1e3, 8, 0.5, 1, 0);
      }
    xent_case(ctx, 5, 1, 0, 4, 1.0, 1, 0);     /* one class: loss 0, gradient 0 */
    xent_case(ctx, 3, 1000, 0, 20, 2.0, 1, 5); /* ImageNet width: 16 strides per item */
    xent_case(ctx, 7, 10, 0, 10, 1.0, 0, 2);   /* no dlogits */
    print_message("  %s: largest |loss - ref| %.3g, |dlogits - ref| %.3g\n",
                  dt ? "double" : "float", worst_loss[dt], worst_dl[dt]);
  }
}

/* Central differences of scale * mean loss, computed by the device in double. */
typedef struct gctx {
  wrn_ctx *ctx;
  cl_mem X, L, C, Y;
  int n, k;
  double scale;
  double *loss;
  double eps; /* label smoothing */
} gctx;

static double device_mean_loss(const double *x, void *user) {
  gctx *g = user;
  size_t nk = (size_t)g->n * g->k;
  WT_OK(wrn_write(g->ctx, t_mem(g->X), x, nk));
  wrn_mem none = {NULL, 0};
  WT_OK(wrn_softmax_xent_smooth(g->ctx, t_mem(g->L), t_mem(g->C), none, t_mem(g->X), g->Y, 0,
                                g->n, g->k, g->scale, g->eps));
  t_download(g->ctx, g->loss, g->L, (size_t)g->n);
  double s = 0;
  for (int i = 0; i < g->n; i++) s += g->loss[i];
  return g->scale * s / g->n;
}

static void test_grad_numeric(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  const int n = 7, k = 10;
  const double scale = 1.7;
  size_t nk = (size_t)n * k;
  double *x = malloc(nk * sizeof *x), *num = malloc(nk * sizeof *num),
         *got = malloc(nk * sizeof *got), *loss = malloc(n * sizeof *loss);
  int lab[7];
  assert_true(x && num && got && loss);
  t_rand(x, nk, -3, 3, 77);
  make_labels(lab, n, k, 78);
  gctx g = {ctx, t_upload(ctx, x, nk), t_zeros(ctx, n), t_zeros(ctx, n),
            upload_labels(ctx, lab, n), n, k, scale, loss, 0};
  cl_mem D = t_zeros(ctx, nk);
  WT_OK(wrn_softmax_xent(ctx, t_mem(g.L), t_mem(g.C), t_mem(D), t_mem(g.X), g.Y, 0, n, k,
                         scale));
  t_download(ctx, got, D, nk);
  t_numeric_grad(device_mean_loss, x, nk, 1e-5, num, &g);
  /* h = 1e-5: truncation ~ h^2 |f'''| ~ 1e-10, rounding ~ 1e-16 * |f| / h ~ 1e-11. */
  t_check_close("dlogits vs central differences", got, num, nk, 1e-9, 1e-7);
  print_message("  largest |dlogits - numeric| = %.3g\n", t_max_abs_diff(got, num, nk));
  wrn_release(&g.X), wrn_release(&g.L), wrn_release(&g.C), wrn_release(&g.Y), wrn_release(&D);
  free(x), free(num), free(got), free(loss);
}

/* Label smoothing against the reference's -sum_j q_j log p_j (a different formula from the
 * kernel's (1 - eps)(max - x_lab) + eps mean(max - x) + log sum), in float and double. */
static void smooth_case(wrn_ctx *ctx, int n, int k, double spread, double scale, double eps) {
  size_t nk = (size_t)n * k;
  double *x = malloc(nk * sizeof *x), *loss = malloc(n * sizeof *loss),
         *dl = malloc(nk * sizeof *dl), *got = malloc(nk * sizeof *got);
  int *lab = malloc(n * sizeof *lab);
  assert_true(x && loss && dl && got && lab);
  t_rand(x, nk, -spread / 2, spread / 2, 400 + nk);
  t_round(ctx, x, nk);
  make_labels(lab, n, k, 500 + nk);
  ref_softmax_xent_smooth(loss, dl, x, lab, n, k, scale, eps);
  cl_mem X = t_upload(ctx, x, nk), L = t_zeros(ctx, n), C = t_zeros(ctx, n),
         D = t_zeros(ctx, nk), Y = upload_labels(ctx, lab, n);
  WT_OK(wrn_softmax_xent_smooth(ctx, t_mem(L), t_mem(C), t_mem(D), t_mem(X), Y, 0, n, k, scale,
                                eps));
  /* Over the plain loss, the smoothed one adds eps * the mean of k differences max - x_j
   * (each exact in the reals' precision), summed per work-item and in a tree: a few ulps of
   * the loss's size. The reference's sum of k terms q_j (x_j - lse) of either sign cancels
   * down to the loss, ~k ulps of the largest term in double. Float: atol 1e-5, rtol 1e-5;
   * double: 1e-11, 1e-11. dlogits as in xent_case, the target eps / k rounded once. */
  t_tol tl = t_tol_for(ctx, (t_tol){1e-5, 1e-5}, (t_tol){1e-11, 1e-11});
  t_download(ctx, got, L, (size_t)n);
  t_check_close("smoothed loss", got, loss, (size_t)n, tl.atol, tl.rtol);
  double dloss = t_max_abs_diff(got, loss, (size_t)n);
  t_download(ctx, got, D, nk);
  double a = fabs(scale) / n;
  t_tol td = t_tol_for(ctx, (t_tol){1e-6 * a, 2e-6}, (t_tol){1e-12 * a, 1e-12});
  t_check_close("smoothed dlogits", got, dl, nk, td.atol, td.rtol);
  int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  if (dloss > worst_loss[dt]) worst_loss[dt] = dloss;
  wrn_release(&X), wrn_release(&L), wrn_release(&C), wrn_release(&D), wrn_release(&Y);
  free(x), free(loss), free(dl), free(got), free(lab);
}

static void test_smooth_vs_ref(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    worst_loss[dt] = 0;
    smooth_case(ctx, 7, 10, 10, 1.0, 0.1);
    smooth_case(ctx, 128, 10, 10, 1.0, 0.1);
    smooth_case(ctx, 5, 100, 20, 0.5, 0.3);
    smooth_case(ctx, 3, 1000, 20, 2.0, 0.05); /* 16 strides per work-item */
    smooth_case(ctx, 4, 10, 1e3, 1.0, 0.1);  /* logits spread over 1e3 */
    smooth_case(ctx, 4, 1, 4, 1.0, 0.2);     /* one class: q = 1, loss 0 */
    print_message("  %s: largest |smoothed loss - ref| %.3g\n", dt ? "double" : "float",
                  worst_loss[dt]);
  }
}

/* Smoothing 0 is the plain loss, bit for bit (runs keep their bits whatever the flag's
 * default); a smoothing > 0 changes the loss and the gradient. */
static void test_smooth_zero_same_bits(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const int n = 9, k = 100;
  size_t nk = (size_t)n * k;
  double x[900], a[900], b[900];
  int lab[9];
  t_rand(x, nk, -5, 5, 91);
  make_labels(lab, n, k, 92);
  cl_mem X = t_upload(ctx, x, nk), L = t_zeros(ctx, n), C = t_zeros(ctx, n),
         D = t_zeros(ctx, nk), L2 = t_zeros(ctx, n), D2 = t_zeros(ctx, nk),
         Y = upload_labels(ctx, lab, n);
  WT_OK(wrn_softmax_xent(ctx, t_mem(L), t_mem(C), t_mem(D), t_mem(X), Y, 0, n, k, 1));
  WT_OK(wrn_softmax_xent_smooth(ctx, t_mem(L2), t_mem(C), t_mem(D2), t_mem(X), Y, 0, n, k, 1,
                                0.0));
  t_download(ctx, a, L, n), t_download(ctx, b, L2, n);
  t_check_close("loss, smoothing 0", b, a, n, 0, 0);
  t_download(ctx, a, D, nk), t_download(ctx, b, D2, nk);
  t_check_close("dlogits, smoothing 0", b, a, nk, 0, 0);
  WT_OK(wrn_softmax_xent_smooth(ctx, t_mem(L2), t_mem(C), t_mem(D2), t_mem(X), Y, 0, n, k, 1,
                                0.1));
  t_download(ctx, b, D2, nk);
  assert_true(t_max_abs_diff(a, b, nk) > 1e-5);
  wrn_release(&X), wrn_release(&L), wrn_release(&C), wrn_release(&D), wrn_release(&L2);
  wrn_release(&D2), wrn_release(&Y);
}

/* The smoothed gradient against central differences of the device's smoothed mean loss. */
static void test_smooth_grad_numeric(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  const int n = 6, k = 10;
  const double scale = 1.3, eps = 0.2;
  size_t nk = (size_t)n * k;
  double x[60], num[60], got[60], loss[6];
  int lab[6];
  t_rand(x, nk, -3, 3, 79);
  make_labels(lab, n, k, 80);
  gctx g = {ctx, t_upload(ctx, x, nk), t_zeros(ctx, n), t_zeros(ctx, n),
            upload_labels(ctx, lab, n), n, k, scale, loss, eps};
  cl_mem D = t_zeros(ctx, nk);
  WT_OK(wrn_softmax_xent_smooth(ctx, t_mem(g.L), t_mem(g.C), t_mem(D), t_mem(g.X), g.Y, 0, n, k,
                                scale, eps));
  t_download(ctx, got, D, nk);
  t_numeric_grad(device_mean_loss, x, nk, 1e-5, num, &g);
  /* As in test_grad_numeric: truncation ~1e-10, rounding ~1e-11. */
  t_check_close("smoothed dlogits vs central differences", got, num, nk, 1e-9, 1e-7);
  print_message("  largest |smoothed dlogits - numeric| = %.3g\n", t_max_abs_diff(got, num, nk));
  wrn_release(&g.X), wrn_release(&g.L), wrn_release(&g.C), wrn_release(&g.Y), wrn_release(&D);
}

/* Two equal maxima: correct only when the label is the first of them. */
static void test_tie(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    /* With k = 100 and 64 work-items the maxima sit in different work-items' strides, so
     * the tie is decided in the local-memory tree, with the smaller index in either slot. */
    const int k = 100, n = 5;
    static const int at[5][2] = {{3, 70}, {3, 70}, {0, 65}, {3, 64}, {0, 65}};
    double x[500];
    int lab[5] = {3, 70, 65, 3, 0};
    for (int i = 0; i < n * k; i++) x[i] = -(double)((i * 37) % 11);
    for (int i = 0; i < n; i++) x[i * k + at[i][0]] = x[i * k + at[i][1]] = 5;
    double want[5] = {1, 0, 0, 1, 1}, got[5], loss[5], corr[5];
    ref_softmax_xent(loss, corr, NULL, x, lab, n, k, 1);
    for (int i = 0; i < n; i++) assert_true(corr[i] == want[i]); /* the reference agrees */
    cl_mem X = t_upload(ctx, x, (size_t)n * k), L = t_zeros(ctx, n), C = t_zeros(ctx, n),
           Y = upload_labels(ctx, lab, n);
    wrn_mem none = {NULL, 0};
    WT_OK(wrn_softmax_xent(ctx, t_mem(L), t_mem(C), none, t_mem(X), Y, 0, n, k, 1));
    t_download(ctx, got, C, n);
    t_check_close("correct with ties", got, want, n, 0, 0);
    wrn_release(&X), wrn_release(&L), wrn_release(&C), wrn_release(&Y);
  }
}

/* A label outside [0, k) gives NaN for its sample only, and reads nothing out of bounds. */
static void test_bad_label(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const int n = 4, k = 10;
  double x[40], got[40], loss[4], corr[4], dl[40];
  int lab[4] = {2, -1, 10, 9};
  t_rand(x, 40, -2, 2, 5);
  t_round(ctx, x, 40);
  ref_softmax_xent(loss, corr, dl, x, lab, n, k, 1);
  cl_mem X = t_upload(ctx, x, 40), L = t_zeros(ctx, n), C = t_zeros(ctx, n),
         D = t_zeros(ctx, 40), Y = upload_labels(ctx, lab, n);
  WT_OK(wrn_softmax_xent(ctx, t_mem(L), t_mem(C), t_mem(D), t_mem(X), Y, 0, n, k, 1));
  t_download(ctx, got, L, n);
  assert_true(isnan(got[1]) && isnan(got[2]));
  assert_true(fabs(got[0] - loss[0]) < 1e-5 && fabs(got[3] - loss[3]) < 1e-5);
  t_download(ctx, got, C, n);
  for (int i = 0; i < n; i++) assert_true(got[i] == corr[i]);
  t_download(ctx, got, D, 40);
  for (int j = 0; j < k; j++) {
    assert_true(isnan(got[10 + j]) && isnan(got[20 + j]));
    assert_true(fabs(got[j] - dl[j]) < 1e-6 && fabs(got[30 + j] - dl[30 + j]) < 1e-6);
  }
  wrn_release(&X), wrn_release(&L), wrn_release(&C), wrn_release(&D), wrn_release(&Y);
}

static void expect_refused(wrn_status s) {
  assert_int_equal(s, WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "softmax_xent"));
}

static void test_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  int lab[4] = {0, 1, 2, 3};
  cl_mem X = t_zeros(ctx, 40), L = t_zeros(ctx, 4), C = t_zeros(ctx, 4),
         Y = upload_labels(ctx, lab, 4);
  wrn_mem none = {NULL, 0}, x = t_mem(X), l = t_mem(L), c = t_mem(C);
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, Y, 0, 0, 10, 1));
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, Y, 0, 4, 0, 1));
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, Y, 0, -1, 10, 1));
  expect_refused(wrn_softmax_xent(ctx, none, c, none, x, Y, 0, 4, 10, 1));
  expect_refused(wrn_softmax_xent(ctx, l, none, none, x, Y, 0, 4, 10, 1));
  expect_refused(wrn_softmax_xent(ctx, l, c, none, none, Y, 0, 4, 10, 1));
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, NULL, 0, 4, 10, 1));
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, Y, 0, 4, 10, NAN));
  /* Labels past the end of their buffer: an offset given in reals or bytes by mistake. */
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, Y, 1, 4, 10, 1));
  assert_non_null(strstr(wrn_last_error(), "labels"));
  expect_refused(wrn_softmax_xent(ctx, l, c, none, x, Y, 0, 5, 10, 1));
  expect_refused(wrn_softmax_xent_smooth(ctx, l, c, none, x, Y, 0, 4, 10, 1, 1.0));
  expect_refused(wrn_softmax_xent_smooth(ctx, l, c, none, x, Y, 0, 4, 10, 1, -0.1));
  expect_refused(wrn_softmax_xent_smooth(ctx, l, c, none, x, Y, 0, 4, 10, 1, NAN));
  assert_non_null(strstr(wrn_last_error(), "smoothing"));
  wrn_release(&X), wrn_release(&L), wrn_release(&C), wrn_release(&Y);
}

static int teardown(void **state) {
  (void)state;
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forward_vs_ref), cmocka_unit_test(test_grad_numeric),
      cmocka_unit_test(test_tie),            cmocka_unit_test(test_bad_label),
      cmocka_unit_test(test_bad_args),       cmocka_unit_test(test_smooth_vs_ref),
      cmocka_unit_test(test_smooth_zero_same_bits), cmocka_unit_test(test_smooth_grad_numeric),
  };
  return WT_RUN_GROUP("loss", tests, NULL, teardown);
}
