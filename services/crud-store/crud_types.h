/*
 * crud_types.h - the registry of entity types and their JSON Schemas.
 *
 * A type spec is a document of the reserved entity type eskit.EntityType
 * whose id is the entity type: the stream "User" holds
 * eskit.EntityType.Created (payload: the spec) and eskit.EntityType.Updated
 * (payload: the merge patch to the next spec), replayed like any document
 * (crud_replay). Compiled schemas are cached per (type, version of its spec
 * document), so a write costs one stream read to learn that version.
 */
#ifndef CRUD_TYPES_H
#define CRUD_TYPES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "crud_app.h"

#define CRUD_TYPES_ENTITY "eskit.EntityType" /* the reserved entity type of specs */
#define CRUD_TYPES_RESERVED "eskit."         /* the reserved prefix */

/* NULL on OOM. */
crud_types *crud_types_new(void) WUR;
void crud_types_free(crud_types *t);

/* Checks a request's "spec" value and returns its normalised form (a new
 * reference the caller decrefs): {"entity_type", "schema_spec":
 * {"schema_version", "json_schema"}} with the members that were given. A
 * json_schema must compile. `path_type` (PUT) is the type of the path:
 * spec.entity_type may then be omitted and must match when present.
 * *schema_version is the spec's schema_version (0 when absent). NULL with
 * e set (400 naming the field) when invalid. */
json_t *crud_types_parse_spec(const json_t *spec, const char *path_type,
                              int64_t *schema_version, err *e) WUR;

/* Validates `doc` against the schema of `type` when the type is registered
 * with one. True when valid (or nothing to check). False with e set:
 * invalid_argument with details.errors [{"path", "message"}], or
 * unavailable / internal. */
bool crud_types_check(crud_app *app, const char *type, const json_t *doc, err *e) WUR;

/* The registered spec of `type` (a new reference), or NULL with e set
 * (not_found when not registered). */
json_t *crud_types_get(crud_app *app, const char *type, err *e) WUR;

/* Registers a normalised spec (borrowed). On success returns the spec now
 * registered (a new reference) and *created says whether this call wrote
 * it; with skip_duplicate an existing registration is returned instead of a
 * conflict. NULL with e set otherwise (conflict when already registered). */
json_t *crud_types_create(crud_app *app, const json_t *spec, bool skip_duplicate,
                          bool *created, err *e) WUR;

/* Replaces the spec of `type` with a normalised spec (borrowed) whose
 * schema_version must be above the registered one (else conflict). Returns
 * the new spec (a new reference) or NULL with e set (not_found when not
 * registered). */
json_t *crud_types_replace(crud_app *app, const char *type, const json_t *spec,
                           int64_t schema_version, err *e) WUR;

/* The first `limit` registered specs in registration order, as a new JSON
 * array, or NULL with e set. */
json_t *crud_types_list(crud_app *app, int64_t limit, err *e) WUR;

#endif
