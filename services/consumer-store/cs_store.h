/*
 * cs_store.h - the consumer store's storage: its statements and schema (one
 * db_spec for both back ends) and one function per operation of SPEC §5.
 * Every function takes a connection from the caller and never asks which
 * back end it runs on.
 *
 * Consumers come back as new JSON objects {"consumer_id", "offset",
 * "updated_at"}; the caller owns (and usually hands to http_reply_json)
 * every json_t * returned.
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "err.h"

typedef enum cs_stmt {
    CS_PING,
    CS_GET,
    CS_LIST,
    CS_SET,      /* unconditional upsert */
    CS_CAS_ZERO, /* compare-and-set against 0: insert, or update a row at 0 */
    CS_CAS,      /* compare-and-set against M > 0: update a row at M */
    CS_DELETE,
    CS_COUNT,
    CS_STMT_COUNT
} cs_stmt;

extern const db_spec cs_db_spec;


/* One consumer; NULL with e = not_found when it is not stored, or another
 * error when the database fails. */
json_t *cs_store_get(db *d, const char *id, err *e) WUR;

/* Every consumer, ordered by id, as {"consumers": [...]}; NULL with e set. */
json_t *cs_store_list(db *d, err *e) WUR;

/*
 * Sets the offset of consumer `id` to `offset`, stamping it `now_ms`. With
 * `expected` not NULL it is a compare-and-set: the write happens only when
 * the stored offset is *expected (a consumer not stored counts as 0); else
 * NULL with e = conflict and details.current_offset. The check and the write
 * are one SQL statement, so concurrent calls with the same expected offset
 * let exactly one through. Returns the consumer as stored, or NULL with e
 * set; a failed call writes nothing.
 */
json_t *cs_store_put(db *d, const char *id, int64_t offset, const int64_t *expected,
                     int64_t now_ms, err *e) WUR;

/* Deletes a consumer. False with e = not_found when it was not stored. */
bool cs_store_delete(db *d, const char *id, err *e) WUR;

/* The number of stored consumers (for the metrics). */
bool cs_store_count(db *d, int64_t *n, err *e) WUR;

#endif
