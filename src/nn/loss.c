/* Losses fused with the output head: host side of cl/loss.cl (see daecl/loss.h). */
#include "daecl/loss.h"

#include <limits.h>
#include <stdio.h>
#include <strings.h>

#include "daecl/kernels.h"

#define LOSS_CHUNK 256 /* elements per work-item, as in cl/loss.cl */
#define LOSS_LOCAL 16

static const char *const loss_names[] = {
    [DC_LOSS_BCE] = "bce",
    [DC_LOSS_MSE] = "mse",
    [DC_LOSS_L1] = "l1",
};
_Static_assert(sizeof loss_names / sizeof loss_names[0] == DC_LOSS_COUNT,
               "loss_names must name every dc_loss_kind");

const char *dc_loss_name(dc_loss_kind kind)
{
    if ((unsigned)kind >= DC_LOSS_COUNT) return "unknown";
    return loss_names[kind];
}

dc_status dc_loss_parse(const char *s, dc_loss_kind *out)
{
    static const struct {
        const char *name;
        dc_loss_kind kind;
    } aliases[] = {
        {"bce", DC_LOSS_BCE}, {"binary_crossentropy", DC_LOSS_BCE},
        {"mse", DC_LOSS_MSE}, {"mean_squared_error", DC_LOSS_MSE},
        {"l1", DC_LOSS_L1},   {"mae", DC_LOSS_L1},
        {"mean_absolute_error", DC_LOSS_L1},
    };
    for (size_t i = 0; s && i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcasecmp(s, aliases[i].name) == 0) {
            *out = aliases[i].kind;
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_INVALID_ARG, "--loss: unknown loss '%s' (choose bce, mse or l1)",
                   s ? s : "(null)");
}

static int same_shape(const dc_tensor *a, const dc_tensor *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

static dc_status check_tensor(const dc_tensor *t, const dc_tensor *z, const char *what, size_t count)
{
    if (!same_shape(t, z))
        return dc_fail(DC_ERR_INVALID_ARG, "loss: %s is %dx%dx%dx%d, logits are %dx%dx%dx%d", what,
                       t->n, t->c, t->h, t->w, z->n, z->c, z->h, z->w);
    if (t->layout != DC_LAYOUT_NCHW)
        return dc_fail(DC_ERR_UNSUPPORTED, "loss: %s: only NCHW tensors are supported", what);
    if (!t->buf) return dc_fail(DC_ERR_INVALID_ARG, "loss: %s has no buffer", what);
    if (t->off + count > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED, "loss: %s: offset %zu + %zu values is too large", what,
                       t->off, count);
    return DC_OK;
}

dc_status dc_loss_check(dc_loss_kind kind, dc_act head)
{
    if ((unsigned)kind >= DC_LOSS_COUNT) return dc_fail(DC_ERR_INVALID_ARG, "loss: unknown kind %d", (int)kind);
    if ((unsigned)head >= DC_ACT_COUNT) return dc_fail(DC_ERR_INVALID_ARG, "loss: unknown output head %d", (int)head);
    if (kind == DC_LOSS_BCE && head != DC_ACT_SIGMOID)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "--loss bce needs a sigmoid output head, this model's last layer is %s "
                       "(use --loss mse or l1, or end the spec with conv:1:sigmoid)",
                       head == DC_ACT_NONE ? "linear" : dc_act_name(head));
    return DC_OK;
}

/* x: the residual head's input (NULL: none). */
static dc_status loss_compute(dc_device *dev, dc_loss_kind kind, dc_act head, const dc_tensor *x,
                              const dc_tensor *z, const dc_tensor *y, dc_tensor *dz, dc_tensor *out,
                              dc_accum *acc, int slot)
{
    DC_TRY(dc_loss_check(kind, head));
    /* One kernel per (loss, head), named after both: loss_bce_sigmoid, loss_mse_tanh, ... */
    char kname[48];
    snprintf(kname, sizeof kname, "loss_%s_%s", dc_loss_name(kind), dc_act_name(head));
    if (z->n <= 0 || z->c <= 0 || z->h <= 0 || z->w <= 0)
        return dc_fail(DC_ERR_INVALID_ARG, "loss: empty logits %dx%dx%dx%d", z->n, z->c, z->h, z->w);
    size_t count = (size_t)z->n * z->c * z->h * z->w;
    size_t per_image = (size_t)z->c * z->h * z->w;
    DC_TRY(check_tensor(z, z, "logits", count));
    DC_TRY(check_tensor(y, z, "target", count));
    if (dz) DC_TRY(check_tensor(dz, z, "gradient", count));
    if (out) DC_TRY(check_tensor(out, z, "output", count));
    if (x) DC_TRY(check_tensor(x, z, "residual input", count));
    if (acc && (slot < 0 || slot >= acc->nslots))
        return dc_fail(DC_ERR_INVALID_ARG, "loss: accumulator slot %d out of range (it has %d)", slot,
                       acc->nslots);

    size_t nchunks = (count + LOSS_CHUNK - 1) / LOSS_CHUNK;
    cl_mem part = z->buf; /* placeholder for an unused argument */
    if (acc) DC_TRY(dc_accum_scratch(dev, acc, nchunks, &part));

    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "loss.cl", "", kname, &k));
    cl_uint flags = (dz ? 1u : 0u) | (out ? 2u : 0u) | (acc ? 4u : 0u) | (x ? 8u : 0u);
    cl_uint zo = (cl_uint)z->off, yo = (cl_uint)y->off, dzo = dz ? (cl_uint)dz->off : 0,
            oo = out ? (cl_uint)out->off : 0, po = 0, cnt = (cl_uint)count, xo = x ? (cl_uint)x->off : 0;
    float inv_count = (float)(1.0 / (double)count);
    /* Unused outputs get a harmless placeholder buffer; the kernel never touches them. */
    cl_mem dzb = dz ? dz->buf : z->buf, ob = out ? out->buf : z->buf, xb = x ? x->buf : z->buf;
    DC_CL(DC_ARG(k, 0, z->buf), "loss arg 0");
    DC_CL(DC_ARG(k, 1, zo), "loss arg 1");
    DC_CL(DC_ARG(k, 2, y->buf), "loss arg 2");
    DC_CL(DC_ARG(k, 3, yo), "loss arg 3");
    DC_CL(DC_ARG(k, 4, dzb), "loss arg 4");
    DC_CL(DC_ARG(k, 5, dzo), "loss arg 5");
    DC_CL(DC_ARG(k, 6, ob), "loss arg 6");
    DC_CL(DC_ARG(k, 7, oo), "loss arg 7");
    DC_CL(DC_ARG(k, 8, part), "loss arg 8");
    DC_CL(DC_ARG(k, 9, po), "loss arg 9");
    DC_CL(DC_ARG(k, 10, cnt), "loss arg 10");
    DC_CL(DC_ARG(k, 11, inv_count), "loss arg 11");
    DC_CL(DC_ARG(k, 12, flags), "loss arg 12");
    DC_CL(DC_ARG(k, 13, xb), "loss arg 13");
    DC_CL(DC_ARG(k, 14, xo), "loss arg 14");
    size_t g = nchunks, l = LOSS_LOCAL;
    DC_TRY(dc_launch(dev, k, 1, &g, &l, kname));
    if (!acc) return DC_OK;
    /* slot += Σ chunks / (c·h·w): the sum over images of each image's mean loss. */
    return dc_accum_add_partials(dev, acc, slot, 1, part, 0, nchunks,
                                 (float)(1.0 / (double)per_image));
}

dc_status dc_loss_check_residual(dc_loss_kind kind)
{
    if (kind == DC_LOSS_BCE)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "--loss bce: a residual model's output (input minus the predicted noise) is not a "
                       "sigmoid's, so cross-entropy does not apply; use --loss mse or l1");
    return dc_loss_check(kind, DC_ACT_NONE);
}

dc_status dc_loss_compute(dc_device *dev, dc_loss_kind kind, dc_act head, const dc_tensor *z,
                          const dc_tensor *y, dc_tensor *dz, dc_tensor *out, dc_accum *acc, int slot)
{
    return loss_compute(dev, kind, head, NULL, z, y, dz, out, acc, slot);
}

dc_status dc_loss_compute_residual(dc_device *dev, dc_loss_kind kind, const dc_tensor *x,
                                   const dc_tensor *z, const dc_tensor *y, dc_tensor *dz,
                                   dc_tensor *out, dc_accum *acc, int slot)
{
    DC_TRY(dc_loss_check_residual(kind));
    return loss_compute(dev, kind, DC_ACT_NONE, x, z, y, dz, out, acc, slot);
}
