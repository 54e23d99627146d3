/*
 * crud_find.h - queries over the query index (SPEC §4): POST .../_find, and
 * the time-travel reads of GET and the list (as_of, as_of_log_id).
 *
 * Every query first passes the cache's read barrier (crud_sync_wait_since),
 * whose log read gives a head read after the query began, and runs at that
 * head (the index's reads catch the index up to it when it is behind), so
 * it reflects every write acknowledged before it began. A query runs at one
 * log id: that head, or the past point asked for. A page token
 * carries that log id, so a walk through the pages sees one state of the
 * store while writes go on, and returns each match once.
 */
#ifndef CRUD_FIND_H
#define CRUD_FIND_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "crud_app.h"
#include "crud_sync.h"

#define CRUD_FIND_LIMIT_DEFAULT 25
#define CRUD_FIND_LIMIT_MAX 1000

/* A point in the past: none, an instant (ms since the epoch, judged by
 * recorded_at) or a log id. */
typedef struct crud_point {
    bool has_time;
    int64_t ms;
    bool has_log_id;
    int64_t log_id;
} crud_point;

/* Reads as_of / as_of_log_id from the query string of r (and the version
 * parameter, which excludes them: `version` non-zero). False with e set
 * (400) when malformed or combined. */
bool crud_point_from_query(http_req *r, int64_t version, crud_point *p, err *e) WUR;

/* The log id a read at point p runs at: the log head read by a round of
 * the cache's read barrier (crud_sync.h) that began after ticket t (taken
 * when the request began), or the past point asked for (an instant is
 * looked up in the index, caught up to that head first). The index's reads
 * catch it up to the log id they run at themselves (crud_index.h). */
bool crud_point_resolve(crud_app *app, crud_sync_ticket t, const crud_point *p, int64_t *at,
                        err *e) WUR;

/* POST /v1/entities/{type}/_find with body `body` (borrowed): renders the
 * 200 answer into out. False with e set (400 naming what is wrong). */
bool crud_find_run(crud_app *app, const char *type, const json_t *body, buf *out, err *e) WUR;

/* The list at point p: as GET /v1/entities/{type} (limit, page_token,
 * skip_payload) over the index. */
bool crud_find_list_at(crud_app *app, const char *type, const crud_point *p, int64_t limit,
                       const char *token, bool skip_payload, buf *out, err *e) WUR;

/* Document id at point p. *found false: it did not exist then (or was
 * deleted then and !with_deleted). Fills the entity rendering into out and
 * *version. */
bool crud_find_get_at(crud_app *app, const char *type, const char *id, const crud_point *p,
                      bool with_deleted, buf *out, int64_t *version, bool *found,
                      err *e) WUR;

#endif
