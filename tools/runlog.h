/* A training run as wrn plot and wrn compare read it: the epochs of its log.jsonl (one JSON
 * object per epoch, as wrn train writes them) and the options stored in its last record. */
#ifndef WRN_RUNLOG_H
#define WRN_RUNLOG_H

#include <stddef.h>

#include "wrn_io.h"

typedef struct run_epoch {
  int epoch;
  double lr, train_loss, train_acc, test_loss, test_acc, train_time, test_time; /* NaN: absent */
} run_epoch;

typedef struct run_log {
  char path[4096]; /* the log.jsonl read */
  char name[256];  /* the run folder's name */
  char model[64];  /* "model" of the last record, or "?" */
  run_epoch *ep;   /* [n] by epoch, one each (a repeated epoch: the later line wins) */
  int n;
  wrn_jv *last; /* the last epoch's whole record: the run's options */
} run_log;

/* Reads RUN: a run folder (RUN/log.jsonl) or a log file. Lines that are not a JSON object
 * with an "epoch" (a line cut short by a crash, say) are skipped with a warning naming the
 * file and line. Returns 0, or 1 after printing "wrn <cmd>: ..." when the file cannot be read
 * or holds no epoch. */
int run_log_read(const char *cmd, const char *arg, run_log *r);
void run_log_free(run_log *r);
/* 1 for the keys that change every epoch (epoch, lr, losses, accuracies, times, ...), 0 for
 * the run's options and descriptions. */
int run_log_is_metric(const char *key);
/* A value as text: strings as they are, numbers in the shortest exact form, true/false. */
void run_log_text(const wrn_jv *v, char *out, size_t n);
/* The epoch with the lowest test error (the first of equals); -1 when none has one. */
int run_log_best(const run_log *r);
/* Seconds the run spent training and testing, summed over its epochs. */
double run_log_seconds(const run_log *r);

#endif
