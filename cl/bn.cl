/* Batch norm over x[n][c][hw] (NCHW with h*w flattened to hw).
 *
 * Per-channel reductions run in two levels so that a channel with a large n*hw still spreads
 * over many work-groups: a channel's images are cut into chunks of imgs_per_chunk images; a
 * work-group reduces one (chunk, channel) into a partial, then one work-group per channel
 * merges that channel's partials. Both levels use a fixed order (strided per-work-item loops,
 * then a local-memory tree), so two runs give the same bits. Statistics use Welford per
 * work-item and Chan's pairwise merge, which stay accurate when the mean is large compared
 * with the spread (E[x^2]-E[x]^2 in float does not).
 *
 * Partial work-groups are (l0, l1): l0 work-items along hw, l1 along the chunk's images, so
 * neighbouring work-items read neighbouring addresses. Element-wise kernels run on a
 * (hw, c, n) grid, so the channel comes from the grid instead of a division per element
 * (PoCL then vectorises the innermost dimension; GPUs see coalesced rows).
 *
 * Host-side guarantees: n*c*hw < 2^31, n and c < 65536, work-group sizes l0 * l1 are powers
 * of two.
 */

/* y = gamma (x - mean) s + beta is computed in the forward and again in the backward (for
 * the ReLU's mask); a multiply-add contracted in one kernel and not the other would give
 * other bits, so nothing here is contracted unless written as fma(). */
#pragma OPENCL FP_CONTRACT OFF

/* Folds (nb, mb, m2b) into (na, ma, m2a): Chan et al.'s pairwise update. */
inline void bn_merge(uint *na, real *ma, real *m2a, uint nb, real mb, real m2b) {
  if (nb == 0) return;
  if (*na == 0) {
    *na = nb;
    *ma = mb;
    *m2a = m2b;
    return;
  }
  uint nn = *na + nb;
  real rn = (real)nn;
  real delta = mb - *ma;
  *ma += delta * ((real)nb / rn);
  *m2a += m2b + delta * delta * ((real)(*na) * ((real)nb / rn));
  *na = nn;
}

/* Tree merge of the work-group's (count, mean, m2) in local memory; the result lands in
 * slot 0. Every work-item of the group must call it. */
inline void bn_tree_merge(__local uint *lc, __local real *lm, __local real *l2, uint lid,
                          uint lsz) {
  for (uint s = lsz >> 1; s > 0; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < s) {
      uint na = lc[lid];
      real ma = lm[lid], m2a = l2[lid];
      bn_merge(&na, &ma, &m2a, lc[lid + s], lm[lid + s], l2[lid + s]);
      lc[lid] = na;
      lm[lid] = ma;
      l2[lid] = m2a;
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}

/* Tree sum of two local arrays into slot 0. */
inline void bn_tree_sum2(__local real *a, __local real *b, uint lid, uint lsz) {
  for (uint s = lsz >> 1; s > 0; s >>= 1) {
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < s) {
      a[lid] += a[lid + s];
      b[lid] += b[lid + s];
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}

/* Vectors of BN_VW consecutive values of a row per load (the host gives BN_VW = 1, 4 or 8
 * dividing hw): CPU devices then sum in SIMD registers; GPUs use 1. */
#ifndef BN_VW
#error "cl/bn.cl needs BN_VW"
#endif
#define BN_CAT2(a, b) a##b
#define BN_CAT(a, b) BN_CAT2(a, b)
#if BN_VW == 1
typedef real bnv;
#define BN_LOAD(i, p) ((p)[i])
#define BN_STORE(v, i, p) ((p)[i] = (v))
#define BN_POSITIVE(g, y) ((y) > (real)0 ? (g) : (real)0)
#else
typedef BN_CAT(REAL, BN_VW) bnv;
#define BN_LOAD(i, p) BN_CAT(vload, BN_VW)(i, p)
#define BN_STORE(v, i, p) BN_CAT(vstore, BN_VW)(v, i, p)
#define BN_POSITIVE(g, y) select((bnv)(0), (g), (y) > (bnv)(0))
#endif

inline real bn_lane_sum(bnv v) {
#if BN_VW == 1
  return v;
#elif BN_VW == 4
  return (v.s0 + v.s1) + (v.s2 + v.s3);
#else
  return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7));
#endif
}

/* part[ch][chunk] = (mean, m2) of that chunk. Each work-item sums its values shifted by the
 * channel's first value (so that a mean large against the spread loses no digits) and their
 * squares, in vectors, then the work-group merges the work-items' (count, mean, m2) pairwise.
 * Grid (l0, l1 * nchunks, c), local (l0, l1, 1); work-item a of a row takes vectors a,
 * a + l0, ... */
__kernel void bn_stats_partial(__global real *part, ulong part_off, __global const real *x,
                               ulong x_off, uint n, uint c, uint hw, uint imgs_per_chunk,
                               uint nchunks, __local uint *lc, __local real *lm,
                               __local real *l2) {
  uint l0 = get_local_size(0), l1 = get_local_size(1);
  uint a = get_local_id(0), b = get_local_id(1), lid = b * l0 + a;
  uint chunk = get_group_id(1), ch = get_group_id(2);
  uint i1 = min(n, (chunk + 1) * imgs_per_chunk);
  __global const real *xp = x + x_off + (ulong)ch * hw;
  const real shift = xp[0];
  ulong chw = (ulong)c * hw;
  const uint nv = hw / BN_VW;
  uint cnt = 0;
  bnv s1 = (bnv)(0), s2 = (bnv)(0);
  for (uint img = chunk * imgs_per_chunk + b; img < i1; img += l1) {
    __global const real *row = xp + img * chw;
    for (uint v = a; v < nv; v += l0) {
      bnv d = BN_LOAD(v, row) - shift;
      s1 += d;
      s2 = fma(d, d, s2);
      cnt += BN_VW;
    }
  }
  const real t1 = bn_lane_sum(s1), t2 = bn_lane_sum(s2);
  const real mean = cnt ? t1 / (real)cnt : (real)0;
  lc[lid] = cnt;
  lm[lid] = shift + mean;
  l2[lid] = cnt ? fmax(t2 - t1 * mean, (real)0) : (real)0;
  bn_tree_merge(lc, lm, l2, lid, l0 * l1);
  if (lid == 0) {
    ulong o = part_off + 2 * ((ulong)ch * nchunks + chunk);
    part[o] = lm[0];
    part[o + 1] = l2[0];
  }
}

/* Merges a channel's partials; saves mean and 1/sqrt(var + eps); updates the running
 * statistics with the unbiased variance. Grid (c * lsz), local (lsz). */
__kernel void bn_stats_final(__global real *save_mean, ulong sm_off, __global real *save_invstd,
                             ulong si_off, __global real *run_mean, ulong rm_off,
                             __global real *run_var, ulong rv_off, __global const real *part,
                             ulong part_off, uint n, uint hw, uint imgs_per_chunk,
                             uint nchunks, real momentum, real eps, __local uint *lc,
                             __local real *lm, __local real *l2) {
  uint ch = get_group_id(0), lid = get_local_id(0), lsz = get_local_size(0);
  uint N = n * hw;
  uint cnt = 0;
  real mean = 0, m2 = 0;
  __global const real *pp = part + part_off + 2 * (ulong)ch * nchunks;
  for (uint k = lid; k < nchunks; k += lsz) {
    uint i0 = k * imgs_per_chunk;
    bn_merge(&cnt, &mean, &m2, (min(n, i0 + imgs_per_chunk) - i0) * hw, pp[2 * k],
             pp[2 * k + 1]);
  }
  lc[lid] = cnt;
  lm[lid] = mean;
  l2[lid] = m2;
  bn_tree_merge(lc, lm, l2, lid, lsz);
  if (lid == 0) {
    mean = lm[0];
    real var = l2[0] / (real)N;
    real unbiased = N > 1 ? l2[0] / (real)(N - 1) : var;
    save_mean[sm_off + ch] = mean;
    save_invstd[si_off + ch] = (real)1 / sqrt(var + eps);
    run_mean[rm_off + ch] = ((real)1 - momentum) * run_mean[rm_off + ch] + momentum * mean;
    run_var[rv_off + ch] = ((real)1 - momentum) * run_var[rv_off + ch] + momentum * unbiased;
  }
}

/* y = gamma (x - mean) s + beta, s = invstd[ch] (stat_is_var = 0) or 1/sqrt(stat[ch] + eps)
 * (inference with the running variance); optionally ReLU. Grid (hw / BN_VW, c, n): a
 * work-item takes BN_VW neighbours of a row as one vector. */
__kernel void bn_apply(__global real *y, ulong y_off, __global const real *x, ulong x_off,
                       __global const real *mean, ulong m_off, __global const real *stat,
                       ulong s_off, __global const real *gamma, ulong g_off,
                       __global const real *beta, ulong b_off, uint c, uint hw,
                       int stat_is_var, real eps, int relu) {
  uint q = get_global_id(0), ch = get_global_id(1), img = get_global_id(2);
  if (q >= hw / BN_VW || ch >= c) return;
  ulong row = ((ulong)img * c + ch) * hw;
  real s = stat[s_off + ch];
  if (stat_is_var) s = (real)1 / sqrt(s + eps);
  /* The backward passes recompute v from x with the same operations to find the ReLU's mask
   * without reading y (relu == 2 there), and must get the same bits: no contraction into an
   * fma in this file (FP_CONTRACT OFF above), which either kernel might do differently. */
  const real gam = gamma[g_off + ch], bet = beta[b_off + ch], m = mean[m_off + ch];
  bnv v = (bnv)(gam) * ((BN_LOAD(q, x + x_off + row) - m) * s) + (bnv)(bet);
  if (relu) v = BN_POSITIVE(v, v);
  BN_STORE(v, q, y + y_off + row);
}

/* The ReLU mask of the backward passes: relu == 1 reads y > 0; relu == 2 recomputes y's
 * sign from x as bn_apply computed it (so y is not read at all: one pass over memory less). */
#define BN_MASK(g, xv, yv_load)                                                             \
  (relu == 1   ? BN_POSITIVE(g, yv_load)                                                    \
   : relu == 2 ? BN_POSITIVE(g, (bnv)(gam) * (((xv) - m) * s) + (bnv)(bet))                  \
               : (g))

/* part[ch][chunk] = (sum g, sum g (x - mean)) with g = dy masked by the ReLU (relu = 1 or 2,
 * see BN_MASK), in vectors. Same grid as bn_stats_partial. gamma, beta and invstd are read
 * only for relu == 2. */
__kernel void bn_bwd_partial(__global real *part, ulong part_off, __global const real *dy,
                             ulong dy_off, __global const real *x, ulong x_off,
                             __global const real *y, ulong y_off, __global const real *mean,
                             ulong m_off, __global const real *gamma, ulong g_off,
                             __global const real *beta, ulong b_off,
                             __global const real *invstd, ulong is_off, uint n, uint c,
                             uint hw, uint imgs_per_chunk, uint nchunks, int relu,
                             __local real *la, __local real *lb) {
  uint l0 = get_local_size(0), l1 = get_local_size(1);
  uint a = get_local_id(0), b = get_local_id(1), lid = b * l0 + a;
  uint chunk = get_group_id(1), ch = get_group_id(2);
  uint i1 = min(n, (chunk + 1) * imgs_per_chunk);
  ulong coff = (ulong)ch * hw, chw = (ulong)c * hw;
  __global const real *dyp = dy + dy_off + coff, *xp = x + x_off + coff, *yp = y + y_off + coff;
  const real m = mean[m_off + ch];
  const real gam = relu == 2 ? gamma[g_off + ch] : (real)0;
  const real bet = relu == 2 ? beta[b_off + ch] : (real)0;
  const real s = relu == 2 ? invstd[is_off + ch] : (real)0;
  const uint nv = hw / BN_VW;
  bnv sg = (bnv)(0), sgx = (bnv)(0);
  for (uint img = chunk * imgs_per_chunk + b; img < i1; img += l1) {
    ulong r = img * chw;
    for (uint v = a; v < nv; v += l0) {
      const bnv xv = BN_LOAD(v, xp + r);
      bnv g = BN_LOAD(v, dyp + r);
      g = BN_MASK(g, xv, BN_LOAD(v, yp + r));
      sg += g;
      sgx = fma(g, xv - m, sgx);
    }
  }
  la[lid] = bn_lane_sum(sg);
  lb[lid] = bn_lane_sum(sgx);
  bn_tree_sum2(la, lb, lid, l0 * l1);
  if (lid == 0) {
    ulong o = part_off + 2 * ((ulong)ch * nchunks + chunk);
    part[o] = la[0];
    part[o + 1] = lb[0];
  }
}

/* Sums a channel's partials: dbeta (+)= sum g, dgamma (+)= sum g xhat, and the coefficients
 * of dx = A (g - B - (x - mean) D) into coef[ch][3]. Grid (c * lsz), local (lsz). */
__kernel void bn_bwd_final(__global real *dgamma, ulong dg_off, __global real *dbeta,
                           ulong db_off, __global real *coef, ulong coef_off,
                           __global const real *part, ulong part_off,
                           __global const real *gamma, ulong g_off,
                           __global const real *invstd, ulong is_off, uint n, uint hw,
                           uint nchunks, int accumulate, __local real *la, __local real *lb) {
  uint ch = get_group_id(0), lid = get_local_id(0), lsz = get_local_size(0);
  __global const real *pp = part + part_off + 2 * (ulong)ch * nchunks;
  real sg = 0, sgx = 0;
  for (uint k = lid; k < nchunks; k += lsz) {
    sg += pp[2 * k];
    sgx += pp[2 * k + 1];
  }
  la[lid] = sg;
  lb[lid] = sgx;
  bn_tree_sum2(la, lb, lid, lsz);
  if (lid == 0) {
    real is = invstd[is_off + ch];
    real rN = (real)1 / (real)(n * hw);
    sg = la[0];
    sgx = lb[0];
    real dg = sgx * is;
    if (accumulate) {
      dg += dgamma[dg_off + ch];
      dbeta[db_off + ch] += sg;
    } else {
      dbeta[db_off + ch] = sg;
    }
    dgamma[dg_off + ch] = dg;
    ulong o = coef_off + 3 * (ulong)ch;
    coef[o] = gamma[g_off + ch] * is;
    coef[o + 1] = sg * rN;
    coef[o + 2] = sgx * is * is * rN;
  }
}

/* dx (+)= A (g - B - (x - mean) D), g masked as in bn_bwd_partial. Grid (hw / BN_VW, c, n),
 * BN_VW neighbours of a row per work-item. */
__kernel void bn_bwd_dx(__global real *dx, ulong dx_off, __global const real *dy, ulong dy_off,
                        __global const real *x, ulong x_off, __global const real *y,
                        ulong y_off, __global const real *mean, ulong m_off,
                        __global const real *gamma, ulong g_off, __global const real *beta,
                        ulong b_off, __global const real *invstd, ulong is_off,
                        __global const real *coef, ulong coef_off, uint c, uint hw, int relu,
                        int accumulate) {
  uint q = get_global_id(0), ch = get_global_id(1), img = get_global_id(2);
  if (q >= hw / BN_VW || ch >= c) return;
  ulong row = ((ulong)img * c + ch) * hw;
  const real m = mean[m_off + ch];
  const bnv xv = BN_LOAD(q, x + x_off + row);
  bnv g = BN_LOAD(q, dy + dy_off + row);
  if (relu == 1) g = BN_POSITIVE(g, BN_LOAD(q, y + y_off + row));
  if (relu == 2) {
    const real gam = gamma[g_off + ch], bet = beta[b_off + ch], s = invstd[is_off + ch];
    g = BN_POSITIVE(g, (bnv)(gam) * ((xv - m) * s) + (bnv)(bet));
  }
  __global const real *k = coef + coef_off + 3 * (ulong)ch;
  bnv v = (bnv)(k[0]) * (g - (bnv)(k[1]) - (xv - m) * k[2]);
  if (accumulate) v += BN_LOAD(q, dx + dx_off + row);
  BN_STORE(v, q, dx + dx_off + row);
}
