/* libFuzzer target: what the ranks of an MPI run send each other and the trainer then uses.
 * The devices' speeds (doubles gathered from every rank, any bit pattern) become the split of
 * the global batch (wrn_split_by_speed), which must stay a split: every worker at least its
 * minimum, the slices summing to the batch, nothing undefined on NaN, infinities, denormals
 * or huge values. Input: w-1 (1 byte, w <= 64), B - w (2 bytes), min_b (1 byte, reduced to
 * what B allows), then up to w doubles (missing ones are 0). */
#include "fuzz_util.h"
#include "train_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  int w = 1 + data[0] % 64;
  int B = w + (int)((unsigned)data[1] | (unsigned)data[2] << 8) % 4096;
  int min_b = data[3] % (B / w + 1);
  double speed[64] = {0};
  size_t n = (size - 4) / sizeof(double);
  if (n > (size_t)w) n = (size_t)w;
  memcpy(speed, data + 4, n * sizeof(double));
  int b[64];
  wrn_split_by_speed(b, speed, w, B, min_b);
  long sum = 0;
  for (int i = 0; i < w; i++) {
    if (b[i] < min_b || b[i] > B) abort();
    sum += b[i];
  }
  if (sum != B) abort();
  return 0;
}
