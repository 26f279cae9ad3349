/* Platforms, devices, the context and its queues, memory and launches. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *no_platform_help =
    "no OpenCL platform was found. The ICD loader reads one file per driver from "
    "/etc/OpenCL/vendors (or from the folder named by OCL_ICD_VENDORS); each .icd file holds "
    "the name or path of a driver library. Install a driver (for a CPU device: apt-get "
    "install pocl-opencl-icd), or register an installed one: for NVIDIA, "
    "mkdir -p ~/icd && echo libnvidia-opencl.so.1 > ~/icd/nvidia.icd && "
    "export OCL_ICD_VENDORS=~/icd";

static void info_str(cl_device_id d, cl_device_info what, char *out, size_t n) {
  out[0] = '\0';
  if (clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS) snprintf(out, n, "?");
  out[n - 1] = '\0';
}

static int has_ext(cl_device_id d, const char *ext) {
  size_t sz = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &sz) != CL_SUCCESS || sz == 0) return 0;
  char *buf = malloc(sz + 1);
  if (!buf) return 0;
  int found = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, sz, buf, NULL) == CL_SUCCESS) {
    buf[sz] = '\0';
    size_t len = strlen(ext);
    for (char *p = strstr(buf, ext); p; p = strstr(p + 1, ext))
      if ((p == buf || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) { found = 1; break; }
  }
  free(buf);
  return found;
}

static void fill_info(wrn_device_info *di, int pi, int dj, cl_platform_id p, cl_device_id d) {
  memset(di, 0, sizeof *di);
  di->platform_index = pi;
  di->device_index = dj;
  di->platform = p;
  di->device = d;
  if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof di->platform_name, di->platform_name, NULL))
    snprintf(di->platform_name, sizeof di->platform_name, "?");
  if (clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof di->platform_version,
                        di->platform_version, NULL))
    snprintf(di->platform_version, sizeof di->platform_version, "?");
  info_str(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
  info_str(d, CL_DEVICE_NAME, di->name, sizeof di->name);
  info_str(d, CL_DRIVER_VERSION, di->driver, sizeof di->driver);
  info_str(d, CL_DEVICE_VERSION, di->device_version, sizeof di->device_version);
  info_str(d, CL_DEVICE_OPENCL_C_VERSION, di->opencl_c_version, sizeof di->opencl_c_version);
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof di->compute_units, &di->compute_units,
                  NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof di->clock_mhz, &di->clock_mhz, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof di->global_mem, &di->global_mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof di->local_mem, &di->local_mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof di->max_alloc, &di->max_alloc, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof di->max_work_group,
                  &di->max_work_group, NULL);
  di->fp64 = has_ext(d, "cl_khr_fp64");
  di->fp16 = has_ext(d, "cl_khr_fp16");
  di->subgroups = has_ext(d, "cl_khr_subgroups") || has_ext(d, "cl_intel_subgroups");
  di->ptx_probe = -1;
}

wrn_status wrn_devices_list(wrn_device_info **out, int *count) {
  if (!out || !count) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_devices_list: NULL out");
  *out = NULL;
  *count = 0;
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &np);
  if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && np == 0))
    return wrn_fail(WRN_STATUS_NO_DEVICE, "%s", no_platform_help);
  WRN_CL_CHECK(e);
  cl_platform_id *plats = calloc(np, sizeof *plats);
  if (!plats) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_devices_list: out of host memory");
  e = clGetPlatformIDs(np, plats, NULL);
  if (e != CL_SUCCESS) {
    free(plats);
    WRN_CL_CHECK(e);
  }
  wrn_device_info *list = NULL;
  int n = 0;
  for (cl_uint i = 0; i < np; i++) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || nd == 0)
      continue;
    cl_device_id *devs = calloc(nd, sizeof *devs);
    wrn_device_info *grown = realloc(list, (size_t)(n + (int)nd) * sizeof *list);
    if (!devs || !grown) {
      free(devs);
      free(grown ? grown : list);
      free(plats);
      return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_devices_list: out of host memory");
    }
    list = grown;
    if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, nd, devs, NULL) == CL_SUCCESS)
      for (cl_uint j = 0; j < nd; j++) fill_info(&list[n++], (int)i, (int)j, plats[i], devs[j]);
    free(devs);
  }
  free(plats);
  if (n == 0) {
    free(list);
    return wrn_fail(WRN_STATUS_NO_DEVICE,
                    "%u OpenCL platform(s) were found but none has a device: install or register "
                    "a driver for your hardware (the ICD loader reads /etc/OpenCL/vendors or the "
                    "folder in OCL_ICD_VENDORS), or install pocl-opencl-icd for a CPU device",
                    np);
  }
  *out = list;
  *count = n;
  return WRN_OK;
}

static int ci_contains(const char *hay, const char *needle) {
  size_t nl = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < nl && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == nl) return 1;
  }
  return nl == 0;
}

/* A rough capability score: GPUs first, then compute units x clock. */
static double device_score(const wrn_device_info *d) {
  double s = (double)d->compute_units * (double)(d->clock_mhz ? d->clock_mhz : 1);
  if (d->type & CL_DEVICE_TYPE_GPU) s += 1e12;
  return s;
}

wrn_status wrn_device_select(const char *sel, wrn_device_info *out) {
  if (!out) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_device_select: NULL out");
  if (!sel) sel = getenv("WRN_DEVICE");
  if (!sel) sel = "";
  wrn_device_info *list;
  int n;
  WRN_TRY(wrn_devices_list(&list, &n));
  int pick = -1;
  int p, d;
  char tail;
  if (sel[0] == '\0') {
    for (int i = 0; i < n; i++)
      if (pick < 0 || device_score(&list[i]) > device_score(&list[pick])) pick = i;
  } else if (sscanf(sel, "%d:%d%c", &p, &d, &tail) == 2) {
    for (int i = 0; i < n; i++)
      if (list[i].platform_index == p && list[i].device_index == d) pick = i;
  } else if (!strcmp(sel, "cpu") || !strcmp(sel, "gpu")) {
    cl_device_type t = sel[0] == 'c' ? CL_DEVICE_TYPE_CPU : CL_DEVICE_TYPE_GPU;
    for (int i = 0; i < n; i++)
      if ((list[i].type & t) && (pick < 0 || device_score(&list[i]) > device_score(&list[pick])))
        pick = i;
  } else {
    for (int i = 0; i < n && pick < 0; i++)
      if (ci_contains(list[i].name, sel) || ci_contains(list[i].vendor, sel) ||
          ci_contains(list[i].platform_name, sel))
        pick = i;
  }
  if (pick < 0) {
    char names[2048] = "";
    size_t len = 0;
    for (int i = 0; i < n && len + 1 < sizeof names; i++)
      len += (size_t)snprintf(names + len, sizeof names - len, "%s%d:%d %s", i ? ", " : "",
                              list[i].platform_index, list[i].device_index, list[i].name);
    free(list);
    return wrn_fail(WRN_STATUS_NO_DEVICE,
                    "no OpenCL device matches '%s' (give P:D, cpu, gpu or part of a name); "
                    "devices: %s",
                    sel, names);
  }
  *out = list[pick];
  free(list);
  return WRN_OK;
}

wrn_status wrn_device_probe_ptx(wrn_device_info *info) {
  info->ptx_probe = 0;
  if (!ci_contains(info->vendor, "nvidia") && !ci_contains(info->platform_name, "nvidia"))
    return WRN_OK;
  static const char *src =
      "__kernel void probe(__global uint *o) {\n"
      "  uint r;\n"
      "  asm volatile(\"mov.u32 %0, %%laneid;\" : \"=r\"(r));\n"
      "  o[get_global_id(0)] = r;\n"
      "}\n";
  cl_int e;
  cl_context c = clCreateContext(NULL, 1, &info->device, NULL, NULL, &e);
  if (e != CL_SUCCESS) return WRN_OK;
  cl_program p = clCreateProgramWithSource(c, 1, &src, NULL, &e);
  if (e == CL_SUCCESS) {
    if (clBuildProgram(p, 1, &info->device, "", NULL, NULL) == CL_SUCCESS) info->ptx_probe = 1;
    clReleaseProgram(p);
  }
  clReleaseContext(c);
  return WRN_OK;
}

/* ---------------------------------------------------------------- context */

wrn_status wrn_ctx_open(wrn_ctx **out, const wrn_device_info *dev, const wrn_ctx_options *opts) {
  if (!out || !dev) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "wrn_ctx_open: NULL argument");
  *out = NULL;
  wrn_ctx_options o = {0};
  if (opts) o = *opts;
  if (o.dtype == WRN_F64 && !dev->fp64)
    return wrn_fail(WRN_STATUS_UNSUPPORTED,
                    "double precision was asked for, but device '%s' has no cl_khr_fp64",
                    dev->name);
  const char *nc = getenv("WRN_NO_CACHE");
  if (nc && nc[0] && strcmp(nc, "0")) o.no_cache = 1;
  wrn_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "wrn_ctx_open: out of host memory");
  ctx->dev = *dev;
  ctx->dtype = o.dtype;
  ctx->real_size = o.dtype == WRN_F64 ? 8 : 4;
  ctx->profile = o.profile;
  ctx->profile_capable = o.profile;
  ctx->no_cache = o.no_cache;
  ctx->max_wg = dev->max_work_group ? dev->max_work_group : 64;
  ctx->tag = -1;
  cl_int e;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)dev->platform, 0};
  ctx->cl = clCreateContext(props, 1, &dev->device, NULL, NULL, &e);
  if (e != CL_SUCCESS) {
    wrn_status s = wrn_cl_fail(e, "clCreateContext", WRN_WHERE);
    free(ctx);
    return s;
  }
  cl_command_queue_properties qp = o.profile ? CL_QUEUE_PROFILING_ENABLE : 0;
  /* clCreateCommandQueue is deprecated in 2.0 but is the 1.2 entry point we target. */
  ctx->queue = clCreateCommandQueue(ctx->cl, dev->device, qp, &e);
  if (e == CL_SUCCESS) ctx->tqueue = clCreateCommandQueue(ctx->cl, dev->device, qp, &e);
  if (e != CL_SUCCESS) {
    wrn_status s = wrn_cl_fail(e, "clCreateCommandQueue", WRN_WHERE);
    wrn_ctx_free(ctx);
    return s;
  }
  wrn_status s = wrn_programs_build(ctx);
  if (s != WRN_OK) {
    wrn_ctx_free(ctx);
    return s;
  }
  *out = ctx;
  return WRN_OK;
}

void wrn_ctx_free(wrn_ctx *ctx) {
  if (!ctx) return;
  if (ctx->queue) clFinish(ctx->queue);
  if (ctx->tqueue) clFinish(ctx->tqueue);
  for (int i = 0; i < ctx->nevents; i++) {
    if (ctx->events[i].ev) clReleaseEvent(ctx->events[i].ev);
    if (ctx->events[i].start) clReleaseEvent(ctx->events[i].start);
  }
  free(ctx->events);
  if (ctx->bn_scratch) clReleaseMemObject(ctx->bn_scratch);
  wrn_conv_fft_free(ctx);
  free(ctx->tune);
  wrn_programs_free(ctx);
  if (ctx->tqueue) clReleaseCommandQueue(ctx->tqueue);
  if (ctx->queue) clReleaseCommandQueue(ctx->queue);
  if (ctx->cl) clReleaseContext(ctx->cl);
  free(ctx);
}

double wrn_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const wrn_device_info *wrn_ctx_device(const wrn_ctx *ctx) { return &ctx->dev; }
wrn_dtype wrn_ctx_dtype(const wrn_ctx *ctx) { return ctx->dtype; }
size_t wrn_ctx_real_size(const wrn_ctx *ctx) { return ctx->real_size; }
cl_context wrn_ctx_cl_context(const wrn_ctx *ctx) { return ctx->cl; }
cl_command_queue wrn_ctx_queue(const wrn_ctx *ctx) { return ctx->queue; }
cl_command_queue wrn_ctx_transfer_queue(const wrn_ctx *ctx) { return ctx->tqueue; }
double wrn_ctx_build_seconds(const wrn_ctx *ctx) { return ctx->build_seconds; }
int wrn_ctx_programs_cached(const wrn_ctx *ctx) { return ctx->programs_cached; }
int wrn_ctx_programs_total(const wrn_ctx *ctx) { return ctx->programs_built; }

wrn_status wrn_ctx_finish(wrn_ctx *ctx) {
  WRN_CL_CHECK(clFinish(ctx->queue));
  WRN_CL_CHECK(clFinish(ctx->tqueue));
  return WRN_OK;
}

/* ---------------------------------------------------------------- kernels and launches */

cl_event *wrn_event_slot(wrn_ctx *ctx, wrn_op_cat cat, double flops) {
  if (!ctx->profile) return NULL;
  if (ctx->nevents == ctx->capevents) {
    int cap = ctx->capevents ? 2 * ctx->capevents : 256;
    wrn_event_rec *r = realloc(ctx->events, (size_t)cap * sizeof *r);
    if (!r) return NULL;
    ctx->events = r;
    ctx->capevents = cap;
  }
  wrn_event_rec *r = &ctx->events[ctx->nevents++];
  r->ev = NULL;
  r->start = NULL;
  r->cat = cat;
  r->flops = flops;
  r->tag = ctx->tag;
  r->name = "";
  return &r->ev;
}

cl_event *wrn_event_slot_span(wrn_ctx *ctx, wrn_op_cat cat, double flops) {
  cl_event *ev = wrn_event_slot(ctx, cat, flops);
  if (!ev) return NULL;
  wrn_event_rec *r = &ctx->events[ctx->nevents - 1];
  /* Without the marker the record still times the last command. */
  if (clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &r->start) != CL_SUCCESS) r->start = NULL;
  return ev;
}

size_t wrn_round_up(size_t x, size_t m) { return m ? (x + m - 1) / m * m : x; }

wrn_status wrn_ctx_set_profiling(wrn_ctx *ctx, int on) {
  if (on && !ctx->profile_capable)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                    "profiling needs a context opened with profile = 1");
  ctx->profile = on ? 1 : 0;
  return WRN_OK;
}

void wrn_ctx_set_tag(wrn_ctx *ctx, int tag) { ctx->tag = tag; }
int wrn_ctx_programs_compiled(const wrn_ctx *ctx) { return ctx->programs_compiled; }

wrn_status wrn_profile_collect(wrn_ctx *ctx, wrn_profile *acc) {
  return wrn_profile_collect_tags(ctx, acc, NULL, NULL, 0);
}

wrn_status wrn_profile_collect_tags(wrn_ctx *ctx, wrn_profile *acc, double *tag_ms,
                                    double *tag_flops, int ntags) {
  wrn_status s = WRN_OK;
  const int print_kernels = ctx->nevents && getenv("WRN_PROFILE_KERNELS") != NULL;
  if (ctx->nevents) {
    cl_int e = clFinish(ctx->queue);
    if (e != CL_SUCCESS) s = wrn_cl_fail(e, "clFinish", WRN_WHERE);
  }
  for (int i = 0; i < ctx->nevents; i++) {
    wrn_event_rec *r = &ctx->events[i];
    cl_event start = r->start;
    r->start = NULL;
    if (!r->ev) {
      if (start) clReleaseEvent(start);
      continue;
    }
    cl_ulong t0 = 0, t1 = 0;
    if (s == WRN_OK && acc &&
        clGetEventProfilingInfo(start ? start : r->ev,
                                start ? CL_PROFILING_COMMAND_END : CL_PROFILING_COMMAND_START,
                                sizeof t0, &t0, NULL) == CL_SUCCESS &&
        clGetEventProfilingInfo(r->ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) ==
            CL_SUCCESS) {
      acc->ms[r->cat] += (double)(t1 - t0) * 1e-6;
      if (print_kernels)
        fprintf(stderr, "kernel %s %.3f ms\n", r->name, (double)(t1 - t0) * 1e-6);
      acc->flops[r->cat] += r->flops;
      acc->launches[r->cat]++;
      if (r->tag >= 0 && r->tag < ntags) {
        if (tag_ms) tag_ms[r->tag] += (double)(t1 - t0) * 1e-6;
        if (tag_flops) tag_flops[r->tag] += r->flops;
      }
    }
    clReleaseEvent(r->ev);
    if (start) clReleaseEvent(start);
  }
  ctx->nevents = 0;
  return s;
}

/* ---------------------------------------------------------------- memory */

wrn_status wrn_alloc(wrn_ctx *ctx, size_t bytes, const char *what, cl_mem *out) {
  *out = NULL;
  if (bytes == 0) bytes = ctx->real_size;
  const double mib = 1024.0 * 1024.0;
  if (bytes > ctx->dev.max_alloc)
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                    "%s needs %.1f MiB in one buffer, but device '%s' allows at most %.1f MiB "
                    "per allocation (%.1f MiB in all); try a smaller --batch",
                    what, bytes / mib, ctx->dev.name, ctx->dev.max_alloc / mib,
                    ctx->dev.global_mem / mib);
  cl_int e;
  cl_mem m = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &e);
  if (e != CL_SUCCESS)
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                    "allocating %s (%.1f MiB) on '%s' failed with %s; try a smaller --batch",
                    what, bytes / mib, ctx->dev.name, wrn_cl_error_name(e));
  /* Touch it so that an over-committed device fails now, with a message naming the buffer. */
  /* The widest pattern that divides the size, in pieces of at most 256 MiB: one fill of
   * several GiB with a one-byte pattern has failed on a GPU driver. */
  static const cl_uint zeros[4] = {0, 0, 0, 0};
  size_t pat = bytes % 16 == 0 ? 16 : bytes % 8 == 0 ? 8 : bytes % 4 == 0 ? 4 : bytes % 2 == 0 ? 2 : 1;
  const size_t piece = (size_t)256 << 20;
  e = CL_SUCCESS;
  for (size_t off = 0; off < bytes && e == CL_SUCCESS; off += piece) {
    size_t len = bytes - off < piece ? bytes - off : piece;
    e = clEnqueueFillBuffer(ctx->queue, m, zeros, pat, off, len, 0, NULL, NULL);
  }
  if (e == CL_SUCCESS) e = clFinish(ctx->queue);
  if (e != CL_SUCCESS) {
    clReleaseMemObject(m);
    return wrn_fail(WRN_STATUS_OUT_OF_MEMORY,
                    "device '%s' could not provide %s (%.1f MiB): %s; try a smaller --batch",
                    ctx->dev.name, what, bytes / mib, wrn_cl_error_name(e));
  }
  *out = m;
  ctx->mem_current += bytes;
  if (ctx->mem_current > ctx->mem_peak) ctx->mem_peak = ctx->mem_current;
  return WRN_OK;
}

void wrn_ctx_mem_stats(const wrn_ctx *ctx, size_t *current, size_t *peak) {
  if (current) *current = ctx->mem_current;
  if (peak) *peak = ctx->mem_peak;
}

void wrn_free_mem(wrn_ctx *ctx, cl_mem *m) {
  if (!m || !*m) return;
  size_t sz = 0;
  if (clGetMemObjectInfo(*m, CL_MEM_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS &&
      sz <= ctx->mem_current)
    ctx->mem_current -= sz;
  wrn_release(m);
}

void wrn_release(cl_mem *m) {
  if (m && *m) {
    clReleaseMemObject(*m);
    *m = NULL;
  }
}

wrn_status wrn_write(wrn_ctx *ctx, wrn_mem dst, const void *src, size_t count) {
  if (!count) return WRN_OK;
  WRN_CL_CHECK(clEnqueueWriteBuffer(ctx->queue, dst.mem, CL_TRUE, dst.off * ctx->real_size,
                                    count * ctx->real_size, src, 0, NULL,
                                    wrn_event_slot(ctx, WRN_CAT_TRANSFER, 0)));
  return WRN_OK;
}

wrn_status wrn_read(wrn_ctx *ctx, void *dst, wrn_mem src, size_t count) {
  if (!count) return WRN_OK;
  WRN_CL_CHECK(clEnqueueReadBuffer(ctx->queue, src.mem, CL_TRUE, src.off * ctx->real_size,
                                   count * ctx->real_size, dst, 0, NULL,
                                   wrn_event_slot(ctx, WRN_CAT_TRANSFER, 0)));
  return WRN_OK;
}

wrn_status wrn_write_bytes(wrn_ctx *ctx, cl_mem dst, size_t byte_off, const void *src, size_t n) {
  if (!n) return WRN_OK;
  WRN_CL_CHECK(clEnqueueWriteBuffer(ctx->queue, dst, CL_TRUE, byte_off, n, src, 0, NULL, NULL));
  return WRN_OK;
}

wrn_status wrn_fill(wrn_ctx *ctx, wrn_mem dst, double value, size_t count) {
  if (!count) return WRN_OK;
  if (ctx->dtype == WRN_F64) {
    cl_double v = value;
    WRN_CL_CHECK(clEnqueueFillBuffer(ctx->queue, dst.mem, &v, sizeof v, dst.off * sizeof v,
                                     count * sizeof v, 0, NULL, wrn_event_slot(ctx, WRN_CAT_OTHER, 0)));
  } else {
    cl_float v = (float)value;
    WRN_CL_CHECK(clEnqueueFillBuffer(ctx->queue, dst.mem, &v, sizeof v, dst.off * sizeof v,
                                     count * sizeof v, 0, NULL, wrn_event_slot(ctx, WRN_CAT_OTHER, 0)));
  }
  return WRN_OK;
}
