/*
 * crud_cache.h - the CRUD store's in-process document cache: per stream id,
 * the newest state the process has seen (entity type, version, flags and the
 * document as compact JSON text), bounded in entries and bytes, least
 * recently used evicted first. Thread-safe (one mutex).
 *
 * A stream's version never changes meaning (events are immutable), so the
 * state at (id, version) is true forever; a reader that needs a later version
 * replays only the events after the cached one. An entry is only replaced by
 * a newer version.
 *
 * Whether an entry is still the *newest* version is a separate question,
 * answered with the log (crud_sync.c feeds it every log entry in order):
 *   - the cache's `position` is the last log id whose entry it has seen;
 *   - an entry is "covered" when its version was the stream's last as of some
 *     position P and every log entry after P has been seen while the entry
 *     was in the cache: each seen entry raises the entry's `seen` version;
 *   - a covered entry is fresh when its version >= seen: no later event of
 *     the stream is in the log up to `position`.
 * A caller that learns "version V is the last" from the event store takes a
 * mark (the position) *before* asking, and the put covers the entry only if
 * no log entry was applied in between. When the log cannot be followed
 * entry by entry (too far behind), crud_cache_skip_to() uncovers every entry
 * at once (an epoch); entries are covered again by later reads.
 */
#ifndef CRUD_CACHE_H
#define CRUD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "validate.h"

typedef struct crud_cache crud_cache;

/* State flags. */
#define CRUD_CACHE_EXISTS 1u  /* a Created event has been seen */
#define CRUD_CACHE_DELETED 2u /* a Deleted event followed it */

typedef struct crud_cache_entry {
    char type[VALIDATE_TYPE_MAX + 1]; /* the stream's entity type */
    int64_t version;
    unsigned flags;
    bool fresh; /* covered, and no later version of the stream in the log seen so far */
    char *text; /* the document, compact JSON ("null" when it does not exist); owned */
    size_t len;
} crud_cache_entry;

/* Where the cache stood in the log when a caller asked the event store. */
typedef struct crud_cache_mark {
    int64_t position;
    uint64_t epoch;
} crud_cache_mark;

/* One log entry as the cache needs it. */
typedef struct crud_cache_seen {
    const char *id; /* originator id */
    int64_t version;
} crud_cache_seen;

/* NULL on OOM. */
crud_cache *crud_cache_new(size_t max_entries, size_t max_bytes) WUR;
void crud_cache_free(crud_cache *c);

/* Copies the newest cached state of `id` into *out (the caller frees
 * out->text). False when absent (or on OOM). Marks the entry recently used. */
bool crud_cache_get(crud_cache *c, const char *id, crud_cache_entry *out) WUR;

/* True when `id` has an entry that a log catch-up could make fresh (it is
 * covered): worth waiting for the log before asking the event store. */
bool crud_cache_covered(crud_cache *c, const char *id);

/* Remembers the state of `id` (a stream of entity type `type`) at `version`
 * (the text is copied), unless an entry at a newer version is already there.
 * `latest` is the mark taken before the event store said `version` was the
 * stream's last; NULL when the caller does not know that. Documents too
 * large for the cache are skipped; memory exhaustion only skips the entry. */
void crud_cache_put(crud_cache *c, const char *id, const char *type, int64_t version,
                    unsigned flags, const char *text, size_t len,
                    const crud_cache_mark *latest);

/* The event store said the cached `version` of `id` is the last, as of
 * `latest`: covers the entry if no log entry was applied since the mark. */
void crud_cache_confirm(crud_cache *c, const char *id, int64_t version,
                        const crud_cache_mark *latest);

/* The current position in the log, to take before asking the event store. */
crud_cache_mark crud_cache_mark_now(crud_cache *c);

/* Sees the log entries after position `from` up to `position`, in order.
 * When the cache is no longer at `from` (another caller moved it), it
 * cannot tell which of them it saw: it skips to `position` instead. */
void crud_cache_advance(crud_cache *c, int64_t from, const crud_cache_seen *seen, size_t n,
                        int64_t position);

/* Moves to `position` without seeing the entries in between (the log ran too
 * far ahead): every entry stops being covered. */
void crud_cache_skip_to(crud_cache *c, int64_t position);

/* Forgets every entry and moves to `position`: the log went back, so the
 * event store is on another database, where (id, version) may name another
 * state. */
void crud_cache_reset(crud_cache *c, int64_t position);

/* Drops the entry of `id`, if any, with its document (after the stream's
 * erasure): the cache keeps nothing of it. */
void crud_cache_forget(crud_cache *c, const char *id);

/* Current size, for the metrics. */
void crud_cache_stats(crud_cache *c, size_t *entries, size_t *bytes);

#endif
