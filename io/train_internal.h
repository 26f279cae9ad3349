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

/* Returns a failing status from the enclosing function as it is. */
#define IO_TRY(expr)                                                                        \
  do {                                                                                      \
    wrn_status io_try_s_ = (expr);                                                          \
    if (io_try_s_ != WRN_OK) return io_try_s_;                                              \
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
 * wrn_replicas_train and never touches a device itself. One replica runs the step on its
 * network directly. A data-parallel set (--devices, and/or several MPI ranks: the workers,
 * ordered by rank, then by local device) splits the global batch of B samples into slices
 * b_w (in proportion to measured speed, at least a minimum each); each local replica has
 * its own context, queues and host thread and runs forward, loss (the mean over its slice)
 * and backward on its slice, with dropout and augmentation keyed by the global sample index.
 * Its gradients are read back to host memory layer by layer as backward goes, in reverse
 * layer order, and combined as sum_w (b_w / B) g_w in double, in worker order (over ranks by
 * an MPI sum of buckets started as they are read). Every replica then applies the same
 * update to the same parameters with the same combined gradient (the devices of a set that
 * are not all alike get replica 0's parameters copied after each update), so the parameters
 * stay identical. Batch norm normalises each slice on its own; the running statistics are
 * the b_w-weighted mean of the replicas' after every step, on every replica: what
 * checkpoints hold. Checkpoints are read from replica 0 and loads go to every replica. */
typedef struct wrn_replica {
  wrn_device_info dev;
  wrn_ctx *ctx;
  wrn_net *net;
  int b, first;         /* its slice of the global batch: samples [first, first + b) */
  void *stage;          /* host copy of its gradient (real type): stage_mem mapped, or */
  cl_mem stage_mem;     /* malloc'ed when that is NULL */
  size_t *roff, *rcnt;  /* gradient ranges read back this step, in backward order */
  cl_event *ev;         /* their reads */
  int nev, cap;         /* ranges enqueued so far */
  int done;             /* its thread finished the current job */
  int collect;          /* backward reads its gradients back (training steps only) */
  wrn_status status;    /* of that job, with msg */
  char msg[2048];
  double busy;          /* seconds of its last forward + backward */
  double busy_sum, imgs_sum; /* this epoch */
  double t_done;        /* when its last gradient read finished (wrn_seconds) */
  double loss;          /* of its slice in the last step */
  int correct;
  struct wrn_replicas *owner;
} wrn_replica;

typedef struct wrn_replicas {
  int n;            /* local replicas */
  wrn_replica *r;   /* [n] */
  int ranks, rank;  /* MPI: 1 and 0 without */
  int workers;      /* n * ranks */
  int *split;       /* [workers] the global split */
  int B, min_b, fixed; /* global batch, least per worker, split given (--split) */
  int unlike;       /* local devices not all alike: copy replica 0's parameters */
  double *speed;    /* [workers] images/s, smoothed over epochs (0: not measured) */
  double *acc;      /* [nparams] combined gradient */
  void *gout;       /* the combined gradient in the real type */
  size_t nparams, nbufs, bucket;
  double allreduce_s, step_s; /* of the last step: waiting for the combined gradient, all */
  double combine_sum; int64_t combine_steps; /* this epoch */
  const wrn_train_options *o;
  const wrn_train_hooks *h;
  /* the job of the replica threads */
  int job;
  const wrn_batch *batch;
  const wrn_augment *aug;
  const wrn_sgd *sgd;
  uint64_t dropout_seed, step;
  void *mu, *cv; /* pthread mutex and condition (opaque here) */
} wrn_replicas;

/* Opens the device(s) (o->devices, else o->device; the MPI ranks when wrn_dist_init ran)
 * and builds a network of the worker's slice on each (hooks->build, then finalize). *R is
 * zeroed first; free with wrn_replicas_free (also after a failure). */
wrn_status wrn_replicas_open(wrn_replicas *R, const wrn_train_options *o,
                             const wrn_train_hooks *hooks);
void wrn_replicas_free(wrn_replicas *R);
/* The network checkpoints are written from and descriptions read from. */
wrn_net *wrn_replicas_primary(const wrn_replicas *R);
/* The recipe's initialisation from seed (rank 0's seed and weights on every rank); loading a
 * checkpoint (wrn_checkpoint_load) into every replica. */
wrn_status wrn_replicas_init(wrn_replicas *R, uint64_t seed);
wrn_status wrn_replicas_load(wrn_replicas *R, const wrn_st_file *f, const char *path,
                             int flags);
/* Warms every replica up; with an automatic split, times each and balances the split. */
wrn_status wrn_replicas_warmup(wrn_replicas *R);
/* One training step on the global batch b: input pipeline a, update sgd, dropout keyed by
 * (dropout_seed, step); the loss summed over b->count samples and the number right. */
wrn_status wrn_replicas_train(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                              const wrn_sgd *sgd, uint64_t dropout_seed, uint64_t step,
                              double *loss_sum, int *correct);
/* Inference on b (a without augmentation): loss sum and number right. */
wrn_status wrn_replicas_eval(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                             double *loss_sum, int *correct);
/* The split as text "b0,b1,..." (workers in order). */
void wrn_replicas_split_text(const wrn_replicas *R, char *out, size_t len);
/* The split of a global batch B over w workers in proportion to their speeds (measured here
 * or received from other ranks: any double is taken), at least min_b each, summing to B. */
void wrn_split_by_speed(int *b, const double *speed, int w, int B, int min_b);
/* Sets the split from that text (a checkpoint's): INVALID_ARGUMENT when it does not fit. */
wrn_status wrn_replicas_set_split(wrn_replicas *R, const char *text);
/* The end of an epoch: the split of the next one from the speeds measured (automatic split
 * only); adds "devices_split" (this epoch's), "device_images_per_s", "allreduce_ms" (per
 * step, after the slowest backward) and "next_devices_split" fields. */
wrn_status wrn_replicas_epoch_end(wrn_replicas *R, wrn_json *log);
/* Whether any rank asks to stop (the max over ranks of stop). */
wrn_status wrn_replicas_agree_stop(wrn_replicas *R, int *stop);
/* 1 on the rank that writes files (rank 0). */
int wrn_replicas_writer(const wrn_replicas *R);

#endif
