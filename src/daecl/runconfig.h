/* The settings of a training run, typed, with ONE table of fields (runconfig.c) that drives
 * everything about a setting: its key in stored text, its command-line flag, its type and
 * range, its default (the only place it is written), its help line, and whether it may change
 * when a run is resumed.
 *
 * Stored text (checkpoints, OUT/config) is "key=value\n" lines led by config_version=1; a key
 * missing from the text takes its default, so a new setting does not change any file format
 * (the default must be the behaviour from before the setting existed). Floats are written with
 * the fewest digits that read back to the same float, so a stored run resumes bit-exactly.
 *
 * On --resume the checkpoint's settings are the run's; a setting the user gave again (its bit
 * in `given`) either replaces the stored one with a notice (epochs, lr, validate-every, samples,
 * val-limit, data, the schedule's parameters, early-stop, save-every, keep) or, where the arithmetic or the random streams depend on it (batch,
 * architecture, noise, seed, loss, optimizer and its other hyper-parameters, train-limit,
 * transpose, noise-fixed, lr-schedule, residual, depth, width), is refused with the reason.
 *
 * The architecture field holds the canonical spec (dc_arch_format): --depth and --width resize
 * it while it is the dncnn preset's, --residual gives it the residual head, whatever their
 * order on the command line. A loss the user did not choose follows the model (through
 * dc_run_config_set): bce for a sigmoid head, mse for a residual or any other head. */
#ifndef DAECL_RUNCONFIG_H
#define DAECL_RUNCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/loss.h"
#include "daecl/model.h"
#include "daecl/noise.h"
#include "daecl/optim.h"
#include "daecl/schedule.h"

#define DC_RUN_CONFIG_VERSION 1
#define DC_RUN_PATH_MAX 1024
#define DC_RUN_TEXT_MAX 8192 /* enough for every field at its longest */
#define DC_RUN_DEFAULT_PATCH 64

typedef struct dc_run_config {
    char data_dir[DC_RUN_PATH_MAX];
    char arch[DC_SPEC_MAX]; /* canonical spec (dc_arch_format) */
    int epochs, batch;
    dc_optim_config optim;
    dc_loss_kind loss;
    dc_noise_config noise;
    int noise_fixed;        /* one noise draw for all epochs (as the original study) */
    uint64_t seed;
    uint64_t train_limit, val_limit; /* 0 = all */
    int validate_every;     /* epochs between validations (the last epoch always validates) */
    int samples;            /* write OUT/samples/epoch_NNN.png */
    int transpose;          /* EMNIST */
    dc_schedule_config schedule; /* learning rate per epoch (daecl/schedule.h) */
    int early_stop;         /* stop after this many epochs without val_loss improvement; 0 never */
    int save_every, keep;   /* epoch_NNN.dcl every save_every epochs (0 never), the keep most recent (0 all) */
    int residual;           /* the residual head on any architecture (daecl/model.h) */
    int depth, width;       /* --arch dncnn's conv layers and filters (0: its defaults) */
    /* image folders (daecl/imageset.h, daecl/patches.h); IDX sets ignore these */
    int channels;           /* 1 or 3; 0: 3 when any image is colour */
    int patch;              /* training crop size; 0: DC_RUN_DEFAULT_PATCH */
    int augment;            /* flips and 90-degree rotations of the crops */
    int patches_per_epoch;
    char val_data[DC_RUN_PATH_MAX]; /* validation folder; "" none */
    float val_split;        /* fraction of the folder held out for validation by path hash */
    int max_data_mb;        /* host memory bound for the pixels */
    int strict;             /* stop at the first bad image file */
    uint64_t given;         /* bit i: field i was set by dc_run_config_set (the user's choice) */
} dc_run_config;

typedef enum dc_run_type {
    DC_RUN_PATH, DC_RUN_ARCH, DC_RUN_INT, DC_RUN_U64, DC_RUN_FLOAT, DC_RUN_BOOL,
    DC_RUN_OPTIMIZER, DC_RUN_LOSS, DC_RUN_NOISE, DC_RUN_SCHEDULE
} dc_run_type;

typedef struct dc_run_field {
    const char *key;   /* in stored text, e.g. "noise_fixed" */
    const char *flag;  /* command-line flag without dashes ("noise-fixed"); a BOOL flag sets
                          the value that is not the default ("no-samples" sets samples=0) */
    dc_run_type type;
    size_t offset;     /* in dc_run_config */
    const char *def;   /* default as text; NULL for an optimizer hyper-parameter: the
                          optimizer's own default (dc_optim_defaults) */
    const char *meta, *help;
    double min, max;   /* numeric range, inclusive (INT, U64, FLOAT) */
    const char *fixed; /* NULL: may change on --resume; else why it may not */
} dc_run_field;

/* The table, in the order of help and stored text. */
const dc_run_field *dc_run_fields(int *count);
/* Index of the field with this key or flag, -1 if none. */
int dc_run_field_find(const char *key_or_flag);

/* Every field at its default, given = 0. */
void dc_run_config_defaults(dc_run_config *c);
/* Parse value into the field named by key or flag and mark it given. BOOL: NULL sets the
 * flag's value, else 0/1. Choosing an optimizer resets the hyper-parameters not given to its
 * defaults. Errors are DC_ERR_INVALID_ARG with one line naming the flag and the value. */
dc_status dc_run_config_set(dc_run_config *c, const char *key_or_flag, const char *value);
/* The field's value as text that parses back to it. */
void dc_run_config_value(const dc_run_config *c, int field, char *buf, size_t len);
/* The default for help: "gaussian:0.5", or per optimizer "adam 0.001, sgd 0.01, ...". */
void dc_run_config_default_text(int field, char *buf, size_t len);
/* Checks across fields (the optimizer's hyper-parameters, see dc_optim_validate; the schedule's,
 * see dc_schedule_check). */
dc_status dc_run_config_check(const dc_run_config *c);

/* "config_version=1\nkey=value\n..." for every field; with_arch = 0 leaves out the
 * architecture (a checkpoint keeps it with the model). Returns the length (truncated at len). */
size_t dc_run_config_format(const dc_run_config *c, int with_arch, char *buf, size_t len);
/* Defaults, then the text's fields; given = 0 after. `origin` names the text in messages. A key
 * this dae-cl does not know is copied to unknown (when non-NULL, size 64) and skipped; with
 * unknown NULL it is refused. Keys in `ignore` (NULL-terminated list, may be NULL) are
 * skipped. Bad values and a config_version other than 1 are DC_ERR_FORMAT. */
dc_status dc_run_config_parse(const char *text, const char *origin, const char *const *ignore, dc_run_config *c,
                              char *unknown);

/* Resume: `run` holds the checkpoint's settings; apply the fields given in `asked`. A field that
 * may change and differs replaces the stored value and appends a notice line ("--lr 0.0001
 * replaces 0.001 from the checkpoint\n") to notices; one that may not is refused
 * (DC_ERR_INVALID_ARG, one line: flag, both values, why). */
dc_status dc_run_config_resume(dc_run_config *run, const dc_run_config *asked, char *notices, size_t len);

#endif
