/* Standalone activations (src/nn/activation.c), element-wise over a flat range of n floats.
 * act as in dc_act, an argument: 0 none, 1 relu, 2 sigmoid, 3 leaky relu (slope 0.3), 4 tanh.
 * Each work-item handles 16 consecutive values (a float16), the last one fewer. */
#define LEAKY_SLOPE 0.3f

/* act(z) and act'(z) from y = act(z), for a scalar or vector type T */
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

/* y = act(x); x and y may be the same range. */
__kernel void act_fwd(const __global float *x, const uint x_off, __global float *y,
                      const uint y_off, const uint n, const int act)
{
    uint i = get_global_id(0) * 16;
    if (i >= n) return;
    if (i + 16 <= n) {
        float16 z = vload16(0, x + x_off + i);
        vstore16(ACT_APPLY(float16, z, act), 0, y + y_off + i);
    } else {
        for (; i < n; i++) {
            float z = x[x_off + i];
            y[y_off + i] = ACT_APPLY(float, z, act);
        }
    }
}

/* dy *= act'(y) */
__kernel void act_bwd(const __global float *y, const uint y_off, __global float *dy,
                      const uint dy_off, const uint n, const int act)
{
    uint i = get_global_id(0) * 16;
    if (i >= n) return;
    if (i + 16 <= n) {
        float16 o = vload16(0, y + y_off + i);
        float16 g = vload16(0, dy + dy_off + i);
        vstore16(g * ACT_GRAD(float16, o, act), 0, dy + dy_off + i);
    } else {
        for (; i < n; i++) {
            float o = y[y_off + i];
            dy[dy_off + i] *= ACT_GRAD(float, o, act);
        }
    }
}

/* The residual head's output: z = x - z (the model's input minus the predicted noise), in place.
 * `unused` keeps the argument list of the kernels above (one host launcher). */
__kernel void residual_out(const __global float *x, const uint x_off, __global float *z,
                           const uint z_off, const uint n, const int unused)
{
    (void)unused;
    uint i = get_global_id(0) * 16;
    if (i >= n) return;
    if (i + 16 <= n) {
        vstore16(vload16(0, x + x_off + i) - vload16(0, z + z_off + i), 0, z + z_off + i);
    } else {
        for (; i < n; i++) z[z_off + i] = x[x_off + i] - z[z_off + i];
    }
}
