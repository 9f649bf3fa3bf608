/* dae-cl: train and run convolutional denoising autoencoders on any OpenCL device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "daecl/device.h"

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a denoiser on an IDX data set (MNIST by default)"},
    {"eval", cmd_eval, "test-set loss, PSNR, SSIM and accuracy of a model vs the noisy input"},
    {"denoise", cmd_denoise, "denoise your own PNG images with a trained model"},
    {"model", cmd_model, "print an architecture's layers, shapes and parameter count"},
    {"devices", cmd_devices, "list OpenCL platforms and devices (same as --list-devices)"},
};

static void usage(FILE *out)
{
    fprintf(out, "dae-cl %s: convolutional denoising autoencoders on OpenCL\n\n"
                 "usage: dae-cl COMMAND [options]   (dae-cl COMMAND --help for its options)\n\n",
            DAECL_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  --list-devices   list OpenCL devices\n  --version        print the version\n\n"
                 "Device choice: --platform P --device D (or --device P:D), or DAECL_DEVICE=P:D;\n"
                 "otherwise the first GPU, else accelerator, else CPU.\n");
}

/* PoCL shows zero devices, silently, when it cannot write its cache: give it one under
 * ~/.cache unless the user chose a place. */
static void ensure_pocl_cache_dir(void)
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
    fprintf(stderr, "dae-cl %s: %s\n", cmd, detail && *detail ? detail : dc_strerror((dc_status)status));
    if (status == DC_ERR_INVALID_ARG) return 2;
    if (status == DC_ERR_INTERRUPTED) return 130;
    return 1;
}

int cli_open_device(const char *cmd, const char *platform, const char *device, int quiet,
                    dc_device **out)
{
    int p = -1, d = -1;
    if (device) {
        dc_status s = dc_device_parse(device, &p, &d);
        if (s) return cli_report(cmd, s);
    }
    if (platform) {
        char *end;
        long v = strtol(platform, &end, 10);
        if (end == platform || *end || v < 0 || v > 1000) {
            fprintf(stderr, "dae-cl %s: --platform: expected a platform index, got '%s'\n", cmd, platform);
            return 2;
        }
        if (p >= 0 && p != v) {
            fprintf(stderr, "dae-cl %s: --platform %ld and --device %s disagree\n", cmd, v, device);
            return 2;
        }
        p = (int)v;
        if (d < 0) d = 0;
    }
    ensure_pocl_cache_dir();
    dc_status s = dc_device_open(p, d, out);
    if (s) return cli_report(cmd, s);
    char desc[512];
    dc_device_describe(*out, desc, sizeof desc);
    fprintf(quiet ? stderr : stdout, "device %s\n", desc);
    return 0;
}

int cmd_devices(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    ensure_pocl_cache_dir();
    dc_status s = dc_device_list(stdout);
    return s ? cli_report("--list-devices", s) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("dae-cl %s\n", DAECL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--list-devices") == 0) return cmd_devices(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dae-cl: unknown command '%s' (see dae-cl --help)\n", argv[1]);
    return 2;
}
