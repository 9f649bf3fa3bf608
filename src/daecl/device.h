/* OpenCL platforms and devices: listing, selection, one context + in-order queue per device.
 *
 * Selection order when the user names nothing: DAECL_DEVICE (P:D, D, or a type: gpu | cpu |
 * accel) if set, else the first GPU, else the first accelerator, else the first CPU (platforms
 * in ICD order). */
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
    long memory_hits;  /* requests served by a program this device already holds */
} dc_kernel_stats;

struct dc_program_entry; /* kernels.c */
struct dc_device;

/* The two conv implementations (ops.h / conv_gemm.h). */
typedef enum dc_conv_algo {
    DC_CONV_DIRECT = 0, /* cl/conv2d.cl: register-blocked direct kernels (CPU-tuned) */
    DC_CONV_GEMM = 1,   /* cl/im2col.cl + CLBlast SGEMM (GPU) */
} dc_conv_algo;

/* Weight-gradient form of the direct conv (cl/conv2d.cl). */
typedef enum dc_conv_dw {
    DC_CONV_DW_AUTO = 0,  /* by shape: lanes over channels when cout >= 8 and cin >= 2 */
    DC_CONV_DW_ROWS,      /* lanes over pixels (conv_dw) */
    DC_CONV_DW_CHANNELS,  /* lanes over output channels (dz_prep + conv_dwc) */
} dc_conv_dw;

/* Vector lanes of the direct conv's forward and input gradient (cl/conv2d.cl). */
typedef enum dc_conv_lanes {
    DC_CONV_LANES_AUTO = 0, /* by shape: over output channels where conv_fwd_lco/_dx_lco apply */
    DC_CONV_LANES_PIXELS,   /* along image rows (rows_block) */
    DC_CONV_LANES_CHANNELS, /* over output channels where the shape allows, else rows (as
                             * auto since auto has no width limit; kept for scripts) */
} dc_conv_lanes;

/* Plan choices of the ops on this device. dc_device_open fills them once: defaults from the
 * device (type, name), then the environment overrides named below (tuning, and reproducing
 * another device's plans on this one); nothing reads the environment after that. Tests and
 * tools set the fields directly. Every field changes only how work is split, never results
 * beyond float rounding. */
typedef struct dc_device_options {
    dc_conv_algo conv_algo; /* DAECL_CONV=direct|gemm; default gemm on GPUs, direct elsewhere */
    int conv_ws;            /* DAECL_CONV_WS=0|1: 0 = never the weight-stationary rows order */
    int conv_up_fold;       /* DAECL_CONV_UP_FOLD=0|1: 0 = convs never read an upsampling in
                             * place (dc_conv2d_upsampled_fits) nor write its input gradient in
                             * training (dc_conv2d_upgrad_fits) */
    int conv_pool_fold;     /* DAECL_CONV_POOL_FOLD=0|1: 0 = convs never write the max pool of
                             * their output instead of it: inference (dc_conv2d_maxpool_fits)
                             * and training's first layer (dc_conv2d_pooled_out_fits) */
    int conv_up_phases;     /* DAECL_CONV_UP_PHASES=0|1: 0 = a 3x3 conv reading an upsampling in
                             * place runs all 9 taps, not its four 2x2 phases (cl/conv2d.cl UPPH;
                             * the phases round differently) */
    dc_conv_dw conv_dw;     /* DAECL_CONV_DW=rows|channels */
    dc_conv_lanes conv_lanes; /* DAECL_CONV_LANES=pixels|channels */
    int dw_chunks;          /* DAECL_CONV_DW_CHUNKS=N: batch chunks for dW (0 = by compute units) */
    int gemm_chunk;         /* DAECL_CONV_GEMM_CHUNK=N: images per GEMM (0 = by memory) */
    /* DAECL_LOOP_LIMIT=N: the device silently ends a work-item's loops after N iterations in
     * total (0 = no limit). Mesa's llvmpipe (rusticl, clover) does, at 65535; the plans then
     * split work-items' loops below it (see ops.h). */
    unsigned long loop_limit;
    /* Set by programs that only run models forward (denoise): conv programs are built
     * without their backward kernels, in about half the compile time; a backward op then fails
     * naming the kernel it lacks. */
    int forward_only;
} dc_device_options;

/* Device memory the ops reuse from call to call (grown on demand, never shrunk, freed by
 * dc_device_close). One buffer per use, shared by every layer: the queue is in order. */
typedef enum dc_scratch_use {
    DC_SCRATCH_CONV,     /* direct conv: dz copies, dW partial sums, interleaved convT input */
    DC_SCRATCH_GEMM_COL, /* gemm conv: im2col matrix */
    DC_SCRATCH_GEMM_OUT, /* gemm conv: GEMM output / channel-major dz */
    DC_SCRATCH_GEMM_TMP, /* gemm conv: CLBlast's temp buffer */
    DC_SCRATCH_USES
} dc_scratch_use;

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
    dc_device_options opts;
    cl_mem scratch[DC_SCRATCH_USES];
    size_t scratch_bytes[DC_SCRATCH_USES];
} dc_device;

/* Every platform and its devices, for listings. */
#define DC_CATALOG_PLATFORMS 16
#define DC_CATALOG_DEVICES 64
typedef struct dc_device_catalog {
    int nplatforms;
    char platform_name[DC_CATALOG_PLATFORMS][128], platform_version[DC_CATALOG_PLATFORMS][128];
    int ndevices;
    dc_device devices[DC_CATALOG_DEVICES]; /* info fields and indices only: no context or queue */
} dc_device_catalog;
/* Fill cat (large: allocate it); no platform at all is DC_ERR_NO_DEVICE with the install hint. */
dc_status dc_device_catalog_get(dc_device_catalog *cat);

/* Print a clinfo-like table of every platform and device to out. */
dc_status dc_device_list(FILE *out);

/* Parse "P:D" or "D" (platform then defaults to -1) into indices; -1 means "not given". */
dc_status dc_device_parse(const char *spec, int *platform, int *device);
/* "gpu", "cpu", "accel" (or "accelerator"), any case, into a CL_DEVICE_TYPE_*; 0 if spec is
 * not a type name. */
cl_device_type dc_device_type_parse(const char *spec);
/* The first device of this type (in ICD order; on `platform` only when >= 0). The error names
 * the devices that exist. */
dc_status dc_device_open_type(cl_device_type type, int platform, dc_device **out);

/* Open a device: platform/device -1 = not given (see selection order above). A device index
 * without a platform means platform 0. Errors say what exists and how to get a CPU driver. */
dc_status dc_device_open(int platform, int device, dc_device **out);
/* The default choice as above, but the nth device (0-based, modulo their number) of the chosen
 * type: rank n of a host takes device n when ranks share a host (daecl/dist.h). */
dc_status dc_device_open_nth(int nth, dc_device **out);
void dc_device_close(dc_device *dev);
/* The defaults for a device of this type and name (platform name, device name), without the
 * environment: what dc_device_open starts from. */
void dc_device_options_default(dc_device_options *o, cl_device_type type, const char *platform,
                               const char *name);
/* Apply the DAECL_CONV* / DAECL_LOOP_LIMIT overrides; a malformed value is an error naming the
 * variable. */
dc_status dc_device_options_from_env(dc_device_options *o);

/* Scratch buffer `use` of at least `bytes` (see dc_scratch_use). Errors name the use and
 * size, and a request above the device's largest allocation is refused up front. */
dc_status dc_device_scratch(dc_device *dev, dc_scratch_use use, size_t bytes, cl_mem *out);
/* Free the scratch buffers now (commands already queued on them still complete). */
void dc_device_scratch_release(dc_device *dev);

/* Register fn to run at dc_device_close (once, however often it is registered). */
dc_status dc_device_add_cleanup(dc_device *dev, dc_device_cleanup fn);

/* "CPU", "GPU", "ACCEL" or "OTHER". */
const char *dc_device_type_name(cl_device_type t);
/* One line: "0:0 CPU pthread-skylake-avx512-AMD EPYC (Portable Computing Language, OpenCL C 1.2 PoCL)". */
void dc_device_describe(const dc_device *dev, char *buf, size_t len);
/* Whether dev is PoCL's (its own kernel cache, one compiler lock per process). */
int dc_device_is_pocl(const dc_device *dev);

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
