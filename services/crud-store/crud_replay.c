/*
 * crud_replay.c - rebuilding a document from its events (see crud_replay.h):
 * pick the nearest starting point (the cached state, or a snapshot), fetch
 * the events after it page by page, apply them, then remember the result in
 * the cache and, when the replay was long, as a snapshot in the event store.
 */
#include "crud_replay.h"

#include <stdlib.h>
#include <string.h>

#include "crud_es.h"
#include "crud_state.h"
#include "crud_sync.h"
#include "jsonx.h"
#include "log.h"

void crud_doc_free(crud_doc *d)
{
    free(d->text);
    memset(d, 0, sizeof *d);
}

json_t *crud_doc_json(const crud_doc *d, err *e)
{
    err pe = ERR_INIT;
    json_t *v = jsonx_parse_stored(d->text ? d->text : "null", d->text ? d->len : 4, &pe);
    if (!v)
        err_set(e, ERR_INTERNAL, "cannot parse a cached document: %s", pe.message);
    err_clear(&pe);
    return v;
}

bool crud_event_type(char out[CRUD_EVENT_TYPE_MAX], const char *type, const char *name)
{
    size_t tl = strlen(type), nl = strlen(name);
    if (tl + 1 + nl > VALIDATE_TYPE_MAX)
        return false;
    memcpy(out, type, tl);
    out[tl] = '.';
    memcpy(out + tl + 1, name, nl + 1);
    return true;
}

/* Saves the state as a snapshot; failures are logged, never returned. */
static void crud_snapshot_save(crud_app *app, const char *id, int64_t version, bool deleted,
                               const json_t *doc)
{
    err e = ERR_INIT;
    json_t *p = json_pack("{s:i, s:b, s:b, s:O}", "format", CRUD_SNAPSHOT_FORMAT, "exists", 1,
                          "deleted", deleted, "document", doc);
    if (!p)
        return;
    if (crud_es_snapshot_put(app->es, id, version, p, &e))
        metrics_add(app->m_snapshots, NULL, 1);
    else
        log_warn("snapshot of %s at version %lld not saved: %s", id, (long long)version,
                 e.message);
    json_decref(p);
    err_clear(&e);
}

/* Fills *out from a cache entry (taking its text). */
static void crud_doc_from_entry(crud_doc *out, crud_cache_entry *ce)
{
    out->version = ce->version;
    out->exists = (ce->flags & CRUD_CACHE_EXISTS) != 0;
    out->deleted = (ce->flags & CRUD_CACHE_DELETED) != 0;
    out->text = ce->text;
    out->len = ce->len;
    ce->text = NULL;
}

static unsigned crud_flags(bool exists, bool deleted)
{
    return (exists ? CRUD_CACHE_EXISTS : 0u) | (deleted ? CRUD_CACHE_DELETED : 0u);
}

bool crud_replay_at(crud_app *app, const char *id, const char *type, int64_t version,
                    const crud_cache_mark *latest, crud_doc *out, err *e)
{
    crud_cache_entry ce = {0};
    crud_state s = {0};
    json_t *page = NULL, *snap = NULL;
    char created[CRUD_EVENT_TYPE_MAX], updated[CRUD_EVENT_TYPE_MAX], deleted[CRUD_EVENT_TYPE_MAX];
    int64_t applied = 0;
    bool ok = false;
    memset(out, 0, sizeof *out);

    /* 1. the cache: the exact version, or a starting point below it */
    bool cached = crud_cache_get(app->cache, id, &ce);
    if (cached && ce.version == version) {
        metrics_add(app->m_cache_hits, NULL, 1);
        if (latest)
            crud_cache_confirm(app->cache, id, version, latest);
        crud_doc_from_entry(out, &ce);
        return true;
    }
    metrics_add(app->m_cache_misses, NULL, 1);
    if (cached && ce.version < version) {
        s.version = ce.version;
        s.exists = (ce.flags & CRUD_CACHE_EXISTS) != 0;
        s.deleted = (ce.flags & CRUD_CACHE_DELETED) != 0;
        if (s.exists) {
            s.doc = jsonx_parse_stored(ce.text, ce.len, NULL);
            if (!s.doc)
                s = (crud_state){0}; /* start over from a snapshot */
        }
    }

    /* 2. a snapshot, when it may be nearer than the cached state (or, in
     * step 3, when the events below it are no longer held) */
    bool looked = version - s.version > CRUD_SNAPSHOT_AFTER;
    if (looked) {
        bool found = false;
        int64_t sv = 0;
        if (!crud_es_snapshot_get(app->es, id, version, &found, &sv, &snap, e))
            goto done;
        if (found && sv > s.version && sv <= version &&
            !crud_state_from_snapshot(&s, sv, snap))
            log_warn("ignoring a snapshot of %s at version %lld in an unknown format", id,
                     (long long)sv);
    }

    /* 3. the events after the starting point */
    if (!crud_event_type(created, type, "Created") ||
        !crud_event_type(updated, type, "Updated") ||
        !crud_event_type(deleted, type, "Deleted")) {
        err_set(e, ERR_INVALID_ARGUMENT, "entity type %s is too long for its event types", type);
        goto done;
    }
    int64_t page_size = CRUD_ES_EVENTS_PAGE; /* shrinks for large events */
    while (s.version < version) {
        int64_t want = version - s.version;
        if (want > page_size)
            want = page_size;
        json_decref(page);
        if (!crud_es_events(app->es, id, s.version + 1, version, &want, &page, e))
            goto done;
        page_size = want;
        json_t *v0 = json_object_get(json_object_get(json_array_get(page, 0), "originator"),
                                     "version");
        if (json_array_size(page) == 0 ||
            (json_is_integer(v0) && json_integer_value(v0) > s.version + 1)) {
            /* The stream's retention (SPEC §3) no longer keeps the events
             * after s.version: a snapshot nearer may still cover them. */
            bool found = false;
            int64_t sv = 0;
            if (!looked) {
                looked = true;
                json_decref(snap);
                snap = NULL;
                if (!crud_es_snapshot_get(app->es, id, version, &found, &sv, &snap, e))
                    goto done;
                if (found && sv > s.version && sv <= version &&
                    crud_state_from_snapshot(&s, sv, snap))
                    continue;
            }
            err_set(e, ERR_GONE,
                    "version %lld of %s %s is no longer held: the stream's retention deleted "
                    "the events it is made of, and no snapshot covers them",
                    (long long)version, type, id);
            goto done;
        }
        size_t i;
        json_t *ev;
        json_array_foreach(page, i, ev) {
            json_t *v = json_object_get(json_object_get(ev, "originator"), "version");
            if (!json_is_integer(v) || json_integer_value(v) != s.version + 1) {
                err_set(e, ERR_INTERNAL, "stream %s: the event store skipped version %lld", id,
                        (long long)(s.version + 1));
                goto done;
            }
            if (!crud_state_apply(&s, ev, created, updated, deleted, e))
                goto done;
            s.version++;
            applied++;
            if (s.version == version)
                break;
        }
    }
    metrics_add(app->m_replayed, NULL, (double)applied);

    /* 4. the result, remembered */
    out->version = version;
    out->exists = s.exists;
    out->deleted = s.deleted;
    out->text = jsonx_dump(s.exists ? s.doc : json_null());
    if (!out->text) {
        err_set(e, ERR_INTERNAL, "out of memory rendering a document");
        goto done;
    }
    out->len = strlen(out->text);
    crud_cache_put(app->cache, id, type, version, crud_flags(s.exists, s.deleted), out->text,
                   out->len, latest);
    if (applied > CRUD_SNAPSHOT_AFTER && s.exists)
        crud_snapshot_save(app, id, version, s.deleted, s.doc);
    ok = true;
done:
    if (!ok)
        crud_doc_free(out);
    free(ce.text);
    json_decref(s.doc);
    json_decref(page);
    json_decref(snap);
    return ok;
}

bool crud_replay_latest(crud_app *app, const char *id, const char *type, crud_doc *out,
                        bool *found, err *e)
{
    crud_stream st;
    bool exists = false;
    *found = false;
    memset(out, 0, sizeof *out);

    /* 1. a cached state still known to be the last, once the cache has
     * caught up with the log (one shared event-store call for many reads) */
    if (crud_cache_covered(app->cache, id)) {
        crud_cache_entry ce;
        if (!crud_sync_wait(app->sync, e))
            return false;
        if (crud_cache_get(app->cache, id, &ce)) {
            if (ce.fresh) {
                metrics_add(app->m_cache_hits, NULL, 1);
                *found = strcmp(ce.type, type) == 0;
                if (*found)
                    crud_doc_from_entry(out, &ce);
                free(ce.text);
                return true;
            }
            free(ce.text);
        }
    }

    /* 2. the event store: the stream's last version, then a replay to it */
    crud_cache_mark m = crud_cache_mark_now(app->cache);
    if (!crud_es_stream(app->es, id, &st, &exists, e)) {
        if (e->code == ERR_GONE) /* erased: nothing of it stays here */
            crud_cache_forget(app->cache, id);
        return false;
    }
    if (!exists) {
        /* remembered as version 0, so that the next read of a missing id
         * waits for the log instead of asking again */
        crud_cache_put(app->cache, id, "", 0, 0, "null", 4, &m);
        return true;
    }
    if (strcmp(st.entity_type, type) != 0)
        return true;
    if (!crud_replay_at(app, id, type, st.version, &m, out, e))
        return false;
    *found = true;
    return true;
}

void crud_replay_remember(crud_app *app, const char *id, const char *type, int64_t version,
                          bool deleted, const json_t *doc, const crud_cache_mark *latest)
{
    char *text = jsonx_dump(doc);
    if (!text)
        return;
    crud_cache_put(app->cache, id, type, version, crud_flags(true, deleted), text,
                   strlen(text), latest);
    free(text);
    if (version % CRUD_SNAPSHOT_EVERY == 0)
        crud_snapshot_save(app, id, version, deleted, doc);
}
