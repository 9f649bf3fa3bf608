/* Fuzz the IDX reader (raw and gzip, image and label files). */
#include <stdlib.h>

#include "daecl/dataset.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_write(data, size);
    uint8_t *out = NULL;
    size_t n = 0;
    int h = 0, w = 0;
    if (dc_idx_read_images(path, size & 1, &out, &n, &h, &w) == DC_OK) {
        /* The result must be as large as the header says: touch every byte. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < n * (size_t)h * (size_t)w; i++) sink ^= out[i];
        free(out);
    }
    if (dc_idx_read_labels(path, &out, &n) == DC_OK) {
        volatile uint8_t sink = out[n - 1];
        (void)sink;
        free(out);
    }
    return 0;
}
