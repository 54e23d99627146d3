/*
 * crud_key.h - Idempotency-Key on the CRUD store's writes (SPEC §4).
 *
 * A write that carries a key appends, in the same atomic batch as its
 * document event, one record event to a stream of the key's own
 * ("eskit.IdempotencyKey-<uuid of the key>", event type
 * eskit.IdempotencyKey.Used, at version 1): which request used the key (a
 * fingerprint of method, path and body) and what it answered (status,
 * document id, version). Both events carry event ids derived from the key,
 * and a create without an id gets a document id derived from it too, so a
 * repeat of the request aims at the same stream and the same events.
 *
 * Before writing, a keyed request looks its record up: found with the same
 * fingerprint, the first answer is given again and nothing is written;
 * found with another, 422. A write that loses a race (409) looks again, so
 * of concurrent repeats one writes and the others answer as it did. The
 * records live in the event store, so this holds across CRUD replicas and
 * restarts, and keys are kept as long as the log is.
 */
#ifndef CRUD_KEY_H
#define CRUD_KEY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "crud_app.h"
#include "crud_es.h"
#include "err.h"
#include "uuid4.h"
#include "validate.h"

#define CRUD_KEY_EVENT_TYPE "eskit.IdempotencyKey.Used"

typedef struct crud_key {
    char key[VALIDATE_ID_MAX + 1];
    char stream[64];                /* the key's record stream */
    char record_event_id[UUID4_LEN];
    char doc_event_id[UUID4_LEN];   /* the event id of the document event */
    char doc_id[UUID4_LEN];         /* the id of a create that names none */
    char request[UUID4_LEN];        /* fingerprint of method, path, body */
    char method[8];
    int status;                     /* what the write answers: 201 or 200 */
} crud_key;

/* Sets up the key of a write: `key` the header's value (checked: 1 to 128
 * characters of the id alphabet, else invalid_argument naming the
 * header), `method` and `path` the request's, `body` its JSON (NULL when
 * it has none). */
bool crud_key_init(crud_key *k, const char *key, const char *method, const char *path,
                   const json_t *body, err *e) WUR;

/* What the event store holds under a key. */
typedef struct crud_key_record {
    bool found;
    bool same;                      /* the same request as this one */
    int status;
    char id[VALIDATE_ID_MAX + 1];
    int64_t version;
} crud_key_record;

/* Reads the key's record (found false when the key is unused). */
bool crud_key_lookup(crud_app *app, const crud_key *k, crud_key_record *out, err *e) WUR;

/* Fills the two events of a keyed write into evs[0..2): the document event
 * (given in doc, its event id set here) and the key's record, whose payload
 * is a new reference in *record (the caller decrefs it after the append).
 * False on OOM. */
bool crud_key_events(const crud_key *k, const crud_es_event *doc, crud_es_event evs[2],
                     json_t **record) WUR;

/* Fills e with the 422 of a key used for another request. */
void crud_key_reused(const crud_key *k, err *e);

#endif
