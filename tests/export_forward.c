/* Fixture maker for tests/ci/export.sh: a checkpoint of the architecture with random
 * parameters (biases too), a random input batch and dae-cl's own forward of it (the model's
 * output, head applied), as .npy files that the ONNX, OpenCV and PyTorch checks read.
 *
 * usage: export_forward ARCH CHANNELS HEIGHT WIDTH SEED OUTDIR
 * writes OUTDIR/model.dcl (untrained, for CHANNELS x HEIGHT x WIDTH images), OUTDIR/x.npy
 * [2,C,H,W] in [0,1), OUTDIR/y.npy [2,C,H,W] and OUTDIR/arch.txt (the canonical spec). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/checkpoint.h"
#include "daecl/device.h"
#include "daecl/npz.h"

enum { BATCH = 2 };

static int fail(const char *what)
{
    fprintf(stderr, "export_forward: %s: %s\n", what, dc_error_detail());
    return 1;
}

static dc_status write_npy(const char *dir, const char *name, const float *data, int c, int h, int w)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    dc_npy_array a = {.name = name, .ndims = 4, .dims = {BATCH, c, h, w}, .data = data};
    void *bytes;
    size_t size;
    DC_TRY(dc_npy_build(&a, &bytes, &size));
    dc_status s = dc_write_file_atomic(path, bytes, size);
    free(bytes);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: export_forward ARCH CHANNELS HEIGHT WIDTH SEED OUTDIR\n");
        return 2;
    }
    const char *dir = argv[6];
    int c = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]);
    uint64_t rng = strtoull(argv[5], NULL, 0);
    dc_arch arch;
    if (dc_arch_parse(argv[1], &arch)) return fail("arch");
    dc_device *dev = NULL;
    if (dc_device_open(-1, -1, &dev)) return fail("device");
    dc_model *m = NULL;
    int rc = 1;
    size_t n = (size_t)BATCH * c * h * w;
    float *params = NULL, *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    dc_tensor xt = {0}, yt;
    if (dc_model_create(dev, &arch, c, h, w, BATCH, &m)) {
        fail("model");
        goto out;
    }
    /* Uniform ±0.5 everywhere: biases and every weight away from zero exercise the whole graph. */
    params = malloc(m->nparams * sizeof *params);
    for (size_t i = 0; i < m->nparams; i++) params[i] = (float)(0.5 * dc_layer_uniform(&rng));
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 + 0.5 * dc_layer_uniform(&rng));
    if (dc_model_set_params(m, params) || dc_tensor_create(dev, BATCH, c, h, w, DC_LAYOUT_NCHW, &xt) ||
        dc_tensor_write(dev, &xt, x) || dc_model_predict(m, &xt, BATCH, &yt) || dc_tensor_read(dev, &yt, y)) {
        fail("forward");
        goto out;
    }
    dc_checkpoint ck = {0};
    dc_arch_format(&arch, ck.arch, sizeof ck.arch);
    ck.in_c = c;
    ck.in_h = h;
    ck.in_w = w;
    ck.nparams = m->nparams;
    ck.params = params;
    ck.best_val_loss = 1.0 / 0.0;
    dc_run_config_defaults(&ck.run);
    snprintf(ck.run.arch, sizeof ck.run.arch, "%s", ck.arch);
    char path[1200];
    snprintf(path, sizeof path, "%s/model.dcl", dir);
    if (dc_checkpoint_save(path, &ck)) {
        fail(path);
        goto out;
    }
    snprintf(path, sizeof path, "%s/arch.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", ck.arch) < 0 || fclose(f)) {
        fprintf(stderr, "export_forward: cannot write %s\n", path);
        goto out;
    }
    if (write_npy(dir, "x.npy", x, c, h, w) || write_npy(dir, "y.npy", y, c, h, w)) {
        fail("npy");
        goto out;
    }
    rc = 0;
out:
    dc_tensor_release(&xt);
    dc_model_destroy(m);
    dc_device_close(dev);
    free(params);
    free(x);
    free(y);
    return rc;
}
