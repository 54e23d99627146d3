/*
 * es_http_streams.c - GET /v1/streams/{id} and GET /v1/streams (pages of
 * streams of one entity type, in creation order; exclude_deleted=true leaves
 * out streams whose last event is named Deleted, for the CRUD store's lists),
 * both read where db_reads sends them (a standby when there is one); and the
 * stream lifecycle on the primary: PUT /v1/streams/{id}/metadata (retention)
 * and DELETE /v1/streams/{id} (erasure).
 */
#include <errno.h>
#include <stdlib.h>

#include "es_app.h"
#include "service.h"
#include "es_scavenge.h"
#include "es_store.h"
#include "jsonx.h"
#include "validate.h"

/* For a handler: in c, a connection for reads that shows every log entry
 * this process had acknowledged when the request began. False after
 * replying 503, or after handing the request to a worker where it would
 * have to wait (it runs again there from the start): the caller returns. */
static bool es_req_reads(http_req *r, es_app *app, db_rconn *c)
{
    err e = ERR_INIT;
    int64_t floor = db_reads_floor(app->reads);
    int got = db_reads_get(app->reads, false, c, &e);
    db_reads_next next = DB_READS_LATER;
    if (got > 0)
        next = db_reads_ensure(app->reads, c, floor, false, &e);
    if (got == 0 || next == DB_READS_LATER) {
        if (http_req_to_worker(r))
            return false;
        got = db_reads_get(app->reads, true, c, &e);
        next = got > 0 ? db_reads_ensure(app->reads, c, floor, true, &e) : DB_READS_FAILED;
    }
    if (got < 0 || next != DB_READS_KEEP) {
        http_reply_err(r, &e);
        err_clear(&e);
        return false;
    }
    return true;
}

void es_http_get_stream(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    db_rconn c;
    const char *id = service_req_id(r, "originator_id");
    if (!id || !es_req_reads(r, app, &c))
        return;
    json_t *s = NULL;
    do /* again on the primary when the standby failed */
        s = es_store_get_stream(c.d, id, &e);
    while (db_reads_after(app->reads, &c, s || e.code == ERR_NOT_FOUND, DB_READS_NO_HEAD, 0,
                          true, &e) == DB_READS_AGAIN);
    db_reads_put(app->reads, &c);
    http_reply_result(r, 200, s, &e);
}

/* The cursor is the creation log id of the last stream of the previous page. */
static bool es_parse_after(const char *s, int64_t *out)
{
    if (!s)
        return (*out = 0), true;
    if (!*s || *s == '-' || *s == '+')
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return false;
    *out = v;
    return true;
}

void es_http_list_streams(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t after = 0, limit = 100;
    bool live = false;
    const char *type = http_req_query(r, "entity_type");

    if (!type) {
        err_set(&e, ERR_INVALID_ARGUMENT, "entity_type is required");
        goto fail;
    }
    if (!validate_entity_type(type)) {
        err_set(&e, ERR_INVALID_ARGUMENT,
                "entity_type must be segments of A-Z a-z 0-9 _ - joined by '.'");
        goto fail;
    }
    if (!es_parse_after(http_req_query(r, "after"), &after)) {
        err_set(&e, ERR_INVALID_ARGUMENT, "after must be a cursor from a previous page");
        goto fail;
    }
    if (!http_req_query_int(r, "limit", 100, 1, 1000, &limit, &e) ||
        !http_req_query_bool(r, "exclude_deleted", false, &live, &e))
        goto fail;
    db_rconn c;
    if (!es_req_reads(r, app, &c))
        return;
    json_t *page = NULL;
    do /* again on the primary when the standby failed */
        page = es_store_list_streams(c.d, type, after, limit, live, &e);
    while (db_reads_after(app->reads, &c, page != NULL, DB_READS_NO_HEAD, 0, true, &e) ==
           DB_READS_AGAIN);
    db_reads_put(app->reads, &c);
    if (!page)
        goto fail;
    http_reply_json(r, 200, page);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
}

/* PUT /v1/streams/{id}/metadata: the stream's retention settings, replaced
 * whole (a setting absent or null has no limit). */
void es_http_put_stream_metadata(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    es_retention rt = {-1, -1, -1};
    db *d = NULL;
    json_t *s = NULL;

    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    json_t *body = http_req_json(r, &e);
    if (!body)
        goto fail;
    if (!json_is_object(body)) {
        err_set(&e, ERR_INVALID_ARGUMENT,
                "the body must be {\"max_count\": N, \"max_age_seconds\": S, "
                "\"truncate_before\": V}");
        goto fail;
    }
    if (!jsonx_get_int(body, "max_count", "max_count", false, 1, INT64_MAX, &rt.max_count, NULL,
                       &e) ||
        !jsonx_get_int(body, "max_age_seconds", "max_age_seconds", false, 1, INT64_MAX,
                       &rt.max_age_seconds, NULL, &e) ||
        !jsonx_get_int(body, "truncate_before", "truncate_before", false, 1, INT64_MAX,
                       &rt.truncate_before, NULL, &e))
        goto fail;
    if (!(d = service_req_db(r, app->pool)))
        return;
    s = es_store_set_retention(d, id, &rt, &e);
    db_pool_release(app->pool, d);
    if (!s)
        goto fail;
    /* the scavenger looks at once rather than at its next round */
    es_scavenger_poke(app->scavenger, false);
    http_reply_json(r, 200, s);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
}

/* DELETE /v1/streams/{id}: erasure (es_store_erase). */
void es_http_erase_stream(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t expected = -1, log_id = 0;

    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    if (!http_req_query_int(r, "expected_version", -1, 0, INT64_MAX, &expected, &e))
        goto fail;
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    bool ok = es_store_erase(d, id, expected, &log_id, &e);
    db_pool_release(app->pool, d);
    if (!ok)
        goto fail;
    /* as an append does: this process acknowledged the entry; readers wake */
    db_reads_acked(app->reads, log_id);
    watch_bump(app->log_watch);
    /* the WAL's copies of the erased rows: the scavenger checkpoints it now
     * (on its own connection: readers may make that wait) */
    es_scavenger_poke(app->scavenger, true);
    http_reply_empty(r, 204);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
}
