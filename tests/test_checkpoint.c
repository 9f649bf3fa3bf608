/* Checkpoint files: round trip (run configuration and metrics rows included; a colour residual
 * model), files of versions 1 to 3 written by earlier dae-cl (tests/fixtures) loading, and every
 * kind of damage refused with its own message. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "daecl/checkpoint.h"
#include "daecl/model.h"
#include "test.h"

static char dir[256];

static void path_of(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

static size_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (size_t)st.st_size : 0;
}

static void patch_byte(const char *p, long off, unsigned char v)
{
    FILE *f = fopen(p, "r+b");
    if (!f) return;
    fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
    fputc(v, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to, size_t n)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    for (size_t i = 0; a && b && i < n; i++) {
        int c = fgetc(a);
        if (c == EOF) break;
        fputc(c, b);
    }
    if (a) fclose(a);
    if (b) fclose(b);
}

static void expect_refused(const char *p, const char *word)
{
    dc_checkpoint ck;
    dc_status s = dc_checkpoint_load(p, &ck);
    CHECK(s == DC_ERR_FORMAT && strstr(dc_error_detail(), p) && strstr(dc_error_detail(), word),
          "%s: status %d, message '%s' (want '%s')", p, (int)s, dc_error_detail(), word);
}

int main(void)
{
    uint64_t rng = test_seed();
    snprintf(dir, sizeof dir, "/tmp/daecl-ck-XXXXXX");
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");

    dc_checkpoint ck = {0};
    snprintf(ck.arch, sizeof ck.arch, "conv:32,pool,conv:1:sigmoid");
    ck.in_c = 1;
    ck.in_h = 28;
    ck.in_w = 28;
    ck.nparams = 1000;
    ck.nstate = 2000;
    ck.params = malloc(ck.nparams * sizeof(float));
    ck.state = malloc(ck.nstate * sizeof(float));
    for (size_t i = 0; i < ck.nparams; i++) ck.params[i] = (float)test_uniform(&rng, -1, 1);
    for (size_t i = 0; i < ck.nstate; i++) ck.state[i] = (float)test_uniform(&rng, 0, 1);
    dc_run_config_defaults(&ck.run);
    snprintf(ck.run.arch, sizeof ck.run.arch, "%s", ck.arch);
    CHECK_OK(dc_run_config_set(&ck.run, "optimizer", "rmsprop"));
    ck.run.optim.lr = (float)test_uniform(&rng, 1e-5, 1); /* any float: must come back bit-exact */
    ck.run.optim.rho = (float)test_uniform(&rng, 0.5, 0.99);
    ck.run.optim.momentum = (float)test_uniform(&rng, 0, 0.9);
    ck.run.optim.eps = (float)test_uniform(&rng, 1e-9, 1e-6);
    CHECK_OK(dc_run_config_set(&ck.run, "noise", "saltpepper:0.3"));
    ck.run.seed = 0xDEADBEEFCAFEull;
    ck.run.batch = 96;
    ck.step = 1234;
    ck.epoch = 3;
    ck.batch = 17;
    ck.best_val_loss = 0.1015;
    ck.best_epoch = 3;
    ck.lr_reductions = 2;
    ck.lr_last_reduction = 1;
    CHECK_OK(dc_run_config_set(&ck.run, "lr-schedule", "plateau"));
    ck.metrics = "1,0.5,,,,,1.00,100.0\n2,0.4,,,,,1.00,100.0\n3,0.3,0.2,20.0,0.9,0.8,1.00,100.0\n";
    char good[512];
    path_of(good, sizeof good, "good.dcl");
    CHECK_OK(dc_checkpoint_save(good, &ck));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", good, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temp file left behind");

    dc_checkpoint back;
    char p[512];
    CHECK_OK(dc_checkpoint_load(good, &back));
    CHECK(strcmp(back.arch, ck.arch) == 0 && back.in_h == 28 && back.nparams == 1000 && back.nstate == 2000,
          "header fields");
    CHECK(back.step == 1234 && back.epoch == 3 && back.batch == 17 && back.best_val_loss == ck.best_val_loss &&
              back.version == DC_CHECKPOINT_VERSION && !back.unknown_key[0] && back.best_epoch == 3 &&
              back.lr_reductions == 2 && back.lr_last_reduction == 1 && back.run.schedule.kind == DC_LR_PLATEAU,
          "training position and steering state");
    ck.run.given = 0;
    CHECK(memcmp(&back.run, &ck.run, sizeof ck.run) == 0, "run configuration differs after the round trip");
    CHECK(back.run.optim.lr == ck.run.optim.lr && back.run.optim.eps == ck.run.optim.eps && back.run.seed == ck.run.seed,
          "hyper-parameters bit-exact: lr %.9g/%.9g eps %.9g/%.9g", (double)back.run.optim.lr, (double)ck.run.optim.lr,
          (double)back.run.optim.eps, (double)ck.run.optim.eps);
    CHECK(memcmp(back.params, ck.params, 1000 * sizeof(float)) == 0, "parameters bit-identical");
    CHECK(memcmp(back.state, ck.state, 2000 * sizeof(float)) == 0, "optimizer state bit-identical");
    CHECK(back.metrics && strcmp(back.metrics, ck.metrics) == 0, "metrics rows");
    dc_checkpoint_free(&back);

    /* Version 1 (dae-cl 0.1.0, written by `dae-cl train --arch conv:2:k3,conv:1:sigmoid --epochs 2
     * --batch 16 --optimizer sgd --momentum 0.5 --lr 0.05 --seed 7 --noise mask:0.25 --loss mse
     * --validate-every 2`): converted, every setting kept. */
    const char *root = getenv("DAECL_SOURCE_ROOT");
    char v1[1024];
    snprintf(v1, sizeof v1, "%s/tests/fixtures/v1-sgd-mask.dcl", root ? root : ".");
    dc_checkpoint old;
    CHECK_OK(dc_checkpoint_load(v1, &old));
    if (old.params) {
        CHECK(old.version == 1 && strcmp(old.arch, "conv:2,conv:1:sigmoid") == 0 && old.nparams == 39 &&
                  old.nstate == 39 && old.epoch == 2 && old.batch == 0 && old.metrics == NULL,
              "v1 model: version %d arch %s nparams %llu epoch %d", old.version, old.arch,
              (unsigned long long)old.nparams, old.epoch);
        const dc_run_config *r = &old.run;
        CHECK(r->optim.kind == DC_OPT_SGD && r->optim.lr == 0.05f && r->optim.momentum == 0.5f && r->seed == 7 &&
                  r->noise.kind == DC_NOISE_MASK && r->noise.param == 0.25f && r->loss == DC_LOSS_MSE && r->batch == 16 &&
                  r->epochs == 2 && r->validate_every == 2 && strcmp(r->arch, old.arch) == 0,
              "v1 settings not converted: optimizer %d lr %g seed %llu batch %d", (int)r->optim.kind,
              (double)r->optim.lr, (unsigned long long)r->seed, r->batch);
        /* Saved again, it is a current checkpoint with the same settings. */
        path_of(p, sizeof p, "converted.dcl");
        CHECK_OK(dc_checkpoint_save(p, &old));
        dc_checkpoint conv;
        CHECK_OK(dc_checkpoint_load(p, &conv));
        old.run.given = 0;
        CHECK(conv.version == DC_CHECKPOINT_VERSION && memcmp(&conv.run, &old.run, sizeof old.run) == 0 &&
                  memcmp(conv.params, old.params, 39 * sizeof(float)) == 0,
              "converted checkpoint differs");
        dc_checkpoint_free(&conv);
        dc_checkpoint_free(&old);
    }

    /* Version 2 (before schedules: `dae-cl train --arch conv:2,conv:1:sigmoid --epochs 2 --batch 64
     * --seed 5` on 256 images): loads with the schedule's defaults, its best epoch the last one. */
    char v2[1024];
    snprintf(v2, sizeof v2, "%s/tests/fixtures/v2-adam-2epochs.dcl", root ? root : ".");
    CHECK_OK(dc_checkpoint_load(v2, &old));
    if (old.params) {
        CHECK(old.version == 2 && old.epoch == 2 && old.best_epoch == 2 && old.lr_reductions == 0 &&
                  old.run.schedule.kind == DC_LR_CONSTANT && old.run.early_stop == 0 && old.run.seed == 5 &&
                  old.metrics && strstr(old.metrics, "2,0.604120,"),
              "v2 model: version %d epoch %d best %d schedule %d", old.version, old.epoch, old.best_epoch,
              (int)old.run.schedule.kind);
        dc_checkpoint_free(&old);
    }

    /* Version 3 (before colour models: `dae-cl train --arch conv:2,conv:1:sigmoid --epochs 2
     * --batch 64 --seed 5 --train-limit 256 --val-limit 64 --lr-schedule plateau --lr-patience 1`):
     * loads as it is, its spec unchanged and planned for one channel. */
    char v3[1024];
    snprintf(v3, sizeof v3, "%s/tests/fixtures/v3-adam-plateau.dcl", root ? root : ".");
    CHECK_OK(dc_checkpoint_load(v3, &old));
    if (old.params) {
        dc_arch a;
        dc_layer_state ls[DC_MAX_LAYERS];
        size_t np = 0;
        CHECK_OK(dc_arch_parse(old.arch, &a));
        CHECK_OK(dc_model_plan(&a, old.in_c, old.in_h, old.in_w, ls, &np, NULL));
        CHECK(old.version == 3 && strcmp(old.arch, "conv:2,conv:1:sigmoid") == 0 && old.in_c == 1 && !a.residual &&
                  np == old.nparams && old.epoch == 2 && old.run.schedule.kind == DC_LR_PLATEAU &&
                  old.run.loss == DC_LOSS_BCE && !old.run.residual && old.run.depth == 0,
              "v3 model: version %d arch %s in_c %d epoch %d", old.version, old.arch, old.in_c, old.epoch);
        dc_checkpoint_free(&old);
    }

    /* A colour residual model (dncnn, 3 conv layers of 4 filters): its spec keeps conv:C and the
     * residual head, its settings the flags that shaped it; the loss followed the model. */
    {
        dc_checkpoint c3 = {0};
        dc_run_config_defaults(&c3.run);
        CHECK_OK(dc_run_config_set(&c3.run, "arch", "dncnn"));
        CHECK_OK(dc_run_config_set(&c3.run, "width", "4"));
        CHECK_OK(dc_run_config_set(&c3.run, "depth", "3"));
        CHECK_OK(dc_run_config_check(&c3.run));
        snprintf(c3.arch, sizeof c3.arch, "%s", c3.run.arch);
        c3.in_c = 3;
        c3.in_h = c3.in_w = 64;
        dc_arch a;
        dc_layer_state ls[DC_MAX_LAYERS];
        size_t np = 0;
        CHECK_OK(dc_arch_parse(c3.arch, &a));
        CHECK_OK(dc_model_plan(&a, 3, 64, 64, ls, &np, NULL));
        c3.nparams = np;
        c3.params = malloc(np * sizeof(float));
        for (size_t i = 0; i < np; i++) c3.params[i] = (float)test_uniform(&rng, -1, 1);
        c3.best_val_loss = INFINITY;
        path_of(p, sizeof p, "colour-residual.dcl");
        CHECK_OK(dc_checkpoint_save(p, &c3));
        CHECK_OK(dc_checkpoint_load(p, &back));
        if (back.params) {
            dc_arch b;
            CHECK_OK(dc_arch_parse(back.arch, &b));
            CHECK(back.version == DC_CHECKPOINT_VERSION && strcmp(back.arch, "conv:4,conv:4,conv:C:linear,residual") == 0 &&
                      b.residual && back.in_c == 3 && back.nparams == np && back.run.depth == 3 && back.run.width == 4 &&
                      back.run.loss == DC_LOSS_MSE && strcmp(back.run.arch, back.arch) == 0 &&
                      memcmp(back.params, c3.params, np * sizeof(float)) == 0,
                  "colour residual round trip: arch '%s' in_c %d depth %d width %d loss %s", back.arch, back.in_c,
                  back.run.depth, back.run.width, dc_loss_name(back.run.loss));
            c3.run.given = 0;
            char t1[DC_RUN_TEXT_MAX], t2[DC_RUN_TEXT_MAX];
            dc_run_config_format(&c3.run, 1, t1, sizeof t1);
            dc_run_config_format(&back.run, 1, t2, sizeof t2);
            CHECK(strcmp(t1, t2) == 0, "colour residual: run configuration differs:\n%s\nvs\n%s", t1, t2);
        }
        dc_checkpoint_free(&back);
        free(c3.params);
    }

    /* A setting this dae-cl does not know (a newer one wrote it) loads, and is reported. */
    {
        dc_checkpoint u = ck;
        path_of(p, sizeof p, "unknown-key.dcl");
        CHECK_OK(dc_checkpoint_save(p, &u));
        /* Rewrite the run text's "transpose" key as "transposX": same length, CRC fixed below. */
        FILE *uf = fopen(p, "r+b");
        size_t len = file_size(p);
        unsigned char *buf = malloc(len);
        if (uf && buf && fread(buf, 1, len, uf) == len) {
            for (size_t i = 0; i + 10 < len; i++)
                if (memcmp(buf + i, "\ntranspose=", 11) == 0) buf[i + 9] = 'X';
            uint32_t crc = (uint32_t)crc32(0L, buf + 24, (uInt)(len - 28));
            memcpy(buf + len - 4, &crc, 4);
            rewind(uf);
            fwrite(buf, 1, len, uf);
        }
        if (uf) fclose(uf);
        free(buf);
        CHECK_OK(dc_checkpoint_load(p, &back));
        CHECK(strcmp(back.unknown_key, "transposX") == 0, "unknown key reported as '%s'", back.unknown_key);
        dc_checkpoint_free(&back);
    }

    size_t full = file_size(good);
    /* Truncated: cut in the header, and in the payload. */
    path_of(p, sizeof p, "short-header.dcl");
    copy_file(good, p, 12);
    expect_refused(p, "truncated");
    path_of(p, sizeof p, "short-payload.dcl");
    copy_file(good, p, full - 100);
    expect_refused(p, "truncated");
    /* Only the CRC is cut: say that, not "the payload is short". A directory or FIFO is named. */
    path_of(p, sizeof p, "short-crc.dcl");
    copy_file(good, p, full - 2);
    expect_refused(p, "CRC-32 is missing (2 of 4 bytes)");
    path_of(p, sizeof p, "");
    CHECK(dc_checkpoint_load(p, &back) == DC_ERR_IO && strstr(dc_error_detail(), "is a directory, expected a dae-cl checkpoint"),
          "directory: %s", dc_error_detail());
    /* One flipped byte in the weights. */
    path_of(p, sizeof p, "flipped.dcl");
    copy_file(good, p, full);
    patch_byte(p, 300, 0x77);
    expect_refused(p, "CRC");
    /* Another format version. */
    path_of(p, sizeof p, "version.dcl");
    copy_file(good, p, full);
    patch_byte(p, 8, 9);
    expect_refused(p, "version 9");
    patch_byte(p, 8, 0);
    expect_refused(p, "version 0");
    /* Not a checkpoint at all. */
    path_of(p, sizeof p, "magic.dcl");
    FILE *f = fopen(p, "w");
    fputs("hello, this is text\n", f);
    fclose(f);
    expect_refused(p, "not a dae-cl checkpoint");
    /* Garbage appended. */
    path_of(p, sizeof p, "trailing.dcl");
    copy_file(good, p, full);
    f = fopen(p, "ab");
    fputs("xyz", f);
    fclose(f);
    expect_refused(p, "trailing");
    /* Missing file: I/O error naming it. */
    path_of(p, sizeof p, "missing.dcl");
    dc_status s = dc_checkpoint_load(p, &back);
    CHECK(s == DC_ERR_IO && strstr(dc_error_detail(), "missing.dcl"), "missing: %s", dc_error_detail());
    /* A failed save leaves the old file intact. */
    path_of(p, sizeof p, "no-such-dir/x.dcl");
    CHECK(dc_checkpoint_save(p, &ck) == DC_ERR_IO, "save into a missing directory fails");
    CHECK(file_size(good) == full, "good file untouched");

    free(ck.params);
    free(ck.state);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_MAIN_END();
}
