/* Network builders over the scheduler (host/wrn_net.h). */
#ifndef WRN_MODELS_H
#define WRN_MODELS_H

#include "wrn_net.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wrn_model_spec {
  int depth;      /* d = 6N + 4 */
  int width;      /* k */
  int classes;    /* 10 or 100 (any >= 2) */
  double dropout; /* p between the block's two convs; 0 = none */
  int in_c, in_h, in_w; /* 3, 32, 32 */
} wrn_model_spec;

/* Parses "wrn-28-10" (or "WRN-28-10") into depth and width; other fields keep their values. */
wrn_status wrn_model_parse(const char *name, wrn_model_spec *spec);
/* Checks depth (6N+4, >= 10), width >= 1, classes >= 2, 0 <= dropout < 1, input >= 8x8. */
wrn_status wrn_model_check(const wrn_model_spec *spec);
void wrn_model_name(const wrn_model_spec *spec, char *out, size_t n);
/* Adds the WRN-d-k layers to a freshly created network and plans its memory (wrn_net_plan),
 * which needs no device: wrn summary stops here. To run it, call wrn_net_finalize (allocates
 * the device memory) and then wrn_net_init_params or load a checkpoint. Parameter names
 * follow the PyTorch port: conv0, group{g}.block{i}.{bn0,conv0,bn1,conv1,convdim}, bn, fc. */
wrn_status wrn_model_build(wrn_net *net, const wrn_model_spec *spec);
/* Parameter count and forward multiply-adds per image, computed from the spec alone. */
size_t wrn_model_param_count(const wrn_model_spec *spec);
double wrn_model_forward_macs(const wrn_model_spec *spec);

#ifdef __cplusplus
}
#endif
#endif
