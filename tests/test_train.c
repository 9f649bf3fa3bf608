/* End-to-end training on a real-MNIST subset (written by the test from data/mnist, which
 * tools/fetch-mnist provides): the loss falls and validation PSNR rises well above the noisy
 * input; an interrupted and resumed run is bit-identical to an uninterrupted one; damaged or
 * mismatched checkpoints are refused on resume; a diverging run stops on the non-finite loss.
 *
 * `test_train --make-subset DIR [NTRAIN NTEST]` only writes the subset (used by test_cli.sh);
 * `test_train --checkpoint-epochs FILE` prints a checkpoint's epochs and metrics rows (used by
 * test_faults_train.sh). */
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daecl/checkpoint.h"
#include "daecl/image.h"
#include "daecl/imageset.h"
#include "daecl/train.h"
#include "test.h"

#define NTRAIN 2048
#define NTEST 512

static int make_subset(const char *dir, size_t ntrain, size_t ntest)
{
    const char *root = getenv("DAECL_SOURCE_ROOT");
    char src[1024];
    snprintf(src, sizeof src, "%s/data/mnist", root ? root : ".");
    mkdir(dir, 0755);
    const char *split[2] = {"train", "test"};
    const char *names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                               {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    size_t keep[2] = {ntrain, ntest};
    for (int i = 0; i < 2; i++) {
        dc_dataset ds;
        if (dc_dataset_load(src, split[i], 0, &ds) != DC_OK) {
            fprintf(stderr, "%s\nthe end-to-end tests need the real MNIST: run tools/fetch-mnist\n", dc_error_detail());
            return -1;
        }
        dc_dataset_truncate(&ds, keep[i]);
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", dir, names[i][0]);
        dc_status s = dc_idx_write_images(p, ds.images, ds.n, ds.h, ds.w, 0);
        snprintf(p, sizeof p, "%s/%s", dir, names[i][1]);
        if (!s && ds.labels) s = dc_idx_write_labels(p, ds.labels, ds.n, 0);
        dc_dataset_free(&ds);
        if (s) {
            fprintf(stderr, "%s\n", dc_error_detail());
            return -1;
        }
    }
    return 0;
}

static char tmp[512], data[600];

static void base_config(dc_train_config *c, const char *name, int epochs)
{
    static char out[8][700];
    static int next;
    char *o = out[next++ % 8];
    snprintf(o, 700, "%s/%s", tmp, name);
    char n[16];
    snprintf(n, sizeof n, "%d", epochs);
    dc_train_defaults(c);
    c->out_dir = o;
    c->quiet = 1;
    CHECK_OK(dc_run_config_set(&c->run, "data", data));
    CHECK_OK(dc_run_config_set(&c->run, "epochs", n));
    CHECK_OK(dc_run_config_set(&c->run, "batch", "64"));
    CHECK_OK(dc_run_config_set(&c->run, "seed", "42"));
}

static int read_params(const char *dir, const char *file, float **p, size_t *n)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    dc_checkpoint ck;
    if (dc_checkpoint_load(path, &ck) != DC_OK) return -1;
    *p = ck.params;
    *n = ck.nparams;
    ck.params = NULL;
    dc_checkpoint_free(&ck);
    return 0;
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, *(long *)arg};
    nanosleep(&ts, NULL);
    dc_train_request_stop();
    return NULL;
}

/* `--checkpoint-epochs FILE`: print "EPOCH ROWS" (epochs done, metrics rows held), then the rows;
 * exit 1 if it does not load. */
static int print_checkpoint_epochs(const char *path)
{
    dc_checkpoint ck;
    if (dc_checkpoint_load(path, &ck) != DC_OK) {
        fprintf(stderr, "%s\n", dc_error_detail());
        return 1;
    }
    int rows = 0;
    for (const char *p = ck.metrics; p && *p; p++) rows += *p == '\n';
    printf("%d %d\n%s", ck.epoch, rows, ck.metrics ? ck.metrics : "");
    dc_checkpoint_free(&ck);
    return 0;
}

/* Column `col` (0-based) of metrics.csv's rows into v; returns the rows read. */
static int csv_column(const char *dir, int col, double *v, int max)
{
    char path[800], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "r");
    int n = 0;
    if (!f) return 0;
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    CHECK(strstr(line, ",lr,unix_time") != NULL, "metrics.csv header: %s", line);
    while (n < max && fgets(line, sizeof line, f)) {
        char *p = line;
        for (int c = 0; c < col && p; c++) p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
        v[n++] = p && *p != ',' ? strtod(p, NULL) : NAN;
    }
    fclose(f);
    return n;
}

static int exists_in(const char *dir, const char *name)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* 5. Steering: a step schedule resumed mid-schedule equals the uninterrupted run bit for bit,
 * with the closed-form rates in metrics.csv and the --keep most recent epoch_NNN.dcl; plateau +
 * early stop end the run at the first epoch without improvement, keep the best in best.dcl, and
 * the plateau's reduction survives into the resumed run. */
static void steering(dc_device *dev)
{
    dc_train_config a, b;
    base_config(&a, "step-straight", 3);
    base_config(&b, "step-resumed", 1);
    for (dc_train_config *c = &a; c; c = c == &a ? &b : NULL) {
        CHECK_OK(dc_run_config_set(&c->run, "lr-schedule", "step"));
        CHECK_OK(dc_run_config_set(&c->run, "lr-step-every", "1"));
        CHECK_OK(dc_run_config_set(&c->run, "lr-gamma", "0.5"));
        CHECK_OK(dc_run_config_set(&c->run, "save-every", "1"));
        CHECK_OK(dc_run_config_set(&c->run, "keep", "2"));
    }
    CHECK_OK(dc_train(dev, &a, NULL));
    CHECK_OK(dc_train(dev, &b, NULL));
    b.resume = 1;
    CHECK_OK(dc_run_config_set(&b.run, "epochs", "3"));
    CHECK_OK(dc_train(dev, &b, NULL));
    float *pa = NULL, *pb = NULL, *pe = NULL;
    size_t na = 0, nb = 0, ne = 0;
    CHECK(read_params(a.out_dir, "model.dcl", &pa, &na) == 0 && read_params(b.out_dir, "model.dcl", &pb, &nb) == 0 &&
              read_params(b.out_dir, "epoch_003.dcl", &pe, &ne) == 0,
          "step runs' checkpoints");
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na * sizeof(float)) == 0, "step schedule: resumed weights differ");
    CHECK(pb && pe && nb == ne && memcmp(pb, pe, nb * sizeof(float)) == 0, "epoch_003.dcl differs from model.dcl");
    free(pa);
    free(pb);
    free(pe);
    for (int run = 0; run < 2; run++) {
        const char *dir = run ? b.out_dir : a.out_dir;
        double lr[4];
        int n = csv_column(dir, 8, lr, 4);
        CHECK(n == 3 && (float)lr[0] == 1e-3f && (float)lr[1] == 1e-3f / 2 && (float)lr[2] == 1e-3f / 4,
              "%s: lr column %d rows: %g %g %g", dir, n, lr[0], lr[1], lr[2]);
        CHECK(!exists_in(dir, "epoch_001.dcl") && exists_in(dir, "epoch_002.dcl") && exists_in(dir, "epoch_003.dcl"),
              "%s: --keep 2 keeps epochs 2 and 3 only", dir);
    }

    /* Plateau (patience 1) and early stop (patience 1) at a rate high enough to wobble. */
    dc_train_config p;
    base_config(&p, "plateau", 6);
    CHECK_OK(dc_run_config_set(&p.run, "lr", "0.02"));
    CHECK_OK(dc_run_config_set(&p.run, "train-limit", "512"));
    CHECK_OK(dc_run_config_set(&p.run, "lr-schedule", "plateau"));
    CHECK_OK(dc_run_config_set(&p.run, "lr-patience", "1"));
    CHECK_OK(dc_run_config_set(&p.run, "early-stop", "1"));
    dc_train_summary sum;
    CHECK_OK(dc_train(dev, &p, &sum));
    double val[8], lr[8];
    int n = csv_column(p.out_dir, 2, val, 8);
    csv_column(p.out_dir, 8, lr, 8);
    /* The first epoch whose loss is not below every earlier one (the log rounds to 6 digits). */
    int first_flat = 0;
    for (int e = 1; e < n && !first_flat; e++) {
        int better = 1;
        for (int k = 0; k < e; k++) better &= val[e] < val[k];
        if (!better) first_flat = e + 1;
    }
    fprintf(stderr, "plateau run: %d epochs, stopped early %d, best epoch %d\n", n, sum.stopped_early, sum.best_epoch);
    char best[800];
    snprintf(best, sizeof best, "%s/best.dcl", p.out_dir);
    dc_checkpoint bk;
    if (sum.stopped_early) {
        CHECK(n == first_flat && sum.epochs_done == n && sum.best_epoch == n - 1, "stopped at %d, first flat epoch %d, best %d",
              n, first_flat, sum.best_epoch);
        CHECK(dc_checkpoint_load(best, &bk) == DC_OK && bk.epoch == sum.best_epoch && bk.best_val_loss == sum.best_val_loss,
              "best.dcl is not the best epoch");
        dc_checkpoint_free(&bk);
        for (int e = 0; e < n; e++) CHECK((float)lr[e] == 0.02f, "plateau lr before the reduction: %g", lr[e]);
        /* The same patience refuses to resume; patience 0 continues at the reduced rate. */
        dc_train_config q = p;
        q.resume = 1;
        char more[16];
        snprintf(more, sizeof more, "%d", n + 1);
        CHECK_OK(dc_run_config_set(&q.run, "epochs", more));
        dc_status s = dc_train(dev, &q, NULL);
        CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "stopped early"), "resume after early stop: %s",
              dc_error_detail());
        CHECK_OK(dc_run_config_set(&q.run, "early-stop", "0"));
        CHECK_OK(dc_train(dev, &q, NULL));
        CHECK(csv_column(p.out_dir, 8, lr, 8) == n + 1 && (float)lr[n] == (float)((double)0.02f * (double)0.1f),
              "after the reduction the rate is %g", lr[n]);
    } else {
        CHECK(n == 6 && first_flat == 0, "ran %d epochs without stopping, first flat epoch %d", n, first_flat);
    }
}

/* 6. An image folder: PNGs (gray and colour, 8- and 16-bit, nested, one corrupt file) trained as
 * 3 channels in 16x16 patches with flips/rotations and a noise range. The loss falls, PSNR
 * rises above the noisy input, and a run stopped mid-epoch and resumed equals a straight one. */
static int stop_at_step(void *user, const dc_train_progress *p)
{
    return !p->epoch_done && p->epoch == 2 && p->step == *(int *)user;
}

static void folder_config(dc_train_config *c, const char *dir, const char *name, int epochs)
{
    base_config(c, name, epochs);
    CHECK_OK(dc_run_config_set(&c->run, "data", dir));
    CHECK_OK(dc_run_config_set(&c->run, "channels", "3"));
    CHECK_OK(dc_run_config_set(&c->run, "patch", "16"));
    CHECK_OK(dc_run_config_set(&c->run, "patches-per-epoch", "512"));
    CHECK_OK(dc_run_config_set(&c->run, "batch", "32"));
    CHECK_OK(dc_run_config_set(&c->run, "augment", NULL));
    CHECK_OK(dc_run_config_set(&c->run, "arch", "conv:12,conv:12,conv:3:sigmoid"));
    CHECK_OK(dc_run_config_set(&c->run, "loss", "mse"));
    CHECK_OK(dc_run_config_set(&c->run, "lr", "0.003"));
    CHECK_OK(dc_run_config_set(&c->run, "noise", "gaussian:0.05-0.15"));
}

static void folder(dc_device *dev)
{
    char dir[700], path[800];
    snprintf(dir, sizeof dir, "%s/photos", tmp);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/photos/sub", tmp);
    mkdir(path, 0755);
    for (int i = 0; i < 6; i++) {
        dc_image img = {0};
        int w = 40 + 5 * i, h = 64 - 4 * i, c = i == 4 ? 3 : 1; /* one colour image */
        CHECK_OK(dc_image_alloc_c(&img, w, h, c));
        for (int p = 0; p < c; p++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    img.px[(p * h + y) * w + x] =
                        0.5f + 0.35f * sinf(0.15f * (float)x + (float)(i + p)) * cosf(0.11f * (float)y);
        snprintf(path, sizeof path, "%s/photos/%simg%d.png", tmp, i % 2 ? "sub/" : "", i);
        CHECK_OK(dc_png_write(path, &img, i == 3 ? 16 : 8));
        dc_image_free(&img);
    }
    snprintf(path, sizeof path, "%s/photos/broken.png", tmp);
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("not a png", f);
        fclose(f);
    }

    dc_train_config c;
    folder_config(&c, dir, "folder-learn", 4);
    dc_train_summary sum;
    CHECK_OK(dc_train(dev, &c, &sum));
    double loss[4] = {0}, psnr[4] = {0};
    int rows = csv_column(c.out_dir, 1, loss, 4);
    csv_column(c.out_dir, 3, psnr, 4);
    dc_dataset crops = {0};
    dc_imageset set;
    dc_imageset_options o = {.channels = 3, .min_side = 16};
    CHECK_OK(dc_imageset_load(dir, &o, &set));
    CHECK(set.n == 6 && set.corrupt == 1 && set.depth == 2, "folder: %zu images, %zu corrupt, depth %d", set.n,
          set.corrupt, set.depth);
    CHECK_OK(dc_imageset_center_crops(&set, 16, &crops));
    dc_imageset_free(&set);
    dc_evaluator *ev = NULL;
    dc_arch arch;
    dc_arch_parse(c.run.arch, &arch);
    dc_model *m = NULL;
    float *p = NULL;
    size_t np = 0;
    dc_eval_result r = {0};
    CHECK_OK(dc_evaluator_create(dev, &crops, 6, &ev));
    CHECK_OK(dc_model_create(dev, &arch, 3, 16, 16, 6, &m));
    CHECK(read_params(c.out_dir, "model.dcl", &p, &np) == 0, "folder model.dcl loads");
    if (m && p && ev) {
        CHECK_OK(dc_model_set_params(m, p));
        CHECK_OK(dc_evaluate(ev, m, DC_LOSS_MSE, &c.run.noise, c.run.seed, 1, &r));
    }
    fprintf(stderr, "folder: train loss %.5f %.5f %.5f %.5f; val PSNR %.2f %.2f %.2f %.2f dB; noisy input %.2f dB\n",
            loss[0], loss[1], loss[2], loss[3], psnr[0], psnr[1], psnr[2], psnr[3], r.noisy_psnr);
    CHECK(rows == 4 && loss[3] < loss[0] * 0.9, "folder: train loss did not fall by 10%%: %.5f -> %.5f", loss[0],
          loss[3]);
    CHECK(psnr[3] > psnr[0], "folder: val PSNR did not rise: %.2f -> %.2f", psnr[0], psnr[3]);
    CHECK(fabs(r.psnr - psnr[3]) < 1e-3, "folder: eval of model.dcl (%.3f) = last validation (%.3f)", r.psnr, psnr[3]);
    CHECK(r.psnr > r.noisy_psnr + 2.0, "folder: denoised %.2f dB not 2 dB above the noisy input %.2f dB", r.psnr,
          r.noisy_psnr);
    free(p);
    dc_model_destroy(m);
    dc_evaluator_destroy(ev);
    dc_dataset_free(&crops);

    /* Resume: stopped at step 5 of epoch 2 (patch index 160), resumed, equals a straight run. */
    dc_train_config a, b;
    folder_config(&a, dir, "folder-straight", 2);
    CHECK_OK(dc_train(dev, &a, NULL));
    folder_config(&b, dir, "folder-resumed", 2);
    int at = 5;
    b.progress = stop_at_step;
    b.progress_user = &at;
    dc_status s = dc_train(dev, &b, NULL);
    CHECK(s == DC_ERR_INTERRUPTED, "folder: stop at a step -> %d %s", (int)s, dc_error_detail());
    b.progress = NULL;
    b.resume = 1;
    CHECK_OK(dc_train(dev, &b, NULL));
    float *pa = NULL, *pb = NULL;
    size_t na = 0, nb = 0;
    CHECK(read_params(a.out_dir, "model.dcl", &pa, &na) == 0 && read_params(b.out_dir, "model.dcl", &pb, &nb) == 0,
          "folder checkpoints load");
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na * sizeof(float)) == 0, "folder: resumed weights differ");
    free(pa);
    free(pb);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--checkpoint-epochs") == 0) return print_checkpoint_epochs(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--make-subset") == 0)
        return make_subset(argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : NTRAIN,
                           argc > 4 ? strtoul(argv[4], NULL, 10) : NTEST) ? 1 : 0;
    snprintf(tmp, sizeof tmp, "/tmp/daecl-train-XXXXXX");
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    snprintf(data, sizeof data, "%s/mnist", tmp);
    if (make_subset(data, NTRAIN, NTEST)) {
        CHECK(0, "no MNIST subset");
        TEST_MAIN_END();
    }
    dc_device *dev = NULL;
    CHECK_OK(dc_device_open(-1, -1, &dev));
    if (!dev) TEST_MAIN_END();

    /* 1. Learning: 3 epochs of Adam on 2048 images. */
    dc_train_config c;
    base_config(&c, "learn", 3);
    dc_train_summary sum;
    CHECK_OK(dc_train(dev, &c, &sum));
    char csv[800];
    snprintf(csv, sizeof csv, "%s/metrics.csv", c.out_dir);
    FILE *f = fopen(csv, "r");
    double loss[3] = {0}, psnr[3] = {0};
    char line[512];
    int rows = 0;
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = '\0';
        while (rows < 3 && fgets(line, sizeof line, f)) {
            int e;
            double vl, ss, acc;
            if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &e, &loss[rows], &vl, &psnr[rows], &ss, &acc) == 6) rows++;
        }
        fclose(f);
    }
    CHECK(rows == 3, "metrics.csv has %d epoch rows", rows);
    dc_evaluator *ev = NULL;
    dc_dataset test;
    CHECK_OK(dc_dataset_load(data, "test", 0, &test));
    CHECK_OK(dc_evaluator_create(dev, &test, 64, &ev));
    dc_arch arch;
    dc_arch_parse("classic", &arch);
    dc_model *m = NULL;
    float *p = NULL;
    size_t np = 0;
    CHECK_OK(dc_model_create(dev, &arch, 1, 28, 28, 64, &m));
    CHECK(read_params(c.out_dir, "model.dcl", &p, &np) == 0, "model.dcl loads");
    dc_eval_result r = {0};
    if (m && p) {
        CHECK_OK(dc_model_set_params(m, p));
        CHECK_OK(dc_evaluate(ev, m, DC_LOSS_BCE, &c.run.noise, c.run.seed, 1, &r));
    }
    fprintf(stderr, "train loss by epoch %.4f %.4f %.4f; val PSNR %.2f %.2f %.2f dB; noisy input %.2f dB; %.0f img/s\n",
            loss[0], loss[1], loss[2], psnr[0], psnr[1], psnr[2], r.noisy_psnr, sum.images_per_second);
    CHECK(loss[2] < loss[0] * 0.9, "train loss did not fall by 10%%: %.4f -> %.4f", loss[0], loss[2]);
    CHECK(psnr[2] > psnr[0], "val PSNR did not rise: %.2f -> %.2f", psnr[0], psnr[2]);
    CHECK(fabs(r.psnr - psnr[2]) < 1e-3, "eval of model.dcl (%.3f) = last validation (%.3f)", r.psnr, psnr[2]);
    CHECK(r.psnr > r.noisy_psnr + 4.0, "denoised %.2f dB is not 4 dB above the noisy input %.2f dB", r.psnr,
          r.noisy_psnr);
    CHECK(r.noisy_psnr > 8.5 && r.noisy_psnr < 10.5, "noisy input PSNR %.2f, expected ~9.4", r.noisy_psnr);
    char sample[800];
    snprintf(sample, sizeof sample, "%s/samples/epoch_003.png", c.out_dir);
    CHECK(access(sample, R_OK) == 0, "no %s", sample);
    free(p);
    p = NULL;

    /* 2. Resume: 2 epochs straight vs 1 epoch + resume, vs interrupted mid-epoch + resume. */
    dc_train_config a, b;
    base_config(&a, "straight", 2);
    CHECK_OK(dc_train(dev, &a, NULL));
    base_config(&b, "resumed", 1);
    CHECK_OK(dc_train(dev, &b, NULL));
    b.resume = 1;
    CHECK_OK(dc_run_config_set(&b.run, "epochs", "2"));
    CHECK_OK(dc_train(dev, &b, NULL));
    dc_train_config ci;
    base_config(&ci, "interrupted", 2);
    pthread_t th;
    long delay_ns = 400 * 1000 * 1000L;
    pthread_create(&th, NULL, stop_later, &delay_ns);
    dc_status s = dc_train(dev, &ci, NULL);
    pthread_join(th, NULL);
    CHECK(s == DC_ERR_INTERRUPTED && strstr(dc_error_detail(), "--resume"), "interrupt -> %d %s", (int)s,
          dc_error_detail());
    ci.resume = 1;
    CHECK_OK(dc_train(dev, &ci, NULL));
    float *pa = NULL, *pb = NULL, *pc = NULL;
    size_t na = 0, nb = 0, nc = 0;
    CHECK(read_params(a.out_dir, "model.dcl", &pa, &na) == 0, "straight");
    CHECK(read_params(b.out_dir, "model.dcl", &pb, &nb) == 0, "resumed");
    CHECK(read_params(ci.out_dir, "model.dcl", &pc, &nc) == 0, "interrupted");
    CHECK(pa && pb && na == nb && memcmp(pa, pb, na * sizeof(float)) == 0, "resumed weights differ from straight");
    CHECK(pa && pc && na == nc && memcmp(pa, pc, na * sizeof(float)) == 0, "interrupted+resumed weights differ");
    free(pa);
    free(pb);
    free(pc);

    /* 3. Resume refuses damaged or mismatched checkpoints, each with its own message. */
    dc_train_config d = b;
    CHECK_OK(dc_run_config_set(&d.run, "epochs", "3"));
    CHECK_OK(dc_run_config_set(&d.run, "arch", "unet"));
    s = dc_train(dev, &d, NULL);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--arch") && strstr(dc_error_detail(), "cannot change"),
          "other arch: %s", dc_error_detail());
    char ckp[800], cmd[2000];
    snprintf(ckp, sizeof ckp, "%s/model.dcl", b.out_dir);
    snprintf(cmd, sizeof cmd, "truncate -s 1000 '%s'", ckp);
    CHECK(system(cmd) == 0, "truncate");
    CHECK_OK(dc_run_config_set(&d.run, "arch", "classic"));
    s = dc_train(dev, &d, NULL);
    CHECK(s == DC_ERR_FORMAT && strstr(dc_error_detail(), "truncated"), "truncated: %s", dc_error_detail());
    /* One writer per run directory: a held lock refuses the run, naming the holder's PID. */
    {
        char lock[800];
        snprintf(lock, sizeof lock, "%s/.lock", a.out_dir);
        int fd = open(lock, O_RDWR);
        CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "cannot take %s", lock);
        char pid[32];
        snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
        dc_train_config w = a;
        w.resume = 1;
        s = dc_train(dev, &w, NULL);
        CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "in use") && strstr(dc_error_detail(), pid),
              "second writer: %s", dc_error_detail());
        if (fd >= 0) close(fd);
    }
    /* A fresh run does not overwrite an existing run. */
    dc_train_config e = a;
    e.resume = 0;
    s = dc_train(dev, &e, NULL);
    CHECK(s == DC_ERR_INVALID_ARG && strstr(dc_error_detail(), "--resume"), "overwrite guard: %s", dc_error_detail());

    /* 4. Divergence stops with a message naming where, and writes no bad checkpoint. */
    dc_train_config g;
    base_config(&g, "diverge", 2);
    CHECK_OK(dc_run_config_set(&g.run, "optimizer", "sgd"));
    g.run.optim.lr = 1e30f; /* beyond the flag's range */
    s = dc_train(dev, &g, NULL);
    CHECK(s == DC_ERR_NONFINITE && strstr(dc_error_detail(), "epoch 1") && strstr(dc_error_detail(), "nothing saved"),
          "divergence -> %d %s", (int)s, dc_error_detail());
    snprintf(ckp, sizeof ckp, "%s/model.dcl", g.out_dir);
    CHECK(access(ckp, F_OK) != 0, "a diverged run wrote %s", ckp);

    steering(dev);
    folder(dev);

    dc_model_destroy(m);
    dc_evaluator_destroy(ev);
    dc_dataset_free(&test);
    dc_device_close(dev);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_MAIN_END();
}
