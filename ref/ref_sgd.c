#include "ref_sgd.h"

void ref_sgd_step(double *theta, const double *grad, double *v, size_t n, double lr, double mu,
                  double wd, int nesterov, int first_step) {
  for (size_t i = 0; i < n; i++) {
    double g = grad[i] + wd * theta[i];
    if (first_step) v[i] = g;
    else v[i] = mu * v[i] + g;
    double d = nesterov ? g + mu * v[i] : v[i];
    theta[i] -= lr * d;
  }
}
