/* dae-cl datasets: IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), read into host memory or
 * left in their file and read sample by sample (dc_dataset_open).
 *
 * IDX is big-endian: two zero bytes, a type byte (0x08 = unsigned byte), a dimension count, one
 * uint32 per dimension, then the data row-major. Files may be raw or gzip-compressed; gzip is
 * recognised by its magic bytes (1f 8b), not by the file name. Every malformed file is refused
 * with DC_ERR_FORMAT and a one-line detail naming the file and the problem (dc_error_detail()).
 *
 * Images stay uint8 exactly as stored: normalisation to [0,1] happens on the device. */
#ifndef DAECL_DATASET_H
#define DAECL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/status.h"

/* Largest payload (n*h*w bytes) the reader accepts; larger headers are refused before any
 * allocation. EMNIST byclass train, the biggest common IDX file, is ~0.55 GB. */
#define DC_IDX_MAX_BYTES ((size_t)1 << 31)

struct dc_dataset_file;

typedef struct dc_dataset {
    uint8_t *images;   /* n samples of c planes of h*w values, row-major, as stored: uint8, or
                          uint16 in host byte order when depth == 2; NULL when file is set */
    uint8_t *labels;   /* n labels or NULL if no label file */
    size_t n;
    int h, w;
    int c, depth;      /* planes per sample, bytes per value; 0 reads as 1 (IDX sets) */
    struct dc_dataset_file *file; /* dc_dataset_open: the samples stay in this raw IDX file */
} dc_dataset;

static inline int dc_dataset_channels(const dc_dataset *d) { return d->c > 0 ? d->c : 1; }
static inline int dc_dataset_depth(const dc_dataset *d) { return d->depth > 0 ? d->depth : 1; }
/* Bytes of one sample: c * h * w * depth. */
static inline size_t dc_dataset_sample_bytes(const dc_dataset *d)
{
    return (size_t)dc_dataset_channels(d) * (size_t)d->h * (size_t)d->w * (size_t)dc_dataset_depth(d);
}

/* Read an IDX image file (type 0x08, 3 dims N x H x W), raw or gzip. transpose != 0 swaps H and
 * W of every image (EMNIST stores images transposed); *h and *w then describe the result.
 * On success *out is malloc'd (free() it); on failure *out is NULL and nothing leaks. */
dc_status dc_idx_read_images(const char *path, int transpose, uint8_t **out, size_t *n, int *h,
                             int *w);

/* Read an IDX label file (magic 0x00000801: type 0x08, 1 dim). */
dc_status dc_idx_read_labels(const char *path, uint8_t **out, size_t *n);

/* Write IDX files, gzip-compressed when gzip != 0. The file is written to a temporary name in
 * the same directory and renamed into place, so a failed write never leaves a partial file. */
dc_status dc_idx_write_images(const char *path, const uint8_t *img, size_t n, int h, int w,
                              int gzip);
dc_status dc_idx_write_labels(const char *path, const uint8_t *lab, size_t n, int gzip);

/* Load a split from a directory of IDX files. split "train" looks for train-images-idx3-ubyte
 * and train-labels-idx1-ubyte, "test" (or "t10k") for t10k-images-idx3-ubyte and
 * t10k-labels-idx1-ubyte; each name may also be dotted (train-images.idx3-ubyte) and may end in
 * .gz. Failing those, a single file in the directory ending in -<split>-images-idx3-ubyte[.gz]
 * is taken (EMNIST: emnist-digits-train-images-idx3-ubyte.gz). Labels are optional (NULL when
 * absent); when present their count must equal the image count. A missing directory or image
 * file gives DC_ERR_IO with a hint to run dae-cl-fetch-mnist (tools/fetch-mnist in a source tree).
 * *out is zeroed on failure. */
dc_status dc_dataset_load(const char *dir, const char *split, int transpose, dc_dataset *out);

/* As dc_dataset_load, but a raw (not gzip), untransposed image file stays on disk: the header
 * and the file size are checked here, the samples are read when wanted (dc_dataset_read), so
 * the process holds none of them (the kernel's page cache may, shared and reclaimable).
 * Training and evaluation open their sets this way: MNIST's 55 MB stay out of the process. */
dc_status dc_dataset_open(const char *dir, const char *split, int transpose, dc_dataset *out);

/* Copy samples [first, first + count) to dst (count * dc_dataset_sample_bytes bytes), from
 * memory or from the file; a file that no longer holds them (it changed while in use) or a
 * failed read is DC_ERR_IO naming the file. Safe from several threads at once. */
dc_status dc_dataset_read(const dc_dataset *ds, size_t first, size_t count, uint8_t *dst);

/* 1 when dir holds an IDX training set (train-images-idx3-ubyte or a variant above), or is not
 * a directory at all (dc_dataset_load then says what is wrong); 0 for any other directory (a
 * folder of images, daecl/imageset.h). */
int dc_dataset_is_idx(const char *dir);

/* Keep only the first n samples (n == 0 or n >= ds->n: no-op). */
void dc_dataset_truncate(dc_dataset *ds, size_t n);

/* Free the arrays, close the file and zero the struct; safe on a zeroed or already freed dataset. */
void dc_dataset_free(dc_dataset *ds);

/* Mean pixel value in [0,1] over all images (0 for an empty dataset or a failed read). MNIST
 * train: 0.1307. */
double dc_dataset_mean(const dc_dataset *ds);

#endif
