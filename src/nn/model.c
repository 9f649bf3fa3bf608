/* The model graph: shape planning, parameter layout, forward and backward over the layers.
 * Every layer kind is one row of layer_kinds[] (shape rule + forward + backward), so a new
 * layer is one table entry plus its op in src/nn/. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/model.h"

/* Largest height or width of any layer output: keeps every size computation far from int
 * overflow (the image reader allows 2^20 per side). */
#define DC_MODEL_MAX_SIDE (1 << 21)

static dc_tensor view_n(const dc_tensor *t, int n)
{
    dc_tensor v = *t;
    v.n = n;
    v.owns_buf = 0;
    return v;
}

/* ---- per-kind rules ---------------------------------------------------------------------- */

typedef struct layer_ctx {
    dc_model *m;
    int i, n;
    const dc_tensor *in; /* layer input (n images) */
    dc_tensor out;       /* layer output (n images) */
    dc_act act;          /* activation to fuse (the last layer's is applied outside) */
} layer_ctx;

typedef struct layer_kind_ops {
    /* Output shape from the input shape; ref = merged layer's state or NULL. */
    dc_status (*shape)(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                       dc_layer_state *out);
    dc_status (*forward)(layer_ctx *x);
    /* dy: grad of this layer's output; dx: grad of its input or NULL (model input). */
    dc_status (*backward)(layer_ctx *x, dc_tensor *dy, dc_tensor *dx);
} layer_kind_ops;

static dc_status conv_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                            dc_layer_state *o)
{
    (void)ref;
    int up = L->kind == DC_LAYER_CONVT ? 2 : 1;
    o->c = L->channels;
    o->h = h * up;
    o->w = w * up;
    o->nparams = (size_t)c * L->channels * L->k * L->k + L->channels;
    o->flops = 2.0 * c * L->channels * L->k * L->k * (double)h * w;
    return DC_OK;
}

static dc_status conv_forward(layer_ctx *x)
{
    dc_model *m = x->m;
    const dc_layer_state *S = &m->layers[x->i];
    int k = m->arch.layers[x->i].k;
    if (m->arch.layers[x->i].kind == DC_LAYER_CONVT)
        return dc_convT2d_forward(m->dev, x->in, m->params, S->w_off, S->b_off, k, x->act, &x->out);
    return dc_conv2d_forward(m->dev, x->in, m->params, S->w_off, S->b_off, k, x->act, &x->out);
}

static dc_status conv_backward(layer_ctx *x, dc_tensor *dy, dc_tensor *dx)
{
    dc_model *m = x->m;
    const dc_layer_state *S = &m->layers[x->i];
    int k = m->arch.layers[x->i].k;
    if (m->arch.layers[x->i].kind == DC_LAYER_CONVT)
        return dc_convT2d_backward(m->dev, x->in, &x->out, dy, m->params, m->grads, S->w_off,
                                   S->b_off, k, x->act, dx);
    return dc_conv2d_backward(m->dev, x->in, &x->out, dy, m->params, m->grads, S->w_off, S->b_off,
                              k, x->act, dx);
}

static dc_status pool_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                            dc_layer_state *o)
{
    (void)L;
    (void)ref;
    if (h < 2 || w < 2) return dc_fail(DC_ERR_INVALID_ARG, "pool: input %dx%d is smaller than 2x2", h, w);
    o->c = c;
    o->h = h / 2; /* "valid": odd sizes floor, as Keras */
    o->w = w / 2;
    o->flops = 3.0 * c * o->h * o->w;
    return DC_OK;
}

static dc_status pool_forward(layer_ctx *x) { return dc_maxpool2_forward(x->m->dev, x->in, &x->out); }

static dc_status pool_backward(layer_ctx *x, dc_tensor *dy, dc_tensor *dx)
{
    return dx ? dc_maxpool2_backward(x->m->dev, x->in, dy, dx) : DC_OK;
}

static dc_status up_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                          dc_layer_state *o)
{
    (void)L;
    (void)ref;
    if (h > DC_MODEL_MAX_SIDE / 2 || w > DC_MODEL_MAX_SIDE / 2) /* found by tests/fuzz: "up" x20 wrapped */
        return dc_fail(DC_ERR_INVALID_ARG, "up: a %dx%d input would grow beyond %d pixels per side", h, w,
                       DC_MODEL_MAX_SIDE);
    o->c = c;
    o->h = h * 2;
    o->w = w * 2;
    return DC_OK;
}

static dc_status up_forward(layer_ctx *x) { return dc_upsample2_forward(x->m->dev, x->in, &x->out); }

static dc_status up_backward(layer_ctx *x, dc_tensor *dy, dc_tensor *dx)
{
    (void)x;
    return dx ? dc_upsample2_backward(x->m->dev, dy, dx) : DC_OK;
}

static dc_status merge_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                             dc_layer_state *o)
{
    if (ref->h != h || ref->w != w || (L->kind == DC_LAYER_ADD && ref->c != c))
        return dc_fail(DC_ERR_INVALID_ARG, "%s: shapes differ: %dx%dx%d here, %dx%dx%d at the named layer",
                       dc_layer_kind_name(L->kind), c, h, w, ref->c, ref->h, ref->w);
    o->c = L->kind == DC_LAYER_ADD ? c : c + ref->c;
    o->h = h;
    o->w = w;
    o->flops = L->kind == DC_LAYER_ADD ? (double)c * h * w : 0;
    return DC_OK;
}

static dc_status merge_forward(layer_ctx *x)
{
    const dc_layer_spec *L = &x->m->arch.layers[x->i];
    dc_tensor r = view_n(&x->m->layers[L->ref].out, x->n);
    if (L->kind == DC_LAYER_ADD) return dc_add_forward(x->m->dev, x->in, &r, &x->out);
    return dc_concat_forward(x->m->dev, x->in, &r, &x->out);
}

/* The gradient for the merged layer goes to its skip_grad and is added to its grad once the
 * layer after it has written that (see dc_model_backward). */
static dc_status merge_backward(layer_ctx *x, dc_tensor *dy, dc_tensor *dx)
{
    dc_model *m = x->m;
    const dc_layer_spec *L = &m->arch.layers[x->i];
    dc_tensor skip = view_n(&m->layers[L->ref].skip_grad, x->n);
    if (L->kind == DC_LAYER_CAT) return dc_concat_backward(m->dev, dy, dx, &skip);
    size_t count = dc_tensor_size(dy);
    DC_TRY(dc_copy(m->dev, skip.buf, skip.off, dy->buf, dy->off, count));
    return dx ? dc_copy(m->dev, dx->buf, dx->off, dy->buf, dy->off, count) : DC_OK;
}

static const layer_kind_ops layer_kinds[DC_LAYER_KIND_COUNT] = {
    [DC_LAYER_CONV] = {conv_shape, conv_forward, conv_backward},
    [DC_LAYER_CONVT] = {conv_shape, conv_forward, conv_backward},
    [DC_LAYER_POOL] = {pool_shape, pool_forward, pool_backward},
    [DC_LAYER_UP] = {up_shape, up_forward, up_backward},
    [DC_LAYER_ADD] = {merge_shape, merge_forward, merge_backward},
    [DC_LAYER_CAT] = {merge_shape, merge_forward, merge_backward},
};

/* ---- planning ---------------------------------------------------------------------------- */

dc_status dc_model_plan(const dc_arch *arch, int in_c, int h, int w, dc_layer_state *layers,
                        size_t *nparams, double *flops)
{
    if (in_c <= 0 || h <= 0 || w <= 0)
        return dc_fail(DC_ERR_INVALID_ARG, "model input %dx%dx%d is empty", in_c, h, w);
    int c = in_c, ch = h, cw = w;
    size_t np = 0;
    double fl = 0;
    for (int i = 0; i < arch->nlayers; i++) {
        const dc_layer_spec *L = &arch->layers[i];
        dc_layer_state *S = &layers[i];
        memset(S, 0, sizeof *S);
        S->merged_by = -1;
        const dc_layer_state *ref = L->ref >= 0 ? &layers[L->ref] : NULL;
        dc_status s = layer_kinds[L->kind].shape(L, c, ch, cw, ref, S);
        if (s) return dc_fail(s, "layer %d (%s) on %dx%dx%d input: %s", i + 1, dc_layer_kind_name(L->kind),
                              c, ch, cw, dc_error_detail());
        if (ref) layers[L->ref].merged_by = i;
        if (S->nparams) {
            S->w_off = np;
            S->b_off = np + S->nparams - (size_t)L->channels;
            np += S->nparams;
        }
        fl += S->flops;
        c = S->c;
        ch = S->h;
        cw = S->w;
    }
    if (c != in_c || ch != h || cw != w)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "this architecture maps %dx%dx%d images to %dx%dx%d; a denoiser must keep the size "
                       "(with two pool layers, height and width must be multiples of 4)",
                       in_c, h, w, c, ch, cw);
    if (nparams) *nparams = np;
    if (flops) *flops = fl;
    return DC_OK;
}

/* ---- device state ------------------------------------------------------------------------ */

static dc_status alloc_activations(dc_model *m, int training)
{
    for (int i = 0; i < m->arch.nlayers; i++) {
        dc_layer_state *S = &m->layers[i];
        DC_TRY(dc_tensor_create(m->dev, m->batch, S->c, S->h, S->w, DC_LAYOUT_NCHW, &S->out));
        if (!training) continue;
        DC_TRY(dc_tensor_create(m->dev, m->batch, S->c, S->h, S->w, DC_LAYOUT_NCHW, &S->grad));
        if (S->merged_by >= 0)
            DC_TRY(dc_tensor_create(m->dev, m->batch, S->c, S->h, S->w, DC_LAYOUT_NCHW, &S->skip_grad));
    }
    return DC_OK;
}

static dc_status model_new(dc_device *dev, const dc_arch *arch, int in_c, int h, int w, int batch,
                           dc_model **out)
{
    *out = NULL;
    if (batch <= 0) return dc_fail(DC_ERR_INVALID_ARG, "batch size must be positive, not %d", batch);
    dc_model *m = calloc(1, sizeof *m);
    if (!m) return dc_fail(DC_ERR_NOMEM, "out of memory creating the model");
    m->dev = dev;
    m->arch = *arch;
    m->in_c = in_c;
    m->in_h = h;
    m->in_w = w;
    m->batch = batch;
    m->out_act = arch->layers[arch->nlayers - 1].act;
    dc_status s = dc_model_plan(arch, in_c, h, w, m->layers, &m->nparams, NULL);
    if (s) {
        free(m);
        return s;
    }
    *out = m;
    return DC_OK;
}

dc_status dc_model_create(dc_device *dev, const dc_arch *arch, int in_c, int h, int w, int batch,
                          dc_model **out)
{
    dc_model *m;
    DC_TRY(model_new(dev, arch, in_c, h, w, batch, &m));
    dc_status s = dc_buffer_create(dev, m->nparams, "parameters", &m->params);
    if (!s) s = dc_buffer_create(dev, m->nparams, "gradients", &m->grads);
    m->owns_params = 1;
    if (!s) s = alloc_activations(m, 1);
    if (s) {
        dc_model_destroy(m);
        return s;
    }
    *out = m;
    return DC_OK;
}

dc_status dc_model_create_shared(const dc_model *src, int h, int w, int batch, dc_model **out)
{
    dc_model *m;
    DC_TRY(model_new(src->dev, &src->arch, src->in_c, h, w, batch, &m));
    m->params = src->params;
    clRetainMemObject(m->params);
    m->owns_params = 1;
    dc_status s = alloc_activations(m, 0);
    if (s) {
        dc_model_destroy(m);
        return s;
    }
    *out = m;
    return DC_OK;
}

void dc_model_destroy(dc_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->arch.nlayers; i++) {
        dc_tensor_release(&m->layers[i].out);
        dc_tensor_release(&m->layers[i].grad);
        dc_tensor_release(&m->layers[i].skip_grad);
    }
    if (m->owns_params && m->params) clReleaseMemObject(m->params);
    if (m->grads) clReleaseMemObject(m->grads);
    free(m);
}

/* splitmix64: a tiny, well-mixed seeded generator for initialisation. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

dc_status dc_model_init_params(dc_model *m, uint64_t seed)
{
    float *host = calloc(m->nparams ? m->nparams : 1, sizeof *host);
    if (!host) return dc_fail(DC_ERR_NOMEM, "out of memory initialising parameters");
    uint64_t state = seed ^ 0x6A09E667F3BCC909ull;
    int c = m->in_c;
    for (int i = 0; i < m->arch.nlayers; i++) {
        const dc_layer_spec *L = &m->arch.layers[i];
        const dc_layer_state *S = &m->layers[i];
        if (S->nparams) {
            /* Glorot uniform as Keras: limit sqrt(6 / (fan_in + fan_out)), fans = channels × k². */
            double rf = (double)L->k * L->k;
            double limit = sqrt(6.0 / (rf * c + rf * L->channels));
            size_t nw = S->nparams - (size_t)L->channels;
            for (size_t j = 0; j < nw; j++) {
                double u = (double)(splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
                host[S->w_off + j] = (float)((2.0 * u - 1.0) * limit);
            }
        }
        c = S->c;
    }
    dc_status s = dc_model_set_params(m, host);
    free(host);
    return s;
}

dc_status dc_model_get_params(const dc_model *m, float *host)
{
    DC_CL(clEnqueueReadBuffer(m->dev->queue, m->params, CL_TRUE, 0, m->nparams * sizeof(float), host,
                              0, NULL, NULL),
          "reading parameters");
    return DC_OK;
}

dc_status dc_model_set_params(dc_model *m, const float *host)
{
    DC_CL(clEnqueueWriteBuffer(m->dev->queue, m->params, CL_TRUE, 0, m->nparams * sizeof(float), host,
                               0, NULL, NULL),
          "writing parameters");
    return DC_OK;
}

/* ---- running ----------------------------------------------------------------------------- */

static dc_status check_input(const dc_model *m, const dc_tensor *x, int n)
{
    if (n <= 0 || n > m->batch || x->n < n || x->c != m->in_c || x->h != m->in_h || x->w != m->in_w)
        return dc_fail(DC_ERR_INVALID_ARG, "model input %dx%dx%dx%d does not fit the model (%d images of %dx%dx%d at most)",
                       n, x->c, x->h, x->w, m->batch, m->in_c, m->in_h, m->in_w);
    return DC_OK;
}

static layer_ctx ctx_for(dc_model *m, int i, const dc_tensor *x, int n, dc_tensor *in_view)
{
    layer_ctx c = {.m = m, .i = i, .n = n};
    if (i == 0) {
        *in_view = view_n(x, n);
    } else {
        *in_view = view_n(&m->layers[i - 1].out, n);
    }
    c.in = in_view;
    c.out = view_n(&m->layers[i].out, n);
    c.act = i == m->arch.nlayers - 1 ? DC_ACT_NONE : m->arch.layers[i].act;
    return c;
}

dc_status dc_model_forward(dc_model *m, const dc_tensor *x, int n)
{
    DC_TRY(check_input(m, x, n));
    for (int i = 0; i < m->arch.nlayers; i++) {
        dc_tensor in;
        layer_ctx c = ctx_for(m, i, x, n, &in);
        DC_TRY(layer_kinds[m->arch.layers[i].kind].forward(&c));
    }
    return DC_OK;
}

dc_status dc_model_backward(dc_model *m, const dc_tensor *x, int n)
{
    if (!m->grads) return dc_fail(DC_ERR_INVALID_ARG, "this model was built for inference only");
    DC_TRY(check_input(m, x, n));
    for (int i = m->arch.nlayers - 1; i >= 0; i--) {
        dc_tensor in;
        layer_ctx c = ctx_for(m, i, x, n, &in);
        dc_tensor dy = view_n(&m->layers[i].grad, n);
        dc_tensor dx_view;
        dc_tensor *dx = NULL;
        if (i > 0) {
            dx_view = view_n(&m->layers[i - 1].grad, n);
            dx = &dx_view;
        }
        DC_TRY(layer_kinds[m->arch.layers[i].kind].backward(&c, &dy, dx));
        /* The input's gradient is complete once the skip path's share is added. */
        if (i > 0 && m->layers[i - 1].merged_by >= 0) {
            dc_tensor skip = view_n(&m->layers[i - 1].skip_grad, n);
            DC_TRY(dc_axpy(m->dev, dx->buf, dx->off, skip.buf, skip.off, dc_tensor_size(&skip), 1.0f));
        }
    }
    return DC_OK;
}

dc_tensor dc_model_logits(const dc_model *m, int n)
{
    return view_n(&m->layers[m->arch.nlayers - 1].out, n);
}

dc_tensor dc_model_logits_grad(const dc_model *m, int n)
{
    return view_n(&m->layers[m->arch.nlayers - 1].grad, n);
}

void dc_model_print(const dc_arch *arch, int in_c, int h, int w, FILE *out)
{
    dc_layer_state layers[DC_MAX_LAYERS];
    size_t np = 0;
    double fl = 0;
    if (dc_model_plan(arch, in_c, h, w, layers, &np, &fl) != DC_OK) {
        fprintf(out, "error: %s\n", dc_error_detail());
        return;
    }
    char spec[DC_SPEC_MAX];
    dc_arch_format(arch, spec, sizeof spec);
    fprintf(out, "architecture: %s\n", spec);
    char shape[48];
    fprintf(out, "%3s  %-26s %-14s %10s %10s\n", "#", "layer", "output", "params", "MFLOP/img");
    snprintf(shape, sizeof shape, "%dx%dx%d", in_c, h, w);
    fprintf(out, "%3s  %-26s %-14s %10d %10s\n", "", "input", shape, 0, "");
    for (int i = 0; i < arch->nlayers; i++) {
        const dc_layer_spec *L = &arch->layers[i];
        const dc_layer_state *S = &layers[i];
        char desc[64];
        switch (L->kind) {
        case DC_LAYER_CONV:
        case DC_LAYER_CONVT:
            snprintf(desc, sizeof desc, "%s %dx%d, %d %s", L->kind == DC_LAYER_CONV ? "conv" : "convT s2",
                     L->k, L->k, L->channels, L->act == DC_ACT_NONE ? "linear" : dc_act_name(L->act));
            break;
        case DC_LAYER_POOL: snprintf(desc, sizeof desc, "maxpool 2x2"); break;
        case DC_LAYER_UP: snprintf(desc, sizeof desc, "upsample 2x"); break;
        default:
            snprintf(desc, sizeof desc, "%s %s", L->kind == DC_LAYER_ADD ? "add" : "concat",
                     arch->layers[L->ref].name);
        }
        if (L->name[0]) snprintf(desc + strlen(desc), sizeof desc - strlen(desc), " @%s", L->name);
        snprintf(shape, sizeof shape, "%dx%dx%d", S->c, S->h, S->w);
        fprintf(out, "%3d  %-26s %-14s %10zu %10.2f\n", i + 1, desc, shape, S->nparams, S->flops / 1e6);
    }
    fprintf(out, "total: %zu parameters, %.1f MFLOP per image forward (%.1f forward+backward)\n", np,
            fl / 1e6, 3 * fl / 1e6);
}
