/* Private to libwrn: the context's layout, kernel lookup and launch helpers. */
#ifndef WRN_INTERNAL_H
#define WRN_INTERNAL_H

#include "wrn.h"
#include "kernels.h"

#include <stdio.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001 /* cl_khr_icd: the loader found no platform */
#endif

#define WRN_STR2(x) #x
#define WRN_STR(x) WRN_STR2(x)
#define WRN_WHERE __FILE__ ":" WRN_STR(__LINE__)

/* Checks an OpenCL call; on failure records the call, the code and file:line and returns. */
#define WRN_CL_CHECK(call)                                                                  \
  do {                                                                                      \
    cl_int wrn_cl_err_ = (call);                                                            \
    if (wrn_cl_err_ != CL_SUCCESS)                                                          \
      return wrn_cl_fail(wrn_cl_err_, #call, WRN_WHERE);                                    \
  } while (0)

/* Propagates a failure status. */
#define WRN_TRY(expr)                                                                       \
  do {                                                                                      \
    wrn_status wrn_try_s_ = (expr);                                                         \
    if (wrn_try_s_ != WRN_OK) return wrn_try_s_;                                            \
  } while (0)

wrn_status wrn_cl_fail(cl_int code, const char *call, const char *where);
wrn_status wrn_clblast_fail(int code, const char *call, const char *where);
/* Checks a CLBlast call (CLBlastStatusCode) the same way. */
#define WRN_CLBLAST_CHECK(call)                                                             \
  do {                                                                                      \
    int wrn_cb_err_ = (int)(call);                                                          \
    if (wrn_cb_err_ != 0) return wrn_clblast_fail(wrn_cb_err_, #call, WRN_WHERE);           \
  } while (0)

/* A program built with extra -D values (tunables), and the kernels made from it. */
typedef struct wrn_variant {
  int prog;
  char defs[256];
  cl_program program;
  cl_kernel kernels[WRN_K_COUNT];
} wrn_variant;

typedef struct wrn_event_rec {
  cl_event ev;
  cl_event start; /* NULL, or a marker whose end stands for the start (wrn_event_slot_span) */
  wrn_op_cat cat;
  double flops;
  int tag; /* ctx->tag when recorded (-1: none) */
  const char *name; /* the kernel's name, or what made the commands ("clblast", "clfft") */
} wrn_event_rec;

struct wrn_ctx {
  wrn_device_info dev;
  wrn_dtype dtype;
  size_t real_size;
  cl_context cl;
  cl_command_queue queue;    /* in-order compute queue */
  cl_command_queue tqueue;   /* transfer queue */
  int profile;         /* events are being recorded */
  int profile_capable; /* the queues were made with CL_QUEUE_PROFILING_ENABLE */
  int no_cache;
  int nprogs;
  cl_program *progs; /* one per cl/<name>.cl, in wrn_cl_sources order (NULL: variant-only) */
  cl_kernel kernels[WRN_K_COUNT]; /* made from progs on first use */
  wrn_variant *variants;
  int nvariants, capvariants;
  wrn_event_rec *events;
  int nevents, capevents;
  double build_seconds;
  int programs_cached, programs_built;
  int programs_compiled; /* built from source, not the disk cache (variants included) */
  int tag;               /* labels the events recorded now (wrn_ctx_set_tag) */
  size_t max_wg;
  size_t mem_current, mem_peak; /* bytes through wrn_alloc / wrn_free_mem */
  /* wrn_gemm's choice per shape (host/gemm.c): key, 1 = own kernels (with their tiles),
   * 0 = CLBlast. */
  struct wrn_gemm_choice {
    int form, mode;
    size_t m, n, k, batch;
    int own;
    int tiles[7];
  } gemm_choice[256];
  int ngemm_choice;
  /* The tuner's store (tune.c): choices by key, loaded from disk on first use. */
  struct wrn_tune_entry *tune;
  int ntune, captune, tune_loaded;
  char warning[1024]; /* the last non-fatal problem (a cache that could not be written) */
  struct wrn_fft_cache *fft; /* clFFT plans of the FFT convolution (conv_fft.c) */
  /* Batch norm's per-chunk partial sums (host/bn.c), grown on demand, freed with the ctx. */
  cl_mem bn_scratch;
  size_t bn_scratch_bytes;
};

/* Kernel arguments, set in order through a running index: each wrn_arg_* call sets the next
 * argument; the first failure is kept and reported by wrn_launch, which also checks that
 * every argument of the kernel was set. */
typedef struct wrn_args {
  wrn_ctx *ctx;
  cl_kernel k;
  wrn_kid id;    /* which kernel (for the profile's names) */
  cl_uint n;     /* arguments set so far */
  cl_int err;    /* first clSetKernelArg failure */
  cl_uint bad;   /* its index */
} wrn_args;

/* Kernel `id` of the base programs, its arguments not yet set. */
wrn_status wrn_kernel_args(wrn_ctx *ctx, wrn_kid id, wrn_args *a);
/* Kernel `id` from its program built with the extra options `defs` (e.g. "-DTM=4 -DTN=8"),
 * built (or loaded from the disk cache) on first use and kept for the context's life. */
/* wrn_bn_backward with the ReLU's mask taken from y (relu = 1) or recomputed from x, gamma,
 * beta and the saved statistics exactly as the forward computed y (relu = 2: y is not read,
 * one pass over memory less; beta is needed instead). */
wrn_status wrn_bn_backward_mask(wrn_ctx *ctx, wrn_mem dx, wrn_mem dgamma, wrn_mem dbeta,
                                wrn_mem dy, wrn_mem x, wrn_mem y, wrn_mem gamma, wrn_mem beta,
                                wrn_mem save_mean, wrn_mem save_invstd, int n, int c, int hw,
                                int relu, int accumulate_dx, int accumulate_params);
wrn_status wrn_kernel_variant_args(wrn_ctx *ctx, wrn_kid id, const char *defs, wrn_args *a);
const char *wrn_kernel_name(wrn_kid id);
void wrn_arg_mem(wrn_args *a, wrn_mem m); /* buffer, then its element offset as ulong */
void wrn_arg_buf(wrn_args *a, cl_mem m);
void wrn_arg_int(wrn_args *a, int v);
void wrn_arg_uint(wrn_args *a, unsigned v);
void wrn_arg_ulong(wrn_args *a, uint64_t v);
void wrn_arg_real(wrn_args *a, double v); /* in the context's real type */
void wrn_arg_local(wrn_args *a, size_t bytes);
/* Enqueues the kernel on the compute queue after checking its arguments; records a
 * profiling event when enabled. lws may be NULL. */
wrn_status wrn_launch(wrn_args *a, cl_uint dim, const size_t *gws, const size_t *lws,
                      wrn_op_cat cat, double flops);
/* The same with a global work offset (get_global_id(d) starts at offset[d]; NULL for none):
 * a kernel keyed by its global index then draws as the part [offset, offset + gws) of a larger
 * range. Refused when the range would pass the device's address width. */
wrn_status wrn_launch_at(wrn_args *a, cl_uint dim, const size_t *offset, const size_t *gws,
                         const size_t *lws, wrn_op_cat cat, double flops);
/* 1-D launch over n items: the global size is rounded up to the work-group size, so the
 * kernel must check its index against n. */
wrn_status wrn_launch_1d(wrn_args *a, size_t n, wrn_op_cat cat);
/* The largest work-group kernel a->k can run with on the device. */
wrn_status wrn_kernel_wg_max(wrn_args *a, size_t *out);
/* Where to store an event for a call made outside wrn_launch (CLBlast, copies); NULL when
 * profiling is off. The event is owned by the context afterwards. */
cl_event *wrn_event_slot(wrn_ctx *ctx, wrn_op_cat cat, double flops);
/* Like wrn_event_slot, for a call that enqueues several commands but hands back the event of
 * the last one only (CLBlast: pad/transpose kernels, the GEMM, a copy back). A marker is
 * enqueued first and its end taken as the start, so the profile times the whole call. */
cl_event *wrn_event_slot_span(wrn_ctx *ctx, wrn_op_cat cat, double flops);
size_t wrn_round_up(size_t x, size_t m);
/* Labels the profiling events recorded from now on (-1: no label); the net labels each conv
 * layer's passes so that wrn_profile_collect_tags can time them one by one. */
void wrn_ctx_set_tag(wrn_ctx *ctx, int tag);

/* The tuner's store (tune.c): one text file per device next to the kernel cache, each line
 * a key, a value, the measured milliseconds and a checksum; written atomically under a lock;
 * damaged lines are ignored; memory only with no_cache. */
#define WRN_TUNE_KEY_MAX 192
#define WRN_TUNE_VALUE_MAX 128
struct wrn_tune_entry {
  char key[WRN_TUNE_KEY_MAX], val[WRN_TUNE_VALUE_MAX];
  double ms;
};
wrn_status wrn_tune_lookup(wrn_ctx *ctx, const char *key, char *val, size_t n, int *found);
/* Adds the entries of an open store file to list[*cnt] (grown with realloc, *cap its size;
 * free it); lines that do not parse or fail their checksum are skipped. */
void wrn_tune_read_entries(FILE *f, struct wrn_tune_entry **list, int *cnt, int *cap);
/* Remembers key = val; a failure to write the file is not an error (the choice stays in
 * memory) but is left in ctx->warning. */
wrn_status wrn_tune_store(wrn_ctx *ctx, const char *key, const char *val, double ms);
/* The cache folder ($XDG_CACHE_HOME/wrn or ~/.cache/wrn), created; -1 when there is none. */
int wrn_cache_dir(char *out, size_t n);
/* Records a non-fatal problem for wrn_ctx_warning. */
void wrn_ctx_warn(wrn_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Row-major C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, the operands of GEMM i
 * lying i * sa, i * sb, i * sc elements after a, b, c (wrn_gemm for the conventions). The
 * profile counts `flops` for the call (negative: the GEMM's own 2 m n k batch), so that an
 * algorithm that saves multiplies reports the useful FLOPs of what it computes. */
wrn_status wrn_gemm_strided(wrn_ctx *ctx, wrn_op_cat cat, int trans_a, int trans_b, size_t m,
                            size_t n, size_t k, double alpha, wrn_mem a, size_t lda, size_t sa,
                            wrn_mem b, size_t ldb, size_t sb, double beta, wrn_mem c,
                            size_t ldc, size_t sc, size_t batch, double flops);

/* Releases the FFT convolution's plans (and clFFT with the last context that used it). */
void wrn_conv_fft_free(wrn_ctx *ctx);

/* Program build and cache (program.c). */
wrn_status wrn_programs_build(wrn_ctx *ctx);
/* Builds program `prog` with the context's base options plus `defs` (cache as usual). */
wrn_status wrn_program_build_variant(wrn_ctx *ctx, int prog, const char *defs, cl_program *out);
void wrn_programs_free(wrn_ctx *ctx);
/* 64-bit FNV-1a over bytes, chained through h. */
uint64_t wrn_hash64(uint64_t h, const void *data, size_t n);
#define WRN_HASH_INIT 0xcbf29ce484222325ull



/* Embedded sources (generated wrn_cl_embed.c). */
int wrn_program_index(const char *name);
const char *wrn_program_name(int index);
#endif
