/*
 * cs_routes.c - the consumer store's routes (data, SPEC §5).
 */
#include "cs_app.h"

const http_route cs_routes[] = {
    {"GET", "/v1/consumers", cs_http_list, HTTP_RUN_WORKER},
    {"GET", "/v1/consumers/{consumer_id}", cs_http_get, HTTP_RUN_WORKER},
    {"PUT", "/v1/consumers/{consumer_id}", cs_http_put, HTTP_RUN_WORKER},
    {"DELETE", "/v1/consumers/{consumer_id}", cs_http_delete, HTTP_RUN_WORKER},
};
const size_t cs_nroutes = sizeof cs_routes / sizeof cs_routes[0];
