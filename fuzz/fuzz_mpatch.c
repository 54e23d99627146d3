/*
 * fuzz_mpatch.c - libFuzzer target for JSON Merge Patch (common/json/mpatch.c).
 * The bytes are a JSON array [A, B] or [A, B, P] (P defaults to B), read
 * as the server reads a body.
 *
 * Checks:
 *  - round trip: apply(A, create(A, B)) == B when B holds no null member;
 *    else (mpatch.h: a merge patch cannot carry a null) the two agree but
 *    for null members, and the result is B less its null members when A
 *    holds none (null members of a subtree that A and B share stay);
 *  - smallest patch: create(A, B) is {} when A (holding no null member)
 *    already is that document;
 *  - RFC 7386 idempotence: apply(apply(A, P), P) == apply(A, P);
 *  - apply(A, P) equals a plain transcription of the RFC's MergePatch
 *    pseudo-code (a differential check);
 *  - neither function changes its arguments.
 * Any violation aborts.
 */
#include <stdlib.h>

#include "fuzzlib.h"
#include "mpatch.h"

/* RFC 7386 section 2, word for word; target may be NULL (undefined).
 * Returns a new value. */
static json_t *rfc_merge_patch(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *t = json_is_object(target) ? json_deep_copy(target) : json_object();
    const char *k;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach((json_t *)patch, k, klen, m) {
        if (json_is_null(m)) {
            json_object_deln(t, k, klen);
        } else {
            json_t *merged = rfc_merge_patch(json_object_getn(t, k, klen), m);
            if (json_object_setn_new(t, k, klen, merged))
                fuzzlib_fail("out of memory");
        }
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    json_t *in = fuzzlib_body(data, size);
    if (!in)
        return 0;
    if (!json_is_array(in) || json_array_size(in) < 2) {
        json_decref(in);
        return 0;
    }
    const json_t *a = json_array_get(in, 0), *b = json_array_get(in, 1);
    const json_t *p = json_array_size(in) > 2 ? json_array_get(in, 2) : b;
    json_t *before = json_deep_copy(in);

    /* round trip */
    json_t *patch = mpatch_create(a, b);
    json_t *got = patch ? mpatch_apply(a, patch) : NULL;
    if (!got)
        fuzzlib_fail("mpatch returned NULL (out of memory?)");
    json_t *want = fuzzlib_strip_nulls(b), *sa = fuzzlib_strip_nulls(a), *sgot = fuzzlib_strip_nulls(got);
    fuzzlib_expect_equal(sgot, want, "apply(A, create(A, B)) == B, null members aside");
    if (json_equal(want, b))
        fuzzlib_expect_equal(got, b, "apply(A, create(A, B)) == B for B without nulls");
    if (json_equal(sa, a))
        fuzzlib_expect_equal(got, want, "apply(A, create(A, B)) == B less its nulls");
    if (json_is_object(a) && json_is_object(b) && json_equal(sa, a) && json_equal(sa, want) &&
        json_object_size(patch) != 0)
        fuzzlib_fail("create(A, B) is not {} for equal documents");

    /* idempotence, and the RFC's own algorithm */
    json_t *once = mpatch_apply(a, p);
    json_t *twice = once ? mpatch_apply(once, p) : NULL;
    if (!twice)
        fuzzlib_fail("mpatch_apply returned NULL (out of memory?)");
    fuzzlib_expect_equal(twice, once, "apply(apply(A, P), P) == apply(A, P)");
    json_t *rfc = rfc_merge_patch(a, p);
    fuzzlib_expect_equal(once, rfc, "apply(A, P) == RFC 7386 MergePatch(A, P)");

    fuzzlib_expect_equal(in, before, "the arguments are unchanged");
    json_decref(rfc);
    json_decref(twice);
    json_decref(once);
    json_decref(sa);
    json_decref(sgot);
    json_decref(want);
    json_decref(got);
    json_decref(patch);
    json_decref(before);
    json_decref(in);
    return 0;
}
