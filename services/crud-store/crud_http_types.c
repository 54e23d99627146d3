/*
 * crud_http_types.c - the handlers of /v1/types: entity type specs and their
 * JSON Schemas. Parse and validate, call crud_types, render {"spec": ...}.
 */
#include "crud_app.h"
#include "crud_indexes.h"
#include "crud_types.h"
#include "jsonx.h"

/* The "spec" member of an object body, normalised by crud_types_parse_spec
 * (a new reference), or NULL with e set. */
static json_t *crud_http_spec(http_req *r, const char *path_type, int64_t *schema_version,
                              json_t **body, err *e)
{
    *body = http_req_json(r, e);
    if (!*body)
        return NULL;
    if (!json_is_object(*body)) {
        err_set(e, ERR_INVALID_ARGUMENT, "the body must be a JSON object: {\"spec\": {...}}");
        return NULL;
    }
    json_t *spec = json_object_get(*body, "spec");
    if (!spec || json_is_null(spec)) {
        err_set(e, ERR_INVALID_ARGUMENT, "spec is required");
        return NULL;
    }
    return crud_types_parse_spec(spec, path_type, schema_version, e);
}

/* POST /v1/types {"spec": {...}, "skip_duplicate": false} */
void crud_http_types_create(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    json_t *body = NULL, *spec = NULL, *out = NULL;
    int64_t schema_version = 0;
    bool skip_duplicate = false, created = false;

    if (!(spec = crud_http_spec(r, NULL, &schema_version, &body, &e)) ||
        !jsonx_get_bool(body, "skip_duplicate", "skip_duplicate", false, &skip_duplicate, &e) ||
        !(out = crud_types_create(app, spec, skip_duplicate, &created, &e))) {
        http_reply_err(r, &e);
        goto done;
    }
    crud_indexes_declare(app->index, out); /* their builds start now */
    http_reply_json(r, created ? 201 : 200, json_pack("{s:o}", "spec", out));
done:
    json_decref(spec);
    err_clear(&e);
}

/* GET /v1/types/{entity_type} */
void crud_http_types_get(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    const char *type = crud_app_type_param(r);
    if (!type)
        return;
    json_t *spec = crud_types_get(app, type, &e);
    /* index_status is there when the spec declares indexes */
    bool declares = json_array_size(json_object_get(spec, "indexes")) > 0;
    json_t *status = spec && declares ? crud_indexes_status(app->index, spec, &e) : NULL;
    if (spec && !declares)
        http_reply_json(r, 200, json_pack("{s:o}", "spec", spec));
    else if (status)
        http_reply_json(r, 200, json_pack("{s:o, s:o}", "spec", spec, "index_status", status));
    else {
        json_decref(spec);
        http_reply_err(r, &e);
    }
    err_clear(&e);
}

/* PUT /v1/types/{entity_type} {"spec": {...}} */
void crud_http_types_put(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    json_t *body = NULL, *spec = NULL, *out = NULL;
    int64_t schema_version = 0;

    const char *type = crud_app_type_param(r);
    if (!type)
        return;
    if (!(spec = crud_http_spec(r, type, &schema_version, &body, &e)) ||
        !(out = crud_types_replace(app, type, spec, schema_version, &e))) {
        http_reply_err(r, &e);
        goto done;
    }
    crud_indexes_declare(app->index, out); /* indexes added by the PUT: built now */
    http_reply_json(r, 200, json_pack("{s:o}", "spec", out));
done:
    json_decref(spec);
    err_clear(&e);
}

/* GET /v1/types?limit */
void crud_http_types_list(http_req *r)
{
    crud_app *app = http_req_app(r);
    err e = ERR_INIT;
    int64_t limit = 20;
    json_t *list = NULL;
    if (!http_req_query_int(r, "limit", 20, 1, 1000, &limit, &e) ||
        !(list = crud_types_list(app, limit, &e))) {
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:o}", "results", list));
}
