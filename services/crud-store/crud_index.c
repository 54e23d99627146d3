/*
 * crud_index.c - the query index (see crud_index.h): its statements, the
 * catch-up loop of the read barrier (which the follower also runs at start,
 * on a rebuild and after a lost compare-and-set), and the follower thread,
 * which applies each page its long poll brings. Batches are applied by
 * crud_index_apply.c, reads are in crud_index_read.c.
 *
 * One mutex serialises appliers inside the process (the follower thread and
 * queries that find the index behind); across processes sharing one
 * PostgreSQL index, the compare-and-set of the offset inside the batch's
 * transaction does: on PostgreSQL a second writer waits for the row lock of
 * crud_index_state and then finds the offset moved, on SQLite writers are
 * serialised by the database lock.
 */
#include "crud_index.h"
#include "crud_index_int.h"
#include "crud_indexes.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crud_es.h"
#include "crud_types.h"
#include "db.h"
#include "jsonx.h"
#include "log.h"
#include "mpatch.h"
#include "timefmt.h"
#include "validate.h"


static const db_stmt ix_stmts[IX_STMT_COUNT] = {
    [IX_OFFSET] = {"SELECT log_offset FROM crud_index_state WHERE id = 1", NULL},
    [IX_CAS] = {"UPDATE crud_index_state SET log_offset = $2 WHERE id = 1 AND log_offset = $1 "
                "RETURNING log_offset",
                NULL},
    [IX_CURRENT] = {"SELECT entity_type, version, created_log_id, deleted, payload::text FROM "
                    "crud_docs WHERE doc_id = $1 AND valid_to_log_id IS NULL",
                    "SELECT entity_type, version, created_log_id, deleted, payload FROM "
                    "crud_docs WHERE doc_id = $1 AND valid_to_log_id IS NULL"},
    [IX_CLOSE] = {"UPDATE crud_docs SET valid_to_log_id = $2, valid_to_recorded_at = $3 WHERE "
                  "doc_id = $1 AND valid_to_log_id IS NULL",
                  NULL},
    [IX_INSERT] = {"INSERT INTO crud_docs (entity_type, doc_id, version, created_log_id, "
                   "valid_from_log_id, valid_from_recorded_at, deleted, payload) VALUES ($1, $2, "
                   "$3, $4, $5, $6, $7, $8::json)",
                   "INSERT INTO crud_docs (entity_type, doc_id, version, created_log_id, "
                   "valid_from_log_id, valid_from_recorded_at, deleted, payload) VALUES ($1, $2, "
                   "$3, $4, $5, $6, $7, $8)"},
    [IX_RESET_DOCS] = {"DELETE FROM crud_docs", NULL},
    [IX_RESET_OFFSET] = {"UPDATE crud_index_state SET log_offset = 0 WHERE id = 1", NULL},
    [IX_ERASE] = {"DELETE FROM crud_docs WHERE doc_id = $1", NULL},
    [IX_AT_TIME] = {"SELECT COALESCE(MAX(valid_from_log_id), 0) FROM crud_docs WHERE "
                    "valid_from_recorded_at <= $1",
                    NULL},
    [IX_GET_AT] = {IX_WITH_OFFSET_HEAD "SELECT " IX_ROW_COLS IX_PAYLOAD_PG " FROM crud_docs "
                   "WHERE entity_type = $1 AND doc_id = $2 AND " IX_AT(3) IX_WITH_OFFSET_TAIL,
                   IX_WITH_OFFSET_HEAD "SELECT " IX_ROW_COLS "payload FROM crud_docs WHERE "
                   "entity_type = $1 AND doc_id = $2 AND " IX_AT(3) IX_WITH_OFFSET_TAIL},
    [IX_SCAN_AT] = {IX_WITH_OFFSET_HEAD "SELECT " IX_ROW_COLS IX_PAYLOAD_PG " FROM crud_docs "
                    "WHERE entity_type = $1 AND deleted = 0 AND created_log_id > $2 AND " IX_AT(3)
                    " ORDER BY created_log_id LIMIT $4" IX_WITH_OFFSET_TAIL,
                    IX_WITH_OFFSET_HEAD "SELECT " IX_ROW_COLS "payload FROM crud_docs WHERE "
                    "entity_type = $1 AND deleted = 0 AND created_log_id > $2 AND " IX_AT(3)
                    " ORDER BY created_log_id LIMIT $4" IX_WITH_OFFSET_TAIL},
    /* 1: a declared index is there and usable; 0: a failed build left it
     * invalid (PostgreSQL); no row: not there */
    [IX_INDEX_STATUS] = {"SELECT CASE WHEN i.indisvalid THEN 1 ELSE 0 END FROM pg_class c JOIN "
                         "pg_index i ON i.indexrelid = c.oid WHERE c.relname = $1",
                         "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = $1"},
    /* The index is derived data: its batches need atomicity, not durability
     * (a batch lost in a crash is lost with its offset, and applied again).
     * PostgreSQL: no wait for the WAL flush in this transaction. */
    [IX_LAZY_COMMIT] = {"SELECT set_config('synchronous_commit', 'off', true)", "SELECT 1"},
    /* After an erasure was applied: SQLite's WAL copies of the erased rows
     * leave the disk (secure_delete zeroed them in the database file).
     * PostgreSQL: docs/retention.md says which maintenance does the same. */
    [IX_CHECKPOINT] = {"SELECT 0, 0, 0", "PRAGMA wal_checkpoint(TRUNCATE)"},
};

extern const db_migration schema_pg[];
extern const db_migration schema_sqlite[];

static const db_spec ix_db_spec = {
    .name = "eskit-crud-store",
    .stmts = ix_stmts,
    .nstmts = IX_STMT_COUNT,
    .pg_migrations = schema_pg,
    .sqlite_migrations = schema_sqlite,
};

/* --- applying the log ---------------------------------------------------- */

/* One page is applied by crud_index_apply_page (crud_index_apply.c). */

static db_status ix_read_offset(db *d, int64_t *offset, err *e)
{
    db_res *r = NULL;
    db_status st = db_exec(d, IX_OFFSET, NULL, 0, &r, e);
    if (st == DB_OK) {
        if (db_res_rows(r) == 1) {
            *offset = db_res_int(r, 0, 0);
        } else {
            err_set(e, ERR_INTERNAL, "the query index has no offset row");
            st = DB_ERR_OTHER;
        }
    }
    db_res_free(r);
    return st;
}

/* Empties the index: offset 0, no rows, in one transaction. */
static db_status ix_reset(db *d, err *e)
{
    db_status st = db_begin(d, true);
    if (st == DB_OK)
        st = db_exec(d, IX_RESET_DOCS, NULL, 0, NULL, e);
    if (st == DB_OK)
        st = db_exec(d, IX_RESET_OFFSET, NULL, 0, NULL, e);
    if (st == DB_OK)
        return db_commit(d);
    db_rollback(d);
    return st;
}

int64_t crud_index_offset(crud_index *ix)
{
    pthread_mutex_lock(&ix->mu);
    int64_t known = ix->known;
    pthread_mutex_unlock(&ix->mu);
    return known;
}

/* The offset read on the primary: reads beginning from now on must show it. */
static void ix_set_known(crud_index *ix, int64_t offset)
{
    pthread_mutex_lock(&ix->mu);
    ix->known = offset;
    pthread_mutex_unlock(&ix->mu);
    db_reads_acked(ix->reads, offset);
}

/* The head of db_reads: the offset a database (a standby's) holds. */
static bool ix_head(db *d, int64_t *head, err *e)
{
    db_status st = ix_read_offset(d, head, e);
    if (st != DB_OK)
        db_fail(e, st, "reading the query index's offset");
    return st == DB_OK;
}

/*
 * Applies the log until the index holds every entry up to `target` (or the
 * log's head, when that is lower), and sets *offset to the offset reached.
 * Holds apply_mu throughout. False with e set on a failure.
 */
static bool ix_catch_up(crud_index *ix, int64_t target, int64_t *offset, err *e)
{
    db *d = NULL;
    json_t *page = NULL;
    bool ok = false;
    db_status st;
    pthread_mutex_lock(&ix->apply_mu);
    d = db_pool_acquire(ix->pool, e);
    if (!d)
        goto done;
    pthread_mutex_lock(&ix->mu);
    bool rebuild = ix->rebuild;
    pthread_mutex_unlock(&ix->mu);
    if (rebuild) {
        if ((st = ix_reset(d, e)) != DB_OK) {
            db_fail(e, st, "emptying the query index");
            goto done;
        }
        log_info("query index emptied: it is rebuilt from the log");
        pthread_mutex_lock(&ix->mu);
        ix->rebuild = false;
        pthread_mutex_unlock(&ix->mu);
    }
    for (;;) {
        int64_t off = 0;
        pthread_mutex_lock(&ix->mu);
        bool stop = ix->stop;
        pthread_mutex_unlock(&ix->mu);
        if (stop) { /* shutting down: a long rebuild resumes at the next start */
            err_set(e, ERR_UNAVAILABLE, "the CRUD store is stopping");
            goto done;
        }
        if ((st = ix_read_offset(d, &off, e)) != DB_OK) {
            db_fail(e, st, "reading the query index's offset");
            goto done;
        }
        *offset = off;
        ix_set_known(ix, off);
        if (off >= target)
            break;
        json_decref(page);
        page = NULL;
        if (!crud_es_log_events(ix->es, off + 1, CRUD_INDEX_BATCH, 0, true, &page, e))
            goto done;
        int64_t head = json_integer_value(json_object_get(page, "head_id"));
        int64_t next = json_integer_value(json_object_get(page, "next_from_id"));
        if (head < off) {
            log_warn("the event store's log head went back from %lld to %lld (a new "
                     "database?): the query index is rebuilt", (long long)off, (long long)head);
            if ((st = ix_reset(d, e)) != DB_OK) {
                db_fail(e, st, "emptying the query index");
                goto done;
            }
            continue;
        }
        if (target > head)
            target = head;
        if (next - 1 <= off)
            break; /* nothing more to read (target already reached) */
        bool lost = false;
        st = crud_index_apply_page(d, off, next - 1, json_object_get(page, "results"), &lost,
                                    e);
        if (st != DB_OK) {
            db_fail(e, st, "applying the log to the query index");
            goto done;
        }
    }
    ok = true;
done:
    json_decref(page);
    if (d)
        db_pool_release(ix->pool, d);
    pthread_mutex_unlock(&ix->apply_mu);
    return ok;
}

/*
 * The read barrier's rounds are numbered: a caller needs a round that began
 * after it arrived, since the one in flight may have read the offset before
 * the caller's head was known to it. Each caller raises `want` to its head
 * before it waits, and a round catches up to the `want` of its start. The
 * first caller finding no round in flight runs the next round in its own
 * thread; the others wait for it. Under load one offset read (and, when the
 * index is behind, one catch-up) serves every query waiting at that moment.
 */
bool crud_index_sync(crud_index *ix, int64_t head, int64_t *offset, err *e)
{
    pthread_mutex_lock(&ix->mu);
    if (head > ix->want)
        ix->want = head;
    uint64_t target = ix->started + 1;
    while (ix->done < target) {
        if (ix->failed >= target) {
            err_set(e, ix->fail_code, "%s", ix->fail_msg);
            pthread_mutex_unlock(&ix->mu);
            return false;
        }
        if (ix->busy) {
            pthread_cond_wait(&ix->sync_cv, &ix->mu);
            continue;
        }
        ix->busy = true;
        uint64_t round = ++ix->started;
        int64_t want = ix->want;
        pthread_mutex_unlock(&ix->mu);
        err re = ERR_INIT;
        int64_t off = 0;
        bool ok = ix_catch_up(ix, want, &off, &re);
        pthread_mutex_lock(&ix->mu);
        ix->busy = false;
        if (ok) {
            ix->done = round;
            ix->done_offset = off;
        } else {
            ix->failed = round;
            ix->fail_code = re.code;
            snprintf(ix->fail_msg, sizeof ix->fail_msg, "%s", re.message);
        }
        pthread_cond_broadcast(&ix->sync_cv);
        if (!ok) {
            pthread_mutex_unlock(&ix->mu);
            err_move(e, &re);
            return false;
        }
        err_clear(&re);
    }
    *offset = ix->done_offset;
    pthread_mutex_unlock(&ix->mu);
    return true;
}

/* --- the follower thread -------------------------------------------------- */

/* Sleeps ms or until the index stops; true when it stops. */
static bool ix_pause(crud_index *ix, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ix->mu);
    if (!ix->stop)
        pthread_cond_timedwait(&ix->cv, &ix->mu, &ts);
    bool stop = ix->stop;
    pthread_mutex_unlock(&ix->mu);
    return stop;
}

/*
 * Applies a page the follower's long poll brought (entries from known + 1
 * up to next - 1) under the compare-and-set of the offset from `known`.
 * *lost: the offset had moved (another replica, or a query's catch-up in
 * this process, applied it first): the caller reads it again.
 */
static bool ix_apply_polled(crud_index *ix, int64_t known, const json_t *page, bool *lost,
                            err *e)
{
    int64_t next = json_integer_value(json_object_get(page, "next_from_id"));
    bool ok = false;
    *lost = false;
    pthread_mutex_lock(&ix->apply_mu);
    db *d = db_pool_acquire(ix->pool, e);
    if (d) {
        db_status st = crud_index_apply_page(d, known, next - 1,
                                             json_object_get(page, "results"), lost, e);
        if (st != DB_OK)
            db_fail(e, st, "applying the log to the query index");
        else if (!*lost)
            ix_set_known(ix, next - 1);
        ok = st == DB_OK;
        db_pool_release(ix->pool, d);
    }
    pthread_mutex_unlock(&ix->apply_mu);
    return ok;
}

/*
 * Long-polls a full page of the log, with payloads, from the known offset
 * and applies it as it comes: one event-store call and one batch per wake.
 * The known offset is read from the database first, again after a lost
 * compare-and-set, a failure, or a rebuild. On a failure waits and tries
 * again.
 */
static void *ix_follow(void *arg)
{
    crud_index *ix = arg;
    bool failing = false, fresh = false;
    for (;;) {
        err e = ERR_INIT;
        json_t *page = NULL;
        int64_t offset = 0;
        pthread_mutex_lock(&ix->mu);
        bool stop = ix->stop;
        bool rebuild = ix->rebuild;
        pthread_mutex_unlock(&ix->mu);
        if (stop)
            break;
        bool ok = true;
        if (rebuild || !fresh) /* empties the index first on a rebuild */
            ok = fresh = ix_catch_up(ix, 0, &offset, &e);
        int64_t known = crud_index_offset(ix);
        if (ok)
            ok = crud_es_log_events(ix->es, known + 1, CRUD_INDEX_BATCH, IX_FOLLOW_WAIT_S, true,
                                    &page, &e);
        if (ok) {
            int64_t head = json_integer_value(json_object_get(page, "head_id"));
            int64_t next = json_integer_value(json_object_get(page, "next_from_id"));
            bool lost = false;
            if (head < known) /* the log went back: the catch-up decides */
                ok = fresh = ix_catch_up(ix, head, &offset, &e);
            else if (next - 1 > known)
                ok = ix_apply_polled(ix, known, page, &lost, &e);
            if (lost)
                fresh = false;
        }
        json_decref(page);
        if (!ok)
            fresh = false;
        if (!ok && !failing)
            log_warn("query index: %s (retrying)", e.message);
        if (ok && failing)
            log_info("query index: following the log again");
        failing = !ok;
        err_clear(&e);
        if (!ok && ix_pause(ix, IX_RETRY_MS))
            break;
    }
    return NULL;
}

crud_index *crud_index_new(const char *url, const char *read_url, http_client *es,
                           bool rebuild, metrics *m, err *e)
{
    crud_index *ix = NULL;
    if (!db_url_valid(url)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "ESKIT_DATABASE_URL must be postgres://..., postgresql://... or sqlite:PATH");
        return NULL;
    }
    ix = calloc(1, sizeof *ix);
    if (!ix)
        goto oom;
    ix->es = es;
    ix->rebuild = rebuild;
    pthread_mutex_init(&ix->apply_mu, NULL);
    pthread_mutex_init(&ix->mu, NULL);
    pthread_cond_init(&ix->cv, NULL);
    pthread_cond_init(&ix->sync_cv, NULL);
    ix->pg = strncmp(url, "sqlite:", 7) != 0;
    ix->pool = db_pool_new(url, &ix_db_spec, IX_POOL);
    if (!ix->pool)
        goto oom;
    ix->reads = db_reads_new(ix->pool, &ix_db_spec, ix_head, read_url, IX_POOL, m);
    if (!ix->reads || !(ix->decl = crud_indexes_new(ix)))
        goto oom;
    if (pthread_create(&ix->follower, NULL, ix_follow, ix) != 0)
        goto oom;
    ix->follower_started = true;
    return ix;
oom:
    err_set(e, ERR_INTERNAL, "out of memory");
    crud_index_free(ix);
    return NULL;
}

void crud_index_free(crud_index *ix)
{
    if (!ix)
        return;
    if (ix->follower_started) {
        pthread_mutex_lock(&ix->mu);
        ix->stop = true;
        pthread_cond_broadcast(&ix->cv);
        pthread_mutex_unlock(&ix->mu);
        pthread_join(ix->follower, NULL);
    }
    crud_indexes_free(ix->decl);
    db_reads_free(ix->reads);
    db_pool_free(ix->pool);
    pthread_cond_destroy(&ix->cv);
    pthread_cond_destroy(&ix->sync_cv);
    pthread_mutex_destroy(&ix->mu);
    pthread_mutex_destroy(&ix->apply_mu);
    free(ix);
}

