/*
 * crud_es.c - the event-store calls of the CRUD store (see crud_es.h): build
 * the path, perform the call through the shared http_client (its handles keep
 * their connections alive), check the shape of the answer and map failures to
 * the error model of SPEC §2.
 */
#include "crud_es.h"

#include <string.h>

#include "buf.h"
#include "jsonx.h"

#define CRUD_ES_PATH_MAX 4096
#define CRUD_ES_READY_MS 2000

/* The event store's own error message, or "" when its body has none. */
static const char *crud_es_message(const http_resp *r)
{
    json_t *body = json_object_get(r->json, "error");
    const char *m = json_string_value(json_object_get(body, "message"));
    return m ? m : "";
}

/* Maps a non-2xx answer (other than the 404s the caller handles). */
static void crud_es_fail(const http_resp *r, const char *what, err *e)
{
    const char *msg = crud_es_message(r);
    json_t *details = json_object_get(json_object_get(r->json, "error"), "details");
    switch (r->status) {
    case 409:
        err_set_details(e, ERR_CONFLICT, json_is_object(details) ? json_deep_copy(details) : NULL,
                        "%s", msg[0] ? msg : "conflict in the event store");
        break;
    case 413:
        err_set(e, ERR_PAYLOAD_TOO_LARGE, "the event store refused %s as too large: %s", what,
                msg);
        break;
    case 400:
        err_set(e, ERR_INVALID_ARGUMENT, "the event store refused %s: %s", what, msg);
        break;
    case 404:
        err_set(e, ERR_NOT_FOUND, "%s", msg[0] ? msg : "not found in the event store");
        break;
    case 410: /* an erased stream (SPEC §3) */
        err_set(e, ERR_GONE, "%s", msg[0] ? msg : "erased in the event store");
        break;
    default:
        /* a 503 may say that the write's outcome is unknown: so does ours */
        if (r->status == 503 && json_is_object(details))
            err_set_details(e, ERR_UNAVAILABLE, json_deep_copy(details),
                            "event store unavailable: %s answered %ld %s", what, r->status, msg);
        else if (r->status >= 500 || r->status == 401 || r->status == 403)
            err_set(e, ERR_UNAVAILABLE, "event store unavailable: %s answered %ld %s", what,
                    r->status, msg);
        else
            err_set(e, ERR_INTERNAL, "the event store answered %s with %ld %s", what, r->status,
                    msg);
        break;
    }
}

/* Performs one call. On a transport failure e = unavailable. When `what`
 * names the call, an answer other than 2xx (or 404, with allow_404) is
 * mapped by crud_es_fail() and false is returned; with what = NULL the
 * caller looks at the status itself. */
/* crud_es_do with a cap on the answer's size (0: the client's default). An
 * answer over a cap of the caller's stays payload_too_large (the caller
 * asks for less); over the default cap it is internal. */
static bool crud_es_do_capped(http_client *es, const char *method, const buf *path,
                              const json_t *body, int timeout_ms, const char *what,
                              bool allow_404, size_t max_body, http_resp *resp, err *e)
{
    err te = ERR_INIT;
    http_call call = {.method = method, .path = path->data, .body = body,
                      .timeout_ms = timeout_ms, .max_body = max_body};
    if (http_client_do(es, &call, resp, &te)) {
        if (!what || resp->status / 100 == 2 || (allow_404 && resp->status == 404))
            return true;
        crud_es_fail(resp, what, e);
        return false;
    }
    if (te.code == ERR_UNAVAILABLE)
        err_set(e, ERR_UNAVAILABLE, "event store unavailable: %s", te.message);
    else if (te.code == ERR_PAYLOAD_TOO_LARGE && max_body == 0) /* not the client's: 500 */
        err_set(e, ERR_INTERNAL, "%s: %s", what ? what : "a call", te.message);
    else
        err_move(e, &te);
    err_clear(&te);
    return false;
}

static bool crud_es_do(http_client *es, const char *method, const buf *path, const json_t *body,
                       int timeout_ms, const char *what, bool allow_404, http_resp *resp, err *e)
{
    return crud_es_do_capped(es, method, path, body, timeout_ms, what, allow_404, 0, resp, e);
}

/* Appends "/v1/<what>/<escaped id>" to a fresh path buffer (freed again
 * when that fails). */
static bool crud_es_path(buf *b, const char *prefix, const char *id, err *e)
{
    buf_init(b, CRUD_ES_PATH_MAX);
    if (buf_puts(b, prefix) || http_client_escape(b, id)) {
        buf_free(b);
        err_set(e, ERR_INTERNAL, "event store path too long");
        return false;
    }
    return true;
}

/* GETs `path` (freed here). On a 2xx answer that `shape_ok` accepts, *body
 * receives a new reference to its JSON (the caller decrefs); else e is set. */
static bool crud_es_get_json(http_client *es, buf *path, const char *what,
                             bool (*shape_ok)(const json_t *), json_t **body, err *e)
{
    http_resp r = {0};
    bool ok = false;
    *body = NULL;
    if (!crud_es_do(es, "GET", path, NULL, 0, what, false, &r, e))
        goto done;
    if (!shape_ok(r.json)) {
        err_set(e, ERR_INTERNAL, "the event store answered %s with an unexpected body", what);
        goto done;
    }
    *body = json_incref(r.json);
    ok = true;
done:
    http_resp_free(&r);
    buf_free(path);
    return ok;
}

static bool crud_es_events_shape(const json_t *j)
{
    return json_is_array(json_object_get(j, "events"));
}

static bool crud_es_streams_shape(const json_t *j)
{
    json_t *next = json_object_get(j, "next_after");
    return json_is_array(json_object_get(j, "streams")) &&
           (json_is_null(next) || json_is_string(next));
}

static bool crud_es_log_shape(const json_t *j)
{
    return json_is_array(json_object_get(j, "results")) &&
           json_is_integer(json_object_get(j, "next_from_id")) &&
           json_is_integer(json_object_get(j, "head_id"));
}

bool crud_es_stream(http_client *es, const char *id, crud_stream *out, bool *found, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    *found = false;
    if (!crud_es_path(&path, "/v1/streams/", id, e) ||
        !crud_es_do(es, "GET", &path, NULL, 0, "a stream read", true, &r, e))
        goto done;
    if (r.status == 404) {
        ok = true;
        goto done;
    }
    const char *type = json_string_value(json_object_get(r.json, "entity_type"));
    const char *last = json_string_value(json_object_get(r.json, "last_event_type"));
    json_t *v = json_object_get(r.json, "version");
    if (!type || !last || !json_is_integer(v) || json_integer_value(v) < 1 ||
        strlen(type) > VALIDATE_TYPE_MAX || strlen(last) > VALIDATE_TYPE_MAX) {
        err_set(e, ERR_INTERNAL, "the event store answered a stream read with an unexpected body");
        goto done;
    }
    memcpy(out->entity_type, type, strlen(type) + 1);
    memcpy(out->last_event_type, last, strlen(last) + 1);
    out->version = json_integer_value(v);
    *found = true;
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}

bool crud_es_events(http_client *es, const char *id, int64_t from, int64_t to, int64_t *limit,
                    json_t **events, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    *events = NULL;
    for (;;) {
        if (!crud_es_path(&path, "/v1/events/", id, e))
            return false;
        if (buf_printf(&path, "?from_version=%lld&to_version=%lld&limit=%lld", (long long)from,
                       (long long)to, (long long)*limit)) {
            err_set(e, ERR_INTERNAL, "event store path too long");
            goto done;
        }
        /* one event alone may be as large as the event store takes */
        size_t cap = *limit > 1 ? CRUD_ES_PAGE_BYTES : 0;
        if (crud_es_do_capped(es, "GET", &path, NULL, 0, "a stream read", false, cap, &r, e))
            break;
        if (e->code != ERR_PAYLOAD_TOO_LARGE || *limit <= 1)
            goto done;
        /* a page of large events: ask for half as many, here and after */
        *limit = (*limit + 1) / 2;
        err_clear(e);
        http_resp_free(&r);
        buf_free(&path);
    }
    if (!crud_es_events_shape(r.json)) {
        err_set(e, ERR_INTERNAL, "the event store answered a stream read with an unexpected body");
        goto done;
    }
    *events = json_incref(json_object_get(r.json, "events"));
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}

bool crud_es_append_events(http_client *es, const crud_es_event *evs, size_t n, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    json_t *list = json_array(), *body = NULL;
    buf_init(&path, CRUD_ES_PATH_MAX);
    for (size_t i = 0; list && i < n; i++) {
        /* json_pack's "O" increfs: the event holds a reference, dropped with it */
        json_t *ev = json_pack("{s:{s:s, s:I}, s:s, s:O}", "originator", "id", evs[i].id,
                               "version", (json_int_t)evs[i].version, "event_type",
                               evs[i].event_type, "payload", evs[i].payload);
        if (ev && evs[i].event_id && json_object_set_new(ev, "event_id",
                                                         json_string(evs[i].event_id))) {
            json_decref(ev);
            ev = NULL;
        }
        if (!ev || json_array_append_new(list, ev)) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list)
        body = n == 1 ? json_incref(json_array_get(list, 0)) : json_pack("{s:O}", "events", list);
    if (!body || buf_puts(&path, "/v1/events")) {
        err_set(e, ERR_INTERNAL, "out of memory building an event");
        goto done;
    }
    if (!crud_es_do(es, "POST", &path, body, 0, "an append", false, &r, e))
        goto done;
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    json_decref(body);
    json_decref(list);
    return ok;
}

bool crud_es_append(http_client *es, const char *id, const char *event_type, int64_t version,
                    const json_t *payload, err *e)
{
    crud_es_event ev = {id, event_type, version, NULL, payload};
    return crud_es_append_events(es, &ev, 1, e);
}

bool crud_es_snapshot_get(http_client *es, const char *id, int64_t max_version, bool *found,
                          int64_t *version, json_t **payload, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    *found = false;
    *payload = NULL;
    if (!crud_es_path(&path, "/v1/snapshots/", id, e))
        goto done;
    if (buf_printf(&path, "?max_version=%lld", (long long)max_version)) {
        err_set(e, ERR_INTERNAL, "event store path too long");
        goto done;
    }
    if (!crud_es_do(es, "GET", &path, NULL, 0, "a snapshot read", true, &r, e))
        goto done;
    if (r.status == 404) {
        ok = true;
        goto done;
    }
    json_t *v = json_object_get(r.json, "version");
    json_t *p = json_object_get(r.json, "payload");
    if (!json_is_integer(v) || !p) {
        err_set(e, ERR_INTERNAL, "the event store answered a snapshot read with an unexpected body");
        goto done;
    }
    *version = json_integer_value(v);
    *payload = json_incref(p);
    *found = true;
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}

bool crud_es_snapshot_put(http_client *es, const char *id, int64_t version,
                          const json_t *payload, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    json_t *body = json_pack("{s:I, s:O}", "version", (json_int_t)version, "payload", payload);
    if (!body) {
        err_set(e, ERR_INTERNAL, "out of memory building a snapshot");
        return false;
    }
    if (!crud_es_path(&path, "/v1/snapshots/", id, e) ||
        !crud_es_do(es, "PUT", &path, body, 0, "a snapshot write", false, &r, e))
        goto done;
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    json_decref(body);
    return ok;
}

bool crud_es_erase(http_client *es, const char *id, int64_t expected_version, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    if (!crud_es_path(&path, "/v1/streams/", id, e))
        return false;
    if (expected_version > 0 &&
        buf_printf(&path, "?expected_version=%lld", (long long)expected_version)) {
        err_set(e, ERR_INTERNAL, "event store path too long");
        goto done;
    }
    ok = crud_es_do(es, "DELETE", &path, NULL, 0, "an erasure", false, &r, e);
done:
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}

bool crud_es_list_streams(http_client *es, const char *entity_type, int64_t after,
                          int64_t limit, bool exclude_deleted, json_t **page, err *e)
{
    buf path;
    *page = NULL;
    if (!crud_es_path(&path, "/v1/streams?entity_type=", entity_type, e))
        return false;
    if ((after > 0 && buf_printf(&path, "&after=%lld", (long long)after)) ||
        buf_printf(&path, "&limit=%lld", (long long)limit) ||
        (exclude_deleted && buf_puts(&path, "&exclude_deleted=true"))) {
        buf_free(&path);
        err_set(e, ERR_INTERNAL, "event store path too long");
        return false;
    }
    return crud_es_get_json(es, &path, "a stream listing", crud_es_streams_shape, page, e);
}

bool crud_es_log(http_client *es, int64_t from_id, int64_t size, json_t **page, err *e)
{
    buf path;
    *page = NULL;
    buf_init(&path, CRUD_ES_PATH_MAX);
    if (buf_printf(&path, "/v1/logs?from_id=%lld&size=%lld&skip_payload=true", (long long)from_id,
                   (long long)size)) {
        buf_free(&path);
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    return crud_es_get_json(es, &path, "a log read", crud_es_log_shape, page, e);
}

bool crud_es_log_events(http_client *es, int64_t from_id, int64_t size, int wait_s,
                        bool with_payload, json_t **page, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    *page = NULL;
    buf_init(&path, CRUD_ES_PATH_MAX);
    if (buf_printf(&path, "/v1/logs?from_id=%lld&size=%lld&wait=%d%s", (long long)from_id,
                   (long long)size, wait_s, with_payload ? "" : "&skip_payload=true")) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    /* a long poll may take its whole wait: the call's time-out covers it */
    if (!crud_es_do(es, "GET", &path, NULL, wait_s > 0 ? (wait_s + 10) * 1000 : 0, "a log read",
                    false, &r, e))
        goto done;
    if (!crud_es_log_shape(r.json)) {
        err_set(e, ERR_INTERNAL, "the event store answered a log read with an unexpected body");
        goto done;
    }
    *page = json_incref(r.json);
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}

bool crud_es_ready(http_client *es, err *e)
{
    buf path;
    http_resp r = {0};
    bool ok = false;
    buf_init(&path, 64);
    if (buf_puts(&path, "/readyz")) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    if (!crud_es_do(es, "GET", &path, NULL, CRUD_ES_READY_MS, NULL, false, &r, e))
        goto done;
    if (r.status != 200) {
        err_set(e, ERR_UNAVAILABLE, "event store unavailable: its /readyz answered %ld %s",
                r.status, crud_es_message(&r));
        goto done;
    }
    ok = true;
done:
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}
