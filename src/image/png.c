/* PNG read/write with libpng; conventions and accepted formats are documented in image.h.
 *
 * libpng reports errors by calling our error handler, which must not return: it records the
 * message and longjmps back to the setjmp in read_body()/write_body(). Everything those
 * functions allocate or modify after setjmp lives in a struct owned by the caller and reached
 * through a pointer parameter, never in a local of the function that called setjmp, so no value
 * is indeterminate after the longjmp (C11 7.13.2.1p3) and the caller frees it all in one place.
 * Warnings are recorded, never printed. */
#include "daecl/image.h"

#include "daecl/fileio.h"

#include <errno.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deflate cannot expand more than 1032:1, so a file of n bytes never holds more than about
 * 1032 * n bytes of filtered image data; a header that declares more is refused up front. */
#define DEFLATE_MAX_RATIO 1032u

typedef struct png_ctx {
    FILE *fp;
    char msg[256];  /* first libpng error */
    char warn[256]; /* first libpng warning */
    int truncated;  /* the read callback hit end of file */
    int io_errno;   /* the read/write callback failed with this errno */
} png_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    if (c && !c->msg[0]) snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    if (c && !c->warn[0]) snprintf(c->warn, sizeof c->warn, "%s", msg ? msg : "");
}

static void read_fn(png_structp png, png_bytep data, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (fread(data, 1, n, c->fp) != n) {
        if (ferror(c->fp)) {
            c->io_errno = errno ? errno : EIO;
            png_error(png, "read failed");
        }
        c->truncated = 1;
        png_error(png, "unexpected end of file");
    }
}

static void write_fn(png_structp png, png_bytep data, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (fwrite(data, 1, n, c->fp) != n) {
        c->io_errno = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void flush_fn(png_structp png) { (void)png; }

/* ---- images -------------------------------------------------------------------------------- */

dc_status dc_image_alloc(dc_image *img, int w, int h)
{
    if (!img) return dc_fail(DC_ERR_INVALID_ARG, "dc_image_alloc: NULL image");
    *img = (dc_image){0};
    if (w <= 0 || h <= 0 || w > DC_IMAGE_MAX_DIM || h > DC_IMAGE_MAX_DIM ||
        (int64_t)w * h > DC_IMAGE_MAX_PIXELS)
        return dc_fail(DC_ERR_INVALID_ARG, "image size %dx%d out of range (1..%d per side, %d pixels)",
                       w, h, DC_IMAGE_MAX_DIM, DC_IMAGE_MAX_PIXELS);
    float *px = calloc((size_t)w * (size_t)h, sizeof *px);
    if (!px) return dc_fail(DC_ERR_NOMEM, "cannot allocate a %dx%d image", w, h);
    *img = (dc_image){.px = px, .w = w, .h = h, .bit_depth = 8};
    return DC_OK;
}

void dc_image_free(dc_image *img)
{
    if (!img) return;
    free(img->px);
    *img = (dc_image){0};
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct reader {
    const char *path;
    png_ctx ctx;
    png_structp png;
    png_infop info;
    long long file_size; /* -1 if unknown */
    png_bytep raw;       /* one row, or the whole image when interlaced */
    png_bytepp rows;     /* row pointers into raw (interlaced only) */
    dc_image img;
    dc_status own;       /* a failure we detected ourselves (detail already recorded) */
    int palette;         /* a palette image: rows hold indices */
    int num_palette;     /* entries in its PLTE */
    float palette_gray[256];
} reader;

static inline float sample(png_const_bytep p, size_t i, int depth)
{
    if (depth == 16) return (float)((p[2 * i] << 8) | p[2 * i + 1]) / 65535.0f;
    return (float)p[i] / 255.0f;
}

/* One decoded row (channels 1..4 at 8 or 16 bits) to gray, see image.h for the rules. */
static void row_to_gray(png_const_bytep p, float *dst, int w, int channels, int depth)
{
    for (int x = 0; x < w; x++) {
        size_t i = (size_t)x * (size_t)channels;
        float y, a = 1.0f;
        switch (channels) {
        case 1: y = sample(p, i, depth); break;
        case 2: y = sample(p, i, depth); a = sample(p, i + 1, depth); break;
        default:
            y = (float)(0.299 * sample(p, i, depth) + 0.587 * sample(p, i + 1, depth) +
                        0.114 * sample(p, i + 2, depth));
            if (channels == 4) a = sample(p, i + 3, depth);
            break;
        }
        y *= a; /* composite over black */
        dst[x] = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
    }
}

/* Gray value of every palette entry, computed as row_to_gray would for the expanded RGB(A)
 * pixel, so palette files decode exactly as before. */
static void set_palette(reader *r)
{
    png_colorp pal = NULL;
    png_bytep trans = NULL;
    int n = 0, ntrans = 0;
    png_get_PLTE(r->png, r->info, &pal, &n);
    if (png_get_valid(r->png, r->info, PNG_INFO_tRNS)) png_get_tRNS(r->png, r->info, &trans, &ntrans, NULL);
    r->palette = 1;
    r->num_palette = n;
    for (int i = 0; i < n; i++) {
        png_byte px[4] = {pal[i].red, pal[i].green, pal[i].blue, i < ntrans ? trans[i] : 255};
        row_to_gray(px, &r->palette_gray[i], 1, trans ? 4 : 3, 8);
    }
}

/* Row y of the image from decoded bytes; refuses palette indices beyond the palette. */
static dc_status decode_row(reader *r, png_const_bytep p, png_uint_32 y, int channels, int depth)
{
    float *dst = r->img.px + (size_t)y * (size_t)r->img.w;
    if (!r->palette) {
        row_to_gray(p, dst, r->img.w, channels, depth);
        return DC_OK;
    }
    for (int x = 0; x < r->img.w; x++) {
        if (p[x] >= r->num_palette)
            return r->own = dc_fail(DC_ERR_FORMAT,
                                    "%s: corrupt PNG: pixel (%d,%lu) uses palette index %d but the palette has %d entries",
                                    r->path, x, (unsigned long)y, p[x], r->num_palette);
        dst[x] = r->palette_gray[p[x]];
    }
    return DC_OK;
}

/* Everything after the signature. Returns DC_OK, r->own for our own checks, or DC_ERR_FORMAT /
 * DC_ERR_IO after a libpng error (message in r->ctx). */
static dc_status read_body(reader *r)
{
    if (setjmp(png_jmpbuf(r->png))) return r->ctx.io_errno ? DC_ERR_IO : DC_ERR_FORMAT;

    png_set_read_fn(r->png, &r->ctx, read_fn);
    png_set_sig_bytes(r->png, 8);
    /* Our own, clearer size checks below replace libpng's (1e6 per side by default). */
    png_set_user_limits(r->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    /* A CRC error in a critical chunk is fatal; a damaged ancillary chunk is dropped. */
    png_set_crc_action(r->png, PNG_CRC_ERROR_QUIT, PNG_CRC_WARN_DISCARD);
    png_read_info(r->png, r->info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(r->png, r->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (w == 0 || h == 0)
        return r->own = dc_fail(DC_ERR_FORMAT, "%s: zero image size %lux%lu", r->path,
                                (unsigned long)w, (unsigned long)h);
    if (w > DC_IMAGE_MAX_DIM || h > DC_IMAGE_MAX_DIM || (uint64_t)w * h > DC_IMAGE_MAX_PIXELS)
        return r->own = dc_fail(DC_ERR_FORMAT,
                                "%s: declared size %lux%lu is too large (limit %d per side, %d pixels)",
                                r->path, (unsigned long)w, (unsigned long)h, DC_IMAGE_MAX_DIM,
                                DC_IMAGE_MAX_PIXELS);
    uint64_t raw_bytes = (uint64_t)h * ((uint64_t)png_get_rowbytes(r->png, r->info) + 1);
    if (r->file_size >= 0 && raw_bytes / DEFLATE_MAX_RATIO > (uint64_t)r->file_size + 1024)
        return r->own = dc_fail(DC_ERR_FORMAT,
                                "%s: truncated or corrupt: header declares %lux%lu pixels "
                                "(%llu bytes of data) but the file holds only %lld bytes",
                                r->path, (unsigned long)w, (unsigned long)h,
                                (unsigned long long)raw_bytes, r->file_size);

    /* Palette images are read as indices (one byte each) and mapped here, so that an index
     * beyond the palette is caught: libpng would silently expand it to black. */
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        set_palette(r);
        png_set_packing(r->png);
    }
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    if (ctype != PNG_COLOR_TYPE_PALETTE && png_get_valid(r->png, r->info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(r->png);
    int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);

    int channels = png_get_channels(r->png, r->info);
    int odepth = png_get_bit_depth(r->png, r->info);
    size_t rowbytes = png_get_rowbytes(r->png, r->info);
    if (channels < 1 || channels > 4 || (odepth != 8 && odepth != 16) ||
        rowbytes != (size_t)w * (size_t)channels * (size_t)(odepth / 8))
        return r->own = dc_fail(DC_ERR_FORMAT, "%s: unsupported PNG layout (%d channels, %d bits)",
                                r->path, channels, odepth);

    dc_status s = dc_image_alloc(&r->img, (int)w, (int)h);
    if (s != DC_OK) return r->own = dc_fail(s, "%s: cannot allocate a %lux%lu image", r->path,
                                            (unsigned long)w, (unsigned long)h);
    r->img.bit_depth = depth == 16 ? 16 : 8;

    if (passes > 1) {
        r->raw = malloc(rowbytes * h);
        r->rows = malloc(sizeof *r->rows * h);
        if (!r->raw || !r->rows)
            return r->own = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes for an interlaced image",
                                    r->path, rowbytes * h);
        for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->raw + rowbytes * y;
        png_read_image(r->png, r->rows);
        for (png_uint_32 y = 0; y < h; y++)
            DC_TRY(decode_row(r, r->rows[y], y, channels, odepth));
    } else {
        r->raw = malloc(rowbytes);
        if (!r->raw) return r->own = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate a row", r->path);
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(r->png, r->raw, NULL);
            DC_TRY(decode_row(r, r->raw, y, channels, odepth));
        }
    }
    /* Read up to IEND so that truncation or CRC damage after the pixels is caught too. */
    png_read_end(r->png, NULL);
    return DC_OK;
}

dc_status dc_png_read(const char *path, dc_image *out)
{
    if (!out) return dc_fail(DC_ERR_INVALID_ARG, "dc_png_read: NULL output image");
    *out = (dc_image){0};
    if (!path) return dc_fail(DC_ERR_INVALID_ARG, "dc_png_read: NULL path");

    reader r = {.path = path, .file_size = -1};
    DC_TRY(dc_fopen_regular(path, "a PNG file", &r.ctx.fp, &r.file_size));

    dc_status s = DC_OK;
    png_byte sig[8];
    size_t got = fread(sig, 1, sizeof sig, r.ctx.fp);
    if (got != sizeof sig && ferror(r.ctx.fp)) {
        s = dc_fail(DC_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    } else if (got == 0) {
        s = dc_fail(DC_ERR_FORMAT, "%s: not a PNG file (empty file)", path);
    } else if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        s = dc_fail(DC_ERR_FORMAT, "%s: not a PNG file (bad signature)", path);
    } else {
        r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.ctx, on_error, on_warning);
        if (r.png) r.info = png_create_info_struct(r.png);
        if (!r.png || !r.info) {
            s = dc_fail(DC_ERR_NOMEM, "%s: cannot create libpng read structures", path);
        } else {
            s = read_body(&r);
            if (s != DC_OK && r.own == DC_OK) {
                if (r.ctx.io_errno)
                    dc_fail(s, "%s: read failed: %s", path, strerror(r.ctx.io_errno));
                else if (r.ctx.truncated)
                    dc_fail(s, "%s: truncated PNG (unexpected end of file)", path);
                else if (r.ctx.warn[0] && strcmp(r.ctx.warn, r.ctx.msg) != 0)
                    dc_fail(s, "%s: corrupt PNG: %s (%s)", path, r.ctx.msg, r.ctx.warn);
                else
                    dc_fail(s, "%s: corrupt PNG: %s", path, r.ctx.msg);
            }
        }
    }

    if (r.png) png_destroy_read_struct(&r.png, r.info ? &r.info : NULL, NULL);
    free(r.rows);
    free(r.raw);
    fclose(r.ctx.fp);
    if (s == DC_OK)
        *out = r.img;
    else
        dc_image_free(&r.img);
    return s;
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct writer {
    png_ctx ctx;
    png_structp png;
    png_infop info;
    int w, h, depth;
    const float *fpx;   /* float source, or */
    const uint8_t *u8;  /* 8-bit source */
    png_bytep row;
} writer;

static inline unsigned quantize(float v, unsigned maxv)
{
    if (!(v > 0.0f)) return 0; /* also NaN */
    if (v >= 1.0f) return maxv;
    return (unsigned)(v * (float)maxv + 0.5f);
}

static dc_status write_body(writer *wr)
{
    if (setjmp(png_jmpbuf(wr->png))) return wr->ctx.io_errno ? DC_ERR_IO : DC_ERR_FORMAT;

    png_set_write_fn(wr->png, &wr->ctx, write_fn, flush_fn);
    png_set_IHDR(wr->png, wr->info, (png_uint_32)wr->w, (png_uint_32)wr->h, wr->depth,
                 PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(wr->png, wr->info);
    for (int y = 0; y < wr->h; y++) {
        size_t off = (size_t)y * (size_t)wr->w;
        if (wr->u8) {
            png_write_row(wr->png, (png_const_bytep)(wr->u8 + off));
            continue;
        }
        const float *src = wr->fpx + off;
        if (wr->depth == 16) {
            for (int x = 0; x < wr->w; x++) {
                unsigned v = quantize(src[x], 65535u);
                wr->row[2 * x] = (png_byte)(v >> 8);
                wr->row[2 * x + 1] = (png_byte)(v & 0xff);
            }
        } else {
            for (int x = 0; x < wr->w; x++) wr->row[x] = (png_byte)quantize(src[x], 255u);
        }
        png_write_row(wr->png, wr->row);
    }
    png_write_end(wr->png, NULL);
    return DC_OK;
}

/* Encode wr into wr->ctx.fp; `name` is for messages. */
static dc_status write_to(const char *name, writer *wr)
{
    dc_status s = DC_OK;
    if (wr->fpx) {
        wr->row = malloc((size_t)wr->w * (size_t)(wr->depth / 8));
        if (!wr->row) s = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate a row", name);
    }
    if (s == DC_OK) {
        wr->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &wr->ctx, on_error, on_warning);
        if (wr->png) wr->info = png_create_info_struct(wr->png);
        if (!wr->png || !wr->info) s = dc_fail(DC_ERR_NOMEM, "%s: cannot create libpng write structures", name);
    }
    if (s == DC_OK) {
        s = write_body(wr);
        if (s != DC_OK) {
            if (wr->ctx.io_errno)
                dc_fail(s, "%s: write failed: %s", name, strerror(wr->ctx.io_errno));
            else
                dc_fail(s, "%s: libpng error: %s", name, wr->ctx.msg);
        }
    }
    if (wr->png) png_destroy_write_struct(&wr->png, wr->info ? &wr->info : NULL);
    free(wr->row);
    wr->row = NULL;
    return s;
}

/* Replace path atomically (fileio.h) or, for path "-", write to standard output. */
static dc_status write_file(const char *path, writer *wr)
{
    if (strcmp(path, "-") == 0) {
        wr->ctx.fp = stdout;
        DC_TRY(write_to("standard output", wr));
        if (fflush(stdout) != 0)
            return dc_fail(DC_ERR_IO, "standard output: write failed: %s", strerror(errno));
        return DC_OK;
    }
    dc_atomic_file f;
    DC_TRY(dc_atomic_begin(path, &f));
    wr->ctx.fp = f.fp;
    dc_status s = write_to(path, wr);
    if (s == DC_OK) return dc_atomic_commit(&f);
    dc_atomic_abort(&f);
    return s;
}

static dc_status check_size(const char *path, int w, int h)
{
    if (w <= 0 || h <= 0 || w > DC_IMAGE_MAX_DIM || h > DC_IMAGE_MAX_DIM ||
        (int64_t)w * h > DC_IMAGE_MAX_PIXELS)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write a %dx%d image", path, w, h);
    return DC_OK;
}

dc_status dc_png_write(const char *path, const dc_image *img, int bit_depth)
{
    if (!path || !img || !img->px)
        return dc_fail(DC_ERR_INVALID_ARG, "dc_png_write: %s", !path ? "NULL path" : "empty image");
    if (bit_depth != 8 && bit_depth != 16)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: bit depth %d not supported (8 or 16)", path, bit_depth);
    DC_TRY(check_size(path, img->w, img->h));
    writer wr = {.w = img->w, .h = img->h, .depth = bit_depth, .fpx = img->px};
    return write_file(path, &wr);
}

dc_status dc_png_write_gray8(const char *path, const uint8_t *px, int w, int h)
{
    if (!path || !px)
        return dc_fail(DC_ERR_INVALID_ARG, "dc_png_write_gray8: %s", !path ? "NULL path" : "NULL pixels");
    DC_TRY(check_size(path, w, h));
    writer wr = {.w = w, .h = h, .depth = 8, .u8 = px};
    return write_file(path, &wr);
}
