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
    {"export", cmd_export, "write a model as ONNX (standard operators) or NumPy .npz weights"},
    {"info", cmd_info, "what a checkpoint holds: architecture, settings, epochs, metrics, version"},
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

int cmd_devices(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_ensure_pocl_cache_dir();
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
