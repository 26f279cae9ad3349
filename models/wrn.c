/* WRN-d-k for small images (Zagoruyko & Komodakis 2016), pre-activation blocks; the model
 * names and checks of every family (the ResNets are built in resnet.c). */
#include "wrn_models.h"

#include "models_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decimal number at *p (1 to 4 digits, no sign or space) ending at `stop`; -1 when
 * there is none. */
static int model_number(const char **p, char stop) {
  int v = 0, n = 0;
  const char *s = *p;
  while (*s >= '0' && *s <= '9' && n < 5) v = v * 10 + (*s++ - '0'), n++;
  if (n == 0 || n > 4 || *s != stop) return -1;
  *p = s;
  return v;
}

wrn_status wrn_model_parse(const char *name, wrn_model_spec *spec) {
  const char *p = name;
  int d = -1, k = -1;
  /* preresnet-D and resnet-D: one number (strict, as for wrn-D-K below). */
  static const char *const fam[4] = {"preresnet-", "PreResNet-", "resnet-", "ResNet-"};
  for (int f = 0; p && f < 4; f++)
    if (!strncmp(p, fam[f], strlen(fam[f]))) {
      const char *q = p + strlen(fam[f]);
      d = model_number(&q, '\0');
      if (d < 0) break;
      spec->arch = f < 2 ? WRN_ARCH_PREACT : WRN_ARCH_RESNET;
      spec->depth = d;
      spec->width = 1;
      return wrn_model_check(spec);
    }
  d = -1;
  if (p && (!strncmp(p, "wrn-", 4) || !strncmp(p, "WRN-", 4))) {
    p += 4;
    d = model_number(&p, '-');
    if (d >= 0) {
      p++;
      k = model_number(&p, '\0');
    }
  }
  if (d < 0 || k < 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "model '%s' is not of the form wrn-D-K (e.g. wrn-28-10), preresnet-D "
                    "(164, 1001), resnet-D or wrn-D-K with D = 50, 101, 152 (resnet-50, "
                    "wrn-50-2)", name ? name : "");
  spec->arch = (d == 50 || d == 101 || d == 152) ? WRN_ARCH_RESNET : WRN_ARCH_WRN;
  spec->depth = d;
  spec->width = k;
  return wrn_model_check(spec);
}

static wrn_status check_common(const wrn_model_spec *s) {
  if (s->classes < 2)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "classes %d must be >= 2", s->classes);
  if (!(s->dropout >= 0 && s->dropout < 1))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "dropout %g must be in [0, 1)", s->dropout);
  if (s->arch != WRN_ARCH_WRN && s->dropout > 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "dropout %g: only the WRN-d-k blocks have dropout (this model has none)",
                    s->dropout);
  return WRN_OK;
}

wrn_status wrn_model_check(const wrn_model_spec *s) {
  if (s->arch == WRN_ARCH_PREACT || s->arch == WRN_ARCH_RESNET) {
    MODEL_TRY(check_common(s));
    return wrn_resnet_check(s);
  }
  if (s->arch != WRN_ARCH_WRN)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "unknown model family %d", (int)s->arch);
  if (s->depth < 10 || (s->depth - 4) % 6 != 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "depth %d is not 6N+4 with N >= 1 (10, 16, 22, 28, 40, ...)", s->depth);
  if (s->width < 1 || s->width > 64)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "width %d must be in 1..64", s->width);
  MODEL_TRY(check_common(s));
  if (s->in_c < 1 || s->in_h < 8 || s->in_w < 8 || s->in_h % 4 || s->in_w % 4)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "input %dx%dx%d: need at least 8x8 with sides divisible by 4", s->in_c,
                    s->in_h, s->in_w);
  return WRN_OK;
}

void wrn_model_name(const wrn_model_spec *s, char *out, size_t n) {
  if (s->arch == WRN_ARCH_PREACT) snprintf(out, n, "preresnet-%d", s->depth);
  else if (s->arch == WRN_ARCH_RESNET && s->width == 1) snprintf(out, n, "resnet-%d", s->depth);
  else snprintf(out, n, "wrn-%d-%d", s->depth, s->width);
}

int wrn_model_default_size(const wrn_model_spec *s) {
  return s->arch == WRN_ARCH_RESNET ? 224 : 32;
}

wrn_status wrn_model_build(wrn_net *net, const wrn_model_spec *s) {
  wrn_status st = wrn_model_check(s);
  if (st != WRN_OK) return st;
  if (s->arch != WRN_ARCH_WRN) return wrn_resnet_build(net, s);
  int nb = (s->depth - 4) / 6;
  int widths[4] = {16, 16 * s->width, 32 * s->width, 64 * s->width};
  int x = wrn_net_input(net, s->in_c, s->in_h, s->in_w);
  x = wrn_net_conv(net, "conv0", x, widths[0], 3, 1, 1);
  int c_in = widths[0];
  char name[96];
  for (int g = 0; g < 3; g++) {
    for (int i = 0; i < nb; i++) {
      int stride = (g > 0 && i == 0) ? 2 : 1;
      int c_out = widths[g + 1];
      snprintf(name, sizeof name, "group%d.block%d.bn0", g, i);
      int o = wrn_net_bn(net, name, x, 1);
      snprintf(name, sizeof name, "group%d.block%d.conv0", g, i);
      int y = wrn_net_conv(net, name, o, c_out, 3, stride, 1);
      snprintf(name, sizeof name, "group%d.block%d.bn1", g, i);
      y = wrn_net_bn(net, name, y, 1);
      if (s->dropout > 0) y = wrn_net_dropout(net, y, s->dropout);
      snprintf(name, sizeof name, "group%d.block%d.conv1", g, i);
      y = wrn_net_conv(net, name, y, c_out, 3, 1, 1);
      int sc = x;
      if (c_in != c_out) {
        /* The projection shortcut sees the pre-activated input, as in the reference code. */
        snprintf(name, sizeof name, "group%d.block%d.convdim", g, i);
        sc = wrn_net_conv(net, name, o, c_out, 1, stride, 0);
      }
      x = wrn_net_add(net, y, sc);
      c_in = c_out;
    }
  }
  x = wrn_net_bn(net, "bn", x, 1);
  x = wrn_net_avgpool(net, x, s->in_h / 4, 1, 0);
  x = wrn_net_linear(net, "fc", x, s->classes);
  if (x < 0) return WRN_STATUS_INVALID_ARGUMENT;
  return wrn_net_plan(net);
}

size_t wrn_model_param_count(const wrn_model_spec *s) {
  if (s->arch != WRN_ARCH_WRN) return wrn_resnet_param_count(s);
  int nb = (s->depth - 4) / 6;
  int widths[4] = {16, 16 * s->width, 32 * s->width, 64 * s->width};
  size_t p = (size_t)9 * s->in_c * widths[0];
  int c_in = widths[0];
  for (int g = 0; g < 3; g++)
    for (int i = 0; i < nb; i++) {
      int c = widths[g + 1];
      p += 2 * (size_t)c_in;               /* bn0 */
      p += (size_t)9 * c_in * c;           /* conv0 */
      p += 2 * (size_t)c;                  /* bn1 */
      p += (size_t)9 * c * c;              /* conv1 */
      if (c_in != c) p += (size_t)c_in * c; /* convdim */
      c_in = c;
    }
  p += 2 * (size_t)c_in + (size_t)c_in * s->classes + (size_t)s->classes;
  return p;
}

double wrn_model_forward_macs(const wrn_model_spec *s) {
  if (s->arch != WRN_ARCH_WRN) return wrn_resnet_forward_macs(s);
  int nb = (s->depth - 4) / 6;
  int widths[4] = {16, 16 * s->width, 32 * s->width, 64 * s->width};
  double hw = (double)s->in_h * s->in_w;
  double m = hw * 9.0 * s->in_c * widths[0];
  int c_in = widths[0];
  for (int g = 0; g < 3; g++)
    for (int i = 0; i < nb; i++) {
      int c = widths[g + 1];
      double ohw = (g > 0 && i == 0) ? hw / 4 : hw;
      m += ohw * 9.0 * c_in * c + ohw * 9.0 * c * c;
      if (c_in != c) m += ohw * (double)c_in * c;
      hw = ohw;
      c_in = c;
    }
  return m + (double)c_in * s->classes;
}
