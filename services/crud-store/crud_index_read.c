/*
 * crud_index_read.c - the reads of the query index: the live documents of a
 * type at a log id (narrowed, when the planner chose one, by a declared
 * index), one document at a log id, and the log id of an instant.
 *
 * Reads run where db_reads sends them (a hot standby of the index's
 * database when ESKIT_DATABASE_READ_URL is set, else the primary). A read of
 * documents at log id `at` also reads, in the same statement, the offset the
 * database it ran on holds: that is the head db_reads checks a standby
 * against (its floor: the highest offset this process saw on the primary),
 * and when it is below `at`, the index is caught up on the primary
 * (crud_index_sync, which raises the floor) and the read runs again. So a
 * query needs no separate look at the offset, and its rows and the offset
 * come from one snapshot.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crud_index_int.h"
#include "crud_indexes.h"
#include "jsonx.h"

/* --- reads --------------------------------------------------------------- */

void crud_index_rows_free(crud_index_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].text);
        json_decref(rows[i].payload);
    }
    free(rows);
}

/* Row i of a wrapped read (IX_WITH_OFFSET_HEAD: the offset, IX_ROW_COLS,
 * the payload) into *row. */
static bool ix_row(const db_res *r, size_t i, crud_index_row *row, err *e)
{
    const char *id = db_res_text(r, i, 1);
    const char *text = db_res_text(r, i, 5);
    memset(row, 0, sizeof *row);
    if (!id || !text) {
        err_set(e, ERR_INTERNAL, "a malformed row in the query index");
        return false;
    }
    size_t len = strlen(text);
    row->id = strdup(id);
    row->text = malloc(len + 1);
    row->version = db_res_int(r, i, 2);
    row->created = db_res_int(r, i, 3);
    row->deleted = db_res_int(r, i, 4) != 0;
    row->payload = jsonx_parse(text, len, e);
    if (!row->id || !row->text || !row->payload) {
        if (!row->id || !row->text)
            err_set(e, ERR_INTERNAL, "out of memory");
        free(row->id);
        free(row->text);
        json_decref(row->payload);
        memset(row, 0, sizeof *row);
        return false;
    }
    memcpy(row->text, text, len + 1);
    return true;
}

/* The rows of a wrapped read that are documents (none when its one row
 * says only the offset). */
static size_t ix_res_docs(const db_res *r)
{
    size_t n = db_res_rows(r);
    return n == 1 && db_res_null(r, 0, 1) ? 0 : n;
}

/* Runs spec statement `stmt`, or the named statement (name, sql) when name
 * is not NULL, on c. */
static db_status ix_exec(db_rconn *c, size_t stmt, const char *name, const char *sql,
                         const db_param *p, int np, db_res **r, err *e)
{
    return name ? db_exec_named(c->d, name, sql, p, np, r, e) : db_exec(c->d, stmt, p, np, r, e);
}

/* Runs a read statement (ix_exec's) on a connection for reads that shows
 * every batch this process had seen applied when the read began; again on
 * the primary when a standby fails it. */
static bool ix_read(crud_index *ix, size_t stmt, const char *name, const char *sql,
                    const db_param *p, int np, db_res **r, const char *what, err *e)
{
    db_rconn c;
    db_status st = DB_ERR_UNAVAILABLE;
    int64_t floor = db_reads_floor(ix->reads);
    if (db_reads_get(ix->reads, true, &c, e) < 0)
        return false;
    if (db_reads_ensure(ix->reads, &c, floor, true, e) != DB_READS_KEEP)
        return false; /* c was handed back: no primary either */
    do {
        st = ix_exec(&c, stmt, name, sql, p, np, r, e);
    } while (db_reads_after(ix->reads, &c, st == DB_OK, DB_READS_NO_HEAD, 0, true, e) ==
             DB_READS_AGAIN);
    db_reads_put(ix->reads, &c);
    if (st != DB_OK) {
        db_fail(e, st, what);
        return false;
    }
    return true;
}

/* One wrapped read (ix_exec's statement) where ix->reads sends it: its
 * first column is the offset of the database it ran on, the head db_reads
 * wants, so a standby is checked against the floor in the same round trip.
 * *off: that offset. */
static bool ix_read_wrapped(crud_index *ix, size_t stmt, const char *name, const char *sql,
                            const db_param *p, int np, db_res **r, int64_t *off,
                            const char *what, err *e)
{
    db_rconn c;
    db_status st = DB_ERR_UNAVAILABLE;
    db_reads_next next;
    int64_t floor = db_reads_floor(ix->reads);
    if (db_reads_get(ix->reads, true, &c, e) < 0)
        return false;
    do {
        db_res_free(*r);
        *r = NULL;
        *off = 0;
        st = ix_exec(&c, stmt, name, sql, p, np, r, e);
        if (st == DB_OK && db_res_rows(*r) == 0) {
            err_set(e, ERR_INTERNAL, "the query index has no offset row");
            st = DB_ERR_OTHER;
        }
        if (st == DB_OK)
            *off = db_res_int(*r, 0, 0);
        next = db_reads_after(ix->reads, &c, st == DB_OK, *off, floor, true, e);
    } while (next == DB_READS_AGAIN);
    db_reads_put(ix->reads, &c);
    if (next == DB_READS_FAILED || st != DB_OK) {
        db_res_free(*r);
        *r = NULL;
        if (st != DB_OK)
            db_fail(e, st, what);
        return false;
    }
    return true;
}

/* Runs a wrapped read of rows at log id `at`. When the index does not hold
 * `at` yet (the offset the statement read is below it), catches it up on
 * the primary (crud_index_sync, which raises the floor of reads to what it
 * reached) and runs the read again. */
static bool ix_read_at(crud_index *ix, int64_t at, size_t stmt, const char *name,
                       const char *sql, const db_param *p, int np, db_res **r,
                       const char *what, err *e)
{
    for (int pass = 0;; pass++) {
        int64_t off = 0, reached = 0;
        if (!ix_read_wrapped(ix, stmt, name, sql, p, np, r, &off, what, e))
            return false;
        if (off >= at)
            return true;
        db_res_free(*r);
        *r = NULL;
        if (pass > 0) {
            err_set(e, ERR_UNAVAILABLE, "the query index does not hold log id %lld yet "
                    "(it holds %lld)", (long long)at, (long long)off);
            return false;
        }
        if (!crud_index_sync(ix, at, &reached, e))
            return false;
    }
}

bool crud_index_query(crud_index *ix, size_t stmt, const db_param *p, int np, db_res **r,
                      const char *what, err *e)
{
    return ix_read(ix, stmt, NULL, NULL, p, np, r, what, e);
}

bool crud_index_log_id_at(crud_index *ix, int64_t ms, int64_t *log_id, err *e)
{
    db_res *r = NULL;
    db_param p[] = {DB_INT(ms)};
    if (!crud_index_query(ix, IX_AT_TIME, p, 1, &r, "reading the query index", e))
        return false;
    *log_id = db_res_rows(r) ? db_res_int(r, 0, 0) : 0;
    db_res_free(r);
    return true;
}

/* Holds the text of one bound value of a filter. */
typedef struct ix_fparams {
    db_param p[6];
    char *texts[2];
    int n;
} ix_fparams;

/* The letter of a value's JSON type in a statement name. */
static char ix_type_letter(const json_t *v)
{
    return json_is_number(v) ? 'n' : json_is_string(v) ? 's' : json_is_boolean(v) ? 'b' : 'x';
}

/* Appends "<expr> <op> <value>" for one bound of a filter, and its shape
 * (op and the value's type) to the statement's name; false when full. */
static bool ix_bound(crud_index *ix, buf *b, buf *name, const char *path, const char *op,
                     const char *opname, const json_t *v, ix_fparams *fp)
{
    char *text = jsonx_dump(v);
    if (!text)
        return false;
    fp->texts[fp->n - 4] = text;
    fp->p[fp->n] = DB_TEXT(text);
    fp->n++;
    if (!ix->pg && json_is_string(v))
        fp->p[fp->n - 1] = DB_TEXT(json_string_value(v));
    if (buf_printf(name, "_%s%c", opname, ix_type_letter(v)) || buf_puts(b, " AND ") ||
        crud_indexes_expr(b, ix->pg, path) || buf_printf(b, " %s ", op))
        return false;
    if (!ix->pg && json_is_number(v))
        return buf_printf(b, "CAST($%d AS NUMERIC)", fp->n) == 0;
    if (!ix->pg && json_is_boolean(v)) {
        fp->p[fp->n - 1] = DB_INT(json_is_true(v) ? 1 : 0);
        return buf_printf(b, "$%d", fp->n) == 0;
    }
    return buf_printf(b, "$%d%s", fp->n, ix->pg ? "::jsonb" : "") == 0;
}

/* The WHERE terms of a filter (crud_indexes.h says which are superset-safe),
 * and the shape of the terms in `name`. */
static bool ix_filter_sql(crud_index *ix, buf *b, buf *name, const crud_index_filter *f,
                          ix_fparams *fp)
{
    if (f->eq) {
        if (!ix->pg && json_is_null(f->eq))
            return buf_puts(name, "_null") == 0 && buf_puts(b, " AND ") == 0 &&
                   crud_indexes_expr(b, false, f->path) == 0 && buf_puts(b, " IS NULL") == 0;
        return ix_bound(ix, b, name, f->path, "=", "eq", f->eq, fp);
    }
    if (f->lo && !ix_bound(ix, b, name, f->path, f->lo_incl ? ">=" : ">",
                           f->lo_incl ? "ge" : "gt", f->lo, fp))
        return false;
    if (f->hi && !ix_bound(ix, b, name, f->path, f->hi_incl ? "<=" : "<",
                           f->hi_incl ? "le" : "lt", f->hi, fp))
        return false;
    const json_t *any = f->lo ? f->lo : f->hi;
    /* close the open end at the edge of the JSON type, so that the range
     * stays within numbers (or strings) in the index's order */
    if (json_is_number(any) && !f->hi)
        return buf_puts(b, " AND ") == 0 && crud_indexes_expr(b, ix->pg, f->path) == 0 &&
               buf_puts(b, ix->pg ? " < 'false'::jsonb" : " < ''") == 0;
    if (json_is_string(any) && !f->lo && !ix->pg)
        return buf_puts(b, " AND ") == 0 && crud_indexes_expr(b, false, f->path) == 0 &&
               buf_puts(b, " >= ''") == 0;
    return true;
}

/* The name of the statement of a declared index's query shape: "ix_find_",
 * a hash of the path (the index), then the shape of its terms. */
static int ix_find_name(buf *name, const char *path)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *c = path; *c; c++) {
        h ^= (unsigned char)*c;
        h *= 1099511628211ULL;
    }
    return buf_printf(name, "ix_find_%016" PRIx64, h);
}

bool crud_index_scan(crud_index *ix, const char *type, int64_t at, int64_t after,
                     int64_t limit, const crud_index_filter *f, crud_index_row **rows,
                     size_t *n, err *e)
{
    db_res *r = NULL;
    buf sql, name;
    ix_fparams fp = {.p = {DB_TEXT(type), DB_INT(after), DB_INT(at), DB_INT(limit)}, .n = 4};
    bool ok = false;
    *rows = NULL;
    *n = 0;
    buf_init(&sql, 8192);
    buf_init(&name, DB_NAME_MAX);
    if (!f) {
        if (!ix_read_at(ix, at, IX_SCAN_AT, NULL, NULL, fp.p, 4, &r,
                        "reading the query index", e))
            goto done;
    } else {
        /* One named prepared statement per declared index and shape of the
         * terms (equality, or which ends of a range, and the values' JSON
         * types). Names in this text are validated paths (crud_indexes_parse:
         * the id alphabet only); every value is a bound parameter. */
        if (ix_find_name(&name, f->path) ||
            buf_printf(&sql, IX_WITH_OFFSET_HEAD "SELECT " IX_ROW_COLS "%s FROM crud_docs "
                       "WHERE entity_type = $1 AND deleted = 0 AND created_log_id > $2 AND "
                       IX_AT(3), ix->pg ? IX_PAYLOAD_PG : "payload") ||
            !ix_filter_sql(ix, &sql, &name, f, &fp) ||
            buf_puts(&sql, " ORDER BY created_log_id LIMIT $4" IX_WITH_OFFSET_TAIL)) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
        if (!ix_read_at(ix, at, 0, name.data, sql.data, fp.p, fp.n, &r,
                        "reading the query index through a declared index", e))
            goto done;
    }
    size_t rn = ix_res_docs(r);
    crud_index_row *out = calloc(rn ? rn : 1, sizeof *out);
    if (!out) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < rn; i++) {
        if (!ix_row(r, i, &out[i], e)) {
            crud_index_rows_free(out, i);
            goto done;
        }
    }
    *rows = out;
    *n = rn;
    ok = true;
done:
    db_res_free(r);
    buf_free(&sql);
    buf_free(&name);
    free(fp.texts[0]);
    free(fp.texts[1]);
    return ok;
}

bool crud_index_get(crud_index *ix, const char *type, const char *id, int64_t at,
                    crud_index_row *row, bool *found, err *e)
{
    db_res *r = NULL;
    db_param p[] = {DB_TEXT(type), DB_TEXT(id), DB_INT(at)};
    *found = false;
    memset(row, 0, sizeof *row);
    if (!ix_read_at(ix, at, IX_GET_AT, NULL, NULL, p, 3, &r, "reading the query index", e))
        return false;
    bool ok = true;
    if (ix_res_docs(r) > 0) {
        ok = ix_row(r, 0, row, e);
        *found = ok;
    }
    db_res_free(r);
    return ok;
}

bool crud_index_erase(crud_index *ix, const char *id, err *e)
{
    db_param p[] = {DB_TEXT(id)};
    db *d = db_pool_acquire(ix->pool, e); /* a write: on the primary */
    if (!d)
        return false;
    db_status st = db_exec(d, IX_ERASE, p, 1, NULL, e);
    db_pool_release(ix->pool, d);
    if (st != DB_OK)
        db_fail(e, st, "erasing from the query index");
    return st == DB_OK;
}
