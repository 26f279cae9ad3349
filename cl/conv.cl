/* Convolution helpers around the CLBlast GEMMs: im2col, gather-style col2im and the layout
 * changes between NCHW and the channel-major GEMM matrices.
 *
 * A chunk holds cnt images; P = ho*wo output pixels per image; N = cnt*P GEMM columns.
 * col[K = c_in*k*k][N], column = image*P + pixel, row = (ci*k + ky)*k + kx.
 * mat[c][N] is a channel-major matrix (GEMM output or input): mat[c][img*P + p].
 *
 * Launch shape (every kernel here): dimension 0 runs over the pixels of one image plane,
 * dimension 1 over (image, channel) planes. Work-groups are (L, 1): adjacent work-items touch
 * adjacent addresses (coalesced on GPUs), and the plane index is constant within a
 * work-group, so its divisions are hoisted out of PoCL's work-item loops on CPUs. */

/* col[(ci*k*k + t)][img*P + p] = x[img][ci][oy*stride - pad + ky][ox*stride - pad + kx]
 * with t = ky*k + kx, p = oy*wo + ox; zero where the window lies in the padding.
 * Global size (>= P, cnt*c_in); plane = img*c_in + ci. */
__kernel void im2col(__global real *col, ulong col_off, __global const real *x, ulong x_off,
                     int c_in, int h, int w, int k, int stride, int pad, int ho, int wo,
                     int cnt) {
  int p = (int)get_global_id(0);
  int plane = (int)get_global_id(1);
  int P = ho * wo;
  if (p >= P || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int oy = p / wo, ox = p - oy * wo;
  int iy0 = oy * stride - pad, ix0 = ox * stride - pad;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *xp = x + x_off + (ulong)plane * (ulong)(h * w);
  __global real *cp = col + col_off + (ulong)(ci * k * k) * N + (ulong)img * (ulong)P + p;
  for (int ky = 0; ky < k; ky++) {
    int iy = iy0 + ky;
    int row_ok = iy >= 0 && iy < h;
    for (int kx = 0; kx < k; kx++) {
      int ix = ix0 + kx;
      real v = (real)0;
      if (row_ok && ix >= 0 && ix < w) v = xp[iy * w + ix];
      *cp = v;
      cp += N;
    }
  }
}

/* dx[img][ci][iy][ix] (+)= sum over the kernel offsets (ky, kx) whose window covers (iy, ix)
 * of dcol[(ci*k + ky)*k + kx][img*P + oy*wo + ox]. Each dx element gathers its own terms in
 * a fixed order: no atomics, identical bits on every run.
 * Global size (>= h*w, cnt*c_in); plane = img*c_in + ci. */
__kernel void col2im(__global real *dx, ulong dx_off, __global const real *dcol, ulong dcol_off,
                     int c_in, int h, int w, int k, int stride, int pad, int ho, int wo,
                     int cnt, int accumulate) {
  int q = (int)get_global_id(0);
  int plane = (int)get_global_id(1);
  if (q >= h * w || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int iy = q / w, ix = q - iy * w;
  int P = ho * wo;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *cp = dcol + dcol_off + (ulong)(ci * k * k) * N + (ulong)img * (ulong)P;
  real s = (real)0;
  for (int ky = 0; ky < k; ky++) {
    int ty = iy + pad - ky;
    if (ty < 0) break; /* larger ky only make it more negative */
    int oy = ty / stride;
    if (oy * stride != ty || oy >= ho) continue;
    for (int kx = 0; kx < k; kx++) {
      int tx = ix + pad - kx;
      if (tx < 0) break;
      int ox = tx / stride;
      if (ox * stride != tx || ox >= wo) continue;
      s += cp[(ulong)(ky * k + kx) * N + (ulong)(oy * wo + ox)];
    }
  }
  __global real *d = dx + dx_off + (ulong)plane * (ulong)(h * w) + q;
  if (accumulate) s += *d;
  *d = s;
}

/* y[img][c][p] = mat[c][img*P + p]: the forward GEMM result back to NCHW.
 * Global size (>= P, cnt*C); plane = img*C + c. */
__kernel void mat_to_nchw(__global real *y, ulong y_off, __global const real *mat, ulong mat_off,
                          int C, int P, int cnt) {
  int p = (int)get_global_id(0);
  int plane = (int)get_global_id(1);
  if (p >= P || plane >= cnt * C) return;
  int img = plane / C, c = plane - img * C;
  ulong N = (ulong)cnt * (ulong)P;
  y[y_off + (ulong)plane * (ulong)P + p] = mat[mat_off + (ulong)c * N + (ulong)img * P + p];
}

/* mat[c][img*P + p] = dy[img][c][p]: the output gradient as a GEMM operand.
 * Global size (>= P, cnt*C); plane = img*C + c. */
__kernel void nchw_to_mat(__global real *mat, ulong mat_off, __global const real *dy, ulong dy_off,
                          int C, int P, int cnt) {
  int p = (int)get_global_id(0);
  int plane = (int)get_global_id(1);
  if (p >= P || plane >= cnt * C) return;
  int img = plane / C, c = plane - img * C;
  ulong N = (ulong)cnt * (ulong)P;
  mat[mat_off + (ulong)c * N + (ulong)img * P + p] = dy[dy_off + (ulong)plane * (ulong)P + p];
}
