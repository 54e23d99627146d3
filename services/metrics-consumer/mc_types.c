/*
 * mc_types.c - the cache of mc_types.h: a chained hash table from entity
 * type to (registered?, expiry), filled by GET /v1/types/{entity_type} on
 * the CRUD store.
 *
 * Answers live for different times: a registered type stays registered
 * (types are never deleted), so a 200 is kept for 10 minutes; a 404 for
 * 30 s, so that a type registered later is counted soon; a failed lookup
 * (CRUD store down, 5xx) for 5 s, so that an outage costs one time-out per
 * type every few seconds instead of one per event. During an outage a type
 * already known as registered stays registered (the CRUD store has no way to
 * unregister one); a type not yet known counts as not registered.
 */
#include "mc_types.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http_client.h"
#include "log.h"
#include "strhash.h"
#include "timefmt.h"

#define MC_TYPES_BUCKETS 256
#define MC_TYPES_MAX 10000          /* entries; past this the cache starts over */
#define MC_TYPES_TTL_YES 600.0      /* seconds */
#define MC_TYPES_TTL_NO 30.0
#define MC_TYPES_TTL_FAILED 5.0
#define MC_TYPES_TIMEOUT_MS 2000

typedef struct mc_type_entry {
    struct mc_type_entry *next;
    char *type; /* owned */
    bool registered;
    double expires; /* timefmt_mono() */
} mc_type_entry;

struct mc_types {
    http_client *crud;
    pthread_mutex_t mu; /* guards the table */
    mc_type_entry *buckets[MC_TYPES_BUCKETS];
    size_t count;
    double last_warned;
};

mc_types *mc_types_new(const char *crud_url, const char *token)
{
    mc_types *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->crud = http_client_new(crud_url, token, MC_TYPES_TIMEOUT_MS);
    if (!t->crud) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->last_warned = -1e9;
    return t;
}

static void mc_types_clear(mc_types *t)
{
    for (size_t i = 0; i < MC_TYPES_BUCKETS; i++) {
        mc_type_entry *e = t->buckets[i];
        while (e) {
            mc_type_entry *next = e->next;
            free(e->type);
            free(e);
            e = next;
        }
        t->buckets[i] = NULL;
    }
    t->count = 0;
}

void mc_types_free(mc_types *t)
{
    if (!t)
        return;
    mc_types_clear(t);
    http_client_free(t->crud);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static size_t mc_types_hash(const char *s)
{
    return (size_t)(strhash(s) % MC_TYPES_BUCKETS);
}

/* The entry for type, or NULL. Called with mu held. */
static mc_type_entry *mc_types_find(mc_types *t, const char *type)
{
    for (mc_type_entry *e = t->buckets[mc_types_hash(type)]; e; e = e->next)
        if (strcmp(e->type, type) == 0)
            return e;
    return NULL;
}

/* Records an answer; on OOM nothing is cached (the type is asked again). */
static void mc_types_put(mc_types *t, const char *type, bool registered, double ttl)
{
    pthread_mutex_lock(&t->mu);
    mc_type_entry *e = mc_types_find(t, type);
    if (!e) {
        if (t->count >= MC_TYPES_MAX)
            mc_types_clear(t);
        e = calloc(1, sizeof *e);
        char *copy = e ? strdup(type) : NULL;
        if (!copy) {
            free(e);
            goto done;
        }
        size_t b = mc_types_hash(type);
        e->type = copy;
        e->next = t->buckets[b];
        t->buckets[b] = e;
        t->count++;
    }
    e->registered = registered;
    e->expires = timefmt_mono() + ttl;
done:
    pthread_mutex_unlock(&t->mu);
}

/* Asks the CRUD store. Returns 1 registered, 0 not, -1 no answer. */
static int mc_types_lookup(mc_types *t, const char *type)
{
    http_resp r = {0};
    err e = ERR_INIT;
    int rc = -1;
    buf path;
    buf_init(&path, 1024);
    if (buf_puts(&path, "/v1/types/") || http_client_escape(&path, type))
        goto done;
    http_call call = {.method = "GET", .path = path.data};
    if (!http_client_do(t->crud, &call, &r, &e))
        goto done;
    if (r.status == 200)
        rc = 1;
    else if (r.status == 404)
        rc = 0;
    else
        err_set(&e, ERR_UNAVAILABLE, "CRUD store answered %ld to GET %s", r.status, path.data);
done:
    if (rc < 0) {
        double now = timefmt_mono();
        pthread_mutex_lock(&t->mu);
        bool warn = now - t->last_warned >= 30.0;
        if (warn)
            t->last_warned = now;
        pthread_mutex_unlock(&t->mu);
        if (warn)
            log_warn("cannot tell whether entity type %s is registered: %s", type,
                     e.code ? e.message : "out of memory");
    }
    http_resp_free(&r);
    buf_free(&path);
    err_clear(&e);
    return rc;
}

bool mc_types_registered(mc_types *t, const char *entity_type)
{
    pthread_mutex_lock(&t->mu);
    mc_type_entry *e = mc_types_find(t, entity_type);
    bool fresh = e && e->expires > timefmt_mono();
    bool registered = e && e->registered;
    pthread_mutex_unlock(&t->mu);
    if (fresh)
        return registered;

    int rc = mc_types_lookup(t, entity_type);
    if (rc < 0) {
        /* Types are never unregistered: a type known as registered stays so
         * through an outage; an unknown one is not counted meanwhile. */
        mc_types_put(t, entity_type, registered, MC_TYPES_TTL_FAILED);
        return registered;
    }
    mc_types_put(t, entity_type, rc == 1, rc == 1 ? MC_TYPES_TTL_YES : MC_TYPES_TTL_NO);
    return rc == 1;
}
