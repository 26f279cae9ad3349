/* Inverted dropout. Element i keeps iff wrn_u01(r.x) >= p with
 * r = Philox4x32-10(counter (i_lo, i_hi, ctr_lo, ctr_hi), key (seed_lo, seed_hi)).
 * The host passes thresh = ceil(p * 2^24): since wrn_u01(r) = (r >> 8) / 2^24 exactly,
 * (r >> 8) >= thresh is the same test in integers, so the mask is identical in float and
 * double builds and on the host. thresh == 0 (p == 0) keeps all and skips the generator.
 *
 * out (+)= keep ? in * scale : 0 serves forward (accumulate 0) and backward alike. The draw's
 * index i is the global id: a launch with a global offset (wrn_launch_at) keys element j of
 * the buffers by offset + j, so a slice of a larger tensor draws what the whole would. */
__kernel void dropout_apply(__global real *out, ulong out_off, __global const real *in,
                            ulong in_off, ulong n, uint thresh, real scale, uint seed_lo,
                            uint seed_hi, uint ctr_lo, uint ctr_hi, int accumulate) {
  const ulong i = get_global_id(0), j = i - get_global_offset(0);
  if (j >= n) return;
  real v = in[in_off + j];
  if (thresh) {
    uint4 r = wrn_philox((uint4)((uint)i, (uint)(i >> 32), ctr_lo, ctr_hi),
                         (uint2)(seed_lo, seed_hi));
    v = (r.x >> 8) >= thresh ? v * scale : (real)0;
  }
  if (accumulate) v += out[out_off + j];
  out[out_off + j] = v;
}
