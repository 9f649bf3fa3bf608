/* Double-precision host references for the losses and metrics (tests/ref_loss.c): written
 * straightforwardly from the definitions in src/daecl/loss.h and metrics.h, independent of
 * the kernels' arrangement (e.g. SSIM here uses the full 2-D window, the kernel a separable
 * sliding one). */
#ifndef DAECL_REF_LOSS_H
#define DAECL_REF_LOSS_H

#include <stddef.h>

#include "daecl/loss.h"

/* Loss of p = head(z) against y over count elements, images of per_image elements (BCE: from
 * the logits, sigmoid head). Returns Σ l / per_image (what dc_loss_compute adds to its
 * accumulator). dz (may be NULL) gets dl/dz / count, out (may be NULL) p. */
double ref_loss_d(dc_loss_kind kind, dc_act head, const double *z, const double *y, size_t count,
                  size_t per_image, double *dz, double *out);
/* Same from float inputs. */
double ref_loss(dc_loss_kind kind, dc_act head, const float *z, const float *y, size_t count,
                size_t per_image, double *dz, double *out);

/* The SSIM window for an h×w image: 11 or the largest odd size that fits. */
int ref_ssim_window(int h, int w);
/* SSIM of one h×w plane (values used as given: clip before if needed). */
double ref_ssim_plane(const double *x, const double *y, int h, int w);

/* Per-image metrics of n images c×h×w (pred clipped to [0, 1]); any output may be NULL. */
void ref_metrics(const float *pred, const float *target, int n, int c, int h, int w, double *psnr,
                 double *ssim, double *acc, double *acc_thresh);

#endif
