/* Peak arithmetic probe: independent chains of vector multiply-adds, no memory traffic in the
 * loop. Vectors let a CPU implementation fill its SIMD lanes (a scalar chain per work-item
 * does not vectorise across work-items once it sits in a loop); GPUs run the lanes as
 * independent instructions. FLOPs per iteration: 8 chains x 16 lanes x 2. */
#define WRN_PROBE_CHAINS 8
#define WRN_PROBE_LANES 16
#define realv_(t) t##16
#define realv_x(t) realv_(t)
typedef realv_x(REAL) realv;

__kernel void fma_probe(__global real *out, real a, real b, int iters) {
  size_t g = get_global_id(0);
  real s = (real)g * (real)1e-6;
  realv x0 = (realv)(s), x1 = x0 + (real)1, x2 = x0 + (real)2, x3 = x0 + (real)3;
  realv x4 = x0 + (real)4, x5 = x0 + (real)5, x6 = x0 + (real)6, x7 = x0 + (real)7;
  realv av = (realv)(a), bv = (realv)(b);
  for (int i = 0; i < iters; i++) {
    x0 = mad(x0, av, bv); x1 = mad(x1, av, bv); x2 = mad(x2, av, bv); x3 = mad(x3, av, bv);
    x4 = mad(x4, av, bv); x5 = mad(x5, av, bv); x6 = mad(x6, av, bv); x7 = mad(x7, av, bv);
  }
  realv t = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
  /* Written so the compiler cannot drop the chains. */
  out[g] = t.s0 + t.s1 + t.s2 + t.s3 + t.s4 + t.s5 + t.s6 + t.s7 + t.s8 + t.s9 + t.sa + t.sb +
           t.sc + t.sd + t.se + t.sf;
}
