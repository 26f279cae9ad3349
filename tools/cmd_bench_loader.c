/* wrn bench-loader: JPEG decode + augmentation throughput of an image folder, per core. */
#include "args.h"
#include "cli.h"
#include "wrn_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn bench-loader --data DIR [--threads N[,N...]] [--images N] [--batch N]\n"
          "                        [--mode train|eval]\n"
          "Decodes the JPEGs of an image folder (DIR/<class>/<file>, PyTorch's ImageFolder\n"
          "layout) through the ImageNet pipeline into 224x224 batches, as the training loader\n"
          "does: train = RandomResizedCrop + flip (default), eval = resize 256 + centre crop.\n"
          "Prints images/s for each thread count (default: 1 and all cores) and per thread,\n"
          "with the files skipped (not JPEG, damaged). --images: how many (default 512, the\n"
          "folder cycled), --batch: images per call (256).\n");
}

int cmd_bench_loader(int argc, char **argv) {
  const char *data = NULL;
  int threads[8] = {1, 0}, nthreads = 0, images = 512, batch = 256, eval = 0;
  static const char *const modes[] = {"train", "eval", NULL};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (strncmp(a, "--", 2)) {
      fprintf(stderr, "wrn bench-loader: unexpected argument '%s'\n", a);
      return 2;
    }
    if (!(v = arg_value("bench-loader", argc, argv, &i))) return 2;
    int rc = 0;
    if (!strcmp(a, "--data")) data = v;
    else if (!strcmp(a, "--threads"))
      rc = arg_int_list("bench-loader", a, v, 1, 1024, threads, 8, &nthreads);
    else if (!strcmp(a, "--images")) rc = arg_int("bench-loader", a, v, 1, 1 << 24, &images);
    else if (!strcmp(a, "--batch")) rc = arg_int("bench-loader", a, v, 1, 4096, &batch);
    else if (!strcmp(a, "--mode")) rc = arg_choice("bench-loader", a, v, modes, &eval);
    else {
      fprintf(stderr, "wrn bench-loader: unknown flag '%s'\n", a);
      usage(stderr);
      return 2;
    }
    if (rc) return rc;
  }
  if (!data) {
    fprintf(stderr, "wrn bench-loader: --data DIR is needed\n");
    usage(stderr);
    return 2;
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (nthreads == 0) {
    threads[0] = 1, nthreads = 1;
    if (cores > 1) threads[nthreads++] = (int)cores;
  }
  wrn_imagefolder *f;
  if (wrn_imagefolder_open(&f, data) != WRN_OK) {
    cli_error("bench-loader", "--data");
    return 1;
  }
  wrn_image_pipeline p = wrn_image_pipeline_default(!eval);
  p.seed = 1;
  const size_t per = (size_t)3 * p.size * p.size, n = wrn_imagefolder_count(f);
  uint8_t *img = malloc((size_t)batch * per);
  int32_t *lab = malloc((size_t)batch * sizeof *lab);
  size_t *idx = malloc((size_t)batch * sizeof *idx);
  int rc = 0;
  if (!img || !lab || !idx) {
    fprintf(stderr, "wrn bench-loader: out of host memory\n");
    rc = 1;
  }
  printf("bench-loader: %s: %zu files in %d classes, %s pipeline to %dx%d, %d images, %ld "
         "cores\n", data, n, wrn_imagefolder_classes(f), eval ? "eval" : "train", p.size, p.size,
         images, cores);
  for (int t = 0; t < nthreads && !rc; t++) {
    wrn_image_skips sk;
    memset(&sk, 0, sizeof sk);
    size_t done = 0, kept_total = 0;
    double t0 = wrn_seconds();
    while (done < (size_t)images && !rc) {
      int b = (size_t)images - done < (size_t)batch ? (int)((size_t)images - done) : batch, kept;
      for (int i = 0; i < b; i++) idx[i] = (done + (size_t)i) % n;
      if (wrn_imagefolder_load(f, idx, b, &p, 0, threads[t], img, lab, NULL, &kept, &sk) != WRN_OK) {
        cli_error("bench-loader", "decoding");
        rc = 1;
      }
      done += (size_t)b;
      kept_total += (size_t)kept;
    }
    double s = wrn_seconds() - t0;
    if (rc) break;
    double ips = s > 0 ? (double)done / s : 0;
    printf("  %3d thread%s: %8.1f images/s, %7.1f images/s per thread (%zu decoded, %zu "
           "skipped)\n", threads[t], threads[t] == 1 ? " " : "s", ips, ips / threads[t],
           kept_total, sk.skipped);
    if (sk.skipped)
      printf("  first skipped: %s: %s\n", sk.first_path, sk.first_error);
  }
  free(img), free(lab), free(idx);
  wrn_imagefolder_free(f);
  return rc;
}
