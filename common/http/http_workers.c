/*
 * http_workers.c - where handlers run besides the event loops of
 * http_server.c: worker threads, streamed responses, and deferred answers
 * (parked on a loop, or waited for on a connection's own thread).
 *
 * An event loop reads requests and writes responses for many connections;
 * it must not wait. A handler that may (a long poll, an HTTP call to
 * another service, a read without a free connection) runs here instead: the
 * loop suspends the connection and queues the request; a worker runs the
 * handler and resumes the connection, and the loop sends the answer. There
 * are as many workers as requests need at once: a thread is started when
 * none is idle (up to the connection limit), and kept for the next request.
 *
 * A streamed response (SSE) keeps its worker: after the handler returned,
 * the worker calls the stream's fill function (which may block) and passes
 * the bytes to the loop through a small buffer; the loop's reader suspends
 * the connection when the buffer is empty and the worker resumes it. The
 * answer to a HEAD is the headers alone.
 */
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "log.h"

#define HTTP_STREAM_CHUNK (16 * 1024) /* bytes asked of fill at a time */
#define HTTP_STREAM_MAX (256 * 1024)  /* bytes buffered for a slow client */

struct http_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_req *head, *tail;
    int queued, idle, threads, max;
    bool stopping;
    pthread_t *tids; /* every thread started, for the join */
};

/* ------------------------------------------------------------------------ */
/* streams                                                                 */

typedef struct http_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the pump waits here for room */
    http_stream_fill fill;
    void *ctx;
    void (*done)(void *ctx);
    http_server *srv;
    struct MHD_Connection *conn;
    char *buf;
    size_t off, len; /* buf[off, len) is waiting to be sent */
    bool eof;        /* fill ended the stream */
    bool gone;       /* MHD let go of the response: the client is gone */
    bool waiting;    /* the reader suspended the connection for want of bytes */
    int refs;        /* the response and the pump */
} http_stream;

static void http_stream_release(http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->buf);
    free(s);
}

/* MHD asks for bytes (loop thread). */
static ssize_t http_stream_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    http_stream *s = cls;
    (void)pos;
    pthread_mutex_lock(&s->mu);
    if (s->len > s->off) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(out, s->buf + s->off, n);
        s->off += n;
        if (s->off == s->len)
            s->off = s->len = 0;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return (ssize_t)n;
    }
    if (s->eof) {
        pthread_mutex_unlock(&s->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing yet: park the connection until the pump has bytes. */
    s->waiting = true;
    http_conn_suspend(s->srv, s->conn);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* MHD destroyed the response (loop thread): the connection is over. */
static void http_stream_gone(void *cls)
{
    http_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    s->gone = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    http_stream_release(s);
}

/* With a thread per connection, MHD's reader runs on the connection's own
 * thread and may block in fill. */
typedef struct http_direct {
    http_stream_fill fill;
    void *ctx;
    void (*done)(void *ctx);
} http_direct;

static ssize_t http_direct_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    http_direct *d = cls;
    (void)pos;
    ssize_t n = d->fill(d->ctx, out, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : n;
}

static void http_direct_free(void *cls)
{
    http_direct *d = cls;
    if (d->done)
        d->done(d->ctx);
    free(d);
}

/* The reader of the answer to a HEAD: there is no body. */
static ssize_t http_no_body(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)cls;
    (void)pos;
    (void)out;
    (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* The answer to a HEAD of a stream: the headers a GET gets, no body, and
 * fill never called (done is, when MHD lets go of the response). It is
 * neither chunked (MHD 0.9.75 sends a chunked response's last chunk even
 * after the headers of a HEAD) nor of a length: the connection closes. */
static struct MHD_Response *http_head_response(http_direct *d)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, http_no_body, d,
                                          http_direct_free);
    if (!resp)
        return NULL;
    if (MHD_set_response_options(resp, MHD_RF_HTTP_1_0_COMPATIBLE_STRICT, MHD_RO_END) !=
        MHD_YES) {
        d->done = NULL; /* the caller calls it */
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

struct MHD_Response *http_stream_response(http_req *r, http_stream_fill fill, void *ctx,
                                          void (*done)(void *ctx))
{
    bool head = strcmp(r->method, "HEAD") == 0;
    if (!r->srv->loop || head) {
        http_direct *d = calloc(1, sizeof *d);
        if (!d)
            return NULL;
        *d = (http_direct){fill, ctx, done};
        if (head)
            return http_head_response(d);
        struct MHD_Response *resp = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, HTTP_STREAM_CHUNK, http_direct_reader, d, http_direct_free);
        if (!resp)
            free(d);
        return resp;
    }
    http_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->buf = malloc(HTTP_STREAM_MAX))) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->fill = fill;
    s->ctx = ctx;
    s->done = done;
    s->srv = r->srv;
    s->conn = r->conn;
    s->refs = 2;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, HTTP_STREAM_CHUNK, http_stream_reader, s, http_stream_gone);
    if (!resp) {
        s->refs = 1;
        http_stream_release(s);
        return NULL;
    }
    r->stream = s;
    return resp;
}

/* Calls fill until the stream ends or the client goes (worker thread). */
static void http_stream_pump(http_stream *s)
{
    char *chunk = malloc(HTTP_STREAM_CHUNK);
    for (bool end = chunk == NULL; !end;) {
        ssize_t n = s->fill(s->ctx, chunk, HTTP_STREAM_CHUNK);
        pthread_mutex_lock(&s->mu);
        while (n > 0 && !s->gone && s->len + (size_t)n > HTTP_STREAM_MAX)
            pthread_cond_wait(&s->cv, &s->mu);
        if (n > 0 && !s->gone) {
            memcpy(s->buf + s->len, chunk, (size_t)n);
            s->len += (size_t)n;
        }
        if (n <= 0)
            s->eof = true;
        end = s->eof || s->gone;
        if (s->waiting) {
            s->waiting = false;
            http_conn_resume(s->srv, s->conn);
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (!chunk) { /* out of memory: end the stream */
        pthread_mutex_lock(&s->mu);
        s->eof = true;
        if (s->waiting) {
            s->waiting = false;
            http_conn_resume(s->srv, s->conn);
        }
        pthread_mutex_unlock(&s->mu);
    }
    free(chunk);
    if (s->done)
        s->done(s->ctx);
    http_stream_release(s);
}

/* ------------------------------------------------------------------------ */
/* deferred answers, and quick reads that go to a worker                   */

static _Thread_local http_waiter http_thread_waiter = {PTHREAD_MUTEX_INITIALIZER,
                                                         PTHREAD_COND_INITIALIZER};

void http_req_defer(http_req *r, void (*resume)(http_req *r, void *ctx), void *ctx)
{
    r->resume = resume;
    r->resume_ctx = ctx;
    if (r->srv->loop) /* park the connection */
        http_conn_suspend(r->srv, r->conn);
    else /* this thread will wait (http_wait_deferred) */
        r->waiter = &http_thread_waiter;
}

bool http_req_can_defer(const http_req *r)
{
    return r->on_loop || !r->srv->loop;
}

bool http_req_to_worker(http_req *r)
{
    if (!r->on_loop || r->match.route->run != HTTP_RUN_QUICK)
        return false;
    r->to_worker = true;
    return true;
}

void http_req_wake(http_req *r)
{
    http_server *s = r->srv;
    if (s->loop) {
        atomic_store(&r->woken, true);
        http_conn_resume(r->srv, r->conn);
        return;
    }
    http_waiter *w = r->waiter;
    pthread_mutex_lock(&w->mu);
    atomic_store(&r->woken, true);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* With a thread per connection: on the thread that deferred (its waiter). */
void http_wait_deferred(http_req *r)
{
    while (!r->resp && r->resume) {
        http_waiter *w = r->waiter;
        pthread_mutex_lock(&w->mu);
        while (!atomic_load(&r->woken))
            pthread_cond_wait(&w->cv, &w->mu);
        atomic_store(&r->woken, false);
        pthread_mutex_unlock(&w->mu);
        http_resume_fn fn = r->resume;
        r->resume = NULL;
        fn(r, r->resume_ctx);
    }
    if (!r->resp)
        http_reply_error(r, ERR_INTERNAL, "the handler produced no response");
}

/* ------------------------------------------------------------------------ */
/* the pool                                                                */

/* One request: the handler, then the loop gets the connection back. A
 * stream's pump runs after that, on this thread. r may be gone once the
 * connection is resumed. */
static void http_worker_run(http_req *r)
{
    http_dispatch(r);
    http_stream *s = r->stream;
    http_conn_resume(r->srv, r->conn);
    if (s)
        http_stream_pump(s);
}

static void *http_worker_main(void *arg)
{
    http_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->head)
            break;
        http_req *r = p->head;
        p->head = r->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        http_worker_run(r);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

http_pool *http_pool_new(int max)
{
    http_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->tids = calloc((size_t)max, sizeof *p->tids))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->max = max;
    return p;
}

bool http_pool_submit(http_pool *p, http_req *r)
{
    bool ok = true;
    r->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return false;
    }
    if (p->idle <= p->queued) { /* every idle thread has work already: start one */
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, (size_t)4 << 20);
        /* Without a new thread the request would wait for a busy one,
         * maybe a stream's that lasts as long as its client: refuse it. */
        if (p->threads < p->max &&
            pthread_create(&p->tids[p->threads], &attr, http_worker_main, p) == 0)
            p->threads++;
        else
            ok = false;
        pthread_attr_destroy(&attr);
    }
    if (ok) {
        if (p->tail)
            p->tail->next = r;
        else
            p->head = r;
        p->tail = r;
        p->queued++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (!ok)
        log_error("http: cannot start a worker thread");
    return ok;
}

void http_pool_stop(http_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    bool joined = p->stopping;
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    int n = p->threads;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < n && !joined; i++)
        pthread_join(p->tids[i], NULL);
}

void http_pool_free(http_pool *p)
{
    if (!p)
        return;
    http_pool_stop(p);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->tids);
    free(p);
}
