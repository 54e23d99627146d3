/*
 * test_crud_state.c - the state fold of a CRUD document
 * (services/crud-store/crud_state.c, linked with the CRUD store's modules):
 * Created sets, Updated merge-patches (null removes, objects recurse, arrays
 * and scalars replace) and is skipped before a Created, Deleted keeps the
 * last content, Created after Deleted starts afresh, other names and other
 * types change nothing, events lacking type or payload are refused, the
 * event's JSON is never modified, and snapshots load only in their format.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "crud_state.h"
#include "mpatch.h"

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert_not_null(v, "bad test JSON: %s (%s)", text, je.text);
    return v;
}

/* Applies the event {"event_type": et, "payload": payload} for type User. */
static bool apply(crud_state *s, const char *et, const char *payload)
{
    json_t *ev = json_pack("{s:s, s:o}", "event_type", et, "payload", js(payload));
    cr_assert_not_null(ev);
    err e = ERR_INIT;
    bool ok = crud_state_apply(s, ev, "User.Created", "User.Updated", "User.Deleted", &e);
    cr_expect(ok, "%s %s: %s", et, payload, e.message);
    err_clear(&e);
    json_decref(ev); /* the state keeps what it needs */
    return ok;
}

/* Asserts the state's flags and document (doc NULL: no document). */
static void expect_state(const crud_state *s, bool exists, bool deleted, const char *doc)
{
    cr_expect_eq(s->exists, exists);
    cr_expect_eq(s->deleted, deleted);
    if (!doc) {
        cr_expect_null(s->doc);
        return;
    }
    cr_assert_not_null(s->doc);
    json_t *want = js(doc);
    char *got = json_dumps(s->doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    cr_expect(json_equal(s->doc, want), "document %s, want %s", got, doc);
    free(got);
    json_decref(want);
}

Test(crud_state, created_sets_the_document)
{
    crud_state s = {0};
    apply(&s, "User.Created", "{\"name\":\"ada\",\"tags\":[1,2]}");
    expect_state(&s, true, false, "{\"name\":\"ada\",\"tags\":[1,2]}");
    cr_expect_eq(s.version, 0); /* versions are the caller's */
    json_decref(s.doc);
}

Test(crud_state, updated_merge_patches)
{
    crud_state s = {0};
    apply(&s, "User.Created",
          "{\"a\":1,\"b\":{\"c\":2,\"d\":{\"e\":3,\"f\":4}},\"g\":[1,2,3],\"h\":\"x\"}");
    /* a member changed, one added, one removed */
    apply(&s, "User.Updated", "{\"a\":5,\"n\":true,\"h\":null}");
    expect_state(&s, true, false,
                 "{\"a\":5,\"b\":{\"c\":2,\"d\":{\"e\":3,\"f\":4}},\"g\":[1,2,3],\"n\":true}");
    /* nested objects recurse; a null deep inside removes only that member */
    apply(&s, "User.Updated", "{\"b\":{\"d\":{\"e\":null,\"z\":0}}}");
    expect_state(&s, true, false,
                 "{\"a\":5,\"b\":{\"c\":2,\"d\":{\"f\":4,\"z\":0}},\"g\":[1,2,3],\"n\":true}");
    /* arrays are replaced whole, never merged */
    apply(&s, "User.Updated", "{\"g\":[9]}");
    expect_state(&s, true, false,
                 "{\"a\":5,\"b\":{\"c\":2,\"d\":{\"f\":4,\"z\":0}},\"g\":[9],\"n\":true}");
    /* an object replaces a scalar and a scalar an object */
    apply(&s, "User.Updated", "{\"a\":{\"x\":{\"y\":null,\"w\":1}},\"b\":7}");
    expect_state(&s, true, false, "{\"a\":{\"x\":{\"w\":1}},\"b\":7,\"g\":[9],\"n\":true}");
    /* removing an absent member is nothing; an empty patch changes nothing */
    apply(&s, "User.Updated", "{\"nope\":null}");
    apply(&s, "User.Updated", "{}");
    expect_state(&s, true, false, "{\"a\":{\"x\":{\"w\":1}},\"b\":7,\"g\":[9],\"n\":true}");
    /* removing every member leaves {} */
    apply(&s, "User.Updated", "{\"a\":null,\"b\":null,\"g\":null,\"n\":null}");
    expect_state(&s, true, false, "{}");
    json_decref(s.doc);
}

Test(crud_state, a_patch_that_is_not_an_object_replaces)
{
    crud_state s = {0};
    apply(&s, "User.Created", "{\"a\":1}");
    apply(&s, "User.Updated", "[1,2]");
    expect_state(&s, true, false, "[1,2]");
    /* an object patch on a document that is not an object starts from {} */
    apply(&s, "User.Updated", "{\"b\":2,\"c\":null}");
    expect_state(&s, true, false, "{\"b\":2}");
    json_decref(s.doc);
}

Test(crud_state, updated_before_created_is_skipped)
{
    crud_state s = {0};
    apply(&s, "User.Updated", "{\"a\":1}");
    expect_state(&s, false, false, NULL);
    apply(&s, "User.Created", "{\"b\":2}");
    expect_state(&s, true, false, "{\"b\":2}");
    json_decref(s.doc);
}

Test(crud_state, deleted_keeps_the_last_document)
{
    crud_state s = {0};
    apply(&s, "User.Deleted", "{}"); /* nothing to delete yet */
    expect_state(&s, false, false, NULL);
    apply(&s, "User.Created", "{\"a\":1}");
    apply(&s, "User.Updated", "{\"b\":2}");
    apply(&s, "User.Deleted", "{}");
    expect_state(&s, true, true, "{\"a\":1,\"b\":2}");
    /* a second Deleted changes nothing */
    apply(&s, "User.Deleted", "{\"ignored\":1}");
    expect_state(&s, true, true, "{\"a\":1,\"b\":2}");
    json_decref(s.doc);
}

Test(crud_state, created_after_deleted_starts_afresh)
{
    crud_state s = {0};
    apply(&s, "User.Created", "{\"a\":1,\"b\":{\"c\":2}}");
    apply(&s, "User.Deleted", "{}");
    apply(&s, "User.Created", "{\"b\":{\"d\":3}}");
    /* none of the old members survive: Created is not a merge */
    expect_state(&s, true, false, "{\"b\":{\"d\":3}}");
    apply(&s, "User.Updated", "{\"b\":{\"d\":null}}");
    expect_state(&s, true, false, "{\"b\":{}}");
    json_decref(s.doc);
}

Test(crud_state, updated_after_deleted_patches_the_kept_document)
{
    /* the CRUD store refuses to write one, but the fold is defined for it:
     * the kept document is patched and stays deleted */
    crud_state s = {0};
    apply(&s, "User.Created", "{\"a\":1}");
    apply(&s, "User.Deleted", "{}");
    apply(&s, "User.Updated", "{\"a\":2}");
    expect_state(&s, true, true, "{\"a\":2}");
    json_decref(s.doc);
}

Test(crud_state, other_names_and_types_change_nothing)
{
    crud_state s = {0};
    apply(&s, "User.Renamed", "{\"a\":1}");
    apply(&s, "Order.Created", "{\"a\":1}");
    expect_state(&s, false, false, NULL);
    apply(&s, "User.Created", "{\"a\":1}");
    const char *others[] = {"User.Created2", "User.created", "Users.Created", "User.Update",
                            "Order.Updated", "Order.Deleted", "User", "User.Deleted.x"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        apply(&s, others[i], "{\"a\":null,\"z\":1}");
    expect_state(&s, true, false, "{\"a\":1}");
    json_decref(s.doc);
}

Test(crud_state, created_payload_may_be_any_value)
{
    crud_state s = {0};
    apply(&s, "User.Created", "null");
    cr_expect(s.exists);
    cr_expect(json_is_null(s.doc));
    apply(&s, "User.Updated", "{\"a\":1}");
    expect_state(&s, true, false, "{\"a\":1}");
    json_decref(s.doc);
}

Test(crud_state, events_lacking_type_or_payload_are_refused)
{
    crud_state s = {0};
    apply(&s, "User.Created", "{\"a\":1}");
    const char *bad[] = {"{\"payload\":{}}", "{\"event_type\":\"User.Updated\"}",
                         "{\"event_type\":7,\"payload\":{}}", "{}", "[]", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *ev = js(bad[i]);
        err e = ERR_INIT;
        cr_expect_not(
            crud_state_apply(&s, ev, "User.Created", "User.Updated", "User.Deleted", &e), "%s",
            bad[i]);
        cr_expect_eq(e.code, ERR_INTERNAL, "%s", bad[i]);
        cr_expect(strstr(e.message, "without type or payload") != NULL, "%s", e.message);
        err_clear(&e);
        json_decref(ev);
    }
    /* the state is as it was */
    expect_state(&s, true, false, "{\"a\":1}");
    json_decref(s.doc);
}

Test(crud_state, the_events_are_not_modified)
{
    json_t *created = js("{\"event_type\":\"User.Created\",\"payload\":{\"a\":{\"b\":1},\"c\":2}}");
    json_t *updated = js("{\"event_type\":\"User.Updated\",\"payload\":{\"a\":{\"b\":null},\"c\":3}}");
    json_t *created_copy = json_deep_copy(created), *updated_copy = json_deep_copy(updated);
    crud_state s = {0};
    err e = ERR_INIT;
    cr_assert(crud_state_apply(&s, created, "User.Created", "User.Updated", "User.Deleted", &e));
    cr_assert(crud_state_apply(&s, updated, "User.Created", "User.Updated", "User.Deleted", &e));
    expect_state(&s, true, false, "{\"a\":{},\"c\":3}");
    cr_expect(json_equal(created, created_copy), "the Created event was modified");
    cr_expect(json_equal(updated, updated_copy), "the Updated event was modified");
    json_decref(created);
    json_decref(updated);
    /* the state holds its own reference */
    expect_state(&s, true, false, "{\"a\":{},\"c\":3}");
    json_decref(s.doc);
    json_decref(created_copy);
    json_decref(updated_copy);
}

Test(crud_state, a_history_written_by_create_patch_folds_back)
{
    /* what crud_entity.c writes for a PUT: the patch from the old document
     * to the new (mpatch_create); the fold gives the new one back, without
     * its null members (which a merge patch cannot carry) */
    const char *docs[] = {"{\"a\":1,\"b\":{\"c\":2,\"d\":[1]}}", "{\"a\":1,\"b\":{\"d\":[2]}}",
                          "{\"x\":{\"y\":{\"z\":1}}}", "{\"x\":{\"y\":{\"z\":1,\"w\":null}}}",
                          "{}", "{\"a\":[{\"b\":1}],\"e\":\"s\"}"};
    const char *want[] = {NULL, NULL, NULL, "{\"x\":{\"y\":{\"z\":1}}}", NULL, NULL};
    crud_state s = {0};
    apply(&s, "User.Created", docs[0]);
    for (size_t i = 1; i < sizeof docs / sizeof docs[0]; i++) {
        json_t *next = js(docs[i]);
        json_t *patch = mpatch_create(s.doc, next);
        cr_assert_not_null(patch);
        json_t *ev = json_pack("{s:s, s:o}", "event_type", "User.Updated", "payload", patch);
        err e = ERR_INIT;
        cr_assert(crud_state_apply(&s, ev, "User.Created", "User.Updated", "User.Deleted", &e));
        expect_state(&s, true, false, want[i] ? want[i] : docs[i]);
        json_decref(ev);
        json_decref(next);
    }
    json_decref(s.doc);
}

/* Loads `snapshot` into a state holding {"old":1} at version 3. */
static bool load(const char *snapshot, crud_state *s)
{
    *s = (crud_state){.version = 3, .exists = true, .doc = js("{\"old\":1}")};
    json_t *p = js(snapshot);
    bool ok = crud_state_from_snapshot(s, 120, p);
    json_decref(p);
    return ok;
}

Test(crud_state, snapshots_load_in_their_format)
{
    crud_state s;
    cr_assert(load("{\"format\":1,\"exists\":true,\"deleted\":false,\"document\":{\"a\":[1]}}",
                   &s));
    cr_expect_eq(s.version, 120);
    expect_state(&s, true, false, "{\"a\":[1]}");
    json_decref(s.doc);
    cr_assert(load("{\"format\":1,\"exists\":true,\"deleted\":true,\"document\":{\"b\":2}}", &s));
    expect_state(&s, true, true, "{\"b\":2}");
    json_decref(s.doc);
    /* then the fold goes on from it */
    cr_assert(load("{\"format\":1,\"exists\":true,\"deleted\":true,\"document\":{\"b\":2}}", &s));
    apply(&s, "User.Created", "{\"c\":3}");
    expect_state(&s, true, false, "{\"c\":3}");
    json_decref(s.doc);
}

Test(crud_state, snapshots_not_ours_are_ignored)
{
    const char *bad[] = {
        "{\"format\":2,\"exists\":true,\"deleted\":false,\"document\":{}}",
        "{\"format\":\"1\",\"exists\":true,\"deleted\":false,\"document\":{}}",
        "{\"exists\":true,\"deleted\":false,\"document\":{}}",
        "{\"format\":1,\"exists\":false,\"deleted\":false,\"document\":{}}",
        "{\"format\":1,\"exists\":1,\"deleted\":false,\"document\":{}}",
        "{\"format\":1,\"exists\":true,\"deleted\":0,\"document\":{}}",
        "{\"format\":1,\"exists\":true,\"document\":{}}",
        "{\"format\":1,\"exists\":true,\"deleted\":false}",
        "[]",
        "\"snapshot\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        crud_state s;
        cr_expect_not(load(bad[i], &s), "loaded %s", bad[i]);
        /* the state is as it was */
        cr_expect_eq(s.version, 3, "%s", bad[i]);
        expect_state(&s, true, false, "{\"old\":1}");
        json_decref(s.doc);
    }
}
