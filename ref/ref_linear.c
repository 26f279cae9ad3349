/* Fully connected layer by its definition; see ref_linear.h. */
#include "ref_linear.h"

#include <stddef.h>

void ref_linear_forward(double *y, const double *x, const double *w, const double *b, int n,
                        int in, int out) {
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out; o++) {
      double s = b[o];
      for (int j = 0; j < in; j++) s += x[(size_t)i * in + j] * w[(size_t)o * in + j];
      y[(size_t)i * out + o] = s;
    }
}

void ref_linear_backward(double *dx, double *dw, double *db, const double *dy, const double *x,
                         const double *w, int n, int in, int out) {
  if (dx)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < in; j++) {
        double s = 0;
        for (int o = 0; o < out; o++) s += dy[(size_t)i * out + o] * w[(size_t)o * in + j];
        dx[(size_t)i * in + j] = s;
      }
  for (int o = 0; o < out; o++)
    for (int j = 0; j < in; j++) {
      double s = 0;
      for (int i = 0; i < n; i++) s += dy[(size_t)i * out + o] * x[(size_t)i * in + j];
      dw[(size_t)o * in + j] = s;
    }
  for (int o = 0; o < out; o++) {
    double s = 0;
    for (int i = 0; i < n; i++) s += dy[(size_t)i * out + o];
    db[o] = s;
  }
}
