/* Private to the trainer (io/train.c, io/replicas.c): the seam between a run and the devices
 * its steps run on, and error context. */
#ifndef WRN_TRAIN_INTERNAL_H
#define WRN_TRAIN_INTERNAL_H

#include "wrn_train.h"

/* Prefixes the last error message with `what` ("opening the device: ..."); returns s. */
wrn_status wrn_train_context(wrn_status s, const char *what);

/* Returns a failing status from the enclosing function, its message prefixed with `what`. */
#define TRAIN_TRY(what, expr)                                                               \
  do {                                                                                      \
    wrn_status train_try_s_ = (expr);                                                       \
    if (train_try_s_ != WRN_OK) return wrn_train_context(train_try_s_, what);               \
  } while (0)

/* The replicas of the network a run trains. The run (io/train.c) hands each global batch to
 * wrn_replicas_train and never touches a device itself; today there is one replica on one
 * device. A data-parallel set splits the batch here, runs each replica on its own
 * context, queue and thread, combines the gradients in a fixed order before the update and
 * keeps every replica's parameters identical; checkpoints are read from replica 0 and loads go
 * to every replica. */
typedef struct wrn_replica {
  wrn_device_info dev;
  wrn_ctx *ctx;
  wrn_net *net;
} wrn_replica;

typedef struct wrn_replicas {
  int n;
  wrn_replica *r; /* [n] */
} wrn_replicas;

/* Opens the device(s) of o->device and builds a network of o->batch on each (hooks->build,
 * then finalize). *R is zeroed first; free with wrn_replicas_free (also after a failure). */
wrn_status wrn_replicas_open(wrn_replicas *R, const wrn_train_options *o,
                             const wrn_train_hooks *hooks);
void wrn_replicas_free(wrn_replicas *R);
/* The network checkpoints are written from and descriptions read from. */
wrn_net *wrn_replicas_primary(const wrn_replicas *R);
/* The recipe's initialisation from seed; loading a checkpoint (wrn_checkpoint_load). */
wrn_status wrn_replicas_init(wrn_replicas *R, uint64_t seed);
wrn_status wrn_replicas_load(wrn_replicas *R, const wrn_st_file *f, const char *path,
                             int with_momentum);
wrn_status wrn_replicas_warmup(wrn_replicas *R);
/* One training step on the global batch b: input pipeline a, update sgd, dropout keyed by
 * (dropout_seed, step); the loss summed over b->count samples and the number right. */
wrn_status wrn_replicas_train(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                              const wrn_sgd *sgd, uint64_t dropout_seed, uint64_t step,
                              double *loss_sum, int *correct);
/* Inference on b (a without augmentation): loss sum and number right. */
wrn_status wrn_replicas_eval(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                             double *loss_sum, int *correct);

#endif
