/* Layer ops (src/daecl/ops.h) on the OpenCL device against the double-precision reference
 * (tests/ref_layers.c), and the reference's own backward against central finite differences.
 *
 * Inputs are fresh random numbers every run (seed printed; DAECL_TEST_SEED repeats a run).
 * Device vs reference metric, per op and tensor:
 *     err = max_i |dev_i - ref_i| / max(|ref_i|, mag_i)
 * where mag_i is the sum of the absolute values of the terms summed into element i (from the
 * reference run on the same inputs). It equals the plain relative error wherever the sum does
 * not cancel, and stays meaningful where it does (a float32 sum of m terms is only good to
 * about m * 6e-8 * mag_i). Tolerance: 1e-4. Ops with no sums (pool, upsample forward, concat)
 * must match exactly; element-wise activations use the plain relative error with a 1e-6
 * absolute floor. The device inputs are the reference inputs rounded to float, and backward
 * passes use the device's forward output y, so only the arithmetic differs.
 *
 * DAECL_TEST_FULL=1 adds shapes that only exercise code paths again in other combinations.
 *
 * Reference backward vs finite differences (double, central, step 1e-6) of L = sum(g * y):
 *     err = max_i |fd_i - analytic_i| / max_j |analytic_j|, tolerance 1e-6;
 * draws whose pre-activations (or pooling windows) sit within 1e-3 of a kink are redrawn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/device.h"
#include "daecl/kernels.h"
#include "daecl/ops.h"
#include "daecl/tensor.h"
#include "ref_layers.h"
#include "test.h"

#define TOL_DEV 1e-4
#define TOL_FD 1e-6

static dc_device *dev;
static uint64_t rng;

/* ---- worst error per op, printed at the end ---------------------------------------------- */
#define MAX_OPS 48
static struct {
    char name[48];
    double worst;
    int cases;
} summary[MAX_OPS];
static int n_summary;

static void record(const char *name, double err)
{
    int i;
    for (i = 0; i < n_summary; i++)
        if (!strcmp(summary[i].name, name)) break;
    if (i == n_summary) {
        if (n_summary == MAX_OPS) return;
        snprintf(summary[n_summary].name, sizeof summary[0].name, "%s", name);
        summary[n_summary++].worst = 0;
    }
    summary[i].cases++;
    if (err > summary[i].worst || err != err) summary[i].worst = err;
}

/* ---- host helpers ------------------------------------------------------------------------ */

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

/* Uniform in [lo, hi), rounded to float so host and device see the same numbers. */
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

/* A device tensor at a random offset inside a larger buffer (so offsets are exercised), with
 * the rest of the buffer filled with a sentinel that must survive. */
typedef struct dtensor {
    dc_tensor t;
    size_t total;
} dtensor;

#define SENTINEL 12345.0f

static dtensor dt_new(int n, int c, int h, int w)
{
    dtensor d;
    size_t size = (size_t)n * c * h * w;
    size_t off = (size_t)(test_rand_u64(&rng) % 37);
    d.total = off + size + 1 + test_rand_u64(&rng) % 5;
    cl_mem buf = NULL;
    dc_status s = dc_buffer_create(dev, d.total, "test tensor", &buf);
    if (s != DC_OK) {
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

/* Read the tensor, and check the sentinel around it is intact. */
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

/* Parameter buffer: weights and bias at offsets inside a padded flat buffer. */
typedef struct pbuf {
    cl_mem buf;
    size_t total, w_off, b_off;
} pbuf;

static pbuf pb_new(size_t nw, size_t nb, const double *w, const double *b, const pbuf *like)
{
    pbuf p;
    p.b_off = 5 + test_rand_u64(&rng) % 11; /* bias first, weights after: any order works */
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

static int finish(void)
{
    cl_int e = clFinish(dev->queue);
    CHECK(e == CL_SUCCESS, "clFinish: %d", e);
    return e == CL_SUCCESS;
}

static void check_err(const char *op, const char *label, double err, double tol)
{
    record(op, err);
    CHECK(err <= tol, "%s %s: error %.3g > %.3g", op, label, err, tol);
}

/* ---- convolution: device vs reference ---------------------------------------------------- */

typedef struct conv_case {
    int n, cin, cout, h, w, k;
    dc_act act;
    int transposed;
    int chunks; /* >0: force the weight-gradient batch split (dev->opts.dw_chunks) */
    int no_dx;  /* first layer: dx == NULL */
    dc_conv_dw dw_path; /* force a weight-gradient form (dev->opts.conv_dw) */
    dc_conv_lanes lanes; /* force the forward/input-gradient lanes (dev->opts.conv_lanes) */
} conv_case;

static const char *dw_name(dc_conv_dw d)
{
    return d == DC_CONV_DW_ROWS ? "rows" : d == DC_CONV_DW_CHANNELS ? "channels" : "";
}

static void test_conv_case(conv_case c)
{
    int ho = c.transposed ? 2 * c.h : c.h, wo = c.transposed ? 2 * c.w : c.w;
    size_t nx = (size_t)c.n * c.cin * c.h * c.w, ny = (size_t)c.n * c.cout * ho * wo;
    size_t nw = (size_t)c.cout * c.cin * c.k * c.k;
    char label[160], op[64];
    snprintf(label, sizeof label, "n%d %d->%d %dx%d k%d %s%s%s%s%s%s", c.n, c.cin, c.cout, c.h,
             c.w, c.k, dc_act_name(c.act), c.chunks ? " chunked" : "", c.no_dx ? " no-dx" : "",
             c.dw_path ? " dW-" : "", dw_name(c.dw_path),
             c.lanes == DC_CONV_LANES_PIXELS     ? " lanes-pixels"
             : c.lanes == DC_CONV_LANES_CHANNELS ? " lanes-channels"
                                                 : "");
    const char *kind = c.transposed ? "convT2d" : "conv2d";

    double *x = dalloc(nx), *wt = dalloc(nw), *b = dalloc(c.cout), *g = dalloc(ny);
    double *y = dalloc(ny), *ymag = dalloc(ny);
    rand_fill(x, nx, -1, 1);
    rand_fill(wt, nw, -0.5, 0.5);
    rand_fill(b, c.cout, -0.2, 0.2);
    rand_fill(g, ny, -1, 1);

    dtensor dx_in = dt_new(c.n, c.cin, c.h, c.w), dy_out = dt_new(c.n, c.cout, ho, wo);
    dt_put(&dx_in, x);
    pbuf prm = pb_new(nw, c.cout, wt, b, NULL);
    pbuf grd = pb_new(nw, c.cout, NULL, NULL, &prm); /* same layout as the parameters */

    /* forward */
    dc_status s;
    dc_device_options saved = dev->opts;
    if (c.lanes) dev->opts.conv_lanes = c.lanes;
    if (c.transposed)
        s = dc_convT2d_forward(dev, &dx_in.t, prm.buf, prm.w_off, prm.b_off, c.k, c.act, &dy_out.t);
    else
        s = dc_conv2d_forward(dev, &dx_in.t, prm.buf, prm.w_off, prm.b_off, c.k, c.act, &dy_out.t);
    CHECK(s == DC_OK, "%s forward %s: %s", kind, label, dc_error_detail());
    if (c.transposed)
        ref_convT2d_forward(x, c.n, c.cin, c.h, c.w, wt, b, c.cout, c.k, c.act, y, ymag);
    else
        ref_conv2d_forward(x, c.n, c.cin, c.h, c.w, wt, b, c.cout, c.k, c.act, y, ymag);
    float *yd = dt_get(&dy_out, "y");
    double e_fwd = ref_rel_err(yd, y, ymag, ny, 0);
    snprintf(op, sizeof op, "%s fwd", kind);
    check_err(op, label, e_fwd, TOL_DEV);

    /* backward from the device's y */
    double *ydev = dalloc(ny), *dz = dalloc(ny), *dw = dalloc(nw), *db = dalloc(c.cout);
    double *dxr = dalloc(nx), *mdw = dalloc(nw), *mdb = dalloc(c.cout), *mdx = dalloc(nx);
    to_double(ydev, yd, ny);
    memcpy(dz, g, ny * sizeof *dz);
    if (c.transposed)
        ref_convT2d_backward(x, c.n, c.cin, c.h, c.w, wt, c.cout, c.k, c.act, ydev, dz, dw, db, dxr,
                             mdw, mdb, mdx);
    else
        ref_conv2d_backward(x, c.n, c.cin, c.h, c.w, wt, c.cout, c.k, c.act, ydev, dz, dw, db, dxr,
                            mdw, mdb, mdx);
    dtensor dgy = dt_new(c.n, c.cout, ho, wo), dgx = dt_new(c.n, c.cin, c.h, c.w);
    dt_put(&dgy, g);
    dev->opts.dw_chunks = c.chunks;
    if (c.dw_path) dev->opts.conv_dw = c.dw_path;
    dc_tensor *dxp = c.no_dx ? NULL : &dgx.t;
    if (c.transposed)
        s = dc_convT2d_backward(dev, &dx_in.t, &dy_out.t, &dgy.t, prm.buf, grd.buf, prm.w_off,
                                prm.b_off, c.k, c.act, dxp);
    else
        s = dc_conv2d_backward(dev, &dx_in.t, &dy_out.t, &dgy.t, prm.buf, grd.buf, prm.w_off,
                               prm.b_off, c.k, c.act, dxp);
    dev->opts = saved;
    CHECK(s == DC_OK, "%s backward %s: %s", kind, label, dc_error_detail());
    finish();

    float *dzd = dt_get(&dgy, "dz");
    /* act'(y) is computed in float from float y: tanh's 1 - y^2 near |y| = 1 keeps only its
     * absolute accuracy (~1e-7), not a relative one, so dz is measured against |dy| (a random
     * 5-channel tanh case reached 8.6e-5 of the 1e-4 limit relative to dz itself) */
    double *dy_mag = dalloc(ny);
    for (size_t i = 0; i < ny; i++) dy_mag[i] = fabs(g[i]);
    double e_dz = ref_rel_err(dzd, dz, dy_mag, ny, 1e-6);
    free(dy_mag);
    snprintf(op, sizeof op, "%s dz=dy*act'", kind);
    check_err(op, label, e_dz, TOL_DEV);

    float *gall = pb_get(&grd);
    int bad = 0;
    for (size_t i = 0; i < grd.total; i++) {
        int in_w = i >= grd.w_off && i < grd.w_off + nw;
        int in_b = i >= grd.b_off && i < grd.b_off + (size_t)c.cout;
        if (!in_w && !in_b && gall[i] != SENTINEL) bad++;
    }
    CHECK(bad == 0, "%s %s: %d gradient floats outside dW/db were overwritten", kind, label, bad);
    double e_dw = ref_rel_err(gall + grd.w_off, dw, mdw, nw, 0);
    double e_db = ref_rel_err(gall + grd.b_off, db, mdb, c.cout, 0);
    snprintf(op, sizeof op, "%s dW", kind);
    check_err(op, label, e_dw, TOL_DEV);
    snprintf(op, sizeof op, "%s db", kind);
    check_err(op, label, e_db, TOL_DEV);
    double e_dx = 0;
    if (!c.no_dx) {
        float *dxd = dt_get(&dgx, "dx");
        e_dx = ref_rel_err(dxd, dxr, mdx, nx, 0);
        snprintf(op, sizeof op, "%s dx", kind);
        check_err(op, label, e_dx, TOL_DEV);
        free(dxd);
    } else {
        float *untouched = dt_get(&dgx, "dx");
        free(untouched); /* sentinel check only: zero-filled interior must stay zero */
    }
    printf("  %-8s %-48s fwd %.1e  dz %.1e  dW %.1e  db %.1e  dx %.1e\n", kind, label, e_fwd,
           e_dz, e_dw, e_db, e_dx);

    free(gall);
    free(dzd);
    free(yd);
    free(x), free(wt), free(b), free(g), free(y), free(ymag), free(ydev), free(dz), free(dw);
    free(db), free(dxr), free(mdw), free(mdb), free(mdx);
    dt_free(&dx_in), dt_free(&dy_out), dt_free(&dgy), dt_free(&dgx);
    clReleaseMemObject(prm.buf);
    clReleaseMemObject(grd.buf);
}

/* ---- inference: a conv reading the 2x nearest upsampling of its source in place ----------------
 * dc_conv2d_upsampled_forward on an h/2 x w/2 source against the reference conv of the source
 * upsampled on the host (h x w). */
static void test_upsampled_case(int n, int cin, int cout, int h, int w, int k, dc_act act)
{
    char label[96];
    snprintf(label, sizeof label, "n%d %d->%d %dx%d k%d %s", n, cin, cout, h, w, k, dc_act_name(act));
    if (!dc_conv2d_upsampled_fits(dev, cin, cout, h, w, k)) {
        printf("  conv2d upsampled %s: not on this device (the model keeps the upsampling)\n", label);
        return;
    }
    const int hs = h / 2, ws = w / 2;
    size_t ns = (size_t)n * cin * hs * ws, nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * h * w;
    size_t nw = (size_t)cout * cin * k * k;
    double *xs = dalloc(ns), *x = dalloc(nx), *wt = dalloc(nw), *b = dalloc(cout);
    double *y = dalloc(ny), *ymag = dalloc(ny);
    rand_fill(xs, ns, -1, 1);
    rand_fill(wt, nw, -0.5, 0.5);
    rand_fill(b, cout, -0.2, 0.2);
    for (int p = 0; p < n * cin; p++)
        for (int iy = 0; iy < h; iy++)
            for (int ix = 0; ix < w; ix++)
                x[((size_t)p * h + iy) * w + ix] = xs[((size_t)p * hs + iy / 2) * ws + ix / 2];
    dtensor src = dt_new(n, cin, hs, ws), out = dt_new(n, cout, h, w);
    dt_put(&src, xs);
    pbuf prm = pb_new(nw, cout, wt, b, NULL);
    dc_status s = dc_conv2d_upsampled_forward(dev, &src.t, prm.buf, prm.w_off, prm.b_off, k, act, &out.t);
    CHECK(s == DC_OK, "conv2d upsampled forward %s: %s", label, dc_error_detail());
    ref_conv2d_forward(x, n, cin, h, w, wt, b, cout, k, act, y, ymag);
    float *yd = dt_get(&out, "y");
    double e = ref_rel_err(yd, y, ymag, ny, 0);
    check_err("conv2d upsampled fwd", label, e, TOL_DEV);
    printf("  %-8s %-48s fwd %.1e\n", "conv2d up", label, e);
    free(yd);
    free(xs), free(x), free(wt), free(b), free(y), free(ymag);
    dt_free(&src), dt_free(&out);
    clReleaseMemObject(prm.buf);
}

/* ---- inference: a conv writing the 2x2 max pool of its output ---------------------------------
 * dc_conv2d_maxpool_forward against the reference conv, then the reference max pool (the
 * tolerance scaled by the pooled magnitudes). */
static void test_maxpool_case(int n, int cin, int cout, int h, int w, int k, dc_act act)
{
    char label[96];
    snprintf(label, sizeof label, "n%d %d->%d %dx%d k%d %s", n, cin, cout, h, w, k, dc_act_name(act));
    if (!dc_conv2d_maxpool_fits(dev, cin, cout, h, w, k)) {
        printf("  conv2d + maxpool %s: not on this device (the model keeps the pool)\n", label);
        return;
    }
    size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * h * w, np = ny / 4;
    size_t nw = (size_t)cout * cin * k * k;
    double *x = dalloc(nx), *wt = dalloc(nw), *b = dalloc(cout), *y = dalloc(ny);
    double *ymag = dalloc(ny), *pool = dalloc(np), *pmag = dalloc(np);
    rand_fill(x, nx, -1, 1);
    rand_fill(wt, nw, -0.5, 0.5);
    rand_fill(b, cout, -0.2, 0.2);
    dtensor in = dt_new(n, cin, h, w), out = dt_new(n, cout, h / 2, w / 2);
    dt_put(&in, x);
    pbuf prm = pb_new(nw, cout, wt, b, NULL);
    dc_status s = dc_conv2d_maxpool_forward(dev, &in.t, prm.buf, prm.w_off, prm.b_off, k, act, &out.t);
    CHECK(s == DC_OK, "conv2d + maxpool forward %s: %s", label, dc_error_detail());
    ref_conv2d_forward(x, n, cin, h, w, wt, b, cout, k, act, y, ymag);
    ref_maxpool2_forward(y, n, cout, h, w, pool);
    ref_maxpool2_forward(ymag, n, cout, h, w, pmag);
    float *yd = dt_get(&out, "y");
    double e = ref_rel_err(yd, pool, pmag, np, 0);
    check_err("conv2d + maxpool fwd", label, e, TOL_DEV);
    printf("  %-8s %-48s fwd %.1e\n", "conv2d pool", label, e);
    free(yd);
    free(x), free(wt), free(b), free(y), free(ymag), free(pool), free(pmag);
    dt_free(&in), dt_free(&out);
    clReleaseMemObject(prm.buf);
}

/* ---- a conv after a 2x upsampling writing the upsampling's input gradient (training) ----------
 * x = the upsampling of a random source. dc_conv2d_upgrad_backward against dc_conv2d_backward
 * followed by dc_upsample2_backward, bit for bit: the source gradient, dW and db (the plain
 * path is checked against the reference above). From the source in place, where
 * dc_conv2d_upgrad_in_place_fits: the source gradient bit for bit, dW and db within rounding
 * (conv_dwc's are the same sums, conv_dw's in another order), and the forward (in phases)
 * within rounding. n >= 3 reaches conv_dw's unaligned loads (images between the first and the
 * last). */
static void test_upgrad_case(int n, int cin, int cout, int h, int w, int k, dc_act act)
{
    char label[96];
    snprintf(label, sizeof label, "n%d %d->%d %dx%d k%d %s", n, cin, cout, h, w, k, dc_act_name(act));
    if (!dc_conv2d_upgrad_fits(dev, cin, cout, h, w, k)) {
        printf("  upgrad   %-48s not on this device's path (skipped)\n", label);
        return;
    }
    int in_place = dc_conv2d_upgrad_in_place_fits(dev, cin, cout, h, w, k);
    size_t ns = (size_t)n * cin * (h / 2) * (w / 2), ny = (size_t)n * cout * h * w, nw = (size_t)cout * cin * k * k;
    double *xs = dalloc(ns), *wt = dalloc(nw), *b = dalloc(cout), *g = dalloc(ny);
    rand_fill(xs, ns, -1, 1);
    rand_fill(wt, nw, -0.5, 0.5);
    rand_fill(b, cout, -0.2, 0.2);
    rand_fill(g, ny, -1, 1);
    enum { UNFUSED, FUSED, IN_PLACE, NRUNS };
    dtensor ts = dt_new(n, cin, h / 2, w / 2), tx = dt_new(n, cin, h, w), ty = dt_new(n, cout, h, w);
    dtensor ty2 = dt_new(n, cout, h, w), tdx = dt_new(n, cin, h, w), dy[NRUNS], src[NRUNS];
    pbuf prm = pb_new(nw, cout, wt, b, NULL), grd[NRUNS];
    for (int r = 0; r < NRUNS; r++) {
        dy[r] = dt_new(n, cout, h, w);
        src[r] = dt_new(n, cin, h / 2, w / 2);
        dt_put(&dy[r], g);
        grd[r] = pb_new(nw, cout, NULL, NULL, &prm);
    }
    dt_put(&ts, xs);
    CHECK_OK(dc_upsample2_forward(dev, &ts.t, &tx.t));
    CHECK_OK(dc_conv2d_upgrad_forward(dev, &tx.t, NULL, prm.buf, prm.w_off, prm.b_off, k, act, &ty.t));
    CHECK_OK(dc_conv2d_backward(dev, &tx.t, &ty.t, &dy[UNFUSED].t, prm.buf, grd[UNFUSED].buf,
                                prm.w_off, prm.b_off, k, act, &tdx.t));
    CHECK_OK(dc_upsample2_backward(dev, &tdx.t, &src[UNFUSED].t));
    CHECK_OK(dc_conv2d_upgrad_backward(dev, &tx.t, NULL, &ty.t, &dy[FUSED].t, prm.buf, grd[FUSED].buf,
                                       prm.w_off, prm.b_off, k, act, &src[FUSED].t));
    if (in_place)
        CHECK_OK(dc_conv2d_upgrad_backward(dev, NULL, &ts.t, &ty.t, &dy[IN_PLACE].t, prm.buf,
                                           grd[IN_PLACE].buf, prm.w_off, prm.b_off, k, act,
                                           &src[IN_PLACE].t));
    float *want = dt_get(&src[UNFUSED], "unfused"), *gw = pb_get(&grd[UNFUSED]);
    double ge = -1; /* in place: dW and db normwise (conv_dw sums in another order) */
    for (int r = FUSED; r <= (in_place ? IN_PLACE : FUSED); r++) {
        const char *how = r == FUSED ? "from x" : "in place";
        float *got = dt_get(&src[r], "fused"), *gg = pb_get(&grd[r]);
        int bad_src = 0, bad_grad = 0;
        double dd = 0, nn = 0;
        for (size_t i = 0; i < ns; i++) bad_src += memcmp(&want[i], &got[i], sizeof *got) != 0;
        for (size_t i = 0; i < grd[r].total; i++) {
            bad_grad += memcmp(&gw[i], &gg[i], sizeof *gg) != 0;
            dd += ((double)gg[i] - gw[i]) * ((double)gg[i] - gw[i]);
            nn += (double)gw[i] * gw[i];
        }
        CHECK(bad_src == 0, "upgrad %s %s: %d of %zu source gradients differ from conv + upsample "
              "backward", label, how, bad_src, ns);
        if (r == FUSED)
            CHECK(bad_grad == 0, "upgrad %s %s: %d gradient floats differ", label, how, bad_grad);
        else
            ge = sqrt(dd / (nn > 0 ? nn : 1));
        free(got), free(gg);
    }
    if (ge >= 0) check_err("upgrad dW in place", label, ge, 1e-5);
    double fe = -1;
    if (in_place) {
        CHECK_OK(dc_conv2d_upgrad_forward(dev, NULL, &ts.t, prm.buf, prm.w_off, prm.b_off, k, act,
                                          &ty2.t));
        float *y0 = dt_get(&ty, "y"), *y1 = dt_get(&ty2, "y in place");
        double dd = 0, nn = 0;
        for (size_t i = 0; i < ny; i++) {
            double d = (double)y1[i] - y0[i];
            dd += d * d, nn += (double)y0[i] * y0[i];
        }
        fe = sqrt(dd / (nn > 0 ? nn : 1));
        check_err("upgrad fwd in place", label, fe, 1e-5);
        free(y0), free(y1);
    }
    printf("  upgrad   %-48s source gradient, dW and db bit for bit", label);
    if (in_place) printf("; in place: source gradient bit for bit, dW %.1e, forward %.1e", ge, fe);
    printf("\n");
    free(want), free(gw), free(xs), free(wt), free(b), free(g);
    dt_free(&ts), dt_free(&tx), dt_free(&ty), dt_free(&ty2), dt_free(&tdx);
    for (int r = 0; r < NRUNS; r++) {
        dt_free(&dy[r]), dt_free(&src[r]);
        clReleaseMemObject(grd[r].buf);
    }
    clReleaseMemObject(prm.buf);
}

/* The same first layer writing only the pool's output and each window's argmax: the pool's
 * output is the max of the y above (yd), the argmax the first of its maxima, and dW, db from
 * them are the y-based backward's (gall) bit for bit. */
static void test_conv_pooled_out(const dtensor *tx, const dtensor *tg, const pbuf *prm,
                                 const float *gall, const float *yd, int n, int cout, int h, int w,
                                 int k, dc_act act, int chunks, const char *label)
{
    /* the quick run (DAECL_TEST_MODEL_SHAPES: rusticl's, minutes per program) leaves these
     * programs to test_model, which checks the folded model against the reference */
    if (getenv("DAECL_TEST_MODEL_SHAPES")) return;
    if (!dc_conv2d_pooled_out_fits(dev, tx->t.c, cout, h, w, k)) {
        printf("  pooled   %-48s y kept (no pooled-out path here)\n", label);
        return;
    }
    size_t np = (size_t)n * cout * (h / 2) * (w / 2), nw = (size_t)cout * tx->t.c * k * k;
    dtensor tp = dt_new(n, cout, h / 2, w / 2), ta = dt_new(n, cout, h / 2, w / 2);
    CHECK(dc_conv2d_pooled_out_forward(dev, &tx->t, prm->buf, prm->w_off, prm->b_off, k, act,
                                       &tp.t, &ta.t) == DC_OK,
          "pooled-out forward %s: %s", label, dc_error_detail());
    float *pd = dt_get(&tp, "pooled"), *ad = dt_get(&ta, "argmax");
    int pool_bad = 0, arg_bad = 0;
    for (size_t i = 0; i < np; i++) {
        size_t q = i % ((size_t)(w / 2)), r = i / (w / 2), y0 = (r % (h / 2)) * 2, plane = r / (h / 2);
        const float *win = yd + (plane * h + y0) * w + 2 * q;
        const float *at[4] = {win, win + 1, win + w, win + w + 1};
        int best = 0;
        for (int j = 1; j < 4; j++)
            if (*at[j] > *at[best]) best = j;
        pool_bad += memcmp(at[best], &pd[i], sizeof *pd) != 0;
        arg_bad += ad[i] != (float)best;
    }
    pbuf grd = pb_new(nw, cout, NULL, NULL, prm);
    dc_device_options saved = dev->opts;
    dev->opts.dw_chunks = chunks;
    dc_status s = dc_conv2d_pooled_out_backward(dev, &tx->t, &tp.t, &ta.t, &tg->t, grd.buf,
                                                grd.w_off, grd.b_off, k, act);
    dev->opts = saved;
    CHECK(s == DC_OK, "pooled backward from the argmax %s: %s", label, dc_error_detail());
    float *g2 = pb_get(&grd);
    int grad_bad = 0;
    for (size_t i = 0; i < grd.total; i++) grad_bad += memcmp(&g2[i], &gall[i], sizeof *g2) != 0;
    CHECK(pool_bad == 0, "pooled-out %s: %d of %zu pooled values differ from the pool of y",
          label, pool_bad, np);
    CHECK(arg_bad == 0, "pooled-out %s: %d of %zu argmaxes are not the window's first maximum",
          label, arg_bad, np);
    CHECK(grad_bad == 0, "pooled %s: %d gradient floats differ from the argmax", label, grad_bad);
    printf("  pooled   %-48s pool, argmax and gradients from it bit for bit\n", label);
    free(pd), free(ad), free(g2);
    dt_free(&tp), dt_free(&ta);
    clReleaseMemObject(grd.buf);
}

/* ---- a first conv layer with the max pool's backward folded in --------------------------------
 * dc_conv2d_pooled_backward from the pool's output gradient against the reference's two steps
 * (maxpool backward routed by the device's y, then the conv backward). quantized: x in {0, 1},
 * weights in {-0.5, 0, 0.5}, bias 0.25, so that y has exact ties inside windows (the first
 * maximum must win, as in dc_maxpool2_backward). */
static void test_conv_pooled_case(int n, int cin, int cout, int h, int w, int k, dc_act act,
                                  int chunks, int quantized, int skip)
{
    char label[96];
    snprintf(label, sizeof label, "n%d %d->%d %dx%d k%d %s%s%s%s", n, cin, cout, h, w, k,
             dc_act_name(act), chunks ? " chunked" : "", quantized ? " ties" : "",
             skip ? " skip" : "");
    if (!dc_conv2d_pooled_fits(dev, cin, cout, h, w, k)) {
        printf("  pooled   %-48s not on this device's path (skipped)\n", label);
        return;
    }
    size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * h * w, ng = ny / 4;
    size_t nw = (size_t)cout * cin * k * k;
    double *x = dalloc(nx), *wt = dalloc(nw), *b = dalloc(cout), *g = dalloc(ng);
    double *sk = dalloc(ny);
    rand_fill(x, nx, -1, 1);
    rand_fill(sk, ny, -1, 1);
    rand_fill(wt, nw, -0.5, 0.5);
    rand_fill(b, cout, -0.2, 0.2);
    rand_fill(g, ng, -1, 1);
    if (quantized) {
        for (size_t i = 0; i < nx; i++) x[i] = x[i] > 0 ? 1 : 0;
        for (size_t i = 0; i < nw; i++) wt[i] = wt[i] > 0.17 ? 0.5 : wt[i] < -0.17 ? -0.5 : 0;
        for (int i = 0; i < cout; i++) b[i] = 0.25;
    }
    dtensor tx = dt_new(n, cin, h, w), ty = dt_new(n, cout, h, w), tg = dt_new(n, cout, h / 2, w / 2);
    dtensor ts = dt_new(n, cout, h, w);
    dt_put(&tx, x);
    dt_put(&tg, g);
    dt_put(&ts, sk);
    pbuf prm = pb_new(nw, cout, wt, b, NULL);
    pbuf grd = pb_new(nw, cout, NULL, NULL, &prm);
    CHECK(dc_conv2d_pooled_forward(dev, &tx.t, prm.buf, prm.w_off, prm.b_off, k, act, &ty.t) == DC_OK,
          "pooled forward %s: %s", label, dc_error_detail());
    double *y = dalloc(ny), *ymag = dalloc(ny);
    ref_conv2d_forward(x, n, cin, h, w, wt, b, cout, k, act, y, ymag);
    float *yd = dt_get(&ty, "y");
    double e_fwd = ref_rel_err(yd, y, ymag, ny, 0);
    check_err("conv2d pooled fwd", label, e_fwd, TOL_DEV);

    double *ydev = dalloc(ny), *dz = dalloc(ny), *dw = dalloc(nw), *db = dalloc(cout);
    double *mdw = dalloc(nw), *mdb = dalloc(cout);
    to_double(ydev, yd, ny);
    int ties = 0;
    for (size_t i = 0; i + 1 < ny; i += 2) ties += ydev[i] == ydev[i + 1] && ydev[i] > 0;
    ref_maxpool2_backward(ydev, n, cout, h, w, g, dz);
    if (skip)
        for (size_t i = 0; i < ny; i++) dz[i] += sk[i];
    ref_conv2d_backward(x, n, cin, h, w, wt, cout, k, act, ydev, dz, dw, db, NULL, mdw, mdb, NULL);
    dc_device_options saved = dev->opts;
    dev->opts.dw_chunks = chunks;
    dc_status s = dc_conv2d_pooled_backward(dev, &tx.t, &ty.t, &tg.t, skip ? &ts.t : NULL,
                                            grd.buf, grd.w_off, grd.b_off, k, act);
    dev->opts = saved;
    CHECK(s == DC_OK, "pooled backward %s: %s", label, dc_error_detail());
    float *gall = pb_get(&grd);
    if (!skip) test_conv_pooled_out(&tx, &tg, &prm, gall, yd, n, cout, h, w, k, act, chunks, label);
    int bad = 0;
    for (size_t i = 0; i < grd.total; i++) {
        int in_w = i >= grd.w_off && i < grd.w_off + nw;
        int in_b = i >= grd.b_off && i < grd.b_off + (size_t)cout;
        if (!in_w && !in_b && gall[i] != SENTINEL) bad++;
    }
    CHECK(bad == 0, "pooled %s: %d gradient floats outside dW/db were overwritten", label, bad);
    double e_dw = ref_rel_err(gall + grd.w_off, dw, mdw, nw, 0);
    double e_db = ref_rel_err(gall + grd.b_off, db, mdb, cout, 0);
    check_err("conv2d pooled dW", label, e_dw, TOL_DEV);
    check_err("conv2d pooled db", label, e_db, TOL_DEV);
    if (quantized) CHECK(ties > 0, "pooled %s: the quantized input made no positive ties", label);
    printf("  pooled   %-48s fwd %.1e  dW %.1e  db %.1e  (%d tied pairs)\n", label, e_fwd, e_dw,
           e_db, ties);
    free(gall), free(yd), free(x), free(wt), free(b), free(g), free(y), free(ymag), free(ydev);
    free(dz), free(dw), free(db), free(mdw), free(mdb), free(sk);
    dt_free(&tx), dt_free(&ty), dt_free(&tg), dt_free(&ts);
    clReleaseMemObject(prm.buf);
    clReleaseMemObject(grd.buf);
}

static void test_conv_pooled_refusals(void)
{
    CHECK(!dc_conv2d_pooled_fits(dev, 1, 8, 7, 8, 3), "pooled: an odd height fits");
    CHECK(!dc_conv2d_pooled_fits(dev, 1, 8, 8, 9, 3), "pooled: an odd width fits");
    CHECK(!dc_conv2d_pooled_fits(dev, 1, 8, 8, 8, 2), "pooled: an even kernel fits");
    dtensor tx = dt_new(1, 1, 7, 8), ty = dt_new(1, 8, 7, 8), tg = dt_new(1, 8, 3, 4);
    pbuf prm = pb_new(8 * 9, 8, NULL, NULL, NULL);
    dc_status s = dc_conv2d_pooled_backward(dev, &tx.t, &ty.t, &tg.t, NULL, prm.buf, prm.w_off,
                                            prm.b_off, 3, DC_ACT_RELU);
    CHECK(s == DC_ERR_UNSUPPORTED && strstr(dc_error_detail(), "pooled"),
          "pooled backward of an odd size: status %d, '%s'", (int)s, dc_error_detail());
    dt_free(&tx), dt_free(&ty), dt_free(&tg);
    clReleaseMemObject(prm.buf);
}

/* ---- pool / upsample / activation / merges: device vs reference --------------------------- */

static void test_pool_case(int n, int c, int h, int w)
{
    int ho = h / 2, wo = w / 2;
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * ho * wo;
    char label[64];
    snprintf(label, sizeof label, "n%d c%d %dx%d", n, c, h, w);
    double *x = dalloc(nx), *y = dalloc(ny), *g = dalloc(ny), *dx = dalloc(nx);
    rand_fill(x, nx, -1, 1);
    /* a few exact ties so the tie rule is exercised on random data too */
    for (size_t i = 0; i + 1 < nx; i += 7) x[i + 1] = x[i];
    rand_fill(g, ny, -1, 1);
    dtensor tx = dt_new(n, c, h, w), ty = dt_new(n, c, ho, wo), tg = dt_new(n, c, ho, wo),
            tdx = dt_new(n, c, h, w);
    dt_put(&tx, x);
    dt_put(&tg, g);
    CHECK_OK(dc_maxpool2_forward(dev, &tx.t, &ty.t));
    CHECK_OK(dc_maxpool2_backward(dev, &tx.t, &tg.t, &tdx.t, NULL));
    ref_maxpool2_forward(x, n, c, h, w, y);
    ref_maxpool2_backward(x, n, c, h, w, g, dx);
    float *yd = dt_get(&ty, "pool y"), *dxd = dt_get(&tdx, "pool dx");
    double e1 = ref_rel_err(yd, y, NULL, ny, 0), e2 = ref_rel_err(dxd, dx, NULL, nx, 0);
    check_err("maxpool2 fwd", label, e1, 0);
    check_err("maxpool2 bwd", label, e2, 0);
    /* with a skip path's share added in the same pass: dx + add, odd rows/columns included
     * (one float addition per value, so the same sum as the reference's in float) */
    double *ad = dalloc(nx);
    rand_fill(ad, nx, -1, 1);
    dtensor tad = dt_new(n, c, h, w);
    dt_put(&tad, ad);
    CHECK_OK(dc_maxpool2_backward(dev, &tx.t, &tg.t, &tdx.t, &tad.t));
    for (size_t i = 0; i < nx; i++) dx[i] = (double)((float)dx[i] + (float)ad[i]);
    float *dxa = dt_get(&tdx, "pool dx + add");
    double e3 = ref_rel_err(dxa, dx, NULL, nx, 0);
    check_err("maxpool2 bwd + add", label, e3, 0);
    printf("  maxpool2 %-20s fwd %.1e  bwd %.1e  bwd+add %.1e\n", label, e1, e2, e3);
    free(dxa), free(ad);
    dt_free(&tad);
    free(yd), free(dxd), free(x), free(y), free(g), free(dx);
    dt_free(&tx), dt_free(&ty), dt_free(&tg), dt_free(&tdx);
}

/* Ties: in each 2x2 window the first maximum in row-major order wins, every time. */
static void test_pool_ties(void)
{
    /* 1 image, 1 channel, 4x6 -> 2x3 windows */
    static const float x[4 * 6] = {
        1, 1,   5, 2,  0, 0, /* windows: all equal | 5 first | all zero */
        1, 1,   5, 5,  0, 0,
        -1, -2, 3, 3,  1, 2, /* -1 first of unequal | top pair ties | bottom-left 7 ties right */
        -3, -4, 1, 2,  7, 7,
    };
    /* expected winner flat index in x per window */
    static const int win[6] = {0, 2, 4, 12, 14, 22};
    dtensor tx = dt_new(1, 1, 4, 6), ty = dt_new(1, 1, 2, 3), tg = dt_new(1, 1, 2, 3),
            tdx = dt_new(1, 1, 4, 6);
    CHECK_OK(dc_tensor_write(dev, &tx.t, x));
    static const float g[6] = {10, 20, 30, 40, 50, 60};
    CHECK_OK(dc_tensor_write(dev, &tg.t, g));
    for (int rep = 0; rep < 3; rep++) {
        CHECK_OK(dc_maxpool2_forward(dev, &tx.t, &ty.t));
        CHECK_OK(dc_maxpool2_backward(dev, &tx.t, &tg.t, &tdx.t, NULL));
        float *yd = dt_get(&ty, "ties y"), *dxd = dt_get(&tdx, "ties dx");
        for (int i = 0; i < 6; i++) CHECK(yd[i] == x[win[i]], "tie window %d: max %g", i, yd[i]);
        for (int i = 0; i < 24; i++) {
            float want = 0;
            for (int j = 0; j < 6; j++)
                if (win[j] == i) want = g[j];
            CHECK(dxd[i] == want, "tie routing rep %d: dx[%d] = %g, want %g", rep, i, dxd[i], want);
        }
        free(yd), free(dxd);
    }
    /* and the reference follows the same rule */
    double xd[24], gd[6], dxr[24];
    for (int i = 0; i < 24; i++) xd[i] = x[i];
    for (int i = 0; i < 6; i++) gd[i] = g[i];
    ref_maxpool2_backward(xd, 1, 1, 4, 6, gd, dxr);
    for (int j = 0; j < 6; j++) CHECK(dxr[win[j]] == gd[j], "reference tie window %d", j);
    dt_free(&tx), dt_free(&ty), dt_free(&tg), dt_free(&tdx);
}

/* Average pooling: forward within float rounding of the 4-term sum, backward exact (dy/4). */
static void test_avgpool_case(int n, int c, int h, int w)
{
    int ho = h / 2, wo = w / 2;
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * ho * wo;
    char label[64];
    snprintf(label, sizeof label, "n%d c%d %dx%d", n, c, h, w);
    double *x = dalloc(nx), *y = dalloc(ny), *g = dalloc(ny), *dx = dalloc(nx), *ax = dalloc(nx), *mag = dalloc(ny);
    rand_fill(x, nx, -1, 1);
    rand_fill(g, ny, -1, 1);
    dtensor tx = dt_new(n, c, h, w), ty = dt_new(n, c, ho, wo), tg = dt_new(n, c, ho, wo), tdx = dt_new(n, c, h, w);
    dt_put(&tx, x);
    dt_put(&tg, g);
    /* Garbage in dx first: the backward must overwrite every element, dropped ones with 0. */
    double *junk = dalloc(nx);
    rand_fill(junk, nx, 5, 6);
    dt_put(&tdx, junk);
    CHECK_OK(dc_avgpool2_forward(dev, &tx.t, &ty.t));
    CHECK_OK(dc_avgpool2_backward(dev, &tg.t, &tdx.t));
    ref_avgpool2_forward(x, n, c, h, w, y);
    ref_avgpool2_backward(g, n, c, h, w, dx);
    for (size_t i = 0; i < nx; i++) ax[i] = fabs(x[i]);
    ref_avgpool2_forward(ax, n, c, h, w, mag); /* the sum of |terms| / 4 */
    float *yd = dt_get(&ty, "avgpool y"), *dxd = dt_get(&tdx, "avgpool dx");
    double e1 = ref_rel_err(yd, y, mag, ny, 0), e2 = ref_rel_err(dxd, dx, NULL, nx, 0);
    check_err("avgpool2 fwd", label, e1, TOL_DEV);
    check_err("avgpool2 bwd", label, e2, 0);
    printf("  avgpool2 %-20s fwd %.1e  bwd %.1e\n", label, e1, e2);
    free(yd), free(dxd), free(x), free(y), free(g), free(dx), free(ax), free(mag), free(junk);
    dt_free(&tx), dt_free(&ty), dt_free(&tg), dt_free(&tdx);
}

static void test_upsample_case(int n, int c, int h, int w)
{
    size_t nx = (size_t)n * c * h * w, ny = nx * 4;
    char label[64];
    snprintf(label, sizeof label, "n%d c%d %dx%d", n, c, h, w);
    double *x = dalloc(nx), *y = dalloc(ny), *g = dalloc(ny), *dx = dalloc(nx), *mag = dalloc(nx);
    rand_fill(x, nx, -1, 1);
    rand_fill(g, ny, -1, 1);
    dtensor tx = dt_new(n, c, h, w), ty = dt_new(n, c, 2 * h, 2 * w),
            tg = dt_new(n, c, 2 * h, 2 * w), tdx = dt_new(n, c, h, w);
    dt_put(&tx, x);
    dt_put(&tg, g);
    CHECK_OK(dc_upsample2_forward(dev, &tx.t, &ty.t));
    CHECK_OK(dc_upsample2_backward(dev, &tg.t, &tdx.t));
    ref_upsample2_forward(x, n, c, h, w, y);
    ref_upsample2_backward(g, n, c, h, w, dx, mag);
    float *yd = dt_get(&ty, "up y"), *dxd = dt_get(&tdx, "up dx");
    double e1 = ref_rel_err(yd, y, NULL, ny, 0), e2 = ref_rel_err(dxd, dx, mag, nx, 0);
    check_err("upsample2 fwd", label, e1, 0);
    check_err("upsample2 bwd", label, e2, TOL_DEV);
    printf("  upsample2 %-19s fwd %.1e  bwd %.1e\n", label, e1, e2);
    free(yd), free(dxd), free(x), free(y), free(g), free(dx), free(mag);
    dt_free(&tx), dt_free(&ty), dt_free(&tg), dt_free(&tdx);
}

static void test_act_case(dc_act act, int n, int c, int h, int w, int in_place)
{
    size_t cnt = (size_t)n * c * h * w;
    char label[64], op[48];
    snprintf(label, sizeof label, "%s n%d c%d %dx%d%s", dc_act_name(act), n, c, h, w,
             in_place ? " in-place" : "");
    double *x = dalloc(cnt), *y = dalloc(cnt), *g = dalloc(cnt);
    rand_fill(x, cnt, -3, 3);
    rand_fill(g, cnt, -1, 1);
    dtensor tx = dt_new(n, c, h, w), ty = dt_new(n, c, h, w), tg = dt_new(n, c, h, w);
    dt_put(&tx, x);
    dt_put(&tg, g);
    dtensor *out = in_place ? &tx : &ty;
    CHECK_OK(dc_act_forward(dev, act, &tx.t, &out->t));
    CHECK_OK(dc_act_backward(dev, act, &out->t, &tg.t));
    ref_act_forward(act, x, cnt, y);
    float *yd = dt_get(out, "act y"), *gd = dt_get(&tg, "act dy");
    double *ydev = dalloc(cnt);
    to_double(ydev, yd, cnt);
    ref_act_backward(act, ydev, cnt, g); /* from the device's y, like the device */
    double e1 = ref_rel_err(yd, y, NULL, cnt, 1e-6), e2 = ref_rel_err(gd, g, NULL, cnt, 1e-6);
    snprintf(op, sizeof op, "act %s fwd", dc_act_name(act));
    check_err(op, label, e1, TOL_DEV);
    snprintf(op, sizeof op, "act %s bwd", dc_act_name(act));
    check_err(op, label, e2, TOL_DEV);
    printf("  act %-25s fwd %.1e  bwd %.1e\n", label, e1, e2);
    free(yd), free(gd), free(x), free(y), free(g), free(ydev);
    dt_free(&tx), dt_free(&ty), dt_free(&tg);
}

static void test_merge_case(int n, int ca, int cb, int h, int w)
{
    int hw = h * w;
    size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, ny = na + nb;
    char label[64];
    snprintf(label, sizeof label, "n%d %d+%d %dx%d", n, ca, cb, h, w);
    double *a = dalloc(na), *b = dalloc(nb), *a2 = dalloc(na), *y = dalloc(ny), *s = dalloc(na);
    double *g = dalloc(ny), *ga = dalloc(na), *gb = dalloc(nb);
    rand_fill(a, na, -1, 1);
    rand_fill(a2, na, -1, 1);
    rand_fill(b, nb, -1, 1);
    rand_fill(g, ny, -1, 1);
    dtensor ta = dt_new(n, ca, h, w), ta2 = dt_new(n, ca, h, w), tb = dt_new(n, cb, h, w);
    dtensor ty = dt_new(n, ca + cb, h, w), ts = dt_new(n, ca, h, w), tg = dt_new(n, ca + cb, h, w);
    dtensor tga = dt_new(n, ca, h, w), tgb = dt_new(n, cb, h, w);
    dt_put(&ta, a), dt_put(&ta2, a2), dt_put(&tb, b), dt_put(&tg, g);
    CHECK_OK(dc_add_forward(dev, &ta.t, &ta2.t, &ts.t));
    CHECK_OK(dc_concat_forward(dev, &ta.t, &tb.t, &ty.t));
    CHECK_OK(dc_concat_backward(dev, &tg.t, &tga.t, &tgb.t));
    ref_add_forward(a, a2, na, s);
    ref_concat_forward(a, b, n, ca, cb, hw, y);
    ref_concat_backward(g, n, ca, cb, hw, ga, gb);
    float *sd = dt_get(&ts, "add y"), *yd = dt_get(&ty, "concat y");
    float *gad = dt_get(&tga, "concat da"), *gbd = dt_get(&tgb, "concat db");
    double e_add = ref_rel_err(sd, s, NULL, na, 1e-6);
    double e_cat = ref_rel_err(yd, y, NULL, ny, 0);
    double e_cb = fmax(ref_rel_err(gad, ga, NULL, na, 0), ref_rel_err(gbd, gb, NULL, nb, 0));
    check_err("add fwd", label, e_add, TOL_DEV);
    check_err("concat fwd", label, e_cat, 0);
    check_err("concat bwd", label, e_cb, 0);
    printf("  merge %-23s add %.1e  concat fwd %.1e  bwd %.1e\n", label, e_add, e_cat, e_cb);
    free(a), free(b), free(a2), free(y), free(s), free(g), free(ga), free(gb);
    free(sd), free(yd), free(gad), free(gbd);
    dt_free(&ta), dt_free(&ta2), dt_free(&tb), dt_free(&ty), dt_free(&ts), dt_free(&tg);
    dt_free(&tga), dt_free(&tgb);
}

/* ---- reference backward vs finite differences -------------------------------------------- */

/* L = sum g*y of a layer as a function of (x, w, b). */
typedef struct fd_layer {
    int kind; /* 0 conv, 1 convT, 2 pool, 3 upsample, 4 act, 5 concat */
    int n, cin, cout, h, w, k;
    dc_act act;
} fd_layer;

static size_t fd_out_size(const fd_layer *L)
{
    switch (L->kind) {
    case 0: return (size_t)L->n * L->cout * L->h * L->w;
    case 1: return (size_t)L->n * L->cout * 4 * L->h * L->w;
    case 2: return (size_t)L->n * L->cin * (L->h / 2) * (L->w / 2);
    case 3: return (size_t)L->n * L->cin * 4 * L->h * L->w;
    case 4: return (size_t)L->n * L->cin * L->h * L->w;
    default: return (size_t)L->n * (L->cin + L->cout) * L->h * L->w;
    }
}

/* x holds the input (for concat: a then b, cin + cout channels worth). */
static void fd_forward(const fd_layer *L, const double *x, const double *wt, const double *b,
                       double *y)
{
    size_t hw = (size_t)L->h * L->w;
    switch (L->kind) {
    case 0: ref_conv2d_forward(x, L->n, L->cin, L->h, L->w, wt, b, L->cout, L->k, L->act, y, NULL); break;
    case 1: ref_convT2d_forward(x, L->n, L->cin, L->h, L->w, wt, b, L->cout, L->k, L->act, y, NULL); break;
    case 2: ref_maxpool2_forward(x, L->n, L->cin, L->h, L->w, y); break;
    case 3: ref_upsample2_forward(x, L->n, L->cin, L->h, L->w, y); break;
    case 4: ref_act_forward(L->act, x, (size_t)L->n * L->cin * hw, y); break;
    default:
        ref_concat_forward(x, x + (size_t)L->n * L->cin * hw, L->n, L->cin, L->cout, (int)hw, y);
    }
}

static double fd_loss(const fd_layer *L, const double *x, const double *wt, const double *b,
                      const double *g, double *y)
{
    fd_forward(L, x, wt, b, y);
    size_t ny = fd_out_size(L);
    double s = 0;
    for (size_t i = 0; i < ny; i++) s += g[i] * y[i];
    return s;
}

/* Central difference of L with respect to p[i] for every i; err against analytic. */
static double fd_compare(const fd_layer *L, double *x, double *wt, double *b, const double *g,
                         double *p, size_t np, const double *analytic)
{
    const double h = 1e-6;
    double *y = dalloc(fd_out_size(L));
    double worst = 0, scale = 0;
    for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(analytic[i]));
    for (size_t i = 0; i < np; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = fd_loss(L, x, wt, b, g, y);
        p[i] = keep - h;
        double lm = fd_loss(L, x, wt, b, g, y);
        p[i] = keep;
        double num = (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(num - analytic[i]));
    }
    free(y);
    return scale > 0 ? worst / scale : worst;
}

/* Smallest distance of any pre-activation of a conv/convT layer to the activation's kink. */
static double kink_distance(const fd_layer *L, const double *x, const double *wt,
                            const double *b)
{
    if (L->act != DC_ACT_RELU && L->act != DC_ACT_LEAKY_RELU) return INFINITY;
    fd_layer lin = *L;
    lin.act = DC_ACT_NONE;
    size_t ny = fd_out_size(L);
    double *z = dalloc(ny), d = INFINITY;
    fd_forward(&lin, x, wt, b, z);
    for (size_t i = 0; i < ny; i++) d = fmin(d, fabs(z[i]));
    free(z);
    return d;
}

/* Smallest gap between the largest and second largest value of any pooling window. */
static double pool_gap(const fd_layer *L, const double *x)
{
    double d = INFINITY;
    for (size_t img = 0; img < (size_t)L->n * L->cin; img++)
        for (int oy = 0; oy < L->h / 2; oy++)
            for (int ox = 0; ox < L->w / 2; ox++) {
                const double *r = x + (img * L->h + 2 * oy) * L->w + 2 * ox;
                double v[4] = {r[0], r[1], r[L->w], r[L->w + 1]};
                for (int i = 0; i < 4; i++)
                    for (int j = i + 1; j < 4; j++) d = fmin(d, fabs(v[i] - v[j]));
            }
    return d;
}

static void test_fd(fd_layer L, const char *name)
{
    int cin_x = L.kind == 5 ? L.cin + L.cout : L.cin;
    size_t nx = (size_t)L.n * cin_x * L.h * L.w, ny = fd_out_size(&L);
    size_t nw = (L.kind <= 1) ? (size_t)L.cout * L.cin * L.k * L.k : 0;
    size_t nb = (L.kind <= 1) ? (size_t)L.cout : 0;
    double *x = dalloc(nx), *wt = dalloc(nw), *b = dalloc(nb), *g = dalloc(ny), *y = dalloc(ny);
    for (int tries = 0;; tries++) {
        for (size_t i = 0; i < nx; i++) x[i] = test_uniform(&rng, -1, 1);
        for (size_t i = 0; i < nw; i++) wt[i] = test_uniform(&rng, -0.5, 0.5);
        for (size_t i = 0; i < nb; i++) b[i] = test_uniform(&rng, -0.2, 0.2);
        int ok = 1;
        if (L.kind <= 1) ok = kink_distance(&L, x, wt, b) > 1e-3;
        if (L.kind == 2) ok = pool_gap(&L, x) > 1e-3;
        if (L.kind == 4 && (L.act == DC_ACT_RELU || L.act == DC_ACT_LEAKY_RELU))
            for (size_t i = 0; i < nx; i++) ok &= fabs(x[i]) > 1e-3;
        if (ok) break;
        CHECK(tries < 200, "fd %s: could not draw inputs away from kinks", name);
        if (tries >= 200) break;
    }
    for (size_t i = 0; i < ny; i++) g[i] = test_uniform(&rng, -1, 1);
    fd_forward(&L, x, wt, b, y);
    double *dz = dalloc(ny), *dw = dalloc(nw), *db = dalloc(nb), *dx = dalloc(nx);
    memcpy(dz, g, ny * sizeof *dz);
    size_t hw = (size_t)L.h * L.w;
    switch (L.kind) {
    case 0: ref_conv2d_backward(x, L.n, L.cin, L.h, L.w, wt, L.cout, L.k, L.act, y, dz, dw, db, dx, NULL, NULL, NULL); break;
    case 1: ref_convT2d_backward(x, L.n, L.cin, L.h, L.w, wt, L.cout, L.k, L.act, y, dz, dw, db, dx, NULL, NULL, NULL); break;
    case 2: ref_maxpool2_backward(x, L.n, L.cin, L.h, L.w, g, dx); break;
    case 3: ref_upsample2_backward(g, L.n, L.cin, L.h, L.w, dx, NULL); break;
    case 4:
        memcpy(dx, g, nx * sizeof *dx);
        ref_act_backward(L.act, y, nx, dx);
        break;
    default: ref_concat_backward(g, L.n, L.cin, L.cout, (int)hw, dx, dx + (size_t)L.n * L.cin * hw);
    }
    double ex = fd_compare(&L, x, wt, b, g, x, nx, dx);
    double ew = nw ? fd_compare(&L, x, wt, b, g, wt, nw, dw) : 0;
    double eb = nb ? fd_compare(&L, x, wt, b, g, b, nb, db) : 0;
    double e = fmax(ex, fmax(ew, eb));
    char op[96];
    snprintf(op, sizeof op, "reference FD %s", L.kind <= 1 ? (L.kind ? "convT2d" : "conv2d") : name);
    record(op, e);
    CHECK(e <= TOL_FD, "finite differences %s: dx %.2g dW %.2g db %.2g", name, ex, ew, eb);
    printf("  fd %-34s dx %.1e  dW %.1e  db %.1e\n", name, ex, ew, eb);
    free(x), free(wt), free(b), free(g), free(y), free(dz), free(dw), free(db), free(dx);
}

/* ---- errors instead of crashes ------------------------------------------------------------ */

static void test_errors(void)
{
    dtensor x = dt_new(2, 3, 6, 6), y = dt_new(2, 4, 6, 6), p = dt_new(2, 3, 3, 3);
    dtensor bad = dt_new(2, 4, 5, 6);
    pbuf prm = pb_new(4 * 3 * 9, 4, NULL, NULL, NULL);
    dc_tensor x8 = x.t;
    x8.layout = DC_LAYOUT_NCHW8C;
    dc_tensor none = x.t;
    none.buf = NULL;
    dc_status s;

    s = dc_conv2d_forward(dev, &x8, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "conv NCHW8c -> %s", dc_strerror(s));
    s = dc_conv2d_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &bad.t);
    CHECK(s == DC_ERR_INVALID_ARG, "conv shape mismatch -> %s", dc_strerror(s));
    s = dc_conv2d_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 2, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "conv even k -> %s", dc_strerror(s));
    s = dc_conv2d_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_COUNT, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "conv bad act -> %s", dc_strerror(s));
    s = dc_conv2d_forward(dev, &none, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "conv missing buffer -> %s", dc_strerror(s));
    s = dc_conv2d_forward(dev, &x.t, NULL, 0, 0, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "conv missing params -> %s", dc_strerror(s));
    s = dc_conv2d_backward(dev, &x.t, &y.t, &bad.t, prm.buf, prm.buf, prm.w_off, prm.b_off, 3,
                           DC_ACT_RELU, NULL);
    CHECK(s == DC_ERR_INVALID_ARG, "conv backward dy mismatch -> %s", dc_strerror(s));
    s = dc_conv2d_backward(dev, &x.t, &y.t, &y.t, prm.buf, prm.buf, prm.w_off, prm.b_off, 3,
                           DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "conv backward dx mismatch -> %s", dc_strerror(s));
    s = dc_convT2d_forward(dev, &x.t, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "convT needs 2x output -> %s", dc_strerror(s));
    /* a device that cuts loops short (Mesa llvmpipe) below what one image needs: refused */
    unsigned long limit = dev->opts.loop_limit;
    dev->opts.loop_limit = 100;
    s = dc_conv2d_backward(dev, &x.t, &y.t, &y.t, prm.buf, prm.buf, prm.w_off, prm.b_off, 3,
                           DC_ACT_RELU, NULL);
    CHECK(s == DC_ERR_UNSUPPORTED && strstr(dc_error_detail(), "loop iterations"),
          "conv backward beyond the device's loop limit -> %s (%s)", dc_strerror(s),
          dc_error_detail());
    dev->opts.loop_limit = limit;
    s = dc_convT2d_forward(dev, &x8, prm.buf, prm.w_off, prm.b_off, 3, DC_ACT_RELU, &y.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "convT NCHW8c -> %s", dc_strerror(s));
    s = dc_maxpool2_forward(dev, &x.t, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "pool shape mismatch -> %s", dc_strerror(s));
    s = dc_maxpool2_forward(dev, &x8, &p.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "pool NCHW8c -> %s", dc_strerror(s));
    s = dc_maxpool2_backward(dev, &x.t, &p.t, &y.t, NULL);
    CHECK(s == DC_ERR_INVALID_ARG, "pool backward dx mismatch -> %s", dc_strerror(s));
    s = dc_avgpool2_forward(dev, &x.t, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "avgpool shape mismatch -> %s", dc_strerror(s));
    s = dc_avgpool2_forward(dev, &x8, &p.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "avgpool NCHW8c -> %s", dc_strerror(s));
    s = dc_avgpool2_backward(dev, &p.t, &y.t); /* 4 channels vs 3 */
    CHECK(s == DC_ERR_INVALID_ARG, "avgpool backward dx mismatch -> %s", dc_strerror(s));
    s = dc_upsample2_forward(dev, &x.t, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "upsample shape mismatch -> %s", dc_strerror(s));
    s = dc_upsample2_backward(dev, &y.t, &p.t); /* 4 channels vs 3 */
    CHECK(s == DC_ERR_INVALID_ARG, "upsample backward mismatch -> %s", dc_strerror(s));
    s = dc_act_forward(dev, DC_ACT_RELU, &x.t, &y.t);
    CHECK(s == DC_ERR_INVALID_ARG, "act shape mismatch -> %s", dc_strerror(s));
    s = dc_act_forward(dev, DC_ACT_RELU, &x8, &x.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "act NCHW8c -> %s", dc_strerror(s));
    s = dc_act_backward(dev, (dc_act)99, &x.t, &x.t);
    CHECK(s == DC_ERR_INVALID_ARG, "act bad enum -> %s", dc_strerror(s));
    s = dc_add_forward(dev, &x.t, &y.t, &x.t);
    CHECK(s == DC_ERR_INVALID_ARG, "add mismatch -> %s", dc_strerror(s));
    s = dc_concat_forward(dev, &x.t, &x.t, &y.t); /* 3 + 3 != 4 */
    CHECK(s == DC_ERR_INVALID_ARG, "concat channel mismatch -> %s", dc_strerror(s));
    s = dc_concat_backward(dev, &y.t, &x.t, &p.t);
    CHECK(s == DC_ERR_INVALID_ARG, "concat backward mismatch -> %s", dc_strerror(s));
    s = dc_concat_forward(dev, &x8, &x.t, &y.t);
    CHECK(s == DC_ERR_UNSUPPORTED, "concat NCHW8c -> %s", dc_strerror(s));

    dc_act a;
    CHECK(dc_act_parse("relu", &a) == DC_OK && a == DC_ACT_RELU, "parse relu");
    CHECK(dc_act_parse("Sigmoid", &a) == DC_OK && a == DC_ACT_SIGMOID, "parse Sigmoid");
    CHECK(dc_act_parse("leaky_relu", &a) == DC_OK && a == DC_ACT_LEAKY_RELU, "parse leaky_relu");
    CHECK(dc_act_parse("linear", &a) == DC_OK && a == DC_ACT_NONE, "parse linear");
    CHECK(dc_act_parse("swish", &a) == DC_ERR_INVALID_ARG, "parse swish fails");
    for (int i = 0; i < DC_ACT_COUNT; i++)
        CHECK(dc_act_parse(dc_act_name((dc_act)i), &a) == DC_OK && a == (dc_act)i,
              "name/parse round trip %d", i);
    CHECK(!strcmp(dc_act_name(DC_ACT_COUNT), "?"), "invalid act name");

    finish();
    dt_free(&x), dt_free(&y), dt_free(&p), dt_free(&bad);
    clReleaseMemObject(prm.buf);
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
    printf("device %s\n", desc);

    printf("reference backward vs finite differences:\n");
    for (int a = 0; a < DC_ACT_COUNT; a++) {
        char name[64];
        snprintf(name, sizeof name, "conv2d 2x3->4 5x6 k3 %s", dc_act_name((dc_act)a));
        test_fd((fd_layer){0, 2, 3, 4, 5, 6, 3, (dc_act)a}, name);
        snprintf(name, sizeof name, "convT2d 2x3->2 3x4 k3 %s", dc_act_name((dc_act)a));
        test_fd((fd_layer){1, 2, 3, 2, 3, 4, 3, (dc_act)a}, name);
        snprintf(name, sizeof name, "act %s", dc_act_name((dc_act)a));
        test_fd((fd_layer){4, 2, 3, 0, 4, 5, 0, (dc_act)a}, name);
    }
    test_fd((fd_layer){0, 1, 2, 3, 4, 5, 1, DC_ACT_TANH}, "conv2d k1 tanh");
    test_fd((fd_layer){0, 1, 2, 2, 6, 5, 5, DC_ACT_SIGMOID}, "conv2d k5 sigmoid");
    test_fd((fd_layer){1, 1, 2, 2, 3, 3, 5, DC_ACT_NONE}, "convT2d k5");
    test_fd((fd_layer){1, 1, 2, 2, 3, 3, 1, DC_ACT_NONE}, "convT2d k1");
    test_fd((fd_layer){2, 2, 3, 0, 5, 7, 0, DC_ACT_NONE}, "maxpool2");
    test_fd((fd_layer){3, 2, 3, 0, 3, 4, 0, DC_ACT_NONE}, "upsample2");
    test_fd((fd_layer){5, 2, 2, 3, 3, 4, 0, DC_ACT_NONE}, "concat");

    printf("device vs reference (max error per tensor):\n");
    /* odd sizes: batch 3, 7x9, 5 channels, k 1/3/5, every activation */
    for (int a = 0; a < DC_ACT_COUNT; a++)
        test_conv_case((conv_case){3, 5, 5, 7, 9, 3, (dc_act)a, 0, 0, 0, 0, 0});
    /* DAECL_TEST_MODEL_SHAPES=1 (tests/ci/rusticl.sh): on an implementation whose compiler
     * takes ~30 s per program, only one odd-size program per direction and the presets'
     * layers; everything below is still run on PoCL in every CI run. */
    int all_shapes = !getenv("DAECL_TEST_MODEL_SHAPES");
    if (all_shapes) {
        test_conv_case((conv_case){3, 5, 4, 7, 9, 1, DC_ACT_RELU, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){3, 5, 6, 7, 9, 5, DC_ACT_TANH, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){3, 5, 6, 7, 9, 5, DC_ACT_SIGMOID, 0, 3, 1, 0, 0});
        test_conv_case((conv_case){2, 3, 5, 1, 1, 3, DC_ACT_NONE, 0, 0, 0, 0, 0});
        /* wide rows: several row blocks, halos, a last block narrower than the halo (65 = 32+32+1) */
        test_conv_case((conv_case){2, 2, 3, 3, 65, 5, DC_ACT_NONE, 0, 2, 0, 0, 0});
        test_conv_case((conv_case){2, 3, 8, 4, 70, 3, DC_ACT_LEAKY_RELU, 0, 0, 0, 0, 0}); /* 8 lanes */
        test_conv_case((conv_case){2, 3, 8, 4, 70, 3, DC_ACT_TANH, 0, 0, 0, 0, DC_CONV_LANES_PIXELS});
        test_conv_case((conv_case){1, 2, 17, 9, 16, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
        /* three images: the middle one's weight gradient takes the unaligned row loads */
        test_conv_case((conv_case){3, 32, 1, 28, 28, 3, DC_ACT_SIGMOID, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){4, 3, 2, 6, 40, 5, DC_ACT_TANH, 0, 0, 0, 0, 0});
    }
    /* transposed */
    for (int a = 0; a < DC_ACT_COUNT; a++)
        test_conv_case((conv_case){3, 5, 4, 7, 9, 3, (dc_act)a, 1, 0, 0, 0, 0});
    if (all_shapes) {
        test_conv_case((conv_case){3, 5, 4, 7, 9, 1, DC_ACT_TANH, 1, 0, 1, 0, 0});
        test_conv_case((conv_case){3, 5, 4, 7, 9, 5, DC_ACT_RELU, 1, 2, 0, 0, 0});
        test_conv_case((conv_case){1, 2, 9, 3, 40, 3, DC_ACT_LEAKY_RELU, 1, 0, 0, 0, 0}); /* wide */
    }
    /* Each shape compiles its own program (1-5 s on PoCL): the weight-gradient form that a shape
     * would not pick is tested on demand only. */
    if (getenv("DAECL_TEST_FULL")) {
        test_conv_case((conv_case){3, 5, 5, 7, 9, 3, DC_ACT_RELU, 0, 0, 0, DC_CONV_DW_CHANNELS, 0});
        test_conv_case((conv_case){2, 32, 32, 14, 14, 3, DC_ACT_TANH, 0, 0, 0, DC_CONV_DW_ROWS, 0});
        test_conv_case((conv_case){2, 2, 3, 4, 70, 3, DC_ACT_LEAKY_RELU, 0, 2, 0, 0, 0});
        test_conv_case((conv_case){2, 3, 2, 4, 5, 3, DC_ACT_TANH, 1, 0, 1, 0, 0});
    }
    /* the classic model's layers at batch 2 */
    test_conv_case((conv_case){2, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 0, 1, 0, 0});
    test_conv_case((conv_case){2, 32, 32, 14, 14, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
    test_conv_case((conv_case){2, 32, 32, 7, 7, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
    test_conv_case((conv_case){2, 32, 1, 28, 28, 3, DC_ACT_SIGMOID, 0, 0, 0, 0, 0});
    test_conv_case((conv_case){2, 32, 32, 14, 14, 3, DC_ACT_RELU, 0, 2, 0, 0, 0});
    test_conv_case((conv_case){2, 32, 32, 7, 7, 3, DC_ACT_RELU, 1, 0, 0, 0, 0});

    /* Lanes over output channels (the default above for 32->32 on CPUs; 16 lanes in the
     * forced-GPU cases below): odd sizes (row segments of 7 + 2 and 7 + 7 + 2 pixels, a
     * one-row image, a 5x5 kernel), each direction alone on AVX2's blocks of 8 (12->16: only
     * the forward, whose 16 outputs fill them; 16->12: only the input gradient), and the row
     * kernels on a shape that would take the channel lanes, and the channel lanes on wide rows. */
    if (all_shapes) {
        test_conv_case((conv_case){3, 8, 16, 5, 9, 3, DC_ACT_TANH, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){2, 16, 8, 1, 16, 5, DC_ACT_LEAKY_RELU, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){2, 12, 16, 6, 13, 3, DC_ACT_SIGMOID, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){2, 16, 12, 6, 13, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){2, 32, 32, 14, 14, 3, DC_ACT_RELU, 0, 0, 0, 0, DC_CONV_LANES_PIXELS});
        /* wide rows forced to channel lanes: segments between the first and last (7+7x8+3) */
        test_conv_case((conv_case){1, 8, 8, 3, 66, 3, DC_ACT_RELU, 0, 0, 0, 0, DC_CONV_LANES_CHANNELS});
        /* 64-pixel rows of two channel blocks, both ways */
        test_conv_case((conv_case){2, 16, 16, 3, 64, 3, DC_ACT_TANH, 0, 0, 0, 0, 0});
        /* images whose input outgrows a core's L2 (conv2d.c LCO_CACHE_BYTES): groups of 2 rows
         * over every channel block, an odd row count (91) leaving the last group half empty */
        test_conv_case((conv_case){2, 8, 16, 91, 100, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
    }

    /* inference convs that read an upsampling in place: channel lanes (the classic model's
     * 32->32 at 14x14, a 5x5 kernel, two channel blocks), unaligned row loads (the output layers,
     * 32->1 and 32->3: one row block, several with a narrow last one, 5x5, rows of 8 lanes).
     * The 3x3 ones run in their four phases, by channel lanes or by blocks of even rows. */
    test_upsampled_case(2, 32, 32, 14, 14, 3, DC_ACT_RELU);
    test_upsampled_case(3, 32, 1, 28, 28, 3, DC_ACT_SIGMOID);
    /* the classic cases above, all 9 taps here */
    int phases = dev->opts.conv_up_phases;
    dev->opts.conv_up_phases = 0;
    printf("  (all 9 taps:)\n");
    test_upsampled_case(2, 32, 32, 14, 14, 3, DC_ACT_RELU);
    test_upsampled_case(3, 32, 1, 28, 28, 3, DC_ACT_SIGMOID);
    dev->opts.conv_up_phases = phases;
    if (all_shapes) {
        test_upsampled_case(2, 5, 16, 6, 10, 5, DC_ACT_TANH);
        /* phases: segments of 8 + 8 + 4 and 8 + 2, two channel blocks, a 2x2 output */
        test_upsampled_case(2, 3, 16, 6, 20, 3, DC_ACT_TANH);
        test_upsampled_case(1, 4, 8, 4, 10, 3, DC_ACT_LEAKY_RELU);
        test_upsampled_case(3, 2, 8, 2, 2, 3, DC_ACT_SIGMOID);
        /* rows by phases: row blocks 32 + 32 + 6 wide; 4-row blocks, the last one half
         * outside the image (10 rows); 8-lane rows of 2 rows */
        test_upsampled_case(3, 16, 3, 8, 70, 3, DC_ACT_SIGMOID);
        test_upsampled_case(2, 4, 1, 10, 20, 3, DC_ACT_TANH);
        test_upsampled_case(2, 7, 2, 6, 36, 5, DC_ACT_NONE);
        test_upsampled_case(2, 6, 1, 4, 8, 3, DC_ACT_LEAKY_RELU);
        test_upsampled_case(1, 3, 1, 2, 6, 3, DC_ACT_SIGMOID);
    }

    /* inference convs that write the max pool of their output: the classic model's two (1->32
     * at 28x28: three full 8-pixel segments and a 4-pixel one; 32->32 at 14x14: 8 + 6), a 5x5
     * kernel over 3 channels, rows of exactly two segments, a 2x2 image, an image that
     * outgrows a core's L2 (one pooled row per group, every channel block), and 3 channels out
     * (no whole lane block: the pool stays) */
    test_maxpool_case(2, 1, 32, 28, 28, 3, DC_ACT_RELU);
    test_maxpool_case(2, 32, 32, 14, 14, 3, DC_ACT_RELU);
    if (all_shapes) {
        test_maxpool_case(2, 3, 16, 10, 36, 5, DC_ACT_TANH);
        test_maxpool_case(2, 2, 8, 6, 16, 3, DC_ACT_LEAKY_RELU);
        test_maxpool_case(3, 4, 8, 2, 2, 3, DC_ACT_SIGMOID);
        test_maxpool_case(1, 8, 16, 92, 100, 3, DC_ACT_RELU);
        test_maxpool_case(2, 4, 3, 8, 8, 3, DC_ACT_RELU);
    }

    /* the first layer with the max pool's backward folded in: the classic model's (with ties),
     * several row blocks, 8-lane rows, a 5x5 kernel, a 2x2 image, batch chunks, and a merge's
     * share of the gradient (unet); without a skip, also writing just the pool and its argmax
     * where the channel-lane forward runs (8 or more output channels) */
    if (all_shapes) { /* the quick run leaves them to test_model (the classic model's training
                        * folds and a first layer with a skip share, against the reference):
                        * llvmpipe took 514 s to generate the classic case's code */
        test_conv_pooled_case(2, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 1, 0);
        test_conv_pooled_case(2, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 0, 1);
        test_conv_pooled_case(3, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 0, 0);
        test_conv_pooled_case(3, 1, 8, 12, 40, 3, DC_ACT_SIGMOID, 0, 0, 1);
        test_conv_pooled_case(2, 2, 4, 8, 6, 3, DC_ACT_TANH, 0, 1, 0);
        test_conv_pooled_case(3, 1, 4, 6, 10, 5, DC_ACT_LEAKY_RELU, 0, 1, 1);
        test_conv_pooled_case(2, 1, 3, 2, 2, 3, DC_ACT_NONE, 0, 0, 0);
        test_conv_pooled_case(5, 1, 8, 14, 14, 3, DC_ACT_RELU, 3, 0, 1);
        test_conv_pooled_case(3, 1, 8, 12, 40, 3, DC_ACT_SIGMOID, 0, 0, 0);
        test_conv_pooled_case(3, 1, 16, 6, 10, 5, DC_ACT_LEAKY_RELU, 0, 1, 0);
        test_conv_pooled_case(5, 1, 8, 14, 14, 3, DC_ACT_TANH, 3, 1, 0);
    }
    test_conv_pooled_refusals();

    /* a conv after an upsampling writing the upsampling's input gradient: the classic model's
     * output layer (32->1 at 28x28) and the 32->32 conv at 14x14, several channel blocks, 8-
     * and 4-pixel segments, a 5x5 kernel */
    if (all_shapes) { /* the quick run leaves them to test_model, as the pooled-out cases */
        test_upgrad_case(3, 32, 1, 28, 28, 3, DC_ACT_SIGMOID);
        test_upgrad_case(3, 32, 32, 14, 14, 3, DC_ACT_RELU);
        test_upgrad_case(3, 16, 8, 6, 20, 3, DC_ACT_TANH);
        test_upgrad_case(3, 8, 3, 10, 12, 5, DC_ACT_LEAKY_RELU);
        test_upgrad_case(3, 8, 1, 8, 80, 3, DC_ACT_TANH); /* source rows of 2 blocks */
        test_upgrad_case(1, 8, 2, 2, 2, 3, DC_ACT_NONE);
    }

    /* keras's last transposed conv (14x14 -> 28x28) */
    test_conv_case((conv_case){2, 32, 32, 14, 14, 3, DC_ACT_RELU, 1, 0, 0, 0, 0});
    if (all_shapes) {
        /* Plans that depend on the device, forced here so that no branch is tested only where it
         * is the default: a GPU's 80 compute units (dW in batch chunks, GPU work split), and Mesa
         * llvmpipe's loop limit (rusticl: few images per dW work-item), both dW forms. */
        cl_uint cus = dev->compute_units;
        cl_device_type type = dev->type;
        dev->compute_units = 80;
        dev->type = CL_DEVICE_TYPE_GPU;
        test_conv_case((conv_case){3, 32, 32, 14, 14, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
        test_conv_case((conv_case){3, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 0, 1, 0, 0});
        dev->compute_units = cus;
        dev->type = type;
        unsigned long limit = dev->opts.loop_limit;
        dev->opts.loop_limit = 65535;
        test_conv_case((conv_case){4, 32, 32, 14, 14, 3, DC_ACT_RELU, 1, 0, 0, 0, 0});
        test_conv_case((conv_case){5, 32, 32, 14, 14, 3, DC_ACT_RELU, 0, 0, 0, 0, 0});
        dev->opts.loop_limit = 16000; /* 1 image per chunk */
        test_conv_case((conv_case){3, 1, 32, 28, 28, 3, DC_ACT_RELU, 0, 0, 1, 0, 0});
        dev->opts.loop_limit = limit;
    }

    test_pool_case(3, 5, 7, 9);
    test_pool_case(2, 3, 8, 5);
    test_pool_case(2, 32, 28, 28);
    test_pool_case(2, 32, 14, 14);
    test_pool_case(1, 2, 6, 35); /* a full vector of windows and a tail of one */
    test_pool_ties();
    test_avgpool_case(3, 5, 7, 9);
    test_avgpool_case(2, 3, 8, 5);
    test_avgpool_case(2, 32, 28, 28);
    test_avgpool_case(1, 2, 2, 35); /* a float8 body and a scalar tail in one row */
    test_upsample_case(3, 5, 7, 9);
    test_upsample_case(2, 32, 7, 7);
    test_upsample_case(2, 32, 14, 14);
    test_upsample_case(1, 2, 3, 17); /* a full vector and a tail of one */
    for (int a = 0; a < DC_ACT_COUNT; a++) {
        test_act_case((dc_act)a, 3, 5, 7, 9, 0);
        test_act_case((dc_act)a, 2, 3, 4, 5, 1);
    }
    test_merge_case(3, 3, 5, 7, 9);
    test_merge_case(2, 32, 32, 14, 14);
    test_errors();

    printf("worst error per op (metric in the header of tests/test_layers.c):\n");
    for (int i = 0; i < n_summary; i++)
        printf("  %-28s %.2e  (%d case%s)\n", summary[i].name, summary[i].worst, summary[i].cases,
               summary[i].cases == 1 ? "" : "s");
    dc_device_scratch_release(dev);
    dc_device_close(dev);
    TEST_MAIN_END();
}
