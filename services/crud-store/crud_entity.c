/*
 * crud_entity.c - reading and writing one document (see crud_entity.h).
 *
 * Each operation takes the document at its last version (crud_replay_latest:
 * usually the cache, after the read barrier of crud_sync.h), decides, and
 * appends one event at exactly the next version; the event store refuses it
 * if another writer got there first. A PATCH or DELETE without If-Match
 * applies to whatever the latest version is, so a lost race is not the
 * client's conflict: it is retried (read again, apply again, append again)
 * after a short random pause, and only after CRUD_WRITE_ATTEMPTS lost races
 * does the client get 503 (try again), never a 409 for a version it did not
 * name. After a successful append the new state is known without a replay,
 * so it goes straight into the cache.
 */
#include "crud_entity.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crud_es.h"
#include "crud_key.h"
#include "crud_types.h"
#include "jsonw.h"
#include "jsonx.h"
#include "mpatch.h"
#include "uuid4.h"

/* Writes without If-Match that lose a race are tried this many times, with
 * a pause before each retry drawn from [d/2, d], where d doubles from
 * CRUD_BACKOFF_MIN_US up to CRUD_BACKOFF_MAX_US: with 16 writers on one
 * document every one gets through, and a write that never does gives up
 * after a few seconds. */
#define CRUD_WRITE_ATTEMPTS 100
#define CRUD_BACKOFF_MIN_US 1000
#define CRUD_BACKOFF_MAX_US 50000

int crud_entity_render(buf *b, const char *type, const char *id, const crud_doc *d,
                       bool with_payload)
{
    if (buf_puts(b, "{\"entity_type\":") || jsonw_string(b, type) ||
        buf_puts(b, ",\"originator\":{\"id\":") || jsonw_string(b, id) ||
        buf_printf(b, ",\"version\":%lld}", (long long)d->version))
        return -1;
    if (with_payload &&
        (buf_puts(b, ",\"payload\":") || buf_append(b, d->text ? d->text : "null",
                                                    d->text ? d->len : 4)))
        return -1;
    return buf_printf(b, ",\"deleted\":%s}", d->deleted ? "true" : "false");
}

/* The live document at its last version (*doc filled): not_found when the
 * stream does not exist, belongs to another entity type or is deleted. */
static bool crud_entity_latest(crud_app *app, const char *type, const char *id, crud_doc *doc,
                               err *e)
{
    bool found = false;
    if (!crud_replay_latest(app, id, type, doc, &found, e))
        return false;
    if (!found || !doc->exists || doc->deleted) {
        err_set(e, ERR_NOT_FOUND, "%s %s %s", type, id,
                found && doc->exists ? "is deleted" : "does not exist");
        crud_doc_free(doc);
        return false;
    }
    return true;
}

/* Appends the document event (and, for a keyed write, the key's record in
 * the same batch). */
static bool crud_entity_append(crud_app *app, const crud_key *key, const char *id,
                               const char *event_type, int64_t version, const json_t *payload,
                               err *e)
{
    crud_es_event doc = {id, event_type, version, NULL, payload};
    if (!key)
        return crud_es_append_events(app->es, &doc, 1, e);
    crud_es_event evs[2];
    json_t *record = NULL;
    if (!crud_key_events(key, &doc, evs, &record)) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    bool ok = crud_es_append_events(app->es, evs, 2, e);
    json_decref(record);
    return ok;
}

/* Whether a write without If-Match that got e lost a race on the version
 * (and not over the key's own events: then a repeat of the request won, and
 * its caller answers as that one did). */
static bool crud_entity_lost_race(const err *e, int64_t if_match)
{
    return e->code == ERR_CONFLICT && if_match == 0 && !json_object_get(e->details, "event_id");
}

/* Whether such a write may try again from the latest version. */
static bool crud_entity_may_retry(const err *e, int64_t if_match, int attempt)
{
    return crud_entity_lost_race(e, if_match) && attempt + 1 < CRUD_WRITE_ATTEMPTS;
}

static void crud_entity_stale(err *e, const char *type, const char *id, int64_t current,
                              int64_t wanted)
{
    err_set_details(e, ERR_CONFLICT, json_pack("{s:I}", "current_version", (json_int_t)current),
                    "%s %s is at version %lld; version %lld is not the last", type, id,
                    (long long)current, (long long)wanted);
}

/* After the event store refused an append at `version` + 1: the conflict,
 * with the stream's current version when the event store told it. */
static void crud_entity_lost(err *e, const char *type, const char *id, int64_t version)
{
    json_t *cv = json_object_get(e->details, "current_version");
    int64_t current = json_is_integer(cv) ? json_integer_value(cv) : version + 1;
    crud_entity_stale(e, type, id, current, version);
}

/* Before retry number `attempt` (1, 2, ...) of a write that lost a race:
 * counts it and sleeps a random while, so that racing writers spread out. */
static void crud_entity_backoff(crud_app *app, int attempt)
{
    static _Thread_local unsigned seed;
    if (seed == 0)
        seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)pthread_self() ^ 0x9e3779b9u;
    long d = CRUD_BACKOFF_MIN_US;
    for (int i = 1; i < attempt && d < CRUD_BACKOFF_MAX_US; i++)
        d *= 2;
    if (d > CRUD_BACKOFF_MAX_US)
        d = CRUD_BACKOFF_MAX_US;
    long us = d / 2 + (long)(rand_r(&seed) % (unsigned)(d / 2 + 1));
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    metrics_add(app->m_retries, NULL, 1);
    nanosleep(&ts, NULL);
}

/* A write without If-Match that lost every one of its races. */
static void crud_entity_contended(err *e, const char *what, const char *type, const char *id)
{
    err_set(e, ERR_UNAVAILABLE,
            "%s of %s %s lost the race to other writers %d times in a row; try again", what,
            type, id, CRUD_WRITE_ATTEMPTS);
}

bool crud_entity_read(crud_app *app, const char *type, const char *id, int64_t version,
                      bool with_deleted, crud_doc *out, err *e)
{
    crud_doc last = {0};
    bool found = false;
    memset(out, 0, sizeof *out);
    if (!crud_replay_latest(app, id, type, &last, &found, e))
        return false;
    if (!found) {
        err_set(e, ERR_NOT_FOUND, "%s %s does not exist", type, id);
        return false;
    }
    if (version > last.version) {
        err_set(e, ERR_NOT_FOUND, "%s %s has no version %lld (its last is %lld)", type, id,
                (long long)version, (long long)last.version);
        crud_doc_free(&last);
        return false;
    }
    if (version > 0 && version < last.version) {
        crud_doc_free(&last);
        if (!crud_replay_at(app, id, type, version, NULL, &last, e))
            return false;
    }
    if (!last.exists || (last.deleted && !with_deleted)) {
        err_set(e, ERR_NOT_FOUND, "%s %s %s", type, id,
                !last.exists ? "does not exist at this version" : "is deleted");
        crud_doc_free(&last);
        return false;
    }
    *out = last;
    return true;
}

bool crud_entity_create(crud_app *app, const char *type, const char *id, const json_t *payload,
                        const crud_key *key, char out_id[VALIDATE_ID_MAX + 1], err *e)
{
    char et[CRUD_EVENT_TYPE_MAX];
    char uuid[UUID4_LEN];
    if (!crud_event_type(et, type, "Created")) {
        err_set(e, ERR_INVALID_ARGUMENT, "entity_type is too long: '%s.Created' would pass the "
                                         "200 characters of an event type", type);
        return false;
    }
    if (!id && key) {
        id = key->doc_id; /* a repeat of the request aims at the same stream */
    } else if (!id) {
        uuid4_generate(uuid);
        id = uuid;
    }
    if (!crud_types_check(app, type, payload, e))
        return false;
    crud_cache_mark m = crud_cache_mark_now(app->cache);
    if (!crud_entity_append(app, key, id, et, 1, payload, e)) {
        if (e->code == ERR_CONFLICT)
            err_set(e, ERR_CONFLICT, "%s already exists", id);
        return false;
    }
    crud_replay_remember(app, id, type, 1, false, payload, &m);
    memcpy(out_id, id, strlen(id) + 1);
    return true;
}

/* Appends the Updated event turning `doc` into `next` at st->version + 1.
 * *stored receives the state a replay will rebuild (a new reference). */
static bool crud_entity_update(crud_app *app, const char *type, const char *id,
                               const json_t *doc, const json_t *next, int64_t version,
                               const crud_key *key, json_t **stored, err *e)
{
    char et[CRUD_EVENT_TYPE_MAX];
    json_t *patch = mpatch_create(doc, next);
    json_t *after = patch ? mpatch_apply(doc, patch) : NULL;
    bool ok = false;
    *stored = NULL;
    if (!after) {
        err_set(e, ERR_INTERNAL, "out of memory computing a merge patch");
        goto done;
    }
    if (!crud_event_type(et, type, "Updated")) {
        err_set(e, ERR_INVALID_ARGUMENT, "entity_type is too long for its event types");
        goto done;
    }
    /* A document could always be sent whole (PUT), and its snapshot fits an
     * event store whose body limit is a little above ours (README). */
    size_t size = json_dumpb(after, NULL, 0, JSON_COMPACT);
    if (size > app->max_doc) {
        err_set(e, ERR_PAYLOAD_TOO_LARGE,
                "the document would be %zu bytes of JSON; at most %zu are allowed "
                "(ESKIT_MAX_BODY_BYTES)",
                size, app->max_doc);
        goto done;
    }
    crud_cache_mark m = crud_cache_mark_now(app->cache);
    if (!crud_entity_append(app, key, id, et, version, patch, e))
        goto done;
    crud_replay_remember(app, id, type, version, false, after, &m);
    *stored = json_incref(after);
    ok = true;
done:
    json_decref(patch);
    json_decref(after);
    return ok;
}

bool crud_entity_put(crud_app *app, const char *type, const char *id, int64_t version,
                     const json_t *payload, const crud_key *key, int64_t *new_version, err *e)
{
    crud_doc doc = {0};
    json_t *cur = NULL, *stored = NULL;
    bool ok = false;
    if (!crud_entity_latest(app, type, id, &doc, e))
        return false;
    if (version != doc.version) {
        crud_entity_stale(e, type, id, doc.version, version);
        goto done;
    }
    if (!crud_types_check(app, type, payload, e) || !(cur = crud_doc_json(&doc, e)))
        goto done;
    if (!crud_entity_update(app, type, id, cur, payload, version + 1, key, &stored, e)) {
        if (e->code == ERR_CONFLICT)
            crud_entity_lost(e, type, id, version);
        goto done;
    }
    *new_version = version + 1;
    ok = true;
done:
    crud_doc_free(&doc);
    json_decref(cur);
    json_decref(stored);
    return ok;
}

bool crud_entity_patch(crud_app *app, const char *type, const char *id, const json_t *patch,
                       int64_t if_match, const crud_key *key, crud_doc *out, err *e)
{
    memset(out, 0, sizeof *out);
    for (int attempt = 0;; attempt++) {
        crud_doc doc = {0};
        json_t *cur = NULL, *next = NULL, *stored = NULL;
        bool ok = false, retry = false;
        if (!crud_entity_latest(app, type, id, &doc, e))
            return false;
        if (if_match > 0 && if_match != doc.version) {
            crud_entity_stale(e, type, id, doc.version, if_match);
            goto next;
        }
        if (!(cur = crud_doc_json(&doc, e)))
            goto next;
        if (!(next = mpatch_apply(cur, patch))) {
            err_set(e, ERR_INTERNAL, "out of memory applying a merge patch");
            goto next;
        }
        if (!json_is_object(next)) {
            err_set(e, ERR_INVALID_ARGUMENT, "the patched document must be a JSON object; a "
                                             "merge patch that is not an object replaces it");
            goto next;
        }
        if (!crud_types_check(app, type, next, e))
            goto next;
        if (!crud_entity_update(app, type, id, cur, next, doc.version + 1, key, &stored, e)) {
            if (crud_entity_may_retry(e, if_match, attempt))
                retry = true;
            else if (crud_entity_lost_race(e, if_match))
                crud_entity_contended(e, "PATCH", type, id);
            else if (e->code == ERR_CONFLICT)
                crud_entity_lost(e, type, id, doc.version);
            goto next;
        }
        out->version = doc.version + 1;
        out->exists = true;
        out->text = jsonx_dump(stored);
        if (!out->text) {
            err_set(e, ERR_INTERNAL, "out of memory rendering a document");
            goto next;
        }
        out->len = strlen(out->text);
        ok = true;
    next:
        crud_doc_free(&doc);
        json_decref(cur);
        json_decref(next);
        json_decref(stored);
        if (!retry)
            return ok;
        err_clear(e);
        crud_entity_backoff(app, attempt + 1);
    }
}

bool crud_entity_delete(crud_app *app, const char *type, const char *id, int64_t if_match,
                        const crud_key *key, int64_t *new_version, err *e)
{
    char et[CRUD_EVENT_TYPE_MAX];
    json_t *empty = json_object();
    bool ok = false;
    if (!empty) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    if (!crud_event_type(et, type, "Deleted")) {
        err_set(e, ERR_INVALID_ARGUMENT, "entity_type is too long for its event types");
        goto done;
    }
    for (int attempt = 0; !ok; attempt++) {
        crud_doc doc = {0};
        json_t *cur = NULL;
        if (!crud_entity_latest(app, type, id, &doc, e))
            goto done;
        int64_t last = doc.version;
        if (if_match > 0 && if_match != last) {
            crud_entity_stale(e, type, id, last, if_match);
            crud_doc_free(&doc);
            goto done;
        }
        cur = crud_doc_json(&doc, e);
        crud_doc_free(&doc);
        if (!cur)
            goto done;
        crud_cache_mark m = crud_cache_mark_now(app->cache);
        if (crud_entity_append(app, key, id, et, last + 1, empty, e)) {
            crud_replay_remember(app, id, type, last + 1, true, cur, &m);
            *new_version = last + 1;
            ok = true;
        }
        json_decref(cur);
        if (ok)
            break;
        if (!crud_entity_may_retry(e, if_match, attempt)) {
            if (e->code == ERR_CONFLICT && !crud_entity_lost_race(e, if_match))
                crud_entity_lost(e, type, id, last);
            else if (e->code == ERR_CONFLICT)
                crud_entity_contended(e, "DELETE", type, id);
            goto done;
        }
        err_clear(e);
        crud_entity_backoff(app, attempt + 1);
    }
done:
    json_decref(empty);
    return ok;
}

bool crud_entity_erase(crud_app *app, const char *type, const char *id, int64_t if_match,
                       err *e)
{
    crud_stream st;
    bool exists = false;
    if (!crud_es_stream(app->es, id, &st, &exists, e))
        return false;
    if (!exists || strcmp(st.entity_type, type) != 0) {
        err_set(e, ERR_NOT_FOUND, "%s %s does not exist", type, id);
        return false;
    }
    if (if_match > 0 && if_match != st.version) {
        crud_entity_stale(e, type, id, st.version, if_match);
        return false;
    }
    bool ok = crud_es_erase(app->es, id, if_match, e);
    if (ok || e->code == ERR_GONE)
        crud_cache_forget(app->cache, id);
    return ok; /* a conflict: it moved between the two calls (details say where) */
}
