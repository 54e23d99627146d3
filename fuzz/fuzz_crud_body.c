/*
 * fuzz_crud_body.c - libFuzzer target for the write requests of
 * /v1/entities (services/crud-store/crud_body.c) and what the CRUD store
 * then does with their documents. The first byte picks the request (POST,
 * PUT or PATCH) and whether an If-Match header is sent; up to the first
 * newline follows the header's value, then the body, read as the server
 * reads one.
 *
 * Checks: a refused request is a 400 whose error body renders; an accepted
 * POST has an object payload and a valid id or none; an accepted PUT has an
 * object payload and a version >= 1 that agrees with If-Match. The new
 * document (the payload, or a PATCH applied to a current document) goes
 * through what the store does on a write: the merge patch from the current
 * document, applied again, gives the document (less null members when the
 * current one has none), and its stored text reads back equal
 * (crud_doc_json).
 */
#include <stdlib.h>
#include <string.h>

#include "crud_body.h"
#include "crud_replay.h"
#include "fuzzlib.h"
#include "jsonx.h"
#include "mpatch.h"
#include "validate.h"

static const char current_text[] =
    "{\"name\":\"Ada\",\"age\":36,\"tags\":[\"a\",null],\"address\":{\"city\":\"London\","
    "\"zip\":\"N1\"},\"big\":1e20}";

/* The store's write: the patch from cur to next (an Updated event), what a
 * replay rebuilds from it, and the text it stores for it. */
static void check_write(const json_t *cur, const json_t *next)
{
    json_t *patch = mpatch_create(cur, next);
    json_t *after = patch ? mpatch_apply(cur, patch) : NULL;
    if (!after)
        fuzzlib_fail("mpatch returned NULL");
    if (!json_is_object(after))
        fuzzlib_fail("a write of an object rebuilt a non-object");
    /* cur holds no null member: the rebuilt document is next less its nulls */
    json_t *want = fuzzlib_strip_nulls(next);
    fuzzlib_expect_equal(after, want, "the rebuilt document");
    char *text = jsonx_dump(after);
    if (!text)
        fuzzlib_fail("jsonx_dump failed");
    crud_doc d = {.version = 2, .exists = true, .text = text, .len = strlen(text)};
    err e = ERR_INIT;
    json_t *back = crud_doc_json(&d, &e);
    if (!back)
        fuzzlib_fail("the stored text does not read back: %s", e.message);
    fuzzlib_expect_equal(back, after, "the stored document read back");
    json_decref(back);
    crud_doc_free(&d);
    json_decref(want);
    json_decref(after);
    json_decref(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    if (size < 1)
        return 0;
    unsigned op = data[0] % 3;
    bool with_header = data[0] & 0x80;
    const uint8_t *nl = memchr(data + 1, '\n', size - 1);
    size_t hlen = nl ? (size_t)(nl - (data + 1)) : 0;
    char *header = with_header ? fuzzlib_cstr(data + 1, hlen) : NULL;
    const uint8_t *body_data = nl ? nl + 1 : data + 1;
    size_t body_len = size - (size_t)(body_data - data);
    json_t *cur = json_loads(current_text, 0, NULL);
    err e = ERR_INIT;
    bool ok = false;

    json_t *body = fuzzlib_body(body_data, body_len);
    if (!body)
        goto done;
    if (op == 0) { /* POST /v1/entities/T */
        json_t *payload = NULL;
        const char *id = NULL;
        ok = crud_body_create(body, &payload, &id, &e);
        if (ok && (!json_is_object(payload) || (id && !validate_id(id))))
            fuzzlib_fail("crud_body_create accepted an invalid request");
        if (ok)
            check_write(NULL, payload);
    } else if (op == 1) { /* PUT /v1/entities/T/doc-1 */
        json_t *payload = NULL;
        int64_t version = 0, hv = 0;
        bool hp = false;
        ok = crud_body_put(body, "doc-1", header, &payload, &version, &e);
        if (ok && (!json_is_object(payload) || version < 1))
            fuzzlib_fail("crud_body_put accepted an invalid request");
        if (ok) {
            if (header && crud_body_if_match(header, &hv, &hp, &e) && hp && hv != version)
                fuzzlib_fail("crud_body_put: version %lld, If-Match %lld", (long long)version,
                             (long long)hv);
            err_clear(&e);
            check_write(cur, payload);
        }
    } else { /* PATCH /v1/entities/T/doc-1: any JSON is a merge patch */
        int64_t hv = 0;
        bool hp = false;
        ok = crud_body_if_match(header, &hv, &hp, &e);
        if (ok && hp && hv < 1)
            fuzzlib_fail("If-Match accepted version %lld", (long long)hv);
        if (ok) {
            json_t *next = mpatch_apply(cur, body);
            if (!next)
                fuzzlib_fail("mpatch_apply returned NULL");
            if (json_is_object(next))
                check_write(cur, next);
            json_decref(next);
        }
    }
    if (!ok)
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "a CRUD write request");
done:
    err_clear(&e);
    json_decref(body);
    json_decref(cur);
    free(header);
    return 0;
}
