#include "ref_augment.h"

#include <stdlib.h>

/* numpy.pad(mode='reflect') source index for padded index p of a length-len axis. */
static int reflect_src(int p, int pad, int len) {
  int s = p - pad;
  while (s < 0 || s >= len) s = s < 0 ? -s : 2 * (len - 1) - s;
  return s;
}

void ref_augment(double *y, const uint8_t *img, int n, int c, int h, int w,
                 const wrn_augment *a) {
  int pad = a->augment ? a->pad : 0;
  int ph = h + 2 * pad, pw = w + 2 * pad;
  double *padded = malloc((size_t)ph * pw * sizeof *padded);
  if (!padded) return;
  for (int i = 0; i < n; i++) {
    int flip, dy, dx;
    wrn_augment_params(a, i, &flip, &dy, &dx);
    for (int ch = 0; ch < c; ch++) {
      const uint8_t *src = img + ((size_t)i * c + ch) * h * w;
      for (int py = 0; py < ph; py++)
        for (int px = 0; px < pw; px++) {
          int sx = reflect_src(px, pad, w);
          if (flip) sx = w - 1 - sx; /* the padded image of the flipped image */
          padded[py * pw + px] = src[reflect_src(py, pad, h) * w + sx];
        }
      double *dst = y + ((size_t)i * c + ch) * h * w;
      for (int oy = 0; oy < h; oy++)
        for (int ox = 0; ox < w; ox++)
          dst[oy * w + ox] =
              (padded[(oy + dy) * pw + ox + dx] - (double)a->mean[ch]) / (double)a->std[ch];
      int y0, x0;
      if (wrn_augment_cutout(a, i, h, w, &y0, &x0)) /* the square, clipped to the image */
        for (int oy = y0 < 0 ? 0 : y0; oy < y0 + a->cutout && oy < h; oy++)
          for (int ox = x0 < 0 ? 0 : x0; ox < x0 + a->cutout && ox < w; ox++)
            dst[oy * w + ox] = 0;
    }
  }
  free(padded);
}
