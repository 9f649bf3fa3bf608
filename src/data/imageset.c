/* Image folders in host memory (see daecl/imageset.h). */
#include "daecl/imageset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daecl/image.h"

/* ---- walking the folder ---- */

typedef struct list {
    char **rel;
    size_t n, cap;
} list;

static dc_status list_add(list *l, const char *rel)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **r = realloc(l->rel, cap * sizeof *r);
        if (!r) return dc_fail(DC_ERR_NOMEM, "out of memory listing files");
        l->rel = r;
        l->cap = cap;
    }
    l->rel[l->n] = strdup(rel);
    if (!l->rel[l->n]) return dc_fail(DC_ERR_NOMEM, "out of memory listing files");
    l->n++;
    return DC_OK;
}

/* Every regular file under root/rel (rel "" for root), depth-limited against symlink loops. */
static dc_status walk(const char *root, const char *rel, int depth, list *out)
{
    char *path = NULL;
    if (asprintf(&path, "%s%s%s", root, *rel ? "/" : "", rel) < 0) return dc_fail(DC_ERR_NOMEM, "out of memory");
    DIR *d = opendir(path);
    if (!d) {
        dc_status s = dc_fail(DC_ERR_IO, "%s: cannot open directory: %s", path, strerror(errno));
        free(path);
        return s;
    }
    dc_status s = DC_OK;
    struct dirent *e;
    while (!s && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden files and folders */
        char *sub = NULL, *full = NULL;
        if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name) < 0 ||
            asprintf(&full, "%s/%s", path, e->d_name) < 0) {
            free(sub);
            s = dc_fail(DC_ERR_NOMEM, "out of memory");
            break;
        }
        struct stat st;
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth < 64) s = walk(root, sub, depth + 1, out);
        } else if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            s = list_add(out, sub);
        } else if (stat(full, &st) != 0) {
            s = list_add(out, sub); /* a dangling link: reported as unreadable */
        }
        free(sub);
        free(full);
    }
    closedir(d);
    free(path);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int has_image_name(const char *rel)
{
    const char *dot = strrchr(rel, '.');
    if (!dot) return 0;
    return strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0;
}

/* ---- one file ---- */

/* Signature: 0 PNG, 1 JPEG, -1 neither, -2 unreadable (errno kept). */
static int sniff(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -2;
    unsigned char b[8] = {0};
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (got == 8 && memcmp(b, png, 8) == 0) return DC_IMAGESET_PNG;
    if (got >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return DC_IMAGESET_JPEG;
    return -1;
}

static char *dup_detail(void)
{
    const char *d = dc_error_detail();
    return strdup(d && *d ? d : "cannot be read");
}

/* Header facts of one image file; on failure the reason. */
static dc_status probe(const char *path, dc_imageset_entry *e)
{
    dc_image_info info;
    DC_TRY(dc_image_probe(path, &info));
    e->w = info.w;
    e->h = info.h;
    e->c = info.c >= 3 ? 3 : 1;
    e->bit_depth = info.bit_depth > 8 ? 16 : 8;
    return DC_OK;
}

void dc_imageset_scan_free(dc_imageset_scan *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].rel);
        free(s->entries[i].skip);
    }
    free(s->entries);
    memset(s, 0, sizeof *s);
}

dc_status dc_imageset_scan_dir(const char *dir, int strict, dc_imageset_scan *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (!dir || stat(dir, &st) != 0) return dc_fail(DC_ERR_IO, "%s: no such folder", dir ? dir : "(null)");
    if (!S_ISDIR(st.st_mode)) return dc_fail(DC_ERR_IO, "%s: not a folder", dir);
    list l = {0};
    dc_status s = walk(dir, "", 0, &l);
    if (!s && l.n) qsort(l.rel, l.n, sizeof *l.rel, cmp_str); /* qsort(NULL, 0) is UB */
    if (!s && l.n) {
        out->entries = calloc(l.n, sizeof *out->entries);
        if (!out->entries) s = dc_fail(DC_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; !s && i < l.n; i++) {
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, l.rel[i]) < 0) {
            s = dc_fail(DC_ERR_NOMEM, "out of memory");
            break;
        }
        int kind = sniff(path);
        if (kind == -1 && !has_image_name(l.rel[i])) {
            out->other_files++;
            free(path);
            continue;
        }
        dc_imageset_entry *e = &out->entries[out->n++];
        e->rel = l.rel[i];
        l.rel[i] = NULL;
        e->format = kind == DC_IMAGESET_JPEG ? DC_IMAGESET_JPEG : DC_IMAGESET_PNG;
        dc_status ps;
        if (kind == -2)
            ps = dc_fail(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        else if (kind == -1)
            ps = dc_fail(DC_ERR_FORMAT, "%s: named like an image but is neither PNG nor JPEG (signature)", path);
        else
            ps = probe(path, e);
        if (ps) {
            if (strict) s = ps;
            else {
                e->skip = dup_detail();
                e->corrupt = 1;
                if (!e->skip) s = dc_fail(DC_ERR_NOMEM, "out of memory");
                dc_clear_error();
            }
        }
        free(path);
    }
    for (size_t i = 0; i < l.n; i++) free(l.rel[i]);
    free(l.rel);
    if (s) dc_imageset_scan_free(out);
    return s;
}

void dc_imageset_scan_layout(const dc_imageset_scan *s, int *c, int *depth)
{
    int colour = 0, deep = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->entries[i].skip) continue;
        colour |= s->entries[i].c == 3;
        deep |= s->entries[i].bit_depth == 16;
    }
    if (c) *c = colour ? 3 : 1;
    if (depth) *depth = deep ? 2 : 1;
}

static uint64_t splitmix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int dc_imageset_in_validation(const char *rel, double fraction)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    double u = (double)(splitmix64(h) >> 11) * 0x1p-53;
    return u < fraction;
}

/* ---- loading ---- */

void dc_imageset_free(dc_imageset *s)
{
    if (!s) return;
    dc_imageset_scan_free(&s->scan);
    free(s->entry);
    free(s->w);
    free(s->h);
    free(s->offset);
    free(s->cum_area);
    free(s->pixels);
    memset(s, 0, sizeof *s);
}

static dc_status mark(dc_imageset_entry *e, size_t *count, const char *fmt, int a, int b)
{
    char buf[128];
    snprintf(buf, sizeof buf, fmt, a, b);
    e->skip = strdup(buf);
    (*count)++;
    return e->skip ? DC_OK : dc_fail(DC_ERR_NOMEM, "out of memory");
}

/* Read one image as c planes of values with the set's depth at dst. */
static dc_status read_pixels(const char *path, int c, int depth, int w, int h, void *dst)
{
    dc_image img = {0};
    DC_TRY(dc_image_read(path, c, &img));
    dc_status s = DC_OK;
    if (img.w != w || img.h != h || img.c != c)
        s = dc_fail(DC_ERR_FORMAT, "%s: decoded as %dx%d with %d channels, its header said %dx%d", path, img.w, img.h,
                    img.c, w, h);
    size_t count = (size_t)c * (size_t)w * (size_t)h;
    /* Values are v / (2^bits - 1): rounding back is exact for the stored bits. An 8-bit image in
     * a 16-bit set is widened exactly (v * 257 == round(v / 255 * 65535)). */
    float scale = depth == 2 ? 65535.0f : 255.0f;
    for (size_t i = 0; !s && i < count; i++) {
        float v = img.px[i] * scale + 0.5f;
        v = v < 0.0f ? 0.0f : v > scale ? scale : v;
        if (depth == 2) ((uint16_t *)dst)[i] = (uint16_t)v;
        else ((uint8_t *)dst)[i] = (uint8_t)v;
    }
    dc_image_free(&img);
    return s;
}

dc_status dc_imageset_load(const char *dir, const dc_imageset_options *o, dc_imageset *out)
{
    memset(out, 0, sizeof *out);
    dc_imageset_options opt = o ? *o : (dc_imageset_options){0};
    if (opt.channels != 0 && opt.channels != 1 && opt.channels != 3)
        return dc_fail(DC_ERR_INVALID_ARG, "--channels %d: expected 1 or 3", opt.channels);
    size_t max_bytes = opt.max_bytes ? opt.max_bytes : (size_t)DC_IMAGESET_DEFAULT_MAX_MB << 20;
    DC_TRY(dc_imageset_scan_dir(dir, opt.strict, &out->scan));
    dc_imageset_scan *sc = &out->scan;
    dc_status s = DC_OK;
    /* The split and the size filter, before the layout: held-out images do not decide it. */
    for (size_t i = 0; !s && i < sc->n; i++) {
        dc_imageset_entry *e = &sc->entries[i];
        if (e->skip) {
            out->corrupt++;
            continue;
        }
        if (opt.part && (dc_imageset_in_validation(e->rel, opt.val_split) != (opt.part == 2))) {
            s = mark(e, &out->held_out, opt.part == 1 ? "held out for validation (--val-split)"
                                                      : "kept for training (--val-split)", 0, 0);
            continue;
        }
        if (e->w < opt.min_side || e->h < opt.min_side)
            s = mark(e, &out->too_small, "smaller than the %d x %d patch", opt.min_side, opt.min_side);
        else
            out->n++;
    }
    if (s) goto fail;
    if (out->n == 0) {
        s = dc_fail(DC_ERR_FORMAT, "%s: no usable image (%zu image files: %zu unreadable, %zu smaller than %d pixels, "
                    "%zu in the other split part; %zu other files)", dir, sc->n, out->corrupt, out->too_small,
                    opt.min_side, out->held_out, sc->other_files);
        goto fail;
    }
    int c_auto;
    dc_imageset_scan_layout(sc, &c_auto, &out->depth);
    out->c = opt.channels ? opt.channels : c_auto;
    out->entry = malloc(out->n * sizeof *out->entry);
    out->w = malloc(out->n * sizeof *out->w);
    out->h = malloc(out->n * sizeof *out->h);
    out->offset = malloc(out->n * sizeof *out->offset);
    out->cum_area = malloc(out->n * sizeof *out->cum_area);
    if (!out->entry || !out->w || !out->h || !out->offset || !out->cum_area) {
        s = dc_fail(DC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    size_t values = 0, k = 0;
    uint64_t area = 0;
    for (size_t i = 0; i < sc->n; i++) {
        const dc_imageset_entry *e = &sc->entries[i];
        if (e->skip) continue;
        out->entry[k] = (uint32_t)i;
        out->w[k] = e->w;
        out->h[k] = e->h;
        out->offset[k] = values;
        area += (uint64_t)e->w * (uint64_t)e->h;
        out->cum_area[k] = area;
        values += (size_t)out->c * (size_t)e->w * (size_t)e->h;
        k++;
    }
    double need = (double)values * out->depth;
    if (need > (double)max_bytes) {
        s = dc_fail(DC_ERR_INVALID_ARG, "%s: %zu images need %.0f MiB in memory as %s with %d channel%s, more than the "
                    "%zu MiB allowed; raise --max-data-mb or use fewer or smaller images", dir, out->n,
                    ceil(need / 1048576.0), out->depth == 2 ? "uint16" : "uint8", out->c, out->c == 1 ? "" : "s",
                    max_bytes >> 20);
        goto fail;
    }
    out->bytes = (size_t)need;
    out->pixels = malloc(out->bytes ? out->bytes : 1);
    if (!out->pixels) {
        s = dc_fail(DC_ERR_NOMEM, "%s: cannot allocate %zu bytes for the images", dir, out->bytes);
        goto fail;
    }
    /* A file that passed the probe may still fail to decode: skip it, keeping the others. */
    size_t kept = 0;
    for (size_t j = 0; j < out->n; j++) {
        dc_imageset_entry *e = &sc->entries[out->entry[j]];
        char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, e->rel) < 0) {
            s = dc_fail(DC_ERR_NOMEM, "out of memory");
            goto fail;
        }
        size_t at = kept ? out->offset[kept - 1] + (size_t)out->c * out->w[kept - 1] * out->h[kept - 1] : 0;
        dc_status r = read_pixels(path, out->c, out->depth, e->w, e->h,
                                  (char *)out->pixels + at * (size_t)out->depth);
        free(path);
        if (r) {
            if (opt.strict) {
                s = r;
                goto fail;
            }
            e->skip = dup_detail();
            e->corrupt = 1;
            dc_clear_error();
            out->corrupt++;
            if (!e->skip) {
                s = dc_fail(DC_ERR_NOMEM, "out of memory");
                goto fail;
            }
            continue;
        }
        out->entry[kept] = out->entry[j];
        out->w[kept] = e->w;
        out->h[kept] = e->h;
        out->offset[kept] = at;
        out->cum_area[kept] = (kept ? out->cum_area[kept - 1] : 0) + (uint64_t)e->w * (uint64_t)e->h;
        kept++;
    }
    out->n = kept;
    if (kept) out->bytes = (out->offset[kept - 1] + (size_t)out->c * out->w[kept - 1] * out->h[kept - 1]) * out->depth;
    if (kept == 0) {
        s = dc_fail(DC_ERR_FORMAT, "%s: no usable image (%zu image files, none could be decoded)", dir, sc->n);
        goto fail;
    }
    return DC_OK;
fail:
    dc_imageset_free(out);
    return s;
}

dc_status dc_imageset_center_crops(const dc_imageset *s, int size, dc_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (s->n == 0 || size <= 0) return dc_fail(DC_ERR_INVALID_ARG, "centre crops: empty set or size %d", size);
    size_t per = (size_t)s->c * size * size * s->depth;
    out->images = malloc(per * s->n);
    if (!out->images) return dc_fail(DC_ERR_NOMEM, "out of memory for %zu validation crops", s->n);
    for (size_t i = 0; i < s->n; i++) {
        if (s->w[i] < size || s->h[i] < size) {
            free(out->images);
            out->images = NULL;
            return dc_fail(DC_ERR_INVALID_ARG, "centre crops: image %zu is smaller than %d", i, size);
        }
        int x0 = (s->w[i] - size) / 2, y0 = (s->h[i] - size) / 2;
        size_t row = (size_t)size * s->depth;
        for (int p = 0; p < s->c; p++)
            for (int y = 0; y < size; y++) {
                size_t src = s->offset[i] + ((size_t)p * s->h[i] + y0 + y) * s->w[i] + x0;
                memcpy(out->images + i * per + ((size_t)p * size + y) * row,
                       (const char *)s->pixels + src * s->depth, row);
            }
    }
    out->n = s->n;
    out->h = out->w = size;
    out->c = s->c;
    out->depth = s->depth;
    return DC_OK;
}

dc_status dc_imageset_load_crops(const char *dir, const dc_imageset_options *o, int size, dc_dataset *out,
                                 size_t *skipped)
{
    memset(out, 0, sizeof *out);
    dc_imageset_options opt = o ? *o : (dc_imageset_options){0};
    opt.min_side = size;
    dc_imageset set;
    DC_TRY(dc_imageset_load(dir, &opt, &set));
    if (skipped) *skipped = set.corrupt + set.too_small;
    dc_status s = dc_imageset_center_crops(&set, size, out);
    dc_imageset_free(&set);
    return s;
}
