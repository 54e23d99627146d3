/*
 * crud_entity.h - the document operations of /v1/entities: read, create,
 * replace, merge-patch, delete (crud_entity.c), list and history
 * (crud_list.c), and the rendering of an entity.
 *
 * A document of entity type T with id I is the event-store stream I (whose
 * entity type must be T) holding T.Created (the whole document), T.Updated
 * (the merge patch from the previous document) and T.Deleted ({}). Every
 * write appends exactly one event at the version after the one it read, so
 * the event store's optimistic concurrency decides races: the loser gets a
 * conflict and nothing is written.
 *
 * Errors: not_found when the document never existed, is of another type, is
 * deleted or lacks the version asked for; conflict for stale versions and
 * races lost by a write that named its version (PUT, If-Match);
 * invalid_argument for documents refused by the type's schema; unavailable
 * when the event store cannot be reached, or when a PATCH or DELETE without
 * If-Match lost its race again and again (it is retried meanwhile).
 */
#ifndef CRUD_ENTITY_H
#define CRUD_ENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "crud_app.h"
#include "crud_key.h"
#include "crud_replay.h"

/* The document at `version` (0: the latest). A deleted document is
 * returned (out->deleted set) only when with_deleted; it then carries the
 * last document before the deletion. Free *out with crud_doc_free. */
bool crud_entity_read(crud_app *app, const char *type, const char *id, int64_t version,
                      bool with_deleted, crud_doc *out, err *e) WUR;

/*
 * The writes below take `key`: NULL, or the Idempotency-Key of the request,
 * whose record is then appended in the same batch as the document event
 * (crud_key.h). A keyed write that finds the key's events stored already
 * fails with conflict and details.event_id (and does not retry): its caller
 * looks the key up and answers as the first request did.
 */

/* Appends T.Created at version 1. `id` NULL: a new UUID v4 (for a keyed
 * write, the id derived from the key). The id used is written into out_id. */
bool crud_entity_create(crud_app *app, const char *type, const char *id, const json_t *payload,
                        const crud_key *key, char out_id[VALIDATE_ID_MAX + 1], err *e) WUR;

/* Replaces the document read at `version` (which must still be the last)
 * with `payload`; *new_version receives version + 1. */
bool crud_entity_put(crud_app *app, const char *type, const char *id, int64_t version,
                     const json_t *payload, const crud_key *key, int64_t *new_version,
                     err *e) WUR;

/* Applies a merge patch to the last version (if_match > 0: which must be
 * if_match). Without if_match a lost race is retried on the new last
 * version, with a short random pause, up to CRUD_WRITE_ATTEMPTS times (then
 * unavailable). *out receives the new state (free with crud_doc_free). */
bool crud_entity_patch(crud_app *app, const char *type, const char *id, const json_t *patch,
                       int64_t if_match, const crud_key *key, crud_doc *out, err *e) WUR;

/* Appends T.Deleted (if_match > 0: only at that last version; without it a
 * lost race is retried like a PATCH's). *new_version receives the Deleted
 * event's version. */
bool crud_entity_delete(crud_app *app, const char *type, const char *id, int64_t if_match,
                        const crud_key *key, int64_t *new_version, err *e) WUR;

/* Erases the document (SPEC §4 erase=true): the event store erases its
 * stream, with every version, whether or not it was deleted before
 * (if_match > 0: only at that last version, else conflict); the cache
 * forgets it at once (every replica's follows the log's Erased entry).
 * not_found when it never existed or is of another type; gone when it was
 * erased already. */
bool crud_entity_erase(crud_app *app, const char *type, const char *id, int64_t if_match,
                       err *e) WUR;

/* One page of live documents, rendered as {"results": [...],
 * "next_page_token": ...} into `out`. `token` NULL: the first page; a
 * malformed token is invalid_argument. */
bool crud_entity_list(crud_app *app, const char *type, int64_t limit, const char *token,
                      bool skip_payload, buf *out, err *e) WUR;

/* The CRUD events of a document from `from` (at most `limit`), as a new
 * {"entity_type", "id", "versions": [...]} object (the caller decrefs). */
json_t *crud_entity_history(crud_app *app, const char *type, const char *id, int64_t from,
                            int64_t limit, err *e) WUR;

/* Appends an entity ({"entity_type", "originator", "payload", "deleted"})
 * as JSON text; the payload is left out when with_payload is false.
 * 0, or -1 when the buffer is full. */
int crud_entity_render(buf *b, const char *type, const char *id, const crud_doc *d,
                       bool with_payload) WUR;

#endif
