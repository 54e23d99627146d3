/*
 * test_mpatch.c - JSON Merge Patch: the RFC 7386 Appendix A examples,
 * mpatch_create() on hand-made cases, and a seeded property test that
 * apply(A, create(A, B)) == B over thousands of random nested documents.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>

#include "mpatch.h"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(v, "bad test JSON %s: %s", text, jerr.text);
    return v;
}

static void assert_json_eq(const json_t *got, const json_t *want, const char *what)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        cr_assert_fail("%s: got %s, want %s", what, g ? g : "NULL", w ? w : "NULL");
    }
}

/* RFC 7386 Appendix A: original, patch, result. */
static const char *const rfc_examples[][3] = {
    {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
    {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
    {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
    {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
    {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
    {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
    {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
    {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
    {"{\"a\":\"foo\"}", "null", "null"},
    {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
    {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
    {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
    {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
};

Test(mpatch, rfc7386_appendix_a)
{
    size_t n = sizeof rfc_examples / sizeof rfc_examples[0];
    cr_assert_eq(n, 15);
    for (size_t i = 0; i < n; i++) {
        json_t *target = parse(rfc_examples[i][0]);
        json_t *patch = parse(rfc_examples[i][1]);
        json_t *want = parse(rfc_examples[i][2]);
        json_t *before = json_deep_copy(target);
        json_t *got = mpatch_apply(target, patch);
        char what[64];
        snprintf(what, sizeof what, "example %zu", i + 1);
        cr_assert_not_null(got, "%s: NULL", what);
        assert_json_eq(got, want, what);
        assert_json_eq(target, before, "target left unchanged");
        json_decref(got);
        json_decref(before);
        json_decref(want);
        json_decref(patch);
        json_decref(target);
    }
}

Test(mpatch, apply_does_not_modify_inputs)
{
    json_t *target = parse("{\"a\":{\"b\":[1,2],\"c\":{\"d\":1}},\"x\":true}");
    json_t *patch = parse("{\"a\":{\"b\":null,\"c\":{\"e\":2}},\"y\":{\"z\":null}}");
    json_t *t0 = json_deep_copy(target);
    json_t *p0 = json_deep_copy(patch);
    json_t *want = parse("{\"a\":{\"c\":{\"d\":1,\"e\":2}},\"x\":true,\"y\":{}}");
    json_t *got = mpatch_apply(target, patch);
    assert_json_eq(got, want, "merged");
    assert_json_eq(target, t0, "target");
    assert_json_eq(patch, p0, "patch");
    /* The result shares nothing with the inputs. */
    cr_assert(json_object_set_new(json_object_get(json_object_get(got, "a"), "c"), "f",
                                  json_true()) == 0);
    assert_json_eq(target, t0, "target after mutating the result");
    json_decref(got);
    json_decref(want);
    json_decref(p0);
    json_decref(t0);
    json_decref(patch);
    json_decref(target);
}

Test(mpatch, apply_null_target_is_empty_object)
{
    json_t *patch = parse("{\"a\":1,\"b\":null}");
    json_t *got = mpatch_apply(NULL, patch);
    json_t *want = parse("{\"a\":1}");
    assert_json_eq(got, want, "NULL target");
    json_decref(want);
    json_decref(got);
    json_decref(patch);
}

static void check_create(const char *from, const char *to, const char *want_patch)
{
    json_t *a = parse(from);
    json_t *b = parse(to);
    json_t *want = parse(want_patch);
    json_t *p = mpatch_create(a, b);
    cr_assert_not_null(p);
    assert_json_eq(p, want, from);
    json_t *back = mpatch_apply(a, p);
    assert_json_eq(back, b, "apply(create)");
    json_decref(back);
    json_decref(p);
    json_decref(want);
    json_decref(b);
    json_decref(a);
}

Test(mpatch, create_cases)
{
    check_create("{\"a\":1,\"b\":2}", "{\"a\":1}", "{\"b\":null}");      /* removed */
    check_create("{\"a\":1}", "{\"a\":1,\"b\":\"x\"}", "{\"b\":\"x\"}"); /* added */
    check_create("{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":3}", "{\"b\":3}"); /* changed */
    check_create("{\"a\":1}", "{\"a\":1.0}", "{\"a\":1.0}");             /* int vs real */
    check_create("{\"a\":{\"x\":1,\"y\":{\"z\":1,\"w\":2}}}",            /* nested */
                 "{\"a\":{\"x\":1,\"y\":{\"z\":2}}}", "{\"a\":{\"y\":{\"z\":2,\"w\":null}}}");
    check_create("{\"a\":[1,2,3]}", "{\"a\":[1,2]}", "{\"a\":[1,2]}");     /* array whole */
    check_create("{\"a\":{\"b\":1}}", "{\"a\":[1]}", "{\"a\":[1]}");       /* object -> array */
    check_create("{\"a\":[1]}", "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}"); /* array -> object */
    check_create("{\"a\":1,\"b\":{\"c\":[true]}}", "{\"a\":1,\"b\":{\"c\":[true]}}", "{}");
    check_create("{}", "{}", "{}");
}

Test(mpatch, create_drops_null_members_of_to)
{
    json_t *a = parse("{\"a\":1,\"b\":2}");
    json_t *b = parse("{\"a\":null,\"b\":2,\"c\":null}");
    json_t *p = mpatch_create(a, b);
    json_t *want = parse("{\"a\":null}");
    assert_json_eq(p, want, "nulls in to");
    json_decref(want);
    json_decref(p);
    json_decref(b);
    json_decref(a);
}

/* --- property test ------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rng(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static json_t *random_value(int depth);

static json_t *random_object(int depth)
{
    static const char *const keys[] = {"a", "b", "c", "d", "e", "f"};
    json_t *o = json_object();
    unsigned n = rng() % 5;
    for (unsigned i = 0; i < n; i++)
        cr_assert(json_object_set_new(o, keys[rng() % 6], random_value(depth + 1)) == 0);
    return o;
}

static json_t *random_value(int depth)
{
    unsigned kind = rng() % (depth >= 4 ? 5 : 7);
    switch (kind) {
    case 0: {
        static const char *const strs[] = {"", "x", "y", "hello", "\xc3\xa9t\xc3\xa9"};
        return json_string(strs[rng() % 5]);
    }
    case 1:
        return json_integer((json_int_t)(rng() % 7) - 3);
    case 2:
        return json_real((double)(rng() % 9) / 4.0);
    case 3:
        return json_boolean(rng() & 1);
    case 4: {
        json_t *a = json_array();
        unsigned n = rng() % 3;
        for (unsigned i = 0; i < n; i++)
            cr_assert(json_array_append_new(a, json_integer(rng() % 3)) == 0);
        return a;
    }
    case 5: {
        json_t *a = json_array();
        unsigned n = rng() % 3;
        for (unsigned i = 0; i < n; i++)
            cr_assert(json_array_append_new(a, random_object(depth + 1)) == 0);
        return a;
    }
    default:
        return random_object(depth);
    }
}

/* B is often A with a few members changed, so patches are small and nested. */
static json_t *mutate(const json_t *a, int depth)
{
    json_t *b = json_deep_copy(a);
    static const char *const keys[] = {"a", "b", "c", "d", "e", "f"};
    unsigned n = 1 + rng() % 3;
    for (unsigned i = 0; i < n; i++) {
        const char *k = keys[rng() % 6];
        json_t *cur = json_object_get(b, k);
        unsigned op = rng() % 3;
        if (op == 0)
            json_object_del(b, k);
        else if (op == 1 && json_is_object(cur) && depth < 4)
            cr_assert(json_object_set_new(b, k, mutate(cur, depth + 1)) == 0);
        else
            cr_assert(json_object_set_new(b, k, random_value(depth + 1)) == 0);
    }
    return b;
}

Test(mpatch, property_apply_create_roundtrip)
{
    rng_state = 0x9E3779B97F4A7C15ULL;
    int rounds = 3000, nonempty = 0;
    for (int i = 0; i < rounds; i++) {
        json_t *a = random_object(0);
        json_t *b = (i % 2) ? mutate(a, 0) : random_object(0);
        json_t *p = mpatch_create(a, b);
        cr_assert_not_null(p);
        json_t *back = mpatch_apply(a, p);
        if (!json_equal(back, b)) {
            char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
            char *sp = json_dumps(p, JSON_SORT_KEYS), *sg = json_dumps(back, JSON_SORT_KEYS);
            cr_assert_fail("round %d: A=%s B=%s patch=%s got=%s", i, sa, sb, sp, sg);
        }
        if (json_object_size(p))
            nonempty++;
        json_t *same = mpatch_create(a, a);
        cr_assert(json_is_object(same) && json_object_size(same) == 0, "create(A, A) is {}");
        json_decref(same);
        json_decref(back);
        json_decref(p);
        json_decref(b);
        json_decref(a);
    }
    cr_assert_gt(nonempty, rounds / 2);
}
