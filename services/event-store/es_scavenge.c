/*
 * es_scavenge.c - the scavenger thread (es_scavenge.h).
 *
 * A round pages through the streams with retention settings in id order
 * (ES_RETAINED, a partial index), and for each deletes batches of
 * ES_SCAVENGE_BATCH events (ES_SCAVENGE_EVENTS computes the first readable
 * version in the same statement, so a setting changed meanwhile is obeyed),
 * each in its own write transaction, pausing ES_SCAVENGE_PAUSE_MS between
 * batches: on SQLite every batch holds the one write lock, on PostgreSQL it
 * holds the rows it deletes, neither for long.
 */
#include "es_scavenge.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "es_store.h"
#include "log.h"

#define ES_SCAVENGE_BATCH 500   /* events deleted per transaction */
#define ES_SCAVENGE_PAUSE_MS 5  /* between two batches */
#define ES_SCAVENGE_PAGE 100    /* streams read per page of a round */

struct es_scavenger {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping, poked, checkpoint; /* under mu */
    const char *url;
    int interval_s;
    metrics_family *deleted;
    db *conn; /* the thread's */
};

/* Waits up to ms (or until poked or stopping). True unless stopping. */
static bool es_scavenge_sleep(es_scavenger *sc, long ms, bool wake_on_poke)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&sc->mu);
    while (!sc->stopping && !(wake_on_poke && sc->poked))
        if (pthread_cond_timedwait(&sc->cv, &sc->mu, &ts) != 0)
            break;
    if (wake_on_poke)
        sc->poked = false;
    bool go = !sc->stopping;
    pthread_mutex_unlock(&sc->mu);
    return go;
}

/* Deletes one stream's expired events and snapshots. Adds the events
 * deleted to *n. False when the connection failed or the scavenger stops. */
static bool es_scavenge_stream(es_scavenger *sc, const char *id, long *n)
{
    db_param p[] = {DB_TEXT(id), DB_INT(ES_SCAVENGE_BATCH)};
    for (;;) {
        err e = ERR_INIT;
        db_res *r = NULL;
        db_status st = db_begin(sc->conn, true);
        if (st == DB_OK)
            st = db_exec(sc->conn, ES_SCAVENGE_EVENTS, p, 2, &r, &e);
        if (st == DB_OK)
            st = db_commit(sc->conn);
        else
            db_rollback(sc->conn);
        size_t rows = st == DB_OK ? db_res_rows(r) : 0;
        db_res_free(r);
        if (st != DB_OK) {
            log_warn("scavenger: deleting events of %s: %s", id,
                     e.message[0] ? e.message : "failed");
            err_clear(&e);
            return false;
        }
        *n += (long)rows;
        if (rows > 0)
            metrics_add(sc->deleted, NULL, (double)rows);
        if (rows < ES_SCAVENGE_BATCH)
            break;
        if (!es_scavenge_sleep(sc, ES_SCAVENGE_PAUSE_MS, false))
            return false;
    }
    err e = ERR_INIT;
    db_status st = db_exec(sc->conn, ES_SCAVENGE_SNAPS, p, 1, NULL, &e);
    if (st != DB_OK)
        log_warn("scavenger: deleting snapshots of %s: %s", id, e.message);
    err_clear(&e);
    return st == DB_OK;
}

/* One round over every stream with retention settings. False when it
 * stopped half-way (a failure, or stopping). */
static bool es_scavenge_round(es_scavenger *sc, long *n)
{
    char *after = strdup("");
    bool ok = after != NULL;
    while (ok) {
        err e = ERR_INIT;
        db_res *r = NULL;
        db_param p[] = {DB_TEXT(after), DB_INT(ES_SCAVENGE_PAGE)};
        db_status st = db_exec(sc->conn, ES_RETAINED, p, 2, &r, &e);
        if (st != DB_OK) {
            log_warn("scavenger: listing streams: %s", e.message);
            err_clear(&e);
            ok = false;
            break;
        }
        size_t rows = db_res_rows(r);
        for (size_t i = 0; ok && i < rows; i++)
            ok = es_scavenge_stream(sc, db_res_text(r, i, 0), n);
        if (ok && rows > 0) {
            free(after);
            after = strdup(db_res_text(r, rows - 1, 0));
            ok = after != NULL;
        }
        db_res_free(r);
        if (rows < ES_SCAVENGE_PAGE)
            break;
    }
    free(after);
    return ok;
}

static void *es_scavenge_main(void *arg)
{
    es_scavenger *sc = arg;
    bool go = true;
    while (go) {
        if (!sc->conn) {
            err e = ERR_INIT;
            sc->conn = db_open(sc->url, &es_db_spec, &e);
            if (!sc->conn)
                log_warn("scavenger: %s", e.message);
            err_clear(&e);
        }
        if (sc->conn) {
            long n = 0;
            bool done = es_scavenge_round(sc, &n);
            pthread_mutex_lock(&sc->mu);
            bool want = sc->checkpoint || n > 0;
            sc->checkpoint = false;
            pthread_mutex_unlock(&sc->mu);
            if (n > 0)
                log_info("scavenger: deleted %ld events outside retention", n);
            if (want && !es_store_checkpoint(sc->conn)) {
                pthread_mutex_lock(&sc->mu);
                sc->checkpoint = true; /* readers held the WAL: next round */
                pthread_mutex_unlock(&sc->mu);
            }
            if (!done && !db_healthy(sc->conn)) {
                db_close(sc->conn);
                sc->conn = NULL;
            }
        }
        go = es_scavenge_sleep(sc, (long)sc->interval_s * 1000, true);
    }
    return NULL;
}

es_scavenger *es_scavenger_start(const char *url, int interval_s, metrics_family *deleted)
{
    es_scavenger *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->url = url;
    sc->interval_s = interval_s > 0 ? interval_s : 1;
    sc->deleted = deleted;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&sc->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&sc->mu, NULL);
    if (pthread_create(&sc->thread, NULL, es_scavenge_main, sc) != 0) {
        pthread_cond_destroy(&sc->cv);
        pthread_mutex_destroy(&sc->mu);
        free(sc);
        return NULL;
    }
    return sc;
}

void es_scavenger_poke(es_scavenger *sc, bool checkpoint)
{
    if (!sc)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->poked = true;
    sc->checkpoint |= checkpoint;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

void es_scavenger_stop(es_scavenger *sc)
{
    if (!sc)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->stopping = true;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->thread, NULL);
    db_close(sc->conn);
    pthread_cond_destroy(&sc->cv);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}
