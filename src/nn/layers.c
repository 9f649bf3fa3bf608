/* The layer registry (daecl/layer.h): one descriptor per layer kind, and nothing else knows the
 * kinds. Each rule here is the kind's whole story: shape, tiling reach, parameters, forward,
 * backward. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daecl/model.h"

static void append(char *buf, size_t len, const char *fmt, const char *s)
{
    size_t used = strlen(buf);
    if (used < len) snprintf(buf + used, len - used, fmt, s);
}

static const char *act_label(dc_act a) { return a == DC_ACT_NONE ? "linear" : dc_act_name(a); }

/* ---- conv and convT: k×k filters with a bias and a fused activation ------------------------ */

static void conv_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    (void)a;
    snprintf(buf, len, "conv %dx%d, %d %s", L->k, L->k, L->channels, act_label(L->act));
}

static void convT_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    (void)a;
    snprintf(buf, len, "convT s2 %dx%d, %d %s", L->k, L->k, L->channels, act_label(L->act));
}

static void conv_params(const dc_layer_spec *L, int c, int h, int w, dc_layer_state *o)
{
    size_t nw = (size_t)c * L->channels * L->k * L->k;
    o->c = L->channels;
    o->nparams = nw + (size_t)L->channels;
    o->b_off = nw;
    o->flops = 2.0 * c * L->channels * L->k * L->k * (double)h * w;
}

static dc_status conv_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                            dc_layer_state *o)
{
    (void)ref;
    conv_params(L, c, h, w, o);
    o->h = h;
    o->w = w;
    return DC_OK;
}

static dc_status convT_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                             dc_layer_state *o)
{
    (void)ref;
    conv_params(L, c, h, w, o);
    o->h = 2 * h;
    o->w = 2 * w;
    return DC_OK;
}

/* "Same" zero padding: a window edge's influence spreads (k-1)/2 pixels per conv. */
static void conv_reach(const dc_layer_spec *L, dc_reach *r) { r->reach += (L->k - 1) / 2; }

/* A transposed conv doubles the resolution; input pixel i scatters to outputs 2i - pt ..
 * 2i - pt + k - 1 (pt = max(k-2, 0)/2, ops.h). So b bad input pixels, and the missing ones
 * beyond the window edge, spoil 2b + k - 2 - pt outputs at a window's leading edge and 2b + pt
 * at its trailing edge (exact: tests/test_registry.c measures it). */
static void convT_reach(const dc_layer_spec *L, dc_reach *r)
{
    int pt = (L->k > 2 ? L->k - 2 : 0) / 2, lead = L->k - 2 - pt;
    r->reach = 2 * r->reach + (lead > pt ? lead : pt);
    r->depth--;
}

/* Glorot uniform as Keras: limit sqrt(6 / (fan_in + fan_out)), fans = channels × k²; zero bias. */
static void conv_init(const dc_layer_spec *L, int in_c, const dc_layer_state *S, float *params,
                      uint64_t *rng)
{
    double rf = (double)L->k * L->k;
    double limit = sqrt(6.0 / (rf * in_c + rf * L->channels));
    for (size_t j = 0; j < S->b_off - S->w_off; j++) params[j] = (float)(dc_layer_uniform(rng) * limit);
}

static dc_status conv_forward(dc_layer_run *r)
{
    const dc_layer_state *S = r->state;
    return dc_conv2d_forward(r->dev, r->in, r->params, S->w_off, S->b_off, r->spec->k, r->act, r->out);
}

static dc_status conv_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    const dc_layer_state *S = r->state;
    return dc_conv2d_backward(r->dev, r->in, r->out, dy, r->params, r->grads, S->w_off, S->b_off,
                              r->spec->k, r->act, dx);
}

static dc_status convT_forward(dc_layer_run *r)
{
    const dc_layer_state *S = r->state;
    return dc_convT2d_forward(r->dev, r->in, r->params, S->w_off, S->b_off, r->spec->k, r->act, r->out);
}

static dc_status convT_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    const dc_layer_state *S = r->state;
    return dc_convT2d_backward(r->dev, r->in, r->out, dy, r->params, r->grads, S->w_off, S->b_off,
                               r->spec->k, r->act, dx);
}

/* ---- 2×2 pools, stride 2, "valid" ----------------------------------------------------------- */

static void pool_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    (void)L;
    (void)a;
    snprintf(buf, len, "maxpool 2x2");
}

static void avgpool_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    (void)L;
    (void)a;
    snprintf(buf, len, "avgpool 2x2");
}

static dc_status pool_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                            dc_layer_state *o)
{
    (void)ref;
    if (h < 2 || w < 2)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: input %dx%d is smaller than 2x2", L->kind->token, h, w);
    o->c = c;
    o->h = h / 2; /* "valid": odd sizes floor, as Keras */
    o->w = w / 2;
    o->flops = 3.0 * c * o->h * o->w;
    return DC_OK;
}

/* Output pixel o reads inputs 2o and 2o+1: b bad input pixels make ceil(b/2) bad outputs. One
 * pooling level deeper: windows must start on multiples of 2^depth to see the same grid. */
static void pool_reach(const dc_layer_spec *L, dc_reach *r)
{
    (void)L;
    r->reach = (r->reach + 1) / 2;
    r->depth++;
    if (r->depth > r->max_depth) r->max_depth = r->depth;
}

static dc_status pool_forward(dc_layer_run *r) { return dc_maxpool2_forward(r->dev, r->in, r->out); }

static dc_status pool_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    return dx ? dc_maxpool2_backward(r->dev, r->in, dy, dx) : DC_OK;
}

static dc_status avgpool_forward(dc_layer_run *r) { return dc_avgpool2_forward(r->dev, r->in, r->out); }

static dc_status avgpool_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    (void)r;
    return dx ? dc_avgpool2_backward(r->dev, dy, dx) : DC_OK;
}

/* ---- nearest upsampling ×2 ------------------------------------------------------------------ */

static void up_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    (void)L;
    (void)a;
    snprintf(buf, len, "upsample 2x");
}

static dc_status up_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                          dc_layer_state *o)
{
    (void)L;
    (void)ref;
    o->c = c;
    o->h = h * 2;
    o->w = w * 2;
    return DC_OK;
}

static void up_reach(const dc_layer_spec *L, dc_reach *r)
{
    (void)L;
    r->reach *= 2;
    r->depth--;
}

static dc_status up_forward(dc_layer_run *r) { return dc_upsample2_forward(r->dev, r->in, r->out); }

static dc_status up_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    return dx ? dc_upsample2_backward(r->dev, dy, dx) : DC_OK;
}

/* ---- merges: add and concatenate an earlier layer's output ---------------------------------- */

static void add_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    snprintf(buf, len, "add %s", a->layers[L->ref].name);
}

static void cat_describe(const dc_layer_spec *L, const dc_arch *a, char *buf, size_t len)
{
    snprintf(buf, len, "concat %s", a->layers[L->ref].name);
}

static dc_status merge_check(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                             int same_c)
{
    if (ref->h != h || ref->w != w || (same_c && ref->c != c))
        return dc_fail(DC_ERR_INVALID_ARG, "%s: shapes differ: %dx%dx%d here, %dx%dx%d at the named layer",
                       L->kind->token, c, h, w, ref->c, ref->h, ref->w);
    return DC_OK;
}

static dc_status add_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                           dc_layer_state *o)
{
    DC_TRY(merge_check(L, c, h, w, ref, 1));
    o->c = c;
    o->h = h;
    o->w = w;
    o->flops = (double)c * h * w;
    return DC_OK;
}

static dc_status cat_shape(const dc_layer_spec *L, int c, int h, int w, const dc_layer_state *ref,
                           dc_layer_state *o)
{
    DC_TRY(merge_check(L, c, h, w, ref, 0));
    o->c = c + ref->c;
    o->h = h;
    o->w = w;
    return DC_OK;
}

/* The output differs wherever either branch does. */
static void merge_reach(const dc_layer_spec *L, dc_reach *r)
{
    if (r->reach_at[L->ref] > r->reach) r->reach = r->reach_at[L->ref];
}

static dc_status add_forward(dc_layer_run *r) { return dc_add_forward(r->dev, r->in, r->ref_out, r->out); }

/* Both branches get dy unchanged. */
static dc_status add_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    size_t count = dc_tensor_size(dy);
    DC_TRY(dc_copy(r->dev, r->ref_grad->buf, r->ref_grad->off, dy->buf, dy->off, count));
    return dx ? dc_copy(r->dev, dx->buf, dx->off, dy->buf, dy->off, count) : DC_OK;
}

static dc_status cat_forward(dc_layer_run *r) { return dc_concat_forward(r->dev, r->in, r->ref_out, r->out); }

static dc_status cat_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    return dc_concat_backward(r->dev, dy, dx, r->ref_grad);
}

/* ---- the registry --------------------------------------------------------------------------- */

enum { CONV_OPTS = DC_LAYER_OPT_CHANNELS | DC_LAYER_OPT_ACT | DC_LAYER_OPT_K };

static const dc_layer_kind registry[] = {
    {"conv", "k x k convolution, stride 1, \"same\" padding, C filters (k odd, default 3)",
     CONV_OPTS, conv_describe, conv_shape, conv_reach, conv_init, conv_forward, conv_backward},
    {"convT", "k x k transposed convolution, stride 2: doubles height and width",
     CONV_OPTS, convT_describe, convT_shape, convT_reach, conv_init, convT_forward, convT_backward},
    {"pool", "2x2 max pooling, stride 2 (odd sizes floor)",
     0, pool_describe, pool_shape, pool_reach, NULL, pool_forward, pool_backward},
    {"avgpool", "2x2 average pooling, stride 2 (odd sizes floor)",
     0, avgpool_describe, pool_shape, pool_reach, NULL, avgpool_forward, avgpool_backward},
    {"up", "2x nearest-neighbour upsampling",
     0, up_describe, up_shape, up_reach, NULL, up_forward, up_backward},
    {"add", "adds the output of the earlier layer @NAME (same shape)",
     DC_LAYER_OPT_REF, add_describe, add_shape, merge_reach, NULL, add_forward, add_backward},
    {"cat", "concatenates the channels of the earlier layer @NAME (same size)",
     DC_LAYER_OPT_REF, cat_describe, cat_shape, merge_reach, NULL, cat_forward, cat_backward},
};

int dc_layer_kind_count(void) { return (int)(sizeof registry / sizeof registry[0]); }

const dc_layer_kind *dc_layer_kind_at(int index)
{
    return index >= 0 && index < dc_layer_kind_count() ? &registry[index] : NULL;
}

const dc_layer_kind *dc_layer_kind_find(const char *token)
{
    for (int i = 0; i < dc_layer_kind_count(); i++)
        if (strcmp(registry[i].token, token) == 0) return &registry[i];
    return NULL;
}

void dc_layer_grammar(const dc_layer_kind *kind, char *buf, size_t len)
{
    snprintf(buf, len, "%s", kind->token);
    if (kind->options & DC_LAYER_OPT_CHANNELS) append(buf, len, "%s", ":C");
    if (kind->options & DC_LAYER_OPT_ACT) append(buf, len, "%s", "[:ACT]");
    if (kind->options & DC_LAYER_OPT_K) append(buf, len, "%s", "[:kK]");
    if (kind->options & DC_LAYER_OPT_REF) append(buf, len, "%s", ":NAME");
    append(buf, len, "%s", "[@NAME]");
}

void dc_layer_kind_list(unsigned options, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < dc_layer_kind_count(); i++)
        if ((registry[i].options & options) == options)
            append(buf, len, buf[0] ? ", %s" : "%s", registry[i].token);
}

/* splitmix64: a tiny, well-mixed seeded generator for initialisation. */
double dc_layer_uniform(uint64_t *rng)
{
    uint64_t z = (*rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = (double)(z >> 11) * (1.0 / 9007199254740992.0);
    return 2.0 * u - 1.0;
}
