/* OpenCL platforms and devices: listing, selection, context and queue. */
#include "daecl/device.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daecl/kernels.h"

#define MAX_PLATFORMS 16
#define MAX_DEVICES 32

static const char *const install_hint =
    "install an OpenCL driver, e.g. for the CPU: apt-get install pocl-opencl-icd "
    "(and set POCL_CACHE_DIR to a writable directory)";

const char *dc_cl_error_name(cl_int err)
{
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
    E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
    E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
    E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_CONTEXT) E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE)
    E(CL_INVALID_HOST_PTR) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    E(CL_INVALID_IMAGE_SIZE) E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS)
    E(CL_INVALID_PROGRAM) E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_DEFINITION) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
    E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS)
    E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE)
    E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST) E(CL_INVALID_EVENT)
    E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_PROPERTY)
    E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS) E(CL_INVALID_LINKER_OPTIONS)
    E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL_UNKNOWN_ERROR";
    }
}

dc_status dc_cl_fail(cl_int err, const char *what)
{
    int memory = err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                 err == CL_OUT_OF_HOST_MEMORY;
    return dc_fail(memory ? DC_ERR_DEVICE_MEMORY : DC_ERR_OPENCL, "%s: %s (%d)%s", what,
                   dc_cl_error_name(err), (int)err,
                   memory ? ": the device is out of memory; try a smaller --batch" : "");
}

const char *dc_device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCEL";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    return "OTHER";
}

/* Platforms in ICD order. clGetPlatformIDs returns CL_PLATFORM_NOT_FOUND_KHR when the loader
 * finds no vendor at all: that is "no platform", not an error of ours. */
static dc_status get_platforms(cl_platform_id *ids, cl_uint *n)
{
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, ids, n);
    if (err == -1001 || (err == CL_SUCCESS && *n == 0)) {
        *n = 0;
        return DC_OK;
    }
    if (err != CL_SUCCESS) return dc_cl_fail(err, "clGetPlatformIDs");
    if (*n > MAX_PLATFORMS) *n = MAX_PLATFORMS;
    return DC_OK;
}

static cl_uint get_devices(cl_platform_id p, cl_device_id *ids)
{
    cl_uint n = 0;
    if (clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &n) != CL_SUCCESS) return 0;
    return n > MAX_DEVICES ? MAX_DEVICES : n;
}

static void str_info(cl_device_id d, cl_device_info what, char *buf, size_t len)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, len, buf, NULL) != CL_SUCCESS) snprintf(buf, len, "?");
    buf[len - 1] = '\0';
}

static void platform_str(cl_platform_id p, cl_platform_info what, char *buf, size_t len)
{
    buf[0] = '\0';
    if (clGetPlatformInfo(p, what, len, buf, NULL) != CL_SUCCESS) snprintf(buf, len, "?");
    buf[len - 1] = '\0';
}

static void fill_info(dc_device *d)
{
    platform_str(d->platform, CL_PLATFORM_NAME, d->platform_name, sizeof d->platform_name);
    platform_str(d->platform, CL_PLATFORM_VERSION, d->platform_version, sizeof d->platform_version);
    str_info(d->id, CL_DEVICE_NAME, d->name, sizeof d->name);
    str_info(d->id, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    str_info(d->id, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    str_info(d->id, CL_DEVICE_VERSION, d->version, sizeof d->version);
    str_info(d->id, CL_DEVICE_OPENCL_C_VERSION, d->c_version, sizeof d->c_version);
    clGetDeviceInfo(d->id, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units, &d->compute_units, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof d->global_mem, &d->global_mem, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc, NULL);
    clGetDeviceInfo(d->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL);
}

dc_status dc_device_catalog_get(dc_device_catalog *cat)
{
    memset(cat, 0, sizeof *cat);
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    DC_TRY(get_platforms(plats, &np));
    if (np == 0) return dc_fail(DC_ERR_NO_DEVICE, "no OpenCL platform found: %s", install_hint);
    for (cl_uint p = 0; p < np && p < DC_CATALOG_PLATFORMS; p++) {
        platform_str(plats[p], CL_PLATFORM_NAME, cat->platform_name[p], sizeof cat->platform_name[p]);
        platform_str(plats[p], CL_PLATFORM_VERSION, cat->platform_version[p], sizeof cat->platform_version[p]);
        cat->nplatforms++;
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = get_devices(plats[p], devs);
        for (cl_uint i = 0; i < nd && cat->ndevices < DC_CATALOG_DEVICES; i++) {
            dc_device *d = &cat->devices[cat->ndevices++];
            *d = (dc_device){.platform = plats[p], .id = devs[i], .platform_index = (int)p, .device_index = (int)i};
            fill_info(d);
        }
    }
    return DC_OK;
}

dc_status dc_device_list(FILE *out)
{
    dc_device_catalog *cat = malloc(sizeof *cat);
    if (!cat) return dc_fail(DC_ERR_NOMEM, "out of memory listing devices");
    dc_status s = dc_device_catalog_get(cat);
    if (!s)
        fprintf(out, "%-5s %-6s %-40s %-28s %-14s %-16s %4s %10s %6s\n", "P:D", "TYPE", "NAME", "VENDOR", "DRIVER",
                "OPENCL C", "CUs", "MEMORY", "MAXWG");
    for (int p = 0; !s && p < cat->nplatforms; p++) {
        fprintf(out, "platform %d: %s (%s)\n", p, cat->platform_name[p], cat->platform_version[p]);
        int listed = 0;
        for (int i = 0; i < cat->ndevices; i++) {
            const dc_device *d = &cat->devices[i];
            if (d->platform_index != p) continue;
            listed++;
            char idx[24];
            snprintf(idx, sizeof idx, "%d:%d", p, d->device_index);
            fprintf(out, "%-5s %-6s %-40.40s %-28.28s %-14.14s %-16.16s %4u %7.1fGiB %6zu\n", idx,
                    dc_device_type_name(d->type), d->name, d->vendor, d->driver, d->c_version, d->compute_units,
                    (double)d->global_mem / (1024.0 * 1024.0 * 1024.0), d->max_wg);
        }
        if (!listed) fprintf(out, "  (no devices)\n");
    }
    if (!s)
        fprintf(out, "tested in CI: PoCL CPU devices, and Mesa rusticl's llvmpipe (RUSTICL_ENABLE=llvmpipe, "
                     "tests/ci/rusticl.sh); other devices, GPUs included, are untested (README: Tested "
                     "OpenCL implementations)\n");
    free(cat);
    return s;
}

cl_device_type dc_device_type_parse(const char *spec)
{
    if (!spec) return 0;
    if (strcasecmp(spec, "gpu") == 0) return CL_DEVICE_TYPE_GPU;
    if (strcasecmp(spec, "cpu") == 0) return CL_DEVICE_TYPE_CPU;
    if (strcasecmp(spec, "accel") == 0 || strcasecmp(spec, "accelerator") == 0) return CL_DEVICE_TYPE_ACCELERATOR;
    return 0;
}

/* ---- plan options and scratch ----------------------------------------------------------- */

/* Mesa's llvmpipe ends every loop of a work-item once 65535 iterations have run in total
 * (LP_MAX_TGSI_LOOP_ITERATIONS in gallivm), without an error: rusticl and clover expose it. */
#define LLVMPIPE_LOOP_LIMIT 65535ul

void dc_device_options_default(dc_device_options *o, cl_device_type type, const char *platform,
                               const char *name)
{
    (void)platform;
    *o = (dc_device_options){.conv_ws = 1, .conv_up_fold = 1, .conv_pool_fold = 1,
                              .conv_up_phases = 1};
    o->conv_algo = (type & CL_DEVICE_TYPE_GPU) ? DC_CONV_GEMM : DC_CONV_DIRECT;
    if (name && strstr(name, "llvmpipe")) o->loop_limit = LLVMPIPE_LOOP_LIMIT;
}

/* A non-negative integer from variable `var` into *out; unset or empty leaves *out. */
static dc_status env_count(const char *var, long most, long *out)
{
    const char *e = getenv(var);
    if (!e || !*e) return DC_OK;
    char *end;
    long v = strtol(e, &end, 10);
    if (end == e || *end != '\0' || v < 0 || v > most)
        return dc_fail(DC_ERR_INVALID_ARG, "%s='%s': expected an integer from 0 to %ld", var, e,
                       most);
    *out = v;
    return DC_OK;
}

/* Which of `names` variable `var` holds (its index into *out); unset or empty leaves *out. */
static dc_status env_choice(const char *var, const char *const *names, int n, int *out)
{
    const char *e = getenv(var);
    if (!e || !*e) return DC_OK;
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(e, names[i])) {
            *out = i;
            return DC_OK;
        }
    return dc_fail(DC_ERR_INVALID_ARG, "%s='%s': expected %s or %s", var, e,
                   names[0] ? names[0] : names[1], names[n - 1]);
}

dc_status dc_device_options_from_env(dc_device_options *o)
{
    static const char *const algos[] = {"direct", "gemm"};
    static const char *const dws[] = {NULL, "rows", "channels"};
    static const char *const lanes_names[] = {NULL, "pixels", "channels"};
    int algo = (int)o->conv_algo, dw = (int)o->conv_dw, lanes = (int)o->conv_lanes;
    long ws = o->conv_ws, up_fold = o->conv_up_fold, pool_fold = o->conv_pool_fold;
    long phases = o->conv_up_phases;
    long chunks = o->dw_chunks, gchunk = o->gemm_chunk;
    long limit = (long)o->loop_limit;
    DC_TRY(env_choice("DAECL_CONV", algos, 2, &algo));
    DC_TRY(env_choice("DAECL_CONV_DW", dws, 3, &dw));
    DC_TRY(env_choice("DAECL_CONV_LANES", lanes_names, 3, &lanes));
    DC_TRY(env_count("DAECL_CONV_WS", 1, &ws));
    DC_TRY(env_count("DAECL_CONV_UP_FOLD", 1, &up_fold));
    DC_TRY(env_count("DAECL_CONV_POOL_FOLD", 1, &pool_fold));
    DC_TRY(env_count("DAECL_CONV_UP_PHASES", 1, &phases));
    DC_TRY(env_count("DAECL_CONV_DW_CHUNKS", 1 << 20, &chunks));
    DC_TRY(env_count("DAECL_CONV_GEMM_CHUNK", 1 << 20, &gchunk));
    DC_TRY(env_count("DAECL_LOOP_LIMIT", 1l << 30, &limit));
    o->conv_algo = (dc_conv_algo)algo;
    o->conv_dw = (dc_conv_dw)dw;
    o->conv_lanes = (dc_conv_lanes)lanes;
    o->conv_ws = (int)ws;
    o->conv_up_fold = (int)up_fold;
    o->conv_pool_fold = (int)pool_fold;
    o->conv_up_phases = (int)phases;
    o->dw_chunks = (int)chunks;
    o->gemm_chunk = (int)gchunk;
    o->loop_limit = (unsigned long)limit;
    return DC_OK;
}

static const char *const scratch_names[DC_SCRATCH_USES] = {
    [DC_SCRATCH_CONV] = "conv scratch buffer",
    [DC_SCRATCH_GEMM_COL] = "conv gemm: im2col matrix",
    [DC_SCRATCH_GEMM_OUT] = "conv gemm: GEMM output matrix",
    [DC_SCRATCH_GEMM_TMP] = "conv gemm: CLBlast GEMM temp buffer",
};

dc_status dc_device_scratch(dc_device *dev, dc_scratch_use use, size_t bytes, cl_mem *out)
{
    *out = NULL;
    const char *what = scratch_names[use];
    if (bytes > dev->max_alloc)
        return dc_fail(DC_ERR_DEVICE_MEMORY,
                       "%s: %.1f MiB is more than the device's largest allocation (%.1f MiB)",
                       what, bytes / 1048576.0, dev->max_alloc / 1048576.0);
    if (dev->scratch_bytes[use] < bytes) {
        /* Released buffers live on until the commands already queued on them finish. */
        if (dev->scratch[use]) clReleaseMemObject(dev->scratch[use]);
        dev->scratch[use] = NULL;
        dev->scratch_bytes[use] = 0;
        cl_int err;
        cl_mem b = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
        if (err != CL_SUCCESS) {
            char msg[160];
            snprintf(msg, sizeof msg, "allocating the %s (%.1f MiB)", what, bytes / 1048576.0);
            return dc_cl_fail(err, msg);
        }
        dev->scratch[use] = b;
        dev->scratch_bytes[use] = bytes;
    }
    *out = dev->scratch[use];
    return DC_OK;
}

void dc_device_scratch_release(dc_device *dev)
{
    if (!dev) return;
    for (int i = 0; i < DC_SCRATCH_USES; i++) {
        if (dev->scratch[i]) clReleaseMemObject(dev->scratch[i]);
        dev->scratch[i] = NULL;
        dev->scratch_bytes[i] = 0;
    }
}

dc_status dc_device_parse(const char *spec, int *platform, int *device)
{
    *platform = *device = -1;
    if (!spec || !*spec) return DC_OK;
    char *end;
    long a = strtol(spec, &end, 10);
    if (end == spec || a < 0 || a > 1000) goto bad;
    if (*end == '\0') {
        *device = (int)a;
        return DC_OK;
    }
    if (*end != ':') goto bad;
    const char *s2 = end + 1;
    long b = strtol(s2, &end, 10);
    if (end == s2 || *end != '\0' || b < 0 || b > 1000) goto bad;
    *platform = (int)a;
    *device = (int)b;
    return DC_OK;
bad:
    return dc_fail(DC_ERR_INVALID_ARG,
                   "bad device '%s': expected P:D, D (e.g. 0:0) or a type: gpu, cpu, accel (see dae-cl --list-devices)", spec);
}

/* "platforms: 0 (Portable Computing Language: 1 device)" for error messages. */
static void describe_platforms(const cl_platform_id *plats, cl_uint np, char *buf, size_t len)
{
    size_t used = 0;
    for (cl_uint p = 0; p < np && used < len; p++) {
        char pname[128];
        cl_device_id devs[MAX_DEVICES];
        platform_str(plats[p], CL_PLATFORM_NAME, pname, sizeof pname);
        cl_uint nd = get_devices(plats[p], devs);
        int w = snprintf(buf + used, len - used, "%s%u (%s: %u device%s)", p ? ", " : "", p, pname,
                         nd, nd == 1 ? "" : "s");
        if (w < 0) break;
        used += (size_t)w;
    }
}

static int type_rank(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return 0;
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return 1;
    if (t & CL_DEVICE_TYPE_CPU) return 2;
    return 3;
}

static dc_status open_chosen(cl_platform_id chosen_p, cl_device_id chosen_d, int cp, int cd, dc_device **out);

dc_status dc_device_open_type(cl_device_type type, int platform, dc_device **out)
{
    *out = NULL;
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    DC_TRY(get_platforms(plats, &np));
    if (np == 0) return dc_fail(DC_ERR_NO_DEVICE, "no OpenCL platform found: %s", install_hint);
    if (platform >= 0 && (cl_uint)platform >= np) return dc_fail(DC_ERR_NO_DEVICE, "no OpenCL platform %d", platform);
    /* What exists, for the message when nothing matches: "0:0 CPU, 1:0 GPU". */
    char seen[512] = "";
    size_t used = 0;
    for (cl_uint p = 0; p < np; p++) {
        if (platform >= 0 && p != (cl_uint)platform) continue;
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = get_devices(plats[p], devs);
        for (cl_uint i = 0; i < nd; i++) {
            cl_device_type t = 0;
            clGetDeviceInfo(devs[i], CL_DEVICE_TYPE, sizeof t, &t, NULL);
            if (t & type) return open_chosen(plats[p], devs[i], (int)p, (int)i, out);
            if (used < sizeof seen)
                used += (size_t)snprintf(seen + used, sizeof seen - used, "%s%u:%u %s", used ? ", " : "", p, i,
                                         dc_device_type_name(t));
        }
    }
    return dc_fail(DC_ERR_NO_DEVICE, "no %s device%s; devices: %s (see dae-cl --list-devices)", dc_device_type_name(type),
                   platform >= 0 ? " on that platform" : "", used ? seen : "none");
}

/* nth: which device of the default type to take when none is named (wraps around). */
static dc_status open_device(int platform, int device, int nth, dc_device **out)
{
    *out = NULL;
    if (platform < 0 && device < 0) {
        const char *env = getenv("DAECL_DEVICE");
        cl_device_type type = dc_device_type_parse(env);
        if (type) {
            dc_status s = dc_device_open_type(type, -1, out);
            return s ? dc_fail(s, "DAECL_DEVICE=%s: %s", env, dc_error_detail()) : DC_OK;
        }
        if (env && *env) {
            dc_status s = dc_device_parse(env, &platform, &device);
            if (s) return dc_fail(s, "DAECL_DEVICE: %s", dc_error_detail());
        }
    }
    if (platform < 0 && device >= 0) platform = 0;

    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint np = 0;
    DC_TRY(get_platforms(plats, &np));
    if (np == 0) return dc_fail(DC_ERR_NO_DEVICE, "no OpenCL platform found: %s", install_hint);
    char avail[1024];
    describe_platforms(plats, np, avail, sizeof avail);

    cl_platform_id chosen_p = NULL;
    cl_device_id chosen_d = NULL;
    int cp = -1, cd = -1;
    if (platform >= 0) {
        if ((cl_uint)platform >= np)
            return dc_fail(DC_ERR_NO_DEVICE, "no OpenCL platform %d; platforms: %s", platform, avail);
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = get_devices(plats[platform], devs);
        if (nd == 0)
            return dc_fail(DC_ERR_NO_DEVICE, "OpenCL platform %d has no devices; platforms: %s; %s",
                           platform, avail, install_hint);
        if (device < 0) device = 0;
        if ((cl_uint)device >= nd)
            return dc_fail(DC_ERR_NO_DEVICE, "no device %d on platform %d; platforms: %s", device,
                           platform, avail);
        chosen_p = plats[platform];
        chosen_d = devs[device];
        cp = platform;
        cd = device;
    } else {
        /* Pass 1: the best type and how many devices have it; pass 2: the nth of them. */
        int best = 99, count = 0;
        for (int pass = 0; pass < 2; pass++) {
            int seen = 0, want = pass ? nth % (count ? count : 1) : 0;
            for (cl_uint p = 0; p < np; p++) {
                cl_device_id devs[MAX_DEVICES];
                cl_uint nd = get_devices(plats[p], devs);
                for (cl_uint i = 0; i < nd; i++) {
                    cl_device_type t = 0;
                    clGetDeviceInfo(devs[i], CL_DEVICE_TYPE, sizeof t, &t, NULL);
                    int r = type_rank(t);
                    if (pass == 0 && r < best) best = r, count = 0;
                    if (pass == 0 && r == best) count++;
                    if (pass == 1 && r == best && seen++ == want) {
                        chosen_p = plats[p];
                        chosen_d = devs[i];
                        cp = (int)p;
                        cd = (int)i;
                    }
                }
            }
        }
        if (!chosen_d)
            return dc_fail(DC_ERR_NO_DEVICE, "no OpenCL device found; platforms: %s; %s", avail,
                           install_hint);
    }
    return open_chosen(chosen_p, chosen_d, cp, cd, out);
}

static dc_status open_chosen(cl_platform_id chosen_p, cl_device_id chosen_d, int cp, int cd, dc_device **out)
{
    dc_device *d = calloc(1, sizeof *d);
    if (!d) return dc_fail(DC_ERR_NOMEM, "out of memory opening the OpenCL device");
    d->platform = chosen_p;
    d->id = chosen_d;
    d->platform_index = cp;
    d->device_index = cd;
    fill_info(d);
    dc_device_options_default(&d->opts, d->type, d->platform_name, d->name);
    dc_status st = dc_device_options_from_env(&d->opts);
    if (st) {
        free(d);
        return st;
    }
    cl_int err;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)chosen_p, 0};
    d->ctx = clCreateContext(props, 1, &chosen_d, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        free(d);
        return dc_cl_fail(err, "clCreateContext");
    }
    d->queue = clCreateCommandQueue(d->ctx, chosen_d, 0, &err);
    if (err != CL_SUCCESS) {
        clReleaseContext(d->ctx);
        free(d);
        return dc_cl_fail(err, "clCreateCommandQueue");
    }
    *out = d;
    return DC_OK;
}

int dc_device_is_pocl(const dc_device *dev)
{
    return strstr(dev->platform_name, "Portable Computing Language") != NULL ||
           strstr(dev->version, "PoCL") != NULL;
}

void dc_device_describe(const dc_device *dev, char *buf, size_t len)
{
    snprintf(buf, len, "%d:%d %s %s (%s, %s, driver %s)", dev->platform_index, dev->device_index,
             dc_device_type_name(dev->type), dev->name, dev->platform_name, dev->c_version,
             dev->driver);
}

dc_status dc_device_add_cleanup(dc_device *dev, dc_device_cleanup fn)
{
    for (int i = 0; i < dev->ncleanups; i++)
        if (dev->cleanups[i] == fn) return DC_OK;
    if (dev->ncleanups == DC_DEVICE_MAX_CLEANUPS)
        return dc_fail(DC_ERR_UNSUPPORTED, "too many per-device cleanups registered");
    dev->cleanups[dev->ncleanups++] = fn;
    return DC_OK;
}

void dc_device_close(dc_device *dev)
{
    if (!dev) return;
    if (dev->queue) clFinish(dev->queue);
    for (int i = dev->ncleanups - 1; i >= 0; i--) dev->cleanups[i](dev);
    dc_device_scratch_release(dev);
    dc_programs_release(dev);
    if (dev->queue) clReleaseCommandQueue(dev->queue);
    if (dev->ctx) clReleaseContext(dev->ctx);
    free(dev);
}

dc_status dc_device_open(int platform, int device, dc_device **out) { return open_device(platform, device, 0, out); }

dc_status dc_device_open_nth(int nth, dc_device **out) { return open_device(-1, -1, nth, out); }
