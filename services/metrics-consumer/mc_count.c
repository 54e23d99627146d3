/*
 * mc_count.c - what the metrics consumer does with the log: one increment
 * of eskit_events_total per entry, and of eskit_crud_events_total for the
 * Created/Updated/Deleted events of types registered in the CRUD store.
 *
 * Entries come without their payloads (the consumer reads the log with
 * skip_payload): an event's type is all that is counted, so no payload can
 * make a page too large or unreadable.
 *
 * The consumer loop calls mc_count_batch() before it saves the offset, so
 * every entry is counted at least once: after a crash or a failed save,
 * entries past the stored offset are counted again. Counters live in this
 * process and start from zero at each start, like any Prometheus counter
 * (rate() handles the reset).
 */
#include <string.h>

#include "mc_app.h"
#include "validate.h"

/* Splits "com.acme.User.Created" into entity "com.acme.User" and event
 * "Created" (everything after the last '.'). false when it is no event type
 * or too long. */
static bool mc_split(const char *event_type, char *entity, size_t entity_size,
                     const char **event)
{
    const char *dot = strrchr(event_type, '.');
    if (!dot || dot == event_type || !dot[1])
        return false;
    size_t len = (size_t)(dot - event_type);
    if (len >= entity_size)
        return false;
    memcpy(entity, event_type, len);
    entity[len] = '\0';
    *event = dot + 1;
    return true;
}

static bool mc_is_crud_event(const char *event)
{
    return strcmp(event, "Created") == 0 || strcmp(event, "Updated") == 0 ||
           strcmp(event, "Deleted") == 0;
}

bool mc_count_batch(void *ctx, const json_t *entries, int64_t head_id, err *e)
{
    mc_app *app = ctx;
    size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry) {
        char entity[VALIDATE_TYPE_MAX + 1];
        const char *event = NULL;
        const char *type =
            json_string_value(json_object_get(json_object_get(entry, "event"), "event_type"));
        if (!type || !mc_split(type, entity, sizeof entity, &event))
            continue; /* not an event of SPEC §2: nothing to count it under */
        const char *labels[] = {entity, event};
        metrics_add(app->m_events, labels, 1);
        if (mc_is_crud_event(event) && mc_types_registered(app->types, entity))
            metrics_add(app->m_crud, labels, 1);
    }
    return true;
}

void mc_count_error(void *ctx, consumer_upstream where, const err *e)
{
    mc_app *app = ctx;
    const char *labels[] = {app->name};
    metrics_add(app->m_errors, labels, 1);
}

void mc_count_collect(void *ctx)
{
    mc_app *app = ctx;
    consumer_state st;
    const char *labels[] = {app->name};
    consumer_state_get(app->consumer, &st);
    metrics_set(app->m_offset, labels, (double)(st.offset > 0 ? st.offset : 0));
    metrics_set(app->m_lag, labels, (double)st.lag);
}
