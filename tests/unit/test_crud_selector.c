/*
 * test_crud_selector.c - the _find selector language
 * (services/crud-store/crud_selector.c, linked with the CRUD store's
 * modules): every operator, missing members, type brackets
 * of ranges, $and / $or, dotted paths, JSON equality, the sort order across
 * types, sort specifications, planner bounds, and malformed selectors naming
 * their path.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "crud_selector.h"

static bool matches(const char *sel, const char *doc)
{
    json_error_t je;
    json_t *s = json_loads(sel, 0, &je), *d = json_loads(doc, 0, &je);
    cr_assert(s && d, "bad test JSON: %s / %s", sel, doc);
    err e = ERR_INIT;
    crud_selector *c = crud_selector_compile(s, &e);
    cr_assert(c, "%s: %s", sel, e.message);
    bool m = crud_selector_match(c, d);
    crud_selector_free(c);
    json_decref(s);
    json_decref(d);
    return m;
}

/* The message of the 400 a malformed selector gives. */
static void refused(const char *sel, const char *path)
{
    json_error_t je;
    json_t *s = json_loads(sel, 0, &je);
    cr_assert(s, "bad test JSON: %s", sel);
    err e = ERR_INIT;
    crud_selector *c = crud_selector_compile(s, &e);
    cr_assert_null(c, "%s was accepted", sel);
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT);
    cr_assert(strstr(e.message, path), "%s: '%s' does not name %s", sel, e.message, path);
    err_clear(&e);
    json_decref(s);
}

Test(selector, equality)
{
    cr_assert(matches("{\"a\": 1}", "{\"a\": 1.0}"));
    cr_assert(matches("{\"a\": {\"x\": 1, \"y\": [1, 2]}}", "{\"a\": {\"y\": [1, 2], \"x\": 1}}"));
    cr_assert_not(matches("{\"a\": [1]}", "{\"a\": [1, 2]}"));
    cr_assert_not(matches("{\"a\": \"1\"}", "{\"a\": 1}"));
    cr_assert_not(matches("{\"a\": null}", "{}"));
    cr_assert(matches("{\"a\": null}", "{\"a\": null}"));
    cr_assert(matches("{}", "{}"));
    cr_assert(matches("{\"a\": {}}", "{\"a\": {}}"));
}

Test(selector, operators)
{
    const char *doc = "{\"n\": 5, \"s\": \"m\", \"b\": true, \"z\": null}";
    cr_assert(matches("{\"n\": {\"$eq\": 5}}", doc));
    cr_assert(matches("{\"n\": {\"$ne\": 4}}", doc));
    cr_assert(matches("{\"n\": {\"$gt\": 4.5, \"$lt\": 6}}", doc));
    cr_assert(matches("{\"n\": {\"$gte\": 5, \"$lte\": 5}}", doc));
    cr_assert_not(matches("{\"n\": {\"$gt\": 5}}", doc));
    cr_assert(matches("{\"n\": {\"$in\": [1, 5]}}", doc));
    cr_assert_not(matches("{\"n\": {\"$nin\": [1, 5]}}", doc));
    cr_assert(matches("{\"n\": {\"$exists\": true}}", doc));
    cr_assert(matches("{\"s\": {\"$gt\": \"l\", \"$lt\": \"n\"}}", doc));
    cr_assert(matches("{\"b\": {\"$gt\": false}}", doc));
    cr_assert(matches("{\"z\": {\"$gte\": null}}", doc));
    cr_assert(matches("{\"z\": {\"$exists\": true}}", doc));
}

Test(selector, type_brackets)
{
    /* ranges match only values of the argument's JSON type */
    cr_assert_not(matches("{\"n\": {\"$gt\": \"1\"}}", "{\"n\": 5}"));
    cr_assert_not(matches("{\"n\": {\"$lt\": 10}}", "{\"n\": \"5\"}"));
    cr_assert_not(matches("{\"n\": {\"$gt\": 0}}", "{\"n\": true}"));
    cr_assert_not(matches("{\"n\": {\"$lt\": 10}}", "{\"n\": null}"));
    cr_assert_not(matches("{\"n\": {\"$lt\": 10}}", "{\"n\": [1]}"));
}

Test(selector, missing_members)
{
    const char *doc = "{\"a\": {\"b\": 1}}";
    cr_assert(matches("{\"x\": {\"$ne\": 1}}", doc));
    cr_assert(matches("{\"x\": {\"$nin\": [1]}}", doc));
    cr_assert(matches("{\"x\": {\"$exists\": false}}", doc));
    cr_assert_not(matches("{\"x\": {\"$eq\": null}}", doc));
    cr_assert_not(matches("{\"x\": {\"$in\": [null]}}", doc));
    cr_assert_not(matches("{\"x\": {\"$lt\": 1}}", doc));
    cr_assert(matches("{\"a.b.c\": {\"$exists\": false}}", doc));
}

Test(selector, paths_and_logic)
{
    const char *doc = "{\"a\": {\"b\": {\"c\": 3}}, \"t\": \"x\"}";
    cr_assert(matches("{\"a.b.c\": 3}", doc));
    cr_assert(matches("{\"a.b\": {\"c\": 3}}", doc));
    cr_assert(matches("{\"$or\": [{\"t\": \"y\"}, {\"a.b.c\": {\"$gt\": 2}}]}", doc));
    cr_assert_not(matches("{\"$or\": [{\"t\": \"y\"}, {\"a.b.c\": {\"$gt\": 3}}]}", doc));
    cr_assert(matches("{\"$and\": [{\"t\": \"x\"}, {\"a.b.c\": 3}]}", doc));
    cr_assert_not(matches("{\"t\": \"x\", \"$and\": [{\"a.b.c\": 4}]}", doc));
}

Test(selector, malformed)
{
    refused("{\"age\": {\"$foo\": 1}}", "age");
    refused("{\"age\": {\"$gt\": [1]}}", "age");
    refused("{\"age\": {\"$in\": 3}}", "age");
    refused("{\"age\": {\"$in\": [{}]}}", "age");
    refused("{\"age\": {\"$exists\": \"yes\"}}", "age");
    refused("{\"a.b\": {\"$eq\": 1, \"c\": 1}}", "a.b");
    refused("{\"$or\": []}", "$or");
    refused("{\"$and\": [3]}", "$and[0]");
    refused("{\"$or\": [{\"deep.x\": {\"$bad\": 1}}]}", "deep.x");
    refused("{\"$where\": 1}", "$where");
    refused("{\"a..b\": 1}", "a..b");
    refused("{\"\": 1}", "(empty)");
}

static int cmp_text(const char *a, const char *b)
{
    json_error_t je;
    json_t *x = a ? json_loads(a, JSON_DECODE_ANY, &je) : NULL;
    json_t *y = b ? json_loads(b, JSON_DECODE_ANY, &je) : NULL;
    int c = crud_selector_compare(x, y);
    json_decref(x);
    json_decref(y);
    return c;
}

Test(selector, order_across_types)
{
    const char *order[] = {NULL, "null", "false", "true", "-1", "2.5", "3", "\"\"", "\"a\"",
                           "\"b\"", "[]", "[0, 9]", "[1]", "{}", "{\"a\": 1}", "{\"a\": 2}",
                           "{\"b\": 0}"};
    size_t n = sizeof order / sizeof order[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int want = i < j ? -1 : i > j;
            cr_assert_eq(cmp_text(order[i], order[j]), want, "%s vs %s",
                         order[i] ? order[i] : "missing", order[j] ? order[j] : "missing");
        }
    }
    cr_assert_eq(cmp_text("1", "1.0"), 0);
    cr_assert_eq(cmp_text("{\"a\": 1, \"b\": 2}", "{\"b\": 2, \"a\": 1}"), 0);
}

Test(selector, sort_spec)
{
    json_error_t je;
    json_t *s = json_loads("[{\"a.b\": \"desc\"}, \"c\"]", 0, &je);
    crud_sort_key *keys = NULL;
    size_t n = 0;
    err e = ERR_INIT;
    cr_assert(crud_sort_parse(s, &keys, &n, &e));
    cr_assert_eq(n, 2);
    cr_assert_str_eq(keys[0].path, "a.b");
    cr_assert(keys[0].desc);
    cr_assert_not(keys[1].desc);
    crud_sort_free(keys, n);
    json_decref(s);
    s = json_loads("[{\"a\": \"up\"}]", 0, &je);
    cr_assert_not(crud_sort_parse(s, &keys, &n, &e));
    cr_assert(strstr(e.message, "sort[0]"));
    err_clear(&e);
    json_decref(s);
}

Test(selector, bounds)
{
    json_error_t je;
    json_t *s = json_loads("{\"a\": {\"$gte\": 3, \"$lt\": 9}, \"b\": \"x\", "
                           "\"$or\": [{\"c\": 1}]}", 0, &je);
    err e = ERR_INIT;
    crud_selector *c = crud_selector_compile(s, &e);
    const json_t *eq, *lo, *hi;
    bool li, hinc;
    cr_assert(crud_selector_bounds(c, "a", &eq, &lo, &li, &hi, &hinc));
    cr_assert(!eq && json_integer_value(lo) == 3 && li && json_integer_value(hi) == 9 && !hinc);
    cr_assert(crud_selector_bounds(c, "b", &eq, &lo, &li, &hi, &hinc));
    cr_assert_str_eq(json_string_value(eq), "x");
    cr_assert_not(crud_selector_bounds(c, "c", &eq, &lo, &li, &hi, &hinc));
    crud_selector_free(c);
    json_decref(s);
}
