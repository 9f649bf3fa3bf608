/* Evaluation: run a model over a data set with fixed (validation) noise and report loss,
 * PSNR, SSIM and accuracy of the denoised output — and, for comparison, of the noisy input
 * itself ("do nothing"). Shared by training's validation and `dae-cl eval`. */
#ifndef DAECL_EVAL_H
#define DAECL_EVAL_H

#include "daecl/dataset.h"
#include "daecl/loader.h"
#include "daecl/loss.h"
#include "daecl/metrics.h"
#include "daecl/model.h"
#include "daecl/noise.h"

typedef struct dc_eval_result {
    size_t images;
    double loss, psnr, ssim, acc, acc_thresh;                    /* denoised vs clean */
    double noisy_loss, noisy_psnr, noisy_ssim, noisy_acc, noisy_acc_thresh; /* noisy vs clean */
    double seconds;
} dc_eval_result;

typedef struct dc_evaluator {
    dc_device *dev;
    dc_loader *loader;   /* sequential batches of the data set */
    int batch, c, h, w, depth; /* the data set's samples */
    dc_tensor clean, noisy, pred, noisy_logits;
    dc_accum acc;
} dc_evaluator;

/* Batches of `batch` images (the model must take at least that many). */
dc_status dc_evaluator_create(dc_device *dev, const dc_dataset *data, int batch, dc_evaluator **out);
void dc_evaluator_destroy(dc_evaluator *e);

/* Evaluate the whole data set. Noise is the validation stream for `seed`: the same images get
 * the same noise every time. with_baseline also measures the noisy input. */
dc_status dc_evaluate(dc_evaluator *e, dc_model *m, dc_loss_kind loss, const dc_noise_config *noise,
                      uint64_t seed, int with_baseline, dc_eval_result *out);

#endif
