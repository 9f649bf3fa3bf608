/* A second process that compiles kernels beside a cold `train` or `denoise` (see prewarm.h). */
#include "cli/prewarm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "daecl/dist.h"
#include "daecl/kernels.h"
#include "daecl/model.h"
#include "daecl/tensor.h"

extern char **environ;

/* The option-free program (every model's first build) took this long: its kernels were not in
 * the driver's cache, so the model's are probably not either. */
#define COLD_BUILD_SECONDS 0.5

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int prewarm_wanted(dc_device *dev)
{
    const char *e = getenv("DAECL_PREWARM");
    if (e && strcmp(e, "0") == 0) return 0;
    /* PoCL's CPU device: one kernel compile at a time per process, and a disk cache that
     * processes share. Under mpirun the ranks already share the work. */
    return dc_device_is_pocl(dev) && (dev->type & CL_DEVICE_TYPE_CPU) && dev->compute_units >= 2 &&
           !dc_dist_active();
}

void cli_prewarm_start(cli_prewarm *pw, dc_device *dev, cli_prewarm_kind kind, const char *arch,
                       int in_c, int in_h, int in_w, int batch)
{
    pw->pid = 0;
    if (!prewarm_wanted(dev)) return;
    double t0 = now_seconds();
    if (dc_program_prepare(dev, "util.cl", "") != DC_OK) return; /* the run will say why */
    if (now_seconds() - t0 < COLD_BUILD_SECONDS) return;

    char shape[64], nb[32], where[32];
    snprintf(shape, sizeof shape, "%dx%dx%d", in_c, in_h, in_w);
    snprintf(nb, sizeof nb, "%d", batch);
    snprintf(where, sizeof where, "%d:%d", dev->platform_index, dev->device_index);
    char *argv[] = {"dae-cl", CLI_PREWARM_COMMAND, (char *)arch, shape, nb, where,
                    kind == CLI_PREWARM_INFER ? "infer" : "train", NULL};
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return;
    /* Silent: its output is not the run's, and a test harness must not wait on its pipes. */
    for (int fd = 0; fd <= 2; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ) == 0) pw->pid = pid;
    posix_spawn_file_actions_destroy(&fa);
}

void cli_prewarm_stop(cli_prewarm *pw)
{
    if (pw->pid <= 0) return;
    /* PoCL writes each cache entry to a temporary file and renames it, so a helper stopped
     * mid-compile leaves nothing half-written. */
    kill(pw->pid, SIGTERM);
    while (waitpid(pw->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    pw->pid = 0;
}

/* The helper, on zeros. Training model: each layer's backward from the last layer to the
 * first, run to the end (clFinish) before each forward from the last: the forward's program
 * builds would otherwise hold PoCL's compiler lock between the backward kernels' compiles,
 * which the run needs sooner (classic 1-step cold run, alternated 6 times on a 2-core Zen 1:
 * 14.4-15.6 -> 14.1-14.6 s). Inference model (denoise; forward-only kernels, as
 * the run's device has): each forward from the last layer. Either way the opposite order to the
 * run's own first step, so the two processes compile different kernels until they meet, and the
 * run finds the helper's in PoCL's cache. */
int cmd_prewarm(int argc, char **argv)
{
    if (argc != 5 && argc != 6) return 2;
    int infer = argc == 6 && strcmp(argv[5], "infer") == 0;
    if (argc == 6 && !infer && strcmp(argv[5], "train") != 0) return 2;
    int c, h, w, batch = atoi(argv[3]);
    if (sscanf(argv[2], "%dx%dx%d", &c, &h, &w) != 3 || batch < 1) return 2;
    dc_arch arch;
    if (dc_arch_parse(argv[1], &arch) != DC_OK) return 1;
    dc_device *dev = NULL;
    if (cli_open_device("prewarm", NULL, argv[4], 1, &dev) != 0) return 1;
    dev->opts.forward_only = infer; /* as `denoise` sets it: its plans, its programs */
    dc_model *train_model = NULL, *infer_model = NULL, *m = NULL;
    dc_tensor x = {0};
    dc_status s = dc_model_create(dev, &arch, c, h, w, infer ? 1 : batch, &train_model);
    if (!s && infer) s = dc_model_create_shared(train_model, h, w, batch, &infer_model);
    if (!s) {
        m = infer ? infer_model : train_model;
        s = dc_tensor_create(dev, batch, c, h, w, DC_LAYOUT_NCHW, &x);
    }
    for (int i = m && !infer ? m->arch.nlayers - 1 : -1; !s && i >= 0; i--)
        s = dc_model_layer_backward(m, &x, batch, i);
    if (!s && !infer && clFinish(dev->queue) != CL_SUCCESS) s = DC_ERR_OPENCL;
    for (int i = m ? m->arch.nlayers - 1 : -1; !s && i >= 0; i--)
        s = dc_model_layer_forward(m, &x, batch, i);
    if (!s && clFinish(dev->queue) != CL_SUCCESS) s = DC_ERR_OPENCL;
    dc_tensor_release(&x);
    dc_model_destroy(infer_model);
    dc_model_destroy(train_model);
    dc_device_close(dev);
    return s ? 1 : 0;
}
