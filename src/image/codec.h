/* Internal to src/image: the PNG and JPEG codecs behind image.h's dc_image_read/probe/write.
 * Decoders get a stream opened by image.c (a regular file, positioned as stated) and return
 * the image "as stored": c = 1 for gray sources, 3 for colour and palette ones, alpha when the
 * source has any (alpha channel or tRNS). Encoders write one image to a stream; image.c makes
 * the write atomic. Every failure names `path` in its dc_fail detail. */
#ifndef DAECL_IMAGE_CODEC_H
#define DAECL_IMAGE_CODEC_H

#include <stdio.h>

#include "daecl/image.h"

/* fp is positioned after the 8 signature bytes, already checked. file_size is -1 if unknown. */
dc_status dc_png_decode(const char *path, FILE *fp, long long file_size, dc_image *out);
dc_status dc_png_probe_stream(const char *path, FILE *fp, dc_image_info *info);
/* bit_depth 8 or 16; img->c 1 or 3, alpha written when img->alpha. */
dc_status dc_png_encode(const char *name, FILE *fp, const dc_image *img, int bit_depth);

/* fp is positioned at the start of the file. */
dc_status dc_jpeg_decode(const char *path, FILE *fp, dc_image *out);
dc_status dc_jpeg_probe_stream(const char *path, FILE *fp, dc_image_info *info);
/* 8-bit, quality 1..100, img->c 1 or 3, no alpha (checked by the caller). */
dc_status dc_jpeg_encode(const char *name, FILE *fp, const dc_image *img, int quality);

/* Refuse sizes beyond DC_IMAGE_MAX_DIM / DC_IMAGE_MAX_PIXELS (and zero) with a detail naming
 * path; `what` says where the size comes from ("declared size"). */
dc_status dc_image_check_size(const char *path, const char *what, unsigned long w, unsigned long h);

/* Round v in [0,1] to 0..maxv (clamped, NaN -> 0). */
static inline unsigned dc_quantize(float v, unsigned maxv)
{
    if (!(v > 0.0f)) return 0;
    if (v >= 1.0f) return maxv;
    return (unsigned)(v * (float)maxv + 0.5f);
}

#endif
