/*
 * es_http_events.c - POST /v1/events (append) and GET /v1/events/{id}
 * (read a stream, forward or backward).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "es_app.h"
#include "service.h"
#include "es_event.h"
#include "es_read.h"
#include "es_store.h"
#include "log.h"

/* An append between its request and its commit. */
typedef struct es_pending {
    es_event *evs;
    size_t n;
    bool batch;
    es_append_job *job; /* NULL: not queued, see e */
    err e;
} es_pending;

static void es_http_append_wake(void *req)
{
    http_req_wake(req);
}

/* On the event loop, once the committer is done with the append. */
static void es_http_append_done(http_req *r, void *ctx)
{
    es_app *app = http_req_app(r);
    es_pending *p = ctx;
    err e = ERR_INIT;
    buf out;
    buf_init(&out, (size_t)1 << 30);
    bool replayed = false;

    if (!p->job)
        err_move(&e, &p->e);
    else if (es_append_finish(p->job, &replayed, &e)) {
        if (!replayed)
            metrics_add(app->m_appended, NULL, (double)p->n);
        if (es_event_render_appended(&out, p->evs, p->n, p->batch) == 0) {
            size_t len = 0;
            char *text = buf_take(&out, &len);
            /* a retry answers as the first time, but with 200: nothing new */
            http_reply_json_text(r, replayed ? 200 : 201, text, len);
            goto done;
        }
        err_set(&e, ERR_INTERNAL, "response too large");
    }
    http_reply_err(r, &e);
done:
    err_clear(&e);
    buf_free(&out);
    free(p->evs);
    free(p);
}

/* HTTP_RUN_LOOP: parse and check, queue the events for the committer, and
 * answer when it wakes us (on an event loop no thread waits for the commit;
 * with a thread per connection, that thread does). */
void es_http_append(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    es_pending *p = NULL;
    es_event *evs = NULL;
    size_t n = 0;
    bool batch = false;

    json_t *body = http_req_json(r, &e);
    if (!body || !(evs = es_event_parse_request(body, &n, &batch, &e)))
        goto fail;
    if (!(p = calloc(1, sizeof *p))) {
        err_set(&e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    *p = (es_pending){.evs = evs, .n = n, .batch = batch, .e = ERR_INIT};
    http_req_defer(r, es_http_append_done, p);
    p->job = es_append_submit(app->committer, evs, n, es_http_append_wake, r, &p->e);
    if (!p->job)
        http_req_wake(r); /* es_http_append_done answers with p->e */
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
    free(evs);
}

static void es_http_read_wake(void *req)
{
    http_req_wake(req);
}

/* Once the stream is rendered (or the read failed): where the handler ran,
 * or on the loop (or the connection's thread) when a reader wakes us. */
static void es_http_read_done(http_req *r, void *ctx)
{
    es_read_job *j = ctx;
    if (j->q.ok) {
        size_t len = 0;
        char *text = buf_take(&j->q.out, &len);
        http_reply_json_text(r, 200, text, len);
    } else {
        http_reply_err(r, &j->q.e);
    }
    err_clear(&j->q.e);
    buf_free(&j->q.out);
    free(j);
}

/* HTTP_RUN_QUICK: check the query, then (es_read.h) a long read runs alone
 * on a thread that may wait (from a loop: on a worker); a read that finds
 * no other under way runs here; any other read is queued for the readers
 * and answered when one wakes us. */
void es_http_read_stream(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t from = 1, to = INT64_MAX, limit = 10000;
    es_read_job *j = NULL;

    const char *id = service_req_id(r, "originator_id");
    if (!id)
        return;
    /* backward: from the newest (from_version) down to to_version */
    const char *dir = http_req_query(r, "direction");
    bool back = dir && strcmp(dir, "backward") == 0;
    if (dir && !back && strcmp(dir, "forward") != 0) {
        err_set(&e, ERR_INVALID_ARGUMENT, "direction must be forward or backward");
        goto fail;
    }
    if (!http_req_query_int(r, "from_version", back ? INT64_MAX : 1, 1, INT64_MAX, &from, &e) ||
        !http_req_query_int(r, "to_version", back ? 1 : INT64_MAX, 1, INT64_MAX, &to, &e) ||
        !http_req_query_int(r, "limit", 10000, 1, 10000, &limit, &e))
        goto fail;
    if (!(j = calloc(1, sizeof *j))) {
        err_set(&e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    j->q = (es_stream_read){.id = id, .from = from, .to = to, .limit = limit, .backward = back};
    if (es_read_big(app->reader, &j->q) || !http_req_can_defer(r)) {
        if (http_req_to_worker(r)) { /* it runs again on a worker */
            free(j);
            return;
        }
        log_debug("read: %s alone, on a thread that may wait", id);
        es_read_wait(app->reader, &j->q);
        es_http_read_done(r, j);
        return;
    }
    if (es_read_now(app->reader, &j->q)) {
        es_http_read_done(r, j);
        return;
    }
    j->wake = es_http_read_wake;
    j->ctx = r;
    http_req_defer(r, es_http_read_done, j);
    if (!es_read_submit(app->reader, j, &e)) {
        err_move(&j->q.e, &e);
        http_req_wake(r); /* es_http_read_done answers with j->q.e */
    }
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
}
