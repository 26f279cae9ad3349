/* Shared by the libFuzzer targets: inputs that readers take from files are written to a
 * per-process temporary folder first. */
#ifndef WRN_FUZZ_UTIL_H
#define WRN_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A folder of this process under $TMPDIR (or /tmp), made once. */
static inline const char *fuzz_dir(void) {
  static char dir[512];
  if (!dir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/wrn-fuzz-%ld", t && t[0] ? t : "/tmp", (long)getpid());
    mkdir(dir, 0755);
  }
  return dir;
}

/* Writes data[0..n) to fuzz_dir()/name; the path goes to path[512]. Aborts when it cannot
 * (a harness problem, not a finding). */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t n, char *path) {
  snprintf(path, 512, "%s/%s", fuzz_dir(), name);
  FILE *f = fopen(path, "wb");
  if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

#endif
