/* The processes of a multi-process run through MPI (io/dist.h, wrn_train.h). Collectives are
 * the non-blocking kind, polled with a deadline, so that a dead peer becomes an error. */
#include "dist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef WRN_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank, g_size = 1, g_init;
static double g_wait;

int wrn_dist_built(void) {
#ifdef WRN_HAVE_MPI
  return 1;
#else
  return 0;
#endif
}

int wrn_dist_rank(void) { return g_rank; }
int wrn_dist_size(void) { return g_size; }
int wrn_dist_active(void) { return g_init && g_size > 1; }
double wrn_dist_take_wait_seconds(void) {
  double w = g_wait;
  g_wait = 0;
  return w;
}

#ifdef WRN_HAVE_MPI

static int g_ours;
static double g_timeout = 120;

#define MAX_REQS 4096
static MPI_Request g_reqs[MAX_REQS];
static int g_nreq;

static wrn_status mpi_fail(int e, const char *call) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(e, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", e);
  return wrn_fail(WRN_STATUS_IO, "%s failed on rank %d of %d: %s", call, g_rank, g_size, msg);
}

wrn_status wrn_dist_init(int *argc, char ***argv, double timeout_s) {
  if (g_init) return WRN_OK;
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;
    int e = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (e != MPI_SUCCESS) return wrn_fail(WRN_STATUS_IO, "MPI_Init_thread failed (%d)", e);
    g_ours = 1;
  }
  /* Errors come back as codes (and become statuses) instead of ending the process. */
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  if (timeout_s > 0) g_timeout = timeout_s;
  g_init = 1;
  return WRN_OK;
}

void wrn_dist_finalize(void) {
  if (g_init && g_ours) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
  }
  g_init = 0, g_size = 1, g_rank = 0;
}

void wrn_dist_abort(int code) {
  if (g_init) MPI_Abort(MPI_COMM_WORLD, code);
}

static void nap(void) {
  struct timespec ts = {0, 100000}; /* 0.1 ms */
  nanosleep(&ts, NULL);
}

/* Waits for n requests until the deadline. */
static wrn_status wait_reqs(MPI_Request *r, int n, const char *what) {
  double t0 = wrn_seconds();
  for (;;) {
    int done = 0;
    int e = MPI_Testall(n, r, &done, MPI_STATUSES_IGNORE);
    if (e != MPI_SUCCESS) return mpi_fail(e, what);
    if (done) break;
    if (wrn_seconds() - t0 > g_timeout)
      return wrn_fail(WRN_STATUS_IO, "%s: rank %d of %d heard nothing from the other ranks for "
                      "%.0f s (did a rank die?)", what, g_rank, g_size, g_timeout);
    nap();
  }
  g_wait += wrn_seconds() - t0;
  return WRN_OK;
}

wrn_status wrn_dist_bcast(void *buf, size_t bytes, const char *what) {
  if (!wrn_dist_active()) return WRN_OK;
  for (size_t off = 0; off < bytes;) {
    size_t k = bytes - off < (size_t)1 << 30 ? bytes - off : (size_t)1 << 30;
    MPI_Request r;
    int e = MPI_Ibcast((char *)buf + off, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD, &r);
    if (e != MPI_SUCCESS) return mpi_fail(e, what);
    IO_TRY(wait_reqs(&r, 1, what));
    off += k;
  }
  return WRN_OK;
}

wrn_status wrn_dist_allgather(const double *mine, double *all, int n, const char *what) {
  if (!wrn_dist_active()) {
    memcpy(all, mine, (size_t)n * sizeof *all);
    return WRN_OK;
  }
  MPI_Request r;
  int e = MPI_Iallgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, MPI_COMM_WORLD, &r);
  if (e != MPI_SUCCESS) return mpi_fail(e, what);
  return wait_reqs(&r, 1, what);
}

wrn_status wrn_dist_allreduce(double *buf, size_t n, int max, const char *what) {
  if (!wrn_dist_active() || n == 0) return WRN_OK;
  MPI_Request r;
  int e = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, max ? MPI_MAX : MPI_SUM,
                         MPI_COMM_WORLD, &r);
  if (e != MPI_SUCCESS) return mpi_fail(e, what);
  return wait_reqs(&r, 1, what);
}

wrn_status wrn_dist_iallreduce(double *buf, size_t n) {
  if (!wrn_dist_active() || n == 0) return WRN_OK;
  if (g_nreq == MAX_REQS) IO_TRY(wrn_dist_wait_all("combining gradients"));
  if (n > INT32_MAX)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "a gradient bucket of %zu values is too large",
                    n);
  int e = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD,
                         &g_reqs[g_nreq]);
  if (e != MPI_SUCCESS) return mpi_fail(e, "MPI_Iallreduce of a gradient bucket");
  g_nreq++;
  return WRN_OK;
}

wrn_status wrn_dist_progress(void) {
  if (!g_nreq) return WRN_OK;
  int done = 0;
  int e = MPI_Testall(g_nreq, g_reqs, &done, MPI_STATUSES_IGNORE);
  if (e != MPI_SUCCESS) return mpi_fail(e, "MPI_Testall of the gradient buckets");
  if (done) g_nreq = 0;
  return WRN_OK;
}

wrn_status wrn_dist_wait_all(const char *what) {
  if (!g_nreq) return WRN_OK;
  wrn_status s = wait_reqs(g_reqs, g_nreq, what);
  g_nreq = 0;
  return s;
}

#else /* no MPI */

wrn_status wrn_dist_init(int *argc, char ***argv, double timeout_s) {
  (void)argc, (void)argv, (void)timeout_s;
  return wrn_fail(WRN_STATUS_UNSUPPORTED, "this wrn was built without MPI (install "
                  "libopenmpi-dev and configure again to run under mpirun)");
}
void wrn_dist_finalize(void) {}
void wrn_dist_abort(int code) { (void)code; }
wrn_status wrn_dist_bcast(void *buf, size_t bytes, const char *what) { return WRN_OK; }
wrn_status wrn_dist_allgather(const double *mine, double *all, int n, const char *what) {
  memcpy(all, mine, (size_t)n * sizeof *all);
  return WRN_OK;
}
wrn_status wrn_dist_allreduce(double *buf, size_t n, int max, const char *what) { return WRN_OK; }
wrn_status wrn_dist_iallreduce(double *buf, size_t n) { return WRN_OK; }
wrn_status wrn_dist_progress(void) { return WRN_OK; }
wrn_status wrn_dist_wait_all(const char *what) { return WRN_OK; }

#endif
