/*
 * es_event.h - the event of SPEC §3: parsing an append request into
 * validated es_event structs, and rendering events as JSON.
 */
#ifndef ES_EVENT_H
#define ES_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "validate.h"

#define ES_BATCH_MAX 1000

typedef struct es_event {
    /* from the request (strings and payload borrowed from the request JSON) */
    const char *originator_id;
    int64_t want_version; /* 0: append at the next version */
    const char *event_type;
    size_t entity_len;    /* event_type[0..entity_len) is the entity type */
    json_t *payload;
    json_t *metadata;     /* a JSON object, or NULL when absent */
    int64_t occurred_on;  /* ms since the epoch */
    char event_id[VALIDATE_UUID_LEN]; /* lowercase; "" when absent */
    /* filled by the append (from the stored event when it was a retry) */
    int64_t version;
    int64_t log_id;
    int64_t recorded_at;  /* ms since the epoch */
    const struct es_event *same_as; /* es_group.c: a retry of this event of its group */
} es_event;

/* A stored event as the read paths render it: strings borrowed, JSON as
 * text spliced in as it is (payload_json NULL leaves the payload out: the
 * log's skip_payload; event_id and metadata_json NULL: absent). */
typedef struct es_event_view {
    const char *event_id;
    const char *originator_id;
    int64_t version;
    const char *event_type;
    const char *payload_json;
    const char *metadata_json;
    int64_t occurred_on;
    int64_t recorded_at;
} es_event_view;

/*
 * Parses the body of POST /v1/events: one event, or {"events": [...]} with 1
 * to ES_BATCH_MAX events. Checks every field (SPEC §2 and §3) and, inside a
 * batch, that the given versions of each stream are consecutive and that no
 * event id is given twice. An event named Erased is refused (the name is
 * reserved for erasure). Returns a
 * malloc'd array of *n events (caller frees; strings stay owned by `body`),
 * or NULL with e set (400). *batch says which form was used.
 */
es_event *es_event_parse_request(const json_t *body, size_t *n, bool *batch, err *e) WUR;

/* Renders one stored event as the JSON object of SPEC §3. 0, or -1 when the
 * buffer is full. */
int es_event_render(buf *b, const es_event_view *v) WUR;

/* Renders the answer to an append: {"log_id", "event"} for one event, or
 * {"results": [...]} for a batch. 0, or -1 when the buffer is full. */
int es_event_render_appended(buf *b, const es_event *evs, size_t n, bool batch) WUR;

#endif
