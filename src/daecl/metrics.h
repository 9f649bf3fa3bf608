/* Device accumulators (running sums kept on the device) and image-quality metrics.
 *
 * Accumulator: a small device buffer of running sums that kernels add into without any host
 * synchronisation; the host reads it (blocking) only when it wants the numbers, e.g. when it
 * redraws progress or at the end of an epoch. There are no float atomics and no fp64 in
 * OpenCL 1.2, so a producer first writes partial sums (per chunk of elements or per image) into
 * the accumulator's scratch buffer, then one small kernel adds them in order into the slots.
 * Each slot is an unevaluated float pair (hi, lo): every addition is an error-free TwoSum
 * (Knuth) with the rounding error collected in lo (cascaded summation, Ogita-Rump-Oishi Sum2),
 * so a slot is accurate to about 1e-13 relative (the partials are float) even after an epoch of
 * 60 000 images; dc_accum_read returns hi + lo in double. Producers and the add kernel run on
 * the device's in-order queue, which is what makes reusing one scratch buffer safe.
 *
 * Metrics (per image, then summed over images into consecutive slots), pred and target NCHW:
 *   pred is clipped to [0, 1] first; target is taken as it is (expected in [0, 1]).
 *   PSNR  = 10·log10(1 / max(MSE, 1e-10)) dB, peak 1.0, MSE over all c·h·w values of the image
 *           (tf.image.psnr). The 1e-10 floor caps identical images at 100 dB instead of +inf.
 *   SSIM  = tf.image.ssim (= skimage structural_similarity with gaussian_weights=True, sigma=1.5,
 *           use_sample_covariance=False, data_range=1): 11×11 Gaussian window, σ 1.5, weights
 *           normalised to sum 1, K1 0.01, K2 0.03, L 1, 'valid' windows only (no padding),
 *           luminance·contrast-structure averaged over the (h-win+1)×(w-win+1) window positions,
 *           then averaged over channels. Images smaller than 11 in h or w (where TF and skimage
 *           refuse) use the largest odd window that fits, win = min(11, h, w) rounded down to
 *           odd, with the same σ 1.5 (truncated, renormalised); a 1×1 image gives the per-pixel
 *           formula (2xy+C1)/(x²+y²+C1).
 *   ACC   = Keras binary_accuracy, faithfully: the fraction of values where
 *           target == (pred > 0.5 ? 1 : 0) compared as floats. With non-binary targets (MNIST
 *           grey levels) a pixel only matches when its target is exactly 0 or 1.
 *   ACC_THRESH = both sides thresholded: the fraction where (pred > 0.5) == (target > 0.5).
 *   COUNT_IMAGES = number of images added (divide the other slots by it for means).
 * Slot values are sums over images: PSNR and SSIM sums are of per-image values (so the mean is
 * the mean per-image PSNR, as Keras/TF report a batched tf.image.psnr), accuracies are sums of
 * per-image fractions. Only NCHW tensors are supported. */
#ifndef DAECL_METRICS_H
#define DAECL_METRICS_H

#include <stddef.h>

#include "daecl/device.h"
#include "daecl/tensor.h"

typedef struct dc_accum {
    cl_mem buf;      /* 2·nslots floats: slot i is (buf[2i], buf[2i+1]) = (hi, lo) */
    int nslots;
    cl_mem scratch;  /* partial sums written by producers, grown on demand */
    size_t scratch_floats;
} dc_accum;

dc_status dc_accum_create(dc_device *dev, int nslots, dc_accum *out);
void dc_accum_release(dc_accum *a);
/* Zero every slot (enqueued). */
dc_status dc_accum_reset(dc_device *dev, dc_accum *a);
/* Blocking read of every slot: values[i] = hi + lo, in double. */
dc_status dc_accum_read(dc_device *dev, const dc_accum *a, double *values /* nslots */);

/* For producers (loss.c, metrics.c). A scratch buffer of at least nfloats floats, owned by the
 * accumulator and valid until the next call (in-order queue: commands already enqueued keep
 * working on the old one, OpenCL releases it after them). */
dc_status dc_accum_scratch(dc_device *dev, dc_accum *a, size_t nfloats, cl_mem *out);
/* Enqueue: for r in [0, nrows): slot[slot + r] += scale · Σ_i part[off + r·npart + i], i < npart,
 * each term scaled then added error-free. */
dc_status dc_accum_add_partials(dc_device *dev, dc_accum *a, int slot, int nrows, cl_mem part,
                                size_t off, size_t npart, float scale);

/* Slots written by dc_metrics_accumulate, relative to its `slot` argument. */
enum {
    DC_METRIC_PSNR = 0,     /* Σ per-image PSNR, dB */
    DC_METRIC_SSIM,         /* Σ per-image SSIM */
    DC_METRIC_ACC,          /* Σ per-image Keras binary_accuracy (target == (pred > 0.5)) */
    DC_METRIC_COUNT_IMAGES, /* number of images */
    DC_METRIC_ACC_THRESH,   /* Σ per-image fraction with (pred > 0.5) == (target > 0.5) */
    DC_METRIC_SLOTS
};

/* Add the metrics of every image of pred vs target (same shape, NCHW) into slots
 * [slot, slot + DC_METRIC_SLOTS) of acc. Enqueued only. */
dc_status dc_metrics_accumulate(dc_device *dev, const dc_tensor *pred, const dc_tensor *target,
                                dc_accum *acc, int slot);

/* The SSIM window side used for an h×w image (11, or the largest odd size that fits). */
int dc_ssim_window(int h, int w);

#endif
