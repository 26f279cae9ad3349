/* Kernel programs: built once per context from the embedded sources (or from the folder in
 * WRN_CL_DIR), with binaries cached on disk. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

struct wrn_cl_source {
  const char *name;
  const char *src;
  size_t len;
};
extern const char *const wrn_cl_common_src;
extern const size_t wrn_cl_common_len;
extern const struct wrn_cl_source wrn_cl_sources[];
extern const int wrn_cl_source_count;

int wrn_program_index(const char *name) {
  for (int i = 0; i < wrn_cl_source_count; i++)
    if (!strcmp(wrn_cl_sources[i].name, name)) return i;
  return -1;
}
const char *wrn_program_name(int i) {
  return (i >= 0 && i < wrn_cl_source_count) ? wrn_cl_sources[i].name : "?";
}

uint64_t wrn_hash64(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* Reads a whole file; NULL when it cannot. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
      if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
      } else {
        buf[n] = '\0';
        *len = (size_t)n;
      }
    }
  }
  fclose(f);
  return buf;
}

/* The full source of program i: common.h, then the op file. Caller frees. */
static wrn_status program_source(int i, char **out, size_t *out_len) {
  const char *dir = getenv("WRN_CL_DIR");
  char *common = NULL, *body = NULL;
  size_t clen, blen;
  const char *cs = wrn_cl_common_src, *bs = wrn_cl_sources[i].src;
  clen = wrn_cl_common_len;
  blen = wrn_cl_sources[i].len;
  if (dir && dir[0]) {
    char path[4096];
    snprintf(path, sizeof path, "%s/common.h", dir);
    if (!(common = slurp(path, &clen)))
      return wrn_fail(WRN_STATUS_IO, "WRN_CL_DIR is set but %s cannot be read: %s", path,
                      strerror(errno));
    snprintf(path, sizeof path, "%s/%s.cl", dir, wrn_cl_sources[i].name);
    if (!(body = slurp(path, &blen))) {
      free(common);
      return wrn_fail(WRN_STATUS_IO, "WRN_CL_DIR is set but %s cannot be read: %s", path,
                      strerror(errno));
    }
    cs = common;
    bs = body;
  }
  char line[256];
  int ll = snprintf(line, sizeof line, "\n#line 1 \"%s.cl\"\n", wrn_cl_sources[i].name);
  size_t n = clen + (size_t)ll + blen;
  char *s = malloc(n + 1);
  if (!s) {
    free(common);
    free(body);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  }
  memcpy(s, cs, clen);
  memcpy(s + clen, line, (size_t)ll);
  memcpy(s + clen + (size_t)ll, bs, blen);
  s[n] = '\0';
  free(common);
  free(body);
  *out = s;
  *out_len = n;
  return WRN_OK;
}

/* ---------------------------------------------------------------- on-disk cache
 * File: "WRNBIN01" | u64 key | u64 ident_len | ident | u64 bin_len | u64 bin_hash | bin.
 * ident spells out what the key hashes (options, platform, device, driver) so that a hash
 * collision or a file from another machine is refused, not trusted. */

static const char cache_magic[8] = {'W', 'R', 'N', 'B', 'I', 'N', '0', '1'};

int wrn_cache_dir(char *out, size_t n) {
  const char *x = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  int len;
  if (x && x[0]) len = snprintf(out, n, "%s/wrn", x);
  else if (home && home[0]) len = snprintf(out, n, "%s/.cache/wrn", home);
  else return -1;
  if (len < 0 || (size_t)len >= n || (size_t)len >= 3700) return -1; /* never a cut path */
  /* Create both levels; an existing folder is fine. */
  char parent[4096];
  snprintf(parent, sizeof parent, "%s", out);
  char *slash = strrchr(parent, '/');
  if (slash) {
    *slash = '\0';
    mkdir(parent, 0755);
  }
  if (mkdir(out, 0755) != 0 && errno != EEXIST) return -1;
  return 0;
}

static cl_program cache_load(wrn_ctx *ctx, const char *path, uint64_t key, const char *ident) {
  size_t len = 0;
  char *buf = slurp(path, &len);
  if (!buf) return NULL;
  cl_program prog = NULL;
  size_t il = strlen(ident);
  size_t p = 0;
  uint64_t v, blen, bhash;
  if (len < 8 + 8 * 4 || memcmp(buf, cache_magic, 8)) goto done;
  p = 8;
  memcpy(&v, buf + p, 8);
  p += 8;
  if (v != key) goto done;
  memcpy(&v, buf + p, 8);
  p += 8;
  if (v != il || len - p < il + 16 || memcmp(buf + p, ident, il)) goto done;
  p += il;
  memcpy(&blen, buf + p, 8);
  memcpy(&bhash, buf + p + 8, 8);
  p += 16;
  if (blen != len - p || blen == 0) goto done;
  if (wrn_hash64(WRN_HASH_INIT, buf + p, blen) != bhash) goto done;
  const unsigned char *bin = (const unsigned char *)buf + p;
  size_t bl = (size_t)blen;
  cl_int bst, e;
  prog = clCreateProgramWithBinary(ctx->cl, 1, &ctx->dev.device, &bl, &bin, &bst, &e);
  if (e != CL_SUCCESS || bst != CL_SUCCESS) {
    if (prog) clReleaseProgram(prog);
    prog = NULL;
    goto done;
  }
  if (clBuildProgram(prog, 1, &ctx->dev.device, NULL, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram(prog);
    prog = NULL;
  }
done:
  free(buf);
  return prog;
}

/* Temporary files get the process id and a per-process number: devices of one process, each
 * driven from its own thread, may store the same program at the same time. */
static atomic_uint cache_tmp_seq;

static void cache_store(wrn_ctx *ctx, cl_program prog, const char *path, uint64_t key,
                        const char *ident) {
  size_t bl = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof bl, &bl, NULL) != CL_SUCCESS ||
      bl == 0)
    return;
  unsigned char *bin = malloc(bl);
  if (!bin) return;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) != CL_SUCCESS) {
    free(bin);
    return;
  }
  char tmp[4400];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%u", path, (long)getpid(),
           atomic_fetch_add(&cache_tmp_seq, 1u));
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    wrn_ctx_warn(ctx, "the kernel cache %s could not be written (creating %s: %s); the "
                      "kernels are built again next time", path, tmp, strerror(errno));
    free(bin);
    return;
  }
  uint64_t il = strlen(ident), blen = bl, bhash = wrn_hash64(WRN_HASH_INIT, bin, bl);
  FILE *f = fdopen(fd, "wb");
  int ok = f != NULL, err = 0;
  if (ok) {
    ok = fwrite(cache_magic, 8, 1, f) == 1 && fwrite(&key, 8, 1, f) == 1 &&
         fwrite(&il, 8, 1, f) == 1 && fwrite(ident, 1, il, f) == il &&
         fwrite(&blen, 8, 1, f) == 1 && fwrite(&bhash, 8, 1, f) == 1 &&
         fwrite(bin, 1, bl, f) == bl;
    ok = fflush(f) == 0 && ok;
    if (!ok && !err) err = errno;
    ok = fsync(fileno(f)) == 0 && ok;
    if (!ok && !err) err = errno;
    ok = fclose(f) == 0 && ok;
    if (!ok && !err) err = errno;
  } else {
    err = errno;
    close(fd);
  }
  if (ok && rename(tmp, path) != 0) ok = 0, err = errno;
  if (!ok) {
    unlink(tmp);
    wrn_ctx_warn(ctx, "the kernel cache %s could not be written (%s); the kernels are built "
                      "again next time", path, strerror(err ? err : EIO));
  }
  free(bin);
}

/* WRN_DUMP_BUILDS=FILE appends "<program>\t<options>" for every program built or loaded from
 * the cache, so that tools/cl_offline.py compiles each kernel with exactly the options the
 * library uses (it collects them by running the unit tests with the variable set). */
static wrn_status dump_build(const char *name, const char *opts) {
  const char *path = getenv("WRN_DUMP_BUILDS");
  if (!path || !path[0]) return WRN_OK;
  FILE *f = fopen(path, "a");
  int ok = f && fprintf(f, "%s\t%s\n", name, opts) > 0;
  if (f && fclose(f) != 0) ok = 0;
  return ok ? WRN_OK
            : wrn_fail(WRN_STATUS_IO, "WRN_DUMP_BUILDS=%s: cannot append to it: %s", path,
                       strerror(errno));
}

static wrn_status build_one(wrn_ctx *ctx, int i, const char *opts, cl_program *out,
                            int *from_cache) {
  char *src = NULL;
  size_t slen = 0;
  WRN_TRY(dump_build(wrn_cl_sources[i].name, opts));
  WRN_TRY(program_source(i, &src, &slen));
  char ident[2048];
  snprintf(ident, sizeof ident, "opts=%s|platform=%s|pver=%s|device=%s|driver=%s|dver=%s", opts,
           ctx->dev.platform_name, ctx->dev.platform_version, ctx->dev.name, ctx->dev.driver,
           ctx->dev.device_version);
  uint64_t key = wrn_hash64(WRN_HASH_INIT, src, slen);
  key = wrn_hash64(key, ident, strlen(ident));
  char dir[4096], path[4200];
  int use_cache = !ctx->no_cache && wrn_cache_dir(dir, sizeof dir) == 0;
  if (use_cache) {
    snprintf(path, sizeof path, "%s/%s-%016llx.bin", dir, wrn_cl_sources[i].name,
             (unsigned long long)key);
    cl_program p = cache_load(ctx, path, key, ident);
    if (p) {
      *out = p;
      *from_cache = 1;
      free(src);
      return WRN_OK;
    }
  }
  cl_int e;
  const char *s = src;
  cl_program p = clCreateProgramWithSource(ctx->cl, 1, &s, &slen, &e);
  free(src);
  WRN_CL_CHECK(e);
  e = clBuildProgram(p, 1, &ctx->dev.device, opts, NULL, NULL);
  if (e != CL_SUCCESS) {
    size_t ll = 0;
    clGetProgramBuildInfo(p, ctx->dev.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &ll);
    char *log = malloc(ll + 1);
    if (log) {
      log[0] = '\0';
      clGetProgramBuildInfo(p, ctx->dev.device, CL_PROGRAM_BUILD_LOG, ll, log, NULL);
      log[ll] = '\0';
    }
    wrn_status st = wrn_fail(WRN_STATUS_BUILD,
                             "building cl/%s.cl with '%s' for '%s' failed with %s; build log:\n%s",
                             wrn_cl_sources[i].name, opts, ctx->dev.name, wrn_cl_error_name(e),
                             log ? log : "(no log)");
    free(log);
    clReleaseProgram(p);
    return st;
  }
  *out = p;
  *from_cache = 0;
  ctx->programs_compiled++;
  if (use_cache) cache_store(ctx, p, path, key, ident);
  return WRN_OK;
}

static const char *base_options(const wrn_ctx *ctx) {
  /* -w: warnings would only reach stderr through some drivers' compilers (PoCL prints its
   * log); tools/cl_offline.py compiles the same sources with warnings on. */
  return ctx->dtype == WRN_F64 ? "-cl-std=CL1.2 -w -DREAL=double -DWRN_FP64=1"
                               : "-cl-std=CL1.2 -w -DREAL=float";
}

/* Programs whose kernels need host-chosen tunables are not built without them. */
static int variant_only(int i) {
  const char *list = WRN_VARIANT_ONLY_PROGRAMS, *name = wrn_cl_sources[i].name;
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) return 1;
  return 0;
}

wrn_status wrn_program_build_variant(wrn_ctx *ctx, int prog, const char *defs, cl_program *out) {
  if (prog < 0 || prog >= wrn_cl_source_count)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "no kernel program %d", prog);
  char opts[512];
  int n = snprintf(opts, sizeof opts, "%s %s", base_options(ctx), defs ? defs : "");
  if (n < 0 || (size_t)n >= sizeof opts)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "build options for cl/%s.cl too long: %s",
                    wrn_cl_sources[prog].name, defs);
  int cached = 0;
  return build_one(ctx, prog, opts, out, &cached);
}

wrn_status wrn_programs_build(wrn_ctx *ctx) {
  double t0 = wrn_seconds();
  ctx->nprogs = wrn_cl_source_count;
  ctx->progs = calloc((size_t)(ctx->nprogs ? ctx->nprogs : 1), sizeof *ctx->progs);
  if (!ctx->progs) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
  ctx->programs_cached = 0;
  for (int i = 0; i < ctx->nprogs; i++) {
    if (variant_only(i)) continue;
    int cached = 0;
    WRN_TRY(build_one(ctx, i, base_options(ctx), &ctx->progs[i], &cached));
    ctx->programs_cached += cached;
    ctx->programs_built++;
  }
  ctx->build_seconds = wrn_seconds() - t0;
  return WRN_OK;
}

void wrn_programs_free(wrn_ctx *ctx) {
  for (int v = 0; v < ctx->nvariants; v++) {
    for (int k = 0; k < WRN_K_COUNT; k++)
      if (ctx->variants[v].kernels[k]) clReleaseKernel(ctx->variants[v].kernels[k]);
    clReleaseProgram(ctx->variants[v].program);
  }
  free(ctx->variants);
  ctx->variants = NULL;
  ctx->nvariants = ctx->capvariants = 0;
  for (int k = 0; k < WRN_K_COUNT; k++)
    if (ctx->kernels[k]) clReleaseKernel(ctx->kernels[k]);
  if (!ctx->progs) return;
  for (int i = 0; i < ctx->nprogs; i++)
    if (ctx->progs[i]) clReleaseProgram(ctx->progs[i]);
  free(ctx->progs);
  ctx->progs = NULL;
}
