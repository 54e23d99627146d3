/*
 * crud_http_entities.c - the handlers of /v1/entities: parse and validate
 * the request, call crud_entity, render. The module does the work and says
 * what went wrong; nothing here knows about events or the cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crud_app.h"
#include "crud_body.h"
#include "crud_entity.h"
#include "crud_find.h"
#include "crud_key.h"
#include "jsonx.h"
#include "service.h"
#include "validate.h"

#define CRUD_HTTP_PAGE_MAX ((size_t)256 << 20) /* the largest response we build */

/* Sets the ETag header to "<version>". */
static void crud_http_etag(http_req *r, int64_t version)
{
    char tag[32];
    int n = snprintf(tag, sizeof tag, "\"%lld\"", (long long)version);
    if (n > 0 && (size_t)n < sizeof tag)
        http_reply_header(r, "ETag", tag);
}

/* Replies 200 with an entity and its ETag. */
static void crud_http_entity(http_req *r, const char *type, const char *id, const crud_doc *d)
{
    buf b;
    buf_init(&b, CRUD_HTTP_PAGE_MAX);
    if (crud_entity_render(&b, type, id, d, true) || buf_puts(&b, "\n")) {
        buf_free(&b);
        http_reply_error(r, ERR_INTERNAL, "the document is too large to render");
        return;
    }
    crud_http_etag(r, d->version);
    size_t len = 0;
    char *text = buf_take(&b, &len);
    http_reply_json_text(r, 200, text, len);
    buf_free(&b);
}

/* Replies 200 (or 201) {"originator": {"id", "version"}} with an ETag. */
static void crud_http_originator(http_req *r, int status, const char *id, int64_t version)
{
    crud_http_etag(r, version);
    http_reply_json(r, status, json_pack("{s:{s:s, s:I}}", "originator", "id", id, "version",
                                         (json_int_t)version));
}

/* Sets the Location header of a created document. */
static void crud_http_location(http_req *r, const char *type, const char *id)
{
    buf loc;
    buf_init(&loc, 1024);
    if (buf_printf(&loc, "/v1/entities/%s/%s", type, id) == 0)
        http_reply_header(r, "Location", loc.data);
    buf_free(&loc);
}

/*
 * The Idempotency-Key of a write: *k filled and true when the request has
 * one, false when it has none or it is malformed (then answered: 400 and
 * *answered). `body` is the request's JSON, NULL for none.
 */
static bool crud_http_key(http_req *r, const json_t *body, crud_key *k, bool *answered)
{
    err e = ERR_INIT;
    const char *h = http_req_header(r, "Idempotency-Key");
    *answered = false;
    if (!h)
        return false;
    if (!crud_key_init(k, h, http_req_method(r), http_req_path(r), body, &e)) {
        http_reply_err(r, &e);
        *answered = true;
    }
    err_clear(&e);
    return !*answered;
}

/*
 * A keyed write looks its key up first, and again after a conflict or a
 * 404 (crud_http_key_won): when the key was used, answers (the first answer
 * again, or 422 for another request) and returns true. False: the key is
 * unused; go on. A failed look-up is answered too (true).
 */
static bool crud_http_key_answered(http_req *r, crud_app *app, const char *type,
                                   const crud_key *k)
{
    err e = ERR_INIT;
    crud_key_record rec;
    crud_doc d = {0};
    if (!crud_key_lookup(app, k, &rec, &e))
        goto fail;
    if (!rec.found)
        return false;
    if (!rec.same) {
        crud_key_reused(k, &e);
        goto fail;
    }
    if (strcmp(k->method, "PATCH") == 0) {
        /* the first answer was the document as that write left it */
        if (!crud_entity_read(app, type, rec.id, rec.version, true, &d, &e))
            goto fail;
        crud_http_entity(r, type, rec.id, &d);
        crud_doc_free(&d);
        return true;
    }
    if (rec.status == 201)
        crud_http_location(r, type, rec.id);
    crud_http_originator(r, rec.status, rec.id, rec.version);
    return true;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
    return true;
}

/* After a keyed write failed with e: true when the failure was a repeat of
 * the request that another one won (then answered as it was). A repeat
 * that lost sees a conflict, or a 404: a DELETE whose twin committed
 * between this one's key look-up and its read finds the document deleted. */
static bool crud_http_key_won(http_req *r, crud_app *app, const char *type, const crud_key *k,
                              const err *e)
{
    return k && (e->code == ERR_CONFLICT || e->code == ERR_NOT_FOUND) &&
           crud_http_key_answered(r, app, type, k);
}

/* POST /v1/entities/{entity_type} {"payload": {...}, "originator": {"id"}} */
void crud_http_create(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    json_t *payload = NULL;
    const char *id = NULL;
    char out_id[VALIDATE_ID_MAX + 1];
    crud_key key;
    const crud_key *kp = NULL;
    bool answered = false;

    const char *type = crud_app_entity_type(r);
    if (!type)
        goto done;
    json_t *body = http_req_json(r, &e);
    if (!body || !crud_body_create(body, &payload, &id, &e))
        goto fail;
    if (crud_http_key(r, body, &key, &answered))
        kp = &key;
    if (answered || (kp && crud_http_key_answered(r, app, type, kp)))
        goto done;
    if (!crud_entity_create(app, type, id, payload, kp, out_id, &e)) {
        if (crud_http_key_won(r, app, type, kp, &e))
            goto done;
        goto fail;
    }
    crud_http_location(r, type, out_id);
    crud_http_originator(r, 201, out_id, 1);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    err_clear(&e);
}

/* GET /v1/entities/{entity_type}/{id}?version&deleted */
/* GET of a document as it was at a past point, from the query index; an
 * erased document is 410 as for every read. */
static void crud_http_get_at(http_req *r, crud_app *app, const char *type, const char *id,
                             const crud_point *past, bool with_deleted)
{
    err e = ERR_INIT;
    crud_doc d = {0};
    buf b;
    int64_t version = 0;
    bool found = false;
    buf_init(&b, CRUD_HTTP_PAGE_MAX);
    /* the latest state first: 404 for another type, 410 once erased */
    if (!crud_entity_read(app, type, id, 0, true, &d, &e) ||
        !crud_find_get_at(app, type, id, past, with_deleted, &b, &version, &found, &e))
        goto fail;
    if (!found) {
        err_set(&e, ERR_NOT_FOUND, "%s %s did not exist then%s", type, id,
                with_deleted ? "" : " (or was deleted then)");
        goto fail;
    }
    if (buf_puts(&b, "\n")) {
        err_set(&e, ERR_INTERNAL, "the document is too large to render");
        goto fail;
    }
    crud_http_etag(r, version);
    size_t len = 0;
    char *text = buf_take(&b, &len);
    http_reply_json_text(r, 200, text, len);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    crud_doc_free(&d);
    buf_free(&b);
    err_clear(&e);
}

void crud_http_get(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    crud_doc d = {0};
    int64_t version = 0;
    bool with_deleted = false;

    const char *type = crud_app_entity_type(r);
    const char *id = type ? service_req_id(r, "id") : NULL;
    if (!id)
        return;
    crud_point past;
    if (!http_req_query_int(r, "version", 0, 1, INT64_MAX, &version, &e) ||
        !http_req_query_bool(r, "deleted", false, &with_deleted, &e) ||
        !crud_point_from_query(r, version, &past, &e))
        goto fail;
    if (past.has_time || past.has_log_id) {
        crud_http_get_at(r, app, type, id, &past, with_deleted);
        return;
    }
    if (!crud_entity_read(app, type, id, version, with_deleted, &d, &e))
        goto fail;
    crud_http_entity(r, type, id, &d);
    crud_doc_free(&d);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
}

/* PUT /v1/entities/{entity_type}/{id} {"originator": {"version": N},
 * "payload": {...}} or If-Match: "N" */
void crud_http_put(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    json_t *payload = NULL;
    int64_t version = 0, next = 0;
    bool answered = false;
    crud_key key;
    const crud_key *kp = NULL;

    const char *type = crud_app_entity_type(r);
    const char *id = type ? service_req_id(r, "id") : NULL;
    if (!id)
        return;
    json_t *body = http_req_json(r, &e);
    if (!body ||
        !crud_body_put(body, id, http_req_header(r, "If-Match"), &payload, &version, &e))
        goto fail;
    if (crud_http_key(r, body, &key, &answered))
        kp = &key;
    if (answered || (kp && crud_http_key_answered(r, app, type, kp)))
        return;
    if (!crud_entity_put(app, type, id, version, payload, kp, &next, &e)) {
        if (crud_http_key_won(r, app, type, kp, &e))
            goto done;
        goto fail;
    }
    crud_http_originator(r, 200, id, next);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    err_clear(&e);
}

/* PATCH /v1/entities/{entity_type}/{id}: the body is a JSON Merge Patch. */
void crud_http_patch(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    crud_doc d = {0};
    int64_t if_match = 0;
    bool has_header = false, answered = false;
    crud_key key;
    const crud_key *kp = NULL;

    const char *type = crud_app_entity_type(r);
    const char *id = type ? service_req_id(r, "id") : NULL;
    if (!id)
        return;
    json_t *patch = http_req_json(r, &e);
    if (!patch || !crud_app_if_match(r, &if_match, &has_header, &e))
        goto fail;
    if (crud_http_key(r, patch, &key, &answered))
        kp = &key;
    if (answered || (kp && crud_http_key_answered(r, app, type, kp)))
        goto done;
    if (!crud_entity_patch(app, type, id, patch, has_header ? if_match : 0, kp, &d, &e)) {
        if (crud_http_key_won(r, app, type, kp, &e))
            goto done;
        goto fail;
    }
    crud_http_entity(r, type, id, &d);
    crud_doc_free(&d);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    err_clear(&e);
}

/* DELETE /v1/entities/{entity_type}/{id}[?erase=true] */
void crud_http_delete(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t if_match = 0, next = 0;
    bool has_header = false, answered = false;
    crud_key key;
    const crud_key *kp = NULL;

    const char *type = crud_app_entity_type(r);
    const char *id = type ? service_req_id(r, "id") : NULL;
    if (!id)
        return;
    bool erase = false;
    if (!crud_app_if_match(r, &if_match, &has_header, &e) ||
        !http_req_query_bool(r, "erase", false, &erase, &e))
        goto fail;
    if (erase) {
        /* Erasure takes no Idempotency-Key: a repeat finds the document
         * gone (410), and no record of the request is kept. */
        if (!crud_entity_erase(app, type, id, has_header ? if_match : 0, &e))
            goto fail;
        http_reply_empty(r, 204);
        goto done;
    }
    if (crud_http_key(r, NULL, &key, &answered))
        kp = &key;
    if (answered || (kp && crud_http_key_answered(r, app, type, kp)))
        goto done;
    if (!crud_entity_delete(app, type, id, has_header ? if_match : 0, kp, &next, &e)) {
        if (crud_http_key_won(r, app, type, kp, &e))
            goto done;
        goto fail;
    }
    crud_http_originator(r, 200, id, next);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    err_clear(&e);
}

/* GET /v1/entities/{entity_type}?limit&page_token&skip_payload */
void crud_http_list(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t limit = 10;
    bool skip_payload = false;
    buf out;
    buf_init(&out, CRUD_HTTP_PAGE_MAX);

    const char *type = crud_app_entity_type(r);
    if (!type)
        goto done;
    crud_point past;
    if (!http_req_query_int(r, "limit", 10, 1, 100, &limit, &e) ||
        !http_req_query_bool(r, "skip_payload", false, &skip_payload, &e) ||
        !crud_point_from_query(r, 0, &past, &e) ||
        !(past.has_time || past.has_log_id
              ? crud_find_list_at(app, type, &past, limit, http_req_query(r, "page_token"),
                                  skip_payload, &out, &e)
              : crud_entity_list(app, type, limit, http_req_query(r, "page_token"),
                                 skip_payload, &out, &e))) {
        http_reply_err(r, &e);
        goto done;
    }
    if (buf_puts(&out, "\n")) {
        http_reply_error(r, ERR_INTERNAL, "the page is too large");
        goto done;
    }
    size_t len = 0;
    char *text = buf_take(&out, &len);
    http_reply_json_text(r, 200, text, len);
done:
    buf_free(&out);
    err_clear(&e);
}

/* GET /v1/entities/{entity_type}/{id}/history?from_version&limit */
void crud_http_history(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t from = 1, limit = 100;

    const char *type = crud_app_entity_type(r);
    const char *id = type ? service_req_id(r, "id") : NULL;
    if (!id)
        return;
    json_t *h = NULL;
    if (!http_req_query_int(r, "from_version", 1, 1, INT64_MAX, &from, &e) ||
        !http_req_query_int(r, "limit", 100, 1, 1000, &limit, &e) ||
        !(h = crud_entity_history(app, type, id, from, limit, &e))) {
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    http_reply_json(r, 200, h);
}
