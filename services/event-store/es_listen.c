/*
 * es_listen.c - LISTEN eskit_log on a dedicated connection; every
 * notification (and every reconnection, which may have missed some) bumps
 * the log watch. See es_listen.h.
 */
#include "es_listen.h"

#include <pthread.h>
#include <stdlib.h>

#include "db.h"
#include "es_store.h"
#include "log.h"
#include "timefmt.h"

struct es_listener {
    pthread_t thread;
    const char *url;
    watch *w;
};

static void *es_listener_main(void *arg)
{
    es_listener *l = arg;
    db *d = NULL;
    while (!watch_stopped(l->w)) {
        if (!d) {
            err e = ERR_INIT;
            d = db_open(l->url, &es_db_spec, &e);
            err_clear(&e);
            if (!d) {
                uint64_t g = watch_gen(l->w);
                (void)watch_wait(l->w, g, timefmt_mono() + 1.0);
                continue;
            }
            db_status st = db_listen(d, ES_NOTIFY_CHANNEL);
            if (st == DB_ERR_UNSUPPORTED)
                break; /* this back end has one process: local wake-ups suffice */
            if (st != DB_OK) {
                db_close(d);
                d = NULL;
                continue;
            }
            watch_bump(l->w); /* we may have missed notifications while away */
        }
        int rc = db_wait_notify(d, 500);
        if (rc > 0)
            watch_bump(l->w);
        else if (rc < 0) {
            log_warn("log listener: connection lost; reconnecting");
            db_close(d);
            d = NULL;
        }
    }
    db_close(d);
    return NULL;
}

es_listener *es_listener_start(const char *url, watch *w)
{
    es_listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->url = url;
    l->w = w;
    if (pthread_create(&l->thread, NULL, es_listener_main, l) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

void es_listener_stop(es_listener *l)
{
    if (!l)
        return;
    pthread_join(l->thread, NULL);
    free(l);
}
