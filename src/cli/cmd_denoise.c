/* dae-cl denoise: run a trained model on PNG files of any size (see daecl/denoise.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "daecl/denoise.h"
#include "daecl/fileio.h"
#include "daecl/noise.h"

typedef struct denoise_job {
    dc_denoiser *den;
    const dc_noise_config *noise; /* NULL: none */
    uint64_t seed;
    int compare, quiet;
} denoise_job;

/* SIGINT/SIGTERM: the first one lets the file in flight finish, then the run stops with a
 * summary; a second one removes the temporary in flight and ends the process at once, so no
 * "*.tmp.PID" is ever left behind. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (stop_signal) {
        dc_atomic_remove_inflight();
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* the file in flight must not fail with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int has_prefix(const char *s, const char *p) { return p && strncmp(s, p, strlen(p)) == 0; }

/* One line for a failed file: the detail, prefixed with the input's name unless it already
 * names the input or the output. */
static int file_failed(const char *in, const char *out)
{
    const char *d = dc_error_detail();
    if (!*d) d = "failed";
    if (has_prefix(d, in) || has_prefix(d, out))
        fprintf(stderr, "dae-cl denoise: %s\n", d);
    else
        fprintf(stderr, "dae-cl denoise: %s: %s\n", in, d);
    return 1;
}

/* "dir/name.png" -> "name" (a trailing .png in any case dropped). */
static void stem(const char *path, char *buf, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 4 && strcasecmp(b + n - 4, ".png") == 0) n -= 4;
    snprintf(buf, len, "%.*s", (int)n, b);
}

/* OUT.png -> OUT-compare.png */
static void compare_path(const char *out, char *buf, size_t len)
{
    size_t n = strlen(out);
    if (n > 4 && strcasecmp(out + n - 4, ".png") == 0) n -= 4;
    snprintf(buf, len, "%.*s-compare.png", (int)n, out);
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* input | output side by side, 8-bit, as the training sample grids (gray separators). */
static dc_status write_compare(const char *path, const dc_image *left, const dc_image *right)
{
    dc_grid g = {.rows = 1, .cols = 2, .tile_w = left->w, .tile_h = left->h, .scale = 1, .sep = 2};
    int gw, gh;
    dc_grid_size(&g, &gw, &gh);
    if (gw == 0) return dc_fail(DC_ERR_INVALID_ARG, "%s: a %dx%d image is too large for a comparison", path, left->w, left->h);
    uint8_t *px = malloc((size_t)gw * gh);
    if (!px) return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
    const float *tiles[2] = {left->px, right->px};
    dc_status s = dc_grid_render(&g, tiles, px);
    if (!s) s = dc_png_write_gray8(path, px, gw, gh);
    free(px);
    return s;
}

static int denoise_file(const denoise_job *j, const char *in_path, const char *out_path, const char *cmp_path)
{
    double t0 = now_s();
    dc_image img = {0}, noisy = {0}, out = {0};
    dc_status s = dc_png_read(in_path, &img);
    const dc_image *src = &img;
    if (!s && j->noise) {
        s = dc_image_alloc(&noisy, img.w, img.h);
        if (!s) {
            noisy.bit_depth = img.bit_depth;
            dc_noise_host(j->noise, j->seed, DC_NOISE_EPOCH_VALIDATION, 0, img.px, noisy.px, img.h, img.w);
            src = &noisy;
        }
    }
    dc_denoise_info info;
    if (!s) s = dc_denoiser_run(j->den, src, &out, &info);
    if (!s) s = dc_png_write(out_path, &out, out.bit_depth);
    if (!s && cmp_path) s = write_compare(cmp_path, src, &out);
    int r = s ? file_failed(in_path, out_path) : 0;
    if (!r && !j->quiet) {
        /* With the PNG on standard output, the report goes to standard error. */
        FILE *log = strcmp(out_path, "-") == 0 ? stderr : stdout;
        fprintf(log, "%s -> %s: %dx%d, %d-bit", in_path, out_path, out.w, out.h, out.bit_depth);
        if (info.tiles_x * info.tiles_y > 1)
            fprintf(log, ", %dx%d windows of %dx%d", info.tiles_x, info.tiles_y, info.win_w, info.win_h);
        fprintf(log, ", %.2f s%s%s\n", now_s() - t0, cmp_path ? "; comparison " : "", cmp_path ? cmp_path : "");
    }
    dc_image_free(&img);
    dc_image_free(&noisy);
    dc_image_free(&out);
    return r;
}

int cmd_denoise(int argc, char **argv)
{
    const char *platform = NULL, *device = NULL, *model_path = NULL, *out = NULL, *out_dir = NULL, *noise = NULL;
    uint64_t seed = 0;
    int tile = DC_DENOISE_TILE_DEFAULT, compare = 0, quiet = 0;
    arg_opt opts[] = {
        {"platform", ARG_STRING, &platform, "P", "OpenCL platform index", 1, 0, 0},
        {"device", ARG_STRING, &device, "D|P:D", "OpenCL device index", 1, 0, 0},
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {"o", ARG_STRING, &out, "OUT.png", "output file (one input; - for standard output)", 1, 0, 0},
        {"out-dir", ARG_STRING, &out_dir, "DIR", "output directory: DIR/NAME.png for each input NAME.png", 1, 0, 0},
        {"noise", ARG_STRING, &noise, "KIND:X", "add this noise first (a demo): gaussian:S | saltpepper:P | speckle:S | poisson:PEAK | mask:P", 1, 0, 0},
        {"seed", ARG_U64, &seed, "N", "noise seed (default: the model's training seed)", 1, 0, 0},
        {"compare", ARG_FLAG, &compare, NULL, "also write input | output side by side (OUT-compare.png)", 1, 0, 0},
        {"tile", ARG_INT, &tile, "N", "largest piece processed at once, pixels (bounds device memory; 0: default)", 0, 1 << 20, 0},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only errors", 1, 0, 0},
        {0},
    };
    const char **pos = malloc(sizeof *pos * (size_t)(argc > 0 ? argc : 1));
    if (!pos) return cli_report("denoise", dc_fail(DC_ERR_NOMEM, "out of memory"));
    int npos;
    const char *usage = "--model FILE IN.png [IN2.png ...] (-o OUT.png | --out-dir DIR) [options]";
    int r = args_parse("denoise", opts, argc, argv, 1, pos, argc, &npos, usage);
    if (r) {
        free(pos);
        return r == 1 ? 0 : r;
    }
    const char *problem = NULL;
    if (!model_path) problem = "--model FILE is required";
    else if (npos == 0) problem = "no input PNG given";
    else if (!out && !out_dir) problem = "give -o OUT.png (one input) or --out-dir DIR";
    else if (out && out_dir) problem = "-o and --out-dir exclude each other";
    else if (out && npos > 1) problem = "-o names one output but several inputs were given: use --out-dir DIR";
    else if (out && compare && strcmp(out, "-") == 0) problem = "--compare needs a file name for -o, not -";
    else if (out && strcmp(out, "-") == 0 && isatty(STDOUT_FILENO))
        problem = "-o - writes a PNG to standard output, which is a terminal: redirect it to a file or a pipe";
    if (problem) {
        fprintf(stderr, "dae-cl denoise: %s (see dae-cl denoise --help)\n", problem);
        free(pos);
        return 2;
    }
    dc_noise_config nc;
    if (noise && dc_noise_parse(noise, &nc) != DC_OK) {
        free(pos);
        return cli_report("denoise", DC_ERR_INVALID_ARG);
    }
    if (noise && nc.kind == DC_NOISE_NONE) noise = NULL;
    /* Refuse a FIFO, device, directory... at -o before any work (fileio.h). */
    if (out && strcmp(out, "-") != 0 && dc_check_output_path(out) != DC_OK) {
        free(pos);
        return cli_report("denoise", DC_ERR_IO);
    }
    if (out_dir && mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dae-cl denoise: %s: cannot create directory: %s\n", out_dir, strerror(errno));
        free(pos);
        return 1;
    }

    dc_device *dev = NULL;
    int to_stdout = out && strcmp(out, "-") == 0;
    r = cli_open_device("denoise", platform, device, quiet || to_stdout, &dev);
    if (r) {
        free(pos);
        return r;
    }
    dc_model *model = NULL;
    dc_checkpoint ck;
    dc_denoiser *den = NULL;
    dc_status s = dc_denoise_load_model(dev, model_path, &model, &ck);
    if (!s) {
        if (!args_find(opts, "seed")->given) seed = ck.run.seed;
        dc_checkpoint_free(&ck);
        s = dc_denoiser_create(dev, model, tile, &den);
    }
    if (s) {
        r = cli_report("denoise", s);
        dc_model_destroy(model);
        dc_device_close(dev);
        free(pos);
        return r;
    }

    denoise_job job = {.den = den, .noise = noise ? &nc : NULL, .seed = seed, .compare = compare, .quiet = quiet};
    char (*outs)[4096] = calloc((size_t)npos, sizeof *outs);
    int failed = 0;
    int done = 0, started = 0;
    catch_stop_signals();
    for (int i = 0; i < npos && outs && !stop_signal; i++) {
        started++;
        char name[1024], cmp[4096 + 16];
        if (out) {
            snprintf(outs[i], sizeof outs[i], "%s", out);
        } else {
            stem(pos[i], name, sizeof name);
            snprintf(outs[i], sizeof outs[i], "%s/%s.png", out_dir, name);
        }
        int dup = -1;
        for (int k = 0; k < i && dup < 0; k++)
            if (strcmp(outs[k], outs[i]) == 0) dup = k;
        if (dup >= 0) {
            fprintf(stderr, "dae-cl denoise: %s: output %s is also the output of %s; skipped (rename one)\n", pos[i],
                    outs[i], pos[dup]);
            outs[i][0] = '\0'; /* so a third one names the first, not this one */
            failed++;
            continue;
        }
        if (same_file(pos[i], outs[i])) {
            fprintf(stderr, "dae-cl denoise: %s: the output would overwrite the input; choose another -o or --out-dir\n",
                    pos[i]);
            failed++;
            continue;
        }
        compare_path(outs[i], cmp, sizeof cmp);
        int bad = denoise_file(&job, pos[i], outs[i], compare ? cmp : NULL);
        failed += bad;
        done += !bad;
    }
    if (!outs) failed = cli_report("denoise", dc_fail(DC_ERR_NOMEM, "out of memory"));
    if (stop_signal) {
        /* On standard error: it is the one place a redirected, interrupted run still reports. */
        fprintf(stderr, "dae-cl denoise: interrupted by %s: %d of %d files written, %d failed, %d not started%s%s\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", done, npos, failed, npos - started,
                started < npos ? "; first not started: " : "", started < npos ? pos[started] : "");
    } else if (failed && npos > 1 && !quiet) {
        fprintf(stderr, "dae-cl denoise: %d of %d files failed\n", failed, npos);
    }
    free(outs);
    dc_denoiser_destroy(den);
    dc_model_destroy(model);
    dc_device_close(dev);
    free(pos);
    if (stop_signal) return 128 + stop_signal;
    return failed ? 1 : 0;
}
