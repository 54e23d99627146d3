/*
 * consumer.c - the log-reading loop of consumer.h: stored offset, long poll,
 * callback, compare-and-set save, back-off, and the state other threads
 * read for metrics and /readyz.
 *
 * The loop is a small state machine run by one thread. Each turn does one
 * step: load the stored offset (when not known), save a pending offset
 * (after a handled batch), or read the next page of the log. A step that
 * fails is counted and the same step is retried after a back-off sleep on
 * the stop watch, so consumer_stop() cuts every sleep short.
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
#define CONSUMER_LOG_EVERY_S 30.0 /* repeated failures: one log line per period */

struct consumer {
    /* configuration (owned copies) */
    char *name;
    char *selector;
    char *pipeline_id;
    int batch_size, wait_s, timeout_ms;
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
    int64_t offset;  /* the stored offset, as the loop knows it */
    int64_t pending; /* an offset to save (> offset), or -1 */
    int failures;    /* consecutive failed steps */
    double last_logged;
    bool warned_head; /* said once that the log head is behind the offset */

    /* shared with other threads, under mu */
    pthread_mutex_t mu;
    consumer_state st;
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
        cfg->timeout_ms < 0) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "consumer batch size must be 1 to 1000 and wait 1 to 60 seconds");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    pthread_mutex_init(&c->mu, NULL);
    c->batch_size = cfg->batch_size ? cfg->batch_size : 100;
    c->wait_s = cfg->wait_s ? cfg->wait_s : 2;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    c->on_batch = cfg->on_batch;
    c->on_error = cfg->on_error;
    c->ctx = cfg->ctx;
    c->pending = -1;
    c->st.offset = -1;
    c->st.head_id = -1;
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
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
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

static void consumer_set_offset(consumer *c, int64_t offset)
{
    c->offset = offset;
    pthread_mutex_lock(&c->mu);
    c->st.offset = offset;
    pthread_mutex_unlock(&c->mu);
}

/* Fills e from an answer that was not the one expected; the upstream counts
 * as down for 5xx (and any status that says it cannot serve us). */
static void consumer_bad_answer(consumer *c, consumer_upstream u, const char *what,
                                const http_resp *r, err *e)
{
    const char *msg = json_string_value(
        json_object_get(json_object_get(r->json, "error"), "message"));
    err_set(e, r->status >= 500 ? ERR_UNAVAILABLE : ERR_INTERNAL, "%s: status %ld%s%.300s", what,
            r->status, msg ? ": " : "", msg ? msg : "");
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
        return false;
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
            err_set(e, ERR_INTERNAL, "consumer store answered without a valid offset: %.200s",
                    r.body);
            consumer_set_health(c, CONSUMER_CONSUMER_STORE, false);
            goto done;
        }
        consumer_set_offset(c, (int64_t)json_integer_value(off));
    } else {
        consumer_bad_answer(c, CONSUMER_CONSUMER_STORE, "reading the stored offset", &r, e);
        goto done;
    }
    consumer_set_health(c, CONSUMER_CONSUMER_STORE, true);
    c->have_offset = true;
    if (c->pending <= c->offset)
        c->pending = -1;
    log_info("consumer %s: stored offset %lld", c->name, (long long)c->offset);
    ok = true;
done:
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
        consumer_bad_answer(c, CONSUMER_CONSUMER_STORE, "saving the offset", &r, e);
        goto done;
    }
    consumer_set_health(c, CONSUMER_CONSUMER_STORE, true);
    ok = true;
done:
    http_resp_free(&r);
    json_decref(body);
    free(path);
    return ok;
}

/* Step 3: one long poll, and the callback for a non-empty batch. Sets
 * *idle when the read neither returned entries nor moved forward. */
static bool consumer_read(consumer *c, bool *idle, err *e)
{
    http_resp r = {0};
    bool ok = false;
    buf path;
    buf_init(&path, 4096);
    *idle = false;

    if (c->offset == INT64_MAX) { /* no log id can follow it: offset + 1 would overflow */
        *idle = true;
        return true;
    }
    if (buf_printf(&path, "/v1/logs?from_id=%lld&size=%d&wait=%d", (long long)c->offset + 1,
                   c->batch_size, c->wait_s) ||
        (c->selector &&
         (buf_puts(&path, "&selector=") || http_client_escape(&path, c->selector))) ||
        (c->pipeline_id &&
         (buf_puts(&path, "&pipeline_id=") || http_client_escape(&path, c->pipeline_id)))) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    http_call call = {.method = "GET", .path = path.data,
                      .timeout_ms = c->wait_s * 1000 + c->timeout_ms};
    if (!http_client_do(c->es, &call, &r, e)) {
        consumer_set_health(c, CONSUMER_EVENT_STORE, false);
        goto done;
    }
    if (r.status != 200) {
        consumer_bad_answer(c, CONSUMER_EVENT_STORE, "reading the log", &r, e);
        goto done;
    }
    json_t *results = json_object_get(r.json, "results");
    json_t *next = json_object_get(r.json, "next_from_id");
    json_t *head = json_object_get(r.json, "head_id");
    if (!json_is_array(results) || !json_is_integer(next) || !json_is_integer(head)) {
        err_set(e, ERR_INTERNAL, "event store answered a log page without results, "
                "next_from_id or head_id");
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
    pthread_mutex_lock(&c->mu);
    c->st.head_id = head_id;
    pthread_mutex_unlock(&c->mu);
    if (json_array_size(results) > 0 && !c->on_batch(c->ctx, results, head_id, e)) {
        if (e->code == ERR_NONE)
            err_set(e, ERR_INTERNAL, "the batch callback failed");
        goto done;
    }
    /* next_from_id - 1 was scanned, matched or not; never move backwards */
    int64_t scanned = (int64_t)json_integer_value(next) - 1;
    if (scanned > c->offset)
        c->pending = scanned;
    else
        *idle = json_array_size(results) == 0;
    ok = true;
done:
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

void consumer_run(consumer *c)
{
    int backoff_ms = CONSUMER_BACKOFF_MIN_MS;
    while (!watch_stopped(c->stop)) {
        err e = ERR_INIT;
        bool ok, idle = false;
        consumer_upstream where = CONSUMER_CONSUMER_STORE;
        double t0 = timefmt_mono();

        if (!c->have_offset) {
            ok = consumer_load_offset(c, &e);
        } else if (c->pending > c->offset) {
            ok = consumer_save_offset(c, &e);
        } else {
            where = CONSUMER_EVENT_STORE;
            ok = consumer_read(c, &idle, &e);
        }
        if (ok) {
            if (c->failures > 0)
                log_info("consumer %s: recovered after %d failures", c->name, c->failures);
            c->failures = 0;
            backoff_ms = CONSUMER_BACKOFF_MIN_MS;
            /* A server that answers an empty page at once, whatever `wait`
             * says, must not make this a busy loop. */
            if (idle && timefmt_mono() - t0 < 0.1)
                consumer_sleep(c, 100);
        } else {
            consumer_failed(c, where, &e);
            consumer_sleep(c, backoff_ms);
            backoff_ms = backoff_ms * 2 > CONSUMER_BACKOFF_MAX_MS ? CONSUMER_BACKOFF_MAX_MS
                                                                   : backoff_ms * 2;
        }
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
    if (!consumer_ping(c->es, "event store", e) || !consumer_ping(c->cs, "consumer store", e))
        return false;
    consumer_state_get(c, &st);
    if (st.event_store == CONSUMER_HEALTH_DOWN) {
        err_set(e, ERR_UNAVAILABLE, "the last call to the event store failed");
        return false;
    }
    if (st.consumer_store == CONSUMER_HEALTH_DOWN) {
        err_set(e, ERR_UNAVAILABLE, "the last call to the consumer store failed");
        return false;
    }
    return true;
}
