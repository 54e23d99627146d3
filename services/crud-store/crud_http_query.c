/*
 * crud_http_query.c - the handlers of POST /v1/entities/{entity_type}/_find
 * and /_bulk: check the path, hand the body to crud_find or crud_bulk,
 * render. The modules parse the body and say what is wrong with it.
 */
#include "buf.h"
#include "crud_app.h"
#include "crud_bulk.h"
#include "crud_find.h"

#define CRUD_HTTP_QUERY_MAX ((size_t)256 << 20) /* the largest response we build */

typedef bool (*crud_http_body_fn)(crud_app *app, const char *type, const json_t *body, buf *out,
                                  err *e);

/* The type, the JSON body, the module, 200 with its text. */
static void crud_http_post_body(http_req *r, crud_http_body_fn fn)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    buf out;
    buf_init(&out, CRUD_HTTP_QUERY_MAX);
    const char *type = crud_app_entity_type(r);
    if (!type)
        goto done;
    json_t *body = http_req_json(r, &e);
    if (!body || !fn(app, type, body, &out, &e)) {
        if (!e.code)
            err_set(&e, ERR_INTERNAL, "the answer is too large");
        http_reply_err(r, &e);
        goto done;
    }
    size_t len = 0;
    char *text = buf_take(&out, &len);
    http_reply_json_text(r, 200, text, len);
done:
    buf_free(&out);
    err_clear(&e);
}

void crud_http_bulk(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    crud_key key;
    buf out;
    buf_init(&out, CRUD_HTTP_QUERY_MAX);
    const char *type = crud_app_entity_type(r);
    if (!type)
        goto done;
    json_t *body = http_req_json(r, &e);
    const char *h = http_req_header(r, "Idempotency-Key");
    if (!body ||
        (h && !crud_key_init(&key, h, http_req_method(r), http_req_path(r), body, &e)) ||
        !crud_bulk_run(app, type, body, h ? &key : NULL, &out, &e)) {
        if (!e.code)
            err_set(&e, ERR_INTERNAL, "the answer is too large");
        http_reply_err(r, &e);
        goto done;
    }
    size_t len = 0;
    char *text = buf_take(&out, &len);
    http_reply_json_text(r, 200, text, len);
done:
    buf_free(&out);
    err_clear(&e);
}

void crud_http_find(http_req *r)
{
    crud_http_post_body(r, crud_find_run);
}
