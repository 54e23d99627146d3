/*
 * test_jschema.c - the JSON Schema validator against the official
 * JSON-Schema-Test-Suite (draft7, installed by the Debian package
 * json-schema-test-suite), plus the error paths and messages the CRUD store
 * relies on, and the schemas compile must refuse.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jschema.h"

#define SUITE_DIR "/usr/share/json-schema-test-suite/tests/draft7"

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(v, "bad test JSON %s: %s", text, jerr.text);
    return v;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every case of one suite file; returns the failures, adds to *cases. */
static int run_suite_file(const char *name, int *cases)
{
    char path[512];
    json_error_t jerr;
    int failures = 0;
    snprintf(path, sizeof path, "%s/%s", SUITE_DIR, name);
    json_t *groups = json_load_file(path, 0, &jerr);
    cr_assert_not_null(groups, "%s: %s", path, jerr.text);

    size_t gi;
    json_t *group;
    json_array_foreach (groups, gi, group) {
        const char *gdesc = json_string_value(json_object_get(group, "description"));
        json_t *tests = json_object_get(group, "tests");
        err e = ERR_INIT;
        jschema *s = jschema_compile(json_object_get(group, "schema"), &e);
        size_t ti;
        json_t *test;
        json_array_foreach (tests, ti, test) {
            const char *tdesc = json_string_value(json_object_get(test, "description"));
            bool want = json_is_true(json_object_get(test, "valid"));
            (*cases)++;
            if (!s) {
                printf("FAIL %s | %s | %s: schema refused: %s\n", name, gdesc, tdesc, e.message);
                failures++;
                continue;
            }
            json_t *errors = NULL;
            const json_t *data = json_object_get(test, "data");
            bool got = jschema_validate(s, data, &errors);
            bool quiet = jschema_validate(s, data, NULL);
            if (got != want || quiet != got) {
                printf("FAIL %s | %s | %s: valid=%d (quiet %d), want %d\n", name, gdesc, tdesc, got,
                       quiet, want);
                failures++;
            }
            if (!got && (!json_is_array(errors) || json_array_size(errors) == 0)) {
                printf("FAIL %s | %s | %s: invalid without errors\n", name, gdesc, tdesc);
                failures++;
            }
            if (got && errors) {
                printf("FAIL %s | %s | %s: valid with errors\n", name, gdesc, tdesc);
                failures++;
            }
            json_decref(errors);
        }
        jschema_free(s);
        err_clear(&e);
    }
    json_decref(groups);
    return failures;
}

Test(jschema, official_suite_draft7, .timeout = 60)
{
    DIR *dir = opendir(SUITE_DIR);
    cr_assert_not_null(dir, "the JSON-Schema-Test-Suite is not installed at " SUITE_DIR);
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) && n < 256) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue; /* ".", "..", "optional" */
        if (strcmp(de->d_name, "refRemote.json") == 0)
            continue; /* needs a server for http://localhost:1234 */
        names[n++] = strdup(de->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof names[0], name_cmp);

    int cases = 0, failures = 0;
    for (size_t i = 0; i < n; i++) {
        failures += run_suite_file(names[i], &cases);
        free(names[i]);
    }
    printf("JSON-Schema-Test-Suite draft7: %zu files, %d cases, %d failures\n", n, cases, failures);
    cr_assert_geq(n, 30, "suite files found: %zu", n);
    /* The Debian package (2.0.0) holds 408 cases outside refRemote.json;
     * newer suites hold more. */
    cr_assert_geq(cases, 400, "cases run: %d", cases);
    cr_assert_eq(failures, 0, "%d of %d cases failed (see the FAIL lines)", failures, cases);
}

/* --- errors ---------------------------------------------------------------------- */

static jschema *compile_ok(const char *schema_text)
{
    json_t *schema = parse(schema_text);
    err e = ERR_INIT;
    jschema *s = jschema_compile(schema, &e);
    cr_assert_not_null(s, "compile %s: %s", schema_text, e.message);
    json_decref(schema);
    return s;
}

/* Validates and returns the errors (an array; empty when valid). */
static json_t *errors_of(const jschema *s, const char *instance_text)
{
    json_t *inst = parse(instance_text);
    json_t *errors = NULL;
    bool ok = jschema_validate(s, inst, &errors);
    json_decref(inst);
    if (ok) {
        cr_assert_null(errors);
        return json_array();
    }
    cr_assert(json_is_array(errors) && json_array_size(errors) > 0);
    return errors;
}

static bool has_error(const json_t *errors, const char *path, const char *in_message)
{
    size_t i;
    json_t *item;
    json_array_foreach (errors, i, item) {
        const char *p = json_string_value(json_object_get(item, "path"));
        const char *m = json_string_value(json_object_get(item, "message"));
        cr_assert(p && m, "an error is {path, message}");
        if (strcmp(p, path) == 0 && (!in_message || strstr(m, in_message)))
            return true;
    }
    return false;
}

static void dump_errors(const json_t *errors)
{
    char *s = json_dumps(errors, 0);
    printf("errors: %s\n", s ? s : "?");
    free(s);
}

Test(jschema, error_paths_are_json_pointers)
{
    jschema *s =
        compile_ok("{\"type\":\"object\",\"required\":[\"email\",\"name\"],"
                   "\"properties\":{\"email\":{\"type\":\"string\",\"pattern\":\"@\"},"
                   "\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\",\"minimum\":0},"
                   "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
                   "\"a/b~c\":{\"const\":1}},"
                   "\"additionalProperties\":false}");

    json_t *errors = errors_of(s, "{\"email\":\"ada\",\"name\":\"Ada\"}");
    cr_assert(has_error(errors, "/email", "pattern"));
    cr_assert_eq(json_array_size(errors), 1);
    json_decref(errors);

    errors = errors_of(s, "{\"name\":\"Ada\",\"age\":-1,\"items\":[\"a\",2,\"c\",true],"
                          "\"a/b~c\":2,\"extra\":0}");
    dump_errors(errors);
    cr_assert(has_error(errors, "/email", "required"));
    cr_assert(has_error(errors, "/age", ">= 0"));
    cr_assert(has_error(errors, "/items/1", "string"));
    cr_assert(has_error(errors, "/items/3", "string"));
    cr_assert(has_error(errors, "/a~1b~0c", "const"));
    cr_assert(has_error(errors, "/extra", "additional"));
    cr_assert_eq(json_array_size(errors), 6);
    json_decref(errors);

    errors = errors_of(s, "[]");
    cr_assert(has_error(errors, "", "object"));
    json_decref(errors);

    errors = errors_of(s, "{\"email\":\"a@b\",\"name\":\"x\",\"items\":[]}");
    cr_assert_eq(json_array_size(errors), 0);
    json_decref(errors);
    jschema_free(s);
}

Test(jschema, numbers_compare_by_value)
{
    jschema *s = compile_ok("{\"items\":[{\"type\":\"integer\"},{\"enum\":[1]},{\"const\":2.0}],"
                            "\"uniqueItems\":true}");
    json_t *errors = errors_of(s, "[1.0, 1.0, 2]");
    cr_assert_eq(json_array_size(errors), 1);
    cr_assert(has_error(errors, "", "duplicates"));
    json_decref(errors);
    errors = errors_of(s, "[3.0, 1.0, 2]");
    cr_assert_eq(json_array_size(errors), 0);
    json_decref(errors);
    errors = errors_of(s, "[3.5, true, 2]");
    cr_assert(has_error(errors, "/0", "integer"));
    cr_assert(has_error(errors, "/1", "enum"));
    json_decref(errors);
    jschema_free(s);
}

Test(jschema, lengths_count_code_points)
{
    jschema *s = compile_ok("{\"minLength\":3,\"maxLength\":3}");
    json_t *ok = json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"); /* 3 code points */
    json_t *two = json_string("\xc3\xa9\xc3\xa9");                    /* 4 bytes, 2 chars */
    cr_assert(jschema_validate(s, ok, NULL));
    cr_assert_not(jschema_validate(s, two, NULL));
    json_decref(two);
    json_decref(ok);
    jschema_free(s);
}

/* --- compile errors --------------------------------------------------------------- */

static void assert_refused(const char *schema_text, const char *in_message)
{
    json_t *schema = parse(schema_text);
    err e = ERR_INIT;
    jschema *s = jschema_compile(schema, &e);
    cr_assert_null(s, "compiled: %s", schema_text);
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT, "%s: code %d", schema_text, e.code);
    cr_assert(strstr(e.message, in_message), "%s: message \"%s\" lacks \"%s\"", schema_text,
              e.message, in_message);
    err_clear(&e);
    json_decref(schema);
}

Test(jschema, compile_refuses_bad_schemas)
{
    assert_refused("{\"type\":5}", "/type");
    assert_refused("{\"type\":\"strin\"}", "/type");
    assert_refused("{\"type\":[\"string\",\"string\"]}", "/type");
    assert_refused("{\"minLength\":-1}", "/minLength");
    assert_refused("{\"minLength\":1.5}", "/minLength");
    assert_refused("{\"maxItems\":\"3\"}", "/maxItems");
    assert_refused("{\"pattern\":\"(\"}", "regular expression");
    assert_refused("{\"patternProperties\":{\"[\":{}}}", "regular expression");
    assert_refused("{\"required\":[\"a\",\"a\"]}", "/required");
    assert_refused("{\"required\":\"a\"}", "/required");
    assert_refused("{\"multipleOf\":0}", "/multipleOf");
    assert_refused("{\"properties\":{\"a\":{\"type\":\"nope\"}}}", "/properties/a/type");
    assert_refused("{\"properties\":{\"a\":3}}", "/properties/a");
    assert_refused("{\"allOf\":[]}", "/allOf");
    assert_refused("{\"items\":[{}, 7]}", "/items/1");
    assert_refused("{\"dependencies\":{\"a\":[1]}}", "/dependencies");
    assert_refused("{\"enum\":3}", "/enum");
    assert_refused("42", "object or a boolean");
    assert_refused("{\"$ref\":\"http://example.com/x.json\"}", "remote");
    assert_refused("{\"$ref\":\"other.json#/definitions/a\"}", "remote");
    assert_refused("{\"$ref\":\"#/definitions/missing\"}", "does not resolve");
    assert_refused("{\"$ref\":\"#nowhere\"}", "does not resolve");
    assert_refused("{\"$ref\":\"#\"}", "loop");
    assert_refused("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},"
                   "\"b\":{\"allOf\":[{\"$ref\":\"#/definitions/a\"}]}}}",
                   "loop");
    assert_refused("{\"anyOf\":[{\"type\":\"string\"},{\"$ref\":\"#\"}]}", "loop");
}

Test(jschema, compile_accepts_recursion_through_the_instance)
{
    jschema *s = compile_ok("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                            "\"children\":{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}}}");
    json_t *errors = errors_of(s, "{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"children\":"
                                  "[{\"name\":3}]}]}");
    cr_assert(has_error(errors, "/children/0/children/0/name", "string"));
    json_decref(errors);
    jschema_free(s);
}

Test(jschema, deep_instances_fail_cleanly)
{
    jschema *s = compile_ok("{\"items\":{\"$ref\":\"#\"}}");
    json_t *deep = json_array();
    json_t *cur = deep;
    for (int i = 0; i < 3000; i++) { /* deeper than the parser would allow */
        json_t *next = json_array();
        cr_assert(json_array_append_new(cur, next) == 0);
        cur = next;
    }
    json_t *errors = NULL;
    cr_assert_not(jschema_validate(s, deep, &errors));
    cr_assert(has_error(errors, "", "deeply"));
    json_decref(errors);
    cr_assert_not(jschema_validate(s, deep, NULL));
    json_decref(deep);
    jschema_free(s);
}

Test(jschema, schema_is_copied)
{
    json_t *schema = parse("{\"properties\":{\"a\":{\"type\":\"string\"}}}");
    err e = ERR_INIT;
    jschema *s = jschema_compile(schema, &e);
    cr_assert_not_null(s);
    json_decref(schema); /* the compiled schema holds its own copy */
    json_t *inst = parse("{\"a\":1}");
    cr_assert_not(jschema_validate(s, inst, NULL));
    json_decref(inst);
    jschema_free(s);
}

Test(jschema, ids_and_relative_refs)
{
    jschema *s =
        compile_ok("{\"$id\":\"http://example.com/root.json\","
                   "\"definitions\":{\"A\":{\"$id\":\"#foo\",\"type\":\"integer\"},"
                   "\"B\":{\"$id\":\"other/b.json\",\"definitions\":{\"x\":{\"type\":\"string\"}},"
                   "\"properties\":{\"p\":{\"$ref\":\"#/definitions/x\"},"
                   "\"q\":{\"$ref\":\"../root.json#foo\"}}}},"
                   "\"properties\":{\"i\":{\"$ref\":\"#foo\"},\"b\":{\"$ref\":\"other/b.json\"},"
                   "\"t\":{\"$ref\":\"other/./b.json#/definitions/x\"}}}");
    json_t *errors = errors_of(s, "{\"i\":\"x\",\"b\":{\"p\":1,\"q\":\"no\"},\"t\":2}");
    dump_errors(errors);
    cr_assert(has_error(errors, "/i", "integer"));
    cr_assert(has_error(errors, "/b/p", "string"));
    cr_assert(has_error(errors, "/b/q", "integer"));
    cr_assert(has_error(errors, "/t", "string"));
    cr_assert_eq(json_array_size(errors), 4);
    json_decref(errors);
    jschema_free(s);
}

/* A member whose key is long (600,000 '~', escaped "~0" in the path: 1.2 MB,
 * in a body under the 1 MiB limit) is reported as an error like any other;
 * the instance path's 1 MiB cap made it "out of memory" (no error list),
 * which the CRUD store answered with 500. */
Test(jschema, long_keys_are_errors_not_out_of_memory)
{
    size_t n = 600000;
    char *key = malloc(n + 1);
    cr_assert_not_null(key);
    memset(key, '~', n);
    key[n] = '\0';
    json_t *inst = json_object();
    cr_assert_eq(json_object_set_new(inst, key, json_integer(1)), 0);
    jschema *s = compile_ok("{\"additionalProperties\":false}");
    json_t *errors = NULL;
    cr_assert_not(jschema_validate(s, inst, &errors));
    cr_assert_not_null(errors, "no error list: the validator ran out of its path buffer");
    cr_assert_eq(json_array_size(errors), 1);
    const char *path = json_string_value(json_object_get(json_array_get(errors, 0), "path"));
    cr_assert_not_null(path);
    cr_expect_eq(strlen(path), 1 + 2 * n);
    json_decref(errors);
    json_decref(inst);
    jschema_free(s);
    free(key);
}
