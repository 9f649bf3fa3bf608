/* Public API: checkpoints, denoising caller buffers, evaluation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "daecl/eval.h"
#include "daecl/imageset.h"

daecl_status daecl_model_load(daecl_device *dev, const char *path, daecl_model **out)
{
    if (!dev || !path || !out) return api_null("daecl_model_load: dev, path and out");
    *out = NULL;
    daecl_model *m = calloc(1, sizeof *m);
    char *p = strdup(path);
    if (!m || !p) {
        free(m);
        free(p);
        return api_status(dc_fail(DC_ERR_NOMEM, "%s: out of memory", path));
    }
    dc_status s = dc_denoise_load_model(dev->dc, path, &m->model, &m->ck);
    if (s) {
        free(m);
        free(p);
        return api_status(s);
    }
    /* The parameters now live in the model; the rest of the checkpoint is small. */
    free(m->ck.params);
    free(m->ck.state);
    m->ck.params = m->ck.state = NULL;
    m->dev = dev;
    m->path = p;
    *out = m;
    return DAECL_OK;
}

void daecl_model_free(daecl_model *m)
{
    if (!m) return;
    dc_denoiser_destroy(m->den);
    dc_model_destroy(m->model);
    dc_checkpoint_free(&m->ck);
    free(m->path);
    free(m);
}

const char *daecl_model_arch(const daecl_model *m) { return m ? m->ck.arch : ""; }

void daecl_model_input_size(const daecl_model *m, int *width, int *height)
{
    if (width) *width = m ? m->ck.in_w : 0;
    if (height) *height = m ? m->ck.in_h : 0;
}

size_t daecl_model_parameters(const daecl_model *m) { return m ? m->model->nparams : 0; }

int daecl_model_channels(const daecl_model *m) { return m ? m->ck.in_c : 0; }

int daecl_model_residual(const daecl_model *m) { return m ? m->model->residual : 0; }

/* ---- denoise -------------------------------------------------------------------------------- */

static size_t sample_size(daecl_sample s) { return s == DAECL_U8 ? 1 : s == DAECL_U16 ? 2 : 4; }

static size_t row_stride(const daecl_image *im)
{
    return im->stride ? im->stride : (size_t)im->width * (size_t)im->channels * sample_size(im->sample);
}

static daecl_status check_image(const char *which, const daecl_image *im)
{
    if (!im || !im->data) return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: %s image or its data is NULL", which));
    if (im->width < 1 || im->height < 1)
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: %s image is %dx%d", which, im->width, im->height));
    if (im->channels != 1 && im->channels != 3)
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: %s image has %d channels; 1 (gray) or 3 (RGB) are supported",
                                  which, im->channels));
    if (im->sample != DAECL_U8 && im->sample != DAECL_U16 && im->sample != DAECL_F32)
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: %s image has an unknown sample type %d", which, (int)im->sample));
    if ((uintptr_t)im->data % sample_size(im->sample) || im->stride % sample_size(im->sample))
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: %s image's data or stride is not a multiple of its %zu-byte sample",
                                  which, sample_size(im->sample)));
    size_t packed = (size_t)im->width * (size_t)im->channels * sample_size(im->sample);
    if (im->stride && im->stride < packed)
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: %s image's stride %zu is less than a row (%zu bytes)",
                                  which, im->stride, packed));
    return DAECL_OK;
}

/* Channel c of im into a float plane, integers as value / max (as the PNG reader does). */
static void read_channel(const daecl_image *im, int c, float *dst)
{
    size_t stride = row_stride(im);
    for (int y = 0; y < im->height; y++) {
        const char *row = (const char *)im->data + (size_t)y * stride;
        float *d = dst + (size_t)y * (size_t)im->width;
        for (int x = 0; x < im->width; x++) {
            size_t i = (size_t)x * (size_t)im->channels + (size_t)c;
            switch (im->sample) {
            case DAECL_U8: d[x] = (float)((const uint8_t *)row)[i] / 255.0f; break;
            case DAECL_U16: d[x] = (float)((const uint16_t *)row)[i] / 65535.0f; break;
            default: d[x] = ((const float *)row)[i]; break;
            }
        }
    }
}

/* Rounded as the PNG writer does: clamp to [0,1] (NaN to 0), then the nearest integer. */
static unsigned quantize(float v, unsigned maxv)
{
    if (!(v > 0.0f)) return 0;
    if (v >= 1.0f) return maxv;
    return (unsigned)(v * (float)maxv + 0.5f);
}

static void write_channel(const daecl_image *im, int c, const float *src)
{
    size_t stride = row_stride(im);
    for (int y = 0; y < im->height; y++) {
        char *row = (char *)im->data + (size_t)y * stride;
        const float *s = src + (size_t)y * (size_t)im->width;
        for (int x = 0; x < im->width; x++) {
            size_t i = (size_t)x * (size_t)im->channels + (size_t)c;
            switch (im->sample) {
            case DAECL_U8: ((uint8_t *)row)[i] = (uint8_t)quantize(s[x], 255u); break;
            case DAECL_U16: ((uint16_t *)row)[i] = (uint16_t)quantize(s[x], 65535u); break;
            default: ((float *)row)[i] = s[x]; break;
            }
        }
    }
}

static const char *image_end(const daecl_image *im)
{
    return (const char *)im->data + (size_t)(im->height - 1) * row_stride(im) +
           (size_t)im->width * (size_t)im->channels * sample_size(im->sample);
}

/* Channel by channel, each read whole before it is written: in == out works, but two
 * different layouts over the same bytes would read what was just written. */
static int overlap_differently(const daecl_image *a, const daecl_image *b)
{
    int overlap = (const char *)a->data < image_end(b) && (const char *)b->data < image_end(a);
    return overlap && (a->data != b->data || a->sample != b->sample || row_stride(a) != row_stride(b));
}

daecl_status daecl_denoise(daecl_model *m, const daecl_image *in, const daecl_image *out, int tile)
{
    if (!m) return api_null("daecl_denoise: model");
    API_TRY(check_image("input", in));
    API_TRY(check_image("output", out));
    if (in->width != out->width || in->height != out->height || in->channels != out->channels)
        return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: input %dx%dx%d and output %dx%dx%d differ", in->width,
                                  in->height, in->channels, out->width, out->height, out->channels));
    if (overlap_differently(in, out))
        return api_status(dc_fail(DC_ERR_INVALID_ARG,
                                  "daecl_denoise: input and output share memory with different layouts"));
    if (tile < 0) return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_denoise: tile %d is negative", tile));
    if (m->den && m->den_tile != tile) {
        dc_denoiser_destroy(m->den);
        m->den = NULL;
    }
    if (!m->den) {
        API_TRY(dc_denoiser_create(m->dev->dc, m->model, tile, &m->den));
        m->den_tile = tile;
    }
    dc_image plane = {0}, result = {0};
    dc_status s;
    if (m->model->in_c == 3 && in->channels == 3) {
        /* an RGB model takes the three channels together (planar, denoise.h) */
        size_t n = (size_t)in->width * (size_t)in->height;
        s = dc_image_alloc_c(&plane, in->width, in->height, 3);
        for (int c = 0; c < 3 && !s; c++) read_channel(in, c, plane.px + (size_t)c * n);
        if (!s) s = dc_denoiser_run(m->den, &plane, &result, NULL);
        for (int c = 0; c < 3 && !s; c++) write_channel(out, c, result.px + (size_t)c * n);
        dc_image_free(&result);
        dc_image_free(&plane);
        return api_status(s);
    }
    s = dc_image_alloc(&plane, in->width, in->height);
    for (int c = 0; c < in->channels && !s; c++) {
        read_channel(in, c, plane.px);
        s = dc_denoiser_run(m->den, &plane, &result, NULL);
        if (!s) write_channel(out, c, result.px);
        dc_image_free(&result);
    }
    dc_image_free(&plane);
    return api_status(s);
}

/* ---- evaluate ------------------------------------------------------------------------------- */

void api_eval_result(const dc_eval_result *r, daecl_eval_result *out)
{
    *out = (daecl_eval_result){.images = r->images, .loss = r->loss, .psnr = r->psnr, .ssim = r->ssim,
                               .accuracy = r->acc, .noisy_loss = r->noisy_loss, .noisy_psnr = r->noisy_psnr,
                               .noisy_ssim = r->noisy_ssim, .noisy_accuracy = r->noisy_acc, .seconds = r->seconds};
}

daecl_status daecl_evaluate(daecl_model *m, const daecl_eval_options *opt, daecl_eval_result *out)
{
    if (!m || !opt || !out || !opt->data_dir) return api_null("daecl_evaluate: model, options, options->data_dir and out");
    memset(out, 0, sizeof *out);
    dc_loss_kind loss = DC_LOSS_BCE;
    if (opt->loss) API_TRY(dc_loss_parse(opt->loss, &loss));
    /* By default the noise and seed of the run's validation. */
    dc_noise_config noise = m->ck.run.noise;
    uint64_t seed = m->ck.run.seed;
    if (opt->noise) API_TRY(dc_noise_parse(opt->noise, &noise));
    if (opt->use_seed) seed = opt->seed;
    if (opt->batch < 0) return api_status(dc_fail(DC_ERR_INVALID_ARG, "daecl_evaluate: batch %d is negative", opt->batch));

    dc_dataset ds = {0};
    if (dc_dataset_is_idx(opt->data_dir)) {
        API_TRY(dc_dataset_open(opt->data_dir, opt->split ? opt->split : "test", opt->transpose, &ds));
    } else { /* an image folder: the centre crops of its images at the model's input size */
        dc_imageset_options io = {.channels = m->ck.in_c};
        API_TRY(dc_imageset_load_crops(opt->data_dir, &io, m->ck.in_h, &ds, NULL));
    }
    dc_dataset_truncate(&ds, opt->limit);
    int batch = opt->batch ? opt->batch : 128;
    if ((size_t)batch > ds.n) batch = (int)ds.n;
    dc_model *em = NULL;
    dc_evaluator *ev = NULL;
    dc_eval_result r;
    /* A model for the data set's image size and batch, sharing the loaded parameters. */
    dc_status s = dc_model_create_shared(m->model, ds.h, ds.w, batch, &em);
    if (!s) s = dc_evaluator_create(m->dev->dc, &ds, batch, &ev);
    if (!s) s = dc_evaluate(ev, em, loss, &noise, seed, 1, &r);
    if (!s) api_eval_result(&r, out);
    dc_evaluator_destroy(ev);
    dc_model_destroy(em);
    dc_dataset_free(&ds);
    return api_status(s);
}
