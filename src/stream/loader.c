/* Double-buffered loader: see src/daecl/loader.h for the contract.
 *
 * Slots form a ring of NSLOTS; the loader thread fills them in batch order and the main thread
 * consumes them in the same order. A slot's life:
 *
 *   FREE ─(loader)─► FILLING ─(loader)─► FILLED ─(main: enqueue write)─► UPLOADING
 *     ▲                                                                      │
 *     └──────────── (loader: clWaitForEvents on the write's event) ◄─────────┘
 *
 * Only the loader thread touches FREE/FILLING/UPLOADING slots while it runs, only the main
 * thread touches FILLED ones; the mutex guards the state words and the counters, never the
 * gather or an OpenCL call. The loader thread does the waiting for uploads itself (instead of
 * an event callback), so nothing runs on driver threads and shutdown needs no callback
 * bookkeeping: join the thread, then wait for what is still in flight. */
#include "daecl/loader.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daecl/dist.h"
#include "daecl/patches.h"

#define NSLOTS 2

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_FILLED, SLOT_UPLOADING };

struct slot {
    cl_mem stage_pix, stage_idx; /* pinned host staging, mapped once */
    uint8_t *host_pix;
    uint32_t *host_idx;
    cl_mem dev_pix, dev_idx; /* device copies the kernels read */
    cl_event event;          /* the upload in flight (UPLOADING), slot's reference */
    enum slot_state state;
    int n, total; /* rows of the share, of the whole batch */
};

struct dc_loader {
    dc_device *dev;
    dc_loader_config cfg;
    size_t hw;    /* bytes per sample */
    size_t total; /* samples per epoch */
    int nbatches; /* per epoch */
    uint32_t *perm;
    struct slot slots[NSLOTS];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_ready;
    pthread_t thread;
    int thread_running; /* main thread only */
    int started;        /* main thread only: an epoch was started */

    /* guarded by mu */
    int stop, done;
    long consumed;
    dc_status err;
    char errmsg[512];
    dc_loader_stats stats;

    /* set before the thread starts, read-only while it runs */
    uint32_t epoch;
    int start_batch;

    atomic_int delay_us;
    cl_event last_event; /* main thread's reference to the event handed out last */
    int last_total;      /* main thread: whole-batch rows of the batch handed out last */
};

/* ---- order ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, range), range >= 1, without modulo bias (Lemire's multiply-and-reject). */
static uint32_t bounded(uint64_t *s, uint32_t range)
{
    uint64_t m = (splitmix64(s) >> 32) * (uint64_t)range;
    if ((uint32_t)m < range) {
        uint32_t t = (uint32_t)(0u - range) % range;
        while ((uint32_t)m < t) m = (splitmix64(s) >> 32) * (uint64_t)range;
    }
    return (uint32_t)(m >> 32);
}

void dc_loader_permutation(uint64_t seed, uint32_t epoch, uint32_t n, uint32_t *perm)
{
    uint64_t s = seed;
    uint64_t e = ((uint64_t)epoch << 32) ^ 0x6A09E667F3BCC909ull;
    s = splitmix64(&s) ^ splitmix64(&e); /* the state keyed by (seed, epoch) */
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = bounded(&s, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

/* ---- the loader thread ---- */

static void set_error(dc_loader *l, dc_status s, const char *what, cl_int e)
{
    if (l->err == DC_OK) {
        l->err = s;
        snprintf(l->errmsg, sizeof l->errmsg, "loader: %s: %s", what, dc_cl_error_name(e));
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_us(int us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Rows [first, first + cnt) of batch b; fails only reading a data set kept in its file. */
static dc_status gather(dc_loader *l, struct slot *s, int b, int first, int cnt)
{
    if (l->cfg.patches) {
        for (int r = 0; r < cnt; r++) {
            uint32_t idx = (uint32_t)((size_t)b * (size_t)l->cfg.batch + (size_t)first + (size_t)r);
            dc_patch p;
            dc_patch_draw(l->cfg.patches, l->cfg.patch, l->cfg.augment, l->cfg.seed, l->epoch, idx, &p);
            dc_patch_copy(l->cfg.patches, l->cfg.patch, &p, s->host_pix + (size_t)r * l->hw);
            s->host_idx[r] = idx;
        }
        return DC_OK;
    }
    for (int r = 0; r < cnt; r++) {
        size_t pos = (size_t)b * (size_t)l->cfg.batch + (size_t)first + (size_t)r;
        uint32_t idx = l->cfg.shuffle ? l->perm[pos] : (uint32_t)pos;
        DC_TRY(dc_dataset_read(l->cfg.data, idx, 1, s->host_pix + (size_t)r * l->hw));
        s->host_idx[r] = idx;
    }
    return DC_OK;
}

static void *loader_main(void *arg)
{
    dc_loader *l = arg;
    size_t total = l->total;
    if (l->cfg.shuffle && !l->cfg.patches) dc_loader_permutation(l->cfg.seed, l->epoch, (uint32_t)total, l->perm);

    for (int b = l->start_batch, k = 0; b < l->nbatches; b++, k++) {
        struct slot *s = &l->slots[k % NSLOTS];
        int waited = 0;
        pthread_mutex_lock(&l->mu);
        while (!l->stop && s->state != SLOT_FREE) {
            if (s->state == SLOT_UPLOADING) {
                /* Recycle the slot once the write reading it is done. The main thread does not
                 * touch an UPLOADING slot, so the event can be waited on unlocked. */
                cl_event ev = s->event;
                pthread_mutex_unlock(&l->mu);
                cl_int st = CL_QUEUED;
                cl_int e = clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st, NULL);
                int blocked = e == CL_SUCCESS && st > CL_COMPLETE;
                if (e == CL_SUCCESS && st >= CL_COMPLETE) e = clWaitForEvents(1, &ev);
                else if (e == CL_SUCCESS) e = st; /* the write failed */
                clReleaseEvent(ev);
                pthread_mutex_lock(&l->mu);
                s->event = NULL;
                s->state = SLOT_FREE;
                if (blocked && !waited) {
                    waited = 1;
                    l->stats.producer_waits++;
                }
                if (e != CL_SUCCESS) {
                    set_error(l, DC_ERR_OPENCL, "batch upload failed", e);
                    pthread_cond_broadcast(&l->cv);
                }
            } else {
                if (!waited) {
                    waited = 1;
                    l->stats.producer_waits++;
                }
                pthread_cond_wait(&l->cv, &l->mu);
            }
        }
        if (l->stop) {
            pthread_mutex_unlock(&l->mu);
            return NULL;
        }
        s->state = SLOT_FILLING;
        pthread_mutex_unlock(&l->mu);

        size_t first = (size_t)b * (size_t)l->cfg.batch;
        int whole = total - first < (size_t)l->cfg.batch ? (int)(total - first) : l->cfg.batch;
        int from = 0, cnt = whole;
        if (l->cfg.parts > 1) dc_dist_share(whole, l->cfg.part, l->cfg.parts, &from, &cnt);
        double g0 = now_s();
        dc_status gs = gather(l, s, b, from, cnt);
        if (gs != DC_OK) {
            pthread_mutex_lock(&l->mu);
            if (l->err == DC_OK) {
                l->err = gs;
                snprintf(l->errmsg, sizeof l->errmsg, "%s", dc_error_detail());
            }
            s->state = SLOT_FREE;
            l->done = 1;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            dc_clear_error();
            return NULL;
        }
        double g1 = now_s();
        int delay = atomic_load(&l->delay_us);
        if (delay > 0) sleep_us(delay);

        pthread_mutex_lock(&l->mu);
        s->n = cnt;
        s->total = whole;
        s->state = SLOT_FILLED;
        l->stats.gathered++;
        l->stats.gather_seconds += g1 - g0;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_lock(&l->mu);
    l->done = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- main-thread side ---- */

static void stop_thread(dc_loader *l)
{
    if (!l->thread_running) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->thread_running = 0;
}

/* With the thread joined: wait for the uploads in flight and free every slot. */
static dc_status reset_slots(dc_loader *l)
{
    cl_int first = CL_SUCCESS;
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *s = &l->slots[i];
        if (s->event) {
            cl_int e = clWaitForEvents(1, &s->event);
            if (e != CL_SUCCESS && first == CL_SUCCESS) first = e;
            clReleaseEvent(s->event);
            s->event = NULL;
        }
        s->state = SLOT_FREE;
        s->n = 0;
    }
    return first == CL_SUCCESS ? DC_OK : dc_cl_fail(first, "loader: batch upload");
}

int dc_loader_batch_total(const dc_loader *l) { return l->last_total; }

int dc_loader_batches_per_epoch(const dc_loader *l)
{
    return l ? l->nbatches : 0;
}

void dc_loader_set_delay_us(dc_loader *l, int us)
{
    if (l) atomic_store(&l->delay_us, us < 0 ? 0 : us);
}

void dc_loader_stats_get(const dc_loader *l, dc_loader_stats *s)
{
    if (!s) return;
    if (!l) {
        *s = (dc_loader_stats){0, 0, 0, 0, 0.0};
        return;
    }
    dc_loader *m = (dc_loader *)l; /* the mutex is not part of the logical state */
    pthread_mutex_lock(&m->mu);
    *s = m->stats;
    pthread_mutex_unlock(&m->mu);
}

void dc_loader_destroy(dc_loader *l)
{
    if (!l) return;
    if (l->sync_ready) {
        stop_thread(l);
        reset_slots(l);
    }
    if (l->last_event) clReleaseEvent(l->last_event);
    cl_command_queue q = l->dev->queue;
    int unmapped = 0;
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *s = &l->slots[i];
        if (s->host_pix && clEnqueueUnmapMemObject(q, s->stage_pix, s->host_pix, 0, NULL, NULL) == CL_SUCCESS)
            unmapped = 1;
        if (s->host_idx && clEnqueueUnmapMemObject(q, s->stage_idx, s->host_idx, 0, NULL, NULL) == CL_SUCCESS)
            unmapped = 1;
    }
    if (unmapped) clFinish(q);
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *s = &l->slots[i];
        cl_mem *mems[] = {&s->stage_pix, &s->stage_idx, &s->dev_pix, &s->dev_idx};
        for (size_t j = 0; j < sizeof mems / sizeof mems[0]; j++)
            if (*mems[j]) clReleaseMemObject(*mems[j]);
    }
    if (l->sync_ready) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
    }
    free(l->perm);
    free(l);
}

static dc_status make_buffer(dc_loader *l, cl_mem_flags flags, size_t bytes, const char *what,
                             cl_mem *out)
{
    cl_int e = CL_SUCCESS;
    *out = clCreateBuffer(l->dev->ctx, flags, bytes, NULL, &e);
    if (e != CL_SUCCESS) {
        *out = NULL;
        char msg[96];
        snprintf(msg, sizeof msg, "loader: %s buffer of %zu bytes", what, bytes);
        return dc_cl_fail(e, msg);
    }
    return DC_OK;
}

static dc_status map_staging(dc_loader *l, cl_mem buf, size_t bytes, void **out)
{
    cl_int e = CL_SUCCESS;
    void *p = clEnqueueMapBuffer(l->dev->queue, buf, CL_TRUE, CL_MAP_WRITE, 0, bytes, 0, NULL,
                                 NULL, &e);
    if (e != CL_SUCCESS || !p) return dc_cl_fail(e != CL_SUCCESS ? e : CL_INVALID_VALUE, "loader: map staging buffer");
    *out = p;
    return DC_OK;
}

static dc_status create_slots(dc_loader *l)
{
    size_t pix = (size_t)l->cfg.batch * l->hw, idx = (size_t)l->cfg.batch * sizeof(uint32_t);
    for (int i = 0; i < NSLOTS; i++) {
        struct slot *s = &l->slots[i];
        void *p = NULL;
        DC_TRY(make_buffer(l, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, pix, "staging", &s->stage_pix));
        DC_TRY(map_staging(l, s->stage_pix, pix, &p));
        s->host_pix = p;
        DC_TRY(make_buffer(l, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, idx, "staging", &s->stage_idx));
        DC_TRY(map_staging(l, s->stage_idx, idx, &p));
        s->host_idx = p;
        DC_TRY(make_buffer(l, CL_MEM_READ_ONLY, pix, "batch pixels", &s->dev_pix));
        DC_TRY(make_buffer(l, CL_MEM_READ_ONLY, idx, "batch indices", &s->dev_idx));
        s->state = SLOT_FREE;
    }
    return DC_OK;
}

dc_status dc_loader_create(dc_device *dev, const dc_loader_config *cfg, dc_loader **out)
{
    if (!out) return dc_fail(DC_ERR_INVALID_ARG, "loader: no output pointer");
    *out = NULL;
    if (!dev || !cfg || (!cfg->data && !cfg->patches))
        return dc_fail(DC_ERR_INVALID_ARG, "loader: missing device or dataset");
    size_t n, sample;
    if (cfg->patches) {
        const dc_imageset *ps = cfg->patches;
        if (ps->n == 0 || cfg->patch <= 0 || cfg->patches_per_epoch == 0)
            return dc_fail(DC_ERR_INVALID_ARG, "loader: %zu images, patch %d, %u patches per epoch", ps->n, cfg->patch,
                           cfg->patches_per_epoch);
        for (size_t i = 0; i < ps->n; i++)
            if (ps->w[i] < cfg->patch || ps->h[i] < cfg->patch)
                return dc_fail(DC_ERR_INVALID_ARG, "loader: image %zu (%dx%d) is smaller than the patch %d", i,
                               ps->w[i], ps->h[i], cfg->patch);
        n = cfg->patches_per_epoch;
        sample = (size_t)ps->c * (size_t)cfg->patch * (size_t)cfg->patch * (size_t)ps->depth;
    } else {
        const dc_dataset *d = cfg->data;
        if (d->n == 0 || (!d->images && !d->file) || d->h <= 0 || d->w <= 0)
            return dc_fail(DC_ERR_INVALID_ARG, "loader: empty dataset (%zu images of %dx%d)", d->n, d->h, d->w);
        if (d->n > UINT32_MAX)
            return dc_fail(DC_ERR_INVALID_ARG, "loader: %zu images, at most %u supported", d->n, UINT32_MAX);
        n = d->n;
        sample = dc_dataset_sample_bytes(d);
    }
    if (cfg->batch <= 0) return dc_fail(DC_ERR_INVALID_ARG, "loader: batch size %d must be > 0", cfg->batch);
    if (cfg->drop_last && (size_t)cfg->batch > n)
        return dc_fail(DC_ERR_INVALID_ARG,
                       "loader: batch size %d is larger than the dataset (%zu images) and the last "
                       "partial batch is dropped: every epoch would be empty", cfg->batch, n);

    dc_loader *l = calloc(1, sizeof *l);
    if (!l) return dc_fail(DC_ERR_NOMEM, "loader: out of memory");
    l->dev = dev;
    l->cfg = *cfg;
    l->hw = sample;
    l->total = n;
    l->nbatches = (int)(cfg->drop_last ? n / (size_t)cfg->batch
                                       : (n + (size_t)cfg->batch - 1) / (size_t)cfg->batch);
    atomic_init(&l->delay_us, 0);
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l);
        return dc_fail(DC_ERR_NOMEM, "loader: pthread_mutex_init failed");
    }
    if (pthread_cond_init(&l->cv, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        free(l);
        return dc_fail(DC_ERR_NOMEM, "loader: pthread_cond_init failed");
    }
    l->sync_ready = 1;
    if (cfg->shuffle && !cfg->patches) {
        l->perm = malloc(n * sizeof *l->perm);
        if (!l->perm) {
            dc_loader_destroy(l);
            return dc_fail(DC_ERR_NOMEM, "loader: out of memory for a %zu-entry permutation", n);
        }
    }
    dc_status s = create_slots(l);
    if (s != DC_OK) {
        dc_loader_destroy(l);
        return s;
    }
    *out = l;
    return DC_OK;
}

dc_status dc_loader_start_epoch(dc_loader *l, uint32_t epoch, int start_batch)
{
    if (!l) return dc_fail(DC_ERR_INVALID_ARG, "loader: NULL loader");
    if (start_batch < 0 || start_batch > l->nbatches)
        return dc_fail(DC_ERR_INVALID_ARG, "loader: start batch %d out of range [0, %d]",
                       start_batch, l->nbatches);
    stop_thread(l);
    dc_status s = reset_slots(l);
    pthread_mutex_lock(&l->mu);
    l->stop = 0;
    l->done = 0;
    l->consumed = 0;
    l->err = DC_OK;
    l->errmsg[0] = '\0';
    pthread_mutex_unlock(&l->mu);
    l->started = 0;
    if (s != DC_OK) return s;
    l->epoch = epoch;
    l->start_batch = start_batch;
    int e = pthread_create(&l->thread, NULL, loader_main, l);
    if (e != 0) return dc_fail(DC_ERR_NOMEM, "loader: cannot start the loader thread: %s", strerror(e));
    l->thread_running = 1;
    l->started = 1;
    return DC_OK;
}

dc_status dc_loader_next(dc_loader *l, int *n, cl_mem *pixels, cl_mem *indices, cl_event *ready)
{
    if (n) *n = 0;
    if (pixels) *pixels = NULL;
    if (indices) *indices = NULL;
    if (ready) *ready = NULL;
    if (!l || !n) return dc_fail(DC_ERR_INVALID_ARG, "loader: NULL loader or count");
    l->last_total = 0;
    if (!l->started) return dc_fail(DC_ERR_INVALID_ARG, "loader: no epoch started");
    if (l->last_event) {
        clReleaseEvent(l->last_event);
        l->last_event = NULL;
    }

    pthread_mutex_lock(&l->mu);
    struct slot *s = &l->slots[l->consumed % NSLOTS];
    int waited = 0;
    for (;;) {
        if (l->err != DC_OK) {
            dc_status err = l->err;
            char msg[sizeof l->errmsg];
            memcpy(msg, l->errmsg, sizeof msg);
            pthread_mutex_unlock(&l->mu);
            return dc_fail(err, "%s", msg);
        }
        if (s->state == SLOT_FILLED) break;
        if (l->done) { /* the loader filled its last batch and this slot is not one of them */
            pthread_mutex_unlock(&l->mu);
            return DC_OK;
        }
        if (!waited) {
            waited = 1;
            l->stats.consumer_waits++;
        }
        pthread_cond_wait(&l->cv, &l->mu);
    }
    int cnt = s->n, whole = s->total;
    pthread_mutex_unlock(&l->mu);

    /* The slot is FILLED: ours until we mark it UPLOADING. An empty share uploads nothing (a
     * zero-byte write is invalid): a marker gives the event. */
    cl_command_queue q = l->dev->queue;
    cl_event ev = NULL;
    cl_int e = cnt ? clEnqueueWriteBuffer(q, s->dev_pix, CL_FALSE, 0, (size_t)cnt * l->hw, s->host_pix,
                                          0, NULL, NULL)
                   : clEnqueueMarkerWithWaitList(q, 0, NULL, &ev);
    if (e == CL_SUCCESS && cnt)
        e = clEnqueueWriteBuffer(q, s->dev_idx, CL_FALSE, 0, (size_t)cnt * sizeof(uint32_t),
                                 s->host_idx, 0, NULL, &ev);
    if (e == CL_SUCCESS) e = clFlush(q); /* the loader thread waits on ev: it must be submitted */
    if (e != CL_SUCCESS) {
        if (ev) clReleaseEvent(ev);
        pthread_mutex_lock(&l->mu);
        set_error(l, DC_ERR_OPENCL, "batch upload", e);
        pthread_mutex_unlock(&l->mu);
        return dc_cl_fail(e, "loader: batch upload");
    }
    /* In order: ev completing means both writes are done. */
    clRetainEvent(ev);
    l->last_event = ev;

    pthread_mutex_lock(&l->mu);
    s->event = ev;
    s->state = SLOT_UPLOADING;
    l->consumed++;
    l->stats.batches++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);

    *n = cnt;
    l->last_total = whole;
    if (pixels) *pixels = s->dev_pix;
    if (indices) *indices = s->dev_idx;
    if (ready) *ready = ev;
    return DC_OK;
}
