/* Layer-op benchmark: times the classic model's layers at a given batch on the default device
 * (or DAECL_DEVICE) and prints GFLOP/s per pass.
 *
 *   bench_layers [batch=128] [reps=20]
 *
 * Passes timed per conv layer: forward; backward without dx (dz, db, dW); backward with dx.
 * The input-gradient time is the difference of the last two. FLOPs count 2 per multiply-add of
 * the direct convolution (k*k*cin*cout*h*w per image and pass), the usual convention. Each
 * pass runs `reps` times after a warm-up, each timed on its own (enqueue to clFinish), and
 * the fastest run is reported: the machine is shared, and the minimum is the least noisy. The
 * last column is the process CPU time of the whole layer (all passes; for a CPU device, the
 * sum over its cores), also the minimum over the runs. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "daecl/device.h"
#include "daecl/kernels.h"
#include "daecl/ops.h"
#include "daecl/tensor.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of the whole process (PoCL's worker threads included): on a shared machine the
 * least noisy measure of what a pass costs on a CPU device. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
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

typedef struct layer {
    const char *name;
    int kind; /* 0 conv, 1 pool, 2 upsample, 3 transposed conv */
    int cin, cout, h, w;
    dc_act act;
    int first; /* no dx */
} layer;

static void fill_random(dc_device *dev, dc_tensor *t, unsigned seed)
{
    size_t n = dc_tensor_size(t);
    float *h = malloc(n * sizeof *h);
    srand(seed);
    for (size_t i = 0; i < n; i++) h[i] = (float)rand() / RAND_MAX - 0.5f;
    TRY(dc_tensor_write(dev, t, h));
    free(h);
}

int main(int argc, char **argv)
{
    int batch = argc > 1 ? atoi(argv[1]) : 128, reps = argc > 2 ? atoi(argv[2]) : 20;
    dc_device *dev;
    TRY(dc_device_open(-1, -1, &dev));
    char desc[256];
    dc_device_describe(dev, desc, sizeof desc);
    printf("device %s, batch %d, %d reps\n", desc, batch, reps);
    static const layer layers[] = {
        {"conv 1->32 28x28 relu", 0, 1, 32, 28, 28, DC_ACT_RELU, 1},
        {"pool 32 28x28", 1, 32, 32, 28, 28, DC_ACT_NONE, 0},
        {"conv 32->32 14x14 relu", 0, 32, 32, 14, 14, DC_ACT_RELU, 0},
        {"pool 32 14x14", 1, 32, 32, 14, 14, DC_ACT_NONE, 0},
        {"conv 32->32 7x7 relu", 0, 32, 32, 7, 7, DC_ACT_RELU, 0},
        {"up 32 7x7", 2, 32, 32, 7, 7, DC_ACT_NONE, 0},
        {"conv 32->32 14x14 relu", 0, 32, 32, 14, 14, DC_ACT_RELU, 0},
        {"up 32 14x14", 2, 32, 32, 14, 14, DC_ACT_NONE, 0},
        {"conv 32->1 28x28 sigmoid", 0, 32, 1, 28, 28, DC_ACT_SIGMOID, 0},
        /* the keras preset's decoder (not in the total) */
        {"convT 32->32 7->14 relu", 3, 32, 32, 7, 7, DC_ACT_RELU, 0},
        {"convT 32->32 14->28 relu", 3, 32, 32, 14, 14, DC_ACT_RELU, 0},
    };
    double total = 0, total_flop = 0, total_cpu = 0;
    cl_mem prm, grd;
    TRY(dc_buffer_create(dev, 32 * 32 * 9 + 64, "params", &prm));
    TRY(dc_buffer_create(dev, 32 * 32 * 9 + 64, "grads", &grd));
    {
        dc_tensor pt = dc_tensor_view(prm, 0, 1, 1, 1, 32 * 32 * 9 + 64, DC_LAYOUT_NCHW);
        fill_random(dev, &pt, 7);
    }
    printf("%-26s %9s %9s %9s %9s %8s   (ms, GFLOP/s; cpu: ms of CPU time)\n", "layer", "fwd",
           "dW+db", "dx", "fwd+bwd", "cpu");
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        const layer *L = &layers[li];
        int ho = L->kind == 1 ? L->h / 2 : L->kind >= 2 ? 2 * L->h : L->h;
        int wo = L->kind == 1 ? L->w / 2 : L->kind >= 2 ? 2 * L->w : L->w;
        dc_tensor x, y, dy, dx;
        TRY(dc_tensor_create(dev, batch, L->cin, L->h, L->w, DC_LAYOUT_NCHW, &x));
        TRY(dc_tensor_create(dev, batch, L->cout, ho, wo, DC_LAYOUT_NCHW, &y));
        TRY(dc_tensor_create(dev, batch, L->cout, ho, wo, DC_LAYOUT_NCHW, &dy));
        TRY(dc_tensor_create(dev, batch, L->cin, L->h, L->w, DC_LAYOUT_NCHW, &dx));
        fill_random(dev, &x, 1);
        fill_random(dev, &dy, 2);
        size_t woff = 64, boff = 0;
        double t[3] = {0, 0, 0}, cpu[3] = {0, 0, 0};
        for (int pass = 0; pass < 3; pass++) {
            double best = 1e30, best_cpu = 1e30;
            for (int r = -2; r < reps; r++) { /* two warm-up rounds (JIT, caches) */
                clFinish(dev->queue);
                double t0 = now(), c0 = cpu_now();
                if (L->kind == 0) {
                    if (pass == 0)
                        TRY(dc_conv2d_forward(dev, &x, prm, woff, boff, 3, L->act, &y));
                    else
                        TRY(dc_conv2d_backward(dev, &x, &y, &dy, prm, grd, woff, boff, 3, L->act,
                                               pass == 2 ? &dx : NULL));
                } else if (L->kind == 3) {
                    if (pass == 0)
                        TRY(dc_convT2d_forward(dev, &x, prm, woff, boff, 3, L->act, &y));
                    else
                        TRY(dc_convT2d_backward(dev, &x, &y, &dy, prm, grd, woff, boff, 3, L->act,
                                                pass == 2 ? &dx : NULL));
                } else if (L->kind == 1) {
                    if (pass == 0) TRY(dc_maxpool2_forward(dev, &x, &y));
                    else if (pass == 2) TRY(dc_maxpool2_backward(dev, &x, &dy, &dx, NULL));
                } else {
                    if (pass == 0) TRY(dc_upsample2_forward(dev, &x, &y));
                    else if (pass == 2) TRY(dc_upsample2_backward(dev, &dy, &dx));
                }
                clFinish(dev->queue);
                double t1 = now() - t0, c1 = cpu_now() - c0;
                if (r >= 0 && t1 < best) best = t1;
                if (r >= 0 && c1 < best_cpu) best_cpu = c1;
            }
            t[pass] = best * 1e3;
            cpu[pass] = best_cpu * 1e3;
        }
        double flop = 2.0 * 9 * L->cin * L->cout * L->h * L->w * batch; /* one pass */
        double tdx = t[2] - t[1], all = t[0] + t[2];
        if (L->kind == 0 || L->kind == 3) {
            double bwd_flop = L->first ? flop : 2 * flop;
            printf("%-26s %5.2f %3.0f %5.2f %3.0f %5.2f %3.0f %5.2f %3.0f %8.2f\n", L->name, t[0],
                   flop / t[0] * 1e-6, t[1], flop / t[1] * 1e-6, tdx, flop / tdx * 1e-6, all,
                   (flop + bwd_flop) / all * 1e-6, cpu[0] + (L->first ? cpu[1] : cpu[2]));
            if (L->kind == 0) total_flop += flop + bwd_flop;
        } else {
            printf("%-26s %9.2f %9s %9.2f %9.2f %8.2f\n", L->name, t[0], "", t[2], t[0] + t[2],
                   cpu[0] + cpu[2]);
        }
        /* the model's first layer needs no dx */
        if (L->kind != 3) {
            total += L->first ? t[0] + t[1] : all;
            total_cpu += cpu[0] + (L->first ? cpu[1] : cpu[2]);
        }
        dc_tensor_release(&x), dc_tensor_release(&y), dc_tensor_release(&dy), dc_tensor_release(&dx);
    }
    printf("all layers fwd+bwd: %.2f ms per batch = %.0f images/s (%.1f GFLOP/s over the convs); "
           "CPU time %.2f ms per batch\n",
           total, batch / total * 1e3, total_flop / total * 1e-6, total_cpu);
    clReleaseMemObject(prm);
    clReleaseMemObject(grd);
    dc_device_scratch_release(dev);
    dc_device_close(dev);
    return 0;
}
