/* Max and average pooling 2x2 stride 2 (ops.h): checks and enqueueing of cl/resample.cl. */
#include "daecl/ops.h"

#include <limits.h>
#include <stdio.h>

#include "daecl/kernels.h"

/* y must be x's size halved (floored); both at least 1x1 for the forward. */
static dc_status check_pair(const dc_tensor *x, const dc_tensor *y, const char *op,
                            const char *yname)
{
    if (y->n != x->n || y->c != x->c || y->h != x->h / 2 || y->w != x->w / 2)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: %s is %dx%dx%dx%d, expected %dx%dx%dx%d", op, yname,
                       y->n, y->c, y->h, y->w, x->n, x->c, x->h / 2, x->w / 2);
    return DC_OK;
}

static size_t local_for(size_t g) { return g < 64 ? g : 64; }

/* Both pools' forward: one kernel argument list, one output row per work-item. */
static dc_status pool_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y, const char *kernel,
                              const char *op)
{
    DC_TRY(dc_tensor_check(x, op, "x"));
    if (x->h < 2 || x->w < 2)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: x is %dx%d, need at least 2x2", op, x->h, x->w);
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_pair(x, y, op, "y"));
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "resample.cl", NULL, kernel, &k));
    cl_uint xo = (cl_uint)x->off, yo = (cl_uint)y->off;
    cl_int rows = y->n * y->c * y->h, h = x->h, w = x->w;
    DC_CL(DC_ARG(k, 0, x->buf), op);
    DC_CL(DC_ARG(k, 1, xo), op);
    DC_CL(DC_ARG(k, 2, y->buf), op);
    DC_CL(DC_ARG(k, 3, yo), op);
    DC_CL(DC_ARG(k, 4, rows), op);
    DC_CL(DC_ARG(k, 5, h), op);
    DC_CL(DC_ARG(k, 6, w), op);
    size_t g[1] = {(size_t)rows}, l[1] = {local_for((size_t)rows)};
    return dc_launch(dev, k, 1, g, l, op);
}

dc_status dc_maxpool2_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y)
{
    return pool_forward(dev, x, y, "maxpool2_fwd", "maxpool2 forward");
}

dc_status dc_maxpool2_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *dy,
                               dc_tensor *dx, const dc_tensor *add)
{
    const char *op = "maxpool2 backward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    if (x->h < 2 || x->w < 2)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: x is %dx%d, need at least 2x2", op, x->h, x->w);
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(dc_tensor_check(dx, op, "dx"));
    DC_TRY(check_pair(x, dy, op, "dy"));
    if (dx->n != x->n || dx->c != x->c || dx->h != x->h || dx->w != x->w)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: dx is %dx%dx%dx%d, x is %dx%dx%dx%d", op, dx->n,
                       dx->c, dx->h, dx->w, x->n, x->c, x->h, x->w);
    if (add) {
        DC_TRY(dc_tensor_check(add, op, "add"));
        if (add->n != dx->n || add->c != dx->c || add->h != dx->h || add->w != dx->w)
            return dc_fail(DC_ERR_INVALID_ARG, "%s: add is %dx%dx%dx%d, dx is %dx%dx%dx%d", op,
                           add->n, add->c, add->h, add->w, dx->n, dx->c, dx->h, dx->w);
        if (add->buf == dx->buf && add->off == dx->off)
            return dc_fail(DC_ERR_INVALID_ARG, "%s: add is dx itself", op);
    }
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "resample.cl", NULL, "maxpool2_bwd", &k));
    /* without add, sk is dx's buffer and never read */
    cl_uint xo = (cl_uint)x->off, go = (cl_uint)dy->off, dxo = (cl_uint)dx->off,
            so = add ? (cl_uint)add->off : 0;
    cl_int pairs = x->n * x->c * ((x->h + 1) / 2), h = x->h, w = x->w, with_add = add != NULL;
    cl_mem sk = add ? add->buf : dx->buf;
    DC_CL(DC_ARG(k, 0, x->buf), op);
    DC_CL(DC_ARG(k, 1, xo), op);
    DC_CL(DC_ARG(k, 2, dy->buf), op);
    DC_CL(DC_ARG(k, 3, go), op);
    DC_CL(DC_ARG(k, 4, dx->buf), op);
    DC_CL(DC_ARG(k, 5, dxo), op);
    DC_CL(DC_ARG(k, 6, sk), op);
    DC_CL(DC_ARG(k, 7, so), op);
    DC_CL(DC_ARG(k, 8, with_add), op);
    DC_CL(DC_ARG(k, 9, pairs), op);
    DC_CL(DC_ARG(k, 10, h), op);
    DC_CL(DC_ARG(k, 11, w), op);
    size_t g[1] = {(size_t)pairs}, l[1] = {local_for((size_t)pairs)};
    return dc_launch(dev, k, 1, g, l, op);
}

dc_status dc_avgpool2_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y)
{
    return pool_forward(dev, x, y, "avgpool2_fwd", "avgpool2 forward");
}

dc_status dc_avgpool2_backward(dc_device *dev, const dc_tensor *dy, dc_tensor *dx)
{
    const char *op = "avgpool2 backward";
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(dc_tensor_check(dx, op, "dx"));
    if (dx->h < 2 || dx->w < 2)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: dx is %dx%d, need at least 2x2", op, dx->h, dx->w);
    DC_TRY(check_pair(dx, dy, op, "dy"));
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "resample.cl", NULL, "avgpool2_bwd", &k));
    cl_uint go = (cl_uint)dy->off, dxo = (cl_uint)dx->off;
    cl_int pairs = dx->n * dx->c * ((dx->h + 1) / 2), h = dx->h, w = dx->w;
    DC_CL(DC_ARG(k, 0, dy->buf), op);
    DC_CL(DC_ARG(k, 1, go), op);
    DC_CL(DC_ARG(k, 2, dx->buf), op);
    DC_CL(DC_ARG(k, 3, dxo), op);
    DC_CL(DC_ARG(k, 4, pairs), op);
    DC_CL(DC_ARG(k, 5, h), op);
    DC_CL(DC_ARG(k, 6, w), op);
    size_t g[1] = {(size_t)pairs}, l[1] = {local_for((size_t)pairs)};
    return dc_launch(dev, k, 1, g, l, op);
}
