/* Naive double-precision SGD step (Torch/PyTorch semantics, docs/wrn-recipe.md). */
#ifndef WRN_REF_SGD_H
#define WRN_REF_SGD_H

#include <stddef.h>

/* Updates theta[n] and v[n] in place from grad[n]. */
void ref_sgd_step(double *theta, const double *grad, double *v, size_t n, double lr, double mu,
                  double wd, int nesterov, int first_step);

#endif
