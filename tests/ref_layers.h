/* Plain C, double-precision reference of every layer op in src/daecl/ops.h, forward and
 * backward. Slow and obvious on purpose: the device kernels and the model are tested against it.
 *
 * Conventions (identical to ops.h):
 *  - Arrays are host doubles in NCHW order, sizes given explicitly; every output array is
 *    overwritten (never accumulated into) and must not alias an input unless stated.
 *  - Weights [cout][cin][k][k], bias [cout], for conv and transposed conv alike.
 *  - conv: stride 1, "same" zero padding p = (k-1)/2, odd k. convT: stride 2, TF/Keras "same",
 *    output 2h x 2w, y[2iy+ky-pt][2ix+kx-pt] += x[iy][ix] W[ky][kx] with pt = max(k-2,0)/2.
 *  - Backward functions take dy = dL/dy (post-activation) and OVERWRITE it with dL/dz (dy times
 *    act'(y), computed from y), like the device ops; then write dW, db (summed over the batch)
 *    and dx (skipped when dx is NULL).
 *  - maxpool 2x2 stride 2, floored; ties: the first maximum in row-major window order wins.
 *  - avgpool 2x2 stride 2, floored: the window mean.
 *
 * The optional `mag` outputs give, per output element, the sum of the absolute values of the
 * terms summed to form it (e.g. sum |x w| + |b| for a conv output). A float32 sum cannot be
 * expected to be closer than about (terms) * 6e-8 * mag to the exact value, so tests measure
 * the device error relative to it; see ref_rel_err(). Pass NULL when not needed. */
#ifndef DAECL_REF_LAYERS_H
#define DAECL_REF_LAYERS_H

#include <stddef.h>

#include "daecl/ops.h" /* dc_act, DC_LEAKY_SLOPE */

/* act(z) and act'(z) expressed from the output y = act(z). */
double ref_act(dc_act a, double z);
double ref_act_grad_from_y(dc_act a, double y);

/* y[n][cout][h][w] = act(conv(x, wt) + b). */
void ref_conv2d_forward(const double *x, int n, int cin, int h, int w, const double *wt,
                        const double *b, int cout, int k, dc_act act, double *y, double *mag);
/* dy [n][cout][h][w] in: dL/dy, out: dL/dz. Writes dw [cout][cin][k][k], db [cout], and
 * dx [n][cin][h][w] unless NULL. mag_dw / mag_db / mag_dx (same shapes, each optional) receive
 * the magnitude sums of those gradients (computed from |dL/dz|). */
void ref_conv2d_backward(const double *x, int n, int cin, int h, int w, const double *wt,
                         int cout, int k, dc_act act, const double *y, double *dy, double *dw,
                         double *db, double *dx, double *mag_dw, double *mag_db,
                         double *mag_dx);

/* y[n][cout][2h][2w] = act(convT(x, wt) + b); x is [n][cin][h][w]. */
void ref_convT2d_forward(const double *x, int n, int cin, int h, int w, const double *wt,
                         const double *b, int cout, int k, dc_act act, double *y, double *mag);
/* As ref_conv2d_backward; dy and y are [n][cout][2h][2w], dx [n][cin][h][w]. */
void ref_convT2d_backward(const double *x, int n, int cin, int h, int w, const double *wt,
                          int cout, int k, dc_act act, const double *y, double *dy, double *dw,
                          double *db, double *dx, double *mag_dw, double *mag_db,
                          double *mag_dx);

/* x [n][c][h][w] -> y [n][c][h/2][w/2]. */
void ref_maxpool2_forward(const double *x, int n, int c, int h, int w, double *y);
/* dy [n][c][h/2][w/2] -> dx [n][c][h][w] (zeros except at each window's winner). */
void ref_maxpool2_backward(const double *x, int n, int c, int h, int w, const double *dy,
                           double *dx);

/* Average pooling 2x2 stride 2, floored: x [n][c][h][w] -> y [n][c][h/2][w/2]. */
void ref_avgpool2_forward(const double *x, int n, int c, int h, int w, double *y);
/* dy [n][c][h/2][w/2] -> dx [n][c][h][w]: dy/4 on each window pixel, zero on dropped ones. */
void ref_avgpool2_backward(const double *dy, int n, int c, int h, int w, double *dx);

/* x [n][c][h][w] -> y [n][c][2h][2w]. */
void ref_upsample2_forward(const double *x, int n, int c, int h, int w, double *y);
/* dy [n][c][2h][2w] -> dx [n][c][h][w], sum of each 2x2 block; mag (optional) = sum of |dy|. */
void ref_upsample2_backward(const double *dy, int n, int c, int h, int w, double *dx,
                            double *mag);

/* Element-wise over count values. ref_act_forward may run in place (x == y). */
void ref_act_forward(dc_act act, const double *x, size_t count, double *y);
/* dy[i] *= act'(y[i]). */
void ref_act_backward(dc_act act, const double *y, size_t count, double *dy);

/* y = a + b over count values. */
void ref_add_forward(const double *a, const double *b, size_t count, double *y);
/* a [n][ca][hw], b [n][cb][hw] -> y [n][ca+cb][hw] (hw = h*w). */
void ref_concat_forward(const double *a, const double *b, int n, int ca, int cb, int hw,
                        double *y);
void ref_concat_backward(const double *dy, int n, int ca, int cb, int hw, double *da,
                         double *db);

/* Error of a device result against the reference:
 *   max_i |got_i - want_i| / max(|want_i|, mag_i, floor_abs)
 * (mag_i left out when mag is NULL). With the magnitudes from the functions above this is the
 * error relative to the sum of |terms|, the natural scale of float32 rounding; without them it
 * is the plain relative error with an absolute floor. NaN or Inf in got gives INFINITY. */
double ref_rel_err(const float *got, const double *want, const double *mag, size_t count,
                   double floor_abs);

#endif
