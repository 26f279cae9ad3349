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

/* Central differences on a few entries of every parameter tensor of a finalized network in
 * double, against its backward pass; prints the largest errors under `what`. */
static void check_gradients(wrn_net *net, int batch, int c, int h, int w, const char *what) {
  WT_OK(wrn_net_init_params(net, 11));
  size_t np = wrn_net_flat_count(net, 0);
  double *p = malloc(np * sizeof *p), *grad = malloc(np * sizeof *grad);
  WT_OK(wrn_net_read(net, 0, p));
  /* BN gammas away from 0 so that every path carries gradient. */
  for (int i = 0; i < wrn_net_param_tensors(net); i++) {
    const wrn_param_info *pi = wrn_net_param_tensor(net, i);
    if (strstr(pi->name, ".weight") && pi->ndim == 1)
      for (size_t k = 0; k < pi->count; k++) p[pi->offset + k] = 0.5 + 0.5 * p[pi->offset + k];
  }
  size_t nin = (size_t)batch * c * h * w;
  double *x = malloc(nin * sizeof *x);
  t_rand(x, nin, -2, 2, 5);
  int32_t labels[4] = {0, 3, 1, 2};
  assert_true(batch <= 4);
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
        fail_msg("%s: %s[%zu]: backward %.10g, central difference %.10g (relative error %.3g)",
                 what, pi->name, k - pi->offset, grad[k], num, err);
      checked++;
    }
  }
  print_message("gradient check (%s): loss %.6f, %d entries over %d tensors, largest relative "
                "error %.3g, largest absolute %.3g\n",
                what, l0, checked, wrn_net_param_tensors(net), worst, worst_abs);
  free(p), free(grad), free(x);
}

static void gradcheck(double dropout, const char *algo) {
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  /* WRN-10-1 on 3x8x8 inputs, batch 3, 4 classes: every layer kind, the projection shortcut,
   * strided convs and (with dropout) masks keyed by (seed, step). */
  wrn_model_spec s = {10, 1, 4, dropout, 3, 8, 8, WRN_ARCH_WRN};
  int batch = 3;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, batch, NULL));
  WT_OK(wrn_model_build(net, &s));
  if (algo) WT_OK(wrn_net_set_conv_choices(net, algo));
  WT_OK(wrn_net_finalize(net));
  if (algo) {
    /* The forced algorithm runs where it supports a layer: some layer and pass must use it. */
    int used = 0;
    for (int i = 0; i < wrn_net_layer_count(net); i++)
      for (int q = 0; q < WRN_CONV_PASSES; q++)
        used += !strcmp(wrn_net_conv_choice(net, i, (wrn_conv_pass)q), algo);
    if (!used) fail_msg("no conv layer of the network uses %s", algo);
  }
  char what[96];
  snprintf(what, sizeof what, "dropout %.1f, conv %s", dropout, algo ? algo : "tuner's");
  check_gradients(net, batch, 3, 8, 8, what);
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

/* The torchvision ResNet's layers in miniature: a 7x7/2 stem with BN+ReLU, the 3x3/2 max
 * pool, a post-activation bottleneck with a 1x1/2 conv + BN downsample ending in add + ReLU,
 * then one with the identity shortcut (the add's output also feeds the next block's conv),
 * global pool and linear; 3x16x16 inputs, batch 3, double. */
static void test_gradcheck_postact(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  int batch = 3;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, batch, NULL));
  int x = wrn_net_input(net, 3, 16, 16);
  x = wrn_net_conv(net, "conv1.weight", x, 4, 7, 2, 3); /* 8x8 */
  x = wrn_net_bn(net, "bn1", x, 1);
  x = wrn_net_maxpool(net, x, 3, 2, 1); /* 4x4 */
  for (int b = 0; b < 2; b++) {
    char n[64];
    const int stride = b == 0 ? 2 : 1, c_out = 8;
    snprintf(n, sizeof n, "b%d.conv1.weight", b);
    int y = wrn_net_conv(net, n, x, 3, 1, 1, 0);
    snprintf(n, sizeof n, "b%d.bn1", b);
    y = wrn_net_bn(net, n, y, 1);
    snprintf(n, sizeof n, "b%d.conv2.weight", b);
    y = wrn_net_conv(net, n, y, 3, 3, stride, 1);
    snprintf(n, sizeof n, "b%d.bn2", b);
    y = wrn_net_bn(net, n, y, 1);
    snprintf(n, sizeof n, "b%d.conv3.weight", b);
    y = wrn_net_conv(net, n, y, c_out, 1, 1, 0);
    snprintf(n, sizeof n, "b%d.bn3", b);
    y = wrn_net_bn(net, n, y, 0);
    int sc = x;
    if (b == 0) {
      snprintf(n, sizeof n, "b%d.downsample.0.weight", b);
      sc = wrn_net_conv(net, n, x, c_out, 1, stride, 0);
      snprintf(n, sizeof n, "b%d.downsample.1", b);
      sc = wrn_net_bn(net, n, sc, 0);
    }
    x = wrn_net_add_relu(net, y, sc);
  }
  x = wrn_net_avgpool(net, x, 2, 1, 0);
  x = wrn_net_linear(net, "fc", x, 4);
  assert_true(x >= 0);
  WT_OK(wrn_net_finalize(net));
  WT_OK(wrn_net_check_plan(net));
  check_gradients(net, batch, 3, 16, 16, "post-activation bottlenecks, max pool");
  wrn_net_free(net);
}

/* The pre-activation bottleneck ResNet as built for CIFAR (preresnet-11: one block per stage,
 * projections on the pre-activated input) on 3x8x8 inputs. */
static void test_gradcheck_preact(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx64();
  if (!ctx) skip();
  wrn_model_spec s = {0, 0, 4, 0, 3, 8, 8, WRN_ARCH_WRN};
  WT_OK(wrn_model_parse("preresnet-11", &s));
  int batch = 2;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, batch, NULL));
  WT_OK(wrn_model_build(net, &s));
  WT_OK(wrn_net_finalize(net));
  check_gradients(net, batch, 3, 8, 8, "preresnet-11");
  wrn_net_free(net);
}

static void test_builder_pool_errors(void **state) {
  (void)state;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, NULL, 2, NULL));
  int x = wrn_net_input(net, 3, 8, 8);
  assert_int_equal(wrn_net_maxpool(net, x, 3, 2, 3), -1); /* pad >= k */
  assert_non_null(strstr(wrn_last_error(), "maxpool"));
  wrn_net_free(net);
  WT_OK(wrn_net_create(&net, NULL, 2, NULL));
  x = wrn_net_input(net, 3, 8, 8);
  x = wrn_net_conv(net, "c", x, 4, 3, 1, 1);
  int a = wrn_net_conv(net, "d", x, 5, 1, 1, 0);
  assert_int_equal(wrn_net_add_relu(net, x, a), -1); /* 4 vs 5 channels */
  assert_int_not_equal(wrn_net_plan(net), WRN_OK);
  wrn_net_free(net);
}

static void test_overfit(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  wrn_model_spec s = {10, 1, 10, 0, 3, 8, 8, WRN_ARCH_WRN};
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

/* The activation arena cut into several device buffers (as on a device whose largest
 * allocation is smaller than the arena) trains to the same bits as one buffer; a bound below
 * the largest tensor is refused with a message. */
static void test_arena_buffers(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  wrn_model_spec s = {10, 1, 10, 0.3, 3, 8, 8, WRN_ARCH_WRN};
  const int batch = 8;
  size_t nin = (size_t)batch * 3 * 8 * 8;
  double *x = malloc(nin * sizeof *x);
  t_rand(x, nin, -1, 1, 11);
  int32_t labels[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  double loss[2][4], *params[2] = {NULL, NULL};
  size_t np = 0;
  /* The largest tensors are group 0's, 16 channels x 8 x 8 x batch = 8192 elements: a bound
   * of one and a half of those needs several buffers for the arena, and is no multiple of
   * the tensors' power-of-two sizes, so that packing them must step over the cuts. */
  const size_t bounds[2] = {0, 8192 + 4096};
  for (int v = 0; v < 2; v++) {
    wrn_net_options o;
    wrn_net_options_default(&o);
    o.max_buffer_elems = bounds[v];
    wrn_net *net;
    WT_OK(wrn_net_create(&net, ctx, batch, &o));
    WT_OK(wrn_model_build(net, &s));
    WT_OK(wrn_net_set_conv_choices(net, "im2col"));
    WT_OK(wrn_net_finalize(net));
    WT_OK(wrn_net_check_plan(net));
    size_t arena;
    wrn_net_memory(net, &arena, NULL, NULL, NULL);
    print_message("arena %.1f KiB in %d buffer(s)\n", arena / 1024.0, wrn_net_arena_buffers(net));
    if (v == 0) assert_int_equal(wrn_net_arena_buffers(net), 1);
    else assert_true(wrn_net_arena_buffers(net) >= 3);
    WT_OK(wrn_net_init_params(net, 5));
    WT_OK(wrn_net_set_input_real(net, x, labels, batch));
    wrn_sgd sgd = {0.1, 0.9, 5e-4, 1, 1};
    for (int step = 0; step < 4; step++) {
      int correct;
      WT_OK(wrn_train_step(net, batch, &sgd, 1, (uint64_t)step, &loss[v][step], &correct));
      sgd.first_step = 0;
    }
    np = wrn_net_flat_count(net, 0);
    params[v] = malloc(np * sizeof *params[v]);
    assert_non_null(params[v]);
    WT_OK(wrn_net_read(net, 0, params[v]));
    wrn_net_free(net);
  }
  for (int step = 0; step < 4; step++) assert_true(loss[0][step] == loss[1][step]);
  assert_memory_equal(params[0], params[1], np * sizeof *params[0]);
  /* A bound below the largest tensor cannot hold it. */
  wrn_net_options o;
  wrn_net_options_default(&o);
  o.max_buffer_elems = 8192 - 64;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, batch, &o));
  wrn_status st = wrn_model_build(net, &s); /* which plans the network */
  if (st == WRN_OK) st = wrn_net_plan(net);
  assert_int_equal(st, WRN_STATUS_OUT_OF_MEMORY);
  assert_non_null(strstr(wrn_last_error(), "exceeds the largest buffer"));
  wrn_net_free(net);
  free(params[0]), free(params[1]), free(x);
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
      cmocka_unit_test(test_gradcheck_postact), cmocka_unit_test(test_gradcheck_preact),
      cmocka_unit_test(test_builder_pool_errors),
      cmocka_unit_test(test_overfit), cmocka_unit_test(test_arena_buffers)};
  return WT_RUN_GROUP("net", tests, NULL, teardown);
}
