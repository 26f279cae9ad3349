/* Flag parsing for the wrn command: values are checked before any work, and a bad one is
 * refused with a message naming the flag (exit status 2). */
#ifndef WRN_ARGS_H
#define WRN_ARGS_H

#include <stdint.h>

/* Each returns 0 on success, or prints "wrn <cmd>: <flag> ..." and returns 2. */
int arg_int(const char *cmd, const char *flag, const char *val, long lo, long hi, int *out);
int arg_u64(const char *cmd, const char *flag, const char *val, uint64_t *out);
int arg_double(const char *cmd, const char *flag, const char *val, double lo, double hi,
               double *out);
/* Comma-separated integers (e.g. --epoch-step 60,120,160); at most max of them. */
int arg_int_list(const char *cmd, const char *flag, const char *val, int lo, int hi, int *out,
                 int max, int *count);
/* One of the words in choices (NULL-terminated); *out = its index. */
int arg_choice(const char *cmd, const char *flag, const char *val, const char *const *choices,
               int *out);
/* Refuses a flag given a second time, or with an empty value unless allow_empty (val may be
 * NULL for a flag without one); seen[] holds the *n flags met so far (at most max). 0, or 2
 * after a message. */
int arg_once(const char *cmd, const char *flag, const char *val, int allow_empty,
             const char **seen, int *n, int max);
/* The value after argv[*i] for a flag that needs one; NULL (after a message) when missing. */
const char *arg_value(const char *cmd, int argc, char **argv, int *i);

#endif
