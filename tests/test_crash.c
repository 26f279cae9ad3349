/* A run survives crashes and full disks. The real wrn command trains a tiny run (WRN-10-1,
 * 64 training images, 2 steps per epoch, 3 epochs) while tests/fault/wrn_fault.c, preloaded,
 * kills it (SIGKILL) at chosen writes: before the first checkpoint, inside a checkpoint's
 * write, between best.safetensors and last.safetensors, between a checkpoint and its log
 * line, in the middle of a log line; signals and kills at moments in time come on top. Each
 * killed run is resumed (or, when it left no checkpoint, started again), and the result must
 * be bit-identical to an uninterrupted run: every tensor of last and best, a log of whole
 * lines with each epoch once, no temporary files left. Then every write fails once with
 * ENOSPC (checkpoint, best, log, kernel cache, tuner store): the message names the file, the
 * exit status is nonzero where the run cannot go on, the last good state is intact and a
 * later run with space continues. */
#include "harness.h"
#include "wrn_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char cli[2048], sample[2048], tmp[2048], fault[2048], cache[2200], pocl_cache[4096];
#define ARGS                                                                                \
  "--model wrn-10-1 --train-limit 64 --test-limit 64 --batch 32 --epochs 3 --epoch-step 2 " \
  "--dropout 0.3 --conv-algo im2col --progress off"
#define EPOCHS 3

static char out[1 << 16];
static int n_best; /* epochs of the reference run that wrote best.safetensors */
static int best_epochs[EPOCHS + 1];

typedef struct fault_spec {
  const char *match, *op, *nth, *action;
} fault_spec;

/* Runs `wrn ARGS...` (a shell command line after the binary) with the fault spec (NULL:
 * none) and XDG_CACHE_HOME=cache_dir; with trigger, sends sig once a line of output holds
 * it; with delay_ms > 0, sends sig after that long. Output goes to out. Returns the exit
 * status, or 128 + the signal that ended it; *signalled tells whether sig was sent. */
static int run_ex(const fault_spec *f, const char *cache_dir, const char *trigger, int sig,
                  int delay_ms, int *signalled, const char *fmt, ...) {
  char args[8192], cmd[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "exec %s %s 2>&1", cli, args);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    close(pfd[0]);
    close(pfd[1]);
    setenv("XDG_CACHE_HOME", cache_dir, 1);
    /* PoCL's own kernel cache stays where it was: only wrn's caches are under test. */
    if (pocl_cache[0]) setenv("POCL_CACHE_DIR", pocl_cache, 0);
    if (f) {
      setenv("LD_PRELOAD", fault, 1);
      setenv("WRN_FAULT_MATCH", f->match, 1);
      setenv("WRN_FAULT_OP", f->op, 1);
      setenv("WRN_FAULT_NTH", f->nth, 1);
      setenv("WRN_FAULT_ACTION", f->action, 1);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  size_t len = 0;
  out[0] = '\0';
  int sent = 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char buf[4096];
  for (;;) {
    int wait_ms = -1;
    if (delay_ms > 0 && !sent) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long el = (now.tv_sec - t0.tv_sec) * 1000L + (now.tv_nsec - t0.tv_nsec) / 1000000L;
      wait_ms = el >= delay_ms ? 0 : (int)(delay_ms - el);
      if (wait_ms == 0) {
        kill(pid, sig);
        sent = 1;
        wait_ms = -1;
      }
    }
    struct pollfd p = {pfd[0], POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;
    ssize_t k = read(pfd[0], buf, sizeof buf - 1);
    if (k <= 0) break;
    buf[k] = '\0';
    if (len + (size_t)k + 1 < sizeof out) {
      memcpy(out + len, buf, (size_t)k + 1);
      len += (size_t)k;
    }
    if (trigger && !sent && strstr(out, trigger)) {
      kill(pid, sig);
      sent = 1;
    }
  }
  close(pfd[0]);
  int st;
  waitpid(pid, &st, 0);
  if (signalled) *signalled = sent;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define run(f, ...) run_ex((f), cache, NULL, 0, 0, NULL, __VA_ARGS__)

static void expect(const char *text, const char *needle) {
  if (!strstr(text, needle)) fail_msg("expected '%s' in the output:\n%s", needle, text);
}

static int exists(const char *dir, const char *name) {
  char p[8192];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0;
}

/* Every tensor of a/name and b/name holds the same bytes. */
static void same_tensors(const char *a, const char *b, const char *name) {
  char pa[8192], pb[8192];
  snprintf(pa, sizeof pa, "%s/%s", a, name);
  snprintf(pb, sizeof pb, "%s/%s", b, name);
  wt_same_tensors(pa, pb);
}

/* The log holds exactly epochs 1..n, one whole JSON object per line; returns n. With
 * best_out, the epochs whose test accuracy beat all before (what writes best). */
static int check_log(const char *dir, int *best_out, int *nbest) {
  char p[8192];
  snprintf(p, sizeof p, "%s/log.jsonl", dir);
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int n = 0;
  double best = 0;
  if (nbest) *nbest = 0;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n') fail_msg("%s: line %d has no newline", p, n + 1);
    wrn_jv *v;
    if (wrn_jv_parse(&v, line, (size_t)len - 1, p) != WRN_OK)
      fail_msg("%s line %d is not JSON: %s", p, n + 1, wrn_last_error());
    double ep = wrn_jv_number(wrn_jv_get(v, "epoch"), -1);
    double acc = wrn_jv_number(wrn_jv_get(v, "test_acc"), -1);
    wrn_jv_free(v);
    n++;
    if (ep != n) fail_msg("%s line %d holds epoch %g", p, n, ep);
    if (acc > best) {
      best = acc;
      if (best_out) best_out[(*nbest)++] = n;
    }
  }
  free(line);
  fclose(f);
  return n;
}

/* No temporary file of a write is left in the folder. */
static void no_temps(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strstr(e->d_name, ".tmp.") || strstr(e->d_name, ".write-test."))
      fail_msg("%s/%s is left behind", dir, e->d_name);
  closedir(d);
}

/* Continues a stopped run to its end: --resume when it has a checkpoint, else the same
 * command as a new run (what the messages tell a user). Returns the runs it took. */
static int recover(const char *dir) {
  for (int i = 1; i <= 3; i++) {
    int rc = exists(dir, "last.safetensors") || exists(dir, "best.safetensors")
                 ? run(NULL, "train --resume %s", dir)
                 : run(NULL, "train " ARGS " --data %s --out %s", sample, dir);
    if (rc == 0) return i;
    print_message("recovering %s, try %d, exit %d:\n%s\n", dir, i, rc, out);
  }
  fail_msg("%s could not be continued", dir);
  return 0;
}

/* The stopped run in dir, continued, equals the reference run exactly. */
static void check_same_as_reference(const char *dir) {
  char ref[4096];
  snprintf(ref, sizeof ref, "%s/ref", tmp);
  same_tensors(ref, dir, "last.safetensors");
  if (n_best) same_tensors(ref, dir, "best.safetensors");
  assert_int_equal(check_log(dir, NULL, NULL), EPOCHS);
  no_temps(dir);
}

static int setup(void **state) {
  (void)state;
  const char *c = getenv("WRN_CLI"), *src = getenv("WRN_SOURCE_DIR"), *fl = getenv("WRN_FAULT_LIB");
  snprintf(cli, sizeof cli, "%s", c ? c : "../wrn");
  snprintf(sample, sizeof sample, "%s/data/cifar10-sample", src ? src : WRN_SOURCE_DIR);
  snprintf(fault, sizeof fault, "%s", fl ? fl : "");
  snprintf(tmp, sizeof tmp, "/tmp/wrn-crash-XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  /* Kernels and tuner choices shared by every run here (the reference fills it). */
  snprintf(cache, sizeof cache, "%s/cache", tmp);
  mkdir(cache, 0755);
  const char *pc = getenv("POCL_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (pc && pc[0]) snprintf(pocl_cache, sizeof pocl_cache, "%s", pc);
  else if (xdg && xdg[0]) snprintf(pocl_cache, sizeof pocl_cache, "%s/pocl", xdg);
  else if (home && home[0]) snprintf(pocl_cache, sizeof pocl_cache, "%s/.cache/pocl", home);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  t_rm_tree(tmp);
  return 0;
}

static void test_reference(void **state) {
  (void)state;
  int rc = run(NULL, "train " ARGS " --data %s --out %s/ref", sample, tmp);
  if (rc) fail_msg("the reference run failed (%d):\n%s", rc, out);
  char ref[4096];
  snprintf(ref, sizeof ref, "%s/ref", tmp);
  assert_int_equal(check_log(ref, best_epochs, &n_best), EPOCHS);
  assert_int_equal(exists(ref, "best.safetensors"), n_best > 0);
  print_message("reference: %d epochs, best written at %d epoch(s), first %d\n", EPOCHS, n_best,
                n_best ? best_epochs[0] : 0);
}

typedef struct kill_point {
  fault_spec f;
  const char *what;
} kill_point;

/* A number in the metadata of dir/name; NAN when absent. */
static double meta_number(const char *dir, const char *name, const char *key) {
  char p[8192];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  wrn_st_file *f;
  if (wrn_st_open(&f, p) != WRN_OK) return NAN;
  const char *v = wrn_st_meta(f, key);
  double x = v ? strtod(v, NULL) : NAN;
  wrn_st_close(f);
  return x;
}

static void test_kill_points(void **state) {
  (void)state;
  if (!exists(tmp, "ref/last.safetensors")) skip();
  static const kill_point points[] = {
      {{"log.jsonl", "open", "1", "kill"}, "before the first checkpoint (opening the log)"},
      {{"best.safetensors|last.safetensors", "fsync", "1", "kill"},
       "inside the first checkpoint's write (its temporary file left)"},
      {{"last.safetensors", "rename", "1", "kill"},
       "just before last.safetensors of epoch 1 (after best.safetensors when epoch 1 is a best)"},
      {{"best.safetensors", "rename", "1", "kill"}, "just before the first best.safetensors"},
      {{"log.jsonl", "write", "1", "kill"}, "between the first checkpoint and its log line"},
      {{"log.jsonl", "write", "2", "torn"}, "in the middle of the second log line"},
      {{"last.safetensors", "rename", "2", "kill"}, "just before last.safetensors of epoch 2"},
      {{"best.safetensors|last.safetensors", "rename", "3+", "kill"},
       "at the third rename of a checkpoint"},
      {{"last.safetensors", "fsync", "3", "kill"}, "inside the last epoch's checkpoint"},
      {{"log.jsonl", "write", "3", "kill"}, "before the last log line"},
  };
  int n = (int)(sizeof points / sizeof points[0]), tried = 0, skipped = 0;
  for (int i = 0; i < n; i++) {
    const kill_point *k = &points[i];
    if (!n_best && !strcmp(k->f.match, "best.safetensors")) {
      print_message("kill point '%s' skipped: the reference run never wrote best\n", k->what);
      skipped++;
      continue;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/kill%d", tmp, i);
    int rc = run(&k->f, "train " ARGS " --data %s --out %s", sample, dir);
    if (rc != 128 + SIGKILL)
      fail_msg("kill point '%s' was not reached (exit %d):\n%s", k->what, rc, out);
    int had_ckpt = exists(dir, "last.safetensors") || exists(dir, "best.safetensors");
    /* best is never behind what last records. */
    if (exists(dir, "last.safetensors") && exists(dir, "best.safetensors"))
      assert_true(meta_number(dir, "best.safetensors", "best_test_acc") >=
                  meta_number(dir, "last.safetensors", "best_test_acc"));
    if (exists(dir, "last.safetensors") && meta_number(dir, "last.safetensors", "best_test_acc") > 0)
      assert_true(exists(dir, "best.safetensors"));
    int runs = recover(dir);
    check_same_as_reference(dir);
    print_message("killed %s: %s; recovered in %d run(s), bit-identical\n", k->what,
                  had_ckpt ? "resumed" : "no checkpoint yet, started again", runs);
    tried++;
  }
  assert_int_equal(tried + skipped, n);
  print_message("%d kill points tried, each resumed or restarted to a bit-identical end\n", tried);
}

/* SIGTERM while the kernels are built and warmed up (before any step), and SIGKILL at
 * moments in time over the run. */
static void test_signals_and_timed_kills(void **state) {
  (void)state;
  if (!exists(tmp, "ref/last.safetensors")) skip();
  char dir[4096];
  int sent;
  snprintf(dir, sizeof dir, "%s/term-warmup", tmp);
  int rc = run_ex(NULL, cache, "train: wrn-10-1", SIGTERM, 0, &sent,
                  "train " ARGS " --data %s --out %s", sample, dir);
  assert_true(sent);
  if (rc != 0) {
    assert_int_equal(rc, 128 + SIGTERM);
    expect(out, "--resume");
    assert_true(exists(dir, "last.safetensors"));
  }
  recover(dir);
  check_same_as_reference(dir);
  print_message("SIGTERM during warm-up: exit %d, resumed, bit-identical\n", rc);
  /* Moments spread over a run (a linear congruential sequence, fixed). */
  unsigned x = 12345;
  int killed = 0;
  for (int i = 0; i < 6; i++) {
    x = x * 1103515245u + 12345u;
    int ms = 100 + (int)((x >> 8) % 2200);
    snprintf(dir, sizeof dir, "%s/timed%d", tmp, i);
    rc = run_ex(NULL, cache, NULL, SIGKILL, ms, &sent, "train " ARGS " --data %s --out %s",
                sample, dir);
    int had = exists(dir, "last.safetensors") || exists(dir, "best.safetensors");
    if (rc == 0) {
      print_message("kill after %d ms: the run had finished\n", ms);
    } else {
      assert_int_equal(rc, 128 + SIGKILL);
      killed++;
      int runs = recover(dir);
      print_message("kill after %d ms: %s, recovered in %d run(s)\n", ms,
                    had ? "resumed" : "no checkpoint yet, started again", runs);
    }
    check_same_as_reference(dir);
  }
  print_message("%d of 6 timed kills hit a running process\n", killed);
}

/* The "epoch" metadata of dir/last.safetensors, -1 when it cannot be read. */
static int last_epoch(const char *dir) {
  char p[8192];
  snprintf(p, sizeof p, "%s/last.safetensors", dir);
  wrn_st_file *f;
  if (wrn_st_open(&f, p) != WRN_OK) return -1;
  const char *e = wrn_st_meta(f, "epoch");
  int ep = e ? atoi(e) : -1;
  wrn_st_close(f);
  return ep;
}

static void test_disk_full(void **state) {
  (void)state;
  if (!exists(tmp, "ref/last.safetensors")) skip();
  char dir[4096];
  /* The first checkpoint cannot be written: nothing to resume, and a new start works. */
  snprintf(dir, sizeof dir, "%s/full-first", tmp);
  fault_spec first = {"best.safetensors|last.safetensors", "fsync", "1", "enospc"};
  int rc = run(&first, "train " ARGS " --data %s --out %s", sample, dir);
  assert_int_equal(rc, 1);
  expect(out, "No space left on device");
  expect(out, dir);
  expect(out, ".safetensors");
  assert_false(exists(dir, "last.safetensors") || exists(dir, "best.safetensors"));
  assert_int_equal(check_log(dir, NULL, NULL), 0);
  recover(dir);
  check_same_as_reference(dir);
  /* last.safetensors of epoch 2: epoch 1's stays, and a resume goes on from it. */
  snprintf(dir, sizeof dir, "%s/full-last", tmp);
  fault_spec last = {"last.safetensors", "fsync", "2", "enospc"};
  rc = run(&last, "train " ARGS " --data %s --out %s", sample, dir);
  assert_int_equal(rc, 1);
  expect(out, "last.safetensors");
  expect(out, "No space left on device");
  assert_int_equal(last_epoch(dir), 1);
  assert_int_equal(check_log(dir, NULL, NULL), 1);
  assert_int_equal(recover(dir), 1);
  check_same_as_reference(dir);
  /* best.safetensors: last is not written past it, so best is never behind. */
  if (n_best) {
    snprintf(dir, sizeof dir, "%s/full-best", tmp);
    fault_spec best = {"best.safetensors", "fsync", n_best > 1 ? "2" : "1", "enospc"};
    rc = run(&best, "train " ARGS " --data %s --out %s", sample, dir);
    assert_int_equal(rc, 1);
    expect(out, "best.safetensors");
    int failed_epoch = best_epochs[n_best > 1 ? 1 : 0];
    assert_int_equal(check_log(dir, NULL, NULL), failed_epoch - 1);
    if (failed_epoch > 1) assert_int_equal(last_epoch(dir), failed_epoch - 1);
    recover(dir);
    check_same_as_reference(dir);
  }
  /* The log line of epoch 2: the run stops with the line in the checkpoint; a resume adds
   * it. */
  snprintf(dir, sizeof dir, "%s/full-log", tmp);
  fault_spec log = {"log.jsonl", "write", "2", "enospc"};
  rc = run(&log, "train " ARGS " --data %s --out %s", sample, dir);
  assert_int_equal(rc, 1);
  expect(out, "log.jsonl");
  expect(out, "No space left on device");
  assert_int_equal(check_log(dir, NULL, NULL), 1);
  assert_int_equal(recover(dir), 1);
  check_same_as_reference(dir);
  /* The kernel cache and the tuner store (a fresh cache folder, every write into it
   * failing): the run goes on with a warning naming the file, and the next run writes it. */
  char fresh[4096];
  snprintf(fresh, sizeof fresh, "%s/fresh-cache", tmp);
  mkdir(fresh, 0755);
  snprintf(dir, sizeof dir, "%s/full-cache", tmp);
  char cache_match[4200];
  snprintf(cache_match, sizeof cache_match, "%s/wrn/", fresh);
  fault_spec cachef = {cache_match, "fsync", "1+", "enospc"};
  rc = run_ex(&cachef, fresh, NULL, 0, 0, NULL, "train " ARGS " --data %s --out %s", sample,
              dir);
  if (rc) fail_msg("a cache that cannot be written stopped the run (%d):\n%s", rc, out);
  expect(out, "warning: the kernel cache");
  expect(out, "warning: the tuner cache");
  expect(out, fresh);
  expect(out, "No space left on device");
  assert_int_equal(check_log(dir, NULL, NULL), EPOCHS);
  no_temps(dir);
  char wdir[4200];
  snprintf(wdir, sizeof wdir, "%s/wrn", fresh);
  DIR *d = opendir(wdir);
  int files = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL)
    files += e->d_name[0] != '.' && !strstr(e->d_name, ".lock");
  if (d) closedir(d);
  assert_int_equal(files, 0);
  snprintf(dir, sizeof dir, "%s/full-cache-again", tmp);
  rc = run_ex(NULL, fresh, NULL, 0, 0, NULL, "train " ARGS " --data %s --out %s", sample, dir);
  assert_int_equal(rc, 0);
  d = opendir(wdir);
  assert_non_null(d);
  while ((e = readdir(d)) != NULL) files += e->d_name[0] != '.' && !strstr(e->d_name, ".lock");
  closedir(d);
  assert_true(files > 0);
  print_message("disk full: first checkpoint, last, best, log line, kernel cache + tuner store: "
                "each refused with the file named, state intact, continued\n");
}

int main(void) {
#ifdef WRN_SANITIZED
  printf("SKIP: the fault library cannot be preloaded into a sanitizer build (its runtime "
         "must come first); the plain build runs this test\n");
  return WRN_TEST_SKIP;
#endif
  const char *fl = getenv("WRN_FAULT_LIB");
  if (!fl || access(fl, R_OK) != 0) {
    printf("SKIP: WRN_FAULT_LIB (the fault library tests/fault/wrn_fault.c) is not set\n");
    return WRN_TEST_SKIP;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_reference),
                                     cmocka_unit_test(test_kill_points),
                                     cmocka_unit_test(test_signals_and_timed_kills),
                                     cmocka_unit_test(test_disk_full)};
  return WT_RUN_GROUP("crash", tests, setup, teardown);
}
