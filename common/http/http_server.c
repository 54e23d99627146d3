/*
 * http_server.c - the HTTP server of every service, on libmicrohttpd.
 *
 * With a thread per connection, MHD gives each connection its thread and
 * the handler runs on it. With event loops, MHD's epoll threads read
 * requests, route them and write responses for all the connections; a
 * handler runs on the loop when its route allows it (http_run), and
 * otherwise on a worker thread (http_workers.c) while the connection is
 * suspended. A deferred answer (http_req_defer) lets a request wait for a
 * shared event, such as a group commit, without holding a thread.
 * Per-request state (struct http_req) is created when MHD has read the
 * request line (the URI log callback, which alone sees the path as the
 * client sent it), set up on the first access-handler call and freed in
 * exactly one place, the request-completed callback, which also writes the
 * access log line and the request metrics.
 * Everything that is the same for every endpoint happens here once:
 * routing, 404/405, the bearer token, the body limit, an ambiguous length
 * (400), path parameters and query parameters that are not UTF-8 text
 * (400), media types, JSON parsing and the error body of SPEC §2. See
 * http_server.h. What handlers read and reply is in http_req.c; the
 * connection bounds are MHD's options here and the header deadline is
 * http_guard.c.
 */
#include "http_server.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"
#include "jsonx.h"
#include "log.h"
#include "timefmt.h"

#define HTTP_DRAIN_MAX (64u << 20) /* read and drop oversize bodies up to this */
#define HTTP_FD_RESERVE 256        /* open files kept for the rest of the process */

/* ------------------------------------------------------------------------ */
/* built-in endpoints                                                       */

static void http_builtin_healthz(http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void http_builtin_readyz(http_req *r)
{
    err e = ERR_INIT;
    http_server *s = r->srv;
    if (s->cfg.ready && !s->cfg.ready(s->cfg.app, &e)) {
        if (e.code == ERR_NONE)
            err_set(&e, ERR_UNAVAILABLE, "not ready");
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

static void http_builtin_metrics(http_req *r)
{
    size_t len = 0;
    char *text = metrics_render(r->srv->cfg.metrics, &len);
    if (!text) {
        http_reply_error(r, ERR_INTERNAL, "cannot render metrics");
        return;
    }
    http_set_response(r, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

static const http_route http_builtin_routes[] = {
    {"GET", "/healthz", http_builtin_healthz, HTTP_RUN_LOOP},
    {"GET", "/readyz", http_builtin_readyz, HTTP_RUN_WORKER}, /* may connect */
    {"GET", "/metrics", http_builtin_metrics, HTTP_RUN_WORKER},
};

/* ------------------------------------------------------------------------ */
/* dispatch                                                                 */

static bool http_authorized(http_req *r)
{
    const char *token = r->srv->cfg.api_token;
    if (!token || !*token || strncmp(r->url, "/v1/", 4) != 0)
        return true;
    const char *h = http_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t a = strlen(h), b = strlen(token);
    unsigned char diff = a != b;
    for (size_t i = 0; i < a && i < b; i++) /* constant time in the token's length */
        diff |= (unsigned char)(h[i] ^ token[i]);
    return diff == 0;
}

/* Everything before the handler: the token, the route, the body limit, the
 * path and query parameters. Returns the route, or NULL when r already has
 * its (error) answer. */
static const http_route *http_route_req(http_req *r)
{
    const http_route *route = NULL;
    char allow[128] = "";

    if (!http_authorized(r)) {
        http_reply_error(r, ERR_UNAUTHENTICATED,
                         "missing or wrong bearer token in the Authorization header");
        return NULL;
    }
    http_route_result res = http_router_find(r->srv->router, r->method, r->path, &r->match,
                                             &route, allow, sizeof allow);
    if (res == HTTP_ROUTE_NOT_FOUND) {
        http_reply_error(r, ERR_NOT_FOUND, "no such path: %.200s", r->path);
        return NULL;
    }
    if (res == HTTP_ROUTE_BAD_METHOD) {
        http_reply_header(r, "Allow", allow);
        http_reply_error(r, ERR_METHOD_NOT_ALLOWED, "%s is not allowed on %.200s; allowed: %s",
                         r->method, r->path, allow);
        return NULL;
    }
    if (r->too_large) {
        http_reply_error(r, ERR_PAYLOAD_TOO_LARGE, "request body is larger than %zu bytes",
                         r->srv->cfg.max_body);
        return NULL;
    }
    if (!http_req_params_are_text(r))
        return NULL;
    return route;
}

void http_dispatch(http_req *r)
{
    r->match.route->handler(r);
    if (!r->resp && !r->resume && !r->to_worker)
        http_reply_error(r, ERR_INTERNAL, "the handler produced no response");
}

/* Counts the request in the metrics, once. Done when the response is
 * queued, so that a client that has its answer also finds it counted. */
static void http_record(http_req *r)
{
    if (r->recorded)
        return;
    r->recorded = true;
    double dt = timefmt_mono() - r->t0;
    const char *route = r->match.route ? r->match.route->pattern : "other";
    char code[8];
    snprintf(code, sizeof code, "%d", r->status);
    /* The method is the client's string: keep the label's values bounded. */
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                          "OPTIONS"};
    const char *method = "other";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(r->method, methods[i]) == 0)
            method = methods[i];
    const char *labels[] = {method, route, code};
    metrics_add(r->srv->m_requests, labels, 1);
    const char *dl[] = {route};
    metrics_observe(r->srv->m_duration, dl, dt);
}

static enum MHD_Result http_queue(http_req *r)
{
    http_record(r);
    if (atomic_load(&r->srv->stopping)) /* let kept-alive clients go */
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ret;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **con_cls)
{
    http_server *s = cls;
    http_req *r = *con_cls;

    if (!r) /* http_begin ran out of memory */
        return MHD_NO;
    if (!r->srv) {
        bool early = false;
        r->srv = s;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->t0 = timefmt_mono();
        r->status = 500;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->gconn = ci ? ci->socket_context : NULL;
        http_guard_request(r->gconn, true);
        buf_init(&r->body, s->cfg.max_body);
        atomic_fetch_add(&s->inflight, 1);
        const char *framing = http_req_framing_error(conn);
        if (framing) { /* answered before the body, and the connection closes */
            r->started = true;
            http_reply_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
            http_reply_error(r, ERR_INVALID_ARGUMENT, "%s", framing);
            return http_queue(r);
        }
        /* An announced oversize body is read and dropped (so that every client
         * sees the 413), unless it is absurdly large: then answer at once. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (end != cl && n > s->cfg.max_body)
                r->too_large = true;
            if (end != cl && n > s->cfg.max_body && n > HTTP_DRAIN_MAX)
                early = true;
        }
        if (early) {
            r->started = true;
            (void)http_route_req(r); /* 404/405/401 still win over 413 */
            return http_queue(r);
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        if (!r->too_large && buf_append(&r->body, upload_data, *upload_data_size))
            r->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (r->started) { /* called again after a resume */
        if (r->resume && atomic_load(&r->woken)) {
            http_resume_fn fn = r->resume;
            r->resume = NULL;
            atomic_store(&r->woken, false);
            fn(r, r->resume_ctx);
            if (!r->resp && !r->resume)
                http_reply_error(r, ERR_INTERNAL, "the handler produced no response");
        }
        return r->resp ? http_queue(r) : MHD_YES;
    }
    r->started = true;
    /* Counted before the flag is read (http_server_stop does the reverse):
     * a request either sees the flag, or is waited for. */
    r->dispatched = true;
    atomic_fetch_add(&s->dispatched, 1);
    if (atomic_load(&s->stopping)) {
        http_reply_error(r, ERR_UNAVAILABLE, "the service is stopping; try another replica");
        return http_queue(r);
    }
    const http_route *route = http_route_req(r);
    if (!route)
        return http_queue(r);
    if (!s->loop) { /* a thread per connection: this one */
        http_dispatch(r);
        http_wait_deferred(r);
        return http_queue(r);
    }
    if (route->run != HTTP_RUN_WORKER) {
        r->on_loop = true;
        http_dispatch(r);
        r->on_loop = false;
        if (!r->to_worker)
            return r->resp ? http_queue(r) : MHD_YES; /* else deferred: suspended */
        r->to_worker = false; /* a quick read that would wait: on to a worker */
    }
    http_conn_suspend(s, conn);
    if (!http_pool_submit(s->pool, r)) {
        http_conn_resume(s, conn);
        http_reply_error(r, ERR_UNAVAILABLE,
                         "the server has no thread for this request (out of threads, or "
                         "stopping); try again");
        return http_queue(r);
    }
    return MHD_YES;
}

/* MHD's URI log callback, called once per request when its request line
 * has been read, with the target as the client sent it (MHD then decodes
 * the path in place, and a %00 would end it). The request's state starts
 * here: MHD passes it to http_access as *con_cls, which sets it up, and to
 * http_completed, which frees it. NULL on OOM (http_access then closes the
 * connection). */
static void *http_begin(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    http_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = strndup(uri, strcspn(uri, "?"));
    if (!r->path) {
        free(r);
        return NULL;
    }
    return r;
}

/* MHD's accept policy: once the server is stopping, a new connection is
 * closed as soon as it is accepted. */
static enum MHD_Result http_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    http_server *s = cls;
    (void)addr;
    (void)len;
    return atomic_load(&s->stopping) ? MHD_NO : MHD_YES;
}

/* MHD's connection notifications: a connection enters the guard when it is
 * accepted and leaves it when it closes (before MHD closes its socket). */
static void http_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? http_guard_open(s->guard, ci->connect_fd) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_guard_close(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    http_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    if (!r->srv) { /* it ended before its headers were read: nothing else to undo */
        free(r->path);
        free(r);
        return;
    }
    http_guard_request(r->gconn, false); /* its next request's headers are awaited */
    http_record(r); /* a request that ended before its answer was queued */
    log_request(r->method, r->path, r->status, timefmt_mono() - r->t0, r->bytes_out);

    if (r->resp)
        MHD_destroy_response(r->resp);
    json_decref(r->json);
    buf_free(&r->body);
    for (int i = 0; i < r->nheaders; i++) {
        free(r->headers[i][0]);
        free(r->headers[i][1]);
    }
    http_match_free(&r->match);
    bool dispatched = r->dispatched;
    free(r->path);
    free(r);
    if (dispatched)
        atomic_fetch_sub(&s->dispatched, 1);
    atomic_fetch_sub(&s->inflight, 1);
}

/* ------------------------------------------------------------------------ */
/* life cycle                                                               */

/* Connections the process can hold: `want`, unless the open-files limit
 * (first raised to its hard limit) leaves fewer beside HTTP_FD_RESERVE. */
static unsigned http_conn_budget(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (unsigned)want;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    rlim_t room = rl.rlim_cur > 2 * HTTP_FD_RESERVE ? rl.rlim_cur - HTTP_FD_RESERVE
                                                    : rl.rlim_cur / 2;
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)want > room) {
        log_warn("http: the open-files limit (%llu) holds %llu connections, not the %d "
                 "asked for (ESKIT_MAX_CONNECTIONS): raise the limit (ulimit -n, "
                 "LimitNOFILE=) to hold more",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)room, want);
        return (unsigned)room;
    }
    return (unsigned)want;
}

/* Splits "HOST:PORT" ("[::1]:8080" for IPv6) and resolves it. */
static bool http_resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sl,
                         bool *ipv6, err *e)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) {
        err_set(e, ERR_INVALID_ARGUMENT, "ESKIT_LISTEN must be HOST:PORT, got '%s'", listen);
        return false;
    }
    size_t hl = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        err_set(e, ERR_INVALID_ARGUMENT, "ESKIT_LISTEN host is too long");
        return false;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res);
    if (rc || !res) {
        err_set(e, ERR_INVALID_ARGUMENT, "cannot resolve ESKIT_LISTEN '%s': %s", listen,
                gai_strerror(rc));
        return false;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return true;
}

http_server *http_server_start(const http_server_config *cfg, err *e)
{
    http_server *s = calloc(1, sizeof *s);
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    bool ipv6 = false;
    if (!s) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (!http_resolve(cfg->listen, &ss, &sl, &ipv6, e))
        goto fail;
    s->router = http_router_new(cfg->routes, cfg->nroutes, http_builtin_routes,
                                sizeof http_builtin_routes / sizeof http_builtin_routes[0]);
    s->m_requests = metrics_counter(cfg->metrics, "eskit_http_requests_total",
                                    "HTTP requests served, by method, route and status code.",
                                    "method,route,code");
    s->m_duration = metrics_histogram(cfg->metrics, "eskit_http_request_duration_seconds",
                                      "Time to serve an HTTP request, by route.", "route",
                                      NULL, 0);
    if (!s->router || !s->m_requests || !s->m_duration) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    unsigned max_conns = http_conn_budget(cfg->max_connections > 0 ? cfg->max_connections
                                                                     : HTTP_MAX_CONNECTIONS);
    int header_s = cfg->header_timeout_s > 0 ? cfg->header_timeout_s : HTTP_HEADER_TIMEOUT_S;
    if (!(s->guard = http_guard_new(header_s, cfg->metrics))) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ITC | MHD_USE_POLL | MHD_USE_TURBO;
    unsigned loops = cfg->loops > 0 ? (unsigned)cfg->loops : 1;
    s->loop = cfg->loops > 0;
    if (s->loop) {
        if (!(s->pool = http_pool_new((int)max_conns))) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto fail;
        }
        flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                MHD_USE_TURBO;
    }
    if (ipv6)
        flags |= MHD_USE_IPv6;
    /* A pool of event loops (size 0 or 1: one loop, or no loop at all). */
    s->daemon = MHD_start_daemon(
        flags, 0, http_accept, s, http_access, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_URI_LOG_CALLBACK, http_begin, s,
        MHD_OPTION_NOTIFY_COMPLETED, http_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
        http_conn_notify, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)(cfg->max_per_client > 0 ? cfg->max_per_client : 0),
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(4u << 20), MHD_OPTION_THREAD_POOL_SIZE,
        s->loop ? loops : 0u, MHD_OPTION_END);
    if (!s->daemon) {
        err_set(e, ERR_UNAVAILABLE, "cannot listen on %s (address in use or not local?)",
                cfg->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    if (cfg->max_per_client > 0)
        log_info("http: up to %u connections, %d per client address; request headers "
                 "within %d s",
                 max_conns, cfg->max_per_client, header_s);
    else
        log_info("http: up to %u connections, any number per client address; request "
                 "headers within %d s",
                 max_conns, header_s);
    return s;
fail:
    http_guard_free(s->guard);
    http_pool_free(s->pool);
    http_router_free(s->router);
    free(s);
    return NULL;
}

int http_server_port(const http_server *s) { return s->port; }

bool http_server_stop(http_server *s, int grace_ms)
{
    if (!s)
        return true;
    atomic_store(&s->stopping, true);
    /* No new connections: http_accept closes them at once. With a thread
     * per connection the listen socket is also closed (after
     * MHD_stop_daemon). Not with event loops: there MHD 0.9.75 takes it
     * out of a loop's epoll set both in MHD_quiesce_daemon and on the loop
     * itself, and panics when the second removal fails (seen in CI). */
    MHD_socket fd = s->loop ? MHD_INVALID_SOCKET : MHD_quiesce_daemon(s->daemon);
    /* With event loops, a dispatched request may hold a suspended
     * connection (MHD aborts when stopped with one), a worker, or a stream;
     * and a thread that resumes a connection uses MHD until its resume
     * returns. Requests dispatched from now on are turned away at once and
     * never suspend: once none is left and no resume is under way, none
     * will be. A request still reading its body holds nothing: MHD closes
     * it. With a thread per connection, MHD_stop_daemon waits for the
     * connections' threads itself: wait for every request a while. */
    atomic_int *busy = s->loop ? &s->dispatched : &s->inflight;
    double until = timefmt_mono() + grace_ms / 1000.0;
    while ((atomic_load(busy) > 0 || atomic_load(&s->suspended) > 0) &&
           timefmt_mono() < until)
        usleep(10 * 1000);
    if (s->loop && (atomic_load(busy) > 0 || atomic_load(&s->suspended) > 0)) {
        log_error("http: %d requests still in flight after %d ms; leaving them to the end of "
                  "the process", atomic_load(busy), grace_ms);
        return false;
    }
    http_pool_stop(s->pool);
    MHD_stop_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    http_guard_free(s->guard);
    http_pool_free(s->pool);
    http_router_free(s->router);
    free(s);
    return true;
}
