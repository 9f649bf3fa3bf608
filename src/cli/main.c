/* dae-cl: train and run convolutional denoising autoencoders on any OpenCL device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json.h"
#include "cli/prewarm.h"
#include "daecl/device.h"

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a denoiser on an IDX data set (MNIST by default) or a folder of images"},
    {"data", cmd_data, "what a folder of PNG/JPEG images holds, as training would load it"},
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
    fprintf(out, "\n  --list-devices   list OpenCL devices (--json for JSON)\n  --version        print the version\n\n"
                 "Device choice: --platform P --device D (or --device P:D), or --device gpu|cpu|accel for\n"
                 "the first of that type; or DAECL_DEVICE=P:D|TYPE; otherwise the first GPU, else\n"
                 "accelerator, else CPU.\n");
}

static void devices_json(const dc_device_catalog *cat)
{
    json_writer w;
    json_begin(&w, stdout);
    json_object(&w, NULL);
    json_array(&w, "platforms");
    for (int p = 0; p < cat->nplatforms; p++) {
        json_object(&w, NULL);
        json_int(&w, "index", p);
        json_string(&w, "name", cat->platform_name[p]);
        json_string(&w, "version", cat->platform_version[p]);
        json_array(&w, "devices");
        for (int i = 0; i < cat->ndevices; i++) {
            const dc_device *d = &cat->devices[i];
            if (d->platform_index != p) continue;
            char id[24];
            snprintf(id, sizeof id, "%d:%d", p, d->device_index);
            json_object(&w, NULL);
            json_string(&w, "id", id);
            json_int(&w, "device", d->device_index);
            json_string(&w, "type", dc_device_type_name(d->type));
            json_string(&w, "name", d->name);
            json_string(&w, "vendor", d->vendor);
            json_string(&w, "driver", d->driver);
            json_string(&w, "version", d->version);
            json_string(&w, "opencl_c", d->c_version);
            json_uint(&w, "compute_units", d->compute_units);
            json_uint(&w, "global_memory_bytes", d->global_mem);
            json_uint(&w, "max_alloc_bytes", d->max_alloc);
            json_uint(&w, "max_work_group_size", d->max_wg);
            json_end(&w);
        }
        json_end(&w);
        json_end(&w);
    }
    json_end(&w);
    json_end(&w);
}

int cmd_devices(int argc, char **argv)
{
    int as_json = 0;
    arg_opt opts[] = {
        {"json", ARG_FLAG, &as_json, NULL, "one JSON document: platforms and their devices", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("devices", opts, argc, argv, 1, pos, 0, &npos, "[--json]   (also: dae-cl --list-devices [--json])");
    if (r) return r == 1 ? 0 : r;
    cli_ensure_pocl_cache_dir();
    if (!as_json) {
        dc_status s = dc_device_list(stdout);
        return s ? cli_report("devices", s) : 0;
    }
    dc_device_catalog *cat = malloc(sizeof *cat);
    dc_status s = cat ? dc_device_catalog_get(cat) : dc_fail(DC_ERR_NOMEM, "out of memory");
    if (!s) devices_json(cat);
    free(cat);
    return s ? cli_report("devices", s) : 0;
}

/* The top level's own flags take nothing after them. */
static int no_more_arguments(int argc, char **argv)
{
    if (argc <= 2) return 0;
    fprintf(stderr, "dae-cl: %s takes no arguments, got '%s' (see dae-cl --help)\n", argv[1], argv[2]);
    return 2;
}

/* dae-cl --help | -h | help [COMMAND] */
static int help(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "help") == 0) {
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[2], commands[i].name) == 0) {
                char *sub[] = {argv[2], "--help", NULL};
                return commands[i].run(2, sub);
            }
        fprintf(stderr, "dae-cl help: unknown command '%s' (see dae-cl --help)\n", argv[2]);
        return 2;
    }
    if (argc > 2) return no_more_arguments(argc, argv);
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0)
        return help(argc, argv);
    if (strcmp(argv[1], "--version") == 0) {
        if (argc > 2) return no_more_arguments(argc, argv);
        printf("dae-cl %s\n", DAECL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--list-devices") == 0) return cmd_devices(argc - 1, argv + 1);
    if (strcmp(argv[1], CLI_PREWARM_COMMAND) == 0) return cmd_prewarm(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dae-cl: unknown command '%s' (see dae-cl --help)\n", argv[1]);
    return 2;
}
