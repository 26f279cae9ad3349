/* The scheduler end to end: a whole-network gradient check of a tiny WRN in double precision
 * against central differences, and a tiny batch overfit to near-zero loss in float. */
#include "harness.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <math.h>
#include <string.h>

typedef struct gc {
  wrn_net *net;
  double *params;
  int batch;
} gc;

/* Mean loss of the training forward at the given parameters. */
static double loss_at(const double *p, void *user) {
  gc *g = user;
  WT_OK(wrn_net_write(g->net, 0, p));
  WT_OK(wrn_net_forward(g->net, 1, 7, 3));
  WT_OK(wrn_net_loss(g->net, g->batch, 0));
  double ls;
  int c;
  WT_OK(wrn_net_read_loss(g->net, g->batch, &ls, &c));
  return ls / g->batch;
}

static void gradcheck(double dropout, const char *algo) {
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  /* WRN-10-1 on 3x8x8 inputs, batch 3, 4 classes: every layer kind, the projection shortcut,
   * strided convs and (with dropout) masks keyed by (seed, step). */
  wrn_model_spec s = {10, 1, 4, dropout, 3, 8, 8};
  int batch = 3;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, batch, NULL));
  WT_OK(wrn_model_build(net, &s));
  if (algo) WT_OK(wrn_net_set_conv_choices(net, algo));
  WT_OK(wrn_net_finalize(net));
  WT_OK(wrn_net_init_params(net, 11));
  if (algo) {
    /* The forced algorithm runs where it supports a layer: some layer and pass must use it. */
    int used = 0;
    for (int i = 0; i < wrn_net_layer_count(net); i++)
      for (int q = 0; q < WRN_CONV_PASSES; q++)
        used += !strcmp(wrn_net_conv_choice(net, i, (wrn_conv_pass)q), algo);
    if (!used) fail_msg("no conv layer of the network uses %s", algo);
  }
  size_t np = wrn_net_flat_count(net, 0);
  double *p = malloc(np * sizeof *p), *grad = malloc(np * sizeof *grad);
  WT_OK(wrn_net_read(net, 0, p));
  /* BN gammas away from 0 so that every path carries gradient. */
  for (int i = 0; i < wrn_net_param_tensors(net); i++) {
    const wrn_param_info *pi = wrn_net_param_tensor(net, i);
    if (strstr(pi->name, ".weight") && pi->ndim == 1)
      for (size_t k = 0; k < pi->count; k++) p[pi->offset + k] = 0.5 + 0.5 * p[pi->offset + k];
  }
  size_t nin = (size_t)batch * 3 * 8 * 8;
  double *x = malloc(nin * sizeof *x);
  t_rand(x, nin, -2, 2, 5);
  int32_t labels[3] = {0, 3, 1};
  WT_OK(wrn_net_set_input_real(net, x, labels, batch));
  gc g = {net, p, batch};
  double l0 = loss_at(p, &g);
  WT_OK(wrn_net_loss(net, batch, 1));
  WT_OK(wrn_net_backward(net));
  WT_OK(wrn_net_read(net, 1, grad));
  /* A second backward at the same point must give the same gradients: parameter gradients
   * are overwritten each step, never added to the last step's (a residual input's gradient
   * accumulates, its BN's gamma/beta gradients must not). */
  double *grad2 = malloc(np * sizeof *grad2);
  loss_at(p, &g);
  WT_OK(wrn_net_loss(net, batch, 1));
  WT_OK(wrn_net_backward(net));
  WT_OK(wrn_net_read(net, 1, grad2));
  for (size_t k = 0; k < np; k++)
    if (grad2[k] != grad[k]) fail_msg("gradient %zu changed on a repeated backward: %.17g then %.17g", k, grad[k], grad2[k]);
  free(grad2);
  /* Central differences on a few entries of every parameter tensor. h = 1e-5 in double gives
   * truncation error O(h^2 * f''') ~ 1e-10 and rounding error ~ 1e-16 / h ~ 1e-11. */
  double worst = 0, worst_abs = 0;
  int checked = 0;
  for (int i = 0; i < wrn_net_param_tensors(net); i++) {
    const wrn_param_info *pi = wrn_net_param_tensor(net, i);
    for (int j = 0; j < 3; j++) {
      size_t k = pi->offset + (size_t)((j * 7919u + 13u * (unsigned)i) % pi->count);
      double keep = p[k];
      p[k] = keep + 1e-5;
      double lp = loss_at(p, &g);
      p[k] = keep - 1e-5;
      double lm = loss_at(p, &g);
      p[k] = keep;
      double num = (lp - lm) / 2e-5;
      /* Relative to the magnitudes, with a floor so that entries whose gradient is ~0 are
       * judged by their absolute error (1e-4 * 1e-5 = 1e-9 allowed there). */
      double err = fabs(num - grad[k]) / fmax(1e-4, fabs(num) + fabs(grad[k]));
      if (err > worst) worst = err;
      if (fabs(num - grad[k]) > worst_abs) worst_abs = fabs(num - grad[k]);
      if (err > 1e-5)
        fail_msg("%s[%zu]: backward %.10g, central difference %.10g (relative error %.3g)",
                 pi->name, k - pi->offset, grad[k], num, err);
      checked++;
    }
  }
  print_message("gradient check (dropout %.1f, conv %s): loss %.6f, %d entries over %d tensors, "
                "largest relative error %.3g, largest absolute %.3g\n",
                dropout, algo ? algo : "tuner's", l0, checked, wrn_net_param_tensors(net), worst,
                worst_abs);
  free(p), free(grad), free(x);
  wrn_net_free(net);
}

static void test_gradcheck(void **state) {
  (void)state;
  gradcheck(0.0, NULL);
}
static void test_gradcheck_dropout(void **state) {
  (void)state;
  gradcheck(0.3, NULL);
}
/* The same check with each convolution algorithm forced in turn (where it supports a layer;
 * the others keep the tuner's choice). */
static void test_gradcheck_each_algorithm(void **state) {
  (void)state;
  for (int i = 0; i < wrn_conv_algo_count(); i++) gradcheck(0.0, wrn_conv_algo_name(i));
}

static void test_overfit(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  wrn_model_spec s = {10, 1, 10, 0, 3, 8, 8};
  int batch = 8;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, batch, NULL));
  WT_OK(wrn_model_build(net, &s));
  WT_OK(wrn_net_finalize(net));
  WT_OK(wrn_net_init_params(net, 3));
  size_t nin = (size_t)batch * 3 * 8 * 8;
  double *x = malloc(nin * sizeof *x);
  t_rand(x, nin, -1, 1, 9);
  int32_t labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  WT_OK(wrn_net_set_input_real(net, x, labels, batch));
  wrn_sgd sgd = {0.1, 0.9, 0.0, 1, 1};
  double first = 0, last = 0;
  int correct = 0;
  for (int step = 0; step < 150; step++) {
    double ls;
    WT_OK(wrn_train_step(net, batch, &sgd, 1, (uint64_t)step, &ls, &correct));
    sgd.first_step = 0;
    if (step == 0) first = ls / batch;
    last = ls / batch;
  }
  print_message("overfit: loss %.4f -> %.5f, %d/8 correct\n", first, last, correct);
  assert_true(first > 1.0);
  assert_true(last < 0.05);
  assert_int_equal(correct, 8);
  /* Inference with the running statistics classifies the memorised batch too. */
  double ls;
  WT_OK(wrn_train_eval_step(net, batch, &ls, &correct));
  print_message("overfit: inference loss %.4f, %d/8 correct\n", ls / batch, correct);
  assert_true(correct >= 7);
  free(x);
  wrn_net_free(net);
}

static void test_builder_errors(void **state) {
  (void)state;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, NULL, 2, NULL));
  int x = wrn_net_input(net, 3, 8, 8);
  assert_int_equal(wrn_net_bn(net, "bn", x, 1), -1); /* BN straight on the input */
  assert_int_not_equal(wrn_net_plan(net), WRN_OK);
  wrn_net_free(net);
  WT_OK(wrn_net_create(&net, NULL, 2, NULL));
  x = wrn_net_input(net, 3, 8, 8);
  assert_int_equal(wrn_net_conv(net, "c", x, 4, 3, 0, 1), -1); /* stride 0 */
  wrn_net_free(net);
  assert_int_equal(wrn_net_create(&net, NULL, 0, NULL), WRN_STATUS_INVALID_ARGUMENT);
}

static int teardown(void **state) {
  (void)state;
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_builder_errors), cmocka_unit_test(test_gradcheck),
      cmocka_unit_test(test_gradcheck_dropout), cmocka_unit_test(test_gradcheck_each_algorithm),
      cmocka_unit_test(test_overfit)};
  return cmocka_run_group_tests_name("net", tests, NULL, teardown);
}
