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

/* Scalar words and 64-bit products rather than uint4 and mul_hi: the same bits, but PoCL
 * vectorises this form across work-items (7x faster on a CPU); GPUs compile both alike. */
inline uint4 wrn_philox(uint4 c, uint2 k) {
  uint c0 = c.x, c1 = c.y, c2 = c.z, c3 = c.w, k0 = k.x, k1 = k.y;
  for (int r = 0; r < 10; r++) {
    ulong p0 = (ulong)WRN_PHILOX_M0 * c0, p1 = (ulong)WRN_PHILOX_M1 * c2;
    uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0, n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint)p1;
    c3 = (uint)p0;
    c0 = n0;
    c2 = n2;
    k0 += WRN_PHILOX_W0;
    k1 += WRN_PHILOX_W1;
  }
  return (uint4)(c0, c1, c2, c3);
}

/* Uniform in [0, 1) with 24 bits, exact in float and double. */
inline float wrn_u01(uint x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* Uniform integer in [0, n) from 32 random bits (multiply-shift). */
inline uint wrn_below(uint x, uint n) { return (uint)(((ulong)x * (ulong)n) >> 32); }
