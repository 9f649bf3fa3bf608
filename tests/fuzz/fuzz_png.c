/* Fuzz the PNG reader (every colour type, palette, interlace, damage). */
#include "daecl/image.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dc_image img;
    if (dc_png_read(fuzz_file_write(data, size), &img) == DC_OK) {
        volatile float sink = img.px[(size_t)img.w * (size_t)img.h - 1];
        (void)sink;
        if (!(img.px[0] >= 0.0f && img.px[0] <= 1.0f)) abort(); /* values are promised in [0,1] */
        dc_image_free(&img);
    }
    return 0;
}
