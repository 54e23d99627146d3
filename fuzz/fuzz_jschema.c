/*
 * fuzz_jschema.c - libFuzzer target for the JSON Schema compiler and
 * validator (the files of common/jschema). The bytes are a JSON array [schema,
 * instance, ...] read as the server reads a body (a type spec's json_schema,
 * a document); a lone value is a schema validated against itself.
 *
 * Checks:
 *  - compile: a schema refused is a 400 whose error body renders;
 *  - whatever compiles is valid against the draft-07 meta-schema;
 *  - validate: true leaves no error list; false gives a non-empty list of
 *    {"path", "message"} where path is a JSON Pointer whose parent exists in
 *    the instance (the property itself may be the missing one), and the
 *    CRUD store's 400 built from them renders; the answer does not change
 *    when run again or without an error list.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "jschema.h"

static jschema *meta;

/* The value at JSON Pointer p[0..len) (RFC 6901) in v, or NULL. */
static const json_t *pointer_get(const json_t *v, const char *p, size_t len)
{
    size_t i = 0;
    char *key = malloc(len + 1);
    if (!key)
        fuzzlib_fail("out of memory");
    while (v && i < len) {
        if (p[i] != '/') {
            v = NULL;
            break;
        }
        i++;
        size_t k = 0;
        bool bad = false;
        while (i < len && p[i] != '/') {
            char c = p[i++];
            if (c == '~') {
                if (i >= len || (p[i] != '0' && p[i] != '1'))
                    bad = true;
                else
                    c = p[i++] == '0' ? '~' : '/';
            }
            key[k++] = c;
        }
        if (bad) {
            v = NULL;
        } else if (json_is_object(v)) {
            v = json_object_getn(v, key, k);
        } else if (json_is_array(v)) {
            size_t idx = 0;
            bool digits = k > 0 && !(k > 1 && key[0] == '0') && k < 19;
            for (size_t j = 0; digits && j < k; j++) {
                digits = key[j] >= '0' && key[j] <= '9';
                idx = idx * 10 + (size_t)(key[j] - '0');
            }
            v = digits ? json_array_get(v, idx) : NULL;
        } else {
            v = NULL;
        }
    }
    free(key);
    return v;
}

static void check_errors(const json_t *errors, const json_t *instance)
{
    size_t i;
    json_t *e;
    if (!json_is_array(errors) || json_array_size(errors) == 0)
        fuzzlib_fail("invalid, yet no error list");
    json_array_foreach(errors, i, e) {
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (!path || !msg || !*msg)
            fuzzlib_fail("error %zu lacks a path or a message", i);
        size_t len = strlen(path);
        const char *slash = strrchr(path, '/');
        size_t parent = slash ? (size_t)(slash - path) : 0;
        if (len && path[0] != '/')
            fuzzlib_fail("error path '%s' is not a JSON Pointer", path);
        if (len && !pointer_get(instance, path, parent))
            fuzzlib_fail("error path '%s': its parent is not in the instance", path);
    }
}

static void check_one(const jschema *s, const json_t *instance)
{
    json_t *errors = NULL, *again = NULL;
    bool ok = jschema_validate(s, instance, &errors);
    if (ok && errors)
        fuzzlib_fail("valid, yet an error list");
    if (!ok) {
        check_errors(errors, instance);
        /* the CRUD store's 400 (crud_types_check) must render */
        json_t *first = json_array_get(errors, 0);
        const char *path = json_string_value(json_object_get(first, "path"));
        const char *msg = json_string_value(json_object_get(first, "message"));
        err e = ERR_INIT;
        err_set_details(&e, ERR_INVALID_ARGUMENT, json_pack("{s:O}", "errors", errors),
                        "payload does not match the JSON Schema of %s: %s%s%s", "Order",
                        path && *path ? path : "", path && *path ? ": " : "", msg ? msg : "");
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "the CRUD store's schema error");
        err_clear(&e);
    }
    if (jschema_validate(s, instance, NULL) != ok)
        fuzzlib_fail("the answer changes without an error list");
    if (jschema_validate(s, instance, &again) != ok)
        fuzzlib_fail("the answer changes on a second run");
    if (!ok)
        fuzzlib_expect_equal(again, errors, "the errors of a second run");
    json_decref(errors);
    json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    if (!meta) {
        err me = ERR_INIT;
        json_t *m = json_pack("{s:s}", "$ref", "http://json-schema.org/draft-07/schema#");
        if (!m || !(meta = jschema_compile(m, &me)))
            fuzzlib_fail("the meta-schema does not compile: %s", me.message);
        json_decref(m);
    }
    json_t *in = fuzzlib_body(data, size);
    if (!in)
        return 0;
    bool list = json_is_array(in) && json_array_size(in) >= 1;
    const json_t *schema = list ? json_array_get(in, 0) : in;
    err e = ERR_INIT;
    jschema *s = jschema_compile(schema, &e);
    if (!s) {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "jschema_compile");
        err_clear(&e);
        json_decref(in);
        return 0;
    }
    json_t *merr = NULL;
    if (!jschema_validate(meta, schema, &merr)) {
        char *t = json_dumps(merr, JSON_COMPACT);
        fuzzlib_fail("a schema compiled, yet the meta-schema refuses it: %s", t ? t : "?");
    }
    if (list) {
        for (size_t i = 1; i < json_array_size(in); i++)
            check_one(s, json_array_get(in, i));
    } else {
        check_one(s, schema);
    }
    jschema_free(s);
    json_decref(in);
    return 0;
}
