/* Checkpoints (.dcl): everything needed to use a model or resume training bit-exactly.
 *
 * File: "DAECLCKP" magic, u32 format version, u32 byte-order mark, u64 payload length, the
 * payload, u32 CRC-32 (zlib) of the payload. Little-endian host layout (the byte-order mark
 * refuses a file from a machine of the other order). Written to a temp file, fsync'd, renamed,
 * so a crash leaves the old checkpoint or the new one, never half of one.
 *
 * Version 2 payload, in order: architecture spec, input shape, parameters, optimizer state,
 * step, epoch position, best validation loss, the run configuration as named fields
 * (daecl/runconfig.h: a new setting adds a key, not a format version) followed by
 * dae_cl_version=V (the dae-cl that wrote the file; older version-2 files lack it), and the metrics.csv rows
 * of the epochs done (so the log beside a checkpoint can always be rebuilt to match it).
 * Version 3 adds, last, the state of the run's steering as "key=value\n" text (best_epoch,
 * lr_reductions, lr_last_reduction: daecl/schedule.h), so a resumed schedule or early stop
 * continues exactly; version 2 loads with best_epoch = the checkpoint's epoch when it has a best
 * loss (patience counts from there) and no reductions.
 * Version 4 has version 3's payload; its architecture spec may use what versions 1 to 3 cannot
 * read (daecl/model.h): conv:C (as many filters as the input channels, the presets' last
 * layer) and the residual head (",residual": output = input − prediction), so an older dae-cl
 * refuses the file by its version instead of misreading the spec. Versions 1 to 3 load as they
 * are (their specs name every channel count and have no residual head).
 * Version 1 (dae-cl 0.1.0: optimizer and seed as binary fields, no metrics rows) still loads,
 * converted; any other version is refused. */
#ifndef DAECL_CHECKPOINT_H
#define DAECL_CHECKPOINT_H

#include <stdint.h>

#include "daecl/fileio.h" /* dc_write_file_atomic */
#include "daecl/model.h"
#include "daecl/optim.h"
#include "daecl/runconfig.h"

#define DC_CHECKPOINT_VERSION 4

typedef struct dc_checkpoint {
    char arch[DC_SPEC_MAX]; /* canonical spec (dc_arch_format) */
    int32_t in_c, in_h, in_w;
    uint64_t nparams;
    float *params;
    uint64_t nstate;
    float *state;         /* optimizer state, nstate floats */
    int64_t step;         /* optimizer steps taken */
    int32_t epoch;        /* completed epochs */
    int32_t batch;        /* batches done in epoch `epoch` when interrupted mid-epoch, else 0 */
    double best_val_loss; /* +inf if never validated */
    int32_t best_epoch;   /* epoch of best_val_loss, 0 if never validated */
    int32_t lr_reductions, lr_last_reduction; /* plateau schedule (daecl/schedule.h) */
    dc_run_config run;    /* the run's settings; run.arch is arch */
    char *metrics;        /* metrics.csv rows of epochs 1..epoch, no header; NULL from version 1 */
    int version;          /* format version of the file loaded (1 was converted) */
    char unknown_key[64]; /* first setting this dae-cl does not know ("" if none): resume refuses */
    char written_by[32];  /* version of the dae-cl that saved it (key dae_cl_version; "" if not
                           * recorded). Save writes this dae-cl's own, whatever is here. */
} dc_checkpoint;

dc_status dc_checkpoint_save(const char *path, const dc_checkpoint *ck);
/* Refuses, with the path and the problem: not a checkpoint (magic), another format version,
 * truncation, CRC mismatch, inconsistent payload. */
dc_status dc_checkpoint_load(const char *path, dc_checkpoint *ck);
void dc_checkpoint_free(dc_checkpoint *ck);

#endif
