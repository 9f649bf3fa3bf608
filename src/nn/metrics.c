/* Device accumulators and image metrics: host side of cl/metrics.cl (see daecl/metrics.h). */
#include "daecl/metrics.h"

#include <limits.h>
#include <stdint.h>

#include "daecl/kernels.h"

#define LOCAL_1D 16

dc_status dc_accum_create(dc_device *dev, int nslots, dc_accum *out)
{
    *out = (dc_accum){0};
    if (nslots <= 0 || nslots > 4096)
        return dc_fail(DC_ERR_INVALID_ARG, "accumulator: %d slots (1 to 4096)", nslots);
    DC_TRY(dc_buffer_create(dev, 2 * (size_t)nslots, "accumulator", &out->buf));
    out->nslots = nslots;
    return DC_OK;
}

void dc_accum_release(dc_accum *a)
{
    if (!a) return;
    if (a->buf) clReleaseMemObject(a->buf);
    if (a->scratch) clReleaseMemObject(a->scratch);
    *a = (dc_accum){0};
}

dc_status dc_accum_reset(dc_device *dev, dc_accum *a)
{
    if (!a->buf) return dc_fail(DC_ERR_INVALID_ARG, "accumulator reset: not created");
    return dc_fill(dev, a->buf, 0, 2 * (size_t)a->nslots, 0.0f);
}

dc_status dc_accum_read(dc_device *dev, const dc_accum *a, double *values)
{
    if (!a->buf) return dc_fail(DC_ERR_INVALID_ARG, "accumulator read: not created");
    float pairs[2 * 64];
    for (int first = 0; first < a->nslots; first += 64) {
        int cnt = a->nslots - first < 64 ? a->nslots - first : 64;
        DC_CL(clEnqueueReadBuffer(dev->queue, a->buf, CL_TRUE, 2 * (size_t)first * sizeof(float),
                                  2 * (size_t)cnt * sizeof(float), pairs, 0, NULL, NULL),
              "reading an accumulator");
        for (int i = 0; i < cnt; i++) values[first + i] = (double)pairs[2 * i] + (double)pairs[2 * i + 1];
    }
    return DC_OK;
}

dc_status dc_accum_scratch(dc_device *dev, dc_accum *a, size_t nfloats, cl_mem *out)
{
    if (!a->scratch || a->scratch_floats < nfloats) {
        /* Grow with headroom; the old buffer is released once queued commands finish with it. */
        size_t want = nfloats + nfloats / 4 + 64;
        cl_mem m;
        DC_TRY(dc_buffer_create(dev, want, "accumulator scratch", &m));
        if (a->scratch) clReleaseMemObject(a->scratch);
        a->scratch = m;
        a->scratch_floats = want;
    }
    *out = a->scratch;
    return DC_OK;
}

dc_status dc_accum_add_partials(dc_device *dev, dc_accum *a, int slot, int nrows, cl_mem part,
                                size_t off, size_t npart, float scale)
{
    if (!a->buf) return dc_fail(DC_ERR_INVALID_ARG, "accumulator: not created");
    if (slot < 0 || nrows < 1 || slot + nrows > a->nslots)
        return dc_fail(DC_ERR_INVALID_ARG, "accumulator: slots %d..%d out of range (it has %d)", slot,
                       slot + nrows - 1, a->nslots);
    if (off + (size_t)nrows * npart > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED, "accumulator: %zu partials is too many", npart);
    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "metrics.cl", "", "accum_add", &k));
    cl_uint s = (cl_uint)slot, nr = (cl_uint)nrows, po = (cl_uint)off, np = (cl_uint)npart;
    DC_CL(DC_ARG(k, 0, a->buf), "accum_add arg 0");
    DC_CL(DC_ARG(k, 1, s), "accum_add arg 1");
    DC_CL(DC_ARG(k, 2, nr), "accum_add arg 2");
    DC_CL(DC_ARG(k, 3, part), "accum_add arg 3");
    DC_CL(DC_ARG(k, 4, po), "accum_add arg 4");
    DC_CL(DC_ARG(k, 5, np), "accum_add arg 5");
    DC_CL(DC_ARG(k, 6, scale), "accum_add arg 6");
    size_t g = 1, l = 1;
    return dc_launch(dev, k, 1, &g, &l, "accum_add");
}

int dc_ssim_window(int h, int w)
{
    int m = h < w ? h : w;
    if (m > 11) m = 11;
    if (m < 1) return 0;
    return (m % 2) ? m : m - 1;
}

dc_status dc_metrics_accumulate(dc_device *dev, const dc_tensor *pred, const dc_tensor *target,
                                dc_accum *acc, int slot)
{
    if (pred->n != target->n || pred->c != target->c || pred->h != target->h ||
        pred->w != target->w)
        return dc_fail(DC_ERR_INVALID_ARG, "metrics: prediction %dx%dx%dx%d vs target %dx%dx%dx%d",
                       pred->n, pred->c, pred->h, pred->w, target->n, target->c, target->h,
                       target->w);
    if (pred->layout != DC_LAYOUT_NCHW || target->layout != DC_LAYOUT_NCHW)
        return dc_fail(DC_ERR_UNSUPPORTED, "metrics: only NCHW tensors are supported");
    if (pred->n <= 0 || pred->c <= 0 || pred->h <= 0 || pred->w <= 0)
        return dc_fail(DC_ERR_INVALID_ARG, "metrics: empty tensor %dx%dx%dx%d", pred->n, pred->c,
                       pred->h, pred->w);
    if (!acc || slot < 0 || slot + DC_METRIC_SLOTS > acc->nslots)
        return dc_fail(DC_ERR_INVALID_ARG, "metrics: need %d accumulator slots from %d (it has %d)",
                       DC_METRIC_SLOTS, slot, acc ? acc->nslots : 0);
    size_t n = (size_t)pred->n, c = (size_t)pred->c, h = (size_t)pred->h, w = (size_t)pred->w;
    size_t rows = n * c * h, total = rows * w;
    size_t nscratch = 4 * rows + 5 * n;
    if (total > UINT_MAX || pred->off + total > UINT_MAX || target->off + total > UINT_MAX ||
        nscratch > UINT_MAX)
        return dc_fail(DC_ERR_UNSUPPORTED, "metrics: tensor of %zu values is too large", total);
    cl_uint win = (cl_uint)dc_ssim_window(pred->h, pred->w);

    cl_mem scratch;
    DC_TRY(dc_accum_scratch(dev, acc, nscratch, &scratch));
    cl_uint po = (cl_uint)pred->off, to = (cl_uint)target->off, qo = 0, io = (cl_uint)(4 * rows);
    cl_uint un = (cl_uint)n, uc = (cl_uint)c, uh = (cl_uint)h, uw = (cl_uint)w;

    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "metrics.cl", "", "metrics_rows", &k));
    DC_CL(DC_ARG(k, 0, pred->buf), "metrics_rows arg");
    DC_CL(DC_ARG(k, 1, po), "metrics_rows arg");
    DC_CL(DC_ARG(k, 2, target->buf), "metrics_rows arg");
    DC_CL(DC_ARG(k, 3, to), "metrics_rows arg");
    DC_CL(DC_ARG(k, 4, scratch), "metrics_rows arg");
    DC_CL(DC_ARG(k, 5, qo), "metrics_rows arg");
    DC_CL(DC_ARG(k, 6, un), "metrics_rows arg");
    DC_CL(DC_ARG(k, 7, uc), "metrics_rows arg");
    DC_CL(DC_ARG(k, 8, uh), "metrics_rows arg");
    DC_CL(DC_ARG(k, 9, uw), "metrics_rows arg");
    DC_CL(DC_ARG(k, 10, win), "metrics_rows arg");
    size_t g = rows, l = LOCAL_1D;
    DC_TRY(dc_launch(dev, k, 1, &g, &l, "metrics_rows"));

    DC_TRY(dc_kernel_get(dev, "metrics.cl", "", "metrics_image", &k));
    DC_CL(DC_ARG(k, 0, scratch), "metrics_image arg");
    DC_CL(DC_ARG(k, 1, qo), "metrics_image arg");
    DC_CL(DC_ARG(k, 2, scratch), "metrics_image arg");
    DC_CL(DC_ARG(k, 3, io), "metrics_image arg");
    DC_CL(DC_ARG(k, 4, un), "metrics_image arg");
    DC_CL(DC_ARG(k, 5, uc), "metrics_image arg");
    DC_CL(DC_ARG(k, 6, uh), "metrics_image arg");
    DC_CL(DC_ARG(k, 7, uw), "metrics_image arg");
    DC_CL(DC_ARG(k, 8, win), "metrics_image arg");
    g = n;
    l = n < LOCAL_1D ? n : LOCAL_1D;
    DC_TRY(dc_launch(dev, k, 1, &g, &l, "metrics_image"));

    /* Rows of img are in slot order: PSNR, SSIM, ACC, COUNT_IMAGES, ACC_THRESH. */
    _Static_assert(DC_METRIC_PSNR == 0 && DC_METRIC_SSIM == 1 && DC_METRIC_ACC == 2 &&
                       DC_METRIC_COUNT_IMAGES == 3 && DC_METRIC_ACC_THRESH == 4 &&
                       DC_METRIC_SLOTS == 5,
                   "metrics_image writes its rows in this slot order");
    return dc_accum_add_partials(dev, acc, slot, DC_METRIC_SLOTS, scratch, io, n, 1.0f);
}
