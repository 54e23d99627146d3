/*
 * fuzz_consumer_offset.c - libFuzzer target for the body of PUT
 * /v1/consumers/{id} (services/consumer-store/cs_body.c): any bytes, read
 * as the server reads a body.
 *
 * Checks: a refused body is a 400 whose error body renders and names the
 * field; an accepted one has the integers it says, offset >= 0 and, when
 * given, expected_offset >= 0, exactly as the body holds them.
 */
#include <string.h>

#include "cs_body.h"
#include "fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    json_t *body = fuzzlib_body(data, size);
    if (!body)
        return 0;
    err e = ERR_INIT;
    int64_t offset = -1, expected = -1;
    bool has = false;
    if (cs_body_offsets(body, &offset, &expected, &has, &e)) {
        json_t *o = json_object_get(body, "offset"), *x = json_object_get(body, "expected_offset");
        if (!json_is_integer(o) || json_integer_value(o) != offset || offset < 0)
            fuzzlib_fail("offset %lld accepted from the body", (long long)offset);
        if (has != (x != NULL && !json_is_null(x)) ||
            (has && (!json_is_integer(x) || json_integer_value(x) != expected || expected < 0)))
            fuzzlib_fail("expected_offset %lld (given %d) accepted from the body",
                         (long long)expected, has);
    } else {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "cs_body_offsets");
        if (json_is_object(body) && !strstr(e.message, "offset"))
            fuzzlib_fail("the message names no field: %s", e.message);
    }
    err_clear(&e);
    json_decref(body);
    return 0;
}
