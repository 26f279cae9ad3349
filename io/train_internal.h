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

/* Where a checkpoint says its run stands. */
typedef struct wrn_resume_point {
  int completed;            /* epochs completed */
  int64_t step;             /* steps done in the next one */
  int64_t correct, seen;    /* that epoch's counters so far */
  double loss_sum, train_time;
  double best_acc;          /* best test accuracy of the run, % */
} wrn_resume_point;
/* Reads the metadata pairs keys[i] = vals[i] of checkpoint `path` as strictly as flags:
 * epoch in 0..epochs and step_in_epoch in 0..steps_per_epoch-1 (both required), partial_seen
 * at most step_in_epoch * batch, partial_correct at most partial_seen, finite non-negative
 * sums and times, best_test_acc in [0, 100], format wrn-checkpoint-1 when given. FORMAT naming
 * the file and the key otherwise. */
wrn_status wrn_resume_point_parse(wrn_resume_point *r, const char *const *keys,
                                  const char *const *vals, int n, const char *path,
                                  int epochs, int64_t steps_per_epoch, int batch);
/* WRN_OK when `line` is one JSON object (no newline) whose "epoch" is `epoch`. */
wrn_status wrn_resume_log_line_check(const char *line, int epoch, const char *path);
/* The epoch of the last whole record of a log (0 when there is none or no file). */
wrn_status wrn_resume_log_last_epoch(const char *path, int *epoch);

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
