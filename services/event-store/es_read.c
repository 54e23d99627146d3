/*
 * es_read.c - the reader threads (es_read.h): requests queue their stream
 * reads; a free reader takes every waiting one (up to ES_READ_MAX_BATCH),
 * runs them as one pipeline on a pooled connection (es_store.c), and wakes
 * each request through its callback.
 *
 * A small lossy table remembers how long the streams read lately are, so
 * that a long read is sent to run alone (es_read_big) rather than hold up
 * the short reads batched after it, or fill memory with a batch of long
 * answers.
 *
 * Connections come from db_reads (a standby's when there is one): a batch
 * on a standby reads the log head in the same pipeline, and one that shows
 * less than this process acknowledged runs again once the standby caught
 * up, or on the primary (db_reads_after).
 */
#include "es_read.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "log.h"
#include "strhash.h"

#define ES_READ_MAX_BATCH ES_STORE_READ_MAX
#define ES_READ_MAX_THREADS 16
#define ES_READ_HINTS 4096 /* streams whose length the readers remember */
#define ES_READ_BIG 128    /* events from which a read is long (es_read_big) */

struct es_reader {
    pthread_t threads[ES_READ_MAX_THREADS];
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    es_read_job *head, *tail;
    bool stopping;
    db_reads *reads;
    atomic_int active; /* reads queued or running, in batches or not */
    /* Per slot: the high 32 bits of a stream id's hash, then the highest
     * version reads of it returned (a hint: a collision only misjudges). */
    _Atomic uint64_t hints[ES_READ_HINTS];
};

/* Remembers how far a read reached in its stream. Streams only grow: a
 * slot of the same stream only rises (a short page must not make a long
 * stream look short); another stream's slot is taken over. */
static void es_read_hint_put(es_reader *rd, const es_stream_read *q)
{
    if (!q->ok || q->last <= 0)
        return;
    uint64_t h = strhash(q->id);
    uint64_t v = q->last > (int64_t)UINT32_MAX ? UINT32_MAX : (uint64_t)q->last;
    uint64_t want = (h >> 32) << 32 | v;
    _Atomic uint64_t *slot = &rd->hints[h % ES_READ_HINTS];
    uint64_t old = atomic_load_explicit(slot, memory_order_relaxed);
    while ((old >> 32 != h >> 32 || (old & UINT32_MAX) < v) &&
           !atomic_compare_exchange_weak_explicit(slot, &old, want, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

bool es_read_big(es_reader *rd, const es_stream_read *q)
{
    uint64_t h = strhash(q->id);
    uint64_t v = atomic_load_explicit(&rd->hints[h % ES_READ_HINTS], memory_order_relaxed);
    if (v >> 32 != h >> 32)
        return false; /* not read lately: taken to be short */
    int64_t last = (int64_t)(v & UINT32_MAX);
    int64_t top = q->backward ? q->from : q->to, bottom = q->backward ? q->to : q->from;
    int64_t hi = top < last ? top : last;
    return q->limit >= ES_READ_BIG && hi - bottom + 1 >= ES_READ_BIG;
}

/* Gives every read of the batch the batch's error. */
static void es_read_fail_all(es_stream_read **q, size_t n, const err *e)
{
    for (size_t i = 0; i < n; i++) {
        q[i]->ok = false;
        err_set(&q[i]->e, e->code, "%s", e->message);
    }
}

/* Empties the answers of reads that run again. */
static void es_read_reset(es_stream_read **q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_reset(&q[i]->out);
        err_clear(&q[i]->e);
        q[i]->ok = false;
    }
}

/* Runs a batch on c (which may move to the primary, db_reads_after) and
 * remembers how long the streams are. A failed batch whose connection still
 * works runs again one read at a time: one read's failure (a statement
 * time-out, a result too large for memory) aborts the whole pipeline, and
 * must fail that read alone. Without `wait` (on an event loop) false when
 * the batch must run where it may wait (c was handed back, nothing filled);
 * else true, every read filled. */
static bool es_read_run_on(es_reader *rd, db_rconn *c, es_stream_read **q, size_t n, bool wait)
{
    int64_t floor = db_reads_floor(rd->reads);
    for (;;) {
        err e = ERR_INIT;
        int64_t head = 0;
        db_status st = es_store_read_streams(c->d, q, n, c->standby ? &head : NULL, &e);
        db_reads_next next = db_reads_after(rd->reads, c, st == DB_OK, head, floor, wait, &e);
        if (next == DB_READS_AGAIN || next == DB_READS_LATER) {
            es_read_reset(q, n);
            err_clear(&e);
            if (next == DB_READS_LATER)
                return false;
            continue;
        }
        if (next == DB_READS_FAILED) {
            es_read_fail_all(q, n, &e);
        } else if (st != DB_OK && n > 1 && db_healthy(c->d)) {
            log_warn("read: a batch of %zu failed (%s); each read again alone", n, e.message);
            for (size_t i = 0; i < n; i++)
                (void)es_read_run_on(rd, c, &q[i], 1, true);
        } else if (st != DB_OK) {
            db_fail(&e, st, "reading a stream");
            es_read_fail_all(q, n, &e);
        } else {
            for (size_t i = 0; i < n; i++)
                es_read_hint_put(rd, q[i]);
        }
        err_clear(&e);
        return true;
    }
}

/* Runs a batch on a connection for reads, waiting for one if need be. */
static void es_read_run(es_reader *rd, es_stream_read **q, size_t n)
{
    err e = ERR_INIT;
    db_rconn c;
    if (db_reads_get(rd->reads, true, &c, &e) > 0) {
        (void)es_read_run_on(rd, &c, q, n, true);
        db_reads_put(rd->reads, &c);
    } else {
        es_read_fail_all(q, n, &e);
    }
    err_clear(&e);
}

static void *es_reader_main(void *arg)
{
    es_reader *rd = arg;
    es_read_job *jobs[ES_READ_MAX_BATCH];
    es_stream_read *q[ES_READ_MAX_BATCH];
    for (;;) {
        pthread_mutex_lock(&rd->mu);
        while (!rd->head && !rd->stopping)
            pthread_cond_wait(&rd->cv, &rd->mu);
        if (!rd->head && rd->stopping) {
            pthread_mutex_unlock(&rd->mu);
            break;
        }
        size_t n = 0;
        while (rd->head && n < ES_READ_MAX_BATCH) {
            jobs[n] = rd->head;
            q[n] = &rd->head->q;
            rd->head = rd->head->next;
            n++;
        }
        if (!rd->head)
            rd->tail = NULL;
        pthread_mutex_unlock(&rd->mu);

        es_read_run(rd, q, n);
        log_debug("read: batch of %zu", n);
        /* A job belongs to its request again once woken: touch it no more. */
        atomic_fetch_sub(&rd->active, (int)n);
        for (size_t i = 0; i < n; i++)
            jobs[i]->wake(jobs[i]->ctx);
    }
    return NULL;
}

es_reader *es_reader_start(db_reads *reads, int threads)
{
    es_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return NULL;
    rd->reads = reads;
    pthread_mutex_init(&rd->mu, NULL);
    pthread_cond_init(&rd->cv, NULL);
    if (threads > ES_READ_MAX_THREADS)
        threads = ES_READ_MAX_THREADS;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&rd->threads[i], NULL, es_reader_main, rd) != 0) {
            es_reader_stop(rd);
            return NULL;
        }
        rd->nthreads++;
    }
    return rd;
}

void es_reader_stop(es_reader *rd)
{
    if (!rd)
        return;
    pthread_mutex_lock(&rd->mu);
    rd->stopping = true;
    pthread_cond_broadcast(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
    for (int i = 0; i < rd->nthreads; i++)
        pthread_join(rd->threads[i], NULL);
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->cv);
    free(rd);
}

/* A read's answer, before it runs. */
static void es_read_prepare(es_stream_read *q)
{
    buf_init(&q->out, (size_t)1 << 30);
    q->e = (err)ERR_INIT;
    q->ok = false;
}

bool es_read_submit(es_reader *rd, es_read_job *j, err *e)
{
    es_read_prepare(&j->q);
    j->next = NULL;
    pthread_mutex_lock(&rd->mu);
    if (rd->stopping) {
        pthread_mutex_unlock(&rd->mu);
        err_set(e, ERR_UNAVAILABLE, "the service is stopping");
        return false;
    }
    atomic_fetch_add(&rd->active, 1);
    if (rd->tail)
        rd->tail->next = j;
    else
        rd->head = j;
    rd->tail = j;
    pthread_cond_signal(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
    return true;
}

bool es_read_now(es_reader *rd, es_stream_read *q)
{
    db_rconn c;
    err e = ERR_INIT;
    if (atomic_load(&rd->active) > 0 || db_reads_get(rd->reads, false, &c, &e) <= 0) {
        err_clear(&e);
        return false;
    }
    atomic_fetch_add(&rd->active, 1);
    es_read_prepare(q);
    bool done = es_read_run_on(rd, &c, &q, 1, false);
    db_reads_put(rd->reads, &c);
    atomic_fetch_sub(&rd->active, 1);
    if (!done) /* it must wait for a standby: es_read_submit sets it up again */
        buf_free(&q->out);
    return done;
}

void es_read_wait(es_reader *rd, es_stream_read *q)
{
    atomic_fetch_add(&rd->active, 1);
    es_read_prepare(q);
    es_read_run(rd, &q, 1);
    atomic_fetch_sub(&rd->active, 1);
}
