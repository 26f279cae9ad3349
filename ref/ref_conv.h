/* Naive direct convolution in double (plain loops over the definition), the reference for
 * the im2col + GEMM path. Shapes as wrn_conv_shape; outputs are overwritten. */
#ifndef WRN_REF_CONV_H
#define WRN_REF_CONV_H

#include "wrn.h"

/* y[n][c_out][ho][wo] = sum_{ci,ky,kx} w[co][ci][ky][kx] x[n][ci][oy*s-p+ky][ox*s-p+kx] */
void ref_conv_forward(double *y, const double *x, const double *w, const wrn_conv_shape *s);
/* dx[n][c_in][h][w]: every (output, tap) pair scatters w * dy into the input it read. */
void ref_conv_backward_data(double *dx, const double *dy, const double *w,
                            const wrn_conv_shape *s);
/* dw[c_out][c_in][k][k] = sum over images and output pixels of dy * x at the tap. */
void ref_conv_backward_weight(double *dw, const double *dy, const double *x,
                              const wrn_conv_shape *s);

#endif
