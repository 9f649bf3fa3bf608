/* The training loop (see train.h). One step is enqueue-only: noise, forward, loss, backward,
 * optimizer. The host reads the device's running loss only to redraw progress and at the end
 * of an epoch; the loader's two slots keep the host at most two batches ahead of the device. */
#include "daecl/train.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daecl/checkpoint.h"
#include "daecl/conv_gemm.h"
#include "daecl/image.h"
#include "daecl/loader.h"
#include "daecl/progress.h"

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

#define SAMPLE_IMAGES 8
#define NAN_CHECK_STEPS 50

static volatile sig_atomic_t stop_requested;

void dc_train_request_stop(void) { stop_requested = 1; }

void dc_train_defaults(dc_train_config *cfg)
{
    *cfg = (dc_train_config){.data_dir = "data/mnist", .arch = "classic", .out_dir = "runs/default",
                             .epochs = 10, .batch = 128, .loss = DC_LOSS_BCE, .seed = 1,
                             .validate_every = 1, .samples = 1};
    dc_optim_defaults(DC_OPT_ADAM, &cfg->optim);
    cfg->noise = (dc_noise_config){.kind = DC_NOISE_GAUSSIAN, .param = 0.5f};
}

/* Seeds for the independent random streams, derived from the run seed. */
static uint64_t derive_seed(uint64_t seed, uint64_t stream)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
enum { STREAM_INIT = 1, STREAM_SHUFFLE = 2 };

/* ---- run directory -------------------------------------------------------------------------- */

static dc_status make_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dc_fail(DC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return dc_fail(DC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    return DC_OK;
}

static void format_config(const dc_train_config *c, const dc_device *dev, const char *arch_canon,
                          char *buf, size_t len)
{
    char noise[64], desc[512];
    dc_noise_format(&c->noise, noise, sizeof noise);
    dc_device_describe(dev, desc, sizeof desc);
    snprintf(buf, len,
             "dae_cl_version=%s\ndevice=%s\ndata=%s\narch=%s\nepochs=%d\nbatch=%d\noptimizer=%s\n"
             "lr=%g\nmomentum=%g\nnesterov=%d\nbeta1=%g\nbeta2=%g\nrho=%g\neps=%g\n"
             "initial_accumulator=%g\nloss=%s\nnoise=%s\nnoise_fixed=%d\nseed=%llu\n"
             "train_limit=%zu\nval_limit=%zu\nvalidate_every=%d\ntranspose=%d\n",
             DAECL_VERSION, desc, c->data_dir, arch_canon, c->epochs, c->batch,
             dc_optim_name(c->optim.kind), c->optim.lr, c->optim.momentum, c->optim.nesterov,
             c->optim.beta1, c->optim.beta2, c->optim.rho, c->optim.eps, c->optim.initial_accumulator,
             dc_loss_name(c->loss), noise, c->noise_fixed, (unsigned long long)c->seed, c->train_limit,
             c->val_limit, c->validate_every, c->transpose);
}

/* Value of `key` in "key=value\n" text, copied into buf; NULL if absent. */
static const char *config_get(const char *text, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = ll - kl - 1;
            if (vl >= len) vl = len - 1;
            memcpy(buf, p + kl + 1, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = nl ? nl + 1 : NULL;
    }
    return NULL;
}

/* Resume continues the run as it was configured: the settings that shape the random streams
 * and the arithmetic come from the checkpoint, so the result is bit-identical to a run that
 * never stopped. Only the target epoch count and display settings come from the command line. */
static dc_status apply_checkpoint_config(dc_train_config *c, const dc_checkpoint *ck, const char *path)
{
    char v[256];
    const char *t = ck->config;
    c->optim = ck->optim;
    c->seed = ck->seed;
    if (config_get(t, "batch", v, sizeof v)) c->batch = atoi(v);
    if (config_get(t, "loss", v, sizeof v) && dc_loss_parse(v, &c->loss) != DC_OK)
        return dc_fail(DC_ERR_FORMAT, "%s: bad loss '%s' in the saved configuration", path, v);
    if (config_get(t, "noise", v, sizeof v) && dc_noise_parse(v, &c->noise) != DC_OK)
        return dc_fail(DC_ERR_FORMAT, "%s: bad noise '%s' in the saved configuration", path, v);
    if (config_get(t, "noise_fixed", v, sizeof v)) c->noise_fixed = atoi(v);
    if (config_get(t, "train_limit", v, sizeof v)) c->train_limit = strtoull(v, NULL, 10);
    if (config_get(t, "val_limit", v, sizeof v)) c->val_limit = strtoull(v, NULL, 10);
    if (config_get(t, "transpose", v, sizeof v)) c->transpose = atoi(v);
    if (c->batch <= 0) return dc_fail(DC_ERR_FORMAT, "%s: bad batch size in the saved configuration", path);
    return DC_OK;
}

/* ---- training state ----------------------------------------------------------------------- */

typedef struct trainer {
    dc_device *dev;
    dc_train_config cfg;
    char arch_canon[DC_SPEC_MAX];
    char model_path[4096], best_path[4096], csv_path[4096], config_path[4096], samples_dir[4096];
    dc_dataset train, test;
    dc_model *model;
    cl_mem opt_state;
    size_t nstate;
    dc_loader *loader;
    dc_evaluator *eval;
    dc_tensor clean, noisy;
    dc_accum acc;
    int64_t step;
    int start_epoch, start_batch;
    double best_val_loss;
    /* fixed sample images for the per-epoch grid */
    cl_mem sample_pixels, sample_indices;
    int nsamples;
} trainer;

static void trainer_free(trainer *t)
{
    dc_loader_destroy(t->loader);
    dc_evaluator_destroy(t->eval);
    dc_model_destroy(t->model);
    if (t->opt_state) clReleaseMemObject(t->opt_state);
    if (t->sample_pixels) clReleaseMemObject(t->sample_pixels);
    if (t->sample_indices) clReleaseMemObject(t->sample_indices);
    dc_tensor_release(&t->clean);
    dc_tensor_release(&t->noisy);
    dc_accum_release(&t->acc);
    dc_dataset_free(&t->train);
    dc_dataset_free(&t->test);
}

static dc_status save_checkpoint(trainer *t, const char *path, int epoch, int batch)
{
    dc_checkpoint ck = {0};
    snprintf(ck.arch, sizeof ck.arch, "%s", t->arch_canon);
    ck.in_c = 1;
    ck.in_h = t->train.h;
    ck.in_w = t->train.w;
    ck.nparams = t->model->nparams;
    ck.nstate = t->nstate;
    ck.optim = t->cfg.optim;
    ck.step = t->step;
    ck.epoch = epoch;
    ck.batch = batch;
    ck.seed = t->cfg.seed;
    ck.best_val_loss = t->best_val_loss;
    char config[4096];
    format_config(&t->cfg, t->dev, t->arch_canon, config, sizeof config);
    ck.config = config;
    ck.params = malloc((ck.nparams ? ck.nparams : 1) * sizeof(float));
    ck.state = malloc((ck.nstate ? ck.nstate : 1) * sizeof(float));
    dc_status s = (!ck.params || !ck.state) ? dc_fail(DC_ERR_NOMEM, "out of memory saving a checkpoint") : DC_OK;
    if (!s) s = dc_model_get_params(t->model, ck.params);
    if (!s && ck.nstate) {
        cl_int err = clEnqueueReadBuffer(t->dev->queue, t->opt_state, CL_TRUE, 0, ck.nstate * sizeof(float),
                                         ck.state, 0, NULL, NULL);
        if (err != CL_SUCCESS) s = dc_cl_fail(err, "reading the optimizer state");
    }
    if (!s) s = dc_checkpoint_save(path, &ck);
    free(ck.params);
    free(ck.state);
    return s;
}

static dc_status load_data(trainer *t)
{
    const dc_train_config *c = &t->cfg;
    DC_TRY(dc_dataset_load(c->data_dir, "train", c->transpose, &t->train));
    DC_TRY(dc_dataset_load(c->data_dir, "test", c->transpose, &t->test));
    dc_dataset_truncate(&t->train, c->train_limit);
    dc_dataset_truncate(&t->test, c->val_limit);
    if (t->train.h != t->test.h || t->train.w != t->test.w)
        return dc_fail(DC_ERR_MISMATCH, "%s: train images are %dx%d but test images %dx%d", c->data_dir,
                       t->train.h, t->train.w, t->test.h, t->test.w);
    return DC_OK;
}

static dc_status setup(trainer *t)
{
    dc_train_config *c = &t->cfg;
    dc_arch arch;
    DC_TRY(dc_arch_parse(c->arch, &arch));
    dc_arch_format(&arch, t->arch_canon, sizeof t->arch_canon);
    DC_TRY(make_dir(c->out_dir));
    snprintf(t->model_path, sizeof t->model_path, "%s/model.dcl", c->out_dir);
    snprintf(t->best_path, sizeof t->best_path, "%s/best.dcl", c->out_dir);
    snprintf(t->csv_path, sizeof t->csv_path, "%s/metrics.csv", c->out_dir);
    snprintf(t->config_path, sizeof t->config_path, "%s/config", c->out_dir);
    snprintf(t->samples_dir, sizeof t->samples_dir, "%s/samples", c->out_dir);
    t->best_val_loss = INFINITY;

    dc_checkpoint ck = {0};
    int have_ck = 0;
    if (c->resume) {
        DC_TRY(dc_checkpoint_load(t->model_path, &ck));
        have_ck = 1;
        dc_status s = DC_OK;
        if (strcmp(ck.arch, t->arch_canon) != 0)
            s = dc_fail(DC_ERR_MISMATCH, "%s: architecture '%s' differs from --arch '%s'", t->model_path, ck.arch,
                        t->arch_canon);
        if (!s) s = apply_checkpoint_config(c, &ck, t->model_path);
        if (!s && ck.epoch >= c->epochs)
            s = dc_fail(DC_ERR_INVALID_ARG, "%s: already trained %d epochs; pass --epochs N with N > %d to continue",
                        t->model_path, ck.epoch, ck.epoch);
        if (s) {
            dc_checkpoint_free(&ck);
            return s;
        }
    } else {
        /* A fresh run must not silently overwrite another run's checkpoint. */
        struct stat st;
        if (stat(t->model_path, &st) == 0)
            return dc_fail(DC_ERR_INVALID_ARG, "%s exists: use --resume to continue that run, or another --out",
                           t->model_path);
    }
    dc_status s = load_data(t);
    if (!s && have_ck && (ck.in_h != t->train.h || ck.in_w != t->train.w))
        s = dc_fail(DC_ERR_MISMATCH, "%s: trained on %dx%d images, the data set has %dx%d", t->model_path,
                    ck.in_h, ck.in_w, t->train.h, t->train.w);
    if (!s) s = dc_model_create(t->dev, &arch, 1, t->train.h, t->train.w, c->batch, &t->model);
    if (!s && have_ck && ck.nparams != t->model->nparams)
        s = dc_fail(DC_ERR_MISMATCH, "%s: holds %llu parameters, the model has %zu", t->model_path,
                    (unsigned long long)ck.nparams, t->model->nparams);
    t->nstate = dc_optim_state_floats(c->optim.kind, t->model ? t->model->nparams : 0);
    if (!s && have_ck && ck.nstate != t->nstate)
        s = dc_fail(DC_ERR_MISMATCH, "%s: optimizer state has %llu values, expected %zu", t->model_path,
                    (unsigned long long)ck.nstate, t->nstate);
    if (!s) s = dc_buffer_create(t->dev, t->nstate, "optimizer state", &t->opt_state);
    if (!s) {
        if (have_ck) {
            s = dc_model_set_params(t->model, ck.params);
            if (!s && t->nstate) {
                cl_int err = clEnqueueWriteBuffer(t->dev->queue, t->opt_state, CL_TRUE, 0,
                                                  t->nstate * sizeof(float), ck.state, 0, NULL, NULL);
                if (err != CL_SUCCESS) s = dc_cl_fail(err, "writing the optimizer state");
            }
            t->step = ck.step;
            t->start_epoch = ck.epoch;
            t->start_batch = ck.batch;
            t->best_val_loss = ck.best_val_loss;
        } else {
            s = dc_model_init_params(t->model, derive_seed(c->seed, STREAM_INIT));
            if (!s) s = dc_optim_state_init(t->dev, &c->optim, t->opt_state, t->model->nparams);
        }
    }
    dc_checkpoint_free(&ck);
    if (s) return s;

    dc_loader_config lc = {.data = &t->train, .batch = c->batch, .shuffle = 1,
                           .seed = derive_seed(c->seed, STREAM_SHUFFLE), .drop_last = 0};
    DC_TRY(dc_loader_create(t->dev, &lc, &t->loader));
    DC_TRY(dc_evaluator_create(t->dev, &t->test, c->batch, &t->eval));
    DC_TRY(dc_tensor_create(t->dev, c->batch, 1, t->train.h, t->train.w, DC_LAYOUT_NCHW, &t->clean));
    DC_TRY(dc_tensor_create(t->dev, c->batch, 1, t->train.h, t->train.w, DC_LAYOUT_NCHW, &t->noisy));
    DC_TRY(dc_accum_create(t->dev, 1, &t->acc));

    /* The sample grid always shows the same test images with the same (validation) noise. */
    if (c->samples) {
        t->nsamples = (int)(t->test.n < SAMPLE_IMAGES ? t->test.n : SAMPLE_IMAGES);
        if (t->nsamples > c->batch) t->nsamples = c->batch;
        size_t px = (size_t)t->nsamples * t->test.h * t->test.w;
        uint32_t idx[SAMPLE_IMAGES];
        for (int i = 0; i < t->nsamples; i++) idx[i] = (uint32_t)i;
        cl_int err;
        t->sample_pixels = clCreateBuffer(t->dev->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, px,
                                          t->test.images, &err);
        if (err != CL_SUCCESS) return dc_cl_fail(err, "sample images");
        t->sample_indices = clCreateBuffer(t->dev->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                           sizeof(uint32_t) * t->nsamples, idx, &err);
        if (err != CL_SUCCESS) return dc_cl_fail(err, "sample indices");
        DC_TRY(make_dir(t->samples_dir));
    }
    char config[4096];
    format_config(c, t->dev, t->arch_canon, config, sizeof config);
    return dc_write_file_atomic(t->config_path, config, strlen(config));
}

/* clean / noisy / denoised rows of the fixed sample images. */
static dc_status write_samples(trainer *t, int epoch)
{
    int n = t->nsamples, h = t->test.h, w = t->test.w;
    dc_tensor clean = t->clean, noisy = t->noisy;
    clean.n = noisy.n = n;
    clean.owns_buf = noisy.owns_buf = 0;
    DC_TRY(dc_noise_apply(t->dev, &t->cfg.noise, t->cfg.seed, DC_NOISE_EPOCH_VALIDATION, t->sample_pixels,
                          t->sample_indices, n, h, w, &clean, &noisy, 0, NULL));
    DC_TRY(dc_model_forward(t->model, &noisy, n));
    dc_tensor z = dc_model_logits(t->model, n);
    /* The activation writes the output over the logits: nothing needs them after this. */
    DC_TRY(dc_act_forward(t->dev, t->model->out_act, &z, &z));
    size_t per = (size_t)h * w;
    float *host = malloc(3 * n * per * sizeof(float));
    uint8_t *img = NULL;
    if (!host) return dc_fail(DC_ERR_NOMEM, "out of memory");
    dc_status s = dc_tensor_read(t->dev, &clean, host);
    if (!s) s = dc_tensor_read(t->dev, &noisy, host + n * per);
    if (!s) s = dc_tensor_read(t->dev, &z, host + 2 * n * per);
    if (!s) {
        dc_grid g = {.rows = 3, .cols = n, .tile_w = w, .tile_h = h, .scale = 2, .sep = 2};
        const float *tiles[3 * SAMPLE_IMAGES];
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < n; i++) tiles[r * n + i] = host + (size_t)(r * n + i) * per;
        int gw, gh;
        dc_grid_size(&g, &gw, &gh);
        img = malloc((size_t)gw * gh);
        if (!img) s = dc_fail(DC_ERR_NOMEM, "out of memory");
        if (!s) s = dc_grid_render(&g, tiles, img);
        char path[4200];
        snprintf(path, sizeof path, "%s/epoch_%03d.png", t->samples_dir, epoch);
        if (!s) s = dc_png_write_gray8(path, img, gw, gh);
    }
    free(host);
    free(img);
    return s;
}

static dc_status append_csv(trainer *t, int epoch, double train_loss, const dc_eval_result *val, int validated,
                            double seconds, double ips)
{
    struct stat st;
    int header = stat(t->csv_path, &st) != 0 || st.st_size == 0;
    FILE *f = fopen(t->csv_path, "a");
    if (!f) return dc_fail(DC_ERR_IO, "%s: cannot append: %s", t->csv_path, strerror(errno));
    if (header) fprintf(f, "epoch,train_loss,val_loss,val_psnr,val_ssim,val_acc,seconds,img_per_s\n");
    if (validated)
        fprintf(f, "%d,%.6f,%.6f,%.4f,%.5f,%.5f,%.2f,%.1f\n", epoch, train_loss, val->loss, val->psnr, val->ssim,
                val->acc, seconds, ips);
    else
        fprintf(f, "%d,%.6f,,,,,%.2f,%.1f\n", epoch, train_loss, seconds, ips);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return dc_fail(DC_ERR_IO, "%s: write failed", t->csv_path);
    return DC_OK;
}

static dc_status train_step(trainer *t, uint32_t epoch, int n, cl_mem pixels, cl_mem indices, cl_event ready)
{
    const dc_train_config *c = &t->cfg;
    dc_tensor clean = t->clean, noisy = t->noisy;
    clean.n = noisy.n = n;
    clean.owns_buf = noisy.owns_buf = 0;
    uint32_t noise_epoch = c->noise_fixed ? 0 : epoch;
    DC_TRY(dc_noise_apply(t->dev, &c->noise, c->seed, noise_epoch, pixels, indices, n, t->train.h, t->train.w,
                          &clean, &noisy, 1, &ready));
    DC_TRY(dc_model_forward(t->model, &noisy, n));
    dc_tensor z = dc_model_logits(t->model, n), dz = dc_model_logits_grad(t->model, n);
    DC_TRY(dc_loss_compute(t->dev, c->loss, t->model->out_act == DC_ACT_SIGMOID, &z, &clean, &dz, NULL, &t->acc, 0));
    DC_TRY(dc_model_backward(t->model, &noisy, n));
    t->step++;
    return dc_optim_step(t->dev, &c->optim, t->model->params, t->model->grads, t->opt_state, t->model->nparams,
                         (long)t->step);
}

static dc_status run_epochs(trainer *t, dc_train_summary *sum)
{
    const dc_train_config *c = &t->cfg;
    dc_progress prog;
    dc_progress_init(&prog, stdout, c->quiet);
    int first_step_of_run = 1;
    for (int e = t->start_epoch; e < c->epochs; e++) {
        int start_batch = e == t->start_epoch ? t->start_batch : 0;
        int nb = dc_loader_batches_per_epoch(t->loader);
        DC_TRY(dc_loader_start_epoch(t->loader, (uint32_t)e, start_batch));
        DC_TRY(dc_accum_reset(t->dev, &t->acc));
        dc_progress_epoch(&prog, e + 1, c->epochs, nb, first_step_of_run);
        double t0 = dc_now();
        size_t images = 0;
        int b = start_batch;
        double loss_sum = 0, last_mean = NAN; /* last_mean: the epoch's mean loss when last read */
        for (;;) {
            int n;
            cl_mem pixels, indices;
            cl_event ready;
            DC_TRY(dc_loader_next(t->loader, &n, &pixels, &indices, &ready));
            if (n == 0) break;
            DC_TRY(train_step(t, (uint32_t)e, n, pixels, indices, ready));
            images += (size_t)n;
            b++;
            if (first_step_of_run) {
                /* Wait for the first step (kernel JIT) so it stays out of the ETA. */
                clFinish(t->dev->queue);
                dc_progress_mark_timed(&prog, b - start_batch);
                first_step_of_run = 0;
            }
            /* Reading the loss syncs with the device: only to redraw, and every NAN_CHECK_STEPS
             * steps so a diverging run stops near where it went wrong. */
            int due = dc_progress_due(&prog, b);
            if (due || b % NAN_CHECK_STEPS == 0) {
                DC_TRY(dc_accum_read(t->dev, &t->acc, &loss_sum));
                if (!isfinite(loss_sum))
                    return dc_fail(DC_ERR_NONFINITE, "loss is %g in epoch %d by step %d; stopped, %s",
                                   loss_sum, e + 1, b, e > 0 ? "the last checkpoint keeps the last good weights" : "nothing saved");
                last_mean = loss_sum / (double)images;
                if (due) dc_progress_draw(&prog, b, last_mean);
            }
            if (c->progress) {
                dc_train_progress p = {.epoch = e + 1, .epochs = c->epochs, .step = b, .steps = nb,
                                       .loss = last_mean, .val_loss = NAN, .val_psnr = NAN};
                if (c->progress(c->progress_user, &p)) stop_requested = 1;
            }
            if (stop_requested) {
                clFinish(t->dev->queue);
                DC_TRY(dc_accum_read(t->dev, &t->acc, &loss_sum));
                if (!isfinite(loss_sum))
                    return dc_fail(DC_ERR_NONFINITE, "loss is %g in epoch %d at step %d; not saved", loss_sum, e + 1, b);
                DC_TRY(save_checkpoint(t, t->model_path, e, b));
                if (!c->quiet) fputc('\n', stdout);
                return dc_fail(DC_ERR_INTERRUPTED, "interrupted in epoch %d at step %d/%d; saved %s (continue with --resume)",
                               e + 1, b, nb, t->model_path);
            }
        }
        DC_TRY(dc_accum_read(t->dev, &t->acc, &loss_sum));
        double train_loss = images ? loss_sum / (double)images : NAN;
        if (!isfinite(train_loss))
            return dc_fail(DC_ERR_NONFINITE, "loss is %g after epoch %d; stopped, %s keeps the last good weights",
                           train_loss, e + 1, t->model_path);
        double train_seconds = dc_now() - t0;
        double ips = images / (train_seconds > 0 ? train_seconds : 1e-9);
        int validate = (e + 1) % (c->validate_every > 0 ? c->validate_every : 1) == 0 || e + 1 == c->epochs;
        dc_eval_result val = {0};
        char extra[256] = "";
        if (validate) {
            DC_TRY(dc_evaluate(t->eval, t->model, c->loss, &c->noise, c->seed, 0, &val));
            snprintf(extra, sizeof extra, " - val_loss: %.4f - val_psnr: %.2f - val_ssim: %.3f - val_acc: %.4f",
                     val.loss, val.psnr, val.ssim, val.acc);
            sum->val = val;
            sum->validated = 1;
        }
        dc_progress_end(&prog, b - start_batch == nb ? nb : b, train_loss, extra);
        double seconds = dc_now() - t0;
        DC_TRY(append_csv(t, e + 1, train_loss, &val, validate, seconds, ips));
        DC_TRY(save_checkpoint(t, t->model_path, e + 1, 0));
        if (validate && val.loss < t->best_val_loss) {
            t->best_val_loss = val.loss;
            DC_TRY(save_checkpoint(t, t->best_path, e + 1, 0));
        }
        if (c->samples) DC_TRY(write_samples(t, e + 1));
        if (c->verbose) {
            dc_loader_stats st;
            dc_loader_stats_get(t->loader, &st);
            printf("  %.0f images/s; loader: %ld batches, device waited for data %ld times\n", ips, st.batches,
                   st.consumer_waits);
        }
        sum->epochs_done = e + 1;
        sum->train_loss = train_loss;
        sum->seconds += seconds;
        sum->images_per_second = ips;
        if (c->progress) {
            dc_train_progress p = {.epoch = e + 1, .epochs = c->epochs, .step = b, .steps = nb, .loss = train_loss,
                                   .epoch_done = 1, .val_loss = validate ? val.loss : NAN,
                                   .val_psnr = validate ? val.psnr : NAN};
            if (c->progress(c->progress_user, &p)) stop_requested = 1;
        }
        if (stop_requested && e + 1 < c->epochs)
            return dc_fail(DC_ERR_INTERRUPTED, "stopped after epoch %d; saved %s (continue with --resume)", e + 1,
                           t->model_path);
    }
    return DC_OK;
}

dc_status dc_train(dc_device *dev, const dc_train_config *cfg, dc_train_summary *summary)
{
    dc_train_summary local = {0};
    if (!summary) summary = &local;
    memset(summary, 0, sizeof *summary);
    if (cfg->epochs < 1) return dc_fail(DC_ERR_INVALID_ARG, "--epochs must be at least 1");
    if (cfg->batch < 1) return dc_fail(DC_ERR_INVALID_ARG, "--batch must be at least 1");
    DC_TRY(dc_optim_validate(&cfg->optim));
    stop_requested = 0;
    trainer t = {.dev = dev, .cfg = *cfg};
    dc_status s = setup(&t);
    if (!s && !cfg->quiet) {
        printf("training %s on %zu images (%dx%d), validating on %zu; %zu parameters; batch %d; %s; %s loss; "
               "%s convolutions\n",
               t.arch_canon, t.train.n, t.train.h, t.train.w, t.test.n, t.model->nparams, t.cfg.batch,
               dc_optim_name(t.cfg.optim.kind), dc_loss_name(t.cfg.loss), dc_conv_algo_name(dc_conv_algo_for(dev)));
        if (cfg->resume)
            printf("resuming %s at epoch %d, step %lld\n", t.model_path, t.start_epoch + 1, (long long)t.step);
        fflush(stdout);
    }
    if (!s) s = run_epochs(&t, summary);
    trainer_free(&t);
    return s;
}
