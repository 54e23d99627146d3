/*
 * db.c - the storage front: picks a back end from the URL, owns the `db`
 * handle, forwards every call to the back end's ops table (db_backend.h),
 * builds materialised results for the back ends, and pools connections for
 * request threads.
 *
 * The back ends (db_pg.c, db_sqlite.c) only know their own library; nothing
 * above this file knows which back end it talks to. A result (db_res) is
 * fully materialised: all values live in one growing arena, NUL-terminated,
 * addressed by offsets, so it stays valid after the back end has moved on.
 *
 * The pool hands out at most `size` connections, opens them lazily, never
 * retries inside acquire (a failed open is reported at once as unavailable,
 * so a request fails fast while the database is down), and drops a
 * connection that is no longer healthy when it comes back, so the next
 * acquire reconnects.
 */
#include "db.h"
#include "db_backend.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct db {
    const db_ops *ops;
    void *ctx;  /* the back end's connection, freed by ops->close */
    bool in_tx; /* between a successful db_begin and db_commit/db_rollback */
    int64_t mark; /* the caller's (db_mark) */
};

struct db_res {
    int cols;
    size_t rows;
    size_t cap_rows;
    size_t *offs;   /* rows * cols offsets into arena */
    bool *nulls;    /* rows * cols: SQL NULL */
    char *arena;    /* every value, NUL-terminated */
    size_t len;
    size_t cap;
};

/* ---- URL dispatch ----------------------------------------------------------- */

static const char SQLITE_PREFIX[] = "sqlite:";

static bool db_url_is_pg(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

/* The back end for `url`, and in *target what to hand to its open(): the
 * path for SQLite, the whole URL for PostgreSQL. NULL when unknown. */
static const db_ops *db_url_backend(const char *url, const char **target)
{
    if (!url)
        return NULL;
    if (strncmp(url, SQLITE_PREFIX, sizeof SQLITE_PREFIX - 1) == 0) {
        const char *path = url + sizeof SQLITE_PREFIX - 1;
        if (!*path)
            return NULL;
        *target = path;
        return &db_sqlite_ops;
    }
    if (db_url_is_pg(url)) {
        /* The rest of the URL is libpq's to parse: db_pg's open refuses a
         * malformed one with invalid_argument. */
        *target = url;
        return &db_pg_ops;
    }
    return NULL;
}

bool db_url_valid(const char *url)
{
    const char *target = NULL;
    return db_url_backend(url, &target) != NULL;
}

/* ---- the handle and its wrappers -------------------------------------------- */

db *db_open(const char *url, const db_spec *spec, err *e)
{
    return db_open_opts(url, spec, NULL, e);
}

db *db_open_opts(const char *url, const db_spec *spec, const db_opts *o, err *e)
{
    static const db_opts writes = {false, 0};
    const char *target = NULL;
    const db_ops *ops = db_url_backend(url, &target);
    db *d = NULL;
    err scratch = ERR_INIT; /* so that back ends may always write an error */

    if (!e)
        e = &scratch;

    if (!ops) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "database URL must be postgres://..., postgresql://... or sqlite:PATH");
        goto fail;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    d->ops = ops;
    d->ctx = ops->open(target, spec, o ? o : &writes, e);
    if (!d->ctx)
        goto fail;
    err_clear(&scratch);
    return d;

fail:
    free(d);
    err_clear(&scratch);
    return NULL;
}

void db_close(db *d)
{
    if (!d)
        return;
    if (d->in_tx)
        d->ops->rollback(d->ctx);
    d->ops->close(d->ctx);
    free(d);
}

int64_t db_mark(const db *d)
{
    return d->mark;
}

void db_set_mark(db *d, int64_t v)
{
    d->mark = v;
}

db_status db_exec(db *d, size_t stmt, const db_param *params, int np, db_res **out, err *e)
{
    if (out)
        *out = NULL;
    return d->ops->exec(d->ctx, stmt, params, np, out, e);
}

db_status db_exec_sql(db *d, const char *sql, const db_param *params, int np, db_res **out,
                      err *e)
{
    if (out)
        *out = NULL;
    if (d->ops->version < 2 || !d->ops->exec_sql) {
        if (e)
            err_set(e, ERR_INTERNAL, "database error: %s has no one-off statements",
                    d->ops->name);
        return DB_ERR_UNSUPPORTED;
    }
    return d->ops->exec_sql(d->ctx, sql, params, np, out, e);
}

/* A name db_exec_named accepts (see db.h). */
static bool db_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > DB_NAME_MAX || (name[0] == 's' && name[1] >= '0' && name[1] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

db_status db_exec_named(db *d, const char *name, const char *sql, const db_param *params,
                        int np, db_res **out, err *e)
{
    if (out)
        *out = NULL;
    if (d->ops->version < 3 || !d->ops->exec_named) {
        if (e)
            err_set(e, ERR_INTERNAL, "database error: %s has no named statements",
                    d->ops->name);
        return DB_ERR_UNSUPPORTED;
    }
    if (!db_name_ok(name) || !sql) {
        if (e)
            err_set(e, ERR_INTERNAL, "database error: bad statement name '%.64s'",
                    name ? name : "");
        return DB_ERR_OTHER;
    }
    return d->ops->exec_named(d->ctx, name, sql, params, np, out, e);
}

db_status db_begin(db *d, bool write)
{
    db_status st = d->ops->begin(d->ctx, write);
    if (st == DB_OK)
        d->in_tx = true;
    return st;
}

db_status db_commit(db *d)
{
    db_status st = d->ops->commit(d->ctx);
    if (st != DB_OK)
        d->ops->rollback(d->ctx); /* whatever is left of it, so the handle is clean */
    d->in_tx = false;
    return st;
}

void db_rollback(db *d)
{
    d->ops->rollback(d->ctx);
    d->in_tx = false;
}

db_status db_pipeline(db *d, const db_step *steps, size_t n, err *e)
{
    db_status st = DB_OK;
    bool begins = false, commits = false;
    for (size_t i = 0; i < n; i++) {
        if (steps[i].out)
            *steps[i].out = NULL;
        begins |= steps[i].stmt == DB_STEP_BEGIN;
        commits |= steps[i].stmt == DB_STEP_COMMIT;
    }
    if (d->ops->pipeline) {
        st = d->ops->pipeline(d->ctx, steps, n, e);
        if (st == DB_OK) {
            if (begins)
                d->in_tx = true;
            if (commits)
                d->in_tx = false;
            return DB_OK;
        }
        if (begins || d->in_tx)
            db_rollback(d);
        return st;
    }
    for (size_t i = 0; i < n && st == DB_OK; i++) {
        if (steps[i].stmt == DB_STEP_BEGIN)
            st = db_begin(d, true);
        else if (steps[i].stmt == DB_STEP_COMMIT)
            st = db_commit(d); /* rolls back by itself on failure */
        else
            st = db_exec(d, steps[i].stmt, steps[i].params, steps[i].np, steps[i].out, e);
    }
    if (st != DB_OK && d->in_tx)
        db_rollback(d);
    return st;
}

db_status db_listen(db *d, const char *channel)
{
    return d->ops->listen(d->ctx, channel);
}

int db_wait_notify(db *d, int timeout_ms, int64_t *top)
{
    return d->ops->wait_notify(d->ctx, timeout_ms, top);
}

bool db_healthy(db *d)
{
    return d->ops->healthy(d->ctx);
}

/* ---- results ---------------------------------------------------------------- */

db_res *db_res_new(int cols)
{
    if (cols < 0)
        return NULL;
    db_res *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cols = cols;
    return r;
}

int db_res_add_row(db_res *r, const char *const *vals, const size_t *lens)
{
    size_t cols = (size_t)r->cols;
    size_t need = 0;

    for (size_t i = 0; i < cols; i++) {
        if (!vals[i])
            continue;
        if (lens[i] >= SIZE_MAX / 2 - need)
            return -1;
        need += lens[i] + 1;
    }
    if (r->rows == r->cap_rows) {
        size_t ncap = r->cap_rows ? r->cap_rows * 2 : 16;
        if (cols && ncap > SIZE_MAX / sizeof(size_t) / cols)
            return -1;
        size_t cells = cols ? ncap * cols : 1; /* never realloc to 0 bytes */
        size_t *offs = realloc(r->offs, cells * sizeof *offs);
        if (!offs)
            return -1;
        r->offs = offs;
        bool *nulls = realloc(r->nulls, cells * sizeof *nulls);
        if (!nulls)
            return -1;
        r->nulls = nulls;
        r->cap_rows = ncap;
    }
    if (need > r->cap - r->len) {
        size_t ncap = r->cap ? r->cap : 1024;
        while (need > ncap - r->len) {
            if (ncap > SIZE_MAX / 2)
                return -1;
            ncap *= 2;
        }
        char *arena = realloc(r->arena, ncap);
        if (!arena)
            return -1;
        r->arena = arena;
        r->cap = ncap;
    }
    size_t base = r->rows * cols;
    for (size_t i = 0; i < cols; i++) {
        r->nulls[base + i] = vals[i] == NULL;
        r->offs[base + i] = r->len;
        if (!vals[i])
            continue;
        if (lens[i])
            memcpy(r->arena + r->len, vals[i], lens[i]);
        r->arena[r->len + lens[i]] = '\0';
        r->len += lens[i] + 1;
    }
    r->rows++;
    return 0;
}

size_t db_res_rows(const db_res *r)
{
    return r ? r->rows : 0;
}

int db_res_cols(const db_res *r)
{
    return r ? r->cols : 0;
}

static bool db_res_in_range(const db_res *r, size_t row, int col)
{
    return r && row < r->rows && col >= 0 && col < r->cols;
}

bool db_res_null(const db_res *r, size_t row, int col)
{
    if (!db_res_in_range(r, row, col))
        return true;
    return r->nulls[row * (size_t)r->cols + (size_t)col];
}

/* The value as text, owned by the result (valid until db_res_free); NULL for
 * SQL NULL or a cell out of range. */
const char *db_res_text(const db_res *r, size_t row, int col)
{
    if (db_res_null(r, row, col))
        return NULL;
    return r->arena + r->offs[row * (size_t)r->cols + (size_t)col];
}

/* The value as an integer; 0 for NULL or text that does not start with one. */
int64_t db_res_int(const db_res *r, size_t row, int col)
{
    const char *s = db_res_text(r, row, col);
    if (!s)
        return 0;
    long long v = strtoll(s, NULL, 10);
    return (int64_t)v;
}

void db_res_free(db_res *r)
{
    if (!r)
        return;
    free(r->offs);
    free(r->nulls);
    free(r->arena);
    free(r);
}

/* ---- the pool --------------------------------------------------------------- */

typedef struct db_slot {
    db *conn;     /* NULL until opened, or after a broken one was closed */
    bool in_use;
} db_slot;

struct db_pool {
    char *url;
    const db_spec *spec;
    db_opts opts;
    int size;
    db_slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t freed;
};

db_pool *db_pool_new(const char *url, const db_spec *spec, int size)
{
    return db_pool_new_opts(url, spec, size, NULL);
}

db_pool *db_pool_new_opts(const char *url, const db_spec *spec, int size, const db_opts *o)
{
    db_pool *p = NULL;

    if (!db_url_valid(url) || size < 1)
        goto fail;
    p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->spec = spec;
    if (o)
        p->opts = *o;
    p->size = size;
    p->url = strdup(url);
    p->slots = calloc((size_t)size, sizeof *p->slots);
    if (!p->url || !p->slots)
        goto fail;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto fail;
    if (pthread_cond_init(&p->freed, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        goto fail;
    }
    return p;

fail:
    if (p) {
        free(p->url);
        free(p->slots);
        free(p);
    }
    return NULL;
}

/* Closes every connection; none may be in use any more. */
void db_pool_free(db_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        db_close(p->slots[i].conn);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p->url);
    free(p);
}

db *db_pool_try_acquire(db_pool *p)
{
    db *d = NULL;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size && !d; i++) {
        db_slot *slot = &p->slots[i];
        if (!slot->in_use && slot->conn && db_healthy(slot->conn)) {
            slot->in_use = true;
            d = slot->conn;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return d;
}

db *db_pool_acquire(db_pool *p, err *e)
{
    db_slot *slot = NULL;
    db *stale = NULL;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* Prefer a slot that already holds an open connection. */
        for (int i = 0; i < p->size; i++) {
            if (p->slots[i].in_use)
                continue;
            if (p->slots[i].conn) {
                slot = &p->slots[i];
                break;
            }
            if (!slot)
                slot = &p->slots[i];
        }
        if (slot)
            break;
        pthread_cond_wait(&p->freed, &p->mu);
    }
    slot->in_use = true;
    if (slot->conn && !db_healthy(slot->conn)) {
        stale = slot->conn;
        slot->conn = NULL;
    }
    pthread_mutex_unlock(&p->mu);

    /* Network work happens outside the lock. The slot is ours. */
    db_close(stale);
    if (slot->conn)
        return slot->conn;

    err inner = ERR_INIT;
    db *d = db_open_opts(p->url, p->spec, &p->opts, &inner);
    if (!d) {
        if (e && inner.code == ERR_UNAVAILABLE)
            err_move(e, &inner);
        else if (e)
            err_set(e, ERR_UNAVAILABLE, "database unavailable: %s", inner.message);
        err_clear(&inner);
        pthread_mutex_lock(&p->mu);
        slot->in_use = false;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    pthread_mutex_lock(&p->mu); /* db_pool_release reads every slot's conn under it */
    slot->conn = d;
    pthread_mutex_unlock(&p->mu);
    return d;
}

void db_pool_release(db_pool *p, db *d)
{
    if (!d)
        return;
    if (d->in_tx) /* a caller that forgot: never hand out a connection mid-transaction */
        db_rollback(d);
    bool keep = db_healthy(d);

    pthread_mutex_lock(&p->mu);
    db_slot *slot = NULL;
    for (int i = 0; i < p->size; i++) {
        if (p->slots[i].conn == d) {
            slot = &p->slots[i];
            break;
        }
    }
    if (slot) {
        if (!keep)
            slot->conn = NULL;
        slot->in_use = false;
        pthread_cond_signal(&p->freed);
    }
    pthread_mutex_unlock(&p->mu);

    if (!keep || !slot) /* a handle that is not ours is closed, not leaked */
        db_close(d);
}

void db_fail(err *e, db_status st, const char *what)
{
    if (e->message[0])
        log_warn("database: %s: %s", what, e->message);
    if (st == DB_ERR_UNAVAILABLE)
        err_set(e, ERR_UNAVAILABLE, "database unavailable while %s", what);
    else
        err_set(e, ERR_INTERNAL, "database error while %s", what);
}

void db_fail_write(err *e, db_status st, db *d, const char *what)
{
    if (st != DB_ERR_UNAVAILABLE || !d || db_healthy(d)) {
        db_fail(e, st, what);
        return;
    }
    if (e->message[0])
        log_warn("database: %s: %s", what, e->message);
    err_set_details(e, ERR_UNAVAILABLE, json_pack("{s:s}", "commit_outcome", "unknown"),
                    "the connection to the database was lost while %s: it may or may not "
                    "have been written; send the request again to learn which",
                    what);
}
