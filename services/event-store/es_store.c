/*
 * es_store.c - the statements of the event store and the read queries.
 *
 * The append path lives in es_group.c (it runs in the committer thread);
 * this file holds the statement table both paths share and everything the
 * request threads read. Where PostgreSQL and SQLite differ (JSON functions,
 * the advisory lock, NOTIFY), the statement carries two texts: code above
 * the table does not know which one runs.
 */
#include "es_store.h"

#include <stdlib.h>
#include <string.h>

#include "es_event.h"
#include "jsonw.h"
#include "jsonx.h"
#include "log.h"

/* $1 = 1 selects the payloads; 0 leaves them NULL (skip_payload). The
 * columns are those es_log_render_entry reads. */
#define ES_LOG_SELECT                                                                      \
    "SELECT log_id, originator_id, version, event_type, CASE WHEN $1 = 1 THEN payload END, " \
    "occurred_on, event_id, metadata, recorded_at FROM es_events WHERE log_id >= $2 AND "    \
    "log_id <= $3"
/* ms since the epoch, from the database's clock (every replica shares it) */
#define ES_NOW_MS_PG "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS bigint)"
#define ES_NOW_MS_LITE "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
#define ES_LAST_ENTRY "(SELECT log_id, recorded_at FROM es_events ORDER BY log_id DESC LIMIT 1)"
#define ES_STREAM_COLS "id, entity_type, version, last_event_type, created_log_id, updated_log_id"

/* Retention (SPEC §3), over a stream row `s` and its events `e`. A stream
 * read keeps the versions from ES_BOUND (truncate_before and max_count)
 * whose recorded_at is above ES_CUTOFF (max_age_seconds: -1 when there is no
 * such limit, or when it reaches before the epoch; written so that nothing
 * overflows). recorded_at does not decrease along versions, so what is kept
 * is always the stream's newest events, from ES_FIRST on: the oldest
 * readable version, or version + 1 when none is. */
#define ES_TB "COALESCE(s.truncate_before, 1)"
#define ES_MC "COALESCE(s.version - s.max_count + 1, 1)"
#define ES_BOUND "(CASE WHEN " ES_TB " > " ES_MC " THEN " ES_TB " ELSE " ES_MC " END)"
#define ES_CUTOFF(now)                                                                     \
    "(CASE WHEN s.max_age_seconds IS NULL OR s.max_age_seconds > " now " / 1000 THEN -1 "  \
    "ELSE " now " - s.max_age_seconds * 1000 END)"
#define ES_FIRST(now)                                                                      \
    "COALESCE((SELECT MIN(e.version) FROM es_events AS e WHERE e.originator_id = s.id AND " \
    "e.version >= " ES_BOUND " AND e.recorded_at > " ES_CUTOFF(now) "), s.version + 1)"
/* The columns es_stream_row reads. */
#define ES_STREAM_OUT(now)                                                                 \
    "s.id, s.entity_type, s.version, s.last_event_type, s.created_log_id, "                \
    "s.updated_log_id, s.max_count, s.max_age_seconds, s.truncate_before, "                \
    "CASE WHEN s.erased THEN 1 ELSE 0 END, " ES_FIRST(now)
/* A stream read: $1 the stream, $2..$3 the versions, $4 the limit; the
 * retention terms are uncorrelated subqueries (computed once, and index
 * bounds on PostgreSQL). */
#define ES_READ_COLS                                                                       \
    "SELECT e.version, e.event_type, e.payload, e.occurred_on, e.event_id, e.metadata, "   \
    "e.recorded_at FROM es_events AS e WHERE e.originator_id = $1 AND e.version >= $2 AND " \
    "e.version <= $3 AND e.version >= (SELECT " ES_BOUND " FROM es_streams AS s WHERE "      \
    "s.id = $1) AND e.recorded_at > (SELECT "
#define ES_READ_STREAM_SQL(now, order)                                                     \
    ES_READ_COLS ES_CUTOFF(now) " FROM es_streams AS s WHERE s.id = $1) ORDER BY e.version " \
    order " LIMIT $4"
#define ES_RETAINED_TERM                                                                   \
    "(s.max_count IS NOT NULL OR s.max_age_seconds IS NOT NULL OR s.truncate_before IS NOT " \
    "NULL)"

static const db_stmt es_stmts[ES_STMT_COUNT] = {
    [ES_PING] = {"SELECT 1", NULL},
    /* Log ids are taken under this lock and it is held until commit, so ids
     * become visible in increasing order across every writer and replica.
     * SQLite's BEGIN IMMEDIATE is already the one-writer lock. */
    [ES_LOCK] = {"SELECT pg_advisory_xact_lock(4242001)", "SELECT 1"},
    [ES_HEAD] = {"SELECT COALESCE(MAX(log_id), 0) FROM es_events", NULL},
    /* The head and the recorded_at of the events a group writes: the
     * database's clock, but never below the last entry's. */
    [ES_HEAD_CLOCK] = {"SELECT COALESCE(MAX(l.log_id), 0), GREATEST(" ES_NOW_MS_PG
                       ", COALESCE(MAX(l.recorded_at), 0)) FROM " ES_LAST_ENTRY " AS l",
                       "SELECT COALESCE(MAX(l.log_id), 0), MAX(" ES_NOW_MS_LITE
                       ", COALESCE(MAX(l.recorded_at), 0)) FROM " ES_LAST_ENTRY " AS l"},
    /* The stored events of the given event ids (a JSON array of strings):
     * what an idempotent append is checked against. */
    [ES_EVENTS_BY_ID] = {"SELECT CAST(event_id AS text), log_id, originator_id, version, "
                         "event_type, payload, metadata, occurred_on, recorded_at FROM "
                         "es_events WHERE event_id = ANY (ARRAY(SELECT CAST("
                         "json_array_elements_text(CAST($1 AS json)) AS uuid)))",
                         "SELECT event_id, log_id, originator_id, version, event_type, "
                         "payload, metadata, occurred_on, recorded_at FROM es_events WHERE "
                         "event_id IN (SELECT value FROM json_each($1))"},
    /* -1 for an erased stream: the committer's mark of a tombstone */
    [ES_VERSIONS] = {"SELECT id, CASE WHEN erased THEN -1 ELSE version END FROM es_streams "
                     "WHERE id = ANY (ARRAY(SELECT json_array_elements_text(CAST($1 AS json))))",
                     "SELECT id, CASE WHEN erased THEN -1 ELSE version END FROM es_streams "
                     "WHERE id IN (SELECT value FROM json_each($1))"},
    /* $1 the events, $2 their recorded_at */
    [ES_INSERT_EVENTS] =
        {"INSERT INTO es_events (log_id, originator_id, version, event_type, entity_type, "
         "event_name, payload, occurred_on, event_id, metadata, recorded_at) SELECT x.log_id, "
         "x.originator_id, x.version, x.event_type, x.entity_type, x.event_name, "
         "COALESCE(x.payload, 'null'::jsonb), x.occurred_on, x.event_id, x.metadata, "
         "CAST($2 AS bigint) FROM json_to_recordset(CAST($1 AS json)) AS x(log_id bigint, "
         "originator_id text, version bigint, event_type text, entity_type text, event_name "
         "text, payload jsonb, occurred_on bigint, event_id uuid, metadata jsonb)",
         "INSERT INTO es_events (log_id, originator_id, version, event_type, entity_type, "
         "event_name, payload, occurred_on, event_id, metadata, recorded_at) SELECT "
         "value->>'log_id', value->>'originator_id', value->>'version', value->>'event_type', "
         "value->>'entity_type', value->>'event_name', value->'payload', "
         "value->>'occurred_on', value->>'event_id', value->'metadata', $2 FROM json_each($1)"},
    [ES_UPSERT_STREAMS] =
        {"INSERT INTO es_streams AS s (" ES_STREAM_COLS ") SELECT x.id, x.entity_type, "
         "x.version, x.last_event_type, x.created_log_id, x.updated_log_id FROM "
         "json_to_recordset(CAST($1 AS json)) AS x(id text, entity_type text, version "
         "bigint, last_event_type text, created_log_id bigint, updated_log_id bigint) "
         "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, last_event_type = "
         "EXCLUDED.last_event_type, updated_log_id = EXCLUDED.updated_log_id",
         "INSERT INTO es_streams (" ES_STREAM_COLS ") SELECT value->>'id', "
         "value->>'entity_type', value->>'version', value->>'last_event_type', "
         "value->>'created_log_id', value->>'updated_log_id' FROM json_each($1) WHERE true "
         "ON CONFLICT (id) DO UPDATE SET version = excluded.version, last_event_type = "
         "excluded.last_event_type, updated_log_id = excluded.updated_log_id"},
    [ES_NOTIFY] = {"SELECT pg_notify('" ES_NOTIFY_CHANNEL "', $1)", "SELECT $1"},
    /* A whole group in one statement (schema pg/0005): $1 the versions the
     * committer expects, $2 the events, $3 the streams, $4 the event ids. Answers (head, NULL,
     * NULL, recorded_at): written, numbered from head; rows (-1, id, true
     * version, NULL): nothing written; or (-3, ...): an event id of the group
     * is stored already, nothing written. SQLite has no such function and needs none (no round
     * trips): its text answers -2, "not here", and the committer keeps to
     * the general path. */
    [ES_APPEND_GROUP] = {"SELECT * FROM es_append_group(CAST($1 AS json), CAST($2 AS json), "
                         "CAST($3 AS json), CAST($4 AS json))",
                         "SELECT -2"},
    [ES_READ_STREAM] = {ES_READ_STREAM_SQL(ES_NOW_MS_PG, "ASC"),
                        ES_READ_STREAM_SQL(ES_NOW_MS_LITE, "ASC")},
    [ES_READ_STREAM_BACK] = {ES_READ_STREAM_SQL(ES_NOW_MS_PG, "DESC"),
                             ES_READ_STREAM_SQL(ES_NOW_MS_LITE, "DESC")},
    [ES_STREAM_STATE] = {"SELECT CASE WHEN erased THEN 1 ELSE 0 END FROM es_streams "
                         "WHERE id = $1",
                         NULL},
    [ES_GET_STREAM] = {"SELECT " ES_STREAM_OUT(ES_NOW_MS_PG) " FROM es_streams AS s "
                       "WHERE s.id = $1",
                       "SELECT " ES_STREAM_OUT(ES_NOW_MS_LITE) " FROM es_streams AS s "
                       "WHERE s.id = $1"},
    /* Tombstones are in no list. */
    [ES_LIST_STREAMS] = {"SELECT " ES_STREAM_OUT(ES_NOW_MS_PG) " FROM es_streams AS s "
                         "WHERE s.entity_type = $1 AND s.created_log_id > $2 AND NOT s.erased "
                         "ORDER BY s.created_log_id LIMIT $3",
                         "SELECT " ES_STREAM_OUT(ES_NOW_MS_LITE) " FROM es_streams AS s "
                         "WHERE s.entity_type = $1 AND s.created_log_id > $2 AND NOT s.erased "
                         "ORDER BY s.created_log_id LIMIT $3"},
    /* The NOT LIKE / NOT GLOB term must match the partial index's predicate
     * word for word. SQLite's LIKE ignores case: GLOB there (schema 0003). */
    [ES_LIST_STREAMS_LIVE] = {"SELECT " ES_STREAM_OUT(ES_NOW_MS_PG) " FROM es_streams AS s "
                              "WHERE s.entity_type = $1 AND s.created_log_id > $2 AND "
                              "s.last_event_type NOT LIKE '%.Deleted' AND NOT s.erased "
                              "ORDER BY s.created_log_id LIMIT $3",
                              "SELECT " ES_STREAM_OUT(ES_NOW_MS_LITE) " FROM es_streams AS s "
                              "WHERE s.entity_type = $1 AND s.created_log_id > $2 AND "
                              "s.last_event_type NOT GLOB '*.Deleted' AND NOT s.erased "
                              "ORDER BY s.created_log_id LIMIT $3"},
    [ES_LOG_ALL] = {ES_LOG_SELECT " ORDER BY log_id LIMIT $4", NULL},
    [ES_LOG_ENTITY] = {ES_LOG_SELECT " AND entity_type = $5 ORDER BY log_id LIMIT $4", NULL},
    [ES_LOG_NAME] = {ES_LOG_SELECT " AND event_name = $5 ORDER BY log_id LIMIT $4", NULL},
    [ES_LOG_ENTITY_NAME] = {ES_LOG_SELECT
                            " AND entity_type = $5 AND event_name = $6 ORDER BY log_id LIMIT $4",
                            NULL},
    [ES_SNAP_PUT] = {"INSERT INTO es_snapshots (originator_id, version, payload) VALUES "
                     "($1, $2, CAST($3 AS jsonb)) ON CONFLICT (originator_id, version) DO "
                     "UPDATE SET payload = EXCLUDED.payload",
                     "INSERT INTO es_snapshots (originator_id, version, payload) VALUES "
                     "($1, $2, $3) ON CONFLICT (originator_id, version) DO UPDATE SET "
                     "payload = excluded.payload"},
    [ES_SNAP_GET] = {"SELECT version, payload FROM es_snapshots WHERE originator_id = $1 AND "
                     "version <= $2 ORDER BY version DESC LIMIT 1",
                     NULL},
    [ES_STREAM_VERSION] = {"SELECT version, CASE WHEN erased THEN 1 ELSE 0 END FROM "
                           "es_streams WHERE id = $1",
                           NULL},
    /* PUT /v1/streams/{id}/metadata: $2..$4 the settings (NULL: no limit). */
    [ES_SET_META] = {"UPDATE es_streams SET max_count = $2, max_age_seconds = $3, "
                     "truncate_before = $4 WHERE id = $1 AND NOT erased",
                     NULL},
    /* The scavenger (es_scavenge.c): a page of the streams with retention
     * settings (the partial index es_streams_retained), after id $1. */
    [ES_RETAINED] = {"SELECT s.id FROM es_streams AS s WHERE " ES_RETAINED_TERM
                     " AND s.id > $1 ORDER BY s.id LIMIT $2",
                     NULL},
    /* At most $2 events of stream $1 below its first readable version, the
     * oldest first. The newest entry of the whole log stays whatever it is:
     * the head is read as MAX(log_id), and an id must never be used twice. */
    [ES_SCAVENGE_EVENTS] = {"DELETE FROM es_events WHERE log_id IN (SELECT x.log_id FROM "
                            "es_events AS x WHERE x.originator_id = $1 AND x.version < (SELECT "
                            ES_FIRST(ES_NOW_MS_PG) " FROM es_streams AS s WHERE s.id = $1) AND "
                            "x.log_id < (SELECT MAX(log_id) FROM es_events) ORDER BY x.version "
                            "LIMIT $2) RETURNING log_id",
                            "DELETE FROM es_events WHERE log_id IN (SELECT x.log_id FROM "
                            "es_events AS x WHERE x.originator_id = $1 AND x.version < (SELECT "
                            ES_FIRST(ES_NOW_MS_LITE) " FROM es_streams AS s WHERE s.id = $1) AND "
                            "x.log_id < (SELECT MAX(log_id) FROM es_events) ORDER BY x.version "
                            "LIMIT $2) RETURNING log_id"},
    [ES_SCAVENGE_SNAPS] = {"DELETE FROM es_snapshots WHERE originator_id = $1 AND version < "
                           "(SELECT " ES_FIRST(ES_NOW_MS_PG) " FROM es_streams AS s WHERE "
                           "s.id = $1)",
                           "DELETE FROM es_snapshots WHERE originator_id = $1 AND version < "
                           "(SELECT " ES_FIRST(ES_NOW_MS_LITE) " FROM es_streams AS s WHERE "
                           "s.id = $1)"},
    /* Erasure (es_store_erase), under the log lock. */
    [ES_ERASE_READ] = {"SELECT version, entity_type, CASE WHEN erased THEN 1 ELSE 0 END "
                       "FROM es_streams WHERE id = $1",
                       NULL},
    [ES_ERASE_EVENTS] = {"DELETE FROM es_events WHERE originator_id = $1", NULL},
    [ES_ERASE_SNAPS] = {"DELETE FROM es_snapshots WHERE originator_id = $1", NULL},
    [ES_ERASE_STREAM] = {"UPDATE es_streams SET version = $2, last_event_type = $3, "
                         "updated_log_id = $4, erased = true, max_count = NULL, "
                         "max_age_seconds = NULL, truncate_before = NULL WHERE id = $1",
                         NULL},
    /* After erasure: the WAL's copies of erased pages leave the disk
     * (TRUNCATE: the -wal file is emptied). Answers (busy, frames, done);
     * PostgreSQL keeps no file of ours to empty (docs/retention.md says which
     * maintenance removes the bytes there): never busy. */
    [ES_CHECKPOINT] = {"SELECT 0, 0, 0", "PRAGMA wal_checkpoint(TRUNCATE)"},
};

extern const db_migration schema_pg[];
extern const db_migration schema_sqlite[];

const db_spec es_db_spec = {
    .name = "eskit-event-store",
    .stmts = es_stmts,
    .nstmts = ES_STMT_COUNT,
    .pg_migrations = schema_pg,
    .sqlite_migrations = schema_sqlite,
};

bool es_store_head(db *d, int64_t *head, err *e)
{
    db_res *r = NULL;
    db_status st = db_exec(d, ES_HEAD, NULL, 0, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading the log head");
        return false;
    }
    *head = db_res_rows(r) ? db_res_int(r, 0, 0) : 0;
    db_res_free(r);
    return true;
}

/* Renders one read's rows into its answer. */
static void es_store_render_stream(es_stream_read *q, const db_res *state, const db_res *r)
{
    if (db_res_rows(state) && db_res_int(state, 0, 0) == 1) {
        err_set(&q->e, ERR_GONE, "stream %s was erased", q->id);
        q->ok = false;
        q->last = 0;
        return;
    }
    bool ok = buf_puts(&q->out, "{\"events\":[") == 0;
    for (size_t i = 0; ok && i < db_res_rows(r); i++) {
        ok = (i == 0 || buf_puts(&q->out, ",") == 0) &&
             es_event_render(&q->out, &(es_event_view){
                                          .event_id = db_res_text(r, i, 4),
                                          .originator_id = q->id,
                                          .version = db_res_int(r, i, 0),
                                          .event_type = db_res_text(r, i, 1),
                                          .payload_json = db_res_text(r, i, 2),
                                          .metadata_json = db_res_text(r, i, 5),
                                          .occurred_on = db_res_int(r, i, 3),
                                          .recorded_at = db_res_int(r, i, 6)}) == 0;
    }
    size_t rows = db_res_rows(r);
    q->last = rows ? db_res_int(r, q->backward ? 0 : rows - 1, 0) : 0;
    q->ok = ok && buf_puts(&q->out, "]}") == 0;
    if (!q->ok)
        err_set(&q->e, ERR_INTERNAL, "response too large");
}

db_status es_store_read_streams(db *d, es_stream_read *const *q, size_t n, int64_t *head,
                                err *e)
{
    db_param params[ES_STORE_READ_MAX][4];
    db_step steps[2 * ES_STORE_READ_MAX + 1] = {{0}};
    db_res *res[ES_STORE_READ_MAX] = {0}, *state[ES_STORE_READ_MAX] = {0}, *rhead = NULL;
    size_t k = 0;
    if (n > ES_STORE_READ_MAX) {
        err_set(e, ERR_INTERNAL, "%zu reads in one batch (at most %d)", n, ES_STORE_READ_MAX);
        return DB_ERR_OTHER;
    }
    if (head)
        steps[k++] = (db_step){ES_HEAD, NULL, 0, &rhead};
    for (size_t i = 0; i < n; i++) {
        /* backward: versions from q->from down to q->to */
        params[i][0] = DB_TEXT(q[i]->id);
        params[i][1] = DB_INT(q[i]->backward ? q[i]->to : q[i]->from);
        params[i][2] = DB_INT(q[i]->backward ? q[i]->from : q[i]->to);
        params[i][3] = DB_INT(q[i]->limit);
        steps[k++] = (db_step){ES_STREAM_STATE, params[i], 1, &state[i]};
        steps[k++] = (db_step){q[i]->backward ? ES_READ_STREAM_BACK : ES_READ_STREAM, params[i],
                               4, &res[i]};
    }
    db_status st = db_pipeline(d, steps, k, e);
    if (st == DB_OK && head)
        *head = db_res_rows(rhead) ? db_res_int(rhead, 0, 0) : 0;
    for (size_t i = 0; i < n; i++) {
        if (st == DB_OK)
            es_store_render_stream(q[i], state[i], res[i]);
        db_res_free(res[i]);
        db_res_free(state[i]);
    }
    db_res_free(rhead);
    return st;
}

/* A nullable integer column as JSON. */
static json_t *es_int_or_null(const db_res *r, size_t i, int col)
{
    return db_res_null(r, i, col) ? json_null() : json_integer((json_int_t)db_res_int(r, i, col));
}

/* Row i of ES_STREAM_OUT's columns. */
static json_t *es_stream_row(const db_res *r, size_t i)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:{s:o, s:o, s:o}}", "id",
                     db_res_text(r, i, 0), "entity_type", db_res_text(r, i, 1), "version",
                     (json_int_t)db_res_int(r, i, 2), "first_version",
                     (json_int_t)db_res_int(r, i, 10), "last_event_type", db_res_text(r, i, 3),
                     "created_log_id", (json_int_t)db_res_int(r, i, 4), "updated_log_id",
                     (json_int_t)db_res_int(r, i, 5), "metadata", "max_count",
                     es_int_or_null(r, i, 6), "max_age_seconds", es_int_or_null(r, i, 7),
                     "truncate_before", es_int_or_null(r, i, 8));
}

json_t *es_store_get_stream(db *d, const char *id, err *e)
{
    db_res *r = NULL;
    db_param p[] = {DB_TEXT(id)};
    db_status st = db_exec(d, ES_GET_STREAM, p, 1, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading a stream");
        return NULL;
    }
    json_t *out = NULL;
    if (db_res_rows(r) == 0)
        err_set(e, ERR_NOT_FOUND, "stream %s does not exist", id);
    else if (db_res_int(r, 0, 9) == 1)
        err_set(e, ERR_GONE, "stream %s was erased", id);
    else if (!(out = es_stream_row(r, 0)))
        err_set(e, ERR_INTERNAL, "out of memory");
    db_res_free(r);
    return out;
}

/* A setting as a parameter: -1 is none (NULL). */
static db_param es_setting(int64_t v)
{
    return v < 0 ? DB_NULLP : DB_INT(v);
}

json_t *es_store_set_retention(db *d, const char *id, const es_retention *rt, err *e)
{
    db_param p[] = {DB_TEXT(id), es_setting(rt->max_count), es_setting(rt->max_age_seconds),
                    es_setting(rt->truncate_before)};
    db_status st = db_exec(d, ES_SET_META, p, 4, NULL, e);
    if (st != DB_OK) {
        db_fail_write(e, st, d, "saving a stream's metadata");
        return NULL;
    }
    /* not_found or gone when the update found nothing to change */
    return es_store_get_stream(d, id, e);
}

bool es_store_checkpoint(db *d)
{
    db_res *r = NULL;
    err e = ERR_INIT;
    db_status st = db_exec(d, ES_CHECKPOINT, NULL, 0, &r, &e);
    bool done = st == DB_OK && db_res_rows(r) && db_res_int(r, 0, 0) == 0;
    if (st != DB_OK)
        log_warn("checkpoint: %s", e.message);
    db_res_free(r);
    err_clear(&e);
    return done;
}

/* The Erased entry of a stream, as ES_INSERT_EVENTS reads it. 0, or -1 when
 * the buffer is full. */
static int es_erased_row(buf *b, const char *id, const char *entity_type, int64_t log_id,
                         int64_t version, int64_t now)
{
    return buf_printf(b, "[{\"log_id\":%lld,\"originator_id\":", (long long)log_id) ||
           jsonw_string(b, id) ||
           buf_printf(b, ",\"version\":%lld,\"event_type\":\"", (long long)version) ||
           buf_puts(b, entity_type) || buf_puts(b, ".Erased\",\"entity_type\":") ||
           jsonw_string(b, entity_type) ||
           buf_printf(b, ",\"event_name\":\"Erased\",\"payload\":{},\"occurred_on\":%lld}]",
                      (long long)now);
}

bool es_store_erase(db *d, const char *id, int64_t expected_version, int64_t *log_id,
                    err *e)
{
    db_res *rhead = NULL, *rs = NULL;
    buf ev, type;
    bool ok = false;
    buf_init(&ev, 1 << 16);
    buf_init(&type, 1 << 10);

    /* Round trip 1: begin, take the log lock, read the head, its clock and
     * the stream. */
    db_param ip[] = {DB_TEXT(id)};
    db_step read_steps[] = {
        {DB_STEP_BEGIN, NULL, 0, NULL},
        {ES_LOCK, NULL, 0, NULL},
        {ES_HEAD_CLOCK, NULL, 0, &rhead},
        {ES_ERASE_READ, ip, 1, &rs},
    };
    db_status st = db_pipeline(d, read_steps, 4, e);
    if (st != DB_OK) { /* db_pipeline rolled back */
        db_fail(e, st, "erasing a stream");
        goto done;
    }
    if (db_res_rows(rs) == 0) {
        err_set(e, ERR_NOT_FOUND, "stream %s does not exist", id);
        goto refused;
    }
    if (db_res_int(rs, 0, 2) == 1) {
        err_set(e, ERR_GONE, "stream %s was erased", id);
        goto refused;
    }
    int64_t version = db_res_int(rs, 0, 0);
    if (expected_version >= 0 && expected_version != version) {
        err_set_details(e, ERR_CONFLICT, json_pack("{s:I}", "current_version", (json_int_t)version),
                        "stream %s is at version %lld, not %lld; nothing was erased", id,
                        (long long)version, (long long)expected_version);
        goto refused;
    }
    int64_t head = db_res_rows(rhead) ? db_res_int(rhead, 0, 0) : 0;
    int64_t now = db_res_rows(rhead) ? db_res_int(rhead, 0, 1) : 0;
    const char *entity = db_res_text(rs, 0, 1);
    if (es_erased_row(&ev, id, entity, head + 1, version + 1, now) ||
        buf_printf(&type, "%s.Erased", entity)) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto refused;
    }

    /* Round trip 2: delete, append the Erased entry, update the stream into
     * a tombstone, wake other replicas' readers, commit. Deleting first:
     * the Erased entry is of the same stream. */
    char headtxt[24];
    snprintf(headtxt, sizeof headtxt, "%lld", (long long)(head + 1));
    db_param ep[] = {DB_TEXT(ev.data), DB_INT(now)},
             up[] = {DB_TEXT(id), DB_INT(version + 1), DB_TEXT(type.data), DB_INT(head + 1)},
             np[] = {DB_TEXT(headtxt)};
    db_step write_steps[] = {
        {ES_ERASE_EVENTS, ip, 1, NULL},
        {ES_ERASE_SNAPS, ip, 1, NULL},
        {ES_INSERT_EVENTS, ep, 2, NULL},
        {ES_ERASE_STREAM, up, 4, NULL},
        {ES_NOTIFY, np, 1, NULL},
        {DB_STEP_COMMIT, NULL, 0, NULL},
    };
    if ((st = db_pipeline(d, write_steps, 6, e)) != DB_OK) {
        db_fail_write(e, st, d, "erasing a stream");
        goto done;
    }
    *log_id = head + 1;
    ok = true;
    goto done;
refused:
    db_rollback(d);
done:
    db_res_free(rhead);
    db_res_free(rs);
    buf_free(&ev);
    buf_free(&type);
    return ok;
}

json_t *es_store_list_streams(db *d, const char *entity_type, int64_t after, int64_t limit,
                              bool live, err *e)
{
    db_res *r = NULL;
    db_param p[] = {DB_TEXT(entity_type), DB_INT(after), DB_INT(limit + 1)};
    db_status st = db_exec(d, live ? ES_LIST_STREAMS_LIVE : ES_LIST_STREAMS, p, 3, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "listing streams");
        return NULL;
    }
    json_t *list = json_array();
    size_t n = db_res_rows(r);
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(list, es_stream_row(r, i));
    json_t *next = json_null();
    if (n > shown)
        next = json_string(db_res_text(r, shown - 1, 4));
    db_res_free(r);
    return json_pack("{s:o, s:o}", "streams", list, "next_after", next);
}

bool es_store_read_log(db *d, const es_log_query *q, es_log_page *page, err *e)
{
    memset(page, 0, sizeof *page);
    int64_t head = 0;
    if (!es_store_head(d, &head, e))
        return false;
    page->head_id = head;
    /* Bound the scan so that a narrow selector over a long log costs a
     * bounded amount per request; the reader resumes at next_from_id. */
    int64_t bound = head;
    if (q->from_id <= head && head - q->from_id >= ES_LOG_SCAN_BUDGET)
        bound = q->from_id + ES_LOG_SCAN_BUDGET - 1;
    page->at_head = bound == head;

    if (q->from_id > head) {
        /* nothing written there yet (a caught-up reader): no second query */
        page->next_from_id = q->from_id;
        page->rows = NULL;
        return true;
    }
    const char *entity = q->sel.entity[0] ? q->sel.entity : NULL;
    const char *name = q->sel.event[0] ? q->sel.event : NULL;
    if (q->pipeline) {
        if (entity && strcmp(entity, q->pipeline) != 0) {
            /* the selector and the pipeline can never both match */
            page->next_from_id = q->from_id > bound ? q->from_id : bound + 1;
            page->rows = NULL;
            return true;
        }
        entity = q->pipeline;
    }
    db_param p[6] = {DB_INT(q->skip_payload ? 0 : 1), DB_INT(q->from_id), DB_INT(bound),
                     DB_INT(q->size)};
    int np = 4;
    es_stmt stmt = ES_LOG_ALL;
    if (entity && name) {
        stmt = ES_LOG_ENTITY_NAME;
        p[np++] = DB_TEXT(entity);
        p[np++] = DB_TEXT(name);
    } else if (entity) {
        stmt = ES_LOG_ENTITY;
        p[np++] = DB_TEXT(entity);
    } else if (name) {
        stmt = ES_LOG_NAME;
        p[np++] = DB_TEXT(name);
    }
    db_status st = db_exec(d, stmt, p, np, &page->rows, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading the log");
        return false;
    }
    size_t n = db_res_rows(page->rows);
    if (n == (size_t)q->size) {
        page->next_from_id = db_res_int(page->rows, n - 1, 0) + 1;
        page->at_head = page->next_from_id > head;
    } else {
        page->next_from_id = q->from_id > bound ? q->from_id : bound + 1;
    }
    return true;
}

void es_log_page_free(es_log_page *page)
{
    db_res_free(page->rows);
    page->rows = NULL;
}

int es_log_render_entry(buf *b, const db_res *r, size_t i)
{
    /* a NULL payload column is a skipped payload (a stored one is never NULL) */
    if (buf_printf(b, "{\"id\":%lld,\"event\":", (long long)db_res_int(r, i, 0)) ||
        es_event_render(b, &(es_event_view){.event_id = db_res_text(r, i, 6),
                                            .originator_id = db_res_text(r, i, 1),
                                            .version = db_res_int(r, i, 2),
                                            .event_type = db_res_text(r, i, 3),
                                            .payload_json = db_res_text(r, i, 4),
                                            .metadata_json = db_res_text(r, i, 7),
                                            .occurred_on = db_res_int(r, i, 5),
                                            .recorded_at = db_res_int(r, i, 8)}) ||
        buf_puts(b, "}"))
        return -1;
    return 0;
}

bool es_store_snapshot_put(db *d, const char *id, int64_t version, const char *payload_json,
                           err *e)
{
    db_res *r = NULL;
    db_param p1[] = {DB_TEXT(id)};
    db_status st = db_exec(d, ES_STREAM_VERSION, p1, 1, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading a stream version");
        return false;
    }
    int64_t current = db_res_rows(r) ? db_res_int(r, 0, 0) : 0;
    bool erased = db_res_rows(r) && db_res_int(r, 0, 1) == 1;
    db_res_free(r);
    if (erased) {
        err_set(e, ERR_GONE, "stream %s was erased", id);
        return false;
    }
    if (version > current) {
        err_set_details(e, ERR_CONFLICT, json_pack("{s:I}", "current_version", (json_int_t)current),
                        "stream %s is at version %lld; a snapshot at version %lld cannot exist yet",
                        id, (long long)current, (long long)version);
        return false;
    }
    db_param p2[] = {DB_TEXT(id), DB_INT(version), DB_TEXT(payload_json)};
    st = db_exec(d, ES_SNAP_PUT, p2, 3, NULL, e);
    if (st != DB_OK) {
        db_fail(e, st, "saving a snapshot");
        return false;
    }
    return true;
}

json_t *es_store_snapshot_get(db *d, const char *id, int64_t max_version, err *e)
{
    db_res *r = NULL, *state = NULL;
    db_param p[] = {DB_TEXT(id), DB_INT(max_version)};
    db_step steps[] = {{ES_STREAM_STATE, p, 1, &state}, {ES_SNAP_GET, p, 2, &r}};
    db_status st = db_pipeline(d, steps, 2, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading a snapshot");
        db_res_free(r);
        db_res_free(state);
        return NULL;
    }
    json_t *out = NULL;
    if (db_res_rows(state) && db_res_int(state, 0, 0) == 1) {
        err_set(e, ERR_GONE, "stream %s was erased", id);
    } else if (db_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, "no snapshot of stream %s at or below version %lld", id,
                (long long)max_version);
    } else {
        err pe = ERR_INIT;
        const char *text = db_res_text(r, 0, 1);
        json_t *payload = jsonx_parse_stored(text, strlen(text), &pe);
        err_clear(&pe);
        if (!payload)
            err_set(e, ERR_INTERNAL, "a stored snapshot is not valid JSON");
        else
            out = json_pack("{s:I, s:o}", "version", (json_int_t)db_res_int(r, 0, 0),
                            "payload", payload);
    }
    db_res_free(r);
    db_res_free(state);
    return out;
}
