/* wrn summary: a model's layer table, parameter count, FLOPs and planned memory. */
#include "args.h"
#include "cli.h"
#include "wrn_models.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f, "usage: wrn summary [--model NAME] [--classes N] [--dropout P] [--batch N]\n"
             "                   [--image-size S]\n"
             "Prints the layers of a model (default wrn-28-10, 10 classes), the parameter count,\n"
             "forward FLOPs per image, and the activation memory the planner places at --batch\n"
             "(default 128) against the sum without reuse. Needs no device. Models: wrn-D-K\n"
             "(D = 6N+4), preresnet-D (D = 9N+2: 164, 1001), resnet-50 and wrn-50-2 (torchvision's\n"
             "resnet50 and wide_resnet50_2, also at depth 101 and 152). Images are SxS: 32 by\n"
             "default, 224 for the ImageNet models.\n");
}

static const char *kind_name(wrn_layer_kind k) {
  switch (k) {
  case WRN_LAYER_CONV: return "conv";
  case WRN_LAYER_BN: return "bn";
  case WRN_LAYER_DROPOUT: return "dropout";
  case WRN_LAYER_ADD: return "add";
  case WRN_LAYER_AVGPOOL: return "avgpool";
  case WRN_LAYER_LINEAR: return "linear";
  case WRN_LAYER_MAXPOOL: return "maxpool";
  }
  return "?";
}

static void with_commas(size_t v, char *out, size_t n) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%zu", v);
  size_t len = strlen(tmp), o = 0;
  for (size_t i = 0; i < len && o + 2 < n; i++) {
    out[o++] = tmp[i];
    if ((len - i - 1) % 3 == 0 && i + 1 < len) out[o++] = ',';
  }
  out[o] = '\0';
}

int cmd_summary(int argc, char **argv) {
  wrn_model_spec spec = {28, 10, 10, 0.0, 3, 32, 32, WRN_ARCH_WRN};
  int batch = 128, size = 0;
  const char *model = "wrn-28-10";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--model") || !strcmp(a, "--classes") || !strcmp(a, "--dropout") ||
        !strcmp(a, "--batch") || !strcmp(a, "--image-size")) {
      if (!(v = arg_value("summary", argc, argv, &i))) return 2;
      if (!strcmp(a, "--model")) model = v;
      else if (!strcmp(a, "--classes") && arg_int("summary", a, v, 2, 100000, &spec.classes))
        return 2;
      else if (!strcmp(a, "--dropout") && arg_double("summary", a, v, 0, 0.999, &spec.dropout))
        return 2;
      else if (!strcmp(a, "--batch") && arg_int("summary", a, v, 1, 1 << 20, &batch))
        return 2;
      else if (!strcmp(a, "--image-size") && arg_int("summary", a, v, 8, 4096, &size))
        return 2;
    } else {
      fprintf(stderr, "wrn summary: unknown flag '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (wrn_model_parse(model, &spec) != WRN_OK) {
    fprintf(stderr, "wrn summary: --model: %s\n", wrn_last_error());
    return 2;
  }
  spec.in_h = spec.in_w = size ? size : wrn_model_default_size(&spec);
  if (wrn_model_check(&spec) != WRN_OK) {
    fprintf(stderr, "wrn summary: %s\n", wrn_last_error());
    return 2;
  }
  wrn_net *net;
  if (wrn_net_create(&net, NULL, batch, NULL) != WRN_OK || wrn_model_build(net, &spec) != WRN_OK) {
    cli_error("summary", "building the model");
    return 1;
  }
  char name[64];
  wrn_model_name(&spec, name, sizeof name);
  printf("%s, %d classes%s, input %dx%dx%d\n\n", name, spec.classes,
         spec.dropout > 0 ? ", dropout" : "", spec.in_c, spec.in_h, spec.in_w);
  printf("%4s  %-28s %-12s %-16s %-16s %12s %10s\n", "#", "name", "kind", "input", "output",
         "params", "MFLOPs");
  for (int i = 0; i < wrn_net_layer_count(net); i++) {
    wrn_layer_info l;
    wrn_net_layer(net, i, &l);
    char in[32], out[32], kind[32], pc[32];
    snprintf(in, sizeof in, "%dx%dx%d", l.in_c, l.in_h, l.in_w);
    snprintf(out, sizeof out, "%dx%dx%d", l.out_c, l.out_h, l.out_w);
    if (l.kind == WRN_LAYER_CONV || l.kind == WRN_LAYER_AVGPOOL || l.kind == WRN_LAYER_MAXPOOL)
      snprintf(kind, sizeof kind, "%s%dx%d/%d", kind_name(l.kind), l.k, l.k, l.stride);
    else if (l.kind == WRN_LAYER_BN && l.relu)
      snprintf(kind, sizeof kind, "bn+relu");
    else if (l.kind == WRN_LAYER_ADD && l.relu)
      snprintf(kind, sizeof kind, "add+relu");
    else if (l.kind == WRN_LAYER_DROPOUT)
      snprintf(kind, sizeof kind, "drop %.2g", l.p);
    else
      snprintf(kind, sizeof kind, "%s", kind_name(l.kind));
    with_commas(l.params, pc, sizeof pc);
    printf("%4d  %-28s %-12s %-16s %-16s %12s %10.2f\n", i, l.name[0] ? l.name : "-", kind, in,
           out, pc, 2 * l.macs / 1e6);
  }
  char pc[32];
  with_commas(wrn_net_param_count(net), pc, sizeof pc);
  double macs = wrn_net_forward_macs(net);
  printf("\nparameters       %s (conv weights, BN gamma/beta, linear weight/bias)\n", pc);
  printf("forward          %.3f G multiply-adds = %.3f GFLOP per image; training step about "
         "3x: %.2f GFLOP per image\n",
         macs / 1e9, 2 * macs / 1e9, 6 * macs / 1e9);
  size_t arena, naive, ws, params;
  wrn_net_memory(net, &arena, &naive, &ws, &params);
  const double mib = 1048576.0;
  printf("memory at batch %d (fp32): activations+gradients %.1f MiB planned vs %.1f MiB "
         "without reuse (%.1fx less); conv workspace %.1f MiB; parameters+gradients+momentum "
         "%.1f MiB\n",
         batch, arena / mib, naive / mib, naive / (double)(arena ? arena : 1), ws / mib,
         params / mib);
  wrn_net_free(net);
  return 0;
}
