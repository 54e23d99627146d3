/*
 * crud_body.h - the requests of the /v1/entities writes, checked without
 * HTTP: the bodies of POST and PUT and the If-Match header, with the 400
 * errors of SPEC §2 naming the field. Pure functions: the handlers call
 * them, and so do the fuzz targets (fuzz/fuzz_crud_body.c).
 */
#ifndef CRUD_BODY_H
#define CRUD_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* The If-Match header (NULL: absent): *present false when absent or "*";
 * else *version is the version it names ("3", "\"3\"" or W/"3"). False
 * with e set (400) when malformed. */
bool crud_body_if_match(const char *header, int64_t *version, bool *present, err *e) WUR;

/* POST /v1/entities/{T} {"payload": {...}, "originator": {"id"}}:
 * *payload (borrowed from body) and *id (borrowed; NULL when not given).
 * False with e set (400). */
bool crud_body_create(const json_t *body, json_t **payload, const char **id, err *e) WUR;

/* PUT /v1/entities/{T}/{path_id} {"originator": {"version": N}, "payload":
 * {...}} with the If-Match header `if_match` (NULL: absent): the version
 * read comes from the body or the header (both: they must agree), and
 * originator.id, when given, must be path_id. *payload is borrowed from
 * body. False with e set (400). */
bool crud_body_put(const json_t *body, const char *path_id, const char *if_match,
                   json_t **payload, int64_t *version, err *e) WUR;

#endif
