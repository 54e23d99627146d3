/*
 * cs_store.c - the statements of the consumer store and the queries behind
 * its endpoints.
 *
 * The compare-and-set is the heart of the service: the metrics consumer (and
 * any other reader of the log) saves its offset with expected_offset, so two
 * instances under one name cannot both advance. The check and the write are
 * always one statement, atomic on both back ends:
 *
 *   - no expected offset: an upsert;
 *   - expected 0: an upsert whose DO UPDATE only fires on a row at 0 (a
 *     missing consumer counts as 0, so the INSERT half is the "match");
 *   - expected M > 0: an UPDATE of the row at M (a missing consumer is at 0,
 *     so it can never match, and nothing is inserted).
 *
 * On PostgreSQL (READ COMMITTED) a second concurrent writer waits for the
 * first one's row lock and re-checks the condition against the committed
 * row, so it fails; on SQLite writers are serialised by the database lock.
 * A statement that returns no row is a conflict; the current offset for the
 * error details is read afterwards. A write whose connection is lost while
 * it runs (the primary died) may have committed: its 503 says so
 * (db_fail_write), and a compare-and-set sent again then answers 409 when
 * it had.
 */
#include "cs_store.h"

#include "log.h"
#include "timefmt.h"

#define CS_COLS "id, consumer_offset, updated_at"
#define CS_UPSERT                                                                            \
    "INSERT INTO cs_consumers AS c (" CS_COLS ") VALUES ($1, $2, $3) ON CONFLICT (id) DO "   \
    "UPDATE SET consumer_offset = excluded.consumer_offset, updated_at = excluded.updated_at"

/* A failed CAS whose re-read finds the expected offset again (a concurrent
 * writer moved it away and back, or deleted it) is retried this many times
 * before the conflict is reported. */
#define CS_CAS_RETRIES 3

static const db_stmt cs_stmts[CS_STMT_COUNT] = {
    [CS_PING] = {"SELECT 1", NULL},
    [CS_GET] = {"SELECT " CS_COLS " FROM cs_consumers WHERE id = $1", NULL},
    [CS_LIST] = {"SELECT " CS_COLS " FROM cs_consumers ORDER BY id", NULL},
    [CS_SET] = {CS_UPSERT " RETURNING " CS_COLS, NULL},
    [CS_CAS_ZERO] = {CS_UPSERT " WHERE c.consumer_offset = 0 RETURNING " CS_COLS, NULL},
    [CS_CAS] = {"UPDATE cs_consumers SET consumer_offset = $2, updated_at = $3 WHERE id = $1 "
                "AND consumer_offset = $4 RETURNING " CS_COLS,
                NULL},
    [CS_DELETE] = {"DELETE FROM cs_consumers WHERE id = $1 RETURNING id", NULL},
    [CS_COUNT] = {"SELECT COUNT(*) FROM cs_consumers", NULL},
};

extern const db_migration schema_pg[];
extern const db_migration schema_sqlite[];

const db_spec cs_db_spec = {
    .name = "eskit-consumer-store",
    .stmts = cs_stmts,
    .nstmts = CS_STMT_COUNT,
    .pg_migrations = schema_pg,
    .sqlite_migrations = schema_sqlite,
};

/* Fills e from a failed statement: unavailable stays unavailable, anything
 * else becomes internal (the details go to the log, not to the client). */
/* Row i of a result with the CS_COLS columns, as a new object (NULL on OOM). */
static json_t *cs_row(const db_res *r, size_t i)
{
    char when[TIMEFMT_LEN];
    timefmt_format(db_res_int(r, i, 2), when);
    return json_pack("{s:s, s:I, s:s}", "consumer_id", db_res_text(r, i, 0), "offset",
                     (json_int_t)db_res_int(r, i, 1), "updated_at", when);
}

json_t *cs_store_get(db *d, const char *id, err *e)
{
    db_res *r = NULL;
    json_t *out = NULL;
    db_param p[] = {DB_TEXT(id)};
    db_status st = db_exec(d, CS_GET, p, 1, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading a consumer");
        goto done;
    }
    if (db_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, "consumer %s does not exist", id);
        goto done;
    }
    out = cs_row(r, 0);
    if (!out)
        err_set(e, ERR_INTERNAL, "out of memory");
done:
    db_res_free(r);
    return out;
}

json_t *cs_store_list(db *d, err *e)
{
    db_res *r = NULL;
    json_t *list = NULL, *out = NULL;
    db_status st = db_exec(d, CS_LIST, NULL, 0, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "listing consumers");
        goto done;
    }
    list = json_array();
    if (!list)
        goto oom;
    for (size_t i = 0; i < db_res_rows(r); i++) {
        if (json_array_append_new(list, cs_row(r, i)) != 0)
            goto oom;
    }
    out = json_pack("{s:o}", "consumers", list);
    list = NULL; /* json_pack "o" steals it, even on failure */
    if (!out)
        goto oom;
    goto done;
oom:
    err_set(e, ERR_INTERNAL, "out of memory");
done:
    json_decref(list);
    db_res_free(r);
    return out;
}

/* The stored offset of `id` (0 when not stored) into *current. */
static bool cs_store_current(db *d, const char *id, int64_t *current, err *e)
{
    db_res *r = NULL;
    db_param p[] = {DB_TEXT(id)};
    db_status st = db_exec(d, CS_GET, p, 1, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "reading a consumer");
        return false;
    }
    *current = db_res_rows(r) ? db_res_int(r, 0, 1) : 0;
    db_res_free(r);
    return true;
}

json_t *cs_store_put(db *d, const char *id, int64_t offset, const int64_t *expected,
                     int64_t now_ms, err *e)
{
    db_res *r = NULL;
    json_t *out = NULL;
    cs_stmt stmt = !expected ? CS_SET : *expected == 0 ? CS_CAS_ZERO : CS_CAS;
    db_param p[] = {DB_TEXT(id), DB_INT(offset), DB_INT(now_ms), DB_INT(expected ? *expected : 0)};
    int np = stmt == CS_CAS ? 4 : 3;

    for (int attempt = 0;; attempt++) {
        db_status st = db_exec(d, stmt, p, np, &r, e);
        if (st != DB_OK) {
            db_fail_write(e, st, d, "saving a consumer offset");
            goto done;
        }
        if (db_res_rows(r) > 0)
            break;
        db_res_free(r);
        r = NULL;
        if (!expected) { /* an upsert always returns its row */
            err_set(e, ERR_INTERNAL, "database error while saving a consumer offset");
            goto done;
        }
        int64_t current = 0;
        if (!cs_store_current(d, id, &current, e))
            goto done;
        if (current != *expected || attempt == CS_CAS_RETRIES) {
            err_set_details(e, ERR_CONFLICT,
                            json_pack("{s:I}", "current_offset", (json_int_t)current),
                            "consumer %s is at offset %lld, not at the expected offset %lld", id,
                            (long long)current, (long long)*expected);
            goto done;
        }
    }
    out = cs_row(r, 0);
    if (!out)
        err_set(e, ERR_INTERNAL, "out of memory");
done:
    db_res_free(r);
    return out;
}

bool cs_store_delete(db *d, const char *id, err *e)
{
    db_res *r = NULL;
    bool ok = false;
    db_param p[] = {DB_TEXT(id)};
    db_status st = db_exec(d, CS_DELETE, p, 1, &r, e);
    if (st != DB_OK) {
        db_fail_write(e, st, d, "deleting a consumer");
        goto done;
    }
    if (db_res_rows(r) == 0) {
        err_set(e, ERR_NOT_FOUND, "consumer %s does not exist", id);
        goto done;
    }
    ok = true;
done:
    db_res_free(r);
    return ok;
}

bool cs_store_count(db *d, int64_t *n, err *e)
{
    db_res *r = NULL;
    db_status st = db_exec(d, CS_COUNT, NULL, 0, &r, e);
    if (st != DB_OK) {
        db_fail(e, st, "counting consumers");
        return false;
    }
    *n = db_res_rows(r) ? db_res_int(r, 0, 0) : 0;
    db_res_free(r);
    return true;
}
