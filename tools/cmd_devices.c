/* wrn devices: every OpenCL platform and device with the capabilities that matter here. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f, "usage: wrn devices [--no-probe]\n"
             "Lists every OpenCL platform and device: platform, vendor, name, driver, OpenCL C\n"
             "version, compute units, clock, memory and capabilities (fp64, fp16, subgroups,\n"
             "inline PTX). Select one elsewhere with --device P:D|cpu|gpu|NAME or WRN_DEVICE.\n");
}

int cmd_devices(int argc, char **argv) {
  int probe = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--no-probe")) {
      probe = 0;
    } else {
      fprintf(stderr, "wrn devices: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  wrn_device_info *list;
  int n;
  if (wrn_devices_list(&list, &n) != WRN_OK) {
    cli_error("devices", "listing OpenCL devices");
    return 1;
  }
  wrn_device_info def;
  int have_def = wrn_device_select(NULL, &def) == WRN_OK;
  int last_plat = -1;
  for (int i = 0; i < n; i++) {
    wrn_device_info *d = &list[i];
    if (d->platform_index != last_plat) {
      printf("platform %d: %s (%s)\n", d->platform_index, d->platform_name, d->platform_version);
      last_plat = d->platform_index;
    }
    if (probe) wrn_device_probe_ptx(d);
    const char *type = (d->type & CL_DEVICE_TYPE_GPU)   ? "GPU"
                       : (d->type & CL_DEVICE_TYPE_CPU) ? "CPU"
                                                        : "accelerator";
    int is_def = have_def && def.platform_index == d->platform_index &&
                 def.device_index == d->device_index;
    printf("  device %d:%d%s\n", d->platform_index, d->device_index, is_def ? "  (default)" : "");
    printf("    name            %s (%s)\n", d->name, type);
    printf("    vendor          %s\n", d->vendor);
    printf("    driver          %s\n", d->driver);
    printf("    version         %s; %s\n", d->device_version, d->opencl_c_version);
    printf("    compute units   %u at %u MHz\n", d->compute_units, d->clock_mhz);
    printf("    global memory   %.2f GiB (largest buffer %.2f GiB)\n",
           d->global_mem / 1073741824.0, d->max_alloc / 1073741824.0);
    printf("    local memory    %.1f KiB; work-group up to %zu\n", d->local_mem / 1024.0,
           d->max_work_group);
    printf("    capabilities    fp64 %s, fp16 %s, subgroups %s, inline PTX %s\n",
           d->fp64 ? "yes" : "no", d->fp16 ? "yes" : "no", d->subgroups ? "yes" : "no",
           d->ptx_probe < 0 ? "not probed" : d->ptx_probe ? "builds" : "no");
  }
  free(list);
  return 0;
}
