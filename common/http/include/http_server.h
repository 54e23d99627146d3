/*
 * http_server.h - the HTTP/1.1 server every service runs, on libmicrohttpd,
 * in one of two ways (http_server_config.loops):
 *
 * - one thread per connection: every handler runs on its connection's
 *   thread and may block as long as it likes;
 * - event loops (libmicrohttpd's epoll, a pool of threads) for the
 *   connections, where a route says where its handler runs (http_run):
 *   on the loop when it never blocks (it answers at once or later from
 *   another thread, http_req_defer), on the loop when it is a short read
 *   and the service has a database connection free (or it defers), else on
 *   a worker thread (long polls, SSE, calls to other services).
 *
 * A service gives a route table (data: method, pattern with {params},
 * handler). The server does everything around the handler once, for all
 * services: routing with 404 and 405 + Allow, the bearer token on /v1/...,
 * the body limit (413), the body's media type (415) and JSON parsing (400),
 * /healthz, /readyz and /metrics, one access-log line and the request metrics
 * per request, and the error body of SPEC §2.
 *
 * A handler reads the request through http_req_* and sets exactly one
 * response through http_reply_*; it returns nothing. A handler that sets no
 * response gets a 500.
 */
#ifndef ESKIT_HTTP_SERVER_H
#define ESKIT_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "metrics.h"

typedef struct http_server http_server;
typedef struct http_req http_req;

typedef void (*http_handler)(http_req *req);

/* Where a route's handler runs on a server with event loops (with one
 * thread per connection, every handler runs on its connection's thread). */
typedef enum http_run {
    HTTP_RUN_WORKER = 0, /* may block for long: long polls, SSE, writes, other services */
    HTTP_RUN_QUICK,      /* a short read: starts on the loop; when it would have to wait
                          * (no open database connection free, service_req_db), it hands
                          * itself to a worker (http_req_to_worker) and runs again there
                          * from the start, or defers (http_req_defer). It must not
                          * stream. */
    HTTP_RUN_LOOP,       /* never blocks: answers at once, or defers (http_req_defer).
                          * It must not stream. */
} http_run;

typedef struct http_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/v1/events/{originator_id}"; also the metrics route label */
    http_handler handler;
    http_run run;
} http_route;

typedef struct http_server_config {
    const char *service; /* "event-store": logs */
    const char *listen;  /* "HOST:PORT" */
    const char *api_token; /* NULL or "": no authentication */
    size_t max_body;
    int max_depth; /* deepest nesting of a JSON body; 0: HTTP_MAX_DEPTH */
    const http_route *routes;
    size_t nroutes;
    void *app; /* handed to handlers through http_req_app() */
    /* /readyz: true when ready; else fills e (503 unavailable). */
    bool (*ready)(void *app, err *e);
    metrics *metrics; /* the service's registry; the server adds its own families */
    /* Event-loop threads; 0: one thread per connection. */
    int loops;
    /* Connections held at once (0: HTTP_MAX_CONNECTIONS), at most so many
     * from one client address (0: no bound), and the seconds a connection
     * has to send a request's complete headers (0: HTTP_HEADER_TIMEOUT_S).
     * The open-files limit, raised to its hard limit, may lower the first:
     * the log says what was granted. Past it, new connections are closed
     * as soon as they are accepted. */
    int max_connections;
    int max_per_client;
    int header_timeout_s;
} http_server_config;

#define HTTP_MAX_CONNECTIONS 10000
#define HTTP_HEADER_TIMEOUT_S 20

/* The nesting a JSON request body may have unless the service says
 * otherwise: far more than documents need, and below what the stores can
 * keep (SQLite's JSON functions refuse more than 1000 levels). */
#define HTTP_MAX_DEPTH 512

/* Binds and starts serving. NULL with e set when the address is bad or busy. */
http_server *http_server_start(const http_server_config *cfg, err *e) WUR;
/* Takes no new connection (each is closed at once), turns new requests on
 * open ones away (503, and every answer closes its connection), lets
 * requests in flight finish (at most grace_ms), then
 * closes every connection and frees the server: true. With event loops,
 * requests still in flight after grace_ms (a parked append, a stream to a
 * client that does not read) cannot be cut short: then nothing is stopped
 * or freed, and false tells the caller to leave what handlers use alone
 * and end the process. */
bool http_server_stop(http_server *s, int grace_ms);
/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *s);

/* --- reading the request --- */
/* True when the client has closed its side of the connection (or it
 * broke): for a handler that waits, such as a long poll, to stop waiting for
 * nobody. */
bool http_req_client_gone(const http_req *r);
void *http_req_app(const http_req *r);
const char *http_req_method(const http_req *r);
const char *http_req_path(const http_req *r);
/* A path parameter by name ("originator_id"), percent-decoded; never NULL
 * for a name in the route's pattern. */
const char *http_req_param(const http_req *r, const char *name);
/* A query parameter, or NULL when absent. */
const char *http_req_query(const http_req *r, const char *name);
/* A header (case-insensitive), or NULL. */
const char *http_req_header(const http_req *r, const char *name);
/* The body parsed as JSON (415 for media types that are clearly not JSON,
 * 400 for an empty or malformed body). Borrowed: freed with the request. */
json_t *http_req_json(http_req *r, err *e) WUR;

/* Query helpers with SPEC §2 errors naming the parameter: absent gives
 * `def`; present must be an integer in [min, max] (never clamped). */
bool http_req_query_int(const http_req *r, const char *name, int64_t def, int64_t min,
                        int64_t max, int64_t *out, err *e) WUR;
/* "true"/"false"/"1"/"0"; absent gives def. */
bool http_req_query_bool(const http_req *r, const char *name, bool def, bool *out,
                         err *e) WUR;

/* The pure forms of the readers above, on plain values (the fuzz targets
 * call them directly). http_body_parse: a request body as JSON (400 for an
 * empty or malformed text, or one nesting deeper than max_depth; 0:
 * HTTP_MAX_DEPTH), a new reference or NULL with e set. The query readers
 * take the value (NULL: absent). http_media_type_is_json: false for a
 * Content-Type that is clearly not JSON (415); NULL is JSON. */
json_t *http_body_parse(const char *text, size_t len, int max_depth, err *e) WUR;
bool http_param_int(const char *name, const char *value, int64_t def, int64_t min,
                    int64_t max, int64_t *out, err *e) WUR;
bool http_param_bool(const char *name, const char *value, bool def, bool *out, err *e) WUR;
bool http_media_type_is_json(const char *content_type);

/* --- the response (exactly one per request) --- */
void http_reply_json(http_req *r, int status, json_t *body); /* steals body */
/* A body already serialised as JSON (malloc'd; the server takes it). */
void http_reply_json_text(http_req *r, int status, char *text, size_t len);
void http_reply_err(http_req *r, const err *e);              /* the error body of SPEC §2 */
/* The usual end of a handler: `body` with `status` when it is not NULL, else
 * the error in e. Clears e either way. */
void http_reply_result(http_req *r, int status, json_t *body, err *e);
void http_reply_error(http_req *r, err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void http_reply_empty(http_req *r, int status); /* no body (204) */
/* Adds a header to the response (before or after the reply call). */
void http_reply_header(http_req *r, const char *name, const char *value);

/*
 * A streamed response (SSE), from an HTTP_RUN_WORKER handler. `fill` is
 * called from a worker thread (or the connection's own) to produce the next
 * bytes: it may block, and
 * returns the number of bytes written into buf (at most max, > 0), or -1 to
 * end the stream. `done` is called once when the stream ends or the client
 * goes away (may be NULL); fill is not called after it.
 */
typedef ssize_t (*http_stream_fill)(void *ctx, char *buf, size_t max);
void http_reply_stream(http_req *r, int status, const char *content_type,
                       http_stream_fill fill, void *ctx, void (*done)(void *ctx));

/*
 * An answer that comes later. On an event loop (an HTTP_RUN_LOOP handler)
 * the connection is parked and no thread is held; with one thread per
 * connection, that thread waits. Some thread calls http_req_wake(r) once;
 * then resume(r, ctx) runs (on the loop, or on the connection's thread) and
 * must answer (or defer again). Until the wake, r stays valid and the
 * request's JSON and strings too.
 */
void http_req_defer(http_req *r, void (*resume)(http_req *r, void *ctx), void *ctx);
void http_req_wake(http_req *r);
/* True where http_req_defer may be called: on an event loop, or on a
 * connection's own thread. False on a worker, which answers by itself. */
bool http_req_can_defer(const http_req *r);

/* For an HTTP_RUN_QUICK handler that finds it would have to wait: true when
 * it runs on an event loop and has been handed to a worker (it must return
 * at once, without an answer; it runs again there from the start); false
 * when it already may wait (a worker, or a thread per connection). */
bool http_req_to_worker(http_req *r);

#endif
