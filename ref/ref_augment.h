/* Naive augmentation: builds the flipped, reflection-padded image explicitly, crops it and
 * zeroes the cutout square. */
#ifndef WRN_REF_AUGMENT_H
#define WRN_REF_AUGMENT_H

#include <stdint.h>

#include "wrn.h"

/* y[n][c][h][w] from img[n][c][h][w], with the flip and offsets of wrn_augment_params and
 * the cutout square of wrn_augment_cutout. */
void ref_augment(double *y, const uint8_t *img, int n, int c, int h, int w,
                 const wrn_augment *a);

#endif
