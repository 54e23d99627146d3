/*
 * service.h - what every service's main() does the same way: the common
 * configuration variables, logging set-up, and signals (SIGTERM/SIGINT stop
 * the service gracefully; SIGPIPE is ignored).
 */
#ifndef ESKIT_SERVICE_H
#define ESKIT_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "http_server.h"

typedef struct service_common {
    const char *listen;
    const char *api_token;
    int64_t max_body;
    const char *log_format;
    const char *log_level;
    /* Set by main, not configured by every service (see http_server_config):
     * 0 is HTTP_MAX_DEPTH; 0 loops is a thread per connection. */
    int max_depth;
    int loops;
    int64_t max_connections;
    int64_t max_per_client;
    int64_t header_timeout_s;
} service_common;

/* The config_var entries every service has; `c` is a service_common. */
#define SERVICE_COMMON_VARS(c, default_listen)                                                \
    {"ESKIT_LISTEN", CONFIG_STRING, default_listen, "HOST:PORT to listen on", 0, 0, NULL,      \
     &(c).listen},                                                                             \
    {"ESKIT_API_TOKEN", CONFIG_STRING, NULL,                                                   \
     "when set, /v1/... requests need 'Authorization: Bearer <token>'", 0, 0, NULL,            \
     &(c).api_token},                                                                          \
    {"ESKIT_MAX_BODY_BYTES", CONFIG_INT, "1048576", "largest request body, in bytes", 1,      \
     1073741824, NULL, &(c).max_body},                                                         \
    {"ESKIT_LOG_FORMAT", CONFIG_STRING, "text", "log lines on stderr: text or json", 0, 0,     \
     "text|json", &(c).log_format},                                                            \
    {"ESKIT_LOG_LEVEL", CONFIG_STRING, "info", "least severe level logged", 0, 0,              \
     "debug|info|warn|error", &(c).log_level},                                                 \
    {"ESKIT_MAX_CONNECTIONS", CONFIG_INT, "10000",                                             \
     "HTTP connections held at once (lowered to what the open-files limit allows); past it "   \
     "new connections are closed at once",                                                     \
     16, 1000000, NULL, &(c).max_connections},                                                 \
    {"ESKIT_MAX_CONNECTIONS_PER_CLIENT", CONFIG_INT, "256",                                    \
     "HTTP connections held at once from one client address; 0: no bound (behind a proxy "     \
     "that is the only client, raise it or use 0)",                                            \
     0, 1000000, NULL, &(c).max_per_client},                                                   \
    {"ESKIT_HTTP_HEADER_TIMEOUT_SECONDS", CONFIG_INT, "20",                                    \
     "seconds a connection has to send a request's complete headers, from its accept or its "  \
     "previous request's end (idle kept-alive connections are closed after it too)",           \
     1, 3600, NULL, &(c).header_timeout_s}

/* Checks ESKIT_DATABASE_URL names a known back end; logs and returns false
 * otherwise (the caller exits 2). */
bool service_db_url_check(const char *url);
/* Checks ESKIT_DATABASE_READ_URL (NULL: unset, fine): a PostgreSQL URL, and
 * db_url (ESKIT_DATABASE_URL) on PostgreSQL too; logs why not. */
bool service_read_url_check(const char *read_url, const char *db_url);
/* Opens one pooled connection at start-up so that the schema exists early;
 * a failure only logs (the service starts anyway and answers 503). */
void service_db_warm(db_pool *pool);
/* A /readyz check for a service whose dependency is its database: runs the
 * statement `ping` (e.g. SELECT 1) on a pooled connection. */
bool service_db_ready(db_pool *pool, size_t ping, err *e) WUR;

/* For handlers: a pooled connection, or NULL after replying 503 (the caller
 * just returns). Hand it back with db_pool_release(). An HTTP_RUN_QUICK
 * handler on an event loop gets an open connection that is free, or NULL
 * and is handed to a worker (http_req_to_worker): the caller just returns
 * there too, and runs again on the worker. */
db *service_req_db(http_req *r, db_pool *pool) WUR;
/* For handlers: the path parameter `name` checked as an id (SPEC §2), or
 * NULL after replying 400. Borrowed from the request. */
const char *service_req_id(http_req *r, const char *name) WUR;

/* Starts the service's HTTP server with the common settings (listen
 * address, token, body limit). Logs and returns NULL when it cannot listen. */
http_server *service_http_start(const char *service, const service_common *c,
                                const http_route *routes, size_t nroutes, void *app,
                                bool (*ready)(void *app, err *e), metrics *m) WUR;

/* Sets up logging from the common variables. */
void service_log_init(const char *service, const service_common *c);

/* Call first thing in main(): blocks SIGTERM and SIGINT in the calling
 * thread (threads created later inherit the mask), ignores SIGPIPE, and keeps
 * malloc to two arenas (a thread per connection, or the HTTP server's
 * workers, would otherwise grow one arena per thread, and the resident
 * memory with them). */
void service_process_init(void);
/* Waits for SIGTERM or SIGINT, logs it, and returns the signal number. */
int service_signals_wait(void);

#endif
