/* Implicit-GEMM convolution: the GEMM of im2col + GEMM with the im2col address arithmetic
 * folded into the tile loads, reading and writing NCHW directly (no column buffer, no
 * relayout). One source for the three passes, chosen by IG_PASS:
 *
 *   0 forward          C[c_out][n*ho*wo]  = W[c_out][c_in*k*k] . patches(x)
 *   1 backward data    C[c_in][n*h*w]     = W^T[c_in][c_out*k*k] . spread(dy)
 *   2 backward weight  C[c_out][c_in*k*k] = dy[c_out][n*ho*wo] . patches(x)^T
 *
 * A work-group computes a BM x BN tile of C. Each K step of BK, its work-items load A's and
 * B's tiles into local memory (the gather from the tensors happens here, with zeros in the
 * padding), then each work-item multiplies TM rows by TN = TNV * VW columns from local
 * memory into registers. VW > 1 keeps TN columns of one work-item in vectors (what CPU
 * devices vectorise); GPUs use VW = 1. The backward weight's long reduction (n*ho*wo) can
 * be cut into IG_SPLIT chunks along grid dimension 2: chunk s writes its partial product to
 * part[s] and igemm_reduce sums the chunks in order (no atomics: identical bits every run).
 *
 * Tunables (-D, all required): IG_PASS, KS (kernel size), BM, BN, BK, TM, TNV, VW, IG_SPLIT.
 * The host keeps BM % TM == 0, BN % (TNV*VW) == 0, and (BM/TM) * (BN/TN) work-items per group;
 * sizes in int (the host checks n*c*h*w < 2^31). */

#if !defined(IG_PASS) || !defined(KS) || !defined(BM) || !defined(BN) || !defined(BK) || \
    !defined(TM) || !defined(TNV) || !defined(VW) || !defined(IG_SPLIT)
#error "cl/implicit.cl needs IG_PASS, KS, BM, BN, BK, TM, TNV, VW and IG_SPLIT"
#endif
#if VW != 1 && VW != 4 && VW != 8 && VW != 16
#error "VW must be 1, 4, 8 or 16"
#endif

#define TN (TNV * VW)
#define WG0 (BN / TN)
#define WG1 (BM / TM)
#define WG (WG0 * WG1)
#define KK (KS * KS)
#define IG_UNROLL _Pragma("unroll")

#define IG_CAT2(a, b) a##b
#define IG_CAT(a, b) IG_CAT2(a, b)
#if VW == 1
typedef real realv;
#define IG_LOADV(p) (*(p))
#else
typedef IG_CAT(REAL, VW) realv;
#define IG_LOADV(p) IG_CAT(vload, VW)(0, p)
#endif

typedef struct ig_shape {
  int n, c_in, h, w, c_out, ho, wo, stride, pad;
} ig_shape;

/* A[m][kk] of the pass (rows of the left operand). */
inline real ig_a(__global const real *A, const ig_shape s, int m, int kk, int M, int K) {
  (void)s;
  if (m >= M || kk >= K) return 0;
#if IG_PASS == 0
  return A[(size_t)m * K + kk]; /* w[co][ci*KK + t] */
#elif IG_PASS == 1
  const int co = kk / KK, t = kk - co * KK; /* w[co][ci][t] for row ci = m */
  return A[((size_t)co * s.c_in + m) * KK + t];
#else
  const int P = s.ho * s.wo, img = kk / P, p = kk - img * P; /* dy[img][co][p] */
  return A[((size_t)img * s.c_out + m) * P + p];
#endif
}

/* x[img][ci][oy*stride - pad + ky][ox*stride - pad + kx], zero in the padding. */
inline real ig_patch(__global const real *x, const ig_shape s, int img, int ci, int oy, int ox,
                     int t) {
  const int ky = t / KS, kx = t - ky * KS;
  const int iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return 0;
  return x[(((size_t)img * s.c_in + ci) * s.h + iy) * s.w + ix];
}

/* B[kk][col] of the pass. */
inline real ig_b(__global const real *B, const ig_shape s, int kk, int col, int K, int N) {
  if (kk >= K || col >= N) return 0;
#if IG_PASS == 0
  const int P = s.ho * s.wo, img = col / P, p = col - img * P, oy = p / s.wo, ox = p - oy * s.wo;
  const int ci = kk / KK, t = kk - ci * KK;
  return ig_patch(B, s, img, ci, oy, ox, t);
#elif IG_PASS == 1
  /* dy[img][co][oy][ox] for the outputs whose window covers input (iy, ix) at tap (ky, kx). */
  const int Q = s.h * s.w, img = col / Q, q = col - img * Q, iy = q / s.w, ix = q - iy * s.w;
  const int co = kk / KK, t = kk - co * KK, ky = t / KS, kx = t - ky * KS;
  const int ty = iy + s.pad - ky, tx = ix + s.pad - kx;
  if (ty < 0 || tx < 0) return 0;
  const int oy = ty / s.stride, ox = tx / s.stride;
  if (oy * s.stride != ty || ox * s.stride != tx || oy >= s.ho || ox >= s.wo) return 0;
  return B[(((size_t)img * s.c_out + co) * s.ho + oy) * s.wo + ox];
#else
  const int P = s.ho * s.wo, img = kk / P, p = kk - img * P, oy = p / s.wo, ox = p - oy * s.wo;
  const int ci = col / KK, t = col - ci * KK;
  return ig_patch(B, s, img, ci, oy, ox, t);
#endif
}

/* Where C[m][col] lives in the output tensor. */
inline size_t ig_out_index(const ig_shape s, int m, int col, int N) {
  (void)N;
#if IG_PASS == 0
  const int P = s.ho * s.wo, img = col / P, p = col - img * P;
  return ((size_t)img * s.c_out + m) * P + p;
#elif IG_PASS == 1
  const int Q = s.h * s.w, img = col / Q, q = col - img * Q;
  return ((size_t)img * s.c_in + m) * Q + q;
#else
  return (size_t)m * N + col;
#endif
}

/* Grid (WG0 * tiles along N, WG1 * tiles along M, IG_SPLIT), local (WG0, WG1, 1). With
 * IG_SPLIT > 1 out is the partial buffer [IG_SPLIT][M][N] and chunk s covers
 * [s * kchunk, (s + 1) * kchunk) of the reduction; accumulate and add are then applied by
 * igemm_reduce. */
__kernel __attribute__((reqd_work_group_size(WG0, WG1, 1))) void igemm(
    __global real *out, ulong out_off, __global const real *A, ulong a_off,
    __global const real *B, ulong b_off, __global const real *add, ulong add_off, int n,
    int c_in, int h, int w, int c_out, int ho, int wo, int stride, int pad, int M, int N, int K,
    int kchunk, int accumulate, int has_add) {
  const ig_shape s = {n, c_in, h, w, c_out, ho, wo, stride, pad};
  __local real As[BK][BM];
  __local real Bs[BK][BN + (VW == 1 ? 1 : 0)]; /* padded against bank conflicts on GPUs */
  const int l0 = (int)get_local_id(0), l1 = (int)get_local_id(1), lid = l1 * WG0 + l0;
  const int n0 = (int)get_group_id(0) * BN, m0 = (int)get_group_id(1) * BM;
  const int split = (int)get_global_id(2);
  const int k_begin = split * kchunk, k_end = min(K, k_begin + kchunk);
  __global const real *Ap = A + a_off, *Bp = B + b_off;
  realv acc[TM][TNV];
  IG_UNROLL for (int i = 0; i < TM; i++)
    IG_UNROLL for (int v = 0; v < TNV; v++) acc[i][v] = (realv)(0);
  for (int k0 = k_begin; k0 < k_end; k0 += BK) {
    /* The tiles, each element loaded by one work-item: consecutive work-items take
     * consecutive columns (B) or rows (A), which coalesces on GPUs. */
    for (int e = lid; e < BM * BK; e += WG) {
      const int kk = e / BM, mm = e - kk * BM;
      As[kk][mm] = k0 + kk < k_end ? ig_a(Ap, s, m0 + mm, k0 + kk, M, K) : (real)0;
    }
    for (int e = lid; e < BN * BK; e += WG) {
      const int kk = e / BN, nn = e - kk * BN;
      Bs[kk][nn] = k0 + kk < k_end ? ig_b(Bp, s, k0 + kk, n0 + nn, K, N) : (real)0;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int kk = 0; kk < BK; kk++) {
      realv bv[TNV];
      IG_UNROLL for (int v = 0; v < TNV; v++) bv[v] = IG_LOADV(&Bs[kk][l0 * TN + v * VW]);
      IG_UNROLL for (int i = 0; i < TM; i++) {
        const realv av = (realv)(As[kk][l1 * TM + i]);
        IG_UNROLL for (int v = 0; v < TNV; v++) acc[i][v] = fma(av, bv[v], acc[i][v]);
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  __global real *o = out + out_off;
  __global const real *ad = add + add_off;
  for (int i = 0; i < TM; i++) {
    const int m = m0 + l1 * TM + i;
    if (m >= M) break;
    IG_UNROLL for (int v = 0; v < TNV; v++) {
      real t[VW];
#if VW == 1
      t[0] = acc[i][v];
#else
      IG_CAT(vstore, VW)(acc[i][v], 0, t);
#endif
      for (int l = 0; l < VW; l++) {
        const int col = n0 + l0 * TN + v * VW + l;
        if (col < N) {
#if IG_SPLIT > 1
          o[((size_t)split * M + m) * N + col] = t[l];
#else
          const size_t at = ig_out_index(s, m, col, N);
          real r = t[l];
          if (has_add) r += ad[at];
          if (accumulate) r += o[at];
          o[at] = r;
#endif
        }
      }
    }
  }
}

/* out[i] (+)= sum over s < splits of part[s][i], in order of s. Grid (>= count). */
__kernel void igemm_reduce(__global real *out, ulong out_off, __global const real *part,
                           ulong part_off, int count, int splits, int accumulate) {
  const int i = (int)get_global_id(0);
  if (i >= count) return;
  __global const real *p = part + part_off + i;
  real r = 0;
  for (int k = 0; k < splits; k++) r += p[(size_t)k * count];
  __global real *o = out + out_off + i;
  *o = accumulate ? *o + r : r;
}
