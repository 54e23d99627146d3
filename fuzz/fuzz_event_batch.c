/*
 * fuzz_event_batch.c - libFuzzer target for batch appends (POST /v1/events
 * {"events": [...]}, services/event-store/es_event.c): the bytes are the
 * JSON array of events, so that every mutation lands inside a batch.
 *
 * Checks, besides what a refused body must be (a 400 that renders): an
 * accepted batch holds as many events as the array, and the versions it
 * gives each stream are consecutive and start at 1 or later, as a plain
 * re-implementation of the rule counts them (es_event_check_consecutive
 * must agree with it both ways: what it refuses breaks the rule, and what
 * breaks the rule is refused).
 */
#include <stdlib.h>
#include <string.h>

#include "es_event.h"
#include "fuzzlib.h"

/* The rule of SPEC §3 for one batch, the slow obvious way: for each
 * stream, the events that give a version give (first version) + (their
 * place among the stream's events), and that first version is >= 1. */
static bool versions_ok(const json_t *list)
{
    size_t n = json_array_size(list);
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(
            json_object_get(json_object_get(json_array_get(list, i), "originator"), "id"));
        bool have_base = false;
        int64_t base = 0, k = 0;
        for (size_t j = 0; j < n; j++) {
            const json_t *o = json_object_get(json_array_get(list, j), "originator");
            if (strcmp(json_string_value(json_object_get(o, "id")), id) != 0)
                continue;
            const json_t *v = json_object_get(o, "version");
            if (json_is_integer(v)) {
                int64_t b = json_integer_value(v) - k;
                if (b < 1 || (have_base && b != base))
                    return false;
                base = b;
                have_base = true;
            }
            k++;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    json_t *list = fuzzlib_body(data, size);
    if (!list)
        return 0;
    json_t *body = json_pack("{s:O}", "events", list);
    if (!body)
        fuzzlib_fail("json_pack failed");
    err e = ERR_INIT;
    size_t n = 0;
    bool batch = false;
    es_event *evs = es_event_parse_request(body, &n, &batch, &e);
    if (evs) {
        if (!batch || n != json_array_size(list))
            fuzzlib_fail("a batch of %zu parsed as %zu events (batch %d)",
                         json_array_size(list), n, batch);
        if (!versions_ok(list))
            fuzzlib_fail("a batch whose versions are not consecutive was accepted");
        free(evs);
    } else {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "es_event_parse_request");
        /* refused for its versions: then the rule must say so too */
        if (strstr(e.message, "consecutive versions") || strstr(e.message, "versions below 1")) {
            if (versions_ok(list))
                fuzzlib_fail("a batch with consecutive versions was refused: %s", e.message);
        }
    }
    err_clear(&e);
    json_decref(body);
    json_decref(list);
    return 0;
}
