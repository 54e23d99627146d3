/*
 * es_http_streams.c - GET /v1/streams/{id} and GET /v1/streams (pages of
 * streams of one entity type, in creation order; exclude_deleted=true leaves
 * out streams whose last event is named Deleted, for the CRUD store's lists).
 */
#include <errno.h>
#include <stdlib.h>

#include "es_app.h"
#include "service.h"
#include "es_store.h"
#include "validate.h"

void es_http_get_stream(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    json_t *s = es_store_get_stream(d, id, &e);
    db_pool_release(app->pool, d);
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
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    json_t *page = es_store_list_streams(d, type, after, limit, live, &e);
    db_pool_release(app->pool, d);
    if (!page)
        goto fail;
    http_reply_json(r, 200, page);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
}
