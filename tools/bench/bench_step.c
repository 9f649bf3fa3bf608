/* One training step's time (forward, loss, backward; no optimizer) for a preset or spec at a
 * given input, on the default device (or DAECL_DEVICE): how the dncnn preset's default size
 * was chosen (README, "Models for photos").
 *
 *   bench_step ARCH CHANNELS SIZE BATCH [reps=5] [depth=0] [width=0]
 *
 * Not built by meson. By hand, after `ninja -C build`:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -DCL_TARGET_OPENCL_VERSION=120 -Iinclude -Isrc \
 *      tools/bench/bench_step.c build/src/nn/libdaecl_nn.a build/src/runtime/libdaecl_runtime.a \
 *      -lclblast -lOpenCL -lz -lpthread -lm -o build/bench_step
 * Each step is timed on its own (enqueue to clFinish) after a warm-up; the fastest and the
 * median are printed (the machine is shared). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "daecl/device.h"
#include "daecl/model.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_step ARCH CHANNELS SIZE BATCH [reps] [depth] [width]\n");
        return 2;
    }
    int c = atoi(argv[2]), hw = atoi(argv[3]), batch = atoi(argv[4]), reps = argc > 5 ? atoi(argv[5]) : 5;
    dc_arch_options o = {argc > 6 ? atoi(argv[6]) : 0, argc > 7 ? atoi(argv[7]) : 0, 0};
    dc_arch arch;
    dc_device *dev;
    dc_model *m;
    if (dc_arch_parse_with(argv[1], &o, &arch) || dc_device_open(-1, -1, &dev) ||
        dc_model_create(dev, &arch, c, hw, hw, batch, &m) || dc_model_init_params(m, 1)) {
        fprintf(stderr, "bench_step: %s\n", dc_error_detail());
        return 1;
    }
    size_t n = (size_t)batch * c * hw * hw;
    float *x = malloc(n * sizeof *x);
    uint64_t rng = 7;
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 + 0.5 * dc_layer_uniform(&rng));
    dc_tensor xt, yt;
    dc_tensor_create(dev, batch, c, hw, hw, DC_LAYOUT_NCHW, &xt);
    dc_tensor_create(dev, batch, c, hw, hw, DC_LAYOUT_NCHW, &yt);
    dc_tensor_write(dev, &xt, x);
    dc_tensor_write(dev, &yt, x);
    dc_loss_kind loss = arch.residual || arch.layers[arch.nlayers - 1].act != DC_ACT_SIGMOID ? DC_LOSS_MSE : DC_LOSS_BCE;
    double *t = malloc((size_t)(reps + 1) * sizeof *t);
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        if (dc_model_forward(m, &xt, batch) || dc_model_loss(m, loss, &yt, batch, 1, NULL, NULL, 0) ||
            dc_model_backward(m, &xt, batch) || clFinish(dev->queue) != CL_SUCCESS) {
            fprintf(stderr, "bench_step: %s\n", dc_error_detail());
            return 1;
        }
        t[r] = now() - t0;
    }
    qsort(t + 1, (size_t)reps, sizeof *t, cmp);
    char spec[DC_SPEC_MAX];
    dc_arch_format(&arch, spec, sizeof spec);
    printf("%s c%d %dx%d batch %d: %zu params, step min %.3f s, median %.3f s (warm-up %.1f s)\n", argv[1], c, hw, hw,
           batch, m->nparams, t[1], t[1 + reps / 2], t[0]);
    free(t);
    free(x);
    dc_tensor_release(&xt);
    dc_tensor_release(&yt);
    dc_model_destroy(m);
    dc_device_close(dev);
    return 0;
}
