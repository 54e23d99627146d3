/*
 * crud_cache.h - the CRUD store's in-process document cache: per stream id,
 * the newest state the process has seen (a version, flags and the document
 * as compact JSON text), bounded in entries and bytes, least recently used
 * evicted first. Thread-safe (one mutex).
 *
 * A stream's version never changes meaning (events are immutable), so an
 * entry is never stale: the state at (id, version) is true forever. A reader
 * that needs a later version replays only the events after the cached one.
 * An entry is only replaced by a newer version.
 */
#ifndef CRUD_CACHE_H
#define CRUD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct crud_cache crud_cache;

/* State flags. */
#define CRUD_CACHE_EXISTS 1u  /* a Created event has been seen */
#define CRUD_CACHE_DELETED 2u /* a Deleted event followed it */

typedef struct crud_cache_entry {
    int64_t version;
    unsigned flags;
    char *text; /* the document, compact JSON ("null" when it does not exist); owned */
    size_t len;
} crud_cache_entry;

/* NULL on OOM. */
crud_cache *crud_cache_new(size_t max_entries, size_t max_bytes) WUR;
void crud_cache_free(crud_cache *c);

/* Copies the newest cached state of `id` into *out (the caller frees
 * out->text). False when absent (or on OOM). Marks the entry recently used. */
bool crud_cache_get(crud_cache *c, const char *id, crud_cache_entry *out) WUR;

/* Remembers the state of `id` at `version` (the text is copied), unless an
 * entry at this or a newer version is already there. Documents too large
 * for the cache are skipped; memory exhaustion only skips the entry. */
void crud_cache_put(crud_cache *c, const char *id, int64_t version, unsigned flags,
                    const char *text, size_t len);

/* Current size, for the metrics. */
void crud_cache_stats(crud_cache *c, size_t *entries, size_t *bytes);

#endif
