/* dae-cl status codes and error details.
 *
 * Every library function returns a dc_status. On failure it also records a one-line,
 * human-readable detail (per thread) with dc_fail(): the file or object concerned and what is
 * wrong, e.g. "data/t10k-images-idx3-ubyte: truncated: header says 10000 images of 28x28, file
 * holds 9876". Only main() prints and exits. */
#ifndef DAECL_STATUS_H
#define DAECL_STATUS_H

#include <stdarg.h>

typedef enum dc_status {
    DC_OK = 0,
    DC_ERR_INVALID_ARG,   /* a caller or user passed a bad value (flag, spec, size) */
    DC_ERR_IO,            /* open/read/write/rename failed */
    DC_ERR_FORMAT,        /* a file is malformed (IDX, PNG, checkpoint, cache entry) */
    DC_ERR_NOMEM,         /* host allocation failed */
    DC_ERR_OPENCL,        /* an OpenCL call failed (detail names the CL_ error) */
    DC_ERR_BUILD,         /* a kernel failed to compile (detail holds the build log) */
    DC_ERR_NO_DEVICE,     /* no OpenCL platform/device, or the index is out of range */
    DC_ERR_DEVICE_MEMORY, /* the device ran out of memory */
    DC_ERR_UNSUPPORTED,   /* valid request the device or build cannot do */
    DC_ERR_NONFINITE,     /* NaN/Inf appeared (training diverged) */
    DC_ERR_INTERRUPTED,   /* stopped by SIGINT/SIGTERM */
    DC_ERR_MISMATCH,      /* data does not match what is expected (architecture, checksum) */
    DC_STATUS_COUNT
} dc_status;

/* Short fixed name of a status ("format error"). */
const char *dc_strerror(dc_status s);

/* Record a printf-style detail for this thread and return s, so callers can write
 * `return dc_fail(DC_ERR_FORMAT, "%s: bad magic 0x%08x", path, magic);` */
dc_status dc_fail(dc_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
dc_status dc_failv(dc_status s, const char *fmt, va_list ap);

/* The last detail recorded on this thread ("" if none). */
const char *dc_error_detail(void);
void dc_clear_error(void);

/* Propagate a failure unchanged. */
#define DC_TRY(expr)                          \
    do {                                      \
        dc_status dc_try_s_ = (expr);         \
        if (dc_try_s_ != DC_OK) return dc_try_s_; \
    } while (0)

#endif
