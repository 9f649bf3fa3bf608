/* Device accumulators and image metrics (definitions in src/daecl/metrics.h).
 *
 * No contraction into fma here: TwoSum is only error-free with separately rounded operations,
 * and SSIM of identical images comes out exactly 1 when 2·(μ·μ) and μ·μ + μ·μ round alike. */
#pragma OPENCL FP_CONTRACT OFF

/* acc[2s], acc[2s+1] = (hi, lo) of slot s. For each row r < nrows, adds scale·part[i] for the
 * npart partials of that row, in order: (hi, e) = TwoSum(hi, x); lo += e; then renormalises.
 * One work-item: a few hundred additions per batch. */
__kernel void accum_add(__global float *acc, const uint slot, const uint nrows,
                        __global const float *part, const uint po, const uint npart,
                        const float scale)
{
    if (get_global_id(0) != 0) return;
    for (uint r = 0; r < nrows; r++) {
        float hi = acc[2u * (slot + r)], lo = acc[2u * (slot + r) + 1u];
        const __global float *p = part + po + (size_t)r * npart;
        for (uint i = 0; i < npart; i++) {
            float x = p[i] * scale;
            float s = hi + x;
            float bv = s - hi;
            float e = (hi - (s - bv)) + (x - bv);
            hi = s;
            lo += e;
        }
        float s = hi + lo;
        lo = lo - (s - hi);
        hi = s;
        acc[2u * (slot + r)] = hi;
        acc[2u * (slot + r) + 1u] = lo;
    }
}

#define SSIM_MAXWIN 11
#define SSIM_C1 (0.01f * 0.01f)
#define SSIM_C2 (0.03f * 0.03f)

/* One work-item per (image b, channel ch, row yy) of an n×c×h×w pair.
 * Pixel statistics of row yy: Σ (clip(pred) - target)², Σ [target == (pred > 0.5)],
 * Σ [(pred > 0.5) == (target > 0.5)]. For yy < h-win+1 also Σ over the row's valid window
 * positions of SSIM, computed separably: a ring of the last `win` vertically filtered columns
 * (5 moments each), then a horizontal pass over the ring for each output position.
 * part layout: 4 rows of n·c·h floats: [sq, acc, acc_thresh, ssim][b][ch][yy]. */
__kernel void metrics_rows(__global const float *pb, const uint po, __global const float *tb,
                           const uint to, __global float *part, const uint qo, const uint n,
                           const uint c, const uint h, const uint w, const uint win)
{
    const uint gid = get_global_id(0);
    const uint rows = n * c * h;
    if (gid >= rows) return;
    const uint yy = gid % h;
    const uint plane = gid / h; /* b·c + ch */
    const __global float *P = pb + po + (size_t)plane * h * w;
    const __global float *T = tb + to + (size_t)plane * h * w;

    float sq = 0.0f, acck = 0.0f, acct = 0.0f;
    for (uint x = 0; x < w; x++) {
        float pr = P[yy * w + x], t = T[yy * w + x];
        float d = clamp(pr, 0.0f, 1.0f) - t;
        sq += d * d;
        float pbin = pr > 0.5f ? 1.0f : 0.0f;
        acck += (t == pbin) ? 1.0f : 0.0f;
        acct += ((pr > 0.5f) == (t > 0.5f)) ? 1.0f : 0.0f;
    }

    float ssim = 0.0f;
    if (yy + win <= h) {
        /* Normalised 1-D Gaussian, σ 1.5, centred. */
        float g[SSIM_MAXWIN];
        float gs = 0.0f;
        const float rad = 0.5f * (float)(win - 1u);
        for (uint k = 0; k < win; k++) {
            float d = (float)k - rad;
            g[k] = exp(-d * d / (2.0f * 1.5f * 1.5f));
            gs += g[k];
        }
        for (uint k = 0; k < win; k++) g[k] /= gs;

        float rx[SSIM_MAXWIN], ry[SSIM_MAXWIN], rxx[SSIM_MAXWIN], ryy[SSIM_MAXWIN], rxy[SSIM_MAXWIN];
        uint slot = 0; /* ring position of column x */
        for (uint x = 0; x < w; x++) {
            float vx = 0.0f, vy = 0.0f, vxx = 0.0f, vyy = 0.0f, vxy = 0.0f;
            for (uint k = 0; k < win; k++) {
                float a = clamp(P[(yy + k) * w + x], 0.0f, 1.0f), t = T[(yy + k) * w + x];
                float gk = g[k];
                vx += gk * a;
                vy += gk * t;
                vxx += gk * (a * a);
                vyy += gk * (t * t);
                vxy += gk * (a * t);
            }
            rx[slot] = vx; ry[slot] = vy; rxx[slot] = vxx; ryy[slot] = vyy; rxy[slot] = vxy;
            slot = slot + 1u == win ? 0u : slot + 1u;
            if (x + 1u >= win) {
                /* Columns x-win+1 .. x sit at ring positions slot, slot+1, ... (mod win). */
                float mx = 0.0f, my = 0.0f, sxx = 0.0f, syy = 0.0f, sxy = 0.0f;
                uint j = slot;
                for (uint k = 0; k < win; k++) {
                    float gk = g[k];
                    mx += gk * rx[j];
                    my += gk * ry[j];
                    sxx += gk * rxx[j];
                    syy += gk * ryy[j];
                    sxy += gk * rxy[j];
                    j = j + 1u == win ? 0u : j + 1u;
                }
                /* tf.image.ssim's arrangement. */
                float num0 = 2.0f * (mx * my);
                float den0 = mx * mx + my * my;
                float lum = (num0 + SSIM_C1) / (den0 + SSIM_C1);
                float num1 = 2.0f * sxy;
                float den1 = sxx + syy;
                float cs = (num1 - num0 + SSIM_C2) / (den1 - den0 + SSIM_C2);
                ssim += lum * cs;
            }
        }
    }
    part[qo + gid] = sq;
    part[qo + rows + gid] = acck;
    part[qo + 2u * rows + gid] = acct;
    part[qo + 3u * rows + gid] = ssim;
}

/* Kahan sum of n floats at p with stride 1. */
static float kahan_sum(const __global float *p, uint n)
{
    float s = 0.0f, comp = 0.0f;
    for (uint i = 0; i < n; i++) {
        float y = p[i] - comp;
        float t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    return s;
}

/* One work-item per image: reduce its c·h row partials into the per-image metrics, written as
 * 5 rows of n floats in slot order (PSNR, SSIM, ACC, COUNT, ACC_THRESH) at img[io ...]. */
__kernel void metrics_image(__global const float *part, const uint qo, __global float *img,
                            const uint io, const uint n, const uint c, const uint h, const uint w,
                            const uint win)
{
    const uint b = get_global_id(0);
    if (b >= n) return;
    const uint rows = n * c * h;
    const uint per = c * h;
    const __global float *q = part + qo + (size_t)b * per;
    float sq = kahan_sum(q, per);
    float acck = kahan_sum(q + rows, per);
    float acct = kahan_sum(q + 2u * rows, per);
    float ss = kahan_sum(q + 3u * rows, per);
    const float vals = (float)c * (float)h * (float)w;
    const float wins = (float)c * (float)(h - win + 1u) * (float)(w - win + 1u);
    float mse = fmax(sq / vals, 1e-10f);
    img[io + b] = -10.0f * log10(mse);
    img[io + n + b] = ss / wins;
    img[io + 2u * n + b] = acck / vals;
    img[io + 3u * n + b] = 1.0f;
    img[io + 4u * n + b] = acct / vals;
}
