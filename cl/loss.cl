/* Softmax cross-entropy over logits[n][k] with int32 labels: one work-group per sample.
 * The work-items stride over the k classes (coalesced reads) and combine their partial max
 * and sum in local memory with a fixed tree, so two runs give the same bits. The work-group
 * size must be a power of two (the host chooses it).
 *
 * A label outside [0, k) must not index the logits: such a sample gets loss = NaN,
 * correct = 0 and (when wanted) dlogits = NaN, so that a bad label shows up in the loss
 * instead of silently training on a wrong class. The host checks labels before upload. */

/* Tree reduction of (value, index) pairs: the larger value wins, and of equal values the
 * smaller index, so the result is the first argmax whatever the work-group size. */
inline void wrn_loss_argmax(__local real *sv, __local int *si, int lid, int lsz) {
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsz >> 1; s > 0; s >>= 1) {
    if (lid < s) {
      real a = sv[lid], b = sv[lid + s];
      int ia = si[lid], ib = si[lid + s];
      if (b > a || (b == a && ib < ia)) {
        sv[lid] = b;
        si[lid] = ib;
      }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
}

inline void wrn_loss_sum(__local real *sv, int lid, int lsz) {
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int s = lsz >> 1; s > 0; s >>= 1) {
    if (lid < s) sv[lid] += sv[lid + s];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
}

/* loss[n], correct[n], dl[n][k] (written when has_dl), x[n][k], labels[n] (int32).
 * gscale = scale / n. smooth: label smoothing eps, the target being (1 - eps) onehot + eps / k
 * (0: plain cross-entropy, with the same bits as without the term). sv, si: local scratch of
 * one element per work-item. */
__kernel void softmax_xent(__global real *loss, ulong loss_off, __global real *correct,
                           ulong correct_off, __global real *dl, ulong dl_off,
                           __global const real *x, ulong x_off, __global const int *labels,
                           ulong labels_off, int n, int k, real gscale, real smooth, int has_dl,
                           __local real *sv, __local int *si) {
  /* The host launches exactly n work-groups. No early return before the barriers: even a
   * uniform one corrupts memory under PoCL 5 (checked: writes past the buffers). */
  const int i = (int)get_group_id(0);
  const int lid = (int)get_local_id(0), lsz = (int)get_local_size(0);
  __global const real *xi = x + x_off + (ulong)i * (ulong)k;

  /* Pass 1: max and its first index. Each work-item scans its classes in increasing order,
   * so a strict > keeps its first maximum. NaN logits never win (the loss still turns NaN
   * through the sum below). */
  real m = -INFINITY;
  int mi = k;
  for (int j = lid; j < k; j += lsz) {
    real v = xi[j];
    if (v > m) {
      m = v;
      mi = j;
    }
  }
  sv[lid] = m;
  si[lid] = mi;
  wrn_loss_argmax(sv, si, lid, lsz);
  m = sv[0];
  mi = si[0];
  barrier(CLK_LOCAL_MEM_FENCE); /* everyone has read sv[0] before it is reused */

  /* Pass 2: sum of exp(x - max); every term is <= 1, so nothing overflows. */
  real s = 0;
  for (int j = lid; j < k; j += lsz) s += exp(xi[j] - m);
  sv[lid] = s;
  wrn_loss_sum(sv, lid, lsz);
  s = sv[0];

  /* Label smoothing needs the mean of (max - x_j) over the classes: -sum_j q_j log p_j =
   * (1 - eps) (max - x_lab) + eps mean_j (max - x_j) + log(s). The branch is uniform over the
   * work-group (smooth is a kernel argument), so its barriers are reached by all or none. */
  real u = 0;
  if (smooth != 0) {
    barrier(CLK_LOCAL_MEM_FENCE); /* everyone has read sv[0] */
    real d = 0;
    for (int j = lid; j < k; j += lsz) d += m - xi[j];
    sv[lid] = d;
    wrn_loss_sum(sv, lid, lsz);
    u = sv[0] / (real)k;
  }

  const int lab = labels[labels_off + i];
  const int ok = lab >= 0 && lab < k;
  if (lid == 0) {
    /* (max - x[label]) first: both are logits of similar size, so the large common part
     * cancels exactly before the small log term is added. */
    real lx = ok ? m - xi[lab] : (real)0; /* a bad label reads nothing */
    if (smooth != 0) lx = ((real)1 - smooth) * lx + smooth * u;
    loss[loss_off + i] = ok ? lx + log(s) : (real)NAN;
    correct[correct_off + i] = (ok && mi == lab) ? (real)1 : (real)0;
  }
  if (has_dl) {
    __global real *dli = dl + dl_off + (ulong)i * (ulong)k;
    const real off = smooth / (real)k, on = (real)1 - smooth + off;
    for (int j = lid; j < k; j += lsz) {
      real p = exp(xi[j] - m) / s;
      dli[j] = ok ? (p - (j == lab ? on : off)) * gscale : (real)NAN;
    }
  }
}
