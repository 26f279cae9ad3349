/* Naive double-precision batch norm over x[n][c][hw], for tests. */
#ifndef WRN_REF_BN_H
#define WRN_REF_BN_H

/* Training forward: y, mean[c], invstd[c]; rmean/rvar[c] updated in place. */
void ref_bn_forward_train(double *y, double *mean, double *invstd, double *rmean, double *rvar,
                          const double *x, const double *gamma, const double *beta, int n, int c,
                          int hw, double momentum, double eps, int relu);
void ref_bn_forward_infer(double *y, const double *x, const double *gamma, const double *beta,
                          const double *rmean, const double *rvar, int n, int c, int hw,
                          double eps, int relu);
/* Backward of the training forward; outputs (+)= by accumulate. y is the forward output. */
void ref_bn_backward(double *dx, double *dgamma, double *dbeta, const double *dy,
                     const double *x, const double *y, const double *gamma, const double *mean,
                     const double *invstd, int n, int c, int hw, int relu, int accumulate);

#endif
