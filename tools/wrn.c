/* wrn: train, evaluate and benchmark Wide Residual Networks on OpenCL devices. */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *what) {
  const char *msg = wrn_last_error();
  fprintf(stderr, "wrn %s: %s%s%s\n", cmd, what, msg[0] ? ": " : "", msg);
}

const char *cli_self_path(void) {
  static char path[4096];
  if (!path[0]) {
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0 || (size_t)n >= sizeof path - 1) snprintf(path, sizeof path, "wrn");
    else path[n] = '\0';
  }
  return path;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: wrn <command> [flags]   (wrn <command> --help for its flags)\n"
          "\n"
          "commands:\n"
          "  devices   list OpenCL platforms and devices\n"
          "  train     train a WRN on CIFAR-10/100 with the paper's recipe\n"
          "  eval      evaluate a checkpoint on a test set\n"
          "  summary   print a model's layers, parameter count and FLOPs\n"
          "  bench     measure training or inference speed and a per-op profile\n"
          "  bench-loader  JPEG decode + augmentation images/s of an image folder, per core\n"
          "  tune      choose and store the convolution algorithms of a model ahead of time\n"
          "  plot      training curves (train/test error, learning rate) of runs as SVG/PNG\n"
          "  compare   a table of runs: model, differing options, best/final error, time\n"
          "  report    merge bench --json results from several machines into one report\n"
          "  selftest  check every op and convolution algorithm of a device against references\n"
          "\n"
          "wrn --version prints the version (git describe of the sources it was built from).\n");
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
      !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
    printf("wrn %s\n", wrn_version());
    return 0;
  }
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {{"devices", cmd_devices}, {"train", cmd_train}, {"eval", cmd_eval},
              {"summary", cmd_summary}, {"bench", cmd_bench},      {"tune", cmd_tune},
              {"bench-loader", cmd_bench_loader},
              {"plot", cmd_plot},       {"compare", cmd_compare}, {"report", cmd_report},
              {"selftest", cmd_selftest}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "wrn: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
