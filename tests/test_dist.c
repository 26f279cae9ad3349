/* Data parallelism over two devices of one process (PoCL gives two with POCL_DEVICES="pthread
 * pthread"): a global batch split 64 + 64 or 96 + 32 trains to the weights of one device
 * running the whole batch (no batch norm), or of one device normalising the two halves
 * separately (batch norm, ghost batches), to fp32 round-off; every replica holds identical
 * parameters, momentum and running statistics after the steps; dropout and augmentation
 * keyed by the global sample index; a stopped and resumed two-device run ends bit-identical
 * to an uninterrupted one; bad --devices / --split values are refused with messages. */
#include "harness.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static char tmp[] = "/tmp/wrn-dist-XXXXXX";
static char dev_a[32], dev_b[32]; /* selectors of two devices of one platform */

#define STEPS 3
#define B 128
#define HW 8

/* The test networks on 3 x 8 x 8 inputs: "nobn" (conv, dropout, conv + residual, pool,
 * linear) and "bn" (conv, BN + ReLU, conv, BN + ReLU, residual, pool, linear). */
static wrn_status build(wrn_net *n, const wrn_train_options *o, void *user) {
  (void)user;
  int bn = !strcmp(o->model, "bn");
  int x = wrn_net_input(n, 3, HW, HW);
  int a = wrn_net_conv(n, "c1", x, 8, 3, 1, 1);
  if (bn) a = wrn_net_bn(n, "b1", a, 1);
  int d = bn ? a : wrn_net_dropout(n, a, 0.3);
  int c = wrn_net_conv(n, "c2", d, 8, 3, 1, 1);
  if (bn) c = wrn_net_bn(n, "b2", c, 1);
  int s = wrn_net_add(n, c, a);
  int p = wrn_net_avgpool(n, s, HW, 1, 0);
  return wrn_net_linear(n, "fc", p, 10) < 0 ? WRN_STATUS_INVALID_ARGUMENT : WRN_OK;
}

static void options(wrn_train_options *o, const char *model, const char *split) {
  wrn_train_options_default(o);
  WT_OK(wrn_train_option_set(o, "--model", model));
  WT_OK(wrn_train_option_set(o, "--batch", "128"));
  WT_OK(wrn_train_option_set(o, "--seed", "7"));
  WT_OK(wrn_train_option_set(o, "--conv-algo", "im2col"));
  o->classes = 10;
  char devs[80];
  snprintf(devs, sizeof devs, "%s,%s", dev_a, dev_b);
  WT_OK(wrn_train_option_set(o, "--devices", devs));
  WT_OK(wrn_train_option_set(o, "--split", split));
}

static void batch_data(uint8_t *img, int32_t *lab, int step) {
  uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(step + 1);
  for (size_t i = 0; i < (size_t)B * 3 * HW * HW; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    img[i] = (uint8_t)(s >> 56);
  }
  for (int i = 0; i < B; i++) lab[i] = (int32_t)((i * 7 + step) % 10);
}

static wrn_sgd sgd_of(int step) {
  wrn_sgd s = {0.05, 0.9, 5e-4, 1, step == 0};
  return s;
}

/* The single-device reference: the whole batch on dev_a, BN over `ghost` groups. */
static void reference(const wrn_train_options *o, int ghost, double *params, double *bufs,
                      double *loss) {
  wrn_device_info dev;
  WT_OK(wrn_device_select(dev_a, &dev));
  wrn_ctx *ctx;
  wrn_ctx_options co = {WRN_F32, 0, 0};
  WT_OK(wrn_ctx_open(&ctx, &dev, &co));
  wrn_net_options no;
  wrn_net_options_default(&no);
  no.bn_ghost = ghost;
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, B, &no));
  WT_OK(build(net, o, NULL));
  WT_OK(wrn_net_set_conv_choices(net, o->conv_algo));
  WT_OK(wrn_net_finalize(net));
  WT_OK(wrn_net_init_params(net, o->seed));
  uint8_t *img = malloc((size_t)B * 3 * HW * HW);
  int32_t *lab = malloc(B * sizeof *lab);
  assert_non_null(img);
  assert_non_null(lab);
  for (int step = 0; step < STEPS; step++) {
    batch_data(img, lab, step);
    wrn_augment a = wrn_train_augment(o, 1, (uint64_t)step);
    WT_OK(wrn_net_set_batch(net, img, lab, B, &a));
    wrn_sgd sgd = sgd_of(step);
    WT_OK(wrn_train_step(net, B, &sgd, o->seed, (uint64_t)step, &loss[step], NULL));
  }
  WT_OK(wrn_net_read(net, 0, params));
  WT_OK(wrn_net_read(net, 3, bufs));
  free(img), free(lab);
  wrn_net_free(net);
  wrn_ctx_free(ctx);
}

/* The same steps data-parallel over both devices; checks the replicas stay identical. */
static void parallel(const wrn_train_options *o, double *params, double *bufs, double *loss) {
  wrn_train_hooks h = {build, NULL, NULL, NULL};
  wrn_parallel *p;
  WT_OK(wrn_parallel_open(&p, o, &h));
  assert_int_equal(wrn_parallel_devices(p), 2);
  int b0 = wrn_parallel_slice(p, 0), b1 = wrn_parallel_slice(p, 1);
  assert_int_equal(b0 + b1, B);
  char want[32];
  snprintf(want, sizeof want, "%d,%d", b0, b1);
  assert_string_equal(want, o->split);
  WT_OK(wrn_parallel_warmup(p));
  uint8_t *img = malloc((size_t)B * 3 * HW * HW);
  int32_t *lab = malloc(B * sizeof *lab);
  assert_non_null(img);
  assert_non_null(lab);
  for (int step = 0; step < STEPS; step++) {
    batch_data(img, lab, step);
    wrn_sgd sgd = sgd_of(step);
    WT_OK(wrn_parallel_step(p, img, lab, &sgd, (uint64_t)step, &loss[step], NULL));
  }
  wrn_net *n0 = wrn_parallel_net(p, 0), *n1 = wrn_parallel_net(p, 1);
  for (int which = 0; which < 4; which++) {
    if (which == 1) continue;
    size_t cnt = wrn_net_flat_count(n0, which);
    double *x = calloc(cnt + 1, sizeof *x), *y = calloc(cnt + 1, sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    WT_OK(wrn_net_read(n0, which, x));
    WT_OK(wrn_net_read(n1, which, y));
    if (memcmp(x, y, cnt * sizeof *x))
      fail_msg("flat array %d differs between the replicas (max |diff| %g)", which,
               t_max_abs_diff(x, y, cnt));
    if (which == 0) memcpy(params, x, cnt * sizeof *x);
    if (which == 3) memcpy(bufs, x, cnt * sizeof *x);
    free(x), free(y);
  }
  free(img), free(lab);
  wrn_parallel_free(p);
}

static size_t flat_count(const wrn_train_options *o, int which) {
  wrn_net *net;
  WT_OK(wrn_net_create(&net, NULL, B, NULL));
  WT_OK(build(net, o, NULL));
  WT_OK(wrn_net_plan(net));
  size_t n = wrn_net_flat_count(net, which);
  wrn_net_free(net);
  return n;
}

static void compare(const char *model, const char *split, int ghost) {
  wrn_train_options o;
  options(&o, model, split);
  size_t np = flat_count(&o, 0), nb = flat_count(&o, 3);
  double *pr = calloc(np + 1, sizeof *pr), *pp = calloc(np + 1, sizeof *pp);
  double *br = calloc(nb + 1, sizeof *br), *bp = calloc(nb + 1, sizeof *bp);
  double lr[STEPS], lp[STEPS];
  assert_true(pr && pp && br && bp);
  reference(&o, ghost, pr, br, lr);
  parallel(&o, pp, bp, lp);
  double scale = 0;
  for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(pr[i]));
  double d = t_max_abs_diff(pp, pr, np);
  print_message("%s split %s: max |param diff| %.3g (largest param %.3g) after %d steps; loss "
                "%.6f vs %.6f\n", model, split, d, scale, STEPS, lp[STEPS - 1] / B,
                lr[STEPS - 1] / B);
  /* fp32 round-off: the sums run in other orders (per slice, then combined in double). */
  t_check_close("parameters", pp, pr, np, 2e-5, 1e-4);
  for (int s = 0; s < STEPS; s++)
    if (fabs(lp[s] - lr[s]) > 1e-4 * fabs(lr[s]))
      fail_msg("step %d: loss sum %.9g data-parallel, %.9g on one device", s, lp[s], lr[s]);
  /* Running statistics: ghost batches take the halves' updates in turn, the replicas the
   * b-weighted mean of theirs, so they agree only to O(momentum^2) of the difference of the
   * halves' statistics; both must be finite and have moved off the initial (0, 1). */
  int moved = nb == 0;
  for (size_t i = 0; i < nb; i++) {
    assert_true(isfinite(bp[i]) && isfinite(br[i]));
    moved |= bp[i] != 0 && bp[i] != 1;
  }
  assert_true(moved);
  free(pr), free(pp), free(br), free(bp);
}

static void test_no_bn_even(void **state) {
  (void)state;
  compare("nobn", "64,64", 1);
}

static void test_no_bn_uneven(void **state) {
  (void)state;
  compare("nobn", "96,32", 1);
}

static void test_bn_ghost(void **state) {
  (void)state;
  compare("bn", "64,64", 2);
}

/* One training step of the slice [first, first + b) of step 0's global batch on one device:
 * its running statistics (what one replica of that slice holds before they are combined). */
static void slice_stats(const wrn_train_options *o, int b, int first, double *bufs) {
  wrn_device_info dev;
  WT_OK(wrn_device_select(dev_a, &dev));
  wrn_ctx *ctx;
  wrn_ctx_options co = {WRN_F32, 0, 0};
  WT_OK(wrn_ctx_open(&ctx, &dev, &co));
  wrn_net *net;
  WT_OK(wrn_net_create(&net, ctx, b, NULL));
  WT_OK(build(net, o, NULL));
  WT_OK(wrn_net_set_conv_choices(net, o->conv_algo));
  WT_OK(wrn_net_finalize(net));
  WT_OK(wrn_net_init_params(net, o->seed));
  uint8_t *img = malloc((size_t)B * 3 * HW * HW);
  int32_t *lab = malloc(B * sizeof *lab);
  assert_true(img && lab);
  batch_data(img, lab, 0);
  wrn_net_set_sample_offset(net, (size_t)first);
  wrn_augment a = wrn_train_augment(o, 1, 0);
  WT_OK(wrn_net_set_batch(net, img + (size_t)first * 3 * HW * HW, lab + first, b, &a));
  wrn_sgd sgd = sgd_of(0);
  WT_OK(wrn_train_step(net, b, &sgd, o->seed, 0, NULL, NULL));
  WT_OK(wrn_net_read(net, 3, bufs));
  free(img), free(lab);
  wrn_net_free(net);
  wrn_ctx_free(ctx);
}

/* The running statistics rule: after a step the replicas hold the b-weighted mean of what
 * each computed from its slice. From the same start that is (96 r_a + 32 r_b) / 128 with r_a,
 * r_b the statistics of one device running each slice alone (the update is linear). */
static void test_bn_running_stats_rule(void **state) {
  (void)state;
  wrn_train_options o;
  options(&o, "bn", "96,32");
  size_t nb = flat_count(&o, 3), np = flat_count(&o, 0);
  double *ra = calloc(nb + 1, sizeof *ra), *rb = calloc(nb + 1, sizeof *rb);
  double *want = calloc(nb + 1, sizeof *want), *got = calloc(nb + 1, sizeof *got);
  double *p = calloc(np + 1, sizeof *p);
  assert_true(ra && rb && want && got && p);
  slice_stats(&o, 96, 0, ra);
  slice_stats(&o, 32, 96, rb);
  for (size_t i = 0; i < nb; i++) want[i] = (96 * ra[i] + 32 * rb[i]) / 128;
  wrn_train_hooks h = {build, NULL, NULL, NULL};
  wrn_parallel *par;
  WT_OK(wrn_parallel_open(&par, &o, &h));
  uint8_t *img = malloc((size_t)B * 3 * HW * HW);
  int32_t *lab = malloc(B * sizeof *lab);
  assert_true(img && lab);
  batch_data(img, lab, 0);
  wrn_sgd sgd = sgd_of(0);
  WT_OK(wrn_parallel_step(par, img, lab, &sgd, 0, NULL, NULL));
  WT_OK(wrn_net_read(wrn_parallel_net(par, 1), 3, got));
  print_message("running statistics after one 96 + 32 step: max |diff| from the weighted mean "
                "of the slices' %.3g\n", t_max_abs_diff(got, want, nb));
  /* The replicas' statistics, combined in double and stored in float. */
  t_check_close("running statistics", got, want, nb, 1e-6, 1e-6);
  wrn_parallel_free(par);
  free(ra), free(rb), free(want), free(got), free(p), free(img), free(lab);
}

/* A slice of a tensor (or of a batch) draws the whole's dropout masks and crops: element
 * j of a launch at offset first is element first + j of the whole. */
static void test_slices_draw_as_whole(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const size_t n = 3000, first = 1234;
  double *x = malloc(n * sizeof *x), *whole = malloc(n * sizeof *whole);
  double *part = malloc(n * sizeof *part);
  assert_true(x && whole && part);
  t_rand(x, n, -1, 1, 5);
  cl_mem X = t_upload(ctx, x, n), Y = t_zeros(ctx, n), Z = t_zeros(ctx, n);
  WT_OK(wrn_dropout_forward(ctx, t_mem(Y), t_mem(X), n, 0.4, 11, 22));
  wrn_mem xs = {X, first}, zs = {Z, 0};
  WT_OK(wrn_dropout_forward_at(ctx, zs, xs, n - first, first, 0.4, 11, 22));
  t_download(ctx, whole, Y, n);
  t_download(ctx, part, Z, n - first);
  if (memcmp(whole + first, part, (n - first) * sizeof *part))
    fail_msg("dropout of elements [%zu, %zu) differs from the whole's", first, n);
  /* Its backward too (accumulating onto zeros). */
  cl_mem D = t_zeros(ctx, n);
  WT_OK(wrn_dropout_backward_at(ctx, t_mem(D), xs, n - first, first, 0.4, 11, 22, 1));
  t_download(ctx, part, D, n - first);
  assert_memory_equal(whole + first, part, (n - first) * sizeof *part);
  /* Augmentation: images 5..7 of a batch of 8 as a batch of 3 at first = 5. */
  const int imgs = 8, c = 3, h = 8, w = 8, per = c * h * w;
  uint8_t *img = malloc((size_t)imgs * per);
  assert_non_null(img);
  for (int i = 0; i < imgs * per; i++) img[i] = (uint8_t)(i * 37 + 11);
  cl_int e;
  cl_mem U = clCreateBuffer(wrn_ctx_cl_context(ctx), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                            (size_t)imgs * per, img, &e);
  assert_int_equal(e, CL_SUCCESS);
  wrn_augment a = wrn_augment_recipe();
  a.augment = 1, a.seed = 3, a.step = 9;
  cl_mem A = t_zeros(ctx, (size_t)imgs * per), Bm = t_zeros(ctx, (size_t)3 * per);
  WT_OK(wrn_augment_forward(ctx, t_mem(A), U, 0, imgs, c, h, w, &a));
  WT_OK(wrn_augment_forward_at(ctx, t_mem(Bm), U, (size_t)5 * per, 3, 5, c, h, w, &a));
  double *ya = malloc((size_t)imgs * per * sizeof *ya), *yb = malloc((size_t)3 * per * sizeof *yb);
  assert_true(ya && yb);
  t_download(ctx, ya, A, (size_t)imgs * per);
  t_download(ctx, yb, Bm, (size_t)3 * per);
  assert_memory_equal(ya + 5 * per, yb, (size_t)3 * per * sizeof *yb);
  clReleaseMemObject(X), clReleaseMemObject(Y), clReleaseMemObject(Z), clReleaseMemObject(D);
  clReleaseMemObject(U), clReleaseMemObject(A), clReleaseMemObject(Bm);
  free(x), free(whole), free(part), free(img), free(ya), free(yb);
}

static void test_bad_options(void **state) {
  (void)state;
  wrn_train_options o;
  options(&o, "nobn", "64,60");
  wrn_train_hooks h = {build, NULL, NULL, NULL};
  wrn_parallel *p;
  assert_int_equal(wrn_parallel_open(&p, &o, &h), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "summing to the batch of 128"));
  assert_null(p);
  options(&o, "nobn", "64,64,0");
  assert_int_equal(wrn_parallel_open(&p, &o, &h), WRN_STATUS_INVALID_ARGUMENT);
  options(&o, "nobn", "124,4");
  WT_OK(wrn_train_option_set(&o, "--min-per-device", "8"));
  assert_int_equal(wrn_parallel_open(&p, &o, &h), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "minimum"));
  options(&o, "nobn", "auto");
  WT_OK(wrn_train_option_set(&o, "--devices", "0:0,99:0"));
  wrn_status s = wrn_parallel_open(&p, &o, &h);
  assert_int_not_equal(s, WRN_OK);
  assert_non_null(strstr(wrn_last_error(), "--devices"));
  /* An automatic split on two alike devices: the warm-up measures and balances; every slice
   * keeps the minimum and they sum to the batch. */
  options(&o, "nobn", "auto");
  WT_OK(wrn_parallel_open(&p, &o, &h));
  WT_OK(wrn_parallel_warmup(p));
  int b0 = wrn_parallel_slice(p, 0), b1 = wrn_parallel_slice(p, 1);
  print_message("automatic split after the warm-up: %d + %d\n", b0, b1);
  assert_int_equal(b0 + b1, B);
  assert_true(b0 >= 8 && b1 >= 8);
  wrn_parallel_free(p);
}

/* ---------------------------------------------------------------- runs */

typedef struct watch {
  int steps, stop_after;
  volatile sig_atomic_t stop;
  char last_line[8192];
} watch;

static void on_event(const wrn_train_event *e, void *user) {
  watch *w = user;
  if (e->kind == WRN_TRAIN_EVENT_STEP) {
    if (w->stop_after && ++w->steps >= w->stop_after) w->stop = 1;
    return;
  }
  snprintf(w->last_line, sizeof w->last_line, "%s", e->log_line);
}

static wrn_status build_wrn(wrn_net *net, const wrn_train_options *o, void *user) {
  (void)user;
  wrn_model_spec s = {0, 0, o->classes, o->dropout, 3, 32, 32, WRN_ARCH_WRN};
  wrn_status st = wrn_model_parse(o->model, &s);
  return st != WRN_OK ? st : wrn_model_build(net, &s);
}

static void run_options(wrn_train_options *o, const char *run) {
  const char *src = getenv("WRN_SOURCE_DIR");
  char v[2048];
  wrn_train_options_default(o);
  snprintf(v, sizeof v, "%s/data/cifar10-sample", src ? src : WRN_SOURCE_DIR);
  WT_OK(wrn_train_option_set(o, "--data", v));
  snprintf(v, sizeof v, "%s/%s", tmp, run);
  WT_OK(wrn_train_option_set(o, "--out", v));
  snprintf(v, sizeof v, "%s,%s", dev_a, dev_b);
  WT_OK(wrn_train_option_set(o, "--devices", v));
  WT_OK(wrn_train_option_set(o, "--split", "20,12"));
  WT_OK(wrn_train_option_set(o, "--model", "wrn-10-1"));
  WT_OK(wrn_train_option_set(o, "--train-limit", "128"));
  WT_OK(wrn_train_option_set(o, "--test-limit", "40"));
  WT_OK(wrn_train_option_set(o, "--batch", "32"));
  WT_OK(wrn_train_option_set(o, "--dropout", "0.3"));
  WT_OK(wrn_train_option_set(o, "--epoch-step", "2"));
  o->epochs = 2;
}

static wrn_status run(const wrn_train_options *o, wrn_train_mode mode, watch *w) {
  wrn_train_hooks h = {build_wrn, on_event, w, &w->stop};
  wrn_trainer *t;
  wrn_status s = wrn_trainer_open(&t, o, &h, mode);
  if (s != WRN_OK) return s;
  assert_int_equal(wrn_trainer_state(t)->devices, 2);
  assert_string_equal(wrn_trainer_state(t)->split, "20,12");
  s = wrn_trainer_run(t);
  wrn_trainer_free(t);
  return s;
}

static void same_weights(const char *run_a, const char *run_b) {
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/%s/last.safetensors", tmp, run_a);
  snprintf(b, sizeof b, "%s/%s/last.safetensors", tmp, run_b);
  wt_same_tensors(a, b);
  wrn_st_file *fa;
  WT_OK(wrn_st_open(&fa, a));
  assert_string_equal(wrn_st_meta(fa, "split"), "20,12");
  wrn_st_close(fa);
}

static void test_resume_two_devices(void **state) {
  (void)state;
  wrn_train_options o;
  watch full = {0};
  run_options(&o, "full");
  WT_OK(run(&o, WRN_TRAIN_NEW, &full));
  assert_non_null(strstr(full.last_line, "\"devices_split\":\"20,12\""));
  assert_non_null(strstr(full.last_line, "\"device_images_per_s\":"));
  /* Stopped after 3 steps of the first epoch's 4, then resumed to the end. */
  watch part = {0};
  part.stop_after = 3;
  run_options(&o, "part");
  assert_int_equal(run(&o, WRN_TRAIN_NEW, &part), WRN_STATUS_INTERRUPTED);
  char last[512];
  snprintf(last, sizeof last, "%s/part/last.safetensors", tmp);
  wrn_train_options r;
  wrn_train_options_default(&r);
  WT_OK(wrn_train_options_load(&r, last, 0));
  run_options(&o, "part");
  snprintf(r.out, sizeof r.out, "%s", o.out);
  snprintf(r.devices, sizeof r.devices, "%s", o.devices);
  watch rest = {0};
  WT_OK(run(&r, WRN_TRAIN_RESUME, &rest));
  same_weights("full", "part");
  /* Resuming on another number of devices is refused: the stored split does not fit. */
  char three[100];
  snprintf(three, sizeof three, "%s,%s,%s", dev_a, dev_b, dev_a);
  snprintf(r.devices, sizeof r.devices, "%s", three);
  wrn_train_hooks h = {build_wrn, NULL, NULL, NULL};
  wrn_trainer *t;
  assert_int_equal(wrn_trainer_open(&t, &r, &h, WRN_TRAIN_RESUME), WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "20,12"));
}

static int setup(void **state) {
  (void)state;
  return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  t_rm_tree(tmp);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  wrn_device_info *devs;
  int n;
  if (wrn_devices_list(&devs, &n) != WRN_OK) n = 0;
  for (int i = 0; i < n && !dev_b[0]; i++)
    for (int j = i + 1; j < n && !dev_b[0]; j++)
      if (devs[i].platform_index == devs[j].platform_index) {
        snprintf(dev_a, sizeof dev_a, "%d:%d", devs[i].platform_index, devs[i].device_index);
        snprintf(dev_b, sizeof dev_b, "%d:%d", devs[j].platform_index, devs[j].device_index);
      }
  if (n > 0) free(devs);
  if (!dev_b[0]) {
    printf("SKIP: needs two OpenCL devices on one platform (POCL_DEVICES=\"pthread pthread\")\n");
    return WRN_TEST_SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slices_draw_as_whole),
      cmocka_unit_test(test_no_bn_even),        cmocka_unit_test(test_no_bn_uneven),
      cmocka_unit_test(test_bn_ghost),          cmocka_unit_test(test_bn_running_stats_rule),
      cmocka_unit_test(test_bad_options),       cmocka_unit_test(test_resume_two_devices)};
  return WT_RUN_GROUP("dist", tests, setup, teardown);
}
