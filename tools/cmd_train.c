/* wrn train and wrn eval: flags and printing around the library's trainer (wrn_train.h),
 * which runs the paper's CIFAR recipe (shared/docs/wrn-recipe.md) with run folders, atomic
 * checkpoints and exact resume. */
#include "args.h"
#include "cli.h"
#include "runlog.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const progress_kinds[] = {"auto", "on", "off", NULL};

/* The model that o names, at o's image size (32 unless the data set says otherwise). */
static wrn_status model_spec(const wrn_train_options *o, wrn_model_spec *s) {
  const int side = o->image_size > 0 ? o->image_size : 32;
  *s = (wrn_model_spec){0, 0, o->classes, o->dropout, 3, side, side, WRN_ARCH_WRN};
  return wrn_model_parse(o->model, s);
}

static wrn_status build_model(wrn_net *net, const wrn_train_options *o, void *user) {
  (void)user;
  wrn_model_spec s;
  wrn_status st = model_spec(o, &s);
  return st != WRN_OK ? st : wrn_model_build(net, &s);
}

/* Sets a training option from a flag; --model is checked and written the canonical way.
 * Returns 0, or 2 after a message. */
static int set_option(wrn_train_options *o, const char *cmd, const char *flag, const char *v) {
  char model[64];
  if (!strcmp(flag, "--model")) {
    wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
    if (wrn_model_parse(v, &s) != WRN_OK) {
      fprintf(stderr, "wrn %s: --model: %s\n", cmd, wrn_last_error());
      return 2;
    }
    wrn_model_name(&s, model, sizeof model);
    v = model;
  }
  if (wrn_train_option_set(o, flag, v) != WRN_OK) {
    fprintf(stderr, "wrn %s: %s\n", cmd, wrn_last_error());
    return 2;
  }
  return 0;
}

/* A cache (kernels, tuner) that could not be written: the run goes on without it. */
static void print_warning(const char *cmd, wrn_trainer *t) {
  const char *w = wrn_ctx_warning(wrn_net_ctx(wrn_trainer_net(t)));
  if (w[0]) fprintf(stderr, "wrn %s: warning: %s\n", cmd, w);
}

/* The line that says what runs where. */
static void print_setup(const char *cmd, wrn_trainer *t) {
  const wrn_train_options *o = wrn_trainer_options(t);
  wrn_net *net = wrn_trainer_net(t);
  wrn_ctx *ctx = wrn_net_ctx(net);
  const wrn_device_info *dev = wrn_ctx_device(ctx);
  wrn_model_spec s;
  char name[64];
  if (model_spec(o, &s) == WRN_OK) wrn_model_name(&s, name, sizeof name);
  else snprintf(name, sizeof name, "%s", o->model);
  size_t arena, naive, ws, params;
  wrn_net_memory(net, &arena, &naive, &ws, &params);
  printf("%s: %s, %zu parameters, batch %d on %s (%s); kernels built in %.2f s (%d/%d from "
         "cache); activations %.1f MiB planned (%.1f MiB without reuse)\n",
         cmd, name, wrn_net_param_count(net), o->batch, dev->name, dev->platform_name,
         wrn_ctx_build_seconds(ctx), wrn_ctx_programs_cached(ctx), wrn_ctx_programs_total(ctx),
         arena / 1048576.0, naive / 1048576.0);
  const wrn_train_state *st = wrn_trainer_state(t);
  if (st->split[0])
    printf("%s: data parallel over %d device(s) here x %d rank(s); images per device per step "
           "%s\n", cmd, st->devices, wrn_dist_size(), st->split);
}

static void train_usage(FILE *f) {
  fprintf(f,
          "usage: wrn train --data DIR [flags]      (defaults: the paper's CIFAR recipe)\n"
          "       wrn train --resume RUN_DIR [--device X]\n"
          "\n"
          "  --model NAME           network (wrn-28-10): wrn-D-K, preresnet-164|1001,\n"
          "                         resnet-50, wrn-50-2 (defaults then: lr 0.1 x0.1 every 30,\n"
          "                         90 epochs, wd 1e-4, batch 256, no Nesterov)\n"
          "  --data DIR             CIFAR-10 or CIFAR-100 folder in the official binary layout\n"
          "  --dataset auto|cifar10|cifar100|svhn|imagefolder, --labels fine|coarse\n"
          "  --svhn-extra on|off    SVHN: train on train + extra (on, as the paper)\n"
          "                         --data DIR with DIR/train and DIR/val image folders\n"
          "                         (ImageFolder layout, JPEG): RandomResizedCrop 224 + flip,\n"
          "                         eval resize 256 + centre crop, ImageNet mean/std\n"
          "  --image-size S (224 for image folders)   --loader-threads N (the cores)\n"
          "  --meanstd on|off       normalise by the recipe's mean/std (on), or pixels / 255\n"
          "                         SVHN's defaults: lr 0.01, x0.1 at 80,120, 160 epochs,\n"
          "                         dropout 0.4, no augmentation, --meanstd off\n"
          "  --train-limit N, --test-limit N   use the first N images (0: all)\n"
          "  --epochs N (200)       --batch N (128)\n"
          "  --lr X (0.1)           --epoch-step 60,120,160   --lr-decay X (0.2)\n"
          "  --wd X (5e-4)          --momentum X (0.9)        --no-nesterov\n"
          "  --momentum-reset on|off (on: clear momentum at each learning-rate drop)\n"
          "  --dropout P (0)        --augment on|off (flip + crop)   --shuffle on|off\n"
          "  --bn-gamma-one on|off  BN gamma starts at 1 instead of U(0,1)\n"
          "  --seed N (1)           --device P:D|cpu|gpu|NAME   --workspace-mib N (1024)\n"
          "  --devices LIST|all     data parallelism over several devices (0:0,1:0; or the\n"
          "                         WRN_DEVICES variable): each runs a slice of every batch\n"
          "  --split auto|N,N,...   images per device per step: measured speed (auto) or fixed\n"
          "  --min-per-device N     the least images a device gets with --split auto (8)\n"
          "  --mpi-timeout S        under mpirun: give up on silent ranks after S s (120)\n"
          "  --conv-algo auto|NAME  convolution algorithm: the tuner's per layer (auto), or one\n"
          "                         of im2col implicit splitk winograd2 winograd4 fft direct wherever\n"
          "                         it fits; checkpoints record the choices, --resume reuses them\n"
          "  --lr-schedule step|cosine (step: x lr-decay at --epoch-step; cosine: annealed to 0)\n"
          "  --warmup-epochs N (0)  linear warm-up: epochs 1..N at lr x epoch / (N + 1)\n"
          "  --label-smoothing X (0) training targets (1 - X) onehot + X / classes\n"
          "  --cutout N (0)         zero an N x N square at a random centre of each training\n"
          "                         image (DeVries & Taylor 2017: 16 on CIFAR-10)\n"
          "  --out DIR              run folder (runs/<model>-<time>); must not hold a run\n"
          "  --init FILE            start from the weights of a checkpoint\n"
          "  --init-extra on|off    --init ignores tensors the model lacks (off: refused)\n"
          "  --resume DIR           continue the run in DIR exactly where it stopped\n"
          "  --progress auto|on|off progress line (auto: when stdout is a terminal)\n"
          "  --json-stats           print each epoch's log line as json_stats: {...} on a\n"
          "                         terminal too (it always is when stdout is not one)\n"
          "\n"
          "Writes DIR/log.jsonl (one JSON object per epoch), DIR/last.safetensors and\n"
          "DIR/best.safetensors. SIGINT/SIGTERM (and a closed output pipe) stop after the\n"
          "current step with a checkpoint to resume from. Under mpirun -np N every rank trains\n"
          "a slice of each batch (rank 0 writes the run folder); --resume needs the same N.\n"
          "This wrn was built %s.\n", wrn_dist_built() ? "with MPI" : "without MPI");
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

/* From before the run folder is touched: a signal at any point (reading data, building
 * kernels, warming up) stops the run at its next step with a checkpoint. So does a closed
 * output pipe (wrn train | head), instead of killing the run mid-step; later writes to the
 * pipe then fail quietly (EPIPE). */
static void catch_stops(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGPIPE, &sa, NULL);
}

/* ---------------------------------------------------------------- progress */

typedef struct printer {
  int tty;
  int progress;  /* 0 auto, 1 on, 2 off */
  int batch, epochs;
  double last;   /* when the progress line was last printed */
  int open_line; /* a terminal progress line is not ended yet */
  int json;      /* print json_stats lines (stdout is not a terminal, or --json-stats) */
  int err_tty;   /* stderr is a terminal: evaluation progress goes there */
  double eval_last; /* when the evaluation progress was last printed */
  int eval_open;    /* an evaluation progress line is on stderr */
} printer;

static void progress(printer *p, const wrn_train_state *st, int final) {
  double t = wrn_seconds();
  if (!final && t - p->last < (p->tty ? 0.5 : 15.0)) return;
  p->last = t;
  double ips = st->train_time > 0 ? (double)st->seen / st->train_time : 0;
  double eta = ips > 0 ? (double)(st->steps_per_epoch - st->step) * p->batch / ips : 0;
  double loss = st->seen ? st->loss_sum / (double)st->seen : 0;
  double acc = st->seen ? 100.0 * (double)st->correct / (double)st->seen : 0;
  if (p->tty)
    printf("\repoch %d/%d  step %" PRId64 "/%" PRId64 "  %.1f img/s  loss %.4f  acc %.2f%%  "
           "ETA %.0fs   %s",
           st->epoch, p->epochs, st->step, st->steps_per_epoch, ips, loss, acc, eta,
           final ? "\n" : "");
  else
    printf("epoch %d/%d step %" PRId64 "/%" PRId64 " %.1f img/s loss %.4f acc %.2f%% ETA %.0fs\n",
           st->epoch, p->epochs, st->step, st->steps_per_epoch, ips, loss, acc, eta);
  p->open_line = p->tty && !final;
  fflush(stdout);
}

/* Evaluation progress on a terminal's stderr (10,000 test images take a while on a CPU),
 * erased when the evaluation ends. */
static void eval_progress(printer *p, const wrn_train_event *e) {
  if (!p->err_tty || p->progress == 2) return;
  size_t total = e->state->test_images;
  if (e->eval_seen >= total) {
    if (p->eval_open) fprintf(stderr, "\r%40s\r", "");
    p->eval_open = 0;
  } else if (wrn_seconds() - p->eval_last >= 0.5) {
    fprintf(stderr, "\revaluating: %zu/%zu test images", e->eval_seen, total);
    p->eval_open = 1;
    p->eval_last = wrn_seconds();
  } else {
    return;
  }
  fflush(stderr);
}

static void on_event(const wrn_train_event *e, void *user) {
  printer *p = user;
  const wrn_train_state *st = e->state;
  if (e->kind == WRN_TRAIN_EVENT_EVAL_STEP) {
    eval_progress(p, e);
    return;
  }
  if (e->kind == WRN_TRAIN_EVENT_STEP) {
    if (p->progress != 2) progress(p, st, st->step == st->steps_per_epoch);
    p->eval_last = wrn_seconds(); /* the first progress line after half a second */
    return;
  }
  if (e->kind != WRN_TRAIN_EVENT_EPOCH) return;
  if (p->json) printf("json_stats: %s\n", e->log_line);
  printf("epoch %d: train loss %.4f, test loss %.4f, test accuracy %.2f%% (error %.2f%%)\n",
         e->epoch, e->train_loss, e->test_loss, e->test_acc, 100 - e->test_acc);
  fflush(stdout);
}

/* ---------------------------------------------------------------- train */

/* A resumed run that has done all its epochs: says so with its results (the log's last
 * test accuracy where the log has one, the best from the checkpoint) instead of training. */
static void print_finished(wrn_trainer *t) {
  const wrn_train_state *st = wrn_trainer_state(t);
  const wrn_train_options *o = wrn_trainer_options(t);
  double final_acc = NAN;
  struct stat sb;
  run_log r;
  if (stat(st->log_path, &sb) == 0 && run_log_read("train", st->log_path, &r) == 0) {
    if (r.n > 0) final_acc = r.ep[r.n - 1].test_acc;
    run_log_free(&r);
  }
  printf("train: %s has finished: %d of %d epochs done", o->out, st->epoch - 1, o->epochs);
  if (isfinite(final_acc)) printf(", final test accuracy %.2f%%", final_acc);
  printf(" (best %.2f%%); nothing to train. To train longer: %s train --resume %s --epochs N "
         "(N > %d)\n", st->best_acc, cli_self_path(), o->out, o->epochs);
}

/* Sets up, warms up and runs the trainer; returns the exit status. */
static int train_run(const wrn_train_options *o, int resuming, printer *p) {
  wrn_train_hooks hooks = {build_model, on_event, p, &g_stop};
  wrn_trainer *t;
  if (wrn_dist_rank() > 0) hooks.event = NULL; /* rank 0 prints */
  catch_stops();
  if (wrn_trainer_open(&t, o, &hooks, resuming ? WRN_TRAIN_RESUME : WRN_TRAIN_NEW) != WRN_OK) {
    fprintf(stderr, "wrn train: %s\n", wrn_last_error());
    return 1;
  }
  const wrn_train_state *st = wrn_trainer_state(t);
  const char *out = wrn_trainer_options(t)->out;
  if (wrn_dist_rank() == 0) {
    print_setup("train", t);
    print_warning("train", t);
  }
  if (resuming)
    printf("train: resuming %s at epoch %d, step %" PRId64 "\n", out, st->epoch, st->step);
  fflush(stdout);
  if (resuming && st->epoch > wrn_trainer_options(t)->epochs) {
    print_finished(t);
    wrn_trainer_free(t);
    return 0;
  }
  if (wrn_trainer_warmup(t) != WRN_OK) {
    fprintf(stderr, "wrn train: %s\n", wrn_last_error());
    wrn_trainer_free(t);
    return 1;
  }
  print_warning("train", t);
  if (wrn_dist_rank() == 0)
    printf("train: kernels ready after %.2f s of warm-up; %" PRId64 " steps per epoch, %zu "
           "training and %zu test images; run folder %s\n",
           st->warmup_seconds, st->steps_per_epoch, st->train_images, st->test_images, out);
  fflush(stdout);
  wrn_status s = wrn_trainer_run(t);
  print_warning("train", t);
  int rc = 0;
  if (s == WRN_OK && wrn_dist_rank() > 0) {
  } else if (s == WRN_OK) {
    printf("train: done. final test accuracy %.2f%% (best %.2f%%, chance %.0f%%); log %s; "
           "checkpoints %s (last) and %s (best)\n",
           st->last_acc, st->best_acc, 100.0 / wrn_trainer_options(t)->classes, st->log_path,
           st->last_path, st->best_path);
  } else if (s == WRN_STATUS_INTERRUPTED) {
    fprintf(stderr,
            "%swrn train: stopped by signal %d%s at epoch %d step %" PRId64 "; checkpoint %s "
            "written. Resume with: %s train --resume %s\n",
            p->open_line ? "\n" : "", (int)g_stop,
            g_stop == SIGPIPE ? " (the output pipe was closed)" : "", st->epoch, st->step,
            st->last_path, cli_self_path(), out);
    rc = 128 + (int)g_stop;
  } else {
    fprintf(stderr, "%swrn train: %s\n", p->open_line ? "\n" : "", wrn_last_error());
    rc = 1;
  }
  wrn_trainer_free(t);
  return rc;
}

/* The data set's and the model's recipe (wrn_train_options_recipe) under the flags: the
 * kind from --dataset, else from the files in --data; the model from --model. Bad values are
 * left for the flag pass to report. */
static void recipe_for(wrn_train_options *o, int argc, char **argv) {
  const char *data = NULL, *dataset = NULL, *model = NULL;
  for (int i = 1; i + 1 < argc; i++) {
    if (!strcmp(argv[i], "--data")) data = argv[i + 1];
    else if (!strcmp(argv[i], "--dataset")) dataset = argv[i + 1];
    else if (!strcmp(argv[i], "--model")) model = argv[i + 1];
  }
  wrn_dataset_kind kind = WRN_DATASET_AUTO;
  if (!dataset || wrn_dataset_kind_parse(dataset, &kind) != WRN_OK || kind == WRN_DATASET_AUTO)
    kind = data ? wrn_dataset_detect(data) : WRN_DATASET_AUTO;
  char name[64] = "";
  wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
  if (model && wrn_model_parse(model, &s) == WRN_OK) wrn_model_name(&s, name, sizeof name);
  wrn_train_options_recipe(o, kind, name);
}

/* The rank count mpirun (Open MPI) or an MPICH/PMI launcher gives this process; 1 alone. */
static int launcher_ranks(void) {
  const char *v = getenv("OMPI_COMM_WORLD_SIZE");
  if (!v) v = getenv("PMI_SIZE");
  return v ? atoi(v) : 1;
}

/* Trains under MPI when a launcher started several ranks; a failing rank ends the job, so
 * that no rank waits for it. */
static int train_dist(const wrn_train_options *o, int resuming, printer *p, double timeout) {
  int ranks = launcher_ranks();
  if (ranks <= 1) return train_run(o, resuming, p);
  if (!wrn_dist_built()) {
    fprintf(stderr, "wrn train: started as one of %d MPI ranks, but this wrn was built without "
                    "MPI (install libopenmpi-dev and configure again)\n", ranks);
    return 2;
  }
  if (wrn_dist_init(NULL, NULL, timeout) != WRN_OK) {
    fprintf(stderr, "wrn train: %s\n", wrn_last_error());
    return 1;
  }
  int rc = train_run(o, resuming, p);
  if (rc != 0 && rc < 128) {
    fprintf(stderr, "wrn train: rank %d of %d failed; ending the job\n", wrn_dist_rank(),
            wrn_dist_size());
    fflush(stderr);
    wrn_dist_abort(rc);
  }
  wrn_dist_finalize();
  return rc;
}

int cmd_train(int argc, char **argv) {
  wrn_train_options o;
  wrn_train_options_default(&o);
  printer p = {.tty = isatty(1), .err_tty = isatty(2)};
  p.json = !p.tty;
  const char *resume = NULL;
  int explicit_flags = 0;
  double mpi_timeout = 120;
  const char *seen[64];
  int nseen = 0;
  /* First pass: --help and --resume, so that a resumed run starts from its stored options. */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      train_usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--resume")) {
      if (resume) {
        fprintf(stderr, "wrn train: --resume is given twice; give each flag once\n");
        return 2;
      }
      if (!(resume = arg_value("train", argc, argv, &i))) return 2;
      if (!resume[0]) {
        fprintf(stderr, "wrn train: --resume has an empty value\n");
        return 2;
      }
    }
  }
  if (!resume) recipe_for(&o, argc, argv);
  if (resume) {
    char path[1100];
    wrn_status rs = wrn_train_resume_file(resume, path, sizeof path);
    if (rs != WRN_OK) {
      fprintf(stderr, "wrn train: %s\n", wrn_last_error());
      return rs == WRN_STATUS_INVALID_ARGUMENT ? 2 : 1;
    }
    if (wrn_train_options_load(&o, path, 0) != WRN_OK) {
      cli_error("train", "--resume");
      return 1;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--resume")) {
      i++;
      continue;
    }
    if (!strcmp(a, "--no-nesterov")) {
      if (arg_once("train", "--nesterov", NULL, 0, seen, &nseen, 64)) return 2;
      o.nesterov = 0;
      explicit_flags++;
      continue;
    }
    if (!strcmp(a, "--json-stats")) {
      p.json = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "wrn train: unexpected argument '%s'\n", a);
      train_usage(stderr);
      return 2;
    }
    if (!strcmp(a, "--mpi-timeout")) {
      if (!(v = arg_value("train", argc, argv, &i))) return 2;
      if (arg_once("train", a, v, 0, seen, &nseen, 64)) return 2;
      if (arg_double("train", a, v, 0.1, 1e6, &mpi_timeout)) return 2;
      continue;
    }
    int is_progress = !strcmp(a, "--progress");
    if (!is_progress && !wrn_train_option_known(a)) {
      fprintf(stderr, "wrn train: unknown flag '%s'\n", a);
      train_usage(stderr);
      return 2;
    }
    if (!(v = arg_value("train", argc, argv, &i))) return 2;
    if (arg_once("train", a, v, !strcmp(a, "--epoch-step"), seen, &nseen, 64)) return 2;
    int rc = is_progress ? arg_choice("train", a, v, progress_kinds, &p.progress)
                         : set_option(&o, "train", a, v);
    if (rc) return rc;
    if (strcmp(a, "--device") && strcmp(a, "--devices") && !is_progress) explicit_flags++;
  }
  if (resume && explicit_flags)
    fprintf(stderr, "wrn train: warning: flags given with --resume override the stored options; "
                    "the run is then no longer an exact continuation\n");
  if (resume && set_option(&o, "train", "--out", resume)) return 2;
  if (wrn_train_options_check(&o) != WRN_OK) {
    fprintf(stderr, "wrn train: %s\n", wrn_last_error());
    return 2;
  }
  p.batch = o.batch;
  p.epochs = o.epochs;
  return train_dist(&o, resume != NULL, &p, mpi_timeout);
}

/* ---------------------------------------------------------------- eval */

int cmd_eval(int argc, char **argv) {
  wrn_train_options o;
  wrn_train_options_default(&o);
  const char *ckpt = NULL;
  const char *seen[16];
  int nseen = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("usage: wrn eval --checkpoint FILE --data DIR [--batch N] [--device X]\n"
             "                [--test-limit N] [--dataset auto|cifar10|cifar100] [--labels fine|coarse]\n"
             "                [--conv-algo auto|NAME]\n"
             "Evaluates a checkpoint written by wrn train on the test split: loss, accuracy, error.\n"
             "The convolutions use the algorithms the checkpoint records (those the run computed\n"
             "with), where they fit the batch; --conv-algo auto asks the tuner, NAME forces one.\n");
      return 0;
    }
    if (!(v = arg_value("eval", argc, argv, &i))) return 2;
    if (arg_once("eval", a, v, 0, seen, &nseen, 16)) return 2;
    if (!strcmp(a, "--checkpoint")) {
      ckpt = v;
      continue;
    }
    if (strcmp(a, "--data") && strcmp(a, "--batch") && strcmp(a, "--device") &&
        strcmp(a, "--test-limit") && strcmp(a, "--dataset") && strcmp(a, "--labels") &&
        strcmp(a, "--conv-algo")) {
      fprintf(stderr, "wrn eval: unknown flag '%s'\n", a);
      return 2;
    }
    if (set_option(&o, "eval", a, v)) return 2;
  }
  if (!ckpt || !o.data[0]) {
    fprintf(stderr, "wrn eval: --checkpoint FILE and --data DIR are required\n");
    return 2;
  }
  if (set_option(&o, "eval", "--init", ckpt)) return 2;
  if (wrn_train_options_load(&o, ckpt, 1) != WRN_OK) {
    fprintf(stderr, "wrn eval: %s\n", wrn_last_error());
    return 1;
  }
  printer p = {.err_tty = isatty(2)}; /* evaluation progress on a terminal */
  wrn_train_hooks hooks = {build_model, on_event, &p, NULL};
  wrn_trainer *t;
  if (wrn_trainer_open(&t, &o, &hooks, WRN_TRAIN_EVAL) != WRN_OK) {
    fprintf(stderr, "wrn eval: %s\n", wrn_last_error());
    return 1;
  }
  print_setup("eval", t);
  double loss, acc, t0 = wrn_seconds();
  int rc = 0;
  if (wrn_trainer_evaluate(t, &loss, &acc) != WRN_OK) {
    fprintf(stderr, "wrn eval: %s\n", wrn_last_error());
    rc = 1;
  } else {
    printf("eval: %s on %zu test images of %s: loss %.4f, accuracy %.2f%%, error %.2f%% "
           "(%.1f s)\n",
           ckpt, wrn_trainer_state(t)->test_images, o.data, loss, acc, 100 - acc,
           wrn_seconds() - t0);
  }
  wrn_trainer_free(t);
  return rc;
}
