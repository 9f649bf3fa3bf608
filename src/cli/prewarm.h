/* Cold starts on CPUs: PoCL compiles one kernel at a time per process (one compiler lock), so
 * a cold `train` or `denoise` runs a helper process, `dae-cl __prewarm`, that builds the same
 * model (the training model, or the inference model of denoise's window shape) and compiles its
 * kernels in the opposite order; both write PoCL's shared cache, and each finds there what the
 * other already compiled. Started only where the first program build was slow
 * (no cached kernels), on PoCL's CPU device with 2 or more compute units, outside mpirun, and
 * unless DAECL_PREWARM=0. */
#ifndef DAECL_CLI_PREWARM_H
#define DAECL_CLI_PREWARM_H

#include <sys/types.h>

#include "daecl/device.h"

#define CLI_PREWARM_COMMAND "__prewarm"

/* Which model the helper compiles: the training model's kernels (backward and forward), or
 * the forward-only kernels of the inference model that denoise runs on its windows. */
typedef enum cli_prewarm_kind { CLI_PREWARM_TRAIN, CLI_PREWARM_INFER } cli_prewarm_kind;

typedef struct cli_prewarm {
    pid_t pid; /* the helper, 0 if none */
} cli_prewarm;

/* Build the option-free program; if that was a cold build, start the helper for the model of
 * that kind and shape on dev. Never fails the run: without a helper it is only slower. */
void cli_prewarm_start(cli_prewarm *pw, dc_device *dev, cli_prewarm_kind kind, const char *arch,
                       int in_c, int in_h, int in_w, int batch);
/* Stop the helper if it still runs, and reap it. */
void cli_prewarm_stop(cli_prewarm *pw);
/* The helper itself: argv = {__prewarm, ARCH, CxHxW, BATCH, P:D[, train|infer]} (train if
 * left out). */
int cmd_prewarm(int argc, char **argv);

#endif
