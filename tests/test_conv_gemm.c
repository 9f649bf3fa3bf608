/* The im2col + CLBlast SGEMM convolution (src/daecl/conv_gemm.h) against the
 * double-precision reference (tests/ref_layers.c), and against the direct kernels.
 *
 * Metric and tolerance as tests/test_layers.c: err = max_i |dev_i - ref_i| / max(|ref_i|, mag_i)
 * with mag_i the sum of |terms| of element i (1e-4); dz = dy * act'(y) uses the plain relative
 * error with a 1e-6 floor. Inputs are fresh random numbers every run (seed printed;
 * DAECL_TEST_SEED repeats a run); the device tensors sit at random offsets inside larger buffers
 * whose other floats must survive. Backward runs from the device's own y.
 * gemm vs direct: the same metric with the direct result in place of the reference (and the
 * reference's magnitudes), tolerance 1e-5: two float32 summation orders of the same sums. Both
 * backward passes run from gemm's y (dz = dy*y*(1-y) amplifies a one-ulp difference in a
 * saturated sigmoid's y into a large relative one). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daecl/conv_gemm.h"
#include "daecl/device.h"
#include "daecl/kernels.h"
#include "daecl/ops.h"
#include "daecl/tensor.h"
#include "ref_layers.h"
#include "test.h"

#define TOL_DEV 1e-4
#define TOL_AGREE 1e-5

static dc_device *dev;
static uint64_t rng;
static double worst[6]; /* fwd dz dW db dx, gemm-vs-direct */
static const char *const worst_names[6] = {"fwd", "dz", "dW", "db", "dx", "gemm vs direct"};

static void note(int i, double e)
{
    if (e > worst[i] || e != e) worst[i] = e;
}

/* ---- host helpers (as tests/test_layers.c) ------------------------------------------------ */

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) abort();
    return p;
}

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) abort();
    return p;
}

static void rand_fill(double *p, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) p[i] = (float)test_uniform(&rng, lo, hi);
}

static void to_float(float *dst, const double *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

static void to_double(double *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

#define SENTINEL 12345.0f

typedef struct dtensor {
    dc_tensor t;
    size_t total;
} dtensor;

static dtensor dt_new(int n, int c, int h, int w)
{
    dtensor d;
    size_t size = (size_t)n * c * h * w;
    size_t off = (size_t)(test_rand_u64(&rng) % 37);
    d.total = off + size + 1 + test_rand_u64(&rng) % 5;
    cl_mem buf = NULL;
    if (dc_buffer_create(dev, d.total, "test tensor", &buf) != DC_OK) {
        fprintf(stderr, "buffer: %s\n", dc_error_detail());
        exit(1);
    }
    float *fill = falloc(d.total);
    for (size_t i = 0; i < d.total; i++) fill[i] = SENTINEL;
    clEnqueueWriteBuffer(dev->queue, buf, CL_TRUE, 0, d.total * sizeof(float), fill, 0, NULL,
                         NULL);
    free(fill);
    d.t = dc_tensor_view(buf, off, n, c, h, w, DC_LAYOUT_NCHW);
    return d;
}

static void dt_free(dtensor *d)
{
    clReleaseMemObject(d->t.buf);
    d->t.buf = NULL;
}

static size_t dt_size(const dtensor *d) { return dc_tensor_size(&d->t); }

static void dt_put(dtensor *d, const double *v)
{
    size_t n = dt_size(d);
    float *f = falloc(n);
    to_float(f, v, n);
    CHECK_OK(dc_tensor_write(dev, &d->t, f));
    free(f);
}

/* Read the tensor; check the sentinel around it is intact. */
static float *dt_get(const dtensor *d, const char *what)
{
    float *all = falloc(d->total);
    cl_int e = clEnqueueReadBuffer(dev->queue, d->t.buf, CL_TRUE, 0, d->total * sizeof(float),
                                   all, 0, NULL, NULL);
    CHECK(e == CL_SUCCESS, "%s: read failed (%d)", what, e);
    size_t off = d->t.off, n = dt_size(d);
    int bad = 0;
    for (size_t i = 0; i < d->total; i++)
        if ((i < off || i >= off + n) && all[i] != SENTINEL) bad++;
    CHECK(bad == 0, "%s: %d floats outside the tensor were overwritten", what, bad);
    float *out = falloc(n);
    memcpy(out, all + off, n * sizeof(float));
    free(all);
    return out;
}

typedef struct pbuf {
    cl_mem buf;
    size_t total, w_off, b_off;
} pbuf;

/* Weights and bias at random offsets inside a flat buffer filled with the sentinel. */
static pbuf pb_new(size_t nw, size_t nb, const double *w, const double *b, const pbuf *like)
{
    pbuf p;
    p.b_off = 5 + test_rand_u64(&rng) % 11;
    p.w_off = p.b_off + nb + test_rand_u64(&rng) % 7;
    p.total = p.w_off + nw + 3;
    if (like) p = *like;
    float *f = falloc(p.total);
    for (size_t i = 0; i < p.total; i++) f[i] = SENTINEL;
    if (w) to_float(f + p.w_off, w, nw);
    if (b) to_float(f + p.b_off, b, nb);
    CHECK_OK(dc_buffer_create(dev, p.total, "test params", &p.buf));
    clEnqueueWriteBuffer(dev->queue, p.buf, CL_TRUE, 0, p.total * sizeof(float), f, 0, NULL,
                         NULL);
    free(f);
    return p;
}

static float *pb_get(const pbuf *p)
{
    float *f = falloc(p->total);
    clEnqueueReadBuffer(dev->queue, p->buf, CL_TRUE, 0, p->total * sizeof(float), f, 0, NULL,
                        NULL);
    return f;
}

/* Gradient floats outside dW and db must keep the sentinel. */
static int pb_outside_changed(const pbuf *p, const float *all, size_t nw, int cout)
{
    int bad = 0;
    for (size_t i = 0; i < p->total; i++) {
        int in_w = i >= p->w_off && i < p->w_off + nw;
        int in_b = i >= p->b_off && i < p->b_off + (size_t)cout;
        if (!in_w && !in_b && all[i] != SENTINEL) bad++;
    }
    return bad;
}

/* ---- one layer: gemm vs reference (and optionally vs direct) ------------------------------ */

typedef struct gcase {
    int n, cin, cout, h, w, k;
    dc_act act;
    int chunk; /* >0: dev->opts.gemm_chunk (images per GEMM) */
    int no_dx;
    int vs_direct; /* also run dc_conv2d_forward/backward and compare */
} gcase;

/* Device results of one forward + backward. */
typedef struct run_out {
    float *y, *dz, *grads, *dx;
} run_out;

/* Forward, then backward with dy = g. y_in (optional): backward runs from this y instead of
 * the forward's own, so two implementations' gradients come from identical inputs. */
static void run_layer(const gcase *c, int gemm, const double *x, const pbuf *prm, const double *g,
                      const float *y_in, const char *label, run_out *o)
{
    size_t nw = (size_t)c->cout * c->cin * c->k * c->k;
    const char *impl = gemm ? "gemm" : "direct";
    dtensor tx = dt_new(c->n, c->cin, c->h, c->w), ty = dt_new(c->n, c->cout, c->h, c->w);
    dtensor tg = dt_new(c->n, c->cout, c->h, c->w), tdx = dt_new(c->n, c->cin, c->h, c->w);
    dt_put(&tx, x);
    dt_put(&tg, g);
    pbuf grd = pb_new(nw, c->cout, NULL, NULL, prm);
    dc_device_options saved = dev->opts;
    dev->opts.gemm_chunk = c->chunk;
    /* conv_algo direct: dc_conv2d_* must stay the direct kernels once they dispatch */
    dev->opts.conv_algo = DC_CONV_DIRECT;
    dc_status s = gemm ? dc_conv2d_gemm_forward(dev, &tx.t, prm->buf, prm->w_off, prm->b_off, c->k,
                                                c->act, &ty.t)
                       : dc_conv2d_forward(dev, &tx.t, prm->buf, prm->w_off, prm->b_off, c->k,
                                           c->act, &ty.t);
    CHECK(s == DC_OK, "%s forward %s: %s", impl, label, dc_error_detail());
    o->y = dt_get(&ty, "y");
    if (y_in) CHECK_OK(dc_tensor_write(dev, &ty.t, y_in));
    dc_tensor *dxp = c->no_dx ? NULL : &tdx.t;
    s = gemm ? dc_conv2d_gemm_backward(dev, &tx.t, &ty.t, &tg.t, prm->buf, grd.buf, prm->w_off,
                                       prm->b_off, c->k, c->act, dxp)
             : dc_conv2d_backward(dev, &tx.t, &ty.t, &tg.t, prm->buf, grd.buf, prm->w_off,
                                  prm->b_off, c->k, c->act, dxp);
    CHECK(s == DC_OK, "%s backward %s: %s", impl, label, dc_error_detail());
    dev->opts = saved;
    CHECK(clFinish(dev->queue) == CL_SUCCESS, "clFinish");
    o->dz = dt_get(&tg, "dz");
    o->dx = dt_get(&tdx, "dx"); /* with no_dx: only the sentinel check matters */
    o->grads = pb_get(&grd);
    int bad = pb_outside_changed(&grd, o->grads, nw, c->cout);
    CHECK(bad == 0, "%s %s: %d gradient floats outside dW/db were overwritten", impl, label, bad);
    dt_free(&tx), dt_free(&ty), dt_free(&tg), dt_free(&tdx);
    clReleaseMemObject(grd.buf);
}

static void run_free(run_out *o)
{
    free(o->y), free(o->dz), free(o->grads), free(o->dx);
}

static void test_case(gcase c)
{
    size_t nx = (size_t)c.n * c.cin * c.h * c.w, ny = (size_t)c.n * c.cout * c.h * c.w;
    size_t nw = (size_t)c.cout * c.cin * c.k * c.k;
    char label[128];
    snprintf(label, sizeof label, "n%d %d->%d %dx%d k%d %s%s%s", c.n, c.cin, c.cout, c.h, c.w,
             c.k, dc_act_name(c.act), c.chunk ? " chunked" : "", c.no_dx ? " no-dx" : "");

    double *x = dalloc(nx), *wt = dalloc(nw), *b = dalloc(c.cout), *g = dalloc(ny);
    double *y = dalloc(ny), *ymag = dalloc(ny);
    rand_fill(x, nx, -1, 1);
    rand_fill(wt, nw, -0.5, 0.5);
    rand_fill(b, c.cout, -0.2, 0.2);
    rand_fill(g, ny, -1, 1);
    pbuf prm = pb_new(nw, c.cout, wt, b, NULL);

    run_out o;
    run_layer(&c, 1, x, &prm, g, NULL, label, &o);

    ref_conv2d_forward(x, c.n, c.cin, c.h, c.w, wt, b, c.cout, c.k, c.act, y, ymag);
    double e_fwd = ref_rel_err(o.y, y, ymag, ny, 0);

    double *ydev = dalloc(ny), *dz = dalloc(ny), *dw = dalloc(nw), *db = dalloc(c.cout);
    double *dxr = dalloc(nx), *mdw = dalloc(nw), *mdb = dalloc(c.cout), *mdx = dalloc(nx);
    to_double(ydev, o.y, ny);
    memcpy(dz, g, ny * sizeof *dz);
    ref_conv2d_backward(x, c.n, c.cin, c.h, c.w, wt, c.cout, c.k, c.act, ydev, dz, dw, db, dxr,
                        mdw, mdb, mdx);
    double e_dz = ref_rel_err(o.dz, dz, NULL, ny, 1e-6);
    double e_dw = ref_rel_err(o.grads + prm.w_off, dw, mdw, nw, 0);
    double e_db = ref_rel_err(o.grads + prm.b_off, db, mdb, c.cout, 0);
    double e_dx = c.no_dx ? 0 : ref_rel_err(o.dx, dxr, mdx, nx, 0);
    double errs[5] = {e_fwd, e_dz, e_dw, e_db, e_dx};
    for (int i = 0; i < 5; i++) {
        note(i, errs[i]);
        CHECK(errs[i] <= TOL_DEV, "gemm %s %s: error %.3g > %.3g", label, worst_names[i], errs[i],
              TOL_DEV);
    }
    printf("  gemm   %-40s fwd %.1e  dz %.1e  dW %.1e  db %.1e  dx %.1e\n", label, e_fwd, e_dz,
           e_dw, e_db, e_dx);

    if (c.vs_direct) {
        /* the direct kernels on the same inputs (backward from gemm's y); compare elementwise */
        run_out d;
        run_layer(&c, 0, x, &prm, g, o.y, label, &d);
        double *dd = dalloc(nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw));
        to_double(dd, d.y, ny);
        double a_fwd = ref_rel_err(o.y, dd, ymag, ny, 0);
        to_double(dd, d.dz, ny);
        double a_dz = ref_rel_err(o.dz, dd, NULL, ny, 1e-6);
        to_double(dd, d.grads + prm.w_off, nw);
        double a_dw = ref_rel_err(o.grads + prm.w_off, dd, mdw, nw, 0);
        to_double(dd, d.grads + prm.b_off, c.cout);
        double a_db = ref_rel_err(o.grads + prm.b_off, dd, mdb, c.cout, 0);
        double a_dx = 0;
        if (!c.no_dx) {
            to_double(dd, d.dx, nx);
            a_dx = ref_rel_err(o.dx, dd, mdx, nx, 0);
        }
        double agree[5] = {a_fwd, a_dz, a_dw, a_db, a_dx};
        for (int i = 0; i < 5; i++) {
            note(5, agree[i]);
            CHECK(agree[i] <= TOL_AGREE, "gemm vs direct %s %s: %.3g > %.3g", label,
                  worst_names[i], agree[i], TOL_AGREE);
        }
        printf("  g vs d %-40s fwd %.1e  dz %.1e  dW %.1e  db %.1e  dx %.1e\n", label, a_fwd,
               a_dz, a_dw, a_db, a_dx);
        free(dd);
        run_free(&d);
    }

    run_free(&o);
    free(x), free(wt), free(b), free(g), free(y), free(ymag), free(ydev), free(dz), free(dw);
    free(db), free(dxr), free(mdw), free(mdb), free(mdx);
    clReleaseMemObject(prm.buf);
}

/* ---- argument checks and the implementation choice ---------------------------------------- */

static void test_errors(void)
{
    dtensor x = dt_new(2, 3, 5, 6), y = dt_new(2, 4, 5, 6), bad = dt_new(2, 4, 5, 7);
    pbuf prm = pb_new(4 * 3 * 9, 4, NULL, NULL, NULL);
    dc_tensor x8 = x.t;
    x8.layout = DC_LAYOUT_NCHW8C;
    dc_tensor none = x.t;
    none.buf = NULL;
    dc_status s;
    s = dc_conv2d_gemm_forward(dev, &x8, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "NCHW8c -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &bad.t);
    CHECK(s == DC_ERR_INVALID_ARG, "shape mismatch -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 2, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "even k -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_COUNT, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "bad act -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_forward(dev, &none, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "missing buffer -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_forward(dev, &x.t, NULL, 0, 0, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "missing params -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_backward(dev, &x.t, &y.t, &bad.t, prm.buf, prm.buf, prm.w_off, prm.b_off,
                                3, DC_ACT_RELU, &x.t);
    CHECK(s == DC_ERR_INVALID_ARG, "backward dy mismatch -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_backward(dev, &x.t, &y.t, &y.t, prm.buf, prm.buf, prm.w_off, prm.b_off, 3,
                                DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "backward dx mismatch -> %s", dc_strerror(s));
    s = dc_conv2d_gemm_backward(dev, &x.t, &y.t, &y.t, prm.buf, NULL, prm.w_off, prm.b_off, 3,
                                DC_ACT_RELU, NULL);
    CHECK(s == DC_ERR_INVALID_ARG, "backward missing grads -> %s", dc_strerror(s));
    CHECK(clFinish(dev->queue) == CL_SUCCESS, "clFinish");
    dt_free(&x), dt_free(&y), dt_free(&bad);
    clReleaseMemObject(prm.buf);

    /* the default per device type, then the environment read once at open */
    dc_device fake = *dev;
    dc_device_options_default(&fake.opts, CL_DEVICE_TYPE_GPU, "x", "gpu");
    CHECK(dc_conv_algo_for(&fake) == DC_CONV_GEMM, "GPU default is gemm");
    dc_device_options_default(&fake.opts, CL_DEVICE_TYPE_CPU, "x", "cpu");
    CHECK(dc_conv_algo_for(&fake) == DC_CONV_DIRECT, "CPU default is direct");
    dc_device_options_default(&fake.opts, CL_DEVICE_TYPE_ACCELERATOR, "x", "acc");
    CHECK(dc_conv_algo_for(&fake) == DC_CONV_DIRECT, "accelerator default is direct");
    setenv("DAECL_CONV", "gemm", 1);
    CHECK_OK(dc_device_options_from_env(&fake.opts));
    CHECK(dc_conv_algo_for(&fake) == DC_CONV_GEMM, "DAECL_CONV=gemm");
    dc_device_options_default(&fake.opts, CL_DEVICE_TYPE_GPU, "x", "gpu");
    setenv("DAECL_CONV", "direct", 1);
    CHECK_OK(dc_device_options_from_env(&fake.opts));
    CHECK(dc_conv_algo_for(&fake) == DC_CONV_DIRECT, "DAECL_CONV=direct");
    setenv("DAECL_CONV", "fast", 1);
    s = dc_device_options_from_env(&fake.opts);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "DAECL_CONV='fast'"),
          "unknown DAECL_CONV refused, naming it -> %s (%s)", dc_strerror(s), dc_error_detail());
    unsetenv("DAECL_CONV");
    setenv("DAECL_CONV_GEMM_CHUNK", "-3", 1);
    s = dc_device_options_from_env(&fake.opts);
    CHECK(s == DC_ERR_INVALID_ARG, "negative DAECL_CONV_GEMM_CHUNK refused -> %s", dc_strerror(s));
    unsetenv("DAECL_CONV_GEMM_CHUNK");
    CHECK(!strcmp(dc_conv_algo_name(DC_CONV_GEMM), "gemm"), "name gemm");
    CHECK(!strcmp(dc_conv_algo_name(DC_CONV_DIRECT), "direct"), "name direct");
    CHECK(!strcmp(dc_conv_algo_name((dc_conv_algo)7), "?"), "name invalid");
}

int main(void)
{
    rng = test_seed();
    dc_status s = dc_device_open(-1, -1, &dev);
    if (s != DC_OK) {
        fprintf(stderr, "no OpenCL device: %s (%s)\n", dc_strerror(s), dc_error_detail());
        return 77; /* skip */
    }
    char desc[256] = "";
    dc_device_describe(dev, desc, sizeof desc);
    printf("device %s (default conv: %s)\n", desc, dc_conv_algo_name(dc_conv_algo_for(dev)));

    /* first call: im2col.cl JIT (or disk cache) + CLBlast compiling its GEMM kernels */
    double t0 = test_now();
    test_case((gcase){3, 5, 7, 7, 9, 3, DC_ACT_RELU, 0, 0, 0});
    printf("  (first case incl. kernel builds and CLBlast's compile: %.2f s)\n", test_now() - t0);

    printf("gemm vs reference (max error per tensor), then gemm vs direct:\n");
    /* odd sizes: batch 3, 5->7 channels, 7x9, k 1/3/5, every activation */
    for (int k = 1; k <= 5; k += 2)
        for (int a = 0; a < DC_ACT_COUNT; a++)
            test_case((gcase){3, 5, 7, 7, 9, k, (dc_act)a, 0, 0, 0});
    /* batch chunks (beta = 1 accumulation of dW across GEMMs), no dx, tiny images */
    test_case((gcase){3, 5, 7, 7, 9, 3, DC_ACT_SIGMOID, 2, 0, 0});
    test_case((gcase){3, 5, 7, 7, 9, 5, DC_ACT_LEAKY_RELU, 1, 1, 0});
    test_case((gcase){2, 3, 5, 1, 1, 3, DC_ACT_TANH, 0, 0, 0});
    test_case((gcase){2, 2, 3, 4, 70, 3, DC_ACT_NONE, 0, 0, 0});
    /* the classic model's layers at batch 2 */
    test_case((gcase){2, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 1, 0});
    test_case((gcase){2, 32, 32, 14, 14, 3, DC_ACT_RELU, 0, 0, 1});
    test_case((gcase){2, 32, 1, 28, 28, 3, DC_ACT_SIGMOID, 0, 0, 1});
    test_case((gcase){2, 32, 32, 7, 7, 3, DC_ACT_RELU, 0, 0, 0});
    test_case((gcase){3, 32, 32, 14, 14, 3, DC_ACT_RELU, 2, 0, 1});
    test_errors();

    printf("worst error (metric in the header of tests/test_conv_gemm.c):\n");
    for (int i = 0; i < 6; i++)
        printf("  %-16s %.2e  (tolerance %.0e)\n", worst_names[i], worst[i],
               i == 5 ? TOL_AGREE : TOL_DEV);
    dc_device_scratch_release(dev);
    dc_device_close(dev);
    TEST_MAIN_END();
}
