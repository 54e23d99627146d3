/*
 * crud_indexes.c - declared query indexes (see crud_indexes.h): checking
 * the declarations, the DDL, a builder thread, readiness, the planner.
 *
 * Index DDL cannot take bound parameters, so it names paths in its text. It
 * is generated only from paths whose every member name was checked here
 * against the id alphabet (A-Z a-z 0-9 _ -), never from unchecked input;
 * database names of indexes are "crud_ix_" and a hash of the fields. Values
 * are never put into SQL text.
 */
#include "crud_indexes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_index_int.h"
#include "log.h"
#include "timefmt.h"

#define CRUD_INDEXES_SEG_MAX 64
#define CRUD_INDEXES_SEGS_MAX 8
#define CRUD_INDEXES_QUEUE 64
#define CRUD_INDEXES_KNOWN 256
#define CRUD_INDEXES_SQLNAME 32

/* --- declarations ------------------------------------------------------------ */

static bool crud_indexes_seg_ok(const char *s, size_t len)
{
    if (len == 0 || len > CRUD_INDEXES_SEG_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A path of member names of the id alphabet joined by '.'. */
static bool crud_indexes_path_ok(const char *path)
{
    size_t segs = 0;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!crud_indexes_seg_ok(p, len) || ++segs > CRUD_INDEXES_SEGS_MAX)
            return false;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

bool crud_indexes_parse(const json_t *spec, json_t *out, err *e)
{
    const json_t *list = json_object_get(spec, "indexes");
    if (!list || json_is_null(list))
        return true;
    if (!json_is_array(list) || json_array_size(list) > CRUD_INDEXES_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT, "spec.indexes must be an array of at most %d "
                "{\"name\", \"fields\": [path, ...]}", CRUD_INDEXES_MAX);
        return false;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *ix = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(ix, "name"));
        const json_t *fields = json_object_get(ix, "fields");
        if (!json_is_object(ix) || json_object_size(ix) != 2 || !name ||
            !crud_indexes_seg_ok(name, strlen(name))) {
            err_set(e, ERR_INVALID_ARGUMENT, "spec.indexes[%zu] must be {\"name\", \"fields\"} "
                    "with a name of 1 to %d characters of A-Z a-z 0-9 _ -", i,
                    CRUD_INDEXES_NAME_MAX);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(name, json_string_value(json_object_get(json_array_get(list, j),
                                                               "name"))) == 0) {
                err_set(e, ERR_INVALID_ARGUMENT, "spec.indexes[%zu].name: %s is declared twice",
                        i, name);
                return false;
            }
        }
        if (!json_is_array(fields) || json_array_size(fields) < 1 ||
            json_array_size(fields) > CRUD_INDEXES_FIELDS_MAX) {
            err_set(e, ERR_INVALID_ARGUMENT, "spec.indexes[%zu].fields must be 1 to %d paths", i,
                    CRUD_INDEXES_FIELDS_MAX);
            return false;
        }
        for (size_t j = 0; j < json_array_size(fields); j++) {
            const char *path = json_string_value(json_array_get(fields, j));
            if (!path || !crud_indexes_path_ok(path)) {
                err_set(e, ERR_INVALID_ARGUMENT,
                        "spec.indexes[%zu].fields[%zu] must be member names of A-Z a-z 0-9 _ - "
                        "(at most %d, each at most %d characters) joined by '.'",
                        i, j, CRUD_INDEXES_SEGS_MAX, CRUD_INDEXES_SEG_MAX);
                return false;
            }
        }
    }
    if (json_object_set(out, "indexes", (json_t *)list)) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    return true;
}

/* --- SQL text ------------------------------------------------------------------- */

int crud_indexes_expr(buf *b, bool pg, const char *path)
{
    const char *p = path;
    if (buf_puts(b, pg ? "(payload::jsonb #> '{" : "json_extract(payload, '$"))
        return -1;
    for (bool first = true;; first = false) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if ((pg ? (!first && buf_puts(b, ",")) : buf_puts(b, ".\"")) || buf_append(b, p, len) ||
            (!pg && buf_puts(b, "\"")))
            return -1;
        if (!dot)
            break;
        p = dot + 1;
    }
    return buf_puts(b, pg ? "}')" : "')");
}

/* The database name of the index over `fields`: crud_ix_<FNV-1a 64 hex>. */
static void crud_indexes_sqlname(const json_t *fields, char out[CRUD_INDEXES_SQLNAME])
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const char *s = json_string_value(json_array_get(fields, i));
        for (size_t k = 0; s && k <= strlen(s); k++) { /* the NUL separates fields */
            h ^= (unsigned char)s[k];
            h *= 1099511628211ULL;
        }
    }
    snprintf(out, CRUD_INDEXES_SQLNAME, "crud_ix_%016" PRIx64, h);
}

/* CREATE INDEX ... over validated fields (see the top of this file). */
static int crud_indexes_ddl(buf *b, bool pg, const char *sqlname, const json_t *fields)
{
    if (buf_printf(b, "CREATE INDEX %sIF NOT EXISTS %s ON crud_docs (entity_type",
                   pg ? "CONCURRENTLY " : "", sqlname))
        return -1;
    for (size_t i = 0; i < json_array_size(fields); i++) {
        const char *path = json_string_value(json_array_get(fields, i));
        if (!path || !crud_indexes_path_ok(path) || buf_puts(b, ", ") ||
            crud_indexes_expr(b, pg, path))
            return -1;
    }
    return buf_puts(b, ")");
}

/* --- the builder ---------------------------------------------------------------- */

typedef struct crud_build {
    char sqlname[CRUD_INDEXES_SQLNAME];
    json_t *fields; /* owned */
} crud_build;

struct crud_indexes {
    crud_index *ix;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop;
    crud_build queue[CRUD_INDEXES_QUEUE];
    size_t nqueue;
    char pending[CRUD_INDEXES_QUEUE][CRUD_INDEXES_SQLNAME]; /* queued or being built */
    size_t npending;
    char ready[CRUD_INDEXES_KNOWN][CRUD_INDEXES_SQLNAME];   /* seen ready: stays ready */
    size_t nready;
};

static bool crud_indexes_in(char (*set)[CRUD_INDEXES_SQLNAME], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(set[i], name) == 0)
            return true;
    }
    return false;
}

/* 1 ready, 0 invalid (a failed build), -1 not there, -2 cannot tell. */
static int crud_indexes_db_status(crud_index *ix, const char *sqlname)
{
    db_res *r = NULL;
    err e = ERR_INIT;
    db_param p[] = {DB_TEXT(sqlname)};
    int st = -2;
    if (crud_index_query(ix, IX_INDEX_STATUS, p, 1, &r, "reading an index's status", &e))
        st = db_res_rows(r) == 0 ? -1 : (int)db_res_int(r, 0, 0);
    db_res_free(r);
    err_clear(&e);
    return st;
}

static void crud_indexes_build(crud_indexes *d, const crud_build *bd)
{
    crud_index *ix = d->ix;
    buf sql;
    err e = ERR_INIT;
    buf_init(&sql, 8192);
    int st = crud_indexes_db_status(ix, bd->sqlname);
    db *c = st == 1 ? NULL : db_pool_acquire(ix->pool, &e);
    if (st == 0 && c) {
        buf drop;
        buf_init(&drop, 128);
        if (buf_printf(&drop, "DROP INDEX CONCURRENTLY IF EXISTS %s", bd->sqlname) == 0 &&
            db_exec_sql(c, drop.data, NULL, 0, NULL, &e) != DB_OK)
            log_warn("dropping the failed index %s: %s", bd->sqlname, e.message);
        buf_free(&drop);
        err_clear(&e);
    }
    if (c && crud_indexes_ddl(&sql, ix->pg, bd->sqlname, bd->fields) == 0) {
        double t0 = timefmt_mono();
        if (db_exec_sql(c, sql.data, NULL, 0, NULL, &e) == DB_OK)
            log_info("query index %s built in %.3fs", bd->sqlname, timefmt_mono() - t0);
        else
            log_warn("building query index %s: %s", bd->sqlname, e.message);
    }
    if (c)
        db_pool_release(ix->pool, c);
    err_clear(&e);
    buf_free(&sql);
}

static void *crud_indexes_run(void *arg)
{
    crud_indexes *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stop && d->nqueue == 0)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stop)
            break;
        crud_build bd = d->queue[0];
        memmove(d->queue, d->queue + 1, --d->nqueue * sizeof d->queue[0]);
        pthread_mutex_unlock(&d->mu);
        crud_indexes_build(d, &bd);
        json_decref(bd.fields);
        pthread_mutex_lock(&d->mu);
        for (size_t i = 0; i < d->npending; i++) {
            if (strcmp(d->pending[i], bd.sqlname) == 0) {
                memmove(d->pending[i], d->pending[i + 1],
                        (d->npending - i - 1) * sizeof d->pending[0]);
                d->npending--;
                break;
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

crud_indexes *crud_indexes_new(crud_index *ix)
{
    crud_indexes *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->ix = ix;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->thread, NULL, crud_indexes_run, d) != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return NULL;
    }
    return d;
}

void crud_indexes_free(crud_indexes *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    for (size_t i = 0; i < d->nqueue; i++)
        json_decref(d->queue[i].fields);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* True when the index over `fields` is ready; else queues its build. */
static bool crud_indexes_ensure(crud_index *ix, const json_t *fields)
{
    crud_indexes *d = ix->decl;
    char name[CRUD_INDEXES_SQLNAME];
    crud_indexes_sqlname(fields, name);
    pthread_mutex_lock(&d->mu);
    bool ready = crud_indexes_in(d->ready, d->nready, name);
    bool pending = crud_indexes_in(d->pending, d->npending, name);
    pthread_mutex_unlock(&d->mu);
    if (ready)
        return true;
    if (!pending && crud_indexes_db_status(ix, name) == 1) {
        pthread_mutex_lock(&d->mu);
        if (d->nready < CRUD_INDEXES_KNOWN && !crud_indexes_in(d->ready, d->nready, name))
            memcpy(d->ready[d->nready++], name, sizeof name);
        pthread_mutex_unlock(&d->mu);
        return true;
    }
    pthread_mutex_lock(&d->mu);
    if (!crud_indexes_in(d->pending, d->npending, name) && d->nqueue < CRUD_INDEXES_QUEUE) {
        json_t *copy = json_deep_copy(fields);
        if (copy) {
            memcpy(d->queue[d->nqueue].sqlname, name, sizeof name);
            d->queue[d->nqueue++].fields = copy;
            memcpy(d->pending[d->npending++], name, sizeof name);
            pthread_cond_signal(&d->cv);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return false;
}

void crud_indexes_declare(crud_index *ix, const json_t *spec)
{
    const json_t *list = json_object_get(spec, "indexes");
    for (size_t i = 0; i < json_array_size(list); i++)
        (void)crud_indexes_ensure(ix, json_object_get(json_array_get(list, i), "fields"));
}

json_t *crud_indexes_status(crud_index *ix, const json_t *spec, err *e)
{
    const json_t *list = json_object_get(spec, "indexes");
    json_t *out = json_object();
    if (!out)
        goto oom;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *decl = json_array_get(list, i);
        bool ready = crud_indexes_ensure(ix, json_object_get(decl, "fields"));
        if (json_object_set_new(out, json_string_value(json_object_get(decl, "name")),
                                json_string(ready ? "ready" : "building")))
            goto oom;
    }
    return out;
oom:
    json_decref(out);
    err_set(e, ERR_INTERNAL, "out of memory");
    return NULL;
}

/* --- the planner ----------------------------------------------------------------- */

bool crud_indexes_plan(crud_index *ix, const json_t *spec, const crud_selector *sel,
                       crud_index_filter *f, const char **name)
{
    const json_t *list = json_object_get(spec, "indexes");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *decl = json_array_get(list, i);
        const json_t *fields = json_object_get(decl, "fields");
        const char *lead = json_string_value(json_array_get(fields, 0));
        crud_index_filter c = {.path = lead};
        if (!lead || !crud_selector_bounds(sel, lead, &c.eq, &c.lo, &c.lo_incl, &c.hi,
                                           &c.hi_incl))
            continue;
        if (!c.eq) {
            /* a range of numbers, or of strings where the order is code points */
            const json_t *any = c.lo ? c.lo : c.hi;
            if (c.lo && c.hi && json_is_number(c.lo) != json_is_number(c.hi))
                c.hi = NULL;
            if (c.lo && c.hi && json_is_string(c.lo) != json_is_string(c.hi))
                c.hi = NULL;
            if (!(json_is_number(any) || (json_is_string(any) && !ix->pg)))
                continue;
        }
        if (!crud_indexes_ensure(ix, fields))
            continue;
        *f = c;
        *name = json_string_value(json_object_get(decl, "name"));
        return true;
    }
    return false;
}
