/*
 * mpatch.c - JSON Merge Patch (RFC 7386): apply a patch, and compute the
 * smallest patch between two documents (see mpatch.h).
 *
 * mpatch_apply() deep-copies the target once and then merges the patch into
 * that private copy in place, so a patch costs one copy of the document plus
 * the size of the patch, whatever the depth of the members it touches.
 */
#include "mpatch.h"

/* jansson's iterators take a non-const object; iterating does not modify it. */
#define MPATCH_MUT(v) ((json_t *)(v))

/* Merges `patch` into `target`, which is owned (one reference, consumed) and
 * mutable (no one else holds it), or NULL for "absent". Returns the merged
 * value (a reference the caller owns), NULL on OOM (target is then freed). */
static json_t *mpatch_merge(json_t *target, const json_t *patch)
{
    const char *key = NULL;
    size_t key_len = 0;
    json_t *value = NULL;

    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (!target)
            return NULL;
    }
    json_object_keylen_foreach (MPATCH_MUT(patch), key, key_len, value) {
        if (json_is_null(value)) {
            json_object_deln(target, key, key_len); /* absent is fine */
            continue;
        }
        /* Take our own reference on the member so it can be merged in place
         * and stored back (setn_new drops the table's old reference). */
        json_t *member = json_incref(json_object_getn(target, key, key_len));
        json_t *merged = mpatch_merge(member, value);
        if (!merged)
            goto fail;
        if (json_object_setn_new(target, key, key_len, merged))
            goto fail; /* setn_new consumed `merged` even on failure */
    }
    return target;

fail:
    json_decref(target);
    return NULL;
}

json_t *mpatch_apply(const json_t *target, const json_t *patch)
{
    json_t *copy = NULL;

    if (json_is_object(patch) && json_is_object(target)) {
        copy = json_deep_copy(target);
        if (!copy)
            return NULL;
    }
    return mpatch_merge(copy, patch);
}

/* Adds key -> value (consumed) to obj. Returns 0, -1 on OOM. */
static int mpatch_put(json_t *obj, const char *key, size_t key_len, json_t *value)
{
    if (!value)
        return -1;
    return json_object_setn_new(obj, key, key_len, value) ? -1 : 0;
}

json_t *mpatch_create(const json_t *from, const json_t *to)
{
    json_t *patch = NULL;
    const char *key = NULL;
    size_t key_len = 0;
    json_t *value = NULL;

    if (!json_is_object(from) || !json_is_object(to))
        return json_deep_copy(to);

    patch = json_object();
    if (!patch)
        goto fail;

    /* Members that `to` lacks (or holds as null, which a patch cannot keep). */
    json_object_keylen_foreach (MPATCH_MUT(from), key, key_len, value) {
        json_t *now = json_object_getn(to, key, key_len);
        if (!now || json_is_null(now))
            if (mpatch_put(patch, key, key_len, json_null()))
                goto fail;
    }

    /* Members added or changed. */
    json_object_keylen_foreach (MPATCH_MUT(to), key, key_len, value) {
        json_t *was = json_object_getn(from, key, key_len);
        if (json_is_null(value) || (was && json_equal(was, value)))
            continue;
        if (json_is_object(was) && json_is_object(value)) {
            json_t *sub = mpatch_create(was, value);
            if (!sub)
                goto fail;
            if (json_object_size(sub) == 0) { /* differed only by nulls */
                json_decref(sub);
                continue;
            }
            if (mpatch_put(patch, key, key_len, sub))
                goto fail;
        } else if (mpatch_put(patch, key, key_len, json_deep_copy(value))) {
            goto fail;
        }
    }
    return patch;

fail:
    json_decref(patch);
    return NULL;
}
