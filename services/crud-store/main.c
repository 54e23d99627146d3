/*
 * main.c - eskit-crud-store: a document store with history on top of the
 * event store's HTTP API (SPEC §4).
 *
 * Reads like a script: configuration, logging, the event-store client (kept
 * alive connections), the document cache and the schema registry, metrics,
 * the HTTP server; then wait for SIGTERM/SIGINT and stop in reverse order.
 * It starts whether or not the event store is up: /readyz and /v1 calls
 * answer 503 until it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_app.h"
#include "crud_es.h"
#include "crud_index.h"
#include "crud_sync.h"
#include "crud_types.h"
#include "log.h"
#include "service.h"

static service_common crud_common;
static const char *crud_es_url;
static int64_t crud_es_timeout_ms;
static int64_t crud_cache_entries;
static int64_t crud_cache_bytes;
static const char *crud_db_url;
static const char *crud_read_url;

static const config_var crud_config[] = {
    SERVICE_COMMON_VARS(crud_common, "127.0.0.1:8081"),
    {"ESKIT_DATABASE_URL", CONFIG_STRING, "sqlite:data/crud-store.db",
     "the query index (derived data, rebuilt from the log when lost): postgres://... or "
     "sqlite:PATH; start with --rebuild to rebuild it on purpose",
     0, 0, NULL, &crud_db_url},
    {"ESKIT_DATABASE_READ_URL", CONFIG_STRING, NULL,
     "postgresql://... of hot standbys of ESKIT_DATABASE_URL for the query index's reads "
     "(_find, time travel), e.g. with target_session_attrs=prefer-standby; unset: they use "
     "ESKIT_DATABASE_URL",
     0, 0, NULL, &crud_read_url},
    {"ESKIT_EVENT_STORE_URL", CONFIG_STRING, "http://127.0.0.1:8080",
     "base URL of the event store", 0, 0, NULL, &crud_es_url},
    {"ESKIT_EVENT_STORE_TIMEOUT_MS", CONFIG_INT, "10000",
     "longest call to the event store, in milliseconds", 100, 600000, NULL, &crud_es_timeout_ms},
    {"ESKIT_CACHE_ENTRIES", CONFIG_INT, "10000", "documents kept in the in-process cache", 1,
     10000000, NULL, &crud_cache_entries},
    {"ESKIT_CACHE_BYTES", CONFIG_INT, "67108864", "memory cap of the document cache, in bytes",
     4096, (int64_t)1 << 40, NULL, &crud_cache_bytes},
};

/* /readyz: the event store is ready. */
static bool crud_ready(void *ctx, err *e)
{
    crud_app *app = ctx;
    return crud_es_ready(app->es, e);
}

/* Before each scrape: the cache's size. */
static void crud_collect(void *ctx)
{
    crud_app *app = ctx;
    size_t entries = 0, bytes = 0;
    crud_cache_stats(app->cache, &entries, &bytes);
    metrics_set(app->m_cache_entries, NULL, (double)entries);
    metrics_set(app->m_cache_bytes, NULL, (double)bytes);
    if (app->index)
        metrics_set(app->m_index_log_id, NULL, (double)crud_index_offset(app->index));
}

int main(int argc, char **argv)
{
    crud_app app = {0};
    http_server *server = NULL;
    err e = ERR_INIT;
    int rc = 1;

    service_process_init();
    /* --rebuild is ours; config_load() sees the other arguments */
    bool rebuild = false;
    int nargs = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--rebuild") == 0)
            rebuild = true;
        else
            argv[nargs++] = argv[i];
    }
    argc = nargs;
    int cr = config_load("eskit-crud-store",
                         "The eskit CRUD store: JSON documents with history, kept as events in "
                         "the event store.",
                         crud_config, sizeof crud_config / sizeof crud_config[0], argc, argv);
    if (cr != 0)
        return cr > 0 ? 0 : 2;
    service_log_init("crud-store", &crud_common);
    if (!service_read_url_check(crud_read_url, crud_db_url))
        return 2;

    /* 1. the event store, the cache, the schema registry */
    app.es = http_client_new(crud_es_url, crud_common.api_token, (int)crud_es_timeout_ms);
    if (!app.es) {
        log_error("ESKIT_EVENT_STORE_URL must be http://HOST:PORT or https://HOST:PORT");
        rc = 2;
        goto out;
    }
    app.max_doc = (size_t)crud_common.max_body;
    app.cache = crud_cache_new((size_t)crud_cache_entries, (size_t)crud_cache_bytes);
    app.types = crud_types_new();
    if (!app.cache || !app.types)
        goto out;

    /* 2. metrics */
    app.metrics = metrics_new();
    if (!app.metrics)
        goto out;
    app.m_cache_hits = metrics_counter(app.metrics, "eskit_crud_cache_hits_total",
                                       "Document reads answered from the cache.", NULL);
    app.m_cache_misses = metrics_counter(app.metrics, "eskit_crud_cache_misses_total",
                                         "Document reads that replayed events.", NULL);
    app.m_replayed = metrics_counter(app.metrics, "eskit_crud_replayed_events_total",
                                     "Events applied by replays.", NULL);
    app.m_snapshots = metrics_counter(app.metrics, "eskit_crud_snapshots_written_total",
                                      "Snapshots saved to the event store.", NULL);
    app.m_retries = metrics_counter(app.metrics, "eskit_crud_write_retries_total",
                                    "PATCH and DELETE attempts retried after a lost race.", NULL);
    app.m_cache_entries = metrics_gauge(app.metrics, "eskit_crud_cache_entries",
                                        "Documents in the cache.", NULL);
    app.m_cache_bytes = metrics_gauge(app.metrics, "eskit_crud_cache_bytes",
                                      "Bytes held by the cache.", NULL);
    app.m_sync_rounds = metrics_counter(app.metrics, "eskit_crud_log_catchups_total",
                                        "Log reads that caught the cache up before reads "
                                        "(one serves every read waiting for it).", NULL);
    app.m_sync_skips = metrics_counter(app.metrics, "eskit_crud_log_skips_total",
                                       "Times the cache was too far behind the log and "
                                       "stopped trusting every entry instead of reading it.",
                                       NULL);
    app.m_index_log_id = metrics_gauge(app.metrics, "eskit_crud_index_log_id",
                                       "Log id up to which the query index holds the log, as "
                                       "this replica last saw it.", NULL);
    if (!app.m_cache_hits || !app.m_cache_misses || !app.m_replayed || !app.m_snapshots ||
        !app.m_retries || !app.m_cache_entries || !app.m_cache_bytes || !app.m_sync_rounds ||
        !app.m_sync_skips || !app.m_index_log_id)
        goto out;
    app.sync = crud_sync_new(app.es, app.cache, app.m_sync_rounds, app.m_sync_skips);
    if (!app.sync)
        goto out;
    metrics_on_render(app.metrics, crud_collect, &app);

    /* 3. the query index, which follows the log from now on */
    app.index = crud_index_new(crud_db_url, crud_read_url, app.es, rebuild, app.metrics, &e);
    if (!app.index) {
        log_error("%s", e.message);
        rc = e.code == ERR_INVALID_ARGUMENT ? 2 : 1;
        goto out;
    }

    /* 4. HTTP */
    server = service_http_start("crud-store", &crud_common, crud_routes, crud_nroutes, &app, crud_ready,
                                app.metrics);
    if (!server)
        goto out;
    log_info("listening on %s (event store %s)", crud_common.listen, crud_es_url);

    (void)service_signals_wait();
    rc = 0;

out:
    http_server_stop(server, 10000);
    crud_index_free(app.index);
    crud_sync_free(app.sync);
    metrics_free(app.metrics);
    crud_types_free(app.types);
    crud_cache_free(app.cache);
    http_client_free(app.es);
    err_clear(&e);
    return rc;
}
