/*
 * es_append.c - the committer thread and the group transaction (es_append.h).
 *
 * Correctness of the log rests on two facts. (1) Every writing transaction,
 * of every process, takes the same lock before it reads the head and assigns
 * log ids, and keeps it until commit; PostgreSQL makes a transaction visible
 * before it releases its locks, so ids become visible in increasing order.
 * (2) Version checks happen under the same lock, so two appends of the same
 * version cannot both pass; the UNIQUE (originator_id, version) constraint is
 * the safety net behind it.
 *
 * When a group fails for a reason other than a lost connection, each append
 * is retried alone, so that one bad append cannot fail its neighbours.
 */
#include "es_append.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "es_store.h"
#include "jsonw.h"
#include "log.h"
#include "timefmt.h"

#define ES_GROUP_MAX_JOBS 512
#define ES_GROUP_MAX_EVENTS 4000
#define ES_GROUP_JSON_MAX ((size_t)1 << 31) /* bytes of one statement parameter */
#define ES_RECONNECT_PAUSE 0.5 /* seconds between connection attempts */

typedef struct es_job {
    es_event *events;
    size_t n;
    err e;
    bool ok;
    bool done;
    pthread_cond_t cv;
    struct es_job *next;
} es_job;

struct es_committer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    es_job *head, *tail;
    bool stopping;
    const char *url;
    db *conn;
    double last_fail;
    watch *w;
};

/* ------------------------------------------------------------------------ */
/* the streams touched by one group                                        */

typedef struct es_sstate {
    const char *id;
    int64_t version;   /* as of this group so far */
    int64_t pending;   /* events of the job being checked */
    bool touched;
    const char *entity_type;
    size_t entity_len;
    const char *last_event_type;
    int64_t created_log_id;
    int64_t updated_log_id;
} es_sstate;

typedef struct es_smap {
    es_sstate *slots;
    size_t cap; /* a power of two */
} es_smap;

static size_t es_hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static es_sstate *es_smap_get(es_smap *m, const char *id, bool add)
{
    size_t i = es_hash(id) & (m->cap - 1);
    while (m->slots[i].id) {
        if (strcmp(m->slots[i].id, id) == 0)
            return &m->slots[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!add)
        return NULL;
    m->slots[i].id = id;
    return &m->slots[i];
}

/* ------------------------------------------------------------------------ */
/* one group transaction                                                   */

static void es_job_conflict(es_job *j, const es_sstate *s, int64_t wanted)
{
    err_set_details(&j->e, ERR_CONFLICT,
                    json_pack("{s:I}", "current_version", (json_int_t)s->version),
                    "stream %s is at version %lld; version %lld cannot follow it", s->id,
                    (long long)s->version, (long long)wanted);
}

/* Checks one job against the group's stream states; on success applies it
 * (versions, log ids). Returns true when the job is accepted. */
static bool es_job_apply(es_job *j, es_smap *m, int64_t *head)
{
    bool ok = true;
    for (size_t i = 0; i < j->n && ok; i++) {
        es_event *ev = &j->events[i];
        es_sstate *s = es_smap_get(m, ev->originator_id, false);
        int64_t k = s->pending++;
        if (ev->want_version && s->version != ev->want_version - k - 1) {
            es_job_conflict(j, s, ev->want_version - k);
            ok = false;
        }
    }
    for (size_t i = 0; i < j->n; i++)
        es_smap_get(m, j->events[i].originator_id, false)->pending = 0;
    if (!ok)
        return false;
    for (size_t i = 0; i < j->n; i++) {
        es_event *ev = &j->events[i];
        es_sstate *s = es_smap_get(m, ev->originator_id, false);
        ev->version = ++s->version;
        ev->log_id = ++*head;
        if (!s->entity_type) { /* a new stream: its first event names its type */
            s->entity_type = ev->event_type;
            s->entity_len = ev->entity_len;
            s->created_log_id = ev->log_id;
        }
        s->last_event_type = ev->event_type;
        s->updated_log_id = ev->log_id;
        s->touched = true;
    }
    return true;
}

/* Appends one element of ES_INSERT_EVENTS's JSON array. 0, or -1 when full. */
static int es_event_row(buf *b, const es_event *ev)
{
    return buf_printf(b, "%s{\"log_id\":%lld,\"originator_id\":", b->len > 1 ? "," : "",
                      (long long)ev->log_id) ||
           jsonw_string(b, ev->originator_id) ||
           buf_printf(b, ",\"version\":%lld,\"event_type\":", (long long)ev->version) ||
           jsonw_string(b, ev->event_type) || buf_puts(b, ",\"entity_type\":") ||
           jsonw_stringn(b, ev->event_type, ev->entity_len) ||
           buf_puts(b, ",\"event_name\":") ||
           jsonw_string(b, ev->event_type + ev->entity_len + 1) ||
           buf_puts(b, ",\"payload\":") || jsonw_value(b, ev->payload) ||
           buf_printf(b, ",\"occurred_on\":%lld}", (long long)ev->occurred_on);
}

/* Appends one element of ES_UPSERT_STREAMS's JSON array. */
static int es_stream_row(buf *b, const es_sstate *s)
{
    return buf_puts(b, b->len > 1 ? ",{\"id\":" : "{\"id\":") || jsonw_string(b, s->id) ||
           buf_puts(b, ",\"entity_type\":") || jsonw_stringn(b, s->entity_type, s->entity_len) ||
           buf_printf(b, ",\"version\":%lld,\"last_event_type\":", (long long)s->version) ||
           jsonw_string(b, s->last_event_type) ||
           buf_printf(b, ",\"created_log_id\":%lld,\"updated_log_id\":%lld}",
                      (long long)s->created_log_id, (long long)s->updated_log_id);
}

/*
 * Runs jobs[0..n) as one transaction. Returns DB_OK when the transaction
 * committed (or had nothing to write); jobs are then marked ok or failed
 * individually. Any other status: nothing was written, no job is marked ok.
 */
static db_status es_group_run(db *d, es_job **jobs, size_t n)
{
    db_status st = DB_OK;
    db_res *r = NULL, *rhead = NULL;
    buf ids, events, streams; /* the JSON arrays the statements take */
    bool full = false;
    es_smap m = {NULL, 0};
    err e = ERR_INIT;
    size_t nevents = 0, accepted = 0;
    int64_t head = 0;

    for (size_t i = 0; i < n; i++)
        nevents += jobs[i]->n;
    for (m.cap = 16; m.cap < nevents * 2; m.cap *= 2)
        ;
    buf_init(&ids, ES_GROUP_JSON_MAX);
    buf_init(&events, ES_GROUP_JSON_MAX);
    buf_init(&streams, ES_GROUP_JSON_MAX);
    m.slots = calloc(m.cap, sizeof *m.slots);
    if (!m.slots || buf_puts(&ids, "[") || buf_puts(&events, "[") || buf_puts(&streams, "[")) {
        st = DB_ERR_OTHER;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < jobs[i]->n; k++) {
            es_sstate *s = es_smap_get(&m, jobs[i]->events[k].originator_id, true);
            if (s->version == 0 && !s->touched && s->pending == 0) {
                s->pending = -1; /* mark: listed in ids */
                full |= (ids.len > 1 && buf_puts(&ids, ",")) || jsonw_string(&ids, s->id);
            }
        }
    }
    for (size_t i = 0; i < m.cap; i++)
        m.slots[i].pending = 0;

    /* Round trip 1: begin, take the log lock, read the head and the
     * versions of every stream the group touches (one pipeline). */
    if (full || buf_puts(&ids, "]")) {
        st = DB_ERR_OTHER;
        goto done;
    }
    db_param ip[] = {DB_TEXT(ids.data)};
    db_step read_steps[] = {
        {DB_STEP_BEGIN, NULL, 0, NULL},
        {ES_LOCK, NULL, 0, NULL},
        {ES_HEAD, NULL, 0, &rhead},
        {ES_VERSIONS, ip, 1, &r},
    };
    if ((st = db_pipeline(d, read_steps, 4, &e)) != DB_OK)
        goto fail_jobs;
    head = db_res_rows(rhead) ? db_res_int(rhead, 0, 0) : 0;
    for (size_t i = 0; i < db_res_rows(r); i++) {
        es_sstate *s = es_smap_get(&m, db_res_text(r, i, 0), false);
        if (s) {
            s->version = db_res_int(r, i, 1);
            s->entity_type = ""; /* exists: the upsert keeps its type */
        }
    }
    db_res_free(r);
    r = NULL;

    for (size_t i = 0; i < n; i++) {
        err_clear(&jobs[i]->e);
        jobs[i]->ok = false;
        if (!es_job_apply(jobs[i], &m, &head))
            continue;
        accepted++;
        for (size_t k = 0; k < jobs[i]->n; k++)
            full |= es_event_row(&events, &jobs[i]->events[k]) != 0;
    }
    if (accepted == 0) {
        db_rollback(d);
        goto done;
    }
    for (size_t i = 0; i < m.cap; i++) {
        es_sstate *s = &m.slots[i];
        if (!s->id || !s->touched)
            continue;
        if (!s->entity_type[0]) { /* existing stream: type and creation are kept */
            s->entity_type = s->last_event_type;
            s->entity_len = strlen(s->last_event_type);
        }
        full |= es_stream_row(&streams, s) != 0;
    }
    /* Round trip 2: write the events and the streams, notify other
     * replicas' readers, commit (one pipeline). */
    if (full || buf_puts(&events, "]") || buf_puts(&streams, "]")) {
        db_rollback(d);
        st = DB_ERR_OTHER;
        goto fail_jobs;
    }
    char headtxt[24];
    snprintf(headtxt, sizeof headtxt, "%lld", (long long)head);
    db_param ep[] = {DB_TEXT(events.data)}, sp[] = {DB_TEXT(streams.data)},
             np[] = {DB_TEXT(headtxt)};
    db_step write_steps[] = {
        {ES_INSERT_EVENTS, ep, 1, NULL},
        {ES_UPSERT_STREAMS, sp, 1, NULL},
        {ES_NOTIFY, np, 1, NULL},
        {DB_STEP_COMMIT, NULL, 0, NULL},
    };
    if ((st = db_pipeline(d, write_steps, 4, &e)) != DB_OK)
        goto fail_jobs;
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->e.code == ERR_NONE)
            jobs[i]->ok = true;
    goto done;

fail_jobs:
    if (e.message[0])
        log_warn("append: group of %zu failed: %s", n, e.message);
    for (size_t i = 0; i < n; i++)
        err_clear(&jobs[i]->e);
done:
    err_clear(&e);
    db_res_free(r);
    db_res_free(rhead);
    buf_free(&ids);
    buf_free(&events);
    buf_free(&streams);
    free(m.slots);
    return st;
}

/* Runs a group, falling back to one transaction per job when the group as a
 * whole fails for a reason other than the connection. */
static void es_group_commit(es_committer *c, es_job **jobs, size_t n)
{
    double now = timefmt_mono();
    if (!c->conn && now - c->last_fail >= ES_RECONNECT_PAUSE) {
        err e = ERR_INIT;
        c->conn = db_open(c->url, &es_db_spec, &e);
        if (!c->conn) {
            log_warn("append: %s", e.message);
            c->last_fail = now;
        }
        err_clear(&e);
    }
    db_status st = DB_ERR_UNAVAILABLE;
    if (c->conn) {
        st = es_group_run(c->conn, jobs, n);
        if (st != DB_OK && st != DB_ERR_UNAVAILABLE && n > 1) {
            for (size_t i = 0; i < n; i++) {
                db_status one = es_group_run(c->conn, &jobs[i], 1);
                if (one != DB_OK)
                    err_set(&jobs[i]->e, one == DB_ERR_UNAVAILABLE ? ERR_UNAVAILABLE
                                         : one == DB_ERR_CONSTRAINT ? ERR_CONFLICT
                                                                    : ERR_INTERNAL,
                            "the append could not be written (%s)",
                            one == DB_ERR_CONSTRAINT ? "a concurrent write took its version"
                                                     : "database error");
            }
            st = DB_OK;
        }
        if (st == DB_ERR_UNAVAILABLE || !db_healthy(c->conn)) {
            db_close(c->conn);
            c->conn = NULL;
            c->last_fail = timefmt_mono();
        }
    }
    if (st != DB_OK) {
        for (size_t i = 0; i < n; i++)
            err_set(&jobs[i]->e, st == DB_ERR_UNAVAILABLE ? ERR_UNAVAILABLE : ERR_INTERNAL,
                    st == DB_ERR_UNAVAILABLE ? "the database is unavailable; nothing was written"
                    : st == DB_ERR_CONSTRAINT ? "a concurrent write took this version"
                                              : "database error; nothing was written");
        if (st == DB_ERR_CONSTRAINT)
            for (size_t i = 0; i < n; i++)
                jobs[i]->e.code = ERR_CONFLICT;
    }
}

static void *es_committer_main(void *arg)
{
    es_committer *c = arg;
    es_job *group[ES_GROUP_MAX_JOBS];
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
               (n == 0 || events + c->head->n <= ES_GROUP_MAX_EVENTS)) {
            es_job *j = c->head;
            c->head = j->next;
            events += j->n;
            group[n++] = j;
        }
        if (!c->head)
            c->tail = NULL;
        pthread_mutex_unlock(&c->mu);

        double t0 = timefmt_mono();
        es_group_commit(c, group, n);
        log_debug("append: group of %zu appends (%zu events) in %.3f ms", n, events,
                  (timefmt_mono() - t0) * 1e3);
        bool any = false;
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < n; i++) {
            any |= group[i]->ok;
            group[i]->done = true;
            pthread_cond_signal(&group[i]->cv);
        }
        pthread_mutex_unlock(&c->mu);
        if (any)
            watch_bump(c->w);
    }
    db_close(c->conn);
    c->conn = NULL;
    return NULL;
}

es_committer *es_committer_start(const char *url, watch *w)
{
    es_committer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->url = url;
    c->w = w;
    c->last_fail = -1e9;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, es_committer_main, c) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
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
    free(c);
}

bool es_append(es_committer *c, es_event *events, size_t n, err *e)
{
    es_job j = {.events = events, .n = n, .e = ERR_INIT};
    pthread_cond_init(&j.cv, NULL);
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        pthread_cond_destroy(&j.cv);
        err_set(e, ERR_UNAVAILABLE, "the service is stopping");
        return false;
    }
    if (c->tail)
        c->tail->next = &j;
    else
        c->head = &j;
    c->tail = &j;
    pthread_cond_signal(&c->cv);
    while (!j.done)
        pthread_cond_wait(&j.cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&j.cv);
    if (!j.ok) {
        if (j.e.code == ERR_NONE)
            err_set(&j.e, ERR_INTERNAL, "the append failed");
        err_move(e, &j.e);
        return false;
    }
    err_clear(&j.e);
    return true;
}
