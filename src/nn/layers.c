/* The layer registry (daecl/layer.h): one descriptor per layer kind, and nothing else knows the
 * kinds. Each rule here is the kind's whole story: shape, tiling reach, parameters, forward,
 * backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/export.h"
#include "daecl/model.h"

/* Largest height or width of any layer output: keeps every size computation far from int
 * overflow (the image reader allows 2^20 per side). */
#define DC_MODEL_MAX_SIDE (1 << 21)

/* Layers that double the size: refuse beyond DC_MODEL_MAX_SIDE instead of overflowing int
 * (found by tests/fuzz/fuzz_arch: "up" twenty times wrapped). */
static dc_status check_doubling(const char *what, int h, int w)
{
    if (h > DC_MODEL_MAX_SIDE / 2 || w > DC_MODEL_MAX_SIDE / 2)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: a %dx%d input would grow beyond %d pixels per side", what, h, w,
                       DC_MODEL_MAX_SIDE);
    return DC_OK;
}

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
    DC_TRY(check_doubling("convT", h, w));
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
    if (r->pool_folded && r->pool_out)
        return dc_conv2d_pooled_out_forward(r->dev, r->in, r->params, S->w_off, S->b_off,
                                            r->spec->k, r->act, r->out, r->pool_arg);
    if (r->pool_folded)
        return dc_conv2d_pooled_forward(r->dev, r->in, r->params, S->w_off, S->b_off, r->spec->k,
                                        r->act, r->out);
    if (r->pool_out)
        return dc_conv2d_maxpool_forward(r->dev, r->in, r->params, S->w_off, S->b_off,
                                         r->spec->k, r->act, r->out);
    if (r->up_grad)
        return dc_conv2d_upgrad_forward(r->dev, r->up_folded ? NULL : r->in, r->up_src,
                                        r->params, S->w_off, S->b_off, r->spec->k, r->act, r->out);
    if (r->up_folded)
        return dc_conv2d_upsampled_forward(r->dev, r->in, r->params, S->w_off, S->b_off,
                                           r->spec->k, r->act, r->out);
    return dc_conv2d_forward(r->dev, r->in, r->params, S->w_off, S->b_off, r->spec->k, r->act, r->out);
}

static int conv_pool_foldable(dc_device *dev, const dc_layer_spec *L, int c, int h, int w)
{
    return dc_conv2d_pooled_fits(dev, c, L->channels, h, w, L->k);
}

static int conv_up_foldable(dc_device *dev, const dc_layer_spec *L, int c, int h, int w)
{
    return dc_conv2d_upsampled_fits(dev, c, L->channels, h, w, L->k);
}

static int conv_pool_out_foldable(dc_device *dev, const dc_layer_spec *L, int c, int h, int w)
{
    return dc_conv2d_maxpool_fits(dev, c, L->channels, h, w, L->k);
}

static int conv_up_grad_foldable(dc_device *dev, const dc_layer_spec *L, int c, int h, int w)
{
    return dc_conv2d_upgrad_fits(dev, c, L->channels, h, w, L->k);
}

static int conv_up_grad_in_place(dc_device *dev, const dc_layer_spec *L, int c, int h, int w)
{
    return dc_conv2d_upgrad_in_place_fits(dev, c, L->channels, h, w, L->k);
}

static int conv_pooled_out_trainable(dc_device *dev, const dc_layer_spec *L, int c, int h, int w)
{
    return dc_conv2d_pooled_out_fits(dev, c, L->channels, h, w, L->k);
}

static dc_status conv_backward_pooled(dc_layer_run *r, const dc_tensor *dpool,
                                     const dc_tensor *skip)
{
    const dc_layer_state *S = r->state;
    if (r->pool_out) /* out is the pool's output */
        return dc_conv2d_pooled_out_backward(r->dev, r->in, r->out, r->pool_arg, dpool, r->grads,
                                             S->w_off, S->b_off, r->spec->k, r->act);
    return dc_conv2d_pooled_backward(r->dev, r->in, r->out, dpool, skip, r->grads, S->w_off,
                                     S->b_off, r->spec->k, r->act);
}

static dc_status conv_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    const dc_layer_state *S = r->state;
    if (r->up_grad) /* dx: the upsampling's input gradient */
        return dc_conv2d_upgrad_backward(r->dev, r->up_folded ? NULL : r->in, r->up_src, r->out,
                                         dy, r->params, r->grads, S->w_off, S->b_off, r->spec->k,
                                         r->act, dx);
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

/* Weight [O,I,K,K] and bias [O] as the .npz's parameters; the ONNX node writes `pre` (the
 * activation then writes the layer's output), or the output itself when linear. */
static dc_status conv_params_export(dc_export_layer *x, char *wname, char *bname, size_t len)
{
    const dc_layer_spec *L = x->spec;
    const dc_layer_state *S = x->state;
    int64_t wd[4] = {L->channels, x->in_c, L->k, L->k}, bd[1] = {L->channels};
    DC_TRY(dc_export_param(x, "weight", wd, 4, x->params + S->w_off));
    DC_TRY(dc_export_param(x, "bias", bd, 1, x->params + S->b_off));
    dc_export_name(x, "weight", wname, len);
    dc_export_name(x, "bias", bname, len);
    return dc_export_initializer(x->g, bname, bd, 1, x->params + S->b_off);
}

/* Conv, kernel k, stride 1, pads (k-1)/2: ONNX's Conv is the same cross-correlation. */
static dc_status conv_export(dc_export_layer *x)
{
    const dc_layer_spec *L = x->spec;
    char wname[80], bname[80], pre[80];
    DC_TRY(conv_params_export(x, wname, bname, sizeof wname));
    int64_t wd[4] = {L->channels, x->in_c, L->k, L->k};
    DC_TRY(dc_export_initializer(x->g, wname, wd, 4, x->params + x->state->w_off));
    dc_export_name(x, "pre", pre, sizeof pre);
    const char *in[3] = {x->in, wname, bname};
    DC_TRY(dc_export_node(x->g, "Conv", in, 3, L->act == DC_ACT_NONE ? x->out : pre));
    int64_t p = (L->k - 1) / 2, kk[2] = {L->k, L->k}, pads[4] = {p, p, p, p}, ones[2] = {1, 1};
    dc_export_attr_ints(x->g, "kernel_shape", kk, 2);
    dc_export_attr_ints(x->g, "pads", pads, 4);
    dc_export_attr_ints(x->g, "strides", ones, 2);
    return L->act == DC_ACT_NONE ? DC_OK : dc_export_act(x->g, L->act, pre, x->out);
}

/* ConvTranspose, stride 2, pads pt on every side: (h-1)*2 + k - 2pt = 2h+1 rows for odd k >= 3,
 * whose first 2h are ours (ops.h), so a Slice drops the last row and column; for k = 1,
 * output_padding 1 gives 2h. ONNX's weight layout is [I,O,K,K] (the .npz keeps [O,I,K,K]). */
static dc_status convT_export(dc_export_layer *x)
{
    const dc_layer_spec *L = x->spec;
    int O = L->channels, I = x->in_c, kk2 = L->k * L->k;
    char wname[80], bname[80], pre[80], full[80];
    DC_TRY(conv_params_export(x, wname, bname, sizeof wname));
    float *t = malloc((size_t)O * I * kk2 * sizeof *t);
    if (!t) return dc_fail(DC_ERR_NOMEM, "out of memory");
    const float *wsrc = x->params + x->state->w_off;
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) memcpy(t + ((size_t)i * O + o) * kk2, wsrc + ((size_t)o * I + i) * kk2, (size_t)kk2 * sizeof *t);
    int64_t wd[4] = {I, O, L->k, L->k};
    dc_status s = dc_export_initializer(x->g, wname, wd, 4, t);
    free(t);
    DC_TRY(s);
    dc_export_name(x, "pre", pre, sizeof pre);
    dc_export_name(x, "full", full, sizeof full);
    const char *act_in = L->act == DC_ACT_NONE ? x->out : pre;
    const char *in[3] = {x->in, wname, bname};
    DC_TRY(dc_export_node(x->g, "ConvTranspose", in, 3, L->k == 1 ? act_in : full));
    int64_t pt = (L->k > 2 ? L->k - 2 : 0) / 2, kk[2] = {L->k, L->k}, pads[4] = {pt, pt, pt, pt}, twos[2] = {2, 2},
            ones[2] = {1, 1};
    dc_export_attr_ints(x->g, "kernel_shape", kk, 2);
    dc_export_attr_ints(x->g, "pads", pads, 4);
    dc_export_attr_ints(x->g, "strides", twos, 2);
    if (L->k == 1) dc_export_attr_ints(x->g, "output_padding", ones, 2);
    if (L->k > 1) {
        char starts[80], ends[80], axes[80];
        dc_export_name(x, "slice_starts", starts, sizeof starts);
        dc_export_name(x, "slice_ends", ends, sizeof ends);
        dc_export_name(x, "slice_axes", axes, sizeof axes);
        int64_t two[1] = {2}, zero[2] = {0, 0}, minus1[2] = {-1, -1}, hw[2] = {2, 3};
        DC_TRY(dc_export_initializer_i64(x->g, starts, two, 1, zero));
        DC_TRY(dc_export_initializer_i64(x->g, ends, two, 1, minus1));
        DC_TRY(dc_export_initializer_i64(x->g, axes, two, 1, hw));
        const char *sin[4] = {full, starts, ends, axes};
        DC_TRY(dc_export_node(x->g, "Slice", sin, 4, act_in));
    }
    return L->act == DC_ACT_NONE ? DC_OK : dc_export_act(x->g, L->act, pre, x->out);
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
    return dx ? dc_maxpool2_backward(r->dev, r->in, dy, dx, r->dx_add) : DC_OK;
}

static dc_status avgpool_forward(dc_layer_run *r) { return dc_avgpool2_forward(r->dev, r->in, r->out); }

static dc_status avgpool_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    (void)r;
    return dx ? dc_avgpool2_backward(r->dev, dy, dx) : DC_OK;
}

/* MaxPool / AveragePool 2x2, stride 2, no padding: floors odd sizes as ours. */
static dc_status pool2_export(dc_export_layer *x, const char *op)
{
    DC_TRY(dc_export_node(x->g, op, &x->in, 1, x->out));
    int64_t twos[2] = {2, 2};
    dc_export_attr_ints(x->g, "kernel_shape", twos, 2);
    dc_export_attr_ints(x->g, "strides", twos, 2);
    return DC_OK;
}

static dc_status pool_export(dc_export_layer *x) { return pool2_export(x, "MaxPool"); }

static dc_status avgpool_export(dc_export_layer *x) { return pool2_export(x, "AveragePool"); }

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
    DC_TRY(check_doubling("up", h, w));
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

/* Resize by scales [1,1,2,2], nearest, asymmetric coordinates, floor: output (i,j) reads
 * input (floor(i/2), floor(j/2)). */
static dc_status up_export(dc_export_layer *x)
{
    char scales[80];
    dc_export_name(x, "scales", scales, sizeof scales);
    int64_t four[1] = {4};
    const float sc[4] = {1, 1, 2, 2};
    DC_TRY(dc_export_initializer(x->g, scales, four, 1, sc));
    const char *in[3] = {x->in, "", scales};
    DC_TRY(dc_export_node(x->g, "Resize", in, 3, x->out));
    dc_export_attr_string(x->g, "mode", "nearest");
    dc_export_attr_string(x->g, "coordinate_transformation_mode", "asymmetric");
    dc_export_attr_string(x->g, "nearest_mode", "floor");
    return DC_OK;
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
/* The named layer's share is dy itself (ref_share_is_dy): the model reads it from there. */
static dc_status add_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    return dx ? dc_copy(r->dev, dx->buf, dx->off, dy->buf, dy->off, dc_tensor_size(dy)) : DC_OK;
}

static dc_status cat_forward(dc_layer_run *r) { return dc_concat_forward(r->dev, r->in, r->ref_out, r->out); }

static dc_status cat_backward(dc_layer_run *r, dc_tensor *dy, dc_tensor *dx)
{
    return dc_concat_backward(r->dev, dy, dx, r->ref_grad);
}

/* Add; Concat on the channel axis, the running tensor's channels first (dc_concat_forward). */
static dc_status add_export(dc_export_layer *x)
{
    const char *in[2] = {x->in, x->ref};
    return dc_export_node(x->g, "Add", in, 2, x->out);
}

static dc_status cat_export(dc_export_layer *x)
{
    const char *in[2] = {x->in, x->ref};
    DC_TRY(dc_export_node(x->g, "Concat", in, 2, x->out));
    dc_export_attr_int(x->g, "axis", 1);
    return DC_OK;
}

/* ---- the registry --------------------------------------------------------------------------- */

enum { CONV_OPTS = DC_LAYER_OPT_CHANNELS | DC_LAYER_OPT_ACT | DC_LAYER_OPT_K };

/* Designated fields: a kind leaves out the optional ones (NULL, 0). */
static const dc_layer_kind registry[] = {
    {.token = "conv",
     .help = "k x k convolution, stride 1, \"same\" padding, C filters (k odd, default 3)",
     .options = CONV_OPTS, .describe = conv_describe, .shape = conv_shape, .reach = conv_reach,
     .init = conv_init, .forward = conv_forward, .backward = conv_backward,
     .export_onnx = conv_export, .pool_foldable = conv_pool_foldable,
     .backward_pooled = conv_backward_pooled, .up_foldable = conv_up_foldable,
     .pool_out_foldable = conv_pool_out_foldable, .pooled_out_trainable = conv_pooled_out_trainable,
     .up_grad_foldable = conv_up_grad_foldable, .up_grad_in_place = conv_up_grad_in_place},
    {.token = "convT", .help = "k x k transposed convolution, stride 2: doubles height and width",
     .options = CONV_OPTS, .describe = convT_describe, .shape = convT_shape, .reach = convT_reach,
     .init = conv_init, .forward = convT_forward, .backward = convT_backward,
     .export_onnx = convT_export},
    {.token = "pool", .help = "2x2 max pooling, stride 2 (odd sizes floor)",
     .describe = pool_describe, .shape = pool_shape, .reach = pool_reach, .forward = pool_forward,
     .backward = pool_backward, .export_onnx = pool_export, .is_maxpool2 = 1,
     .backward_adds = 1,
     .backward_keeps_dy = 1},
    {.token = "avgpool", .help = "2x2 average pooling, stride 2 (odd sizes floor)",
     .describe = avgpool_describe, .shape = pool_shape, .reach = pool_reach,
     .forward = avgpool_forward, .backward = avgpool_backward, .export_onnx = avgpool_export,
     .backward_keeps_dy = 1},
    {.token = "up", .help = "2x nearest-neighbour upsampling", .describe = up_describe,
     .shape = up_shape, .reach = up_reach, .forward = up_forward, .backward = up_backward,
     .export_onnx = up_export, .backward_keeps_dy = 1, .is_upsample2 = 1},
    {.token = "add", .help = "adds the output of the earlier layer @NAME (same shape)",
     .options = DC_LAYER_OPT_REF, .describe = add_describe, .shape = add_shape,
     .reach = merge_reach, .forward = add_forward, .backward = add_backward,
     .export_onnx = add_export, .ref_share_is_dy = 1, .backward_keeps_dy = 1},
    {.token = "cat", .help = "concatenates the channels of the earlier layer @NAME (same size)",
     .options = DC_LAYER_OPT_REF, .describe = cat_describe, .shape = cat_shape,
     .reach = merge_reach, .forward = cat_forward, .backward = cat_backward,
     .export_onnx = cat_export, .backward_keeps_dy = 1},
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
