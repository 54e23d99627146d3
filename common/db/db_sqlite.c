/*
 * db_sqlite.c - the SQLite back end of db.h: the embedded default, so that a
 * fresh checkout runs with nothing else installed.
 *
 * One context per connection, used by one thread at a time (the pool makes
 * sure), so the connection is opened without SQLite's own mutex. Durability:
 * WAL with synchronous=FULL, so a COMMIT that returned survives kill -9 and a
 * power cut. Writers wait up to 5 s for the write lock (busy_timeout), then
 * the caller gets DB_ERR_UNAVAILABLE.
 *
 * Statements are the spec's texts ($1..$n parameters, which SQLite reads as
 * named parameters "$1", "$2", ... and which we bind by name, so the order in
 * which they appear in the text does not matter). Each is prepared on first
 * use and kept for the life of the connection.
 *
 * Migrations are recorded in eskit_schema_migrations, one row per (service,
 * version), and applied under BEGIN IMMEDIATE so that two processes starting
 * at once apply each migration once.
 */
#include "db_backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

/* A statement db_exec_named compiled on this connection. */
typedef struct db_sqlite_named {
    char name[DB_NAME_MAX + 1];
    char *sql;          /* owned */
    sqlite3_stmt *stmt; /* finalized when the slot is reused, or by close */
} db_sqlite_named;

typedef struct db_sqlite {
    sqlite3 *conn;
    const db_spec *spec;
    sqlite3_stmt **stmts; /* spec->nstmts, NULL until first used; finalized by close */
    bool broken;          /* a fatal error happened: the pool should reopen */
    db_sqlite_named named[DB_NAMED_MAX];
    size_t nnamed;        /* slots in use */
    size_t next_drop;     /* the slot a new name replaces when all are in use */
} db_sqlite;

/* ---- errors ----------------------------------------------------------------- */

static bool db_sqlite_fatal(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_NOMEM:
        return true;
    default:
        return false;
    }
}

/* Maps a result code to a db_status, marks the connection broken on fatal
 * errors and, when e is not NULL, describes the failure in e. */
static db_status db_sqlite_fail(db_sqlite *s, int rc, const char *what, err *e)
{
    db_status st;
    const char *msg = s->conn ? sqlite3_errmsg(s->conn) : sqlite3_errstr(rc);

    if (db_sqlite_fatal(rc))
        s->broken = true;
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        st = DB_ERR_CONSTRAINT;
        if (e)
            err_set(e, ERR_CONFLICT, "%s: %s", what, msg);
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
        st = DB_ERR_UNAVAILABLE;
        if (e)
            err_set(e, ERR_UNAVAILABLE, "database unavailable: %s: %s", what, msg);
        break;
    default:
        st = DB_ERR_OTHER;
        if (e)
            err_set(e, ERR_INTERNAL, "database error: %s: %s", what, msg);
        break;
    }
    return st;
}

/* ---- opening ---------------------------------------------------------------- */

/* mkdir -p of the folder that holds `path`. Returns 0 or -1 with errno set. */
static int db_sqlite_mkdirs(const char *path)
{
    int rc = -1;
    char *copy = strdup(path);
    if (!copy)
        goto done;
    char *slash = strrchr(copy, '/');
    if (!slash || slash == copy) { /* a bare file name, or a file in "/" */
        rc = 0;
        goto done;
    }
    *slash = '\0';
    for (char *p = copy + 1;; p++) {
        bool last = *p == '\0';
        if (*p == '/' || last) {
            char saved = *p;
            *p = '\0';
            if (mkdir(copy, 0777) != 0 && errno != EEXIST) {
                struct stat st;
                if (stat(copy, &st) != 0 || !S_ISDIR(st.st_mode))
                    goto done;
            }
            *p = saved;
        }
        if (last)
            break;
    }
    rc = 0;
done:
    free(copy);
    return rc;
}

/* Runs SQL without results (pragmas, BEGIN, migrations). Switching to WAL
 * needs a lock that the busy handler does not wait for, so a locked database
 * is retried here when several connections open a new file at once. The
 * retries stop after DB_SQLITE_BUSY_MS in all, busy handler waits included:
 * BEGIN IMMEDIATE against a lock another process holds fails after about
 * 5 s, as for any other writer. */
#define DB_SQLITE_BUSY_MS 5000
static int db_sqlite_run(db_sqlite *s, const char *sql)
{
    struct timespec t0, now;
    int rc = SQLITE_OK;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        rc = sqlite3_exec(s->conn, sql, NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >=
            DB_SQLITE_BUSY_MS)
            break;
        sqlite3_sleep(10);
    }
    return rc;
}

/* Applies the spec's missing migrations in one IMMEDIATE transaction.
 * Returns 0, or -1 with e set. */
static int db_sqlite_migrate(db_sqlite *s, err *e)
{
    static const char create_sql[] =
        "CREATE TABLE IF NOT EXISTS eskit_schema_migrations ("
        " service TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        " applied_at TEXT NOT NULL,"
        " PRIMARY KEY (service, version))";
    static const char check_sql[] =
        "SELECT 1 FROM eskit_schema_migrations WHERE service = ?1 AND version = ?2";
    static const char record_sql[] =
        "INSERT INTO eskit_schema_migrations (service, version, applied_at)"
        " VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";
    sqlite3_stmt *check = NULL, *record = NULL;
    bool in_tx = false;
    int rc, ret = -1;
    const db_migration *m = s->spec->sqlite_migrations;

    rc = db_sqlite_run(s, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        db_sqlite_fail(s, rc, "migration lock", e);
        goto done;
    }
    in_tx = true;
    rc = db_sqlite_run(s, create_sql);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->conn, check_sql, -1, &check, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->conn, record_sql, -1, &record, NULL);
    if (rc != SQLITE_OK) {
        db_sqlite_fail(s, rc, "migration table", e);
        goto done;
    }
    for (; m && m->sql; m++) {
        sqlite3_reset(check);
        if (sqlite3_bind_text(check, 1, s->spec->name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(check, 2, m->version) != SQLITE_OK) {
            db_sqlite_fail(s, sqlite3_errcode(s->conn), "migration check", e);
            goto done;
        }
        rc = sqlite3_step(check);
        if (rc == SQLITE_ROW)
            continue; /* applied before */
        if (rc != SQLITE_DONE) {
            db_sqlite_fail(s, rc, "migration check", e);
            goto done;
        }
        rc = db_sqlite_run(s, m->sql);
        if (rc != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof what, "migration %d", m->version);
            db_sqlite_fail(s, rc, what, e);
            goto done;
        }
        sqlite3_reset(record);
        if (sqlite3_bind_text(record, 1, s->spec->name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int(record, 2, m->version) != SQLITE_OK) {
            db_sqlite_fail(s, sqlite3_errcode(s->conn), "migration record", e);
            goto done;
        }
        rc = sqlite3_step(record);
        if (rc != SQLITE_DONE) {
            db_sqlite_fail(s, rc, "migration record", e);
            goto done;
        }
    }
    rc = db_sqlite_run(s, "COMMIT");
    if (rc != SQLITE_OK) {
        db_sqlite_fail(s, rc, "migration commit", e);
        goto done;
    }
    in_tx = false;
    ret = 0;
done:
    sqlite3_finalize(check);
    sqlite3_finalize(record);
    if (in_tx)
        (void)db_sqlite_run(s, "ROLLBACK");
    return ret;
}

static void db_sqlite_close(void *ctx)
{
    db_sqlite *s = ctx;
    if (!s)
        return;
    if (s->stmts) {
        for (size_t i = 0; i < s->spec->nstmts; i++)
            sqlite3_finalize(s->stmts[i]);
        free(s->stmts);
    }
    for (size_t i = 0; i < s->nnamed; i++) {
        sqlite3_finalize(s->named[i].stmt);
        free(s->named[i].sql);
    }
    sqlite3_close(s->conn); /* every statement is finalized: this closes */
    free(s);
}

/* `url` is the PATH of "sqlite:PATH". Returns the context (freed by
 * db_sqlite_close) or NULL with e set. */
static void *db_sqlite_open(const char *url, const db_spec *spec, const db_opts *o, err *e)
{
    db_sqlite *s = NULL;
    int rc;

    (void)o; /* one file, one writer at a time: nothing to choose between */
    s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    s->spec = spec;
    s->stmts = calloc(spec->nstmts ? spec->nstmts : 1, sizeof *s->stmts);
    if (!s->stmts) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    if (db_sqlite_mkdirs(url) != 0) {
        err_set(e, ERR_UNAVAILABLE, "database unavailable: cannot create the folder of %s: %s",
                url, strerror(errno));
        goto fail;
    }
    rc = sqlite3_open_v2(url, &s->conn,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_set(e, ERR_UNAVAILABLE, "database unavailable: cannot open %s: %s", url,
                s->conn ? sqlite3_errmsg(s->conn) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(s->conn, 1);
    rc = sqlite3_busy_timeout(s->conn, 5000);
    if (rc == SQLITE_OK)
        rc = db_sqlite_run(s, "PRAGMA journal_mode=WAL");
    if (rc == SQLITE_OK)
        rc = db_sqlite_run(s, "PRAGMA synchronous=FULL");
    if (rc == SQLITE_OK)
        rc = db_sqlite_run(s, "PRAGMA foreign_keys=ON");
    /* Deleted content is overwritten with zeros, so that erased data does
     * not stay in the file's free space (SPEC §3; a checkpoint then clears
     * the -wal file: es_store_checkpoint). */
    if (rc == SQLITE_OK)
        rc = db_sqlite_run(s, "PRAGMA secure_delete=ON");
    if (rc != SQLITE_OK) {
        err_set(e, ERR_UNAVAILABLE, "database unavailable: cannot set up %s: %s", url,
                sqlite3_errmsg(s->conn));
        goto fail;
    }
    if (db_sqlite_migrate(s, e) != 0)
        goto fail;
    return s;

fail:
    db_sqlite_close(s);
    return NULL;
}

/* ---- statements ------------------------------------------------------------- */

/* The cached prepared statement for index i, preparing it on first use.
 * Owned by the context. Returns the SQLite result code. */
static int db_sqlite_stmt(db_sqlite *s, size_t i, sqlite3_stmt **out)
{
    if (!s->stmts[i]) {
        const db_stmt *st = &s->spec->stmts[i];
        const char *sql = st->sqlite ? st->sqlite : st->pg;
        int rc = sqlite3_prepare_v3(s->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[i],
                                    NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    *out = s->stmts[i];
    return SQLITE_OK;
}

/* Binds params[k] to the parameter named "$<k+1>" when the text has one. */
static int db_sqlite_bind(sqlite3_stmt *st, const db_param *params, int np)
{
    for (int k = 0; k < np; k++) {
        char name[16];
        int n = snprintf(name, sizeof name, "$%d", k + 1);
        if (n < 0 || (size_t)n >= sizeof name)
            return SQLITE_RANGE;
        int idx = sqlite3_bind_parameter_index(st, name);
        if (idx == 0)
            continue; /* not referenced by this text */
        int rc;
        switch (params[k].type) {
        case DB_P_INT:
            rc = sqlite3_bind_int64(st, idx, params[k].i);
            break;
        case DB_P_TEXT:
            /* The caller's string outlives the step: no copy needed. */
            rc = params[k].s ? sqlite3_bind_text(st, idx, params[k].s, -1, SQLITE_STATIC)
                             : sqlite3_bind_null(st, idx);
            break;
        default:
            rc = sqlite3_bind_null(st, idx);
            break;
        }
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* Binds and steps `st` to the end, collecting rows into *out (when not
 * NULL). The caller resets or finalizes st. */
static db_status db_sqlite_step_all(db_sqlite *s, sqlite3_stmt *st, const db_param *params,
                                    int np, db_res **out, err *e)
{
    db_res *res = NULL;
    const char **vals = NULL;
    size_t *lens = NULL;
    db_status ret = DB_ERR_OTHER;
    int rc = db_sqlite_bind(st, params, np);
    if (rc != SQLITE_OK) {
        ret = db_sqlite_fail(s, rc, "bind", e);
        goto done;
    }
    int cols = sqlite3_column_count(st);
    if (out) {
        res = db_res_new(cols);
        vals = calloc(cols ? (size_t)cols : 1, sizeof *vals);
        lens = calloc(cols ? (size_t)cols : 1, sizeof *lens);
        if (!res || !vals || !lens) {
            if (e)
                err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!res)
            continue;
        for (int c = 0; c < cols; c++) {
            if (sqlite3_column_type(st, c) == SQLITE_NULL) {
                vals[c] = NULL;
                lens[c] = 0;
                continue;
            }
            /* text first, then bytes: the documented order */
            vals[c] = (const char *)sqlite3_column_text(st, c);
            lens[c] = (size_t)sqlite3_column_bytes(st, c);
            if (!vals[c]) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        if (rc == SQLITE_NOMEM || db_res_add_row(res, vals, lens) != 0) {
            if (e)
                err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
    }
    if (rc != SQLITE_DONE) {
        ret = db_sqlite_fail(s, rc, "statement", e);
        goto done;
    }
    if (out) {
        *out = res;
        res = NULL;
    }
    ret = DB_OK;
done:
    db_res_free(res);
    free(vals);
    free(lens);
    return ret;
}

static db_status db_sqlite_exec(void *ctx, size_t stmt, const db_param *params, int np,
                                db_res **out, err *e)
{
    db_sqlite *s = ctx;
    sqlite3_stmt *st = NULL;
    if (stmt >= s->spec->nstmts || np < 0 || (np > 0 && !params)) {
        if (e)
            err_set(e, ERR_INTERNAL, "database error: bad statement %zu or parameters", stmt);
        return DB_ERR_OTHER;
    }
    int rc = db_sqlite_stmt(s, stmt, &st);
    if (rc != SQLITE_OK)
        return db_sqlite_fail(s, rc, "prepare", e);
    db_status ret = db_sqlite_step_all(s, st, params, np, out, e);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* The parameters of a statement run from its text are well formed. */
static bool db_sqlite_params_ok(const db_param *params, int np, err *e)
{
    if (np >= 0 && (np == 0 || params))
        return true;
    if (e)
        err_set(e, ERR_INTERNAL, "database error: bad parameters");
    return false;
}

static db_status db_sqlite_exec_sql(void *ctx, const char *sql, const db_param *params, int np,
                                    db_res **out, err *e)
{
    db_sqlite *s = ctx;
    sqlite3_stmt *st = NULL;
    if (!db_sqlite_params_ok(params, np, e))
        return DB_ERR_OTHER;
    int rc = sqlite3_prepare_v2(s->conn, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return db_sqlite_fail(s, rc, "prepare", e);
    }
    db_status ret = db_sqlite_step_all(s, st, params, np, out, e);
    sqlite3_finalize(st);
    return ret;
}

/* The compiled statement `name` with text `sql`, compiling it when this
 * connection has none under that name (or one of another text), in the
 * oldest slot when all are in use. Owned by the context. */
static int db_sqlite_named_stmt(db_sqlite *s, const char *name, const char *sql,
                                sqlite3_stmt **out)
{
    size_t i = 0;
    while (i < s->nnamed && strcmp(s->named[i].name, name) != 0)
        i++;
    if (i < s->nnamed && strcmp(s->named[i].sql, sql) == 0) {
        *out = s->named[i].stmt;
        return SQLITE_OK;
    }
    if (i == s->nnamed && s->nnamed == DB_NAMED_MAX) {
        i = s->next_drop;
        s->next_drop = (s->next_drop + 1) % DB_NAMED_MAX;
    }
    sqlite3_stmt *st = NULL;
    char *copy = strdup(sql);
    if (!copy)
        return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v3(s->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        free(copy);
        return rc;
    }
    if (i < s->nnamed) {
        sqlite3_finalize(s->named[i].stmt);
        free(s->named[i].sql);
    } else {
        s->nnamed++;
    }
    snprintf(s->named[i].name, sizeof s->named[i].name, "%s", name);
    s->named[i].sql = copy;
    s->named[i].stmt = st;
    *out = st;
    return SQLITE_OK;
}

static db_status db_sqlite_exec_named(void *ctx, const char *name, const char *sql,
                                      const db_param *params, int np, db_res **out, err *e)
{
    db_sqlite *s = ctx;
    sqlite3_stmt *st = NULL;
    if (!db_sqlite_params_ok(params, np, e))
        return DB_ERR_OTHER;
    int rc = db_sqlite_named_stmt(s, name, sql, &st);
    if (rc != SQLITE_OK)
        return db_sqlite_fail(s, rc, "prepare", e);
    db_status ret = db_sqlite_step_all(s, st, params, np, out, e);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* ---- transactions and the rest ---------------------------------------------- */

static db_status db_sqlite_begin(void *ctx, bool write)
{
    db_sqlite *s = ctx;
    int rc = db_sqlite_run(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
    return rc == SQLITE_OK ? DB_OK : db_sqlite_fail(s, rc, "begin", NULL);
}

static db_status db_sqlite_commit(void *ctx)
{
    db_sqlite *s = ctx;
    int rc = db_sqlite_run(s, "COMMIT");
    return rc == SQLITE_OK ? DB_OK : db_sqlite_fail(s, rc, "commit", NULL);
}

static void db_sqlite_rollback(void *ctx)
{
    db_sqlite *s = ctx;
    if (!sqlite3_get_autocommit(s->conn)) /* some errors end the transaction already */
        (void)db_sqlite_run(s, "ROLLBACK");
}

static db_status db_sqlite_listen(void *ctx, const char *channel)
{
    (void)ctx;
    (void)channel;
    return DB_ERR_UNSUPPORTED;
}

static int db_sqlite_wait_notify(void *ctx, int timeout_ms, int64_t *top)
{
    (void)ctx;
    (void)timeout_ms;
    (void)top;
    return -1;
}

static bool db_sqlite_healthy(void *ctx)
{
    db_sqlite *s = ctx;
    return !s->broken;
}

const db_ops db_sqlite_ops = {
    .version = 3,
    .name = "sqlite",
    .open = db_sqlite_open,
    .close = db_sqlite_close,
    .exec = db_sqlite_exec,
    .begin = db_sqlite_begin,
    .commit = db_sqlite_commit,
    .rollback = db_sqlite_rollback,
    .listen = db_sqlite_listen,
    .wait_notify = db_sqlite_wait_notify,
    .healthy = db_sqlite_healthy,
    .exec_sql = db_sqlite_exec_sql,
    .exec_named = db_sqlite_exec_named,
};
