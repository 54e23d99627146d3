/*
 * crud_indexes.h - declared query indexes (SPEC §4): "indexes" in a type's
 * spec, their builds in the query index's database and their readiness, and
 * the planner that picks one for a _find.
 *
 * A declared index {"name", "fields": [path, ...]} becomes, over the rows of
 * the query index, a PostgreSQL expression index on (entity_type,
 * (payload::jsonb #> '{a,b}'), ...) built CONCURRENTLY, or a SQLite index
 * on (entity_type, json_extract(payload, '$."a"."b"'), ...). Indexes over the
 * same fields are one database index, whatever the types declaring them.
 * Builds run in a background thread, so neither writes nor reads wait; a
 * query meanwhile scans (and is as correct).
 *
 * The planner picks the first ready declared index whose leading path the
 * selector tests, at its top level, for equality with a scalar or a range
 * (numbers; strings on SQLite only, whose text order is the code-point
 * order: PostgreSQL orders jsonb strings by collation). The index only
 * narrows the candidates: the selector still decides.
 */
#ifndef CRUD_INDEXES_H
#define CRUD_INDEXES_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "crud_index.h"
#include "crud_selector.h"
#include "err.h"

#define CRUD_INDEXES_MAX 16
#define CRUD_INDEXES_FIELDS_MAX 4
#define CRUD_INDEXES_NAME_MAX 64

typedef struct crud_indexes crud_indexes;

/* Checks spec.indexes (absent or null: none) and copies it into out (the
 * normalised spec). False with e set (400 naming spec.indexes[i]). */
bool crud_indexes_parse(const json_t *spec, json_t *out, err *e) WUR;

/* The builder of the index database ix (its thread starts here). NULL on
 * OOM. */
crud_indexes *crud_indexes_new(crud_index *ix) WUR;
void crud_indexes_free(crud_indexes *d);

/* Starts the builds of the indexes `spec` declares that are not there. */
void crud_indexes_declare(crud_index *ix, const json_t *spec);

/* {"name": "building" | "ready", ...} for the indexes of `spec` (a new
 * reference), starting the builds of those not there. NULL with e set. */
json_t *crud_indexes_status(crud_index *ix, const json_t *spec, err *e) WUR;

/* The declared index of `spec` that serves `sel`: true and *f filled (its
 * members borrowed from spec and sel) and *name set, or false: scan. */
bool crud_indexes_plan(crud_index *ix, const json_t *spec, const crud_selector *sel,
                       crud_index_filter *f, const char **name);

/* Appends the SQL expression of a validated path in the back end's dialect
 * (the same text in the index and in the queries it serves). -1 when full. */
int crud_indexes_expr(buf *b, bool pg, const char *path) WUR;

#endif
