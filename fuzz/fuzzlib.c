/*
 * fuzzlib.c - the helpers and shared checks of the fuzz targets (see
 * fuzzlib.h). Linked into every target; never into a service.
 */
#include "fuzzlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"

void fuzzlib_init(void)
{
    static bool done = false;
    if (!done) {
        json_object_seed(1);
        done = true;
    }
}

void fuzzlib_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz check failed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

char *fuzzlib_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        fuzzlib_fail("out of memory");
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

bool fuzzlib_utf8(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

void fuzzlib_check_err(const err *e, err_code want, const char *what)
{
    if (e->code == ERR_NONE)
        fuzzlib_fail("%s: failed without an error code", what);
    if (want != ERR_NONE && e->code != want)
        fuzzlib_fail("%s: error code %s, want %s (%s)", what, err_code_name(e->code),
                     err_code_name(want), e->message);
    int status = err_code_status(e->code);
    if (want == ERR_NONE && (status < 400 || status > 499))
        fuzzlib_fail("%s: status %d for a client's input (%s)", what, status, e->message);
    size_t n = strnlen(e->message, sizeof e->message);
    if (n == 0 || n == sizeof e->message)
        fuzzlib_fail("%s: the error message is empty or unterminated", what);
    if (e->details && !json_is_object(e->details))
        fuzzlib_fail("%s: details must be an object", what);
    /* what http_reply_err sends: it must render, else the client gets a 500 */
    json_t *details = e->details ? json_incref(e->details) : json_object();
    json_t *body = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", err_code_name(e->code),
                             "message", e->message, "details", details);
    if (!body)
        fuzzlib_fail("%s: the error body does not render (message not UTF-8?): %s", what,
                     e->message);
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text)
        fuzzlib_fail("%s: the error body does not serialise", what);
    free(text);
    json_decref(body);
}

json_t *fuzzlib_body(const uint8_t *data, size_t size)
{
    err e = ERR_INIT;
    json_t *v = http_body_parse((const char *)data, size, 0, &e);
    if (!v)
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "request body");
    else if (e.code != ERR_NONE)
        fuzzlib_fail("request body: parsed, yet an error is set");
    err_clear(&e);
    return v;
}

char *fuzzlib_dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        fuzzlib_fail("json_dumps failed");
    return s;
}

json_t *fuzzlib_reparse(const char *text, size_t len, const char *what)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (!v)
        fuzzlib_fail("%s: not valid JSON (%s): %.*s", what, jerr.text, (int)(len > 300 ? 300 : len),
                     text);
    return v;
}

void fuzzlib_expect_equal(const json_t *a, const json_t *b, const char *what)
{
    if ((!a && !b) || json_equal(a, b))
        return;
    char *sa = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    char *sb = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    fuzzlib_fail("%s: %.500s != %.500s", what, sa ? sa : "?", sb ? sb : "?");
}

json_t *fuzzlib_strip_nulls(const json_t *v)
{
    if (!json_is_object(v)) {
        json_t *c = json_deep_copy(v);
        if (!c)
            fuzzlib_fail("out of memory");
        return c;
    }
    json_t *out = json_object();
    const char *k;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach((json_t *)v, k, klen, m) {
        if (json_is_null(m))
            continue;
        if (!out || json_object_setn_new(out, k, klen, fuzzlib_strip_nulls(m)))
            fuzzlib_fail("out of memory");
    }
    return out;
}
