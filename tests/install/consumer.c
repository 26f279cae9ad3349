/* A program outside the source tree that uses the installed libwrn: it opens a device (the
 * WRN_DEVICE selector, else the default), builds a WRN-10-1, finalizes and initialises it, runs
 * one inference forward pass on a batch of 4 random images and checks that every logit is
 * finite. Prints "consumer: ok" and exits 0 on success; says what failed and exits 1 else. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <wrn_models.h>

#define BATCH 4

static int failed(const char *what) {
  fprintf(stderr, "consumer: %s: %s\n", what, wrn_last_error());
  return 1;
}

int main(void) {
  printf("consumer: libwrn %s\n", wrn_version());
  wrn_device_info dev;
  if (wrn_device_select(NULL, &dev) != WRN_OK) return failed("choosing a device");
  wrn_ctx_options co = {WRN_F32, 0, 0};
  wrn_ctx *ctx = NULL;
  if (wrn_ctx_open(&ctx, &dev, &co) != WRN_OK) return failed("opening the device");
  wrn_net_options no;
  wrn_net_options_default(&no);
  wrn_model_spec spec = {10, 1, 10, 0.0, 3, 32, 32, WRN_ARCH_WRN};
  wrn_net *net = NULL;
  int rc = 1;
  static uint8_t img[BATCH * 3 * 32 * 32];
  int32_t labels[BATCH] = {0, 1, 2, 3};
  double logits[BATCH * 10];
  uint32_t s = 12345;
  for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
  wrn_augment a = {0, 4, {125.3f, 123.0f, 113.9f}, {63.0f, 62.1f, 66.7f}, 1, 0, 0};
  if (wrn_net_create(&net, ctx, BATCH, &no) != WRN_OK) failed("creating the network");
  else if (wrn_model_build(net, &spec) != WRN_OK) failed("building WRN-10-1");
  else if (wrn_net_finalize(net) != WRN_OK) failed("finalizing");
  else if (wrn_net_init_params(net, 1) != WRN_OK) failed("initialising");
  else if (wrn_net_set_batch(net, img, labels, BATCH, &a) != WRN_OK) failed("uploading a batch");
  else if (wrn_net_forward(net, 0, 0, 0) != WRN_OK) failed("forward pass");
  else if (wrn_net_read_logits(net, logits, BATCH) != WRN_OK) failed("reading the logits");
  else {
    rc = 0;
    for (int i = 0; i < BATCH * 10; i++)
      if (!isfinite(logits[i])) {
        fprintf(stderr, "consumer: logit %d is %g\n", i, logits[i]);
        rc = 1;
      }
    if (!rc)
      printf("consumer: ok: %zu parameters on %s, logits[0][0..2] = %.4f %.4f %.4f\n",
             wrn_net_param_count(net), dev.name, logits[0], logits[1], logits[2]);
  }
  wrn_net_free(net);
  wrn_ctx_free(ctx);
  return rc;
}
