/*
 * es_routes.c - the event store's routes (data).
 */
#include "es_app.h"

const http_route es_routes[] = {
    {"POST", "/v1/events", es_http_append, HTTP_RUN_LOOP},
    {"GET", "/v1/events/{originator_id}", es_http_read_stream, HTTP_RUN_QUICK},
    {"GET", "/v1/streams", es_http_list_streams, HTTP_RUN_WORKER},
    {"GET", "/v1/streams/{originator_id}", es_http_get_stream, HTTP_RUN_QUICK},
    {"DELETE", "/v1/streams/{originator_id}", es_http_erase_stream, HTTP_RUN_WORKER},
    {"PUT", "/v1/streams/{originator_id}/metadata", es_http_put_stream_metadata,
     HTTP_RUN_WORKER},
    {"GET", "/v1/logs", es_http_read_log, HTTP_RUN_WORKER},
    {"GET", "/v1/logs/stream", es_http_log_sse, HTTP_RUN_WORKER},
    {"PUT", "/v1/snapshots/{originator_id}", es_http_put_snapshot, HTTP_RUN_WORKER},
    {"GET", "/v1/snapshots/{originator_id}", es_http_get_snapshot, HTTP_RUN_QUICK},
};
const size_t es_nroutes = sizeof es_routes / sizeof es_routes[0];
