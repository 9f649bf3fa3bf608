/* Helpers shared by dae-cl's subcommands and tools/visualize: error reporting and device
 * choice. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "daecl/device.h"
#include "daecl/dist.h"
#include "daecl/kernels.h"

/* Whether dir exists or can be created, and a file can be created in it; why not in *why. */
static int dir_writable(const char *dir, const char **why)
{
    char path[4200];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    int e = mkdir(path, 0755) == 0 ? 0 : errno;
    struct stat st;
    if (stat(path, &st) != 0) {
        *why = strerror(e ? e : ENOENT);
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        *why = "exists and is not a directory";
        return 0;
    }
    snprintf(path, sizeof path, "%s/.dae-cl-probe.%ld", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        *why = strerror(errno);
        return 0;
    }
    close(fd);
    unlink(path);
    return 1;
}

static void report_cache_write_problem(void)
{
    const char *p = dc_kernel_cache_write_problem();
    if (*p) fprintf(stderr, "%s: warning: kernel cache %s; kernels will be compiled again next run\n", args_program, p);
}

/* PoCL shows zero devices, silently, when it cannot write its cache, and fails every kernel
 * build when the directory is unwritable: give it ~/.cache/pocl unless the user chose a place,
 * and when that place is unusable say so once and use a private one under $TMPDIR instead. The
 * dae-cl kernel cache is only skipped when unusable, but the user hears why, once. */
void cli_ensure_pocl_cache_dir(void)
{
    static int done;
    if (done) return;
    done = 1;
    const char *set = getenv("POCL_CACHE_DIR");
    const char *home = getenv("HOME");
    char dir[1100];
    if (set && *set) snprintf(dir, sizeof dir, "%s", set);
    else snprintf(dir, sizeof dir, "%s/.cache/pocl", home && *home ? home : "/tmp");
    const char *why = "";
    if (!dir_writable(dir, &why)) {
        const char *tmp = getenv("TMPDIR");
        char fallback[1100];
        snprintf(fallback, sizeof fallback, "%s/dae-cl-pocl-%ld", tmp && *tmp ? tmp : "/tmp", (long)getuid());
        const char *why2 = "";
        int ok = dir_writable(fallback, &why2);
        fprintf(stderr, "%s: warning: PoCL cache %s%s: %s; %s %s\n", args_program, set && *set ? "POCL_CACHE_DIR=" : "",
                dir, why, ok ? "using" : "and cannot use", fallback);
        if (ok) snprintf(dir, sizeof dir, "%s", fallback);
    }
    setenv("POCL_CACHE_DIR", dir, 1);
    atexit(report_cache_write_problem);
    if (dc_kernel_cache_check() != DC_OK)
        fprintf(stderr, "%s: warning: %s; kernels are compiled on every run (set DAECL_CACHE_DIR to a writable directory)\n",
                args_program, dc_error_detail());
    dc_clear_error();
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
    dc_status s = type                                  ? dc_device_open_type(type, p, out)
                  : p < 0 && d < 0 && dc_dist_active() ? dc_device_open_nth(dc_dist_local_rank(), out)
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


int cli_check_output(const char *cmd, const char *path, const char *ext, int stdout_ok)
{
    if (strcmp(path, "-") == 0) {
        if (stdout_ok) return 0;
        fprintf(stderr, "%s %s: -o -: this command does not write to stdout; name a %s file\n", args_program, cmd, ext);
        return 2;
    }
    /* The extension names the format; a name without one (/dev/null, a FIFO) takes the writer's. */
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path, *dot = strrchr(base, '.');
    if (!dot || dot == base || !dot[1] || strcasecmp(dot, ext) == 0) return 0;
    fprintf(stderr, "%s %s: -o %s: cannot write the %s format, only %s; name a %s file\n", args_program, cmd, path,
            dot + 1, ext + 1, ext);
    return 2;
}
