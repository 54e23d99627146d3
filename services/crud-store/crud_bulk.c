/*
 * crud_bulk.c - POST /v1/entities/{type}/_bulk (SPEC §4): up to 1,000
 * creates, puts, patches and deletes, each checked as the single request
 * would be (shape, ids, versions, the type's JSON Schema), then appended as
 * one atomic event-store batch. Operations on the same document follow each
 * other inside the batch (a create then a patch of it is fine). Any failure
 * writes nothing and names the operation in details.index.
 *
 * With an Idempotency-Key the key's record (crud_key.h) is one more event of
 * the batch and carries the results, so a repeat answers them again; creates
 * without an id get ids derived from the key and their position.
 */
#include "crud_bulk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_es.h"
#include "crud_key.h"
#include "crud_replay.h"
#include "crud_types.h"
#include "jsonx.h"
#include "mpatch.h"
#include "uuid4.h"
#include "validate.h"

/* One document as the batch leaves it so far. */
typedef struct bulk_doc {
    char id[VALIDATE_ID_MAX + 1];
    int64_t version; /* 0: does not exist */
    bool deleted;
    json_t *doc;     /* owned; NULL when it does not exist */
} bulk_doc;

typedef struct bulk {
    crud_app *app;
    const char *type;
    char created[CRUD_EVENT_TYPE_MAX], updated[CRUD_EVENT_TYPE_MAX],
        deleted[CRUD_EVENT_TYPE_MAX];
    bulk_doc *docs;
    size_t ndocs;
    crud_es_event *evs;
    json_t **payloads; /* owned, one per event */
    size_t nevs;
    const crud_key *key; /* the Idempotency-Key, or NULL */
} bulk;

/* Adds details.index = i to the error of operation i. */
static void bulk_name(err *e, size_t i)
{
    char msg[sizeof e->message + 32];
    int len = snprintf(msg, sizeof msg, "operations[%zu]: %s", i, e->message);
    if (len > 0) {
        size_t keep = (size_t)len < sizeof e->message ? (size_t)len : sizeof e->message - 1;
        memcpy(e->message, msg, keep);
        e->message[keep] = '\0';
    }
    if (!e->details)
        e->details = json_object();
    if (e->details)
        json_object_set_new(e->details, "index", json_integer((json_int_t)i));
}

/* The state of document id: from the batch, else read from the store. */
static bulk_doc *bulk_doc_get(bulk *b, const char *id, err *e)
{
    for (size_t i = 0; i < b->ndocs; i++) {
        if (strcmp(b->docs[i].id, id) == 0)
            return &b->docs[i];
    }
    bulk_doc *d = &b->docs[b->ndocs];
    crud_doc cur = {0};
    bool found = false;
    memset(d, 0, sizeof *d);
    memcpy(d->id, id, strlen(id) + 1);
    if (!crud_replay_latest(b->app, id, b->type, &cur, &found, e))
        return NULL;
    if (found && cur.exists) {
        d->version = cur.version;
        d->deleted = cur.deleted;
        d->doc = crud_doc_json(&cur, e);
        if (!d->doc) {
            crud_doc_free(&cur);
            return NULL;
        }
    } else if (found) {
        d->version = cur.version; /* a stream without a document of this type */
        d->deleted = true;
    }
    crud_doc_free(&cur);
    b->ndocs++;
    return d;
}

static bool bulk_event(bulk *b, bulk_doc *d, const char *event_type, json_t *payload, err *e)
{
    if (!payload) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    b->payloads[b->nevs] = payload;
    b->evs[b->nevs] = (crud_es_event){d->id, event_type, d->version + 1, NULL, payload};
    b->nevs++;
    d->version++;
    return true;
}

/* Checks operation op and adds its event; false with e set. */
static bool bulk_op(bulk *b, const json_t *op, err *e)
{
    const char *kind = NULL, *id = NULL;
    json_t *payload = NULL, *patch = NULL;
    int64_t version = 0;
    bool has_version = false;
    char uuid[UUID4_LEN];
    if (!json_is_object(op)) {
        err_set(e, ERR_INVALID_ARGUMENT, "an operation must be an object {\"op\", ...}");
        return false;
    }
    if (!jsonx_get_string(op, "op", "op", true, &kind, e) ||
        !jsonx_get_string(op, "id", "id", false, &id, e) ||
        !jsonx_get_int(op, "version", "version", false, 1, INT64_MAX, &version, &has_version,
                       e))
        return false;
    bool create = strcmp(kind, "create") == 0, put = strcmp(kind, "put") == 0;
    bool is_patch = strcmp(kind, "patch") == 0, del = strcmp(kind, "delete") == 0;
    if (!create && !put && !is_patch && !del) {
        err_set(e, ERR_INVALID_ARGUMENT, "op must be create, put, patch or delete");
        return false;
    }
    if ((create || put) && !jsonx_get_object(op, "payload", "payload", true, &payload, e))
        return false;
    if (is_patch && !(patch = json_object_get(op, "patch"))) {
        err_set(e, ERR_INVALID_ARGUMENT, "patch is required (a JSON Merge Patch)");
        return false;
    }
    if (create && has_version) {
        err_set(e, ERR_INVALID_ARGUMENT, "version: a create has none");
        return false;
    }
    if (put && !has_version) {
        err_set(e, ERR_INVALID_ARGUMENT, "version is required (the version read)");
        return false;
    }
    if (!id && !create) {
        err_set(e, ERR_INVALID_ARGUMENT, "id is required");
        return false;
    }
    if (!id && b->key) {
        /* a repeat of the request aims at the same documents */
        char name[VALIDATE_ID_MAX + 64];
        int len = snprintf(name, sizeof name, "bulk-id/%zu/%s", b->nevs, b->key->key);
        uuid4_from_name(uuid, name, len > 0 ? (size_t)len : 0);
        id = uuid;
    } else if (!id) {
        uuid4_generate(uuid);
        id = uuid;
    } else if (!validate_id(id)) {
        err_set(e, ERR_INVALID_ARGUMENT, "id must be 1 to 128 characters of A-Z a-z 0-9 _ - . :");
        return false;
    }
    bulk_doc *d = bulk_doc_get(b, id, e);
    if (!d)
        return false;
    if (create) {
        if (d->version > 0) {
            err_set(e, ERR_CONFLICT, "%s already exists", id);
            return false;
        }
        if (!crud_types_check(b->app, b->type, payload, e))
            return false;
        d->doc = json_deep_copy(payload);
        d->deleted = false;
        return d->doc && bulk_event(b, d, b->created, json_deep_copy(payload), e);
    }
    if (!d->doc || d->deleted) {
        err_set(e, ERR_NOT_FOUND, "%s %s %s", b->type, id,
                d->doc ? "is deleted" : "does not exist");
        return false;
    }
    if (has_version && version != d->version) {
        err_set_details(e, ERR_CONFLICT, json_pack("{s:I}", "current_version",
                                                   (json_int_t)d->version),
                        "%s %s is at version %lld; version %lld is not the last", b->type, id,
                        (long long)d->version, (long long)version);
        return false;
    }
    if (del) {
        d->deleted = true;
        return bulk_event(b, d, b->deleted, json_object(), e);
    }
    json_t *next = put ? json_deep_copy(payload) : mpatch_apply(d->doc, patch);
    if (!json_is_object(next)) {
        json_decref(next);
        err_set(e, ERR_INVALID_ARGUMENT, "the patched document must be a JSON object");
        return false;
    }
    if (!crud_types_check(b->app, b->type, next, e)) {
        json_decref(next);
        return false;
    }
    json_t *change = mpatch_create(d->doc, next);
    json_decref(d->doc);
    d->doc = next;
    if (!change) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    return bulk_event(b, d, b->updated, change, e);
}

/* After the event store refused the batch: which operation lost a race. */
static void bulk_conflict_index(bulk *b, err *e)
{
    for (size_t i = 0; i < b->nevs; i++) {
        crud_doc cur = {0};
        bool found = false;
        err re = ERR_INIT;
        bool ok = crud_replay_latest(b->app, b->evs[i].id, b->type, &cur, &found, &re);
        int64_t now = ok && found ? cur.version : 0;
        crud_doc_free(&cur);
        err_clear(&re);
        /* the first event of its stream in the batch expects the stream at version - 1 */
        bool first = true;
        for (size_t j = 0; j < i; j++)
            first = first && strcmp(b->evs[j].id, b->evs[i].id) != 0;
        if (ok && first && now != b->evs[i].version - 1) {
            bulk_name(e, i);
            return;
        }
    }
}

/* The results of the batch: [{"originator": {"id", "version"}}, ...] (new
 * reference; NULL on OOM). */
static json_t *bulk_results(const bulk *b)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < b->nevs; i++) {
        if (json_array_append_new(arr, json_pack("{s:{s:s, s:I}}", "originator", "id",
                                                 b->evs[i].id, "version",
                                                 (json_int_t)b->evs[i].version))) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static bool bulk_render(buf *out, const json_t *results, err *e)
{
    char *text = jsonx_dump(results);
    bool ok = text && buf_puts(out, "{\"results\":") == 0 && buf_puts(out, text) == 0 &&
              buf_puts(out, "}\n") == 0;
    free(text);
    if (!ok)
        err_set(e, ERR_INTERNAL, "the answer is too large");
    return ok;
}

/*
 * A keyed _bulk whose key was used: renders the first answer (true, *done)
 * or sets e (422 for another request). *done false: the key is unused.
 */
static bool bulk_key_answered(crud_app *app, const crud_key *k, buf *out, bool *done, err *e)
{
    crud_key_record rec;
    json_t *events = NULL;
    *done = false;
    if (!crud_key_lookup(app, k, &rec, e))
        return false;
    if (!rec.found)
        return true;
    *done = true;
    if (!rec.same) {
        crud_key_reused(k, e);
        return false;
    }
    int64_t one = 1;
    if (!crud_es_events(app->es, k->stream, 1, 1, &one, &events, e))
        return false;
    const json_t *results =
        json_object_get(json_object_get(json_array_get(events, 0), "payload"), "results");
    bool ok = false;
    if (!json_is_array(results))
        err_set(e, ERR_INTERNAL, "the record of Idempotency-Key %s is not a _bulk's", k->key);
    else
        ok = bulk_render(out, results, e);
    json_decref(events);
    return ok;
}

bool crud_bulk_run(crud_app *app, const char *type, const json_t *body, const crud_key *key,
                   buf *out, err *e)
{
    const json_t *ops = json_object_get(body, "operations");
    size_t n = json_array_size(ops);
    bulk b = {.app = app, .type = type, .key = key};
    json_t *results = NULL, *record = NULL;
    bool ok = false, done = false;
    if (key && (!bulk_key_answered(app, key, out, &done, e) || done))
        return !e->code;
    if (!json_is_object(body) || !json_is_array(ops) || n < 1 || n > CRUD_BULK_MAX ||
        json_object_size(body) != 1) {
        err_set(e, ERR_INVALID_ARGUMENT, "the body must be {\"operations\": [op, ...]} with 1 "
                "to %d operations", CRUD_BULK_MAX);
        return false;
    }
    if (!crud_event_type(b.created, type, "Created") ||
        !crud_event_type(b.updated, type, "Updated") ||
        !crud_event_type(b.deleted, type, "Deleted")) {
        err_set(e, ERR_INVALID_ARGUMENT, "entity_type is too long for its event types");
        return false;
    }
    if (key && n >= CRUD_BULK_MAX) {
        /* the key's record is one more event of the batch */
        err_set(e, ERR_INVALID_ARGUMENT, "operations: with an Idempotency-Key at most %d",
                CRUD_BULK_MAX - 1);
        return false;
    }
    b.docs = calloc(n, sizeof *b.docs);
    b.evs = calloc(n + 1, sizeof *b.evs);
    b.payloads = calloc(n, sizeof *b.payloads);
    if (!b.docs || !b.evs || !b.payloads) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!bulk_op(&b, json_array_get(ops, i), e)) {
            bulk_name(e, i);
            goto done;
        }
    }
    results = bulk_results(&b);
    if (!results) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    size_t nevs = b.nevs;
    if (key) {
        /* the key's record, in the same batch: a repeat finds the answer there */
        record = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:O}", "key", key->key, "request",
                           key->request, "method", "POST", "status", 200, "id", b.evs[0].id,
                           "version", (json_int_t)b.evs[0].version, "results", results);
        if (!record) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
        b.evs[nevs++] = (crud_es_event){key->stream, CRUD_KEY_EVENT_TYPE, 1,
                                        key->record_event_id, record};
    }
    if (!crud_es_append_events(app->es, b.evs, nevs, e)) {
        if (e->code == ERR_CONFLICT)
            bulk_conflict_index(&b, e);
        goto done;
    }
    ok = bulk_render(out, results, e);
done:
    if (!ok && key && e->code == ERR_CONFLICT) {
        /* a repeat of this request may have won the race for the key (its
         * writes then conflict with ours, in the checks or in the append) */
        err ke = ERR_INIT;
        buf_reset(out);
        if (bulk_key_answered(app, key, out, &done, &ke) && done) {
            err_clear(e);
            ok = true;
        } else if (done) {
            err_clear(e);
            err_move(e, &ke);
        }
        err_clear(&ke);
    }
    json_decref(results);
    json_decref(record);
    for (size_t i = 0; i < b.ndocs; i++)
        json_decref(b.docs[i].doc);
    for (size_t i = 0; i < b.nevs; i++)
        json_decref(b.payloads[i]);
    free(b.docs);
    free(b.evs);
    free(b.payloads);
    return ok;
}
