/* dae-cl-peak: the device's measured FMA peak in GFLOP/s, the yardstick for the profile and
 * compare-torch's "% of peak".
 *
 *   dae-cl-peak [--platform P] [--device D] [--seconds S]
 *
 * A kernel of CHAINS independent FMA chains of VEC-float vectors per work-item: one dependent
 * chain (clpeak's form) waits the FMA latency (4-5 cycles) between issues, so a CPU needs
 * latency x pipes = 8-10 chains in flight to fill its FMA units. Several (VEC, CHAINS) variants
 * are built, since the best one depends on the register file (16 AVX2 or 32 AVX-512 registers)
 * and on how the compiler maps a vector type; each runs at least `seconds`/variants and the
 * fastest is the peak. 2 FLOPs per lane and FMA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daecl/device.h"

static const char *kernel_src =
    "#define CAT(a, b) a##b\n"
    "#define VT(n) CAT(float, n)\n"
    "__kernel void peak(__global float *out, const float m, const int iters)\n"
    "{\n"
    "    VT(VEC) acc[CHAINS];\n"
    "    float seed = (float)get_global_id(0);\n"
    "    _Pragma(\"unroll\") for (int c = 0; c < CHAINS; c++) acc[c] = (VT(VEC))(seed + c);\n"
    "    VT(VEC) a = (VT(VEC))(m * 0.5f);\n"
    "    for (int i = 0; i < iters; i++) {\n"
    "        _Pragma(\"unroll\") for (int r = 0; r < 8; r++)\n"
    "            _Pragma(\"unroll\") for (int c = 0; c < CHAINS; c++) acc[c] = fma(acc[c], (VT(VEC))m, a);\n"
    "    }\n"
    "    VT(VEC) s = acc[0];\n"
    "    _Pragma(\"unroll\") for (int c = 1; c < CHAINS; c++) s += acc[c];\n"
    "    float t = 0.0f;\n"
    "    _Pragma(\"unroll\") for (int l = 0; l < VEC; l++) t += ((float *)&s)[l];\n"
    "    out[get_global_id(0)] = t; /* keeps every chain live */\n"
    "}\n";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die_cl(cl_int err, const char *what)
{
    fprintf(stderr, "dae-cl-peak: %s: OpenCL error %d\n", what, err);
    exit(1);
}

static int parse_int(const char *flag, const char *v)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 0 || x > 1000000) {
        fprintf(stderr, "dae-cl-peak: %s: '%s' is not a non-negative integer\n", flag, v);
        exit(2);
    }
    return (int)x;
}

/* GFLOP/s of one variant, best of the timed launches within `seconds`. */
static double run_variant(dc_device *dev, int vec, int chains, double seconds)
{
    char opts[128];
    snprintf(opts, sizeof opts, "-DVEC=%d -DCHAINS=%d", vec, chains);
    cl_int err;
    cl_program prog = clCreateProgramWithSource(dev->ctx, 1, &kernel_src, NULL, &err);
    if (err != CL_SUCCESS) die_cl(err, "clCreateProgramWithSource");
    err = clBuildProgram(prog, 1, &dev->id, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[4096] = "";
        clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        fprintf(stderr, "dae-cl-peak: building the kernel (%s):\n%s\n", opts, log);
        exit(1);
    }
    cl_kernel k = clCreateKernel(prog, "peak", &err);
    if (err != CL_SUCCESS) die_cl(err, "clCreateKernel");
    /* enough work-items for every compute unit many times over (GPUs want thousands) */
    size_t items = (size_t)(dev->compute_units ? dev->compute_units : 1) *
                   ((dev->type & CL_DEVICE_TYPE_CPU) ? 64 : 4096);
    cl_mem out = clCreateBuffer(dev->ctx, CL_MEM_WRITE_ONLY, items * sizeof(float), NULL, &err);
    if (err != CL_SUCCESS) die_cl(err, "clCreateBuffer");
    float m = 0.999f;
    cl_int iters = 64;
    clSetKernelArg(k, 0, sizeof out, &out);
    clSetKernelArg(k, 1, sizeof m, &m);
    double best = 0, start = now();
    for (int rep = 0; rep < 1000 && (rep < 3 || now() - start < seconds); rep++) {
        clSetKernelArg(k, 2, sizeof iters, &iters);
        double t0 = now();
        err = clEnqueueNDRangeKernel(dev->queue, k, 1, NULL, &items, NULL, 0, NULL, NULL);
        if (err != CL_SUCCESS) die_cl(err, "clEnqueueNDRangeKernel");
        err = clFinish(dev->queue);
        if (err != CL_SUCCESS) die_cl(err, "clFinish");
        double dt = now() - t0;
        double flops = 2.0 * vec * chains * 8.0 * iters * (double)items;
        if (rep > 0 && flops / dt > best) best = flops / dt; /* the first includes the JIT */
        if (dt < 0.05 && iters < (1 << 24)) iters *= 2; /* launches long against their overhead */
    }
    clReleaseMemObject(out);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    return best / 1e9;
}

int main(int argc, char **argv)
{
    int platform = -1, device = -1;
    double seconds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: dae-cl-peak [--platform P] [--device D] [--seconds S]\n"
                   "Measures the OpenCL device's peak FMA throughput (GFLOP/s).\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dae-cl-peak: %s: unknown flag or missing value (see --help)\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--platform")) platform = parse_int(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) device = parse_int(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = parse_int(argv[i], argv[i + 1]);
        else {
            fprintf(stderr, "dae-cl-peak: %s: unknown flag (see --help)\n", argv[i]);
            return 2;
        }
        i++;
    }
    dc_device *dev;
    if (dc_device_open(platform, device, &dev) != DC_OK) {
        fprintf(stderr, "dae-cl-peak: %s\n", dc_error_detail());
        return 1;
    }
    char desc[256];
    dc_device_describe(dev, desc, sizeof desc);
    printf("device: %s (%u compute units)\n", desc, dev->compute_units);
    static const int variants[][2] = {{8, 8}, {8, 12}, {8, 16}, {16, 4}, {16, 6}, {16, 8}, {16, 12}};
    int nvar = (int)(sizeof variants / sizeof variants[0]);
    double best = 0;
    for (int v = 0; v < nvar; v++) {
        double g = run_variant(dev, variants[v][0], variants[v][1], seconds / nvar);
        printf("  float%-2d x %2d chains: %8.1f GFLOP/s\n", variants[v][0], variants[v][1], g);
        if (g > best) best = g;
    }
    printf("peak: %.1f GFLOP/s\n", best);
    dc_device_close(dev);
    return 0;
}
