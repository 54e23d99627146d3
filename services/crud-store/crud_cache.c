/*
 * crud_cache.c - a bounded LRU map from stream id to its newest known state
 * (see crud_cache.h): chained hash buckets (FNV-1a of the id) plus one
 * doubly linked recency list, all under one mutex. Copies go in and out, so
 * no caller ever holds a pointer into the cache. The log position, the epoch
 * and each entry's coverage live under the same mutex, so "is this entry
 * fresh" is answered atomically with reading it.
 */
#include "crud_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "strhash.h"

typedef struct crud_cache_node {
    struct crud_cache_node *chain;      /* next in the bucket */
    struct crud_cache_node *prev, *next; /* recency list: head = most recent */
    char *id;                            /* owned */
    crud_cache_entry e;                  /* e.text owned; e.fresh unused */
    size_t bytes;                        /* accounted size */
    bool covered;                        /* see crud_cache.h, valid while epoch matches */
    uint64_t epoch;
    int64_t seen; /* the highest version of the stream seen in the log */
} crud_cache_node;

struct crud_cache {
    pthread_mutex_t mu;
    crud_cache_node **buckets;
    size_t nbuckets; /* a power of two */
    crud_cache_node *head, *tail;
    size_t entries, bytes;
    size_t max_entries, max_bytes;
    int64_t position; /* the last log id seen */
    uint64_t epoch;   /* bumped when log entries were skipped */
};

crud_cache *crud_cache_new(size_t max_entries, size_t max_bytes)
{
    crud_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->nbuckets = 64;
    while (c->nbuckets < max_entries && c->nbuckets < ((size_t)1 << 24))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->max_entries = max_entries ? max_entries : 1;
    c->max_bytes = max_bytes;
    c->epoch = 1;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void crud_cache_node_free(crud_cache_node *n)
{
    free(n->id);
    free(n->e.text);
    free(n);
}

void crud_cache_free(crud_cache *c)
{
    if (!c)
        return;
    crud_cache_node *n = c->head;
    while (n) {
        crud_cache_node *next = n->next;
        crud_cache_node_free(n);
        n = next;
    }
    pthread_mutex_destroy(&c->mu);
    free(c->buckets);
    free(c);
}

static size_t crud_cache_hash(const char *s)
{
    return (size_t)strhash(s);
}

/* The bucket slot that holds (or would hold) id. Under the lock. */
static crud_cache_node **crud_cache_slot(crud_cache *c, const char *id)
{
    crud_cache_node **p = &c->buckets[crud_cache_hash(id) & (c->nbuckets - 1)];
    while (*p && strcmp((*p)->id, id) != 0)
        p = &(*p)->chain;
    return p;
}

static void crud_cache_unlink(crud_cache *c, crud_cache_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        c->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        c->tail = n->prev;
    n->prev = n->next = NULL;
}

static void crud_cache_push_front(crud_cache *c, crud_cache_node *n)
{
    n->prev = NULL;
    n->next = c->head;
    if (c->head)
        c->head->prev = n;
    c->head = n;
    if (!c->tail)
        c->tail = n;
}

/* Removes a node from both structures and frees it. Under the lock. */
static void crud_cache_drop(crud_cache *c, crud_cache_node *n)
{
    crud_cache_node **p = crud_cache_slot(c, n->id);
    if (*p == n)
        *p = n->chain;
    crud_cache_unlink(c, n);
    c->entries--;
    c->bytes -= n->bytes;
    crud_cache_node_free(n);
}

/* Under the lock. */
static bool crud_cache_node_covered(const crud_cache *c, const crud_cache_node *n)
{
    return n->covered && n->epoch == c->epoch;
}

/* Under the lock: nothing was applied since the mark was taken. */
static bool crud_cache_mark_current(const crud_cache *c, const crud_cache_mark *m)
{
    return m && m->position == c->position && m->epoch == c->epoch;
}

static void crud_cache_cover(crud_cache *c, crud_cache_node *n)
{
    n->covered = true;
    n->epoch = c->epoch;
}

bool crud_cache_get(crud_cache *c, const char *id, crud_cache_entry *out)
{
    bool found = false;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->mu);
    crud_cache_node *n = *crud_cache_slot(c, id);
    if (n) {
        char *copy = malloc(n->e.len + 1);
        if (copy) {
            memcpy(copy, n->e.text, n->e.len + 1);
            *out = n->e;
            out->text = copy;
            out->fresh = crud_cache_node_covered(c, n) && n->e.version >= n->seen;
            found = true;
            crud_cache_unlink(c, n);
            crud_cache_push_front(c, n);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

bool crud_cache_covered(crud_cache *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    crud_cache_node *n = *crud_cache_slot(c, id);
    bool covered = n && crud_cache_node_covered(c, n);
    pthread_mutex_unlock(&c->mu);
    return covered;
}

void crud_cache_put(crud_cache *c, const char *id, const char *type, int64_t version,
                    unsigned flags, const char *text, size_t len, const crud_cache_mark *latest)
{
    size_t tl = strlen(type);
    size_t bytes = len + strlen(id) + sizeof(crud_cache_node) + 2;
    if (bytes > c->max_bytes / 4 || tl > VALIDATE_TYPE_MAX)
        return; /* one huge document must not flush everything else */
    crud_cache_node *n = calloc(1, sizeof *n);
    if (!n)
        return;
    n->id = strdup(id);
    n->e.text = malloc(len + 1);
    if (!n->id || !n->e.text) {
        crud_cache_node_free(n);
        return;
    }
    memcpy(n->e.type, type, tl + 1);
    memcpy(n->e.text, text, len);
    n->e.text[len] = '\0';
    n->e.len = len;
    n->e.version = version;
    n->e.flags = flags;
    n->bytes = bytes;

    pthread_mutex_lock(&c->mu);
    crud_cache_node **p = crud_cache_slot(c, id);
    crud_cache_node *old = *p;
    if (old && old->e.version >= version) {
        if (old->e.version == version && crud_cache_mark_current(c, latest))
            crud_cache_cover(c, old);
        pthread_mutex_unlock(&c->mu);
        crud_cache_node_free(n);
        return;
    }
    /* A covered entry stays covered whatever version it holds: its `seen`
     * already accounts for every later event. A new one needs the mark. */
    if (old) {
        n->covered = old->covered;
        n->epoch = old->epoch;
        n->seen = old->seen;
        crud_cache_drop(c, old);
    }
    if (!crud_cache_node_covered(c, n) && crud_cache_mark_current(c, latest))
        crud_cache_cover(c, n);
    p = crud_cache_slot(c, id);
    *p = n;
    crud_cache_push_front(c, n);
    c->entries++;
    c->bytes += bytes;
    while (c->tail && c->tail != n &&
           (c->entries > c->max_entries || c->bytes > c->max_bytes))
        crud_cache_drop(c, c->tail);
    pthread_mutex_unlock(&c->mu);
}

void crud_cache_confirm(crud_cache *c, const char *id, int64_t version,
                        const crud_cache_mark *latest)
{
    pthread_mutex_lock(&c->mu);
    crud_cache_node *n = *crud_cache_slot(c, id);
    if (n && n->e.version == version && crud_cache_mark_current(c, latest))
        crud_cache_cover(c, n);
    pthread_mutex_unlock(&c->mu);
}

crud_cache_mark crud_cache_mark_now(crud_cache *c)
{
    pthread_mutex_lock(&c->mu);
    crud_cache_mark m = {c->position, c->epoch};
    pthread_mutex_unlock(&c->mu);
    return m;
}

/* Under the lock. */
static void crud_cache_skip_locked(crud_cache *c, int64_t position)
{
    c->epoch++;
    c->position = position;
}

void crud_cache_advance(crud_cache *c, int64_t from, const crud_cache_seen *seen, size_t n,
                        int64_t position)
{
    pthread_mutex_lock(&c->mu);
    if (c->position != from) {
        crud_cache_skip_locked(c, position);
    } else {
        for (size_t i = 0; i < n; i++) {
            crud_cache_node *node = *crud_cache_slot(c, seen[i].id);
            if (node && seen[i].version > node->seen)
                node->seen = seen[i].version;
        }
        c->position = position;
    }
    pthread_mutex_unlock(&c->mu);
}

void crud_cache_skip_to(crud_cache *c, int64_t position)
{
    pthread_mutex_lock(&c->mu);
    crud_cache_skip_locked(c, position);
    pthread_mutex_unlock(&c->mu);
}

void crud_cache_reset(crud_cache *c, int64_t position)
{
    pthread_mutex_lock(&c->mu);
    while (c->tail)
        crud_cache_drop(c, c->tail);
    crud_cache_skip_locked(c, position);
    pthread_mutex_unlock(&c->mu);
}

void crud_cache_stats(crud_cache *c, size_t *entries, size_t *bytes)
{
    pthread_mutex_lock(&c->mu);
    *entries = c->entries;
    *bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}

void crud_cache_forget(crud_cache *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    crud_cache_node *n = *crud_cache_slot(c, id);
    if (n)
        crud_cache_drop(c, n);
    pthread_mutex_unlock(&c->mu);
}
