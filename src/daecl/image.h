/* dae-cl images: PNG read/write (libpng) and sample-grid composition.
 *
 * Pixel convention: grayscale float in [0,1], row-major, 0 = black. MNIST digits are white
 * (1) strokes on a black (0) background, and that is the domain the models are trained on.
 *
 * Reading (dc_png_read) accepts every PNG libpng decodes and turns it into gray:
 *   - gray 1/2/4/8/16-bit: values as stored, scaled to [0,1] (v / (2^depth - 1)), exact;
 *   - palette: expanded to RGB(A) through the palette (and tRNS), then as RGB(A);
 *   - RGB(A): luma with the Rec.601 weights  Y = 0.299 R + 0.587 G + 0.114 B;
 *   - alpha (gray+alpha, RGBA, tRNS): composited over BLACK, Y' = Y * alpha. Transparent
 *     pixels therefore become background (0), as in MNIST; a digit drawn white-on-transparent
 *     comes out white-on-black. (A dark digit on a transparent background comes out all black:
 *     give such images an opaque white background and invert them first.)
 *   - interlaced (Adam7) files are de-interlaced;
 *   - gAMA/sRGB/iCCP are ignored: stored sample values are used as they are.
 * dc_image.bit_depth records 16 when the source had 16-bit samples, else 8, so a 16-bit file
 * can be written back at 16 bits without loss.
 * Refused with DC_ERR_FORMAT and a one-line detail naming the file: not a PNG (signature),
 * truncated data, CRC errors in critical chunks (IHDR, PLTE, IDAT, IEND), corrupt compressed
 * data, zero width or height, and absurd declared sizes (width or height > DC_IMAGE_MAX_DIM, or
 * more than DC_IMAGE_MAX_PIXELS pixels, or more pixel data than the file could possibly hold)
 * before any pixel memory is allocated. Open/read failures are DC_ERR_IO. libpng warnings are
 * never printed; they are only kept for the error detail.
 *
 * Reading opens regular files only (fileio.h): a FIFO, device or directory is refused, never
 * waited on.
 *
 * Writing (dc_png_write, dc_png_write_gray8) replaces path atomically (see daecl/fileio.h: temp
 * file beside it, fsync, rename; a directory, FIFO, device node or dangling symlink at path is
 * refused; a symlink to a regular file has its target replaced). On any failure the temp file
 * is removed and an existing file at path is left untouched. Path "-" writes to standard
 * output. */
#ifndef DAECL_IMAGE_H
#define DAECL_IMAGE_H

#include <stdint.h>

#include "daecl/status.h"

#define DC_IMAGE_MAX_DIM (1 << 20)     /* largest width or height accepted */
#define DC_IMAGE_MAX_PIXELS (1 << 28)  /* largest w*h accepted */

typedef struct dc_image {
    float *px;     /* h*w gray values in [0,1], row-major */
    int w, h;
    int bit_depth; /* 8 or 16: the depth the source had, so 16-bit in can give 16-bit out */
} dc_image;

/* Allocate a zeroed w x h image (bit_depth 8). img is left empty ({0}) on failure. */
dc_status dc_image_alloc(dc_image *img, int w, int h);
/* Free the pixels and reset *img to {0}; safe on an empty or already freed image. */
void dc_image_free(dc_image *img);

/* Read a PNG (see above) into *out, which is allocated here; *out is {0} on failure. */
dc_status dc_png_read(const char *path, dc_image *out);

/* Write img as a gray PNG with bit_depth 8 or 16 (values clamped to [0,1], NaN -> 0, rounded
 * to nearest). Atomic, see above. */
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
