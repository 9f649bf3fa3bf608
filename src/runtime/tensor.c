/* Device tensors and flat-buffer helpers (see tensor.h). */
#include "daecl/tensor.h"

#include <limits.h>
#include <stdint.h>

#include "daecl/kernels.h"

size_t dc_tensor_size(const dc_tensor *t)
{
    size_t c = (size_t)t->c;
    if (t->layout == DC_LAYOUT_NCHW8C) c = (c + 7) / 8 * 8;
    return (size_t)t->n * c * (size_t)t->h * (size_t)t->w;
}

dc_status dc_buffer_create(dc_device *dev, size_t nfloats, const char *what, cl_mem *out)
{
    cl_int err;
    *out = NULL;
    if (nfloats > SIZE_MAX / sizeof(float))
        return dc_fail(DC_ERR_DEVICE_MEMORY, "%s: %zu floats do not fit in a size_t of bytes", what, nfloats);
    size_t bytes = (nfloats ? nfloats : 1) * sizeof(float);
    if (bytes > dev->max_alloc)
        return dc_fail(DC_ERR_DEVICE_MEMORY,
                       "%s: %zu floats (%.1f MiB) are more than the device's largest allocation (%.1f MiB)",
                       what, nfloats, bytes / 1048576.0, dev->max_alloc / 1048576.0);
    cl_mem m = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        char msg[256];
        snprintf(msg, sizeof msg, "allocating %s (%.1f MiB)", what, bytes / 1048576.0);
        return dc_cl_fail(err, msg);
    }
    /* Zero-fill so nothing reads garbage, and so lazy allocators fail here, not mid-training. */
    dc_status s = dc_fill(dev, m, 0, nfloats, 0.0f);
    if (s) {
        clReleaseMemObject(m);
        return s;
    }
    *out = m;
    return DC_OK;
}

dc_status dc_tensor_check_alloc(const dc_device *dev, int n, int c, int h, int w, dc_layout layout,
                                size_t *nfloats_out)
{
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return dc_fail(DC_ERR_INVALID_ARG, "tensor shape %dx%dx%dx%d is empty", n, c, h, w);
    /* Checked, so that a crafted shape (2^30 x 2^30) is named rather than wrapped. */
    size_t nfloats = 0, cpad = layout == DC_LAYOUT_NCHW8C ? ((size_t)c + 7) / 8 * 8 : (size_t)c;
    if (__builtin_mul_overflow((size_t)n, cpad, &nfloats) || __builtin_mul_overflow(nfloats, (size_t)h, &nfloats) ||
        __builtin_mul_overflow(nfloats, (size_t)w, &nfloats) || nfloats > SIZE_MAX / sizeof(float))
        return dc_fail(DC_ERR_DEVICE_MEMORY, "tensor %dx%dx%dx%d: its size overflows a %zu-bit size", n, c, h, w,
                       sizeof(size_t) * CHAR_BIT);
    if (nfloats * sizeof(float) > dev->max_alloc)
        return dc_fail(DC_ERR_DEVICE_MEMORY,
                       "tensor %dx%dx%dx%d: %zu floats (%.1f MiB) are more than the device's largest allocation "
                       "(%.1f MiB)%s",
                       n, c, h, w, nfloats, nfloats * 4.0 / 1048576.0, dev->max_alloc / 1048576.0,
                       n > 1 ? "; try a smaller --batch" : "");
    if (nfloats_out) *nfloats_out = nfloats;
    return DC_OK;
}

dc_status dc_tensor_create(dc_device *dev, int n, int c, int h, int w, dc_layout layout,
                           dc_tensor *out)
{
    *out = dc_tensor_view(NULL, 0, n, c, h, w, layout);
    size_t nfloats;
    DC_TRY(dc_tensor_check_alloc(dev, n, c, h, w, layout, &nfloats));
    DC_TRY(dc_buffer_create(dev, nfloats, "tensor", &out->buf));
    out->owns_buf = 1;
    return DC_OK;
}

dc_tensor dc_tensor_view(cl_mem buf, size_t off, int n, int c, int h, int w, dc_layout layout)
{
    dc_tensor t = {.buf = buf, .off = off, .n = n, .c = c, .h = h, .w = w, .layout = layout};
    return t;
}

void dc_tensor_release(dc_tensor *t)
{
    if (t->owns_buf && t->buf) clReleaseMemObject(t->buf);
    t->buf = NULL;
    t->owns_buf = 0;
}

dc_status dc_tensor_write(dc_device *dev, const dc_tensor *t, const float *host)
{
    if (t->layout != DC_LAYOUT_NCHW)
        return dc_fail(DC_ERR_UNSUPPORTED, "tensor write: only NCHW host transfers are supported");
    DC_CL(clEnqueueWriteBuffer(dev->queue, t->buf, CL_TRUE, t->off * sizeof(float),
                               dc_tensor_size(t) * sizeof(float), host, 0, NULL, NULL),
          "writing a tensor to the device");
    return DC_OK;
}

dc_status dc_tensor_read(dc_device *dev, const dc_tensor *t, float *host)
{
    if (t->layout != DC_LAYOUT_NCHW)
        return dc_fail(DC_ERR_UNSUPPORTED, "tensor read: only NCHW host transfers are supported");
    DC_CL(clEnqueueReadBuffer(dev->queue, t->buf, CL_TRUE, t->off * sizeof(float),
                              dc_tensor_size(t) * sizeof(float), host, 0, NULL, NULL),
          "reading a tensor from the device");
    return DC_OK;
}

/* The driver's own fill, not a kernel of ours: nothing to compile (a fill kernel took two PoCL
 * kernel compiles of every cold start, one per grid kind) and GPUs fill natively. A warm 1-step
 * classic run, which zeroes 24 MB, took the same time either way (0.59-0.70 s, Zen 5 VM): the
 * page faults of first touch dominate. */
dc_status dc_fill(dc_device *dev, cl_mem x, size_t off, size_t n, float value)
{
    if (n == 0) return DC_OK;
    DC_CL(clEnqueueFillBuffer(dev->queue, x, &value, sizeof value, off * sizeof(float),
                              n * sizeof(float), 0, NULL, NULL),
          "filling a buffer");
    return DC_OK;
}

dc_status dc_copy(dc_device *dev, cl_mem y, size_t y_off, cl_mem x, size_t x_off, size_t n)
{
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "util.cl", "", "copy_f32", &k));
    cl_uint yo = (cl_uint)y_off, xo = (cl_uint)x_off, nn = (cl_uint)n;
    DC_CL(DC_ARG(k, 0, y), "copy_f32 arg");
    DC_CL(DC_ARG(k, 1, yo), "copy_f32 arg");
    DC_CL(DC_ARG(k, 2, x), "copy_f32 arg");
    DC_CL(DC_ARG(k, 3, xo), "copy_f32 arg");
    DC_CL(DC_ARG(k, 4, nn), "copy_f32 arg");
    size_t g = n;
    return dc_launch(dev, k, 1, &g, NULL, "copy_f32");
}

dc_status dc_axpy(dc_device *dev, cl_mem y, size_t y_off, cl_mem x, size_t x_off, size_t n, float a)
{
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "util.cl", "", "axpy_f32", &k));
    cl_uint yo = (cl_uint)y_off, xo = (cl_uint)x_off, nn = (cl_uint)n;
    DC_CL(DC_ARG(k, 0, y), "axpy_f32 arg");
    DC_CL(DC_ARG(k, 1, yo), "axpy_f32 arg");
    DC_CL(DC_ARG(k, 2, x), "axpy_f32 arg");
    DC_CL(DC_ARG(k, 3, xo), "axpy_f32 arg");
    DC_CL(DC_ARG(k, 4, nn), "axpy_f32 arg");
    DC_CL(DC_ARG(k, 5, a), "axpy_f32 arg");
    size_t g = n;
    return dc_launch(dev, k, 1, &g, NULL, "axpy_f32");
}

dc_status dc_tensor_check(const dc_tensor *t, const char *op, const char *name)
{
    if (!t || !t->buf) return dc_fail(DC_ERR_INVALID_ARG, "%s: %s is missing", op, name);
    if (t->layout != DC_LAYOUT_NCHW)
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: %s: only the NCHW layout is supported", op, name);
    if (t->n < 1 || t->c < 1 || t->h < 1 || t->w < 1)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: %s has an empty shape %dx%dx%dx%d", op, name,
                       t->n, t->c, t->h, t->w);
    if (t->off + dc_tensor_size(t) > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: %s ends past 2^32 floats (32-bit indexing)", op,
                       name);
    return DC_OK;
}

dc_status dc_tensor_check_shape(const dc_tensor *t, int n, int c, int h, int w, const char *op,
                                const char *name)
{
    if (t->n != n || t->c != c || t->h != h || t->w != w)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: %s is %dx%dx%dx%d, expected %dx%dx%dx%d", op, name,
                       t->n, t->c, t->h, t->w, n, c, h, w);
    return DC_OK;
}
