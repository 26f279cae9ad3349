/* The layer scheduler (wrn_net.h): layers over numbered tensors, a liveness-planned arena,
 * flat parameter buffers, and the forward / loss / backward / update sequence. */
#include "wrn_net.h"

#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYER_PARAMS 2
#define ARENA_ALIGN 64 /* elements; keeps every tensor 256-byte aligned in float */

typedef struct tensor {
  int c, h, w;
  size_t per_image; /* c*h*w */
  int producer;     /* layer index, -1 for the input, -2 never computed (fused away) */
  int needs_grad;
  /* liveness (times in the step's op sequence) and placement, in elements */
  int v_def, v_end, g_def, g_end;
  size_t v_off, g_off;
} tensor;

typedef struct layer layer;

/* A layer kind is a small table of functions; private state lives in the layer's fields
 * that the kind uses. */
typedef struct layer_ops {
  wrn_status (*forward)(wrn_net *net, layer *l, int train, uint64_t seed, uint64_t step);
  /* acc_in[j]: whether input j's gradient already holds a value to add to. */
  wrn_status (*backward)(wrn_net *net, layer *l, const int *acc_in);
  int saves_input, saves_output; /* backward reads the forward input / output */
} layer_ops;

struct layer {
  wrn_layer_kind kind;
  const layer_ops *ops;
  char name[96];
  int in[2], nin, out;
  int k, stride, pad, relu;
  double p;
  int param[MAX_LAYER_PARAMS], nparam; /* indices into net->params */
  int buf[2], nbuf;                    /* indices into net->bufs */
  size_t save_off;                     /* BN: saved mean / invstd in net->saved */
  wrn_conv_shape cs;
  int add_in; /* conv: a tensor its forward adds to the result (a fused residual add), or -1 */
  char algo[WRN_CONV_PASSES][WRN_CONV_CHOICE_MAX]; /* conv: the choice per pass ("" unused) */
  wrn_pool_shape ps;
};

struct wrn_net {
  wrn_ctx *ctx;
  wrn_net_options opt;
  int batch;
  tensor *t;
  int nt, capt;
  layer *l;
  int nl, capl;
  wrn_param_info *params, *bufs;
  int np, capp, nb, capb;
  size_t nparams, nbufs, nsaved;
  int planned, finalized;
  int input;
  /* device memory */
  cl_mem *arenas; /* the activation arena in arena_count() buffers of arena_cap elements
                     (the last shorter); NULL until finalize */
  cl_mem pbuf, gbuf, mbuf, bbuf, saved, ws, img_u8[2], labels, loss, correct;
  size_t arena_elems, arena_cap, naive_elems, ws_elems;
  int slot;
  uint64_t dropout_seed, dropout_step; /* of the last forward, for backward */
  int err; /* a builder call failed; finalize refuses */
  char *replay;  /* conv choices to use instead of asking the tuner (wrn_net_set_conv_choices) */
  int measured;  /* finalize timed a convolution choice (the warm-up then has work to do) */
  int ghost;     /* BN groups in training (>= 1) */
  size_t first;  /* the batch's first sample in its global batch (dropout keys) */
  wrn_net_grad_hook grad_hook;
  void *grad_user;
};

static wrn_mem M(cl_mem m, size_t off) {
  wrn_mem r = {m, off};
  return r;
}
/* A tensor's place in the arena: the buffer its offset falls in (the planner keeps every
 * tensor inside one) and the offset within it. */
static wrn_mem A(wrn_net *n, size_t off) {
  return M(n->arenas[off / n->arena_cap], off % n->arena_cap);
}
static wrn_mem V(wrn_net *n, int t) { return A(n, n->t[t].v_off); }
/* How many buffers of cap elements the arena takes (at least one). */
static int arena_count(const wrn_net *n) {
  return n->arena_elems > n->arena_cap ? (int)((n->arena_elems - 1) / n->arena_cap + 1) : 1;
}
/* Whether [off, off + len) crosses the end of one of the arena's buffers of cap elements. */
static int crosses_cut(size_t off, size_t len, size_t cap) {
  return len && off / cap != (off + len - 1) / cap;
}
static wrn_mem G(wrn_net *n, int t) { return A(n, n->t[t].g_off); }
static wrn_mem P(wrn_net *n, int p) { return M(n->pbuf, n->params[p].offset); }
static wrn_mem PG(wrn_net *n, int p) { return M(n->gbuf, n->params[p].offset); }
static wrn_mem B(wrn_net *n, int b) { return M(n->bbuf, n->bufs[b].offset); }

void wrn_net_options_default(wrn_net_options *o) {
  memset(o, 0, sizeof *o);
  o->bn_momentum = 0.1;
  o->bn_eps = 1e-5;
}

wrn_status wrn_net_create(wrn_net **out, wrn_ctx *ctx, int batch, const wrn_net_options *o) {
  if (!out) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_net_create: NULL argument");
  if (batch < 1) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "batch size %d must be >= 1", batch);
  wrn_net *n = calloc(1, sizeof *n);
  if (!n) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  n->ctx = ctx;
  n->batch = batch;
  n->input = -1;
  if (o) n->opt = *o;
  else wrn_net_options_default(&n->opt);
  n->ghost = n->opt.bn_ghost > 1 ? n->opt.bn_ghost : 1;
  if (batch % n->ghost) {
    const int g = n->ghost;
    free(n);
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "batch size %d is not a multiple of the %d "
                    "batch-norm groups", batch, g);
  }
  *out = n;
  return WRN_OK;
}

void wrn_net_free(wrn_net *n) {
  if (!n) return;
  if (n->ctx && n->finalized) clFinish(wrn_ctx_queue(n->ctx));
  for (int i = 0; n->arenas && i < arena_count(n); i++)
    if (n->ctx) wrn_free_mem(n->ctx, &n->arenas[i]);
  free(n->arenas);
  cl_mem *ms[] = {&n->pbuf, &n->gbuf, &n->mbuf, &n->bbuf, &n->saved, &n->ws,
                  &n->img_u8[0], &n->img_u8[1], &n->labels, &n->loss, &n->correct};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
    if (n->ctx) wrn_free_mem(n->ctx, ms[i]);
  free(n->replay);
  free(n->t);
  free(n->l);
  free(n->params);
  free(n->bufs);
  free(n);
}

/* ---------------------------------------------------------------- building */

static int builder_fail(wrn_net *n, const char *fmt, const char *a, int v) {
  n->err = 1;
  wrn_fail(WRN_STATUS_INVALID_ARGUMENT, fmt, a, v);
  return -1;
}

static int new_tensor(wrn_net *n, int c, int h, int w, int producer) {
  if (c < 1 || h < 1 || w < 1) return builder_fail(n, "%s: tensor size must be positive (%d)", "net", c < 1 ? c : h < 1 ? h : w);
  if (n->nt == n->capt) {
    int cap = n->capt ? 2 * n->capt : 64;
    tensor *t = realloc(n->t, (size_t)cap * sizeof *t);
    if (!t) {
      n->err = 1;
      wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
      return -1;
    }
    n->t = t;
    n->capt = cap;
  }
  tensor *t = &n->t[n->nt];
  memset(t, 0, sizeof *t);
  t->c = c;
  t->h = h;
  t->w = w;
  t->per_image = (size_t)c * h * w;
  t->producer = producer;
  return n->nt++;
}

static layer *new_layer(wrn_net *n, wrn_layer_kind kind, const layer_ops *ops, const char *name) {
  if (n->planned) {
    builder_fail(n, "%s: the network is already planned (%d layers)", "net", n->nl);
    return NULL;
  }
  if (n->nl == n->capl) {
    int cap = n->capl ? 2 * n->capl : 64;
    layer *l = realloc(n->l, (size_t)cap * sizeof *l);
    if (!l) {
      n->err = 1;
      wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
      return NULL;
    }
    n->l = l;
    n->capl = cap;
  }
  layer *l = &n->l[n->nl];
  memset(l, 0, sizeof *l);
  l->kind = kind;
  l->ops = ops;
  l->out = -1;
  l->add_in = -1;
  snprintf(l->name, sizeof l->name, "%s", name ? name : "");
  return l;
}

static int add_named(wrn_param_info **arr, int *cnt, int *cap, size_t *total, const char *name,
                     const char *suffix, int ndim, const int *shape) {
  if (*cnt == *cap) {
    int nc = *cap ? 2 * *cap : 64;
    wrn_param_info *a = realloc(*arr, (size_t)nc * sizeof *a);
    if (!a) return -1;
    *arr = a;
    *cap = nc;
  }
  wrn_param_info *p = &(*arr)[*cnt];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s%s", name, suffix);
  p->ndim = ndim;
  p->count = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = shape[i];
    p->count *= (size_t)shape[i];
  }
  p->offset = *total;
  *total += wrn_round_up(p->count, 16); /* keep every parameter 64-byte aligned */
  return (*cnt)++;
}

static int check_in(wrn_net *n, int x, const char *what) {
  if (n->err) return 0;
  if (x < 0 || x >= n->nt) {
    builder_fail(n, "%s: input tensor %d does not exist", what, x);
    return 0;
  }
  return 1;
}

static const layer_ops conv_ops, bn_ops, dropout_ops, add_ops, add_relu_ops, avgpool_ops,
    maxpool_ops, linear_ops;

int wrn_net_input(wrn_net *n, int c, int h, int w) {
  if (n->input >= 0) return builder_fail(n, "%s: the network has an input already (%d)", "net", n->input);
  n->input = new_tensor(n, c, h, w, -1);
  return n->input;
}

int wrn_net_conv(wrn_net *n, const char *name, int x, int c_out, int k, int stride, int pad) {
  if (!check_in(n, x, "conv")) return -1;
  tensor *t = &n->t[x];
  wrn_conv_shape cs = {n->batch, t->c, t->h, t->w, c_out, k, stride, pad};
  if (wrn_conv_check(&cs) != WRN_OK) {
    n->err = 1;
    return -1;
  }
  layer *l = new_layer(n, WRN_LAYER_CONV, &conv_ops, name);
  if (!l) return -1;
  l->cs = cs;
  l->k = k, l->stride = stride, l->pad = pad;
  l->in[0] = x, l->nin = 1;
  int shape[4] = {c_out, t->c, k, k};
  l->param[0] = add_named(&n->params, &n->np, &n->capp, &n->nparams, name, "", 4, shape);
  l->nparam = 1;
  int idx = n->nl++;
  int y = new_tensor(n, c_out, wrn_conv_out_h(&cs), wrn_conv_out_w(&cs), idx);
  n->l[idx].out = y;
  return y;
}

int wrn_net_bn(wrn_net *n, const char *name, int x, int relu) {
  if (!check_in(n, x, "bn")) return -1;
  if (n->t[x].producer < 0)
    return builder_fail(n, "%s: batch norm needs a layer before it (tensor %d is the input)", "bn", x);
  layer *l = new_layer(n, WRN_LAYER_BN, &bn_ops, name);
  if (!l) return -1;
  tensor *t = &n->t[x];
  l->in[0] = x, l->nin = 1, l->relu = relu;
  int shape[1] = {t->c};
  l->param[0] = add_named(&n->params, &n->np, &n->capp, &n->nparams, name, ".weight", 1, shape);
  l->param[1] = add_named(&n->params, &n->np, &n->capp, &n->nparams, name, ".bias", 1, shape);
  l->nparam = 2;
  l->buf[0] = add_named(&n->bufs, &n->nb, &n->capb, &n->nbufs, name, ".running_mean", 1, shape);
  l->buf[1] = add_named(&n->bufs, &n->nb, &n->capb, &n->nbufs, name, ".running_var", 1, shape);
  l->nbuf = 2;
  l->save_off = n->nsaved;
  n->nsaved += 2 * wrn_round_up((size_t)t->c, 16) * (size_t)n->ghost;
  int idx = n->nl++;
  int y = new_tensor(n, t->c, t->h, t->w, idx);
  n->l[idx].out = y;
  return y;
}

int wrn_net_dropout(wrn_net *n, int x, double p) {
  if (!check_in(n, x, "dropout")) return -1;
  if (!(p >= 0 && p < 1)) return builder_fail(n, "%s: dropout probability must be in [0, 1) (%d%%)", "dropout", (int)(p * 100));
  layer *l = new_layer(n, WRN_LAYER_DROPOUT, &dropout_ops, "dropout");
  if (!l) return -1;
  l->in[0] = x, l->nin = 1, l->p = p;
  tensor *t = &n->t[x];
  int idx = n->nl++;
  int y = new_tensor(n, t->c, t->h, t->w, idx);
  n->l[idx].out = y;
  return y;
}

int wrn_net_add(wrn_net *n, int a, int b) {
  if (!check_in(n, a, "add") || !check_in(n, b, "add")) return -1;
  tensor *ta = &n->t[a], *tb = &n->t[b];
  if (ta->c != tb->c || ta->h != tb->h || ta->w != tb->w)
    return builder_fail(n, "%s: residual add of tensors with different shapes (channels %d)", "add", ta->c - tb->c);
  layer *l = new_layer(n, WRN_LAYER_ADD, &add_ops, "add");
  if (!l) return -1;
  l->in[0] = a, l->in[1] = b, l->nin = 2;
  int idx = n->nl++;
  int y = new_tensor(n, ta->c, ta->h, ta->w, idx);
  n->l[idx].out = y;
  return y;
}

int wrn_net_add_relu(wrn_net *n, int a, int b) {
  int y = wrn_net_add(n, a, b);
  if (y < 0) return -1;
  layer *l = &n->l[n->nl - 1];
  l->relu = 1;
  l->ops = &add_relu_ops;
  snprintf(l->name, sizeof l->name, "add+relu");
  return y;
}

int wrn_net_maxpool(wrn_net *n, int x, int k, int stride, int pad) {
  if (!check_in(n, x, "maxpool")) return -1;
  tensor *t = &n->t[x];
  wrn_pool_shape ps = {n->batch, t->c, t->h, t->w, k, stride, pad};
  if (k < 1 || stride < 1 || pad < 0 || pad >= k)
    return builder_fail(n, "%s: need k >= 1, stride >= 1 and 0 <= pad < k (k = %d)", "maxpool", k);
  int oh = wrn_pool_out_h(&ps), ow = wrn_pool_out_w(&ps);
  if (oh < 1 || ow < 1) return builder_fail(n, "%s: pooling window %d does not fit the input", "maxpool", k);
  layer *l = new_layer(n, WRN_LAYER_MAXPOOL, &maxpool_ops, "maxpool");
  if (!l) return -1;
  l->in[0] = x, l->nin = 1, l->ps = ps, l->k = k, l->stride = stride, l->pad = pad;
  int idx = n->nl++;
  int y = new_tensor(n, t->c, oh, ow, idx);
  n->l[idx].out = y;
  return y;
}

int wrn_net_avgpool(wrn_net *n, int x, int k, int stride, int pad) {
  if (!check_in(n, x, "avgpool")) return -1;
  tensor *t = &n->t[x];
  wrn_pool_shape ps = {n->batch, t->c, t->h, t->w, k, stride, pad};
  int oh = wrn_pool_out_h(&ps), ow = wrn_pool_out_w(&ps);
  if (oh < 1 || ow < 1) return builder_fail(n, "%s: pooling window %d does not fit the input", "avgpool", k);
  layer *l = new_layer(n, WRN_LAYER_AVGPOOL, &avgpool_ops, "avgpool");
  if (!l) return -1;
  l->in[0] = x, l->nin = 1, l->ps = ps, l->k = k, l->stride = stride, l->pad = pad;
  int idx = n->nl++;
  int y = new_tensor(n, t->c, oh, ow, idx);
  n->l[idx].out = y;
  return y;
}

int wrn_net_linear(wrn_net *n, const char *name, int x, int out) {
  if (!check_in(n, x, "linear")) return -1;
  if (out < 1) return builder_fail(n, "%s: output size %d must be >= 1", "linear", out);
  layer *l = new_layer(n, WRN_LAYER_LINEAR, &linear_ops, name);
  if (!l) return -1;
  tensor *t = &n->t[x];
  l->in[0] = x, l->nin = 1;
  int ws[2] = {out, (int)t->per_image}, bs[1] = {out};
  l->param[0] = add_named(&n->params, &n->np, &n->capp, &n->nparams, name, ".weight", 2, ws);
  l->param[1] = add_named(&n->params, &n->np, &n->capp, &n->nparams, name, ".bias", 1, bs);
  l->nparam = 2;
  int idx = n->nl++;
  int y = new_tensor(n, out, 1, 1, idx);
  n->l[idx].out = y;
  return y;
}

/* ---------------------------------------------------------------- planning */

static const layer_ops add_tail_ops;

/* The residual add y = a + b where a is made by a conv layer and read by nothing else: the
 * conv's forward adds b itself (wrn_conv_io.add) and writes y, so a is never stored and the
 * add's forward is gone; the add keeps only its backward to b (its other operand), and the
 * conv's backward reads y's gradient, which is a's. Of two conv operands the later one is
 * fused, so the other operand is ready when it runs. */
static void fuse_adds(wrn_net *n) {
  if (n->opt.no_fusion) return;
  for (int li = 0; li < n->nl; li++) {
    layer *l = &n->l[li];
    if (l->kind != WRN_LAYER_ADD || l->ops != &add_ops || l->nin != 2 || l->relu ||
        l->in[0] == l->in[1])
      continue;
    int best = -1;
    for (int j = 0; j < 2; j++) {
      const int a = l->in[j], c = n->t[a].producer;
      if (c < 0 || n->l[c].kind != WRN_LAYER_CONV || n->l[c].add_in >= 0) continue;
      int readers = 0;
      for (int k = 0; k < n->nl; k++)
        for (int q = 0; q < n->l[k].nin; q++) readers += n->l[k].in[q] == a;
      const int other = n->t[l->in[1 - j]].producer;
      if (readers == 1 && other < c && (best < 0 || c > n->t[l->in[best]].producer)) best = j;
    }
    if (best < 0) continue;
    const int a = l->in[best], b = l->in[1 - best], c = n->t[a].producer;
    layer *conv = &n->l[c];
    conv->add_in = b;
    conv->out = l->out;
    n->t[l->out].producer = c;
    n->t[a].producer = -2;
    l->ops = &add_tail_ops;
    l->in[0] = b;
    l->nin = 1;
  }
}

/* Times: forward of layer i at i; the loss at L; backward of layer i at 2L - i. */
static void liveness(wrn_net *n) {
  int L = n->nl;
  for (int i = 0; i < n->nt; i++) {
    tensor *t = &n->t[i];
    t->v_def = t->producer < 0 ? 0 : t->producer;
    t->v_end = t->v_def;
    t->needs_grad = 0;
    t->g_def = 1 << 30;
    t->g_end = -1;
  }
  /* Gradients flow into every tensor made by a layer (the input needs none). */
  for (int i = 0; i < n->nt; i++) n->t[i].needs_grad = n->t[i].producer >= 0;
  for (int li = 0; li < L; li++) {
    layer *l = &n->l[li];
    int tb = 2 * L - li;
    for (int j = 0; j < l->nin; j++) {
      tensor *t = &n->t[l->in[j]];
      if (li > t->v_end) t->v_end = li;
      if (l->ops->saves_input && tb > t->v_end) t->v_end = tb;
      if (t->needs_grad) {
        if (tb < t->g_def) t->g_def = tb;
        if (tb > t->g_end) t->g_end = tb;
      }
    }
    tensor *o = &n->t[l->out];
    if (l->ops->saves_output && tb > o->v_end) o->v_end = tb;
    /* The gradient lives until the producer's backward reads it. */
    if (o->needs_grad && tb > o->g_end) o->g_end = tb;
  }
  tensor *out = &n->t[n->nt - 1];
  if (L > out->v_end) out->v_end = L; /* the loss reads the logits */
  out->g_def = L;
  if (out->g_end < L) out->g_end = L;
  for (int i = 0; i < n->nt; i++)
    if (n->t[i].g_def > n->t[i].g_end) n->t[i].needs_grad = 0;
}

typedef struct block {
  int def, end;
  size_t size, off;
  size_t *dst;
} block;

static int by_size_desc(const void *a, const void *b) {
  const block *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->def - y->def;
}

/* Greedy placement, largest first: each block goes to the lowest offset that no placed block
 * with an overlapping lifetime occupies and from which it does not cross a multiple of cap
 * (the arena's buffers are cap elements each: a device's largest allocation may be smaller
 * than the arena). */
static size_t place(block *bl, int nbl, size_t cap) {
  qsort(bl, (size_t)nbl, sizeof *bl, by_size_desc);
  size_t top = 0;
  for (int i = 0; i < nbl; i++) {
    size_t off = 0;
    for (int again = 1; again;) {
      again = 0;
      for (int j = 0; j < i; j++) {
        if (bl[j].end < bl[i].def || bl[i].end < bl[j].def) continue;
        if (off < bl[j].off + bl[j].size && bl[j].off < off + bl[i].size) {
          off = bl[j].off + bl[j].size;
          again = 1;
        }
      }
      if (!again && crosses_cut(off, bl[i].size, cap)) {
        off = (off / cap + 1) * cap;
        again = 1;
      }
    }
    bl[i].off = off;
    *bl[i].dst = off;
    if (off + bl[i].size > top) top = off + bl[i].size;
  }
  return top;
}

static size_t real_size(const wrn_net *n) { return n->ctx ? wrn_ctx_real_size(n->ctx) : 4; }

size_t wrn_net_device_bytes(const wrn_net *n) {
  size_t rs = real_size(n);
  return rs * (n->arena_elems + n->ws_elems + 3 * n->nparams + n->nbufs + n->nsaved) +
         2 * (size_t)n->batch * (n->input >= 0 ? n->t[n->input].per_image : 0);
}

wrn_status wrn_net_plan(wrn_net *n) {
  if (n->err) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "the network was not built: %s", wrn_last_error());
  if (n->input < 0 || n->nl == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "the network has no input or no layers");
  if (n->planned) return WRN_OK;
  tensor *out = &n->t[n->nt - 1];
  if (out->h != 1 || out->w != 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "the last layer must give logits [batch][classes]");
  fuse_adds(n);
  liveness(n);
  block *bl = calloc((size_t)(2 * n->nt), sizeof *bl);
  if (!bl) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  int nbl = 0;
  size_t naive = 0;
  for (int i = 0; i < n->nt; i++) {
    tensor *t = &n->t[i];
    if (t->producer == -2) continue; /* fused away: never stored */
    size_t sz = wrn_round_up(t->per_image * (size_t)n->batch, ARENA_ALIGN);
    bl[nbl++] = (block){t->v_def, t->v_end, sz, 0, &t->v_off};
    naive += sz;
    if (t->needs_grad) {
      bl[nbl++] = (block){t->g_def, t->g_end, sz, 0, &t->g_off};
      naive += sz;
    }
  }
  /* The arena's buffers: at most the device's largest allocation each (or the option's
   * bound), in whole alignment units; one buffer when everything fits. */
  size_t cap = SIZE_MAX - ARENA_ALIGN;
  if (n->ctx) cap = wrn_ctx_device(n->ctx)->max_alloc / real_size(n);
  if (n->opt.max_buffer_elems && n->opt.max_buffer_elems < cap) cap = n->opt.max_buffer_elems;
  cap -= cap % ARENA_ALIGN;
  for (int i = 0; i < nbl; i++)
    if (bl[i].size > cap) {
      size_t big = bl[i].size;
      free(bl);
      return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                      "a tensor of %.4g MiB at batch %d exceeds the largest buffer the device "
                      "allows (%.4g MiB); try a smaller --batch",
                      big * (double)real_size(n) / 1048576.0, n->batch,
                      cap * (double)real_size(n) / 1048576.0);
    }
  n->arena_elems = place(bl, nbl, cap);
  n->arena_cap = cap;
  n->naive_elems = naive;
  free(bl);
  /* Conv workspace: the largest any conv layer needs under the bound. */
  n->ws_elems = 1;
  for (int i = 0; i < n->nl; i++)
    if (n->l[i].kind == WRN_LAYER_CONV) {
      size_t w = wrn_conv_workspace(&n->l[i].cs, n->opt.max_workspace_elems);
      if (w > n->ws_elems) n->ws_elems = w;
    }
  n->planned = 1;
  return WRN_OK;
}

/* The replayed choice for (layer, pass), copied into out; 0 when the replay has none. */
static int replayed(const wrn_net *n, const layer *l, wrn_conv_pass pass, char *out, size_t len) {
  if (!n->replay || !strcmp(n->replay, "auto")) return 0;
  if (!strchr(n->replay, '@')) { /* one choice for every layer and pass it supports */
    if (strlen(n->replay) >= len) return 0;
    snprintf(out, len, "%s", n->replay);
    return 1;
  }
  char key[160];
  snprintf(key, sizeof key, "%s@%s=", l->name, wrn_conv_pass_name(pass));
  const size_t kl = strlen(key);
  for (const char *p = n->replay; *p;) {
    const char *end = strchr(p, ';');
    size_t el = end ? (size_t)(end - p) : strlen(p);
    if (el > kl && !strncmp(p, key, kl) && el - kl < len) {
      memcpy(out, p + kl, el - kl);
      out[el - kl] = '\0';
      return 1;
    }
    p += el + (end ? 1 : 0);
  }
  return 0;
}

/* Each conv layer's algorithm per pass (replayed, or the tuner's), and the workspace the
 * choices need under the bound. */
static wrn_status choose_conv_algos(wrn_net *n) {
  const size_t bound = n->opt.max_workspace_elems;
  size_t ws = 1;
  for (int i = 0; i < n->nl; i++) {
    layer *l = &n->l[i];
    if (l->kind != WRN_LAYER_CONV) continue;
    for (int p = 0; p < WRN_CONV_PASSES; p++) {
      const wrn_conv_pass pass = (wrn_conv_pass)p;
      l->algo[p][0] = '\0';
      if (pass == WRN_CONV_BACKWARD_DATA && !n->t[l->in[0]].needs_grad) continue;
      char *a = l->algo[p];
      if (!replayed(n, l, pass, a, sizeof l->algo[p]) ||
          wrn_conv_algo_workspace(n->ctx, a, &l->cs, pass, bound) == (size_t)-1) {
        int measured = 0;
        WRN_TRY(wrn_conv_choose(n->ctx, &l->cs, pass, bound, a, sizeof l->algo[p], &measured));
        n->measured |= measured;
      }
      size_t w = wrn_conv_algo_workspace(n->ctx, a, &l->cs, pass, bound);
      if (w == (size_t)-1)
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "layer %s: %s does not fit the workspace bound", l->name, a);
      if (w > ws) ws = w;
    }
  }
  n->ws_elems = ws;
  return WRN_OK;
}

wrn_status wrn_net_set_conv_choices(wrn_net *n, const char *text) {
  if (!n) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "set_conv_choices: NULL network");
  if (n->finalized)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "set_conv_choices after finalize");
  /* Each entry must read as a choice: a typo is refused here, not silently replaced by the
   * tuner's pick. */
  if (text && text[0] && strcmp(text, "auto")) {
    for (const char *p = text; *p;) {
      const char *end = strchr(p, ';');
      size_t el = end ? (size_t)(end - p) : strlen(p);
      char entry[WRN_CONV_CHOICE_MAX + 160];
      if (el >= sizeof entry)
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv choices: an entry of %zu characters "
                        "is too long", el);
      memcpy(entry, p, el);
      entry[el] = '\0';
      const char *choice = entry;
      if (strchr(text, '@')) {
        char *at = strchr(entry, '@'), *eq = at ? strchr(at, '=') : NULL;
        if (!at || !eq)
          return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                          "conv choices: '%s' is not layer@pass=choice", entry);
        *eq = '\0';
        int known = 0;
        for (int q = 0; q < WRN_CONV_PASSES; q++)
          known |= !strcmp(at + 1, wrn_conv_pass_name((wrn_conv_pass)q));
        if (!known)
          return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv choices: '%s' is no pass "
                          "(forward, backward-data, backward-weight)", at + 1);
        choice = eq + 1;
      }
      WRN_TRY(wrn_conv_choice_check(choice));
      p += el + (end ? 1 : 0);
    }
  }
  char *c = NULL;
  if (text && text[0] && !(c = strdup(text)))
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  free(n->replay);
  n->replay = c;
  return WRN_OK;
}

wrn_status wrn_net_conv_choices(const wrn_net *n, char *out, size_t len) {
  if (!n || !out || len == 0) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choices: NULL argument");
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "conv_choices before finalize");
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < n->nl; i++) {
    const layer *l = &n->l[i];
    if (l->kind != WRN_LAYER_CONV) continue;
    for (int p = 0; p < WRN_CONV_PASSES; p++) {
      if (!l->algo[p][0]) continue;
      int w = snprintf(out + used, len - used, "%s%s@%s=%s", used ? ";" : "", l->name,
                       wrn_conv_pass_name((wrn_conv_pass)p), l->algo[p]);
      if (w < 0 || (size_t)w >= len - used)
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                        "conv_choices: a buffer of %zu bytes is too small", len);
      used += (size_t)w;
    }
  }
  return WRN_OK;
}

const char *wrn_net_conv_choice(const wrn_net *n, int layer_index, wrn_conv_pass pass) {
  if (!n || layer_index < 0 || layer_index >= n->nl || (int)pass < 0 || pass >= WRN_CONV_PASSES)
    return "";
  const layer *l = &n->l[layer_index];
  return l->kind == WRN_LAYER_CONV ? l->algo[pass] : "";
}

wrn_status wrn_net_finalize(wrn_net *n) {
  WRN_TRY(wrn_net_plan(n));
  if (n->finalized) return WRN_OK;
  if (!n->ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "finalize needs a device context");
  WRN_TRY(choose_conv_algos(n));
  size_t rs = real_size(n);
  const double mib = 1048576.0;
  size_t need = wrn_net_device_bytes(n);
  const wrn_device_info *d = wrn_ctx_device(n->ctx);
  if (need > d->global_mem)
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                    "the model at batch %d needs %.0f MiB on the device (activations %.0f MiB, "
                    "workspace %.0f MiB, parameters/gradients/momentum %.0f MiB) but '%s' has "
                    "%.0f MiB; try a smaller --batch",
                    n->batch, need / mib, n->arena_elems * rs / mib, n->ws_elems * rs / mib,
                    3.0 * n->nparams * rs / mib, d->name, d->global_mem / mib);
  wrn_ctx *c = n->ctx;
  size_t img = (size_t)n->batch * n->t[n->input].per_image;
  wrn_status s;
#define ALLOC(field, bytes, what)                                                           \
  if ((s = wrn_alloc(c, (bytes), (what), &n->field)) != WRN_OK) goto oom
  const int na = arena_count(n);
  if (!(n->arenas = calloc((size_t)na, sizeof *n->arenas)))
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  for (int i = 0; i < na; i++) {
    size_t left = n->arena_elems - (size_t)i * n->arena_cap; /* 0 for an empty arena */
    size_t elems = left > n->arena_cap ? n->arena_cap : left ? left : 1;
    ALLOC(arenas[i], elems * rs, na > 1 ? "a part of the activation arena" : "the activation arena");
  }
  ALLOC(ws, n->ws_elems * rs, "the convolution workspace");
  ALLOC(pbuf, n->nparams * rs, "the parameters");
  ALLOC(gbuf, n->nparams * rs, "the gradients");
  ALLOC(mbuf, n->nparams * rs, "the momentum buffer");
  ALLOC(bbuf, (n->nbufs ? n->nbufs : 1) * rs, "the BN running statistics");
  ALLOC(saved, (n->nsaved ? n->nsaved : 1) * rs, "the BN saved statistics");
  ALLOC(img_u8[0], img, "the input batch");
  ALLOC(img_u8[1], img, "the input batch");
  ALLOC(labels, (size_t)n->batch * 4, "the labels");
  ALLOC(loss, (size_t)n->batch * rs, "the losses");
  ALLOC(correct, (size_t)n->batch * rs, "the correct counts");
#undef ALLOC
  n->finalized = 1;
  return WRN_OK;
oom : {
  char msg[2048];
  snprintf(msg, sizeof msg, "%s", wrn_last_error());
  return wrn_fail(s,
                  "%s. The model at batch %d needs about %.0f MiB on the device in all "
                  "(activations %.0f MiB planned, %.0f MiB without reuse); try a smaller --batch",
                  msg, n->batch, need / mib, n->arena_elems * rs / mib, n->naive_elems * rs / mib);
}
}

/* ---------------------------------------------------------------- initialisation */

typedef struct rng {
  uint32_t key[2];
  uint64_t ctr;
  uint32_t buf[4];
  int have;
} rng;

static uint32_t rng_u32(rng *r) {
  if (!r->have) {
    uint32_t c[4] = {(uint32_t)r->ctr, (uint32_t)(r->ctr >> 32), 0x1417u, 0};
    wrn_philox4x32(c, r->key, r->buf);
    r->ctr++;
    r->have = 4;
  }
  return r->buf[--r->have];
}
static double rng_uniform(rng *r) { /* (0, 1) with 53 bits */
  uint64_t a = rng_u32(r), b = rng_u32(r);
  return ((double)((a << 21) ^ b) + 0.5) / 9007199254740992.0;
}
static double rng_normal(rng *r) {
  double u = rng_uniform(r), v = rng_uniform(r);
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

wrn_status wrn_net_init_params(wrn_net *n, uint64_t seed) {
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "init_params before finalize");
  double *p = calloc(n->nparams ? n->nparams : 1, sizeof *p);
  double *b = calloc(n->nbufs ? n->nbufs : 1, sizeof *b);
  if (!p || !b) {
    free(p), free(b);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  rng r = {{(uint32_t)seed, (uint32_t)(seed >> 32)}, 0, {0}, 0};
  for (int li = 0; li < n->nl; li++) {
    layer *l = &n->l[li];
    if (l->kind == WRN_LAYER_CONV) {
      wrn_param_info *w = &n->params[l->param[0]];
      double sd = sqrt(2.0 / (double)(l->k * l->k * l->cs.c_in));
      for (size_t i = 0; i < w->count; i++) p[w->offset + i] = sd * rng_normal(&r);
    } else if (l->kind == WRN_LAYER_BN) {
      wrn_param_info *g = &n->params[l->param[0]];
      for (size_t i = 0; i < g->count; i++)
        p[g->offset + i] = n->opt.bn_gamma_one ? 1.0 : rng_uniform(&r);
      wrn_param_info *rv = &n->bufs[l->buf[1]];
      for (size_t i = 0; i < rv->count; i++) b[rv->offset + i] = 1.0;
    } else if (l->kind == WRN_LAYER_LINEAR) {
      wrn_param_info *w = &n->params[l->param[0]];
      double bound = 1.0 / sqrt((double)w->shape[1]);
      for (size_t i = 0; i < w->count; i++) p[w->offset + i] = bound * (2 * rng_uniform(&r) - 1);
    }
  }
  wrn_status s = wrn_net_write(n, 0, p);
  if (s == WRN_OK) s = wrn_net_write(n, 3, b);
  if (s == WRN_OK) s = wrn_fill(n->ctx, M(n->mbuf, 0), 0.0, n->nparams);
  if (s == WRN_OK) s = wrn_fill(n->ctx, M(n->gbuf, 0), 0.0, n->nparams);
  free(p), free(b);
  return s;
}

/* ---------------------------------------------------------------- layer kinds */

static wrn_status conv_pass(wrn_net *n, layer *l, wrn_conv_pass pass, wrn_mem out, wrn_mem a,
                            wrn_mem b, int accumulate) {
  const wrn_mem add = pass == WRN_CONV_FORWARD && l->add_in >= 0 ? V(n, l->add_in) : M(NULL, 0);
  wrn_conv_io io = {out, a, b, add, accumulate, M(n->ws, 0), n->ws_elems};
  wrn_ctx_set_tag(n->ctx, (int)(l - n->l) * WRN_CONV_PASSES + (int)pass);
  wrn_status s = wrn_conv_run(n->ctx, l->algo[pass], pass, &l->cs, &io);
  wrn_ctx_set_tag(n->ctx, -1);
  return s;
}
static wrn_status conv_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  return conv_pass(n, l, WRN_CONV_FORWARD, V(n, l->out), V(n, l->in[0]), P(n, l->param[0]), 0);
}
static wrn_status conv_bwd(wrn_net *n, layer *l, const int *acc) {
  WRN_TRY(conv_pass(n, l, WRN_CONV_BACKWARD_WEIGHT, PG(n, l->param[0]), G(n, l->out),
                    V(n, l->in[0]), 0));
  if (n->t[l->in[0]].needs_grad)
    WRN_TRY(conv_pass(n, l, WRN_CONV_BACKWARD_DATA, G(n, l->in[0]), G(n, l->out),
                      P(n, l->param[0]), acc[0]));
  return WRN_OK;
}
static const layer_ops conv_ops = {conv_fwd, conv_bwd, 1, 0};

static void bn_dims(wrn_net *n, layer *l, int *c, int *hw) {
  tensor *t = &n->t[l->in[0]];
  *c = t->c;
  *hw = t->h * t->w;
}
static wrn_status bn_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  int c, hw;
  bn_dims(n, l, &c, &hw);
  size_t cs = wrn_round_up((size_t)c, 16);
  if (!train)
    return wrn_bn_forward_infer(n->ctx, V(n, l->out), V(n, l->in[0]), P(n, l->param[0]),
                                P(n, l->param[1]), B(n, l->buf[0]), B(n, l->buf[1]), n->batch,
                                c, hw, n->opt.bn_eps, l->relu);
  /* Each group of the batch (one unless ghost batches) with its own statistics. */
  const int sub = n->batch / n->ghost;
  const size_t span = (size_t)sub * (size_t)c * (size_t)hw;
  for (int g = 0; g < n->ghost; g++) {
    wrn_mem y = V(n, l->out), x = V(n, l->in[0]);
    y.off += (size_t)g * span;
    x.off += (size_t)g * span;
    const size_t so = l->save_off + (size_t)g * 2 * cs;
    WRN_TRY(wrn_bn_forward_train(n->ctx, y, M(n->saved, so), M(n->saved, so + cs),
                                 B(n, l->buf[0]), B(n, l->buf[1]), x, P(n, l->param[0]),
                                 P(n, l->param[1]), sub, c, hw, n->opt.bn_momentum,
                                 n->opt.bn_eps, l->relu));
  }
  return WRN_OK;
}
static wrn_status bn_bwd(wrn_net *n, layer *l, const int *acc) {
  int c, hw;
  bn_dims(n, l, &c, &hw);
  size_t cs = wrn_round_up((size_t)c, 16);
  const int sub = n->batch / n->ghost;
  const size_t span = (size_t)sub * (size_t)c * (size_t)hw;
  /* BN's input gradient is always wanted here (its input is made by a layer); the groups'
   * parameter gradients add up. */
  for (int g = 0; g < n->ghost; g++) {
    wrn_mem dx = G(n, l->in[0]), dy = G(n, l->out), x = V(n, l->in[0]), y = V(n, l->out);
    dx.off += (size_t)g * span, dy.off += (size_t)g * span;
    x.off += (size_t)g * span, y.off += (size_t)g * span;
    const size_t so = l->save_off + (size_t)g * 2 * cs;
    /* The ReLU's mask is recomputed from x (y is not read). */
    WRN_TRY(wrn_bn_backward_mask(n->ctx, dx, PG(n, l->param[0]), PG(n, l->param[1]), dy, x, y,
                                 P(n, l->param[0]), P(n, l->param[1]), M(n->saved, so),
                                 M(n->saved, so + cs), sub, c, hw, l->relu ? 2 : 0, acc[0],
                                 g > 0));
  }
  return WRN_OK;
}
static const layer_ops bn_ops = {bn_fwd, bn_bwd, 1, 1};

static uint64_t dropout_counter(wrn_net *n, layer *l, uint64_t step) {
  return step * 4096u + (uint64_t)(l - n->l);
}
static wrn_status dropout_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  size_t per = n->t[l->in[0]].per_image, cnt = per * (size_t)n->batch;
  return wrn_dropout_forward_at(n->ctx, V(n, l->out), V(n, l->in[0]), cnt, n->first * per,
                                train ? l->p : 0.0, seed, dropout_counter(n, l, step));
}
static wrn_status dropout_bwd(wrn_net *n, layer *l, const int *acc) {
  size_t per = n->t[l->in[0]].per_image, cnt = per * (size_t)n->batch;
  return wrn_dropout_backward_at(n->ctx, G(n, l->in[0]), G(n, l->out), cnt, n->first * per,
                                 l->p, n->dropout_seed, dropout_counter(n, l, n->dropout_step),
                                 acc[0]);
}
static const layer_ops dropout_ops = {dropout_fwd, dropout_bwd, 0, 0};

static wrn_status add_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  size_t cnt = n->t[l->out].per_image * (size_t)n->batch;
  return wrn_add_forward(n->ctx, V(n, l->out), V(n, l->in[0]), V(n, l->in[1]), cnt);
}
static wrn_status add_bwd(wrn_net *n, layer *l, const int *acc) {
  size_t cnt = n->t[l->out].per_image * (size_t)n->batch;
  for (int j = 0; j < 2; j++)
    if (n->t[l->in[j]].needs_grad)
      WRN_TRY(wrn_axpy(n->ctx, G(n, l->in[j]), G(n, l->out), 1.0, cnt, acc[j]));
  return WRN_OK;
}
static const layer_ops add_ops = {add_fwd, add_bwd, 0, 0};

/* The post-activation residual y = max(a + b, 0): the add, then the ReLU in place; backward
 * masks y's gradient in place (it is read by nothing else) and passes it to both operands. */
static wrn_status add_relu_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  size_t cnt = n->t[l->out].per_image * (size_t)n->batch;
  WRN_TRY(wrn_add_forward(n->ctx, V(n, l->out), V(n, l->in[0]), V(n, l->in[1]), cnt));
  return wrn_relu_forward(n->ctx, V(n, l->out), V(n, l->out), cnt);
}
static wrn_status add_relu_bwd(wrn_net *n, layer *l, const int *acc) {
  size_t cnt = n->t[l->out].per_image * (size_t)n->batch;
  WRN_TRY(wrn_relu_backward(n->ctx, G(n, l->out), G(n, l->out), V(n, l->out), cnt, 0));
  return add_bwd(n, l, acc);
}
static const layer_ops add_relu_ops = {add_relu_fwd, add_relu_bwd, 0, 1};

/* What is left of an add fused into its conv operand (fuse_adds): the gradient of the other
 * operand, in[0]. */
static wrn_status add_tail_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  return WRN_OK;
}
static wrn_status add_tail_bwd(wrn_net *n, layer *l, const int *acc) {
  if (!n->t[l->in[0]].needs_grad) return WRN_OK;
  size_t cnt = n->t[l->out].per_image * (size_t)n->batch;
  return wrn_axpy(n->ctx, G(n, l->in[0]), G(n, l->out), 1.0, cnt, acc[0]);
}
static const layer_ops add_tail_ops = {add_tail_fwd, add_tail_bwd, 0, 0};

static wrn_status avgpool_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  return wrn_avgpool_forward(n->ctx, V(n, l->out), V(n, l->in[0]), &l->ps);
}
static wrn_status avgpool_bwd(wrn_net *n, layer *l, const int *acc) {
  return wrn_avgpool_backward(n->ctx, G(n, l->in[0]), G(n, l->out), &l->ps, acc[0]);
}
static const layer_ops avgpool_ops = {avgpool_fwd, avgpool_bwd, 0, 0};

static wrn_status maxpool_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  return wrn_maxpool_forward(n->ctx, V(n, l->out), V(n, l->in[0]), &l->ps);
}
static wrn_status maxpool_bwd(wrn_net *n, layer *l, const int *acc) {
  /* The argmax is recomputed from the saved input. */
  return wrn_maxpool_backward(n->ctx, G(n, l->in[0]), G(n, l->out), V(n, l->in[0]), &l->ps,
                              acc[0]);
}
static const layer_ops maxpool_ops = {maxpool_fwd, maxpool_bwd, 1, 0};

static wrn_status linear_fwd(wrn_net *n, layer *l, int train, uint64_t seed, uint64_t step) {
  tensor *t = &n->t[l->in[0]];
  return wrn_linear_forward(n->ctx, V(n, l->out), V(n, l->in[0]), P(n, l->param[0]),
                            P(n, l->param[1]), n->batch, (int)t->per_image, n->t[l->out].c);
}
static wrn_status linear_bwd(wrn_net *n, layer *l, const int *acc) {
  tensor *t = &n->t[l->in[0]];
  wrn_mem dx = t->needs_grad ? G(n, l->in[0]) : M(NULL, 0);
  /* Parameter gradients are overwritten; the input gradient follows acc. Both share one
   * flag in the op, so a fresh input gradient (acc 0) is the only case used here. */
  if (t->needs_grad && acc[0])
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "linear layer input feeds several layers");
  return wrn_linear_backward(n->ctx, dx, PG(n, l->param[0]), PG(n, l->param[1]), G(n, l->out),
                             V(n, l->in[0]), P(n, l->param[0]), n->batch, (int)t->per_image,
                             n->t[l->out].c, 0);
}
static const layer_ops linear_ops = {linear_fwd, linear_bwd, 1, 0};

/* ---------------------------------------------------------------- the step */

wrn_status wrn_net_set_batch(wrn_net *n, const uint8_t *img, const int32_t *labels, int cnt,
                             const wrn_augment *a) {
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "set_batch before finalize");
  if (cnt < 1 || cnt > n->batch)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "batch of %d images does not fit the planned %d",
                    cnt, n->batch);
  tensor *in = &n->t[n->input];
  size_t per = in->per_image;
  n->slot ^= 1;
  cl_mem u8 = n->img_u8[n->slot];
  /* The transfer queue uploads while the compute queue may still run the previous step; the
   * other slot is what that step reads. */
  cl_command_queue tq = wrn_ctx_transfer_queue(n->ctx);
  WRN_CL_CHECK(clEnqueueWriteBuffer(tq, u8, CL_TRUE, 0, per * (size_t)cnt, img, 0, NULL,
                                    wrn_event_slot(n->ctx, WRN_CAT_TRANSFER, 0)));
  /* A short batch (the last of an evaluation) runs at the planned size: the images and labels
   * past cnt are whatever the slot held (valid bytes: buffers start zeroed), BN in inference
   * is per sample and the loss reads only the first cnt, so they change no result. */
  WRN_CL_CHECK(clEnqueueWriteBuffer(tq, n->labels, CL_TRUE, 0, (size_t)cnt * 4, labels, 0, NULL,
                                    NULL));
  return wrn_augment_forward_at(n->ctx, V(n, n->input), u8, 0, n->batch, n->first, in->c,
                                in->h, in->w, a);
}

wrn_status wrn_net_set_input_real(wrn_net *n, const double *x, const int32_t *labels, int cnt) {
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "set_input before finalize");
  if (cnt != n->batch)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "set_input_real needs a full batch of %d", n->batch);
  size_t cntel = n->t[n->input].per_image * (size_t)cnt;
  size_t rs = wrn_ctx_real_size(n->ctx);
  void *buf = malloc(cntel * rs);
  if (!buf) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  for (size_t i = 0; i < cntel; i++) {
    if (rs == 8) ((double *)buf)[i] = x[i];
    else ((float *)buf)[i] = (float)x[i];
  }
  wrn_status s = wrn_write(n->ctx, V(n, n->input), buf, cntel);
  free(buf);
  WRN_TRY(s);
  WRN_TRY(wrn_write_bytes(n->ctx, n->labels, 0, labels, (size_t)cnt * 4));
  return WRN_OK;
}

wrn_status wrn_net_forward(wrn_net *n, int train, uint64_t seed, uint64_t step) {
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "forward before finalize");
  n->dropout_seed = seed; /* backward makes the same masks again */
  n->dropout_step = step;
  for (int i = 0; i < n->nl; i++) WRN_TRY(n->l[i].ops->forward(n, &n->l[i], train, seed, step));
  return WRN_OK;
}

wrn_status wrn_net_loss(wrn_net *n, int cnt, int grad) {
  if (cnt < 1 || cnt > n->batch)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "loss over %d samples of a batch of %d", cnt,
                    n->batch);
  int out = n->nt - 1;
  wrn_mem dl = grad ? G(n, out) : M(NULL, 0);
  if (grad && cnt < n->batch) {
    /* Padded samples take no part in the gradient. */
    WRN_TRY(wrn_fill(n->ctx, G(n, out), 0.0, (size_t)n->batch * n->t[out].c));
  }
  return wrn_softmax_xent_smooth(n->ctx, M(n->loss, 0), M(n->correct, 0), dl, V(n, out),
                                 n->labels, 0, cnt, n->t[out].c, 1.0,
                                 grad ? n->opt.label_smoothing : 0.0);
}

wrn_status wrn_net_read_loss(wrn_net *n, int cnt, double *loss_sum, int *correct) {
  size_t rs = wrn_ctx_real_size(n->ctx);
  unsigned char *buf = malloc(2 * (size_t)cnt * rs);
  if (!buf) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = wrn_read(n->ctx, buf, M(n->loss, 0), (size_t)cnt);
  if (s == WRN_OK) s = wrn_read(n->ctx, buf + (size_t)cnt * rs, M(n->correct, 0), (size_t)cnt);
  if (s == WRN_OK) {
    double ls = 0, cs = 0;
    for (int i = 0; i < cnt; i++) {
      if (rs == 8) {
        ls += ((double *)buf)[i];
        cs += ((double *)buf)[cnt + i];
      } else {
        ls += ((float *)buf)[i];
        cs += ((float *)buf)[cnt + i];
      }
    }
    *loss_sum = ls;
    *correct = (int)(cs + 0.5);
  }
  free(buf);
  return s;
}

wrn_status wrn_net_backward(wrn_net *n) {
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "backward before finalize");
  /* has[t]: the gradient of tensor t already holds a contribution this step. */
  char *has = calloc((size_t)n->nt, 1);
  if (!has) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  has[n->nt - 1] = 1;
  wrn_status s = WRN_OK;
  for (int i = n->nl - 1; i >= 0 && s == WRN_OK; i--) {
    layer *l = &n->l[i];
    int acc[2] = {0, 0};
    for (int j = 0; j < l->nin; j++) acc[j] = has[l->in[j]];
    if (l->nin == 2 && l->in[0] == l->in[1]) acc[1] = 1;
    s = l->ops->backward(n, l, acc);
    if (s == WRN_OK && n->grad_hook && l->nparam > 0) {
      const wrn_param_info *lo = &n->params[l->param[0]];
      const wrn_param_info *hi = &n->params[l->param[l->nparam - 1]];
      s = n->grad_hook(n->grad_user, lo->offset,
                       hi->offset + wrn_round_up(hi->count, 16) - lo->offset);
    }
    for (int j = 0; j < l->nin; j++)
      if (n->t[l->in[j]].needs_grad) has[l->in[j]] = 1;
  }
  free(has);
  return s;
}

void wrn_net_set_grad_hook(wrn_net *n, wrn_net_grad_hook fn, void *user) {
  n->grad_hook = fn;
  n->grad_user = user;
}

void wrn_net_set_sample_offset(wrn_net *n, size_t first) { n->first = first; }

wrn_status wrn_net_update(wrn_net *n, const wrn_sgd *sgd) {
  return wrn_sgd_step(n->ctx, M(n->pbuf, 0), M(n->gbuf, 0), M(n->mbuf, 0), n->nparams, sgd);
}

int wrn_net_warmup_needed(const wrn_net *n) {
  return n->measured || wrn_ctx_programs_compiled(n->ctx) > 0;
}

wrn_status wrn_net_warmup(wrn_net *n) {
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "warmup before finalize");
  /* One training step without the update and one inference pass, on whatever the input holds:
   * every kernel and GEMM shape is compiled now. The running statistics are put back after,
   * so warming up changes no state (a resumed run stays bit-identical). */
  double *bufs = malloc((n->nbufs ? n->nbufs : 1) * sizeof *bufs);
  if (!bufs) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = wrn_net_read(n, 3, bufs);
  if (s == WRN_OK) s = wrn_net_forward(n, 1, 0, 0);
  if (s == WRN_OK) s = wrn_net_loss(n, n->batch, 1);
  if (s == WRN_OK) s = wrn_net_backward(n);
  if (s == WRN_OK) s = wrn_net_forward(n, 0, 0, 0);
  if (s == WRN_OK) s = wrn_net_loss(n, n->batch, 0);
  if (s == WRN_OK) s = wrn_ctx_finish(n->ctx);
  if (s == WRN_OK) s = wrn_net_write(n, 3, bufs);
  free(bufs);
  return s;
}

/* ---------------------------------------------------------------- host copies */

static wrn_status flat(wrn_net *n, int which, cl_mem *m, size_t *cnt) {
  switch (which) {
  case 0: *m = n->pbuf, *cnt = n->nparams; break;
  case 1: *m = n->gbuf, *cnt = n->nparams; break;
  case 2: *m = n->mbuf, *cnt = n->nparams; break;
  case 3: *m = n->bbuf, *cnt = n->nbufs; break;
  default: return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "no flat array %d", which);
  }
  if (!n->finalized) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "network not finalized");
  return WRN_OK;
}

wrn_mem wrn_net_flat_mem(const wrn_net *n, int which) {
  cl_mem m = which == 0 ? n->pbuf : which == 1 ? n->gbuf : which == 2 ? n->mbuf
             : which == 3 ? n->bbuf : NULL;
  return M(m, 0);
}

wrn_status wrn_net_read(wrn_net *n, int which, double *out) {
  cl_mem m = NULL;
  size_t cnt = 0;
  WRN_TRY(flat(n, which, &m, &cnt));
  size_t rs = wrn_ctx_real_size(n->ctx);
  if (rs == 8) return wrn_read(n->ctx, out, M(m, 0), cnt);
  float *f = malloc((cnt ? cnt : 1) * sizeof *f);
  if (!f) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = wrn_read(n->ctx, f, M(m, 0), cnt);
  for (size_t i = 0; s == WRN_OK && i < cnt; i++) out[i] = f[i];
  free(f);
  return s;
}

wrn_status wrn_net_write(wrn_net *n, int which, const double *in) {
  cl_mem m = NULL;
  size_t cnt = 0;
  WRN_TRY(flat(n, which, &m, &cnt));
  size_t rs = wrn_ctx_real_size(n->ctx);
  if (rs == 8) return wrn_write(n->ctx, M(m, 0), in, cnt);
  float *f = malloc((cnt ? cnt : 1) * sizeof *f);
  if (!f) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  for (size_t i = 0; i < cnt; i++) f[i] = (float)in[i];
  wrn_status s = wrn_write(n->ctx, M(m, 0), f, cnt);
  free(f);
  return s;
}

wrn_status wrn_net_read_logits(wrn_net *n, double *out, int cnt) {
  int o = n->nt - 1;
  size_t k = (size_t)n->t[o].c, total = k * (size_t)cnt;
  size_t rs = wrn_ctx_real_size(n->ctx);
  if (rs == 8) return wrn_read(n->ctx, out, V(n, o), total);
  float *f = malloc((total ? total : 1) * sizeof *f);
  if (!f) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = wrn_read(n->ctx, f, V(n, o), total);
  for (size_t i = 0; s == WRN_OK && i < total; i++) out[i] = f[i];
  free(f);
  return s;
}

/* ---------------------------------------------------------------- descriptions */

int wrn_net_batch(const wrn_net *n) { return n->batch; }
int wrn_net_classes(const wrn_net *n) { return n->nt ? n->t[n->nt - 1].c : 0; }
int wrn_net_layer_count(const wrn_net *n) { return n->nl; }
size_t wrn_net_param_count(const wrn_net *n) {
  size_t s = 0;
  for (int i = 0; i < n->np; i++) s += n->params[i].count;
  return s;
}
size_t wrn_net_buffer_count(const wrn_net *n) {
  size_t s = 0;
  for (int i = 0; i < n->nb; i++) s += n->bufs[i].count;
  return s;
}
int wrn_net_param_tensors(const wrn_net *n) { return n->np; }
const wrn_param_info *wrn_net_param_tensor(const wrn_net *n, int i) { return &n->params[i]; }
int wrn_net_buffer_tensors(const wrn_net *n) { return n->nb; }
const wrn_param_info *wrn_net_buffer_tensor(const wrn_net *n, int i) { return &n->bufs[i]; }

void wrn_net_layer(const wrn_net *n, int i, wrn_layer_info *o) {
  const layer *l = &n->l[i];
  const tensor *in = &n->t[l->in[0]], *out = &n->t[l->out];
  memset(o, 0, sizeof *o);
  o->kind = l->kind;
  snprintf(o->name, sizeof o->name, "%s", l->name);
  o->in_c = in->c, o->in_h = in->h, o->in_w = in->w;
  o->out_c = out->c, o->out_h = out->h, o->out_w = out->w;
  o->k = l->k, o->stride = l->stride, o->pad = l->pad, o->relu = l->relu, o->p = l->p;
  for (int j = 0; j < l->nparam; j++) o->params += n->params[l->param[j]].count;
  if (l->kind == WRN_LAYER_CONV)
    o->macs = (double)out->c * out->h * out->w * (double)in->c * l->k * l->k;
  else if (l->kind == WRN_LAYER_LINEAR)
    o->macs = (double)in->per_image * out->c;
}

double wrn_net_forward_macs(const wrn_net *n) {
  double s = 0;
  for (int i = 0; i < n->nl; i++) {
    wrn_layer_info li;
    wrn_net_layer(n, i, &li);
    s += li.macs;
  }
  return s;
}

void wrn_net_memory(const wrn_net *n, size_t *arena, size_t *naive, size_t *workspace,
                    size_t *params) {
  size_t rs = real_size(n);
  if (arena) *arena = n->arena_elems * rs;
  if (naive) *naive = n->naive_elems * rs;
  if (workspace) *workspace = n->ws_elems * rs;
  if (params) *params = 3 * n->nparams * rs;
}

int wrn_net_arena_buffers(const wrn_net *n) { return n && n->arenas ? arena_count(n) : 0; }

size_t wrn_net_flat_count(const wrn_net *n, int which) {
  return which == 3 ? n->nbufs : n->nparams;
}
size_t wrn_net_real_size(const wrn_net *n) { return real_size(n); }
wrn_ctx *wrn_net_ctx(const wrn_net *n) { return n->ctx; }

wrn_status wrn_net_check_plan(const wrn_net *n) {
  if (!n->planned) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "network not planned");
  /* Every pair of buffers (values and gradients) whose lifetimes meet must not share bytes,
   * and every buffer must lie inside the arena. */
  int nb = 0;
  size_t *off = malloc((size_t)(2 * n->nt) * sizeof *off), *len = malloc((size_t)(2 * n->nt) * sizeof *len);
  int *d = malloc((size_t)(2 * n->nt) * sizeof *d), *e = malloc((size_t)(2 * n->nt) * sizeof *e);
  if (!off || !len || !d || !e) {
    free(off), free(len), free(d), free(e);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  for (int i = 0; i < n->nt; i++) {
    const tensor *t = &n->t[i];
    if (t->producer == -2) continue;
    size_t sz = t->per_image * (size_t)n->batch;
    off[nb] = t->v_off, len[nb] = sz, d[nb] = t->v_def, e[nb] = t->v_end, nb++;
    if (t->needs_grad) off[nb] = t->g_off, len[nb] = sz, d[nb] = t->g_def, e[nb] = t->g_end, nb++;
  }
  wrn_status s = WRN_OK;
  for (int i = 0; i < nb && s == WRN_OK; i++) {
    if (off[i] + len[i] > n->arena_elems)
      s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "buffer %d ends past the arena", i);
    else if (crosses_cut(off[i], len[i], n->arena_cap))
      s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "buffer %d [%zu,+%zu) crosses the end of an "
                   "arena buffer of %zu elements", i, off[i], len[i], n->arena_cap);
    for (int j = i + 1; j < nb && s == WRN_OK; j++)
      if (!(e[i] < d[j] || e[j] < d[i]) && off[i] < off[j] + len[j] && off[j] < off[i] + len[i])
        s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                     "buffers %d [%zu,+%zu) t%d..%d and %d [%zu,+%zu) t%d..%d overlap while both live",
                     i, off[i], len[i], d[i], e[i], j, off[j], len[j], d[j], e[j]);
  }
  free(off), free(len), free(d), free(e);
  return s;
}
