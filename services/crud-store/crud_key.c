/*
 * crud_key.c - Idempotency-Key records (crud_key.h): deriving the ids of a
 * keyed write, the record event written with it, and the look-up that
 * recognises a repeat.
 */
#include "crud_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* The version-5 UUID of "<what>:<key>". */
static void crud_key_derive(char out[UUID4_LEN], const char *what, const char *key)
{
    char name[VALIDATE_ID_MAX + 16];
    int n = snprintf(name, sizeof name, "%s:%s", what, key);
    uuid4_from_name(out, name, n > 0 ? (size_t)n : 0);
}

bool crud_key_init(crud_key *k, const char *key, const char *method, const char *path,
                   const json_t *body, err *e)
{
    memset(k, 0, sizeof *k);
    if (!validate_id(key)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "the Idempotency-Key header must be 1 to 128 characters of "
                "A-Z a-z 0-9 . _ : @ -");
        return false;
    }
    memcpy(k->key, key, strlen(key) + 1);
    snprintf(k->method, sizeof k->method, "%s", method);
    k->status = strcmp(method, "POST") == 0 ? 201 : 200;
    char kid[UUID4_LEN];
    crud_key_derive(kid, "key", key);
    snprintf(k->stream, sizeof k->stream, "eskit.IdempotencyKey-%s", kid);
    crud_key_derive(k->record_event_id, "record", key);
    crud_key_derive(k->doc_event_id, "event", key);
    crud_key_derive(k->doc_id, "id", key);

    /* the request: method, path and the body as canonical JSON (members
     * sorted), so that a repeat need not repeat the bytes */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                      : NULL;
    buf b;
    buf_init(&b, (size_t)1 << 31);
    bool ok = (!body || text) &&
              buf_printf(&b, "%s %s\n", method, path) == 0 &&
              (!text || buf_puts(&b, text) == 0);
    if (ok)
        uuid4_from_name(k->request, b.data, b.len);
    else
        err_set(e, ERR_INTERNAL, "out of memory reading the request");
    buf_free(&b);
    free(text);
    return ok;
}

bool crud_key_lookup(crud_app *app, const crud_key *k, crud_key_record *out, err *e)
{
    json_t *events = NULL;
    int64_t one = 1;
    memset(out, 0, sizeof *out);
    if (!crud_es_events(app->es, k->stream, 1, 1, &one, &events, e))
        return false;
    json_t *ev = json_array_get(events, 0);
    json_t *p = json_object_get(ev, "payload");
    const char *request = json_string_value(json_object_get(p, "request"));
    const char *id = json_string_value(json_object_get(p, "id"));
    json_t *status = json_object_get(p, "status"), *version = json_object_get(p, "version");
    bool ok = true;
    if (ev) {
        if (!request || !id || strlen(id) > VALIDATE_ID_MAX || !json_is_integer(status) ||
            !json_is_integer(version)) {
            err_set(e, ERR_INTERNAL, "the record of Idempotency-Key %s is malformed", k->key);
            ok = false;
        } else {
            out->found = true;
            out->same = strcmp(request, k->request) == 0;
            out->status = (int)json_integer_value(status);
            memcpy(out->id, id, strlen(id) + 1);
            out->version = json_integer_value(version);
        }
    }
    json_decref(events);
    return ok;
}

bool crud_key_events(const crud_key *k, const crud_es_event *doc, crud_es_event evs[2],
                     json_t **record)
{
    *record = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "key", k->key, "request", k->request,
                        "method", k->method, "status", k->status, "id", doc->id, "version",
                        (json_int_t)doc->version);
    if (!*record)
        return false;
    evs[0] = *doc;
    evs[0].event_id = k->doc_event_id;
    evs[1] = (crud_es_event){k->stream, CRUD_KEY_EVENT_TYPE, 1, k->record_event_id, *record};
    return true;
}

void crud_key_reused(const crud_key *k, err *e)
{
    err_set(e, ERR_UNPROCESSABLE,
            "Idempotency-Key %s was used for another request; a key names one request "
            "(method, path and body)",
            k->key);
}
