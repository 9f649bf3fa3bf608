/* Merges for skip connections (src/nn/merge.c). */

/* y = a + b over n floats, 16 per work-item. */
__kernel void add_fwd(const __global float *a, const uint a_off, const __global float *b,
                      const uint b_off, __global float *y, const uint y_off, const uint n)
{
    uint i = get_global_id(0) * 16;
    if (i >= n) return;
    if (i + 16 <= n) {
        vstore16(vload16(0, a + a_off + i) + vload16(0, b + b_off + i), 0, y + y_off + i);
    } else {
        for (; i < n; i++) y[y_off + i] = a[a_off + i] + b[b_off + i];
    }
}

/* Copy channels between NCHW tensors of hw pixels per channel:
 * dst[img][dst_c0 + c][:] = src[img][src_c0 + c][:] for c < cnt. One (img, c) per work-item
 * (global: cnt, nimg). Used by concat forward (into the wide tensor) and backward (out of it). */
__kernel void chan_copy(const __global float *src, const uint src_off, const int src_c,
                        const int src_c0, __global float *dst, const uint dst_off,
                        const int dst_c, const int dst_c0, const int cnt, const int hw,
                        const int nimg)
{
    int c = get_global_id(0), img = get_global_id(1);
    if (c >= cnt || img >= nimg) return;
    const __global float *s = src + src_off + (uint)(img * src_c + src_c0 + c) * hw;
    __global float *d = dst + dst_off + (uint)(img * dst_c + dst_c0 + c) * hw;
    int p = 0;
    for (; p + 16 <= hw; p += 16) vstore16(vload16(0, s + p), 0, d + p);
    for (; p < hw; p++) d[p] = s[p];
}
