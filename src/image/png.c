/* PNG decoding and encoding with libpng, behind image.h (see codec.h for the contract).
 *
 * libpng reports errors by calling our error handler, which must not return: it records the
 * message and longjmps back to the setjmp in read_body()/probe_body()/write_body(). Everything
 * those functions allocate or modify after setjmp lives in a struct owned by the caller and
 * reached through a pointer parameter, never in a local of the function that called setjmp, so
 * no value is indeterminate after the longjmp (C11 7.13.2.1p3) and the caller frees it all in
 * one place. Warnings are recorded, never printed. */
#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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

/* The one-line detail for a libpng failure while reading. */
static void fail_read(dc_status s, const char *path, const png_ctx *c)
{
    if (c->io_errno)
        dc_fail(s, "%s: read failed: %s", path, strerror(c->io_errno));
    else if (c->truncated)
        dc_fail(s, "%s: truncated PNG (unexpected end of file)", path);
    else if (c->warn[0] && strcmp(c->warn, c->msg) != 0)
        dc_fail(s, "%s: corrupt PNG: %s (%s)", path, c->msg, c->warn);
    else
        dc_fail(s, "%s: corrupt PNG: %s", path, c->msg);
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
    float palette_rgba[256][4];
} reader;

static inline float sample(png_const_bytep p, size_t i, int depth)
{
    if (depth == 16) return (float)((p[2 * i] << 8) | p[2 * i + 1]) / 65535.0f;
    return (float)p[i] / 255.0f;
}

/* The colour of every palette entry as the float samples an RGB(A) file would give. */
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
        png_byte px[4] = {pal[i].red, pal[i].green, pal[i].blue, trans && i < ntrans ? trans[i] : 255};
        for (int k = 0; k < 4; k++) r->palette_rgba[i][k] = sample(px, (size_t)k, 8);
    }
}

/* Row y of the image from decoded bytes (channels 1..4 at 8 or 16 bits, or palette indices);
 * refuses palette indices beyond the palette. */
static dc_status decode_row(reader *r, png_const_bytep p, png_uint_32 y, int channels, int depth)
{
    dc_image *im = &r->img;
    size_t plane = (size_t)im->w * (size_t)im->h, off = (size_t)y * (size_t)im->w;
    float *alpha = im->alpha ? im->alpha + off : NULL;
    for (int x = 0; x < im->w; x++) {
        if (r->palette) {
            if (p[x] >= r->num_palette)
                return r->own = dc_fail(DC_ERR_FORMAT,
                                        "%s: corrupt PNG: pixel (%d,%lu) uses palette index %d but the palette has %d entries",
                                        r->path, x, (unsigned long)y, p[x], r->num_palette);
            const float *e = r->palette_rgba[p[x]];
            for (int k = 0; k < 3; k++) im->px[k * plane + off + x] = e[k];
            if (alpha) alpha[x] = e[3];
            continue;
        }
        size_t i = (size_t)x * (size_t)channels;
        for (int k = 0; k < im->c; k++) im->px[k * plane + off + x] = sample(p, i + (size_t)k, depth);
        if (alpha) alpha[x] = sample(p, i + (size_t)im->c, depth);
    }
    return DC_OK;
}

/* Everything after the signature; with probe, only up to the header, into *probe. Returns
 * DC_OK, r->own for our own checks, or DC_ERR_FORMAT / DC_ERR_IO after a libpng error (message
 * in r->ctx). */
static dc_status read_body(reader *r, dc_image_info *probe)
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
    dc_status s = dc_image_check_size(r->path, "declared size", w, h);
    if (s != DC_OK) return r->own = s;
    int has_trns = png_get_valid(r->png, r->info, PNG_INFO_tRNS) != 0;
    int colour = (ctype & PNG_COLOR_MASK_COLOR) != 0; /* palette too */
    int has_alpha = (ctype & PNG_COLOR_MASK_ALPHA) != 0 || has_trns;
    if (probe) {
        *probe = (dc_image_info){.w = (int)w, .h = (int)h, .c = colour ? 3 : 1, .bit_depth = depth == 16 ? 16 : 8,
                                 .has_alpha = has_alpha, .format = DC_IMAGE_PNG};
        return DC_OK;
    }
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
    if (ctype != PNG_COLOR_TYPE_PALETTE && has_trns) png_set_tRNS_to_alpha(r->png);
    int passes = png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);

    int channels = png_get_channels(r->png, r->info);
    int odepth = png_get_bit_depth(r->png, r->info);
    size_t rowbytes = png_get_rowbytes(r->png, r->info);
    int want_channels = r->palette ? 1 : (colour ? 3 : 1) + has_alpha;
    if (channels != want_channels || (odepth != 8 && odepth != 16) ||
        rowbytes != (size_t)w * (size_t)channels * (size_t)(odepth / 8))
        return r->own = dc_fail(DC_ERR_FORMAT, "%s: unsupported PNG layout (%d channels, %d bits)",
                                r->path, channels, odepth);

    s = dc_image_alloc_c(&r->img, (int)w, (int)h, colour ? 3 : 1);
    if (s == DC_OK && has_alpha) {
        r->img.alpha = malloc((size_t)w * h * sizeof *r->img.alpha);
        if (!r->img.alpha) s = DC_ERR_NOMEM;
    }
    if (s != DC_OK)
        return r->own = dc_fail(s, "%s: cannot allocate a %lux%lu image", r->path, (unsigned long)w,
                                (unsigned long)h);
    r->img.bit_depth = depth == 16 ? 16 : 8;

    if (passes > 1) {
        r->raw = malloc(rowbytes * h);
        r->rows = malloc(sizeof *r->rows * h);
        if (!r->raw || !r->rows)
            return r->own = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes for an interlaced image",
                                    r->path, rowbytes * h);
        for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->raw + rowbytes * y;
        png_read_image(r->png, r->rows);
        for (png_uint_32 y = 0; y < h; y++) DC_TRY(decode_row(r, r->rows[y], y, channels, odepth));
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

/* Run decode or probe (info != NULL) on a fresh libpng reader. */
static dc_status with_reader(const char *path, FILE *fp, long long file_size, dc_image *out, dc_image_info *info)
{
    reader r = {.path = path, .file_size = file_size, .ctx.fp = fp};
    dc_status s;
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.ctx, on_error, on_warning);
    if (r.png) r.info = png_create_info_struct(r.png);
    if (!r.png || !r.info) {
        s = dc_fail(DC_ERR_NOMEM, "%s: cannot create libpng read structures", path);
    } else {
        s = read_body(&r, info);
        if (s != DC_OK && r.own == DC_OK) fail_read(s, path, &r.ctx);
    }
    if (r.png) png_destroy_read_struct(&r.png, r.info ? &r.info : NULL, NULL);
    free(r.rows);
    free(r.raw);
    if (s == DC_OK && out)
        *out = r.img;
    else
        dc_image_free(&r.img);
    return s;
}

dc_status dc_png_decode(const char *path, FILE *fp, long long file_size, dc_image *out)
{
    *out = (dc_image){0};
    return with_reader(path, fp, file_size, out, NULL);
}

dc_status dc_png_probe_stream(const char *path, FILE *fp, dc_image_info *info)
{
    return with_reader(path, fp, -1, NULL, info);
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct writer {
    png_ctx ctx;
    png_structp png;
    png_infop info;
    const dc_image *img;
    int depth;
    png_bytep row;
} writer;

static dc_status write_body(writer *wr)
{
    if (setjmp(png_jmpbuf(wr->png))) return wr->ctx.io_errno ? DC_ERR_IO : DC_ERR_FORMAT;

    const dc_image *im = wr->img;
    int ctype = (im->c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY) | (im->alpha ? PNG_COLOR_MASK_ALPHA : 0);
    int channels = im->c + (im->alpha != NULL);
    unsigned maxv = wr->depth == 16 ? 65535u : 255u;
    size_t plane = (size_t)im->w * (size_t)im->h;
    png_set_write_fn(wr->png, &wr->ctx, write_fn, flush_fn);
    png_set_IHDR(wr->png, wr->info, (png_uint_32)im->w, (png_uint_32)im->h, wr->depth, ctype,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* zlib's fastest level: a denoised photo is mostly noise-free detail that deflate gains
     * little on, and the default level 6 made writing a 2048x2048 RGB PNG half of `denoise`'s
     * time (3.5 -> 1.7 s end to end, files 12 % larger; OpenCV's default is also level 1). */
    png_set_compression_level(wr->png, Z_BEST_SPEED);
    png_write_info(wr->png, wr->info);
    for (int y = 0; y < im->h; y++) {
        size_t off = (size_t)y * (size_t)im->w;
        for (int x = 0; x < im->w; x++)
            for (int k = 0; k < channels; k++) {
                const float *src = k < im->c ? im->px + k * plane : im->alpha;
                unsigned v = dc_quantize(src[off + x], maxv);
                size_t i = (size_t)x * (size_t)channels + (size_t)k;
                if (wr->depth == 16) {
                    wr->row[2 * i] = (png_byte)(v >> 8);
                    wr->row[2 * i + 1] = (png_byte)(v & 0xff);
                } else {
                    wr->row[i] = (png_byte)v;
                }
            }
        png_write_row(wr->png, wr->row);
    }
    png_write_end(wr->png, NULL);
    return DC_OK;
}

dc_status dc_png_encode(const char *name, FILE *fp, const dc_image *img, int bit_depth)
{
    writer wr = {.ctx.fp = fp, .img = img, .depth = bit_depth};
    dc_status s = DC_OK;
    size_t channels = (size_t)img->c + (img->alpha != NULL);
    wr.row = malloc((size_t)img->w * channels * (size_t)(bit_depth / 8));
    if (!wr.row) s = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate a row", name);
    if (s == DC_OK) {
        wr.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &wr.ctx, on_error, on_warning);
        if (wr.png) wr.info = png_create_info_struct(wr.png);
        if (!wr.png || !wr.info) s = dc_fail(DC_ERR_NOMEM, "%s: cannot create libpng write structures", name);
    }
    if (s == DC_OK) {
        s = write_body(&wr);
        if (s != DC_OK) {
            if (wr.ctx.io_errno)
                dc_fail(s, "%s: write failed: %s", name, strerror(wr.ctx.io_errno));
            else
                dc_fail(s, "%s: libpng error: %s", name, wr.ctx.msg);
        }
    }
    if (wr.png) png_destroy_write_struct(&wr.png, wr.info ? &wr.info : NULL);
    free(wr.row);
    return s;
}
