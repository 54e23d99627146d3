/*
 * crud_state.h - the state fold of a CRUD document: what the events of its
 * stream, applied in version order, make of it (crud_replay.c drives it over
 * the events it fetches). Pure: no I/O, no cache.
 *
 * For entity type T: T.Created sets the whole document and clears a deletion
 * (a deleted document created again lives again, with none of its old
 * members); T.Updated applies its JSON Merge Patch (RFC 7386, mpatch.h) to a
 * document that exists, and is skipped before any Created; T.Deleted marks a
 * document that exists as deleted and keeps its last content; any other
 * event name changes nothing. The fold does not count versions: the caller
 * sets `version` as it goes.
 */
#ifndef CRUD_STATE_H
#define CRUD_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* The snapshot payload format; a snapshot in another format is ignored. */
#define CRUD_SNAPSHOT_FORMAT 1

/* A document's state as it is rebuilt. Zero is the state before any event. */
typedef struct crud_state {
    int64_t version;
    bool exists, deleted;
    json_t *doc; /* owned; NULL while !exists */
} crud_state;

/* Loads a state from a snapshot payload ({"format": CRUD_SNAPSHOT_FORMAT,
 * "exists": true, "deleted": bool, "document": ...}) at `version`; false,
 * leaving *s as it was, when it is not ours. */
bool crud_state_from_snapshot(crud_state *s, int64_t version, const json_t *p) WUR;

/* Applies one event (a member of the event store's answer: its event_type
 * and payload) given the full names of T.Created, T.Updated and T.Deleted.
 * False with e set (internal) when the event lacks its type or payload, or
 * memory runs out; *s is then as before. */
bool crud_state_apply(crud_state *s, const json_t *ev, const char *created,
                      const char *updated, const char *deleted, err *e) WUR;

#endif
