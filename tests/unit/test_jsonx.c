/*
 * test_jsonx.c - request-body parsing, the reader-side parse of what eskit
 * stored, and typed getters (common/json/jsonx.c).
 */
#include <criterion/criterion.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

static json_t *parse_str(const char *s, err *e)
{
    return jsonx_parse(s, strlen(s), e);
}

/* Asserts that s fails to parse with a 400 whose message starts with `prefix`;
 * the message must stay printable ASCII (it goes into a JSON error body). */
static void parse_fails(const char *s, size_t len, const char *prefix)
{
    err e = ERR_INIT;
    json_t *v = jsonx_parse(s, len, &e);
    cr_assert_null(v, "should fail: %.*s", (int)len, s);
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT);
    cr_assert_eq(strncmp(e.message, prefix, strlen(prefix)), 0, "message: %s", e.message);
    for (const char *p = e.message; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "message: %s",
                  e.message);
    err_clear(&e);
}

#define NOT_JSON "request body is not valid JSON: "

/* --- parse -------------------------------------------------------------------- */

Test(jsonx, parse_values)
{
    err e = ERR_INIT;
    json_t *v = parse_str(" {\"a\": [1, 2.5, \"x\", true, null]}\n", &e);
    cr_assert_not_null(v, "%s", e.message);
    cr_assert(json_is_object(v));
    json_decref(v);

    /* any top-level value: the caller decides which type it needs */
    const char *scalars[] = {"1", "\"s\"", "true", "null", "[]", "-0", "1e3"};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        v = parse_str(scalars[i], &e);
        cr_assert_not_null(v, "%s: %s", scalars[i], e.message);
        json_decref(v);
    }
    cr_assert_eq(e.code, ERR_NONE);
}

Test(jsonx, parse_empty)
{
    parse_fails("", 0, "request body is empty");
    parse_fails(NULL, 0, "request body is empty");
    parse_fails(" \t\r\n ", 5, "request body is empty");
}

Test(jsonx, parse_syntax_errors_have_position)
{
    const char *bad[] = {"{", "{\"a\":}", "[1,]", "{'a':1}", "nul", "{\"a\":1,}", "01",
                         "\"unterminated", "{\"a\" 1}", "NaN", "Infinity", "+1", ".5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_fails(bad[i], strlen(bad[i]), NOT_JSON);

    err e = ERR_INIT;
    cr_assert_null(parse_str("{\n  \"a\": x\n}", &e));
    cr_assert(strstr(e.message, "at line 2 column") != NULL, "%s", e.message);
    err_clear(&e);
}

Test(jsonx, parse_rejects_trailing_garbage)
{
    parse_fails("{} x", 4, NOT_JSON);
    parse_fails("{}{}", 4, NOT_JSON);
    parse_fails("1 2", 3, NOT_JSON);
    parse_fails("{}\0", 3, NOT_JSON); /* a NUL byte after the value */
    err e = ERR_INIT;
    json_t *v = parse_str("{}  \n", &e); /* trailing whitespace is fine */
    cr_assert_not_null(v);
    json_decref(v);
}

Test(jsonx, parse_deep_nesting_is_an_error)
{
    enum { DEPTH = 10000 };
    char *s = malloc(2 * DEPTH);
    cr_assert_not_null(s);
    memset(s, '[', DEPTH);
    memset(s + DEPTH, ']', DEPTH);
    parse_fails(s, 2 * DEPTH, NOT_JSON);
    for (int i = 0; i < DEPTH; i++) /* objects too */
        s[i] = i % 2 ? '[' : '{';
    parse_fails(s, DEPTH, NOT_JSON);
    /* within the limit is fine */
    err e = ERR_INIT;
    json_t *v = jsonx_parse(s + DEPTH - 1000, 0, &e); /* empty */
    cr_assert_null(v);
    err_clear(&e);
    memset(s, '[', 1000);
    memset(s + 1000, ']', 1000);
    v = jsonx_parse(s, 2000, &e);
    cr_assert_not_null(v, "%s", e.message);
    json_decref(v);
    free(s);
}

Test(jsonx, parse_int64_range)
{
    err e = ERR_INIT;
    json_t *v = parse_str("{\"n\": -9223372036854775808, \"m\": 9223372036854775807}", &e);
    cr_assert_not_null(v, "%s", e.message);
    cr_assert_eq(json_integer_value(json_object_get(v, "n")), INT64_MIN);
    cr_assert_eq(json_integer_value(json_object_get(v, "m")), INT64_MAX);
    json_decref(v);

    /* out of range: refused, and the message names the member (SPEC §2) */
    parse_fails("9223372036854775808", 19, "a number in the body is out of range");
    parse_fails("{\"n\": 9223372036854775808}", 26, "n is out of range");
    parse_fails("[-9223372036854775809]", 22, "[0] is out of range");
    parse_fails("[123456789012345678901234567890]", 32, "[0] is out of range");
    parse_fails("[1e400]", 7, "[0] is out of range"); /* real overflow */
    const char *nested = "{\"events\": [{\"a\": \"x,]}\\\"\"}, {\"originator\": {\"id\": \"u\", "
                         "\"version\": 9223372036854775808}}]}";
    parse_fails(nested, strlen(nested), "events[1].originator.version is out of range");
}

Test(jsonx, parse_rejects_bad_utf8_and_nul)
{
    const char *bad[] = {
        "\"\xff\"",             /* invalid byte */
        "\"\xc3\"",             /* truncated sequence */
        "\"\xc0\xaf\"",         /* overlong */
        "\"\xed\xa0\x80\"",     /* UTF-16 surrogate encoded in UTF-8 */
        "{\"\xfe\": 1}",        /* in a key */
        "\xef\xbb\xbf{}",       /* a byte-order mark is not JSON */
        "[\"\\u0000\"]",        /* NUL escape */
        "[\"\\ud800\"]",        /* lone surrogate escape */
        "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_fails(bad[i], strlen(bad[i]), NOT_JSON);
    parse_fails("[\"a\0b\"]", 7, NOT_JSON); /* raw NUL inside a string */

    err e0 = ERR_INIT;
    cr_assert_null(parse_str("[\"\\u0000\"]", &e0));
    cr_assert(strstr(e0.message, "\\u0000 is not allowed in strings") != NULL, "%s", e0.message);
    cr_assert(strstr(e0.message, "JSON_ALLOW_NUL") == NULL, "%s", e0.message);
    err_clear(&e0);

    err e = ERR_INIT;
    json_t *v = parse_str("[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", \"\\ud83d\\ude00\"]", &e);
    cr_assert_not_null(v, "%s", e.message);
    cr_assert_str_eq(json_string_value(json_array_get(v, 1)), "\xf0\x9f\x98\x80");
    json_decref(v);
}

/* --- the reader side: what eskit stored or answered -------------------------- */

static json_t *stored(const char *s)
{
    err e = ERR_INIT;
    json_t *v = jsonx_parse_stored(s, strlen(s), &e);
    cr_assert_not_null(v, "%s: %s", s, e.message);
    cr_assert_eq(e.code, ERR_NONE);
    return v;
}

/* "1" followed by `zeros` zeros, or "-" d... : a big integer's text (freed by
 * the caller). */
static char *digits(const char *lead, int zeros)
{
    size_t n = strlen(lead);
    char *s = malloc(n + (size_t)zeros + 1);
    cr_assert_not_null(s);
    memcpy(s, lead, n);
    memset(s + n, '0', (size_t)zeros);
    s[n + (size_t)zeros] = '\0';
    return s;
}

/* PostgreSQL's jsonb spells 1e20 as 100000000000000000000: a reader must
 * take it (as the nearest double), where a request may not (SPEC §2). */
Test(jsonx, stored_takes_integers_past_int64_as_reals)
{
    json_t *v = stored("{\"price\": 100000000000000000000}");
    json_t *p = json_object_get(v, "price");
    cr_assert(json_is_real(p));
    cr_assert_eq(json_real_value(p), 1e20);
    char *text = jsonx_dump(v); /* and it round-trips as a real */
    err e = ERR_INIT;
    json_t *again = jsonx_parse(text, strlen(text), &e);
    cr_assert_not_null(again, "%s: %s", text, e.message);
    cr_assert(json_equal(again, v));
    json_decref(again);
    free(text);
    json_decref(v);

    struct { char *text; double want; } big[] = {
        {digits("1", 39), 1e39},                     /* a 40-digit integer */
        {digits("-15", 299), -1.5e300},              /* 301 digits */
        {digits("17976931348623157", 292), DBL_MAX}, /* 309 digits */
        {strdup("9223372036854775808"), 9223372036854775808.0},
        {strdup("-9223372036854775809"), -9223372036854775808.0},
        {strdup("123456789012345678901234567890"), 123456789012345678901234567890.0},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        v = stored(big[i].text);
        cr_assert(json_is_real(v), "%s", big[i].text);
        cr_assert_eq(json_real_value(v), big[i].want, "%s", big[i].text);
        json_decref(v);
        free(big[i].text);
    }

    /* in range: still integers, also next to a big one */
    v = stored("[9223372036854775807, -9223372036854775808, 100000000000000000000, 0, -1, "
               "1.5, 5e-324, 1E2, 12]");
    cr_assert_eq(json_integer_value(json_array_get(v, 0)), INT64_MAX);
    cr_assert_eq(json_integer_value(json_array_get(v, 1)), INT64_MIN);
    cr_assert(json_is_real(json_array_get(v, 2)));
    cr_assert(json_is_integer(json_array_get(v, 3)) && json_is_integer(json_array_get(v, 4)));
    cr_assert_eq(json_real_value(json_array_get(v, 5)), 1.5);
    cr_assert_eq(json_real_value(json_array_get(v, 6)), 5e-324);
    cr_assert_eq(json_real_value(json_array_get(v, 7)), 100.0);
    cr_assert_eq(json_integer_value(json_array_get(v, 8)), 12);
    json_decref(v);
}

Test(jsonx, stored_leaves_strings_and_keys_alone)
{
    const char *s = "{\"k\\\"100000000000000000000\": \"100000000000000000000 \\\\\", "
                    "\"n\": [100000000000000000000, \"x\\\"99999999999999999999\"]}";
    json_t *v = stored(s);
    json_t *k = json_object_get(v, "k\"100000000000000000000");
    cr_assert(json_is_string(k), "%s", s);
    cr_assert_str_eq(json_string_value(k), "100000000000000000000 \\");
    json_t *n = json_object_get(v, "n");
    cr_assert_eq(json_real_value(json_array_get(n, 0)), 1e20);
    cr_assert_str_eq(json_string_value(json_array_get(n, 1)), "x\"99999999999999999999");
    json_decref(v);
}

Test(jsonx, stored_takes_nul_and_deep_nesting)
{
    json_t *v = stored("[\"a\\u0000b\"]");
    cr_assert_eq(json_string_length(json_array_get(v, 0)), 3);
    cr_assert_eq(memcmp(json_string_value(json_array_get(v, 0)), "a\0b", 3), 0);
    json_decref(v);

    /* the event store keeps bodies of 900 levels and wraps them in its own;
     * a reader takes far more than that */
    enum { DEPTH = 2000 };
    char *deep = malloc(2 * DEPTH + 32);
    cr_assert_not_null(deep);
    memset(deep, '[', DEPTH);
    int n = snprintf(deep + DEPTH, 32, "100000000000000000000");
    memset(deep + DEPTH + n, ']', DEPTH);
    err e = ERR_INIT;
    v = jsonx_parse_stored(deep, 2 * DEPTH + (size_t)n, &e);
    cr_assert_not_null(v, "%s", e.message);
    json_decref(v);
    free(deep);
}

Test(jsonx, stored_still_refuses_what_is_not_json)
{
    const char *bad[] = {"", "{", "[1,]", "100000000000000000000 x", "[100000000000000000000,]",
                         "[1e400]", "\"\xff\"", "nul", "{} {}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err e = ERR_INIT;
        cr_assert_null(jsonx_parse_stored(bad[i], strlen(bad[i]), &e), "%s", bad[i]);
        cr_assert_eq(e.code, ERR_INTERNAL, "%s", bad[i]);
        for (const char *p = e.message; *p; p++)
            cr_assert((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f, "%s", e.message);
        err_clear(&e);
        cr_assert_null(jsonx_parse_stored(bad[i], strlen(bad[i]), NULL)); /* e may be NULL */
    }
    cr_assert_null(jsonx_parse_stored(NULL, 0, NULL));
}

/* A request keeps the strict parse (SPEC §2): only readers are lax. */
Test(jsonx, requests_stay_strict)
{
    parse_fails("{\"price\": 100000000000000000000}", 32, "price is out of range");
    parse_fails("[\"\\u0000\"]", 10, NOT_JSON);
}

/* --- dump --------------------------------------------------------------------- */

Test(jsonx, dump_compact_keeps_order)
{
    err e = ERR_INIT;
    json_t *v = parse_str("{ \"z\": 1, \"a\": [true, null, \"\xc3\xa9\"], \"m\": {\"y\": 2, \"b\": 3} }",
                          &e);
    cr_assert_not_null(v);
    char *s = jsonx_dump(v);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "{\"z\":1,\"a\":[true,null,\"\xc3\xa9\"],\"m\":{\"y\":2,\"b\":3}}");
    free(s);
    json_decref(v);

    json_t *n = json_integer(INT64_MIN);
    s = jsonx_dump(n);
    cr_assert_str_eq(s, "-9223372036854775808");
    free(s);
    json_decref(n);

    json_t *str = json_string("a\"b");
    s = jsonx_dump(str);
    cr_assert_str_eq(s, "\"a\\\"b\"");
    free(s);
    json_decref(str);
}

/* --- getters ------------------------------------------------------------------ */

static json_t *obj(const char *s)
{
    err e = ERR_INIT;
    json_t *v = parse_str(s, &e);
    cr_assert_not_null(v, "%s", e.message);
    return v;
}

/* e holds an invalid_argument whose message starts with the field name and
 * contains `want`; e is cleared. */
static void msg_is(err *e, const char *field, const char *want)
{
    cr_assert_eq(e->code, ERR_INVALID_ARGUMENT);
    cr_assert_eq(strncmp(e->message, field, strlen(field)), 0, "message: %s", e->message);
    cr_assert(strstr(e->message, want) != NULL, "message: %s (want %s)", e->message, want);
    err_clear(e);
}

Test(jsonx, get_int)
{
    json_t *o = obj("{\"v\": 5, \"r\": 1.5, \"r1\": 1.0, \"s\": \"1\", \"b\": true, \"n\": null,"
                    " \"neg\": -3, \"big\": 9223372036854775807, \"o\": {}, \"a\": [1]}");
    err e = ERR_INIT;
    int64_t out = 77;
    bool present = false;

    cr_assert(jsonx_get_int(o, "v", "originator.version", true, 1, 100, &out, &present, &e));
    cr_assert_eq(out, 5);
    cr_assert(present);
    cr_assert_eq(e.code, ERR_NONE);

    /* absent or null, optional: ok, untouched */
    out = 77;
    cr_assert(jsonx_get_int(o, "missing", "x", false, 0, 10, &out, &present, &e));
    cr_assert_not(present);
    cr_assert_eq(out, 77);
    present = true;
    cr_assert(jsonx_get_int(o, "n", "x", false, 0, 10, &out, &present, &e));
    cr_assert_not(present);
    cr_assert_eq(out, 77);
    cr_assert(jsonx_get_int(NULL, "v", "x", false, 0, 10, &out, NULL, &e));
    cr_assert_eq(out, 77);
    cr_assert_eq(e.code, ERR_NONE);

    /* absent or null, required */
    cr_assert_not(jsonx_get_int(o, "missing", "originator.version", true, 0, 10, &out, NULL, &e));
    msg_is(&e, "originator.version", "is required");
    cr_assert_not(jsonx_get_int(o, "n", "originator.version", true, 0, 10, &out, NULL, &e));
    msg_is(&e, "originator.version", "is required");
    cr_assert_not(jsonx_get_int(NULL, "v", "originator.version", true, 0, 10, &out, NULL, &e));
    msg_is(&e, "originator.version", "is required");

    /* wrong types */
    const char *wrong[] = {"r", "r1", "s", "b", "o", "a"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        cr_assert_not(jsonx_get_int(o, wrong[i], "limit", false, INT64_MIN, INT64_MAX, &out,
                                    NULL, &e), "%s", wrong[i]);
        msg_is(&e, "limit", "limit must be an integer");
    }
    cr_assert_eq(out, 77);

    /* ranges */
    cr_assert_not(jsonx_get_int(o, "v", "limit", true, 10, 1000, &out, NULL, &e));
    msg_is(&e, "limit", "limit must be between 10 and 1000");
    cr_assert_not(jsonx_get_int(o, "v", "limit", true, -10, 4, &out, NULL, &e));
    msg_is(&e, "limit", "between -10 and 4");
    cr_assert_not(jsonx_get_int(o, "neg", "from_id", true, 0, INT64_MAX, &out, NULL, &e));
    msg_is(&e, "from_id", "from_id must be at least 0");
    cr_assert_not(jsonx_get_int(o, "v", "delta", true, INT64_MIN, 4, &out, NULL, &e));
    msg_is(&e, "delta", "delta must be at most 4");
    cr_assert_eq(out, 77);

    /* bounds are inclusive */
    cr_assert(jsonx_get_int(o, "v", "x", true, 5, 5, &out, NULL, &e));
    cr_assert_eq(out, 5);
    cr_assert(jsonx_get_int(o, "big", "x", true, 0, INT64_MAX, &out, NULL, &e));
    cr_assert_eq(out, INT64_MAX);
    cr_assert(jsonx_get_int(o, "neg", "x", true, INT64_MIN, INT64_MAX, &out, NULL, &e));
    cr_assert_eq(out, -3);
    cr_assert_eq(e.code, ERR_NONE);

    /* a non-object container has no members */
    json_t *arr = obj("[1]");
    cr_assert_not(jsonx_get_int(arr, "v", "x", true, 0, 1, &out, NULL, &e));
    msg_is(&e, "x", "is required");
    json_decref(arr);
    json_decref(o);
}

Test(jsonx, get_string)
{
    json_t *o = obj("{\"s\": \"hello\", \"e\": \"\", \"i\": 1, \"n\": null, \"a\": [\"x\"]}");
    err e = ERR_INIT;
    const char *out = "untouched";

    cr_assert(jsonx_get_string(o, "s", "event_type", true, &out, &e));
    cr_assert_str_eq(out, "hello");
    cr_assert(jsonx_get_string(o, "e", "event_type", true, &out, &e));
    cr_assert_str_eq(out, "");

    out = "untouched";
    cr_assert(jsonx_get_string(o, "missing", "event_type", false, &out, &e));
    cr_assert(jsonx_get_string(o, "n", "event_type", false, &out, &e));
    cr_assert(jsonx_get_string(NULL, "s", "event_type", false, &out, &e));
    cr_assert_str_eq(out, "untouched");
    cr_assert_eq(e.code, ERR_NONE);

    cr_assert_not(jsonx_get_string(o, "missing", "event_type", true, &out, &e));
    msg_is(&e, "event_type", "event_type is required");
    cr_assert_not(jsonx_get_string(o, "n", "event_type", true, &out, &e));
    msg_is(&e, "event_type", "is required");
    cr_assert_not(jsonx_get_string(o, "i", "event_type", true, &out, &e));
    msg_is(&e, "event_type", "event_type must be a string");
    cr_assert_not(jsonx_get_string(o, "a", "originator.id", false, &out, &e));
    msg_is(&e, "originator.id", "originator.id must be a string");
    cr_assert_str_eq(out, "untouched");
    json_decref(o);
}

Test(jsonx, get_bool)
{
    json_t *o = obj("{\"t\": true, \"f\": false, \"i\": 1, \"s\": \"true\", \"n\": null}");
    err e = ERR_INIT;
    bool out = false;

    cr_assert(jsonx_get_bool(o, "t", "upsert", true, &out, &e));
    cr_assert(out);
    cr_assert(jsonx_get_bool(o, "f", "upsert", true, &out, &e));
    cr_assert_not(out);

    out = true;
    cr_assert(jsonx_get_bool(o, "missing", "upsert", false, &out, &e));
    cr_assert(jsonx_get_bool(o, "n", "upsert", false, &out, &e));
    cr_assert(out);
    cr_assert_eq(e.code, ERR_NONE);

    cr_assert_not(jsonx_get_bool(o, "missing", "upsert", true, &out, &e));
    msg_is(&e, "upsert", "upsert is required");
    cr_assert_not(jsonx_get_bool(o, "i", "upsert", true, &out, &e));
    msg_is(&e, "upsert", "upsert must be a boolean");
    cr_assert_not(jsonx_get_bool(o, "s", "upsert", true, &out, &e));
    msg_is(&e, "upsert", "must be a boolean");
    json_decref(o);
}

Test(jsonx, get_object)
{
    json_t *o = obj("{\"o\": {\"id\": \"x\", \"version\": 2}, \"a\": [], \"s\": \"{}\", \"n\": null}");
    err e = ERR_INIT;
    json_t *out = NULL;

    cr_assert(jsonx_get_object(o, "o", "originator", true, &out, &e));
    cr_assert(json_is_object(out));
    cr_assert_eq(out, json_object_get(o, "o"), "borrowed, not copied");
    int64_t version = 0;
    cr_assert(jsonx_get_int(out, "version", "originator.version", true, 1, INT64_MAX, &version,
                            NULL, &e));
    cr_assert_eq(version, 2);

    out = NULL;
    cr_assert(jsonx_get_object(o, "missing", "originator", false, &out, &e));
    cr_assert(jsonx_get_object(o, "n", "originator", false, &out, &e));
    cr_assert_null(out);
    cr_assert_eq(e.code, ERR_NONE);

    cr_assert_not(jsonx_get_object(o, "missing", "originator", true, &out, &e));
    msg_is(&e, "originator", "originator is required");
    cr_assert_not(jsonx_get_object(o, "a", "originator", true, &out, &e));
    msg_is(&e, "originator", "originator must be an object");
    cr_assert_not(jsonx_get_object(o, "s", "originator", true, &out, &e));
    msg_is(&e, "originator", "must be an object");
    cr_assert_null(out);
    json_decref(o);
}

static int depth_of(const char *s)
{
    return jsonx_depth(s, strlen(s));
}

Test(jsonx, depth_counts_arrays_and_objects_not_strings)
{
    cr_assert_eq(depth_of("1"), 0);
    cr_assert_eq(depth_of("\"[[{\""), 0);
    cr_assert_eq(depth_of("[]"), 1);
    cr_assert_eq(depth_of("{\"a\":[1,{\"b\":[]}],\"c\":{}}"), 4);
    cr_assert_eq(depth_of("[[],[[]],[]]"), 3);
    cr_assert_eq(depth_of("{\"k\\\"[\":\"\\\\\",\"x\":[\"]]]\\\"[[\"]}"), 2);
    char deep[2001];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = '\0';
    cr_assert_eq(depth_of(deep), 1000);
}
