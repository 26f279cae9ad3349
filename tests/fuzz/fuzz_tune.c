/* libFuzzer target: the tuner store reader (host/tune.c): any file gives entries whose keys
 * and values fit their fields and hold no tab or newline. */
#include "fuzz_util.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[512];
  fuzz_write("tune.txt", data, size, path);
  FILE *f = fopen(path, "r");
  if (!f) abort();
  struct wrn_tune_entry *list = NULL;
  int cnt = 0, cap = 0;
  wrn_tune_read_entries(f, &list, &cnt, &cap);
  fclose(f);
  for (int i = 0; i < cnt; i++) {
    if (!memchr(list[i].key, 0, sizeof list[i].key) || !memchr(list[i].val, 0, sizeof list[i].val))
      abort();
    if (strpbrk(list[i].key, "\t\n") || strpbrk(list[i].val, "\t\n") || !list[i].key[0])
      abort();
    for (int k = 0; k < i; k++)
      if (!strcmp(list[k].key, list[i].key)) abort(); /* one entry per key */
  }
  free(list);
  return 0;
}
