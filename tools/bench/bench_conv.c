/* Direct kernels (cl/conv2d.cl) vs im2col + CLBlast SGEMM (conv_gemm.h) for one conv layer,
 * default 32->32 at 14x14, k 3, ReLU, batch 128, on the default device (or DAECL_DEVICE).
 *
 *   bench_conv [batch=128] [reps=10] [cin=32] [cout=32] [hw=14] [k=3]
 *
 * Not built by meson. By hand, after `meson setup build-gemm && ninja -C build-gemm`:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -DCL_TARGET_OPENCL_VERSION=120 -Iinclude -Isrc \
 *      tools/bench/bench_conv.c build-gemm/src/nn/libdaecl_nn.a \
 *      build-gemm/src/runtime/libdaecl_runtime.a -lclblast -lOpenCL -lz -lpthread -lm \
 *      -o build-gemm/bench_conv
 *   POCL_CACHE_DIR=/tmp/pocl-cache build-gemm/bench_conv
 *
 * Passes: forward; weight grad = backward without dx (dz, db, dW); input grad = backward with
 * dx minus backward without. GFLOP/s count 2 flops per multiply-add of the direct convolution
 * (2*k*k*cin*cout*h*w per image and pass). Each pass runs `reps` times after a warm-up, each
 * timed on its own (enqueue to clFinish); the fastest is reported (the machine is shared).
 * Also printed: the first gemm call of the process (CLBlast compiles its GEMM kernels then;
 * run with an empty POCL_CACHE_DIR to see the cold cost), the bare SGEMM of the forward pass
 * (the same call conv_gemm.c makes, on scratch buffers) and, for comparison, the per-image
 * layout conv_gemm.c does not use: one strided-batched SGEMM of `batch` small products. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daecl/conv_gemm.h"
#include "daecl/device.h"
#include "daecl/ops.h"
#include "daecl/tensor.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define TRY(x)                                                                           \
    do {                                                                                 \
        dc_status s_ = (x);                                                              \
        if (s_ != DC_OK) {                                                               \
            fprintf(stderr, "%s: %s: %s\n", #x, dc_strerror(s_), dc_error_detail());      \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static void fill_random(dc_device *dev, cl_mem buf, size_t n, unsigned seed)
{
    float *h = malloc(n * sizeof *h);
    srand(seed);
    for (size_t i = 0; i < n; i++) h[i] = (float)rand() / RAND_MAX - 0.5f;
    clEnqueueWriteBuffer(dev->queue, buf, CL_TRUE, 0, n * sizeof(float), h, 0, NULL, NULL);
    free(h);
}

typedef struct layer {
    dc_device *dev;
    dc_tensor x, y, dy, dx;
    cl_mem prm, grd;
    size_t w_off, b_off;
    int k;
} layer;

/* pass 0 forward, 1 backward without dx, 2 backward with dx */
static void run(layer *L, int gemm, int pass)
{
    dc_device *dev = L->dev;
    switch (pass) {
    case 0:
        TRY(gemm ? dc_conv2d_gemm_forward(dev, &L->x, L->prm, L->w_off, L->b_off, L->k,
                                          DC_ACT_RELU, &L->y)
                 : dc_conv2d_forward(dev, &L->x, L->prm, L->w_off, L->b_off, L->k, DC_ACT_RELU,
                                     &L->y));
        break;
    default: {
        dc_tensor *dx = pass == 2 ? &L->dx : NULL;
        TRY(gemm ? dc_conv2d_gemm_backward(dev, &L->x, &L->y, &L->dy, L->prm, L->grd, L->w_off,
                                           L->b_off, L->k, DC_ACT_RELU, dx)
                 : dc_conv2d_backward(dev, &L->x, &L->y, &L->dy, L->prm, L->grd, L->w_off,
                                      L->b_off, L->k, DC_ACT_RELU, dx));
    }
    }
}

static double best_ms(layer *L, int gemm, int pass, int reps)
{
    run(L, gemm, pass); /* warm-up: JIT, scratch */
    clFinish(L->dev->queue);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        run(L, gemm, pass);
        clFinish(L->dev->queue);
        double t = now() - t0;
        if (t < best) best = t;
    }
    return best * 1e3;
}

int main(int argc, char **argv)
{
    int batch = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 10;
    int cin = argc > 3 ? atoi(argv[3]) : 32, cout = argc > 4 ? atoi(argv[4]) : 32;
    int hw = argc > 5 ? atoi(argv[5]) : 14, k = argc > 6 ? atoi(argv[6]) : 3;
    layer L = {.k = k};
    TRY(dc_device_open(-1, -1, &L.dev));
    dc_device *dev = L.dev;
    /* dc_conv2d_* dispatch to gemm on GPUs: keep them the direct kernels here */
    dev->opts.conv_algo = DC_CONV_DIRECT;
    char desc[256];
    dc_device_describe(dev, desc, sizeof desc);
    printf("device %s\nconv %d->%d %dx%d k%d relu, batch %d, best of %d\n", desc, cin, cout, hw,
           hw, k, batch, reps);

    size_t nw = (size_t)cout * cin * k * k, nx = (size_t)batch * cin * hw * hw;
    size_t ny = (size_t)batch * cout * hw * hw;
    L.b_off = 0, L.w_off = (size_t)cout;
    TRY(dc_buffer_create(dev, nw + cout, "params", &L.prm));
    TRY(dc_buffer_create(dev, nw + cout, "grads", &L.grd));
    fill_random(dev, L.prm, nw + cout, 7);
    TRY(dc_tensor_create(dev, batch, cin, hw, hw, DC_LAYOUT_NCHW, &L.x));
    TRY(dc_tensor_create(dev, batch, cout, hw, hw, DC_LAYOUT_NCHW, &L.y));
    TRY(dc_tensor_create(dev, batch, cout, hw, hw, DC_LAYOUT_NCHW, &L.dy));
    TRY(dc_tensor_create(dev, batch, cin, hw, hw, DC_LAYOUT_NCHW, &L.dx));
    fill_random(dev, L.x.buf, nx, 1);
    fill_random(dev, L.dy.buf, ny, 2);

    /* first gemm call of the process: im2col.cl JIT (or the dae-cl cache) + CLBlast's compile */
    double t0 = now();
    run(&L, 1, 0);
    clFinish(dev->queue);
    double first = now() - t0;
    t0 = now();
    run(&L, 1, 2);
    clFinish(dev->queue);
    double first_bwd = now() - t0;
    printf("first gemm forward call %.2f s, first backward (with dx) %.2f s "
           "(kernel builds + CLBlast compile)\n",
           first, first_bwd);

    double flop = 2.0 * k * k * cin * cout * hw * hw * (double)batch;
    double ms[2][3];
    for (int g = 0; g < 2; g++)
        for (int p = 0; p < 3; p++) ms[g][p] = best_ms(&L, g, p, reps);
    static const char *const names[3] = {"forward", "input grad", "weight grad (+dz, db)"};
    printf("%-22s %10s %10s %10s %10s %8s\n", "pass", "direct ms", "GFLOP/s", "gemm ms", "GFLOP/s",
           "gemm/dir");
    double tot[2] = {0, 0};
    for (int p = 0; p < 3; p++) {
        double d, g;
        if (p == 0) d = ms[0][0], g = ms[1][0];
        else if (p == 1) d = ms[0][2] - ms[0][1], g = ms[1][2] - ms[1][1];
        else d = ms[0][1], g = ms[1][1];
        tot[0] += d, tot[1] += g;
        printf("%-22s %10.2f %10.1f %10.2f %10.1f %8.2f\n", names[p], d, flop / d * 1e-6, g,
               flop / g * 1e-6, g / d);
    }
    printf("%-22s %10.2f %10.1f %10.2f %10.1f %8.2f\n", "all three", tot[0], 3 * flop / tot[0] * 1e-6,
           tot[1], 3 * flop / tot[1] * 1e-6, tot[1] / tot[0]);

    /* the forward pass's SGEMM alone: out[cout][P] = W[cout][K] col[K][P] */
    size_t K = (size_t)cin * k * k, P = (size_t)batch * hw * hw;
    cl_mem a, b, c, tmp = NULL;
    TRY(dc_buffer_create(dev, (size_t)cout * K, "A", &a));
    TRY(dc_buffer_create(dev, K * P, "B", &b));
    TRY(dc_buffer_create(dev, (size_t)cout * P, "C", &c));
    size_t tmp_bytes = 0;
    CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, cout,
                               P, K, 0, K, 0, P, 0, P, &dev->queue, &tmp_bytes);
    if (tmp_bytes) TRY(dc_buffer_create(dev, tmp_bytes / sizeof(float) + 1, "temp", &tmp));
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t1 = now();
        CLBlastStatusCode st =
            tmp ? CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                             CLBlastTransposeNo, cout, P, K, 1.0f, a, 0, K, b, 0,
                                             P, 0.0f, c, 0, P, &dev->queue, NULL, tmp)
                : CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, cout,
                               P, K, 1.0f, a, 0, K, b, 0, P, 0.0f, c, 0, P, &dev->queue, NULL);
        clFinish(dev->queue);
        if (st != CLBlastSuccess) {
            fprintf(stderr, "CLBlastSgemm: status %d\n", (int)st);
            return 1;
        }
        if (r && now() - t1 < best) best = now() - t1;
    }
    printf("bare SGEMM %dx%zux%zu (forward's GEMM): %.2f ms, %.1f GFLOP/s (temp buffer %.1f MiB)\n",
           cout, P, K, best * 1e3, flop / best * 1e-9, tmp_bytes / 1048576.0);

    /* the alternative layout: one GEMM per image, out_n[cout][hw] = W col_n[K][hw], batched */
    size_t hw2 = (size_t)hw * hw;
    best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t1 = now();
        CLBlastStatusCode st = CLBlastSgemmStridedBatched(
            CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, cout, hw2, K, 1.0f, a,
            0, K, 0, b, 0, hw2, K * hw2, 0.0f, c, 0, hw2, (size_t)cout * hw2, batch, &dev->queue,
            NULL);
        clFinish(dev->queue);
        if (st != CLBlastSuccess) {
            fprintf(stderr, "CLBlastSgemmStridedBatched: status %d\n", (int)st);
            return 1;
        }
        if (r && now() - t1 < best) best = now() - t1;
    }
    printf("bare SgemmStridedBatched %d x (%dx%zux%zu) (per-image layout): %.2f ms, %.1f GFLOP/s\n",
           batch, cout, hw2, K, best * 1e3, flop / best * 1e-9);

    clReleaseMemObject(a), clReleaseMemObject(b), clReleaseMemObject(c);
    if (tmp) clReleaseMemObject(tmp);
    dc_tensor_release(&L.x), dc_tensor_release(&L.y), dc_tensor_release(&L.dy);
    dc_tensor_release(&L.dx);
    clReleaseMemObject(L.prm), clReleaseMemObject(L.grd);
    dc_device_scratch_release(dev);
    dc_device_close(dev);
    return 0;
}
