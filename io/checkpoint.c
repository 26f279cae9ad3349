/* Checkpoints: safetensors files of a network's parameters, BN running statistics and momentum
 * under the PyTorch port's names, with string metadata (wrn_train.h). */
#include "wrn_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shape_str(const int64_t *s, int nd, char *out, size_t n) {
  size_t o = (size_t)snprintf(out, n, "[");
  for (int i = 0; i < nd && o < n; i++) o += (size_t)snprintf(out + o, n - o, "%s%lld", i ? ", " : "", (long long)s[i]);
  if (o < n) snprintf(out + o, n - o, "]");
}

/* v in the fewest digits that read back as the same float (is_float) or double: "125.3". */
static void shortest(char *out, size_t n, double v, int is_float) {
  for (int p = 1; p <= 17; p++) {
    snprintf(out, n, "%.*g", p, v);
    double r = strtod(out, NULL);
    if (is_float ? (float)r == (float)v : r == v) return;
  }
}

/* What a reader needs to feed the network the inputs it was trained on, unless the caller
 * gave it: x[c] = (pixel[c] - input_mean[c]) / input_std[c] with pixels on the 0..input_scale
 * scale, images of input_shape (c,h,w, RGB planes), and the BN constants. wrn train
 * normalises with wrn_augment_recipe()'s mean and std and builds its networks with the
 * default BN options (no flag changes them). */
static wrn_status input_meta(wrn_st_writer *w, const wrn_net *net, const wrn_checkpoint_meta *meta,
                             int nmeta) {
  wrn_augment a = wrn_augment_recipe();
  wrn_net_options no;
  wrn_net_options_default(&no);
  wrn_layer_info first;
  wrn_net_layer(net, 0, &first);
  char v[6][96];
  snprintf(v[0], sizeof v[0], "%d,%d,%d", first.in_c, first.in_h, first.in_w);
  for (int k = 0; k < 2; k++) {
    const float *x = k ? a.std : a.mean;
    char t[3][32];
    for (int c = 0; c < 3; c++) shortest(t[c], sizeof t[c], x[c], 1);
    snprintf(v[1 + k], sizeof v[0], "%s,%s,%s", t[0], t[1], t[2]);
  }
  snprintf(v[3], sizeof v[3], "255");
  shortest(v[4], sizeof v[4], no.bn_eps, 0);
  shortest(v[5], sizeof v[5], no.bn_momentum, 0);
  const char *keys[6] = {"input_shape", "input_mean", "input_std", "input_scale", "bn_eps",
                         "bn_momentum"};
  wrn_status s = WRN_OK;
  for (int k = 0; k < 6 && s == WRN_OK; k++) {
    int given = 0;
    for (int i = 0; i < nmeta; i++) given |= !strcmp(meta[i].key, keys[k]);
    if (!given) s = wrn_st_writer_meta(w, keys[k], v[k]);
  }
  return s;
}

wrn_status wrn_checkpoint_save(wrn_net *net, const char *path, const wrn_checkpoint_meta *meta,
                               int nmeta, int with_momentum) {
  int npt = wrn_net_param_tensors(net), nbt = wrn_net_buffer_tensors(net);
  /* The flat arrays hold padding between tensors, so read them whole. */
  double *params = NULL, *mom = NULL, *bufs = NULL;
  void *conv = NULL;
  wrn_st_writer *w = NULL;
  wrn_status s = WRN_OK;
  size_t fp = wrn_net_flat_count(net, 0), fb = wrn_net_flat_count(net, 3);
  params = malloc((fp ? fp : 1) * sizeof *params);
  mom = malloc((fp ? fp : 1) * sizeof *mom);
  bufs = malloc((fb ? fb : 1) * sizeof *bufs);
  int dbl = wrn_net_real_size(net) == 8;
  size_t esz = dbl ? 8 : 4;
  /* One array in the file's type holds every tensor written: params, buffers, momentum. */
  conv = malloc((2 * fp + fb + 1) * esz);
  if (!params || !mom || !bufs || !conv) {
    s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory writing %s", path);
    goto done;
  }
  if ((s = wrn_net_read(net, 0, params)) != WRN_OK) goto done;
  if (with_momentum && (s = wrn_net_read(net, 2, mom)) != WRN_OK) goto done;
  if ((s = wrn_net_read(net, 3, bufs)) != WRN_OK) goto done;
  if ((s = wrn_st_writer_new(&w)) != WRN_OK) goto done;
  /* One host array in the file's type for all tensors: params, buffers, momentum. */
  size_t used = 0;
  for (int pass = 0; pass < 3 && s == WRN_OK; pass++) {
    if (pass == 2 && !with_momentum) break;
    int cnt = pass == 1 ? nbt : npt;
    const double *src = pass == 0 ? params : pass == 1 ? bufs : mom;
    for (int i = 0; i < cnt && s == WRN_OK; i++) {
      const wrn_param_info *p = pass == 1 ? wrn_net_buffer_tensor(net, i) : wrn_net_param_tensor(net, i);
      int64_t shape[4];
      for (int d = 0; d < p->ndim; d++) shape[d] = p->shape[d];
      char *dst = (char *)conv + used * esz;
      for (size_t k = 0; k < p->count; k++) {
        if (dbl) ((double *)(void *)dst)[k] = src[p->offset + k];
        else ((float *)(void *)dst)[k] = (float)src[p->offset + k];
      }
      used += p->count;
      char name[128];
      snprintf(name, sizeof name, "%s%s", pass == 2 ? "momentum." : "", p->name);
      s = wrn_st_writer_add(w, name, dbl ? WRN_ST_F64 : WRN_ST_F32, p->ndim, shape, dst);
    }
  }
  for (int i = 0; i < nmeta && s == WRN_OK; i++) s = wrn_st_writer_meta(w, meta[i].key, meta[i].value);
  if (s == WRN_OK) s = input_meta(w, net, meta, nmeta);
  if (s == WRN_OK) s = wrn_st_writer_write(w, path);
done:
  wrn_st_writer_free(w);
  free(params), free(mom), free(bufs), free(conv);
  return s;
}

static wrn_status load_set(wrn_net *net, const wrn_st_file *f, const char *path, int which,
                           const char *prefix, double *flat) {
  int cnt = which == 3 ? wrn_net_buffer_tensors(net) : wrn_net_param_tensors(net);
  for (int i = 0; i < cnt; i++) {
    const wrn_param_info *p = which == 3 ? wrn_net_buffer_tensor(net, i) : wrn_net_param_tensor(net, i);
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix, p->name);
    const wrn_st_tensor *t = wrn_st_find(f, name);
    int64_t want[4];
    for (int d = 0; d < p->ndim; d++) want[d] = p->shape[d];
    char ws[64], gs[64];
    shape_str(want, p->ndim, ws, sizeof ws);
    if (!t)
      return wrn_fail(WRN_STATUS_FORMAT,
                      "%s has no tensor '%s' (shape %s): it is a checkpoint of another model",
                      path, name, ws);
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == want[d];
    if (!same) {
      shape_str(t->shape, t->ndim, gs, sizeof gs);
      return wrn_fail(WRN_STATUS_FORMAT,
                      "%s: tensor '%s' has shape %s but this model needs %s: the checkpoint "
                      "is of another model or shape",
                      path, name, gs, ws);
    }
    if (t->dtype != WRN_ST_F32 && t->dtype != WRN_ST_F64)
      return wrn_fail(WRN_STATUS_FORMAT, "%s: tensor '%s' is %s, expected F32 or F64", path, name,
                      wrn_st_dtype_name(t->dtype));
    const unsigned char *src = t->data;
    for (size_t k = 0; k < p->count; k++) {
      double x;
      if (t->dtype == WRN_ST_F32) {
        float v;
        memcpy(&v, src + 4 * k, 4);
        x = v;
      } else {
        memcpy(&x, src + 8 * k, 8);
      }
      if (!isfinite(x))
        return wrn_fail(WRN_STATUS_FORMAT,
                        "%s: tensor '%s' holds %g at element %zu: the checkpoint is damaged or "
                        "comes from a run that diverged",
                        path, name, x, k);
      flat[p->offset + k] = x;
    }
  }
  return WRN_OK;
}

/* 1 when the network has a tensor of this name: a parameter, a buffer, or "momentum." and
 * a parameter's name. A BN layer's "<bn>.num_batches_tracked" (the counter PyTorch keeps
 * for BN momentum None, in every torchvision state dict) counts as its own and is not read:
 * wrn's BN momentum is fixed. */
static int net_has(const wrn_net *net, const char *name) {
  static const char nbt[] = ".num_batches_tracked";
  const size_t len = strlen(name), nl = sizeof nbt - 1;
  if (len > nl && !strcmp(name + len - nl, nbt) && len - nl < 96) {
    char rm[128];
    snprintf(rm, sizeof rm, "%.*s.running_mean", (int)(len - nl), name);
    for (int i = 0; i < wrn_net_buffer_tensors(net); i++)
      if (!strcmp(wrn_net_buffer_tensor(net, i)->name, rm)) return 1;
    return 0;
  }
  int mom = !strncmp(name, "momentum.", 9);
  const char *n = mom ? name + 9 : name;
  for (int i = 0; i < wrn_net_param_tensors(net); i++)
    if (!strcmp(wrn_net_param_tensor(net, i)->name, n)) return 1;
  for (int i = 0; !mom && i < wrn_net_buffer_tensors(net); i++)
    if (!strcmp(wrn_net_buffer_tensor(net, i)->name, n)) return 1;
  return 0;
}

wrn_status wrn_checkpoint_load(wrn_net *net, const wrn_st_file *f, const char *path,
                               int flags) {
  int with_momentum = flags & WRN_CHECKPOINT_MOMENTUM;
  if (!(flags & WRN_CHECKPOINT_EXTRA))
    for (int i = 0; i < wrn_st_count(f); i++) {
      const char *name = wrn_st_at(f, i)->name;
      if (!net_has(net, name))
        return wrn_fail(WRN_STATUS_FORMAT,
                        "%s holds a tensor '%s' that this model does not have: it is a "
                        "checkpoint of another model (--init-extra on takes the tensors that "
                        "match and leaves the rest)",
                        path, name);
    }
  size_t fp = wrn_net_flat_count(net, 0), fb = wrn_net_flat_count(net, 3);
  double *params = calloc(fp ? fp : 1, sizeof *params), *bufs = calloc(fb ? fb : 1, sizeof *bufs);
  double *mom = with_momentum ? calloc(fp ? fp : 1, sizeof *mom) : NULL;
  wrn_status s = WRN_OK;
  if (!params || !bufs || (with_momentum && !mom))
    s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory reading %s", path);
  if (s == WRN_OK) s = load_set(net, f, path, 0, "", params);
  if (s == WRN_OK) s = load_set(net, f, path, 3, "", bufs);
  if (s == WRN_OK && with_momentum) s = load_set(net, f, path, 2, "momentum.", mom);
  if (s == WRN_OK) s = wrn_net_write(net, 0, params);
  if (s == WRN_OK) s = wrn_net_write(net, 3, bufs);
  if (s == WRN_OK && with_momentum) s = wrn_net_write(net, 2, mom);
  free(params), free(bufs), free(mom);
  return s;
}
