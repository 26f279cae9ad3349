/* libFuzzer target: the safetensors reader (wrn_st_open) and every accessor on what it
 * accepts, then the checkpoint metadata a resume reads from it. */
#include "fuzz_util.h"
#include "train_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[512];
  fuzz_write("in.safetensors", data, size, path);
  wrn_st_file *f;
  if (wrn_st_open(&f, path) != WRN_OK) return 0;
  for (int i = 0; i < wrn_st_count(f); i++) {
    const wrn_st_tensor *t = wrn_st_at(f, i);
    if (wrn_st_find(f, t->name) != t) abort();
    size_t es = wrn_st_dtype_size(t->dtype);
    if (es && t->nbytes < (1u << 20)) {
      unsigned char *dst = malloc(t->nbytes ? t->nbytes : 1);
      if (!dst) abort();
      /* Reads back what the header says; a well-formed tensor must read. */
      if (wrn_st_read(f, t->name, t->dtype, t->ndim, t->shape, dst, t->nbytes) != WRN_OK)
        abort();
      if (t->nbytes && memcmp(dst, t->data, t->nbytes)) abort();
      free(dst);
    }
  }
  int n = wrn_st_meta_count(f);
  const char **keys = calloc((size_t)n + 1, sizeof *keys), **vals = calloc((size_t)n + 1, sizeof *vals);
  if (!keys || !vals) abort();
  for (int i = 0; i < n; i++) {
    wrn_st_meta_at(f, i, &keys[i], &vals[i]);
    if (wrn_st_meta(f, keys[i]) == NULL) abort();
  }
  wrn_resume_point r;
  wrn_resume_point_parse(&r, keys, vals, n, path, 200, 390, 128);
  const char *line = wrn_st_meta(f, "log_line");
  if (line) wrn_resume_log_line_check(line, r.completed, path);
  free(keys), free(vals);
  wrn_train_options o;
  wrn_train_options_default(&o);
  wrn_train_options_load(&o, path, 0);
  wrn_st_close(f);
  return 0;
}
