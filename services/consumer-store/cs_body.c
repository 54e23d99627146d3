/*
 * cs_body.c - the body of PUT /v1/consumers/{id} (see cs_body.h): the new
 * offset and the optional compare-and-set offset, before anything reaches
 * the store.
 */
#include "cs_body.h"

#include "jsonx.h"

bool cs_body_offsets(const json_t *body, int64_t *offset, int64_t *expected, bool *has_expected,
                     err *e)
{
    *offset = 0;
    *expected = 0;
    *has_expected = false;
    if (!json_is_object(body)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "the body must be {\"offset\": N} or {\"offset\": N, \"expected_offset\": M}");
        return false;
    }
    return jsonx_get_int(body, "offset", "offset", true, 0, INT64_MAX, offset, NULL, e) &&
           jsonx_get_int(body, "expected_offset", "expected_offset", false, 0, INT64_MAX,
                         expected, has_expected, e);
}
