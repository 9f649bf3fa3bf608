/* Checkpoint files (see checkpoint.h). */
#include "daecl/checkpoint.h"

#include "daecl/image.h" /* DC_IMAGE_MAX_*: the input shape limits */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daecl/bytes.h"

#define MAGIC "DAECLCKP"
#define BYTE_ORDER_MARK 0x01020304u
#define HEADER_BYTES (8 + 4 + 4 + 8)
#define DC_CHECKPOINT_MAX_CHANNELS 4096 /* input channels a model can have */
#define VERSION_KEY "dae_cl_version"

#ifndef DAECL_VERSION
#define DAECL_VERSION "unknown"
#endif

/* ---- growable byte buffer ----------------------------------------------------------------- */

typedef dc_bytes bytes;
#define put dc_bytes_put
#define PUT(b, v) put((b), &(v), sizeof(v))

static void put_str(bytes *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    PUT(b, n);
    put(b, s, n);
}

/* ---- reader with bounds checks ------------------------------------------------------------ */

typedef struct reader {
    const unsigned char *p;
    size_t len, pos;
    int bad;
} reader;

static int get(reader *r, void *out, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return -1;
    }
    memcpy(out, r->p + r->pos, n);
    r->pos += n;
    return 0;
}
#define GET(r, v) get((r), &(v), sizeof(v))

static char *get_str(reader *r)
{
    uint32_t n;
    if (GET(r, n) || r->len - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, r->p + r->pos, n);
    s[n] = '\0';
    r->pos += n;
    return s;
}

static float *get_floats(reader *r, uint64_t n)
{
    if (r->bad || n > (r->len - r->pos) / sizeof(float)) {
        r->bad = 1;
        return NULL;
    }
    float *f = malloc(n ? n * sizeof(float) : 1);
    if (!f) {
        r->bad = 1;
        return NULL;
    }
    get(r, f, n * sizeof(float));
    return f;
}

/* ---- save / load -------------------------------------------------------------------------- */

dc_status dc_checkpoint_save(const char *path, const dc_checkpoint *ck)
{
    char run[DC_RUN_TEXT_MAX];
    size_t used = dc_run_config_format(&ck->run, 0, run, sizeof run);
    if (used < sizeof run) snprintf(run + used, sizeof run - used, "%s=%s\n", VERSION_KEY, DAECL_VERSION);
    bytes payload = {0};
    put_str(&payload, ck->arch);
    PUT(&payload, ck->in_c);
    PUT(&payload, ck->in_h);
    PUT(&payload, ck->in_w);
    PUT(&payload, ck->nparams);
    put(&payload, ck->params, ck->nparams * sizeof(float));
    PUT(&payload, ck->nstate);
    put(&payload, ck->state, ck->nstate * sizeof(float));
    PUT(&payload, ck->step);
    PUT(&payload, ck->epoch);
    PUT(&payload, ck->batch);
    PUT(&payload, ck->best_val_loss);
    put_str(&payload, run);
    put_str(&payload, ck->metrics);

    bytes file = {0};
    uint32_t version = DC_CHECKPOINT_VERSION, bom = BYTE_ORDER_MARK;
    uint64_t plen = payload.len;
    put(&file, MAGIC, 8);
    PUT(&file, version);
    PUT(&file, bom);
    PUT(&file, plen);
    put(&file, payload.p, payload.len);
    uint32_t crc = (uint32_t)crc32(0L, payload.p, (uInt)payload.len);
    PUT(&file, crc);
    dc_status s = (payload.oom || file.oom) ? dc_fail(DC_ERR_NOMEM, "%s: out of memory", path)
                                            : dc_write_file_atomic(path, file.p, file.len);
    free(payload.p);
    free(file.p);
    return s;
}

/* The run configuration text into ck->run. Version 1 wrote the optimizer and the seed as binary
 * fields (its text has them rounded, with keys this version no longer stores). */
static dc_status parse_run(const char *path, dc_checkpoint *ck, const char *text, const dc_optim_config *v1_optim,
                           uint64_t v1_seed)
{
    static const char *const v1_info[] = {VERSION_KEY, "device", "arch", NULL};
    static const char *const v2_info[] = {VERSION_KEY, NULL};
    DC_TRY(dc_run_config_parse(text, path, v1_optim ? v1_info : v2_info, &ck->run, ck->unknown_key));
    /* The writer's version, a line of its own after config_version's. */
    const char *v = strstr(text, "\n" VERSION_KEY "=");
    if (v) {
        v += sizeof("\n" VERSION_KEY "=") - 1;
        snprintf(ck->written_by, sizeof ck->written_by, "%.*s", (int)strcspn(v, "\n"), v);
    }
    if (v1_optim) {
        if ((unsigned)v1_optim->kind >= DC_OPT_COUNT)
            return dc_fail(DC_ERR_FORMAT, "%s: corrupt payload (optimizer kind %d)", path, (int)v1_optim->kind);
        ck->run.optim = *v1_optim;
        ck->run.seed = v1_seed;
    }
    snprintf(ck->run.arch, sizeof ck->run.arch, "%s", ck->arch);
    return DC_OK;
}

static dc_status read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f;
    long long n;
    DC_TRY(dc_fopen_regular(path, "a dae-cl checkpoint", &f, &n));
    *data = malloc(n ? (size_t)n : 1);
    if (!*data) {
        fclose(f);
        return dc_fail(DC_ERR_NOMEM, "%s: out of memory (%lld bytes)", path, n);
    }
    size_t r = fread(*data, 1, (size_t)n, f);
    fclose(f);
    if (r != (size_t)n) {
        free(*data);
        return dc_fail(DC_ERR_IO, "%s: read error", path);
    }
    *len = (size_t)n;
    return DC_OK;
}

dc_status dc_checkpoint_load(const char *path, dc_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    unsigned char *data = NULL;
    size_t len = 0;
    DC_TRY(read_file(path, &data, &len));
    dc_status s = DC_OK;
    if (len < 8 || memcmp(data, MAGIC, 8) != 0) {
        s = dc_fail(DC_ERR_FORMAT, "%s: not a dae-cl checkpoint (bad magic)", path);
        goto out;
    }
    if (len < HEADER_BYTES) {
        s = dc_fail(DC_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than a checkpoint header", path, len);
        goto out;
    }
    uint32_t version, bom;
    uint64_t plen;
    memcpy(&version, data + 8, 4);
    memcpy(&bom, data + 12, 4);
    memcpy(&plen, data + 16, 8);
    if (version != DC_CHECKPOINT_VERSION && version != 1) {
        s = dc_fail(DC_ERR_FORMAT, "%s: checkpoint format version %u; this dae-cl reads versions 1 to %d%s", path,
                    version, DC_CHECKPOINT_VERSION, version > DC_CHECKPOINT_VERSION ? " (a newer dae-cl wrote it)" : "");
        goto out;
    }
    if (bom != BYTE_ORDER_MARK) {
        s = dc_fail(DC_ERR_FORMAT, "%s: written on a machine of the other byte order", path);
        goto out;
    }
    if (plen > len - HEADER_BYTES) {
        s = dc_fail(DC_ERR_FORMAT, "%s: truncated: header says %llu bytes of payload, file holds %zu", path,
                    (unsigned long long)plen, len - HEADER_BYTES);
        goto out;
    }
    if (len - HEADER_BYTES - plen < 4) {
        s = dc_fail(DC_ERR_FORMAT, "%s: truncated: the payload is complete but its CRC-32 is missing (%zu of 4 bytes)",
                    path, len - HEADER_BYTES - (size_t)plen);
        goto out;
    }
    if (len - HEADER_BYTES - plen != 4) {
        s = dc_fail(DC_ERR_FORMAT, "%s: %zu bytes of trailing garbage after the checkpoint", path,
                    len - HEADER_BYTES - (size_t)plen - 4);
        goto out;
    }
    uint32_t stored, computed = (uint32_t)crc32(0L, data + HEADER_BYTES, (uInt)plen);
    memcpy(&stored, data + HEADER_BYTES + plen, 4);
    if (stored != computed) {
        s = dc_fail(DC_ERR_FORMAT, "%s: CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt",
                    path, stored, computed);
        goto out;
    }

    reader r = {.p = data + HEADER_BYTES, .len = (size_t)plen};
    ck->version = (int)version;
    char *arch = get_str(&r);
    if (arch) {
        snprintf(ck->arch, sizeof ck->arch, "%s", arch);
        free(arch);
    }
    GET(&r, ck->in_c);
    GET(&r, ck->in_h);
    GET(&r, ck->in_w);
    GET(&r, ck->nparams);
    ck->params = get_floats(&r, ck->nparams);
    dc_optim_config v1_optim = {0};
    uint64_t v1_seed = 0;
    if (version == 1) {
        int32_t kind = 0, nesterov = 0;
        float hyper[7] = {0};
        GET(&r, kind);
        GET(&r, hyper);
        GET(&r, nesterov);
        v1_optim = (dc_optim_config){.kind = (dc_optim_kind)kind, .lr = hyper[0], .momentum = hyper[1],
                                     .beta1 = hyper[2], .beta2 = hyper[3], .rho = hyper[4], .eps = hyper[5],
                                     .initial_accumulator = hyper[6], .nesterov = nesterov};
    }
    GET(&r, ck->nstate);
    ck->state = get_floats(&r, ck->nstate);
    GET(&r, ck->step);
    GET(&r, ck->epoch);
    GET(&r, ck->batch);
    if (version == 1) GET(&r, v1_seed);
    GET(&r, ck->best_val_loss);
    char *run = get_str(&r);
    if (version >= 2) ck->metrics = get_str(&r);
    if (!r.bad && r.pos == r.len)
        s = parse_run(path, ck, run, version == 1 ? &v1_optim : NULL, v1_seed);
    free(run);
    if (s) goto out;
    if (r.bad || r.pos != r.len) {
        s = dc_fail(DC_ERR_FORMAT, "%s: corrupt payload (fields do not add up to its length)", path);
    } else if (ck->in_c <= 0 || ck->in_h <= 0 || ck->in_w <= 0 || ck->in_c > DC_CHECKPOINT_MAX_CHANNELS ||
               ck->in_h > DC_IMAGE_MAX_DIM || ck->in_w > DC_IMAGE_MAX_DIM ||
               (int64_t)ck->in_h * ck->in_w > DC_IMAGE_MAX_PIXELS) {
        s = dc_fail(DC_ERR_FORMAT, "%s: impossible input shape %dx%dx%d (limits: %d channels, %d per side, %d pixels)",
                    path, ck->in_c, ck->in_h, ck->in_w, DC_CHECKPOINT_MAX_CHANNELS, DC_IMAGE_MAX_DIM,
                    DC_IMAGE_MAX_PIXELS);
    } else if (ck->epoch < 0 || ck->step < 0 || ck->batch < 0) {
        s = dc_fail(DC_ERR_FORMAT, "%s: corrupt payload (impossible values)", path);
    } else if (ck->nstate && ck->nstate != dc_optim_state_floats(ck->run.optim.kind, ck->nparams)) {
        /* (no state at all is a checkpoint for inference only) */
        s = dc_fail(DC_ERR_FORMAT, "%s: %llu values of optimizer state, %s needs %zu", path,
                    (unsigned long long)ck->nstate, dc_optim_name(ck->run.optim.kind),
                    dc_optim_state_floats(ck->run.optim.kind, ck->nparams));
    } else {
        for (uint64_t i = 0; i < ck->nparams; i++)
            if (!isfinite(ck->params[i])) {
                s = dc_fail(DC_ERR_FORMAT, "%s: parameter %llu is not finite", path, (unsigned long long)i);
                break;
            }
    }
out:
    free(data);
    if (s) dc_checkpoint_free(ck);
    return s;
}

void dc_checkpoint_free(dc_checkpoint *ck)
{
    free(ck->params);
    free(ck->state);
    free(ck->metrics);
    ck->params = ck->state = NULL;
    ck->metrics = NULL;
}
