#include "bench_report.h"

#include "svg.h"
#include "wrn_io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the host */

/* CPU seconds the whole machine spent busy (not idle or waiting for I/O) since boot, from
 * /proc/stat; NaN where it cannot be read. */
static double machine_busy_seconds(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return NAN;
  unsigned long long v[8] = {0};
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                 &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  if (n < 4 || hz <= 0) return NAN;
  /* user nice system idle iowait irq softirq steal: all but idle and iowait */
  return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
}

static double self_cpu_seconds(void) {
  struct rusage u;
  if (getrusage(RUSAGE_SELF, &u) != 0) return NAN;
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + (double)u.ru_stime.tv_sec +
         u.ru_stime.tv_usec * 1e-6;
}

/* The 1, 5 and 15-minute load averages from /proc/loadavg; NaN where it is not there. */
static void load_avg(double out[3]) {
  FILE *f = fopen("/proc/loadavg", "r");
  if (!f || fscanf(f, "%lf %lf %lf", &out[0], &out[1], &out[2]) != 3)
    out[0] = out[1] = out[2] = NAN;
  if (f) fclose(f);
}

/* The CPU's model name from /proc/cpuinfo ("model name" on x86, "Model"/"Hardware" or the
 * implementer on Arm), else the machine type from uname. */
static void cpu_model(char *out, size_t n, const char *machine) {
  snprintf(out, n, "%s", machine);
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!colon) continue;
    if (!strncmp(line, "model name", 10) || !strncmp(line, "Model\t", 6) ||
        !strncmp(line, "Hardware", 8)) {
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      v[strcspn(v, "\n")] = '\0';
      if (*v) snprintf(out, n, "%s", v);
      break;
    }
  }
  fclose(f);
}

void bench_host_start(bench_host *h) {
  memset(h, 0, sizeof *h);
  struct utsname u;
  const char *machine = "unknown";
  if (uname(&u) == 0) {
    snprintf(h->os, sizeof h->os, "%s %s", u.sysname, u.release);
    machine = u.machine;
  }
  if (gethostname(h->name, sizeof h->name) != 0) snprintf(h->name, sizeof h->name, "unknown");
  h->name[sizeof h->name - 1] = '\0';
  cpu_model(h->cpu, sizeof h->cpu, machine);
  long c = sysconf(_SC_NPROCESSORS_ONLN);
  h->cores = c > 0 ? (int)c : 1;
  load_avg(h->load_start);
  h->load_end[0] = h->load_end[1] = h->load_end[2] = NAN;
  h->other_cores = NAN;
  h->t0 = wrn_seconds();
  h->self0 = self_cpu_seconds();
  h->machine0 = machine_busy_seconds();
}

void bench_host_end(bench_host *h) {
  load_avg(h->load_end);
  double wall = wrn_seconds() - h->t0;
  double others = (machine_busy_seconds() - h->machine0) - (self_cpu_seconds() - h->self0);
  if (wall > 0 && isfinite(others)) h->other_cores = others > 0 ? others / wall : 0;
  double limit = 0.05 * h->cores > 0.2 ? 0.05 * h->cores : 0.2;
  /* Without /proc/stat, the load average at the start says what ran before this one. */
  h->busy = isfinite(h->other_cores) ? h->other_cores > limit : h->load_start[0] > limit + 0.5;
}

/* ---------------------------------------------------------------- JSON */

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

static void json_num(FILE *f, double v) {
  if (isfinite(v) && v == (double)(long long)v && fabs(v) < 1e15) fprintf(f, "%lld", (long long)v);
  else if (isfinite(v)) fprintf(f, "%.6g", v);
  else fputs("null", f);
}

int bench_json_write(const char *cmd, const char *path, const bench_set *s) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(stderr, "wrn %s: cannot write %s: %s\n", cmd, tmp, strerror(errno));
    return 1;
  }
  fprintf(f, "{\"model\":");
  json_str(f, s->model);
  fprintf(f, ",\"mode\":\"%s\",\"steps\":%d,\"warmup\":%d,\"profile_steps\":%d,\"dropout\":",
          s->eval ? "eval" : "train", s->steps, s->warmup, s->profile_steps);
  json_num(f, s->dropout);
  fprintf(f, ",\"wrn_version\":");
  json_str(f, s->version);
  const bench_host *h = &s->host;
  fprintf(f, ",\"host\":{\"name\":");
  json_str(f, h->name);
  fprintf(f, ",\"cpu\":");
  json_str(f, h->cpu);
  fprintf(f, ",\"os\":");
  json_str(f, h->os);
  fprintf(f, ",\"cores\":%d", h->cores);
  for (int k = 0; k < 2; k++) {
    const double *l = k ? h->load_end : h->load_start;
    fprintf(f, ",\"%s\":[", k ? "load_avg_end" : "load_avg_start");
    for (int i = 0; i < 3; i++) {
      if (i) fputc(',', f);
      json_num(f, l[i]);
    }
    fputc(']', f);
  }
  fprintf(f, ",\"other_cpu_cores\":");
  json_num(f, h->other_cores);
  fprintf(f, ",\"busy\":%s}", h->busy ? "true" : "false");
  fprintf(f, ",\"rows\":[");
  for (int i = 0; i < s->n; i++) {
    const bench_row *r = &s->rows[i];
    fprintf(f, "%s\n{\"platform\":", i ? "," : "");
    json_str(f, r->dev.platform_name);
    fprintf(f, ",\"vendor\":");
    json_str(f, r->dev.vendor);
    fprintf(f, ",\"device\":");
    json_str(f, r->dev.name);
    fprintf(f, ",\"driver\":");
    json_str(f, r->dev.driver);
    fprintf(f, ",\"device_index\":\"%d:%d\",\"batch\":%d,\"ok\":%s,\"error\":",
            r->dev.platform_index, r->dev.device_index, r->batch, r->ok ? "true" : "false");
    if (r->ok) fputs("null", f);
    else json_str(f, r->error);
    if (r->ok) {
      const struct {
        const char *key;
        double v;
      } spread[] = {{"median", r->ms_median}, {"min", r->ms_min}, {"p25", r->ms_p25},
                {"p75", r->ms_p75}, {"max", r->ms_max}},
        vals[] = {{"images_per_s", r->images_per_s}, {"tflops", r->tflops},
                  {"peak_gflops", r->peak_gflops}, {"peak_share", r->peak_share},
                  {"mem_peak_bytes", (double)r->mem_peak}, {"ready_cold_s", r->ready_cold_s},
                  {"ready_warm_s", r->ready_warm_s}, {"warmup_s", r->warmup_s}};
      fprintf(f, ",\"ms_per_step\":{");
      for (size_t k = 0; k < sizeof spread / sizeof spread[0]; k++) {
        fprintf(f, "%s\"%s\":", k ? "," : "", spread[k].key);
        json_num(f, spread[k].v);
      }
      fputc('}', f);
      for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        fprintf(f, ",\"%s\":", vals[k].key);
        json_num(f, vals[k].v);
      }
      fprintf(f, ",\"profile\":[");
      double total = 0;
      for (int c = 0; c < WRN_CAT_COUNT; c++) total += r->prof.ms[c];
      int first = 1;
      for (int c = 0; c < WRN_CAT_COUNT; c++) {
        if (!r->prof.launches[c]) continue;
        double ms = r->prof.ms[c] / (r->prof_steps ? r->prof_steps : 1);
        fprintf(f, "%s{\"op\":", first ? "" : ",");
        first = 0;
        json_str(f, wrn_op_cat_name((wrn_op_cat)c));
        fprintf(f, ",\"ms\":");
        json_num(f, ms);
        fprintf(f, ",\"share\":");
        json_num(f, total > 0 ? r->prof.ms[c] / total : 0);
        fprintf(f, ",\"launches\":%ld,\"gflops\":",
                r->prof.launches[c] / (r->prof_steps ? r->prof_steps : 1));
        json_num(f, r->prof.flops[c] > 0 && r->prof.ms[c] > 0
                        ? r->prof.flops[c] / (r->prof.ms[c] * 1e-3) / 1e9
                        : NAN);
        fputc('}', f);
      }
      fputc(']', f);
      if (r->nconv) {
        fprintf(f, ",\"conv\":[");
        for (int c = 0; c < r->nconv; c++) {
          const bench_conv *cv = &r->conv[c];
          fprintf(f, "%s{\"layer\":", c ? "," : "");
          json_str(f, cv->layer);
          fprintf(f, ",\"pass\":");
          json_str(f, cv->pass);
          fprintf(f, ",\"shape\":");
          json_str(f, cv->shape);
          fprintf(f, ",\"algo\":");
          json_str(f, cv->algo);
          fprintf(f, ",\"ms\":");
          json_num(f, cv->ms);
          fprintf(f, ",\"gflops\":");
          json_num(f, cv->gflops);
          fputc('}', f);
        }
        fputc(']', f);
      }
    }
    fputc('}', f);
  }
  fprintf(f, "\n]}\n");
  int bad = ferror(f);
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    fprintf(stderr, "wrn %s: cannot write %s: %s\n", cmd, path, strerror(errno ? errno : EIO));
    remove(tmp);
    return 1;
  }
  return 0;
}

static void copy_str(char *dst, size_t n, const wrn_jv *v) {
  const char *s = wrn_jv_string(v);
  snprintf(dst, n, "%s", s ? s : "");
}

int bench_json_read(const char *cmd, const char *path, bench_set *s) {
  memset(s, 0, sizeof *s);
  snprintf(s->source, sizeof s->source, "%s", path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "wrn %s: cannot read %s: %s\n", cmd, path, strerror(errno));
    return 1;
  }
  char *text = NULL;
  long len = -1;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (text = malloc((size_t)len + 1)) && fread(text, 1, (size_t)len, f) != (size_t)len)
    len = -1;
  fclose(f);
  if (!text || len < 0) {
    fprintf(stderr, "wrn %s: cannot read %s\n", cmd, path);
    free(text);
    return 1;
  }
  wrn_jv *root;
  wrn_status st = wrn_jv_parse(&root, text, (size_t)len, path);
  free(text);
  if (st != WRN_OK) {
    fprintf(stderr, "wrn %s: %s (not a wrn bench --json file?)\n", cmd, wrn_last_error());
    return 1;
  }
  const wrn_jv *rows = wrn_jv_get(root, "rows");
  const char *model = wrn_jv_string(wrn_jv_get(root, "model"));
  if (!model || wrn_jv_kind(rows) != WRN_JV_ARRAY) {
    fprintf(stderr, "wrn %s: %s has no \"model\" and \"rows\": not a wrn bench --json file\n",
            cmd, path);
    wrn_jv_free(root);
    return 1;
  }
  snprintf(s->model, sizeof s->model, "%s", model);
  const char *mode = wrn_jv_string(wrn_jv_get(root, "mode"));
  s->eval = mode && !strcmp(mode, "eval");
  s->steps = (int)wrn_jv_number(wrn_jv_get(root, "steps"), 0);
  s->warmup = (int)wrn_jv_number(wrn_jv_get(root, "warmup"), 0);
  s->profile_steps = (int)wrn_jv_number(wrn_jv_get(root, "profile_steps"), 0);
  s->dropout = wrn_jv_number(wrn_jv_get(root, "dropout"), 0);
  copy_str(s->version, sizeof s->version, wrn_jv_get(root, "wrn_version"));
  const wrn_jv *h = wrn_jv_get(root, "host");
  copy_str(s->host.name, sizeof s->host.name, wrn_jv_get(h, "name"));
  copy_str(s->host.cpu, sizeof s->host.cpu, wrn_jv_get(h, "cpu"));
  copy_str(s->host.os, sizeof s->host.os, wrn_jv_get(h, "os"));
  s->host.cores = (int)wrn_jv_number(wrn_jv_get(h, "cores"), 0);
  for (int i = 0; i < 3; i++) {
    s->host.load_start[i] = wrn_jv_number(wrn_jv_item(wrn_jv_get(h, "load_avg_start"), (size_t)i), NAN);
    s->host.load_end[i] = wrn_jv_number(wrn_jv_item(wrn_jv_get(h, "load_avg_end"), (size_t)i), NAN);
  }
  s->host.other_cores = wrn_jv_number(wrn_jv_get(h, "other_cpu_cores"), NAN);
  s->host.busy = wrn_jv_number(wrn_jv_get(h, "busy"), 0) != 0;
  s->n = (int)wrn_jv_count(rows);
  s->rows = calloc(s->n ? (size_t)s->n : 1, sizeof *s->rows);
  if (!s->rows) {
    wrn_jv_free(root);
    fprintf(stderr, "wrn %s: out of memory reading %s\n", cmd, path);
    return 1;
  }
  for (int i = 0; i < s->n; i++) {
    const wrn_jv *j = wrn_jv_item(rows, (size_t)i);
    bench_row *r = &s->rows[i];
    copy_str(r->dev.platform_name, sizeof r->dev.platform_name, wrn_jv_get(j, "platform"));
    copy_str(r->dev.vendor, sizeof r->dev.vendor, wrn_jv_get(j, "vendor"));
    copy_str(r->dev.name, sizeof r->dev.name, wrn_jv_get(j, "device"));
    copy_str(r->dev.driver, sizeof r->dev.driver, wrn_jv_get(j, "driver"));
    const char *idx = wrn_jv_string(wrn_jv_get(j, "device_index"));
    if (!idx || sscanf(idx, "%d:%d", &r->dev.platform_index, &r->dev.device_index) != 2)
      r->dev.platform_index = r->dev.device_index = -1;
    r->batch = (int)wrn_jv_number(wrn_jv_get(j, "batch"), 0);
    r->ok = wrn_jv_number(wrn_jv_get(j, "ok"), 0) != 0;
    copy_str(r->error, sizeof r->error, wrn_jv_get(j, "error"));
    const wrn_jv *ms = wrn_jv_get(j, "ms_per_step");
    r->ms_median = wrn_jv_number(wrn_jv_get(ms, "median"), NAN);
    r->ms_min = wrn_jv_number(wrn_jv_get(ms, "min"), NAN);
    r->ms_max = wrn_jv_number(wrn_jv_get(ms, "max"), NAN);
    r->ms_p25 = wrn_jv_number(wrn_jv_get(ms, "p25"), NAN);
    r->ms_p75 = wrn_jv_number(wrn_jv_get(ms, "p75"), NAN);
    r->images_per_s = wrn_jv_number(wrn_jv_get(j, "images_per_s"), NAN);
    r->tflops = wrn_jv_number(wrn_jv_get(j, "tflops"), NAN);
    r->peak_gflops = wrn_jv_number(wrn_jv_get(j, "peak_gflops"), NAN);
    r->peak_share = wrn_jv_number(wrn_jv_get(j, "peak_share"), NAN);
    r->mem_peak = (size_t)wrn_jv_number(wrn_jv_get(j, "mem_peak_bytes"), 0);
    r->ready_cold_s = wrn_jv_number(wrn_jv_get(j, "ready_cold_s"), NAN);
    r->ready_warm_s = wrn_jv_number(wrn_jv_get(j, "ready_warm_s"), NAN);
    r->warmup_s = wrn_jv_number(wrn_jv_get(j, "warmup_s"), NAN);
    if (r->ok && !(r->images_per_s > 0)) {
      fprintf(stderr, "wrn %s: %s row %d is ok but has no images_per_s\n", cmd, path, i + 1);
      wrn_jv_free(root);
      bench_set_free(s);
      return 1;
    }
    /* The profile is stored per step: read it back as one step's sums. */
    const wrn_jv *prof = wrn_jv_get(j, "profile");
    r->prof_steps = wrn_jv_count(prof) ? 1 : 0;
    for (size_t k = 0; k < wrn_jv_count(prof); k++) {
      const wrn_jv *op = wrn_jv_item(prof, k);
      const char *name = wrn_jv_string(wrn_jv_get(op, "op"));
      int c = WRN_CAT_OTHER;
      for (int q = 0; name && q < WRN_CAT_COUNT; q++)
        if (!strcmp(name, wrn_op_cat_name((wrn_op_cat)q))) c = q;
      double m = wrn_jv_number(wrn_jv_get(op, "ms"), 0), g = wrn_jv_number(wrn_jv_get(op, "gflops"), 0);
      r->prof.ms[c] += m;
      r->prof.launches[c] += (long)wrn_jv_number(wrn_jv_get(op, "launches"), 1);
      if (g > 0) r->prof.flops[c] += g * 1e9 * m * 1e-3;
    }
  }
  wrn_jv_free(root);
  return 0;
}

void bench_set_free(bench_set *s) {
  free(s->rows);
  s->rows = NULL;
  s->n = 0;
}

/* ---------------------------------------------------------------- report */

typedef struct entry {
  const bench_set *set;
  const bench_row *row;
  int group, machine;
} entry;

/* The machine's name: the host recorded, else (files from before hosts were recorded) the
 * name of the folder holding the result file, else the file's own name. */
static void machine_name(const bench_set *s, char *out, size_t n) {
  if (s->host.name[0]) {
    snprintf(out, n, "%s", s->host.name);
    return;
  }
  char p[4096];
  snprintf(p, sizeof p, "%s", s->source);
  char *slash = strrchr(p, '/');
  if (slash) {
    *slash = '\0';
    char *up = strrchr(p, '/');
    const char *dir = up ? up + 1 : p;
    if (dir[0] && strcmp(dir, ".") && strcmp(dir, "..")) {
      snprintf(out, n, "%.255s", dir);
      return;
    }
  }
  const char *b = strrchr(s->source, '/');
  b = b ? b + 1 : s->source;
  size_t len = strlen(b);
  if (len > 5 && !strcmp(b + len - 5, ".json")) len -= 5;
  snprintf(out, n, "%.*s", (int)len, b[0] ? b : "this machine");
}

static int cmp_entry(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->group != y->group) return x->group - y->group;
  if (x->row->ok != y->row->ok) return y->row->ok - x->row->ok;
  if (x->row->ok && x->row->images_per_s != y->row->images_per_s)
    return x->row->images_per_s < y->row->images_per_s ? 1 : -1;
  return 0;
}

static double row_device_ms(const bench_row *r) {
  double t = 0;
  for (int c = 0; c < WRN_CAT_COUNT; c++) t += r->prof.ms[c];
  return r->prof_steps ? t / r->prof_steps : 0;
}

/* A share as readable text: "12.3%", "<0.1%". */
static void share_text(char *out, size_t n, double share) {
  if (share > 0 && share < 0.001) snprintf(out, n, "<0.1%%");
  else snprintf(out, n, "%.1f%%", 100 * share);
}

/* "device (machine), batch N", with the model too where rows of several models share a chart. */
static void row_label(const entry *e, const char *const *machines, int with_model, char *out,
                      size_t n) {
  if (with_model)
    snprintf(out, n, "%.40s (%.20s), %s, batch %d", e->row->dev.name, machines[e->machine],
             e->set->model, e->row->batch);
  else
    snprintf(out, n, "%.44s (%.24s), batch %d", e->row->dev.name, machines[e->machine],
             e->row->batch);
}

static int write_images_svg(const char *cmd, const char *path, const entry *E, int n,
                            const char *const *machines, int nmach, const char *const *groups,
                            int ngroups) {
  FILE *f = svg_open(cmd, path);
  if (!f) return 1;
  int W = 1060, left = 380, bw = 420, bar = 22, step = 28;
  int H = 44 + ngroups * 76 + n * step + 22 * ((nmach + 2) / 3) + 16;
  svg_begin(f, W, H);
  svg_text(f, 12, 24, "start", "font-size=\"16\" font-weight=\"bold\"",
           "Training throughput: images/s (higher is better)");
  double y = 44;
  for (int g = 0; g < ngroups; g++) {
    double vmax = 0;
    int first = -1, cnt = 0;
    for (int i = 0; i < n; i++)
      if (E[i].group == g) {
        if (first < 0) first = i;
        cnt++;
        if (E[i].row->ok && E[i].row->images_per_s > vmax) vmax = E[i].row->images_per_s;
      }
    svg_text(f, 12, y + 14, "start", "font-weight=\"bold\"", groups[g]);
    y += 24;
    double xt[16];
    int nx = svg_ticks(0, vmax > 0 ? vmax : 1, 7, xt);
    svg_axes a = {left, y, bw, (double)cnt * step, 0, xt[nx - 1], 0, 1, 0};
    svg_axes_draw(f, &a, xt, nx, NULL, 0, NULL, NULL);
    for (int i = first; i < first + cnt; i++) {
      const bench_row *r = E[i].row;
      double yy = y + (i - first) * step + (step - bar) / 2.0;
      char label[512], val[256];
      row_label(&E[i], machines, 0, label, sizeof label);
      svg_text(f, left - 8, yy + bar / 2.0 + 4, "end", NULL, label);
      if (!r->ok) {
        snprintf(val, sizeof val, "failed: %.90s", r->error);
        svg_text(f, left + 6, yy + bar / 2.0 + 4, "start", "fill=\"#c0392b\"", val);
        continue;
      }
      double w = svg_px(&a, r->images_per_s) - left;
      fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left,
              yy, w, bar, svg_colour(E[i].machine));
      char pk[64] = "";
      if (r->peak_share > 0) snprintf(pk, sizeof pk, ", %.1f%% of its peak", 100 * r->peak_share);
      snprintf(val, sizeof val, "%.1f img/s, %.2f TFLOP/s%s", r->images_per_s, r->tflops, pk);
      svg_text(f, left + w + 6, yy + bar / 2.0 + 4, "start", NULL, val);
    }
    y += cnt * step + 52;
  }
  /* Legend: bar colour = machine. */
  for (int m = 0; m < nmach; m++) {
    double lx = 12 + (m % 3) * 340, ly = y + (m / 3) * 22;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", lx,
            ly - 11, svg_colour(m));
    svg_text(f, lx + 20, ly, "start", NULL, machines[m]);
  }
  svg_end(f);
  return svg_close(cmd, f, path);
}

static int write_profile_svg(const char *cmd, const char *path, const entry *E, int n,
                             const char *const *machines, const int *present, int npresent) {
  int rows = 0;
  for (int i = 0; i < n; i++) rows += E[i].row->ok && E[i].row->prof_steps > 0;
  FILE *f = svg_open(cmd, path);
  if (!f) return 1;
  int W = 1060, left = 380, bw = 520, bar = 22, step = 30;
  int legend_rows = (npresent + 3) / 4;
  int H = 56 + rows * step + 40 + legend_rows * 22 + 16;
  svg_begin(f, W, H);
  svg_text(f, 12, 24, "start", "font-size=\"16\" font-weight=\"bold\"",
           "Where a step's device time goes (share of profiled time per op category)");
  double xt[] = {0, 20, 40, 60, 80, 100};
  svg_axes a = {left, 44, bw, (double)(rows ? rows : 1) * step, 0, 100, 0, 1, 0};
  svg_axes_draw(f, &a, xt, 6, NULL, 0, "% of device time", NULL);
  int k = 0;
  for (int i = 0; i < n; i++) {
    const bench_row *r = E[i].row;
    if (!r->ok || r->prof_steps <= 0) continue;
    double y = 44 + k++ * step + (step - bar) / 2.0, total = 0, x = left;
    for (int c = 0; c < WRN_CAT_COUNT; c++) total += r->prof.ms[c];
    char label[512], t[128];
    row_label(&E[i], machines, 1, label, sizeof label);
    svg_text(f, left - 8, y + bar / 2.0 + 4, "end", NULL, label);
    if (total <= 0) continue;
    for (int c = 0; c < WRN_CAT_COUNT; c++) {
      double w = bw * r->prof.ms[c] / total;
      if (w <= 0) continue;
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\"><title>",
              x, y, w, bar, svg_colour(c));
      char sh[16];
      share_text(sh, sizeof sh, r->prof.ms[c] / total);
      snprintf(t, sizeof t, "%s: %.2f ms per step (%s)", wrn_op_cat_name((wrn_op_cat)c),
               r->prof.ms[c] / r->prof_steps, sh);
      svg_escape(f, t);
      fputs("</title></rect>\n", f);
      if (w >= 30) {
        snprintf(t, sizeof t, "%.0f%%", 100 * r->prof.ms[c] / total);
        svg_text(f, x + w / 2, y + bar / 2.0 + 4, "middle",
                 "fill=\"white\" font-size=\"11\" font-weight=\"bold\"", t);
      }
      x += w;
    }
    snprintf(t, sizeof t, "%.1f ms", row_device_ms(r));
    svg_text(f, left + bw + 6, y + bar / 2.0 + 4, "start", NULL, t);
  }
  double ly = 44 + a.h + 50;
  for (int p = 0; p < npresent; p++) {
    double lx = 12 + (p % 4) * 250, yy = ly + (p / 4) * 22;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", lx,
            yy - 11, svg_colour(present[p]));
    svg_text(f, lx + 20, yy, "start", NULL, wrn_op_cat_name((wrn_op_cat)present[p]));
  }
  svg_end(f);
  return svg_close(cmd, f, path);
}

static void md_cell(FILE *f, const char *s) {
  fputc(' ', f);
  for (; *s; s++) {
    if (*s == '|') fputs("\\|", f);
    else if (*s == '\n') fputc(' ', f);
    else fputc(*s, f);
  }
  fputs(" |", f);
}

int bench_report_write(const char *cmd, const char *dir, const bench_set *sets, int nsets) {
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "wrn %s: cannot create %s: %s\n", cmd, dir, strerror(errno));
    return 1;
  }
  int n = 0;
  for (int s = 0; s < nsets; s++) n += sets[s].n;
  entry *E = calloc(n ? (size_t)n : 1, sizeof *E);
  char(*mach)[256] = calloc((size_t)nsets + 1, sizeof *mach);
  char(*grp)[128] = calloc((size_t)nsets + 1, sizeof *grp);
  const char **machines = calloc((size_t)nsets + 1, sizeof *machines);
  const char **groups = calloc((size_t)nsets + 1, sizeof *groups);
  int *set_machine = calloc((size_t)nsets + 1, sizeof *set_machine);
  int rc = 0;
  if (!E || !mach || !grp || !machines || !groups || !set_machine) {
    fprintf(stderr, "wrn %s: out of memory\n", cmd);
    rc = 1;
    goto done;
  }
  int nmach = 0, ngroups = 0, k = 0;
  for (int s = 0; s < nsets; s++) {
    char name[256], g[128];
    machine_name(&sets[s], name, sizeof name);
    int m = 0;
    while (m < nmach && strcmp(mach[m], name)) m++;
    if (m == nmach) snprintf(mach[nmach++], sizeof mach[0], "%s", name);
    set_machine[s] = m;
    snprintf(g, sizeof g, "%s %s", sets[s].model, sets[s].eval ? "inference" : "training");
    int q = 0;
    while (q < ngroups && strcmp(grp[q], g)) q++;
    if (q == ngroups) snprintf(grp[ngroups++], sizeof grp[0], "%s", g);
    for (int i = 0; i < sets[s].n; i++) E[k++] = (entry){&sets[s], &sets[s].rows[i], q, m};
  }
  for (int m = 0; m < nmach; m++) machines[m] = mach[m];
  for (int q = 0; q < ngroups; q++) groups[q] = grp[q];
  qsort(E, (size_t)n, sizeof *E, cmp_entry);
  /* The op categories that occur in any row, in category order. */
  int present[WRN_CAT_COUNT], npresent = 0;
  for (int c = 0; c < WRN_CAT_COUNT; c++) {
    int any = 0;
    for (int i = 0; i < n && !any; i++) any = E[i].row->ok && E[i].row->prof.launches[c] > 0;
    if (any) present[npresent++] = c;
  }
  char path[4300];
  snprintf(path, sizeof path, "%s/images_per_s.svg", dir);
  if ((rc = write_images_svg(cmd, path, E, n, machines, nmach, groups, ngroups))) goto done;
  snprintf(path, sizeof path, "%s/profile.svg", dir);
  if ((rc = write_profile_svg(cmd, path, E, n, machines, present, npresent))) goto done;
  const char *svgs[] = {"images_per_s", "profile"};
  for (int i = 0; i < 2; i++) {
    char sp[4300], pp[4400];
    snprintf(sp, sizeof sp, "%s/%s.svg", dir, svgs[i]);
    if (svg_to_png(cmd, sp, pp, sizeof pp) == 2) rc = 1;
  }
  snprintf(path, sizeof path, "%s/report.md", dir);
  FILE *f = svg_open(cmd, path);
  if (!f) {
    rc = 1;
    goto done;
  }
  fprintf(f, "# wrn bench report\n\n");
  fprintf(f, "%d result set%s from %d machine%s. Each row: full %s steps on synthetic data, "
             "the median of the timed steps; TFLOP/s counts the model's useful FLOPs; the "
             "share of peak is against that device's own fp32 FMA peak measured by `wrn bench` "
             "(a GEMM-free probe), so devices of different vendors compare fairly.\n\n",
          nsets, nsets == 1 ? "" : "s", nmach, nmach == 1 ? "" : "s",
          nsets && sets[0].eval ? "inference" : "training");
  fprintf(f, "| machine | CPU | cores | load average (start / end) | other processes | wrn | "
             "steps | file |\n|---|---|---|---|---|---|---|---|\n");
  for (int s = 0; s < nsets; s++) {
    const bench_host *h = &sets[s].host;
    char b[512];
    fputc('|', f);
    md_cell(f, mach[set_machine[s]]);
    md_cell(f, h->cpu[0] ? h->cpu : "not recorded");
    snprintf(b, sizeof b, "%d", h->cores);
    md_cell(f, h->cores ? b : "");
    if (isfinite(h->load_start[0]))
      snprintf(b, sizeof b, "%.2f / %.2f", h->load_start[0], h->load_end[0]);
    else b[0] = '\0';
    md_cell(f, b);
    if (isfinite(h->other_cores))
      snprintf(b, sizeof b, "%.2f cores%s", h->other_cores, h->busy ? " (busy)" : "");
    else b[0] = '\0';
    md_cell(f, b);
    md_cell(f, sets[s].version[0] ? sets[s].version : "");
    snprintf(b, sizeof b, "%d + %d warm-up, profile %d", sets[s].steps, sets[s].warmup,
             sets[s].profile_steps);
    md_cell(f, b);
    md_cell(f, sets[s].source[0] ? sets[s].source : "measured now");
    fputc('\n', f);
  }
  for (int s = 0; s < nsets; s++)
    if (sets[s].host.busy)
      fprintf(f, "\n> **Warning:** %s was busy during this run: other processes kept %.2f of "
                 "its %d cores busy on average (load average %.2f at the start). Its timings "
                 "may be low; rerun on a quiet machine before comparing.\n",
              mach[set_machine[s]], sets[s].host.other_cores, sets[s].host.cores,
              sets[s].host.load_start[0]);
  fprintf(f, "\n![images/s](images_per_s.svg)\n");
  for (int g = 0; g < ngroups; g++) {
    fprintf(f, "\n## %s\n\n| machine | device | platform | driver | batch | ms/step median "
               "[p25..p75] | img/s | TFLOP/s | %% of own peak (FMA GFLOP/s) | peak memory MiB "
               "| kernels ready cold / warm (s) |\n|---|---|---|---|---:|---|---:|---:|---:|---:|"
               "---|\n", groups[g]);
    for (int i = 0; i < n; i++) {
      if (E[i].group != g) continue;
      const bench_row *r = E[i].row;
      char b[1200];
      fputc('|', f);
      md_cell(f, machines[E[i].machine]);
      md_cell(f, r->dev.name);
      md_cell(f, r->dev.platform_name);
      md_cell(f, r->dev.driver);
      snprintf(b, sizeof b, "%d", r->batch);
      md_cell(f, b);
      if (!r->ok) {
        snprintf(b, sizeof b, "failed: %s", r->error);
        md_cell(f, b);
        fputs(" | | | | |\n", f);
        continue;
      }
      snprintf(b, sizeof b, "%.1f [%.1f..%.1f]", r->ms_median, r->ms_p25, r->ms_p75);
      md_cell(f, b);
      snprintf(b, sizeof b, "%.1f", r->images_per_s);
      md_cell(f, b);
      snprintf(b, sizeof b, "%.3f", r->tflops);
      md_cell(f, b);
      snprintf(b, sizeof b, "%.1f%% (%.0f)", 100 * r->peak_share, r->peak_gflops);
      md_cell(f, b);
      snprintf(b, sizeof b, "%.1f", r->mem_peak / 1048576.0);
      md_cell(f, b);
      snprintf(b, sizeof b, "%.2f / %.2f", r->ready_cold_s, r->ready_warm_s);
      md_cell(f, b);
      fputc('\n', f);
    }
  }
  if (npresent) fprintf(f, "\n## Per-op profiles\n\n![per-op profile](profile.svg)\n");
  for (int i = 0; i < n; i++) {
    const bench_row *r = E[i].row;
    if (!r->ok || r->prof_steps <= 0) continue;
    double total = 0;
    for (int c = 0; c < WRN_CAT_COUNT; c++) total += r->prof.ms[c];
    fprintf(f, "\n### %s (%s), %s, batch %d: %.1f ms device time per step of %.1f ms\n\n"
               "| op | ms per step | share | launches | GFLOP/s |\n|---|---:|---:|---:|---:|\n",
            r->dev.name, machines[E[i].machine], groups[E[i].group], r->batch,
            row_device_ms(r), r->ms_median);
    for (int c = 0; c < WRN_CAT_COUNT; c++) {
      if (!r->prof.launches[c]) continue;
      char sh[16], gf[32] = "";
      share_text(sh, sizeof sh, total > 0 ? r->prof.ms[c] / total : 0);
      if (r->prof.flops[c] > 0 && r->prof.ms[c] > 0)
        snprintf(gf, sizeof gf, "%.1f", r->prof.flops[c] / (r->prof.ms[c] * 1e-3) / 1e9);
      fprintf(f, "| %s | %.2f | %s | %ld | %s |\n", wrn_op_cat_name((wrn_op_cat)c),
              r->prof.ms[c] / r->prof_steps, sh, r->prof.launches[c] / r->prof_steps, gf);
    }
  }
  rc = svg_close(cmd, f, path);
done:
  free(E), free(mach), free(grp), free(machines), free(groups), free(set_machine);
  return rc;
}
