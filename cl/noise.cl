/* uint8 → float conversion and input noise in one pass, from a counter-based RNG.
 *
 * Philox4x32-10 (Random123's philox4x32_R(10, ctr, key)) keyed by
 *   key = {seed lo, seed hi}, counter = {pixel / 4, sample index, epoch, stream}
 * so a sample's noise does not depend on the batch it is in. The layout, the noise models and
 * their exact formulas are documented in include/daecl/noise.h; src/stream/noise.c holds the
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
#define POISSON_NORMAL_FROM 30.0f

uint4 philox4x32_10(uint4 c, uint2 k)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k.x += 0x9E3779B9u;
            k.y += 0xBB67AE85u;
        }
        uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = (uint4)(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

/* Uniform in (0, 1]: never 0, so log() stays finite. Exact in float. */
float4 u01_open0(uint4 w)
{
    return convert_float4((w >> 8) + 1u) * 0x1p-24f;
}

/* Uniform in [0, 1) for the probability tests (u < p: p = 0 never, p = 1 always). */
float4 u01_closed0(uint4 w)
{
    return convert_float4(w >> 8) * 0x1p-24f;
}

/* Box–Muller on the pairs (x, y) and (z, w). */
float4 normal4(uint4 w)
{
    float4 u = u01_open0(w);
    float ra = sqrt(-2.0f * log(u.x)), ta = 6.2831855f * u.y;
    float rb = sqrt(-2.0f * log(u.z)), tb = 6.2831855f * u.w;
    return (float4)(ra * cos(ta), ra * sin(ta), rb * cos(tb), rb * sin(tb));
}

/* p / 255 correctly rounded (a product with the rounded reciprocal plus one Markstein
 * correction step; plain division is not correctly rounded on every device). */
float u8_to_float(uint p)
{
    const float r = 0x1.010102p-8f; /* 1/255 rounded */
    float a = (float)p;
    float q = a * r;
    float e = fma(-q, 255.0f, a);
    return fma(e, r, q);
}

float poisson1(float x, float peak, float inv_peak, float u, float z)
{
    float lam = x * peak, k;
    if (lam < POISSON_NORMAL_FROM) {
        float p = exp(-lam), f = p;
        int kk = 0, kmax = (int)(3.0f * lam) + 20;
        while (u > f && kk < kmax) {
            kk++;
            p = p * (lam / (float)kk);
            f = f + p;
        }
        k = (float)kk;
    } else {
        k = fmax(floor(lam + sqrt(lam) * z + 0.5f), 0.0f);
    }
    return fmin(k * inv_peak, 1.0f);
}

float4 noise4(int kind, float param, float inv_param, uint2 key, uint blk, uint sample,
              uint epoch, float4 x)
{
    const float4 zero = (float4)(0.0f), one = (float4)(1.0f);
    switch (kind) {
    case NOISE_GAUSSIAN: {
        float4 z = normal4(philox4x32_10((uint4)(blk, sample, epoch, STREAM_NORMAL), key));
        return clamp(x + param * z, zero, one);
    }
    case NOISE_SPECKLE: {
        float4 z = normal4(philox4x32_10((uint4)(blk, sample, epoch, STREAM_NORMAL), key));
        return clamp(x + (x * param) * z, zero, one);
    }
    case NOISE_SALTPEPPER: {
        uint4 w = philox4x32_10((uint4)(blk, sample, epoch, STREAM_UNIFORM), key);
        float4 u = u01_closed0(w);
        float4 sp = convert_float4(w & 1u);
        return (float4)(u.x < param ? sp.x : x.x, u.y < param ? sp.y : x.y,
                        u.z < param ? sp.z : x.z, u.w < param ? sp.w : x.w);
    }
    case NOISE_MASK: {
        float4 u = u01_closed0(philox4x32_10((uint4)(blk, sample, epoch, STREAM_UNIFORM), key));
        return (float4)(u.x < param ? 0.0f : x.x, u.y < param ? 0.0f : x.y,
                        u.z < param ? 0.0f : x.z, u.w < param ? 0.0f : x.w);
    }
    case NOISE_POISSON: {
        float4 u = u01_open0(philox4x32_10((uint4)(blk, sample, epoch, STREAM_UNIFORM), key));
        float4 z = normal4(philox4x32_10((uint4)(blk, sample, epoch, STREAM_NORMAL), key));
        return (float4)(poisson1(x.x, param, inv_param, u.x, z.x),
                        poisson1(x.y, param, inv_param, u.y, z.y),
                        poisson1(x.z, param, inv_param, u.z, z.z),
                        poisson1(x.w, param, inv_param, u.w, z.w));
    }
    default:
        return x;
    }
}

/* One work-item per block of 4 pixels of one image: gid = image * blocks + block.
 * clean / noisy may be NULL (write_clean / write_noisy 0). */
__kernel void noise_u8(__global const uchar *pixels, __global const uint *indices,
                       __global float *clean, const uint clean_off, __global float *noisy,
                       const uint noisy_off, const uint n, const uint hw, const uint blocks,
                       const int kind, const float param, const float inv_param,
                       const uint seed_lo, const uint seed_hi, const uint epoch,
                       const int write_clean, const int write_noisy)
{
    uint gid = get_global_id(0);
    if (gid >= n * blocks) return;
    uint img = gid / blocks, blk = gid - img * blocks;
    uint base = blk * 4u;
    __global const uchar *src = pixels + (size_t)img * hw;
    float xs[4], ys[4];
    for (uint j = 0; j < 4u; j++) xs[j] = base + j < hw ? u8_to_float(src[base + j]) : 0.0f;
    float4 x = (float4)(xs[0], xs[1], xs[2], xs[3]);
    float4 y = noise4(kind, param, inv_param, (uint2)(seed_lo, seed_hi), blk, indices[img],
                      epoch, x);
    vstore4(y, 0, ys);
    size_t o = (size_t)img * hw + base;
    for (uint j = 0; j < 4u && base + j < hw; j++) {
        if (write_clean) clean[clean_off + o + j] = xs[j];
        if (write_noisy) noisy[noisy_off + o + j] = ys[j];
    }
}

/* Known-answer test hook: out[4i..4i+3] = philox(ctr[4i..], key[2i..]) for i < n. */
__kernel void philox_kat(__global const uint *ctr, __global const uint *key,
                         __global uint *out, const uint n)
{
    uint i = get_global_id(0);
    if (i >= n) return;
    uint4 r = philox4x32_10(vload4(i, ctr), vload2(i, key));
    vstore4(r, i, out);
}

/* Exhaustive check of the uint8 → float conversion: out[p] = u8_to_float(p), p < 256. */
__kernel void u8_to_float_all(__global float *out)
{
    uint p = get_global_id(0);
    if (p < 256u) out[p] = u8_to_float(p);
}
