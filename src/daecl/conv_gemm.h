/* Second implementation of the 2-D convolution of ops.h: im2col + CLBlast SGEMM, for GPUs.
 *
 * The direct kernels of cl/conv2d.cl are register-blocked for CPUs (PoCL); on GPUs the usual
 * fast path is im2col + a vendor-tuned GEMM, and CLBlast is that GEMM. Both implementations
 * have the same contract (see dc_conv2d_forward / dc_conv2d_backward in ops.h: NCHW float32,
 * weights [cout][cin][k][k] at params + w_off, bias at b_off, odd k, stride 1, "same" padding,
 * fused activation; backward overwrites dy with dL/dz and OVERWRITES dW, db (summed over the
 * batch) and dx unless NULL; only enqueues on dev->queue, never waits).
 *
 * GEMM layout: the batch is folded into the GEMM's N dimension, so each pass is ONE large
 * SGEMM instead of many small ones (K = cin*k*k, P = images*h*w of a batch chunk):
 *   forward      out[cout][P]  = W[cout][K]        * col[K][P]      then y = act(out + b)
 *   weight grad  dW[cout][K]   = dzt[cout][P]      * col[K][P]^T    (beta 1 after chunk 0)
 *   input grad   dcol[K][P]    = W[cout][K]^T      * dzt[cout][P]   then col2im (gather)
 * col[(ci*k+ky)*k+kx][img*h*w + i*w + j] = x[img][ci][i+ky-p][j+kx-p] (0 outside), and
 * dzt[co][img*h*w + pix] = dz[img][co][pix] (channel-major copy of dz, made by the same kernel
 * that applies act'). For the 32->32 14x14 layer at batch 128 that is M=32, N=25088, K=288
 * instead of 128 GEMMs of 32x196x288, which GPUs tile far better.
 *
 * Scratch: col/dcol, out/dzt and CLBlast's GEMM temp buffer are the device's scratch
 * (dc_device_scratch: grown on demand, never shrunk, freed with the device; nothing is
 * allocated per call once the largest layer has run). A batch whose col matrix would pass
 * DC_CONV_GEMM_SCRATCH_MAX bytes (or the device's largest allocation) runs in chunks of images;
 * dev->opts.gemm_chunk = n (DAECL_CONV_GEMM_CHUNK) forces chunks of n images (tests, tuning).
 *
 * First use: CLBlast compiles its GEMM kernels for a device the first time a routine runs in a
 * process (a per-process in-memory cache; PoCL's own POCL_CACHE_DIR makes later processes
 * faster). Errors from CLBlast become dc_status with the status name in the detail. */
#ifndef DAECL_CONV_GEMM_H
#define DAECL_CONV_GEMM_H

#include "daecl/ops.h"

/* Largest col (im2col) matrix per chunk, in bytes; the out/dzt matrix is at most as large
 * when cout <= cin*k*k, else proportionally larger. */
#define DC_CONV_GEMM_SCRATCH_MAX ((size_t)128 << 20)

/* The conv implementation for a device: dev->opts.conv_algo (device.h: gemm on GPUs, direct
 * elsewhere, DAECL_CONV=direct|gemm at open overrides). */
dc_conv_algo dc_conv_algo_for(const dc_device *dev);
/* "direct" or "gemm" ("?" otherwise). */
const char *dc_conv_algo_name(dc_conv_algo a);

/* Same arguments and contract as dc_conv2d_forward / dc_conv2d_backward (ops.h). */
dc_status dc_conv2d_gemm_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                                 size_t b_off, int k, dc_act act, dc_tensor *y);
dc_status dc_conv2d_gemm_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                                  dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                                  size_t b_off, int k, dc_act act, dc_tensor *dx);

#endif
