/* Input noise for the denoising autoencoder, generated on the device.
 *
 * One kernel turns a batch of uint8 (or uint16) pixels into two float NCHW tensors: the clean
 * target (x / 255 or x / 65535, correctly rounded) and its noisy copy. An image of c planes is
 * one sample of c*h*w pixels (pixel index = (plane * h + y) * w + x), so a gray image keys its
 * noise exactly as before planes existed. The noise comes from a counter-based
 * RNG, Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; the
 * same function as Random123's philox4x32_R(10, ...)), keyed so that the noisy image of dataset
 * sample i in epoch e is the same on every device, in every batch order and at every batch size:
 *
 *   key     = { seed & 0xffffffff, seed >> 32 }
 *   counter = { pixel / 4, sample index, epoch, stream }
 *
 * One Philox call yields four 32-bit words; word j belongs to pixel 4 * (pixel / 4) + j (pixel
 * index = y * w + x inside the image). Two streams:
 *   DC_NOISE_STREAM_UNIFORM (0): one uniform per pixel (salt-and-pepper, mask, Poisson inversion)
 *   DC_NOISE_STREAM_NORMAL  (1): one N(0,1) per pixel (Gaussian, speckle, Poisson for large λ):
 *       Box–Muller on the word pairs (0,1) and (2,3): r = sqrt(-2 ln u_a), t = 2π u_b,
 *       pixel 4k+0 / 4k+2 get r cos t, pixel 4k+1 / 4k+3 get r sin t.
 * A word becomes a uniform in (0, 1] as ((word >> 8) + 1) * 2^-24 (never 0, so ln is finite;
 * |N| is therefore bounded by sqrt(48 ln 2) ≈ 5.77).
 *
 * Models (x in [0,1] the clean pixel, result clipped to [0,1] where it could leave it):
 *   none          x
 *   gaussian:σ    x + σ·N                                          σ in (0, 10]
 *   speckle:σ     x + x·σ·N                                        σ in (0, 10]
 *   saltpepper:p  with probability p: 0 or 1 (equal odds), else x  p in [0, 1]
 *                 (uniform word: (word >> 8) * 2^-24 < p selects, bit 0 picks 1 (set) or 0)
 *   mask:p        with probability p: 0, else x                    p in [0, 1]
 *   poisson:peak  Poisson(λ = x·peak) / peak                       peak in (0, 1e6]
 *                 λ < DC_NOISE_POISSON_NORMAL_FROM: exact inversion of the CDF with the pixel's
 *                 uniform u (k = smallest k with F(k) >= u, summed in float, at most 3λ + 20
 *                 terms); otherwise the normal approximation k = floor(λ + sqrt(λ)·N + 0.5),
 *                 at least 0. The result k · (1/peak) is clipped to 1.
 *
 * Validation and test noise use the epoch DC_NOISE_EPOCH_VALIDATION, so it is fixed for a seed
 * and never equals a training epoch's noise. */
#ifndef DAECL_NOISE_H
#define DAECL_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/device.h"
#include "daecl/status.h"
#include "daecl/tensor.h"

typedef enum dc_noise_kind {
    DC_NOISE_NONE = 0,
    DC_NOISE_GAUSSIAN,
    DC_NOISE_SALTPEPPER,
    DC_NOISE_SPECKLE,
    DC_NOISE_POISSON,
    DC_NOISE_MASK,
    DC_NOISE_COUNT
} dc_noise_kind;

typedef struct dc_noise_config {
    dc_noise_kind kind;
    float param;     /* σ, p or peak; ignored for none. With a range: its low end */
    float param_max; /* > param: a range, each image draws its level (see below); else fixed */
} dc_noise_config;

#define DC_NOISE_EPOCH_VALIDATION 0xFFFFFFFFu
#define DC_NOISE_STREAM_UNIFORM 0u
#define DC_NOISE_STREAM_NORMAL 1u
#define DC_NOISE_POISSON_NORMAL_FROM 30.0f
#define DC_NOISE_SIGMA_MAX 10.0f
#define DC_NOISE_PEAK_MAX 1e6f

/* Level ranges (blind denoising): "gaussian:0-0.2" gives each image (sample index, epoch) its
 * own level  param + (param_max - param) * u  with u = (word0 >> 8) * 2^-24 in [0, 1) from
 * word 0 of Philox at counter {0, sample, epoch, DC_NOISE_STREAM_LEVEL}, on the device and the
 * host alike (Poisson's 1/peak is then divided per image, rounded as the device divides).
 * A range's low end may be 0 for gaussian and speckle (an image without noise). */
#define DC_NOISE_STREAM_LEVEL 2u

/* "gaussian", "saltpepper", ... for a kind ("?" out of range). */
const char *dc_noise_kind_name(dc_noise_kind k);

/* Parse "gaussian:0.5", "saltpepper:0.1", "speckle:0.2", "poisson:10", "mask:0.25", "none", or a
 * range LO-HI of levels ("gaussian:0-0.2", "poisson:5-50"), LO < HI. Levels are on the [0,1]
 * pixel scale: σ 25/255 ≈ 0.098.
 * Validates the ranges above; on error returns DC_ERR_INVALID_ARG with a one-line detail naming
 * the value (`--noise "gaussian:0": sigma must be in (0, 10]`). *out is untouched on error. */
dc_status dc_noise_parse(const char *spec, dc_noise_config *out);

/* The spec string that parses back to c ("gaussian:0.5", "gaussian:0-0.2", "none"). */
void dc_noise_format(const dc_noise_config *c, char *buf, size_t len);

/* Enqueue (non-blocking) the to_float + noise kernel for a batch of n images of h×w:
 * pixels: uint8[n*h*w] (row-major images, as gathered by the loader); indices: uint32[n], the
 * dataset sample index of each row. clean and noisy are float NCHW tensors of shape N×1×h×w with
 * N >= n (rows beyond n are left alone); either may be NULL (not both): the loss target is clean,
 * the model input is noisy. The kernel waits for the nwait events in wait (e.g. the loader's
 * upload), which may be 0 / NULL. seed and epoch key the RNG (see above). */
dc_status dc_noise_apply(dc_device *dev, const dc_noise_config *cfg, uint64_t seed, uint32_t epoch,
                         cl_mem pixels, cl_mem indices, int n, int h, int w, dc_tensor *clean,
                         dc_tensor *noisy, cl_uint nwait, const cl_event *wait);

/* The same for pixels stored as `depth` bytes per value (1: uint8, x / 255; 2: uint16, x / 65535,
 * both correctly rounded) and c planes per image: pixels holds n images of c*h*w values (planar),
 * the tensors are N×c×h×w, and the noise's pixel index runs over c*h*w (plane-major), so
 * c = 1, depth = 1 is exactly dc_noise_apply. */
dc_status dc_noise_apply_planes(dc_device *dev, const dc_noise_config *cfg, uint64_t seed, uint32_t epoch,
                                cl_mem pixels, int depth, cl_mem indices, int n, int c, int h, int w,
                                dc_tensor *clean, dc_tensor *noisy, cl_uint nwait, const cl_event *wait);

/* The level image `sample` of epoch `epoch` gets: cfg->param without a range. */
float dc_noise_level(const dc_noise_config *cfg, uint64_t seed, uint32_t epoch, uint32_t sample);

/* The same noise on the host for one image of h×w floats (for c planes pass h = c * h) (any values in [0,1], e.g. a user PNG):
 * bit-identical to the device for none, saltpepper and mask; for the others equal up to the
 * rounding of log/sin/cos/sqrt/exp (|difference| ~1e-7 before clipping; a Poisson count can,
 * very rarely, differ by one at a CDF boundary). clean and noisy may be the same array. */
void dc_noise_host(const dc_noise_config *cfg, uint64_t seed, uint32_t epoch, uint32_t sample,
                   const float *clean, float *noisy, int h, int w);

/* Philox4x32-10 on the host (exposed for the known-answer tests): out = philox(ctr, key). */
void dc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* x / 255 correctly rounded, as the device computes the clean target. */
float dc_noise_u8_to_float(uint8_t p);
/* x / 65535 correctly rounded, likewise for 16-bit pixels. */
float dc_noise_u16_to_float(uint16_t p);

#endif
