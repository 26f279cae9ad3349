/* Image folders in PyTorch's ImageFolder layout (root/<class>/<image>, classes sorted by
 * name, images sorted by name within a class) and their JPEG decoding with libjpeg-turbo's
 * TurboJPEG API: scaled decoding (1/2, 1/4, 1/8) where the picture is much bigger than the
 * crop needs, greyscale and CMYK converted to RGB the way PIL's convert("RGB") does, and the
 * torchvision pipelines: RandomResizedCrop(size, scale, ratio) + horizontal flip for training,
 * Resize(resize) + CenterCrop(size) for evaluation, resampled with a triangle (bilinear)
 * filter widened when shrinking, as PIL does. */
#include "io_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct wrn_imagefolder {
  char root[4096];
  char **classes;
  int nclasses;
  char **paths; /* relative to root: <class>/<file> */
  int32_t *labels;
  size_t n;
};

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir (not starting with '.') that are folders (want_dirs) or regular files. */
static wrn_status list_dir(const char *dir, int want_dirs, char ***out, size_t *n) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return wrn_fail(WRN_STATUS_IO, "image folder '%s': %s", dir, strerror(errno));
  size_t cap = 0;
  char **v = NULL;
  wrn_status s = WRN_OK;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    char p[8192];
    if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
    struct stat st;
    if (stat(p, &st) != 0) continue;
    if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 64;
      char **nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory listing '%s'", dir);
        break;
      }
      v = nv;
    }
    if (!(v[*n] = strdup(e->d_name))) {
      s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory listing '%s'", dir);
      break;
    }
    (*n)++;
  }
  closedir(d);
  if (s != WRN_OK) {
    for (size_t i = 0; i < *n; i++) free(v[i]);
    free(v);
    *n = 0;
    return s;
  }
  if (*n) qsort(v, *n, sizeof *v, cmp_str);
  *out = v;
  return WRN_OK;
}

void wrn_imagefolder_free(wrn_imagefolder *f) {
  if (!f) return;
  for (int i = 0; i < f->nclasses; i++) free(f->classes[i]);
  for (size_t i = 0; i < f->n; i++) free(f->paths[i]);
  free(f->classes), free(f->paths), free(f->labels);
  free(f);
}

wrn_status wrn_imagefolder_open(wrn_imagefolder **out, const char *dir) {
  if (!out || !dir) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_imagefolder_open: NULL argument");
  *out = NULL;
  wrn_imagefolder *f = calloc(1, sizeof *f);
  if (!f) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  if (snprintf(f->root, sizeof f->root, "%s", dir) >= (int)sizeof f->root) {
    free(f);
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "image folder path is too long: %s", dir);
  }
  size_t nc = 0;
  wrn_status s = list_dir(dir, 1, &f->classes, &nc);
  f->nclasses = (int)nc;
  if (s == WRN_OK && nc == 0)
    s = wrn_fail(WRN_STATUS_IO, "image folder '%s' has no class folders (expected "
                 "%s/<class>/<image>.JPEG, as PyTorch's ImageFolder)", dir, dir);
  size_t cap = 0;
  for (int c = 0; c < f->nclasses && s == WRN_OK; c++) {
    char sub[8192];
    if (snprintf(sub, sizeof sub, "%s/%s", dir, f->classes[c]) >= (int)sizeof sub) {
      s = wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "image folder path too long: %s/%s", dir,
                   f->classes[c]);
      break;
    }
    char **files = NULL;
    size_t nf = 0;
    s = list_dir(sub, 0, &files, &nf);
    for (size_t i = 0; i < nf; i++) {
      if (s == WRN_OK && f->n == cap) {
        cap = cap ? 2 * cap : 1024;
        char **np = realloc(f->paths, cap * sizeof *np);
        int32_t *nl = realloc(f->labels, cap * sizeof *nl);
        if (np) f->paths = np;
        if (nl) f->labels = nl;
        if (!np || !nl) s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory listing '%s'", sub);
      }
      if (s == WRN_OK) {
        size_t len = strlen(f->classes[c]) + strlen(files[i]) + 2;
        char *p = malloc(len);
        if (!p) s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory listing '%s'", sub);
        else {
          snprintf(p, len, "%s/%s", f->classes[c], files[i]);
          f->paths[f->n] = p;
          f->labels[f->n] = c;
          f->n++;
        }
      }
      free(files[i]);
    }
    free(files);
  }
  if (s == WRN_OK && f->n == 0)
    s = wrn_fail(WRN_STATUS_IO, "image folder '%s': its %d class folders hold no files", dir,
                 f->nclasses);
  if (s != WRN_OK) {
    wrn_imagefolder_free(f);
    return s;
  }
  *out = f;
  return WRN_OK;
}

size_t wrn_imagefolder_count(const wrn_imagefolder *f) { return f ? f->n : 0; }
int wrn_imagefolder_classes(const wrn_imagefolder *f) { return f ? f->nclasses : 0; }
const char *wrn_imagefolder_class_name(const wrn_imagefolder *f, int i) {
  return f && i >= 0 && i < f->nclasses ? f->classes[i] : NULL;
}
const char *wrn_imagefolder_path(const wrn_imagefolder *f, size_t i) {
  return f && i < f->n ? f->paths[i] : NULL;
}
int32_t wrn_imagefolder_label(const wrn_imagefolder *f, size_t i) {
  return f && i < f->n ? f->labels[i] : -1;
}

wrn_image_pipeline wrn_image_pipeline_default(int train) {
  wrn_image_pipeline p = {train, 224, 256, 0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, 0};
  return p;
}

/* ---------------------------------------------------------------- crops */

static double philox_unit(uint64_t seed, uint64_t epoch, uint64_t index, uint32_t draw) {
  uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)epoch, draw};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
  wrn_philox4x32(ctr, key, out);
  uint64_t a = out[0], b = out[1];
  return ((double)((a << 21) ^ b) + 0.5) / 9007199254740992.0;
}

void wrn_image_crop(const wrn_image_pipeline *p, int w, int h, uint64_t epoch, uint64_t index,
                    wrn_image_box *box) {
  memset(box, 0, sizeof *box);
  if (!p->train) {
    /* Resize the shorter side to `resize`, then the centre `size` x `size`: in the original's
     * coordinates, a square of side short * size / resize at the centre. */
    double side = (double)(w < h ? w : h) * p->size / p->resize;
    box->cw = box->ch = side;
    box->x = (w - side) / 2;
    box->y = (h - side) / 2;
    return;
  }
  /* torchvision's RandomResizedCrop.get_params: ten tries at an area fraction in [scale_lo,
   * scale_hi] and a log-uniform aspect ratio, else the centre crop of the clamped ratio. */
  const double area = (double)w * h;
  uint32_t draw = 0;
  for (int t = 0; t < 10; t++) {
    double s = p->scale_lo + (p->scale_hi - p->scale_lo) * philox_unit(p->seed, epoch, index, draw++);
    double lr = log(p->ratio_lo) + (log(p->ratio_hi) - log(p->ratio_lo)) *
                                      philox_unit(p->seed, epoch, index, draw++);
    double r = exp(lr), target = s * area;
    double cw = round(sqrt(target * r)), ch = round(sqrt(target / r));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      box->cw = cw, box->ch = ch;
      box->x = floor(philox_unit(p->seed, epoch, index, 100 + (uint32_t)t) * (w - cw + 1));
      box->y = floor(philox_unit(p->seed, epoch, index, 200 + (uint32_t)t) * (h - ch + 1));
      box->flip = philox_unit(p->seed, epoch, index, 300) < 0.5;
      return;
    }
  }
  double ratio = (double)w / h, cw = w, ch = h;
  if (ratio < p->ratio_lo) ch = round(w / p->ratio_lo);
  else if (ratio > p->ratio_hi) cw = round(h * p->ratio_hi);
  box->cw = cw, box->ch = ch;
  box->x = (w - cw) / 2, box->y = (h - ch) / 2;
  box->flip = philox_unit(p->seed, epoch, index, 300) < 0.5;
}

/* One axis of a resampling from src (n_in samples at stride s_in) over [x0, x0 + len) to n_out
 * outputs: triangle weights of support max(1, len / n_out) (PIL's bilinear with its
 * antialiasing when shrinking). */
typedef struct taps {
  int *first, *count;
  float *w;
  int maxk;
} taps;

static int make_taps(taps *t, int n_in, double x0, double len, int n_out) {
  double scale = len / n_out, support = scale > 1 ? scale : 1;
  t->maxk = (int)ceil(support) * 2 + 1;
  t->first = malloc((size_t)n_out * sizeof *t->first);
  t->count = malloc((size_t)n_out * sizeof *t->count);
  t->w = malloc((size_t)n_out * (size_t)t->maxk * sizeof *t->w);
  if (!t->first || !t->count || !t->w) return 0;
  for (int o = 0; o < n_out; o++) {
    double c = x0 + (o + 0.5) * scale; /* centre in input coordinates */
    int lo = (int)floor(c - support), hi = (int)ceil(c + support);
    if (lo < 0) lo = 0;
    if (hi > n_in) hi = n_in;
    if (hi - lo > t->maxk) hi = lo + t->maxk;
    double sum = 0;
    int k = 0;
    for (int i = lo; i < hi; i++, k++) {
      double d = fabs((i + 0.5 - c) / support);
      double wt = d < 1 ? 1 - d : 0;
      t->w[(size_t)o * t->maxk + k] = (float)wt;
      sum += wt;
    }
    if (sum <= 0) { /* a crop edge between samples: take the nearest */
      int i = (int)floor(c);
      if (i < 0) i = 0;
      if (i >= n_in) i = n_in - 1;
      lo = i, k = 1, sum = 1;
      t->w[(size_t)o * t->maxk] = 1;
    }
    for (int j = 0; j < k; j++) t->w[(size_t)o * t->maxk + j] /= (float)sum;
    t->first[o] = lo;
    t->count[o] = k;
  }
  return 1;
}

static void free_taps(taps *t) { free(t->first), free(t->count), free(t->w); }

/* rgb[h][w][3] over box -> out[3][size][size], flipped when box->flip. */
static wrn_status resample(const uint8_t *rgb, int w, int h, const wrn_image_box *box,
                           double sx, int size, uint8_t *out) {
  taps tx = {0}, ty = {0};
  float *mid = malloc((size_t)h * size * 3 * sizeof *mid);
  wrn_status s = WRN_OK;
  if (!mid || !make_taps(&tx, w, box->x * sx, box->cw * sx, size) ||
      !make_taps(&ty, h, box->y * sx, box->ch * sx, size)) {
    s = wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory resizing an image");
    goto done;
  }
  /* Horizontal pass over the rows the vertical taps reach. */
  int rlo = ty.first[0], rhi = ty.first[size - 1] + ty.count[size - 1];
  for (int r = rlo; r < rhi; r++)
    for (int o = 0; o < size; o++) {
      float acc[3] = {0, 0, 0};
      const float *wt = tx.w + (size_t)o * tx.maxk;
      const uint8_t *px = rgb + ((size_t)r * w + tx.first[o]) * 3;
      for (int k = 0; k < tx.count[o]; k++)
        for (int c = 0; c < 3; c++) acc[c] += wt[k] * px[3 * k + c];
      for (int c = 0; c < 3; c++) mid[((size_t)r * size + o) * 3 + c] = acc[c];
    }
  for (int o = 0; o < size; o++) {
    const float *wt = ty.w + (size_t)o * ty.maxk;
    for (int x = 0; x < size; x++) {
      float acc[3] = {0, 0, 0};
      for (int k = 0; k < ty.count[o]; k++)
        for (int c = 0; c < 3; c++) acc[c] += wt[k] * mid[((size_t)(ty.first[o] + k) * size + x) * 3 + c];
      int ox = box->flip ? size - 1 - x : x;
      for (int c = 0; c < 3; c++) {
        float v = acc[c] + 0.5f;
        out[(size_t)c * size * size + (size_t)o * size + ox] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
      }
    }
  }
done:
  free(mid);
  free_taps(&tx), free_taps(&ty);
  return s;
}

/* ---------------------------------------------------------------- decoding */

#ifndef WRN_HAVE_TURBOJPEG

struct wrn_jpeg {
  int unused;
};
int wrn_jpeg_available(void) { return 0; }
wrn_status wrn_jpeg_new(wrn_jpeg **out) {
  *out = NULL;
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "this wrn was built without libjpeg-turbo "
                  "(Debian: libturbojpeg0-dev), which decodes the images; rebuild with it");
}
void wrn_jpeg_free(wrn_jpeg *j) { (void)j; }
wrn_status wrn_jpeg_load(wrn_jpeg *j, const char *path, const wrn_image_pipeline *p,
                         uint64_t epoch, uint64_t index, uint8_t *out) {
  (void)j, (void)path, (void)p, (void)epoch, (void)index, (void)out;
  return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "this wrn was built without libjpeg-turbo");
}

#else

#include <turbojpeg.h>

struct wrn_jpeg {
  tjhandle tj;
  unsigned char *file, *pix;
  size_t file_cap, pix_cap;
};

int wrn_jpeg_available(void) { return 1; }

wrn_status wrn_jpeg_new(wrn_jpeg **out) {
  wrn_jpeg *j = calloc(1, sizeof *j);
  if (!j) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  if (!(j->tj = tjInitDecompress())) {
    free(j);
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "libjpeg-turbo: %s", tjGetErrorStr2(NULL));
  }
  *out = j;
  return WRN_OK;
}

void wrn_jpeg_free(wrn_jpeg *j) {
  if (!j) return;
  if (j->tj) tjDestroy(j->tj);
  free(j->file), free(j->pix);
  free(j);
}

/* libjpeg-turbo 2.1 leaves a handle whose tjDecompressHeader3 failed (a file cut inside its
 * header) half-way through a header: the next tjDecompressHeader3 on it returns success
 * without setting the size, whatever the file. After any failure the handle is replaced;
 * NULL when that fails, and the next load tries again. */
static void reset_handle(wrn_jpeg *j) {
  if (j->tj) tjDestroy(j->tj);
  j->tj = tjInitDecompress();
}

static int grow(unsigned char **b, size_t *cap, size_t need) {
  if (need <= *cap) return 1;
  unsigned char *n = realloc(*b, need);
  if (!n) return 0;
  *b = n, *cap = need;
  return 1;
}

wrn_status wrn_jpeg_load(wrn_jpeg *j, const char *path, const wrn_image_pipeline *p,
                         uint64_t epoch, uint64_t index, uint8_t *out) {
  if (!j->tj && !(j->tj = tjInitDecompress()))
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "libjpeg-turbo: %s", tjGetErrorStr2(NULL));
  FILE *fp = fopen(path, "rb");
  if (!fp) return wrn_fail(WRN_STATUS_IO, "'%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || st.st_size <= 0 || st.st_size > (1L << 30)) {
    fclose(fp);
    return wrn_fail(WRN_STATUS_FORMAT, "'%s': empty or over 1 GiB", path);
  }
  size_t size = (size_t)st.st_size;
  if (!grow(&j->file, &j->file_cap, size)) {
    fclose(fp);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory reading '%s'", path);
  }
  size_t got = fread(j->file, 1, size, fp);
  fclose(fp);
  if (got != size) return wrn_fail(WRN_STATUS_IO, "'%s': read %zu of %zu bytes", path, got, size);
  int w = 0, h = 0, subsamp = -1, cs = -1;
  if (tjDecompressHeader3(j->tj, j->file, (unsigned long)size, &w, &h, &subsamp, &cs) != 0) {
    wrn_status s = wrn_fail(WRN_STATUS_FORMAT, "'%s' is not a JPEG file libjpeg-turbo can "
                            "read: %s", path, tjGetErrorStr2(j->tj));
    reset_handle(j);
    return s;
  }
  if (w < 1 || h < 1) {
    reset_handle(j);
    return wrn_fail(WRN_STATUS_FORMAT, "'%s': libjpeg-turbo read no picture size from its "
                    "header", path);
  }
  wrn_image_box box;
  wrn_image_crop(p, w, h, epoch, index, &box);
  /* The smallest decode (1/8 .. 1) that keeps the crop at least `size` pixels on each side. */
  int nsf = 0;
  tjscalingfactor *sf = tjGetScalingFactors(&nsf);
  int bw = w, bh = h;
  double scale = 1;
  for (int i = 0; sf && i < nsf; i++) {
    if (sf[i].num > sf[i].denom || sf[i].num != 1) continue;
    double r = (double)sf[i].num / sf[i].denom;
    if (r < scale && box.cw * r >= p->size && box.ch * r >= p->size) {
      scale = r;
      bw = TJSCALED(w, sf[i]);
      bh = TJSCALED(h, sf[i]);
    }
  }
  const int cmyk = cs == TJCS_YCCK || cs == TJCS_CMYK;
  const int ps = cmyk ? 4 : 3;
  if (!grow(&j->pix, &j->pix_cap, (size_t)bw * bh * ps))
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory decoding '%s' (%dx%d)", path, w, h);
  /* Warnings (a truncated file: libjpeg fills the rest grey) count as failures. */
  if (tjDecompress2(j->tj, j->file, (unsigned long)size, j->pix, bw, 0, bh,
                    cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_STOPONWARNING) != 0) {
    wrn_status s = wrn_fail(WRN_STATUS_FORMAT, "'%s': %s", path, tjGetErrorStr2(j->tj));
    reset_handle(j);
    return s;
  }
  if (cmyk) {
    /* Adobe CMYK JPEGs store inverted values; PIL reads them as CMYK;I and converts with
     * R = 255 - K - C (clipped): on the stored values, R = c + k - 255. */
    for (size_t i = 0; i < (size_t)bw * bh; i++) {
      const unsigned char *q = j->pix + 4 * i;
      for (int c = 0; c < 3; c++) {
        int v = q[c] + q[3] - 255;
        j->pix[3 * i + (size_t)c] = (unsigned char)(v < 0 ? 0 : v);
      }
    }
  }
  return resample(j->pix, bw, bh, &box, (double)bw / w, p->size, out);
}

#endif

/* ---------------------------------------------------------------- batches */

#include <pthread.h>

typedef struct batch_job {
  const wrn_imagefolder *f;
  const size_t *idx;
  int n;
  const wrn_image_pipeline *p;
  uint64_t epoch;
  uint8_t *images;
  char *ok; /* [n] */
  int next; /* the next position to decode, under mu */
  pthread_mutex_t mu;
  size_t first_bad; /* lowest position that failed, n when none */
  char first_error[1024];
  wrn_status fatal; /* not a bad file: out of memory, no decoder */
} batch_job;

static void *batch_worker(void *arg) {
  batch_job *b = arg;
  wrn_jpeg *j = NULL;
  wrn_status s = wrn_jpeg_new(&j);
  const size_t per = (size_t)3 * b->p->size * b->p->size;
  char path[8192];
  for (;;) {
    pthread_mutex_lock(&b->mu);
    if (s != WRN_OK && b->fatal == WRN_OK) {
      b->fatal = s;
      snprintf(b->first_error, sizeof b->first_error, "%s", wrn_last_error());
    }
    int i = s == WRN_OK && b->fatal == WRN_OK && b->next < b->n ? b->next++ : -1;
    pthread_mutex_unlock(&b->mu);
    if (i < 0) break;
    size_t k = b->idx[i];
    snprintf(path, sizeof path, "%s/%s", b->f->root, b->f->paths[k]);
    wrn_status r = wrn_jpeg_load(j, path, b->p, b->epoch, k, b->images + (size_t)i * per);
    b->ok[i] = r == WRN_OK;
    if (r == WRN_STATUS_OUT_OF_MEMORY) s = r;
    if (r != WRN_OK && r != WRN_STATUS_OUT_OF_MEMORY) {
      pthread_mutex_lock(&b->mu);
      if ((size_t)i < b->first_bad) {
        b->first_bad = (size_t)i;
        snprintf(b->first_error, sizeof b->first_error, "%s", wrn_last_error());
      }
      pthread_mutex_unlock(&b->mu);
    }
  }
  wrn_jpeg_free(j);
  return NULL;
}

wrn_status wrn_imagefolder_load(const wrn_imagefolder *f, const size_t *idx, int n,
                                const wrn_image_pipeline *p, uint64_t epoch, int threads,
                                uint8_t *images, int32_t *labels, uint32_t *kept_index,
                                int *kept, wrn_image_skips *skips) {
  if (!f || !idx || !p || !images || !labels || !kept || n < 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_imagefolder_load: NULL argument");
  if (p->size < 1 || (!p->train && p->resize < p->size))
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "image pipeline: size %d, resize %d", p->size,
                    p->resize);
  for (int i = 0; i < n; i++)
    if (idx[i] >= f->n)
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "image %zu of a folder of %zu", idx[i], f->n);
  *kept = 0;
  if (n == 0) return WRN_OK;
  batch_job b;
  memset(&b, 0, sizeof b);
  b.f = f, b.idx = idx, b.n = n, b.p = p, b.epoch = epoch, b.images = images;
  b.first_bad = (size_t)n;
  b.ok = calloc((size_t)n, 1);
  if (!b.ok) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  pthread_mutex_init(&b.mu, NULL);
  if (threads < 1) threads = 1;
  if (threads > n) threads = n;
  pthread_t *th = malloc((size_t)threads * sizeof *th);
  int started = 0;
  if (th)
    for (; started < threads; started++)
      if (pthread_create(&th[started], NULL, batch_worker, &b) != 0) break;
  if (started == 0) batch_worker(&b); /* no threads: decode here */
  for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
  free(th);
  pthread_mutex_destroy(&b.mu);
  if (b.fatal != WRN_OK) {
    free(b.ok);
    return wrn_fail(b.fatal, "%s", b.first_error);
  }
  /* Keep the decoded images in order, closing the gaps of skipped files. */
  const size_t per = (size_t)3 * p->size * p->size;
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (!b.ok[i]) continue;
    if (m != i) memmove(images + (size_t)m * per, images + (size_t)i * per, per);
    if (kept_index) kept_index[m] = (uint32_t)idx[i];
    labels[m++] = f->labels[idx[i]];
  }
  if (skips && m < n) {
    if (skips->skipped == 0) {
      int len = snprintf(skips->first_path, sizeof skips->first_path, "%s/%s", f->root,
                         f->paths[idx[b.first_bad]]);
      if (len < 0 || (size_t)len >= sizeof skips->first_path) /* cut: say so at its end */
        memcpy(skips->first_path + sizeof skips->first_path - 4, "...", 4);
      snprintf(skips->first_error, sizeof skips->first_error, "%s", b.first_error);
    }
    skips->skipped += (size_t)(n - m);
  }
  free(b.ok);
  *kept = m;
  return WRN_OK;
}
