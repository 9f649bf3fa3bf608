/* dae-cl denoise: run a trained model on PNG and JPEG images of any size, one by one or whole
 * folders (see daecl/denoise.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/prewarm.h"
#include "cli/json.h"
#include "daecl/denoise.h"
#include "daecl/fileio.h"
#include "daecl/kernels.h"
#include "daecl/noise.h"
#include "daecl/progress.h"

typedef struct denoise_job {
    dc_device *dev;
    dc_denoiser *den;
    const dc_noise_config *noise; /* NULL: none */
    uint64_t seed;
    int compare, quiet, quality;
    const char *clean;  /* --clean REF: the reference for PSNR/SSIM; NULL */
    int measure;        /* print PSNR/SSIM (--clean, or --noise: the input is the reference) */
    int per_file_lines; /* one line per file (not when a progress bar redraws) */
    json_writer *json;  /* --json: one entry per input in its "files" array */
    double megapixels;  /* of the files done */
} denoise_job;

/* The --json entry of an input that failed; its message went to stderr. */
static void json_failed(const denoise_job *j, const char *in, const char *out, const char *why)
{
    if (!j->json) return;
    json_object(j->json, NULL);
    json_string(j->json, "input", in);
    json_string(j->json, "output", out);
    json_bool(j->json, "ok", 0);
    json_string(j->json, "error", why);
    json_end(j->json);
}

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

/* Length of path without a trailing .png, .jpg or .jpeg (any case). */
static size_t without_ext(const char *path)
{
    size_t n = strlen(path);
    static const char *const exts[] = {".png", ".jpg", ".jpeg"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcasecmp(path + n - e, exts[i]) == 0) return n - e;
    }
    return n;
}

static int is_image_name(const char *name) { return without_ext(name) != strlen(name); }

/* "dir/name.jpg" -> "name" (a trailing .png/.jpg/.jpeg in any case dropped). */
static void stem(const char *path, char *buf, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, len, "%.*s", (int)without_ext(b), b);
}

/* OUT.png -> OUT-compare.png */
static void compare_path(const char *out, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s-compare.png", (int)without_ext(out), out);
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A gray copy of img (luma of a colour image), for the comparison grid. */
static dc_status gray_of(const dc_image *img, dc_image *out)
{
    DC_TRY(dc_image_alloc(out, img->w, img->h));
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++)
        out->px[i] = img->c == 3 ? dc_luma601(img->px[i], img->px[n + i], img->px[2 * n + i]) : img->px[i];
    return DC_OK;
}

/* input | output side by side, 8-bit gray, as the training sample grids (gray separators). */
static dc_status write_compare(const char *path, const dc_image *left, const dc_image *right)
{
    dc_grid g = {.rows = 1, .cols = 2, .tile_w = left->w, .tile_h = left->h, .scale = 1, .sep = 2};
    int gw, gh;
    dc_grid_size(&g, &gw, &gh);
    if (gw == 0) return dc_fail(DC_ERR_INVALID_ARG, "%s: a %dx%d image is too large for a comparison", path, left->w, left->h);
    uint8_t *px = malloc((size_t)gw * gh);
    if (!px) return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
    dc_image gl = {0}, gr = {0};
    dc_status s = gray_of(left, &gl);
    if (!s) s = gray_of(right, &gr);
    const float *tiles[2] = {gl.px, gr.px};
    if (!s) s = dc_grid_render(&g, tiles, px);
    if (!s) s = dc_png_write_gray8(path, px, gw, gh);
    dc_image_free(&gl);
    dc_image_free(&gr);
    free(px);
    return s;
}

/* The reference for --clean / --noise measurements: the --clean image (read with img's
 * channels), or the clean input itself. */
static dc_status quality_pair(const denoise_job *j, const dc_image *clean_in, const dc_image *noisy,
                              const dc_image *out, double q[4])
{
    dc_image ref = {0};
    const dc_image *r = clean_in;
    if (j->clean) {
        DC_TRY(dc_image_read(j->clean, noisy->c, &ref));
        r = &ref;
        if (ref.w != noisy->w || ref.h != noisy->h) {
            dc_image_free(&ref);
            return dc_fail(DC_ERR_INVALID_ARG, "--clean %s: %dx%d, but the input is %dx%d", j->clean, ref.w, ref.h,
                           noisy->w, noisy->h);
        }
    }
    dc_status s = dc_image_quality(j->dev, noisy, r, &q[0], &q[1]);
    if (!s) s = dc_image_quality(j->dev, out, r, &q[2], &q[3]);
    dc_image_free(&ref);
    return s;
}

static int denoise_file(denoise_job *j, const char *in_path, const char *out_path, const char *cmp_path)
{
    double t0 = now_s();
    dc_image img = {0}, noisy = {0}, out = {0};
    dc_status s = dc_image_read(in_path, 0, &img);
    const dc_image *src = &img;
    if (!s && j->noise) {
        s = dc_image_alloc_c(&noisy, img.w, img.h, img.c);
        if (!s) {
            size_t plane = (size_t)img.w * img.h;
            noisy.bit_depth = img.bit_depth;
            noisy.alpha = img.alpha; /* borrowed: carried through, freed with img */
            for (int k = 0; k < img.c; k++)
                dc_noise_host(j->noise, j->seed, DC_NOISE_EPOCH_VALIDATION, (uint32_t)k, img.px + k * plane,
                              noisy.px + k * plane, img.h, img.w);
            src = &noisy;
        }
    }
    dc_denoise_info info;
    double q[4] = {0};
    if (!s) s = dc_denoiser_run(j->den, src, &out, &info);
    /* JPEG holds 8 bits; PNG keeps the input's depth */
    dc_image_format fmt = DC_IMAGE_PNG;
    if (!s) s = dc_image_format_for(out_path, &fmt);
    if (!s && fmt == DC_IMAGE_JPEG && out.alpha) {
        free(out.alpha); /* JPEG has no alpha: dropped, said once per file */
        out.alpha = NULL;
        if (!j->quiet) fprintf(stderr, "dae-cl denoise: %s: JPEG has no alpha channel; write .png to keep it\n", out_path);
    }
    if (!s) s = dc_image_write(out_path, &out, fmt == DC_IMAGE_JPEG ? 8 : out.bit_depth, j->quality);
    if (!s && cmp_path) s = write_compare(cmp_path, src, &out);
    if (!s && j->measure) s = quality_pair(j, &img, src, &out, q);
    if (s) json_failed(j, in_path, out_path, dc_error_detail());
    int r = s ? file_failed(in_path, out_path) : 0;
    if (!r) j->megapixels += (double)out.w * out.h / 1e6;
    if (!r && j->json) {
        json_object(j->json, NULL);
        json_string(j->json, "input", in_path);
        json_string(j->json, "output", out_path);
        json_bool(j->json, "ok", 1);
        json_int(j->json, "width", out.w);
        json_int(j->json, "height", out.h);
        json_int(j->json, "channels", out.c);
        json_int(j->json, "bit_depth", fmt == DC_IMAGE_JPEG ? 8 : out.bit_depth);
        json_bool(j->json, "alpha", out.alpha != NULL);
        json_int(j->json, "windows", info.tiles_x * info.tiles_y);
        json_number(j->json, "seconds", now_s() - t0);
        json_string(j->json, "comparison", cmp_path);
        if (j->measure) {
            json_number(j->json, "input_psnr", q[0]);
            json_number(j->json, "input_ssim", q[1]);
            json_number(j->json, "output_psnr", q[2]);
            json_number(j->json, "output_ssim", q[3]);
        }
        json_end(j->json);
    } else if (!r && !j->quiet && (j->per_file_lines || j->measure)) {
        /* With the PNG on standard output, the report goes to standard error. */
        FILE *log = strcmp(out_path, "-") == 0 ? stderr : stdout;
        fprintf(log, "%s -> %s: %dx%d, %s, %d-bit", in_path, out_path, out.w, out.h, out.c == 3 ? "RGB" : "gray",
                fmt == DC_IMAGE_JPEG ? 8 : out.bit_depth);
        if (out.alpha) fprintf(log, ", alpha kept");
        if (info.tiles_x * info.tiles_y > 1) {
            fprintf(log, ", %dx%d windows of %dx%d", info.tiles_x, info.tiles_y, info.win_w, info.win_h);
            /* a tile raised to the image's size still leaves no room for the margins: every
             * window then computes the whole image again */
            if (info.win_w >= out.w && info.win_h >= out.h && info.one_window_tile <= DC_IMAGE_MAX_DIM)
                fprintf(log, " (--tile %d: one window)", info.one_window_tile);
        }
        fprintf(log, ", %.2f s%s%s\n", now_s() - t0, cmp_path ? "; comparison " : "", cmp_path ? cmp_path : "");
        if (j->measure)
            fprintf(log, "  against %s: input PSNR %.2f dB, SSIM %.4f; output PSNR %.2f dB, SSIM %.4f\n",
                    j->clean ? j->clean : "the clean input", q[0], q[1], q[2], q[3]);
    }
    dc_image_free(&img);
    noisy.alpha = NULL;
    dc_image_free(&noisy);
    dc_image_free(&out);
    return r;
}

/* ---- folders -------------------------------------------------------------------------------- */

typedef struct file_list {
    char **in, **out;
    int n, cap;
} file_list;

static void file_list_free(file_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->in[i]);
        free(l->out[i]);
    }
    free(l->in);
    free(l->out);
    *l = (file_list){0};
}

static int file_list_add(file_list *l, const char *in, const char *out)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **a = realloc(l->in, sizeof *a * (size_t)cap), **b = a ? realloc(l->out, sizeof *b * (size_t)cap) : NULL;
        if (a) l->in = a;
        if (b) l->out = b;
        if (!a || !b) return -1;
        l->cap = cap;
    }
    l->in[l->n] = strdup(in);
    l->out[l->n] = strdup(out);
    if (!l->in[l->n] || !l->out[l->n]) {
        free(l->in[l->n]);
        free(l->out[l->n]);
        return -1;
    }
    l->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Images under dir/rel (recursively, sorted by name so runs are repeatable), each with its
 * output out_dir/rel/name.EXT. Unreadable subfolders are reported and counted as failed. */
static int scan_folder(const char *dir, const char *rel, const char *out_dir, const char *ext, file_list *l, int *failed)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "dae-cl denoise: %s: cannot read folder: %s\n", path, strerror(errno));
        ++*failed;
        return 0;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden files */
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int i = 0; i < n && rc == 0; i++) {
        char sub[PATH_MAX], full[PATH_MAX + 2];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        snprintf(full, sizeof full, "%s/%s", dir, sub);
        struct stat st;
        if (stat(full, &st) != 0) continue; /* a dangling link */
        if (S_ISDIR(st.st_mode)) {
            rc = scan_folder(dir, sub, out_dir, ext, l, failed);
        } else if (S_ISREG(st.st_mode) && is_image_name(names[i])) {
            char out[PATH_MAX * 2];
            snprintf(out, sizeof out, "%s/%.*s%s", out_dir, (int)without_ext(sub), sub, ext);
            rc = file_list_add(l, full, out);
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* mkdir -p of the folder that will hold path. */
static int make_parent(const char *path)
{
    char buf[PATH_MAX * 2];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* The absolute path path would have, resolving what exists of it (a folder not made yet keeps
 * its last components as given). 0 on success. */
static int resolve(const char *path, char *out)
{
    if (realpath(path, out)) return 0;
    if (errno != ENOENT) return -1;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *last = slash ? slash + 1 : parent;
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", last);
    if (!slash) snprintf(parent, sizeof parent, ".");
    else if (slash == parent) parent[1] = '\0';
    else *slash = '\0';
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || resolve(parent, out) != 0) return -1;
    size_t m = strlen(out);
    if (m + 1 + strlen(base) >= PATH_MAX) return -1;
    snprintf(out + m, PATH_MAX - m, "%s%s", out[m - 1] == '/' ? "" : "/", base);
    return 0;
}

/* Whether folders a and b (b perhaps not made yet) are the same or one lies inside the other. */
static int folders_overlap(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    if (resolve(a, ra) != 0 || resolve(b, rb) != 0) return 0;
    size_t na = strlen(ra), nb = strlen(rb), n = na < nb ? na : nb;
    if (strncmp(ra, rb, n) != 0) return 0;
    return na == nb || (na < nb ? rb[na] == '/' || n == 1 : ra[nb] == '/' || n == 1);
}

/* "compiling kernels..." once, at the first build that was not served from a driver cache. */
static void on_build(void *ctx, const char *file, double seconds)
{
    int *said = ctx;
    (void)file;
    if (*said || seconds < 0.5) return;
    *said = 1;
    fprintf(stderr, "dae-cl denoise: compiling kernels for this model (once per device)...\n");
}

/* The cold-start helper (prewarm.h) for the first window model: later shapes of a folder find
 * the option-free program built, so they could not tell a cold start anyway. */
typedef struct prewarm_target {
    cli_prewarm helper;
    dc_device *dev;
    const dc_model *model;
    int tried;
} prewarm_target;

static void start_prewarm(void *ctx, int c, int h, int w, int batch)
{
    prewarm_target *t = ctx;
    if (t->tried) return;
    t->tried = 1;
    char arch[DC_SPEC_MAX];
    dc_arch_format(&t->model->arch, arch, sizeof arch);
    cli_prewarm_start(&t->helper, t->dev, CLI_PREWARM_INFER, arch, c, h, w, batch);
}

/* Folder progress: a bar redrawn on a terminal that knows \r (not TERM=dumb). */
static void draw_bar(FILE *f, int done, int total, int skipped, int failed)
{
    int width = 30, fill = total ? done * width / total : width;
    fprintf(f, "\r[%.*s%*s] %d/%d files", fill, "==============================", width - fill, "", done, total);
    if (skipped) fprintf(f, ", %d skipped", skipped);
    if (failed) fprintf(f, ", %d failed", failed);
    fprintf(f, "\033[K");
    fflush(f);
}

int cmd_denoise(int argc, char **argv)
{
    const char *platform = NULL, *device = NULL, *model_path = NULL, *out = NULL, *out_dir = NULL, *noise = NULL;
    const char *in_arg = NULL, *format = "png", *clean = NULL;
    uint64_t seed = 0;
    int tile = DC_DENOISE_TILE_DEFAULT, compare = 0, quiet = 0, as_json = 0, overwrite = 0, quality = 95;
    arg_opt opts[] = {
        {"platform", ARG_STRING, &platform, "P", "OpenCL platform index", 1, 0, 0},
        {"device", ARG_STRING, &device, CLI_DEVICE_META, CLI_DEVICE_HELP, 1, 0, 0},
        {"model", ARG_STRING, &model_path, "FILE", "checkpoint (runs/NAME/model.dcl)", 1, 0, 0},
        {"i", ARG_STRING, &in_arg, "IN", "input image, or a folder of PNG/JPEG images (searched recursively; then -o names the output folder)", 1, 0, 0},
        {"o", ARG_STRING, &out, "OUT", "output file: .png (default), .jpg/.jpeg (8-bit, see --quality), - for standard output (PNG); with -i DIR the output folder", 1, 0, 0},
        {"out-dir", ARG_STRING, &out_dir, "DIR", "output directory: DIR/NAME.png for each input NAME.png/.jpg", 1, 0, 0},
        {"format", ARG_STRING, &format, "png|jpeg", "format of the files written into a folder (default png; PNG keeps 16 bits and alpha)", 1, 0, 0},
        {"quality", ARG_INT, &quality, "Q", "JPEG quality of .jpg outputs, 1-100", 1, 100, 0},
        {"overwrite", ARG_FLAG, &overwrite, NULL, "with -i DIR: replace outputs that exist (default: skip them)", 1, 0, 0},
        {"noise", ARG_STRING, &noise, "KIND:X", "add this noise first (a demo or benchmark; the clean input is then the reference): gaussian:S | saltpepper:P | speckle:S | poisson:PEAK | mask:P", 1, 0, 0},
        {"seed", ARG_U64, &seed, "N", "noise seed (default: the model's training seed)", 1, 0, 0},
        {"clean", ARG_STRING, &clean, "REF", "print PSNR and SSIM of the input and the output against this clean image (one input)", 1, 0, 0},
        {"compare", ARG_FLAG, &compare, NULL, "also write input | output side by side (OUT-compare.png, gray)", 1, 0, 0},
        {"tile", ARG_INT, &tile, "N", "largest piece processed at once, pixels: bounds device memory (0 also means the default)", 0, 1 << 20, 0},
        {"quiet", ARG_FLAG, &quiet, NULL, "print only errors", 1, 0, 0},
        {"json", ARG_FLAG, &as_json, NULL, "print the summary as one JSON document (messages go to stderr)", 1, 0, 0},
        {0},
    };
    const char **pos = malloc(sizeof *pos * (size_t)(argc > 0 ? argc : 1));
    if (!pos) return cli_report("denoise", dc_fail(DC_ERR_NOMEM, "out of memory"));
    int npos;
    const char *usage = "--model FILE (IN [IN2 ...] | -i IN) (-o OUT | --out-dir DIR) [options]\n"
                        "       dae-cl denoise --model FILE -i DIR -o OUTDIR [options]\n\n"
                        "Colour: an RGB model (trained with 3 channels) gives RGB out; a gray model given a colour\n"
                        "image denoises its luma (Rec.601 Y) and keeps the chroma (YCbCr, Cb and Cr unchanged).\n"
                        "Alpha is carried through untouched; 16-bit PNG in gives 16-bit PNG out; JPEG in gives PNG\n"
                        "out unless -o names a .jpg or --format jpeg is given. Values are on the [0,1] scale.";
    int r = args_parse("denoise", opts, argc, argv, 1, pos, argc, &npos, usage);
    if (r) {
        free(pos);
        return r == 1 ? 0 : r;
    }
    struct stat in_st;
    int folder = in_arg && stat(in_arg, &in_st) == 0 && S_ISDIR(in_st.st_mode);
    if (in_arg && !folder) pos[npos++] = in_arg;
    if (folder && out && !out_dir) {
        out_dir = out;
        out = NULL;
    }
    const char *problem = NULL;
    if (!model_path) problem = "--model FILE is required";
    else if (npos == 0 && !folder) problem = "no input image given";
    else if (folder && npos > 0) problem = "-i DIR and input files exclude each other";
    else if (!out && !out_dir) problem = folder ? "give -o OUTDIR for the outputs" : "give -o OUT (one input) or --out-dir DIR";
    else if (out && out_dir) problem = "-o and --out-dir exclude each other";
    else if (out && npos > 1) problem = "-o names one output but several inputs were given: use --out-dir DIR";
    else if (as_json && out && strcmp(out, "-") == 0) problem = "--json and -o - both want stdout: name an output file";
    else if (out && compare && strcmp(out, "-") == 0) problem = "--compare needs a file name for -o, not -";
    else if (strcmp(format, "png") != 0 && strcmp(format, "jpeg") != 0 && strcmp(format, "jpg") != 0)
        problem = "--format must be png or jpeg";
    else if (clean && (folder || npos != 1)) problem = "--clean REF compares one input with its clean image";
    else if (out && strcmp(out, "-") == 0 && isatty(STDOUT_FILENO))
        problem = "-o - writes a PNG to standard output, which is a terminal: redirect it to a file or a pipe";
    if (problem) {
        fprintf(stderr, "dae-cl denoise: %s (see dae-cl denoise --help)\n", problem);
        free(pos);
        return 2;
    }
    dc_image_format ofmt;
    if (out && strcmp(out, "-") != 0 && dc_image_format_for(out, &ofmt) != DC_OK) {
        fprintf(stderr, "dae-cl denoise: -o %s\n", dc_error_detail());
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
    if (folder && folders_overlap(in_arg, out_dir)) {
        fprintf(stderr, "dae-cl denoise: -o %s and -i %s are the same folder or one holds the other: outputs could "
                        "overwrite or mix with the inputs; choose an output folder outside the input\n", out_dir, in_arg);
        free(pos);
        return 2;
    }
    if (out_dir && mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "dae-cl denoise: %s: cannot create directory: %s\n", out_dir, strerror(errno));
        free(pos);
        return 1;
    }

    /* The work: (input, output) pairs. */
    const char *ext = strcmp(format, "png") == 0 ? ".png" : ".jpg";
    file_list files = {0};
    int failed = 0, scan_rc = 0;
    if (folder) {
        scan_rc = scan_folder(in_arg, "", out_dir, ext, &files, &failed);
        if (!scan_rc && files.n == 0 && !failed) {
            fprintf(stderr, "dae-cl denoise: %s: no PNG or JPEG images in this folder\n", in_arg);
            free(pos);
            return 1;
        }
    } else {
        for (int i = 0; i < npos && !scan_rc; i++) {
            char name[1024], o[4096 + 1024];
            if (out) {
                snprintf(o, sizeof o, "%s", out);
            } else {
                stem(pos[i], name, sizeof name);
                snprintf(o, sizeof o, "%s/%s%s", out_dir, name, ext);
            }
            scan_rc = file_list_add(&files, pos[i], o);
        }
    }
    free(pos);
    if (scan_rc) {
        file_list_free(&files);
        return cli_report("denoise", dc_fail(DC_ERR_NOMEM, "out of memory"));
    }

    dc_device *dev = NULL;
    int to_stdout = out && strcmp(out, "-") == 0;
    r = cli_open_device("denoise", platform, device, quiet || to_stdout || as_json, &dev);
    if (r) {
        file_list_free(&files);
        return r;
    }
    dev->opts.forward_only = 1; /* no backward kernels: half the cold compile */
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
        file_list_free(&files);
        return r;
    }
    int compiling_said = quiet;
    dc_kernel_set_build_observer(on_build, &compiling_said);
    prewarm_target prewarm = {.dev = dev, .model = model};
    dc_denoiser_set_model_hook(den, start_prewarm, &prewarm);

    json_writer jw;
    FILE *log = as_json || to_stdout ? stderr : stdout;
    dc_progress caps;
    dc_progress_init(&caps, log, quiet);
    int bar = folder && caps.tty && !quiet && !as_json;
    denoise_job job = {.dev = dev, .den = den, .noise = noise ? &nc : NULL, .seed = seed, .compare = compare,
                       .quiet = quiet, .quality = quality, .clean = clean, .measure = clean || noise,
                       .per_file_lines = !bar, .json = as_json ? &jw : NULL};
    if (as_json) {
        json_begin(&jw, stdout);
        json_object(&jw, NULL);
        json_string(&jw, "model", model_path);
        json_array(&jw, "files");
    }
    int done = 0, started = 0, skipped = 0;
    double t0 = now_s();
    catch_stop_signals();
    for (int i = 0; i < files.n && !stop_signal; i++) {
        const char *in = files.in[i], *o = files.out[i];
        started++;
        if (bar) draw_bar(log, i, files.n, skipped, failed);
        int dup = -1;
        for (int k = 0; k < i && dup < 0; k++)
            if (files.out[k][0] && strcmp(files.out[k], o) == 0) dup = k;
        if (dup >= 0) {
            fprintf(stderr, "%sdae-cl denoise: %s: output %s is also the output of %s; skipped (rename one)\n",
                    bar ? "\n" : "", in, o, files.in[dup]);
            json_failed(&job, in, o, "the output of an earlier input");
            files.out[i][0] = '\0'; /* so a third one names the first, not this one */
            failed++;
            continue;
        }
        if (same_file(in, o)) {
            fprintf(stderr, "%sdae-cl denoise: %s: the output would overwrite the input; choose another -o or --out-dir\n",
                    bar ? "\n" : "", in);
            json_failed(&job, in, o, "the output would overwrite the input");
            failed++;
            continue;
        }
        if (folder && !overwrite && access(o, F_OK) == 0) {
            skipped++;
            continue;
        }
        if (folder && make_parent(o) != 0) {
            fprintf(stderr, "%sdae-cl denoise: %s: cannot create its folder: %s\n", bar ? "\n" : "", o, strerror(errno));
            json_failed(&job, in, o, "cannot create the output folder");
            failed++;
            continue;
        }
        if (bar) {
            fputs("\r\033[K", log); /* a failure's message starts on a clean line */
            fflush(log);
        }
        char cmp[4096 + 16];
        compare_path(o, cmp, sizeof cmp);
        int bad = denoise_file(&job, in, o, compare ? cmp : NULL);
        failed += bad;
        done += !bad;
    }
    double secs = now_s() - t0;
    if (bar) {
        draw_bar(log, files.n, files.n, skipped, failed);
        fputc('\n', log);
    }
    dc_kernel_set_build_observer(NULL, NULL);
    if (as_json) {
        json_end(&jw);
        json_int(&jw, "done", done);
        json_int(&jw, "skipped", skipped);
        json_int(&jw, "failed", failed);
        json_number(&jw, "seconds", secs);
        json_number(&jw, "megapixels_per_second", secs > 0 ? job.megapixels / secs : 0);
        json_end(&jw);
    }
    if (stop_signal) {
        /* On standard error: it is the one place a redirected, interrupted run still reports. */
        fprintf(stderr, "dae-cl denoise: interrupted by %s: %d of %d files written, %d failed, %d not started%s%s\n",
                stop_signal == SIGINT ? "SIGINT" : "SIGTERM", done, files.n, failed, files.n - started,
                started < files.n ? "; first not started: " : "", started < files.n ? files.in[started] : "");
    } else if ((folder || files.n > 1) && !quiet && !as_json) {
        fprintf(log, "done %d, skipped %d, failed %d of %d files in %.1f s (%.3g megapixels/s)\n", done, skipped, failed,
                files.n, secs, secs > 0 ? job.megapixels / secs : 0.0);
    } else if (failed && files.n > 1 && !quiet) {
        fprintf(stderr, "dae-cl denoise: %d of %d files failed\n", failed, files.n);
    }
    file_list_free(&files);
    cli_prewarm_stop(&prewarm.helper);
    dc_denoiser_destroy(den);
    dc_model_destroy(model);
    dc_device_close(dev);
    if (stop_signal) return 128 + stop_signal;
    return failed ? 1 : 0;
}
