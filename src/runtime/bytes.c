/* Growable byte buffer (see daecl/bytes.h). */
#include "daecl/bytes.h"

#include <stdlib.h>
#include <string.h>

void dc_bytes_put(dc_bytes *b, const void *data, size_t n)
{
    if (b->oom || n == 0) return; /* memcpy from NULL is undefined even for 0 bytes */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}
