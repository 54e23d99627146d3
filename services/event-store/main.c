/*
 * main.c - eskit-event-store: append-only streams and one ordered
 * application log over HTTP (SPEC §3).
 *
 * Reads like a script: configuration, logging, storage (a pool for readers,
 * the standbys' pool when ESKIT_DATABASE_READ_URL is set, one committer
 * thread for writers, a listener for other replicas' commits, the scavenger
 * of what retention no longer keeps), metrics, the
 * HTTP server; then wait for SIGTERM/SIGINT and stop in reverse order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "es_app.h"
#include "es_listen.h"
#include "es_store.h"
#include "log.h"
#include "service.h"

#define ES_MAX_DEPTH 900 /* JSON nesting of a request body; see main() */
#define ES_READERS 2      /* reader threads (es_read.h) */

static service_common es_common;
static const char *es_db_url;
static const char *es_read_url;
static int64_t es_pool_size;
static int64_t es_http_loops;
static int64_t es_scavenge_s;

static const config_var es_config[] = {
    SERVICE_COMMON_VARS(es_common, "127.0.0.1:8080"),
    {"ESKIT_DATABASE_URL", CONFIG_STRING, "sqlite:data/event-store.db",
     "postgres://... or postgresql://... (libpq; several hosts: the one that takes writes "
     "is used), or sqlite:PATH",
     0, 0, NULL, &es_db_url},
    {"ESKIT_DATABASE_READ_URL", CONFIG_STRING, NULL,
     "postgresql://... of hot standbys for reads (stream reads, log reads, long polls, SSE, "
     "stream listings), e.g. with target_session_attrs=prefer-standby; unset: reads use "
     "ESKIT_DATABASE_URL",
     0, 0, NULL, &es_read_url},
    {"ESKIT_DB_POOL_SIZE", CONFIG_INT, "16", "database connections for readers", 1, 512, NULL,
     &es_pool_size},
    {"ESKIT_HTTP_LOOPS", CONFIG_INT, "4",
     "event-loop threads for the HTTP connections; 0: a thread per connection", 0, 256, NULL,
     &es_http_loops},
    {"ESKIT_SCAVENGE_INTERVAL", CONFIG_INT, "10",
     "seconds between two rounds of the scavenger, which deletes the events that streams' "
     "retention settings no longer keep",
     1, 3600, NULL, &es_scavenge_s},
};


/* /readyz: the database answers. */
static bool es_ready(void *ctx, err *e)
{
    es_app *app = ctx;
    return service_db_ready(app->pool, ES_PING, e);
}

/* Before each scrape: the log head, read from the database. */
static void es_collect(void *ctx)
{
    es_app *app = ctx;
    err e = ERR_INIT;
    int64_t head = 0;
    db *d = db_pool_acquire(app->pool, &e);
    if (d) {
        if (es_store_head(d, &head, &e))
            metrics_set(app->m_head, NULL, (double)head);
        db_pool_release(app->pool, d);
    }
    err_clear(&e);
}

int main(int argc, char **argv)
{
    static es_app app; /* handlers may outlive main's frame (see the end) */
    es_listener *listener = NULL;
    http_server *server = NULL;
    err e = ERR_INIT;
    int rc = 1;

    service_process_init();
    int cr = config_load("eskit-event-store",
                         "The eskit event store: streams of events and one ordered application "
                         "log, over HTTP/JSON.",
                         es_config, sizeof es_config / sizeof es_config[0], argc, argv);
    if (cr != 0)
        return cr > 0 ? 0 : 2;
    service_log_init("event-store", &es_common);
    if (!service_db_url_check(es_db_url) || !service_read_url_check(es_read_url, es_db_url))
        return 2;

    /* 1. metrics */
    app.metrics = metrics_new();
    if (!app.metrics)
        goto out;
    app.m_appended = metrics_counter(app.metrics, "eskit_events_appended_total",
                                     "Events appended through this process.", NULL);
    app.m_head = metrics_gauge(app.metrics, "eskit_log_head_id",
                               "The highest application log id visible.", NULL);
    metrics_family *m_groups = metrics_counter(
        app.metrics, "eskit_append_groups_total",
        "Group transactions that wrote, by path: one_statement (versions "
        "remembered), retried (versions the first try returned) or general "
        "(read, then write).",
        "path");
    metrics_family *m_scavenged = metrics_counter(
        app.metrics, "eskit_events_scavenged_total",
        "Events (and their log entries) deleted by this process's scavenger because their "
        "stream's retention no longer keeps them.",
        NULL);
    metrics_on_render(app.metrics, es_collect, &app);

    /* 2. storage: readers' pool, the committer, the listener */
    app.db_url = es_db_url;
    app.log_watch = watch_new();
    app.pool = db_pool_new(es_db_url, &es_db_spec, (int)es_pool_size);
    if (!app.log_watch || !app.pool)
        goto out;
    app.reads = db_reads_new(app.pool, &es_db_spec, es_store_head, es_read_url,
                             (int)es_pool_size, app.metrics);
    if (!app.reads)
        goto out;
    app.committer = es_committer_start(es_db_url, app.log_watch, app.reads, m_groups);
    app.reader = es_reader_start(app.reads, ES_READERS);
    listener = es_listener_start(es_db_url, app.log_watch, app.reads);
    app.scavenger = es_scavenger_start(es_db_url, (int)es_scavenge_s, m_scavenged);
    if (!app.committer || !app.reader || !listener || !app.scavenger)
        goto out;

    /* 3. HTTP. Bodies may nest deeper than the other services allow: the
     * CRUD store wraps documents of HTTP_MAX_DEPTH levels in a few of its
     * own. SQLite's JSON functions, which read every append two levels
     * deeper than it came, refuse more than 1000 levels (2000 before SQLite
     * 3.42). */
    es_common.max_depth = ES_MAX_DEPTH;
    es_common.loops = (int)es_http_loops;
    server = service_http_start("event-store", &es_common, es_routes, es_nroutes, &app, es_ready,
                                app.metrics);
    if (!server)
        goto out;
    log_info("listening on %s (database %s%s)", es_common.listen,
             es_db_url[0] == 's' ? es_db_url : "postgresql",
             es_read_url ? ", reads on standbys" : "");
    service_db_warm(app.pool);

    (void)service_signals_wait();
    rc = 0;

out:
    /* Wake long polls and streams so that they answer and end. */
    if (app.log_watch)
        watch_stop(app.log_watch);
    if (!http_server_stop(server, 10000)) {
        /* Requests still use the committer and the pool: end the process
         * under them, without freeing or running exit handlers. */
        fflush(NULL);
        _exit(rc);
    }
    es_scavenger_stop(app.scavenger);
    es_listener_stop(listener);
    es_committer_stop(app.committer);
    es_reader_stop(app.reader);
    db_reads_free(app.reads);
    db_pool_free(app.pool);
    metrics_free(app.metrics);
    watch_free(app.log_watch);
    err_clear(&e);
    return rc;
}
