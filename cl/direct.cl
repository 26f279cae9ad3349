/* Direct convolution for CPU devices: no column buffer, no transform, NCHW in and NCHW out.
 *
 * A work-item computes whole output rows: DIR_CO output channels of one row oy of one image,
 * each row held as DIR_NV vectors of DIR_VW lanes (DIR_NV * DIR_VW = WO), all in registers.
 * For each input channel and kernel row it loads the input row's vectors once and broadcasts
 * each of the DIR_CO weights of every tap into them, so a tap costs DIR_NV loads (or
 * shuffles, at the row's edges and for stride 2) for DIR_CO * DIR_NV fused multiply-adds.
 * Neighbouring work-items (dimension 0) take the other output channels of the same row and
 * read the same input rows while they are in cache.
 *
 * Shapes (the host checks them): DIR_K = 3 with pad 1 or DIR_K = 1 with pad 0, stride DIR_S
 * = 1 (W = WO) or 2 (W = 2 WO). The backward-data pass of a stride-1 layer is this forward
 * with the channels exchanged and the filter flipped (DIR_FLIP = 1): the weight of (output o,
 * input c, tap t) is w[o * wso + c * wsc + (DIR_FLIP ? K*K-1-t : t)].
 *
 * Tunables from the host (host/conv_direct.c) as -D values: DIR_K, DIR_S, DIR_FLIP, DIR_VW
 * (4, 8 or 16), DIR_NV, DIR_CO. Sums run over input channels, then kernel rows, then taps in
 * a fixed order, so two runs give the same bits. */

#if !defined(DIR_K) || !defined(DIR_S) || !defined(DIR_FLIP) || !defined(DIR_VW) || \
    !defined(DIR_NV) || !defined(DIR_CO)
#error "cl/direct.cl needs DIR_K, DIR_S, DIR_FLIP, DIR_VW, DIR_NV, DIR_CO"
#endif
#if !((DIR_K == 3 || DIR_K == 1) && (DIR_S == 1 || DIR_S == 2))
#error "cl/direct.cl: DIR_K must be 1 or 3 and DIR_S 1 or 2"
#endif
#define DIR_P (DIR_K / 2)
#define DIR_UNROLL _Pragma("unroll")
#define DIR_CAT2(a, b) a##b
#define DIR_CAT(a, b) DIR_CAT2(a, b)
typedef DIR_CAT(REAL, DIR_VW) dv;
/* shuffle2's mask has lanes as wide as the data's. */
#ifdef WRN_FP64
typedef DIR_CAT(ulong, DIR_VW) dmask;
#else
typedef DIR_CAT(uint, DIR_VW) dmask;
#endif
#define DV_LOAD(i, p) DIR_CAT(vload, DIR_VW)(i, p)
#define DV_STORE(v, i, p) DIR_CAT(vstore, DIR_VW)(v, i, p)

/* Lane masks: lanes (VW-1 .. 2VW-2) of (a, b) shift b right by one lane (a's last lane in
 * front); lanes (1 .. VW) shift a left by one (b's first lane behind); evens and odds of
 * (a, b) de-interleave a stride-2 row. */
#if DIR_VW == 4
#define DIR_SHR ((dmask)(3, 4, 5, 6))
#define DIR_SHL ((dmask)(1, 2, 3, 4))
#define DIR_EVEN ((dmask)(0, 2, 4, 6))
#define DIR_ODD ((dmask)(1, 3, 5, 7))
#elif DIR_VW == 8
#define DIR_SHR ((dmask)(7, 8, 9, 10, 11, 12, 13, 14))
#define DIR_SHL ((dmask)(1, 2, 3, 4, 5, 6, 7, 8))
#define DIR_EVEN ((dmask)(0, 2, 4, 6, 8, 10, 12, 14))
#define DIR_ODD ((dmask)(1, 3, 5, 7, 9, 11, 13, 15))
#elif DIR_VW == 16
#define DIR_SHR ((dmask)(15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30))
#define DIR_SHL ((dmask)(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))
#define DIR_EVEN ((dmask)(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30))
#define DIR_ODD ((dmask)(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))
#else
#error "cl/direct.cl: DIR_VW must be 4, 8 or 16"
#endif

/* y[img][o][oy][:] (+)= sum_c sum_taps w * x (+ add[img][o][oy][:]). Grid (>= ceil(O /
 * DIR_CO), HO, n); x is C x H x W per image, y and add O x HO x WO. */
__kernel void direct_conv(__global real *y, ulong y_off, __global const real *x, ulong x_off,
                          __global const real *w, ulong w_off, __global const real *add,
                          ulong add_off, int C, int H, int W, int O, int HO, ulong wso,
                          ulong wsc, int accumulate, int has_add) {
  const int ob = (int)get_global_id(0), oy = (int)get_global_id(1), img = (int)get_global_id(2);
  const int o0 = ob * DIR_CO;
  if (o0 >= O || oy >= HO) return;
  const int WO = DIR_NV * DIR_VW;
  /* Output channels past O repeat the last one (computed, not stored). */
  __global const real *wp[DIR_CO];
  DIR_UNROLL for (int o = 0; o < DIR_CO; o++) wp[o] = w + w_off + (ulong)min(o0 + o, O - 1) * wso;
  dv acc[DIR_CO][DIR_NV];
  DIR_UNROLL for (int o = 0; o < DIR_CO; o++)
    DIR_UNROLL for (int v = 0; v < DIR_NV; v++) acc[o][v] = (dv)(0);
  const dv zero = (dv)(0);
  __global const real *xc = x + x_off + (ulong)img * C * H * W;
  for (int c = 0; c < C; c++, xc += (ulong)H * W) {
    const ulong wc = (ulong)c * wsc;
    DIR_UNROLL for (int ky = 0; ky < DIR_K; ky++) {
      const int iy = oy * DIR_S - DIR_P + ky;
      if (iy < 0 || iy >= H) continue;
      __global const real *row = xc + (ulong)iy * W;
      /* t[kx][v]: the input values under tap kx for output vector v. */
      dv t[DIR_K][DIR_NV];
#if DIR_S == 1
      DIR_UNROLL for (int v = 0; v < DIR_NV; v++) t[DIR_P][v] = DV_LOAD(v, row);
#if DIR_K == 3
      /* Tap 0 reads one lane to the left, tap 2 one to the right; the row's ends are zero. */
      /* Inside the row these are unaligned loads (cheaper than a lane-crossing shuffle). */
      t[0][0] = shuffle2(zero, t[1][0], DIR_SHR);
      DIR_UNROLL for (int v = 1; v < DIR_NV; v++) t[0][v] = DV_LOAD(0, row + v * DIR_VW - 1);
      DIR_UNROLL for (int v = 0; v + 1 < DIR_NV; v++) t[2][v] = DV_LOAD(0, row + v * DIR_VW + 1);
      t[2][DIR_NV - 1] = shuffle2(t[1][DIR_NV - 1], zero, DIR_SHL);
#endif
#else
      /* Stride 2: input 2 ox (tap P) and 2 ox + 1 (tap 2) are the evens and odds of the two
       * vectors under output vector v; 2 ox - 1 (tap 0) is the odds moved right by one. */
      DIR_UNROLL for (int v = 0; v < DIR_NV; v++) {
        const dv a = DV_LOAD(2 * v, row), b = DV_LOAD(2 * v + 1, row);
        t[DIR_P][v] = shuffle2(a, b, DIR_EVEN);
#if DIR_K == 3
        t[2][v] = shuffle2(a, b, DIR_ODD);
#endif
      }
#if DIR_K == 3
      t[0][0] = shuffle2(zero, t[2][0], DIR_SHR);
      DIR_UNROLL for (int v = 1; v < DIR_NV; v++) t[0][v] = shuffle2(t[2][v - 1], t[2][v], DIR_SHR);
#endif
#endif
      DIR_UNROLL for (int kx = 0; kx < DIR_K; kx++) {
        const int tap = ky * DIR_K + kx;
        const ulong wt = wc + (ulong)(DIR_FLIP ? DIR_K * DIR_K - 1 - tap : tap);
        DIR_UNROLL for (int o = 0; o < DIR_CO; o++) {
          const dv wv = (dv)(wp[o][wt]);
          DIR_UNROLL for (int v = 0; v < DIR_NV; v++) acc[o][v] = fma(wv, t[kx][v], acc[o][v]);
        }
      }
    }
  }
  DIR_UNROLL for (int o = 0; o < DIR_CO; o++) {
    if (o0 + o >= O) break;
    const ulong base = (((ulong)img * O + (ulong)(o0 + o)) * HO + (ulong)oy) * (ulong)WO;
    __global real *yp = y + y_off + base;
    __global const real *ap = add + add_off + base;
    DIR_UNROLL for (int v = 0; v < DIR_NV; v++) {
      dv r = acc[o][v];
      if (has_add) r += DV_LOAD(v, ap);
      if (accumulate) r += DV_LOAD(v, yp);
      DV_STORE(r, v, yp);
    }
  }
}

#if DIR_S == 2
/* Lanes interleaving two vectors: (a0, b0, a1, b1, ...) from the first and second halves. */
#if DIR_VW == 4
#define DIR_ZIPLO ((dmask)(0, 4, 1, 5))
#define DIR_ZIPHI ((dmask)(2, 6, 3, 7))
#elif DIR_VW == 8
#define DIR_ZIPLO ((dmask)(0, 8, 1, 9, 2, 10, 3, 11))
#define DIR_ZIPHI ((dmask)(4, 12, 5, 13, 6, 14, 7, 15))
#else
#define DIR_ZIPLO ((dmask)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23))
#define DIR_ZIPHI ((dmask)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31))
#endif

/* The backward-data pass of a stride-2 layer (a transposed convolution): dx[img][c][iy][:]
 * (+)= sum_o sum_taps w[o][c][ky][kx] dy[img][o][oy][ox] over the taps with iy = 2 oy - P + ky
 * and ix = 2 ox - P + kx. A row of dx is kept as its even and odd columns, DIR_NV vectors
 * each (DIR_NV * DIR_VW = WO, the width of dy; dx is 2 WO wide), interleaved when stored:
 *   K = 3, P = 1: even ix = 2j takes kx = 1 at ox = j; odd ix = 2j + 1 takes kx = 0 at
 *                 ox = j + 1 and kx = 2 at ox = j; even rows take ky = 1, odd rows 0 and 2;
 *   K = 1, P = 0: even rows and columns take ox = j, the rest is zero.
 * Grid (>= ceil(C / DIR_CO), H, n); w is O x C x K x K, dy O x HO x WO per image. */
__kernel void direct_convt2(__global real *dx, ulong dx_off, __global const real *dy,
                            ulong dy_off, __global const real *w, ulong w_off, int C, int H,
                            int O, int HO, int accumulate) {
  const int cb = (int)get_global_id(0), iy = (int)get_global_id(1), img = (int)get_global_id(2);
  const int c0 = cb * DIR_CO;
  if (c0 >= C || iy >= H) return;
  const int WO = DIR_NV * DIR_VW, W = 2 * WO;
  dv ev[DIR_CO][DIR_NV], od[DIR_CO][DIR_NV];
  DIR_UNROLL for (int q = 0; q < DIR_CO; q++)
    DIR_UNROLL for (int v = 0; v < DIR_NV; v++) ev[q][v] = od[q][v] = (dv)(0);
  const dv zero = (dv)(0);
  int cq[DIR_CO];
  DIR_UNROLL for (int q = 0; q < DIR_CO; q++) cq[q] = min(c0 + q, C - 1);
  __global const real *dyi = dy + dy_off + (ulong)img * O * HO * WO;
  for (int o = 0; o < O; o++) {
    __global const real *wo = w + w_off + (ulong)o * C * DIR_K * DIR_K;
    DIR_UNROLL for (int ky = 0; ky < DIR_K; ky++) {
      const int t = iy + DIR_P - ky;
      if (t < 0 || (t & 1)) continue;
      const int oy = t >> 1;
      if (oy >= HO) continue;
      __global const real *row = dyi + ((ulong)o * HO + (ulong)oy) * WO;
      dv d[DIR_NV];
      DIR_UNROLL for (int v = 0; v < DIR_NV; v++) d[v] = DV_LOAD(v, row);
#if DIR_K == 3
      /* dy at ox = j + 1: unaligned loads inside the row, zero past its end. */
      dv dn[DIR_NV];
      DIR_UNROLL for (int v = 0; v + 1 < DIR_NV; v++) dn[v] = DV_LOAD(0, row + v * DIR_VW + 1);
      dn[DIR_NV - 1] = shuffle2(d[DIR_NV - 1], zero, DIR_SHL);
#endif
      DIR_UNROLL for (int q = 0; q < DIR_CO; q++) {
        __global const real *wq = wo + (ulong)cq[q] * DIR_K * DIR_K + ky * DIR_K;
#if DIR_K == 3
        const dv w0 = (dv)(wq[0]), w1 = (dv)(wq[1]), w2 = (dv)(wq[2]);
        DIR_UNROLL for (int v = 0; v < DIR_NV; v++) {
          ev[q][v] = fma(w1, d[v], ev[q][v]);
          od[q][v] = fma(w0, dn[v], od[q][v]);
          od[q][v] = fma(w2, d[v], od[q][v]);
        }
#else
        const dv w0 = (dv)(wq[0]);
        DIR_UNROLL for (int v = 0; v < DIR_NV; v++) ev[q][v] = fma(w0, d[v], ev[q][v]);
#endif
      }
    }
  }
  DIR_UNROLL for (int q = 0; q < DIR_CO; q++) {
    if (c0 + q >= C) break;
    __global real *xp = dx + dx_off + (((ulong)img * C + (ulong)(c0 + q)) * H + (ulong)iy) * (ulong)W;
    DIR_UNROLL for (int v = 0; v < DIR_NV; v++) {
      dv lo = shuffle2(ev[q][v], od[q][v], DIR_ZIPLO), hi = shuffle2(ev[q][v], od[q][v], DIR_ZIPHI);
      if (accumulate) {
        lo += DV_LOAD(2 * v, xp);
        hi += DV_LOAD(2 * v + 1, xp);
      }
      DV_STORE(lo, 2 * v, xp);
      DV_STORE(hi, 2 * v + 1, xp);
    }
  }
}
#endif

/* The backward-weight pass, split over chunks of images: part[chunk][o][c][tap] = sum over the
 * chunk's images and output pixels of dy[img][o][oy][ox] x[img][c][oy S - P + ky][ox S - P + kx].
 * A work-item takes one output channel o and DIR_CO input channels; its 9 (or 1) sums per
 * channel are vectors of partial sums over ox, summed across lanes at the end. A dy row is
 * loaded once and multiplied into every tap of every channel. Grid (>= ceil(C / DIR_CO), O,
 * chunks); direct_wsum then adds the chunks in order. */
__kernel void direct_wgrad(__global real *part, ulong part_off, __global const real *dy,
                           ulong dy_off, __global const real *x, ulong x_off, int C, int H,
                           int W, int O, int HO, int n, int imgs_per_chunk) {
  const int cb = (int)get_global_id(0), o = (int)get_global_id(1), chunk = (int)get_global_id(2);
  const int c0 = cb * DIR_CO;
  if (c0 >= C || o >= O) return;
  const int WO = DIR_NV * DIR_VW;
  const int i0 = chunk * imgs_per_chunk, i1 = min(n, i0 + imgs_per_chunk);
  dv acc[DIR_CO][DIR_K * DIR_K];
  DIR_UNROLL for (int q = 0; q < DIR_CO; q++)
    DIR_UNROLL for (int t = 0; t < DIR_K * DIR_K; t++) acc[q][t] = (dv)(0);
  const dv zero = (dv)(0);
  int cq[DIR_CO];
  DIR_UNROLL for (int q = 0; q < DIR_CO; q++) cq[q] = min(c0 + q, C - 1);
  for (int img = i0; img < i1; img++) {
    __global const real *dyo = dy + dy_off + ((ulong)img * O + (ulong)o) * HO * WO;
    __global const real *xi = x + x_off + (ulong)img * C * H * W;
    for (int oy = 0; oy < HO; oy++) {
      dv d[DIR_NV];
      DIR_UNROLL for (int v = 0; v < DIR_NV; v++) d[v] = DV_LOAD(v, dyo + (ulong)oy * WO);
      DIR_UNROLL for (int q = 0; q < DIR_CO; q++) {
        DIR_UNROLL for (int ky = 0; ky < DIR_K; ky++) {
          const int iy = oy * DIR_S - DIR_P + ky;
          if (iy < 0 || iy >= H) continue;
          __global const real *row = xi + ((ulong)cq[q] * H + (ulong)iy) * W;
          DIR_UNROLL for (int v = 0; v < DIR_NV; v++) {
            dv t[DIR_K];
#if DIR_S == 1
            t[DIR_P] = DV_LOAD(v, row);
#if DIR_K == 3
            t[0] = v == 0 ? shuffle2(zero, t[1], DIR_SHR) : DV_LOAD(0, row + v * DIR_VW - 1);
            t[2] = v == DIR_NV - 1 ? shuffle2(t[1], zero, DIR_SHL) : DV_LOAD(0, row + v * DIR_VW + 1);
#endif
#else
            const dv a = DV_LOAD(2 * v, row), b = DV_LOAD(2 * v + 1, row);
            t[DIR_P] = shuffle2(a, b, DIR_EVEN);
#if DIR_K == 3
            t[2] = shuffle2(a, b, DIR_ODD);
            /* 2 ox - 1: the odd lanes moved right by one, the row's left end zero. */
            const dv prev = v == 0 ? zero : shuffle2(DV_LOAD(2 * v - 2, row), DV_LOAD(2 * v - 1, row), DIR_ODD);
            t[0] = shuffle2(prev, t[2], DIR_SHR);
#endif
#endif
            DIR_UNROLL for (int kx = 0; kx < DIR_K; kx++)
              acc[q][ky * DIR_K + kx] = fma(d[v], t[kx], acc[q][ky * DIR_K + kx]);
          }
        }
      }
    }
  }
  DIR_UNROLL for (int q = 0; q < DIR_CO; q++) {
    if (c0 + q >= C) break;
    __global real *p = part + part_off + (((ulong)chunk * O + (ulong)o) * C + (ulong)(c0 + q)) * (DIR_K * DIR_K);
    DIR_UNROLL for (int t = 0; t < DIR_K * DIR_K; t++) {
      real lanes[DIR_VW];
      DV_STORE(acc[q][t], 0, lanes);
      real sum = 0;
      for (int l = 0; l < DIR_VW; l++) sum += lanes[l];
      p[t] = sum;
    }
  }
}

/* dw[i] (+)= sum over chunks of part[chunk][i], chunks in order. Grid (>= count). */
__kernel void direct_wsum(__global real *dw, ulong dw_off, __global const real *part,
                          ulong part_off, int count, int chunks, int accumulate) {
  const int i = (int)get_global_id(0);
  if (i >= count) return;
  real s = 0;
  for (int k = 0; k < chunks; k++) s += part[part_off + (ulong)k * count + i];
  if (accumulate) s += dw[dw_off + i];
  dw[dw_off + i] = s;
}
