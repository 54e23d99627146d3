/*
 * fuzz_crud_body.c - libFuzzer target for the write requests of
 * /v1/entities (services/crud-store/crud_body.c, crud_key.c) and what the
 * CRUD store then does with their documents. The first byte picks the
 * request (POST, PUT or PATCH) and whether If-Match (0x80) and
 * Idempotency-Key (0x40) are sent; then come two lines, the values of the
 * two headers, then the body, read as the server reads one.
 *
 * Checks: a refused request is a 400 whose error body renders; an accepted
 * POST has an object payload and a valid id or none; an accepted PUT has an
 * object payload and a version >= 1 that agrees with If-Match. The new
 * document (the payload, or a PATCH applied to a current document) goes
 * through what the store does on a write: the merge patch from the current
 * document, applied again, gives the document (less null members when the
 * current one has none), and its stored text reads back equal
 * (crud_doc_json). An Idempotency-Key is accepted exactly when it is an id
 * (SPEC §2); its derived stream and event ids are UUIDs, all different, and
 * the request's fingerprint is the same for a body whose members come in
 * another order, and changes with the method or the body.
 */
#include <stdlib.h>
#include <string.h>

#include "crud_body.h"
#include "crud_key.h"
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

/* A copy of an object with its members in the reverse order. */
static json_t *reversed(const json_t *v)
{
    if (!json_is_object(v))
        return json_deep_copy(v);
    size_t n = json_object_size(v), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    const char *k;
    json_t *m;
    json_object_foreach((json_t *)v, k, m) keys[i++] = k;
    json_t *out = json_object();
    while (i-- > 0)
        json_object_set_new(out, keys[i], reversed(json_object_get(v, keys[i])));
    free(keys);
    return out;
}

static void check_key(const char *header, const char *method, const json_t *body)
{
    crud_key k, again, other;
    err e = ERR_INIT;
    const char *path = "/v1/entities/User/doc-1";
    bool ok = crud_key_init(&k, header, method, path, body, &e);
    if (ok != validate_id(header))
        fuzzlib_fail("crud_key_init('%s') = %d", header, ok);
    if (!ok) {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "Idempotency-Key");
        if (!strstr(e.message, "Idempotency-Key"))
            fuzzlib_fail("the message does not name the header: %s", e.message);
        err_clear(&e);
        return;
    }
    char u[VALIDATE_UUID_LEN];
    const char *ids[] = {k.record_event_id, k.doc_event_id, k.doc_id, k.request,
                         k.stream + strlen("eskit.IdempotencyKey-")};
    if (strncmp(k.stream, "eskit.IdempotencyKey-", 21) != 0 || !validate_id(k.stream))
        fuzzlib_fail("key stream '%s'", k.stream);
    for (size_t i = 0; i < 5; i++) {
        if (!validate_uuid(ids[i], u) || strcmp(u, ids[i]) != 0)
            fuzzlib_fail("derived id %zu '%s' is not a lowercase UUID", i, ids[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(ids[i], ids[j]) == 0)
                fuzzlib_fail("derived ids %zu and %zu are the same", j, i);
    }
    if (k.status != (strcmp(method, "POST") == 0 ? 201 : 200) || strcmp(k.key, header) != 0)
        fuzzlib_fail("crud_key_init: status %d, key '%s'", k.status, k.key);
    json_t *rev = reversed(body);
    if (!crud_key_init(&again, header, method, path, rev, &e) ||
        memcmp(&again, &k, sizeof k) != 0)
        fuzzlib_fail("the same request in another member order is another request");
    json_decref(rev);
    if (!crud_key_init(&other, header, strcmp(method, "PUT") ? "PUT" : "POST", path, body, &e) ||
        strcmp(other.request, k.request) == 0)
        fuzzlib_fail("another method is the same request");
    json_t *more = json_is_object(body) ? json_deep_copy(body) : json_object();
    json_object_set_new(more, "\x01fuzz", json_true());
    if (!crud_key_init(&other, header, method, path, more, &e) ||
        strcmp(other.request, k.request) == 0)
        fuzzlib_fail("another body is the same request");
    json_decref(more);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    if (size < 1)
        return 0;
    unsigned op = data[0] % 3;
    bool with_header = data[0] & 0x80, with_key = data[0] & 0x40;
    const uint8_t *end = data + size, *p = data + 1;
    const uint8_t *nl1 = memchr(p, '\n', (size_t)(end - p));
    const uint8_t *l2 = nl1 ? nl1 + 1 : end;
    const uint8_t *nl2 = memchr(l2, '\n', (size_t)(end - l2));
    char *header = with_header && nl1 ? fuzzlib_cstr(p, (size_t)(nl1 - p)) : NULL;
    char *key = with_key && nl2 ? fuzzlib_cstr(l2, (size_t)(nl2 - l2)) : NULL;
    const uint8_t *body_data = nl2 ? nl2 + 1 : end;
    size_t body_len = (size_t)(end - body_data);
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
    else if (key)
        check_key(key, op == 0 ? "POST" : op == 1 ? "PUT" : "PATCH", body);
done:
    err_clear(&e);
    json_decref(body);
    json_decref(cur);
    free(header);
    free(key);
    return 0;
}
