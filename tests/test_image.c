/* Tests for src/image: PNG reading of every colour type / bit depth (files written here with
 * libpng directly) as gray, as stored (planes + alpha) and as RGB; JPEG gray/colour written
 * with libjpeg directly; 8/16-bit gray, RGB(A) and JPEG round trips; malformed files, palette indices beyond the palette,
 * atomic writes, special files (FIFO, device, directory, symlink) in and out, sample grids. */
#include "daecl/image.h"
#include "test.h"

#include <dirent.h>
#include <jpeglib.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[1024];
static uint64_t rng;

/* ---- helpers -------------------------------------------------------------------------------- */

static void mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0777);
        *p = '/';
    }
    mkdir(buf, 0777);
}

static void setup_tmpdir(void)
{
    const char *base = getenv("DAECL_TEST_TMP");
    if (base && *base) {
        mkdir_p(base);
        snprintf(tmpdir, sizeof tmpdir, "%s/image.%ld", base, (long)getpid());
        mkdir_p(tmpdir);
    } else {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/daecl-image-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
}

static const char *tpath(const char *name)
{
    static char buf[8][1400];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

/* Remove everything under dir (one level of subdirectories is enough here). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0755);
            rm_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Number of entries in dir whose name contains ".tmp." */
static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

static int write_all(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static int file_equals(const char *path, const unsigned char *data, size_t n)
{
    size_t m = 0;
    unsigned char *b = read_all(path, &m);
    int eq = b && m == n && memcmp(b, data, n) == 0;
    free(b);
    return eq;
}

/* Check that a failure is `want` and that its detail names the file. */
#define CHECK_REFUSED(expr, want, path)                                                         \
    do {                                                                                        \
        dc_status rs_ = (expr);                                                                 \
        CHECK(rs_ == (want), "%s -> %s (%s), want %s", #expr, dc_strerror(rs_), dc_error_detail(), \
              dc_strerror(want));                                                               \
        CHECK(strstr(dc_error_detail(), (path)) != NULL, "detail '%s' should name %s",          \
              dc_error_detail(), (path));                                                       \
        printf("refused as expected: %s\n", dc_error_detail());                                \
    } while (0)

/* ---- writing test PNGs with libpng directly ---------------------------------------------------- */

typedef struct spec {
    int w, h;
    int ctype, depth, interlace;
    const uint16_t *samples; /* w*h*channels sample values (palette: indices) */
    const png_color *palette;
    int npalette;
    const png_byte *trans_alpha; /* palette tRNS, ntrans entries */
    int ntrans;
    int has_trans_color; /* gray/RGB tRNS */
    png_color_16 trans_color;
    int with_text; /* add a tEXt chunk */
} spec;

static int channels_of(int ctype)
{
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* palette */
    }
}

typedef struct raw_writer {
    FILE *fp;
    png_structp png;
    png_infop info;
    png_bytep data;
    png_bytepp rows;
} raw_writer;

static void raw_error(png_structp png, png_const_charp msg)
{
    fprintf(stderr, "test libpng writer: %s\n", msg);
    png_longjmp(png, 1);
}

static int raw_write_body(raw_writer *rw, const spec *s)
{
    if (setjmp(png_jmpbuf(rw->png))) return -1;
    png_init_io(rw->png, rw->fp);
    png_set_IHDR(rw->png, rw->info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->ctype,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(rw->png, rw->info, s->palette, s->npalette);
    if (s->trans_alpha) png_set_tRNS(rw->png, rw->info, s->trans_alpha, s->ntrans, NULL);
    if (s->has_trans_color) png_set_tRNS(rw->png, rw->info, NULL, 0, &s->trans_color);
    if (s->with_text) {
        png_text t = {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Comment",
                      .text = "a comment chunk for the CRC test"};
        png_set_text(rw->png, rw->info, &t, 1);
    }
    png_write_info(rw->png, rw->info);
    png_write_image(rw->png, rw->rows);
    png_write_end(rw->png, rw->info);
    return 0;
}

/* Pack samples into PNG rows and write the file. */
static int write_raw_png(const char *path, const spec *s)
{
    int ch = channels_of(s->ctype);
    size_t rowbytes = ((size_t)s->w * ch * s->depth + 7) / 8;
    raw_writer rw = {0};
    int rc = -1;
    rw.data = calloc(rowbytes * s->h, 1);
    rw.rows = malloc(sizeof *rw.rows * s->h);
    if (!rw.data || !rw.rows) goto out;
    for (int y = 0; y < s->h; y++) {
        png_bytep row = rw.rows[y] = rw.data + rowbytes * y;
        for (int i = 0; i < s->w * ch; i++) {
            unsigned v = s->samples[(size_t)y * s->w * ch + i];
            if (s->depth == 16) {
                row[2 * i] = (png_byte)(v >> 8);
                row[2 * i + 1] = (png_byte)v;
            } else if (s->depth == 8) {
                row[i] = (png_byte)v;
            } else {
                int per = 8 / s->depth, shift = 8 - s->depth * (i % per + 1);
                row[i / per] |= (png_byte)(v << shift);
            }
        }
    }
    rw.fp = fopen(path, "wb");
    if (!rw.fp) goto out;
    rw.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, raw_error, NULL);
    if (!rw.png) goto out;
    rw.info = png_create_info_struct(rw.png);
    if (!rw.info) goto out;
    rc = raw_write_body(&rw, s);
out:
    if (rw.png) png_destroy_write_struct(&rw.png, rw.info ? &rw.info : NULL);
    if (rw.fp && fclose(rw.fp) != 0) rc = -1;
    free(rw.rows);
    free(rw.data);
    return rc;
}

/* The gray value image.h promises for pixel i of spec s, in double. */
static double expected_gray(const spec *s, size_t i)
{
    int ch = channels_of(s->ctype);
    const uint16_t *p = s->samples + i * ch;
    double maxv = (double)((1u << s->depth) - 1);
    double r, g, b, a = 1.0;
    switch (s->ctype) {
    case PNG_COLOR_TYPE_PALETTE:
        r = s->palette[p[0]].red / 255.0;
        g = s->palette[p[0]].green / 255.0;
        b = s->palette[p[0]].blue / 255.0;
        if (s->trans_alpha && p[0] < s->ntrans) a = s->trans_alpha[p[0]] / 255.0;
        break;
    case PNG_COLOR_TYPE_GRAY:
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        r = g = b = p[0] / maxv;
        if (ch == 2) a = p[1] / maxv;
        if (s->has_trans_color && p[0] == s->trans_color.gray) a = 0.0;
        break;
    default:
        r = p[0] / maxv;
        g = p[1] / maxv;
        b = p[2] / maxv;
        if (ch == 4) a = p[3] / maxv;
        if (s->has_trans_color && p[0] == s->trans_color.red && p[1] == s->trans_color.green &&
            p[2] == s->trans_color.blue)
            a = 0.0;
        break;
    }
    double y = (s->ctype & PNG_COLOR_MASK_COLOR) ? 0.299 * r + 0.587 * g + 0.114 * b : g;
    return y * a;
}

/* The exact float a plain gray sample must read as: libpng expands 1/2/4 bits to 8 by
 * replication (v * 255 / max), then v8 / 255; 16 bits: v / 65535. */
static float exact_gray(unsigned v, int depth)
{
    if (depth == 16) return (float)v / 65535.0f;
    return (float)(v * (255u / ((1u << depth) - 1))) / 255.0f;
}

static const char *ctype_name(int ct)
{
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY: return "gray";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "gray+alpha";
    case PNG_COLOR_TYPE_RGB: return "rgb";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "rgba";
    default: return "palette";
    }
}

typedef struct fmt {
    int ctype, depth, interlace;
    int trns; /* palette: tRNS alpha table; gray/rgb: tRNS colour key */
} fmt;

/* The float dc_image_read must give for channel k (0..2, or 3 = alpha) of pixel i of spec s
 * "as stored"; -1 when the image has no such channel. */
static float expected_stored(const spec *s, size_t i, int k)
{
    int ch = channels_of(s->ctype);
    const uint16_t *p = s->samples + i * ch;
    float maxv = (float)((1u << s->depth) - 1);
    if (s->ctype == PNG_COLOR_TYPE_PALETTE) {
        const png_color *e = &s->palette[p[0]];
        if (k < 3) return (float)(k == 0 ? e->red : k == 1 ? e->green : e->blue) / 255.0f;
        if (!s->trans_alpha) return -1.0f;
        return (float)(p[0] < s->ntrans ? s->trans_alpha[p[0]] : 255) / 255.0f;
    }
    int colour = (s->ctype & PNG_COLOR_MASK_COLOR) != 0, nc = colour ? 3 : 1;
    if (k < 3) {
        if (k >= nc) return -1.0f;
        return colour || s->depth == 16 ? (float)p[k] / maxv : exact_gray(p[k], s->depth);
    }
    if (s->ctype & PNG_COLOR_MASK_ALPHA) return (float)p[nc] / maxv;
    if (!s->has_trans_color) return -1.0f;
    int keyed = colour ? p[0] == s->trans_color.red && p[1] == s->trans_color.green && p[2] == s->trans_color.blue
                       : p[0] == s->trans_color.gray;
    return keyed ? 0.0f : 1.0f;
}

/* dc_image_read as stored (exact planes and alpha), as luma and as RGB, and dc_image_probe. */
static void check_read_stored(const spec *s, const char *path, const char *name)
{
    size_t n = (size_t)s->w * s->h;
    int colour = (s->ctype & PNG_COLOR_MASK_COLOR) != 0, nc = colour ? 3 : 1;
    int has_alpha = expected_stored(s, 0, 3) >= 0.0f;
    dc_image_info info;
    CHECK_OK(dc_image_probe(path, &info));
    CHECK(info.w == s->w && info.h == s->h && info.c == nc && info.has_alpha == has_alpha &&
              info.bit_depth == (s->depth == 16 ? 16 : 8) && info.format == DC_IMAGE_PNG,
          "%s: probe %dx%d c%d alpha %d depth %d format %d", name, info.w, info.h, info.c, info.has_alpha,
          info.bit_depth, (int)info.format);
    for (int want = 0; want <= 3; want += want == 0 ? 1 : 2) {
        dc_image img;
        dc_status st = dc_image_read(path, want, &img);
        CHECK(st == DC_OK, "%s want_c %d: %s", name, want, dc_error_detail());
        if (st != DC_OK) continue;
        int c = want ? want : nc;
        CHECK(img.w == s->w && img.h == s->h && img.c == c && (img.alpha != NULL) == has_alpha &&
                  img.bit_depth == (s->depth == 16 ? 16 : 8),
              "%s want_c %d: %dx%d c%d alpha %p", name, want, img.w, img.h, img.c, (void *)img.alpha);
        int bad = 0;
        for (size_t i = 0; i < n && img.c == c; i++) {
            float rgb[3];
            for (int k = 0; k < 3; k++) rgb[k] = expected_stored(s, i, k < nc ? k : 0);
            for (int k = 0; k < c; k++) {
                float want_v = c == 1 && nc == 3 ? dc_luma601(rgb[0], rgb[1], rgb[2]) : rgb[k];
                bad += img.px[(size_t)k * n + i] != want_v;
            }
            if (c == 1 && nc == 3) { /* the luma itself, against the formula in double */
                double y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
                bad += fabs(img.px[i] - y) > 1e-6;
            }
            if (has_alpha && img.alpha) bad += img.alpha[i] != expected_stored(s, i, 3);
        }
        CHECK(bad == 0, "%s want_c %d: %d values differ from the stored samples", name, want, bad);
        dc_image_free(&img);
    }
}

static void test_read_format(const fmt *f, int w, int h)
{
    int ch = channels_of(f->ctype);
    size_t n = (size_t)w * h;
    uint16_t *samples = malloc(n * ch * sizeof *samples);
    png_color palette[256];
    png_byte trans[256];
    unsigned maxv = (1u << f->depth) - 1;
    spec s = {.w = w, .h = h, .ctype = f->ctype, .depth = f->depth, .interlace = f->interlace,
              .samples = samples};
    if (f->ctype == PNG_COLOR_TYPE_PALETTE) {
        s.npalette = (int)maxv + 1;
        for (int i = 0; i < s.npalette; i++) {
            palette[i].red = (png_byte)test_rand_u64(&rng);
            palette[i].green = (png_byte)test_rand_u64(&rng);
            palette[i].blue = (png_byte)test_rand_u64(&rng);
            trans[i] = (png_byte)test_rand_u64(&rng);
        }
        trans[0] = 0; /* fully transparent and fully opaque entries are both present */
        if (s.npalette > 1) trans[1] = 255;
        s.palette = palette;
        if (f->trns) {
            s.trans_alpha = trans;
            s.ntrans = s.npalette > 2 ? s.npalette - 1 : s.npalette; /* last entry implicitly opaque */
        }
    }
    for (size_t i = 0; i < n * ch; i++) samples[i] = (uint16_t)(test_rand_u64(&rng) & maxv);
    if (f->trns && f->ctype != PNG_COLOR_TYPE_PALETTE) {
        /* Colour key: the first pixel's colour, so at least one pixel is transparent. */
        s.has_trans_color = 1;
        s.trans_color.gray = samples[0];
        s.trans_color.red = samples[0];
        if (ch >= 3) {
            s.trans_color.green = samples[1];
            s.trans_color.blue = samples[2];
        }
    }

    char name[128];
    snprintf(name, sizeof name, "fmt-%s%d%s%s-%dx%d.png", ctype_name(f->ctype), f->depth,
             f->trns ? "-trns" : "", f->interlace ? "-adam7" : "", w, h);
    const char *path = tpath(name);
    int wrc = write_raw_png(path, &s);
    CHECK(wrc == 0, "writing test file %s", path);
    if (wrc != 0) {
        free(samples);
        return;
    }

    dc_image img;
    dc_status st = dc_png_read(path, &img);
    CHECK(st == DC_OK, "%s: %s", dc_strerror(st), dc_error_detail());
    if (st == DC_OK) {
        CHECK(img.w == w && img.h == h, "%s: size %dx%d, want %dx%d", name, img.w, img.h, w, h);
        int want_depth = f->depth == 16 ? 16 : 8;
        CHECK(img.bit_depth == want_depth, "%s: bit_depth %d, want %d", name, img.bit_depth,
              want_depth);
        int plain_gray = f->ctype == PNG_COLOR_TYPE_GRAY && !f->trns;
        int bad = 0;
        size_t first_bad = 0;
        double worst = 0.0;
        for (size_t i = 0; i < n; i++) {
            double want = plain_gray ? (double)exact_gray(samples[i], f->depth) : expected_gray(&s, i);
            double err = fabs((double)img.px[i] - want);
            if (plain_gray ? img.px[i] != (float)want : err > 1.0 / 255.0) {
                if (!bad++) first_bad = i;
            }
            if (err > worst) worst = err;
        }
        CHECK(bad == 0, "%s: %d of %zu pixels wrong, first at %zu: got %.6f want %.6f", name, bad, n,
              first_bad, (double)img.px[first_bad],
              plain_gray ? (double)exact_gray(samples[first_bad], f->depth)
                         : expected_gray(&s, first_bad));
        /* The reference above is computed the same way in double: far tighter than 1/255. */
        CHECK(worst < 1e-5, "%s: worst error %g", name, worst);
        dc_image_free(&img);
    }
    check_read_stored(&s, path, name);
    free(samples);
}

static void test_read_formats(void)
{
    static const fmt fmts[] = {
        {PNG_COLOR_TYPE_GRAY, 1, 0, 0},        {PNG_COLOR_TYPE_GRAY, 2, 0, 0},
        {PNG_COLOR_TYPE_GRAY, 4, 0, 0},        {PNG_COLOR_TYPE_GRAY, 8, 0, 0},
        {PNG_COLOR_TYPE_GRAY, 16, 0, 0},       {PNG_COLOR_TYPE_GRAY, 8, 0, 1},
        {PNG_COLOR_TYPE_GRAY, 2, 0, 1},        {PNG_COLOR_TYPE_GRAY, 16, 0, 1},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0},  {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0},
        {PNG_COLOR_TYPE_RGB, 8, 0, 0},         {PNG_COLOR_TYPE_RGB, 16, 0, 0},
        {PNG_COLOR_TYPE_RGB, 8, 0, 1},         {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 0},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0},  {PNG_COLOR_TYPE_PALETTE, 1, 0, 0},
        {PNG_COLOR_TYPE_PALETTE, 2, 0, 1},     {PNG_COLOR_TYPE_PALETTE, 4, 0, 0},
        {PNG_COLOR_TYPE_PALETTE, 8, 0, 0},     {PNG_COLOR_TYPE_PALETTE, 8, 0, 1},
        /* Adam7 */
        {PNG_COLOR_TYPE_GRAY, 1, 1, 0},        {PNG_COLOR_TYPE_GRAY, 8, 1, 0},
        {PNG_COLOR_TYPE_GRAY, 16, 1, 0},       {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 1, 0},
        {PNG_COLOR_TYPE_RGB, 8, 1, 0},         {PNG_COLOR_TYPE_RGB_ALPHA, 16, 1, 0},
        {PNG_COLOR_TYPE_PALETTE, 4, 1, 1},     {PNG_COLOR_TYPE_PALETTE, 8, 1, 0},
    };
    static const int sizes[][2] = {{1, 1}, {5, 3}, {1000, 7}, {3, 5}, {33, 17}};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            test_read_format(&fmts[i], sizes[k][0], sizes[k][1]);
}

/* A palette index beyond the palette is refused (libpng would expand it to black), also when
 * interlaced and at 4 bits; the largest valid index still decodes. */
static void test_palette_range(void)
{
    static const png_color pal[3] = {{0, 0, 0}, {255, 255, 255}, {10, 200, 30}};
    static const uint16_t good[6] = {0, 1, 2, 2, 1, 0}, bad[6] = {0, 1, 2, 3, 1, 0};
    for (int interlace = 0; interlace < 2; interlace++)
        for (int depth = 4; depth <= 8; depth += 4) {
            spec sp = {.w = 3, .h = 2, .ctype = PNG_COLOR_TYPE_PALETTE, .depth = depth, .interlace = interlace,
                       .samples = good, .palette = pal, .npalette = 3};
            const char *p = tpath("pal-good.png");
            CHECK(write_raw_png(p, &sp) == 0, "write %s", p);
            dc_image img;
            CHECK_OK(dc_png_read(p, &img));
            if (img.px) {
                double want = 0.299 * 10 / 255 + 0.587 * 200 / 255 + 0.114 * 30 / 255;
                CHECK(fabs(img.px[2] - want) < 1e-6 && img.px[1] == 1.0f, "palette decode %g", img.px[2]);
            }
            dc_image_free(&img);
            sp.samples = bad;
            p = tpath("pal-bad.png");
            CHECK(write_raw_png(p, &sp) == 0, "write %s", p);
            CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
            CHECK(strstr(dc_error_detail(), "palette index 3") != NULL, "detail: %s", dc_error_detail());
            CHECK(img.px == NULL, "no image on failure");
        }
}

/* Anything but a regular file is refused: as input without blocking (a FIFO with no writer),
 * as output without being replaced (directory, FIFO, device node, dangling symlink); a symlink
 * to a regular file has its target replaced and stays a symlink. */
static void test_special_files(void)
{
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/special", tmpdir);
    mkdir_p(dir);
    char fifo[1200], link[1200], target[1200], dangling[1200];
    snprintf(fifo, sizeof fifo, "%s/fifo.png", dir);
    snprintf(link, sizeof link, "%s/link.png", dir);
    snprintf(target, sizeof target, "%s/target.png", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling.png", dir);
    CHECK(mkfifo(fifo, 0644) == 0, "mkfifo: %s", strerror(errno));
    dc_image img;
    CHECK_REFUSED(dc_png_read(fifo, &img), DC_ERR_IO, fifo);
    CHECK(strstr(dc_error_detail(), "FIFO") != NULL, "detail: %s", dc_error_detail());
    CHECK_REFUSED(dc_png_read(dir, &img), DC_ERR_IO, "directory");

    CHECK_OK(dc_image_alloc(&img, 3, 2));
    if (!img.px) return;
    CHECK_REFUSED(dc_png_write(fifo, &img, 8), DC_ERR_IO, fifo);
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "FIFO replaced");
    CHECK_REFUSED(dc_png_write("/dev/null", &img, 8), DC_ERR_IO, "character device");
    CHECK(lstat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null replaced");
    CHECK_REFUSED(dc_png_write(dir, &img, 8), DC_ERR_IO, "directory");

    CHECK(symlink("target.png", link) == 0, "symlink: %s", strerror(errno));
    CHECK(symlink("nowhere.png", dangling) == 0, "symlink: %s", strerror(errno));
    CHECK_REFUSED(dc_png_write(dangling, &img, 8), DC_ERR_IO, dangling);
    CHECK_REFUSED(dc_png_write(link, &img, 8), DC_ERR_IO, link); /* dangling until target exists */
    CHECK_OK(dc_png_write(target, &img, 8));
    img.px[0] = 1.0f;
    CHECK_OK(dc_png_write(link, &img, 8));
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the symlink itself was replaced");
    dc_image back;
    CHECK_OK(dc_png_read(target, &back));
    CHECK(back.px && back.px[0] == 1.0f, "the link's target holds the new image");
    dc_image_free(&back);
    CHECK(count_temp_files(dir) == 0, "temp files left in %s", dir);
    dc_image_free(&img);
}

/* ---- our writer ----------------------------------------------------------------------------- */

/* Read a PNG with libpng directly and report its header. */
static int probe_png(const char *path, png_uint_32 *w, png_uint_32 *h, int *depth, int *ctype)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, raw_error, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile int rc = -1;
    if (png && info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_read_info(png, info);
        png_get_IHDR(png, info, w, h, depth, ctype, NULL, NULL, NULL);
        rc = 0;
    }
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    fclose(f);
    return rc;
}

static void test_round_trips(void)
{
    static const int sizes[][2] = {{1, 1}, {5, 3}, {1000, 7}, {28, 28}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        dc_image img;
        CHECK_OK(dc_image_alloc(&img, w, h));
        if (!img.px) continue;
        uint16_t *q = malloc(sizeof *q * w * h);
        for (int depth = 8; depth <= 16; depth += 8) {
            unsigned maxv = depth == 16 ? 65535u : 255u;
            for (int i = 0; i < w * h; i++) {
                q[i] = (uint16_t)(test_rand_u64(&rng) % (maxv + 1));
                img.px[i] = (float)q[i] / (float)maxv;
            }
            if (w * h > 2) {
                q[0] = 0, img.px[0] = 0.0f;
                q[1] = (uint16_t)maxv, img.px[1] = 1.0f;
            }
            char name[64];
            snprintf(name, sizeof name, "rt%d-%dx%d.png", depth, w, h);
            const char *path = tpath(name);
            CHECK_OK(dc_png_write(path, &img, depth));
            png_uint_32 pw = 0, ph = 0;
            int pd = 0, pc = -1;
            CHECK(probe_png(path, &pw, &ph, &pd, &pc) == 0 && pw == (png_uint_32)w &&
                      ph == (png_uint_32)h && pd == depth && pc == PNG_COLOR_TYPE_GRAY,
                  "%s: header %ux%u depth %d type %d", name, (unsigned)pw, (unsigned)ph, pd, pc);
            dc_image back;
            CHECK_OK(dc_png_read(path, &back));
            if (!back.px) continue;
            CHECK(back.w == w && back.h == h && back.bit_depth == depth, "%s: %dx%d depth %d", name,
                  back.w, back.h, back.bit_depth);
            int bad = 0;
            for (int i = 0; i < w * h; i++)
                if ((unsigned)lrintf(back.px[i] * (float)maxv) != q[i] || back.px[i] != img.px[i])
                    bad++;
            CHECK(bad == 0, "%s: %d pixels changed in the round trip", name, bad);
            dc_image_free(&back);
        }
        free(q);
        dc_image_free(&img);
    }

    /* 16-bit precision is really kept: neighbouring 16-bit levels stay distinct. */
    dc_image img;
    CHECK_OK(dc_image_alloc(&img, 256, 1));
    if (img.px) {
        for (int i = 0; i < 256; i++) img.px[i] = (float)(30000 + i) / 65535.0f;
        const char *path = tpath("rt16-levels.png");
        CHECK_OK(dc_png_write(path, &img, 16));
        dc_image back;
        CHECK_OK(dc_png_read(path, &back));
        if (back.px) {
            int distinct = 1;
            for (int i = 1; i < 256; i++) distinct &= back.px[i] > back.px[i - 1];
            CHECK(distinct, "16-bit levels collapsed");
            CHECK(back.bit_depth == 16, "bit depth %d", back.bit_depth);
        }
        dc_image_free(&back);
        /* Out-of-range values are clamped, NaN is 0, 0.5 rounds to nearest. */
        img.px[0] = -1.0f, img.px[1] = 2.0f, img.px[2] = NAN, img.px[3] = 0.5f, img.px[4] = INFINITY;
        CHECK_OK(dc_png_write(path, &img, 8));
        CHECK_OK(dc_png_read(path, &back));
        if (back.px) {
            CHECK(back.px[0] == 0.0f && back.px[1] == 1.0f && back.px[2] == 0.0f &&
                      back.px[3] == 128.0f / 255.0f && back.px[4] == 1.0f,
                  "clamping: %g %g %g %g %g", back.px[0], back.px[1], back.px[2], back.px[3],
                  back.px[4]);
            CHECK(back.bit_depth == 8, "bit depth %d", back.bit_depth);
        }
        dc_image_free(&back);
    }
    dc_image_free(&img);
    dc_image_free(&img); /* twice is harmless */

    /* dc_png_write_gray8 */
    uint8_t px[7 * 5];
    for (int i = 0; i < 35; i++) px[i] = (uint8_t)(i * 7);
    const char *path = tpath("gray8.png");
    CHECK_OK(dc_png_write_gray8(path, px, 7, 5));
    dc_image back;
    CHECK_OK(dc_png_read(path, &back));
    if (back.px) {
        int bad = 0;
        for (int i = 0; i < 35; i++) bad += back.px[i] != (float)px[i] / 255.0f;
        CHECK(back.w == 7 && back.h == 5 && bad == 0, "gray8 round trip: %dx%d, %d bad", back.w,
              back.h, bad);
    }
    dc_image_free(&back);

    /* Bad arguments. */
    dc_image none = {0};
    CHECK(dc_image_alloc(&none, 0, 5) == DC_ERR_INVALID_ARG && none.px == NULL, "alloc 0x5");
    CHECK(dc_image_alloc(&none, 1 << 15, 1 << 15) == DC_ERR_INVALID_ARG, "alloc 2^30 pixels");
    CHECK(dc_png_write_gray8(path, px, 0, 5) == DC_ERR_INVALID_ARG, "write 0x5");
    CHECK(dc_png_read(tpath("does-not-exist.png"), &back) == DC_ERR_IO && back.px == NULL,
          "missing file: %s", dc_error_detail());
    CHECK(strstr(dc_error_detail(), "does-not-exist.png") != NULL, "%s", dc_error_detail());
}

/* ---- colour PNG writing and JPEG ------------------------------------------------------------ */

/* Gray, gray+alpha, RGB and RGBA at 8 and 16 bits through dc_image_write and back, exact. */
static void test_colour_round_trips(void)
{
    const int w = 13, h = 7;
    size_t n = (size_t)w * h;
    for (int c = 1; c <= 3; c += 2)
        for (int with_alpha = 0; with_alpha < 2; with_alpha++)
            for (int depth = 8; depth <= 16; depth += 8) {
                unsigned maxv = depth == 16 ? 65535u : 255u;
                dc_image img;
                CHECK_OK(dc_image_alloc_c(&img, w, h, c));
                if (!img.px) return;
                for (size_t i = 0; i < n * c; i++)
                    img.px[i] = (float)(test_rand_u64(&rng) % (maxv + 1)) / (float)maxv;
                if (with_alpha) {
                    img.alpha = malloc(n * sizeof *img.alpha);
                    for (size_t i = 0; i < n; i++)
                        img.alpha[i] = (float)(test_rand_u64(&rng) % (maxv + 1)) / (float)maxv;
                }
                char name[64];
                snprintf(name, sizeof name, "crt-c%d-a%d-%d.png", c, with_alpha, depth);
                const char *path = tpath(name);
                CHECK_OK(dc_image_write(path, &img, depth, 90));
                png_uint_32 pw = 0, ph = 0;
                int pd = 0, pc = -1;
                int want_ct = (c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY) | (with_alpha ? PNG_COLOR_MASK_ALPHA : 0);
                CHECK(probe_png(path, &pw, &ph, &pd, &pc) == 0 && pd == depth && pc == want_ct,
                      "%s: depth %d type %d, want %d", name, pd, pc, want_ct);
                dc_image back;
                CHECK_OK(dc_image_read(path, 0, &back));
                if (back.px) {
                    int bad = back.c != c || back.bit_depth != depth || (back.alpha != NULL) != with_alpha;
                    for (size_t i = 0; !bad && i < n * c; i++) bad += back.px[i] != img.px[i];
                    for (size_t i = 0; !bad && with_alpha && i < n; i++) bad += back.alpha[i] != img.alpha[i];
                    CHECK(bad == 0, "%s: the round trip changed values (or c %d depth %d)", name, back.c,
                          back.bit_depth);
                }
                dc_image_free(&back);
                dc_image_free(&img);
            }
}

typedef struct raw_jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
} raw_jpeg_err;

static void raw_jpeg_exit(j_common_ptr ci)
{
    char msg[JMSG_LENGTH_MAX];
    ci->err->format_message(ci, msg);
    fprintf(stderr, "test libjpeg: %s\n", msg);
    longjmp(((raw_jpeg_err *)ci->err)->jump, 1);
}

/* Write comps-component samples (interleaved) with libjpeg directly. */
static int write_raw_jpeg(const char *path, int w, int h, int comps, J_COLOR_SPACE cs, const unsigned char *data,
                          int quality)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    static struct jpeg_compress_struct ci; /* static: not clobbered by the longjmp */
    static raw_jpeg_err err;
    ci.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = raw_jpeg_exit;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&ci);
        fclose(f);
        return -1;
    }
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comps;
    ci.in_color_space = cs;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(data + (size_t)ci.next_scanline * w * comps);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return fclose(f) == 0 ? 0 : -1;
}

/* Decode with libjpeg directly (gray or RGB out), interleaved bytes; NULL on failure. */
static unsigned char *read_raw_jpeg(const char *path, int *comps)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static struct jpeg_decompress_struct ci;
    static raw_jpeg_err err;
    static unsigned char *data;
    data = NULL;
    ci.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = raw_jpeg_exit;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&ci);
        fclose(f);
        free(data);
        return NULL;
    }
    jpeg_create_decompress(&ci);
    jpeg_stdio_src(&ci, f);
    jpeg_read_header(&ci, TRUE);
    ci.out_color_space = ci.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&ci);
    *comps = ci.output_components;
    data = malloc((size_t)ci.output_width * ci.output_height * ci.output_components);
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = data + (size_t)ci.output_scanline * ci.output_width * ci.output_components;
        jpeg_read_scanlines(&ci, &row, 1);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    return data;
}

/* A smooth test picture: channel k varies along x, y or both, so a swapped or mis-strided
 * plane shows. */
static unsigned char smooth_sample(int x, int y, int k, int w, int h)
{
    double v = k == 0 ? (double)x / (w - 1) : k == 1 ? (double)y / (h - 1) : 0.5 + 0.4 * sin(0.2 * (x + y));
    return (unsigned char)lrint(40 + 170 * v);
}

/* Our decode must equal libjpeg's own decode of the file exactly (v / 255, planar), and stay
 * within JPEG error of the source picture. */
static void check_jpeg_file(const char *path, int w, int h, int comps, const unsigned char *src)
{
    int rc = 0;
    unsigned char *ref = read_raw_jpeg(path, &rc);
    CHECK(ref && rc == comps, "libjpeg decode of %s", path);
    dc_image_info info;
    CHECK_OK(dc_image_probe(path, &info));
    CHECK(info.w == w && info.h == h && info.c == comps && info.bit_depth == 8 && !info.has_alpha &&
              info.format == DC_IMAGE_JPEG,
          "%s: probe %dx%d c%d depth %d", path, info.w, info.h, info.c, info.bit_depth);
    size_t n = (size_t)w * h;
    for (int want = 0; ref && want <= 3; want += want == 0 ? 1 : 2) {
        dc_image img;
        CHECK_OK(dc_image_read(path, want, &img));
        if (!img.px) continue;
        int c = want ? want : comps;
        CHECK(img.w == w && img.h == h && img.c == c && !img.alpha && img.bit_depth == 8, "%s: %dx%d c%d", path,
              img.w, img.h, img.c);
        int bad = 0;
        double worst = 0, sum = 0;
        for (size_t i = 0; img.c == c && i < n; i++) {
            float rgb[3], srgb[3];
            for (int k = 0; k < 3; k++) {
                int kk = k < comps ? k : 0;
                rgb[k] = (float)ref[i * comps + kk] / 255.0f;
                srgb[k] = (float)src[i * comps + kk] / 255.0f;
            }
            for (int k = 0; k < c; k++) {
                int luma = c == 1 && comps == 3;
                float got = img.px[(size_t)k * n + i];
                bad += got != (luma ? dc_luma601(rgb[0], rgb[1], rgb[2]) : rgb[k]);
                double e = fabs(got - (luma ? dc_luma601(srgb[0], srgb[1], srgb[2]) : srgb[k]));
                sum += e;
                if (e > worst) worst = e;
            }
        }
        CHECK(bad == 0, "%s want_c %d: %d values differ from libjpeg's decode", path, want, bad);
        /* Quality 95 on a smooth picture: a few levels at most; colour planes also carry the
         * 2x2 chroma subsampling (measured worst 13/255, mean 1.3/255). */
        CHECK(worst <= (c == 3 && comps == 3 ? 16.0 : 10.0) / 255 && sum / (n * c) <= 2.0 / 255, "%s want_c %d: JPEG error worst %g mean %g", path,
              want, worst, sum / (n * c));
        dc_image_free(&img);
    }
    free(ref);
}

static void test_jpeg(void)
{
    const int w = 37, h = 23; /* not multiples of the 8/16-pixel blocks */
    unsigned char src[37 * 23 * 3], gray[37 * 23];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            for (int k = 0; k < 3; k++) src[((size_t)y * w + x) * 3 + k] = smooth_sample(x, y, k, w, h);
            gray[(size_t)y * w + x] = smooth_sample(x, y, 2, w, h);
        }
    const char *pg = tpath("gray.jpg"), *pc = tpath("colour.jpeg");
    CHECK(write_raw_jpeg(pg, w, h, 1, JCS_GRAYSCALE, gray, 95) == 0, "writing %s", pg);
    CHECK(write_raw_jpeg(pc, w, h, 3, JCS_RGB, src, 95) == 0, "writing %s", pc);
    check_jpeg_file(pg, w, h, 1, gray);
    check_jpeg_file(pc, w, h, 3, src);

    /* A JPEG named .png is still a JPEG: the signature decides. */
    const char *misnamed = tpath("really-a-jpeg.png");
    size_t n = 0;
    unsigned char *b = read_all(pc, &n);
    CHECK(b && write_all(misnamed, b, n) == 0, "copy %s", misnamed);
    check_jpeg_file(misnamed, w, h, 3, src);
    dc_image img;
    CHECK_REFUSED(dc_png_read(misnamed, &img), DC_ERR_FORMAT, misnamed);

    /* Truncated (at several points, header included) and corrupt JPEGs are refused, naming the
     * file; a marker inside the entropy-coded data is corrupt data, not a short image. */
    static const double cuts[] = {0.05, 0.3, 0.6, 0.95};
    for (size_t k = 0; b && k < sizeof cuts / sizeof cuts[0]; k++) {
        char name[64];
        snprintf(name, sizeof name, "truncated-%d.jpg", (int)(cuts[k] * 100));
        const char *p = tpath(name);
        write_all(p, b, (size_t)(n * cuts[k]));
        CHECK_REFUSED(dc_image_read(p, 0, &img), DC_ERR_FORMAT, p);
        CHECK(img.px == NULL, "no image on failure");
    }
    if (b && n > 400) {
        unsigned char *bad = malloc(n);
        memcpy(bad, b, n);
        bad[n - 100] = 0xff, bad[n - 99] = 0xd9; /* EOI in the middle of the scan */
        const char *p = tpath("early-eoi.jpg");
        write_all(p, bad, n);
        CHECK_REFUSED(dc_image_read(p, 3, &img), DC_ERR_FORMAT, p);
        memcpy(bad, b, n);
        bad[3] ^= 0x55; /* the first marker after SOI */
        p = tpath("bad-marker.jpg");
        write_all(p, bad, n);
        CHECK_REFUSED(dc_image_read(p, 0, &img), DC_ERR_FORMAT, p);
        dc_image_info info;
        CHECK_REFUSED(dc_image_probe(p, &info), DC_ERR_FORMAT, p);
        free(bad);
    }
    free(b);

    /* CMYK is refused clearly. */
    unsigned char cmyk[8 * 8 * 4];
    for (size_t i = 0; i < sizeof cmyk; i++) cmyk[i] = (unsigned char)(i * 3);
    const char *pk = tpath("cmyk.jpg");
    CHECK(write_raw_jpeg(pk, 8, 8, 4, JCS_CMYK, cmyk, 90) == 0, "writing %s", pk);
    CHECK_REFUSED(dc_image_read(pk, 0, &img), DC_ERR_UNSUPPORTED, pk);
    CHECK(strstr(dc_error_detail(), "CMYK"), "%s", dc_error_detail());

    /* Garbage and empty files. */
    const char *pj = tpath("garbage.jpg");
    write_all(pj, "GIF89a....", 10);
    CHECK_REFUSED(dc_image_read(pj, 0, &img), DC_ERR_FORMAT, pj);
    write_all(pj, "", 0);
    CHECK_REFUSED(dc_image_read(pj, 0, &img), DC_ERR_FORMAT, pj);

    /* Our JPEG writer: gray and colour back within JPEG error; refusals. */
    for (int c = 1; c <= 3; c += 2) {
        CHECK_OK(dc_image_alloc_c(&img, w, h, c));
        if (!img.px) return;
        for (int k = 0; k < c; k++)
            for (int i = 0; i < w * h; i++)
                img.px[(size_t)k * w * h + i] = (float)(c == 1 ? gray[i] : src[(size_t)i * 3 + k]) / 255.0f;
        const char *out = tpath(c == 1 ? "ours-gray.JPG" : "ours-rgb.jpeg");
        CHECK_OK(dc_image_write(out, &img, 8, 95));
        check_jpeg_file(out, w, h, c, c == 1 ? gray : src);
        CHECK_REFUSED(dc_image_write(out, &img, 8, 0), DC_ERR_INVALID_ARG, out);
        CHECK_REFUSED(dc_image_write(out, &img, 8, 101), DC_ERR_INVALID_ARG, out);
        CHECK_REFUSED(dc_image_write(out, &img, 16, 90), DC_ERR_INVALID_ARG, out);
        CHECK_REFUSED(dc_image_write(tpath("x.tiff"), &img, 8, 90), DC_ERR_INVALID_ARG, "x.tiff");
        img.alpha = calloc((size_t)w * h, sizeof *img.alpha);
        CHECK_REFUSED(dc_image_write(out, &img, 8, 90), DC_ERR_INVALID_ARG, out);
        CHECK(strstr(dc_error_detail(), "alpha"), "%s", dc_error_detail());
        dc_image_free(&img);
    }
    CHECK(count_temp_files(tmpdir) == 0, "temp files left in %s", tmpdir);
}

/* A truncated PNG through dc_image_read and dc_image_probe. */
static void test_truncated_png_any(void)
{
    static const uint16_t samples[4 * 4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    spec sp = {.w = 4, .h = 4, .ctype = PNG_COLOR_TYPE_RGB, .depth = 8, .samples = samples};
    const char *p = tpath("rgb-trunc.png");
    CHECK(write_raw_png(p, &sp) == 0, "write %s", p);
    size_t n = 0;
    unsigned char *b = read_all(p, &n);
    if (!b) return;
    dc_image img;
    dc_image_info info;
    write_all(p, b, n - 20); /* inside IDAT/IEND */
    CHECK_REFUSED(dc_image_read(p, 0, &img), DC_ERR_FORMAT, p);
    CHECK(strstr(dc_error_detail(), "truncated") || strstr(dc_error_detail(), "corrupt"), "%s", dc_error_detail());
    write_all(p, b, 20); /* inside IHDR */
    CHECK_REFUSED(dc_image_probe(p, &info), DC_ERR_FORMAT, p);
    CHECK_REFUSED(dc_image_read(p, 1, &img), DC_ERR_FORMAT, p);
    CHECK(dc_image_read(p, 2, &img) == DC_ERR_INVALID_ARG, "want_c 2 refused");
    free(b);
}

/* ---- malformed files ------------------------------------------------------------------------ */

/* Offset of the first chunk of the given type in a PNG buffer, or 0. */
static size_t find_chunk(const unsigned char *b, size_t n, const char *type)
{
    size_t off = 8;
    while (off + 12 <= n) {
        size_t len = ((size_t)b[off] << 24) | ((size_t)b[off + 1] << 16) | ((size_t)b[off + 2] << 8) |
                     b[off + 3];
        if (memcmp(b + off + 4, type, 4) == 0) return off;
        off += 12 + len;
    }
    return 0;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* A PNG consisting of a valid IHDR declaring w x h (8-bit gray), a tiny IDAT and IEND. */
static size_t forge_header(unsigned char *b, uint32_t w, uint32_t h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    memcpy(b, sig, 8), n = 8;
    put32(b + n, 13), memcpy(b + n + 4, "IHDR", 4);
    put32(b + n + 8, w), put32(b + n + 12, h);
    b[n + 16] = 8, b[n + 17] = 0, b[n + 18] = 0, b[n + 19] = 0, b[n + 20] = 0;
    put32(b + n + 21, (uint32_t)crc32(0, b + n + 4, 17)), n += 25;
    /* Image data for one 1-pixel row: filter byte 0, pixel 0. */
    static const unsigned char row[2] = {0, 0};
    unsigned char z[64];
    uLongf zn = sizeof z;
    compress(z, &zn, row, sizeof row);
    put32(b + n, (uint32_t)zn), memcpy(b + n + 4, "IDAT", 4), memcpy(b + n + 8, z, zn);
    put32(b + n + 8 + zn, (uint32_t)crc32(0, b + n + 4, 4 + (uInt)zn)), n += 12 + zn;
    put32(b + n, 0), memcpy(b + n + 4, "IEND", 4), put32(b + n + 8, (uint32_t)crc32(0, b + n + 4, 4));
    return n + 12;
}

static void test_malformed(void)
{
    /* A valid reference file with a large IDAT and a tEXt chunk. */
    int w = 64, h = 48;
    uint16_t *samples = malloc(sizeof *samples * w * h);
    for (int i = 0; i < w * h; i++) samples[i] = (uint16_t)(test_rand_u64(&rng) & 255);
    spec s = {.w = w, .h = h, .ctype = PNG_COLOR_TYPE_GRAY, .depth = 8, .samples = samples,
              .with_text = 1};
    const char *good = tpath("good.png");
    CHECK(write_raw_png(good, &s) == 0, "writing %s", good);
    free(samples);
    size_t n = 0;
    unsigned char *b = read_all(good, &n);
    CHECK(b && n > 1000, "reading back %s", good);
    if (!b) return;
    dc_image img;
    CHECK_OK(dc_png_read(good, &img));
    dc_image_free(&img);

    size_t idat = find_chunk(b, n, "IDAT"), text = find_chunk(b, n, "tEXt");
    size_t ihdr = find_chunk(b, n, "IHDR");
    CHECK(idat && text && ihdr, "chunks IDAT %zu tEXt %zu IHDR %zu", idat, text, ihdr);

    const char *p = tpath("truncated-half.png");
    write_all(p, b, n / 2);
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
    CHECK(img.px == NULL && img.w == 0, "output left empty on failure");

    p = tpath("truncated-no-iend.png");
    write_all(p, b, n - 12);
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    p = tpath("truncated-sig.png");
    write_all(p, b, 5);
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    p = tpath("truncated-header.png");
    write_all(p, b, 20);
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    if (idat) {
        /* Flip one byte in the middle of the IDAT data: the CRC no longer matches. */
        unsigned char *c = malloc(n);
        memcpy(c, b, n);
        size_t len = ((size_t)c[idat] << 24) | ((size_t)c[idat + 1] << 16) |
                     ((size_t)c[idat + 2] << 8) | c[idat + 3];
        c[idat + 8 + len / 2] ^= 0x01;
        p = tpath("bad-idat-crc.png");
        write_all(p, c, n);
        CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
        /* Same in the last byte of the data, where zlib may not notice but the CRC does. */
        memcpy(c, b, n);
        c[idat + 8 + len - 1] ^= 0x80;
        p = tpath("bad-idat-crc-end.png");
        write_all(p, c, n);
        CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
        /* Flip a CRC byte itself. */
        memcpy(c, b, n);
        c[idat + 8 + len] ^= 0xff;
        p = tpath("bad-idat-crc-field.png");
        write_all(p, c, n);
        CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
        /* IHDR (critical) CRC error. */
        memcpy(c, b, n);
        c[ihdr + 8 + 12] ^= 0x04; /* interlace byte 0 -> 4 */
        p = tpath("bad-ihdr-crc.png");
        write_all(p, c, n);
        CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
        /* An ancillary chunk with a bad CRC is dropped quietly, the image still reads. */
        if (text) {
            memcpy(c, b, n);
            c[text + 10] ^= 0x20;
            p = tpath("bad-text-crc.png");
            write_all(p, c, n);
            CHECK_OK(dc_png_read(p, &img));
            CHECK(img.w == w && img.h == h, "ancillary CRC: %dx%d", img.w, img.h);
            dc_image_free(&img);
        }
        free(c);
    }
    free(b);

    p = tpath("text.png");
    const char *txt = "this is a text file, not an image\n";
    write_all(p, txt, strlen(txt));
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
    CHECK(strstr(dc_error_detail(), "not a PNG"), "%s", dc_error_detail());

    p = tpath("empty.png");
    write_all(p, "", 0);
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    unsigned char f[128];
    p = tpath("huge.png");
    write_all(p, f, forge_header(f, 100000, 100000));
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);
    CHECK(strstr(dc_error_detail(), "too large"), "%s", dc_error_detail());

    p = tpath("wide.png");
    write_all(p, f, forge_header(f, (1u << 20) + 1, 1));
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    /* Within the limits but far more data than 70 bytes can hold: refused before allocating. */
    p = tpath("big-tiny.png");
    write_all(p, f, forge_header(f, 10000, 10000));
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    p = tpath("zero.png");
    write_all(p, f, forge_header(f, 0, 5));
    CHECK_REFUSED(dc_png_read(p, &img), DC_ERR_FORMAT, p);

    /* The forged file itself is fine when small: 1x1 with a zero pixel. */
    p = tpath("forged-1x1.png");
    write_all(p, f, forge_header(f, 1, 1));
    CHECK_OK(dc_png_read(p, &img));
    CHECK(img.w == 1 && img.h == 1 && img.px && img.px[0] == 0.0f, "forged 1x1");
    dc_image_free(&img);
}

/* ---- atomic writes -------------------------------------------------------------------------- */

static void test_atomic_write(void)
{
    dc_image img;
    CHECK_OK(dc_image_alloc(&img, 9, 4));
    if (!img.px) return;
    for (int i = 0; i < 36; i++) img.px[i] = (float)i / 35.0f;

    char dir[1100];
    snprintf(dir, sizeof dir, "%s/atomic", tmpdir);
    mkdir_p(dir);
    char target[1200];
    snprintf(target, sizeof target, "%s/out.png", dir);
    CHECK_OK(dc_png_write(target, &img, 8));
    CHECK_OK(dc_png_write(target, &img, 16)); /* overwrite in place */
    CHECK(count_temp_files(dir) == 0, "temp files left in %s", dir);
    size_t n = 0;
    unsigned char *before = read_all(target, &n);
    CHECK(before != NULL, "target written");

    /* Invalid arguments never touch the target. */
    CHECK(dc_png_write(target, &img, 12) == DC_ERR_INVALID_ARG, "bit depth 12");
    dc_image empty = {0};
    CHECK(dc_png_write(target, &empty, 8) == DC_ERR_INVALID_ARG, "empty image");
    CHECK(before && file_equals(target, before, n), "target changed by a refused write");

    /* Missing directory. */
    char missing[1300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/out.png", dir);
    CHECK_REFUSED(dc_png_write(missing, &img, 8), DC_ERR_IO, missing);

    /* The target is a directory: the rename fails, the temp file is removed. */
    char isdir[1300];
    snprintf(isdir, sizeof isdir, "%s/adir.png", dir);
    mkdir(isdir, 0777);
    CHECK_REFUSED(dc_png_write(isdir, &img, 8), DC_ERR_IO, isdir);
    struct stat st;
    CHECK(stat(isdir, &st) == 0 && S_ISDIR(st.st_mode), "directory target disturbed");
    CHECK(count_temp_files(dir) == 0, "temp file left after a failed rename");

    /* Unwritable directory (root can write anywhere, so only when permissions bind). */
    CHECK(chmod(dir, 0555) == 0, "chmod %s: %s", dir, strerror(errno));
    if (access(dir, W_OK) != 0) {
        CHECK_REFUSED(dc_png_write(target, &img, 8), DC_ERR_IO, target);
        CHECK(before && file_equals(target, before, n), "target changed by a failed write");
        CHECK(count_temp_files(dir) == 0, "temp file left in a read-only dir");
    } else {
        fprintf(stderr, "note: running as root, read-only directory case skipped\n");
    }
    chmod(dir, 0755);
    free(before);
    dc_image_free(&img);
}

/* ---- grids ---------------------------------------------------------------------------------- */

static void test_grid(void)
{
    int w = -1, h = -1;
    dc_grid g = {.rows = 3, .cols = 4, .tile_w = 28, .tile_h = 28, .scale = 2, .sep = 2};
    dc_grid_size(&g, &w, &h);
    CHECK(w == 4 * 56 + 5 * 2 && h == 3 * 56 + 4 * 2, "grid size %dx%d", w, h);
    g = (dc_grid){.rows = 1, .cols = 1, .tile_w = 1, .tile_h = 1, .scale = 1, .sep = 0};
    dc_grid_size(&g, &w, &h);
    CHECK(w == 1 && h == 1, "1x1 grid %dx%d", w, h);
    static const dc_grid bad[] = {
        {0, 1, 1, 1, 1, 1}, {1, 0, 1, 1, 1, 1}, {1, 1, 0, 1, 1, 1}, {1, 1, 1, 0, 1, 1},
        {1, 1, 1, 1, 0, 1}, {1, 1, 1, 1, 1, -1}, {100000, 100000, 28, 28, 4, 2},
        {1, 1, 1 << 30, 1, 1 << 30, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_grid_size(&bad[i], &w, &h);
        CHECK(w == 0 && h == 0, "bad grid %zu gives %dx%d", i, w, h);
        uint8_t one = 0;
        const float *t[1] = {NULL};
        CHECK(dc_grid_render(&bad[i], t, &one) == DC_ERR_INVALID_ARG, "bad grid %zu renders", i);
    }

    /* Every pixel against an independent description of the layout. */
    static const int cases[][6] = {
        /* rows cols tile_w tile_h scale sep */
        {2, 3, 4, 3, 2, 1}, {1, 1, 5, 5, 1, 0}, {3, 2, 3, 4, 3, 2}, {2, 2, 28, 28, 1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        g = (dc_grid){cases[k][0], cases[k][1], cases[k][2], cases[k][3], cases[k][4], cases[k][5]};
        dc_grid_size(&g, &w, &h);
        int nt = g.rows * g.cols, tn = g.tile_w * g.tile_h;
        float *data = malloc(sizeof *data * nt * tn);
        const float **tiles = malloc(sizeof *tiles * nt);
        uint8_t *out = malloc((size_t)w * h);
        for (int i = 0; i < nt * tn; i++) data[i] = (float)test_uniform(&rng, -0.1, 1.1);
        for (int t = 0; t < nt; t++) tiles[t] = (t == 1) ? NULL : data + t * tn;
        CHECK_OK(dc_grid_render(&g, tiles, out));
        int bad_px = 0;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int cw = g.tile_w * g.scale + g.sep, chh = g.tile_h * g.scale + g.sep;
                int cx = (x - g.sep) % cw, cy = (y - g.sep) % chh;
                int c = (x - g.sep) / cw, r = (y - g.sep) / chh;
                int want;
                if (x < g.sep || y < g.sep || cx >= g.tile_w * g.scale || cy >= g.tile_h * g.scale) {
                    want = DC_GRID_SEP_GRAY;
                } else {
                    const float *t = tiles[r * g.cols + c];
                    float v = t ? t[(cy / g.scale) * g.tile_w + cx / g.scale] : 0.0f;
                    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                    want = (int)lrintf(v * 255.0f);
                }
                if (abs(out[(size_t)y * w + x] - want) > (want == DC_GRID_SEP_GRAY ? 0 : 1)) bad_px++;
            }
        }
        CHECK(bad_px == 0, "grid case %zu: %d pixels wrong", k, bad_px);
        /* Explicit spot checks: top-left tile's first pixel and the border. */
        int x0 = g.sep, y0 = g.sep;
        float v0 = data[0] < 0 ? 0 : data[0] > 1 ? 1 : data[0];
        CHECK(abs(out[(size_t)y0 * w + x0] - (int)lrintf(v0 * 255.0f)) <= 1, "tile (0,0) origin");
        if (g.sep) CHECK(out[0] == DC_GRID_SEP_GRAY && out[(size_t)h * w - 1] == DC_GRID_SEP_GRAY,
                         "border");
        if (k == 0) {
            /* Through the PNG writer and back. */
            const char *p = tpath("grid.png");
            CHECK_OK(dc_png_write_gray8(p, out, w, h));
            dc_image back;
            CHECK_OK(dc_png_read(p, &back));
            int diff = 0;
            for (int i = 0; back.px && i < w * h; i++) diff += back.px[i] != (float)out[i] / 255.0f;
            CHECK(back.w == w && back.h == h && diff == 0, "grid PNG round trip");
            dc_image_free(&back);
        }
        free(out);
        free(tiles);
        free(data);
    }
}

int main(void)
{
    rng = test_seed();
    setup_tmpdir();
    test_read_formats();
    test_round_trips();
    test_colour_round_trips();
    test_jpeg();
    test_truncated_png_any();
    test_malformed();
    test_atomic_write();
    test_palette_range();
    test_special_files();
    test_grid();
    if (!test_failed_) rm_tree(tmpdir);
    TEST_MAIN_END();
}
