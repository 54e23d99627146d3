/*
 * jsonx.c - the JSON edge of every handler: request bodies become jansson
 * values here, and typed members are read out of them with the 400 errors of
 * SPEC §2 ("originator.version must be an integer"), so that no handler
 * formats its own type errors.
 *
 * Parsing leans on jansson's own guards: it refuses invalid UTF-8, "\u0000"
 * inside strings, nesting deeper than JSON_PARSER_MAX_DEPTH, integers outside
 * int64 and trailing garbage. Any top-level value is accepted; the caller
 * checks that it got the type it needs.
 */
#include "jsonx.h"

#include <inttypes.h>
#include <string.h>

/* Jansson's messages may quote the offending input ("near '...'"), which can
 * hold invalid UTF-8 or control bytes. Our message ends up inside a JSON
 * error body, so keep it printable ASCII. */
static void jsonx_sanitize(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f)
            *s = '?';
    }
}

json_t *jsonx_parse(const char *data, size_t len, err *e)
{
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i == len) {
        err_set(e, ERR_INVALID_ARGUMENT, "request body is empty");
        return NULL;
    }

    json_error_t jerr;
    json_t *v = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (v != NULL)
        return v;

    /* jansson names its own flag here; say what the client did instead */
    const char *text = strstr(jerr.text, "JSON_ALLOW_NUL") ? "\\u0000 is not allowed in strings"
                                                           : jerr.text;
    if (jerr.line > 0)
        err_set(e, ERR_INVALID_ARGUMENT, "request body is not valid JSON: %s at line %d column %d",
                text, jerr.line, jerr.column);
    else
        err_set(e, ERR_INVALID_ARGUMENT, "request body is not valid JSON: %s", text);
    jsonx_sanitize(e->message);
    return NULL;
}

char *jsonx_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* The member, or NULL when obj is NULL, the member is absent or it is null. */
static json_t *jsonx_member(const json_t *obj, const char *key)
{
    if (obj == NULL)
        return NULL;
    json_t *m = json_object_get(obj, key);
    return json_is_null(m) ? NULL : m;
}

/* Handles an absent member: an error when required, else success. */
static bool jsonx_absent(const char *field, bool required, err *e)
{
    if (required) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s is required", field);
        return false;
    }
    return true;
}

bool jsonx_get_int(const json_t *obj, const char *key, const char *field, bool required,
                   int64_t min, int64_t max, int64_t *out, bool *present, err *e)
{
    json_t *m = jsonx_member(obj, key);
    if (present)
        *present = m != NULL;
    if (m == NULL)
        return jsonx_absent(field, required, e);
    if (!json_is_integer(m)) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be an integer", field);
        return false;
    }
    int64_t v = (int64_t)json_integer_value(m);
    if (v < min || v > max) {
        if (max == INT64_MAX)
            err_set(e, ERR_INVALID_ARGUMENT, "%s must be at least %" PRId64, field, min);
        else if (min == INT64_MIN)
            err_set(e, ERR_INVALID_ARGUMENT, "%s must be at most %" PRId64, field, max);
        else
            err_set(e, ERR_INVALID_ARGUMENT, "%s must be between %" PRId64 " and %" PRId64,
                    field, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool jsonx_get_string(const json_t *obj, const char *key, const char *field, bool required,
                      const char **out, err *e)
{
    json_t *m = jsonx_member(obj, key);
    if (m == NULL)
        return jsonx_absent(field, required, e);
    if (!json_is_string(m)) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be a string", field);
        return false;
    }
    *out = json_string_value(m);
    return true;
}

bool jsonx_get_bool(const json_t *obj, const char *key, const char *field, bool required,
                    bool *out, err *e)
{
    json_t *m = jsonx_member(obj, key);
    if (m == NULL)
        return jsonx_absent(field, required, e);
    if (!json_is_boolean(m)) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be a boolean", field);
        return false;
    }
    *out = json_is_true(m);
    return true;
}

bool jsonx_get_object(const json_t *obj, const char *key, const char *field, bool required,
                      json_t **out, err *e)
{
    json_t *m = jsonx_member(obj, key);
    if (m == NULL)
        return jsonx_absent(field, required, e);
    if (!json_is_object(m)) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be an object", field);
        return false;
    }
    *out = m;
    return true;
}
