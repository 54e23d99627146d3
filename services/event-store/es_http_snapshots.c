/*
 * es_http_snapshots.c - PUT and GET /v1/snapshots/{id}: a reader's saved
 * state of a stream at a version. Snapshots are not events and never reach
 * the log.
 */
#include <stdlib.h>

#include "es_app.h"
#include "service.h"
#include "es_store.h"
#include "jsonx.h"

void es_http_put_snapshot(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t version = 0;
    char *payload = NULL;
    db *d = NULL;

    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    json_t *body = http_req_json(r, &e);
    if (!body)
        goto fail;
    if (!json_is_object(body)) {
        err_set(&e, ERR_INVALID_ARGUMENT, "the body must be {\"version\": N, \"payload\": ...}");
        goto fail;
    }
    if (!jsonx_get_int(body, "version", "version", true, 1, INT64_MAX, &version, NULL, &e))
        goto fail;
    json_t *p = json_object_get(body, "payload");
    if (!p) {
        err_set(&e, ERR_INVALID_ARGUMENT, "payload is required");
        goto fail;
    }
    payload = jsonx_dump(p);
    if (!payload) {
        err_set(&e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    if (!(d = service_req_db(r, app->pool)))
        goto done;
    if (!es_store_snapshot_put(d, id, version, payload, &e))
        goto fail;
    http_reply_empty(r, 204);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    if (d)
        db_pool_release(app->pool, d);
    free(payload);
    err_clear(&e);
}

void es_http_get_snapshot(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t max_version = INT64_MAX;
    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    if (!http_req_query_int(r, "max_version", INT64_MAX, 1, INT64_MAX, &max_version, &e)) {
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    json_t *snap = es_store_snapshot_get(d, id, max_version, &e);
    db_pool_release(app->pool, d);
    http_reply_result(r, 200, snap, &e);
}
