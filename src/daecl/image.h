/* dae-cl images: PNG and JPEG read/write (libpng, libjpeg) and sample-grid composition.
 *
 * Pixel convention: float in [0,1], planar, 0 = black. MNIST digits are white (1) strokes on a
 * black (0) background, and that is the domain the MNIST models are trained on. Sample values
 * are scaled exactly: 8-bit v / 255, 16-bit v / 65535 (so 16-bit data round-trips bit-exact);
 * PNG gray at 1/2/4 bits is first replicated to 8 bits by libpng (v * 255 / (2^depth - 1)).
 *
 * Reading (dc_image_read) recognises PNG and JPEG by their signature, never by the name:
 *   - PNG: every colour type and depth libpng decodes. "As stored" (want_c 0) gives c = 1 for
 *     gray and gray+alpha, c = 3 for RGB(A) and palette files (expanded through PLTE); alpha
 *     (an alpha channel, or tRNS on any type) goes to img->alpha as stored, not composited.
 *     Interlaced (Adam7) files are de-interlaced; gAMA/sRGB/iCCP are ignored.
 *   - JPEG (baseline and progressive, 8-bit): gray -> c = 1, YCbCr/RGB -> c = 3 (libjpeg's
 *     colour conversion); CMYK/YCCK is refused (DC_ERR_UNSUPPORTED). Every libjpeg warning
 *     (corrupt data, premature end of file) is an error: a truncated JPEG is refused.
 *   - want_c 1: colour becomes Rec.601 luma Y = 0.299 R + 0.587 G + 0.114 B (dc_luma601);
 *     want_c 3: gray is replicated into R, G and B.
 * img.bit_depth records 16 when the source had 16-bit samples, else 8.
 * Refused with DC_ERR_FORMAT and a one-line detail naming the file: an unknown signature, an
 * empty file, truncated data, PNG CRC errors in critical chunks, corrupt compressed data, zero
 * width or height, and absurd declared sizes (width or height > DC_IMAGE_MAX_DIM, or more than
 * DC_IMAGE_MAX_PIXELS pixels, or more PNG pixel data than the file could possibly hold) before
 * any pixel memory is allocated. Open/read failures are DC_ERR_IO. Codec warnings are never
 * printed; they are only kept for the error detail.
 *
 * dc_png_read is the older gray-only PNG reader (plots, MNIST-style digits): PNG only, luma,
 * alpha composited over BLACK (Y' = Y * alpha), so transparent pixels become background (0).
 *
 * Reading opens regular files only (fileio.h): a FIFO, device or directory is refused, never
 * waited on.
 *
 * Writing (dc_image_write, dc_png_write, dc_png_write_gray8) replaces path atomically (see
 * daecl/fileio.h: temp file beside it, fsync, rename; a directory, FIFO, device node or
 * dangling symlink at path is refused; a symlink to a regular file has its target replaced). On
 * any failure the temp file is removed and an existing file at path is left untouched. Path "-"
 * writes a PNG to standard output. Values are clamped to [0,1] (NaN -> 0) and rounded to the
 * nearest sample value. */
#ifndef DAECL_IMAGE_H
#define DAECL_IMAGE_H

#include <stdint.h>

#include "daecl/status.h"

#define DC_IMAGE_MAX_DIM (1 << 20)     /* largest width or height accepted */
#define DC_IMAGE_MAX_PIXELS (1 << 28)  /* largest w*h accepted */

typedef struct dc_image {
    float *px;     /* c planes of h*w values in [0,1], planar: plane k at px + k*w*h, row-major */
    float *alpha;  /* NULL, or h*w alpha values in [0,1] as stored (carried through, never denoised);
                      malloc'ed, owned by the image */
    int w, h, c;   /* c = 1 (gray) or 3 (RGB) */
    int bit_depth; /* 8 or 16: the source's sample depth, so 16-bit in can give 16-bit out */
} dc_image;

typedef enum { DC_IMAGE_PNG = 1, DC_IMAGE_JPEG } dc_image_format;

typedef struct dc_image_info {
    int w, h, c, bit_depth, has_alpha;
    dc_image_format format;
} dc_image_info;

/* Allocate a zeroed w x h image of c channels (1 or 3; bit_depth 8, no alpha). img is left
 * empty ({0}) on failure. dc_image_alloc is the gray (c = 1) case. */
dc_status dc_image_alloc_c(dc_image *img, int w, int h, int c);
dc_status dc_image_alloc(dc_image *img, int w, int h);
/* Free the pixels and alpha and reset *img to {0}; safe on an empty or already freed image. */
void dc_image_free(dc_image *img);

/* Rec.601 luma of one RGB pixel, as every colour-to-gray conversion here computes it. */
float dc_luma601(float r, float g, float b);

/* PNG or JPEG, recognised by signature (not name), into *out (allocated here; {0} on
 * failure). want_c: 0 = as stored (gray -> 1, colour or palette -> 3), 1 = Rec.601 luma,
 * 3 = RGB (gray replicated). Corrupt/truncated files: DC_ERR_FORMAT naming the file. */
dc_status dc_image_read(const char *path, int want_c, dc_image *out);

/* Header only (no pixel decode): for folder scans and memory planning. c as dc_image_read's
 * "as stored"; size limits and CMYK JPEG are checked as when reading. */
dc_status dc_image_probe(const char *path, dc_image_info *info);

/* The format dc_image_write would use for path: .png (any case), no extension or "-" -> PNG;
 * .jpg/.jpeg -> JPEG; another extension -> DC_ERR_INVALID_ARG naming path. */
dc_status dc_image_format_for(const char *path, dc_image_format *fmt);

/* Write by extension (dc_image_format_for): PNG gray/RGB, with alpha when img->alpha, at
 * bit_depth 8 or 16; JPEG 8-bit only, jpeg_quality 1-100, alpha refused. Atomic, see above. */
dc_status dc_image_write(const char *path, const dc_image *img, int bit_depth, int jpeg_quality);

/* The gray-only PNG reader described above; *out has c = 1 and no alpha. */
dc_status dc_png_read(const char *path, dc_image *out);

/* Write img as a PNG whatever the name (gray or RGB by img->c, alpha when img->alpha), with
 * bit_depth 8 or 16. Atomic, see above. */
dc_status dc_png_write(const char *path, const dc_image *img, int bit_depth);

/* Same for a raw 8-bit gray buffer of h rows of w bytes. */
dc_status dc_png_write_gray8(const char *path, const uint8_t *px, int w, int h);

/* ---- sample grids -------------------------------------------------------------------------
 * rows x cols tiles of tile_h x tile_w floats in [0,1], each scaled up by an integer factor
 * (nearest neighbour), separated by separator lines `sep` pixels wide (1-2 is usual; 0 allowed)
 * in mid-gray (DC_GRID_SEP_GRAY = 128), with an outer border of the same width and colour:
 *
 *     W = cols * tile_w * scale + (cols + 1) * sep
 *     H = rows * tile_h * scale + (rows + 1) * sep
 *
 * Tile (r, c) has its top-left pixel at x = sep + c * (tile_w * scale + sep),
 * y = sep + r * (tile_h * scale + sep). Values are clamped to [0,1] (NaN -> 0) and mapped to
 * round(v * 255). A NULL tile is blank: black (0), the MNIST background. */
#define DC_GRID_SEP_GRAY 128

typedef struct dc_grid {
    int rows, cols;      /* number of tiles */
    int tile_w, tile_h;  /* tile size in source pixels (28 x 28 for MNIST) */
    int scale;           /* integer up-scaling factor, >= 1 */
    int sep;             /* separator and border width in pixels, >= 0 */
} dc_grid;

/* Output size by the formula above; *w = *h = 0 when g is invalid (a count or size < 1,
 * sep < 0) or the result would exceed DC_IMAGE_MAX_DIM / DC_IMAGE_MAX_PIXELS. */
void dc_grid_size(const dc_grid *g, int *w, int *h);

/* Render into out (W*H bytes, see dc_grid_size). tiles[r*cols + c] points to tile_h*tile_w
 * floats, or is NULL for a blank tile. DC_ERR_INVALID_ARG for an invalid grid. */
dc_status dc_grid_render(const dc_grid *g, const float *const *tiles, uint8_t *out);

#endif
