/*
 * crud_cache.c - a bounded LRU map from stream id to its newest known state
 * (see crud_cache.h): chained hash buckets (FNV-1a of the id) plus one
 * doubly linked recency list, all under one mutex. Copies go in and out, so
 * no caller ever holds a pointer into the cache.
 */
#include "crud_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct crud_cache_node {
    struct crud_cache_node *chain;      /* next in the bucket */
    struct crud_cache_node *prev, *next; /* recency list: head = most recent */
    char *id;                            /* owned */
    crud_cache_entry e;                  /* e.text owned */
    size_t bytes;                        /* accounted size */
} crud_cache_node;

struct crud_cache {
    pthread_mutex_t mu;
    crud_cache_node **buckets;
    size_t nbuckets; /* a power of two */
    crud_cache_node *head, *tail;
    size_t entries, bytes;
    size_t max_entries, max_bytes;
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
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
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
            found = true;
            crud_cache_unlink(c, n);
            crud_cache_push_front(c, n);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

void crud_cache_put(crud_cache *c, const char *id, int64_t version, unsigned flags,
                    const char *text, size_t len)
{
    size_t bytes = len + strlen(id) + sizeof(crud_cache_node) + 2;
    if (bytes > c->max_bytes / 4)
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
    memcpy(n->e.text, text, len);
    n->e.text[len] = '\0';
    n->e.len = len;
    n->e.version = version;
    n->e.flags = flags;
    n->bytes = bytes;

    pthread_mutex_lock(&c->mu);
    crud_cache_node **p = crud_cache_slot(c, id);
    if (*p && (*p)->e.version >= version) {
        pthread_mutex_unlock(&c->mu);
        crud_cache_node_free(n);
        return;
    }
    if (*p)
        crud_cache_drop(c, *p);
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

void crud_cache_stats(crud_cache *c, size_t *entries, size_t *bytes)
{
    pthread_mutex_lock(&c->mu);
    *entries = c->entries;
    *bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
