/*
 * es_app.h - the event store's process state, in one struct, and its route
 * table. Handlers reach it through http_req_app().
 */
#ifndef ES_APP_H
#define ES_APP_H

#include <stdint.h>

#include "db.h"
#include "es_append.h"
#include "es_read.h"
#include "db_reads.h"
#include "es_scavenge.h"
#include "http_server.h"
#include "metrics.h"
#include "watch.h"

typedef struct es_app {
    const char *db_url;
    db_pool *pool;           /* the primary's connections for handlers (appends: the
                              * committer's own) */
    db_reads *reads;         /* where reads run: standbys or the pool (db_reads.h) */
    es_committer *committer; /* the write path */
    es_reader *reader;       /* stream reads (GET /v1/events/{id}) */
    es_scavenger *scavenger; /* deletes what retention no longer keeps */
    watch *log_watch;        /* bumped when the log may have grown */
    metrics *metrics;
    metrics_family *m_appended; /* eskit_events_appended_total */
    metrics_family *m_head;     /* eskit_log_head_id */
} es_app;

/* The route table (es_routes.c). */
extern const http_route es_routes[];
extern const size_t es_nroutes;

/* Handlers, one file per endpoint group. */
void es_http_append(http_req *r);
void es_http_read_stream(http_req *r);
void es_http_get_stream(http_req *r);
void es_http_list_streams(http_req *r);
void es_http_put_stream_metadata(http_req *r);
void es_http_erase_stream(http_req *r);
void es_http_read_log(http_req *r);
void es_http_log_sse(http_req *r);
void es_http_put_snapshot(http_req *r);
void es_http_get_snapshot(http_req *r);


#endif
