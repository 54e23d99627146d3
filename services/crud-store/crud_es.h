/*
 * crud_es.h - the CRUD store's calls to the event store (SPEC §3), over one
 * keep-alive http_client shared by every request thread.
 *
 * Every call maps the event store's answer to the error model once, here:
 * unreachable, timed out, 5xx or a refused token become 503 `unavailable`
 * ("event store unavailable: ..."), 409 becomes `conflict` (with the event
 * store's details, current_version among them), 413 `payload_too_large`,
 * 400 `invalid_argument`, 410 `gone` (an erased stream). Callers decide
 * what a 404 means.
 */
#ifndef CRUD_ES_H
#define CRUD_ES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "http_client.h"
#include "validate.h"

/* Events asked for per GET /v1/events call (the event store allows 10,000):
 * a cold replay of a long history holds one page at a time, which keeps the
 * process small (a 10,000-event page left ~30 MB resident; 1,000, ~15 MB). */
#define CRUD_ES_EVENTS_PAGE 1000

/* What GET /v1/streams/{id} says about one stream. */
typedef struct crud_stream {
    char entity_type[VALIDATE_TYPE_MAX + 1];
    char last_event_type[VALIDATE_TYPE_MAX + 1];
    int64_t version; /* the last version, >= 1 */
} crud_stream;

/* GET /v1/streams/{id}. *found is false (and the call succeeds) when the
 * stream does not exist. False with e set on any other failure. */
bool crud_es_stream(http_client *es, const char *id, crud_stream *out, bool *found,
                    err *e) WUR;

/* A page of events is at most this many bytes of JSON (one event alone may
 * be larger: as large as the event store accepts). */
#define CRUD_ES_PAGE_BYTES ((size_t)16 << 20)

/* GET /v1/events/{id}?from_version&to_version&limit: one page of events,
 * at most *limit (<= CRUD_ES_EVENTS_PAGE) and at most CRUD_ES_PAGE_BYTES.
 * When the events asked for are larger, *limit is halved until they fit,
 * and stays so for the caller's next page. *events receives a new reference
 * to the JSON array (the caller decrefs). */
bool crud_es_events(http_client *es, const char *id, int64_t from, int64_t to, int64_t *limit,
                    json_t **events, err *e) WUR;

/* POST /v1/events: one event at exactly `version` (the stream's current
 * version + 1). A lost race or an existing stream gives e = conflict. */
bool crud_es_append(http_client *es, const char *id, const char *event_type, int64_t version,
                    const json_t *payload, err *e) WUR;

/* One event of an append (strings and payload borrowed). */
typedef struct crud_es_event {
    const char *id;         /* the stream */
    const char *event_type;
    int64_t version;        /* exactly this version */
    const char *event_id;   /* NULL: none */
    const json_t *payload;
} crud_es_event;

/* POST /v1/events of evs[0..n): one event when n is 1, else one atomic
 * batch. A conflict (a lost race, or an event id stored with other content:
 * details.event_id) is e = conflict, and nothing was written. */
bool crud_es_append_events(http_client *es, const crud_es_event *evs, size_t n, err *e) WUR;

/* GET /v1/snapshots/{id}?max_version: the newest snapshot at or below
 * max_version. *found false when there is none; else *version and
 * *payload (a new reference, the caller decrefs) are set. */
bool crud_es_snapshot_get(http_client *es, const char *id, int64_t max_version, bool *found,
                          int64_t *version, json_t **payload, err *e) WUR;

/* PUT /v1/snapshots/{id} {"version", "payload"}. */
bool crud_es_snapshot_put(http_client *es, const char *id, int64_t version,
                          const json_t *payload, err *e) WUR;

/* DELETE /v1/streams/{id}[?expected_version]: erases the stream (SPEC §3).
 * expected_version <= 0: any. not_found, gone (erased already) or conflict
 * (not at expected_version) otherwise. */
bool crud_es_erase(http_client *es, const char *id, int64_t expected_version, err *e) WUR;

/* GET /v1/streams?entity_type&after&limit[&exclude_deleted=true]. `after`
 * is the cursor (the creation log id of the last stream seen), 0 for the
 * first page; exclude_deleted leaves out streams whose last event is named
 * Deleted. *page receives a new reference to {"streams": [...],
 * "next_after": string | null}, checked to have that shape (the caller
 * decrefs). */
bool crud_es_list_streams(http_client *es, const char *entity_type, int64_t after,
                          int64_t limit, bool exclude_deleted, json_t **page, err *e) WUR;

/* GET /v1/logs?from_id&size&skip_payload=true (no wait, no payloads: the
 * event store's extension). *page receives a new reference to
 * {"results": [...], "next_from_id": N, "head_id": N}, checked to have that
 * shape (the caller decrefs). */
bool crud_es_log(http_client *es, int64_t from_id, int64_t size, json_t **page, err *e) WUR;

/* GET /v1/logs?from_id&size&wait, with the events' payloads unless
 * with_payload is false: what the query index applies (crud_index.h).
 * wait_s > 0 long-polls. *page as for crud_es_log (the caller decrefs). */
bool crud_es_log_events(http_client *es, int64_t from_id, int64_t size, int wait_s,
                        bool with_payload, json_t **page, err *e) WUR;

/* GET /readyz of the event store: true when it answers 200. */
bool crud_es_ready(http_client *es, err *e) WUR;

#endif
