/* Private to libwrn: the seam between the convolution dispatcher (conv.c) and the algorithms
 * (conv_im2col.c, conv_implicit.c, conv_winograd.c, conv_fft.c).
 *
 * An algorithm is a row of function pointers: which (shape, pass) it supports on a device,
 * the workspace it needs under a bound, the parameter sets the tuner may try, and the run
 * itself. A choice is the algorithm's name plus parameter values, written as text
 * ("winograd4" or "implicit:TM=4,TN=16"), which is what the tuner stores on disk and a
 * checkpoint records. */
#ifndef WRN_CONV_INTERNAL_H
#define WRN_CONV_INTERNAL_H

#include "internal.h"

#define CONV_MAX_PARAMS 8

typedef struct conv_params {
  int n;
  char key[CONV_MAX_PARAMS][12];
  int val[CONV_MAX_PARAMS];
} conv_params;

/* The value of key in p, or def when p does not set it. */
int conv_param(const conv_params *p, const char *key, int def);
/* Adds (or replaces) key = val; returns p for chaining. */
conv_params *conv_param_set(conv_params *p, const char *key, int val);

typedef struct conv_algo {
  const char *name;
  /* 1 when the algorithm runs pass `pass` of shape s on this device with parameters p. */
  int (*supports)(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                  const conv_params *p);
  /* Workspace elements the run needs when at most max_ws may be used (0: no bound): the
   * algorithm cuts the batch into chunks to fit. Returns (size_t)-1 when even one image does
   * not fit. */
  size_t (*workspace)(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                      const conv_params *p, size_t max_ws);
  /* Fills up to max parameter sets the tuner should time (the first is the default);
   * returns how many. */
  int (*candidates)(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                    conv_params *out, int max);
  /* Runs the pass; io->ws holds at least workspace(s, pass, p, io->ws_elems) elements. */
  wrn_status (*run)(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                    const wrn_conv_io *io, const conv_params *p);
} conv_algo;

extern const conv_algo wrn_conv_algo_im2col;
extern const conv_algo wrn_conv_algo_implicit;
extern const conv_algo wrn_conv_algo_splitk;
extern const conv_algo wrn_conv_algo_winograd2;
extern const conv_algo wrn_conv_algo_winograd4;
extern const conv_algo wrn_conv_algo_fft;
extern const conv_algo wrn_conv_algo_direct;

/* Output size of a valid shape. */
static inline int conv_ho(const wrn_conv_shape *s) { return (s->h + 2 * s->pad - s->k) / s->stride + 1; }
static inline int conv_wo(const wrn_conv_shape *s) { return (s->w + 2 * s->pad - s->k) / s->stride + 1; }

/* The largest chunk of images (<= s->n) whose workspace per_image * nb + fixed fits max_ws
 * (0: no bound, the whole batch); 0 when not even one fits. */
int conv_chunk(const wrn_conv_shape *s, size_t per_image, size_t fixed, size_t max_ws);

/* Runs the elementwise epilogue the passes share where an algorithm cannot fold it into its
 * own output kernel: out (+)= src over n elements, with io->add (forward) added too. */
wrn_status conv_finish_copy(wrn_ctx *ctx, wrn_mem out, wrn_mem src, wrn_mem add, size_t n,
                            int accumulate, wrn_op_cat cat);

/* The profile category of a pass. */
static inline wrn_op_cat conv_cat(wrn_conv_pass pass) {
  return pass == WRN_CONV_FORWARD          ? WRN_CAT_CONV_FWD
         : pass == WRN_CONV_BACKWARD_DATA ? WRN_CAT_CONV_BWD_DATA
                                           : WRN_CAT_CONV_BWD_WEIGHT;
}
/* Useful FLOPs of a pass of the whole shape (2 per multiply-add of the direct convolution). */
double conv_flops(const wrn_conv_shape *s);

#endif
