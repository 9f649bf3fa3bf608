/* A growable byte buffer for building files in memory (checkpoints, ONNX, .npz). An allocation
 * failure sets oom and makes later appends no-ops: check oom once at the end. */
#ifndef DAECL_BYTES_H
#define DAECL_BYTES_H

#include <stddef.h>

typedef struct dc_bytes {
    unsigned char *p;
    size_t len, cap;
    int oom;
} dc_bytes;

void dc_bytes_put(dc_bytes *b, const void *data, size_t n);

#endif
