/* Naive GEMM in double: the reference for wrn_gemm. */
#ifndef WRN_REF_GEMM_H
#define WRN_REF_GEMM_H

#include <stddef.h>

/* Row-major c[i][j] (ldc) = alpha sum_p op(a)[i][p] op(b)[p][j] + beta c[i][j], where
 * op(a)[i][p] is a[i*lda + p], or a[p*lda + i] with ta; likewise b. beta = 0 ignores c. */
void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, double alpha, const double *a,
              size_t lda, const double *b, size_t ldb, double beta, double *c, size_t ldc);

#endif
