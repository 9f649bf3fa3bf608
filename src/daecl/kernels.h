/* Kernel JIT with an on-disk binary cache.
 *
 * A program is one cl/ file compiled with one option string (-D defines). The first request for
 * (file, options) on a device builds the program — from the disk cache when a valid binary is
 * there, else from source — and creates all its kernels; later requests return the same
 * cl_kernel objects (owned by the device, released by dc_device_close). Kernel objects are not
 * thread-safe: use a device from one thread.
 *
 * Sources: embedded in the binary at build time; DAECL_KERNEL_DIR=dir reads dir/<file> instead
 * where that file exists. The files that are only built without options (util.cl, noise.cl,
 * resample.cl, ...; list in kernels.c) form one program: a request for any of them with empty
 * options builds or finds that program.
 * Cache: $DAECL_CACHE_DIR, else $XDG_CACHE_HOME/dae-cl, else ~/.cache/dae-cl; one file per
 * program named by a 64-bit hash of (source, options, device, driver, platform); the file also
 * stores the full key and is only used when the key matches exactly. Written to a temp file and
 * renamed. DAECL_NO_KERNEL_CACHE=1 disables it. A corrupt or stale entry is rebuilt from source.
 * On PoCL with its own kernel cache on (POCL_KERNEL_CACHE unset or not 0) this cache is skipped:
 * PoCL caches builds itself, and extracting its binaries costs more than building (kernels.c);
 * DAECL_KERNEL_CACHE_BINARIES=1 uses it there too. dev->stats counts builds, disk loads and
 * in-memory hits. */
#ifndef DAECL_KERNELS_H
#define DAECL_KERNELS_H

#include "daecl/device.h"

/* Get kernel `kernel_name` of cl/`file` built with `options` (may be NULL or ""). On a build
 * failure returns DC_ERR_BUILD with the file name and the full build log in the detail. */
dc_status dc_kernel_get(dc_device *dev, const char *file, const char *options,
                        const char *kernel_name, cl_kernel *out);

/* Whether the kernel cache directory can be created and written; the detail says why not
 * (the cache is then skipped silently, so a program calls this once to tell the user). */
dc_status dc_kernel_cache_check(void);
/* The first kernel cache entry this process could not write (e.g. a full disk), "" if none:
 * the run goes on uncached, so a program tells the user once. */
const char *dc_kernel_cache_write_problem(void);

/* Called after every program built from source, with the seconds it took (process-wide; NULL
 * removes it): lets a program tell its user once that kernels are being compiled. A build that
 * a driver served from its own cache (PoCL) takes well under a second. */
typedef void (*dc_build_observer)(void *ctx, const char *file, double seconds);
void dc_kernel_set_build_observer(dc_build_observer fn, void *ctx);

/* Build (or load from cache) without fetching a kernel: used to warm up and by tests. */
dc_status dc_program_prepare(dc_device *dev, const char *file, const char *options);

/* The source text of cl/`file` (embedded or from DAECL_KERNEL_DIR); caller frees. */
dc_status dc_kernel_source(const char *file, char **text);

/* Release every program/kernel of the device (also done by dc_device_close). */
void dc_programs_release(dc_device *dev);

/* Enqueue a kernel over `global` items (1-3 dims); global is rounded up to a multiple of
 * local, so kernels must bounds-check. local NULL picks a small explicit size (PoCL makes one
 * huge work-group per core for a NULL local size). `what` names the op in error messages. */
dc_status dc_launch(dc_device *dev, cl_kernel k, cl_uint dims, const size_t *global,
                    const size_t *local, const char *what);

/* Set kernel argument i from a variable: DC_ARG(k, 0, buf); */
#define DC_ARG(k, i, v) clSetKernelArg((k), (i), sizeof(v), &(v))

#endif
