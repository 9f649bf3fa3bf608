/* The model graph: spec parsing and presets, shape planning, and whole-model forward, loss
 * through the output head, and backward against the double-precision host interpreter of
 * tests/ref_model.c, whose gradient is itself checked by central finite differences; heads
 * (sigmoid, tanh, linear) with each loss they allow, and the combinations they refuse; colour
 * (3 channels: every preset, dncnn) and the residual head (its gradient by finite differences).
 * Then a tiny model must overfit a handful of images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/loss.h"
#include "daecl/conv_gemm.h"
#include "daecl/model.h"
#include "daecl/optim.h"
#include "ref_model.h"
#include "test.h"

/* ---- checks --------------------------------------------------------------------------------- */

static void test_specs(void)
{
    const char *presets[] = {"classic", "keras", "unet"};
    for (int i = 0; i < 3; i++) {
        dc_arch a;
        CHECK_OK(dc_arch_parse(presets[i], &a));
        size_t np = 0;
        double fl = 0;
        dc_layer_state ls[DC_MAX_LAYERS];
        CHECK_OK(dc_model_plan(&a, 1, 28, 28, ls, &np, &fl));
        CHECK(np == 28353, "%s has %zu parameters, expected 28353", presets[i], np);
        /* Canonical form parses back to the same canonical form. */
        char s1[DC_SPEC_MAX], s2[DC_SPEC_MAX];
        dc_arch_format(&a, s1, sizeof s1);
        dc_arch b;
        CHECK_OK(dc_arch_parse(s1, &b));
        dc_arch_format(&b, s2, sizeof s2);
        CHECK(strcmp(s1, s2) == 0, "round trip %s vs %s", s1, s2);
    }
    /* unet64: the unet with two 64-filter convs at 7x7 in place of one 32-filter conv */
    {
        dc_arch u;
        CHECK_OK(dc_arch_parse("unet64", &u));
        size_t np = 0;
        dc_layer_state ls[DC_MAX_LAYERS];
        CHECK_OK(dc_model_plan(&u, 1, 28, 28, ls, &np, NULL));
        CHECK(np == 28353 - 9248 + (32 * 9 * 64 + 64) + (64 * 9 * 64 + 64) + (64 * 9 * 32 + 32),
              "unet64 has %zu parameters", np);
        CHECK(np == 92993 && u.layers[u.nlayers - 1].from_input, "unet64: %zu parameters", np);
    }
    dc_arch a;
    CHECK_OK(dc_arch_parse("classic", &a));
    double fl;
    dc_layer_state ls[DC_MAX_LAYERS];
    CHECK_OK(dc_model_plan(&a, 1, 28, 28, ls, NULL, &fl));
    CHECK(fabs(fl / 1e6 - 9.0) < 0.2, "classic forward MFLOP %.2f, expected ~9.0", fl / 1e6);
    CHECK(ls[1].c == 32 && ls[1].h == 14 && ls[3].h == 7 && ls[8].c == 1 && ls[8].h == 28, "classic shapes");

    struct {
        const char *spec, *expect;
    } bad[] = {
        {"conv:32,pool,conv:x", "layer 3 'conv:x'"},
        {"conv:32,blah,conv:1", "layer 2 'blah'"},
        {"conv:32:k4,conv:1", "kernel size must be odd"},
        {"conv:32,add:nope,conv:1", "no earlier layer"},
        {"conv:32,,conv:1", "empty layer"},
        {"conv:32,pool", "last layer must be one with an activation (conv, convT)"},
        {"conv:8:wobble,conv:1", "unknown option"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_status s = dc_arch_parse(bad[i].spec, &a);
        CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), bad[i].expect),
              "'%s' -> %d '%s' (want '%s')", bad[i].spec, (int)s, dc_error_detail(), bad[i].expect);
    }
    /* Shape errors: a denoiser keeps the size; merges need matching shapes. */
    CHECK_OK(dc_arch_parse("classic", &a));
    CHECK(dc_model_plan(&a, 1, 30, 30, ls, NULL, NULL) == DC_ERR_INVALID_ARG &&
              strstr(dc_error_detail(), "multiples of 4"),
          "30x30: %s", dc_error_detail());
    CHECK_OK(dc_arch_parse("conv:8@a,pool,conv:4,up,add:a,conv:1:sigmoid", &a));
    CHECK(dc_model_plan(&a, 1, 8, 8, ls, NULL, NULL) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "shapes differ"),
          "add mismatch: %s", dc_error_detail());
}

/* C channels in and out: the presets end in conv:C, bound to the input's channels; the residual
 * head and the dncnn preset's sizes; canonical specs round-trip; old specs mean what they did. */
static void test_channels_specs(void)
{
    const char *presets[] = {"classic", "keras", "unet"};
    dc_layer_state ls[DC_MAX_LAYERS];
    for (int i = 0; i < 3; i++) {
        dc_arch a;
        CHECK_OK(dc_arch_parse(presets[i], &a));
        size_t np = 0;
        CHECK_OK(dc_model_plan(&a, 3, 28, 28, ls, &np, NULL));
        /* 3 inputs: 2*9*32 more weights in the first conv, 2*9*32 + 2 more in the last. */
        CHECK(np == 28353 + 2 * 9 * 32 * 2 + 2 && ls[a.nlayers - 1].c == 3, "%s at 3 channels: %zu parameters, %d out",
              presets[i], np, ls[a.nlayers - 1].c);
        CHECK(a.layers[a.nlayers - 1].from_input && !a.residual, "%s ends in conv:C", presets[i]);
    }
    struct {
        const char *spec, *canon;
        int residual;
    } ok[] = {
        {"conv:4,conv:C:linear,residual", "conv:4,conv:C:linear,residual", 1},
        {"conv:4, conv:C:sigmoid", "conv:4,conv:C:sigmoid", 0},
        {"conv:2,conv:1:sigmoid", "conv:2,conv:1:sigmoid", 0}, /* a version-3 checkpoint's spec */
        {"dncnn", NULL, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        dc_arch a, b;
        char s1[DC_SPEC_MAX], s2[DC_SPEC_MAX];
        CHECK_OK(dc_arch_parse(ok[i].spec, &a));
        dc_arch_format(&a, s1, sizeof s1);
        CHECK_OK(dc_arch_parse(s1, &b));
        dc_arch_format(&b, s2, sizeof s2);
        CHECK(strcmp(s1, s2) == 0 && a.residual == ok[i].residual && b.residual == ok[i].residual &&
                  (!ok[i].canon || strcmp(s1, ok[i].canon) == 0),
              "'%s' -> '%s' -> '%s' (residual %d)", ok[i].spec, s1, s2, b.residual);
    }
    /* dncnn: depth conv layers of width filters, the last linear to C, residual. */
    dc_arch a;
    dc_arch_options o = {5, 12, 0};
    CHECK_OK(dc_arch_parse_with("dncnn", &o, &a));
    size_t np = 0;
    CHECK_OK(dc_model_plan(&a, 3, 16, 16, ls, &np, NULL));
    CHECK(a.nlayers == 5 && a.residual && a.layers[4].act == DC_ACT_NONE && ls[0].c == 12 && ls[4].c == 3 &&
              np == (size_t)(3 * 9 * 12 + 12) + 3 * (12 * 9 * 12 + 12) + (12 * 9 * 3 + 3),
          "dncnn 5x12 at 3 channels: %d layers, %zu parameters", a.nlayers, np);
    CHECK_OK(dc_arch_parse("dncnn", &a));
    CHECK(a.nlayers == DC_DNCNN_DEPTH && a.residual, "dncnn's default depth");
    for (int i = 0; i < a.nlayers - 1; i++)
        CHECK(a.layers[i].channels == DC_DNCNN_WIDTH && a.layers[i].act == DC_ACT_RELU, "dncnn's default width, layer %d", i + 1);
    /* --residual on a preset: its last layer becomes linear. */
    o = (dc_arch_options){0, 0, 1};
    CHECK_OK(dc_arch_parse_with("classic", &o, &a));
    CHECK(a.residual && a.layers[a.nlayers - 1].act == DC_ACT_NONE, "classic --residual");
    struct {
        const char *spec, *expect;
        dc_arch_options o;
    } bad[] = {
        {"conv:4,conv:C:sigmoid,residual", "make it linear", {0, 0, 0}},
        {"conv:4,residual,conv:C:linear", "residual is the last token", {0, 0, 0}},
        {"residual", "residual is the last token", {0, 0, 0}},
        {"conv:c", "or C (the input's)", {0, 0, 0}},
        {"classic", "--depth and --width size the dncnn preset", {4, 0, 0}},
        {"dncnn", "--depth: dncnn has 2 to", {1, 0, 0}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dc_status s = dc_arch_parse_with(bad[i].spec, &bad[i].o, &a);
        CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), bad[i].expect), "'%s' -> %d '%s' (want '%s')",
              bad[i].spec, (int)s, dc_error_detail(), bad[i].expect);
    }
    /* A spec with a fixed output count refuses other channel counts, naming conv:C. */
    CHECK_OK(dc_arch_parse("conv:4,conv:1:sigmoid", &a));
    CHECK(dc_model_plan(&a, 3, 8, 8, ls, NULL, NULL) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "conv:C"),
          "conv:1 at 3 channels: %s", dc_error_detail());
}

/* The residual head refuses BCE on the model, with its own reason. */
static void test_residual_loss(dc_device *dev)
{
    dc_arch a;
    CHECK_OK(dc_arch_parse("conv:2,conv:C:linear,residual", &a));
    dc_model *m = NULL;
    CHECK_OK(dc_model_create(dev, &a, 3, 4, 4, 1, &m));
    if (!m) return;
    CHECK(dc_model_check_loss(m, DC_LOSS_BCE) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "residual model"),
          "BCE on a residual model: %s", dc_error_detail());
    CHECK_OK(dc_model_check_loss(m, DC_LOSS_MSE));
    CHECK_OK(dc_model_check_loss(m, DC_LOSS_L1));
    dc_model_destroy(m);
}

/* Device vs reference at c channels (the output head included, through dc_model_predict). */
static void test_gradients_c(dc_device *dev, uint64_t *rng, const char *spec, int c, int n, int h, int w,
                             dc_loss_kind loss, int fd)
{
    double gtol = fd ? 1e-4 : 1e-3;
    ref_model_check r;
    for (int draw = 1; draw <= 2; draw++) { /* one more draw on a miss, as test_gradients_loss */
        CHECK_OK(ref_check_model_c(dev, rng, spec, c, n, h, w, loss, fd, &r));
        fprintf(stderr, "%s + %s (c=%d n=%d %dx%d): FD err %.2e, output err %.2e, loss %.5f rel err %.2e, gradient err %.2e\n",
                spec, dc_loss_name(loss), c, n, h, w, r.fd_err, r.out_err, r.loss, r.loss_err, r.grad_err);
        if (r.grad_err < gtol && (!fd || r.fd_err < 1e-6)) break;
    }
    if (fd) CHECK(r.fd_err < 1e-6, "%s: FD normwise err %.2e > 1e-6", spec, r.fd_err);
    CHECK(r.out_err < 1e-4, "%s at %d channels: output err %.2e", spec, c, r.out_err);
    CHECK(r.loss_err < 1e-4, "%s + %s at %d channels: loss err %.2e", spec, dc_loss_name(loss), c, r.loss_err);
    CHECK(r.grad_err < gtol, "%s + %s at %d channels: gradient err %.2e", spec, dc_loss_name(loss), c, r.grad_err);
}

/* Whole model: FD on the host reference, then device vs reference (logits, loss, gradient). */
static void test_gradients_loss(dc_device *dev, uint64_t *rng, const char *spec, int n, int h, int w,
                                dc_loss_kind loss, int fd)
{
    /* ReLU/max-pool models (no FD): a pre-activation within float rounding of 0, or a pooling
     * pair within rounding of a tie, can take the other branch on the device than in double,
     * moving a whole contribution: seen in about 3 of 100 runs of the presets at 28x28, up to
     * 5e-3 (in main before the registry as well). So such a model that misses the tolerance is
     * drawn again once: a wrong gradient fails both draws, a rounding flip all but never
     * recurs. The FD-checked models (tanh, sigmoid) are smooth but for their max pools: two
     * pool inputs within the FD step of each other (likely tanh-saturated ones) put the central
     * difference across the switch, so an FD miss is drawn again once too (seed 1796232711:
     * FD 2.2e-3 on the convT model below while the device matched the reference's analytic
     * gradient to 1e-7; the next draw's FD 2e-9). */
    double gtol = fd ? 1e-4 : 1e-3;
    ref_model_check r;
    for (int draw = 1; draw <= 2; draw++) {
        CHECK_OK(ref_check_model(dev, rng, spec, n, h, w, loss, fd, &r));
        fprintf(stderr, "%s + %s (n=%d %dx%d): FD err %.2e, logits err %.2e, loss %.5f rel err %.2e, gradient err %.2e\n",
                spec, dc_loss_name(loss), n, h, w, r.fd_err, r.out_err, r.loss, r.loss_err, r.grad_err);
        if (r.grad_err < gtol && (!fd || r.fd_err < 1e-6)) break;
    }
    if (fd) CHECK(r.fd_err < 1e-6, "%s: FD normwise err %.2e > 1e-6", spec, r.fd_err);
    /* Normwise: through several layers, float rounding is relative to the size of the whole
     * output, not to a logit that happens to be near zero. */
    CHECK(r.out_err < 1e-4, "%s: logits err %.2e", spec, r.out_err);
    CHECK(r.loss_err < 1e-4, "%s + %s: loss err %.2e", spec, dc_loss_name(loss), r.loss_err);
    CHECK(r.grad_err < gtol, "%s + %s: gradient err %.2e (tolerance %.0e)", spec, dc_loss_name(loss), r.grad_err,
          gtol);
}

static void test_gradients(dc_device *dev, uint64_t *rng, const char *spec, int n, int h, int w, int fd)
{
    test_gradients_loss(dev, rng, spec, n, h, w, DC_LOSS_BCE, fd);
}

/* The output head is the last layer's activation, inside the model: every loss it allows is
 * checked against the reference (the gradient goes through the head), and dc_model_predict
 * gives head(logits). Nonsense combinations are refused with one line. */
static void test_heads(dc_device *dev, uint64_t *rng)
{
    static const struct {
        const char *spec;
        dc_act head;
    } heads[] = {
        {"conv:4:tanh@a,pool,conv:4:tanh,up,add:a,conv:1:k5:tanh", DC_ACT_TANH},
        {"conv:4:tanh@a,pool,conv:4:tanh,up,add:a,conv:1:k5:linear", DC_ACT_NONE},
        {"conv:4:tanh@a,pool,conv:4:tanh,up,add:a,conv:1:k5:sigmoid", DC_ACT_SIGMOID},
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        for (int l = 0; l < DC_LOSS_COUNT; l++) {
            dc_loss_kind loss = (dc_loss_kind)l;
            dc_status ok = dc_loss_check(loss, heads[i].head);
            if (ok == DC_OK) {
                test_gradients_loss(dev, rng, heads[i].spec, 2, 8, 6, loss, 1);
                continue;
            }
            /* Refused when the model is built for training, and by the loss itself. */
            CHECK(loss == DC_LOSS_BCE && heads[i].head != DC_ACT_SIGMOID, "%s refuses %s: %s", heads[i].spec,
                  dc_loss_name(loss), dc_error_detail());
            dc_arch a;
            dc_model *m = NULL;
            CHECK_OK(dc_arch_parse(heads[i].spec, &a));
            CHECK_OK(dc_model_create(dev, &a, 1, 8, 6, 2, &m));
            if (!m) continue;
            CHECK(m->head == heads[i].head, "%s: head %s", heads[i].spec, dc_act_name(m->head));
            dc_status s = dc_model_check_loss(m, loss);
            const char *msg = dc_error_detail();
            fprintf(stderr, "refused: %s + %s: %s\n", heads[i].spec, dc_loss_name(loss), msg);
            CHECK(s == DC_ERR_INVALID_ARG && strstr(msg, "needs a sigmoid output head") && !strchr(msg, '\n'),
                  "%s + %s: %d '%s'", heads[i].spec, dc_loss_name(loss), (int)s, msg);
            dc_tensor y;
            CHECK_OK(dc_tensor_create(dev, 2, 1, 8, 6, DC_LAYOUT_NCHW, &y));
            s = dc_model_loss(m, loss, &y, 2, 1, NULL, NULL, 0);
            CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "sigmoid output head"), "dc_model_loss: %s",
                  dc_error_detail());
            dc_tensor_release(&y);
            dc_model_destroy(m);
        }
    }
}

/* dc_model_predict applies the head: equal to the reference head(logits) for each head. */
static void test_predict(dc_device *dev, uint64_t *rng)
{
    const char *specs[] = {"conv:3:tanh,pool,conv:3,up,conv:1:tanh", "conv:3:tanh,pool,conv:3,up,conv:1:sigmoid",
                           "conv:3:tanh,pool,conv:3,up,conv:1:linear", "conv:3:tanh,pool,conv:3,up,conv:1:leaky"};
    const int n = 2, h = 8, w = 10;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        dc_arch a;
        CHECK_OK(dc_arch_parse(specs[i], &a));
        ref_model r;
        CHECK_OK(ref_model_init(&r, &a, n, h, w));
        size_t np = r.nparams, px = (size_t)n * h * w;
        double *p = malloc(np * sizeof *p), *x = malloc(px * sizeof *x), *y = calloc(px, sizeof *y),
               *want = malloc(px * sizeof *want);
        float *pf = malloc(np * sizeof *pf), *xf = malloc(px * sizeof *xf), *got = malloc(px * sizeof *got);
        for (size_t j = 0; j < np; j++) p[j] = pf[j] = (float)test_uniform(rng, -0.5, 0.5);
        for (size_t j = 0; j < px; j++) x[j] = xf[j] = (float)test_uniform(rng, 0, 1);
        ref_model_forward(&r, p, x);
        ref_model_loss(&r, DC_LOSS_MSE, y, 0, want); /* want = head(logits) */
        dc_model *m = NULL;
        dc_tensor xt = {0}, out = {0};
        CHECK_OK(dc_model_create(dev, &a, 1, h, w, n, &m));
        CHECK_OK(dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &xt));
        if (m && xt.buf) {
            CHECK_OK(dc_model_set_params(m, pf));
            CHECK_OK(dc_tensor_write(dev, &xt, xf));
            CHECK_OK(dc_model_predict(m, &xt, n, &out));
            CHECK_OK(dc_tensor_read(dev, &out, got));
            double err = 0, scale = 1e-30;
            for (size_t j = 0; j < px; j++) {
                err = fmax(err, fabs(got[j] - want[j]));
                scale = fmax(scale, fabs(want[j]));
            }
            fprintf(stderr, "predict %s: head output normwise err %.2e\n", specs[i], err / scale);
            CHECK(err / scale < 1e-5, "%s: predict err %.2e", specs[i], err / scale);
        }
        dc_tensor_release(&xt);
        dc_model_destroy(m);
        ref_model_free(&r);
        free(p); free(x); free(y); free(want); free(pf); free(xf); free(got);
    }
}

/* Bytes of the distinct buffers behind tensors t[0..n) (shared ones counted once), and of the
 * tensors themselves. */
static void buffer_bytes(const dc_tensor *const *t, int n, size_t *distinct, size_t *tensors)
{
    *distinct = *tensors = 0;
    for (int i = 0; i < n; i++) {
        if (!t[i]->buf) continue;
        *tensors += dc_tensor_size(t[i]) * sizeof(float);
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= t[j]->buf == t[i]->buf;
        size_t sz = 0;
        if (!seen && clGetMemObjectInfo(t[i]->buf, CL_MEM_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS)
            *distinct += sz;
    }
}

/* Tensors whose lifetimes do not overlap share buffers (a training model's output gradients, an
 * inference model's outputs): the inference model's output must be the training model's, bit
 * for bit where no conv runs in phases (within 1e-5 where one does), and the classic model must need clearly less memory than one buffer per
 * tensor. The gradients under sharing are checked against the reference in test_gradients. */
static void test_shared_buffers(dc_device *dev, uint64_t *rng, int all_models)
{
    struct { const char *spec; int n, h, w; } cases[] = {
        {"classic", 2, 28, 28},
        {"conv:3:tanh@a,conv:3:tanh@b,pool,up,add:b,add:a,conv:1:sigmoid", 2, 6, 8},
        {"conv:5:tanh@a,pool,conv:3:sigmoid,up,cat:a,conv:1:sigmoid", 3, 6, 10}, /* PoCL only */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (k == 2 && !all_models) break;
        const int n = cases[k].n, h = cases[k].h, w = cases[k].w;
        dc_arch a;
        CHECK_OK(dc_arch_parse(cases[k].spec, &a));
        dc_model *m = NULL, *inf = NULL;
        CHECK_OK(dc_model_create(dev, &a, 1, h, w, n, &m));
        if (!m) continue;
        CHECK_OK(dc_model_init_params(m, 11 + k));
        CHECK_OK(dc_model_create_shared(m, h, w, n, &inf));
        size_t px = (size_t)n * h * w;
        float *xf = malloc(px * sizeof *xf), *got[2] = {malloc(px * sizeof(float)), malloc(px * sizeof(float))};
        for (size_t j = 0; j < px; j++) xf[j] = (float)test_uniform(rng, 0, 1);
        dc_tensor xt = {0}, out;
        CHECK_OK(dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &xt));
        CHECK_OK(dc_tensor_write(dev, &xt, xf));
        for (int i = 0; i < 2 && inf; i++) {
            CHECK_OK(dc_model_predict(i ? inf : m, &xt, n, &out));
            CHECK_OK(dc_tensor_read(dev, &out, got[i]));
        }
        /* the same up to rounding: a 3x3 conv of an upsampling runs in phases (summed weights) */
        double most = 0;
        for (size_t j = 0; inf && j < px; j++)
            if (fabs((double)got[0][j] - got[1][j]) > most) most = fabs((double)got[0][j] - got[1][j]);
        if (inf) fprintf(stderr, "%s: inference model vs training model, largest difference %.1e\n", cases[k].spec, most);
        if (inf) CHECK(most <= 1e-5, "%s: the inference model's output differs by %.2e", cases[k].spec, most);
        if (k == 0 && inf) {
            const dc_tensor *grads[DC_MAX_LAYERS], *outs[DC_MAX_LAYERS];
            int L = m->arch.nlayers;
            for (int i = 0; i < L; i++) grads[i] = &m->layers[i].grad, outs[i] = &inf->layers[i].out;
            size_t shared, own;
            buffer_bytes(grads, L, &shared, &own);
            fprintf(stderr, "classic, batch %d: output gradients %zu bytes in shared buffers, %zu unshared\n", n, shared, own);
            CHECK(shared > 0 && shared < own * 7 / 10, "gradient buffers: %zu bytes shared vs %zu", shared, own);
            buffer_bytes(outs, L, &shared, &own);
            fprintf(stderr, "classic, batch %d: inference outputs %zu bytes in shared buffers, %zu unshared\n", n, shared, own);
            /* The folds leave few tensors (on llvmpipe the upsampled 32-channel one dominates), so
             * the bound is the classic chain's: never more than its two largest outputs. */
            size_t big[2] = {0, 0};
            for (int i = 0; i < L; i++) {
                size_t b = outs[i]->buf ? dc_tensor_size(outs[i]) * sizeof(float) : 0;
                if (b > big[0]) big[1] = big[0], big[0] = b;
                else if (b > big[1]) big[1] = b;
            }
            CHECK(shared > 0 && shared < own && shared <= big[0] + big[1],
                  "inference buffers: %zu bytes shared vs %zu unshared, two largest %zu", shared, own,
                  big[0] + big[1]);
            CHECK(dc_model_inference_floats(dev, &m->arch, m->in_c, m->layers) * n * sizeof(float) == shared,
                  "dc_model_inference_floats disagrees with the buffers allocated");
            /* the direct CPU kernels read both upsamplings in place (the 32->32 conv by channel
             * lanes, the output conv by unaligned row loads), so the output above compared the
             * folded convs with the training model's upsampling + conv */
            int folds = inf->up_folded[6] + inf->up_folded[8];
            fprintf(stderr, "classic, inference: %d of 2 upsamplings read in place\n", folds);
            if ((dev->type & CL_DEVICE_TYPE_CPU) && !dev->opts.loop_limit && dev->opts.conv_up_fold &&
                dc_conv_algo_for(dev) == DC_CONV_DIRECT)
                CHECK(folds == 2, "classic inference folds %d of its 2 upsamplings, not both", folds);
            /* and both convs before a max pool write the pool by channel lanes */
            int pools = inf->pool_out[0] + inf->pool_out[2];
            fprintf(stderr, "classic, inference: %d of 2 max pools written by the conv before\n", pools);
            if ((dev->type & CL_DEVICE_TYPE_CPU) && dev->opts.conv_pool_fold &&
                dc_conv_algo_for(dev) == DC_CONV_DIRECT)
                CHECK(pools == 2, "classic inference folds %d of its 2 max pools, not both", pools);
            /* DAECL_CONV_UP_FOLD=0 DAECL_CONV_POOL_FOLD=0: nothing folds, and the output is the
             * training model's without phases (DAECL_CONV_UP_PHASES=0; its forward reads the
             * upsamplings in place too) bit for bit; so is that of the folds without phases */
            dc_device_options saved = dev->opts;
            dev->opts.conv_up_phases = 0;
            CHECK_OK(dc_model_predict(m, &xt, n, &out));
            CHECK_OK(dc_tensor_read(dev, &out, got[0]));
            for (int v = 0; v < 2; v++) {
                dev->opts = saved;
                if (v == 0) dev->opts.conv_up_fold = dev->opts.conv_pool_fold = 0;
                else dev->opts.conv_up_phases = 0;
                dc_model *other = NULL;
                CHECK_OK(dc_model_create_shared(m, h, w, n, &other));
                if (!other) continue;
                int any = 0;
                for (int i = 0; i < L; i++) any |= other->up_folded[i] | other->pool_out[i];
                if (v == 0) CHECK(!any, "conv_up_fold = conv_pool_fold = 0: the inference model still folds");
                float *y = malloc(px * sizeof(float));
                CHECK_OK(dc_model_predict(other, &xt, n, &out));
                CHECK_OK(dc_tensor_read(dev, &out, y));
                CHECK(memcmp(y, got[0], px * sizeof(float)) == 0,
                      "classic: the inference model %s differs from the training model without phases",
                      v ? "without phases" : "without folds");
                free(y);
                dc_model_destroy(other);
            }
            dev->opts = saved;
        }
        dc_tensor_release(&xt);
        dc_model_destroy(inf);
        dc_model_destroy(m);
        free(xf); free(got[0]); free(got[1]);
    }
}

/* forward_only (denoise) builds conv programs without their backward kernels: the forward
 * pass must be bit-identical to the full programs', and a backward pass must fail, naming the
 * kernel it lacks, instead of running something else. */
static void test_forward_only(dc_device *dev, uint64_t *rng)
{
    const char *spec = "conv:3:tanh,pool,conv:4,convT:3:tanh,conv:1:sigmoid";
    const int n = 2, h = 8, w = 10;
    dc_arch a;
    CHECK_OK(dc_arch_parse(spec, &a));
    size_t px = (size_t)n * h * w;
    float *xf = malloc(px * sizeof *xf), *got[2] = {malloc(px * sizeof(float)), malloc(px * sizeof(float))};
    for (size_t j = 0; j < px; j++) xf[j] = (float)test_uniform(rng, 0, 1);
    for (int fo = 0; fo < 2; fo++) {
        dev->opts.forward_only = fo;
        dc_model *m = NULL;
        dc_tensor xt = {0}, out = {0};
        CHECK_OK(dc_model_create(dev, &a, 1, h, w, n, &m));
        CHECK_OK(dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &xt));
        if (m && xt.buf) {
            CHECK_OK(dc_model_init_params(m, 7));
            CHECK_OK(dc_tensor_write(dev, &xt, xf));
            CHECK_OK(dc_model_predict(m, &xt, n, &out));
            CHECK_OK(dc_tensor_read(dev, &out, got[fo]));
            if (fo) {
                CHECK_OK(dc_model_forward(m, &xt, n));
                CHECK_OK(dc_model_loss(m, DC_LOSS_MSE, &xt, n, 1, NULL, NULL, 0));
                dc_status s = dc_model_backward(m, &xt, n);
                CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "no kernel named"),
                      "backward with forward-only programs: %s: %s", dc_strerror(s), dc_error_detail());
                dc_clear_error();
            }
        }
        dc_tensor_release(&xt);
        dc_model_destroy(m);
    }
    dev->opts.forward_only = 0;
    CHECK(memcmp(got[0], got[1], px * sizeof(float)) == 0, "forward-only programs give a different output");
    free(xf); free(got[0]); free(got[1]);
}

/* Training's folds: the first layer writing only its pool's output and the argmax
 * (dc_model.pool_out[0]; its full-size output is never allocated), and the convs after the
 * upsamplings writing the upsamplings' input gradients (dc_model.up_grad; their gradients are
 * never allocated) and reading the upsamplings' inputs in place (the upsamplings' outputs are
 * never allocated). Without phases (conv_up_phases = 0) the classic model's logits are those of
 * the unfolded model (conv_pool_fold = conv_up_fold = 0) bit for bit, and its gradients within
 * rounding (the output layer's dW sums in another order in place); with phases, both within
 * rounding. */
/* |got - want| / |want| over n floats */
static double normwise(const float *got, const float *want, size_t n)
{
    double dd = 0, nn = 0;
    for (size_t j = 0; j < n; j++) {
        double d = (double)got[j] - want[j];
        dd += d * d;
        nn += (double)want[j] * want[j];
    }
    return sqrt(dd / (nn > 0 ? nn : 1));
}

static void test_training_folds(dc_device *dev, uint64_t *rng)
{
    enum { UNFOLDED, NO_PHASES, PHASES, NRUNS };
    const int n = 3, h = 28, w = 28;
    dc_arch a;
    CHECK_OK(dc_arch_parse("classic", &a));
    size_t px = (size_t)n * h * w;
    float *xf = malloc(px * sizeof *xf), *out[NRUNS] = {NULL}, *grad[NRUNS] = {NULL};
    for (size_t j = 0; j < px; j++) xf[j] = (float)test_uniform(rng, 0, 1);
    dc_device_options saved = dev->opts;
    int folded[NRUNS] = {0}, has_out[NRUNS] = {0}, ups[NRUNS] = {0};
    size_t np = 0;
    /* llvmpipe (loop-limited) compiles a program in minutes: there only the folded model's
     * own programs are built (test_layers compares the folded kernels bit for bit there) */
    int first = dev->opts.loop_limit ? PHASES : UNFOLDED;
    for (int run = first; run < NRUNS; run++) {
        dev->opts = saved;
        dev->opts.conv_pool_fold = dev->opts.conv_up_fold = run != UNFOLDED;
        if (run == NO_PHASES) dev->opts.conv_up_phases = 0;
        dc_model *m = NULL;
        dc_tensor xt = {0};
        CHECK_OK(dc_model_create(dev, &a, 1, h, w, n, &m));
        CHECK_OK(dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &xt));
        if (m && xt.buf) {
            np = m->nparams;
            folded[run] = m->pool_out[0];
            ups[run] = m->up_grad[6] + m->up_grad[8];
            if (m->up_grad[8]) CHECK(!m->layers[7].grad.buf, "a folded upsampling has a gradient buffer");
            if (m->up_folded[8]) CHECK(!m->layers[7].out.buf, "an upsampling read in place has an output buffer");
            has_out[run] = m->layers[0].out.buf != NULL;
            out[run] = malloc(px * sizeof(float));
            grad[run] = malloc(np * sizeof(float));
            CHECK_OK(dc_model_init_params(m, 11));
            CHECK_OK(dc_tensor_write(dev, &xt, xf));
            CHECK_OK(dc_model_forward(m, &xt, n));
            CHECK_OK(dc_model_loss(m, DC_LOSS_BCE, &xt, n, 1, NULL, NULL, 0));
            CHECK_OK(dc_model_backward(m, &xt, n));
            dc_tensor z = dc_model_logits(m, n);
            dc_tensor g = dc_tensor_view(m->grads, 0, 1, 1, 1, (int)np, DC_LAYOUT_NCHW);
            CHECK_OK(dc_tensor_read(dev, &z, out[run]));
            CHECK_OK(dc_tensor_read(dev, &g, grad[run]));
        }
        dc_tensor_release(&xt);
        dc_model_destroy(m);
    }
    dev->opts = saved;
    fprintf(stderr, "classic, training: layer 1 writes the pool's output %s; %d of 2 convs write "
            "the upsampling's input gradient\n", folded[PHASES] ? "and its argmax" : "no (the pool runs)",
            ups[PHASES]);
    if (first == UNFOLDED)
        CHECK(!folded[UNFOLDED] && has_out[UNFOLDED] && !ups[UNFOLDED],
              "conv_pool_fold = conv_up_fold = 0: training still folds");
    int cpu = (dev->type & CL_DEVICE_TYPE_CPU) && dc_conv_algo_for(dev) == DC_CONV_DIRECT;
    if (cpu && saved.conv_pool_fold)
        CHECK(folded[PHASES] && !has_out[PHASES], "classic training on a CPU: the first layer writes its full output");
    if (cpu && saved.conv_up_fold && !saved.loop_limit)
        CHECK(ups[PHASES] == 2, "classic training on a CPU: %d of 2 upsamplings' backward folded", ups[PHASES]);
    if (out[UNFOLDED] && out[NO_PHASES] && grad[UNFOLDED] && grad[NO_PHASES]) {
        CHECK(memcmp(out[UNFOLDED], out[NO_PHASES], px * sizeof(float)) == 0,
              "classic training: the folds change the logits");
        double rel = normwise(grad[NO_PHASES], grad[UNFOLDED], np);
        fprintf(stderr, "classic, training folds without phases: logits bit for bit, gradients "
                "normwise %.1e\n", rel);
        CHECK(rel <= 1e-6, "classic training: the folds change the gradients by %.2e normwise", rel);
    }
    /* phases: summed weights, rounded differently */
    if (out[NO_PHASES] && out[PHASES] && grad[NO_PHASES] && grad[PHASES]) {
        double most = 0;
        for (size_t j = 0; j < px; j++)
            most = fmax(most, fabs((double)out[PHASES][j] - out[NO_PHASES][j]));
        double rel = normwise(grad[PHASES], grad[NO_PHASES], np);
        fprintf(stderr, "classic, training in phases: logits within %.1e, gradients normwise %.1e\n",
                most, rel);
        CHECK(most <= 1e-5, "classic training in phases: the logits differ by %.2e", most);
        CHECK(rel <= 1e-5, "classic training in phases: the gradients differ by %.2e normwise", rel);
    }
    for (int run = 0; run < NRUNS; run++) free(out[run]), free(grad[run]);
    free(xf);
}

/* A tiny model overfits 8 binary images. */
static void test_overfit(dc_device *dev, uint64_t *rng)
{
    const int n = 8, h = 12, w = 12;
    dc_arch a;
    CHECK_OK(dc_arch_parse("conv:16,pool,conv:16,up,conv:1:sigmoid", &a));
    dc_model *m = NULL;
    CHECK_OK(dc_model_create(dev, &a, 1, h, w, n, &m));
    if (!m) return;
    CHECK_OK(dc_model_init_params(m, 7));
    float img[8 * 12 * 12];
    for (int i = 0; i < n * h * w; i++) img[i] = test_uniform(rng, 0, 1) < 0.3 ? 1.0f : 0.0f;
    dc_tensor xt;
    CHECK_OK(dc_tensor_create(dev, n, 1, h, w, DC_LAYOUT_NCHW, &xt));
    CHECK_OK(dc_tensor_write(dev, &xt, img));
    dc_optim_config oc;
    dc_optim_defaults(DC_OPT_ADAM, &oc);
    oc.lr = 0.01f;
    cl_mem state;
    CHECK_OK(dc_buffer_create(dev, dc_optim_state_floats(oc.kind, m->nparams), "state", &state));
    CHECK_OK(dc_optim_state_init(dev, &oc, state, m->nparams));
    dc_accum acc;
    CHECK_OK(dc_accum_create(dev, 1, &acc));
    double first = 0, last = 0;
    const int steps = 300;
    for (int s = 1; s <= steps; s++) {
        CHECK_OK(dc_accum_reset(dev, &acc));
        CHECK_OK(dc_model_forward(m, &xt, n));
        CHECK_OK(dc_model_loss(m, DC_LOSS_BCE, &xt, n, 1, NULL, &acc, 0));
        CHECK_OK(dc_model_backward(m, &xt, n));
        CHECK_OK(dc_optim_step(dev, &oc, m->params, m->grads, state, m->nparams, s));
        if (s == 1 || s == steps) {
            double v;
            CHECK_OK(dc_accum_read(dev, &acc, &v));
            if (s == 1) first = v / n;
            else last = v / n;
        }
    }
    fprintf(stderr, "overfit 8 images, %d Adam steps: BCE %.4f -> %.4f (x%.1f)\n", steps, first, last, first / last);
    CHECK(last < first / 5, "loss fell only from %.4f to %.4f (want 5x)", first, last);
    dc_accum_release(&acc);
    clReleaseMemObject(state);
    dc_tensor_release(&xt);
    dc_model_destroy(m);
}

/* Each section's wall time on stderr: on rusticl (tests/ci/rusticl.sh) nearly all of it is
 * compiling programs, so its log says which section to trim when CI grows. */
#define TIMED(what, call)                                                        \
    do {                                                                         \
        double t0_ = test_now();                                                 \
        call;                                                                    \
        fprintf(stderr, "  (%s: %.1f s)\n", what, test_now() - t0_);              \
    } while (0)

int main(void)
{
    uint64_t rng = test_seed();
    test_specs();
    test_channels_specs();
    dc_device *dev = NULL;
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (!dev) TEST_MAIN_END();
    TIMED("forward-only programs", test_forward_only(dev, &rng));
    TIMED("training folds", test_training_folds(dev, &rng));
    /* DAECL_TEST_MODEL_SHAPES=1 (tests/ci/rusticl.sh, ~30 s of compiler per program there):
     * fewer geometries; everything is still run on PoCL in every CI run. */
    int all_models = !getenv("DAECL_TEST_MODEL_SHAPES");
    /* Smooth activations for the finite-difference check (ReLU has kinks); odd sizes; skips.
     * On rusticl (a contended CI run) the concat spec took 781 s and the pool fold's 360 s of
     * compiling, against 29-135 s for the others; test_layers checks concat and the fold there. */
    if (all_models)
        TIMED("gradients", test_gradients(dev, &rng, "conv:5:tanh@a,pool,conv:3:sigmoid,up,cat:a,conv:1:sigmoid", 3, 6, 10, 1));
    TIMED("gradients", test_gradients(dev, &rng, "conv:4:tanh@a,pool,conv:4:tanh,up,add:a,convT:3:tanh,pool,conv:1:k5:sigmoid", 2, 8, 6, 1));
    /* gradients shared in place (an add passes its gradient on: the up before it reads the
     * add's, the add before an add too, and both skip shares come from the last add's), and
     * the first layer's pool fold with a skip share */
    TIMED("gradients", test_gradients(dev, &rng, "conv:3:tanh@a,conv:3:tanh@b,pool,up,add:b,add:a,conv:1:sigmoid", 2, 6, 8, 1));
    if (all_models) TIMED("gradients", test_gradients(dev, &rng, "conv:8@a,pool,up,add:a,conv:1:sigmoid", 2, 8, 10, 1));
    /* The presets as trained (ReLU; no FD, device vs reference only), at the MNIST size so
     * they share compiled kernels with each other and with the training tests. */
    TIMED("gradients", test_gradients(dev, &rng, "classic", 2, 28, 28, 0));
    /* keras, unet, dncnn and the 3-channel models: PoCL only (see all_models) */
    if (all_models) {
        TIMED("gradients", test_gradients(dev, &rng, "unet", 2, 28, 28, 0));
        TIMED("gradients", test_gradients(dev, &rng, "keras", 2, 28, 28, 0));
        /* The 10-minute recipe's preset (unet64: 64-channel layers at 7x7, channel lanes both
         * ways) with tanh for ReLU: with ReLU its random-init logits differ from the double
         * reference by 1e-4 to 6e-4 normwise depending on the seed, on both conv lane forms
         * alike (DAECL_CONV_LANES=pixels too), while loss and gradients agree to 1e-7; with
         * tanh the same graph agrees to 1e-5, so those are ReLU branch flips, not the kernels. */
        TIMED("gradients", test_gradients(dev, &rng,
                       "conv:32:tanh@e1,pool,conv:32:tanh@e2,pool,conv:64:tanh,conv:64:tanh,"
                       "conv:32:tanh,up,add:e2,conv:32:tanh,up,add:e1,conv:C:sigmoid",
                       2, 28, 28, 0));
    }
    /* Colour: every preset at 3 channels (small images: few new kernels), the residual head's
     * gradient by finite differences (smooth layers), and the dncnn preset at a small size. */
    if (all_models) { /* 3-channel geometries: ~20 more programs (over 10 minutes on rusticl) */
        TIMED("gradients", test_gradients_c(dev, &rng, "classic", 3, 2, 8, 12, DC_LOSS_BCE, 0));
        TIMED("gradients", test_gradients_c(dev, &rng, "keras", 3, 2, 8, 12, DC_LOSS_MSE, 0));
        TIMED("gradients", test_gradients_c(dev, &rng, "unet", 3, 2, 8, 12, DC_LOSS_L1, 0));
        TIMED("gradients", test_gradients_c(dev, &rng, "conv:5:tanh,conv:4:tanh:k1,conv:C:linear,residual", 3, 2, 5, 7, DC_LOSS_MSE, 1));
        TIMED("gradients", test_gradients_c(dev, &rng, "conv:5:tanh,conv:C:linear,residual", 1, 2, 5, 7, DC_LOSS_L1, 1));
    }
    if (all_models) {
        dc_arch a;
        dc_arch_options o = {4, 6, 0};
        char spec[DC_SPEC_MAX];
        CHECK_OK(dc_arch_parse_with("dncnn", &o, &a));
        dc_arch_format(&a, spec, sizeof spec);
        TIMED("gradients", test_gradients_c(dev, &rng, spec, 3, 2, 9, 11, DC_LOSS_MSE, 0));
    }
    TIMED("residual loss", test_residual_loss(dev));
    TIMED("heads", test_heads(dev, &rng));
    TIMED("predict", test_predict(dev, &rng));
    TIMED("shared buffers", test_shared_buffers(dev, &rng, all_models));
    /* 300 steps on new geometries: 671 s on rusticl in CI13, the longest section there, and
     * tests/ci/rusticl.sh already trains the classic model on rusticl against PoCL's loss. */
    if (all_models) TIMED("overfit", test_overfit(dev, &rng));
    dc_device_close(dev);
    TEST_MAIN_END();
}
