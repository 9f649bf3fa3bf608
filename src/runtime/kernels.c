/* Kernel JIT and the on-disk program binary cache (see kernels.h). */
#include "daecl/kernels.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "daecl/fileio.h"
#include "runtime/cl_sources.h"

#define CACHE_MAGIC "DCKCACHE1\n"

struct dc_program_entry {
    char *file, *options;
    cl_program program;
    cl_uint nkernels;
    cl_kernel *kernels;
    char **names;
    struct dc_program_entry *next;
};

/* ---- sources ---------------------------------------------------------------------------- */

static dc_status read_whole_file(const char *path, char **text, size_t *len)
{
    FILE *f;
    DC_TRY(dc_fopen_regular(path, NULL, &f, NULL));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return dc_fail(DC_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *text = buf;
    if (len) *len = n;
    return DC_OK;
}

/* The kernel files that are always built without options go into one program: PoCL spends
 * 0.2-0.4 s on every program it builds however small, and ~50 ms on every program it finds in
 * its cache (it preprocesses the source to name the entry). As nine programs they cost a cold
 * 1-step training run ~2 s and a warm one ~0.4 s. Kernel names are unique across these files,
 * and the macros they share are defined identically. Each file's text starts with a #line
 * directive, so a build log names the real file and line. conv2d.cl's part without options is
 * its geometry-free kernels. */
static const char *const merged_files[] = {"util.cl",       "noise.cl",   "resample.cl",
                                           "loss.cl",       "activation.cl", "metrics.cl",
                                           "optim.cl",      "merge.cl",   "conv2d.cl"};
#define MERGED_FILE "util.cl+noise.cl+resample.cl+loss.cl+activation.cl+metrics.cl+optim.cl+merge.cl+conv2d.cl"
#define N_MERGED (sizeof merged_files / sizeof merged_files[0])

static int is_merged(const char *file, const char *options)
{
    if (options[0]) return 0;
    for (size_t i = 0; i < N_MERGED; i++)
        if (strcmp(file, merged_files[i]) == 0) return 1;
    return 0;
}

static dc_status merged_source(char **text)
{
    char *parts[N_MERGED] = {0};
    size_t total = 1;
    dc_status s = DC_OK;
    for (size_t i = 0; i < N_MERGED && s == DC_OK; i++) {
        s = dc_kernel_source(merged_files[i], &parts[i]);
        if (s == DC_OK) total += strlen(parts[i]) + strlen(merged_files[i]) + 32;
    }
    char *out = s == DC_OK ? malloc(total) : NULL;
    if (s == DC_OK && !out) s = dc_fail(DC_ERR_NOMEM, "out of memory");
    if (s == DC_OK) {
        size_t n = 0;
        for (size_t i = 0; i < N_MERGED; i++)
            n += (size_t)snprintf(out + n, total - n, "#line 1 \"%s\"\n%s\n", merged_files[i],
                                  parts[i]);
        *text = out;
    }
    for (size_t i = 0; i < N_MERGED; i++) free(parts[i]);
    return s;
}

dc_status dc_kernel_source(const char *file, char **text)
{
    if (strcmp(file, MERGED_FILE) == 0) return merged_source(text);
    const char *dir = getenv("DAECL_KERNEL_DIR");
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (access(path, F_OK) == 0) return read_whole_file(path, text, NULL);
    }
    for (const struct dc_embedded_cl *e = dc_embedded_cl_sources; e->name; e++) {
        if (strcmp(e->name, file) == 0) {
            *text = strdup(e->text);
            return *text ? DC_OK : dc_fail(DC_ERR_NOMEM, "out of memory");
        }
    }
    if (dir && *dir)
        return dc_fail(DC_ERR_INVALID_ARG, "cl/%s: not in DAECL_KERNEL_DIR (%s) nor built into dae-cl",
                       file, dir);
    return dc_fail(DC_ERR_INVALID_ARG, "cl/%s: no such kernel file is built into dae-cl", file);
}

/* ---- cache key -------------------------------------------------------------------------- */

/* FNV-1a 64: names the cache file. Collisions are harmless: the full key is stored in the
 * file and compared byte for byte before a binary is used. */
static uint64_t fnv1a64(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static char *make_key(const dc_device *dev, const char *file, const char *options,
                      const char *source)
{
    size_t slen = strlen(source);
    uint64_t sh = fnv1a64(source, slen, 0xcbf29ce484222325ull);
    uLong crc = crc32(0L, (const Bytef *)source, (uInt)slen);
    size_t need = strlen(file) + strlen(options) + 1024;
    char *key = malloc(need);
    if (!key) return NULL;
    snprintf(key, need,
             "file=%s\noptions=%s\ndevice=%s\nvendor=%s\ndriver=%s\ndevice_version=%s\n"
             "platform=%s\nplatform_version=%s\nsource=%016llx-%08lx-%zu\n",
             file, options, dev->name, dev->vendor, dev->driver, dev->version, dev->platform_name,
             dev->platform_version, (unsigned long long)sh, (unsigned long)crc, slen);
    return key;
}

static int env_on(const char *name)
{
    const char *e = getenv(name);
    return e && *e && strcmp(e, "0") != 0;
}

static int cache_disabled(void) { return env_on("DAECL_NO_KERNEL_CACHE"); }

/* PoCL keeps its own cache of built programs and of the code generated at launch (its
 * POCL_KERNEL_CACHE, on by default), and asking it for a program binary makes it compile every
 * kernel of the program natively first: measured on the 2-core CPU for the classic model's 8
 * programs, 19 s CPU to build and 49 s more to extract the binaries (then 0.7 s warm either way).
 * So on PoCL with its cache on, ours is skipped; DAECL_KERNEL_CACHE_BINARIES=1 forces it. */
static int platform_caches_itself(const dc_device *dev)
{
    if (env_on("DAECL_KERNEL_CACHE_BINARIES")) return 0;
    const char *pocl_cache = getenv("POCL_KERNEL_CACHE");
    if (pocl_cache && strcmp(pocl_cache, "0") == 0) return 0;
    return dc_device_is_pocl(dev);
}

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        int r = mkdir(path, 0755);
        *p = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return (mkdir(path, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

/* The cache directory, created if missing; "" when none can be had (then we just don't cache:
 * dc_kernel_cache_check() tells the user why, once). */
static void cache_dir(char *buf, size_t len)
{
    const char *d = getenv("DAECL_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (d && *d) snprintf(buf, len, "%s", d);
    else if (xdg && *xdg) snprintf(buf, len, "%s/dae-cl/kernels", xdg);
    else if (home && *home) snprintf(buf, len, "%s/.cache/dae-cl/kernels", home);
    else buf[0] = '\0';
    if (buf[0] && mkdir_p(buf) != 0) buf[0] = '\0';
}

dc_status dc_kernel_cache_check(void)
{
    if (cache_disabled()) return DC_OK;
    const char *d = getenv("DAECL_CACHE_DIR");
    char dir[3072];
    cache_dir(dir, sizeof dir);
    if (!dir[0]) {
        if (!d || !*d) return dc_fail(DC_ERR_IO, "no kernel cache directory (set DAECL_CACHE_DIR or HOME)");
        /* mkdir_p failed: say why with the errno of the step that failed. */
        int e = errno;
        struct stat st;
        const char *why = stat(d, &st) == 0 && !S_ISDIR(st.st_mode) ? "exists and is not a directory"
                                                                      : strerror(e);
        return dc_fail(DC_ERR_IO, "kernel cache %s: cannot be created: %s", d, why);
    }
    char probe[3200];
    snprintf(probe, sizeof probe, "%s/.probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return dc_fail(DC_ERR_IO, "kernel cache %s: not writable: %s", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return DC_OK;
}

static void cache_path(const char *key, char *buf, size_t len)
{
    char dir[3072];
    cache_dir(dir, sizeof dir);
    if (!dir[0]) {
        buf[0] = '\0';
        return;
    }
    snprintf(buf, len, "%s/%016llx.bin", dir,
             (unsigned long long)fnv1a64(key, strlen(key), 0xcbf29ce484222325ull));
}

/* Cache file: magic, u32 key length, key, u64 binary length, binary, u32 crc32(binary). */
/* The first failed cache write of this process ("" if none), for one warning. */
static char cache_write_problem[512];

static int cache_load(const char *path, const char *key, unsigned char **bin, size_t *bin_len)
{
    char *data;
    size_t len;
    if (read_whole_file(path, &data, &len) != DC_OK) {
        dc_clear_error();
        return -1;
    }
    size_t klen = strlen(key), ml = strlen(CACHE_MAGIC), pos = 0;
    uint32_t kl;
    uint64_t bl;
    uint32_t crc;
    int ok = 0;
    if (len < ml + 4 || memcmp(data, CACHE_MAGIC, ml) != 0) goto done;
    pos = ml;
    memcpy(&kl, data + pos, 4);
    pos += 4;
    if (kl != klen || len - pos < klen || memcmp(data + pos, key, klen) != 0) goto done;
    pos += klen;
    if (len - pos < 8) goto done;
    memcpy(&bl, data + pos, 8);
    pos += 8;
    if (bl == 0 || len - pos < 4 || bl != len - pos - 4) goto done;
    memcpy(&crc, data + pos + bl, 4);
    if (crc != (uint32_t)crc32(0L, (const Bytef *)data + pos, (uInt)bl)) goto done;
    *bin = malloc(bl);
    if (!*bin) goto done;
    memcpy(*bin, data + pos, bl);
    *bin_len = bl;
    ok = 1;
done:
    free(data);
    return ok ? 0 : 1; /* 1: present but unusable */
}

static void cache_store(dc_device *dev, const char *path, const char *key, cl_program prog)
{
    size_t bl = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof bl, &bl, NULL) != CL_SUCCESS || !bl)
        return;
    unsigned char *bin = malloc(bl);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) {
        free(bin);
        return;
    }
    /* Atomic (fileio.h): a concurrent reader sees the old entry or the whole new one. */
    dc_atomic_file f;
    dc_status s = dc_atomic_begin(path, &f);
    if (s == DC_OK) {
        uint32_t kl = (uint32_t)strlen(key);
        uint64_t bl64 = bl;
        uint32_t crc = (uint32_t)crc32(0L, bin, (uInt)bl);
        int ok = fwrite(CACHE_MAGIC, strlen(CACHE_MAGIC), 1, f.fp) == 1 && fwrite(&kl, 4, 1, f.fp) == 1 &&
                 fwrite(key, kl, 1, f.fp) == 1 && fwrite(&bl64, 8, 1, f.fp) == 1 &&
                 fwrite(bin, bl, 1, f.fp) == 1 && fwrite(&crc, 4, 1, f.fp) == 1;
        if (!ok) {
            s = dc_fail(DC_ERR_IO, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
            dc_atomic_abort(&f);
        } else {
            s = dc_atomic_commit(&f);
        }
    }
    if (s == DC_OK) dev->stats.cache_writes++;
    else if (!cache_write_problem[0]) snprintf(cache_write_problem, sizeof cache_write_problem, "%s", dc_error_detail());
    dc_clear_error(); /* a cache that cannot be written only costs time */
    free(bin);
}

const char *dc_kernel_cache_write_problem(void) { return cache_write_problem; }

/* ---- build ------------------------------------------------------------------------------ */

static dc_build_observer build_observer;
static void *build_observer_ctx;

void dc_kernel_set_build_observer(dc_build_observer fn, void *ctx)
{
    build_observer = fn;
    build_observer_ctx = ctx;
}

static dc_status build_failure(cl_program prog, dc_device *dev, const char *file,
                               const char *options, cl_int err)
{
    size_t log_len = 0;
    clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len);
    char *log = malloc(log_len + 1);
    if (log) {
        log[0] = '\0';
        clGetProgramBuildInfo(prog, dev->id, CL_PROGRAM_BUILD_LOG, log_len + 1, log, NULL);
        log[log_len] = '\0';
    }
    dc_status s = dc_fail(DC_ERR_BUILD, "cl/%s: kernel build failed (%s) with options '%s'; build log:\n%s",
                          file, dc_cl_error_name(err), options, log ? log : "(no log)");
    free(log);
    return s;
}

static dc_status create_kernels(struct dc_program_entry *e, const char *file)
{
    cl_uint n = 0;
    DC_CL(clCreateKernelsInProgram(e->program, 0, NULL, &n), file);
    e->kernels = calloc(n ? n : 1, sizeof *e->kernels);
    e->names = calloc(n ? n : 1, sizeof *e->names);
    if (!e->kernels || !e->names) return dc_fail(DC_ERR_NOMEM, "out of memory");
    DC_CL(clCreateKernelsInProgram(e->program, n, e->kernels, NULL), file);
    e->nkernels = n;
    for (cl_uint i = 0; i < n; i++) {
        char name[256] = "";
        clGetKernelInfo(e->kernels[i], CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
        name[sizeof name - 1] = '\0';
        e->names[i] = strdup(name);
        if (!e->names[i]) return dc_fail(DC_ERR_NOMEM, "out of memory");
    }
    return DC_OK;
}

static void entry_free(struct dc_program_entry *e)
{
    if (!e) return;
    for (cl_uint i = 0; i < e->nkernels; i++) {
        if (e->kernels[i]) clReleaseKernel(e->kernels[i]);
        free(e->names[i]);
    }
    free(e->kernels);
    free(e->names);
    if (e->program) clReleaseProgram(e->program);
    free(e->file);
    free(e->options);
    free(e);
}

static dc_status build_entry(dc_device *dev, const char *file, const char *options,
                             struct dc_program_entry **out)
{
    char *source = NULL, *key = NULL;
    char full_opts[4096];
    /* -w: PoCL's compiler warns that float16 arguments of its own builtins change the ABI
     * without AVX-512, 68 lines on every cold start of an AVX2 machine; a failed build still
     * shows its whole log */
    snprintf(full_opts, sizeof full_opts, "-cl-std=CL1.2 -w %s", options);
    DC_TRY(dc_kernel_source(file, &source));

    struct dc_program_entry *e = calloc(1, sizeof *e);
    dc_status s = DC_OK;
    if (!e || !(e->file = strdup(file)) || !(e->options = strdup(options))) {
        s = dc_fail(DC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    key = make_key(dev, file, full_opts, source);
    if (!key) {
        s = dc_fail(DC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    char path[4096] = "";
    if (!cache_disabled() && !platform_caches_itself(dev)) cache_path(key, path, sizeof path);

    /* 1. A cached binary, if present and valid for exactly this key. */
    if (path[0]) {
        unsigned char *bin = NULL;
        size_t bl = 0;
        int r = cache_load(path, key, &bin, &bl);
        if (r == 0) {
            cl_int err, bstatus;
            const unsigned char *bins[1] = {bin};
            cl_program p = clCreateProgramWithBinary(dev->ctx, 1, &dev->id, &bl, bins, &bstatus, &err);
            if (err == CL_SUCCESS && bstatus == CL_SUCCESS &&
                clBuildProgram(p, 1, &dev->id, full_opts, NULL, NULL) == CL_SUCCESS) {
                e->program = p;
                if (create_kernels(e, file) == DC_OK) {
                    dev->stats.cache_loads++;
                    free(bin);
                    goto done;
                }
                dc_clear_error();
                for (cl_uint i = 0; i < e->nkernels; i++) {
                    clReleaseKernel(e->kernels[i]);
                    free(e->names[i]);
                }
                free(e->kernels);
                free(e->names);
                e->kernels = NULL;
                e->names = NULL;
                e->nkernels = 0;
                clReleaseProgram(p);
                e->program = NULL;
            } else if (p) {
                clReleaseProgram(p);
            }
            free(bin);
            dev->stats.cache_rejects++;
        } else if (r == 1) {
            dev->stats.cache_rejects++;
        }
    }

    /* 2. From source. */
    {
        cl_int err;
        const char *srcs[1] = {source};
        e->program = clCreateProgramWithSource(dev->ctx, 1, srcs, NULL, &err);
        if (err != CL_SUCCESS) {
            s = dc_cl_fail(err, file);
            goto fail;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        err = clBuildProgram(e->program, 1, &dev->id, full_opts, NULL, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (build_observer)
            build_observer(build_observer_ctx, file, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
        if (err != CL_SUCCESS) {
            s = build_failure(e->program, dev, file, full_opts, err);
            goto fail;
        }
        dev->stats.source_builds++;
        /* Create every kernel before saving the binary: some drivers finish code generation
         * for a kernel only when it is created. */
        s = create_kernels(e, file);
        if (s) goto fail;
        if (path[0]) cache_store(dev, path, key, e->program);
    }
done:
    free(source);
    free(key);
    *out = e;
    return DC_OK;
fail:
    free(source);
    free(key);
    entry_free(e);
    return s;
}

static dc_status find_or_build(dc_device *dev, const char *file, const char *options,
                               struct dc_program_entry **out)
{
    if (!options) options = "";
    if (is_merged(file, options)) file = MERGED_FILE;
    for (struct dc_program_entry *e = dev->programs; e; e = e->next) {
        if (strcmp(e->file, file) == 0 && strcmp(e->options, options) == 0) {
            dev->stats.memory_hits++;
            *out = e;
            return DC_OK;
        }
    }
    struct dc_program_entry *e;
    DC_TRY(build_entry(dev, file, options, &e));
    e->next = dev->programs;
    dev->programs = e;
    *out = e;
    return DC_OK;
}

dc_status dc_program_prepare(dc_device *dev, const char *file, const char *options)
{
    struct dc_program_entry *e;
    return find_or_build(dev, file, options, &e);
}

dc_status dc_kernel_get(dc_device *dev, const char *file, const char *options,
                        const char *kernel_name, cl_kernel *out)
{
    struct dc_program_entry *e;
    DC_TRY(find_or_build(dev, file, options, &e));
    for (cl_uint i = 0; i < e->nkernels; i++) {
        if (strcmp(e->names[i], kernel_name) == 0) {
            *out = e->kernels[i];
            return DC_OK;
        }
    }
    return dc_fail(DC_ERR_INVALID_ARG, "cl/%s: no kernel named '%s'", file, kernel_name);
}

void dc_programs_release(dc_device *dev)
{
    struct dc_program_entry *e = dev->programs;
    while (e) {
        struct dc_program_entry *next = e->next;
        entry_free(e);
        e = next;
    }
    dev->programs = NULL;
}

dc_status dc_launch(dc_device *dev, cl_kernel k, cl_uint dims, const size_t *global,
                    const size_t *local, const char *what)
{
    static const size_t default_local[3][3] = {{64, 1, 1}, {8, 8, 1}, {4, 4, 4}};
    if (dims < 1 || dims > 3) return dc_fail(DC_ERR_INVALID_ARG, "%s: bad work dimension %u", what, dims);
    size_t loc[3], glob[3];
    for (cl_uint i = 0; i < dims; i++) {
        if (global[i] == 0) return DC_OK; /* nothing to do */
        /* Without a local size the group is the default even for less work (the kernels that
         * take NULL check their bounds): PoCL generates a kernel's code once per local size, and
         * shrinking it to small sizes had a fill kernel compiled four times in a cold start. */
        loc[i] = local ? local[i] : default_local[dims - 1][i];
        glob[i] = (global[i] + loc[i] - 1) / loc[i] * loc[i];
    }
    DC_CL(clEnqueueNDRangeKernel(dev->queue, k, dims, NULL, glob, loc, 0, NULL, NULL), what);
    return DC_OK;
}
