/*
 * test_http_client.c - the libcurl client (common/http/http_client.c) against a
 * tiny server made with common/http/include/http_server.h on a free loopback port: JSON
 * in and out (answers parsed as eskit's stored JSON: integers past int64
 * taken), statuses, ETag, If-Match and token forwarding, a cap on the
 * answer's size, time-outs,
 * unreachable ports, one client shared by several threads, connection
 * reuse (counted by a raw TCP server), and answers deferred by handlers
 * and given from another thread (http_req_defer / http_req_wake), on event
 * loops and on a thread per connection.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_client.h"
#include "http_server.h"
#include "log.h"
#include "timefmt.h"

#define TOKEN "s3cret"

/* Echoes what the request carried: method, headers, query and body. */
static void srv_echo(http_req *r)
{
    json_t *out = json_object();
    const char *h;
    json_object_set_new(out, "method", json_string(http_req_method(r)));
    if ((h = http_req_header(r, "Authorization")))
        json_object_set_new(out, "authorization", json_string(h));
    if ((h = http_req_header(r, "If-Match")))
        json_object_set_new(out, "if_match", json_string(h));
    if ((h = http_req_header(r, "Content-Type")))
        json_object_set_new(out, "content_type", json_string(h));
    if ((h = http_req_query(r, "q")))
        json_object_set_new(out, "q", json_string(h));
    if (strcmp(http_req_method(r), "GET") != 0 && strcmp(http_req_method(r), "DELETE") != 0) {
        err e = ERR_INIT;
        json_t *body = http_req_json(r, &e);
        if (!body) {
            http_reply_err(r, &e);
            err_clear(&e);
            json_decref(out);
            return;
        }
        json_object_set(out, "body", body);
    }
    http_reply_json(r, 200, out);
}

static void srv_status(http_req *r)
{
    int code = (int)strtol(http_req_param(r, "code"), NULL, 10);
    if (code == 204) {
        http_reply_empty(r, 204);
        return;
    }
    http_reply_json(r, code, json_pack("{s:i}", "status", code));
}

static void srv_etag(http_req *r)
{
    http_reply_header(r, "ETag", "\"7\"");
    http_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

static void srv_slow(http_req *r)
{
    usleep(1500 * 1000);
    http_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

static void srv_text(http_req *r)
{
    char *text = strdup("not json at all");
    http_reply_json_text(r, 200, text, strlen(text));
}

/* What an event store on PostgreSQL sends for the payload {"n": 1e20}. */
static void srv_bigint(http_req *r)
{
    char *text = strdup("{\"n\": 100000000000000000000, \"s\": \"a\\u0000b\"}");
    http_reply_json_text(r, 200, text, strlen(text));
}

/* On the loop: parks the request and has another thread wake it; the
 * answer is given on the event loop (or on the connection's thread), from
 * the request's query. */
static void srv_deferred_resume(http_req *r, void *ctx)
{
    (void)ctx;
    const char *q = http_req_query(r, "q");
    http_reply_json(r, 200, json_pack("{s:s, s:b}", "q", q ? q : "", "deferred", 1));
}

static void *srv_deferred_waker(void *arg)
{
    usleep(2000);
    http_req_wake(arg); /* the request is not ours any more */
    return NULL;
}

static void srv_deferred(http_req *r)
{
    pthread_t t;
    http_req_defer(r, srv_deferred_resume, NULL);
    if (pthread_create(&t, NULL, srv_deferred_waker, r) != 0) {
        http_req_wake(r);
        return;
    }
    pthread_detach(t);
}

static const http_route srv_routes[] = {
    {"GET", "/v1/deferred", srv_deferred, HTTP_RUN_LOOP},
    {"GET", "/v1/echo", srv_echo, HTTP_RUN_WORKER},
    {"POST", "/v1/echo", srv_echo, HTTP_RUN_WORKER},
    {"PUT", "/v1/echo", srv_echo, HTTP_RUN_WORKER},
    {"DELETE", "/v1/echo", srv_echo, HTTP_RUN_WORKER},
    {"GET", "/v1/status/{code}", srv_status, HTTP_RUN_WORKER},
    {"GET", "/v1/etag", srv_etag, HTTP_RUN_WORKER},
    {"GET", "/v1/slow", srv_slow, HTTP_RUN_WORKER},
    {"GET", "/v1/text", srv_text, HTTP_RUN_WORKER},
    {"GET", "/v1/bigint", srv_bigint, HTTP_RUN_WORKER},
};

static http_server *srv;
static metrics *srv_metrics;
static char srv_url[64];

/* A server of srv_routes with `loops` event loops (0: a thread per
 * connection); its base URL goes to url. */
static http_server *start_server(int loops, metrics *m, char *url, size_t urlsz)
{
    err e = ERR_INIT;
    http_server_config cfg = {
        .service = "test",
        .listen = "127.0.0.1:0",
        .api_token = TOKEN,
        .max_body = 1 << 20,
        .routes = srv_routes,
        .nroutes = sizeof srv_routes / sizeof srv_routes[0],
        .metrics = m,
        .loops = loops,
    };
    http_server *s = http_server_start(&cfg, &e);
    cr_assert_not_null(s, "%s", e.message);
    snprintf(url, urlsz, "http://127.0.0.1:%d/", http_server_port(s));
    return s;
}

static void setup(void)
{
    log_init("test", false, LOG_ERROR);
    srv_metrics = metrics_new();
    cr_assert_not_null(srv_metrics);
    srv = start_server(2, srv_metrics, srv_url, sizeof srv_url);
}

static void teardown(void)
{
    cr_assert(http_server_stop(srv, 2000));
    metrics_free(srv_metrics);
}

TestSuite(http_client, .init = setup, .fini = teardown, .timeout = 30);

static http_client *client(void)
{
    http_client *c = http_client_new(srv_url, TOKEN, 5000);
    cr_assert_not_null(c);
    return c;
}

Test(http_client, get_json_with_token_and_query)
{
    http_client *c = client();
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/v1/echo?q=a%20b"};
    cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(r.json);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "method")), "GET");
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "authorization")),
                     "Bearer " TOKEN);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "q")), "a b");
    cr_assert_null(json_object_get(r.json, "if_match"));
    cr_assert_str_eq(r.etag, "");
    cr_assert_eq(r.len, strlen(r.body));
    http_resp_free(&r);
    http_client_free(c);
}

Test(http_client, post_and_put_json_body_with_if_match)
{
    http_client *c = client();
    http_resp r;
    err e = ERR_INIT;
    json_t *body = json_pack("{s:i, s:[s,n]}", "offset", 42, "list", "x");
    http_call call = {.method = "POST", .path = "/v1/echo", .body = body};
    cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    cr_assert(json_equal(json_object_get(r.json, "body"), body), "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "content_type")),
                     "application/json");
    http_resp_free(&r);

    http_call put = {.method = "PUT", .path = "/v1/echo", .body = body, .if_match = "\"3\""};
    cr_assert(http_client_do(c, &put, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "method")), "PUT");
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "if_match")), "\"3\"");
    cr_assert(json_equal(json_object_get(r.json, "body"), body));
    http_resp_free(&r);

    http_call del = {.method = "DELETE", .path = "/v1/echo"};
    cr_assert(http_client_do(c, &del, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "method")), "DELETE");
    http_resp_free(&r);
    json_decref(body);
    http_client_free(c);
}

/* Issue 12: the client refused a page holding PostgreSQL's spelling of 1e20. */
Test(http_client, answers_may_hold_integers_past_int64)
{
    http_client *c = client();
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/v1/bigint"};
    cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
    cr_assert_not_null(r.json, "%s", r.body);
    cr_assert(json_is_real(json_object_get(r.json, "n")));
    cr_assert_eq(json_real_value(json_object_get(r.json, "n")), 1e20);
    cr_assert_eq(json_string_length(json_object_get(r.json, "s")), 3);
    http_resp_free(&r);
    http_client_free(c);
}

Test(http_client, answers_over_max_body_are_refused)
{
    http_client *c = client();
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/v1/echo?q=0123456789", .max_body = 16};
    cr_assert_not(http_client_do(c, &call, &r, &e));
    cr_assert_eq(e.code, ERR_PAYLOAD_TOO_LARGE);
    cr_assert(strstr(e.message, "larger than 16 bytes"), "%s", e.message);
    cr_assert_null(r.body);
    err_clear(&e);
    call.max_body = 0; /* the default cap */
    cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
    http_resp_free(&r);
    http_client_free(c);
}

Test(http_client, statuses_are_answers)
{
    http_client *c = client();
    err e = ERR_INIT;
    static const long codes[] = {201, 400, 404, 409, 500, 503};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char path[64];
        http_resp r;
        snprintf(path, sizeof path, "/v1/status/%ld", codes[i]);
        http_call call = {.method = "GET", .path = path};
        cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
        cr_assert_eq(r.status, codes[i]);
        cr_assert_eq(json_integer_value(json_object_get(r.json, "status")), codes[i]);
        http_resp_free(&r);
    }
    /* 204: no body */
    http_resp r;
    http_call call = {.method = "GET", .path = "/v1/status/204"};
    cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 204);
    cr_assert_null(r.json);
    cr_assert_not_null(r.body);
    cr_assert_eq(r.len, 0);
    http_resp_free(&r);
    /* unknown path: the server's 404 error body */
    http_call nf = {.method = "GET", .path = "/v1/nope"};
    cr_assert(http_client_do(c, &nf, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
                     "not_found");
    http_resp_free(&r);
    http_client_free(c);
}

Test(http_client, etag_and_raw_body)
{
    http_client *c = client();
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/v1/etag"};
    cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
    cr_assert_str_eq(r.etag, "\"7\"");
    http_resp_free(&r);

    http_call text = {.method = "GET", .path = "/v1/text"};
    cr_assert(http_client_do(c, &text, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    cr_assert_null(r.json);
    cr_assert_str_eq(r.body, "not json at all");
    cr_assert_str_eq(r.etag, "");
    http_resp_free(&r);
    http_client_free(c);
}

Test(http_client, token_absent_or_wrong_gives_401)
{
    http_client *none = http_client_new(srv_url, NULL, 5000);
    http_client *wrong = http_client_new(srv_url, "nope", 5000);
    cr_assert(none && wrong);
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/v1/echo"};
    cr_assert(http_client_do(none, &call, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 401);
    http_resp_free(&r);
    cr_assert(http_client_do(wrong, &call, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 401);
    http_resp_free(&r);
    /* /healthz is never behind the token */
    http_call hz = {.method = "GET", .path = "/healthz"};
    cr_assert(http_client_do(none, &hz, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    http_resp_free(&r);
    http_client_free(none);
    http_client_free(wrong);
}

Test(http_client, timeout_is_unavailable)
{
    http_client *c = client();
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/v1/slow", .timeout_ms = 200};
    double t0 = timefmt_mono();
    cr_assert_not(http_client_do(c, &call, &r, &e));
    double took = timefmt_mono() - t0;
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    cr_assert(strstr(e.message, "unreachable"), "%s", e.message);
    cr_assert(took < 1.0, "took %.3f s", took);
    cr_assert_eq(r.status, 0);
    cr_assert_null(r.body);
    cr_assert_null(r.json);
    err_clear(&e);
    /* the same client still works afterwards */
    http_call ok = {.method = "GET", .path = "/v1/echo"};
    cr_assert(http_client_do(c, &ok, &r, &e), "%s", e.message);
    cr_assert_eq(r.status, 200);
    http_resp_free(&r);
    /* the client's default time-out applies when the call gives none */
    http_client *quick = http_client_new(srv_url, TOKEN, 300);
    cr_assert_not_null(quick);
    http_call slow = {.method = "GET", .path = "/v1/slow"};
    cr_assert_not(http_client_do(quick, &slow, &r, &e));
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    err_clear(&e);
    http_client_free(quick);
    http_client_free(c);
}

Test(http_client, unreachable_port_is_unavailable)
{
    /* a port that was free a moment ago: nothing listens there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));

    http_client *c = http_client_new(url, NULL, 5000);
    cr_assert_not_null(c);
    http_resp r;
    err e = ERR_INIT;
    http_call call = {.method = "GET", .path = "/healthz"};
    cr_assert_not(http_client_do(c, &call, &r, &e));
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    cr_assert(strstr(e.message, "unreachable"), "%s", e.message);
    cr_assert(strstr(e.message, url), "%s", e.message);
    err_clear(&e);
    http_client_free(c);
}

Test(http_client, bad_base_urls)
{
    cr_assert_null(http_client_new("ftp://127.0.0.1", NULL, 1000));
    cr_assert_null(http_client_new("127.0.0.1:8080", NULL, 1000));
    cr_assert_null(http_client_new(NULL, NULL, 1000));
    http_client *c = http_client_new("HTTPS://example.invalid///", NULL, 1000);
    cr_assert_not_null(c);
    http_client_free(c);
}

Test(http_client, escape)
{
    buf b;
    buf_init(&b, 1024);
    cr_assert_eq(http_client_escape(&b, "a b/c?d=\xc3\xa9&x+y%~._-Z9"), 0);
    cr_assert_str_eq(b.data, "a%20b%2Fc%3Fd%3D%C3%A9%26x%2By%25~._-Z9");
    buf_free(&b);
    buf_init(&b, 4);
    cr_assert_eq(http_client_escape(&b, "abc"), 0);
    cr_assert_neq(http_client_escape(&b, "/"), 0); /* the cap */
    cr_assert_str_eq(b.data, "abc");
    buf_free(&b);
}

/* One client, several threads, many calls each. */
typedef struct worker {
    http_client *c;
    const char *path; /* "/v1/echo" or "/v1/deferred" */
    int ok;
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        char path[64];
        http_resp r;
        err e = ERR_INIT;
        snprintf(path, sizeof path, "%s?q=%d", w->path, i);
        http_call call = {.method = "GET", .path = path};
        if (!http_client_do(w->c, &call, &r, &e)) {
            err_clear(&e);
            continue;
        }
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        const char *q = json_string_value(json_object_get(r.json, "q"));
        if (r.status == 200 && q && strcmp(q, want) == 0)
            w->ok++;
        http_resp_free(&r);
    }
    return NULL;
}

/* N threads share one client, each making 50 calls to `path`; every call
 * must come back 200 with its own query. */
static void run_workers(const char *url, const char *path)
{
    http_client *c = http_client_new(url, TOKEN, 5000);
    cr_assert_not_null(c);
    enum { N = 8 };
    pthread_t t[N];
    worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (worker){.c = c, .path = path};
        cr_assert_eq(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].ok, 50, "%s, thread %d: %d of 50", path, i, w[i].ok);
    }
    http_client_free(c);
}

Test(http_client, shared_by_threads)
{
    run_workers(srv_url, "/v1/echo");
}

/* Many requests parked at once, each woken by a thread of its own, each
 * answered with its own query: no answer lost, swapped or doubled. */
Test(http_client, deferred_answers)
{
    run_workers(srv_url, "/v1/deferred");
}

/* The same on a server with a thread per connection, where the
 * connection's thread waits for the wake instead. */
Test(http_client, deferred_answers_thread_per_connection)
{
    char url[64];
    metrics *m = metrics_new();
    cr_assert_not_null(m);
    http_server *s = start_server(0, m, url, sizeof url);
    run_workers(url, "/v1/echo");
    run_workers(url, "/v1/deferred");
    cr_assert(http_server_stop(s, 2000));
    metrics_free(m);
}

/* A raw HTTP/1.1 server that answers every request with {} and counts the
 * connections it accepts: keep-alive means one connection for many calls. */
typedef struct raw_server {
    int fd;
    int port;
    int accepted;
    pthread_t thread;
} raw_server;

static void *raw_server_run(void *arg)
{
    raw_server *s = arg;
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        __atomic_add_fetch(&s->accepted, 1, __ATOMIC_SEQ_CST);
        char in[4096];
        size_t have = 0;
        for (;;) {
            ssize_t n = read(c, in + have, sizeof in - have - 1);
            if (n <= 0)
                break;
            have += (size_t)n;
            in[have] = '\0';
            char *end;
            while ((end = strstr(in, "\r\n\r\n")) != NULL) { /* one request, no body */
                size_t used = (size_t)(end + 4 - in);
                memmove(in, in + used, have - used + 1);
                have -= used;
                if (write(c, answer, sizeof answer - 1) < 0)
                    break;
            }
        }
        close(c);
    }
}

Test(http_client, connections_are_kept_alive)
{
    raw_server s = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(s.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(s.fd, 16), 0);
    cr_assert_eq(getsockname(s.fd, (struct sockaddr *)&sa, &sl), 0);
    cr_assert_eq(pthread_create(&s.thread, NULL, raw_server_run, &s), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));

    http_client *c = http_client_new(url, NULL, 5000);
    cr_assert_not_null(c);
    for (int i = 0; i < 20; i++) {
        http_resp r;
        err e = ERR_INIT;
        http_call call = {.method = "GET", .path = "/anything"};
        cr_assert(http_client_do(c, &call, &r, &e), "%s", e.message);
        cr_assert_eq(r.status, 200);
        cr_assert(json_is_object(r.json));
        http_resp_free(&r);
    }
    cr_assert_eq(__atomic_load_n(&s.accepted, __ATOMIC_SEQ_CST), 1,
                 "20 sequential calls used %d connections", s.accepted);
    http_client_free(c);
    shutdown(s.fd, SHUT_RDWR);
    close(s.fd);
    pthread_join(s.thread, NULL);
}
