/* Network builders over the scheduler (host/wrn_net.h). */
#ifndef WRN_MODELS_H
#define WRN_MODELS_H

#include "wrn_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The model families. WRN_ARCH_WRN is 0, so a spec written as {d, k, classes, p, 3, 32, 32}
 * is a WRN-d-k. */
typedef enum wrn_arch {
  WRN_ARCH_WRN = 0,    /* WRN-d-k for 32x32 images, pre-activation basic blocks, d = 6N+4 */
  WRN_ARCH_PREACT = 1, /* pre-activation ResNet with bottlenecks for 32x32 images (He et al.
                          2016, "Identity mappings"), depth 9N+2: preresnet-164, -1001 */
  WRN_ARCH_RESNET = 2  /* torchvision's ImageNet ResNet with post-activation bottlenecks,
                          depth 50/101/152, inner width 64k per stage unit: resnet-50 (k = 1),
                          wrn-50-2 (k = 2, torchvision's wide_resnet50_2) */
} wrn_arch;

typedef struct wrn_model_spec {
  int depth;      /* WRN: d = 6N + 4; PREACT: 9N + 2; RESNET: 50, 101 or 152 */
  int width;      /* k (PREACT: 1) */
  int classes;    /* 10 or 100 (any >= 2) */
  double dropout; /* p between the block's two convs; 0 = none (WRN only) */
  int in_c, in_h, in_w; /* 3, 32, 32 (RESNET: 3, 224, 224) */
  wrn_arch arch;
} wrn_model_spec;

/* Parses "wrn-28-10" (or "WRN-28-10") into depth and width, "preresnet-164", "resnet-50" or
 * "wrn-50-2" (a depth of 50, 101 or 152 is never 6N+4, so the bottleneck models cannot be
 * mistaken for a WRN-d-k); sets arch; other fields keep their values. */
wrn_status wrn_model_parse(const char *name, wrn_model_spec *spec);
/* Checks depth (WRN: 6N+4, >= 10; PREACT: 9N+2, >= 11; RESNET: 50, 101, 152), width >= 1,
 * classes >= 2, 0 <= dropout < 1 (0 for the ResNets), input >= 8x8 with sides divisible by 4
 * (RESNET: square, at least 32x32). */
wrn_status wrn_model_check(const wrn_model_spec *spec);
void wrn_model_name(const wrn_model_spec *spec, char *out, size_t n);
/* The input side the model is meant for: 224 for RESNET, 32 otherwise. */
int wrn_model_default_size(const wrn_model_spec *spec);
/* Adds the model's layers to a freshly created network and plans its memory (wrn_net_plan),
 * which needs no device: wrn summary stops here. To run it, call wrn_net_finalize (allocates
 * the device memory) and then wrn_net_init_params or load a checkpoint. Parameter names
 * follow the PyTorch port for WRN-d-k: conv0, group{g}.block{i}.{bn0,conv0,bn1,conv1,convdim},
 * bn, fc; torchvision's for RESNET: conv1.weight, bn1, layer{s}.{i}.{conv1,bn1,conv2,bn2,
 * conv3,bn3}, layer{s}.{i}.downsample.{0.weight,1}, fc; and for PREACT: conv1.weight,
 * layer{s}.{i}.{bn1,conv1.weight,bn2,conv2.weight,bn3,conv3.weight,shortcut.weight}, bn, fc
 * (the definition in tests/test_torch_models.py). */
wrn_status wrn_model_build(wrn_net *net, const wrn_model_spec *spec);
/* Parameter count and forward multiply-adds per image, computed from the spec alone. */
size_t wrn_model_param_count(const wrn_model_spec *spec);
double wrn_model_forward_macs(const wrn_model_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
