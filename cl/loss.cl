/* Losses fused with the output activation (see src/daecl/loss.h for the definitions).
 *
 * One work-item per chunk of LOSS_CHUNK consecutive elements of the flat NCHW tensor: it writes
 * the gradient (scaled by 1/count) and/or the activated output, and one partial loss sum into
 * part[po + chunk] (summed over 8 lanes, then the lanes added), which dc_accum_add_partials then
 * adds into the accumulator. float8 body (explicit SIMD, vload8 needs no alignment) with a
 * scalar tail. One kernel per (loss, head) pair, named loss_<loss>_<head> after dc_loss_name and
 * dc_act_name, no build options: one program build.
 *
 * flags: bit 0 write dz, bit 1 write out, bit 2 write the partial sum, bit 3 the residual head
 * (with head none only): the output is x - z, so the loss is of x - z and dz = -dl/dp. */

#define LOSS_CHUNK 256u
#define F_DZ 1u
#define F_OUT 2u
#define F_PART 4u
#define F_RES 8u

/* Sigmoid and its derivative from e = exp(-|z|), exact in form for any z (no overflow):
 * s = 1/(1+e) for z >= 0, e/(1+e) below; s' = e/(1+e)². */
#define SIGMOID_PARTS(T, z, e, r, s)                  \
    T e = exp(-fabs(z));                              \
    T r = (T)1.0f / ((T)1.0f + e);                    \
    T s = select(e * r, r, (z) >= (T)0.0f)

/* Heads: p = head(z) and dp = head'(z), named as dc_act_name(). */
#define LEAKY_SLOPE 0.3f /* DC_LEAKY_SLOPE */
#define HEAD_none(T, z, p, dp)                        \
    T p = z;                                          \
    T dp = (T)1.0f
#define HEAD_sigmoid(T, z, p, dp)                     \
    SIGMOID_PARTS(T, z, e, r, p);                     \
    T dp = e * r * r
/* tanh' = 1 - tanh² cancels where |tanh| is near 1; 4e/(1+e)², e = exp(-2|z|), does not. */
#define HEAD_tanh(T, z, p, dp)                        \
    T p = tanh(z);                                    \
    T e2 = exp((T)-2.0f * fabs(z));                   \
    T r2 = (T)1.0f / ((T)1.0f + e2);                  \
    T dp = (T)4.0f * e2 * r2 * r2
#define HEAD_relu(T, z, p, dp)                        \
    T dp = select((T)0.0f, (T)1.0f, (z) > (T)0.0f);   \
    T p = z * dp
#define HEAD_leaky(T, z, p, dp)                       \
    T dp = select((T)LEAKY_SLOPE, (T)1.0f, (z) > (T)0.0f); \
    T p = z * dp

/* Per element: l the loss, g = dl/dz, p the head's output. BCE ignores HEAD (sigmoid only). */
#define ELEM_BCE(T, HEAD, z, y, l, g, p)              \
    SIGMOID_PARTS(T, z, e, r, p);                     \
    T l = fmax(z, (T)0.0f) - z * y + log1p(e);        \
    T g = p - y

#define ELEM_MSE(T, HEAD, z, y, l, g, p)              \
    HEAD(T, z, p, dp);                                \
    T d = p - y;                                      \
    T l = d * d;                                      \
    T g = (T)2.0f * d * dp

#define ELEM_L1(T, HEAD, z, y, l, g, p)               \
    HEAD(T, z, p, dp);                                \
    T d = p - y;                                      \
    T l = fabs(d);                                    \
    T g = sign(d) * dp

#define LOSS_KERNEL(NAME, ELEM, HEAD)                                                              \
    __kernel void NAME(__global const float *zb, const uint zo, __global const float *yb,       \
                       const uint yo, __global float *dzb, const uint dzo, __global float *ob,  \
                       const uint oo, __global float *part, const uint po, const uint count,    \
                       const float inv_count, const uint flags, __global const float *xb,       \
                       const uint xo)                                                           \
    {                                                                                           \
        const uint chunk = get_global_id(0);                                                    \
        const uint begin = chunk * LOSS_CHUNK;                                                  \
        if (begin >= count) return;                                                             \
        const uint end = min(count - begin, LOSS_CHUNK) + begin;                                \
        const __global float *z = zb + zo, *y = yb + yo, *x = xb + xo;                          \
        __global float *dz = dzb + dzo, *o = ob + oo;                                           \
        float8 acc8 = (float8)(0.0f);                                                           \
        uint i = begin;                                                                         \
        for (; i + 8u <= end; i += 8u) {                                                        \
            float8 zv = vload8(0, z + i), yv = vload8(0, y + i);                                \
            if (flags & F_RES) zv = vload8(0, x + i) - zv;                                      \
            ELEM(float8, HEAD, zv, yv, l, g, p);                                                  \
            if (flags & F_RES) g = -g;                                                          \
            acc8 += l;                                                                          \
            if (flags & F_DZ) vstore8(g * inv_count, 0, dz + i);                                \
            if (flags & F_OUT) vstore8(p, 0, o + i);                                            \
        }                                                                                       \
        float acc1 = 0.0f;                                                                      \
        for (; i < end; i++) {                                                                  \
            float zv = z[i], yv = y[i];                                                         \
            if (flags & F_RES) zv = x[i] - zv;                                                  \
            ELEM(float, HEAD, zv, yv, l, g, p);                                                   \
            if (flags & F_RES) g = -g;                                                          \
            acc1 += l;                                                                          \
            if (flags & F_DZ) dz[i] = g * inv_count;                                            \
            if (flags & F_OUT) o[i] = p;                                                        \
        }                                                                                       \
        if (flags & F_PART) {                                                                   \
            float4 a4 = acc8.lo + acc8.hi;                                                      \
            float2 a2 = a4.lo + a4.hi;                                                          \
            part[po + chunk] = (a2.x + a2.y) + acc1;                                            \
        }                                                                                       \
    }

LOSS_KERNEL(loss_bce_sigmoid, ELEM_BCE, HEAD_sigmoid)
LOSS_KERNEL(loss_mse_none, ELEM_MSE, HEAD_none)
LOSS_KERNEL(loss_mse_sigmoid, ELEM_MSE, HEAD_sigmoid)
LOSS_KERNEL(loss_mse_tanh, ELEM_MSE, HEAD_tanh)
LOSS_KERNEL(loss_mse_relu, ELEM_MSE, HEAD_relu)
LOSS_KERNEL(loss_mse_leaky, ELEM_MSE, HEAD_leaky)
LOSS_KERNEL(loss_l1_none, ELEM_L1, HEAD_none)
LOSS_KERNEL(loss_l1_sigmoid, ELEM_L1, HEAD_sigmoid)
LOSS_KERNEL(loss_l1_tanh, ELEM_L1, HEAD_tanh)
LOSS_KERNEL(loss_l1_relu, ELEM_L1, HEAD_relu)
LOSS_KERNEL(loss_l1_leaky, ELEM_L1, HEAD_leaky)
