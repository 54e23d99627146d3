/*
 * fuzz_jsonx.c - libFuzzer target for the JSON reader of request bodies
 * (common/json/jsonx.c, and http_body_parse on top of it): any bytes.
 *
 * Checks: a refused body is a 400 whose message renders (printable ASCII,
 * as jsonx promises); an accepted one survives a dump and a re-parse
 * unchanged, jsonx_depth agrees with a walk of the parsed value, the
 * nesting limit holds, and the typed getters (jsonx_get_*) either succeed
 * with a value of the right type and range or fail with a 400 naming the
 * field. When the body is an array, its members are compared pairwise:
 * jsonx_equal is symmetric and implied by json_equal, and jsonx_num_cmp
 * agrees with an exact comparison of int64 and double (a differential
 * check: no rounding through a double).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "http_server.h"
#include "jsonx.h"

/* The nesting of a parsed value (0 for a scalar). */
static int depth_of(const json_t *v)
{
    int d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m) {
            int x = depth_of(m);
            if (x > d)
                d = x;
        }
        return d + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            int x = depth_of(m);
            if (x > d)
                d = x;
        }
        return d + 1;
    }
    return 0;
}

static void check_getters(const json_t *v)
{
    const char *key;
    json_t *m;
    if (!json_is_object(v))
        return;
    json_object_foreach((json_t *)v, key, m) {
        err e = ERR_INIT;
        int64_t i = 0;
        bool present = false, b = false;
        const char *s = NULL;
        json_t *o = NULL;
        if (jsonx_get_int(v, key, "field", true, -1000, 1000, &i, &present, &e)) {
            if (!json_is_integer(m) || i < -1000 || i > 1000 || i != json_integer_value(m))
                fuzzlib_fail("jsonx_get_int accepted a member it must refuse");
        } else {
            fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "jsonx_get_int");
            if (!strstr(e.message, "field"))
                fuzzlib_fail("jsonx_get_int: the message does not name the field");
        }
        err_clear(&e);
        if (jsonx_get_string(v, key, "field", true, &s, &e)) {
            if (!json_is_string(m) || s != json_string_value(m))
                fuzzlib_fail("jsonx_get_string accepted a member it must refuse");
        } else {
            fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "jsonx_get_string");
        }
        err_clear(&e);
        if (jsonx_get_bool(v, key, "field", false, &b, &e)) {
            if (!json_is_null(m) && !json_is_boolean(m))
                fuzzlib_fail("jsonx_get_bool accepted a member it must refuse");
        } else {
            fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "jsonx_get_bool");
        }
        err_clear(&e);
        if (jsonx_get_object(v, key, "field", false, &o, &e)) {
            if (o && (!json_is_object(m) || o != m))
                fuzzlib_fail("jsonx_get_object accepted a member it must refuse");
        } else {
            fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "jsonx_get_object");
        }
        err_clear(&e);
    }
}

/* Exact comparison of an int64 with a finite double. */
static int cmp_int_double(long long i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double t = trunc(d);
    long long ti = (long long)t;
    if (i != ti)
        return i < ti ? -1 : 1;
    double frac = d - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int exact_num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return (json_integer_value(a) > json_integer_value(b)) -
               (json_integer_value(a) < json_integer_value(b));
    if (json_is_real(a) && json_is_real(b)) {
        double x = json_real_value(a), y = json_real_value(b);
        return (x > y) - (x < y);
    }
    if (json_is_integer(a))
        return cmp_int_double((long long)json_integer_value(a), json_real_value(b));
    return -cmp_int_double((long long)json_integer_value(b), json_real_value(a));
}

static void check_pairs(const json_t *v)
{
    size_t n = json_array_size(v);
    if (n > 8)
        n = 8;
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        for (size_t j = 0; j < n; j++) {
            const json_t *y = json_array_get(v, j);
            bool eq = jsonx_equal(x, y);
            if (eq != jsonx_equal(y, x))
                fuzzlib_fail("jsonx_equal is not symmetric for members %zu and %zu", i, j);
            if (json_equal(x, y) && !eq)
                fuzzlib_fail("json_equal but not jsonx_equal: members %zu and %zu", i, j);
            if (json_is_number(x) && json_is_number(y)) {
                int c = jsonx_num_cmp(x, y), want = exact_num_cmp(x, y);
                if (c != want)
                    fuzzlib_fail("jsonx_num_cmp of members %zu and %zu is %d, exactly %d", i,
                                 j, c, want);
                if (eq != (c == 0))
                    fuzzlib_fail("jsonx_equal and jsonx_num_cmp disagree");
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    err e = ERR_INIT;
    json_t *v = jsonx_parse((const char *)data, size, &e);
    if (!v) {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "jsonx_parse");
        for (const char *p = e.message; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                fuzzlib_fail("jsonx_parse: the message is not printable ASCII");
        err_clear(&e);
        return 0;
    }
    /* The text may nest deeper than the value (a duplicate key drops the
     * first member); the dump has no duplicates. */
    int depth = jsonx_depth((const char *)data, size);
    if (depth < depth_of(v))
        fuzzlib_fail("jsonx_depth says %d, the value nests %d", depth, depth_of(v));
    char *text = jsonx_dump(v);
    if (!text)
        fuzzlib_fail("jsonx_dump failed");
    if (jsonx_depth(text, strlen(text)) != depth_of(v))
        fuzzlib_fail("jsonx_depth of the dump says %d, the value nests %d",
                     jsonx_depth(text, strlen(text)), depth_of(v));
    err e2 = ERR_INIT;
    json_t *again = jsonx_parse(text, strlen(text), &e2);
    if (!again)
        fuzzlib_fail("a dumped body does not parse again: %s", e2.message);
    fuzzlib_expect_equal(v, again, "dump and re-parse");
    check_getters(v);
    if (json_is_array(v))
        check_pairs(v);
    if (!jsonx_equal(v, again))
        fuzzlib_fail("jsonx_equal says a re-parsed body differs");

    /* the server's form: the same value within the limit, a 400 beyond it */
    err e3 = ERR_INIT;
    json_t *body = http_body_parse((const char *)data, size, 8, &e3);
    if (depth > 8) {
        if (body)
            fuzzlib_fail("http_body_parse took a body nesting %d > 8 levels", depth);
        fuzzlib_check_err(&e3, ERR_INVALID_ARGUMENT, "http_body_parse");
    } else {
        if (!body)
            fuzzlib_fail("http_body_parse refused what jsonx_parse took: %s", e3.message);
        fuzzlib_expect_equal(v, body, "http_body_parse");
    }
    json_decref(body);
    json_decref(again);
    json_decref(v);
    free(text);
    err_clear(&e2);
    err_clear(&e3);
    return 0;
}
