/*
 * db_pg.c - the PostgreSQL back end of db.h, through libpq: the production
 * store.
 *
 * One context per connection, used by one thread at a time. At open it
 * connects (bounded by connect_timeout), forces synchronous_commit=on (an
 * acknowledged write is durable), applies the service's missing migrations
 * under an advisory lock (several replicas may start at once), and prepares
 * every statement of the spec as "s0".."sN-1", like the GNU Taler exchange
 * registers its statements at connect. Statements then run by name with text
 * parameters, and results come back as text into a db_res. Statements whose
 * text is made at run time (db_exec_named) are prepared under their own name
 * the first time each connection runs them.
 *
 * A lost connection (or a server shutting down, or one that no longer takes
 * writes: a primary demoted to a standby) makes the context unhealthy;
 * db_pool then drops it and the next acquire reconnects, and libpq's
 * multi-host URLs find the new primary (a connection that writes asks for
 * target_session_attrs=read-write unless the URL says otherwise). An idle
 * connection is looked at before it is handed out (db_pg_healthy), so that
 * one whose server went away while it was idle fails no request.
 *
 * A connection for reads (db_opts.reads) skips the migrations, which a hot
 * standby cannot run, and may bound each statement on the client side
 * (db_opts.timeout_ms): statements are then sent, and their answers awaited
 * with poll(), so that a standby that stopped answering (paused, its machine
 * gone: the kernel may still acknowledge every byte) fails the statement in
 * time instead of holding the caller.
 *
 * What waits on the socket (bounded answers, pipelines, notifications, the
 * look at an idle connection) is in db_pg_wait.c; db_pg_int.h is what the two
 * files share.
 */
#include "db_pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

/* Serialises migrations of every eskit service on one database (they share
 * eskit_schema_migrations, and CREATE TABLE IF NOT EXISTS races with itself).
 * The bytes of "eskitmig". */
#define DB_PG_MIGRATION_LOCK "7310304720821512551"

#define DB_PG_CONNECT_TIMEOUT "3" /* seconds, when the URL sets no positive one */

int64_t db_pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- errors ----------------------------------------------------------------- */

/* Sets e to "<prefix><msg>" with libpq's multi-line message on one line. */
static void db_pg_seterr(err *e, err_code code, const char *prefix, const char *msg)
{
    if (!e)
        return;
    err_set(e, code, "%s%s", prefix, msg ? msg : "unknown error");
    for (char *p = e->message; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    size_t n = strlen(e->message);
    while (n && e->message[n - 1] == ' ')
        e->message[--n] = '\0';
}

static bool db_pg_state_is(const char *state, const char *prefix)
{
    return state && strncmp(state, prefix, strlen(prefix)) == 0;
}

/* Classifies a failed command (res may be NULL: no result at all), marks the
 * connection broken when it is lost, and describes the failure in e (may be
 * NULL). Does not free res. */
db_status db_pg_fail(db_pg *p, const PGresult *res, const char *what, err *e)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    char prefix[96];

    if (!msg || !*msg)
        msg = PQerrorMessage(p->conn);
    if (p->timed_out) {
        snprintf(prefix, sizeof prefix, "database unavailable: %s: ", what);
        char late[64];
        snprintf(late, sizeof late, "no answer within %d ms", p->timeout_ms);
        db_pg_seterr(e, ERR_UNAVAILABLE, prefix, late);
        return DB_ERR_UNAVAILABLE;
    }
    /* 25006: a write on a server that is read-only, a primary demoted (or
     * not yet writable after a promotion): another connection may find the
     * primary, this one never will. */
    if (PQstatus(p->conn) == CONNECTION_BAD || db_pg_state_is(state, "08") ||
        db_pg_state_is(state, "57P01") || db_pg_state_is(state, "57P02") ||
        db_pg_state_is(state, "57P03") || db_pg_state_is(state, "25006")) {
        p->broken = true;
        snprintf(prefix, sizeof prefix, "database unavailable: %s: ", what);
        db_pg_seterr(e, ERR_UNAVAILABLE, prefix, msg);
        return DB_ERR_UNAVAILABLE;
    }
    if (db_pg_state_is(state, "23")) {
        snprintf(prefix, sizeof prefix, "%s: ", what);
        db_pg_seterr(e, ERR_CONFLICT, prefix, msg);
        return DB_ERR_CONSTRAINT;
    }
    /* Busy rather than broken: serialization failure, deadlock, lock or
     * statement time-out, disk full. Worth a retry; the connection is fine. */
    if (db_pg_state_is(state, "40") || db_pg_state_is(state, "53") ||
        db_pg_state_is(state, "55P03") || db_pg_state_is(state, "57014")) {
        snprintf(prefix, sizeof prefix, "database unavailable: %s: ", what);
        db_pg_seterr(e, ERR_UNAVAILABLE, prefix, msg);
        return DB_ERR_UNAVAILABLE;
    }
    snprintf(prefix, sizeof prefix, "database error: %s: ", what);
    db_pg_seterr(e, ERR_INTERNAL, prefix, msg);
    return DB_ERR_OTHER;
}

/* Runs parameterless SQL that returns no rows. */
db_status db_pg_run(db_pg *p, const char *sql, const char *what, err *e)
{
    PGresult *res = PQexec(p->conn, sql); /* freed here */
    db_status st = DB_OK;
    ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK)
        st = db_pg_fail(p, res, what, e);
    PQclear(res);
    return st;
}

/* Notices ("relation already exists, skipping") are not errors: drop them
 * instead of letting libpq print them on stderr. */
static void db_pg_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* ---- opening ---------------------------------------------------------------- */

/* Applies the spec's missing migrations in one transaction. 0, or -1 with e set. */
static int db_pg_migrate(db_pg *p, err *e)
{
    static const char create_sql[] =
        "CREATE TABLE IF NOT EXISTS eskit_schema_migrations ("
        " service text NOT NULL,"
        " version integer NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (service, version))";
    static const char check_sql[] =
        "SELECT 1 FROM eskit_schema_migrations WHERE service = $1 AND version = $2::integer";
    static const char record_sql[] =
        "INSERT INTO eskit_schema_migrations (service, version) VALUES ($1, $2::integer)";
    PGresult *res = NULL; /* the one live result, cleared before the next */
    bool in_tx = false;
    int ret = -1;

    if (db_pg_run(p, "BEGIN", "migration", e) != DB_OK)
        goto done;
    in_tx = true;
    if (db_pg_run(p, "SELECT pg_advisory_xact_lock(" DB_PG_MIGRATION_LOCK ")", "migration lock",
                  e) != DB_OK ||
        db_pg_run(p, create_sql, "migration table", e) != DB_OK)
        goto done;
    for (const db_migration *m = p->spec->pg_migrations; m && m->sql; m++) {
        char version[16];
        char what[48];
        snprintf(version, sizeof version, "%d", m->version);
        snprintf(what, sizeof what, "migration %d", m->version);
        const char *vals[2] = {p->spec->name, version};

        res = PQexecParams(p->conn, check_sql, 2, NULL, vals, NULL, NULL, 0);
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
            db_pg_fail(p, res, "migration check", e);
            goto done;
        }
        bool applied = PQntuples(res) > 0;
        PQclear(res);
        res = NULL;
        if (applied)
            continue;
        if (db_pg_run(p, m->sql, what, e) != DB_OK)
            goto done;
        res = PQexecParams(p->conn, record_sql, 2, NULL, vals, NULL, NULL, 0);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
            db_pg_fail(p, res, "migration record", e);
            goto done;
        }
        PQclear(res);
        res = NULL;
    }
    if (db_pg_run(p, "COMMIT", "migration commit", e) != DB_OK)
        goto done;
    in_tx = false;
    ret = 0;
done:
    PQclear(res);
    if (in_tx && PQstatus(p->conn) == CONNECTION_OK)
        (void)db_pg_run(p, "ROLLBACK", "migration rollback", NULL);
    return ret;
}

/* Prepares every statement of the spec as "s<i>". 0, or -1 with e set. */
static int db_pg_prepare(db_pg *p, err *e)
{
    for (size_t i = 0; i < p->spec->nstmts; i++) {
        char name[32], what[48];
        snprintf(name, sizeof name, "s%zu", i);
        snprintf(what, sizeof what, "prepare statement %zu", i);
        PGresult *res = PQprepare(p->conn, name, p->spec->stmts[i].pg, 0, NULL);
        bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            db_pg_fail(p, res, what, e);
        PQclear(res);
        if (!ok)
            return -1;
    }
    return 0;
}

/* The connect_timeout to impose: the URL's own when it sets a positive one,
 * else DB_PG_CONNECT_TIMEOUT (0 would mean "wait for ever"). Writes it into
 * out. Returns 0, or -1 with e set (invalid_argument) for a malformed URL. */
static int db_pg_timeout(const char *url, char *out, size_t outsz, err *e)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg); /* freed below */
    if (!opts) {
        db_pg_seterr(e, ERR_INVALID_ARGUMENT, "invalid database URL: ",
                     msg ? msg : "out of memory");
        PQfreemem(msg);
        return -1;
    }
    snprintf(out, outsz, "%s", DB_PG_CONNECT_TIMEOUT);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "connect_timeout") != 0 || !o->val)
            continue;
        char *end = NULL;
        errno = 0;
        long v = strtol(o->val, &end, 10);
        if (errno == 0 && end != o->val && *end == '\0' && v > 0 && v <= 3600)
            snprintf(out, outsz, "%ld", v);
    }
    PQconninfoFree(opts);
    return 0;
}

static void db_pg_close(void *ctx)
{
    db_pg *p = ctx;
    if (!p)
        return;
    PQfinish(p->conn);
    for (size_t i = 0; i < p->nnamed; i++)
        free(p->named[i].sql);
    free(p);
}

/* `url` is a postgres:// or postgresql:// URL. Returns the context (freed by
 * db_pg_close) or NULL with e set. */
static void *db_pg_open(const char *url, const db_spec *spec, const db_opts *o, err *e)
{
    db_pg *p = NULL;
    char timeout[16];

    if (db_pg_timeout(url, timeout, sizeof timeout, e) != 0)
        goto fail;
    p = calloc(1, sizeof *p);
    if (!p) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    p->spec = spec;
    p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 0;

    /* Entries before "dbname" are defaults the URL may override; entries
     * after it override the URL (libpq processes the arrays in order). A
     * connection that writes looks for the primary among the URL's hosts;
     * one for reads takes what the URL asks for (any server by default). */
    const char *const keys[] = {"application_name",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                o->reads ? "dbname" : "target_session_attrs",
                                o->reads ? "connect_timeout" : "dbname",
                                o->reads ? NULL : "connect_timeout",
                                NULL};
    const char *const vals[] = {spec->name ? spec->name : "eskit",
                                "30",
                                "10",
                                "3",
                                o->reads ? url : "read-write",
                                o->reads ? timeout : url,
                                o->reads ? NULL : timeout,
                                NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        db_pg_seterr(e, ERR_UNAVAILABLE, "database unavailable: ", PQerrorMessage(p->conn));
        goto fail;
    }
    PQsetNoticeProcessor(p->conn, db_pg_quiet, NULL);
    /* Plan every execution with the table sizes of now: a generic plan
     * cached while a table was empty (a sequential scan) would otherwise stay
     * until the next ANALYZE, while the table grows by millions of rows. */
    if (db_pg_run(p, "SET plan_cache_mode = force_custom_plan", "session setup", e) != DB_OK)
        goto fail;
    /* SPEC §1: an acknowledged write survives a restart of the database,
     * whatever the server's or the role's default. */
    if (db_pg_run(p, "SET synchronous_commit = on", "session setup", e) != DB_OK)
        goto fail;
    if ((!o->reads && db_pg_migrate(p, e) != 0) || db_pg_prepare(p, e) != 0)
        goto fail;
    return p;

fail:
    db_pg_close(p);
    return NULL;
}

/* ---- statements ------------------------------------------------------------- */

/* Copies the rows of a PGresult into a new db_res (the caller frees it).
 * NULL on OOM. */
db_res *db_pg_rows(const PGresult *res)
{
    int cols = PQnfields(res);
    int rows = PQntuples(res);
    db_res *out = db_res_new(cols);
    const char **vals = calloc(cols ? (size_t)cols : 1, sizeof *vals);
    size_t *lens = calloc(cols ? (size_t)cols : 1, sizeof *lens);

    if (!out || !vals || !lens)
        goto fail;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) {
            bool null = PQgetisnull(res, r, c);
            vals[c] = null ? NULL : PQgetvalue(res, r, c);
            lens[c] = null ? 0 : (size_t)PQgetlength(res, r, c);
        }
        if (db_res_add_row(out, vals, lens) != 0)
            goto fail;
    }
    free(vals);
    free(lens);
    return out;

fail:
    db_res_free(out);
    free(vals);
    free(lens);
    return NULL;
}

/* PQexecPrepared, within the connection's bound when it has one. The
 * result, or NULL; the caller clears it. */
static PGresult *db_pg_exec_prepared(db_pg *p, const char *name, int np,
                                     const char *const *vals)
{
    int64_t deadline = db_pg_deadline(p);
    if (!deadline)
        return PQexecPrepared(p->conn, name, np, vals, NULL, NULL, 0);
    if (!PQsendQueryPrepared(p->conn, name, np, vals, NULL, NULL, 0))
        return NULL;
    PGresult *res = db_pg_get(p, deadline), *more;
    while (res && (more = db_pg_get(p, deadline)) != NULL) /* a single statement: one */
        PQclear(more);
    return res;
}

/* Prepares `sql` as `name`, within the connection's bound when it has one.
 * DB_OK, or the failure with e set. */
static db_status db_pg_prepare_named(db_pg *p, const char *name, const char *sql, err *e)
{
    int64_t deadline = db_pg_deadline(p);
    PGresult *res = NULL, *more;
    if (!deadline) {
        res = PQprepare(p->conn, name, sql, 0, NULL);
    } else if (PQsendPrepare(p->conn, name, sql, 0, NULL)) {
        res = db_pg_get(p, deadline);
        while (res && (more = db_pg_get(p, deadline)) != NULL)
            PQclear(more);
    }
    db_status st = DB_OK;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        char what[DB_NAME_MAX + 32];
        snprintf(what, sizeof what, "prepare statement %s", name);
        st = db_pg_fail(p, res, what, e);
    }
    PQclear(res);
    return st;
}

/* Makes sure statement `name` is prepared with `sql` on this connection,
 * dropping the oldest one when all DB_NAMED_MAX slots are in use. */
static db_status db_pg_named_ready(db_pg *p, const char *name, const char *sql, err *e)
{
    size_t i = 0;
    while (i < p->nnamed && strcmp(p->named[i].name, name) != 0)
        i++;
    if (i < p->nnamed && strcmp(p->named[i].sql, sql) == 0)
        return DB_OK;
    if (i == p->nnamed && p->nnamed == DB_NAMED_MAX) {
        i = p->next_drop;
        p->next_drop = (p->next_drop + 1) % DB_NAMED_MAX;
    }
    if (i < p->nnamed) { /* a slot to reuse: forget what it held */
        char dealloc[DB_NAME_MAX + 16];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", p->named[i].name);
        free(p->named[i].sql);
        p->named[i].sql = NULL;
        p->named[i].name[0] = '\0';
        db_status st = db_pg_run(p, dealloc, "deallocate a named statement", e);
        if (st != DB_OK) {
            /* the server may still hold the name: start on a new connection */
            p->broken = true;
            return st;
        }
    }
    char *copy = strdup(sql);
    if (!copy) {
        if (e)
            err_set(e, ERR_INTERNAL, "out of memory");
        return DB_ERR_OTHER;
    }
    db_status st = db_pg_prepare_named(p, name, sql, e);
    if (st != DB_OK) {
        free(copy);
        if (i < p->nnamed) { /* the slot stays free: move the last one into it */
            p->named[i] = p->named[--p->nnamed];
            p->named[p->nnamed].sql = NULL;
            if (p->next_drop >= p->nnamed)
                p->next_drop = 0;
        }
        return st;
    }
    snprintf(p->named[i].name, sizeof p->named[i].name, "%s", name);
    p->named[i].sql = copy;
    if (i == p->nnamed)
        p->nnamed++;
    return DB_OK;
}

/* Runs prepared statement `stmt` (or the one named `named`, when not NULL),
 * or the one-off text `sql` when not NULL. */
static db_status db_pg_exec_any(void *ctx, size_t stmt, const char *named, const char *sql,
                                const db_param *params, int np, db_res **out, err *e)
{
    db_pg *p = ctx;
    const char *stack_vals[DB_PG_STACK_PARAMS];
    char stack_ints[DB_PG_STACK_PARAMS][24];
    const char **vals = stack_vals;
    char (*ints)[24] = stack_ints;
    PGresult *res = NULL;
    db_status ret = DB_ERR_OTHER;
    char name[DB_NAME_MAX + 1];

    if ((!sql && !named && stmt >= p->spec->nstmts) || np < 0 || (np > 0 && !params)) {
        if (e)
            err_set(e, ERR_INTERNAL, "database error: bad statement %zu or parameters", stmt);
        goto done;
    }
    if (np > DB_PG_STACK_PARAMS) {
        vals = calloc((size_t)np, sizeof *vals);
        ints = calloc((size_t)np, sizeof *ints);
        if (!vals || !ints) {
            if (e)
                err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
    }
    for (int k = 0; k < np; k++) {
        switch (params[k].type) {
        case DB_P_INT:
            snprintf(ints[k], sizeof ints[k], "%" PRId64, params[k].i);
            vals[k] = ints[k];
            break;
        case DB_P_TEXT:
            vals[k] = params[k].s; /* NULL text binds SQL NULL */
            break;
        default:
            vals[k] = NULL;
            break;
        }
    }
    if (named)
        snprintf(name, sizeof name, "%s", named);
    else
        snprintf(name, sizeof name, "s%zu", stmt);
    res = sql ? PQexecParams(p->conn, sql, np, NULL, vals, NULL, NULL, 0)
              : db_pg_exec_prepared(p, name, np, vals);
    ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
        char what[DB_NAME_MAX + 16];
        if (sql)
            snprintf(what, sizeof what, "a one-off statement");
        else if (named)
            snprintf(what, sizeof what, "statement %s", named);
        else
            snprintf(what, sizeof what, "statement %zu", stmt);
        ret = db_pg_fail(p, res, what, e);
        goto done;
    }
    if (out) {
        *out = db_pg_rows(res);
        if (!*out) {
            if (e)
                err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
    }
    ret = DB_OK;
done:
    PQclear(res);
    if (vals != stack_vals)
        free(vals);
    if (ints != stack_ints)
        free(ints);
    return ret;
}

/* ---- transactions ----------------------------------------------------------- */

static db_status db_pg_begin(void *ctx, bool write)
{
    (void)write; /* PostgreSQL takes row locks as it goes */
    return db_pg_run(ctx, "BEGIN", "begin", NULL);
}

static db_status db_pg_commit(void *ctx)
{
    db_pg *p = ctx;
    PGresult *res = PQexec(p->conn, "COMMIT"); /* freed here */
    db_status st = DB_OK;

    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        st = db_pg_fail(p, res, "commit", NULL);
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        st = DB_ERR_OTHER; /* "ROLLBACK": a statement of the transaction had failed */
    PQclear(res);
    return st;
}

static void db_pg_rollback(void *ctx)
{
    db_pg *p = ctx;
    if (PQstatus(p->conn) != CONNECTION_OK || PQtransactionStatus(p->conn) == PQTRANS_IDLE)
        return;
    (void)db_pg_run(p, "ROLLBACK", "rollback", NULL);
}

static db_status db_pg_exec(void *ctx, size_t stmt, const db_param *params, int np,
                            db_res **out, err *e)
{
    return db_pg_exec_any(ctx, stmt, NULL, NULL, params, np, out, e);
}

static db_status db_pg_exec_sql(void *ctx, const char *sql, const db_param *params, int np,
                                db_res **out, err *e)
{
    return db_pg_exec_any(ctx, 0, NULL, sql, params, np, out, e);
}

static db_status db_pg_exec_named(void *ctx, const char *name, const char *sql,
                                  const db_param *params, int np, db_res **out, err *e)
{
    db_status st = db_pg_named_ready(ctx, name, sql, e);
    if (st != DB_OK)
        return st;
    return db_pg_exec_any(ctx, 0, name, NULL, params, np, out, e);
}

const db_ops db_pg_ops = {
    .version = 3,
    .name = "postgres",
    .open = db_pg_open,
    .close = db_pg_close,
    .exec = db_pg_exec,
    .begin = db_pg_begin,
    .commit = db_pg_commit,
    .rollback = db_pg_rollback,
    .pipeline = db_pg_pipeline,
    .listen = db_pg_listen,
    .wait_notify = db_pg_wait_notify,
    .healthy = db_pg_healthy,
    .exec_sql = db_pg_exec_sql,
    .exec_named = db_pg_exec_named,
};
