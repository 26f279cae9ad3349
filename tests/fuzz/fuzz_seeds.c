/* Writes the seed corpora of the fuzz targets: fuzz_seeds OUT_DIR CIFAR10_SAMPLE_DIR makes
 * OUT_DIR/<target>/seed-<n>, small valid inputs of each reader (a checkpoint-like
 * safetensors file, the first records of the CIFAR-10 sample and made-up CIFAR-100 records,
 * resume metadata, log lines, a tuner store with right checksums; when built with libmatio,
 * small SVHN .mat files; with libjpeg-turbo, small JPEGs). */
#include "internal.h"
#include "wrn_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef WRN_HAVE_MATIO
#include <matio.h>
#endif
#ifdef WRN_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

static const char *out_dir;

static void put(const char *target, int n, const void *data, size_t len) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", out_dir, target);
  mkdir(p, 0755);
  snprintf(p, sizeof p, "%s/%s/seed-%d", out_dir, target, n);
  FILE *f = fopen(p, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
    fprintf(stderr, "fuzz_seeds: cannot write %s\n", p);
    exit(1);
  }
}

static void put_text(const char *target, int n, const char *text) {
  put(target, n, text, strlen(text));
}

/* The whole file at path, at most max bytes; *len its size. */
static unsigned char *slurp(const char *path, size_t max, size_t *len) {
  FILE *f = fopen(path, "rb");
  unsigned char *b = malloc(max ? max : 1);
  if (!f || !b) {
    fprintf(stderr, "fuzz_seeds: cannot read %s\n", path);
    exit(1);
  }
  *len = fread(b, 1, max, f);
  fclose(f);
  return b;
}

static const char *log_line =
    "{\"model\":\"wrn-10-1\",\"classes\":10,\"epochs\":3,\"base_lr\":0.1,\"epoch_step\":\"2\","
    "\"epoch\":1,\"lr\":0.1,\"loss\":2.25,\"train_loss\":2.25,\"train_acc\":15.625,"
    "\"test_loss\":2.5,\"test_acc\":12.5,\"train_time\":0.5,\"test_time\":0.125,"
    "\"n_parameters\":78042}";

static void safetensors_seeds(void) {
  wrn_st_writer *w;
  float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
  double b[2] = {0.25, -8};
  int64_t sa[2] = {2, 3}, sb[1] = {2};
  if (wrn_st_writer_new(&w) != WRN_OK || wrn_st_writer_add(w, "conv0.weight", WRN_ST_F32, 2, sa, a) ||
      wrn_st_writer_add(w, "momentum.conv0.weight", WRN_ST_F32, 2, sa, a) ||
      wrn_st_writer_add(w, "bn.running_mean", WRN_ST_F64, 1, sb, b) ||
      wrn_st_writer_meta(w, "--model", "wrn-10-1") || wrn_st_writer_meta(w, "--epochs", "3") ||
      wrn_st_writer_meta(w, "format", "wrn-checkpoint-1") || wrn_st_writer_meta(w, "epoch", "1") ||
      wrn_st_writer_meta(w, "step_in_epoch", "0") || wrn_st_writer_meta(w, "partial_seen", "0") ||
      wrn_st_writer_meta(w, "best_test_acc", "12.5") || wrn_st_writer_meta(w, "log_line", log_line)) {
    fprintf(stderr, "fuzz_seeds: %s\n", wrn_last_error());
    exit(1);
  }
  char p[4096];
  snprintf(p, sizeof p, "%s/seed.safetensors", out_dir);
  if (wrn_st_writer_write(w, p) != WRN_OK) {
    fprintf(stderr, "fuzz_seeds: %s\n", wrn_last_error());
    exit(1);
  }
  wrn_st_writer_free(w);
  size_t len;
  unsigned char *d = slurp(p, 1 << 20, &len);
  put("safetensors", 1, d, len);
  put("json", 3, d + 8, len > 8 + 400 ? 400 : len - 8); /* the header's JSON, cut or whole */
  free(d);
  remove(p);
  put_text("safetensors", 2, "\x02\0\0\0\0\0\0\0{}");
}

static void cifar_seeds(const char *sample) {
  char p[4096];
  size_t lt, le;
  snprintf(p, sizeof p, "%s/data_batch_1.bin", sample);
  unsigned char *tr = slurp(p, 2 * 3073, &lt);
  snprintf(p, sizeof p, "%s/test_batch.bin", sample);
  unsigned char *te = slurp(p, 3073, &le);
  /* CIFAR-10: byte 0 = 2 training records << 1. */
  size_t n = 1 + lt + le;
  unsigned char *s = malloc(n + 3 * 3074);
  if (!s) exit(1);
  s[0] = 2 << 1;
  memcpy(s + 1, tr, lt);
  memcpy(s + 1 + lt, te, le);
  put("cifar", 1, s, n);
  /* CIFAR-100: coarse and fine labels, then the same pixels. */
  s[0] = (2 << 1) | 1;
  for (int r = 0; r < 3; r++) {
    unsigned char *rec = s + 1 + (size_t)r * 3074;
    rec[0] = (unsigned char)(3 + r);
    rec[1] = (unsigned char)(40 + r);
    memcpy(rec + 2, (r < 2 ? tr + (size_t)r * 3073 : te) + 1, 3072);
  }
  put("cifar", 2, s, 1 + 3 * 3074);
  free(s), free(tr), free(te);
}

static void resume_seeds(void) {
  char t[4096];
  snprintf(t, sizeof t,
           "format=wrn-checkpoint-1\nepoch=3\nstep_in_epoch=5\nglobal_step=1175\n"
           "partial_seen=640\npartial_correct=100\npartial_loss_sum=1234.5\n"
           "partial_train_time=12.25\nbest_test_acc=45.5\n--model=wrn-28-10\n--lr=0.1\n"
           "--epoch-step=60,120,160\n--wd=5e-4\n--seed=18446744073709551615\n--augment=on\n"
           "--dataset=cifar10\n--labels=fine\n--data=/data/cifar10\nlog_line=%s\n",
           log_line);
  put_text("resume", 1, t);
  snprintf(t, sizeof t, "%s\n%s\n{\"epoch\":2", log_line, log_line);
  put_text("resume", 2, t);
  put_text("resume", 3, "epoch=0\nstep_in_epoch=0\n--model=WRN-16-8\n--dropout=.3\n");
  put_text("json", 1, log_line);
  put_text("json", 2, "[1,-0.5e+3,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\",{\"a\":{}}]");
}

static void tune_seeds(void) {
  char t[4096];
  size_t len = (size_t)snprintf(t, sizeof t, "# wrn tuner 1 platform=Portable Computing "
                                             "Language|device=cpu\n");
  const char *entries[3][3] = {{"conv|fwd|32x16x32x32|k3s1p1|f32", "winograd4", "1.2500"},
                               {"gemm|nn|256x256x256|f32", "clblast", "0.5000"},
                               {"conv|bwd_data|128x160x16x16|k3s1p1|f32",
                                "implicit:BM=64,BN=64,BK=16", "12.0000"}};
  for (int i = 0; i < 3; i++) {
    uint64_t h = wrn_hash64(WRN_HASH_INIT, entries[i][0], strlen(entries[i][0]));
    h = wrn_hash64(h, "\t", 1);
    h = wrn_hash64(h, entries[i][1], strlen(entries[i][1]));
    h = wrn_hash64(h, "\t", 1);
    h = wrn_hash64(h, entries[i][2], strlen(entries[i][2]));
    len += (size_t)snprintf(t + len, sizeof t - len, "%s\t%s\t%s\t%016llx\n", entries[i][0],
                            entries[i][1], entries[i][2], (unsigned long long)h);
  }
  put("tune", 1, t, len);
  put_text("tune", 2, "# wrn tuner 1 x\nkey\tvalue\t1.0\t0000000000000000\n");
}

/* fuzz_ranks: w-1, B-w (2 bytes), min_b, then the speeds. */
static void ranks_seeds(void) {
  unsigned char t[4 + 4 * sizeof(double)];
  const double even[2] = {455.0, 376.0}, odd[4] = {92.5, 0.0, -1.0, 1e308};
  t[0] = 1, t[1] = 126, t[2] = 0, t[3] = 8;
  memcpy(t + 4, even, sizeof even);
  put("ranks", 1, t, 4 + sizeof even);
  t[0] = 3, t[1] = 252, t[2] = 0, t[3] = 1;
  memcpy(t + 4, odd, sizeof odd);
  put("ranks", 2, t, 4 + sizeof odd);
}

#ifdef WRN_HAVE_MATIO
/* An SVHN-like MATLAB v5 file of n images (X 32x32x3xn uint8, y nx1 of class yclass) at
 * path; labels 1..10. */
static void write_mat(const char *path, size_t n, enum matio_classes yclass,
                      enum matio_compression comp) {
  mat_t *m = Mat_CreateVer(path, NULL, MAT_FT_MAT5);
  size_t xd[4] = {32, 32, 3, n}, yd[2] = {n, 1};
  uint8_t *x = malloc(n * 3072);
  double yv[8];
  uint8_t yb[8];
  if (!m || !x || n > 8) {
    fprintf(stderr, "fuzz_seeds: cannot create %s\n", path);
    exit(1);
  }
  for (size_t i = 0; i < n * 3072; i++) x[i] = (uint8_t)(i * 7 + i / 3072);
  for (size_t i = 0; i < n; i++) yv[i] = (double)(i % 10 + 1), yb[i] = (uint8_t)(i % 10 + 1);
  matvar_t *vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, xd, x, 0);
  matvar_t *vy = yclass == MAT_C_UINT8
                     ? Mat_VarCreate("y", MAT_C_UINT8, MAT_T_UINT8, 2, yd, yb, 0)
                     : Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, yd, yv, 0);
  if (!vx || !vy || Mat_VarWrite(m, vx, comp) != 0 || Mat_VarWrite(m, vy, comp) != 0) {
    fprintf(stderr, "fuzz_seeds: libmatio cannot write %s\n", path);
    exit(1);
  }
  Mat_VarFree(vx), Mat_VarFree(vy);
  Mat_Close(m);
  free(x);
}

/* Each seed: the options byte of fuzz_svhn, then the file. */
static void svhn_seeds(void) {
  char p[4096];
  snprintf(p, sizeof p, "%s/seed.mat", out_dir);
  const struct {
    size_t n;
    enum matio_classes y;
    enum matio_compression comp;
    uint8_t opts;
    size_t cut; /* keep this many bytes of the file when nonzero */
  } v[] = {{2, MAT_C_DOUBLE, MAT_COMPRESSION_NONE, 0x00, 0},
           {2, MAT_C_DOUBLE, MAT_COMPRESSION_ZLIB, 0x13, 0},
           {3, MAT_C_UINT8, MAT_COMPRESSION_ZLIB, 0x22, 0},
           {1, MAT_C_UINT8, MAT_COMPRESSION_NONE, 0x01, 0},
           {2, MAT_C_DOUBLE, MAT_COMPRESSION_NONE, 0x00, 3000}}; /* truncated inside X */
  for (int i = 0; i < (int)(sizeof v / sizeof v[0]); i++) {
    remove(p);
    write_mat(p, v[i].n, v[i].y, v[i].comp);
    size_t len;
    unsigned char *d = slurp(p, 1 << 16, &len);
    if (v[i].cut && v[i].cut < len) len = v[i].cut;
    unsigned char *s = malloc(len + 1);
    if (!s) exit(1);
    s[0] = v[i].opts;
    memcpy(s + 1, d, len);
    put("svhn", i + 1, s, len + 1);
    free(s), free(d);
  }
  remove(p);
}
#endif

#ifdef WRN_HAVE_TURBOJPEG
/* Each seed: the index byte of fuzz_jpeg, then a small JPEG (pixel format pf, w x h) encoded
 * with libjpeg-turbo; the first `keep` bytes only when keep > 0. */
static void jpeg_seed(int n, int w, int h, int pf, int subsamp, int flags, size_t keep) {
  const int ps = tjPixelSize[pf];
  unsigned char *px = malloc((size_t)w * h * (size_t)ps), *jpg = NULL;
  unsigned long len = 0;
  tjhandle tj = tjInitCompress();
  if (!px || !tj) exit(1);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < ps; c++)
        px[((size_t)y * w + x) * (size_t)ps + (size_t)c] = (unsigned char)(x * 9 + y * 5 + c * 60);
  if (tjCompress2(tj, px, w, 0, h, pf, &jpg, &len, subsamp, 90, flags) != 0) {
    fprintf(stderr, "fuzz_seeds: tjCompress2: %s\n", tjGetErrorStr2(tj));
    exit(1);
  }
  size_t k = keep && keep < len ? keep : (size_t)len;
  unsigned char *s = malloc(k + 1);
  if (!s) exit(1);
  s[0] = (unsigned char)(n * 37);
  memcpy(s + 1, jpg, k);
  put("jpeg", n, s, k + 1);
  free(s), free(px);
  tjFree(jpg);
  tjDestroy(tj);
}

static void jpeg_seeds(void) {
  jpeg_seed(1, 24, 20, TJPF_RGB, TJSAMP_420, 0, 0);
  jpeg_seed(2, 17, 33, TJPF_RGB, TJSAMP_444, 0, 0);
  jpeg_seed(3, 20, 20, TJPF_GRAY, TJSAMP_GRAY, 0, 0);
  jpeg_seed(4, 16, 24, TJPF_CMYK, TJSAMP_444, 0, 0);
  jpeg_seed(5, 40, 30, TJPF_RGB, TJSAMP_422, TJFLAG_PROGRESSIVE, 0);
  jpeg_seed(6, 64, 48, TJPF_RGB, TJSAMP_420, 0, 200); /* truncated */
}
#endif

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fuzz_seeds OUT_DIR CIFAR10_SAMPLE_DIR\n");
    return 2;
  }
  out_dir = argv[1];
  mkdir(out_dir, 0755);
  safetensors_seeds();
  cifar_seeds(argv[2]);
  resume_seeds();
  tune_seeds();
  ranks_seeds();
#ifdef WRN_HAVE_MATIO
  svhn_seeds();
#endif
#ifdef WRN_HAVE_TURBOJPEG
  jpeg_seeds();
#endif
  return 0;
}
