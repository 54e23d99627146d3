/*
 * main.c - eskit-metrics-consumer: reads the application log from its
 * stored offset and exports Prometheus counters of the events (SPEC §6).
 *
 * Reads like a script: configuration, logging, the metric families, the
 * CRUD type cache, the consumer loop (in its own thread), the HTTP server
 * (only /healthz, /readyz and /metrics: nothing under /v1); then wait for
 * SIGTERM/SIGINT and stop in reverse order.
 */
#include <stdio.h>
#include <stdlib.h>

#include "consumer.h"
#include "http_server.h"
#include "log.h"
#include "mc_app.h"
#include "service.h"

static service_common mc_common;
static const char *mc_event_store_url;
static const char *mc_crud_store_url;
static const char *mc_consumer_store_url;
static const char *mc_consumer_name;
static int64_t mc_batch_size;
static int64_t mc_poll_wait;
static int64_t mc_stuck_seconds;

static const config_var mc_config[] = {
    SERVICE_COMMON_VARS(mc_common, "127.0.0.1:8083"),
    {"ESKIT_EVENT_STORE_URL", CONFIG_STRING, "http://127.0.0.1:8080", "the event store", 0, 0,
     NULL, &mc_event_store_url},
    {"ESKIT_CRUD_STORE_URL", CONFIG_STRING, "http://127.0.0.1:8081",
     "the CRUD store (which entity types are registered)", 0, 0, NULL, &mc_crud_store_url},
    {"ESKIT_CONSUMER_STORE_URL", CONFIG_STRING, "http://127.0.0.1:8082",
     "the consumer store (where the offset is saved)", 0, 0, NULL, &mc_consumer_store_url},
    {"ESKIT_CONSUMER_NAME", CONFIG_STRING, "metrics-consumer",
     "this consumer's id in the consumer store", 0, 0, NULL, &mc_consumer_name},
    {"ESKIT_CONSUMER_BATCH_SIZE", CONFIG_INT, "500", "log entries read per request", 1, 1000,
     NULL, &mc_batch_size},
    {"ESKIT_CONSUMER_POLL_WAIT", CONFIG_INT, "2",
     "seconds a log read waits for new entries (also the longest stop delay)", 1, 60, NULL,
     &mc_poll_wait},
    {"ESKIT_CONSUMER_STUCK_SECONDS", CONFIG_INT, "30",
     "seconds behind the log head without progress after which /readyz answers 503", 1,
     86400, NULL, &mc_stuck_seconds},
};

/* /readyz: the event store and the consumer store answer, and the consumer
 * is not stuck (behind without progress for ESKIT_CONSUMER_STUCK_SECONDS). */
static bool mc_ready(void *ctx, err *e)
{
    mc_app *app = ctx;
    return consumer_ready(app->consumer, e);
}

/* Declares the families; the consumer's own series start at 0. */
static bool mc_metrics_init(mc_app *app)
{
    app->metrics = metrics_new();
    if (!app->metrics)
        return false;
    app->m_events = metrics_counter(app->metrics, "eskit_events_total",
                                    "Application log entries counted, by entity type and event "
                                    "name (at least once).",
                                    "entity_type,event_type");
    app->m_crud = metrics_counter(app->metrics, "eskit_crud_events_total",
                                  "Created, Updated and Deleted events of entity types "
                                  "registered in the CRUD store (at least once).",
                                  "entity_type,event_type");
    app->m_offset = metrics_gauge(app->metrics, "eskit_consumer_offset",
                                  "The consumer's stored log offset.", "consumer");
    app->m_lag = metrics_gauge(app->metrics, "eskit_consumer_lag",
                               "The newest log head id the consumer has learned minus its "
                               "offset (learned also while it cannot advance).", "consumer");
    app->m_errors = metrics_counter(app->metrics, "eskit_consumer_errors_total",
                                    "Failed steps of the consumer: calls to the event store or "
                                    "the consumer store, and log pages it could not take.",
                                    "consumer");
    if (!app->m_events || !app->m_crud || !app->m_offset || !app->m_lag || !app->m_errors)
        return false;
    const char *labels[] = {app->name};
    metrics_add(app->m_errors, labels, 0);
    metrics_set(app->m_offset, labels, 0);
    metrics_set(app->m_lag, labels, 0);
    return true;
}

int main(int argc, char **argv)
{
    mc_app app = {0};
    http_server *server = NULL;
    err e = ERR_INIT;
    int rc = 1;

    service_process_init();
    int cr = config_load("eskit-metrics-consumer",
                         "The eskit metrics consumer: reads the application log from its stored "
                         "offset and exports Prometheus counters of the events.",
                         mc_config, sizeof mc_config / sizeof mc_config[0], argc, argv);
    if (cr != 0)
        return cr > 0 ? 0 : 2;
    service_log_init("metrics-consumer", &mc_common);
    app.name = mc_consumer_name;

    /* 1. metrics */
    if (!mc_metrics_init(&app)) {
        log_error("out of memory");
        goto out;
    }

    /* 2. the CRUD type cache and the consumer loop (configured, not started) */
    app.types = mc_types_new(mc_crud_store_url, mc_common.api_token);
    if (!app.types) {
        log_error("ESKIT_CRUD_STORE_URL must be http://... or https://...");
        rc = 2;
        goto out;
    }
    consumer_config cc = {
        .event_store_url = mc_event_store_url,
        .consumer_store_url = mc_consumer_store_url,
        .token = mc_common.api_token,
        .name = mc_consumer_name,
        .batch_size = (int)mc_batch_size,
        .wait_s = (int)mc_poll_wait,
        .skip_payload = true, /* only event types are counted */
        .stuck_after_s = (int)mc_stuck_seconds,
        .on_batch = mc_count_batch,
        .on_error = mc_count_error,
        .ctx = &app,
    };
    app.consumer = consumer_new(&cc, &e);
    if (!app.consumer) {
        log_error("%s", e.message);
        rc = 2;
        goto out;
    }
    metrics_on_render(app.metrics, mc_count_collect, &app);

    /* 3. HTTP: only the built-in endpoints */
    server = service_http_start("metrics-consumer", &mc_common, NULL, 0, &app, mc_ready,
                                app.metrics);
    if (!server)
        goto out;

    /* 4. the loop */
    if (!consumer_start(app.consumer, &e)) {
        log_error("%s", e.message);
        goto out;
    }
    log_info("listening on %s; consumer %s reads %s, saves to %s", mc_common.listen,
             mc_consumer_name, mc_event_store_url, mc_consumer_store_url);

    (void)service_signals_wait();
    rc = 0;

out:
    /* The loop first (it ends within one poll wait), then the server; the
     * metrics it writes to are freed last. */
    consumer_stop(app.consumer);
    http_server_stop(server, 10000);
    consumer_free(app.consumer);
    mc_types_free(app.types);
    metrics_free(app.metrics);
    err_clear(&e);
    return rc;
}
