/* Image folders on JPEGs encoded here with libjpeg-turbo: class and file order, the eval
 * pipeline (resize 256 + centre crop 224) against the analytic picture of a colour ramp, at
 * full size and through the scaled decode of a large picture, the RandomResizedCrop boxes'
 * ranges and reproducibility, greyscale and CMYK conversion, and threaded batches that skip
 * truncated and non-JPEG files with a count and the first path. Skips (77) when wrn was
 * built without libjpeg-turbo. */
#include "harness.h"
#include "wrn_io.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WRN_HAVE_TURBOJPEG

int main(void) {
  printf("SKIP: wrn was built without libjpeg-turbo (Debian: libturbojpeg0-dev), so there is "
         "no JPEG decoding to test\n");
  return 77;
}

#else

#include <turbojpeg.h>

static char root[256];

/* The ramp: R = 255 x / (w - 1), G = 255 y / (h - 1), B = 96. */
static double ramp(int c, double x, double y, int w, int h) {
  return c == 0 ? 255.0 * x / (w - 1) : c == 1 ? 255.0 * y / (h - 1) : 96.0;
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(data, 1, n, fp), n);
  fclose(fp);
}

/* Encodes pixels (format pf, w x h) as a JPEG at quality 95 into path; keeps the first
 * `keep` bytes when keep > 0 (a truncated file). */
static void write_jpeg(const char *path, const unsigned char *px, int w, int h, int pf,
                       int subsamp, long keep) {
  tjhandle tj = tjInitCompress();
  assert_non_null(tj);
  unsigned char *jpg = NULL;
  unsigned long size = 0;
  if (tjCompress2(tj, px, w, 0, h, pf, &jpg, &size, subsamp, 95, 0) != 0)
    fail_msg("tjCompress2: %s", tjGetErrorStr2(tj));
  write_file(path, jpg, keep > 0 && (unsigned long)keep < size ? (size_t)keep : size);
  tjFree(jpg);
  tjDestroy(tj);
}

static void write_ramp(const char *path, int w, int h, long keep) {
  unsigned char *px = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        px[((size_t)y * w + x) * 3 + c] = (unsigned char)lround(ramp(c, x, y, w, h));
  write_jpeg(path, px, w, h, TJPF_RGB, TJSAMP_444, keep);
  free(px);
}

static int setup(void **state) {
  (void)state;
  snprintf(root, sizeof root, "/tmp/wrn_test_imagefolder_XXXXXX");
  if (!mkdtemp(root)) return -1;
  char p[512];
  /* Made out of order: the reader sorts. */
  const char *classes[] = {"n03", "n01", "n02"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", root, classes[i]);
    mkdir(p, 0755);
  }
  snprintf(p, sizeof p, "%s/n01/b_ramp.JPEG", root);
  write_ramp(p, 300, 200, 0);
  snprintf(p, sizeof p, "%s/n01/a_big.JPEG", root);
  write_ramp(p, 2000, 1600, 0);
  /* Greyscale: a vertical ramp. */
  unsigned char *g = malloc(120 * 100);
  for (int y = 0; y < 100; y++)
    for (int x = 0; x < 120; x++) g[y * 120 + x] = (unsigned char)(40 + y * 2);
  snprintf(p, sizeof p, "%s/n02/grey.JPEG", root);
  write_jpeg(p, g, 120, 100, TJPF_GRAY, TJSAMP_GRAY, 0);
  free(g);
  /* CMYK: one colour. */
  unsigned char *k = malloc(64 * 64 * 4);
  for (int i = 0; i < 64 * 64; i++) k[4 * i] = 200, k[4 * i + 1] = 150, k[4 * i + 2] = 100, k[4 * i + 3] = 220;
  snprintf(p, sizeof p, "%s/n02/cmyk.JPEG", root);
  write_jpeg(p, k, 64, 64, TJPF_CMYK, TJSAMP_444, 0);
  free(k);
  /* Broken: truncated, text, a PNG signature. */
  snprintf(p, sizeof p, "%s/n03/a_truncated.JPEG", root);
  write_ramp(p, 300, 200, 1500);
  snprintf(p, sizeof p, "%s/n03/b_text.JPEG", root);
  write_file(p, "not an image\n", 13);
  snprintf(p, sizeof p, "%s/n03/c_ok.JPEG", root);
  write_ramp(p, 240, 320, 0);
  snprintf(p, sizeof p, "%s/n03/d.png", root);
  write_file(p, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
  snprintf(p, sizeof p, "%s/.hidden", root);
  mkdir(p, 0755);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  t_rm_tree(root);
  return 0;
}

static void test_layout(void **state) {
  (void)state;
  wrn_imagefolder *f;
  WT_OK(wrn_imagefolder_open(&f, root));
  assert_int_equal(wrn_imagefolder_classes(f), 3);
  assert_string_equal(wrn_imagefolder_class_name(f, 0), "n01");
  assert_string_equal(wrn_imagefolder_class_name(f, 2), "n03");
  assert_int_equal(wrn_imagefolder_count(f), 8);
  assert_string_equal(wrn_imagefolder_path(f, 0), "n01/a_big.JPEG");
  assert_string_equal(wrn_imagefolder_path(f, 1), "n01/b_ramp.JPEG");
  assert_string_equal(wrn_imagefolder_path(f, 2), "n02/cmyk.JPEG");
  assert_int_equal(wrn_imagefolder_label(f, 3), 1);
  assert_int_equal(wrn_imagefolder_label(f, 7), 2);
  wrn_imagefolder_free(f);
  char p[512];
  snprintf(p, sizeof p, "%s/n01", root);
  assert_int_not_equal(wrn_imagefolder_open(&f, p), WRN_OK); /* files, no class folders */
  assert_non_null(strstr(wrn_last_error(), "no class folders"));
  assert_int_not_equal(wrn_imagefolder_open(&f, "/nonexistent/wrn"), WRN_OK);
}

/* The eval pipeline of a w x h ramp against the ramp itself at the output pixels' centres
 * (a triangle filter keeps a linear function; JPEG at quality 95 moves values by a few
 * levels), away from the border where the filter is cut. */
static void check_eval_ramp(const char *name, int w, int h, double tol) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", root, name);
  wrn_jpeg *j;
  WT_OK(wrn_jpeg_new(&j));
  wrn_image_pipeline ev = wrn_image_pipeline_default(0);
  uint8_t *out = malloc(3 * 224 * 224);
  WT_OK(wrn_jpeg_load(j, p, &ev, 0, 0, out));
  double side = (w < h ? w : h) * 224.0 / 256.0, x0 = (w - side) / 2, y0 = (h - side) / 2;
  double worst = 0;
  for (int c = 0; c < 3; c++)
    for (int oy = 4; oy < 220; oy++)
      for (int ox = 4; ox < 220; ox++) {
        double x = x0 + (ox + 0.5) * side / 224 - 0.5, y = y0 + (oy + 0.5) * side / 224 - 0.5;
        double d = fabs(out[(size_t)c * 224 * 224 + (size_t)oy * 224 + ox] - ramp(c, x, y, w, h));
        if (d > worst) worst = d;
      }
  print_message("%s (%dx%d): eval crop within %.1f levels of the ramp\n", name, w, h, worst);
  if (worst > tol) fail_msg("%s: %.1f levels off the ramp (allowed %.1f)", name, worst, tol);
  free(out);
  wrn_jpeg_free(j);
}

static void test_eval_pipeline(void **state) {
  (void)state;
  check_eval_ramp("n01/b_ramp.JPEG", 300, 200, 4);
  check_eval_ramp("n01/a_big.JPEG", 2000, 1600, 4); /* decoded at 1/4 */
}

static void test_train_boxes(void **state) {
  (void)state;
  wrn_image_pipeline tr = wrn_image_pipeline_default(1);
  tr.seed = 5;
  int flips = 0, n = 2000;
  for (int i = 0; i < n; i++) {
    const int w = 500, h = 375;
    wrn_image_box b, b2;
    wrn_image_crop(&tr, w, h, 3, (uint64_t)i, &b);
    wrn_image_crop(&tr, w, h, 3, (uint64_t)i, &b2);
    assert_memory_equal(&b, &b2, sizeof b);
    assert_true(b.x >= 0 && b.y >= 0 && b.x + b.cw <= w && b.y + b.ch <= h);
    double frac = b.cw * b.ch / (w * h), r = b.cw / b.ch;
    /* The rounding of the sides moves the area and ratio a little past the draw's range. */
    if (frac < 0.07 || frac > 1.0 || r < 0.74 || r > 1.36)
      fail_msg("crop %d: area fraction %.3f, ratio %.3f", i, frac, r);
    flips += b.flip;
  }
  print_message("train crops: %d of %d flipped\n", flips, n);
  assert_true(flips > n / 2 - 120 && flips < n / 2 + 120);
  wrn_image_box a, b;
  wrn_image_crop(&tr, 500, 375, 3, 7, &a);
  wrn_image_crop(&tr, 500, 375, 4, 7, &b);
  assert_true(a.x != b.x || a.cw != b.cw || a.y != b.y);
  /* A train load decodes too (the crop of the ramp keeps its colours in range). */
  wrn_jpeg *j;
  WT_OK(wrn_jpeg_new(&j));
  uint8_t *out = malloc(3 * 224 * 224);
  char p[512];
  snprintf(p, sizeof p, "%s/n01/b_ramp.JPEG", root);
  WT_OK(wrn_jpeg_load(j, p, &tr, 0, 1, out));
  for (int i = 0; i < 224 * 224; i++) assert_true(abs(out[2 * 224 * 224 + i] - 96) <= 3);
  free(out);
  wrn_jpeg_free(j);
}

static void test_colour_conversions(void **state) {
  (void)state;
  wrn_jpeg *j;
  WT_OK(wrn_jpeg_new(&j));
  wrn_image_pipeline ev = wrn_image_pipeline_default(0);
  uint8_t *out = malloc(3 * 224 * 224);
  char p[512];
  snprintf(p, sizeof p, "%s/n02/grey.JPEG", root);
  WT_OK(wrn_jpeg_load(j, p, &ev, 0, 0, out));
  for (int i = 0; i < 224 * 224; i++) {
    assert_int_equal(out[i], out[224 * 224 + i]);
    assert_int_equal(out[i], out[2 * 224 * 224 + i]);
  }
  snprintf(p, sizeof p, "%s/n02/cmyk.JPEG", root);
  WT_OK(wrn_jpeg_load(j, p, &ev, 0, 0, out));
  /* PIL: R = 255 - C - K on the un-inverted values; on the stored ones c + k - 255. */
  const int want[3] = {200 + 220 - 255, 150 + 220 - 255, 100 + 220 - 255};
  for (int c = 0; c < 3; c++) {
    int v = out[(size_t)c * 224 * 224 + 112 * 224 + 112];
    if (abs(v - want[c]) > 4) fail_msg("CMYK channel %d: %d, want %d", c, v, want[c]);
  }
  snprintf(p, sizeof p, "%s/n03/b_text.JPEG", root);
  assert_int_equal(wrn_jpeg_load(j, p, &ev, 0, 0, out), WRN_STATUS_FORMAT);
  assert_non_null(strstr(wrn_last_error(), "b_text.JPEG"));
  snprintf(p, sizeof p, "%s/n03/a_truncated.JPEG", root);
  assert_int_equal(wrn_jpeg_load(j, p, &ev, 0, 0, out), WRN_STATUS_FORMAT);
  print_message("truncated: %s\n", wrn_last_error());
  free(out);
  wrn_jpeg_free(j);
}

/* A file cut inside its header must not spoil the decoder for the next file: libjpeg-turbo
 * 2.1 then reported success on the next header without giving its size (found by
 * tests/fuzz/fuzz_jpeg). Same decoder: a good file, the cut one, the good one again. */
static void test_decoder_after_bad_header(void **state) {
  (void)state;
  wrn_jpeg *j;
  WT_OK(wrn_jpeg_new(&j));
  wrn_image_pipeline ev = wrn_image_pipeline_default(0);
  const size_t per = 3 * 224 * 224;
  uint8_t *a = malloc(per), *b = malloc(per);
  assert_non_null(a);
  assert_non_null(b);
  char good[512], cut[512];
  snprintf(good, sizeof good, "%s/n03/c_ok.JPEG", root);
  snprintf(cut, sizeof cut, "%s/.hidden/cut_header.JPEG", root);
  write_ramp(cut, 300, 200, 200); /* ends inside the Huffman tables */
  WT_OK(wrn_jpeg_load(j, good, &ev, 0, 0, a));
  for (int k = 0; k < 3; k++) {
    assert_int_equal(wrn_jpeg_load(j, cut, &ev, 0, 0, b), WRN_STATUS_FORMAT);
    assert_non_null(strstr(wrn_last_error(), "cut_header.JPEG"));
  }
  memset(b, 0, per);
  WT_OK(wrn_jpeg_load(j, good, &ev, 0, 0, b));
  assert_memory_equal(a, b, per);
  free(a), free(b);
  wrn_jpeg_free(j);
}

static void test_batches(void **state) {
  (void)state;
  wrn_imagefolder *f;
  WT_OK(wrn_imagefolder_open(&f, root));
  size_t n = wrn_imagefolder_count(f);
  size_t idx[16];
  for (size_t i = 0; i < n; i++) idx[i] = i;
  wrn_image_pipeline ev = wrn_image_pipeline_default(0);
  uint8_t *img = malloc(n * 3 * 224 * 224), *one = malloc(3 * 224 * 224);
  int32_t labels[16];
  int kept = 0;
  wrn_image_skips sk;
  memset(&sk, 0, sizeof sk);
  WT_OK(wrn_imagefolder_load(f, idx, (int)n, &ev, 0, 3, img, labels, NULL, &kept, &sk));
  print_message("batch: %d of %zu kept, %zu skipped, first %s: %s\n", kept, n, sk.skipped,
                sk.first_path, sk.first_error);
  assert_int_equal(kept, 5);
  assert_int_equal(sk.skipped, 3);
  assert_non_null(strstr(sk.first_path, "n03/a_truncated.JPEG"));
  const int32_t want[5] = {0, 0, 1, 1, 2};
  for (int i = 0; i < 5; i++) assert_int_equal(labels[i], want[i]);
  /* Each kept slot is the image decoded alone (the last one is n03/c_ok.JPEG). */
  wrn_jpeg *j;
  WT_OK(wrn_jpeg_new(&j));
  char p[512];
  snprintf(p, sizeof p, "%s/n03/c_ok.JPEG", root);
  WT_OK(wrn_jpeg_load(j, p, &ev, 0, 6, one));
  assert_memory_equal(img + 4 * (size_t)3 * 224 * 224, one, 3 * 224 * 224);
  wrn_jpeg_free(j);
  /* Skips accumulate across calls; the first path stays. */
  WT_OK(wrn_imagefolder_load(f, idx + 5, 2, &ev, 0, 1, img, labels, NULL, &kept, &sk));
  assert_int_equal(kept, 1);
  assert_int_equal(sk.skipped, 4);
  assert_non_null(strstr(sk.first_path, "a_truncated"));
  idx[0] = n;
  assert_int_equal(wrn_imagefolder_load(f, idx, 1, &ev, 0, 1, img, labels, NULL, &kept, &sk),
                   WRN_STATUS_INVALID_ARGUMENT);
  free(img), free(one);
  wrn_imagefolder_free(f);
}

/* wrn train and wrn eval on DIR/train and DIR/val image folders (one file broken). */
static void test_train_folders(void **state) {
  (void)state;
  const char *cli = getenv("WRN_CLI");
  if (!cli) skip();
  char d[600], p[900], cmd[4096];
  snprintf(d, sizeof d, "%s.imagenet", root); /* beside root, which is a folder of its own */
  t_rm_tree(d);
  assert_int_equal(mkdir(d, 0755), 0);
  const char *splits[2] = {"train", "val"};
  for (int sp = 0; sp < 2; sp++) {
    snprintf(p, sizeof p, "%s/%s", d, splits[sp]);
    mkdir(p, 0755);
    for (int c = 0; c < 2; c++) {
      snprintf(p, sizeof p, "%s/%s/class%d", d, splits[sp], c);
      mkdir(p, 0755);
      for (int i = 0; i < (sp ? 2 : 4); i++) {
        snprintf(p, sizeof p, "%s/%s/class%d/img%d.JPEG", d, splits[sp], c, i);
        if (sp == 0 && c == 1 && i == 3) write_file(p, "broken", 6);
        else write_ramp(p, 64 + 16 * i + c, 48 + 8 * i, 0);
      }
    }
  }
  char run[700];
  snprintf(run, sizeof run, "%s/run", d);
  snprintf(cmd, sizeof cmd, "%s train --data %s --model wrn-10-1 --image-size 32 --batch 4 "
           "--epochs 1 --loader-threads 2 --out %s > %s.out 2>&1", cli, d, run, run);
  int rc = system(cmd);
  snprintf(p, sizeof p, "%s.out", run);
  FILE *fp = fopen(p, "rb");
  char out[1 << 15] = "";
  size_t n = fp ? fread(out, 1, sizeof out - 1, fp) : 0;
  if (fp) fclose(fp);
  out[n] = '\0';
  if (rc != 0) fail_msg("%s exited %d:\n%s", cmd, rc, out);
  if (!strstr(out, "8 training and 4 test images")) fail_msg("image counts:\n%s", out);
  snprintf(p, sizeof p, "%s/log.jsonl", run);
  fp = fopen(p, "rb");
  assert_non_null(fp);
  char log[1 << 15];
  n = fread(log, 1, sizeof log - 1, fp);
  log[n] = '\0';
  fclose(fp);
  if (!strstr(log, "\"dataset\":\"imagefolder\"") || !strstr(log, "\"image_size\":32") ||
      !strstr(log, "\"test_acc\""))
    fail_msg("log.jsonl:\n%s", log);
  snprintf(cmd, sizeof cmd, "%s eval --checkpoint %s/last.safetensors --data %s > %s.eval 2>&1",
           cli, run, d, run);
  rc = system(cmd);
  snprintf(p, sizeof p, "%s.eval", run);
  fp = fopen(p, "rb");
  n = fp ? fread(out, 1, sizeof out - 1, fp) : 0;
  if (fp) fclose(fp);
  out[n] = '\0';
  if (rc != 0 || !strstr(out, "accuracy")) fail_msg("%s exited %d:\n%s", cmd, rc, out);
  /* wrn bench-loader over the training folder: 16 images (the folder twice), one file bad. */
  snprintf(cmd, sizeof cmd, "%s bench-loader --data %s/train --images 16 --threads 1,2 > %s.bl "
           "2>&1", cli, d, run);
  rc = system(cmd);
  snprintf(p, sizeof p, "%s.bl", run);
  fp = fopen(p, "rb");
  n = fp ? fread(out, 1, sizeof out - 1, fp) : 0;
  if (fp) fclose(fp);
  out[n] = '\0';
  if (rc != 0 || !strstr(out, "images/s per thread (14 decoded, 2 skipped)") ||
      !strstr(out, "first skipped: ") || !strstr(out, "class1/img3.JPEG"))
    fail_msg("%s exited %d:\n%s", cmd, rc, out);
  snprintf(cmd, sizeof cmd, "%s bench-loader --images 4 > /dev/null 2>&1", cli);
  rc = system(cmd);
  assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 2); /* no --data */
  t_rm_tree(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train_folders),
      cmocka_unit_test(test_layout), cmocka_unit_test(test_eval_pipeline),
      cmocka_unit_test(test_train_boxes), cmocka_unit_test(test_colour_conversions),
      cmocka_unit_test(test_decoder_after_bad_header), cmocka_unit_test(test_batches)};
  return WT_RUN_GROUP("imagefolder", tests, setup, teardown);
}

#endif
