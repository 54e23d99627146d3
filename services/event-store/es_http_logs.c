/*
 * es_http_logs.c - GET /v1/logs (a page of the application log, with long
 * poll) and GET /v1/logs/stream (the log as Server-Sent Events).
 *
 * Waiting never polls: a reader notes the log watch's generation, reads, and
 * if nothing matched waits for the generation to move (a local commit or a
 * PostgreSQL NOTIFY from another replica bumps it).
 *
 * Reads run where db_reads sends them (a standby when there is one). A
 * standby replays a commit a little after the primary told us of it: a
 * reader that finds nothing new, about to wait, first makes sure its
 * standby shows every entry the process knows of (db_reads_known_head),
 * else it would sleep through them until the next commit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "es_app.h"
#include "es_store.h"
#include "timefmt.h"
#include "validate.h"

#define ES_SSE_KEEPALIVE 10.0 /* seconds; SPEC: at least every 15 */
#define ES_SSE_PAGE 200
#define ES_SSE_RETRY 0.25        /* seconds between reads while the database is away */
#define ES_SSE_GIVE_UP 60.0      /* a stream ends after failing reads this long */
#define ES_LOG_CHUNK 32          /* entries of a /v1/logs page's first database read */
#define ES_LOG_PAGE_BYTES ((size_t)4 << 20) /* a /v1/logs page stops growing past this */

/* Reads from_id, selector and pipeline_id (shared by both endpoints). */
static bool es_log_query_parse(http_req *r, es_log_query *q, err *e)
{
    memset(q, 0, sizeof *q);
    if (!http_req_query_int(r, "from_id", 1, 0, INT64_MAX, &q->from_id, e))
        return false;
    if (q->from_id == 0)
        q->from_id = 1;
    const char *sel = http_req_query(r, "selector");
    if (sel && !validate_selector(sel, &q->sel)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "selector must be *, or ENTITY.EVENT where either side may be * "
                "(User.*, *.Created, com.acme.User.Updated), got '%.100s'",
                sel);
        return false;
    }
    q->pipeline = http_req_query(r, "pipeline_id");
    if (q->pipeline && !validate_entity_type(q->pipeline)) {
        err_set(e, ERR_INVALID_ARGUMENT, "pipeline_id must be an entity type, got '%.100s'",
                q->pipeline);
        return false;
    }
    return true;
}

/* One read of the log (on a worker: it may wait). It shows at least every
 * entry this process had acknowledged and, when it comes back empty at the
 * head (its reader is about to wait), every entry the process knows of. */
static bool es_log_read_once(es_app *app, const es_log_query *q, es_log_page *page, err *e)
{
    int64_t floor = db_reads_floor(app->reads);
    db_rconn c;
    if (db_reads_get(app->reads, true, &c, e) < 0)
        return false;
    for (;;) {
        bool ok = es_store_read_log(c.d, q, page, e);
        int64_t need = floor;
        if (ok && db_res_rows(page->rows) == 0 && page->at_head) {
            int64_t known = db_reads_known_head(app->reads);
            need = known > need ? known : need;
        }
        db_reads_next next = db_reads_after(app->reads, &c, ok, page->head_id, need, true, e);
        if (next != DB_READS_AGAIN) {
            db_reads_put(app->reads, &c);
            return next == DB_READS_KEEP && ok;
        }
        es_log_page_free(page);
    }
}

/* A long poll waits for the log watch to move past `gen` until `deadline`,
 * looking every ES_POLL_CHECK_S whether its client is still there (a client
 * that left would otherwise hold a worker until the deadline). False when
 * the service stops or the client left: answer at once. */
#define ES_POLL_CHECK_S 1.0
static bool es_log_wait(http_req *r, es_app *app, uint64_t gen, double deadline)
{
    for (;;) {
        double now = timefmt_mono();
        double until = now + ES_POLL_CHECK_S < deadline ? now + ES_POLL_CHECK_S : deadline;
        if (!watch_wait(app->log_watch, gen, until))
            return false;
        if (watch_gen(app->log_watch) != gen || timefmt_mono() >= deadline)
            return true;
        if (http_req_client_gone(r))
            return false;
    }
}

/*
 * Renders the answer of GET /v1/logs into out, from `page` (the first read,
 * of at most ES_LOG_CHUNK entries) on: while the client wants more and
 * the reads come back full, it reads on from next_from_id, as many entries
 * at a time as the entries so far say fit in what is left of
 * ES_LOG_PAGE_BYTES. It stops once the answer holds ES_LOG_PAGE_BYTES
 * (after one entry at least), so that neither the rows in hand nor an
 * answer a client does not read grow with the size of the entries:
 * next_from_id says where the rest begins. A failed follow-on read ends the
 * page with what it has. False on OOM.
 */
static bool es_log_render_page(es_app *app, es_log_query *q, int64_t want, es_log_page *page,
                               buf *out)
{
    int64_t rendered = 0, next = page->next_from_id, head = page->head_id;
    bool ok = buf_puts(out, "{\"results\":[") == 0;
    while (ok) {
        size_t n = db_res_rows(page->rows);
        bool full = false;
        for (size_t i = 0; ok && i < n && !full; i++) {
            if (rendered > 0 && out->len >= ES_LOG_PAGE_BYTES) {
                next = db_res_int(page->rows, i, 0);
                full = true;
                break;
            }
            ok = (rendered == 0 || buf_puts(out, ",") == 0) &&
                 es_log_render_entry(out, page->rows, i) == 0;
            rendered++;
        }
        if (!full)
            next = page->next_from_id;
        if (full || (int64_t)n < q->size || rendered >= want)
            break;
        err e = ERR_INIT;
        size_t avg = out->len / (size_t)rendered + 1;
        int64_t fit = (int64_t)((ES_LOG_PAGE_BYTES - out->len) / avg) + 1;
        q->from_id = next;
        q->size = want - rendered < fit ? want - rendered : fit;
        es_log_page_free(page);
        if (!es_log_read_once(app, q, page, &e)) {
            err_clear(&e);
            break;
        }
        head = page->head_id;
    }
    return ok && buf_printf(out, "],\"next_from_id\":%lld,\"head_id\":%lld}", (long long)next,
                            (long long)head) == 0;
}

void es_http_read_log(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    es_log_query q;
    es_log_page page = {0};
    int64_t wait = 0;
    buf out;
    buf_init(&out, (size_t)1 << 30);

    if (!es_log_query_parse(r, &q, &e) ||
        !http_req_query_bool(r, "skip_payload", false, &q.skip_payload, &e) ||
        !http_req_query_int(r, "size", 20, 1, 1000, &q.size, &e) ||
        !http_req_query_int(r, "wait", 0, 0, 60, &wait, &e))
        goto fail;
    int64_t want = q.size;
    if (q.size > ES_LOG_CHUNK)
        q.size = ES_LOG_CHUNK;

    double deadline = timefmt_mono() + (double)wait;
    for (;;) {
        uint64_t gen = watch_gen(app->log_watch);
        if (!es_log_read_once(app, &q, &page, &e))
            goto fail;
        if (db_res_rows(page.rows) > 0 || !page.at_head || wait == 0 ||
            timefmt_mono() >= deadline)
            break;
        es_log_page_free(&page);
        if (!es_log_wait(r, app, gen, deadline))
            wait = 0; /* stopping, or nobody waits: answer with what there is now */
    }

    if (!es_log_render_page(app, &q, want, &page, &out)) {
        err_set(&e, ERR_INTERNAL, "response too large");
        goto fail;
    }
    size_t len = 0;
    char *text = buf_take(&out, &len);
    http_reply_json_text(r, 200, text, len);
    goto done;
fail:
    http_reply_err(r, &e);
done:
    es_log_page_free(&page);
    buf_free(&out);
    err_clear(&e);
}

/* ------------------------------------------------------------------------ */
/* Server-Sent Events                                                       */

typedef struct es_sse {
    es_app *app;
    es_log_query q;
    char *pipeline; /* owned copy: the request is gone while we stream */
    buf pending;
    size_t off;
    double last_sent;
    double failing_since; /* 0, or when reads began to fail */
} es_sse;

static void es_sse_free(void *ctx)
{
    es_sse *s = ctx;
    buf_free(&s->pending);
    free(s->pipeline);
    free(s);
}

/* Reads the next page into s->pending. Returns 1 when something was
 * queued, 0 when the scan is at the head with nothing new, -2 when the read
 * failed (the database is away), -1 when an entry cannot be sent. */
static int es_sse_fetch(es_sse *s)
{
    es_log_page page = {0};
    err e = ERR_INIT;
    s->q.size = ES_SSE_PAGE;
    if (!es_log_read_once(s->app, &s->q, &page, &e)) {
        err_clear(&e);
        return -2;
    }
    int rc = 0;
    int64_t last = 0;
    for (size_t i = 0; i < db_res_rows(page.rows); i++) {
        size_t mark = s->pending.len;
        if (buf_printf(&s->pending, "id: %lld\ndata: ", (long long)db_res_int(page.rows, i, 0)) ||
            es_log_render_entry(&s->pending, page.rows, i) || buf_puts(&s->pending, "\n\n")) {
            /* The buffer is full: drop the partial entry. With entries queued
             * before it, send those and resume at this one; else give up. */
            s->pending.len = mark;
            if (s->pending.data)
                s->pending.data[mark] = '\0';
            if (rc == 1) {
                s->q.from_id = last + 1;
                es_log_page_free(&page);
                return 1;
            }
            rc = -1;
            break;
        }
        last = db_res_int(page.rows, i, 0);
        rc = 1;
    }
    if (rc >= 0) {
        bool moved = page.next_from_id != s->q.from_id;
        s->q.from_id = page.next_from_id;
        if (rc == 0 && !page.at_head && moved)
            rc = 2; /* nothing matched in this stretch; keep scanning */
    }
    es_log_page_free(&page);
    return rc;
}

static ssize_t es_sse_fill(void *ctx, char *out, size_t max)
{
    es_sse *s = ctx;
    for (;;) {
        if (s->off < s->pending.len) {
            size_t n = s->pending.len - s->off;
            if (n > max)
                n = max;
            memcpy(out, s->pending.data + s->off, n);
            s->off += n;
            if (s->off == s->pending.len) {
                buf_reset(&s->pending);
                s->off = 0;
            }
            s->last_sent = timefmt_mono();
            return (ssize_t)n;
        }
        if (watch_stopped(s->app->log_watch))
            return -1;
        uint64_t gen = watch_gen(s->app->log_watch);
        int rc = es_sse_fetch(s);
        double now = timefmt_mono();
        if (rc == -1)
            return -1;
        if (rc < 0) {
            /* The database is away (a failover): keep the stream and read
             * again shortly. Past ES_SSE_GIVE_UP, end it: the client
             * reconnects with Last-Event-ID. */
            if (!s->failing_since)
                s->failing_since = now;
            else if (now - s->failing_since > ES_SSE_GIVE_UP)
                return -1;
        } else {
            s->failing_since = 0;
        }
        if (rc > 0)
            continue;
        double deadline = s->last_sent + ES_SSE_KEEPALIVE;
        if (rc < 0 && now + ES_SSE_RETRY < deadline)
            deadline = now + ES_SSE_RETRY;
        if (timefmt_mono() >= deadline) {
            if (buf_puts(&s->pending, ": keepalive\n\n"))
                return -1;
            continue;
        }
        if (!watch_wait(s->app->log_watch, gen, deadline))
            return -1;
    }
}

void es_http_log_sse(http_req *r)
{
    es_app *app = http_req_app(r);
    err e = ERR_INIT;
    es_sse *s = calloc(1, sizeof *s);
    if (!s) {
        http_reply_error(r, ERR_INTERNAL, "out of memory");
        return;
    }
    buf_init(&s->pending, (size_t)64 << 20);
    s->app = app;
    if (!es_log_query_parse(r, &s->q, &e))
        goto fail;
    const char *last = http_req_header(r, "Last-Event-ID");
    if (last) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(last, &end, 10);
        if (!*last || *end || errno || v < 0 || v == INT64_MAX) {
            err_set(&e, ERR_INVALID_ARGUMENT, "Last-Event-ID must be a log id, got '%.64s'",
                    last);
            goto fail;
        }
        s->q.from_id = v + 1;
    }
    if (s->q.pipeline) {
        s->pipeline = strdup(s->q.pipeline);
        if (!s->pipeline) {
            err_set(&e, ERR_INTERNAL, "out of memory");
            goto fail;
        }
        s->q.pipeline = s->pipeline;
    }
    /* A first comment makes the headers go out at once (EventSource onopen). */
    if (buf_puts(&s->pending, ": eskit log stream\nretry: 1000\n\n")) {
        err_set(&e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    s->last_sent = timefmt_mono();
    http_reply_stream(r, 200, "text/event-stream", es_sse_fill, s, es_sse_free);
    return;
fail:
    http_reply_err(r, &e);
    err_clear(&e);
    es_sse_free(s);
}
