/*
 * fuzz_jsonx_stored.c - libFuzzer target for the reader of what eskit
 * itself stored or answered (jsonx_parse_stored, common/json/jsonx.c): event
 * store pages, stored payloads and documents, which may hold integers past
 * int64 (PostgreSQL's jsonb spelling of large floats) and "\u0000". The
 * bytes are such a text.
 *
 * Checks: whatever a request body may be (jsonx_parse) is read the same
 * here; what is read survives a dump and a re-read unchanged; and the same
 * value written the way PostgreSQL writes it, every integral float of 1e15
 * or more as all its digits (1e20 as 100000000000000000000), reads back
 * equal number for number, so that no page of the log is ever refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzzlib.h"
#include "jsonx.h"

/* v as JSON text with PostgreSQL's spelling of large integral floats. */
static int pg_spelling(buf *b, const json_t *v)
{
    const char *k;
    size_t klen, i;
    json_t *m;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        int first = 1;
        if (buf_puts(b, "{"))
            return -1;
        json_object_keylen_foreach((json_t *)v, k, klen, m) {
            json_t *key = json_stringn(k, klen);
            char *kt = key ? json_dumps(key, JSON_ENCODE_ANY) : NULL;
            int rc = !kt || buf_puts(b, first ? "" : ",") || buf_puts(b, kt) ||
                     buf_puts(b, ":") || pg_spelling(b, m);
            free(kt);
            json_decref(key);
            if (rc)
                return -1;
            first = 0;
        }
        return buf_puts(b, "}");
    }
    case JSON_ARRAY:
        if (buf_puts(b, "["))
            return -1;
        json_array_foreach(v, i, m) {
            if ((i && buf_puts(b, ",")) || pg_spelling(b, m))
                return -1;
        }
        return buf_puts(b, "]");
    case JSON_REAL: {
        double x = json_real_value(v);
        if (x == trunc(x) && fabs(x) >= 1e15)
            return buf_printf(b, "%.0f", x);
        return buf_printf(b, "%.17g", x);
    }
    default: {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        int rc = !t || buf_puts(b, t);
        free(t);
        return rc ? -1 : 0;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    err e = ERR_INIT, e2 = ERR_INIT;
    json_t *body = jsonx_parse((const char *)data, size, &e2);
    json_t *v = jsonx_parse_stored((const char *)data, size, &e);
    if (body && !v)
        fuzzlib_fail("a valid request body is refused as stored JSON: %s", e.message);
    if (body)
        fuzzlib_expect_equal(v, body, "stored and request readings");
    if (!v) {
        if (e.code != ERR_INTERNAL || !e.message[0])
            fuzzlib_fail("a refusal without its error");
        fuzzlib_check_err(&e, ERR_INTERNAL, "jsonx_parse_stored");
        goto done;
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        fuzzlib_fail("json_dumps failed");
    json_t *again = jsonx_parse_stored(text, strlen(text), &e);
    if (!again)
        fuzzlib_fail("a dumped value is refused: %s", e.message);
    fuzzlib_expect_equal(again, v, "dump and re-read");
    json_decref(again);
    free(text);

    buf pg;
    buf_init(&pg, (size_t)64 << 20);
    if (pg_spelling(&pg, v))
        fuzzlib_fail("cannot write the PostgreSQL spelling");
    json_t *back = jsonx_parse_stored(pg.data, pg.len, &e);
    if (!back)
        fuzzlib_fail("the PostgreSQL spelling is refused: %s: %.200s", e.message, pg.data);
    if (!jsonx_equal(back, v))
        fuzzlib_fail("the PostgreSQL spelling reads back another value: %.200s", pg.data);
    json_decref(back);
    buf_free(&pg);
done:
    json_decref(v);
    json_decref(body);
    err_clear(&e);
    err_clear(&e2);
    return 0;
}
