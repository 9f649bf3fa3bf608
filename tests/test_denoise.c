/* Denoising images of any size (src/train/denoise.c): tiling geometry, odd sizes against a
 * double-precision host run of the model on the mirrored image, tiled == untiled for
 * windows down to the smallest allowed, 16-bit in -> 16-bit out through PNG files, reuse of one
 * denoiser across sizes, loading a model from a checkpoint; RGB models (against the model run
 * whole on the mirrored image), RGBA with alpha kept bit-exact, a gray model on a colour image
 * keeping chroma, and a second image size that builds no kernel. The CLI is tested end to end by
 * tests/test_visualize.sh. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>

#include "daecl/denoise.h"
#include "ref_model.h"
#include "test.h"

/* ---- host reference: the model on one image, output activation applied -------------------- */

static double *ref_run(const dc_arch *a, const float *params, size_t nparams, const double *x, int h, int w)
{
    ref_model r;
    if (ref_model_init(&r, a, 1, h, w) != DC_OK) return NULL;
    double *p = malloc(nparams * sizeof *p), *y = calloc((size_t)h * w, sizeof *y),
           *result = malloc((size_t)h * w * sizeof *result);
    for (size_t i = 0; i < nparams; i++) p[i] = params[i];
    ref_model_forward(&r, p, x);
    ref_model_loss(&r, DC_LOSS_MSE, y, 0, result); /* result = head(logits): what the denoiser emits */
    ref_model_free(&r);
    free(p);
    free(y);
    return result;
}

/* Mirror without repeating the edge (written independently of denoise.c's). */
static int mirror(int i, int n)
{
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/* The reference result: the image mirrored `margin` pixels beyond every edge (and up to a
 * multiple of align), run whole, cropped. The denoiser's windows are larger (32, 64, ...): equal
 * results also show that what lies beyond the margin does not matter. */
static double *ref_denoise(const dc_model *m, const float *params, const dc_image *img)
{
    int align, margin;
    dc_denoise_geometry(&m->arch, &align, NULL, &margin);
    int ph = (img->h + 2 * margin + align - 1) / align * align, pw = (img->w + 2 * margin + align - 1) / align * align;
    double *x = malloc((size_t)ph * pw * sizeof *x);
    for (int y = 0; y < ph; y++)
        for (int xx = 0; xx < pw; xx++)
            x[(size_t)y * pw + xx] = img->px[(size_t)mirror(y - margin, img->h) * img->w + mirror(xx - margin, img->w)];
    double *full = ref_run(&m->arch, params, m->nparams, x, ph, pw);
    free(x);
    if (!full) return NULL;
    double *crop = malloc((size_t)img->h * img->w * sizeof *crop);
    for (int y = 0; y < img->h; y++)
        for (int xx = 0; xx < img->w; xx++)
            crop[(size_t)y * img->w + xx] = full[(size_t)(y + margin) * pw + xx + margin];
    free(full);
    return crop;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static double max_abs_diff_ref(const float *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static void random_image(dc_image *img, int w, int h, uint64_t *rng)
{
    CHECK_OK(dc_image_alloc(img, w, h));
    if (!img->px) return;
    for (size_t i = 0; i < (size_t)w * h; i++) img->px[i] = (float)test_uniform(rng, 0, 1);
}

/* Glorot weights, then random biases so that zero padding at a window edge shows wherever it
 * reaches (with zero biases and a dark border it could hide). */
static dc_model *make_model(dc_device *dev, const char *spec, uint64_t *rng, float **params)
{
    dc_arch a;
    dc_model *m = NULL;
    *params = NULL;
    CHECK_OK(dc_arch_parse(spec, &a));
    CHECK_OK(dc_model_create(dev, &a, 1, 28, 28, 1, &m));
    if (!m) return NULL;
    CHECK_OK(dc_model_init_params(m, test_rand_u64(rng)));
    float *p = malloc(m->nparams * sizeof *p);
    CHECK_OK(dc_model_get_params(m, p));
    for (int i = 0; i < a.nlayers; i++)
        if (m->layers[i].nparams)
            for (int c = 0; c < a.layers[i].channels; c++) p[m->layers[i].b_off + c] = (float)test_uniform(rng, -0.2, 0.2);
    CHECK_OK(dc_model_set_params(m, p));
    *params = p;
    return m;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_geometry(void)
{
    static const struct {
        const char *spec;
        int align, reach, margin;
    } cases[] = {
        {"classic", 4, 11, 12},
        {"keras", 4, 8, 8}, /* convT k3: 2d + 1 (the registry test measures it) */
        {"unet", 4, 11, 12},
        {"conv:8:k5,conv:1:sigmoid", 1, 3, 3},
        {"conv:4,pool,conv:4,pool,conv:4,pool,conv:4,up,up,up,conv:1", 8, 17, 24},
        {"conv:4:k7,up,pool,conv:1", 1, 4, 4}, /* pool at depth -1 -> 0: sizes stay integer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dc_arch a;
        int al = -1, re = -1, ma = -1;
        CHECK_OK(dc_arch_parse(cases[i].spec, &a));
        dc_denoise_geometry(&a, &al, &re, &ma);
        CHECK(al == cases[i].align && re == cases[i].reach && ma == cases[i].margin,
              "%s: align %d reach %d margin %d, want %d %d %d", cases[i].spec, al, re, ma, cases[i].align,
              cases[i].reach, cases[i].margin);
    }
}

/* Odd sizes give the same size back, equal to the host reference on the padded image. */
static void test_sizes(dc_device *dev, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, "classic", rng, &params);
    if (!m) return;
    static const int sizes[][2] = {{1, 1}, {5, 3}, {29, 31}, {2, 2}, {1000, 7}}; /* (h, w) */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int h = sizes[i][0], w = sizes[i][1];
        dc_image in, out = {0};
        random_image(&in, w, h, rng);
        CHECK_OK(dc_denoise_image(dev, m, &in, &out, 0));
        CHECK(out.w == w && out.h == h && out.bit_depth == 8, "%dx%d in: got %dx%d %d-bit", w, h, out.w, out.h,
              out.bit_depth);
        if (out.px && out.w == w && out.h == h) {
            double *want = ref_denoise(m, params, &in);
            double e = want ? max_abs_diff_ref(out.px, want, (size_t)w * h) : INFINITY;
            CHECK(e < 1e-4, "%dx%d: differs from the host reference by %g", w, h, e);
            free(want);
        }
        dc_image_free(&in);
        dc_image_free(&out);
    }
    dc_model_destroy(m);
    free(params);
}

/* Two runs with different windows give the same result everywhere (margin >= reach): tile_a
 * cuts the image into windows, tile_b into other windows or none. */
static void check_tiling(dc_device *dev, const char *spec, int h, int w, int tile_a, int tile_b, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, spec, rng, &params);
    if (!m) return;
    dc_image in, a = {0}, b = {0};
    random_image(&in, w, h, rng);
    dc_denoiser *da = NULL, *db = NULL;
    dc_denoise_info ia = {0}, ib = {0};
    CHECK_OK(dc_denoiser_create(dev, m, tile_a, &da));
    CHECK_OK(dc_denoiser_create(dev, m, tile_b, &db));
    if (da && db) {
        CHECK_OK(dc_denoiser_run(da, &in, &a, &ia));
        CHECK_OK(dc_denoiser_run(db, &in, &b, &ib));
    }
    CHECK(ia.tiles_x * ia.tiles_y > 1, "%s %dx%d tile %d: not tiled", spec, w, h, tile_a);
    CHECK(ia.win_w != ib.win_w || ia.win_h != ib.win_h, "%s: both runs used %dx%d windows", spec, ia.win_w, ia.win_h);
    if (a.px && b.px) {
        double e = max_abs_diff(a.px, b.px, (size_t)w * h);
        CHECK(e <= 1e-5, "%s %dx%d: %dx%d windows of %dx%d vs %dx%d of %dx%d differ by %g", spec, w, h, ia.tiles_x,
              ia.tiles_y, ia.win_w, ia.win_h, ib.tiles_x, ib.tiles_y, ib.win_w, ib.win_h, e);
        printf("%s %dx%d: %dx%d windows of %dx%d (batch %d, %.1f MB) vs %dx%d of %dx%d: max difference %.2g\n", spec,
               w, h, ia.tiles_x, ia.tiles_y, ia.win_w, ia.win_h, ia.batch, ia.act_bytes / 1e6, ib.tiles_x, ib.tiles_y,
               ib.win_w, ib.win_h, e);
    }
    dc_denoiser_destroy(da);
    dc_denoiser_destroy(db);
    dc_image_free(&in);
    dc_image_free(&a);
    dc_image_free(&b);
    dc_model_destroy(m);
    free(params);
}

static void test_tile_rounding(dc_device *dev, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, "classic", rng, &params);
    if (!m) return;
    static const int want[][2] = {{0, DC_DENOISE_TILE_DEFAULT}, {1, 28}, {28, 28}, {29, 32}, {30, 32}, {257, 260}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        dc_denoiser *d = NULL;
        CHECK_OK(dc_denoiser_create(dev, m, want[i][0], &d));
        if (d) CHECK(dc_denoiser_tile(d) == want[i][1], "tile %d -> %d, want %d", want[i][0], dc_denoiser_tile(d), want[i][1]);
        dc_denoiser_destroy(d);
    }
    dc_denoiser *d = NULL;
    CHECK(dc_denoiser_create(dev, m, -1, &d) == DC_ERR_INVALID_ARG && !d, "negative tile accepted");
    /* The default bound: classic T x T windows, batch within the memory budget (planned only:
     * the run at this tile is tested on 1000 x 7, and a T x T shape costs a long JIT). */
    int margin;
    dc_denoise_geometry(&m->arch, NULL, NULL, &margin);
    const int T = DC_DENOISE_TILE_DEFAULT, CORE = T - 2 * margin; /* a window's kept core */
    dc_image out = {0};
    dc_denoise_info info = {0};
    CHECK_OK(dc_denoiser_create(dev, m, 0, &d));
    if (d) CHECK_OK(dc_denoiser_plan(d, 600, 300, &info));
    CHECK(info.win_w == T && info.win_h == T && info.tiles_x == (600 + CORE - 1) / CORE &&
              info.tiles_y == (300 + CORE - 1) / CORE,
          "600x300: %dx%d windows of %dx%d", info.tiles_x, info.tiles_y, info.win_w, info.win_h);
    /* see denoise.h: 13 floats per pixel where the convs write the max pools after them */
    size_t floats = dc_conv2d_maxpool_fits(dev, 1, 32, T, T, 3) ? 13 : 43;
    size_t per_window = floats * T * T * sizeof(float);
    int windows = info.tiles_x * info.tiles_y;
    CHECK(info.batch == windows && info.act_bytes == (size_t)windows * per_window &&
              info.act_bytes <= DC_DENOISE_MEM_BUDGET,
          "batch %d, %zu activation bytes", info.batch, info.act_bytes);
    printf("classic 600x300, default tile: %dx%d windows of %dx%d, batch %d, %.1f MB activations\n", info.tiles_x,
           info.tiles_y, info.win_w, info.win_h, info.batch, info.act_bytes / 1e6);
    /* Two fixed square shapes: 64 x 64 when the image and its margins fit, else tile x tile. */
    const int ladder[][6] = {{CORE, CORE, 1, 1, T, T},       {5, CORE + 1, 1, 2, T, T},
                                    {28, 28, 1, 1, 64, 64},         {1, 1, 1, 1, 64, 64},
                                    {40, 40, 1, 1, 64, 64},         {100, 9, 1, 1, T, T},
                                    {1000, 1, (1000 + CORE - 1) / CORE, 1, T, T}};
    for (size_t i = 0; i < sizeof ladder / sizeof ladder[0] && d; i++) {
        CHECK_OK(dc_denoiser_plan(d, ladder[i][0], ladder[i][1], &info));
        CHECK(info.tiles_x == ladder[i][2] && info.tiles_y == ladder[i][3] && info.win_w == ladder[i][4] &&
                  info.win_h == ladder[i][5],
              "%dx%d: %dx%d windows of %dx%d", ladder[i][0], ladder[i][1], info.tiles_x, info.tiles_y, info.win_w,
              info.win_h);
    }
    if (d) CHECK(dc_denoiser_plan(d, 0, 5, &info) == DC_ERR_INVALID_ARG, "0x5 planned");
    /* A tile of the image's own size leaves no room for the margins (2 x 1 windows of the whole
     * image); the tile the plan names instead takes it in one window. */
    for (int pass = 0, tile = 600; pass < 2; pass++) {
        dc_denoiser *dt = NULL;
        CHECK_OK(dc_denoiser_create(dev, m, tile, &dt));
        if (dt) CHECK_OK(dc_denoiser_plan(dt, 600, 300, &info));
        int want = pass ? 1 : 2;
        CHECK(info.tiles_x == want && info.tiles_y == 1 && info.win_w == tile,
              "600x300 at tile %d: %dx%d windows of %dx%d, want %dx1 of %d", tile, info.tiles_x, info.tiles_y,
              info.win_w, info.win_h, want, tile);
        printf("classic 600x300 at tile %d: %dx%d windows of %dx%d, one window from tile %d\n", tile, info.tiles_x,
               info.tiles_y, info.win_w, info.win_h, info.one_window_tile);
        tile = info.one_window_tile;
        dc_denoiser_destroy(dt);
    }
    /* Empty input refused. */
    dc_image empty = {0};
    if (d) CHECK(dc_denoiser_run(d, &empty, &out, NULL) == DC_ERR_INVALID_ARG, "empty image accepted");
    CHECK(out.px == NULL, "output not cleared on failure");
    dc_denoiser_destroy(d);
    dc_image_free(&out);
    dc_model_destroy(m);
    free(params);
}

/* One denoiser, several sizes in a row (model rebuilt or kept), same as fresh one-shot runs. */
static void test_reuse(dc_device *dev, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, "classic", rng, &params);
    if (!m) return;
    dc_denoiser *d = NULL;
    CHECK_OK(dc_denoiser_create(dev, m, 28, &d));
    static const int sizes[][2] = {{29, 31}, {5, 3}, {29, 31}, {1, 1}, {5, 3}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && d; i++) {
        dc_image in, a = {0}, b = {0};
        random_image(&in, sizes[i][1], sizes[i][0], rng);
        CHECK_OK(dc_denoiser_run(d, &in, &a, NULL));
        CHECK_OK(dc_denoise_image(dev, m, &in, &b, 28));
        if (a.px && b.px)
            CHECK(max_abs_diff(a.px, b.px, (size_t)in.w * in.h) == 0, "reused denoiser differs at %dx%d", in.w, in.h);
        dc_image_free(&in);
        dc_image_free(&a);
        dc_image_free(&b);
    }
    dc_denoiser_destroy(d);
    /* A model for 2-channel input is refused. */
    dc_arch a;
    dc_model *m2 = NULL;
    CHECK_OK(dc_arch_parse("conv:4,conv:2:sigmoid", &a));
    CHECK_OK(dc_model_create(dev, &a, 2, 8, 8, 1, &m2));
    d = NULL;
    if (m2) CHECK(dc_denoiser_create(dev, m2, 0, &d) == DC_ERR_UNSUPPORTED && !d, "2-channel model accepted");
    dc_model_destroy(m2);
    dc_model_destroy(m);
    free(params);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    const char *base = getenv("DAECL_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    snprintf(buf, len, "%s/denoise-%ld-%s", base, (long)getpid(), name);
}

/* 16-bit PNG in -> 16-bit out, through files as the CLI does it. */
static void test_16bit(dc_device *dev, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, "classic", rng, &params);
    if (!m) return;
    char in_path[512], out_path[512];
    tmp_path(in_path, sizeof in_path, "in16.png");
    tmp_path(out_path, sizeof out_path, "out16.png");
    dc_image src, in = {0}, out = {0}, back = {0};
    random_image(&src, 31, 29, rng);
    CHECK_OK(dc_png_write(in_path, &src, 16));
    CHECK_OK(dc_png_read(in_path, &in));
    CHECK(in.bit_depth == 16, "16-bit PNG read as %d-bit", in.bit_depth);
    CHECK_OK(dc_denoise_image(dev, m, &in, &out, 0));
    CHECK(out.bit_depth == 16, "16-bit input gave %d-bit output", out.bit_depth);
    if (out.px) CHECK_OK(dc_png_write(out_path, &out, out.bit_depth));
    CHECK_OK(dc_png_read(out_path, &back));
    CHECK(back.bit_depth == 16 && back.w == 31 && back.h == 29, "written back as %dx%d %d-bit", back.w, back.h,
          back.bit_depth);
    if (back.px && out.px && back.w == 31 && back.h == 29) {
        double e = max_abs_diff(back.px, out.px, 31 * 29);
        CHECK(e <= 0.5 / 65535 + 1e-7, "16-bit round trip error %g", e);
    }
    /* 8-bit stays 8-bit */
    dc_image_free(&in);
    dc_image_free(&out);
    CHECK_OK(dc_png_write(in_path, &src, 8));
    CHECK_OK(dc_png_read(in_path, &in));
    CHECK_OK(dc_denoise_image(dev, m, &in, &out, 0));
    CHECK(in.bit_depth == 8 && out.bit_depth == 8, "8-bit input gave %d-bit output", out.bit_depth);
    unlink(in_path);
    unlink(out_path);
    dc_image_free(&src);
    dc_image_free(&in);
    dc_image_free(&out);
    dc_image_free(&back);
    dc_model_destroy(m);
    free(params);
}

static void test_checkpoint(dc_device *dev, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, "unet", rng, &params);
    if (!m) return;
    char path[512], bad_path[512];
    tmp_path(path, sizeof path, "model.dcl");
    tmp_path(bad_path, sizeof bad_path, "bad.dcl");
    float no_state = 0; /* nstate 0, but dc_checkpoint_save memcpy's from it: not NULL */
    dc_checkpoint ck = {.in_c = 1, .in_h = 28, .in_w = 28, .nparams = m->nparams, .params = params,
                        .state = &no_state, .best_val_loss = INFINITY};
    dc_run_config_defaults(&ck.run);
    ck.run.seed = 42;
    dc_arch_format(&m->arch, ck.arch, sizeof ck.arch);
    CHECK_OK(dc_checkpoint_save(path, &ck));
    dc_model *lm = NULL;
    dc_checkpoint got;
    CHECK_OK(dc_denoise_load_model(dev, path, &lm, &got));
    if (lm) {
        CHECK(got.run.seed == 42 && lm->nparams == m->nparams && lm->in_h == 28, "loaded model differs");
        dc_checkpoint_free(&got);
        dc_image in, a = {0}, b = {0};
        random_image(&in, 31, 29, rng);
        CHECK_OK(dc_denoise_image(dev, m, &in, &a, 0));
        CHECK_OK(dc_denoise_image(dev, lm, &in, &b, 0));
        if (a.px && b.px) CHECK(max_abs_diff(a.px, b.px, 31 * 29) == 0, "loaded model denoises differently");
        dc_image_free(&in);
        dc_image_free(&a);
        dc_image_free(&b);
    }
    dc_model_destroy(lm);
    /* parameters that do not fit the architecture, and a missing file: refused, file named */
    snprintf(ck.arch, sizeof ck.arch, "conv:8,conv:1:sigmoid");
    CHECK_OK(dc_checkpoint_save(bad_path, &ck));
    lm = NULL;
    dc_status s = dc_denoise_load_model(dev, bad_path, &lm, NULL);
    CHECK(s == DC_ERR_FORMAT && !lm && strstr(dc_error_detail(), bad_path), "mismatched checkpoint: %s: %s",
          dc_strerror(s), dc_error_detail());
    unlink(bad_path);
    s = dc_denoise_load_model(dev, bad_path, &lm, NULL);
    CHECK(s == DC_ERR_IO && !lm && strstr(dc_error_detail(), bad_path), "missing checkpoint: %s: %s", dc_strerror(s),
          dc_error_detail());
    unlink(path);
    dc_model_destroy(m);
    free(params);
}

/* ---- colour ---------------------------------------------------------------------------------- */

static dc_model *make_model_c(dc_device *dev, const char *spec, int c, uint64_t *rng)
{
    dc_arch a;
    dc_model *m = NULL;
    CHECK_OK(dc_arch_parse(spec, &a));
    CHECK_OK(dc_model_create(dev, &a, c, 16, 16, 1, &m));
    if (m) CHECK_OK(dc_model_init_params(m, test_rand_u64(rng)));
    return m;
}

static void random_planes(dc_image *img, int w, int h, int c, int alpha, uint64_t *rng)
{
    CHECK_OK(dc_image_alloc_c(img, w, h, c));
    if (!img->px) return;
    for (size_t i = 0; i < (size_t)w * h * c; i++) img->px[i] = (float)test_uniform(rng, 0, 1);
    if (alpha) {
        img->alpha = malloc((size_t)w * h * sizeof *img->alpha);
        for (size_t i = 0; i < (size_t)w * h; i++) img->alpha[i] = (float)(test_rand_u64(rng) % 65536) / 65535.0f;
    }
}

/* The model run whole (on the device, one image) on the mirrored image, cropped: what every
 * tiling must give, channel planes included. */
static float *whole_run(dc_device *dev, const dc_model *m, const dc_image *img)
{
    int align, margin, c = img->c;
    dc_denoise_geometry(&m->arch, &align, NULL, &margin);
    int ph = (img->h + 2 * margin + align - 1) / align * align, pw = (img->w + 2 * margin + align - 1) / align * align;
    size_t pp = (size_t)ph * pw, plane = (size_t)img->w * img->h;
    float *x = malloc(pp * c * sizeof *x), *y = malloc(pp * c * sizeof *y), *crop = NULL;
    for (int k = 0; k < c; k++)
        for (int yy = 0; yy < ph; yy++)
            for (int xx = 0; xx < pw; xx++)
                x[k * pp + (size_t)yy * pw + xx] =
                    img->px[k * plane + (size_t)mirror(yy - margin, img->h) * img->w + mirror(xx - margin, img->w)];
    dc_model *whole = NULL;
    dc_tensor t = {0}, z;
    dc_status s = dc_model_create_shared(m, ph, pw, 1, &whole);
    if (!s) s = dc_tensor_create(dev, 1, c, ph, pw, DC_LAYOUT_NCHW, &t);
    if (!s) s = dc_tensor_write(dev, &t, x);
    if (!s) s = dc_model_predict(whole, &t, 1, &z);
    if (!s) s = dc_tensor_read(dev, &z, y);
    CHECK(s == DC_OK, "whole run: %s", dc_error_detail());
    if (!s) {
        crop = malloc(plane * c * sizeof *crop);
        for (int k = 0; k < c; k++)
            for (int yy = 0; yy < img->h; yy++)
                for (int xx = 0; xx < img->w; xx++)
                    crop[k * plane + (size_t)yy * img->w + xx] = y[k * pp + (size_t)(yy + margin) * pw + xx + margin];
    }
    dc_tensor_release(&t);
    dc_model_destroy(whole);
    free(x);
    free(y);
    return crop;
}

/* An RGB model: RGBA in, RGB + the same alpha out, equal to the whole run, tiled or not; 16-bit
 * kept; a gray image through the RGB model gives gray back. */
static void test_rgb_model(dc_device *dev, uint64_t *rng)
{
    dc_model *m = make_model_c(dev, "conv:8,conv:8,conv:3:sigmoid", 3, rng);
    if (!m) return;
    dc_image in, a = {0}, b = {0};
    random_planes(&in, 31, 29, 3, 1, rng);
    in.bit_depth = 16;
    dc_denoiser *da = NULL, *db = NULL;
    dc_denoise_info ia = {0}, ib = {0};
    CHECK_OK(dc_denoiser_create(dev, m, 1, &da)); /* the smallest windows */
    CHECK_OK(dc_denoiser_create(dev, m, 0, &db)); /* one 64 x 64 window */
    if (da && db && in.px) {
        CHECK_OK(dc_denoiser_run(da, &in, &a, &ia));
        CHECK_OK(dc_denoiser_run(db, &in, &b, &ib));
    }
    float *want = in.px ? whole_run(dev, m, &in) : NULL;
    size_t n = (size_t)in.w * in.h;
    CHECK(ia.tiles_x * ia.tiles_y > 1 && ib.tiles_x * ib.tiles_y == 1, "tiles %dx%d, %dx%d", ia.tiles_x, ia.tiles_y,
          ib.tiles_x, ib.tiles_y);
    if (a.px && b.px && want) {
        CHECK(a.c == 3 && b.c == 3 && a.bit_depth == 16, "RGB out: c %d %d, depth %d", a.c, b.c, a.bit_depth);
        double ea = max_abs_diff(a.px, want, 3 * n), eb = max_abs_diff(b.px, want, 3 * n);
        CHECK(ea <= 1e-5 && eb <= 1e-5, "RGB model: tiled %g, untiled %g from the whole run", ea, eb);
        printf("RGB model 31x29: %dx%d windows of %dx%d and one of %dx%d, max difference %.2g / %.2g\n", ia.tiles_x,
               ia.tiles_y, ia.win_w, ia.win_h, ib.win_w, ib.win_h, ea, eb);
        CHECK(a.alpha && memcmp(a.alpha, in.alpha, n * sizeof *a.alpha) == 0, "alpha not carried bit-exact");
        CHECK(a.alpha != in.alpha, "alpha shared, not copied");
    }
    free(want);
    /* --clean's measures: an image against itself is perfect, against another it is not; a
     * size mismatch is refused */
    double psnr = 0, ssim = 0;
    if (in.px && a.px) {
        CHECK_OK(dc_image_quality(dev, &in, &in, &psnr, &ssim));
        CHECK(psnr == 100.0 && fabs(ssim - 1.0) < 1e-6, "self: PSNR %g SSIM %g", psnr, ssim);
        CHECK_OK(dc_image_quality(dev, &a, &in, &psnr, &ssim));
        CHECK(psnr > 0 && psnr < 60 && ssim < 0.99, "output vs input: PSNR %g SSIM %g", psnr, ssim);
        dc_image small = in;
        small.w = 5;
        CHECK(dc_image_quality(dev, &small, &in, &psnr, &ssim) == DC_ERR_INVALID_ARG, "size mismatch measured");
    }
    dc_image_free(&a);
    /* gray through the RGB model: the luma of the RGB result on R = G = B */
    dc_image gray, rgb;
    random_planes(&gray, 9, 7, 1, 0, rng);
    CHECK_OK(dc_image_alloc_c(&rgb, 9, 7, 3));
    for (int k = 0; k < 3 && rgb.px && gray.px; k++) memcpy(rgb.px + k * 63, gray.px, 63 * sizeof(float));
    dc_image g_out = {0}, rgb_out = {0};
    if (db && gray.px) {
        CHECK_OK(dc_denoiser_run(db, &gray, &g_out, NULL));
        CHECK_OK(dc_denoiser_run(db, &rgb, &rgb_out, NULL));
    }
    if (g_out.px && rgb_out.px) {
        int bad = g_out.c != 1;
        for (int i = 0; i < 63 && !bad; i++)
            bad += g_out.px[i] != dc_luma601(rgb_out.px[i], rgb_out.px[63 + i], rgb_out.px[126 + i]);
        CHECK(!bad, "gray through an RGB model: not the luma of its RGB result");
    }
    dc_image_free(&gray);
    dc_image_free(&rgb);
    dc_image_free(&g_out);
    dc_image_free(&rgb_out);
    dc_denoiser_destroy(da);
    dc_denoiser_destroy(db);
    dc_image_free(&in);
    dc_image_free(&b);
    dc_model_destroy(m);
}

/* A gray model on a colour image denoises luma and keeps chroma: R' - R = G' - G = B' - B =
 * Y' - Y, with Y' the gray model's output on the luma plane. The test image has constant luma
 * and only chroma varies, so a denoiser that blurred colour would show. */
static void test_gray_model_on_colour(dc_device *dev, uint64_t *rng)
{
    dc_model *m = make_model_c(dev, "conv:4,conv:1:sigmoid", 1, rng);
    dc_denoiser *d = NULL;
    if (m) CHECK_OK(dc_denoiser_create(dev, m, 0, &d));
    if (!d) {
        dc_model_destroy(m);
        return;
    }
    const int w = 23, h = 17;
    size_t n = (size_t)w * h;
    dc_image in, luma, out = {0}, yout = {0};
    CHECK_OK(dc_image_alloc_c(&in, w, h, 3));
    CHECK_OK(dc_image_alloc(&luma, w, h));
    for (size_t i = 0; in.px && luma.px && i < n; i++) {
        /* pure chroma around Y = 0.5: R and B swing, G balances them */
        float r = (float)test_uniform(rng, 0.3, 0.7), b = (float)test_uniform(rng, 0.3, 0.7);
        float g = (float)((0.5 - 0.299 * r - 0.114 * b) / 0.587);
        in.px[i] = r, in.px[n + i] = g, in.px[2 * n + i] = b;
        luma.px[i] = dc_luma601(r, g, b);
    }
    CHECK_OK(dc_denoiser_run(d, &in, &out, NULL));
    CHECK_OK(dc_denoiser_run(d, &luma, &yout, NULL));
    if (out.px && yout.px) {
        double worst = 0, worst_luma = 0;
        for (size_t i = 0; i < n; i++) {
            double dy = (double)yout.px[i] - luma.px[i];
            for (int k = 0; k < 3; k++) {
                double e = fabs(((double)out.px[k * n + i] - in.px[k * n + i]) - dy);
                if (e > worst) worst = e;
            }
            double e = fabs(dc_luma601(out.px[i], out.px[n + i], out.px[2 * n + i]) - yout.px[i]);
            if (e > worst_luma) worst_luma = e;
        }
        CHECK(out.c == 3 && worst < 1e-6 && worst_luma < 1e-6, "chroma changed by %g, luma off by %g", worst, worst_luma);
    }
    dc_image_free(&in);
    dc_image_free(&luma);
    dc_image_free(&out);
    dc_image_free(&yout);
    dc_denoiser_destroy(d);
    dc_model_destroy(m);
}

/* After one image, another of a different size runs on the same fixed window shapes: no program
 * is built or loaded again, only found in memory. */
static void test_no_build_per_size(dc_device *dev, uint64_t *rng)
{
    float *params;
    dc_model *m = make_model(dev, "classic", rng, &params);
    if (!m) return;
    dc_denoiser *d = NULL;
    CHECK_OK(dc_denoiser_create(dev, m, 64, &d));
    static const int sizes[][2] = {{90, 70}, {33, 200}, {64, 65}, {150, 150}};
    dc_kernel_stats before = {0};
    for (size_t i = 0; d && i < sizeof sizes / sizeof sizes[0]; i++) {
        dc_image in, out = {0};
        dc_denoise_info info;
        random_image(&in, sizes[i][0], sizes[i][1], rng);
        CHECK_OK(dc_denoiser_run(d, &in, &out, &info));
        CHECK(info.win_w == 64 && info.win_h == 64, "%dx%d ran on %dx%d windows", in.w, in.h, info.win_w, info.win_h);
        if (i > 0)
            CHECK(dev->stats.source_builds == before.source_builds && dev->stats.cache_loads == before.cache_loads &&
                      dev->stats.memory_hits > before.memory_hits,
                  "%dx%d after another size: builds %d -> %d, disk loads %d -> %d", in.w, in.h, before.source_builds,
                  dev->stats.source_builds, before.cache_loads, dev->stats.cache_loads);
        before = dev->stats;
        dc_image_free(&in);
        dc_image_free(&out);
    }
    dc_denoiser_destroy(d);
    dc_model_destroy(m);
    free(params);
}

/* ---- the CLI on files and folders ------------------------------------------------------------- */

/* Run a shell command, its output (stdout and stderr) into *text (static); returns its exit status. */
static int run_cmd(const char *cmd, char **text)
{
    static char buf[16384];
    char full[4096 + 8];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
    buf[n] = '\0';
    int st = p ? pclose(p) : -1;
    *text = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* dae-cl denoise end to end with an RGB checkpoint: a folder holding PNG (8-bit RGB, 16-bit
 * RGBA), JPEG and a corrupt file: the good ones done with their relative paths (JPEG -> PNG,
 * 16-bit and alpha kept), the bad one named, exit 1; a second run skips them all; output
 * folders inside the input (or the same) refused; a JPEG output; --noise measurements. */
static void test_cli_folder(dc_device *dev, uint64_t *rng)
{
    const char *build = getenv("DAECL_BUILD_ROOT");
    if (!build) {
        printf("DAECL_BUILD_ROOT unset: the CLI folder test is skipped\n");
        return;
    }
    dc_model *m = make_model_c(dev, "conv:4,conv:3:sigmoid", 3, rng);
    if (!m) return;
    char dir[512], cmd[4096], path[1024];
    tmp_path(dir, sizeof dir, "cli");
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/in/sub'", dir, dir);
    CHECK(system(cmd) == 0, "%s", cmd);
    float *params = malloc(m->nparams * sizeof *params), no_state = 0;
    CHECK_OK(dc_model_get_params(m, params));
    dc_checkpoint ck = {.in_c = 3, .in_h = 16, .in_w = 16, .nparams = m->nparams, .params = params,
                        .state = &no_state, .best_val_loss = INFINITY};
    dc_run_config_defaults(&ck.run);
    dc_arch_format(&m->arch, ck.arch, sizeof ck.arch);
    char model[1024];
    snprintf(model, sizeof model, "%s/m.dcl", dir);
    CHECK_OK(dc_checkpoint_save(model, &ck));
    dc_image a, c16;
    random_planes(&a, 20, 12, 3, 0, rng);
    random_planes(&c16, 9, 13, 3, 1, rng);
    snprintf(path, sizeof path, "%s/in/a.png", dir);
    CHECK_OK(dc_image_write(path, &a, 8, 0));
    snprintf(path, sizeof path, "%s/in/sub/b.jpg", dir);
    CHECK_OK(dc_image_write(path, &a, 8, 90));
    snprintf(path, sizeof path, "%s/in/sub/c16.png", dir);
    CHECK_OK(dc_image_write(path, &c16, 16, 0));
    snprintf(path, sizeof path, "%s/in/sub/bad.png", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("not an image", f);
        fclose(f);
    }
    char *out;
    const char *bin = "src/cli/dae-cl";
    snprintf(cmd, sizeof cmd, "cd '%s' && TERM=dumb %s denoise --model '%s' -i '%s/in' -o '%s/out'", build, bin, model,
             dir, dir);
    int st = run_cmd(cmd, &out);
    CHECK(st == 1, "folder with a bad file: exit %d, want 1: %s", st, out);
    CHECK(strstr(out, "in/sub/bad.png: not a PNG or JPEG file") && strstr(out, "done 3, skipped 0, failed 1 of 4 files"),
          "folder run output: %s", out);
    CHECK(!strstr(out, "\033"), "escape codes with TERM=dumb: %s", out);
    dc_image back = {0};
    snprintf(path, sizeof path, "%s/out/sub/c16.png", dir);
    CHECK_OK(dc_image_read(path, 0, &back));
    if (back.px && c16.px) {
        CHECK(back.c == 3 && back.bit_depth == 16 && back.alpha, "c16 out: c %d depth %d alpha %p", back.c,
              back.bit_depth, (void *)back.alpha);
        if (back.alpha)
            CHECK(memcmp(back.alpha, c16.alpha, (size_t)9 * 13 * sizeof(float)) == 0, "alpha not bit-exact through files");
    }
    dc_image_free(&back);
    dc_image_info info = {0};
    snprintf(path, sizeof path, "%s/out/sub/b.png", dir);
    CHECK_OK(dc_image_probe(path, &info));
    CHECK(info.format == DC_IMAGE_PNG && info.c == 3 && info.w == 20 && info.h == 12, "JPEG in -> PNG out");
    snprintf(path, sizeof path, "%s/out/a.png", dir);
    CHECK(access(path, F_OK) == 0, "out/a.png missing");
    snprintf(path, sizeof path, "%s/out/sub/bad.png", dir);
    CHECK(access(path, F_OK) != 0, "an output for the bad file");

    snprintf(cmd, sizeof cmd, "cd '%s' && %s denoise --model '%s' -i '%s/in' -o '%s/out' --json", build, bin, model, dir,
             dir);
    st = run_cmd(cmd, &out);
    CHECK(st == 1 && strstr(out, "\"skipped\": 3") && strstr(out, "\"failed\": 1") && strstr(out, "\"done\": 0"),
          "second run skips the outputs (exit %d): %s", st, out);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s denoise --model '%s' -i '%s/in' -o '%s/out' --overwrite --quiet", build,
             bin, model, dir, dir);
    CHECK(run_cmd(cmd, &out) == 1, "--overwrite: %s", out);
    static const char *const overlapping[] = {"in", "in/sub", "in/sub/new"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && %s denoise --model '%s' -i '%s/in' -o '%s/%s'", build, bin, model, dir, dir,
                 overlapping[i]);
        st = run_cmd(cmd, &out);
        CHECK(st == 2 && strstr(out, "one holds the other"), "-o %s inside the input: exit %d: %s", overlapping[i], st,
              out);
    }
    snprintf(path, sizeof path, "%s/in/sub/new", dir);
    CHECK(access(path, F_OK) != 0, "a refused run made its output folder inside the input");
    snprintf(cmd, sizeof cmd, "cd '%s/in' && %s/%s denoise --model '%s' -i . -o ..", dir, build, bin, model);
    st = run_cmd(cmd, &out);
    CHECK(st == 2, "-o .. holding -i . : exit %d: %s", st, out);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s denoise --model '%s' '%s/in/a.png' -o '%s/a.jpg' --quality 80 --noise gaussian:0.1",
             build, bin, model, dir, dir);
    st = run_cmd(cmd, &out);
    CHECK(st == 0 && strstr(out, "input PSNR") && strstr(out, "output PSNR"), "JPEG output with --noise: %s", out);
    snprintf(path, sizeof path, "%s/a.jpg", dir);
    CHECK_OK(dc_image_probe(path, &info));
    CHECK(info.format == DC_IMAGE_JPEG && info.c == 3, "-o a.jpg is not an RGB JPEG");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!test_failed_) CHECK(system(cmd) == 0, "%s", cmd);
    dc_image_free(&a);
    dc_image_free(&c16);
    free(params);
    dc_model_destroy(m);
}

int main(void)
{
    uint64_t rng = test_seed();
    test_geometry();
    dc_device *dev = NULL;
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (!dev) TEST_MAIN_END();
    test_sizes(dev, &rng);
    /* Sizes are chosen to reuse window shapes: each new one costs a kernel JIT (5-20 s). The
     * smallest tile (28) gives 4x4-pixel cores: every pixel is near some window's edge. */
    check_tiling(dev, "classic", 29, 31, 1, 1 << 16, &rng); /* 8x8 windows of 28x28 vs one of 64x64 */
    check_tiling(dev, "classic", 1000, 7, 0, 1, &rng);      /* 5 windows of 256x256 vs 500 of 28x28 */
    check_tiling(dev, "keras", 29, 31, 1, 1 << 16, &rng);
    check_tiling(dev, "unet", 29, 31, 1, 1 << 16, &rng);
    test_tile_rounding(dev, &rng);
    test_reuse(dev, &rng);
    test_16bit(dev, &rng);
    test_checkpoint(dev, &rng);
    test_rgb_model(dev, &rng);
    test_gray_model_on_colour(dev, &rng);
    test_no_build_per_size(dev, &rng);
    test_cli_folder(dev, &rng);
    dc_device_close(dev);
    TEST_MAIN_END();
}
