/* Temporary: algorithms not written yet report that they support nothing. */
#include "conv_internal.h"
static int none(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, const conv_params *p) { return 0; }
static size_t nows(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, const conv_params *p, size_t m) { return (size_t)-1; }
static int nocand(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, conv_params *out, int max) { return 0; }
static wrn_status norun(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, const wrn_conv_io *io, const conv_params *p) { return WRN_STATUS_UNSUPPORTED; }
const conv_algo wrn_conv_algo_implicit = {"implicit", none, nows, nocand, norun};
const conv_algo wrn_conv_algo_splitk = {"splitk", none, nows, nocand, norun};


const conv_algo wrn_conv_algo_fft = {"fft", none, nows, nocand, norun};
