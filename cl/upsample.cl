/* Nearest-neighbour upsampling x2 (src/nn/upsample.c). NCHW; w = the small side's width,
 * an argument. Eight input pixels at a time as float8, then the rest one by one. */

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
    for (; j < w; j++) {
        float2 v = (float2)(s[j]);
        vstore2(v, j, o0);
        vstore2(v, j, o1);
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
    for (; j < w; j++) {
        float2 a = vload2(j, g0), b = vload2(j, g1);
        o[j] = (a.x + b.x) + (a.y + b.y);
    }
}
