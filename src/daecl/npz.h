/* NumPy files: .npy (one float32 array, format 1.0, little-endian) and .npz (a zip of .npy
 * entries, stored uncompressed, CRC-32 from zlib), built in memory for dc_write_file_atomic. */
#ifndef DAECL_NPZ_H
#define DAECL_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/status.h"

#define DC_NPY_MAX_DIMS 8

typedef struct dc_npy_array {
    const char *name; /* entry name in an .npz, without ".npy" */
    int ndims;
    int64_t dims[DC_NPY_MAX_DIMS];
    const float *data; /* C order, product of dims floats */
} dc_npy_array;

/* One .npy file (*data malloc'd). */
dc_status dc_npy_build(const dc_npy_array *a, void **data, size_t *size);
/* An .npz holding the arrays as NAME.npy (*data malloc'd). */
dc_status dc_npz_build(const dc_npy_array *arrays, int count, void **data, size_t *size);

#endif
