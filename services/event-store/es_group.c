/*
 * es_group.c - one group transaction (es_group.h).
 *
 * Correctness of the log rests on two facts. (1) Every writing transaction,
 * of every process, takes the same lock before it reads the head and assigns
 * log ids, and keeps it until commit; PostgreSQL makes a transaction visible
 * before it releases its locks, so ids become visible in increasing order.
 * (2) Version checks happen under the same lock, so two appends of the same
 * version cannot both pass; the UNIQUE (originator_id, version) constraint is
 * the safety net behind it.
 *
 * The one-statement path keeps both facts: es_append_group (schema pg/0003)
 * takes the lock, checks every version the group's decisions rest on (those
 * of rejected appends too), numbers from the head it reads, and writes, all
 * in one transaction. A decision made from a remembered version is final only
 * if that check passes; otherwise nothing is written and the general path
 * decides again from what it reads.
 */
#include "es_group.h"

#include <stdlib.h>
#include <string.h>

#include "es_slot.h"
#include "es_store.h"
#include "jsonw.h"
#include "jsonx.h"
#include "log.h"

#define ES_GROUP_JSON_MAX ((size_t)1 << 31) /* bytes of one statement parameter */

/* ------------------------------------------------------------------------ */
/* the streams touched by one group                                        */

typedef struct es_sstate {
    const char *id;
    int64_t base;      /* the version before the group (0: no such stream) */
    int64_t version;   /* as of this group so far */
    int64_t pending;   /* events of the job being checked */
    bool touched;
    const char *entity_type; /* NULL: a new stream; "": an existing one */
    size_t entity_len;
    const char *last_event_type;
    int64_t created_log_id;
    int64_t updated_log_id;
} es_sstate;

typedef struct es_smap {
    es_sstate *slots;
    size_t cap; /* a power of two */
} es_smap;

static es_sstate *es_smap_get(es_smap *m, const char *id, bool add)
{
    return es_slot(m->slots, sizeof *m->slots, m->cap, id, add);
}

/* A map holding every stream the jobs touch, all new and at version 0.
 * false on OOM. */
static bool es_smap_fill(es_smap *m, es_gjob **jobs, size_t n)
{
    size_t nevents = 0;
    for (size_t i = 0; i < n; i++)
        nevents += jobs[i]->n;
    for (m->cap = 16; m->cap < nevents * 2; m->cap *= 2)
        ;
    if (!(m->slots = calloc(m->cap, sizeof *m->slots)))
        return false;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < jobs[i]->n; k++)
            (void)es_smap_get(m, jobs[i]->events[k].originator_id, true);
    return true;
}

/* ------------------------------------------------------------------------ */
/* the event ids of a group: what its idempotent appends are judged by      */

/* A known event id: a stored event (row `row` of `r`) or an event accepted
 * earlier in this group (`ev`). */
typedef struct es_iref {
    const char *id;
    const db_res *r; /* columns of ES_EVENTS_BY_ID */
    size_t row;
    const es_event *ev;
} es_iref;

typedef struct es_imap {
    es_iref *slots;
    size_t cap; /* a power of two; 0 when the group carries no event id */
} es_imap;

static es_iref *es_imap_get(es_imap *m, const char *id, bool add)
{
    return es_slot(m->slots, sizeof *m->slots, m->cap, id, add);
}

/* What either path builds for a group: the streams it touches, its event
 * ids, and JSON arrays for the statements (`lead`: the versions to check,
 * or the ids to read; `ids`: the event ids). */
typedef struct es_gwork {
    es_smap m;
    es_imap im;
    buf lead, events, streams, ids;
} es_gwork;

/* false on OOM; es_gwork_free() either way. */
static bool es_gwork_init(es_gwork *w, es_gjob **jobs, size_t n)
{
    w->m = (es_smap){NULL, 0};
    w->im = (es_imap){NULL, 0};
    buf_init(&w->lead, ES_GROUP_JSON_MAX);
    buf_init(&w->events, ES_GROUP_JSON_MAX);
    buf_init(&w->streams, ES_GROUP_JSON_MAX);
    buf_init(&w->ids, ES_GROUP_JSON_MAX);
    if (!es_smap_fill(&w->m, jobs, n))
        return false;
    size_t nids = 0;
    bool full = buf_puts(&w->ids, "[") != 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < jobs[i]->n; k++) {
            const char *id = jobs[i]->events[k].event_id;
            if (!id[0])
                continue;
            full |= buf_printf(&w->ids, "%s\"%s\"", nids ? "," : "", id) != 0;
            nids++;
        }
    full |= buf_puts(&w->ids, "]") != 0;
    if (full)
        return false;
    if (nids > 0) {
        /* room for every id twice over: stored and accepted in the group */
        for (w->im.cap = 16; w->im.cap < nids * 4; w->im.cap *= 2)
            ;
        if (!(w->im.slots = calloc(w->im.cap, sizeof *w->im.slots)))
            return false;
    }
    return true;
}

static void es_gwork_free(es_gwork *w)
{
    buf_free(&w->lead);
    buf_free(&w->events);
    buf_free(&w->streams);
    buf_free(&w->ids);
    free(w->m.slots);
    free(w->im.slots);
}

/* Remembers the stored events of the group's ids (rows of ES_EVENTS_BY_ID). */
static void es_imap_stored(es_imap *m, const db_res *r)
{
    for (size_t i = 0; m->cap && i < db_res_rows(r); i++) {
        es_iref *ref = es_imap_get(m, db_res_text(r, i, 0), true);
        ref->r = r;
        ref->row = i;
    }
}

/* Stored JSON text (or NULL: absent) equal to a request's value (or NULL).
 * Stored text is parsed as a reader does: PostgreSQL spells 1e20 as a
 * 21-digit integer, which jsonx_parse would refuse. */
static bool es_same_json(const json_t *v, const char *text)
{
    if (!v || !text)
        return !v && !text;
    err e = ERR_INIT;
    json_t *stored = jsonx_parse_stored(text, strlen(text), &e);
    err_clear(&e);
    bool same = stored && jsonx_equal(v, stored);
    json_decref(stored);
    return same;
}

/* Whether an event of a request is the event found under its id: the same
 * stream, event type, payload and metadata, and the same version where the
 * request gives one. */
static bool es_same_event(const es_event *ev, const es_iref *ref)
{
    if (ref->ev) {
        const es_event *o = ref->ev;
        return strcmp(ev->originator_id, o->originator_id) == 0 &&
               strcmp(ev->event_type, o->event_type) == 0 &&
               (!ev->want_version || ev->want_version == o->version) &&
               jsonx_equal(ev->payload, o->payload) &&
               (ev->metadata && o->metadata ? jsonx_equal(ev->metadata, o->metadata)
                                            : !ev->metadata && !o->metadata);
    }
    const db_res *r = ref->r;
    size_t i = ref->row;
    return strcmp(ev->originator_id, db_res_text(r, i, 2)) == 0 &&
           strcmp(ev->event_type, db_res_text(r, i, 4)) == 0 &&
           (!ev->want_version || ev->want_version == db_res_int(r, i, 3)) &&
           es_same_json(ev->payload, db_res_text(r, i, 5)) &&
           es_same_json(ev->metadata, db_res_text(r, i, 6));
}

/*
 * Judges a job by its event ids. Returns true when the job must be written
 * as an ordinary append (none of its ids is known). Otherwise the job is
 * decided here: a retry (every event known, the same: replayed, its events
 * filled from the stored ones, or pointed at the group's by same_as) or a
 * conflict (j->e names the first id that is known with other content, else
 * the first known one).
 */
static bool es_job_fresh(es_gjob *j, es_imap *m)
{
    if (!m->cap)
        return true;
    size_t known = 0;
    const char *first = NULL, *other = NULL;
    for (size_t i = 0; i < j->n; i++) {
        const es_event *ev = &j->events[i];
        const es_iref *ref = ev->event_id[0] ? es_imap_get(m, ev->event_id, false) : NULL;
        if (!ref)
            continue;
        known++;
        if (!first)
            first = ev->event_id;
        if (!other && !es_same_event(ev, ref))
            other = ev->event_id;
    }
    if (known == 0)
        return true;
    if (!other && known == j->n) {
        for (size_t i = 0; i < j->n; i++) {
            es_event *ev = &j->events[i];
            const es_iref *ref = es_imap_get(m, ev->event_id, false);
            ev->same_as = ref->ev;
            if (!ref->ev) {
                ev->log_id = db_res_int(ref->r, ref->row, 1);
                ev->version = db_res_int(ref->r, ref->row, 3);
                ev->occurred_on = db_res_int(ref->r, ref->row, 7);
                ev->recorded_at = db_res_int(ref->r, ref->row, 8);
            }
        }
        j->replayed = true;
        return false;
    }
    const char *id = other ? other : first;
    err_set_details(&j->e, ERR_CONFLICT, json_pack("{s:s}", "event_id", id),
                    other ? "event %s is stored already with other content; nothing was written"
                          : "event %s is stored already, other events of this append are not; "
                            "nothing was written",
                    id);
    return false;
}

/* The ids of an accepted job become known to the jobs after it. */
static void es_imap_accepted(es_imap *m, const es_gjob *j)
{
    for (size_t i = 0; m->cap && i < j->n; i++) {
        const es_event *ev = &j->events[i];
        if (!ev->event_id[0])
            continue;
        es_iref *ref = es_imap_get(m, ev->event_id, true);
        ref->r = NULL;
        ref->ev = ev;
    }
}

/* Once the group's log ids and recorded_at are final: a retry of an event
 * of the same group answers with that event. */
static void es_group_fill_retries(es_gjob **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i]->replayed)
            continue;
        for (size_t k = 0; k < jobs[i]->n; k++) {
            es_event *ev = &jobs[i]->events[k];
            if (!ev->same_as)
                continue;
            ev->log_id = ev->same_as->log_id;
            ev->version = ev->same_as->version;
            ev->occurred_on = ev->same_as->occurred_on;
            ev->recorded_at = ev->same_as->recorded_at;
            ev->same_as = NULL;
        }
    }
}

/* Sets a stream's version before the group (> 0: it exists; -1: it was
 * erased, ES_VERSIONS and es_append_group's mark of a tombstone). */
static void es_sstate_base(es_sstate *s, int64_t version)
{
    s->base = s->version = version;
    s->entity_type = version != 0 ? "" : NULL; /* existing: the upsert keeps its type */
}

/* ------------------------------------------------------------------------ */
/* deciding the jobs                                                       */

static void es_job_conflict(es_gjob *j, const es_sstate *s, int64_t wanted)
{
    err_set_details(&j->e, ERR_CONFLICT,
                    json_pack("{s:I}", "current_version", (json_int_t)s->version),
                    "stream %s is at version %lld; version %lld cannot follow it", s->id,
                    (long long)s->version, (long long)wanted);
}

/* Checks one job against the group's stream states; on success applies it
 * (versions, log ids). Returns true when the job is accepted. */
static bool es_job_apply(es_gjob *j, es_smap *m, int64_t *head)
{
    bool ok = true;
    for (size_t i = 0; i < j->n && ok; i++) {
        es_event *ev = &j->events[i];
        es_sstate *s = es_smap_get(m, ev->originator_id, false);
        int64_t k = s->pending++;
        if (s->version < 0) {
            err_set(&j->e, ERR_GONE, "stream %s was erased; nothing can be appended to it",
                    s->id);
            ok = false;
        } else if (ev->want_version && s->version != ev->want_version - k - 1) {
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

/* Appends one element of the events' JSON array. 0, or -1 when full. */
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
           (ev->metadata && (buf_puts(b, ",\"metadata\":") || jsonw_value(b, ev->metadata))) ||
           (ev->event_id[0] && buf_printf(b, ",\"event_id\":\"%s\"", ev->event_id)) ||
           buf_printf(b, ",\"occurred_on\":%lld}", (long long)ev->occurred_on);
}

/* Appends one element of the streams' JSON array. */
static int es_stream_row(buf *b, const es_sstate *s)
{
    return buf_puts(b, b->len > 1 ? ",{\"id\":" : "{\"id\":") || jsonw_string(b, s->id) ||
           buf_puts(b, ",\"entity_type\":") || jsonw_stringn(b, s->entity_type, s->entity_len) ||
           buf_printf(b, ",\"version\":%lld,\"last_event_type\":", (long long)s->version) ||
           jsonw_string(b, s->last_event_type) ||
           buf_printf(b, ",\"created_log_id\":%lld,\"updated_log_id\":%lld}",
                      (long long)s->created_log_id, (long long)s->updated_log_id);
}

/* The jobs decided against the map's versions and the known event ids,
 * numbered after *head (which ends at the last id given) and recorded at
 * `recorded_at`: the accepted events go to `events` and the touched streams
 * to `streams` (JSON arrays, closed). Returns the number of accepted jobs,
 * or -1 when a buffer is full. */
static long es_group_decide(es_gjob **jobs, size_t n, es_gwork *w, int64_t *head,
                            int64_t recorded_at)
{
    es_smap *m = &w->m;
    buf *events = &w->events, *streams = &w->streams;
    long accepted = 0;
    bool full = buf_puts(events, "[") || buf_puts(streams, "[");
    for (size_t i = 0; i < n; i++) {
        err_clear(&jobs[i]->e);
        jobs[i]->ok = false;
        jobs[i]->replayed = false;
        if (!es_job_fresh(jobs[i], &w->im) || !es_job_apply(jobs[i], m, head))
            continue;
        accepted++;
        es_imap_accepted(&w->im, jobs[i]);
        for (size_t k = 0; k < jobs[i]->n; k++) {
            jobs[i]->events[k].recorded_at = recorded_at;
            full |= es_event_row(events, &jobs[i]->events[k]) != 0;
        }
    }
    for (size_t i = 0; i < m->cap; i++) {
        es_sstate *s = &m->slots[i];
        if (!s->id || !s->touched)
            continue;
        if (!s->entity_type[0]) { /* existing stream: type and creation are kept */
            s->entity_type = s->last_event_type;
            s->entity_len = strlen(s->last_event_type);
        }
        full |= es_stream_row(streams, s) != 0;
    }
    full |= buf_puts(events, "]") || buf_puts(streams, "]");
    return full ? -1 : accepted;
}

/* Remembers the map's versions: true as of the transaction that decided
 * (an erased stream's -1 too). */
static void es_group_learn(es_group_ctx *g, const es_smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].id && m->slots[i].version != 0)
            es_vcache_put(g->vc, m->slots[i].id, m->slots[i].version);
}

/* After a commit by `path`: the jobs that were not refused are ok, the
 * group is counted when it wrote, and the map's versions are remembered. */
static void es_group_done(es_group_ctx *g, const char *path, es_gjob **jobs, size_t n,
                          const es_smap *m, long accepted)
{
    const char *labels[] = {path};
    if (accepted > 0)
        metrics_add(g->m_groups, labels, 1);
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->e.code == ERR_NONE)
            jobs[i]->ok = true;
    es_group_fill_retries(jobs, n);
    es_group_learn(g, m);
}

/* ------------------------------------------------------------------------ */
/* the one-statement path                                                  */

/* DB_OK with *moved false: committed (or nothing to write), jobs marked;
 * counted under `path`. DB_OK with *moved true: nothing written, and the
 * true versions of the streams that moved are remembered for another try;
 * *general also true: an event id of the group is stored, and only the
 * general path can decide it. Anything else: failed, nothing written. */
static db_status es_group_one_stmt(es_group_ctx *g, const char *path, es_gjob **jobs,
                                   size_t n, bool *moved, bool *general)
{
    db_status st = DB_ERR_OTHER;
    es_gwork w;
    db_res *r = NULL;
    err e = ERR_INIT;
    *moved = false;

    if (!es_gwork_init(&w, jobs, n))
        goto done;
    bool full = buf_puts(&w.lead, "[") != 0;
    for (size_t i = 0; i < w.m.cap; i++) {
        es_sstate *s = &w.m.slots[i];
        if (!s->id)
            continue;
        es_sstate_base(s, es_vcache_get(g->vc, s->id));
        full |= buf_puts(&w.lead, w.lead.len > 1 ? ",{\"id\":" : "{\"id\":") ||
                jsonw_string(&w.lead, s->id) ||
                buf_printf(&w.lead, ",\"version\":%lld}", (long long)s->base);
    }
    /* Log ids count from 0 here; the statement adds the head. */
    int64_t ord = 0;
    long accepted = -1;
    /* the recorded_at comes back with the head */
    if (full || buf_puts(&w.lead, "]") ||
        (accepted = es_group_decide(jobs, n, &w, &ord, 0)) < 0)
        goto done;
    db_param p[] = {DB_TEXT(w.lead.data), DB_TEXT(w.events.data), DB_TEXT(w.streams.data),
                    DB_TEXT(w.ids.data)};
    if ((st = db_exec(g->conn, ES_APPEND_GROUP, p, 4, &r, &e)) != DB_OK) {
        /* the statement commits by itself: once sent, it may have */
        g->unknown = st == DB_ERR_UNAVAILABLE;
        log_warn("append: group of %zu failed: %s", n, e.message);
        goto done;
    }
    int64_t head = db_res_rows(r) ? db_res_int(r, 0, 0) : -1;
    if (head < 0) {
        *moved = true;
        if (head == -2) /* this back end has no such statement */
            g->one_stmt = false;
        else if (head == -3)
            *general = true;
        for (size_t i = 0; head == -1 && i < db_res_rows(r); i++)
            es_vcache_put(g->vc, db_res_text(r, i, 1), db_res_int(r, i, 2));
        goto done;
    }
    int64_t recorded_at = db_res_int(r, 0, 3);
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->e.code == ERR_NONE && !jobs[i]->replayed)
            for (size_t k = 0; k < jobs[i]->n; k++) {
                jobs[i]->events[k].log_id += head;
                jobs[i]->events[k].recorded_at = recorded_at;
            }
    es_group_done(g, path, jobs, n, &w.m, accepted);
done:
    if (st != DB_OK || *moved)
        for (size_t i = 0; i < n; i++)
            err_clear(&jobs[i]->e);
    err_clear(&e);
    db_res_free(r);
    es_gwork_free(&w);
    return st;
}

/* ------------------------------------------------------------------------ */
/* the general path                                                        */

static db_status es_group_general(es_group_ctx *g, es_gjob **jobs, size_t n)
{
    db_status st = DB_ERR_OTHER;
    db_res *r = NULL, *rhead = NULL, *rstored = NULL;
    es_gwork w;
    err e = ERR_INIT;

    if (!es_gwork_init(&w, jobs, n))
        goto done;
    bool full = buf_puts(&w.lead, "[") != 0;
    for (size_t i = 0; i < w.m.cap; i++)
        if (w.m.slots[i].id)
            full |= (w.lead.len > 1 && buf_puts(&w.lead, ",")) ||
                    jsonw_string(&w.lead, w.m.slots[i].id);
    if (full || buf_puts(&w.lead, "]"))
        goto done;

    /* Round trip 1: begin, take the log lock, read the head (and the time
     * the group is recorded at), the versions of every stream the group
     * touches and the stored events of its event ids (one pipeline). */
    db_param ip[] = {DB_TEXT(w.lead.data)}, idp[] = {DB_TEXT(w.ids.data)};
    db_step read_steps[] = {
        {DB_STEP_BEGIN, NULL, 0, NULL},
        {ES_LOCK, NULL, 0, NULL},
        {ES_HEAD_CLOCK, NULL, 0, &rhead},
        {ES_VERSIONS, ip, 1, &r},
        {ES_EVENTS_BY_ID, idp, 1, &rstored},
    };
    if ((st = db_pipeline(g->conn, read_steps, w.im.cap ? 5 : 4, &e)) != DB_OK)
        goto done; /* db_pipeline rolled back */
    int64_t head = db_res_rows(rhead) ? db_res_int(rhead, 0, 0) : 0;
    int64_t recorded_at = db_res_rows(rhead) ? db_res_int(rhead, 0, 1) : 0;
    for (size_t i = 0; i < db_res_rows(r); i++) {
        es_sstate *s = es_smap_get(&w.m, db_res_text(r, i, 0), false);
        if (s)
            es_sstate_base(s, db_res_int(r, i, 1));
    }
    if (rstored)
        es_imap_stored(&w.im, rstored);
    long accepted = es_group_decide(jobs, n, &w, &head, recorded_at);
    if (accepted <= 0) {
        db_rollback(g->conn);
        st = accepted == 0 ? DB_OK : DB_ERR_OTHER;
        if (accepted == 0) /* every job refused or a retry: what was read is still true */
            es_group_done(g, "general", jobs, n, &w.m, 0);
        goto done;
    }

    /* Round trip 2: write the events and the streams, notify other
     * replicas' readers (with the new head), commit (one pipeline). */
    char headtxt[24];
    snprintf(headtxt, sizeof headtxt, "%lld", (long long)head);
    db_param ep[] = {DB_TEXT(w.events.data), DB_INT(recorded_at)},
             sp[] = {DB_TEXT(w.streams.data)}, np[] = {DB_TEXT(headtxt)};
    db_step write_steps[] = {
        {ES_INSERT_EVENTS, ep, 2, NULL},
        {ES_UPSERT_STREAMS, sp, 1, NULL},
        {ES_NOTIFY, np, 1, NULL},
        {DB_STEP_COMMIT, NULL, 0, NULL},
    };
    if ((st = db_pipeline(g->conn, write_steps, 4, &e)) != DB_OK) {
        g->unknown = st == DB_ERR_UNAVAILABLE; /* the COMMIT may have arrived */
        goto done;
    }
    es_group_done(g, "general", jobs, n, &w.m, accepted);
done:
    if (st != DB_OK) {
        if (e.message[0])
            log_warn("append: group of %zu failed: %s", n, e.message);
        for (size_t i = 0; i < n; i++)
            err_clear(&jobs[i]->e);
    }
    err_clear(&e);
    db_res_free(r);
    db_res_free(rhead);
    db_res_free(rstored);
    es_gwork_free(&w);
    return st;
}

db_status es_group_run(es_group_ctx *g, es_gjob **jobs, size_t n)
{
    /* A first try from memory; when versions had moved, a second from the
     * true versions the first one returned; only a stream moved again
     * between the two leaves the group to the general path. */
    static const char *const paths[] = {"one_statement", "retried"};
    g->unknown = false;
    for (size_t i = 0; i < 2 && g->one_stmt; i++) {
        bool moved = false, general = false;
        db_status st = es_group_one_stmt(g, paths[i], jobs, n, &moved, &general);
        if (st != DB_OK || !moved)
            return st;
        if (general)
            break;
    }
    return es_group_general(g, jobs, n);
}
