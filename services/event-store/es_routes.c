/*
 * es_routes.c - the event store's routes (data), and the two helpers every
 * handler uses.
 */
#include "es_app.h"
#include "validate.h"

const http_route es_routes[] = {
    {"POST", "/v1/events", es_http_append},
    {"GET", "/v1/events/{originator_id}", es_http_read_stream},
    {"GET", "/v1/streams", es_http_list_streams},
    {"GET", "/v1/streams/{originator_id}", es_http_get_stream},
    {"GET", "/v1/logs", es_http_read_log},
    {"GET", "/v1/logs/stream", es_http_log_sse},
    {"PUT", "/v1/snapshots/{originator_id}", es_http_put_snapshot},
    {"GET", "/v1/snapshots/{originator_id}", es_http_get_snapshot},
};
const size_t es_nroutes = sizeof es_routes / sizeof es_routes[0];

db *es_app_db(http_req *r, es_app *app)
{
    err e = ERR_INIT;
    db *d = db_pool_acquire(app->pool, &e);
    if (!d)
        http_reply_err(r, &e);
    err_clear(&e);
    return d;
}

const char *es_app_originator(http_req *r)
{
    const char *id = http_req_param(r, "originator_id");
    if (!validate_id(id)) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "originator_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -");
        return NULL;
    }
    return id;
}
