/* IDX reader/writer and dataset loading: round trips (raw and gzip), transpose, MNIST-named
 * directories, and every malformed-file case with its own message. */
#include "daecl/dataset.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[4096];
static uint64_t rng;
static int verbose; /* DAECL_TEST_VERBOSE=1 prints every expected error message */

/* tmpdir/name, in a static rotating buffer (enough slots for one expression). */
static const char *P(const char *name)
{
    static char buf[8][4200];
    static int slot;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static void put_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    if (len && fwrite(data, 1, len, f) != len) { perror(path); exit(2); }
    fclose(f);
}

static void put_gz(const char *path, const void *data, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    if (!gz) { perror(path); exit(2); }
    if (len && gzwrite(gz, data, (unsigned)len) != (int)len) { fprintf(stderr, "gzwrite\n"); exit(2); }
    gzclose(gz);
}

static unsigned char *get_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) { perror(path); exit(2); }
    fclose(f);
    *len = (size_t)sz;
    return b;
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

/* An IDX image file image in memory: header (n, h, w) + `data` payload bytes (random). */
static unsigned char *idx3(uint32_t n, uint32_t h, uint32_t w, size_t data, size_t *len)
{
    unsigned char *b = malloc(16 + data + 1);
    b[0] = 0; b[1] = 0; b[2] = 8; b[3] = 3;
    be32(b + 4, n); be32(b + 8, h); be32(b + 12, w);
    for (size_t i = 0; i < data; i++) b[16 + i] = (unsigned char)test_rand_u64(&rng);
    *len = 16 + data;
    return b;
}

static void random_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)test_rand_u64(&rng);
}

/* A call failed with the expected status, and its detail names the file and says `word`. */
#define CHECK_FAIL(expr, want, file, word)                                                   \
    do {                                                                                     \
        dc_clear_error();                                                                    \
        dc_status cf_s_ = (expr);                                                            \
        const char *cf_d_ = dc_error_detail();                                               \
        if (verbose) fprintf(stderr, "  %-13s %s\n", dc_strerror(cf_s_), cf_d_);             \
        CHECK(cf_s_ == (want), "%s -> %s (wanted %s): %s", #expr, dc_strerror(cf_s_),        \
              dc_strerror(want), cf_d_);                                                     \
        CHECK(strstr(cf_d_, (file)) != NULL, "detail should name %s: %s", (file), cf_d_);    \
        CHECK(strstr(cf_d_, (word)) != NULL, "detail should say '%s': %s", (word), cf_d_);   \
        CHECK(strchr(cf_d_, '\n') == NULL, "detail should be one line: %s", cf_d_);          \
    } while (0)

/* Read `path` as images and expect a failure; also checks the outputs are reset. */
static dc_status read_img_expect_fail(const char *path)
{
    uint8_t *img = (uint8_t *)1;
    size_t n = 99;
    int h = 99, w = 99;
    dc_status s = dc_idx_read_images(path, 0, &img, &n, &h, &w);
    CHECK(s != DC_OK && img == NULL && n == 0 && h == 0 && w == 0,
          "failed read of %s should leave outputs empty", path);
    if (s == DC_OK) free(img);
    return s;
}

static dc_status read_lab_expect_fail(const char *path)
{
    uint8_t *lab = (uint8_t *)1;
    size_t n = 99;
    dc_status s = dc_idx_read_labels(path, &lab, &n);
    CHECK(s != DC_OK && lab == NULL && n == 0, "failed read of %s should leave outputs empty", path);
    if (s == DC_OK) free(lab);
    return s;
}

static void test_round_trip(int gzip)
{
    const size_t n = 3;
    const int h = 5, w = 7;
    uint8_t img[3 * 5 * 7], lab[3] = {7, 0, 9};
    random_bytes(img, sizeof img);
    const char *ip = P(gzip ? "rt-images" : "rt-images.raw"); /* gzip detected by magic, not name */
    const char *lp = P(gzip ? "rt-labels.bin" : "rt-labels.gz");  /* a raw file named .gz */
    CHECK_OK(dc_idx_write_images(ip, img, n, h, w, gzip));
    CHECK_OK(dc_idx_write_labels(lp, lab, n, gzip));

    size_t len;
    unsigned char *b = get_bytes(ip, &len);
    if (gzip) {
        CHECK(len >= 2 && b[0] == 0x1f && b[1] == 0x8b, "gzip magic expected");
    } else {
        static const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 7};
        CHECK(len == 16 + sizeof img, "raw file size %zu", len);
        CHECK(len >= 16 && memcmp(b, hdr, 16) == 0, "raw header bytes");
        CHECK(len == 16 + sizeof img && memcmp(b + 16, img, sizeof img) == 0, "raw payload");
    }
    free(b);

    uint8_t *rimg = NULL, *rlab = NULL;
    size_t rn = 0, rln = 0;
    int rh = 0, rw = 0;
    CHECK_OK(dc_idx_read_images(ip, 0, &rimg, &rn, &rh, &rw));
    CHECK(rn == n && rh == h && rw == w, "dims %zu %dx%d", rn, rh, rw);
    CHECK(rimg && memcmp(rimg, img, sizeof img) == 0, "image bytes differ (gzip=%d)", gzip);
    CHECK_OK(dc_idx_read_labels(lp, &rlab, &rln));
    CHECK(rln == n && rlab && memcmp(rlab, lab, n) == 0, "labels differ (gzip=%d)", gzip);

    /* Transpose: (h, w) swap and every image is transposed. */
    uint8_t *timg = NULL;
    size_t tn = 0;
    int th = 0, tw = 0;
    CHECK_OK(dc_idx_read_images(ip, 1, &timg, &tn, &th, &tw));
    CHECK(tn == n && th == w && tw == h, "transposed dims %zu %dx%d", tn, th, tw);
    int same = timg != NULL;
    for (size_t i = 0; same && i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (timg[i * 35 + (size_t)x * h + y] != img[i * 35 + (size_t)y * w + x]) same = 0;
    CHECK(same, "transposed pixels wrong (gzip=%d)", gzip);
    /* Transposing twice gives the original back. */
    CHECK_OK(dc_idx_write_images(P("rt-t"), timg, tn, th, tw, gzip));
    uint8_t *t2 = NULL;
    CHECK_OK(dc_idx_read_images(P("rt-t"), 1, &t2, &tn, &th, &tw));
    CHECK(th == h && tw == w && t2 && memcmp(t2, img, sizeof img) == 0, "double transpose");
    free(t2);
    free(timg);
    free(rimg);
    free(rlab);

    /* The writer leaves no temporary files behind. */
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int tmps = 0;
    while (d && (e = readdir(d)) != NULL) tmps += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    CHECK(tmps == 0, "%d temporary files left in %s", tmps, tmpdir);
}

/* A bigger gzip file crosses zlib's internal buffers and our chunked reads. */
static void test_bigger_gzip(void)
{
    const size_t n = 1000;
    const int h = 28, w = 28;
    uint8_t *img = malloc(n * h * w), *r = NULL;
    for (size_t i = 0; i < n * h * w; i++) img[i] = (uint8_t)(i * 7 + i / 1000);
    CHECK_OK(dc_idx_write_images(P("big.gz"), img, n, h, w, 1));
    size_t rn;
    int rh, rw;
    CHECK_OK(dc_idx_read_images(P("big.gz"), 0, &r, &rn, &rh, &rw));
    CHECK(rn == n && rh == h && rw == w && r && memcmp(r, img, n * h * w) == 0, "1000x28x28 gz");
    free(r);
    free(img);
}

static void test_malformed_images(void)
{
    unsigned char *b;
    size_t len;
    const char *p;

    p = P("missing-file");
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_IO, p, "cannot open");
    CHECK_FAIL(read_img_expect_fail(tmpdir), DC_ERR_IO, tmpdir, "directory");

    p = P("empty");
    put_bytes(p, "", 0);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "truncated header");

    b = idx3(3, 5, 7, 105, &len);
    b[0] = 0x01; b[1] = 0x02;
    p = P("bad-magic");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "magic");
    free(b);

    b = idx3(3, 5, 7, 105 * 4, &len);
    b[2] = 0x0D; /* float32 */
    p = P("bad-type");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "type 0x0d");
    free(b);

    /* 2-D (N x D) files are refused, not guessed. */
    {
        unsigned char d2[12 + 6] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
        p = P("two-dims");
        put_bytes(p, d2, sizeof d2);
        CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "dimension count 2");
        d2[3] = 4;
        p = P("four-dims");
        put_bytes(p, d2, sizeof d2);
        CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "dimension count 4");
    }
    /* A label file where images are expected, and the other way round. */
    {
        uint8_t lab[4] = {1, 2, 3, 4};
        CHECK_OK(dc_idx_write_labels(P("a-label-file"), lab, 4, 0));
        CHECK_FAIL(read_img_expect_fail(P("a-label-file")), DC_ERR_FORMAT, P("a-label-file"),
                   "label file");
        uint8_t img[2 * 2 * 2] = {0};
        CHECK_OK(dc_idx_write_images(P("an-image-file"), img, 2, 2, 2, 0));
        CHECK_FAIL(read_lab_expect_fail(P("an-image-file")), DC_ERR_FORMAT, P("an-image-file"),
                   "image file");
    }

    b = idx3(3, 5, 7, 0, &len);
    p = P("short-header");
    put_bytes(p, b, 10);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "truncated header");
    free(b);

    b = idx3(0, 5, 7, 0, &len);
    p = P("zero-n");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "zero dimension");
    free(b);
    b = idx3(3, 5, 0, 0, &len);
    p = P("zero-w");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "zero dimension");
    free(b);

    b = idx3(3, 5, 7, 100, &len);
    p = P("short-data");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "truncated: header says 3 images of 5x7");
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "file holds 100 bytes of data");
    p = P("short-data.gz");
    put_gz(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "file holds 100 bytes of data");
    free(b);

    b = idx3(3, 5, 7, 108, &len);
    p = P("trailing");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "trailing garbage: 3 bytes");
    p = P("trailing.gz");
    put_gz(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "trailing garbage: 3 bytes");
    free(b);

    /* Huge headers are refused before any allocation: product overflows, or over the limit. */
    b = idx3(0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 16, &len);
    p = P("huge-overflow");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "too large");
    p = P("huge-overflow.gz");
    put_gz(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "too large");
    free(b);
    b = idx3(131073, 128, 128, 16, &len); /* 2^31 + 16384 bytes */
    p = P("huge-limit");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "too large");
    free(b);
    /* Within the limit but the (raw) file is tiny: truncated, found from the file size. */
    b = idx3(131072, 128, 128, 16, &len); /* exactly 2^31 bytes announced */
    p = P("big-but-short");
    put_bytes(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "truncated");
    free(b);
    /* Same in gzip: the buffer grows with the data, so this does not allocate 2 GB. */
    b = idx3(131072, 128, 128, 1000, &len);
    p = P("big-but-short.gz");
    put_gz(p, b, len);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "file holds 1000 bytes of data");
    free(b);

    /* Corrupt gzip: garbage after the magic, a bad CRC, a stream cut in the middle. */
    {
        unsigned char g[32] = {0x1f, 0x8b, 0x77, 0x66, 0x55};
        for (int i = 5; i < 32; i++) g[i] = (unsigned char)(i * 37);
        p = P("corrupt-header.gz");
        put_bytes(p, g, sizeof g);
        CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "corrupt gzip");
    }
    b = idx3(3, 5, 7, 105, &len);
    p = P("crc.gz");
    put_gz(p, b, len);
    free(b);
    {
        size_t glen;
        unsigned char *g = get_bytes(p, &glen);
        g[glen - 8] ^= 0xFF; /* CRC32 in the gzip trailer */
        put_bytes(p, g, glen);
        CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "corrupt gzip");
        free(g);
    }
    {
        /* The data complete but the gzip trailer (CRC, size) missing. */
        size_t glen;
        b = idx3(3, 5, 7, 105, &len);
        put_gz(P("no-trailer.gz"), b, len);
        free(b);
        unsigned char *g = get_bytes(P("no-trailer.gz"), &glen);
        put_bytes(P("no-trailer.gz"), g, glen - 8);
        free(g);
        CHECK_FAIL(read_img_expect_fail(P("no-trailer.gz")), DC_ERR_FORMAT, P("no-trailer.gz"),
                   "gzip");
    }
    {
        uint8_t *img = malloc(50 * 28 * 28);
        random_bytes(img, 50 * 28 * 28); /* incompressible, so the cut lands in the data */
        CHECK_OK(dc_idx_write_images(P("cut.gz"), img, 50, 28, 28, 1));
        free(img);
        size_t glen;
        unsigned char *g = get_bytes(P("cut.gz"), &glen);
        put_bytes(P("cut.gz"), g, glen / 2);
        free(g);
        CHECK_FAIL(read_img_expect_fail(P("cut.gz")), DC_ERR_FORMAT, P("cut.gz"),
                   "gzip stream ends early");
        CHECK_FAIL(read_img_expect_fail(P("cut.gz")), DC_ERR_FORMAT, P("cut.gz"), "truncated");
    }
}

static void test_malformed_labels(void)
{
    unsigned char l[8 + 40] = {0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2};
    const char *p = P("labels-short");
    put_bytes(p, l, 8 + 6);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "truncated: header says 10 labels");
    p = P("labels-trailing");
    put_bytes(p, l, 8 + 12);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "trailing garbage: 2 bytes");
    p = P("labels-trailing.gz");
    put_gz(p, l, 8 + 12);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "trailing");
    l[0] = 8;
    p = P("labels-magic");
    put_bytes(p, l, 18);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "magic");
    l[0] = 0;
    l[2] = 0x0C;
    p = P("labels-type");
    put_bytes(p, l, 8 + 40);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "type");
    l[2] = 8;
    l[7] = 0;
    p = P("labels-zero");
    put_bytes(p, l, 8);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "zero dimension");
    unsigned char huge[8] = {0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF};
    p = P("labels-huge");
    put_bytes(p, huge, sizeof huge);
    CHECK_FAIL(read_lab_expect_fail(p), DC_ERR_FORMAT, p, "too large");
}

static void test_write_errors(void)
{
    uint8_t img[4] = {0};
    const char *p = P("no-such-dir/x");
    CHECK_FAIL(dc_idx_write_images(p, img, 1, 2, 2, 0), DC_ERR_IO, p, "temporary");
    CHECK_FAIL(dc_idx_write_labels(p, img, 4, 1), DC_ERR_IO, p, "temporary");
    p = P("w-bad-args");
    CHECK_FAIL(dc_idx_write_images(p, img, 0, 2, 2, 0), DC_ERR_INVALID_ARG, p, "0 images");
    CHECK_FAIL(dc_idx_write_images(p, img, 1, -2, 2, 0), DC_ERR_INVALID_ARG, p, "1 images");
    CHECK_FAIL(dc_idx_write_labels(p, img, 0, 0), DC_ERR_INVALID_ARG, p, "0 labels");
    CHECK(access(p, F_OK) != 0, "refused write must not create %s", p);
}

/* Not regular files: refused at once (a FIFO without a writer must not block in open()), and an
 * output path that is a FIFO or a directory is never replaced. gzip: junk after the stream is
 * refused, a second member is read on. */
static void test_special_files(void)
{
    const char *fifo = P("fifo");
    CHECK(mkfifo(fifo, 0644) == 0, "mkfifo %s: %s", fifo, strerror(errno));
    CHECK_FAIL(read_img_expect_fail(fifo), DC_ERR_IO, fifo, "is a FIFO");
    CHECK_FAIL(read_lab_expect_fail(fifo), DC_ERR_IO, fifo, "is a FIFO");
    CHECK_FAIL(read_img_expect_fail(tmpdir), DC_ERR_IO, tmpdir, "is a directory");
    uint8_t img[4] = {1, 2, 3, 4};
    CHECK_FAIL(dc_idx_write_images(fifo, img, 1, 2, 2, 1), DC_ERR_IO, fifo, "refusing to replace");
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");

    size_t len;
    unsigned char *b = idx3(2, 3, 4, 24, &len);
    const char *p = P("junk.gz");
    put_gz(p, b, len);
    size_t glen;
    unsigned char *g = get_bytes(p, &glen);
    unsigned char *two = malloc(2 * glen + 5);
    memcpy(two, g, glen);
    memcpy(two + glen, "junk!", 5);
    put_bytes(p, two, glen + 5);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "trailing garbage: 5 bytes after the end of the gzip stream");
    two[glen] = 0x1f; /* a lone byte that starts like a gzip magic */
    put_bytes(p, two, glen + 1);
    CHECK_FAIL(read_img_expect_fail(p), DC_ERR_FORMAT, p, "trailing garbage: 1 bytes");

    /* Two members: the header in one, the pixels in the other (gzip -c a b > ab.gz). */
    p = P("two-members.gz");
    put_gz(P("m1.gz"), b, 16);
    put_gz(P("m2.gz"), b + 16, len - 16);
    size_t l1, l2;
    unsigned char *g1 = get_bytes(P("m1.gz"), &l1), *g2 = get_bytes(P("m2.gz"), &l2);
    unsigned char *cat = malloc(l1 + l2);
    memcpy(cat, g1, l1);
    memcpy(cat + l1, g2, l2);
    put_bytes(p, cat, l1 + l2);
    uint8_t *r = NULL;
    size_t rn = 0;
    int rh = 0, rw = 0;
    CHECK_OK(dc_idx_read_images(p, 0, &r, &rn, &rh, &rw));
    CHECK(rn == 2 && rh == 3 && rw == 4 && r && memcmp(r, b + 16, 24) == 0, "two-member gzip read back");
    free(r);
    free(cat);
    free(g1);
    free(g2);
    free(two);
    free(g);
    free(b);
}

static void mkdir_in(const char *name)
{
    if (mkdir(P(name), 0755) != 0 && errno != EEXIST) { perror(P(name)); exit(2); }
}

static void test_dataset_load(void)
{
    uint8_t tr[4 * 6 * 5], te[2 * 6 * 5], trl[4] = {5, 0, 4, 1}, tel[3] = {7, 2, 1};
    random_bytes(tr, sizeof tr);
    random_bytes(te, sizeof te);
    mkdir_in("mnist");
    /* Mixed on purpose: raw, gzip, and the dotted name. */
    CHECK_OK(dc_idx_write_images(P("mnist/train-images-idx3-ubyte"), tr, 4, 6, 5, 0));
    CHECK_OK(dc_idx_write_labels(P("mnist/train-labels-idx1-ubyte.gz"), trl, 4, 1));
    CHECK_OK(dc_idx_write_images(P("mnist/t10k-images.idx3-ubyte"), te, 2, 6, 5, 1));

    dc_dataset ds;
    CHECK_OK(dc_dataset_load(P("mnist"), "train", 0, &ds));
    CHECK(ds.n == 4 && ds.h == 6 && ds.w == 5, "train dims %zu %dx%d", ds.n, ds.h, ds.w);
    CHECK(ds.images && memcmp(ds.images, tr, sizeof tr) == 0, "train images");
    CHECK(ds.labels && memcmp(ds.labels, trl, 4) == 0, "train labels");
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof tr; i++) sum += tr[i];
    double want = (double)sum / (sizeof tr * 255.0);
    CHECK(ds.n == 4 && dc_dataset_mean(&ds) > want - 1e-12 && dc_dataset_mean(&ds) < want + 1e-12,
          "mean %f vs %f", dc_dataset_mean(&ds), want);

    dc_dataset_truncate(&ds, 0);
    CHECK(ds.n == 4, "truncate(0) is a no-op");
    dc_dataset_truncate(&ds, 9);
    CHECK(ds.n == 4, "truncate(9 > n) is a no-op");
    dc_dataset_truncate(&ds, 2);
    CHECK(ds.n == 2 && memcmp(ds.images, tr, 2 * 30) == 0 && ds.labels[0] == 5 &&
          ds.labels[1] == 0, "truncate(2)");
    dc_dataset_free(&ds);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0, "free zeroes the dataset");
    dc_dataset_free(&ds); /* twice is fine */

    /* Test split: dotted name, gzip, no label file -> labels NULL. "t10k" is an alias. */
    CHECK_OK(dc_dataset_load(P("mnist"), "test", 1, &ds));
    CHECK(ds.n == 2 && ds.h == 5 && ds.w == 6 && ds.labels == NULL, "test split %zu %dx%d",
          ds.n, ds.h, ds.w);
    CHECK(ds.images && ds.images[1] == te[5], "transposed test split");
    dc_dataset_free(&ds);
    CHECK_OK(dc_dataset_load(P("mnist"), "t10k", 0, &ds));
    CHECK(ds.n == 2 && ds.h == 6 && ds.w == 5, "t10k alias");
    dc_dataset_free(&ds);

    /* Label count mismatch. */
    CHECK_OK(dc_idx_write_labels(P("mnist/t10k-labels-idx1-ubyte"), tel, 3, 0));
    memset(&ds, 0x5A, sizeof ds);
    CHECK_FAIL(dc_dataset_load(P("mnist"), "test", 0, &ds), DC_ERR_FORMAT,
               P("mnist/t10k-labels-idx1-ubyte"), "mismatch");
    CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0, "failed load leaves ds zeroed");
    /* A bad file inside the directory is reported by its own name. */
    {
        unsigned char junk[20] = {0, 0, 8, 3};
        put_bytes(P("mnist/t10k-images.idx3-ubyte"), junk, sizeof junk);
        CHECK_FAIL(dc_dataset_load(P("mnist"), "test", 0, &ds), DC_ERR_FORMAT,
                   P("mnist/t10k-images.idx3-ubyte"), "zero dimension");
    }

    /* Missing directory, directory without the files, a file instead of a directory. */
    CHECK_FAIL(dc_dataset_load(P("nowhere"), "train", 0, &ds), DC_ERR_IO, P("nowhere"),
               "tools/fetch-mnist");
    mkdir_in("emptydir");
    CHECK_FAIL(dc_dataset_load(P("emptydir"), "train", 0, &ds), DC_ERR_IO, P("emptydir"),
               "tools/fetch-mnist");
    CHECK_FAIL(dc_dataset_load(P("rt-t"), "train", 0, &ds), DC_ERR_IO, P("rt-t"),
               "not a directory");
    CHECK_FAIL(dc_dataset_load(P("mnist"), "valid", 0, &ds), DC_ERR_INVALID_ARG, "valid",
               "split");

    /* EMNIST naming: one dataset per directory is found by suffix; test split says "test". */
    mkdir_in("emnist");
    CHECK_OK(dc_idx_write_images(P("emnist/emnist-digits-train-images-idx3-ubyte.gz"), tr, 4, 6,
                                 5, 1));
    CHECK_OK(dc_idx_write_images(P("emnist/emnist-digits-train-images-idx3-ubyte"), tr, 4, 6,
                                 5, 0));
    CHECK_OK(dc_idx_write_labels(P("emnist/emnist-digits-train-labels-idx1-ubyte.gz"), trl, 4, 1));
    CHECK_OK(dc_idx_write_images(P("emnist/emnist-digits-test-images-idx3-ubyte.gz"), te, 2, 6,
                                 5, 1));
    CHECK_OK(dc_dataset_load(P("emnist"), "train", 1, &ds));
    CHECK(ds.n == 4 && ds.h == 5 && ds.w == 6 && ds.labels && ds.labels[3] == 1, "emnist train");
    dc_dataset_free(&ds);
    CHECK_OK(dc_dataset_load(P("emnist"), "test", 1, &ds));
    CHECK(ds.n == 2 && ds.labels == NULL, "emnist test");
    dc_dataset_free(&ds);
    CHECK_OK(dc_idx_write_images(P("emnist/emnist-letters-train-images-idx3-ubyte.gz"), tr, 4, 6,
                                 5, 1));
    CHECK_FAIL(dc_dataset_load(P("emnist"), "train", 1, &ds), DC_ERR_INVALID_ARG, P("emnist"),
               "ambiguous");
}

/* dc_dataset_open: a raw image file stays on disk and reads back as dc_dataset_load's bytes; a
 * gzip or transposed one is loaded; a file that shrinks while open fails by name. */
static void test_dataset_open(void)
{
    enum { N = 7, H = 4, W = 3, PL = H * W };
    uint8_t tr[N * PL], lab[N], got[N * PL];
    random_bytes(tr, sizeof tr);
    random_bytes(lab, sizeof lab);
    mkdir_in("kept");
    CHECK_OK(dc_idx_write_images(P("kept/train-images-idx3-ubyte"), tr, N, H, W, 0));
    CHECK_OK(dc_idx_write_labels(P("kept/train-labels-idx1-ubyte"), lab, N, 0));
    CHECK_OK(dc_idx_write_images(P("kept/t10k-images-idx3-ubyte.gz"), tr, N, H, W, 1));

    dc_dataset ds, mem;
    CHECK_OK(dc_dataset_open(P("kept"), "train", 0, &ds));
    CHECK_OK(dc_dataset_load(P("kept"), "train", 0, &mem));
    CHECK(ds.file && !ds.images && ds.n == N && ds.h == H && ds.w == W, "raw split kept in its file");
    CHECK(ds.labels && memcmp(ds.labels, lab, N) == 0, "labels are read into memory");
    memset(got, 0, sizeof got);
    CHECK_OK(dc_dataset_read(&ds, 0, N, got));
    CHECK(memcmp(got, tr, sizeof tr) == 0, "every sample from the file");
    CHECK_OK(dc_dataset_read(&ds, 5, 2, got));
    CHECK(memcmp(got, tr + 5 * PL, 2 * PL) == 0, "samples 5 and 6 from the file");
    CHECK_OK(dc_dataset_read(&mem, 3, 1, got));
    CHECK(memcmp(got, tr + 3 * PL, PL) == 0, "sample 3 from memory");
    CHECK(dc_dataset_mean(&ds) == dc_dataset_mean(&mem) && dc_dataset_mean(&ds) > 0,
          "mean from the file %f vs memory %f", dc_dataset_mean(&ds), dc_dataset_mean(&mem));
    CHECK(dc_dataset_read(&ds, 6, 2, got) == DC_ERR_INVALID_ARG, "samples past the end");
    dc_clear_error();
    dc_dataset_truncate(&ds, 3);
    CHECK(ds.n == 3 && ds.file, "truncate keeps the file");
    CHECK(dc_dataset_read(&ds, 3, 1, got) == DC_ERR_INVALID_ARG, "sample 3 after truncate(3)");
    dc_clear_error();
    dc_dataset_free(&mem);

    /* The file shrinks under us: the read says which file and that it changed. */
    CHECK(truncate(P("kept/train-images-idx3-ubyte"), 16 + 2 * PL) == 0, "truncate the file");
    CHECK_FAIL(dc_dataset_read(&ds, 2, 1, got), DC_ERR_IO, P("kept/train-images-idx3-ubyte"), "changed");
    CHECK_OK(dc_dataset_read(&ds, 1, 1, got));
    dc_dataset_free(&ds);
    CHECK(!ds.file && !ds.images && ds.n == 0, "free zeroes a kept dataset");
    /* ... and a file that is short when opened is refused as dc_dataset_load refuses it. */
    CHECK_FAIL(dc_dataset_open(P("kept"), "train", 0, &ds), DC_ERR_FORMAT,
               P("kept/train-images-idx3-ubyte"), "truncated");
    CHECK(!ds.file && !ds.images && !ds.labels && ds.n == 0, "failed open leaves ds zeroed");

    /* gzip and transposed sets are loaded into memory. */
    CHECK_OK(dc_dataset_open(P("kept"), "test", 0, &ds));
    CHECK(!ds.file && ds.images && memcmp(ds.images, tr, sizeof tr) == 0, "gzip split in memory");
    dc_dataset_free(&ds);
    CHECK_OK(dc_idx_write_images(P("kept/train-images-idx3-ubyte"), tr, N, H, W, 0));
    CHECK_OK(dc_dataset_open(P("kept"), "train", 1, &ds));
    CHECK(!ds.file && ds.images && ds.h == W && ds.w == H && ds.images[1] == tr[W],
          "transposed split in memory");
    dc_dataset_free(&ds);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int main(void)
{
    rng = test_seed();
    verbose = getenv("DAECL_TEST_VERBOSE") && *getenv("DAECL_TEST_VERBOSE") == '1';
    const char *base = getenv("DAECL_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    if (mkdir(base, 0755) != 0 && errno != EEXIST) { perror(base); return 2; }
    snprintf(tmpdir, sizeof tmpdir, "%s/idx-XXXXXX", base);
    if (!mkdtemp(tmpdir)) { perror(tmpdir); return 2; }

    test_round_trip(0);
    test_round_trip(1);
    test_bigger_gzip();
    test_malformed_images();
    test_malformed_labels();
    test_write_errors();
    test_special_files();
    test_dataset_load();
    test_dataset_open();

    if (!test_failed_) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else fprintf(stderr, "test files kept in %s\n", tmpdir);
    TEST_MAIN_END();
}
