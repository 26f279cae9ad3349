/* libFuzzer target: the CIFAR-10 / CIFAR-100 reader (wrn_dataset_open). The first byte picks
 * the layout and where the input splits into the training and the test file. */
#include "fuzz_util.h"
#include "wrn_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int c100 = data[0] & 1;
  size_t rest = size - 1, rec = c100 ? 3074 : 3073, cut = (size_t)(data[0] >> 1) * rec;
  if (cut > rest) cut = rest;
  const char *dir = fuzz_dir();
  char path[512], sub[512];
  snprintf(sub, sizeof sub, "%s/data", dir);
  mkdir(sub, 0755);
  const char *names[2][2] = {{"data/data_batch_1.bin", "data/test_batch.bin"},
                             {"data/train.bin", "data/test.bin"}};
  const char *other[2][2] = {{"data/train.bin", "data/test.bin"},
                             {"data/data_batch_1.bin", "data/test_batch.bin"}};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, other[c100][i]);
    unlink(path);
  }
  fuzz_write(names[c100][0], data + 1, cut, path);
  fuzz_write(names[c100][1], data + 1 + cut, rest - cut, path);
  wrn_dataset_options o = {WRN_DATASET_AUTO, (data[0] & 2) ? WRN_LABELS_COARSE : WRN_LABELS_FINE,
                           0, 0, 0};
  if (!c100) o.labels = WRN_LABELS_FINE;
  wrn_dataset ds;
  if (wrn_dataset_open(&ds, sub, &o) == WRN_OK) {
    for (size_t i = 0; i < ds.train.n; i++)
      if (ds.train.labels[i] < 0 || ds.train.labels[i] >= ds.n_classes) abort();
    for (size_t i = 0; i < ds.test.n; i++)
      if (ds.test.labels[i] < 0 || ds.test.labels[i] >= ds.n_classes) abort();
    wrn_dataset_free(&ds);
  }
  return 0;
}
