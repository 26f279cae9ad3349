/* Augmentation and normalisation against a naive host reference for the same keys, in float
 * and double; the statistics of flips and offsets; reproducibility per (seed, step); augment
 * off equals plain normalisation; reflection on a 4x4 image with known values; cutout (against
 * the reference, uniform centres, clipped squares); refused arguments. */
#include "harness.h"
#include "ref_augment.h"

#include <math.h>
#include <string.h>

static const wrn_augment cifar = {1, 4, {125.3f, 123.0f, 113.9f}, {63.0f, 62.1f, 66.7f},
                                  0x0123456789abcdefull, 0x100000007ull, 0};

static uint8_t *random_images(size_t bytes, uint64_t seed) {
  uint8_t *img = malloc(bytes ? bytes : 1);
  double *r = malloc((bytes ? bytes : 1) * sizeof *r);
  assert_true(img && r);
  t_rand(r, bytes, 0, 256, seed);
  for (size_t i = 0; i < bytes; i++) img[i] = (uint8_t)(r[i] < 255 ? r[i] : 255);
  free(r);
  return img;
}

static cl_mem upload_bytes(wrn_ctx *ctx, const uint8_t *b, size_t n) {
  cl_mem m;
  WT_OK(wrn_alloc(ctx, n, "images", &m));
  WT_OK(wrn_write_bytes(ctx, m, 0, b, n));
  return m;
}

/* Runs the device on images stored `boff` bytes into their buffer and writing `yoff` reals
 * into the output, and returns y[n][c][h][w] as doubles (malloc'ed). */
static double *run_device(wrn_ctx *ctx, const uint8_t *img, int n, int c, int h, int w,
                          const wrn_augment *a, size_t boff, size_t yoff) {
  size_t cnt = (size_t)n * c * h * w;
  uint8_t *pad = malloc(boff + cnt);
  double *y = malloc((yoff + cnt) * sizeof *y);
  assert_true(pad && y);
  memset(pad, 0xAB, boff);
  memcpy(pad + boff, img, cnt);
  cl_mem I = upload_bytes(ctx, pad, boff + cnt), Y = t_zeros(ctx, yoff + cnt);
  wrn_mem ym = {Y, yoff};
  WT_OK(wrn_augment_forward(ctx, ym, I, boff, n, c, h, w, a));
  t_download(ctx, y, Y, yoff + cnt);
  memmove(y, y + yoff, cnt * sizeof *y);
  wrn_release(&I), wrn_release(&Y);
  free(pad);
  return y;
}

/* Pixels and means are exact, so a wrong pixel is off by >= 1/std ~ 0.015. In float the
 * kernel rounds pixel - mean once and divides (OpenCL allows 2.5 ulp for a float division),
 * so outputs of size <= 4 differ by ~1e-6 at most: atol 1e-6 + rtol 1e-6. Double: one
 * rounding of each, 1e-14. */
static t_tol aug_tol(wrn_ctx *ctx) {
  return t_tol_for(ctx, (t_tol){1e-6, 1e-6}, (t_tol){1e-14, 1e-14});
}

static double worst[2]; /* largest |y - ref| per real type */

static void vs_ref_case(wrn_ctx *ctx, int n, int c, int h, int w, int pad, int augment,
                        size_t boff, size_t yoff, int cutout) {
  size_t cnt = (size_t)n * c * h * w;
  wrn_augment a = cifar;
  a.pad = pad;
  a.augment = augment;
  a.cutout = cutout;
  a.step += (uint64_t)n * 131 + (uint64_t)h;
  uint8_t *img = random_images(cnt, 40 + cnt);
  double *ref = malloc(cnt * sizeof *ref);
  assert_non_null(ref);
  ref_augment(ref, img, n, c, h, w, &a);
  double *got = run_device(ctx, img, n, c, h, w, &a, boff, yoff);
  t_tol tol = aug_tol(ctx);
  t_check_close("augment vs reference", got, ref, cnt, tol.atol, tol.rtol);
  int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  double d = t_max_abs_diff(got, ref, cnt);
  if (d > worst[dt]) worst[dt] = d;
  free(img), free(ref), free(got);
}

static void test_vs_ref(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    vs_ref_case(ctx, 7, 3, 32, 32, 4, 1, 0, 0, 0);   /* CIFAR */
    vs_ref_case(ctx, 1, 1, 5, 7, 2, 1, 3, 1, 0);     /* batch 1, one channel, odd sizes */
    vs_ref_case(ctx, 3, 2, 9, 6, 5, 1, 17, 5, 0);    /* pad = w - 1 */
    vs_ref_case(ctx, 2, 3, 17, 19, 0, 1, 0, 2, 0);   /* flips only */
    vs_ref_case(ctx, 5, 3, 11, 13, 4, 0, 1, 0, 0);   /* augmentation off */
    vs_ref_case(ctx, 16, 3, 32, 32, 4, 1, 0, 3, 16); /* the paper's CIFAR-10 cutout */
    vs_ref_case(ctx, 9, 2, 9, 6, 2, 1, 5, 0, 5);     /* odd side, clipped at the borders */
    vs_ref_case(ctx, 6, 3, 11, 13, 4, 0, 0, 1, 4);   /* cutout without flip + crop */
    vs_ref_case(ctx, 3, 1, 7, 5, 1, 1, 0, 0, 40);    /* a square larger than the image */
    print_message("  %s: largest |y - ref| %.3g\n", dt ? "double" : "float", worst[dt]);
  }
}

/* Flips at ~50%, every offset 0..8 drawn, offsets in range. */
static void test_param_statistics(void **state) {
  (void)state;
  enum { N = 10000 };
  long flips = 0, cy[9] = {0}, cx[9] = {0};
  for (int i = 0; i < N; i++) {
    int f, dy, dx;
    wrn_augment_params(&cifar, i, &f, &dy, &dx);
    assert_true(f == 0 || f == 1);
    assert_true(dy >= 0 && dy <= 8 && dx >= 0 && dx <= 8);
    flips += f, cy[dy]++, cx[dx]++;
  }
  /* Binomial(10000, 1/2): sd 50, so +-300 is 6 sd. Each offset: mean 1111, sd 31, +-200. */
  print_message("  flips %ld of %d\n", flips, N);
  assert_true(flips > N / 2 - 300 && flips < N / 2 + 300);
  for (int v = 0; v < 9; v++) {
    assert_true(labs(cy[v] - N / 9) < 200);
    assert_true(labs(cx[v] - N / 9) < 200);
  }
  /* Off: no flip and no offset, whatever pad says. */
  wrn_augment off = cifar;
  off.augment = 0;
  for (int i = 0; i < 50; i++) {
    int f = 9, dy = 9, dx = 9;
    wrn_augment_params(&off, i, &f, &dy, &dx);
    assert_true(f == 0 && dy == 0 && dx == 0);
  }
}

/* Cutout centres uniform over the image, the square's side exactly N where it fits, and
 * nothing cut with cutout 0. */
static void test_cutout_statistics(void **state) {
  (void)state;
  enum { N = 10000, H = 32, W = 32, SIDE = 16 };
  wrn_augment a = cifar;
  a.cutout = SIDE;
  long cy[H] = {0}, cx[W] = {0};
  for (int i = 0; i < N; i++) {
    int y0, x0;
    assert_int_equal(wrn_augment_cutout(&a, i, H, W, &y0, &x0), 1);
    int y = y0 + SIDE / 2, x = x0 + SIDE / 2;
    assert_true(y >= 0 && y < H && x >= 0 && x < W);
    cy[y]++, cx[x]++;
  }
  /* Each centre row or column: mean 312.5, sd 17.4; +-110 is over 6 sd. */
  for (int v = 0; v < H; v++) assert_true(labs(cy[v] - N / H) < 110);
  for (int v = 0; v < W; v++) assert_true(labs(cx[v] - N / W) < 110);
  /* On the device: a mid-grey image normalised to nonzero values, so the zeros are the cut
   * pixels; each sample's count is the square clipped to the image. */
  wrn_ctx *ctx = t_ctx32();
  enum { B = 64 };
  uint8_t *img = malloc((size_t)B * H * W);
  assert_non_null(img);
  memset(img, 200, (size_t)B * H * W);
  a.augment = 0;
  double *y = run_device(ctx, img, B, 1, H, W, &a, 0, 0);
  for (int i = 0; i < B; i++) {
    int y0, x0;
    wrn_augment_cutout(&a, i, H, W, &y0, &x0);
    int rows = (y0 + SIDE < H ? y0 + SIDE : H) - (y0 > 0 ? y0 : 0);
    int cols = (x0 + SIDE < W ? x0 + SIDE : W) - (x0 > 0 ? x0 : 0);
    long zeros = 0;
    for (int p = 0; p < H * W; p++) zeros += y[(size_t)i * H * W + p] == 0;
    if (zeros != (long)rows * cols)
      fail_msg("sample %d: %ld pixels cut, want %d x %d", i, zeros, rows, cols);
  }
  free(y);
  a.cutout = 0;
  assert_int_equal(wrn_augment_cutout(&a, 0, H, W, NULL, NULL), 0);
  y = run_device(ctx, img, B, 1, H, W, &a, 0, 0);
  for (size_t p = 0; p < (size_t)B * H * W; p++) assert_true(y[p] != 0);
  free(y), free(img);
}

static int same_bits(const double *a, const double *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* Same (seed, step) gives the same batch; another step or seed another one. */
static void test_reproducible(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  const int n = 16, c = 3, h = 32, w = 32;
  size_t cnt = (size_t)n * c * h * w;
  uint8_t *img = random_images(cnt, 9);
  wrn_augment a = cifar;
  double *y1 = run_device(ctx, img, n, c, h, w, &a, 0, 0);
  double *y2 = run_device(ctx, img, n, c, h, w, &a, 0, 0);
  assert_true(same_bits(y1, y2, cnt));
  a.step++;
  double *y3 = run_device(ctx, img, n, c, h, w, &a, 0, 0);
  assert_false(same_bits(y1, y3, cnt));
  a = cifar;
  a.seed ^= 1ull << 40; /* the seed's high word matters too */
  double *y4 = run_device(ctx, img, n, c, h, w, &a, 0, 0);
  assert_false(same_bits(y1, y4, cnt));
  /* ... and the draws of a different step differ for most samples, not only one. */
  int differ = 0;
  wrn_augment b = cifar;
  b.step++;
  for (int i = 0; i < n; i++) {
    int f1, y_1, x1, f2, y_2, x2;
    wrn_augment_params(&cifar, i, &f1, &y_1, &x1);
    wrn_augment_params(&b, i, &f2, &y_2, &x2);
    differ += f1 != f2 || y_1 != y_2 || x1 != x2;
  }
  assert_true(differ >= n / 2);
  free(img), free(y1), free(y2), free(y3), free(y4);
}

/* Augment off: exactly (pixel - mean) / std, checked directly, not through ref_augment. */
static void test_off_is_normalisation(void **state) {
  (void)state;
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx((wrn_dtype)dt);
    if (!ctx) continue;
    const int n = 3, c = 3, h = 8, w = 5;
    size_t cnt = (size_t)n * c * h * w;
    uint8_t *img = random_images(cnt, 21);
    wrn_augment a = cifar;
    a.augment = 0;
    a.pad = 100; /* ignored when off */
    double *got = run_device(ctx, img, n, c, h, w, &a, 0, 0), *want = malloc(cnt * sizeof *want);
    assert_non_null(want);
    for (size_t e = 0; e < cnt; e++) {
      int ch = (int)(e / ((size_t)h * w) % c);
      want[e] = (img[e] - (double)a.mean[ch]) / (double)a.std[ch];
    }
    t_tol tol = aug_tol(ctx);
    t_check_close("normalisation", got, want, cnt, tol.atol, tol.rtol);
    free(img), free(got), free(want);
  }
}

/* A 4x4 image with pixel (y, x) = 10 y + x + 1, pad 2, mean 0, std 1: the output holds source
 * pixels, checked against numpy.pad(..., 2, mode='reflect') written out by hand:
 * padded index 0..7 -> source row/column 2 1 0 1 2 3 2 1. */
static void test_reflection_known(void **state) {
  (void)state;
  static const int src_of[8] = {2, 1, 0, 1, 2, 3, 2, 1};
  wrn_ctx *ctx = t_ctx32();
  enum { N = 200, H = 4, W = 4 };
  uint8_t *img = malloc(N * H * W);
  assert_non_null(img);
  for (int i = 0; i < N; i++)
    for (int yy = 0; yy < H; yy++)
      for (int xx = 0; xx < W; xx++) img[(i * H + yy) * W + xx] = (uint8_t)(10 * yy + xx + 1);
  wrn_augment a = {1, 2, {0, 0, 0}, {1, 1, 1}, 77, 3, 0};
  double *got = run_device(ctx, img, N, 1, H, W, &a, 0, 0);
  int seen[2][5][5] = {{{0}}};
  for (int i = 0; i < N; i++) {
    int f, dy, dx;
    wrn_augment_params(&a, i, &f, &dy, &dx);
    seen[f][dy][dx] = 1;
    for (int oy = 0; oy < H; oy++)
      for (int ox = 0; ox < W; ox++) {
        int sy = src_of[oy + dy], sx = src_of[ox + dx];
        if (f) sx = W - 1 - sx; /* columns of the flipped image */
        double want = 10 * sy + sx + 1, g = got[(i * H + oy) * W + ox];
        if (g != want)
          fail_msg("sample %d (flip %d, dy %d, dx %d) pixel (%d,%d): got %g, want %g", i, f, dy,
                   dx, oy, ox, g, want);
      }
  }
  /* 200 draws cover most of the 50 (flip, dy, dx) cases; every corner offset must appear. */
  int cases = 0;
  for (int f = 0; f < 2; f++)
    for (int dy = 0; dy < 5; dy++)
      for (int dx = 0; dx < 5; dx++) cases += seen[f][dy][dx];
  print_message("  %d of 50 (flip, dy, dx) cases seen\n", cases);
  assert_true(cases >= 40);
  assert_true((seen[0][0][0] | seen[1][0][0]) && (seen[0][4][4] | seen[1][4][4]));
  free(img), free(got);
}

static void expect_refused(wrn_status s, const char *word) {
  assert_int_equal(s, WRN_STATUS_INVALID_ARGUMENT);
  assert_non_null(strstr(wrn_last_error(), "augment_forward"));
  if (word && !strstr(wrn_last_error(), word))
    fail_msg("message \"%s\" does not name %s", wrn_last_error(), word);
}

static void test_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  uint8_t bytes[4 * 3 * 8 * 8] = {0};
  cl_mem I = upload_bytes(ctx, bytes, sizeof bytes), Y = t_zeros(ctx, sizeof bytes);
  wrn_mem y = t_mem(Y), none = {NULL, 0};
  wrn_augment a = cifar, b;
  WT_OK(wrn_augment_forward(ctx, y, I, 0, 4, 3, 8, 8, &a));
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 1, 4, 8, 8, &a), "c = 4");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 1, 0, 8, 8, &a), "c = 0");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 0, 3, 8, 8, &a), "n = 0");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 0, 8, &a), "h = 0");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 4, 16, &a), "pad = 4");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 16, 4, &a), "pad = 4");
  b = a, b.pad = -1;
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 8, 8, &b), "pad = -1");
  b = a, b.std[1] = 0;
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 8, 8, &b), "std");
  b = a, b.cutout = -1;
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 8, 8, &b), "cutout");
  expect_refused(wrn_augment_forward(ctx, none, I, 0, 4, 3, 8, 8, &a), "NULL");
  expect_refused(wrn_augment_forward(ctx, y, NULL, 0, 4, 3, 8, 8, &a), "NULL");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 4, 3, 8, 8, NULL), "NULL");
  /* Past the end of the image buffer: an offset counted in reals or a batch too large. */
  expect_refused(wrn_augment_forward(ctx, y, I, 1, 4, 3, 8, 8, &a), "bytes");
  expect_refused(wrn_augment_forward(ctx, y, I, 0, 5, 3, 8, 8, &a), "bytes");
  /* Augmentation off ignores pad, so a pad larger than the image is fine then. */
  b = a, b.augment = 0, b.pad = 100;
  WT_OK(wrn_augment_forward(ctx, y, I, 0, 4, 3, 8, 8, &b));
  WT_OK(wrn_ctx_finish(ctx));
  wrn_release(&I), wrn_release(&Y);
}

static int teardown(void **state) {
  (void)state;
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_param_statistics),
      cmocka_unit_test(test_vs_ref),
      cmocka_unit_test(test_cutout_statistics),
      cmocka_unit_test(test_reproducible),
      cmocka_unit_test(test_off_is_normalisation),
      cmocka_unit_test(test_reflection_known),
      cmocka_unit_test(test_bad_args),
  };
  return WT_RUN_GROUP("augment", tests, NULL, teardown);
}
