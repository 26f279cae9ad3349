/* WRN-d-k structure: parameter counts against the recipe's table (which was computed from the
 * paper's architecture), forward multiply-adds against the recipe's figures, tensor names of
 * the PyTorch port, and the memory plan's invariant; the same for the bottleneck ResNets
 * against torchvision's figures and the pre-activation ResNet definition of
 * tests/test_torch_models.py. Needs no device. */
#include "harness.h"
#include "wrn_models.h"

#include <math.h>
#include <string.h>

static wrn_net *plan(int d, int k, int classes, double p, int batch) {
  wrn_model_spec s = {d, k, classes, p, 3, 32, 32, WRN_ARCH_WRN};
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
    wrn_model_spec s = {t[i].d, t[i].k, t[i].classes, 0, 3, 32, 32, WRN_ARCH_WRN};
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
    wrn_model_spec s = {t[i].d, t[i].k, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
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

static wrn_net *plan_named(const char *model, int classes, int side, int batch,
                           wrn_model_spec *out) {
  wrn_model_spec s = {0, 0, classes, 0, 3, side, side, WRN_ARCH_WRN};
  WT_OK(wrn_model_parse(model, &s));
  wrn_net *net;
  WT_OK(wrn_net_create(&net, NULL, batch, NULL));
  WT_OK(wrn_model_build(net, &s));
  if (out) *out = s;
  return net;
}

static void test_resnet_counts(void **state) {
  (void)state;
  /* torchvision: resnet50 25,557,032 and wide_resnet50_2 68,883,240 parameters (1000
   * classes; BN running statistics are buffers, not parameters); 4.09 and 11.40 G
   * multiply-adds at 224x224 (its model table's "GFLOPS"), hence a 1% margin. The
   * pre-activation ResNets for 10 classes: the counts of the PyTorch definition in
   * tests/test_torch_models.py (the paper rounds them to 1.7 M and 10.2 M). */
  struct {
    const char *model;
    int classes, side;
    size_t want;
    double macs;
  } t[] = {{"resnet-50", 1000, 224, 25557032, 4.09e9},
           {"wrn-50-2", 1000, 224, 68883240, 11.40e9},
           {"preresnet-164", 10, 32, 1703258, 0},
           {"preresnet-1001", 10, 32, 10327706, 0}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    wrn_model_spec s;
    wrn_net *net = plan_named(t[i].model, t[i].classes, t[i].side, 2, &s);
    double m = wrn_net_forward_macs(net);
    print_message("%s: %zu parameters, %.4g multiply-adds per %dx%d image\n", t[i].model,
                  wrn_net_param_count(net), m, t[i].side, t[i].side);
    if (wrn_net_param_count(net) != t[i].want || wrn_model_param_count(&s) != t[i].want)
      fail_msg("%s/%d: net counts %zu, formula %zu, want %zu", t[i].model, t[i].classes,
               wrn_net_param_count(net), wrn_model_param_count(&s), t[i].want);
    if (fabs(wrn_model_forward_macs(&s) - m) > 1)
      fail_msg("%s: the formula gives %.6g multiply-adds, the network %.6g", t[i].model,
               wrn_model_forward_macs(&s), m);
    if (t[i].macs > 0 && fabs(m - t[i].macs) > 0.01 * t[i].macs)
      fail_msg("%s: %.4g multiply-adds, want about %.3g", t[i].model, m, t[i].macs);
    WT_OK(wrn_net_check_plan(net));
    wrn_net_free(net);
  }
}

static int has_buffer(wrn_net *net, const char *name) {
  for (int i = 0; i < wrn_net_buffer_tensors(net); i++)
    if (!strcmp(wrn_net_buffer_tensor(net, i)->name, name)) return 1;
  return 0;
}

static void test_resnet_names(void **state) {
  (void)state;
  /* torchvision's state-dict names and shapes of wide_resnet50_2 (inner widths 128..1024). */
  wrn_net *net = plan_named("wrn-50-2", 1000, 224, 2, NULL);
  assert_true(has_param(net, "conv1.weight", 64, 3, 7, 7));
  assert_true(has_param(net, "bn1.weight", 64, 0, 0, 0));
  assert_true(has_param(net, "layer1.0.conv1.weight", 128, 64, 1, 1));
  assert_true(has_param(net, "layer1.0.conv2.weight", 128, 128, 3, 3));
  assert_true(has_param(net, "layer1.0.conv3.weight", 256, 128, 1, 1));
  assert_true(has_param(net, "layer1.0.downsample.0.weight", 256, 64, 1, 1));
  assert_true(has_param(net, "layer1.0.downsample.1.bias", 256, 0, 0, 0));
  assert_false(has_param(net, "layer1.1.downsample.0.weight", 256, 256, 1, 1));
  assert_true(has_param(net, "layer2.0.conv2.weight", 256, 256, 3, 3));
  assert_true(has_param(net, "layer3.5.bn3.weight", 1024, 0, 0, 0));
  assert_true(has_param(net, "layer4.2.conv2.weight", 1024, 1024, 3, 3));
  assert_true(has_param(net, "layer4.0.downsample.0.weight", 2048, 1024, 1, 1));
  assert_true(has_param(net, "fc.weight", 1000, 2048, 0, 0));
  assert_true(has_param(net, "fc.bias", 1000, 0, 0, 0));
  assert_true(has_buffer(net, "layer1.0.downsample.1.running_var"));
  assert_true(has_buffer(net, "bn1.running_mean"));
  assert_int_equal(wrn_net_param_tensors(net), 161);
  /* 7x7/2 stem, 3x3/2 max pool, strides on the 3x3 convs and the downsample of stages 2-4,
   * 7x7 global pool, and every block ends in add + ReLU. */
  int strided = 0, maxpools = 0, add_relu = 0;
  for (int i = 0; i < wrn_net_layer_count(net); i++) {
    wrn_layer_info l;
    wrn_net_layer(net, i, &l);
    if (l.kind == WRN_LAYER_CONV && l.stride == 2) strided++;
    if (l.kind == WRN_LAYER_MAXPOOL) {
      maxpools++;
      assert_true(l.k == 3 && l.stride == 2 && l.pad == 1 && l.in_h == 112 && l.out_h == 56);
    }
    if (l.kind == WRN_LAYER_ADD) add_relu += l.relu;
    if (l.kind == WRN_LAYER_AVGPOOL) assert_true(l.in_h == 7 && l.out_h == 1 && l.k == 7);
  }
  assert_int_equal(strided, 7);
  assert_int_equal(maxpools, 1);
  assert_int_equal(add_relu, 16);
  wrn_net_free(net);
  /* Any square side >= 32 works (64 -> 2x2 before the pool). */
  net = plan_named("resnet-50", 10, 64, 2, NULL);
  assert_true(has_param(net, "layer1.0.conv2.weight", 64, 64, 3, 3));
  assert_true(has_param(net, "fc.weight", 10, 2048, 0, 0));
  wrn_net_free(net);
  net = plan_named("preresnet-164", 10, 32, 2, NULL);
  assert_true(has_param(net, "conv1.weight", 16, 3, 3, 3));
  assert_true(has_param(net, "layer1.0.bn1.weight", 16, 0, 0, 0));
  assert_true(has_param(net, "layer1.0.shortcut.weight", 64, 16, 1, 1));
  assert_true(has_param(net, "layer1.17.conv3.weight", 64, 16, 1, 1));
  assert_true(has_param(net, "layer2.0.conv2.weight", 32, 32, 3, 3));
  assert_true(has_param(net, "layer3.17.bn3.weight", 64, 0, 0, 0));
  assert_true(has_param(net, "bn.weight", 256, 0, 0, 0));
  assert_true(has_param(net, "fc.weight", 10, 256, 0, 0));
  assert_false(has_param(net, "layer1.1.shortcut.weight", 64, 64, 1, 1));
  wrn_net_free(net);
}

static void test_bad_specs(void **state) {
  (void)state;
  wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
  assert_int_equal(wrn_model_parse("wrn-27-10", &s), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "6N+4"));
  assert_int_equal(wrn_model_parse("resnet-34", &s), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "50, 101 or 152"));
  assert_int_equal(wrn_model_parse("preresnet-100", &s), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "9N+2"));
  assert_int_equal(wrn_model_parse("resnet50", &s), WRN_STATUS_INVALID_ARGUMENT);
  /* The ImageNet models need square inputs of at least 32x32; no dropout outside WRN-d-k. */
  s.in_h = s.in_w = 16;
  assert_int_equal(wrn_model_parse("wrn-50-2", &s), WRN_STATUS_INVALID_ARGUMENT);
  s.in_h = s.in_w = 32;
  WT_OK(wrn_model_parse("wrn-50-2", &s));
  assert_int_equal(s.arch, WRN_ARCH_RESNET);
  assert_int_equal(wrn_model_default_size(&s), 224);
  char name[64];
  wrn_model_name(&s, name, sizeof name);
  assert_string_equal(name, "wrn-50-2");
  WT_OK(wrn_model_parse("resnet-50", &s));
  wrn_model_name(&s, name, sizeof name);
  assert_string_equal(name, "resnet-50");
  s.dropout = 0.3;
  assert_int_equal(wrn_model_check(&s), WRN_STATUS_INVALID_ARGUMENT);
  s.dropout = 0;
  WT_OK(wrn_model_parse("preresnet-1001", &s));
  assert_int_equal(s.arch, WRN_ARCH_PREACT);
  wrn_model_name(&s, name, sizeof name);
  assert_string_equal(name, "preresnet-1001");
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
      cmocka_unit_test(test_resnet_counts), cmocka_unit_test(test_resnet_names),
      cmocka_unit_test(test_bad_specs)};
  return WT_RUN_GROUP("models", tests, NULL, NULL);
}
