/* Layer ops on device tensors: convolution, transposed convolution, max pooling, nearest
 * upsampling, average pooling, activations and merges, forward and backward.
 *
 * Conventions shared by every function here:
 *  - Tensors are NCHW float32 (dc_tensor, any batch and size). Any other layout returns
 *    DC_ERR_UNSUPPORTED; shapes that do not fit together return DC_ERR_INVALID_ARG. Nothing is
 *    enqueued when a call fails its checks.
 *  - Parameters and gradients each live in ONE flat buffer; a layer's weights start at float
 *    offset w_off and its bias at b_off inside it. Gradients are written (overwritten), never
 *    accumulated: a layer's dW/db hold its gradient for this batch, summed over the batch.
 *  - Every function only enqueues work on dev->queue (in order): no clFinish, no host reads, so a
 *    training step never waits for the device. Kernels are specialised per shape through -D
 *    build options (cached by the runtime), so the first call for a new shape compiles.
 *  - Backward functions take dy = dL/dy of the layer's (post-activation) output y and overwrite
 *    it in place with dL/dz, the gradient before the activation (dy * act'(y), from y).
 *  - Outputs never alias inputs except where stated (dc_act_forward allows x == y).
 *
 * Scratch: device memory some conv passes need, the device's DC_SCRATCH_CONV buffer
 * (dc_device_scratch: allocated on first use, grown when needed, never shrunk, shared by every
 * layer since the queue is in order, freed by dc_device_close):
 *  - layers with >= 8 output channels and >= 2 input channels compute dW with vector lanes over
 *    output channels from a channels-last copy of dz: batch * h * w * round_up(cout, 16)
 *    floats (3.2 MB for the classic model's 32->32 layer at 14x14, batch 128);
 *  - on devices with many compute units (GPUs), and on devices that cut long loops short
 *    (dev->opts.loop_limit), the batch is split into chunks for dW, whose partial sums
 *    (chunks * (cout*cin*k*k + cout) floats) are added by a second small kernel;
 *  - the transposed conv keeps its zero-interleaved input there (batch * cin * 2h * 2w floats).
 * Plain conv layers with few channels (the classic model's first and last) use none. */
#ifndef DAECL_OPS_H
#define DAECL_OPS_H

#include <stddef.h>

#include "daecl/device.h"
#include "daecl/status.h"
#include "daecl/tensor.h"

typedef enum dc_act {
    DC_ACT_NONE = 0,
    DC_ACT_RELU,       /* max(z, 0); derivative 0 at z = 0 */
    DC_ACT_SIGMOID,    /* 1 / (1 + e^-z) */
    DC_ACT_LEAKY_RELU, /* z > 0 ? z : DC_LEAKY_SLOPE * z */
    DC_ACT_TANH,
    DC_ACT_COUNT
} dc_act;

/* Negative slope of DC_ACT_LEAKY_RELU: 0.3, the Keras LeakyReLU default (PyTorch's is 0.01). */
#define DC_LEAKY_SLOPE 0.3f

/* "none", "relu", "sigmoid", "leaky", "tanh" ("?" for an invalid value). */
const char *dc_act_name(dc_act a);
/* Parse one of the names above (also "linear" for none, "leaky_relu"/"leakyrelu" for leaky);
 * DC_ERR_INVALID_ARG with the accepted names in the detail otherwise. */
dc_status dc_act_parse(const char *s, dc_act *out);

/* Largest kernel size the conv ops accept (odd k from 1 to DC_CONV_MAX_K). */
#define DC_CONV_MAX_K 15

/* ---- 2-D convolution: k x k (odd k), stride 1, "same" zero padding (k-1)/2 on every side.
 * x: [n][cin][h][w]; y: [n][cout][h][w]; weights [cout][cin][k][k] at params + w_off (the
 * PyTorch Conv2d layout; Keras stores the same numbers as [k][k][cin][cout]); bias [cout] at
 * params + b_off.  y = act(conv(x, W) + b), i.e.
 *   y[n][co][i][j] = act(b[co] + sum_{ci,ky,kx} x[n][ci][i+ky-p][j+kx-p] * W[co][ci][ky][kx]),
 * p = (k-1)/2, x outside the image = 0 (a cross-correlation, as in every framework). */
dc_status dc_conv2d_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                            size_t b_off, int k, dc_act act, dc_tensor *y);
/* Backward of dc_conv2d_forward. x and y are the forward input and output; dy (shape of y) is
 * overwritten with dL/dz. Writes dW at grads + w_off and db at grads + b_off, summed over the
 * batch, and dx = dL/dx unless dx == NULL (first layer: skipped). params are only read. */
dc_status dc_conv2d_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                             dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                             size_t b_off, int k, dc_act act, dc_tensor *dx);
/* The same for a conv whose input x is a 2x nearest upsampling of src (training): dsrc =
 * src's gradient, [n][cin][h/2][w/2], the input gradient summed over each 2x2 window as
 * dc_upsample2_backward sums it (bit for bit, so the upsampling's backward is not run and its
 * full-size gradient never written). Only where dc_conv2d_upgrad_fits: the direct CPU kernels
 * with the input gradient by channel lanes, even h and w (the device option conv_up_fold);
 * else DC_ERR_UNSUPPORTED. The forward reads src upsampled in place where
 * dc_conv2d_upsampled_fits (its phases round differently). x may be NULL where
 * dc_conv2d_upgrad_in_place_fits: the weight gradient then reads src upsampled in place too
 * (bit for bit), and the upsampled tensor need never exist. src may be NULL when x is given. */
int dc_conv2d_upgrad_fits(const dc_device *dev, int cin, int cout, int h, int w, int k);
int dc_conv2d_upgrad_in_place_fits(const dc_device *dev, int cin, int cout, int h, int w, int k);
dc_status dc_conv2d_upgrad_forward(dc_device *dev, const dc_tensor *x, const dc_tensor *src,
                                   cl_mem params, size_t w_off, size_t b_off, int k, dc_act act,
                                   dc_tensor *y);
dc_status dc_conv2d_upgrad_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *src,
                                    const dc_tensor *y, dc_tensor *dy, cl_mem params,
                                    cl_mem grads, size_t w_off, size_t b_off, int k, dc_act act,
                                    dc_tensor *dsrc);

/* ---- Inference: the conv of the 2x nearest upsampling of x [n][cin][h][w], read in place:
 * y [n][cout][2h][2w] = dc_conv2d_forward(dc_upsample2_forward(x)) without the upsampled tensor
 * (4x x's size) written and read back: bit for bit, except that a 3x3 conv by channel lanes
 * runs in its four 2x2 phases on x (dev->opts.conv_up_phases), whose summed weights round
 * differently (4 FMAs per input channel instead of 9). Only where dc_conv2d_upsampled_fits
 * (h, w: the upsampled size): the direct CPU kernels' channel lanes or unaligned row loads,
 * k <= 5; else DC_ERR_UNSUPPORTED. */
int dc_conv2d_upsampled_fits(const dc_device *dev, int cin, int cout, int h, int w, int k);
dc_status dc_conv2d_upsampled_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                      size_t w_off, size_t b_off, int k, dc_act act, dc_tensor *y);

/* ---- Inference: the 2x2 max pool of a conv, in one pass: y [n][cout][h/2][w/2] =
 * dc_maxpool2_forward(dc_conv2d_forward(x)) for x [n][cin][h][w], bit for bit, without the
 * conv output (4x y's size) written and read back. Only where dc_conv2d_maxpool_fits: the
 * direct CPU kernels' channel lanes (cout a multiple of the lane block), even h and w; else
 * DC_ERR_UNSUPPORTED. */
int dc_conv2d_maxpool_fits(const dc_device *dev, int cin, int cout, int h, int w, int k);
dc_status dc_conv2d_maxpool_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                    size_t w_off, size_t b_off, int k, dc_act act, dc_tensor *y);

/* ---- A model's first conv layer when a 2x2 max pool follows it (the classic model's): its
 * backward takes dpool, the POOL's output gradient [n][cout][h/2][w/2], and folds the pool's
 * backward (dc_maxpool2_backward's first-maximum rule, from y) and act' into the weight and
 * bias gradients, so neither the conv output's gradient nor dz is written. skip (y's shape, or
 * NULL): the share of the conv output's gradient from a merge that also reads it (unet), added
 * before act'. No input gradient.
 * Forward and backward share one program that holds only their kernels, so a layer that uses
 * the pooled backward also takes dc_conv2d_pooled_forward (same contract as
 * dc_conv2d_forward). Only where dc_conv2d_pooled_fits: the direct CPU kernels with lanes over
 * pixels for the weight gradient, even h and w; else DC_ERR_UNSUPPORTED. */
int dc_conv2d_pooled_fits(const dc_device *dev, int cin, int cout, int h, int w, int k);
dc_status dc_conv2d_pooled_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                   size_t w_off, size_t b_off, int k, dc_act act, dc_tensor *y);
dc_status dc_conv2d_pooled_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                                    const dc_tensor *dpool, const dc_tensor *skip,
                                    cl_mem grads, size_t w_off, size_t b_off, int k, dc_act act);
/* The same without y, where dc_conv2d_pooled_out_fits (the CPU kernels by channel lanes; the
 * device option conv_pool_fold): the forward writes only the pool's output, [n][cout][h/2][w/2],
 * as dc_conv2d_maxpool_forward (bit for bit the unfused pool's), and argmax (the same shape):
 * which pixel of each window it took (0, 1 in the window's first row, 2, 3 in its second, as
 * floats). The backward routes each window's gradient, times act' of the pooled value, to that
 * pixel: dW and db are dc_conv2d_pooled_backward's without a skip, bit for bit, reading a
 * quarter of y's floats twice instead of y. */
int dc_conv2d_pooled_out_fits(const dc_device *dev, int cin, int cout, int h, int w, int k);
dc_status dc_conv2d_pooled_out_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                       size_t w_off, size_t b_off, int k, dc_act act,
                                       dc_tensor *pooled, dc_tensor *argmax);
dc_status dc_conv2d_pooled_out_backward(dc_device *dev, const dc_tensor *x,
                                        const dc_tensor *pooled, const dc_tensor *argmax,
                                        const dc_tensor *dpool, cl_mem grads, size_t w_off,
                                        size_t b_off, int k, dc_act act);

/* ---- Transposed 2-D convolution, k x k (odd k), stride 2, "same" as Keras/TF Conv2DTranspose
 * (padding='same', strides=2): x [n][cin][h][w] -> y [n][cout][2h][2w]. It is the adjoint
 * (input gradient) of a TF 'SAME' stride-2 convolution from 2h x 2w to h x w, whose padding is
 * pt = max(k-2, 0)/2 rows/cols before (integer division: 0 for k = 1 and 3, 1 for k = 5, 2 for
 * k = 7) and the rest after. So every input pixel scatters its k x k footprint to
 *   y[n][co][2*iy + ky - pt][2*ix + kx - pt] += x[n][ci][iy][ix] * W[co][ci][ky][kx]
 * (targets outside the 2h x 2w output are dropped), then y = act(y + b[co]).
 * Weights [cout][cin][k][k] at params + w_off, unflipped: Keras stores the same numbers as
 * kernel[ky][kx][cout][cin], PyTorch ConvTranspose2d as weight[cin][cout][ky][kx].
 * PyTorch equivalent: for k >= 3, ConvTranspose2d(cin, cout, k, stride=2, padding=pt,
 * output_padding=0), which gives 2h+1 x 2w+1, then drop the last row and column; for k = 1,
 * padding=0, output_padding=1. (The often quoted padding=1, output_padding=1 for k = 3 is NOT
 * the same: its output is shifted by one pixel against TF's.) */
dc_status dc_convT2d_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                             size_t b_off, int k, dc_act act, dc_tensor *y);
/* Backward of dc_convT2d_forward; same contract as dc_conv2d_backward. */
dc_status dc_convT2d_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                              dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                              size_t b_off, int k, dc_act act, dc_tensor *dx);

/* ---- Max pooling 2 x 2, stride 2, "valid": y is [n][c][h/2][w/2] (floored, as Keras; the last
 * row/column of an odd size is ignored). Within a window the candidates are taken in row-major
 * order (top-left, top-right, bottom-left, bottom-right) and a later one replaces the current
 * maximum only when strictly greater, so the FIRST maximum wins ties, every time. (A NaN in the
 * first position propagates; later NaNs are ignored.) */
dc_status dc_maxpool2_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y);
/* dx (shape of x) is overwritten: dy goes to the window's winner (recomputed from x with the
 * same rule), zero elsewhere, including an odd size's dropped last row/column; plus add (dx's
 * shape) everywhere when add is not NULL: a skip path's share of the gradient, summed in the
 * same pass (add may not alias dx). */
dc_status dc_maxpool2_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *dy,
                               dc_tensor *dx, const dc_tensor *add);

/* ---- Average pooling 2 x 2, stride 2, "valid" (floored, as max pooling): y[i][j] is the mean of
 * x[2i..2i+1][2j..2j+1]. */
dc_status dc_avgpool2_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y);
/* dx (shape of the forward input; it gives the size) is overwritten: dy/4 on each pixel of its
 * window, zero on an odd size's dropped last row/column. */
dc_status dc_avgpool2_backward(dc_device *dev, const dc_tensor *dy, dc_tensor *dx);

/* ---- Nearest-neighbour upsampling x2: y [n][c][2h][2w], y[2i+a][2j+b] = x[i][j]. */
dc_status dc_upsample2_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y);
/* dx [n][c][h][w] is overwritten with the sum of each 2 x 2 block of dy. */
dc_status dc_upsample2_backward(dc_device *dev, const dc_tensor *dy, dc_tensor *dx);

/* ---- Standalone activation, element-wise: y = act(x). In place allowed (x and y the same
 * buffer and offset); otherwise they must not overlap. */
dc_status dc_act_forward(dc_device *dev, dc_act act, const dc_tensor *x, dc_tensor *y);
/* dy *= act'(y), computed from the output y (relu: y > 0; sigmoid: y(1-y); tanh: 1-y^2;
 * leaky: y > 0 ? 1 : DC_LEAKY_SLOPE; none: 1, nothing is enqueued). */
dc_status dc_act_backward(dc_device *dev, dc_act act, const dc_tensor *y, dc_tensor *dy);
/* The residual head's output, in place: z = x - z (same shapes; its gradient is -1, fused into
 * the loss: dc_loss_compute_residual). */
dc_status dc_residual_forward(dc_device *dev, const dc_tensor *x, dc_tensor *z);

/* ---- Merges for skip connections.
 * y = a + b (same shapes). Its backward is the identity for both branches: no kernel (use
 * dc_copy / dc_axpy from tensor.h). */
dc_status dc_add_forward(dc_device *dev, const dc_tensor *a, const dc_tensor *b, dc_tensor *y);
/* Channel concatenation: y [n][ca+cb][h][w] holds a's channels, then b's. */
dc_status dc_concat_forward(dc_device *dev, const dc_tensor *a, const dc_tensor *b,
                            dc_tensor *y);
/* Splits dy [n][ca+cb][h][w] into da [n][ca][h][w] and db [n][cb][h][w] (overwritten). */
dc_status dc_concat_backward(dc_device *dev, const dc_tensor *dy, dc_tensor *da,
                             dc_tensor *db);

#endif
