/*
 * fuzz_event_body.c - libFuzzer target for the body of POST /v1/events
 * (services/event-store/es_event.c), single event or batch: any bytes,
 * parsed as the server parses a body, then es_event_parse_request.
 *
 * Checks: a refused body is a 400 whose error body renders; an accepted one
 * gives 1 event (single form) or 1 to ES_BATCH_MAX (batch form), each with
 * a valid originator id and event type, a payload, a version of 0 or more,
 * metadata that is an object or absent and an event id that is a lowercase
 * UUID or absent; and the answer to the append (es_event_render_appended, with made-up
 * log ids and versions) is valid JSON that carries the events back (ids,
 * types, payloads, metadata, event ids).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "es_event.h"
#include "fuzzlib.h"
#include "validate.h"

static void check_answer(const json_t *body, es_event *evs, size_t n, bool batch)
{
    buf out;
    buf_init(&out, (size_t)64 << 20);
    for (size_t i = 0; i < n; i++) {
        evs[i].log_id = (int64_t)i + 1;
        evs[i].version = evs[i].want_version ? evs[i].want_version : (int64_t)i + 1;
    }
    if (es_event_render_appended(&out, evs, n, batch))
        fuzzlib_fail("es_event_render_appended: the buffer is full");
    json_t *ans = fuzzlib_reparse(out.data, out.len, "the append's answer");
    const json_t *list = batch ? json_object_get(ans, "results") : NULL;
    if (batch && json_array_size(list) != n)
        fuzzlib_fail("the answer lists %zu results for %zu events", json_array_size(list), n);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = batch ? json_array_get(list, i) : ans;
        const json_t *ev = json_object_get(r, "event");
        const char *id = json_string_value(json_object_get(json_object_get(ev, "originator"), "id"));
        const char *type = json_string_value(json_object_get(ev, "event_type"));
        if (!id || strcmp(id, evs[i].originator_id) != 0 || !type ||
            strcmp(type, evs[i].event_type) != 0)
            fuzzlib_fail("answer %zu does not carry the event's id and type", i);
        fuzzlib_expect_equal(json_object_get(ev, "payload"), evs[i].payload, "answer payload");
        fuzzlib_expect_equal(json_object_get(ev, "metadata"), evs[i].metadata,
                             "answer metadata");
        const char *eid = json_string_value(json_object_get(ev, "event_id"));
        if (strcmp(eid ? eid : "", evs[i].event_id) != 0)
            fuzzlib_fail("answer %zu does not carry the event id", i);
    }
    (void)body;
    json_decref(ans);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzzlib_init();
    json_t *body = fuzzlib_body(data, size);
    if (!body)
        return 0;
    err e = ERR_INIT;
    size_t n = 0;
    bool batch = false;
    es_event *evs = es_event_parse_request(body, &n, &batch, &e);
    if (!evs) {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "es_event_parse_request");
        err_clear(&e);
        json_decref(body);
        return 0;
    }
    if (e.code != ERR_NONE)
        fuzzlib_fail("es_event_parse_request succeeded with an error set");
    if (batch != (json_object_get(body, "events") != NULL))
        fuzzlib_fail("batch form %d for a body %s events", batch, batch ? "without" : "with");
    if (n < 1 || (!batch && n != 1) || n > ES_BATCH_MAX)
        fuzzlib_fail("%zu events parsed", n);
    for (size_t i = 0; i < n; i++) {
        size_t elen = 0;
        if (!validate_id(evs[i].originator_id) || !validate_event_type(evs[i].event_type, &elen) ||
            elen != evs[i].entity_len || !evs[i].payload || evs[i].want_version < 0 ||
            (evs[i].metadata && !json_is_object(evs[i].metadata)))
            fuzzlib_fail("event %zu passed with an invalid field", i);
        const char *id = evs[i].event_id;
        if (id[0] && (strlen(id) != 36 || strspn(id, "0123456789abcdef-") != 36))
            fuzzlib_fail("event %zu has event_id '%s', not a lowercase UUID", i, id);
    }
    check_answer(body, evs, n, batch);
    free(evs);
    json_decref(body);
    return 0;
}
