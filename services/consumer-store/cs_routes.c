/*
 * cs_routes.c - the consumer store's routes (data, SPEC §5).
 */
#include "cs_app.h"

const http_route cs_routes[] = {
    {"GET", "/v1/consumers", cs_http_list},
    {"GET", "/v1/consumers/{consumer_id}", cs_http_get},
    {"PUT", "/v1/consumers/{consumer_id}", cs_http_put},
    {"DELETE", "/v1/consumers/{consumer_id}", cs_http_delete},
};
const size_t cs_nroutes = sizeof cs_routes / sizeof cs_routes[0];
