/* Winograd convolution F(m x m, 3 x 3) for 3x3 stride-1 layers (Lavin & Gray, "Fast
 * Algorithms for Convolutional Neural Networks", arXiv 1509.09308), built with WINO_M = 2 or
 * 4 (output tile m, transform tile a = m + 2):
 *
 *   forward / backward data    Y = A^T [ (G g G^T) . (B^T d B) ] A per tile, the sum over input
 *                              channels done as one GEMM per transform point xi (host side);
 *   backward weight            dW = G^T [ sum over tiles (A e A^T) . (B^T d B) ] G, the sum over
 *                              tiles (images x tile rows x tile columns) one GEMM per xi.
 *
 * Backward data is the forward convolution of dy with the weights flipped and the channel
 * roles exchanged (wino_filter with flip = 1), padded by 2 - pad.
 *
 * Layouts: U[xi][c][t] (transformed input), V[xi][o][i] (transformed filter), M[xi][o][t]
 * (GEMM result), E[xi][co][t] (transformed output gradient), S[xi][co][ci]. t counts the
 * tiles of a chunk of images: t = (img * th + ty) * tw + tx. Dimension 0 of every launch runs
 * along the contiguous index (t, or the inner channel), so neighbouring work-items store to
 * neighbouring addresses (vector stores on CPUs, coalesced on GPUs); no kernel body has a
 * loop left after unrolling, so PoCL vectorises across work-items.
 *
 * Transform matrices for F(4x4, 3x3) (interpolation points 0, 1, -1, 2, -2, infinity) and
 * F(2x2, 3x3) (0, 1, -1, infinity) are those of the paper. */

#if !defined(WINO_M) || (WINO_M != 2 && WINO_M != 4)
#error "cl/winograd.cl needs WINO_M = 2 or 4"
#endif
#if !defined(WINO_VT) || (WINO_VT != 1 && WINO_VT != 2 && WINO_VT != 4 && WINO_VT != 8)
#error "cl/winograd.cl needs WINO_VT = 1, 2, 4 or 8"
#endif
#define WA (WINO_M + 2)
#define WINO_UNROLL _Pragma("unroll")

/* The tile kernels take WINO_VT neighbouring tiles of a row per work-item and keep each
 * transform value as a vector over them (wv), so the transforms' arithmetic and their stores
 * into U, M and E (where the tiles are neighbours) are vector operations. The gathers from
 * and scatters to the image rows go through a private row buffer. */
#define WINO_CAT2(a, b) a##b
#define WINO_CAT(a, b) WINO_CAT2(a, b)
#if WINO_VT == 1
typedef real wv;
#define WV_LOAD(p) (*(p))
#define WV_STORE(v, p) (*(p) = (v))
#else
typedef WINO_CAT(REAL, WINO_VT) wv;
#define WV_LOAD(p) WINO_CAT(vload, WINO_VT)(0, p)
#define WV_STORE(v, p) WINO_CAT(vstore, WINO_VT)(v, 0, p)
#endif
/* Lanes l < WINO_VT of wv from buf[first + l * stride]. */
inline wv wv_gather(const real *buf, int first, int stride) {
  real t[WINO_VT];
  WINO_UNROLL for (int l = 0; l < WINO_VT; l++) t[l] = buf[first + l * stride];
  return WV_LOAD(t);
}
/* buf[first + l * stride] = lane l of v. */
inline void wv_scatter(wv v, real *buf, int first, int stride) {
  real t[WINO_VT];
  WV_STORE(v, t);
  WINO_UNROLL for (int l = 0; l < WINO_VT; l++) buf[first + l * stride] = t[l];
}

#if WINO_M == 4
/* B^T d: 6 -> 6 */
#define WINO_BT(d, r, s)                                                                    \
  do {                                                                                      \
    r[0 * s] = 4 * d[0 * s] - 5 * d[2 * s] + d[4 * s];                                      \
    r[1 * s] = -4 * d[1 * s] - 4 * d[2 * s] + d[3 * s] + d[4 * s];                          \
    r[2 * s] = 4 * d[1 * s] - 4 * d[2 * s] - d[3 * s] + d[4 * s];                           \
    r[3 * s] = -2 * d[1 * s] - d[2 * s] + 2 * d[3 * s] + d[4 * s];                          \
    r[4 * s] = 2 * d[1 * s] - d[2 * s] - 2 * d[3 * s] + d[4 * s];                           \
    r[5 * s] = 4 * d[1 * s] - 5 * d[3 * s] + d[5 * s];                                      \
  } while (0)
/* A^T m: 6 -> 4 */
#define WINO_AT(m, o, s)                                                                    \
  do {                                                                                      \
    o[0 * s] = m[0 * s] + m[1 * s] + m[2 * s] + m[3 * s] + m[4 * s];                        \
    o[1 * s] = m[1 * s] - m[2 * s] + 2 * m[3 * s] - 2 * m[4 * s];                           \
    o[2 * s] = m[1 * s] + m[2 * s] + 4 * m[3 * s] + 4 * m[4 * s];                           \
    o[3 * s] = m[1 * s] - m[2 * s] + 8 * m[3 * s] - 8 * m[4 * s] + m[5 * s];                \
  } while (0)
/* G g: 3 -> 6 */
#define WINO_G(g, v, s)                                                                     \
  do {                                                                                      \
    v[0 * s] = g[0 * s] / 4;                                                                \
    v[1 * s] = -(g[0 * s] + g[1 * s] + g[2 * s]) / 6;                                       \
    v[2 * s] = -(g[0 * s] - g[1 * s] + g[2 * s]) / 6;                                       \
    v[3 * s] = g[0 * s] / 24 + g[1 * s] / 12 + g[2 * s] / 6;                                \
    v[4 * s] = g[0 * s] / 24 - g[1 * s] / 12 + g[2 * s] / 6;                                \
    v[5 * s] = g[2 * s];                                                                    \
  } while (0)
/* A e: 4 -> 6 (the transpose of A^T) */
#define WINO_A(e, v, s)                                                                     \
  do {                                                                                      \
    v[0 * s] = e[0 * s];                                                                    \
    v[1 * s] = e[0 * s] + e[1 * s] + e[2 * s] + e[3 * s];                                   \
    v[2 * s] = e[0 * s] - e[1 * s] + e[2 * s] - e[3 * s];                                   \
    v[3 * s] = e[0 * s] + 2 * e[1 * s] + 4 * e[2 * s] + 8 * e[3 * s];                       \
    v[4 * s] = e[0 * s] - 2 * e[1 * s] + 4 * e[2 * s] - 8 * e[3 * s];                       \
    v[5 * s] = e[3 * s];                                                                    \
  } while (0)
/* G^T x: 6 -> 3 */
#define WINO_GT(x, k, s)                                                                    \
  do {                                                                                      \
    k[0 * s] = x[0 * s] / 4 - x[1 * s] / 6 - x[2 * s] / 6 + x[3 * s] / 24 + x[4 * s] / 24;  \
    k[1 * s] = -x[1 * s] / 6 + x[2 * s] / 6 + x[3 * s] / 12 - x[4 * s] / 12;                \
    k[2 * s] = -x[1 * s] / 6 - x[2 * s] / 6 + x[3 * s] / 6 + x[4 * s] / 6 + x[5 * s];       \
  } while (0)
#else
#define WINO_BT(d, r, s)                                                                    \
  do {                                                                                      \
    r[0 * s] = d[0 * s] - d[2 * s];                                                         \
    r[1 * s] = d[1 * s] + d[2 * s];                                                         \
    r[2 * s] = d[2 * s] - d[1 * s];                                                         \
    r[3 * s] = d[1 * s] - d[3 * s];                                                         \
  } while (0)
#define WINO_AT(m, o, s)                                                                    \
  do {                                                                                      \
    o[0 * s] = m[0 * s] + m[1 * s] + m[2 * s];                                              \
    o[1 * s] = m[1 * s] - m[2 * s] - m[3 * s];                                              \
  } while (0)
#define WINO_G(g, v, s)                                                                     \
  do {                                                                                      \
    v[0 * s] = g[0 * s];                                                                    \
    v[1 * s] = (g[0 * s] + g[1 * s] + g[2 * s]) / 2;                                        \
    v[2 * s] = (g[0 * s] - g[1 * s] + g[2 * s]) / 2;                                        \
    v[3 * s] = g[2 * s];                                                                    \
  } while (0)
#define WINO_A(e, v, s)                                                                     \
  do {                                                                                      \
    v[0 * s] = e[0 * s];                                                                    \
    v[1 * s] = e[0 * s] + e[1 * s];                                                         \
    v[2 * s] = e[0 * s] - e[1 * s];                                                         \
    v[3 * s] = -e[1 * s];                                                                   \
  } while (0)
#define WINO_GT(x, k, s)                                                                    \
  do {                                                                                      \
    k[0 * s] = x[0 * s] + x[1 * s] / 2 + x[2 * s] / 2;                                      \
    k[1 * s] = x[1 * s] / 2 - x[2 * s] / 2;                                                 \
    k[2 * s] = x[1 * s] / 2 + x[2 * s] / 2 + x[3 * s];                                      \
  } while (0)
#endif

/* U[xi][c][t] = (B^T d B)[xi] of the a x a input patch at (ty*m - pad, tx*m - pad) of image
 * img, channel c, zero outside the image, for WINO_VT tiles tx0.. of a row. Grid
 * (>= tw / WINO_VT, th, cnt * C): 1 and 2 over tile rows and (image, channel) planes. */
__kernel void wino_input(__global real *U, ulong u_off, __global const real *x, ulong x_off,
                         int C, int H, int W, int pad, int th, int tw, int T) {
  const int tq = (int)get_global_id(0), ty = (int)get_global_id(1), pl = (int)get_global_id(2);
  if (tq * WINO_VT >= tw || ty >= th) return;
  const int img = pl / C, c = pl - img * C, tx0 = tq * WINO_VT;
  const int t0 = (img * th + ty) * tw + tx0;
  const int y0 = ty * WINO_M - pad, x0 = tx0 * WINO_M - pad;
#define RW ((WINO_VT - 1) * WINO_M + WA)
  __global const real *p = x + x_off + (ulong)pl * (ulong)H * (ulong)W;
  const int inside = x0 >= 0 && x0 + RW <= W;
  wv d[WA * WA], q[WA * WA];
  WINO_UNROLL for (int i = 0; i < WA; i++) {
    const int yy = y0 + i;
    real row[RW];
    if (yy < 0 || yy >= H) {
      WINO_UNROLL for (int j = 0; j < RW; j++) row[j] = 0;
    } else if (inside) {
      WINO_UNROLL for (int j = 0; j < RW; j++) row[j] = p[yy * W + x0 + j];
    } else {
      WINO_UNROLL for (int j = 0; j < RW; j++) {
        const int xx = x0 + j;
        row[j] = xx >= 0 && xx < W ? p[yy * W + xx] : (real)0;
      }
    }
    WINO_UNROLL for (int j = 0; j < WA; j++) d[i * WA + j] = wv_gather(row, j, WINO_M);
  }
#undef RW
  /* Columns (stride WA between rows), then rows. */
  WINO_UNROLL for (int j = 0; j < WA; j++) WINO_BT((d + j), (q + j), WA);
  WINO_UNROLL for (int i = 0; i < WA; i++) WINO_BT((q + i * WA), (d + i * WA), 1);
  __global real *u = U + u_off + (ulong)c * T + t0;
  const ulong step = (ulong)C * T;
  WINO_UNROLL for (int k = 0; k < WA * WA; k++) WV_STORE(d[k], u + k * step);
}

/* V[xi][o][i] = (G g G^T)[xi] of filter g = w[o][i] (flip = 0), or, for the backward data
 * pass, of the flipped filter of the exchanged channels: g[ky][kx] = w[i][o][2-ky][2-kx]
 * (flip = 1). Grid (>= I, O). */
__kernel void wino_filter(__global real *V, ulong v_off, __global const real *w, ulong w_off,
                          int O, int I, int flip) {
  const int i = (int)get_global_id(0), o = (int)get_global_id(1);
  if (i >= I || o >= O) return;
  real g[9], q[WA * 3], v[WA * WA];
  __global const real *src = w + w_off + (flip ? ((ulong)i * O + o) : ((ulong)o * I + i)) * 9;
  WINO_UNROLL for (int k = 0; k < 9; k++) g[k] = src[flip ? 8 - k : k];
  /* q = G g (WA x 3), then v = q G^T (WA x WA). */
  WINO_UNROLL for (int j = 0; j < 3; j++) WINO_G((g + j), (q + j), 3);
  WINO_UNROLL for (int r = 0; r < WA; r++) WINO_G((q + r * 3), (v + r * WA), 1);
  __global real *dst = V + v_off + (ulong)o * I + i;
  const ulong step = (ulong)O * I;
  WINO_UNROLL for (int k = 0; k < WA * WA; k++) dst[k * step] = v[k];
}

/* y[img][o][ty*m + i][tx*m + j] (+)= (A^T M A)[i][j] (+ add) over the m x m tiles tx0.. of a
 * row, clipped to the HO x WO map. Grid (>= tw / WINO_VT, th, cnt * O). */
__kernel void wino_output(__global real *y, ulong y_off, __global const real *M, ulong m_off,
                          __global const real *add, ulong add_off, int O, int HO, int WO,
                          int th, int tw, int T, int accumulate, int has_add) {
  const int tq = (int)get_global_id(0), ty = (int)get_global_id(1), pl = (int)get_global_id(2);
  if (tq * WINO_VT >= tw || ty >= th) return;
  const int img = pl / O, o = pl - img * O, tx0 = tq * WINO_VT;
  const int t0 = (img * th + ty) * tw + tx0;
  wv m[WA * WA], q[WINO_M * WA], out[WINO_M * WINO_M];
  __global const real *src = M + m_off + (ulong)o * T + t0;
  const ulong step = (ulong)O * T;
  WINO_UNROLL for (int k = 0; k < WA * WA; k++) m[k] = WV_LOAD(src + k * step);
  WINO_UNROLL for (int j = 0; j < WA; j++) WINO_AT((m + j), (q + j), WA);
  WINO_UNROLL for (int i = 0; i < WINO_M; i++) WINO_AT((q + i * WA), (out + i * WINO_M), 1);
  const ulong plane = (ulong)pl * (ulong)HO * (ulong)WO;
  __global real *dst = y + y_off + plane;
  __global const real *ad = add + add_off + plane;
  const int xb = tx0 * WINO_M;
#define RW (WINO_VT * WINO_M)
  WINO_UNROLL for (int i = 0; i < WINO_M; i++) {
    const int yy = ty * WINO_M + i;
    if (yy >= HO) break;
    real row[RW];
    WINO_UNROLL for (int j = 0; j < WINO_M; j++) wv_scatter(out[i * WINO_M + j], row, j, WINO_M);
    __global real *d = dst + yy * WO + xb;
    __global const real *a = ad + yy * WO + xb;
    if (xb + RW <= WO) {
      WINO_UNROLL for (int j = 0; j < RW; j++) {
        real v = row[j];
        if (has_add) v += a[j];
        if (accumulate) v += d[j];
        d[j] = v;
      }
    } else {
      for (int j = 0; j < RW && xb + j < WO; j++) {
        real v = row[j];
        if (has_add) v += a[j];
        if (accumulate) v += d[j];
        d[j] = v;
      }
    }
  }
}

/* E[xi][o][t] = (A e A^T)[xi] of the m x m output-gradient tiles tx0.. of a row of dy[img][o],
 * zero outside the HO x WO map. Grid (>= tw / WINO_VT, th, cnt * O). */
__kernel void wino_grad_output(__global real *E, ulong e_off, __global const real *dy,
                               ulong dy_off, int O, int HO, int WO, int th, int tw, int T) {
  const int tq = (int)get_global_id(0), ty = (int)get_global_id(1), pl = (int)get_global_id(2);
  if (tq * WINO_VT >= tw || ty >= th) return;
  const int img = pl / O, o = pl - img * O, tx0 = tq * WINO_VT;
  const int t0 = (img * th + ty) * tw + tx0;
  __global const real *p = dy + dy_off + (ulong)pl * (ulong)HO * (ulong)WO;
  const int xb = tx0 * WINO_M;
  wv e[WINO_M * WINO_M], q[WA * WINO_M], v[WA * WA];
  WINO_UNROLL for (int i = 0; i < WINO_M; i++) {
    const int yy = ty * WINO_M + i;
    real row[RW];
    if (yy >= HO) {
      WINO_UNROLL for (int j = 0; j < RW; j++) row[j] = 0;
    } else if (xb + RW <= WO) {
      WINO_UNROLL for (int j = 0; j < RW; j++) row[j] = p[yy * WO + xb + j];
    } else {
      WINO_UNROLL for (int j = 0; j < RW; j++)
        row[j] = xb + j < WO ? p[yy * WO + xb + j] : (real)0;
    }
    WINO_UNROLL for (int j = 0; j < WINO_M; j++) e[i * WINO_M + j] = wv_gather(row, j, WINO_M);
  }
#undef RW
  /* q = A e (WA x m), then v = q A^T (WA x WA). */
  WINO_UNROLL for (int j = 0; j < WINO_M; j++) WINO_A((e + j), (q + j), WINO_M);
  WINO_UNROLL for (int i = 0; i < WA; i++) WINO_A((q + i * WINO_M), (v + i * WA), 1);
  __global real *dst = E + e_off + (ulong)o * T + t0;
  const ulong step = (ulong)O * T;
  WINO_UNROLL for (int k = 0; k < WA * WA; k++) WV_STORE(v[k], dst + k * step);
}

/* dw[o][i] (+)= G^T S G of S[xi][o][i] (3 x 3). Grid (>= I, O). */
__kernel void wino_grad_filter(__global real *dw, ulong dw_off, __global const real *S,
                               ulong s_off, int O, int I, int accumulate) {
  const int i = (int)get_global_id(0), o = (int)get_global_id(1);
  if (i >= I || o >= O) return;
  real s[WA * WA], q[3 * WA], k[9];
  __global const real *src = S + s_off + (ulong)o * I + i;
  const ulong step = (ulong)O * I;
  WINO_UNROLL for (int x = 0; x < WA * WA; x++) s[x] = src[x * step];
  /* q = G^T s (3 x WA), then k = q G (3 x 3). */
  WINO_UNROLL for (int j = 0; j < WA; j++) WINO_GT((s + j), (q + j), WA);
  WINO_UNROLL for (int r = 0; r < 3; r++) WINO_GT((q + r * WA), (k + r * 3), 1);
  __global real *dst = dw + dw_off + ((ulong)o * I + i) * 9;
  WINO_UNROLL for (int x = 0; x < 9; x++) dst[x] = accumulate ? dst[x] + k[x] : k[x];
}
