/*
 * db_backend.h - what a storage back end implements (private to common/db).
 *
 * A back end is a static const db_ops table with a version field; db.c owns
 * the struct db and the result builder, and calls the table through the
 * wrappers in db.h.
 */
#ifndef ESKIT_DB_BACKEND_H
#define ESKIT_DB_BACKEND_H

#include "db.h"

typedef struct db_ops {
    int version; /* 2: exec_sql is there; 3: exec_named too */
    const char *name;
    /* Connect, migrate (unless o->reads), prepare. Returns the back end's
     * context or NULL. `o` is never NULL. */
    void *(*open)(const char *url, const db_spec *spec, const db_opts *o, err *e);
    void (*close)(void *ctx);
    db_status (*exec)(void *ctx, size_t stmt, const db_param *params, int np, db_res **out,
                      err *e);
    db_status (*begin)(void *ctx, bool write);
    db_status (*commit)(void *ctx);
    void (*rollback)(void *ctx);
    /* Optional (NULL: db.c runs the steps one by one). Reports the status
     * of the first failed step; the caller rolls back. */
    db_status (*pipeline)(void *ctx, const db_step *steps, size_t n, err *e);
    db_status (*listen)(void *ctx, const char *channel);
    int (*wait_notify)(void *ctx, int timeout_ms, int64_t *top);
    bool (*healthy)(void *ctx);
    /* version >= 2: a one-off statement (not prepared ahead). */
    db_status (*exec_sql)(void *ctx, const char *sql, const db_param *params, int np,
                          db_res **out, err *e);
    /* version >= 3: a statement prepared under a caller's name on first use
     * (db_exec_named; db.c has checked the name). */
    db_status (*exec_named)(void *ctx, const char *name, const char *sql,
                            const db_param *params, int np, db_res **out, err *e);
} db_ops;

extern const db_ops db_pg_ops;
extern const db_ops db_sqlite_ops;

/* Result builder used by back ends: a result with `cols` columns. */
db_res *db_res_new(int cols);
/* Appends a row; vals[i] NULL means SQL NULL; lens[i] is the byte length.
 * Returns 0, or -1 on OOM. */
int db_res_add_row(db_res *r, const char *const *vals, const size_t *lens) WUR;

#endif
