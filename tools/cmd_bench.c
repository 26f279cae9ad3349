/* wrn bench: full training (or inference) steps on synthetic data, timed per step, with the
 * device's measured FMA peak, memory, kernel-ready times and a per-op profile from OpenCL
 * events; one row per device and batch size, a failing device gets a row with its error. */
#include "args.h"
#include "bench_report.h"
#include "cli.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCHES 8

typedef struct bench_opts {
  char model[64];
  int classes;
  double dropout;
  int batches[MAX_BATCHES], nbatches;
  char device[256];
  int all_devices;
  int steps, warmup;
  int eval; /* mode */
  const char *json, *report;
  int profile_steps;
  const char *conv_algo; /* NULL: the tuner's choice */
  double workspace_mib;
  int image_size; /* 0: the model's own (32, or 224 for the ImageNet ResNets) */
} bench_opts;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double quantile(const double *sorted, int n, double q) {
  if (n == 1) return sorted[0];
  double pos = q * (n - 1);
  int i = (int)pos;
  if (i >= n - 1) return sorted[n - 1];
  return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i]);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn bench [--model wrn-D-K] [--batch N[,N...]] [--device X | --all-devices]\n"
          "                 [--steps N] [--warmup M] [--mode train|eval] [--dropout P]\n"
          "                 [--classes N] [--profile-steps N] [--json FILE] [--report DIR]\n"
          "                 [--conv-algo auto|NAME[:K=V,...]] [--workspace-mib M]\n"
          "                 [--image-size S]\n"
          "Runs full training steps (forward, loss, backward, SGD update: the training path)\n"
          "or inference on synthetic data and reports per device and batch: the median and\n"
          "spread of ms per step, images/s, achieved TFLOP/s of the model's useful FLOPs and\n"
          "its share of the device's fp32 peak (measured by a GEMM-free FMA probe), peak device\n"
          "memory, kernel-ready time cold (no cache) and warm, and a per-op profile from OpenCL\n"
          "event profiling, with each conv layer's algorithm, time and GFLOP/s per pass.\n"
          "--conv-algo forces one convolution algorithm wherever it supports a layer (the\n"
          "tuner chooses elsewhere and by default); --workspace-mib bounds the conv workspace\n"
          "(1024). Defaults: wrn-28-10, batch 128, 10 steps after 3 warm-up steps.\n"
          "--model also takes preresnet-D (164, 1001), resnet-50 and wrn-50-2 (torchvision's\n"
          "wide_resnet50_2); --image-size S runs SxS images (default 32, 224 for the last two).\n"
          "wrn bench --devices LIST [--split auto|N,N] [--batch N] [--json FILE]: data-parallel\n"
          "steps over the devices against each alone: images/s per device, the split, the\n"
          "time combining gradients adds per step, and the scaling efficiency.\n");
}

/* Sets row->error from the library's message. */
static void row_fail(bench_row *r, const char *what) {
  r->ok = 0;
  snprintf(r->error, sizeof r->error, "%s: %s", what, wrn_last_error());
}

static void fill_random(uint8_t *img, int32_t *lab, size_t nimg, int per, int classes) {
  uint64_t s = 88172645463325252ull;
  for (size_t i = 0; i < nimg * (size_t)per; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    img[i] = (uint8_t)(s >> 56);
  }
  for (size_t i = 0; i < nimg; i++) lab[i] = (int32_t)(i % (size_t)classes);
}

/* Kernel-ready times of the device: programs built with the cache off (cold) and loaded from
 * it (warm). */
static int ready_times(const wrn_device_info *dev, double *cold, double *warm, char *err,
                       size_t errn) {
  wrn_ctx *c;
  wrn_ctx_options o = {WRN_F32, 0, 1};
  double t0 = wrn_seconds();
  if (wrn_ctx_open(&c, dev, &o) != WRN_OK) {
    snprintf(err, errn, "building kernels: %s", wrn_last_error());
    return 1;
  }
  *cold = wrn_seconds() - t0;
  wrn_ctx_free(c);
  o.no_cache = 0;
  t0 = wrn_seconds();
  /* The first cached open writes the cache; the second reads it. */
  if (wrn_ctx_open(&c, dev, &o) != WRN_OK) {
    snprintf(err, errn, "building kernels: %s", wrn_last_error());
    return 1;
  }
  wrn_ctx_free(c);
  t0 = wrn_seconds();
  if (wrn_ctx_open(&c, dev, &o) != WRN_OK) {
    snprintf(err, errn, "loading kernels: %s", wrn_last_error());
    return 1;
  }
  *warm = wrn_seconds() - t0;
  wrn_ctx_free(c);
  return 0;
}

/* One step as training runs it (the recipe's input pipeline, then the library's step, which
 * waits once), or as evaluation does. */
static wrn_status one_step(wrn_net *net, const bench_opts *o, const wrn_train_options *recipe,
                           const uint8_t *img, const int32_t *lab, int batch, uint64_t step) {
  wrn_augment a = wrn_train_augment(recipe, !o->eval, step);
  CLI_TRY(wrn_net_set_batch(net, img, lab, batch, &a));
  if (o->eval) return wrn_train_eval_step(net, batch, NULL, NULL);
  wrn_sgd sgd = {0.01, 0.9, 5e-4, 1, step == 0};
  return wrn_train_step(net, batch, &sgd, recipe->seed, step, NULL, NULL);
}

/* Each conv layer's passes from the tagged profile, per step. */
static void conv_table(const wrn_net *net, const double *tag_ms, const double *tag_fl,
                       bench_row *r) {
  const int nl = wrn_net_layer_count(net);
  r->conv = calloc((size_t)nl * WRN_CONV_PASSES, sizeof *r->conv);
  if (!r->conv) return;
  for (int i = 0; i < nl; i++)
    for (int p = 0; p < WRN_CONV_PASSES; p++) {
      const char *algo = wrn_net_conv_choice(net, i, (wrn_conv_pass)p);
      if (!algo[0]) continue;
      wrn_layer_info li;
      wrn_net_layer(net, i, &li);
      bench_conv *c = &r->conv[r->nconv++];
      const int t = i * WRN_CONV_PASSES + p;
      snprintf(c->layer, sizeof c->layer, "%s", li.name);
      snprintf(c->pass, sizeof c->pass, "%s", wrn_conv_pass_name((wrn_conv_pass)p));
      snprintf(c->algo, sizeof c->algo, "%s", algo);
      snprintf(c->shape, sizeof c->shape, "%dx%dx%d %dx%d/%d -> %d", li.in_c, li.in_h, li.in_w,
               li.k, li.k, li.stride, li.out_c);
      c->ms = tag_ms[t] / r->prof_steps;
      c->gflops = tag_ms[t] > 0 ? tag_fl[t] / (tag_ms[t] * 1e-3) / 1e9 : 0;
    }
}

static void bench_one(const bench_opts *o, const wrn_device_info *dev, int batch, double cold,
                      double warm, double peak, bench_row *r) {
  memset(r, 0, sizeof *r);
  r->dev = *dev;
  r->batch = batch;
  r->ok = 1;
  r->ready_cold_s = cold;
  r->ready_warm_s = warm;
  r->peak_gflops = peak;
  wrn_model_spec spec = {0, 0, o->classes, o->dropout, 3, 32, 32, WRN_ARCH_WRN};
  if (wrn_model_parse(o->model, &spec) != WRN_OK) return row_fail(r, "model");
  spec.in_h = spec.in_w = o->image_size ? o->image_size : wrn_model_default_size(&spec);
  if (wrn_model_check(&spec) != WRN_OK) return row_fail(r, "model");
  wrn_ctx *ctx = NULL;
  wrn_net *net = NULL;
  uint8_t *img = NULL;
  int32_t *lab = NULL;
  double *times = NULL, *tag_ms = NULL, *tag_fl = NULL;
  wrn_ctx_options co = {WRN_F32, 1, 0};
  if (wrn_ctx_open(&ctx, dev, &co) != WRN_OK) {
    row_fail(r, "opening the device");
    goto done;
  }
  wrn_ctx_set_profiling(ctx, 0);
  wrn_net_options no;
  wrn_net_options_default(&no);
  no.max_workspace_elems = (size_t)(o->workspace_mib * 1048576.0 / 4);
  if (wrn_net_create(&net, ctx, batch, &no) != WRN_OK || wrn_model_build(net, &spec) != WRN_OK ||
      (o->conv_algo && wrn_net_set_conv_choices(net, o->conv_algo) != WRN_OK) ||
      wrn_net_finalize(net) != WRN_OK || wrn_net_init_params(net, 1) != WRN_OK) {
    row_fail(r, "setting up the model");
    goto done;
  }
  int per = 3 * spec.in_h * spec.in_w;
  img = malloc((size_t)batch * per);
  lab = malloc((size_t)batch * sizeof *lab);
  times = malloc((size_t)(o->steps > 0 ? o->steps : 1) * sizeof *times);
  if (!img || !lab || !times) {
    r->ok = 0;
    snprintf(r->error, sizeof r->error, "out of host memory");
    goto done;
  }
  fill_random(img, lab, (size_t)batch, per, spec.classes);
  double t0 = wrn_seconds();
  wrn_train_options recipe;
  wrn_train_options_default(&recipe);
  wrn_augment a = wrn_train_augment(&recipe, 0, 0);
  if (wrn_net_set_batch(net, img, lab, batch, &a) != WRN_OK || wrn_net_warmup(net) != WRN_OK) {
    row_fail(r, "warm-up");
    goto done;
  }
  r->warmup_s = wrn_seconds() - t0;
  uint64_t step = 0;
  for (int i = 0; i < o->warmup; i++)
    if (one_step(net, o, &recipe, img, lab, batch, step++) != WRN_OK) {
      row_fail(r, "warm-up step");
      goto done;
    }
  for (int i = 0; i < o->steps; i++) {
    double s0 = wrn_seconds();
    if (one_step(net, o, &recipe, img, lab, batch, step++) != WRN_OK) {
      row_fail(r, "timed step");
      goto done;
    }
    times[i] = (wrn_seconds() - s0) * 1e3;
  }
  qsort(times, (size_t)o->steps, sizeof *times, cmp_double);
  r->ms_median = quantile(times, o->steps, 0.5);
  r->ms_min = times[0];
  r->ms_max = times[o->steps - 1];
  r->ms_p25 = quantile(times, o->steps, 0.25);
  r->ms_p75 = quantile(times, o->steps, 0.75);
  r->images_per_s = batch / (r->ms_median / 1e3);
  double fwd = 2.0 * wrn_net_forward_macs(net) * batch;
  r->step_flops = o->eval ? fwd : 3.0 * fwd;
  r->tflops = r->step_flops / (r->ms_median / 1e3) / 1e12;
  r->peak_share = peak > 0 ? r->tflops * 1e3 / peak : 0;
  /* The profile: the same steps again with every launch recorded, conv passes by layer. */
  const int ntags = wrn_net_layer_count(net) * WRN_CONV_PASSES;
  tag_ms = calloc((size_t)ntags + 1, sizeof *tag_ms);
  tag_fl = calloc((size_t)ntags + 1, sizeof *tag_fl);
  if (!tag_ms || !tag_fl) {
    r->ok = 0;
    snprintf(r->error, sizeof r->error, "out of host memory");
    goto done;
  }
  wrn_ctx_set_profiling(ctx, 1);
  wrn_profile_collect(ctx, NULL);
  for (int i = 0; i < o->profile_steps; i++) {
    if (one_step(net, o, &recipe, img, lab, batch, step++) != WRN_OK ||
        wrn_profile_collect_tags(ctx, &r->prof, tag_ms, tag_fl, ntags) != WRN_OK) {
      row_fail(r, "profiled step");
      goto done;
    }
    r->prof_steps++;
  }
  wrn_ctx_set_profiling(ctx, 0);
  if (r->prof_steps) conv_table(net, tag_ms, tag_fl, r);
  wrn_ctx_mem_stats(ctx, NULL, &r->mem_peak);
done:
  free(img), free(lab), free(times), free(tag_ms), free(tag_fl);
  wrn_net_free(net);
  wrn_ctx_free(ctx);
}

/* ---------------------------------------------------------------- output */

static void print_rows(const bench_opts *o, const bench_row *rows, int n) {
  printf("\n%s %s, %d steps after %d warm-up (median [min..max])\n", o->model,
         o->eval ? "inference" : "training", o->steps, o->warmup);
  printf("%-5s %-34s %6s %24s %9s %8s %7s %9s %14s\n", "dev", "device", "batch", "ms/step",
         "img/s", "TFLOP/s", "%peak", "mem MiB", "ready cold/warm");
  for (int i = 0; i < n; i++) {
    const bench_row *r = &rows[i];
    char id[16], name[40];
    snprintf(id, sizeof id, "%d:%d", r->dev.platform_index, r->dev.device_index);
    snprintf(name, sizeof name, "%.34s", r->dev.name);
    if (!r->ok) {
      printf("%-5s %-34s %6d  FAILED: %s\n", id, name, r->batch, r->error);
      continue;
    }
    char ms[64];
    snprintf(ms, sizeof ms, "%.1f [%.1f..%.1f]", r->ms_median, r->ms_min, r->ms_max);
    printf("%-5s %-34s %6d %24s %9.1f %8.3f %6.1f%% %9.1f %6.2fs/%.2fs\n", id, name, r->batch, ms,
           r->images_per_s, r->tflops, 100 * r->peak_share, r->mem_peak / 1048576.0,
           r->ready_cold_s, r->ready_warm_s);
  }
  for (int i = 0; i < n; i++) {
    const bench_row *r = &rows[i];
    if (!r->ok || !r->prof_steps) continue;
    double total = 0;
    for (int c = 0; c < WRN_CAT_COUNT; c++) total += r->prof.ms[c];
    printf("\nper-op profile: %s (%s, driver %s), batch %d, mean of %d steps; device time "
           "%.1f ms of %.1f ms wall (FMA peak %.1f GFLOP/s; first-step warm-up %.2f s)\n",
           r->dev.name, r->dev.platform_name, r->dev.driver, r->batch, r->prof_steps,
           total / r->prof_steps, r->ms_median, r->peak_gflops, r->warmup_s);
    printf("  %-18s %10s %7s %9s %10s\n", "op", "ms", "%", "launches", "GFLOP/s");
    for (int c = 0; c < WRN_CAT_COUNT; c++) {
      if (!r->prof.launches[c]) continue;
      double ms = r->prof.ms[c] / r->prof_steps;
      char gf[32] = "";
      if (r->prof.flops[c] > 0 && r->prof.ms[c] > 0)
        snprintf(gf, sizeof gf, "%.1f", r->prof.flops[c] / (r->prof.ms[c] * 1e-3) / 1e9);
      printf("  %-18s %10.2f %6.1f%% %9ld %10s\n", wrn_op_cat_name((wrn_op_cat)c), ms,
             100 * r->prof.ms[c] / total, r->prof.launches[c] / r->prof_steps, gf);
    }
    if (r->nconv) {
      printf("\n  conv layers (per step):\n  %-22s %-16s %-22s %9s %9s  %s\n", "layer",
             "pass", "shape", "ms", "GFLOP/s", "algorithm");
      for (int c = 0; c < r->nconv; c++) {
        const bench_conv *cv = &r->conv[c];
        printf("  %-22s %-16s %-22s %9.2f %9.1f  %s\n", cv->layer, cv->pass, cv->shape, cv->ms,
               cv->gflops, cv->algo);
      }
    }
  }
}

/* ---------------------------------------------------------------- command */

int cmd_bench(int argc, char **argv) {
  bench_opts o;
  memset(&o, 0, sizeof o);
  snprintf(o.model, sizeof o.model, "wrn-28-10");
  o.classes = 10;
  o.batches[0] = 128, o.nbatches = 1;
  o.steps = 10, o.warmup = 3, o.profile_steps = 3;
  o.workspace_mib = 1024;
  static const char *const modes[] = {"train", "eval", NULL};
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--devices")) return cmd_bench_devices(argc, argv);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--all-devices")) {
      o.all_devices = 1;
      continue;
    }
    if (strncmp(a, "--", 2)) {
      fprintf(stderr, "wrn bench: unexpected argument '%s'\n", a);
      return 2;
    }
    if (!(v = arg_value("bench", argc, argv, &i))) return 2;
    int rc = 0;
    if (!strcmp(a, "--model")) {
      wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
      if (wrn_model_parse(v, &s) != WRN_OK) {
        fprintf(stderr, "wrn bench: --model: %s\n", wrn_last_error());
        return 2;
      }
      wrn_model_name(&s, o.model, sizeof o.model);
    } else if (!strcmp(a, "--batch"))
      rc = arg_int_list("bench", a, v, 1, 1 << 20, o.batches, MAX_BATCHES, &o.nbatches);
    else if (!strcmp(a, "--device")) {
      if (!v[0] || strlen(v) >= sizeof o.device) {
        fprintf(stderr, "wrn bench: --device wants a selector of 1 to %zu characters, got %zu\n",
                sizeof o.device - 1, strlen(v));
        return 2;
      }
      snprintf(o.device, sizeof o.device, "%s", v);
    }
    else if (!strcmp(a, "--steps"))
      rc = arg_int("bench", a, v, 1, 100000, &o.steps);
    else if (!strcmp(a, "--warmup"))
      rc = arg_int("bench", a, v, 0, 100000, &o.warmup);
    else if (!strcmp(a, "--profile-steps"))
      rc = arg_int("bench", a, v, 0, 1000, &o.profile_steps);
    else if (!strcmp(a, "--mode"))
      rc = arg_choice("bench", a, v, modes, &o.eval);
    else if (!strcmp(a, "--dropout"))
      rc = arg_double("bench", a, v, 0, 0.99, &o.dropout);
    else if (!strcmp(a, "--classes"))
      rc = arg_int("bench", a, v, 2, 100000, &o.classes);
    else if (!strcmp(a, "--json"))
      o.json = v;
    else if (!strcmp(a, "--report"))
      o.report = v;
    else if (!strcmp(a, "--conv-algo"))
      o.conv_algo = v;
    else if (!strcmp(a, "--image-size"))
      rc = arg_int("bench", a, v, 8, 4096, &o.image_size);
    else if (!strcmp(a, "--workspace-mib"))
      rc = arg_double("bench", a, v, 1, 1 << 20, &o.workspace_mib);
    else {
      fprintf(stderr, "wrn bench: unknown flag '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (rc) return rc;
  }
  if (o.nbatches == 0) {
    fprintf(stderr, "wrn bench: --batch needs at least one size\n");
    return 2;
  }
  if (o.all_devices && o.device[0]) {
    fprintf(stderr, "wrn bench: give --device or --all-devices, not both\n");
    return 2;
  }
  wrn_device_info *devs = NULL;
  int ndev = 0;
  if (o.all_devices) {
    if (wrn_devices_list(&devs, &ndev) != WRN_OK) {
      cli_error("bench", "listing devices");
      return 1;
    }
  } else {
    devs = malloc(sizeof *devs);
    if (!devs || wrn_device_select(o.device[0] ? o.device : NULL, devs) != WRN_OK) {
      cli_error("bench", "choosing a device");
      free(devs);
      return 1;
    }
    ndev = 1;
  }
  bench_row *rows = calloc((size_t)(ndev * o.nbatches), sizeof *rows);
  if (!rows) {
    free(devs);
    return 1;
  }
  int nrows = 0, failed = 0;
  bench_host host;
  bench_host_start(&host);
  for (int d = 0; d < ndev; d++) {
    double cold = NAN, warm = NAN, peak = 0;
    char err[1024] = "";
    int bad = ready_times(&devs[d], &cold, &warm, err, sizeof err);
    if (!bad) {
      wrn_ctx *c;
      wrn_ctx_options co = {WRN_F32, 0, 0};
      if (wrn_ctx_open(&c, &devs[d], &co) != WRN_OK || wrn_probe_fma(c, &peak) != WRN_OK) {
        snprintf(err, sizeof err, "peak probe: %s", wrn_last_error());
        bad = 1;
      }
      wrn_ctx_free(bad ? NULL : c);
    }
    fprintf(stderr, "bench: %s (%s): kernels ready %.2f s cold, %.2f s warm; FMA peak %.1f "
                    "GFLOP/s\n", devs[d].name, devs[d].platform_name, cold, warm, peak);
    for (int b = 0; b < o.nbatches; b++) {
      bench_row *r = &rows[nrows++];
      if (bad) {
        memset(r, 0, sizeof *r);
        r->dev = devs[d];
        r->batch = o.batches[b];
        snprintf(r->error, sizeof r->error, "%s", err);
      } else {
        fprintf(stderr, "bench: %s, batch %d ...\n", devs[d].name, o.batches[b]);
        bench_one(&o, &devs[d], o.batches[b], cold, warm, peak, r);
      }
      if (!r->ok) failed++;
    }
  }
  bench_host_end(&host);
  print_rows(&o, rows, nrows);
  if (host.busy)
    fprintf(stderr, "\nbench: warning: the machine was busy: other processes kept %.2f of %d "
                    "cores busy on average during the run (load average %.2f at the start); "
                    "the timings may be low\n", host.other_cores, host.cores, host.load_start[0]);
  bench_set set = {"", o.eval, o.steps, o.warmup, o.profile_steps, o.dropout, "", host, rows,
                   nrows, ""};
  snprintf(set.model, sizeof set.model, "%s", o.model);
  snprintf(set.version, sizeof set.version, "%s", wrn_version());
  int rc = 0;
  if (o.json && bench_json_write("bench", o.json, &set)) rc = 1;
  if (o.report && bench_report_write("bench", o.report, &set, 1)) rc = 1;
  if (o.report && !rc) printf("\nreport: %s/report.md\n", o.report);
  for (int i = 0; i < nrows; i++) free(rows[i].conv);
  free(rows);
  free(devs);
  /* Failing rows are results, not a failure of the command, unless nothing ran at all. */
  if (!rc && failed == nrows) rc = 1;
  return rc;
}
