/* Linear layer helpers around the CLBlast GEMMs: bias broadcast and the bias gradient. */

/* y[i][j] = b[j] for i < n, j < out: the GEMM then adds x W^T with beta = 1. */
__kernel void bias_fill(__global real *y, ulong y_off, __global const real *b, ulong b_off,
                        int n, int out) {
  int j = (int)get_global_id(0);
  int i = (int)get_global_id(1);
  if (j >= out || i >= n) return;
  y[y_off + (ulong)i * (ulong)out + j] = b[b_off + j];
}

/* db[j] (+)= sum_i dy[i][j]. One work-group per column j: work-item t sums rows t, t+L, ...
 * in order, then a tree in local memory combines the L partial sums. The order is fixed by
 * L alone, so two runs give identical bits. L (the local size) must be a power of two. */
__kernel void col_sum(__global real *db, ulong db_off, __global const real *dy, ulong dy_off,
                      int n, int out, int accumulate, __local real *part) {
  int j = (int)get_group_id(0);
  int t = (int)get_local_id(0);
  int L = (int)get_local_size(0);
  real s = (real)0;
  if (j < out)
    for (int i = t; i < n; i += L) s += dy[dy_off + (ulong)i * (ulong)out + j];
  part[t] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int m = L / 2; m > 0; m /= 2) {
    if (t < m) part[t] += part[t + m];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (t == 0 && j < out) {
    real v = part[0];
    if (accumulate) v += db[db_off + j];
    db[db_off + j] = v;
  }
}
