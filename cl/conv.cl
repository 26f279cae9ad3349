/* Convolution helpers around the CLBlast GEMMs: im2col, gather-style col2im and the layout
 * changes between NCHW and the channel-major GEMM matrices.
 *
 * A chunk holds cnt images; P = ho*wo output pixels per image; N = cnt*P GEMM columns.
 * col[K = c_in*k*k][N], column = image*P + pixel, row = (ci*k + ky)*k + kx.
 * mat[c][N] is a channel-major matrix (GEMM output or input): mat[c][img*P + p].
 *
 * Launch shape (every kernel here): dimension 0 runs over the pixels of one image plane,
 * dimension 1 over (image, channel) planes. Adjacent work-items touch adjacent addresses
 * (coalesced on GPUs), and the plane index is constant along dimension 0, so its divisions
 * are hoisted out of PoCL's work-item loops on CPUs.
 *
 * The shapes WRNs use get copies of im2col (3x3) and col2im (3x3 and 1x1, strides 1 and 2)
 * with the kernel size and stride as literals: the kernel offsets unroll, and a body without
 * loops lets PoCL vectorise across work-items. On the CPU that made col2im 1.6-3.5x and
 * im2col 1.3x faster (im2col is mostly bound by writing the col matrix). */

/* col[(ci*k*k + t)][img*P + p] = x[img][ci][oy*stride - pad + ky][ox*stride - pad + kx]
 * with t = ky*k + kx, p = oy*wo + ox; zero where the window lies in the padding.
 * Global size (>= P, >= cnt*c_in); plane = img*c_in + ci. KK is the kernel size: the
 * argument k in im2col, a literal in the copies that unroll (UNROLL). */
#define WRN_IM2COL(NAME, KK, UNROLL)                                                           \
  __kernel void NAME(__global real *col, ulong col_off, __global const real *x, ulong x_off,  \
                     int c_in, int h, int w, int k, int stride, int pad, int ho, int wo,      \
                     int cnt) {                                                               \
    int p = (int)get_global_id(0);                                                             \
    int plane = (int)get_global_id(1);                                                         \
    int P = ho * wo;                                                                           \
    if (p >= P || plane >= cnt * c_in) return;                                                 \
    int img = plane / c_in, ci = plane - img * c_in;                                           \
    int oy = p / wo, ox = p - oy * wo;                                                         \
    int iy0 = oy * stride - pad, ix0 = ox * stride - pad;                                      \
    ulong N = (ulong)cnt * (ulong)P;                                                           \
    __global const real *xp = x + x_off + (ulong)plane * (ulong)(h * w);                       \
    __global real *cp = col + col_off + (ulong)(ci * KK * KK) * N + (ulong)img * (ulong)P + p; \
    UNROLL for (int ky = 0; ky < KK; ky++) {                                                   \
      int iy = iy0 + ky;                                                                       \
      int row_ok = iy >= 0 && iy < h;                                                          \
      UNROLL for (int kx = 0; kx < KK; kx++) {                                                 \
        int ix = ix0 + kx;                                                                     \
        real v = (real)0;                                                                      \
        if (row_ok && ix >= 0 && ix < w) v = xp[iy * w + ix];                                  \
        cp[(ulong)(ky * KK + kx) * N] = v;                                                     \
      }                                                                                        \
    }                                                                                          \
  }

WRN_IM2COL(im2col, k, )
WRN_IM2COL(im2col_k3, 3, _Pragma("unroll"))

/* dx[img][ci][iy][ix] (+)= sum over the outputs (oy, ox) whose window covers (iy, ix), at
 * kernel offset (ky, kx) = (iy + pad - oy*stride, ix + pad - ox*stride), of
 * dcol[(ci*k + ky)*k + kx][img*P + oy*wo + ox]. Each dx element gathers its own terms in a
 * fixed order: no atomics, identical bits on every run. The covering outputs form the range
 * ceil((i + pad - k + 1) / stride) .. floor((i + pad) / stride), so four divisions per element
 * replace a test per kernel offset (integer division is slow on CPUs).
 * Global size (>= h*w, >= cnt*c_in); plane = img*c_in + ci. */
__kernel void col2im(__global real *dx, ulong dx_off, __global const real *dcol, ulong dcol_off,
                     int c_in, int h, int w, int k, int stride, int pad, int ho, int wo,
                     int cnt, int accumulate) {
  int q = (int)get_global_id(0);
  int plane = (int)get_global_id(1);
  if (q >= h * w || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int iy = q / w, ix = q - iy * w;
  int ty = iy + pad, tx = ix + pad; /* position in the padded input */
  int oy0 = ty - k + 1 > 0 ? (ty - k + stride) / stride : 0;
  int oy1 = min(ty / stride, ho - 1);
  int ox0 = tx - k + 1 > 0 ? (tx - k + stride) / stride : 0;
  int ox1 = min(tx / stride, wo - 1);
  int P = ho * wo;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *cp = dcol + dcol_off + (ulong)(ci * k * k) * N + (ulong)img * (ulong)P;
  real s = (real)0;
  for (int oy = oy0; oy <= oy1; oy++) {
    int ky = ty - oy * stride;
    for (int ox = ox0; ox <= ox1; ox++) {
      int kx = tx - ox * stride;
      s += cp[(ulong)(ky * k + kx) * N + (ulong)(oy * wo + ox)];
    }
  }
  __global real *d = dx + dx_off + (ulong)plane * (ulong)(h * w) + q;
  if (accumulate) s += *d;
  *d = s;
}

/* y[img][c][p] = mat[c][img*P + p]: the forward GEMM result back to NCHW.
 * Global size (>= P, >= cnt*C); plane = img*C + c. */
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
 * Global size (>= P, >= cnt*C); plane = img*C + c. */
__kernel void nchw_to_mat(__global real *mat, ulong mat_off, __global const real *dy, ulong dy_off,
                          int C, int P, int cnt) {
  int p = (int)get_global_id(0);
  int plane = (int)get_global_id(1);
  if (p >= P || plane >= cnt * C) return;
  int img = plane / C, c = plane - img * C;
  ulong N = (ulong)cnt * (ulong)P;
  mat[mat_off + (ulong)c * N + (ulong)img * P + p] = dy[dy_off + (ulong)plane * (ulong)P + p];
}

/* col2im with the kernel size KK and stride SS as literals, for the shapes WRNs use: the
 * offsets unroll and the divisions by SS become shifts, so the body has no loop and PoCL
 * vectorises across work-items. Same terms in the same order (oy, then ox ascending) as
 * col2im. */
#define WRN_COL2IM_FIXED(NAME, KK, SS)                                                         \
  __kernel void NAME(__global real *dx, ulong dx_off, __global const real *dcol,               \
                     ulong dcol_off, int c_in, int h, int w, int k, int stride, int pad,      \
                     int ho, int wo, int cnt, int accumulate) {                               \
    int q = (int)get_global_id(0);                                                             \
    int plane = (int)get_global_id(1);                                                         \
    if (q >= h * w || plane >= cnt * c_in) return;                                             \
    int img = plane / c_in, ci = plane - img * c_in;                                           \
    int iy = q / w, ix = q - iy * w;                                                           \
    int ty = iy + pad, tx = ix + pad;                                                          \
    int P = ho * wo;                                                                           \
    ulong N = (ulong)cnt * (ulong)P;                                                           \
    __global const real *cp =                                                                  \
        dcol + dcol_off + (ulong)(ci * KK * KK) * N + (ulong)img * (ulong)P;                   \
    real s = (real)0;                                                                          \
    _Pragma("unroll") for (int ky = KK - 1; ky >= 0; ky--) {                                   \
      int sy = ty - ky;                                                                        \
      int oy = sy / SS;                                                                        \
      int row_ok = sy >= 0 && oy * SS == sy && oy < ho;                                        \
      _Pragma("unroll") for (int kx = KK - 1; kx >= 0; kx--) {                                 \
        int sx = tx - kx;                                                                      \
        int ox = sx / SS;                                                                      \
        if (row_ok && sx >= 0 && ox * SS == sx && ox < wo)                                     \
          s += cp[(ulong)(ky * KK + kx) * N + (ulong)(oy * wo + ox)];                          \
      }                                                                                        \
    }                                                                                          \
    __global real *d = dx + dx_off + (ulong)plane * (ulong)(h * w) + q;                        \
    if (accumulate) s += *d;                                                                   \
    *d = s;                                                                                    \
  }

WRN_COL2IM_FIXED(col2im_k3s1, 3, 1)
WRN_COL2IM_FIXED(col2im_k3s2, 3, 2)
WRN_COL2IM_FIXED(col2im_k1s1, 1, 1)
WRN_COL2IM_FIXED(col2im_k1s2, 1, 2)

