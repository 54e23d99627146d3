/*
 * test_es_event.c - parsing and validating the body of POST /v1/events
 * (services/event-store/es_event.c, linked with the event store's modules):
 * one event or a batch, every field refused with a message naming it, the
 * reserved name Erased, versions inside a batch that must be consecutive per
 * stream, event ids given twice, and the rendering of appended events.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es_event.h"
#include "timefmt.h"

#define UUID_A "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d"
#define UUID_B "1c8e4d2f-5a3b-4d9f-8c2e-6f7a8b9c0d1e"

/* The parse of `text`; the body stays alive in *body (the events borrow
 * from it). NULL with *e set when refused. */
static es_event *parse(const char *text, json_t **body, size_t *n, bool *batch, err *e)
{
    json_error_t je;
    *body = json_loads(text, JSON_DECODE_ANY, &je);
    cr_assert_not_null(*body, "bad test JSON: %s (%s)", text, je.text);
    *n = 0;
    *batch = false;
    return es_event_parse_request(*body, n, batch, e);
}

/* Asserts that `text` is refused as invalid_argument with a message that
 * holds `needle`. */
static void refused(const char *text, const char *needle)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = parse(text, &body, &n, &batch, &e);
    cr_expect_null(evs, "accepted: %s", text);
    free(evs);
    cr_expect_eq(e.code, ERR_INVALID_ARGUMENT, "%s: code %d", text, e.code);
    cr_expect(strstr(e.message, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", text,
              e.message, needle);
    err_clear(&e);
    json_decref(body);
}

/* Asserts that `text` is accepted; returns the number of events. */
static size_t accepted(const char *text)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = parse(text, &body, &n, &batch, &e);
    cr_expect_not_null(evs, "%s refused: %s", text, e.message);
    free(evs);
    err_clear(&e);
    json_decref(body);
    return n;
}

Test(es_event, one_event_every_field)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = parse("{\"originator\":{\"id\":\"u1\",\"version\":3},"
                          "\"event_type\":\"Shop.Order.Placed\",\"payload\":{\"a\":[1,2]},"
                          "\"metadata\":{\"by\":\"ada\"},\"event_id\":\"" UUID_A "\","
                          "\"occurred_on\":\"2026-11-22T14:33:00.123Z\"}",
                          &body, &n, &batch, &e);
    cr_assert_not_null(evs, "%s", e.message);
    cr_expect_eq(n, 1);
    cr_expect_not(batch);
    cr_expect_str_eq(evs[0].originator_id, "u1");
    cr_expect_eq(evs[0].want_version, 3);
    cr_expect_str_eq(evs[0].event_type, "Shop.Order.Placed");
    /* the entity type is everything before the last '.' */
    cr_expect_eq(evs[0].entity_len, strlen("Shop.Order"));
    cr_expect(json_equal(evs[0].payload, json_object_get(body, "payload")));
    cr_expect(json_equal(evs[0].metadata, json_object_get(body, "metadata")));
    cr_expect_str_eq(evs[0].event_id, UUID_A);
    int64_t want = 0;
    cr_assert(timefmt_parse("2026-11-22T14:33:00.123Z", &want));
    cr_expect_eq(evs[0].occurred_on, want);
    cr_expect_eq(evs[0].version, 0);
    cr_expect_eq(evs[0].log_id, 0);
    cr_expect_null(evs[0].same_as);
    free(evs);
    json_decref(body);
}

Test(es_event, optional_fields_absent_or_null)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    int64_t before = timefmt_now_ms();
    es_event *evs = parse("{\"originator\":{\"id\":\"u1\",\"version\":null},"
                          "\"event_type\":\"User.Created\",\"payload\":null,"
                          "\"metadata\":null,\"event_id\":null,\"occurred_on\":null}",
                          &body, &n, &batch, &e);
    int64_t after = timefmt_now_ms();
    cr_assert_not_null(evs, "%s", e.message);
    cr_expect_eq(evs[0].want_version, 0); /* the next version */
    cr_expect_null(evs[0].metadata);
    cr_expect_str_eq(evs[0].event_id, "");
    /* a payload may be any JSON value, null included */
    cr_expect(json_is_null(evs[0].payload));
    /* occurred_on defaults to the time of the request */
    cr_expect(evs[0].occurred_on >= before && evs[0].occurred_on <= after);
    free(evs);
    json_decref(body);
}

Test(es_event, payload_any_json_value)
{
    const char *payloads[] = {"[]", "\"text\"", "0", "-1.5", "true", "{\"a\":{\"b\":null}}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":%s}",
                 payloads[i]);
        cr_expect_eq(accepted(text), 1);
    }
}

Test(es_event, event_id_is_lowercased)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = parse("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                          "\"payload\":{},\"event_id\":\"0B7D3C1E-4F2A-4C8E-9B1D-5E6F7A8B9C0D\"}",
                          &body, &n, &batch, &e);
    cr_assert_not_null(evs, "%s", e.message);
    cr_expect_str_eq(evs[0].event_id, UUID_A);
    free(evs);
    json_decref(body);
}

Test(es_event, body_must_be_an_object)
{
    refused("[]", "the body must be a JSON object");
    refused("\"x\"", "the body must be a JSON object");
    refused("null", "the body must be a JSON object");
    refused("7", "the body must be a JSON object");
}

Test(es_event, originator_refused)
{
    refused("{\"event_type\":\"U.C\",\"payload\":{}}", "originator is required");
    refused("{\"originator\":null,\"event_type\":\"U.C\",\"payload\":{}}",
            "originator is required");
    refused("{\"originator\":\"u1\",\"event_type\":\"U.C\",\"payload\":{}}",
            "originator must be an object");
    refused("{\"originator\":{},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.id is required");
    refused("{\"originator\":{\"id\":7},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.id must be a string");
    refused("{\"originator\":{\"id\":\"\"},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.id must be 1 to 128 characters");
    refused("{\"originator\":{\"id\":\"a b\"},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.id must be 1 to 128 characters");
    refused("{\"originator\":{\"id\":\"a/b\"},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.id must be 1 to 128 characters");
    /* 128 characters pass, 129 do not */
    char id[130], text[400];
    memset(id, 'x', 129);
    id[129] = '\0';
    snprintf(text, sizeof text,
             "{\"originator\":{\"id\":\"%s\"},\"event_type\":\"U.C\",\"payload\":{}}", id);
    refused(text, "originator.id must be 1 to 128 characters");
    id[128] = '\0';
    snprintf(text, sizeof text,
             "{\"originator\":{\"id\":\"%s\"},\"event_type\":\"U.C\",\"payload\":{}}", id);
    cr_expect_eq(accepted(text), 1);
    cr_expect_eq(accepted("{\"originator\":{\"id\":\"A-z_0.9:x@y\"},\"event_type\":\"U.C\","
                          "\"payload\":{}}"),
                 1);
}

Test(es_event, version_refused)
{
    refused("{\"originator\":{\"id\":\"u1\",\"version\":0},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.version must be at least 1");
    refused("{\"originator\":{\"id\":\"u1\",\"version\":-3},\"event_type\":\"U.C\",\"payload\":{}}",
            "originator.version must be at least 1");
    refused("{\"originator\":{\"id\":\"u1\",\"version\":\"2\"},\"event_type\":\"U.C\","
            "\"payload\":{}}",
            "originator.version must be an integer");
    refused("{\"originator\":{\"id\":\"u1\",\"version\":1.5},\"event_type\":\"U.C\","
            "\"payload\":{}}",
            "originator.version must be an integer");
    refused("{\"originator\":{\"id\":\"u1\",\"version\":true},\"event_type\":\"U.C\","
            "\"payload\":{}}",
            "originator.version must be an integer");
}

Test(es_event, event_type_refused)
{
    const char *bad[] = {"\"User\"", "\"User.\"", "\".Created\"", "\"User..Created\"",
                         "\"User.Cre ated\"", "\"User.Créé\"", "\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"originator\":{\"id\":\"u1\"},\"event_type\":%s,\"payload\":{}}", bad[i]);
        refused(text, "event_type must be an entity type and an event name joined by '.'");
    }
    refused("{\"originator\":{\"id\":\"u1\"},\"payload\":{}}", "event_type is required");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":[\"U.C\"],\"payload\":{}}",
            "event_type must be a string");
    /* 200 characters pass, 201 do not */
    char et[202], text[400];
    memset(et, 'T', 201);
    memcpy(et + 197, ".Cr", 3);
    et[201] = '\0';
    snprintf(text, sizeof text,
             "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"%s\",\"payload\":{}}", et);
    refused(text, "at most 200 characters");
    memcpy(et + 196, ".Cr", 3);
    et[200] = '\0';
    snprintf(text, sizeof text,
             "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"%s\",\"payload\":{}}", et);
    cr_expect_eq(accepted(text), 1);
}

Test(es_event, erased_is_reserved)
{
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Erased\",\"payload\":{}}",
            "event_type: the event name Erased is reserved");
    refused("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{}},"
            "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"Shop.Order.Erased\",\"payload\":{}}]}",
            "events[1].event_type: the event name Erased is reserved");
    /* only the event name is reserved, and only exactly */
    cr_expect_eq(accepted("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"Erased.Created\","
                          "\"payload\":{}}"),
                 1);
    cr_expect_eq(accepted("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.ErasedAll\","
                          "\"payload\":{}}"),
                 1);
    cr_expect_eq(accepted("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.erased\","
                          "\"payload\":{}}"),
                 1);
}

Test(es_event, other_fields_refused)
{
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\"}", "payload is required");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"event_id\":\"not-a-uuid\"}",
            "event_id must be a UUID in canonical text form");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"event_id\":\"0b7d3c1e4f2a4c8e9b1d5e6f7a8b9c0d\"}",
            "event_id must be a UUID");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"event_id\":\"{" UUID_A "}\"}",
            "event_id must be a UUID");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"event_id\":12}",
            "event_id must be a string");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"metadata\":[1]}",
            "metadata must be an object");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"metadata\":\"m\"}",
            "metadata must be an object");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"occurred_on\":\"yesterday\"}",
            "occurred_on must be an RFC 3339 timestamp");
    refused("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":{},"
            "\"occurred_on\":1700000000000}",
            "occurred_on must be a string");
}

Test(es_event, batch_shape_refused)
{
    refused("{\"events\":{}}", "events must be an array");
    refused("{\"events\":\"x\"}", "events must be an array");
    refused("{\"events\":[]}", "events must hold 1 to 1000 events, got 0");
    refused("{\"events\":[7]}", "events[0] must be a JSON object");
    refused("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":1},"
            "null]}",
            "events[1] must be a JSON object");
    /* field names carry the index of the event */
    refused("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":1},"
            "{\"originator\":{\"id\":\"\"},\"event_type\":\"U.C\",\"payload\":1}]}",
            "events[1].originator.id must be");
    refused("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":1},"
            "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\"}]}",
            "events[1].payload is required");
}

/* {"events": [n events of stream u1]}, as a new string. */
static char *batch_of(size_t n)
{
    buf b;
    buf_init(&b, 1 << 20);
    int full = buf_puts(&b, "{\"events\":[");
    for (size_t i = 0; i < n; i++)
        full |= buf_printf(&b, "%s{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                               "\"payload\":0}",
                           i ? "," : "");
    full |= buf_puts(&b, "]}");
    cr_assert_eq(full, 0);
    return buf_take(&b, NULL);
}

Test(es_event, batch_size_limits)
{
    char *s = batch_of(ES_BATCH_MAX);
    cr_expect_eq(accepted(s), ES_BATCH_MAX);
    free(s);
    s = batch_of(ES_BATCH_MAX + 1);
    refused(s, "events must hold 1 to 1000 events, got 1001");
    free(s);
}

Test(es_event, batch_form_is_kept)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = parse("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                          "\"payload\":1}]}",
                          &body, &n, &batch, &e);
    cr_assert_not_null(evs, "%s", e.message);
    cr_expect_eq(n, 1);
    cr_expect(batch); /* a batch of one is still a batch */
    free(evs);
    json_decref(body);
}

/* A batch of events of the streams and versions in `spec`: "a1 b0 a2"
 * means stream a at version 1, b without a version, a at version 2. */
static void batch_versions(const char *spec, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "{\"events\":[");
    for (const char *p = spec; *p;) {
        char stream = *p++;
        long v = strtol(p, (char **)&p, 10);
        while (*p == ' ')
            p++;
        if (v)
            used += (size_t)snprintf(out + used, len - used,
                                     "%s{\"originator\":{\"id\":\"%c\",\"version\":%ld},"
                                     "\"event_type\":\"U.C\",\"payload\":0}",
                                     out[used - 1] == '[' ? "" : ",", stream, v);
        else
            used += (size_t)snprintf(out + used, len - used,
                                     "%s{\"originator\":{\"id\":\"%c\"},"
                                     "\"event_type\":\"U.C\",\"payload\":0}",
                                     out[used - 1] == '[' ? "" : ",", stream);
        cr_assert_lt(used, len);
    }
    snprintf(out + used, len - used, "]}");
}

static void versions_ok(const char *spec)
{
    char text[2048];
    batch_versions(spec, text, sizeof text);
    cr_expect_gt(accepted(text), 0, "batch %s", spec);
}

static void versions_refused(const char *spec, const char *needle)
{
    char text[2048];
    batch_versions(spec, text, sizeof text);
    refused(text, needle);
}

Test(es_event, batch_versions_consecutive_per_stream)
{
    versions_ok("a1 a2 a3");
    versions_ok("a5 a6");
    versions_ok("a0 a0 a0");          /* no versions: the next ones */
    versions_ok("a0 a2");             /* the first event is at 1 */
    versions_ok("a0 a0 a3");
    versions_ok("a2 a0 a4");          /* the event in between is at 3 */
    versions_ok("a5 b1 a6 b2 c9");    /* interleaved streams, each consecutive */
    versions_ok("a1 b1");             /* the same version in two streams */
}

Test(es_event, batch_version_gaps_refused)
{
    versions_refused("a1 a3", "events[1].originator.version: events of stream a in a batch "
                              "must have consecutive versions");
    versions_refused("a2 a2", "events[1].originator.version: events of stream a");
    versions_refused("a3 a2", "events[1].originator.version: events of stream a");
    versions_refused("a5 b1 a7", "events[2].originator.version: events of stream a");
    versions_refused("a2 a0 a3", "events[2].originator.version: events of stream a");
    versions_refused("b1 a1 b2 a3", "events[3].originator.version: events of stream a");
}

Test(es_event, batch_versions_below_one_refused)
{
    /* the event before it would need version 0 */
    versions_refused("a0 a1", "events[1].originator.version: the events before it in this "
                              "batch need versions below 1");
    versions_refused("a0 b0 a0 a2", "events[3].originator.version: the events before it");
}

Test(es_event, event_id_twice_refused)
{
    refused("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":1,"
            "\"event_id\":\"" UUID_A "\"},"
            "{\"originator\":{\"id\":\"u2\"},\"event_type\":\"U.C\",\"payload\":2,"
            "\"event_id\":\"" UUID_B "\"},"
            "{\"originator\":{\"id\":\"u3\"},\"event_type\":\"U.C\",\"payload\":3,"
            "\"event_id\":\"" UUID_A "\"}]}",
            "events[2].event_id: event id " UUID_A " is given twice in this request");
    /* the same id in other letters is the same id */
    refused("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":1,"
            "\"event_id\":\"" UUID_A "\"},"
            "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\",\"payload\":1,"
            "\"event_id\":\"0B7D3C1E-4F2A-4C8E-9B1D-5E6F7A8B9C0D\"}]}",
            "events[1].event_id: event id " UUID_A " is given twice");
    /* events without ids never collide */
    cr_expect_eq(accepted("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                          "\"payload\":1},{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                          "\"payload\":1},{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                          "\"payload\":1,\"event_id\":\"" UUID_A "\"}]}"),
                 3);
}

/* The rendered text of es_event_render_appended, parsed. */
static json_t *render_appended(const es_event *evs, size_t n, bool batch)
{
    buf b;
    buf_init(&b, 1 << 20);
    cr_assert_eq(es_event_render_appended(&b, evs, n, batch), 0);
    json_error_t je;
    json_t *v = json_loadb(b.data, b.len, 0, &je);
    cr_assert_not_null(v, "not JSON: %.*s", (int)b.len, b.data);
    buf_free(&b);
    return v;
}

Test(es_event, render_appended_one_and_batch)
{
    json_t *body;
    size_t n;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = parse("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"U.C\","
                          "\"payload\":{\"x\":1},\"event_id\":\"" UUID_A "\","
                          "\"occurred_on\":\"2026-01-02T03:04:05.006Z\"},"
                          "{\"originator\":{\"id\":\"u2@x\"},\"event_type\":\"U.D\","
                          "\"payload\":[null,\"q\\\"\\n\"],\"metadata\":{\"m\":true},"
                          "\"occurred_on\":\"2026-01-02T03:04:05.006Z\"}]}",
                          &body, &n, &batch, &e);
    cr_assert_not_null(evs, "%s", e.message);
    for (size_t i = 0; i < n; i++) {
        evs[i].version = (int64_t)i + 4;
        evs[i].log_id = (int64_t)i + 100;
        evs[i].recorded_at = evs[i].occurred_on + 1;
    }
    json_t *got = render_appended(evs, n, true);
    json_error_t je;
    json_t *want = json_loads(
        "{\"results\":["
        "{\"log_id\":100,\"event\":{\"event_id\":\"" UUID_A "\","
        "\"originator\":{\"id\":\"u1\",\"version\":4},\"event_type\":\"U.C\","
        "\"payload\":{\"x\":1},\"occurred_on\":\"2026-01-02T03:04:05.006Z\","
        "\"recorded_at\":\"2026-01-02T03:04:05.007Z\"}},"
        "{\"log_id\":101,\"event\":{"
        "\"originator\":{\"id\":\"u2@x\",\"version\":5},\"event_type\":\"U.D\","
        "\"payload\":[null,\"q\\\"\\n\"],\"metadata\":{\"m\":true},"
        "\"occurred_on\":\"2026-01-02T03:04:05.006Z\","
        "\"recorded_at\":\"2026-01-02T03:04:05.007Z\"}}]}",
        0, &je);
    cr_assert_not_null(want, "%s", je.text);
    cr_expect(json_equal(got, want));
    json_decref(got);
    json_decref(want);

    /* one event, not a batch: the result object alone */
    got = render_appended(&evs[1], 1, false);
    cr_expect_eq(json_integer_value(json_object_get(got, "log_id")), 101);
    cr_expect_null(json_object_get(json_object_get(got, "event"), "event_id"));
    cr_expect_null(json_object_get(got, "results"));
    json_decref(got);
    free(evs);
    json_decref(body);
}

Test(es_event, render_stored_view)
{
    buf b;
    buf_init(&b, 1 << 16);
    es_event_view v = {.event_id = NULL,
                       .originator_id = "s1",
                       .version = 9,
                       .event_type = "U.C",
                       .payload_json = NULL, /* skip_payload */
                       .metadata_json = "{\"k\":1}",
                       .occurred_on = 0,
                       .recorded_at = 1000};
    cr_assert_eq(es_event_render(&b, &v), 0);
    json_error_t je;
    json_t *got = json_loadb(b.data, b.len, 0, &je);
    cr_assert_not_null(got, "%.*s", (int)b.len, b.data);
    json_t *want = json_loads("{\"originator\":{\"id\":\"s1\",\"version\":9},\"event_type\":"
                              "\"U.C\",\"metadata\":{\"k\":1},"
                              "\"occurred_on\":\"1970-01-01T00:00:00.000Z\","
                              "\"recorded_at\":\"1970-01-01T00:00:01.000Z\"}",
                              0, &je);
    cr_assert_not_null(want);
    cr_expect(json_equal(got, want), "got %.*s", (int)b.len, b.data);
    json_decref(got);
    json_decref(want);
    buf_free(&b);

    /* a buffer too small for the event is -1 */
    buf_init(&b, 16);
    v.payload_json = "{\"big\":\"0123456789\"}";
    cr_expect_eq(es_event_render(&b, &v), -1);
    buf_free(&b);
}
