/* Image folders and patch sampling (host only): every PNG type the test writes, 16-bit, nested
 * folders, corrupt and too-small files skipped and counted, --strict, an empty folder and the
 * memory bound refused; patches deterministic, inside their image, area-proportional (chi-square)
 * and covering the 8 flips/rotations; the validation split and centre crops. */
#include "daecl/image.h"
#include "daecl/imageset.h"
#include "daecl/patches.h"
#include "test.h"

#include <ftw.h>
#include <math.h>
#include <png.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[4096];

static const char *P(const char *name)
{
    static char buf[8][4200];
    static int slot;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* Value of channel ch at (x, y) in the test images: distinct per image, position and channel. */
static unsigned val(int img, int ch, int x, int y, unsigned max)
{
    return (unsigned)(img * 7919 + ch * 104729 + x * 31 + y * 17 + x * y) % (max + 1);
}

/* A PNG of colour type ctype (gray, gray+alpha, RGB, RGBA, palette) and depth 8 or 16. */
static void write_png(const char *path, int img, int w, int h, int ctype, int depth)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) { fprintf(stderr, "libpng write failed\n"); exit(2); }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    int chans = ctype == PNG_COLOR_TYPE_GRAY ? 1 : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
              : ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGBA ? 4 : 1;
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < 256; i++) pal[i] = (png_color){(png_byte)i, (png_byte)i, (png_byte)i}; /* gray ramp */
        png_set_PLTE(png, info, pal, 256);
    }
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png); /* rows below are host-order uint16 (little-endian host) */
    unsigned max = depth == 16 ? 65535u : 255u;
    size_t rowb = (size_t)w * chans * (depth / 8);
    unsigned char *row = malloc(rowb);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < chans; c++) {
                unsigned v = (chans == 2 || chans == 4) && c == chans - 1 ? max : val(img, c, x, y, max);
                if (depth == 16) ((uint16_t *)row)[x * chans + c] = (uint16_t)v;
                else row[x * chans + c] = (unsigned char)v;
            }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(f);
}

static void put(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) { perror(path); exit(2); }
    fclose(f);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

/* The usable image whose relative path is rel, or -1. */
static long find(const dc_imageset *s, const char *rel)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->scan.entries[s->entry[i]].rel, rel) == 0) return (long)i;
    return -1;
}

static unsigned at(const dc_imageset *s, long i, int c, int x, int y)
{
    size_t k = s->offset[i] + ((size_t)c * s->h[i] + y) * s->w[i] + x;
    return s->depth == 2 ? ((const uint16_t *)s->pixels)[k] : ((const uint8_t *)s->pixels)[k];
}

static void test_folder(void)
{
    mkdir(P("set"), 0755);
    mkdir(P("set/a"), 0755);
    mkdir(P("set/a/b"), 0755);
    mkdir(P("set/.hidden"), 0755);
    write_png(P("set/a/g8.png"), 1, 40, 34, PNG_COLOR_TYPE_GRAY, 8);
    write_png(P("set/a/b/g16.png"), 2, 36, 33, PNG_COLOR_TYPE_GRAY, 16);
    write_png(P("set/ga.png"), 3, 32, 32, PNG_COLOR_TYPE_GRAY_ALPHA, 8);
    write_png(P("set/pal.png"), 4, 33, 40, PNG_COLOR_TYPE_PALETTE, 8);
    write_png(P("set/rgb8.png"), 5, 48, 32, PNG_COLOR_TYPE_RGB, 8);
    write_png(P("set/rgba16.png"), 6, 32, 50, PNG_COLOR_TYPE_RGBA, 16);
    write_png(P("set/tiny.png"), 7, 10, 40, PNG_COLOR_TYPE_GRAY, 8);
    write_png(P("set/.hidden/x.png"), 8, 40, 40, PNG_COLOR_TYPE_GRAY, 8);
    put(P("set/notes.txt"), "not an image\n", 13);
    put(P("set/bad.png"), "garbage, not a png", 18);
    /* A PNG cut in the middle of its data. */
    write_png(P("set/full.tmp"), 9, 40, 40, PNG_COLOR_TYPE_GRAY, 8);
    FILE *f = fopen(P("set/full.tmp"), "rb");
    unsigned char buf[400];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    remove(P("set/full.tmp"));
    put(P("set/a/cut.png"), buf, got > 120 ? 120 : got);

    dc_imageset s;
    dc_imageset_options o = {.min_side = 32};
    CHECK_OK(dc_imageset_load(P("set"), &o, &s));
    CHECK(s.n == 6, "6 usable images, got %zu", s.n);
    CHECK(s.corrupt == 2 && s.too_small == 1, "2 corrupt (bad.png, a/cut.png), 1 too small: %zu, %zu", s.corrupt,
          s.too_small);
    CHECK(s.scan.other_files == 1, "notes.txt is another file: %zu", s.scan.other_files);
    CHECK(s.depth == 2, "a 16-bit image makes the set uint16");
    CHECK(s.c == 3, "a colour image makes the set colour (c %d)", s.c);
    /* sorted relative paths, hidden folder left out */
    const char *order[] = {"a/b/g16.png", "a/g8.png", "ga.png", "pal.png", "rgb8.png", "rgba16.png"};
    for (size_t i = 0; i < 6 && i < s.n; i++)
        CHECK(strcmp(s.scan.entries[s.entry[i]].rel, order[i]) == 0, "image %zu is %s, got %s", i, order[i],
              s.scan.entries[s.entry[i]].rel);
    int corrupt_named = 0;
    for (size_t i = 0; i < s.scan.n; i++)
        if (s.scan.entries[i].corrupt && s.scan.entries[i].skip && strstr(s.scan.entries[i].skip, ".png"))
            corrupt_named++;
    CHECK(corrupt_named == 2, "each corrupt file's reason names it (%d)", corrupt_named);
    /* exact values: 8-bit widened by 257, 16-bit as stored, gray replicated to the 3 planes */
    long g8 = find(&s, "a/g8.png"), g16 = find(&s, "a/b/g16.png"), rgb = find(&s, "rgb8.png"),
         rgba = find(&s, "rgba16.png");
    int exact = g8 >= 0 && g16 >= 0 && rgb >= 0 && rgba >= 0;
    for (int y = 0; exact && y < 32; y++)
        for (int x = 0; x < 32; x++)
            for (int c = 0; c < 3; c++) {
                exact &= at(&s, g8, c, x, y) == val(1, 0, x, y, 255) * 257u;
                exact &= at(&s, g16, c, x, y) == val(2, 0, x, y, 65535);
                exact &= at(&s, rgb, c, x, y) == val(5, c, x, y, 255) * 257u;
                exact &= at(&s, rgba, c, x, y) == val(6, c, x, y, 65535); /* alpha ignored */
            }
    CHECK(exact, "every stored value exact (8-bit x257, 16-bit, gray replicated, RGB planes)");
    CHECK(s.bytes == (size_t)2 * 3 * (40 * 34 + 36 * 33 + 32 * 32 + 33 * 40 + 48 * 32 + 32 * 50), "bytes %zu", s.bytes);
    dc_imageset_free(&s);

    /* --channels 1: Rec.601 luma of the colour image, within one 8-bit step */
    o.channels = 1;
    CHECK_OK(dc_imageset_load(P("set"), &o, &s));
    rgb = find(&s, "rgb8.png");
    double worst = 0;
    for (int y = 0; rgb >= 0 && y < 32; y++)
        for (int x = 0; x < 48; x++) {
            double want = 0.299 * val(5, 0, x, y, 255) + 0.587 * val(5, 1, x, y, 255) + 0.114 * val(5, 2, x, y, 255);
            double d = fabs(at(&s, rgb, 0, x, y) / 257.0 - want);
            if (d > worst) worst = d;
        }
    CHECK(s.c == 1 && rgb >= 0 && worst <= 1.0, "luma within 1/255 (worst %.3f)", worst);
    dc_imageset_free(&s);

    /* --strict stops at the first bad file, naming it: bad.png fails the header scan (a/cut.png's
     * header is intact; only its pixel data is cut) */
    o = (dc_imageset_options){.min_side = 32, .strict = 1};
    dc_status st = dc_imageset_load(P("set"), &o, &s);
    CHECK(st == DC_ERR_FORMAT && strstr(dc_error_detail(), "bad.png"), "strict: %s", dc_error_detail());
    rename(P("set/bad.png"), P("bad.png"));
    st = dc_imageset_load(P("set"), &o, &s);
    CHECK(st == DC_ERR_FORMAT && strstr(dc_error_detail(), "cut.png"), "strict, decoding: %s", dc_error_detail());
    rename(P("bad.png"), P("set/bad.png"));

    /* the memory bound names its flag */
    o = (dc_imageset_options){.min_side = 32, .max_bytes = 10000};
    st = dc_imageset_load(P("set"), &o, &s);
    CHECK(st == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--max-data-mb"), "bound: %s", dc_error_detail());

    /* an empty folder (only a non-image) is refused, naming it */
    mkdir(P("empty"), 0755);
    put(P("empty/readme"), "x", 1);
    o = (dc_imageset_options){0};
    st = dc_imageset_load(P("empty"), &o, &s);
    CHECK(st == DC_ERR_FORMAT && strstr(dc_error_detail(), "empty") && strstr(dc_error_detail(), "no usable image"),
          "empty: %s", dc_error_detail());
    st = dc_imageset_load(P("missing"), &o, &s);
    CHECK(st == DC_ERR_IO && strstr(dc_error_detail(), "missing"), "missing: %s", dc_error_detail());

    /* validation split: the parts are disjoint and together the whole */
    o = (dc_imageset_options){.min_side = 32, .val_split = 0.5, .part = 1};
    dc_imageset tr = {0}, va = {0};
    dc_status a = dc_imageset_load(P("set"), &o, &tr);
    o.part = 2;
    dc_status b = dc_imageset_load(P("set"), &o, &va);
    size_t ntr = a ? 0 : tr.n, nva = b ? 0 : va.n;
    CHECK(ntr + nva == 6, "split parts add up: %zu + %zu", ntr, nva);
    for (size_t i = 0; !a && i < tr.n; i++)
        CHECK(!dc_imageset_in_validation(tr.scan.entries[tr.entry[i]].rel, 0.5), "training image not held out");
    dc_imageset_free(&tr);
    dc_imageset_free(&va);
    int held = 0;
    for (int i = 0; i < 2000; i++) {
        char name[32];
        snprintf(name, sizeof name, "photos/img_%04d.jpg", i);
        held += dc_imageset_in_validation(name, 0.2);
    }
    CHECK(held > 400 - 60 && held < 400 + 60, "0.2 of 2000 paths held out: %d (tolerance 60, ~3.4 sd)", held);
}

/* JPEG, gray and colour, and a truncated one: found by signature whatever the name, values as
 * dc_image_read decodes them. */
static void test_jpeg(void)
{
    mkdir(P("jpg"), 0755);
    for (int k = 0; k < 2; k++) {
        dc_image img = {0};
        int c = k ? 3 : 1, w = 48, h = 40;
        CHECK_OK(dc_image_alloc_c(&img, w, h, c));
        for (int p = 0; img.px && p < c; p++)
            for (int i = 0; i < w * h; i++) img.px[p * w * h + i] = (float)val(k, p, i % w, i / w, 255) / 255.0f;
        CHECK_OK(dc_image_write(P(k ? "jpg/colour.jpg" : "jpg/gray.jpeg"), &img, 8, 90));
        dc_image_free(&img);
    }
    FILE *f = fopen(P("jpg/colour.jpg"), "rb");
    unsigned char buf[300];
    size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    put(P("jpg/cut.jpg"), buf, got);
    rename(P("jpg/gray.jpeg"), P("jpg/gray.dat")); /* by signature, not by name */
    dc_imageset s;
    dc_imageset_options o = {.min_side = 16};
    CHECK_OK(dc_imageset_load(P("jpg"), &o, &s));
    CHECK(s.n == 2 && s.corrupt == 1 && s.c == 3 && s.depth == 1, "2 JPEGs (gray, colour), 1 cut: n %zu, corrupt %zu, "
          "c %d, depth %d", s.n, s.corrupt, s.c, s.depth);
    int formats = 0, same = 1;
    for (size_t i = 0; i < s.n; i++) {
        const dc_imageset_entry *e = &s.scan.entries[s.entry[i]];
        formats += e->format == DC_IMAGESET_JPEG && e->c == (strstr(e->rel, "colour") ? 3 : 1);
        dc_image ref = {0};
        char path[4300];
        snprintf(path, sizeof path, "%s/jpg/%s", tmpdir, e->rel);
        CHECK_OK(dc_image_read(path, 3, &ref));
        for (int p = 0; ref.px && p < 3; p++)
            for (int y = 0; y < ref.h; y++)
                for (int x = 0; x < ref.w; x++)
                    same &= at(&s, (long)i, p, x, y) == (unsigned)lrintf(ref.px[(p * ref.h + y) * ref.w + x] * 255.0f);
        dc_image_free(&ref);
    }
    CHECK(formats == 2, "both are JPEG with their own channel count");
    CHECK(same, "JPEG values as decoded");
    dc_imageset_free(&s);
}

/* A synthetic set (no files): n images of the given sizes, c planes of uint8, pixel value = a
 * function of (image, plane, x, y). */
static void synth(dc_imageset *s, int n, const int *w, const int *h, int c)
{
    memset(s, 0, sizeof *s);
    s->n = (size_t)n;
    s->c = c;
    s->depth = 1;
    s->w = malloc(n * sizeof *s->w);
    s->h = malloc(n * sizeof *s->h);
    s->offset = malloc(n * sizeof *s->offset);
    s->cum_area = malloc(n * sizeof *s->cum_area);
    size_t values = 0;
    uint64_t area = 0;
    for (int i = 0; i < n; i++) {
        s->w[i] = w[i];
        s->h[i] = h[i];
        s->offset[i] = values;
        values += (size_t)c * w[i] * h[i];
        area += (uint64_t)w[i] * h[i];
        s->cum_area[i] = area;
    }
    s->pixels = malloc(values);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < c; p++)
            for (int y = 0; y < h[i]; y++)
                for (int x = 0; x < w[i]; x++)
                    ((uint8_t *)s->pixels)[s->offset[i] + ((size_t)p * h[i] + y) * w[i] + x] =
                        (uint8_t)val(i, p, x, y, 255);
    s->bytes = values;
}

static void test_patches(void)
{
    const int w[3] = {100, 40, 64}, h[3] = {50, 40, 200}; /* areas 5000, 1600, 12800 */
    dc_imageset s;
    synth(&s, 3, w, h, 2);
    const int size = 16, draws = 40000;
    long count[3] = {0};
    int inside = 1, same = 1, transforms[8] = {0};
    for (uint32_t i = 0; i < (uint32_t)draws; i++) {
        dc_patch p, q;
        dc_patch_draw(&s, size, 1, 42, 3, i, &p);
        dc_patch_draw(&s, size, 1, 42, 3, i, &q);
        same &= memcmp(&p, &q, sizeof p) == 0;
        inside &= p.image < 3 && p.x >= 0 && p.y >= 0 && p.x + size <= w[p.image] && p.y + size <= h[p.image];
        if (p.image < 3) count[p.image]++;
        if (p.transform >= 0 && p.transform < 8) transforms[p.transform]++;
    }
    CHECK(same, "a patch is a pure function of (seed, epoch, index)");
    CHECK(inside, "every patch inside its image");
    double total = 5000 + 1600 + 12800, chi = 0;
    const double area[3] = {5000, 1600, 12800};
    for (int i = 0; i < 3; i++) {
        double e = draws * area[i] / total;
        chi += (count[i] - e) * (count[i] - e) / e;
    }
    /* 2 degrees of freedom: P(chi2 > 13.8) = 0.001; fixed seeds, so the test is deterministic */
    CHECK(chi < 13.8, "image choice proportional to area: chi2 %.2f (counts %ld %ld %ld)", chi, count[0], count[1],
          count[2]);
    int all8 = 1;
    for (int t = 0; t < 8; t++) all8 &= transforms[t] > draws / 8 - 500 && transforms[t] < draws / 8 + 500;
    CHECK(all8, "augment draws each of the 8 transforms about 1/8 of the time");
    dc_patch p0, p1;
    dc_patch_draw(&s, size, 1, 42, 4, 0, &p0);
    dc_patch_draw(&s, size, 1, 43, 3, 0, &p1);
    dc_patch pe;
    dc_patch_draw(&s, size, 1, 42, 3, 0, &pe);
    CHECK(memcmp(&p0, &pe, sizeof p0) != 0 || memcmp(&p1, &pe, sizeof p1) != 0, "epoch and seed change the draw");

    /* dc_patch_copy: each transform against its definition; the 8 results all differ */
    uint8_t out[8][2 * 16 * 16];
    int right = 1;
    for (int t = 0; t < 8; t++) {
        dc_patch p = {2, 5, 7, t};
        dc_patch_copy(&s, size, &p, out[t]);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < size; i++)
                for (int j = 0; j < size; j++) {
                    int si = t & 4 ? j : i, sj = t & 4 ? i : j;
                    if (t & 1) sj = size - 1 - sj;
                    if (t & 2) si = size - 1 - si;
                    right &= out[t][(c * size + i) * size + j] == val(2, c, 5 + sj, 7 + si, 255);
                }
    }
    CHECK(right, "patch copies match the transform definitions");
    int distinct = 1;
    for (int a = 0; a < 8; a++)
        for (int b = a + 1; b < 8; b++) distinct &= memcmp(out[a], out[b], sizeof out[a]) != 0;
    CHECK(distinct, "the 8 transforms give 8 different patches");
    /* the same set widened to uint16 gives the same patches, x257 */
    uint16_t *wide = malloc(s.bytes * 2);
    for (size_t i = 0; i < s.bytes; i++) wide[i] = (uint16_t)(((uint8_t *)s.pixels)[i] * 257u);
    void *narrow = s.pixels;
    s.pixels = wide;
    s.depth = 2;
    int wide_ok = 1;
    for (int t = 0; t < 8; t++) {
        uint16_t o16[2 * 16 * 16];
        dc_patch p = {2, 5, 7, t};
        dc_patch_copy(&s, size, &p, o16);
        for (int k = 0; k < 2 * 16 * 16; k++) wide_ok &= o16[k] == out[t][k] * 257u;
    }
    CHECK(wide_ok, "uint16 patches equal the uint8 ones x257 for every transform");
    s.pixels = narrow;
    s.depth = 1;
    free(wide);

    /* centre crops */
    dc_dataset d;
    CHECK_OK(dc_imageset_center_crops(&s, size, &d));
    int centre = d.n == 3 && d.c == 2 && d.h == size;
    for (int i = 0; centre && i < 3; i++)
        for (int c = 0; c < 2; c++)
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                    centre &= d.images[(((size_t)i * 2 + c) * size + y) * size + x] ==
                              val(i, c, (w[i] - size) / 2 + x, (h[i] - size) / 2 + y, 255);
    CHECK(centre, "centre crops hold the image centres");
    dc_dataset_free(&d);
    dc_imageset_free(&s);
}

int main(void)
{
    const char *base = getenv("DAECL_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/imageset.%d", base ? base : "/tmp", (int)getpid());
    if (base) mkdir(base, 0755);
    if (mkdir(tmpdir, 0755) != 0) { perror(tmpdir); return 2; }
    test_folder();
    test_jpeg();
    test_patches();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    TEST_MAIN_END();
}
