/* Denoising images of any size: the mirrored image cut into overlapping windows, batched (see
 * denoise.h for the geometry and the memory bound). */
#include "daecl/denoise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dc_denoiser {
    dc_device *dev;
    const dc_model *src;
    int c; /* the model's channels in and out (1 or 3) */
    int align, reach, margin, tile, small;
    /* the inference model of the last window size, and its input */
    dc_model *m;
    dc_tensor x;
    int mh, mw, mbatch;
    size_t act_bytes;
    float *host_in, *host_out; /* mbatch windows each */
    dc_denoise_model_hook on_model;
    void *on_model_ctx;
};

/* ---- geometry ------------------------------------------------------------------------------ */

void dc_denoise_geometry(const dc_arch *arch, int *align, int *reach, int *margin)
{
    /* Each layer kind's rule is in its registry descriptor (layer.h). */
    int reach_at[DC_MAX_LAYERS];
    dc_reach r = {.reach_at = reach_at};
    for (int i = 0; i < arch->nlayers; i++) {
        const dc_layer_spec *L = &arch->layers[i];
        L->kind->reach(L, &r);
        reach_at[i] = r.reach;
    }
    int a = 1 << (r.max_depth < 20 ? r.max_depth : 20);
    if (align) *align = a;
    if (reach) *reach = r.reach;
    if (margin) *margin = (r.reach + a - 1) / a * a;
}

static int round_up(int v, int a) { return (v + a - 1) / a * a; }

/* Mirror index into [0, n) without repeating the edge pixel (n = 1: always 0), any i. */
static int reflect(int i, int n)
{
    if (n == 1) return 0;
    int p = 2 * (n - 1);
    i %= p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
}

/* Windows along one side of `len` image pixels: n windows of `win` pixels; window t covers
 * image coordinates [t*core - margin, t*core - margin + win) (reflected where outside) and
 * contributes its core [t*core, min((t+1)*core, len)). */
typedef struct span {
    int n, win, core;
} span;

static span plan_side(int len, int win, int margin)
{
    span s = {.win = win};
    if (len + 2 * margin <= win) {
        s.n = 1;
        s.core = len;
    } else {
        s.core = win - 2 * margin;
        s.n = (len + s.core - 1) / s.core;
    }
    return s;
}

/* Square windows of one of two fixed sides (see denoise.h): the small one when the whole image
 * and its margins fit in it, else the tile. */
static void plan_windows(const dc_denoiser *d, int w, int h, span *sx, span *sy)
{
    int big = w > h ? w : h;
    int win = big + 2 * d->margin <= d->small ? d->small : d->tile;
    *sx = plan_side(w, win, d->margin);
    *sy = plan_side(h, win, d->margin);
}

/* The smallest tile whose window holds a w x h image and its margins. */
static int one_window_tile(const dc_denoiser *d, int w, int h)
{
    return round_up((w > h ? w : h) + 2 * d->margin, d->align);
}

static void span_window(const span *s, int len, int margin, int t, int *start, int *c0, int *c1)
{
    *c0 = t * s->core;
    *c1 = *c0 + s->core < len ? *c0 + s->core : len;
    *start = *c0 - margin;
}

/* ---- model for a window size --------------------------------------------------------------- */

static void release_model(dc_denoiser *d)
{
    dc_model_destroy(d->m);
    d->m = NULL;
    dc_tensor_release(&d->x);
    free(d->host_in);
    free(d->host_out);
    d->host_in = d->host_out = NULL;
    d->mh = d->mw = d->mbatch = 0;
}

/* Activation bytes per window at h x w (input included), and the largest single tensor. */
static dc_status window_bytes(const dc_denoiser *d, int h, int w, size_t *per, size_t *largest)
{
    dc_layer_state layers[DC_MAX_LAYERS];
    DC_TRY(dc_model_plan(&d->src->arch, d->c, h, w, layers, NULL, NULL));
    size_t in = (size_t)d->c * h * w * sizeof(float);
    *per = in + dc_model_inference_floats(d->src->dev, &d->src->arch, d->c, layers) * sizeof(float);
    *largest = in;
    for (int i = 0; i < d->src->arch.nlayers; i++) {
        size_t b = (size_t)layers[i].c * layers[i].h * layers[i].w * sizeof(float);
        if (b > *largest) *largest = b;
    }
    return DC_OK;
}

/* Windows per step for h x w windows: within the memory budget and the device's largest
 * allocation, at most DC_DENOISE_MAX_BATCH and the number of windows. */
static dc_status plan_batch(const dc_denoiser *d, int h, int w, int windows, size_t *batch_out, size_t *per_out)
{
    size_t per, largest;
    DC_TRY(window_bytes(d, h, w, &per, &largest));
    size_t batch = DC_DENOISE_MEM_BUDGET / per;
    if (d->dev->max_alloc > 0 && largest > 0 && batch > d->dev->max_alloc / largest)
        batch = d->dev->max_alloc / largest;
    if (batch > DC_DENOISE_MAX_BATCH) batch = DC_DENOISE_MAX_BATCH;
    if (batch > (size_t)windows) batch = (size_t)windows;
    if (batch < 1) batch = 1;
    *batch_out = batch;
    *per_out = per;
    return DC_OK;
}

static dc_status ensure_model(dc_denoiser *d, int h, int w, int windows)
{
    size_t batch, per;
    DC_TRY(plan_batch(d, h, w, windows, &batch, &per));
    if (d->m && d->mh == h && d->mw == w && d->mbatch >= (int)batch) return DC_OK;
    release_model(d);
    size_t px = batch * (size_t)d->c * h * w;
    d->host_in = malloc(px * sizeof(float));
    d->host_out = malloc(px * sizeof(float));
    if (!d->host_in || !d->host_out) {
        release_model(d);
        return dc_fail(DC_ERR_NOMEM, "out of memory for %zu windows of %dx%d", batch, w, h);
    }
    dc_status s = dc_model_create_shared(d->src, h, w, (int)batch, &d->m);
    if (!s) s = dc_tensor_create(d->dev, (int)batch, d->c, h, w, DC_LAYOUT_NCHW, &d->x);
    if (s) {
        release_model(d);
        return s;
    }
    d->mh = h;
    d->mw = w;
    d->mbatch = (int)batch;
    d->act_bytes = per * batch;
    if (d->on_model) d->on_model(d->on_model_ctx, d->c, h, w, (int)batch);
    return DC_OK;
}

/* ---- public -------------------------------------------------------------------------------- */

dc_status dc_denoiser_create(dc_device *dev, const dc_model *src, int tile, dc_denoiser **out)
{
    *out = NULL;
    if (!dev || !src) return dc_fail(DC_ERR_INVALID_ARG, "denoise: no device or model");
    if (src->in_c != 1 && src->in_c != 3)
        return dc_fail(DC_ERR_UNSUPPORTED, "denoise: the model takes %d-channel images; images have 1 (gray) or 3 (RGB)",
                       src->in_c);
    /* dc_model_create already refused a model whose output differs in shape from its input. */
    if (tile < 0) return dc_fail(DC_ERR_INVALID_ARG, "denoise: tile size %d is negative", tile);
    dc_denoiser *d = calloc(1, sizeof *d);
    if (!d) return dc_fail(DC_ERR_NOMEM, "out of memory");
    d->dev = dev;
    d->src = src;
    dc_denoise_geometry(&src->arch, &d->align, &d->reach, &d->margin);
    if (tile == 0) tile = DC_DENOISE_TILE_DEFAULT;
    if (tile > DC_IMAGE_MAX_DIM) tile = DC_IMAGE_MAX_DIM;
    tile = round_up(tile, d->align);
    if (tile < 2 * d->margin + d->align) tile = 2 * d->margin + d->align;
    d->tile = tile;
    d->small = round_up(DC_DENOISE_MIN_WINDOW, d->align);
    if (d->small < 2 * d->margin + d->align) d->small = 2 * d->margin + d->align;
    if (d->small > tile) d->small = tile;
    d->c = src->in_c;
    *out = d;
    return DC_OK;
}

void dc_denoiser_destroy(dc_denoiser *d)
{
    if (!d) return;
    release_model(d);
    free(d);
}

void dc_denoiser_set_model_hook(dc_denoiser *d, dc_denoise_model_hook fn, void *ctx)
{
    d->on_model = fn;
    d->on_model_ctx = ctx;
}

int dc_denoiser_tile(const dc_denoiser *d) { return d->tile; }

dc_status dc_denoiser_plan(const dc_denoiser *d, int w, int h, dc_denoise_info *info)
{
    if (w < 1 || h < 1 || w > DC_IMAGE_MAX_DIM || h > DC_IMAGE_MAX_DIM)
        return dc_fail(DC_ERR_INVALID_ARG, "denoise: image size %dx%d out of range", w, h);
    span sx, sy;
    plan_windows(d, w, h, &sx, &sy);
    size_t batch, per;
    DC_TRY(plan_batch(d, sy.win, sx.win, sx.n * sy.n, &batch, &per));
    *info = (dc_denoise_info){.win_w = sx.win, .win_h = sy.win, .tiles_x = sx.n, .tiles_y = sy.n,
                              .batch = (int)batch, .act_bytes = batch * per,
                              .one_window_tile = one_window_tile(d, w, h)};
    return DC_OK;
}

/* Run the model on in (d->c channels) into out (allocated by the caller, same size). */
static dc_status run_planes(dc_denoiser *d, const dc_image *in, dc_image *out, dc_denoise_info *info)
{
    const int w = in->w, h = in->h, c = d->c;
    span sx, sy;
    plan_windows(d, w, h, &sx, &sy);
    int windows = sx.n * sy.n;
    DC_TRY(ensure_model(d, sy.win, sx.win, windows));
    const size_t per = (size_t)sy.win * sx.win, plane = (size_t)w * h;
    for (int first = 0; first < windows; first += d->mbatch) {
        int n = windows - first < d->mbatch ? windows - first : d->mbatch;
        /* gather: window pixels of the mirrored image, computed on the fly, plane by plane */
        for (int k = 0; k < n; k++) {
            int ty = (first + k) / sx.n, tx = (first + k) % sx.n, y0, x0, c0, c1;
            span_window(&sy, h, d->margin, ty, &y0, &c0, &c1);
            span_window(&sx, w, d->margin, tx, &x0, &c0, &c1);
            for (int ch = 0; ch < c; ch++) {
                float *dst = d->host_in + ((size_t)k * c + ch) * per;
                for (int y = 0; y < sy.win; y++) {
                    const float *row = in->px + ch * plane + (size_t)reflect(y0 + y, h) * w;
                    for (int x = 0; x < sx.win; x++) dst[(size_t)y * sx.win + x] = row[reflect(x0 + x, w)];
                }
            }
        }
        dc_tensor xv = d->x;
        xv.n = n;
        xv.owns_buf = 0;
        DC_TRY(dc_tensor_write(d->dev, &xv, d->host_in));
        dc_tensor z;
        DC_TRY(dc_model_predict(d->m, &xv, n, &z));
        DC_TRY(dc_tensor_read(d->dev, &z, d->host_out));
        /* scatter: each window's core */
        for (int k = 0; k < n; k++) {
            int ty = (first + k) / sx.n, tx = (first + k) % sx.n, y0, x0, cy0, cy1, cx0, cx1;
            span_window(&sy, h, d->margin, ty, &y0, &cy0, &cy1);
            span_window(&sx, w, d->margin, tx, &x0, &cx0, &cx1);
            for (int ch = 0; ch < c; ch++) {
                const float *src = d->host_out + ((size_t)k * c + ch) * per;
                for (int y = cy0; y < cy1; y++)
                    memcpy(out->px + ch * plane + (size_t)y * w + cx0, src + (size_t)(y - y0) * sx.win + (cx0 - x0),
                           (size_t)(cx1 - cx0) * sizeof(float));
            }
        }
    }
    if (info)
        *info = (dc_denoise_info){.win_w = sx.win, .win_h = sy.win, .tiles_x = sx.n, .tiles_y = sy.n,
                                  .batch = d->mbatch, .act_bytes = d->act_bytes,
                                  .one_window_tile = one_window_tile(d, w, h)};
    return DC_OK;
}

/* A gray model on a colour image: denoise the Rec.601 luma Y and keep the chroma. With
 * full-range YCbCr (Cb, Cr fixed), a new luma Y' gives R' = R + (Y' - Y), and the same for G
 * and B, exactly: the inverse transform adds Y with weight 1 to every channel. */
static dc_status run_luma(dc_denoiser *d, const dc_image *in, dc_image *out, dc_denoise_info *info)
{
    size_t plane = (size_t)in->w * in->h;
    dc_image y = {0}, yd = {0};
    DC_TRY(dc_image_alloc(&y, in->w, in->h));
    dc_status s = dc_image_alloc(&yd, in->w, in->h);
    const float *r = in->px, *g = r + plane, *b = g + plane;
    for (size_t i = 0; !s && i < plane; i++) y.px[i] = dc_luma601(r[i], g[i], b[i]);
    if (!s) s = run_planes(d, &y, &yd, info);
    for (size_t i = 0; !s && i < plane; i++) {
        float delta = yd.px[i] - y.px[i];
        for (int k = 0; k < 3; k++) out->px[k * plane + i] = in->px[k * plane + i] + delta;
    }
    dc_image_free(&y);
    dc_image_free(&yd);
    return s;
}

/* An RGB model on a gray image: R = G = B = gray in, Rec.601 luma of the result out. */
static dc_status run_rgb_on_gray(dc_denoiser *d, const dc_image *in, dc_image *out, dc_denoise_info *info)
{
    size_t plane = (size_t)in->w * in->h;
    dc_image rgb = {0}, res = {0};
    DC_TRY(dc_image_alloc_c(&rgb, in->w, in->h, 3));
    dc_status s = dc_image_alloc_c(&res, in->w, in->h, 3);
    for (int k = 0; !s && k < 3; k++) memcpy(rgb.px + k * plane, in->px, plane * sizeof(float));
    if (!s) s = run_planes(d, &rgb, &res, info);
    for (size_t i = 0; !s && i < plane; i++)
        out->px[i] = dc_luma601(res.px[i], res.px[plane + i], res.px[2 * plane + i]);
    dc_image_free(&rgb);
    dc_image_free(&res);
    return s;
}

dc_status dc_denoiser_run(dc_denoiser *d, const dc_image *in, dc_image *out, dc_denoise_info *info)
{
    *out = (dc_image){0};
    if (!in || !in->px || in->w < 1 || in->h < 1)
        return dc_fail(DC_ERR_INVALID_ARG, "denoise: empty input image");
    if (in->w > DC_IMAGE_MAX_DIM || in->h > DC_IMAGE_MAX_DIM)
        return dc_fail(DC_ERR_INVALID_ARG, "denoise: image %dx%d too large", in->w, in->h);
    int c = in->c == 0 ? 1 : in->c; /* a zeroed struct filled by hand: gray */
    if (c != 1 && c != 3) return dc_fail(DC_ERR_INVALID_ARG, "denoise: image with %d channels (1 or 3)", in->c);
    dc_image src = *in;
    src.c = c;
    DC_TRY(dc_image_alloc_c(out, in->w, in->h, c));
    out->bit_depth = in->bit_depth == 16 ? 16 : 8;
    dc_status s;
    if (c == d->c)
        s = run_planes(d, &src, out, info);
    else if (c == 3)
        s = run_luma(d, &src, out, info);
    else
        s = run_rgb_on_gray(d, &src, out, info);
    if (!s && in->alpha) {
        size_t bytes = (size_t)in->w * in->h * sizeof(float);
        out->alpha = malloc(bytes);
        if (out->alpha)
            memcpy(out->alpha, in->alpha, bytes);
        else
            s = dc_fail(DC_ERR_NOMEM, "denoise: out of memory for the alpha plane");
    }
    if (s) dc_image_free(out);
    return s;
}

dc_status dc_image_quality(dc_device *dev, const dc_image *img, const dc_image *ref, double *psnr, double *ssim)
{
    if (!img || !ref || !img->px || !ref->px) return dc_fail(DC_ERR_INVALID_ARG, "quality: empty image");
    if (img->w != ref->w || img->h != ref->h || img->c != ref->c)
        return dc_fail(DC_ERR_INVALID_ARG, "quality: a %dx%dx%d image against a %dx%dx%d reference", img->w, img->h,
                       img->c, ref->w, ref->h, ref->c);
    dc_tensor a = {0}, b = {0};
    dc_accum acc = {0};
    double v[DC_METRIC_SLOTS];
    dc_status s = dc_tensor_create(dev, 1, img->c, img->h, img->w, DC_LAYOUT_NCHW, &a);
    if (!s) s = dc_tensor_create(dev, 1, ref->c, ref->h, ref->w, DC_LAYOUT_NCHW, &b);
    if (!s) s = dc_tensor_write(dev, &a, img->px);
    if (!s) s = dc_tensor_write(dev, &b, ref->px);
    if (!s) s = dc_accum_create(dev, DC_METRIC_SLOTS, &acc);
    if (!s) s = dc_accum_reset(dev, &acc);
    if (!s) s = dc_metrics_accumulate(dev, &a, &b, &acc, 0);
    if (!s) s = dc_accum_read(dev, &acc, v);
    if (!s) {
        *psnr = v[DC_METRIC_PSNR];
        *ssim = v[DC_METRIC_SSIM];
    }
    dc_accum_release(&acc);
    dc_tensor_release(&a);
    dc_tensor_release(&b);
    return s;
}

dc_status dc_denoise_image(dc_device *dev, const dc_model *src, const dc_image *in, dc_image *out, int tile)
{
    *out = (dc_image){0};
    dc_denoiser *d;
    DC_TRY(dc_denoiser_create(dev, src, tile, &d));
    dc_status s = dc_denoiser_run(d, in, out, NULL);
    dc_denoiser_destroy(d);
    return s;
}

dc_status dc_denoise_load_model(dc_device *dev, const char *path, dc_model **model, dc_checkpoint *ck_out)
{
    *model = NULL;
    dc_checkpoint ck;
    DC_TRY(dc_checkpoint_load(path, &ck));
    dc_arch arch;
    dc_status s = dc_arch_parse(ck.arch, &arch);
    if (s) {
        char why[512]; /* the detail buffer cannot be its own format argument */
        snprintf(why, sizeof why, "%s", dc_error_detail());
        s = dc_fail(DC_ERR_FORMAT, "%s: %s", path, why);
    }
    if (!s && ck.in_c != 1 && ck.in_c != 3)
        s = dc_fail(DC_ERR_UNSUPPORTED, "%s: the model takes %d-channel images; images have 1 (gray) or 3 (RGB)",
                    path, (int)ck.in_c);
    dc_model *m = NULL;
    if (!s) s = dc_model_create(dev, &arch, ck.in_c, ck.in_h, ck.in_w, 1, &m);
    if (!s && m->nparams != ck.nparams)
        s = dc_fail(DC_ERR_FORMAT, "%s: holds %llu parameters, its architecture needs %zu", path,
                    (unsigned long long)ck.nparams, m->nparams);
    if (!s) s = dc_model_set_params(m, ck.params);
    if (s) {
        dc_model_destroy(m);
        dc_checkpoint_free(&ck);
        return s;
    }
    *model = m;
    if (ck_out)
        *ck_out = ck;
    else
        dc_checkpoint_free(&ck);
    return DC_OK;
}
