/*
 * consumer.c - the log-reading loop of consumer.h: stored offset, long poll,
 * callback, compare-and-set save, back-off, a page size that follows the body
 * cap, and the state other threads read for metrics and /readyz.
 *
 * The loop is a small state machine run by one thread. Each turn does one
 * step: load the stored offset (when not known), save a pending offset
 * (after a handled batch), or read the next page of the log. A step that
 * fails is counted and retried after a back-off sleep on the stop watch (so
 * consumer_stop() cuts every sleep short); when it did not learn the log head
 * itself, a probe asks for it, so the lag of a stuck consumer keeps growing.
 */
#include "consumer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http_client.h"
#include "log.h"
#include "timefmt.h"
#include "validate.h"
#include "watch.h"

#define CONSUMER_BACKOFF_MIN_MS 100
#define CONSUMER_BACKOFF_MAX_MS 5000
#define CONSUMER_READY_TIMEOUT_MS 1000
#define CONSUMER_PROBE_TIMEOUT_MS 1000 /* the head probe after a failed step */
#define CONSUMER_LOG_EVERY_S 30.0      /* repeated failures: one log line per period */
#define CONSUMER_STUCK_S 30            /* SPEC §6 */

struct consumer {
    /* configuration (owned copies) */
    char *name;
    char *selector;
    char *pipeline_id;
    int batch_size, wait_s, timeout_ms, stuck_after_s;
    bool skip_payload;
    size_t max_page; /* the body cap of a log read */
    consumer_batch_fn on_batch;
    consumer_error_fn on_error;
    void *ctx;

    http_client *es; /* the event store */
    http_client *cs; /* the consumer store */
    watch *stop;     /* stopped by consumer_stop(); back-off sleeps wait on it */
    pthread_t thread;
    bool started;

    /* loop-private */
    bool have_offset;
    int64_t offset;   /* the stored offset, as the loop knows it */
    int64_t pending;  /* an offset to save (> offset), or -1 */
    int page;         /* entries per read now, 1..batch_size */
    int failures;     /* consecutive failed steps */
    double last_logged;
    bool warned_head; /* said once that the log head is behind the offset */
    bool head_fresh;  /* the current step learned the head itself */
    bool said_stuck;  /* the log says the consumer is stuck */

    /* shared with other threads, under mu */
    pthread_mutex_t mu;
    consumer_state st;    /* lag, progress_age_s and stuck are filled on reading */
    double last_progress; /* timefmt_mono() */
};

static char *consumer_strdup(const char *s, bool *oom)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

consumer *consumer_new(const consumer_config *cfg, err *e)
{
    consumer *c = NULL;
    bool oom = false;

    if (!cfg->name || !validate_id(cfg->name)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "consumer name must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -");
        return NULL;
    }
    if (!cfg->on_batch) {
        err_set(e, ERR_INVALID_ARGUMENT, "consumer needs a batch callback");
        return NULL;
    }
    if (cfg->batch_size < 0 || cfg->batch_size > 1000 || cfg->wait_s < 0 || cfg->wait_s > 60 ||
        cfg->timeout_ms < 0 || cfg->stuck_after_s < 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "consumer batch size must be 1 to 1000, wait 1 to 60 seconds, and time-outs "
                "positive");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    pthread_mutex_init(&c->mu, NULL);
    c->batch_size = cfg->batch_size ? cfg->batch_size : 100;
    c->wait_s = cfg->wait_s ? cfg->wait_s : 2;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    c->stuck_after_s = cfg->stuck_after_s ? cfg->stuck_after_s : CONSUMER_STUCK_S;
    c->skip_payload = cfg->skip_payload;
    c->max_page = cfg->max_page_bytes ? cfg->max_page_bytes : HTTP_CLIENT_BODY_MAX;
    c->page = c->batch_size;
    c->on_batch = cfg->on_batch;
    c->on_error = cfg->on_error;
    c->ctx = cfg->ctx;
    c->pending = -1;
    c->st.offset = -1;
    c->st.head_id = -1;
    c->st.page_size = c->page;
    c->last_progress = timefmt_mono();
    c->name = consumer_strdup(cfg->name, &oom);
    c->selector = consumer_strdup(cfg->selector, &oom);
    c->pipeline_id = consumer_strdup(cfg->pipeline_id, &oom);
    c->stop = watch_new();
    if (oom || !c->stop)
        goto oom;
    c->es = http_client_new(cfg->event_store_url ? cfg->event_store_url : "", cfg->token,
                            c->timeout_ms);
    if (!c->es) {
        err_set(e, ERR_INVALID_ARGUMENT, "event store URL must be http://... or https://..., "
                "got '%.200s'", cfg->event_store_url ? cfg->event_store_url : "");
        goto fail;
    }
    c->cs = http_client_new(cfg->consumer_store_url ? cfg->consumer_store_url : "", cfg->token,
                            c->timeout_ms);
    if (!c->cs) {
        err_set(e, ERR_INVALID_ARGUMENT, "consumer store URL must be http://... or "
                "https://..., got '%.200s'", cfg->consumer_store_url ? cfg->consumer_store_url : "");
        goto fail;
    }
    return c;
oom:
    err_set(e, ERR_INTERNAL, "out of memory");
fail:
    consumer_free(c);
    return NULL;
}

void consumer_stop(consumer *c)
{
    if (c)
        watch_stop(c->stop);
}

void consumer_free(consumer *c)
{
    if (!c)
        return;
    if (c->stop)
        watch_stop(c->stop);
    if (c->started)
        pthread_join(c->thread, NULL);
    http_client_free(c->es);
    http_client_free(c->cs);
    watch_free(c->stop);
    pthread_mutex_destroy(&c->mu);
    free(c->name);
    free(c->selector);
    free(c->pipeline_id);
    free(c);
}

void consumer_state_get(consumer *c, consumer_state *out)
{
    double now = timefmt_mono();
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    int64_t offset = out->offset > 0 ? out->offset : 0;
    out->lag = out->head_id > offset ? out->head_id - offset : 0;
    out->progress_age_s = now - c->last_progress;
    out->stuck = out->lag > 0 && out->progress_age_s >= (double)c->stuck_after_s;
    pthread_mutex_unlock(&c->mu);
}

bool consumer_stuck(consumer *c, err *e)
{
    consumer_state s;
    consumer_state_get(c, &s);
    if (s.stuck && e)
        err_set(e, ERR_UNAVAILABLE, "consumer %s is stuck: %lld entries behind the log head "
                "%lld (offset %lld) and has not advanced for %.0f s%s%s", c->name,
                (long long)s.lag, (long long)s.head_id, (long long)(s.offset > 0 ? s.offset : 0),
                s.progress_age_s, s.last_error[0] ? "; last failure: " : "", s.last_error);
    return s.stuck;
}

static void consumer_set_health(consumer *c, consumer_upstream u, bool up)
{
    pthread_mutex_lock(&c->mu);
    if (u == CONSUMER_EVENT_STORE)
        c->st.event_store = up ? CONSUMER_HEALTH_UP : CONSUMER_HEALTH_DOWN;
    else
        c->st.consumer_store = up ? CONSUMER_HEALTH_UP : CONSUMER_HEALTH_DOWN;
    pthread_mutex_unlock(&c->mu);
}

/* The offset as stored; a move forward is progress. */
static void consumer_set_offset(consumer *c, int64_t offset)
{
    bool forward = offset > c->offset;
    c->offset = offset;
    pthread_mutex_lock(&c->mu);
    c->st.offset = offset;
    if (forward)
        c->last_progress = timefmt_mono();
    pthread_mutex_unlock(&c->mu);
}

/* A head id the event store answered; at (or behind) the head is progress:
 * there was nothing to advance to. */
static void consumer_set_head(consumer *c, int64_t head_id)
{
    c->head_fresh = true;
    pthread_mutex_lock(&c->mu);
    c->st.head_id = head_id;
    if (c->have_offset && head_id <= c->offset)
        c->last_progress = timefmt_mono();
    pthread_mutex_unlock(&c->mu);
}

static void consumer_set_page(consumer *c, int page)
{
    c->page = page;
    pthread_mutex_lock(&c->mu);
    c->st.page_size = page;
    pthread_mutex_unlock(&c->mu);
}

/* Prefixes e's message with what the step was doing ("saving offset 9"). */
static void consumer_explain(err *e, const char *what)
{
    char msg[sizeof e->message];
    memcpy(msg, e->message, sizeof msg);
    err_set(e, e->code != ERR_NONE ? e->code : ERR_INTERNAL, "%s: %s", what, msg);
}

/* Fills e from an answer that was not the one expected; the upstream counts
 * as down (it cannot serve us). */
static void consumer_bad_answer(consumer *c, consumer_upstream u, const http_resp *r, err *e)
{
    const char *msg = json_string_value(
        json_object_get(json_object_get(r->json, "error"), "message"));
    err_set(e, r->status >= 500 ? ERR_UNAVAILABLE : ERR_INTERNAL, "the %s answered %ld%s%.300s",
            u == CONSUMER_EVENT_STORE ? "event store" : "consumer store", r->status,
            msg ? ": " : "", msg ? msg : "");
    consumer_set_health(c, u, false);
}

/* The path /v1/consumers/{name}. Returns NULL on OOM; the caller frees. */
static char *consumer_path(consumer *c)
{
    buf b;
    buf_init(&b, 4096);
    if (buf_puts(&b, "/v1/consumers/") || http_client_escape(&b, c->name)) {
        buf_free(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* Step 1: GET the stored offset (404: 0). */
static bool consumer_load_offset(consumer *c, err *e)
{
    http_resp r = {0};
    bool ok = false;
    char *path = consumer_path(c);
    if (!path) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    http_call call = {.method = "GET", .path = path};
    if (!http_client_do(c->cs, &call, &r, e)) {
        consumer_set_health(c, CONSUMER_CONSUMER_STORE, false);
        goto done;
    }
    if (r.status == 404) {
        consumer_set_offset(c, 0);
    } else if (r.status == 200) {
        json_t *off = json_object_get(r.json, "offset");
        if (!json_is_integer(off) || json_integer_value(off) < 0) {
            err_set(e, ERR_INTERNAL, "the consumer store answered without a valid offset: "
                    "%.200s", r.body);
            consumer_set_health(c, CONSUMER_CONSUMER_STORE, false);
            goto done;
        }
        consumer_set_offset(c, (int64_t)json_integer_value(off));
    } else {
        consumer_bad_answer(c, CONSUMER_CONSUMER_STORE, &r, e);
        goto done;
    }
    consumer_set_health(c, CONSUMER_CONSUMER_STORE, true);
    c->have_offset = true;
    if (c->pending <= c->offset)
        c->pending = -1;
    log_info("consumer %s: stored offset %lld", c->name, (long long)c->offset);
    ok = true;
done:
    if (!ok)
        consumer_explain(e, "reading the stored offset");
    http_resp_free(&r);
    free(path);
    return ok;
}

/* Step 2: PUT the pending offset, compare-and-set on the known one. A 409
 * is no failure: the offset is read again. */
static bool consumer_save_offset(consumer *c, err *e)
{
    http_resp r = {0};
    bool ok = false;
    char *path = consumer_path(c);
    json_t *body = json_pack("{s:I, s:I}", "offset", (json_int_t)c->pending, "expected_offset",
                             (json_int_t)c->offset);
    if (!path || !body) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    http_call call = {.method = "PUT", .path = path, .body = body};
    if (!http_client_do(c->cs, &call, &r, e)) {
        consumer_set_health(c, CONSUMER_CONSUMER_STORE, false);
        goto done;
    }
    if (r.status == 200) {
        consumer_set_offset(c, c->pending);
        c->pending = -1;
    } else if (r.status == 409) {
        log_info("consumer %s: offset %lld was moved by another instance; reading it again",
                 c->name, (long long)c->offset);
        c->have_offset = false;
    } else {
        consumer_bad_answer(c, CONSUMER_CONSUMER_STORE, &r, e);
        goto done;
    }
    consumer_set_health(c, CONSUMER_CONSUMER_STORE, true);
    ok = true;
done:
    if (!ok) {
        char what[96];
        snprintf(what, sizeof what, "saving offset %lld (stored: %lld)", (long long)c->pending,
                 (long long)c->offset);
        consumer_explain(e, what);
    }
    http_resp_free(&r);
    json_decref(body);
    free(path);
    return ok;
}

/* Asks for the log head alone: a one-entry read without payloads from just
 * past the newest head known, which scans nothing. Failures are not counted
 * (the step that failed was); they leave the head as it was. */
static void consumer_probe_head(consumer *c)
{
    http_resp r = {0};
    err e = ERR_INIT;
    buf path;
    buf_init(&path, 256);
    pthread_mutex_lock(&c->mu);
    int64_t from = c->st.head_id > c->offset ? c->st.head_id : c->offset;
    pthread_mutex_unlock(&c->mu);
    from = from < 0 ? 1 : from < INT64_MAX ? from + 1 : INT64_MAX;
    if (buf_printf(&path, "/v1/logs?from_id=%lld&size=1&skip_payload=true", (long long)from))
        goto done;
    http_call call = {.method = "GET", .path = path.data, .timeout_ms = CONSUMER_PROBE_TIMEOUT_MS};
    if (!http_client_do(c->es, &call, &r, &e) || r.status != 200)
        goto done;
    json_t *head = json_object_get(r.json, "head_id");
    if (json_is_integer(head))
        consumer_set_head(c, (int64_t)json_integer_value(head));
done:
    http_resp_free(&r);
    buf_free(&path);
    err_clear(&e);
}

/* Step 3: one long poll, and the callback for a non-empty batch. Sets
 * *idle when the read neither returned entries nor moved forward. A page
 * over the cap fails with e = payload_too_large (the caller shrinks the
 * page). */
static bool consumer_read(consumer *c, bool *idle, err *e)
{
    http_resp r = {0};
    bool ok = false;
    char what[128];
    buf path;
    buf_init(&path, 4096);
    *idle = false;
    if (c->offset == INT64_MAX) { /* no log id can follow it: offset + 1 would overflow */
        *idle = true;
        return true;
    }
    snprintf(what, sizeof what, "reading the log from id %lld (%d entries a page)",
             (long long)c->offset + 1, c->page);
    if (buf_printf(&path, "/v1/logs?from_id=%lld&size=%d&wait=%d", (long long)c->offset + 1,
                   c->page, c->wait_s) ||
        (c->skip_payload && buf_puts(&path, "&skip_payload=true")) ||
        (c->selector &&
         (buf_puts(&path, "&selector=") || http_client_escape(&path, c->selector))) ||
        (c->pipeline_id &&
         (buf_puts(&path, "&pipeline_id=") || http_client_escape(&path, c->pipeline_id)))) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    http_call call = {.method = "GET", .path = path.data, .max_body = c->max_page,
                      .timeout_ms = c->wait_s * 1000 + c->timeout_ms};
    if (!http_client_do(c->es, &call, &r, e)) {
        if (e->code != ERR_PAYLOAD_TOO_LARGE) /* it answered: our cap refused it */
            consumer_set_health(c, CONSUMER_EVENT_STORE, false);
        goto done;
    }
    if (r.status != 200) {
        consumer_bad_answer(c, CONSUMER_EVENT_STORE, &r, e);
        goto done;
    }
    json_t *results = json_object_get(r.json, "results");
    json_t *next = json_object_get(r.json, "next_from_id");
    json_t *head = json_object_get(r.json, "head_id");
    if (!json_is_array(results) || !json_is_integer(next) || !json_is_integer(head)) {
        err_set(e, ERR_INTERNAL, "the event store answered a log page without results, "
                "next_from_id or head_id: %.120s", r.body);
        consumer_set_health(c, CONSUMER_EVENT_STORE, false);
        goto done;
    }
    consumer_set_health(c, CONSUMER_EVENT_STORE, true);
    int64_t head_id = (int64_t)json_integer_value(head);
    if (head_id < c->offset && !c->warned_head) {
        log_warn("consumer %s: the log head %lld is behind the stored offset %lld; new "
                 "entries below it will not be read (was the event store reset? delete the "
                 "consumer to start over)", c->name, (long long)head_id, (long long)c->offset);
        c->warned_head = true;
    }
    consumer_set_head(c, head_id);
    size_t n = json_array_size(results);
    if (n > 0 && !c->on_batch(c->ctx, results, head_id, e)) {
        if (e->code == ERR_NONE)
            err_set(e, ERR_INTERNAL, "the batch callback failed");
        snprintf(what, sizeof what, "handling log entries %lld to %lld",
                 (long long)json_integer_value(json_object_get(json_array_get(results, 0), "id")),
                 (long long)json_integer_value(
                     json_object_get(json_array_get(results, n - 1), "id")));
        goto done;
    }
    /* a full page well under the cap: the page may grow back */
    if (c->page < c->batch_size && n == (size_t)c->page && r.len <= c->max_page / 3)
        consumer_set_page(c, c->page * 2 < c->batch_size ? c->page * 2 : c->batch_size);
    /* next_from_id - 1 was scanned, matched or not; never move backwards */
    int64_t scanned = (int64_t)json_integer_value(next) - 1;
    if (scanned > c->offset)
        c->pending = scanned;
    else
        *idle = n == 0;
    ok = true;
done:
    if (!ok)
        consumer_explain(e, what);
    http_resp_free(&r);
    buf_free(&path);
    return ok;
}

/* Sleeps for ms unless stopped first. */
static void consumer_sleep(consumer *c, int ms)
{
    watch_wait(c->stop, watch_gen(c->stop), timefmt_mono() + ms / 1000.0);
}

static void consumer_failed(consumer *c, consumer_upstream where, const err *e)
{
    pthread_mutex_lock(&c->mu);
    c->st.errors++;
    snprintf(c->st.last_error, sizeof c->st.last_error, "%.*s",
             (int)sizeof c->st.last_error - 1, e->message);
    pthread_mutex_unlock(&c->mu);
    c->failures++;
    double now = timefmt_mono();
    if (c->failures == 1 || now - c->last_logged >= CONSUMER_LOG_EVERY_S) {
        log_warn("consumer %s: %s (failure %d in a row; retrying)", c->name, e->message,
                 c->failures);
        c->last_logged = now;
    }
    if (c->on_error)
        c->on_error(c->ctx, where, e);
}

/* A page over the cap: halves the page and returns true (try again at
 * once), or false when one entry alone is over it (e says so). */
static bool consumer_shrink(consumer *c, err *e)
{
    if (c->page <= 1) {
        err_set(e, ERR_PAYLOAD_TOO_LARGE, "log entry %lld alone is larger than the %zu-byte cap "
                "of a log page; the consumer cannot pass it (raise the cap, or read without "
                "payloads)", (long long)c->offset + 1, c->max_page);
        return false;
    }
    log_warn("consumer %s: the log page from id %lld with %d entries is larger than %zu "
             "bytes; reading %d entries a page", c->name, (long long)c->offset + 1, c->page,
             c->max_page, c->page / 2);
    consumer_set_page(c, c->page / 2);
    return true;
}

/* Says in the log when the consumer becomes stuck, and when it is no more. */
static void consumer_log_stuck(consumer *c)
{
    err e = ERR_INIT;
    bool stuck = consumer_stuck(c, &e);
    if (stuck && !c->said_stuck)
        log_warn("%s", e.message);
    else if (!stuck && c->said_stuck)
        log_info("consumer %s advances again", c->name);
    c->said_stuck = stuck;
    err_clear(&e);
}

void consumer_run(consumer *c)
{
    int backoff_ms = CONSUMER_BACKOFF_MIN_MS;
    pthread_mutex_lock(&c->mu);
    c->last_progress = timefmt_mono();
    pthread_mutex_unlock(&c->mu);
    while (!watch_stopped(c->stop)) {
        err e = ERR_INIT;
        bool ok, idle = false;
        consumer_upstream where = CONSUMER_CONSUMER_STORE;
        double t0 = timefmt_mono();

        c->head_fresh = false;
        if (!c->have_offset) {
            ok = consumer_load_offset(c, &e);
        } else if (c->pending > c->offset) {
            ok = consumer_save_offset(c, &e);
        } else {
            where = CONSUMER_EVENT_STORE;
            ok = consumer_read(c, &idle, &e);
            if (!ok && e.code == ERR_PAYLOAD_TOO_LARGE && consumer_shrink(c, &e)) {
                err_clear(&e);
                continue;
            }
        }
        if (ok) {
            if (c->failures > 0)
                log_info("consumer %s: recovered after %d failures", c->name, c->failures);
            c->failures = 0;
            backoff_ms = CONSUMER_BACKOFF_MIN_MS;
            pthread_mutex_lock(&c->mu);
            c->st.last_error[0] = '\0';
            pthread_mutex_unlock(&c->mu);
            /* A server that answers an empty page at once, whatever `wait`
             * says, must not make this a busy loop. */
            if (idle && timefmt_mono() - t0 < 0.1)
                consumer_sleep(c, 100);
        } else {
            consumer_failed(c, where, &e);
            if (!c->head_fresh)
                consumer_probe_head(c);
            consumer_sleep(c, backoff_ms);
            backoff_ms = backoff_ms * 2 > CONSUMER_BACKOFF_MAX_MS ? CONSUMER_BACKOFF_MAX_MS
                                                                   : backoff_ms * 2;
        }
        consumer_log_stuck(c);
        err_clear(&e);
    }
}

static void *consumer_thread(void *arg)
{
    consumer_run(arg);
    return NULL;
}

bool consumer_start(consumer *c, err *e)
{
    if (c->started) {
        err_set(e, ERR_INTERNAL, "consumer already started");
        return false;
    }
    if (pthread_create(&c->thread, NULL, consumer_thread, c) != 0) {
        err_set(e, ERR_INTERNAL, "cannot start the consumer thread");
        return false;
    }
    c->started = true;
    return true;
}

/* GET /readyz of one upstream; true on 200. */
static bool consumer_ping(http_client *hc, const char *what, err *e)
{
    http_resp r = {0};
    http_call call = {.method = "GET", .path = "/readyz", .timeout_ms = CONSUMER_READY_TIMEOUT_MS};
    err pe = ERR_INIT;
    if (!http_client_do(hc, &call, &r, &pe)) {
        err_set(e, ERR_UNAVAILABLE, "%s: %s", what, pe.message);
        err_clear(&pe);
        return false;
    }
    bool ok = r.status == 200;
    if (!ok)
        err_set(e, ERR_UNAVAILABLE, "%s is not ready (status %ld)", what, r.status);
    http_resp_free(&r);
    return ok;
}

bool consumer_ready(consumer *c, err *e)
{
    consumer_state st;
    if (consumer_stuck(c, e))
        return false;
    if (!consumer_ping(c->es, "event store", e) || !consumer_ping(c->cs, "consumer store", e))
        return false;
    consumer_state_get(c, &st);
    if (st.event_store == CONSUMER_HEALTH_DOWN) {
        err_set(e, ERR_UNAVAILABLE, "the last call to the event store failed: %s",
                st.last_error);
        return false;
    }
    if (st.consumer_store == CONSUMER_HEALTH_DOWN) {
        err_set(e, ERR_UNAVAILABLE, "the last call to the consumer store failed: %s",
                st.last_error);
        return false;
    }
    return true;
}
