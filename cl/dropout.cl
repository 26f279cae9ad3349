/* Inverted dropout. Element i keeps iff wrn_u01(r.x) >= p with
 * r = Philox4x32-10(counter (i_lo, i_hi, ctr_lo, ctr_hi), key (seed_lo, seed_hi)).
 * The host passes thresh = ceil(p * 2^24): since wrn_u01(r) = (r >> 8) / 2^24 exactly,
 * (r >> 8) >= thresh is the same test in integers, so the mask is identical in float and
 * double builds and on the host. thresh == 0 (p == 0) keeps all and skips the generator.
 *
 * out (+)= keep ? in * scale : 0 serves forward (accumulate 0) and backward alike. Element j
 * of the buffers draws with index i = first + j, so a slice of a larger tensor (first: its
 * first element's index in the whole) draws what the whole would. (An explicit argument, not
 * a global work offset: libclc's nvptx target has no get_global_offset.) */
__kernel void dropout_apply(__global real *out, ulong out_off, __global const real *in,
                            ulong in_off, ulong n, uint thresh, real scale, uint seed_lo,
                            uint seed_hi, uint ctr_lo, uint ctr_hi, int accumulate,
                            ulong first) {
  const ulong j = get_global_id(0), i = first + j;
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
