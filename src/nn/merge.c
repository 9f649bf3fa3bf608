/* Merges for skip connections (ops.h): element-wise add and channel concatenation
 * (cl/merge.cl). */
#include "daecl/ops.h"

#include <limits.h>
#include <stdio.h>

#include "daecl/kernels.h"

dc_status dc_add_forward(dc_device *dev, const dc_tensor *a, const dc_tensor *b, dc_tensor *y)
{
    const char *op = "add forward";
    DC_TRY(dc_tensor_check(a, op, "a"));
    DC_TRY(dc_tensor_check(b, op, "b"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w || y->n != a->n ||
        y->c != a->c || y->h != a->h || y->w != a->w)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: shapes differ: a %dx%dx%dx%d, b %dx%dx%dx%d, y %dx%dx%dx%d",
                       op, a->n, a->c, a->h, a->w, b->n, b->c, b->h, b->w, y->n, y->c, y->h, y->w);
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "merge.cl", "", "add_fwd", &k));
    cl_uint ao = (cl_uint)a->off, bo = (cl_uint)b->off, yo = (cl_uint)y->off;
    cl_uint n = (cl_uint)dc_tensor_size(a);
    DC_CL(DC_ARG(k, 0, a->buf), op);
    DC_CL(DC_ARG(k, 1, ao), op);
    DC_CL(DC_ARG(k, 2, b->buf), op);
    DC_CL(DC_ARG(k, 3, bo), op);
    DC_CL(DC_ARG(k, 4, y->buf), op);
    DC_CL(DC_ARG(k, 5, yo), op);
    DC_CL(DC_ARG(k, 6, n), op);
    size_t items = (n + 15) / 16;
    size_t g[1] = {items}, l[1] = {items < 64 ? items : 64};
    return dc_launch(dev, k, 1, g, l, op);
}

/* dst[:, dst_c0 : dst_c0+cnt] = src[:, src_c0 : src_c0+cnt] */
static dc_status chan_copy(dc_device *dev, const dc_tensor *src, int src_c0, const dc_tensor *dst,
                           int dst_c0, int cnt, const char *op)
{
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "merge.cl", "", "chan_copy", &k));
    cl_uint so = (cl_uint)src->off, d_o = (cl_uint)dst->off;
    cl_int sc = src->c, dc = dst->c, hw = src->h * src->w, nimg = src->n;
    DC_CL(DC_ARG(k, 0, src->buf), op);
    DC_CL(DC_ARG(k, 1, so), op);
    DC_CL(DC_ARG(k, 2, sc), op);
    DC_CL(DC_ARG(k, 3, src_c0), op);
    DC_CL(DC_ARG(k, 4, dst->buf), op);
    DC_CL(DC_ARG(k, 5, d_o), op);
    DC_CL(DC_ARG(k, 6, dc), op);
    DC_CL(DC_ARG(k, 7, dst_c0), op);
    DC_CL(DC_ARG(k, 8, cnt), op);
    DC_CL(DC_ARG(k, 9, hw), op);
    DC_CL(DC_ARG(k, 10, nimg), op);
    size_t g[2] = {(size_t)cnt, (size_t)nimg}, l[2] = {(size_t)cnt < 16 ? (size_t)cnt : 16, 1};
    return dc_launch(dev, k, 2, g, l, op);
}

static dc_status check_concat(const dc_tensor *a, const dc_tensor *b, const dc_tensor *y,
                              const char *op)
{
    if (a->n != b->n || a->h != b->h || a->w != b->w || y->n != a->n || y->h != a->h ||
        y->w != a->w || y->c != a->c + b->c)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "%s: %dx%dx%dx%d and %dx%dx%dx%d do not concatenate to %dx%dx%dx%d", op, a->n,
                       a->c, a->h, a->w, b->n, b->c, b->h, b->w, y->n, y->c, y->h, y->w);
    return DC_OK;
}

dc_status dc_concat_forward(dc_device *dev, const dc_tensor *a, const dc_tensor *b,
                            dc_tensor *y)
{
    const char *op = "concat forward";
    DC_TRY(dc_tensor_check(a, op, "a"));
    DC_TRY(dc_tensor_check(b, op, "b"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_concat(a, b, y, op));
    DC_TRY(chan_copy(dev, a, 0, y, 0, a->c, op));
    return chan_copy(dev, b, 0, y, a->c, b->c, op);
}

dc_status dc_concat_backward(dc_device *dev, const dc_tensor *dy, dc_tensor *da,
                             dc_tensor *db)
{
    const char *op = "concat backward";
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(dc_tensor_check(da, op, "da"));
    DC_TRY(dc_tensor_check(db, op, "db"));
    DC_TRY(check_concat(da, db, dy, op));
    DC_TRY(chan_copy(dev, dy, 0, da, 0, da->c, op));
    return chan_copy(dev, dy, da->c, db, 0, db->c, op);
}
