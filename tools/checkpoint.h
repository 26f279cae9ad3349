/* Checkpoints: safetensors files holding the network's parameters and BN running statistics
 * under the PyTorch port's names, the momentum buffer as "momentum.<name>", and string
 * metadata (model, epoch, step, options, ..., and what reproduces the inputs: input_shape,
 * input_mean, input_std, input_scale, bn_eps, bn_momentum; tools/wrn_torch.py reads them). */
#ifndef WRN_CHECKPOINT_H
#define WRN_CHECKPOINT_H

#include "wrn_io.h"
#include "wrn_net.h"

typedef struct ckpt_meta {
  const char *key, *value;
} ckpt_meta;

/* Writes atomically (temporary file, fsync, rename). */
wrn_status ckpt_save(wrn_net *net, const char *path, const ckpt_meta *meta, int nmeta,
                     int with_momentum);
/* Loads parameters and running statistics (and momentum when with_momentum and present)
 * after checking every tensor's name and shape against the network; the message names the
 * tensor, both shapes and the file. */
wrn_status ckpt_load(wrn_net *net, const wrn_st_file *f, const char *path, int with_momentum);

#endif
