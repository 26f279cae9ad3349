/* Error reporting: a per-thread message beside every returned status. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char wrn_err_msg[4096];

const char *wrn_last_error(void) { return wrn_err_msg; }
void wrn_clear_error(void) { wrn_err_msg[0] = '\0'; }

wrn_status wrn_fail(wrn_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(wrn_err_msg, sizeof wrn_err_msg, fmt, ap);
  va_end(ap);
  return s;
}

const char *wrn_status_name(wrn_status s) {
  switch (s) {
  case WRN_OK: return "ok";
  case WRN_STATUS_INVALID_ARGUMENT: return "invalid argument";
  case WRN_STATUS_OPENCL: return "OpenCL error";
  case WRN_STATUS_CLBLAST: return "CLBlast error";
  case WRN_STATUS_OUT_OF_MEMORY: return "out of memory";
  case WRN_STATUS_NO_DEVICE: return "no device";
  case WRN_STATUS_BUILD: return "kernel build failed";
  case WRN_STATUS_IO: return "I/O error";
  case WRN_STATUS_FORMAT: return "bad file format";
  case WRN_STATUS_UNSUPPORTED: return "unsupported";
  case WRN_STATUS_INTERRUPTED: return "interrupted";
  }
  return "unknown status";
}

const char *wrn_cl_error_name(cl_int e) {
  switch (e) {
#define C(x) case x: return #x;
    C(CL_SUCCESS) C(CL_DEVICE_NOT_FOUND) C(CL_DEVICE_NOT_AVAILABLE) C(CL_COMPILER_NOT_AVAILABLE)
    C(CL_MEM_OBJECT_ALLOCATION_FAILURE) C(CL_OUT_OF_RESOURCES) C(CL_OUT_OF_HOST_MEMORY)
    C(CL_PROFILING_INFO_NOT_AVAILABLE) C(CL_MEM_COPY_OVERLAP) C(CL_IMAGE_FORMAT_MISMATCH)
    C(CL_IMAGE_FORMAT_NOT_SUPPORTED) C(CL_BUILD_PROGRAM_FAILURE) C(CL_MAP_FAILURE)
    C(CL_MISALIGNED_SUB_BUFFER_OFFSET) C(CL_COMPILE_PROGRAM_FAILURE) C(CL_LINKER_NOT_AVAILABLE)
    C(CL_LINK_PROGRAM_FAILURE) C(CL_INVALID_VALUE) C(CL_INVALID_DEVICE_TYPE)
    C(CL_INVALID_PLATFORM) C(CL_INVALID_DEVICE) C(CL_INVALID_CONTEXT)
    C(CL_INVALID_QUEUE_PROPERTIES) C(CL_INVALID_COMMAND_QUEUE) C(CL_INVALID_HOST_PTR)
    C(CL_INVALID_MEM_OBJECT) C(CL_INVALID_BINARY) C(CL_INVALID_BUILD_OPTIONS)
    C(CL_INVALID_PROGRAM) C(CL_INVALID_PROGRAM_EXECUTABLE) C(CL_INVALID_KERNEL_NAME)
    C(CL_INVALID_KERNEL_DEFINITION) C(CL_INVALID_KERNEL) C(CL_INVALID_ARG_INDEX)
    C(CL_INVALID_ARG_VALUE) C(CL_INVALID_ARG_SIZE) C(CL_INVALID_KERNEL_ARGS)
    C(CL_INVALID_WORK_DIMENSION) C(CL_INVALID_WORK_GROUP_SIZE) C(CL_INVALID_WORK_ITEM_SIZE)
    C(CL_INVALID_GLOBAL_OFFSET) C(CL_INVALID_EVENT_WAIT_LIST) C(CL_INVALID_EVENT)
    C(CL_INVALID_OPERATION) C(CL_INVALID_BUFFER_SIZE) C(CL_INVALID_GLOBAL_WORK_SIZE)
    C(CL_PLATFORM_NOT_FOUND_KHR)
#undef C
  default: return "unknown OpenCL error";
  }
}

wrn_status wrn_cl_fail(cl_int code, const char *call, const char *where) {
  const char *hint = "";
  wrn_status s = WRN_STATUS_OPENCL;
  if (code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_RESOURCES ||
      code == CL_OUT_OF_HOST_MEMORY) {
    hint = " (the device or host ran out of memory: try a smaller --batch)";
    s = WRN_STATUS_OUT_OF_MEMORY;
  } else if (code == CL_PLATFORM_NOT_FOUND_KHR) {
    hint = " (no OpenCL platform: is an ICD file under /etc/OpenCL/vendors?)";
    s = WRN_STATUS_NO_DEVICE;
  }
  return wrn_fail(s, "%s failed with %s (%d) at %s%s", call, wrn_cl_error_name(code), (int)code,
                  where, hint);
}

wrn_status wrn_clblast_fail(int code, const char *call, const char *where) {
  const char *hint = "";
  wrn_status s = WRN_STATUS_CLBLAST;
  if (code == -4 || code == -5 || code == -6) {
    hint = " (out of memory: try a smaller --batch)";
    s = WRN_STATUS_OUT_OF_MEMORY;
  } else if (code < 0 && code > -100) {
    return wrn_fail(WRN_STATUS_CLBLAST, "%s failed with OpenCL error %s (%d) at %s", call,
                    wrn_cl_error_name(code), code, where);
  }
  return wrn_fail(s, "%s failed with CLBlast status %d at %s%s", call, code, where, hint);
}

const char *wrn_op_cat_name(wrn_op_cat c) {
  static const char *names[WRN_CAT_COUNT] = {
      "conv forward", "conv input grad", "conv weight grad", "im2col/layout", "batch norm",
      "relu", "dropout", "pooling", "linear", "loss", "optimiser", "augment", "residual add",
      "transfers", "other"};
  return (c >= 0 && c < WRN_CAT_COUNT) ? names[c] : "?";
}
