/*
 * es_event.c - validation of append requests and rendering of events.
 *
 * Validation happens here, before anything reaches the committer, so that a
 * bad request is refused with a message naming the field ("events[3].
 * originator.version") and nothing is written.
 */
#include "es_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "jsonw.h"
#include "timefmt.h"
#include "validate.h"

/* Parses one event object; `where` prefixes field names ("" or "events[3]."). */
static bool es_event_parse_one(const json_t *obj, const char *where, int64_t now,
                               es_event *ev, err *e)
{
    char f[64];
    json_t *orig = NULL;
    const char *s = NULL;
    bool present = false;

    if (!json_is_object(obj)) {
        if (*where) /* "events[3]" without its trailing '.' */
            err_set(e, ERR_INVALID_ARGUMENT, "%.*s must be a JSON object",
                    (int)strlen(where) - 1, where);
        else
            err_set(e, ERR_INVALID_ARGUMENT, "the event must be a JSON object");
        return false;
    }
    memset(ev, 0, sizeof *ev);
    snprintf(f, sizeof f, "%soriginator", where);
    if (!jsonx_get_object(obj, "originator", f, true, &orig, e))
        return false;
    snprintf(f, sizeof f, "%soriginator.id", where);
    if (!jsonx_get_string(orig, "id", f, true, &ev->originator_id, e))
        return false;
    if (!validate_id(ev->originator_id)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -", f);
        return false;
    }
    snprintf(f, sizeof f, "%soriginator.version", where);
    if (!jsonx_get_int(orig, "version", f, false, 1, INT64_MAX, &ev->want_version, &present,
                       e))
        return false;
    if (!present)
        ev->want_version = 0;
    snprintf(f, sizeof f, "%sevent_type", where);
    if (!jsonx_get_string(obj, "event_type", f, true, &ev->event_type, e))
        return false;
    if (!validate_event_type(ev->event_type, &ev->entity_len)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s must be an entity type and an event name joined by '.', of A-Z a-z 0-9 _ -, "
                "at most 200 characters (e.g. User.Created)",
                f);
        return false;
    }
    if (strcmp(ev->event_type + ev->entity_len + 1, "Erased") == 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s: the event name Erased is reserved for the erasure of a stream", f);
        return false;
    }
    snprintf(f, sizeof f, "%sevent_id", where);
    if (!jsonx_get_string(obj, "event_id", f, false, &s, e))
        return false;
    if (s && !validate_uuid(s, ev->event_id)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s must be a UUID in canonical text form, such as "
                "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d",
                f);
        return false;
    }
    s = NULL;
    snprintf(f, sizeof f, "%smetadata", where);
    if (!jsonx_get_object(obj, "metadata", f, false, &ev->metadata, e))
        return false;
    ev->payload = json_object_get(obj, "payload");
    if (!ev->payload) {
        err_set(e, ERR_INVALID_ARGUMENT, "%spayload is required", where);
        return false;
    }
    snprintf(f, sizeof f, "%soccurred_on", where);
    if (!jsonx_get_string(obj, "occurred_on", f, false, &s, e))
        return false;
    if (s) {
        if (!timefmt_parse(s, &ev->occurred_on)) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "%s must be an RFC 3339 timestamp such as 2026-11-22T14:33:00.123Z", f);
            return false;
        }
    } else {
        ev->occurred_on = now;
    }
    return true;
}

/* Inside a batch, the given versions of one stream must be consecutive: for
 * the k-th event of a stream (k from 0), version - k is the same for all. */
static bool es_event_check_consecutive(const es_event *evs, size_t n, err *e)
{
    for (size_t i = 0; i < n; i++) {
        if (!evs[i].want_version)
            continue;
        int64_t k = 0;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(evs[j].originator_id, evs[i].originator_id) != 0)
                continue;
            if (j == i)
                break;
            k++;
        }
        /* compare with the first earlier event of the stream that has a version */
        int64_t kj = 0;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(evs[j].originator_id, evs[i].originator_id) != 0)
                continue;
            if (evs[j].want_version && evs[j].want_version - kj != evs[i].want_version - k) {
                err_set(e, ERR_INVALID_ARGUMENT,
                        "events[%zu].originator.version: events of stream %s in a batch must "
                        "have consecutive versions",
                        i, evs[i].originator_id);
                return false;
            }
            kj++;
        }
        if (evs[i].want_version - k < 1) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "events[%zu].originator.version: the events before it in this batch need "
                    "versions below 1",
                    i);
            return false;
        }
    }
    return true;
}

/* No event id twice in one request (a quadratic scan: at most 1,000 events,
 * and only over the events that carry an id). */
static bool es_event_check_ids(const es_event *evs, size_t n, err *e)
{
    for (size_t i = 0; i < n; i++) {
        if (!evs[i].event_id[0])
            continue;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(evs[j].event_id, evs[i].event_id) == 0) {
                err_set(e, ERR_INVALID_ARGUMENT,
                        "events[%zu].event_id: event id %s is given twice in this request", i,
                        evs[i].event_id);
                return false;
            }
        }
    }
    return true;
}

es_event *es_event_parse_request(const json_t *body, size_t *n, bool *batch, err *e)
{
    es_event *evs = NULL;
    int64_t now = timefmt_now_ms();
    if (!json_is_object(body)) {
        err_set(e, ERR_INVALID_ARGUMENT, "the body must be a JSON object: an event or {\"events\": [...]}");
        return NULL;
    }
    const json_t *list = json_object_get(body, "events");
    if (!list) {
        evs = calloc(1, sizeof *evs);
        if (!evs) {
            err_set(e, ERR_INTERNAL, "out of memory");
            return NULL;
        }
        if (!es_event_parse_one(body, "", now, evs, e))
            goto fail;
        *n = 1;
        *batch = false;
        return evs;
    }
    if (!json_is_array(list)) {
        err_set(e, ERR_INVALID_ARGUMENT, "events must be an array");
        return NULL;
    }
    size_t count = json_array_size(list);
    if (count < 1 || count > ES_BATCH_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT, "events must hold 1 to %d events, got %zu",
                ES_BATCH_MAX, count);
        return NULL;
    }
    evs = calloc(count, sizeof *evs);
    if (!evs) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        char where[32];
        snprintf(where, sizeof where, "events[%zu].", i);
        if (!es_event_parse_one(json_array_get(list, i), where, now, &evs[i], e))
            goto fail;
    }
    if (!es_event_check_consecutive(evs, count, e) || !es_event_check_ids(evs, count, e))
        goto fail;
    *n = count;
    *batch = true;
    return evs;
fail:
    free(evs);
    return NULL;
}

/* The event object; payload and metadata as text when their _json is set,
 * else as jansson values (NULL: absent). */
static int es_event_render_any(buf *b, const es_event_view *v, const json_t *payload,
                               const json_t *metadata)
{
    char ts[TIMEFMT_LEN], rts[TIMEFMT_LEN];
    timefmt_format(v->occurred_on, ts);
    timefmt_format(v->recorded_at, rts);
    bool has_payload = v->payload_json || payload;
    bool has_metadata = v->metadata_json || metadata;
    if (buf_puts(b, "{") ||
        (v->event_id && v->event_id[0] && buf_printf(b, "\"event_id\":\"%s\",", v->event_id)) ||
        buf_puts(b, "\"originator\":{\"id\":") || jsonw_string(b, v->originator_id) ||
        buf_printf(b, ",\"version\":%lld},\"event_type\":", (long long)v->version) ||
        jsonw_string(b, v->event_type) ||
        (has_payload &&
         (buf_puts(b, ",\"payload\":") ||
          (v->payload_json ? buf_puts(b, v->payload_json) : jsonw_value(b, payload)))) ||
        (has_metadata &&
         (buf_puts(b, ",\"metadata\":") ||
          (v->metadata_json ? buf_puts(b, v->metadata_json) : jsonw_value(b, metadata)))) ||
        buf_printf(b, ",\"occurred_on\":\"%s\",\"recorded_at\":\"%s\"}", ts, rts))
        return -1;
    return 0;
}

int es_event_render(buf *b, const es_event_view *v)
{
    return es_event_render_any(b, v, NULL, NULL);
}

int es_event_render_appended(buf *b, const es_event *evs, size_t n, bool batch)
{
    if (batch && buf_puts(b, "{\"results\":["))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const es_event *ev = &evs[i];
        if (buf_printf(b, "%s{\"log_id\":%lld,\"event\":", i ? "," : "",
                       (long long)ev->log_id) ||
            es_event_render_any(b,
                                &(es_event_view){.event_id = ev->event_id,
                                                 .originator_id = ev->originator_id,
                                                 .version = ev->version,
                                                 .event_type = ev->event_type,
                                                 .occurred_on = ev->occurred_on,
                                                 .recorded_at = ev->recorded_at},
                                ev->payload, ev->metadata) ||
            buf_puts(b, "}"))
            return -1;
    }
    return batch ? buf_puts(b, "]}") : 0;
}
