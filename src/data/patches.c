/* Patch sampling (see daecl/patches.h). */
#include "daecl/patches.h"

#include <string.h>

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, range), range >= 1, by rejection of the top partial block. */
static uint64_t below(uint64_t *s, uint64_t range)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % range, r;
    do r = next(s);
    while (r >= limit);
    return r % range;
}

void dc_patch_draw(const dc_imageset *set, int size, int augment, uint64_t seed, uint32_t epoch, uint32_t index,
                   dc_patch *out)
{
    uint64_t s = seed, k = ((uint64_t)epoch << 32 | index) ^ 0x243F6A8885A308D3ull;
    s = next(&s) ^ next(&k); /* the state keyed by (seed, epoch, index) */
    uint64_t r = below(&s, set->cum_area[set->n - 1]);
    size_t lo = 0, hi = set->n - 1; /* first i with cum_area[i] > r */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->cum_area[mid] > r) hi = mid;
        else lo = mid + 1;
    }
    out->image = (uint32_t)lo;
    out->x = (int)below(&s, (uint64_t)(set->w[lo] - size + 1));
    out->y = (int)below(&s, (uint64_t)(set->h[lo] - size + 1));
    out->transform = augment ? (int)(next(&s) >> 61) : 0;
}

void dc_patch_copy(const dc_imageset *set, int size, const dc_patch *p, void *dst)
{
    const int w = set->w[p->image], h = set->h[p->image], depth = set->depth, t = p->transform;
    const char *img = (const char *)set->pixels + set->offset[p->image] * (size_t)depth;
    char *out = dst;
    for (int c = 0; c < set->c; c++) {
        const char *plane = img + (size_t)c * w * h * depth;
        char *oplane = out + (size_t)c * size * size * depth;
        if (t == 0) { /* rows as stored: the common, fast case */
            for (int i = 0; i < size; i++)
                memcpy(oplane + (size_t)i * size * depth, plane + ((size_t)(p->y + i) * w + p->x) * depth,
                       (size_t)size * depth);
            continue;
        }
        /* typed copies: a memcpy per value of a run-time size costs a call each */
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++) {
                int si = t & 4 ? j : i, sj = t & 4 ? i : j;
                if (t & 1) sj = size - 1 - sj;
                if (t & 2) si = size - 1 - si;
                size_t from = (size_t)(p->y + si) * w + p->x + sj, to = (size_t)i * size + j;
                if (depth == 2) ((uint16_t *)oplane)[to] = ((const uint16_t *)plane)[from];
                else ((uint8_t *)oplane)[to] = ((const uint8_t *)plane)[from];
            }
    }
}
