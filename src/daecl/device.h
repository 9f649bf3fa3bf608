/* OpenCL platforms and devices: listing, selection, one context + in-order queue per device.
 *
 * Selection order when the user names nothing: DAECL_DEVICE=P:D if set, else the first GPU,
 * else the first accelerator, else the first CPU (platforms in ICD order). */
#ifndef DAECL_DEVICE_H
#define DAECL_DEVICE_H

#include <CL/cl.h>
#include <stdio.h>

#include "daecl/status.h"

/* Counters of the kernel JIT (kernels.c); tests use them to prove the disk cache works. */
typedef struct dc_kernel_stats {
    int source_builds; /* programs compiled from source */
    int cache_loads;   /* programs loaded from an on-disk binary */
    int cache_rejects; /* cache entries found but unusable (corrupt, stale): rebuilt */
    int cache_writes;  /* binaries written to the disk cache */
} dc_kernel_stats;

struct dc_program_entry; /* kernels.c */
struct dc_device;

/* Called by dc_device_close before the context goes: modules that keep per-device state
 * (scratch buffers) register one, so nobody has to remember to release it. */
typedef void (*dc_device_cleanup)(struct dc_device *dev);
#define DC_DEVICE_MAX_CLEANUPS 8

typedef struct dc_device {
    cl_platform_id platform;
    cl_device_id id;
    cl_context ctx;
    cl_command_queue queue; /* in-order */
    int platform_index, device_index;
    cl_device_type type;
    char platform_name[128], platform_version[128];
    char name[128], vendor[128], driver[64], version[128], c_version[64];
    cl_uint compute_units;
    cl_ulong global_mem, max_alloc;
    size_t max_wg;
    struct dc_program_entry *programs; /* programs built for this device in this process */
    dc_kernel_stats stats;
    dc_device_cleanup cleanups[DC_DEVICE_MAX_CLEANUPS];
    int ncleanups;
} dc_device;

/* Print a clinfo-like table of every platform and device to out. */
dc_status dc_device_list(FILE *out);

/* Parse "P:D" or "D" (platform then defaults to -1) into indices; -1 means "not given". */
dc_status dc_device_parse(const char *spec, int *platform, int *device);

/* Open a device: platform/device -1 = not given (see selection order above). A device index
 * without a platform means platform 0. Errors say what exists and how to get a CPU driver. */
dc_status dc_device_open(int platform, int device, dc_device **out);
/* The default choice as above, but the nth device (0-based, modulo their number) of the chosen
 * type: rank n of a host takes device n when ranks share a host (daecl/dist.h). */
dc_status dc_device_open_nth(int nth, dc_device **out);
void dc_device_close(dc_device *dev);
/* Register fn to run at dc_device_close (once, however often it is registered). */
dc_status dc_device_add_cleanup(dc_device *dev, dc_device_cleanup fn);

/* "CPU", "GPU", "ACCEL" or "OTHER". */
const char *dc_device_type_name(cl_device_type t);
/* One line: "0:0 CPU pthread-skylake-avx512-AMD EPYC (Portable Computing Language, OpenCL C 1.2 PoCL)". */
void dc_device_describe(const dc_device *dev, char *buf, size_t len);

/* CL_OUT_OF_RESOURCES etc. for an OpenCL error code. */
const char *dc_cl_error_name(cl_int err);
/* Record "<what>: CL_..." and return DC_ERR_OPENCL, or DC_ERR_DEVICE_MEMORY for allocation
 * failures (CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_OUT_OF_HOST_MEMORY). */
dc_status dc_cl_fail(cl_int err, const char *what);

#define DC_CL(call, what)                                        \
    do {                                                         \
        cl_int dc_cl_e_ = (call);                                \
        if (dc_cl_e_ != CL_SUCCESS) return dc_cl_fail(dc_cl_e_, what); \
    } while (0)

#endif
