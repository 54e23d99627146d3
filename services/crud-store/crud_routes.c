/*
 * crud_routes.c - the CRUD store's routes (data), and the request helpers
 * every handler uses: path parameters and the If-Match header, checked with
 * the 400 errors of SPEC §2.
 */
#include <string.h>

#include "crud_app.h"
#include "crud_body.h"
#include "crud_types.h"
#include "validate.h"

const http_route crud_routes[] = {
    {"POST", "/v1/entities/{entity_type}", crud_http_create, HTTP_RUN_WORKER},
    {"POST", "/v1/entities/{entity_type}/_find", crud_http_find, HTTP_RUN_WORKER},
    {"POST", "/v1/entities/{entity_type}/_bulk", crud_http_bulk, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}", crud_http_list, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}/{id}", crud_http_get, HTTP_RUN_WORKER},
    {"PUT", "/v1/entities/{entity_type}/{id}", crud_http_put, HTTP_RUN_WORKER},
    {"PATCH", "/v1/entities/{entity_type}/{id}", crud_http_patch, HTTP_RUN_WORKER},
    {"DELETE", "/v1/entities/{entity_type}/{id}", crud_http_delete, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}/{id}/history", crud_http_history, HTTP_RUN_WORKER},
    {"POST", "/v1/types", crud_http_types_create, HTTP_RUN_WORKER},
    {"GET", "/v1/types", crud_http_types_list, HTTP_RUN_WORKER},
    {"GET", "/v1/types/{entity_type}", crud_http_types_get, HTTP_RUN_WORKER},
    {"PUT", "/v1/types/{entity_type}", crud_http_types_put, HTTP_RUN_WORKER},
};
const size_t crud_nroutes = sizeof crud_routes / sizeof crud_routes[0];

const char *crud_app_type_param(http_req *r)
{
    const char *type = http_req_param(r, "entity_type");
    if (!validate_entity_type(type)) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "entity_type must be segments of A-Z a-z 0-9 _ - joined by '.', at "
                         "most 200 characters");
        return NULL;
    }
    return type;
}

const char *crud_app_entity_type(http_req *r)
{
    const char *type = crud_app_type_param(r);
    if (type && strncmp(type, CRUD_TYPES_RESERVED, strlen(CRUD_TYPES_RESERVED)) == 0) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "entity_type: entity types starting with 'eskit.' are reserved");
        return NULL;
    }
    return type;
}

bool crud_app_if_match(http_req *r, int64_t *version, bool *present, err *e)
{
    return crud_body_if_match(http_req_header(r, "If-Match"), version, present, e);
}
