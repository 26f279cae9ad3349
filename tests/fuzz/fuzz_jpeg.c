/* libFuzzer target: the image-folder decoder (wrn_jpeg_load, libjpeg-turbo) through both
 * pipelines at a small output size: the training one (RandomResizedCrop + flip, a fixed
 * seed; the first byte is the image's index) and the evaluation one (Resize + CenterCrop).
 * The rest of the input is the file. One decoder serves every input, as a loader thread's. */
#include "fuzz_util.h"
#include "wrn_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static wrn_jpeg *j;
  if (!j && wrn_jpeg_new(&j) != WRN_OK) abort();
  if (size < 1) return 0;
  char path[512];
  fuzz_write("input.JPEG", data + 1, size - 1, path);
  enum { SIZE = 16 };
  static uint8_t out[3 * SIZE * SIZE];
  wrn_image_pipeline tr = wrn_image_pipeline_default(1), ev = wrn_image_pipeline_default(0);
  tr.size = ev.size = SIZE;
  ev.resize = 18;
  tr.seed = 7;
  (void)wrn_jpeg_load(j, path, &tr, 1, data[0], out);
  (void)wrn_jpeg_load(j, path, &ev, 0, 0, out);
  return 0;
}
