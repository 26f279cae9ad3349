/* The wrn command as a user meets it: bad flags (exit 2, the flag named), bad input files and
 * folders (a clear message, nonzero exit, earlier results intact), resume giving bit-identical
 * weights, and a signal stopping a run with a checkpoint it can resume from. Runs the real
 * binary (WRN_CLI) on the CIFAR-10 sample shipped in data/cifar10-sample. */
#include "harness.h"
#include "wrn_io.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char cli[2048], sample[2048], tmp[2048];
/* Small and quick: WRN-10-1, 256 training and 64 test images, batch 32. */
#define SMALL "--model wrn-10-1 --train-limit 256 --test-limit 64 --batch 32 --progress off"

static int run(char *out, size_t n, const char *fmt, ...) {
  char args[8192], cmd[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t len = 0;
  out[0] = '\0';
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) {
    size_t l = strlen(buf);
    if (len + l + 1 < n) {
      memcpy(out + len, buf, l + 1);
      len += l;
    }
  }
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect(const char *out, const char *needle) {
  if (!strstr(out, needle)) fail_msg("expected '%s' in the output:\n%s", needle, out);
}

static void copy_file(const char *from, const char *to, long limit) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  assert_non_null(a);
  assert_non_null(b);
  char buf[65536];
  size_t n;
  long done = 0;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) {
    if (limit >= 0 && done + (long)n > limit) n = (size_t)(limit - done);
    fwrite(buf, 1, n, b);
    done += (long)n;
    if (limit >= 0 && done >= limit) break;
  }
  fclose(a);
  fclose(b);
}

/* A copy of the sample folder, optionally with data_batch_1.bin cut to `cut` bytes. */
static void make_copy(const char *dir, long cut) {
  char a[8192], b[8192];
  mkdir(dir, 0755);
  const char *files[2] = {"data_batch_1.bin", "test_batch.bin"};
  for (int i = 0; i < 2; i++) {
    if (snprintf(a, sizeof a, "%s/%s", sample, files[i]) >= (int)sizeof a ||
        snprintf(b, sizeof b, "%s/%s", dir, files[i]) >= (int)sizeof b)
      fail_msg("path too long: %s", dir);
    copy_file(a, b, i == 0 ? cut : -1);
  }
}

static int setup(void **state) {
  (void)state;
  const char *c = getenv("WRN_CLI"), *src = getenv("WRN_SOURCE_DIR");
  snprintf(cli, sizeof cli, "%s", c ? c : "../wrn");
  snprintf(sample, sizeof sample, "%s/data/cifar10-sample", src ? src : WRN_SOURCE_DIR);
  snprintf(tmp, sizeof tmp, "/tmp/wrn-cli-XXXXXX");
  if (!mkdtemp(tmp)) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static char out[1 << 16];

static void test_bad_flags(void **state) {
  (void)state;
  assert_int_equal(run(out, sizeof out, "train --data %s --lr -1", sample), 2);
  expect(out, "--lr");
  assert_int_equal(run(out, sizeof out, "train --data %s --batch 0", sample), 2);
  expect(out, "--batch");
  assert_int_equal(run(out, sizeof out, "train --data %s --model wrn-27-1", sample), 2);
  expect(out, "--model");
  assert_int_equal(run(out, sizeof out, "train --data %s --epoch-step 10,x", sample), 2);
  expect(out, "--epoch-step");
  assert_int_equal(run(out, sizeof out, "train --data %s --augment maybe", sample), 2);
  expect(out, "--augment");
  assert_int_equal(run(out, sizeof out, "train --data %s --frobnicate 1", sample), 2);
  expect(out, "--frobnicate");
  assert_int_equal(run(out, sizeof out, "train --epochs 3"), 2);
  expect(out, "--data");
  assert_int_equal(run(out, sizeof out, "summary --classes 1"), 2);
  expect(out, "--classes");
  assert_int_equal(run(out, sizeof out, "eval --checkpoint"), 2);
  assert_int_equal(run(out, sizeof out, "nonsense"), 2);
  for (const char *const *c = (const char *const[]){"train", "eval", "summary", "devices", "bench", NULL}; *c; c++) {
    assert_int_equal(run(out, sizeof out, "%s --help", *c), 0);
    expect(out, "usage: wrn");
  }
}

static void test_summary(void **state) {
  (void)state;
  assert_int_equal(run(out, sizeof out, "summary --model wrn-28-10"), 0);
  expect(out, "36,479,194");
  assert_int_equal(run(out, sizeof out, "summary --model wrn-16-4 --classes 100"), 0);
  expect(out, "2,772,020");
  assert_int_equal(run(out, sizeof out, "summary --model wrn-40-4"), 0);
  expect(out, "8,949,210");
  expect(out, "planned");
  assert_int_equal(run(out, sizeof out, "summary --model wrn-50-2 --classes 1000"), 0);
  expect(out, "68,883,240");
  expect(out, "input 3x224x224");
  expect(out, "maxpool3x3/2");
  expect(out, "add+relu");
  expect(out, "layer1.0.downsample.0.weight");
  assert_int_equal(run(out, sizeof out, "summary --model resnet-50 --classes 1000"), 0);
  expect(out, "25,557,032");
  assert_int_equal(run(out, sizeof out, "summary --model preresnet-164"), 0);
  expect(out, "1,703,258");
  assert_int_equal(run(out, sizeof out, "summary --model wrn-50-2 --image-size 16"), 2);
  expect(out, "32x32");
}

static void test_bad_data(void **state) {
  (void)state;
  char d[8192];
  /* Missing folder. */
  assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s/nowhere --out %s/r0", tmp, tmp), 1);
  expect(out, "nowhere");
  /* Truncated file: not a whole number of records. */
  snprintf(d, sizeof d, "%s/trunc", tmp);
  make_copy(d, 3073L * 100 + 17);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s --out %s/r1", d, tmp), 1);
  expect(out, "data_batch_1.bin");
  /* Empty file: wrong size. */
  snprintf(d, sizeof d, "%s/empty", tmp);
  make_copy(d, 0);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s --out %s/r2", d, tmp), 1);
  expect(out, "data_batch_1.bin");
  /* A label out of range in record 5. */
  snprintf(d, sizeof d, "%s/label", tmp);
  make_copy(d, -1);
  char f[8300];
  snprintf(f, sizeof f, "%s/data_batch_1.bin", d);
  FILE *fp = fopen(f, "r+b");
  assert_non_null(fp);
  fseek(fp, 3073L * 5, SEEK_SET);
  fputc(17, fp);
  fclose(fp);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s --out %s/r3", d, tmp), 1);
  expect(out, "data_batch_1.bin");
  expect(out, "17");
  /* No test_batch.bin. */
  snprintf(d, sizeof d, "%s/notest", tmp);
  make_copy(d, -1);
  snprintf(f, sizeof f, "%s/notest/test_batch.bin", tmp);
  unlink(f);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s --out %s/r4", d, tmp), 1);
  expect(out, "test_batch.bin");
}

static void test_unwritable_and_oom(void **state) {
  (void)state;
  char d[8192];
  snprintf(d, sizeof d, "%s/ro", tmp);
  mkdir(d, 0555);
  int root = geteuid() == 0;
  if (!root) {
    assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s --out %s/run", sample, d), 1);
    expect(out, d);
  }
  /* A file where the folder should be fails for root too. */
  snprintf(d, sizeof d, "%s/afile", tmp);
  FILE *fp = fopen(d, "w");
  fclose(fp);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --data %s --out %s/run", sample, d), 1);
  expect(out, "afile");
  /* WRN-28-10 at batch 8192 cannot fit: the message gives the need and suggests --batch. */
  assert_int_equal(run(out, sizeof out,
                       "train --model wrn-28-10 --batch 8192 --train-limit 8192 --test-limit 64 "
                       "--data %s --out %s/oom",
                       sample, tmp),
                   1);
  expect(out, "MiB");
  expect(out, "--batch");
}

/* Every tensor of two checkpoints holds the same bytes. */
static void same_weights(const char *a, const char *b) {
  wrn_st_file *fa, *fb;
  WT_OK(wrn_st_open(&fa, a));
  WT_OK(wrn_st_open(&fb, b));
  assert_int_equal(wrn_st_count(fa), wrn_st_count(fb));
  for (int i = 0; i < wrn_st_count(fa); i++) {
    const wrn_st_tensor *ta = wrn_st_at(fa, i), *tb = wrn_st_find(fb, ta->name);
    assert_non_null(tb);
    assert_int_equal(ta->nbytes, tb->nbytes);
    if (memcmp(ta->data, tb->data, ta->nbytes))
      fail_msg("tensor %s differs between %s and %s", ta->name, a, b);
  }
  wrn_st_close(fa);
  wrn_st_close(fb);
}

static void test_resume_exact(void **state) {
  (void)state;
  assert_int_equal(run(out, sizeof out, "train " SMALL " --dropout 0.3 --epochs 2 --data %s --out %s/full", sample, tmp), 0);
  expect(out, "json_stats: {");
  assert_int_equal(run(out, sizeof out, "train " SMALL " --dropout 0.3 --epochs 1 --data %s --out %s/part", sample, tmp), 0);
  /* The same folder again without --resume is refused, and the run in it left alone. */
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --out %s/part", sample, tmp), 1);
  expect(out, "--resume");
  assert_int_equal(run(out, sizeof out, "train --resume %s/part --epochs 2", tmp), 0);
  char a[8192], b[8192];
  snprintf(a, sizeof a, "%s/full/last.safetensors", tmp);
  snprintf(b, sizeof b, "%s/part/last.safetensors", tmp);
  same_weights(a, b);
  /* Two log lines each, with the original's keys. */
  snprintf(a, sizeof a, "%s/part/log.jsonl", tmp);
  FILE *f = fopen(a, "r");
  assert_non_null(f);
  int lines = 0;
  char line[65536];
  while (fgets(line, sizeof line, f)) {
    lines++;
    for (const char *const *k = (const char *const[]){"\"epoch\":", "\"lr\":", "\"loss\":", "\"train_loss\":", "\"train_acc\":", "\"test_loss\":", "\"test_acc\":", "\"train_time\":", "\"test_time\":", "\"n_parameters\":", "\"device\":\"", "\"driver\":\"", "\"wrn_version\":\"", "\"init\":\"\"", "\"lr_schedule\":\"step\"", "\"cutout\":0", NULL}; *k; k++)
      expect(line, *k);
  }
  fclose(f);
  assert_int_equal(lines, 2);
  /* Resuming the finished run says so, with its results, and trains nothing. */
  assert_int_equal(run(out, sizeof out, "train --resume %s/part", tmp), 0);
  expect(out, "has finished: 2 of 2 epochs done, final test accuracy");
  expect(out, "--epochs N");
  if (strstr(out, "kernels ready")) fail_msg("a finished run was set up again:\n%s", out);
  assert_int_equal(run(out, sizeof out, "--version"), 0);
  expect(out, "wrn ");
  /* eval on the checkpoint. */
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s --test-limit 64", b, sample), 0);
  expect(out, "accuracy");
  /* A short last batch (50 = 32 + 18) runs padded to the planned size and must give what one
   * full batch of 50 gives. */
  char whole[4096];
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s --test-limit 50 --batch 50", b, sample), 0);
  char *res = strstr(out, "loss ");
  assert_non_null(res);
  snprintf(whole, sizeof whole, "%.40s", res);
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s --test-limit 50 --batch 32", b, sample), 0);
  expect(out, whole);
}

static void test_bad_checkpoints(void **state) {
  (void)state;
  char ck[8192];
  snprintf(ck, sizeof ck, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(ck, &st) != 0) skip(); /* made by test_resume_exact */
  /* Another model: --init a WRN-16-2 from a WRN-10-1 checkpoint. */
  assert_int_equal(run(out, sizeof out, "train --model wrn-16-2 --train-limit 256 --test-limit 64 --batch 32 --epochs 1 --data %s --init %s --out %s/other", sample, ck, tmp), 1);
  expect(out, "another model");
  /* A corrupt header: the length field claims more than the file holds. */
  char bad[8300];
  snprintf(bad, sizeof bad, "%s/corrupt.safetensors", tmp);
  copy_file(ck, bad, -1);
  FILE *f = fopen(bad, "r+b");
  unsigned char huge[8] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0};
  fwrite(huge, 1, 8, f);
  fclose(f);
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s", bad, sample), 1);
  expect(out, "corrupt.safetensors");
  /* Broken JSON inside the header. */
  copy_file(ck, bad, -1);
  f = fopen(bad, "r+b");
  fseek(f, 9, SEEK_SET);
  fputs("#!", f);
  fclose(f);
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s", bad, sample), 1);
  expect(out, "corrupt.safetensors");
  /* The log names where the first weights came from. */
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --init %s --out %s/from-init", sample, ck, tmp), 0);
  char logp[8300], needle[8400];
  snprintf(logp, sizeof logp, "%s/from-init/log.jsonl", tmp);
  FILE *lf = fopen(logp, "r");
  assert_non_null(lf);
  char line[65536] = "";
  assert_non_null(fgets(line, sizeof line, lf));
  fclose(lf);
  snprintf(needle, sizeof needle, "\"init\":\"%s\"", ck);
  expect(line, needle);
  /* Missing checkpoint file. */
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s/none.safetensors --data %s", tmp, sample), 1);
  expect(out, "none.safetensors");
}

static void test_interrupt_resume(void **state) {
  (void)state;
  char full[8192], dir[8192];
  snprintf(full, sizeof full, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(full, &st) != 0) skip();
  snprintf(dir, sizeof dir, "%s/intr", tmp);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    close(pfd[0]);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "exec %s train " SMALL " --dropout 0.3 --epochs 2 --data %s --out %s", cli, sample, dir);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  /* Wait for training to start, then stop it mid-run. */
  FILE *p = fdopen(pfd[0], "r");
  char line[4096], all[1 << 15] = "";
  int sent = 0;
  while (fgets(line, sizeof line, p)) {
    strncat(all, line, sizeof all - strlen(all) - 1);
    if (!sent && strstr(line, "kernels ready")) {
      kill(pid, SIGTERM);
      sent = 1;
    }
  }
  fclose(p);
  int status;
  waitpid(pid, &status, 0);
  assert_true(sent);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    /* The run finished before the signal arrived: nothing to resume. */
    print_message("the run ended before SIGTERM; interrupt path not exercised\n");
    fail_msg("training finished before the signal; make the run longer");
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM);
  expect(all, "--resume");
  assert_int_equal(run(out, sizeof out, "train --resume %s", dir), 0);
  char b[8300];
  snprintf(b, sizeof b, "%s/last.safetensors", dir);
  same_weights(full, b);
}

/* A closed output pipe (wrn train | head) stops the run with a checkpoint and a resume hint
 * naming the binary's real path on stderr; the resumed run ends with the uninterrupted run's
 * weights. */
static void test_closed_pipe(void **state) {
  (void)state;
  char full[8192], dir[8192], err[8300], rcf[8300], cmd[32768];
  snprintf(full, sizeof full, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(full, &st) != 0) skip(); /* made by test_resume_exact */
  snprintf(dir, sizeof dir, "%s/pipe", tmp);
  snprintf(err, sizeof err, "%s/pipe.err", tmp);
  snprintf(rcf, sizeof rcf, "%s/pipe.rc", tmp);
  snprintf(cmd, sizeof cmd, "( %s train " SMALL " --dropout 0.3 --epochs 2 --data %s --out %s 2>%s; echo $? >%s ) | head -c 1 >/dev/null", cli, sample, dir, err, rcf);
  assert_int_equal(system(cmd), 0);
  FILE *f = fopen(rcf, "r");
  assert_non_null(f);
  int rc = -1;
  assert_int_equal(fscanf(f, "%d", &rc), 1);
  fclose(f);
  char msg[1 << 15] = "";
  f = fopen(err, "r");
  assert_non_null(f);
  size_t n = fread(msg, 1, sizeof msg - 1, f);
  msg[n] = '\0';
  fclose(f);
  if (rc != 128 + SIGPIPE) fail_msg("exit status %d, want %d; stderr:\n%s", rc, 128 + SIGPIPE, msg);
  expect(msg, "the output pipe was closed");
  expect(msg, "Resume with: /");
  expect(msg, " train --resume ");
  assert_int_equal(run(out, sizeof out, "train --resume %s", dir), 0);
  char b[8300];
  snprintf(b, sizeof b, "%s/last.safetensors", dir);
  same_weights(full, b);
}

/* ---------------------------------------------------------------- strict input */

/* A string of n copies of c under the temporary folder: "TMP/xxxx...". */
static void long_path(char *buf, size_t cap, size_t n) {
  size_t l = (size_t)snprintf(buf, cap, "%s/", tmp);
  while (l < n && l + 1 < cap) buf[l++] = 'x';
  buf[l] = '\0';
}

static void test_strict_flags(void **state) {
  (void)state;
  /* Numbers: plain decimal only, the whole text, in range. */
  static const char *const bad[][2] = {
      {"--lr", "0x10"},        {"--lr", "inf"},       {"--lr", "nan"},
      {"--lr", "' 0.1'"},      {"--lr", "0.1x"},      {"--lr", "1e999"},
      {"--epochs", "+3"},      {"--epochs", "3.0"},   {"--epochs", "99999999999999999999"},
      {"--batch", "1e2"},      {"--batch", "' 32'"},  {"--seed", "-1"},
      {"--seed", "0x1"},       {"--epoch-step", "10,,20"}, {"--epoch-step", "' 10'"},
      {"--train-limit", "-0x1"}, {"--dropout", "0.5e"}, {"--wd", "."},
      {"--model", "wrn-99999999999-1"}, {"--model", "'wrn- 10-1'"}, {"--model", "wrn-10-1x"},
      {"--model", "wrn-+10-1"}, {"--model", "wrn-10--1"}, {"--model", "wrn-0010-00001"},
      {"--device", "''"},      {"--data", "''"},      {"--out", "''"},
      {"--init", "''"},        {"--labels", "''"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    /* The small run's flags after the bad one: a binary that took the bad value would
     * train briefly and fail the check, not train for hours. */
    int rc = run(out, sizeof out, "train --data %s %s %s --out %s/strict " SMALL " --epochs 1",
                 sample, bad[i][0], bad[i][1], tmp);
    if (rc != 2) fail_msg("%s %s: exit %d, wanted 2:\n%s", bad[i][0], bad[i][1], rc, out);
    expect(out, bad[i][0]);
  }
  /* Each flag once. */
  assert_int_equal(run(out, sizeof out, "train --data %s --lr 0.1 --lr 0.2", sample), 2);
  expect(out, "--lr is given twice");
  assert_int_equal(run(out, sizeof out, "train --data %s --data %s", sample, sample), 2);
  expect(out, "--data");
  assert_int_equal(run(out, sizeof out, "train --resume %s/a --resume %s/b", tmp, tmp), 2);
  expect(out, "--resume");
  assert_int_equal(run(out, sizeof out, "eval --checkpoint a --checkpoint b --data %s", sample), 2);
  expect(out, "--checkpoint");
  /* Too long for its field: refused, never cut to another folder. */
  static char lp[1300];
  long_path(lp, sizeof lp, 1100);
  assert_int_equal(run(out, sizeof out, "train --data %s --out %s", sample, lp), 2);
  expect(out, "--out");
  assert_int_equal(run(out, sizeof out, "train --data %s", lp), 2);
  expect(out, "--data");
  assert_int_equal(run(out, sizeof out, "train --resume %s", lp), 2);
  expect(out, "--resume");
  assert_int_equal(run(out, sizeof out, "train --data %s --init %s", sample, lp), 2);
  expect(out, "--init");
  static char dev[400];
  memset(dev, 'd', 300);
  dev[300] = '\0';
  assert_int_equal(run(out, sizeof out, "train --data %s --device %s", sample, dev), 2);
  expect(out, "--device");
  assert_int_equal(run(out, sizeof out, "bench --device %s", dev), 2);
  expect(out, "--device");
  /* Nothing of those was created. */
  struct stat st;
  char p[8192];
  snprintf(p, sizeof p, "%s/strict", tmp);
  assert_int_not_equal(stat(p, &st), 0);
}

/* Writes dst from src's tensors and metadata with changes: an extra tensor, a NaN (or
 * infinity) as the first element of tensor `poison`, metadata key set to value. */
static void rewrite(const char *src, const char *dst, int extra, const char *poison, double bad,
                    const char *key, const char *value) {
  wrn_st_file *f;
  WT_OK(wrn_st_open(&f, src));
  wrn_st_writer *w;
  WT_OK(wrn_st_writer_new(&w));
  void *copy = NULL;
  for (int i = 0; i < wrn_st_count(f); i++) {
    const wrn_st_tensor *t = wrn_st_at(f, i);
    const void *data = t->data;
    if (poison && !strcmp(t->name, poison)) {
      copy = malloc(t->nbytes);
      assert_non_null(copy);
      memcpy(copy, t->data, t->nbytes);
      if (t->dtype == WRN_ST_F32) ((float *)copy)[0] = (float)bad;
      else ((double *)copy)[0] = bad;
      data = copy;
    }
    WT_OK(wrn_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, data));
  }
  static const float extra_v[4] = {1, 2, 3, 4};
  const int64_t extra_shape[1] = {4};
  if (extra) WT_OK(wrn_st_writer_add(w, "group9.block0.conv0", WRN_ST_F32, 1, extra_shape, extra_v));
  int have = 0;
  for (int i = 0; i < wrn_st_meta_count(f); i++) {
    const char *k, *v;
    wrn_st_meta_at(f, i, &k, &v);
    if (key && !strcmp(k, key)) v = value, have = 1;
    WT_OK(wrn_st_writer_meta(w, k, v));
  }
  if (key && !have) WT_OK(wrn_st_writer_meta(w, key, value));
  WT_OK(wrn_st_writer_write(w, dst));
  wrn_st_writer_free(w);
  free(copy);
  wrn_st_close(f);
}

/* The bytes of a file (NULL when it cannot be read); *n its length. */
static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  assert_non_null(b);
  *n = fread(b, 1, (size_t)len, f);
  b[*n] = '\0';
  fclose(f);
  return b;
}

/* dir: a copy of the run folder tmp/full (last.safetensors and log.jsonl). */
static void copy_run(const char *dir) {
  char a[8192], b[8192];
  mkdir(dir, 0755);
  const char *files[3] = {"last.safetensors", "best.safetensors", "log.jsonl"};
  for (int i = 0; i < 3; i++) {
    snprintf(a, sizeof a, "%s/full/%s", tmp, files[i]);
    snprintf(b, sizeof b, "%s/%s", dir, files[i]);
    struct stat st;
    if (stat(a, &st) == 0) copy_file(a, b, -1);
  }
}

static void test_checkpoint_contents(void **state) {
  (void)state;
  char ck[8192], bad[8300], dir[8192];
  snprintf(ck, sizeof ck, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(ck, &st) != 0) skip(); /* made by test_resume_exact */
  snprintf(bad, sizeof bad, "%s/poisoned.safetensors", tmp);
  /* NaN and infinite weights. */
  const double poisons[2] = {NAN, -INFINITY};
  for (int i = 0; i < 2; i++) {
    rewrite(ck, bad, 0, "conv0", poisons[i], NULL, NULL);
    assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s --test-limit 64", bad, sample), 1);
    expect(out, "'conv0' holds");
    expect(out, "poisoned.safetensors");
  }
  rewrite(ck, bad, 0, "momentum.fc.weight", NAN, NULL, NULL);
  snprintf(dir, sizeof dir, "%s/nanmom", tmp);
  copy_run(dir);
  char p[8300];
  snprintf(p, sizeof p, "%s/last.safetensors", dir);
  copy_file(bad, p, -1);
  assert_int_equal(run(out, sizeof out, "train --resume %s --epochs 3", dir), 1);
  expect(out, "momentum.fc.weight");
  /* A tensor the model does not have: eval and --init refuse, --init-extra on takes it. */
  snprintf(bad, sizeof bad, "%s/extra.safetensors", tmp);
  rewrite(ck, bad, 1, NULL, 0, NULL, NULL);
  assert_int_equal(run(out, sizeof out, "eval --checkpoint %s --data %s --test-limit 64", bad, sample), 1);
  expect(out, "group9.block0.conv0");
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --init %s --out %s/init-extra", sample, bad, tmp), 1);
  expect(out, "group9.block0.conv0");
  expect(out, "--init-extra");
  snprintf(p, sizeof p, "%s/init-extra", tmp);
  t_rm_tree(p);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --init %s --init-extra on --out %s/init-extra", sample, bad, tmp), 0);
  /* A larger model's checkpoint into a smaller one: refused, not partly taken. */
  assert_int_equal(run(out, sizeof out, "train --model wrn-16-1 --train-limit 64 --test-limit 64 --batch 32 --epochs 1 --progress off --data %s --out %s/w16", sample, tmp), 0);
  char w16[8300];
  snprintf(w16, sizeof w16, "%s/w16/last.safetensors", tmp);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --init %s --out %s/from16", sample, w16, tmp), 1);
  expect(out, "does not have");
  /* --resume with another --model: refused, the run's files untouched. */
  snprintf(p, sizeof p, "%s/w16/log.jsonl", tmp);
  size_t n1, n2, l1, l2;
  char *before = slurp(w16, &n1), *log_before = slurp(p, &l1);
  assert_int_not_equal(run(out, sizeof out, "train --resume %s/w16 --model wrn-10-1 --epochs 2", tmp), 0);
  expect(out, "wrn-16-1");
  char *after = slurp(w16, &n2), *log_after = slurp(p, &l2);
  assert_true(n1 == n2 && !memcmp(before, after, n1));
  assert_true(l1 == l2 && !memcmp(log_before, log_after, l1));
  free(before), free(after), free(log_before), free(log_after);
}

static void test_resume_metadata(void **state) {
  (void)state;
  char ck[8192], dir[8192], p[8300];
  snprintf(ck, sizeof ck, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(ck, &st) != 0) skip();
  static const char *const bad[][2] = {
      {"epoch", "-3"},           {"epoch", "2x"},          {"epoch", ""},
      {"epoch", "0x1"},          {"step_in_epoch", "-1"},  {"step_in_epoch", "99999"},
      {"partial_correct", "-1"}, {"partial_seen", "1e3"},  {"partial_seen", "100000"},
      {"partial_loss_sum", "nan"}, {"partial_loss_sum", "-2"}, {"partial_train_time", "inf"},
      {"best_test_acc", "150"},  {"best_test_acc", "-0.5"}, {"best_test_acc", "NaN"},
      {"format", "wrn-checkpoint-9"}, {"log_line", "{\"epoch\":7}"}, {"log_line", "not json"},
  };
  snprintf(dir, sizeof dir, "%s/meta", tmp);
  snprintf(p, sizeof p, "%s/last.safetensors", dir);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    t_rm_tree(dir);
    copy_run(dir);
    rewrite(ck, p, 0, NULL, 0, bad[i][0], bad[i][1]);
    int rc = run(out, sizeof out, "train --resume %s --epochs 3", dir);
    if (rc != 1) fail_msg("%s=%s: exit %d, wanted 1:\n%s", bad[i][0], bad[i][1], rc, out);
    expect(out, bad[i][0]);
    expect(out, "last.safetensors");
  }
  /* Fewer epochs than the run completed: said so. */
  t_rm_tree(dir);
  copy_run(dir);
  assert_int_equal(run(out, sizeof out, "train --resume %s --epochs 1", dir), 1);
  expect(out, "--epochs");
}

static void test_run_folder_states(void **state) {
  (void)state;
  char ck[8192], dir[8192], p[8300], q[8300];
  snprintf(ck, sizeof ck, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(ck, &st) != 0) skip();
  /* Only best.safetensors: a run, not overwritten; --resume continues from it. */
  snprintf(dir, sizeof dir, "%s/bestonly", tmp);
  mkdir(dir, 0755);
  snprintf(p, sizeof p, "%s/best.safetensors", dir);
  copy_file(ck, p, -1);
  size_t n1, n2;
  char *before = slurp(p, &n1);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --out %s", sample, dir), 1);
  expect(out, "best.safetensors");
  expect(out, "--resume");
  char *after = slurp(p, &n2);
  assert_true(n1 == n2 && !memcmp(before, after, n1));
  free(before), free(after);
  assert_int_equal(run(out, sizeof out, "train --resume %s", dir), 0);
  expect(out, "resuming");
  /* No checkpoint yet (an empty log): --resume says to start again, and a new run may. */
  snprintf(dir, sizeof dir, "%s/nockpt", tmp);
  mkdir(dir, 0755);
  snprintf(p, sizeof p, "%s/log.jsonl", dir);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fclose(f);
  assert_int_equal(run(out, sizeof out, "train --resume %s", dir), 1);
  expect(out, "no checkpoint");
  /* Temporary files of killed writes: those of dead processes go at the next start; one
   * of a live process stays. */
  pid_t dead = 0;
  for (pid_t c = 4000000; c > 1000; c -= 7919)
    if (kill(c, 0) != 0 && errno == ESRCH) {
      dead = c;
      break;
    }
  assert_true(dead > 0);
  snprintf(p, sizeof p, "%s/last.safetensors.tmp.%ld.0", dir, (long)dead);
  copy_file(ck, p, -1);
  snprintf(q, sizeof q, "%s/best.safetensors.tmp.%ld.3", dir, (long)getpid());
  copy_file(ck, q, -1);
  assert_int_equal(run(out, sizeof out, "train " SMALL " --epochs 1 --data %s --out %s", sample, dir), 0);
  assert_int_not_equal(stat(p, &st), 0);
  assert_int_equal(stat(q, &st), 0);
  unlink(q);
  /* A relative --data is stored absolute: a resume from elsewhere finds it. */
  snprintf(dir, sizeof dir, "%s/reldata", tmp);
  char parent[2048], cmd[16384];
  snprintf(parent, sizeof parent, "%s", sample);
  *strrchr(parent, '/') = '\0';
  snprintf(cmd, sizeof cmd, "cd %s && %s train " SMALL " --epochs 1 --data cifar10-sample --out %s >/dev/null 2>&1",
           parent, cli, dir);
  assert_int_equal(system(cmd), 0);
  snprintf(p, sizeof p, "%s/last.safetensors", dir);
  wrn_st_file *sf;
  WT_OK(wrn_st_open(&sf, p));
  const char *d = wrn_st_meta(sf, "--data");
  assert_non_null(d);
  assert_true(d[0] == '/');
  assert_non_null(strstr(d, "cifar10-sample"));
  wrn_st_close(sf);
  snprintf(cmd, sizeof cmd, "cd / && %s train --resume %s --epochs 2 --progress off >/dev/null 2>&1", cli, dir);
  assert_int_equal(system(cmd), 0);
}

/* A torn last log line: cut off on resume, every line whole JSON, the lost record added. */
static void test_log_repair(void **state) {
  (void)state;
  char dir[8192], p[8300];
  snprintf(dir, sizeof dir, "%s/full/last.safetensors", tmp);
  struct stat st;
  if (stat(dir, &st) != 0) skip();
  snprintf(dir, sizeof dir, "%s/torn", tmp);
  copy_run(dir);
  snprintf(p, sizeof p, "%s/log.jsonl", dir);
  size_t n;
  char *log = slurp(p, &n);
  assert_non_null(log);
  char *second = strchr(log, '\n');
  assert_non_null(second);
  second++;
  size_t keep = (size_t)(second - log) + strlen(second) / 2; /* the first line, half the second */
  FILE *f = fopen(p, "wb");
  fwrite(log, 1, keep, f);
  fclose(f);
  assert_int_equal(run(out, sizeof out, "train --resume %s", dir), 0);
  size_t m;
  char *fixed = slurp(p, &m);
  assert_true(m == n && !memcmp(fixed, log, n)); /* the same two lines as before */
  free(fixed);
  free(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_flags),       cmocka_unit_test(test_summary),
      cmocka_unit_test(test_bad_data),        cmocka_unit_test(test_unwritable_and_oom),
      cmocka_unit_test(test_resume_exact),    cmocka_unit_test(test_bad_checkpoints),
      cmocka_unit_test(test_interrupt_resume), cmocka_unit_test(test_closed_pipe),
      cmocka_unit_test(test_strict_flags),
      cmocka_unit_test(test_checkpoint_contents), cmocka_unit_test(test_resume_metadata),
      cmocka_unit_test(test_run_folder_states), cmocka_unit_test(test_log_repair)};
  return WT_RUN_GROUP("cli", tests, setup, teardown);
}
