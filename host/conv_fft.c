/* FFT convolution through clFFT for stride-1 layers, all three passes:
 *
 *   forward          Y = FFT(pad(x)) . conj(FFT(w)) summed over c_in;  y = crop(IFFT(Y))
 *   backward data    DX = FFT(dy) . FFT(w) summed over c_out;          dx = crop(IFFT(DX), pad)
 *   backward weight  DW = FFT(pad(x)) . conj(FFT(dy)) summed over images; dw = crop(IFFT(DW))
 *
 * Each plane is embedded in Hf x Wf >= (h + 2 pad) x (w + 2 pad) (the smallest size with
 * factors 2, 3, 5, 7, which clFFT transforms), so the circular correlation equals the
 * linear one where it is read. The per-frequency products are cl/fft.cl's fft_mac; plans are
 * baked once per (size, batch, direction) and context. clFFT takes whole buffers, so the
 * workspace regions it reads and writes are sub-buffers aligned as the device requires.
 *
 * It is a candidate for the tuner; on 3x3 kernels the transforms of every plane cost more
 * than the multiplies they save (measured in docs/performance.md). */
#include "conv_internal.h"

#include <clFFT.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WRN_CLFFT_CHECK(call)                                                               \
  do {                                                                                      \
    clfftStatus wrn_fft_s_ = (call);                                                        \
    if (wrn_fft_s_ != CLFFT_SUCCESS)                                                        \
      return wrn_fail(wrn_fft_s_ == CLFFT_OUT_OF_RESOURCES ||                               \
                              wrn_fft_s_ == CLFFT_MEM_OBJECT_ALLOCATION_FAILURE             \
                          ? WRN_STATUS_OUT_OF_MEMORY                                        \
                          : WRN_STATUS_OPENCL,                                              \
                      "%s failed with clFFT status %d (%s) at %s", #call, (int)wrn_fft_s_,  \
                      (int)wrn_fft_s_ < 0 ? wrn_cl_error_name((cl_int)wrn_fft_s_) : "clFFT", \
                      WRN_WHERE);                                                           \
  } while (0)

/* clFFT keeps process-wide state: set up on first use, torn down with the last context. */
static pthread_mutex_t fft_lock = PTHREAD_MUTEX_INITIALIZER;
static int fft_users;

typedef struct fft_plan {
  size_t hf, wf, batch;
  int backward;
  clfftPlanHandle h;
  size_t tmp; /* bytes of temporary buffer it needs */
} fft_plan;

struct wrn_fft_cache {
  fft_plan *plans;
  int n, cap;
};

void wrn_conv_fft_free(wrn_ctx *ctx) {
  struct wrn_fft_cache *c = ctx->fft;
  if (!c) return;
  for (int i = 0; i < c->n; i++) clfftDestroyPlan(&c->plans[i].h);
  free(c->plans);
  free(c);
  ctx->fft = NULL;
  pthread_mutex_lock(&fft_lock);
  if (--fft_users == 0) clfftTeardown();
  pthread_mutex_unlock(&fft_lock);
}

static wrn_status fft_init(wrn_ctx *ctx) {
  if (ctx->fft) return WRN_OK;
  pthread_mutex_lock(&fft_lock);
  clfftStatus st = CLFFT_SUCCESS;
  if (fft_users == 0) {
    /* What clfftInitSetupData does; that header function is plain `inline`, which a C11
     * build without optimisation leaves undefined. */
    clfftSetupData sd;
    memset(&sd, 0, sizeof sd);
    sd.major = clfftVersionMajor;
    sd.minor = clfftVersionMinor;
    sd.patch = clfftVersionPatch;
    st = clfftSetup(&sd);
  }
  if (st == CLFFT_SUCCESS) fft_users++;
  pthread_mutex_unlock(&fft_lock);
  WRN_CLFFT_CHECK(st);
  ctx->fft = calloc(1, sizeof *ctx->fft);
  if (!ctx->fft) {
    pthread_mutex_lock(&fft_lock);
    if (--fft_users == 0) clfftTeardown();
    pthread_mutex_unlock(&fft_lock);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  return WRN_OK;
}

/* The smallest n >= x whose only prime factors are 2, 3, 5 and 7. */
static size_t good_size(size_t x) {
  for (size_t n = x < 1 ? 1 : x;; n++) {
    size_t m = n;
    static const size_t pr[4] = {2, 3, 5, 7};
    for (int i = 0; i < 4; i++)
      while (m % pr[i] == 0) m /= pr[i];
    if (m == 1) return n;
  }
}

/* The batched 2-D real transform of `batch` planes of hf x wf: forward real -> Hermitian, or
 * backward Hermitian -> real (scaled by 1/(hf wf) as clFFT does by default). */
static wrn_status get_plan(wrn_ctx *ctx, size_t hf, size_t wf, size_t batch, int backward,
                           fft_plan **out) {
  WRN_TRY(fft_init(ctx));
  struct wrn_fft_cache *c = ctx->fft;
  for (int i = 0; i < c->n; i++)
    if (c->plans[i].hf == hf && c->plans[i].wf == wf && c->plans[i].batch == batch &&
        c->plans[i].backward == backward) {
      *out = &c->plans[i];
      return WRN_OK;
    }
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 8;
    fft_plan *p = realloc(c->plans, (size_t)cap * sizeof *p);
    if (!p) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    c->plans = p;
    c->cap = cap;
  }
  fft_plan pl = {hf, wf, batch, backward, 0, 0};
  size_t len[2] = {wf, hf};
  WRN_CLFFT_CHECK(clfftCreateDefaultPlan(&pl.h, ctx->cl, CLFFT_2D, len));
  size_t rstr[2] = {1, wf}, cstr[2] = {1, wf / 2 + 1};
  const size_t rdist = hf * wf, cdist = hf * (wf / 2 + 1);
  clfftStatus st = clfftSetPlanPrecision(pl.h, ctx->dtype == WRN_F64 ? CLFFT_DOUBLE : CLFFT_SINGLE);
  if (st == CLFFT_SUCCESS)
    st = clfftSetLayout(pl.h, backward ? CLFFT_HERMITIAN_INTERLEAVED : CLFFT_REAL,
                        backward ? CLFFT_REAL : CLFFT_HERMITIAN_INTERLEAVED);
  if (st == CLFFT_SUCCESS) st = clfftSetResultLocation(pl.h, CLFFT_OUTOFPLACE);
  if (st == CLFFT_SUCCESS) st = clfftSetPlanInStride(pl.h, CLFFT_2D, backward ? cstr : rstr);
  if (st == CLFFT_SUCCESS) st = clfftSetPlanOutStride(pl.h, CLFFT_2D, backward ? rstr : cstr);
  if (st == CLFFT_SUCCESS)
    st = clfftSetPlanDistance(pl.h, backward ? cdist : rdist, backward ? rdist : cdist);
  if (st == CLFFT_SUCCESS) st = clfftSetPlanBatchSize(pl.h, batch);
  if (st == CLFFT_SUCCESS) st = clfftBakePlan(pl.h, 1, &ctx->queue, NULL, NULL);
  if (st == CLFFT_SUCCESS) st = clfftGetTmpBufSize(pl.h, &pl.tmp);
  if (st != CLFFT_SUCCESS) {
    clfftDestroyPlan(&pl.h);
    WRN_CLFFT_CHECK(st);
  }
  c->plans[c->n] = pl;
  *out = &c->plans[c->n++];
  return WRN_OK;
}

/* ---------------------------------------------------------------- geometry */

typedef struct fft_geom {
  size_t hf, wf, R, F; /* plane size; reals and complex values per plane */
  size_t align;        /* elements per aligned region start */
  /* planes per image (chunked) and fixed */
  size_t a_per, b_fixed, out_per, out_fixed;
} fft_geom;

static void geom(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, fft_geom *g) {
  g->hf = good_size((size_t)s->h + 2 * (size_t)s->pad);
  g->wf = good_size((size_t)s->w + 2 * (size_t)s->pad);
  g->R = g->hf * g->wf;
  g->F = g->hf * (g->wf / 2 + 1);
  /* CL_DEVICE_MEM_BASE_ADDR_ALIGN is at most 4096 bits on the devices we know; 4 KiB
   * region starts satisfy any of them. */
  const size_t rs = ctx ? ctx->real_size : 4;
  g->align = 4096 / rs;
  /* Planes: the per-image operand (x for forward and weight, dy for data), the fixed one
   * (w for forward and data), the per-image result (y, dx) or the fixed result (dw). */
  switch (pass) {
  case WRN_CONV_FORWARD:
    g->a_per = (size_t)s->c_in, g->b_fixed = (size_t)s->c_out * s->c_in;
    g->out_per = (size_t)s->c_out, g->out_fixed = 0;
    break;
  case WRN_CONV_BACKWARD_DATA:
    g->a_per = (size_t)s->c_out, g->b_fixed = (size_t)s->c_out * s->c_in;
    g->out_per = (size_t)s->c_in, g->out_fixed = 0;
    break;
  default: /* both x and dy per image; dw fixed */
    g->a_per = (size_t)s->c_in + (size_t)s->c_out, g->b_fixed = 0;
    g->out_per = 0, g->out_fixed = (size_t)s->c_out * s->c_in;
    break;
  }
}

static size_t up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Regions of a chunk of nb images: padded reals and spectra of the inputs, the product's
 * spectra and its inverse, and clFFT's temporary buffer (tmp_elems). */
typedef struct fft_layout {
  size_t in_pad, in_spec, fx_pad, fx_spec, prod_spec, prod_real, tmp, total;
} fft_layout;

static void layout(const fft_geom *g, size_t nb, size_t tmp_elems, fft_layout *L) {
  const size_t a = g->align;
  const size_t in_planes = g->a_per * nb, fx_planes = g->b_fixed;
  const size_t prod_planes = g->out_per * nb + g->out_fixed;
  size_t o = 0;
  L->in_pad = o, o += up(in_planes * g->R, a);
  L->in_spec = o, o += up(in_planes * 2 * g->F, a);
  L->fx_pad = o, o += up(fx_planes * g->R, a);
  L->fx_spec = o, o += up(fx_planes * 2 * g->F, a);
  L->prod_spec = o, o += up(prod_planes * 2 * g->F, a);
  L->prod_real = o, o += up(prod_planes * g->R, a);
  L->tmp = o, o += up(tmp_elems, a);
  L->total = o + a; /* room to align the start of the workspace itself */
}

static int fft_supports(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                        const conv_params *p) {
  return (!p || p->n == 0) && s->stride == 1;
}

/* clFFT's temporary buffers are not known before a plan is baked; they are bounded here by
 * the largest transform's own size, which the layout reserves (a plan needing more is
 * refused at run time with a message). */
static size_t tmp_bound(const fft_geom *g, size_t nb) {
  size_t planes = g->a_per * nb;
  if (g->b_fixed > planes) planes = g->b_fixed;
  if (g->out_per * nb + g->out_fixed > planes) planes = g->out_per * nb + g->out_fixed;
  return planes * 2 * g->F;
}

static size_t fft_ws(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass, size_t nb) {
  fft_geom g;
  geom(ctx, s, pass, &g);
  fft_layout L;
  layout(&g, nb, tmp_bound(&g, nb), &L);
  return L.total;
}

static size_t fft_workspace(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                            const conv_params *p, size_t max_ws) {
  if (max_ws == 0) return fft_ws(ctx, s, pass, (size_t)s->n);
  /* The largest chunk that fits (the layout is monotonic in nb). */
  size_t lo = 0, hi = (size_t)s->n;
  while (lo < hi) {
    size_t mid = (lo + hi + 1) / 2;
    if (fft_ws(ctx, s, pass, mid) <= max_ws) lo = mid;
    else hi = mid - 1;
  }
  return lo == 0 ? (size_t)-1 : fft_ws(ctx, s, pass, lo);
}

static int fft_candidates(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                          conv_params *out, int max) {
  if (max < 1) return 0;
  memset(out, 0, sizeof *out);
  return 1;
}

/* ---------------------------------------------------------------- running */

/* A sub-buffer of the workspace for clFFT: elements [off, off + n) of ws. */
static wrn_status sub(wrn_ctx *ctx, wrn_mem ws, size_t off, size_t n, cl_mem *out) {
  cl_buffer_region r = {(ws.off + off) * ctx->real_size, n * ctx->real_size};
  cl_int e;
  *out = clCreateSubBuffer(ws.mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &e);
  WRN_CL_CHECK(e);
  return WRN_OK;
}

static wrn_status transform(wrn_ctx *ctx, wrn_conv_pass pass, const fft_geom *g, size_t planes,
                            int backward, wrn_mem ws, size_t in, size_t out, size_t tmp_at,
                            size_t tmp_room) {
  fft_plan *pl = NULL;
  WRN_TRY(get_plan(ctx, g->hf, g->wf, planes, backward, &pl));
  const size_t rs = ctx->real_size, tmp_elems = (pl->tmp + rs - 1) / rs;
  if (tmp_elems > tmp_room)
    return wrn_fail(WRN_STATUS_UNSUPPORTED,
                    "fft: clFFT asks for a %zu-byte temporary buffer for %zux%zu planes, more "
                    "than the %zu bytes reserved",
                    pl->tmp, g->hf, g->wf, tmp_room * rs);
  const size_t n_real = planes * g->R, n_spec = planes * 2 * g->F;
  cl_mem bin = NULL, bout = NULL, btmp = NULL;
  wrn_status st = sub(ctx, ws, in, backward ? n_spec : n_real, &bin);
  if (st == WRN_OK) st = sub(ctx, ws, out, backward ? n_real : n_spec, &bout);
  if (st == WRN_OK && tmp_elems) st = sub(ctx, ws, tmp_at, tmp_elems, &btmp);
  if (st == WRN_OK) {
    /* 5 N log2 N per transform is the usual count; the profile's FLOPs are the
     * convolution's, counted once by fft_mac's launches. */
    cl_event *ev = wrn_event_slot_span(ctx, conv_cat(pass), 0);
    if (ev) ctx->events[ctx->nevents - 1].name = "clfft";
    clfftStatus fs = clfftEnqueueTransform(pl->h, backward ? CLFFT_BACKWARD : CLFFT_FORWARD, 1,
                                           &ctx->queue, 0, NULL, ev, &bin, &bout, btmp);
    if (fs != CLFFT_SUCCESS)
      st = wrn_fail(WRN_STATUS_OPENCL, "clfftEnqueueTransform failed with clFFT status %d",
                    (int)fs);
  }
  if (bin) clReleaseMemObject(bin);
  if (bout) clReleaseMemObject(bout);
  if (btmp) clReleaseMemObject(btmp);
  return st;
}

static wrn_status pad(wrn_ctx *ctx, wrn_conv_pass pass, const fft_geom *g, wrn_mem dst,
                      wrn_mem src, int R, int C, int off, size_t planes) {
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_FFT_PAD, &k));
  wrn_arg_mem(&k, dst);
  wrn_arg_mem(&k, src);
  wrn_arg_int(&k, R);
  wrn_arg_int(&k, C);
  wrn_arg_int(&k, off);
  wrn_arg_int(&k, (int)g->hf);
  wrn_arg_int(&k, (int)g->wf);
  wrn_arg_int(&k, (int)planes);
  size_t l0 = 64;
  size_t gws[2] = {wrn_round_up(g->R, l0), planes}, lws[2] = {l0, 1};
  return wrn_launch(&k, 2, gws, lws, conv_cat(pass), 0);
}

static wrn_status mac(wrn_ctx *ctx, wrn_conv_pass pass, const fft_geom *g, wrn_mem out,
                      wrn_mem P, wrn_mem R, size_t A, size_t B, size_t J, size_t sPa,
                      size_t sPj, size_t sRb, size_t sRj, int conj_p, int conj_r, double flops) {
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_FFT_MAC, &k));
  wrn_arg_mem(&k, out);
  wrn_arg_mem(&k, P);
  wrn_arg_mem(&k, R);
  wrn_arg_int(&k, (int)B);
  wrn_arg_int(&k, (int)J);
  wrn_arg_int(&k, (int)g->F);
  wrn_arg_ulong(&k, sPa);
  wrn_arg_ulong(&k, sPj);
  wrn_arg_ulong(&k, sRb);
  wrn_arg_ulong(&k, sRj);
  wrn_arg_int(&k, conj_p);
  wrn_arg_int(&k, conj_r);
  size_t l0 = 64;
  size_t gws[3] = {wrn_round_up(g->F, l0), B, A}, lws[3] = {l0, 1, 1};
  return wrn_launch(&k, 3, gws, lws, conv_cat(pass), flops);
}

static wrn_status crop(wrn_ctx *ctx, wrn_conv_pass pass, const fft_geom *g, wrn_mem out,
                       wrn_mem src, wrn_mem add, int R, int C, int off, size_t planes,
                       int accumulate) {
  wrn_args k;
  WRN_TRY(wrn_kernel_args(ctx, WRN_K_FFT_CROP, &k));
  wrn_arg_mem(&k, out);
  wrn_arg_mem(&k, src);
  wrn_arg_mem(&k, add.mem ? add : out);
  wrn_arg_int(&k, R);
  wrn_arg_int(&k, C);
  wrn_arg_int(&k, off);
  wrn_arg_int(&k, (int)g->hf);
  wrn_arg_int(&k, (int)g->wf);
  wrn_arg_int(&k, (int)planes);
  wrn_arg_int(&k, accumulate);
  wrn_arg_int(&k, add.mem != NULL);
  size_t l0 = 64;
  size_t gws[2] = {wrn_round_up((size_t)R * C, l0), planes}, lws[2] = {l0, 1};
  return wrn_launch(&k, 2, gws, lws, conv_cat(pass), 0);
}

static wrn_status fft_run(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                          const wrn_conv_io *io, const conv_params *p) {
  fft_geom g;
  geom(ctx, s, pass, &g);
  const size_t avail = io->ws.mem ? io->ws_elems : 0;
  size_t nb = (size_t)s->n;
  while (nb > 1 && fft_ws(ctx, s, pass, nb) > avail) nb--;
  fft_layout L;
  layout(&g, nb, tmp_bound(&g, nb), &L);
  /* Align the workspace's start: region offsets are multiples of g.align from there. */
  const size_t lead = (g.align - (io->ws.off % g.align)) % g.align;
  const wrn_mem ws = wrn_mem_at(io->ws, lead);
  const size_t tmp_room = L.total - g.align - L.tmp;
  const int ho = conv_ho(s), wo = conv_wo(s), k = s->k;
  const size_t F = g.F, in_img = (size_t)s->c_in * s->h * s->w, out_img = (size_t)s->c_out * ho * wo;
  const wrn_mem none = {NULL, 0};

  if (pass != WRN_CONV_BACKWARD_WEIGHT) {
    /* The filter's spectrum, once: w[co][ci] at the origin. */
    const size_t nw = (size_t)s->c_out * s->c_in;
    WRN_TRY(pad(ctx, pass, &g, wrn_mem_at(ws, L.fx_pad), io->b, k, k, 0, nw));
    WRN_TRY(transform(ctx, pass, &g, nw, 0, ws, L.fx_pad, L.fx_spec, L.tmp, tmp_room));
  }
  for (size_t i0 = 0; i0 < (size_t)s->n; i0 += nb) {
    const size_t cnt = (size_t)s->n - i0 < nb ? (size_t)s->n - i0 : nb;
    const double flops = conv_flops(s) * (double)cnt / s->n;
    if (pass == WRN_CONV_FORWARD) {
      const size_t pin = cnt * s->c_in, pout = cnt * s->c_out;
      WRN_TRY(pad(ctx, pass, &g, wrn_mem_at(ws, L.in_pad), wrn_mem_at(io->a, i0 * in_img), s->h,
                  s->w, s->pad, pin));
      WRN_TRY(transform(ctx, pass, &g, pin, 0, ws, L.in_pad, L.in_spec, L.tmp, tmp_room));
      /* Y[n][co] = sum_ci X[n][ci] conj(W[co][ci]) */
      WRN_TRY(mac(ctx, pass, &g, wrn_mem_at(ws, L.prod_spec), wrn_mem_at(ws, L.in_spec),
                  wrn_mem_at(ws, L.fx_spec), cnt, s->c_out, s->c_in, s->c_in * F, F,
                  s->c_in * F, F, 0, 1, flops));
      WRN_TRY(transform(ctx, pass, &g, pout, 1, ws, L.prod_spec, L.prod_real, L.tmp, tmp_room));
      WRN_TRY(crop(ctx, pass, &g, wrn_mem_at(io->out, i0 * out_img), wrn_mem_at(ws, L.prod_real),
                   io->add.mem ? wrn_mem_at(io->add, i0 * out_img) : none, ho, wo, 0, pout,
                   io->accumulate));
    } else if (pass == WRN_CONV_BACKWARD_DATA) {
      const size_t pin = cnt * s->c_out, pout = cnt * s->c_in;
      WRN_TRY(pad(ctx, pass, &g, wrn_mem_at(ws, L.in_pad), wrn_mem_at(io->a, i0 * out_img), ho,
                  wo, 0, pin));
      WRN_TRY(transform(ctx, pass, &g, pin, 0, ws, L.in_pad, L.in_spec, L.tmp, tmp_room));
      /* DX[n][ci] = sum_co DY[n][co] W[co][ci] */
      WRN_TRY(mac(ctx, pass, &g, wrn_mem_at(ws, L.prod_spec), wrn_mem_at(ws, L.in_spec),
                  wrn_mem_at(ws, L.fx_spec), cnt, s->c_in, s->c_out, s->c_out * F, F, F,
                  s->c_in * F, 0, 0, flops));
      WRN_TRY(transform(ctx, pass, &g, pout, 1, ws, L.prod_spec, L.prod_real, L.tmp, tmp_room));
      WRN_TRY(crop(ctx, pass, &g, wrn_mem_at(io->out, i0 * in_img), wrn_mem_at(ws, L.prod_real),
                   none, s->h, s->w, s->pad, pout, io->accumulate));
    } else {
      /* x's planes then dy's in the input regions; DW summed over the chunk's images, and
       * over chunks in order through the inverse's linearity: each chunk's dw is added. */
      const size_t px = cnt * s->c_in, pd = cnt * s->c_out;
      WRN_TRY(pad(ctx, pass, &g, wrn_mem_at(ws, L.in_pad), wrn_mem_at(io->b, i0 * in_img), s->h,
                  s->w, s->pad, px));
      WRN_TRY(pad(ctx, pass, &g, wrn_mem_at(ws, L.in_pad + px * g.R),
                  wrn_mem_at(io->a, i0 * out_img), ho, wo, 0, pd));
      WRN_TRY(transform(ctx, pass, &g, px + pd, 0, ws, L.in_pad, L.in_spec, L.tmp, tmp_room));
      /* DW[co][ci] = sum_n conj(DY[n][co]) X[n][ci] */
      const wrn_mem X = wrn_mem_at(ws, L.in_spec), DY = wrn_mem_at(ws, L.in_spec + px * 2 * F);
      const size_t planes = (size_t)s->c_out * s->c_in;
      WRN_TRY(mac(ctx, pass, &g, wrn_mem_at(ws, L.prod_spec), DY, X, s->c_out, s->c_in, cnt, F,
                  s->c_out * F, F, s->c_in * F, 1, 0, flops));
      WRN_TRY(transform(ctx, pass, &g, planes, 1, ws, L.prod_spec, L.prod_real, L.tmp, tmp_room));
      WRN_TRY(crop(ctx, pass, &g, io->out, wrn_mem_at(ws, L.prod_real), none, k, k, 0, planes,
                   io->accumulate || i0 > 0));
    }
  }
  return WRN_OK;
}

const conv_algo wrn_conv_algo_fft = {"fft", fft_supports, fft_workspace, fft_candidates, fft_run};
