/* WRN-d-k structure: parameter counts against the recipe's table (which was computed from the
 * paper's architecture), forward multiply-adds against the recipe's figures, tensor names of
 * the PyTorch port, and the memory plan's invariant. Needs no device. */
#include "harness.h"
#include "wrn_models.h"

#include <math.h>
#include <string.h>

static wrn_net *plan(int d, int k, int classes, double p, int batch) {
  wrn_model_spec s = {d, k, classes, p, 3, 32, 32};
  wrn_net *net;
  WT_OK(wrn_net_create(&net, NULL, batch, NULL));
  WT_OK(wrn_model_build(net, &s));
  return net;
}

static void test_param_counts(void **state) {
  (void)state;
  /* shared/docs/wrn-recipe.md, "Parameter counts". */
  struct {
    int d, k, classes;
    size_t want;
  } t[] = {{16, 4, 10, 2748890},    {16, 4, 100, 2772020},   {16, 8, 10, 10961370},
           {16, 8, 100, 11007540},  {28, 10, 10, 36479194},  {28, 10, 100, 36536884},
           {40, 4, 10, 8949210},    {40, 1, 10, 563930},     {52, 1, 10, 758362}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    wrn_net *net = plan(t[i].d, t[i].k, t[i].classes, 0, 4);
    wrn_model_spec s = {t[i].d, t[i].k, t[i].classes, 0, 3, 32, 32};
    if (wrn_net_param_count(net) != t[i].want || wrn_model_param_count(&s) != t[i].want)
      fail_msg("WRN-%d-%d/%d: net counts %zu, formula %zu, recipe %zu", t[i].d, t[i].k,
               t[i].classes, wrn_net_param_count(net), wrn_model_param_count(&s), t[i].want);
    /* Dropout adds no parameters. */
    wrn_net *nd = plan(t[i].d, t[i].k, t[i].classes, 0.3, 4);
    assert_int_equal(wrn_net_param_count(nd), t[i].want);
    wrn_net_free(nd);
    wrn_net_free(net);
  }
}

static void test_forward_macs(void **state) {
  (void)state;
  /* Recipe: WRN-28-10 about 5.24 G multiply-adds per image, WRN-16-4 0.39 G, WRN-40-4 1.30 G
   * (given to 3 significant digits, hence the 1% margin). */
  struct {
    int d, k;
    double want;
  } t[] = {{28, 10, 5.24e9}, {16, 4, 0.39e9}, {40, 4, 1.30e9}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    wrn_net *net = plan(t[i].d, t[i].k, 10, 0, 2);
    double m = wrn_net_forward_macs(net);
    wrn_model_spec s = {t[i].d, t[i].k, 10, 0, 3, 32, 32};
    if (fabs(m - t[i].want) > 0.01 * t[i].want || fabs(wrn_model_forward_macs(&s) - m) > 1)
      fail_msg("WRN-%d-%d: %.4g multiply-adds, want about %.3g", t[i].d, t[i].k, m, t[i].want);
    wrn_net_free(net);
  }
}

static int has_param(wrn_net *net, const char *name, int d0, int d1, int d2, int d3) {
  for (int i = 0; i < wrn_net_param_tensors(net); i++) {
    const wrn_param_info *p = wrn_net_param_tensor(net, i);
    if (!strcmp(p->name, name)) {
      int dims[4] = {d0, d1, d2, d3};
      for (int j = 0; j < p->ndim; j++)
        if (p->shape[j] != dims[j]) return 0;
      return 1;
    }
  }
  return 0;
}

static void test_names_and_structure(void **state) {
  (void)state;
  wrn_net *net = plan(16, 4, 10, 0, 2);
  assert_true(has_param(net, "conv0", 16, 3, 3, 3));
  /* Group 1 block 1 has a projection when k != 1: 16 -> 64 channels. */
  assert_true(has_param(net, "group0.block0.convdim", 64, 16, 1, 1));
  assert_true(has_param(net, "group0.block0.bn0.weight", 16, 0, 0, 0));
  assert_true(has_param(net, "group0.block0.conv0", 64, 16, 3, 3));
  assert_true(has_param(net, "group0.block1.conv1", 64, 64, 3, 3));
  assert_false(has_param(net, "group0.block1.convdim", 64, 64, 1, 1));
  assert_true(has_param(net, "group1.block0.convdim", 128, 64, 1, 1));
  assert_true(has_param(net, "group2.block1.conv1", 256, 256, 3, 3));
  assert_true(has_param(net, "bn.weight", 256, 0, 0, 0));
  assert_true(has_param(net, "fc.weight", 10, 256, 0, 0));
  assert_true(has_param(net, "fc.bias", 10, 0, 0, 0));
  int found = 0;
  for (int i = 0; i < wrn_net_buffer_tensors(net); i++)
    found += !strcmp(wrn_net_buffer_tensor(net, i)->name, "group1.block0.bn1.running_var");
  assert_int_equal(found, 1);
  /* Stride 2 sits on the first conv of groups 2 and 3; the head pools 8x8. */
  int strided = 0;
  for (int i = 0; i < wrn_net_layer_count(net); i++) {
    wrn_layer_info l;
    wrn_net_layer(net, i, &l);
    if (l.kind == WRN_LAYER_CONV && l.stride == 2) strided++;
    if (l.kind == WRN_LAYER_AVGPOOL) assert_true(l.in_h == 8 && l.out_h == 1 && l.k == 8);
  }
  assert_int_equal(strided, 4); /* conv0 and convdim of group1.block0 and group2.block0 */
  wrn_net_free(net);
  /* WRN-10-1 has no projection in group 1 (16 -> 16). */
  net = plan(10, 1, 10, 0, 2);
  assert_false(has_param(net, "group0.block0.convdim", 16, 16, 1, 1));
  assert_true(has_param(net, "group1.block0.convdim", 32, 16, 1, 1));
  wrn_net_free(net);
}

static void test_plan(void **state) {
  (void)state;
  int models[][2] = {{10, 1}, {16, 4}, {28, 10}};
  for (int i = 0; i < 3; i++) {
    wrn_net *net = plan(models[i][0], models[i][1], 10, i == 1 ? 0.3 : 0, 128);
    WT_OK(wrn_net_check_plan(net));
    size_t arena, naive;
    wrn_net_memory(net, &arena, &naive, NULL, NULL);
    print_message("WRN-%d-%d batch 128: arena %.1f MiB, without reuse %.1f MiB\n", models[i][0],
                  models[i][1], arena / 1048576.0, naive / 1048576.0);
    assert_true(arena < naive / 2);
    wrn_net_free(net);
  }
}

static void test_bad_specs(void **state) {
  (void)state;
  wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32};
  assert_int_equal(wrn_model_parse("wrn-27-10", &s), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "6N+4"));
  assert_int_equal(wrn_model_parse("resnet-50", &s), WRN_STATUS_INVALID_ARGUMENT);
  assert_int_equal(wrn_model_parse("wrn-16-0", &s), WRN_STATUS_INVALID_ARGUMENT);
  assert_int_equal(wrn_model_parse("wrn-16-4x", &s), WRN_STATUS_INVALID_ARGUMENT);
  WT_OK(wrn_model_parse("WRN-40-4", &s));
  assert_int_equal(s.depth, 40);
  assert_int_equal(s.width, 4);
  s.classes = 1;
  assert_int_equal(wrn_model_check(&s), WRN_STATUS_INVALID_ARGUMENT);
  s.classes = 10, s.dropout = 1.0;
  assert_int_equal(wrn_model_check(&s), WRN_STATUS_INVALID_ARGUMENT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_param_counts), cmocka_unit_test(test_forward_macs),
      cmocka_unit_test(test_names_and_structure), cmocka_unit_test(test_plan),
      cmocka_unit_test(test_bad_specs)};
  return cmocka_run_group_tests_name("models", tests, NULL, NULL);
}
