/* Safe file access shared by every reader and writer of dae-cl: checkpoints, PNGs, IDX files,
 * the kernel cache.
 *
 * Reading: dc_open_regular() refuses anything that is not a regular file (directory, FIFO,
 * device node, socket) with one line naming the path and what it is, and never blocks in
 * open(): the file is opened with O_NONBLOCK and checked with fstat() before any read.
 *
 * Writing: every output is replaced atomically. The data goes to "<target>.tmp.<pid>" in the
 * target's directory (created exclusively, never through a symlink), is flushed and fsync'ed,
 * then renamed over the target, and the directory is fsync'ed. On any failure the temporary is
 * removed and the previous file is left untouched. The output path itself must be missing, a
 * regular file, or a symlink to a regular file (then the link's target is replaced atomically
 * and the link stays); a directory, FIFO, device node, socket or dangling symlink is refused,
 * so `-o /dev/full` or a FIFO never gets turned into a regular file. */
#ifndef DAECL_FILEIO_H
#define DAECL_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "daecl/status.h"

/* Open path read-only; *fd is a blocking descriptor of a regular file, *size its length (size
 * may be NULL). `what` names the expected content for messages ("a PNG file"); may be NULL. */
dc_status dc_open_regular(const char *path, const char *what, int *fd, long long *size);
/* The same as a FILE* ("rb"). */
dc_status dc_fopen_regular(const char *path, const char *what, FILE **fp, long long *size);

/* An atomic replacement in progress: write to fp, then commit or abort. */
typedef struct dc_atomic_file {
    char *target; /* the file that will be replaced (a symlink resolved) */
    char *tmp;    /* the temporary beside it */
    FILE *fp;
    int slot;     /* in-flight registry slot (see dc_atomic_remove_inflight), -1 if none */
} dc_atomic_file;

/* Check the output path (see above) and create the temporary. */
dc_status dc_atomic_begin(const char *path, dc_atomic_file *f);
/* Flush, fsync, close, rename into place, fsync the directory. Removes the temporary on
 * failure. Failure details name the file replaced. */
dc_status dc_atomic_commit(dc_atomic_file *f);
/* Close and remove the temporary; the target is untouched. Safe on a zeroed struct. */
void dc_atomic_abort(dc_atomic_file *f);

/* Write `size` bytes to path atomically. */
dc_status dc_write_file_atomic(const char *path, const void *data, size_t size);

/* Async-signal-safe: remove the temporaries of all atomic writes in flight in this process,
 * for a signal handler that is about to end the process. */
void dc_atomic_remove_inflight(void);

/* Whether path can be an output (missing, a regular file or a symlink to one); the detail says
 * why not. Lets a caller refuse before doing the work. */
dc_status dc_check_output_path(const char *path);

#endif
