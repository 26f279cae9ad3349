/* The model families other than WRN-d-k (resnet.c), behind wrn_models.h's functions. */
#ifndef WRN_MODELS_INTERNAL_H
#define WRN_MODELS_INTERNAL_H

#include "wrn_models.h"

/* Returns a failing status from the enclosing function. */
#define MODEL_TRY(expr)                                                                     \
  do {                                                                                      \
    wrn_status model_try_s_ = (expr);                                                       \
    if (model_try_s_ != WRN_OK) return model_try_s_;                                        \
  } while (0)

/* Depth, width and input checks of PREACT and RESNET specs (classes and dropout are checked
 * by the caller). */
wrn_status wrn_resnet_check(const wrn_model_spec *s);
wrn_status wrn_resnet_build(wrn_net *net, const wrn_model_spec *s);
size_t wrn_resnet_param_count(const wrn_model_spec *s);
double wrn_resnet_forward_macs(const wrn_model_spec *s);

#endif
