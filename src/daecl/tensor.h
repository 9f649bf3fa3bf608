/* Device tensors: a window into a cl_mem buffer plus its shape and layout.
 *
 * Offsets are in floats, so several tensors can share one flat buffer (parameters, gradients
 * and optimizer state each live in one buffer, so one kernel launch updates all of them).
 * Layout is a property the layers of a model agree on when it is built; conversion happens only
 * at the model's edges. Every kernel today uses NCHW; NCHW8c (channel blocks of 8, innermost)
 * is reserved for the CPU-speed kernels. */
#ifndef DAECL_TENSOR_H
#define DAECL_TENSOR_H

#include <stddef.h>

#include "daecl/device.h"

typedef enum dc_layout { DC_LAYOUT_NCHW = 0, DC_LAYOUT_NCHW8C = 1 } dc_layout;

typedef struct dc_tensor {
    cl_mem buf;
    size_t off; /* in floats */
    int n, c, h, w;
    dc_layout layout;
    int owns_buf; /* release buf with the tensor */
} dc_tensor;

/* Number of floats the tensor occupies (NCHW8c pads c up to a multiple of 8). */
size_t dc_tensor_size(const dc_tensor *t);

/* Allocate a zero-filled tensor with its own buffer. */
dc_status dc_tensor_create(dc_device *dev, int n, int c, int h, int w, dc_layout layout,
                           dc_tensor *out);
/* Whether a tensor of this shape can be allocated on dev: not empty, its size fits a size_t and
 * the device's largest allocation (a one-line error naming the shape otherwise); *nfloats gets
 * its size if not NULL. */
dc_status dc_tensor_check_alloc(const dc_device *dev, int n, int c, int h, int w, dc_layout layout,
                                size_t *nfloats);
/* A tensor viewing buf at offset off (does not own it). */
dc_tensor dc_tensor_view(cl_mem buf, size_t off, int n, int c, int h, int w, dc_layout layout);
void dc_tensor_release(dc_tensor *t);

/* Argument checks shared by the ops: present, NCHW, non-empty, 32-bit indexable; and an exact
 * shape. One-line errors start with `op` and name the tensor. */
dc_status dc_tensor_check(const dc_tensor *t, const char *op, const char *name);
dc_status dc_tensor_check_shape(const dc_tensor *t, int n, int c, int h, int w, const char *op,
                                const char *name);

/* Blocking copies from/to host memory in NCHW order. */
dc_status dc_tensor_write(dc_device *dev, const dc_tensor *t, const float *host);
dc_status dc_tensor_read(dc_device *dev, const dc_tensor *t, float *host);

/* A zero-filled buffer of n floats. Allocation failures become DC_ERR_DEVICE_MEMORY with the
 * size in the message. `what` names it ("parameters", "activations"). */
dc_status dc_buffer_create(dc_device *dev, size_t nfloats, const char *what, cl_mem *out);

/* Element-wise helpers on flat buffers (cl/util.cl; dc_fill: clEnqueueFillBuffer), all enqueued,
 * non-blocking. */
dc_status dc_fill(dc_device *dev, cl_mem x, size_t off, size_t n, float value);
dc_status dc_copy(dc_device *dev, cl_mem y, size_t y_off, cl_mem x, size_t x_off, size_t n);
/* y += a*x */
dc_status dc_axpy(dc_device *dev, cl_mem y, size_t y_off, cl_mem x, size_t x_off, size_t n,
                  float a);

#endif
