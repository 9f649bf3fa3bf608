/* Public API: version, errors, devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

_Static_assert(DAECL_OK == (int)DC_OK && DAECL_ERR_INVALID_ARG == (int)DC_ERR_INVALID_ARG &&
                   DAECL_ERR_IO == (int)DC_ERR_IO && DAECL_ERR_FORMAT == (int)DC_ERR_FORMAT &&
                   DAECL_ERR_NOMEM == (int)DC_ERR_NOMEM && DAECL_ERR_OPENCL == (int)DC_ERR_OPENCL &&
                   DAECL_ERR_BUILD == (int)DC_ERR_BUILD && DAECL_ERR_NO_DEVICE == (int)DC_ERR_NO_DEVICE &&
                   DAECL_ERR_DEVICE_MEMORY == (int)DC_ERR_DEVICE_MEMORY &&
                   DAECL_ERR_UNSUPPORTED == (int)DC_ERR_UNSUPPORTED &&
                   DAECL_ERR_NONFINITE == (int)DC_ERR_NONFINITE &&
                   DAECL_ERR_INTERRUPTED == (int)DC_ERR_INTERRUPTED &&
                   DAECL_ERR_MISMATCH == (int)DC_ERR_MISMATCH && DC_STATUS_COUNT == DC_ERR_MISMATCH + 1,
               "daecl_status and dc_status must keep the same numbers");

const char *daecl_version(void) { return DAECL_VERSION_STRING; }

const char *daecl_status_name(daecl_status s) { return dc_strerror((dc_status)s); }

const char *daecl_last_error(void) { return dc_error_detail(); }

daecl_status api_null(const char *what) { return api_status(dc_fail(DC_ERR_INVALID_ARG, "%s must not be NULL", what)); }

#define MAX_PLATFORMS 16
#define MAX_DEVICES 32

static daecl_device_type public_type(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return DAECL_DEVICE_GPU;
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return DAECL_DEVICE_ACCELERATOR;
    if (t & CL_DEVICE_TYPE_CPU) return DAECL_DEVICE_CPU;
    return DAECL_DEVICE_OTHER;
}

static void info_of(cl_platform_id p, cl_device_id d, int pi, int di, daecl_device_info *out)
{
    memset(out, 0, sizeof *out);
    out->platform = pi;
    out->device = di;
    cl_device_type t = 0;
    cl_uint cu = 0;
    cl_ulong mem = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof t, &t, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof out->name - 1, out->name, NULL);
    clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof out->version - 1, out->version, NULL);
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof out->platform_name - 1, out->platform_name, NULL);
    out->type = public_type(t);
    out->compute_units = cu;
    out->global_mem = mem;
}

/* Same order as dc_device_open's indices: platforms as the ICD loader lists them, each one's
 * devices of all types. */
daecl_status daecl_devices(daecl_device_info *out, int max, int *count)
{
    if (!count) return api_null("daecl_devices: count");
    if (max > 0 && !out) return api_null("daecl_devices: out (with max > 0)");
    *count = 0;
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no driver installed */ || np == 0) return DAECL_OK;
    if (err != CL_SUCCESS) return api_status(dc_cl_fail(err, "clGetPlatformIDs"));
    if (np > MAX_PLATFORMS) np = MAX_PLATFORMS;
    for (cl_uint p = 0; p < np; p++) {
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd) != CL_SUCCESS) continue;
        if (nd > MAX_DEVICES) nd = MAX_DEVICES;
        for (cl_uint i = 0; i < nd; i++) {
            if (*count < max) info_of(plats[p], devs[i], (int)p, (int)i, &out[*count]);
            ++*count;
        }
    }
    return DAECL_OK;
}

daecl_status daecl_device_open(int platform, int device, daecl_device **out)
{
    if (!out) return api_null("daecl_device_open: out");
    *out = NULL;
    daecl_device *d = calloc(1, sizeof *d);
    if (!d) return api_status(dc_fail(DC_ERR_NOMEM, "daecl_device_open: out of memory"));
    dc_status s = dc_device_open(platform, device, &d->dc);
    if (s) {
        free(d);
        return api_status(s);
    }
    *out = d;
    return DAECL_OK;
}

void daecl_device_close(daecl_device *dev)
{
    if (!dev) return;
    dc_device_close(dev->dc);
    free(dev);
}

daecl_status daecl_device_get_info(const daecl_device *dev, daecl_device_info *info)
{
    if (!dev || !info) return api_null("daecl_device_get_info: dev and info");
    info_of(dev->dc->platform, dev->dc->id, dev->dc->platform_index, dev->dc->device_index, info);
    return DAECL_OK;
}
