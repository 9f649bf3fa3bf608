/* Reference hooks per layer kind and the host model interpreter (see ref_model.h). */
#include "ref_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_layers.h"
#include "ref_loss.h"

/* ---- hooks per kind ------------------------------------------------------------------------- */

static void same_shape(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow)
{
    (void)c;
    (void)ref_c;
    *oc = L->channels;
    *oh = h;
    *ow = w;
}

static void doubled_shape(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow)
{
    (void)c;
    (void)ref_c;
    *oc = L->channels;
    *oh = 2 * h;
    *ow = 2 * w;
}

static void halved_shape(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow)
{
    (void)L;
    (void)ref_c;
    *oc = c;
    *oh = h / 2;
    *ow = w / 2;
}

static void up_shape(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow)
{
    (void)L;
    (void)ref_c;
    *oc = c;
    *oh = 2 * h;
    *ow = 2 * w;
}

static void add_shape(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow)
{
    (void)L;
    (void)ref_c;
    *oc = c;
    *oh = h;
    *ow = w;
}

static void cat_shape(const dc_layer_spec *L, int c, int h, int w, int ref_c, int *oc, int *oh, int *ow)
{
    (void)L;
    *oc = c + ref_c;
    *oh = h;
    *ow = w;
}

static void conv_fwd(const ref_layer_io *o)
{
    ref_conv2d_forward(o->in, o->n, o->c, o->h, o->w, o->wt, o->b, o->spec->channels, o->spec->k, o->act, o->out, NULL);
}

static void conv_bwd(const ref_layer_io *o)
{
    ref_conv2d_backward(o->in, o->n, o->c, o->h, o->w, o->wt, o->spec->channels, o->spec->k, o->act, o->out, o->dy,
                        o->dwt, o->db, o->dx, NULL, NULL, NULL);
}

static void convT_fwd(const ref_layer_io *o)
{
    ref_convT2d_forward(o->in, o->n, o->c, o->h, o->w, o->wt, o->b, o->spec->channels, o->spec->k, o->act, o->out, NULL);
}

static void convT_bwd(const ref_layer_io *o)
{
    ref_convT2d_backward(o->in, o->n, o->c, o->h, o->w, o->wt, o->spec->channels, o->spec->k, o->act, o->out, o->dy,
                         o->dwt, o->db, o->dx, NULL, NULL, NULL);
}

static void pool_fwd(const ref_layer_io *o) { ref_maxpool2_forward(o->in, o->n, o->c, o->h, o->w, o->out); }

static void pool_bwd(const ref_layer_io *o)
{
    if (o->dx) ref_maxpool2_backward(o->in, o->n, o->c, o->h, o->w, o->dy, o->dx);
}

static void avgpool_fwd(const ref_layer_io *o) { ref_avgpool2_forward(o->in, o->n, o->c, o->h, o->w, o->out); }

static void avgpool_bwd(const ref_layer_io *o)
{
    if (o->dx) ref_avgpool2_backward(o->dy, o->n, o->c, o->h, o->w, o->dx);
}

static void up_fwd(const ref_layer_io *o) { ref_upsample2_forward(o->in, o->n, o->c, o->h, o->w, o->out); }

static void up_bwd(const ref_layer_io *o)
{
    if (o->dx) ref_upsample2_backward(o->dy, o->n, o->c, o->h, o->w, o->dx, NULL);
}

static size_t io_count(const ref_layer_io *o) { return (size_t)o->n * o->c * o->h * o->w; }

static void add_fwd(const ref_layer_io *o) { ref_add_forward(o->in, o->ref_out, io_count(o), o->out); }

static void add_bwd(const ref_layer_io *o)
{
    memcpy(o->ref_dx, o->dy, io_count(o) * sizeof(double));
    if (o->dx) memcpy(o->dx, o->dy, io_count(o) * sizeof(double));
}

static void cat_fwd(const ref_layer_io *o)
{
    ref_concat_forward(o->in, o->ref_out, o->n, o->c, o->ref_c, o->h * o->w, o->out);
}

static void cat_bwd(const ref_layer_io *o)
{
    ref_concat_backward(o->dy, o->n, o->c, o->ref_c, o->h * o->w, o->dx, o->ref_dx);
}

static const ref_kind kinds[] = {
    {"conv", same_shape, conv_fwd, conv_bwd, "conv:3:tanh,%s,conv:1:sigmoid", "conv:4:tanh:k5"},
    {"convT", doubled_shape, convT_fwd, convT_bwd, "conv:3:tanh,pool,%s,conv:1:sigmoid", "convT:4:tanh:k5"},
    {"pool", halved_shape, pool_fwd, pool_bwd, "conv:3:tanh,%s,conv:3:tanh,up,conv:1:sigmoid", "pool"},
    {"avgpool", halved_shape, avgpool_fwd, avgpool_bwd, "conv:3:tanh,%s,conv:3:tanh,up,conv:1:sigmoid", "avgpool"},
    {"up", up_shape, up_fwd, up_bwd, "conv:3:tanh,pool,conv:3:tanh,%s,conv:1:sigmoid", "up"},
    {"add", add_shape, add_fwd, add_bwd, "conv:3:tanh@a,conv:3:tanh,%s,conv:1:sigmoid", "add:a"},
    {"cat", cat_shape, cat_fwd, cat_bwd, "conv:3:tanh@a,conv:2:tanh,%s,conv:1:sigmoid", "cat:a"},
};

const ref_kind *ref_kind_find(const char *token)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].token, token) == 0) return &kinds[i];
    return NULL;
}

/* ---- whole models --------------------------------------------------------------------------- */

size_t ref_model_size(const ref_model *r, int i)
{
    return (size_t)r->n * r->plan[i].c * r->plan[i].h * r->plan[i].w;
}

dc_status ref_model_init(ref_model *r, const dc_arch *a, int n, int h, int w)
{
    return ref_model_init_c(r, a, 1, n, h, w);
}

dc_status ref_model_init_c(ref_model *r, const dc_arch *a, int c, int n, int h, int w)
{
    memset(r, 0, sizeof *r);
    r->arch_bound = *a;
    dc_arch_bind(&r->arch_bound, c);
    r->arch = a = &r->arch_bound;
    r->n = n;
    r->c = c;
    r->h = h;
    r->w = w;
    DC_TRY(dc_model_plan(a, c, h, w, r->plan, &r->nparams, NULL));
    for (int i = 0; i < a->nlayers; i++) {
        r->out[i] = calloc(ref_model_size(r, i), sizeof(double));
        r->grad[i] = calloc(ref_model_size(r, i), sizeof(double));
        r->skip[i] = calloc(ref_model_size(r, i), sizeof(double));
        if (!r->out[i] || !r->grad[i] || !r->skip[i]) abort();
    }
    return DC_OK;
}

void ref_model_free(ref_model *r)
{
    for (int i = 0; i < r->arch->nlayers; i++) {
        free(r->out[i]);
        free(r->grad[i]);
        free(r->skip[i]);
    }
}

static const ref_kind *hooks(const dc_layer_spec *L)
{
    const ref_kind *k = ref_kind_find(L->kind->token);
    if (!k) {
        fprintf(stderr, "tests/ref_model.c has no reference for layer kind '%s'\n", L->kind->token);
        abort();
    }
    return k;
}

/* Layer i's io, without the backward fields. */
static ref_layer_io layer_io(ref_model *r, int i, const double *p, const double *x)
{
    const dc_layer_spec *L = &r->arch->layers[i];
    const dc_layer_state *P = &r->plan[i];
    ref_layer_io o = {.spec = L, .n = r->n, .in = i ? r->out[i - 1] : x, .out = r->out[i]};
    o.c = i ? r->plan[i - 1].c : r->c;
    o.h = i ? r->plan[i - 1].h : r->h;
    o.w = i ? r->plan[i - 1].w : r->w;
    if (L->ref >= 0) {
        o.ref_out = r->out[L->ref];
        o.ref_c = r->plan[L->ref].c;
    }
    o.wt = p + P->w_off;
    o.b = p + P->b_off;
    o.act = i == r->arch->nlayers - 1 ? DC_ACT_NONE : L->act;
    return o;
}

const double *ref_model_forward(ref_model *r, const double *p, const double *x)
{
    r->x = x;
    for (int i = 0; i < r->arch->nlayers; i++) {
        ref_layer_io o = layer_io(r, i, p, x);
        hooks(&r->arch->layers[i])->forward(&o);
    }
    return r->out[r->arch->nlayers - 1];
}

double ref_model_loss(ref_model *r, dc_loss_kind loss, const double *y, int grad, double *head_out)
{
    int last = r->arch->nlayers - 1;
    size_t count = ref_model_size(r, last), per = count / (size_t)r->n;
    if (!r->arch->residual) {
        double sum = ref_loss_d(loss, r->arch->layers[last].act, r->out[last], y, count, per,
                                grad ? r->grad[last] : NULL, head_out);
        return sum / r->n;
    }
    /* The residual head: p = x - z, scored with no head; dz = -dp. */
    double *p = calloc(count ? count : 1, sizeof *p);
    if (!p) abort();
    for (size_t i = 0; i < count; i++) p[i] = r->x[i] - r->out[last][i];
    double sum = ref_loss_d(loss, DC_ACT_NONE, p, y, count, per, grad ? r->grad[last] : NULL, head_out);
    if (grad)
        for (size_t i = 0; i < count; i++) r->grad[last][i] = -r->grad[last][i];
    free(p);
    return sum / r->n;
}

void ref_model_backward(ref_model *r, const double *p, const double *x, double *g)
{
    for (int i = r->arch->nlayers - 1; i >= 0; i--) {
        const dc_layer_spec *L = &r->arch->layers[i];
        ref_layer_io o = layer_io(r, i, p, x);
        o.dwt = g + r->plan[i].w_off;
        o.db = g + r->plan[i].b_off;
        o.dy = r->grad[i];
        o.dx = i ? r->grad[i - 1] : NULL;
        if (L->ref >= 0) o.ref_dx = r->skip[L->ref];
        hooks(L)->backward(&o);
        if (i > 0 && r->plan[i - 1].merged_by >= 0)
            for (size_t j = 0; j < ref_model_size(r, i - 1); j++) o.dx[j] += r->skip[i - 1][j];
    }
}

/* ---- device against reference --------------------------------------------------------------- */

static double normwise(const float *got, const double *want, size_t count)
{
    double scale = 1e-30, err = 0;
    for (size_t i = 0; i < count; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < count; i++) err = fmax(err, fabs(got[i] - want[i]));
    return isfinite(err) ? err / scale : INFINITY;
}

/* Central differences of the reference loss against its gradient g, normwise, on about 60
 * parameters spread over all layers. */
static double fd_error(ref_model *r, double *p, const double *x, const double *y, dc_loss_kind loss,
                       const double *g)
{
    double worst = 0, step = 1e-6, scale = 1e-30;
    size_t np = r->nparams;
    for (size_t t = 0; t < np; t++) scale = fmax(scale, fabs(g[t]));
    for (size_t t = 0; t < np; t += 1 + np / 60) {
        double keep = p[t];
        p[t] = keep + step;
        ref_model_forward(r, p, x);
        double lp = ref_model_loss(r, loss, y, 0, NULL);
        p[t] = keep - step;
        ref_model_forward(r, p, x);
        double lm = ref_model_loss(r, loss, y, 0, NULL);
        p[t] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2 * step) - g[t]) / scale);
    }
    return worst;
}

static double uniform(uint64_t *rng, double lo, double hi)
{
    return lo + (hi - lo) * 0.5 * (dc_layer_uniform(rng) + 1.0);
}

dc_status ref_check_model(dc_device *dev, uint64_t *rng, const char *spec, int n, int h, int w,
                          dc_loss_kind loss, int fd, ref_model_check *out)
{
    return ref_check_model_c(dev, rng, spec, 1, n, h, w, loss, fd, out);
}

dc_status ref_check_model_c(dc_device *dev, uint64_t *rng, const char *spec, int c, int n, int h, int w,
                            dc_loss_kind loss, int fd, ref_model_check *out)
{
    dc_arch a;
    DC_TRY(dc_arch_parse(spec, &a));
    ref_model r;
    DC_TRY(ref_model_init_c(&r, &a, c, n, h, w));
    size_t np = r.nparams, px = (size_t)n * c * h * w;
    double *p = malloc(np * sizeof *p), *g = calloc(np, sizeof *g), *x = malloc(px * sizeof *x),
           *y = malloc(px * sizeof *y), *want = malloc(px * sizeof *want);
    float *pf = malloc(np * sizeof *pf), *xf = malloc(px * sizeof *xf), *yf = malloc(px * sizeof *yf),
          *gf = malloc(np * sizeof *gf), *zf = malloc(px * sizeof *zf);
    if (!p || !g || !x || !y || !want || !pf || !xf || !yf || !gf || !zf) abort();
    for (size_t i = 0; i < np; i++) p[i] = pf[i] = (float)uniform(rng, -0.5, 0.5);
    for (size_t i = 0; i < px; i++) {
        x[i] = xf[i] = (float)uniform(rng, 0, 1);
        y[i] = yf[i] = (float)uniform(rng, 0, 1);
    }
    ref_model_forward(&r, p, x);
    out->loss = ref_model_loss(&r, loss, y, 1, want);
    ref_model_backward(&r, p, x, g);
    out->fd_err = -1;
    if (fd) {
        out->fd_err = fd_error(&r, p, x, y, loss, g);
        ref_model_forward(&r, p, x); /* restore the activations */
    }

    dc_model *m = NULL;
    dc_tensor xt = {0}, yt = {0};
    dc_accum acc = {0};
    double dev_loss = NAN;
    dc_status s = dc_model_create(dev, &a, c, h, w, n, &m);
    if (!s) s = dc_tensor_create(dev, n, c, h, w, DC_LAYOUT_NCHW, &xt);
    if (!s) s = dc_tensor_create(dev, n, c, h, w, DC_LAYOUT_NCHW, &yt);
    if (!s) s = dc_accum_create(dev, 1, &acc);
    if (!s) s = dc_tensor_write(dev, &xt, xf);
    if (!s) s = dc_tensor_write(dev, &yt, yf);
    if (!s) s = dc_model_set_params(m, pf);
    if (!s) s = dc_model_forward(m, &xt, n);
    dc_tensor z = m ? dc_model_logits(m, n) : (dc_tensor){0};
    if (!s) s = dc_tensor_read(dev, &z, zf);
    if (!s) s = dc_model_loss(m, loss, &yt, n, 1, NULL, &acc, 0);
    if (!s) s = dc_model_backward(m, &xt, n);
    if (!s) s = dc_accum_read(dev, &acc, &dev_loss);
    if (!s && clEnqueueReadBuffer(dev->queue, m->grads, CL_TRUE, 0, np * sizeof(float), gf, 0, NULL, NULL))
        s = dc_fail(DC_ERR_OPENCL, "reading gradients");
    /* Then the output, head applied, against the reference's (overwrites the logits). */
    dc_tensor pred;
    float *pf2 = malloc(px * sizeof *pf2);
    if (!pf2) abort();
    if (!s) s = dc_model_predict(m, &xt, n, &pred);
    if (!s) s = dc_tensor_read(dev, &pred, pf2);
    if (!s) {
        dev_loss /= n;
        out->out_err = fmax(normwise(zf, r.out[a.nlayers - 1], px), normwise(pf2, want, px));
        out->grad_err = normwise(gf, g, np);
        out->loss_err = fabs(dev_loss - out->loss) / fmax(fabs(out->loss), 1e-12);
    }
    dc_accum_release(&acc);
    dc_tensor_release(&xt);
    dc_tensor_release(&yt);
    dc_model_destroy(m);
    ref_model_free(&r);
    free(p); free(g); free(x); free(y); free(want); free(pf); free(xf); free(yf); free(gf); free(zf); free(pf2);
    return s;
}
