/* Images in memory and the format-independent half of image.h: allocation, recognising PNG and
 * JPEG by signature, channel conversion, writing by extension atomically. The codecs live in
 * png.c and jpeg.c (codec.h). */
#include "codec.h"

#include "daecl/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const unsigned char PNG_SIG[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
static const unsigned char JPEG_SIG[3] = {0xff, 0xd8, 0xff};

dc_status dc_image_check_size(const char *path, const char *what, unsigned long w, unsigned long h)
{
    if (w == 0 || h == 0) return dc_fail(DC_ERR_FORMAT, "%s: zero image size %lux%lu", path, w, h);
    if (w > DC_IMAGE_MAX_DIM || h > DC_IMAGE_MAX_DIM || (unsigned long long)w * h > DC_IMAGE_MAX_PIXELS)
        return dc_fail(DC_ERR_FORMAT, "%s: %s %lux%lu is too large (limit %d per side, %d pixels)", path, what,
                       w, h, DC_IMAGE_MAX_DIM, DC_IMAGE_MAX_PIXELS);
    return DC_OK;
}

/* ---- memory -------------------------------------------------------------------------------- */

dc_status dc_image_alloc_c(dc_image *img, int w, int h, int c)
{
    if (!img) return dc_fail(DC_ERR_INVALID_ARG, "dc_image_alloc: NULL image");
    *img = (dc_image){0};
    if (c != 1 && c != 3) return dc_fail(DC_ERR_INVALID_ARG, "image with %d channels (1 or 3)", c);
    if (w <= 0 || h <= 0 || w > DC_IMAGE_MAX_DIM || h > DC_IMAGE_MAX_DIM ||
        (int64_t)w * h > DC_IMAGE_MAX_PIXELS)
        return dc_fail(DC_ERR_INVALID_ARG, "image size %dx%d out of range (1..%d per side, %d pixels)",
                       w, h, DC_IMAGE_MAX_DIM, DC_IMAGE_MAX_PIXELS);
    float *px = calloc((size_t)w * (size_t)h * (size_t)c, sizeof *px);
    if (!px) return dc_fail(DC_ERR_NOMEM, "cannot allocate a %dx%dx%d image", w, h, c);
    *img = (dc_image){.px = px, .w = w, .h = h, .c = c, .bit_depth = 8};
    return DC_OK;
}

dc_status dc_image_alloc(dc_image *img, int w, int h) { return dc_image_alloc_c(img, w, h, 1); }

void dc_image_free(dc_image *img)
{
    if (!img) return;
    free(img->px);
    free(img->alpha);
    *img = (dc_image){0};
}

/* ---- channels ------------------------------------------------------------------------------ */

float dc_luma601(float r, float g, float b)
{
    return (float)(0.299 * r + 0.587 * g + 0.114 * b);
}

/* Bring img to want_c channels in place: 3 -> 1 by Rec.601 luma, 1 -> 3 by replication. */
static dc_status convert_channels(const char *path, dc_image *img, int want_c)
{
    if (want_c == 0 || want_c == img->c) return DC_OK;
    size_t n = (size_t)img->w * (size_t)img->h;
    if (want_c == 1) {
        const float *r = img->px, *g = r + n, *b = g + n;
        float *y = malloc(n * sizeof *y);
        if (!y) return dc_fail(DC_ERR_NOMEM, "%s: cannot allocate a luma plane", path);
        for (size_t i = 0; i < n; i++) y[i] = dc_luma601(r[i], g[i], b[i]);
        free(img->px);
        img->px = y;
    } else {
        float *rgb = realloc(img->px, 3 * n * sizeof *rgb);
        if (!rgb) return dc_fail(DC_ERR_NOMEM, "%s: cannot allocate colour planes", path);
        memcpy(rgb + n, rgb, n * sizeof *rgb);
        memcpy(rgb + 2 * n, rgb, n * sizeof *rgb);
        img->px = rgb;
    }
    img->c = want_c;
    return DC_OK;
}

/* ---- reading ------------------------------------------------------------------------------- */

/* Open path and recognise its format; the stream is left where the codec starts reading (PNG:
 * after the signature, JPEG: at the start). png_only: only PNG is recognised. */
static dc_status open_image(const char *path, int png_only, FILE **fp, long long *size, dc_image_format *fmt)
{
    const char *what = png_only ? "a PNG file" : "a PNG or JPEG file";
    DC_TRY(dc_fopen_regular(path, what, fp, size));
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, *fp);
    dc_status s = DC_OK;
    if (got != sizeof sig && ferror(*fp))
        s = dc_fail(DC_ERR_IO, "%s: read failed: %s", path, strerror(errno));
    else if (got == 0)
        s = dc_fail(DC_ERR_FORMAT, "%s: not %s (empty file)", path, what);
    else if (got == sizeof sig && memcmp(sig, PNG_SIG, sizeof PNG_SIG) == 0)
        *fmt = DC_IMAGE_PNG;
    else if (!png_only && got >= sizeof JPEG_SIG && memcmp(sig, JPEG_SIG, sizeof JPEG_SIG) == 0)
        *fmt = DC_IMAGE_JPEG;
    else
        s = dc_fail(DC_ERR_FORMAT, "%s: not %s (bad signature)", path, what);
    if (s == DC_OK && fseek(*fp, *fmt == DC_IMAGE_PNG ? (long)sizeof PNG_SIG : 0L, SEEK_SET) != 0)
        s = dc_fail(DC_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    if (s != DC_OK) {
        fclose(*fp);
        *fp = NULL;
    }
    return s;
}

dc_status dc_image_read(const char *path, int want_c, dc_image *out)
{
    if (!out) return dc_fail(DC_ERR_INVALID_ARG, "dc_image_read: NULL output image");
    *out = (dc_image){0};
    if (!path) return dc_fail(DC_ERR_INVALID_ARG, "dc_image_read: NULL path");
    if (want_c != 0 && want_c != 1 && want_c != 3)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot read into %d channels (0, 1 or 3)", path, want_c);
    FILE *fp;
    long long size;
    dc_image_format fmt = DC_IMAGE_PNG;
    DC_TRY(open_image(path, 0, &fp, &size, &fmt));
    dc_status s = fmt == DC_IMAGE_PNG ? dc_png_decode(path, fp, size, out) : dc_jpeg_decode(path, fp, out);
    fclose(fp);
    if (s == DC_OK) s = convert_channels(path, out, want_c);
    if (s != DC_OK) dc_image_free(out);
    return s;
}

dc_status dc_image_probe(const char *path, dc_image_info *info)
{
    if (!path || !info) return dc_fail(DC_ERR_INVALID_ARG, "dc_image_probe: NULL %s", !path ? "path" : "info");
    *info = (dc_image_info){0};
    FILE *fp;
    long long size;
    dc_image_format fmt = DC_IMAGE_PNG;
    DC_TRY(open_image(path, 0, &fp, &size, &fmt));
    dc_status s = fmt == DC_IMAGE_PNG ? dc_png_probe_stream(path, fp, info) : dc_jpeg_probe_stream(path, fp, info);
    fclose(fp);
    if (s != DC_OK) *info = (dc_image_info){0};
    return s;
}

dc_status dc_png_read(const char *path, dc_image *out)
{
    if (!out) return dc_fail(DC_ERR_INVALID_ARG, "dc_png_read: NULL output image");
    *out = (dc_image){0};
    if (!path) return dc_fail(DC_ERR_INVALID_ARG, "dc_png_read: NULL path");
    FILE *fp;
    long long size;
    dc_image_format fmt = DC_IMAGE_PNG;
    DC_TRY(open_image(path, 1, &fp, &size, &fmt));
    dc_status s = dc_png_decode(path, fp, size, out);
    fclose(fp);
    if (s == DC_OK) s = convert_channels(path, out, 1);
    if (s != DC_OK) {
        dc_image_free(out);
        return s;
    }
    /* Composite over black (image.h), then drop alpha. */
    if (out->alpha) {
        size_t n = (size_t)out->w * (size_t)out->h;
        for (size_t i = 0; i < n; i++) {
            float y = out->px[i] * out->alpha[i];
            out->px[i] = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
        }
        free(out->alpha);
        out->alpha = NULL;
    }
    return DC_OK;
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct encode_job {
    const dc_image *img;
    dc_image_format fmt;
    int bit_depth, quality;
} encode_job;

static dc_status encode(const char *name, FILE *fp, const encode_job *j)
{
    return j->fmt == DC_IMAGE_JPEG ? dc_jpeg_encode(name, fp, j->img, j->quality)
                                   : dc_png_encode(name, fp, j->img, j->bit_depth);
}

/* Replace path atomically (fileio.h) or, for path "-", write to standard output. */
static dc_status write_file(const char *path, const encode_job *j)
{
    if (strcmp(path, "-") == 0) {
        DC_TRY(encode("standard output", stdout, j));
        if (fflush(stdout) != 0)
            return dc_fail(DC_ERR_IO, "standard output: write failed: %s", strerror(errno));
        return DC_OK;
    }
    dc_atomic_file f;
    DC_TRY(dc_atomic_begin(path, &f));
    dc_status s = encode(path, f.fp, j);
    if (s == DC_OK) return dc_atomic_commit(&f);
    dc_atomic_abort(&f);
    return s;
}

/* The extension of path's last component ("" if none). */
static const char *extension(const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    return dot && dot != base ? dot : ""; /* ".name" is a hidden file, not an extension */
}

dc_status dc_image_format_for(const char *path, dc_image_format *fmt)
{
    const char *ext = extension(path);
    if (strcmp(path, "-") == 0 || !*ext || strcasecmp(ext, ".png") == 0)
        *fmt = DC_IMAGE_PNG;
    else if (strcasecmp(ext, ".jpg") == 0 || strcasecmp(ext, ".jpeg") == 0)
        *fmt = DC_IMAGE_JPEG;
    else
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write '%s' images (use .png, .jpg or .jpeg)", path, ext);
    return DC_OK;
}

static dc_status check_writable(const char *path, const dc_image *img)
{
    if (!path || !img || !img->px)
        return dc_fail(DC_ERR_INVALID_ARG, "image write: %s", !path ? "NULL path" : "empty image");
    if (img->c != 1 && img->c != 3)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write an image with %d channels", path, img->c);
    if (img->w <= 0 || img->h <= 0 || img->w > DC_IMAGE_MAX_DIM || img->h > DC_IMAGE_MAX_DIM ||
        (int64_t)img->w * img->h > DC_IMAGE_MAX_PIXELS)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write a %dx%d image", path, img->w, img->h);
    return DC_OK;
}

dc_status dc_image_write(const char *path, const dc_image *img, int bit_depth, int jpeg_quality)
{
    DC_TRY(check_writable(path, img));
    encode_job j = {.img = img, .bit_depth = bit_depth, .quality = jpeg_quality};
    DC_TRY(dc_image_format_for(path, &j.fmt));
    if (j.fmt == DC_IMAGE_PNG && bit_depth != 8 && bit_depth != 16)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: bit depth %d not supported (8 or 16)", path, bit_depth);
    if (j.fmt == DC_IMAGE_JPEG) {
        if (bit_depth != 8)
            return dc_fail(DC_ERR_INVALID_ARG, "%s: JPEG holds 8-bit samples only (write a .png for %d bits)", path,
                           bit_depth);
        if (img->alpha)
            return dc_fail(DC_ERR_INVALID_ARG, "%s: JPEG has no alpha channel (write a .png to keep it)", path);
        if (jpeg_quality < 1 || jpeg_quality > 100)
            return dc_fail(DC_ERR_INVALID_ARG, "%s: JPEG quality %d out of range (1-100)", path, jpeg_quality);
    }
    return write_file(path, &j);
}

dc_status dc_png_write(const char *path, const dc_image *img, int bit_depth)
{
    DC_TRY(check_writable(path, img));
    if (bit_depth != 8 && bit_depth != 16)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: bit depth %d not supported (8 or 16)", path, bit_depth);
    encode_job j = {.img = img, .fmt = DC_IMAGE_PNG, .bit_depth = bit_depth};
    return write_file(path, &j);
}

dc_status dc_png_write_gray8(const char *path, const uint8_t *px, int w, int h)
{
    if (!path || !px)
        return dc_fail(DC_ERR_INVALID_ARG, "dc_png_write_gray8: %s", !path ? "NULL path" : "NULL pixels");
    dc_image img;
    if (dc_image_alloc(&img, w, h) != DC_OK)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write a %dx%d image", path, w, h);
    /* v / 255 quantizes back to exactly v. */
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) img.px[i] = (float)px[i] / 255.0f;
    dc_status s = dc_png_write(path, &img, 8);
    dc_image_free(&img);
    return s;
}
