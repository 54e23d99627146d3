/*
 * mpatch.h - JSON Merge Patch (RFC 7386) on jansson values.
 *
 * The CRUD store keeps a document's history as events: `T.Created` carries the
 * whole document, each `T.Updated` the merge patch from the previous document
 * to the new one. mpatch_create() computes that patch on a PUT; mpatch_apply()
 * replays it when a document is read, and applies a client's PATCH body.
 *
 * Neither function modifies its arguments. Both return a NEW reference that
 * the caller owns (json_decref() it); NULL means memory ran out.
 *
 * A limit of the format: a merge patch cannot carry a member whose value is
 * null (null means "remove"). mpatch_apply() drops such members, so a document
 * holding null members does not survive a create/apply round trip with them:
 * apply(A, create(A, B)) equals B with its null members removed.
 */
#ifndef ESKIT_MPATCH_H
#define ESKIT_MPATCH_H

#include <jansson.h>

#include "err.h"

/* RFC 7386 MergePatch(target, patch): a patch that is not an object replaces
 * the target (a copy of it is returned); an object patch is merged member by
 * member into the target (treated as {} when it is not an object): null
 * members remove, object members recurse, anything else (arrays included)
 * replaces. `target` may be NULL (treated as absent, so as {}).
 * Returns a new reference (the caller decrefs), NULL only on OOM. */
json_t *mpatch_apply(const json_t *target, const json_t *patch) WUR;

/* The smallest merge patch turning `from` into `to`: members of `from` that
 * `to` lacks become null, changed members recurse when both sides are objects
 * and are the new value otherwise, unchanged members are left out; identical
 * documents give {}. Members of `to` whose value is null cannot be expressed
 * and are treated as absent. When either side is not an object the patch is
 * a copy of `to` (which replaces the target whole).
 * Returns a new reference (the caller decrefs), NULL only on OOM. */
json_t *mpatch_create(const json_t *from, const json_t *to) WUR;

#endif
