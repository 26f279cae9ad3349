/* Naive fully connected layer in double: the reference for wrn_linear_*. */
#ifndef WRN_REF_LINEAR_H
#define WRN_REF_LINEAR_H

/* y[n][out] = x[n][in] w[out][in]^T + b[out] */
void ref_linear_forward(double *y, const double *x, const double *w, const double *b, int n,
                        int in, int out);
/* dx[n][in] = dy w (skipped when dx is NULL); dw[out][in] = dy^T x; db[out] = sum_n dy.
 * Outputs are overwritten. */
void ref_linear_backward(double *dx, double *dw, double *db, const double *dy, const double *x,
                         const double *w, int n, int in, int out);

#endif
