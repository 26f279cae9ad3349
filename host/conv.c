/* Convolution: shape checks, the algorithm table, choices as text, and dispatch through the
 * tuner (wrn.h, conv_internal.h). */
#include "conv_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- shapes */

/* NULL when the shape is usable, else what is wrong with it (for messages). */
static const char *shape_problem(const wrn_conv_shape *s, char *buf, size_t n) {
  if (!s) return "NULL shape";
  if (s->n <= 0 || s->c_in <= 0 || s->h <= 0 || s->w <= 0 || s->c_out <= 0) {
    snprintf(buf, n, "sizes must be positive (n=%d c_in=%d h=%d w=%d c_out=%d)", s->n, s->c_in,
             s->h, s->w, s->c_out);
    return buf;
  }
  if (s->k <= 0 || s->stride <= 0 || s->pad < 0) {
    snprintf(buf, n, "kernel %d, stride %d and pad %d must be > 0, > 0 and >= 0", s->k,
             s->stride, s->pad);
    return buf;
  }
  long long ph = (long long)s->h + 2LL * s->pad, pw = (long long)s->w + 2LL * s->pad;
  if (ph < s->k || pw < s->k) {
    snprintf(buf, n, "kernel %d is larger than the padded input %lldx%lld (output < 1)", s->k,
             ph, pw);
    return buf;
  }
  /* The kernels index planes, pixels and GEMM rows with int. */
  long long ho = (ph - s->k) / s->stride + 1, wo = (pw - s->k) / s->stride + 1;
  long long K = (long long)s->c_in * s->k * s->k;
  if (ph > INT_MAX || pw > INT_MAX || K > INT_MAX || (long long)s->h * s->w > INT_MAX ||
      ho * wo > INT_MAX || (long long)s->n * s->c_in > INT_MAX ||
      (long long)s->n * s->c_out > INT_MAX || (long long)s->c_out * K > INT_MAX ||
      (long long)s->n * ho * wo > INT_MAX || (long long)s->n * s->h * s->w > INT_MAX) {
    snprintf(buf, n, "sizes too large (n=%d c_in=%d h=%d w=%d c_out=%d k=%d)", s->n, s->c_in,
             s->h, s->w, s->c_out, s->k);
    return buf;
  }
  return NULL;
}

int wrn_conv_out_h(const wrn_conv_shape *s) {
  char buf[160];
  if (shape_problem(s, buf, sizeof buf)) return -1;
  return conv_ho(s);
}

int wrn_conv_out_w(const wrn_conv_shape *s) {
  char buf[160];
  if (shape_problem(s, buf, sizeof buf)) return -1;
  return conv_wo(s);
}

wrn_status wrn_conv_check(const wrn_conv_shape *s) {
  char buf[160];
  const char *p = shape_problem(s, buf, sizeof buf);
  if (p) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv: invalid shape: %s", p);
  return WRN_OK;
}

const char *wrn_conv_pass_name(wrn_conv_pass pass) {
  switch (pass) {
  case WRN_CONV_FORWARD: return "forward";
  case WRN_CONV_BACKWARD_DATA: return "backward-data";
  case WRN_CONV_BACKWARD_WEIGHT: return "backward-weight";
  }
  return "?";
}

double conv_flops(const wrn_conv_shape *s) {
  return 2.0 * (double)s->n * s->c_out * conv_ho(s) * conv_wo(s) * (double)s->c_in * s->k * s->k;
}

int conv_chunk(const wrn_conv_shape *s, size_t per_image, size_t fixed, size_t max_ws) {
  if (max_ws == 0) return s->n;
  if (fixed > max_ws) return 0;
  if (per_image == 0) return s->n;
  size_t nb = (max_ws - fixed) / per_image;
  return nb >= (size_t)s->n ? s->n : (int)nb;
}

/* ---------------------------------------------------------------- the table */

static const conv_algo *const algos[] = {&wrn_conv_algo_im2col,    &wrn_conv_algo_implicit,
                                         &wrn_conv_algo_splitk,    &wrn_conv_algo_winograd2,
                                         &wrn_conv_algo_winograd4, &wrn_conv_algo_fft,
                                         &wrn_conv_algo_direct};
#define NALGOS ((int)(sizeof algos / sizeof algos[0]))

int wrn_conv_algo_count(void) { return NALGOS; }
const char *wrn_conv_algo_name(int i) { return i >= 0 && i < NALGOS ? algos[i]->name : NULL; }

int conv_param(const conv_params *p, const char *key, int def) {
  for (int i = 0; p && i < p->n; i++)
    if (!strcmp(p->key[i], key)) return p->val[i];
  return def;
}

conv_params *conv_param_set(conv_params *p, const char *key, int val) {
  for (int i = 0; i < p->n; i++)
    if (!strcmp(p->key[i], key)) {
      p->val[i] = val;
      return p;
    }
  if (p->n < CONV_MAX_PARAMS && strlen(key) < sizeof p->key[0]) {
    snprintf(p->key[p->n], sizeof p->key[0], "%s", key);
    p->val[p->n++] = val;
  }
  return p;
}

/* "name" or "name:K=V,K=V" -> the algorithm and its parameters; NULL when malformed. */
static const conv_algo *parse_choice(const char *text, conv_params *p) {
  memset(p, 0, sizeof *p);
  if (!text) return NULL;
  size_t nl = strcspn(text, ":");
  const conv_algo *a = NULL;
  for (int i = 0; i < NALGOS && !a; i++)
    if (strlen(algos[i]->name) == nl && !strncmp(algos[i]->name, text, nl)) a = algos[i];
  if (!a) return NULL;
  const char *q = text + nl;
  if (*q == '\0') return a;
  if (*++q == '\0') return NULL; /* "name:" with nothing after it */
  while (*q) {
    size_t kl = strcspn(q, "=,");
    if (kl == 0 || kl >= sizeof p->key[0] || q[kl] != '=' || p->n == CONV_MAX_PARAMS) return NULL;
    char key[sizeof p->key[0]];
    memcpy(key, q, kl);
    key[kl] = '\0';
    for (size_t i = 0; i < kl; i++)
      if (!((key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= '0' && key[i] <= '9') || key[i] == '_'))
        return NULL;
    q += kl + 1;
    char *end;
    long v = strtol(q, &end, 10);
    if (end == q || v < 0 || v > 1 << 20 || (*end != ',' && *end != '\0')) return NULL;
    conv_param_set(p, key, (int)v);
    q = *end == ',' ? end + 1 : end;
    if (*end == ',' && *q == '\0') return NULL;
  }
  return a;
}

/* The text form of (algorithm, parameters); parameters in the order they were set. */
static void format_choice(const conv_algo *a, const conv_params *p, char *out, size_t n) {
  size_t len = (size_t)snprintf(out, n, "%s", a->name);
  for (int i = 0; i < p->n && len < n; i++)
    len += (size_t)snprintf(out + len, n - len, "%s%s=%d", i ? "," : ":", p->key[i], p->val[i]);
}

int wrn_conv_algo_variants(wrn_ctx *ctx, int i, const wrn_conv_shape *s, wrn_conv_pass pass,
                           char (*out)[WRN_CONV_CHOICE_MAX], int max) {
  char buf[160];
  if (!ctx || i < 0 || i >= NALGOS || shape_problem(s, buf, sizeof buf) || (int)pass < 0 ||
      pass >= WRN_CONV_PASSES)
    return 0;
  conv_params c[16];
  int m = algos[i]->candidates(ctx, s, pass, c, 16), n = 0;
  for (int j = 0; j < m && n < max; j++)
    if (algos[i]->supports(ctx, s, pass, &c[j])) format_choice(algos[i], &c[j], out[n++], WRN_CONV_CHOICE_MAX);
  return n;
}

wrn_status wrn_conv_choice_check(const char *choice) {
  conv_params p;
  if (!parse_choice(choice, &p))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "'%s' is not a convolution algorithm choice: give one of im2col, "
                    "implicit, splitk, winograd2, winograd4, fft, direct, optionally with "
                    ":KEY=V,... parameters (or auto)",
                    choice ? choice : "(null)");
  return WRN_OK;
}

static int is_auto(const char *algo) { return !algo || !algo[0] || !strcmp(algo, "auto"); }

int wrn_conv_algo_supports(wrn_ctx *ctx, const char *algo, const wrn_conv_shape *s,
                           wrn_conv_pass pass) {
  char buf[160];
  if (!ctx || shape_problem(s, buf, sizeof buf) || (int)pass < 0 || pass >= WRN_CONV_PASSES)
    return 0;
  conv_params p;
  const conv_algo *a = parse_choice(algo, &p);
  return a && a->supports(ctx, s, pass, &p);
}

size_t wrn_conv_algo_workspace(wrn_ctx *ctx, const char *algo, const wrn_conv_shape *s,
                               wrn_conv_pass pass, size_t max_ws_elems) {
  conv_params p;
  const conv_algo *a = parse_choice(algo, &p);
  if (!a || !wrn_conv_algo_supports(ctx, algo, s, pass)) return (size_t)-1;
  return a->workspace(ctx, s, pass, &p, max_ws_elems);
}

/* ---------------------------------------------------------------- the tuner */

/* Key of a (shape, pass, bound) in the tuner's store; the store itself is per device. */
/* A stored choice was the fastest of the table as it was then: the key carries a hash of the
 * table's names, so adding an algorithm measures again instead of replaying the old winner. */
static unsigned table_tag(void) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < NALGOS; i++) h = wrn_hash64(h, algos[i]->name, strlen(algos[i]->name) + 1);
  return (unsigned)(h ^ (h >> 32)) & 0xffffu;
}

static void tune_key(const wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                     size_t max_ws, char *out, size_t n) {
  snprintf(out, n, "conv %s n%d c%d h%d w%d o%d k%d s%d p%d ws%zu %s t%04x",
           ctx->dtype == WRN_F64 ? "f64" : "f32", s->n, s->c_in, s->h, s->w, s->c_out, s->k,
           s->stride, s->pad, max_ws, wrn_conv_pass_name(pass), table_tag());
}

/* Scratch operands for timing one (shape, pass). */
typedef struct trial {
  cl_mem out, a, b, ws;
  size_t ws_elems;
} trial;

static void trial_free(wrn_ctx *ctx, trial *t) {
  wrn_free_mem(ctx, &t->out);
  wrn_free_mem(ctx, &t->a);
  wrn_free_mem(ctx, &t->b);
  wrn_free_mem(ctx, &t->ws);
}

static wrn_status trial_alloc(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                              size_t ws_elems, trial *t) {
  memset(t, 0, sizeof *t);
  const size_t nx = (size_t)s->n * s->c_in * s->h * s->w;
  const size_t ny = (size_t)s->n * s->c_out * conv_ho(s) * conv_wo(s);
  const size_t nw = (size_t)s->c_out * s->c_in * s->k * s->k;
  size_t no = pass == WRN_CONV_FORWARD ? ny : pass == WRN_CONV_BACKWARD_DATA ? nx : nw;
  size_t na = pass == WRN_CONV_FORWARD ? nx : ny;
  size_t nb = pass == WRN_CONV_BACKWARD_WEIGHT ? nx : nw;
  const size_t rs = ctx->real_size;
  wrn_status st = wrn_alloc(ctx, no * rs, "a tuner trial's output", &t->out);
  if (st == WRN_OK) st = wrn_alloc(ctx, na * rs, "a tuner trial's input", &t->a);
  if (st == WRN_OK) st = wrn_alloc(ctx, nb * rs, "a tuner trial's input", &t->b);
  if (st == WRN_OK && ws_elems) st = wrn_alloc(ctx, ws_elems * rs, "a tuner trial's workspace", &t->ws);
  /* Small values: no overflow, no denormals, the same speed as real data. */
  if (st == WRN_OK) st = wrn_fill(ctx, (wrn_mem){t->a, 0}, 0.25, na);
  if (st == WRN_OK) st = wrn_fill(ctx, (wrn_mem){t->b, 0}, 0.5, nb);
  if (st == WRN_OK) st = wrn_ctx_finish(ctx);
  t->ws_elems = ws_elems;
  if (st != WRN_OK) trial_free(ctx, t);
  return st;
}

/* Seconds of the fastest of `reps` runs after one untimed run; a negative value when the
 * choice fails to run here (resources, say), which the tuner then skips. */
static double trial_time(wrn_ctx *ctx, const conv_algo *a, const conv_params *p,
                         const wrn_conv_shape *s, wrn_conv_pass pass, const trial *t, int reps,
                         double give_up) {
  wrn_conv_io io = {{t->out, 0}, {t->a, 0}, {t->b, 0}, {NULL, 0}, 0, {t->ws, 0}, t->ws_elems};
  double best = -1;
  for (int r = 0; r <= reps; r++) {
    double t0 = wrn_seconds();
    if (a->run(ctx, s, pass, &io, p) != WRN_OK || wrn_ctx_finish(ctx) != WRN_OK) {
      wrn_clear_error();
      return -1;
    }
    double dt = wrn_seconds() - t0;
    if (r > 0 && (best < 0 || dt < best)) best = dt;
    /* Far slower than the best so far: one timed run says enough. */
    if (r > 0 && give_up > 0 && dt > 1.5 * give_up) break;
  }
  return best;
}

wrn_status wrn_conv_choose(wrn_ctx *ctx, const wrn_conv_shape *s, wrn_conv_pass pass,
                           size_t max_ws_elems, char *out, size_t n, int *measured) {
  if (measured) *measured = 0;
  if (!ctx || !out || n == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choose: NULL argument");
  WRN_TRY(wrn_conv_check(s));
  if ((int)pass < 0 || pass >= WRN_CONV_PASSES)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choose: no pass %d", (int)pass);
  conv_params p;
  const char *forced = getenv("WRN_CONV_ALGO");
  if (forced && !is_auto(forced)) {
    if (!parse_choice(forced, &p))
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                      "WRN_CONV_ALGO=%s is not an algorithm (im2col, implicit, splitk, "
                      "winograd2, winograd4, fft, direct, or auto), optionally with :KEY=V,... "
                      "parameters",
                      forced);
    const char *pick = wrn_conv_algo_workspace(ctx, forced, s, pass, max_ws_elems) != (size_t)-1
                           ? forced
                           : "im2col";
    if (strlen(pick) >= n)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choose: buffer of %zu bytes too small", n);
    snprintf(out, n, "%s", pick);
    return WRN_OK;
  }
  char key[256];
  tune_key(ctx, s, pass, max_ws_elems, key, sizeof key);
  char found[WRN_CONV_CHOICE_MAX];
  int hit = 0;
  WRN_TRY(wrn_tune_lookup(ctx, key, found, sizeof found, &hit));
  /* A stored choice is used only while it still parses and fits (the table may change). */
  if (hit && wrn_conv_algo_workspace(ctx, found, s, pass, max_ws_elems) != (size_t)-1) {
    if (strlen(found) >= n)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choose: buffer of %zu bytes too small", n);
    snprintf(out, n, "%s", found);
    return WRN_OK;
  }

  /* Measure: every supported algorithm with each of its candidate parameter sets. */
  enum { MAXC = 12 };
  const conv_algo *ca[NALGOS * MAXC];
  conv_params cp[NALGOS * MAXC];
  size_t need[NALGOS * MAXC], ws_max = 0;
  int nc = 0;
  for (int i = 0; i < NALGOS; i++) {
    conv_params tmp[MAXC];
    int m = algos[i]->candidates(ctx, s, pass, tmp, MAXC);
    for (int j = 0; j < m; j++) {
      if (!algos[i]->supports(ctx, s, pass, &tmp[j])) continue;
      size_t w = algos[i]->workspace(ctx, s, pass, &tmp[j], max_ws_elems);
      if (w == (size_t)-1) continue;
      ca[nc] = algos[i];
      cp[nc] = tmp[j];
      need[nc] = w;
      if (w > ws_max) ws_max = w;
      nc++;
    }
  }
  if (nc == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "conv_choose: no algorithm fits a workspace of %zu elements for this "
                    "shape (n=%d c_in=%d %dx%d c_out=%d k=%d)",
                    max_ws_elems, s->n, s->c_in, s->h, s->w, s->c_out, s->k);
  trial t;
  WRN_TRY(trial_alloc(ctx, s, pass, ws_max, &t));
  const int prof = ctx->profile;
  ctx->profile = 0; /* the trial runs stay out of the profile */
  double best = -1;
  int bi = -1;
  for (int i = 0; i < nc; i++) {
    /* The fastest of four timed runs: on a shared machine single runs of the same kernel
     * vary by 30-50%, more than the gaps between the candidates. */
    double dt = trial_time(ctx, ca[i], &cp[i], s, pass, &t, 4, best);
    if (getenv("WRN_TUNE_VERBOSE")) {
      char txt[WRN_TUNE_VALUE_MAX];
      format_choice(ca[i], &cp[i], txt, sizeof txt);
      fprintf(stderr, "wrn tune: %s: %s %.3f ms (%.1f GFLOP/s) ws %.1f MiB\n", key, txt,
              dt * 1e3, dt > 0 ? conv_flops(s) / dt * 1e-9 : 0.0,
              (double)need[i] * ctx->real_size / 1048576.0);
    }
    if (dt > 0 && (best < 0 || dt < best)) best = dt, bi = i;
  }
  ctx->profile = prof;
  trial_free(ctx, &t);
  /* Nothing ran (every candidate failed): im2col is always there. */
  char txt[WRN_TUNE_VALUE_MAX] = "im2col";
  if (bi >= 0) format_choice(ca[bi], &cp[bi], txt, sizeof txt);
  WRN_TRY(wrn_tune_store(ctx, key, txt, best * 1e3));
  if (strlen(txt) >= n)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choose: buffer of %zu bytes too small", n);
  snprintf(out, n, "%s", txt);
  if (measured) *measured = 1;
  return WRN_OK;
}

/* ---------------------------------------------------------------- running */

static wrn_status check_io(const char *fn, wrn_ctx *ctx, const wrn_conv_shape *s,
                           wrn_conv_pass pass, const wrn_conv_io *io) {
  if (!ctx || !io) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL argument", fn);
  char buf[160];
  const char *p = shape_problem(s, buf, sizeof buf);
  if (p) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: invalid shape: %s", fn, p);
  if ((int)pass < 0 || pass >= WRN_CONV_PASSES)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: no pass %d", fn, (int)pass);
  static const char *names[3][3] = {
      {"y", "x", "w"}, {"dx", "dy", "w"}, {"dw", "dy", "x"}};
  const wrn_mem m[3] = {io->out, io->a, io->b};
  for (int i = 0; i < 3; i++)
    if (!m[i].mem)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: NULL buffer (%s)", fn, names[pass][i]);
  if (io->add.mem && pass != WRN_CONV_FORWARD)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: add is for the forward pass only", fn);
  if (io->accumulate != 0 && io->accumulate != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "%s: accumulate must be 0 or 1, got %d", fn,
                    io->accumulate);
  return WRN_OK;
}

wrn_status wrn_conv_run(wrn_ctx *ctx, const char *algo, wrn_conv_pass pass,
                        const wrn_conv_shape *s, const wrn_conv_io *io) {
  static const char *fn = "conv_run";
  WRN_TRY(check_io(fn, ctx, s, pass, io));
  char chosen[WRN_TUNE_VALUE_MAX];
  if (is_auto(algo)) {
    WRN_TRY(wrn_conv_choose(ctx, s, pass, io->ws.mem ? io->ws_elems : 0, chosen, sizeof chosen,
                            NULL));
    algo = chosen;
  }
  conv_params p;
  const conv_algo *a = parse_choice(algo, &p);
  if (!a)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: '%s' is not an algorithm choice (name or name:KEY=V,...)", fn, algo);
  if (!a->supports(ctx, s, pass, &p))
    return wrn_fail(WRN_STATUS_UNSUPPORTED,
                    "%s: %s does not support the %s pass of this shape (c_in=%d %dx%d "
                    "c_out=%d k=%d stride=%d pad=%d) on '%s'",
                    fn, algo, wrn_conv_pass_name(pass), s->c_in, s->h, s->w, s->c_out, s->k,
                    s->stride, s->pad, ctx->dev.name);
  /* Without a buffer the bound is one element: only a run that needs none fits. */
  size_t need = a->workspace(ctx, s, pass, &p, io->ws.mem && io->ws_elems ? io->ws_elems : 1);
  if (need == (size_t)-1 || (need > 0 && (!io->ws.mem || need > io->ws_elems)))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "%s: workspace of %zu elements%s is too small for %s on this shape "
                    "(c_in=%d %dx%d, c_out=%d, k=%d, stride=%d); size it with "
                    "wrn_conv_algo_workspace",
                    fn, io->ws.mem ? io->ws_elems : (size_t)0, io->ws.mem ? "" : " (NULL buffer)",
                    algo, s->c_in, s->h, s->w, s->c_out, s->k, s->stride);
  return a->run(ctx, s, pass, io, &p);
}

/* ---------------------------------------------------------------- fixed-algorithm wrappers */

static wrn_status run_im2col(wrn_ctx *ctx, wrn_conv_pass pass, wrn_mem out, wrn_mem a,
                             wrn_mem b, const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                             int accumulate) {
  wrn_conv_io io = {out, a, b, {NULL, 0}, accumulate, ws, ws_elems};
  return wrn_conv_run(ctx, "im2col", pass, s, &io);
}

wrn_status wrn_conv_forward(wrn_ctx *ctx, wrn_mem y, wrn_mem x, wrn_mem w,
                            const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems) {
  return run_im2col(ctx, WRN_CONV_FORWARD, y, x, w, s, ws, ws_elems, 0);
}
wrn_status wrn_conv_backward_data(wrn_ctx *ctx, wrn_mem dx, wrn_mem dy, wrn_mem w,
                                  const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                                  int accumulate) {
  return run_im2col(ctx, WRN_CONV_BACKWARD_DATA, dx, dy, w, s, ws, ws_elems, accumulate);
}
wrn_status wrn_conv_backward_weight(wrn_ctx *ctx, wrn_mem dw, wrn_mem dy, wrn_mem x,
                                    const wrn_conv_shape *s, wrn_mem ws, size_t ws_elems,
                                    int accumulate) {
  return run_im2col(ctx, WRN_CONV_BACKWARD_WEIGHT, dw, dy, x, s, ws, ws_elems, accumulate);
}
