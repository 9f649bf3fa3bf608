/* Sample-grid composition: layout formula and colours are documented in image.h. */
#include "daecl/image.h"

#include <stdint.h>
#include <string.h>

/* Output size in 64 bits; 0 when the grid is invalid or too large. */
static int grid_size64(const dc_grid *g, int64_t *w, int64_t *h)
{
    *w = *h = 0;
    if (!g || g->rows < 1 || g->cols < 1 || g->tile_w < 1 || g->tile_h < 1 || g->scale < 1 ||
        g->sep < 0)
        return 0;
    /* Each factor is bounded first so the products below cannot overflow int64. */
    const int64_t lim = DC_IMAGE_MAX_DIM;
    if (g->rows > lim || g->cols > lim || g->tile_w > lim || g->tile_h > lim || g->scale > lim ||
        g->sep > lim)
        return 0;
    int64_t W = (int64_t)g->cols * g->tile_w * g->scale + ((int64_t)g->cols + 1) * g->sep;
    int64_t H = (int64_t)g->rows * g->tile_h * g->scale + ((int64_t)g->rows + 1) * g->sep;
    if (W > lim || H > lim || W * H > DC_IMAGE_MAX_PIXELS) return 0;
    *w = W;
    *h = H;
    return 1;
}

void dc_grid_size(const dc_grid *g, int *w, int *h)
{
    int64_t W, H;
    grid_size64(g, &W, &H);
    if (w) *w = (int)W;
    if (h) *h = (int)H;
}

static inline uint8_t to_u8(float v)
{
    if (!(v > 0.0f)) return 0; /* also NaN */
    if (v >= 1.0f) return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

dc_status dc_grid_render(const dc_grid *g, const float *const *tiles, uint8_t *out)
{
    int64_t W64, H64;
    if (!grid_size64(g, &W64, &H64))
        return dc_fail(DC_ERR_INVALID_ARG,
                       "grid: invalid layout (%d x %d tiles of %dx%d, scale %d, sep %d)",
                       g ? g->rows : 0, g ? g->cols : 0, g ? g->tile_w : 0, g ? g->tile_h : 0,
                       g ? g->scale : 0, g ? g->sep : 0);
    if (!tiles || !out) return dc_fail(DC_ERR_INVALID_ARG, "grid: NULL tiles or output buffer");

    const size_t W = (size_t)W64, H = (size_t)H64;
    const size_t sc = (size_t)g->scale, sep = (size_t)g->sep;
    const size_t tw = (size_t)g->tile_w, th = (size_t)g->tile_h;
    memset(out, DC_GRID_SEP_GRAY, W * H); /* separators and border; tiles overwrite the rest */

    for (size_t r = 0; r < (size_t)g->rows; r++) {
        for (size_t c = 0; c < (size_t)g->cols; c++) {
            const float *t = tiles[r * (size_t)g->cols + c];
            size_t x0 = sep + c * (tw * sc + sep), y0 = sep + r * (th * sc + sep);
            for (size_t ty = 0; ty < th; ty++) {
                uint8_t *dst = out + (y0 + ty * sc) * W + x0;
                if (t) {
                    const float *src = t + ty * tw;
                    for (size_t tx = 0; tx < tw; tx++)
                        memset(dst + tx * sc, to_u8(src[tx]), sc);
                } else {
                    memset(dst, 0, tw * sc);
                }
                /* The other scale-1 rows of this source row are copies of the first. */
                for (size_t k = 1; k < sc; k++) memcpy(dst + k * W, dst, tw * sc);
            }
        }
    }
    return DC_OK;
}
