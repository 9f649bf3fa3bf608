/* Activation names and the standalone activation ops (ops.h, cl/activation.cl). */
#include "daecl/ops.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daecl/kernels.h"

static const char *const act_names[] = {
    [DC_ACT_NONE] = "none",       [DC_ACT_RELU] = "relu", [DC_ACT_SIGMOID] = "sigmoid",
    [DC_ACT_LEAKY_RELU] = "leaky", [DC_ACT_TANH] = "tanh",
};
_Static_assert(sizeof act_names / sizeof act_names[0] == DC_ACT_COUNT,
               "act_names must name every dc_act");

const char *dc_act_name(dc_act a)
{
    if ((unsigned)a >= DC_ACT_COUNT) return "?";
    return act_names[a];
}

dc_status dc_act_parse(const char *s, dc_act *out)
{
    if (s) {
        for (int a = 0; a < DC_ACT_COUNT; a++)
            if (!strcasecmp(s, act_names[a])) {
                *out = (dc_act)a;
                return DC_OK;
            }
        if (!strcasecmp(s, "linear")) {
            *out = DC_ACT_NONE;
            return DC_OK;
        }
        if (!strcasecmp(s, "leaky_relu") || !strcasecmp(s, "leakyrelu")) {
            *out = DC_ACT_LEAKY_RELU;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_INVALID_ARG,
                   "unknown activation '%s' (none, relu, sigmoid, leaky, tanh)", s ? s : "");
}

static dc_status check_same(const dc_tensor *a, const dc_tensor *b, const char *op)
{
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: shapes differ: %dx%dx%dx%d vs %dx%dx%dx%d", op, a->n,
                       a->c, a->h, a->w, b->n, b->c, b->h, b->w);
    return DC_OK;
}

static dc_status launch(dc_device *dev, dc_act act, const char *name, const dc_tensor *a,
                        const dc_tensor *b, const char *op)
{
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "activation.cl", NULL, name, &k));
    cl_uint ao = (cl_uint)a->off, bo = (cl_uint)b->off, n = (cl_uint)dc_tensor_size(a);
    cl_int ac = (cl_int)act;
    DC_CL(DC_ARG(k, 0, a->buf), op);
    DC_CL(DC_ARG(k, 1, ao), op);
    DC_CL(DC_ARG(k, 2, b->buf), op);
    DC_CL(DC_ARG(k, 3, bo), op);
    DC_CL(DC_ARG(k, 4, n), op);
    DC_CL(DC_ARG(k, 5, ac), op);
    size_t items = (n + 15) / 16;
    size_t g[1] = {items}, l[1] = {items < 64 ? items : 64};
    return dc_launch(dev, k, 1, g, l, op);
}

dc_status dc_act_forward(dc_device *dev, dc_act act, const dc_tensor *x, dc_tensor *y)
{
    const char *op = "activation forward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_same(x, y, op));
    if ((unsigned)act >= DC_ACT_COUNT)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: invalid activation %d", op, (int)act);
    if (act == DC_ACT_NONE) {
        if (x->buf == y->buf && x->off == y->off) return DC_OK;
        return dc_copy(dev, y->buf, y->off, x->buf, x->off, dc_tensor_size(x));
    }
    return launch(dev, act, "act_fwd", x, y, op);
}

dc_status dc_act_backward(dc_device *dev, dc_act act, const dc_tensor *y, dc_tensor *dy)
{
    const char *op = "activation backward";
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(check_same(y, dy, op));
    if ((unsigned)act >= DC_ACT_COUNT)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: invalid activation %d", op, (int)act);
    if (act == DC_ACT_NONE) return DC_OK;
    return launch(dev, act, "act_bwd", y, dy, op);
}

dc_status dc_residual_forward(dc_device *dev, const dc_tensor *x, dc_tensor *z)
{
    const char *op = "residual head";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(z, op, "z"));
    DC_TRY(check_same(x, z, op));
    return launch(dev, DC_ACT_NONE, "residual_out", x, z, op);
}
