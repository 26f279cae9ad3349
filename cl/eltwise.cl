/* Element-wise ops: ReLU, residual add, axpy. One work-item per element. */

__kernel void relu_fwd(__global real *y, ulong y_off, __global const real *x, ulong x_off,
                       ulong n) {
  size_t i = get_global_id(0);
  if (i >= n) return;
  real v = x[x_off + i];
  y[y_off + i] = v > (real)0 ? v : (real)0;
}

/* dx (+)= dy * (y > 0) */
__kernel void relu_bwd(__global real *dx, ulong dx_off, __global const real *dy, ulong dy_off,
                       __global const real *y, ulong y_off, ulong n, int accumulate) {
  size_t i = get_global_id(0);
  if (i >= n) return;
  real g = y[y_off + i] > (real)0 ? dy[dy_off + i] : (real)0;
  if (accumulate) g += dx[dx_off + i];
  dx[dx_off + i] = g;
}

__kernel void add_fwd(__global real *y, ulong y_off, __global const real *a, ulong a_off,
                      __global const real *b, ulong b_off, ulong n) {
  size_t i = get_global_id(0);
  if (i >= n) return;
  y[y_off + i] = a[a_off + i] + b[b_off + i];
}

/* y (+)= alpha x */
__kernel void axpy(__global real *y, ulong y_off, __global const real *x, ulong x_off,
                   real alpha, ulong n, int accumulate) {
  size_t i = get_global_id(0);
  if (i >= n) return;
  real v = alpha * x[x_off + i];
  if (accumulate) v += y[y_off + i];
  y[y_off + i] = v;
}
