/*
 * es_http_events.c - POST /v1/events (append) and GET /v1/events/{id}
 * (read a stream).
 */
#include <stdlib.h>

#include "buf.h"
#include "es_app.h"
#include "service.h"
#include "es_event.h"
#include "es_store.h"

void es_http_append(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    es_event *evs = NULL;
    size_t n = 0;
    bool batch = false;

    json_t *body = http_req_json(r, &e);
    if (!body)
        goto fail;
    evs = es_event_parse_request(body, &n, &batch, &e);
    if (!evs)
        goto fail;
    if (!es_append(app->committer, evs, n, &e))
        goto fail;

    metrics_add(app->m_appended, NULL, (double)n);
    buf out;
    buf_init(&out, (size_t)1 << 30);
    if (es_event_render_appended(&out, evs, n, batch)) {
        buf_free(&out);
        err_set(&e, ERR_INTERNAL, "response too large");
        goto fail;
    }
    size_t len = 0;
    char *text = buf_take(&out, &len);
    http_reply_json_text(r, 201, text, len);
    free(evs);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
    free(evs);
}

void es_http_read_stream(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t from = 1, to = INT64_MAX, limit = 10000;
    buf out;
    db *d = NULL;
    buf_init(&out, (size_t)1 << 30);

    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    if (!http_req_query_int(r, "from_version", 1, 1, INT64_MAX, &from, &e) ||
        !http_req_query_int(r, "to_version", INT64_MAX, 1, INT64_MAX, &to, &e) ||
        !http_req_query_int(r, "limit", 10000, 1, 10000, &limit, &e))
        goto fail;
    if (!(d = service_req_db(r, app->pool)))
        goto done;
    if (!es_store_read_stream(d, id, from, to, limit, &out, &e))
        goto fail;
    size_t len = 0;
    char *text = buf_take(&out, &len);
    http_reply_json_text(r, 200, text, len);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    if (d)
        db_pool_release(app->pool, d);
    err_clear(&e);
    buf_free(&out);
}
