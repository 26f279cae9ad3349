/* Runs one model on given weights and inputs and writes what it computed, for
 * tests/test_torch_models.py to hold against PyTorch:
 *
 *   torch_probe MODEL CLASSES SIDE BATCH WEIGHTS INPUT OUT [f32|f64]
 *
 * WEIGHTS: a safetensors file with the model's parameters and BN running statistics under
 * its names (a torchvision state dict; other tensors such as num_batches_tracked are not
 * read). INPUT: "x" F64 [BATCH][3][SIDE][SIDE] and "labels" I32 [BATCH]. OUT receives
 * "eval_logits" (inference with the running statistics), then of one training step at the
 * same weights: "logits", "loss" (mean cross-entropy, [1]), "grad.<param>" for every
 * parameter and "running.<buffer>" (the running statistics after the step's update), all
 * F64. WRN_PROBE_CONV forces one convolution choice where it fits (default: the tuner's).
 * Exits 0, or 1 with the library's message. */
#include "wrn_io.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
  fprintf(stderr, "torch_probe: %s: %s\n", what, wrn_last_error());
  return 1;
}

/* Adds each named tensor of the flat array `flat` to the writer as F64 under prefix. */
static wrn_status add_flat(wrn_st_writer *w, wrn_net *net, int buffers, const char *prefix,
                           const double *flat, char (*names)[128], int *nn) {
  int cnt = buffers ? wrn_net_buffer_tensors(net) : wrn_net_param_tensors(net);
  for (int i = 0; i < cnt; i++) {
    const wrn_param_info *p = buffers ? wrn_net_buffer_tensor(net, i) : wrn_net_param_tensor(net, i);
    int64_t shape[4];
    for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
    snprintf(names[*nn], sizeof names[*nn], "%s%s", prefix, p->name);
    wrn_status s = wrn_st_writer_add(w, names[*nn], WRN_ST_F64, p->ndim, shape, flat + p->offset);
    if (s != WRN_OK) return s;
    (*nn)++;
  }
  return WRN_OK;
}

int main(int argc, char **argv) {
  if (argc < 8 || argc > 9) {
    fprintf(stderr, "usage: torch_probe MODEL CLASSES SIDE BATCH WEIGHTS INPUT OUT [f32|f64]\n");
    return 2;
  }
  wrn_model_spec spec = {0, 0, atoi(argv[2]), 0, 3, atoi(argv[3]), atoi(argv[3]), WRN_ARCH_WRN};
  int batch = atoi(argv[4]);
  wrn_dtype dt = argc == 9 && !strcmp(argv[8], "f64") ? WRN_F64 : WRN_F32;
  if (wrn_model_parse(argv[1], &spec) != WRN_OK) return fail("--model");
  if (batch < 1 || batch > 64) {
    fprintf(stderr, "torch_probe: batch %d must be in 1..64\n", batch);
    return 2;
  }
  const char *sel = getenv("WRN_TEST_DEVICE");
  wrn_device_info dev;
  if (wrn_device_select(sel ? sel : "cpu", &dev) != WRN_OK) return fail("choosing the device");
  wrn_ctx_options co = {dt, 0, 0};
  wrn_ctx *ctx = NULL;
  wrn_net *net = NULL;
  wrn_st_file *wf = NULL, *inf = NULL;
  wrn_st_writer *w = NULL;
  double *x = NULL, *eval_logits = NULL, *logits = NULL, *grads = NULL, *bufs = NULL;
  int32_t *labels = NULL;
  char (*names)[128] = NULL;
  int rc = 1;
  const size_t nin = (size_t)batch * 3 * spec.in_h * spec.in_w;
  if (wrn_ctx_open(&ctx, &dev, &co) != WRN_OK) {
    rc = fail("opening the device");
    goto done;
  }
  /* WRN_PROBE_CONV: a convolution choice for every layer ("im2col", ...) instead of the
   * tuner's, to tell the algorithms' rounding apart. */
  const char *conv = getenv("WRN_PROBE_CONV");
  if (wrn_net_create(&net, ctx, batch, NULL) != WRN_OK || wrn_model_build(net, &spec) != WRN_OK ||
      (conv && *conv && wrn_net_set_conv_choices(net, conv) != WRN_OK) ||
      wrn_net_finalize(net) != WRN_OK) {
    rc = fail("building the model");
    goto done;
  }
  if (wrn_st_open(&wf, argv[5]) != WRN_OK || wrn_checkpoint_load(net, wf, argv[5], 0) != WRN_OK) {
    rc = fail("loading the weights");
    goto done;
  }
  const int classes = wrn_net_classes(net);
  const size_t np = wrn_net_flat_count(net, 0), nb = wrn_net_flat_count(net, 3);
  const int ntensors = wrn_net_param_tensors(net) + wrn_net_buffer_tensors(net) + 3;
  x = malloc(nin * sizeof *x);
  labels = malloc((size_t)batch * sizeof *labels);
  eval_logits = malloc((size_t)batch * classes * sizeof *eval_logits);
  logits = malloc((size_t)batch * classes * sizeof *logits);
  grads = malloc((np ? np : 1) * sizeof *grads);
  bufs = malloc((nb ? nb : 1) * sizeof *bufs);
  names = malloc((size_t)ntensors * sizeof *names);
  if (!x || !labels || !eval_logits || !logits || !grads || !bufs || !names) {
    fprintf(stderr, "torch_probe: out of host memory\n");
    goto done;
  }
  int64_t xs[4] = {batch, 3, spec.in_h, spec.in_w}, ls[1] = {batch};
  if (wrn_st_open(&inf, argv[6]) != WRN_OK ||
      wrn_st_read(inf, "x", WRN_ST_F64, 4, xs, x, nin * sizeof *x) != WRN_OK ||
      wrn_st_read(inf, "labels", WRN_ST_I32, 1, ls, labels, (size_t)batch * sizeof *labels) != WRN_OK) {
    rc = fail("reading the input");
    goto done;
  }
  double loss = 0;
  int correct = 0;
  if (wrn_net_set_input_real(net, x, labels, batch) != WRN_OK ||
      wrn_net_forward(net, 0, 0, 0) != WRN_OK ||
      wrn_net_read_logits(net, eval_logits, batch) != WRN_OK ||
      wrn_net_forward(net, 1, 0, 0) != WRN_OK || wrn_net_loss(net, batch, 1) != WRN_OK ||
      wrn_net_read_logits(net, logits, batch) != WRN_OK ||
      wrn_net_read_loss(net, batch, &loss, &correct) != WRN_OK ||
      wrn_net_backward(net) != WRN_OK || wrn_net_read(net, 1, grads) != WRN_OK ||
      wrn_net_read(net, 3, bufs) != WRN_OK) {
    rc = fail("running the model");
    goto done;
  }
  loss /= batch;
  int nn = 0;
  int64_t lg[2] = {batch, classes}, one[1] = {1};
  if (wrn_st_writer_new(&w) != WRN_OK ||
      wrn_st_writer_add(w, "eval_logits", WRN_ST_F64, 2, lg, eval_logits) != WRN_OK ||
      wrn_st_writer_add(w, "logits", WRN_ST_F64, 2, lg, logits) != WRN_OK ||
      wrn_st_writer_add(w, "loss", WRN_ST_F64, 1, one, &loss) != WRN_OK ||
      add_flat(w, net, 0, "grad.", grads, names, &nn) != WRN_OK ||
      add_flat(w, net, 1, "running.", bufs, names, &nn) != WRN_OK ||
      wrn_st_writer_write(w, argv[7]) != WRN_OK) {
    rc = fail("writing the output");
    goto done;
  }
  rc = 0;
done:
  wrn_st_writer_free(w);
  wrn_st_close(wf);
  wrn_st_close(inf);
  wrn_net_free(net);
  wrn_ctx_free(ctx);
  free(x), free(labels), free(eval_logits), free(logits), free(grads), free(bufs), free(names);
  return rc;
}
