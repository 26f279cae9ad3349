/* Convolution helpers around the GEMMs (wrn_gemm): im2col, gather-style col2im and the layout
 * changes between NCHW and the channel-major GEMM matrices.
 *
 * A chunk holds cnt images; P = ho*wo output pixels per image; N = cnt*P GEMM columns.
 * col[K = c_in*k*k][N], column = image*P + pixel, row = (ci*k + ky)*k + kx.
 * mat[c][N] is a channel-major matrix (GEMM output or input): mat[c][img*P + p].
 *
 * These kernels only move memory, so what counts is bytes per second. The shapes WRNs use
 * (3x3 pad 1 and 1x1 pad 0, strides 1 and 2, rows of a multiple of 8 pixels) take the
 * *_v8 kernels further down: eight pixels of one row per work-item, read and written as
 * vectors, a three-dimensional launch (runs, rows, planes) with no division per pixel. The
 * relayouts copy runs of 16 (or 4) pixels per work-item. On PoCL (CPU) that brought the
 * whole family from ~330 to ~100 ms per WRN-10-1 training step at batch 128, about the
 * machine's memcpy bandwidth; consecutive work-items still touch consecutive addresses,
 * which keeps the accesses coalesced on GPUs.
 *
 * The generic kernels (any kernel size, stride, padding and width) keep one pixel per
 * work-item: dimension 0 runs over the pixels of one image plane, dimension 1 over
 * (image, channel) planes, so the plane's divisions are hoisted out of PoCL's work-item
 * loops. Copies of them with the kernel size and stride as literals (im2col 3x3, col2im
 * 3x3 and 1x1 at strides 1 and 2) unroll the kernel offsets, and a body without loops lets
 * PoCL vectorise across work-items. */

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

/* Vector types of the context's real: REALN(8) is float8 or double8. */
#define WRN_REALN_(t, n) t##n
#define WRN_REALN(t, n) WRN_REALN_(t, n)
typedef WRN_REALN(REAL, 4) real4v;
typedef WRN_REALN(REAL, 8) real8v;
typedef WRN_REALN(REAL, 16) real16v;

/* The layout changes between NCHW and the channel-major matrices. For each (image, channel)
 * the P pixels are contiguous on both sides, so this is a block copy of planes: each
 * work-item moves a run of V consecutive pixels with one vector load and store (VLOAD/VSTORE
 * of width V; V = 1 uses plain accesses). PoCL then copies 16 lanes at a time instead of
 * one element per work-item; on GPUs consecutive work-items still cover consecutive
 * addresses. Global size (>= P/V, >= cnt*C); plane = img*C + c; requires P % V == 0.
 *
 *   mat_to_nchw: y[img][c][p] (+)= mat[c][img*P + p] (the forward GEMM result back to NCHW;
 *                accumulate adds, for the 1x1 stride-1 col2im)
 *   nchw_to_mat: mat[c][img*P + p] = dy[img][c][p] (the output gradient as a GEMM operand;
 *                also the im2col of a 1x1 stride-1 unpadded conv) */
#define WRN_LD1(p) (*(p))
#define WRN_ST1(v, p) (*(p) = (v))
#define WRN_LD4(p) vload4(0, p)
#define WRN_ST4(v, p) vstore4(v, 0, p)
#define WRN_LD16(p) vload16(0, p)
#define WRN_ST16(v, p) vstore16(v, 0, p)
#define WRN_RELAYOUT(SUFFIX, V, VT, LD, ST)                                                    \
  __kernel void mat_to_nchw##SUFFIX(__global real *y, ulong y_off, __global const real *mat,  \
                                    ulong mat_off, int C, int P, int cnt, int accumulate) {    \
    int r = (int)get_global_id(0);                                                             \
    int plane = (int)get_global_id(1);                                                         \
    if (r >= P / V || plane >= cnt * C) return;                                                \
    int img = plane / C, c = plane - img * C;                                                  \
    ulong N = (ulong)cnt * (ulong)P;                                                           \
    __global real *d = y + y_off + (ulong)plane * (ulong)P + (ulong)(r * V);                   \
    VT v = LD(mat + mat_off + (ulong)c * N + (ulong)img * (ulong)P + (ulong)(r * V));          \
    if (accumulate) v += LD(d);                                                                \
    ST(v, d);                                                                                  \
  }                                                                                            \
  __kernel void nchw_to_mat##SUFFIX(__global real *mat, ulong mat_off, __global const real *dy,\
                                    ulong dy_off, int C, int P, int cnt) {                     \
    int r = (int)get_global_id(0);                                                             \
    int plane = (int)get_global_id(1);                                                         \
    if (r >= P / V || plane >= cnt * C) return;                                                \
    int img = plane / C, c = plane - img * C;                                                  \
    ulong N = (ulong)cnt * (ulong)P;                                                           \
    VT v = LD(dy + dy_off + (ulong)plane * (ulong)P + (ulong)(r * V));                         \
    ST(v, mat + mat_off + (ulong)c * N + (ulong)img * (ulong)P + (ulong)(r * V));              \
  }

WRN_RELAYOUT(, 1, real, WRN_LD1, WRN_ST1)
WRN_RELAYOUT(_v4, 4, real4v, WRN_LD4, WRN_ST4)
WRN_RELAYOUT(_v16, 16, real16v, WRN_LD16, WRN_ST16)

/* im2col and col2im for the shapes WRNs use, eight consecutive output (im2col) or input
 * (col2im) pixels of one row per work-item: global size (row width / 8, rows, cnt*c_in),
 * plane = img*c_in + ci. The three-dimensional launch leaves no division per pixel, the
 * kernel offsets are literals, and the rows of the window are read once as vectors and
 * shuffled into the eight columns of each kernel offset, which are stored as one vector:
 * several times faster on PoCL than one pixel per work-item, and still coalesced on GPUs
 * (consecutive work-items, consecutive 8-element runs). Rows of the window outside the
 * image read a clamped row and store zeros; columns outside it are selected away, so no
 * access leaves the plane. Host conditions: row width % 8 == 0, and for stride 2,
 * w == 2*wo. */

/* 3x3, stride 1, pad 1 (wo = w, ho = h). Window columns ox-1 .. ox+8. */
__kernel void im2col_k3s1p1_v8(__global real *col, ulong col_off, __global const real *x,
                               ulong x_off, int c_in, int h, int w, int cnt) {
  int ox = (int)get_global_id(0) * 8, oy = (int)get_global_id(1);
  int plane = (int)get_global_id(2);
  if (ox >= w || oy >= h || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int P = h * w;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *xp = x + x_off + (ulong)plane * (ulong)P;
  __global real *cp = col + col_off + (ulong)(ci * 9) * N + (ulong)img * (ulong)P +
                      (ulong)(oy * w + ox);
  int has_l = ox > 0, has_r = ox + 8 < w;
#pragma unroll
  for (int ky = 0; ky < 3; ky++) {
    int iy = oy - 1 + ky;
    int ok = iy >= 0 && iy < h;
    __global const real *row = xp + clamp(iy, 0, h - 1) * w + ox;
    real8v c = vload8(0, row);
    real l = row[has_l ? -1 : 0], r = row[has_r ? 8 : 7];
    l = has_l ? l : (real)0;
    r = has_r ? r : (real)0;
    if (!ok) {
      c = (real8v)(0);
      l = r = (real)0;
    }
    __global real *o = cp + (ulong)(ky * 3) * N;
    vstore8((real8v)(l, c.s0123, c.s456), 0, o);
    vstore8(c, 0, o + N);
    vstore8((real8v)(c.s1234, c.s567, r), 0, o + 2 * N);
  }
}

/* 3x3, stride 2, pad 1, w == 2*wo. Output columns ox .. ox+7 read input columns
 * 2*ox-1 .. 2*ox+15: one scalar on the left and sixteen from 2*ox on. */
__kernel void im2col_k3s2p1_v8(__global real *col, ulong col_off, __global const real *x,
                               ulong x_off, int c_in, int h, int w, int ho, int wo, int cnt) {
  int ox = (int)get_global_id(0) * 8, oy = (int)get_global_id(1);
  int plane = (int)get_global_id(2);
  if (ox >= wo || oy >= ho || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int P = ho * wo;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *xp = x + x_off + (ulong)plane * (ulong)(h * w);
  __global real *cp = col + col_off + (ulong)(ci * 9) * N + (ulong)img * (ulong)P +
                      (ulong)(oy * wo + ox);
  int has_l = ox > 0;
#pragma unroll
  for (int ky = 0; ky < 3; ky++) {
    int iy = 2 * oy - 1 + ky;
    int ok = iy >= 0 && iy < h;
    __global const real *row = xp + clamp(iy, 0, h - 1) * w + 2 * ox;
    real16v c = vload16(0, row);
    real l = row[has_l ? -1 : 0];
    l = has_l ? l : (real)0;
    if (!ok) {
      c = (real16v)(0);
      l = (real)0;
    }
    __global real *o = cp + (ulong)(ky * 3) * N;
    vstore8((real8v)(l, c.s1357, c.s9bd), 0, o);
    vstore8(c.even, 0, o + N);
    vstore8(c.odd, 0, o + 2 * N);
  }
}

/* 1x1, stride 2, pad 0, w == 2*wo: the even columns of the even rows. */
__kernel void im2col_k1s2p0_v8(__global real *col, ulong col_off, __global const real *x,
                               ulong x_off, int c_in, int h, int w, int ho, int wo, int cnt) {
  int ox = (int)get_global_id(0) * 8, oy = (int)get_global_id(1);
  int plane = (int)get_global_id(2);
  if (ox >= wo || oy >= ho || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int P = ho * wo;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *row =
      x + x_off + (ulong)plane * (ulong)(h * w) + (ulong)(2 * oy * w + 2 * ox);
  real16v c = vload16(0, row);
  __global real *o = col + col_off + (ulong)ci * N + (ulong)img * (ulong)P;
  vstore8(c.even, 0, o + (ulong)(oy * wo + ox));
}

/* col2im, 3x3, stride 1, pad 1 (wo = w, ho = h): input pixel (iy, ix) gathers
 * dcol[ky*3 + kx][oy = iy+1-ky][ox = ix+1-kx], in the same order as col2im (oy, then ox
 * ascending), so the sums are the same bits. */
__kernel void col2im_k3s1p1_v8(__global real *dx, ulong dx_off, __global const real *dcol,
                               ulong dcol_off, int c_in, int h, int w, int cnt,
                               int accumulate) {
  int ix = (int)get_global_id(0) * 8, iy = (int)get_global_id(1);
  int plane = (int)get_global_id(2);
  if (ix >= w || iy >= h || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int P = h * w;
  ulong N = (ulong)cnt * (ulong)P;
  __global const real *cp = dcol + dcol_off + (ulong)(ci * 9) * N + (ulong)img * (ulong)P + ix;
  int has_l = ix > 0, has_r = ix + 8 < w;
  real8v s = (real8v)(0);
#pragma unroll
  for (int ky = 2; ky >= 0; ky--) {
    int oy = iy + 1 - ky;
    if (oy < 0 || oy >= h) continue;
    __global const real *t = cp + (ulong)(ky * 3) * N + (ulong)(oy * w);
    /* kx = 2: ox = ix-1 */
    __global const real *t2 = t + 2 * N;
    real l = t2[has_l ? -1 : 0];
    real8v c2 = vload8(0, t2);
    s += (real8v)(has_l ? l : (real)0, c2.s0123, c2.s456);
    s += vload8(0, t + N);
    /* kx = 0: ox = ix+1 */
    real8v c0 = vload8(0, t);
    real r = t[has_r ? 8 : 7];
    s += (real8v)(c0.s1234, c0.s567, has_r ? r : (real)0);
  }
  __global real *d = dx + dx_off + (ulong)plane * (ulong)P + (ulong)(iy * w + ix);
  if (accumulate) s += vload8(0, d);
  vstore8(s, 0, d);
}

/* col2im, 3x3, stride 2, pad 1, w == 2*wo. Along a row, even ix = 2*ox takes kx = 1; odd
 * ix = 2*ox+1 takes kx = 2 at ox, then kx = 0 at ox+1. Rows alike: iy = 2*oy-1+ky. */
__kernel void col2im_k3s2p1_v8(__global real *dx, ulong dx_off, __global const real *dcol,
                               ulong dcol_off, int c_in, int h, int w, int ho, int wo, int cnt,
                               int accumulate) {
  int ix = (int)get_global_id(0) * 8, iy = (int)get_global_id(1);
  int plane = (int)get_global_id(2);
  if (ix >= w || iy >= h || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int P = ho * wo;
  ulong N = (ulong)cnt * (ulong)P;
  int ox = ix >> 1;
  __global const real *cp = dcol + dcol_off + (ulong)(ci * 9) * N + (ulong)img * (ulong)P + ox;
  int has_r = ox + 4 < wo;
  real8v s = (real8v)(0);
#pragma unroll
  for (int ky = 2; ky >= 0; ky--) {
    int sy = iy + 1 - ky;
    int oy = sy >> 1;
    if (sy < 0 || (sy & 1) || oy >= ho) continue;
    __global const real *t = cp + (ulong)(ky * 3) * N + (ulong)(oy * wo);
    real4v a = vload4(0, t + N), b = vload4(0, t + 2 * N), c = vload4(0, t);
    real r = t[has_r ? 4 : 3];
    s += (real8v)(a.s0, b.s0, a.s1, b.s1, a.s2, b.s2, a.s3, b.s3);
    s += (real8v)((real)0, c.s1, (real)0, c.s2, (real)0, c.s3, (real)0, has_r ? r : (real)0);
  }
  __global real *d = dx + dx_off + (ulong)plane * (ulong)(h * w) + (ulong)(iy * w + ix);
  if (accumulate) s += vload8(0, d);
  vstore8(s, 0, d);
}

/* col2im, 1x1, stride 2, pad 0, w == 2*wo: the even columns of the even rows take
 * dcol[oy][ox], everything else zero. */
__kernel void col2im_k1s2p0_v8(__global real *dx, ulong dx_off, __global const real *dcol,
                               ulong dcol_off, int c_in, int h, int w, int ho, int wo, int cnt,
                               int accumulate) {
  int ix = (int)get_global_id(0) * 8, iy = (int)get_global_id(1);
  int plane = (int)get_global_id(2);
  if (ix >= w || iy >= h || plane >= cnt * c_in) return;
  int img = plane / c_in, ci = plane - img * c_in;
  int P = ho * wo;
  ulong N = (ulong)cnt * (ulong)P;
  real8v s = (real8v)(0);
  if (!(iy & 1)) {
    real4v a = vload4(0, dcol + dcol_off + (ulong)ci * N + (ulong)img * (ulong)P +
                             (ulong)((iy >> 1) * wo + (ix >> 1)));
    s = (real8v)(a.s0, (real)0, a.s1, (real)0, a.s2, (real)0, a.s3, (real)0);
  }
  __global real *d = dx + dx_off + (ulong)plane * (ulong)(h * w) + (ulong)(iy * w + ix);
  if (accumulate) s += vload8(0, d);
  vstore8(s, 0, d);
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

