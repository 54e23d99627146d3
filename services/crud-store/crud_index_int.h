/*
 * crud_index_int.h - what the files of the query index share (private to
 * crud_index*.c and crud_indexes.c): the process state and the statement
 * numbers. Callers use crud_index.h.
 */
#ifndef CRUD_INDEX_INT_H
#define CRUD_INDEX_INT_H

#include <pthread.h>

#include "crud_index.h"
#include "db.h"
#include "db_reads.h"

enum {
    IX_OFFSET,
    IX_CAS,
    IX_CURRENT,
    IX_CLOSE,
    IX_INSERT,
    IX_RESET_DOCS,
    IX_RESET_OFFSET,
    IX_ERASE,
    IX_AT_TIME,
    IX_GET_AT,
    IX_SCAN_AT,
    IX_INDEX_STATUS,
    IX_LAZY_COMMIT,
    IX_CHECKPOINT,
    IX_STMT_COUNT
};

/* Columns of a document row, then its payload as JSON text. */
#define IX_ROW_COLS "doc_id, version, created_log_id, deleted, "
/* The payload as JSON text under the name the wrapper below selects. */
#define IX_PAYLOAD_PG "payload::text AS payload"
/* A read of rows at a log id, wrapped so that its first column is the
 * index's offset, read in the same statement (the same snapshot) as the
 * rows: the reader sees whether the index held that log id. One row with
 * NULLs after the offset when nothing matched. */
#define IX_WITH_OFFSET_HEAD                                                                \
    "SELECT s.log_offset, d.doc_id, d.version, d.created_log_id, d.deleted, d.payload "  \
    "FROM crud_index_state s LEFT JOIN ("
#define IX_WITH_OFFSET_TAIL ") d ON 1 = 1 WHERE s.id = 1 ORDER BY d.created_log_id"
#define IX_AT(n) "valid_from_log_id <= $" #n " AND (valid_to_log_id IS NULL OR valid_to_log_id > $" #n ")"

#define IX_POOL 8
#define IX_FOLLOW_WAIT_S 2
#define IX_RETRY_MS 500

struct crud_index {
    db_pool *pool;            /* the primary: batches, declared indexes' builds */
    db_reads *reads;          /* where reads run (the primary, or its standbys) */
    http_client *es;
    pthread_mutex_t apply_mu; /* one applier at a time in this process */
    pthread_mutex_t mu;       /* guards the fields below */
    pthread_cond_t cv;
    bool stop;
    bool rebuild;             /* empty the index before the next catch-up */
    int64_t known;            /* the offset last seen in the database */
    pthread_t follower;
    bool follower_started;
    /* the read barrier's rounds (crud_index_sync), shared by concurrent queries */
    pthread_cond_t sync_cv;
    uint64_t started, done, failed;
    bool busy;
    int64_t want;             /* the highest log head a caller asked for */
    int64_t done_offset;
    err_code fail_code;
    char fail_msg[sizeof ((err *)0)->message];
    bool pg;                  /* PostgreSQL (else SQLite): the dialect of declared indexes */
    struct crud_indexes *decl; /* declared indexes: their builds and readiness */
};

/* Applies one page of the log (`results`) in one transaction whose
 * compare-and-set moves the offset from `from` to `to`; *lost: another
 * applier moved it first, nothing written (crud_index_apply.c). */
db_status crud_index_apply_page(db *d, int64_t from, int64_t to, const json_t *results,
                                bool *lost, err *e) WUR;

/* Runs a read statement where ix->reads sends it (a connection showing
 * every batch this process had seen applied); false with e set. */
bool crud_index_query(crud_index *ix, size_t stmt, const db_param *p, int np, db_res **r,
                      const char *what, err *e) WUR;


#endif
