/*
 * crud_state.c - the state fold of a CRUD document (crud_state.h).
 */
#include "crud_state.h"

#include <string.h>

#include "mpatch.h"

/* Loads a state from a snapshot payload; false when it is not ours. */
bool crud_state_from_snapshot(crud_state *s, int64_t version, const json_t *p)
{
    json_t *fmt = json_object_get(p, "format");
    json_t *ex = json_object_get(p, "exists");
    json_t *del = json_object_get(p, "deleted");
    json_t *doc = json_object_get(p, "document");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != CRUD_SNAPSHOT_FORMAT ||
        !json_is_boolean(ex) || !json_is_boolean(del) || !doc || !json_is_true(ex))
        return false;
    json_decref(s->doc);
    s->version = version;
    s->exists = true;
    s->deleted = json_is_true(del);
    s->doc = json_incref(doc);
    return true;
}

/* Applies one event (a member of the event store's answer). */
bool crud_state_apply(crud_state *s, const json_t *ev, const char *created,
                      const char *updated, const char *deleted, err *e)
{
    const char *et = json_string_value(json_object_get(ev, "event_type"));
    json_t *payload = json_object_get(ev, "payload");
    if (!et || !payload) {
        err_set(e, ERR_INTERNAL, "the event store returned an event without type or payload");
        return false;
    }
    if (strcmp(et, created) == 0) {
        json_decref(s->doc);
        s->doc = json_incref(payload);
        s->exists = true;
        s->deleted = false;
    } else if (strcmp(et, updated) == 0) {
        if (!s->exists)
            return true;
        json_t *next = mpatch_apply(s->doc, payload);
        if (!next) {
            err_set(e, ERR_INTERNAL, "out of memory applying a merge patch");
            return false;
        }
        json_decref(s->doc);
        s->doc = next;
    } else if (strcmp(et, deleted) == 0) {
        if (s->exists)
            s->deleted = true;
    }
    return true;
}
