/*
 * cs_routes.c - the consumer store's routes (data, SPEC §5), and the two
 * helpers every handler uses.
 */
#include "cs_app.h"
#include "validate.h"

const http_route cs_routes[] = {
    {"GET", "/v1/consumers", cs_http_list},
    {"GET", "/v1/consumers/{consumer_id}", cs_http_get},
    {"PUT", "/v1/consumers/{consumer_id}", cs_http_put},
    {"DELETE", "/v1/consumers/{consumer_id}", cs_http_delete},
};
const size_t cs_nroutes = sizeof cs_routes / sizeof cs_routes[0];

db *cs_app_db(http_req *r, cs_app *app)
{
    err e = ERR_INIT;
    db *d = db_pool_acquire(app->pool, &e);
    if (!d)
        http_reply_err(r, &e);
    err_clear(&e);
    return d;
}

const char *cs_app_consumer(http_req *r)
{
    const char *id = http_req_param(r, "consumer_id");
    if (!validate_id(id)) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "consumer_id must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -");
        return NULL;
    }
    return id;
}
