/*
 * db.h - the storage interface: one API, two back ends (PostgreSQL through
 * libpq in db_pg.c, SQLite in db_sqlite.c), chosen by the URL.
 *
 * A service describes its storage once, in a db_spec: its named statements
 * (with $1..$n parameters; a statement may give a separate SQLite text where
 * the dialects differ) and its numbered migrations for each back end. Code
 * above this layer runs statements by index and never asks which back end it
 * has. Every call goes through the wrappers below, never through the ops
 * table directly (the SQLite VFS pattern).
 *
 * A `db` is one connection and is used by one thread at a time; db_pool
 * hands connections out to request threads and reconnects broken ones.
 *
 * A connection is for writes (db_open, db_pool_new: migrations applied; on
 * PostgreSQL with several hosts, libpq looks for the one that takes writes,
 * target_session_attrs=read-write, unless the URL says otherwise) or for
 * reads on a hot standby (db_opts.reads: no migrations, the URL's own
 * target_session_attrs, and a client-side bound on every statement).
 */
#ifndef ESKIT_DB_H
#define ESKIT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum db_status {
    DB_OK = 0,
    DB_ERR_CONSTRAINT,   /* a unique / primary key violation */
    DB_ERR_UNAVAILABLE,  /* cannot connect, connection lost, database busy too long */
    DB_ERR_UNSUPPORTED,  /* the back end has no such feature (LISTEN on SQLite) */
    DB_ERR_OTHER         /* anything else: a bug or a broken schema */
} db_status;

typedef enum db_ptype { DB_P_NULL, DB_P_INT, DB_P_TEXT } db_ptype;

typedef struct db_param {
    db_ptype type;
    int64_t i;
    const char *s; /* borrowed; NUL-terminated */
} db_param;

#define DB_INT(v) ((db_param){DB_P_INT, (int64_t)(v), NULL})
static inline db_param db_text_param(const char *s)
{
    db_param p = {s ? DB_P_TEXT : DB_P_NULL, 0, s};
    return p;
}
#define DB_TEXT(v) db_text_param(v)
#define DB_NULLP ((db_param){DB_P_NULL, 0, NULL})

typedef struct db_stmt {
    const char *pg;     /* PostgreSQL text, parameters $1..$n */
    const char *sqlite; /* SQLite text, or NULL: the same text as pg ($n works there too) */
} db_stmt;

typedef struct db_migration {
    int version;     /* 1, 2, 3 ... applied in order, each once, in a transaction */
    const char *sql; /* may hold several statements */
} db_migration;

typedef struct db_spec {
    const char *name;             /* the service, for messages and the migration lock */
    const db_stmt *stmts;         /* indexed by the service's own enum */
    size_t nstmts;
    const db_migration *pg_migrations;     /* terminated by {0, NULL} */
    const db_migration *sqlite_migrations; /* terminated by {0, NULL} */
} db_spec;

typedef struct db db;
typedef struct db_res db_res;

/*
 * Connects to `url` ("postgres://…", "postgresql://…" or "sqlite:PATH"; the
 * folder of PATH is created), applies missing migrations and prepares the
 * statements. Returns the connection, or NULL with e set (unavailable when the
 * server cannot be reached, invalid_argument for a malformed URL). The caller
 * frees it with db_close(). `spec` must outlive the connection.
 */
db *db_open(const char *url, const db_spec *spec, err *e) WUR;
void db_close(db *d);

/* How a connection is opened (db_open_opts, db_pool_new_opts). The zero
 * value is db_open's: a connection that writes. */
typedef struct db_opts {
    /* Reads only, from a hot standby: no migrations (a standby replays the
     * primary's schema), and no target_session_attrs imposed. */
    bool reads;
    /* > 0: a statement (or pipeline) with no answer after this many ms fails
     * as unavailable and the connection is dropped: a server that stopped
     * answering (paused, its machine gone) holds no caller longer. A
     * connection that writes should not have one: its commit's outcome would
     * be unknown. */
    int timeout_ms;
} db_opts;

db *db_open_opts(const char *url, const db_spec *spec, const db_opts *o, err *e) WUR;

/* A number the caller keeps with a connection, 0 when it opens (the event
 * store notes how far a standby had replayed when last asked). */
int64_t db_mark(const db *d);
void db_set_mark(db *d, int64_t v);

/* Turns a failed statement into the error a client sees: unavailable stays
 * unavailable (503), anything else is internal (500). The back end's own
 * message (already in e, if any) goes to the log, not to the client. */
void db_fail(err *e, db_status st, const char *what);

/* db_fail for a statement that commits by itself (a write outside a
 * transaction) on `d`: when the connection was lost while it ran, the write
 * may have committed, and e says so (503 with details.commit_outcome
 * "unknown"). */
void db_fail_write(err *e, db_status st, db *d, const char *what);

/* True when `url` names a back end this build knows (checked at start-up). */
bool db_url_valid(const char *url);

/*
 * Runs statement `stmt` (an index into spec->stmts) with `np` parameters.
 * When `out` is not NULL it receives the result rows (caller frees with
 * db_res_free; NULL on error). On error, `e` (may be NULL) gets a message.
 */
db_status db_exec(db *d, size_t stmt, const db_param *params, int np, db_res **out,
                  err *e) WUR;

/*
 * A one-off statement, not in the spec: only for text that cannot be written
 * ahead, such as the DDL of an index over a path a user declared. Values
 * still go in `params`, never into `sql`; whatever names the text holds must
 * have been checked against a strict alphabet by the caller. Otherwise as
 * db_exec. DB_ERR_UNSUPPORTED on a back end without it.
 */
db_status db_exec_sql(db *d, const char *sql, const db_param *params, int np, db_res **out,
                      err *e) WUR;

/*
 * A named statement whose text is written at run time: the query shape of a
 * declared index, say, which cannot be in the spec since users declare the
 * paths. Prepared on the connection under `name` the first time, run by name
 * afterwards (PostgreSQL then skips parsing and, after a few runs, planning;
 * SQLite keeps the compiled statement). A name always comes with the same
 * text: given another, the statement is prepared again. A connection keeps
 * at most DB_NAMED_MAX of them, dropping the oldest for a new one.
 * `name`: 1 to DB_NAME_MAX characters of a-z 0-9 _ that do not begin with
 * "s" and a digit (the spec's own "s<i>"). Values go in `params`, never into
 * `sql`; whatever names the text holds must have been checked against a
 * strict alphabet by the caller. Otherwise as db_exec.
 */
#define DB_NAMED_MAX 64
#define DB_NAME_MAX 48
db_status db_exec_named(db *d, const char *name, const char *sql, const db_param *params,
                        int np, db_res **out, err *e) WUR;

/* Transactions. `write`: the transaction will write (SQLite takes the write
 * lock at BEGIN, so that it never fails half-way for a lock upgrade). */
db_status db_begin(db *d, bool write) WUR;
db_status db_commit(db *d) WUR;
void db_rollback(db *d); /* never fails from the caller's view */

/*
 * A pipeline: statements run in order in one go. PostgreSQL sends them all
 * before reading any result (libpq pipeline mode: one round trip instead of
 * one per statement); SQLite runs them one by one. A step is a statement of
 * the spec, or DB_STEP_BEGIN (a write transaction) / DB_STEP_COMMIT. The
 * first failure stops the rest; a transaction the pipeline began, or one
 * that was open, is then rolled back. Results go to each step's `out` (may
 * be NULL; the caller frees them, also on failure).
 */
#define DB_STEP_BEGIN ((size_t)-1)
#define DB_STEP_COMMIT ((size_t)-2)

typedef struct db_step {
    size_t stmt;
    const db_param *params;
    int np;
    db_res **out;
} db_step;

db_status db_pipeline(db *d, const db_step *steps, size_t n, err *e) WUR;

/* Notifications (PostgreSQL LISTEN/NOTIFY). db_listen returns
 * DB_ERR_UNSUPPORTED on back ends without them. db_wait_notify waits up to
 * timeout_ms: returns 1 when one or more notifications arrived on the channel
 * (all pending ones are consumed; `top`, when not NULL, is raised to the
 * largest payload that is an integer), 0 on time-out, -1 when the
 * connection is broken. */
db_status db_listen(db *d, const char *channel) WUR;
int db_wait_notify(db *d, int timeout_ms, int64_t *top) WUR;

/* True while the connection is usable; false once it broke (reconnect). An
 * idle PostgreSQL connection is also looked at without waiting: one whose
 * server has gone (its socket closed or reset) is found broken here, before
 * a request is given it. */
bool db_healthy(db *d);

/* Results: values as text (NULL for SQL NULL) or as integers. */
size_t db_res_rows(const db_res *r);
int db_res_cols(const db_res *r);
bool db_res_null(const db_res *r, size_t row, int col);
const char *db_res_text(const db_res *r, size_t row, int col);
int64_t db_res_int(const db_res *r, size_t row, int col);
void db_res_free(db_res *r);

/*
 * A pool of connections for request handlers. Connections open lazily and a
 * broken one is replaced on the next acquire, so a service started while its
 * database is down recovers by itself.
 */
typedef struct db_pool db_pool;

db_pool *db_pool_new(const char *url, const db_spec *spec, int size) WUR;
/* A pool whose connections open with `o` (NULL: as db_pool_new). */
db_pool *db_pool_new_opts(const char *url, const db_spec *spec, int size,
                          const db_opts *o) WUR;
void db_pool_free(db_pool *p);
/* Blocks while all connections are in use. NULL with e = unavailable when no
 * connection can be made. */
db *db_pool_acquire(db_pool *p, err *e) WUR;
/* Hands the connection back; a connection that is no longer healthy is
 * closed. */
void db_pool_release(db_pool *p, db *d);
/* An open, healthy connection that nobody uses, or NULL: never connects,
 * never waits. Hand it back with db_pool_release(). */
db *db_pool_try_acquire(db_pool *p);

#endif
