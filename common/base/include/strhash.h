/*
 * strhash.h - FNV-1a over strings: the hash of the small tables keyed by ids
 * and names (the caches, the metrics registry). Unseeded: for tables whose
 * size is bounded, not as a defence against chosen keys.
 */
#ifndef ESKIT_STRHASH_H
#define ESKIT_STRHASH_H

#include <stdint.h>

#define STRHASH_INIT 1469598103934665603ULL

static inline uint64_t strhash_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * 1099511628211ULL;
}

/* Continues h over the bytes of s (without its NUL). */
static inline uint64_t strhash_more(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = strhash_byte(h, (unsigned char)*s);
    return h;
}

static inline uint64_t strhash(const char *s)
{
    return strhash_more(STRHASH_INIT, s);
}

#endif
