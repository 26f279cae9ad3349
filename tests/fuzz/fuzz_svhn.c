/* libFuzzer target: the SVHN .mat reader (wrn_dataset_open with --dataset svhn, libmatio).
 * The first byte picks the options (bit 0: extra_32x32.mat too; bits 1-3: the training
 * limit; bits 4-7: the test limit); the rest is one MATLAB file, which train_32x32.mat,
 * test_32x32.mat and extra_32x32.mat all name (links to one file). */
#include "fuzz_util.h"
#include "wrn_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const char *dir = fuzz_dir();
  char path[512], sub[512], link[600];
  snprintf(sub, sizeof sub, "%s/svhn", dir);
  mkdir(sub, 0755);
  static int linked;
  fuzz_write("svhn/input.mat", data + 1, size - 1, path);
  if (!linked) {
    const char *names[3] = {"train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"};
    for (int i = 0; i < 3; i++) {
      snprintf(link, sizeof link, "%s/%s", sub, names[i]);
      unlink(link);
      if (symlink("input.mat", link) != 0) abort();
    }
    linked = 1;
  }
  wrn_dataset_options o = {WRN_DATASET_SVHN, WRN_LABELS_FINE, (size_t)(data[0] >> 1 & 7),
                           (size_t)(data[0] >> 4), data[0] & 1};
  wrn_dataset ds;
  if (wrn_dataset_open(&ds, sub, &o) == WRN_OK) {
    if (ds.n_classes != 10 || ds.train.n < 1 || ds.test.n < 1) abort();
    for (size_t i = 0; i < ds.train.n; i++)
      if (ds.train.labels[i] < 0 || ds.train.labels[i] >= 10) abort();
    for (size_t i = 0; i < ds.test.n; i++)
      if (ds.test.labels[i] < 0 || ds.test.labels[i] >= 10) abort();
  }
  wrn_dataset_free(&ds);
  return 0;
}
