/*
 * db_pg_int.h - what the two files of the PostgreSQL back end share (private
 * to common/db_pg*.c): db_pg.c connects, classifies errors, runs statements
 * and transactions; db_pg_wait.c holds what waits on the socket (bounded
 * answers, pipelines, notifications, the look at an idle connection).
 */
#ifndef ESKIT_DB_PG_INT_H
#define ESKIT_DB_PG_INT_H

#include <libpq-fe.h>

#include "db_backend.h"

#define DB_PG_STACK_PARAMS 16 /* parameters formatted on the stack; more go to the heap */

/* A statement db_exec_named prepared on this connection. */
typedef struct db_pg_named {
    char name[DB_NAME_MAX + 1];
    char *sql; /* owned */
} db_pg_named;

typedef struct db_pg {
    PGconn *conn;
    const db_spec *spec;
    db_pg_named named[DB_NAMED_MAX];
    size_t nnamed;     /* slots in use */
    size_t next_drop;  /* the slot a new name replaces when all are in use */
    bool broken;    /* the connection is lost: the pool should reopen */
    int timeout_ms; /* > 0: the bound of db_opts.timeout_ms */
    bool timed_out; /* the last statement had no answer in time (then broken too) */
} db_pg;

/* ms on the monotonic clock */
int64_t db_pg_now_ms(void);

/* Classifies a failed command (res may be NULL: no result at all), marks the
 * connection broken when it is lost, and describes the failure in e (may be
 * NULL). Does not free res. */
db_status db_pg_fail(db_pg *p, const PGresult *res, const char *what, err *e);
/* Runs parameterless SQL that returns no rows. */
db_status db_pg_run(db_pg *p, const char *sql, const char *what, err *e);
/* Copies the rows of a PGresult into a new db_res (the caller frees it).
 * NULL on OOM. */
db_res *db_pg_rows(const PGresult *res);

/* PQgetResult, waiting at most until `deadline` (db_pg_now_ms; 0: as long
 * as it takes). Past it: NULL, with the connection broken and p->timed_out
 * set. */
PGresult *db_pg_get(db_pg *p, int64_t deadline);
/* When a statement (or pipeline) sent now must have answered: 0 for no
 * bound. Clears p->timed_out. */
int64_t db_pg_deadline(db_pg *p);

/* The ops of db_pg_wait.c. */
db_status db_pg_pipeline(void *ctx, const db_step *steps, size_t n, err *e);
db_status db_pg_listen(void *ctx, const char *channel);
int db_pg_wait_notify(void *ctx, int timeout_ms, int64_t *top);
bool db_pg_healthy(void *ctx);

#endif
