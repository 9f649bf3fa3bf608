/* Nearest-neighbour upsampling x2 (ops.h): checks and enqueueing of cl/resample.cl. */
#include "daecl/ops.h"

#include <limits.h>
#include <stdio.h>

#include "daecl/kernels.h"

/* big must be small's size doubled. */
static dc_status check_pair(const dc_tensor *small, const dc_tensor *big, const char *op)
{
    if (big->n != small->n || big->c != small->c || big->h != 2 * small->h ||
        big->w != 2 * small->w)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "%s: %dx%dx%dx%d does not upsample to %dx%dx%dx%d (expected %dx%dx%dx%d)", op,
                       small->n, small->c, small->h, small->w, big->n, big->c, big->h, big->w,
                       small->n, small->c, 2 * small->h, 2 * small->w);
    return DC_OK;
}

static dc_status launch(dc_device *dev, const char *name, const dc_tensor *src,
                        const dc_tensor *dst, const dc_tensor *small, const char *op)
{
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "resample.cl", NULL, name, &k));
    cl_uint so = (cl_uint)src->off, d_o = (cl_uint)dst->off;
    cl_int rows = small->n * small->c * small->h, w = small->w;
    DC_CL(DC_ARG(k, 0, src->buf), op);
    DC_CL(DC_ARG(k, 1, so), op);
    DC_CL(DC_ARG(k, 2, dst->buf), op);
    DC_CL(DC_ARG(k, 3, d_o), op);
    DC_CL(DC_ARG(k, 4, rows), op);
    DC_CL(DC_ARG(k, 5, w), op);
    size_t g[1] = {(size_t)rows}, l[1] = {rows < 64 ? (size_t)rows : 64};
    return dc_launch(dev, k, 1, g, l, op);
}

dc_status dc_upsample2_forward(dc_device *dev, const dc_tensor *x, dc_tensor *y)
{
    const char *op = "upsample2 forward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_pair(x, y, op));
    return launch(dev, "upsample2_fwd", x, y, x, op);
}

dc_status dc_upsample2_backward(dc_device *dev, const dc_tensor *dy, dc_tensor *dx)
{
    const char *op = "upsample2 backward";
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(dc_tensor_check(dx, op, "dx"));
    DC_TRY(check_pair(dx, dy, op));
    return launch(dev, "upsample2_bwd", dy, dx, dx, op);
}
