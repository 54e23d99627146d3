/*
 * http_internal.h - what http_server.c and http_workers.c share: the server
 * and request structs and the worker pool (private to the HTTP server).
 */
#ifndef ESKIT_HTTP_INTERNAL_H
#define ESKIT_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "buf.h"
#include "http_route.h"
#include "http_server.h"

#define HTTP_MAX_HEADERS 8

typedef struct http_pool http_pool;
typedef struct http_guard http_guard;
typedef struct http_gconn http_gconn;

struct http_server {
    struct MHD_Daemon *daemon;
    http_server_config cfg;
    http_router *router;
    metrics_family *m_requests;
    metrics_family *m_duration;
    atomic_int inflight;   /* requests between first call and completion */
    atomic_int dispatched; /* ... of them, those past the routing (may hold a
                            * suspended connection, a worker, a stream) */
    atomic_int suspended;  /* suspensions not yet undone by a finished resume */
    bool loop;            /* event loops (cfg.loops > 0), else a thread per connection */
    atomic_bool stopping; /* http_server_stop began: new requests are turned away */
    http_pool *pool;      /* the workers behind the loops */
    http_guard *guard;    /* the header deadline of every connection */
    int port;
};

typedef void (*http_resume_fn)(http_req *r, void *ctx);

/* With a thread per connection, a deferred request waits on its thread's
 * own condition (one per thread, for the thread's life): a wake-up wakes
 * that thread alone. */
typedef struct http_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
} http_waiter;

struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;  /* MHD's decoded path (a %00 ends it): only for the token check */
    char *path;       /* the path as the client sent it, percent-encoded; owned */
    double t0;
    buf body;
    bool too_large;
    bool started;  /* dispatched (or handed to a worker) */
    bool dispatched; /* counted in srv->dispatched */
    bool on_loop;   /* its handler is running on an event loop */
    bool to_worker; /* ... and asked to run on a worker instead */
    bool recorded; /* counted in the request metrics */
    http_match match;
    json_t *json;
    /* a deferred answer (http_req_defer) */
    http_resume_fn resume;
    void *resume_ctx;
    atomic_bool woken;
    http_waiter *waiter; /* a thread per connection: the thread that waits */
    http_gconn *gconn; /* its connection in the guard (NULL: none) */
    /* the worker queue */
    http_req *next;
    /* a stream response's pump, run by the worker after the handler */
    struct http_stream *stream;
    /* the response */
    struct MHD_Response *resp;
    int status;
    size_t bytes_out;
    int nheaders;
    char *headers[HTTP_MAX_HEADERS][2];
};

/* Sets r's response (a second one is dropped: the first stays), with the
 * headers the handler added; takes `data` (malloc'd; NULL: no body)
 * (http_req.c). */
void http_set_response(http_req *r, int status, char *data, size_t len,
                       const char *content_type);

/* Routing and the handler, with every error of SPEC §2 (http_server.c). */
void http_dispatch(http_req *r);

/* Path and query parameters must be UTF-8 text once decoded (SPEC §2: a
 * malformed id is 400 naming the field; JSON is UTF-8; a %00 would cut a C
 * string short): true when they are, else false after replying 400 naming
 * the first that is not (http_params.c). */
bool http_req_params_are_text(http_req *r);

/* A request's length must be unambiguous (RFC 9112 6.3): NULL when it is,
 * else why not, when Content-Length is given twice with different values or
 * together with Transfer-Encoding. MHD takes the first Content-Length (or
 * the Transfer-Encoding) and reads the rest as the next request; a proxy in
 * front may have taken the other one: request smuggling (http_params.c). */
const char *http_req_framing_error(struct MHD_Connection *conn);

/* Suspends / resumes a connection of s, keeping s->suspended. The count
 * drops only once MHD_resume_connection has returned: until then the
 * resuming thread (the committer, a worker) still uses MHD, and
 * http_server_stop waits for it. */
static inline void http_conn_suspend(http_server *s, struct MHD_Connection *c)
{
    atomic_fetch_add(&s->suspended, 1);
    MHD_suspend_connection(c);
}
static inline void http_conn_resume(http_server *s, struct MHD_Connection *c)
{
    MHD_resume_connection(c);
    atomic_fetch_sub(&s->suspended, 1);
}

/* The worker pool (http_workers.c): threads that run blocking handlers,
 * as many as requests need at once (up to `max`). */
http_pool *http_pool_new(int max);
/* Runs http_dispatch(r) on a worker, then resumes r's connection. The
 * caller has suspended it. false when no thread could be had, or the pool
 * is stopping. */
bool http_pool_submit(http_pool *p, http_req *r);
/* Refuses new requests (submit returns false), lets running handlers
 * finish and joins every thread. */
void http_pool_stop(http_pool *p);
/* Stops (if not yet done) and frees. */
void http_pool_free(http_pool *p);

/* The header deadline (http_guard.c): every connection must send the
 * complete headers of its next request within `timeout_s` of being accepted
 * or of its previous request's completion; a sweeper thread shuts down the
 * others. `m` gets eskit_http_header_timeouts_total. NULL on failure. */
http_guard *http_guard_new(double timeout_s, metrics *m);
/* Stops the sweeper and frees; after MHD_stop_daemon. */
void http_guard_free(http_guard *g);
/* A connection accepted (MHD_CONNECTION_NOTIFY_STARTED), its socket fd:
 * NULL on OOM (it then has no deadline). */
http_gconn *http_guard_open(http_guard *g, int fd);
/* The connection closed (MHD_CONNECTION_NOTIFY_CLOSED, before MHD closes
 * its socket); frees c. Nothing for NULL. */
void http_guard_close(http_guard *g, http_gconn *c);
/* Its request's headers have been read (true), or its request completed
 * and it waits for the next one (false). Nothing for NULL. */
void http_guard_request(http_gconn *c, bool in_request);

/* With a thread per connection: runs r's deferred answers as they are woken
 * (on r's thread), until r has its response (http_workers.c). */
void http_wait_deferred(http_req *r);

/* A stream response for r: with event loops its bytes are pumped from `fill`
 * by the worker after the handler returned, with a thread per connection
 * MHD's reader calls fill itself; for a HEAD, fill is never called and the
 * response has no body (http_workers.c). `done` runs once, when the stream
 * is over. NULL on OOM (then done has not run). */
struct MHD_Response *http_stream_response(http_req *r, http_stream_fill fill, void *ctx,
                                          void (*done)(void *ctx));

#endif
