/*
 * cs_app.h - the consumer store's process state, in one struct, its route
 * table and its handlers. Handlers reach the state through http_req_app().
 */
#ifndef CS_APP_H
#define CS_APP_H

#include "db.h"
#include "http_server.h"
#include "metrics.h"

typedef struct cs_app {
    db_pool *pool; /* connections for request threads */
    metrics *metrics;
    metrics_family *m_writes;    /* eskit_consumer_offset_writes_total{result} */
    metrics_family *m_consumers; /* eskit_consumers */
} cs_app;

/* The route table (cs_routes.c). */
extern const http_route cs_routes[];
extern const size_t cs_nroutes;

/* Handlers (cs_http.c). */
void cs_http_put(http_req *r);
void cs_http_get(http_req *r);
void cs_http_list(http_req *r);
void cs_http_delete(http_req *r);


#endif
