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
 *
 * The reader side (jsonx_parse_stored) is laxer where eskit's own output can
 * be: past-int64 integers (PostgreSQL's spelling of large floats) become
 * reals by a rewrite of the text that runs only when jansson refused one,
 * and "\u0000" is allowed.
 */
#include "jsonx.h"

#include <inttypes.h>
#include <stdlib.h>
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

/*
 * Writes the path ("events[1].originator.version") of the value being
 * parsed at byte `pos` of `text`, which is valid JSON up to there (jansson
 * stopped on the number at pos). "" when the value is the whole body.
 */
static void jsonx_path_at(const char *text, size_t pos, char *out, size_t outlen)
{
    enum { MAXD = 32 };
    struct { bool obj; size_t key_off, key_len; long idx; } st[MAXD];
    int depth = 0;
    bool in_str = false, expect_key = false;
    size_t str_start = 0;
    out[0] = '\0';
    for (size_t i = 0; i < pos && text[i]; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"') {
                in_str = false;
                if (depth > 0 && depth <= MAXD && st[depth - 1].obj && expect_key) {
                    st[depth - 1].key_off = str_start;
                    st[depth - 1].key_len = i - str_start;
                    expect_key = false;
                }
            }
            continue;
        }
        switch (c) {
        case '"': in_str = true; str_start = i + 1; break;
        case '{':
        case '[':
            if (depth < MAXD) {
                st[depth].obj = c == '{';
                st[depth].key_off = st[depth].key_len = 0;
                st[depth].idx = 0;
            }
            depth++;
            expect_key = c == '{';
            break;
        case '}':
        case ']': depth--; break;
        case ',':
            if (depth > 0 && depth <= MAXD) {
                if (st[depth - 1].obj)
                    expect_key = true;
                else
                    st[depth - 1].idx++;
            }
            break;
        default: break;
        }
    }
    size_t used = 0;
    for (int d = 0; d < depth && d < MAXD; d++) {
        int n;
        if (st[d].obj)
            n = snprintf(out + used, outlen - used, "%s%.*s", used ? "." : "",
                         (int)st[d].key_len, text + st[d].key_off);
        else
            n = snprintf(out + used, outlen - used, "[%ld]", st[d].idx);
        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
}

/* Whether jansson's message is about a number out of range. */
static bool jsonx_range_error(const char *text)
{
    return strstr(text, "too big") != NULL || strstr(text, "overflow") != NULL;
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

    /* A number out of range: name the member it was given for. */
    if (jsonx_range_error(jerr.text)) {
        char path[256];
        jsonx_path_at(data, (size_t)jerr.position, path, sizeof path);
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s is out of range: numbers must fit in a signed 64-bit integer or a double",
                path[0] ? path : "a number in the body");
        jsonx_sanitize(e->message);
        return NULL;
    }
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

static bool jsonx_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Whether the integer token tok[0..n) ("-123", digits only after the sign)
 * fits in int64. JSON forbids leading zeros, so the length decides but at
 * 19 digits, where the digits are compared with the limit. */
static bool jsonx_fits_int64(const char *tok, size_t n)
{
    bool neg = n > 0 && tok[0] == '-';
    const char *d = tok + neg;
    size_t nd = n - neg;
    if (nd != 19)
        return nd < 19;
    return memcmp(d, neg ? "9223372036854775808" : "9223372036854775807", 19) <= 0;
}

/*
 * A copy of text[0..len) in which every integer token outside strings that
 * does not fit in int64 is followed by "e0", which makes it a real for
 * jansson (strtod: the nearest double). Tokens are the runs of number
 * characters outside strings; the text need not be valid (the parse that
 * follows says so). Returns NULL on OOM; the caller frees; *out_len is the
 * copy's length.
 */
static char *jsonx_widen_integers(const char *text, size_t len, size_t *out_len)
{
    size_t cap = len + len / 8 + 16, used = 0;
    char *out = malloc(cap);
    bool in_str = false;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        size_t j = i + 1;
        bool widen = false;
        if (in_str) {
            if (c == '\\' && j < len)
                j++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            bool integer = true;
            while (j < len && jsonx_number_char(text[j])) {
                if (text[j] == '.' || text[j] == 'e' || text[j] == 'E')
                    integer = false;
                j++;
            }
            widen = integer && !jsonx_fits_int64(text + i, j - i);
        }
        size_t need = used + (j - i) + (widen ? 2 : 0);
        if (need > cap) {
            size_t ncap = need + need / 2;
            char *grown = realloc(out, ncap);
            if (!grown) {
                free(out);
                return NULL;
            }
            out = grown;
            cap = ncap;
        }
        memcpy(out + used, text + i, j - i);
        used += j - i;
        if (widen) {
            memcpy(out + used, "e0", 2);
            used += 2;
        }
        i = j;
    }
    *out_len = used;
    return out;
}

json_t *jsonx_parse_stored(const char *data, size_t len, err *e)
{
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    json_error_t jerr;
    char *wide = NULL;
    size_t wide_len = 0;
    json_t *v = json_loadb(data ? data : "", data ? len : 0, flags, &jerr);
    if (v != NULL)
        return v;
    if (data && jsonx_range_error(jerr.text)) {
        wide = jsonx_widen_integers(data, len, &wide_len);
        if (!wide) {
            if (e)
                err_set(e, ERR_INTERNAL, "out of memory parsing stored JSON");
            return NULL;
        }
        v = json_loadb(wide, wide_len, flags, &jerr);
        free(wide);
        if (v != NULL)
            return v;
    }
    if (e) {
        err_set(e, ERR_INTERNAL, "stored JSON is not valid: %s at line %d column %d", jerr.text,
                jerr.line, jerr.column);
        jsonx_sanitize(e->message);
    }
    return NULL;
}

int jsonx_depth(const char *text, size_t len)
{
    int depth = 0, deepest = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > deepest)
                deepest = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return deepest;
}

int jsonx_num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    long double x =
        json_is_integer(a) ? (long double)json_integer_value(a) : (long double)json_real_value(a);
    long double y =
        json_is_integer(b) ? (long double)json_integer_value(b) : (long double)json_real_value(b);
    return (x > y) - (x < y);
}

bool jsonx_equal(const json_t *a, const json_t *b)
{
    const char *key = NULL;
    size_t key_len = 0;
    json_t *av = NULL;

    if (json_is_number(a) && json_is_number(b))
        return jsonx_num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_keylen_foreach ((json_t *)a, key, key_len, av) {
            const json_t *bv = json_object_getn(b, key, key_len);
            if (!bv || !jsonx_equal(av, bv))
                return false;
        }
        return true;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!jsonx_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    case JSON_STRING:
        return json_equal(a, b);
    default: /* true, false, null */
        return true;
    }
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
