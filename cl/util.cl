/* Small utility kernels shared by every model: copies and element-wise arithmetic on flat
 * buffers. Offsets are in floats so one flat buffer can hold many tensors. */

/* y[i] += a * x[i] */
__kernel void axpy_f32(__global float *y, const uint y_off, __global const float *x,
                       const uint x_off, const uint n, const float a)
{
    uint i = get_global_id(0);
    if (i < n) y[y_off + i] += a * x[x_off + i];
}

/* y[i] = x[i] */
__kernel void copy_f32(__global float *y, const uint y_off, __global const float *x,
                       const uint x_off, const uint n)
{
    uint i = get_global_id(0);
    if (i < n) y[y_off + i] = x[x_off + i];
}

/* y[i] = log(p / (1 - p)) with p = clamp(x[i], eps, 1 - eps): scores an image of
 * probabilities (the noisy input) with the loss kernels, which take logits. */
__kernel void logit_f32(__global float *y, const uint y_off, __global const float *x,
                        const uint x_off, const uint n, const float eps)
{
    uint i = get_global_id(0);
    if (i < n) {
        float p = clamp(x[x_off + i], eps, 1.0f - eps);
        y[y_off + i] = log(p) - log1p(-p);
    }
}
