/* Convolution and transposed convolution (ops.h): shape checks, per-shape kernel plans and the
 * enqueueing of cl/conv2d.cl. Nothing here waits for the device.
 *
 * Kernel plans (see cl/conv2d.cl): the "rows" kernels (forward, input gradient) put an image
 * row in the vector lanes (16 lanes, 8 for rows of at most 8 pixels; up to two vectors per row
 * block), and give each work-item as many output channels and rows as fit in a budget of
 * accumulator registers; rows of one vector use the weight-stationary order over 2 rows.
 * Where a direction's output channels fill whole vectors and rows are short (MNIST sizes), the
 * forward and input gradient instead put output channels in the lanes (conv_fwd_lco,
 * conv_dx_lco; lanes_over_out_channels below), from a lane-major copy of the weights that
 * w_lanes writes into the scratch buffer at each call.
 * Weight gradients take lanes over output channels (from a channels-last copy of dz) when the
 * layer has >= 8 outputs and >= 2 inputs, else lanes over pixels; each work-item handles a
 * block of channel pairs over a chunk of the batch (sized for a CPU's L2, or to give a GPU
 * enough work-items), and a second small kernel adds the chunks' partial sums. The transposed
 * conv runs on its output grid (see convT_shift below).
 * Programs: one per layer geometry and use (conv or transposed conv), holding only the kernels
 * its plan launches, and one without options for the geometry-free kernels (bias_grad,
 * dw_reduce, dz_prep, w_lanes, w_lanes_up), so those are compiled once per device.
 *
 * Tuning and testing overrides: the device's options (device.h; DAECL_CONV_DW, _DW_CHUNKS, _WS,
 * _LANES at open). On devices that cut loops short (opts.loop_limit: Mesa llvmpipe) the weight
 * gradient also takes as many batch chunks as keep each work-item's loops below the limit. */
#include "daecl/ops.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/conv_gemm.h"
#include "daecl/kernels.h"
#include "nn/conv_checks.h"

#define CONV_FILE "conv2d.cl"
/* Options of the geometry-free kernels (cl/conv2d.cl without DC_CONV): none, so they share
 * the program of the option-free kernel files (runtime/kernels.c) */
#define CONV_SHARED_OPTS ""


/* ---- checks -------------------------------------------------------------------------------- */

/* ---- scratch and loop limits ------------------------------------------------------------- */

static dc_status scratch_get(dc_device *dev, size_t floats, cl_mem *out)
{
    return dc_device_scratch(dev, DC_SCRATCH_CONV, floats * sizeof(float), out);
}

/* Loop iterations a work-item may run on this device: half the device's limit (the counts
 * below are estimates from the source; a compiler may add loops), or no limit. */
static unsigned long loop_budget(const dc_device *dev)
{
    return dev->opts.loop_limit ? dev->opts.loop_limit / 2 : ULONG_MAX;
}

/* Refuse, with the reason, work whose loops a loop-limited device would silently cut short. */
static dc_status check_loops(const dc_device *dev, unsigned long iters, const char *what)
{
    if (iters <= loop_budget(dev)) return DC_OK;
    return dc_fail(DC_ERR_UNSUPPORTED,
                   "%s: a work-item would run about %lu loop iterations, and %s ends loops "
                   "after %lu (a Mesa llvmpipe limit): use a smaller batch or image, or another "
                   "OpenCL device",
                   what, iters, dev->name, dev->opts.loop_limit);
}

/* ---- plans ------------------------------------------------------------------------------- */

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* Split `total` into ceil(total/most) nearly equal parts of at most `most`; the part size. */
static int even_part(int total, int most)
{
    if (most < 1) most = 1;
    if (total <= most) return total;
    return ceil_div(total, ceil_div(total, most));
}

/* Largest divisor of n not above most (>= 1). */
static size_t divisor_at_most(size_t n, size_t most)
{
    for (size_t d = most < n ? most : n; d > 1; d--)
        if (n % d == 0) return d;
    return 1;
}

static int is_cpu(const dc_device *dev) { return (dev->type & CL_DEVICE_TYPE_CPU) != 0; }

/* Register budgets of the plans, in vectors of the kernels' width (VW or CV floats). */
typedef struct reg_budget {
    int acc;     /* accumulators of a rows work-item (conv_fwd, conv_dx) */
    int dw;      /* accumulators of a weight-gradient work-item */
    int ws_regs; /* registers for the weight-stationary order's shifted rows + accumulators */
    int cv;      /* widest lanes over channels of conv_dwc */
} reg_budget;

/* AVX-512 CPUs and GPUs: 16 of 32 registers hold accumulators, beside the input row, its
 * shifts and the broadcast weights. AVX2 CPUs (native float width 8: 16 registers of 8 floats,
 * a float16 takes two) get half: with the AVX-512 budget every work-item spilled its
 * accumulators, and training the classic model ran 1.44x slower per CPU second (2-core EPYC,
 * PoCL pthread-haswell, alternated runs; budgets 6 to 10 were within noise of each other). */
static reg_budget budget_for(const dc_device *dev)
{
    cl_uint native = 0;
    if (is_cpu(dev) &&
        clGetDeviceInfo(dev->id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof native, &native,
                        NULL) == CL_SUCCESS &&
        native > 0 && native <= 8)
        return (reg_budget){.acc = 8, .dw = 9, .ws_regs = 14, .cv = 8};
    return (reg_budget){.acc = 16, .dw = 18, .ws_regs = 30, .cv = 16};
}

/* dc_launch with the local size shrunk (halved) until the kernel accepts it: GPU drivers lower
 * a kernel's work-group limit when it needs many registers, as these kernels do. */
static dc_status launch(dc_device *dev, cl_kernel k, cl_uint dims, const size_t *global,
                        const size_t *local, const char *what)
{
    size_t loc[3] = {1, 1, 1}, most = 0;
    for (cl_uint i = 0; i < dims; i++) loc[i] = local[i];
    if (clGetKernelWorkGroupInfo(k, dev->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof most, &most,
                                 NULL) == CL_SUCCESS && most > 0)
        while (loc[0] * loc[1] * loc[2] > most && loc[0] > 1) loc[0] = (loc[0] + 1) / 2;
    return dc_launch(dev, k, dims, global, loc, what);
}

/* Work split of one conv layer geometry; the -D options of its program. */
typedef struct conv_plan {
    int cin, cout, h, w, k;
    int vw, nv, nxb;  /* lanes per vector, vectors per row block, row blocks per row */
    int fcob, fry, fws; /* forward: output channels and rows per work-item, loop order */
    int dcob, dry, dws; /* input gradient: the same, with the layer's cin as outputs */
    int wcob, wcib;   /* weight gradient: channel pair block per work-item */
    int cv;           /* >0: weight gradient with lanes over cv output channels (conv_dwc) */
    int lcv, lcb, lpx;   /* >0: lanes over lcv output channels, lcb vectors, lpx-pixel segments */
    int lco_fwd, lco_dx; /* forward / input gradient by conv_fwd_lco / conv_dx_lco */
    int pool_out;        /* the forward writes the 2x2 max pool of its output (CONV_POOLED_OUT,
                          * CONV_FIRST_POOLED_OUT) */
    int upph;            /* an upsampled input's conv in its four phases (cl/conv2d.cl UPPH) */
    int dx_sum;          /* the input gradient summed over 2x2 windows (CONV_UP_GRAD, DXSUM) */
    int ffs;             /* rows forward by unaligned loads (cl/conv2d.cl FFS) */
    char opts[448];
} conv_plan;

static void rows_split(const dc_device *dev, const reg_budget *b, int cout, int h, int nv, int k,
                       int *cob, int *ry, int *ws)
{
    /* Rows of one vector: weight-stationary over 2 rows when the shifted input rows
     * ((2+k-1)*k vectors) fit beside the accumulators in the registers; each weight broadcast
     * then feeds 2 FMAs. Otherwise input-stationary: each input row is consumed at once. */
    *ws = dev->opts.conv_ws && nv == 1 && h >= 2 && (2 + k - 1) * k + b->acc <= b->ws_regs;
    if (*ws) {
        *cob = even_part(cout, b->acc / 2);
        *ry = even_part(h, 2);
        return;
    }
    *cob = even_part(cout, b->acc / nv);
    int r = b->acc / (nv * *cob);
    *ry = even_part(h, r < 1 ? 1 : r);
}

/* Forward and input gradient with lanes over output channels (conv_fwd_lco, conv_dx_lco), where
 * the direction's output channels fill whole blocks of lcb vectors, at every row width
 * (DAECL_CONV_LANES=pixels forces the row kernels).
 * lpx = 7 pixels per segment: 14- and 7-pixel rows split evenly. On the 2-core AVX2 EPYC, PoCL
 * 3.1, alternated in one run: the classic model's 32->32 layers went from 6.6 to 3.3 ms forward
 * and 6.5 to 2.9 ms input gradient at batch 128 (65-80 % of the FMA peak); lcb 1 beat 2 there
 * (16 registers: 7 accumulators, 3 weight vectors, a broadcast). One input channel is no
 * exception: the 1->32 forward at 28x28 went from 1.75-1.85 to 1.44-1.77 ms and the last
 * layer's input gradient (1->32) from 1.55-2.08 to 0.78-1.17 ms (three alternated rounds).
 * Wide rows gain more: these lanes were first kept to rows of at most 32 pixels, unmeasured
 * beyond; measured (two alternated rounds), lifting that limit took the classic model's
 * 32->32 forward at 256x256 from 26 to 13.7 ms, training at 64x64 from 356-366 to 549-562
 * images/s, and the photo setting (unet, 3 channels, 64x64) from 263 to 345-356. */
static void lanes_over_out_channels(conv_plan *p, const dc_device *dev, const reg_budget *b)
{
    p->lcv = p->lcb = p->lpx = p->lco_fwd = p->lco_dx = 0;
    if (dev->opts.conv_lanes == DC_CONV_LANES_PIXELS) return;
    /* One vector of channels per work-item (two work-items a row) where a direction sums over
     * at most 3 channels (a first layer's forward, an output layer's input gradient): there
     * a pixel's 9 or 27 FMAs per vector do not pay for two vectors' accumulators and stores.
     * AVX-512 Zen 4 VM, alternated 3 times: unet (MNIST, batch 128) 1->32 forward 1.8-2.8 ->
     * 0.8-1.0 ms, 32->1 input gradient 1.5-2.4 -> 0.8-1.0 ms; classic first layer (pooled)
     * 1.35-1.64 -> 0.73-1.04 ms; photo recipe's 3->32 forward 1.1-2.0 -> 1.0-1.1 ms. */
    int thin = p->cin <= 3 || p->cout <= 3;
    int lcv = b->cv, lcb = b->cv == 8 || thin ? 1 : 2, blk = lcv * lcb;
    /* a work-item loops over the row's 7-pixel segments times its input channels: on a
     * loop-limited device (llvmpipe), wide rows of many channels take the row kernels */
    unsigned long nseg = (unsigned long)ceil_div(p->w, 7), most = loop_budget(dev);
    p->lco_fwd = p->cout % blk == 0 && nseg * (unsigned long)p->cin <= most;
    p->lco_dx = p->cin % blk == 0 && nseg * (unsigned long)p->cout <= most;
    if (p->lco_fwd || p->lco_dx) p->lcv = lcv, p->lcb = lcb, p->lpx = 7;
}

/* Pixels per channel-lane segment where segments must start at even pixels: a forward that
 * writes the max pool of its output (whole 2x2 windows per segment) and an upsampling's conv in
 * phases (UPPH). 8, for the pool: classic model, batch 512 inference on the
 * 2-core AVX2 EPYC, alternated twice: 11.6-12.1k images/s against 10.6-11.4k for 6 and
 * 9.8-10.0k for 4 (11 accumulators and 3 weights fit 16 registers; 4 pixels per channel store
 * as one vector after the 8x8 transpose). */
#define LPX_EVEN 8

/* What a plan's program serves. */
typedef enum conv_use {
    CONV_PLAIN,        /* a conv layer: forward, input and weight gradients */
    CONV_TRANSPOSED,   /* the stride-2 transposed conv that runs on this (output) grid: the
                        * convT_* kernels instead */
    CONV_FIRST_POOLED, /* a model's first layer with a 2x2 max pool after it: the forward and
                        * conv_dw_pooled, no input gradient (dc_conv2d_pooled_backward) */
    CONV_UPSAMPLED,    /* inference: the forward alone, its input the 2x nearest upsampling of
                        * an h/2 x w/2 tensor read in place (dc_conv2d_upsampled_forward) */
    CONV_POOLED_OUT,   /* inference: the forward alone, writing the 2x2 max pool of its output
                        * (dc_conv2d_maxpool_forward); channel lanes only */
    CONV_FIRST_POOLED_OUT, /* CONV_FIRST_POOLED whose forward writes only the pool's output and
                            * which pixel of each window it took, read by conv_dw_pooled
                            * instead of y (POOL_ARG) */
    CONV_UP_GRAD,      /* training, a conv after a 2x upsampling: CONV_PLAIN, its input gradient
                        * summed over 2x2 windows, the upsampling's backward (DXSUM) */
    CONV_UP_GRAD_IN_PLACE, /* CONV_UP_GRAD whose weight gradient reads the upsampling's input
                            * in place (DWUP); no forward: CONV_UPSAMPLED's runs it */
    CONV_UP_TRAIN,     /* training, both: CONV_UP_GRAD_IN_PLACE's plan with CONV_UPSAMPLED's
                        * forward in the same program, where their shared sizes agree
                        * (up_train_plan): one program lookup less per such layer */
} conv_use;

/* The plan of a conv layer geometry for one use, all but its program's options. */
static void conv_plan_fields(conv_plan *p, const dc_device *dev, int cin, int cout, int h,
                             int w, int k, conv_use use)
{
    int transposed = use == CONV_TRANSPOSED;
    p->cin = cin, p->cout = cout, p->h = h, p->w = w, p->k = k;
    reg_budget b = budget_for(dev);
    p->vw = w <= 8 ? 8 : 16;
    p->nv = w <= p->vw ? 1 : 2;
    p->nxb = ceil_div(w, p->vw * p->nv);
    rows_split(dev, &b, cout, h, p->nv, k, &p->fcob, &p->fry, &p->fws);
    rows_split(dev, &b, cin, h, p->nv, k, &p->dcob, &p->dry, &p->dws);
    /* Lanes over output channels need a channels-last copy of dz (one more pass over it); it
     * pays off when each dz vector meets several input channels, not for a 1-channel input. */
    int lanes_over_channels = cout >= 8 && cin >= 2;
    if (dev->opts.conv_dw == DC_CONV_DW_ROWS) lanes_over_channels = 0;
    if (dev->opts.conv_dw == DC_CONV_DW_CHANNELS) lanes_over_channels = 1;
    if (lanes_over_channels) {
        /* lanes over output channels (conv_dwc): block input channels */
        p->cv = cout <= 8 || b.cv == 8 ? 8 : 16;
        p->wcob = 1;
        p->wcib = even_part(cin, b.dw / (k * k));
    } else {
        /* lanes over pixels (conv_dw); dz rows are cheaper to add than x rows (no shifts):
         * block output channels first */
        p->cv = 0;
        p->wcob = even_part(cout, b.dw / (k * k));
        p->wcib = even_part(cin, b.dw / (k * k * p->wcob));
    }
    if (transposed) {
        p->lcv = p->lcb = p->lpx = p->lco_fwd = p->lco_dx = 0; /* rows kernels only */
    } else {
        lanes_over_out_channels(p, dev, &b);
        if (use == CONV_FIRST_POOLED || use == CONV_FIRST_POOLED_OUT) {
            p->lco_dx = 0; /* no input gradient */
            if (!p->lco_fwd) p->lcv = p->lcb = p->lpx = 0;
        }
    }
    /* The rows forward shifts by unaligned loads where a shifted row feeds few output channels
     * (cl/conv2d.cl FFS): the output layers, whose shuffles cost more than their FMAs. */
    p->ffs = !transposed && !p->lco_fwd && !p->fws && p->fcob <= 4 && !dev->opts.loop_limit;
    /* ... in blocks of at most 4 rows (the AVX-512 budget gave a 1-channel output 7 or 8, 14-16
     * accumulators beside the row's shifts and 9 weight broadcasts). Unet output layer on the
     * AVX-512 Zen 4 VM, conv_fwd alone, alternated 3 times: 28x28 at batch 128 1.80-1.93 ->
     * 1.07-1.12 ms; 64x64 at batch 16 0.93-0.96 -> 0.60-0.80 ms. Phased convs of an upsampling
     * (UPPH, below) keep theirs. */
    if (p->ffs && use != CONV_UPSAMPLED) p->fry = even_part(h, p->fry < 4 ? p->fry : 4);
    /* A 3x3 conv of an upsampling runs in its four phases: 4 FMAs per input channel instead
     * of 9. Classic model, batch 512, the 32->32 conv after the first upsampling (channel
     * lanes), alternated twice (with a test running beside): 24.4-28.6 -> 11.3-14.0 ms. By
     * rows, blocks of even rows. */
    p->upph = use == CONV_UPSAMPLED && (p->lco_fwd || p->ffs) && k == 3 &&
              dev->opts.conv_up_phases;
    if (p->upph && p->lco_fwd) p->lpx = LPX_EVEN;
    if (p->upph && !p->lco_fwd) {
        /* by rows (cl/conv2d.cl rows_block_up): row blocks over the source's pixels, 2 * nv
         * accumulators per output row and channel, blocks of even rows */
        int xw = w / 2;
        p->vw = xw <= 8 ? 8 : 16;
        p->nv = xw <= p->vw ? 1 : 2;
        p->nxb = ceil_div(xw, p->vw * p->nv);
        p->fcob = even_part(cout, b.acc / (4 * p->nv) > 0 ? b.acc / (4 * p->nv) : 1);
        int r = b.acc / (2 * p->nv * p->fcob);
        p->fry = 2 * even_part(h / 2, r / 2 > 0 ? r / 2 : 1);
    }
    p->pool_out = use == CONV_POOLED_OUT && p->lco_fwd && h % 2 == 0 && w % 2 == 0;
    if (use == CONV_POOLED_OUT) {
        p->lco_dx = 0;
        if (p->pool_out) p->lpx = LPX_EVEN;
    }
    /* A conv after an upsampling writes the upsampling's input gradient where its own runs
     * by channel lanes: whole 2x2 windows per segment. */
    p->dx_sum = (use == CONV_UP_GRAD || use == CONV_UP_GRAD_IN_PLACE) && p->lco_dx && h % 2 == 0 &&
                w % 2 == 0;
    if (p->dx_sum) p->lpx = LPX_EVEN;
    /* The weight gradient by pixel lanes of an upsampling read in place (cl/conv2d.cl
     * dw_block_up): row blocks over the source's width (this program has no rows kernels) */
    if (use == CONV_UP_GRAD_IN_PLACE && p->dx_sum && !p->cv) {
        int xw = w / 2;
        p->vw = xw <= 8 ? 8 : 16;
        p->nv = xw <= p->vw ? 1 : 2;
        p->nxb = ceil_div(xw, p->vw * p->nv);
    }
    /* A first layer's training forward writes only its pool's output (and each window's
     * argmax) where it runs by channel lanes. */
    if (use == CONV_FIRST_POOLED_OUT) {
        p->pool_out = p->lco_fwd && p->cv == 0 && h % 2 == 0 && w % 2 == 0;
        if (p->pool_out) p->lpx = LPX_EVEN;
    }
}

/* The program options of plan p for use. */
static void conv_plan_opts(conv_plan *p, const dc_device *dev, conv_use use)
{
    reg_budget b = budget_for(dev);
    int transposed = use == CONV_TRANSPOSED;
    int cin = p->cin, cout = p->cout, h = p->h, w = p->w, k = p->k;
    int accn = p->fcob * p->fry > p->dcob * p->dry ? p->fcob * p->fry : p->dcob * p->dry;
    int n = snprintf(p->opts, sizeof p->opts,
                     "-DDC_CONV -DCIN=%d -DCOUT=%d -DH=%d -DW=%d -DK=%d -DVW=%d -DNV=%d "
                     "-DNXB=%d -DFCOB=%d -DFRY=%d -DFWS=%d -DDCOB=%d -DDRY=%d -DDWS=%d "
                     "-DWCOB=%d -DWCIB=%d -DACCN=%d",
                     cin, cout, h, w, k, p->vw, p->nv, p->nxb, p->fcob, p->fry, p->fws, p->dcob,
                     p->dry, p->dws, p->wcob, p->wcib, accn * p->nv);
    if (p->cv) n += snprintf(p->opts + n, sizeof p->opts - n, " -DCV=%d", p->cv);
    else if (b.cv == 8 && p->vw == 16) n += snprintf(p->opts + n, sizeof p->opts - n, " -DDWN=8");
    if (!p->cv && dev->opts.loop_limit) /* one row path in conv_dw (cl/conv2d.cl DW_FAST) */
        n += snprintf(p->opts + n, sizeof p->opts - n, " -DDW_FAST=0");
    if (p->ffs) n += snprintf(p->opts + n, sizeof p->opts - n, " -DFFS=1");
    if (p->lcv)
        n += snprintf(p->opts + n, sizeof p->opts - n,
                      " -DLCV=%d -DLCB=%d -DLPX=%d -DLCO_FWD=%d -DLCO_DX=%d", p->lcv, p->lcb,
                      p->lpx, p->lco_fwd, p->lco_dx);
    if (transposed) n += snprintf(p->opts + n, sizeof p->opts - n, " -DDC_TRANSPOSED");
    if (use == CONV_FIRST_POOLED || use == CONV_FIRST_POOLED_OUT)
        n += snprintf(p->opts + n, sizeof p->opts - n, " -DDW_POOLED");
    if (use == CONV_FIRST_POOLED_OUT && p->pool_out)
        n += snprintf(p->opts + n, sizeof p->opts - n, " -DPOOL_ARG=1");
    if (p->dx_sum) n += snprintf(p->opts + n, sizeof p->opts - n, " -DDXSUM=1");
    if (p->dx_sum && (use == CONV_UP_GRAD_IN_PLACE || use == CONV_UP_TRAIN))
        n += snprintf(p->opts + n, sizeof p->opts - n, " -DDWUP=1");
    if (use == CONV_UPSAMPLED || use == CONV_UP_TRAIN)
        n += snprintf(p->opts + n, sizeof p->opts - n, " -DUPIN=1");
    if (p->pool_out) n += snprintf(p->opts + n, sizeof p->opts - n, " -DPOOLOUT=1");
    if (p->upph) n += snprintf(p->opts + n, sizeof p->opts - n, " -DUPPH=1");
    if (dev->opts.forward_only || use == CONV_UPSAMPLED || use == CONV_POOLED_OUT)
        snprintf(p->opts + n, sizeof p->opts - n, " -DDC_FWD_ONLY");
}

/* CONV_UP_TRAIN's plan: CONV_UP_GRAD_IN_PLACE's (the backward's lanes, segments and blocks)
 * with CONV_UPSAMPLED's forward (its lanes or rows, phases and row blocks). 0 where the two
 * disagree on what the kernels of both read (the row blocks over the source's width of one
 * against full-width ones of the other), or the backward cannot read the upsampling in place:
 * then each direction keeps its own program. Even segments serve both (the phases and the 2x2
 * sums need them). The classic model: 6 programs, not 8; warm 1-step runs on the Zen 4 VM,
 * 10 alternated: 0.33-0.52 s (median 0.415) -> 0.30-0.45 s (median 0.40). */
static int up_train_plan(conv_plan *p, const dc_device *dev, int cin, int cout, int h, int w,
                         int k)
{
    conv_plan f;
    conv_plan_fields(&f, dev, cin, cout, h, w, k, CONV_UPSAMPLED);
    conv_plan_fields(p, dev, cin, cout, h, w, k, CONV_UP_GRAD_IN_PLACE);
    /* lanes, segments and dW blocks come from the same functions of the same sizes; only the
     * row blocks over the source (rows_block_up, dw_block_up) can differ */
    int ok = !dev->opts.forward_only && p->dx_sum && (f.lco_fwd || f.ffs) && f.vw == p->vw &&
             f.nv == p->nv && f.nxb == p->nxb;
    p->upph = f.upph, p->ffs = f.ffs, p->fcob = f.fcob, p->fry = f.fry, p->fws = f.fws;
    conv_plan_opts(p, dev, CONV_UP_TRAIN);
    return ok;
}

static void conv_plan_make(conv_plan *p, const dc_device *dev, int cin, int cout, int h, int w,
                           int k, conv_use use)
{
    if (use == CONV_UP_TRAIN) {
        up_train_plan(p, dev, cin, cout, h, w, k);
        return;
    }
    conv_plan_fields(p, dev, cin, cout, h, w, k, use);
    conv_plan_opts(p, dev, use);
}

/* A weight copy kernel (w_lanes, w_lanes_up: geometry-free, sizes as arguments) from prm at
 * w_off into out at out_off; dx: for the input gradient. */
static dc_status launch_weight_copy(dc_device *dev, const conv_plan *p, const char *name,
                                    cl_mem prm, size_t w_off, cl_mem out, size_t out_off,
                                    int dx, const char *what)
{
    cl_kernel kw;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, CONV_SHARED_OPTS, name, &kw));
    cl_uint wo = (cl_uint)w_off, oo = (cl_uint)out_off;
    cl_int d = dx, cin = p->cin, cout = p->cout, k = p->k;
    DC_CL(DC_ARG(kw, 0, prm), what);
    DC_CL(DC_ARG(kw, 1, wo), what);
    DC_CL(DC_ARG(kw, 2, out), what);
    DC_CL(DC_ARG(kw, 3, oo), what);
    DC_CL(DC_ARG(kw, 4, d), what);
    DC_CL(DC_ARG(kw, 5, cin), what);
    DC_CL(DC_ARG(kw, 6, cout), what);
    DC_CL(DC_ARG(kw, 7, k), what);
    size_t gw[1] = {(size_t)p->cout * p->cin}, lw[1] = {64}; /* one channel pair per item */
    return launch(dev, kw, 1, gw, lw, what);
}

/* Floats of the lane-major weight copy per (input, output) channel pair: the taps, or the
 * four phases' 2x2 summed weights (w_lanes_up). */
static int lane_weights_per_pair(const conv_plan *p) { return p->upph ? 16 : p->k * p->k; }

/* The rows kernels: conv_fwd, conv_dx, convT_fwd (weights as conv_fwd's: out = the layer's
 * cout channels) and convT_dx (as conv_dx's: out = the layer's cin). */
static dc_status launch_rows(dc_device *dev, const conv_plan *p, const char *name,
                             const dc_tensor *x, cl_mem prm, size_t w_off, size_t b_off,
                             dc_act act, dc_tensor *y, const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, p->opts, name, &kr));
    int to_cin = strstr(name, "_dx") != NULL;
    int cout = to_cin ? p->cin : p->cout, cob = to_cin ? p->dcob : p->fcob;
    int ry = to_cin ? p->dry : p->fry;
    cl_uint x_off = (cl_uint)x->off, x_end = (cl_uint)(x->off + dc_tensor_size(x));
    cl_uint wo = (cl_uint)w_off, bo = (cl_uint)b_off, y_off = (cl_uint)y->off;
    cl_int nimg = x->n, a = (cl_int)act;
    DC_CL(DC_ARG(kr, 0, x->buf), what);
    DC_CL(DC_ARG(kr, 1, x_off), what);
    DC_CL(DC_ARG(kr, 2, x_end), what);
    DC_CL(DC_ARG(kr, 3, prm), what);
    DC_CL(DC_ARG(kr, 4, wo), what);
    DC_CL(DC_ARG(kr, 5, bo), what);
    DC_CL(DC_ARG(kr, 6, y->buf), what);
    DC_CL(DC_ARG(kr, 7, y_off), what);
    DC_CL(DC_ARG(kr, 8, nimg), what);
    DC_CL(DC_ARG(kr, 9, a), what);
    if (p->upph) { /* the forward by phases (rows_block_up), the program's only rows kernel */
        size_t nw = (size_t)p->cout * p->cin * lane_weights_per_pair(p);
        cl_mem wl;
        cl_uint wl_off = 0;
        DC_TRY(scratch_get(dev, nw, &wl));
        DC_TRY(launch_weight_copy(dev, p, "w_lanes_up", prm, w_off, wl, 0, 0, what));
        DC_CL(DC_ARG(kr, 10, wl), what);
        DC_CL(DC_ARG(kr, 11, wl_off), what);
    }
    size_t g0 = (size_t)p->nxb * ceil_div(p->h, ry);
    size_t global[3] = {g0, (size_t)ceil_div(cout, cob), (size_t)x->n};
    size_t local[3] = {divisor_at_most(g0, 32), 1, 1};
    return launch(dev, kr, 3, global, local, what);
}

/* Input bytes per image above which the channel-lane kernels group rows (launch_lco): about
 * half of a CPU core's L2 cache. */
#define LCO_CACHE_BYTES (256u * 1024u)

/* conv_fwd_lco / conv_dx_lco: the lane-major weights (w_lanes) into scratch at s_off, then the
 * rows; dx: the input gradient (the layer's cin channels out, no bias or activation). */
static dc_status launch_lco(dc_device *dev, const conv_plan *p, int dx, const dc_tensor *x,
                            cl_mem prm, size_t w_off, size_t b_off, dc_act act, dc_tensor *y,
                            dc_tensor *pool_arg, cl_mem scratch, size_t s_off, const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, p->opts, dx ? "conv_dx_lco" : "conv_fwd_lco", &kr));
    cl_uint so = (cl_uint)s_off, bo = (cl_uint)b_off;
    /* phases are the forward's (a CONV_UP_TRAIN program holds both directions) */
    DC_TRY(launch_weight_copy(dev, p, p->upph && !dx ? "w_lanes_up" : "w_lanes", prm, w_off,
                              scratch, s_off, dx, what));
    cl_uint x_off = (cl_uint)x->off, y_off = (cl_uint)y->off;
    cl_int nimg = x->n, a = (cl_int)act;
    DC_CL(DC_ARG(kr, 0, x->buf), what);
    DC_CL(DC_ARG(kr, 1, x_off), what);
    DC_CL(DC_ARG(kr, 2, scratch), what);
    DC_CL(DC_ARG(kr, 3, so), what);
    DC_CL(DC_ARG(kr, 4, prm), what);
    DC_CL(DC_ARG(kr, 5, bo), what);
    DC_CL(DC_ARG(kr, 6, y->buf), what);
    DC_CL(DC_ARG(kr, 7, y_off), what);
    DC_CL(DC_ARG(kr, 8, nimg), what);
    DC_CL(DC_ARG(kr, 9, a), what);
    if (pool_arg) { /* POOL_ARG: each window's argmax */
        cl_uint a_off = (cl_uint)pool_arg->off;
        DC_CL(DC_ARG(kr, 10, pool_arg->buf), what);
        DC_CL(DC_ARG(kr, 11, a_off), what);
    }
    int pair = dx ? p->dx_sum : p->pool_out; /* rows of 2x2 windows */
    int no = dx ? p->cin : p->cout, rows = pair ? p->h / 2 : p->h;
    size_t global[3] = {(size_t)rows, (size_t)(no / (p->lcv * p->lcb)), (size_t)x->n};
    size_t local[3] = {(size_t)rows, 1, 1};
    /* On a CPU a work-group runs on one core, its work-items one after another. Where an
     * image's input channels outgrow that core's L2 cache, a group of 2 rows and every channel
     * block reads its 2 + K - 1 input rows from cache for all blocks, instead of one block
     * sweeping the whole image from L3 per group. Classic model, 256x256 inference on the
     * 2-core AVX2 EPYC (alternated): 32->32 layers at 128x128 11.2-11.6 -> 9.3-9.6 ms
     * forward, 93 -> 101 images/s; at 28x28 (fits either way) no change beyond noise. */
    size_t in_bytes = (size_t)x->c * x->h * x->w * sizeof(float);
    if (is_cpu(dev) && in_bytes > LCO_CACHE_BYTES) {
        local[0] = pair ? 1 : 2; /* a pooled row is 2 conv rows */
        local[1] = global[1];
    }
    return launch(dev, kr, 3, global, local, what);
}

/* dz = dy * act'(y) in place, db = sum of dz per channel (geometry-free program). */
static dc_status launch_bias_grad(dc_device *dev, const dc_tensor *y, dc_tensor *dy,
                                  cl_mem grads, size_t b_off, dc_act act, const char *what)
{
    cl_kernel kr;
    unsigned long hw16 = (unsigned long)(y->h * y->w / 16 + y->h * y->w % 16);
    DC_TRY(check_loops(dev, (unsigned long)y->n * hw16, what));
    DC_TRY(dc_kernel_get(dev, CONV_FILE, CONV_SHARED_OPTS, "bias_grad", &kr));
    cl_uint y_off = (cl_uint)y->off, dy_off = (cl_uint)dy->off, bo = (cl_uint)b_off;
    cl_int nimg = y->n, nch = y->c, hw = y->h * y->w, a = (cl_int)act;
    DC_CL(DC_ARG(kr, 0, y->buf), what);
    DC_CL(DC_ARG(kr, 1, y_off), what);
    DC_CL(DC_ARG(kr, 2, dy->buf), what);
    DC_CL(DC_ARG(kr, 3, dy_off), what);
    DC_CL(DC_ARG(kr, 4, grads), what);
    DC_CL(DC_ARG(kr, 5, bo), what);
    DC_CL(DC_ARG(kr, 6, nimg), what);
    DC_CL(DC_ARG(kr, 7, nch), what);
    DC_CL(DC_ARG(kr, 8, hw), what);
    DC_CL(DC_ARG(kr, 9, a), what);
    size_t global[1] = {(size_t)y->c}, local[1] = {1};
    return launch(dev, kr, 1, global, local, what);
}

/* CPU weight gradients: every work-item of a chunk sweeps the chunk's images (dz and x), so a
 * chunk's images should stay in a core's L2 while the chunk's work-items pass over them.
 * 256 KiB: half of the smallest L2 of current x86 cores (OpenCL reports only the last-level
 * cache). On the 2-core Zen 3 EPYC (512 KiB L2), classic model at batch 128, alternated in one
 * run: the 32->32 14x14 weight gradient went from 42-46 % to 57-63 % of the FMA peak with
 * 8 images per chunk instead of the whole batch. */
#define DW_CHUNK_BYTES (256u << 10)

/* Number of batch chunks for a weight-gradient kernel with `items` work-items per chunk,
 * about `per_image` loop iterations per work-item and image, and `image_bytes` of dz and x
 * per image. */
static int dw_chunks(const dc_device *dev, size_t items, unsigned long per_image,
                     size_t image_bytes, int nimg)
{
    long want;
    if (dev->opts.dw_chunks > 0) {
        want = dev->opts.dw_chunks;
    } else {
        size_t target = (size_t)(dev->compute_units ? dev->compute_units : 1) *
                        (is_cpu(dev) ? 4 : 64);
        want = (long)((target + items - 1) / items);
        if (is_cpu(dev) && image_bytes > 0) {
            long per_chunk = (long)(DW_CHUNK_BYTES / image_bytes);
            if (per_chunk < 1) per_chunk = 1;
            if (ceil_div(nimg, (int)per_chunk) > want) want = ceil_div(nimg, (int)per_chunk);
        }
    }
    /* no more images per work-item than a loop-limited device runs to the end */
    unsigned long most = loop_budget(dev) / (per_image ? per_image : 1);
    if (most >= 1 && most < (unsigned long)nimg && ceil_div(nimg, (int)most) > want)
        want = ceil_div(nimg, (int)most);
    if (want < 1) want = 1;
    if (want > nimg) want = nimg;
    int ipc = ceil_div(nimg, (int)want);
    return ceil_div(nimg, ipc); /* no empty chunk */
}

/* dst[dst_off + i] = sum over chunks c of part[part_off + c*stride + i], i < n (dw_reduce of
 * the layer's program). */
static dc_status launch_dw_reduce(dc_device *dev, cl_mem part, size_t part_off,
                                  size_t stride, cl_mem dst, size_t dst_off, size_t n, int chunks,
                                  const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, CONV_SHARED_OPTS, "dw_reduce", &kr));
    cl_uint po = (cl_uint)part_off, st = (cl_uint)stride, d_o = (cl_uint)dst_off, nn = (cl_uint)n;
    cl_int nc = chunks;
    DC_CL(DC_ARG(kr, 0, part), what);
    DC_CL(DC_ARG(kr, 1, po), what);
    DC_CL(DC_ARG(kr, 2, st), what);
    DC_CL(DC_ARG(kr, 3, dst), what);
    DC_CL(DC_ARG(kr, 4, d_o), what);
    DC_CL(DC_ARG(kr, 5, nn), what);
    DC_CL(DC_ARG(kr, 6, nc), what);
    size_t global[1] = {n}, local[1] = {64};
    return launch(dev, kr, 1, global, local, what);
}

/* How the weight gradient of a plan runs over n images, and the scratch it needs. */
typedef struct dw_run {
    size_t items;  /* work-items per chunk */
    int chunks;    /* batch chunks (partial sums in scratch when > 1) */
    size_t ndzt;   /* floats of the channels-last dz copy (conv_dwc) */
    size_t npart;  /* floats of the partial sums */
    size_t nw;     /* weights */
    unsigned long per_image; /* loop iterations per work-item and image (dw_loops_per_image) */
} dw_run;

/* Loop iterations per image of one dW work-item, counted from cl/conv2d.cl as if nothing were
 * unrolled: conv_dwc runs, per row, K row pointers and per pixel K dz loads plus K x WCIB x K
 * FMAs; conv_dw runs, per row block and row, the dz loads and K x WCIB shifted input rows. */
static unsigned long dw_loops_per_image(const conv_plan *p)
{
    unsigned long k = (unsigned long)p->k, h = (unsigned long)p->h, w = (unsigned long)p->w;
    if (p->cv)
        return h * (k + 1 + w * (2 * k + k * p->wcib * (k + 1)));
    unsigned long nv = (unsigned long)p->nv, halo = k - 1;
    return (unsigned long)p->nxb * h *
           (p->wcob * nv + k * (1 + p->wcib * (nv + halo + nv * k * (1 + p->wcob))));
}

static dw_run dw_run_make(const dc_device *dev, const conv_plan *p, int n)
{
    dw_run r;
    r.nw = (size_t)p->cout * p->cin * p->k * p->k;
    r.per_image = dw_loops_per_image(p);
    size_t hw = (size_t)p->h * p->w;
    if (p->cv) {
        r.items = (size_t)ceil_div(p->cout, p->cv) * ceil_div(p->cin, p->wcib);
        r.chunks = dw_chunks(dev, r.items, r.per_image,
                             hw * (size_t)(ceil_div(p->cout, 16) * 16 + p->cin) * sizeof(float), n);
        r.ndzt = (size_t)n * p->h * p->w * (size_t)(ceil_div(p->cout, 16) * 16);
        r.npart = r.chunks > 1 ? (r.nw + p->cout) * r.chunks : 0;
    } else {
        r.items = (size_t)ceil_div(p->cout, p->wcob) * ceil_div(p->cin, p->wcib);
        r.chunks = dw_chunks(dev, r.items, r.per_image,
                             hw * (size_t)(p->cout + p->cin) * sizeof(float), n);
        r.ndzt = 0;
        r.npart = r.chunks > 1 ? r.nw * r.chunks : 0;
    }
    return r;
}

/* dz = dy * act'(y) over dy, then dW (taps flipped when wflip) and db, from input x (the layer
 * input, or its zero-interleaved form for the transposed conv). Uses scratch[s_off, +ndzt+npart). */
static dc_status launch_dw(dc_device *dev, const conv_plan *p, const dw_run *r, const dc_tensor *x,
                           const dc_tensor *y, dc_tensor *dy, cl_mem grads, size_t w_off,
                           size_t b_off, dc_act act, int wflip, cl_mem scratch, size_t s_off,
                           const char *what)
{
    cl_kernel kr;
    int ipc = ceil_div(x->n, r->chunks);
    DC_TRY(check_loops(dev, r->per_image * (unsigned long)ipc, what));
    cl_int nimg = x->n, ipc_ = ipc, wf = wflip, a = (cl_int)act;
    cl_uint x_off = (cl_uint)x->off;
    size_t part = s_off + r->ndzt; /* partial sums after the dz copy */
    if (!p->cv) {
        DC_TRY(launch_bias_grad(dev, y, dy, grads, b_off, act, what));
        DC_TRY(dc_kernel_get(dev, CONV_FILE, p->opts, "conv_dw", &kr));
        cl_mem out = r->chunks > 1 ? scratch : grads;
        cl_uint out_off = (cl_uint)(r->chunks > 1 ? part : w_off);
        cl_uint x_end = (cl_uint)(x->off + dc_tensor_size(x));
        cl_uint dz_off = (cl_uint)dy->off, dz_end = (cl_uint)(dy->off + dc_tensor_size(dy));
        DC_CL(DC_ARG(kr, 0, x->buf), what);
        DC_CL(DC_ARG(kr, 1, x_off), what);
        DC_CL(DC_ARG(kr, 2, x_end), what);
        DC_CL(DC_ARG(kr, 3, dy->buf), what);
        DC_CL(DC_ARG(kr, 4, dz_off), what);
        DC_CL(DC_ARG(kr, 5, dz_end), what);
        DC_CL(DC_ARG(kr, 6, out), what);
        DC_CL(DC_ARG(kr, 7, out_off), what);
        DC_CL(DC_ARG(kr, 8, nimg), what);
        DC_CL(DC_ARG(kr, 9, ipc_), what);
        DC_CL(DC_ARG(kr, 10, wf), what);
        size_t global[2] = {r->items, (size_t)r->chunks}, local[2] = {1, 1};
        DC_TRY(launch(dev, kr, 2, global, local, what));
        if (r->chunks > 1)
            DC_TRY(launch_dw_reduce(dev, scratch, part, r->nw, grads, w_off, r->nw,
                                    r->chunks, what));
        return DC_OK;
    }

    /* lanes over output channels: dz_prep writes the channels-last copy at scratch + s_off */
    int cp = ceil_div(p->cout, 16) * 16, hw = p->h * p->w;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, CONV_SHARED_OPTS, "dz_prep", &kr));
    cl_uint y_off = (cl_uint)y->off, dy_off = (cl_uint)dy->off, dzt_off = (cl_uint)s_off;
    DC_CL(DC_ARG(kr, 0, y->buf), what);
    DC_CL(DC_ARG(kr, 1, y_off), what);
    DC_CL(DC_ARG(kr, 2, dy->buf), what);
    DC_CL(DC_ARG(kr, 3, dy_off), what);
    DC_CL(DC_ARG(kr, 4, scratch), what);
    DC_CL(DC_ARG(kr, 5, dzt_off), what);
    cl_int cout = p->cout, hw_ = hw;
    DC_CL(DC_ARG(kr, 6, nimg), what);
    DC_CL(DC_ARG(kr, 7, cout), what);
    DC_CL(DC_ARG(kr, 8, hw_), what);
    DC_CL(DC_ARG(kr, 9, a), what);
    /* One local size for every geometry (PoCL generates code per local size), and 1: PoCL
     * compiled it in 0.8 s against 1.6 s for 4, and the weight gradient ran as fast. */
    size_t gp[3] = {(size_t)ceil_div(hw, 8), (size_t)cp / 8, (size_t)x->n}, lp[3] = {1, 1, 1};
    DC_TRY(launch(dev, kr, 3, gp, lp, what));

    DC_TRY(dc_kernel_get(dev, CONV_FILE, p->opts, "conv_dwc", &kr));
    cl_mem out = r->chunks > 1 ? scratch : grads;
    cl_uint wo = (cl_uint)(r->chunks > 1 ? part : w_off), bo = (cl_uint)b_off;
    cl_int chunked = r->chunks > 1;
    DC_CL(DC_ARG(kr, 0, x->buf), what);
    DC_CL(DC_ARG(kr, 1, x_off), what);
    DC_CL(DC_ARG(kr, 2, scratch), what);
    DC_CL(DC_ARG(kr, 3, dzt_off), what);
    DC_CL(DC_ARG(kr, 4, out), what);
    DC_CL(DC_ARG(kr, 5, wo), what);
    DC_CL(DC_ARG(kr, 6, bo), what);
    DC_CL(DC_ARG(kr, 7, nimg), what);
    DC_CL(DC_ARG(kr, 8, ipc_), what);
    DC_CL(DC_ARG(kr, 9, chunked), what);
    DC_CL(DC_ARG(kr, 10, wf), what);
    size_t global[2] = {r->items, (size_t)r->chunks}, local[2] = {1, 1};
    DC_TRY(launch(dev, kr, 2, global, local, what));
    if (r->chunks > 1) {
        size_t stride = r->nw + p->cout;
        DC_TRY(launch_dw_reduce(dev, scratch, part, stride, grads, w_off, r->nw,
                                r->chunks, what));
        DC_TRY(launch_dw_reduce(dev, scratch, part + r->nw, stride, grads, b_off,
                                (size_t)p->cout, r->chunks, what));
    }
    return DC_OK;
}

/* ---- conv2d ------------------------------------------------------------------------------ */

/* Channels, an even plane of at least 2x2 and an odd kernel: the shapes the 2x2 folds take. */
static int even_plane(int cin, int cout, int h, int w, int k)
{
    return cin >= 1 && cout >= 1 && h >= 2 && w >= 2 && h % 2 == 0 && w % 2 == 0 && k >= 1 &&
           k % 2 == 1;
}

/* pool_arg: CONV_FIRST_POOLED_OUT's argmax tensor (the pool's shape), else NULL */
static dc_status conv2d_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                                size_t b_off, int k, dc_act act, dc_tensor *y, conv_use use,
                                dc_tensor *pool_arg)
{
    const char *op = "conv2d forward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_k_act(k, act, op));
    /* the conv's plane: y's, the upsampled input's, or twice the pooled y's (x's) */
    int up = use == CONV_UPSAMPLED || use == CONV_UP_TRAIN ? 2 : 1, h = up * x->h, w = up * x->w;
    if (use == CONV_POOLED_OUT || use == CONV_FIRST_POOLED_OUT)
        DC_TRY(dc_tensor_check_shape(y, x->n, y->c, h / 2, w / 2, op, "y"));
    else
        DC_TRY(dc_tensor_check_shape(y, x->n, y->c, h, w, op, "y"));
    DC_TRY(check_params(params, w_off, b_off, (size_t)y->c * x->c * k * k, y->c, op, "params"));
    conv_plan p;
    conv_plan_make(&p, dev, x->c, y->c, h, w, k, use);
    if (p.lco_fwd) {
        cl_mem scratch;
        DC_TRY(scratch_get(dev, (size_t)p.cout * p.cin * lane_weights_per_pair(&p), &scratch));
        return launch_lco(dev, &p, 0, x, params, w_off, b_off, act, y, pool_arg, scratch, 0, op);
    }
    return launch_rows(dev, &p, "conv_fwd", x, params, w_off, b_off, act, y, op);
}

dc_status dc_conv2d_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                            size_t b_off, int k, dc_act act, dc_tensor *y)
{
    /* GPUs take im2col + CLBlast SGEMM, CPUs the direct kernels (DAECL_CONV overrides). */
    if (dc_conv_algo_for(dev) == DC_CONV_GEMM)
        return dc_conv2d_gemm_forward(dev, x, params, w_off, b_off, k, act, y);
    return conv2d_forward(dev, x, params, w_off, b_off, k, act, y, CONV_PLAIN, NULL);
}

/* use: CONV_PLAIN; CONV_UP_GRAD (dx: the upsampling's input gradient, half x's size); or
 * CONV_UP_GRAD_IN_PLACE (x: that upsampling's input, dx its gradient) */
static dc_status conv2d_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                                 dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                                 size_t b_off, int k, dc_act act, dc_tensor *dx, conv_use use)
{
    const char *op = "conv2d backward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(check_k_act(k, act, op));
    /* the conv's plane: y's, x's or twice x's (in place) */
    int up = use == CONV_UP_GRAD_IN_PLACE || use == CONV_UP_TRAIN ? 2 : 1;
    int h = up * x->h, w = up * x->w;
    DC_TRY(dc_tensor_check_shape(y, x->n, y->c, h, w, op, "y"));
    DC_TRY(dc_tensor_check_shape(dy, y->n, y->c, y->h, y->w, op, "dy"));
    int half = use == CONV_PLAIN ? 1 : 2;
    if (dx) {
        DC_TRY(dc_tensor_check(dx, op, "dx"));
        DC_TRY(dc_tensor_check_shape(dx, x->n, x->c, h / half, w / half, op, "dx"));
    }
    size_t nw = (size_t)y->c * x->c * k * k;
    DC_TRY(check_params(params, w_off, b_off, nw, y->c, op, "params"));
    DC_TRY(check_params(grads, w_off, b_off, nw, y->c, op, "grads"));
    conv_plan p;
    conv_plan_make(&p, dev, x->c, y->c, h, w, k, use);
    if (use != CONV_PLAIN && !p.dx_sum)
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: no upsampling's gradient for a %dx%dx%d input on %s",
                       op, x->c, x->h, x->w, dev->name);
    dw_run r = dw_run_make(dev, &p, x->n);
    cl_mem scratch = NULL;
    size_t nwl = dx && p.lco_dx ? nw : 0; /* lane-major weights after dW's scratch */
    if (r.ndzt + r.npart + nwl) DC_TRY(scratch_get(dev, r.ndzt + r.npart + nwl, &scratch));
    DC_TRY(launch_dw(dev, &p, &r, x, y, dy, grads, w_off, b_off, act, 0, scratch, 0, op));
    /* dx = conv(dz, flipped W^T): dz's cout channels in, the layer's cin channels out */
    if (dx && p.lco_dx)
        DC_TRY(launch_lco(dev, &p, 1, dy, params, w_off, 0, DC_ACT_NONE, dx, NULL, scratch,
                          r.ndzt + r.npart, op));
    else if (dx)
        DC_TRY(launch_rows(dev, &p, "conv_dx", dy, params, w_off, 0, DC_ACT_NONE, dx, op));
    return DC_OK;
}

dc_status dc_conv2d_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                             dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                             size_t b_off, int k, dc_act act, dc_tensor *dx)
{
    if (dc_conv_algo_for(dev) == DC_CONV_GEMM)
        return dc_conv2d_gemm_backward(dev, x, y, dy, params, grads, w_off, b_off, k, act, dx);
    return conv2d_backward(dev, x, y, dy, params, grads, w_off, b_off, k, act, dx, CONV_PLAIN);
}

int dc_conv2d_upgrad_fits(const dc_device *dev, int cin, int cout, int h, int w, int k)
{
    if (dc_conv_algo_for(dev) == DC_CONV_GEMM || !dev->opts.conv_up_fold) return 0;
    if (!even_plane(cin, cout, h, w, k)) return 0;
    conv_plan p;
    conv_plan_make(&p, dev, cin, cout, h, w, k, CONV_UP_GRAD);
    return p.dx_sum;
}

int dc_conv2d_upgrad_in_place_fits(const dc_device *dev, int cin, int cout, int h, int w, int k)
{
    return dc_conv2d_upgrad_fits(dev, cin, cout, h, w, k) &&
           dc_conv2d_upsampled_fits(dev, cin, cout, h, w, k);
}

/* The use that reads an upsampling in place in training: both directions in one program where
 * they can share it, else the forward's or the backward's own (fwd). */
static conv_use up_in_place_use(const dc_device *dev, int cin, int cout, int h, int w, int k,
                                int fwd)
{
    conv_plan p;
    if (dc_conv2d_upgrad_in_place_fits(dev, cin, cout, h, w, k) &&
        up_train_plan(&p, dev, cin, cout, h, w, k))
        return CONV_UP_TRAIN;
    return fwd ? CONV_UPSAMPLED : CONV_UP_GRAD_IN_PLACE;
}

/* x (the upsampled input) or src (its source, x NULL): one of them, and src's shape */
static dc_status upgrad_inputs(const dc_tensor *x, const dc_tensor *src, const dc_tensor *y,
                               const char *op)
{
    if (!x && !src) return dc_fail(DC_ERR_INVALID_ARG, "%s: neither x nor src", op);
    if (x) DC_TRY(dc_tensor_check(x, op, "x"));
    if (src) DC_TRY(dc_tensor_check(src, op, "src"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    if (src) DC_TRY(dc_tensor_check_shape(src, y->n, src->c, y->h / 2, y->w / 2, op, "src"));
    return DC_OK;
}

dc_status dc_conv2d_upgrad_forward(dc_device *dev, const dc_tensor *x, const dc_tensor *src,
                                   cl_mem params, size_t w_off, size_t b_off, int k, dc_act act,
                                   dc_tensor *y)
{
    const char *op = "conv2d forward";
    DC_TRY(upgrad_inputs(x, src, y, op));
    const dc_tensor *in = x ? x : src;
    int h = x ? x->h : 2 * src->h, w = x ? x->w : 2 * src->w;
    if (!dc_conv2d_upgrad_fits(dev, in->c, y->c, h, w, k))
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: no upsampling's gradient for a %dx%dx%d input on %s",
                       op, in->c, h, w, dev->name);
    /* From the source in place, as inference does: a 3x3 conv in its four phases does 4/9 of
     * the FMAs and reads a quarter of the bytes. Classic model, batch 128, alternated: the
     * 32->32 conv after the first upsampling 3.2 -> 1.7 ms, the output layer 1.4 -> 0.5 ms. */
    if (src && dc_conv2d_upsampled_fits(dev, src->c, y->c, h, w, k))
        return conv2d_forward(dev, src, params, w_off, b_off, k, act, y,
                              up_in_place_use(dev, src->c, y->c, h, w, k, 1), NULL);
    if (!x)
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: a %dx%dx%d input's upsampling cannot be read in "
                       "place on %s", op, src->c, src->h, src->w, dev->name);
    return conv2d_forward(dev, x, params, w_off, b_off, k, act, y, CONV_UP_GRAD, NULL);
}

dc_status dc_conv2d_upgrad_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *src,
                                    const dc_tensor *y, dc_tensor *dy, cl_mem params,
                                    cl_mem grads, size_t w_off, size_t b_off, int k, dc_act act,
                                    dc_tensor *dsrc)
{
    const char *op = "conv2d backward";
    DC_TRY(upgrad_inputs(x, src, y, op));
    if (x) return conv2d_backward(dev, x, y, dy, params, grads, w_off, b_off, k, act, dsrc, CONV_UP_GRAD);
    if (!dc_conv2d_upgrad_in_place_fits(dev, src->c, y->c, y->h, y->w, k))
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: a %dx%dx%d input's upsampling cannot be read in "
                       "place on %s", op, src->c, src->h, src->w, dev->name);
    return conv2d_backward(dev, src, y, dy, params, grads, w_off, b_off, k, act, dsrc,
                           up_in_place_use(dev, src->c, y->c, y->h, y->w, k, 0));
}

/* ---- a first layer with the max pool after it ----------------------------------------------- */

int dc_conv2d_upsampled_fits(const dc_device *dev, int cin, int cout, int h, int w, int k)
{
    if (dc_conv_algo_for(dev) == DC_CONV_GEMM || !dev->opts.conv_up_fold) return 0;
    if (cin < 1 || cout < 1 || h < 2 || w < 2 || h % 2 || w % 2 || k < 1 || k > 5 || k % 2 == 0)
        return 0;
    conv_plan p;
    conv_plan_make(&p, dev, cin, cout, h, w, k, CONV_UPSAMPLED);
    return p.lco_fwd || p.ffs;
}

dc_status dc_conv2d_upsampled_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                      size_t w_off, size_t b_off, int k, dc_act act, dc_tensor *y)
{
    if (!dc_conv2d_upsampled_fits(dev, x->c, y->c, 2 * x->h, 2 * x->w, k))
        return dc_fail(DC_ERR_UNSUPPORTED,
                       "conv2d upsampled forward: not for a %dx%dx%d input upsampled on %s",
                       x->c, x->h, x->w, dev->name);
    return conv2d_forward(dev, x, params, w_off, b_off, k, act, y, CONV_UPSAMPLED, NULL);
}

int dc_conv2d_maxpool_fits(const dc_device *dev, int cin, int cout, int h, int w, int k)
{
    if (dc_conv_algo_for(dev) == DC_CONV_GEMM || !dev->opts.conv_pool_fold) return 0;
    if (!even_plane(cin, cout, h, w, k)) return 0;
    conv_plan p;
    conv_plan_make(&p, dev, cin, cout, h, w, k, CONV_POOLED_OUT);
    return p.pool_out;
}

dc_status dc_conv2d_maxpool_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                    size_t w_off, size_t b_off, int k, dc_act act, dc_tensor *y)
{
    if (!dc_conv2d_maxpool_fits(dev, x->c, y->c, x->h, x->w, k))
        return dc_fail(DC_ERR_UNSUPPORTED,
                       "conv2d + maxpool forward: not for a %dx%dx%d input on %s", x->c, x->h,
                       x->w, dev->name);
    return conv2d_forward(dev, x, params, w_off, b_off, k, act, y, CONV_POOLED_OUT, NULL);
}

int dc_conv2d_pooled_fits(const dc_device *dev, int cin, int cout, int h, int w, int k)
{
    if (dc_conv_algo_for(dev) == DC_CONV_GEMM || dev->opts.forward_only) return 0;
    if (!even_plane(cin, cout, h, w, k)) return 0;
    conv_plan p;
    conv_plan_make(&p, dev, cin, cout, h, w, k, CONV_FIRST_POOLED);
    return p.cv == 0; /* conv_dw_pooled has lanes over pixels */
}

dc_status dc_conv2d_pooled_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                   size_t w_off, size_t b_off, int k, dc_act act, dc_tensor *y)
{
    if (!dc_conv2d_pooled_fits(dev, x->c, y->c, x->h, x->w, k))
        return dc_fail(DC_ERR_UNSUPPORTED, "conv2d pooled forward: not for a %dx%dx%d input on %s",
                       x->c, x->h, x->w, dev->name);
    return conv2d_forward(dev, x, params, w_off, b_off, k, act, y, CONV_FIRST_POOLED, NULL);
}

int dc_conv2d_pooled_out_fits(const dc_device *dev, int cin, int cout, int h, int w, int k)
{
    if (!dev->opts.conv_pool_fold || !dc_conv2d_pooled_fits(dev, cin, cout, h, w, k)) return 0;
    conv_plan p;
    conv_plan_make(&p, dev, cin, cout, h, w, k, CONV_FIRST_POOLED_OUT);
    return p.pool_out;
}

dc_status dc_conv2d_pooled_out_forward(dc_device *dev, const dc_tensor *x, cl_mem params,
                                       size_t w_off, size_t b_off, int k, dc_act act,
                                       dc_tensor *pooled, dc_tensor *argmax)
{
    const char *op = "conv2d pooled-out forward";
    DC_TRY(dc_tensor_check(pooled, op, "pooled"));
    DC_TRY(dc_tensor_check(argmax, op, "argmax"));
    DC_TRY(dc_tensor_check_shape(argmax, pooled->n, pooled->c, pooled->h, pooled->w, op, "argmax"));
    if (!dc_conv2d_pooled_out_fits(dev, x->c, pooled->c, x->h, x->w, k))
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: not for a %dx%dx%d input on %s", op, x->c, x->h,
                       x->w, dev->name);
    return conv2d_forward(dev, x, params, w_off, b_off, k, act, pooled, CONV_FIRST_POOLED_OUT,
                          argmax);
}

/* conv_dw_pooled from y (and skip), or (argmax != NULL) from the pool's output `y` and argmax */
static dc_status pooled_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                                 const dc_tensor *argmax, const dc_tensor *dpool,
                                 const dc_tensor *skip, cl_mem grads, size_t w_off,
                                 size_t b_off, int k, dc_act act)
{
    const char *op = "conv2d pooled backward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(dc_tensor_check(dpool, op, "dpool"));
    DC_TRY(check_k_act(k, act, op));
    int cout = dpool->c;
    DC_TRY(dc_tensor_check_shape(dpool, x->n, cout, x->h / 2, x->w / 2, op, "dpool"));
    if (argmax) {
        DC_TRY(dc_tensor_check(argmax, op, "argmax"));
        DC_TRY(dc_tensor_check_shape(y, x->n, cout, x->h / 2, x->w / 2, op, "pooled"));
        DC_TRY(dc_tensor_check_shape(argmax, x->n, cout, x->h / 2, x->w / 2, op, "argmax"));
    } else {
        DC_TRY(dc_tensor_check_shape(y, x->n, cout, x->h, x->w, op, "y"));
    }
    if (skip) {
        DC_TRY(dc_tensor_check(skip, op, "skip"));
        DC_TRY(dc_tensor_check_shape(skip, x->n, cout, x->h, x->w, op, "skip"));
    }
    int fits = argmax ? dc_conv2d_pooled_out_fits(dev, x->c, cout, x->h, x->w, k)
                      : dc_conv2d_pooled_fits(dev, x->c, cout, x->h, x->w, k);
    if (!fits)
        return dc_fail(DC_ERR_UNSUPPORTED, "%s: not for a %dx%dx%d input on %s", op, x->c, x->h,
                       x->w, dev->name);
    size_t nw = (size_t)cout * x->c * k * k;
    DC_TRY(check_params(grads, w_off, b_off, nw, cout, op, "grads"));
    conv_plan p;
    conv_plan_make(&p, dev, x->c, cout, x->h, x->w, k,
                   argmax ? CONV_FIRST_POOLED_OUT : CONV_FIRST_POOLED);
    dw_run r = dw_run_make(dev, &p, x->n);
    int ipc = ceil_div(x->n, r.chunks);
    DC_TRY(check_loops(dev, r.per_image * (unsigned long)ipc, op));
    size_t stride = r.nw + (size_t)p.cout; /* a chunk's partial dW, then db */
    cl_mem out = grads;
    if (r.chunks > 1) DC_TRY(scratch_get(dev, stride * r.chunks, &out));
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, p.opts, "conv_dw_pooled", &kr));
    cl_uint x_off = (cl_uint)x->off, x_end = (cl_uint)(x->off + dc_tensor_size(x));
    cl_uint y_off = (cl_uint)y->off, y_end = (cl_uint)(y->off + dc_tensor_size(y));
    cl_uint g_off = (cl_uint)dpool->off, g_end = (cl_uint)(dpool->off + dc_tensor_size(dpool));
    const dc_tensor *s = argmax ? argmax : skip ? skip : y; /* y: not read */
    cl_uint s_off = (cl_uint)s->off, s_end = (cl_uint)(s->off + dc_tensor_size(s));
    cl_int has_skip = skip != NULL;
    cl_uint wo = (cl_uint)(r.chunks > 1 ? 0 : w_off), bo = (cl_uint)b_off;
    cl_int nimg = x->n, ipc_ = ipc, chunked = r.chunks > 1, a = (cl_int)act;
    DC_CL(DC_ARG(kr, 0, x->buf), op);
    DC_CL(DC_ARG(kr, 1, x_off), op);
    DC_CL(DC_ARG(kr, 2, x_end), op);
    DC_CL(DC_ARG(kr, 3, y->buf), op);
    DC_CL(DC_ARG(kr, 4, y_off), op);
    DC_CL(DC_ARG(kr, 5, y_end), op);
    DC_CL(DC_ARG(kr, 6, dpool->buf), op);
    DC_CL(DC_ARG(kr, 7, g_off), op);
    DC_CL(DC_ARG(kr, 8, g_end), op);
    DC_CL(DC_ARG(kr, 9, s->buf), op);
    DC_CL(DC_ARG(kr, 10, s_off), op);
    DC_CL(DC_ARG(kr, 11, s_end), op);
    DC_CL(DC_ARG(kr, 12, has_skip), op);
    DC_CL(DC_ARG(kr, 13, out), op);
    DC_CL(DC_ARG(kr, 14, wo), op);
    DC_CL(DC_ARG(kr, 15, bo), op);
    DC_CL(DC_ARG(kr, 16, nimg), op);
    DC_CL(DC_ARG(kr, 17, ipc_), op);
    DC_CL(DC_ARG(kr, 18, chunked), op);
    DC_CL(DC_ARG(kr, 19, a), op);
    size_t global[2] = {r.items, (size_t)r.chunks}, local[2] = {1, 1};
    DC_TRY(launch(dev, kr, 2, global, local, op));
    if (r.chunks > 1) {
        DC_TRY(launch_dw_reduce(dev, out, 0, stride, grads, w_off, r.nw, r.chunks, op));
        DC_TRY(launch_dw_reduce(dev, out, r.nw, stride, grads, b_off, (size_t)p.cout, r.chunks, op));
    }
    return DC_OK;
}

dc_status dc_conv2d_pooled_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                                    const dc_tensor *dpool, const dc_tensor *skip, cl_mem grads,
                                    size_t w_off, size_t b_off, int k, dc_act act)
{
    return pooled_backward(dev, x, y, NULL, dpool, skip, grads, w_off, b_off, k, act);
}

dc_status dc_conv2d_pooled_out_backward(dc_device *dev, const dc_tensor *x,
                                        const dc_tensor *pooled, const dc_tensor *argmax,
                                        const dc_tensor *dpool, cl_mem grads, size_t w_off,
                                        size_t b_off, int k, dc_act act)
{
    if (!argmax) return dc_fail(DC_ERR_INVALID_ARG, "conv2d pooled backward: no argmax tensor");
    return pooled_backward(dev, x, pooled, argmax, dpool, NULL, grads, w_off, b_off, k, act);
}

/* ---- transposed conv --------------------------------------------------------------------- */

/* The transposed conv of x (h x w) runs on its output grid (2h x 2w, the plan's size) with x
 * zero-interleaved at rows/columns zs, zs+2, ...: with pt = max(k-2,0)/2 (ops.h) the output
 * y[2iy+ky-pt] takes x[iy] W[ky]; on the grid that is a "same" conv of the interleaved input
 * with the flipped kernel once x[iy] sits at 2iy + zs, zs = (k-1)/2 - pt. */
static int convT_shift(int k) { return (k - 1) / 2 - (k > 2 ? k - 2 : 0) / 2; }

static dc_status launch_resample(dc_device *dev, const conv_plan *p, const char *name,
                                 const dc_tensor *src, const dc_tensor *dst, int rows, int zs,
                                 const char *what)
{
    cl_kernel kr;
    DC_TRY(dc_kernel_get(dev, CONV_FILE, p->opts, name, &kr));
    cl_uint so = (cl_uint)src->off, d_o = (cl_uint)dst->off;
    cl_int r = rows, s = zs;
    DC_CL(DC_ARG(kr, 0, src->buf), what);
    DC_CL(DC_ARG(kr, 1, so), what);
    DC_CL(DC_ARG(kr, 2, dst->buf), what);
    DC_CL(DC_ARG(kr, 3, d_o), what);
    DC_CL(DC_ARG(kr, 4, r), what);
    DC_CL(DC_ARG(kr, 5, s), what);
    size_t global[1] = {(size_t)rows}, local[1] = {divisor_at_most((size_t)rows, 32)};
    return launch(dev, kr, 1, global, local, what);
}

dc_status dc_convT2d_forward(dc_device *dev, const dc_tensor *x, cl_mem params, size_t w_off,
                             size_t b_off, int k, dc_act act, dc_tensor *y)
{
    const char *op = "convT2d forward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(check_k_act(k, act, op));
    DC_TRY(dc_tensor_check_shape(y, x->n, y->c, 2 * x->h, 2 * x->w, op, "y"));
    DC_TRY(check_params(params, w_off, b_off, (size_t)y->c * x->c * k * k, y->c, op, "params"));
    conv_plan p;
    conv_plan_make(&p, dev, x->c, y->c, y->h, y->w, k, CONV_TRANSPOSED);
    size_t nxu = (size_t)x->n * x->c * y->h * y->w;
    if (nxu > UINT_MAX) return dc_fail(DC_ERR_UNSUPPORTED, "%s: too large", op);
    cl_mem scratch;
    DC_TRY(scratch_get(dev, nxu, &scratch));
    dc_tensor xu = dc_tensor_view(scratch, 0, x->n, x->c, y->h, y->w, DC_LAYOUT_NCHW);
    DC_TRY(launch_resample(dev, &p, "zero_insert", x, &xu, x->n * x->c * y->h, convT_shift(k), op));
    return launch_rows(dev, &p, "convT_fwd", &xu, params, w_off, b_off, act, y, op);
}

dc_status dc_convT2d_backward(dc_device *dev, const dc_tensor *x, const dc_tensor *y,
                              dc_tensor *dy, cl_mem params, cl_mem grads, size_t w_off,
                              size_t b_off, int k, dc_act act, dc_tensor *dx)
{
    const char *op = "convT2d backward";
    DC_TRY(dc_tensor_check(x, op, "x"));
    DC_TRY(dc_tensor_check(y, op, "y"));
    DC_TRY(dc_tensor_check(dy, op, "dy"));
    DC_TRY(check_k_act(k, act, op));
    DC_TRY(dc_tensor_check_shape(y, x->n, y->c, 2 * x->h, 2 * x->w, op, "y"));
    DC_TRY(dc_tensor_check_shape(dy, y->n, y->c, y->h, y->w, op, "dy"));
    if (dx) {
        DC_TRY(dc_tensor_check(dx, op, "dx"));
        DC_TRY(dc_tensor_check_shape(dx, x->n, x->c, x->h, x->w, op, "dx"));
    }
    int cin = x->c, cout = y->c;
    size_t nw = (size_t)cout * cin * k * k;
    DC_TRY(check_params(params, w_off, b_off, nw, cout, op, "params"));
    DC_TRY(check_params(grads, w_off, b_off, nw, cout, op, "grads"));
    conv_plan p;
    conv_plan_make(&p, dev, cin, cout, y->h, y->w, k, CONV_TRANSPOSED);
    dw_run r = dw_run_make(dev, &p, x->n);
    /* scratch: the interleaved input (later the full-grid input gradient), then dW's needs */
    size_t nxu = (size_t)x->n * cin * y->h * y->w;
    if (nxu + r.ndzt + r.npart > UINT_MAX) return dc_fail(DC_ERR_UNSUPPORTED, "%s: too large", op);
    cl_mem scratch;
    DC_TRY(scratch_get(dev, nxu + r.ndzt + r.npart, &scratch));
    dc_tensor xu = dc_tensor_view(scratch, 0, x->n, cin, y->h, y->w, DC_LAYOUT_NCHW);
    int zs = convT_shift(k);
    DC_TRY(launch_resample(dev, &p, "zero_insert", x, &xu, x->n * cin * y->h, zs, op));
    DC_TRY(launch_dw(dev, &p, &r, &xu, y, dy, grads, w_off, b_off, act, 1, scratch, nxu, op));
    if (!dx) return DC_OK;
    /* t = conv(dz, W^T) on the full grid (over xu, no longer needed), dx = t at the inputs */
    DC_TRY(launch_rows(dev, &p, "convT_dx", dy, params, w_off, 0, DC_ACT_NONE, &xu, op));
    return launch_resample(dev, &p, "subsample2", &xu, dx, x->n * cin * x->h, zs, op);
}
