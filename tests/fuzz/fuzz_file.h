/* libFuzzer helpers for the parsers that take a path: each input is written to one scratch file
 * per process (on /dev/shm when there is one, so no disk I/O), which the target then reads. */
#ifndef DAECL_FUZZ_FILE_H
#define DAECL_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *fuzz_file_write(const uint8_t *data, size_t size)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path, sizeof path, "%s/daecl-fuzz-%ld", dir, (long)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort(); /* the harness itself is broken: let libFuzzer say so */
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

#endif
