/* Double-buffered batch loader: a host thread shuffles and gathers, the device never waits for it.
 *
 *   loader thread: permutation of epoch e ─► gather batch b+1 (uint8) into staging slot B
 *   main thread:   dc_loader_next() ─► non-blocking clEnqueueWriteBuffer of slot A into device
 *                  buffers A (pixels uint8[n*h*w], indices uint32[n]) ─► event ─► noise kernel
 *
 * Two staging slots, each a pinned buffer (CL_MEM_ALLOC_HOST_PTR, mapped once), and two pairs of
 * device buffers. A slot goes back to the loader thread only when the write that reads it has
 * completed (the loader thread waits on that write's event), so the host memory is never
 * overwritten while the copy reads it. The device buffers are reused every other batch; the
 * queue is in order, so the write of batch b+2 runs after the kernels that read batch b.
 *
 * Order: with shuffle, epoch e visits the samples in a Fisher–Yates permutation drawn from a
 * splitmix64 generator seeded by (seed, e) (dc_loader_permutation), so the order of any epoch can
 * be recreated on resume; without shuffle the order is 0, 1, 2, ... (validation).
 *
 * Threading: every function except dc_loader_stats_get and dc_loader_set_delay_us must be
 * called from the thread that owns the device queue. */
#ifndef DAECL_LOADER_H
#define DAECL_LOADER_H

#include <stdint.h>

#include "daecl/dataset.h"
#include "daecl/device.h"
#include "daecl/imageset.h"
#include "daecl/status.h"

typedef struct dc_loader dc_loader; /* opaque */

typedef struct dc_loader_config {
    const dc_dataset *data; /* must outlive the loader; n <= UINT32_MAX; NULL with patches */
    int batch;              /* images per batch, > 0 */
    int shuffle;            /* 0: sequential order (validation) */
    uint64_t seed;          /* shuffle seed */
    int drop_last;          /* 0: the last partial batch is used (Keras behaviour) */
    int parts, part;        /* parts > 1: this loader hands out only its share, rows
                               dc_dist_share(total, part, parts) of every batch (data-parallel
                               ranks); 0 or 1: whole batches */
    /* Patches instead of whole samples (daecl/patches.h): when patches is set, an epoch is
     * patches_per_epoch random patch x patch crops (c planes, the set's depth), row r of batch b
     * is patch index b * batch + r (its indices entry, the noise's sample index), drawn with
     * seed; shuffle is ignored. */
    const dc_imageset *patches;
    int patch, augment;
    uint32_t patches_per_epoch;
} dc_loader_config;

/* Allocate the staging slots and device buffers. Refuses an empty dataset, batch <= 0, and a
 * batch larger than the dataset with drop_last (an epoch would be empty). */
dc_status dc_loader_create(dc_device *dev, const dc_loader_config *cfg, dc_loader **out);

/* Begin epoch `epoch` (0-based): stops any epoch in progress, then starts the thread gathering
 * from batch start_batch (resume skips batches already done; 0 normally; equal to
 * dc_loader_batches_per_epoch gives an empty epoch). */
dc_status dc_loader_start_epoch(dc_loader *l, uint32_t epoch, int start_batch);

int dc_loader_batches_per_epoch(const dc_loader *l);

/* Rows of the whole batch that the last dc_loader_next handed out a share of (0 at the end of
 * the epoch). With parts > 1 a share may be empty (*n == 0) while the batch is not: loops over
 * shares end when this is 0. */
int dc_loader_batch_total(const dc_loader *l);

/* Next batch of the epoch: *n images (the last batch may be partial), the device buffers holding
 * them (pixels: n samples of dc_dataset_sample_bytes each, uint8[n*h*w] for IDX; indices uint32[n] = dataset sample of each row) and the upload event
 * to wait on (owned by the loader, valid until the next call). The upload is enqueued on the
 * device's in-order queue, so kernels enqueued after this call see the batch; the buffers are
 * overwritten by the upload of the batch after next, which runs after every command enqueued
 * before it. pixels, indices and ready may be NULL when not wanted. Returns DC_OK with *n == 0
 * (and NULL buffers / event) at the end of the epoch, and on every call after it. */
dc_status dc_loader_next(dc_loader *l, int *n, cl_mem *pixels, cl_mem *indices, cl_event *ready);

/* consumer_waits: batches the main thread had to wait for (the loader too slow: the device
 * idles); producer_waits: batches the loader gathered only after waiting for a free slot (the
 * device is the bottleneck: expected). batches: batches handed out since creation. */
typedef struct dc_loader_stats {
    long batches, consumer_waits, producer_waits;
    long gathered;          /* batches gathered by the loader thread */
    double gather_seconds;  /* host time spent gathering them (copies, patch draws) */
} dc_loader_stats;
void dc_loader_stats_get(const dc_loader *l, dc_loader_stats *s);

/* For tests: an artificial delay, in microseconds, after gathering each batch. */
void dc_loader_set_delay_us(dc_loader *l, int us);

/* Stop and join the thread, wait for pending uploads, release everything. Safe mid-epoch and on
 * NULL. */
void dc_loader_destroy(dc_loader *l);

/* The order in which epoch `epoch` visits n samples with this seed: perm[i] = sample of position
 * i (Fisher–Yates driven by splitmix64 seeded from (seed, epoch), unbiased bounded draws). */
void dc_loader_permutation(uint64_t seed, uint32_t epoch, uint32_t n, uint32_t *perm);

#endif
