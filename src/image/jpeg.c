/* JPEG decoding and encoding with libjpeg(-turbo), behind image.h (see codec.h).
 *
 * libjpeg reports errors through error_exit, which must not return: ours formats the message
 * and longjmps back to the setjmp in decode_body()/probe_body()/encode_body(). Warnings
 * (emit_message at level -1: corrupt entropy data, a premature end of file, ...) are treated as
 * errors too, so a truncated JPEG is refused instead of coming back with a grey bottom half.
 * As in png.c, everything touched after setjmp lives in a caller-owned struct. */
#include "codec.h"

#include <jpeglib.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands us a pointer to it */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (!e->msg[0]) e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* level -1: a warning, i.e. damaged data; level >= 0: trace messages, ignored. */
static void on_message(j_common_ptr cinfo, int level)
{
    if (level < 0) on_error_exit(cinfo);
}

static void init_err(jpeg_err *e)
{
    jpeg_std_error(&e->mgr);
    e->mgr.error_exit = on_error_exit;
    e->mgr.emit_message = on_message;
    e->msg[0] = '\0';
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct jreader {
    const char *path;
    jpeg_err err;
    struct jpeg_decompress_struct cinfo;
    int created;
    JSAMPLE *row;
    dc_image img;
    dc_status own; /* a failure we detected ourselves (detail recorded) */
} jreader;

/* Header checks shared by decoding and probing; sets the output colour space. */
static dc_status check_header(jreader *r)
{
    struct jpeg_decompress_struct *ci = &r->cinfo;
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK || ci->num_components == 4)
        return r->own = dc_fail(DC_ERR_UNSUPPORTED, "%s: CMYK/YCCK JPEG is not supported (convert it to RGB)",
                                r->path);
    if (ci->num_components != 1 && ci->num_components != 3)
        return r->own = dc_fail(DC_ERR_FORMAT, "%s: JPEG with %d components is not supported", r->path,
                                ci->num_components);
    dc_status s = dc_image_check_size(r->path, "declared size", ci->image_width, ci->image_height);
    if (s != DC_OK) return r->own = s;
    ci->out_color_space = ci->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    return DC_OK;
}

static dc_status decode_body(jreader *r, FILE *fp, dc_image_info *info)
{
    if (setjmp(r->err.jump)) return DC_ERR_FORMAT;
    struct jpeg_decompress_struct *ci = &r->cinfo;
    ci->err = &r->err.mgr;
    jpeg_create_decompress(ci);
    r->created = 1;
    jpeg_stdio_src(ci, fp);
    jpeg_read_header(ci, TRUE);
    DC_TRY(check_header(r));
    if (info) {
        *info = (dc_image_info){.w = (int)ci->image_width, .h = (int)ci->image_height,
                                .c = ci->num_components == 1 ? 1 : 3, .bit_depth = 8, .format = DC_IMAGE_JPEG};
        return DC_OK;
    }
    jpeg_start_decompress(ci);
    int w = (int)ci->output_width, h = (int)ci->output_height, c = ci->output_components;
    if (c != 1 && c != 3)
        return r->own = dc_fail(DC_ERR_FORMAT, "%s: JPEG decodes to %d components", r->path, c);
    dc_status s = dc_image_alloc_c(&r->img, w, h, c);
    if (s != DC_OK) return r->own = s;
    r->row = malloc((size_t)w * (size_t)c);
    if (!r->row) return r->own = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate a row", r->path);
    size_t plane = (size_t)w * (size_t)h;
    while (ci->output_scanline < ci->output_height) {
        size_t off = (size_t)ci->output_scanline * (size_t)w;
        JSAMPROW rows[1] = {r->row};
        if (jpeg_read_scanlines(ci, rows, 1) != 1)
            return r->own = dc_fail(DC_ERR_FORMAT, "%s: truncated JPEG (no data for row %lu)", r->path,
                                    (unsigned long)ci->output_scanline);
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                r->img.px[(size_t)k * plane + off + (size_t)x] = (float)r->row[(size_t)x * c + k] / 255.0f;
    }
    /* Read up to EOI, so damage after the last row is caught too. */
    jpeg_finish_decompress(ci);
    return DC_OK;
}

static dc_status with_reader(const char *path, FILE *fp, dc_image *out, dc_image_info *info)
{
    jreader r = {.path = path};
    init_err(&r.err);
    dc_status s = decode_body(&r, fp, info);
    if (s != DC_OK && r.own == DC_OK)
        dc_fail(s, "%s: corrupt JPEG: %s", path, r.err.msg[0] ? r.err.msg : "unknown libjpeg error");
    if (r.created) jpeg_destroy_decompress(&r.cinfo);
    free(r.row);
    if (s == DC_OK && out)
        *out = r.img;
    else
        dc_image_free(&r.img);
    return s;
}

dc_status dc_jpeg_decode(const char *path, FILE *fp, dc_image *out)
{
    *out = (dc_image){0};
    return with_reader(path, fp, out, NULL);
}

dc_status dc_jpeg_probe_stream(const char *path, FILE *fp, dc_image_info *info)
{
    return with_reader(path, fp, NULL, info);
}

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct jwriter {
    jpeg_err err;
    struct jpeg_compress_struct cinfo;
    int created;
    JSAMPLE *row;
} jwriter;

static dc_status encode_body(jwriter *wr, FILE *fp, const dc_image *img, int quality)
{
    if (setjmp(wr->err.jump)) return DC_ERR_FORMAT;
    struct jpeg_compress_struct *ci = &wr->cinfo;
    ci->err = &wr->err.mgr;
    jpeg_create_compress(ci);
    wr->created = 1;
    jpeg_stdio_dest(ci, fp);
    ci->image_width = (JDIMENSION)img->w;
    ci->image_height = (JDIMENSION)img->h;
    ci->input_components = img->c;
    ci->in_color_space = img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(ci);
    jpeg_set_quality(ci, quality, TRUE);
    jpeg_start_compress(ci, TRUE);
    size_t plane = (size_t)img->w * (size_t)img->h;
    while (ci->next_scanline < ci->image_height) {
        size_t off = (size_t)ci->next_scanline * (size_t)img->w;
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < img->c; k++)
                wr->row[(size_t)x * img->c + k] = (JSAMPLE)dc_quantize(img->px[(size_t)k * plane + off + (size_t)x], 255u);
        JSAMPROW rows[1] = {wr->row};
        jpeg_write_scanlines(ci, rows, 1);
    }
    jpeg_finish_compress(ci);
    return DC_OK;
}

dc_status dc_jpeg_encode(const char *name, FILE *fp, const dc_image *img, int quality)
{
    jwriter wr = {0};
    init_err(&wr.err);
    wr.row = malloc((size_t)img->w * (size_t)img->c);
    if (!wr.row) return dc_fail(DC_ERR_NOMEM, "%s: cannot allocate a row", name);
    dc_status s = encode_body(&wr, fp, img, quality);
    if (s != DC_OK) dc_fail(s, "%s: libjpeg error: %s", name, wr.err.msg[0] ? wr.err.msg : "unknown");
    if (wr.created) jpeg_destroy_compress(&wr.cinfo);
    free(wr.row);
    /* libjpeg's stdio destination ignores short writes; the stream's error flag does not. */
    if (s == DC_OK && (fflush(fp) != 0 || ferror(fp))) s = dc_fail(DC_ERR_IO, "%s: write failed", name);
    return s;
}
