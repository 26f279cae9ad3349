/* The trainer (wrn_train.h): options, the schedule, steps, and runs with their folders, logs,
 * checkpoints and exact resume. The devices a step runs on are behind io/replicas.c. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "train_internal.h"

#include "dist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

wrn_status wrn_train_context(wrn_status s, const char *what) {
  if (s == WRN_OK) return s;
  char msg[4096];
  snprintf(msg, sizeof msg, "%s", wrn_last_error());
  return wrn_fail(s, "%s%s%s", what, msg[0] ? ": " : "", msg);
}

/* ---------------------------------------------------------------- options */

void wrn_train_options_default(wrn_train_options *o) {
  memset(o, 0, sizeof *o);
  snprintf(o->model, sizeof o->model, "wrn-28-10");
  o->epochs = 200;
  o->batch = 128;
  o->lr = 0.1;
  o->lr_decay = 0.2;
  o->lr_drops[0] = 60, o->lr_drops[1] = 120, o->lr_drops[2] = 160, o->n_lr_drops = 3;
  o->weight_decay = 5e-4;
  o->momentum = 0.9;
  o->nesterov = 1;
  o->momentum_reset = 1;
  o->augment = 1;
  o->shuffle = 1;
  o->seed = 1;
  o->workspace_mib = 1024;
  o->meanstd = 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  o->loader_threads = cores > 0 ? (int)cores : 1;
}

/* Whether JPEG decoding is built in; fails with the decoder's message otherwise. */
static int jpeg_ready(void) {
  wrn_jpeg *j = NULL;
  if (wrn_jpeg_new(&j) != WRN_OK) return 0;
  wrn_jpeg_free(j);
  return 1;
}

void wrn_train_options_recipe(wrn_train_options *o, wrn_dataset_kind kind, const char *model) {
  if (kind == WRN_DATASET_SVHN) {
    o->lr = 0.01;
    o->lr_decay = 0.1;
    o->lr_drops[0] = 80, o->lr_drops[1] = 120, o->n_lr_drops = 2;
    o->epochs = 160;
    o->dropout = 0.4;
    o->augment = 0;
    o->meanstd = 0;
    o->svhn_extra = 1;
  }
  if (model && (!strncmp(model, "resnet-", 7) || !strcmp(model, "wrn-50-2") ||
                !strcmp(model, "wrn-101-2"))) {
    o->lr = 0.1;
    o->lr_decay = 0.1;
    o->lr_drops[0] = 30, o->lr_drops[1] = 60, o->n_lr_drops = 2;
    o->epochs = 90;
    o->weight_decay = 1e-4;
    o->batch = 256;
    o->nesterov = 0;
    o->momentum_reset = 0;
    o->dropout = 0;
  }
}

typedef enum opt_type {
  OPT_STR,
  OPT_INT,
  OPT_U64,
  OPT_REAL,
  OPT_DROPS, /* lr_drops and n_lr_drops */
  OPT_SWITCH,
  OPT_DATASET,
  OPT_LABELS,
  OPT_SCHEDULE
} opt_type;

typedef struct opt_def {
  const char *name;
  opt_type type;
  size_t off, size;
  double lo, hi;
  int stored; /* part of what defines a run: kept in checkpoints and logs */
} opt_def;

#define OPT(name, type, field, lo, hi, stored)                                              \
  {name, type, offsetof(wrn_train_options, field), sizeof(((wrn_train_options *)0)->field),  \
   lo, hi, stored}
/* In the order checkpoints and log lines list them. */
static const opt_def opt_defs[] = {
    OPT("--model", OPT_STR, model, 0, 0, 1),
    OPT("--classes", OPT_INT, classes, 2, 100000, 1),
    OPT("--dropout", OPT_REAL, dropout, 0, 0.99, 1),
    OPT("--data", OPT_STR, data, 0, 0, 1),
    OPT("--dataset", OPT_DATASET, dataset, 0, 0, 1),
    OPT("--labels", OPT_LABELS, labels, 0, 0, 1),
    OPT("--train-limit", OPT_INT, train_limit, 0, 1 << 30, 1),
    OPT("--test-limit", OPT_INT, test_limit, 0, 1 << 30, 1),
    OPT("--epochs", OPT_INT, epochs, 1, 100000, 1),
    OPT("--batch", OPT_INT, batch, 1, 1 << 16, 1),
    OPT("--lr", OPT_REAL, lr, 0, 100, 1),
    OPT("--lr-decay", OPT_REAL, lr_decay, 0, 1, 1),
    OPT("--wd", OPT_REAL, weight_decay, 0, 1, 1),
    OPT("--momentum", OPT_REAL, momentum, 0, 0.999999, 1),
    OPT("--epoch-step", OPT_DROPS, lr_drops, 1, 100000, 1),
    OPT("--seed", OPT_U64, seed, 0, 0, 1),
    OPT("--augment", OPT_SWITCH, augment, 0, 0, 1),
    OPT("--shuffle", OPT_SWITCH, shuffle, 0, 0, 1),
    OPT("--nesterov", OPT_SWITCH, nesterov, 0, 0, 1),
    OPT("--momentum-reset", OPT_SWITCH, momentum_reset, 0, 0, 1),
    OPT("--bn-gamma-one", OPT_SWITCH, bn_gamma_one, 0, 0, 1),
    OPT("--meanstd", OPT_SWITCH, meanstd, 0, 0, 1),
    OPT("--svhn-extra", OPT_SWITCH, svhn_extra, 0, 0, 1),
    OPT("--image-size", OPT_INT, image_size, 0, 4096, 1),
    OPT("--loader-threads", OPT_INT, loader_threads, 1, 1024, 0),
    OPT("--workspace-mib", OPT_REAL, workspace_mib, 1, 1 << 20, 1),
    OPT("--lr-schedule", OPT_SCHEDULE, lr_schedule, 0, 0, 1),
    OPT("--warmup-epochs", OPT_INT, warmup_epochs, 0, 100000, 1),
    OPT("--label-smoothing", OPT_REAL, label_smoothing, 0, 0.999, 1),
    OPT("--cutout", OPT_INT, cutout, 0, 4096, 1),
    OPT("--device", OPT_STR, device, 0, 0, 0),
    OPT("--devices", OPT_STR, devices, 0, 0, 0),
    OPT("--split", OPT_STR, split, 0, 0, 1),
    OPT("--min-per-device", OPT_INT, min_per_device, 0, 1 << 16, 0),
    OPT("--out", OPT_STR, out, 0, 0, 0),
    OPT("--init", OPT_STR, init, 0, 0, 0),
    OPT("--init-extra", OPT_SWITCH, init_extra, 0, 0, 0),
    OPT("--conv-algo", OPT_STR, conv_algo, 0, 0, 0),
};
#undef OPT
#define N_OPTS ((int)(sizeof opt_defs / sizeof opt_defs[0]))
#define MAX_VALUE 1100 /* the longest value text: a 1023-character path */

static const char *const label_names[] = {"fine", "coarse"};
static const char *const schedule_names[] = {"step", "cosine"};

static const opt_def *opt_find(const char *name) {
  for (int i = 0; i < N_OPTS; i++)
    if (!strcmp(opt_defs[i].name, name)) return &opt_defs[i];
  return NULL;
}

int wrn_train_option_known(const char *name) { return opt_find(name) != NULL; }

wrn_status wrn_train_option_set(wrn_train_options *o, const char *name, const char *v) {
  const opt_def *d = opt_find(name);
  if (!d) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "'%s' is not a training option", name);
  void *field = (char *)o + d->off;
  int64_t l;
  switch (d->type) {
  case OPT_STR:
    if (strlen(v) >= d->size)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: the value is %zu characters long, the "
                      "most is %zu", name, strlen(v), d->size - 1);
    memmove(field, v, strlen(v) + 1); /* v may be the field itself */
    return WRN_OK;
  case OPT_INT:
    if (wrn_parse_i64(v, (int64_t)d->lo, (int64_t)d->hi, &l) != 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s wants an integer in %.0f..%.0f, got '%s'",
                      name, d->lo, d->hi, v);
    *(int *)field = (int)l;
    return WRN_OK;
  case OPT_U64: {
    uint64_t u;
    if (wrn_parse_u64(v, &u) != 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s wants a non-negative integer, got '%s'",
                      name, v);
    *(uint64_t *)field = u;
    return WRN_OK;
  }
  case OPT_REAL: {
    double x;
    if (wrn_parse_real(v, d->lo, d->hi, &x) != 0)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s wants a number in [%g, %g], got '%s'",
                      name, d->lo, d->hi, v);
    *(double *)field = x;
    return WRN_OK;
  }
  case OPT_DROPS: {
    int drops[WRN_TRAIN_MAX_DROPS], n = 0;
    for (const char *p = v; v[0];) { /* "" is no drop; "60," is refused */
      const char *end = strchr(p, ',');
      size_t len = end ? (size_t)(end - p) : strlen(p);
      char item[24];
      if (len < sizeof item) memcpy(item, p, len);
      item[len < sizeof item ? len : 0] = '\0';
      if (len >= sizeof item || n >= WRN_TRAIN_MAX_DROPS ||
          wrn_parse_i64(item, (int64_t)d->lo, (int64_t)d->hi, &l) != 0)
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                        "%s wants up to %d comma-separated integers in %.0f..%.0f, got '%s'",
                        name, WRN_TRAIN_MAX_DROPS, d->lo, d->hi, v);
      drops[n++] = (int)l;
      if (!end) break;
      p = end + 1;
    }
    memcpy(o->lr_drops, drops, (size_t)n * sizeof *drops);
    o->n_lr_drops = n;
    return WRN_OK;
  }
  case OPT_SWITCH:
    if (strcmp(v, "on") && strcmp(v, "off"))
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s wants one of on, off; got '%s'", name, v);
    *(int *)field = !strcmp(v, "on");
    return WRN_OK;
  case OPT_DATASET:
    return wrn_train_context(wrn_dataset_kind_parse(v, (wrn_dataset_kind *)field), name);
  case OPT_LABELS:
    return wrn_train_context(wrn_labels_parse(v, (wrn_labels *)field), name);
  case OPT_SCHEDULE:
    for (int i = 0; i < 2; i++)
      if (!strcmp(v, schedule_names[i])) {
        *(wrn_lr_schedule *)field = (wrn_lr_schedule)i;
        return WRN_OK;
      }
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s wants one of step, cosine; got '%s'", name,
                    v);
  }
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: unknown option type", name);
}

/* The option's value as text that wrn_train_option_set reads back to the same value. */
static void opt_text(const wrn_train_options *o, const opt_def *d, char *buf, size_t n) {
  const void *field = (const char *)o + d->off;
  switch (d->type) {
  case OPT_STR: snprintf(buf, n, "%s", (const char *)field); break;
  case OPT_INT: snprintf(buf, n, "%d", *(const int *)field); break;
  case OPT_U64: snprintf(buf, n, "%" PRIu64, *(const uint64_t *)field); break;
  case OPT_REAL: snprintf(buf, n, "%.17g", *(const double *)field); break;
  case OPT_DROPS: {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < o->n_lr_drops && len < n; i++)
      len += (size_t)snprintf(buf + len, n - len, "%s%d", i ? "," : "", o->lr_drops[i]);
    break;
  }
  case OPT_SWITCH: snprintf(buf, n, "%s", *(const int *)field ? "on" : "off"); break;
  case OPT_DATASET:
    snprintf(buf, n, "%s", wrn_dataset_kind_name(*(const wrn_dataset_kind *)field));
    break;
  case OPT_LABELS:
    snprintf(buf, n, "%s", label_names[*(const wrn_labels *)field == WRN_LABELS_COARSE]);
    break;
  case OPT_SCHEDULE:
    snprintf(buf, n, "%s", schedule_names[*(const wrn_lr_schedule *)field == WRN_LR_COSINE]);
    break;
  }
}

wrn_status wrn_train_options_check(const wrn_train_options *o) {
  if (!o->data[0])
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "--data DIR is required (a CIFAR-10 or CIFAR-100 folder in the official "
                    "binary layout, e.g. data/cifar10-sample)");
  for (int i = 1; i < o->n_lr_drops; i++)
    if (o->lr_drops[i] <= o->lr_drops[i - 1])
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--epoch-step must increase, got %d after %d",
                      o->lr_drops[i], o->lr_drops[i - 1]);
  if (o->batch < 1 || o->epochs < 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--batch and --epochs must be at least 1");
  if (o->warmup_epochs >= o->epochs)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--warmup-epochs %d must be fewer than --epochs "
                    "%d", o->warmup_epochs, o->epochs);
  if (o->conv_algo[0] && strcmp(o->conv_algo, "auto") && !strchr(o->conv_algo, '@') &&
      wrn_conv_choice_check(o->conv_algo) != WRN_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", wrn_last_error());
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--conv-algo: %s", msg);
  }
  return WRN_OK;
}

static int model_option(const char *name) {
  /* The network and what feeds it: all an evaluation takes from a checkpoint. */
  return !strcmp(name, "--model") || !strcmp(name, "--classes") || !strcmp(name, "--dropout") ||
         !strcmp(name, "--image-size") || !strcmp(name, "--meanstd");
}

static wrn_status options_from(wrn_train_options *o, const wrn_st_file *f, const char *path,
                               int model_only) {
  if (!wrn_st_meta(f, "--model"))
    return wrn_fail(WRN_STATUS_FORMAT, "%s has no '--model' metadata: not a wrn checkpoint",
                    path);
  for (int i = 0; i < wrn_st_meta_count(f); i++) {
    const char *k, *v;
    wrn_st_meta_at(f, i, &k, &v);
    const opt_def *d = opt_find(k);
    if (!d || !d->stored || (model_only && !model_option(k))) continue;
    if (wrn_train_option_set(o, k, v) != WRN_OK) {
      char msg[2048];
      snprintf(msg, sizeof msg, "%s", wrn_last_error());
      return wrn_fail(WRN_STATUS_FORMAT, "%s holds a bad option %s=%s: %s", path, k, v, msg);
    }
  }
  /* The convolution algorithms the run computed with (not an option of its own: the
   * choices the tuner made, whatever --conv-algo asked). An evaluation (model_only) takes
   * them too unless its caller set conv_algo already ("auto" included: ask the tuner), so
   * that it computes the forward pass with the kernels the run's own evaluations used. */
  const char *ca = wrn_st_meta(f, "conv_algos");
  if (model_only && o->conv_algo[0]) ca = NULL;
  if (ca) {
    if (strlen(ca) >= sizeof o->conv_algo)
      return wrn_fail(WRN_STATUS_FORMAT, "%s: its conv_algos metadata is %zu characters long, "
                      "the most is %zu", path, strlen(ca), sizeof o->conv_algo - 1);
    memmove(o->conv_algo, ca, strlen(ca) + 1);
  }
  return WRN_OK;
}

wrn_status wrn_train_options_load(wrn_train_options *o, const char *path, int model_only) {
  wrn_st_file *f;
  wrn_status s = wrn_st_open(&f, path);
  if (s != WRN_OK) return s;
  s = options_from(o, f, path, model_only);
  wrn_st_close(f);
  return s;
}

/* ---------------------------------------------------------------- schedule and steps */

double wrn_train_lr(const wrn_train_options *o, int epoch) {
  double lr = o->lr;
  int w = o->warmup_epochs;
  if (o->lr_schedule == WRN_LR_COSINE) {
    int span = o->epochs - w > 0 ? o->epochs - w : 1;
    int t = epoch - w - 1 > 0 ? epoch - w - 1 : 0;
    const double pi = 3.14159265358979323846;
    lr *= 0.5 * (1 + cos(pi * (double)t / span));
  } else {
    for (int i = 0; i < o->n_lr_drops; i++)
      if (epoch >= o->lr_drops[i]) lr *= o->lr_decay;
  }
  if (epoch <= w) lr *= (double)epoch / (w + 1);
  return lr;
}

static int is_drop_epoch(const wrn_train_options *o, int epoch) {
  if (o->lr_schedule != WRN_LR_STEP) return 0;
  for (int i = 0; i < o->n_lr_drops; i++)
    if (epoch == o->lr_drops[i]) return 1;
  return 0;
}

wrn_sgd wrn_train_sgd(const wrn_train_options *o, int epoch, int64_t step) {
  int first_of_run = epoch == 1 && step == 0;
  int reset = o->momentum_reset && step == 0 && is_drop_epoch(o, epoch);
  wrn_sgd s = {wrn_train_lr(o, epoch), o->momentum, o->weight_decay, o->nesterov,
               first_of_run || reset};
  return s;
}

wrn_augment wrn_train_augment(const wrn_train_options *o, int train, uint64_t global_step) {
  /* The recipe's meanstd normalisation on the 0-255 scale (docs: wrn-recipe.md). */
  wrn_augment a = {train && o->augment, 4, {125.3f, 123.0f, 113.9f}, {63.0f, 62.1f, 66.7f},
                   o->seed * 0x9E3779B97F4A7C15ull + 1, global_step, train ? o->cutout : 0};
  if (o->dataset == WRN_DATASET_IMAGEFOLDER) {
    /* The loader cropped and flipped; torchvision's ImageNet mean and std. */
    const float m[3] = {123.675f, 116.28f, 103.53f}, sd[3] = {58.395f, 57.12f, 57.375f};
    a.augment = 0;
    for (int c = 0; c < 3; c++) a.mean[c] = m[c], a.std[c] = sd[c];
  }
  if (!o->meanstd) /* pixels / 255 */
    for (int c = 0; c < 3; c++) a.mean[c] = 0.0f, a.std[c] = 255.0f;
  return a;
}

wrn_status wrn_train_step(wrn_net *net, int n, const wrn_sgd *sgd, uint64_t dropout_seed,
                          uint64_t step, double *loss_sum, int *correct) {
  double l;
  int c;
  wrn_status s = wrn_net_forward(net, 1, dropout_seed, step);
  if (s == WRN_OK) s = wrn_net_loss(net, n, 1);
  if (s == WRN_OK) s = wrn_net_backward(net);
  if (s == WRN_OK) s = wrn_net_update(net, sgd);
  /* The one wait of the step. */
  if (s == WRN_OK) s = wrn_net_read_loss(net, n, &l, &c);
  if (s != WRN_OK) return s;
  if (loss_sum) *loss_sum = l;
  if (correct) *correct = c;
  return WRN_OK;
}

wrn_status wrn_train_eval_step(wrn_net *net, int n, double *loss_sum, int *correct) {
  double l;
  int c;
  wrn_status s = wrn_net_forward(net, 0, 0, 0);
  if (s == WRN_OK) s = wrn_net_loss(net, n, 0);
  if (s == WRN_OK) s = wrn_net_read_loss(net, n, &l, &c);
  if (s != WRN_OK) return s;
  if (loss_sum) *loss_sum = l;
  if (correct) *correct = c;
  return WRN_OK;
}

/* ---------------------------------------------------------------- the run */

struct wrn_trainer {
  wrn_train_options o;
  wrn_train_hooks h;
  wrn_train_mode mode;
  wrn_dataset ds;
  wrn_imagefolder *train_f, *test_f; /* image folders: DATA/train, DATA/val */
  wrn_replicas reps;
  wrn_loader *train_l, *test_l;
  wrn_jsonl *log;
  wrn_json *js;
  wrn_train_state st;
  double time_done; /* training seconds of this epoch before the current stretch */
  double stretch_t0; /* start of the current stretch of training steps; < 0 when none */
  int warm;
  char init_src[1024]; /* where the first weights came from: --init's file, "" for --seed */
};

static int mkdir_p(const char *path) {
  char tmp[1100];
  if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return errno = ENAMETOOLONG, -1;
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

/* "dir/name" into out[n]; INVALID_ARGUMENT naming what when it does not fit. */
static wrn_status join(char *out, size_t n, const char *dir, const char *name, const char *what) {
  int len = snprintf(out, n, "%s/%s", dir, name);
  if (len < 0 || (size_t)len >= n)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: the path %s/%s is %zu characters long, "
                    "the most is %zu", what, dir, name, strlen(dir) + 1 + strlen(name), n - 1);
  return WRN_OK;
}

wrn_status wrn_train_resume_file(const char *dir, char *path, size_t n) {
  char last[1100], best[1100];
  TRAIN_TRY("--resume", join(last, sizeof last, dir, "last.safetensors", "--resume"));
  TRAIN_TRY("--resume", join(best, sizeof best, dir, "best.safetensors", "--resume"));
  const char *use = file_exists(last) ? last : file_exists(best) ? best : NULL;
  if (!use)
    return wrn_fail(WRN_STATUS_IO,
                    "%s holds no checkpoint (no last.safetensors or best.safetensors): the run "
                    "stopped before its first one, or this is not a run folder; start it again "
                    "as a new run with the same flags and --out %s",
                    dir, dir);
  if (strlen(use) >= n)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--resume: the path %s is too long", use);
  memcpy(path, use, strlen(use) + 1);
  return WRN_OK;
}

/* Removes the temporary files that killed writes of this run's checkpoints and probes left
 * ("last.safetensors.tmp.<pid>.<n>", ".write-test.<pid>"): those of processes that no longer
 * run. */
static void remove_stale_temps(const char *dir) {
  static const char *const prefixes[] = {"last.safetensors.tmp.", "best.safetensors.tmp.",
                                         ".write-test."};
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    for (int i = 0; i < 3; i++) {
      size_t pl = strlen(prefixes[i]);
      if (strncmp(e->d_name, prefixes[i], pl)) continue;
      char *end;
      long pid = strtol(e->d_name + pl, &end, 10);
      if (end == e->d_name + pl || (*end && *end != '.')) break;
      if (pid > 0 && pid != (long)getpid() && pid <= INT_MAX &&
          (kill((pid_t)pid, 0) == 0 || errno == EPERM))
        break; /* its process still runs */
      char path[1400];
      if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path) unlink(path);
      break;
    }
  }
  closedir(d);
}

static wrn_status run_dir_prepare_here(wrn_trainer *t);

/* Under MPI rank 0 prepares the folder and tells the others its name and the outcome. */
static wrn_status run_dir_prepare(wrn_trainer *t) {
  if (!wrn_dist_active()) return run_dir_prepare_here(t);
  char msg[4096] = "";
  int ok = 1;
  if (wrn_dist_rank() == 0 && run_dir_prepare_here(t) != WRN_OK) {
    ok = 0;
    snprintf(msg, sizeof msg, "%s", wrn_last_error());
  }
  IO_TRY(wrn_dist_bcast(&ok, sizeof ok, "sharing the run folder"));
  IO_TRY(wrn_dist_bcast(t->o.out, sizeof t->o.out, "sharing the run folder"));
  if (!memchr(t->o.out, '\0', sizeof t->o.out))
    return wrn_fail(WRN_STATUS_IO, "the run folder's name from rank 0 is not a string");
  if (wrn_dist_rank() == 0) return ok ? WRN_OK : wrn_fail(WRN_STATUS_IO, "%s", msg);
  if (!ok) return wrn_fail(WRN_STATUS_IO, "rank 0 could not prepare the run folder %s",
                           t->o.out);
  wrn_train_state *st = &t->st;
  TRAIN_TRY("--out", join(st->last_path, sizeof st->last_path, t->o.out, "last.safetensors", "--out"));
  TRAIN_TRY("--out", join(st->best_path, sizeof st->best_path, t->o.out, "best.safetensors", "--out"));
  TRAIN_TRY("--out", join(st->log_path, sizeof st->log_path, t->o.out, "log.jsonl", "--out"));
  return WRN_OK;
}

/* The run folder: named when not given, its file paths, created and proven writable before
 * any work; a new run refuses a folder that holds one (a checkpoint, or a log with records);
 * stale temporary files of the run are removed. */
static wrn_status run_dir_prepare_here(wrn_trainer *t) {
  wrn_train_options *o = &t->o;
  wrn_train_state *st = &t->st;
  if (!o->out[0]) {
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", &tm);
    snprintf(o->out, sizeof o->out, "runs/%s-%s", o->model, ts);
  }
  TRAIN_TRY("--out", join(st->last_path, sizeof st->last_path, o->out, "last.safetensors", "--out"));
  TRAIN_TRY("--out", join(st->best_path, sizeof st->best_path, o->out, "best.safetensors", "--out"));
  TRAIN_TRY("--out", join(st->log_path, sizeof st->log_path, o->out, "log.jsonl", "--out"));
  struct stat lsb;
  int log_used = stat(st->log_path, &lsb) == 0 && lsb.st_size > 0;
  if (t->mode == WRN_TRAIN_NEW &&
      (file_exists(st->last_path) || file_exists(st->best_path) || log_used))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s already holds a run (%s); continue it with --resume %s, or choose "
                    "another --out",
                    o->out,
                    file_exists(st->last_path)   ? "last.safetensors"
                    : file_exists(st->best_path) ? "best.safetensors"
                                                 : "log.jsonl",
                    o->out);
  if (mkdir_p(o->out) != 0)
    return wrn_fail(WRN_STATUS_IO, "cannot create the run folder %s: %s", o->out,
                    strerror(errno));
  remove_stale_temps(o->out);
  char probe[1200];
  snprintf(probe, sizeof probe, "%s/.write-test.%ld", o->out, (long)getpid());
  int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return wrn_fail(WRN_STATUS_IO, "the run folder %s is not writable: %s", o->out,
                    strerror(errno));
  close(fd);
  unlink(probe);
  return WRN_OK;
}

/* A stop between an epoch's checkpoint and its log line leaves the line in the checkpoint:
 * appends it (through the durable appender) when the log lacks that epoch. */
static wrn_status log_repair(wrn_trainer *t, const wrn_st_file *f, const char *path,
                             int completed) {
  const char *line = wrn_st_meta(f, "log_line");
  if (!line) return WRN_OK;
  int last;
  wrn_status s = wrn_resume_log_line_check(line, completed, path);
  if (s == WRN_OK) s = wrn_resume_log_last_epoch(t->st.log_path, &last);
  if (s == WRN_OK && last < completed) s = wrn_jsonl_append_line(t->log, line);
  return s;
}

/* Where the run stood at its checkpoint: the epoch, the step in it and the epoch's
 * counters so far, and the best test accuracy; checked like flags. */
static wrn_status resume_state_read(wrn_trainer *t, const wrn_st_file *f, const char *path,
                                    int *completed) {
  wrn_train_state *st = &t->st;
  int n = wrn_st_meta_count(f);
  const char **keys = calloc((size_t)n + 1, sizeof *keys), **vals = calloc((size_t)n + 1, sizeof *vals);
  if (!keys || !vals) {
    free(keys), free(vals);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  for (int i = 0; i < n; i++) wrn_st_meta_at(f, i, &keys[i], &vals[i]);
  wrn_resume_point r;
  wrn_status s = wrn_resume_point_parse(&r, keys, vals, n, path, t->o.epochs,
                                        st->steps_per_epoch, t->o.batch);
  free(keys), free(vals);
  if (s != WRN_OK) return s;
  *completed = r.completed;
  st->epoch = r.completed + 1;
  st->step = r.step;
  st->loss_sum = r.loss_sum;
  st->correct = r.correct;
  st->seen = r.seen;
  t->time_done = r.train_time;
  st->best_acc = r.best_acc;
  const char *v = wrn_st_meta(f, "init");
  if (v) snprintf(t->init_src, sizeof t->init_src, "%s", v);
  st->train_time = t->time_done;
  return WRN_OK;
}

/* Writes a checkpoint of the run: weights, momentum, the stored options and where the run
 * stands (completed_epochs done, then st->step steps of the next), with the epoch's log line
 * when it ends one. */
static wrn_status save_checkpoint(wrn_trainer *t, const char *path, int completed_epochs,
                                  const char *log_line) {
  const wrn_train_state *st = &t->st;
  if (!wrn_replicas_writer(&t->reps)) return WRN_OK; /* rank 0 writes */
  char vals[N_OPTS][MAX_VALUE];
  wrn_checkpoint_meta meta[N_OPTS + 16];
  int m = 0;
  for (int i = 0; i < N_OPTS; i++)
    if (opt_defs[i].stored) {
      opt_text(&t->o, &opt_defs[i], vals[i], sizeof vals[i]);
      meta[m++] = (wrn_checkpoint_meta){opt_defs[i].name, vals[i]};
    }
  char ep[32], step[32], gs[32], ls[64], cor[32], seen[32], tt[64], best[64];
  snprintf(ep, sizeof ep, "%d", completed_epochs);
  snprintf(step, sizeof step, "%" PRId64, st->step);
  snprintf(gs, sizeof gs, "%" PRId64, (int64_t)completed_epochs * st->steps_per_epoch + st->step);
  snprintf(ls, sizeof ls, "%.17g", st->loss_sum);
  snprintf(cor, sizeof cor, "%" PRId64, st->correct);
  snprintf(seen, sizeof seen, "%" PRId64, st->seen);
  snprintf(tt, sizeof tt, "%.17g", st->train_time);
  snprintf(best, sizeof best, "%.17g", st->best_acc);
  meta[m++] = (wrn_checkpoint_meta){"format", "wrn-checkpoint-1"};
  meta[m++] = (wrn_checkpoint_meta){"epoch", ep};         /* epochs completed */
  meta[m++] = (wrn_checkpoint_meta){"step_in_epoch", step}; /* steps done in the next one */
  meta[m++] = (wrn_checkpoint_meta){"global_step", gs};   /* keys the random streams */
  meta[m++] = (wrn_checkpoint_meta){"partial_loss_sum", ls};
  meta[m++] = (wrn_checkpoint_meta){"partial_correct", cor};
  meta[m++] = (wrn_checkpoint_meta){"partial_seen", seen};
  meta[m++] = (wrn_checkpoint_meta){"partial_train_time", tt};
  meta[m++] = (wrn_checkpoint_meta){"best_test_acc", best};
  meta[m++] = (wrn_checkpoint_meta){"init", t->init_src}; /* the run's, across resumes */
  if (log_line) meta[m++] = (wrn_checkpoint_meta){"log_line", log_line};
  if (!t->o.meanstd) { /* what wrn_train_augment feeds the network */
    meta[m++] = (wrn_checkpoint_meta){"input_mean", "0,0,0"};
    meta[m++] = (wrn_checkpoint_meta){"input_std", "255,255,255"};
  } else if (t->o.dataset == WRN_DATASET_IMAGEFOLDER) {
    meta[m++] = (wrn_checkpoint_meta){"input_mean", "123.675,116.28,103.53"};
    meta[m++] = (wrn_checkpoint_meta){"input_std", "58.395,57.12,57.375"};
  }
  char split[1024];
  wrn_replicas_split_text(&t->reps, split, sizeof split);
  if (t->reps.workers > 1) meta[m++] = (wrn_checkpoint_meta){"split", split};
  static _Thread_local char algos[WRN_TRAIN_CONV_ALGO_MAX];
  TRAIN_TRY("writing a checkpoint",
            wrn_net_conv_choices(wrn_replicas_primary(&t->reps), algos, sizeof algos));
  meta[m++] = (wrn_checkpoint_meta){"conv_algos", algos};
  TRAIN_TRY("writing a checkpoint",
            wrn_checkpoint_save(wrn_replicas_primary(&t->reps), path, meta, m, 1));
  return WRN_OK;
}

/* The stored options as JSON fields, named without the dashes ("--lr-decay": "lr_decay";
 * "--lr" is "base_lr", the epoch's own "lr" being the scheduled rate); numbers as numbers. */
static wrn_status log_add_options(wrn_json *j, const wrn_train_options *o) {
  for (int i = 0; i < N_OPTS; i++) {
    if (!opt_defs[i].stored) continue;
    char key[40], val[MAX_VALUE];
    snprintf(key, sizeof key, "%s", opt_defs[i].name + 2);
    for (char *p = key; *p; p++)
      if (*p == '-') *p = '_';
    if (!strcmp(key, "lr")) snprintf(key, sizeof key, "base_lr");
    opt_text(o, &opt_defs[i], val, sizeof val);
    char *end;
    double v = strtod(val, &end);
    int number = val[0] && !*end && strchr(val, ',') == NULL;
    int integral = number && strchr(val, '.') == NULL && strchr(val, 'e') == NULL;
    wrn_status s = integral ? wrn_json_int(j, key, (int64_t)strtoll(val, NULL, 10))
                   : number ? wrn_json_double(j, key, v)
                            : wrn_json_str(j, key, val);
    if (s != WRN_OK) return s;
  }
  return WRN_OK;
}

/* The log line of a finished epoch: the run's options merged with the original's keys. */
static wrn_status log_line_build(wrn_trainer *t, const wrn_train_event *e) {
  wrn_json *j = t->js;
  wrn_json_clear(j);
  wrn_status s = log_add_options(j, &t->o);
  if (!s) s = wrn_json_int(j, "epoch", e->epoch);
  if (!s) s = wrn_json_double(j, "lr", e->lr);
  if (!s) s = wrn_json_double(j, "loss", e->train_loss);
  if (!s) s = wrn_json_double(j, "train_loss", e->train_loss);
  if (!s) s = wrn_json_double(j, "train_acc", e->train_acc);
  if (!s) s = wrn_json_double(j, "test_loss", e->test_loss);
  if (!s) s = wrn_json_double(j, "test_acc", e->test_acc);
  if (!s) s = wrn_json_double(j, "train_time", e->train_time);
  if (!s) s = wrn_json_double(j, "test_time", e->test_time);
  if (!s)
    s = wrn_json_int(j, "n_parameters",
                     (int64_t)wrn_net_param_count(wrn_replicas_primary(&t->reps)));
  /* What the numbers came from: the device and driver, this library, the first weights. */
  const wrn_device_info *dev = wrn_ctx_device(wrn_net_ctx(wrn_replicas_primary(&t->reps)));
  if (!s) s = wrn_json_str(j, "device", dev->name);
  if (!s) s = wrn_json_str(j, "platform", dev->platform_name);
  if (!s) s = wrn_json_str(j, "driver", dev->driver);
  if (!s) s = wrn_json_str(j, "wrn_version", wrn_version());
  if (!s) s = wrn_json_str(j, "init", t->init_src);
  return wrn_train_context(s, "building the log line");
}

/* The devices and split the state reports. */
static void state_devices(wrn_trainer *t) {
  t->st.devices = t->reps.n;
  t->st.split[0] = '\0';
  if (t->reps.workers > 1) wrn_replicas_split_text(&t->reps, t->st.split, sizeof t->st.split);
}

static void emit(wrn_trainer *t, wrn_train_event *e) {
  e->state = &t->st;
  if (t->h.event) t->h.event(e, t->h.user);
}

/* Training seconds of this epoch so far. */
static double train_seconds(const wrn_trainer *t) {
  return t->time_done + (t->stretch_t0 >= 0 ? wrn_seconds() - t->stretch_t0 : 0);
}

wrn_image_pipeline wrn_train_pipeline(const wrn_train_options *o, int train) {
  wrn_image_pipeline p = wrn_image_pipeline_default(train && o->augment);
  if (o->image_size > 0) {
    p.size = o->image_size;
    p.resize = (int)(o->image_size * 256.0 / 224.0 + 0.5); /* 224 -> 256, torchvision's ratio */
  }
  p.seed = o->seed * 0x9E3779B97F4A7C15ull + 2;
  return p;
}

/* DATA/train and DATA/val (DATA/val only for evaluation), with the same classes. */
static wrn_status folders_open(wrn_trainer *t, int eval) {
  wrn_train_options *o = &t->o;
  char p[1100];
  snprintf(p, sizeof p, "%s/val", o->data);
  wrn_status s = wrn_imagefolder_open(&t->test_f, p);
  if (s != WRN_OK) return s;
  const int nc = wrn_imagefolder_classes(t->test_f);
  if (!eval) {
    snprintf(p, sizeof p, "%s/train", o->data);
    if ((s = wrn_imagefolder_open(&t->train_f, p)) != WRN_OK) return s;
    if (wrn_imagefolder_classes(t->train_f) != nc)
      return wrn_fail(WRN_STATUS_FORMAT, "%s/train has %d classes but %s/val has %d", o->data,
                      wrn_imagefolder_classes(t->train_f), o->data, nc);
    for (int i = 0; i < nc; i++)
      if (strcmp(wrn_imagefolder_class_name(t->train_f, i), wrn_imagefolder_class_name(t->test_f, i)))
        return wrn_fail(WRN_STATUS_FORMAT, "class %d is '%s' in %s/train but '%s' in %s/val", i,
                        wrn_imagefolder_class_name(t->train_f, i), o->data,
                        wrn_imagefolder_class_name(t->test_f, i), o->data);
  }
  if (!jpeg_ready()) return WRN_STATUS_INVALID_ARGUMENT;
  if (o->classes == 0) o->classes = nc;
  if (o->classes != nc)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "the model has %d classes but %s has %d",
                    o->classes, o->data, nc);
  if (o->image_size == 0) o->image_size = 224;
  t->st.train_images = eval ? 0 : wrn_imagefolder_count(t->train_f);
  t->st.test_images = wrn_imagefolder_count(t->test_f);
  return WRN_OK;
}

static wrn_status setup(wrn_trainer *t) {
  wrn_train_options *o = &t->o;
  wrn_train_state *st = &t->st;
  int eval = t->mode == WRN_TRAIN_EVAL;
  wrn_status s;
  if (!eval && (s = run_dir_prepare(t)) != WRN_OK) return s;
  /* The data folder as an absolute path, so a resume from anywhere finds it. */
  char *abs = realpath(o->data, NULL);
  if (abs) {
    size_t al = strlen(abs);
    if (al >= sizeof o->data) {
      free(abs);
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--data: the absolute path of %s is %zu "
                      "characters long, the most is %zu", o->data, al, sizeof o->data - 1);
    }
    memcpy(o->data, abs, al + 1);
    free(abs);
  }
  if (o->dataset == WRN_DATASET_AUTO && wrn_dataset_detect(o->data) == WRN_DATASET_IMAGEFOLDER)
    o->dataset = WRN_DATASET_IMAGEFOLDER;
  if (o->dataset == WRN_DATASET_IMAGEFOLDER) {
    TRAIN_TRY("opening the image folders", folders_open(t, eval));
  } else {
    /* Evaluation reads the training files too (their sizes are checked) but keeps none. */
    wrn_dataset_options dopt = {o->dataset, o->labels, eval ? 1 : (size_t)o->train_limit,
                                (size_t)o->test_limit, o->svhn_extra};
    TRAIN_TRY("reading the data set", wrn_dataset_open(&t->ds, o->data, &dopt));
    if (o->classes == 0) o->classes = t->ds.n_classes;
    if (o->classes != t->ds.n_classes)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "the model has %d classes but %s has %d",
                      o->classes, o->data, t->ds.n_classes);
    st->train_images = eval ? 0 : t->ds.train.n;
    st->test_images = t->ds.test.n;
  }
  if ((s = wrn_replicas_open(&t->reps, o, &t->h)) != WRN_OK) return s;
  if (t->test_f) {
    wrn_image_pipeline tr = wrn_train_pipeline(o, 1), ev = wrn_train_pipeline(o, 0);
    if (!eval)
      TRAIN_TRY("starting the data loader",
                wrn_loader_open_folder(&t->train_l, t->train_f, &tr, o->loader_threads, o->batch,
                                       o->shuffle, 1, o->seed));
    TRAIN_TRY("starting the data loader",
              wrn_loader_open_folder(&t->test_l, t->test_f, &ev, o->loader_threads, o->batch, 0,
                                     0, o->seed));
  } else {
    if (!eval)
      TRAIN_TRY("starting the data loader",
                wrn_loader_open(&t->train_l, &t->ds.train, o->batch, o->shuffle, 1, o->seed));
    TRAIN_TRY("starting the data loader",
              wrn_loader_open(&t->test_l, &t->ds.test, o->batch, 0, 0, o->seed));
  }
  if (eval) {
    wrn_st_file *f;
    TRAIN_TRY("loading the checkpoint", wrn_st_open(&f, o->init));
    s = wrn_replicas_load(&t->reps, f, o->init, 0);
    wrn_st_close(f);
    TRAIN_TRY("loading the checkpoint", s);
    return WRN_OK;
  }
  st->steps_per_epoch = wrn_loader_steps(t->train_l); /* >= 1: the loader refuses fewer */
  if (t->mode == WRN_TRAIN_RESUME) {
    char from[1100];
    wrn_st_file *f;
    int completed = 0;
    TRAIN_TRY("resuming", wrn_train_resume_file(o->out, from, sizeof from));
    TRAIN_TRY("loading the checkpoint to resume", wrn_st_open(&f, from));
    const char *model = wrn_st_meta(f, "--model");
    /* The split over the devices the run had, so that it continues exactly. */
    const char *sp = wrn_st_meta(f, "split");
    if (!model || strcmp(model, o->model))
      s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                   "the run in %s is %s, not --model %s: a resumed run keeps its model (start "
                   "another with --init %s)",
                   o->out, model ? model : "of no known model", o->model, from);
    else s = sp ? wrn_replicas_set_split(&t->reps, sp) : WRN_OK;
    if (s == WRN_OK) s = wrn_replicas_load(&t->reps, f, from, WRN_CHECKPOINT_MOMENTUM);
    if (s == WRN_OK) s = resume_state_read(t, f, from, &completed);
    if (s != WRN_OK) s = wrn_train_context(s, "loading the checkpoint to resume");
    /* The log holds whole lines only (a record cut by a crash was never reported as
     * written); then the record a stop kept in the checkpoint. Rank 0 alone writes. */
    const int writer = wrn_replicas_writer(&t->reps);
    if (s == WRN_OK && writer)
      s = wrn_train_context(wrn_jsonl_open_trim(&t->log, st->log_path, NULL), "opening the log");
    if (s == WRN_OK && writer)
      s = wrn_train_context(log_repair(t, f, from, completed), "repairing the log");
    wrn_st_close(f);
    if (s != WRN_OK) return s;
  } else {
    TRAIN_TRY("initialising parameters", wrn_replicas_init(&t->reps, o->seed));
    snprintf(t->init_src, sizeof t->init_src, "%s", o->init);
    if (o->init[0]) {
      wrn_st_file *f;
      TRAIN_TRY("--init", wrn_st_open(&f, o->init));
      s = wrn_replicas_load(&t->reps, f, o->init, o->init_extra ? WRN_CHECKPOINT_EXTRA : 0);
      wrn_st_close(f);
      TRAIN_TRY("--init", s);
    }
    if (wrn_replicas_writer(&t->reps))
      TRAIN_TRY("opening the log", wrn_jsonl_open_trim(&t->log, st->log_path, NULL));
  }
  TRAIN_TRY("opening the log", wrn_json_new(&t->js));
  state_devices(t);
  return WRN_OK;
}

wrn_status wrn_trainer_open(wrn_trainer **out, const wrn_train_options *o,
                            const wrn_train_hooks *hooks, wrn_train_mode mode) {
  *out = NULL;
  if (!o || !hooks || !hooks->build)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_trainer_open needs options and a build "
                    "hook");
  if (mode != WRN_TRAIN_NEW && mode != WRN_TRAIN_RESUME && mode != WRN_TRAIN_EVAL)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_trainer_open: unknown mode %d", (int)mode);
  wrn_status s = wrn_train_options_check(o);
  if (s != WRN_OK) return s;
  if (mode == WRN_TRAIN_EVAL && !o->init[0])
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "evaluation needs a checkpoint (--init)");
  wrn_trainer *t = calloc(1, sizeof *t);
  if (!t) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  t->o = *o;
  t->h = *hooks;
  t->mode = mode;
  t->st.epoch = 1;
  t->stretch_t0 = -1;
  s = setup(t);
  if (s != WRN_OK) {
    wrn_trainer_free(t);
    return s;
  }
  *out = t;
  return WRN_OK;
}

void wrn_trainer_free(wrn_trainer *t) {
  if (!t) return;
  wrn_loader_free(t->train_l);
  wrn_loader_free(t->test_l);
  wrn_replicas_free(&t->reps);
  wrn_dataset_free(&t->ds);
  wrn_imagefolder_free(t->train_f);
  wrn_imagefolder_free(t->test_f);
  wrn_jsonl_close(t->log);
  wrn_json_free(t->js);
  free(t);
}

wrn_status wrn_trainer_warmup(wrn_trainer *t) {
  double t0 = wrn_seconds();
  TRAIN_TRY("warming up the kernels", wrn_replicas_warmup(&t->reps));
  state_devices(t);
  t->st.warmup_seconds = wrn_seconds() - t0;
  t->warm = 1;
  return WRN_OK;
}

wrn_status wrn_trainer_evaluate(wrn_trainer *t, double *loss, double *acc) {
  double ls = 0;
  int64_t cor = 0, seen = 0;
  TRAIN_TRY("test data", wrn_loader_start_epoch(t->test_l, 0, 0));
  wrn_augment a = wrn_train_augment(&t->o, 0, 0);
  for (;;) {
    wrn_batch b;
    TRAIN_TRY("test data", wrn_loader_next(t->test_l, &b));
    if (b.count == 0) break;
    double l;
    int c;
    TRAIN_TRY("evaluation step", wrn_replicas_eval(&t->reps, &b, &a, &l, &c));
    ls += l;
    cor += c;
    seen += b.count;
    wrn_train_event e = {.kind = WRN_TRAIN_EVENT_EVAL_STEP, .eval_seen = (size_t)seen};
    emit(t, &e);
  }
  *loss = seen ? ls / (double)seen : NAN;
  *acc = seen ? 100.0 * (double)cor / (double)seen : NAN;
  return WRN_OK;
}

/* The end of an epoch: evaluation, the log line, best.safetensors when this is the best test
 * accuracy yet, last.safetensors, then the line appended to the log; a stop between the
 * checkpoint and the log is repaired on resume from the line kept in the checkpoint. */
static wrn_status epoch_end(wrn_trainer *t) {
  wrn_train_state *st = &t->st;
  wrn_train_event e = {.kind = WRN_TRAIN_EVENT_EPOCH, .epoch = st->epoch,
                       .lr = wrn_train_lr(&t->o, st->epoch)};
  e.train_time = train_seconds(t);
  t->stretch_t0 = -1;
  double seen = (double)(st->seen ? st->seen : 1);
  e.train_loss = st->loss_sum / seen;
  e.train_acc = 100.0 * (double)st->correct / seen;
  double te0 = wrn_seconds();
  wrn_status s = wrn_trainer_evaluate(t, &e.test_loss, &e.test_acc);
  if (s != WRN_OK) return s;
  e.test_time = wrn_seconds() - te0;
  if ((s = log_line_build(t, &e)) != WRN_OK) return s;
  if ((s = wrn_train_context(wrn_replicas_epoch_end(&t->reps, t->js), "balancing the devices")))
    return s;
  state_devices(t);
  st->step = 0;
  st->loss_sum = 0, st->correct = 0, st->seen = 0, st->train_time = 0;
  t->time_done = 0;
  st->last_acc = e.test_acc;
  e.best = e.test_acc > st->best_acc;
  if (e.best) st->best_acc = e.test_acc;
  char *line = strdup(wrn_json_text(t->js));
  if (!line) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  /* best first: a stop between the two leaves best ahead of last (a resume redoes the
   * epoch and writes the same best again), never behind what last records. */
  s = e.best ? save_checkpoint(t, st->best_path, e.epoch, line) : WRN_OK;
  if (s == WRN_OK) s = save_checkpoint(t, st->last_path, e.epoch, line);
  if (s == WRN_OK && t->log)
    s = wrn_train_context(wrn_jsonl_append(t->log, t->js, NULL), "writing the log");
  if (s == WRN_OK) {
    st->epoch++;
    e.log_line = line;
    emit(t, &e);
  }
  free(line);
  return s;
}

wrn_status wrn_trainer_step(wrn_trainer *t, int *done) {
  wrn_train_state *st = &t->st;
  if (done) *done = 0;
  if (t->mode == WRN_TRAIN_EVAL)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "a trainer opened for evaluation cannot train");
  if (st->epoch > t->o.epochs) {
    if (done) *done = 1;
    return WRN_OK;
  }
  if (!t->warm) {
    wrn_status s = wrn_trainer_warmup(t);
    if (s != WRN_OK) return s;
  }
  if (st->step < st->steps_per_epoch) {
    if (t->stretch_t0 < 0) {
      TRAIN_TRY("training data", wrn_loader_start_epoch(t->train_l, (uint64_t)st->epoch, st->step));
      t->stretch_t0 = wrn_seconds();
    }
    wrn_batch b;
    TRAIN_TRY("training data", wrn_loader_next(t->train_l, &b));
    if (b.count == 0)
      return wrn_fail(WRN_STATUS_FORMAT, "training data: epoch %d ended after %" PRId64
                      " of %" PRId64 " steps", st->epoch, st->step, st->steps_per_epoch);
    uint64_t gstep = (uint64_t)(st->epoch - 1) * (uint64_t)st->steps_per_epoch + (uint64_t)st->step;
    wrn_augment a = wrn_train_augment(&t->o, 1, gstep);
    wrn_sgd sgd = wrn_train_sgd(&t->o, st->epoch, st->step);
    double l;
    int c;
    TRAIN_TRY("training step",
              wrn_replicas_train(&t->reps, &b, &a, &sgd, t->o.seed, gstep, &l, &c));
    if (!isfinite(l))
      return wrn_fail(WRN_STATUS_FORMAT, "the loss became %g at epoch %d step %" PRId64
                      "; lower --lr (the last checkpoint %s is intact)",
                      l, st->epoch, st->step, st->last_path);
    st->loss_sum += l;
    st->correct += c;
    st->seen += b.count;
    st->step++;
    st->train_time = train_seconds(t);
    wrn_train_event e = {.kind = WRN_TRAIN_EVENT_STEP};
    emit(t, &e);
  }
  if (st->step >= st->steps_per_epoch) {
    wrn_status s = epoch_end(t);
    if (s != WRN_OK) return s;
  }
  if (done) *done = st->epoch > t->o.epochs;
  return WRN_OK;
}

wrn_status wrn_trainer_checkpoint(wrn_trainer *t) {
  if (t->mode == WRN_TRAIN_EVAL)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "a trainer opened for evaluation has no run");
  /* The stretch so far counts as training time; the next one starts now. */
  if (t->stretch_t0 >= 0) {
    double now = wrn_seconds();
    t->time_done += now - t->stretch_t0;
    t->stretch_t0 = now;
  }
  t->st.train_time = t->time_done;
  return save_checkpoint(t, t->st.last_path, t->st.epoch - 1, NULL);
}

wrn_status wrn_trainer_run(wrn_trainer *t) {
  for (int done = 0; !done;) {
    int stop = t->h.stop && *t->h.stop;
    /* Every rank stops at the same step. */
    TRAIN_TRY("training step", wrn_replicas_agree_stop(&t->reps, &stop));
    if (stop) {
      wrn_status s = wrn_trainer_checkpoint(t);
      if (s != WRN_OK) return s;
      return wrn_fail(WRN_STATUS_INTERRUPTED, "stopped at epoch %d step %" PRId64 "; %s written",
                      t->st.epoch, t->st.step, t->st.last_path);
    }
    wrn_status s = wrn_trainer_step(t, &done);
    if (s != WRN_OK) return s;
  }
  return WRN_OK;
}

const wrn_train_state *wrn_trainer_state(const wrn_trainer *t) { return &t->st; }
const wrn_train_options *wrn_trainer_options(const wrn_trainer *t) { return &t->o; }
wrn_net *wrn_trainer_net(const wrn_trainer *t) { return wrn_replicas_primary(&t->reps); }
