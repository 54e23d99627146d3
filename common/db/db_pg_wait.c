/*
 * db_pg_wait.c - the parts of the PostgreSQL back end (db_pg.c) that wait on
 * the connection's socket: an answer awaited within a bound (db_opts
 * timeout_ms: poll() with a deadline, so that a server that stopped
 * answering fails the statement in time), pipelines (every statement sent,
 * then every result read: one round trip), notifications (LISTEN, and the
 * wait for NOTIFYs with their payloads), and the look at an idle connection
 * that finds one whose server has gone.
 */
#include "db_pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* PQgetResult, waiting at most until `deadline` (ms on the monotonic clock;
 * 0: as long as it takes) for the server to answer. Past it, the connection
 * is broken (its answers can no longer be read in order), p->timed_out is
 * set and NULL is returned, at once for every later call. */
PGresult *db_pg_get(db_pg *p, int64_t deadline)
{
    while (deadline && !p->timed_out && PQisBusy(p->conn)) {
        int64_t left = deadline - db_pg_now_ms();
        int sock = PQsocket(p->conn);
        if (sock < 0)
            break; /* PQgetResult reports the lost connection */
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int rc = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0) {
            p->timed_out = true;
            p->broken = true;
        } else if (rc < 0 || !PQconsumeInput(p->conn)) {
            break;
        }
    }
    return p->timed_out ? NULL : PQgetResult(p->conn);
}

/* When this statement (or pipeline) must have answered: 0 for no bound. */
int64_t db_pg_deadline(db_pg *p)
{
    p->timed_out = false;
    return p->timeout_ms > 0 ? db_pg_now_ms() + p->timeout_ms : 0;
}

/* ---- pipelines --------------------------------------------------------------- */

/* Sends one step of a pipeline (nothing is read). Returns 1, or 0 when
 * libpq refused it. */
static int db_pg_send_step(db_pg *p, const db_step *s)
{
    const char *vals[DB_PG_STACK_PARAMS];
    char ints[DB_PG_STACK_PARAMS][24];
    char name[32];
    if (s->stmt == DB_STEP_BEGIN)
        return PQsendQueryParams(p->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    if (s->stmt == DB_STEP_COMMIT)
        return PQsendQueryParams(p->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
    if (s->stmt >= p->spec->nstmts || s->np < 0 || s->np > DB_PG_STACK_PARAMS ||
        (s->np > 0 && !s->params))
        return 0;
    for (int k = 0; k < s->np; k++) {
        vals[k] = NULL;
        if (s->params[k].type == DB_P_INT) {
            snprintf(ints[k], sizeof ints[k], "%" PRId64, s->params[k].i);
            vals[k] = ints[k];
        } else if (s->params[k].type == DB_P_TEXT) {
            vals[k] = s->params[k].s;
        }
    }
    snprintf(name, sizeof name, "s%zu", s->stmt);
    return PQsendQueryPrepared(p->conn, name, s->np, vals, NULL, NULL, 0);
}

/* Checks the result of one step; fills its out. */
static db_status db_pg_step_result(db_pg *p, const db_step *s, PGresult *res, err *e)
{
    ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (rs == PGRES_PIPELINE_ABORTED)
        return DB_ERR_OTHER; /* an earlier step failed: reported there */
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK)
        return db_pg_fail(p, res, "pipeline step", e);
    if (s->stmt == DB_STEP_COMMIT && strcmp(PQcmdStatus(res), "COMMIT") != 0)
        return DB_ERR_OTHER;
    if (s->out && s->stmt < p->spec->nstmts) {
        *s->out = db_pg_rows(res);
        if (!*s->out) {
            if (e)
                err_set(e, ERR_INTERNAL, "out of memory");
            return DB_ERR_OTHER;
        }
    }
    return DB_OK;
}

/*
 * Sends every step and one Sync, then reads the results in order: one round
 * trip for the whole list. Each step's results end with a NULL from
 * PQgetResult; the Sync's result closes the pipeline.
 */
db_status db_pg_pipeline(void *ctx, const db_step *steps, size_t n, err *e)
{
    db_pg *p = ctx;
    db_status ret = DB_OK;
    size_t sent = 0;
    PGresult *res = NULL;
    int64_t deadline = db_pg_deadline(p);

    if (!PQenterPipelineMode(p->conn))
        return db_pg_fail(p, NULL, "pipeline", e);
    while (sent < n && db_pg_send_step(p, &steps[sent]))
        sent++;
    if (sent < n)
        ret = db_pg_fail(p, NULL, "pipeline send", e);
    if (!PQpipelineSync(p->conn)) {
        ret = db_pg_fail(p, NULL, "pipeline sync", e);
        p->broken = true;
    }
    for (size_t i = 0; i < sent; i++) {
        bool first = true;
        while ((res = db_pg_get(p, deadline)) != NULL) {
            if (first && ret == DB_OK)
                ret = db_pg_step_result(p, &steps[i], res, e);
            first = false;
            PQclear(res);
        }
        if (first && ret == DB_OK) /* no result at all: the connection is gone */
            ret = db_pg_fail(p, NULL, "pipeline result", e);
    }
    res = db_pg_get(p, deadline); /* the Sync */
    if (p->timed_out && ret == DB_OK)
        ret = db_pg_fail(p, NULL, "pipeline sync", e);
    if (res && PQresultStatus(res) != PGRES_PIPELINE_SYNC && ret == DB_OK)
        ret = db_pg_fail(p, res, "pipeline sync", e);
    PQclear(res);
    if (!PQexitPipelineMode(p->conn)) {
        p->broken = true; /* results left over: never reuse this connection */
        if (ret == DB_OK)
            ret = DB_ERR_UNAVAILABLE;
    }
    return ret;
}

/* ---- notifications ---------------------------------------------------------- */

db_status db_pg_listen(void *ctx, const char *channel)
{
    db_pg *p = ctx;
    char *ident = NULL; /* PQfreemem */
    char *sql = NULL;   /* free */
    db_status st = DB_ERR_OTHER;
    buf b;

    buf_init(&b, 1024);
    ident = PQescapeIdentifier(p->conn, channel, strlen(channel));
    if (!ident) {
        st = db_pg_fail(p, NULL, "listen", NULL);
        goto done;
    }
    if (buf_printf(&b, "LISTEN %s", ident) != 0)
        goto done;
    sql = buf_take(&b, NULL);
    if (!sql)
        goto done;
    st = db_pg_run(p, sql, "listen", NULL);
done:
    PQfreemem(ident);
    free(sql);
    buf_free(&b);
    return st;
}

/* Consumes every queued notification; returns how many there were, and
 * raises *top (when not NULL) to the largest integer payload. */
static int db_pg_drain(db_pg *p, int64_t *top)
{
    int n = 0;
    PGnotify *note;
    while ((note = PQnotifies(p->conn)) != NULL) {
        char *end = NULL;
        errno = 0;
        long long v = note->extra ? strtoll(note->extra, &end, 10) : 0;
        if (top && note->extra && end != note->extra && *end == '\0' && errno == 0 && v > *top)
            *top = (int64_t)v;
        PQfreemem(note);
        n++;
    }
    return n;
}

int db_pg_wait_notify(void *ctx, int timeout_ms, int64_t *top)
{
    db_pg *p = ctx;
    int64_t deadline = db_pg_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

    for (;;) {
        if (db_pg_drain(p, top) > 0) /* some may have come with earlier results */
            return 1;
        if (PQstatus(p->conn) != CONNECTION_OK)
            goto broken;
        int sock = PQsocket(p->conn);
        if (sock < 0)
            goto broken;
        int64_t left = deadline - db_pg_now_ms();
        struct pollfd pfd = {.fd = sock, .events = POLLIN};
        int rc = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            goto broken;
        }
        if (rc == 0)
            return db_pg_drain(p, top) > 0 ? 1 : 0;
        if (!PQconsumeInput(p->conn))
            goto broken;
        if (db_pg_drain(p, top) > 0)
            return 1;
        if (PQstatus(p->conn) != CONNECTION_OK)
            goto broken;
        if (db_pg_now_ms() >= deadline)
            return 0;
    }
broken:
    p->broken = true;
    return -1;
}

/* An idle connection with something to read has either a notification
 * (kept for db_pg_wait_notify) or news of its end: the server's last words
 * and the end of the stream. A few looks read both. */
bool db_pg_healthy(void *ctx)
{
    db_pg *p = ctx;
    if (p->broken || PQstatus(p->conn) != CONNECTION_OK)
        return false;
    if (PQtransactionStatus(p->conn) != PQTRANS_IDLE ||
        PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF)
        return true; /* under way: not ours to read */
    for (int i = 0; i < 4; i++) {
        struct pollfd pfd = {.fd = PQsocket(p->conn), .events = POLLIN};
        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(p->conn) || PQstatus(p->conn) != CONNECTION_OK) {
            p->broken = true;
            return false;
        }
    }
    return true;
}
