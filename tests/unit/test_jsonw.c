/*
 * test_jsonw.c - JSON written straight into a buf: strings (escapes, control
 * characters, length-limited), and whole values, checked by parsing the
 * output back with jansson.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "jsonw.h"

static json_t *parse(const buf *b)
{
    json_error_t je;
    json_t *v = json_loadb(b->data, b->len, JSON_DECODE_ANY, &je);
    cr_assert_not_null(v, "not JSON: %s (%s)", b->data, je.text);
    return v;
}

Test(jsonw, strings_round_trip)
{
    const char *cases[] = {"", "plain", "quote \" and \\ backslash", "tab\tnew\nline\r",
                           "\x01\x1f control", "h\xc3\xa9llo \xe2\x98\x83"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf b;
        buf_init(&b, 1024);
        cr_assert_eq(jsonw_string(&b, cases[i]), 0);
        json_t *v = parse(&b);
        cr_assert_str_eq(json_string_value(v), cases[i]);
        json_decref(v);
        buf_free(&b);
    }
}

Test(jsonw, stringn_takes_a_prefix)
{
    buf b;
    buf_init(&b, 64);
    cr_assert_eq(jsonw_stringn(&b, "com.acme.User.Created", 13), 0);
    cr_assert_str_eq(b.data, "\"com.acme.User\"");
    buf_reset(&b);
    cr_assert_eq(jsonw_stringn(&b, "a\0b", 3), 0); /* an embedded NUL is escaped */
    cr_assert_str_eq(b.data, "\"a\\u0000b\"");
    buf_free(&b);
}

Test(jsonw, values_round_trip_and_respect_the_cap)
{
    json_t *v = json_loads("{\"a\":[1,2.5,\"x\",null,true,{\"b\":{}}],\"s\":\"\\u00e9\"}", 0, NULL);
    buf b;
    buf_init(&b, 1024);
    cr_assert_eq(jsonw_value(&b, v), 0);
    json_t *back = parse(&b);
    cr_assert(json_equal(v, back));
    json_decref(back);
    buf_free(&b);

    buf_init(&b, 8); /* too small: refused, not truncated into broken JSON silently */
    cr_assert_neq(jsonw_value(&b, v), 0);
    buf_free(&b);
    json_decref(v);
}
