/*
 * es_listen.h - a thread that turns PostgreSQL notifications of commits by
 * other replicas into wake-ups of local long polls and streams. On a back
 * end without notifications (SQLite: one process) it ends at once; local
 * commits wake readers directly.
 */
#ifndef ES_LISTEN_H
#define ES_LISTEN_H

#include "db_reads.h"
#include "watch.h"

typedef struct es_listener es_listener;

/* `reads` learns the log head of every notification (db_reads_known). */
es_listener *es_listener_start(const char *url, watch *w, db_reads *reads);
/* Call after watch_stop(w): the thread notices within half a second. */
void es_listener_stop(es_listener *l);

#endif
