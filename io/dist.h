/* Private to the trainer: the processes of a multi-process run (MPI), behind a small
 * interface so that the rest of the library never sees MPI. Built without MPI
 * (WRN_HAVE_MPI undefined) every run is one process: wrn_dist_init refuses, and the other
 * functions act as rank 0 of 1.
 *
 * Every collective waits at most the timeout (wrn_dist_init): a rank that died or hangs
 * makes the others fail with WRN_STATUS_IO naming the operation, never wait forever. The
 * caller (a command, not the library) then ends the job with wrn_dist_abort. */
#ifndef WRN_DIST_H
#define WRN_DIST_H

#include "train_internal.h"

/* 1 when this process is one of several ranks of an initialised run. */
int wrn_dist_active(void);
/* Broadcasts bytes from rank 0 to every rank. */
wrn_status wrn_dist_bcast(void *buf, size_t bytes, const char *what);
/* all[r * n + k] = rank r's mine[k], for every rank. */
wrn_status wrn_dist_allgather(const double *mine, double *all, int n, const char *what);
/* In-place sum (or max with max = 1) over ranks, blocking. */
wrn_status wrn_dist_allreduce(double *buf, size_t n, int max, const char *what);
/* Bucketed sums while other work goes on: wrn_dist_iallreduce starts the in-place sum of
 * buf[0, n) (buf must stay valid), wrn_dist_progress lets started sums advance without
 * waiting, wrn_dist_wait_all waits for every started one. Buckets are started in the same
 * order on every rank. */
wrn_status wrn_dist_iallreduce(double *buf, size_t n);
wrn_status wrn_dist_progress(void);
wrn_status wrn_dist_wait_all(const char *what);
/* Seconds spent in wrn_dist_wait_all and blocking collectives since the last call. */
double wrn_dist_take_wait_seconds(void);

#endif
