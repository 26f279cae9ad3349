/* The trainer as a library (wrn_train.h): the recipe's schedule against the numbers in
 * docs/wrn-recipe.md, strict option parsing, checkpoint round trips, and runs on the bundled
 * CIFAR-10 sample: events, the log, a stop through the caller's flag, log repair and exact
 * resume (bit-identical weights and epoch statistics), and evaluation of a checkpoint. */
#include "harness.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[] = "/tmp/wrn-train-XXXXXX";

static void expect_error(wrn_status s, wrn_status want, const char *needle) {
  assert_int_equal(s, want);
  if (!strstr(wrn_last_error(), needle))
    fail_msg("expected '%s' in the message: %s", needle, wrn_last_error());
}

static void test_schedule(void **state) {
  (void)state;
  wrn_train_options o;
  wrn_train_options_default(&o);
  /* The recipe: epochs 1-59 at 0.1, 60-119 at 0.02, 120-159 at 0.004, 160-200 at 0.0008. */
  const struct {
    int epoch;
    double lr;
  } want[] = {{1, 0.1},     {59, 0.1},     {60, 0.02},     {119, 0.02},  {120, 0.004},
              {159, 0.004}, {160, 0.0008}, {200, 0.0008}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    double lr = wrn_train_lr(&o, want[i].epoch);
    if (fabs(lr - want[i].lr) > 1e-15 * want[i].lr)
      fail_msg("epoch %d: lr %.17g, the recipe says %g", want[i].epoch, lr, want[i].lr);
  }
  /* Momentum: the buffer starts from the gradient on the run's first step and, with the reset
   * on, on the first step of each drop epoch only. */
  const struct {
    int epoch;
    int64_t step;
    int first;
  } steps[] = {{1, 0, 1}, {1, 1, 0}, {2, 0, 0}, {60, 0, 1}, {60, 1, 0}, {61, 0, 0}, {120, 0, 1},
               {160, 0, 1}, {160, 389, 0}};
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    wrn_sgd s = wrn_train_sgd(&o, steps[i].epoch, steps[i].step);
    if (s.first_step != steps[i].first)
      fail_msg("epoch %d step %lld: first_step %d, want %d", steps[i].epoch,
               (long long)steps[i].step, s.first_step, steps[i].first);
    assert_true(s.lr == wrn_train_lr(&o, steps[i].epoch));
    assert_true(s.momentum == 0.9 && s.weight_decay == 5e-4 && s.nesterov == 1);
  }
  o.momentum_reset = 0;
  assert_int_equal(wrn_train_sgd(&o, 60, 0).first_step, 0);
  assert_int_equal(wrn_train_sgd(&o, 1, 0).first_step, 1);
  /* The input pipeline: augmentation in training only, keyed by the global step. */
  wrn_augment a = wrn_train_augment(&o, 1, 1234), e = wrn_train_augment(&o, 0, 0);
  assert_int_equal(a.augment, 1);
  assert_int_equal(e.augment, 0);
  assert_int_equal(a.pad, 4);
  assert_true(a.step == 1234);
  assert_true(a.mean[0] == 125.3f && a.std[2] == 66.7f);
  o.augment = 0;
  assert_int_equal(wrn_train_augment(&o, 1, 5).augment, 0);
  /* SVHN's pixels / 255, and the recipes of other data sets and models over the defaults. */
  o.meanstd = 0;
  a = wrn_train_augment(&o, 0, 0);
  assert_true(a.mean[1] == 0.0f && a.std[1] == 255.0f);
  wrn_train_options_default(&o);
  wrn_train_options_recipe(&o, WRN_DATASET_SVHN, "wrn-16-8");
  assert_true(o.lr == 0.01 && o.lr_decay == 0.1 && o.epochs == 160 && o.dropout == 0.4);
  assert_true(o.n_lr_drops == 2 && o.lr_drops[0] == 80 && o.lr_drops[1] == 120);
  assert_true(o.augment == 0 && o.meanstd == 0 && o.svhn_extra == 1 && o.nesterov == 1);
  assert_true(fabs(wrn_train_lr(&o, 120) - 1e-4) < 1e-18);
  wrn_train_options_default(&o);
  wrn_train_options_recipe(&o, WRN_DATASET_AUTO, "wrn-50-2");
  assert_true(o.lr == 0.1 && o.lr_decay == 0.1 && o.epochs == 90 && o.weight_decay == 1e-4);
  assert_true(o.batch == 256 && o.nesterov == 0 && o.lr_drops[0] == 30 && o.lr_drops[1] == 60);
  wrn_train_options_default(&o);
  wrn_train_options_recipe(&o, WRN_DATASET_CIFAR10, "wrn-28-10");
  wrn_train_options keep;
  wrn_train_options_default(&keep);
  assert_memory_equal(&o, &keep, sizeof o); /* the CIFAR recipe is the default */
  /* Image folders: torchvision's mean/std, the crop done by the loader. */
  o.dataset = WRN_DATASET_IMAGEFOLDER;
  a = wrn_train_augment(&o, 1, 3);
  assert_true(a.augment == 0 && a.mean[0] == 123.675f && a.std[2] == 57.375f);
  wrn_image_pipeline p = wrn_train_pipeline(&o, 1), q = wrn_train_pipeline(&o, 0);
  assert_true(p.train == 1 && p.size == 224 && q.train == 0 && q.resize == 256);
}

/* Cosine annealing against PyTorch's recursive form of CosineAnnealingLR (eta_min 0):
 * lr_t = lr_{t-1} (1 + cos(pi t / T)) / (1 + cos(pi (t - 1) / T)), a different computation from
 * the closed form the trainer uses; the linear warm-up against its values; no momentum resets
 * without the step schedule; cutout only on training batches. */
static void test_schedule_cosine_warmup(void **state) {
  (void)state;
  wrn_train_options o;
  wrn_train_options_default(&o);
  WT_OK(wrn_train_option_set(&o, "--lr-schedule", "cosine"));
  o.epochs = 200;
  const double pi = 3.14159265358979323846;
  for (int w = 0; w <= 5; w += 5) {
    o.warmup_epochs = w;
    int T = o.epochs - w;
    double ref = o.lr; /* epoch w + 1: t = 0 */
    for (int t = 0; t < T; t++) {
      if (t > 0) ref *= (1 + cos(pi * t / T)) / (1 + cos(pi * (t - 1) / T));
      double lr = wrn_train_lr(&o, w + 1 + t);
      if (fabs(lr - ref) > 1e-12 * o.lr)
        fail_msg("cosine, warm-up %d, epoch %d: lr %.17g, recursive form %.17g", w, w + 1 + t,
                 lr, ref);
    }
    /* Half way the rate is half; the last epoch's is small but above 0. */
    if (T % 2 == 0) assert_true(fabs(wrn_train_lr(&o, w + 1 + T / 2) - o.lr / 2) < 1e-12);
    assert_true(wrn_train_lr(&o, o.epochs) > 0 && wrn_train_lr(&o, o.epochs) < 1e-4 * o.lr);
    for (int e = 1; e <= o.epochs; e++)
      assert_int_equal(wrn_train_sgd(&o, e, 0).first_step, e == 1);
  }
  /* Warm-up W = 5: epochs 1..5 at lr e / 6, then the schedule (here the recipe's steps). */
  wrn_train_options_default(&o);
  WT_OK(wrn_train_option_set(&o, "--warmup-epochs", "5"));
  for (int e = 1; e <= 5; e++) assert_true(fabs(wrn_train_lr(&o, e) - 0.1 * e / 6) < 1e-15);
  assert_true(wrn_train_lr(&o, 6) == 0.1 && wrn_train_lr(&o, 60) == 0.1 * 0.2);
  /* The recipe is unchanged by default. */
  wrn_train_options_default(&o);
  assert_int_equal(o.lr_schedule, WRN_LR_STEP);
  assert_int_equal(o.warmup_epochs, 0);
  assert_true(o.label_smoothing == 0);
  assert_int_equal(o.cutout, 0);
  assert_int_equal(wrn_train_augment(&o, 1, 3).cutout, 0);
  o.cutout = 16;
  assert_int_equal(wrn_train_augment(&o, 1, 3).cutout, 16);
  assert_int_equal(wrn_train_augment(&o, 0, 0).cutout, 0);
  o.augment = 0; /* cutout does not need flip + crop */
  assert_int_equal(wrn_train_augment(&o, 1, 3).cutout, 16);
  /* Refused values, and a warm-up as long as the run. */
  expect_error(wrn_train_option_set(&o, "--lr-schedule", "linear"), WRN_STATUS_INVALID_ARGUMENT,
               "--lr-schedule");
  expect_error(wrn_train_option_set(&o, "--label-smoothing", "1"), WRN_STATUS_INVALID_ARGUMENT,
               "--label-smoothing");
  expect_error(wrn_train_option_set(&o, "--cutout", "-2"), WRN_STATUS_INVALID_ARGUMENT,
               "--cutout");
  WT_OK(wrn_train_option_set(&o, "--data", "somewhere"));
  WT_OK(wrn_train_option_set(&o, "--warmup-epochs", "200"));
  expect_error(wrn_train_options_check(&o), WRN_STATUS_INVALID_ARGUMENT, "--warmup-epochs");
}

static void test_options(void **state) {
  (void)state;
  wrn_train_options o, keep;
  wrn_train_options_default(&o);
  WT_OK(wrn_train_option_set(&o, "--lr", "0.05"));
  assert_true(o.lr == 0.05);
  WT_OK(wrn_train_option_set(&o, "--epoch-step", "10,20"));
  assert_int_equal(o.n_lr_drops, 2);
  assert_int_equal(o.lr_drops[1], 20);
  WT_OK(wrn_train_option_set(&o, "--augment", "off"));
  assert_int_equal(o.augment, 0);
  WT_OK(wrn_train_option_set(&o, "--dataset", "cifar100"));
  assert_int_equal(o.dataset, WRN_DATASET_CIFAR100);
  WT_OK(wrn_train_option_set(&o, "--seed", "18446744073709551615"));
  assert_true(o.seed == UINT64_MAX);
  keep = o;
  /* Refused, naming the option, and nothing changes. */
  const struct {
    const char *name, *value;
  } bad[] = {{"--lr", "-1"},          {"--lr", "0.1x"},         {"--lr", "nan"},
             {"--batch", "0"},        {"--epochs", "1e3"},       {"--epoch-step", "10,"},
             {"--epoch-step", "x"},   {"--augment", "maybe"},    {"--seed", "-3"},
             {"--dataset", "mnist"},  {"--labels", "medium"},    {"--momentum", "1"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    expect_error(wrn_train_option_set(&o, bad[i].name, bad[i].value),
                 WRN_STATUS_INVALID_ARGUMENT, bad[i].name);
    assert_memory_equal(&o, &keep, sizeof o);
  }
  assert_int_equal(wrn_train_option_known("--wd"), 1);
  assert_int_equal(wrn_train_option_known("--frobnicate"), 0);
  expect_error(wrn_train_option_set(&o, "--frobnicate", "1"), WRN_STATUS_INVALID_ARGUMENT,
               "--frobnicate");
  /* A value longer than its field is refused, never cut. */
  char longpath[1500];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  expect_error(wrn_train_option_set(&o, "--data", longpath), WRN_STATUS_INVALID_ARGUMENT,
               "--data");
  assert_memory_equal(&o, &keep, sizeof o);
  /* Plain decimal only: no hexadecimal, infinities, NaN, spaces or signs where they do not
   * belong; o unchanged. */
  static const char *const strict_bad[][2] = {
      {"--lr", "0x10"}, {"--lr", "inf"}, {"--lr", "nan"}, {"--lr", " 0.1"}, {"--lr", "0.1 "},
      {"--lr", "+0.1"}, {"--lr", ""}, {"--epochs", "0x10"}, {"--epochs", " 3"}, {"--epochs", "+3"},
      {"--epochs", "3e0"}, {"--seed", "-0"}, {"--seed", "18446744073709551616"},
      {"--epoch-step", "1, 2"}, {"--epoch-step", "0x2"}, {"--epoch-step", ","},
      {"--epoch-step", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33"}};
  for (size_t i = 0; i < sizeof strict_bad / sizeof strict_bad[0]; i++) {
    expect_error(wrn_train_option_set(&o, strict_bad[i][0], strict_bad[i][1]), WRN_STATUS_INVALID_ARGUMENT,
                 strict_bad[i][0]);
    assert_memory_equal(&o, &keep, sizeof o);
  }
  WT_OK(wrn_train_option_set(&o, "--wd", ".5e-3"));
  assert_true(o.weight_decay == 0.5e-3);
  WT_OK(wrn_train_option_set(&o, "--lr", "5."));
  assert_true(o.lr == 5.0);
  o = keep;
  int64_t l;
  double x;
  assert_int_equal(wrn_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &l), 0);
  assert_true(l == INT64_MIN);
  assert_int_equal(wrn_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &l), -1);
  assert_int_equal(wrn_parse_i64("-", -5, 5, &l), -1);
  assert_int_equal(wrn_parse_real("1e-320", 0, 1, &x), 0); /* subnormal, still a number */
  assert_int_equal(wrn_parse_real("1e400", -1e308, 1e308, &x), -1);
  assert_int_equal(wrn_parse_real("-.5", -1, 1, &x), 0);
  assert_true(x == -0.5);
  assert_int_equal(wrn_parse_real("1e", 0, 10, &x), -1);
  /* Model names: wrn-D-K exactly. */
  static const char *const bad_models[] = {"wrn-99999999999-1", "wrn- 10-1", "wrn-10- 1",
                                           "wrn-+10-1", "wrn-10-1 ", "wrn-10", "wrn--10-1",
                                           "wrn-10-1-", "Wrn-10-1", "wrn-1e1-1", ""};
  for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++) {
    wrn_model_spec ms = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
    expect_error(wrn_model_parse(bad_models[i], &ms), WRN_STATUS_INVALID_ARGUMENT, "");
  }
  wrn_model_spec ms = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
  WT_OK(wrn_model_parse("WRN-28-10", &ms));
  assert_int_equal(ms.depth, 28);
  assert_int_equal(ms.width, 10);
  /* What no single option can say. */
  expect_error(wrn_train_options_check(&o), WRN_STATUS_INVALID_ARGUMENT, "--data");
  WT_OK(wrn_train_option_set(&o, "--data", "somewhere"));
  WT_OK(wrn_train_option_set(&o, "--epoch-step", "20,10"));
  expect_error(wrn_train_options_check(&o), WRN_STATUS_INVALID_ARGUMENT, "--epoch-step");
  WT_OK(wrn_train_option_set(&o, "--epoch-step", ""));
  assert_int_equal(o.n_lr_drops, 0);
  WT_OK(wrn_train_options_check(&o));
}

/* A WRN-10-1 on 3x8x8 inputs (4 classes) on the float test device. */
static wrn_net *tiny_net(int width, uint64_t seed) {
  wrn_model_spec s = {10, width, 4, 0, 3, 8, 8, WRN_ARCH_WRN};
  wrn_net *net;
  WT_OK(wrn_net_create(&net, t_ctx32(), 4, NULL));
  WT_OK(wrn_model_build(net, &s));
  WT_OK(wrn_net_finalize(net));
  WT_OK(wrn_net_init_params(net, seed));
  return net;
}

static void expect_same_flat(wrn_net *a, wrn_net *b, int which) {
  size_t n = wrn_net_flat_count(a, which);
  assert_int_equal(n, wrn_net_flat_count(b, which));
  double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  WT_OK(wrn_net_read(a, which, x));
  WT_OK(wrn_net_read(b, which, y));
  for (size_t i = 0; i < n; i++)
    if (memcmp(&x[i], &y[i], sizeof x[i]))
      fail_msg("flat array %d differs at %zu: %.9g vs %.9g", which, i, x[i], y[i]);
  free(x), free(y);
}

static void test_checkpoint_roundtrip(void **state) {
  (void)state;
  wrn_net *a = tiny_net(1, 5), *b = tiny_net(1, 6), *other = tiny_net(2, 5);
  /* One step, so that momentum and the running statistics hold something. */
  size_t nin = 4 * 3 * 8 * 8;
  double *x = malloc(nin * sizeof *x);
  t_rand(x, nin, -1, 1, 3);
  int32_t labels[4] = {0, 1, 2, 3};
  WT_OK(wrn_net_set_input_real(a, x, labels, 4));
  wrn_sgd sgd = {0.1, 0.9, 5e-4, 1, 1};
  double loss;
  int correct;
  WT_OK(wrn_train_step(a, 4, &sgd, 1, 0, &loss, &correct));
  assert_true(isfinite(loss) && correct >= 0 && correct <= 4);
  char path[256];
  snprintf(path, sizeof path, "%s/roundtrip.safetensors", tmp);
  wrn_checkpoint_meta meta[] = {{"--model", "tiny"}, {"note", "round trip"}};
  WT_OK(wrn_checkpoint_save(a, path, meta, 2, 1));
  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, path));
  assert_string_equal(wrn_st_meta(f, "note"), "round trip");
  assert_non_null(wrn_st_find(f, "momentum.fc.weight"));
  /* Without momentum only the weights and statistics come over. */
  double *mom_before = malloc(wrn_net_flat_count(b, 2) * sizeof *mom_before);
  WT_OK(wrn_net_read(b, 2, mom_before));
  WT_OK(wrn_checkpoint_load(b, f, path, 0));
  expect_same_flat(a, b, 0);
  expect_same_flat(a, b, 3);
  double *mom_after = malloc(wrn_net_flat_count(b, 2) * sizeof *mom_after);
  WT_OK(wrn_net_read(b, 2, mom_after));
  assert_memory_equal(mom_before, mom_after, wrn_net_flat_count(b, 2) * sizeof *mom_after);
  WT_OK(wrn_checkpoint_load(b, f, path, 1));
  expect_same_flat(a, b, 2);
  /* Another model: refused with the tensor named, and the network left as it was. */
  double *p_before = malloc(wrn_net_flat_count(other, 0) * sizeof *p_before),
         *p_after = malloc(wrn_net_flat_count(other, 0) * sizeof *p_after);
  WT_OK(wrn_net_read(other, 0, p_before));
  expect_error(wrn_checkpoint_load(other, f, path, 1), WRN_STATUS_FORMAT, "another model");
  WT_OK(wrn_net_read(other, 0, p_after));
  assert_memory_equal(p_before, p_after, wrn_net_flat_count(other, 0) * sizeof *p_after);
  /* Options come back only from a checkpoint that has them, and bad ones are refused. */
  wrn_train_options o;
  wrn_train_options_default(&o);
  WT_OK(wrn_train_options_load(&o, path, 1));
  assert_string_equal(o.model, "tiny");
  wrn_checkpoint_meta bad[] = {{"--model", "tiny"}, {"--lr", "fast"}};
  WT_OK(wrn_checkpoint_save(a, path, bad, 2, 0));
  expect_error(wrn_train_options_load(&o, path, 0), WRN_STATUS_FORMAT, "--lr=fast");
  WT_OK(wrn_checkpoint_save(a, path, bad + 1, 0, 0));
  expect_error(wrn_train_options_load(&o, path, 1), WRN_STATUS_FORMAT, "not a wrn checkpoint");
  wrn_st_close(f);
  free(x), free(mom_before), free(mom_after), free(p_before), free(p_after);
  wrn_net_free(a), wrn_net_free(b), wrn_net_free(other);
}

/* ---------------------------------------------------------------- runs on the sample */

typedef struct watch {
  int steps, epochs, eval_batches;
  int stop_after; /* sets stop once this many steps ran; 0 never */
  volatile sig_atomic_t stop;
  double last_test_loss, last_test_acc, first_train_loss, last_train_loss;
  char last_line[8192];
} watch;

static void on_event(const wrn_train_event *e, void *user) {
  watch *w = user;
  if (e->kind == WRN_TRAIN_EVENT_EVAL_STEP) {
    assert_true(e->eval_seen >= 1 && e->eval_seen <= e->state->test_images);
    w->eval_batches++;
    return;
  }
  if (e->kind == WRN_TRAIN_EVENT_STEP) {
    w->steps++;
    assert_true(e->state->step >= 1 && e->state->step <= e->state->steps_per_epoch);
    if (w->stop_after && w->steps >= w->stop_after) w->stop = 1;
    return;
  }
  w->epochs++;
  assert_true(isfinite(e->train_loss) && isfinite(e->test_loss));
  assert_true(e->test_acc >= 0 && e->test_acc <= 100);
  assert_int_equal(e->state->epoch, e->epoch + 1);
  assert_int_equal(e->state->step, 0);
  if (w->epochs == 1) w->first_train_loss = e->train_loss;
  w->last_train_loss = e->train_loss;
  w->last_test_loss = e->test_loss;
  w->last_test_acc = e->test_acc;
  snprintf(w->last_line, sizeof w->last_line, "%s", e->log_line);
}

static wrn_status build(wrn_net *net, const wrn_train_options *o, void *user) {
  (void)user;
  wrn_model_spec s = {0, 0, o->classes, o->dropout, 3, 32, 32, WRN_ARCH_WRN};
  wrn_status st = wrn_model_parse(o->model, &s);
  return st != WRN_OK ? st : wrn_model_build(net, &s);
}

static void sample_options(wrn_train_options *o, const char *run, int epochs) {
  const char *src = getenv("WRN_SOURCE_DIR"), *dev = getenv("WRN_TEST_DEVICE");
  char v[2048];
  wrn_train_options_default(o);
  snprintf(v, sizeof v, "%s/data/cifar10-sample", src ? src : WRN_SOURCE_DIR);
  WT_OK(wrn_train_option_set(o, "--data", v));
  snprintf(v, sizeof v, "%s/%s", tmp, run);
  WT_OK(wrn_train_option_set(o, "--out", v));
  WT_OK(wrn_train_option_set(o, "--device", dev ? dev : "cpu"));
  /* 4 steps of 32 per epoch; dropout so that the masks' keys are exercised too. */
  WT_OK(wrn_train_option_set(o, "--model", "wrn-10-1"));
  WT_OK(wrn_train_option_set(o, "--train-limit", "128"));
  WT_OK(wrn_train_option_set(o, "--test-limit", "40"));
  WT_OK(wrn_train_option_set(o, "--batch", "32"));
  WT_OK(wrn_train_option_set(o, "--dropout", "0.3"));
  WT_OK(wrn_train_option_set(o, "--epoch-step", "2"));
  o->epochs = epochs;
}

/* The options wrn eval gives the trainer for checkpoint ckpt: the sample data, no run folder,
 * conv_algo as given (NULL: unset), then the checkpoint's model and convolution choices. */
static void eval_options(wrn_train_options *e, const char *ckpt, const char *conv_algo) {
  sample_options(e, "unused", 1);
  e->out[0] = '\0';
  if (conv_algo) WT_OK(wrn_train_option_set(e, "--conv-algo", conv_algo));
  WT_OK(wrn_train_option_set(e, "--init", ckpt));
  WT_OK(wrn_train_options_load(e, ckpt, 1));
}

static wrn_status run_once(const wrn_train_options *o, wrn_train_mode mode, watch *w) {
  wrn_train_hooks h = {build, on_event, w, &w->stop};
  wrn_trainer *t;
  wrn_status s = wrn_trainer_open(&t, o, &h, mode);
  if (s != WRN_OK) return s;
  s = wrn_trainer_run(t);
  wrn_trainer_free(t);
  return s;
}

static int log_lines(const char *run, int *epochs) {
  char p[512], line[65536];
  snprintf(p, sizeof p, "%s/%s/log.jsonl", tmp, run);
  FILE *f = fopen(p, "r");
  if (!f) return -1;
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *e = strstr(line, "\"epoch\":");
    assert_non_null(e);
    if (n < 8) epochs[n] = atoi(e + 8);
    n++;
  }
  fclose(f);
  return n;
}

static void same_weights(const char *run_a, const char *run_b) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/%s/last.safetensors", tmp, run_a);
  snprintf(b, sizeof b, "%s/%s/last.safetensors", tmp, run_b);
  wt_same_tensors(a, b);
}

/* The value of "key": in a log line, as text. */
static void json_field(const char *line, const char *key, char *out, size_t n) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(line, k);
  assert_non_null(p);
  p += strlen(k);
  size_t len = strcspn(p, ",}");
  snprintf(out, n, "%.*s", (int)len, p);
}

static void test_run_stop_resume(void **state) {
  (void)state;
  wrn_train_options o;
  /* The uninterrupted run: 2 epochs of 4 steps. */
  watch full = {0};
  sample_options(&o, "full", 2);
  WT_OK(run_once(&o, WRN_TRAIN_NEW, &full));
  assert_int_equal(full.steps, 8);
  assert_int_equal(full.epochs, 2);
  assert_int_equal(full.eval_batches, 4); /* 40 test images in batches of 32, twice */
  int ep[8];
  assert_int_equal(log_lines("full", ep), 2);
  assert_int_equal(ep[0], 1);
  assert_int_equal(ep[1], 2);
  print_message("full run: train loss %.4f -> %.4f, test accuracy %.2f%%\n",
                full.first_train_loss, full.last_train_loss, full.last_test_acc);
  /* The same folder again as a new run is refused and left alone. */
  watch w = {0};
  expect_error(run_once(&o, WRN_TRAIN_NEW, &w), WRN_STATUS_INVALID_ARGUMENT, "--resume");
  assert_int_equal(log_lines("full", ep), 2);

  /* One epoch, then a stop between its checkpoint and its log line (the line is lost). */
  watch part = {0};
  sample_options(&o, "part", 1);
  WT_OK(run_once(&o, WRN_TRAIN_NEW, &part));
  char logp[512];
  snprintf(logp, sizeof logp, "%s/part/log.jsonl", tmp);
  assert_int_equal(truncate(logp, 0), 0);
  /* Resume for a second epoch from the stored options; the caller's flag stops it after two
   * steps, with a checkpoint there. */
  char last[512];
  snprintf(last, sizeof last, "%s/part/last.safetensors", tmp);
  wrn_train_options r;
  wrn_train_options_default(&r);
  WT_OK(wrn_train_options_load(&r, last, 0));
  assert_string_equal(r.model, "wrn-10-1");
  assert_true(r.dropout == 0.3);
  assert_int_equal(r.batch, 32);
  r.epochs = 2;
  snprintf(r.out, sizeof r.out, "%s/part", tmp);
  snprintf(r.device, sizeof r.device, "%s", o.device);
  watch stop = {0};
  stop.stop_after = 2;
  expect_error(run_once(&r, WRN_TRAIN_RESUME, &stop), WRN_STATUS_INTERRUPTED, "last.safetensors");
  assert_int_equal(stop.steps, 2);
  assert_int_equal(stop.epochs, 0);
  assert_int_equal(log_lines("part", ep), 1); /* repaired from the checkpoint */
  assert_int_equal(ep[0], 1);
  /* And on to the end. */
  wrn_train_options_default(&r);
  WT_OK(wrn_train_options_load(&r, last, 0));
  snprintf(r.out, sizeof r.out, "%s/part", tmp);
  snprintf(r.device, sizeof r.device, "%s", o.device);
  assert_int_equal(r.epochs, 2);
  watch rest = {0};
  wrn_train_hooks h = {build, on_event, &rest, &rest.stop};
  wrn_trainer *t;
  WT_OK(wrn_trainer_open(&t, &r, &h, WRN_TRAIN_RESUME));
  assert_int_equal(wrn_trainer_state(t)->epoch, 2);
  assert_int_equal(wrn_trainer_state(t)->step, 2);
  WT_OK(wrn_trainer_run(t));
  int done = 0;
  WT_OK(wrn_trainer_step(t, &done)); /* past the end: nothing more */
  assert_int_equal(done, 1);
  wrn_trainer_free(t);
  assert_int_equal(rest.steps, 2);
  assert_int_equal(rest.epochs, 1);
  assert_int_equal(log_lines("part", ep), 2);
  assert_int_equal(ep[1], 2);
  /* Bit-identical weights, and the same epoch statistics across the stop (the epoch's loss
   * and accuracy counters are carried in the checkpoint). */
  same_weights("full", "part");
  const char *keys[] = {"train_loss", "train_acc", "test_loss", "test_acc", "lr"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char a[64], b[64];
    json_field(full.last_line, keys[i], a, sizeof a);
    json_field(rest.last_line, keys[i], b, sizeof b);
    if (strcmp(a, b)) fail_msg("epoch 2 %s: %s uninterrupted, %s resumed", keys[i], a, b);
  }

  /* Evaluating the last checkpoint gives what the run measured after its last epoch. */
  wrn_train_options e;
  snprintf(last, sizeof last, "%s/full/last.safetensors", tmp);
  eval_options(&e, last, NULL);
  wrn_train_hooks eh = {build, NULL, NULL, NULL};
  WT_OK(wrn_trainer_open(&t, &e, &eh, WRN_TRAIN_EVAL));
  double loss, acc;
  WT_OK(wrn_trainer_evaluate(t, &loss, &acc));
  assert_true(loss == full.last_test_loss);
  assert_true(acc == full.last_test_acc);
  expect_error(wrn_trainer_step(t, NULL), WRN_STATUS_INVALID_ARGUMENT, "evaluation");
  wrn_trainer_free(t);
  struct stat st;
  char unused[512];
  snprintf(unused, sizeof unused, "%s/unused", tmp);
  assert_int_not_equal(stat(unused, &st), 0); /* evaluation makes no run folder */
}

/* Cosine with warm-up, label smoothing and cutout: stored in the checkpoint and the log, and a
 * run stopped after one epoch and resumed from its stored options ends with the same bits as
 * the uninterrupted one. */
static void test_regularisers_resume(void **state) {
  (void)state;
  static const char *const flags[][2] = {{"--lr-schedule", "cosine"}, {"--warmup-epochs", "1"},
                                         {"--label-smoothing", "0.1"}, {"--cutout", "8"}};
  wrn_train_options o;
  watch full = {0};
  sample_options(&o, "reg-full", 3);
  for (int i = 0; i < 4; i++) WT_OK(wrn_train_option_set(&o, flags[i][0], flags[i][1]));
  WT_OK(run_once(&o, WRN_TRAIN_NEW, &full));
  assert_int_equal(full.epochs, 3);
  char v[64];
  json_field(full.last_line, "lr_schedule", v, sizeof v);
  assert_string_equal(v, "\"cosine\"");
  json_field(full.last_line, "cutout", v, sizeof v);
  assert_string_equal(v, "8");
  json_field(full.last_line, "label_smoothing", v, sizeof v);
  assert_true(strtod(v, NULL) == 0.1);
  watch part = {0};
  sample_options(&o, "reg-part", 1);
  for (int i = 0; i < 4; i++) WT_OK(wrn_train_option_set(&o, flags[i][0], flags[i][1]));
  o.epochs = 3;
  part.stop_after = 4; /* one epoch of 4 steps, then a stop */
  expect_error(run_once(&o, WRN_TRAIN_NEW, &part), WRN_STATUS_INTERRUPTED, "last.safetensors");
  char last[512];
  snprintf(last, sizeof last, "%s/reg-part/last.safetensors", tmp);
  wrn_train_options r;
  wrn_train_options_default(&r);
  WT_OK(wrn_train_options_load(&r, last, 0));
  assert_int_equal(r.lr_schedule, WRN_LR_COSINE);
  assert_int_equal(r.warmup_epochs, 1);
  assert_true(r.label_smoothing == 0.1);
  assert_int_equal(r.cutout, 8);
  snprintf(r.out, sizeof r.out, "%s/reg-part", tmp);
  snprintf(r.device, sizeof r.device, "%s", o.device);
  watch rest = {0};
  WT_OK(run_once(&r, WRN_TRAIN_RESUME, &rest));
  assert_int_equal(rest.epochs, 2);
  same_weights("reg-full", "reg-part");
  /* Smoothing and cutout change the training: the recipe's run of the same length differs. */
  watch plain = {0};
  sample_options(&o, "reg-plain", 3);
  WT_OK(run_once(&o, WRN_TRAIN_NEW, &plain));
  assert_true(plain.last_train_loss != full.last_train_loss);
}

/* A checkpoint records the convolution choices the run computed with, and a resume uses
 * them rather than asking the tuner again (which is forced to another algorithm here). */
static void test_conv_choices_replayed(void **state) {
  (void)state;
  wrn_train_options o;
  sample_options(&o, "algos", 1);
  WT_OK(wrn_train_option_set(&o, "--conv-algo", "winograd2"));
  watch w = {0};
  WT_OK(run_once(&o, WRN_TRAIN_NEW, &w));
  char last[512];
  snprintf(last, sizeof last, "%s/algos/last.safetensors", tmp);
  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, last));
  const char *stored = wrn_st_meta(f, "conv_algos");
  assert_non_null(stored);
  char *copy = strdup(stored);
  wrn_st_close(f);
  assert_non_null(strstr(copy, "group0.block0.conv1@forward=winograd2"));
  assert_non_null(strstr(copy, "conv0@forward=")); /* every conv layer is listed */
  wrn_train_options r;
  wrn_train_options_default(&r);
  WT_OK(wrn_train_options_load(&r, last, 0));
  assert_string_equal(r.conv_algo, copy);
  r.epochs = 2;
  snprintf(r.out, sizeof r.out, "%s/algos", tmp);
  snprintf(r.device, sizeof r.device, "%s", o.device);
  setenv("WRN_CONV_ALGO", "im2col", 1);
  watch rest = {0};
  wrn_train_hooks h = {build, on_event, &rest, &rest.stop};
  wrn_trainer *t;
  wrn_status s = wrn_trainer_open(&t, &r, &h, WRN_TRAIN_RESUME);
  unsetenv("WRN_CONV_ALGO");
  WT_OK(s);
  static char now[WRN_TRAIN_CONV_ALGO_MAX];
  WT_OK(wrn_net_conv_choices(wrn_trainer_net(t), now, sizeof now));
  assert_string_equal(now, copy);
  wrn_trainer_free(t);

  /* An evaluation of the checkpoint (as wrn eval loads it) computes with the recorded
   * choices too, at the run's batch every one of them; one that sets --conv-algo auto asks
   * the tuner (forced to im2col) instead. */
  for (int ask = 0; ask < 2; ask++) {
    wrn_train_options e;
    eval_options(&e, last, ask ? "auto" : NULL);
    assert_string_equal(e.conv_algo, ask ? "auto" : copy);
    setenv("WRN_CONV_ALGO", "im2col", 1);
    wrn_train_hooks eh = {build, NULL, NULL, NULL};
    s = wrn_trainer_open(&t, &e, &eh, WRN_TRAIN_EVAL);
    unsetenv("WRN_CONV_ALGO");
    WT_OK(s);
    WT_OK(wrn_net_conv_choices(wrn_trainer_net(t), now, sizeof now));
    if (ask)
      assert_non_null(strstr(now, "group0.block0.conv1@forward=im2col"));
    else
      assert_string_equal(now, copy);
    wrn_trainer_free(t);
  }
  free(copy);
}

static void test_open_errors(void **state) {
  (void)state;
  wrn_train_options o;
  wrn_trainer *t = (wrn_trainer *)&o; /* not NULL, so that a failing open must clear it */
  sample_options(&o, "errors", 1);
  wrn_train_hooks none = {NULL, NULL, NULL, NULL}, h = {build, NULL, NULL, NULL};
  expect_error(wrn_trainer_open(&t, &o, &none, WRN_TRAIN_NEW), WRN_STATUS_INVALID_ARGUMENT,
               "build");
  assert_null(t);
  expect_error(wrn_trainer_open(&t, &o, &h, WRN_TRAIN_EVAL), WRN_STATUS_INVALID_ARGUMENT,
               "--init");
  /* Nothing to resume in an empty folder. */
  expect_error(wrn_trainer_open(&t, &o, &h, WRN_TRAIN_RESUME), WRN_STATUS_IO,
               "last.safetensors");
  assert_null(t);
  /* More images per batch than the split has. */
  WT_OK(wrn_train_option_set(&o, "--batch", "256"));
  expect_error(wrn_trainer_open(&t, &o, &h, WRN_TRAIN_NEW), WRN_STATUS_INVALID_ARGUMENT,
               "fewer than one batch");
  /* A model whose classes the data set does not have. */
  WT_OK(wrn_train_option_set(&o, "--batch", "32"));
  WT_OK(wrn_train_option_set(&o, "--classes", "100"));
  expect_error(wrn_trainer_open(&t, &o, &h, WRN_TRAIN_NEW), WRN_STATUS_INVALID_ARGUMENT,
               "100 classes");
}

static int setup(void **state) {
  (void)state;
  /* wrn_gemm's auto mode picks CLBlast or its own kernel per shape by timing both, so two
   * contexts on a busy machine may round differently; exactness across runs needs one fixed
   * choice (unless the caller set one). */
  setenv("WRN_GEMM", "own", 0);
  return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  t_ctx_close_all();
  t_rm_tree(tmp);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schedule), cmocka_unit_test(test_options),
      cmocka_unit_test(test_checkpoint_roundtrip), cmocka_unit_test(test_open_errors),
      cmocka_unit_test(test_run_stop_resume), cmocka_unit_test(test_conv_choices_replayed),
      cmocka_unit_test(test_schedule_cosine_warmup), cmocka_unit_test(test_regularisers_resume)};
  return WT_RUN_GROUP("train", tests, setup, teardown);
}
