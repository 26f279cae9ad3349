/* Shared test helpers: device contexts, random data, tolerance checks that print the
 * largest difference, and central-difference gradients in double. */
#ifndef WRN_TEST_HARNESS_H
#define WRN_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "wrn.h"

/* Fails the test with the library's message when a call does not return WRN_OK. */
#define WT_OK(call)                                                                         \
  do {                                                                                      \
    wrn_status wt_s_ = (call);                                                              \
    if (wt_s_ != WRN_OK) fail_msg("%s -> %s: %s", #call, wrn_status_name(wt_s_),            \
                                  wrn_last_error());                                        \
  } while (0)

/* Runs a test group; WRN_TEST_FILTER=PATTERN (cmocka's test filter: a name, '*' and '?'
 * wildcards) runs only the tests whose names it matches. */
#define WT_RUN_GROUP(name, tests, setup, teardown)                                          \
  (getenv("WRN_TEST_FILTER") ? cmocka_set_test_filter(getenv("WRN_TEST_FILTER")) : (void)0,  \
   cmocka_run_group_tests_name(name, tests, setup, teardown))

/* The float and double contexts on the test device (WRN_TEST_DEVICE, default "cpu"), opened
 * once per process. t_ctx64 returns NULL when the device has no fp64 (tests then skip). */
wrn_ctx *t_ctx32(void);
wrn_ctx *t_ctx64(void);
wrn_ctx *t_ctx(wrn_dtype dt);
void t_ctx_close_all(void);

/* Deterministic pseudo-random doubles in [lo, hi) from a seed (host side, xorshift). */
void t_rand(double *x, size_t n, double lo, double hi, uint64_t seed);

/* Rounds x in place to the context's real type, so that host references see exactly the
 * values the device gets. */
void t_round(wrn_ctx *ctx, double *x, size_t n);
/* Device buffer of n reals holding x (converted to the context's type). */
cl_mem t_upload(wrn_ctx *ctx, const double *x, size_t n);
/* Device buffer of n reals, all zero. */
cl_mem t_zeros(wrn_ctx *ctx, size_t n);
/* Reads n reals back as doubles. */
void t_download(wrn_ctx *ctx, double *out, cl_mem m, size_t n);
static inline wrn_mem t_mem(cl_mem m) {
  wrn_mem r = {m, 0};
  return r;
}

/* Passes when |got - ref| <= atol + rtol * |ref| everywhere (NaN never passes). On failure
 * prints the largest difference and the first mismatches, then fails the test. */
void t_check_close(const char *what, const double *got, const double *ref, size_t n,
                   double atol, double rtol);
/* The largest |got - ref|. */
double t_max_abs_diff(const double *got, const double *ref, size_t n);

/* Tolerances for float and double runs of the same op. */
typedef struct t_tol {
  double atol, rtol;
} t_tol;
static inline t_tol t_tol_for(wrn_ctx *ctx, t_tol f32, t_tol f64) {
  return wrn_ctx_dtype(ctx) == WRN_F64 ? f64 : f32;
}

/* Central differences in double: for a scalar function f(x) of n inputs, fills grad[n] with
 * (f(x+h e_i) - f(x-h e_i)) / 2h. f gets the user pointer. */
typedef double (*t_scalar_fn)(const double *x, void *user);
void t_numeric_grad(t_scalar_fn f, double *x, size_t n, double h, double *grad, void *user);

/* The safetensors files at paths a and b hold the same tensors, byte for byte (fails the test
 * naming the first tensor that differs). */
void wt_same_tensors(const char *a, const char *b);

/* Removes a folder and everything below it (read-only subfolders included); quiet when
 * it does not exist. */
void t_rm_tree(const char *dir);

/* The exit status of a test program that cannot run here (data or a tool missing): ctest
 * reports it as skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt). */
#define WRN_TEST_SKIP 77

/* True when ../shared/data (or WRN_DATA_DIR) has CIFAR-10; sets path. */
int t_cifar_dir(char *path, size_t n);

#endif
