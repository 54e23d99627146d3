/*
 * fuzz_selector.c - libFuzzer target for the query of GET /v1/logs and
 * /v1/logs/stream: the log selector (validate_selector, common/
 * validate.c) and pipeline_id (an entity type). The bytes are the decoded
 * query value, cut at the first NUL.
 *
 * Checks: an accepted selector is "*" or a valid entity type or "*", a dot,
 * and a valid event name or "*", and its two parts put back together give
 * the input again; whatever is refused, the 400 the handler answers (which
 * quotes the value) renders as a SPEC §2 error body.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "validate.h"

static bool event_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzzlib_cstr(data, size);
    log_selector sel;
    err e = ERR_INIT;
    memset(&sel, 0x55, sizeof sel);
    if (validate_selector(s, &sel)) {
        if (strnlen(sel.entity, sizeof sel.entity) == sizeof sel.entity ||
            strnlen(sel.event, sizeof sel.event) == sizeof sel.event)
            fuzzlib_fail("validate_selector('%s') left a part unterminated", s);
        if ((sel.entity[0] && !validate_entity_type(sel.entity)) ||
            (sel.event[0] && !event_name(sel.event)))
            fuzzlib_fail("validate_selector('%s') gave '%s' . '%s'", s, sel.entity, sel.event);
        char back[2 * VALIDATE_TYPE_MAX + 4];
        snprintf(back, sizeof back, "%s.%s", sel.entity[0] ? sel.entity : "*",
                 sel.event[0] ? sel.event : "*");
        if (strcmp(back, s) != 0 && !(strcmp(s, "*") == 0 && strcmp(back, "*.*") == 0))
            fuzzlib_fail("validate_selector('%s') gave '%s'", s, back);
    } else {
        /* es_http_logs.c's answer */
        err_set(&e, ERR_INVALID_ARGUMENT,
                "selector must be *, or ENTITY.EVENT where either side may be * "
                "(User.*, *.Created, com.acme.User.Updated), got '%.100s'",
                s);
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "selector");
    }
    if (!validate_entity_type(s)) {
        err_set(&e, ERR_INVALID_ARGUMENT, "pipeline_id must be an entity type, got '%.100s'", s);
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "pipeline_id");
    }
    err_clear(&e);
    free(s);
    return 0;
}
