/* IDX reader and writer (MNIST format), raw or gzip, and split loading from a directory.
 *
 * Both raw and gzip files go through zlib's gzread: it recognises gzip by the magic bytes and
 * passes other files through unchanged (gzdirect() tells which). For raw files the size on disk
 * is known, so truncation and trailing bytes are caught before the payload is allocated; for
 * gzip the payload buffer grows as data arrives, so a corrupt header cannot make us allocate
 * gigabytes for a file that holds a few bytes. */
#include "daecl/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define GZ_FIRST_ALLOC ((size_t)64 << 20) /* first payload allocation for gzip files */
#define READ_CHUNK ((size_t)1 << 30)       /* gzread takes an unsigned and returns an int */
/* The MNIST download tool: its installed name, and its place in a source tree. */
#define FETCH_MNIST "dae-cl-fetch-mnist (tools/fetch-mnist in a source tree)"

/* ---------------------------------------------------------------------------------------- */
/* Input: one open IDX file. */

typedef struct idx_in {
    const char *path;
    gzFile gz;
    long long file_size; /* bytes on disk; -1 when not a regular file */
    int cut;             /* the gzip stream ended before its end-of-stream marker */
} idx_in;

static dc_status in_open(idx_in *r, const char *path)
{
    struct stat st;
    memset(r, 0, sizeof *r);
    r->path = path;
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "IDX reader: empty file name");
    if (stat(path, &st) != 0)
        return dc_fail(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return dc_fail(DC_ERR_IO, "%s: is a directory, expected an IDX file", path);
    r->file_size = S_ISREG(st.st_mode) ? (long long)st.st_size : -1;
    r->gz = gzopen(path, "rb");
    if (!r->gz)
        return dc_fail(DC_ERR_IO, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(r->gz, 1u << 18);
    return DC_OK;
}

static void in_close(idx_in *r)
{
    if (r->gz) gzclose_r(r->gz);
    r->gz = NULL;
}

/* Turn a zlib stream error into a status with a detail. */
static dc_status in_error(idx_in *r)
{
    int err = Z_OK;
    const char *msg = gzerror(r->gz, &err);
    if (err == Z_ERRNO) return dc_fail(DC_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
    if (err == Z_MEM_ERROR) return dc_fail(DC_ERR_NOMEM, "%s: out of memory in zlib", r->path);
    /* zlib prefixes its message with the path; we add our own. */
    size_t plen = strlen(r->path);
    if (msg && strncmp(msg, r->path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
        msg += plen + 2;
    return dc_fail(DC_ERR_FORMAT, "%s: corrupt gzip stream: %s", r->path,
                   msg && *msg ? msg : "unknown zlib error");
}

/* Read up to len bytes; *got < len means end of file (r->cut set if the gzip stream was cut
 * short). Stream corruption and I/O errors are returned as failures. */
static dc_status in_read(idx_in *r, void *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > READ_CHUNK) want = READ_CHUNK;
        int k = gzread(r->gz, (char *)buf + *got, (unsigned)want);
        if (k < 0) return in_error(r);
        if (k == 0) break;
        *got += (size_t)k;
    }
    if (*got < len) {
        int err = Z_OK;
        gzerror(r->gz, &err);
        if (err == Z_BUF_ERROR) r->cut = 1; /* "unexpected end of file" inside a gzip member */
        else if (err != Z_OK) return in_error(r);
    }
    return DC_OK;
}

static const char *type_name(unsigned t)
{
    switch (t) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "not an IDX type";
    }
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read and validate the header of an image (ndims 3) or label (ndims 1) file. */
static dc_status read_header(idx_in *r, int ndims, uint32_t dims[3])
{
    unsigned char b[16];
    size_t got;
    const uint32_t want_magic = (uint32_t)IDX_TYPE_UBYTE << 8 | (uint32_t)ndims;
    const char *what = ndims == 3 ? "an image file (N x H x W)" : "a label file (N)";

    DC_TRY(in_read(r, b, 4, &got));
    if (got < 4)
        return dc_fail(DC_ERR_FORMAT, "%s: truncated header: file holds only %zu bytes%s",
                       r->path, got, r->cut ? " (gzip stream ends early)" : "");
    if (b[0] != 0 || b[1] != 0)
        return dc_fail(DC_ERR_FORMAT,
                       "%s: bad magic 0x%02x%02x%02x%02x: not an IDX file (expected 0x%08x)",
                       r->path, b[0], b[1], b[2], b[3], (unsigned)want_magic);
    if (b[2] != IDX_TYPE_UBYTE)
        return dc_fail(DC_ERR_FORMAT,
                       "%s: unsupported element type 0x%02x (%s): only 0x08 unsigned byte "
                       "is supported", r->path, b[2], type_name(b[2]));
    if (b[3] != ndims) {
        if (ndims == 3 && b[3] == 1)
            return dc_fail(DC_ERR_FORMAT, "%s: wrong dimension count 1: this is a label file, "
                           "expected %s", r->path, what);
        if (ndims == 3 && b[3] == 2)
            return dc_fail(DC_ERR_FORMAT, "%s: wrong dimension count 2 (N x D flat vectors): "
                           "expected %s", r->path, what);
        if (ndims == 1 && b[3] == 3)
            return dc_fail(DC_ERR_FORMAT, "%s: wrong dimension count 3: this is an image file, "
                           "expected %s", r->path, what);
        return dc_fail(DC_ERR_FORMAT, "%s: wrong dimension count %d: expected %d, %s",
                       r->path, b[3], ndims, what);
    }
    DC_TRY(in_read(r, b + 4, 4 * (size_t)ndims, &got));
    if (got < 4 * (size_t)ndims)
        return dc_fail(DC_ERR_FORMAT, "%s: truncated header: %zu of %d header bytes%s",
                       r->path, 4 + got, 4 + 4 * ndims,
                       r->cut ? " (gzip stream ends early)" : "");
    for (int i = 0; i < 3; i++) dims[i] = i < ndims ? be32(b + 4 + 4 * i) : 1;

    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0) {
        if (ndims == 3)
            return dc_fail(DC_ERR_FORMAT, "%s: zero dimension in header: %u images of %ux%u",
                           r->path, dims[0], dims[1], dims[2]);
        return dc_fail(DC_ERR_FORMAT, "%s: zero dimension in header: 0 labels", r->path);
    }
    /* Division keeps the check itself free of overflow. */
    if (dims[1] > (uint32_t)INT_MAX || dims[2] > (uint32_t)INT_MAX ||
        (size_t)dims[0] > DC_IDX_MAX_BYTES / dims[1] / dims[2] ||
        (size_t)dims[0] * dims[1] * dims[2] > DC_IDX_MAX_BYTES) {
        if (ndims == 3)
            return dc_fail(DC_ERR_FORMAT, "%s: too large: header says %u images of %ux%u, over "
                           "the %zu-byte limit", r->path, dims[0], dims[1], dims[2],
                           DC_IDX_MAX_BYTES);
        return dc_fail(DC_ERR_FORMAT, "%s: too large: header says %u labels, over the "
                       "%zu-byte limit", r->path, dims[0], DC_IDX_MAX_BYTES);
    }
    return DC_OK;
}

/* "header says 3 images of 5x7" / "header says 3 labels" */
static void describe(char *s, size_t cap, int ndims, const uint32_t dims[3])
{
    if (ndims == 3) snprintf(s, cap, "%u images of %ux%u", dims[0], dims[1], dims[2]);
    else snprintf(s, cap, "%u labels", dims[0]);
}

/* Read the whole IDX file (header + payload) into a malloc'd buffer of n*h*w bytes. */
static dc_status read_idx(const char *path, int ndims, uint32_t dims[3], uint8_t **out)
{
    idx_in r;
    uint8_t *buf = NULL;
    char desc[96];
    dc_status s;

    *out = NULL;
    DC_TRY(in_open(&r, path));
    s = read_header(&r, ndims, dims);
    if (s != DC_OK) goto done;
    describe(desc, sizeof desc, ndims, dims);

    const size_t header = 4 + 4 * (size_t)ndims;
    const size_t expected = (size_t)dims[0] * dims[1] * dims[2];
    const int direct = gzdirect(r.gz);

    /* Raw file: the size on disk settles truncation and trailing bytes up front. */
    if (direct && r.file_size >= 0) {
        size_t held = (size_t)r.file_size > header ? (size_t)r.file_size - header : 0;
        if (held < expected) {
            s = dc_fail(DC_ERR_FORMAT, "%s: truncated: header says %s, file holds %zu bytes of "
                        "data (expected %zu)", path, desc, held, expected);
            goto done;
        }
        if (held > expected) {
            s = dc_fail(DC_ERR_FORMAT, "%s: trailing garbage: %zu bytes after the %zu bytes of "
                        "data (header says %s)", path, held - expected, expected, desc);
            goto done;
        }
    }

    size_t cap = direct || expected < GZ_FIRST_ALLOC ? expected : GZ_FIRST_ALLOC;
    size_t have = 0;
    buf = malloc(cap);
    if (!buf) {
        s = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes for %s", path, cap, desc);
        goto done;
    }
    for (;;) {
        size_t got;
        s = in_read(&r, buf + have, cap - have, &got);
        if (s != DC_OK) goto done;
        have += got;
        if (have < cap || cap == expected) break;
        size_t ncap = cap > expected / 2 ? expected : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            s = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes for %s", path, ncap, desc);
            goto done;
        }
        buf = nb;
        cap = ncap;
    }
    if (have < expected) {
        s = dc_fail(DC_ERR_FORMAT, "%s: truncated: header says %s, file holds %zu bytes of data "
                    "(expected %zu)%s", path, desc, have, expected,
                    r.cut ? "; gzip stream ends early" : "");
        goto done;
    }
    /* Anything after the payload (also reads through to the gzip CRC check). */
    size_t extra = 0;
    for (;;) {
        unsigned char scratch[16384];
        size_t got;
        s = in_read(&r, scratch, sizeof scratch, &got);
        if (s != DC_OK) goto done;
        extra += got;
        if (got < sizeof scratch) break;
    }
    if (r.cut) {
        s = dc_fail(DC_ERR_FORMAT, "%s: corrupt gzip stream: unexpected end of file after the "
                    "data", path);
        goto done;
    }
    if (extra) {
        s = dc_fail(DC_ERR_FORMAT, "%s: trailing garbage: %zu bytes after the %zu bytes of data "
                    "(header says %s)", path, extra, expected, desc);
        goto done;
    }
    *out = buf;
    buf = NULL;
    s = DC_OK;
done:
    free(buf);
    in_close(&r);
    return s;
}

dc_status dc_idx_read_images(const char *path, int transpose, uint8_t **out, size_t *n, int *h,
                             int *w)
{
    uint32_t dims[3];
    uint8_t *img;

    if (!out || !n || !h || !w)
        return dc_fail(DC_ERR_INVALID_ARG, "dc_idx_read_images: NULL output argument");
    *out = NULL;
    *n = 0;
    *h = *w = 0;
    DC_TRY(read_idx(path, 3, dims, &img));

    const size_t rows = dims[1], cols = dims[2], plane = rows * cols;
    if (transpose && plane > 1) {
        uint8_t *tmp = malloc(plane);
        if (!tmp) {
            free(img);
            return dc_fail(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes to transpose", path,
                           plane);
        }
        for (size_t i = 0; i < dims[0]; i++) {
            uint8_t *p = img + i * plane;
            for (size_t y = 0; y < rows; y++)
                for (size_t x = 0; x < cols; x++) tmp[x * rows + y] = p[y * cols + x];
            memcpy(p, tmp, plane);
        }
        free(tmp);
    }
    *out = img;
    *n = dims[0];
    *h = (int)(transpose ? cols : rows);
    *w = (int)(transpose ? rows : cols);
    return DC_OK;
}

dc_status dc_idx_read_labels(const char *path, uint8_t **out, size_t *n)
{
    uint32_t dims[3];
    if (!out || !n) return dc_fail(DC_ERR_INVALID_ARG, "dc_idx_read_labels: NULL output argument");
    *out = NULL;
    *n = 0;
    DC_TRY(read_idx(path, 1, dims, out));
    *n = dims[0];
    return DC_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Output: write to a temporary file beside the target, then rename. */

static dc_status write_all_fd(int fd, const char *path, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        ssize_t k = write(fd, c, len > READ_CHUNK ? READ_CHUNK : len);
        if (k < 0) {
            if (errno == EINTR) continue;
            return dc_fail(DC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        c += k;
        len -= (size_t)k;
    }
    return DC_OK;
}

static dc_status write_all_gz(gzFile gz, const char *path, const void *p, size_t len)
{
    const char *c = p;
    while (len) {
        size_t want = len > READ_CHUNK ? READ_CHUNK : len;
        int k = gzwrite(gz, c, (unsigned)want);
        if (k <= 0) {
            int err = Z_OK;
            const char *msg = gzerror(gz, &err);
            return dc_fail(DC_ERR_IO, "%s: write failed: %s", path,
                           err == Z_ERRNO ? strerror(errno) : msg);
        }
        c += k;
        len -= (size_t)k;
    }
    return DC_OK;
}

static dc_status write_idx(const char *path, const unsigned char *hdr, size_t hdrlen,
                           const uint8_t *data, size_t len, int gzip)
{
    dc_status s = DC_OK;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);

    int fd = mkstemp(tmp);
    if (fd < 0) {
        s = dc_fail(DC_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(tmp);
        return s;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; data files are meant to be shared */

    if (gzip) {
        gzFile gz = gzdopen(fd, "wb6");
        if (!gz) {
            close(fd);
            s = dc_fail(DC_ERR_NOMEM, "%s: cannot start gzip stream", path);
        } else {
            s = write_all_gz(gz, path, hdr, hdrlen);
            if (s == DC_OK) s = write_all_gz(gz, path, data, len);
            int zc = gzclose_w(gz); /* closes fd */
            if (s == DC_OK && zc != Z_OK)
                s = dc_fail(DC_ERR_IO, "%s: closing gzip stream failed (zlib error %d)", path, zc);
        }
    } else {
        s = write_all_fd(fd, path, hdr, hdrlen);
        if (s == DC_OK) s = write_all_fd(fd, path, data, len);
        if (close(fd) != 0 && s == DC_OK)
            s = dc_fail(DC_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    }
    if (s == DC_OK && rename(tmp, path) != 0)
        s = dc_fail(DC_ERR_IO, "%s: cannot rename temporary file into place: %s", path,
                    strerror(errno));
    if (s != DC_OK) unlink(tmp);
    free(tmp);
    return s;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

dc_status dc_idx_write_images(const char *path, const uint8_t *img, size_t n, int h, int w,
                              int gzip)
{
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "IDX writer: empty file name");
    if (n == 0 || h <= 0 || w <= 0 || n > UINT32_MAX ||
        n > DC_IDX_MAX_BYTES / (size_t)h / (size_t)w)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write %zu images of %dx%d", path, n, h, w);
    if (!img) return dc_fail(DC_ERR_INVALID_ARG, "%s: NULL image data", path);
    unsigned char hdr[16] = {0, 0, IDX_TYPE_UBYTE, 3};
    put_be32(hdr + 4, (uint32_t)n);
    put_be32(hdr + 8, (uint32_t)h);
    put_be32(hdr + 12, (uint32_t)w);
    return write_idx(path, hdr, sizeof hdr, img, n * (size_t)h * (size_t)w, gzip);
}

dc_status dc_idx_write_labels(const char *path, const uint8_t *lab, size_t n, int gzip)
{
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "IDX writer: empty file name");
    if (n == 0 || n > DC_IDX_MAX_BYTES || n > UINT32_MAX)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: cannot write %zu labels", path, n);
    if (!lab) return dc_fail(DC_ERR_INVALID_ARG, "%s: NULL label data", path);
    unsigned char hdr[8] = {0, 0, IDX_TYPE_UBYTE, 1};
    put_be32(hdr + 4, (uint32_t)n);
    return write_idx(path, hdr, sizeof hdr, lab, n, gzip);
}

/* ---------------------------------------------------------------------------------------- */
/* Datasets. */

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Find the file for (prefix, kind) in dir: "<prefix>-<kind>-<idx>-ubyte", the dotted
 * "<prefix>-<kind>.<idx>-ubyte", each raw then .gz; failing those, the one file whose name ends
 * in "-<word>-<kind>-<idx>-ubyte[.gz]" for word in words (EMNIST). *found is malloc'd, or NULL
 * when nothing matches. Two different candidates in the scan are an error. */
static dc_status find_split_file(const char *dir, const char *prefix, const char *const *words,
                                 const char *kind, const char *idx, char **found)
{
    char name[128];
    char *path = NULL;
    *found = NULL;
    for (int i = 0; i < 4; i++) {
        /* train-images-idx3-ubyte, train-images.idx3-ubyte, then the same with .gz */
        snprintf(name, sizeof name, "%s-%s%c%s-ubyte%s", prefix, kind, i & 1 ? '.' : '-', idx,
                 i & 2 ? ".gz" : "");
        if (asprintf(&path, "%s/%s", dir, name) < 0)
            return dc_fail(DC_ERR_NOMEM, "%s: out of memory", dir);
        if (is_file(path)) {
            *found = path;
            return DC_OK;
        }
        free(path);
        path = NULL;
    }

    DIR *d = opendir(dir);
    if (!d) return DC_OK; /* the caller already checked the directory; treat as no match */
    char *best = NULL; /* name of the match (raw preferred over .gz of the same name) */
    dc_status s = DC_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int match = 0;
        for (int w = 0; words[w] && !match; w++) {
            snprintf(name, sizeof name, "-%s-%s-%s-ubyte", words[w], kind, idx);
            match = ends_with(e->d_name, name);
            if (!match) {
                strncat(name, ".gz", sizeof name - strlen(name) - 1);
                match = ends_with(e->d_name, name);
            }
        }
        if (!match) continue;
        if (!best) {
            best = strdup(e->d_name);
            if (!best) { s = dc_fail(DC_ERR_NOMEM, "%s: out of memory", dir); break; }
            continue;
        }
        /* Same file raw and compressed: keep the raw one. */
        size_t lb = strlen(best), le = strlen(e->d_name);
        if (lb == le + 3 && strncmp(best, e->d_name, le) == 0) {
            free(best);
            best = strdup(e->d_name);
            if (!best) { s = dc_fail(DC_ERR_NOMEM, "%s: out of memory", dir); break; }
            continue;
        }
        if (le == lb + 3 && strncmp(best, e->d_name, lb) == 0) continue;
        s = dc_fail(DC_ERR_INVALID_ARG, "%s: ambiguous: both %s and %s look like %s %s files; "
                    "point --data at a directory holding one dataset", dir, best, e->d_name,
                    words[0], kind);
        break;
    }
    closedir(d);
    if (s == DC_OK && best) {
        if (asprintf(&path, "%s/%s", dir, best) < 0)
            s = dc_fail(DC_ERR_NOMEM, "%s: out of memory", dir);
        else
            *found = path;
    }
    free(best);
    return s;
}

dc_status dc_dataset_load(const char *dir, const char *split, int transpose, dc_dataset *out)
{
    static const char *const train_words[] = {"train", NULL};
    static const char *const test_words[] = {"test", "t10k", NULL};
    const char *prefix;
    const char *const *words;
    char *img_path = NULL, *lab_path = NULL;
    size_t nlab = 0;
    struct stat st;
    dc_status s;

    if (!out) return dc_fail(DC_ERR_INVALID_ARG, "dc_dataset_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) return dc_fail(DC_ERR_INVALID_ARG, "dc_dataset_load: empty directory name");
    if (split && strcmp(split, "train") == 0) {
        prefix = "train";
        words = train_words;
    } else if (split && (strcmp(split, "test") == 0 || strcmp(split, "t10k") == 0)) {
        prefix = "t10k";
        words = test_words;
    } else {
        return dc_fail(DC_ERR_INVALID_ARG, "unknown data split '%s' (expected train or test)",
                       split ? split : "(null)");
    }

    if (stat(dir, &st) != 0)
        return dc_fail(DC_ERR_IO, "%s: cannot open data directory: %s; run " FETCH_MNIST
                       " to download MNIST there", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return dc_fail(DC_ERR_IO, "%s: not a directory; --data takes a directory of IDX files "
                       "(run " FETCH_MNIST " to download MNIST)", dir);

    DC_TRY(find_split_file(dir, prefix, words, "images", "idx3", &img_path));
    if (!img_path)
        return dc_fail(DC_ERR_IO, "%s: no %s-images-idx3-ubyte[.gz] here; run " FETCH_MNIST
                       " to download MNIST (or point --data at another IDX dataset)", dir, prefix);
    s = find_split_file(dir, prefix, words, "labels", "idx1", &lab_path);
    if (s != DC_OK) goto fail;

    s = dc_idx_read_images(img_path, transpose, &out->images, &out->n, &out->h, &out->w);
    if (s != DC_OK) goto fail;
    if (lab_path) {
        s = dc_idx_read_labels(lab_path, &out->labels, &nlab);
        if (s != DC_OK) goto fail;
        if (nlab != out->n) {
            s = dc_fail(DC_ERR_FORMAT, "%s: label/image count mismatch: %zu labels, but %s holds "
                        "%zu images", lab_path, nlab, img_path, out->n);
            goto fail;
        }
    }
    free(img_path);
    free(lab_path);
    return DC_OK;
fail:
    dc_dataset_free(out);
    free(img_path);
    free(lab_path);
    return s;
}

void dc_dataset_truncate(dc_dataset *ds, size_t n)
{
    if (!ds || n == 0 || n >= ds->n) return;
    const size_t plane = (size_t)ds->h * (size_t)ds->w;
    ds->n = n;
    /* Give the memory back when we can; keeping the larger block is fine too. */
    uint8_t *p = realloc(ds->images, n * plane);
    if (p) ds->images = p;
    if (ds->labels) {
        p = realloc(ds->labels, n);
        if (p) ds->labels = p;
    }
}

void dc_dataset_free(dc_dataset *ds)
{
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

double dc_dataset_mean(const dc_dataset *ds)
{
    if (!ds || !ds->images || ds->n == 0 || ds->h <= 0 || ds->w <= 0) return 0.0;
    const size_t count = ds->n * (size_t)ds->h * (size_t)ds->w;
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) sum += ds->images[i];
    return (double)sum / ((double)count * 255.0);
}
