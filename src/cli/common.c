/* Helpers shared by dae-cl's subcommands and tools/visualize: error reporting and device
 * choice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "daecl/device.h"

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
    cl_device_type type = dc_device_type_parse(device);
    if (device && !type) {
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
        if (d < 0 && !type) d = 0;
    }
    cli_ensure_pocl_cache_dir();
    dc_status s = type ? dc_device_open_type(type, p, out) : dc_device_open(p, d, out);
    if (s) return cli_report(cmd, s);
    char desc[512];
    dc_device_describe(*out, desc, sizeof desc);
    fprintf(quiet ? stderr : stdout, "device %s\n", desc);
    return 0;
}


int cli_check_output(const char *cmd, const char *path, const char *ext, int stdout_ok)
{
    if (strcmp(path, "-") == 0) {
        if (stdout_ok) return 0;
        fprintf(stderr, "%s %s: -o -: this command does not write to stdout; name a %s file\n", args_program, cmd, ext);
        return 2;
    }
    size_t n = strlen(path), e = strlen(ext);
    if (n > e && strcasecmp(path + n - e, ext) == 0 && path[n - e - 1] != '/') return 0;
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash) && dot[1])
        fprintf(stderr, "%s %s: -o %s: cannot write the %s format, only %s; name a %s file\n", args_program, cmd, path,
                dot + 1, ext + 1, ext);
    else
        fprintf(stderr, "%s %s: -o %s: the output format comes from the file name; name a %s file\n", args_program, cmd,
                path, ext);
    return 2;
}
