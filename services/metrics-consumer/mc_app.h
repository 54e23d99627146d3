/*
 * mc_app.h - the metrics consumer's process state, in one struct: the
 * metric families it exports, the consumer loop and the CRUD type cache.
 */
#ifndef MC_APP_H
#define MC_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "consumer.h"
#include "err.h"
#include "mc_types.h"
#include "metrics.h"

typedef struct mc_app {
    const char *name; /* the consumer id: the {consumer} label */
    metrics *metrics;
    metrics_family *m_events;  /* eskit_events_total{entity_type,event_type} */
    metrics_family *m_crud;    /* eskit_crud_events_total{entity_type,event_type} */
    metrics_family *m_offset;  /* eskit_consumer_offset{consumer} */
    metrics_family *m_lag;     /* eskit_consumer_lag{consumer} */
    metrics_family *m_errors;  /* eskit_consumer_errors_total{consumer} */
    consumer *consumer;
    mc_types *types;
} mc_app;

/* The consumer's callbacks (mc_count.c); ctx is the mc_app. */
bool mc_count_batch(void *ctx, const json_t *entries, int64_t head_id, err *e);
void mc_count_error(void *ctx, consumer_upstream where, const err *e);
/* Before each scrape: offset and lag from the consumer's state (the lag
 * follows the newest head the consumer learned, also while it is stuck). */
void mc_count_collect(void *ctx);

#endif
