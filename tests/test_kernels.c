/* Kernel JIT and the disk cache: source build, cache hit in a fresh device, key changes with
 * options and source, corrupt entries fall back, syntax errors give the build log. */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daecl/kernels.h"
#include "daecl/tensor.h"
#include "test.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

static void corrupt_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strstr(e->d_name, ".bin")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r+b");
        if (!f) continue;
        fseek(f, -40, SEEK_END); /* inside the binary: the CRC must catch it */
        fputc(0x5a, f);
        fputc(0xa5, f);
        fclose(f);
    }
    if (d) closedir(d);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* The cache tests take util.cl with an option of their own: with empty options it is part of
 * the merged program of every option-free file (kernels.c), whose binary PoCL takes ~15 s to
 * extract. */
#define TEST_OPTS "-DDAECL_TEST_CACHE=1"

/* The option-free files share one program: axpy_f32 (util.cl) and opt_adam (optim.cl) come from
 * one build, and DAECL_KERNEL_DIR replaces just the files it holds. */
static void test_merged_program(const char *kdir)
{
    setenv("DAECL_NO_KERNEL_CACHE", "1", 1);
    setenv("DAECL_KERNEL_DIR", kdir, 1);
    dc_device *dev = NULL;
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (!dev) return;
    cl_kernel a = NULL, b = NULL;
    CHECK_OK(dc_kernel_get(dev, "util.cl", "", "axpy_f32", &a));
    CHECK_OK(dc_kernel_get(dev, "optim.cl", NULL, "opt_adam", &b));
    CHECK(a && b && dev->stats.source_builds == 1, "merged: %d builds for util.cl and optim.cl",
          dev->stats.source_builds);
    CHECK(dc_kernel_get(dev, "optim.cl", "", "axpy_f32", &a) == DC_OK, "one program");
    CHECK(dc_kernel_get(dev, "util.cl", "", "no_such_kernel", &a) == DC_ERR_INVALID_ARG &&
              strstr(dc_error_detail(), "cl/util.cl"),
          "bad name in the merged program: %s", dc_error_detail());
    dc_tensor t;
    CHECK_OK(dc_tensor_create(dev, 1, 1, 1, 4, DC_LAYOUT_NCHW, &t));
    CHECK_OK(dc_fill(dev, t.buf, 1, 2, 0.5f));
    float host[4];
    CHECK_OK(dc_tensor_read(dev, &t, host));
    CHECK(host[0] == 0.0f && host[1] == 0.5f && host[2] == 0.5f && host[3] == 0.0f,
          "merged fill %g %g %g %g", host[0], host[1], host[2], host[3]);
    dc_tensor_release(&t);
    dc_device_close(dev);
    unsetenv("DAECL_KERNEL_DIR");
    unsetenv("DAECL_NO_KERNEL_CACHE");
}

int main(void)
{
    char cache[] = "/tmp/daecl-kcache-XXXXXX";
    CHECK(mkdtemp(cache) != NULL, "mkdtemp");
    setenv("DAECL_CACHE_DIR", cache, 1);
    setenv("DAECL_KERNEL_CACHE_BINARIES", "1", 1); /* this tests our cache, also on PoCL */
    unsetenv("DAECL_NO_KERNEL_CACHE");
    unsetenv("DAECL_KERNEL_DIR");

    /* Cold: compiled from the embedded source and written to the cache. */
    double t0 = test_now();
    dc_device *dev = NULL;
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (!dev) TEST_MAIN_END();
    cl_kernel k = NULL;
    CHECK_OK(dc_kernel_get(dev, "util.cl", TEST_OPTS, "axpy_f32", &k));
    double cold = test_now() - t0;
    CHECK(dev->stats.source_builds == 1 && dev->stats.cache_writes == 1, "cold: builds %d writes %d",
          dev->stats.source_builds, dev->stats.cache_writes);
    CHECK(count_entries(cache) == 1, "cache holds %d entries", count_entries(cache));
    /* Same request again: same kernel object, no new build. */
    cl_kernel k2 = NULL;
    CHECK_OK(dc_kernel_get(dev, "util.cl", TEST_OPTS, "axpy_f32", &k2));
    CHECK(k == k2 && dev->stats.source_builds == 1, "in-process reuse");
    /* The kernel works: a plain buffer and a direct launch (the tensor helpers would build the
     * merged program, and extracting its binary takes PoCL ~15 s). */
    float host[15];
    for (int i = 0; i < 15; i++) host[i] = 1.0f;
    cl_int err;
    cl_mem buf = clCreateBuffer(dev->ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof host,
                                host, &err);
    CHECK(err == CL_SUCCESS, "buffer: %d", (int)err);
    cl_uint off = 2, cnt = 10;
    cl_float a = 0.5f; /* y = x: y[i] = 1.5 y[i] on [2, 12) */
    CHECK(DC_ARG(k, 0, buf) == CL_SUCCESS && DC_ARG(k, 1, off) == CL_SUCCESS &&
              DC_ARG(k, 2, buf) == CL_SUCCESS && DC_ARG(k, 3, off) == CL_SUCCESS &&
              DC_ARG(k, 4, cnt) == CL_SUCCESS && DC_ARG(k, 5, a) == CL_SUCCESS,
          "axpy_f32 arguments");
    size_t global[1] = {cnt};
    CHECK_OK(dc_launch(dev, k, 1, global, NULL, "axpy_f32"));
    CHECK(clEnqueueReadBuffer(dev->queue, buf, CL_TRUE, 0, sizeof host, host, 0, NULL, NULL) ==
              CL_SUCCESS,
          "read back");
    CHECK(host[1] == 1.0f && host[2] == 1.5f && host[11] == 1.5f && host[12] == 1.0f,
          "axpy result %g %g %g %g", host[1], host[2], host[11], host[12]);
    clReleaseMemObject(buf);
    CHECK(dc_kernel_get(dev, "util.cl", TEST_OPTS, "no_such_kernel", &k) == DC_ERR_INVALID_ARG, "bad name");
    CHECK(dc_kernel_get(dev, "nope.cl", "", "x", &k) == DC_ERR_INVALID_ARG, "bad file");
    dc_device_close(dev);

    /* Warm: a fresh device (as a new process would be) loads the binary. */
    t0 = test_now();
    CHECK_OK(dc_device_open(-1, -1, &dev));
    CHECK_OK(dc_program_prepare(dev, "util.cl", TEST_OPTS));
    double warm = test_now() - t0;
    CHECK(dev->stats.cache_loads == 1 && dev->stats.source_builds == 0, "warm: loads %d builds %d",
          dev->stats.cache_loads, dev->stats.source_builds);
    /* A different -D option is a different key. */
    CHECK_OK(dc_program_prepare(dev, "util.cl", "-DDAECL_TEST_OPTION=1"));
    CHECK(dev->stats.source_builds == 1 && count_entries(cache) == 2, "option key: builds %d entries %d",
          dev->stats.source_builds, count_entries(cache));
    dc_device_close(dev);
    fprintf(stderr, "device ready with util.cl: cold %.1f ms, warm (cached) %.1f ms\n", cold * 1e3,
            warm * 1e3);

    /* A changed source (DAECL_KERNEL_DIR) is a different key too. */
    char kdir[] = "/tmp/daecl-kdir-XXXXXX";
    CHECK(mkdtemp(kdir) != NULL, "mkdtemp");
    char path[512];
    snprintf(path, sizeof path, "%s/util.cl", kdir);
    write_file(path, "__kernel void axpy_f32(__global float *y, const uint y_off, __global const float *x,\n"
                     "const uint x_off, const uint n, const float a)\n"
                     "{ uint i = get_global_id(0); if (i < n) y[y_off + i] += a * x[x_off + i] + 0.0f; }\n");
    setenv("DAECL_KERNEL_DIR", kdir, 1);
    CHECK_OK(dc_device_open(-1, -1, &dev));
    CHECK_OK(dc_program_prepare(dev, "util.cl", TEST_OPTS));
    CHECK(dev->stats.source_builds == 1 && dev->stats.cache_loads == 0, "changed source rebuilt");
    /* A syntax error: DC_ERR_BUILD, the file name and the compiler's log. */
    snprintf(path, sizeof path, "%s/broken.cl", kdir);
    write_file(path, "__kernel void broken(__global float *x) { x[0] = undefined_thing + ; }\n");
    dc_status s = dc_kernel_get(dev, "broken.cl", "", "broken", &k);
    CHECK(s == DC_ERR_BUILD, "syntax error -> %d", (int)s);
    CHECK(strstr(dc_error_detail(), "cl/broken.cl") && strstr(dc_error_detail(), "undefined_thing"),
          "build log missing: %s", dc_error_detail());
    dc_device_close(dev);
    test_merged_program(kdir); /* kdir's util.cl, the other files embedded */
    unlink(path);
    snprintf(path, sizeof path, "%s/util.cl", kdir);
    unlink(path);
    rmdir(kdir);
    unsetenv("DAECL_KERNEL_DIR");

    /* Corrupt entries are rejected and rebuilt from source. */
    corrupt_entries(cache);
    CHECK_OK(dc_device_open(-1, -1, &dev));
    CHECK_OK(dc_kernel_get(dev, "util.cl", TEST_OPTS, "axpy_f32", &k));
    CHECK(dev->stats.cache_rejects == 1 && dev->stats.source_builds == 1,
          "corrupt: rejects %d builds %d", dev->stats.cache_rejects, dev->stats.source_builds);
    dc_device_close(dev);
    CHECK_OK(dc_device_open(-1, -1, &dev));
    CHECK_OK(dc_program_prepare(dev, "util.cl", TEST_OPTS));
    CHECK(dev->stats.cache_loads == 1, "rewritten entry loads again");
    dc_device_close(dev);

    /* DAECL_NO_KERNEL_CACHE=1: always from source, nothing written. */
    setenv("DAECL_NO_KERNEL_CACHE", "1", 1);
    CHECK_OK(dc_device_open(-1, -1, &dev));
    CHECK_OK(dc_program_prepare(dev, "util.cl", TEST_OPTS));
    CHECK(dev->stats.source_builds == 1 && dev->stats.cache_loads == 0 && dev->stats.cache_writes == 0,
          "cache disabled");
    dc_device_close(dev);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_MAIN_END();
}
