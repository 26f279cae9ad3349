/* Naive double-precision softmax cross-entropy. */
#ifndef WRN_REF_LOSS_H
#define WRN_REF_LOSS_H

/* loss[n], correct[n], dl[n][k] (may be NULL) from x[n][k] and labels[n]; a label outside
 * [0, k) gives loss NaN, correct 0, dl NaN. dl = (softmax - onehot) * scale / n. */
void ref_softmax_xent(double *loss, double *correct, double *dl, const double *x,
                      const int *labels, int n, int k, double scale);

/* Label smoothing eps: loss[i] = -sum_j q_j log softmax_j with q = (1 - eps) onehot + eps / k
 * (labels must be in [0, k)), dl = (softmax - q) * scale / n (may be NULL). */
void ref_softmax_xent_smooth(double *loss, double *dl, const double *x, const int *labels, int n,
                             int k, double scale, double eps);

#endif
