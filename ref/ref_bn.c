/* Straight from the definitions: two passes in double, no chunking. */
#include "ref_bn.h"

#include <math.h>
#include <stddef.h>

#define AT(i, ch, p) (((size_t)(i) * (size_t)c + (size_t)(ch)) * (size_t)hw + (size_t)(p))

void ref_bn_forward_train(double *y, double *mean, double *invstd, double *rmean, double *rvar,
                          const double *x, const double *gamma, const double *beta, int n, int c,
                          int hw, double momentum, double eps, int relu) {
  double N = (double)n * hw;
  for (int ch = 0; ch < c; ch++) {
    double s = 0;
    for (int i = 0; i < n; i++)
      for (int p = 0; p < hw; p++) s += x[AT(i, ch, p)];
    double m = s / N, v = 0;
    for (int i = 0; i < n; i++)
      for (int p = 0; p < hw; p++) v += (x[AT(i, ch, p)] - m) * (x[AT(i, ch, p)] - m);
    double var = v / N, unbiased = N > 1 ? v / (N - 1) : var;
    double is = 1 / sqrt(var + eps);
    mean[ch] = m;
    invstd[ch] = is;
    rmean[ch] = (1 - momentum) * rmean[ch] + momentum * m;
    rvar[ch] = (1 - momentum) * rvar[ch] + momentum * unbiased;
    for (int i = 0; i < n; i++)
      for (int p = 0; p < hw; p++) {
        double o = gamma[ch] * (x[AT(i, ch, p)] - m) * is + beta[ch];
        y[AT(i, ch, p)] = relu && o < 0 ? 0 : o;
      }
  }
}

void ref_bn_forward_infer(double *y, const double *x, const double *gamma, const double *beta,
                          const double *rmean, const double *rvar, int n, int c, int hw,
                          double eps, int relu) {
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (int p = 0; p < hw; p++) {
        double o = gamma[ch] * (x[AT(i, ch, p)] - rmean[ch]) / sqrt(rvar[ch] + eps) + beta[ch];
        y[AT(i, ch, p)] = relu && o < 0 ? 0 : o;
      }
}

void ref_bn_backward(double *dx, double *dgamma, double *dbeta, const double *dy,
                     const double *x, const double *y, const double *gamma, const double *mean,
                     const double *invstd, int n, int c, int hw, int relu, int accumulate) {
  double N = (double)n * hw;
  for (int ch = 0; ch < c; ch++) {
    double db = 0, dg = 0;
    for (int i = 0; i < n; i++)
      for (int p = 0; p < hw; p++) {
        size_t k = AT(i, ch, p);
        double g = relu && !(y[k] > 0) ? 0 : dy[k];
        db += g;
        dg += g * (x[k] - mean[ch]) * invstd[ch];
      }
    for (int i = 0; i < n; i++)
      for (int p = 0; p < hw; p++) {
        size_t k = AT(i, ch, p);
        double g = relu && !(y[k] > 0) ? 0 : dy[k];
        double xhat = (x[k] - mean[ch]) * invstd[ch];
        double v = gamma[ch] * invstd[ch] / N * (N * g - db - xhat * dg);
        dx[k] = accumulate ? dx[k] + v : v;
      }
    dbeta[ch] = accumulate ? dbeta[ch] + db : db;
    dgamma[ch] = accumulate ? dgamma[ch] + dg : dg;
  }
}
