/*
 * db_reads.c - the read routing of db_reads.h: two pools (the primary's,
 * and the standbys' when ESKIT_DATABASE_READ_URL is set), the floor and the
 * known head (atomics raised by the writers and listeners), the state
 * "standbys left for the primary", and the prober thread that takes them
 * back.
 *
 * A connection remembers (db_mark) the highest head its standby showed; a
 * standby only moves forward while a connection to it lives (a rewound or
 * rebuilt server restarts, which ends its connections), so a read whose
 * floor is at most that mark needs no question.
 *
 * Deletions could make a head (the event store's: the highest log id
 * stored) stay below one that was acknowledged; the prober therefore takes
 * a standby back once it has caught up with the primary's own head, if that
 * is lower.
 */
#include "db_reads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "timefmt.h"

#define DB_READS_PROBE_S 0.25 /* between two looks at a standby that was left */

struct db_reads {
    db_pool *primary;
    db_pool *standby; /* NULL: every read on the primary */
    const db_spec *spec;
    db_reads_head_fn head_fn;
    char *read_url;
    db_opts opts;
    _Atomic int64_t acked; /* the floor */
    _Atomic int64_t known; /* the known head */
    atomic_bool down;      /* the standbys are left for the primary */
    pthread_mutex_t mu;    /* target, stopping, and the prober's sleep */
    pthread_cond_t cv;
    int64_t target; /* the head a left standby must reach to be taken back */
    bool stopping;
    bool prober_started;
    pthread_t prober;
    metrics_family *m_reads;     /* eskit_db_reads_total{on} */
    metrics_family *m_fallbacks; /* eskit_standby_fallbacks_total{reason} */
};

static void db_reads_atomic_max(_Atomic int64_t *a, int64_t v)
{
    int64_t old = atomic_load(a);
    while (old < v && !atomic_compare_exchange_weak(a, &old, v)) {
    }
}

void db_reads_acked(db_reads *rs, int64_t log_id)
{
    db_reads_atomic_max(&rs->acked, log_id);
    db_reads_atomic_max(&rs->known, log_id);
}

void db_reads_known(db_reads *rs, int64_t log_id)
{
    db_reads_atomic_max(&rs->known, log_id);
}

int64_t db_reads_floor(db_reads *rs)
{
    return atomic_load(&rs->acked);
}

int64_t db_reads_known_head(db_reads *rs)
{
    return atomic_load(&rs->known);
}

/* ---- leaving a standby, and taking it back ---------------------------------- */

/* Reads go to the primary from now on, until the prober finds the standby
 * well and at `target` (0: any head). */
static void db_reads_leave(db_reads *rs, int64_t target, const char *why, const char *msg)
{
    pthread_mutex_lock(&rs->mu);
    if (target > rs->target || !atomic_load(&rs->down))
        rs->target = target;
    if (!atomic_load(&rs->down)) {
        atomic_store(&rs->down, true);
        log_warn("reads: the standby is left for the primary (%s%s%s)", why, msg ? ": " : "",
                 msg ? msg : "");
        pthread_cond_signal(&rs->cv);
    }
    pthread_mutex_unlock(&rs->mu);
}

/* The primary's head, or -1 when it cannot be read. */
static int64_t db_reads_primary_head(db_reads *rs)
{
    err e = ERR_INIT;
    int64_t head = -1;
    db *d = db_pool_acquire(rs->primary, &e);
    if (d) {
        if (!rs->head_fn(d, &head, &e))
            head = -1;
        db_pool_release(rs->primary, d);
    }
    err_clear(&e);
    return head;
}

/* One look at the standby: true when it answers and has reached `want`. */
static bool db_reads_probe(db_reads *rs, int64_t want, int64_t *head)
{
    err e = ERR_INIT;
    db *d = db_open_opts(rs->read_url, rs->spec, &rs->opts, &e);
    bool ok = d && rs->head_fn(d, head, &e);
    db_close(d);
    err_clear(&e);
    if (ok && *head < want) {
        int64_t ph = db_reads_primary_head(rs);
        if (ph >= 0 && ph < want)
            want = ph;
    }
    return ok && *head >= want;
}

static void *db_reads_prober_main(void *arg)
{
    db_reads *rs = arg;
    pthread_mutex_lock(&rs->mu);
    for (;;) {
        while (!rs->stopping && !atomic_load(&rs->down))
            pthread_cond_wait(&rs->cv, &rs->mu);
        if (rs->stopping)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(DB_READS_PROBE_S * 1e9);
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        (void)pthread_cond_timedwait(&rs->cv, &rs->mu, &ts);
        if (rs->stopping)
            break;
        int64_t want = rs->target, head = 0;
        pthread_mutex_unlock(&rs->mu);
        bool back = db_reads_probe(rs, want, &head);
        pthread_mutex_lock(&rs->mu);
        if (back && rs->target <= want) {
            atomic_store(&rs->down, false);
            log_info("reads: the standby answers again (head %lld); reads go back to it",
                     (long long)head);
        }
    }
    pthread_mutex_unlock(&rs->mu);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------ */

db_reads *db_reads_new(db_pool *primary, const db_spec *spec, db_reads_head_fn head,
                       const char *read_url, int size, metrics *m)
{
    db_reads *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    rs->primary = primary;
    rs->spec = spec;
    rs->head_fn = head;
    rs->opts = (db_opts){.reads = true, .timeout_ms = DB_READS_TIMEOUT_MS};
    pthread_mutex_init(&rs->mu, NULL);
    pthread_cond_init(&rs->cv, NULL);
    rs->m_reads = metrics_counter(m, "eskit_db_reads_total",
                                  "Database connections taken for reads, by server: standby "
                                  "(ESKIT_DATABASE_READ_URL) or primary.",
                                  "on");
    rs->m_fallbacks = metrics_counter(m, "eskit_standby_fallbacks_total",
                                      "Reads a standby could not serve and the primary did, by "
                                      "reason: lag (not replayed far enough in time) or error.",
                                      "reason");
    if (read_url) {
        rs->read_url = strdup(read_url);
        rs->standby = rs->read_url ? db_pool_new_opts(read_url, rs->spec, size, &rs->opts)
                                   : NULL;
        if (!rs->standby)
            goto fail;
        if (pthread_create(&rs->prober, NULL, db_reads_prober_main, rs) != 0)
            goto fail;
        rs->prober_started = true;
    }
    return rs;
fail:
    db_reads_free(rs);
    return NULL;
}

void db_reads_free(db_reads *rs)
{
    if (!rs)
        return;
    if (rs->prober_started) {
        pthread_mutex_lock(&rs->mu);
        rs->stopping = true;
        pthread_cond_signal(&rs->cv);
        pthread_mutex_unlock(&rs->mu);
        pthread_join(rs->prober, NULL);
    }
    db_pool_free(rs->standby);
    free(rs->read_url);
    pthread_cond_destroy(&rs->cv);
    pthread_mutex_destroy(&rs->mu);
    free(rs);
}

/* ---- connections ------------------------------------------------------------- */

static void db_reads_count(db_reads *rs, const db_rconn *c)
{
    metrics_add(rs->m_reads, (const char *[]){c->standby ? "standby" : "primary"}, 1);
}

int db_reads_get(db_reads *rs, bool wait, db_rconn *c, err *e)
{
    *c = (db_rconn){NULL, false};
    if (rs->standby && !atomic_load(&rs->down)) {
        err se = ERR_INIT;
        c->d = wait ? db_pool_acquire(rs->standby, &se) : db_pool_try_acquire(rs->standby);
        if (c->d) {
            c->standby = true;
            db_reads_count(rs, c);
            return 1;
        }
        if (!wait)
            return 0; /* none open and free: where it may wait, one is opened */
        db_reads_leave(rs, 0, "error", se.message);
        metrics_add(rs->m_fallbacks, (const char *[]){"error"}, 1);
        err_clear(&se);
    }
    c->d = wait ? db_pool_acquire(rs->primary, e) : db_pool_try_acquire(rs->primary);
    if (!c->d)
        return wait ? -1 : 0;
    db_reads_count(rs, c);
    return 1;
}

void db_reads_put(db_reads *rs, db_rconn *c)
{
    if (!c->d)
        return;
    db_pool_release(c->standby ? rs->standby : rs->primary, c->d);
    c->d = NULL;
}

bool db_reads_head(db_reads *rs, int64_t *head)
{
    err e = ERR_INIT;
    db_rconn c;
    bool ok = db_reads_get(rs, true, &c, &e) > 0 && rs->head_fn(c.d, head, &e);
    db_reads_put(rs, &c);
    err_clear(&e);
    return ok;
}

/* Polls c's head until it reaches floor: 1, 0 when DB_READS_WAIT_MS went
 * by first, -1 when the standby failed (e set). */
static int db_reads_catch_up(db_reads *rs, db_rconn *c, int64_t floor, err *e)
{
    (void)rs;
    double deadline = timefmt_mono() + DB_READS_WAIT_MS / 1000.0;
    long pause_us = 500;
    for (;;) {
        int64_t head = 0;
        if (!rs->head_fn(c->d, &head, e))
            return -1;
        if (head > db_mark(c->d))
            db_set_mark(c->d, head);
        if (head >= floor)
            return 1;
        double left = deadline - timefmt_mono();
        if (left <= 0)
            return 0;
        long us = left * 1e6 < pause_us ? (long)(left * 1e6) : pause_us;
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        if (pause_us < 16000)
            pause_us *= 2;
    }
}

db_reads_next db_reads_after(db_reads *rs, db_rconn *c, bool ok, int64_t head, int64_t floor,
                       bool wait, err *e)
{
    const char *why = "error";
    if (ok) {
        if (!c->standby || head >= floor) {
            if (c->standby && head != DB_READS_NO_HEAD && head > db_mark(c->d))
                db_set_mark(c->d, head);
            return DB_READS_KEEP;
        }
        if (!wait) {
            db_reads_put(rs, c);
            return DB_READS_LATER;
        }
        int r = db_reads_catch_up(rs, c, floor, e);
        if (r == 1)
            return DB_READS_AGAIN;
        why = r == 0 ? "lag" : "error";
        if (r == 0)
            log_info("reads: the standby stayed below head %lld for %d ms",
                     (long long)floor, DB_READS_WAIT_MS);
        db_reads_leave(rs, r == 0 ? floor : 0, why, r == 0 ? NULL : e->message);
    } else {
        if (!c->standby)
            return DB_READS_KEEP;
        /* a broken or silent standby is left; a statement that failed on a
         * working one (a conflict with its replay) only sends this read on */
        if (!db_healthy(c->d))
            db_reads_leave(rs, 0, "error", e->message);
        else
            log_info("reads: a read failed on the standby (%s); the primary runs it",
                     e->message);
        if (!wait) {
            db_reads_put(rs, c);
            err_clear(e);
            return DB_READS_LATER;
        }
    }
    db_reads_put(rs, c);
    err_clear(e);
    metrics_add(rs->m_fallbacks, (const char *[]){why}, 1);
    c->d = db_pool_acquire(rs->primary, e);
    if (!c->d)
        return DB_READS_FAILED;
    c->standby = false;
    db_reads_count(rs, c);
    return DB_READS_AGAIN;
}

db_reads_next db_reads_ensure(db_reads *rs, db_rconn *c, int64_t floor, bool wait, err *e)
{
    for (;;) {
        if (!c->standby || floor <= db_mark(c->d))
            return DB_READS_KEEP;
        int64_t head = 0;
        bool ok = rs->head_fn(c->d, &head, e);
        db_reads_next n = db_reads_after(rs, c, ok, head, floor, wait, e);
        if (n != DB_READS_AGAIN)
            return n;
    }
}
