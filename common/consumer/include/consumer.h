/*
 * consumer.h - reading eskit's application log from a stored offset: the
 * loop any C program that consumes the log runs (SPEC §5, §6).
 *
 * The loop:
 *   1. reads the stored offset (GET {consumer store}/v1/consumers/{name};
 *      404 counts as 0);
 *   2. long-polls GET {event store}/v1/logs?from_id=offset+1&size=N&wait=W;
 *   3. hands a non-empty batch to the callback;
 *   4. saves next_from_id - 1 with PUT /v1/consumers/{name}
 *      {"offset": new, "expected_offset": old} (also when a narrow selector
 *      matched nothing but the scan moved on), then goes back to 2.
 * The callback runs before the offset is saved: delivery is at least once.
 * After a crash, or when a save fails after the batch was handled, entries
 * after the stored offset are handed over again.
 *
 * A 409 on the save means another instance under the same name advanced
 * the offset: the loop re-reads it and continues from there, so the stored
 * offset only ever moves forward. Transport errors, 5xx and unexpected
 * answers are counted, reported through on_error, and retried with an
 * exponential back-off (100 ms doubling to 5 s, reset by a success); a
 * failed save is retried on its own, without reading the log again. The
 * log line of a failure says which step, offset or entries failed and why
 * (the first of a run of failures, then one every 30 s).
 *
 * No page stops the loop for good (SPEC §6). Pages are parsed with
 * jsonx_parse_stored(), so payloads holding integers past int64 (how
 * PostgreSQL spells 1e20) are taken. A page over max_page_bytes makes the
 * loop halve its page size at once, down to one entry, and grow it back
 * (doubling, up to batch_size) after full pages that used at most a third
 * of the cap. Only a single entry over the cap is a failure (counted and
 * retried, like any other: raise the cap, or read with skip_payload).
 *
 * A consumer that cannot advance says so. While a step fails, the loop also
 * asks the event store for its head (a one-entry read past the known head,
 * without payloads), so the lag keeps following the head; the state below
 * says how long the offset has not moved, and `stuck` once the consumer is
 * behind and has not advanced for stuck_after_s. consumer_ready() is then
 * false, saying why.
 *
 * Stopping is prompt: back-off sleeps wake at once, and a long poll in
 * flight ends within its `wait_s` (keep it short, the default is 2 s).
 */
#ifndef ESKIT_CONSUMER_H
#define ESKIT_CONSUMER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

typedef struct consumer consumer;

/* The two services the loop talks to. */
typedef enum { CONSUMER_EVENT_STORE, CONSUMER_CONSUMER_STORE } consumer_upstream;

/*
 * Handles one non-empty batch: `entries` is the log page's "results" array
 * ([{"id": 41, "event": {...}}, ...], borrowed), `head_id` the log head at
 * the read. Returns true when handled; false (with e set) makes the loop
 * count an error, back off, and read the same entries again.
 * Called from the loop's thread only.
 */
typedef bool (*consumer_batch_fn)(void *ctx, const json_t *entries, int64_t head_id, err *e);
/* Told about every failed step (one per error counted). May be NULL. */
typedef void (*consumer_error_fn)(void *ctx, consumer_upstream where, const err *e);

typedef struct consumer_config {
    const char *event_store_url;    /* "http://127.0.0.1:8080" */
    const char *consumer_store_url; /* "http://127.0.0.1:8082" */
    const char *token;              /* bearer token sent to both; NULL or "": none */
    const char *name;               /* the consumer id (SPEC §2 id syntax) */
    const char *selector;           /* NULL: every entry ("*") */
    const char *pipeline_id;        /* NULL: every entity type */
    int batch_size;                 /* entries per read, 1..1000; 0: 100 */
    int wait_s;                     /* long-poll seconds, 1..60; 0: 2 */
    int timeout_ms;                 /* time-out of the other calls; 0: 5000 */
    bool skip_payload;              /* entries come without "payload" (the event
                                       store's skip_payload=true): for consumers
                                       that need only the event types and ids */
    size_t max_page_bytes;          /* largest log page read; 0: HTTP_CLIENT_BODY_MAX */
    int stuck_after_s;              /* behind without progress this long is stuck; 0: 30 */
    consumer_batch_fn on_batch;     /* required */
    consumer_error_fn on_error;     /* optional */
    void *ctx;                      /* handed to both callbacks */
} consumer_config;

/*
 * Makes a consumer (the strings are copied). Returns NULL with e set when
 * the configuration is invalid (invalid_argument) or memory runs out.
 */
consumer *consumer_new(const consumer_config *cfg, err *e) WUR;

/* Runs the loop in a thread of its own. false with e set if it cannot start. */
bool consumer_start(consumer *c, err *e) WUR;
/* Runs the loop in the calling thread; returns after consumer_stop(). */
void consumer_run(consumer *c);
/* Asks the loop to end (from any thread; returns at once). */
void consumer_stop(consumer *c);
/* Stops the loop, waits for its thread (if started) and frees everything. */
void consumer_free(consumer *c);

typedef enum {
    CONSUMER_HEALTH_UNKNOWN, /* not called yet */
    CONSUMER_HEALTH_UP,      /* the last call was answered as expected */
    CONSUMER_HEALTH_DOWN     /* the last call failed */
} consumer_health;

/* A snapshot of the loop's state, for metrics and /readyz. */
typedef struct consumer_state {
    int64_t offset;  /* the stored offset as last read or saved; -1 until known */
    int64_t head_id; /* the newest log head learned, by a read or, while a step
                        fails, by a head probe; -1 until known */
    int64_t lag;     /* head_id - offset (an unknown offset counts as 0); 0 when
                        the head is unknown or not above the offset */
    uint64_t errors; /* failed steps since the start */
    int page_size;   /* entries asked per read now (below batch_size after a
                        page over max_page_bytes) */
    double progress_age_s; /* seconds since the offset last moved forward, the
                              loop was last at the head, or it started */
    bool stuck;            /* lag > 0 and progress_age_s >= stuck_after_s */
    char last_error[300];  /* the last failure ("" when the last step succeeded) */
    consumer_health event_store, consumer_store;
} consumer_state;

void consumer_state_get(consumer *c, consumer_state *out);

/* Whether the consumer is stuck (see consumer_state.stuck); when it is, e
 * (may be NULL) = unavailable saying how far behind, for how long, and the
 * last failure. Thread-safe. */
bool consumer_stuck(consumer *c, err *e);

/*
 * For /readyz: true when the consumer is not stuck, both upstreams answer
 * their /readyz with 200 (time-out 1 s each) and the loop's last call to
 * neither failed. Otherwise false with e = unavailable saying which.
 * Thread-safe.
 */
bool consumer_ready(consumer *c, err *e) WUR;

#endif
