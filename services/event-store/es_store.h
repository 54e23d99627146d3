/*
 * es_store.h - the event store's storage: its statements and schema (one
 * db_spec for both back ends) and the queries behind each endpoint. Every
 * function takes a connection from the caller and never decides which back
 * end it runs on.
 */
#ifndef ES_STORE_H
#define ES_STORE_H

#include <stdint.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "validate.h"

typedef enum es_stmt {
    ES_PING,
    ES_LOCK,
    ES_HEAD,
    ES_HEAD_CLOCK,
    ES_EVENTS_BY_ID,
    ES_VERSIONS,
    ES_INSERT_EVENTS,
    ES_UPSERT_STREAMS,
    ES_NOTIFY,
    ES_APPEND_GROUP,
    ES_READ_STREAM,
    ES_READ_STREAM_BACK,
    ES_STREAM_STATE,
    ES_GET_STREAM,
    ES_LIST_STREAMS,
    ES_LIST_STREAMS_LIVE,
    ES_LOG_ALL,
    ES_LOG_ENTITY,
    ES_LOG_NAME,
    ES_LOG_ENTITY_NAME,
    ES_SNAP_PUT,
    ES_SNAP_GET,
    ES_STREAM_VERSION,
    ES_SET_META,
    ES_RETAINED,
    ES_SCAVENGE_EVENTS,
    ES_SCAVENGE_SNAPS,
    ES_ERASE_READ,
    ES_ERASE_EVENTS,
    ES_ERASE_SNAPS,
    ES_ERASE_STREAM,
    ES_CHECKPOINT,
    ES_STMT_COUNT
} es_stmt;

extern const db_spec es_db_spec;

#define ES_NOTIFY_CHANNEL "eskit_log"
#define ES_LOG_SCAN_BUDGET 50000 /* entries one log read may scan past */

/* The highest log id visible (0 for an empty log). */
bool es_store_head(db *d, int64_t *head, err *e) WUR;

/* One read of a stream: versions [from, to], at most `limit`, in version
 * order; `backward`: newest first, versions from `from` down to `to`. Only
 * what the stream's retention keeps is read. The answer, {"events":[...]},
 * goes to `out` (ok), or the reason to `e` (gone: the stream was erased);
 * `last` gets the highest version it returned (0: none). */
typedef struct es_stream_read {
    const char *id;
    int64_t from, to, limit;
    bool backward;
    buf out;
    err e;
    bool ok;
    int64_t last;
} es_stream_read;

/* Runs n reads (at most ES_STORE_READ_MAX) as one pipeline (one round
 * trip) and fills each. Not DB_OK (e set) when the batch as a whole failed:
 * then no read is filled. With `head` not NULL, the pipeline first reads
 * the log head into it (what a standby had replayed: db_reads.h). */
#define ES_STORE_READ_MAX 32
db_status es_store_read_streams(db *d, es_stream_read *const *q, size_t n, int64_t *head,
                                err *e) WUR;

/* One stream as a new JSON object (with first_version and metadata); NULL
 * with e = not_found when unknown, gone when erased. */
json_t *es_store_get_stream(db *d, const char *id, err *e) WUR;

/* A stream's retention settings; each -1 for none (no limit). */
typedef struct es_retention {
    int64_t max_count, max_age_seconds, truncate_before;
} es_retention;

/* Replaces the stream's retention settings and returns the stream as
 * es_store_get_stream does (the caller frees it); NULL with e set
 * (not_found, gone) otherwise. */
json_t *es_store_set_retention(db *d, const char *id, const es_retention *rt, err *e) WUR;

/* Erases the stream (SPEC §3) in one transaction under the log lock: its
 * events and snapshots are deleted, the stream becomes a tombstone and one
 * entry ENTITY.Erased is appended. expected_version -1: any. True with
 * *log_id the Erased entry's id; false with e set (not_found, gone,
 * conflict, unavailable). The caller has the WAL checkpointed afterwards
 * (es_store_checkpoint; the scavenger does it). */
bool es_store_erase(db *d, const char *id, int64_t expected_version, int64_t *log_id,
                    err *e) WUR;

/* Empties SQLite's WAL into the database file and truncates it. True when
 * done; false when readers kept it from finishing (try again later) or on
 * failure. Always true on PostgreSQL. */
bool es_store_checkpoint(db *d);

/* A page of streams of one entity type created after log id `after`:
 * {"streams": [...], "next_after": "…" | null} as a new object. With
 * `live`, streams whose last event is named Deleted are left out (an index
 * keeps such a page's cost to its size). */
json_t *es_store_list_streams(db *d, const char *entity_type, int64_t after, int64_t limit,
                              bool live, err *e) WUR;

/* A log read: entries from `from_id` matching the filters. */
typedef struct es_log_query {
    int64_t from_id;     /* >= 1 */
    int64_t size;        /* 1..1000 */
    log_selector sel;
    const char *pipeline; /* NULL or an entity type */
    bool skip_payload;    /* entries without their payload (an extension) */
} es_log_query;

typedef struct es_log_page {
    db_res *rows;         /* log_id, originator_id, version, event_type, payload,
                             occurred_on, event_id, metadata, recorded_at */
    int64_t head_id;
    int64_t next_from_id;
    bool at_head;         /* the scan reached the head: waiting makes sense */
} es_log_page;

bool es_store_read_log(db *d, const es_log_query *q, es_log_page *page, err *e) WUR;
void es_log_page_free(es_log_page *page);
/* Renders row i of a page as {"id": N, "event": {...}}. */
int es_log_render_entry(buf *b, const db_res *rows, size_t i) WUR;

/* Snapshots. put: 409 when version > the stream's current version, 410
 * when it was erased. get: the newest at or below max_version, as
 * {"version", "payload"}; NULL with e = not_found when none, gone when the
 * stream was erased. */
bool es_store_snapshot_put(db *d, const char *id, int64_t version, const char *payload_json,
                           err *e) WUR;
json_t *es_store_snapshot_get(db *d, const char *id, int64_t max_version, err *e) WUR;


#endif
