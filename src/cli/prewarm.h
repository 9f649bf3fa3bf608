/* Cold starts on CPUs: PoCL compiles one kernel at a time per process (one compiler lock), so
 * a cold `train` runs a helper process, `dae-cl __prewarm`, that builds the same model and
 * compiles its kernels in the opposite order; both write PoCL's shared cache, and each finds
 * there what the other already compiled. Started only where the first program build was slow
 * (no cached kernels), on PoCL's CPU device with 2 or more compute units, outside mpirun, and
 * unless DAECL_PREWARM=0. */
#ifndef DAECL_CLI_PREWARM_H
#define DAECL_CLI_PREWARM_H

#include <sys/types.h>

#include "daecl/device.h"

#define CLI_PREWARM_COMMAND "__prewarm"

typedef struct cli_prewarm {
    pid_t pid; /* the helper, 0 if none */
} cli_prewarm;

/* Build the option-free program; if that was a cold build, start the helper for the training
 * model of that shape on dev. Never fails the run: without a helper it is only slower. */
void cli_prewarm_start(cli_prewarm *pw, dc_device *dev, const char *arch, int in_c, int in_h,
                       int in_w, int batch);
/* Stop the helper if it still runs, and reap it. */
void cli_prewarm_stop(cli_prewarm *pw);
/* The helper itself: argv = {__prewarm, ARCH, CxHxW, BATCH, P:D}. */
int cmd_prewarm(int argc, char **argv);

#endif
