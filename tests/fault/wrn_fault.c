/* A fault injector for tests, loaded with LD_PRELOAD into the wrn command: write, fsync,
 * fdatasync, close and rename of files whose path holds a pattern fail with ENOSPC (a full
 * disk), or the process kills itself there (a crash at that exact point). Set by:
 *   WRN_FAULT_MATCH   substrings separated by '|'; a file matches when its path holds one
 *   WRN_FAULT_OP      write | fsync | close | rename | open (rename matches either name)
 *   WRN_FAULT_NTH     the matching call that fails, 1-based (1); "N+" fails it and all later
 *   WRN_FAULT_ACTION  enospc (the call fails, nothing written) | kill (SIGKILL before the
 *                     call) | torn (write: half the bytes, then SIGKILL)
 * Without WRN_FAULT_MATCH every call goes straight through. Paths are known for files
 * opened with open, open64, openat, creat, fopen and fopen64 (and forgotten at close and
 * fclose). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FD 65536

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *fd_path[MAX_FD];
static long calls; /* matching calls of the op so far */

static const char *env(const char *k) {
  const char *v = getenv(k);
  return v && v[0] ? v : NULL;
}

static int path_matches(const char *path) {
  const char *m = env("WRN_FAULT_MATCH");
  if (!m || !path) return 0;
  for (const char *p = m; *p;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (n) {
      char pat[512];
      if (n >= sizeof pat) n = sizeof pat - 1;
      memcpy(pat, p, n);
      pat[n] = '\0';
      if (strstr(path, pat)) return 1;
    }
    if (!bar) break;
    p = bar + 1;
  }
  return 0;
}

/* 0: go ahead; 1: fail with ENOSPC; 2: kill now; 3: torn write then kill. */
static int decide(const char *op, const char *path, const char *path2) {
  const char *want = env("WRN_FAULT_OP");
  if (!want || strcmp(want, op) || !(path_matches(path) || path_matches(path2))) return 0;
  const char *nth = env("WRN_FAULT_NTH");
  long n = nth ? strtol(nth, NULL, 10) : 1;
  int from = nth && strchr(nth, '+') != NULL;
  pthread_mutex_lock(&lock);
  long k = ++calls;
  pthread_mutex_unlock(&lock);
  if (from ? k < n : k != n) return 0;
  const char *a = env("WRN_FAULT_ACTION");
  if (a && !strcmp(a, "kill")) return 2;
  if (a && !strcmp(a, "torn")) return 3;
  return 1;
}

static void die(void) {
  raise(SIGKILL);
  _exit(137);
}

static void remember(int fd, const char *path) {
  if (fd < 0 || fd >= MAX_FD) return;
  char *copy = path ? strdup(path) : NULL;
  pthread_mutex_lock(&lock);
  free(fd_path[fd]);
  fd_path[fd] = copy;
  pthread_mutex_unlock(&lock);
}

/* The path of fd copied into out ("" when unknown). */
static void path_of(int fd, char *out, size_t n) {
  out[0] = '\0';
  if (fd < 0 || fd >= MAX_FD) return;
  pthread_mutex_lock(&lock);
  if (fd_path[fd]) snprintf(out, n, "%s", fd_path[fd]);
  pthread_mutex_unlock(&lock);
}

/* The C library's own function of that name. */
#define REAL(name)                                                                         \
  static __typeof__(&name) real_##name;                                                    \
  if (!real_##name) *(void **)&real_##name = dlsym(RTLD_NEXT, #name)

static int open_common(const char *name, const char *path, int flags, mode_t mode, int at,
                       int dirfd) {
  int r = decide("open", path, NULL);
  if (r == 2 || r == 3) die();
  if (r == 1) return errno = ENOSPC, -1;
  int fd;
  if (at) {
    REAL(openat);
    fd = real_openat(dirfd, path, flags, mode);
  } else if (!strcmp(name, "open64")) {
    REAL(open64);
    fd = real_open64(path, flags, mode);
  } else {
    REAL(open);
    fd = real_open(path, flags, mode);
  }
  if (fd >= 0) remember(fd, path);
  return fd;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return open_common("open", path, flags, m, 0, 0);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return open_common("open64", path, flags, m, 0, 0);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return open_common("openat", path, flags, m, 1, dirfd);
}

int creat(const char *path, mode_t mode) {
  return open_common("open", path, O_CREAT | O_WRONLY | O_TRUNC, mode, 0, 0);
}

static FILE *fopen_common(const char *name, const char *path, const char *mode) {
  int r = decide("open", path, NULL);
  if (r == 2 || r == 3) die();
  if (r == 1) return errno = ENOSPC, NULL;
  FILE *f;
  if (!strcmp(name, "fopen64")) {
    REAL(fopen64);
    f = real_fopen64(path, mode);
  } else {
    REAL(fopen);
    f = real_fopen(path, mode);
  }
  if (f) remember(fileno(f), path);
  return f;
}

FILE *fopen(const char *path, const char *mode) { return fopen_common("fopen", path, mode); }
FILE *fopen64(const char *path, const char *mode) { return fopen_common("fopen64", path, mode); }

/* The C library closes a stream's descriptor inside, past close(): forget its path here. */
int fclose(FILE *f) {
  REAL(fclose);
  if (f) remember(fileno(f), NULL);
  return real_fclose(f);
}

ssize_t write(int fd, const void *buf, size_t n) {
  REAL(write);
  char p[4096];
  path_of(fd, p, sizeof p);
  int r = p[0] ? decide("write", p, NULL) : 0;
  if (r == 1) return errno = ENOSPC, -1;
  if (r == 2) die();
  if (r == 3) {
    if (n > 1) real_write(fd, buf, n / 2);
    fsync(fd);
    die();
  }
  return real_write(fd, buf, n);
}

static int sync_common(const char *name, int fd) {
  char p[4096];
  path_of(fd, p, sizeof p);
  int r = p[0] ? decide("fsync", p, NULL) : 0;
  if (r == 2 || r == 3) die();
  if (r == 1) return errno = ENOSPC, -1;
  if (!strcmp(name, "fdatasync")) {
    REAL(fdatasync);
    return real_fdatasync(fd);
  }
  REAL(fsync);
  return real_fsync(fd);
}

int fsync(int fd) { return sync_common("fsync", fd); }
int fdatasync(int fd) { return sync_common("fdatasync", fd); }

int close(int fd) {
  REAL(close);
  char p[4096];
  path_of(fd, p, sizeof p);
  int r = p[0] ? decide("close", p, NULL) : 0;
  if (r == 2 || r == 3) die();
  remember(fd, NULL);
  int rc = real_close(fd);
  if (r == 1) return errno = ENOSPC, -1;
  return rc;
}

int rename(const char *from, const char *to) {
  REAL(rename);
  int r = decide("rename", from, to);
  if (r == 2 || r == 3) die();
  if (r == 1) return errno = ENOSPC, -1;
  return real_rename(from, to);
}
