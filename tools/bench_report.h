/* wrn bench results: one row per device and batch, the machine they were measured on, the
 * JSON file that holds them (written by wrn bench --json, read by wrn report), and the
 * Markdown + SVG report made from one or more such sets (wrn bench --report, wrn report). */
#ifndef WRN_BENCH_REPORT_H
#define WRN_BENCH_REPORT_H

#include "wrn.h"

/* One conv layer's pass in a profiled step: its algorithm choice and device time. */
typedef struct bench_conv {
  char layer[96], pass[20], algo[128], shape[64];
  double ms, gflops; /* per step; useful FLOPs of the direct convolution per second */
} bench_conv;

typedef struct bench_row {
  wrn_device_info dev;
  int batch;
  int ok;
  char error[1024];
  double ms_median, ms_min, ms_max, ms_p25, ms_p75;
  double images_per_s, tflops, peak_gflops, peak_share;
  double ready_cold_s, ready_warm_s, warmup_s;
  size_t mem_peak;
  wrn_profile prof; /* summed over prof_steps */
  int prof_steps;
  double step_flops; /* useful FLOPs of one step */
  bench_conv *conv;  /* per conv layer and pass (malloc'ed; NULL when not profiled) */
  int nconv;
} bench_row;

/* The host a set was measured on, and how busy it was meanwhile. */
typedef struct bench_host {
  char name[256], cpu[256], os[256];
  int cores;
  double load_start[3], load_end[3]; /* 1, 5 and 15-minute load averages; NaN: unknown */
  /* Cores that other processes kept busy, on average, during the run (CPU time of the whole
   * machine from /proc/stat less this process's own); NaN where /proc/stat is not there. */
  double other_cores;
  int busy; /* other_cores above max(0.2, 5% of the cores): timings may be low */
  /* sampling state between bench_host_start and bench_host_end */
  double t0, self0, machine0;
} bench_host;

typedef struct bench_set {
  char model[64];
  int eval; /* mode: 0 train, 1 eval */
  int steps, warmup, profile_steps;
  double dropout;
  char version[128]; /* wrn_version() of the binary that measured */
  bench_host host;
  bench_row *rows;
  int n;
  char source[4096]; /* the file it was read from ("" when measured now) */
} bench_set;

/* Names the host and takes the first sample (before the run). */
void bench_host_start(bench_host *h);
/* Takes the second sample and decides whether the machine was busy. */
void bench_host_end(bench_host *h);

/* Writes the set as JSON (atomically: PATH.tmp, then renamed). 0, or 1 after a message. */
int bench_json_write(const char *cmd, const char *path, const bench_set *s);
/* Reads a file written by bench_json_write (or by an older wrn, without "host" and
 * "wrn_version"). rows are malloc'ed: free with bench_set_free. 0, or 1 after a message that
 * names the file and what is wrong. */
int bench_json_read(const char *cmd, const char *path, bench_set *s);
void bench_set_free(bench_set *s);

/* Writes DIR/report.md, DIR/images_per_s.svg and DIR/profile.svg (and PNG copies where
 * rsvg-convert is installed) for the rows of every set: rows sorted by images/s within each
 * model and mode, TFLOP/s and share of each device's own measured peak, peak memory, the
 * per-op profile as stacked shares with only the categories that occur. */
int bench_report_write(const char *cmd, const char *dir, const bench_set *sets, int nsets);

#endif
