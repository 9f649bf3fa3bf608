/* Convolution kernels (src/nn/conv2d.c): conv2d forward, input gradient, weight gradient,
 * bias gradient, and the stride-2 transposed convolution. NCHW float32.
 *
 * Programs. PoCL spends ~1-3 s on every program build however small, and generates machine code
 * per kernel at its first launch, so there are few programs and each holds only what it needs:
 * one without options for the geometry-free kernels (bias_grad, dw_reduce, dz_prep, w_lanes,
 * w_lanes_up), and one per conv layer geometry and use (DC_CONV; CIN, COUT, H, W, K and the
 * work split of each kernel as -D options) holding the kernels its plan launches (see "Which
 * kernels" below).
 * The activation is a kernel argument (a uniform branch per output vector), so layers that
 * differ only in activation share a program. DC_FWD_ONLY (inference) leaves out every backward
 * kernel.
 * The stride-2 transposed convolution of an h x w input runs on its 2h x 2w output grid with
 * the program of a conv of that size: its input zero-interleaved (zero_insert), its input
 * gradient computed on the full grid and subsampled (subsample2). That spends 4x the FLOPs of
 * a direct transposed conv but reuses the fast kernels.
 *
 * The conv kernels follow the CPU kernel rules in docs/ARCHITECTURE.md: a work-item is an explicit SIMD program whose vector lanes
 * run along an image row (VW = 8 or 16 lanes, NV vectors per row block of TW = VW*NV pixels,
 * NXB blocks per row). The K horizontal taps are the row vector shifted by -P..P lanes
 * (shuffle2 with the neighbouring vector, or with the halo values at the block edges), the
 * weights are scalars broadcast into the FMAs, and each work-item keeps COB output channels x
 * RY rows x NV vectors of accumulators in registers. Loads of a row that does not fill the
 * vector read whole vectors and zero the extra lanes when that stays inside the tensor, and
 * piecewise (exact) otherwise; stores are always exact. No __local memory, no barriers: the
 * same code is correct on GPUs, where work-items are simply fewer and fatter than ideal.
 *
 * Weights are [cout][cin][K][K] as in ops.h. The input gradient is the "same" convolution of
 * dz with the weights flipped in space and transposed, so conv_fwd and conv_dx share one body. */

#define LEAKY_SLOPE 0.3f
/* static: a helper no kernel of the program calls is dropped, not kept as an exported function
 * in PoCL's program.bc, which every warm start parses (cl/conv2d.cl's unused row helpers made a
 * 28x28 layer's program 1.7 MB instead of 0.4 MB). */
#define INLINE static __attribute__((always_inline)) inline
#define UNROLL _Pragma("unroll")

/* act(z) and act'(z) from y = act(z) for a scalar or vector type T; act as dc_act:
 * 0 none, 1 relu, 2 sigmoid, 3 leaky relu, 4 tanh. */
#define ACT_APPLY(T, z, act)                                                                   \
    ((act) == 1   ? fmax((z), (T)0.0f)                                                         \
     : (act) == 2 ? (T)1.0f / ((T)1.0f + exp(-(z)))                                            \
     : (act) == 3 ? select((T)LEAKY_SLOPE * (z), (z), (z) > (T)0.0f)                           \
     : (act) == 4 ? tanh(z)                                                                    \
                  : (z))
/* tanh' as (1-y)(1+y), not 1-y*y: that cancels near |y| = 1 (8e-5 relative on llvmpipe, which
 * does not contract it into an fma); this is within 2 ulp on every device. */
#define ACT_GRAD(T, y, act)                                                                    \
    ((act) == 1   ? select((T)0.0f, (T)1.0f, (y) > (T)0.0f)                                    \
     : (act) == 2 ? (y) * ((T)1.0f - (y))                                                      \
     : (act) == 3 ? select((T)LEAKY_SLOPE, (T)1.0f, (y) > (T)0.0f)                             \
     : (act) == 4 ? ((T)1.0f - (y)) * ((T)1.0f + (y))                                          \
                  : (T)1.0f)

/* Exact piecewise loads of cnt <= width floats (rest zero): no byte past p[cnt-1] is read. */
INLINE float2 load2_exact(const __global float *p, int cnt)
{
    return cnt >= 2 ? vload2(0, p) : (float2)(cnt >= 1 ? p[0] : 0.0f, 0.0f);
}
INLINE float4 load4_exact(const __global float *p, int cnt)
{
    return cnt >= 2 ? (float4)(vload2(0, p), load2_exact(p + 2, cnt - 2))
                    : (float4)(load2_exact(p, cnt), 0.0f, 0.0f);
}
INLINE float8 load8_exact(const __global float *p, int cnt)
{
    return cnt >= 4 ? (float8)(vload4(0, p), load4_exact(p + 4, cnt - 4))
                    : (float8)(load4_exact(p, cnt), (float4)0.0f);
}

/* Store lanes 0..cnt-1 of v at p, piecewise (never touches p[cnt..]). */
INLINE void store8_lanes(__global float *p, float8 v, int cnt)
{
    if (cnt >= 8) {
        vstore8(v, 0, p);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (int j = 0; j < cnt; j++) p[j] = t[j];
}

/* ------------------------------------------------------------------------------------------ */
/* Geometry-free kernels (bias_grad, dw_reduce, dz_prep, w_lanes, w_lanes_up): built once
 * without DC_CONV, one program for every layer, so their code is generated once per device,
 * not once per layer geometry (PoCL: ~1.5 s of a cold start for the classic model). */
#ifndef DC_CONV
/* ------------------------------------------------------------------------------------------ */
/* bias_grad: dz = dy * act'(y) written over dy (unless act is none), and
 * db[c] = sum_{n,p} dz[n][c][p]. One work-item per channel; c channels of hw pixels. */
__kernel void bias_grad(const __global float *y, const uint y_off, __global float *dy,
                        const uint dy_off, __global float *db, const uint db_off, const int nimg,
                        const int nch, const int hw, const int act)
{
    int c = get_global_id(0);
    if (c >= nch) return;
    float16 acc = 0.0f;
    float tail = 0.0f;
    for (int img = 0; img < nimg; img++) {
        uint base = (uint)(img * nch + c) * hw;
        int p = 0;
        for (; p + 16 <= hw; p += 16) {
            float16 g = vload16(0, dy + dy_off + base + p);
            if (act != 0) {
                float16 o = vload16(0, y + y_off + base + p);
                g *= ACT_GRAD(float16, o, act);
                vstore16(g, 0, dy + dy_off + base + p);
            }
            acc += g;
        }
        for (; p < hw; p++) {
            float g = dy[dy_off + base + p];
            if (act != 0) {
                float o = y[y_off + base + p];
                g *= ACT_GRAD(float, o, act);
                dy[dy_off + base + p] = g;
            }
            tail += g;
        }
    }
    float8 a = acc.lo + acc.hi;
    float4 b = a.lo + a.hi;
    float2 d = b.lo + b.hi;
    db[db_off + c] = d.x + d.y + tail;
}

/* dw_reduce: dst[i] = sum_c part[c*stride + i], c < nchunk, i < n (partial sums of gradients
 * over batch chunks). */
__kernel void dw_reduce(const __global float *part, const uint part_off, const uint stride,
                        __global float *dst, const uint dst_off, const uint n, const int nchunk)
{
    uint i = get_global_id(0);
    if (i >= n) return;
    float s = 0.0f;
    for (int c = 0; c < nchunk; c++) s += part[part_off + (uint)c * stride + i];
    dst[dst_off + i] = s;
}

/* Transpose 8x8 floats in registers: three rounds of zipping row i with row i+4 (each round
 * rotates the 6-bit (row, column) index by one bit; three rounds swap row and column). 8x8,
 * not 16x16: 16-float shuffles took PoCL ~3 s to compile on AVX2. */
INLINE void transpose8(float8 *m)
{
    const uint8 lo = (uint8)(0, 8, 1, 9, 2, 10, 3, 11);
    const uint8 hi = (uint8)(4, 12, 5, 13, 6, 14, 7, 15);
    UNROLL
    for (int round = 0; round < 3; round++) {
        float8 t[8];
        UNROLL
        for (int i = 0; i < 4; i++) {
            t[2 * i] = shuffle2(m[i], m[i + 4], lo);
            t[2 * i + 1] = shuffle2(m[i], m[i + 4], hi);
        }
        UNROLL
        for (int i = 0; i < 8; i++) m[i] = t[i];
    }
}

/* dz_prep: dz = dy * act'(y) written back over dy, and a channels-last copy
 * dzt[n][p][cp] (cp = cout rounded up to 16, the padding zero) for conv_dwc.
 * global: (ceil(hw/8), cp/8, nimg): pixels [8*g0, +8) x channels [8*g1, +8) of image g2. */
__kernel void dz_prep(const __global float *y, const uint y_off, __global float *dy,
                      const uint dy_off, __global float *dzt, const uint dzt_off, const int nimg,
                      const int cout, const int hw, const int act)
{
    int g0 = get_global_id(0), c0 = get_global_id(1) * 8, img = get_global_id(2);
    const int cp = ((cout + 15) / 16) * 16;
    if (g0 >= (hw + 7) / 8 || c0 >= cp || img >= nimg) return;
    const int p0 = g0 * 8;
    __global float *out = dzt + dzt_off + ((uint)img * hw + p0) * cp + c0;
    /* A partial block (an image's last pixels, or padding channels) one value at a time, the
     * full ones as vectors: written as one body with piecewise loads and stores for every
     * block, the kernel took PoCL 1.7-2.1 s to compile at its first launch (0.3 s now), the
     * largest single item of a cold start. */
    if (p0 + 8 > hw || c0 + 8 > cout) {
        for (int j = 0; j < 8; j++) {
            int c = c0 + j;
            for (int q = 0; q < min(8, hw - p0); q++) {
                float g = 0.0f;
                if (c < cout) {
                    uint i = dy_off + (uint)(img * cout + c) * hw + p0 + q;
                    g = dy[i];
                    if (act != 0) {
                        g *= ACT_GRAD(float, y[(i - dy_off) + y_off], act);
                        dy[i] = g;
                    }
                }
                out[q * cp + j] = g;
            }
        }
        return;
    }
    float8 m[8];
    UNROLL
    for (int j = 0; j < 8; j++) {
        uint i = dy_off + (uint)(img * cout + c0 + j) * hw + p0;
        float8 g = vload8(0, dy + i);
        if (act != 0) {
            g *= ACT_GRAD(float8, vload8(0, y + (i - dy_off) + y_off), act);
            vstore8(g, 0, dy + i);
        }
        m[j] = g;
    }
    transpose8(m);
    UNROLL
    for (int j = 0; j < 8; j++) vstore8(m[j], 0, out + j * cp);
}

/* Lane-major weight copies for the channel-lane kernels (conv_fwd_lco, conv_dx_lco), written
 * into scratch before each call. Sizes are arguments, so each is compiled once per device
 * rather than once per layer geometry (a PoCL kernel compile each, 5-7 in a cold start).
 * One (co, ci) channel pair per work-item, i = co * cin + ci: the pair's taps are contiguous
 * in W[co][ci][ky][kx]. */

/* wl[a][tap][b] = W[co][ci][tap'] for the forward (a = ci, b = co, tap' = tap) and the input
 * gradient (a = co, b = ci, tap' flipped: tap' = k*k-1-tap). */
__kernel void w_lanes(const __global float *prm, const uint w_off, __global float *wl,
                      const uint wl_off, const int dx, const int cin, const int cout, const int k)
{
    const int i = get_global_id(0);
    if (i >= cout * cin) return;
    const int ci = i % cin, co = i / cin, kk = k * k;
    const __global float *w = prm + w_off + (uint)i * kk;
    for (int tap = 0; tap < kk; tap++) {
        if (dx)
            wl[wl_off + ((uint)co * kk + (kk - 1 - tap)) * cin + ci] = w[tap];
        else
            wl[wl_off + ((uint)ci * kk + tap) * cout + co] = w[tap];
    }
}

/* Whether tap k (0..2) of a row meets source offset d (0, 1) at output parity f (UPPH). */
#define UP_TAP(f, d, k) ((f) ? ((d) ? (k) == 2 : (k) <= 1) : ((d) ? (k) >= 1 : (k) == 0))

/* wl[ci][py][dy][px][dx][co] = the sum of the 3x3 weights W[co][ci][ky][kx] over the taps
 * (ky, kx) that meet source offset (dy, dx) at output parity (py, px): the weights of a conv
 * after a 2x nearest upsampling run in its four phases (UPPH below). */
__kernel void w_lanes_up(const __global float *prm, const uint w_off, __global float *wl,
                         const uint wl_off, const int unused, const int cin, const int cout,
                         const int k)
{
    const int i = get_global_id(0);
    if (i >= cout * cin || k != 3) return;
    const int ci = i % cin, co = i / cin;
    const __global float *w = prm + w_off + (uint)i * 9;
    for (int ph = 0; ph < 16; ph++) {
        const int py = ph >> 3, dy = (ph >> 2) & 1, px = (ph >> 1) & 1, dx = ph & 1;
        float s = 0.0f;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++)
                if (UP_TAP(py, dy, ky) && UP_TAP(px, dx, kx)) s += w[ky * 3 + kx];
        wl[wl_off + ((uint)ci * 16 + ph) * cout + co] = s;
    }
}

#else /* DC_CONV: the kernels of one conv layer geometry */

/* Which kernels a geometry's program holds (src/nn/conv2d.c, conv_plan_make): clang parses and
 * optimises every kernel of a program at each cold build, launched or not, so a program holds
 * only what its plan launches. DC_FWD_ONLY (inference): no backward kernel. DC_TRANSPOSED:
 * the transposed conv's kernels (convT_*, zero_insert, subsample2) instead of the conv's.
 * LCO_FWD / LCO_DX: that direction by channel lanes (conv_*_lco) instead of rows. CV: the
 * weight gradient by channel lanes (conv_dwc) instead of pixel lanes (conv_dw). The folds of a
 * neighbouring resample into a conv (below, docs/ARCHITECTURE.md rule 11): UPIN and UPPH read
 * an upsampling (the forward), POOLOUT writes a max pool (inference, and with POOL_ARG a first
 * layer in training), DXSUM writes an upsampling's input gradient (training). */
#ifndef LCO_FWD
#define LCO_FWD 0
#endif
#ifndef LCO_DX
#define LCO_DX 0
#endif
/* UPIN: the forward's input is the 2x nearest upsampling of an XH x XW tensor, read in place
 * (src/nn/conv2d.c, CONV_UPSAMPLED): input pixel (iy, ix) is x[iy/2][ix/2]. By channel lanes,
 * or rows by unaligned loads (FFS). Either the forward alone (inference), or in training with
 * the backward that reads the upsampling in place too (DXSUM, DWUP; CONV_UP_TRAIN): one
 * program for both directions. The input gradient's input, dz, is never upsampled. */
#ifndef UPIN
#define UPIN 0
#endif
/* POOLOUT (inference): the forward writes the 2x2 max pool of its output (H/2 x W/2) instead of
 * the output (src/nn/conv2d.c, CONV_POOLED_OUT): channel lanes only, even segments. */
#ifndef POOLOUT
#define POOLOUT 0
#endif
/* DXSUM (training, a conv after a 2x nearest upsampling): the input gradient by channel lanes
 * is written summed over 2x2 windows, i.e. the upsampling's input gradient (its backward). */
#ifndef DXSUM
#define DXSUM 0
#endif
#if DXSUM && (defined(DC_FWD_ONLY) || !LCO_DX || LPX % 2 || H % 2 || W % 2)
#error "DXSUM: an input gradient by channel lanes, even LPX, H and W"
#endif
/* DWUP (training, a conv after a 2x nearest upsampling, with DXSUM): the weight gradient reads
 * its input as the upsampling of an H/2 x W/2 tensor in place (src/nn/conv2d.c,
 * CONV_UP_GRAD_IN_PLACE): conv_dwc the same sums as over the upsampled tensor, bit for bit,
 * conv_dw the same FMAs in another order (dw_block_up). The forward reads the upsampling in
 * place too (UPIN): in this program with UPIN (CONV_UP_TRAIN), else in CONV_UPSAMPLED's. */
#ifndef DWUP
#define DWUP 0
#endif
#if DWUP && (!DXSUM || K > 5)
#error "DWUP: with DXSUM, K <= 5"
#endif
#if UPIN && ((!defined(DC_FWD_ONLY) && !DWUP) || (!LCO_FWD && (!FFS || FWS)) || K > 5 || \
             H % 2 || W % 2)
#error "UPIN: forward only or with DWUP, by channel lanes or unaligned row loads, K <= 5, even H and W"
#endif
/* POOL_ARG (a first layer's POOLOUT, training): the pooled forward also writes which pixel of
 * each window it took (0, 1: row 2y; 2, 3: row 2y + 1, as floats) for conv_dw_pooled. */
#ifndef POOL_ARG
#define POOL_ARG 0
#endif
#if POOL_ARG && (!POOLOUT || !defined(DW_POOLED))
#error "POOL_ARG: a first layer's pooled forward"
#endif
#if POOLOUT && ((!defined(DC_FWD_ONLY) && !defined(DW_POOLED)) || !LCO_FWD || UPIN || LPX % 2 || \
                H % 2 || W % 2)
#error "POOLOUT: forward only or a first layer's, by channel lanes, not with UPIN, even LPX, H and W"
#endif
/* UPPH (with UPIN, K = 3): the conv of a 2x upsampling in its four phases. An output pixel's
 * 3 taps along a row meet only 2 source pixels (ox = 2m: m-1, m, m; ox = 2m+1: m, m, m+1), so
 * each output parity (py, px) is a 2x2 conv of the source with summed weights: 4 FMAs per
 * input channel instead of 9, rounded differently from the unfused conv (the sums of
 * weights, w_lanes_up). By channel lanes, segments start at even pixels (even LPX); by rows
 * (FFS, rows_block_up), blocks of even rows (even FRY) over the source's pixels. */
#ifndef UPPH
#define UPPH 0
#endif
#if UPPH && (!UPIN || K != 3 || (LCO_FWD ? LPX % 2 : !FFS || FRY % 2))
#error "UPPH: an upsampled input, K = 3, by channel lanes with even LPX or by rows with even FRY"
#endif
#define XH (UPIN ? H / 2 : H) /* the input's plane */
#define XW (UPIN ? W / 2 : W)

#define P ((K - 1) / 2)
#define MAXCOB (FCOB > DCOB ? FCOB : DCOB)
#define MAXRY (FRY > DRY ? FRY : DRY)
/* Row vectors */
#if VW == 16
typedef float16 vec;
typedef int16 ivec;
typedef uint16 uvec;
#define VLOAD vload16
#define VSTORE vstore16
#define AS_IVEC as_int16
#define IOTA ((uvec)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#elif VW == 8
typedef float8 vec;
typedef int8 ivec;
typedef uint8 uvec;
#define VLOAD vload8
#define VSTORE vstore8
#define AS_IVEC as_int8
#define IOTA ((uvec)(0, 1, 2, 3, 4, 5, 6, 7))
#else
#error "VW must be 8 or 16"
#endif
#define TW (VW * NV)                     /* pixels per row block */
#define LW (W - (NXB - 1) * TW)          /* width of the last row block */

/* Zero the lanes >= cnt. */
INLINE vec keep_lanes(vec v, int cnt)
{
    return select((vec)0.0f, v, (ivec)(AS_IVEC(IOTA) < (ivec)cnt));
}

INLINE vec load_exact(const __global float *p, int cnt)
{
#if VW == 16
    return cnt >= 8 ? (float16)(vload8(0, p), load8_exact(p + 8, cnt - 8))
                    : (float16)(load8_exact(p, cnt), (float8)0.0f);
#else
    return load8_exact(p, cnt);
#endif
}

/* cnt lanes of a row at base[i] (rest zero). A whole vector is read when i + VW <= end, the end
 * of the tensor (so reading past the row stays in bounds); otherwise piecewise. */
INLINE vec load_lanes(const __global float *base, uint i, uint end, int cnt)
{
    if (cnt >= VW) return VLOAD(0, base + i);
    if (i + VW <= end) return keep_lanes(VLOAD(0, base + i), cnt);
    return load_exact(base + i, cnt);
}

/* Store lanes 0..cnt-1 of v at p, piecewise (never touches p[cnt..]). */
INLINE void store_lanes(__global float *p, vec v, int cnt)
{
#if VW == 16
    if (cnt >= 16) {
        vstore16(v, 0, p);
    } else if (cnt >= 8) {
        vstore8(v.lo, 0, p);
        store8_lanes(p + 8, v.hi, cnt - 8);
    } else {
        store8_lanes(p, v.lo, cnt);
    }
#else
    store8_lanes(p, v, cnt);
#endif
}

/* Row vector v of a block shifted by s lanes: lane j holds pixel x0 + v*VW + j + s. lo is the
 * vector left of c[v] (the previous one, or the left halo whose top P lanes hold the P pixels
 * before the block), hi the one right of it (the next one, or the right halo, lanes 0..P-1). */
INLINE vec shifted(vec lo, vec mid, vec hi, int s)
{
    if (s == 0) return mid;
    if (s < 0) return shuffle2(lo, mid, IOTA + (uint)(VW + s));
    return shuffle2(mid, hi, IOTA + (uint)s);
}

/* Load one input row segment of a block: NV vectors (lanes past bw zero) and the halos. */
#define LOAD_ROW_BLOCK(src, rowi, end, x0, bw, c, hl, hr)                                      \
    do {                                                                                       \
        for (int v_ = 0; v_ < NV; v_++)                                                        \
            if (v_ * VW < (bw))                                                                \
                c[v_] = load_lanes(src, (rowi) + v_ * VW, end, min(VW, (bw) - v_ * VW));       \
        hl = (vec)0.0f;                                                                        \
        hr = (vec)0.0f;                                                                        \
        if ((x0) > 0)                                                                          \
            for (int j_ = 0; j_ < P; j_++) ((float *)&hl)[VW - P + j_] = src[(rowi) - P + j_]; \
        for (int j_ = 0; j_ < P; j_++)                                                         \
            if ((x0) + (bw) + j_ < W) ((float *)&hr)[j_] = src[(rowi) + (bw) + j_];            \
    } while (0)

#define SHIFTED(c, hl, hr, v, nvb, s)                                                          \
    shifted((v) == 0 ? (hl) : c[(v) > 0 ? (v) - 1 : 0], c[v],                                  \
            (v) == (nvb) - 1 ? (hr) : c[(v) + 1 < NV ? (v) + 1 : NV - 1], s)


/* The K shifted copies of one input row block's NV vectors: xs[v][kx] lane j holds pixel
 * x0 + v*VW + j + kx - P of the row at rowi, zero outside the row. fast: unaligned loads, one
 * per shift, masked at the row's ends; the caller guarantees that the P floats before the row
 * and the NV*VW + P after its start lie inside the tensor. Else the row block with its halos,
 * shifted by shuffles: on AVX2 a shuffle2 of two-register float16 vectors takes several
 * instructions per shift, more than the FMAs it feeds in the 1-channel layers. */
/* The unaligned loads of an image's rows stay inside its neighbours when an image holds at
 * least a row block and its halo. DW_FAST=0 (loop-limited devices: llvmpipe) keeps one path:
 * its compiler took minutes over the second copy of the weight-gradient block. */
#ifndef DW_FAST
#define DW_FAST 1
#endif
#if DWUP /* dw_block_up reads from 1 float before a source row segment to NV*VW after it */
#define DW_FAST_OK (DW_FAST && CIN * (H / 2) * (W / 2) >= NV * VW + 1)
#else
#define DW_FAST_OK (DW_FAST && CIN * H * W >= NV * VW + P)
#endif
/* Zero the lanes of row vector v shifted by s (lane j: pixel x0 + v*VW + j + s) that fall
 * outside the row. Masks only where a lane can, so that the masks of the other loads are not
 * kept (spilled) across the loops: left of the row only in the first vector's left shifts (x0
 * is 0 or at least TW > P); right of it only in the last block, where x0 is a constant and the
 * mask folds, unless that block is narrower than the halo. */
INLINE vec mask_row_edges(vec raw, const int x0, const int v, const int s, const int last)
{
    ivec col = AS_IVEC(IOTA) + (ivec)(x0 + v * VW + s);
    if (v == 0 && s < 0) raw = select((vec)0.0f, raw, col >= (ivec)0);
    if (last || LW < P) raw = select((vec)0.0f, raw, col < (ivec)W);
    return raw;
}

INLINE void row_shifts(const __global float *xi, uint rowi, uint xend, const int x0,
                       const int bw, vec xs[NV][K], const int fast, const int last)
{
    const int nvb = (bw + VW - 1) / VW;
    if (fast) {
        UNROLL
        for (int v = 0; v < NV; v++)
            UNROLL
            for (int kx = 0; kx < K; kx++) {
                if (v >= nvb) continue;
                int s = kx - P;
                vec raw = VLOAD(0, xi + ((int)rowi + v * VW + s));
                xs[v][kx] = mask_row_edges(raw, x0, v, s, last);
            }
        return;
    }
    vec c[NV], hl, hr;
    LOAD_ROW_BLOCK(xi, rowi, xend, x0, bw, c, hl, hr);
    UNROLL
    for (int v = 0; v < NV; v++)
        UNROLL
        for (int kx = 0; kx < K; kx++)
            if (v < nvb) xs[v][kx] = SHIFTED(c, hl, hr, v, nvb, kx - P);
}

#if UPIN
/* row_shifts of an upsampled row (UPIN): lane j of xs[v][kx] is input pixel
 * c = x0 + v*VW + j + s (s = kx - P) of the 2x upsampled row whose source row starts at
 * rowi - x0/2, i.e. source pixel c >> 1 = (x0 + v*VW)/2 + ((j + s) >> 1): from the source
 * floats loaded at (x0 + v*VW)/2 - 1 it is index ((j + s) >> 1) + 1, in 0..5 for each half of
 * 8 lanes when |s| <= 2, so each shift is one constant permute per 8 lanes, from two loads per
 * vector that serve every shift (mask_row_edges). The caller guarantees that the
 * floats from rowi - 1 to rowi + NV*VW/2 + 2 lie inside the tensor. */
INLINE void row_shifts_up(const __global float *xi, uint rowi, const int x0, vec xs[NV][K],
                          const int last)
{
    UNROLL
    for (int v = 0; v < NV; v++) {
        const __global float *src = xi + rowi + v * (VW / 2) - 1;
        float8 lo = vload8(0, src);
#if VW == 16
        float8 hi = vload8(0, src + 4);
#endif
        UNROLL
        for (int kx = 0; kx < K; kx++) {
            const int s = kx - P;
            const int8 j = (int8)(0, 1, 2, 3, 4, 5, 6, 7);
            vec raw;
#if VW == 16
            raw = (float16)(shuffle(lo, as_uint8(((j + s) >> 1) + 1)),
                            shuffle(hi, as_uint8(((j + 8 + s) >> 1) + 1 - 4)));
#else
            raw = shuffle(lo, as_uint8(((j + s) >> 1) + 1));
#endif
            xs[v][kx] = mask_row_edges(raw, x0, v, s, last);
        }
    }
}

/* The same one value at a time, for the rows whose loads would leave the tensor (its first and
 * last rows): every read is of a pixel of the row. */
INLINE void row_gather_up(const __global float *xi, uint rowi, const int x0, vec xs[NV][K])
{
    const __global float *row = xi + rowi - x0 / 2;
    UNROLL
    for (int v = 0; v < NV; v++)
        UNROLL
        for (int kx = 0; kx < K; kx++) {
            float t[VW];
#pragma unroll 1
            for (int j = 0; j < VW; j++) {
                int c = x0 + v * VW + j + kx - P;
                t[j] = c >= 0 && c < W ? row[c >> 1] : 0.0f;
            }
            xs[v][kx] = VLOAD(0, t);
        }
}
#endif

#if UPPH && !LCO_FWD
/* The forward of a 2x upsampled input by rows in its four phases (UPPH with FFS): lanes over
 * the source's pixels, row blocks of the source (TW source pixels, the last one SLW). Output
 * pixel (oy, 2n + px), py = oy & 1, is the sum over dy, dx of
 * wl[ci][py][dy][px][dx] * src[oy/2 + py - 1 + dy][n + px + dx - 1]: a source row segment is
 * read at three offsets (n - 1, n, n + 1) by unaligned loads, each weight is one broadcast,
 * and the two column parities are interleaved once, at the store. Against the upsampled rows'
 * shifts (row_shifts_up), whose permutes LLVM splits into pieces on AVX2, there are no
 * shuffles in the loop. */
#define SLW (XW - (NXB - 1) * TW)

/* xs[v][s] lane j = source pixel sx0 + v*VW + j + s - 1 of the row at rowi (rowi: the block's
 * first pixel), zero outside the row. fast: unaligned loads (the caller guarantees that
 * rowi - 1 .. rowi + NV*VW lie inside the tensor), masked only where a lane can leave the row
 * (as mask_row_edges); else one pixel at a time. */
INLINE void src_row_shifts(const __global float *x, uint rowi, const int sx0, const int nvb,
                           vec xs[NV][3], const int fast, const int last)
{
    UNROLL
    for (int v = 0; v < NV; v++)
        UNROLL
        for (int s = -1; s <= 1; s++) {
            if (v >= nvb) continue;
            if (!fast) {
                float t[VW];
#pragma unroll 1
                for (int j = 0; j < VW; j++) {
                    int c = sx0 + v * VW + j + s;
                    t[j] = c >= 0 && c < XW ? x[(int)rowi - sx0 + c] : 0.0f;
                }
                xs[v][s + 1] = VLOAD(0, t);
                continue;
            }
            vec raw = VLOAD(0, x + ((int)rowi + v * VW + s));
            ivec col = AS_IVEC(IOTA) + (ivec)(sx0 + v * VW + s);
            if (v == 0 && s < 0) raw = select((vec)0.0f, raw, col >= (ivec)0);
            if (last && s > 0) raw = select((vec)0.0f, raw, col < (ivec)XW);
            xs[v][s + 1] = raw;
        }
}

#if VW == 16
#define ZIP_LO ((uint16)(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23))
#define ZIP_HI ((uint16)(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31))
#else
#define ZIP_LO ((uint8)(0, 8, 1, 9, 2, 10, 3, 11))
#define ZIP_HI ((uint8)(4, 12, 5, 13, 6, 14, 7, 15))
#endif

/* Output rows [oy0, +FRY) (oy0 even) of output channels [cb*FCOB, +FCOB) of image img, from
 * source block [sx0, +bw). */
INLINE void rows_block_up(const __global float *x, uint x_off, uint x_end,
                          const __global float *wl, const __global float *prm, uint b_off,
                          __global float *y, uint y_off, int act, int img, int cb, int oy0,
                          const int sx0, const int bw, const int last)
{
    const int nvb = (bw + VW - 1) / VW;
    const int c0 = min(cb * FCOB, COUT - FCOB); /* as rows_block's */
    vec acc[FCOB][FRY][2][NV];
    UNROLL
    for (int co = 0; co < FCOB; co++) {
        float bias = prm[b_off + c0 + co];
        UNROLL
        for (int r = 0; r < FRY; r++)
            UNROLL
            for (int px = 0; px < 2; px++)
                UNROLL
                for (int v = 0; v < NV; v++) acc[co][r][px][v] = (vec)bias;
    }
    for (int ci = 0; ci < CIN; ci++) {
        uint xbase = x_off + (uint)(img * CIN + ci) * (XH * XW) + sx0;
        const __global float *wc = wl + (uint)ci * 16 * COUT + c0;
        UNROLL
        for (int r = 0; r < FRY / 2 + 2; r++) {
            int sy = oy0 / 2 - 1 + r;
            if (sy < 0 || sy >= XH) continue;
            uint rowi = xbase + (uint)sy * XW;
            vec xs[NV][3];
            if (rowi >= x_off + 1 && rowi + NV * VW + 1 <= x_end)
                src_row_shifts(x, rowi, sx0, nvb, xs, 1, last);
            else
                src_row_shifts(x, rowi, sx0, nvb, xs, 0, last);
            /* source row r meets output row orow of parity py as its offset dy */
            UNROLL
            for (int orow = 0; orow < FRY; orow++) {
                int py = orow & 1, dy = r - orow / 2 - py;
                if (dy < 0 || dy > 1) continue;
                UNROLL
                for (int co = 0; co < FCOB; co++)
                    UNROLL
                    for (int px = 0; px < 2; px++)
                        UNROLL
                        for (int dx = 0; dx < 2; dx++) {
                            vec wv = (vec)wc[(py * 8 + dy * 4 + px * 2 + dx) * COUT + co];
                            UNROLL
                            for (int v = 0; v < NV; v++)
                                if (v < nvb)
                                    acc[co][orow][px][v] =
                                        fma(xs[v][px + dx], wv, acc[co][orow][px][v]);
                        }
            }
        }
    }
    UNROLL
    for (int co = 0; co < FCOB; co++) {
        int c_ = c0 + co;
        UNROLL
        for (int r = 0; r < FRY; r++) {
            int oy = oy0 + r;
            if (c_ < cb * FCOB || oy >= H) continue;
            __global float *out = y + y_off + (uint)((img * COUT + c_) * H + oy) * W + 2 * sx0;
            UNROLL
            for (int v = 0; v < NV; v++) {
                if (v >= nvb) continue;
                vec e = ACT_APPLY(vec, acc[co][r][0][v], act);
                vec o = ACT_APPLY(vec, acc[co][r][1][v], act);
                int n = 2 * min(VW, bw - v * VW); /* output pixels of this vector pair */
                store_lanes(out + 2 * v * VW, shuffle2(e, o, ZIP_LO), min(VW, n));
                if (n > VW) store_lanes(out + 2 * v * VW + VW, shuffle2(e, o, ZIP_HI), n - VW);
            }
        }
    }
}
#endif

/* ------------------------------------------------------------------------------------------ */
/* Stride-1 "same" convolutions of row blocks. rows_block computes, for image img, output
 * channels [cb*cob, +cob) and rows [oy0, +ry) of one row block (x0, width bw), with the weight
 * W[a][b][ky][kx] of the layer ([cout][cin][K][K]) used as
 *   ct = 0: W[co][ci], ct = 1: W[ci][co] (channels transposed: "x" has the layer's cout
 *           channels, "y" its cin);
 *   sf = 0: W[..][ky][kx], sf = 1: W[..][K-1-ky][K-1-kx] (flipped in space).
 * ws selects the weight-stationary loop order (see below). With ct = 0 the bias and
 * activation are applied. The four combinations are the conv forward
 * (0,0), conv input gradient (sf 1, ct 1), and, on zero-interleaved or full-size data, the
 * transposed conv forward (sf 1, ct 0) and input gradient (sf 0, ct 1).
 * All size arguments are constants at every call, so everything unrolls and folds. */
INLINE void rows_block(const __global float *x, uint x_off, uint x_end,
                       const __global float *prm, uint w_off, uint b_off, __global float *y,
                       uint y_off, int act, int img, int cb, int oy0, const int x0,
                       const int bw, const int cin, const int cout, const int cob,
                       const int ry, const int sf, const int ct, const int ws, const int fs,
                       const int last)
{
    const int nvb = (bw + VW - 1) / VW;
    /* The last channel block of a count that cob does not divide starts early (overlapping
     * the previous block, whose channels it computes but does not store), so every weight
     * offset below is a compile-time constant from one base pointer per input channel. */
    const int c0 = min(cb * cob, cout - cob);
    /* Loop bounds are the program's constants (MAXCOB, MAXRY, NV, K) with the arguments in
     * conditions: LLVM then unrolls every loop in this function before it is inlined, and the
     * conditions fold once it is; loops bounded by the arguments stayed rolled for some shapes,
     * with the accumulators on the stack. */
    vec acc[ACCN];
    UNROLL
    for (int co = 0; co < MAXCOB; co++) {
        if (co >= cob) break;
        float bias = ct ? 0.0f : prm[b_off + c0 + co];
        UNROLL
        for (int i = 0; i < MAXRY * NV; i++)
            if (i < ry * NV) acc[co * ry * NV + i] = (vec)bias;
    }
    /* weights of (c0 + co, ci, ky, kx) at wci[co * wstride + tap] */
    const int wstride = ct ? K * K : cin * K * K;
    for (int ci = 0; ci < cin; ci++) {
        const __global float *wci =
            prm + w_off + (ct ? (uint)(ci * cout + c0) * (K * K) : (uint)(c0 * cin + ci) * (K * K));
        uint xbase = x_off + (uint)(img * cin + ci) * (XH * XW) + (UPIN ? x0 / 2 : x0);
        if (ws) {
            /* Weight-stationary (rows of at most one vector): the shifts of all ry+K-1 input
             * rows first (zeros outside the image), then each weight broadcast feeds its ry
             * output rows at once, instead of one FMA per broadcast load. */
            vec xw[MAXRY + K - 1][NV][K];
            UNROLL
            for (int r = 0; r < MAXRY + K - 1; r++) {
                int iy = oy0 + r - P;
                if (r >= ry + K - 1) continue;
                vec c[NV], hl = (vec)0.0f, hr = (vec)0.0f;
                UNROLL
                for (int v = 0; v < NV; v++) c[v] = (vec)0.0f;
                if (iy >= 0 && iy < H) {
                    uint rowi = xbase + (uint)iy * W;
                    LOAD_ROW_BLOCK(x, rowi, x_end, x0, bw, c, hl, hr);
                }
                UNROLL
                for (int v = 0; v < NV; v++)
                    UNROLL
                    for (int kx = 0; kx < K; kx++)
                        if (v < nvb) xw[r][v][kx] = SHIFTED(c, hl, hr, v, nvb, kx - P);
            }
            UNROLL
            for (int ky = 0; ky < K; ky++)
                UNROLL
                for (int kx = 0; kx < K; kx++) {
                    int tap = sf ? (K - 1 - ky) * K + (K - 1 - kx) : ky * K + kx;
                    UNROLL
                    for (int co = 0; co < MAXCOB; co++) {
                        if (co >= cob) continue;
                        vec wv = (vec)wci[co * wstride + tap];
                        UNROLL
                        for (int orow = 0; orow < MAXRY; orow++) {
                            if (orow >= ry) continue;
                            UNROLL
                            for (int v = 0; v < NV; v++) {
                                if (v >= nvb) continue;
                                int ai = (co * ry + orow) * NV + v;
                                acc[ai] = fma(xw[orow + ky][v][kx], wv, acc[ai]);
                            }
                        }
                    }
                }
            continue;
        }
        UNROLL
        for (int r = 0; r < MAXRY + K - 1; r++) {
            int iy = oy0 + r - P;
            if (r >= ry + K - 1 || iy < 0 || iy >= H) continue;
            uint rowi = xbase + (uint)(UPIN ? (iy >> 1) * XW : iy * W);
            /* every shift of the row first, then each weight broadcast feeds all NV vectors at
             * once (with v outermost LLVM kept the broadcasts alive across v, and spilled).
             * fs: by unaligned loads wherever they stay inside the tensor (all rows but the
             * tensor's first and last few) */
            vec xs[NV][K];
#if UPIN
            if (rowi >= x_off + 1 && rowi + NV * VW / 2 + 3 <= x_end)
                row_shifts_up(x, rowi, x0, xs, last);
            else
                row_gather_up(x, rowi, x0, xs);
#else
            if (fs && rowi >= x_off + P && rowi + NV * VW + P <= x_end)
                row_shifts(x, rowi, x_end, x0, bw, xs, 1, last);
            else
                row_shifts(x, rowi, x_end, x0, bw, xs, 0, last);
#endif
            UNROLL
            for (int kx = 0; kx < K; kx++)
                UNROLL
                for (int ky = 0; ky < K; ky++) {
                    int orow = r - ky;
                    if (orow < 0 || orow >= ry) continue;
                    int tap = sf ? (K - 1 - ky) * K + (K - 1 - kx) : ky * K + kx;
                    UNROLL
                    for (int co = 0; co < MAXCOB; co++) {
                        if (co >= cob) continue;
                        vec wv = (vec)wci[co * wstride + tap];
                        UNROLL
                        for (int v = 0; v < NV; v++) {
                            if (v >= nvb) continue;
                            int ai = (co * ry + orow) * NV + v;
                            acc[ai] = fma(xs[v][kx], wv, acc[ai]);
                        }
                    }
                }
        }
    }
    UNROLL
    for (int co = 0; co < MAXCOB; co++) {
        int c_ = c0 + co;
        UNROLL
        for (int r = 0; r < MAXRY; r++) {
            int oy = oy0 + r;
            if (co >= cob || r >= ry || c_ < cb * cob || oy >= H) continue;
            __global float *out = y + y_off + (uint)((img * cout + c_) * H + oy) * W + x0;
            UNROLL
            for (int v = 0; v < NV; v++) {
                if (v >= nvb) continue;
                vec z = acc[(co * ry + r) * NV + v];
                if (!ct) z = ACT_APPLY(vec, z, act);
                store_lanes(out + v * VW, z, min(VW, bw - v * VW));
            }
        }
    }
}

/* Work-item: image get_global_id(2), channel block get_global_id(1), and g0 = row block * NXB
 * + x block. */
/* FFS: the forward's rows by unaligned loads (fs above): set by the host where few output
 * channels share each shifted row (the 32->1 and 32->3 output layers), so the shuffles were
 * most of the work. */
#ifndef FFS
#define FFS 0
#endif
#define ROWS_KERNEL(NAME, CI, CO, COB_, RY_, SF_, CT_, WS_, FS_)                                         \
    __kernel void NAME(const __global float *x, const uint x_off, const uint x_end,            \
                       const __global float *prm, const uint w_off, const uint b_off,          \
                       __global float *y, const uint y_off, const int nimg, const int act)     \
    {                                                                                          \
        int g0 = get_global_id(0), cb = get_global_id(1), img = get_global_id(2);              \
        if (g0 >= NXB * ((H + RY_ - 1) / RY_) || cb >= (CO + COB_ - 1) / COB_ || img >= nimg)  \
            return;                                                                            \
        int xb = g0 % NXB, oy0 = (g0 / NXB) * RY_;                                             \
        /* one copy of the body for the last (narrower) block, one for the others */           \
        if (xb == NXB - 1)                                                                     \
            rows_block(x, x_off, x_end, prm, w_off, b_off, y, y_off, act, img, cb, oy0,        \
                       (NXB - 1) * TW, LW, CI, CO, COB_, RY_, SF_, CT_, WS_, FS_, 1);                       \
        else                                                                                   \
            rows_block(x, x_off, x_end, prm, w_off, b_off, y, y_off, act, img, cb, oy0,        \
                       xb * TW, TW, CI, CO, COB_, RY_, SF_, CT_, WS_, FS_, 0);                              \
    }

#ifndef DC_TRANSPOSED
#if UPPH && !LCO_FWD
__kernel void conv_fwd(const __global float *x, const uint x_off, const uint x_end,
                       const __global float *prm, const uint w_off, const uint b_off,
                       __global float *y, const uint y_off, const int nimg, const int act,
                       const __global float *wl, const uint wl_off)
{
    int g0 = get_global_id(0), cb = get_global_id(1), img = get_global_id(2);
    if (g0 >= NXB * ((H + FRY - 1) / FRY) || cb >= (COUT + FCOB - 1) / FCOB || img >= nimg)
        return;
    int xb = g0 % NXB, oy0 = (g0 / NXB) * FRY;
    if (xb == NXB - 1)
        rows_block_up(x, x_off, x_end, wl + wl_off, prm, b_off, y, y_off, act, img, cb, oy0,
                      (NXB - 1) * TW, SLW, 1);
    else
        rows_block_up(x, x_off, x_end, wl + wl_off, prm, b_off, y, y_off, act, img, cb, oy0,
                      xb * TW, TW, 0);
}
#elif !LCO_FWD && (!DWUP || UPIN)
/* y = act(conv(x) + b) */
ROWS_KERNEL(conv_fwd, CIN, COUT, FCOB, FRY, 0, 0, FWS, FFS)
#endif
#if !defined(DC_FWD_ONLY) && !LCO_DX && !defined(DW_POOLED)
/* dx = conv(dz, flipped W^T); b_off and act are ignored */
ROWS_KERNEL(conv_dx, COUT, CIN, DCOB, DRY, 1, 1, DWS, 0)
#endif
#else /* DC_TRANSPOSED */
/* Transposed conv (stride 2) on the output grid, H x W = twice the layer input:
 * y = act(conv(zero-interleaved x, flipped W) + b) */
ROWS_KERNEL(convT_fwd, CIN, COUT, FCOB, FRY, 1, 0, FWS, 0)
#ifndef DC_FWD_ONLY
/* t = conv(dz, W^T) on the output grid; dx = t at the positions of the input pixels */
ROWS_KERNEL(convT_dx, COUT, CIN, DCOB, DRY, 0, 1, DWS, 0)
#endif /* !DC_FWD_ONLY */
#endif /* DC_TRANSPOSED */

/* ------------------------------------------------------------------------------------------ */
/* Lanes over output channels (LCV = 8 or 16, the device's native float width): the forward and
 * input gradient of layers whose output channel count is a multiple of LCB * LCV. A work-item
 * computes one output row of LCB * LCV channels in segments of LPX pixels; for every input
 * channel and tap it loads LCB weight vectors (from the lane-major copy made by w_lanes) and
 * broadcasts each input pixel into LCB FMAs. No row shifts and no idle lanes on 14- or 7-pixel
 * rows, against 14 of 16 lanes and a shuffle per shifted row in rows_block. Column borders are
 * checked in a row's first and last segments only (constants there); rows outside the image
 * are skipped (uniform per work-item). Each output value is stored singly: 8 * LCB * LPX
 * stores against 9 * CIN times more FMAs. */
#ifdef LCV
#if LCV == 16
typedef float16 lvec;
#define LVLOAD vload16
#define LVSTORE vstore16
#else
typedef float8 lvec;
#define LVLOAD vload8
#define LVSTORE vstore8
#endif
#define NSEG ((W + LPX - 1) / LPX)

#if LCV == 8 || LCV == 16
/* c[j] lane p = r[p] lane j (unpack, then pairs, then halves: 24 shuffles that LLVM lowers to
 * AVX2's vunpck/vshufps/vperm2f128). A 16-channel vector is transposed as two halves. */
INLINE void transpose8(const float8 r[8], float8 c[8])
{
    float8 t[8], u[8];
    UNROLL
    for (int i = 0; i < 8; i += 2) {
        t[i] = shuffle2(r[i], r[i + 1], (uint8)(0, 8, 1, 9, 4, 12, 5, 13));
        t[i + 1] = shuffle2(r[i], r[i + 1], (uint8)(2, 10, 3, 11, 6, 14, 7, 15));
    }
    UNROLL
    for (int h = 0; h < 8; h += 4) {
        u[h] = shuffle2(t[h], t[h + 2], (uint8)(0, 1, 8, 9, 4, 5, 12, 13));
        u[h + 1] = shuffle2(t[h], t[h + 2], (uint8)(2, 3, 10, 11, 6, 7, 14, 15));
        u[h + 2] = shuffle2(t[h + 1], t[h + 3], (uint8)(0, 1, 8, 9, 4, 5, 12, 13));
        u[h + 3] = shuffle2(t[h + 1], t[h + 3], (uint8)(2, 3, 10, 11, 6, 7, 14, 15));
    }
    UNROLL
    for (int j = 0; j < 4; j++) {
        c[j] = shuffle2(u[j], u[j + 4], (uint8)(0, 1, 2, 3, 8, 9, 10, 11));
        c[j + 4] = shuffle2(u[j], u[j + 4], (uint8)(4, 5, 6, 7, 12, 13, 14, 15));
    }
}

/* Channels [8h, 8h + 8) of an lvec. */
INLINE float8 lvec_half(lvec v, const int h)
{
#if LCV == 16
    return h ? v.hi : v.lo;
#else
    return v;
#endif
}
#endif

#if UPPH
/* lco_accumulate of an upsampled input by phases (UPPH): output row oy reads source rows
 * oy/2 + py - 1 + dy (py = oy & 1); each source pixel of the segment is broadcast once into
 * the 4 outputs it meets, 2 of each parity. x0 is even. */
INLINE void lco_accumulate_phases(lvec acc[LCB][LPX], const __global float *x, uint x_off,
                           const __global float *wl, int img, int oy, int c0, const int x0,
                           const int px, const int edges, const int ni, const int no)
{
    const int py = oy & 1;
    for (int ci = 0; ci < ni; ci++) {
        const __global float *xc = x + x_off + (uint)(img * ni + ci) * (XH * XW);
        const __global float *wc = wl + (uint)(ci * 4 + py * 2) * 4 * no + c0;
        UNROLL
        for (int dy = 0; dy < 2; dy++) {
            int sy = (oy >> 1) + py - 1 + dy;
            if (sy < 0 || sy >= XH) continue;
            const __global float *row = xc + sy * XW;
            lvec wv[2][2][LCB];
            UNROLL
            for (int f = 0; f < 2; f++)
                UNROLL
                for (int d = 0; d < 2; d++)
                    UNROLL
                    for (int b = 0; b < LCB; b++)
                        wv[f][d][b] = LVLOAD(0, wc + (dy * 4 + f * 2 + d) * no + b * LCV);
            UNROLL
            for (int j = -1; j <= LPX / 2; j++) {
                int c = x0 / 2 + j;
                if (2 * j - 1 >= px || (edges && (c < 0 || c >= XW))) continue;
                lvec xv = (lvec)row[c];
                UNROLL
                for (int f = 0; f < 2; f++)
                    UNROLL
                    for (int d = 0; d < 2; d++) {
                        int p = f ? 2 * (j - d) + 1 : 2 * (j + 1 - d);
                        if (p < 0 || p >= px) continue;
                        UNROLL
                        for (int b = 0; b < LCB; b++) acc[b][p] = fma(xv, wv[f][d][b], acc[b][p]);
                    }
            }
        }
    }
}
#endif /* UPPH */

/* Adds to acc the conv of pixels [x0, x0 + px) of output row oy, channels [c0, c0 + LCB*LCV)
 * of image img (ni input channels, no output channels). px is a constant; x0 is one for the
 * first and last segments of a row, whose column borders (edges: which ones to check) then
 * fold, and runtime for the segments between, which need no checks. up: x is the upsampling's
 * source (UPIN, the forward; a constant). */
INLINE void lco_accumulate_plain(lvec acc[LCB][LPX], const __global float *x, uint x_off,
                                 const __global float *wl, int img, int oy, int c0,
                                 const int x0, const int px, const int edges, const int ni,
                                 const int no, const int up)
{
    for (int ci = 0; ci < ni; ci++) {
        const __global float *xc = x + x_off + (uint)(img * ni + ci) * (up ? XH * XW : H * W);
        const __global float *wc = wl + (uint)ci * (K * K) * no + c0;
        UNROLL
        for (int ky = 0; ky < K; ky++) {
            int iy = oy + ky - P;
            if (iy < 0 || iy >= H) continue;
            const __global float *row = xc + (up ? (iy >> 1) * XW : iy * W);
            /* input-stationary: each input pixel is broadcast once and consumed at once by its
             * K output pixels (a broadcast kept for later makes LLVM spill) */
            lvec wv[K][LCB];
            UNROLL
            for (int kx = 0; kx < K; kx++)
                UNROLL
                for (int b = 0; b < LCB; b++)
                    wv[kx][b] = LVLOAD(0, wc + (ky * K + kx) * no + b * LCV);
            UNROLL
            for (int q = 0; q < LPX + K - 1; q++) {
                int ix = x0 + q - P;
                if (q >= px + K - 1 || (edges && (ix < 0 || ix >= W))) continue;
                lvec xv = (lvec)row[up ? ix >> 1 : ix];
                UNROLL
                for (int kx = 0; kx < K; kx++) {
                    int p = q - kx;
                    if (p < 0 || p >= px) continue;
                    UNROLL
                    for (int b = 0; b < LCB; b++) acc[b][p] = fma(xv, wv[kx][b], acc[b][p]);
                }
            }
        }
    }
}

/* The forward's (bias) or the input gradient's accumulation: only the forward reads an
 * upsampling (UPIN), by phases with UPPH. */
INLINE void lco_accumulate(lvec acc[LCB][LPX], const __global float *x, uint x_off,
                           const __global float *wl, int img, int oy, int c0, const int x0,
                           const int px, const int edges, const int ni, const int no,
                           const int bias)
{
#if UPPH
    if (bias) {
        lco_accumulate_phases(acc, x, x_off, wl, img, oy, c0, x0, px, edges, ni, no);
        return;
    }
#endif
    lco_accumulate_plain(acc, x, x_off, wl, img, oy, c0, x0, px, edges, ni, no, UPIN && bias);
}

/* acc = the bias of channels [c0, c0 + LCB*LCV) (with bias), else 0. */
INLINE void lco_init(lvec acc[LCB][LPX], const __global float *prm, uint b_off, int c0,
                     const int bias)
{
    UNROLL
    for (int b = 0; b < LCB; b++) {
        lvec b0 = bias ? LVLOAD(0, prm + b_off + c0 + b * LCV) : (lvec)0.0f;
        UNROLL
        for (int p = 0; p < LPX; p++) acc[b][p] = b0;
    }
}

/* Pixels [x0, x0 + px) of output row oy (lco_accumulate); with bias the layer's bias and
 * activation are applied. */
INLINE void lco_segment_full(const __global float *x, uint x_off, const __global float *wl,
                        const __global float *prm, uint b_off, __global float *y, uint y_off,
                        __global float *ya, int act, int img, int oy, int c0, const int x0,
                        const int px, const int edges, const int spill, const int ni,
                        const int no, const int bias)
{
    lvec acc[LCB][LPX];
    lco_init(acc, prm, b_off, c0, bias);
    lco_accumulate(acc, x, x_off, wl, img, oy, c0, x0, px, edges, ni, no, bias);
    UNROLL
    for (int b = 0; b < LCB; b++) {
        __global float *out = y + y_off + (uint)((img * no + c0 + b * LCV) * H + oy) * W + x0;
#if (LPX == 7 || LPX == 8) && (LCV == 8 || LCV == 16)
        if (spill) {
            /* 8 x 8 transposes (two for 16 channels): one 8-pixel store per channel instead of
             * a store per value (LCV per 9 * ni FMAs: most of the work of a 1- or 3-channel
             * input). Lanes past px write the next segment's first pixels, which this
             * work-item stores again after. */
            lvec z[8];
            UNROLL
            for (int p = 0; p < 8; p++)
                z[p] = p < LPX ? (bias ? ACT_APPLY(lvec, acc[b][p], act) : acc[b][p]) : (lvec)0.0f;
            UNROLL
            for (int h = 0; h < LCV / 8; h++) {
                float8 r[8], c[8];
                UNROLL
                for (int p = 0; p < 8; p++) r[p] = lvec_half(z[p], h);
                transpose8(r, c);
                UNROLL
                for (int j = 0; j < 8; j++) vstore8(c[j], 0, out + (h * 8 + j) * H * W);
            }
            continue;
        }
#endif
        UNROLL
        for (int p = 0; p < LPX; p++) {
            if (p >= px) continue;
            lvec z = bias ? ACT_APPLY(lvec, acc[b][p], act) : acc[b][p];
            float zs[LCV];
            LVSTORE(z, 0, zs);
            UNROLL
            for (int j = 0; j < LCV; j++) out[j * H * W + p] = zs[j];
        }
    }
}

#if POOLOUT || DXSUM
/* The LPX/2 pooled pixels of one channel block (px conv pixels) at out, out + (H/2)(W/2), ... */
INLINE void pool_store(__global float *out, const lvec m[LPX / 2], const int px)
{
#if LPX == 8 && (LCV == 8 || LCV == 16)
    if (px == LPX) {
        /* 4 pixels x 8 channels transposed (twice for 16): one 4-pixel store per channel */
        UNROLL
        for (int h = 0; h < LCV / 8; h++) {
            float8 r[8], c[8];
            UNROLL
            for (int j = 0; j < 8; j++) r[j] = j < 4 ? lvec_half(m[j], h) : (float8)0.0f;
            transpose8(r, c);
            UNROLL
            for (int j = 0; j < 8; j++) vstore4(c[j].lo, 0, out + (h * 8 + j) * (H / 2) * (W / 2));
        }
        return;
    }
#endif
    UNROLL
    for (int j = 0; j < LPX / 2; j++) {
        if (2 * j >= px) continue;
        float zs[LCV];
        LVSTORE(m[j], 0, zs);
        UNROLL
        for (int i = 0; i < LCV; i++) out[i * (H / 2) * (W / 2) + j] = zs[i];
    }
}

/* Row oy of the 2x2 max pool of the output (with bias: POOLOUT) or of its 2x2 window sums (the
 * input gradient: DXSUM), pixels [x0/2, (x0 + px)/2): conv rows 2oy and 2oy + 1 in turn.
 * The max in dc_maxpool2_forward's order (row 2oy's pixels 2j, 2j + 1, then row 2oy + 1's; a
 * later one wins only when strictly greater), the sum in dc_upsample2_backward's ((2j of both
 * rows) + (2j + 1 of both rows)), so either is the unfused result bit for bit. x0 and px are
 * even; spill is unused. */
INLINE void lco_segment_pair(const __global float *x, uint x_off, const __global float *wl,
                        const __global float *prm, uint b_off, __global float *y, uint y_off,
                        __global float *ya, int act, int img, int oy, int c0, const int x0,
                        const int px, const int edges, const int spill, const int ni,
                        const int no, const int bias)
{
    lvec m[LCB][LPX / 2], a[LCB][LPX / 2]; /* a: which pixel m came from (POOL_ARG) */
    lvec e[LCB][LPX];                      /* the sums: row 2oy */
    UNROLL
    for (int r = 0; r < 2; r++) {
        lvec acc[LCB][LPX];
        lco_init(acc, prm, b_off, c0, bias);
        lco_accumulate(acc, x, x_off, wl, img, 2 * oy + r, c0, x0, px, edges, ni, no, bias);
        UNROLL
        for (int b = 0; b < LCB; b++)
            UNROLL
            for (int j = 0; j < LPX / 2; j++) {
                if (!bias) {
                    if (r)
                        m[b][j] = (e[b][2 * j] + acc[b][2 * j]) + (e[b][2 * j + 1] + acc[b][2 * j + 1]);
                    else
                        e[b][2 * j] = acc[b][2 * j], e[b][2 * j + 1] = acc[b][2 * j + 1];
                    continue;
                }
                lvec u = ACT_APPLY(lvec, acc[b][2 * j], act);
                lvec v = ACT_APPLY(lvec, acc[b][2 * j + 1], act);
                if (r) {
                    a[b][j] = select(a[b][j], (lvec)2.0f, u > m[b][j]);
                    m[b][j] = select(m[b][j], u, u > m[b][j]);
                } else {
                    a[b][j] = (lvec)0.0f;
                    m[b][j] = u;
                }
                a[b][j] = select(a[b][j], (lvec)(2 * r + 1), v > m[b][j]);
                m[b][j] = select(m[b][j], v, v > m[b][j]);
            }
    }
    UNROLL
    for (int b = 0; b < LCB; b++) {
        uint o = y_off + (uint)((img * no + c0 + b * LCV) * (H / 2) + oy) * (W / 2) + x0 / 2;
        pool_store(y + o, m[b], px);
        if (POOL_ARG && bias) pool_store(ya + o - y_off, a[b], px);
    }
}
#endif

/* The forward's segment (bias) or the input gradient's: whole, or reduced over 2x2 windows. */
INLINE void lco_segment(const __global float *x, uint x_off, const __global float *wl,
                        const __global float *prm, uint b_off, __global float *y, uint y_off,
                        __global float *ya, int act, int img, int oy, int c0, const int x0,
                        const int px, const int edges, const int spill, const int ni,
                        const int no, const int bias)
{
#if POOLOUT || DXSUM
    if (bias ? POOLOUT : DXSUM) {
        lco_segment_pair(x, x_off, wl, prm, b_off, y, y_off, ya, act, img, oy, c0, x0, px,
                         edges, spill, ni, no, bias);
        return;
    }
#endif
    lco_segment_full(x, x_off, wl, prm, b_off, y, y_off, ya, act, img, oy, c0, x0, px, edges,
                     spill, ni, no, bias);
}

/* A whole output row: the first and last segments with their borders, a loop over the others
 * (three inlined copies of the segment whatever the width). */
INLINE void lco_row(const __global float *x, uint x_off, const __global float *wl,
                    const __global float *prm, uint b_off, __global float *y, uint y_off,
                    __global float *ya, int act, int img, int oy, int c0, const int ni,
                    const int no, const int bias)
{
    /* spill: every segment but the row's last may store whole 8-pixel vectors (see above):
     * the pixels past its end belong to the next segment, stored after it */
    const int spill = NSEG > 1 && 8 < W;
    lco_segment(x, x_off, wl, prm, b_off, y, y_off, ya, act, img, oy, c0, 0, min(LPX, W), 1,
                spill, ni, no, bias);
    for (int s = 1; s < NSEG - 1; s++)
        lco_segment(x, x_off, wl, prm, b_off, y, y_off, ya, act, img, oy, c0, s * LPX, LPX, 0,
                    spill, ni, no, bias);
    if (NSEG > 1)
        lco_segment(x, x_off, wl, prm, b_off, y, y_off, ya, act, img, oy, c0, (NSEG - 1) * LPX,
                    W - (NSEG - 1) * LPX, 1, 0, ni, no, bias);
}

/* global: (LCO_ROWS(bias), no / (LCB*LCV), nimg) */
#define LCO_ROWS(BIAS) (((BIAS) ? POOLOUT : DXSUM) ? H / 2 : H)
/* ya, ya_off (POOL_ARG): where the forward writes which pixel each window's maximum came from */
#if POOL_ARG
#define LCO_YA_ARGS , __global float *ya, const uint ya_off
#define LCO_YA (ya + ya_off)
#else
#define LCO_YA_ARGS
#define LCO_YA y
#endif
#define LCO_KERNEL(NAME, NI, NO, BIAS)                                                         \
    __kernel void NAME(const __global float *x, const uint x_off, const __global float *wl,    \
                       const uint wl_off, const __global float *prm, const uint b_off,         \
                       __global float *y, const uint y_off, const int nimg,                    \
                       const int act LCO_YA_ARGS)                                              \
    {                                                                                          \
        int oy = get_global_id(0), cb = get_global_id(1), img = get_global_id(2);              \
        if (oy >= LCO_ROWS(BIAS) || cb >= NO / (LCB * LCV) || img >= nimg) return;             \
        lco_row(x, x_off, wl + wl_off, prm, b_off, y, y_off, LCO_YA, act, img, oy,             \
                cb * LCB * LCV, NI, NO, BIAS);                                                 \
    }
#if LCO_FWD && (!DWUP || UPIN)
LCO_KERNEL(conv_fwd_lco, CIN, COUT, 1)
#endif
#if !defined(DC_FWD_ONLY) && LCO_DX
LCO_KERNEL(conv_dx_lco, COUT, CIN, 0)
#endif
#endif /* LCV */

#ifdef DC_TRANSPOSED
/* Zero interleaving for the transposed conv: xu (H x W) holds x (H/2 x W/2) at rows and columns
 * s, s+2, ... and zeros elsewhere. One xu row per work-item, rows = n*c*H. */
__kernel void zero_insert(const __global float *x, const uint x_off, __global float *xu,
                          const uint xu_off, const int rows, const int s)
{
    int r = get_global_id(0);
    if (r >= rows) return;
    const int w = W / 2;
    int plane = r / H, i = r % H;
    __global float *o = xu + xu_off + (uint)r * W;
    if ((i - s) % 2 != 0 || (i - s) / 2 >= H / 2 || i < s) {
        for (int j = 0; j < W; j++) o[j] = 0.0f;
        return;
    }
    const __global float *src = x + x_off + (uint)(plane * (H / 2) + (i - s) / 2) * w;
    const uint16 zl = (uint16)(8, 0, 8, 1, 8, 2, 8, 3, 8, 4, 8, 5, 8, 6, 8, 7); /* s = 1 */
    const uint16 zr = (uint16)(0, 8, 1, 8, 2, 8, 3, 8, 4, 8, 5, 8, 6, 8, 7, 8); /* s = 0 */
    int j = 0;
    for (; j + 8 <= w && 2 * j + 16 + s <= W; j += 8) {
        float8 v = vload8(0, src + j);
        vstore16(shuffle2(v, (float8)0.0f, s ? zl : zr), 0, o + 2 * j);
    }
    for (int q = 2 * j; q < W; q++) {
        int k = q - s;
        o[q] = (k >= 0 && k % 2 == 0 && k / 2 < w) ? src[k / 2] : 0.0f;
    }
}

#ifndef DC_FWD_ONLY
/* dx[n][c][iy][ix] = t[n][c][2iy+s][2ix+s], t being H x W; one dx row per work-item,
 * rows = n*c*(H/2). */
__kernel void subsample2(const __global float *t, const uint t_off, __global float *dx,
                         const uint dx_off, const int rows, const int s)
{
    int r = get_global_id(0);
    if (r >= rows) return;
    const int w = W / 2;
    int plane = r / (H / 2), iy = r % (H / 2);
    const __global float *src = t + t_off + (uint)(plane * H + 2 * iy + s) * W + s;
    __global float *o = dx + dx_off + (uint)r * w;
    int j = 0;
    for (; j + 8 <= w && 2 * j + 16 + s <= W; j += 8) vstore8(vload16(0, src + 2 * j).even, 0, o + j);
    for (; j < w; j++) o[j] = src[2 * j];
}
#endif /* !DC_FWD_ONLY */
#endif /* DC_TRANSPOSED */

#ifndef DC_FWD_ONLY

/* The weight gradient's input: its plane, the offset of row iy in it and of column ix in a row
 * (DWUP: the upsampling's source, read in place) */
#if DWUP
#define DW_XPLANE ((H / 2) * (W / 2))
#define DW_XROW(iy) (((iy) >> 1) * (W / 2))
#define DW_XCOL(ix) ((ix) >> 1)
#else
#define DW_XPLANE (H * W)
#define DW_XROW(iy) ((iy) * W)
#define DW_XCOL(ix) (ix)
#endif

#ifndef CV
/* ------------------------------------------------------------------------------------------ */
/* conv_dw: dW[co][ci][ky][kx] = sum_{n,y,x} dz[n][co][y][x] * x[n][ci][y+ky-P][x+kx-P].
 * Work-item: WCOB output x WCIB input channels (all K*K taps), images [chunk*ipc, +ipc) of the
 * batch. Lanes hold pixel positions; the horizontal sum happens once at the end. With one
 * chunk the result goes straight to dW, else to part[chunk][cout*cin*K*K] for dw_reduce.
 * wflip stores the taps flipped in space (the transposed conv's dW on zero-interleaved x). */
#define NCOB ((COUT + WCOB - 1) / WCOB)
#define NCIB ((CIN + WCIB - 1) / WCIB)

/* Accumulators at the registers' width: with DWN 8 (AVX2) the two halves of a float16 row
 * vector add into one float8, so K*K taps hold K*K registers instead of 2*K*K, which spilled. */
#if defined(DWN) && DWN == 8 && VW == 16
typedef float8 avec;
#define ACC_FMA(d, xs, a) fma((d).hi, (xs).hi, fma((d).lo, (xs).lo, (a)))
#else
typedef vec avec;
#define ACC_FMA(d, xs, a) fma(d, xs, a)
#endif

INLINE float hsum(avec v)
{
#if VW == 16 && !(defined(DWN) && DWN == 8)
    float8 a = v.lo + v.hi;
#else
    float8 a = v;
#endif
    float4 b = a.lo + a.hi;
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

typedef struct {
    avec a[WCOB][WCIB][K][K];
} dw_acc;

INLINE void dw_block(dw_acc *acc, const __global float *x, uint x_off, uint x_end,
                     const __global float *dz, uint dz_off, uint dz_end, int img, int co0,
                     int ci0, const int x0, const int bw, const int fast, const int last)
{
    const int nvb = (bw + VW - 1) / VW;
    /* bases of this image's channel blocks; indices below are relative to them */
    uint xb = x_off + (uint)((img * CIN + ci0) * H) * W, dzb = dz_off + (uint)((img * COUT + co0) * H) * W;
    const __global float *xi = x + xb, *dzi = dz + dzb;
    uint xend = x_end - xb, dzend = dz_end - dzb;
    for (int oy = 0; oy < H; oy++) {
        vec d[WCOB][NV];
        UNROLL
        for (int co = 0; co < WCOB; co++)
            UNROLL
            for (int v = 0; v < NV; v++)
                if (v < nvb)
                    d[co][v] = load_lanes(dzi, (uint)((co * H + oy) * W + x0 + v * VW), dzend,
                                      min(VW, bw - v * VW));
        UNROLL
        for (int ky = 0; ky < K; ky++) {
            int iy = oy + ky - P;
            if (iy < 0 || iy >= H) continue;
            UNROLL
            for (int ci = 0; ci < WCIB; ci++) {
                uint rowi = (uint)((ci * H + iy) * W + x0);
                vec xs[NV][K];
                row_shifts(xi, rowi, xend, x0, bw, xs, fast, last);
                UNROLL
                for (int v = 0; v < NV; v++)
                    UNROLL
                    for (int kx = 0; kx < K; kx++) {
                        if (v >= nvb) continue;
                        UNROLL
                        for (int co = 0; co < WCOB; co++)
                            acc->a[co][ci][ky][kx] =
                                ACC_FMA(d[co][v], xs[v][kx], acc->a[co][ci][ky][kx]);
                    }
            }
        }
    }
}

#if DWUP
/* dw_block of a conv whose input is a 2x upsampling, read in place (DWUP): lanes over source
 * pixels n0 .. n0+bw-1 of a source row (row blocks over the source's width: TW source pixels,
 * the last DW_LW). Output pixel ox = 2n + px meets, at tap kx, source column n + UP_OFF(px, kx)
 * (3x3: px = 0 meets n-1, n, n; px = 1 meets n, n, n+1), so each dz row is split once into its
 * two column parities (even and odd lanes), and each source row is read at offsets -1, 0, +1
 * by unaligned loads (fast) or one value at a time. The same FMAs as over the upsampled tensor,
 * in another order; reading it in place with its shifts (row_shifts_up) took two permutes per
 * 8 lanes and shifted row, and doubled this kernel's time. */
#define UP_OFF(px, kx) (((px) + (kx) - P + 2) / 2 - 1) /* floor((px + kx - P) / 2), K <= 5 */
#define DW_LW (W / 2 - (NXB - 1) * TW)

/* Source row segment at rowi (pixel n0 + v*VW of a row of W/2) shifted by o in {-1, 0, 1},
 * zero outside the row. */
INLINE vec src_shifted(const __global float *xi, uint rowi, const int n0, const int v,
                       const int o, const int fast, const int last)
{
    ivec col = AS_IVEC(IOTA) + (ivec)(n0 + v * VW + o);
    if (!fast) {
        float t[VW];
#pragma unroll 1
        for (int j = 0; j < VW; j++) {
            int c = n0 + v * VW + j + o;
            t[j] = c >= 0 && c < W / 2 ? xi[(int)rowi - n0 + c] : 0.0f;
        }
        return VLOAD(0, t);
    }
    vec raw = VLOAD(0, xi + ((int)rowi + v * VW + o));
    if (v == 0 && o < 0) raw = select((vec)0.0f, raw, col >= (ivec)0);
    if (last) raw = select((vec)0.0f, raw, col < (ivec)(W / 2));
    return raw;
}

INLINE void dw_block_up(dw_acc *acc, const __global float *x, uint x_off, uint x_end,
                        const __global float *dz, uint dz_off, uint dz_end, int img, int co0,
                        int ci0, const int n0, const int bw, const int fast, const int last)
{
    const int nvb = (bw + VW - 1) / VW;
    uint xb = x_off + (uint)((img * CIN + ci0) * DW_XPLANE), dzb = dz_off + (uint)((img * COUT + co0) * H) * W;
    const __global float *xi = x + xb, *dzi = dz + dzb;
    uint dzend = dz_end - dzb;
    for (int oy = 0; oy < H; oy++) {
        vec d[WCOB][NV][2]; /* dz of output pixels 2n + px */
        UNROLL
        for (int co = 0; co < WCOB; co++)
            UNROLL
            for (int v = 0; v < NV; v++) {
                if (v >= nvb) continue;
                int cnt = 2 * min(VW, bw - v * VW); /* output pixels of this vector */
                uint at = (uint)((co * H + oy) * W + 2 * (n0 + v * VW));
                vec a = load_lanes(dzi, at, dzend, min(VW, cnt));
                vec b = cnt > VW ? load_lanes(dzi, at + VW, dzend, cnt - VW) : (vec)0.0f;
                d[co][v][0] = (vec)(a.even, b.even);
                d[co][v][1] = (vec)(a.odd, b.odd);
            }
        UNROLL
        for (int ky = 0; ky < K; ky++) {
            int iy = oy + ky - P;
            if (iy < 0 || iy >= H) continue;
            UNROLL
            for (int ci = 0; ci < WCIB; ci++) {
                uint rowi = (uint)(ci * DW_XPLANE + DW_XROW(iy) + n0);
                UNROLL
                for (int v = 0; v < NV; v++) {
                    if (v >= nvb) continue;
                    UNROLL
                    for (int o = -1; o <= 1; o++) {
                        vec xs = src_shifted(xi, rowi, n0, v, o, fast, last);
                        UNROLL
                        for (int px = 0; px < 2; px++)
                            UNROLL
                            for (int kx = 0; kx < K; kx++) {
                                if (UP_OFF(px, kx) != o) continue;
                                UNROLL
                                for (int co = 0; co < WCOB; co++)
                                    acc->a[co][ci][ky][kx] =
                                        ACC_FMA(d[co][v][px], xs, acc->a[co][ci][ky][kx]);
                            }
                    }
                }
            }
        }
    }
}
#define DW_BLOCK dw_block_up
#else
#define DW_BLOCK dw_block
#define DW_LW LW
#endif

#ifndef DW_POOLED
/* Channel blocks that do not divide the counts: the last block starts early (see rows_block)
 * and stores only its own channels. */
__kernel void conv_dw(const __global float *x, const uint x_off, const uint x_end,
                      const __global float *dz, const uint dz_off, const uint dz_end,
                      __global float *out, const uint out_off, const int nimg, const int ipc,
                      const int wflip)
{
    int g0 = get_global_id(0), chunk = get_global_id(1);
    if (g0 >= NCOB * NCIB) return;
    int cob = g0 / NCIB, cib = g0 % NCIB;
    int co0 = min(cob * WCOB, COUT - WCOB), ci0 = min(cib * WCIB, CIN - WCIB);
    int i0 = chunk * ipc, i1 = min(i0 + ipc, nimg);
    if (i0 >= nimg) return;
    dw_acc acc;
    UNROLL
    for (int co = 0; co < WCOB; co++)
        UNROLL
        for (int ci = 0; ci < WCIB; ci++)
            UNROLL
            for (int ky = 0; ky < K; ky++)
                UNROLL
                for (int kx = 0; kx < K; kx++) acc.a[co][ci][ky][kx] = (avec)0.0f;
    /* unaligned row loads (row_shifts) for every image but the tensor's first and last */
    for (int img = i0; img < i1; img++) {
        if (DW_FAST_OK && img > 0 && img < nimg - 1) {
            for (int xb = 0; xb < NXB - 1; xb++)
                DW_BLOCK(&acc, x, x_off, x_end, dz, dz_off, dz_end, img, co0, ci0, xb * TW, TW,
                         1, 0);
            DW_BLOCK(&acc, x, x_off, x_end, dz, dz_off, dz_end, img, co0, ci0, (NXB - 1) * TW,
                     DW_LW, 1, 1);
        } else {
            for (int xb = 0; xb < NXB - 1; xb++)
                DW_BLOCK(&acc, x, x_off, x_end, dz, dz_off, dz_end, img, co0, ci0, xb * TW, TW,
                         0, 0);
            DW_BLOCK(&acc, x, x_off, x_end, dz, dz_off, dz_end, img, co0, ci0, (NXB - 1) * TW,
                     DW_LW, 0, 1);
        }
    }
    __global float *o = out + out_off + (uint)chunk * (COUT * CIN * K * K);
    UNROLL
    for (int co = 0; co < WCOB; co++) {
        int c_o = co0 + co;
        UNROLL
        for (int ci = 0; ci < WCIB; ci++) {
            int c_i = ci0 + ci;
            if (c_o < cob * WCOB || c_i < cib * WCIB) continue;
            UNROLL
            for (int ky = 0; ky < K; ky++)
                UNROLL
                for (int kx = 0; kx < K; kx++)
                    o[((c_o * CIN + c_i) * K + (wflip ? K - 1 - ky : ky)) * K +
                      (wflip ? K - 1 - kx : kx)] = hsum(acc.a[co][ci][ky][kx]);
        }
    }
}

#else /* DW_POOLED */
/* conv_dw_pooled: the weight and bias gradients of a model's first layer (no input gradient)
 * when a 2x2 max pool follows it, from g, the pool's output gradient [n][COUT][H/2][W/2]: each
 * window's g goes to its first maximum in y (maxpool2_bwd's rule), times act'(y) there. So
 * neither the full-size gradient nor dz is ever written: on the classic model's first layer
 * that replaced three passes over 12.8 MB arrays (maxpool2_bwd, bias_grad, conv_dw).
 * H and W are even. dz rows come in pairs (one pooling row), and each input row that a pair
 * needs is loaded and shifted once for both. */
#if VW == 16
typedef float8 hvec;
typedef int8 ihvec;
#define HVLOAD vload8
#define HLOAD_EXACT load8_exact
#define HIOTA ((int8)(0, 1, 2, 3, 4, 5, 6, 7))
#define ZIP ((uint16)(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15))
#else
typedef float4 hvec;
typedef int4 ihvec;
#define HVLOAD vload4
#define HLOAD_EXACT load4_exact
#define HIOTA ((int4)(0, 1, 2, 3))
#define ZIP ((uint8)(0, 4, 1, 5, 2, 6, 3, 7))
#endif
#if defined(DWN) && DWN == 8 && VW == 16
#define ACC_SUM(d) ((d).lo + (d).hi)
#else
#define ACC_SUM(d) (d)
#endif

/* cnt (<= VW/2) windows' gradients at base[i], the rest zero (as load_lanes). */
INLINE hvec load_half(const __global float *base, uint i, uint end, int cnt)
{
    if (cnt >= VW / 2) return HVLOAD(0, base + i);
    if (i + VW / 2 <= end) return select((hvec)0.0f, HVLOAD(0, base + i), HIOTA < (ihvec)cnt);
    return HLOAD_EXACT(base + i, cnt);
}

/* The output gradient of the two rows t, u of one vector (VW/2 windows a b / c d: even and odd
 * lanes): the window's g to its first maximum, zero elsewhere. */
INLINE void route_pooled(vec t, vec u, hvec g, vec *d0, vec *d1)
{
    hvec m = t.even, b = t.odd, c = u.even, d = u.odd, z = 0.0f;
    ihvec wb = b > m;
    m = select(m, b, wb);
    ihvec wc = c > m;
    m = select(m, c, wc);
    ihvec wd = d > m;
    wc &= ~wd;
    wb &= ~(wc | wd);
    ihvec wa = ~(wb | wc | wd);
    *d0 = shuffle2(select(z, g, wa), select(z, g, wb), ZIP);
    *d1 = shuffle2(select(z, g, wc), select(z, g, wd), ZIP);
}

/* Pooling rows [q0, q1) of one row block; check: test which input rows exist (only the first
 * and last pairs need to: a runtime check between the FMAs spills the accumulators). */
INLINE void dwp_rows(dw_acc *acc, avec *bacc, const __global float *xi, uint xend,
                     const __global float *yi, uint yend, const __global float *gi, uint gend,
                     const __global float *si, uint send, int skip, int act, int q0, int q1,
                     const int x0, const int bw, const int check, const int fast,
                     const int last)
{
    const int nvb = (bw + VW - 1) / VW;
    for (int q = q0; q < q1; q++) {
        vec d[2][WCOB][NV];
        UNROLL
        for (int co = 0; co < WCOB; co++)
            UNROLL
            for (int v = 0; v < NV; v++) {
                if (v >= nvb) continue;
                int cnt = min(VW, bw - v * VW);
#if POOL_ARG
                /* yi: the pool's output, si: which pixel of each window it took (0..3) */
                uint pr = (uint)((co * (H / 2) + q) * (W / 2) + (x0 + v * VW) / 2);
                hvec gp = load_half(gi, pr, gend, cnt / 2), p = load_half(yi, pr, yend, cnt / 2);
                hvec arg = load_half(si, pr, send, cnt / 2), z = 0.0f;
                hvec gd = gp * ACT_GRAD(hvec, p, act);
                d[0][co][v] = shuffle2(select(z, gd, arg == 0.0f), select(z, gd, arg == 1.0f), ZIP);
                d[1][co][v] = shuffle2(select(z, gd, arg == 2.0f), select(z, gd, arg == 3.0f), ZIP);
                bacc[co] += ACC_SUM(d[0][co][v] + d[1][co][v]);
                continue;
#endif
                uint yr = (uint)((co * H + 2 * q) * W + x0 + v * VW);
                vec t = load_lanes(yi, yr, yend, cnt), u = load_lanes(yi, yr + W, yend, cnt);
                hvec g = load_half(gi, (uint)((co * (H / 2) + q) * (W / 2) + (x0 + v * VW) / 2),
                                   gend, cnt / 2);
                vec d0, d1;
                route_pooled(t, u, g, &d0, &d1);
                if (skip) {
                    d0 += load_lanes(si, yr, send, cnt);
                    d1 += load_lanes(si, yr + W, send, cnt);
                }
                d[0][co][v] = d0 * ACT_GRAD(vec, t, act);
                d[1][co][v] = d1 * ACT_GRAD(vec, u, act);
                bacc[co] += ACC_SUM(d[0][co][v] + d[1][co][v]);
            }
        /* input rows 2q-P .. 2q+1+P: row r feeds dz row s (0, 1) at tap ky = r - s */
        UNROLL
        for (int r = 0; r < K + 1; r++) {
            int iy = 2 * q + r - P;
            if (check && (iy < 0 || iy >= H)) continue;
            UNROLL
            for (int ci = 0; ci < WCIB; ci++) {
                uint rowi = (uint)((ci * H + iy) * W + x0);
                vec xs[NV][K];
                row_shifts(xi, rowi, xend, x0, bw, xs, fast, last);
                UNROLL
                for (int v = 0; v < NV; v++)
                    UNROLL
                    for (int kx = 0; kx < K; kx++) {
                        if (v >= nvb) continue;
                        UNROLL
                        for (int s = 0; s < 2; s++) {
                            int ky = r - s;
                            if (ky < 0 || ky >= K) continue;
                            UNROLL
                            for (int co = 0; co < WCOB; co++)
                                acc->a[co][ci][ky][kx] =
                                    ACC_FMA(d[s][co][v], xs[v][kx], acc->a[co][ci][ky][kx]);
                        }
                    }
            }
        }
    }
}

/* Pooling rows whose input rows 2q-P .. 2q+1+P all exist: [QLO, QHI). */
#define QLO ((P + 1) / 2 < H / 2 ? (P + 1) / 2 : H / 2)
#define QHI (H - 2 - P >= 0 && (H - 2 - P) / 2 + 1 > QLO ? (H - 2 - P) / 2 + 1 : QLO)

INLINE void dwp_block(dw_acc *acc, avec *bacc, const __global float *x, uint x_off, uint x_end,
                      const __global float *y, uint y_off, uint y_end, const __global float *g,
                      uint g_off, uint g_end, const __global float *s, uint s_off, uint s_end,
                      int skip, int act, int img, int co0, int ci0, const int x0, const int bw,
                      const int fast, const int last)
{
    uint xb = x_off + (uint)((img * CIN + ci0) * H) * W;
    uint gbi = (uint)((img * COUT + co0) * (H / 2)) * (W / 2), gb = g_off + gbi;
    /* y and s: y's shape, or with POOL_ARG the pool's (as g) */
    uint ybi = POOL_ARG ? gbi : (uint)((img * COUT + co0) * H) * W;
    uint yb = y_off + ybi, sb = s_off + ybi;
    const __global float *xi = x + xb, *yi = y + yb, *gi = g + gb, *si = s + sb;
    uint xe = x_end - xb, ye = y_end - yb, ge = g_end - gb, se = s_end - sb;
    dwp_rows(acc, bacc, xi, xe, yi, ye, gi, ge, si, se, skip, act, 0, QLO, x0, bw, 1, fast, last);
    dwp_rows(acc, bacc, xi, xe, yi, ye, gi, ge, si, se, skip, act, QLO, QHI, x0, bw, 0, fast, last);
    dwp_rows(acc, bacc, xi, xe, yi, ye, gi, ge, si, se, skip, act, QHI, H / 2, x0, bw, 1, fast, last);
}

/* global: (NCOB * NCIB, nchunk); images [chunk*ipc, +ipc). skip != 0: s (y's shape) is the
 * share of the output gradient from a merge's skip path, added before act'. With one chunk dW
 * and db go straight to out + w_off / out + b_off; else out + w_off + chunk * (COUT*CIN*K*K +
 * COUT) holds dW then db for dw_reduce. POOL_ARG: y is the pool's output and s which pixel
 * of each window it took (the pooled forward's), so every window's gradient, times act' of the
 * maximum, goes to that pixel (no skip). */
__kernel void conv_dw_pooled(const __global float *x, const uint x_off, const uint x_end,
                             const __global float *y, const uint y_off, const uint y_end,
                             const __global float *g, const uint g_off, const uint g_end,
                             const __global float *s, const uint s_off, const uint s_end,
                             const int skip, __global float *out, const uint w_off,
                             const uint b_off, const int nimg, const int ipc, const int chunked,
                             const int act)
{
    int g0 = get_global_id(0), chunk = get_global_id(1);
    if (g0 >= NCOB * NCIB) return;
    int cob = g0 / NCIB, cib = g0 % NCIB;
    int co0 = min(cob * WCOB, COUT - WCOB), ci0 = min(cib * WCIB, CIN - WCIB);
    int i0 = chunk * ipc, i1 = min(i0 + ipc, nimg);
    if (i0 >= nimg) return;
    dw_acc acc;
    avec bacc[WCOB];
    UNROLL
    for (int co = 0; co < WCOB; co++) {
        bacc[co] = (avec)0.0f;
        UNROLL
        for (int ci = 0; ci < WCIB; ci++)
            UNROLL
            for (int ky = 0; ky < K; ky++)
                UNROLL
                for (int kx = 0; kx < K; kx++) acc.a[co][ci][ky][kx] = (avec)0.0f;
    }
    /* unaligned row loads (row_shifts) for every image but the tensor's first and last */
    for (int img = i0; img < i1; img++) {
        if (DW_FAST_OK && img > 0 && img < nimg - 1) {
            for (int xb = 0; xb < NXB - 1; xb++)
                dwp_block(&acc, bacc, x, x_off, x_end, y, y_off, y_end, g, g_off, g_end, s,
                          s_off, s_end, skip, act, img, co0, ci0, xb * TW, TW, 1, 0);
            dwp_block(&acc, bacc, x, x_off, x_end, y, y_off, y_end, g, g_off, g_end, s, s_off,
                      s_end, skip, act, img, co0, ci0, (NXB - 1) * TW, LW, 1, 1);
        } else {
            for (int xb = 0; xb < NXB - 1; xb++)
                dwp_block(&acc, bacc, x, x_off, x_end, y, y_off, y_end, g, g_off, g_end, s,
                          s_off, s_end, skip, act, img, co0, ci0, xb * TW, TW, 0, 0);
            dwp_block(&acc, bacc, x, x_off, x_end, y, y_off, y_end, g, g_off, g_end, s, s_off,
                      s_end, skip, act, img, co0, ci0, (NXB - 1) * TW, LW, 0, 1);
        }
    }
    uint base = chunked ? w_off + (uint)chunk * (COUT * CIN * K * K + COUT) : w_off;
    UNROLL
    for (int co = 0; co < WCOB; co++) {
        int c_o = co0 + co;
        if (c_o < cob * WCOB) continue;
        UNROLL
        for (int ci = 0; ci < WCIB; ci++) {
            int c_i = ci0 + ci;
            if (c_i < cib * WCIB) continue;
            UNROLL
            for (int ky = 0; ky < K; ky++)
                UNROLL
                for (int kx = 0; kx < K; kx++)
                    out[base + ((c_o * CIN + c_i) * K + ky) * K + kx] =
                        hsum(acc.a[co][ci][ky][kx]);
        }
        if (cib == 0) out[(chunked ? base + COUT * CIN * K * K : b_off) + c_o] = hsum(bacc[co]);
    }
}
#endif /* DW_POOLED */

#endif /* !CV */

/* ------------------------------------------------------------------------------------------ */
/* Weight gradient for layers with many output channels: lanes over CV = 16 (or 8) output
 * channels instead of pixels. dz_prep (above) writes dz = dy * act'(y) back over dy and a
 * channels-last copy dzt[n][p][CP] (CP = COUT rounded up to 16, zero padded); conv_dwc then
 * adds, for every pixel, one dzt vector times K*K*WCIB broadcast input values: one load per
 * 18 FMAs, against ~1 per FMA for the row form above. It also sums db. */
#ifdef CV
#define HW (H * W)
#define CP (((COUT + 15) / 16) * 16) /* dzt row: channels padded to 16 (transposed in 16x16 tiles) */
#if CV == 16
typedef float16 cvec;
#define CVLOAD vload16
#else
typedef float8 cvec;
#define CVLOAD vload8
#endif

/* Input column ix of one row: each input value x[ci][oy+ky-P][ix] is broadcast once and used
 * right away for its K output pixels ox = ix - kx + P (input-stationary: consuming it at once
 * keeps LLVM from keeping many broadcasts alive and spilling). */
#define DWC_COL(ix_, check, rowcheck)                                                          \
    do {                                                                                       \
        const int ix = (ix_);                                                                  \
        cvec d[K];                                                                             \
        UNROLL                                                                                 \
        for (int kx = 0; kx < K; kx++) {                                                       \
            int ox = ix - kx + P;                                                              \
            if (!(check) || (ox >= 0 && ox < W)) d[kx] = CVLOAD(0, drow + ox * CP);            \
        }                                                                                      \
        bacc += d[P];                                                                          \
        UNROLL                                                                                 \
        for (int ky = 0; ky < K; ky++) {                                                       \
            if ((rowcheck) && !rowok[ky]) continue;                                            \
            UNROLL                                                                             \
            for (int ci = 0; ci < WCIB; ci++) {                                                \
                cvec xv = (cvec)xrow[ky][ci * DW_XPLANE + DW_XCOL(ix)];                        \
                UNROLL                                                                         \
                for (int kx = 0; kx < K; kx++) {                                               \
                    int ox = ix - kx + P;                                                      \
                    if ((check) && (ox < 0 || ox >= W)) continue;                              \
                    acc[ci][ky][kx] = fma(xv, d[kx], acc[ci][ky][kx]);                         \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* Output row oy_ of one image: K input row pointers, then every column (rowcheck: some of the
 * K input rows may lie outside the image). */
#if W <= 64
#define DWC_COLUMNS(rowcheck)                                                                  \
    UNROLL                                                                                     \
    for (int o = 0; o < W; o++) DWC_COL(o, 1, rowcheck)
#else
#define DWC_COLUMNS(rowcheck)                                                                  \
    UNROLL                                                                                     \
    for (int o = 0; o < P; o++) DWC_COL(o, 1, rowcheck);                                       \
    for (int o = P; o < W - P; o++) DWC_COL(o, 0, rowcheck);                                   \
    UNROLL                                                                                     \
    for (int o = W - P; o < W; o++) DWC_COL(o, 1, rowcheck)
#endif
#define DWC_ROW(oy_, rowcheck)                                                                 \
    do {                                                                                       \
        const int oy = (oy_);                                                                  \
        /* drow[ox * CP]: dz of output pixel (oy, ox), lanes = channels cob*CV.. */            \
        const __global float *drow = dzt + dzt_off + ((uint)img * HW + oy * W) * CP + cob * CV; \
        const __global float *xrow[K];                                                         \
        int rowok[K];                                                                          \
        UNROLL                                                                                 \
        for (int ky = 0; ky < K; ky++) {                                                       \
            int iy = oy + ky - P;                                                              \
            rowok[ky] = !(rowcheck) || (iy >= 0 && iy < H);                                    \
            xrow[ky] = ximg + DW_XROW(rowok[ky] ? iy : 0);                                     \
        }                                                                                      \
        DWC_COLUMNS(rowcheck);                                                                 \
    } while (0)
#define DWC_LO (P < H ? P : H)
#define DWC_HI (H - P > DWC_LO ? H - P : DWC_LO)

/* global: (ceil(COUT/CV) * ceil(CIN/WCIB), nchunk); images [chunk*ipc, +ipc).
 * With one chunk dW and db go straight to out + w_off / db + b_off; else part[chunk][...]
 * holds dW (COUT*CIN*K*K) then db (COUT) for dw_reduce. */
__kernel void conv_dwc(const __global float *x, const uint x_off, const __global float *dzt,
                       const uint dzt_off, __global float *out, const uint w_off, const uint b_off, const int nimg,
                       const int ipc, const int chunked, const int wflip)
{
    const int ncib = (CIN + WCIB - 1) / WCIB;
    int g0 = get_global_id(0), chunk = get_global_id(1);
    if (g0 >= ((COUT + CV - 1) / CV) * ncib) return;
    int cob = g0 / ncib, cib = g0 % ncib;
    int ci0 = min(cib * WCIB, CIN - WCIB);
    int i0 = chunk * ipc, i1 = min(i0 + ipc, nimg);
    if (i0 >= nimg) return;
    cvec acc[WCIB][K][K], bacc = 0.0f;
    UNROLL
    for (int ci = 0; ci < WCIB; ci++)
        UNROLL
        for (int ky = 0; ky < K; ky++)
            UNROLL
            for (int kx = 0; kx < K; kx++) acc[ci][ky][kx] = 0.0f;
    for (int img = i0; img < i1; img++) {
        const __global float *ximg = x + x_off + (uint)(img * CIN + ci0) * DW_XPLANE;
        /* The first and last P rows check which input rows exist; the rows between do not:
         * a runtime check there put branches between the FMAs, and LLVM then kept the
         * accumulators on the stack (2x slower). */
        for (int r = 0; r < DWC_LO; r++) DWC_ROW(r, 1);
        for (int r = DWC_LO; r < DWC_HI; r++) DWC_ROW(r, 0);
        for (int r = DWC_HI; r < H; r++) DWC_ROW(r, 1);
    }
    uint base = chunked ? w_off + (uint)chunk * (COUT * CIN * K * K + COUT) : w_off;
    UNROLL
    for (int ci = 0; ci < WCIB; ci++) {
        int c_i = ci0 + ci;
        if (c_i < cib * WCIB) continue;
        UNROLL
        for (int ky = 0; ky < K; ky++)
            UNROLL
            for (int kx = 0; kx < K; kx++)
                UNROLL
                for (int j = 0; j < CV; j++) {
                    int c_o = cob * CV + j;
                    if (c_o < COUT)
                        out[base + ((c_o * CIN + c_i) * K + (wflip ? K - 1 - ky : ky)) * K +
                            (wflip ? K - 1 - kx : kx)] = ((float *)&acc[ci][ky][kx])[j];
                }
    }
    if (cib == 0) {
        uint bb = chunked ? base + COUT * CIN * K * K : b_off;
        UNROLL
        for (int j = 0; j < CV; j++)
            if (cob * CV + j < COUT) out[bb + cob * CV + j] = ((float *)&bacc)[j];
    }
}
#endif /* CV */
#endif /* !DC_FWD_ONLY */
#endif /* DC_CONV */

