/* .npy and .npz writers (see daecl/npz.h). Formats: numpy.lib.format (version 1.0 header:
 * magic, u16 length, a Python dict literal padded with spaces to a multiple of 64 bytes ending
 * in '\n') and PKWARE's APPNOTE (local headers, central directory, end record; method 0). */
#include "daecl/npz.h"

#include "daecl/bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef dc_bytes buf;
#define put dc_bytes_put

static void put_le(buf *b, uint64_t v, int bytes)
{
    unsigned char le[8];
    for (int i = 0; i < bytes; i++) le[i] = (unsigned char)(v >> (8 * i));
    put(b, le, (size_t)bytes);
}

static size_t count_of(const dc_npy_array *a)
{
    size_t n = 1;
    for (int i = 0; i < a->ndims; i++) n *= (size_t)a->dims[i];
    return n;
}

static dc_status npy_append(buf *b, const dc_npy_array *a)
{
    if (a->ndims < 0 || a->ndims > DC_NPY_MAX_DIMS)
        return dc_fail(DC_ERR_INVALID_ARG, "%s: %d dimensions (at most %d)", a->name, a->ndims, DC_NPY_MAX_DIMS);
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < a->ndims; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)a->dims[i],
                      i + 1 < a->ndims ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1, padded = (total + 63) / 64 * 64;
    put(b, "\x93NUMPY\x01\x00", 8);
    put_le(b, padded - 10, 2);
    put(b, dict, (size_t)n);
    for (size_t i = total; i < padded; i++) put(b, " ", 1);
    put(b, "\n", 1);
    size_t count = count_of(a);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &a->data[i], 4);
        put_le(b, bits, 4);
    }
    return DC_OK;
}

static dc_status finish(buf *b, void **data, size_t *size)
{
    if (b->oom) {
        free(b->p);
        return dc_fail(DC_ERR_NOMEM, "out of memory writing NumPy data");
    }
    *data = b->p;
    *size = b->len;
    return DC_OK;
}

dc_status dc_npy_build(const dc_npy_array *a, void **data, size_t *size)
{
    buf b = {0};
    dc_status s = npy_append(&b, a);
    if (s) {
        free(b.p);
        return s;
    }
    return finish(&b, data, size);
}

/* A zip entry's fixed fields, shared by its local header and central directory record. */
static void zip_fields(buf *b, uint32_t crc, uint32_t size, size_t name_len)
{
    put_le(b, 20, 2); /* version needed: 2.0 */
    put_le(b, 0, 2);  /* flags */
    put_le(b, 0, 2);  /* method: stored */
    put_le(b, 0, 2);  /* time 00:00 */
    put_le(b, 0x21, 2); /* date 1980-01-01 */
    put_le(b, crc, 4);
    put_le(b, size, 4); /* compressed = uncompressed */
    put_le(b, size, 4);
    put_le(b, name_len, 2);
    put_le(b, 0, 2); /* extra field length */
}

dc_status dc_npz_build(const dc_npy_array *arrays, int count, void **data, size_t *size)
{
    buf out = {0}, dir = {0}, entry = {0};
    dc_status s = DC_OK;
    for (int i = 0; i < count && !s; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.npy", arrays[i].name);
        entry.len = 0;
        s = npy_append(&entry, &arrays[i]);
        if (s) break;
        if (entry.oom || entry.len > 0xFFFFFFF0u || out.len > 0xFFFFFFF0u) {
            s = dc_fail(DC_ERR_INVALID_ARG, "%s: too large for a zip without ZIP64", name);
            break;
        }
        uint32_t crc = (uint32_t)crc32(0L, entry.p, (uInt)entry.len);
        size_t offset = out.len, nlen = strlen(name);
        put_le(&out, 0x04034b50u, 4);
        zip_fields(&out, crc, (uint32_t)entry.len, nlen);
        put(&out, name, nlen);
        put(&out, entry.p, entry.len);
        put_le(&dir, 0x02014b50u, 4);
        put_le(&dir, 20, 2); /* made by: 2.0 */
        zip_fields(&dir, crc, (uint32_t)entry.len, nlen);
        put_le(&dir, 0, 2); /* comment length */
        put_le(&dir, 0, 2); /* disk */
        put_le(&dir, 0, 2); /* internal attributes */
        put_le(&dir, 0, 4); /* external attributes */
        put_le(&dir, offset, 4);
        put(&dir, name, nlen);
    }
    free(entry.p);
    if (!s) {
        size_t dir_offset = out.len;
        put(&out, dir.p, dir.len);
        put_le(&out, 0x06054b50u, 4);
        put_le(&out, 0, 2); /* this disk */
        put_le(&out, 0, 2); /* disk with the directory */
        put_le(&out, (uint64_t)count, 2);
        put_le(&out, (uint64_t)count, 2);
        put_le(&out, dir.len, 4);
        put_le(&out, dir_offset, 4);
        put_le(&out, 0, 2); /* comment length */
        out.oom |= dir.oom;
    }
    free(dir.p);
    if (s) {
        free(out.p);
        return s;
    }
    return finish(&out, data, size);
}
