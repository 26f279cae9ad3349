#include "ref_dropout.h"

#include "wrn.h"

void ref_dropout_mask(unsigned char *keep, size_t n, double p, uint64_t seed, uint64_t counter) {
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  for (size_t i = 0; i < n; i++) {
    uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), (uint32_t)counter,
                       (uint32_t)(counter >> 32)}, r[4];
    wrn_philox4x32(ctr, key, r);
    keep[i] = (double)wrn_u01(r[0]) >= p;
  }
}
