/* Helpers shared by dae-cl's subcommands and tools/visualize: error reporting and device
 * choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "daecl/device.h"
#include "daecl/dist.h"

/* PoCL shows zero devices, silently, when it cannot write its cache: give it one under
 * ~/.cache unless the user chose a place. */
void cli_ensure_pocl_cache_dir(void)
{
    if (getenv("POCL_CACHE_DIR")) return;
    const char *home = getenv("HOME");
    char parent[1024], dir[1100];
    snprintf(parent, sizeof parent, "%s/.cache", home && *home ? home : "/tmp");
    snprintf(dir, sizeof dir, "%s/pocl", parent);
    mkdir(parent, 0755);
    mkdir(dir, 0755);
    setenv("POCL_CACHE_DIR", dir, 0);
}

int cli_report(const char *cmd, int status)
{
    const char *detail = dc_error_detail();
    fprintf(stderr, "%s %s: %s\n", args_program, cmd, detail && *detail ? detail : dc_strerror((dc_status)status));
    if (status == DC_ERR_INVALID_ARG) return 2;
    if (status == DC_ERR_INTERRUPTED) return 130;
    return 1;
}

int cli_open_device(const char *cmd, const char *platform, const char *device, int quiet,
                    dc_device **out)
{
    int p = -1, d = -1;
    /* Under mpirun: a list "P:D,P:D,..." (flag or DAECL_DEVICE) gives one entry per rank of
     * this host; without one, local rank n takes the nth device of the default type. */
    char mine[64];
    const char *list = device ? device : getenv("DAECL_DEVICE");
    if (list && strchr(list, ',')) {
        int want = dc_dist_local_rank(), i = 0;
        const char *e = list;
        for (; i < want && e; i++) e = strchr(e, ',') ? strchr(e, ',') + 1 : NULL;
        size_t len = e ? strcspn(e, ",") : 0;
        if (!e || len == 0 || len >= sizeof mine) {
            fprintf(stderr, "%s %s: %s '%s' has no entry for local rank %d\n", args_program, cmd,
                    device ? "--device" : "DAECL_DEVICE", list, want);
            return 2;
        }
        memcpy(mine, e, len);
        mine[len] = '\0';
        device = mine;
    }
    if (device) {
        dc_status s = dc_device_parse(device, &p, &d);
        if (s) return cli_report(cmd, s);
    }
    if (platform) {
        char *end;
        long v = strtol(platform, &end, 10);
        if (end == platform || *end || v < 0 || v > 1000) {
            fprintf(stderr, "%s %s: --platform: expected a platform index, got '%s'\n", args_program, cmd, platform);
            return 2;
        }
        if (p >= 0 && p != v) {
            fprintf(stderr, "%s %s: --platform %ld and --device %s disagree\n", args_program, cmd, v, device);
            return 2;
        }
        p = (int)v;
        if (d < 0) d = 0;
    }
    cli_ensure_pocl_cache_dir();
    dc_status s = p < 0 && d < 0 && dc_dist_active() ? dc_device_open_nth(dc_dist_local_rank(), out)
                                                      : dc_device_open(p, d, out);
    if (s) return cli_report(cmd, s);
    char desc[512];
    dc_device_describe(*out, desc, sizeof desc);
    if (dc_dist_active())
        fprintf(quiet ? stderr : stdout, "rank %d of %d: device %s\n", dc_dist_rank(), dc_dist_size(), desc);
    else
        fprintf(quiet ? stderr : stdout, "device %s\n", desc);
    fflush(quiet ? stderr : stdout);
    return 0;
}

