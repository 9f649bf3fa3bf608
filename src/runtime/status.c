#include "daecl/status.h"

#include <stdio.h>
#include <string.h>

/* Large enough for a kernel build log. */
static _Thread_local char detail[32768];

/* Indexed by dc_status; the static assert below keeps the table in step with the enum. */
static const char *const status_names[] = {
    [DC_OK] = "ok",
    [DC_ERR_INVALID_ARG] = "invalid argument",
    [DC_ERR_IO] = "I/O error",
    [DC_ERR_FORMAT] = "format error",
    [DC_ERR_NOMEM] = "out of host memory",
    [DC_ERR_OPENCL] = "OpenCL error",
    [DC_ERR_BUILD] = "kernel build failed",
    [DC_ERR_NO_DEVICE] = "no OpenCL device",
    [DC_ERR_DEVICE_MEMORY] = "out of device memory",
    [DC_ERR_UNSUPPORTED] = "unsupported",
    [DC_ERR_NONFINITE] = "non-finite value",
    [DC_ERR_INTERRUPTED] = "interrupted",
    [DC_ERR_MISMATCH] = "mismatch",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == DC_STATUS_COUNT,
               "status_names must name every dc_status");

const char *dc_strerror(dc_status s)
{
    if ((unsigned)s >= DC_STATUS_COUNT) return "unknown status";
    return status_names[s];
}

dc_status dc_failv(dc_status s, const char *fmt, va_list ap)
{
    /* Format into a scratch buffer first: callers often wrap the previous detail, e.g.
     * dc_fail(s, "%s: %s", path, dc_error_detail()), and source and target must not overlap. */
    static _Thread_local char scratch[sizeof detail];
    vsnprintf(scratch, sizeof scratch, fmt, ap);
    memcpy(detail, scratch, sizeof detail);
    return s;
}

dc_status dc_fail(dc_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dc_failv(s, fmt, ap);
    va_end(ap);
    return s;
}

const char *dc_error_detail(void) { return detail; }

void dc_clear_error(void) { detail[0] = '\0'; }
