/* libwrn training: the paper's CIFAR recipe (step schedule, Nesterov SGD, momentum reset at
 * each drop, flip + crop) as a library, at three levels:
 *
 * - Options: wrn_train_options holds everything that defines a run, named like the wrn
 *   command's flags ("--lr", "--epoch-step", ...); checkpoints and logs store them under
 *   these names, so a run resumes with exactly its own options.
 * - Steps on one network: the learning rate of an epoch, the SGD settings of a step, the
 *   input pipeline of a step, one training step and one evaluation step (wrn_train_*).
 * - A run (wrn_trainer_*): data set, device, network, batch loaders, a run folder with
 *   log.jsonl, last.safetensors and best.safetensors, epochs with evaluation after each,
 *   atomic checkpoints, exact resume (bit-identical weights on the same device), and a stop
 *   flag the caller sets (from a signal handler, say) that ends the run after the current step
 *   with a checkpoint to resume from.
 *
 * Conventions are wrn.h's: functions return wrn_status and leave a message in
 * wrn_last_error(); the library never exits, installs no signal handlers and prints nothing:
 * progress goes to the caller's event hook. Not thread-safe: one thread drives a trainer. */
#ifndef WRN_TRAIN_H
#define WRN_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "wrn.h"
#include "wrn_io.h"
#include "wrn_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- options */

#define WRN_TRAIN_MAX_DROPS 16 /* learning-rate drops in a schedule */

#define WRN_TRAIN_CONV_ALGO_MAX 16384

/* The learning-rate schedule (--lr-schedule). */
typedef enum wrn_lr_schedule {
  WRN_LR_STEP = 0,  /* lr x lr_decay at each --epoch-step epoch (the recipe) */
  WRN_LR_COSINE = 1 /* cosine annealing from lr towards 0 over the epochs after the warm-up */
} wrn_lr_schedule;

typedef struct wrn_train_options {
  /* The model: opaque to the trainer, read by the build hook (wrn_train_hooks). */
  char model[64];  /* --model: a name for the build hook ("wrn-28-10") */
  int classes;     /* --classes: 0 takes the data set's */
  double dropout;  /* --dropout */
  /* Data. */
  char data[1024]; /* --data: a CIFAR-10, CIFAR-100 or SVHN folder (wrn_dataset_open), or
                      one holding train/ and val/ image folders (wrn_imagefolder_open) */
  wrn_dataset_kind dataset; /* --dataset auto|cifar10|cifar100|svhn|imagefolder */
  wrn_labels labels;        /* --labels fine|coarse */
  int train_limit, test_limit; /* --train-limit, --test-limit: first N images, 0 all */
  /* The recipe. */
  int epochs, batch;            /* --epochs (200), --batch (128) */
  double lr, lr_decay;          /* --lr (0.1), --lr-decay (0.2) */
  int lr_drops[WRN_TRAIN_MAX_DROPS], n_lr_drops; /* --epoch-step: 60,120,160 */
  double weight_decay;          /* --wd (5e-4) */
  double momentum;              /* --momentum (0.9) */
  int nesterov;                 /* --nesterov on|off (on) */
  int momentum_reset;           /* --momentum-reset on|off (on): clear momentum at each drop */
  int augment, shuffle;         /* --augment, --shuffle on|off (on) */
  int bn_gamma_one;             /* --bn-gamma-one on|off (off): BN gamma starts at 1 */
  wrn_lr_schedule lr_schedule;  /* --lr-schedule step|cosine (step) */
  int warmup_epochs;            /* --warmup-epochs (0): a linear warm-up over the first N */
  double label_smoothing;       /* --label-smoothing (0): training targets (1-eps) onehot + eps/k */
  int cutout;                   /* --cutout (0): a square of side N zeroed per training image */
  int meanstd;                  /* --meanstd on|off (on): the recipe's per-channel mean/std;
                                   off: pixels / 255 (the SVHN recipe) */
  int svhn_extra;               /* --svhn-extra on|off: SVHN trains on train + extra */
  int image_size;               /* --image-size S: the network's input side; 0: the data's
                                   (32; image folders 224) */
  int loader_threads;           /* --loader-threads N: JPEG decoding threads (the cores);
                                   not stored */
  uint64_t seed;                /* --seed (1): initialisation, order, augmentation, dropout */
  double workspace_mib;         /* --workspace-mib (1024): bound on the conv workspace */
  /* --conv-algo: "" or "auto" lets the tuner choose each conv layer's algorithm per pass; a
   * choice ("winograd4", "implicit:BM=...") is used wherever it supports the layer; a list
   * "layer@pass=choice;..." (what checkpoints record as conv_algos) replays a run's choices.
   * A resumed run takes the checkpoint's list, so it computes with the same kernels. */
  char conv_algo[WRN_TRAIN_CONV_ALGO_MAX];
  /* Where the run goes; not stored in checkpoints. */
  char device[256]; /* --device: a wrn_device_select selector; "" the default device */
  /* --devices: data parallelism over several devices of this process, "all" or a comma
   * list of selectors ("0:0,1:0"); "" uses WRN_DEVICES when set, else --device. */
  char devices[256];
  /* --split: "auto" (or "") splits each global batch in proportion to the devices' measured
   * speed (at warm-up, then at each epoch's end); "96,32" fixes it (one count per device,
   * over MPI ranks rank by rank, summing to --batch). */
  char split[256];
  int min_per_device; /* --min-per-device: the least images a device gets (0: 8, or fewer
                         when the batch is small) */
  char out[1024];   /* --out: the run folder; "" gives runs/<model>-<yyyymmdd-hhmmss> */
  char init[1024];  /* --init: start from this checkpoint's weights (not its momentum);
                       in WRN_TRAIN_EVAL mode, the checkpoint evaluated */
  int init_extra;   /* --init-extra on|off (off): --init takes the tensors of the model and
                       ignores others; off refuses a checkpoint with tensors it lacks */
} wrn_train_options;

/* The recipe: wrn-28-10, 200 epochs of batch 128, lr 0.1 x0.2 at 60/120/160, wd 5e-4,
 * Nesterov momentum 0.9 reset at each drop, flip + crop, shuffled, seed 1. */
void wrn_train_options_default(wrn_train_options *o);
/* The recipe of another data set or model family over the defaults, for the caller to apply
 * before the flags it was given (so that each stays a flag):
 * - SVHN (the paper): lr 0.01, x0.1 at 80 and 120, 160 epochs, dropout 0.4, no flip or crop,
 *   pixels / 255, train + extra;
 * - the ImageNet ResNets ("resnet-50", "wrn-50-2"; torchvision's reference recipe): lr 0.1,
 *   x0.1 every 30 epochs, 90 epochs, wd 1e-4, batch 256, momentum 0.9 without Nesterov and
 *   without a momentum reset. The WRN paper trained WRN-50-2 with fb.resnet.torch's recipe:
 *   the same schedule and weight decay, Nesterov momentum, batch 256.
 * Other kinds and models leave *o as it is. */
void wrn_train_options_recipe(wrn_train_options *o, wrn_dataset_kind kind, const char *model);
/* Sets one option from text, by its flag name ("--lr", "0.05"; switches take on|off).
 * Values are checked strictly (the whole text, the range); a value too long for its field
 * is refused, never cut. INVALID_ARGUMENT naming the option otherwise, and for a name that
 * is not an option (wrn_train_option_known tells them apart first). *o is unchanged then. */
wrn_status wrn_train_option_set(wrn_train_options *o, const char *name, const char *value);
int wrn_train_option_known(const char *name);
/* Checks what no single option can: a data folder is given, the drops increase. */
wrn_status wrn_train_options_check(const wrn_train_options *o);
/* Replaces options with those stored in checkpoint `path` (written by a trainer): all the
 * run-defining ones, or with model_only just the network and its input: --model, --classes,
 * --dropout, --image-size and --meanstd. Both take the run's convolution choices into
 * o->conv_algo; model_only keeps a conv_algo the caller set ("auto": the tuner's). FORMAT when
 * the file holds no --model (not a wrn checkpoint) or a stored value is bad; IO when it
 * cannot be read. *o may be partly changed on failure. */
wrn_status wrn_train_options_load(wrn_train_options *o, const char *path, int model_only);

/* ---------------------------------------------------------------- schedule and steps */

/* The learning rate of 1-based `epoch` (the schedule steps once per epoch):
 * - step: lr times lr_decay for each drop epoch <= epoch;
 * - cosine (W = warmup_epochs, E = epochs): lr (1 + cos(pi (epoch - W - 1) / (E - W))) / 2 for
 *   epoch > W, i.e. PyTorch's CosineAnnealingLR(T_max = E - W, eta_min = 0) stepped per epoch
 *   after the warm-up;
 * - with W > 0 the first W epochs run at (that schedule's rate) x epoch / (W + 1): a linear
 *   warm-up that reaches the full rate at epoch W + 1. */
double wrn_train_lr(const wrn_train_options *o, int epoch);
/* The SGD settings of the step `step` (0-based) of `epoch`: that epoch's rate, and
 * first_step set (momentum buffer := gradient) on the run's very first step and, with
 * momentum_reset, on the first step of each drop epoch of the step schedule. */
wrn_sgd wrn_train_sgd(const wrn_train_options *o, int epoch, int64_t step);
/* The input pipeline of a step: the recipe's normalisation, and with train and o->augment
 * flip + reflect-pad-4 crop drawn from (o->seed, global_step); with train and o->cutout
 * cutout from the same stream. For image folders (dataset WRN_DATASET_IMAGEFOLDER) the loader
 * crops and flips (wrn_train_pipeline) and this is torchvision's ImageNet mean/std only (and
 * the cutout). */
wrn_augment wrn_train_augment(const wrn_train_options *o, int train, uint64_t global_step);
/* The image-folder pipeline of a run: RandomResizedCrop + flip when train and o->augment,
 * else resize + centre crop, at o->image_size (224). */
wrn_image_pipeline wrn_train_pipeline(const wrn_train_options *o, int train);

/* One training step on a network whose input holds a batch (wrn_net_set_batch or
 * wrn_net_set_input_real): forward in training mode (dropout masks keyed by
 * (dropout_seed, step)), softmax cross-entropy of the first n samples, backward, the SGD
 * update; then waits once for the device and returns the loss summed over the n samples
 * and the number classified right (either pointer may be NULL). */
wrn_status wrn_train_step(wrn_net *net, int n, const wrn_sgd *sgd, uint64_t dropout_seed,
                          uint64_t step, double *loss_sum, int *correct);
/* Inference on the input (running statistics, no dropout): loss sum and number right of
 * the first n samples. */
wrn_status wrn_train_eval_step(wrn_net *net, int n, double *loss_sum, int *correct);

/* ---------------------------------------------------------------- checkpoints */

/* A string entry of a checkpoint's metadata (neither string is copied). */
typedef struct wrn_checkpoint_meta {
  const char *key, *value;
} wrn_checkpoint_meta;

/* Writes the network's parameters and BN running statistics under their names, with
 * with_momentum the momentum buffer as "momentum.<name>", in the network's real type, plus
 * the metadata and what reproduces the inputs unless meta gives it (input_shape, input_mean,
 * input_std, input_scale, bn_eps, bn_momentum; tools/wrn_torch.py reads them), atomically (wrn_st_writer_write: an existing file survives a failure). */
wrn_status wrn_checkpoint_save(wrn_net *net, const char *path, const wrn_checkpoint_meta *meta,
                               int nmeta, int with_momentum);
/* Flags of wrn_checkpoint_load. */
enum {
  WRN_CHECKPOINT_MOMENTUM = 1, /* load the momentum buffer too ("momentum.<name>") */
  WRN_CHECKPOINT_EXTRA = 2     /* ignore tensors the network does not have */
};
/* Loads parameters and running statistics (and with WRN_CHECKPOINT_MOMENTUM the momentum)
 * from an open file (`path` names it in messages) after checking every tensor's name, shape,
 * type and values against the network: FORMAT naming the tensor otherwise (a tensor missing,
 * of another shape or type, holding NaN or an infinity, or, without WRN_CHECKPOINT_EXTRA, a
 * tensor the network does not have; "momentum.<parameter>" tensors are always allowed), and
 * then the network is unchanged. */
wrn_status wrn_checkpoint_load(wrn_net *net, const wrn_st_file *f, const char *path,
                               int flags);

/* ---------------------------------------------------------------- several processes */

/* Multi-process runs through MPI (one process per machine or per device, mpirun -np N):
 * rank 0 sends its seed and weights to every rank and alone writes the run folder; each rank
 * trains on its slice of every global batch and the gradients are summed over the ranks.
 * wrn_dist_init starts MPI (call it before wrn_trainer_open, once per process, from the
 * thread that drives the trainer); every collective then fails after timeout_s seconds
 * without an answer (<= 0: 120), with a message naming it, instead of waiting for a dead
 * rank forever; the caller should then end the job with wrn_dist_abort. UNSUPPORTED when the
 * library was built without MPI (wrn_dist_built() == 0). */
int wrn_dist_built(void);
wrn_status wrn_dist_init(int *argc, char ***argv, double timeout_s);
int wrn_dist_rank(void); /* 0 without MPI */
int wrn_dist_size(void); /* 1 without MPI */
void wrn_dist_abort(int code);
void wrn_dist_finalize(void);

/* ---------------------------------------------------------------- a run */

typedef struct wrn_trainer wrn_trainer;

typedef enum wrn_train_mode {
  WRN_TRAIN_NEW = 0, /* a new run in o->out, refused when the folder holds one: parameters
                        from o->seed, then o->init's weights when given */
  WRN_TRAIN_RESUME,  /* continue the run in o->out from its last.safetensors, exactly; o
                        holds the run's stored options (wrn_train_options_load of that file),
                        overrides making it no longer an exact continuation */
  WRN_TRAIN_EVAL     /* evaluation only: no run folder, no training split; weights from
                        o->init (required) */
} wrn_train_mode;

/* Where a run stands. Counters of the epoch in progress survive a resume. */
typedef struct wrn_train_state {
  int epoch;               /* the epoch in progress, 1-based; epochs + 1 once finished */
  int64_t step;            /* steps done in this epoch */
  int64_t steps_per_epoch; /* full batches of the training split (the last partial one is
                              dropped) */
  double loss_sum;         /* this epoch so far: summed training loss, */
  int64_t correct, seen;   /* samples right and samples seen, */
  double train_time;       /* and seconds of training (wall time, loader waits included) */
  double best_acc;         /* best test accuracy of the run in % (0 before any) */
  double last_acc;         /* the latest this trainer measured (0 before its first epoch) */
  double warmup_seconds;   /* of wrn_trainer_warmup */
  int devices;             /* training the run in this process (1 without --devices) */
  char split[256];         /* images per device per step, over every rank ("" with one) */
  size_t train_images, test_images;
  char last_path[1100], best_path[1100], log_path[1100]; /* the run folder's files ("" in
                                                            EVAL mode) */
} wrn_train_state;

typedef enum wrn_train_event_kind {
  WRN_TRAIN_EVENT_STEP = 0, /* a training step finished (state->step counts it) */
  WRN_TRAIN_EVENT_EPOCH,    /* an epoch finished: evaluated, checkpointed, logged; state has
                               moved on to the next epoch */
  WRN_TRAIN_EVENT_EVAL_STEP /* a batch of the test split was evaluated (eval_seen of
                               state->test_images so far) */
} wrn_train_event_kind;

/* What an event reports; valid during the hook only. Hooks switch on the kind and ignore
 * kinds they do not know (later versions may add some). */
typedef struct wrn_train_event {
  wrn_train_event_kind kind;
  const wrn_train_state *state;
  /* WRN_TRAIN_EVENT_EPOCH: the epoch that finished. */
  int epoch;
  double lr, train_loss, train_acc, test_loss, test_acc, train_time, test_time;
  int best;             /* its test accuracy is the best so far (best.safetensors written) */
  const char *log_line; /* the JSON object appended to log.jsonl */
  /* WRN_TRAIN_EVENT_EVAL_STEP: test images evaluated so far in this evaluation. */
  size_t eval_seen;
} wrn_train_event;

/* What the caller gives a trainer (copied by wrn_trainer_open). */
typedef struct wrn_train_hooks {
  /* Required: adds the model's layers to a freshly created network of o->batch images
   * (o->classes already taken from the data set when it was 0); the trainer then
   * finalizes it. wrn_model_build fits: see docs/example_train.c. */
  wrn_status (*build)(wrn_net *net, const wrn_train_options *o, void *user);
  /* Optional: called after every training step, every evaluated test batch and every
   * epoch. */
  void (*event)(const wrn_train_event *e, void *user);
  void *user; /* passed to both */
  /* Optional: when *stop is nonzero, wrn_trainer_run stops before its next step. A signal
   * handler may set it (it is only read). */
  const volatile sig_atomic_t *stop;
} wrn_train_hooks;

/* The checkpoint `wrn train --resume DIR` continues from: DIR/last.safetensors, or
 * DIR/best.safetensors when a stop came between the two at the first best epoch (best is
 * written first and holds the same state then). IO saying that the folder holds no
 * checkpoint yet (a run stopped before its first one: start it again, as a new run) when
 * neither exists; INVALID_ARGUMENT when the path would not fit in n. */
wrn_status wrn_train_resume_file(const char *dir, char *path, size_t n);

/* Sets up a run: in NEW and RESUME mode prepares the run folder first (created, proven
 * writable; NEW refuses a folder that holds a run: a checkpoint or a log with records; the
 * temporary files of killed writes in it are removed); o->data is made absolute; reads the
 * data set, opens the device (o->device), builds and finalizes the network (hooks->build),
 * starts the batch loaders, then sets the parameters (NEW: from o->seed and o->init; RESUME:
 * everything from wrn_train_resume_file's checkpoint, refused when it is of another --model
 * or its metadata is out of range; a partial last log line is cut off and a log line lost
 * between the checkpoint and the log is appended; EVAL: o->init) and opens the log. Nothing is warmed up or trained yet. *out is NULL on failure (everything undone; files
 * written before are left). */
wrn_status wrn_trainer_open(wrn_trainer **out, const wrn_train_options *o,
                            const wrn_train_hooks *hooks, wrn_train_mode mode);
void wrn_trainer_free(wrn_trainer *t); /* NULL is fine; writes nothing */

/* Runs every kernel and GEMM shape once so that compilation happens now and not in the
 * first (timed) step; changes no state. Done by the first step when not called. */
wrn_status wrn_trainer_warmup(wrn_trainer *t);
/* The next training step of the run (starting its epoch when it is the first); after an
 * epoch's last step also the epoch's end: evaluation, best.safetensors when the test
 * accuracy is the best so far, then last.safetensors (so best is never behind what last
 * records), then the log line. Sets *done (may be NULL) once every epoch is done; a step
 * then does nothing. A non-finite loss fails the step (FORMAT, saying to lower the learning
 * rate) with the last checkpoint intact. */
wrn_status wrn_trainer_step(wrn_trainer *t, int *done);
/* Steps until the run is done (WRN_OK) or hooks->stop is set: then writes last.safetensors
 * at the current step and returns WRN_STATUS_INTERRUPTED, and wrn_trainer_open in RESUME
 * mode continues exactly there. */
wrn_status wrn_trainer_run(wrn_trainer *t);
/* Writes last.safetensors at the current step (what a stop writes). */
wrn_status wrn_trainer_checkpoint(wrn_trainer *t);
/* Mean loss and accuracy (%) of the test split with the current weights. */
wrn_status wrn_trainer_evaluate(wrn_trainer *t, double *loss, double *acc);

const wrn_train_state *wrn_trainer_state(const wrn_trainer *t);
/* The run's options after open (classes and out resolved). */
const wrn_train_options *wrn_trainer_options(const wrn_trainer *t);
/* The network the trainer runs (owned by it): sizes, descriptions, weights. */
wrn_net *wrn_trainer_net(const wrn_trainer *t);

/* ---------------------------------------------------------------- data-parallel steps */

/* The devices of a run without its data set and folder (what wrn bench times): the
 * networks of o->devices (or o->device) with o->batch split over them as a run splits it
 * (o->split, o->min_per_device; MPI ranks after wrn_dist_init), the parameters from
 * o->seed. */
typedef struct wrn_parallel wrn_parallel;
wrn_status wrn_parallel_open(wrn_parallel **out, const wrn_train_options *o,
                             const wrn_train_hooks *hooks);
void wrn_parallel_free(wrn_parallel *p);
/* Compiles everything; with an automatic split, times each device and balances. */
wrn_status wrn_parallel_warmup(wrn_parallel *p);
/* One training step on a global batch of o->batch images (uint8 [n][c][h][w]) and labels,
 * with the recipe's input pipeline for `step`; loss sum and number right may be NULL. */
wrn_status wrn_parallel_step(wrn_parallel *p, const uint8_t *images, const int32_t *labels,
                             const wrn_sgd *sgd, uint64_t step, double *loss_sum, int *correct);
int wrn_parallel_devices(const wrn_parallel *p); /* of this process */
wrn_net *wrn_parallel_net(const wrn_parallel *p, int i);
const wrn_device_info *wrn_parallel_device(const wrn_parallel *p, int i);
int wrn_parallel_slice(const wrn_parallel *p, int i);      /* images of device i per step */
double wrn_parallel_busy(const wrn_parallel *p, int i);    /* its last forward + backward, s */
/* Seconds the last step spent combining gradients after the slowest device's backward (the
 * part not hidden behind it), and the whole step. */
double wrn_parallel_combine_seconds(const wrn_parallel *p);
double wrn_parallel_step_seconds(const wrn_parallel *p);

#ifdef __cplusplus
}
#endif
#endif
