/* Double-precision reference of the layer ops: see ref_layers.h. Loops are written in the most
 * literal form of each definition; speed does not matter here. */
#include "ref_layers.h"

#include <math.h>
#include <string.h>

double ref_act(dc_act a, double z)
{
    switch (a) {
    case DC_ACT_RELU: return z > 0 ? z : 0;
    case DC_ACT_SIGMOID: return 1 / (1 + exp(-z));
    case DC_ACT_LEAKY_RELU: return z > 0 ? z : (double)DC_LEAKY_SLOPE * z;
    case DC_ACT_TANH: return tanh(z);
    default: return z;
    }
}

double ref_act_grad_from_y(dc_act a, double y)
{
    switch (a) {
    case DC_ACT_RELU: return y > 0 ? 1 : 0;
    case DC_ACT_SIGMOID: return y * (1 - y);
    case DC_ACT_LEAKY_RELU: return y > 0 ? 1 : (double)DC_LEAKY_SLOPE;
    case DC_ACT_TANH: return 1 - y * y;
    default: return 1;
    }
}

static void zero(double *p, size_t count)
{
    if (p) memset(p, 0, count * sizeof *p);
}

/* Bias, activation and magnitude of the bias term, applied to pre-activations already in y. */
static void bias_act(double *y, double *mag, int n, int c, size_t hw, const double *b,
                     dc_act act)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) {
                size_t o = ((size_t)i * c + ch) * hw + p;
                y[o] = ref_act(act, y[o] + b[ch]);
                if (mag) mag[o] += fabs(b[ch]);
            }
}

/* dy *= act'(y); then db and its magnitude. */
static void grad_pre_act(const double *y, double *dy, int n, int c, size_t hw, dc_act act,
                         double *db, double *mag_db)
{
    zero(db, (size_t)c);
    zero(mag_db, (size_t)c);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) {
                size_t o = ((size_t)i * c + ch) * hw + p;
                dy[o] *= ref_act_grad_from_y(act, y[o]);
                if (db) db[ch] += dy[o];
                if (mag_db) mag_db[ch] += fabs(dy[o]);
            }
}

#define IDX4(a, b, c, d, B, C, D) ((((size_t)(a) * (B) + (b)) * (C) + (c)) * (D) + (d))

void ref_conv2d_forward(const double *x, int n, int cin, int h, int w, const double *wt,
                        const double *b, int cout, int k, dc_act act, double *y, double *mag)
{
    int p = (k - 1) / 2;
    size_t ny = (size_t)n * cout * h * w;
    zero(y, ny);
    zero(mag, ny);
    for (int i = 0; i < n; i++)
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < h; oy++)
                for (int ox = 0; ox < w; ox++) {
                    double s = 0, m = 0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy + ky - p, ix = ox + kx - p;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                double t = x[IDX4(i, ci, iy, ix, cin, h, w)] *
                                           wt[IDX4(co, ci, ky, kx, cin, k, k)];
                                s += t;
                                m += fabs(t);
                            }
                    size_t o = IDX4(i, co, oy, ox, cout, h, w);
                    y[o] = s;
                    if (mag) mag[o] = m;
                }
    bias_act(y, mag, n, cout, (size_t)h * w, b, act);
}

void ref_conv2d_backward(const double *x, int n, int cin, int h, int w, const double *wt,
                         int cout, int k, dc_act act, const double *y, double *dy, double *dw,
                         double *db, double *dx, double *mag_dw, double *mag_db,
                         double *mag_dx)
{
    int p = (k - 1) / 2;
    size_t nw = (size_t)cout * cin * k * k, nx = (size_t)n * cin * h * w;
    grad_pre_act(y, dy, n, cout, (size_t)h * w, act, db, mag_db);
    zero(dw, nw);
    zero(mag_dw, nw);
    zero(dx, nx);
    zero(mag_dx, nx);
    /* Every product of the forward sum, x[iy][ix] * W[ky][kx] -> z[oy][ox], sends dz back. */
    for (int i = 0; i < n; i++)
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < h; oy++)
                for (int ox = 0; ox < w; ox++) {
                    double g = dy[IDX4(i, co, oy, ox, cout, h, w)];
                    for (int ci = 0; ci < cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy + ky - p, ix = ox + kx - p;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                size_t xi = IDX4(i, ci, iy, ix, cin, h, w);
                                size_t wi = IDX4(co, ci, ky, kx, cin, k, k);
                                if (dw) dw[wi] += g * x[xi];
                                if (mag_dw) mag_dw[wi] += fabs(g * x[xi]);
                                if (dx) dx[xi] += g * wt[wi];
                                if (mag_dx) mag_dx[xi] += fabs(g * wt[wi]);
                            }
                }
}

static int convT_pad(int k) { return (k > 2 ? k - 2 : 0) / 2; }

void ref_convT2d_forward(const double *x, int n, int cin, int h, int w, const double *wt,
                         const double *b, int cout, int k, dc_act act, double *y, double *mag)
{
    int pt = convT_pad(k), H = 2 * h, W = 2 * w;
    size_t ny = (size_t)n * cout * H * W;
    zero(y, ny);
    zero(mag, ny);
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < cin; ci++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < w; ix++) {
                    double v = x[IDX4(i, ci, iy, ix, cin, h, w)];
                    for (int co = 0; co < cout; co++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int oy = 2 * iy + ky - pt, ox = 2 * ix + kx - pt;
                                if (oy < 0 || oy >= H || ox < 0 || ox >= W) continue;
                                double t = v * wt[IDX4(co, ci, ky, kx, cin, k, k)];
                                size_t o = IDX4(i, co, oy, ox, cout, H, W);
                                y[o] += t;
                                if (mag) mag[o] += fabs(t);
                            }
                }
    bias_act(y, mag, n, cout, (size_t)H * W, b, act);
}

void ref_convT2d_backward(const double *x, int n, int cin, int h, int w, const double *wt,
                          int cout, int k, dc_act act, const double *y, double *dy, double *dw,
                          double *db, double *dx, double *mag_dw, double *mag_db,
                          double *mag_dx)
{
    int pt = convT_pad(k), H = 2 * h, W = 2 * w;
    size_t nw = (size_t)cout * cin * k * k, nx = (size_t)n * cin * h * w;
    grad_pre_act(y, dy, n, cout, (size_t)H * W, act, db, mag_db);
    zero(dw, nw);
    zero(mag_dw, nw);
    zero(dx, nx);
    zero(mag_dx, nx);
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < cin; ci++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < w; ix++) {
                    size_t xi = IDX4(i, ci, iy, ix, cin, h, w);
                    for (int co = 0; co < cout; co++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int oy = 2 * iy + ky - pt, ox = 2 * ix + kx - pt;
                                if (oy < 0 || oy >= H || ox < 0 || ox >= W) continue;
                                double g = dy[IDX4(i, co, oy, ox, cout, H, W)];
                                size_t wi = IDX4(co, ci, ky, kx, cin, k, k);
                                if (dw) dw[wi] += g * x[xi];
                                if (mag_dw) mag_dw[wi] += fabs(g * x[xi]);
                                if (dx) dx[xi] += g * wt[wi];
                                if (mag_dx) mag_dx[xi] += fabs(g * wt[wi]);
                            }
                }
}

/* Index (0..3, row-major in the window) of the winner: a later candidate replaces the current
 * best only when strictly greater, so the first maximum wins ties. */
static int pool_winner(const double *x, int w, int oy, int ox)
{
    const double *r0 = x + (size_t)(2 * oy) * w + 2 * ox, *r1 = r0 + w;
    double c[4] = {r0[0], r0[1], r1[0], r1[1]};
    int best = 0;
    for (int j = 1; j < 4; j++)
        if (c[j] > c[best]) best = j;
    return best;
}

void ref_maxpool2_forward(const double *x, int n, int c, int h, int w, double *y)
{
    int ho = h / 2, wo = w / 2;
    for (size_t img = 0; img < (size_t)n * c; img++) {
        const double *xi = x + img * h * w;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                int j = pool_winner(xi, w, oy, ox);
                y[(img * ho + oy) * wo + ox] = xi[(size_t)(2 * oy + j / 2) * w + 2 * ox + j % 2];
            }
    }
}

void ref_maxpool2_backward(const double *x, int n, int c, int h, int w, const double *dy,
                           double *dx)
{
    int ho = h / 2, wo = w / 2;
    zero(dx, (size_t)n * c * h * w);
    for (size_t img = 0; img < (size_t)n * c; img++) {
        const double *xi = x + img * h * w;
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                int j = pool_winner(xi, w, oy, ox);
                dx[img * h * w + (size_t)(2 * oy + j / 2) * w + 2 * ox + j % 2] =
                    dy[(img * ho + oy) * wo + ox];
            }
    }
}

void ref_avgpool2_forward(const double *x, int n, int c, int h, int w, double *y)
{
    int ho = h / 2, wo = w / 2;
    for (size_t img = 0; img < (size_t)n * c; img++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                double sum = 0;
                for (int j = 0; j < 4; j++) sum += x[(img * h + 2 * oy + j / 2) * w + 2 * ox + j % 2];
                y[(img * ho + oy) * wo + ox] = sum / 4;
            }
}

void ref_avgpool2_backward(const double *dy, int n, int c, int h, int w, double *dx)
{
    int ho = h / 2, wo = w / 2;
    zero(dx, (size_t)n * c * h * w);
    for (size_t img = 0; img < (size_t)n * c; img++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                for (int j = 0; j < 4; j++)
                    dx[(img * h + 2 * oy + j / 2) * w + 2 * ox + j % 2] = dy[(img * ho + oy) * wo + ox] / 4;
}

void ref_upsample2_forward(const double *x, int n, int c, int h, int w, double *y)
{
    for (size_t img = 0; img < (size_t)n * c; img++)
        for (int oy = 0; oy < 2 * h; oy++)
            for (int ox = 0; ox < 2 * w; ox++)
                y[(img * 2 * h + oy) * 2 * w + ox] = x[(img * h + oy / 2) * w + ox / 2];
}

void ref_upsample2_backward(const double *dy, int n, int c, int h, int w, double *dx,
                            double *mag)
{
    zero(dx, (size_t)n * c * h * w);
    zero(mag, (size_t)n * c * h * w);
    for (size_t img = 0; img < (size_t)n * c; img++)
        for (int oy = 0; oy < 2 * h; oy++)
            for (int ox = 0; ox < 2 * w; ox++) {
                double g = dy[(img * 2 * h + oy) * 2 * w + ox];
                size_t o = (img * h + oy / 2) * w + ox / 2;
                dx[o] += g;
                if (mag) mag[o] += fabs(g);
            }
}

void ref_act_forward(dc_act act, const double *x, size_t count, double *y)
{
    for (size_t i = 0; i < count; i++) y[i] = ref_act(act, x[i]);
}

void ref_act_backward(dc_act act, const double *y, size_t count, double *dy)
{
    for (size_t i = 0; i < count; i++) dy[i] *= ref_act_grad_from_y(act, y[i]);
}

void ref_add_forward(const double *a, const double *b, size_t count, double *y)
{
    for (size_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

void ref_concat_forward(const double *a, const double *b, int n, int ca, int cb, int hw,
                        double *y)
{
    size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    for (int i = 0; i < n; i++) {
        memcpy(y + i * (sa + sb), a + i * sa, sa * sizeof *y);
        memcpy(y + i * (sa + sb) + sa, b + i * sb, sb * sizeof *y);
    }
}

void ref_concat_backward(const double *dy, int n, int ca, int cb, int hw, double *da,
                         double *db)
{
    size_t sa = (size_t)ca * hw, sb = (size_t)cb * hw;
    for (int i = 0; i < n; i++) {
        memcpy(da + i * sa, dy + i * (sa + sb), sa * sizeof *da);
        memcpy(db + i * sb, dy + i * (sa + sb) + sa, sb * sizeof *db);
    }
}

double ref_rel_err(const float *got, const double *want, const double *mag, size_t count,
                   double floor_abs)
{
    double worst = 0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]);
        double s = fabs(want[i]);
        if (mag && mag[i] > s) s = mag[i];
        if (s < floor_abs) s = floor_abs;
        if (s < 1e-300) s = 1e-300;
        double e = d / s;
        if (e != e || !isfinite(got[i])) return INFINITY; /* NaN or Inf in the result */
        if (e > worst) worst = e;
    }
    return worst;
}
