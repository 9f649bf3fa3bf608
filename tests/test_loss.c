/* Losses, device accumulators and metrics against the double-precision host reference
 * (tests/ref_loss.c), which is itself checked by central finite differences and on small cases
 * worked out by hand.
 *
 * Error measures (printed, so they can be quoted):
 *   loss sums: |dev - ref| / max(|ref|, 1e-3·n)                        limit 1e-4
 *     (n images; the floor is a mean loss of 1e-3 per image: a tiny loss such as (p-y)² with
 *     p ≈ y carries the float rounding of p, ~1e-7 absolute, as a large relative error)
 *   gradients, outputs: max_i |dev_i - ref_i| / max(|ref_i|, 1e-2·max_j |ref_j|)  limit 1e-4
 *     (same reason: sigmoid(z) - y near 0 is compared absolutely, at 1e-6 of the largest element)
 *   PSNR, accuracy sums: |dev - ref| / |ref|; SSIM: |dev - ref| / n, the absolute error of the
 *     per-image mean (SSIM ≤ 1; its variance terms E[x²] - μ² cancel in float, ~1e-5 abs)
 *                                                                       limit 1e-4
 *   accumulation over 500 batches: |slot - Σ ref| / |Σ ref|            limit 1e-5 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/kernels.h"
#include "daecl/loss.h"
#include "daecl/metrics.h"
#include "daecl/tensor.h"
#include "ref_loss.h"
#include "test.h"

static uint64_t rng;
static dc_device *dev;

/* Largest errors seen, per category, for the summary. */
static double max_loss_err, max_grad_err, max_out_err, max_metric_err, max_accum_err;

static double rel(double a, double b)
{
    double d = fabs(a - b);
    return d == 0 ? 0 : d / fabs(b);
}

/* Max elementwise error with a floor of 1e-2 of the largest reference magnitude. */
/* Largest relative error, each element relative to at least 1 % of the largest reference
 * value and at least abs_floor. */
static double vec_err(const float *dev_v, const double *ref, size_t n, double abs_floor)
{
    double mx = 0, e = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ref[i]));
    double floor_ = fmax(mx * 1e-2, abs_floor);
    if (floor_ == 0) floor_ = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)dev_v[i] - ref[i]) / fmax(fabs(ref[i]), floor_);
        if (!(d <= e)) e = d; /* NaN sticks */
    }
    return e;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

struct variant {
    dc_loss_kind kind;
    dc_act head;
    const char *name;
};
static const struct variant variants[] = {
    {DC_LOSS_BCE, DC_ACT_SIGMOID, "bce"},       {DC_LOSS_MSE, DC_ACT_SIGMOID, "mse+sigmoid"},
    {DC_LOSS_MSE, DC_ACT_NONE, "mse+linear"},   {DC_LOSS_L1, DC_ACT_SIGMOID, "l1+sigmoid"},
    {DC_LOSS_L1, DC_ACT_NONE, "l1+linear"},     {DC_LOSS_MSE, DC_ACT_TANH, "mse+tanh"},
    {DC_LOSS_L1, DC_ACT_TANH, "l1+tanh"},       {DC_LOSS_MSE, DC_ACT_RELU, "mse+relu"},
    {DC_LOSS_L1, DC_ACT_RELU, "l1+relu"},       {DC_LOSS_MSE, DC_ACT_LEAKY_RELU, "mse+leaky"},
    {DC_LOSS_L1, DC_ACT_LEAKY_RELU, "l1+leaky"},
};
#define NVARIANTS (int)(sizeof variants / sizeof variants[0])

/* A device tensor viewing a fresh buffer at a small odd offset, so offsets are exercised. */
static dc_status make_view(int n, int c, int h, int w, size_t off, cl_mem *buf, dc_tensor *t)
{
    size_t cnt = (size_t)n * c * h * w;
    DC_TRY(dc_buffer_create(dev, cnt + off + 5, "test tensor", buf));
    *t = dc_tensor_view(*buf, off, n, c, h, w, DC_LAYOUT_NCHW);
    return DC_OK;
}

/* Run one variant on given host data; compare loss, gradient, output with the reference.
 * Returns the loss error; writes finite flags. */
static void run_loss_case(const struct variant *v, int n, int c, int h, int w, const float *z,
                          const float *y, double limit, const char *label)
{
    size_t cnt = (size_t)n * c * h * w, per = (size_t)c * h * w;
    cl_mem bz = NULL, by = NULL, bdz = NULL, bo = NULL;
    dc_tensor tz, ty, tdz, to;
    dc_accum acc = {0};
    float *dz = malloc(cnt * sizeof *dz), *out = malloc(cnt * sizeof *out);
    double *rdz = malloc(cnt * sizeof *rdz), *rout = malloc(cnt * sizeof *rout);
    if (!dz || !out || !rdz || !rout) abort();

    CHECK_OK(make_view(n, c, h, w, 3, &bz, &tz));
    CHECK_OK(make_view(n, c, h, w, 1, &by, &ty));
    CHECK_OK(make_view(n, c, h, w, 7, &bdz, &tdz));
    CHECK_OK(make_view(n, c, h, w, 0, &bo, &to));
    CHECK_OK(dc_accum_create(dev, 3, &acc));
    if (!bz || !by || !bdz || !bo || !acc.buf) goto done;
    CHECK_OK(dc_tensor_write(dev, &tz, z));
    CHECK_OK(dc_tensor_write(dev, &ty, y));
    CHECK_OK(dc_loss_compute(dev, v->kind, v->head, &tz, &ty, &tdz, &to, &acc, 1));
    /* Eval-only call into another slot: same value, nothing else written. */
    CHECK_OK(dc_loss_compute(dev, v->kind, v->head, &tz, &ty, NULL, NULL, &acc, 2));
    double got[3];
    CHECK_OK(dc_accum_read(dev, &acc, got));
    CHECK_OK(dc_tensor_read(dev, &tdz, dz));
    CHECK_OK(dc_tensor_read(dev, &to, out));

    double ref = ref_loss(v->kind, v->head, z, y, cnt, per, rdz, rout);
    /* The gradient's floor: its value at a residual p - y of 1e-3. Below that, float's rounding
     * of p and y (~6e-8 each) alone exceeds the 1e-4 limit: a random 1-pixel case with
     * |tanh(z) - y| = 2e-5 measured 2.1e-4. */
    double le = fabs(got[1] - ref) / fmax(fabs(ref), 1e-3 * n);
    double ge = vec_err(dz, rdz, cnt, 2e-3 / (double)cnt), oe = vec_err(out, rout, cnt, 0);
    max_loss_err = fmax(max_loss_err, le);
    max_grad_err = fmax(max_grad_err, ge);
    max_out_err = fmax(max_out_err, oe);
    fprintf(stderr, "  %-12s %-14s %dx%dx%dx%d: loss %.6g (ref %.6g) rel err %.2e, grad %.2e, out %.2e\n",
            v->name, label, n, c, h, w, got[1], ref, le, ge, oe);
    CHECK(isfinite(got[1]) && le <= limit, "%s %s: loss %.9g vs ref %.9g (rel %.3g)", v->name, label,
          got[1], ref, le);
    CHECK(got[0] == 0.0, "%s: slot 0 untouched, holds %g", v->name, got[0]);
    CHECK(got[2] == got[1], "%s: eval-only call gives %.9g, full call %.9g", v->name, got[2], got[1]);
    CHECK(all_finite(dz, cnt) && ge <= limit, "%s %s: gradient rel err %.3g", v->name, label, ge);
    CHECK(all_finite(out, cnt) && oe <= limit, "%s %s: output rel err %.3g", v->name, label, oe);
done:
    dc_accum_release(&acc);
    if (bz) clReleaseMemObject(bz);
    if (by) clReleaseMemObject(by);
    if (bdz) clReleaseMemObject(bdz);
    if (bo) clReleaseMemObject(bo);
    free(dz);
    free(out);
    free(rdz);
    free(rout);
}

static void fill_inputs(float *z, float *y, size_t cnt, double zlo, double zhi)
{
    for (size_t i = 0; i < cnt; i++) {
        z[i] = (float)test_uniform(&rng, zlo, zhi);
        double u = test_uniform(&rng, 0, 1);
        /* MNIST-like targets: many exact 0s, some exact 1s, grey levels between. */
        y[i] = u < 0.3 ? 0.0f : u < 0.4 ? 1.0f : (float)test_uniform(&rng, 0, 1);
    }
}

static void test_losses_random(void)
{
    static const int shapes[][4] = {{3, 1, 7, 9}, {5, 1, 28, 28}, {2, 3, 5, 6}, {1, 1, 1, 1}};
    fprintf(stderr, "losses vs double reference, random logits in [-6, 6]:\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
        size_t cnt = (size_t)n * c * h * w;
        float *z = malloc(cnt * sizeof *z), *y = malloc(cnt * sizeof *y);
        if (!z || !y) abort();
        for (int v = 0; v < NVARIANTS; v++) {
            fill_inputs(z, y, cnt, -6, 6);
            run_loss_case(&variants[v], n, c, h, w, z, y, 1e-4, "random");
        }
        free(z);
        free(y);
    }
}

static void test_losses_extreme(void)
{
    fprintf(stderr, "extreme logits:\n");
    static const float zs[] = {80.0f, -80.0f, 1e4f, -1e4f, 30.0f, -30.0f, 0.0f, 1e-30f};
    const int n = 2, c = 1, h = 4, w = 8; /* 64 values */
    size_t cnt = (size_t)n * c * h * w;
    float z[64], y[64];
    for (size_t i = 0; i < cnt; i++) {
        z[i] = zs[i % 8];
        y[i] = (i / 8) % 3 == 0 ? 0.0f : (i / 8) % 3 == 1 ? 1.0f : 0.25f;
    }
    /* Losses reach ~1e4 per element here, so the relative limit on the loss still applies. */
    for (int v = 0; v < NVARIANTS; v++) run_loss_case(&variants[v], n, c, h, w, z, y, 1e-4, "±80,±1e4");
}

/* The reference gradient is the derivative of the reference loss: central differences in
 * double (step 1e-5) on a small random case, L = Σ l / count; |fd - dz| / max(|dz|, 1e-4) < 1e-5.
 * (L1 has a kink at p = y, which random inputs do not hit.) */
static void test_reference_gradients(void)
{
    enum { N = 2, PER = 15, CNT = N * PER };
    double z[CNT], y[CNT], dz[CNT];
    double worst = 0;
    for (int v = 0; v < NVARIANTS; v++) {
        for (int i = 0; i < CNT; i++) {
            z[i] = test_uniform(&rng, -4, 4);
            y[i] = test_uniform(&rng, 0, 1);
        }
        ref_loss_d(variants[v].kind, variants[v].head, z, y, CNT, PER, dz, NULL);
        for (int i = 0; i < CNT; i++) {
            double hstep = 1e-5, keep = z[i];
            z[i] = keep + hstep;
            double lp = ref_loss_d(variants[v].kind, variants[v].head, z, y, CNT, PER, NULL, NULL) / N;
            z[i] = keep - hstep;
            double lm = ref_loss_d(variants[v].kind, variants[v].head, z, y, CNT, PER, NULL, NULL) / N;
            z[i] = keep;
            double fd = (lp - lm) / (2 * hstep);
            /* Gradients are O(1/CNT) = 0.03; the floor keeps near-zero ones (p ≈ y) from
             * dividing the difference quotient's rounding (~1e-11) by ~0. */
            double e = fabs(fd - dz[i]) / fmax(fabs(dz[i]), 1e-4);
            worst = fmax(worst, e);
            CHECK(e < 1e-5, "%s: d/dz[%d] finite difference %.10g vs reference %.10g", variants[v].name, i,
                  fd, dz[i]);
        }
    }
    fprintf(stderr, "reference gradients vs central differences: max rel err %.2e\n", worst);
}

static void test_loss_errors(void)
{
    cl_mem b1 = NULL, b2 = NULL;
    dc_tensor z, y;
    CHECK_OK(make_view(2, 1, 3, 3, 0, &b1, &z));
    CHECK_OK(make_view(2, 1, 3, 4, 0, &b2, &y));
    dc_accum acc = {0};
    CHECK_OK(dc_accum_create(dev, 1, &acc));
    if (!b1 || !b2 || !acc.buf) goto done;
    dc_status s = dc_loss_compute(dev, DC_LOSS_BCE, DC_ACT_NONE, &z, &z, NULL, NULL, &acc, 0);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "sigmoid"), "bce without sigmoid: %s",
          dc_error_detail());
    s = dc_loss_compute(dev, DC_LOSS_BCE, DC_ACT_TANH, &z, &z, NULL, NULL, &acc, 0);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "needs a sigmoid output head") &&
              strstr(dc_error_detail(), "tanh") && !strchr(dc_error_detail(), '\n'),
          "bce on a tanh head: %s", dc_error_detail());
    s = dc_loss_compute(dev, DC_LOSS_MSE, DC_ACT_SIGMOID, &z, &y, NULL, NULL, &acc, 0);
    CHECK(s == DC_ERR_INVALID_ARG, "shape mismatch refused: %s", dc_error_detail());
    s = dc_loss_compute(dev, DC_LOSS_MSE, DC_ACT_SIGMOID, &z, &z, NULL, NULL, &acc, 1);
    CHECK(s == DC_ERR_INVALID_ARG, "slot out of range refused: %s", dc_error_detail());
    dc_loss_kind k;
    CHECK(dc_loss_parse("MAE", &k) == DC_OK && k == DC_LOSS_L1, "parse mae");
    CHECK(dc_loss_parse("binary_crossentropy", &k) == DC_OK && k == DC_LOSS_BCE, "parse bce");
    CHECK(dc_loss_parse("huber", &k) == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "huber"),
          "unknown loss: %s", dc_error_detail());
    for (int i = 0; i < DC_LOSS_COUNT; i++) {
        CHECK(dc_loss_parse(dc_loss_name((dc_loss_kind)i), &k) == DC_OK && k == (dc_loss_kind)i,
              "name/parse round trip %d", i);
    }
done:
    dc_accum_release(&acc);
    if (b1) clReleaseMemObject(b1);
    if (b2) clReleaseMemObject(b2);
}

/* 500 batches into one slot (with a smaller last batch, as an epoch ends), vs the double sum of
 * the per-batch references; then error-free behaviour on tiny increments to a large sum. */
static void test_accumulation(void)
{
    enum { BATCHES = 500, MAXN = 16, C = 1, H = 28, W = 28 };
    size_t per = (size_t)C * H * W, cnt = MAXN * per;
    float *z = malloc(cnt * sizeof *z), *y = malloc(cnt * sizeof *y);
    cl_mem bz = NULL, by = NULL;
    dc_tensor tz, ty;
    dc_accum acc = {0};
    if (!z || !y) abort();
    CHECK_OK(make_view(MAXN, C, H, W, 0, &bz, &tz));
    CHECK_OK(make_view(MAXN, C, H, W, 0, &by, &ty));
    CHECK_OK(dc_accum_create(dev, 2, &acc));
    if (!bz || !by || !acc.buf) goto done;
    double want = 0, images = 0;
    for (int b = 0; b < BATCHES; b++) {
        int n = b == BATCHES - 1 ? 5 : MAXN;
        fill_inputs(z, y, (size_t)n * per, -3, 3);
        tz.n = ty.n = n;
        CHECK_OK(dc_tensor_write(dev, &tz, z));
        CHECK_OK(dc_tensor_write(dev, &ty, y));
        CHECK_OK(dc_loss_compute(dev, DC_LOSS_BCE, DC_ACT_SIGMOID, &tz, &ty, NULL, NULL, &acc, 0));
        want += ref_loss(DC_LOSS_BCE, DC_ACT_SIGMOID, z, y, (size_t)n * per, per, NULL, NULL);
        images += n;
    }
    double got[2];
    CHECK_OK(dc_accum_read(dev, &acc, got));
    double e = rel(got[0], want);
    max_accum_err = fmax(max_accum_err, e);
    fprintf(stderr, "accumulation, %d batches (%g images): sum %.10g ref %.10g rel err %.2e, epoch mean %.6f\n",
            BATCHES, images, got[0], want, e, got[0] / images);
    CHECK(e <= 1e-5, "500-batch accumulation rel err %.3g", e);

    /* Reset, then 1.0 followed by 4000 additions of 2^-27 (each below half an ulp of 1 in float,
     * so a plain float sum would stay at 1.0): expect exactly 1 + 4000·2^-27. */
    CHECK_OK(dc_accum_reset(dev, &acc));
    {
        enum { NP = 4001 };
        static float part[NP];
        part[0] = 1.0f;
        for (int i = 1; i < NP; i++) part[i] = 0x1p-27f;
        cl_mem pb = NULL;
        CHECK_OK(dc_buffer_create(dev, NP, "test partials", &pb));
        if (pb) {
            CHECK_OK(clEnqueueWriteBuffer(dev->queue, pb, CL_TRUE, 0, sizeof part, part, 0, NULL, NULL) ==
                             CL_SUCCESS
                         ? DC_OK
                         : DC_ERR_OPENCL);
            CHECK_OK(dc_accum_add_partials(dev, &acc, 1, 1, pb, 0, NP, 1.0f));
            CHECK_OK(dc_accum_add_partials(dev, &acc, 1, 1, pb, 1, NP - 1, 1.0f));
            CHECK_OK(dc_accum_read(dev, &acc, got));
            double exact = 1.0 + 8000 * 0x1p-27;
            double te = rel(got[1], exact);
            max_accum_err = fmax(max_accum_err, te);
            fprintf(stderr, "tiny increments: %.15g, exact %.15g, rel err %.2e\n", got[1], exact, te);
            CHECK(te <= 1e-12 && got[0] == 0.0, "tiny increments lost: %.15g vs %.15g", got[1], exact);
            clReleaseMemObject(pb);
        }
    }
done:
    dc_accum_release(&acc);
    if (bz) clReleaseMemObject(bz);
    if (by) clReleaseMemObject(by);
    free(z);
    free(y);
}

/* Hand-computable SSIM cases for the reference itself. */
static void test_reference_ssim_by_hand(void)
{
    const double c1 = 1e-4, c2 = 9e-4;
    /* 1×1 images: window 1, no variance: (2xy + C1)/(x² + y² + C1). */
    double x1 = 0.2, y1 = 0.6;
    double want = (2 * x1 * y1 + c1) / (x1 * x1 + y1 * y1 + c1);
    double got = ref_ssim_plane(&x1, &y1, 1, 1);
    CHECK(fabs(got - want) < 1e-14, "1x1 SSIM %.15g vs %.15g", got, want);
    /* 3×3: a single 1 in the centre vs constant 0.5. The 3-tap Gaussian is (a, 1, a)/(1 + 2a),
     * a = exp(-1/4.5); centre weight wc = 1/(1+2a)²: μx = E[x²] = wc, σx² = wc - wc², μy = 0.5,
     * σy = σxy = 0. */
    double x3[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, y3[9];
    for (int i = 0; i < 9; i++) y3[i] = 0.5;
    double a = exp(-1.0 / 4.5), wc = 1.0 / ((1 + 2 * a) * (1 + 2 * a));
    want = (2 * wc * 0.5 + c1) / (wc * wc + 0.25 + c1) * (c2 / (wc - wc * wc + c2));
    got = ref_ssim_plane(x3, y3, 3, 3);
    fprintf(stderr, "hand SSIM 3x3: %.12f (reference %.12f)\n", want, got);
    CHECK(fabs(got - want) < 1e-12, "3x3 SSIM %.15g vs %.15g", got, want);
    CHECK(ref_ssim_window(28, 28) == 11 && ref_ssim_window(7, 9) == 7 && ref_ssim_window(5, 3) == 3 &&
              ref_ssim_window(10, 12) == 9 && ref_ssim_window(1, 4) == 1,
          "window sizes");
    CHECK(dc_ssim_window(28, 28) == 11 && dc_ssim_window(7, 9) == 7 && dc_ssim_window(10, 12) == 9 &&
              dc_ssim_window(2, 2) == 1,
          "library window sizes");
}

/* Run dc_metrics_accumulate on host data; returns the slot values (nslots = DC_METRIC_SLOTS). */
static void device_metrics(int n, int c, int h, int w, const float *pred, const float *target,
                           double *vals)
{
    cl_mem bp = NULL, bt = NULL;
    dc_tensor tp, tt;
    dc_accum acc = {0};
    double all[DC_METRIC_SLOTS + 1];
    for (int i = 0; i < DC_METRIC_SLOTS; i++) vals[i] = NAN;
    CHECK_OK(make_view(n, c, h, w, 2, &bp, &tp));
    CHECK_OK(make_view(n, c, h, w, 9, &bt, &tt));
    CHECK_OK(dc_accum_create(dev, DC_METRIC_SLOTS + 1, &acc));
    if (bp && bt && acc.buf) {
        CHECK_OK(dc_tensor_write(dev, &tp, pred));
        CHECK_OK(dc_tensor_write(dev, &tt, target));
        CHECK_OK(dc_metrics_accumulate(dev, &tp, &tt, &acc, 1));
        CHECK_OK(dc_accum_read(dev, &acc, all));
        CHECK(all[0] == 0.0, "slot before the metrics untouched");
        for (int i = 0; i < DC_METRIC_SLOTS; i++) vals[i] = all[1 + i];
    }
    dc_accum_release(&acc);
    if (bp) clReleaseMemObject(bp);
    if (bt) clReleaseMemObject(bt);
}

static void compare_metrics(int n, int c, int h, int w, const float *pred, const float *target,
                            const char *label)
{
    double vals[DC_METRIC_SLOTS];
    device_metrics(n, c, h, w, pred, target, vals);
    double *psnr = calloc(n, sizeof *psnr), *ssim = calloc(n, sizeof *ssim),
           *acc = calloc(n, sizeof *acc), *acct = calloc(n, sizeof *acct);
    if (!psnr || !ssim || !acc || !acct) abort();
    ref_metrics(pred, target, n, c, h, w, psnr, ssim, acc, acct);
    double r[DC_METRIC_SLOTS] = {0};
    for (int b = 0; b < n; b++) {
        r[DC_METRIC_PSNR] += psnr[b];
        r[DC_METRIC_SSIM] += ssim[b];
        r[DC_METRIC_ACC] += acc[b];
        r[DC_METRIC_ACC_THRESH] += acct[b];
    }
    r[DC_METRIC_COUNT_IMAGES] = n;
    static const char *names[DC_METRIC_SLOTS] = {"psnr", "ssim", "acc", "count", "acc_thresh"};
    fprintf(stderr, "  %-22s %dx%dx%dx%d (win %d):", label, n, c, h, w, dc_ssim_window(h, w));
    for (int i = 0; i < DC_METRIC_SLOTS; i++) {
        /* An all-mismatch accuracy sums to 0: compare absolutely there. */
        double e = i == DC_METRIC_SSIM ? fabs(vals[i] - r[i]) / n
                   : r[i] == 0            ? fabs(vals[i])
                                          : rel(vals[i], r[i]);
        max_metric_err = fmax(max_metric_err, e);
        fprintf(stderr, " %s %.6g/%.6g (%.1e)", names[i], vals[i] / n, r[i] / n, e);
        CHECK(isfinite(vals[i]) && e <= 1e-4, "%s %s: %.9g vs ref %.9g (rel %.3g)", label, names[i], vals[i],
              r[i], e);
    }
    fputc('\n', stderr);
    free(psnr);
    free(ssim);
    free(acc);
    free(acct);
}

/* Smooth MNIST-like images: a few Gaussian blobs, saturated, with exact 0 background. */
static void blob_image(float *img, int h, int w)
{
    for (int i = 0; i < h * w; i++) img[i] = 0.0f;
    for (int k = 0; k < 3; k++) {
        double cy = test_uniform(&rng, 0, h), cx = test_uniform(&rng, 0, w);
        double s = test_uniform(&rng, 1.0, 3.0);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double d2 = ((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (s * s);
                double v = img[y * w + x] + 1.5 * exp(-d2);
                img[y * w + x] = (float)(v > 1 ? 1 : v < 0.02 ? 0 : v);
            }
    }
}

static void test_metrics(void)
{
    fprintf(stderr, "metrics vs double reference (per-image means dev/ref, error as above):\n");
    static const int shapes[][4] = {{3, 1, 7, 9}, {5, 1, 28, 28}, {2, 3, 12, 13}, {2, 1, 5, 3},
                                    {1, 1, 1, 1}, {4, 2, 11, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], c = shapes[s][1], h = shapes[s][2], w = shapes[s][3];
        size_t cnt = (size_t)n * c * h * w;
        float *p = malloc(cnt * sizeof *p), *t = malloc(cnt * sizeof *t);
        if (!p || !t) abort();
        /* Uniform random, pred partly outside [0, 1] (clipping), some targets exactly 0/1. */
        for (size_t i = 0; i < cnt; i++) {
            p[i] = (float)test_uniform(&rng, -0.2, 1.2);
            double u = test_uniform(&rng, 0, 1);
            t[i] = u < 0.2 ? 0.0f : u < 0.3 ? 1.0f : (float)test_uniform(&rng, 0, 1);
        }
        compare_metrics(n, c, h, w, p, t, "uniform random");
        /* Denoiser-like: smooth targets, prediction = target + noise, then clipped by metrics. */
        for (int img = 0; img < n * c; img++) blob_image(t + (size_t)img * h * w, h, w);
        for (size_t i = 0; i < cnt; i++) p[i] = t[i] + (float)test_uniform(&rng, -0.15, 0.15);
        compare_metrics(n, c, h, w, p, t, "blobs + noise");
        /* Identical images: SSIM exactly 1, PSNR at its 100 dB cap, accuracies 1. */
        double vals[DC_METRIC_SLOTS];
        for (size_t i = 0; i < cnt; i++) p[i] = t[i];
        device_metrics(n, c, h, w, p, t, vals);
        CHECK(fabs(vals[DC_METRIC_SSIM] / n - 1.0) <= 1e-6, "identical SSIM %.9g", vals[DC_METRIC_SSIM] / n);
        CHECK(fabs(vals[DC_METRIC_PSNR] / n - 100.0) <= 1e-4, "identical PSNR %.9g", vals[DC_METRIC_PSNR] / n);
        CHECK(vals[DC_METRIC_ACC_THRESH] == n, "identical thresholded accuracy %.9g", vals[DC_METRIC_ACC_THRESH]);
        CHECK(vals[DC_METRIC_COUNT_IMAGES] == n, "image count %g", vals[DC_METRIC_COUNT_IMAGES]);
        free(p);
        free(t);
    }

    /* A 2×2 case by hand. pred {0.2, 0.7, 0.6, 0.4}, target {0, 1, 0.8, 0.4}:
     * Keras accuracy: 0 == 0 yes, 1 == 1 yes, 0.8 == 1 no, 0.4 == 0 no -> 0.5;
     * thresholded: all four agree -> 1; MSE (0.04 + 0.09 + 0.04 + 0)/4 = 0.0425. */
    float hp[4] = {0.2f, 0.7f, 0.6f, 0.4f}, ht[4] = {0.0f, 1.0f, 0.8f, 0.4f};
    double vals[DC_METRIC_SLOTS];
    device_metrics(1, 1, 2, 2, hp, ht, vals);
    double mse = 0;
    for (int i = 0; i < 4; i++) mse += ((double)hp[i] - ht[i]) * ((double)hp[i] - ht[i]) / 4;
    CHECK(vals[DC_METRIC_ACC] == 0.5 && vals[DC_METRIC_ACC_THRESH] == 1.0, "hand accuracies %g %g",
          vals[DC_METRIC_ACC], vals[DC_METRIC_ACC_THRESH]);
    CHECK(fabs(mse - 0.0425) < 1e-8 && rel(vals[DC_METRIC_PSNR], -10 * log10(mse)) < 1e-5,
          "hand PSNR %.8g vs %.8g", vals[DC_METRIC_PSNR], -10 * log10(mse));

    /* 3×3 hand SSIM case on the device. */
    float x3[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, y3[9] = {.5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f};
    device_metrics(1, 1, 3, 3, x3, y3, vals);
    double a = exp(-1.0 / 4.5), wc = 1.0 / ((1 + 2 * a) * (1 + 2 * a));
    double want = (2 * wc * 0.5 + 1e-4) / (wc * wc + 0.25 + 1e-4) * (9e-4 / (wc - wc * wc + 9e-4));
    CHECK(rel(vals[DC_METRIC_SSIM], want) < 1e-5, "device 3x3 SSIM %.9g vs hand %.9g", vals[DC_METRIC_SSIM], want);

    /* Errors. */
    cl_mem b1 = NULL;
    dc_tensor t1, t2;
    dc_accum acc = {0};
    CHECK_OK(make_view(1, 1, 4, 4, 0, &b1, &t1));
    CHECK_OK(dc_accum_create(dev, DC_METRIC_SLOTS, &acc));
    if (b1 && acc.buf) {
        t2 = t1;
        t2.w = 3;
        CHECK(dc_metrics_accumulate(dev, &t1, &t2, &acc, 0) == DC_ERR_INVALID_ARG, "shape mismatch: %s",
              dc_error_detail());
        CHECK(dc_metrics_accumulate(dev, &t1, &t1, &acc, 1) == DC_ERR_INVALID_ARG, "too few slots: %s",
              dc_error_detail());
    }
    dc_accum_release(&acc);
    if (b1) clReleaseMemObject(b1);
}

int main(void)
{
    rng = test_seed();
    dc_status s = dc_device_open(-1, -1, &dev);
    if (s == DC_ERR_NO_DEVICE) {
        fprintf(stderr, "no OpenCL device: %s\n", dc_error_detail());
        return 77;
    }
    CHECK(s == DC_OK, "device: %s", dc_error_detail());
    if (s != DC_OK) TEST_MAIN_END();

    test_reference_gradients();
    test_reference_ssim_by_hand();
    test_losses_random();
    test_losses_extreme();
    test_loss_errors();
    test_accumulation();
    test_metrics();

    fprintf(stderr,
            "max errors: loss %.2e, gradient %.2e, output %.2e (limit 1e-4), metrics %.2e (limit 1e-4), "
            "accumulation %.2e (limit 1e-5)\n",
            max_loss_err, max_grad_err, max_out_err, max_metric_err, max_accum_err);
    dc_device_close(dev);
    TEST_MAIN_END();
}
