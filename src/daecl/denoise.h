/* Denoising user images of any size with a trained model (dae-cl denoise, tools/visualize).
 *
 * The models are fully convolutional, so one set of parameters runs on any image size. This
 * module runs a model on an image of any size in bounded device memory, with a result that
 * does not depend on how the image was cut up:
 *
 *  - Borders. The image is extended in every direction by mirror reflection without repeating
 *    the edge pixel (... c b | a b c ..., OpenCV's BORDER_REFLECT_101), and the model runs on
 *    windows of that mirrored plane. Windows start at multiples of `align` from the image
 *    origin (align = 2^(pool depth), 4 for classic/keras/unet), so every pool sees the same 2x2
 *    grid, and only each window's core is kept: the pixels at least `margin` from every window
 *    edge, where margin >= `reach`, the distance over which a window edge can change the output.
 *    ("Same" convolutions zero-pad at the window edge; the difference spreads (k-1)/2 pixels per
 *    conv layer, halves (rounded up) through a pool, doubles through an upsampling, becomes
 *    2d + max(k-2-pt, pt) through a transposed conv (pt = max(k-2,0)/2), and takes the larger
 *    branch at a merge: each layer kind's reach rule in the registry, src/nn/layers.c, which
 *    tests/test_registry.c measures on the reference; dc_denoise_geometry runs them.
 *    Classic/unet: reach 11, margin 12; keras: reach 8, margin 8.) So the output is the model's
 *    output on the mirrored plane, cropped to the image: the same for any tile size, window shape
 *    or batch -- a tiled result EQUALS the untiled one everywhere, up to float rounding (a conv
 *    kernel may sum in another order for another window size), with no seams -- and the
 *    model's zero padding never touches the image (its borders see mirrored content).
 *
 *  - Window shapes. Two fixed square shapes per denoiser, whatever the image size: a small
 *    S x S window (S = DC_DENOISE_MIN_WINDOW rounded up to align, at least 2 margin + align, at
 *    most the tile) when the whole image and its margins fit in it, else windows of tile x tile
 *    pixels whose cores, tile - 2 margin long, cover the image (a smaller image is mirrored out
 *    to the window). Kernels are specialised per shape, so after the first image of each class
 *    any other size starts at once: no kernel build (the device's kernel statistics show only
 *    in-memory hits). Measured on the 2-core PoCL CPU for the classic model, the first 256 x 256
 *    shape costs about 19 s of CPU to build (8 programs; see kernels.c for why no binary cache
 *    on PoCL), later runs 0.7 s with PoCL's cache warm.
 *
 *  - Memory. Device memory per step is bounded by the window size, not the image size:
 *        activations = batch x (h x w + shared outputs) x 4 bytes
 *    for h x w windows: the input, and the layers' outputs in buffers shared by the outputs
 *    whose lifetimes do not overlap (dc_model_inference_floats). For the classic model on a CPU,
 *    whose convs write the max pools after them and read the upsamplings before them in place,
 *    that is 13 x T^2 floats for T x T windows (one half-size 32-channel buffer, two
 *    quarter-size ones and the input; 43 x T^2 without the pool folds, 102 x T^2 with every
 *    output unshared), so 3.0 MB for one 240 x 240 window. batch is the largest count that
 *    keeps activations within DC_DENOISE_MEM_BUDGET (and each tensor within the device's max
 *    allocation), at most DC_DENOISE_MAX_BATCH and never more than the number of windows: 6
 *    windows of 240 x 240 (18 MB) for a 600 x 300 image and the classic model at the default
 *    tile. Host memory:
 *    the input and output images plus batch windows in and out.
 *
 * Channels: the model's input channel count C (1 or 3) and its output's are equal (the
 * model refuses otherwise). Images of C channels run as they are (planes in, planes out). A
 * gray model (C = 1) given an RGB image denoises its Rec.601 luma Y and keeps the chroma: with
 * full-range YCbCr and Cb, Cr unchanged, the new luma Y' gives R' = R + (Y' - Y) and likewise
 * G', B'. An RGB model given a gray image runs on R = G = B and returns the luma of its result.
 * Alpha (in->alpha) is copied to the output untouched, never denoised.
 *
 * Values: floats in [0,1] in, the model's output activation (sigmoid for the presets) applied,
 * so [0,1] out for sigmoid models; a linear-output model can leave [0,1] (the writers clamp).
 * out->bit_depth = in->bit_depth, so 16-bit PNGs can be written back at 16 bits. */
#ifndef DAECL_DENOISE_H
#define DAECL_DENOISE_H

#include <stddef.h>

#include "daecl/checkpoint.h"
#include "daecl/image.h"
#include "daecl/model.h"
#include "daecl/metrics.h"

/* The largest window side, pixels. Not 256: a side that is a multiple of 32 makes the 32-channel
 * planes at full, half and quarter size multiples of 4 KiB apart, so the channel-lane kernels'
 * 32 reads or writes at one offset share one L1 set and evict each other. On an AVX-512 Zen 5,
 * 2048x2048 through the classic model: 256 windows 2.5 images/s, 240 3.7-4.6 (224-248 alike). */
#define DC_DENOISE_TILE_DEFAULT 240
#define DC_DENOISE_MEM_BUDGET ((size_t)128 << 20) /* activation bytes per step */
#define DC_DENOISE_MAX_BATCH 8                /* windows per step */
#define DC_DENOISE_MIN_WINDOW 64              /* the small window's side (see window shapes) */

/* Geometry of an architecture for tiling: align (window sides and starts are multiples of it),
 * reach (pixels a window edge can influence, see above) and margin (reach rounded up to a
 * multiple of align). Any pointer may be NULL. Shapes only, no device. */
void dc_denoise_geometry(const dc_arch *arch, int *align, int *reach, int *margin);

/* What one dc_denoiser_run did (for messages and tests). */
typedef struct dc_denoise_info {
    int win_w, win_h;       /* window size the model ran on */
    int tiles_x, tiles_y;   /* windows across and down (1 x 1: untiled) */
    int batch;              /* windows per forward pass */
    size_t act_bytes;       /* device activation memory of the model used */
    int one_window_tile;    /* the smallest tile that takes this image in one window (its
                             * larger side plus both margins, aligned) */
} dc_denoise_info;

typedef struct dc_denoiser dc_denoiser; /* opaque */

/* A denoiser running `src`'s architecture with `src`'s parameters (shared, not copied: src must
 * outlive the denoiser, and later changes to its parameters are seen). tile: the largest window
 * side, 0 for DC_DENOISE_TILE_DEFAULT; it is rounded up to a multiple of align and to at least
 * 2 * margin + align (the smallest window with a non-empty core). The model takes 1 or 3
 * channels (see Channels). The inference model of a window shape is kept between runs and
 * rebuilt only when the shape changes. */
dc_status dc_denoiser_create(dc_device *dev, const dc_model *src, int tile, dc_denoiser **out);
void dc_denoiser_destroy(dc_denoiser *d);
/* Called with the model's channels, the window shape and the batch each time the denoiser makes
 * the inference model for a new window shape, before any of its kernels runs: the CLI starts its
 * cold-start helper there (src/cli/prewarm.h). NULL fn: no hook. */
typedef void (*dc_denoise_model_hook)(void *ctx, int c, int h, int w, int batch);
void dc_denoiser_set_model_hook(dc_denoiser *d, dc_denoise_model_hook fn, void *ctx);
/* The tile size actually used (after rounding). */
int dc_denoiser_tile(const dc_denoiser *d);

/* What dc_denoiser_run would do for a w x h image (window shapes, batch, device memory),
 * without running anything. */
dc_status dc_denoiser_plan(const dc_denoiser *d, int w, int h, dc_denoise_info *info);

/* Denoise one image: *out is allocated here (free with dc_image_free), in->w x in->h, as many
 * channels as in (see Channels), alpha and bit depth of in. *out is {0} on failure. info may be
 * NULL. Blocking. */
dc_status dc_denoiser_run(dc_denoiser *d, const dc_image *in, dc_image *out, dc_denoise_info *info);

/* PSNR (dB) and SSIM of img against ref (same size and channels), as validation computes them
 * (daecl/metrics.h: img clipped to [0,1], SSIM averaged over channels), on the device. */
dc_status dc_image_quality(dc_device *dev, const dc_image *img, const dc_image *ref, double *psnr, double *ssim);

/* One-shot convenience: create, run, destroy. */
dc_status dc_denoise_image(dc_device *dev, const dc_model *src, const dc_image *in, dc_image *out,
                           int tile);

/* Load a checkpoint into a new model for its training input size (batch 1) with its
 * parameters set: the `src` for dc_denoiser_create and dc_model_create_shared. When ck is not
 * NULL it receives the checkpoint (seed, configuration; free with dc_checkpoint_free), else the
 * checkpoint is freed here. Errors name the file. */
dc_status dc_denoise_load_model(dc_device *dev, const char *path, dc_model **model,
                                dc_checkpoint *ck);

#endif
