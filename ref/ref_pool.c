/* Scatter-form references: forward visits each window, backward pushes each output gradient
 * back into its window (the kernels gather instead). */
#include "ref_pool.h"

#include <stdlib.h>

int ref_pool_out(int size, int k, int stride, int pad) {
  int span = size + 2 * pad - k;
  return span < 0 ? -1 : span / stride + 1;
}

void ref_avgpool_forward(double *y, const double *x, int planes, int h, int w, int k,
                         int stride, int pad) {
  int oh = ref_pool_out(h, k, stride, pad), ow = ref_pool_out(w, k, stride, pad);
  for (int pl = 0; pl < planes; pl++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        double s = 0;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += x[((size_t)pl * h + iy) * w + ix];
          }
        y[((size_t)pl * oh + oy) * ow + ox] = s / (k * k);
      }
}

void ref_avgpool_backward(double *dx, const double *dy, int planes, int h, int w, int k,
                          int stride, int pad, int accumulate) {
  int oh = ref_pool_out(h, k, stride, pad), ow = ref_pool_out(w, k, stride, pad);
  size_t nin = (size_t)planes * h * w;
  double *g = calloc(nin, sizeof *g);
  for (int pl = 0; pl < planes; pl++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        double d = dy[((size_t)pl * oh + oy) * ow + ox] / (k * k);
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) g[((size_t)pl * h + iy) * w + ix] += d;
          }
      }
  for (size_t i = 0; i < nin; i++) dx[i] = accumulate ? dx[i] + g[i] : g[i];
  free(g);
}

void ref_maxpool_forward(double *y, int *argmax, const double *x, int planes, int h, int w,
                         int k, int stride, int pad) {
  int oh = ref_pool_out(h, k, stride, pad), ow = ref_pool_out(w, k, stride, pad);
  for (int pl = 0; pl < planes; pl++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        int best = -1;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++) {
            int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            int j = iy * w + ix;
            if (best < 0 || x[(size_t)pl * h * w + j] > x[(size_t)pl * h * w + best]) best = j;
          }
        size_t o = ((size_t)pl * oh + oy) * ow + ox;
        y[o] = x[(size_t)pl * h * w + best];
        if (argmax) argmax[o] = best;
      }
}

void ref_maxpool_backward(double *dx, const double *dy, const double *x, int planes, int h,
                          int w, int k, int stride, int pad, int accumulate) {
  int oh = ref_pool_out(h, k, stride, pad), ow = ref_pool_out(w, k, stride, pad);
  size_t nin = (size_t)planes * h * w, nout = (size_t)planes * oh * ow;
  double *y = malloc(nout * sizeof *y), *g = calloc(nin, sizeof *g);
  int *am = malloc(nout * sizeof *am);
  ref_maxpool_forward(y, am, x, planes, h, w, k, stride, pad);
  for (size_t o = 0; o < nout; o++) {
    size_t pl = o / ((size_t)oh * ow);
    g[pl * h * w + (size_t)am[o]] += dy[o];
  }
  for (size_t i = 0; i < nin; i++) dx[i] = accumulate ? dx[i] + g[i] : g[i];
  free(y), free(g), free(am);
}
