/*
 * es_listen.c - LISTEN eskit_log on a dedicated connection to the primary;
 * every notification (and every reconnection, which may have missed some)
 * bumps the log watch. Each notification carries the new log head, and a
 * reconnection reads it: db_reads learns it (db_reads_known), so that
 * readers on standbys wait until theirs has replayed that far. After a
 * failover the connection is lost; it is made again, every
 * ES_LISTEN_RETRY, until the URL's hosts show a new primary. Meanwhile no
 * notification can come, though the last commits of the old primary may
 * still reach a standby: the head that reads see is looked at instead, and
 * readers are woken when it rises. See es_listen.h.
 */
#include "es_listen.h"

#include <pthread.h>
#include <stdlib.h>

#include "db.h"
#include "es_store.h"
#include "log.h"
#include "timefmt.h"

#define ES_LISTEN_RETRY 0.25 /* seconds between attempts to reach the primary */

struct es_listener {
    pthread_t thread;
    const char *url;
    watch *w;
    db_reads *reads;
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
                int64_t head = 0;
                if (db_reads_head(l->reads, &head) && head > db_reads_known_head(l->reads)) {
                    db_reads_known(l->reads, head);
                    watch_bump(l->w);
                }
                (void)watch_wait(l->w, g, timefmt_mono() + ES_LISTEN_RETRY);
                continue;
            }
            db_status st = db_listen(d, ES_NOTIFY_CHANNEL);
            if (st == DB_ERR_UNSUPPORTED)
                break; /* this back end has one process: local wake-ups suffice */
            int64_t head = 0;
            err he = ERR_INIT;
            if (st != DB_OK || !es_store_head(d, &head, &he)) {
                err_clear(&he);
                db_close(d);
                d = NULL;
                uint64_t g = watch_gen(l->w);
                (void)watch_wait(l->w, g, timefmt_mono() + ES_LISTEN_RETRY);
                continue;
            }
            /* we may have missed notifications while away */
            db_reads_known(l->reads, head);
            watch_bump(l->w);
        }
        int64_t top = 0;
        int rc = db_wait_notify(d, 500, &top);
        if (rc > 0) {
            db_reads_known(l->reads, top);
            watch_bump(l->w);
        }
        else if (rc < 0) {
            log_warn("log listener: connection lost; reconnecting");
            db_close(d);
            d = NULL;
        }
    }
    db_close(d);
    return NULL;
}

es_listener *es_listener_start(const char *url, watch *w, db_reads *reads)
{
    es_listener *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->url = url;
    l->w = w;
    l->reads = reads;
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
