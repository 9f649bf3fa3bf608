/* Safe file access: regular files only when reading, atomic replacement when writing (see
 * fileio.h). */
#include "daecl/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_name(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISLNK(m)) return "a symlink";
    return "not a regular file";
}

/* ---- reading ------------------------------------------------------------------------------- */

dc_status dc_open_regular(const char *path, const char *what, int *fd, long long *size)
{
    *fd = -1;
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "empty file name");
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) return dc_fail(DC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return dc_fail(DC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return dc_fail(DC_ERR_IO, "%s: is %s, expected %s", path, kind_name(st.st_mode),
                       what ? what : "a regular file");
    }
    int flags = fcntl(f, F_GETFL);
    if (flags >= 0) (void)fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
    *fd = f;
    if (size) *size = (long long)st.st_size;
    return DC_OK;
}

dc_status dc_fopen_regular(const char *path, const char *what, FILE **fp, long long *size)
{
    int fd;
    *fp = NULL;
    DC_TRY(dc_open_regular(path, what, &fd, size));
    *fp = fdopen(fd, "rb");
    if (!*fp) {
        close(fd);
        return dc_fail(DC_ERR_NOMEM, "%s: cannot open a stream: out of memory", path);
    }
    return DC_OK;
}

/* ---- temporaries in flight ----------------------------------------------------------------- */

/* A few fixed slots a signal handler can walk without locks or allocation. A slot's name is
 * written before `used` is set, and `used` cleared before the name is reused. */
#define INFLIGHT_SLOTS 8
static char inflight_name[INFLIGHT_SLOTS][PATH_MAX];
static volatile sig_atomic_t inflight_used[INFLIGHT_SLOTS];

static int inflight_add(const char *tmp)
{
    if (strlen(tmp) >= PATH_MAX) return -1;
    for (int i = 0; i < INFLIGHT_SLOTS; i++)
        if (!inflight_used[i]) {
            strcpy(inflight_name[i], tmp);
            inflight_used[i] = 1;
            return i;
        }
    return -1;
}

static void inflight_drop(int slot)
{
    if (slot >= 0) inflight_used[slot] = 0;
}

void dc_atomic_remove_inflight(void)
{
    for (int i = 0; i < INFLIGHT_SLOTS; i++)
        if (inflight_used[i]) unlink(inflight_name[i]);
}

/* ---- writing ------------------------------------------------------------------------------- */

/* The file to replace: path itself, or a symlink's final target. NULL with a detail if path
 * may not be an output. */
static char *output_target(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return strdup(path); /* a new file */
        dc_fail(DC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISREG(st.st_mode)) return strdup(path);
    if (S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real) {
            dc_fail(DC_ERR_IO, "%s: is a symlink whose target cannot be resolved (%s); refusing to replace it",
                    path, strerror(errno));
            return NULL;
        }
        if (stat(real, &st) == 0 && S_ISREG(st.st_mode)) return real;
        dc_fail(DC_ERR_IO, "%s: is a symlink to %s (%s); refusing to replace it", path, real,
                kind_name(st.st_mode));
        free(real);
        return NULL;
    }
    dc_fail(DC_ERR_IO, "%s: exists and is %s; refusing to replace it with a regular file", path,
            kind_name(st.st_mode));
    return NULL;
}

dc_status dc_check_output_path(const char *path)
{
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "empty output file name");
    char *t = output_target(path);
    if (!t) return DC_ERR_IO;
    free(t);
    return DC_OK;
}

dc_status dc_atomic_begin(const char *path, dc_atomic_file *f)
{
    *f = (dc_atomic_file){.slot = -1};
    if (!path || !*path) return dc_fail(DC_ERR_INVALID_ARG, "empty output file name");
    f->target = output_target(path);
    if (!f->target) return DC_ERR_IO;
    size_t n = strlen(f->target) + 32;
    f->tmp = malloc(n);
    if (!f->tmp) {
        dc_atomic_abort(f);
        return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp, n, "%s.tmp.%ld", f->target, (long)getpid());
    f->slot = inflight_add(f->tmp);
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        /* O_EXCL: never write through a symlink or into someone else's file planted at the
         * temporary's name; a leftover of ours (same pid, an earlier crash) is removed once. */
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno == EEXIST && attempt == 0) unlink(f->tmp);
        else if (fd < 0) break;
    }
    if (fd < 0) {
        int e = errno;
        inflight_drop(f->slot);
        f->slot = -1;
        free(f->tmp);
        f->tmp = NULL;
        dc_atomic_abort(f);
        return dc_fail(DC_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        close(fd);
        dc_atomic_abort(f);
        return dc_fail(DC_ERR_NOMEM, "%s: out of memory", path);
    }
    return DC_OK;
}

void dc_atomic_abort(dc_atomic_file *f)
{
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    inflight_drop(f->slot);
    free(f->tmp);
    free(f->target);
    *f = (dc_atomic_file){.slot = -1};
}

/* Best effort: make the rename itself durable. */
static void fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

dc_status dc_atomic_commit(dc_atomic_file *f)
{
    dc_status s = DC_OK;
    const char *name = f->target;
    if (fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0)
        s = dc_fail(DC_ERR_IO, "%s: write failed: %s", name, strerror(errno ? errno : EIO));
    int e = fclose(f->fp) != 0 ? errno : 0;
    f->fp = NULL;
    if (s == DC_OK && e) s = dc_fail(DC_ERR_IO, "%s: write failed: %s", name, strerror(e));
    if (s == DC_OK && rename(f->tmp, f->target) != 0)
        s = dc_fail(DC_ERR_IO, "%s: cannot rename the temporary file into place: %s", name, strerror(errno));
    if (s == DC_OK) {
        inflight_drop(f->slot);
        f->slot = -1;
        free(f->tmp);
        f->tmp = NULL;
        fsync_parent_dir(f->target);
    }
    dc_atomic_abort(f); /* removes the temporary if it is still there */
    return s;
}

dc_status dc_write_file_atomic(const char *path, const void *data, size_t size)
{
    dc_atomic_file f;
    DC_TRY(dc_atomic_begin(path, &f));
    if (size && fwrite(data, 1, size, f.fp) != size) {
        dc_status s = dc_fail(DC_ERR_IO, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
        dc_atomic_abort(&f);
        return s;
    }
    return dc_atomic_commit(&f);
}
