/* The replicas a run trains: one network on one device (io/train_internal.h says what a
 * data-parallel set adds here). */
#include "train_internal.h"

#include <stdlib.h>
#include <string.h>

wrn_status wrn_replicas_open(wrn_replicas *R, const wrn_train_options *o,
                             const wrn_train_hooks *hooks) {
  memset(R, 0, sizeof *R);
  R->r = calloc(1, sizeof *R->r);
  if (!R->r) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  R->n = 1;
  wrn_replica *p = &R->r[0];
  TRAIN_TRY("choosing a device", wrn_device_select(o->device[0] ? o->device : NULL, &p->dev));
  wrn_ctx_options co = {WRN_F32, 0, 0};
  TRAIN_TRY("opening the device", wrn_ctx_open(&p->ctx, &p->dev, &co));
  wrn_net_options no;
  wrn_net_options_default(&no);
  no.bn_gamma_one = o->bn_gamma_one;
  no.label_smoothing = o->label_smoothing;
  no.max_workspace_elems = (size_t)(o->workspace_mib * 1048576.0 / 4);
  TRAIN_TRY("setting up the model", wrn_net_create(&p->net, p->ctx, o->batch, &no));
  TRAIN_TRY("setting up the model", hooks->build(p->net, o, hooks->user));
  if (o->conv_algo[0])
    TRAIN_TRY("setting up the model", wrn_net_set_conv_choices(p->net, o->conv_algo));
  TRAIN_TRY("setting up the model", wrn_net_finalize(p->net));
  return WRN_OK;
}

void wrn_replicas_free(wrn_replicas *R) {
  for (int i = 0; i < R->n; i++) {
    wrn_net_free(R->r[i].net);
    wrn_ctx_free(R->r[i].ctx);
  }
  free(R->r);
  memset(R, 0, sizeof *R);
}

wrn_net *wrn_replicas_primary(const wrn_replicas *R) { return R->r[0].net; }

wrn_status wrn_replicas_init(wrn_replicas *R, uint64_t seed) {
  return wrn_net_init_params(R->r[0].net, seed);
}

wrn_status wrn_replicas_load(wrn_replicas *R, const wrn_st_file *f, const char *path,
                             int with_momentum) {
  return wrn_checkpoint_load(R->r[0].net, f, path, with_momentum);
}

/* Nothing to do when every kernel came from the disk cache and no convolution choice was
 * measured: the first step then starts at once. */
wrn_status wrn_replicas_warmup(wrn_replicas *R) {
  return wrn_net_warmup_needed(R->r[0].net) ? wrn_net_warmup(R->r[0].net) : WRN_OK;
}

wrn_status wrn_replicas_train(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                              const wrn_sgd *sgd, uint64_t dropout_seed, uint64_t step,
                              double *loss_sum, int *correct) {
  wrn_net *net = R->r[0].net;
  wrn_status s = wrn_net_set_batch(net, b->images, b->labels, b->count, a);
  if (s != WRN_OK) return s;
  return wrn_train_step(net, b->count, sgd, dropout_seed, step, loss_sum, correct);
}

wrn_status wrn_replicas_eval(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                             double *loss_sum, int *correct) {
  wrn_net *net = R->r[0].net;
  wrn_status s = wrn_net_set_batch(net, b->images, b->labels, b->count, a);
  if (s != WRN_OK) return s;
  return wrn_train_eval_step(net, b->count, loss_sum, correct);
}
