/* Helpers of the FFT convolution (host/conv_fft.c; the transforms themselves are clFFT's):
 * zero-padded copies into the transform's planes, the per-frequency complex products summed
 * over channels or images, and the crop of the inverse transform back into NCHW.
 *
 * Planes are Hf x Wf reals; their real-to-complex transforms hold F = Hf * (Wf / 2 + 1)
 * complex values (re, im interleaved). */

/* dst[plane][Hf][Wf]: src[plane][R][C] placed at (off, off), zeros elsewhere.
 * Grid (>= Hf * Wf, planes). */
__kernel void fft_pad(__global real *dst, ulong dst_off, __global const real *src,
                      ulong src_off, int R, int C, int off, int Hf, int Wf, int planes) {
  const int q = (int)get_global_id(0), pl = (int)get_global_id(1);
  if (q >= Hf * Wf || pl >= planes) return;
  const int r = q / Wf - off, c = q - (q / Wf) * Wf - off;
  real v = 0;
  if (r >= 0 && r < R && c >= 0 && c < C) v = src[src_off + ((ulong)pl * R + r) * C + c];
  dst[dst_off + (ulong)pl * Hf * Wf + q] = v;
}

/* out[a][b][f] = sum over j < J of P'(a, j, f) * R'(b, j, f), complex, where
 * P'(a, j, f) = P[a * sPa + j * sPj + f] (conjugated when conj_p) and R' likewise; strides in
 * complex values, out[a][b] rows of F. Grid (>= F, B, A). */
__kernel void fft_mac(__global real *out, ulong out_off, __global const real *P, ulong p_off,
                      __global const real *Rv, ulong r_off, int B, int J, int F, ulong sPa,
                      ulong sPj, ulong sRb, ulong sRj, int conj_p, int conj_r) {
  const int f = (int)get_global_id(0), b = (int)get_global_id(1), a = (int)get_global_id(2);
  if (f >= F || b >= B) return;
  __global const real *p = P + p_off + 2 * ((ulong)a * sPa + (ulong)f);
  __global const real *r = Rv + r_off + 2 * ((ulong)b * sRb + (ulong)f);
  const real sp = conj_p ? (real)-1 : (real)1, sr = conj_r ? (real)-1 : (real)1;
  real re = 0, im = 0;
  for (int j = 0; j < J; j++) {
    const real pr = p[2 * (ulong)j * sPj], pi = sp * p[2 * (ulong)j * sPj + 1];
    const real rr = r[2 * (ulong)j * sRj], ri = sr * r[2 * (ulong)j * sRj + 1];
    re += pr * rr - pi * ri;
    im += pr * ri + pi * rr;
  }
  __global real *o = out + out_off + 2 * (((ulong)a * B + b) * (ulong)F + f);
  o[0] = re;
  o[1] = im;
}

/* out[plane][r][c] (+)= src[plane][r + off][c + off] (+ add[plane][r][c]) for r < R, c < C;
 * src planes are Hf x Wf. Grid (>= R * C, planes). */
__kernel void fft_crop(__global real *out, ulong out_off, __global const real *src,
                       ulong src_off, __global const real *add, ulong add_off, int R, int C,
                       int off, int Hf, int Wf, int planes, int accumulate, int has_add) {
  const int q = (int)get_global_id(0), pl = (int)get_global_id(1);
  if (q >= R * C || pl >= planes) return;
  const int r = q / C, c = q - r * C;
  const ulong at = (ulong)pl * R * C + q;
  real v = src[src_off + ((ulong)pl * Hf + r + off) * Wf + c + off];
  if (has_add) v += add[add_off + at];
  if (accumulate) v += out[out_off + at];
  out[out_off + at] = v;
}
