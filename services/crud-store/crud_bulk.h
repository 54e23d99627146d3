/*
 * crud_bulk.h - many writes of one entity type, all or none (SPEC §4,
 * POST /v1/entities/{type}/_bulk).
 */
#ifndef CRUD_BULK_H
#define CRUD_BULK_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "crud_app.h"
#include "crud_key.h"

#define CRUD_BULK_MAX 1000

/* Checks every operation of `body` ({"operations": [...]}, borrowed) as the
 * single request would, then appends all their events as one atomic batch;
 * renders {"results": [{"originator": {"id", "version"}}, ...]} into out.
 * False with e set and nothing written; an error of one operation carries
 * details.index. `key` (may be NULL): the request's Idempotency-Key; a
 * repeat renders the first answer, another request with it is 422. */
bool crud_bulk_run(crud_app *app, const char *type, const json_t *body, const crud_key *key,
                   buf *out, err *e) WUR;

#endif
