/* Shared by every kernel program: the real type, Philox4x32-10 and small helpers.
 * Built with -DREAL=float (default) or -DREAL=double -DWRN_FP64=1. */
#ifndef REAL
#define REAL float
#endif
#ifdef WRN_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy as 1, 2, 3",
 * SC'11). Counter c, key k; returns four 32-bit words. host/random.c has the same code. */
#define WRN_PHILOX_M0 0xD2511F53u
#define WRN_PHILOX_M1 0xCD9E8D57u
#define WRN_PHILOX_W0 0x9E3779B9u
#define WRN_PHILOX_W1 0xBB67AE85u

inline uint4 wrn_philox(uint4 c, uint2 k) {
  for (int r = 0; r < 10; r++) {
    uint hi0 = mul_hi(WRN_PHILOX_M0, c.x), lo0 = WRN_PHILOX_M0 * c.x;
    uint hi1 = mul_hi(WRN_PHILOX_M1, c.z), lo1 = WRN_PHILOX_M1 * c.z;
    c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k.x += WRN_PHILOX_W0;
    k.y += WRN_PHILOX_W1;
  }
  return c;
}

/* Uniform in [0, 1) with 24 bits, exact in float and double. */
inline float wrn_u01(uint x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* Uniform integer in [0, n) from 32 random bits (multiply-shift). */
inline uint wrn_below(uint x, uint n) { return (uint)(((ulong)x * (ulong)n) >> 32); }
