/* Checkpoint files: round trip, and every kind of damage refused with its own message. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daecl/checkpoint.h"
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
    dc_optim_defaults(DC_OPT_ADAM, &ck.optim);
    ck.step = 1234;
    ck.epoch = 3;
    ck.batch = 17;
    ck.seed = 0xDEADBEEFCAFEull;
    ck.best_val_loss = 0.1015;
    ck.config = "batch=128\nloss=bce\n";
    char good[512];
    path_of(good, sizeof good, "good.dcl");
    CHECK_OK(dc_checkpoint_save(good, &ck));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", good, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "temp file left behind");

    dc_checkpoint back;
    CHECK_OK(dc_checkpoint_load(good, &back));
    CHECK(strcmp(back.arch, ck.arch) == 0 && back.in_h == 28 && back.nparams == 1000 && back.nstate == 2000,
          "header fields");
    CHECK(back.step == 1234 && back.epoch == 3 && back.batch == 17 && back.seed == ck.seed &&
              back.best_val_loss == ck.best_val_loss && back.optim.kind == DC_OPT_ADAM &&
              back.optim.beta2 == ck.optim.beta2,
          "training position");
    CHECK(memcmp(back.params, ck.params, 1000 * sizeof(float)) == 0, "parameters bit-identical");
    CHECK(memcmp(back.state, ck.state, 2000 * sizeof(float)) == 0, "optimizer state bit-identical");
    CHECK(back.config && strcmp(back.config, ck.config) == 0, "config text");
    dc_checkpoint_free(&back);

    size_t full = file_size(good);
    char p[512];
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
