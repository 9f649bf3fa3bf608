/* IDX reader and writer (MNIST format), raw or gzip, and split loading from a directory.
 *
 * Only regular files are read (fileio.h). gzip is recognised by its magic bytes and inflated
 * here, member after member; anything else after the last member is refused. For raw files the
 * size on disk is known, so truncation and trailing bytes are caught before the payload is allocated; for
 * gzip the payload buffer grows as data arrives, so a corrupt header cannot make us allocate
 * gigabytes for a file that holds a few bytes. */
#include "daecl/dataset.h"

#include "daecl/fileio.h"

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
/* Input: one open IDX file, raw or gzip (one or more members), read through our own inflate
 * loop so that bytes after the last gzip member are seen and refused (zlib's gzread skips
 * them silently). */

#define IN_BUF ((size_t)1 << 18)

typedef struct idx_in {
    const char *path;
    int fd;
    long long file_size; /* bytes on disk */
    long long consumed;  /* bytes of the file handed to the caller or to inflate */
    int gzip;            /* the file starts with the gzip magic 1f 8b */
    z_stream z;
    int z_ready;         /* inflateInit2 done */
    int member_done;     /* the current gzip member ended; another may follow */
    int eof;             /* read() returned 0 */
    int cut;             /* the gzip stream ended before its end-of-stream marker */
    unsigned char *buf;  /* input buffer, IN_BUF bytes; z.next_in/avail_in index into it */
} idx_in;

/* Refill the input buffer behind the bytes not consumed yet. */
static dc_status in_fill(idx_in *r)
{
    if (r->eof) return DC_OK;
    if (r->z.avail_in && r->z.next_in != r->buf) memmove(r->buf, r->z.next_in, r->z.avail_in);
    r->z.next_in = r->buf;
    for (;;) {
        ssize_t k = read(r->fd, r->buf + r->z.avail_in, IN_BUF - r->z.avail_in);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return dc_fail(DC_ERR_IO, "%s: read failed: %s", r->path, strerror(errno));
        if (k == 0) r->eof = 1;
        r->z.avail_in += (uInt)k;
        return DC_OK;
    }
}

static void in_close(idx_in *r);

static dc_status in_open_fd(idx_in *r, const char *path)
{
    DC_TRY(dc_open_regular(path, "an IDX file", &r->fd, &r->file_size));
    r->buf = malloc(IN_BUF);
    if (!r->buf) return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
    r->z.next_in = r->buf;
    while (r->z.avail_in < 2 && !r->eof) DC_TRY(in_fill(r));
    r->gzip = r->z.avail_in >= 2 && r->buf[0] == 0x1f && r->buf[1] == 0x8b;
    if (r->gzip) {
        if (inflateInit2(&r->z, 15 + 16) != Z_OK) return dc_fail(DC_ERR_NOMEM, "%s: out of memory in zlib", path);
        r->z_ready = 1;
    }
    return DC_OK;
}

static dc_status in_open(idx_in *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->fd = -1;
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "IDX reader: empty file name");
    dc_status s = in_open_fd(r, path);
    if (s) in_close(r);
    return s;
}

static void in_close(idx_in *r)
{
    if (r->z_ready) inflateEnd(&r->z);
    if (r->fd >= 0) close(r->fd);
    free(r->buf);
    r->z_ready = 0;
    r->fd = -1;
    r->buf = NULL;
}

static dc_status in_read_raw(idx_in *r, unsigned char *out, size_t len, size_t *got)
{
    while (*got < len) {
        if (r->z.avail_in == 0) {
            if (r->eof) break;
            DC_TRY(in_fill(r));
            continue;
        }
        size_t k = len - *got < r->z.avail_in ? len - *got : r->z.avail_in;
        memcpy(out + *got, r->z.next_in, k);
        r->z.next_in += k;
        r->z.avail_in -= (uInt)k;
        r->consumed += (long long)k;
        *got += k;
    }
    return DC_OK;
}

static dc_status in_read_gzip(idx_in *r, unsigned char *out, size_t len, size_t *got)
{
    while (*got < len) {
        if (r->member_done) {
            /* Another member, the end of the file, or junk. */
            while (r->z.avail_in < 2 && !r->eof) DC_TRY(in_fill(r));
            if (r->z.avail_in == 0) break;
            if (r->z.avail_in < 2 || r->z.next_in[0] != 0x1f || r->z.next_in[1] != 0x8b) {
                long long junk = r->file_size - r->consumed;
                return dc_fail(DC_ERR_FORMAT, "%s: trailing garbage: %lld bytes after the end of the gzip stream",
                               r->path, junk > 0 ? junk : (long long)r->z.avail_in);
            }
            if (inflateReset(&r->z) != Z_OK) return dc_fail(DC_ERR_FORMAT, "%s: corrupt gzip stream", r->path);
            r->member_done = 0;
        }
        if (r->z.avail_in == 0) {
            if (r->eof) {
                r->cut = 1; /* inside a member */
                break;
            }
            DC_TRY(in_fill(r));
            continue;
        }
        size_t want = len - *got;
        uInt before_in = r->z.avail_in;
        r->z.next_out = out + *got;
        r->z.avail_out = (uInt)(want > (1u << 30) ? (1u << 30) : want);
        uInt before_out = r->z.avail_out;
        int zr = inflate(&r->z, Z_NO_FLUSH);
        *got += before_out - r->z.avail_out;
        r->consumed += before_in - r->z.avail_in;
        if (zr == Z_STREAM_END) r->member_done = 1;
        else if (zr == Z_MEM_ERROR) return dc_fail(DC_ERR_NOMEM, "%s: out of memory in zlib", r->path);
        else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR)
            return dc_fail(DC_ERR_FORMAT, "%s: corrupt gzip stream: %s", r->path,
                           r->z.msg ? r->z.msg : "invalid data");
    }
    return DC_OK;
}

/* Read up to len bytes; *got < len means end of file (r->cut set if the gzip stream was cut
 * short). Stream corruption, junk after the gzip stream and I/O errors are failures. */
static dc_status in_read(idx_in *r, void *buf, size_t len, size_t *got)
{
    *got = 0;
    return r->gzip ? in_read_gzip(r, buf, len, got) : in_read_raw(r, buf, len, got);
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

/* A raw file holds exactly header + expected bytes. */
static dc_status check_raw_size(const idx_in *r, size_t header, size_t expected, const char *desc)
{
    size_t held = (size_t)r->file_size > header ? (size_t)r->file_size - header : 0;
    if (held < expected)
        return dc_fail(DC_ERR_FORMAT, "%s: truncated: header says %s, file holds %zu bytes of "
                       "data (expected %zu)", r->path, desc, held, expected);
    if (held > expected)
        return dc_fail(DC_ERR_FORMAT, "%s: trailing garbage: %zu bytes after the %zu bytes of "
                       "data (header says %s)", r->path, held - expected, expected, desc);
    return DC_OK;
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
    const int direct = !r.gzip;

    /* Raw file: the size on disk settles truncation and trailing bytes up front. */
    if (direct) {
        s = check_raw_size(&r, header, expected, desc);
        if (s != DC_OK) goto done;
    }

    /* gzip: start with what the file could hold at deflate's largest ratio (1032:1), so a tiny
     * file with a big header costs kilobytes, not GZ_FIRST_ALLOC (found slow by fuzz_idx). */
    size_t first = (size_t)r.file_size * 1032u + 65536u;
    if (first > GZ_FIRST_ALLOC) first = GZ_FIRST_ALLOC;
    size_t cap = direct || expected < first ? expected : first;
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

/* A raw image file left on disk (dc_dataset_open). */
struct dc_dataset_file {
    int fd;
    size_t data_off; /* where sample 0 starts: after the 16-byte header */
    char *path;
};

static void file_close(struct dc_dataset_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    free(f);
}

/* Check an image file's header and size as read_idx does and keep it open; *f stays NULL (and
 * the result DC_OK) for a gzip file, which only inflating into memory can check. */
static dc_status open_raw_images(const char *path, struct dc_dataset_file **f, size_t *n, int *h,
                                 int *w)
{
    idx_in r;
    uint32_t dims[3];
    char desc[96];
    *f = NULL;
    DC_TRY(in_open(&r, path));
    dc_status s = DC_OK;
    if (r.gzip) goto done;
    s = read_header(&r, 3, dims);
    if (s != DC_OK) goto done;
    describe(desc, sizeof desc, 3, dims);
    s = check_raw_size(&r, 16, (size_t)dims[0] * dims[1] * dims[2], desc);
    if (s != DC_OK) goto done;
    struct dc_dataset_file *nf = calloc(1, sizeof *nf);
    if (!nf || !(nf->path = strdup(path))) {
        free(nf);
        s = dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    nf->fd = r.fd; /* in_close leaves it open */
    r.fd = -1;
    nf->data_off = 16;
    *f = nf;
    *n = dims[0];
    *h = (int)dims[1];
    *w = (int)dims[2];
done:
    in_close(&r);
    return s;
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
    dc_atomic_file f;
    DC_TRY(dc_atomic_begin(path, &f));
    dc_status s = DC_OK;
    int fd = fileno(f.fp); /* nothing goes through the FILE buffer */
    if (gzip) {
        int zfd = dup(fd);
        gzFile gz = zfd >= 0 ? gzdopen(zfd, "wb6") : NULL;
        if (!gz) {
            if (zfd >= 0) close(zfd);
            s = dc_fail(DC_ERR_NOMEM, "%s: cannot start gzip stream", path);
        } else {
            s = write_all_gz(gz, path, hdr, hdrlen);
            if (s == DC_OK) s = write_all_gz(gz, path, data, len);
            int zc = gzclose_w(gz); /* closes zfd */
            if (s == DC_OK && zc != Z_OK)
                s = dc_fail(DC_ERR_IO, "%s: closing gzip stream failed: %s", path,
                            zc == Z_ERRNO ? strerror(errno) : "zlib error");
        }
    } else {
        s = write_all_fd(fd, path, hdr, hdrlen);
        if (s == DC_OK) s = write_all_fd(fd, path, data, len);
    }
    if (s == DC_OK) return dc_atomic_commit(&f);
    dc_atomic_abort(&f);
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

int dc_dataset_is_idx(const char *dir)
{
    static const char *const train_words[] = {"train", NULL};
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 1; /* dc_dataset_load explains */
    char *path = NULL;
    dc_status s = find_split_file(dir, "train", train_words, "images", "idx3", &path);
    int found = s == DC_OK && path != NULL;
    free(path);
    dc_clear_error();
    return found;
}

static dc_status dataset_load(const char *dir, const char *split, int transpose, int keep_in_file,
                              dc_dataset *out)
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

    if (keep_in_file && !transpose) {
        s = open_raw_images(img_path, &out->file, &out->n, &out->h, &out->w);
        if (s != DC_OK) goto fail;
    }
    if (!out->file) {
        s = dc_idx_read_images(img_path, transpose, &out->images, &out->n, &out->h, &out->w);
        if (s != DC_OK) goto fail;
    }
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

dc_status dc_dataset_load(const char *dir, const char *split, int transpose, dc_dataset *out)
{
    return dataset_load(dir, split, transpose, 0, out);
}

dc_status dc_dataset_open(const char *dir, const char *split, int transpose, dc_dataset *out)
{
    return dataset_load(dir, split, transpose, 1, out);
}

dc_status dc_dataset_read(const dc_dataset *ds, size_t first, size_t count, uint8_t *dst)
{
    if (!ds || !dst || first > ds->n || count > ds->n - first)
        return dc_fail(DC_ERR_INVALID_ARG, "dataset: samples [%zu, +%zu) of %zu", first, count,
                       ds ? ds->n : 0);
    const size_t plane = dc_dataset_sample_bytes(ds);
    if (!ds->file) {
        if (!ds->images) return dc_fail(DC_ERR_INVALID_ARG, "dataset: no samples loaded");
        memcpy(dst, ds->images + first * plane, count * plane);
        return DC_OK;
    }
    size_t len = count * plane, done = 0;
    off_t at = (off_t)(ds->file->data_off + first * plane);
    while (done < len) {
        ssize_t k = pread(ds->file->fd, dst + done, len - done, at + (off_t)done);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return dc_fail(DC_ERR_IO, "%s: read failed: %s", ds->file->path, strerror(errno));
        if (k == 0)
            return dc_fail(DC_ERR_IO, "%s: the file ends at byte %lld, before image %zu: it "
                           "changed while in use", ds->file->path, (long long)(at + (off_t)done),
                           first + (done / plane));
        done += (size_t)k;
    }
    return DC_OK;
}

void dc_dataset_truncate(dc_dataset *ds, size_t n)
{
    if (!ds || n == 0 || n >= ds->n) return;
    const size_t plane = dc_dataset_sample_bytes(ds);
    ds->n = n;
    /* Give the memory back when we can; keeping the larger block is fine too. */
    uint8_t *p = ds->images ? realloc(ds->images, n * plane) : NULL;
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
    file_close(ds->file);
    memset(ds, 0, sizeof *ds);
}

double dc_dataset_mean(const dc_dataset *ds)
{
    if (!ds || (!ds->images && !ds->file) || ds->n == 0 || ds->h <= 0 || ds->w <= 0) return 0.0;
    const size_t plane = (size_t)ds->h * (size_t)ds->w, count = ds->n * plane;
    uint64_t sum = 0;
    if (ds->images) {
        for (size_t i = 0; i < count; i++) sum += ds->images[i];
        return (double)sum / ((double)count * 255.0);
    }
    uint8_t buf[65536];
    size_t per = sizeof buf / plane ? sizeof buf / plane : 1;
    uint8_t *big = plane > sizeof buf ? malloc(plane) : NULL;
    if (plane > sizeof buf && !big) return 0.0;
    for (size_t i = 0; i < ds->n; i += per) {
        size_t k = ds->n - i < per ? ds->n - i : per;
        uint8_t *b = big ? big : buf;
        if (dc_dataset_read(ds, i, k, b) != DC_OK) {
            dc_clear_error();
            free(big);
            return 0.0;
        }
        for (size_t j = 0; j < k * plane; j++) sum += b[j];
    }
    free(big);
    return (double)sum / ((double)count * 255.0);
}
