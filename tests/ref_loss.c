/* Double-precision references for losses and metrics (see ref_loss.h). */
#include "ref_loss.h"

#include <math.h>
#include <stdlib.h>

static double sigmoid_d(double z)
{
    return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
}

/* The head p = head(z) and p'(z), from the definitions in daecl/ops.h. */
static double head_d(dc_act head, double z, double *dp)
{
    switch (head) {
    case DC_ACT_SIGMOID: {
        /* p'(z) = e/(1+e)², e = exp(-|z|): p(1-p) without the cancellation of 1-p near 1. */
        double e = exp(-fabs(z));
        *dp = e / ((1.0 + e) * (1.0 + e));
        return sigmoid_d(z);
    }
    case DC_ACT_TANH: *dp = 1.0 - tanh(z) * tanh(z); return tanh(z);
    case DC_ACT_RELU: *dp = z > 0 ? 1.0 : 0.0; return z > 0 ? z : 0.0;
    case DC_ACT_LEAKY_RELU: *dp = z > 0 ? 1.0 : DC_LEAKY_SLOPE; return z > 0 ? z : DC_LEAKY_SLOPE * z;
    case DC_ACT_NONE: *dp = 1.0; return z;
    default: abort(); /* a new activation needs its definition here */
    }
}

double ref_loss_d(dc_loss_kind kind, dc_act head, const double *z, const double *y, size_t count,
                  size_t per_image, double *dz, double *out)
{
    double sum = 0.0;
    for (size_t i = 0; i < count; i++) {
        double zi = z[i], yi = y[i], dp;
        double p = head_d(head, zi, &dp);
        double l, g;
        switch (kind) {
        case DC_LOSS_BCE:
            l = fmax(zi, 0.0) - zi * yi + log1p(exp(-fabs(zi)));
            g = p - yi;
            break;
        case DC_LOSS_MSE:
            l = (p - yi) * (p - yi);
            g = 2.0 * (p - yi) * dp;
            break;
        default: /* L1 */
            l = fabs(p - yi);
            g = (p > yi ? 1.0 : p < yi ? -1.0 : 0.0) * dp;
            break;
        }
        sum += l;
        if (dz) dz[i] = g / (double)count;
        if (out) out[i] = p;
    }
    return sum / (double)per_image;
}

double ref_loss(dc_loss_kind kind, dc_act head, const float *z, const float *y, size_t count,
                size_t per_image, double *dz, double *out)
{
    double *zd = malloc(count * sizeof *zd), *yd = malloc(count * sizeof *yd);
    if (!zd || !yd) abort();
    for (size_t i = 0; i < count; i++) {
        zd[i] = z[i];
        yd[i] = y[i];
    }
    double r = ref_loss_d(kind, head, zd, yd, count, per_image, dz, out);
    free(zd);
    free(yd);
    return r;
}

int ref_ssim_window(int h, int w)
{
    int m = h < w ? h : w;
    if (m > 11) m = 11;
    return m % 2 ? m : m - 1;
}

double ref_ssim_plane(const double *x, const double *y, int h, int w)
{
    const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
    int win = ref_ssim_window(h, w);
    double g[11], gs = 0.0;
    for (int k = 0; k < win; k++) {
        double d = k - (win - 1) / 2.0;
        g[k] = exp(-d * d / (2.0 * 1.5 * 1.5));
        gs += g[k];
    }
    for (int k = 0; k < win; k++) g[k] /= gs;
    double total = 0.0;
    int oh = h - win + 1, ow = w - win + 1;
    for (int i = 0; i < oh; i++) {
        for (int j = 0; j < ow; j++) {
            double mx = 0, my = 0, exx = 0, eyy = 0, exy = 0;
            for (int u = 0; u < win; u++) {
                for (int v = 0; v < win; v++) {
                    double wt = g[u] * g[v];
                    double a = x[(i + u) * w + j + v], b = y[(i + u) * w + j + v];
                    mx += wt * a;
                    my += wt * b;
                    exx += wt * a * a;
                    eyy += wt * b * b;
                    exy += wt * a * b;
                }
            }
            double vx = exx - mx * mx, vy = eyy - my * my, cov = exy - mx * my;
            double lum = (2 * mx * my + c1) / (mx * mx + my * my + c1);
            double cs = (2 * cov + c2) / (vx + vy + c2);
            total += lum * cs;
        }
    }
    return total / ((double)oh * ow);
}

void ref_metrics(const float *pred, const float *target, int n, int c, int h, int w, double *psnr,
                 double *ssim, double *acc, double *acc_thresh)
{
    size_t plane = (size_t)h * w, per = (size_t)c * plane;
    double *x = malloc(plane * sizeof *x), *y = malloc(plane * sizeof *y);
    if (!x || !y) abort();
    for (int b = 0; b < n; b++) {
        const float *P = pred + b * per, *T = target + b * per;
        double sq = 0, ak = 0, at = 0, ss = 0;
        for (size_t i = 0; i < per; i++) {
            double p = P[i], t = T[i];
            double pc = p < 0 ? 0 : p > 1 ? 1 : p;
            sq += (pc - t) * (pc - t);
            ak += (t == (p > 0.5 ? 1.0 : 0.0));
            at += ((p > 0.5) == (t > 0.5));
        }
        for (int ch = 0; ch < c; ch++) {
            for (size_t i = 0; i < plane; i++) {
                double p = P[ch * plane + i];
                x[i] = p < 0 ? 0 : p > 1 ? 1 : p;
                y[i] = T[ch * plane + i];
            }
            ss += ref_ssim_plane(x, y, h, w);
        }
        double mse = sq / (double)per;
        if (mse < 1e-10) mse = 1e-10;
        if (psnr) psnr[b] = -10.0 * log10(mse);
        if (ssim) ssim[b] = ss / c;
        if (acc) acc[b] = ak / (double)per;
        if (acc_thresh) acc_thresh[b] = at / (double)per;
    }
    free(x);
    free(y);
}
