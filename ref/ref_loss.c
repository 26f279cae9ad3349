#include "ref_loss.h"

#include <math.h>
#include <stddef.h>

void ref_softmax_xent(double *loss, double *correct, double *dl, const double *x,
                      const int *labels, int n, int k, double scale) {
  for (int i = 0; i < n; i++) {
    const double *xi = x + (size_t)i * k;
    int best = 0;
    for (int j = 1; j < k; j++)
      if (xi[j] > xi[best]) best = j;
    double z = 0;
    for (int j = 0; j < k; j++) z += exp(xi[j] - xi[best]);
    double lse = xi[best] + log(z);
    int lab = labels[i];
    int ok = lab >= 0 && lab < k;
    loss[i] = ok ? lse - xi[lab] : NAN;
    correct[i] = ok && best == lab;
    if (dl)
      for (int j = 0; j < k; j++)
        dl[(size_t)i * k + j] =
            ok ? (exp(xi[j] - lse) - (j == lab ? 1.0 : 0.0)) * scale / n : NAN;
  }
}

void ref_softmax_xent_smooth(double *loss, double *dl, const double *x, const int *labels, int n,
                             int k, double scale, double eps) {
  for (int i = 0; i < n; i++) {
    const double *xi = x + (size_t)i * k;
    double mx = xi[0];
    for (int j = 1; j < k; j++) mx = xi[j] > mx ? xi[j] : mx;
    double z = 0;
    for (int j = 0; j < k; j++) z += exp(xi[j] - mx);
    double lse = mx + log(z), l = 0;
    for (int j = 0; j < k; j++) {
      double q = (j == labels[i] ? 1 - eps : 0) + eps / k;
      l -= q * (xi[j] - lse); /* -q_j log p_j */
      if (dl) dl[(size_t)i * k + j] = (exp(xi[j] - lse) - q) * scale / n;
    }
    loss[i] = l;
  }
}
