/*
 * crud_replay.h - a document's state at a version, rebuilt from its stream:
 * T.Created sets the document, T.Updated applies its merge patch, T.Deleted
 * marks it deleted; other event names are skipped.
 *
 * The cost of a read does not grow with the history: the newest state of each
 * stream is kept in the process cache (crud_cache), and states are saved as
 * event-store snapshots when a replay had to apply many events and every
 * CRUD_SNAPSHOT_EVERY versions written. A replay starts from the nearest of
 * the cached state and the newest snapshot at or below the wanted version,
 * and fetches only the events after it.
 *
 * Invariant: a stream's entity type never changes, and every caller has
 * checked it equals `type` before calling, so a cache entry, keyed by stream
 * id alone, was built with the same type.
 */
#ifndef CRUD_REPLAY_H
#define CRUD_REPLAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "crud_app.h"
#include "validate.h"

/* Replays applying more events than this save a snapshot afterwards. */
#define CRUD_SNAPSHOT_AFTER 50
/* Writes through this process save a snapshot at every multiple of this. */
#define CRUD_SNAPSHOT_EVERY 100

/* Room for "<entity type>.<event name>" (the event store's limit is 200). */
#define CRUD_EVENT_TYPE_MAX (VALIDATE_TYPE_MAX + 1)

/* A document's state at a version of its stream. */
typedef struct crud_doc {
    int64_t version; /* the stream version the state is at */
    bool exists;     /* a Created event was seen */
    bool deleted;    /* a Deleted event followed it */
    char *text;      /* the document as compact JSON ("null" when !exists); owned */
    size_t len;
} crud_doc;

/* Frees d->text and resets it. */
void crud_doc_free(crud_doc *d);

/* The document as a new jansson value (the caller decrefs); NULL with e set
 * (internal) when it cannot be parsed or memory runs out. */
json_t *crud_doc_json(const crud_doc *d, err *e) WUR;

/* Writes "<type>.<name>" into out; false when it would pass the event
 * store's 200-character limit for event types. */
bool crud_event_type(char out[CRUD_EVENT_TYPE_MAX], const char *type, const char *name) WUR;

/* The state of stream `id` (of entity type `type`) at `version`, which the
 * caller knows is between 1 and the stream's last version. `latest` is the
 * cache mark taken before the event store said `version` is the last (NULL
 * when it is not known to be). On success *out is filled (free it with
 * crud_doc_free). False with e set otherwise (unavailable when the event
 * store cannot be reached; gone when the stream was erased, or when its
 * retention deleted the events that `version` is made of and no snapshot
 * covers them). */
bool crud_replay_at(crud_app *app, const char *id, const char *type, int64_t version,
                    const crud_cache_mark *latest, crud_doc *out, err *e) WUR;

/* The state of stream `id` at its last version, as of a moment after the
 * call began (crud_sync.h): from the cache when its entry is still the last,
 * else from the event store. *found is false (and the call succeeds) when
 * the stream does not exist or is of another entity type than `type`.
 * An erased stream is e = gone (and leaves the cache). */
bool crud_replay_latest(crud_app *app, const char *id, const char *type, crud_doc *out,
                        bool *found, err *e) WUR;

/* After this process appended the event at `version`: remembers the state
 * it produced (`doc` is borrowed), and saves a snapshot every
 * CRUD_SNAPSHOT_EVERY versions. `latest` is the cache mark taken before the
 * append. Best effort: failures are only logged. */
void crud_replay_remember(crud_app *app, const char *id, const char *type, int64_t version,
                          bool deleted, const json_t *doc, const crud_cache_mark *latest);

#endif
