/* libFuzzer target: the strict JSON parser (wrn_jv_parse) and the JSON-lines writer: any
 * text written as a key and a value must come back from the parser as valid JSON. */
#include "fuzz_util.h"
#include "wrn_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const wrn_jv *v, int depth) {
  if (depth > 70) abort(); /* the parser bounds nesting at 64 */
  for (size_t i = 0; i < wrn_jv_count(v); i++) {
    if (wrn_jv_kind(v) == WRN_JV_OBJECT && !wrn_jv_key(v, i)) abort();
    walk(wrn_jv_item(v, i), depth + 1);
  }
  (void)wrn_jv_string(v);
  (void)wrn_jv_number(v, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wrn_jv *v;
  if (wrn_jv_parse(&v, (const char *)data, size, "fuzz input") == WRN_OK) {
    walk(v, 0);
    wrn_jv_free(v);
  }
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  size_t half = strlen(s) / 2;
  char key[72]; /* "k:" and text: never one of the other two keys */
  snprintf(key, sizeof key, "k:%.*s", (int)(half < 63 ? half : 63), s);
  wrn_json *j;
  if (wrn_json_new(&j) != WRN_OK) abort();
  double d = 0;
  memcpy(&d, data, size < sizeof d ? size : sizeof d);
  if (wrn_json_str(j, key, s + half) != WRN_OK || wrn_json_double(j, "x", d) != WRN_OK ||
      wrn_json_int(j, "n", (int64_t)size) != WRN_OK)
    abort();
  const char *t = wrn_json_text(j);
  if (wrn_jv_parse(&v, t, strlen(t), "written line") != WRN_OK) {
    fprintf(stderr, "the writer made invalid JSON: %s\n%s\n", wrn_last_error(), t);
    abort();
  }
  if (!wrn_jv_get(v, "x") || !wrn_jv_get(v, "n")) abort();
  wrn_jv_free(v);
  if (strchr(t, '\n')) abort(); /* one record, one line */
  wrn_json_free(j);
  free(s);
  return 0;
}
