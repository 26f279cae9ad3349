/* Bottleneck ResNets: the pre-activation ResNet for 32x32 images (He, Zhang, Ren, Sun 2016,
 * "Identity Mappings in Deep Residual Networks", depth 9N+2, the baselines of the WRN paper's
 * Table 5) and torchvision's ImageNet ResNet with post-activation bottlenecks (resnet-50, and
 * wide_resnet50_2 = WRN-50-2-bottleneck, whose inner widths are doubled). */
#include "models_internal.h"

#include <stdio.h>
#include <string.h>

/* Blocks per stage of the ImageNet ResNets, or NULL for another depth. */
static const int *resnet_blocks(int depth) {
  static const int d50[4] = {3, 4, 6, 3}, d101[4] = {3, 4, 23, 3}, d152[4] = {3, 8, 36, 3};
  return depth == 50 ? d50 : depth == 101 ? d101 : depth == 152 ? d152 : NULL;
}

static int half_up(int v) { return (v + 1) / 2; } /* a stride-2 layer's output side */

wrn_status wrn_resnet_check(const wrn_model_spec *s) {
  if (s->arch == WRN_ARCH_PREACT) {
    if (s->depth < 11 || (s->depth - 2) % 9 != 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                      "pre-activation ResNet depth %d is not 9N+2 with N >= 1 (11, 20, ..., "
                      "164, 1001)",
                      s->depth);
    if (s->width != 1)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                      "pre-activation ResNet width %d: only 1 (the paper's model) is built",
                      s->width);
    if (s->in_c < 1 || s->in_h < 8 || s->in_w < 8 || s->in_h % 4 || s->in_w % 4)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                      "input %dx%dx%d: need at least 8x8 with sides divisible by 4", s->in_c,
                      s->in_h, s->in_w);
    return WRN_OK;
  }
  if (!resnet_blocks(s->depth))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "ResNet depth %d: the bottleneck ResNets are 50, 101 or 152 deep", s->depth);
  if (s->width < 1 || s->width > 8)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "ResNet width %d must be in 1..8", s->width);
  if (s->in_c < 1 || s->in_h < 32 || s->in_h != s->in_w)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "input %dx%dx%d: the ImageNet ResNets need square images of at least 32x32 "
                    "(224x224 as trained)",
                    s->in_c, s->in_h, s->in_w);
  return WRN_OK;
}

static int preact_build(wrn_net *net, const wrn_model_spec *s) {
  const int nb = (s->depth - 2) / 9;
  char name[96];
  int x = wrn_net_input(net, s->in_c, s->in_h, s->in_w);
  x = wrn_net_conv(net, "conv1.weight", x, 16, 3, 1, 1);
  int c_in = 16;
  for (int g = 1; g <= 3; g++) {
    const int planes = 16 << (g - 1), c_out = 4 * planes;
    for (int i = 0; i < nb; i++) {
      const int stride = (g > 1 && i == 0) ? 2 : 1;
#define NAME(part) (snprintf(name, sizeof name, "layer%d.%d.%s", g, i, part), name)
      int o = wrn_net_bn(net, NAME("bn1"), x, 1);
      int sc = x;
      /* The projection sees the pre-activated input, as in the reference code. */
      if (stride != 1 || c_in != c_out) sc = wrn_net_conv(net, NAME("shortcut.weight"), o, c_out, 1, stride, 0);
      int y = wrn_net_conv(net, NAME("conv1.weight"), o, planes, 1, 1, 0);
      y = wrn_net_bn(net, NAME("bn2"), y, 1);
      y = wrn_net_conv(net, NAME("conv2.weight"), y, planes, 3, stride, 1);
      y = wrn_net_bn(net, NAME("bn3"), y, 1);
      y = wrn_net_conv(net, NAME("conv3.weight"), y, c_out, 1, 1, 0);
#undef NAME
      x = wrn_net_add(net, y, sc);
      c_in = c_out;
    }
  }
  x = wrn_net_bn(net, "bn", x, 1);
  x = wrn_net_avgpool(net, x, s->in_h / 4, 1, 0);
  return wrn_net_linear(net, "fc", x, s->classes);
}

static int resnet_build(wrn_net *net, const wrn_model_spec *s) {
  const int *blocks = resnet_blocks(s->depth);
  char name[96];
  int x = wrn_net_input(net, s->in_c, s->in_h, s->in_w);
  x = wrn_net_conv(net, "conv1.weight", x, 64, 7, 2, 3);
  x = wrn_net_bn(net, "bn1", x, 1);
  x = wrn_net_maxpool(net, x, 3, 2, 1);
  int c_in = 64;
  for (int g = 1; g <= 4; g++) {
    const int planes = 64 << (g - 1), width = planes * s->width, c_out = 4 * planes;
    for (int i = 0; i < blocks[g - 1]; i++) {
      /* torchvision (v1.5) strides the 3x3 conv, not the first 1x1. */
      const int stride = (g > 1 && i == 0) ? 2 : 1;
#define NAME(part) (snprintf(name, sizeof name, "layer%d.%d.%s", g, i, part), name)
      int y = wrn_net_conv(net, NAME("conv1.weight"), x, width, 1, 1, 0);
      y = wrn_net_bn(net, NAME("bn1"), y, 1);
      y = wrn_net_conv(net, NAME("conv2.weight"), y, width, 3, stride, 1);
      y = wrn_net_bn(net, NAME("bn2"), y, 1);
      y = wrn_net_conv(net, NAME("conv3.weight"), y, c_out, 1, 1, 0);
      y = wrn_net_bn(net, NAME("bn3"), y, 0);
      int sc = x;
      if (stride != 1 || c_in != c_out) {
        sc = wrn_net_conv(net, NAME("downsample.0.weight"), x, c_out, 1, stride, 0);
        sc = wrn_net_bn(net, NAME("downsample.1"), sc, 0);
      }
#undef NAME
      x = wrn_net_add_relu(net, y, sc);
      c_in = c_out;
    }
  }
  int side = s->in_h;
  for (int i = 0; i < 5; i++) side = half_up(side);
  x = wrn_net_avgpool(net, x, side, 1, 0);
  return wrn_net_linear(net, "fc", x, s->classes);
}

wrn_status wrn_resnet_build(wrn_net *net, const wrn_model_spec *s) {
  MODEL_TRY(wrn_resnet_check(s));
  int x = s->arch == WRN_ARCH_PREACT ? preact_build(net, s) : resnet_build(net, s);
  if (x < 0) return WRN_STATUS_INVALID_ARGUMENT;
  return wrn_net_plan(net);
}

/* Parameters (count) and multiply-adds per image (macs) of the architecture, from the spec
 * alone, for the tests to hold against the built network. */
static void resnet_cost(const wrn_model_spec *s, size_t *count, double *macs) {
  size_t p = 0;
  double m = 0;
  if (s->arch == WRN_ARCH_PREACT) {
    const int nb = (s->depth - 2) / 9;
    double hw = (double)s->in_h * s->in_w;
    p += (size_t)9 * s->in_c * 16;
    m += hw * 9.0 * s->in_c * 16;
    int c_in = 16;
    for (int g = 1; g <= 3; g++) {
      const int planes = 16 << (g - 1), c_out = 4 * planes;
      for (int i = 0; i < nb; i++) {
        const int stride = (g > 1 && i == 0) ? 2 : 1;
        const double ohw = stride == 2 ? hw / 4 : hw;
        p += 2 * (size_t)c_in + (size_t)c_in * planes;          /* bn1, conv1 */
        p += 2 * (size_t)planes + (size_t)9 * planes * planes;  /* bn2, conv2 */
        p += 2 * (size_t)planes + (size_t)planes * c_out;       /* bn3, conv3 */
        m += hw * c_in * planes + ohw * 9.0 * planes * planes + ohw * planes * c_out;
        if (stride != 1 || c_in != c_out) {
          p += (size_t)c_in * c_out;
          m += ohw * c_in * c_out;
        }
        hw = ohw;
        c_in = c_out;
      }
    }
    p += 2 * (size_t)c_in + (size_t)c_in * s->classes + (size_t)s->classes;
    m += (double)c_in * s->classes;
  } else {
    const int *blocks = resnet_blocks(s->depth);
    int side = half_up(s->in_h);
    p += (size_t)49 * s->in_c * 64 + 2 * 64;
    m += (double)side * side * 49.0 * s->in_c * 64;
    side = half_up(side); /* the max pool */
    int c_in = 64;
    for (int g = 1; g <= 4; g++) {
      const int planes = 64 << (g - 1), w = planes * s->width, c_out = 4 * planes;
      for (int i = 0; i < blocks[g - 1]; i++) {
        const int stride = (g > 1 && i == 0) ? 2 : 1;
        const int oside = stride == 2 ? half_up(side) : side;
        const double hw = (double)side * side, ohw = (double)oside * oside;
        p += (size_t)c_in * w + 2 * (size_t)w + (size_t)9 * w * w + 2 * (size_t)w +
             (size_t)w * c_out + 2 * (size_t)c_out;
        m += hw * c_in * w + ohw * 9.0 * w * w + ohw * (double)w * c_out;
        if (stride != 1 || c_in != c_out) {
          p += (size_t)c_in * c_out + 2 * (size_t)c_out;
          m += ohw * c_in * c_out;
        }
        side = oside;
        c_in = c_out;
      }
    }
    p += (size_t)c_in * s->classes + (size_t)s->classes;
    m += (double)c_in * s->classes;
  }
  *count = p;
  *macs = m;
}

size_t wrn_resnet_param_count(const wrn_model_spec *s) {
  size_t p;
  double m;
  if (wrn_resnet_check(s) != WRN_OK) return 0;
  resnet_cost(s, &p, &m);
  return p;
}

double wrn_resnet_forward_macs(const wrn_model_spec *s) {
  size_t p;
  double m;
  if (wrn_resnet_check(s) != WRN_OK) return 0;
  resnet_cost(s, &p, &m);
  return m;
}
