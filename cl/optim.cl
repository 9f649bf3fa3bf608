/* Optimizer updates over flat buffers (formulas and their tf.keras origin in
 * src/daecl/optim.h). One work-item per 8 parameters: a float8 body (one AVX2 register on a
 * CPU) and a scalar tail for the last partial group. Step-dependent scalars (Adam's lr_t) come
 * from the host, so each kernel is built once. State arrays: s0 = st[0, n), s1 = st[n, 2n). */

/* Runs UPDATE(T) with p, g (and s0, s1 when used) loaded as T, then stores them back. */
#define OPT_BODY(NSTATE, UPDATE)                                                  \
    const uint i = get_global_id(0) * 8u;                                         \
    if (i >= n) return;                                                           \
    if (i + 8u <= n) {                                                            \
        float8 p = vload8(0, pb + i), g = vload8(0, gb + i);                      \
        float8 s0 = (NSTATE) > 0 ? vload8(0, sb + i) : (float8)(0.0f);           \
        float8 s1 = (NSTATE) > 1 ? vload8(0, sb + n + i) : (float8)(0.0f);       \
        UPDATE(float8);                                                           \
        vstore8(p, 0, pb + i);                                                    \
        if ((NSTATE) > 0) vstore8(s0, 0, sb + i);                                 \
        if ((NSTATE) > 1) vstore8(s1, 0, sb + n + i);                             \
    } else {                                                                      \
        for (uint j = i; j < n; j++) {                                            \
            float p = pb[j], g = gb[j];                                           \
            float s0 = (NSTATE) > 0 ? sb[j] : 0.0f;                               \
            float s1 = (NSTATE) > 1 ? sb[n + j] : 0.0f;                           \
            UPDATE(float);                                                        \
            pb[j] = p;                                                            \
            if ((NSTATE) > 0) sb[j] = s0;                                         \
            if ((NSTATE) > 1) sb[n + j] = s1;                                     \
        }                                                                         \
    }

/* p -= lr·g */
#define UPD_SGD(T) p -= lr * g
__kernel void opt_sgd(__global float *pb, __global const float *gb, __global float *sb,
                      const uint n, const float lr)
{
    OPT_BODY(0, UPD_SGD)
}

/* s0 = velocity: v = μv - lr·g; p += v, or Nesterov p += μv - lr·g */
#define UPD_SGD_MOM(T)                            \
    s0 = s0 * mu - g * lr;                        \
    p += nesterov ? s0 * mu - g * lr : s0
__kernel void opt_sgd_momentum(__global float *pb, __global const float *gb, __global float *sb,
                               const uint n, const float lr, const float mu, const int nesterov)
{
    OPT_BODY(1, UPD_SGD_MOM)
}

/* s0 = m, s1 = v; lr_t = lr·sqrt(1-β2^t)/(1-β1^t) from the host; ε outside the sqrt. */
#define UPD_ADAM(T)                               \
    s0 += (g - s0) * omb1;                        \
    s1 += (g * g - s1) * omb2;                    \
    p -= (s0 * lr_t) / (sqrt(s1) + eps)
__kernel void opt_adam(__global float *pb, __global const float *gb, __global float *sb,
                       const uint n, const float lr_t, const float omb1, const float omb2,
                       const float eps)
{
    OPT_BODY(2, UPD_ADAM)
}

/* s0 = accumulated g², s1 = accumulated update² */
#define UPD_ADADELTA(T)                                       \
    s0 = s0 * rho + g * g * omr;                              \
    T u = sqrt(s1 + eps) / sqrt(s0 + eps) * g;                \
    p -= u * lr;                                              \
    s1 = s1 * rho + u * u * omr
__kernel void opt_adadelta(__global float *pb, __global const float *gb, __global float *sb,
                           const uint n, const float lr, const float rho, const float omr,
                           const float eps)
{
    OPT_BODY(2, UPD_ADADELTA)
}

/* s0 = mean square, no momentum: p -= lr·g/(sqrt(s)+ε) */
#define UPD_RMSPROP(T)                            \
    s0 = rho * s0 + omr * (g * g);                \
    p -= lr * g / (sqrt(s0) + eps)
__kernel void opt_rmsprop(__global float *pb, __global const float *gb, __global float *sb,
                          const uint n, const float lr, const float rho, const float omr,
                          const float eps)
{
    OPT_BODY(1, UPD_RMSPROP)
}

/* s0 = mean square, s1 = momentum (TF ApplyRMSProp: ε inside the sqrt) */
#define UPD_RMSPROP_MOM(T)                        \
    s0 += (g * g - s0) * omr;                     \
    s1 = s1 * mu + (g * lr) / sqrt(s0 + eps);     \
    p -= s1
__kernel void opt_rmsprop_momentum(__global float *pb, __global const float *gb,
                                   __global float *sb, const uint n, const float lr,
                                   const float omr, const float mu, const float eps)
{
    OPT_BODY(2, UPD_RMSPROP_MOM)
}

/* s0 = accumulator (starts at initial_accumulator) */
#define UPD_ADAGRAD(T)                            \
    s0 += g * g;                                  \
    p -= lr * g / (sqrt(s0) + eps)
__kernel void opt_adagrad(__global float *pb, __global const float *gb, __global float *sb,
                          const uint n, const float lr, const float eps)
{
    OPT_BODY(1, UPD_ADAGRAD)
}
