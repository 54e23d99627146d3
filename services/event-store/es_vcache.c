/*
 * es_vcache.c - stream id -> version, an open-addressing hash table owned by
 * the committer thread (es_vcache.h). Never deletes one entry: a stale entry
 * is overwritten by the next commit that learns the truth, and a full table
 * is emptied at once.
 */
#include "es_vcache.h"

#include <stdlib.h>
#include <string.h>

#include "strhash.h"

typedef struct es_vslot {
    char *id; /* owned; NULL: free */
    int64_t version;
} es_vslot;

struct es_vcache {
    es_vslot *slots;
    size_t cap; /* a power of two; at most cap / 2 used */
    size_t used;
};

es_vcache *es_vcache_new(size_t cap)
{
    es_vcache *vc = calloc(1, sizeof *vc);
    if (!vc)
        return NULL;
    for (vc->cap = 16; vc->cap < cap * 2; vc->cap *= 2)
        ;
    vc->slots = calloc(vc->cap, sizeof *vc->slots);
    if (!vc->slots) {
        free(vc);
        return NULL;
    }
    return vc;
}

void es_vcache_clear(es_vcache *vc)
{
    for (size_t i = 0; i < vc->cap; i++) {
        free(vc->slots[i].id);
        vc->slots[i].id = NULL;
    }
    vc->used = 0;
}

void es_vcache_free(es_vcache *vc)
{
    if (!vc)
        return;
    es_vcache_clear(vc);
    free(vc->slots);
    free(vc);
}

/* The slot holding id, or the free slot where it would go. */
static es_vslot *es_vcache_slot(const es_vcache *vc, const char *id)
{
    size_t i = (size_t)strhash(id) & (vc->cap - 1);
    while (vc->slots[i].id && strcmp(vc->slots[i].id, id) != 0)
        i = (i + 1) & (vc->cap - 1);
    return &vc->slots[i];
}

int64_t es_vcache_get(const es_vcache *vc, const char *id)
{
    const es_vslot *s = es_vcache_slot(vc, id);
    return s->id ? s->version : 0;
}

void es_vcache_put(es_vcache *vc, const char *id, int64_t version)
{
    es_vslot *s = es_vcache_slot(vc, id);
    if (!s->id) {
        if (vc->used + 1 > vc->cap / 2) {
            es_vcache_clear(vc);
            s = es_vcache_slot(vc, id);
        }
        if (!(s->id = strdup(id)))
            return;
        vc->used++;
    }
    s->version = version;
}
