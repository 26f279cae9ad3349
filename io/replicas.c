/* The replicas a run trains (io/train_internal.h): one network on one device, or a
 * data-parallel set over several devices of this process and over MPI ranks (io/dist.h). */
#include "train_internal.h"

#include "dist.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MU(R) ((pthread_mutex_t *)(R)->mu)
#define CV(R) ((pthread_cond_t *)(R)->cv)

enum { JOB_BACKWARD = 1, JOB_UPDATE, JOB_WARMUP };

/* An OpenCL call's failure as a status naming the call. */
#define REP_CL(call)                                                                        \
  do {                                                                                      \
    cl_int rep_e_ = (call);                                                                 \
    if (rep_e_ != CL_SUCCESS)                                                               \
      return wrn_fail(WRN_STATUS_OPENCL, "%s failed with %s at %s:%d", #call,               \
                      wrn_cl_error_name(rep_e_), __FILE__, __LINE__);                       \
  } while (0)

/* ---------------------------------------------------------------- devices */

/* The selectors of o->devices (else WRN_DEVICES, else o->device): "all", or a comma list of
 * wrn_device_select selectors. */
static wrn_status select_devices(const wrn_train_options *o, wrn_device_info **out, int *n) {
  *out = NULL, *n = 0;
  const char *list = o->devices[0] ? o->devices : NULL;
  if (!list && !o->device[0]) {
    const char *env = getenv("WRN_DEVICES");
    if (env && env[0]) list = env;
  }
  if (!list) {
    wrn_device_info *d = calloc(1, sizeof *d);
    if (!d) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    wrn_status s = wrn_device_select(o->device[0] ? o->device : NULL, d);
    if (s != WRN_OK) {
      free(d);
      return s;
    }
    *out = d, *n = 1;
    return WRN_OK;
  }
  if (!strcmp(list, "all")) {
    wrn_status s = wrn_devices_list(out, n);
    if (s == WRN_OK && *n == 0) {
      free(*out), *out = NULL;
      return wrn_fail(WRN_STATUS_NO_DEVICE, "--devices all: no OpenCL device found");
    }
    return s;
  }
  int cap = 1;
  for (const char *p = list; *p; p++) cap += *p == ',';
  wrn_device_info *d = calloc((size_t)cap, sizeof *d);
  if (!d) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  int k = 0;
  for (const char *p = list;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char sel[256];
    if (len == 0 || len >= sizeof sel) {
      free(d);
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--devices: '%s' has an empty or too long "
                      "entry (want P:D,P:D,... or all)", list);
    }
    memcpy(sel, p, len);
    sel[len] = '\0';
    wrn_status s = wrn_device_select(sel, &d[k]);
    if (s != WRN_OK) {
      free(d);
      return wrn_train_context(s, "--devices");
    }
    k++;
    if (!end) break;
    p = end + 1;
  }
  *out = d, *n = k;
  return WRN_OK;
}

static int alike(const wrn_device_info *a, const wrn_device_info *b) {
  return !strcmp(a->name, b->name) && !strcmp(a->platform_name, b->platform_name) &&
         !strcmp(a->driver, b->driver) && !strcmp(a->platform_version, b->platform_version);
}

/* ---------------------------------------------------------------- the split */

/* An even split: B / W each, the remainder to the first workers. */
static void split_even(int *b, int w, int B) {
  for (int i = 0; i < w; i++) b[i] = B / w + (i < B % w);
}

/* b_w in proportion to speed, at least min_b each, summing to B: the floors, then one more
 * to the largest remainders (the lower worker first on ties). The speeds come from other
 * ranks too, so any value is taken: a speed that is not a positive finite number counts as 0,
 * the speeds are scaled by the largest before summing (no overflow to infinity), and when no
 * speed is usable the split is even. */
void wrn_split_by_speed(int *b, const double *speed, int w, int B, int min_b) {
  double top = 0;
  for (int i = 0; i < w; i++)
    if (isfinite(speed[i]) && speed[i] > top) top = speed[i];
  if (!(top > 0) || min_b < 0 || min_b * (double)w > B) {
    split_even(b, w, B);
    return;
  }
  double total = 0;
  for (int i = 0; i < w; i++) total += isfinite(speed[i]) && speed[i] > 0 ? speed[i] / top : 0;
  int free_b = B - min_b * w, used = 0;
  double *rem = malloc((size_t)w * sizeof *rem);
  for (int i = 0; i < w; i++) {
    double v = isfinite(speed[i]) && speed[i] > 0 ? speed[i] / top : 0;
    double share = free_b * v / total;
    if (share > free_b) share = free_b;
    b[i] = min_b + (int)floor(share);
    used += b[i];
    if (rem) rem[i] = share - floor(share);
  }
  while (used > B) /* rounding of shares that sum past free_b */
    for (int i = w - 1; i >= 0 && used > B; i--)
      if (b[i] > min_b) b[i]--, used--;
  while (used < B) {
    int best = 0;
    for (int i = 1; rem && i < w; i++)
      if (rem[i] > rem[best]) best = i;
    b[best]++, used++;
    if (rem) rem[best] = -1;
  }
  free(rem);
}

void wrn_replicas_split_text(const wrn_replicas *R, char *out, size_t len) {
  size_t u = 0;
  out[0] = '\0';
  for (int i = 0; i < R->workers && u < len; i++)
    u += (size_t)snprintf(out + u, len - u, "%s%d", i ? "," : "", R->split[i]);
}

static wrn_status parse_split(const char *text, int *b, int w, int B, int min_b) {
  int k = 0, sum = 0;
  for (const char *p = text; *p && k <= w;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > B || (*end && *end != ',')) break;
    if (k < w) b[k] = (int)v;
    k++, sum += (int)v;
    if (!*end) {
      if (k == w && sum == B) {
        for (int i = 0; i < w; i++)
          if (b[i] < min_b)
            return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--split '%s': %d images on worker "
                            "%d is under the minimum of %d (--min-per-device)", text, b[i], i,
                            min_b);
        return WRN_OK;
      }
      break;
    }
    p = end + 1;
  }
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--split '%s' must be %d positive counts "
                  "summing to the batch of %d", text, w, B);
}

/* ---------------------------------------------------------------- networks */

static wrn_status grad_hook(void *user, size_t off, size_t count);

/* Builds replica p's network for b images, in place of the one it has (whose parameters,
 * momentum and running statistics move over). */
static wrn_status replica_build(wrn_replicas *R, wrn_replica *p, int b) {
  const wrn_train_options *o = R->o;
  wrn_net_options no;
  wrn_net_options_default(&no);
  no.bn_gamma_one = o->bn_gamma_one;
  no.label_smoothing = o->label_smoothing;
  no.max_workspace_elems = (size_t)(o->workspace_mib * 1048576.0 / 4);
  wrn_net *net = NULL;
  wrn_status s = wrn_net_create(&net, p->ctx, b, &no);
  if (s == WRN_OK) s = R->h->build(net, o, R->h->user);
  /* The convolution algorithms: those asked for; else, on devices alike to replica 0's, the
   * choices replica 0 made (a checkpoint records those, so a resumed run computes with the
   * same kernels on every replica); else the tuner's. */
  static _Thread_local char choices[WRN_TRAIN_CONV_ALGO_MAX];
  const char *ca = o->conv_algo;
  if ((!ca[0] || !strcmp(ca, "auto")) && p != &R->r[0] && R->r[0].net && !R->unlike &&
      wrn_net_conv_choices(R->r[0].net, choices, sizeof choices) == WRN_OK)
    ca = choices;
  if (s == WRN_OK && ca[0]) s = wrn_net_set_conv_choices(net, ca);
  if (s == WRN_OK) s = wrn_net_finalize(net);
  if (s == WRN_OK && p->net) {
    /* Move the state over through the host. */
    size_t np = wrn_net_flat_count(net, 0), nb = wrn_net_flat_count(net, 3);
    double *tmp = malloc((np > nb ? np : nb) * sizeof *tmp + 8);
    if (!tmp) s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    for (int which = 0; s == WRN_OK && which < 4; which++) {
      if (which == 1) continue;
      s = wrn_net_read(p->net, which, tmp);
      if (s == WRN_OK) s = wrn_net_write(net, which, tmp);
    }
    free(tmp);
  }
  if (s != WRN_OK) {
    wrn_net_free(net);
    return wrn_train_context(s, "setting up the model");
  }
  wrn_net_free(p->net);
  p->net = net;
  p->b = b;
  if (R->workers > 1) wrn_net_set_grad_hook(net, grad_hook, p);
  return WRN_OK;
}

/* The slices of this rank's replicas, from R->split. */
static void place_slices(wrn_replicas *R) {
  int first = 0;
  for (int w = 0; w < R->workers; w++) {
    int r = w / R->n, i = w % R->n;
    if (r == R->rank) R->r[i].first = first;
    first += R->split[w];
  }
}

/* Rebuilds the networks whose slice changed. */
static wrn_status apply_split(wrn_replicas *R, const int *b) {
  memcpy(R->split, b, (size_t)R->workers * sizeof *b);
  for (int i = 0; i < R->n; i++) {
    int want = R->split[R->rank * R->n + i];
    if (!R->r[i].net || R->r[i].b != want) IO_TRY(replica_build(R, &R->r[i], want));
  }
  place_slices(R);
  return WRN_OK;
}

wrn_status wrn_replicas_set_split(wrn_replicas *R, const char *text) {
  if (R->workers == 1) return WRN_OK;
  int *b = malloc((size_t)R->workers * sizeof *b);
  if (!b) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = parse_split(text, b, R->workers, R->B, R->min_b);
  if (s == WRN_OK) s = apply_split(R, b);
  free(b);
  return s;
}

wrn_status wrn_replicas_open(wrn_replicas *R, const wrn_train_options *o,
                             const wrn_train_hooks *hooks) {
  memset(R, 0, sizeof *R);
  R->o = o, R->h = hooks;
  R->ranks = wrn_dist_active() ? wrn_dist_size() : 1;
  R->rank = wrn_dist_active() ? wrn_dist_rank() : 0;
  R->mu = calloc(1, sizeof(pthread_mutex_t));
  R->cv = calloc(1, sizeof(pthread_cond_t));
  if (!R->mu || !R->cv) {
    free(R->mu), free(R->cv);
    R->mu = R->cv = NULL;
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  pthread_mutex_init(MU(R), NULL);
  pthread_cond_init(CV(R), NULL);
  wrn_device_info *devs;
  int nd;
  TRAIN_TRY("choosing a device", select_devices(o, &devs, &nd));
  R->r = calloc((size_t)nd, sizeof *R->r);
  if (!R->r) {
    free(devs);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  R->n = nd;
  for (int i = 0; i < nd; i++) R->r[i].dev = devs[i], R->r[i].owner = R;
  free(devs);
  /* Every rank must bring as many devices: the workers are rank-major. */
  double mine = nd, *all = calloc((size_t)R->ranks, sizeof *all);
  if (!all) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = wrn_dist_allgather(&mine, all, 1, "counting the devices of the ranks");
  for (int r = 0; s == WRN_OK && r < R->ranks; r++)
    if (all[r] != mine)
      s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "rank %d has %.0f devices and rank %d has %d: "
                   "every rank must use as many (--devices)", r, all[r], R->rank, nd);
  free(all);
  if (s != WRN_OK) return s;
  R->workers = R->n * R->ranks;
  R->B = o->batch;
  if (R->workers > R->B)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "a batch of %d cannot be split over %d devices",
                    R->B, R->workers);
  R->min_b = o->min_per_device > 0 ? o->min_per_device : (R->B / R->workers < 8 ? R->B / R->workers : 8);
  if (R->min_b * R->workers > R->B)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "--min-per-device %d on %d devices is more than "
                    "the batch of %d", R->min_b, R->workers, R->B);
  R->split = calloc((size_t)R->workers, sizeof *R->split);
  R->speed = calloc((size_t)R->workers, sizeof *R->speed);
  if (!R->split || !R->speed) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  for (int i = 1; i < R->n; i++) R->unlike |= !alike(&R->r[0].dev, &R->r[i].dev);
  int *b = malloc((size_t)R->workers * sizeof *b);
  if (!b) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  split_even(b, R->workers, R->B);
  s = WRN_OK;
  if (R->workers > 1 && o->split[0] && strcmp(o->split, "auto")) {
    s = parse_split(o->split, b, R->workers, R->B, R->min_b);
    R->fixed = 1;
  }
  if (s == WRN_OK) {
    for (int i = 0; i < R->n && s == WRN_OK; i++) {
      wrn_ctx_options co = {WRN_F32, 0, 0};
      s = wrn_train_context(wrn_ctx_open(&R->r[i].ctx, &R->r[i].dev, &co), "opening the device");
    }
  }
  if (s == WRN_OK) s = apply_split(R, b);
  free(b);
  if (s != WRN_OK || R->workers == 1) return s;
  wrn_net *net = R->r[0].net;
  R->nparams = wrn_net_flat_count(net, 0);
  R->nbufs = wrn_net_flat_count(net, 3);
  size_t rs = wrn_net_real_size(net);
  R->acc = calloc(R->nparams + 1, sizeof *R->acc);
  R->gout = calloc(R->nparams + 1, rs);
  if (!R->acc || !R->gout) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  int ranges = wrn_net_param_tensors(net) + 1;
  for (int i = 0; i < R->n; i++) {
    wrn_replica *p = &R->r[i];
    if (wrn_net_real_size(p->net) != rs)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "replicas of different real types");
    /* The gradient's host copy: pinned memory the driver maps (CL_MEM_ALLOC_HOST_PTR),
     * where it allows; plain host memory otherwise. */
    size_t bytes = (R->nparams + 1) * rs;
    cl_int e = CL_SUCCESS;
    p->stage_mem = clCreateBuffer(wrn_ctx_cl_context(p->ctx),
                                  CL_MEM_ALLOC_HOST_PTR | CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e == CL_SUCCESS)
      p->stage = clEnqueueMapBuffer(wrn_ctx_queue(p->ctx), p->stage_mem, CL_TRUE,
                                    CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL, NULL, &e);
    if (e != CL_SUCCESS || !p->stage) {
      if (p->stage_mem) clReleaseMemObject(p->stage_mem);
      p->stage_mem = NULL;
      p->stage = calloc(R->nparams + 1, rs);
    }
    p->roff = calloc((size_t)ranges, sizeof *p->roff);
    p->rcnt = calloc((size_t)ranges, sizeof *p->rcnt);
    p->ev = calloc((size_t)ranges, sizeof *p->ev);
    p->cap = ranges;
    if (!p->stage || !p->roff || !p->rcnt || !p->ev)
      return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  /* Gradient buckets for the MPI sum: WRN_BUCKET_MIB (4) of doubles. */
  const char *bm = getenv("WRN_BUCKET_MIB");
  double mib = bm && atof(bm) > 0 ? atof(bm) : 4;
  R->bucket = (size_t)(mib * 1048576.0 / sizeof(double));
  if (R->bucket < 1) R->bucket = 1;
  return WRN_OK;
}

static void release_events(wrn_replica *p) {
  for (int k = 0; k < p->nev; k++)
    if (p->ev[k]) clReleaseEvent(p->ev[k]);
  p->nev = 0;
}

void wrn_replicas_free(wrn_replicas *R) {
  for (int i = 0; R->r && i < R->n; i++) {
    wrn_replica *p = &R->r[i];
    if (p->ctx && p->net) clFinish(wrn_ctx_queue(p->ctx));
    release_events(p);
    if (p->stage_mem) {
      if (p->stage) clEnqueueUnmapMemObject(wrn_ctx_queue(p->ctx), p->stage_mem, p->stage, 0,
                                            NULL, NULL);
      clFinish(wrn_ctx_queue(p->ctx));
      clReleaseMemObject(p->stage_mem);
    } else {
      free(p->stage);
    }
    wrn_net_free(p->net);
    wrn_ctx_free(p->ctx);
    free(p->roff), free(p->rcnt), free(p->ev);
  }
  free(R->r);
  free(R->split), free(R->speed), free(R->acc), free(R->gout);
  if (R->mu) pthread_mutex_destroy(MU(R));
  if (R->cv) pthread_cond_destroy(CV(R));
  free(R->mu), free(R->cv);
  memset(R, 0, sizeof *R);
}

wrn_net *wrn_replicas_primary(const wrn_replicas *R) { return R->r[0].net; }
int wrn_replicas_writer(const wrn_replicas *R) { return R->rank == 0; }

/* Replica 0's parameters, momentum and running statistics (rank 0's under MPI) on every
 * replica. */
static wrn_status sync_state(wrn_replicas *R) {
  if (R->workers == 1) return WRN_OK;
  wrn_net *net = R->r[0].net;
  size_t np = wrn_net_flat_count(net, 0), nb = wrn_net_flat_count(net, 3);
  double *tmp = malloc((np > nb ? np : nb) * sizeof *tmp + 8);
  if (!tmp) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  wrn_status s = WRN_OK;
  for (int which = 0; s == WRN_OK && which < 4; which++) {
    if (which == 1) continue;
    size_t cnt = which == 3 ? nb : np;
    s = wrn_net_read(net, which, tmp);
    if (s == WRN_OK) s = wrn_dist_bcast(tmp, cnt * sizeof *tmp, "sending rank 0's weights");
    for (int i = R->rank == 0 ? 1 : 0; s == WRN_OK && i < R->n; i++)
      s = wrn_net_write(R->r[i].net, which, tmp);
  }
  free(tmp);
  return s;
}

wrn_status wrn_replicas_init(wrn_replicas *R, uint64_t seed) {
  IO_TRY(wrn_dist_bcast(&seed, sizeof seed, "sending rank 0's seed"));
  IO_TRY(wrn_net_init_params(R->r[0].net, seed));
  return sync_state(R);
}

wrn_status wrn_replicas_load(wrn_replicas *R, const wrn_st_file *f, const char *path,
                             int flags) {
  for (int i = 0; i < R->n; i++) IO_TRY(wrn_checkpoint_load(R->r[i].net, f, path, flags));
  return sync_state(R);
}

/* ---------------------------------------------------------------- replica threads */

typedef struct job_arg {
  wrn_replicas *R;
  wrn_replica *p;
} job_arg;

/* Called in the replica's thread as backward goes: the layer's gradient range is read back
 * without waiting. */
static wrn_status grad_hook(void *user, size_t off, size_t count) {
  wrn_replica *p = user;
  if (!p->collect) return WRN_OK; /* a warm-up */
  size_t rs = wrn_net_real_size(p->net);
  if (p->nev >= p->cap)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "more gradient ranges than parameter tensors");
  cl_event ev = NULL;
  cl_mem g = wrn_net_flat_mem(p->net, 1).mem;
  cl_command_queue q = wrn_ctx_queue(p->ctx);
  REP_CL(clEnqueueReadBuffer(q, g, CL_FALSE, off * rs, count * rs,
                                   (char *)p->stage + off * rs, 0, NULL, &ev));
  REP_CL(clFlush(q));
  /* Published to the combining thread. */
  wrn_replicas *R = p->owner;
  pthread_mutex_lock(MU(R));
  p->roff[p->nev] = off;
  p->rcnt[p->nev] = count;
  p->ev[p->nev] = ev;
  p->nev++;
  pthread_cond_broadcast(CV(R));
  pthread_mutex_unlock(MU(R));
  return WRN_OK;
}

static wrn_status job_backward(wrn_replicas *R, wrn_replica *p) {
  const wrn_batch *b = R->batch;
  wrn_net *net = p->net;
  size_t per = 0;
  wrn_layer_info li;
  wrn_net_layer(net, 0, &li);
  per = (size_t)li.in_c * (size_t)li.in_h * (size_t)li.in_w;
  wrn_augment a = *R->aug;
  wrn_net_set_sample_offset(net, (size_t)p->first);
  double t0 = wrn_seconds();
  IO_TRY(wrn_net_set_batch(net, b->images + (size_t)p->first * per, b->labels + p->first, p->b,
                            &a));
  IO_TRY(wrn_net_forward(net, 1, R->dropout_seed, R->step));
  IO_TRY(wrn_net_loss(net, p->b, 1));
  p->collect = 1;
  wrn_status s = wrn_net_backward(net);
  p->collect = 0;
  IO_TRY(s);
  if (p->nev > 0) REP_CL(clWaitForEvents(1, &p->ev[p->nev - 1]));
  p->t_done = wrn_seconds();
  p->busy = p->t_done - t0;
  return WRN_OK;
}

static wrn_status job_update(wrn_replicas *R, wrn_replica *p) {
  IO_TRY(wrn_write(p->ctx, wrn_net_flat_mem(p->net, 1), R->gout, R->nparams));
  IO_TRY(wrn_net_update(p->net, R->sgd));
  return wrn_net_read_loss(p->net, p->b, &p->loss, &p->correct);
}

static void *job_main(void *arg) {
  job_arg *ja = arg;
  wrn_replicas *R = ja->R;
  wrn_replica *p = ja->p;
  wrn_status s = WRN_OK;
  if (R->job == JOB_BACKWARD) s = job_backward(R, p);
  else if (R->job == JOB_UPDATE) s = job_update(R, p);
  else if (R->job == JOB_WARMUP) {
    double t0 = wrn_seconds();
    s = wrn_net_warmup(p->net);
    p->busy = wrn_seconds() - t0;
  }
  if (s != WRN_OK) snprintf(p->msg, sizeof p->msg, "%s", wrn_last_error());
  pthread_mutex_lock(MU(R));
  p->status = s;
  p->done = 1;
  pthread_cond_broadcast(CV(R));
  pthread_mutex_unlock(MU(R));
  return NULL;
}

/* Runs R->job on every replica, each in a thread of its own; the first failure (in replica
 * order) is returned with its message. */
static wrn_status run_jobs(wrn_replicas *R, int job) {
  pthread_t th[64];
  job_arg ja[64];
  if (R->n > 64) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "at most 64 devices per process");
  R->job = job;
  int started = 0;
  for (int i = 0; i < R->n; i++) {
    R->r[i].done = 0, R->r[i].status = WRN_OK;
    ja[i] = (job_arg){R, &R->r[i]};
  }
  for (; started < R->n; started++)
    if (pthread_create(&th[started], NULL, job_main, &ja[started]) != 0) break;
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  if (started < R->n) {
    for (int i = started; i < R->n; i++) job_main(&ja[i]); /* run the rest here */
  }
  for (int i = 0; i < R->n; i++)
    if (R->r[i].status != WRN_OK)
      return wrn_fail(R->r[i].status, "device %d (%s): %s", i, R->r[i].dev.name, R->r[i].msg);
  return WRN_OK;
}

/* ---------------------------------------------------------------- warm-up and balance */

static int split_differs(const int *a, const int *b, int w) {
  for (int i = 0; i < w; i++)
    if (a[i] != b[i]) return 1;
  return 0;
}

/* A new split from the speeds: kept unless some slice moves by more than 2 images or 5%. */
static wrn_status rebalance(wrn_replicas *R, const double *measured) {
  int w = R->workers;
  double *all = calloc((size_t)w, sizeof *all);
  int *b = malloc((size_t)w * sizeof *b);
  if (!all || !b) {
    free(all), free(b);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  wrn_status s = wrn_dist_allgather(measured, all, R->n, "sharing the devices' speeds");
  if (s == WRN_OK) {
    for (int i = 0; i < w; i++)
      R->speed[i] = R->speed[i] > 0 && all[i] > 0 ? 0.5 * R->speed[i] + 0.5 * all[i] : all[i];
    wrn_split_by_speed(b, R->speed, w, R->B, R->min_b);
    int moved = 0;
    for (int i = 0; i < w; i++) {
      int d = abs(b[i] - R->split[i]);
      moved |= d > 2 && d > R->split[i] / 20;
    }
    if (moved && split_differs(b, R->split, w)) {
      s = apply_split(R, b);
      for (int i = 0; s == WRN_OK && i < R->n; i++)
        if (wrn_net_warmup_needed(R->r[i].net)) s = wrn_net_warmup(R->r[i].net);
    }
  }
  free(all), free(b);
  return s;
}

/* Nothing to do when every kernel came from the disk cache and no convolution choice was
 * measured: the first step then starts at once. */
wrn_status wrn_replicas_warmup(wrn_replicas *R) {
  for (int i = 0; i < R->n; i++)
    if (wrn_net_warmup_needed(R->r[i].net)) IO_TRY(wrn_net_warmup(R->r[i].net));
  if (R->workers == 1 || R->fixed) return WRN_OK;
  /* A timed pass of every replica at once, now that everything is compiled. */
  IO_TRY(run_jobs(R, JOB_WARMUP));
  double sp[64];
  for (int i = 0; i < R->n; i++) sp[i] = R->r[i].busy > 0 ? R->r[i].b / R->r[i].busy : 0;
  return rebalance(R, sp);
}

wrn_status wrn_replicas_epoch_end(wrn_replicas *R, wrn_json *log) {
  if (R->workers == 1) return WRN_OK;
  char text[1024];
  wrn_replicas_split_text(R, text, sizeof text);
  IO_TRY(wrn_json_str(log, "devices_split", text));
  double sp[64], *all = calloc((size_t)R->workers, sizeof *all);
  if (!all) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  for (int i = 0; i < R->n; i++) {
    sp[i] = R->r[i].busy_sum > 0 ? R->r[i].imgs_sum / R->r[i].busy_sum : 0;
    R->r[i].busy_sum = 0, R->r[i].imgs_sum = 0;
  }
  wrn_status s = wrn_dist_allgather(sp, all, R->n, "sharing the devices' speeds");
  size_t u = 0;
  text[0] = '\0';
  for (int i = 0; s == WRN_OK && i < R->workers && u < sizeof text; i++)
    u += (size_t)snprintf(text + u, sizeof text - u, "%s%.1f", i ? "," : "", all[i]);
  free(all);
  if (s == WRN_OK) s = wrn_json_str(log, "device_images_per_s", text);
  if (s == WRN_OK)
    s = wrn_json_double(log, "allreduce_ms",
                        R->combine_steps ? 1e3 * R->combine_sum / (double)R->combine_steps : 0);
  R->combine_sum = 0, R->combine_steps = 0;
  if (s == WRN_OK && !R->fixed) s = rebalance(R, sp);
  if (s == WRN_OK) {
    wrn_replicas_split_text(R, text, sizeof text);
    s = wrn_json_str(log, "next_devices_split", text);
  }
  return s;
}

wrn_status wrn_replicas_agree_stop(wrn_replicas *R, int *stop) {
  if (!wrn_dist_active()) return WRN_OK;
  double v = *stop;
  IO_TRY(wrn_dist_allreduce(&v, 1, 1, "agreeing on a stop"));
  *stop = (int)v;
  return WRN_OK;
}

/* ---------------------------------------------------------------- the step */

/* Waits until replica p's read k is done, letting started MPI sums advance meanwhile. */
static wrn_status wait_range(wrn_replicas *R, wrn_replica *p, int k) {
  for (;;) {
    pthread_mutex_lock(MU(R));
    int have = p->nev > k, done = p->done;
    pthread_mutex_unlock(MU(R));
    if (have) break;
    if (done) return WRN_OK; /* failed, or fewer ranges: the caller checks */
    IO_TRY(wrn_dist_progress());
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
  for (;;) {
    cl_int st = CL_QUEUED;
    REP_CL(clGetEventInfo(p->ev[k], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st,
                                NULL));
    if (st < 0)
      return wrn_fail(WRN_STATUS_OPENCL, "reading back gradients from %s failed (%s)",
                      p->dev.name, wrn_cl_error_name(st));
    if (st == CL_COMPLETE) return WRN_OK;
    if (!wrn_dist_active()) {
      REP_CL(clWaitForEvents(1, &p->ev[k]));
      return WRN_OK;
    }
    IO_TRY(wrn_dist_progress());
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
}

static double stage_at(const void *stage, size_t rs, size_t k) {
  return rs == 8 ? ((const double *)stage)[k] : (double)((const float *)stage)[k];
}

/* The combining thread: gradient ranges as they arrive, summed with weights b_w / B in
 * replica order, then buckets of them summed over ranks. */
static wrn_status combine(wrn_replicas *R, int *nranges) {
  size_t rs = wrn_net_real_size(R->r[0].net);
  size_t lo = (size_t)-1, hi = 0; /* the bucket being filled: [lo, hi) */
  int k = 0;
  for (;; k++) {
    int more = 1;
    for (int i = 0; i < R->n; i++) {
      IO_TRY(wait_range(R, &R->r[i], k));
      pthread_mutex_lock(MU(R));
      int have = R->r[i].nev > k;
      pthread_mutex_unlock(MU(R));
      if (!have) more = 0;
    }
    if (!more) break;
    size_t off = R->r[0].roff[k], cnt = R->r[0].rcnt[k];
    for (int i = 1; i < R->n; i++)
      if (R->r[i].roff[k] != off || R->r[i].rcnt[k] != cnt)
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "replicas disagree on gradient layout");
    double *acc = R->acc + off;
    for (size_t j = 0; j < cnt; j++) acc[j] = 0;
    for (int i = 0; i < R->n; i++) {
      const double wgt = (double)R->r[i].b / (double)R->B;
      for (size_t j = 0; j < cnt; j++) acc[j] += wgt * stage_at(R->r[i].stage, rs, off + j);
    }
    if (off < lo) lo = off;
    if (off + cnt > hi) hi = off + cnt;
    if (hi - lo >= R->bucket) {
      IO_TRY(wrn_dist_iallreduce(R->acc + lo, hi - lo));
      lo = (size_t)-1, hi = 0;
    }
  }
  if (hi > lo) IO_TRY(wrn_dist_iallreduce(R->acc + lo, hi - lo));
  *nranges = k;
  return WRN_OK;
}

static void *backward_thread(void *arg) { return job_main(arg); }

static wrn_status train_multi(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                              const wrn_sgd *sgd, uint64_t dropout_seed, uint64_t step,
                              double *loss_sum, int *correct) {
  if (b->count != R->B)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "a training batch of %d images, the split is "
                    "for %d", b->count, R->B);
  double t0 = wrn_seconds();
  R->batch = b, R->aug = a, R->sgd = sgd, R->dropout_seed = dropout_seed, R->step = step;
  R->job = JOB_BACKWARD;
  pthread_t th[64];
  job_arg ja[64];
  if (R->n > 64) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "at most 64 devices per process");
  for (int i = 0; i < R->n; i++) {
    release_events(&R->r[i]);
    R->r[i].done = 0, R->r[i].status = WRN_OK;
    ja[i] = (job_arg){R, &R->r[i]};
  }
  int started = 0;
  for (; started < R->n; started++)
    if (pthread_create(&th[started], NULL, backward_thread, &ja[started]) != 0) break;
  for (int i = started; i < R->n; i++) backward_thread(&ja[i]);
  int nranges = 0;
  wrn_status s = combine(R, &nranges);
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  for (int i = 0; s == WRN_OK && i < R->n; i++)
    if (R->r[i].status != WRN_OK)
      s = wrn_fail(R->r[i].status, "device %d (%s): %s", i, R->r[i].dev.name, R->r[i].msg);
  /* A failure on one rank must not leave the others waiting in its sums: they time out. */
  if (s == WRN_OK) s = wrn_dist_wait_all("combining gradients over the ranks");
  if (s == WRN_OK) {
    size_t covered = 0;
    for (int k = 0; k < nranges; k++) covered += R->r[0].rcnt[k];
    if (covered != R->nparams)
      s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "gradients read back cover %zu of %zu values",
                   covered, R->nparams);
  }
  if (s != WRN_OK) return s;
  /* What combining adds to the step: from the slowest replica's last read to the sums. */
  double slowest = 0;
  for (int i = 0; i < R->n; i++)
    if (R->r[i].t_done > slowest) slowest = R->r[i].t_done;
  R->allreduce_s = wrn_seconds() - slowest;
  if (R->allreduce_s < 0) R->allreduce_s = 0;
  /* The combined gradient in the real type, for every replica. */
  size_t rs = wrn_net_real_size(R->r[0].net);
  for (size_t j = 0; j < R->nparams; j++) {
    if (rs == 8) ((double *)R->gout)[j] = R->acc[j];
    else ((float *)R->gout)[j] = (float)R->acc[j];
  }
  /* Running statistics: the b-weighted mean of the replicas' (over ranks too). */
  if (R->nbufs) {
    double *m = calloc(R->nbufs, sizeof *m), *t = malloc(R->nbufs * sizeof *t);
    if (!m || !t) s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; s == WRN_OK && i < R->n; i++) {
      s = wrn_net_read(R->r[i].net, 3, t);
      const double wgt = (double)R->r[i].b / (double)R->B;
      for (size_t j = 0; s == WRN_OK && j < R->nbufs; j++) m[j] += wgt * t[j];
    }
    if (s == WRN_OK) s = wrn_dist_allreduce(m, R->nbufs, 0, "combining BN statistics");
    for (int i = 0; s == WRN_OK && i < R->n; i++) s = wrn_net_write(R->r[i].net, 3, m);
    free(m), free(t);
    if (s != WRN_OK) return s;
  }
  IO_TRY(run_jobs(R, JOB_UPDATE));
  if (R->unlike) { /* devices that may round differently: replica 0's parameters to all */
    double *p = malloc(R->nparams * sizeof *p);
    if (!p) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    s = wrn_net_read(R->r[0].net, 0, p);
    for (int i = 1; s == WRN_OK && i < R->n; i++) s = wrn_net_write(R->r[i].net, 0, p);
    free(p);
    if (s != WRN_OK) return s;
  }
  double lc[2] = {0, 0};
  for (int i = 0; i < R->n; i++) {
    lc[0] += R->r[i].loss;
    lc[1] += R->r[i].correct;
    R->r[i].busy_sum += R->r[i].busy;
    R->r[i].imgs_sum += R->r[i].b;
  }
  IO_TRY(wrn_dist_allreduce(lc, 2, 0, "summing the loss over the ranks"));
  R->combine_sum += R->allreduce_s;
  R->combine_steps++;
  R->step_s = wrn_seconds() - t0;
  *loss_sum = lc[0];
  *correct = (int)(lc[1] + 0.5);
  return WRN_OK;
}

wrn_status wrn_replicas_train(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                              const wrn_sgd *sgd, uint64_t dropout_seed, uint64_t step,
                              double *loss_sum, int *correct) {
  if (R->workers > 1) return train_multi(R, b, a, sgd, dropout_seed, step, loss_sum, correct);
  wrn_net *net = R->r[0].net;
  double t0 = wrn_seconds();
  wrn_status s = wrn_net_set_batch(net, b->images, b->labels, b->count, a);
  if (s != WRN_OK) return s;
  s = wrn_train_step(net, b->count, sgd, dropout_seed, step, loss_sum, correct);
  R->step_s = R->r[0].busy = wrn_seconds() - t0;
  return s;
}

/* On replica 0 in slices of its batch (every rank evaluates the whole test split). */
wrn_status wrn_replicas_eval(wrn_replicas *R, const wrn_batch *b, const wrn_augment *a,
                             double *loss_sum, int *correct) {
  wrn_net *net = R->r[0].net;
  int cap = wrn_net_batch(net);
  wrn_layer_info li;
  wrn_net_layer(net, 0, &li);
  size_t per = (size_t)li.in_c * (size_t)li.in_h * (size_t)li.in_w;
  double ls = 0;
  int cor = 0;
  for (int off = 0; off < b->count; off += cap) {
    int cnt = b->count - off < cap ? b->count - off : cap;
    IO_TRY(wrn_net_set_batch(net, b->images + (size_t)off * per, b->labels + off, cnt, a));
    double l;
    int c;
    IO_TRY(wrn_train_eval_step(net, cnt, &l, &c));
    ls += l, cor += c;
  }
  *loss_sum = ls;
  *correct = cor;
  return WRN_OK;
}

/* ---------------------------------------------------------------- wrn_parallel */

struct wrn_parallel {
  wrn_train_options o;
  wrn_train_hooks h;
  wrn_replicas R;
};

wrn_status wrn_parallel_open(wrn_parallel **out, const wrn_train_options *o,
                             const wrn_train_hooks *hooks) {
  *out = NULL;
  if (!o || !hooks || !hooks->build)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_parallel_open needs options and a build "
                    "hook");
  wrn_parallel *p = calloc(1, sizeof *p);
  if (!p) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  p->o = *o;
  p->h = *hooks;
  wrn_status s = wrn_replicas_open(&p->R, &p->o, &p->h);
  if (s == WRN_OK) s = wrn_replicas_init(&p->R, o->seed);
  if (s != WRN_OK) {
    wrn_parallel_free(p);
    return s;
  }
  *out = p;
  return WRN_OK;
}

void wrn_parallel_free(wrn_parallel *p) {
  if (!p) return;
  wrn_replicas_free(&p->R);
  free(p);
}

wrn_status wrn_parallel_warmup(wrn_parallel *p) {
  /* The warm-up runs on whatever the inputs hold: give them a batch first. */
  wrn_replicas *R = &p->R;
  for (int i = 0; i < R->n; i++) {
    wrn_net *net = R->r[i].net;
    wrn_layer_info li;
    wrn_net_layer(net, 0, &li);
    size_t per = (size_t)li.in_c * (size_t)li.in_h * (size_t)li.in_w;
    int b = wrn_net_batch(net);
    uint8_t *img = calloc((size_t)b * per, 1);
    int32_t *lab = calloc((size_t)b, sizeof *lab);
    wrn_augment a = wrn_train_augment(&p->o, 0, 0);
    wrn_status s = img && lab ? wrn_net_set_batch(net, img, lab, b, &a)
                              : wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
    free(img), free(lab);
    IO_TRY(s);
  }
  return wrn_replicas_warmup(R);
}

wrn_status wrn_parallel_step(wrn_parallel *p, const uint8_t *images, const int32_t *labels,
                             const wrn_sgd *sgd, uint64_t step, double *loss_sum, int *correct) {
  wrn_batch b = {images, labels, NULL, p->o.batch, (int64_t)step};
  wrn_augment a = wrn_train_augment(&p->o, 1, step);
  double l;
  int c;
  IO_TRY(wrn_replicas_train(&p->R, &b, &a, sgd, p->o.seed, step, &l, &c));
  if (loss_sum) *loss_sum = l;
  if (correct) *correct = c;
  return WRN_OK;
}

int wrn_parallel_devices(const wrn_parallel *p) { return p->R.n; }
wrn_net *wrn_parallel_net(const wrn_parallel *p, int i) { return p->R.r[i].net; }
const wrn_device_info *wrn_parallel_device(const wrn_parallel *p, int i) {
  return &p->R.r[i].dev;
}
int wrn_parallel_slice(const wrn_parallel *p, int i) { return p->R.r[i].b; }
double wrn_parallel_busy(const wrn_parallel *p, int i) { return p->R.r[i].busy; }
double wrn_parallel_combine_seconds(const wrn_parallel *p) { return p->R.allreduce_s; }
double wrn_parallel_step_seconds(const wrn_parallel *p) { return p->R.step_s; }
