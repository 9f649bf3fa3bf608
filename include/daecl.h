/* dae-cl public C API: convolutional denoising autoencoders on any OpenCL device.
 *
 *   #include <daecl.h>          cc prog.c $(pkg-config --cflags --libs daecl)
 *
 * Everything here is prefixed daecl_ / DAECL_; every other symbol of libdaecl is private.
 * Handles are opaque. Functions return a daecl_status; on failure a one-line message naming the
 * file or argument concerned is kept per thread: daecl_last_error(). Nothing here prints or exits.
 *
 * Threads: a device, and the models opened on it, are used by one thread at a time. Different
 * devices may be used from different threads, except that daecl_train runs one at a time per
 * process (its cancellation flag is process-wide). */
#ifndef DAECL_H
#define DAECL_H

#include <stddef.h>
#include <stdint.h>

#include "daecl_version.h" /* DAECL_VERSION_MAJOR/MINOR/PATCH, DAECL_VERSION_STRING */

#if defined(_WIN32)
#define DAECL_API
#elif defined(__GNUC__)
#define DAECL_API __attribute__((visibility("default")))
#else
#define DAECL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version and errors ------------------------------------------------------------------- */

/* The library's version, "MAJOR.MINOR.PATCH": compare with DAECL_VERSION_STRING to detect a
 * header/library mismatch. */
DAECL_API const char *daecl_version(void);

typedef enum daecl_status {
    DAECL_OK = 0,
    DAECL_ERR_INVALID_ARG,   /* a bad argument, setting or size */
    DAECL_ERR_IO,            /* open/read/write failed */
    DAECL_ERR_FORMAT,        /* a malformed file (checkpoint, IDX) */
    DAECL_ERR_NOMEM,         /* host memory exhausted */
    DAECL_ERR_OPENCL,        /* an OpenCL call failed */
    DAECL_ERR_BUILD,         /* a kernel failed to compile */
    DAECL_ERR_NO_DEVICE,     /* no OpenCL device, or the index is out of range */
    DAECL_ERR_DEVICE_MEMORY, /* the device ran out of memory */
    DAECL_ERR_UNSUPPORTED,   /* a valid request this device or model cannot do */
    DAECL_ERR_NONFINITE,     /* training diverged (NaN/Inf loss) */
    DAECL_ERR_INTERRUPTED,   /* cancelled (progress callback) */
    DAECL_ERR_MISMATCH       /* data does not fit the model or checkpoint */
} daecl_status;

/* Short fixed name of a status ("format error"). */
DAECL_API const char *daecl_status_name(daecl_status s);
/* The message of this thread's last failure ("" if none); valid until the next call on it. */
DAECL_API const char *daecl_last_error(void);

/* ---- devices ------------------------------------------------------------------------------ */

typedef struct daecl_device daecl_device;

typedef enum daecl_device_type {
    DAECL_DEVICE_CPU, DAECL_DEVICE_GPU, DAECL_DEVICE_ACCELERATOR, DAECL_DEVICE_OTHER
} daecl_device_type;

typedef struct daecl_device_info {
    int platform, device;  /* indices for daecl_device_open */
    daecl_device_type type;
    char name[128];
    char platform_name[128];
    char version[128];     /* "OpenCL 1.2 ..." */
    unsigned compute_units;
    uint64_t global_mem;   /* bytes */
} daecl_device_info;

/* Every OpenCL device of every platform: fills up to max entries of out (out may be NULL when
 * max is 0) and sets *count to how many exist. No device at all is DAECL_OK with *count 0. */
DAECL_API daecl_status daecl_devices(daecl_device_info *out, int max, int *count);
/* Open platform/device (indices from daecl_devices); -1, -1 chooses: DAECL_DEVICE=P:D if set,
 * else the first GPU, accelerator, CPU. */
DAECL_API daecl_status daecl_device_open(int platform, int device, daecl_device **out);
/* Close a device (NULL is fine). Its models must be freed first. */
DAECL_API void daecl_device_close(daecl_device *dev);
/* What was opened, as daecl_devices reports it. */
DAECL_API daecl_status daecl_device_get_info(const daecl_device *dev, daecl_device_info *info);

/* ---- models ------------------------------------------------------------------------------- */

typedef struct daecl_model daecl_model;

/* Load a checkpoint (.dcl, written by training) onto dev. */
DAECL_API daecl_status daecl_model_load(daecl_device *dev, const char *path, daecl_model **out);
DAECL_API void daecl_model_free(daecl_model *m);
/* The canonical architecture spec ("conv:32,pool,...") and the image size it was trained on. */
DAECL_API const char *daecl_model_arch(const daecl_model *m);
DAECL_API void daecl_model_input_size(const daecl_model *m, int *width, int *height);
DAECL_API size_t daecl_model_parameters(const daecl_model *m);
/* Its image channels, in and out (1 gray, 3 colour). */
DAECL_API int daecl_model_channels(const daecl_model *m);
/* 1 when the model predicts the noise and its output is input minus that (residual learning,
 * e.g. the dncnn preset), else 0. */
DAECL_API int daecl_model_residual(const daecl_model *m);

/* ---- denoising ---------------------------------------------------------------------------- */

typedef enum daecl_sample {
    DAECL_U8,  /* 0..255 is 0..1 */
    DAECL_U16, /* 0..65535 is 0..1, host byte order */
    DAECL_F32  /* 0..1 */
} daecl_sample;

/* A caller-owned image buffer: pixel (x, y) channel c is at
 * (char *)data + y * stride + (x * channels + c) * sample size. data and stride must be
 * multiples of the sample size (1, 2 or 4 bytes). */
typedef struct daecl_image {
    void *data;
    int width, height;
    int channels;  /* 1 gray, 3 RGB (interleaved) */
    daecl_sample sample;
    size_t stride; /* bytes from one row to the next; 0 = width * channels * sample size */
} daecl_image;

/* Denoise in into out (same width, height and channels; sample types may differ; out may be in
 * itself). Any size: large images are processed in tiles with identical results. Integers are
 * read as value / max; outputs are rounded to the nearest integer after clamping to [0, 1],
 * exactly as `dae-cl denoise` writes PNGs; float outputs are the model's output, unclamped.
 * RGB: a gray model denoises each of the three channels separately, so colours are not mixed;
 * an RGB model (daecl_model_channels 3) takes the three together, and given a gray image runs on
 * R = G = B and returns the luma of its result. tile: the largest window
 * side in pixels (bounds device memory), 0 for the default (256). */
DAECL_API daecl_status daecl_denoise(daecl_model *m, const daecl_image *in, const daecl_image *out, int tile);

/* ---- evaluation --------------------------------------------------------------------------- */

typedef struct daecl_eval_options {
    const char *data_dir; /* directory with the IDX files (train-/t10k-images-idx3-ubyte[.gz]), or a
                             folder of PNG/JPEG images: their centre crops at the model's input size */
    const char *split;    /* "test" (NULL) or "train" */
    const char *noise;    /* "gaussian:0.5", ...; NULL: the noise the model was trained with */
    uint64_t seed;        /* noise seed when use_seed is set, else the training seed */
    int use_seed;
    size_t limit;         /* first N images only; 0 all */
    int batch;            /* images per step; 0: 128 */
    int transpose;        /* EMNIST */
    const char *loss;     /* loss to report: "bce" (NULL), "mse" or "l1" */
} daecl_eval_options;

typedef struct daecl_eval_result {
    size_t images;
    double loss, psnr, ssim, accuracy;                   /* denoised vs clean */
    double noisy_loss, noisy_psnr, noisy_ssim, noisy_accuracy; /* the noisy input vs clean */
    double seconds;
} daecl_eval_result;

/* Evaluate m on a data set with fixed (validation) noise, as `dae-cl eval`. */
DAECL_API daecl_status daecl_evaluate(daecl_model *m, const daecl_eval_options *opt, daecl_eval_result *out);

/* ---- training ----------------------------------------------------------------------------- */

typedef struct daecl_train_config daecl_train_config;

/* A configuration with every default of `dae-cl train` (classic, Adam, BCE, gaussian:0.5,
 * 10 epochs, batch 128, data dir data/mnist, out dir runs/default) except that nothing is
 * printed (set "print" to "1" for the progress line on stdout). */
DAECL_API daecl_status daecl_train_config_new(daecl_train_config **out);
DAECL_API void daecl_train_config_free(daecl_train_config *cfg);
/* Set one setting by the name of its `dae-cl train` flag, value as text:
 * data out arch epochs batch optimizer lr momentum nesterov beta1 beta2 rho eps
 * initial-accumulator loss noise noise-fixed seed resume train-limit val-limit validate-every
 * samples transpose print lr-schedule lr-step-every lr-gamma warmup lr-patience min-lr
 * early-stop save-every keep. Yes/no settings take "0" or "1" (samples "0" is --no-samples).
 * The optimizer and its hyper-parameters may be set in any order. With resume "1" the run
 * continues from out/model.dcl with its stored settings: a setting set here that may change
 * (epochs, lr, validate-every, samples, val-limit, data, the schedule's parameters, early-stop,
 * save-every, keep) replaces the stored one, one that may not (batch, arch, noise, seed,
 * lr-schedule, ...) makes daecl_train fail, saying why. An early stop (early-stop) ends the run
 * with DAECL_OK before its epochs. Unknown names and bad
 * values are refused here. */
DAECL_API daecl_status daecl_train_config_set(daecl_train_config *cfg, const char *name, const char *value);

typedef struct daecl_train_progress {
    int epoch, epochs;    /* 1-based epoch of epochs */
    int step, steps;      /* steps done in this epoch, of steps */
    double loss;          /* the epoch's mean training loss when last read from the device
                           * (every 50 steps: a read waits for the device), NaN before */
    int epoch_done;       /* 1 once per epoch, after validation */
    double val_loss, val_psnr; /* at epoch_done when the epoch validated, else NaN */
} daecl_train_progress;

/* Called after every training step and at the end of every epoch; return non-zero to stop:
 * training then saves a checkpoint (resumable) and returns DAECL_ERR_INTERRUPTED. */
typedef int (*daecl_progress_fn)(void *user, const daecl_train_progress *p);

typedef struct daecl_train_summary {
    int epochs_done;
    double train_loss, seconds, images_per_second;
    int validated;
    daecl_eval_result val; /* the last validation */
} daecl_train_summary;

/* Train as `dae-cl train` does, writing the run directory (model.dcl, best.dcl, metrics.csv,
 * config). progress and summary may be NULL. */
DAECL_API daecl_status daecl_train(daecl_device *dev, const daecl_train_config *cfg, daecl_progress_fn progress,
                                   void *user, daecl_train_summary *summary);

#ifdef __cplusplus
}
#endif

#endif
