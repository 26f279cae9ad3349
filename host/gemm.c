/* GEMM dispatch: CLBlast or the register-blocked kernels of cl/gemm.cl, chosen per context
 * and shape by timing both on the first call (see wrn_gemm in wrn.h).
 *
 * CLBlast's tuned kernels suit GPUs; on PoCL's CPU device its kernels reach a fraction of
 * the FMA peak, because PoCL vectorises across work-items only in loop-free kernels. Ours
 * put explicit vector types inside the k loop instead. Neither wins everywhere, so the
 * choice is measured rather than guessed. */
#include "internal.h"

#include <clblast_c.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Tile shape of the kernels in cl/gemm.cl, passed to them as -D values. */
typedef struct gemm_tiles {
  int vw;                       /* vector width (lanes) */
  int tm, tnv;                  /* NN/TN: rows x vectors per work-item */
  int nt_tm, nt_tj, nt_gm, nt_kcv; /* NT: rows x columns per tile, tiles per item, k chunk */
} gemm_tiles;

static gemm_tiles default_tiles(const wrn_ctx *ctx) {
  gemm_tiles t = {ctx->dtype == WRN_F64 ? 8 : 16, 6, 4, 4, 6, 4, 32};
  return t;
}

static void tiles_defs(const gemm_tiles *t, char *out, size_t n) {
  snprintf(out, n, "-DGEMM_VW=%d -DGEMM_TM=%d -DGEMM_TNV=%d -DGEMM_NT_TM=%d -DGEMM_NT_TJ=%d "
                   "-DGEMM_NT_GM=%d -DGEMM_NT_KCV=%d",
           t->vw, t->tm, t->tnv, t->nt_tm, t->nt_tj, t->nt_gm, t->nt_kcv);
}

enum { FORM_NN = 0, FORM_TN = 1, FORM_NT = 2, FORM_TT = 3 };
enum { MODE_AUTO = 0, MODE_CLBLAST = 1, MODE_OWN = 2 };

static int gemm_mode(void) {
  const char *e = getenv("WRN_GEMM");
  if (!e || !*e || !strcmp(e, "auto")) return MODE_AUTO;
  if (!strcmp(e, "clblast")) return MODE_CLBLAST;
  if (!strcmp(e, "own")) return MODE_OWN;
  return -1;
}

static wrn_status run_clblast(wrn_ctx *ctx, cl_event *ev, int ta, int tb, size_t m, size_t n,
                              size_t k, double alpha, wrn_mem a, size_t lda, wrn_mem b,
                              size_t ldb, double beta, wrn_mem c, size_t ldc) {
  const CLBlastTranspose tra = ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose trb = tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  if (ctx->dtype == WRN_F64)
    WRN_CLBLAST_CHECK(CLBlastDgemm(CLBlastLayoutRowMajor, tra, trb, m, n, k, alpha, a.mem, a.off,
                                   lda, b.mem, b.off, ldb, beta, c.mem, c.off, ldc, &ctx->queue,
                                   ev));
  else
    WRN_CLBLAST_CHECK(CLBlastSgemm(CLBlastLayoutRowMajor, tra, trb, m, n, k, (float)alpha,
                                   a.mem, a.off, lda, b.mem, b.off, ldb, (float)beta, c.mem,
                                   c.off, ldc, &ctx->queue, ev));
  return WRN_OK;
}

/* Power of two >= x, capped. */
static size_t pow2_cap(size_t x, size_t cap) {
  size_t p = 1;
  while (p < x && p < cap) p *= 2;
  return p;
}

static wrn_status run_own(wrn_ctx *ctx, wrn_op_cat cat, int form, size_t m, size_t n,
                          size_t k, double alpha, wrn_mem a, size_t lda, wrn_mem b, size_t ldb,
                          double beta, wrn_mem c, size_t ldc) {
  static const wrn_kid ids[3] = {WRN_K_GEMM_NN, WRN_K_GEMM_TN, WRN_K_GEMM_NT};
  const gemm_tiles t = default_tiles(ctx);
  char defs[256];
  tiles_defs(&t, defs, sizeof defs);
  wrn_args kr;
  WRN_TRY(wrn_kernel_variant_args(ctx, ids[form], defs, &kr));
  wrn_arg_int(&kr, (cl_int)m);
  wrn_arg_int(&kr, (cl_int)n);
  wrn_arg_int(&kr, (cl_int)k);
  wrn_arg_real(&kr, alpha);
  wrn_arg_mem(&kr, a);
  wrn_arg_int(&kr, (cl_int)lda);
  wrn_arg_mem(&kr, b);
  wrn_arg_int(&kr, (cl_int)ldb);
  wrn_arg_real(&kr, beta);
  wrn_arg_mem(&kr, c);
  wrn_arg_int(&kr, (cl_int)ldc);
  size_t tiles_n, tiles_m;
  if (form == FORM_NT) {
    tiles_n = (n + (size_t)t.nt_tj - 1) / (size_t)t.nt_tj;
    tiles_m = (m + (size_t)(t.nt_tm * t.nt_gm) - 1) / (size_t)(t.nt_tm * t.nt_gm);
  } else {
    const size_t cols = (size_t)t.tnv * (size_t)t.vw;
    tiles_n = (n + cols - 1) / cols;
    tiles_m = (m + (size_t)t.tm - 1) / (size_t)t.tm;
  }
  /* Small groups: each work-item already does a lot of work, and many groups keep every
   * core (or compute unit) busy on the small GEMMs of 8x8 maps. NN/TN kernels take M tiles
   * along dimension 0 (consecutive work-items share B's panel), NT kernels N tiles (they
   * share A's rows). */
  const size_t t0 = form == FORM_NT ? tiles_n : tiles_m, t1 = form == FORM_NT ? tiles_m : tiles_n;
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
  while (((t0 + l0 - 1) / l0) * ((t1 + l1 - 1) / l1) < 16 && l0 * l1 > 1) {
    if (l1 > 1) l1 /= 2;
    else l0 /= 2;
  }
  size_t lws[2] = {l0, l1};
  size_t gws[2] = {wrn_round_up(t0, l0), wrn_round_up(t1, l1)};
  return wrn_launch(&kr, 2, gws, lws, cat, 2.0 * (double)m * (double)n * (double)k);
}

/* Times both paths on this shape (writing into scratch with beta 0, so the caller's C is
 * untouched and the scratch is never read) and returns 1 when ours is faster. */
static wrn_status choose(wrn_ctx *ctx, int form, int ta, int tb, size_t m, size_t n, size_t k,
                         wrn_mem a, size_t lda, wrn_mem b, size_t ldb, size_t ldc, int *own) {
  const size_t elems = (m - 1) * ldc + n;
  cl_int err;
  cl_mem scratch = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, elems * ctx->real_size, NULL, &err);
  WRN_CL_CHECK(err);
  const int prof = ctx->profile;
  ctx->profile = 0; /* the trial runs stay out of the profile */
  wrn_mem s = {scratch, 0};
  double best[2] = {1e300, 1e300};
  int own_failed = 0;
  wrn_status st = WRN_OK;
  for (int rep = 0; rep < 3 && st == WRN_OK; rep++) {
    for (int path = 0; path < 2 && st == WRN_OK; path++) {
      cl_int e = clFinish(ctx->queue);
      if (e != CL_SUCCESS) {
        st = wrn_cl_fail(e, "clFinish", WRN_WHERE);
        break;
      }
      const double t0 = wrn_seconds();
      if (path == 1 && own_failed) continue;
      st = path ? run_own(ctx, WRN_CAT_OTHER, form, m, n, k, 1.0, a, lda, b, ldb, 0.0, s, ldc)
                : run_clblast(ctx, NULL, ta, tb, m, n, k, 1.0, a, lda, b, ldb, 0.0, s, ldc);
      e = clFinish(ctx->queue);
      if (st == WRN_OK && e != CL_SUCCESS) st = wrn_cl_fail(e, "clFinish", WRN_WHERE);
      const double dt = wrn_seconds() - t0;
      if (path == 1 && st != WRN_OK) {
        /* Our kernel cannot run here (resources, say): CLBlast it is. A failed enqueue
         * leaves the queue usable; anything worse shows up in the next clFinish. */
        own_failed = 1;
        st = WRN_OK;
        continue;
      }
      /* The first round compiles and warms caches; it does not count. */
      if (rep > 0 && dt < best[path]) best[path] = dt;
    }
  }
  ctx->profile = prof;
  clReleaseMemObject(scratch);
  *own = !own_failed && best[1] < best[0];
  if (getenv("WRN_GEMM_VERBOSE"))
    fprintf(stderr, "wrn_gemm: form %d m=%zu n=%zu k=%zu: clblast %.3f ms (%.1f GFLOP/s), "
                    "own %.3f ms (%.1f GFLOP/s) -> %s\n",
            form, m, n, k, best[0] * 1e3, 2e-9 * (double)m * (double)n * (double)k / best[0],
            best[1] * 1e3, 2e-9 * (double)m * (double)n * (double)k / best[1],
            *own ? "own" : "clblast");
  return st;
}

wrn_status wrn_gemm(wrn_ctx *ctx, wrn_op_cat cat, int trans_a, int trans_b, size_t m, size_t n,
                    size_t k, double alpha, wrn_mem a, size_t lda, wrn_mem b, size_t ldb,
                    double beta, wrn_mem c, size_t ldc) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: NULL context");
  if (!a.mem || !b.mem || !c.mem)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gemm: NULL buffer (%s)",
                    !a.mem ? "a" : !b.mem ? "b" : "c");
  if (m == 0 || n == 0 || k == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "gemm: sizes must be positive (m=%zu n=%zu k=%zu)", m, n, k);
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
  int own = 0;
  if (form != FORM_TT) { /* the conv and linear layers never ask for A^T B^T */
    if (mode == MODE_OWN) own = 1;
    else if (mode == MODE_AUTO) {
      int found = 0;
      for (int i = 0; i < ctx->ngemm_choice; i++) {
        const struct wrn_gemm_choice *ch = &ctx->gemm_choice[i];
        if (ch->form == form && ch->m == m && ch->n == n && ch->k == k) {
          own = ch->own;
          found = 1;
          break;
        }
      }
      if (!found) {
        WRN_TRY(choose(ctx, form, trans_a, trans_b, m, n, k, a, lda, b, ldb, ldc, &own));
        const int cap = (int)(sizeof ctx->gemm_choice / sizeof ctx->gemm_choice[0]);
        if (ctx->ngemm_choice < cap) {
          struct wrn_gemm_choice *ch = &ctx->gemm_choice[ctx->ngemm_choice++];
          ch->form = form;
          ch->m = m;
          ch->n = n;
          ch->k = k;
          ch->own = own;
        }
      }
    }
  }
  if (own) return run_own(ctx, cat, form, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  cl_event *ev = wrn_event_slot_span(ctx, cat, 2.0 * (double)m * (double)n * (double)k);
  return run_clblast(ctx, ev, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
