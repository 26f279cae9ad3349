/* Naive double-precision pooling over x[planes][h][w], for tests. */
#ifndef WRN_REF_POOL_H
#define WRN_REF_POOL_H

/* Output size, or -1 when the shape has no output. */
int ref_pool_out(int size, int k, int stride, int pad);
void ref_avgpool_forward(double *y, const double *x, int planes, int h, int w, int k,
                         int stride, int pad);
/* dx (+)= ... by accumulate; scatter form. */
void ref_avgpool_backward(double *dx, const double *dy, int planes, int h, int w, int k,
                          int stride, int pad, int accumulate);
/* argmax[planes*oh*ow] (may be NULL) gets the winning input index within the plane. */
void ref_maxpool_forward(double *y, int *argmax, const double *x, int planes, int h, int w,
                         int k, int stride, int pad);
void ref_maxpool_backward(double *dx, const double *dy, const double *x, int planes, int h,
                          int w, int k, int stride, int pad, int accumulate);

#endif
