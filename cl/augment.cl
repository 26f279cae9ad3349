/* Input pipeline: uint8 images to normalised reals, with an optional random horizontal flip
 * and a crop out of a reflection-padded image (numpy 'reflect': the edge pixel is not
 * repeated), and optional cutout (a square zeroed after normalisation, DeVries & Taylor 2017;
 * its centre from philox(ctr = (i, 1, step_lo, step_hi), the same key)). Sample i of a batch
 * (its index counting from the launch's global offset in planes divided by c: a slice of a
 * global batch draws what the whole would) draws philox(ctr = (i, 0, step_lo, step_hi),
 * key = (seed_lo, seed_hi)): flip = r.x & 1, dy = below(r.y, 2 pad + 1),
 * dx = below(r.z, 2 pad + 1); host/augment.c (wrn_augment_params) draws the same.
 * A 2-D range: dimension 0 runs over the pixels of one plane (coalesced writes), dimension 1
 * over the n*c planes. Every work-item of a sample recomputes its Philox draw: ten rounds of
 * integer work are cheaper than a second launch or a table in memory. */

/* Reflects an index from [-pad, len - 1 + pad] into [0, len); needs pad < len. */
inline int wrn_reflect(int i, int len) { return i < 0 ? -i : (i >= len ? 2 * (len - 1) - i : i); }

/* y[n][c][h][w] reals, img[n][c][h][w] bytes (img_off in bytes). mean/std per channel,
 * c <= 3. A work-item writes `run` neighbouring pixels of a row (run divides w): 1 on GPUs
 * (coalesced), a whole row on CPU devices, where the Philox draws then cost once per row
 * instead of once per pixel. */
__kernel void augment(__global real *y, ulong y_off, __global const uchar *img, ulong img_off,
                      int c, int h, int w, int augment, int pad, uint seed_lo, uint seed_hi,
                      uint step_lo, uint step_hi, real mean0, real mean1, real mean2,
                      real std0, real std1, real std2, int cutout, uint first_plane, int run) {
  const uint hw = (uint)h * (uint)w;
  const uint pix0 = (uint)get_global_id(0) * (uint)run;
  if (pix0 >= hw) return;
  /* The range has exactly n*c planes; a slice of a global batch keys its draws by the
   * sample's index in the whole (first_plane = its first sample * c). */
  const uint plane = (uint)get_global_id(1);
  const uint sample = (first_plane + plane) / (uint)c, ch = plane % (uint)c;
  const int oy = (int)(pix0 / (uint)w), ox0 = (int)(pix0 % (uint)w);
  int sy = oy, dx = 0, flip = 0;
  if (augment) {
    uint4 r = wrn_philox((uint4)(sample, 0u, step_lo, step_hi), (uint2)(seed_lo, seed_hi));
    uint span = 2u * (uint)pad + 1u;
    sy = wrn_reflect(oy + (int)wrn_below(r.y, span) - pad, h);
    dx = (int)wrn_below(r.z, span) - pad;
    flip = (int)(r.x & 1u);
  }
  int cy0 = 0, cx0 = 0, in_rows = 0;
  if (cutout > 0) {
    /* Cutout: a second draw of the sample's stream (counter word 1 = 1) places the centre. */
    uint4 q = wrn_philox((uint4)(sample, 1u, step_lo, step_hi), (uint2)(seed_lo, seed_hi));
    cy0 = (int)wrn_below(q.x, (uint)h) - cutout / 2;
    cx0 = (int)wrn_below(q.y, (uint)w) - cutout / 2;
    in_rows = oy >= cy0 && oy < cy0 + cutout;
  }
  const real mean = ch == 0 ? mean0 : (ch == 1 ? mean1 : mean2);
  const real sd = ch == 0 ? std0 : (ch == 1 ? std1 : std2);
  const ulong base = (ulong)plane * hw;
  __global const uchar *src = img + img_off + base + (ulong)sy * (ulong)w;
  __global real *dst = y + y_off + base + pix0;
  for (int j = 0; j < run; j++) {
    const int ox = ox0 + j;
    int sx = ox;
    if (augment) {
      sx = wrn_reflect(ox + dx, w);
      if (flip) sx = w - 1 - sx; /* flipping before padding = mirroring the source column */
    }
    real out = ((real)src[sx] - mean) / sd;
    if (in_rows && ox >= cx0 && ox < cx0 + cutout) out = 0;
    dst[j] = out;
  }
}
