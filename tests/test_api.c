/* The public C API (include/daecl.h), through the shared library only: version, errors,
 * devices, training from a configuration (progress callback, cancellation), loading the
 * checkpoint it wrote, denoising caller buffers of every sample type, stride and channel count
 * (each checked against the float gray result of the same pixels), in-place denoising,
 * refusals of bad buffers, and evaluation. Data: small synthetic IDX files written here. */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <daecl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>

#include "test.h"

#define CHECK_API(expr)                                                                          \
    do {                                                                                         \
        daecl_status chk_s_ = (expr);                                                            \
        CHECK(chk_s_ == DAECL_OK, "%s -> %s: %s", #expr, daecl_status_name(chk_s_), daecl_last_error()); \
    } while (0)

#define NTRAIN 256
#define NTEST 64
#define SIDE 28

static void be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* Images of a few random bright rectangles on black, and all-zero labels. */
static int write_split(const char *dir, const char *prefix, int n, uint64_t *rng)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    be32(f, 0x803);
    be32(f, (uint32_t)n);
    be32(f, SIDE);
    be32(f, SIDE);
    unsigned char img[SIDE * SIDE];
    for (int i = 0; i < n; i++) {
        memset(img, 0, sizeof img);
        for (int r = 0; r < 3; r++) {
            int x0 = (int)test_uniform(rng, 2, 20), y0 = (int)test_uniform(rng, 2, 20);
            int w = (int)test_uniform(rng, 2, 8), h = (int)test_uniform(rng, 2, 8);
            for (int y = y0; y < y0 + h; y++)
                for (int x = x0; x < x0 + w; x++) img[y * SIDE + x] = 255;
        }
        fwrite(img, 1, sizeof img, f);
    }
    if (fclose(f)) return -1;
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, prefix);
    f = fopen(p, "wb");
    if (!f) return -1;
    be32(f, 0x801);
    be32(f, (uint32_t)n);
    for (int i = 0; i < n; i++) fputc(0, f);
    return fclose(f) ? -1 : 0;
}

typedef struct progress_log {
    int steps, epochs_done, cancel_at, last_epoch;
    int cancel_at_epoch_end; /* stop at the first epoch's end */
    int bad_order;
} progress_log;

static int on_progress(void *user, const daecl_train_progress *p)
{
    progress_log *log = user;
    if (p->epoch_done) {
        log->epochs_done++;
        if (p->epoch != log->last_epoch || !isfinite(p->loss)) log->bad_order++;
    } else {
        log->steps++;
        if (p->step < 1 || p->step > p->steps || p->epoch < 1 || p->epoch > p->epochs) log->bad_order++;
        log->last_epoch = p->epoch;
    }
    if (log->cancel_at_epoch_end && p->epoch_done) return 1;
    return log->cancel_at && log->steps >= log->cancel_at;
}

static void test_version_and_errors(void)
{
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", DAECL_VERSION_MAJOR, DAECL_VERSION_MINOR, DAECL_VERSION_PATCH);
    CHECK(strcmp(daecl_version(), want) == 0 && strcmp(DAECL_VERSION_STRING, want) == 0,
          "daecl_version() %s, macros %s, string macro %s", daecl_version(), want, DAECL_VERSION_STRING);
    CHECK(strcmp(daecl_status_name(DAECL_ERR_FORMAT), "format error") == 0 || *daecl_status_name(DAECL_ERR_FORMAT),
          "status name");
    daecl_model *m = (daecl_model *)1;
    CHECK(daecl_model_load(NULL, "x", &m) == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "NULL"),
          "NULL device refused: %s", daecl_last_error());
    int count = -1;
    CHECK(daecl_devices(NULL, 1, &count) == DAECL_ERR_INVALID_ARG, "devices: NULL out with max 1 refused");
    daecl_train_config *cfg;
    CHECK_API(daecl_train_config_new(&cfg));
    CHECK(daecl_train_config_set(cfg, "epoch", "3") == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "'epoch'"),
          "unknown setting refused by name: %s", daecl_last_error());
    CHECK(daecl_train_config_set(cfg, "epochs", "3x") == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "3x"),
          "bad integer refused: %s", daecl_last_error());
    CHECK(daecl_train_config_set(cfg, "batch", "0") == DAECL_ERR_INVALID_ARG, "batch 0 refused");
    CHECK(daecl_train_config_set(cfg, "lr", "-1") == DAECL_ERR_INVALID_ARG, "negative lr refused");
    CHECK(daecl_train_config_set(cfg, "noise", "gaussian") == DAECL_ERR_INVALID_ARG, "noise without a level refused");
    CHECK(daecl_train_config_set(cfg, "arch", "conv:0") == DAECL_ERR_INVALID_ARG, "bad arch refused: %s",
          daecl_last_error());
    CHECK(daecl_train_config_set(cfg, "resume", "yes") == DAECL_ERR_INVALID_ARG, "flag other than 0/1 refused");
    daecl_train_config_free(cfg);
}

static daecl_device *test_devices(void)
{
    int n = 0;
    CHECK_API(daecl_devices(NULL, 0, &n));
    CHECK(n >= 1, "%d devices", n);
    daecl_device_info *all = calloc((size_t)(n > 0 ? n : 1), sizeof *all);
    int n2 = 0;
    CHECK_API(daecl_devices(all, n, &n2));
    CHECK(n2 == n, "count %d then %d", n, n2);
    daecl_device *dev = NULL;
    CHECK_API(daecl_device_open(-1, -1, &dev));
    if (dev) {
        daecl_device_info info;
        CHECK_API(daecl_device_get_info(dev, &info));
        int found = 0;
        for (int i = 0; i < n2; i++)
            found |= all[i].platform == info.platform && all[i].device == info.device &&
                     strcmp(all[i].name, info.name) == 0 && all[i].type == info.type;
        CHECK(found, "the opened device %d:%d %s is listed", info.platform, info.device, info.name);
        CHECK(info.compute_units > 0 && info.global_mem > 0, "device figures %u CUs %llu bytes", info.compute_units,
              (unsigned long long)info.global_mem);
    }
    daecl_device *none = (daecl_device *)1;
    CHECK(daecl_device_open(0, 999, &none) == DAECL_ERR_NO_DEVICE && none == NULL, "device 0:999 refused: %s",
          daecl_last_error());
    free(all);
    return dev;
}

static daecl_train_config *config(const char *data, const char *out, const char *epochs)
{
    daecl_train_config *c = NULL;
    CHECK_API(daecl_train_config_new(&c));
    const char *kv[][2] = {{"data", data}, {"out", out}, {"arch", "conv:4,conv:1:sigmoid"}, {"epochs", epochs},
                           {"batch", "32"}, {"lr", "0.01"}, {"optimizer", "adam"}, {"seed", "7"},
                           {"noise", "gaussian:0.3"}, {"samples", "0"}};
    for (size_t i = 0; c && i < sizeof kv / sizeof kv[0]; i++) CHECK_API(daecl_train_config_set(c, kv[i][0], kv[i][1]));
    return c;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_train(daecl_device *dev, const char *data, const char *tmp, char *model_path, size_t len)
{
    char out[700];
    snprintf(out, sizeof out, "%s/run", tmp);
    daecl_train_config *c = config(data, out, "2");
    progress_log log = {0};
    daecl_train_summary sum;
    CHECK_API(daecl_train(dev, c, on_progress, &log, &sum));
    int steps = 2 * (NTRAIN / 32);
    CHECK(log.steps == steps && log.epochs_done == 2 && !log.bad_order, "callback: %d steps (want %d), %d epochs, %d out of order",
          log.steps, steps, log.epochs_done, log.bad_order);
    CHECK(sum.epochs_done == 2 && sum.validated && sum.val.images == NTEST && isfinite(sum.val.psnr),
          "summary: %d epochs, validated %d on %zu images, PSNR %g", sum.epochs_done, sum.validated, sum.val.images,
          sum.val.psnr);
    snprintf(model_path, len, "%s/model.dcl", out);
    CHECK(file_exists(model_path), "%s written", model_path);
    daecl_train_config_free(c);

    /* Cancelled from the callback in the second epoch: a resumable checkpoint, INTERRUPTED. */
    snprintf(out, sizeof out, "%s/cancelled", tmp);
    c = config(data, out, "3");
    progress_log stop = {.cancel_at = NTRAIN / 32 + 3};
    daecl_status s = daecl_train(dev, c, on_progress, &stop, NULL);
    CHECK(s == DAECL_ERR_INTERRUPTED && stop.steps == stop.cancel_at && stop.epochs_done == 1,
          "cancel: %s (%s) after %d steps, %d epochs", daecl_status_name(s), daecl_last_error(), stop.steps, stop.epochs_done);
    char ck[800];
    snprintf(ck, sizeof ck, "%s/model.dcl", out);
    CHECK(file_exists(ck), "cancelled run saved %s", ck);
    /* Resuming with another batch size is refused, saying why (the run configuration's policy). */
    CHECK_API(daecl_train_config_set(c, "resume", "1"));
    CHECK_API(daecl_train_config_set(c, "batch", "16"));
    s = daecl_train(dev, c, NULL, NULL, NULL);
    CHECK(s == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "batch"), "resume with batch 16: %s (%s)",
          daecl_status_name(s), daecl_last_error());
    /* ... and with the same settings it runs to the end. */
    CHECK_API(daecl_train_config_set(c, "batch", "32"));
    progress_log rest = {0};
    CHECK_API(daecl_train(dev, c, on_progress, &rest, &sum));
    CHECK(sum.epochs_done == 3 && rest.epochs_done == 2, "resumed to epoch %d with %d epochs", sum.epochs_done,
          rest.epochs_done);
    daecl_train_config_free(c);

    /* Cancelled at the end of epoch 1 of 3: stops there, epoch 1 saved. */
    snprintf(out, sizeof out, "%s/epoch-end", tmp);
    c = config(data, out, "3");
    progress_log at_end = {.cancel_at_epoch_end = 1};
    s = daecl_train(dev, c, on_progress, &at_end, NULL);
    CHECK(s == DAECL_ERR_INTERRUPTED && at_end.epochs_done == 1 && at_end.steps == NTRAIN / 32 &&
              strstr(daecl_last_error(), "after epoch 1"),
          "cancel at epoch end: %s (%s), %d steps, %d epochs", daecl_status_name(s), daecl_last_error(), at_end.steps,
          at_end.epochs_done);
    daecl_train_config_free(c);
}

/* Gray float result of the same pixels as the reference for every other layout. */
static void test_denoise(daecl_model *m, uint64_t *rng)
{
    const int w = 45, h = 37; /* odd, not multiples of anything */
    size_t n = (size_t)w * h;
    uint8_t *g8 = malloc(n), *o8 = malloc(n);
    float *gf = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        g8[i] = (uint8_t)test_uniform(rng, 0, 256);
        gf[i] = (float)g8[i] / 255.0f;
    }
    daecl_image in_f = {gf, w, h, 1, DAECL_F32, 0}, ref_f = {ref, w, h, 1, DAECL_F32, 0};
    CHECK_API(daecl_denoise(m, &in_f, &ref_f, 0));
    double change = 0;
    int in01 = 1;
    for (size_t i = 0; i < n; i++) {
        change += fabs(ref[i] - gf[i]);
        in01 &= ref[i] >= 0 && ref[i] <= 1;
    }
    CHECK(in01 && change / n > 1e-3, "sigmoid output in [0,1] (%d) and not the input (mean change %g)", in01, change / n);

    /* 8-bit in and out, padded rows: the float result rounded as a PNG writer does. */
    size_t stride8 = (size_t)w + 13;
    uint8_t *p8 = calloc(stride8 * h, 1), *q8 = calloc(stride8 * h, 1);
    for (int y = 0; y < h; y++) memcpy(p8 + y * stride8, g8 + (size_t)y * w, (size_t)w);
    daecl_image in8 = {p8, w, h, 1, DAECL_U8, stride8}, out8 = {q8, w, h, 1, DAECL_U8, stride8};
    CHECK_API(daecl_denoise(m, &in8, &out8, 0));
    int bad = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = ref[(size_t)y * w + x];
            unsigned want = v <= 0 ? 0 : v >= 1 ? 255 : (unsigned)(v * 255.0f + 0.5f);
            bad += q8[y * stride8 + x] != want;
        }
    CHECK(bad == 0, "8-bit strided: %d of %zu pixels differ from the rounded float result", bad, n);

    /* In place: the same bytes. */
    CHECK_API(daecl_denoise(m, &in8, &in8, 0));
    CHECK(memcmp(p8, q8, stride8 * h) == 0, "in-place 8-bit equals out-of-place");

    /* 16-bit in, float out: g * 257 / 65535 is g / 255 up to float rounding. */
    uint16_t *g16 = malloc(n * 2);
    for (size_t i = 0; i < n; i++) g16[i] = (uint16_t)(g8[i] * 257u);
    float *o16 = malloc(n * sizeof(float));
    daecl_image in16 = {g16, w, h, 1, DAECL_U16, 0}, outf = {o16, w, h, 1, DAECL_F32, 0};
    CHECK_API(daecl_denoise(m, &in16, &outf, 0));
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(o16[i] - ref[i]));
    CHECK(worst < 1e-5, "16-bit in: max difference %g from the float result", worst);

    /* RGB, float out with padded rows: channel c is the gray result of channel c. */
    size_t rgb_stride = (size_t)w * 3 + 5;
    uint8_t *rgb = calloc(rgb_stride * h, 1);
    size_t fstride = ((size_t)w * 3 + 2) * sizeof(float);
    float *orgb = calloc(fstride * h, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t g = g8[(size_t)y * w + x];
            rgb[y * rgb_stride + 3 * x + 0] = g;
            rgb[y * rgb_stride + 3 * x + 1] = (uint8_t)(255 - g);
            rgb[y * rgb_stride + 3 * x + 2] = g8[(size_t)(h - 1 - y) * w + x];
        }
    daecl_image inrgb = {rgb, w, h, 3, DAECL_U8, rgb_stride}, outrgb = {orgb, w, h, 3, DAECL_F32, fstride};
    CHECK_API(daecl_denoise(m, &inrgb, &outrgb, 0));
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) gf[(size_t)y * w + x] = rgb[y * rgb_stride + 3 * x + c] / 255.0f;
        CHECK_API(daecl_denoise(m, &in_f, &ref_f, 0));
        bad = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                bad += ((float *)((char *)orgb + y * fstride))[3 * x + c] != ref[(size_t)y * w + x];
        CHECK(bad == 0, "RGB channel %d: %d pixels differ from the gray result of that channel", c, bad);
    }

    /* A small tile (many windows) gives the same pixels up to float rounding. */
    CHECK_API(daecl_denoise(m, &in_f, &outf, 16));
    worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(o16[i] - ref[i]));
    CHECK(worst < 1e-5, "tile 16: max difference %g", worst);

    /* Refusals. */
    daecl_image two = in8;
    two.channels = 2;
    CHECK(daecl_denoise(m, &two, &two, 0) == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "channels"),
          "2 channels refused: %s", daecl_last_error());
    daecl_image narrow = in8;
    narrow.stride = (size_t)w - 1;
    CHECK(daecl_denoise(m, &narrow, &out8, 0) == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "stride"),
          "short stride refused: %s", daecl_last_error());
    daecl_image odd = {(char *)g16 + 1, w - 1, h, 1, DAECL_U16, 0};
    CHECK(daecl_denoise(m, &odd, &outf, 0) == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "multiple"),
          "misaligned 16-bit data refused: %s", daecl_last_error());
    daecl_image smaller = out8;
    smaller.height = h - 1;
    CHECK(daecl_denoise(m, &in8, &smaller, 0) == DAECL_ERR_INVALID_ARG, "size mismatch refused");
    daecl_image alias = {p8, w, h, 1, DAECL_U16, 0};
    CHECK(daecl_denoise(m, &in8, &alias, 0) == DAECL_ERR_INVALID_ARG && strstr(daecl_last_error(), "share"),
          "different layouts over the same bytes refused: %s", daecl_last_error());
    free(g8), free(o8), free(gf), free(ref), free(p8), free(q8), free(g16), free(o16), free(rgb), free(orgb);
}

static void test_evaluate(daecl_model *m, const char *data)
{
    daecl_eval_options o = {.data_dir = data, .limit = 40, .batch = 16};
    daecl_eval_result a, b;
    CHECK_API(daecl_evaluate(m, &o, &a));
    CHECK(a.images == 40 && isfinite(a.loss) && isfinite(a.psnr) && isfinite(a.noisy_psnr) && a.ssim <= 1,
          "eval: %zu images, loss %g, PSNR %g vs noisy %g", a.images, a.loss, a.psnr, a.noisy_psnr);
    /* Another batch size: the same images with the same noise, the same figures. */
    o.batch = 40;
    CHECK_API(daecl_evaluate(m, &o, &b));
    CHECK(fabs(a.loss - b.loss) < 1e-5 * fabs(a.loss) && fabs(a.psnr - b.psnr) < 1e-4 && a.noisy_psnr == b.noisy_psnr,
          "eval at batch 16 and 40: loss %g %g, PSNR %g %g", a.loss, b.loss, a.psnr, b.psnr);
    o.loss = "mse";
    CHECK_API(daecl_evaluate(m, &o, &b));
    CHECK(b.loss != a.loss && b.psnr == a.psnr && b.loss < 1, "MSE reported: %g (BCE %g)", b.loss, a.loss);
    o.loss = NULL;
    o.noise = "gaussian:0.6";
    CHECK_API(daecl_evaluate(m, &o, &b));
    CHECK(b.noisy_psnr < a.noisy_psnr, "stronger noise: noisy PSNR %g < %g", b.noisy_psnr, a.noisy_psnr);
    o.noise = "bogus:1";
    CHECK(daecl_evaluate(m, &o, &b) == DAECL_ERR_INVALID_ARG, "bad noise refused");
    o.noise = NULL;
    o.data_dir = "/nonexistent";
    CHECK(daecl_evaluate(m, &o, &b) == DAECL_ERR_IO && strstr(daecl_last_error(), "/nonexistent"),
          "missing data refused: %s", daecl_last_error());
}

int main(void)
{
    uint64_t rng = test_seed();
    const char *base = getenv("DAECL_TEST_TMP");
    char tmp[512], data[600], model_path[1024];
    mkdir(base ? base : "/tmp", 0755);
    snprintf(tmp, sizeof tmp, "%s/api.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        perror(tmp);
        return 1;
    }
    snprintf(data, sizeof data, "%s/data", tmp);
    mkdir(data, 0755);
    if (write_split(data, "train", NTRAIN, &rng) || write_split(data, "t10k", NTEST, &rng)) {
        perror(data);
        return 1;
    }
    test_version_and_errors();
    daecl_device *dev = test_devices();
    if (dev) {
        test_train(dev, data, tmp, model_path, sizeof model_path);
        daecl_model *m = NULL;
        CHECK_API(daecl_model_load(dev, model_path, &m));
        if (m) {
            int mw, mh;
            daecl_model_input_size(m, &mw, &mh);
            CHECK(mw == SIDE && mh == SIDE && daecl_model_parameters(m) == 4 * 9 + 4 + 4 * 9 + 1 &&
                      strstr(daecl_model_arch(m), "conv:4") && daecl_model_channels(m) == 1 && !daecl_model_residual(m),
                  "model %s %dx%d, %zu parameters", daecl_model_arch(m), mw, mh, daecl_model_parameters(m));
            test_denoise(m, &rng);
            test_evaluate(m, data);
        }
        daecl_model_free(m);
        CHECK(daecl_model_load(dev, data, &m) != DAECL_OK && m == NULL && strstr(daecl_last_error(), data),
              "a directory is not a checkpoint: %s", daecl_last_error());
    }
    daecl_device_close(dev);
    if (test_failed_ == 0) nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    else fprintf(stderr, "files kept in %s\n", tmp);
    TEST_MAIN_END();
}
