/* Random square patches of an image folder (daecl/imageset.h) for training.
 *
 * Patch `index` of epoch `epoch` is a pure function of (seed, epoch, index): a splitmix64 stream
 * seeded from the three, drawing in order
 *   1. the image, with probability proportional to its area w*h: a uniform r in [0, total area)
 *      (unbiased, by rejection) and a binary search for the first cum_area > r;
 *   2. x uniform in [0, w - size], then y uniform in [0, h - size] (unbiased bounded draws);
 *   3. with augment, one of the 8 flips / 90° rotations (the dihedral group of the square):
 *      bit 2 transposes, bit 0 mirrors left-right, bit 1 mirrors top-bottom, in that order.
 * So any batch, on any thread, in any order, and a resumed run draw the same patches. */
#ifndef DAECL_PATCHES_H
#define DAECL_PATCHES_H

#include <stdint.h>

#include "daecl/imageset.h"

typedef struct dc_patch {
    uint32_t image; /* index into the set's usable images */
    int x, y;       /* top-left corner */
    int transform;  /* 0..7 (0: as stored) */
} dc_patch;

/* Every image must be at least size x size (dc_imageset_options.min_side). */
void dc_patch_draw(const dc_imageset *s, int size, int augment, uint64_t seed, uint32_t epoch, uint32_t index,
                   dc_patch *out);

/* Copy the patch into dst: c planes of size*size values of the set's depth. Output pixel (i, j)
 * (row, column) is the crop's (i', j') after the transform: with bit 2 (i', j') = (j, i), then
 * bit 0 j' = size-1-j', bit 1 i' = size-1-i'. */
void dc_patch_copy(const dc_imageset *s, int size, const dc_patch *p, void *dst);

#endif
