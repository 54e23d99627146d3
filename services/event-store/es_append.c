/*
 * es_append.c - the committer thread (es_append.h): requests queue their
 * appends (from an event loop of the HTTP server, without a thread of their
 * own, or from their connection's thread, which then waits);
 * the committer takes every waiting one as a group, runs the group
 * transaction (es_group.c) and wakes each request through its callback.
 *
 * When a group fails for a reason other than a lost connection, each append
 * is retried alone, so that one bad append cannot fail its neighbours.
 */
#include "es_append.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "es_group.h"
#include "es_store.h"
#include "log.h"
#include "timefmt.h"

#define ES_GROUP_MAX_JOBS 512
#define ES_GROUP_MAX_EVENTS 4000
#define ES_VCACHE_STREAMS 8192 /* streams whose versions the committer remembers */
#define ES_RECONNECT_PAUSE 0.5 /* seconds between connection attempts */

struct es_append_job {
    es_gjob g; /* first: a job is its group job */
    void (*wake)(void *ctx);
    void *ctx;
    struct es_append_job *next;
};
typedef struct es_append_job es_job;

struct es_committer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    es_job *head, *tail;
    bool stopping;
    const char *url;
    es_group_ctx gc; /* its conn opens lazily */
    double last_fail;
    watch *w;
    db_reads *reads;
};

/* The error of a job whose transaction failed with `st`; `unknown`: the
 * connection was lost while the commit was under way. */
static void es_job_fail(es_gjob *j, db_status st, bool unknown)
{
    if (unknown)
        err_set_details(&j->e, ERR_UNAVAILABLE, json_pack("{s:s}", "commit_outcome", "unknown"),
                        "the connection to the database was lost while the append was "
                        "committing: it may or may not have been written; resend it with the "
                        "same event ids to learn which");
    else if (st == DB_ERR_UNAVAILABLE)
        err_set(&j->e, ERR_UNAVAILABLE, "the database is unavailable; nothing was written");
    else if (st == DB_ERR_CONSTRAINT)
        err_set(&j->e, ERR_CONFLICT, "a concurrent write took this version; nothing was written");
    else
        err_set(&j->e, ERR_INTERNAL, "database error; nothing was written");
}

/* Runs a group, falling back to one transaction per job when the group as a
 * whole fails for a reason other than the connection. */
static void es_group_commit(es_committer *c, es_gjob **jobs, size_t n)
{
    double now = timefmt_mono();
    /* nothing of this group was sent yet (a group refused for want of a
     * connection never was: its outcome is known) */
    c->gc.unknown = false;
    if (!c->gc.conn && now - c->last_fail >= ES_RECONNECT_PAUSE) {
        err e = ERR_INIT;
        c->gc.conn = db_open(c->url, &es_db_spec, &e);
        if (!c->gc.conn) {
            log_warn("append: %s", e.message);
            c->last_fail = now;
        }
        err_clear(&e);
    }
    db_status st = DB_ERR_UNAVAILABLE;
    if (c->gc.conn) {
        st = es_group_run(&c->gc, jobs, n);
        if (st != DB_OK && st != DB_ERR_UNAVAILABLE && n > 1) {
            for (size_t i = 0; i < n; i++) {
                db_status one = es_group_run(&c->gc, &jobs[i], 1);
                if (one != DB_OK)
                    es_job_fail(jobs[i], one, c->gc.unknown);
            }
            st = DB_OK;
        }
        if (st == DB_ERR_UNAVAILABLE || !db_healthy(c->gc.conn)) {
            db_close(c->gc.conn);
            c->gc.conn = NULL;
            c->last_fail = timefmt_mono();
        }
    }
    if (st != DB_OK)
        for (size_t i = 0; i < n; i++)
            es_job_fail(jobs[i], st, c->gc.unknown);
}

static void *es_committer_main(void *arg)
{
    es_committer *c = arg;
    es_gjob *gjobs[ES_GROUP_MAX_JOBS]; /* each the first member of its es_job */
    for (;;) {
        pthread_mutex_lock(&c->mu);
        while (!c->head && !c->stopping)
            pthread_cond_wait(&c->cv, &c->mu);
        if (!c->head && c->stopping) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        size_t n = 0, events = 0;
        while (c->head && n < ES_GROUP_MAX_JOBS &&
               (n == 0 || events + c->head->g.n <= ES_GROUP_MAX_EVENTS)) {
            es_job *j = c->head;
            c->head = j->next;
            events += j->g.n;
            gjobs[n++] = &j->g;
        }
        if (!c->head)
            c->tail = NULL;
        pthread_mutex_unlock(&c->mu);

        double t0 = timefmt_mono();
        es_group_commit(c, gjobs, n);
        log_debug("append: group of %zu appends (%zu events) in %.3f ms", n, events,
                  (timefmt_mono() - t0) * 1e3);
        bool any = false;
        int64_t top = 0; /* the highest log id answered: reads must show it */
        for (size_t i = 0; i < n; i++) {
            any |= gjobs[i]->ok;
            for (size_t k = 0; gjobs[i]->ok && k < gjobs[i]->n; k++)
                if (gjobs[i]->events[k].log_id > top)
                    top = gjobs[i]->events[k].log_id;
        }
        if (top > 0)
            db_reads_acked(c->reads, top);
        if (any)
            watch_bump(c->w);
        /* A job belongs to its request again once woken: touch it no more. */
        for (size_t i = 0; i < n; i++) {
            es_job *j = (es_job *)gjobs[i];
            j->wake(j->ctx);
        }
    }
    db_close(c->gc.conn);
    c->gc.conn = NULL;
    return NULL;
}

es_committer *es_committer_start(const char *url, watch *w, db_reads *reads,
                                 metrics_family *groups)
{
    es_committer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->url = url;
    c->w = w;
    c->reads = reads;
    c->last_fail = -1e9;
    c->gc.one_stmt = true;
    c->gc.m_groups = groups;
    if (!(c->gc.vc = es_vcache_new(ES_VCACHE_STREAMS))) {
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, es_committer_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        es_vcache_free(c->gc.vc);
        free(c);
        return NULL;
    }
    return c;
}

void es_committer_stop(es_committer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    es_vcache_free(c->gc.vc);
    free(c);
}

es_append_job *es_append_submit(es_committer *c, es_event *events, size_t n,
                                void (*wake)(void *ctx), void *ctx, err *e)
{
    es_job *j = calloc(1, sizeof *j);
    if (!j) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    j->g.events = events;
    j->g.n = n;
    j->wake = wake;
    j->ctx = ctx;
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(j);
        err_set(e, ERR_UNAVAILABLE, "the service is stopping");
        return NULL;
    }
    if (c->tail)
        c->tail->next = j;
    else
        c->head = j;
    c->tail = j;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return j;
}

bool es_append_finish(es_append_job *j, bool *replayed, err *e)
{
    bool ok = j->g.ok;
    *replayed = ok && j->g.replayed;
    if (!ok) {
        if (j->g.e.code == ERR_NONE)
            err_set(&j->g.e, ERR_INTERNAL, "the append failed");
        err_move(e, &j->g.e);
    }
    err_clear(&j->g.e);
    free(j);
    return ok;
}
