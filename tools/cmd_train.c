/* wrn train and wrn eval: the paper's CIFAR recipe (shared/docs/wrn-recipe.md) on any OpenCL
 * device, with run folders, atomic checkpoints, exact resume and clean interrupts. */
#include "args.h"
#include "checkpoint.h"
#include "cli.h"
#include "wrn_io.h"
#include "wrn_models.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 16

typedef struct train_opts {
  char model[64];
  int classes; /* 0: from the data set */
  double dropout;
  char data[1024];
  int kind, labels;
  int train_limit, test_limit;
  int epochs, batch;
  double lr, lr_decay, wd, momentum;
  int steps[MAX_STEPS], nsteps;
  int nesterov, momentum_reset, augment, shuffle, bn_gamma_one;
  uint64_t seed;
  char device[256];
  char out[1024];
  char init[1024];
  int progress; /* 0 auto, 1 on, 2 off */
  double workspace_mib;
} train_opts;

static void opts_default(train_opts *o) {
  memset(o, 0, sizeof *o);
  snprintf(o->model, sizeof o->model, "wrn-28-10");
  o->epochs = 200;
  o->batch = 128;
  o->lr = 0.1;
  o->lr_decay = 0.2;
  o->wd = 5e-4;
  o->momentum = 0.9;
  o->steps[0] = 60, o->steps[1] = 120, o->steps[2] = 160, o->nsteps = 3;
  o->nesterov = 1;
  o->momentum_reset = 1;
  o->augment = 1;
  o->shuffle = 1;
  o->seed = 1;
  o->workspace_mib = 1024;
}

static const char *const onoff[] = {"on", "off", NULL};
static const char *const kinds[] = {"auto", "cifar10", "cifar100", NULL};
static const char *const label_kinds[] = {"fine", "coarse", NULL};
static const char *const progress_kinds[] = {"auto", "on", "off", NULL};

/* Flags that take a value, shared by the command line and the options stored in a
 * checkpoint (so a resumed run parses them the same way). Returns 0, 1 if the flag is not
 * one of these, or 2 for a bad value. */
static int set_flag(train_opts *o, const char *cmd, const char *f, const char *v) {
  int k;
  if (!strcmp(f, "--model")) {
    wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32};
    if (wrn_model_parse(v, &s) != WRN_OK) {
      fprintf(stderr, "wrn %s: --model: %s\n", cmd, wrn_last_error());
      return 2;
    }
    snprintf(o->model, sizeof o->model, "wrn-%d-%d", s.depth, s.width);
    return 0;
  }
  if (!strcmp(f, "--data")) return snprintf(o->data, sizeof o->data, "%s", v), 0;
  if (!strcmp(f, "--device")) return snprintf(o->device, sizeof o->device, "%s", v), 0;
  if (!strcmp(f, "--out")) return snprintf(o->out, sizeof o->out, "%s", v), 0;
  if (!strcmp(f, "--init")) return snprintf(o->init, sizeof o->init, "%s", v), 0;
  if (!strcmp(f, "--classes")) return arg_int(cmd, f, v, 2, 100000, &o->classes);
  if (!strcmp(f, "--dropout")) return arg_double(cmd, f, v, 0, 0.99, &o->dropout);
  if (!strcmp(f, "--dataset")) return arg_choice(cmd, f, v, kinds, &o->kind);
  if (!strcmp(f, "--labels")) return arg_choice(cmd, f, v, label_kinds, &o->labels);
  if (!strcmp(f, "--train-limit")) return arg_int(cmd, f, v, 0, 1 << 30, &o->train_limit);
  if (!strcmp(f, "--test-limit")) return arg_int(cmd, f, v, 0, 1 << 30, &o->test_limit);
  if (!strcmp(f, "--epochs")) return arg_int(cmd, f, v, 1, 100000, &o->epochs);
  if (!strcmp(f, "--batch")) return arg_int(cmd, f, v, 1, 1 << 16, &o->batch);
  if (!strcmp(f, "--lr")) return arg_double(cmd, f, v, 0, 100, &o->lr);
  if (!strcmp(f, "--lr-decay")) return arg_double(cmd, f, v, 0, 1, &o->lr_decay);
  if (!strcmp(f, "--wd")) return arg_double(cmd, f, v, 0, 1, &o->wd);
  if (!strcmp(f, "--momentum")) return arg_double(cmd, f, v, 0, 0.999999, &o->momentum);
  if (!strcmp(f, "--epoch-step"))
    return arg_int_list(cmd, f, v, 1, 100000, o->steps, MAX_STEPS, &o->nsteps);
  if (!strcmp(f, "--seed")) return arg_u64(cmd, f, v, &o->seed);
  if (!strcmp(f, "--workspace-mib")) return arg_double(cmd, f, v, 1, 1 << 20, &o->workspace_mib);
  if (!strcmp(f, "--progress")) return arg_choice(cmd, f, v, progress_kinds, &o->progress);
  int *sw = !strcmp(f, "--augment")          ? &o->augment
            : !strcmp(f, "--shuffle")        ? &o->shuffle
            : !strcmp(f, "--nesterov")       ? &o->nesterov
            : !strcmp(f, "--momentum-reset") ? &o->momentum_reset
            : !strcmp(f, "--bn-gamma-one")   ? &o->bn_gamma_one
                                             : NULL;
  if (sw) {
    if (arg_choice(cmd, f, v, onoff, &k)) return 2;
    *sw = k == 0;
    return 0;
  }
  return 1;
}

/* The options that define a run, as flag/value pairs (stored in checkpoints and logs). */
typedef struct flag_kv {
  char key[32], val[1100];
} flag_kv;
static int opts_flags(const train_opts *o, flag_kv *kv) {
  int n = 0;
#define KV(k, ...) (snprintf(kv[n].key, sizeof kv[n].key, "%s", k), snprintf(kv[n].val, sizeof kv[n].val, __VA_ARGS__), n++)
  KV("--model", "%s", o->model);
  KV("--classes", "%d", o->classes);
  KV("--dropout", "%.17g", o->dropout);
  KV("--data", "%s", o->data);
  KV("--dataset", "%s", kinds[o->kind]);
  KV("--labels", "%s", label_kinds[o->labels]);
  KV("--train-limit", "%d", o->train_limit);
  KV("--test-limit", "%d", o->test_limit);
  KV("--epochs", "%d", o->epochs);
  KV("--batch", "%d", o->batch);
  KV("--lr", "%.17g", o->lr);
  KV("--lr-decay", "%.17g", o->lr_decay);
  KV("--wd", "%.17g", o->wd);
  KV("--momentum", "%.17g", o->momentum);
  char st[256] = "";
  size_t len = 0;
  for (int i = 0; i < o->nsteps; i++)
    len += (size_t)snprintf(st + len, sizeof st - len, "%s%d", i ? "," : "", o->steps[i]);
  KV("--epoch-step", "%s", st);
  KV("--seed", "%" PRIu64, o->seed);
  KV("--augment", "%s", o->augment ? "on" : "off");
  KV("--shuffle", "%s", o->shuffle ? "on" : "off");
  KV("--nesterov", "%s", o->nesterov ? "on" : "off");
  KV("--momentum-reset", "%s", o->momentum_reset ? "on" : "off");
  KV("--bn-gamma-one", "%s", o->bn_gamma_one ? "on" : "off");
  KV("--workspace-mib", "%.17g", o->workspace_mib);
#undef KV
  return n;
}

static void train_usage(FILE *f) {
  fprintf(f,
          "usage: wrn train --data DIR [flags]      (defaults: the paper's CIFAR recipe)\n"
          "       wrn train --resume RUN_DIR [--device X]\n"
          "\n"
          "  --model wrn-D-K        network (wrn-28-10)\n"
          "  --data DIR             CIFAR-10 or CIFAR-100 folder in the official binary layout\n"
          "  --dataset auto|cifar10|cifar100, --labels fine|coarse (CIFAR-100)\n"
          "  --train-limit N, --test-limit N   use the first N images (0: all)\n"
          "  --epochs N (200)       --batch N (128)\n"
          "  --lr X (0.1)           --epoch-step 60,120,160   --lr-decay X (0.2)\n"
          "  --wd X (5e-4)          --momentum X (0.9)        --no-nesterov\n"
          "  --momentum-reset on|off (on: clear momentum at each learning-rate drop)\n"
          "  --dropout P (0)        --augment on|off (flip + crop)   --shuffle on|off\n"
          "  --bn-gamma-one on|off  BN gamma starts at 1 instead of U(0,1)\n"
          "  --seed N (1)           --device P:D|cpu|gpu|NAME   --workspace-mib N (1024)\n"
          "  --out DIR              run folder (runs/<model>-<time>); must not hold a run\n"
          "  --init FILE            start from the weights of a checkpoint\n"
          "  --resume DIR           continue the run in DIR exactly where it stopped\n"
          "  --progress auto|on|off progress line (auto: when stdout is a terminal)\n"
          "\n"
          "Writes DIR/log.jsonl (one JSON object per epoch, also printed as json_stats: {...}),\n"
          "DIR/last.safetensors and DIR/best.safetensors. SIGINT/SIGTERM stop after the\n"
          "current step with a checkpoint to resume from.\n");
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

/* ---------------------------------------------------------------- the run */

typedef struct run {
  train_opts o;
  wrn_model_spec spec;
  wrn_dataset ds;
  wrn_ctx *ctx;
  wrn_net *net;
  wrn_loader *train_l, *test_l;
  wrn_jsonl *log;
  wrn_json *js;
  char last_path[1200], best_path[1200], log_path[1200];
  /* progress state */
  int epoch;         /* 1-based epoch in progress */
  int64_t step;      /* steps done in this epoch */
  int64_t steps_per_epoch;
  double loss_sum, train_time;
  int64_t correct, seen;
  double best_acc, last_acc;
  int tty;
} run;

static int mkdir_p(const char *path) {
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
  return 0;
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* Creates the run folder and proves it writable before any work. */
static int prepare_out(run *r, int resuming) {
  if (!r->o.out[0]) {
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
    snprintf(r->o.out, sizeof r->o.out, "runs/%s-%s", r->o.model, ts);
  }
  snprintf(r->last_path, sizeof r->last_path, "%s/last.safetensors", r->o.out);
  snprintf(r->best_path, sizeof r->best_path, "%s/best.safetensors", r->o.out);
  snprintf(r->log_path, sizeof r->log_path, "%s/log.jsonl", r->o.out);
  if (!resuming && (file_exists(r->last_path) || file_exists(r->log_path))) {
    fprintf(stderr,
            "wrn train: %s already holds a run (log.jsonl or last.safetensors); continue it with "
            "--resume %s, or choose another --out\n",
            r->o.out, r->o.out);
    return 1;
  }
  if (mkdir_p(r->o.out) != 0) {
    fprintf(stderr, "wrn train: cannot create the run folder %s: %s\n", r->o.out, strerror(errno));
    return 1;
  }
  char probe[1300];
  snprintf(probe, sizeof probe, "%s/.write-test.%ld", r->o.out, (long)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "wrn train: the run folder %s is not writable: %s\n", r->o.out,
            strerror(errno));
    return 1;
  }
  close(fd);
  unlink(probe);
  return 0;
}

static double lr_at(const train_opts *o, int epoch) {
  double lr = o->lr;
  for (int i = 0; i < o->nsteps; i++)
    if (epoch >= o->steps[i]) lr *= o->lr_decay;
  return lr;
}
static int is_drop_epoch(const train_opts *o, int epoch) {
  for (int i = 0; i < o->nsteps; i++)
    if (epoch == o->steps[i]) return 1;
  return 0;
}

static wrn_augment augment_for(const train_opts *o, int train, uint64_t global_step) {
  wrn_augment a = {train && o->augment, 4, {125.3f, 123.0f, 113.9f}, {63.0f, 62.1f, 66.7f},
                   o->seed * 0x9E3779B97F4A7C15ull + 1, global_step};
  return a;
}

/* Evaluates the test split: mean loss and accuracy (%). */
static int evaluate(run *r, double *loss, double *acc) {
  double ls = 0;
  int64_t cor = 0, seen = 0;
  if (wrn_loader_start_epoch(r->test_l, 0, 0) != WRN_OK) return cli_error("train", "test data"), 1;
  for (;;) {
    wrn_batch b;
    if (wrn_loader_next(r->test_l, &b) != WRN_OK) return cli_error("train", "test data"), 1;
    if (b.count == 0) break;
    wrn_augment a = augment_for(&r->o, 0, 0);
    double l;
    int c;
    if (wrn_net_set_batch(r->net, b.images, b.labels, b.count, &a) != WRN_OK ||
        wrn_net_forward(r->net, 0, 0, 0) != WRN_OK || wrn_net_loss(r->net, b.count, 0) != WRN_OK ||
        wrn_net_read_loss(r->net, b.count, &l, &c) != WRN_OK)
      return cli_error("train", "evaluation step"), 1;
    ls += l;
    cor += c;
    seen += b.count;
  }
  *loss = seen ? ls / (double)seen : NAN;
  *acc = seen ? 100.0 * (double)cor / (double)seen : NAN;
  return 0;
}

static int save_ckpt(run *r, const char *path, int completed_epochs, const char *log_line) {
  flag_kv kv[40];
  int n = opts_flags(&r->o, kv);
  ckpt_meta meta[64];
  char ep[32], st[32], gs[32], ls[64], cor[32], seen[32], tt[64], best[64];
  int m = 0;
  for (int i = 0; i < n; i++) meta[m++] = (ckpt_meta){kv[i].key, kv[i].val};
  snprintf(ep, sizeof ep, "%d", completed_epochs);
  snprintf(st, sizeof st, "%" PRId64, r->step);
  snprintf(gs, sizeof gs, "%" PRId64, (int64_t)completed_epochs * r->steps_per_epoch + r->step);
  snprintf(ls, sizeof ls, "%.17g", r->loss_sum);
  snprintf(cor, sizeof cor, "%" PRId64, r->correct);
  snprintf(seen, sizeof seen, "%" PRId64, r->seen);
  snprintf(tt, sizeof tt, "%.17g", r->train_time);
  snprintf(best, sizeof best, "%.17g", r->best_acc);
  meta[m++] = (ckpt_meta){"format", "wrn-checkpoint-1"};
  meta[m++] = (ckpt_meta){"epoch", ep};           /* epochs completed */
  meta[m++] = (ckpt_meta){"step_in_epoch", st};   /* steps done in the next epoch */
  meta[m++] = (ckpt_meta){"global_step", gs};     /* keys the random streams */
  meta[m++] = (ckpt_meta){"partial_loss_sum", ls};
  meta[m++] = (ckpt_meta){"partial_correct", cor};
  meta[m++] = (ckpt_meta){"partial_seen", seen};
  meta[m++] = (ckpt_meta){"partial_train_time", tt};
  meta[m++] = (ckpt_meta){"best_test_acc", best};
  if (log_line) meta[m++] = (ckpt_meta){"log_line", log_line};
  if (ckpt_save(r->net, path, meta, m, 1) != WRN_OK) {
    cli_error("train", "writing a checkpoint");
    return 1;
  }
  return 0;
}

static void progress(run *r, double t0_epoch, int final) {
  static double last = 0;
  double t = wrn_seconds();
  if (!final && t - last < (r->tty ? 0.5 : 15.0)) return;
  last = t;
  double el = r->train_time + (t - t0_epoch);
  double ips = el > 0 ? (double)r->seen / el : 0;
  double eta = ips > 0 ? (double)(r->steps_per_epoch - r->step) * r->o.batch / ips : 0;
  double loss = r->seen ? r->loss_sum / (double)r->seen : 0;
  double acc = r->seen ? 100.0 * (double)r->correct / (double)r->seen : 0;
  if (r->tty)
    printf("\repoch %d/%d  step %" PRId64 "/%" PRId64 "  %.1f img/s  loss %.4f  acc %.2f%%  "
           "ETA %.0fs   %s",
           r->epoch, r->o.epochs, r->step, r->steps_per_epoch, ips, loss, acc, eta,
           final ? "\n" : "");
  else
    printf("epoch %d/%d step %" PRId64 "/%" PRId64 " %.1f img/s loss %.4f acc %.2f%% ETA %.0fs\n",
           r->epoch, r->o.epochs, r->step, r->steps_per_epoch, ips, loss, acc, eta);
  fflush(stdout);
}

static int add_opts_json(wrn_json *j, const train_opts *o) {
  flag_kv kv[40];
  int n = opts_flags(o, kv);
  for (int i = 0; i < n; i++) {
    char key[40];
    snprintf(key, sizeof key, "%s", kv[i].key + 2);
    for (char *p = key; *p; p++)
      if (*p == '-') *p = '_';
    /* The epoch's own "lr" is the scheduled rate; the option is the starting one. */
    if (!strcmp(key, "lr")) snprintf(key, sizeof key, "base_lr");
    char *end;
    double v = strtod(kv[i].val, &end);
    int number = kv[i].val[0] && !*end && strchr(kv[i].val, ',') == NULL;
    int integral = number && strchr(kv[i].val, '.') == NULL && strchr(kv[i].val, 'e') == NULL;
    wrn_status s = integral ? wrn_json_int(j, key, (int64_t)strtoll(kv[i].val, NULL, 10))
                   : number ? wrn_json_double(j, key, v)
                            : wrn_json_str(j, key, kv[i].val);
    if (s != WRN_OK) return 1;
  }
  return 0;
}

/* The epoch number of the last line of log.jsonl (0 when none). */
static int log_last_epoch(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char line[65536];
  int last = 0;
  while (fgets(line, sizeof line, f)) {
    char *p = strstr(line, "\"epoch\":");
    if (p) last = atoi(p + 8);
  }
  fclose(f);
  return last;
}

static void run_free(run *r) {
  wrn_loader_free(r->train_l);
  wrn_loader_free(r->test_l);
  wrn_net_free(r->net);
  wrn_ctx_free(r->ctx);
  wrn_dataset_free(&r->ds);
  wrn_jsonl_close(r->log);
  wrn_json_free(r->js);
}

/* Opens the data, the device and the network (steps shared by train and eval). */
static int open_common(run *r, const char *cmd, int with_loaders) {
  wrn_dataset_options dopt = {(wrn_dataset_kind)r->o.kind, (wrn_labels)r->o.labels,
                              (size_t)r->o.train_limit, (size_t)r->o.test_limit};
  if (wrn_dataset_open(&r->ds, r->o.data, &dopt) != WRN_OK) {
    cli_error(cmd, "reading the data set");
    return 1;
  }
  if (r->o.classes == 0) r->o.classes = r->ds.n_classes;
  if (r->o.classes != r->ds.n_classes) {
    fprintf(stderr, "wrn %s: the model has %d classes but %s has %d\n", cmd, r->o.classes,
            r->o.data, r->ds.n_classes);
    return 1;
  }
  r->spec = (wrn_model_spec){0, 0, r->o.classes, r->o.dropout, 3, 32, 32};
  if (wrn_model_parse(r->o.model, &r->spec) != WRN_OK) {
    cli_error(cmd, "model");
    return 2;
  }
  wrn_device_info dev;
  if (wrn_device_select(r->o.device[0] ? r->o.device : NULL, &dev) != WRN_OK) {
    cli_error(cmd, "choosing a device");
    return 1;
  }
  wrn_ctx_options co = {WRN_F32, 0, 0};
  double t0 = wrn_seconds();
  if (wrn_ctx_open(&r->ctx, &dev, &co) != WRN_OK) {
    cli_error(cmd, "opening the device");
    return 1;
  }
  wrn_net_options no;
  wrn_net_options_default(&no);
  no.bn_gamma_one = r->o.bn_gamma_one;
  no.max_workspace_elems = (size_t)(r->o.workspace_mib * 1048576.0 / 4);
  if (wrn_net_create(&r->net, r->ctx, r->o.batch, &no) != WRN_OK ||
      wrn_model_build(r->net, &r->spec) != WRN_OK || wrn_net_finalize(r->net) != WRN_OK) {
    cli_error(cmd, "setting up the model");
    return 1;
  }
  if (with_loaders &&
      (wrn_loader_open(&r->train_l, &r->ds.train, r->o.batch, r->o.shuffle, 1, r->o.seed) !=
           WRN_OK ||
       wrn_loader_open(&r->test_l, &r->ds.test, r->o.batch, 0, 0, r->o.seed) != WRN_OK)) {
    cli_error(cmd, "starting the data loader");
    return 1;
  }
  if (!with_loaders &&
      wrn_loader_open(&r->test_l, &r->ds.test, r->o.batch, 0, 0, r->o.seed) != WRN_OK) {
    cli_error(cmd, "starting the data loader");
    return 1;
  }
  char name[64];
  wrn_model_name(&r->spec, name, sizeof name);
  size_t arena, naive, ws, params;
  wrn_net_memory(r->net, &arena, &naive, &ws, &params);
  printf("%s: %s, %zu parameters, batch %d on %s (%s); kernels built in %.2f s (%d/%d from "
         "cache); activations %.1f MiB planned (%.1f MiB without reuse)\n",
         cmd, name, wrn_net_param_count(r->net), r->o.batch, dev.name, dev.platform_name,
         wrn_ctx_build_seconds(r->ctx), wrn_ctx_programs_cached(r->ctx),
         wrn_ctx_programs_total(r->ctx), arena / 1048576.0, naive / 1048576.0);
  (void)t0;
  return 0;
}

static int train_main(run *r, int resuming, const wrn_st_file *resume_f) {
  int rc;
  if ((rc = prepare_out(r, resuming))) return rc;
  if ((rc = open_common(r, "train", 1))) return rc;
  r->steps_per_epoch = wrn_loader_steps(r->train_l);
  if (r->steps_per_epoch < 1) {
    fprintf(stderr, "wrn train: %zu training images make no full batch of %d; lower --batch\n",
            r->ds.train.n, r->o.batch);
    return 1;
  }
  int start_epoch = 1;
  r->step = 0;
  if (resuming) {
    if (ckpt_load(r->net, resume_f, r->last_path, 1) != WRN_OK) {
      cli_error("train", "loading the checkpoint to resume");
      return 1;
    }
    const char *ep = wrn_st_meta(resume_f, "epoch"), *st = wrn_st_meta(resume_f, "step_in_epoch");
    start_epoch = (ep ? atoi(ep) : 0) + 1;
    r->step = st ? atoll(st) : 0;
    const char *v;
    if ((v = wrn_st_meta(resume_f, "partial_loss_sum"))) r->loss_sum = strtod(v, NULL);
    if ((v = wrn_st_meta(resume_f, "partial_correct"))) r->correct = atoll(v);
    if ((v = wrn_st_meta(resume_f, "partial_seen"))) r->seen = atoll(v);
    if ((v = wrn_st_meta(resume_f, "partial_train_time"))) r->train_time = strtod(v, NULL);
    if ((v = wrn_st_meta(resume_f, "best_test_acc"))) r->best_acc = strtod(v, NULL);
    /* A stop between the checkpoint and the log line leaves the line in the checkpoint. */
    const char *line = wrn_st_meta(resume_f, "log_line");
    if (line && ep && log_last_epoch(r->log_path) < atoi(ep)) {
      FILE *f = fopen(r->log_path, "ab");
      if (!f || fprintf(f, "%s\n", line) < 0 || fclose(f) != 0) {
        fprintf(stderr, "wrn train: cannot append to %s\n", r->log_path);
        return 1;
      }
    }
    printf("train: resuming %s at epoch %d, step %" PRId64 "\n", r->o.out, start_epoch, r->step);
  } else {
    if (wrn_net_init_params(r->net, r->o.seed) != WRN_OK) {
      cli_error("train", "initialising parameters");
      return 1;
    }
    if (r->o.init[0]) {
      wrn_st_file *f;
      if (wrn_st_open(&f, r->o.init) != WRN_OK) {
        cli_error("train", "--init");
        return 1;
      }
      wrn_status s = ckpt_load(r->net, f, r->o.init, 0);
      wrn_st_close(f);
      if (s != WRN_OK) {
        cli_error("train", "--init");
        return 1;
      }
    }
  }
  if (wrn_jsonl_open(&r->log, r->log_path) != WRN_OK || wrn_json_new(&r->js) != WRN_OK) {
    cli_error("train", "opening the log");
    return 1;
  }
  double tw = wrn_seconds();
  if (wrn_net_warmup(r->net) != WRN_OK) {
    cli_error("train", "warming up the kernels");
    return 1;
  }
  printf("train: kernels ready after %.2f s of warm-up; %" PRId64 " steps per epoch, %zu "
         "training and %zu test images; run folder %s\n",
         wrn_seconds() - tw, r->steps_per_epoch, r->ds.train.n, r->ds.test.n, r->o.out);
  fflush(stdout);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  for (r->epoch = start_epoch; r->epoch <= r->o.epochs; r->epoch++) {
    double lr = lr_at(&r->o, r->epoch);
    if (wrn_loader_start_epoch(r->train_l, (uint64_t)r->epoch, r->step) != WRN_OK) {
      cli_error("train", "training data");
      return 1;
    }
    double t0 = wrn_seconds();
    for (;;) {
      if (g_stop) {
        r->train_time += wrn_seconds() - t0;
        if (save_ckpt(r, r->last_path, r->epoch - 1, NULL)) return 1;
        fprintf(stderr,
                "\nwrn train: stopped by signal %d at epoch %d step %" PRId64 "; checkpoint "
                "%s written. Resume with: wrn train --resume %s\n",
                (int)g_stop, r->epoch, r->step, r->last_path, r->o.out);
        return 128 + (int)g_stop;
      }
      wrn_batch b;
      if (wrn_loader_next(r->train_l, &b) != WRN_OK) {
        cli_error("train", "training data");
        return 1;
      }
      if (b.count == 0) break;
      uint64_t gstep = (uint64_t)(r->epoch - 1) * (uint64_t)r->steps_per_epoch + (uint64_t)r->step;
      wrn_augment a = augment_for(&r->o, 1, gstep);
      wrn_sgd sgd = {lr, r->o.momentum, r->o.wd, r->o.nesterov,
                     gstep == 0 || (r->o.momentum_reset && r->step == 0 && is_drop_epoch(&r->o, r->epoch))};
      double l;
      int c;
      if (wrn_net_set_batch(r->net, b.images, b.labels, b.count, &a) != WRN_OK ||
          wrn_net_forward(r->net, 1, r->o.seed, gstep) != WRN_OK ||
          wrn_net_loss(r->net, b.count, 1) != WRN_OK || wrn_net_backward(r->net) != WRN_OK ||
          wrn_net_update(r->net, &sgd) != WRN_OK ||
          wrn_net_read_loss(r->net, b.count, &l, &c) != WRN_OK) {
        cli_error("train", "training step");
        return 1;
      }
      if (!isfinite(l)) {
        fprintf(stderr, "\nwrn train: the loss became %g at epoch %d step %" PRId64 "; lower --lr "
                "(the last checkpoint %s is intact)\n", l, r->epoch, r->step, r->last_path);
        return 1;
      }
      r->loss_sum += l;
      r->correct += c;
      r->seen += b.count;
      r->step++;
      if (r->o.progress != 2 && (r->tty || r->o.progress == 1)) progress(r, t0, 0);
      else if (r->o.progress == 0) progress(r, t0, 0);
    }
    r->train_time += wrn_seconds() - t0;
    if (r->o.progress != 2) progress(r, wrn_seconds(), 1);
    double te0 = wrn_seconds(), test_loss, test_acc;
    if (evaluate(r, &test_loss, &test_acc)) return 1;
    double test_time = wrn_seconds() - te0;
    wrn_json *j = r->js;
    wrn_json_clear(j);
    double train_loss = r->loss_sum / (double)(r->seen ? r->seen : 1);
    if (add_opts_json(j, &r->o) || wrn_json_int(j, "epoch", r->epoch) ||
        wrn_json_double(j, "lr", lr) || wrn_json_double(j, "loss", train_loss) ||
        wrn_json_double(j, "train_loss", train_loss) ||
        wrn_json_double(j, "train_acc", 100.0 * (double)r->correct / (double)(r->seen ? r->seen : 1)) ||
        wrn_json_double(j, "test_loss", test_loss) || wrn_json_double(j, "test_acc", test_acc) ||
        wrn_json_double(j, "train_time", r->train_time) ||
        wrn_json_double(j, "test_time", test_time) ||
        wrn_json_int(j, "n_parameters", (int64_t)wrn_net_param_count(r->net))) {
      cli_error("train", "building the log line");
      return 1;
    }
    /* Checkpoint first, then the log line: a stop in between is repaired on resume from the
     * line stored in the checkpoint. */
    r->step = 0;
    r->loss_sum = 0, r->correct = 0, r->seen = 0, r->train_time = 0;
    r->last_acc = test_acc;
    int best = test_acc > r->best_acc;
    if (best) r->best_acc = test_acc;
    char *line = strdup(wrn_json_text(j));
    if (!line) return 1;
    int bad = save_ckpt(r, r->last_path, r->epoch, line) ||
              (best && save_ckpt(r, r->best_path, r->epoch, line));
    if (bad) {
      free(line);
      return 1;
    }
    if (wrn_jsonl_append(r->log, j, NULL) != WRN_OK) {
      free(line);
      cli_error("train", "writing the log");
      return 1;
    }
    printf("json_stats: %s\n", line);
    printf("epoch %d: train loss %.4f, test loss %.4f, test accuracy %.2f%% (error %.2f%%)\n",
           r->epoch, train_loss, test_loss, test_acc, 100 - test_acc);
    fflush(stdout);
    free(line);
  }
  printf("train: done. final test accuracy %.2f%% (best %.2f%%, chance %.0f%%); log %s; "
         "checkpoints %s (last) and %s (best)\n",
         r->last_acc, r->best_acc, 100.0 / r->o.classes, r->log_path, r->last_path, r->best_path);
  return 0;
}

int cmd_train(int argc, char **argv) {
  run r;
  memset(&r, 0, sizeof r);
  opts_default(&r.o);
  r.tty = isatty(1);
  const char *resume = NULL;
  int explicit_flags = 0;
  /* First pass: --help and --resume, so that a resumed run starts from its stored options. */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      train_usage(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--resume")) {
      if (!(resume = arg_value("train", argc, argv, &i))) return 2;
    }
  }
  wrn_st_file *rf = NULL;
  if (resume) {
    char path[1200];
    snprintf(path, sizeof path, "%s/last.safetensors", resume);
    if (wrn_st_open(&rf, path) != WRN_OK) {
      cli_error("train", "--resume");
      return 1;
    }
    for (int i = 0; i < wrn_st_meta_count(rf); i++) {
      const char *k, *v;
      wrn_st_meta_at(rf, i, &k, &v);
      if (k[0] == '-' && k[1] == '-' && set_flag(&r.o, "train", k, v) == 2) {
        fprintf(stderr, "wrn train: %s holds a bad option %s=%s\n", path, k, v);
        wrn_st_close(rf);
        return 1;
      }
    }
    snprintf(r.o.out, sizeof r.o.out, "%s", resume);
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--resume")) {
      i++;
      continue;
    }
    if (!strcmp(a, "--no-nesterov")) {
      r.o.nesterov = 0;
      explicit_flags++;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "wrn train: unexpected argument '%s'\n", a);
      train_usage(stderr);
      wrn_st_close(rf);
      return 2;
    }
    const char *v = arg_value("train", argc, argv, &i);
    if (!v) {
      wrn_st_close(rf);
      return 2;
    }
    int rc = set_flag(&r.o, "train", a, v);
    if (rc == 1) {
      fprintf(stderr, "wrn train: unknown flag '%s'\n", a);
      train_usage(stderr);
    }
    if (rc) {
      wrn_st_close(rf);
      return 2;
    }
    if (strcmp(a, "--device") && strcmp(a, "--progress")) explicit_flags++;
  }
  if (resume && explicit_flags)
    fprintf(stderr, "wrn train: warning: flags given with --resume override the stored options; "
                    "the run is then no longer an exact continuation\n");
  if (resume) snprintf(r.o.out, sizeof r.o.out, "%s", resume);
  if (!r.o.data[0]) {
    fprintf(stderr, "wrn train: --data DIR is required (a CIFAR-10 or CIFAR-100 folder in the "
                    "official binary layout, e.g. data/cifar10-sample)\n");
    wrn_st_close(rf);
    return 2;
  }
  for (int i = 1; i < r.o.nsteps; i++)
    if (r.o.steps[i] <= r.o.steps[i - 1]) {
      fprintf(stderr, "wrn train: --epoch-step must increase, got %d after %d\n", r.o.steps[i],
              r.o.steps[i - 1]);
      wrn_st_close(rf);
      return 2;
    }
  int rc = train_main(&r, resume != NULL, rf);
  wrn_st_close(rf);
  run_free(&r);
  return rc;
}

/* ---------------------------------------------------------------- eval */

int cmd_eval(int argc, char **argv) {
  run r;
  memset(&r, 0, sizeof r);
  opts_default(&r.o);
  const char *ckpt = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("usage: wrn eval --checkpoint FILE --data DIR [--batch N] [--device X]\n"
             "                [--test-limit N] [--dataset auto|cifar10|cifar100] [--labels fine|coarse]\n"
             "Evaluates a checkpoint written by wrn train on the test split: loss, accuracy, error.\n");
      return 0;
    }
    if (!(v = arg_value("eval", argc, argv, &i))) return 2;
    if (!strcmp(a, "--checkpoint")) {
      ckpt = v;
      continue;
    }
    if (strcmp(a, "--data") && strcmp(a, "--batch") && strcmp(a, "--device") &&
        strcmp(a, "--test-limit") && strcmp(a, "--dataset") && strcmp(a, "--labels")) {
      fprintf(stderr, "wrn eval: unknown flag '%s'\n", a);
      return 2;
    }
    if (set_flag(&r.o, "eval", a, v)) return 2;
  }
  if (!ckpt || !r.o.data[0]) {
    fprintf(stderr, "wrn eval: --checkpoint FILE and --data DIR are required\n");
    return 2;
  }
  wrn_st_file *f;
  if (wrn_st_open(&f, ckpt) != WRN_OK) {
    cli_error("eval", "--checkpoint");
    return 1;
  }
  const char *m = wrn_st_meta(f, "--model"), *c = wrn_st_meta(f, "--classes"),
             *d = wrn_st_meta(f, "--dropout");
  if (!m) {
    fprintf(stderr, "wrn eval: %s has no '--model' metadata: not a wrn checkpoint\n", ckpt);
    wrn_st_close(f);
    return 1;
  }
  if (set_flag(&r.o, "eval", "--model", m) || (c && set_flag(&r.o, "eval", "--classes", c)) ||
      (d && set_flag(&r.o, "eval", "--dropout", d))) {
    fprintf(stderr, "wrn eval: %s has bad model metadata\n", ckpt);
    wrn_st_close(f);
    return 1;
  }
  r.o.train_limit = 1; /* eval reads the training files too (sizes checked) but uses none */
  int rc = open_common(&r, "eval", 0);
  if (!rc && ckpt_load(r.net, f, ckpt, 0) != WRN_OK) {
    cli_error("eval", "loading the checkpoint");
    rc = 1;
  }
  double loss, acc;
  double t0 = wrn_seconds();
  if (!rc) rc = evaluate(&r, &loss, &acc);
  if (!rc)
    printf("eval: %s on %zu test images of %s: loss %.4f, accuracy %.2f%%, error %.2f%% "
           "(%.1f s)\n",
           ckpt, r.ds.test.n, r.o.data, loss, acc, 100 - acc, wrn_seconds() - t0);
  wrn_st_close(f);
  run_free(&r);
  return rc;
}
