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

    dc_model_destroy(m);
    dc_evaluator_destroy(ev);
    dc_dataset_free(&test);
    dc_device_close(dev);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_MAIN_END();
}
