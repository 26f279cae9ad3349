/* SGD with momentum, weight decay and optional Nesterov (Torch/PyTorch semantics) over one
 * flat parameter buffer: one work-item per parameter, one launch per step. */

/* p[n] parameters, g[n] gradients, v[n] momentum buffer. On the first step v is not read
 * (it may hold garbage, NaN included): it becomes the decayed gradient. */
__kernel void sgd_step(__global real *p, ulong p_off, __global const real *g, ulong g_off,
                       __global real *v, ulong v_off, ulong n, real lr, real mu, real wd,
                       int nesterov, int first_step) {
  size_t i = get_global_id(0);
  if (i >= n) return;
  real th = p[p_off + i];
  real gi = g[g_off + i] + wd * th;
  real vi = first_step ? gi : mu * v[v_off + i] + gi;
  v[v_off + i] = vi;
  p[p_off + i] = th - lr * (nesterov ? gi + mu * vi : vi);
}
