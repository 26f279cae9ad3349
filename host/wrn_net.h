/* The layer scheduler: a network is a list of layers over numbered tensors. It runs the
 * forward pass, the loss, the backward pass in reverse order and the SGD update on one device.
 * Activations and their gradients are placed in one arena by a liveness planner; parameters,
 * gradients and momentum each live in one flat buffer; BN running statistics in another.
 *
 * Building: wrn_net_create, then wrn_net_input and the layer functions (each returns the id of
 * its output tensor, or -1 after recording an error), then wrn_net_finalize, which plans and
 * allocates memory, and wrn_net_init_params. Every layer works on the whole batch
 * [batch][c][h][w]; a smaller batch is run padded to the planned size. */
#ifndef WRN_NET_H
#define WRN_NET_H

#include "wrn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wrn_net wrn_net;

typedef enum wrn_layer_kind {
  WRN_LAYER_CONV,
  WRN_LAYER_BN,
  WRN_LAYER_DROPOUT,
  WRN_LAYER_ADD,
  WRN_LAYER_AVGPOOL,
  WRN_LAYER_LINEAR,
  WRN_LAYER_MAXPOOL
} wrn_layer_kind;

/* A named parameter or buffer (running statistics) of the network. */
typedef struct wrn_param_info {
  char name[96];
  int ndim;
  int shape[4];
  size_t offset; /* elements into the flat parameter (or buffer) array */
  size_t count;
} wrn_param_info;

/* One layer, as wrn_net_layer describes it for summaries. */
typedef struct wrn_layer_info {
  wrn_layer_kind kind;
  char name[96];
  int in_c, in_h, in_w, out_c, out_h, out_w;
  int k, stride, pad; /* conv / pool */
  int relu;           /* BN fused with ReLU */
  double p;           /* dropout */
  size_t params;
  double macs; /* multiply-adds per image (conv, linear) */
} wrn_layer_info;

typedef struct wrn_net_options {
  double bn_momentum; /* 0.1 */
  double bn_eps;      /* 1e-5 */
  int bn_gamma_one;   /* 1: gamma = 1 instead of U(0, 1) */
  size_t max_workspace_elems; /* bound on the conv workspace; 0 = no bound */
  size_t max_buffer_elems;    /* the activation arena is cut into device buffers of at most
                                 this many elements, no tensor crossing a cut (0: the
                                 device's largest allocation, which is the bound anyway) */
  int no_fusion; /* 1: keep each residual add a layer of its own (default 0: a conv that is an
                    add's only producer of one operand adds the other in its output pass) */
  double label_smoothing; /* training loss against (1 - eps) onehot + eps / classes (0) */
  int bn_ghost;  /* > 1: training-mode batch norm normalises each of bn_ghost equal groups of
                    the batch on its own ("ghost batches", what bn_ghost data-parallel replicas
                    of batch / bn_ghost do; the running statistics take the groups' updates in
                    order); must divide the batch. 0 or 1: the whole batch */
} wrn_net_options;
void wrn_net_options_default(wrn_net_options *o);

/* ctx may be NULL for a network that is only planned and described (wrn summary); sizes are
 * then counted in float. */
wrn_status wrn_net_create(wrn_net **out, wrn_ctx *ctx, int batch, const wrn_net_options *o);
void wrn_net_free(wrn_net *net);

/* The input tensor: [batch][c][h][w], written by wrn_net_set_batch. */
int wrn_net_input(wrn_net *net, int c, int h, int w);
int wrn_net_conv(wrn_net *net, const char *name, int x, int c_out, int k, int stride, int pad);
/* Batch norm with parameter names <name>.weight/.bias/.running_mean/.running_var;
 * relu = 1 fuses the ReLU that follows. */
int wrn_net_bn(wrn_net *net, const char *name, int x, int relu);
int wrn_net_dropout(wrn_net *net, int x, double p);
int wrn_net_add(wrn_net *net, int a, int b);
/* max(a + b, 0): the residual add of post-activation blocks (kind WRN_LAYER_ADD, relu = 1). */
int wrn_net_add_relu(wrn_net *net, int a, int b);
int wrn_net_avgpool(wrn_net *net, int x, int k, int stride, int pad);
/* Max pooling, square window k; padded cells never win (PyTorch's MaxPool2d). */
int wrn_net_maxpool(wrn_net *net, int x, int k, int stride, int pad);
/* Flattens x and applies y = x W^T + b; parameters <name>.weight, <name>.bias. */
int wrn_net_linear(wrn_net *net, const char *name, int x, int out);

/* Plans the arena (liveness and placement) without touching the device. */
wrn_status wrn_net_plan(wrn_net *net);
/* Plans the arena, allocates device memory. The last tensor made is the output (logits). */
wrn_status wrn_net_finalize(wrn_net *net);
/* The recipe's initialisation from a seed: conv He normal (fan-in), BN gamma U(0,1) (or 1),
 * beta 0, running mean 0 / var 1, linear W U(-1/sqrt(in), 1/sqrt(in)), bias 0; momentum 0. */
wrn_status wrn_net_init_params(wrn_net *net, uint64_t seed);

/* Sizes and descriptions. */
int wrn_net_batch(const wrn_net *net);
int wrn_net_classes(const wrn_net *net);
int wrn_net_layer_count(const wrn_net *net);
void wrn_net_layer(const wrn_net *net, int i, wrn_layer_info *out);
size_t wrn_net_param_count(const wrn_net *net);
size_t wrn_net_buffer_count(const wrn_net *net); /* running statistics */
int wrn_net_param_tensors(const wrn_net *net);
const wrn_param_info *wrn_net_param_tensor(const wrn_net *net, int i);
int wrn_net_buffer_tensors(const wrn_net *net);
const wrn_param_info *wrn_net_buffer_tensor(const wrn_net *net, int i);
double wrn_net_forward_macs(const wrn_net *net); /* per image */
/* Activation memory: planned arena bytes and the sum without reuse; workspace and
 * parameter bytes (params, grads, momentum). Valid after finalize. */
void wrn_net_memory(const wrn_net *net, size_t *arena, size_t *naive, size_t *workspace,
                    size_t *params);
/* How many device buffers hold the activation arena (after finalize; 0 before): more than
 * one where the arena is larger than the device's largest allocation (or max_buffer_elems). */
int wrn_net_arena_buffers(const wrn_net *net);
/* Verifies the plan: no two buffers whose lifetimes overlap share memory (tests). */
wrn_status wrn_net_check_plan(const wrn_net *net);
/* Bytes a network would need on the device, for messages before allocation fails. */
size_t wrn_net_device_bytes(const wrn_net *net);

/* Uploads a uint8 batch img[n][c][h][w] with int32 labels[n] (n <= batch) and runs the input
 * pipeline (normalise, and augment when a->augment) into the input tensor. */
wrn_status wrn_net_set_batch(wrn_net *net, const uint8_t *img, const int32_t *labels, int n,
                             const wrn_augment *a);
/* Writes reals directly into the input tensor ([batch][c][h][w]) and labels (tests). */
wrn_status wrn_net_set_input_real(wrn_net *net, const double *x, const int32_t *labels, int n);
/* Forward pass. train = 1: batch statistics (and running-statistics update), dropout on with
 * masks keyed by (dropout_seed, step, layer); train = 0: running statistics, no dropout. */
wrn_status wrn_net_forward(wrn_net *net, int train, uint64_t dropout_seed, uint64_t step);
/* Softmax cross-entropy of the first n samples (mean over n) and, when grad = 1, the logits'
 * gradient; with grad = 1 (training) against targets smoothed by the options'
 * label_smoothing, with grad = 0 (evaluation) against the labels themselves. */
wrn_status wrn_net_loss(wrn_net *net, int n, int grad);
/* Reads the last loss: sum of the n per-sample losses and the number correct (blocks). */
wrn_status wrn_net_read_loss(wrn_net *net, int n, double *loss_sum, int *correct);
/* Backward pass in reverse layer order; parameter gradients are overwritten. */
wrn_status wrn_net_backward(wrn_net *net);
/* Called by wrn_net_backward after the commands of a layer that has parameters are enqueued
 * (not finished), with the range [off, off + count) of the flat gradient array they write;
 * ranges come in decreasing order and together cover the array. A failure ends the pass. */
typedef wrn_status (*wrn_net_grad_hook)(void *user, size_t off, size_t count);
void wrn_net_set_grad_hook(wrn_net *net, wrn_net_grad_hook fn, void *user);
/* The batch is a slice of a global batch starting at sample `first`: dropout and the input
 * pipeline's flips and crops draw as the whole would (0 by default). */
void wrn_net_set_sample_offset(wrn_net *net, size_t first);
/* g = grad + wd * theta and the (Nesterov) momentum update over the flat buffer. */
wrn_status wrn_net_update(wrn_net *net, const wrn_sgd *sgd);
/* Runs one training step without the update and one inference pass on whatever the input
 * holds, so that first-use compilation (and GEMM tuning) happens now; running statistics are
 * restored after, so it changes no state. */
wrn_status wrn_net_warmup(wrn_net *net);
/* 0 when a warm-up would find everything ready: finalize measured no convolution choice
 * (they came from the tuner's store or a replay) and every kernel program on this context
 * came from the disk cache. Callers may then skip wrn_net_warmup. */
int wrn_net_warmup_needed(const wrn_net *net);

/* Convolution algorithms. wrn_net_finalize asks the tuner (wrn_conv_choose) for each conv
 * layer and pass, within max_workspace_elems. The choices, as text
 * "layer@pass=choice;...", can be read after finalize and given to another network of the
 * same model before its finalize, which then uses them where they still fit (a checkpoint
 * records them so a resumed run computes with the same kernels). The text may also be one
 * choice without '@' ("winograd4"), used wherever it supports the layer, or "auto". */
wrn_status wrn_net_set_conv_choices(wrn_net *net, const char *text);
wrn_status wrn_net_conv_choices(const wrn_net *net, char *out, size_t len);
/* The choice of conv layer i for a pass ("" for other layers and unused passes). */
const char *wrn_net_conv_choice(const wrn_net *net, int layer_index, wrn_conv_pass pass);

/* Elements of flat array `which` (below), padding between tensors included. */
size_t wrn_net_flat_count(const wrn_net *net, int which);
size_t wrn_net_real_size(const wrn_net *net);
wrn_ctx *wrn_net_ctx(const wrn_net *net);
/* Host copies of the flat arrays (count elements as doubles). which: 0 params, 1 grads,
 * 2 momentum, 3 buffers (running statistics). */
wrn_status wrn_net_read(wrn_net *net, int which, double *out);
wrn_status wrn_net_write(wrn_net *net, int which, const double *in);
/* The device buffer of flat array `which` (as above), in the context's real type. */
wrn_mem wrn_net_flat_mem(const wrn_net *net, int which);
/* Reads the output logits [n][classes]. */
wrn_status wrn_net_read_logits(wrn_net *net, double *out, int n);

#ifdef __cplusplus
}
#endif
#endif
