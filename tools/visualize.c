/* dae-cl-visualize (tools/visualize in the source tree): pictures of a model and of its training.
 *
 *   grid     one column per test image, rows original / noisy / denoised (/ absolute error),
 *            with the validation noise training used (same seed, same noise: the same noisy
 *            images as the run's validation and sample grids)
 *   curves   loss and PSNR per epoch of one run (its metrics.csv)
 *   compare  the validation PSNR of several runs on one plot
 *
 * Built as build/tools/dae-cl-visualize (installed under that name); in the source tree the
 * script tools/visualize runs it. */
#include <cairo.h>
#ifdef DC_HAVE_FONTCONFIG
#include <fontconfig/fontconfig.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "daecl/dataset.h"
#include "daecl/denoise.h"
#include "daecl/noise.h"
#include "visualize_plot.h"

/* ---- grid ---------------------------------------------------------------------------------- */

typedef struct grid_job {
    int n, offset, scale, error_row;
    dc_noise_config noise;
    uint64_t seed;
    const char *out;
} grid_job;

/* Noise (validation stream, keyed by dataset index), forward, output activation; rows into
 * host: clean, noisy, denoised, error, n images each. */
static dc_status grid_rows(dc_device *dev, const dc_model *src, const dc_dataset *ds, const grid_job *j, float *host)
{
    const int n = j->n, h = ds->h, w = ds->w;
    const size_t per = (size_t)h * w;
    dc_model *m = NULL;
    dc_tensor clean = {0}, noisy = {0};
    cl_mem pixels = NULL, indices = NULL;
    uint32_t *idx = malloc(sizeof *idx * (size_t)n);
    dc_status s = idx ? dc_model_create_shared(src, h, w, n, &m) : dc_fail(DC_ERR_NOMEM, "out of memory");
    if (!s) s = dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &clean);
    if (!s) s = dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &noisy);
    if (!s) {
        for (int i = 0; i < n; i++) idx[i] = (uint32_t)(j->offset + i);
        cl_int err;
        pixels = clCreateBuffer(dev->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)n * per,
                                ds->images + (size_t)j->offset * per, &err);
        if (err != CL_SUCCESS) s = dc_cl_fail(err, "grid images");
        if (!s) indices = clCreateBuffer(dev->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof *idx * (size_t)n, idx, &err);
        if (!s && err != CL_SUCCESS) s = dc_cl_fail(err, "grid indices");
    }
    if (!s) s = dc_noise_apply(dev, &j->noise, j->seed, DC_NOISE_EPOCH_VALIDATION, pixels, indices, n, h, w, &clean,
                               &noisy, 0, NULL);
    dc_tensor z = {0};
    if (!s) s = dc_model_predict(m, &noisy, n, &z);
    if (!s) s = dc_tensor_read(dev, &clean, host);
    if (!s) s = dc_tensor_read(dev, &noisy, host + n * per);
    if (!s) s = dc_tensor_read(dev, &z, host + 2 * n * per);
    if (!s && j->error_row) {
        float *c = host, *d = host + 2 * n * per, *e = host + 3 * n * per;
        for (size_t i = 0; i < n * per; i++) e[i] = c[i] > d[i] ? c[i] - d[i] : d[i] - c[i];
    }
    if (pixels) clReleaseMemObject(pixels);
    if (indices) clReleaseMemObject(indices);
    dc_tensor_release(&clean);
    dc_tensor_release(&noisy);
    dc_model_destroy(m);
    free(idx);
    return s;
}

static int cmd_grid(int argc, char **argv)
{
    const char *platform = NULL, *device = NULL, *model_path = NULL, *data = "data/mnist", *split = "test",
               *noise = NULL, *out = NULL;
    uint64_t seed = 0;
    int n = 10, offset = 0, scale = 3, error_row = 0, transpose = 0, quiet = 0;
    arg_opt opts[] = {
        {"platform", ARG_STRING, &platform, "P", "OpenCL platform index", 1, 0, 0},
        {"device", ARG_STRING, &device, "D|P:D", "OpenCL device index", 1, 0, 0},
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {"data", ARG_STRING, &data, "DIR", "directory with the IDX files", 1, 0, 0},
        {"split", ARG_STRING, &split, "NAME", "test | train", 1, 0, 0},
        {"n", ARG_INT, &n, "N", "images (columns)", 1, 1000, 0},
        {"offset", ARG_INT, &offset, "I", "first image of the split", 0, 1 << 30, 0},
        {"scale", ARG_INT, &scale, "S", "pixel magnification", 1, 64, 0},
        {"noise", ARG_STRING, &noise, "KIND:X", "noise (default: the one the model was trained with)", 1, 0, 0},
        {"seed", ARG_U64, &seed, "N", "noise seed (default: the training seed: the run's validation noise)", 1, 0, 0},
        {"error-row", ARG_FLAG, &error_row, NULL, "add a 4th row: |denoised - original| (black = exact)", 1, 0, 0},
        {"transpose", ARG_FLAG, &transpose, NULL, "transpose images as they load (EMNIST)", 1, 0, 0},
        {"o", ARG_STRING, &out, "OUT.png", "output PNG (8-bit gray)", 1, 0, 0},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only errors", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("grid", opts, argc, argv, 1, pos, 0, &npos, "--model FILE --data DIR -o OUT.png [options]");
    if (r) return r == 1 ? 0 : r;
    if (!model_path || !out) {
        fprintf(stderr, "%s grid: --model FILE and -o OUT.png are required (see %s grid --help)\n", args_program, args_program);
        return 2;
    }
    grid_job j = {.n = n, .offset = offset, .scale = scale, .error_row = error_row, .out = out};
    if (noise && dc_noise_parse(noise, &j.noise) != DC_OK) return cli_report("grid", DC_ERR_INVALID_ARG);

    dc_dataset ds = {0};
    dc_status s = dc_dataset_load(data, split, transpose, &ds);
    if (s) return cli_report("grid", s);
    if ((size_t)offset + (size_t)n > ds.n) {
        fprintf(stderr, "%s grid: --offset %d --n %d: the %s split of %s has %zu images\n", args_program, offset, n, split, data,
                ds.n);
        dc_dataset_free(&ds);
        return 2;
    }
    dc_device *dev = NULL;
    r = cli_open_device("grid", platform, device, 1, &dev);
    if (r) {
        dc_dataset_free(&ds);
        return r;
    }
    dc_model *src = NULL;
    dc_checkpoint ck;
    s = dc_denoise_load_model(dev, model_path, &src, &ck);
    if (!s) {
        /* The run's own noise and seed, as training's validation and eval use them. */
        if (!noise) j.noise = ck.run.noise;
        j.seed = seed;
        if (!args_find(opts, "seed")->given) j.seed = ck.run.seed;
        dc_checkpoint_free(&ck);
    }
    const int rows = error_row ? 4 : 3;
    const size_t per = (size_t)ds.h * ds.w;
    float *host = NULL;
    uint8_t *img = NULL;
    dc_grid g = {.rows = rows, .cols = n, .tile_w = ds.w, .tile_h = ds.h, .scale = scale, .sep = 2};
    int gw = 0, gh = 0;
    if (!s) {
        dc_grid_size(&g, &gw, &gh);
        if (gw == 0) s = dc_fail(DC_ERR_INVALID_ARG, "%s: a %dx%d grid of %dx%d images at scale %d is too large", out, rows, n,
                                 ds.w, ds.h, scale);
    }
    if (!s) {
        host = malloc(rows * n * per * sizeof *host);
        img = malloc((size_t)gw * gh);
        if (!host || !img) s = dc_fail(DC_ERR_NOMEM, "out of memory");
    }
    if (!s) s = grid_rows(dev, src, &ds, &j, host);
    if (!s) {
        const float **tiles = malloc(sizeof *tiles * rows * n);
        if (!tiles) s = dc_fail(DC_ERR_NOMEM, "out of memory");
        for (int i = 0; tiles && i < rows * n; i++) tiles[i] = host + (size_t)i * per;
        if (!s) s = dc_grid_render(&g, tiles, img);
        free(tiles);
    }
    if (!s) s = dc_png_write_gray8(out, img, gw, gh);
    r = s ? cli_report("grid", s) : 0;
    if (!r && !quiet) {
        char nd[64];
        dc_noise_format(&j.noise, nd, sizeof nd);
        printf("%s: %dx%d, %s images %d..%d of %s; rows original, noisy (%s, seed %llu), denoised%s\n", out, gw, gh,
               split, offset, offset + n - 1, data, nd, (unsigned long long)j.seed, error_row ? ", |error|" : "");
    }
    free(host);
    free(img);
    dc_model_destroy(src);
    dc_device_close(dev);
    dc_dataset_free(&ds);
    return r;
}

/* ---- curves / compare (visualize_plot.c) --------------------------------------------------- */

static int cmd_curves(int argc, char **argv)
{
    const char *out = NULL;
    arg_opt opts[] = {
        {"o", ARG_STRING, &out, "OUT.png", "output PNG", 1, 0, 0},
        {0},
    };
    const char *pos[1];
    int npos;
    int r = args_parse("curves", opts, argc, argv, 1, pos, 1, &npos, "runs/NAME[/metrics.csv] -o OUT.png");
    if (r) return r == 1 ? 0 : r;
    if (npos != 1 || !out) {
        fprintf(stderr, "%s curves: give one run (runs/NAME or its metrics.csv) and -o OUT.png\n", args_program);
        return 2;
    }
    char csv[4096];
    struct stat st;
    if (stat(pos[0], &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(csv, sizeof csv, "%s/metrics.csv", pos[0]);
    else
        snprintf(csv, sizeof csv, "%s", pos[0]);
    char err[512];
    if (dc_plot_curves(csv, out, err, sizeof err) != 0) {
        fprintf(stderr, "%s curves: %s\n", args_program, err);
        return 1;
    }
    printf("%s: curves of %s\n", out, csv);
    return 0;
}

static int cmd_compare(int argc, char **argv)
{
    const char *out = NULL;
    arg_opt opts[] = {
        {"o", ARG_STRING, &out, "OUT.png", "output PNG", 1, 0, 0},
        {0},
    };
    const char **pos = malloc(sizeof *pos * (size_t)argc);
    if (!pos) return 1;
    int npos;
    int r = args_parse("compare", opts, argc, argv, 1, pos, argc, &npos, "runs/A runs/B ... -o OUT.png");
    if (r) {
        free(pos);
        return r == 1 ? 0 : r;
    }
    if (npos < 1 || !out) {
        fprintf(stderr, "%s compare: give one or more runs (directories or metrics.csv files) and -o OUT.png\n", args_program);
        r = 2;
    }
    if (!r) {
        char err[512];
        /* The strings are argv's: writable, and dc_plot_compare only reads them. */
        if (dc_plot_compare(npos, (char **)pos, out, err, sizeof err) != 0) {
            fprintf(stderr, "%s compare: %s\n", args_program, err);
            r = 1;
        } else {
            printf("%s: validation PSNR of %d runs\n", out, npos);
        }
    }
    free(pos);
    return r;
}

/* ---- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    const char *p = args_program;
    fprintf(f,
            "usage: %s COMMAND [options]   (%s COMMAND --help for its options)\n\n"
            "  grid     original / noisy / denoised rows of test images, with the run's validation noise\n"
            "           (the default command):\n"
            "           %s grid --model runs/NAME/model.dcl --data data/mnist -o grid.png\n"
            "  curves   loss and PSNR per epoch of a run: %s curves runs/NAME -o curves.png\n"
            "  compare  validation PSNR of several runs: %s compare runs/A runs/B -o compare.png\n",
            p, p, p, p, p);
}

int main(int argc, char **argv)
{
    /* Messages name the program as it was run: dae-cl-visualize when installed, tools/visualize
     * from the source tree (that script runs this binary under its own name). */
    const char *base = strrchr(argv[0], '/');
    args_program = strcmp(base ? base + 1 : argv[0], "dae-cl-visualize") == 0 ? "dae-cl-visualize" : "tools/visualize";
    int r;
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "grid") == 0) {
        r = cmd_grid(argc - 1, argv + 1);
    } else if (argv[1][0] == '-') {
        r = cmd_grid(argc, argv); /* flags without a command: grid (the short form the docs show) */
    } else if (strcmp(argv[1], "curves") == 0) {
        r = cmd_curves(argc - 1, argv + 1);
    } else if (strcmp(argv[1], "compare") == 0) {
        r = cmd_compare(argc - 1, argv + 1);
    } else {
        fprintf(stderr, "%s: unknown command '%s' (grid, curves, compare; see %s --help)\n", args_program, argv[1], args_program);
        return 2;
    }
    /* Release cairo's and fontconfig's caches so LeakSanitizer reports only real leaks. */
    cairo_debug_reset_static_data();
#ifdef DC_HAVE_FONTCONFIG
    FcFini();
#endif
    return r;
}
