/* uint8 → float conversion and input noise in one pass, from a counter-based RNG.
 *
 * Philox4x32-10 (Random123's philox4x32_R(10, ctr, key)) keyed by
 *   key = {seed lo, seed hi}, counter = {pixel / 4, sample index, epoch, stream}
 * so a sample's noise does not depend on the batch it is in. The layout, the noise models and
 * their exact formulas are documented in src/daecl/noise.h; src/stream/noise.c holds the
 * same code for the host and must stay in step with this file (tests/test_noise.c compares
 * them). No contraction into fma: the host must be able to reproduce every rounding. */
#pragma OPENCL FP_CONTRACT OFF

#define NOISE_NONE 0
#define NOISE_GAUSSIAN 1
#define NOISE_SALTPEPPER 2
#define NOISE_SPECKLE 3
#define NOISE_POISSON 4
#define NOISE_MASK 5

#define STREAM_UNIFORM 0u
#define STREAM_NORMAL 1u
#define STREAM_LEVEL 2u
#define POISSON_NORMAL_FROM 30.0f

/* Eight Philox4x32-10 instances side by side (lane i: counter (c0[i], c1[i], c2[i], c3[i]),
 * one key): each work-item is an explicit SIMD program, PoCL does not vectorise across
 * work-items. Output word j of instance i in o_j[i]. */
static void philox8(uint8 c0, uint8 c1, uint8 c2, uint8 c3, uint2 k, uint8 *o0, uint8 *o1, uint8 *o2,
             uint8 *o3)
{
    uint k0 = k.x, k1 = k.y;
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint8 hi0 = mul_hi((uint8)(0xD2511F53u), c0), lo0 = (uint8)(0xD2511F53u) * c0;
        uint8 hi1 = mul_hi((uint8)(0xCD9E8D57u), c2), lo1 = (uint8)(0xCD9E8D57u) * c2;
        c0 = hi1 ^ c1 ^ (uint8)(k0);
        c1 = lo1;
        c2 = hi0 ^ c3 ^ (uint8)(k1);
        c3 = lo0;
    }
    *o0 = c0;
    *o1 = c1;
    *o2 = c2;
    *o3 = c3;
}

/* Uniform in (0, 1]: never 0, so log() stays finite. Exact in float. */
static float8 u01_open0(uint8 w)
{
    return convert_float8((w >> 8) + 1u) * 0x1p-24f;
}

/* Uniform in [0, 1) for the probability tests (u < p: p = 0 never, p = 1 always). */
static float8 u01_closed0(uint8 w)
{
    return convert_float8(w >> 8) * 0x1p-24f;
}

/* p / 255 correctly rounded (a product with the rounded reciprocal plus one Markstein
 * correction step; plain division is not correctly rounded on every device). p = 0 gives +0
 * explicitly: Mesa llvmpipe (rusticl) returns -0 for fma(-0, 255, +0), where IEEE says +0. */
static float8 u8_to_float8(uchar8 p)
{
    const float r = 0x1.010102p-8f; /* 1/255 rounded */
    float8 a = convert_float8(p);
    float8 q = a * r;
    float8 e = fma(-q, (float8)(255.0f), a);
    return select(fma(e, (float8)(r), q), (float8)(0.0f), a == (float8)(0.0f));
}

/* Poisson(x * peak) / peak per lane, clipped to 1: the same operations as the scalar host code
 * (src/stream/noise.c poisson1) lane by lane; finished lanes are frozen with select(). */
static float8 poisson8(float8 x, float peak, float inv_peak, float8 u, float8 z)
{
    float8 lam = x * peak;
    int8 small = lam < POISSON_NORMAL_FROM;
    float8 p = exp(-lam), f = p;
    int8 kk = (int8)(0), kmax = convert_int8_rtz(3.0f * lam) + 20;
    int8 act = small & (u > f) & (kk < kmax);
    while (any(act)) {
        kk -= act; /* act is -1 where true */
        float8 pn = p * (lam / convert_float8(kk));
        p = select(p, pn, act);
        f = select(f, f + p, act);
        act = act & (u > f) & (kk < kmax);
    }
    float8 kn = fmax(floor(lam + sqrt(lam) * z + 0.5f), 0.0f);
    float8 k = select(kn, convert_float8(kk), small);
    return fmin(k * inv_peak, 1.0f);
}

/* Noise for 8 consecutive Philox blocks (32 pixels) of one sample: x_j / y_j lane i is pixel
 * 4 * (blk0 + i) + j. */
static void noise32(int kind, float param, float inv_param, uint2 key, uint blk0, uint sample,
             uint epoch, float8 x0, float8 x1, float8 x2, float8 x3, float8 *y0, float8 *y1,
             float8 *y2, float8 *y3)
{
    const uint8 blk = (uint8)(blk0) + (uint8)(0, 1, 2, 3, 4, 5, 6, 7);
    const uint8 smp = (uint8)(sample), ep = (uint8)(epoch);
    uint8 w0, w1, w2, w3;
    float8 z0, z1, z2, z3;
    if (kind == NOISE_GAUSSIAN || kind == NOISE_SPECKLE || kind == NOISE_POISSON) {
        philox8(blk, smp, ep, (uint8)(STREAM_NORMAL), key, &w0, &w1, &w2, &w3);
        /* Box–Muller on the word pairs (0, 1) and (2, 3). The angle is 2*pi*u, taken as
         * sinpi/cospi of 2u (exact): sin/cos carry a reduction for huge arguments that Mesa's
         * compiler inlines for every lane, 85 s per kernel on llvmpipe against 5 s. */
        float8 ra = sqrt(-2.0f * log(u01_open0(w0))), ta = 2.0f * u01_open0(w1);
        float8 rb = sqrt(-2.0f * log(u01_open0(w2))), tb = 2.0f * u01_open0(w3);
        z0 = ra * cospi(ta);
        z1 = ra * sinpi(ta);
        z2 = rb * cospi(tb);
        z3 = rb * sinpi(tb);
    }
    if (kind == NOISE_SALTPEPPER || kind == NOISE_MASK || kind == NOISE_POISSON)
        philox8(blk, smp, ep, (uint8)(STREAM_UNIFORM), key, &w0, &w1, &w2, &w3);

    switch (kind) {
    case NOISE_GAUSSIAN:
        *y0 = clamp(x0 + param * z0, 0.0f, 1.0f);
        *y1 = clamp(x1 + param * z1, 0.0f, 1.0f);
        *y2 = clamp(x2 + param * z2, 0.0f, 1.0f);
        *y3 = clamp(x3 + param * z3, 0.0f, 1.0f);
        return;
    case NOISE_SPECKLE:
        *y0 = clamp(x0 + (x0 * param) * z0, 0.0f, 1.0f);
        *y1 = clamp(x1 + (x1 * param) * z1, 0.0f, 1.0f);
        *y2 = clamp(x2 + (x2 * param) * z2, 0.0f, 1.0f);
        *y3 = clamp(x3 + (x3 * param) * z3, 0.0f, 1.0f);
        return;
    case NOISE_SALTPEPPER: /* selected: bit 0 of the word picks 1 or 0 */
        *y0 = select(x0, convert_float8(w0 & 1u), u01_closed0(w0) < param);
        *y1 = select(x1, convert_float8(w1 & 1u), u01_closed0(w1) < param);
        *y2 = select(x2, convert_float8(w2 & 1u), u01_closed0(w2) < param);
        *y3 = select(x3, convert_float8(w3 & 1u), u01_closed0(w3) < param);
        return;
    case NOISE_MASK:
        *y0 = select(x0, (float8)(0.0f), u01_closed0(w0) < param);
        *y1 = select(x1, (float8)(0.0f), u01_closed0(w1) < param);
        *y2 = select(x2, (float8)(0.0f), u01_closed0(w2) < param);
        *y3 = select(x3, (float8)(0.0f), u01_closed0(w3) < param);
        return;
    case NOISE_POISSON:
        *y0 = poisson8(x0, param, inv_param, u01_open0(w0), z0);
        *y1 = poisson8(x1, param, inv_param, u01_open0(w1), z1);
        *y2 = poisson8(x2, param, inv_param, u01_open0(w2), z2);
        *y3 = poisson8(x3, param, inv_param, u01_open0(w3), z3);
        return;
    default:
        *y0 = x0;
        *y1 = x1;
        *y2 = x2;
        *y3 = x3;
        return;
    }
}

/* 4 float8 with lane i = pixel 4i + j  →  32 floats in pixel order. */
#define INTERLEAVE(o, v0, v1, v2, v3)                                                       \
    do {                                                                                    \
        o[0] = v0.s0; o[1] = v1.s0; o[2] = v2.s0; o[3] = v3.s0;                             \
        o[4] = v0.s1; o[5] = v1.s1; o[6] = v2.s1; o[7] = v3.s1;                             \
        o[8] = v0.s2; o[9] = v1.s2; o[10] = v2.s2; o[11] = v3.s2;                           \
        o[12] = v0.s3; o[13] = v1.s3; o[14] = v2.s3; o[15] = v3.s3;                         \
        o[16] = v0.s4; o[17] = v1.s4; o[18] = v2.s4; o[19] = v3.s4;                         \
        o[20] = v0.s5; o[21] = v1.s5; o[22] = v2.s5; o[23] = v3.s5;                         \
        o[24] = v0.s6; o[25] = v1.s6; o[26] = v2.s6; o[27] = v3.s6;                         \
        o[28] = v0.s7; o[29] = v1.s7; o[30] = v2.s7; o[31] = v3.s7;                         \
    } while (0)

/* p / 65535 correctly rounded, as u8_to_float8 (checked exhaustively against the host). */
static float8 u16_to_float8(ushort8 p)
{
    const float r = 0x1.0001p-16f; /* 1/65535 rounded */
    float8 a = convert_float8(p);
    float8 q = a * r;
    float8 e = fma(-q, (float8)(65535.0f), a);
    return select(fma(e, (float8)(r), q), (float8)(0.0f), a == (float8)(0.0f));
}

/* The noise level of image `sample`: param, or with a range (param_max > param) a draw from the
 * level stream, word 0 of counter {0, sample, epoch, STREAM_LEVEL} (host: dc_noise_level). */
static float noise_level(float param, float param_max, uint2 key, uint sample, uint epoch)
{
    if (!(param_max > param)) return param;
    uint8 w0, w1, w2, w3;
    philox8((uint8)(0u), (uint8)(sample), (uint8)(epoch), (uint8)(STREAM_LEVEL), key, &w0, &w1, &w2, &w3);
    return param + (param_max - param) * (convert_float(w0.s0 >> 8) * 0x1p-24f);
}

/* The shared second half of noise_u8 / noise_u16: write the clean values x (lane i of x_j is
 * pixel base + 4i + j) and their noisy copy. */
static void write_clean_noisy(float8 x0, float8 x1, float8 x2, float8 x3, uint m, size_t o, uint g, uint sample,
                       __global float *clean, const uint clean_off, __global float *noisy,
                       const uint noisy_off, const int kind, const float param, const float param_max,
                       const float inv_param, const uint seed_lo, const uint seed_hi, const uint epoch,
                       const int write_clean, const int write_noisy)
{
    if (write_clean) {
        float xs[32];
        INTERLEAVE(xs, x0, x1, x2, x3);
        __global float *dst = clean + clean_off + o;
        if (m == 32u) {
            vstore16(vload16(0, xs), 0, dst);
            vstore16(vload16(1, xs), 1, dst);
        } else {
#pragma unroll
            for (uint q = 0; q < 32u; q++)
                if (q < m) dst[q] = xs[q];
        }
    }
    if (write_noisy) {
        const uint2 key = (uint2)(seed_lo, seed_hi);
        float lv = noise_level(param, param_max, key, sample, epoch);
        float inv = param_max > param && kind == NOISE_POISSON ? 1.0f / lv : inv_param;
        float8 y0, y1, y2, y3;
        noise32(kind, lv, inv, key, g * 8u, sample, epoch, x0, x1, x2, x3, &y0, &y1, &y2, &y3);
        float ys[32];
        INTERLEAVE(ys, y0, y1, y2, y3);
        __global float *dst = noisy + noisy_off + o;
        if (m == 32u) {
            vstore16(vload16(0, ys), 0, dst);
            vstore16(vload16(1, ys), 1, dst);
        } else {
#pragma unroll
            for (uint q = 0; q < 32u; q++)
                if (q < m) dst[q] = ys[q];
        }
    }
}

/* One work-item per 32 pixels (8 Philox blocks) of one image: gid = image * groups + group.
 * An image is hw values (c planes of h*w, the noise's pixel index runs over all of them).
 * clean / noisy may be NULL (write_clean / write_noisy 0). */
__kernel void noise_u8(__global const uchar *pixels, __global const uint *indices,
                       __global float *clean, const uint clean_off, __global float *noisy,
                       const uint noisy_off, const uint n, const uint hw, const uint groups,
                       const int kind, const float param, const float param_max, const float inv_param,
                       const uint seed_lo, const uint seed_hi, const uint epoch,
                       const int write_clean, const int write_noisy)
{
    uint gid = get_global_id(0);
    if (gid >= n * groups) return;
    uint img = gid / groups, g = gid - img * groups;
    uint base = g * 32u, m = min(hw - base, 32u); /* pixels of this group inside the image */
    __global const uchar *src = pixels + (size_t)img * hw + base;
    uchar16 a, b;
    if (m == 32u) {
        a = vload16(0, src);
        b = vload16(1, src);
    } else {
        uchar px[32];
#pragma unroll
        for (uint q = 0; q < 32u; q++) px[q] = q < m ? src[q] : (uchar)0;
        a = vload16(0, px);
        b = vload16(1, px);
    }
    float8 x0 = u8_to_float8((uchar8)(a.s048c, b.s048c));
    float8 x1 = u8_to_float8((uchar8)(a.s159d, b.s159d));
    float8 x2 = u8_to_float8((uchar8)(a.s26ae, b.s26ae));
    float8 x3 = u8_to_float8((uchar8)(a.s37bf, b.s37bf));
    write_clean_noisy(x0, x1, x2, x3, m, (size_t)img * hw + base, g, indices[img], clean, clean_off, noisy,
                      noisy_off, kind, param, param_max, inv_param, seed_lo, seed_hi, epoch, write_clean,
                      write_noisy);
}

/* The same for 16-bit pixels (x / 65535). */
__kernel void noise_u16(__global const ushort *pixels, __global const uint *indices,
                        __global float *clean, const uint clean_off, __global float *noisy,
                        const uint noisy_off, const uint n, const uint hw, const uint groups,
                        const int kind, const float param, const float param_max, const float inv_param,
                        const uint seed_lo, const uint seed_hi, const uint epoch,
                        const int write_clean, const int write_noisy)
{
    uint gid = get_global_id(0);
    if (gid >= n * groups) return;
    uint img = gid / groups, g = gid - img * groups;
    uint base = g * 32u, m = min(hw - base, 32u);
    __global const ushort *src = pixels + (size_t)img * hw + base;
    ushort px[32];
#pragma unroll
    for (uint q = 0; q < 32u; q++) px[q] = q < m ? src[q] : (ushort)0;
    ushort16 a = vload16(0, px), b = vload16(1, px);
    float8 x0 = u16_to_float8((ushort8)(a.s048c, b.s048c));
    float8 x1 = u16_to_float8((ushort8)(a.s159d, b.s159d));
    float8 x2 = u16_to_float8((ushort8)(a.s26ae, b.s26ae));
    float8 x3 = u16_to_float8((ushort8)(a.s37bf, b.s37bf));
    write_clean_noisy(x0, x1, x2, x3, m, (size_t)img * hw + base, g, indices[img], clean, clean_off, noisy,
                      noisy_off, kind, param, param_max, inv_param, seed_lo, seed_hi, epoch, write_clean,
                      write_noisy);
}

/* Known-answer test hook for philox8: instance i (< n) has counter ctr[4i..4i+3]; the 8
 * instances of work-item t share the key key[2t], key[2t+1]; out[4i..4i+3] = its output. */
__kernel void philox_kat(__global const uint *ctr, __global const uint *key,
                         __global uint *out, const uint n)
{
    uint t = get_global_id(0);
    if (t * 8u >= n) return;
    uint c[4][8];
    for (uint l = 0; l < 8u; l++) {
        uint i = min(t * 8u + l, n - 1u);
        for (uint j = 0; j < 4u; j++) c[j][l] = ctr[4u * i + j];
    }
    uint8 o[4];
    philox8(vload8(0, c[0]), vload8(0, c[1]), vload8(0, c[2]), vload8(0, c[3]), vload2(t, key),
            &o[0], &o[1], &o[2], &o[3]);
    uint r[4][8];
    for (uint j = 0; j < 4u; j++) vstore8(o[j], 0, r[j]);
    for (uint l = 0; l < 8u && t * 8u + l < n; l++)
        for (uint j = 0; j < 4u; j++) out[4u * (t * 8u + l) + j] = r[j][l];
}

/* Exhaustive check of the uint8 → float conversion: out[p] = u8_to_float(p), p < 256. */
__kernel void u8_to_float_all(__global float *out)
{
    uint p = get_global_id(0) * 8u;
    if (p < 256u) vstore8(u8_to_float8(convert_uchar8((uint8)(p) + (uint8)(0, 1, 2, 3, 4, 5, 6, 7))), 0, out + p);
}

/* Exhaustive check of the uint16 → float conversion: out[p] = u16_to_float(p), p < 65536. */
__kernel void u16_to_float_all(__global float *out)
{
    uint p = get_global_id(0) * 8u;
    if (p < 65536u) vstore8(u16_to_float8(convert_ushort8((uint8)(p) + (uint8)(0, 1, 2, 3, 4, 5, 6, 7))), 0, out + p);
}
