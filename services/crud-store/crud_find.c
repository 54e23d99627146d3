/*
 * crud_find.c - _find, and the time-travel GET and list, over the query
 * index (see crud_find.h).
 *
 * SQL narrows the candidates (the type, the log id the query runs at, the
 * creation order); the compiled selector (crud_selector.h) decides in C, so
 * SQLite and PostgreSQL give the same answers. Without a sort the rows come
 * in creation order in chunks and the page stops at limit + 1 matches (the
 * page token is then the creation log id of the last one returned); with a
 * sort every match at that log id is sorted in memory and the page token is
 * the position in that order, stable because the log id is fixed.
 */
#include "crud_find.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_entity.h"
#include "crud_index.h"
#include "crud_indexes.h"
#include "crud_selector.h"
#include "crud_sync.h"
#include "crud_types.h"
#include "http_server.h"
#include "jsonw.h"
#include "jsonx.h"
#include "timefmt.h"

#define CRUD_FIND_CHUNK 500

/* --- points in time -------------------------------------------------------- */

bool crud_point_from_query(http_req *r, int64_t version, crud_point *p, err *e)
{
    const char *t = http_req_query(r, "as_of");
    memset(p, 0, sizeof *p);
    if (t) {
        if (!timefmt_parse(t, &p->ms)) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "as_of must be an RFC 3339 date-time such as 2026-11-22T14:33:00.123Z");
            return false;
        }
        p->has_time = true;
    }
    if (http_req_query(r, "as_of_log_id")) {
        if (!http_req_query_int(r, "as_of_log_id", 0, 0, INT64_MAX, &p->log_id, e))
            return false;
        p->has_log_id = true;
    }
    if ((p->has_time + p->has_log_id + (version != 0)) > 1) {
        err_set(e, ERR_INVALID_ARGUMENT, "version, as_of and as_of_log_id exclude each other");
        return false;
    }
    return true;
}

bool crud_point_resolve(crud_app *app, crud_sync_ticket t, const crud_point *p, int64_t *at,
                        err *e)
{
    int64_t head = 0, offset = 0;
    if (!crud_sync_wait_since(app->sync, t, &head, e))
        return false;
    if (p->has_log_id) {
        *at = p->log_id < head ? p->log_id : head;
        return true;
    }
    /* the reads of the index catch it up to `at` themselves; an instant is
     * looked up in the index, which must hold the head first */
    if (p->has_time)
        return crud_index_sync(app->index, head, &offset, e) &&
               crud_index_log_id_at(app->index, p->ms, at, e);
    *at = head;
    return true;
}

/* --- rendering --------------------------------------------------------------- */

/* Appends the entity of a row. -1 when out of room. */
static int crud_find_render(buf *b, const char *type, const crud_index_row *row,
                            bool with_payload)
{
    crud_doc d = {.version = row->version, .exists = true, .deleted = row->deleted};
    d.text = with_payload ? row->text : NULL; /* borrowed: d is not freed */
    d.len = d.text ? strlen(d.text) : 0;
    return crud_entity_render(b, type, row->id, &d, with_payload);
}

/* {"results": [rows], "next_page_token": token | null[, "index": index]} */
static bool crud_find_page(buf *out, const char *type, crud_index_row *const *rows, size_t n,
                           bool with_payload, const char *token, bool with_index,
                           const char *index, err *e)
{
    if (buf_puts(out, "{\"results\":["))
        goto full;
    for (size_t i = 0; i < n; i++) {
        if ((i && buf_puts(out, ",")) || crud_find_render(out, type, rows[i], with_payload))
            goto full;
    }
    if (buf_puts(out, "],\"next_page_token\":") ||
        (token ? jsonw_string(out, token) : buf_puts(out, "null")))
        goto full;
    if (with_index &&
        (buf_puts(out, ",\"index\":") || (index ? jsonw_string(out, index) : buf_puts(out, "null"))))
        goto full;
    if (buf_puts(out, "}"))
        goto full;
    return true;
full:
    err_set(e, ERR_INTERNAL, "the page is too large to render");
    return false;
}

/* --- page tokens ------------------------------------------------------------- */

/* "<kind>.<at>.<cursor>": kind 'k' (creation order, cursor = the creation
 * log id of the last document returned) or 's' (sorted, cursor = position). */
static bool crud_token_parse(const char *token, char kind, int64_t *at, int64_t *cursor, err *e)
{
    char *end = NULL;
    if (!token || token[0] != kind || token[1] != '.')
        goto bad;
    errno = 0;
    long long a = strtoll(token + 2, &end, 10);
    if (errno || end == token + 2 || *end != '.' || a < 0)
        goto bad;
    const char *c = end + 1;
    long long v = strtoll(c, &end, 10);
    if (errno || end == c || *end || v < 0)
        goto bad;
    *at = a;
    *cursor = v;
    return true;
bad:
    err_set(e, ERR_INVALID_ARGUMENT, "page_token is not a token of this query's pages");
    return false;
}

/* --- the query ----------------------------------------------------------------- */

typedef struct crud_find_q {
    crud_selector *sel;  /* NULL: every live document */
    crud_sort_key *keys;
    size_t nkeys;
    int64_t limit;
    const char *token;
    bool skip_payload;
    crud_point point;
} crud_find_q;

static void crud_find_q_free(crud_find_q *q)
{
    crud_selector_free(q->sel);
    crud_sort_free(q->keys, q->nkeys);
}

static const char *const crud_find_members[] = {
    "selector", "sort", "limit", "page_token", "skip_payload", "as_of", "as_of_log_id",
};

/* Checks and compiles the body of _find. */
static bool crud_find_parse(const json_t *body, crud_find_q *q, err *e)
{
    const char *k;
    json_t *v;
    memset(q, 0, sizeof *q);
    q->limit = CRUD_FIND_LIMIT_DEFAULT;
    if (!json_is_object(body)) {
        err_set(e, ERR_INVALID_ARGUMENT, "the body must be a JSON object {\"selector\": {...}}");
        return false;
    }
    json_object_foreach((json_t *)body, k, v) {
        size_t i = 0;
        while (i < sizeof crud_find_members / sizeof crud_find_members[0] &&
               strcmp(crud_find_members[i], k) != 0)
            i++;
        if (i == sizeof crud_find_members / sizeof crud_find_members[0]) {
            err_set(e, ERR_INVALID_ARGUMENT, "%s: not a member of a query (selector, sort, "
                    "limit, page_token, skip_payload, as_of, as_of_log_id)", k);
            return false;
        }
    }
    const json_t *sel = json_object_get(body, "selector");
    if (!sel) {
        err_set(e, ERR_INVALID_ARGUMENT, "selector is required (an object; {} for all)");
        return false;
    }
    q->sel = crud_selector_compile(sel, e);
    if (!q->sel || !crud_sort_parse(json_object_get(body, "sort"), &q->keys, &q->nkeys, e))
        return false;
    const json_t *lim = json_object_get(body, "limit");
    if (lim && !json_is_null(lim)) {
        if (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
            json_integer_value(lim) > CRUD_FIND_LIMIT_MAX) {
            err_set(e, ERR_INVALID_ARGUMENT, "limit must be an integer from 1 to %d",
                    CRUD_FIND_LIMIT_MAX);
            return false;
        }
        q->limit = json_integer_value(lim);
    }
    const json_t *tok = json_object_get(body, "page_token");
    if (tok && !json_is_null(tok) && !json_is_string(tok)) {
        err_set(e, ERR_INVALID_ARGUMENT, "page_token must be a string or null");
        return false;
    }
    q->token = json_string_value(tok);
    const json_t *sp = json_object_get(body, "skip_payload");
    if (sp && !json_is_boolean(sp)) {
        err_set(e, ERR_INVALID_ARGUMENT, "skip_payload must be true or false");
        return false;
    }
    q->skip_payload = json_is_true(sp);
    const json_t *t = json_object_get(body, "as_of");
    const json_t *l = json_object_get(body, "as_of_log_id");
    if (t && !json_is_null(t)) {
        if (!json_is_string(t) || !timefmt_parse(json_string_value(t), &q->point.ms)) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "as_of must be an RFC 3339 date-time such as 2026-11-22T14:33:00.123Z");
            return false;
        }
        q->point.has_time = true;
    }
    if (l && !json_is_null(l)) {
        if (!json_is_integer(l) || json_integer_value(l) < 0) {
            err_set(e, ERR_INVALID_ARGUMENT, "as_of_log_id must be an integer >= 0");
            return false;
        }
        q->point.has_log_id = true;
        q->point.log_id = json_integer_value(l);
    }
    if (q->point.has_time && q->point.has_log_id) {
        err_set(e, ERR_INVALID_ARGUMENT, "as_of and as_of_log_id exclude each other");
        return false;
    }
    return true;
}

/* The sort order of two matches: the keys, then creation order. */
typedef struct crud_find_ctx {
    const crud_sort_key *keys;
    size_t nkeys;
} crud_find_ctx;

static int crud_find_cmp(const void *pa, const void *pb, void *arg)
{
    const crud_find_ctx *c = arg;
    const crud_index_row *a = *(crud_index_row *const *)pa, *b = *(crud_index_row *const *)pb;
    for (size_t i = 0; i < c->nkeys; i++) {
        int r = crud_selector_compare(crud_selector_get(a->payload, c->keys[i].path),
                                      crud_selector_get(b->payload, c->keys[i].path));
        if (r)
            return c->keys[i].desc ? -r : r;
    }
    return a->created < b->created ? -1 : a->created > b->created;
}

/* A growing array of rows: the matches of a query. */
typedef struct crud_matches {
    crud_index_row *rows;
    size_t n, cap;
} crud_matches;

static bool crud_matches_add(crud_matches *m, crud_index_row *row)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        crud_index_row *r = realloc(m->rows, cap * sizeof *r);
        if (!r)
            return false;
        m->rows = r;
        m->cap = cap;
    }
    m->rows[m->n++] = *row;
    memset(row, 0, sizeof *row);
    return true;
}

/*
 * The matches of q at log id `at` created after `after`, in creation order:
 * all of them (stop = 0) or the first `stop`.
 */
static bool crud_find_collect(crud_app *app, const char *type, const crud_selector *sel,
                              const crud_index_filter *f, int64_t at, int64_t after,
                              size_t stop, crud_matches *m, err *e)
{
    for (;;) {
        crud_index_row *rows = NULL;
        size_t n = 0;
        if (!crud_index_scan(app->index, type, at, after, CRUD_FIND_CHUNK, f, &rows, &n, e))
            return false;
        bool ok = true, full = false;
        for (size_t i = 0; i < n && ok && !full; i++) {
            after = rows[i].created;
            if (sel && !crud_selector_match(sel, rows[i].payload))
                continue;
            ok = crud_matches_add(m, &rows[i]);
            full = stop && m->n >= stop;
        }
        crud_index_rows_free(rows, n);
        if (!ok) {
            err_set(e, ERR_INTERNAL, "out of memory");
            return false;
        }
        if (full || n < CRUD_FIND_CHUNK)
            return true;
    }
}

/* Runs a query whose point and paging are decided; renders the page. */
static bool crud_find_exec(crud_app *app, const char *type, const crud_find_q *q, bool with_index,
                           buf *out, err *e)
{
    crud_matches m = {0};
    crud_index_row **page = NULL;
    int64_t at = 0, cursor = 0;
    char token[64];
    bool more = false, ok = false;
    char kind = q->nkeys ? 's' : 'k';
    json_t *spec = NULL;
    crud_index_filter filter, *f = NULL;
    const char *index = NULL;
    /* The type's spec comes through the cache's read barrier (one shared
     * log read); the query then runs at the head that read learned, instead
     * of reading the log again. */
    crud_sync_ticket ticket = crud_sync_arrive(app->sync);
    if (q->token && !crud_token_parse(q->token, kind, &at, &cursor, e))
        return false;
    if (q->sel && with_index) {
        /* the type's declared indexes: an unregistered type has none */
        err te = ERR_INIT;
        spec = crud_types_get(app, type, &te);
        if (!spec && te.code != ERR_NOT_FOUND) {
            err_move(e, &te);
            return false;
        }
        err_clear(&te);
        if (spec && crud_indexes_plan(app->index, spec, q->sel, &filter, &index))
            f = &filter;
    }
    if (!q->token && !crud_point_resolve(app, ticket, &q->point, &at, e))
        goto done;
    if (!q->nkeys) {
        if (!crud_find_collect(app, type, q->sel, f, at, cursor, (size_t)q->limit + 1, &m, e))
            goto done;
        more = m.n > (size_t)q->limit;
        size_t n = more ? (size_t)q->limit : m.n;
        page = calloc(n + 1, sizeof *page);
        if (!page)
            goto oom;
        for (size_t i = 0; i < n; i++)
            page[i] = &m.rows[i];
        if (more)
            snprintf(token, sizeof token, "k.%lld.%lld", (long long)at,
                     (long long)m.rows[n - 1].created);
        ok = crud_find_page(out, type, page, n, !q->skip_payload, more ? token : NULL,
                            with_index, index, e);
        goto done;
    }
    if (!crud_find_collect(app, type, q->sel, f, at, 0, 0, &m, e))
        goto done;
    page = calloc(m.n + 1, sizeof *page);
    if (!page)
        goto oom;
    for (size_t i = 0; i < m.n; i++)
        page[i] = &m.rows[i];
    crud_find_ctx ctx = {q->keys, q->nkeys};
    qsort_r(page, m.n, sizeof *page, crud_find_cmp, &ctx);
    size_t from = (size_t)cursor < m.n ? (size_t)cursor : m.n;
    size_t n = m.n - from < (size_t)q->limit ? m.n - from : (size_t)q->limit;
    more = from + n < m.n;
    if (more)
        snprintf(token, sizeof token, "s.%lld.%zu", (long long)at, from + n);
    ok = crud_find_page(out, type, page + from, n, !q->skip_payload, more ? token : NULL,
                        with_index, index, e);
    goto done;
oom:
    err_set(e, ERR_INTERNAL, "out of memory");
done:
    free(page);
    crud_index_rows_free(m.rows, m.n);
    json_decref(spec);
    return ok;
}

bool crud_find_run(crud_app *app, const char *type, const json_t *body, buf *out, err *e)
{
    crud_find_q q;
    bool ok = crud_find_parse(body, &q, e) && crud_find_exec(app, type, &q, true, out, e);
    crud_find_q_free(&q);
    return ok;
}

bool crud_find_list_at(crud_app *app, const char *type, const crud_point *p, int64_t limit,
                       const char *token, bool skip_payload, buf *out, err *e)
{
    crud_find_q q = {.limit = limit, .token = token, .skip_payload = skip_payload, .point = *p};
    return crud_find_exec(app, type, &q, false, out, e);
}

bool crud_find_get_at(crud_app *app, const char *type, const char *id, const crud_point *p,
                      bool with_deleted, buf *out, int64_t *version, bool *found, err *e)
{
    crud_index_row row = {0};
    int64_t at = 0;
    *found = false;
    if (!crud_point_resolve(app, crud_sync_arrive(app->sync), p, &at, e) ||
        !crud_index_get(app->index, type, id, at, &row, found, e))
        return false;
    bool ok = true;
    if (*found && row.deleted && !with_deleted)
        *found = false;
    if (*found) {
        *version = row.version;
        if (crud_find_render(out, type, &row, true)) {
            err_set(e, ERR_INTERNAL, "the document is too large to render");
            ok = false;
        }
    }
    free(row.id);
    free(row.text);
    json_decref(row.payload);
    return ok;
}
