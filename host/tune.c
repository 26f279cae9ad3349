/* The tuner's store: measured choices (convolution algorithms, GEMM paths and tiles) kept in
 * memory per context and on disk per device, so a second run does not measure again.
 *
 * File: <cache>/tune-<hash of the device identity>.txt
 *   # wrn tuner 1 <identity>
 *   <key> TAB <value> TAB <milliseconds> TAB <16 hex digits: FNV-1a of the first three>
 * Lines that do not parse or whose checksum does not match are ignored (and dropped at the
 * next write). Writes go to a temporary file that is synced and renamed over the old one,
 * under an exclusive lock, after merging what other processes stored meanwhile. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

void wrn_ctx_warn(wrn_ctx *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->warning, sizeof ctx->warning, fmt, ap);
  va_end(ap);
}

const char *wrn_ctx_warning(wrn_ctx *ctx) {
  static _Thread_local char copy[sizeof ctx->warning];
  snprintf(copy, sizeof copy, "%s", ctx ? ctx->warning : "");
  if (ctx) ctx->warning[0] = '\0';
  return copy;
}

static void identity(const wrn_ctx *ctx, char *out, size_t n) {
  snprintf(out, n, "platform=%s|pver=%s|device=%s|driver=%s|dver=%s", ctx->dev.platform_name,
           ctx->dev.platform_version, ctx->dev.name, ctx->dev.driver, ctx->dev.device_version);
}

static int store_path(const wrn_ctx *ctx, char *out, size_t n) {
  char dir[3800], id[1024];
  if (wrn_cache_dir(dir, sizeof dir) != 0) return -1;
  identity(ctx, id, sizeof id);
  int len = snprintf(out, n, "%s/tune-%016llx.txt", dir,
                     (unsigned long long)wrn_hash64(WRN_HASH_INIT, id, strlen(id)));
  return len < 0 || (size_t)len >= n ? -1 : 0;
}

wrn_status wrn_ctx_tune_file(const wrn_ctx *ctx, char *out, size_t n) {
  if (!ctx || !out || n == 0) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "tune_file: NULL argument");
  out[0] = '\0';
  if (ctx->no_cache) return WRN_OK;
  if (store_path(ctx, out, n) != 0) {
    out[0] = '\0';
    return wrn_fail(WRN_STATUS_IO, "the tuner has no cache folder (set XDG_CACHE_HOME or HOME)");
  }
  return WRN_OK;
}

static uint64_t line_sum(const char *key, const char *val, const char *ms) {
  uint64_t h = wrn_hash64(WRN_HASH_INIT, key, strlen(key));
  h = wrn_hash64(h, "\t", 1);
  h = wrn_hash64(h, val, strlen(val));
  h = wrn_hash64(h, "\t", 1);
  return wrn_hash64(h, ms, strlen(ms));
}

/* Sets key = val in the list (replacing an entry with the same key). */
static int put(struct wrn_tune_entry **list, int *cnt, int *cap, const char *key,
               const char *val, double ms) {
  if (strlen(key) >= WRN_TUNE_KEY_MAX || strlen(val) >= WRN_TUNE_VALUE_MAX) return -1;
  for (int i = 0; i < *cnt; i++)
    if (!strcmp((*list)[i].key, key)) {
      snprintf((*list)[i].val, WRN_TUNE_VALUE_MAX, "%s", val);
      (*list)[i].ms = ms;
      return 0;
    }
  if (*cnt == *cap) {
    int nc = *cap ? 2 * *cap : 64;
    struct wrn_tune_entry *l = realloc(*list, (size_t)nc * sizeof *l);
    if (!l) return -1;
    *list = l;
    *cap = nc;
  }
  struct wrn_tune_entry *e = &(*list)[(*cnt)++];
  snprintf(e->key, sizeof e->key, "%s", key);
  snprintf(e->val, sizeof e->val, "%s", val);
  e->ms = ms;
  return 0;
}

/* Reads the entries of an open file into the list; damaged lines are skipped. */
void wrn_tune_read_entries(FILE *f, struct wrn_tune_entry **list, int *cnt, int *cap) {
  char line[WRN_TUNE_KEY_MAX + WRN_TUNE_VALUE_MAX + 64];
  while (fgets(line, sizeof line, f)) {
    size_t len = strlen(line);
    if (len == 0 || line[len - 1] != '\n') {
      /* A line too long for the buffer (or torn at the end): skip the rest of it. */
      int c;
      if (len == sizeof line - 1)
        while ((c = fgetc(f)) != EOF && c != '\n') {
        }
      continue;
    }
    line[len - 1] = '\0';
    if (line[0] == '#') continue;
    char *f1 = line, *f2 = strchr(f1, '\t');
    if (!f2) continue;
    *f2++ = '\0';
    char *f3 = strchr(f2, '\t');
    if (!f3) continue;
    *f3++ = '\0';
    char *f4 = strchr(f3, '\t');
    if (!f4) continue;
    *f4++ = '\0';
    char *end;
    errno = 0;
    unsigned long long sum = strtoull(f4, &end, 16);
    if (errno || *end || strlen(f4) != 16 || sum != line_sum(f1, f2, f3)) continue;
    double ms = strtod(f3, &end);
    if (*end || !*f1 || !*f2) continue;
    put(list, cnt, cap, f1, f2, ms);
  }
}

static void load(wrn_ctx *ctx) {
  ctx->tune_loaded = 1;
  char path[4096];
  if (ctx->no_cache || store_path(ctx, path, sizeof path) != 0) return;
  FILE *f = fopen(path, "r");
  if (!f) return;
  wrn_tune_read_entries(f, &ctx->tune, &ctx->ntune, &ctx->captune);
  fclose(f);
}

wrn_status wrn_tune_lookup(wrn_ctx *ctx, const char *key, char *val, size_t n, int *found) {
  *found = 0;
  if (!ctx->tune_loaded) load(ctx);
  for (int i = 0; i < ctx->ntune; i++)
    if (!strcmp(ctx->tune[i].key, key)) {
      if (strlen(ctx->tune[i].val) >= n)
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "tuner: value of %s too long", key);
      snprintf(val, n, "%s", ctx->tune[i].val);
      *found = 1;
      return WRN_OK;
    }
  return WRN_OK;
}

/* Merges the file's entries with ours and replaces it atomically; 0 on success, else errno
 * with *what naming the step that failed. */
static int write_store(wrn_ctx *ctx, const char *path, const char **what) {
  char lock[4200], tmp[4200], id[1024];
  snprintf(lock, sizeof lock, "%s.lock", path);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  identity(ctx, id, sizeof id);
  int lfd = open(lock, O_RDWR | O_CREAT, 0644);
  if (lfd < 0) return *what = "opening the lock file", errno;
  if (flock(lfd, LOCK_EX) != 0) {
    int e = errno;
    close(lfd);
    return *what = "locking", e;
  }
  /* Entries other processes stored since we loaded, then ours on top. */
  struct wrn_tune_entry *all = NULL;
  int cnt = 0, cap = 0;
  FILE *old = fopen(path, "r");
  if (old) {
    wrn_tune_read_entries(old, &all, &cnt, &cap);
    fclose(old);
  }
  for (int i = 0; i < ctx->ntune; i++)
    put(&all, &cnt, &cap, ctx->tune[i].key, ctx->tune[i].val, ctx->tune[i].ms);
  int err = 0;
  FILE *f = fopen(tmp, "w");
  if (!f) {
    err = errno, *what = "creating the temporary file";
  } else {
    if (fprintf(f, "# wrn tuner 1 %s\n", id) < 0) err = errno ? errno : EIO;
    for (int i = 0; i < cnt && !err; i++) {
      char ms[32];
      snprintf(ms, sizeof ms, "%.4f", all[i].ms);
      if (fprintf(f, "%s\t%s\t%s\t%016llx\n", all[i].key, all[i].val, ms,
                  (unsigned long long)line_sum(all[i].key, all[i].val, ms)) < 0)
        err = errno ? errno : EIO;
    }
    if (!err && fflush(f) != 0) err = errno ? errno : EIO;
    if (!err && fsync(fileno(f)) != 0) err = errno ? errno : EIO;
    if (fclose(f) != 0 && !err) err = errno ? errno : EIO;
    if (err) *what = "writing";
    else if (rename(tmp, path) != 0) err = errno, *what = "renaming the temporary file";
    if (err) unlink(tmp);
  }
  free(all);
  flock(lfd, LOCK_UN);
  close(lfd);
  return err;
}

wrn_status wrn_tune_store(wrn_ctx *ctx, const char *key, const char *val, double ms) {
  if (!ctx->tune_loaded) load(ctx);
  if (put(&ctx->tune, &ctx->ntune, &ctx->captune, key, val, ms) != 0)
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "tuner: cannot keep %s = %s", key, val);
  char path[4096];
  if (ctx->no_cache || store_path(ctx, path, sizeof path) != 0) return WRN_OK;
  const char *what = "";
  int e = write_store(ctx, path, &what);
  if (e)
    wrn_ctx_warn(ctx, "the tuner cache %s could not be written (%s: %s); its choices are "
                      "kept for this run only",
                 path, what, strerror(e));
  return WRN_OK;
}
