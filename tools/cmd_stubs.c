/* Subcommands not built yet answer so, with a nonzero status. */
#include "cli.h"

#include <stdio.h>

static int not_yet(const char *name) {
  fprintf(stderr, "wrn %s: not available in this build yet\n", name);
  return 1;
}
int cmd_bench(int argc, char **argv) { (void)argc, (void)argv; return not_yet("bench"); }
