/* Training: the main job. Streams MNIST-style IDX data through the double-buffered loader, adds
 * noise on the device, trains the model, validates, and keeps a run directory:
 *   OUT/config        every setting, the device, the dae-cl version
 *   OUT/metrics.csv   one row per epoch of model.dcl: rewritten (atomically) after each save,
 *                     and from the checkpoint's own rows on resume, so it always describes
 *                     exactly the epochs of the checkpoint beside it
 *   OUT/model.dcl     last checkpoint; OUT/best.dcl the one with the best validation loss
 *   OUT/epoch_NNN.dcl every --save-every epochs, the --keep most recent (written before model.dcl,
 *                     so a fault between them repeats the epoch and writes it again)
 *   OUT/samples/epoch_NNN.png  fixed test images: clean / noisy / denoised
 *   OUT/.lock         held (flock) for the whole run: a second writer is refused with the PID
 *                     of the first; the kernel drops the lock when a process dies, even by kill -9
 * A run starts by removing temporaries (NAME.tmp.PID) that dead processes left in OUT and
 * OUT/samples. A fresh run into a directory without model.dcl removes a stale metrics.csv and
 * best.dcl and epoch_NNN.dcl. The learning rate follows the run's schedule (daecl/schedule.h);
 * --early-stop ends the run (DC_OK, summary.stopped_early) at a validated epoch that many epochs
 * after the best one, and a resume of such a run is refused unless the patience grows. Ctrl-C (SIGINT/SIGTERM, via dc_train_request_stop) finishes the step, saves and
 * returns DC_ERR_INTERRUPTED. A non-finite loss stops with DC_ERR_NONFINITE, keeping the last
 * good checkpoint. Under mpirun (daecl/dist.h, docs/MPI.md) every rank calls dc_train: each
 * trains on its share of every global batch, rank 0 alone writes OUT, the stop is agreed. */
#ifndef DAECL_TRAIN_H
#define DAECL_TRAIN_H

#include <stdint.h>

#include "daecl/eval.h"
#include "daecl/runconfig.h"

/* What a progress callback sees: after every step, and once at the end of every epoch. */
typedef struct dc_train_progress {
    int epoch, epochs;   /* 1-based */
    int step, steps;     /* steps done in this epoch, of steps */
    double loss;         /* mean training loss of the epoch at the last read (NaN before one) */
    int epoch_done;
    double val_loss, val_psnr; /* when epoch_done and the epoch validated, else NaN */
} dc_train_progress;

/* Return non-zero to stop training as dc_train_request_stop does (save, DC_ERR_INTERRUPTED). */
typedef int (*dc_train_progress_fn)(void *user, const dc_train_progress *p);

typedef struct dc_train_config {
    dc_run_config run;    /* the settings the checkpoint keeps (daecl/runconfig.h) */
    const char *out_dir;
    int resume;           /* continue from OUT/model.dcl: its settings, with the fields given in
                             run.given applied or refused (dc_run_config_resume) */
    int quiet, verbose;
    dc_train_progress_fn progress; /* may be NULL (the library API's callback) */
    void *progress_user;
    /* Called once the model exists, before its first kernel is built (may be NULL): the
     * command line starts a helper process that compiles kernels beside it on a cold start. */
    void (*model_ready)(void *user, const char *arch, int in_c, int in_h, int in_w, int batch);
    void *model_ready_user;
} dc_train_config;

typedef struct dc_train_summary {
    int epochs_done;
    double train_loss, seconds, images_per_second;
    dc_eval_result val; /* last validation */
    int validated;
    double lr;          /* learning rate of the last epoch */
    int best_epoch;     /* epoch of the best validation loss (best.dcl), 0 if none */
    double best_val_loss;
    int stopped_early;  /* --early-stop ended the run before --epochs */
} dc_train_summary;

/* The header line of metrics.csv (with its newline); a checkpoint's metrics rows have these
 * fields in this order. */
extern const char dc_metrics_csv_header[];

/* The run configuration's defaults (runconfig.c), out_dir runs/default. */
void dc_train_defaults(dc_train_config *cfg);
dc_status dc_train(dc_device *dev, const dc_train_config *cfg, dc_train_summary *summary);

/* Async-signal-safe: ask a running dc_train to stop after the current step. */
void dc_train_request_stop(void);

#endif
