/* wrn tune: fills the tuner's store ahead of training, so that the first run of a model
 * starts without measuring. Builds the model at each batch size on the device, lets the
 * tuner choose every conv layer's algorithm per pass (and time the GEMM shapes they use),
 * runs one warm-up step, and prints the choices. */
#include "args.h"
#include "cli.h"
#include "wrn_models.h"
#include "wrn_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCHES 8

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn tune [--model wrn-D-K] [--batch N[,N...]] [--device X] [--classes N]\n"
          "                [--dropout P] [--workspace-mib M] [--conv-algo auto|NAME[:K=V,...]]\n"
          "Times the convolution algorithms (im2col, implicit, splitk, winograd2, winograd4,\n"
          "fft, direct) and their parameter sets for every conv layer and pass of the model, keeps the\n"
          "fastest in the tuner's store next to the kernel cache, and prints the choices. Later\n"
          "runs of the same model, batch, device and driver find them there (WRN_NO_CACHE=1\n"
          "stores nothing). Defaults: wrn-28-10, batch 128, workspace 1024 MiB.\n");
}

static int copy_text(const char *flag, const char *v, char *out, size_t n) {
  if (!v[0] || strlen(v) >= n) {
    fprintf(stderr, "wrn tune: %s wants a value of 1 to %zu characters\n", flag, n - 1);
    return 2;
  }
  memcpy(out, v, strlen(v) + 1);
  return 0;
}

static int tune_one(const char *model, const wrn_device_info *dev, int batch, int classes,
                    double dropout, double ws_mib, const char *algo) {
  wrn_model_spec spec = {0, 0, classes, dropout, 3, 32, 32, WRN_ARCH_WRN};
  if (wrn_model_parse(model, &spec) != WRN_OK) {
    cli_error("tune", "--model");
    return 2;
  }
  wrn_ctx *ctx = NULL;
  wrn_net *net = NULL;
  uint8_t *img = NULL;
  int32_t *lab = NULL;
  int rc = 1;
  wrn_ctx_options co = {WRN_F32, 0, 0};
  wrn_net_options no;
  wrn_net_options_default(&no);
  no.max_workspace_elems = (size_t)(ws_mib * 1048576.0 / 4);
  double t0 = wrn_seconds();
  if (wrn_ctx_open(&ctx, dev, &co) != WRN_OK) {
    cli_error("tune", "opening the device");
    goto done;
  }
  if (wrn_net_create(&net, ctx, batch, &no) != WRN_OK || wrn_model_build(net, &spec) != WRN_OK ||
      (algo && wrn_net_set_conv_choices(net, algo) != WRN_OK) || wrn_net_finalize(net) != WRN_OK ||
      wrn_net_init_params(net, 1) != WRN_OK) {
    cli_error("tune", "choosing the algorithms");
    goto done;
  }
  const double t1 = wrn_seconds();
  img = calloc((size_t)batch * 3 * 32 * 32, 1);
  lab = calloc((size_t)batch, sizeof *lab);
  if (!img || !lab) {
    fprintf(stderr, "wrn tune: out of host memory\n");
    goto done;
  }
  wrn_augment a = wrn_augment_recipe();
  a.augment = 0;
  if (wrn_net_set_batch(net, img, lab, batch, &a) != WRN_OK || wrn_net_warmup(net) != WRN_OK) {
    cli_error("tune", "warming up");
    goto done;
  }
  printf("%s, batch %d on %s: algorithms chosen in %.1f s, warm-up step %.1f s\n", model, batch,
         dev->name, t1 - t0, wrn_seconds() - t1);
  printf("  %-24s %-16s %-24s %s\n", "layer", "pass", "shape", "algorithm");
  for (int i = 0; i < wrn_net_layer_count(net); i++)
    for (int p = 0; p < WRN_CONV_PASSES; p++) {
      const char *c = wrn_net_conv_choice(net, i, (wrn_conv_pass)p);
      if (!c[0]) continue;
      wrn_layer_info li;
      wrn_net_layer(net, i, &li);
      char shape[64];
      snprintf(shape, sizeof shape, "%dx%dx%d %dx%d/%d -> %d", li.in_c, li.in_h, li.in_w, li.k,
               li.k, li.stride, li.out_c);
      printf("  %-24s %-16s %-24s %s\n", li.name, wrn_conv_pass_name((wrn_conv_pass)p), shape, c);
    }
  char file[4096];
  if (wrn_ctx_tune_file(ctx, file, sizeof file) == WRN_OK && file[0])
    printf("  stored in %s\n", file);
  else
    printf("  not stored (the tuner's cache is off)\n");
  const char *warn = wrn_ctx_warning(ctx);
  if (warn[0]) fprintf(stderr, "wrn tune: warning: %s\n", warn);
  rc = 0;
done:
  free(img), free(lab);
  wrn_net_free(net);
  wrn_ctx_free(ctx);
  return rc;
}

int cmd_tune(int argc, char **argv) {
  char model[64] = "wrn-28-10", device[256] = "";
  int batches[MAX_BATCHES] = {128}, nb = 1, classes = 10;
  double dropout = 0, ws_mib = 1024;
  const char *algo = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (strncmp(a, "--", 2)) {
      fprintf(stderr, "wrn tune: unexpected argument '%s'\n", a);
      return 2;
    }
    if (!(v = arg_value("tune", argc, argv, &i))) return 2;
    int rc = 0;
    if (!strcmp(a, "--model")) rc = copy_text(a, v, model, sizeof model);
    else if (!strcmp(a, "--device")) rc = copy_text(a, v, device, sizeof device);
    else if (!strcmp(a, "--batch")) rc = arg_int_list("tune", a, v, 1, 1 << 20, batches, MAX_BATCHES, &nb);
    else if (!strcmp(a, "--classes")) rc = arg_int("tune", a, v, 2, 100000, &classes);
    else if (!strcmp(a, "--dropout")) rc = arg_double("tune", a, v, 0, 0.99, &dropout);
    else if (!strcmp(a, "--workspace-mib")) rc = arg_double("tune", a, v, 1, 1 << 20, &ws_mib);
    else if (!strcmp(a, "--conv-algo")) {
      if (strcmp(v, "auto") && wrn_conv_choice_check(v) != WRN_OK) {
        fprintf(stderr, "wrn tune: --conv-algo: %s\n", wrn_last_error());
        return 2;
      }
      algo = v;
    } else {
      fprintf(stderr, "wrn tune: unknown flag '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (rc) return rc;
  }
  wrn_device_info dev;
  if (wrn_device_select(device[0] ? device : NULL, &dev) != WRN_OK) {
    cli_error("tune", "choosing a device");
    return 1;
  }
  for (int b = 0; b < nb; b++) {
    int rc = tune_one(model, &dev, batches[b], classes, dropout, ws_mib, algo);
    if (rc) return rc;
  }
  return 0;
}
