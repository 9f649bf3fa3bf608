/* Tests for tools/visualize_plot.c: curves and compare plots from metrics.csv files, read back
 * with dc_png_read; malformed CSVs give one-line errors naming the file.
 * Set DAECL_TEST_KEEP=1 to keep the PNGs (their directory is printed) for a look. */
#include "../tools/visualize_plot.h"
#include "daecl/image.h"
#include "test.h"

#include <cairo.h>
#ifdef DC_HAVE_FONTCONFIG
#include <fontconfig/fontconfig.h>
#endif
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[1024];

static void mkdir_p(const char *path)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0777);
        *p = '/';
    }
    mkdir(buf, 0777);
}

static const char *tpath(const char *name)
{
    static char buf[8][1400];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[2400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* A plausible metrics.csv: loss falling, PSNR rising, validation every epoch except some. */
static void write_metrics(const char *path, int epochs, double psnr_end, int shuffled, int gaps)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (shuffled)
        fprintf(f, "val_psnr,epoch,seconds,val_loss,train_loss,val_ssim,val_acc,img_per_s\n");
    else
        fprintf(f, "epoch,train_loss,val_loss,val_psnr,val_ssim,val_acc,seconds,img_per_s\n");
    for (int e = 1; e <= epochs; e++) {
        double t = (double)e / epochs;
        double tl = 0.097 + 0.09 / (e * 1.2), vl = 0.099 + 0.08 / (e * 1.3);
        double ps = psnr_end - 3.2 / (e * 0.9);
        char vls[32] = "", pss[32] = "";
        if (!(gaps && e % 4 == 2)) {
            snprintf(vls, sizeof vls, "%.5f", vl);
            snprintf(pss, sizeof pss, "%.3f", ps);
        }
        if (shuffled)
            fprintf(f, "%s,%d,%.1f,%s,%.5f,%.3f,,%.0f\n", pss, e, 12.0 + t, vls, tl, 0.8, 1500.0);
        else
            fprintf(f, "%d,%.5f,%s,%s,%.3f,,%.1f,%.0f\n", e, tl, vls, pss, 0.8, 12.0 + t, 1500.0);
    }
    fclose(f);
}

/* Read a plot back and check its size and that it holds a real drawing. */
static void check_plot(const char *png, int want_w, int want_h)
{
    dc_image img;
    dc_status s = dc_png_read(png, &img);
    CHECK(s == DC_OK, "%s: %s", png, dc_error_detail());
    if (s != DC_OK) return;
    CHECK(img.w == want_w && img.h == want_h, "%s: %dx%d, want %dx%d", png, img.w, img.h, want_w,
          want_h);
    int hist[256] = {0};
    size_t n = (size_t)img.w * img.h, nonwhite = 0;
    for (size_t i = 0; i < n; i++) {
        int v = (int)(img.px[i] * 255.0f + 0.5f);
        hist[v]++;
        nonwhite += v < 250;
    }
    int levels = 0;
    for (int v = 0; v < 256; v++) levels += hist[v] > 0;
    CHECK(levels >= 16, "%s: only %d gray levels", png, levels);
    /* Text, axes and curves, on a mostly white background. */
    CHECK(nonwhite > n / 100 && nonwhite < n / 2, "%s: %zu of %zu pixels not white", png, nonwhite, n);
    /* Some dark pixels (text) in the title band and in the plot area. */
    int dark_title = 0, dark_body = 0;
    for (int y = 0; y < 60; y++)
        for (int x = 0; x < img.w; x++) dark_title += img.px[(size_t)y * img.w + x] < 0.3f;
    for (int y = img.h / 3; y < 2 * img.h / 3; y++)
        for (int x = 0; x < img.w; x++) dark_body += img.px[(size_t)y * img.w + x] < 0.7f;
    CHECK(dark_title > 100, "%s: no title text (%d dark pixels)", png, dark_title);
    CHECK(dark_body > 500, "%s: empty plot area (%d pixels)", png, dark_body);
    dc_image_free(&img);
}

#define CHECK_PLOT_ERR(call, path, what)                                                        \
    do {                                                                                        \
        char e_[512] = "";                                                                      \
        int rc_ = (call(e_, sizeof e_));                                                        \
        CHECK(rc_ != 0, "%s should fail", #call);                                               \
        CHECK(strstr(e_, (path)) != NULL, "error '%s' should name %s", e_, (path));             \
        CHECK(strstr(e_, (what)) != NULL, "error '%s' should say '%s'", e_, (what));            \
        CHECK(strchr(e_, '\n') == NULL, "error '%s' should be one line", e_);                   \
        printf("refused as expected: %s\n", e_);                                                \
    } while (0)

static const char *g_csv, *g_out;
static int curves_call(char *e, size_t n) { return dc_plot_curves(g_csv, g_out, e, n); }

static void test_curves(void)
{
    char err[512] = "";
    char rundir[1200];
    snprintf(rundir, sizeof rundir, "%s/demo", tmpdir);
    mkdir_p(rundir);
    char csv[1400];
    snprintf(csv, sizeof csv, "%s", tpath("demo/metrics.csv"));
    write_metrics(csv, 20, 19.8, 0, 1);
    const char *out = tpath("curves.png");
    int rc = dc_plot_curves(csv, out, err, sizeof err);
    CHECK(rc == 0, "dc_plot_curves: %s", err);
    check_plot(out, 1280, 560);
    CHECK(count_temp_files(tmpdir) == 0, "temp file left");

    /* A long run with validation missing on some epochs. */
    char longdir[1200];
    snprintf(longdir, sizeof longdir, "%s/long-run", tmpdir);
    mkdir_p(longdir);
    write_metrics(tpath("long-run/metrics.csv"), 150, 19.9, 0, 1);
    rc = dc_plot_curves(tpath("long-run/metrics.csv"), tpath("long.png"), err, sizeof err);
    CHECK(rc == 0, "long run: %s", err);
    check_plot(tpath("long.png"), 1280, 560);

    /* Columns in another order, overwrite the same output. */
    write_metrics(csv, 7, 18.9, 1, 0);
    rc = dc_plot_curves(csv, out, err, sizeof err);
    CHECK(rc == 0, "shuffled columns: %s", err);
    check_plot(out, 1280, 560);

    /* One epoch, no validation at all: still a plot (PSNR panel says there is no data). */
    const char *one = tpath("one.csv");
    write_text(one, "epoch,train_loss,val_loss,val_psnr\n1,0.2,,\n");
    rc = dc_plot_curves(one, tpath("one.png"), err, sizeof err);
    CHECK(rc == 0, "single epoch: %s", err);
    if (rc == 0) check_plot(tpath("one.png"), 1280, 560);

    /* CRLF, blank lines, a resumed run repeating epochs 3-4, a last line still being written. */
    const char *odd = tpath("odd.csv");
    write_text(odd, "epoch,train_loss,val_loss,val_psnr\r\n1,0.3,0.29,15\r\n\r\n2,0.2,0.19,16\r\n"
                    "3,0.9,0.9,2\r\n4,0.9,0.9,2\r\n3,0.15,0.16,17\r\n4,0.13,0.14,17.5\r\n5,0.12");
    rc = dc_plot_curves(odd, tpath("odd.png"), err, sizeof err);
    CHECK(rc == 0, "odd CSV: %s", err);
    if (rc == 0) check_plot(tpath("odd.png"), 1280, 560);

    /* Errors, each naming the file. */
    g_out = tpath("bad.png");
    const char *p = tpath("notnum.csv");
    write_text(p, "epoch,train_loss,val_loss\n1,0.2,0.3\n2,abc,0.2\n3,0.1,0.1\n");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "not a number");
    CHECK_PLOT_ERR(curves_call, p, ":3:");

    p = tpath("fields.csv");
    write_text(p, "epoch,train_loss,val_loss\n1,0.2,0.3\n2,0.2\n3,0.1,0.1\n");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "fields");

    p = tpath("noepoch.csv");
    write_text(p, "step,loss\n1,0.2\n");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "epoch");

    p = tpath("header-only.csv");
    write_text(p, "epoch,train_loss,val_loss,val_psnr\n");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "no epochs");

    p = tpath("empty.csv");
    write_text(p, "");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "empty");

    p = tpath("novalues.csv");
    write_text(p, "epoch,seconds\n1,3\n2,3\n");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "no train_loss");

    p = tpath("binary.csv");
    FILE *f = fopen(p, "wb");
    fwrite("\x89PNG\r\n\x1a\n\0\0\0", 1, 11, f);
    fclose(f);
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "");

    p = tpath("missing.csv");
    g_csv = p;
    CHECK_PLOT_ERR(curves_call, p, "cannot open");

    /* Unwritable output: missing directory; nothing is left behind. */
    g_csv = csv;
    g_out = tpath("no/such/dir/curves.png");
    CHECK_PLOT_ERR(curves_call, g_out, "temporary");
    struct stat st;
    CHECK(stat(tpath("bad.png"), &st) != 0, "bad.png should not exist after failures");
    CHECK(count_temp_files(tmpdir) == 0, "temp file left");
}

static char **g_runs;
static int g_nruns;
static int compare_call(char *e, size_t n) { return dc_plot_compare(g_nruns, g_runs, g_out, e, n); }

static void test_compare(void)
{
    static const char *names[] = {"adam-1e-3", "adadelta", "unet", "classic-64ch"};
    static const double best[] = {19.76, 19.15, 19.92, 18.89};
    static const int epochs[] = {10, 5, 12, 8};
    char *runs[5];
    char bufs[5][1200];
    for (int i = 0; i < 4; i++) {
        snprintf(bufs[i], sizeof bufs[i], "%s/runs/%s", tmpdir, names[i]);
        mkdir_p(bufs[i]);
        char csv[1300];
        snprintf(csv, sizeof csv, "%.1200s/metrics.csv", bufs[i]);
        write_metrics(csv, epochs[i], best[i], i == 2, i == 1);
        runs[i] = bufs[i];
    }
    /* A trailing slash and a CSV path given directly both work. */
    snprintf(bufs[1] + strlen(bufs[1]), sizeof bufs[1] - strlen(bufs[1]), "/");
    snprintf(bufs[3] + strlen(bufs[3]), sizeof bufs[3] - strlen(bufs[3]), "/metrics.csv");

    char err[512] = "";
    const char *out = tpath("compare.png");
    int rc = dc_plot_compare(4, runs, out, err, sizeof err);
    CHECK(rc == 0, "dc_plot_compare: %s", err);
    check_plot(out, 1280, 640);
    rc = dc_plot_compare(1, runs, tpath("compare1.png"), err, sizeof err);
    CHECK(rc == 0, "one run: %s", err);
    check_plot(tpath("compare1.png"), 1280, 640);

    /* A run directory without metrics.csv, and one without any PSNR. */
    snprintf(bufs[4], sizeof bufs[4], "%s/runs/empty-run", tmpdir);
    mkdir_p(bufs[4]);
    runs[4] = bufs[4];
    g_runs = runs, g_nruns = 5, g_out = tpath("compare-bad.png");
    CHECK_PLOT_ERR(compare_call, bufs[4], "metrics.csv");
    char csv[1300];
    snprintf(csv, sizeof csv, "%.1200s/metrics.csv", bufs[4]);
    write_text(csv, "epoch,train_loss,val_psnr\n1,0.2,\n2,0.1,\n");
    CHECK_PLOT_ERR(compare_call, bufs[4], "no val_psnr");
    g_nruns = 0;
    CHECK_PLOT_ERR(compare_call, "", "at least one run");
}

int main(void)
{
    const char *base = getenv("DAECL_TEST_TMP");
    if (base && *base) {
        mkdir_p(base);
        snprintf(tmpdir, sizeof tmpdir, "%s/plot.%ld", base, (long)getpid());
        mkdir_p(tmpdir);
    } else {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/daecl-plot-XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    test_curves();
    test_compare();
    const char *keep = getenv("DAECL_TEST_KEEP");
    if (keep && *keep && strcmp(keep, "0"))
        printf("plots kept in %s\n", tmpdir);
    else if (!test_failed_)
        rm_tree(tmpdir);
    /* Release cairo's and fontconfig's caches so LeakSanitizer sees only real leaks. */
    cairo_debug_reset_static_data();
#ifdef DC_HAVE_FONTCONFIG
    FcFini();
#endif
    TEST_MAIN_END();
}
