/* Evaluation over a data set (see eval.h). Everything stays on the device; the host reads the
 * accumulator once at the end. */
#include "daecl/eval.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "daecl/dist.h"
#include "daecl/kernels.h"

enum { SLOT_LOSS = 0, SLOT_METRICS, SLOT_NOISY_LOSS = SLOT_METRICS + DC_METRIC_SLOTS,
       SLOT_NOISY_METRICS, SLOT_COUNT = SLOT_NOISY_METRICS + DC_METRIC_SLOTS };

/* Keras clips probabilities to [1e-7, 1 - 1e-7] before its cross-entropy; the "do nothing"
 * baseline's noisy image is such a probability, so it is scored through the logit of the
 * clipped value. */
#define BASELINE_EPS 1e-7f

dc_status dc_evaluator_create(dc_device *dev, const dc_dataset *data, int batch, dc_evaluator **out)
{
    *out = NULL;
    dc_evaluator *e = calloc(1, sizeof *e);
    if (!e) return dc_fail(DC_ERR_NOMEM, "out of memory");
    e->dev = dev;
    e->batch = batch;
    e->c = dc_dataset_channels(data);
    e->h = data->h;
    e->w = data->w;
    e->depth = dc_dataset_depth(data);
    /* Under mpirun each rank scores its share of every batch; dc_evaluate sums the shares. */
    dc_loader_config lc = {.data = data, .batch = batch, .shuffle = 0, .seed = 0, .drop_last = 0,
                           .parts = dc_dist_size(), .part = dc_dist_rank()};
    dc_status s = dc_loader_create(dev, &lc, &e->loader);
    if (!s) s = dc_tensor_create(dev, batch, e->c, data->h, data->w, DC_LAYOUT_NCHW, &e->clean);
    if (!s) s = dc_tensor_create(dev, batch, e->c, data->h, data->w, DC_LAYOUT_NCHW, &e->noisy);
    if (!s) s = dc_tensor_create(dev, batch, e->c, data->h, data->w, DC_LAYOUT_NCHW, &e->pred);
    if (!s) s = dc_tensor_create(dev, batch, e->c, data->h, data->w, DC_LAYOUT_NCHW, &e->noisy_logits);
    if (!s) s = dc_accum_create(dev, SLOT_COUNT, &e->acc);
    if (s) {
        dc_evaluator_destroy(e);
        return s;
    }
    *out = e;
    return DC_OK;
}

void dc_evaluator_destroy(dc_evaluator *e)
{
    if (!e) return;
    dc_loader_destroy(e->loader);
    dc_tensor_release(&e->clean);
    dc_tensor_release(&e->noisy);
    dc_tensor_release(&e->pred);
    dc_tensor_release(&e->noisy_logits);
    dc_accum_release(&e->acc);
    free(e);
}

static dc_tensor first_n(const dc_tensor *t, int n)
{
    dc_tensor v = *t;
    v.n = n;
    v.owns_buf = 0;
    return v;
}

/* logit(clip(p)) so that the loss kernel (which works on logits) scores the noisy image as a
 * prediction. A few elementwise ops per pixel: done with the activation kernels' inverse. */
static dc_status noisy_as_logits(dc_evaluator *e, const dc_tensor *noisy, dc_tensor *logits)
{
    cl_kernel k;
    DC_TRY(dc_kernel_get(e->dev, "util.cl", "", "logit_f32", &k));
    cl_uint n = (cl_uint)dc_tensor_size(noisy), xo = (cl_uint)noisy->off, yo = (cl_uint)logits->off;
    float eps = BASELINE_EPS;
    DC_CL(DC_ARG(k, 0, logits->buf), "logit_f32 arg");
    DC_CL(DC_ARG(k, 1, yo), "logit_f32 arg");
    DC_CL(DC_ARG(k, 2, noisy->buf), "logit_f32 arg");
    DC_CL(DC_ARG(k, 3, xo), "logit_f32 arg");
    DC_CL(DC_ARG(k, 4, n), "logit_f32 arg");
    DC_CL(DC_ARG(k, 5, eps), "logit_f32 arg");
    size_t g = n;
    return dc_launch(e->dev, k, 1, &g, NULL, "logit_f32");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

dc_status dc_evaluate(dc_evaluator *e, dc_model *m, dc_loss_kind loss, const dc_noise_config *noise,
                      uint64_t seed, int with_baseline, dc_eval_result *out)
{
    double t0 = now_s();
    if (m->batch < e->batch || m->in_c != e->c || m->in_h != e->h || m->in_w != e->w)
        return dc_fail(DC_ERR_INVALID_ARG, "evaluation batch %d of %dx%dx%d does not fit the model (%dx%dx%d)", e->batch,
                       e->c, e->h, e->w, m->in_c, m->in_h, m->in_w);
    DC_TRY(dc_model_check_loss(m, loss));
    DC_TRY(dc_accum_reset(e->dev, &e->acc));
    DC_TRY(dc_loader_start_epoch(e->loader, 0, 0));
    for (;;) {
        int n;
        cl_mem pixels, indices;
        cl_event ready;
        DC_TRY(dc_loader_next(e->loader, &n, &pixels, &indices, &ready));
        if (dc_loader_batch_total(e->loader) == 0) break;
        if (n == 0) continue; /* this rank's share of a short last batch */
        dc_tensor clean = first_n(&e->clean, n), noisy = first_n(&e->noisy, n), pred = first_n(&e->pred, n);
        DC_TRY(dc_noise_apply_planes(e->dev, noise, seed, DC_NOISE_EPOCH_VALIDATION, pixels, e->depth, indices, n,
                                     e->c, e->h, e->w, &clean, &noisy, 1, &ready));
        DC_TRY(dc_model_forward(m, &noisy, n));
        DC_TRY(dc_model_loss(m, loss, &clean, n, 0, &pred, &e->acc, SLOT_LOSS));
        DC_TRY(dc_metrics_accumulate(e->dev, &pred, &clean, &e->acc, SLOT_METRICS));
        if (with_baseline) {
            dc_tensor nl = first_n(&e->noisy_logits, n);
            DC_TRY(noisy_as_logits(e, &noisy, &nl));
            /* BCE needs the sigmoid path; MSE/L1 score the noisy image directly. */
            if (loss == DC_LOSS_BCE)
                DC_TRY(dc_loss_compute(e->dev, loss, DC_ACT_SIGMOID, &nl, &clean, NULL, NULL, &e->acc, SLOT_NOISY_LOSS));
            else
                DC_TRY(dc_loss_compute(e->dev, loss, DC_ACT_NONE, &noisy, &clean, NULL, NULL, &e->acc, SLOT_NOISY_LOSS));
            DC_TRY(dc_metrics_accumulate(e->dev, &noisy, &clean, &e->acc, SLOT_NOISY_METRICS));
        }
    }
    double v[SLOT_COUNT];
    DC_TRY(dc_accum_read(e->dev, &e->acc, v));
    DC_TRY(dc_dist_sum_doubles(v, SLOT_COUNT));
    double n = v[SLOT_METRICS + DC_METRIC_COUNT_IMAGES];
    if (n <= 0) return dc_fail(DC_ERR_INVALID_ARG, "evaluation data set is empty");
    out->images = (size_t)n;
    out->loss = v[SLOT_LOSS] / n;
    out->psnr = v[SLOT_METRICS + DC_METRIC_PSNR] / n;
    out->ssim = v[SLOT_METRICS + DC_METRIC_SSIM] / n;
    out->acc = v[SLOT_METRICS + DC_METRIC_ACC] / n;
    out->acc_thresh = v[SLOT_METRICS + DC_METRIC_ACC_THRESH] / n;
    if (with_baseline) {
        out->noisy_loss = v[SLOT_NOISY_LOSS] / n;
        out->noisy_psnr = v[SLOT_NOISY_METRICS + DC_METRIC_PSNR] / n;
        out->noisy_ssim = v[SLOT_NOISY_METRICS + DC_METRIC_SSIM] / n;
        out->noisy_acc = v[SLOT_NOISY_METRICS + DC_METRIC_ACC] / n;
        out->noisy_acc_thresh = v[SLOT_NOISY_METRICS + DC_METRIC_ACC_THRESH] / n;
    } else {
        out->noisy_loss = out->noisy_psnr = out->noisy_ssim = out->noisy_acc = out->noisy_acc_thresh = NAN;
    }
    out->seconds = now_s() - t0;
    if (!isfinite(out->loss))
        return dc_fail(DC_ERR_NONFINITE, "evaluation loss is %g: the model produces non-finite values", out->loss);
    return DC_OK;
}
