/* libwrn: Wide Residual Network training on any OpenCL 1.2+ device.
 *
 * Conventions (every op follows them):
 * - Functions return wrn_status; WRN_OK is 0. On failure wrn_last_error() holds a message
 *   saying what failed, where, and what to do. The library never exits the process.
 * - A wrn_ctx owns one device, one context, an in-order compute queue, a transfer queue and
 *   the kernels built for one real type (float, or double where the device has fp64).
 * - Device memory is passed as wrn_mem: a cl_mem plus an offset counted in elements of the
 *   context's real type. Tensors are NCHW.
 * - Op functions are <op>_forward / <op>_backward with outputs first, then inputs, then saved
 *   state, then sizes. Backward functions take `accumulate`: 0 overwrites the gradient
 *   outputs, 1 adds to them.
 * - Ops only enqueue work on the compute queue; nothing waits unless its name says so.
 */
#ifndef WRN_H
#define WRN_H

#include <stddef.h>
#include <stdint.h>

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status and errors */

typedef enum wrn_status {
  WRN_OK = 0,
  WRN_STATUS_INVALID_ARGUMENT = 1, /* a bad shape, size, flag or pointer */
  WRN_STATUS_OPENCL = 2,           /* an OpenCL call failed */
  WRN_STATUS_CLBLAST = 3,          /* a CLBlast call failed */
  WRN_STATUS_OUT_OF_MEMORY = 4,    /* host or device memory exhausted */
  WRN_STATUS_NO_DEVICE = 5,        /* no OpenCL platform or no matching device */
  WRN_STATUS_BUILD = 6,            /* an OpenCL program failed to build */
  WRN_STATUS_IO = 7,               /* a file could not be read or written */
  WRN_STATUS_FORMAT = 8,           /* a file exists but its content is wrong */
  WRN_STATUS_UNSUPPORTED = 9,      /* the device lacks a needed capability */
  WRN_STATUS_INTERRUPTED = 10      /* stopped on request (signal) */
} wrn_status;

/* The message of the last failure on this thread ("" when none). */
const char *wrn_last_error(void);
const char *wrn_status_name(wrn_status s);
/* Records a failure message (printf-style) for this thread and returns `s`. */
wrn_status wrn_fail(wrn_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void wrn_clear_error(void);
const char *wrn_cl_error_name(cl_int code);

/* The library's version: `git describe --tags --always --dirty` of the sources it was built
 * from, read at build time ("0.2.0", "0.2.0-3-g1a2b3c4"; "0.1.0-g1a2b3c4-dirty" before the
 * first tag), or the project version ("0.1.0") when built outside a git checkout. */
const char *wrn_version(void);

/* ---------------------------------------------------------------- devices */

typedef struct wrn_device_info {
  int platform_index, device_index;
  cl_platform_id platform;
  cl_device_id device;
  char platform_name[128], platform_version[128], vendor[128], name[256];
  char driver[128], device_version[128], opencl_c_version[128];
  cl_device_type type;
  cl_uint compute_units, clock_mhz;
  cl_ulong global_mem, local_mem, max_alloc;
  size_t max_work_group;
  int fp64, fp16, subgroups, ptx_probe; /* ptx_probe: -1 not tried, 0 fails, 1 builds */
} wrn_device_info;

/* Lists every device of every platform. *out is malloc'ed; free with free(). */
wrn_status wrn_devices_list(wrn_device_info **out, int *count);
/* Chooses a device from a selector: NULL/"" (the most capable GPU, else a CPU), "P:D",
 * "cpu", "gpu", or a substring of the device name (case-insensitive). The environment
 * variable WRN_DEVICE is read when sel is NULL. */
wrn_status wrn_device_select(const char *sel, wrn_device_info *out);
/* Tries to build a kernel with inline PTX on the device (NVIDIA only); sets info->ptx_probe. */
wrn_status wrn_device_probe_ptx(wrn_device_info *info);

/* ---------------------------------------------------------------- context */

typedef enum wrn_dtype { WRN_F32 = 0, WRN_F64 = 1 } wrn_dtype;

/* Categories for the per-op profile. */
typedef enum wrn_op_cat {
  WRN_CAT_CONV_FWD = 0,
  WRN_CAT_CONV_BWD_DATA,
  WRN_CAT_CONV_BWD_WEIGHT,
  WRN_CAT_IM2COL, /* im2col, col2im, layout changes */
  WRN_CAT_BN,
  WRN_CAT_RELU,
  WRN_CAT_DROPOUT,
  WRN_CAT_POOL,
  WRN_CAT_LINEAR,
  WRN_CAT_LOSS,
  WRN_CAT_OPTIM,
  WRN_CAT_AUGMENT,
  WRN_CAT_ADD,
  WRN_CAT_TRANSFER,
  WRN_CAT_OTHER,
  WRN_CAT_COUNT
} wrn_op_cat;
const char *wrn_op_cat_name(wrn_op_cat c);

typedef struct wrn_ctx wrn_ctx;

typedef struct wrn_ctx_options {
  wrn_dtype dtype;
  int profile;   /* enable OpenCL event profiling for the per-op profile */
  int no_cache;  /* do not read or write the on-disk program cache (WRN_NO_CACHE=1 too) */
} wrn_ctx_options;

/* Opens a context on the device and builds every kernel program for opts->dtype (from the
 * on-disk cache when possible). */
wrn_status wrn_ctx_open(wrn_ctx **out, const wrn_device_info *dev, const wrn_ctx_options *opts);
void wrn_ctx_free(wrn_ctx *ctx);
const wrn_device_info *wrn_ctx_device(const wrn_ctx *ctx);
wrn_dtype wrn_ctx_dtype(const wrn_ctx *ctx);
size_t wrn_ctx_real_size(const wrn_ctx *ctx); /* 4 or 8 */
cl_context wrn_ctx_cl_context(const wrn_ctx *ctx);
cl_command_queue wrn_ctx_queue(const wrn_ctx *ctx);
cl_command_queue wrn_ctx_transfer_queue(const wrn_ctx *ctx);
wrn_status wrn_ctx_finish(wrn_ctx *ctx);
/* Seconds spent building (or loading) programs in wrn_ctx_open, and how many came from the
 * cache. */
double wrn_ctx_build_seconds(const wrn_ctx *ctx);
int wrn_ctx_programs_cached(const wrn_ctx *ctx);
int wrn_ctx_programs_total(const wrn_ctx *ctx);
/* The last non-fatal problem on this context ("" when none), e.g. a kernel or tuner cache
 * file that could not be written (the run goes on without it); cleared by reading. */
const char *wrn_ctx_warning(wrn_ctx *ctx);

/* Per-op profile: when the context was opened with profile=1, every launch records an event;
 * collect sums their durations (ms) per category and clears the list. */
typedef struct wrn_profile {
  double ms[WRN_CAT_COUNT];
  double flops[WRN_CAT_COUNT]; /* useful FLOPs of GEMM categories */
  long launches[WRN_CAT_COUNT];
} wrn_profile;
wrn_status wrn_profile_collect(wrn_ctx *ctx, wrn_profile *acc);
/* Like wrn_profile_collect, also adding each labelled event's milliseconds and FLOPs to
 * tag_ms[tag] and tag_flops[tag] for tags below ntags (wrn_net labels conv layer i's pass p
 * with i * WRN_CONV_PASSES + p); the arrays may be NULL. */
wrn_status wrn_profile_collect_tags(wrn_ctx *ctx, wrn_profile *acc, double *tag_ms,
                                    double *tag_flops, int ntags);
/* Programs compiled from source on this context so far (not loaded from the disk cache). */
int wrn_ctx_programs_compiled(const wrn_ctx *ctx);
/* Turns event recording on or off; on needs a context opened with profile = 1. */
wrn_status wrn_ctx_set_profiling(wrn_ctx *ctx, int on);

/* ---------------------------------------------------------------- memory */

typedef struct wrn_mem {
  cl_mem mem;
  size_t off; /* in elements of the context's real type */
} wrn_mem;

static inline wrn_mem wrn_mem_at(wrn_mem m, size_t elems) {
  wrn_mem r = {m.mem, m.off + elems};
  return r;
}

/* Allocates device memory; checks the device's limits first so that an impossible size
 * gets a message naming it, and touches the buffer so that an over-committed device fails
 * here, not later. `what` names the buffer in messages. */
wrn_status wrn_alloc(wrn_ctx *ctx, size_t bytes, const char *what, cl_mem *out);
void wrn_release(cl_mem *m);
/* Blocking copies between host and device (count in elements of the real type). */
wrn_status wrn_write(wrn_ctx *ctx, wrn_mem dst, const void *src, size_t count);
wrn_status wrn_read(wrn_ctx *ctx, void *dst, wrn_mem src, size_t count);
wrn_status wrn_fill(wrn_ctx *ctx, wrn_mem dst, double value, size_t count);
/* Raw byte copy host -> device at a byte offset, blocking. */
wrn_status wrn_write_bytes(wrn_ctx *ctx, cl_mem dst, size_t byte_off, const void *src, size_t n);

/* ---------------------------------------------------------------- element-wise ops */

/* y[n] = max(x[n], 0) */
wrn_status wrn_relu_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n);
/* dx (+)= dy * (y > 0); y is the forward output */
wrn_status wrn_relu_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem y, size_t n,
                             int accumulate);
/* y[n] = a[n] + b[n] (y may alias a or b) */
wrn_status wrn_add_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem a, wrn_mem b, size_t n);
/* y[n] (+)= alpha * x[n] */
wrn_status wrn_axpy(wrn_ctx *ctx, wrn_mem y, wrn_mem x, double alpha, size_t n, int accumulate);

/* ---------------------------------------------------------------- GEMM */
/* Row-major C[m][n] = alpha op(A)[m][k] op(B)[k][n] + beta C in the context's type, where
 * op(A) = A (stored [m][lda]) or, with trans_a, A^T (stored [k][lda]); likewise B ([k][ldb]
 * or, with trans_b, [n][ldb]). beta = 0 overwrites C (NaN there does not survive). Runs
 * either CLBlast or the kernels of cl/gemm.cl: the first call for a (form, m, n, k) times
 * both and the context remembers the faster (so call it once per shape before timing, as
 * the warm-up functions do). The environment variable WRN_GEMM = clblast | own | auto
 * (default) forces one. `cat` is the profile category the call is counted under. */
wrn_status wrn_gemm(wrn_ctx *ctx, wrn_op_cat cat, int trans_a, int trans_b, size_t m, size_t n,
                    size_t k, double alpha, wrn_mem a, size_t lda, wrn_mem b, size_t ldb,
                    double beta, wrn_mem c, size_t ldc);

/* ---------------------------------------------------------------- convolution */
/* Convolutions run through an algorithm table (host/conv.c): im2col + GEMM (always
 * available), implicit GEMM, split-K weight gradient, Winograd F(2x2,3x3) and F(4x4,3x3),
 * and FFT through clFFT. A choice is an algorithm name with optional parameters, written as
 * "name" or "name:KEY=V,KEY=V" (wrn_conv_algo_name lists the names). The name "auto" (or
 * NULL or "") asks the tuner: it times the supported algorithms and a few parameter sets on
 * first use of a (device, driver, shape, pass, workspace bound) and remembers the fastest in
 * memory and on disk next to the kernel cache ($XDG_CACHE_HOME/wrn, not with
 * WRN_NO_CACHE=1). The environment variable WRN_CONV_ALGO=name forces one algorithm
 * wherever it supports the shape (elsewhere im2col runs). */

typedef struct wrn_conv_shape {
  int n, c_in, h, w;  /* input  [n][c_in][h][w] */
  int c_out, k, stride, pad; /* square kernel k x k */
} wrn_conv_shape;

typedef enum wrn_conv_pass {
  WRN_CONV_FORWARD = 0,        /* y (+)= conv(x, w) (+ add) */
  WRN_CONV_BACKWARD_DATA = 1,  /* dx (+)= conv_transpose(dy, w) */
  WRN_CONV_BACKWARD_WEIGHT = 2 /* dw (+)= correlation of dy with x */
} wrn_conv_pass;
#define WRN_CONV_PASSES 3
const char *wrn_conv_pass_name(wrn_conv_pass pass); /* "forward", "backward-data", ... */

/* Operands of one pass: forward out = y [n][c_out][ho][wo], a = x, b = w [c_out][c_in][k][k];
 * backward data out = dx, a = dy, b = w; backward weight out = dw, a = dy, b = x. `add`
 * (forward only; .mem NULL for none) is a tensor shaped like y added to the result (the
 * residual add fused into the convolution's output). accumulate = 1 adds the result to out.
 * ws is scratch of ws_elems elements (wrn_conv_workspace sizes it). */
typedef struct wrn_conv_io {
  wrn_mem out, a, b, add;
  int accumulate;
  wrn_mem ws;
  size_t ws_elems;
} wrn_conv_io;

/* Output height/width; -1 when the shape is invalid. */
int wrn_conv_out_h(const wrn_conv_shape *s);
int wrn_conv_out_w(const wrn_conv_shape *s);
/* Checks the shape; WRN_STATUS_INVALID_ARGUMENT with a message when it is not usable. */
wrn_status wrn_conv_check(const wrn_conv_shape *s);

/* The algorithms, by index (0 is im2col). */
int wrn_conv_algo_count(void);
const char *wrn_conv_algo_name(int i);
#define WRN_CONV_CHOICE_MAX 128
/* The choices (algorithm i with each parameter set the tuner would time) that support
 * (s, pass) on ctx's device: up to max strings into out; returns how many. */
int wrn_conv_algo_variants(wrn_ctx *ctx, int i, const wrn_conv_shape *s, wrn_conv_pass pass,
                           char (*out)[WRN_CONV_CHOICE_MAX], int max);
/* WRN_OK when `choice` is written like a choice (a known name, parameters as KEY=V with
 * upper-case keys and non-negative values); INVALID_ARGUMENT with a message otherwise.
 * Whether a shape supports it is wrn_conv_algo_supports's question. */
wrn_status wrn_conv_choice_check(const char *choice);
/* 1 when the choice `algo` (name[:params]) runs `pass` of s on ctx's device, else 0 (an
 * unknown name or malformed parameters also give 0). */
int wrn_conv_algo_supports(wrn_ctx *ctx, const char *algo, const wrn_conv_shape *s,
                           wrn_conv_pass pass);
/* Workspace elements the choice needs for (s, pass) when at most max_ws_elems may be used
 * (0: no bound); the batch is processed in chunks to fit. (size_t)-1 when it cannot fit. */
size_t wrn_conv_algo_workspace(wrn_ctx *ctx, const char *algo, const wrn_conv_shape *s,
                               wrn_conv_pass pass, size_t max_ws_elems);
/* The tuner: the fastest supported choice for (s, pass) within the workspace bound, written
 * to out (at most n bytes with the terminator). Timing runs use scratch buffers of their
 * own and leave no trace but the cache entry. *measured (may be NULL) is set to 1 when the
 * choice was timed now, 0 when it came from memory, the disk cache or WRN_CONV_ALGO. */
wrn_status wrn_conv_choose(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                           size_t max_ws_elems, char *out, size_t n, int *measured);
/* The tuner's file for this context's device ("" with WRN_NO_CACHE / no_cache). */
wrn_status wrn_ctx_tune_file(const wrn_ctx *ctx, char *out, size_t n);
/* Runs one pass with the choice `algo` ("auto"/NULL/"" asks wrn_conv_choose with
 * io->ws_elems as the bound). */
wrn_status wrn_conv_run(wrn_ctx *ctx, const char *algo, wrn_conv_pass pass,
                        const wrn_conv_shape *s, const wrn_conv_io *io);

/* Workspace (elements of the real type) that wrn_conv_forward/backward_* (im2col + GEMM)
 * need for this shape; max_ws_elems bounds it: images are then processed in chunks.
 * Returns the elements needed for the chosen chunk. */
size_t wrn_conv_workspace(const wrn_conv_shape *s, size_t max_ws_elems);
/* The three passes with im2col + GEMM (wrn_conv_run with "im2col"). */
wrn_status wrn_conv_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem w,
                            const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems);
wrn_status wrn_conv_backward_data(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem w,
                                  const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                                  int accumulate);
wrn_status wrn_conv_backward_weight(wrn_ctx *ctx, wrn_mem dw, wrn_mem dy, wrn_mem x,
                                    const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                                    int accumulate);

/* ---------------------------------------------------------------- linear layer */

/* y[n][out] = x[n][in] * w[out][in]^T + b[out] */
wrn_status wrn_linear_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem w, wrn_mem b,
                              int n, int in, int out);
/* dx[n][in] (+)= dy w; dw[out][in] (+)= dy^T x; db[out] (+)= sum_n dy.
 * dx.mem may be NULL to skip the input gradient. */
wrn_status wrn_linear_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dw, wrn_mem db, wrn_mem dy,
                               wrn_mem x, wrn_mem w, int n, int in, int out, int accumulate);

/* ---------------------------------------------------------------- batch norm */

/* Training forward over x[n][c][hw]: batch mean and biased variance normalise; saves mean and
 * inverse std (save_mean[c], save_invstd[c]); updates running_mean/var with `momentum`
 * (running = (1-m) running + m batch) using the unbiased variance. If relu, y = max(bn, 0). */
wrn_status wrn_bn_forward_train(wrn_ctx *ctx, wrn_mem y, wrn_mem save_mean, wrn_mem save_invstd,
                                wrn_mem running_mean, wrn_mem running_var, wrn_mem x,
                                wrn_mem gamma, wrn_mem beta, int n, int c, int hw,
                                double momentum, double eps, int relu);
/* Inference forward with the running statistics. */
wrn_status wrn_bn_forward_infer(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem gamma, wrn_mem beta,
                                wrn_mem running_mean, wrn_mem running_var, int n, int c, int hw,
                                double eps, int relu);
/* Backward of the training forward. y is the forward output (used for the ReLU mask when
 * relu=1). dx (+)= by accumulate_dx; dgamma and dbeta (+)= by accumulate_params (kept
 * apart: a residual input's gradient accumulates while its BN's parameter gradients are
 * overwritten each step). */
wrn_status wrn_bn_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dgamma, wrn_mem dbeta, wrn_mem dy,
                           wrn_mem x, wrn_mem y, wrn_mem gamma, wrn_mem save_mean,
                           wrn_mem save_invstd, int n, int c, int hw, int relu, int accumulate_dx,
                           int accumulate_params);

/* ---------------------------------------------------------------- dropout */

/* Inverted dropout: keep with probability 1-p, scale kept units by 1/(1-p). The mask for
 * element i is drawn from Philox4x32-10 keyed by (seed, counter, i) and made again in
 * backward. p == 0 copies. */
wrn_status wrn_dropout_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n, double p,
                               uint64_t seed, uint64_t counter);
wrn_status wrn_dropout_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, size_t n, double p,
                                uint64_t seed, uint64_t counter, int accumulate);
/* The same on elements [first, first + n) of a larger tensor: element j of the buffers draws
 * as element first + j of the whole (a slice of a global batch keeps the whole's masks). */
wrn_status wrn_dropout_forward_at(wrn_ctx *ctx, wrn_mem y, wrn_mem x, size_t n, size_t first,
                                  double p, uint64_t seed, uint64_t counter);
wrn_status wrn_dropout_backward_at(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, size_t n, size_t first,
                                   double p, uint64_t seed, uint64_t counter, int accumulate);

/* ---------------------------------------------------------------- pooling */

typedef struct wrn_pool_shape {
  int n, c, h, w;
  int k, stride, pad; /* window k x k */
} wrn_pool_shape;
int wrn_pool_out_h(const wrn_pool_shape *s);
int wrn_pool_out_w(const wrn_pool_shape *s);
/* Average pooling; padded cells count in the divisor (k*k, as count_include_pad). */
wrn_status wrn_avgpool_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s);
wrn_status wrn_avgpool_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, const wrn_pool_shape *s,
                                int accumulate);
/* Max pooling; ties go to the first maximum in window order. */
wrn_status wrn_maxpool_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, const wrn_pool_shape *s);
wrn_status wrn_maxpool_backward(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem x,
                                const wrn_pool_shape *s, int accumulate);

/* ---------------------------------------------------------------- loss */

/* Softmax cross-entropy, mean over the batch, in one pass:
 * loss_out[n] per-sample losses, correct_out[n] = 1 if argmax == label else 0 (reals),
 * dlogits[n][k] = (softmax - onehot) / n * scale (dlogits.mem may be NULL).
 * labels are int32 on the device, labels_off counted in int32s. The argmax is the first
 * maximum. A label outside [0, k) reads nothing out of bounds: that sample gets loss NaN,
 * correct 0 and dlogits NaN (check labels on the host before upload). */
wrn_status wrn_softmax_xent(wrn_ctx *ctx, wrn_mem loss_out, wrn_mem correct_out,
                            wrn_mem dlogits, wrn_mem logits, cl_mem labels, size_t labels_off,
                            int n, int k, double scale);

/* ---------------------------------------------------------------- optimiser */

typedef struct wrn_sgd {
  double lr, momentum, weight_decay;
  int nesterov;
  int first_step; /* 1: momentum buffer = gradient (Torch semantics) */
} wrn_sgd;
/* g = grad + wd * theta; v = first ? g : mu v + g; theta -= lr * (nesterov ? g + mu v : v).
 * param[n], grad[n], mom[n]; one launch. On the first step mom is only written. Refuses
 * lr < 0, momentum outside [0, 1), weight_decay < 0, n == 0. */
wrn_status wrn_sgd_step(wrn_ctx *ctx, wrn_mem param, wrn_mem grad, wrn_mem mom, size_t n,
                        const wrn_sgd *o);

/* ---------------------------------------------------------------- input pipeline */

typedef struct wrn_augment {
  int augment;       /* 1: random flip + reflect-pad crop, 0: none */
  int pad;           /* reflection padding (4) */
  float mean[3], std[3]; /* on the 0-255 scale */
  uint64_t seed, step;
} wrn_augment;
/* y[n][c][h][w] = (pixel - mean[c]) / std[c] from uint8 images img[n][c][h][w] (CIFAR
 * layout, bytes at byte offset img_off), c <= 3. With a->augment, sample i (its index in this
 * batch) draws r = Philox(ctr = (i, 0, step lo, step hi), key = (seed lo, seed hi)):
 * flip = r.x & 1, dy = below(r.y, 2 pad + 1), dx = below(r.z, 2 pad + 1); output (oy, ox)
 * takes the (flipped) image padded by `pad` pixels of numpy-'reflect' padding (the edge is not
 * repeated) at (oy + dy, ox + dx); pad < h and pad < w. Without augment, pad is ignored. */
wrn_status wrn_augment_forward(wrn_ctx *ctx, wrn_mem y, cl_mem img, size_t img_off, int n,
                               int c, int h, int w, const wrn_augment *a);
/* The same for a slice of a larger batch that starts at sample `first`: its sample i draws
 * as sample first + i of the whole (wrn_augment_params(a, first + i, ...)), so the draws do
 * not depend on how a global batch is split across devices. */
wrn_status wrn_augment_forward_at(wrn_ctx *ctx, wrn_mem y, cl_mem img, size_t img_off, int n,
                                  size_t first, int c, int h, int w, const wrn_augment *a);
/* The recipe's CIFAR input pipeline (Zagoruyko & Komodakis 2016): flip + crop on, reflection
 * padding 4, meanstd normalisation on the 0-255 scale with mean {125.3, 123.0, 113.9} and std
 * {63.0, 62.1, 66.7}; seed and step 0. Checkpoints record these values. */
wrn_augment wrn_augment_recipe(void);
/* The flip and crop offsets sample i gets (host side, for tests and logs); offsets count in
 * the padded image, so (pad, pad) means no shift. All 0 when a->augment is 0. Outputs may be
 * NULL. */
void wrn_augment_params(const wrn_augment *a, int i, int *flip, int *dy, int *dx);

/* ---------------------------------------------------------------- measurement */

/* Seconds on a monotonic clock (for timing; the origin is arbitrary). */
double wrn_seconds(void);

/* The device's multiply-add rate in GFLOP/s of the context's real type, measured by a
 * GEMM-free kernel of independent FMA chains (the best of several timed launches). */
wrn_status wrn_probe_fma(wrn_ctx *ctx, double *gflops);
/* Bytes of device memory allocated through wrn_alloc on this context so far, and the most
 * held at once. */
void wrn_ctx_mem_stats(const wrn_ctx *ctx, size_t *current, size_t *peak);
/* Returns memory allocated with wrn_alloc, keeping the context's count. */
void wrn_free_mem(wrn_ctx *ctx, cl_mem *m);

/* ---------------------------------------------------------------- random */

/* Philox4x32-10 (Salmon et al., SC'11): the same generator as cl/common.h. */
void wrn_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
/* Uniform [0,1) float from a 32-bit value, exactly as the kernels compute it. */
float wrn_u01(uint32_t x);

#ifdef __cplusplus
}
#endif
#endif
