/* The non-GEMM parts of the im2col + SGEMM convolution (src/nn/conv_gemm.c, conv_gemm.h):
 * im2col, col2im (gather form: each dx element is written once, no atomics), the forward
 * epilogue (bias + activation, back to NCHW), the activation derivative (which also makes the
 * channel-major copy of dz the GEMMs read) and the bias-gradient reduction.
 *
 * Build options: -DKS=k (odd) -DH=h -DW=w. Channel counts and the number of images are
 * arguments, so one program serves every layer of the same geometry. Offsets are in floats.
 * GEMM-side matrices have one column per pixel of the batch chunk: q = img*H*W + i*W + j,
 * nq = images*H*W columns in all, and work-items run along q (dimension 0), so neighbouring
 * work-items touch neighbouring addresses (coalesced on GPUs).
 *   col[r][q], r = (ci*KS + ky)*KS + kx:  x[img][ci][i+ky-P][j+kx-P] (0 outside the image)
 *   out[co][q], dzt[co][q]:                NCHW's [img][co][pix] with the channel first
 * act as in dc_act / cl/activation.cl: 0 none, 1 relu, 2 sigmoid, 3 leaky (0.3), 4 tanh. */
#define P ((KS - 1) / 2)
#define HW (H * W)
#define LEAKY_SLOPE 0.3f

/* act(z) and act'(z) from y = act(z); keep in step with cl/activation.cl */
#define ACT_APPLY(z, act)                                                                      \
    ((act) == 1   ? fmax((z), 0.0f)                                                            \
     : (act) == 2 ? 1.0f / (1.0f + exp(-(z)))                                                  \
     : (act) == 3 ? ((z) > 0.0f ? (z) : LEAKY_SLOPE * (z))                                     \
     : (act) == 4 ? tanh(z)                                                                    \
                  : (z))
/* tanh' as (1-y)(1+y), not 1-y*y: that cancels near |y| = 1 (8e-5 relative on llvmpipe, which
 * does not contract it into an fma); this is within 2 ulp on every device. */
#define ACT_GRAD(y, act)                                                                       \
    ((act) == 1   ? ((y) > 0.0f ? 1.0f : 0.0f)                                                 \
     : (act) == 2 ? (y) * (1.0f - (y))                                                         \
     : (act) == 3 ? ((y) > 0.0f ? 1.0f : LEAKY_SLOPE)                                          \
     : (act) == 4 ? (1.0f - (y)) * (1.0f + (y))                                                 \
                  : 1.0f)

/* col[(ci*KS+ky)*KS+kx][q] from x (x_off: the chunk's first image). Global (nq, cin). */
__kernel void im2col(const __global float *x, const uint x_off, __global float *col,
                     const uint nq, const int cin)
{
    const uint q = get_global_id(0);
    const int ci = get_global_id(1);
    if (q >= nq || ci >= cin) return;
    const uint img = q / HW, pix = q % HW;
    const int i = pix / W, j = pix % W;
    const __global float *xc = x + x_off + (img * (uint)cin + ci) * HW;
    __global float *c = col + (uint)ci * (KS * KS) * nq + q;
    for (int ky = 0; ky < KS; ky++) {
        const int si = i + ky - P;
        const int row_in = si >= 0 && si < H;
        for (int kx = 0; kx < KS; kx++) {
            const int sj = j + kx - P;
            float v = 0.0f;
            if (row_in && sj >= 0 && sj < W) v = xc[si * W + sj];
            c[(ky * KS + kx) * nq] = v;
        }
    }
}

/* dx[img][ci][i][j] = sum over taps of dcol[(ci*KS+ky)*KS+kx][q'] with q' the pixel the tap
 * read it from: (i+P-ky, j+P-kx). dx_off: the chunk's first image. Global (nq, cin). */
__kernel void col2im(const __global float *dcol, __global float *dx, const uint dx_off,
                     const uint nq, const int cin)
{
    const uint q = get_global_id(0);
    const int ci = get_global_id(1);
    if (q >= nq || ci >= cin) return;
    const uint img = q / HW, pix = q % HW;
    const int i = pix / W, j = pix % W;
    const __global float *d = dcol + (uint)ci * (KS * KS) * nq + img * HW;
    float acc = 0.0f;
    for (int ky = 0; ky < KS; ky++) {
        const int si = i + P - ky;
        if (si < 0 || si >= H) continue;
        for (int kx = 0; kx < KS; kx++) {
            const int sj = j + P - kx;
            if (sj < 0 || sj >= W) continue;
            acc += d[(ky * KS + kx) * nq + si * W + sj];
        }
    }
    dx[dx_off + (img * (uint)cin + ci) * HW + pix] = acc;
}

/* y[img][co][pix] = act(out[co][q] + b[co]) (y_off: the chunk's first image). Global (nq, cout). */
__kernel void bias_act(const __global float *out, const __global float *prm, const uint b_off,
                       __global float *y, const uint y_off, const uint nq, const int cout,
                       const int act)
{
    const uint q = get_global_id(0);
    const int co = get_global_id(1);
    if (q >= nq || co >= cout) return;
    const uint img = q / HW, pix = q % HW;
    const float z = out[(uint)co * nq + q] + prm[b_off + co];
    y[y_off + (img * (uint)cout + co) * HW + pix] = ACT_APPLY(z, act);
}

/* dz = dy * act'(y), written back into dy (NCHW) and into dzt[co][q] for the GEMMs.
 * y_off, dy_off: the chunk's first image. Global (nq, cout). */
__kernel void dz_pack(const __global float *y, const uint y_off, __global float *dy,
                      const uint dy_off, __global float *dzt, const uint nq, const int cout,
                      const int act)
{
    const uint q = get_global_id(0);
    const int co = get_global_id(1);
    if (q >= nq || co >= cout) return;
    const uint img = q / HW, pix = q % HW;
    const uint e = (img * (uint)cout + co) * HW + pix;
    const float g = dy[dy_off + e];
    const float dz = act ? g * ACT_GRAD(y[y_off + e], act) : g;
    if (act) dy[dy_off + e] = dz;
    dzt[(uint)co * nq + q] = dz;
}

/* db[co] = sum over images and pixels of dz[img][co][pix] (overwritten). One work-group of
 * RED_WG work-items per channel: strided partial sums, then a tree in local memory (fixed
 * order: the result is the same every run). Global (RED_WG * cout), local RED_WG. */
#define RED_WG 64
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void bias_grad(const __global float *dz, const uint dz_off, __global float *grads,
               const uint b_off, const int nimg, const int cout)
{
    __local float part[RED_WG];
    const int co = get_group_id(0);
    const int lid = get_local_id(0);
    const uint total = (uint)nimg * HW;
    float s = 0.0f;
    if (co < cout)
        for (uint e = lid; e < total; e += RED_WG) {
            const uint img = e / HW, pix = e % HW;
            s += dz[dz_off + (img * (uint)cout + co) * HW + pix];
        }
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = RED_WG / 2; step > 0; step >>= 1) {
        if (lid < step) part[lid] += part[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0 && co < cout) grads[b_off + co] = part[0];
}
