/* Max pooling 2x2, stride 2, "valid" (src/nn/pool.c). NCHW, sizes as arguments (h, w of the
 * input; odd sizes drop the last row/column).
 * Window candidates in row-major order a b / c d; a later one wins only when strictly greater,
 * so the first maximum wins ties (forward value and backward routing use the same rule).
 * Eight windows at a time as float8 (even/odd lanes of two float16 row loads), then the rest
 * one by one; branch-free, as the winner is data-dependent (mispredicted branches made the
 * backward 4x slower). The forward is one macro over the window reduction, POOL2_FWD, so
 * another 2x2 pool's forward is one line. */

/* Window reductions over the candidates a b / c d, for float8 and float alike. Max: a later
 * candidate wins only when strictly greater (select keeps m when the comparison is false). */
#define MAX4(T, a, b, c, d) max_later(max_later(max_later(a, b), c), d)
#define max_later(m, b) select(m, b, (b) > (m))
#define AVG4(T, a, b, c, d) ((((a) + (b)) + ((c) + (d))) * (T)0.25f)

/* One output row per work-item: rows = n*c*(h/2). */
#define POOL2_FWD(NAME, REDUCE)                                                                \
    __kernel void NAME(const __global float *x, const uint x_off, __global float *y,          \
                       const uint y_off, const int rows, const int h, const int w)             \
    {                                                                                          \
        int r = get_global_id(0);                                                              \
        if (r >= rows) return;                                                                 \
        int ho = h / 2, wo = w / 2;                                                            \
        int img = r / ho, oy = r % ho;                                                         \
        const __global float *r0 = x + x_off + (uint)(img * h + 2 * oy) * w, *r1 = r0 + w;      \
        __global float *o = y + y_off + (uint)r * wo;                                          \
        int ox = 0;                                                                            \
        for (; ox + 8 <= wo; ox += 8) {                                                        \
            float16 t = vload16(0, r0 + 2 * ox), u = vload16(0, r1 + 2 * ox);                  \
            vstore8(REDUCE(float8, t.even, t.odd, u.even, u.odd), 0, o + ox);                  \
        }                                                                                      \
        for (; ox < wo; ox++) {                                                                \
            float2 t = vload2(ox, r0), u = vload2(ox, r1);                                     \
            o[ox] = REDUCE(float, t.x, t.y, u.x, u.y);                                         \
        }                                                                                      \
    }

POOL2_FWD(maxpool2_fwd, MAX4)

/* Two dx rows (2q, 2q+1) per work-item, pairs = n*c*ceil(h/2): the winner of each window gets
 * dy, everything else (odd size's last row/column included) gets zero. */
__kernel void maxpool2_bwd(const __global float *x, const uint x_off, const __global float *dy,
                           const uint dy_off, __global float *dx, const uint dx_off,
                           const int pairs, const int h, const int w)
{
    int r = get_global_id(0);
    if (r >= pairs) return;
    int ho = h / 2, wo = w / 2, hp = (h + 1) / 2;
    int img = r / hp, q = r % hp;
    uint i0 = (uint)(img * h + 2 * q) * w;
    __global float *d0 = dx + dx_off + i0, *d1 = d0 + w;
    if (q >= ho) { /* the last row of an odd height */
        for (int j = 0; j < w; j++) d0[j] = 0.0f;
        return;
    }
    const __global float *r0 = x + x_off + i0, *r1 = r0 + w;
    const __global float *g = dy + dy_off + (uint)(img * ho + q) * wo;
    const uint16 zip = (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    int ox = 0;
    for (; ox + 8 <= wo; ox += 8) {
        float16 t = vload16(0, r0 + 2 * ox), u = vload16(0, r1 + 2 * ox);
        float8 m = t.even, b = t.odd, c = u.even, d = u.odd;
        int8 wb = b > m;
        m = select(m, b, wb);
        int8 wc = c > m;
        m = select(m, c, wc);
        int8 wd = d > m;
        wc &= ~wd;
        wb &= ~(wc | wd);
        int8 wa = ~(wb | wc | wd);
        float8 v = vload8(0, g + ox), z = 0.0f;
        vstore16(shuffle2(select(z, v, wa), select(z, v, wb), zip), 0, d0 + 2 * ox);
        vstore16(shuffle2(select(z, v, wc), select(z, v, wd), zip), 0, d1 + 2 * ox);
    }
    for (; ox < wo; ox++) {
        float2 t = vload2(ox, r0), u = vload2(ox, r1);
        float m = t.x;
        int wb = t.y > m;
        m = wb ? t.y : m;
        int wc = u.x > m;
        m = wc ? u.x : m;
        int wd = u.y > m;
        wc &= !wd;
        wb &= !(wc | wd);
        int wa = !(wb | wc | wd);
        float v = g[ox];
        vstore2((float2)(wa ? v : 0.0f, wb ? v : 0.0f), ox, d0);
        vstore2((float2)(wc ? v : 0.0f, wd ? v : 0.0f), ox, d1);
    }
    if (w & 1) {
        d0[w - 1] = 0.0f;
        d1[w - 1] = 0.0f;
    }
}

/* Average pooling 2x2, stride 2, "valid" (src/nn/pool.c): the mean of each window, same layout
 * and work split as max pooling. */
POOL2_FWD(avgpool2_fwd, AVG4)

/* Two dx rows (2q, 2q+1) per work-item, pairs = n*c*ceil(h/2): dy/4 on every pixel of the
 * window, zero on an odd size's last row/column. */
__kernel void avgpool2_bwd(const __global float *dy, const uint dy_off, __global float *dx,
                           const uint dx_off, const int pairs, const int h, const int w)
{
    int r = get_global_id(0);
    if (r >= pairs) return;
    int ho = h / 2, wo = w / 2, hp = (h + 1) / 2;
    int img = r / hp, q = r % hp;
    __global float *d0 = dx + dx_off + (uint)(img * h + 2 * q) * w, *d1 = d0 + w;
    if (q >= ho) { /* the last row of an odd height */
        for (int j = 0; j < w; j++) d0[j] = 0.0f;
        return;
    }
    const __global float *g = dy + dy_off + (uint)(img * ho + q) * wo;
    for (int ox = 0; ox < wo; ox++) {
        float v = g[ox] * 0.25f;
        vstore2((float2)(v, v), ox, d0);
        vstore2((float2)(v, v), ox, d1);
    }
    if (w & 1) {
        d0[w - 1] = 0.0f;
        d1[w - 1] = 0.0f;
    }
}
