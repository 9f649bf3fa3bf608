/* The model graph: shape planning, parameter layout, forward and backward over the layers, and
 * the output head. What each layer kind does is its registry descriptor's (src/nn/layers.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/model.h"

static dc_tensor view_n(const dc_tensor *t, int n)
{
    dc_tensor v = *t;
    v.n = n;
    v.owns_buf = 0;
    return v;
}

/* ---- planning ---------------------------------------------------------------------------- */

dc_status dc_model_plan(const dc_arch *arch, int in_c, int h, int w, dc_layer_state *layers,
                        size_t *nparams, double *flops)
{
    if (in_c <= 0 || h <= 0 || w <= 0)
        return dc_fail(DC_ERR_INVALID_ARG, "model input %dx%dx%d is empty", in_c, h, w);
    dc_arch bound = *arch;
    dc_arch_bind(&bound, in_c);
    arch = &bound;
    int c = in_c, ch = h, cw = w;
    size_t np = 0;
    double fl = 0;
    for (int i = 0; i < arch->nlayers; i++) {
        const dc_layer_spec *L = &arch->layers[i];
        dc_layer_state *S = &layers[i];
        memset(S, 0, sizeof *S);
        S->merged_by = -1;
        const dc_layer_state *ref = L->ref >= 0 ? &layers[L->ref] : NULL;
        dc_status s = L->kind->shape(L, c, ch, cw, ref, S);
        if (s) return dc_fail(s, "layer %d (%s) on %dx%dx%d input: %s", i + 1, L->kind->token, c, ch, cw,
                              dc_error_detail());
        if (ref) layers[L->ref].merged_by = i;
        S->w_off = np; /* the shape rule's b_off is relative to the layer's weights */
        S->b_off += np;
        np += S->nparams;
        fl += S->flops;
        c = S->c;
        ch = S->h;
        cw = S->w;
    }
    if (c != in_c)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "this architecture maps %d-channel images to %d channels; a denoiser must keep them "
                       "(end the spec with conv:C, C being the input's channel count)",
                       in_c, c);
    if (ch != h || cw != w)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "this architecture maps %dx%dx%d images to %dx%dx%d; a denoiser must keep the size "
                       "(with two pool layers, height and width must be multiples of 4)",
                       in_c, h, w, c, ch, cw);
    if (nparams) *nparams = np;
    if (flops) *flops = fl;
    return DC_OK;
}

/* ---- device state ------------------------------------------------------------------------ */

/* Whether layer i's output gradient is the next layer's, shared: the next layer is a merge that
 * passes its gradient on unchanged (ref_share_is_dy), i's backward only reads it, and no merge
 * reads i's output. The merge then copies nothing and i has no gradient buffer. */
static int grad_shared_with_next(const dc_model *m, int i)
{
    if (i + 1 >= m->arch.nlayers || m->layers[i].merged_by >= 0) return 0;
    return m->arch.layers[i + 1].kind->ref_share_is_dy && m->arch.layers[i].kind->backward_keeps_dy;
}

/* The layer whose gradient tensor holds layer i's output gradient. */
static int grad_owner(const dc_model *m, int i)
{
    while (grad_shared_with_next(m, i)) i++;
    return i;
}

static const dc_tensor *grad_of(const dc_model *m, int i)
{
    return &m->layers[grad_owner(m, i)].grad;
}

/* ---- buffers shared by lifetime ---------------------------------------------------------- */

/* A tensor to place: its floats and the steps it lives through, both ends included. */
typedef struct lifetime {
    size_t floats;
    int first, last;
} lifetime;

static int overlaps(const lifetime *a, const lifetime *b)
{
    return a->first <= b->last && b->first <= a->last;
}

/* Tensors whose lifetimes never overlap share a buffer: largest first, each takes the first
 * buffer whose tenants it does not overlap, else a new one of its size (TensorFlow Lite's
 * greedy-by-size plan; classic inference needs 42 floats per input pixel against 101 unshared).
 * slot[k] gets tensor k's buffer; returns the number of buffers, their sizes in size[]. */
static int place_lifetimes(const lifetime *t, int n, int *slot, size_t *size)
{
    int order[DC_MAX_LAYERS], nslots = 0;
    for (int k = 0; k < n; k++) order[k] = k;
    for (int a = 1; a < n; a++) /* insertion sort, largest first (stable) */
        for (int b = a; b > 0 && t[order[b]].floats > t[order[b - 1]].floats; b--) {
            int x = order[b];
            order[b] = order[b - 1];
            order[b - 1] = x;
        }
    for (int a = 0; a < n; a++) {
        int k = order[a], s = 0;
        for (; s < nslots; s++) {
            int clash = 0;
            for (int b = 0; b < a && !clash; b++) clash = slot[order[b]] == s && overlaps(&t[order[b]], &t[k]);
            if (!clash) break;
        }
        if (s == nslots) size[nslots++] = t[k].floats;
        slot[k] = s;
    }
    return nslots;
}

/* Create the shared buffers and point each tensor (batch images of its shape, NCHW) at its
 * own; each tensor holds a reference, so releasing them all frees the buffers. */
static dc_status place_tensors(dc_model *m, dc_tensor *const *tensors, const dc_layer_state *const *shapes,
                               const lifetime *t, int n, const char *what)
{
    int slot[DC_MAX_LAYERS];
    size_t size[DC_MAX_LAYERS];
    for (int k = 0; k < n; k++) /* each would fit on its own: the same errors as unshared */
        DC_TRY(dc_tensor_check_alloc(m->dev, m->batch, shapes[k]->c, shapes[k]->h, shapes[k]->w, DC_LAYOUT_NCHW, NULL));
    int nslots = place_lifetimes(t, n, slot, size);
    for (int s = 0; s < nslots; s++) {
        cl_mem buf;
        DC_TRY(dc_buffer_create(m->dev, size[s], what, &buf));
        for (int k = 0; k < n; k++) {
            if (slot[k] != s) continue;
            clRetainMemObject(buf);
            *tensors[k] = dc_tensor_view(buf, 0, m->batch, shapes[k]->c, shapes[k]->h, shapes[k]->w, DC_LAYOUT_NCHW);
            tensors[k]->owns_buf = 1;
        }
        clReleaseMemObject(buf);
    }
    return DC_OK;
}

/* Whether layer i has an output gradient tensor of its own: not when it is the next layer's
 * (shared), nor layer 0's when a folded pool never writes it. */
static int has_grad_buffer(const dc_model *m, int i)
{
    if (i + 1 < m->arch.nlayers && m->up_grad[i + 1]) return 0; /* a folded upsampling */
    return (i > 0 || !m->pool_folded) && !grad_shared_with_next(m, i);
}

static void extend(lifetime *t, int step)
{
    if (step > t->last) t->last = step;
}

/* Training: backward steps count up from the loss (step 0), layer i's backward is step
 * nlayers - i. Layer k's gradient is written by layer k+1's backward (the loss for the last
 * layer; layer k+2's where that folds the upsampling k+1) and read by the backward of every
 * layer whose gradient it holds, and, where a merge passes its gradient to a skip path, by
 * the backward that adds that share. */
static void grad_lifetimes(const dc_model *m, lifetime *t)
{
    int L = m->arch.nlayers;
    for (int k = 0; k < L; k++) {
        const dc_layer_state *S = &m->layers[k];
        int writer = k + 2 < L && m->up_grad[k + 2] ? k + 2 : k + 1;
        t[k].floats = (size_t)m->batch * S->c * S->h * S->w;
        t[k].first = t[k].last = k == L - 1 ? 0 : L - writer;
    }
    for (int i = 0; i < L; i++) {
        if (i == 0 && m->pool_folded) continue;               /* reads the pool's, below */
        if (i + 1 < L && m->up_grad[i + 1]) continue;         /* a folded upsampling */
        int reader = i == 1 && m->pool_folded ? 0 : i;         /* layer 0 runs the pool's backward */
        extend(&t[grad_owner(m, i)], L - reader);
        int a = m->layers[i].merged_by;
        if (a >= 0 && m->arch.layers[a].kind->ref_share_is_dy)
            extend(&t[grad_owner(m, a)], L - (i + 1));
    }
    if (m->pool_folded && m->layers[0].merged_by >= 0 &&
        m->arch.layers[m->layers[0].merged_by].kind->ref_share_is_dy)
        extend(&t[grad_owner(m, m->layers[0].merged_by)], L);
}

/* An inference model's folds on dev (NULL: none): up[i] = 1 where layer i reads the 2x
 * upsampling before it in place, pool_out[i] = 1 where layer i writes the 2x2 max pool after it.
 * Only where nothing else reads the tensor that goes (no merge), and never both for one layer. */
static void inference_folds(dc_device *dev, const dc_arch *arch, int in_c,
                            const dc_layer_state *layers, int *up, int *pool_out)
{
    for (int i = 0; i < arch->nlayers; i++) {
        const dc_layer_kind *kind = arch->layers[i].kind;
        const dc_layer_state *prev = i > 0 ? &layers[i - 1] : NULL;
        up[i] = dev && prev && arch->layers[i - 1].kind->is_upsample2 && prev->merged_by < 0 &&
                kind->up_foldable && kind->up_foldable(dev, &arch->layers[i], prev->c, prev->h, prev->w);
        int c = prev ? prev->c : in_c; /* input shape; a pool_out kind keeps h and w */
        pool_out[i] = dev && !up[i] && i + 1 < arch->nlayers &&
                      arch->layers[i + 1].kind->is_maxpool2 && layers[i].merged_by < 0 &&
                      kind->pool_out_foldable &&
                      kind->pool_out_foldable(dev, &arch->layers[i], c, layers[i].h, layers[i].w);
    }
}

/* Inference: layer i's output lives from its forward (step i) to the last layer that reads it
 * (the next one, and a merge that references it); the last layer's, the logits, to the end.
 * An upsampling folded into the next layer has none (0 floats), and its input lives on to
 * that layer; a layer that writes the max pool after it has none, and the pool's output is
 * written at that layer's step. */
static void output_lifetimes(const dc_arch *arch, const dc_layer_state *layers, const int *folded,
                             const int *pool_out, int batch, lifetime *t)
{
    int L = arch->nlayers;
    for (int i = 0; i < L; i++) {
        t[i].floats = (size_t)batch * layers[i].c * layers[i].h * layers[i].w;
        t[i].first = i;
        t[i].last = i == L - 1 ? L : i + 1;
        if (layers[i].merged_by > t[i].last) t[i].last = layers[i].merged_by;
    }
    for (int i = 1; i < L; i++) {
        if (!folded[i]) continue;
        t[i - 1].floats = 0;
        if (i >= 2 && t[i - 2].last < i) t[i - 2].last = i;
    }
    for (int i = 0; i + 1 < L; i++) { /* the pool's output is written at step i */
        if (!pool_out[i]) continue;
        t[i].floats = 0;
        t[i + 1].first = i;
    }
}

/* The lifetimes with floats, compacted (index[k]: the layer of entry k); their count. */
static int live_outputs(const lifetime *all, int L, lifetime *t, int *index)
{
    int n = 0;
    for (int i = 0; i < L; i++) {
        if (!all[i].floats) continue;
        index[n] = i;
        t[n++] = all[i];
    }
    return n;
}

size_t dc_model_inference_floats(dc_device *dev, const dc_arch *arch, int in_c,
                                 const dc_layer_state *layers)
{
    lifetime all[DC_MAX_LAYERS], t[DC_MAX_LAYERS];
    int up[DC_MAX_LAYERS], pool_out[DC_MAX_LAYERS], index[DC_MAX_LAYERS], slot[DC_MAX_LAYERS];
    size_t size[DC_MAX_LAYERS], sum = 0;
    inference_folds(dev, arch, in_c, layers, up, pool_out);
    output_lifetimes(arch, layers, up, pool_out, 1, all);
    int nslots = place_lifetimes(t, live_outputs(all, arch->nlayers, t, index), slot, size);
    for (int s = 0; s < nslots; s++) sum += size[s];
    return sum;
}

/* A training model keeps every output (the backward reads them) and shares the gradients'
 * buffers; an inference model shares the outputs'. */
static dc_status alloc_activations(dc_model *m, int training)
{
    int L = m->arch.nlayers, n = 0;
    dc_tensor *tensors[DC_MAX_LAYERS];
    const dc_layer_state *shapes[DC_MAX_LAYERS];
    lifetime all[DC_MAX_LAYERS], t[DC_MAX_LAYERS];
    if (!training) {
        int index[DC_MAX_LAYERS];
        output_lifetimes(&m->arch, m->layers, m->up_folded, m->pool_out, m->batch, all);
        n = live_outputs(all, L, t, index);
        for (int k = 0; k < n; k++) {
            tensors[k] = &m->layers[index[k]].out;
            shapes[k] = &m->layers[index[k]];
        }
        return place_tensors(m, tensors, shapes, t, n, "activations");
    }
    grad_lifetimes(m, all);
    for (int i = 0; i < L; i++) {
        dc_layer_state *S = &m->layers[i];
        int read_in_place = i + 1 < L && m->up_folded[i + 1]; /* an upsampling: never written */
        if (m->pool_out[i]) /* the pool's output is written, and each window's argmax */
            DC_TRY(dc_tensor_create(m->dev, m->batch, S->c, S->h / 2, S->w / 2, DC_LAYOUT_NCHW,
                                    &S->pool_arg));
        else if (!read_in_place)
            DC_TRY(dc_tensor_create(m->dev, m->batch, S->c, S->h, S->w, DC_LAYOUT_NCHW, &S->out));
        if (S->merged_by >= 0 && !m->arch.layers[S->merged_by].kind->ref_share_is_dy)
            DC_TRY(dc_tensor_create(m->dev, m->batch, S->c, S->h, S->w, DC_LAYOUT_NCHW, &S->skip_grad));
        if (has_grad_buffer(m, i)) {
            tensors[n] = &S->grad;
            shapes[n] = S;
            t[n++] = all[i];
        }
    }
    return place_tensors(m, tensors, shapes, t, n, "output gradients");
}

/* Whether layer 0 can fold the backward of a 2x2 max pool after it (dc_model.pool_folded): its
 * kind can on this device and size (a merge that also reads its output passes its share). */
static int pool_foldable(const dc_model *m)
{
    if (m->arch.nlayers < 2) return 0;
    const dc_layer_kind *first = m->arch.layers[0].kind, *next = m->arch.layers[1].kind;
    return next->is_maxpool2 && first->pool_foldable && first->backward_pooled &&
           first->pool_foldable(m->dev, &m->arch.layers[0], m->in_c, m->in_h, m->in_w);
}

/* Training: up_grad[i] = 1 where layer i writes the input gradient of the 2x upsampling i-1
 * before it (dc_layer_kind.up_grad_foldable): where no merge reads the upsampling's output and
 * its input is a layer's (not the model's input); up_folded[i] = 1 where it also reads the
 * upsampling's input in place (up_grad_in_place), so the upsampling's output never exists. */
static void up_grad_folds(dc_model *m)
{
    for (int i = 2; i < m->arch.nlayers; i++) {
        const dc_layer_kind *kind = m->arch.layers[i].kind, *prev = m->arch.layers[i - 1].kind;
        const dc_layer_spec *L = &m->arch.layers[i];
        const dc_layer_state *U = &m->layers[i - 1];
        m->up_grad[i] = prev->is_upsample2 && U->merged_by < 0 && !grad_shared_with_next(m, i - 1) &&
                        kind->up_grad_foldable && kind->up_grad_foldable(m->dev, L, U->c, U->h, U->w);
        m->up_folded[i] = m->up_grad[i] && kind->up_grad_in_place &&
                          kind->up_grad_in_place(m->dev, L, U->c, U->h, U->w);
    }
}

/* Whether that layer 0 also writes only the pool's output and its argmax in training
 * (dc_model.pool_out[0]): where no merge reads its output. */
static int pooled_out_trainable(const dc_model *m)
{
    const dc_layer_kind *first = m->arch.layers[0].kind;
    return m->pool_folded && m->layers[0].merged_by < 0 && first->pooled_out_trainable &&
           first->pooled_out_trainable(m->dev, &m->arch.layers[0], m->in_c, m->in_h, m->in_w);
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
    dc_arch_bind(&m->arch, in_c);
    m->in_c = in_c;
    m->in_h = h;
    m->in_w = w;
    m->batch = batch;
    m->head = arch->layers[arch->nlayers - 1].act;
    m->residual = arch->residual;
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
    m->pool_folded = pool_foldable(m);
    m->pool_out[0] = pooled_out_trainable(m);
    up_grad_folds(m);
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
    inference_folds(m->dev, &m->arch, m->in_c, m->layers, m->up_folded, m->pool_out);
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
        dc_tensor_release(&m->layers[i].pool_arg);
    }
    if (m->owns_params && m->params) clReleaseMemObject(m->params);
    if (m->grads) clReleaseMemObject(m->grads);
    free(m);
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
        if (L->kind->init) L->kind->init(L, c, S, host + S->w_off, &state);
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

/* The share of layer j's output gradient from the merge that reads it (merged_by >= 0): the
 * merge's own output gradient where it passes it on unchanged, else j's skip buffer. */
static dc_tensor skip_share(dc_model *m, int j, int n)
{
    int a = m->layers[j].merged_by;
    if (m->arch.layers[a].kind->ref_share_is_dy) return view_n(grad_of(m, a), n);
    return view_n(&m->layers[j].skip_grad, n);
}

/* Layer i's work on n images: its input (x or the previous output), output, merge views. */
static dc_layer_run run_for(dc_model *m, int i, const dc_tensor *x, int n, dc_tensor views[6])
{
    const dc_layer_spec *L = &m->arch.layers[i];
    dc_layer_run r = {.dev = m->dev, .spec = L, .state = &m->layers[i], .params = m->params, .grads = m->grads};
    /* a folded upsampling's layer reads the upsampling's input */
    int src = m->up_folded[i] ? i - 2 : i - 1;
    views[0] = view_n(src < 0 ? x : &m->layers[src].out, n);
    views[1] = view_n(&m->layers[m->pool_out[i] ? i + 1 : i].out, n);
    r.in = &views[0];
    r.out = &views[1];
    if (L->ref >= 0) {
        views[2] = view_n(&m->layers[L->ref].out, n);
        views[3] = view_n(&m->layers[L->ref].skip_grad, n);
        r.ref_out = &views[2];
        r.ref_grad = &views[3];
    }
    r.act = i == m->arch.nlayers - 1 ? DC_ACT_NONE : L->act; /* the last one's is the head */
    r.pool_folded = i == 0 && m->pool_folded;
    r.up_folded = m->up_folded[i];
    r.pool_out = m->pool_out[i];
    r.up_grad = m->up_grad[i];
    if (r.up_grad) {
        views[5] = view_n(&m->layers[i - 2].out, n);
        r.up_src = &views[5];
    }
    if (r.pool_folded && r.pool_out) {
        views[4] = view_n(&m->layers[i].pool_arg, n);
        r.pool_arg = &views[4];
    }
    return r;
}

dc_status dc_model_forward(dc_model *m, const dc_tensor *x, int n)
{
    DC_TRY(check_input(m, x, n));
    m->input = view_n(x, n);
    for (int i = 0; i < m->arch.nlayers; i++) DC_TRY(dc_model_layer_forward(m, x, n, i));
    return DC_OK;
}

dc_status dc_model_layer_forward(dc_model *m, const dc_tensor *x, int n, int i)
{
    if (i + 1 < m->arch.nlayers && m->up_folded[i + 1]) return DC_OK; /* the next layer reads it */
    if (i > 0 && m->pool_out[i - 1]) return DC_OK; /* the layer before wrote it */
    dc_tensor views[6];
    dc_layer_run r = run_for(m, i, x, n, views);
    return m->arch.layers[i].kind->forward(&r);
}

dc_status dc_model_predict(dc_model *m, const dc_tensor *x, int n, dc_tensor *y)
{
    DC_TRY(dc_model_forward(m, x, n));
    dc_tensor z = dc_model_logits(m, n);
    DC_TRY(dc_act_forward(m->dev, m->head, &z, &z));
    if (m->residual) DC_TRY(dc_residual_forward(m->dev, &m->input, &z));
    *y = z;
    return DC_OK;
}

dc_status dc_model_check_loss(const dc_model *m, dc_loss_kind loss)
{
    return m->residual ? dc_loss_check_residual(loss) : dc_loss_check(loss, m->head);
}

dc_status dc_model_loss(dc_model *m, dc_loss_kind loss, const dc_tensor *y, int n, int grad,
                        dc_tensor *out, dc_accum *acc, int slot)
{
    if (n <= 0 || n > m->batch)
        return dc_fail(DC_ERR_INVALID_ARG, "loss of %d images on a model for %d", n, m->batch);
    if (grad && !m->grads) return dc_fail(DC_ERR_INVALID_ARG, "this model was built for inference only");
    dc_tensor z = dc_model_logits(m, n), dz = dc_model_logits_grad(m, n);
    if (m->residual) {
        if (m->input.n != n) return dc_fail(DC_ERR_INVALID_ARG, "loss of %d images after a forward of %d", n, m->input.n);
        return dc_loss_compute_residual(m->dev, loss, &m->input, &z, y, grad ? &dz : NULL, out, acc, slot);
    }
    return dc_loss_compute(m->dev, loss, m->head, &z, y, grad ? &dz : NULL, out, acc, slot);
}

dc_status dc_model_backward(dc_model *m, const dc_tensor *x, int n)
{
    if (!m->grads) return dc_fail(DC_ERR_INVALID_ARG, "this model was built for inference only");
    DC_TRY(check_input(m, x, n));
    for (int i = m->arch.nlayers - 1; i >= 0; i--) DC_TRY(dc_model_layer_backward(m, x, n, i));
    return DC_OK;
}

dc_status dc_model_layer_backward(dc_model *m, const dc_tensor *x, int n, int i)
{
    if (i == 1 && m->pool_folded) return DC_OK; /* layer 0 runs the pool's backward */
    if (i + 1 < m->arch.nlayers && m->up_grad[i + 1]) return DC_OK; /* the next layer runs it */
    dc_tensor views[6];
    dc_layer_run r = run_for(m, i, x, n, views);
    if (i == 0 && m->pool_folded) {
        dc_tensor dpool = view_n(grad_of(m, 1), n), skip;
        if (m->layers[0].merged_by >= 0) skip = skip_share(m, 0, n);
        return m->arch.layers[0].kind->backward_pooled(&r, &dpool,
                                                       m->layers[0].merged_by >= 0 ? &skip : NULL);
    }
    dc_tensor dy = view_n(grad_of(m, i), n);
    dc_tensor dx_view;
    dc_tensor *dx = NULL; /* none for the first layer, nor where the input's gradient is dy */
    int src = m->up_grad[i] ? i - 2 : i - 1; /* whose gradient dx is: a folded upsampling's input */
    if (src >= 0 && !grad_shared_with_next(m, src)) {
        dx_view = view_n(&m->layers[src].grad, n);
        dx = &dx_view;
    }
    /* The input's gradient is complete once the skip path's share is added: by the backward
     * itself where its kind can, else by an axpy after it. */
    dc_tensor skip;
    int merged = src >= 0 && m->layers[src].merged_by >= 0;
    if (merged) skip = skip_share(m, src, n);
    if (merged && m->arch.layers[i].kind->backward_adds) r.dx_add = &skip;
    DC_TRY(m->arch.layers[i].kind->backward(&r, &dy, dx));
    if (merged && !r.dx_add)
        DC_TRY(dc_axpy(m->dev, dx->buf, dx->off, skip.buf, skip.off, dc_tensor_size(&skip), 1.0f));
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

void dc_model_print(const dc_arch *unbound, int in_c, int h, int w, FILE *out)
{
    dc_arch bound = *unbound;
    dc_arch_bind(&bound, in_c);
    const dc_arch *arch = &bound;
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
        L->kind->describe(L, arch, desc, sizeof desc);
        if (L->name[0]) snprintf(desc + strlen(desc), sizeof desc - strlen(desc), " @%s", L->name);
        snprintf(shape, sizeof shape, "%dx%dx%d", S->c, S->h, S->w);
        fprintf(out, "%3d  %-26s %-14s %10zu %10.2f\n", i + 1, desc, shape, S->nparams, S->flops / 1e6);
    }
    if (arch->residual) {
        snprintf(shape, sizeof shape, "%dx%dx%d", in_c, h, w);
        fprintf(out, "%3s  %-26s %-14s %10d %10.2f\n", "", "residual: input - noise", shape, 0, in_c * (double)h * w / 1e6);
    }
    fprintf(out, "total: %zu parameters, %.1f MFLOP per image forward (%.1f forward+backward)\n", np,
            fl / 1e6, 3 * fl / 1e6);
}
