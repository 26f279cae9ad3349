/* Register-blocked GEMMs for the conv and linear layers, row-major:
 *   gemm_nn  C[M][N] = alpha A[M][K] B[K][N]   + beta C
 *   gemm_tn  C[M][N] = alpha A[K][M]^T B[K][N] + beta C
 *   gemm_nt  C[M][N] = alpha A[M][K] B[N][K]^T + beta C   (weight gradients: the long
 *                                                          reduction is contiguous in both)
 * beta == 0 overwrites C without reading it (NaN in C does not survive). Dimension 2 of the
 * grid runs over a batch of independent GEMMs whose operands lie sa, sb, sc elements apart
 * (the Winograd algorithms multiply one pair of matrices per transform point).
 *
 * Each work-item owns a tile of C and keeps it in vector registers. PoCL only vectorises
 * across work-items when the kernel body has no loop, so on CPUs the SIMD lanes come from
 * the explicit vector types here; GPUs run the lanes as independent instructions. The
 * reduction runs in a fixed order, so two runs give identical bits.
 *
 * NN/TN: a tile is GEMM_TM rows x GEMM_TNV vectors of GEMM_VW columns; per k step one row
 * of B's tile is loaded as vectors and each of A's GEMM_TM values is broadcast into them.
 * NT: a tile is GEMM_TM x GEMM_TJ outputs, each accumulated as a vector of partial dot
 * products over GEMM_VW consecutive k, whose lanes are summed at the end. */

/* Tunables, always given by the host (host/gemm.c) as -D values. */
#if !defined(GEMM_VW) || !defined(GEMM_TM) || !defined(GEMM_TNV) || !defined(GEMM_NT_TM) || \
    !defined(GEMM_NT_TJ) || !defined(GEMM_NT_GM) || !defined(GEMM_NT_KCV)
#error "cl/gemm.cl needs GEMM_VW, GEMM_TM, GEMM_TNV, GEMM_NT_TM, GEMM_NT_TJ, GEMM_NT_GM, GEMM_NT_KCV"
#endif

#define GEMM_CAT2(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT2(a, b)
typedef GEMM_CAT(REAL, GEMM_VW) realv;
#define VLOADV(i, p) GEMM_CAT(vload, GEMM_VW)(i, p)
#define VSTOREV(v, i, p) GEMM_CAT(vstore, GEMM_VW)(v, i, p)
#define GEMM_TN_COLS (GEMM_TNV * GEMM_VW)
/* The tile loops must be unrolled so that the tile lives in registers: PoCL's CPU pipeline
 * otherwise keeps it in memory (a load, multiply, add and store per element). */
#define GEMM_UNROLL _Pragma("unroll")

/* Sum of a vector's lanes, in a fixed order. */
inline real gemm_lane_sum(realv v) {
#if GEMM_VW == 16
  GEMM_CAT(REAL, 8) a = v.lo + v.hi;
#elif GEMM_VW == 8
  GEMM_CAT(REAL, 8) a = v;
#else
#error "GEMM_VW must be 8 or 16"
#endif
  GEMM_CAT(REAL, 4) b = a.lo + a.hi;
  GEMM_CAT(REAL, 2) c = b.lo + b.hi;
  return c.x + c.y;
}

/* The tile's rows of B at k = 0, as vectors: full tiles by vector loads, the ragged right
 * edge element by element with zeros beyond N. */
inline realv gemm_load_row(__global const real *p, int full, int valid) {
  if (full) return VLOADV(0, p);
  real t[GEMM_VW];
  GEMM_UNROLL for (int l = 0; l < GEMM_VW; l++) t[l] = l < valid ? p[l] : (real)0;
  return VLOADV(0, t);
}

/* Writes one row segment of the tile: alpha acc + beta C. */
inline void gemm_store_row(__global real *p, realv acc, real alpha, real beta, int valid) {
  if (valid >= GEMM_VW) {
    realv r = alpha * acc;
    if (beta != (real)0) r += beta * VLOADV(0, p);
    VSTOREV(r, 0, p);
    return;
  }
  real t[GEMM_VW];
  VSTOREV(acc, 0, t);
  for (int l = 0; l < valid; l++) {
    real r = alpha * t[l];
    if (beta != (real)0) r += beta * p[l];
    p[l] = r;
  }
}

/* The NN/TN body; dimension 0 runs along M, so that consecutive work-items (which PoCL runs
 * one after another on a core) share the same panel of B, K rows deep, while it is in cache.
 * A_AT(r, k) reads A's element of tile row r at depth k. Rows beyond M are
 * clamped to M-1 (their results are not stored), so only the right edge needs care. */
#define GEMM_NN_BODY(A_AT)                                                                  \
  const ulong bi = get_global_id(2);                                                        \
  a_off += bi * sa;                                                                         \
  b_off += bi * sb;                                                                         \
  c_off += bi * sc;                                                                         \
  const int m0 = (int)get_global_id(0) * GEMM_TM;                                           \
  const int n0 = (int)get_global_id(1) * GEMM_TN_COLS;                                      \
  if (n0 < N && m0 < M) {                                                                   \
    __global const real *A = a + a_off;                                                     \
    __global const real *brow = b + b_off + n0;                                             \
    int rows[GEMM_TM];                                                                      \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) rows[r] = min(m0 + r, M - 1);             \
    realv acc[GEMM_TM][GEMM_TNV];                                                           \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++)                                           \
      GEMM_UNROLL for (int v = 0; v < GEMM_TNV; v++) acc[r][v] = (realv)(0);                \
    if (n0 + GEMM_TN_COLS <= N) {                                                           \
      for (int k = 0; k < K; k++) {                                                         \
        realv bv[GEMM_TNV];                                                                 \
        GEMM_UNROLL for (int v = 0; v < GEMM_TNV; v++) bv[v] = VLOADV(v, brow);             \
        GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                     \
          realv av = (realv)(A_AT(rows[r], k));                                             \
          GEMM_UNROLL for (int v = 0; v < GEMM_TNV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]); \
        }                                                                                   \
        brow += ldb;                                                                        \
      }                                                                                     \
    } else {                                                                                \
      for (int k = 0; k < K; k++) {                                                         \
        realv bv[GEMM_TNV];                                                                 \
        GEMM_UNROLL for (int v = 0; v < GEMM_TNV; v++)                                      \
          bv[v] = gemm_load_row(brow + v * GEMM_VW, 0, N - n0 - v * GEMM_VW);               \
        GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                     \
          realv av = (realv)(A_AT(rows[r], k));                                             \
          GEMM_UNROLL for (int v = 0; v < GEMM_TNV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]); \
        }                                                                                   \
        brow += ldb;                                                                        \
      }                                                                                     \
    }                                                                                       \
    __global real *C = c + c_off;                                                           \
    GEMM_UNROLL for (int r = 0; r < GEMM_TM; r++) {                                         \
      if (m0 + r >= M) break;                                                               \
      GEMM_UNROLL for (int v = 0; v < GEMM_TNV; v++) {                                      \
        const int col = n0 + v * GEMM_VW;                                                   \
        if (col < N)                                                                        \
          gemm_store_row(C + (size_t)(m0 + r) * (size_t)ldc + col, acc[r][v], alpha, beta,  \
                         N - col);                                                          \
      }                                                                                     \
    }                                                                                       \
  }

#define GEMM_NN_A(r, k) A[(size_t)(r) * (size_t)lda + (size_t)(k)]
#define GEMM_TN_A(r, k) A[(size_t)(k) * (size_t)lda + (size_t)(r)]

__kernel void gemm_nn(int M, int N, int K, real alpha, __global const real *a, ulong a_off,
                      int lda, ulong sa, __global const real *b, ulong b_off, int ldb, ulong sb,
                      real beta, __global real *c, ulong c_off, int ldc, ulong sc) {
  GEMM_NN_BODY(GEMM_NN_A)
}

__kernel void gemm_tn(int M, int N, int K, real alpha, __global const real *a, ulong a_off,
                      int lda, ulong sa, __global const real *b, ulong b_off, int ldb, ulong sb,
                      real beta, __global real *c, ulong c_off, int ldc, ulong sc) {
  GEMM_NN_BODY(GEMM_TN_A)
}

/* Work-item (j, i) owns GEMM_NT_GM register tiles of GEMM_NT_TM x GEMM_NT_TJ outputs,
 * stacked along M. The reduction runs in chunks of GEMM_NT_KCV vectors; within a chunk the
 * tiles take turns (their sums parked in private memory between chunks), so B's rows for the
 * chunk come from memory once and are reused GEMM_NT_GM times from L1 instead of being
 * streamed again for every M tile (the long reductions of weight gradients are memory
 * bound otherwise). Rows of A and B beyond the edges are clamped (their sums are computed
 * but not stored). */
__kernel void gemm_nt(int M, int N, int K, real alpha, __global const real *a, ulong a_off,
                      int lda, ulong sa, __global const real *b, ulong b_off, int ldb, ulong sb,
                      real beta, __global real *c, ulong c_off, int ldc, ulong sc) {
  const ulong bi = get_global_id(2);
  a_off += bi * sa;
  b_off += bi * sb;
  c_off += bi * sc;
  const int n0 = (int)get_global_id(0) * GEMM_NT_TJ;
  const int mb = (int)get_global_id(1) * (GEMM_NT_TM * GEMM_NT_GM);
  if (n0 < N && mb < M) {
    __global const real *br[GEMM_NT_TJ];
    GEMM_UNROLL for (int j = 0; j < GEMM_NT_TJ; j++)
      br[j] = b + b_off + (size_t)min(n0 + j, N - 1) * (size_t)ldb;
    const int groups = min(GEMM_NT_GM, (M - mb + GEMM_NT_TM - 1) / GEMM_NT_TM);
    realv park[GEMM_NT_GM][GEMM_NT_TM][GEMM_NT_TJ];
    for (int g = 0; g < GEMM_NT_GM; g++)
      GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++)
        GEMM_UNROLL for (int j = 0; j < GEMM_NT_TJ; j++) park[g][r][j] = (realv)(0);
    const int kv = K / GEMM_VW;
    for (int q0 = 0; q0 < kv; q0 += GEMM_NT_KCV) {
      const int q1 = min(q0 + GEMM_NT_KCV, kv);
      for (int g = 0; g < groups; g++) {
        __global const real *ar[GEMM_NT_TM];
        GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++)
          ar[r] = a + a_off + (size_t)min(mb + g * GEMM_NT_TM + r, M - 1) * (size_t)lda;
        realv acc[GEMM_NT_TM][GEMM_NT_TJ];
        GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++)
          GEMM_UNROLL for (int j = 0; j < GEMM_NT_TJ; j++) acc[r][j] = park[g][r][j];
        for (int q = q0; q < q1; q++) {
          realv av[GEMM_NT_TM];
          GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++) av[r] = VLOADV(q, ar[r]);
          GEMM_UNROLL for (int j = 0; j < GEMM_NT_TJ; j++) {
            realv bv = VLOADV(q, br[j]);
            GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++)
              acc[r][j] = fma(av[r], bv, acc[r][j]);
          }
        }
        GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++)
          GEMM_UNROLL for (int j = 0; j < GEMM_NT_TJ; j++) park[g][r][j] = acc[r][j];
      }
    }
    __global real *C = c + c_off;
    for (int g = 0; g < groups; g++)
      GEMM_UNROLL for (int r = 0; r < GEMM_NT_TM; r++) {
        const int m = mb + g * GEMM_NT_TM + r;
        if (m >= M) break;
        __global const real *ap = a + a_off + (size_t)m * (size_t)lda;
        GEMM_UNROLL for (int j = 0; j < GEMM_NT_TJ; j++) {
          if (n0 + j >= N) break;
          real s = gemm_lane_sum(park[g][r][j]);
          for (int k = kv * GEMM_VW; k < K; k++) s = fma(ap[k], br[j][k], s);
          __global real *p = C + (size_t)m * (size_t)ldc + (n0 + j);
          real out = alpha * s;
          if (beta != (real)0) out += beta * *p;
          *p = out;
        }
      }
  }
}
