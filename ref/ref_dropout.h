/* Host dropout mask from the documented rule, for tests. */
#ifndef WRN_REF_DROPOUT_H
#define WRN_REF_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

/* keep[i] = 1 iff wrn_u01(philox((i, counter), seed).x) >= p, for i in [0, n). */
void ref_dropout_mask(unsigned char *keep, size_t n, double p, uint64_t seed, uint64_t counter);

#endif
