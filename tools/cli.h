/* The wrn command: one function per subcommand. Each returns the process exit status:
 * 0 success, 1 failure at run time, 2 a bad flag or value. */
#ifndef WRN_CLI_H
#define WRN_CLI_H

#include "wrn.h"

int cmd_devices(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_loader(int argc, char **argv);
int cmd_bench_devices(int argc, char **argv); /* wrn bench --devices */
int cmd_tune(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_selftest(int argc, char **argv);

/* Returns a failing status from the enclosing function. */
#define CLI_TRY(expr)                                                                       \
  do {                                                                                      \
    wrn_status cli_try_s_ = (expr);                                                         \
    if (cli_try_s_ != WRN_OK) return cli_try_s_;                                            \
  } while (0)

/* The running binary's absolute path (for commands printed as hints), else "wrn". */
const char *cli_self_path(void);

/* Prints "wrn <cmd>: <message>" to stderr with the library's last error. */
void cli_error(const char *cmd, const char *what);

#endif
