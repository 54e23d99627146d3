/*
 * crud_list.c - the multi-document reads of /v1/entities: pages of live
 * documents of a type, and a document's history (see crud_entity.h).
 *
 * Pages walk the event store's list of streams of the type, in creation
 * order, skipping streams whose last event is T.Deleted. The page token is
 * the event store's cursor of the last stream consumed (its creation log id,
 * README "Choices"), so a page may end in the middle of an event-store page.
 * Each listed document's version is known from the listing, so its state
 * usually comes from the cache. The state decides whether a listed stream is
 * a live document, with or without skip_payload (which only leaves the
 * payload out of the answer): a stream of the type holding only events of
 * other names never had a T.Created, and one deleted before an event of
 * another name does not end in T.Deleted.
 *
 * The event store leaves deleted documents out of the listing
 * (exclude_deleted=true, a partial index), so a page costs its size however
 * many documents were deleted; the T.Deleted check here is only a safety net
 * for an event store that lacks the filter, against which pages are fetched
 * in doubling sizes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crud_entity.h"
#include "crud_es.h"

#define CRUD_LIST_ES_PAGE_MAX 1000 /* the event store's largest page */
#define CRUD_HISTORY_PAGE 1000

/* A page token: the cursor (creation log id) of the last stream consumed. */
static bool crud_token_parse(const char *s, int64_t *after, err *e)
{
    size_t n = strlen(s);
    char *end = NULL;
    bool ok = n > 0 && n <= 19;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    if (ok) {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        ok = errno == 0 && *end == '\0' && v >= 0;
        *after = v;
    }
    if (!ok)
        err_set(e, ERR_INVALID_ARGUMENT,
                "page_token must be a next_page_token from a previous page");
    return ok;
}

/* Appends one listed stream when it is a live document. *added says so. */
static bool crud_list_one(crud_app *app, const char *type, const char *id, int64_t version,
                          const crud_cache_mark *latest, bool skip_payload, bool first,
                          buf *out, bool *added, err *e)
{
    crud_doc doc = {0};
    bool ok = false;
    *added = false;
    /* Only the state says whether the stream is a live document (a foreign
     * stream of the type, or a deleted one whose last event has another
     * name, is not), so skip_payload changes the rendering, not the set. */
    if (!crud_replay_at(app, id, type, version, latest, &doc, e))
        return false;
    if (!doc.exists || doc.deleted) {
        crud_doc_free(&doc);
        return true;
    }
    if ((!first && buf_puts(out, ",")) || crud_entity_render(out, type, id, &doc, !skip_payload)) {
        err_set(e, ERR_INTERNAL, "the page is too large");
        goto done;
    }
    *added = true;
    ok = true;
done:
    crud_doc_free(&doc);
    return ok;
}

bool crud_entity_list(crud_app *app, const char *type, int64_t limit, const char *token,
                      bool skip_payload, buf *out, err *e)
{
    char deleted[CRUD_EVENT_TYPE_MAX];
    json_t *page = NULL;
    int64_t after = 0, found = 0, want = limit;
    bool ok = false;

    if (token && !crud_token_parse(token, &after, e))
        return false;
    if (!crud_event_type(deleted, type, "Deleted")) {
        /* no event of this type can exist: an empty list */
        if (buf_puts(out, "{\"results\":[],\"next_page_token\":null}"))
            goto full;
        return true;
    }
    if (buf_puts(out, "{\"results\":["))
        goto full;
    for (;;) {
        json_decref(page);
        crud_cache_mark m = crud_cache_mark_now(app->cache);
        if (!crud_es_list_streams(app->es, type, after, want, true, &page, e))
            goto done;
        json_t *streams = json_object_get(page, "streams");
        bool more = json_is_string(json_object_get(page, "next_after"));
        size_t n = json_array_size(streams);
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(streams, i);
            const char *id = json_string_value(json_object_get(s, "id"));
            const char *last = json_string_value(json_object_get(s, "last_event_type"));
            json_t *v = json_object_get(s, "version");
            json_t *c = json_object_get(s, "created_log_id");
            bool added = false;
            if (!id || !last || !json_is_integer(v) || json_integer_value(v) < 1 ||
                !json_is_integer(c) || json_integer_value(c) <= after) {
                err_set(e, ERR_INTERNAL, "the event store listed a malformed stream");
                goto done;
            }
            after = json_integer_value(c);
            if (strcmp(last, deleted) != 0 &&
                !crud_list_one(app, type, id, json_integer_value(v), &m, skip_payload,
                               found == 0, out, &added, e))
                goto done;
            found += added;
            if (found < limit)
                continue;
            /* the page is full: the next one starts after this stream */
            if (i + 1 < n || more) {
                if (buf_printf(out, "],\"next_page_token\":\"%lld\"}", (long long)after))
                    goto full;
            } else if (buf_puts(out, "],\"next_page_token\":null}")) {
                goto full;
            }
            ok = true;
            goto done;
        }
        if (!more || n == 0) {
            if (buf_puts(out, "],\"next_page_token\":null}"))
                goto full;
            ok = true;
            goto done;
        }
        want = want * 2 > CRUD_LIST_ES_PAGE_MAX ? CRUD_LIST_ES_PAGE_MAX : want * 2;
    }
full:
    err_set(e, ERR_INTERNAL, "the page is too large");
done:
    json_decref(page);
    return ok;
}

json_t *crud_entity_history(crud_app *app, const char *type, const char *id, int64_t from,
                            int64_t limit, err *e)
{
    char created[CRUD_EVENT_TYPE_MAX], updated[CRUD_EVENT_TYPE_MAX], deleted[CRUD_EVENT_TYPE_MAX];
    crud_stream st;
    bool found = false;
    json_t *page = NULL, *versions = json_array(), *out = NULL;
    if (!versions) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (!crud_es_stream(app->es, id, &st, &found, e))
        goto done;
    if (!found || strcmp(st.entity_type, type) != 0 ||
        !crud_event_type(created, type, "Created") ||
        !crud_event_type(updated, type, "Updated") ||
        !crud_event_type(deleted, type, "Deleted")) {
        err_set(e, ERR_NOT_FOUND, "%s %s does not exist", type, id);
        goto done;
    }
    int64_t page_size = CRUD_HISTORY_PAGE; /* shrinks for large events */
    while (from <= st.version && (int64_t)json_array_size(versions) < limit) {
        int64_t before = from;
        /* ask for what is still to return: a page of large events costs
         * only the events shown (other event names in the stream, skipped,
         * make another page) */
        int64_t want = limit - (int64_t)json_array_size(versions);
        if (want > page_size)
            want = page_size;
        json_decref(page);
        if (!crud_es_events(app->es, id, from, st.version, &want, &page, e))
            goto done;
        page_size = want;
        if (json_array_size(page) == 0)
            break;
        size_t i;
        json_t *ev;
        json_array_foreach(page, i, ev) {
            const char *et = json_string_value(json_object_get(ev, "event_type"));
            json_t *v = json_object_get(json_object_get(ev, "originator"), "version");
            json_t *at = json_object_get(ev, "occurred_on");
            json_t *rec = json_object_get(ev, "recorded_at");
            json_t *payload = json_object_get(ev, "payload");
            if (!et || !json_is_integer(v) || !payload) {
                err_set(e, ERR_INTERNAL, "the event store returned a malformed event");
                goto done;
            }
            from = json_integer_value(v) + 1;
            if (strcmp(et, created) != 0 && strcmp(et, updated) != 0 && strcmp(et, deleted) != 0)
                continue;
            if (json_array_append_new(versions,
                                      json_pack("{s:O, s:s, s:O, s:O, s:O}", "version", v,
                                                "event_type", et, "occurred_on",
                                                at ? at : json_null(), "recorded_at",
                                                rec ? rec : json_null(), "change", payload))) {
                err_set(e, ERR_INTERNAL, "out of memory");
                goto done;
            }
            if ((int64_t)json_array_size(versions) >= limit)
                break;
        }
        if (from <= before) {
            err_set(e, ERR_INTERNAL, "the event store returned events out of order");
            goto done;
        }
    }
    out = json_pack("{s:s, s:s, s:O}", "entity_type", type, "id", id, "versions", versions);
    if (!out)
        err_set(e, ERR_INTERNAL, "out of memory");
done:
    json_decref(page);
    json_decref(versions);
    return out;
}
