/*
 * cs_http.c - the handlers of /v1/consumers: parse and validate the request,
 * call cs_store, render. The store does the work and says what went wrong;
 * nothing here knows about SQL.
 */
#include <stdint.h>

#include "cs_app.h"
#include "cs_body.h"
#include "service.h"
#include "cs_store.h"
#include "timefmt.h"

/* PUT /v1/consumers/{id} {"offset": N[, "expected_offset": M]} */
void cs_http_put(http_req *r)
{
    cs_app *app = http_req_app(r);
    err e = ERR_INIT;
    db *d = NULL;
    int64_t offset = 0, expected = 0;
    bool has_expected = false;

    const char *id = service_req_id(r, "consumer_id");
    if (!id)
        return;
    json_t *body = http_req_json(r, &e);
    if (!body || !cs_body_offsets(body, &offset, &expected, &has_expected, &e))
        goto fail;
    if (!(d = service_req_db(r, app->pool)))
        goto done;
    json_t *c = cs_store_put(d, id, offset, has_expected ? &expected : NULL, timefmt_now_ms(), &e);
    if (!c) {
        if (e.code == ERR_CONFLICT)
            metrics_add(app->m_writes, (const char *[]){"conflict"}, 1);
        goto fail;
    }
    metrics_add(app->m_writes, (const char *[]){"ok"}, 1);
    http_reply_json(r, 200, c);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    if (d)
        db_pool_release(app->pool, d);
    err_clear(&e);
}

/* GET /v1/consumers/{id} */
void cs_http_get(http_req *r)
{
    cs_app *app = http_req_app(r);
    err e = ERR_INIT;
    const char *id = service_req_id(r, "consumer_id");
    if (!id)
        return;
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    json_t *c = cs_store_get(d, id, &e);
    db_pool_release(app->pool, d);
    http_reply_result(r, 200, c, &e);
}

/* GET /v1/consumers: all of them, ordered by id (no paging in SPEC §5; a
 * deployment has a handful of consumers, one per reader of the log). */
void cs_http_list(http_req *r)
{
    cs_app *app = http_req_app(r);
    err e = ERR_INIT;
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    json_t *list = cs_store_list(d, &e);
    db_pool_release(app->pool, d);
    http_reply_result(r, 200, list, &e);
}

/* DELETE /v1/consumers/{id}: 204, or 404 when not stored. */
void cs_http_delete(http_req *r)
{
    cs_app *app = http_req_app(r);
    err e = ERR_INIT;
    const char *id = service_req_id(r, "consumer_id");
    if (!id)
        return;
    db *d = service_req_db(r, app->pool);
    if (!d)
        return;
    bool ok = cs_store_delete(d, id, &e);
    db_pool_release(app->pool, d);
    if (ok)
        http_reply_empty(r, 204);
    else
        http_reply_err(r, &e);
    err_clear(&e);
}
