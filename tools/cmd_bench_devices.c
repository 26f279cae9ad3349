/* wrn bench --devices: data-parallel training steps over several devices (the trainer's
 * wrn_parallel), against each device alone: images/s per device, the split, the time the
 * gradient combination adds per step and the scaling efficiency (throughput over the sum of
 * the single-device throughputs), as text and JSON. */
#include "args.h"
#include "cli.h"
#include "wrn_models.h"
#include "wrn_train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pbench {
  wrn_train_options o; /* model, batch, devices, split, conv_algo, workspace */
  int steps, warmup;
  const char *json;
} pbench;

/* One measurement: a set of devices at the global batch. */
typedef struct pres {
  int ok;
  char error[1024];
  int n;
  wrn_device_info dev[16];
  int slice[16];
  double dev_ips[16]; /* b_i / its forward + backward time, median over steps */
  double ms_median, combine_ms, images_per_s;
} pres;

static wrn_status build_model(wrn_net *net, const wrn_train_options *o, void *user) {
  (void)user;
  wrn_model_spec s = {0, 0, o->classes, o->dropout, 3, 32, 32, WRN_ARCH_WRN};
  wrn_status st = wrn_model_parse(o->model, &s);
  return st != WRN_OK ? st : wrn_model_build(net, &s);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void run_set(const pbench *pb, const char *devices, pres *r) {
  memset(r, 0, sizeof *r);
  wrn_train_options o = pb->o;
  snprintf(o.devices, sizeof o.devices, "%s", devices);
  wrn_train_hooks h = {build_model, NULL, NULL, NULL};
  wrn_parallel *p = NULL;
  uint8_t *img = NULL;
  int32_t *lab = NULL;
  double *ms = NULL, *cm = NULL, *busy = NULL;
  const char *what = "setting up";
  if (wrn_parallel_open(&p, &o, &h) != WRN_OK) goto fail;
  r->n = wrn_parallel_devices(p);
  if (r->n > 16) {
    wrn_parallel_free(p);
    snprintf(r->error, sizeof r->error, "at most 16 devices in a bench");
    return;
  }
  size_t per = 3 * 32 * 32;
  img = malloc((size_t)o.batch * per);
  lab = malloc((size_t)o.batch * sizeof *lab);
  ms = calloc((size_t)pb->steps, sizeof *ms);
  cm = calloc((size_t)pb->steps, sizeof *cm);
  busy = calloc((size_t)pb->steps * (size_t)r->n, sizeof *busy);
  if (!img || !lab || !ms || !cm || !busy) {
    snprintf(r->error, sizeof r->error, "out of host memory");
    goto done;
  }
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < (size_t)o.batch * per; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    img[i] = (uint8_t)(x >> 56);
  }
  for (int i = 0; i < o.batch; i++) lab[i] = i % 10;
  what = "warm-up";
  if (wrn_parallel_warmup(p) != WRN_OK) goto fail;
  wrn_sgd sgd = {0.01, 0.9, 5e-4, 1, 1};
  uint64_t step = 0;
  for (int i = 0; i < pb->warmup; i++, step++) {
    if (wrn_parallel_step(p, img, lab, &sgd, step, NULL, NULL) != WRN_OK) goto fail;
    sgd.first_step = 0;
  }
  what = "timed step";
  for (int i = 0; i < pb->steps; i++, step++) {
    double t0 = wrn_seconds();
    if (wrn_parallel_step(p, img, lab, &sgd, step, NULL, NULL) != WRN_OK) goto fail;
    sgd.first_step = 0;
    ms[i] = (wrn_seconds() - t0) * 1e3;
    cm[i] = wrn_parallel_combine_seconds(p) * 1e3;
    for (int d = 0; d < r->n; d++) busy[d * pb->steps + i] = wrn_parallel_busy(p, d);
  }
  for (int d = 0; d < r->n; d++) {
    r->dev[d] = *wrn_parallel_device(p, d);
    r->slice[d] = wrn_parallel_slice(p, d);
    double b = median(busy + d * pb->steps, pb->steps);
    r->dev_ips[d] = b > 0 ? r->slice[d] / b : 0;
  }
  r->ms_median = median(ms, pb->steps);
  r->combine_ms = median(cm, pb->steps);
  r->images_per_s = o.batch / (r->ms_median / 1e3);
  r->ok = 1;
  goto done;
fail:
  snprintf(r->error, sizeof r->error, "%s: %s", what, wrn_last_error());
done:
  free(img), free(lab), free(ms), free(cm), free(busy);
  wrn_parallel_free(p);
}

static int write_json(const char *path, const pbench *pb, const pres *all, const pres *single,
                      int n, double efficiency) {
  char tmp[1200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(stderr, "wrn bench: cannot write %s: %s\n", tmp, strerror(errno));
    return 1;
  }
  fprintf(f, "{\"kind\":\"data_parallel\",\"wrn_version\":\"%s\",\"model\":\"%s\",\"batch\":%d,"
          "\"steps\":%d,\"warmup\":%d,\"devices\":[", wrn_version(), pb->o.model, pb->o.batch,
          pb->steps, pb->warmup);
  for (int d = 0; d < all->n; d++)
    fprintf(f, "%s{\"id\":\"%d:%d\",\"name\":\"%s\",\"platform\":\"%s\",\"images\":%d,"
            "\"images_per_s\":%.3f,\"alone_images_per_s\":%.3f}", d ? "," : "",
            all->dev[d].platform_index, all->dev[d].device_index, all->dev[d].name,
            all->dev[d].platform_name, all->slice[d], all->dev_ips[d],
            d < n && single[d].ok ? single[d].images_per_s : 0.0);
  fprintf(f, "],\"ms_per_step\":%.3f,\"images_per_s\":%.3f,\"allreduce_ms\":%.3f,"
          "\"scaling_efficiency\":%.4f}\n", all->ms_median, all->images_per_s, all->combine_ms,
          efficiency);
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad || rename(tmp, path) != 0) {
    fprintf(stderr, "wrn bench: cannot write %s\n", path);
    remove(tmp);
    return 1;
  }
  return 0;
}

int cmd_bench_devices(int argc, char **argv) {
  pbench pb;
  memset(&pb, 0, sizeof pb);
  wrn_train_options_default(&pb.o);
  snprintf(pb.o.data, sizeof pb.o.data, "-");
  pb.o.classes = 10;
  pb.o.augment = 1;
  pb.steps = 10, pb.warmup = 3;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!(v = arg_value("bench", argc, argv, &i))) return 2;
    int rc = 0;
    if (!strcmp(a, "--steps")) rc = arg_int("bench", a, v, 1, 100000, &pb.steps);
    else if (!strcmp(a, "--warmup")) rc = arg_int("bench", a, v, 0, 100000, &pb.warmup);
    else if (!strcmp(a, "--json")) pb.json = v;
    else if (!strcmp(a, "--model") || !strcmp(a, "--batch") || !strcmp(a, "--devices") ||
             !strcmp(a, "--split") || !strcmp(a, "--min-per-device") ||
             !strcmp(a, "--conv-algo") || !strcmp(a, "--workspace-mib") ||
             !strcmp(a, "--dropout") || !strcmp(a, "--classes")) {
      if (!strcmp(a, "--model")) {
        wrn_model_spec s = {0, 0, 10, 0, 3, 32, 32, WRN_ARCH_WRN};
        if (wrn_model_parse(v, &s) != WRN_OK) {
          fprintf(stderr, "wrn bench: --model: %s\n", wrn_last_error());
          return 2;
        }
      }
      if (wrn_train_option_set(&pb.o, a, v) != WRN_OK) {
        fprintf(stderr, "wrn bench: %s\n", wrn_last_error());
        return 2;
      }
    } else {
      fprintf(stderr, "wrn bench: %s is not a flag of bench --devices (--model, --batch N, "
                      "--devices, --split, --min-per-device, --steps, --warmup, --json, "
                      "--conv-algo, --workspace-mib, --dropout, --classes)\n", a);
      return 2;
    }
    if (rc) return rc;
  }
  /* Every device alone at the whole batch, then all of them together. */
  pres *all = calloc(1, sizeof *all), *single = calloc(16, sizeof *single);
  if (!all || !single) {
    free(all), free(single);
    return 1;
  }
  fprintf(stderr, "bench: %s, batch %d over devices %s ...\n", pb.o.model, pb.o.batch,
          pb.o.devices);
  run_set(&pb, pb.o.devices, all);
  if (!all->ok) {
    fprintf(stderr, "wrn bench: devices %s: %s\n", pb.o.devices, all->error);
    free(all), free(single);
    return 1;
  }
  double sum = 0;
  int nsingle = all->n;
  pbench one = pb;
  one.o.split[0] = '\0';
  for (int d = 0; d < nsingle; d++) {
    char id[32];
    snprintf(id, sizeof id, "%d:%d", all->dev[d].platform_index, all->dev[d].device_index);
    fprintf(stderr, "bench: %s alone, batch %d ...\n", id, pb.o.batch);
    run_set(&one, id, &single[d]);
    if (single[d].ok) sum += single[d].images_per_s;
    else fprintf(stderr, "wrn bench: %s alone: %s\n", id, single[d].error);
  }
  double eff = sum > 0 ? all->images_per_s / sum : 0;
  printf("\n%s training, global batch %d, %d steps after %d warm-up (medians)\n", pb.o.model,
         pb.o.batch, pb.steps, pb.warmup);
  printf("%-5s %-34s %7s %12s %14s\n", "dev", "device", "images", "img/s here", "img/s alone");
  for (int d = 0; d < all->n; d++)
    printf("%d:%-3d %-34.34s %7d %12.1f %14.1f\n", all->dev[d].platform_index,
           all->dev[d].device_index, all->dev[d].name, all->slice[d], all->dev_ips[d],
           single[d].ok ? single[d].images_per_s : NAN);
  printf("together: %.1f ms/step, %.1f images/s; combining gradients adds %.2f ms/step after "
         "the slowest backward; scaling efficiency %.1f%% (throughput / sum of the devices "
         "alone, %.1f images/s)\n", all->ms_median, all->images_per_s, all->combine_ms,
         100 * eff, sum);
  int rc = pb.json ? write_json(pb.json, &pb, all, single, nsingle, eff) : 0;
  free(all), free(single);
  return rc;
}
