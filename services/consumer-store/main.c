/*
 * main.c - eskit-consumer-store: per consumer, the id of the last log entry
 * it has fully processed, with compare-and-set writes (SPEC §5).
 *
 * Reads like a script: configuration, logging, storage (a pool of
 * connections; the schema is migrated by the first one), metrics, the HTTP
 * server; then wait for SIGTERM/SIGINT and stop in reverse order.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cs_app.h"
#include "cs_store.h"
#include "log.h"
#include "service.h"

static service_common cs_common;
static const char *cs_db_url;
static int64_t cs_pool_size;

static const config_var cs_config[] = {
    SERVICE_COMMON_VARS(cs_common, "127.0.0.1:8082"),
    {"ESKIT_DATABASE_URL", CONFIG_STRING, "sqlite:data/consumer-store.db",
     "postgres://... or postgresql://... (libpq), or sqlite:PATH", 0, 0, NULL, &cs_db_url},
    {"ESKIT_DB_POOL_SIZE", CONFIG_INT, "16", "database connections for request threads", 1, 512,
     NULL, &cs_pool_size},
};

/* /readyz: the database answers. */
static bool cs_ready(void *ctx, err *e)
{
    cs_app *app = ctx;
    return service_db_ready(app->pool, CS_PING, e);
}

/* Before each scrape: the number of stored consumers. */
static void cs_collect(void *ctx)
{
    cs_app *app = ctx;
    err e = ERR_INIT;
    int64_t n = 0;
    db *d = db_pool_acquire(app->pool, &e);
    if (d) {
        if (cs_store_count(d, &n, &e))
            metrics_set(app->m_consumers, NULL, (double)n);
        db_pool_release(app->pool, d);
    }
    err_clear(&e);
}

int main(int argc, char **argv)
{
    cs_app app = {0};
    http_server *server = NULL;
    err e = ERR_INIT;
    int rc = 1;

    service_process_init();
    int cr = config_load("eskit-consumer-store",
                         "The eskit consumer store: the log offset of each consumer, with "
                         "compare-and-set, over HTTP/JSON.",
                         cs_config, sizeof cs_config / sizeof cs_config[0], argc, argv);
    if (cr != 0)
        return cr > 0 ? 0 : 2;
    service_log_init("consumer-store", &cs_common);
    if (!service_db_url_check(cs_db_url))
        return 2;

    /* 1. storage */
    app.pool = db_pool_new(cs_db_url, &cs_db_spec, (int)cs_pool_size);
    if (!app.pool)
        goto out;

    /* 2. metrics */
    app.metrics = metrics_new();
    if (!app.metrics)
        goto out;
    app.m_writes = metrics_counter(app.metrics, "eskit_consumer_offset_writes_total",
                                   "Offset writes, by result (ok or conflict).", "result");
    app.m_consumers = metrics_gauge(app.metrics, "eskit_consumers", "Consumers stored.", NULL);
    if (!app.m_writes || !app.m_consumers)
        goto out;
    metrics_on_render(app.metrics, cs_collect, &app);

    /* 3. HTTP */
    server = service_http_start("consumer-store", &cs_common, cs_routes, cs_nroutes, &app, cs_ready,
                                app.metrics);
    if (!server)
        goto out;
    log_info("listening on %s (database %s)", cs_common.listen,
             cs_db_url[0] == 's' ? cs_db_url : "postgresql");
    service_db_warm(app.pool);

    (void)service_signals_wait();
    rc = 0;

out:
    http_server_stop(server, 10000);
    db_pool_free(app.pool);
    metrics_free(app.metrics);
    err_clear(&e);
    return rc;
}
