/*
 * service.c - the start-up and shutdown steps shared by every service's
 * main() (see service.h). Signals are taken synchronously with sigwait() in
 * the main thread, so no code runs in a signal handler.
 */
#include "service.h"

#include <malloc.h>
#include <signal.h>
#include <string.h>

#include "log.h"
#include "validate.h"

bool service_db_url_check(const char *url)
{
    if (db_url_valid(url))
        return true;
    log_error("ESKIT_DATABASE_URL must be postgres://..., postgresql://... or sqlite:PATH");
    return false;
}

bool service_read_url_check(const char *read_url, const char *db_url)
{
    if (!read_url)
        return true;
    if (strncmp(read_url, "postgres://", 11) != 0 && strncmp(read_url, "postgresql://", 13) != 0) {
        log_error("ESKIT_DATABASE_READ_URL must be a postgres:// or postgresql:// URL of hot "
                  "standbys");
        return false;
    }
    if (strncmp(db_url, "sqlite:", 7) == 0) {
        log_error("ESKIT_DATABASE_READ_URL needs ESKIT_DATABASE_URL on PostgreSQL (its "
                  "standbys replay that primary)");
        return false;
    }
    return true;
}

void service_db_warm(db_pool *pool)
{
    err e = ERR_INIT;
    db *d = db_pool_acquire(pool, &e);
    if (d)
        db_pool_release(pool, d);
    else
        log_warn("database not reachable yet: %s", e.message);
    err_clear(&e);
}

bool service_db_ready(db_pool *pool, size_t ping, err *e)
{
    db *d = db_pool_acquire(pool, e);
    if (!d)
        return false;
    db_status st = db_exec(d, ping, NULL, 0, NULL, e);
    db_pool_release(pool, d);
    if (st != DB_OK) {
        err_set(e, ERR_UNAVAILABLE, "database unavailable");
        return false;
    }
    return true;
}

db *service_req_db(http_req *r, db_pool *pool)
{
    db *d = db_pool_try_acquire(pool);
    if (d || http_req_to_worker(r)) /* NULL: it runs again on a worker */
        return d;
    err e = ERR_INIT;
    d = db_pool_acquire(pool, &e);
    if (!d)
        http_reply_err(r, &e);
    err_clear(&e);
    return d;
}

const char *service_req_id(http_req *r, const char *name)
{
    const char *id = http_req_param(r, name);
    if (!validate_id(id)) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "%s must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -", name);
        return NULL;
    }
    return id;
}

http_server *service_http_start(const char *service, const service_common *c,
                                const http_route *routes, size_t nroutes, void *app,
                                bool (*ready)(void *app, err *e), metrics *m)
{
    err e = ERR_INIT;
    http_server_config hc = {
        .service = service,
        .listen = c->listen,
        .api_token = c->api_token,
        .max_body = (size_t)c->max_body,
        .max_depth = c->max_depth,
        .loops = c->loops,
        .max_connections = (int)c->max_connections,
        .max_per_client = (int)c->max_per_client,
        .header_timeout_s = (int)c->header_timeout_s,
        .routes = routes,
        .nroutes = nroutes,
        .app = app,
        .ready = ready,
        .metrics = m,
    };
    http_server *s = http_server_start(&hc, &e);
    if (!s)
        log_error("%s", e.message);
    err_clear(&e);
    return s;
}

void service_log_init(const char *service, const service_common *c)
{
    log_level lvl = LOG_INFO;
    if (c->log_level && !strcmp(c->log_level, "debug"))
        lvl = LOG_DEBUG;
    else if (c->log_level && !strcmp(c->log_level, "warn"))
        lvl = LOG_WARN;
    else if (c->log_level && !strcmp(c->log_level, "error"))
        lvl = LOG_ERROR;
    log_init(service, c->log_format && !strcmp(c->log_format, "json"), lvl);
}

void service_process_init(void)
{
    mallopt(M_ARENA_MAX, 2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int service_signals_wait(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (sigwait(&set, &sig) != 0)
        ;
    log_info("signal %d: stopping", sig);
    return sig;
}
