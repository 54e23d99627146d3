/*
 * crud_sync.c - the read barrier (see crud_sync.h): rounds of log reads,
 * numbered. A reader that arrives needs the round after the one in flight
 * (whose head may predate it); the first waiter finding no round in flight
 * runs the next one itself, in its own thread, and wakes the others.
 */
#include "crud_sync.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_es.h"
#include "log.h"

struct crud_sync {
    http_client *es;
    crud_cache *cache;
    metrics_family *m_rounds, *m_skips;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t started; /* rounds begun */
    uint64_t done;    /* the last round that succeeded */
    uint64_t failed;  /* the last round that failed */
    bool busy;        /* a round is in flight */
    int64_t done_head; /* the log head the round `done` read */
    err_code failure_code; /* why the last failed round failed */
    char failure[sizeof ((err *)0)->message];
};

crud_sync *crud_sync_new(http_client *es, crud_cache *cache, metrics_family *rounds,
                         metrics_family *skips)
{
    crud_sync *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->es = es;
    s->cache = cache;
    s->m_rounds = rounds;
    s->m_skips = skips;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    return s;
}

void crud_sync_free(crud_sync *s)
{
    if (!s)
        return;
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void crud_sync_skipped(crud_sync *s)
{
    if (s->m_skips)
        metrics_add(s->m_skips, NULL, 1);
}

/* One log read from the cache's position, applied to the cache; *head_out:
 * the log head it read. */
static bool crud_sync_round(crud_sync *s, int64_t *head_out, err *e)
{
    crud_cache_mark m = crud_cache_mark_now(s->cache);
    json_t *page = NULL;
    crud_cache_seen *seen = NULL;
    bool ok = false;
    if (s->m_rounds)
        metrics_add(s->m_rounds, NULL, 1);
    if (!crud_es_log(s->es, m.position + 1, CRUD_SYNC_PAGE, &page, e))
        return false;
    int64_t next = json_integer_value(json_object_get(page, "next_from_id"));
    int64_t head = json_integer_value(json_object_get(page, "head_id"));
    json_t *results = json_object_get(page, "results");
    size_t n = json_array_size(results);
    *head_out = head;
    if (head < m.position) {
        /* The log went back: the event store is on another database. */
        log_warn("the event store's log head went back from %lld to %lld (a new database?): "
                 "the document cache starts over", (long long)m.position, (long long)head);
        crud_cache_reset(s->cache, head);
        crud_sync_skipped(s);
        ok = true;
        goto done;
    }
    if (next - 1 < head) {
        /* More than a page behind: skipping is cheaper than reading. */
        crud_cache_skip_to(s->cache, head);
        crud_sync_skipped(s);
        ok = true;
        goto done;
    }
    seen = calloc(n ? n : 1, sizeof *seen);
    if (!seen) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object_get(json_object_get(json_array_get(results, i), "event"),
                                    "originator");
        json_t *v = json_object_get(o, "version");
        seen[i].id = json_string_value(json_object_get(o, "id"));
        seen[i].version = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!seen[i].id || seen[i].version < 1) {
            err_set(e, ERR_INTERNAL, "the event store returned a log entry without originator");
            goto done;
        }
    }
    crud_cache_advance(s->cache, m.position, seen, n, head);
    /* an erased stream: the cache keeps nothing of it (reads ask the event
     * store, which answers 410) */
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_object_get(
            json_object_get(json_array_get(results, i), "event"), "event_type"));
        const char *dot = t ? strrchr(t, '.') : NULL;
        if (dot && strcmp(dot, ".Erased") == 0)
            crud_cache_forget(s->cache, seen[i].id);
    }
    ok = true;
done:
    free(seen);
    json_decref(page);
    return ok;
}

crud_sync_ticket crud_sync_arrive(crud_sync *s)
{
    pthread_mutex_lock(&s->mu);
    crud_sync_ticket t = s->started + 1; /* the round in flight may predate us */
    pthread_mutex_unlock(&s->mu);
    return t;
}

bool crud_sync_wait_since(crud_sync *s, crud_sync_ticket target, int64_t *head, err *e)
{
    pthread_mutex_lock(&s->mu);
    while (s->done < target) {
        if (s->failed >= target) {
            err_set(e, s->failure_code, "%s", s->failure);
            pthread_mutex_unlock(&s->mu);
            return false;
        }
        if (s->busy) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        s->busy = true;
        uint64_t round = ++s->started;
        pthread_mutex_unlock(&s->mu);
        err re = ERR_INIT;
        int64_t h = 0;
        bool ok = crud_sync_round(s, &h, &re);
        pthread_mutex_lock(&s->mu);
        s->busy = false;
        if (ok) {
            s->done = round;
            s->done_head = h;
        } else {
            s->failed = round;
            s->failure_code = re.code;
            snprintf(s->failure, sizeof s->failure, "%s", re.message);
        }
        pthread_cond_broadcast(&s->cv);
        if (!ok) {
            pthread_mutex_unlock(&s->mu);
            err_move(e, &re);
            return false;
        }
        err_clear(&re);
    }
    if (head)
        *head = s->done_head;
    pthread_mutex_unlock(&s->mu);
    return true;
}

bool crud_sync_wait(crud_sync *s, err *e)
{
    return crud_sync_wait_since(s, crud_sync_arrive(s), NULL, e);
}
