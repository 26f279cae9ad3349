/* Kernel lookup by enum (kernels.h), program variants built with host-chosen -D values,
 * kernel arguments through a running index, and launches. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const struct {
  const char *prog, *name;
} kernel_table[WRN_K_COUNT] = {
#define WRN_KID_ROW(id, prog, name) {#prog, #name},
    WRN_KERNEL_TABLE(WRN_KID_ROW)
#undef WRN_KID_ROW
};

const char *wrn_kernel_name(wrn_kid id) {
  return (int)id >= 0 && id < WRN_K_COUNT ? kernel_table[id].name : "?";
}

static wrn_status make_kernel(wrn_kid id, cl_program prog, const char *defs, cl_kernel *out) {
  cl_int e;
  *out = clCreateKernel(prog, kernel_table[id].name, &e);
  if (e != CL_SUCCESS) {
    *out = NULL;
    return wrn_fail(WRN_STATUS_OPENCL, "clCreateKernel(%s) in cl/%s.cl%s%s failed with %s",
                    kernel_table[id].name, kernel_table[id].prog, defs ? " built with " : "",
                    defs ? defs : "", wrn_cl_error_name(e));
  }
  return WRN_OK;
}

static wrn_args args_of(wrn_ctx *ctx, cl_kernel k, wrn_kid id) {
  wrn_args a = {ctx, k, id, 0, CL_SUCCESS, 0};
  return a;
}

wrn_status wrn_kernel_args(wrn_ctx *ctx, wrn_kid id, wrn_args *a) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "kernel lookup: NULL context");
  if ((int)id < 0 || id >= WRN_K_COUNT)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "no kernel %d", (int)id);
  if (!ctx->kernels[id]) {
    int pi = wrn_program_index(kernel_table[id].prog);
    if (pi < 0 || !ctx->progs[pi])
      return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                      "kernel %s: cl/%s.cl is not built without tunables (a variant is needed)",
                      kernel_table[id].name, kernel_table[id].prog);
    WRN_TRY(make_kernel(id, ctx->progs[pi], NULL, &ctx->kernels[id]));
  }
  *a = args_of(ctx, ctx->kernels[id], id);
  return WRN_OK;
}

wrn_status wrn_kernel_variant_args(wrn_ctx *ctx, wrn_kid id, const char *defs, wrn_args *a) {
  if (!ctx) return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "kernel lookup: NULL context");
  if ((int)id < 0 || id >= WRN_K_COUNT)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "no kernel %d", (int)id);
  if (!defs) defs = "";
  if (strlen(defs) >= sizeof ctx->variants[0].defs)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "kernel %s: options too long: %s",
                    kernel_table[id].name, defs);
  int pi = wrn_program_index(kernel_table[id].prog);
  if (pi < 0)
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "no kernel program cl/%s.cl",
                    kernel_table[id].prog);
  wrn_variant *v = NULL;
  for (int i = 0; i < ctx->nvariants && !v; i++)
    if (ctx->variants[i].prog == pi && !strcmp(ctx->variants[i].defs, defs))
      v = &ctx->variants[i];
  if (!v) {
    if (ctx->nvariants == ctx->capvariants) {
      int cap = ctx->capvariants ? 2 * ctx->capvariants : 16;
      wrn_variant *nv = realloc(ctx->variants, (size_t)cap * sizeof *nv);
      if (!nv) return wrn_fail(WRN_STATUS_OUT_OF_MEMORY, "out of host memory");
      ctx->variants = nv;
      ctx->capvariants = cap;
    }
    cl_program p;
    WRN_TRY(wrn_program_build_variant(ctx, pi, defs, &p));
    v = &ctx->variants[ctx->nvariants++];
    memset(v, 0, sizeof *v);
    v->prog = pi;
    snprintf(v->defs, sizeof v->defs, "%s", defs);
    v->program = p;
  }
  if (!v->kernels[id]) WRN_TRY(make_kernel(id, v->program, v->defs, &v->kernels[id]));
  *a = args_of(ctx, v->kernels[id], id);
  return WRN_OK;
}

static void set_arg(wrn_args *a, size_t size, const void *v) {
  if (a->err == CL_SUCCESS) {
    cl_int e = clSetKernelArg(a->k, a->n, size, v);
    if (e != CL_SUCCESS) {
      a->err = e;
      a->bad = a->n;
    }
  }
  a->n++;
}

void wrn_arg_buf(wrn_args *a, cl_mem m) { set_arg(a, sizeof m, &m); }
void wrn_arg_mem(wrn_args *a, wrn_mem m) {
  wrn_arg_buf(a, m.mem);
  wrn_arg_ulong(a, (uint64_t)m.off);
}
void wrn_arg_int(wrn_args *a, int v) {
  cl_int x = v;
  set_arg(a, sizeof x, &x);
}
void wrn_arg_uint(wrn_args *a, unsigned v) {
  cl_uint x = v;
  set_arg(a, sizeof x, &x);
}
void wrn_arg_ulong(wrn_args *a, uint64_t v) {
  cl_ulong x = v;
  set_arg(a, sizeof x, &x);
}
void wrn_arg_real(wrn_args *a, double v) {
  if (a->ctx->dtype == WRN_F64) {
    cl_double x = v;
    set_arg(a, sizeof x, &x);
  } else {
    cl_float x = (float)v;
    set_arg(a, sizeof x, &x);
  }
}
void wrn_arg_local(wrn_args *a, size_t bytes) { set_arg(a, bytes ? bytes : 1, NULL); }

static void kernel_name_of(cl_kernel k, char *name, size_t n) {
  snprintf(name, n, "?");
  if (clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, n, name, NULL) != CL_SUCCESS)
    snprintf(name, n, "?");
  name[n - 1] = '\0';
}

static wrn_status check_args(wrn_args *a) {
  char name[128];
  if (a->err != CL_SUCCESS) {
    kernel_name_of(a->k, name, sizeof name);
    return wrn_fail(WRN_STATUS_OPENCL, "clSetKernelArg(%s, argument %u) failed with %s", name,
                    a->bad, wrn_cl_error_name(a->err));
  }
  cl_uint want = 0;
  WRN_CL_CHECK(clGetKernelInfo(a->k, CL_KERNEL_NUM_ARGS, sizeof want, &want, NULL));
  if (want != a->n) {
    kernel_name_of(a->k, name, sizeof name);
    return wrn_fail(WRN_STATUS_INVALID_ARGUMENT, "kernel %s takes %u arguments, %u were set",
                    name, want, a->n);
  }
  return WRN_OK;
}

wrn_status wrn_launch(wrn_args *a, cl_uint dim, const size_t *gws, const size_t *lws,
                      wrn_op_cat cat, double flops) {
  return wrn_launch_at(a, dim, NULL, gws, lws, cat, flops);
}

wrn_status wrn_launch_at(wrn_args *a, cl_uint dim, const size_t *offset, const size_t *gws,
                         const size_t *lws, wrn_op_cat cat, double flops) {
  WRN_TRY(check_args(a));
  for (cl_uint i = 0; i < dim; i++)
    if (gws[i] == 0) return WRN_OK; /* nothing to do */
  wrn_ctx *ctx = a->ctx;
  if (offset) {
    cl_uint bits = 64;
    WRN_CL_CHECK(clGetDeviceInfo(ctx->dev.device, CL_DEVICE_ADDRESS_BITS, sizeof bits, &bits,
                                 NULL));
    for (cl_uint i = 0; i < dim; i++)
      if (bits < 64 && (offset[i] > UINT32_MAX || gws[i] > UINT32_MAX - offset[i]))
        return wrn_fail(WRN_STATUS_INVALID_ARGUMENT,
                        "a launch of %zu items at offset %zu passes the %u-bit address range "
                        "of '%s'", gws[i], offset[i], bits, ctx->dev.name);
  }
  cl_event *ev = wrn_event_slot(ctx, cat, flops);
  if (ev) ctx->events[ctx->nevents - 1].name = kernel_table[a->id].name;
  cl_int e = clEnqueueNDRangeKernel(ctx->queue, a->k, dim, offset, gws, lws, 0, NULL, ev);
  if (e != CL_SUCCESS) {
    if (ev) ctx->nevents--;
    char name[128];
    kernel_name_of(a->k, name, sizeof name);
    return wrn_fail(e == CL_OUT_OF_RESOURCES || e == CL_MEM_OBJECT_ALLOCATION_FAILURE
                        ? WRN_STATUS_OUT_OF_MEMORY
                        : WRN_STATUS_OPENCL,
                    "clEnqueueNDRangeKernel(%s) failed with %s at %s", name,
                    wrn_cl_error_name(e), WRN_WHERE);
  }
  return WRN_OK;
}

wrn_status wrn_launch_1d(wrn_args *a, size_t n, wrn_op_cat cat) {
  size_t lws = a->ctx->max_wg < 256 ? a->ctx->max_wg : 256;
  size_t gws = wrn_round_up(n, lws);
  return wrn_launch(a, 1, &gws, &lws, cat, 0);
}

wrn_status wrn_kernel_wg_max(wrn_args *a, size_t *out) {
  size_t kwg = 0;
  WRN_CL_CHECK(clGetKernelWorkGroupInfo(a->k, a->ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof kwg, &kwg, NULL));
  *out = kwg ? kwg : 1;
  return WRN_OK;
}
