/* Input noise: spec parsing, the device launch, and the host twin of cl/noise.cl.
 *
 * The host functions below do, per pixel, the same float operations in the same order as
 * cl/noise.cl (which runs 8 Philox instances per work-item in float8 lanes), with no fma
 * contraction, so a noisy image made here for a user PNG or a test is the one the device makes.
 * Keep the two in step; tests/test_noise.c compares them. */
#include "daecl/noise.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/kernels.h"

static const char *const kind_names[DC_NOISE_COUNT] = {
    [DC_NOISE_NONE] = "none",       [DC_NOISE_GAUSSIAN] = "gaussian",
    [DC_NOISE_SALTPEPPER] = "saltpepper", [DC_NOISE_SPECKLE] = "speckle",
    [DC_NOISE_POISSON] = "poisson", [DC_NOISE_MASK] = "mask",
};
_Static_assert(sizeof(kind_names) / sizeof(kind_names[0]) == DC_NOISE_COUNT,
               "one name per noise kind");

const char *dc_noise_kind_name(dc_noise_kind k)
{
    return (unsigned)k < DC_NOISE_COUNT ? kind_names[k] : "?";
}

static dc_status parse_level(const char *spec, const char *text, float *out)
{
    char *end = NULL;
    errno = 0;
    float v = strtof(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v))
        return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": \"%s\" is not a number", spec, text);
    *out = v;
    return DC_OK;
}

dc_status dc_noise_parse(const char *spec, dc_noise_config *out)
{
    static const char usage[] =
        "expected none, gaussian:SIGMA, speckle:SIGMA, saltpepper:P, mask:P or poisson:PEAK, or a range "
        "such as gaussian:0-0.2";
    if (!spec || !out) return dc_fail(DC_ERR_INVALID_ARG, "--noise: no value given");
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    int kind = -1;
    for (int k = 0; k < DC_NOISE_COUNT; k++)
        if (strlen(kind_names[k]) == name_len && strncmp(spec, kind_names[k], name_len) == 0)
            kind = k;
    if (kind < 0) return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": unknown model; %s", spec, usage);
    if (kind == DC_NOISE_NONE) {
        if (colon) return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": none takes no value", spec);
        *out = (dc_noise_config){DC_NOISE_NONE, 0.0f, 0.0f};
        return DC_OK;
    }
    if (!colon || colon[1] == '\0')
        return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": missing value after '%s:'; %s", spec,
                       kind_names[kind], usage);
    /* LO-HI: the '-' that follows a digit or '.', not an exponent's sign */
    const char *val = colon + 1, *dash = NULL;
    for (const char *q = val + 1; *q; q++)
        if (*q == '-' && q[-1] != 'e' && q[-1] != 'E') {
            dash = q;
            break;
        }
    char lo_text[64];
    size_t lo_len = dash ? (size_t)(dash - val) : strlen(val);
    if (lo_len >= sizeof lo_text) return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": value too long", spec);
    memcpy(lo_text, val, lo_len);
    lo_text[lo_len] = '\0';
    float v = 0.0f, hi = 0.0f;
    DC_TRY(parse_level(spec, lo_text, &v));
    if (dash) {
        DC_TRY(parse_level(spec, dash + 1, &hi));
        if (!(hi > v))
            return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": a range LO-HI needs LO < HI", spec);
    }
    /* A range may start at 0 for the additive kinds: some images clean. */
    int zero_ok = dash && (kind == DC_NOISE_GAUSSIAN || kind == DC_NOISE_SPECKLE) && v == 0.0f;
    float top = dash ? hi : v;
    switch (kind) {
    case DC_NOISE_GAUSSIAN:
    case DC_NOISE_SPECKLE:
        if (!((v > 0.0f || zero_ok) && top <= DC_NOISE_SIGMA_MAX))
            return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": sigma must be in (0, %g] (a range may start at 0; "
                           "pixels are on the [0,1] scale: sigma 25/255 = 0.098)", spec, (double)DC_NOISE_SIGMA_MAX);
        break;
    case DC_NOISE_SALTPEPPER:
    case DC_NOISE_MASK:
        if (!(v >= 0.0f && top <= 1.0f))
            return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": probability must be in [0, 1]", spec);
        break;
    case DC_NOISE_POISSON:
        if (!(v > 0.0f && top <= DC_NOISE_PEAK_MAX))
            return dc_fail(DC_ERR_INVALID_ARG, "--noise \"%s\": peak must be in (0, %g]", spec,
                           (double)DC_NOISE_PEAK_MAX);
        break;
    default:
        break;
    }
    *out = (dc_noise_config){(dc_noise_kind)kind, v, dash ? hi : 0.0f};
    return DC_OK;
}

/* The shortest %g that reads back as the same float: 0.1, not 0.100000001. */
static void shortest(float v, char *num, size_t len)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(num, len, "%.*g", prec, (double)v);
        if (strtof(num, NULL) == v) break;
    }
}

void dc_noise_format(const dc_noise_config *c, char *buf, size_t len)
{
    if (!buf || len == 0) return;
    if (!c || (unsigned)c->kind >= DC_NOISE_COUNT)
        snprintf(buf, len, "?");
    else if (c->kind == DC_NOISE_NONE)
        snprintf(buf, len, "none");
    else {
        char lo[32], hi[32];
        shortest(c->param, lo, sizeof lo);
        if (c->param_max > c->param) {
            shortest(c->param_max, hi, sizeof hi);
            snprintf(buf, len, "%s:%s-%s", kind_names[c->kind], lo, hi);
        } else {
            snprintf(buf, len, "%s:%s", kind_names[c->kind], lo);
        }
    }
}

/* ---- Philox4x32-10 and the noise models, host twin of cl/noise.cl ---- */

void dc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

float dc_noise_u8_to_float(uint8_t p)
{
    const float r = 0x1.010102p-8f; /* 1/255 rounded */
    float a = (float)p;
    float q = a * r;
    float e = fmaf(-q, 255.0f, a);
    return fmaf(e, r, q);
}

float dc_noise_u16_to_float(uint16_t p)
{
    const float r = 0x1.0001p-16f; /* 1/65535 rounded; the correction makes every value exact */
    float a = (float)p;
    float q = a * r;
    float e = fmaf(-q, 65535.0f, a);
    return fmaf(e, r, q);
}

static void philox_block(uint64_t seed, uint32_t blk, uint32_t sample, uint32_t epoch,
                         uint32_t stream, uint32_t w[4])
{
    const uint32_t ctr[4] = {blk, sample, epoch, stream};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    dc_philox4x32_10(ctr, key, w);
}

static float u01_open0(uint32_t w) { return (float)((w >> 8) + 1u) * 0x1p-24f; }
static float u01_closed0(uint32_t w) { return (float)(w >> 8) * 0x1p-24f; }
static float clip01(float v) { return fminf(fmaxf(v, 0.0f), 1.0f); }

static void normal4(const uint32_t w[4], float z[4])
{
    /* The angle 2*pi*u as the device computes it, sinpi/cospi of 2u (cl/noise.cl): C has no
     * sinpi, and in double the product with pi costs the float result nothing. */
    const double pi = 3.14159265358979323846;
    float ra = sqrtf(-2.0f * logf(u01_open0(w[0]))), ta = 2.0f * u01_open0(w[1]);
    float rb = sqrtf(-2.0f * logf(u01_open0(w[2]))), tb = 2.0f * u01_open0(w[3]);
    z[0] = ra * (float)cos(pi * ta);
    z[1] = ra * (float)sin(pi * ta);
    z[2] = rb * (float)cos(pi * tb);
    z[3] = rb * (float)sin(pi * tb);
}

static float poisson1(float x, float peak, float inv_peak, float u, float z)
{
    float lam = x * peak, k;
    if (lam < DC_NOISE_POISSON_NORMAL_FROM) {
        float p = expf(-lam), f = p;
        int kk = 0, kmax = (int)(3.0f * lam) + 20;
        while (u > f && kk < kmax) {
            kk++;
            p = p * (lam / (float)kk);
            f = f + p;
        }
        k = (float)kk;
    } else {
        k = fmaxf(floorf(lam + sqrtf(lam) * z + 0.5f), 0.0f);
    }
    return fminf(k * inv_peak, 1.0f);
}

float dc_noise_level(const dc_noise_config *cfg, uint64_t seed, uint32_t epoch, uint32_t sample)
{
    if (!(cfg->param_max > cfg->param)) return cfg->param;
    uint32_t w[4];
    philox_block(seed, 0, sample, epoch, DC_NOISE_STREAM_LEVEL, w);
    return cfg->param + (cfg->param_max - cfg->param) * u01_closed0(w[0]);
}

static void noise4(const dc_noise_config *cfg, float param, float inv_param, uint64_t seed, uint32_t blk,
                   uint32_t sample, uint32_t epoch, const float x[4], float y[4])
{
    uint32_t w[4];
    float z[4];
    switch (cfg->kind) {
    case DC_NOISE_GAUSSIAN:
        philox_block(seed, blk, sample, epoch, DC_NOISE_STREAM_NORMAL, w);
        normal4(w, z);
        for (int j = 0; j < 4; j++) y[j] = clip01(x[j] + param * z[j]);
        return;
    case DC_NOISE_SPECKLE:
        philox_block(seed, blk, sample, epoch, DC_NOISE_STREAM_NORMAL, w);
        normal4(w, z);
        for (int j = 0; j < 4; j++) y[j] = clip01(x[j] + (x[j] * param) * z[j]);
        return;
    case DC_NOISE_SALTPEPPER:
        philox_block(seed, blk, sample, epoch, DC_NOISE_STREAM_UNIFORM, w);
        for (int j = 0; j < 4; j++) y[j] = u01_closed0(w[j]) < param ? (float)(w[j] & 1u) : x[j];
        return;
    case DC_NOISE_MASK:
        philox_block(seed, blk, sample, epoch, DC_NOISE_STREAM_UNIFORM, w);
        for (int j = 0; j < 4; j++) y[j] = u01_closed0(w[j]) < param ? 0.0f : x[j];
        return;
    case DC_NOISE_POISSON: {
        uint32_t wu[4];
        philox_block(seed, blk, sample, epoch, DC_NOISE_STREAM_UNIFORM, wu);
        philox_block(seed, blk, sample, epoch, DC_NOISE_STREAM_NORMAL, w);
        normal4(w, z);
        for (int j = 0; j < 4; j++) y[j] = poisson1(x[j], param, inv_param, u01_open0(wu[j]), z[j]);
        return;
    }
    default:
        for (int j = 0; j < 4; j++) y[j] = x[j];
        return;
    }
}

void dc_noise_host(const dc_noise_config *cfg, uint64_t seed, uint32_t epoch, uint32_t sample,
                   const float *clean, float *noisy, int h, int w)
{
    if (!cfg || !clean || !noisy || h <= 0 || w <= 0) return;
    size_t hw = (size_t)h * (size_t)w;
    const float param = dc_noise_level(cfg, seed, epoch, sample);
    const float inv_param = cfg->kind == DC_NOISE_POISSON ? 1.0f / param : 0.0f;
    for (size_t base = 0; base < hw; base += 4) {
        float x[4] = {0, 0, 0, 0}, y[4];
        size_t m = hw - base < 4 ? hw - base : 4;
        for (size_t j = 0; j < m; j++) x[j] = clean[base + j];
        noise4(cfg, param, inv_param, seed, (uint32_t)(base / 4), sample, epoch, x, y);
        for (size_t j = 0; j < m; j++) noisy[base + j] = y[j];
    }
}

/* ---- device ---- */

static dc_status check_target(const dc_tensor *t, const char *name, int n, int c, int h, int w,
                              cl_uint *off)
{
    if (!t) return DC_OK;
    if (!t->buf) return dc_fail(DC_ERR_INVALID_ARG, "noise: %s tensor has no buffer", name);
    if (t->layout != DC_LAYOUT_NCHW || t->c != c || t->h != h || t->w != w || t->n < n)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "noise: %s tensor is %dx%dx%dx%d%s, need at least %dx%dx%dx%d NCHW", name,
                       t->n, t->c, t->h, t->w, t->layout == DC_LAYOUT_NCHW ? "" : " (NCHW8c)", n, c, h,
                       w);
    size_t end = t->off + (size_t)n * (size_t)c * (size_t)h * (size_t)w;
    if (t->off > UINT_MAX || end > UINT_MAX)
        return dc_fail(DC_ERR_INVALID_ARG, "noise: %s tensor offset %zu too large", name, t->off);
    *off = (cl_uint)t->off;
    return DC_OK;
}

dc_status dc_noise_apply(dc_device *dev, const dc_noise_config *cfg, uint64_t seed, uint32_t epoch,
                         cl_mem pixels, cl_mem indices, int n, int h, int w, dc_tensor *clean,
                         dc_tensor *noisy, cl_uint nwait, const cl_event *wait)
{
    return dc_noise_apply_planes(dev, cfg, seed, epoch, pixels, 1, indices, n, 1, h, w, clean, noisy, nwait,
                                 wait);
}

dc_status dc_noise_apply_planes(dc_device *dev, const dc_noise_config *cfg, uint64_t seed, uint32_t epoch,
                                cl_mem pixels, int depth, cl_mem indices, int n, int c, int h, int w,
                                dc_tensor *clean, dc_tensor *noisy, cl_uint nwait, const cl_event *wait)
{
    if (!dev || !cfg || !pixels || !indices)
        return dc_fail(DC_ERR_INVALID_ARG, "noise: missing device, config or input buffer");
    if ((unsigned)cfg->kind >= DC_NOISE_COUNT)
        return dc_fail(DC_ERR_INVALID_ARG, "noise: unknown model %d", (int)cfg->kind);
    if (cfg->kind == DC_NOISE_POISSON && !(cfg->param > 0.0f))
        return dc_fail(DC_ERR_INVALID_ARG, "noise: poisson peak %g must be > 0", (double)cfg->param);
    if (!clean && !noisy) return dc_fail(DC_ERR_INVALID_ARG, "noise: neither clean nor noisy given");
    if (depth != 1 && depth != 2) return dc_fail(DC_ERR_INVALID_ARG, "noise: %d bytes per pixel value", depth);
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || (nwait > 0 && !wait))
        return dc_fail(DC_ERR_INVALID_ARG, "noise: bad batch %dx%dx%dx%d", n, c, h, w);
    /* The noise's pixel index runs over the c planes of an image: one image of c*h*w values. */
    uint64_t hw = (uint64_t)c * (uint64_t)h * (uint64_t)w, groups = (hw + 31) / 32; /* 32 pixels per item */
    if ((uint64_t)n * hw > (uint64_t)INT_MAX)
        return dc_fail(DC_ERR_INVALID_ARG, "noise: batch %dx%dx%dx%d too large", n, c, h, w);
    cl_uint clean_off = 0, noisy_off = 0;
    DC_TRY(check_target(clean, "clean", n, c, h, w, &clean_off));
    DC_TRY(check_target(noisy, "noisy", n, c, h, w, &noisy_off));

    cl_kernel k;
    DC_TRY(dc_kernel_get(dev, "noise.cl", NULL, depth == 2 ? "noise_u16" : "noise_u8", &k));
    if (n == 0) {
        /* Nothing to compute, but keep the ordering promise for the caller's wait list. */
        if (nwait > 0) DC_CL(clEnqueueBarrierWithWaitList(dev->queue, nwait, wait, NULL), "noise: barrier");
        return DC_OK;
    }

    cl_mem cbuf = clean ? clean->buf : NULL, nbuf = noisy ? noisy->buf : NULL;
    cl_uint un = (cl_uint)n, uhw = (cl_uint)hw, ugroups = (cl_uint)groups;
    cl_int kind = (cl_int)cfg->kind;
    cl_float param = cfg->param;
    /* Without a range the level is the kernel argument; with one each image draws it. */
    cl_float param_max = cfg->param_max > cfg->param ? cfg->param_max : cfg->param;
    cl_float inv_param = cfg->kind == DC_NOISE_POISSON ? 1.0f / cfg->param : 0.0f;
    cl_uint seed_lo = (cl_uint)seed, seed_hi = (cl_uint)(seed >> 32), uepoch = epoch;
    cl_int wc = clean != NULL, wn = noisy != NULL;
    cl_int e = CL_SUCCESS;
    cl_uint a = 0;
#define SET(v) \
    if (e == CL_SUCCESS) e = DC_ARG(k, a++, v)
    SET(pixels);
    SET(indices);
    SET(cbuf);
    SET(clean_off);
    SET(nbuf);
    SET(noisy_off);
    SET(un);
    SET(uhw);
    SET(ugroups);
    SET(kind);
    SET(param);
    SET(param_max);
    SET(inv_param);
    SET(seed_lo);
    SET(seed_hi);
    SET(uepoch);
    SET(wc);
    SET(wn);
#undef SET
    if (e != CL_SUCCESS) return dc_cl_fail(e, "noise: kernel argument");

    if (nwait > 0) DC_CL(clEnqueueBarrierWithWaitList(dev->queue, nwait, wait, NULL), "noise: barrier");
    size_t global = (size_t)n * (size_t)groups, local = 16;
    return dc_launch(dev, k, 1, &global, &local, "noise");
}
