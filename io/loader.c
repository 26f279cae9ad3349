/* Batch loader: a background thread gathers the next batch's uint8 images and labels into
 * one of two buffers while the caller works on the other (from a split in memory, or decoding
 * an image folder's JPEGs on its own threads). The order of an epoch comes from
 * (seed, epoch) alone, never from thread timing, so runs and resumed runs see the same
 * batches. */
#include "wrn_io.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tags the shuffle's Philox stream, so that it does not coincide with the streams other
 * users draw from the same seed (dropout, augmentation). */
#define SHUFFLE_TAG 0x53480000u

/* Uniform integer in [0, range) for one Fisher-Yates position. Multiply-shift with
 * rejection (Lemire 2019) is unbiased; the rare rejections draw further words from the
 * same position's counter, so the result depends only on (seed, epoch, i). */
static uint32_t draw_below(uint32_t range, uint32_t i, uint64_t seed, uint64_t epoch) {
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint32_t threshold = (uint32_t)(-range) % range;
  for (uint32_t round = 0;; round++) {
    uint32_t ctr[4] = {i, (uint32_t)epoch, (uint32_t)(epoch >> 32), SHUFFLE_TAG + round};
    uint32_t out[4];
    wrn_philox4x32(ctr, key, out);
    for (int k = 0; k < 4; k++) {
      uint64_t m = (uint64_t)out[k] * range;
      if ((uint32_t)m >= threshold) return (uint32_t)(m >> 32);
    }
  }
}

void wrn_shuffle_order(uint32_t *perm, size_t n, uint64_t seed, uint64_t epoch) {
  if (!perm) return;
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  for (size_t i = n; i > 1; i--) {
    uint32_t j = draw_below((uint32_t)i, (uint32_t)(i - 1), seed, epoch);
    uint32_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct slot {
  uint8_t *images;   /* [batch][c][h][w] */
  int32_t *labels;   /* [batch] */
  uint32_t *indices; /* [batch] */
  int count;
  int64_t step;
  enum slot_state state;
  wrn_status st; /* image folders: a decoding failure that is not a bad file */
  char msg[1024];
} slot;

struct wrn_loader {
  wrn_split split; /* a shallow copy: the arrays belong to the caller */
  size_t img_bytes;
  int batch, shuffle, drop_last;
  uint64_t seed;
  int64_t steps;
  uint32_t *perm; /* [split.n] order of the current epoch */

  pthread_t thread;
  int sync_ready, thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv_work; /* the worker waits here for a free slot or a new epoch */
  pthread_cond_t cv_done; /* callers wait here for a ready slot or an idle worker */
  int quit;
  int active;     /* an epoch is running; the worker fills slots only then */
  int busy;       /* the worker is copying outside the lock */
  uint64_t gen;   /* bumped by start_epoch so that a batch filled for the old epoch is dropped */
  int64_t next_fill, next_take;
  int held; /* slot lent to the caller, or -1 */
  slot slots[2];
  /* An image-folder source instead of the split's arrays. */
  const wrn_imagefolder *folder;
  wrn_image_pipeline pipe;
  int threads;
  uint64_t epoch;
  size_t *idx;            /* [batch] positions of the batch being decoded */
  wrn_image_skips skips;  /* under mu */
};

static void fill_slot(wrn_loader *L, slot *s, int64_t step) {
  size_t first = (size_t)step * (size_t)L->batch;
  size_t count = L->split.n - first < (size_t)L->batch ? L->split.n - first : (size_t)L->batch;
  s->step = step;
  s->st = WRN_OK;
  if (L->folder) {
    for (size_t j = 0; j < count; j++) L->idx[j] = L->perm[first + j];
    wrn_image_skips sk;
    memset(&sk, 0, sizeof sk);
    int kept = 0;
    s->st = wrn_imagefolder_load(L->folder, L->idx, (int)count, &L->pipe, L->epoch, L->threads,
                                 s->images, s->labels, s->indices, &kept, &sk);
    if (s->st == WRN_OK && kept == 0)
      s->st = wrn_fail(WRN_STATUS_FORMAT, "no image of batch %lld decoded (the first: %s: %s)",
                       (long long)step, sk.first_path, sk.first_error);
    if (s->st != WRN_OK) snprintf(s->msg, sizeof s->msg, "%s", wrn_last_error());
    /* A training batch stays full (batch statistics see no padding): the images of skipped
     * files are replaced by repeats of the batch's first ones. */
    if (s->st == WRN_OK && L->drop_last)
      for (int j = kept; j < (int)count; j++) {
        const int from = j % kept;
        memcpy(s->images + (size_t)j * L->img_bytes, s->images + (size_t)from * L->img_bytes,
               L->img_bytes);
        s->labels[j] = s->labels[from];
        s->indices[j] = s->indices[from];
      }
    s->count = s->st == WRN_OK && L->drop_last ? (int)count : kept;
    pthread_mutex_lock(&L->mu);
    if (sk.skipped && !L->skips.skipped) L->skips = sk;
    else L->skips.skipped += sk.skipped;
    pthread_mutex_unlock(&L->mu);
    return;
  }
  for (size_t j = 0; j < count; j++) {
    uint32_t idx = L->perm[first + j];
    memcpy(s->images + j * L->img_bytes, L->split.images + (size_t)idx * L->img_bytes,
           L->img_bytes);
    s->labels[j] = L->split.labels[idx];
    s->indices[j] = idx;
  }
  s->count = (int)count;
}

static void *worker(void *arg) {
  wrn_loader *L = arg;
  pthread_mutex_lock(&L->mu);
  while (!L->quit) {
    slot *s = &L->slots[L->next_fill & 1];
    if (L->active && L->next_fill < L->steps && s->state == SLOT_FREE) {
      int64_t step = L->next_fill++;
      uint64_t gen = L->gen;
      s->state = SLOT_FILLING;
      L->busy = 1;
      pthread_mutex_unlock(&L->mu);
      fill_slot(L, s, step);
      pthread_mutex_lock(&L->mu);
      L->busy = 0;
      s->state = gen == L->gen ? SLOT_READY : SLOT_FREE;
      pthread_cond_broadcast(&L->cv_done);
      continue;
    }
    pthread_cond_wait(&L->cv_work, &L->mu);
  }
  pthread_mutex_unlock(&L->mu);
  return NULL;
}

static wrn_status loader_open(wrn_loader **out, const wrn_split *split, int batch, int shuffle,
                              int drop_last, uint64_t seed, const wrn_imagefolder *folder,
                              const wrn_image_pipeline *pipe, int threads);

wrn_status wrn_loader_open(wrn_loader **out, const wrn_split *split, int batch, int shuffle,
                           int drop_last, uint64_t seed) {
  return loader_open(out, split, batch, shuffle, drop_last, seed, NULL, NULL, 0);
}

wrn_status wrn_loader_open_folder(wrn_loader **out, const wrn_imagefolder *f,
                                  const wrn_image_pipeline *p, int threads, int batch,
                                  int shuffle, int drop_last, uint64_t seed) {
  if (!f || !p)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_open_folder: NULL argument");
  if (p->size < 1)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_open_folder: image size %d", p->size);
  wrn_split sp;
  memset(&sp, 0, sizeof sp);
  sp.n = wrn_imagefolder_count(f);
  sp.c = 3, sp.h = sp.w = p->size;
  sp.n_classes = wrn_imagefolder_classes(f);
  return loader_open(out, &sp, batch, shuffle, drop_last, seed, f, p, threads);
}

void wrn_loader_skips(wrn_loader *L, wrn_image_skips *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!L) return;
  pthread_mutex_lock(&L->mu);
  *out = L->skips;
  pthread_mutex_unlock(&L->mu);
}

static wrn_status loader_open(wrn_loader **out, const wrn_split *split, int batch, int shuffle,
                              int drop_last, uint64_t seed, const wrn_imagefolder *folder,
                              const wrn_image_pipeline *pipe, int threads) {
  if (!out) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_open: out is NULL");
  *out = NULL;
  if (!split || (!folder && (!split->images || !split->labels)) || split->n == 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_loader_open: the split is %s", !split ? "NULL" : "empty");
  if (split->n > UINT32_MAX)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_loader_open: the split has %zu images; at most %u are supported",
                    split->n, UINT32_MAX);
  if (split->c <= 0 || split->h <= 0 || split->w <= 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_loader_open: bad image shape %d x %d x %d", split->c, split->h,
                    split->w);
  if (batch <= 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_open: batch size %d must be > 0",
                    batch);
  if (drop_last && split->n < (size_t)batch)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_loader_open: the split has %zu images, fewer than one batch of %d; "
                    "with the last partial batch dropped no batch would be left",
                    split->n, batch);
  wrn_loader *L = calloc(1, sizeof *L);
  if (!L) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_loader_open: no memory");
  L->split = *split;
  L->img_bytes = (size_t)split->c * (size_t)split->h * (size_t)split->w;
  L->batch = batch;
  L->shuffle = shuffle != 0;
  L->drop_last = drop_last != 0;
  L->seed = seed;
  L->steps = (int64_t)(drop_last ? split->n / (size_t)batch
                                 : (split->n + (size_t)batch - 1) / (size_t)batch);
  L->held = -1;
  L->folder = folder;
  if (pipe) L->pipe = *pipe;
  L->threads = threads > 0 ? threads : 1;
  L->perm = malloc(split->n * sizeof *L->perm);
  L->idx = malloc((size_t)batch * sizeof *L->idx);
  int ok = L->perm != NULL && L->idx != NULL;
  for (int i = 0; i < 2 && ok; i++) {
    L->slots[i].images = malloc((size_t)batch * L->img_bytes);
    L->slots[i].labels = malloc((size_t)batch * sizeof(int32_t));
    L->slots[i].indices = malloc((size_t)batch * sizeof(uint32_t));
    ok = L->slots[i].images && L->slots[i].labels && L->slots[i].indices;
  }
  if (!ok) {
    wrn_loader_free(L);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                    "wrn_loader_open: no host memory for two batches of %d images", batch);
  }
  pthread_mutex_init(&L->mu, NULL);
  pthread_cond_init(&L->cv_work, NULL);
  pthread_cond_init(&L->cv_done, NULL);
  L->sync_ready = 1;
  int e = pthread_create(&L->thread, NULL, worker, L);
  if (e != 0) {
    wrn_loader_free(L);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                    "wrn_loader_open: cannot start the loader thread (pthread_create: %s)",
                    strerror(e));
  }
  L->thread_started = 1;
  *out = L;
  return WRN_OK;
}

wrn_status wrn_loader_start_epoch(wrn_loader *L, uint64_t epoch, int64_t first_step) {
  if (!L) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_start_epoch: L is NULL");
  if (first_step < 0 || first_step > L->steps)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_loader_start_epoch: first_step %lld is outside 0..%lld (batches per "
                    "epoch)",
                    (long long)first_step, (long long)L->steps);
  pthread_mutex_lock(&L->mu);
  /* Stop the worker from taking new work and wait for a copy in progress: the order array
   * it reads is about to change. */
  L->active = 0;
  L->gen++;
  while (L->busy) pthread_cond_wait(&L->cv_done, &L->mu);
  if (L->shuffle)
    wrn_shuffle_order(L->perm, L->split.n, L->seed, epoch);
  else
    for (size_t i = 0; i < L->split.n; i++) L->perm[i] = (uint32_t)i;
  L->slots[0].state = L->slots[1].state = SLOT_FREE;
  L->held = -1;
  L->next_fill = L->next_take = first_step;
  L->epoch = epoch;
  L->active = 1;
  pthread_cond_broadcast(&L->cv_work);
  pthread_mutex_unlock(&L->mu);
  return WRN_OK;
}

wrn_status wrn_loader_next(wrn_loader *L, wrn_batch *b) {
  if (!L || !b)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_loader_next: %s is NULL", !L ? "L" : "b");
  memset(b, 0, sizeof *b);
  pthread_mutex_lock(&L->mu);
  if (!L->active) {
    pthread_mutex_unlock(&L->mu);
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "wrn_loader_next: no epoch started; call wrn_loader_start_epoch first");
  }
  if (L->held >= 0) {
    L->slots[L->held].state = SLOT_FREE;
    L->held = -1;
    pthread_cond_broadcast(&L->cv_work);
  }
  if (L->next_take >= L->steps) {
    b->step = L->steps;
    pthread_mutex_unlock(&L->mu);
    return WRN_OK;
  }
  int k = (int)(L->next_take & 1);
  while (L->slots[k].state != SLOT_READY) pthread_cond_wait(&L->cv_done, &L->mu);
  slot *s = &L->slots[k];
  s->state = SLOT_HELD;
  L->held = k;
  L->next_take++;
  if (s->st != WRN_OK) {
    wrn_status st = s->st;
    pthread_mutex_unlock(&L->mu);
    return wrn_fail(st, "%s", s->msg);
  }
  b->images = s->images;
  b->labels = s->labels;
  b->indices = s->indices;
  b->count = s->count;
  b->step = s->step;
  pthread_mutex_unlock(&L->mu);
  return WRN_OK;
}

int64_t wrn_loader_steps(const wrn_loader *L) { return L ? L->steps : 0; }

void wrn_loader_free(wrn_loader *L) {
  if (!L) return;
  if (L->thread_started) {
    pthread_mutex_lock(&L->mu);
    L->quit = 1;
    pthread_cond_broadcast(&L->cv_work);
    pthread_mutex_unlock(&L->mu);
    pthread_join(L->thread, NULL);
  }
  if (L->sync_ready) {
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv_work);
    pthread_cond_destroy(&L->cv_done);
  }
  for (int i = 0; i < 2; i++) {
    free(L->slots[i].images);
    free(L->slots[i].labels);
    free(L->slots[i].indices);
  }
  free(L->perm);
  free(L->idx);
  free(L);
}
