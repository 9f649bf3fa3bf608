/* dae-cl-profile: where a training step's time goes, per layer, from OpenCL events; and the
 * model's training or inference throughput (compare-torch's dae-cl side).
 *
 *   dae-cl-profile [--platform P] [--device D] [--arch SPEC] [--batch N] [--size S]
 *                  [--channels C] [--reps R] [--peak GFLOPS] [--table train|infer]
 *                  [--throughput train|infer|denoise] [--seconds T]
 *
 * Table mode (default): the queue is replaced by one with CL_QUEUE_PROFILING_ENABLE and every
 * layer op is bracketed by markers, whose end times give the device time of the commands in
 * between (the queue is in order). Per layer: forward; weight gradient (the layer's backward
 * without the input gradient: dz = dy*act', db, dW); input gradient (the full backward minus
 * that; dy is restored between the two runs, outside the markers); then the loss and the
 * optimizer (Adam). Medians over R steps after a warm-up step. FLOPs: 2 per multiply-add,
 * each pass of a layer with parameters counts its forward FLOPs (other layers count none). The "step" row is the
 * sum; the "model" row times whole unbracketed steps on the wall clock (dc_model_* calls, one
 * clFinish per step), which is what training sees. --table infer: the forward of each layer of
 * the inference model (dc_model_create_shared: shared buffers, folded upsamplings and pools),
 * and whole dc_model_predict calls on the wall clock.
 *
 * Throughput mode: images/s of whole training steps (forward, loss, backward, Adam) or of
 * inference (dc_model_predict of an inference model, dc_model_create_shared), timed on the wall clock for T seconds after a warm-up, one
 * line "images_per_s X" (all images over all the time), then images per CPU second and the
 * model's forward FLOPs per image. Random inputs and targets in [0, 1). --throughput denoise:
 * whole dc_denoiser_run calls on one S x S image of C channels, as `dae-cl denoise` runs it
 * without the file I/O (windows of the default tile with their overlap, batched); its FLOPs per
 * image are the model's on the whole S x S image, the useful work, so the overlap counts as
 * lost time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daecl/denoise.h"
#include "daecl/device.h"
#include "daecl/loss.h"
#include "daecl/image.h"
#include "daecl/model.h"
#include "daecl/optim.h"
#include "daecl/tensor.h"

#define TRY(x)                                                                               \
    do {                                                                                     \
        if ((x) != DC_OK) {                                                                  \
            fprintf(stderr, "dae-cl-profile: %s\n", dc_error_detail());                      \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)
#define TRY_CL(x, what)                                                                      \
    do {                                                                                     \
        cl_int e_ = (x);                                                                     \
        if (e_ != CL_SUCCESS) {                                                              \
            fprintf(stderr, "dae-cl-profile: %s: OpenCL error %d\n", what, e_);              \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of the whole process, PoCL's worker threads included. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int parse_int(const char *flag, const char *v, int lo, int hi)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "dae-cl-profile: %s: '%s' is not an integer in %d..%d\n", flag, v, lo, hi);
        exit(2);
    }
    return (int)x;
}

static double parse_double(const char *flag, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x > 0) || !isfinite(x)) {
        fprintf(stderr, "dae-cl-profile: %s: '%s' is not a positive number\n", flag, v);
        exit(2);
    }
    return x;
}

/* ---- event timing ------------------------------------------------------------------------- */

static cl_event mark(dc_device *dev)
{
    cl_event ev;
    TRY_CL(clEnqueueMarkerWithWaitList(dev->queue, 0, NULL, &ev), "enqueueing a marker");
    return ev;
}

static double end_ns(cl_event ev)
{
    cl_ulong t = 0;
    TRY_CL(clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof t, &t, NULL),
           "reading a marker's time");
    return (double)t;
}

/* Milliseconds between two markers (waits for the second), releasing both. */
static double span_ms(cl_event a, cl_event b)
{
    TRY_CL(clWaitForEvents(1, &b), "waiting for a marker");
    double ms = (end_ns(b) - end_ns(a)) / 1e6;
    clReleaseEvent(a);
    clReleaseEvent(b);
    return ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the model ---------------------------------------------------------------------------- */

typedef struct bench {
    dc_device *dev;
    dc_model *m;
    dc_tensor x, y; /* input and target, batch images */
    cl_mem state;   /* Adam's */
    dc_optim_config opt;
    long step;
} bench;

/* Layer i's work on the whole batch (as dc_model_forward builds it). */
static dc_layer_run layer_run(bench *b, int i)
{
    dc_model *m = b->m;
    const dc_layer_spec *L = &m->arch.layers[i];
    dc_layer_run r = {.dev = b->dev, .spec = L, .state = &m->layers[i], .params = m->params,
                      .grads = m->grads};
    /* a conv that reads the upsampling before it in place reads that upsampling's input */
    int src = m->up_folded[i] ? i - 2 : i - 1;
    r.in = src < 0 ? &b->x : &m->layers[src].out;
    r.out = &m->layers[i].out;
    if (L->ref >= 0) {
        r.ref_out = &m->layers[L->ref].out;
        r.ref_grad = &m->layers[L->ref].skip_grad;
    }
    r.act = i == m->arch.nlayers - 1 ? DC_ACT_NONE : L->act;
    r.up_grad = m->up_grad[i]; /* the same programs as the model's */
    r.up_folded = m->up_folded[i];
    if (r.up_grad) r.up_src = &m->layers[i - 2].out;
    return r;
}

/* Layer i's full backward as training runs it (the model's). */
static void layer_backward(bench *b, int i)
{
    TRY(dc_model_layer_backward(b->m, &b->x, b->m->batch, i));
}

static void loss_step(bench *b)
{
    dc_loss_kind loss = b->m->head == DC_ACT_SIGMOID ? DC_LOSS_BCE : DC_LOSS_MSE;
    TRY(dc_model_loss(b->m, loss, &b->y, b->m->batch, 1, NULL, NULL, 0));
}

static void optim_step(bench *b)
{
    TRY(dc_optim_step(b->dev, &b->opt, b->m->params, b->m->grads, b->state, b->m->nparams, ++b->step));
}

static void train_step(bench *b)
{
    TRY(dc_model_forward(b->m, &b->x, b->m->batch));
    loss_step(b);
    TRY(dc_model_backward(b->m, &b->x, b->m->batch));
    optim_step(b);
}

static void fill_uniform(bench *b, dc_tensor *t, unsigned seed)
{
    size_t n = dc_tensor_size(t);
    float *h = malloc(n * sizeof *h);
    if (!h) {
        fprintf(stderr, "dae-cl-profile: out of memory\n");
        exit(1);
    }
    srand(seed);
    for (size_t i = 0; i < n; i++) h[i] = (float)rand() / ((float)RAND_MAX + 1.0f);
    TRY(dc_tensor_write(b->dev, t, h));
    free(h);
}

/* ---- table -------------------------------------------------------------------------------- */

enum { FWD, IG, WG, NPASS };

/* " ms GF/s" or " ms GF/s %peak": cell_width(peak) characters */
static int cell_width(double peak) { return peak > 0 ? 20 : 17; }

static void print_cell(double ms, double flops, double peak)
{
    if (flops <= 0 || ms <= 0) { /* dx = all - dW can come out <= 0 on a noisy machine */
        printf(" %8.3f%*s", ms, cell_width(peak) - 9, "");
        return;
    }
    double g = flops / (ms * 1e6);
    if (peak > 0) printf(" %8.3f %5.0f %3.0f%%", ms, g, 100 * g / peak);
    else printf(" %8.3f %7.0f", ms, g);
}

/* A profiling queue in place of the device's own (same context, in order). */
static void profile_queue(bench *b)
{
    cl_int err;
    clFinish(b->dev->queue);
    cl_command_queue q = clCreateCommandQueue(b->dev->ctx, b->dev->id, CL_QUEUE_PROFILING_ENABLE, &err);
    TRY_CL(err, "creating a profiling queue");
    clReleaseCommandQueue(b->dev->queue);
    b->dev->queue = q;
}

static void profile_table(bench *b, int reps, double peak)
{
    dc_model *m = b->m;
    int nl = m->arch.nlayers, n = m->batch;
    profile_queue(b);
    /* a copy of the largest output gradient, to run a layer's backward twice */
    size_t most = 0;
    for (int i = 0; i < nl; i++)
        if (dc_tensor_size(&m->layers[i].grad) > most) most = dc_tensor_size(&m->layers[i].grad);
    cl_mem saved;
    TRY(dc_buffer_create(b->dev, most, "profile: saved gradient", &saved));

    double *t = calloc((size_t)(nl * NPASS + 2) * reps, sizeof *t);
    double *step_ms = calloc((size_t)reps, sizeof *step_ms);
    if (!t || !step_ms) {
        fprintf(stderr, "dae-cl-profile: out of memory\n");
        exit(1);
    }
#define T(rep, i, pass) t[((size_t)(i) * NPASS + (pass)) * reps + (rep)]
#define TLOSS(rep) t[((size_t)nl * NPASS) * reps + (rep)]
#define TOPT(rep) t[((size_t)nl * NPASS + 1) * reps + (rep)]
    train_step(b); /* warm-up: kernels built, scratch allocated */
    for (int rep = 0; rep < reps; rep++) {
        for (int i = 0; i < nl; i++) {
            cl_event a = mark(b->dev);
            TRY(dc_model_layer_forward(m, &b->x, m->batch, i));
            T(rep, i, FWD) = span_ms(a, mark(b->dev));
        }
        cl_event a = mark(b->dev);
        loss_step(b);
        TLOSS(rep) = span_ms(a, mark(b->dev));
        for (int i = nl - 1; i >= 0; i--) {
            dc_tensor *dy = &m->layers[i].grad;
            size_t ndy = dc_tensor_size(dy);
            double wg = 0;
            if (i > 0 && m->layers[i].nparams > 0) {
                TRY(dc_copy(b->dev, saved, 0, dy->buf, dy->off, ndy));
                dc_layer_run r = layer_run(b, i);
                a = mark(b->dev);
                TRY(m->arch.layers[i].kind->backward(&r, dy, NULL));
                wg = span_ms(a, mark(b->dev));
                TRY(dc_copy(b->dev, dy->buf, dy->off, saved, 0, ndy));
            }
            a = mark(b->dev);
            layer_backward(b, i);
            double all = span_ms(a, mark(b->dev));
            if (i == 0 && m->layers[i].nparams > 0) wg = all; /* no input gradient */
            T(rep, i, WG) = wg;
            T(rep, i, IG) = all - wg;
        }
        a = mark(b->dev);
        optim_step(b);
        TOPT(rep) = span_ms(a, mark(b->dev));
    }
    /* whole steps as training runs them */
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        train_step(b);
        TRY_CL(clFinish(b->dev->queue), "clFinish");
        step_ms[rep] = (now() - t0) * 1e3;
    }

    const char *hdr = peak > 0 ? "  GF/s peak" : "    GF/s";
    printf("%-3s %-26s %8s%s %8s%s %8s%s %8s%s\n", "#", "layer (batch)", "fwd ms", hdr, "dx ms",
           hdr, "dW ms", hdr, "all ms", hdr);
    double sum[NPASS] = {0}, fsum[NPASS] = {0};
    for (int i = 0; i < nl; i++) {
        const dc_layer_spec *L = &m->arch.layers[i];
        const dc_layer_state *S = &m->layers[i];
        char desc[64];
        L->kind->describe(L, &m->arch, desc, sizeof desc);
        /* FLOPs of layers with parameters only: a pool's compares are no FMAs */
        double f = S->nparams > 0 ? S->flops * n : 0, ms_all = 0, f_all = 0;
        printf("%-3d %-26s", i + 1, desc);
        for (int p = 0; p < NPASS; p++) {
            double ms = median(&T(0, i, p), reps);
            double fl = p == IG && i == 0 ? 0 : f;
            print_cell(ms, fl, peak);
            sum[p] += ms, fsum[p] += fl, ms_all += ms, f_all += fl;
        }
        print_cell(ms_all, f_all, peak);
        printf("\n");
    }
    double loss_ms = median(&TLOSS(0), reps), opt_ms = median(&TOPT(0), reps);
    printf("%-3s %-26s %8.3f\n", "", "loss + gradient", loss_ms);
    printf("%-3s %-26s %8.3f\n", "", "optimizer (adam)", opt_ms);
    double total = loss_ms + opt_ms, ftotal = 0;
    printf("%-3s %-26s", "", "step (sum)");
    for (int p = 0; p < NPASS; p++) {
        print_cell(sum[p], fsum[p], peak);
        total += sum[p], ftotal += fsum[p];
    }
    print_cell(total, ftotal, peak);
    printf("\n");
    double wall = median(step_ms, reps);
    printf("%-3s %-26s%*s", "", "model (wall clock)", 3 * cell_width(peak), "");
    print_cell(wall, ftotal, peak);
    printf("  = %.0f images/s\n", n / (wall / 1e3));
    free(t);
    free(step_ms);
    clReleaseMemObject(saved);
}

/* The inference model's forward per layer (as eval and denoise run it): a layer folded into
 * another runs nothing and says which one ran it. */
static void infer_table(bench *b, int reps, double peak)
{
    profile_queue(b);
    int n = b->m->batch, nl = b->m->arch.nlayers;
    dc_model *inf = NULL;
    TRY(dc_model_create_shared(b->m, b->m->in_h, b->m->in_w, n, &inf));
    double *t = calloc((size_t)nl * reps, sizeof *t), *wall = calloc((size_t)reps, sizeof *wall);
    if (!t || !wall) {
        fprintf(stderr, "dae-cl-profile: out of memory\n");
        exit(1);
    }
    dc_tensor out;
    TRY(dc_model_predict(inf, &b->x, n, &out)); /* warm-up */
    for (int rep = 0; rep < reps; rep++)
        for (int i = 0; i < nl; i++) {
            cl_event a = mark(b->dev);
            TRY(dc_model_layer_forward(inf, &b->x, n, i));
            t[(size_t)i * reps + rep] = span_ms(a, mark(b->dev));
        }
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        TRY(dc_model_predict(inf, &b->x, n, &out));
        TRY_CL(clFinish(b->dev->queue), "clFinish");
        wall[rep] = (now() - t0) * 1e3;
    }
    const char *hdr = peak > 0 ? "  GF/s peak" : "    GF/s";
    printf("%-3s %-26s %8s%s\n", "#", "layer (inference, batch)", "fwd ms", hdr);
    double sum = 0, fsum = 0;
    for (int i = 0; i < nl; i++) {
        const dc_layer_spec *L = &inf->arch.layers[i];
        const dc_layer_state *S = &inf->layers[i];
        char desc[64];
        L->kind->describe(L, &inf->arch, desc, sizeof desc);
        double ms = median(&t[(size_t)i * reps], reps), f = S->nparams > 0 ? S->flops * n : 0;
        printf("%-3d %-26s", i + 1, desc);
        print_cell(ms, f, peak);
        if (i + 1 < nl && inf->up_folded[i + 1]) printf("  read in place by %d", i + 2);
        if (inf->up_folded[i]) printf("  reads %d's input", i);
        if (inf->pool_out[i]) printf("  writes %d's output", i + 2);
        if (i > 0 && inf->pool_out[i - 1]) printf("  written by %d", i);
        printf("\n");
        sum += ms, fsum += f;
    }
    printf("%-3s %-26s", "", "forward (sum)");
    print_cell(sum, fsum, peak);
    printf("\n%-3s %-26s", "", "predict (wall clock)");
    double w = median(wall, reps);
    print_cell(w, fsum, peak);
    printf("  = %.0f images/s\n", n / (w / 1e3));
    printf("FLOPs are each layer's nominal ones: a 3x3 conv that reads an upsampling in place by "
           "channel lanes\nruns in four phases, 4 of its 9 taps (DAECL_CONV_UP_PHASES=0: all "
           "9), so its rate can pass the peak.\n");
    free(t);
    free(wall);
    dc_model_destroy(inf);
}

/* The model's forward FLOPs per image at its own size (every layer's scale with h * w). */
static double forward_flops(const dc_model *m)
{
    double fl = 0;
    for (int i = 0; i < m->arch.nlayers; i++) fl += m->layers[i].flops;
    return fl;
}

/* ---- throughput --------------------------------------------------------------------------- */

static void throughput(bench *b, int train, double seconds)
{
    dc_tensor out;
    int n = b->m->batch;
    /* inference on an inference model, as `eval` and `denoise` run it (shared buffers, folded
     * upsamplings) */
    dc_model *inf = NULL;
    if (!train) TRY(dc_model_create_shared(b->m, b->m->in_h, b->m->in_w, n, &inf));
    /* warm-up: build kernels, allocate scratch */
    for (int i = 0; i < 2; i++) {
        if (train) train_step(b);
        else TRY(dc_model_predict(inf, &b->x, n, &out));
        TRY_CL(clFinish(b->dev->queue), "clFinish");
    }
    long steps = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        if (train) train_step(b);
        else TRY(dc_model_predict(inf, &b->x, n, &out));
        TRY_CL(clFinish(b->dev->queue), "clFinish");
        steps++;
        t = now() - t0;
    } while (t < seconds || steps < 2);
    /* On a shared machine the process's CPU time (PoCL's threads included) is the steadier
     * measure: images per CPU second times the compute units estimates the unshared rate. */
    double cpu = cpu_now() - c0;
    printf("images_per_s %.1f\nimages_per_cpu_s %.1f\n", steps * n / t, steps * n / cpu);
    printf("forward_flops_per_image %.0f\n", forward_flops(b->m));
    dc_model_destroy(inf);
}

static void denoise_throughput(bench *b, int size, int channels, double seconds)
{
    dc_denoiser *d = NULL;
    dc_image in = {0}, out = {0};
    TRY(dc_denoiser_create(b->dev, b->m, 0, &d));
    TRY(dc_image_alloc_c(&in, size, size, channels));
    srand(3);
    for (size_t i = 0; i < (size_t)size * size * channels; i++)
        in.px[i] = (float)rand() / ((float)RAND_MAX + 1.0f);
    /* warm-up: the window model's kernels and buffers */
    TRY(dc_denoiser_run(d, &in, &out, NULL));
    dc_image_free(&out);
    long runs = 0;
    double t0 = now(), c0 = cpu_now(), t;
    do {
        TRY(dc_denoiser_run(d, &in, &out, NULL));
        dc_image_free(&out);
        runs++;
        t = now() - t0;
    } while (t < seconds || runs < 2);
    double cpu = cpu_now() - c0;
    printf("images_per_s %.3f\nimages_per_cpu_s %.3f\n", runs / t, runs / cpu);
    /* b->m runs at its own (small) size: scale its FLOPs to the whole image */
    printf("forward_flops_per_image %.0f\n",
           forward_flops(b->m) * ((double)size * size) / ((double)b->m->in_h * b->m->in_w));
    dc_image_free(&in);
    dc_denoiser_destroy(d);
}

int main(int argc, char **argv)
{
    int platform = -1, device = -1, batch = 128, size = 28, channels = 1, reps = 10, mode = 0;
    int infer = 0; /* table of the inference model's forward */
    double peak = 0, seconds = 3;
    const char *arch_spec = "classic";
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            printf("usage: dae-cl-profile [--platform P] [--device D] [--arch SPEC] [--batch N] "
                   "[--size S] [--channels C] [--reps R] [--peak GFLOPS] "
                   "[--table train|infer] [--throughput train|infer|denoise] [--seconds T]\n"
                   "Per-layer device times of a training step or of inference (OpenCL "
                   "events), or images/s.\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "dae-cl-profile: %s: unknown flag or missing value (see --help)\n", f);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(f, "--platform")) platform = parse_int(f, v, 0, 1000);
        else if (!strcmp(f, "--device")) device = parse_int(f, v, 0, 1000);
        else if (!strcmp(f, "--arch")) arch_spec = v;
        else if (!strcmp(f, "--batch")) batch = parse_int(f, v, 1, 65536);
        else if (!strcmp(f, "--size")) size = parse_int(f, v, 1, 8192);
        else if (!strcmp(f, "--channels")) channels = parse_int(f, v, 1, 4);
        else if (!strcmp(f, "--reps")) reps = parse_int(f, v, 1, 10000);
        else if (!strcmp(f, "--peak")) peak = parse_double(f, v);
        else if (!strcmp(f, "--seconds")) seconds = parse_double(f, v);
        else if (!strcmp(f, "--table")) {
            if (strcmp(v, "train") && strcmp(v, "infer")) {
                fprintf(stderr, "dae-cl-profile: --table: '%s' is not train or infer\n", v);
                return 2;
            }
            infer = !strcmp(v, "infer");
        } else if (!strcmp(f, "--throughput")) {
            if (!strcmp(v, "train")) mode = 1;
            else if (!strcmp(v, "infer")) mode = 2;
            else if (!strcmp(v, "denoise")) mode = 3;
            else {
                fprintf(stderr, "dae-cl-profile: --throughput: '%s' is not train, infer or denoise\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "dae-cl-profile: %s: unknown flag (see --help)\n", f);
            return 2;
        }
    }
    dc_arch arch;
    if (dc_arch_parse(arch_spec, &arch) != DC_OK) {
        fprintf(stderr, "dae-cl-profile: %s\n", dc_error_detail());
        return 2;
    }
    bench b = {0};
    TRY(dc_device_open(platform, device, &b.dev));
    if (mode == 3) { /* the denoiser makes its own window models: the source stays small */
        TRY(dc_model_create(b.dev, &arch, channels, 28, 28, 1, &b.m));
        TRY(dc_model_init_params(b.m, 42));
        denoise_throughput(&b, size, channels, seconds);
        dc_model_destroy(b.m);
        dc_device_close(b.dev);
        return 0;
    }
    TRY(dc_model_create(b.dev, &arch, channels, size, size, batch, &b.m));
    TRY(dc_model_init_params(b.m, 42));
    TRY(dc_tensor_create(b.dev, batch, channels, size, size, DC_LAYOUT_NCHW, &b.x));
    TRY(dc_tensor_create(b.dev, batch, channels, size, size, DC_LAYOUT_NCHW, &b.y));
    fill_uniform(&b, &b.x, 1);
    fill_uniform(&b, &b.y, 2);
    dc_optim_defaults(DC_OPT_ADAM, &b.opt);
    TRY(dc_buffer_create(b.dev, dc_optim_state_floats(DC_OPT_ADAM, b.m->nparams), "adam state", &b.state));
    TRY(dc_optim_state_init(b.dev, &b.opt, b.state, b.m->nparams));
    if (mode) {
        throughput(&b, mode == 1, seconds);
    } else {
        char desc[256], spec[DC_SPEC_MAX];
        dc_device_describe(b.dev, desc, sizeof desc);
        dc_arch_format(&arch, spec, sizeof spec);
        printf("device %s\nmodel %s, %dx%dx%d, batch %d, median of %d steps%s\n", desc, spec,
               channels, size, size, batch, reps, peak > 0 ? "" : " (--peak G adds % of peak)");
        if (peak > 0) printf("peak %.1f GFLOP/s\n", peak);
        if (infer) infer_table(&b, reps, peak);
        else profile_table(&b, reps, peak);
    }
    clReleaseMemObject(b.state);
    dc_tensor_release(&b.x);
    dc_tensor_release(&b.y);
    dc_model_destroy(b.m);
    dc_device_close(b.dev);
    return 0;
}
