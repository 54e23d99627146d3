/*
 * fuzz_crud_spec.c - libFuzzer target for entity type specs, the bodies of
 * POST /v1/types and PUT /v1/types/{T} ({"spec": {...}}), through
 * crud_types_parse_spec (services/crud-store/crud_types.c), which checks
 * the spec and compiles its JSON Schema. The first byte says whether the
 * path names a type (PUT /v1/types/Order) or not (POST).
 *
 * Checks: a refused spec is a 400 (or 500 only for memory) whose error body
 * renders; an accepted one is normalised: a valid entity type outside
 * "eskit.", matching the path's, a schema_version >= 1 whenever a schema is
 * given, a json_schema that compiles; and normalising it again changes
 * nothing.
 */
#include <string.h>

#include "crud_types.h"
#include "fuzzlib.h"
#include "jschema.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    if (size < 1)
        return 0;
    const char *path_type = (data[0] & 1) ? "Order" : NULL;
    json_t *body = fuzzlib_body(data + 1, size - 1);
    if (!body)
        return 0;
    /* the handler's part (crud_http_spec): an object with a spec */
    json_t *spec = json_object_get(body, "spec");
    if (!json_is_object(body) || !spec || json_is_null(spec)) {
        json_decref(body);
        return 0;
    }
    err e = ERR_INIT;
    int64_t sv = 0, sv2 = 0;
    json_t *out = crud_types_parse_spec(spec, path_type, &sv, &e);
    if (!out) {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "crud_types_parse_spec");
        err_clear(&e);
        json_decref(body);
        return 0;
    }
    const char *type = json_string_value(json_object_get(out, "entity_type"));
    if (!validate_entity_type(type) || strncmp(type, "eskit.", 6) == 0 ||
        (path_type && strcmp(type, path_type) != 0))
        fuzzlib_fail("an accepted spec has entity_type '%s'", type ? type : "(none)");
    json_t *ss = json_object_get(out, "schema_spec");
    json_t *schema = json_object_get(ss, "json_schema");
    if (schema) {
        if (sv < 1 || json_integer_value(json_object_get(ss, "schema_version")) != sv)
            fuzzlib_fail("a schema with schema_version %lld", (long long)sv);
        jschema *js = jschema_compile(schema, &e);
        if (!js)
            fuzzlib_fail("an accepted json_schema does not compile: %s", e.message);
        jschema_free(js);
    }
    json_t *again = crud_types_parse_spec(out, path_type, &sv2, &e);
    if (!again)
        fuzzlib_fail("a normalised spec is refused: %s", e.message);
    fuzzlib_expect_equal(again, out, "normalising twice");
    if (sv2 != sv)
        fuzzlib_fail("schema_version changed on the second pass");
    json_decref(again);
    json_decref(out);
    json_decref(body);
    err_clear(&e);
    return 0;
}
