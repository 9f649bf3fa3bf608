/* Reconstruction losses, Keras-style, fused with the model's output head.
 *
 * z is the model's last pre-activation output (logits), y the target in [0, 1] of the same shape
 * (NCHW). The head is the model's final activation: p = head(z) (dc_act: sigmoid, tanh, relu,
 * leaky or none). Per element:
 *   BCE (needs a sigmoid head): l = max(z,0) - z·y + log1p(exp(-|z|))   (from the logits, stable;
 *        what tf.keras does when the sigmoid feeds binary_crossentropy), dl/dz = sigmoid(z) - y.
 *   MSE: l = (p-y)²,  dl/dz = 2(p-y)·p'(z)
 *   L1 (Keras MAE): l = |p-y|, dl/dz = sign(p-y)·p'(z), sign(0) = 0
 * with p'(z) the head's derivative: sigmoid e/(1+e)², e = exp(-|z|); tanh 1 - p²; relu z > 0;
 * leaky z > 0 ? 1 : DC_LEAKY_SLOPE; none 1. One fused kernel per (loss, head).
 *
 * The batch loss is the mean over all count = n·c·h·w elements, as Keras (mean over channels,
 * then over the batch and pixels), so dz = dl/dz / count: the gradient of the batch mean (the
 * count comes from the tensor, so a smaller last batch is handled).
 *
 * Accumulated value: slot += Σ_elements l / (c·h·w) = Σ over images of the image's mean loss.
 * Dividing the slot by the number of images added gives the epoch mean loss, weighted by image
 * as Keras weights its epoch loss by batch size. */
#ifndef DAECL_LOSS_H
#define DAECL_LOSS_H

#include "daecl/device.h"
#include "daecl/metrics.h"
#include "daecl/ops.h"
#include "daecl/tensor.h"

typedef enum dc_loss_kind { DC_LOSS_BCE = 0, DC_LOSS_MSE, DC_LOSS_L1, DC_LOSS_COUNT } dc_loss_kind;

/* "bce", "mse", "l1". */
const char *dc_loss_name(dc_loss_kind kind);
/* Case-insensitive; accepts bce|binary_crossentropy, mse|mean_squared_error, l1|mae|
 * mean_absolute_error. */
dc_status dc_loss_parse(const char *s, dc_loss_kind *out);

/* DC_OK when the loss makes sense for a model with this head; otherwise DC_ERR_INVALID_ARG with
 * a one-line reason (BCE on anything but a sigmoid head: it is computed from the logits as the
 * cross-entropy of sigmoid(z), so on a tanh or linear head it would optimise something else
 * than the model outputs). */
dc_status dc_loss_check(dc_loss_kind kind, dc_act head);

/* Enqueue the loss of p = head(z) against y. dz (may be NULL: eval only) is overwritten with the
 * gradient of the batch mean w.r.t. z; out (may be NULL) receives p; acc (may be NULL) gets the
 * batch's summed loss (see above) added into slot `slot`. All tensors NCHW, same shape. */
dc_status dc_loss_compute(dc_device *dev, dc_loss_kind kind, dc_act head, const dc_tensor *z,
                          const dc_tensor *y, dc_tensor *dz, dc_tensor *out, dc_accum *acc,
                          int slot);

/* The residual head: the model's output is p = x - z (x its input, z its linear last layer's
 * output), scored as dc_loss_compute with no head; dz = dl/dz = -dl/dp / count. BCE is refused
 * (dc_loss_check_residual: one line, as dc_loss_check). */
dc_status dc_loss_check_residual(dc_loss_kind kind);
dc_status dc_loss_compute_residual(dc_device *dev, dc_loss_kind kind, const dc_tensor *x,
                                   const dc_tensor *z, const dc_tensor *y, dc_tensor *dz,
                                   dc_tensor *out, dc_accum *acc, int slot);

#endif
