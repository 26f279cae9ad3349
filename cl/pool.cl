/* Pooling over x[planes][h][w] (planes = n*c, NCHW), square window k, stride, padding pad.
 * Output [planes][oh][ow]. Backward is in gather form: each dx element loops over the windows
 * that contain it, in a fixed order, so there are no atomics and the bits are reproducible.
 * Host-side guarantees: pad < k (every window holds at least one real cell) and every
 * element count fits in uint. */

/* Range [*lo, *hi] of outputs along one axis whose window covers input coordinate i. */
inline void pool_cover(int i, int k, int stride, int pad, int o_max, int *lo, int *hi) {
  int a = i + pad - k + 1; /* the first window start that still reaches i */
  *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  *hi = min(o_max - 1, (i + pad) / stride);
}

/* Average pooling, padded cells count in the divisor: y = sum(window) * inv_area. */
__kernel void avgpool_fwd(__global real *y, ulong y_off, __global const real *x, ulong x_off,
                          uint planes, int h, int w, int oh, int ow, int k, int stride,
                          int pad, real inv_area) {
  uint i = get_global_id(0);
  if (i >= planes * (uint)(oh * ow)) return;
  int ox = i % (uint)ow;
  uint t = i / (uint)ow;
  int oy = t % (uint)oh;
  uint plane = t / (uint)oh;
  __global const real *xp = x + x_off + (ulong)plane * (uint)(h * w);
  int y0 = oy * stride - pad, x0 = ox * stride - pad;
  real s = 0;
  for (int ky = max(0, -y0); ky < min(k, h - y0); ky++)
    for (int kx = max(0, -x0); kx < min(k, w - x0); kx++) s += xp[(y0 + ky) * w + x0 + kx];
  y[y_off + i] = s * inv_area;
}

/* Global average pooling (window = the whole plane): tpp work-items share a plane, each
 * summing a strided slice, then a local tree. Consecutive planes are contiguous, so a
 * work-group reads one contiguous block. Grid rounded to the work-group size lsz, a multiple
 * of tpp (both powers of two). */
__kernel void avgpool_global_fwd(__global real *y, ulong y_off, __global const real *x,
                                 ulong x_off, uint planes, uint hw, uint tpp, real inv_area,
                                 __local real *ls) {
  uint lid = get_local_id(0);
  uint plane = get_global_id(0) / tpp, t = lid % tpp;
  real s = 0;
  if (plane < planes) {
    __global const real *xp = x + x_off + (ulong)plane * hw;
    for (uint j = t; j < hw; j += tpp) s += xp[j];
  }
  ls[lid] = s;
  for (uint st = tpp >> 1; st > 0; st >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (t < st) ls[lid] += ls[lid + st];
  }
  if (t == 0 && plane < planes) y[y_off + plane] = ls[lid] * inv_area;
}

/* Backward of the global case: dx[plane][j] (+)= dy[plane] * inv_area. */
__kernel void avgpool_global_bwd(__global real *dx, ulong dx_off, __global const real *dy,
                                 ulong dy_off, uint planes, uint hw, real inv_area,
                                 int accumulate) {
  uint i = get_global_id(0);
  if (i >= planes * hw) return;
  real v = dy[dy_off + i / hw] * inv_area;
  if (accumulate) v += dx[dx_off + i];
  dx[dx_off + i] = v;
}

/* dx (+)= inv_area * sum of dy over the windows that contain the element. */
__kernel void avgpool_bwd(__global real *dx, ulong dx_off, __global const real *dy,
                          ulong dy_off, uint planes, int h, int w, int oh, int ow, int k,
                          int stride, int pad, real inv_area, int accumulate) {
  uint i = get_global_id(0);
  if (i >= planes * (uint)(h * w)) return;
  int ix = i % (uint)w;
  uint t = i / (uint)w;
  int iy = t % (uint)h;
  uint plane = t / (uint)h;
  __global const real *dyp = dy + dy_off + (ulong)plane * (uint)(oh * ow);
  int ylo, yhi, xlo, xhi;
  pool_cover(iy, k, stride, pad, oh, &ylo, &yhi);
  pool_cover(ix, k, stride, pad, ow, &xlo, &xhi);
  real s = 0;
  for (int oy = ylo; oy <= yhi; oy++)
    for (int ox = xlo; ox <= xhi; ox++) s += dyp[oy * ow + ox];
  s *= inv_area;
  if (accumulate) s += dx[dx_off + i];
  dx[dx_off + i] = s;
}

/* Position (y * w + x) of the first maximum of the window at (y0, x0) in row-major scan
 * order; padded cells are skipped, so they never win. */
inline int pool_argmax(__global const real *xp, int h, int w, int k, int y0, int x0,
                       real *best_out) {
  int ky0 = max(0, -y0), ky1 = min(k, h - y0), kx0 = max(0, -x0), kx1 = min(k, w - x0);
  int best_i = (y0 + ky0) * w + x0 + kx0;
  real best = xp[best_i];
  for (int ky = ky0; ky < ky1; ky++)
    for (int kx = kx0; kx < kx1; kx++) {
      int j = (y0 + ky) * w + x0 + kx;
      real v = xp[j];
      if (v > best) {
        best = v;
        best_i = j;
      }
    }
  *best_out = best;
  return best_i;
}

__kernel void maxpool_fwd(__global real *y, ulong y_off, __global const real *x, ulong x_off,
                          uint planes, int h, int w, int oh, int ow, int k, int stride,
                          int pad) {
  uint i = get_global_id(0);
  if (i >= planes * (uint)(oh * ow)) return;
  int ox = i % (uint)ow;
  uint t = i / (uint)ow;
  int oy = t % (uint)oh;
  uint plane = t / (uint)oh;
  __global const real *xp = x + x_off + (ulong)plane * (uint)(h * w);
  real best;
  pool_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad, &best);
  y[y_off + i] = best;
}

/* dx (+)= sum of dy over the windows whose argmax (recomputed from x) is this element. */
__kernel void maxpool_bwd(__global real *dx, ulong dx_off, __global const real *dy,
                          ulong dy_off, __global const real *x, ulong x_off, uint planes, int h,
                          int w, int oh, int ow, int k, int stride, int pad, int accumulate) {
  uint i = get_global_id(0);
  if (i >= planes * (uint)(h * w)) return;
  int ix = i % (uint)w;
  uint t = i / (uint)w;
  int iy = t % (uint)h;
  uint plane = t / (uint)h;
  __global const real *xp = x + x_off + (ulong)plane * (uint)(h * w);
  __global const real *dyp = dy + dy_off + (ulong)plane * (uint)(oh * ow);
  int me = iy * w + ix;
  int ylo, yhi, xlo, xhi;
  pool_cover(iy, k, stride, pad, oh, &ylo, &yhi);
  pool_cover(ix, k, stride, pad, ow, &xlo, &xhi);
  real s = 0;
  for (int oy = ylo; oy <= yhi; oy++)
    for (int ox = xlo; ox <= xhi; ox++) {
      real best;
      if (pool_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad, &best) == me)
        s += dyp[oy * ow + ox];
    }
  if (accumulate) s += dx[dx_off + i];
  dx[dx_off + i] = s;
}
