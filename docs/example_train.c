/* Trains WRN-10-1 with the paper's recipe through libwrn's public headers, for 3 short epochs
 * on a CIFAR-10 folder; Ctrl-C stops it with a checkpoint. Usage: example_train DATA RUN_DIR */
#include <signal.h>
#include <stdio.h>

#include "wrn_models.h"
#include "wrn_train.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { stop = sig; }

static wrn_status build(wrn_net *net, const wrn_train_options *o, void *user) {
  wrn_model_spec s = {0, 0, o->classes, o->dropout, 3, 32, 32, WRN_ARCH_WRN};
  wrn_status st = wrn_model_parse(o->model, &s);
  (void)user;
  return st != WRN_OK ? st : wrn_model_build(net, &s);
}

static void on_event(const wrn_train_event *e, void *user) {
  (void)user;
  if (e->kind == WRN_TRAIN_EVENT_EPOCH)
    printf("epoch %d: train loss %.4f, test loss %.4f, test accuracy %.2f%%\n", e->epoch,
           e->train_loss, e->test_loss, e->test_acc);
}

int main(int argc, char **argv) {
  if (argc != 3) return fprintf(stderr, "usage: example_train DATA RUN_DIR\n"), 2;
  wrn_train_options o;
  wrn_train_options_default(&o); /* the recipe: lr 0.1, Nesterov, flip + crop, ... */
  wrn_status s = wrn_train_option_set(&o, "--data", argv[1]);
  if (s == WRN_OK) s = wrn_train_option_set(&o, "--out", argv[2]);
  if (s == WRN_OK) s = wrn_train_option_set(&o, "--model", "wrn-10-1");
  o.epochs = 3, o.batch = 32, o.train_limit = 512, o.test_limit = 128;
  wrn_train_hooks hooks = {build, on_event, NULL, &stop};
  signal(SIGINT, on_signal);
  wrn_trainer *t = NULL;
  if (s == WRN_OK) s = wrn_trainer_open(&t, &o, &hooks, WRN_TRAIN_NEW);
  if (s == WRN_OK) s = wrn_trainer_run(t);
  if (s != WRN_OK) fprintf(stderr, "example_train: %s\n", wrn_last_error());
  wrn_trainer_free(t);
  return s == WRN_OK ? 0 : 1;
}
