/*
 * crud_index_read.c - the reads of the query index: the live documents of a
 * type at a log id (narrowed, when the planner chose one, by a declared
 * index), one document at a log id, and the log id of an instant.
 */
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
        json_decref(rows[i].payload);
    }
    free(rows);
}

/* Row i of a result with IX_ROW_COLS and the payload into *row. */
static bool ix_row(const db_res *r, size_t i, crud_index_row *row, err *e)
{
    const char *id = db_res_text(r, i, 0);
    const char *text = db_res_text(r, i, 4);
    memset(row, 0, sizeof *row);
    if (!id || !text) {
        err_set(e, ERR_INTERNAL, "a malformed row in the query index");
        return false;
    }
    row->id = strdup(id);
    row->version = db_res_int(r, i, 1);
    row->created = db_res_int(r, i, 2);
    row->deleted = db_res_int(r, i, 3) != 0;
    row->payload = jsonx_parse(text, strlen(text), e);
    if (!row->id || !row->payload) {
        if (!row->id)
            err_set(e, ERR_INTERNAL, "out of memory");
        free(row->id);
        json_decref(row->payload);
        memset(row, 0, sizeof *row);
        return false;
    }
    return true;
}

/* Runs statement `stmt`, or the text `sql` when not NULL, on a connection
 * for reads that shows every batch this process had seen applied when the
 * read began; again on the primary when a standby fails it. */
static bool ix_read(crud_index *ix, size_t stmt, const char *sql, const db_param *p, int np,
                    db_res **r, const char *what, err *e)
{
    db_rconn c;
    db_status st = DB_ERR_UNAVAILABLE;
    int64_t floor = db_reads_floor(ix->reads);
    if (db_reads_get(ix->reads, true, &c, e) < 0)
        return false;
    if (db_reads_ensure(ix->reads, &c, floor, true, e) != DB_READS_KEEP)
        return false; /* c was handed back: no primary either */
    do {
        st = sql ? db_exec_sql(c.d, sql, p, np, r, e) : db_exec(c.d, stmt, p, np, r, e);
    } while (db_reads_after(ix->reads, &c, st == DB_OK, DB_READS_NO_HEAD, 0, true, e) ==
             DB_READS_AGAIN);
    db_reads_put(ix->reads, &c);
    if (st != DB_OK) {
        db_fail(e, st, what);
        return false;
    }
    return true;
}

bool crud_index_query(crud_index *ix, size_t stmt, const db_param *p, int np, db_res **r,
                     const char *what, err *e)
{
    return ix_read(ix, stmt, NULL, p, np, r, what, e);
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

/* Appends "<expr> <op> <value>" for one bound of a filter; false when full. */
static bool ix_bound(crud_index *ix, buf *b, const char *path, const char *op,
                     const json_t *v, ix_fparams *fp)
{
    char *text = jsonx_dump(v);
    if (!text)
        return false;
    fp->texts[fp->n - 4] = text;
    fp->p[fp->n] = DB_TEXT(text);
    fp->n++;
    if (!ix->pg && json_is_string(v))
        fp->p[fp->n - 1] = DB_TEXT(json_string_value(v));
    if (buf_puts(b, " AND ") || crud_indexes_expr(b, ix->pg, path) ||
        buf_printf(b, " %s ", op))
        return false;
    if (!ix->pg && json_is_number(v))
        return buf_printf(b, "CAST($%d AS NUMERIC)", fp->n) == 0;
    if (!ix->pg && json_is_boolean(v)) {
        fp->p[fp->n - 1] = DB_INT(json_is_true(v) ? 1 : 0);
        return buf_printf(b, "$%d", fp->n) == 0;
    }
    return buf_printf(b, "$%d%s", fp->n, ix->pg ? "::jsonb" : "") == 0;
}

/* The WHERE terms of a filter (crud_indexes.h says which are superset-safe). */
static bool ix_filter_sql(crud_index *ix, buf *b, const crud_index_filter *f, ix_fparams *fp)
{
    if (f->eq) {
        if (!ix->pg && json_is_null(f->eq))
            return buf_puts(b, " AND ") == 0 && crud_indexes_expr(b, false, f->path) == 0 &&
                   buf_puts(b, " IS NULL") == 0;
        return ix_bound(ix, b, f->path, "=", f->eq, fp);
    }
    if (f->lo && !ix_bound(ix, b, f->path, f->lo_incl ? ">=" : ">", f->lo, fp))
        return false;
    if (f->hi && !ix_bound(ix, b, f->path, f->hi_incl ? "<=" : "<", f->hi, fp))
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

bool crud_index_scan(crud_index *ix, const char *type, int64_t at, int64_t after,
                     int64_t limit, const crud_index_filter *f, crud_index_row **rows,
                     size_t *n, err *e)
{
    db_res *r = NULL;
    buf sql;
    ix_fparams fp = {.p = {DB_TEXT(type), DB_INT(after), DB_INT(at), DB_INT(limit)}, .n = 4};
    bool ok = false;
    *rows = NULL;
    *n = 0;
    buf_init(&sql, 8192);
    if (!f) {
        if (!crud_index_query(ix, IX_SCAN_AT, fp.p, 4, &r, "reading the query index", e))
            goto done;
    } else {
        /* Names in this text are validated paths (crud_indexes_parse: the id
         * alphabet only); every value is a bound parameter. */
        if (buf_printf(&sql, "SELECT " IX_ROW_COLS "%s FROM crud_docs WHERE entity_type = $1 "
                       "AND deleted = 0 AND created_log_id > $2 AND " IX_AT(3),
                       ix->pg ? "payload::text" : "payload") ||
            !ix_filter_sql(ix, &sql, f, &fp) ||
            buf_puts(&sql, " ORDER BY created_log_id LIMIT $4")) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
        if (!ix_read(ix, 0, sql.data, fp.p, fp.n, &r,
                     "reading the query index through a declared index", e))
            goto done;
    }
    size_t rn = db_res_rows(r);
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
    if (!crud_index_query(ix, IX_GET_AT, p, 3, &r, "reading the query index", e))
        return false;
    bool ok = true;
    if (db_res_rows(r) > 0) {
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
