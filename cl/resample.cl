/* Resampling by 2: 2x2 pooling (src/nn/pool.c) and nearest-neighbour upsampling
 * (src/nn/upsample.c), one program so that a model's cold start builds one fewer (PoCL spends
 * 0.3-1.6 s on every program), and the partial vector loads and stores are written once.
 *
 * Max pooling 2x2, stride 2, "valid". NCHW, sizes as arguments (h, w of the
 * input; odd sizes drop the last row/column).
 * Window candidates in row-major order a b / c d; a later one wins only when strictly greater,
 * so the first maximum wins ties (forward value and backward routing use the same rule).
 * Eight windows at a time as float8 (even/odd lanes of two float16 row loads), and the rest of a
 * row (fewer than 8 windows) the same way from exact partial loads and stores: rows of 28 and 14
 * pixels, the classic model's, left 6 and 7 windows to a scalar loop that took most of the time
 * (maxpool backward 1.96 ms of a 51 ms step at batch 128). Branch-free, as the winner is
 * data-dependent (mispredicted branches made the backward 4x slower). The forward is one macro over the window reduction, POOL2_FWD, so
 * another 2x2 pool's forward is one line. */

/* static: a helper no kernel of the program calls is dropped, not kept as an exported function
 * in PoCL's program.bc, which every warm start parses (cl/conv2d.cl's unused row helpers made a
 * 28x28 layer's program 1.7 MB instead of 0.4 MB). */
#define INLINE static __attribute__((always_inline)) inline

/* Exact partial loads and stores of cnt floats: lanes past cnt are zero, and no byte past
 * p[cnt-1] is read or written (the last row of a tensor ends its buffer). */
INLINE float4 load4_part(const __global float *p, int cnt)
{
    float2 a = cnt >= 2 ? vload2(0, p) : (float2)(cnt >= 1 ? p[0] : 0.0f, 0.0f);
    float2 b = cnt >= 4 ? vload2(0, p + 2) : (float2)(cnt >= 3 ? p[2] : 0.0f, 0.0f);
    return (float4)(a, b);
}
INLINE float8 load8_part(const __global float *p, int cnt)
{
    return cnt >= 4 ? (float8)(vload4(0, p), load4_part(p + 4, cnt - 4))
                    : (float8)(load4_part(p, cnt), (float4)0.0f);
}
INLINE float16 load16_part(const __global float *p, int cnt)
{
    return cnt >= 8 ? (float16)(vload8(0, p), load8_part(p + 8, cnt - 8))
                    : (float16)(load8_part(p, cnt), (float8)0.0f);
}
INLINE void store8_part(__global float *p, float8 v, int cnt)
{
    float4 b = v.lo;
    if (cnt >= 4) {
        vstore4(b, 0, p);
        p += 4, cnt -= 4, b = v.hi;
    }
    float2 c = b.lo;
    if (cnt >= 2) {
        vstore2(c, 0, p);
        p += 2, cnt -= 2, c = b.hi;
    }
    if (cnt >= 1) p[0] = c.x;
}
INLINE void store16_part(__global float *p, float16 v, int cnt)
{
    if (cnt >= 8) {
        vstore8(v.lo, 0, p);
        store8_part(p + 8, v.hi, cnt - 8);
    } else {
        store8_part(p, v.lo, cnt);
    }
}

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
        if (ox < wo) {                                                                         \
            int cnt = wo - ox;                                                                 \
            float16 t = load16_part(r0 + 2 * ox, 2 * cnt), u = load16_part(r1 + 2 * ox, 2 * cnt); \
            store8_part(o + ox, REDUCE(float8, t.even, t.odd, u.even, u.odd), cnt);           \
        }                                                                                      \
    }

POOL2_FWD(maxpool2_fwd, MAX4)

/* Eight windows' dx: dy v goes to the winner of each window a b / c d (rows t, u of the input,
 * even lanes a c, odd lanes b d), zero to the others; o0, o1 are the two dx rows. */
INLINE void maxpool2_route(float16 t, float16 u, float8 v, float16 *o0, float16 *o1)
{
    const uint16 zip = (uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    float8 m = t.even, b = t.odd, c = u.even, d = u.odd, z = 0.0f;
    int8 wb = b > m;
    m = select(m, b, wb);
    int8 wc = c > m;
    m = select(m, c, wc);
    int8 wd = d > m;
    wc &= ~wd;
    wb &= ~(wc | wd);
    int8 wa = ~(wb | wc | wd);
    *o0 = shuffle2(select(z, v, wa), select(z, v, wb), zip);
    *o1 = shuffle2(select(z, v, wc), select(z, v, wd), zip);
}

/* Two dx rows (2q, 2q+1) per work-item, pairs = n*c*ceil(h/2): the winner of each window gets
 * dy, everything else (odd size's last row/column included) gets zero; with add, plus sk (the
 * share of dx from a skip path, dx's shape), in the same pass instead of an axpy after it. */
__kernel void maxpool2_bwd(const __global float *x, const uint x_off, const __global float *dy,
                           const uint dy_off, __global float *dx, const uint dx_off,
                           const __global float *sk, const uint sk_off, const int add,
                           const int pairs, const int h, const int w)
{
    int r = get_global_id(0);
    if (r >= pairs) return;
    int ho = h / 2, wo = w / 2, hp = (h + 1) / 2;
    int img = r / hp, q = r % hp;
    uint i0 = (uint)(img * h + 2 * q) * w;
    __global float *d0 = dx + dx_off + i0, *d1 = d0 + w;
    const __global float *s0 = sk + sk_off + i0, *s1 = s0 + w;
    if (q >= ho) { /* the last row of an odd height */
        for (int j = 0; j < w; j++) d0[j] = add ? s0[j] : 0.0f;
        return;
    }
    const __global float *r0 = x + x_off + i0, *r1 = r0 + w;
    const __global float *g = dy + dy_off + (uint)(img * ho + q) * wo;
    float16 o0, o1;
    int ox = 0;
    for (; ox + 8 <= wo; ox += 8) {
        maxpool2_route(vload16(0, r0 + 2 * ox), vload16(0, r1 + 2 * ox), vload8(0, g + ox), &o0,
                       &o1);
        if (add) {
            o0 += vload16(0, s0 + 2 * ox);
            o1 += vload16(0, s1 + 2 * ox);
        }
        vstore16(o0, 0, d0 + 2 * ox);
        vstore16(o1, 0, d1 + 2 * ox);
    }
    if (ox < wo) {
        int cnt = wo - ox;
        maxpool2_route(load16_part(r0 + 2 * ox, 2 * cnt), load16_part(r1 + 2 * ox, 2 * cnt),
                       load8_part(g + ox, cnt), &o0, &o1);
        if (add) {
            o0 += load16_part(s0 + 2 * ox, 2 * cnt);
            o1 += load16_part(s1 + 2 * ox, 2 * cnt);
        }
        store16_part(d0 + 2 * ox, o0, 2 * cnt);
        store16_part(d1 + 2 * ox, o1, 2 * cnt);
    }
    if (w & 1) {
        d0[w - 1] = add ? s0[w - 1] : 0.0f;
        d1[w - 1] = add ? s1[w - 1] : 0.0f;
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
    const uint16 dup = (uint16)(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    int ox = 0;
    for (; ox + 8 <= wo; ox += 8) {
        float16 v = shuffle(vload8(0, g + ox) * 0.25f, dup);
        vstore16(v, 0, d0 + 2 * ox);
        vstore16(v, 0, d1 + 2 * ox);
    }
    if (ox < wo) {
        int cnt = wo - ox;
        float16 v = shuffle(load8_part(g + ox, cnt) * 0.25f, dup);
        store16_part(d0 + 2 * ox, v, 2 * cnt);
        store16_part(d1 + 2 * ox, v, 2 * cnt);
    }
    if (w & 1) {
        d0[w - 1] = 0.0f;
        d1[w - 1] = 0.0f;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Nearest-neighbour upsampling x2. NCHW; w = the small side's width, an argument. Eight input
 * pixels at a time as float8, the rest of a row from partial loads and stores. */

/* One input row -> two output rows per work-item; rows = n*c*h. */
__kernel void upsample2_fwd(const __global float *x, const uint x_off, __global float *y,
                            const uint y_off, const int rows, const int w)
{
    int r = get_global_id(0);
    if (r >= rows) return;
    const __global float *s = x + x_off + (uint)r * w;
    __global float *o0 = y + y_off + (uint)r * (4 * w), *o1 = o0 + 2 * w;
    const uint16 dup = (uint16)(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    int j = 0;
    for (; j + 8 <= w; j += 8) {
        float16 v = shuffle(vload8(0, s + j), dup);
        vstore16(v, 0, o0 + 2 * j);
        vstore16(v, 0, o1 + 2 * j);
    }
    if (j < w) {
        int cnt = w - j;
        float16 v = shuffle(load8_part(s + j, cnt), dup);
        store16_part(o0 + 2 * j, v, 2 * cnt);
        store16_part(o1 + 2 * j, v, 2 * cnt);
    }
}

/* dx[i][j] = sum of the 2x2 block of dy; one dx row per work-item, rows = n*c*h. */
__kernel void upsample2_bwd(const __global float *dy, const uint dy_off, __global float *dx,
                            const uint dx_off, const int rows, const int w)
{
    int r = get_global_id(0);
    if (r >= rows) return;
    const __global float *g0 = dy + dy_off + (uint)r * (4 * w), *g1 = g0 + 2 * w;
    __global float *o = dx + dx_off + (uint)r * w;
    int j = 0;
    for (; j + 8 <= w; j += 8) {
        float16 s = vload16(0, g0 + 2 * j) + vload16(0, g1 + 2 * j);
        vstore8(s.even + s.odd, 0, o + j);
    }
    if (j < w) {
        int cnt = w - j;
        float16 s = load16_part(g0 + 2 * j, 2 * cnt) + load16_part(g1 + 2 * j, 2 * cnt);
        store8_part(o + j, s.even + s.odd, cnt);
    }
}
