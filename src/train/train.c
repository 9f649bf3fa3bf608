/* The training loop (see train.h). One step is enqueue-only: noise, forward, loss, backward,
 * optimizer. The host reads the device's running loss only to redraw progress and at the end
 * of an epoch; the loader's two slots keep the host at most two batches ahead of the device. */
#include "daecl/train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daecl/checkpoint.h"
#include "daecl/conv_gemm.h"
#include "daecl/dist.h"
#include "daecl/image.h"
#include "daecl/imageset.h"
#include "daecl/loader.h"
#include "daecl/progress.h"

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

#define SAMPLE_IMAGES 8
#define NAN_CHECK_STEPS 50

static volatile sig_atomic_t stop_requested;

void dc_train_request_stop(void) { stop_requested = 1; }

void dc_train_defaults(dc_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    dc_run_config_defaults(&cfg->run);
    cfg->out_dir = "runs/default";
}

/* Seeds for the independent random streams, derived from the run seed. */
static uint64_t derive_seed(uint64_t seed, uint64_t stream)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
enum { STREAM_INIT = 1, STREAM_SHUFFLE = 2 };

/* ---- run directory -------------------------------------------------------------------------- */

static dc_status make_dir(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return dc_fail(DC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return dc_fail(DC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    return DC_OK;
}

/* OUT/.lock, held with flock for the whole run. The file keeps the holder's PID for the message
 * a second writer gets; the lock itself dies with the process. */
static dc_status lock_run_dir(const char *dir, int *fd_out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return dc_fail(DC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return dc_fail(DC_ERR_INVALID_ARG, "%s is in use by another dae-cl train (pid %s); wait for it to finish or "
                           "choose another --out", dir, pid[0] ? pid : "unknown");
        return dc_fail(DC_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int e = errno;
        close(fd);
        return dc_fail(DC_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    *fd_out = fd;
    return DC_OK;
}

/* Remove NAME.tmp.PID files whose process is gone (kill -9 in the middle of an atomic write). */
static void remove_stale_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        if (end == t + 5 || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

/* lr and unix_time came later, at the end: readers that look columns up by name, or by position
 * from the left, read old and new logs alike. */
const char dc_metrics_csv_header[] =
    "epoch,train_loss,val_loss,val_psnr,val_ssim,val_acc,seconds,img_per_s,lr,unix_time\n";
#define CSV_FIELDS 10

/* Rows from before lr and unix_time existed get those fields empty, so every row of the log has
 * the header's fields. Returns rows (reallocated) or NULL when out of memory. */
static char *pad_rows(char *rows)
{
    size_t len = strlen(rows), extra = 0;
    for (const char *p = rows; *p;) {
        const char *nl = strchr(p, '\n');
        int commas = 0;
        for (const char *q = p; q < nl; q++) commas += *q == ',';
        if (commas < CSV_FIELDS - 1) extra += (size_t)(CSV_FIELDS - 1 - commas);
        p = nl + 1;
    }
    if (!extra) return rows;
    char *out = malloc(len + extra + 1), *o = out;
    if (!out) {
        free(rows);
        return NULL;
    }
    for (const char *p = rows; *p;) {
        const char *nl = strchr(p, '\n');
        int commas = 0;
        for (const char *q = p; q < nl; q++) commas += *q == ',';
        memcpy(o, p, (size_t)(nl - p));
        o += nl - p;
        for (; commas < CSV_FIELDS - 1; commas++) *o++ = ',';
        *o++ = '\n';
        p = nl + 1;
    }
    *o = '\0';
    free(rows);
    return out;
}

/* epoch_NNN.dcl files in dir, all but the `keep` of the highest epochs removed (keep 0: all). */
static void prune_epoch_files(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    if (!d) return;
    int *epochs = NULL, n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int ep, len = 0;
        if (sscanf(e->d_name, "epoch_%d.dcl%n", &ep, &len) != 1 || e->d_name[len] || ep < 0) continue;
        if (n == cap) {
            int *ne = realloc(epochs, sizeof *ne * (size_t)(cap = cap ? 2 * cap : 16));
            if (!ne) break;
            epochs = ne;
        }
        epochs[n++] = ep;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += epochs[j] > epochs[i];
        if (newer < keep) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/epoch_%03d.dcl", dir, epochs[i]);
        unlink(path);
    }
    free(epochs);
}

/* The rows of metrics.csv (no header) for epochs 1..epochs, from a log a version-1 checkpoint
 * left: later rows (written before a save that never happened) are dropped. */
static char *rows_from_csv(const char *path, int epochs)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, len = 0;
    char *rows = malloc(cap), line[512];
    if (!rows) {
        if (f) fclose(f);
        return NULL;
    }
    rows[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        char *end;
        long e = strtol(line, &end, 10);
        if (end == line || *end != ',' || e < 1 || e > epochs || !strchr(line, '\n')) continue;
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            char *r = realloc(rows, cap *= 2);
            if (!r) break;
            rows = r;
        }
        memcpy(rows + len, line, n + 1);
        len += n;
    }
    if (f) fclose(f);
    return rows;
}

/* ---- training state ----------------------------------------------------------------------- */

typedef struct trainer {
    dc_device *dev;
    dc_train_config cfg;
    const char *arch_canon; /* cfg.run.arch */
    int lock_fd;
    int rank0;              /* this process writes the run directory and prints (dist.h) */
    float *grad_host;       /* gradient exchange scratch under mpirun */
    int have_checkpoint;    /* model.dcl holds this run (resumed or saved) */
    char *rows;             /* metrics.csv rows of the epochs done (no header) */
    size_t rows_len, rows_cap;
    char model_path[4096], best_path[4096], csv_path[4096], config_path[4096], samples_dir[4096];
    dc_dataset train, test;  /* IDX: both; image folder: test holds the validation crops */
    dc_imageset folder;      /* image folder: the training images (patches come from here) */
    int is_folder;
    int in_c, in_h, in_w;    /* one training sample: the whole IDX image or a patch */
    int depth;               /* bytes per training value (1 uint8, 2 uint16) */
    dc_model *model;
    cl_mem opt_state;
    size_t nstate;
    dc_loader *loader;
    dc_evaluator *eval;
    dc_tensor clean, noisy;
    dc_accum acc;
    int64_t step;
    int start_epoch, start_batch;
    dc_schedule_state sched;   /* best validation loss and epoch, plateau reductions */
    dc_optim_config optim;     /* the run's optimizer at this epoch's learning rate */
    /* fixed sample images for the per-epoch grid */
    cl_mem sample_pixels, sample_indices;
    int nsamples;
} trainer;

static void trainer_free(trainer *t)
{
    if (t->lock_fd >= 0) close(t->lock_fd); /* releases the run directory */
    free(t->rows);
    free(t->grad_host);
    dc_loader_destroy(t->loader);
    dc_evaluator_destroy(t->eval);
    dc_model_destroy(t->model);
    if (t->opt_state) clReleaseMemObject(t->opt_state);
    if (t->sample_pixels) clReleaseMemObject(t->sample_pixels);
    if (t->sample_indices) clReleaseMemObject(t->sample_indices);
    dc_tensor_release(&t->clean);
    dc_tensor_release(&t->noisy);
    dc_accum_release(&t->acc);
    dc_dataset_free(&t->train);
    dc_dataset_free(&t->test);
    dc_imageset_free(&t->folder);
}

static dc_status save_checkpoint(trainer *t, const char *path, int epoch, int batch)
{
    dc_checkpoint ck = {0};
    snprintf(ck.arch, sizeof ck.arch, "%s", t->arch_canon);
    ck.in_c = t->in_c;
    ck.in_h = t->in_h;
    ck.in_w = t->in_w;
    ck.nparams = t->model->nparams;
    ck.nstate = t->nstate;
    ck.step = t->step;
    ck.epoch = epoch;
    ck.batch = batch;
    ck.best_val_loss = t->sched.best_val_loss;
    ck.best_epoch = t->sched.best_epoch;
    ck.lr_reductions = t->sched.reductions;
    ck.lr_last_reduction = t->sched.last_reduction;
    ck.run = t->cfg.run;
    ck.metrics = t->rows;
    ck.params = malloc((ck.nparams ? ck.nparams : 1) * sizeof(float));
    ck.state = malloc((ck.nstate ? ck.nstate : 1) * sizeof(float));
    dc_status s = (!ck.params || !ck.state) ? dc_fail(DC_ERR_NOMEM, "out of memory saving a checkpoint") : DC_OK;
    if (!s) s = dc_model_get_params(t->model, ck.params);
    if (!s && ck.nstate) {
        cl_int err = clEnqueueReadBuffer(t->dev->queue, t->opt_state, CL_TRUE, 0, ck.nstate * sizeof(float),
                                         ck.state, 0, NULL, NULL);
        if (err != CL_SUCCESS) s = dc_cl_fail(err, "reading the optimizer state");
    }
    if (!s) s = dc_checkpoint_save(path, &ck);
    if (!s && strcmp(path, t->model_path) == 0) t->have_checkpoint = 1;
    free(ck.params);
    free(ck.state);
    return s;
}

/* Each skipped file once by name, then the counts (stderr: it is a warning, even with --quiet). */
static void report_skipped(const trainer *t, const char *dir, const dc_imageset *set)
{
    if (!t->rank0) return;
    for (size_t i = 0; i < set->scan.n; i++) {
        const dc_imageset_entry *e = &set->scan.entries[i];
        if (e->skip && e->corrupt) fprintf(stderr, "warning: skipped %s\n", e->skip); /* the reason names the file */
    }
    if (set->corrupt || set->too_small)
        fprintf(stderr, "%s: %zu unreadable file%s skipped, %zu image%s smaller than the patch skipped\n", dir,
                set->corrupt, set->corrupt == 1 ? "" : "s", set->too_small, set->too_small == 1 ? "" : "s");
}

/* An image folder: the training images in memory, the validation centre crops as t->test. */
static dc_status load_folder(trainer *t)
{
    const dc_run_config *c = &t->cfg.run;
    const int patch = c->patch ? c->patch : DC_RUN_DEFAULT_PATCH;
    if (c->channels == 2) return dc_fail(DC_ERR_INVALID_ARG, "--channels 2: expected 1 or 3");
    dc_imageset_options o = {.channels = c->channels, .max_bytes = (size_t)c->max_data_mb << 20,
                             .strict = c->strict, .min_side = patch, .val_split = c->val_split,
                             .part = c->val_split > 0 && !c->val_data[0] ? 1 : 0};
    DC_TRY(dc_imageset_load(c->data_dir, &o, &t->folder));
    report_skipped(t, c->data_dir, &t->folder);
    t->is_folder = 1;
    t->in_c = t->folder.c;
    t->in_h = t->in_w = patch;
    t->depth = t->folder.depth;
    if (!c->val_data[0] && !(c->val_split > 0)) { /* validate on the training images */
        DC_TRY(dc_imageset_center_crops(&t->folder, patch, &t->test));
        dc_dataset_truncate(&t->test, c->val_limit);
        return DC_OK;
    }
    /* A separate validation set: the held-out part or another folder, the training set's
     * channels, what memory the training images left. */
    const char *vdir = c->val_data[0] ? c->val_data : c->data_dir;
    dc_imageset val;
    o.channels = t->in_c;
    o.part = c->val_data[0] ? 0 : 2;
    if (t->folder.bytes >= o.max_bytes)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: no memory left under --max-data-mb %d for the validation images", vdir,
                       c->max_data_mb);
    o.max_bytes -= t->folder.bytes;
    DC_TRY(dc_imageset_load(vdir, &o, &val));
    if (c->val_data[0]) report_skipped(t, vdir, &val); /* the held-out part's files were reported with the folder */
    dc_status s = dc_imageset_center_crops(&val, patch, &t->test);
    dc_imageset_free(&val);
    dc_dataset_truncate(&t->test, c->val_limit);
    return s;
}

static dc_status load_data(trainer *t)
{
    const dc_run_config *c = &t->cfg.run;
    if (!dc_dataset_is_idx(c->data_dir)) return load_folder(t);
    /* The samples stay in their files (read batch by batch): MNIST's 55 MB out of the process. */
    DC_TRY(dc_dataset_open(c->data_dir, "train", c->transpose, &t->train));
    DC_TRY(dc_dataset_open(c->data_dir, "test", c->transpose, &t->test));
    dc_dataset_truncate(&t->train, c->train_limit);
    dc_dataset_truncate(&t->test, c->val_limit);
    if (t->train.h != t->test.h || t->train.w != t->test.w)
        return dc_fail(DC_ERR_MISMATCH, "%s: train images are %dx%d but test images %dx%d", c->data_dir,
                       t->train.h, t->train.w, t->test.h, t->test.w);
    t->in_c = 1;
    t->in_h = t->train.h;
    t->in_w = t->train.w;
    t->depth = 1;
    return DC_OK;
}

/* The settings for this run: the checkpoint's on resume, with the fields the user gave again
 * applied (notices printed) or refused. */
static dc_status resume_settings(trainer *t, const dc_checkpoint *ck)
{
    dc_train_config *c = &t->cfg;
    if (ck->unknown_key[0])
        return dc_fail(DC_ERR_FORMAT, "%s: holds the setting '%s' that this dae-cl does not know (a newer dae-cl "
                       "wrote it); resume it with that version", t->model_path, ck->unknown_key);
    dc_run_config run = ck->run;
    char notices[2048];
    DC_TRY(dc_run_config_resume(&run, &c->run, notices, sizeof notices));
    if (notices[0] && t->rank0) fputs(notices, c->quiet ? stderr : stdout); /* never silent, even with --quiet */
    c->run = run;
    if (ck->epoch >= c->run.epochs)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: already trained %d epochs; pass --epochs N with N > %d to continue",
                       t->model_path, ck->epoch, ck->epoch);
    /* The log: the checkpoint's own rows (version 2), else the old log cut to its epochs. */
    free(t->rows);
    t->rows = ck->metrics ? strdup(ck->metrics) : rows_from_csv(t->csv_path, ck->epoch);
    if (t->rows) t->rows = pad_rows(t->rows);
    if (!t->rows) return dc_fail(DC_ERR_NOMEM, "out of memory");
    t->rows_len = t->rows_cap = strlen(t->rows);
    return DC_OK;
}

static dc_status write_csv(trainer *t)
{
    size_t hl = strlen(dc_metrics_csv_header);
    char *text = malloc(hl + t->rows_len + 1);
    if (!text) return dc_fail(DC_ERR_NOMEM, "out of memory");
    memcpy(text, dc_metrics_csv_header, hl);
    memcpy(text + hl, t->rows ? t->rows : "", t->rows_len + 1);
    dc_status s = dc_write_file_atomic(t->csv_path, text, hl + t->rows_len);
    free(text);
    return s;
}

/* Under mpirun every rank starts from rank 0's parameters and optimizer state, whatever its own
 * initialisation or checkpoint read gave. */
static dc_status share_rank0_state(trainer *t)
{
    if (!dc_dist_active()) return DC_OK;
    size_t np = t->model->nparams;
    t->grad_host = malloc((np > t->nstate ? np : t->nstate) * sizeof(float) + sizeof(float));
    if (!t->grad_host) return dc_fail(DC_ERR_NOMEM, "out of memory for the gradient exchange");
    DC_TRY(dc_model_get_params(t->model, t->grad_host));
    DC_TRY(dc_dist_broadcast(t->grad_host, np * sizeof(float)));
    DC_TRY(dc_model_set_params(t->model, t->grad_host));
    if (!t->nstate) return DC_OK;
    cl_int err = clEnqueueReadBuffer(t->dev->queue, t->opt_state, CL_TRUE, 0, t->nstate * sizeof(float),
                                     t->grad_host, 0, NULL, NULL);
    if (err != CL_SUCCESS) return dc_cl_fail(err, "reading the optimizer state");
    DC_TRY(dc_dist_broadcast(t->grad_host, t->nstate * sizeof(float)));
    err = clEnqueueWriteBuffer(t->dev->queue, t->opt_state, CL_TRUE, 0, t->nstate * sizeof(float), t->grad_host, 0,
                               NULL, NULL);
    return err == CL_SUCCESS ? DC_OK : dc_cl_fail(err, "writing the optimizer state");
}

/* Every epoch under mpirun: the ranks must still hold the same parameters bit for bit. */
static dc_status check_ranks_agree(trainer *t, int epoch)
{
    if (!dc_dist_active()) return DC_OK;
    int same;
    DC_TRY(dc_model_get_params(t->model, t->grad_host));
    DC_TRY(dc_dist_same_floats(t->grad_host, t->model->nparams, &same));
    if (!same)
        return dc_fail(DC_ERR_MISMATCH, "after epoch %d the ranks hold different parameters (a device computes "
                       "differently or memory was corrupted); stopped", epoch);
    return DC_OK;
}

static dc_status setup(trainer *t)
{
    dc_train_config *c = &t->cfg;
    DC_TRY(make_dir(c->out_dir));
    snprintf(t->model_path, sizeof t->model_path, "%s/model.dcl", c->out_dir);
    snprintf(t->best_path, sizeof t->best_path, "%s/best.dcl", c->out_dir);
    snprintf(t->csv_path, sizeof t->csv_path, "%s/metrics.csv", c->out_dir);
    snprintf(t->config_path, sizeof t->config_path, "%s/config", c->out_dir);
    snprintf(t->samples_dir, sizeof t->samples_dir, "%s/samples", c->out_dir);
    dc_schedule_state_init(&t->sched);
    if (t->rank0) {
        DC_TRY(lock_run_dir(c->out_dir, &t->lock_fd));
        remove_stale_temporaries(c->out_dir);
        remove_stale_temporaries(t->samples_dir);
    }

    dc_checkpoint ck = {0};
    int have_ck = 0;
    if (c->resume) {
        DC_TRY(dc_checkpoint_load(t->model_path, &ck));
        have_ck = t->have_checkpoint = 1;
        dc_status s = resume_settings(t, &ck);
        if (s) {
            dc_checkpoint_free(&ck);
            return s;
        }
    } else if (t->rank0) {
        /* A fresh run must not silently overwrite another run's checkpoint; without one, what
         * an earlier failed run left (its log, its best model) is not this run's. */
        struct stat st;
        if (stat(t->model_path, &st) == 0)
            return dc_fail(DC_ERR_INVALID_ARG, "%s exists: use --resume to continue that run, or another --out",
                           t->model_path);
        unlink(t->csv_path);
        unlink(t->best_path);
        prune_epoch_files(c->out_dir, 0);
    }
    if (!t->rows) t->rows = strdup("");
    if (!t->rows) return dc_fail(DC_ERR_NOMEM, "out of memory");
    t->arch_canon = c->run.arch;
    dc_arch arch;
    dc_status s = dc_arch_parse(c->run.arch, &arch);
    if (!s && t->rank0) s = write_csv(t);
    if (!s) s = load_data(t);
    if (!s && have_ck && (ck.in_c != t->in_c || ck.in_h != t->in_h || ck.in_w != t->in_w))
        s = dc_fail(DC_ERR_MISMATCH, "%s: trained on %dx%dx%d samples (channels x height x width), the data set gives "
                    "%dx%dx%d", t->model_path, ck.in_c, ck.in_h, ck.in_w, t->in_c, t->in_h, t->in_w);
    if (!s) s = dc_model_create(t->dev, &arch, t->in_c, t->in_h, t->in_w, c->run.batch, &t->model);
    if (!s) s = dc_model_check_loss(t->model, c->run.loss); /* e.g. bce on a tanh head */
    if (!s && c->model_ready)
        c->model_ready(c->model_ready_user, c->run.arch, t->in_c, t->in_h, t->in_w, c->run.batch);
    if (!s && have_ck && ck.nparams != t->model->nparams)
        s = dc_fail(DC_ERR_MISMATCH, "%s: holds %llu parameters, the model has %zu", t->model_path,
                    (unsigned long long)ck.nparams, t->model->nparams);
    t->nstate = dc_optim_state_floats(c->run.optim.kind, t->model ? t->model->nparams : 0);
    if (!s && have_ck && ck.nstate != t->nstate)
        s = dc_fail(DC_ERR_MISMATCH, "%s: optimizer state has %llu values, expected %zu", t->model_path,
                    (unsigned long long)ck.nstate, t->nstate);
    if (!s) s = dc_buffer_create(t->dev, t->nstate, "optimizer state", &t->opt_state);
    if (!s) {
        if (have_ck) {
            s = dc_model_set_params(t->model, ck.params);
            if (!s && t->nstate) {
                cl_int err = clEnqueueWriteBuffer(t->dev->queue, t->opt_state, CL_TRUE, 0,
                                                  t->nstate * sizeof(float), ck.state, 0, NULL, NULL);
                if (err != CL_SUCCESS) s = dc_cl_fail(err, "writing the optimizer state");
            }
            t->step = ck.step;
            t->start_epoch = ck.epoch;
            t->start_batch = ck.batch;
            t->sched = (dc_schedule_state){.best_val_loss = ck.best_val_loss, .best_epoch = ck.best_epoch,
                                           .reductions = ck.lr_reductions, .last_reduction = ck.lr_last_reduction};
            if (!s && dc_schedule_should_stop(&t->sched, c->run.early_stop, ck.epoch))
                s = dc_fail(DC_ERR_INVALID_ARG, "%s: stopped early at epoch %d, no val_loss improvement since epoch %d; "
                            "pass --early-stop above %d (or 0) to continue", t->model_path, ck.epoch,
                            t->sched.best_epoch, ck.epoch - t->sched.best_epoch);
        } else {
            s = dc_model_init_params(t->model, derive_seed(c->run.seed, STREAM_INIT));
            if (!s) s = dc_optim_state_init(t->dev, &c->run.optim, t->opt_state, t->model->nparams);
        }
    }
    dc_checkpoint_free(&ck);
    if (s) return s;
    DC_TRY(share_rank0_state(t));

    const int batch = c->run.batch;
    dc_loader_config lc = {.data = &t->train, .batch = batch, .shuffle = 1,
                           .seed = derive_seed(c->run.seed, STREAM_SHUFFLE), .drop_last = 0,
                           .parts = dc_dist_size(), .part = dc_dist_rank()};
    if (t->is_folder) {
        lc.data = NULL;
        lc.patches = &t->folder;
        lc.patch = t->in_h;
        lc.augment = c->run.augment;
        lc.patches_per_epoch = (uint32_t)c->run.patches_per_epoch;
    }
    DC_TRY(dc_loader_create(t->dev, &lc, &t->loader));
    DC_TRY(dc_evaluator_create(t->dev, &t->test, batch, &t->eval));
    DC_TRY(dc_tensor_create(t->dev, batch, t->in_c, t->in_h, t->in_w, DC_LAYOUT_NCHW, &t->clean));
    DC_TRY(dc_tensor_create(t->dev, batch, t->in_c, t->in_h, t->in_w, DC_LAYOUT_NCHW, &t->noisy));
    DC_TRY(dc_accum_create(t->dev, 1, &t->acc));

    /* The sample grid always shows the same test images with the same (validation) noise. */
    if (c->run.samples) {
        t->nsamples = (int)(t->test.n < SAMPLE_IMAGES ? t->test.n : SAMPLE_IMAGES);
        if (t->nsamples > batch) t->nsamples = batch;
        size_t px = (size_t)t->nsamples * dc_dataset_sample_bytes(&t->test);
        uint32_t idx[SAMPLE_IMAGES];
        for (int i = 0; i < t->nsamples; i++) idx[i] = (uint32_t)i;
        uint8_t *pix = malloc(px);
        if (!pix) return dc_fail(DC_ERR_NOMEM, "out of memory for the sample images");
        dc_status rs = dc_dataset_read(&t->test, 0, (size_t)t->nsamples, pix);
        cl_int err = CL_SUCCESS;
        if (rs == DC_OK)
            t->sample_pixels = clCreateBuffer(t->dev->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, px, pix, &err);
        free(pix);
        if (rs != DC_OK) return rs;
        if (err != CL_SUCCESS) return dc_cl_fail(err, "sample images");
        t->sample_indices = clCreateBuffer(t->dev->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                           sizeof(uint32_t) * t->nsamples, idx, &err);
        if (err != CL_SUCCESS) return dc_cl_fail(err, "sample indices");
        if (t->rank0) DC_TRY(make_dir(t->samples_dir));
    }
    if (!t->rank0) return DC_OK;
    /* OUT/config: the run's settings for people (the checkpoint keeps its own copy). */
    char config[DC_RUN_TEXT_MAX + 1024], desc[512];
    dc_device_describe(t->dev, desc, sizeof desc);
    size_t n = (size_t)snprintf(config, sizeof config, "dae_cl_version=%s\ndevice=%s\n", DAECL_VERSION, desc);
    n += dc_run_config_format(&c->run, 1, config + n, sizeof config - n);
    return dc_write_file_atomic(t->config_path, config, n);
}

/* clean / noisy / denoised rows of the fixed sample images. */
static dc_status write_samples(trainer *t, int epoch)
{
    int n = t->nsamples, h = t->test.h, w = t->test.w, ch = dc_dataset_channels(&t->test);
    dc_tensor clean = t->clean, noisy = t->noisy;
    clean.n = noisy.n = n;
    clean.owns_buf = noisy.owns_buf = 0;
    DC_TRY(dc_noise_apply_planes(t->dev, &t->cfg.run.noise, t->cfg.run.seed, DC_NOISE_EPOCH_VALIDATION,
                                 t->sample_pixels, dc_dataset_depth(&t->test), t->sample_indices, n, ch, h, w, &clean,
                                 &noisy, 0, NULL));
    dc_tensor z;
    DC_TRY(dc_model_predict(t->model, &noisy, n, &z));
    size_t per = (size_t)ch * h * w; /* a tile shows an image's first channel */
    float *host = malloc(3 * n * per * sizeof(float));
    uint8_t *img = NULL;
    if (!host) return dc_fail(DC_ERR_NOMEM, "out of memory");
    dc_status s = dc_tensor_read(t->dev, &clean, host);
    if (!s) s = dc_tensor_read(t->dev, &noisy, host + n * per);
    if (!s) s = dc_tensor_read(t->dev, &z, host + 2 * n * per);
    if (!s) {
        dc_grid g = {.rows = 3, .cols = n, .tile_w = w, .tile_h = h, .scale = 2, .sep = 2};
        const float *tiles[3 * SAMPLE_IMAGES];
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < n; i++) tiles[r * n + i] = host + (size_t)(r * n + i) * per;
        int gw, gh;
        dc_grid_size(&g, &gw, &gh);
        img = malloc((size_t)gw * gh);
        if (!img) s = dc_fail(DC_ERR_NOMEM, "out of memory");
        if (!s) s = dc_grid_render(&g, tiles, img);
        char path[4200];
        snprintf(path, sizeof path, "%s/epoch_%03d.png", t->samples_dir, epoch);
        if (!s) s = dc_png_write_gray8(path, img, gw, gh);
    }
    free(host);
    free(img);
    return s;
}

/* The epoch's row, added to the rows the next checkpoint keeps. */
static dc_status add_row(trainer *t, int epoch, double train_loss, const dc_eval_result *val, int validated,
                         double seconds, double ips)
{
    char row[512], tail[96];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(tail, sizeof tail, "%.2f,%.1f,%.9g,%.3f\n", seconds, ips, (double)t->optim.lr,
             now.tv_sec + now.tv_nsec * 1e-9);
    if (validated)
        snprintf(row, sizeof row, "%d,%.6f,%.6f,%.4f,%.5f,%.5f,%s", epoch, train_loss, val->loss, val->psnr, val->ssim,
                 val->acc, tail);
    else
        snprintf(row, sizeof row, "%d,%.6f,,,,,%s", epoch, train_loss, tail);
    size_t n = strlen(row);
    if (t->rows_len + n + 1 > t->rows_cap) {
        size_t cap = (t->rows_cap + n + 1) * 2;
        char *r = realloc(t->rows, cap);
        if (!r) return dc_fail(DC_ERR_NOMEM, "out of memory");
        t->rows = r;
        t->rows_cap = cap;
    }
    memcpy(t->rows + t->rows_len, row, n + 1);
    t->rows_len += n;
    return DC_OK;
}

/* One step on n rows of a global batch of `total` (n == total when alone). *stop: this rank's
 * stop request in, the one agreed by all ranks out. */
static dc_status train_step(trainer *t, uint32_t epoch, int n, int total, cl_mem pixels, cl_mem indices,
                            cl_event ready, int *stop)
{
    const dc_run_config *c = &t->cfg.run;
    DC_TRY(dc_dist_test_fault((long)t->step + 1));
    if (n == 0) { /* an empty share of a short last batch: zeros into the sum */
        DC_TRY(dc_dist_reduce_gradients(t->dev, t->model->grads, t->model->nparams, 0, total, t->grad_host, stop));
        t->step++;
        return dc_optim_step(t->dev, &t->optim, t->model->params, t->model->grads, t->opt_state,
                             t->model->nparams, (long)t->step);
    }
    dc_tensor clean = t->clean, noisy = t->noisy;
    clean.n = noisy.n = n;
    clean.owns_buf = noisy.owns_buf = 0;
    uint32_t noise_epoch = c->noise_fixed ? 0 : epoch;
    DC_TRY(dc_noise_apply_planes(t->dev, &c->noise, c->seed, noise_epoch, pixels, t->depth, indices, n, t->in_c,
                                 t->in_h, t->in_w, &clean, &noisy, 1, &ready));
    DC_TRY(dc_model_forward(t->model, &noisy, n));
    DC_TRY(dc_model_loss(t->model, c->loss, &clean, n, 1, NULL, &t->acc, 0));
    DC_TRY(dc_model_backward(t->model, &noisy, n));
    DC_TRY(dc_dist_reduce_gradients(t->dev, t->model->grads, t->model->nparams, n, total, t->grad_host, stop));
    t->step++;
    return dc_optim_step(t->dev, &t->optim, t->model->params, t->model->grads, t->opt_state, t->model->nparams,
                         (long)t->step);
}

/* What a stop on a non-finite loss leaves behind. */
static const char *kept(const trainer *t, char *buf, size_t len)
{
    if (!t->have_checkpoint) return "nothing saved";
    snprintf(buf, len, "%s keeps the last good weights", t->model_path);
    return buf;
}

static dc_status run_epochs(trainer *t, dc_train_summary *sum)
{
    const dc_train_config *c = &t->cfg;
    const dc_run_config *r = &c->run;
    dc_progress prog;
    char keep[4200];
    dc_progress_init(&prog, stdout, c->quiet || !t->rank0);
    int first_step_of_run = 1;
    for (int e = t->start_epoch; e < r->epochs; e++) {
        int start_batch = e == t->start_epoch ? t->start_batch : 0;
        int nb = dc_loader_batches_per_epoch(t->loader);
        t->optim = r->optim;
        t->optim.lr = (float)dc_schedule_lr(&r->schedule, &t->sched, r->optim.lr, e, r->epochs);
        DC_TRY(dc_loader_start_epoch(t->loader, (uint32_t)e, start_batch));
        DC_TRY(dc_accum_reset(t->dev, &t->acc));
        dc_progress_epoch(&prog, e + 1, r->epochs, nb, first_step_of_run);
        double t0 = dc_now();
        size_t images = 0, local_images = 0; /* all ranks', this rank's */
        int b = start_batch;
        double loss_sum = 0, last_mean = NAN; /* last_mean: this rank's mean loss when last read */
        double comm0 = dc_dist_seconds();
        for (;;) {
            int n;
            cl_mem pixels, indices;
            cl_event ready;
            DC_TRY(dc_loader_next(t->loader, &n, &pixels, &indices, &ready));
            int total = dc_loader_batch_total(t->loader);
            if (total == 0) break;
            /* Under mpirun the stop is decided by all ranks together (carried with the
             * gradient): a signal arriving during the step counts at the next one. */
            int stop = stop_requested;
            DC_TRY(train_step(t, (uint32_t)e, n, total, pixels, indices, ready, &stop));
            images += (size_t)total;
            local_images += (size_t)n;
            b++;
            if (first_step_of_run) {
                /* Wait for the first step (kernel JIT) so it stays out of the ETA. */
                clFinish(t->dev->queue);
                dc_progress_mark_timed(&prog, b - start_batch);
                first_step_of_run = 0;
            }
            /* Reading the loss syncs with the device: only to redraw, and every NAN_CHECK_STEPS
             * steps so a diverging run stops near where it went wrong. */
            int due = dc_progress_due(&prog, b);
            if (due || b % NAN_CHECK_STEPS == 0) {
                DC_TRY(dc_accum_read(t->dev, &t->acc, &loss_sum));
                if (!isfinite(loss_sum))
                    return dc_fail(DC_ERR_NONFINITE, "loss is %g in epoch %d by step %d; stopped, %s", loss_sum, e + 1,
                                   b, kept(t, keep, sizeof keep));
                last_mean = loss_sum / (double)(local_images ? local_images : 1);
                if (due) dc_progress_draw(&prog, b, last_mean);
            }
            if (c->progress) {
                dc_train_progress p = {.epoch = e + 1, .epochs = r->epochs, .step = b, .steps = nb,
                                       .loss = last_mean, .val_loss = NAN, .val_psnr = NAN};
                if (c->progress(c->progress_user, &p)) stop_requested = 1;
            }
            /* Alone, a stop asked during this step (signal, callback) is honoured now; under
             * mpirun only the agreed one, the same step on every rank. */
            /* On the epoch's last step the stop waits for the epoch's end (validation, row,
             * save: "stopped after epoch"), so no checkpoint ever holds a finished but
             * unvalidated epoch. */
            if ((stop || (!dc_dist_active() && stop_requested)) && b < nb) {
                clFinish(t->dev->queue);
                DC_TRY(dc_accum_read(t->dev, &t->acc, &loss_sum));
                if (!isfinite(loss_sum))
                    return dc_fail(DC_ERR_NONFINITE, "loss is %g in epoch %d at step %d; not saved", loss_sum, e + 1, b);
                if (t->rank0) DC_TRY(save_checkpoint(t, t->model_path, e, b));
                if (!c->quiet && t->rank0) fputc('\n', stdout);
                return dc_fail(DC_ERR_INTERRUPTED, "interrupted in epoch %d at step %d/%d; saved %s (continue with --resume)",
                               e + 1, b, nb, t->model_path);
            }
        }
        DC_TRY(dc_accum_read(t->dev, &t->acc, &loss_sum));
        double comm_per_step = (dc_dist_seconds() - comm0) / (b > start_batch ? b - start_batch : 1);
        DC_TRY(dc_dist_sum_doubles(&loss_sum, 1));
        DC_TRY(check_ranks_agree(t, e + 1));
        double train_loss = images ? loss_sum / (double)images : NAN;
        /* images == 0: resumed from an older checkpoint taken after the epoch's last step; no
         * training loss to report, which is not a divergence. */
        if (images && !isfinite(train_loss))
            return dc_fail(DC_ERR_NONFINITE, "loss is %g after epoch %d; stopped, %s", train_loss, e + 1,
                           kept(t, keep, sizeof keep));
        double train_seconds = dc_now() - t0;
        double ips = images / (train_seconds > 0 ? train_seconds : 1e-9);
        int validate = (e + 1) % (r->validate_every > 0 ? r->validate_every : 1) == 0 || e + 1 == r->epochs;
        dc_eval_result val = {0};
        char extra[300] = "";
        int improved = 0;
        if (validate) {
            DC_TRY(dc_evaluate(t->eval, t->model, r->loss, &r->noise, r->seed, 0, &val));
            snprintf(extra, sizeof extra, " - val_loss: %.4f - val_psnr: %.2f - val_ssim: %.3f - val_acc: %.4f",
                     val.loss, val.psnr, val.ssim, val.acc);
            improved = dc_schedule_observe(&r->schedule, &t->sched, e + 1, val.loss);
            sum->val = val;
            sum->validated = 1;
        }
        if (r->schedule.kind != DC_LR_CONSTANT) {
            size_t el = strlen(extra);
            snprintf(extra + el, sizeof extra - el, " - lr: %.3g", (double)t->optim.lr);
        }
        dc_progress_end(&prog, b - start_batch == nb ? nb : b, train_loss, extra);
        double seconds = dc_now() - t0;
        /* The row goes into the checkpoints first, then into metrics.csv: a fault between the
         * two leaves the log one row short, and the next run rebuilds it from model.dcl. best.dcl
         * goes before model.dcl: a fault between them repeats the epoch, which saves it again. */
        DC_TRY(add_row(t, e + 1, train_loss, &val, validate, seconds, ips));
        if (improved && t->rank0) DC_TRY(save_checkpoint(t, t->best_path, e + 1, 0));
        if (t->rank0 && r->save_every && (e + 1) % r->save_every == 0) {
            char path[4200];
            snprintf(path, sizeof path, "%s/epoch_%03d.dcl", c->out_dir, e + 1);
            DC_TRY(save_checkpoint(t, path, e + 1, 0));
            if (r->keep) prune_epoch_files(c->out_dir, r->keep);
        }
        if (t->rank0) {
            DC_TRY(save_checkpoint(t, t->model_path, e + 1, 0));
            DC_TRY(write_csv(t));
            if (r->samples) DC_TRY(write_samples(t, e + 1));
        }
        if (c->verbose && t->rank0) {
            dc_loader_stats st;
            dc_loader_stats_get(t->loader, &st);
            double steps = b - start_batch > 0 ? b - start_batch : 1;
            printf("  %.0f images/s; loader: %ld batches, device waited for data %ld times; host gather %.2f ms per "
                   "batch, step %.2f ms per batch\n", ips, st.batches, st.consumer_waits,
                   st.gathered ? 1e3 * st.gather_seconds / st.gathered : 0.0, 1e3 * train_seconds / steps);
            if (dc_dist_active())
                printf("  %d ranks: %.2f ms per step in the gradient allreduce (with waiting for the slowest rank)\n",
                       dc_dist_size(), 1e3 * comm_per_step);
        }
        sum->epochs_done = e + 1;
        sum->train_loss = train_loss;
        sum->seconds += seconds;
        sum->images_per_second = ips;
        sum->lr = t->optim.lr;
        sum->best_epoch = t->sched.best_epoch;
        sum->best_val_loss = t->sched.best_val_loss;
        if (c->progress) {
            dc_train_progress p = {.epoch = e + 1, .epochs = r->epochs, .step = b, .steps = nb, .loss = train_loss,
                                   .epoch_done = 1, .val_loss = validate ? val.loss : NAN,
                                   .val_psnr = validate ? val.psnr : NAN};
            if (c->progress(c->progress_user, &p)) stop_requested = 1;
        }
        if (validate && dc_schedule_should_stop(&t->sched, r->early_stop, e + 1)) {
            sum->stopped_early = 1;
            if (!c->quiet && t->rank0)
                printf("early stop: no val_loss improvement for %d epochs; best.dcl holds epoch %d (val_loss %.4f)\n",
                       e + 1 - t->sched.best_epoch, t->sched.best_epoch, t->sched.best_val_loss);
            break;
        }
        /* Under mpirun a stop asked during validation or saving must be every rank's. */
        double stop_here = stop_requested;
        DC_TRY(dc_dist_sum_doubles(&stop_here, 1));
        if (stop_here > 0 && e + 1 < r->epochs)
            return dc_fail(DC_ERR_INTERRUPTED, "stopped after epoch %d; saved %s (continue with --resume)", e + 1,
                           t->model_path);
    }
    return DC_OK;
}

dc_status dc_train(dc_device *dev, const dc_train_config *cfg, dc_train_summary *summary)
{
    dc_train_summary local = {0};
    if (!summary) summary = &local;
    memset(summary, 0, sizeof *summary);
    if (cfg->run.epochs < 1) return dc_fail(DC_ERR_INVALID_ARG, "--epochs must be at least 1");
    if (cfg->run.batch < 1) return dc_fail(DC_ERR_INVALID_ARG, "--batch must be at least 1");
    DC_TRY(dc_run_config_check(&cfg->run));
    stop_requested = 0;
    trainer t = {.dev = dev, .cfg = *cfg, .lock_fd = -1, .rank0 = dc_dist_rank() == 0};
    dc_status s = setup(&t);
    if (!s && !cfg->quiet && t.rank0) {
        if (t.is_folder)
            printf("training %s on %zu images of %s in %dx%d patches (%d channel%s, %d per epoch%s), validating on "
                   "%zu centre crops; %zu parameters; batch %d; %s; %s loss; %s convolutions\n",
                   t.arch_canon, t.folder.n, t.cfg.run.data_dir, t.in_h, t.in_w, t.in_c, t.in_c == 1 ? "" : "s",
                   t.cfg.run.patches_per_epoch, t.cfg.run.augment ? ", augmented" : "", t.test.n, t.model->nparams,
                   t.cfg.run.batch, dc_optim_name(t.cfg.run.optim.kind), dc_loss_name(t.cfg.run.loss),
                   dc_conv_algo_name(dc_conv_algo_for(dev)));
        else
            printf("training %s on %zu images (%dx%d), validating on %zu; %zu parameters; batch %d; %s; %s loss; "
                   "%s convolutions\n",
                   t.arch_canon, t.train.n, t.train.h, t.train.w, t.test.n, t.model->nparams, t.cfg.run.batch,
                   dc_optim_name(t.cfg.run.optim.kind), dc_loss_name(t.cfg.run.loss),
                   dc_conv_algo_name(dc_conv_algo_for(dev)));
        if (dc_dist_active())
            printf("data parallel over %d ranks: each takes about %d of every batch of %d\n", dc_dist_size(),
                   (t.cfg.run.batch + dc_dist_size() - 1) / dc_dist_size(), t.cfg.run.batch);
        if (cfg->resume)
            printf("resuming %s at epoch %d, step %lld\n", t.model_path, t.start_epoch + 1, (long long)t.step);
        fflush(stdout);
    }
    if (!s) s = run_epochs(&t, summary);
    trainer_free(&t);
    return s;
}
