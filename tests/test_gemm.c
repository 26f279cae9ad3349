/* wrn_gemm: the four forms (A B, A^T B, A B^T, A^T B^T) against a naive double reference in
 * float and double, through our kernels (WRN_GEMM=own), CLBlast (WRN_GEMM=clblast) and the
 * timed choice (auto); sizes that are not multiples of any tile, padded leading dimensions
 * and element offsets, alpha/beta with beta = 0 over NaN, identical bits on a rerun, the
 * profile's FLOP count, and invalid arguments refused. */
#include "harness.h"
#include "ref_gemm.h"

#include <clblast_c.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Float: a sum of k products of values in [-1, 1] has a rounding error of at most about
 * k * eps * sum|terms| with eps = 6e-8 for a sequential sum; atol = 3e-7 * k (5 eps per
 * term) covers it with room for the vector lanes' different summation order, rtol 1e-6 the
 * final scaling by alpha and the beta term. Double: 1e-15 * k is about 9 eps per term with
 * eps = 1.1e-16, rtol 1e-12. */
static t_tol tol_for(wrn_ctx *ctx, size_t k) {
  return t_tol_for(ctx, (t_tol){3e-7 * (double)k + 1e-6, 1e-6},
                   (t_tol){1e-15 * (double)k + 1e-14, 1e-12});
}

typedef struct gshape {
  size_t m, n, k;
} gshape;

/* Tiles are 6 x 64 (NN/TN, float), 6 x 32 (double) and 4 x 6 with 16- or 8-wide vectors
 * along k (NT): these cover single elements, ragged edges on every side, exact tiles, k
 * below one vector and a long reduction with a tail. */
static const gshape shapes[] = {{1, 1, 1},    {17, 33, 9},  {64, 1000, 144}, {100, 7, 300},
                                {12, 64, 16}, {9, 31, 17},  {3, 5, 1000},    {33, 65, 3},
                                {16, 4096, 27}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static double largest_err[2]; /* [dtype] */

static void set_mode(const char *mode) {
  if (mode) setenv("WRN_GEMM", mode, 1);
  else unsetenv("WRN_GEMM");
}

/* One GEMM on the device vs the reference. pad adds to every leading dimension and off is
 * the element offset of every operand's view; nan_c seeds C with NaN (beta must be 0). */
static void gemm_case(wrn_ctx *ctx, int ta, int tb, const gshape *s, double alpha, double beta,
                      size_t pad, size_t off, int nan_c, uint64_t seed) {
  const size_t m = s->m, n = s->n, k = s->k;
  const size_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  const size_t na = off + (ta ? k : m) * lda, nb = off + (tb ? n : k) * ldb,
               nc = off + m * ldc;
  double *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c),
         *ref = malloc(nc * sizeof *ref), *got = malloc(nc * sizeof *got);
  t_rand(a, na, -1, 1, seed), t_rand(b, nb, -1, 1, seed + 1), t_rand(c, nc, -1, 1, seed + 2);
  t_round(ctx, a, na), t_round(ctx, b, nb), t_round(ctx, c, nc);
  memcpy(ref, c, nc * sizeof *c);
  ref_gemm(ta, tb, m, n, k, alpha, a + off, lda, b + off, ldb, beta, ref + off, ldc);
  cl_mem A = t_upload(ctx, a, na), B = t_upload(ctx, b, nb), C = t_upload(ctx, c, nc);
  if (nan_c) {
    /* Only the matrix's elements: the padding must keep its values. */
    for (size_t i = 0; i < m; i++) WT_OK(wrn_fill(ctx, (wrn_mem){C, off + i * ldc}, NAN, n));
  }
  wrn_mem ma = {A, off}, mb = {B, off}, mc = {C, off};
  WT_OK(wrn_gemm(ctx, WRN_CAT_OTHER, ta, tb, m, n, k, alpha, ma, lda, mb, ldb, beta, mc, ldc));
  t_download(ctx, got, C, nc);
  char what[160];
  snprintf(what, sizeof what, "gemm %s%s %zux%zux%zu alpha %g beta %g pad %zu off %zu%s (%s)",
           ta ? "T" : "N", tb ? "T" : "N", m, n, k, alpha, beta, pad, off,
           nan_c ? " over NaN" : "", getenv("WRN_GEMM") ? getenv("WRN_GEMM") : "auto");
  t_tol tol = tol_for(ctx, k);
  t_check_close(what, got, ref, nc, tol.atol, tol.rtol);
  const double d = t_max_abs_diff(got, ref, nc);
  const int dt = wrn_ctx_dtype(ctx) == WRN_F64;
  if (d > largest_err[dt]) largest_err[dt] = d;
  wrn_release(&A), wrn_release(&B), wrn_release(&C);
  free(a), free(b), free(c), free(ref), free(got);
}

static void run_mode(const char *mode, size_t nshapes) {
  set_mode(mode);
  for (int dt = 0; dt < 2; dt++) {
    wrn_ctx *ctx = t_ctx(dt ? WRN_F64 : WRN_F32);
    if (!ctx) continue;
    for (size_t i = 0; i < nshapes; i++)
      for (int form = 0; form < 4; form++) {
        const int ta = form & 1, tb = form >> 1;
        const uint64_t seed = 1000 * i + 10 * (uint64_t)form;
        gemm_case(ctx, ta, tb, &shapes[i], 1.0, 0.0, 0, 0, 1, seed);
        gemm_case(ctx, ta, tb, &shapes[i], -0.75, 0.5, i % 2 ? 3 : 1, i % 3 ? 7 : 0, 0,
                  seed + 5);
      }
  }
  set_mode(NULL);
}

static void test_own(void **state) {
  (void)state;
  run_mode("own", NSHAPES);
}

/* CLBlast compiles per routine and shape class, slowly on a CPU: fewer shapes. */
static void test_clblast(void **state) {
  (void)state;
  run_mode("clblast", 4);
}

static void test_auto(void **state) {
  (void)state;
  run_mode("auto", 4);
  run_mode(NULL, 4); /* the default is auto; the shapes are now cached choices */
}

/* The reduction order is fixed: a rerun gives the same bits. */
static void test_deterministic(void **state) {
  (void)state;
  set_mode("own");
  wrn_ctx *ctx = t_ctx32();
  const size_t m = 19, n = 70, k = 333;
  double *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b),
         *g1 = malloc(m * n * sizeof *g1), *g2 = malloc(m * n * sizeof *g2);
  t_rand(a, m * k, -1, 1, 5), t_rand(b, k * n, -1, 1, 6);
  cl_mem A = t_upload(ctx, a, m * k), B = t_upload(ctx, b, k * n), C = t_zeros(ctx, m * n);
  for (int form = 0; form < 3; form++) {
    const int ta = form == 1, tb = form == 2;
    const size_t lda = ta ? m : k, ldb = tb ? k : n;
    WT_OK(wrn_gemm(ctx, WRN_CAT_OTHER, ta, tb, m, n, k, 1.0, t_mem(A), lda, t_mem(B), ldb, 0.0,
                   t_mem(C), n));
    t_download(ctx, g1, C, m * n);
    WT_OK(wrn_gemm(ctx, WRN_CAT_OTHER, ta, tb, m, n, k, 1.0, t_mem(A), lda, t_mem(B), ldb, 0.0,
                   t_mem(C), n));
    t_download(ctx, g2, C, m * n);
    assert_memory_equal(g1, g2, m * n * sizeof *g1);
  }
  wrn_release(&A), wrn_release(&B), wrn_release(&C);
  free(a), free(b), free(g1), free(g2);
  set_mode(NULL);
}

/* Both paths count one launch of 2 m n k FLOPs under the category asked for. */
static void test_profile(void **state) {
  (void)state;
  wrn_device_info dev = *wrn_ctx_device(t_ctx32());
  wrn_ctx_options o = {0};
  o.dtype = WRN_F32;
  o.profile = 1;
  wrn_ctx *ctx = NULL;
  WT_OK(wrn_ctx_open(&ctx, &dev, &o));
  const size_t m = 9, n = 40, k = 11;
  cl_mem A = t_zeros(ctx, m * k), B = t_zeros(ctx, k * n), C = t_zeros(ctx, m * n);
  static const char *modes[3] = {"own", "clblast", "auto"};
  for (int i = 0; i < 3; i++) {
    set_mode(modes[i]);
    WT_OK(wrn_profile_collect(ctx, NULL));
    WT_OK(wrn_gemm(ctx, WRN_CAT_CONV_FWD, 0, 0, m, n, k, 1.0, t_mem(A), k, t_mem(B), n, 0.0,
                   t_mem(C), n));
    wrn_profile p;
    memset(&p, 0, sizeof p);
    WT_OK(wrn_profile_collect(ctx, &p));
    assert_true(p.flops[WRN_CAT_CONV_FWD] == 2.0 * m * n * k);
    assert_int_equal(p.launches[WRN_CAT_CONV_FWD], 1);
    assert_int_equal(p.launches[WRN_CAT_OTHER], 0);
  }
  set_mode(NULL);
  wrn_release(&A), wrn_release(&B), wrn_release(&C);
  wrn_ctx_free(ctx);
}

static void expect_invalid(wrn_status st, const char *what) {
  assert_int_equal(st, WRN_STATUS_INVALID_ARGUMENT);
  if (!strstr(wrn_last_error(), "gemm") || !strstr(wrn_last_error(), what))
    fail_msg("message '%s' should name gemm and %s", wrn_last_error(), what);
}

static void test_bad_args(void **state) {
  (void)state;
  wrn_ctx *ctx = t_ctx32();
  cl_mem M = t_zeros(ctx, 64);
  wrn_mem x = t_mem(M), none = {NULL, 0};
  const wrn_op_cat cat = WRN_CAT_OTHER;
  expect_invalid(wrn_gemm(NULL, cat, 0, 0, 2, 2, 2, 1, x, 2, x, 2, 0, x, 2), "NULL context");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 2, 2, 1, none, 2, x, 2, 0, x, 2), "(a)");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 2, 2, 1, x, 2, none, 2, 0, x, 2), "(b)");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 2, 2, 1, x, 2, x, 2, 0, none, 2), "(c)");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 0, 2, 2, 1, x, 2, x, 2, 0, x, 2), "m=0");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 0, 2, 1, x, 2, x, 2, 0, x, 2), "n=0");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 2, 0, 1, x, 2, x, 2, 0, x, 2), "k=0");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 3, 4, 1, x, 3, x, 3, 0, x, 3), "lda=3 < 4");
  expect_invalid(wrn_gemm(ctx, cat, 1, 0, 5, 3, 4, 1, x, 4, x, 3, 0, x, 3), "lda=4 < 5");
  expect_invalid(wrn_gemm(ctx, cat, 0, 1, 2, 3, 4, 1, x, 4, x, 3, 0, x, 3), "ldb=3 < 4");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 3, 4, 1, x, 4, x, 3, 0, x, 2), "ldc=2 < 3");
  expect_invalid(wrn_gemm(ctx, (wrn_op_cat)WRN_CAT_COUNT, 0, 0, 2, 2, 2, 1, x, 2, x, 2, 0, x, 2),
                 "category");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, (size_t)1 << 32, 2, 2, 1, x, 2, x, 2, 0, x, 2),
                 "too large");
  set_mode("fast");
  expect_invalid(wrn_gemm(ctx, cat, 0, 0, 2, 2, 2, 1, x, 2, x, 2, 0, x, 2), "WRN_GEMM=fast");
  set_mode(NULL);
  wrn_release(&M);
}

/* Devices driven from threads of their own (data parallelism in one process) call CLBlast at
 * the same time, some for the first time on their context while others already run. CLBlast
 * 1.5 is not safe for that (CLBlast issue #486: two replicas' first GEMMs together crashed
 * inside clblast::Database in about one training run in four on a loaded 2-core machine), so
 * the library makes its CLBlast calls under one lock. Here each round empties CLBlast's
 * caches; then TH_READ threads run GEMMs of two sizes (GEMM-direct and the indirect kernel
 * with its helpers) in one context over and over, while TH_WRITE threads open fresh
 * contexts, in float and double, and run one of each there, so that entries are stored while
 * others are read. Every result is checked against the reference, and the rounds must end
 * (no deadlock). The crash itself depends on timing and is not reproduced here on demand;
 * the training runs of tests/test_mpi.sh and tests/test_dist.c meet it. No cmocka
 * assertions in the threads: each reports its first failure and the main thread checks. */
enum { TH_READ = 2, TH_WRITE = 2, TH_ROUNDS = 3, TH_READS = 40, TH_CONTEXTS = 6 };

typedef struct th_job {
  wrn_device_info dev;
  int writer;
  uint64_t seed;
  double err;
  char msg[512];
} th_job;

static int th_gemm(wrn_ctx *ctx, th_job *j, size_t m, size_t n, size_t k) {
  const int f64 = wrn_ctx_dtype(ctx) == WRN_F64;
  const size_t rs = wrn_ctx_real_size(ctx);
  double *da = malloc(m * k * sizeof *da), *db = malloc(k * n * sizeof *db),
         *ref = calloc(m * n, sizeof *ref), *got = malloc(m * n * sizeof *got);
  void *a = malloc(m * k * rs), *b = malloc(k * n * rs), *c = malloc(m * n * rs);
  cl_mem A = NULL, B = NULL, C = NULL;
  int ok = a && b && c && da && db && ref && got;
  if (!ok) snprintf(j->msg, sizeof j->msg, "out of host memory");
  if (ok) {
    t_rand(da, m * k, -1, 1, j->seed++), t_rand(db, k * n, -1, 1, j->seed++);
    for (size_t i = 0; i < m * k; i++)
      if (f64) ((double *)a)[i] = da[i];
      else ((float *)a)[i] = (float)da[i], da[i] = ((float *)a)[i];
    for (size_t i = 0; i < k * n; i++)
      if (f64) ((double *)b)[i] = db[i];
      else ((float *)b)[i] = (float)db[i], db[i] = ((float *)b)[i];
    ref_gemm(0, 0, m, n, k, 1.0, da, k, db, n, 0.0, ref, n);
    ok = wrn_alloc(ctx, m * k * rs, "A", &A) == WRN_OK &&
         wrn_alloc(ctx, k * n * rs, "B", &B) == WRN_OK &&
         wrn_alloc(ctx, m * n * rs, "C", &C) == WRN_OK &&
         wrn_write(ctx, (wrn_mem){A, 0}, a, m * k) == WRN_OK &&
         wrn_write(ctx, (wrn_mem){B, 0}, b, k * n) == WRN_OK &&
         wrn_gemm(ctx, WRN_CAT_OTHER, 0, 0, m, n, k, 1.0, (wrn_mem){A, 0}, k, (wrn_mem){B, 0},
                  n, 0.0, (wrn_mem){C, 0}, n) == WRN_OK &&
         wrn_ctx_finish(ctx) == WRN_OK && wrn_read(ctx, c, (wrn_mem){C, 0}, m * n) == WRN_OK;
    if (!ok) snprintf(j->msg, sizeof j->msg, "%s", wrn_last_error());
  }
  if (ok) {
    /* The tolerances of tol_for, without cmocka. */
    const double tol = f64 ? 1e-15 * (double)k + 1e-14 : 3e-7 * (double)k + 1e-6;
    for (size_t i = 0; i < m * n; i++) {
      got[i] = f64 ? ((double *)c)[i] : ((float *)c)[i];
      const double d = fabs(got[i] - ref[i]);
      if (!(d <= tol)) {
        snprintf(j->msg, sizeof j->msg, "%s %zux%zux%zu: |C - ref| = %g at %zu > %g",
                 f64 ? "double" : "float", m, n, k, d, i, tol);
        ok = 0;
        break;
      }
      if (d > j->err) j->err = d;
    }
  }
  if (A) wrn_release(&A);
  if (B) wrn_release(&B);
  if (C) wrn_release(&C);
  free(a), free(b), free(c), free(da), free(db), free(ref), free(got);
  return ok;
}

static wrn_ctx *th_open(th_job *j, wrn_dtype dt) {
  wrn_ctx_options o = {0};
  o.dtype = dt;
  wrn_ctx *ctx = NULL;
  if (wrn_ctx_open(&ctx, &j->dev, &o) != WRN_OK) {
    snprintf(j->msg, sizeof j->msg, "wrn_ctx_open: %s", wrn_last_error());
    return NULL;
  }
  return ctx;
}

static void *th_main(void *arg) {
  th_job *j = arg;
  if (!j->writer) {
    wrn_ctx *ctx = th_open(j, WRN_F32);
    for (int i = 0; ctx && i < TH_READS && !j->msg[0]; i++)
      th_gemm(ctx, j, i % 2 ? 64 : 17, i % 2 ? 1000 : 33, i % 2 ? 144 : 9);
    wrn_ctx_free(ctx);
    return NULL;
  }
  for (int i = 0; i < TH_CONTEXTS && !j->msg[0]; i++) {
    const wrn_dtype dt = i % 2 && j->dev.fp64 ? WRN_F64 : WRN_F32;
    wrn_ctx *ctx = th_open(j, dt);
    if (ctx && th_gemm(ctx, j, 17, 33, 9)) th_gemm(ctx, j, 64, 1000, 144);
    wrn_ctx_free(ctx);
  }
  return NULL;
}

static void test_clblast_threads(void **state) {
  (void)state;
  set_mode("clblast");
  const wrn_device_info dev = *wrn_ctx_device(t_ctx32());
  double worst = 0;
  enum { N = TH_READ + TH_WRITE };
  for (int r = 0; r < TH_ROUNDS; r++) {
    assert_int_equal(CLBlastClearCache(), CLBlastSuccess);
    th_job jobs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
      memset(&jobs[i], 0, sizeof jobs[i]);
      jobs[i].dev = dev;
      jobs[i].writer = i >= TH_READ;
      jobs[i].seed = 1000 * (uint64_t)r + 100 * (uint64_t)i;
      assert_int_equal(pthread_create(&th[i], NULL, th_main, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N; i++) {
      if (jobs[i].msg[0]) fail_msg("round %d, thread %d: %s", r, i, jobs[i].msg);
      if (jobs[i].err > worst) worst = jobs[i].err;
    }
  }
  printf("%d rounds of %d threads calling CLBlast at once: largest |gemm - ref| %.3g\n",
         TH_ROUNDS, N, worst);
  set_mode(NULL);
}

static int teardown(void **state) {
  (void)state;
  printf("largest |gemm - ref|: float %.3g, double %.3g\n", largest_err[0], largest_err[1]);
  t_ctx_close_all();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_own),           cmocka_unit_test(test_clblast),
      cmocka_unit_test(test_auto),          cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_profile),       cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_clblast_threads),
  };
  return WT_RUN_GROUP("gemm", tests, NULL, teardown);
}
