/*
 * crud_app.h - the CRUD store's process state, in one struct, its route
 * table, its handlers and the small request helpers they share. Handlers
 * reach the state through http_req_app().
 */
#ifndef CRUD_APP_H
#define CRUD_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "crud_cache.h"
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"

typedef struct crud_types crud_types;
typedef struct crud_sync crud_sync;
typedef struct crud_index crud_index;

typedef struct crud_app {
    http_client *es;    /* the event store; shared, thread-safe, keep-alive */
    crud_cache *cache;  /* newest known state per stream id */
    crud_sync *sync;    /* catches the cache up with the log before reads */
    crud_types *types;  /* compiled JSON Schemas per entity type */
    size_t max_doc;     /* largest document, as compact JSON (ESKIT_MAX_BODY_BYTES) */
    crud_index *index;  /* the query index, in the store's own database */
    metrics *metrics;
    metrics_family *m_cache_hits;   /* eskit_crud_cache_hits_total */
    metrics_family *m_cache_misses; /* eskit_crud_cache_misses_total */
    metrics_family *m_replayed;     /* eskit_crud_replayed_events_total */
    metrics_family *m_snapshots;    /* eskit_crud_snapshots_written_total */
    metrics_family *m_retries;      /* eskit_crud_write_retries_total */
    metrics_family *m_cache_entries; /* eskit_crud_cache_entries */
    metrics_family *m_cache_bytes;   /* eskit_crud_cache_bytes */
    metrics_family *m_sync_rounds;   /* eskit_crud_log_catchups_total */
    metrics_family *m_sync_skips;    /* eskit_crud_log_skips_total */
    metrics_family *m_index_log_id;  /* eskit_crud_index_log_id */
} crud_app;

/* The route table (crud_routes.c). */
extern const http_route crud_routes[];
extern const size_t crud_nroutes;

/* Handlers, one file per endpoint group. */
void crud_http_create(http_req *r);
void crud_http_list(http_req *r);
void crud_http_get(http_req *r);
void crud_http_put(http_req *r);
void crud_http_patch(http_req *r);
void crud_http_delete(http_req *r);
void crud_http_history(http_req *r);
void crud_http_find(http_req *r);
void crud_http_bulk(http_req *r);
void crud_http_types_create(http_req *r);
void crud_http_types_list(http_req *r);
void crud_http_types_get(http_req *r);
void crud_http_types_put(http_req *r);

/* The {entity_type} path parameter of /v1/entities, checked (a valid entity
 * type, not under the reserved "eskit." prefix); NULL after replying 400. */
const char *crud_app_entity_type(http_req *r);
/* The {entity_type} path parameter of /v1/types; NULL after replying 400. */
const char *crud_app_type_param(http_req *r);
/* The If-Match header: *present false when absent or "*"; else *version is
 * the version it names ("3", "\"3\"" or W/"3"). False with e set (400) when
 * malformed. */
bool crud_app_if_match(http_req *r, int64_t *version, bool *present, err *e) WUR;

#endif
