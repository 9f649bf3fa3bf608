/* Convolution as im2col + CLBlast SGEMM (conv_gemm.h): shape checks, CLBlast status codes as dc_status, and the enqueueing of cl/im2col.cl around one SGEMM
 * per pass and batch chunk. Nothing here waits for the device. */
#include "daecl/conv_gemm.h"

#include <clblast_c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/kernels.h"
#include "nn/conv_checks.h"

#define IM2COL_FILE "im2col.cl"
#define RED_WG 64 /* work-group size of bias_grad, fixed in cl/im2col.cl */
#define WG 64     /* work-items per group along the pixel dimension of the other kernels */

/* ---- implementation choice --------------------------------------------------------------- */

dc_conv_algo dc_conv_algo_for(const dc_device *dev) { return dev->opts.conv_algo; }

const char *dc_conv_algo_name(dc_conv_algo a)
{
    switch (a) {
    case DC_CONV_DIRECT: return "direct";
    case DC_CONV_GEMM: return "gemm";
    }
    return "?";
}

/* ---- CLBlast status codes ---------------------------------------------------------------- */

/* The CLBlast-specific codes (the others are OpenCL error codes, named by dc_cl_error_name). */
static const struct {
    CLBlastStatusCode code;
    const char *name, *meaning;
} clblast_codes[] = {
    {CLBlastNotImplemented, "kNotImplemented", "routine or option not implemented"},
    {CLBlastInvalidMatrixA, "kInvalidMatrixA", "matrix A is not a valid OpenCL buffer"},
    {CLBlastInvalidMatrixB, "kInvalidMatrixB", "matrix B is not a valid OpenCL buffer"},
    {CLBlastInvalidMatrixC, "kInvalidMatrixC", "matrix C is not a valid OpenCL buffer"},
    {CLBlastInvalidDimension, "kInvalidDimension", "m, n and k must be larger than zero"},
    {CLBlastInvalidLeadDimA, "kInvalidLeadDimA", "leading dimension of A too small"},
    {CLBlastInvalidLeadDimB, "kInvalidLeadDimB", "leading dimension of B too small"},
    {CLBlastInvalidLeadDimC, "kInvalidLeadDimC", "leading dimension of C too small"},
    {CLBlastInsufficientMemoryA, "kInsufficientMemoryA", "buffer of A too small"},
    {CLBlastInsufficientMemoryB, "kInsufficientMemoryB", "buffer of B too small"},
    {CLBlastInsufficientMemoryC, "kInsufficientMemoryC", "buffer of C too small"},
    {CLBlastInsufficientMemoryTemp, "kInsufficientMemoryTemp", "temporary buffer too small"},
    {CLBlastInvalidBatchCount, "kInvalidBatchCount", "batch count must be positive"},
    {CLBlastInvalidOverrideKernel, "kInvalidOverrideKernel", "invalid kernel to override"},
    {CLBlastMissingOverrideParameter, "kMissingOverrideParameter", "missing override parameter"},
    {CLBlastInvalidLocalMemUsage, "kInvalidLocalMemUsage",
     "the tuned kernel needs more local memory than this device has"},
    {CLBlastNoHalfPrecision, "kNoHalfPrecision", "no fp16 on this device"},
    {CLBlastNoDoublePrecision, "kNoDoublePrecision", "no fp64 on this device"},
    {CLBlastInvalidVectorScalar, "kInvalidVectorScalar", "invalid scalar buffer"},
    {CLBlastInsufficientMemoryScalar, "kInsufficientMemoryScalar", "scalar buffer too small"},
    {CLBlastDatabaseError, "kDatabaseError", "no tuning parameters for this device"},
    {CLBlastUnknownError, "kUnknownError", "unspecified error"},
    {CLBlastUnexpectedError, "kUnexpectedError", "unexpected error"},
};

/* Record "<what>: CLBlast <name> (<code>: <meaning>)" and return the matching dc_status. */
static dc_status clblast_fail(CLBlastStatusCode st, const char *what)
{
    if (st > CLBlastNotImplemented) { /* an OpenCL code: CL_OUT_OF_RESOURCES etc. */
        char msg[256];
        snprintf(msg, sizeof msg, "%s: CLBlast", what);
        if (st == CLBlastOpenCLBuildProgramFailure)
            snprintf(msg, sizeof msg, "%s: CLBlast could not compile its kernels for this device",
                     what);
        return dc_cl_fail((cl_int)st, msg);
    }
    for (size_t i = 0; i < sizeof clblast_codes / sizeof clblast_codes[0]; i++) {
        if (clblast_codes[i].code != st) continue;
        dc_status s = DC_ERR_OPENCL;
        if (st == CLBlastInvalidLocalMemUsage || st == CLBlastNotImplemented ||
            st == CLBlastDatabaseError || st == CLBlastNoHalfPrecision ||
            st == CLBlastNoDoublePrecision)
            s = DC_ERR_UNSUPPORTED;
        return dc_fail(s, "%s: CLBlast %s (%d: %s)", what, clblast_codes[i].name, (int)st,
                       clblast_codes[i].meaning);
    }
    return dc_fail(DC_ERR_OPENCL, "%s: CLBlast status %d", what, (int)st);
}

/* ---- checks (as conv2d.c) ---------------------------------------------------------------- */

/* ---- SGEMM (row-major) ------------------------------------------------------------------- */

typedef struct mat {
    cl_mem buf;
    size_t off, ld; /* in floats */
    int trans;
} mat;

/* C[m][n] = A[m][k] * B[k][n] + beta * C, each operand row-major and optionally transposed.
 * CLBlast's temp buffer (padded/transposed copies for its fast kernel) is device scratch, so CLBlast allocates nothing per call. */
static dc_status sgemm(dc_device *dev, size_t m, size_t n, size_t k, mat a, mat b, float beta,
                       mat c, const char *what)
{
    const CLBlastLayout L = CLBlastLayoutRowMajor;
    CLBlastTranspose ta = a.trans ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = b.trans ? CLBlastTransposeYes : CLBlastTransposeNo;
    char op[160];
    snprintf(op, sizeof op, "%s: SGEMM %zux%zux%zu%s%s", what, m, n, k, a.trans ? " A^T" : "",
             b.trans ? " B^T" : "");
    size_t tmp_bytes = 0;
    CLBlastStatusCode st = CLBlastSGemmTempBufferSize(L, ta, tb, m, n, k, a.off, a.ld, b.off,
                                                      b.ld, c.off, c.ld, &dev->queue, &tmp_bytes);
    if (st != CLBlastSuccess) return clblast_fail(st, op);
    if (tmp_bytes == 0) {
        st = CLBlastSgemm(L, ta, tb, m, n, k, 1.0f, a.buf, a.off, a.ld, b.buf, b.off, b.ld, beta,
                          c.buf, c.off, c.ld, &dev->queue, NULL);
    } else {
        cl_mem tmp;
        DC_TRY(dc_device_scratch(dev, DC_SCRATCH_GEMM_TMP, tmp_bytes, &tmp));
        st = CLBlastSgemmWithTempBuffer(L, ta, tb, m, n, k, 1.0f, a.buf, a.off, a.ld, b.buf, b.off,
                                        b.ld, beta, c.buf, c.off, c.ld, &dev->queue, NULL, tmp);
    }
    return st == CLBlastSuccess ? DC_OK : clblast_fail(st, op);
}

/* ---- plan: batch chunks ------------------------------------------------------------------ */

typedef struct gplan {
    int cin, cout, h, w, k;
    size_t kk;      /* GEMM K of the forward: cin*k*k */
    size_t hw;      /* pixels per image */
    int nb, chunks; /* images per chunk, number of chunks */
    char opts[96];
} gplan;

static dc_status plan_make(gplan *p, const dc_device *dev, int n, int cin, int cout, int h, int w,
                           int k, const char *op)
{
    p->cin = cin, p->cout = cout, p->h = h, p->w = w, p->k = k;
    p->kk = (size_t)cin * k * k;
    p->hw = (size_t)h * w;
    size_t rows = p->kk > (size_t)cout ? p->kk : (size_t)cout; /* col or out, the larger */
    size_t per_img = rows * p->hw * sizeof(float);
    size_t cap = DC_CONV_GEMM_SCRATCH_MAX < dev->max_alloc ? DC_CONV_GEMM_SCRATCH_MAX
                                                           : (size_t)dev->max_alloc;
    size_t nb = cap / per_img;
    if (dev->opts.gemm_chunk > 0) nb = (size_t)dev->opts.gemm_chunk; /* tests, tuning */
    if (nb < 1) nb = 1;
    if (nb > (size_t)n) nb = (size_t)n;
    /* nearly equal chunks */
    size_t chunks = ((size_t)n + nb - 1) / nb;
    nb = ((size_t)n + chunks - 1) / chunks;
    if (rows * p->hw * nb > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED,
                       "%s: one image's im2col matrix (%zu x %zu) passes 2^32 floats", op, rows,
                       p->hw);
    p->nb = (int)nb;
    p->chunks = (int)chunks;
    snprintf(p->opts, sizeof p->opts, "-DKS=%d -DH=%d -DW=%d", k, h, w);
    return DC_OK;
}

/* ---- kernel launches --------------------------------------------------------------------- */

static dc_status launch_2d(dc_device *dev, cl_kernel kr, size_t nq, int c, const char *what)
{
    size_t global[2] = {nq, (size_t)c}, local[2] = {WG, 1};
    return dc_launch(dev, kr, 2, global, local, what);
}

/* col[K][nq] from images n0.. of x */
static dc_status launch_im2col(dc_device *dev, const gplan *p, const dc_tensor *x, int n0,
                               cl_uint nq, cl_mem col, const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, IM2COL_FILE, p->opts, "im2col", &kr));
    cl_uint x_off = (cl_uint)(x->off + (size_t)n0 * p->cin * p->hw);
    cl_int cin = p->cin;
    DC_CL(DC_ARG(kr, 0, x->buf), what);
    DC_CL(DC_ARG(kr, 1, x_off), what);
    DC_CL(DC_ARG(kr, 2, col), what);
    DC_CL(DC_ARG(kr, 3, nq), what);
    DC_CL(DC_ARG(kr, 4, cin), what);
    return launch_2d(dev, kr, nq, p->cin, what);
}

static dc_status launch_col2im(dc_device *dev, const gplan *p, cl_mem col, dc_tensor *dx, int n0,
                               cl_uint nq, const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, IM2COL_FILE, p->opts, "col2im", &kr));
    cl_uint dx_off = (cl_uint)(dx->off + (size_t)n0 * p->cin * p->hw);
    cl_int cin = p->cin;
    DC_CL(DC_ARG(kr, 0, col), what);
    DC_CL(DC_ARG(kr, 1, dx->buf), what);
    DC_CL(DC_ARG(kr, 2, dx_off), what);
    DC_CL(DC_ARG(kr, 3, nq), what);
    DC_CL(DC_ARG(kr, 4, cin), what);
    return launch_2d(dev, kr, nq, p->cin, what);
}

static dc_status launch_bias_act(dc_device *dev, const gplan *p, cl_mem out, cl_mem prm,
                                 size_t b_off, dc_tensor *y, int n0, cl_uint nq, dc_act act,
                                 const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, IM2COL_FILE, p->opts, "bias_act", &kr));
    cl_uint bo = (cl_uint)b_off, y_off = (cl_uint)(y->off + (size_t)n0 * p->cout * p->hw);
    cl_int cout = p->cout, a = (cl_int)act;
    DC_CL(DC_ARG(kr, 0, out), what);
    DC_CL(DC_ARG(kr, 1, prm), what);
    DC_CL(DC_ARG(kr, 2, bo), what);
    DC_CL(DC_ARG(kr, 3, y->buf), what);
    DC_CL(DC_ARG(kr, 4, y_off), what);
    DC_CL(DC_ARG(kr, 5, nq), what);
    DC_CL(DC_ARG(kr, 6, cout), what);
    DC_CL(DC_ARG(kr, 7, a), what);
    return launch_2d(dev, kr, nq, p->cout, what);
}

static dc_status launch_dz_pack(dc_device *dev, const gplan *p, const dc_tensor *y, dc_tensor *dy,
                                cl_mem dzt, int n0, cl_uint nq, dc_act act, const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, IM2COL_FILE, p->opts, "dz_pack", &kr));
    size_t skip = (size_t)n0 * p->cout * p->hw;
    cl_uint y_off = (cl_uint)(y->off + skip), dy_off = (cl_uint)(dy->off + skip);
    cl_int cout = p->cout, a = (cl_int)act;
    DC_CL(DC_ARG(kr, 0, y->buf), what);
    DC_CL(DC_ARG(kr, 1, y_off), what);
    DC_CL(DC_ARG(kr, 2, dy->buf), what);
    DC_CL(DC_ARG(kr, 3, dy_off), what);
    DC_CL(DC_ARG(kr, 4, dzt), what);
    DC_CL(DC_ARG(kr, 5, nq), what);
    DC_CL(DC_ARG(kr, 6, cout), what);
    DC_CL(DC_ARG(kr, 7, a), what);
    return launch_2d(dev, kr, nq, p->cout, what);
}

static dc_status launch_bias_grad(dc_device *dev, const gplan *p, const dc_tensor *dz,
                                  cl_mem grads, size_t b_off, const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, IM2COL_FILE, p->opts, "bias_grad", &kr));
    cl_uint dz_off = (cl_uint)dz->off, bo = (cl_uint)b_off;
    cl_int nimg = dz->n, cout = p->cout;
    DC_CL(DC_ARG(kr, 0, dz->buf), what);
    DC_CL(DC_ARG(kr, 1, dz_off), what);
    DC_CL(DC_ARG(kr, 2, grads), what);
    DC_CL(DC_ARG(kr, 3, bo), what);
    DC_CL(DC_ARG(kr, 4, nimg), what);
    DC_CL(DC_ARG(kr, 5, cout), what);
    size_t global[1] = {(size_t)RED_WG * p->cout}, local[1] = {RED_WG};
    return dc_launch(dev, kr, 1, global, local, what);
}

/* ---- conv2d ------------------------------------------------------------------------------ */

dc_status dc_conv2d_gemm_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                                 size_t b_off, int k, dc_act act, dc_tensor *y)
{
    const char *op = "conv2d gemm forward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_k_act(k, act, op));
    DC_TRY(dc_tensor_check_shape(y, x->n, y->c, x->h, x->w, op, "y"));
    DC_TRY(check_params(params, w_off, b_off, (size_t)y->c * x->c * k * k, y->c, op, "params"));
    gplan p;
    DC_TRY(plan_make(&p, dev, x->n, x->c, y->c, x->h, x->w, k, op));
    size_t nq_max = (size_t)p.nb * p.hw;
    cl_mem col, out;
    DC_TRY(dc_device_scratch(dev, DC_SCRATCH_GEMM_COL, p.kk * nq_max * sizeof(float), &col));
    DC_TRY(dc_device_scratch(dev, DC_SCRATCH_GEMM_OUT, (size_t)p.cout * nq_max * sizeof(float), &out));
    for (int n0 = 0; n0 < x->n; n0 += p.nb) {
        int nb = x->n - n0 < p.nb ? x->n - n0 : p.nb;
        cl_uint nq = (cl_uint)((size_t)nb * p.hw);
        DC_TRY(launch_im2col(dev, &p, x, n0, nq, col, op));
        /* out[cout][nq] = W[cout][K] col[K][nq] */
        mat a = {params, w_off, p.kk, 0}, b = {col, 0, nq, 0}, c = {out, 0, nq, 0};
        DC_TRY(sgemm(dev, (size_t)p.cout, nq, p.kk, a, b, 0.0f, c, op));
        DC_TRY(launch_bias_act(dev, &p, out, params, b_off, y, n0, nq, act, op));
    }
    return DC_OK;
}

dc_status dc_conv2d_gemm_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                                  dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                                  size_t b_off, int k, dc_act act, dc_tensor *dx)
{
    const char *op = "conv2d gemm backward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(check_k_act(k, act, op));
    DC_TRY(dc_tensor_check_shape(y, x->n, y->c, x->h, x->w, op, "y"));
    DC_TRY(dc_tensor_check_shape(dy, y->n, y->c, y->h, y->w, op, "dy"));
    if (dx) {
        DC_TRY(dc_tensor_check(dx, op, "dx"));
        DC_TRY(dc_tensor_check_shape(dx, x->n, x->c, x->h, x->w, op, "dx"));
    }
    size_t nw = (size_t)y->c * x->c * k * k;
    DC_TRY(check_params(params, w_off, b_off, nw, y->c, op, "params"));
    DC_TRY(check_params(grads, w_off, b_off, nw, y->c, op, "grads"));
    gplan p;
    DC_TRY(plan_make(&p, dev, x->n, x->c, y->c, x->h, x->w, k, op));
    size_t nq_max = (size_t)p.nb * p.hw;
    cl_mem col, dzt;
    DC_TRY(dc_device_scratch(dev, DC_SCRATCH_GEMM_COL, p.kk * nq_max * sizeof(float), &col));
    DC_TRY(dc_device_scratch(dev, DC_SCRATCH_GEMM_OUT, (size_t)p.cout * nq_max * sizeof(float), &dzt));
    for (int n0 = 0, chunk = 0; n0 < x->n; n0 += p.nb, chunk++) {
        int nb = x->n - n0 < p.nb ? x->n - n0 : p.nb;
        cl_uint nq = (cl_uint)((size_t)nb * p.hw);
        DC_TRY(launch_dz_pack(dev, &p, y, dy, dzt, n0, nq, act, op));
        DC_TRY(launch_im2col(dev, &p, x, n0, nq, col, op));
        /* dW[cout][K] (+)= dzt[cout][nq] col[K][nq]^T: the sum over the chunk's pixels is the
         * GEMM's inner dimension; later chunks add with beta = 1 */
        mat a = {dzt, 0, nq, 0}, b = {col, 0, nq, 1}, c = {grads, w_off, p.kk, 0};
        DC_TRY(sgemm(dev, (size_t)p.cout, p.kk, nq, a, b, chunk ? 1.0f : 0.0f, c, op));
        if (dx) {
            /* dcol[K][nq] = W[cout][K]^T dzt[cout][nq], into col (its GEMM is queued before) */
            mat wt = {params, w_off, p.kk, 1}, dz = {dzt, 0, nq, 0}, dcol = {col, 0, nq, 0};
            DC_TRY(sgemm(dev, p.kk, nq, (size_t)p.cout, wt, dz, 0.0f, dcol, op));
            DC_TRY(launch_col2im(dev, &p, col, dx, n0, nq, op));
        }
    }
    /* db from dz, now in dy */
    return launch_bias_grad(dev, &p, dy, grads, b_off, op);
}
