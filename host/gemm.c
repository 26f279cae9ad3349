/* GEMM dispatch: CLBlast or the register-blocked kernels of cl/gemm.cl with one of a few tile
 * shapes, chosen per context and shape by timing on first use and remembered by the tuner's
 * store (tune.c), so a later run of the same shapes measures nothing.
 *
 * CLBlast's tuned kernels suit GPUs; on PoCL's CPU device its kernels reach a fraction of the
 * FMA peak (PoCL vectorises across work-items only in loop-free kernels) and its first call
 * on a shape compiles for 10-15 s, so on CPU devices it is not a candidate (WRN_GEMM=clblast
 * still forces it). Ours put explicit vector types inside the k loop instead, and which tile
 * keeps its accumulators in registers depends on the vector unit (6 x 64 suits AVX-512,
 * 6 x 16 AVX2), so the tile is measured too. */
#include "internal.h"

#include <clblast_c.h>
#include <pthread.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Tile shape of the kernels in cl/gemm.cl, passed to them as -D values. */
typedef struct gemm_tiles {
  int vw;                          /* vector width (lanes) */
  int tm, tnv;                     /* NN/TN: rows x vectors per work-item */
  int nt_tm, nt_tj, nt_gm, nt_kcv; /* NT: rows x columns per tile, tiles per item, k chunk */
} gemm_tiles;

_Static_assert(sizeof(gemm_tiles) == sizeof(((struct wrn_gemm_choice *)0)->tiles),
               "wrn_gemm_choice keeps a gemm_tiles");

enum { FORM_NN = 0, FORM_TN = 1, FORM_NT = 2, FORM_TT = 3 };
enum { MODE_AUTO = 0, MODE_CLBLAST = 1, MODE_OWN = 2 };
static const char *const form_names[4] = {"nn", "tn", "nt", "tt"};

static int gemm_mode(void) {
  const char *e = getenv("WRN_GEMM");
  if (!e || !*e || !strcmp(e, "auto")) return MODE_AUTO;
  if (!strcmp(e, "clblast")) return MODE_CLBLAST;
  if (!strcmp(e, "own")) return MODE_OWN;
  return -1;
}

static gemm_tiles default_tiles(const wrn_ctx *ctx) {
  gemm_tiles t = {ctx->dtype == WRN_F64 ? 8 : 16, 6, 1, 4, 6, 4, 32};
  return t;
}

/* The candidate tiles of a form; the first is the default. NN/TN: rows x vectors of VW
 * lanes (accumulators tm*tnv*VW reals). NT: tm x tj dot products of VW-lane partial sums. */
static int tile_candidates(const wrn_ctx *ctx, int form, gemm_tiles *out, int max) {
  const int d = ctx->dtype == WRN_F64;
  const gemm_tiles base = default_tiles(ctx);
  /* Float in vectors of 16 or 8, double in vectors of 8 (half the lanes per register). */
  static const int nn[][3] = {{16, 6, 1}, {16, 6, 4}, {16, 4, 2}, {8, 6, 2}, {16, 3, 2}};
  static const int nn64[][3] = {{8, 6, 1}, {8, 6, 2}, {8, 4, 2}, {8, 3, 2}};
  static const int nt[][4] = {{4, 6, 4, 32}, {2, 4, 4, 32}, {3, 4, 4, 32}, {2, 2, 8, 32}};
  int n = 0;
  if (form == FORM_NT) {
    for (size_t i = 0; i < sizeof nt / sizeof nt[0] && n < max; i++) {
      gemm_tiles t = base;
      t.vw = d ? 8 : 16;
      t.nt_tm = nt[i][0], t.nt_tj = nt[i][1], t.nt_gm = nt[i][2], t.nt_kcv = nt[i][3];
      out[n++] = t;
    }
  } else {
    const size_t cnt = d ? sizeof nn64 / sizeof nn64[0] : sizeof nn / sizeof nn[0];
    for (size_t i = 0; i < cnt && n < max; i++) {
      const int *row = d ? nn64[i] : nn[i];
      gemm_tiles t = base;
      t.vw = row[0], t.tm = row[1], t.tnv = row[2];
      out[n++] = t;
    }
  }
  return n;
}

static void tiles_defs(const gemm_tiles *t, char *out, size_t n) {
  snprintf(out, n, "-DGEMM_VW=%d -DGEMM_TM=%d -DGEMM_TNV=%d -DGEMM_NT_TM=%d -DGEMM_NT_TJ=%d "
                   "-DGEMM_NT_GM=%d -DGEMM_NT_KCV=%d",
           t->vw, t->tm, t->tnv, t->nt_tm, t->nt_tj, t->nt_gm, t->nt_kcv);
}

/* Text form for the tuner's store: "clblast" or "own:VW=..,..." with the form's fields. */
static void tiles_text(int form, int own, const gemm_tiles *t, char *out, size_t n) {
  if (!own) snprintf(out, n, "clblast");
  else if (form == FORM_NT)
    snprintf(out, n, "own:VW=%d,TM=%d,TJ=%d,GM=%d,KC=%d", t->vw, t->nt_tm, t->nt_tj, t->nt_gm,
             t->nt_kcv);
  else snprintf(out, n, "own:VW=%d,TM=%d,TNV=%d", t->vw, t->tm, t->tnv);
}

/* Parses tiles_text's output; 0 when it is not one (a damaged or foreign entry). */
static int tiles_parse(const wrn_ctx *ctx, int form, const char *s, int *own, gemm_tiles *t) {
  *t = default_tiles(ctx);
  if (!strcmp(s, "clblast")) {
    *own = 0;
    return 1;
  }
  *own = 1;
  int a, b, c, d, e;
  char tail;
  if (form == FORM_NT) {
    if (sscanf(s, "own:VW=%d,TM=%d,TJ=%d,GM=%d,KC=%d%c", &a, &b, &c, &d, &e, &tail) != 5)
      return 0;
    if (b < 1 || b > 8 || c < 1 || c > 8 || d < 1 || d > 8 || e < 1 || e > 1024) return 0;
    t->nt_tm = b, t->nt_tj = c, t->nt_gm = d, t->nt_kcv = e;
  } else {
    if (sscanf(s, "own:VW=%d,TM=%d,TNV=%d%c", &a, &b, &c, &tail) != 3) return 0;
    if (b < 1 || b > 16 || c < 1 || c > 8) return 0;
    t->tm = b, t->tnv = c;
  }
  if (!(a == 8 || (a == 16 && ctx->dtype == WRN_F32))) return 0;
  t->vw = a;
  return 1;
}

typedef struct gemm_call {
  wrn_op_cat cat;
  int form, ta, tb;
  size_t m, n, k, batch;
  double alpha, beta;
  wrn_mem a, b, c;
  size_t lda, ldb, ldc, sa, sb, sc;
  double flops; /* what the profile counts; negative: 2 m n k batch */
} gemm_call;

static double call_flops(const gemm_call *g) {
  return g->flops >= 0 ? g->flops
                       : 2.0 * (double)g->m * (double)g->n * (double)g->k * (double)g->batch;
}

/* CLBlast 1.5 (Debian 12) is not safe to call from several threads at once: its caches of
 * parameter databases and programs are filled on first use, and two threads that miss
 * together both store (CLBlast issue #486, fixed upstream by pull request #495). Two
 * replicas' threads making their first GEMMs together crashed inside clblast::Database in
 * about one training run in four on a loaded 2-core machine. Every call here is made under
 * one process-wide lock: once a kernel is compiled a call only enqueues, so the lock is held
 * briefly; first calls (which compile) are serialised. */
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;

static CLBlastStatusCode clblast_call(wrn_ctx *ctx, cl_event *ev, const gemm_call *g,
                                      wrn_mem c) {
  const CLBlastTranspose tra = g->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose trb = g->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastLayout L = CLBlastLayoutRowMajor;
  if (g->batch == 1) {
    if (ctx->dtype == WRN_F64)
      return CLBlastDgemm(L, tra, trb, g->m, g->n, g->k, g->alpha, g->a.mem, g->a.off, g->lda,
                          g->b.mem, g->b.off, g->ldb, g->beta, c.mem, c.off, g->ldc,
                          &ctx->queue, ev);
    return CLBlastSgemm(L, tra, trb, g->m, g->n, g->k, (float)g->alpha, g->a.mem, g->a.off,
                        g->lda, g->b.mem, g->b.off, g->ldb, (float)g->beta, c.mem, c.off,
                        g->ldc, &ctx->queue, ev);
  }
  if (ctx->dtype == WRN_F64)
    return CLBlastDgemmStridedBatched(L, tra, trb, g->m, g->n, g->k, g->alpha, g->a.mem,
                                      g->a.off, g->lda, g->sa, g->b.mem, g->b.off, g->ldb,
                                      g->sb, g->beta, c.mem, c.off, g->ldc, g->sc, g->batch,
                                      &ctx->queue, ev);
  return CLBlastSgemmStridedBatched(L, tra, trb, g->m, g->n, g->k, (float)g->alpha, g->a.mem,
                                    g->a.off, g->lda, g->sa, g->b.mem, g->b.off, g->ldb, g->sb,
                                    (float)g->beta, c.mem, c.off, g->ldc, g->sc, g->batch,
                                    &ctx->queue, ev);
}

static wrn_status run_clblast(wrn_ctx *ctx, cl_event *ev, const gemm_call *g, wrn_mem c) {
  pthread_mutex_lock(&clblast_lock);
  const CLBlastStatusCode st = clblast_call(ctx, ev, g, c);
  pthread_mutex_unlock(&clblast_lock);
  if (st == CLBlastSuccess) return WRN_OK;
  const int f64 = ctx->dtype == WRN_F64;
  const char *name = g->batch == 1 ? (f64 ? "CLBlastDgemm" : "CLBlastSgemm")
                                   : (f64 ? "CLBlastDgemmStridedBatched"
                                          : "CLBlastSgemmStridedBatched");
  return wrn_clblast_fail((int)st, name, WRN_WHERE);
}

/* Power of two >= x, capped. */
static size_t pow2_cap(size_t x, size_t cap) {
  size_t p = 1;
  while (p < x && p < cap) p *= 2;
  return p;
}

static wrn_status run_own(wrn_ctx *ctx, wrn_op_cat cat, const gemm_call *g, const gemm_tiles *t,
                          wrn_mem c, double beta) {
  static const wrn_kid ids[3] = {WRN_K_GEMM_NN, WRN_K_GEMM_TN, WRN_K_GEMM_NT};
  char defs[256];
  tiles_defs(t, defs, sizeof defs);
  wrn_args kr;
  WRN_TRY(wrn_kernel_variant_args(ctx, ids[g->form], defs, &kr));
  wrn_arg_int(&kr, (int)g->m);
  wrn_arg_int(&kr, (int)g->n);
  wrn_arg_int(&kr, (int)g->k);
  wrn_arg_real(&kr, g->alpha);
  wrn_arg_mem(&kr, g->a);
  wrn_arg_int(&kr, (int)g->lda);
  wrn_arg_ulong(&kr, g->sa);
  wrn_arg_mem(&kr, g->b);
  wrn_arg_int(&kr, (int)g->ldb);
  wrn_arg_ulong(&kr, g->sb);
  wrn_arg_real(&kr, beta);
  wrn_arg_mem(&kr, c);
  wrn_arg_int(&kr, (int)g->ldc);
  wrn_arg_ulong(&kr, g->sc);
  size_t tiles_n, tiles_m;
  if (g->form == FORM_NT) {
    tiles_n = (g->n + (size_t)t->nt_tj - 1) / (size_t)t->nt_tj;
    tiles_m = (g->m + (size_t)(t->nt_tm * t->nt_gm) - 1) / (size_t)(t->nt_tm * t->nt_gm);
  } else {
    const size_t cols = (size_t)t->tnv * (size_t)t->vw;
    tiles_n = (g->n + cols - 1) / cols;
    tiles_m = (g->m + (size_t)t->tm - 1) / (size_t)t->tm;
  }
  /* Small groups: each work-item already does a lot of work, and many groups keep every
   * core (or compute unit) busy on the small GEMMs of 8x8 maps. NN/TN kernels take M tiles
   * along dimension 0 (consecutive work-items share B's panel), NT kernels N tiles (they
   * share A's rows). */
  const size_t t0 = g->form == FORM_NT ? tiles_n : tiles_m;
  const size_t t1 = g->form == FORM_NT ? tiles_m : tiles_n;
  /* The kernel's own limit can be below the device's where its tile needs many registers. */
  size_t kwg = 0;
  WRN_TRY(wrn_kernel_wg_max(&kr, &kwg));
  size_t cap = ctx->max_wg < 64 ? ctx->max_wg : 64;
  while (kwg && cap > kwg) cap /= 2;
  size_t l0 = pow2_cap(t0, 16);
  if (l0 > cap) l0 = cap;
  size_t l1 = pow2_cap(t1, cap / l0);
  /* At least 16 groups where the tiles allow, so that a small GEMM is not left to one or
   * two cores (or compute units) while the others idle. */
  while (((t0 + l0 - 1) / l0) * ((t1 + l1 - 1) / l1) * g->batch < 16 && l0 * l1 > 1) {
    if (l1 > 1) l1 /= 2;
    else l0 /= 2;
  }
  size_t lws[3] = {l0, l1, 1};
  size_t gws[3] = {wrn_round_up(t0, l0), wrn_round_up(t1, l1), g->batch};
  return wrn_launch(&kr, 3, gws, lws, cat, call_flops(g));
}

/* Times the candidates on this call's shape (writing into scratch with beta 0, so the
 * caller's C is untouched and the scratch is never read); returns the fastest. */
static wrn_status choose(wrn_ctx *ctx, const gemm_call *g, int try_clblast, int *own,
                         gemm_tiles *best_t, double *best_ms) {
  const size_t elems = (g->batch - 1) * g->sc + (g->m - 1) * g->ldc + g->n;
  cl_mem scratch;
  WRN_TRY(wrn_alloc(ctx, elems * ctx->real_size, "a GEMM tuning scratch", &scratch));
  const int prof = ctx->profile;
  ctx->profile = 0; /* the trial runs stay out of the profile */
  wrn_mem s = {scratch, 0};
  gemm_tiles cand[8];
  const int nt = tile_candidates(ctx, g->form, cand, 8);
  double best = -1;
  *own = 1;
  *best_t = cand[0];
  wrn_status st = WRN_OK;
  for (int i = -1; i < nt && st == WRN_OK; i++) {
    if (i < 0 && !try_clblast) continue;
    double tbest = -1;
    for (int rep = 0; rep < 3; rep++) {
      st = wrn_ctx_finish(ctx);
      if (st != WRN_OK) break;
      const double t0 = wrn_seconds();
      wrn_status r = i < 0 ? run_clblast(ctx, NULL, g, s) : run_own(ctx, WRN_CAT_OTHER, g, &cand[i], s, 0.0);
      if (r == WRN_OK) r = wrn_ctx_finish(ctx);
      if (r != WRN_OK) {
        /* This path cannot run here (resources, say); a failed enqueue leaves the queue
         * usable, anything worse shows up in the next finish. */
        wrn_clear_error();
        tbest = -1;
        break;
      }
      const double dt = wrn_seconds() - t0;
      /* The first run compiles and warms caches; it does not count. */
      if (rep > 0 && (tbest < 0 || dt < tbest)) tbest = dt;
      if (rep > 0 && best > 0 && dt > 1.5 * best) break;
    }
    if (getenv("WRN_GEMM_VERBOSE") && tbest > 0) {
      char txt[64];
      tiles_text(g->form, i >= 0, i >= 0 ? &cand[i] : &cand[0], txt, sizeof txt);
      fprintf(stderr, "wrn_gemm: %s m=%zu n=%zu k=%zu batch %zu: %s %.3f ms (%.1f GFLOP/s)\n",
              form_names[g->form], g->m, g->n, g->k, g->batch, txt, tbest * 1e3,
              call_flops(g) / tbest * 1e-9);
    }
    if (tbest > 0 && (best < 0 || tbest < best)) {
      best = tbest;
      *own = i >= 0;
      if (i >= 0) *best_t = cand[i];
    }
  }
  ctx->profile = prof;
  wrn_free_mem(ctx, &scratch);
  *best_ms = best * 1e3;
  return st;
}

/* The remembered choice for this call's shape, measured now if there is none. */
static wrn_status lookup(wrn_ctx *ctx, const gemm_call *g, int mode, int *own, gemm_tiles *t) {
  const int cpu = (ctx->dev.type & CL_DEVICE_TYPE_CPU) != 0;
  *t = default_tiles(ctx);
  if (g->form == FORM_TT || mode == MODE_CLBLAST) { /* the layers never ask for A^T B^T */
    *own = 0;
    return WRN_OK;
  }
  for (int i = 0; i < ctx->ngemm_choice; i++) {
    const struct wrn_gemm_choice *ch = &ctx->gemm_choice[i];
    if (ch->form == g->form && ch->m == g->m && ch->n == g->n && ch->k == g->k &&
        ch->batch == g->batch && ch->mode == mode) {
      *own = ch->own;
      memcpy(t, ch->tiles, sizeof *t);
      return WRN_OK;
    }
  }
  char key[WRN_TUNE_KEY_MAX], val[WRN_TUNE_VALUE_MAX];
  snprintf(key, sizeof key, "gemm %s %s m%zu n%zu k%zu b%zu%s",
           ctx->dtype == WRN_F64 ? "f64" : "f32", form_names[g->form], g->m, g->n, g->k,
           g->batch, mode == MODE_OWN ? " own" : "");
  int hit = 0;
  WRN_TRY(wrn_tune_lookup(ctx, key, val, sizeof val, &hit));
  if (!hit || !tiles_parse(ctx, g->form, val, own, t) || (mode == MODE_OWN && !*own)) {
    double ms = 0;
    WRN_TRY(choose(ctx, g, mode == MODE_AUTO && !cpu, own, t, &ms));
    tiles_text(g->form, *own, t, val, sizeof val);
    WRN_TRY(wrn_tune_store(ctx, key, val, ms));
  }
  const int cap = (int)(sizeof ctx->gemm_choice / sizeof ctx->gemm_choice[0]);
  if (ctx->ngemm_choice < cap) {
    struct wrn_gemm_choice *ch = &ctx->gemm_choice[ctx->ngemm_choice++];
    ch->form = g->form, ch->m = g->m, ch->n = g->n, ch->k = g->k, ch->batch = g->batch;
    ch->mode = mode, ch->own = *own;
    memcpy(ch->tiles, t, sizeof *t);
  }
  return WRN_OK;
}

wrn_status wrn_gemm_strided(wrn_ctx *ctx, wrn_op_cat cat, int trans_a, int trans_b, size_t m,
                            size_t n, size_t k, double alpha, wrn_mem a, size_t lda, size_t sa,
                            wrn_mem b, size_t ldb, size_t sb, double beta, wrn_mem c,
                            size_t ldc, size_t sc, size_t batch, double flops) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: NULL context");
  if (!a.mem || !b.mem || !c.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: NULL buffer (%s)",
                    !a.mem ? "a" : !b.mem ? "b" : "c");
  if (m == 0 || n == 0 || k == 0 || batch == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "gemm: sizes must be positive (m=%zu n=%zu k=%zu batch=%zu)", m, n, k, batch);
  if ((int)cat < 0 || cat >= WRN_CAT_COUNT)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: bad profile category %d", (int)cat);
  const size_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
  if (lda < a_cols)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: lda=%zu < %zu (columns of stored A)",
                    lda, a_cols);
  if (ldb < b_cols)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: ldb=%zu < %zu (columns of stored B)",
                    ldb, b_cols);
  if (ldc < n)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: ldc=%zu < %zu (columns of C)", ldc, n);
  /* The kernels index with int (and add the element offsets as ulong). */
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
      ldc > INT_MAX)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "gemm: sizes too large (m=%zu n=%zu k=%zu lda=%zu ldb=%zu ldc=%zu)", m, n,
                    k, lda, ldb, ldc);
  const int mode = gemm_mode();
  if (mode < 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "gemm: WRN_GEMM=%s is not one of clblast, own, auto", getenv("WRN_GEMM"));
  const int form = trans_a ? (trans_b ? FORM_TT : FORM_TN) : (trans_b ? FORM_NT : FORM_NN);
  const gemm_call g = {cat, form, trans_a, trans_b, m, n, k, batch, alpha, beta, a, b, c,
                       lda, ldb, ldc, sa, sb, sc, flops};
  int own = 0;
  gemm_tiles t;
  WRN_TRY(lookup(ctx, &g, mode, &own, &t));
  if (own) return run_own(ctx, cat, &g, &t, c, beta);
  cl_event *ev = wrn_event_slot_span(ctx, cat, call_flops(&g));
  if (ev) ctx->events[ctx->nevents - 1].name = "clblast";
  return run_clblast(ctx, ev, &g, c);
}

wrn_status wrn_gemm(wrn_ctx *ctx, wrn_op_cat cat, int trans_a, int trans_b, size_t m, size_t n,
                    size_t k, double alpha, wrn_mem a, size_t lda, wrn_mem b, size_t ldb,
                    double beta, wrn_mem c, size_t ldc) {
  return wrn_gemm_strided(ctx, cat, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0,
                          beta, c, ldc, 0, 1, -1.0);
}
