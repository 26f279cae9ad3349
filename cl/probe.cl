/* Peak arithmetic probe: independent chains of multiply-adds, no memory traffic in the loop,
 * so the rate approaches the device's fused multiply-add peak. */
__kernel void fma_probe(__global real *out, real a, real b, int iters) {
  size_t g = get_global_id(0);
  real x0 = (real)g * (real)1e-6, x1 = x0 + (real)1, x2 = x0 + (real)2, x3 = x0 + (real)3;
  real x4 = x0 + (real)4, x5 = x0 + (real)5, x6 = x0 + (real)6, x7 = x0 + (real)7;
  for (int i = 0; i < iters; i++) {
    x0 = mad(x0, a, b); x1 = mad(x1, a, b); x2 = mad(x2, a, b); x3 = mad(x3, a, b);
    x4 = mad(x4, a, b); x5 = mad(x5, a, b); x6 = mad(x6, a, b); x7 = mad(x7, a, b);
  }
  /* Written so the compiler cannot drop the chains. */
  out[g] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}
