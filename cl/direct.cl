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
