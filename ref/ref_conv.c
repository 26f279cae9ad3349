/* Direct convolution by its definition; see ref_conv.h. */
#include "ref_conv.h"

#include <string.h>

static int out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* Runs BODY for every (image, out channel, out pixel, in channel, tap) whose input position
 * lies inside the image, with yi, xi, wi the flat indices of y, x and w: the seven loops the
 * three references share. */
#define REF_CONV_LOOPS(s, BODY)                                                            \
  do {                                                                                     \
    const int ho_ = out_size((s)->h, (s)->k, (s)->stride, (s)->pad);                       \
    const int wo_ = out_size((s)->w, (s)->k, (s)->stride, (s)->pad);                       \
    for (int b = 0; b < (s)->n; b++)                                                       \
      for (int co = 0; co < (s)->c_out; co++)                                              \
        for (int oy = 0; oy < ho_; oy++)                                                   \
          for (int ox = 0; ox < wo_; ox++)                                                 \
            for (int ci = 0; ci < (s)->c_in; ci++)                                         \
              for (int ky = 0; ky < (s)->k; ky++)                                          \
                for (int kx = 0; kx < (s)->k; kx++) {                                      \
                  const int iy = oy * (s)->stride - (s)->pad + ky;                         \
                  const int ix = ox * (s)->stride - (s)->pad + kx;                         \
                  if (iy < 0 || iy >= (s)->h || ix < 0 || ix >= (s)->w) continue;          \
                  const size_t yi = (((size_t)b * (s)->c_out + co) * ho_ + oy) * wo_ + ox; \
                  const size_t xi =                                                        \
                      (((size_t)b * (s)->c_in + ci) * (s)->h + iy) * (s)->w + ix;          \
                  const size_t wi =                                                        \
                      (((size_t)co * (s)->c_in + ci) * (s)->k + ky) * (s)->k + kx;         \
                  BODY;                                                                    \
                }                                                                          \
  } while (0)

void ref_conv_forward(double *y, const double *x, const double *w, const wrn_conv_shape *s) {
  const size_t ny = (size_t)s->n * s->c_out * out_size(s->h, s->k, s->stride, s->pad) *
                    out_size(s->w, s->k, s->stride, s->pad);
  memset(y, 0, ny * sizeof *y);
  REF_CONV_LOOPS(s, y[yi] += w[wi] * x[xi]);
}

void ref_conv_backward_data(double *dx, const double *dy, const double *w,
                            const wrn_conv_shape *s) {
  memset(dx, 0, (size_t)s->n * s->c_in * s->h * s->w * sizeof *dx);
  REF_CONV_LOOPS(s, dx[xi] += w[wi] * dy[yi]);
}

void ref_conv_backward_weight(double *dw, const double *dy, const double *x,
                              const wrn_conv_shape *s) {
  memset(dw, 0, (size_t)s->c_out * s->c_in * s->k * s->k * sizeof *dw);
  REF_CONV_LOOPS(s, dw[wi] += dy[yi] * x[xi]);
}
