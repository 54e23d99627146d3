/*
 * crud_index.h - the CRUD store's query index (SPEC §4): a projection of
 * every document of every type, current and past, kept in the store's own
 * database (ESKIT_DATABASE_URL: SQLite by default, PostgreSQL shared by
 * replicas) and fed from the event store's application log.
 *
 * Each version of a document is a row holding during the log ids
 * [valid_from_log_id, valid_to_log_id) (valid_to NULL: current), with the
 * recorded_at of both ends. T.Created puts the whole document, T.Updated
 * applies its merge patch to the current row, T.Deleted closes it with a
 * deleted row; entity types under "eskit." and events of other names are
 * not indexed.
 *
 * The log offset the rows reflect is written in the same transaction as the
 * rows, by compare-and-set: of several replicas feeding one shared index,
 * the one whose compare succeeds applies a batch, the others roll back and
 * read on from the new offset, so every entry is applied exactly once. The
 * index is derived data: an empty database starts at offset 0 and is built
 * from the log; crud_index_new(..., rebuild = true) empties it first.
 *
 * A background thread follows the log (long polls). The reads of documents
 * answer at a log id (a query's: a log head read after the request began,
 * crud_sync.h) and select, in the same statement as the rows, the offset
 * the index holds; when it is below that log id they catch the index up
 * with crud_index_sync() and read again, so an answer holds every write
 * acknowledged before the request.
 */
#ifndef CRUD_INDEX_H
#define CRUD_INDEX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "http_client.h"
#include "metrics.h"

typedef struct crud_index crud_index;

/* Entries read from the log per applied batch (one transaction). */
#define CRUD_INDEX_BATCH 1000

/* The index on database `url`, fed from the event store `es` (borrowed;
 * must outlive the index). `read_url`: NULL, or a PostgreSQL URL of hot
 * standbys of `url` for the index's reads (ESKIT_DATABASE_READ_URL,
 * db_reads.h: a read shows every batch this process had seen applied when
 * it began, and a lagging or lost standby is left for the primary); `m`
 * gets the read routing's counters. Connects lazily, so it starts while its
 * database is down. `rebuild`: empty it and build it again from the log.
 * Starts the follower thread. NULL on OOM or a malformed URL (e set). Free
 * with crud_index_free(), which stops the thread. */
crud_index *crud_index_new(const char *url, const char *read_url, http_client *es,
                           bool rebuild, metrics *m, err *e) WUR;
void crud_index_free(crud_index *ix);

/* The read barrier: `head` is a log head read after the request began.
 * Reads the index's offset (after the call began), applies the log up to
 * `head` when it is behind, and sets *offset to the log id the index now
 * reflects (>= head, unless the log itself went back). False with e set
 * (unavailable when the event store or the database is down). */
bool crud_index_sync(crud_index *ix, int64_t head, int64_t *offset, err *e) WUR;

/* The log offset the index held when this process last looked (after each
 * applied batch): for the eskit_crud_index_log_id gauge. */
int64_t crud_index_offset(crud_index *ix);

/* The log id of the last change recorded at or before `ms` (ms since the
 * epoch): the index's state "as of" that instant. 0 when there was none. */
bool crud_index_log_id_at(crud_index *ix, int64_t ms, int64_t *log_id, err *e) WUR;

/* One document version as the index holds it. */
typedef struct crud_index_row {
    char *id;          /* owned */
    int64_t version;
    int64_t created;   /* log id of its creation: the creation order */
    bool deleted;
    json_t *payload;   /* owned reference */
    char *text;        /* owned: the payload as the index stores it (compact JSON,
                        * as jsonx_dump writes it), to render without dumping */
} crud_index_row;

void crud_index_rows_free(crud_index_row *rows, size_t n);

/* What a declared index narrows the candidates to (crud_indexes.h): the
 * value at `path` equal to the scalar `eq`, or in the range lo..hi (NULL:
 * open; both of one JSON type). Members borrowed. */
typedef struct crud_index_filter {
    const char *path; /* a validated path (segments of the id alphabet) */
    const json_t *eq;
    const json_t *lo, *hi;
    bool lo_incl, hi_incl;
} crud_index_filter;

/* The reads below answer as of log entry `at`: when the index does not hold
 * it yet, they catch it up first (crud_index_sync). */

/* Live documents of `type` as they were just after log entry `at`, created
 * after log id `after`, in creation order, at most `limit`; `f` (may be
 * NULL) narrows them to a superset of those a declared index serves.
 * *rows (caller frees with crud_index_rows_free) and *n. */
bool crud_index_scan(crud_index *ix, const char *type, int64_t at, int64_t after,
                     int64_t limit, const crud_index_filter *f, crud_index_row **rows,
                     size_t *n, err *e) WUR;

/* Document `id` of `type` as it was just after log entry `at` (deleted
 * included). *found false when it did not exist then. */
bool crud_index_get(crud_index *ix, const char *type, const char *id, int64_t at,
                    crud_index_row *row, bool *found, err *e) WUR;

/* Forgets every version of document `id` (after its erasure). */
bool crud_index_erase(crud_index *ix, const char *id, err *e) WUR;

#endif
