/* Double-buffered loader: every sample once per epoch, reproducible shuffles, partial last batch,
 * sequential mode, resume, the gather overlapping the device step, the device buffers surviving
 * until their kernels ran, clean shutdown mid-epoch, and shares of a batch (data-parallel ranks):
 * the parts' rows put together are the whole batch in order, an empty share included; a data
 * set kept in its file reads the same rows, and one whose file shrinks fails by name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daecl/dataset.h"
#include "daecl/dist.h"
#include "daecl/loader.h"
#include "daecl/noise.h"
#include "daecl/tensor.h"
#include "test.h"

enum { NIMG = 1000, H = 8, W = 8, HW = H * W };

static dc_device *dev;
static dc_dataset data;

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - 1000 * (time_t)(ms / 1000)) * 1e6)};
    nanosleep(&ts, NULL);
}

/* Image i: bytes 0 and 1 hold i, the rest a pattern that also depends on i. */
static void make_data(void)
{
    data.n = NIMG;
    data.h = H;
    data.w = W;
    data.images = malloc((size_t)NIMG * HW);
    data.labels = NULL;
    for (int i = 0; i < NIMG; i++) {
        uint8_t *p = data.images + (size_t)i * HW;
        p[0] = (uint8_t)(i & 0xff);
        p[1] = (uint8_t)(i >> 8);
        for (int j = 2; j < HW; j++) p[j] = (uint8_t)(i * 7 + j * 13);
    }
}

static dc_loader *make(int batch, int shuffle, uint64_t seed, int drop_last)
{
    dc_loader_config c = {.data = &data, .batch = batch, .shuffle = shuffle, .seed = seed, .drop_last = drop_last};
    dc_loader *l = NULL;
    CHECK_OK(dc_loader_create(dev, &c, &l));
    return l;
}

/* Run one epoch, reading every batch back; order[] gets the samples in order (<= NIMG), sizes[]
 * the batch sizes. Returns the number of samples, or -1 when a batch's content is wrong. */
static int run_epoch(dc_loader *l, uint32_t epoch, int start, uint32_t *order, int *sizes, int *nbatches)
{
    CHECK_OK(dc_loader_start_epoch(l, epoch, start));
    int total = 0, nb = 0, bad = 0;
    static uint8_t pix[NIMG * HW];
    static uint32_t idx[NIMG];
    for (;;) {
        int n = -1;
        cl_mem p = NULL, ix = NULL;
        cl_event ev = NULL;
        dc_status s = dc_loader_next(l, &n, &p, &ix, &ev);
        CHECK(s == DC_OK, "next: %s", dc_error_detail());
        if (s != DC_OK || n == 0) {
            CHECK(n == 0 && !p && !ix && !ev, "end of epoch: n %d", n);
            break;
        }
        CHECK(clWaitForEvents(1, &ev) == CL_SUCCESS, "upload event");
        CHECK(clEnqueueReadBuffer(dev->queue, p, CL_TRUE, 0, (size_t)n * HW, pix, 0, NULL, NULL) == CL_SUCCESS &&
                  clEnqueueReadBuffer(dev->queue, ix, CL_TRUE, 0, (size_t)n * 4, idx, 0, NULL, NULL) == CL_SUCCESS,
              "read back");
        for (int r = 0; r < n; r++) {
            uint32_t i = idx[r];
            if (i >= NIMG || memcmp(pix + (size_t)r * HW, data.images + (size_t)i * HW, HW) != 0) bad++;
            else if (total < NIMG) order[total] = i;
            total++;
        }
        if (sizes && nb < 64) sizes[nb] = n;
        nb++;
    }
    /* after the end, still the end */
    int n = -1;
    CHECK_OK(dc_loader_next(l, &n, NULL, NULL, NULL));
    CHECK(n == 0, "next after the end gave %d", n);
    if (nbatches) *nbatches = nb;
    CHECK(bad == 0, "%d rows do not hold the image their index names", bad);
    return bad ? -1 : total;
}

static int all_once(const uint32_t *order, int n, int universe)
{
    char *seen = calloc(universe, 1);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        if (order[i] >= (uint32_t)universe || seen[order[i]]) ok = 0;
        else seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

/* 3 parts of batch 64 over 1000 images (last batch 40; with batch 998 the last batch has 2
 * rows, so part 2's share of it is empty): each batch's shares, taken in part order, are the
 * batch of a whole loader; dc_loader_batch_total gives the whole batch's rows. */
static void test_shares(void)
{
    enum { PARTS = 3 };
    static uint32_t whole[NIMG], idx[NIMG];
    for (int bi = 0; bi < 2; bi++) {
        int batch = bi ? 998 : 64;
        dc_loader *w = make(batch, 1, 99, 0), *part[PARTS];
        for (int k = 0; k < PARTS; k++) {
            dc_loader_config c = {.data = &data, .batch = batch, .shuffle = 1, .seed = 99, .parts = PARTS, .part = k};
            part[k] = NULL;
            CHECK_OK(dc_loader_create(dev, &c, &part[k]));
            if (part[k]) CHECK_OK(dc_loader_start_epoch(part[k], 3, 0));
        }
        int o1 = run_epoch(w, 3, 0, whole, NULL, NULL), pos = 0, empty = 0, nb = 0;
        for (;; nb++) {
            int total = -1;
            for (int k = 0; k < PARTS && part[k]; k++) {
                int n = -1;
                cl_mem ix = NULL;
                cl_event ev = NULL;
                CHECK_OK(dc_loader_next(part[k], &n, NULL, &ix, &ev));
                int t = dc_loader_batch_total(part[k]);
                CHECK(k == 0 || t == total, "part %d sees a batch of %d rows, part 0 %d", k, t, total);
                total = t;
                int first, cnt;
                dc_dist_share(t, k, PARTS, &first, &cnt);
                CHECK(n == cnt, "batch %d part %d: %d rows, want %d", nb, k, n, cnt);
                if (n == 0) {
                    empty += t > 0;
                    continue;
                }
                CHECK(clWaitForEvents(1, &ev) == CL_SUCCESS &&
                          clEnqueueReadBuffer(dev->queue, ix, CL_TRUE, 0, (size_t)n * 4, idx, 0, NULL, NULL) ==
                              CL_SUCCESS, "read back");
                CHECK(pos + n <= NIMG && memcmp(idx, whole + pos, (size_t)n * 4) == 0,
                      "batch %d part %d: rows differ from the whole batch's", nb, k);
                pos += n;
            }
            if (total <= 0) break;
        }
        CHECK(o1 == NIMG && pos == NIMG, "shares gave %d of %d rows", pos, NIMG);
        CHECK(empty == (bi ? 1 : 0), "batch %d: %d empty shares of a non-empty batch", batch, empty);
        dc_loader_destroy(w);
        for (int k = 0; k < PARTS; k++) dc_loader_destroy(part[k]);
    }
}

static void test_epochs(void)
{
    static uint32_t o1[NIMG], o2[NIMG], o3[NIMG], perm[NIMG];
    int sizes[64], nb = 0;

    dc_loader *l = make(64, 1, 1234, 0);
    if (!l) return;
    CHECK(dc_loader_batches_per_epoch(l) == 16, "batches per epoch %d", dc_loader_batches_per_epoch(l));
    int n = run_epoch(l, 0, 0, o1, sizes, &nb);
    CHECK(n == NIMG && all_once(o1, n, NIMG), "epoch 0: %d samples, each once: %d", n, all_once(o1, NIMG, NIMG));
    CHECK(nb == 16 && sizes[0] == 64 && sizes[14] == 64 && sizes[15] == 1000 - 15 * 64,
          "batches %d, last %d", nb, sizes[15]);
    dc_loader_permutation(1234, 0, NIMG, perm);
    CHECK(memcmp(perm, o1, sizeof perm) == 0, "order is dc_loader_permutation(seed, epoch)");
    int sequential = 1;
    for (int i = 0; i < NIMG; i++) sequential &= o1[i] == (uint32_t)i;
    CHECK(!sequential, "shuffled order is the identity");

    n = run_epoch(l, 1, 0, o2, NULL, NULL);
    CHECK(n == NIMG && all_once(o2, n, NIMG), "epoch 1: every sample once");
    int same = 0;
    for (int i = 0; i < NIMG; i++) same += o1[i] == o2[i];
    CHECK(same < 20, "epochs 0 and 1 agree at %d positions", same);

    /* The same (seed, epoch) again, on this loader and on a new one: the same order. */
    n = run_epoch(l, 0, 0, o3, NULL, NULL);
    CHECK(n == NIMG && memcmp(o1, o3, sizeof o1) == 0, "epoch 0 repeated differs");
    dc_loader *l2 = make(100, 1, 1234, 0);
    n = run_epoch(l2, 1, 0, o3, NULL, NULL);
    CHECK(n == NIMG && memcmp(o2, o3, sizeof o2) == 0, "a new loader (other batch size) replays epoch 1");
    dc_loader_destroy(l2);
    /* Another seed: another order. */
    l2 = make(64, 1, 1235, 0);
    n = run_epoch(l2, 0, 0, o3, NULL, NULL);
    same = 0;
    for (int i = 0; i < NIMG; i++) same += o1[i] == o3[i];
    CHECK(n == NIMG && same < 20, "seeds 1234 and 1235 agree at %d positions", same);
    dc_loader_destroy(l2);

    /* Resume: starting at batch 5 gives the rest of the same epoch. */
    n = run_epoch(l, 1, 5, o3, NULL, &nb);
    CHECK(n == NIMG - 5 * 64 && nb == 11 && memcmp(o3, o2 + 5 * 64, sizeof(uint32_t) * n) == 0,
          "resume at batch 5: %d samples in %d batches", n, nb);
    n = run_epoch(l, 1, 16, o3, NULL, &nb);
    CHECK(n == 0 && nb == 0, "resume at the end: empty epoch");
    CHECK(dc_loader_start_epoch(l, 1, 17) == DC_ERR_INVALID_ARG, "start batch past the end");
    CHECK(dc_loader_start_epoch(l, 1, -1) == DC_ERR_INVALID_ARG, "negative start batch");
    dc_loader_destroy(l);

    /* drop_last: 15 full batches. */
    l = make(64, 1, 99, 1);
    n = run_epoch(l, 3, 0, o1, sizes, &nb);
    CHECK(n == 960 && nb == 15 && sizes[14] == 64 && all_once(o1, n, NIMG), "drop_last: %d in %d", n, nb);
    dc_loader_destroy(l);

    /* Sequential (validation): 0, 1, 2, ... in every epoch, batch larger than half the data. */
    l = make(600, 0, 7, 0);
    for (uint32_t e = 0; e < 2; e++) {
        n = run_epoch(l, e, 0, o1, sizes, &nb);
        sequential = n == NIMG;
        for (int i = 0; i < n && i < NIMG; i++) sequential &= o1[i] == (uint32_t)i;
        CHECK(sequential && nb == 2 && sizes[1] == 400, "shuffle=0 epoch %u: sequential %d, %d batches", e,
              sequential, nb);
    }
    dc_loader_destroy(l);

    /* One batch bigger than the dataset, kept. */
    l = make(4096, 1, 7, 0);
    n = run_epoch(l, 0, 0, o1, sizes, &nb);
    CHECK(n == NIMG && nb == 1 && all_once(o1, n, NIMG), "one oversized batch");
    dc_loader_destroy(l);
}

static void test_errors(void)
{
    dc_loader *l = NULL;
    dc_loader_config c = {.data = &data, .batch = 0, .shuffle = 1};
    CHECK(dc_loader_create(dev, &c, &l) == DC_ERR_INVALID_ARG && !l, "batch 0");
    c.batch = 2000;
    c.drop_last = 1;
    CHECK(dc_loader_create(dev, &c, &l) == DC_ERR_INVALID_ARG && !l, "drop_last with an oversized batch: %s",
          dc_error_detail());
    dc_dataset empty = {.n = 0, .h = 8, .w = 8};
    c = (dc_loader_config){.data = &empty, .batch = 10, .shuffle = 1};
    CHECK(dc_loader_create(dev, &c, &l) == DC_ERR_INVALID_ARG && !l, "empty dataset");
    l = make(10, 1, 0, 0);
    int n = 5;
    CHECK(dc_loader_next(l, &n, NULL, NULL, NULL) == DC_ERR_INVALID_ARG && n == 0, "next before start");
    dc_loader_destroy(l);
    dc_loader_destroy(NULL);
}

/* The gather of batch b+1 runs while the device works on batch b. */
static void test_overlap(void)
{
    const int B = 20;
    const double D = 20.0; /* ms */
    dc_loader *l = make(32, 1, 5, 0);
    if (!l) return;
    dc_loader_set_delay_us(l, (int)(D * 1000));
    CHECK_OK(dc_loader_start_epoch(l, 0, 0));
    double t0 = test_now();
    for (int b = 0; b < B; b++) {
        int n = 0;
        cl_event ev = NULL;
        CHECK_OK(dc_loader_next(l, &n, NULL, NULL, &ev));
        if (n == 0) break;
        clWaitForEvents(1, &ev);
        sleep_ms(D); /* the device step */
    }
    double t = (test_now() - t0) * 1e3;
    dc_loader_stats st;
    dc_loader_stats_get(l, &st);
    fprintf(stderr, "overlap: %d batches of %.0f ms gather + %.0f ms step: %.0f ms (serial %.0f, "
            "overlapped %.0f); consumer waits %ld, producer waits %ld\n",
            B, D, D, t, 2 * B * D, B * D, st.consumer_waits, st.producer_waits);
    CHECK(t < 1.6 * B * D, "%d batches took %.0f ms: the gather does not overlap the step (limit %.0f)", B, t,
          1.6 * B * D);
    CHECK(st.batches == B, "batches %ld", st.batches);
    dc_loader_destroy(l); /* mid-epoch: 32 batches in all */

    /* Slow device, fast loader: the main thread waits only for the first batch. */
    l = make(32, 1, 5, 0);
    CHECK_OK(dc_loader_start_epoch(l, 0, 0));
    for (int b = 0; b < 10; b++) {
        int n = 0;
        CHECK_OK(dc_loader_next(l, &n, NULL, NULL, NULL));
        sleep_ms(15);
    }
    dc_loader_stats_get(l, &st);
    /* Ideally 1 and 9; a loaded machine can deschedule the loader thread for a step or two. */
    CHECK(st.consumer_waits <= 3 && st.producer_waits >= 6, "slow device: consumer waits %ld, producer %ld",
          st.consumer_waits, st.producer_waits);
    fprintf(stderr, "slow device: consumer waits %ld, producer waits %ld\n", st.consumer_waits,
            st.producer_waits);
    dc_loader_destroy(l);

    /* Slow loader, fast device: the main thread waits for nearly every batch. */
    l = make(32, 1, 5, 0);
    dc_loader_set_delay_us(l, 5000);
    CHECK_OK(dc_loader_start_epoch(l, 0, 0));
    for (int b = 0; b < 10; b++) {
        int n = 0;
        CHECK_OK(dc_loader_next(l, &n, NULL, NULL, NULL));
    }
    dc_loader_stats_get(l, &st);
    CHECK(st.consumer_waits >= 8, "slow loader: consumer waits %ld", st.consumer_waits);
    fprintf(stderr, "slow loader: consumer waits %ld, producer waits %ld\n", st.consumer_waits,
            st.producer_waits);
    dc_loader_destroy(l);
}

/* The main thread runs ahead of the device: it enqueues the noise kernel of every batch without
 * ever waiting. Each batch's device buffers must still hold that batch when its kernel runs. */
static void test_with_device_consumer(void)
{
    enum { BATCH = 48 };
    dc_loader *l = make(BATCH, 1, 77, 0);
    if (!l) return;
    dc_tensor clean;
    CHECK_OK(dc_tensor_create(dev, NIMG, 1, H, W, DC_LAYOUT_NCHW, &clean));
    uint32_t *order = malloc(sizeof(uint32_t) * NIMG);
    dc_loader_permutation(77, 2, NIMG, order);
    const dc_noise_config none = {DC_NOISE_NONE, 0, 0};
    CHECK_OK(dc_loader_start_epoch(l, 2, 0));
    int row = 0;
    for (;;) {
        int n = 0;
        cl_mem p, ix;
        cl_event ev;
        if (dc_loader_next(l, &n, &p, &ix, &ev) != DC_OK || n == 0) break;
        dc_tensor view = dc_tensor_view(clean.buf, (size_t)row * HW, n, 1, H, W, DC_LAYOUT_NCHW);
        CHECK_OK(dc_noise_apply(dev, &none, 0, 0, p, ix, n, H, W, &view, NULL, 1, &ev));
        row += n;
    }
    CHECK(row == NIMG, "rows %d", row);
    float *out = malloc(sizeof(float) * NIMG * HW);
    CHECK_OK(dc_tensor_read(dev, &clean, out));
    int bad = 0;
    for (int r = 0; r < NIMG; r++)
        for (int j = 0; j < HW; j++)
            bad += out[(size_t)r * HW + j] != data.images[(size_t)order[r] * HW + j] / 255.0f;
    CHECK(bad == 0, "%d pixels of the device batches were overwritten before use", bad);
    free(out);
    free(order);
    dc_tensor_release(&clean);
    dc_loader_destroy(l);
}

/* Destroy while the thread is in each of its states: sleeping in a gather, waiting for a free
 * slot, waiting for an upload; and restart an epoch half way. */
static void test_shutdown(void)
{
    dc_loader *l = make(16, 1, 3, 0);
    dc_loader_set_delay_us(l, 200000); /* 0.2 s per gather: destroy interrupts the first */
    CHECK_OK(dc_loader_start_epoch(l, 0, 0));
    double t0 = test_now();
    dc_loader_destroy(l);
    CHECK(test_now() - t0 < 1.0, "destroy during a gather took %.2f s", test_now() - t0);

    l = make(16, 1, 3, 0);
    CHECK_OK(dc_loader_start_epoch(l, 0, 0));
    int n;
    cl_event ev;
    CHECK_OK(dc_loader_next(l, &n, NULL, NULL, &ev));
    CHECK_OK(dc_loader_next(l, &n, NULL, NULL, &ev));
    sleep_ms(20); /* the loader fills both slots and blocks */
    dc_loader_destroy(l);

    l = make(16, 1, 3, 0);
    CHECK_OK(dc_loader_start_epoch(l, 0, 0));
    CHECK_OK(dc_loader_next(l, &n, NULL, NULL, &ev));
    /* restart mid-epoch: a fresh epoch from its first batch */
    static uint32_t order[NIMG], perm[NIMG];
    int total = run_epoch(l, 4, 0, order, NULL, NULL);
    dc_loader_permutation(3, 4, NIMG, perm);
    CHECK(total == NIMG && memcmp(order, perm, sizeof perm) == 0, "restart mid-epoch");
    CHECK_OK(dc_loader_start_epoch(l, 5, 0));
    dc_loader_destroy(l); /* started, nothing taken */

    l = make(16, 1, 3, 0);
    dc_loader_destroy(l); /* never started */
}

/* dc_dataset_open's set (the samples stay in the IDX file): the same rows as from memory; a file
 * cut short mid-run makes the next batch fail with the file's name, and the loader stops. */
static void test_kept_in_file(void)
{
    const char *base = getenv("DAECL_TEST_TMP");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/loader-XXXXXX", base && *base ? base : "/tmp");
    if (base && *base) mkdir(base, 0755);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    CHECK_OK(dc_idx_write_images(path, data.images, NIMG, H, W, 0));
    dc_dataset kept;
    CHECK_OK(dc_dataset_open(dir, "train", 0, &kept));
    CHECK(kept.file && !kept.images && kept.n == NIMG, "the set stays in %s", path);
    dc_loader_config c = {.data = &kept, .batch = 64, .shuffle = 1, .seed = 3};
    dc_loader *l = NULL;
    CHECK_OK(dc_loader_create(dev, &c, &l));
    static uint32_t order[NIMG];
    CHECK(run_epoch(l, 0, 0, order, NULL, NULL) == NIMG && all_once(order, NIMG, NIMG),
          "an epoch from the file: every image once, each row its image");

    CHECK(truncate(path, 16 + (NIMG / 2) * HW) == 0, "truncate %s", path);
    CHECK_OK(dc_loader_start_epoch(l, 1, 0));
    dc_status s = DC_OK;
    for (int b = 0; b < NIMG / 64 + 2 && s == DC_OK; b++) {
        int n = 0;
        s = dc_loader_next(l, &n, NULL, NULL, NULL);
        if (s == DC_OK && n == 0) break;
    }
    CHECK(s == DC_ERR_IO && strstr(dc_error_detail(), path) && strstr(dc_error_detail(), "changed"),
          "a shrunk file fails the epoch by name: %s (%s)", dc_strerror(s), dc_error_detail());
    dc_clear_error();
    dc_loader_destroy(l);
    dc_dataset_free(&kept);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    make_data();
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (!dev) TEST_MAIN_END();
    test_errors();
    test_epochs();
    test_shares();
    test_overlap();
    test_with_device_consumer();
    test_shutdown();
    test_kept_in_file();
    dc_device_close(dev);
    free(data.images);
    TEST_MAIN_END();
}
