/*
 * test_db.c - the storage layer (the files of common/db) against both back ends.
 *
 * The same test bodies run against SQLite (in a fresh temporary folder) and,
 * when ESKIT_TEST_PG_URL names a PostgreSQL database, against PostgreSQL
 * (with a table of its own per test, dropped at the end, so tests can run in
 * parallel on one database). Without ESKIT_TEST_PG_URL the PostgreSQL tests
 * are reported as skipped; `make test` sets it from a private cluster.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "db_backend.h"

enum {
    S_INSERT,
    S_SELECT,
    S_COUNT,
    S_SWAPPED,
    S_DIALECT,
    S_MIGROWS,
    S_NOTIFY,
    S_PID,
    S_KILL,
    S_DROP,
    S_UNMIGRATE,
    S_SLEEP,
    S_READ_ONLY,
    S_N
};

/* Everything one test needs; the test runs in its own process. */
static struct {
    bool ready;
    bool pg;
    char url[512];
    char dir[256];   /* SQLite: the temporary folder, removed at the end */
    char name[96];   /* the service name, unique per test on PostgreSQL */
    char table[64];
    char text[S_N][256];
    char mig[2][256];
    db_stmt stmts[S_N];
    db_migration migs[3];
    db_spec spec;
} T;

static const char *const stmt_fmt[S_N] = {
    [S_INSERT] = "INSERT INTO %s (id, name, n) VALUES ($1, $2, $3)",
    [S_SELECT] = "SELECT id, name, n FROM %s WHERE id > 0 ORDER BY id",
    [S_COUNT] = "SELECT count(*) FROM %s",
    [S_SWAPPED] = "INSERT INTO %s (name, id) VALUES ($2, $1)",
    [S_DIALECT] = "SELECT 'pg' FROM %s LIMIT 1",
    [S_MIGROWS] = "SELECT count(*) FROM eskit_schema_migrations WHERE service = $1 -- %s",
    [S_NOTIFY] = "SELECT pg_notify($1, $2) -- %s",
    [S_PID] = "SELECT pg_backend_pid() -- %s",
    [S_KILL] = "SELECT pg_terminate_backend($1) -- %s",
    [S_DROP] = "DROP TABLE IF EXISTS %s",
    [S_UNMIGRATE] = "DELETE FROM eskit_schema_migrations WHERE service = $1 -- %s",
    [S_SLEEP] = "SELECT pg_sleep(0.5) -- %s",
    [S_READ_ONLY] = "SELECT set_config('default_transaction_read_only', 'on', false) -- %s",
};

static void fmt(char *dst, size_t n, const char *f, const char *arg)
{
    int len = snprintf(dst, n, f, arg);
    cr_assert(len > 0 && (size_t)len < n);
}

/* Fills T.spec for table `table`; the SQLite text of S_DIALECT differs. */
static void spec_build(void)
{
    for (int i = 0; i < S_N; i++) {
        fmt(T.text[i], sizeof T.text[i], stmt_fmt[i], T.table);
        T.stmts[i].pg = T.text[i];
        T.stmts[i].sqlite = NULL;
    }
    T.stmts[S_DIALECT].sqlite = "SELECT 'sqlite'";
    fmt(T.mig[0], sizeof T.mig[0], "CREATE TABLE %s (id BIGINT PRIMARY KEY, name TEXT, n BIGINT)",
        T.table);
    /* two statements in one migration, and a row count that shows a re-run */
    snprintf(T.mig[1], sizeof T.mig[1],
             "INSERT INTO %s (id, name) VALUES (0, 'seed');\n"
             "INSERT INTO %s (id, name, n) VALUES (-1, 'seed2', 7);",
             T.table, T.table);
    T.migs[0] = (db_migration){1, T.mig[0]};
    T.migs[1] = (db_migration){2, T.mig[1]};
    T.migs[2] = (db_migration){0, NULL};
    T.spec = (db_spec){T.name, T.stmts, S_N, T.migs, T.migs};
}

static void setup_sqlite(void)
{
    fmt(T.dir, sizeof T.dir, "%s", "/tmp/eskit-test-db-XXXXXX");
    cr_assert_not_null(mkdtemp(T.dir));
    /* a folder that does not exist yet: db_open creates it */
    fmt(T.url, sizeof T.url, "sqlite:%s/sub/dir/test.db", T.dir);
    fmt(T.name, sizeof T.name, "%s", "test_db");
    fmt(T.table, sizeof T.table, "%s", "t");
    spec_build();
    T.ready = true;
}

static void setup_pg(void)
{
    const char *url = getenv("ESKIT_TEST_PG_URL");
    if (!url || !*url)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fmt(T.url, sizeof T.url, "%s", url);
    snprintf(T.table, sizeof T.table, "t_%ld_%ld", (long)getpid(), (long)ts.tv_nsec);
    snprintf(T.name, sizeof T.name, "test_db_%s", T.table);
    spec_build();
    T.pg = true;
    T.ready = true;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (!T.ready)
        return;
    if (T.pg) {
        err e = ERR_INIT;
        db *d = db_open(T.url, &T.spec, &e);
        if (d) {
            db_param p = DB_TEXT(T.name);
            if (db_exec(d, S_DROP, NULL, 0, NULL, NULL) != DB_OK ||
                db_exec(d, S_UNMIGRATE, &p, 1, NULL, NULL) != DB_OK)
                fprintf(stderr, "test_db: cleanup of %s failed\n", T.table);
            db_close(d);
        }
        err_clear(&e);
    } else if (T.dir[0]) {
        nftw(T.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

#define NEED_PG()                                                                        \
    do {                                                                                 \
        if (!T.ready)                                                                    \
            cr_skip_test("ESKIT_TEST_PG_URL is not set: PostgreSQL test not run");       \
    } while (0)

static db *open_ok(void)
{
    err e = ERR_INIT;
    db *d = db_open(T.url, &T.spec, &e);
    cr_assert_not_null(d, "db_open(%s): %s", T.url, e.message);
    err_clear(&e);
    return d;
}

static int64_t count_rows(db *d)
{
    db_res *r = NULL;
    err e = ERR_INIT;
    cr_assert_eq(db_exec(d, S_COUNT, NULL, 0, &r, &e), DB_OK, "%s", e.message);
    cr_assert_eq(db_res_rows(r), 1);
    int64_t n = db_res_int(r, 0, 0);
    db_res_free(r);
    return n;
}

static db_status insert(db *d, int64_t id, const char *name, db_param n, err *e)
{
    db_param p[3] = {DB_INT(id), DB_TEXT(name), n};
    return db_exec(d, S_INSERT, p, 3, NULL, e);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- bodies shared by both back ends ----------------------------------------- */

/* db_exec_named: prepared once per connection and name, prepared again for
 * another text under the same name, the oldest dropped past DB_NAMED_MAX,
 * names checked. */
static void body_named(void)
{
    db *d = open_ok();
    err e = ERR_INIT;
    char sql[256];
    db_res *r = NULL;
    cr_assert_eq(insert(d, 1, "one", DB_INT(10), &e), DB_OK, "%s", e.message);
    cr_assert_eq(insert(d, 2, "two", DB_INT(20), &e), DB_OK, "%s", e.message);

    snprintf(sql, sizeof sql, "SELECT name FROM %s WHERE n = $1", T.table);
    for (int i = 0; i < 3; i++) { /* prepared the first time, then run by name */
        db_param p = DB_INT(20);
        cr_assert_eq(db_exec_named(d, "q_by_n", sql, &p, 1, &r, &e), DB_OK, "%s", e.message);
        cr_assert_eq(db_res_rows(r), 1);
        cr_assert_str_eq(db_res_text(r, 0, 0), "two");
        db_res_free(r);
        r = NULL;
    }
    /* the same name with another text: that text runs */
    snprintf(sql, sizeof sql, "SELECT name FROM %s WHERE id = $1", T.table);
    db_param one = DB_INT(1);
    cr_assert_eq(db_exec_named(d, "q_by_n", sql, &one, 1, &r, &e), DB_OK, "%s", e.message);
    cr_assert_str_eq(db_res_text(r, 0, 0), "one");
    db_res_free(r);
    r = NULL;

    /* more names than a connection keeps: every one still runs, the first again */
    for (int i = 0; i < DB_NAMED_MAX + 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "q_%d", i);
        snprintf(sql, sizeof sql, "SELECT n + %d FROM %s WHERE id = $1", i, T.table);
        cr_assert_eq(db_exec_named(d, name, sql, &one, 1, &r, &e), DB_OK, "%s: %s", name,
                     e.message);
        cr_assert_eq(db_res_int(r, 0, 0), 10 + i);
        db_res_free(r);
        r = NULL;
    }
    snprintf(sql, sizeof sql, "SELECT n + %d FROM %s WHERE id = $1", 0, T.table);
    cr_assert_eq(db_exec_named(d, "q_0", sql, &one, 1, &r, &e), DB_OK, "%s", e.message);
    cr_assert_eq(db_res_int(r, 0, 0), 10);
    db_res_free(r);
    r = NULL;

    /* a broken text fails and leaves the connection usable */
    cr_assert_neq(db_exec_named(d, "q_bad", "SELECT FROM WHERE", NULL, 0, NULL, &e), DB_OK);
    err_clear(&e);
    cr_assert_eq(count_rows(d), 4);

    /* names: the alphabet, the length, never a spec statement's "s<i>" */
    const char *bad[] = {"", "s0", "s12_x", "Q_upper", "q-dash", "q name",
                         "q_0123456789012345678901234567890123456789012345678"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_neq(db_exec_named(d, bad[i], "SELECT 1", NULL, 0, NULL, &e), DB_OK, "%s",
                      bad[i]);
        err_clear(&e);
    }
    db_close(d);
}

static void body_migrations_once(void)
{
    db *d = open_ok();
    cr_assert_eq(count_rows(d), 2);
    db_param p = DB_TEXT(T.name);
    db_res *r = NULL;
    cr_assert_eq(db_exec(d, S_MIGROWS, &p, 1, &r, NULL), DB_OK);
    cr_assert_eq(db_res_int(r, 0, 0), 2);
    db_res_free(r);
    db_close(d);

    d = open_ok(); /* a second open applies nothing again */
    cr_assert_eq(count_rows(d), 2);
    db_close(d);
}

static void body_params_and_results(void)
{
    db *d = open_ok();
    err e = ERR_INIT;
    const char *odd = "it's \"quoted\"; DROP TABLE x; -- \xc3\xa9t\xc3\xa9";

    cr_assert_eq(insert(d, 1, "one", DB_INT(10), &e), DB_OK, "%s", e.message);
    cr_assert_eq(insert(d, 2, NULL, DB_NULLP, &e), DB_OK, "%s", e.message);
    cr_assert_eq(insert(d, 3, "", DB_INT(INT64_MAX), &e), DB_OK, "%s", e.message);
    cr_assert_eq(insert(d, 4, odd, DB_INT(INT64_MIN), &e), DB_OK, "%s", e.message);

    db_res *r = NULL;
    cr_assert_eq(db_exec(d, S_SELECT, NULL, 0, &r, &e), DB_OK, "%s", e.message);
    cr_assert_eq(db_res_rows(r), 4);
    cr_assert_eq(db_res_cols(r), 3);

    cr_assert_str_eq(db_res_text(r, 0, 0), "1");
    cr_assert_eq(db_res_int(r, 0, 0), 1);
    cr_assert_str_eq(db_res_text(r, 0, 1), "one");
    cr_assert_eq(db_res_int(r, 0, 2), 10);
    cr_assert_not(db_res_null(r, 0, 1));

    cr_assert(db_res_null(r, 1, 1));
    cr_assert_null(db_res_text(r, 1, 1));
    cr_assert(db_res_null(r, 1, 2));
    cr_assert_eq(db_res_int(r, 1, 2), 0);

    cr_assert_not(db_res_null(r, 2, 1)); /* "" is not NULL */
    cr_assert_str_eq(db_res_text(r, 2, 1), "");
    cr_assert_eq(db_res_int(r, 2, 2), INT64_MAX);

    cr_assert_str_eq(db_res_text(r, 3, 1), odd);
    cr_assert_eq(db_res_int(r, 3, 2), INT64_MIN);

    /* out of range: NULL, never a crash */
    cr_assert_null(db_res_text(r, 4, 0));
    cr_assert_null(db_res_text(r, 0, 3));
    cr_assert_null(db_res_text(r, 0, -1));
    db_res_free(r);

    /* out may be NULL, also for a query */
    cr_assert_eq(db_exec(d, S_SELECT, NULL, 0, NULL, NULL), DB_OK);
    /* a statement index the spec does not have */
    cr_assert_eq(db_exec(d, S_N, NULL, 0, NULL, &e), DB_ERR_OTHER);
    cr_assert_eq(e.code, ERR_INTERNAL);
    err_clear(&e);
    db_close(d);
}

static void body_constraint(void)
{
    db *d = open_ok();
    err e = ERR_INIT;
    cr_assert_eq(insert(d, 1, "a", DB_NULLP, &e), DB_OK);
    cr_assert_eq(insert(d, 1, "b", DB_NULLP, &e), DB_ERR_CONSTRAINT);
    cr_assert_eq(e.code, ERR_CONFLICT);
    cr_assert(e.message[0]);
    cr_assert_eq(insert(d, 1, "c", DB_NULLP, NULL), DB_ERR_CONSTRAINT); /* e may be NULL */
    cr_assert(db_healthy(d));
    cr_assert_eq(count_rows(d), 3); /* the connection is still fine */
    err_clear(&e);
    db_close(d);
}

static void body_rollback(void)
{
    db *d = open_ok();
    cr_assert_eq(db_begin(d, true), DB_OK);
    cr_assert_eq(insert(d, 1, "a", DB_NULLP, NULL), DB_OK);
    cr_assert_eq(insert(d, 2, "b", DB_NULLP, NULL), DB_OK);
    cr_assert_eq(count_rows(d), 4); /* visible inside */
    db_rollback(d);
    cr_assert_eq(count_rows(d), 2);

    /* closing mid-transaction rolls back too */
    cr_assert_eq(db_begin(d, true), DB_OK);
    cr_assert_eq(insert(d, 3, "c", DB_NULLP, NULL), DB_OK);
    db_close(d);
    d = open_ok();
    cr_assert_eq(count_rows(d), 2);
    db_close(d);
}

static void body_pipeline(void)
{
    db *d = open_ok();
    err e = ERR_INIT;
    db_res *rows = NULL, *cnt = NULL;
    db_param p1[3] = {DB_INT(1), DB_TEXT("a"), DB_INT(10)};
    db_param p2[3] = {DB_INT(2), DB_TEXT("b"), DB_NULLP};
    db_param p3[3] = {DB_INT(3), DB_TEXT("c"), DB_NULLP};
    db_step ok_steps[] = {
        {DB_STEP_BEGIN, NULL, 0, NULL}, {S_INSERT, p1, 3, NULL},      {S_INSERT, p2, 3, NULL},
        {S_SELECT, NULL, 0, &rows},     {DB_STEP_COMMIT, NULL, 0, NULL},
    };
    cr_assert_eq(db_pipeline(d, ok_steps, 5, &e), DB_OK, "%s", e.message);
    cr_assert_eq(db_res_rows(rows), 2);
    cr_assert_str_eq(db_res_text(rows, 1, 1), "b");
    cr_assert(db_res_null(rows, 1, 2));
    db_res_free(rows);
    cr_assert_eq(count_rows(d), 4);

    /* a failure mid-way: nothing of it stays, the later steps do not run */
    db_step bad_steps[] = {
        {DB_STEP_BEGIN, NULL, 0, NULL}, {S_INSERT, p3, 3, NULL},         {S_INSERT, p1, 3, NULL},
        {S_COUNT, NULL, 0, &cnt},       {DB_STEP_COMMIT, NULL, 0, NULL},
    };
    cr_assert_eq(db_pipeline(d, bad_steps, 5, &e), DB_ERR_CONSTRAINT);
    cr_assert_null(cnt);
    cr_assert_eq(count_rows(d), 4);

    /* the connection is usable afterwards: one transaction over two pipelines */
    db_step begin_steps[] = {{DB_STEP_BEGIN, NULL, 0, NULL}, {S_INSERT, p3, 3, NULL}};
    cr_assert_eq(db_pipeline(d, begin_steps, 2, &e), DB_OK, "%s", e.message);
    db_step commit_steps[] = {{S_COUNT, NULL, 0, &cnt}, {DB_STEP_COMMIT, NULL, 0, NULL}};
    cr_assert_eq(db_pipeline(d, commit_steps, 2, &e), DB_OK, "%s", e.message);
    cr_assert_eq(db_res_int(cnt, 0, 0), 5);
    db_res_free(cnt);
    cr_assert_eq(count_rows(d), 5);
    err_clear(&e);
    db_close(d);
}

static void body_commit_persists(void)
{
    db *d = open_ok();
    cr_assert_eq(db_begin(d, true), DB_OK);
    cr_assert_eq(insert(d, 1, "a", DB_NULLP, NULL), DB_OK);
    cr_assert_eq(insert(d, 2, "b", DB_NULLP, NULL), DB_OK);
    cr_assert_eq(db_commit(d), DB_OK);
    db_close(d);

    d = open_ok();
    cr_assert_eq(count_rows(d), 4);
    cr_assert_eq(db_begin(d, false), DB_OK); /* a read transaction */
    cr_assert_eq(count_rows(d), 4);
    cr_assert_eq(db_commit(d), DB_OK);
    db_close(d);
}

static void body_param_order(void)
{
    db *d = open_ok();
    err e = ERR_INIT;
    db_param p[2] = {DB_INT(5), DB_TEXT("five")}; /* $1 = id, $2 = name; text has $2 first */
    cr_assert_eq(db_exec(d, S_SWAPPED, p, 2, NULL, &e), DB_OK, "%s", e.message);
    db_res *r = NULL;
    cr_assert_eq(db_exec(d, S_SELECT, NULL, 0, &r, &e), DB_OK);
    cr_assert_eq(db_res_rows(r), 1);
    cr_assert_eq(db_res_int(r, 0, 0), 5);
    cr_assert_str_eq(db_res_text(r, 0, 1), "five");
    db_res_free(r);

    /* the back end's own text when the spec gives one */
    cr_assert_eq(db_exec(d, S_DIALECT, NULL, 0, &r, &e), DB_OK, "%s", e.message);
    cr_assert_str_eq(db_res_text(r, 0, 0), T.pg ? "pg" : "sqlite");
    db_res_free(r);
    err_clear(&e);
    db_close(d);
}

struct waiter {
    db_pool *pool;
    db *got;
    volatile int done;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    err e = ERR_INIT;
    w->got = db_pool_acquire(w->pool, &e);
    w->done = 1;
    err_clear(&e);
    return NULL;
}

static void body_pool(void)
{
    db_pool *pool = db_pool_new(T.url, &T.spec, 1);
    cr_assert_not_null(pool);
    err e = ERR_INIT;
    db *a = db_pool_acquire(pool, &e);
    cr_assert_not_null(a, "%s", e.message);
    cr_assert_eq(count_rows(a), 2);
    db_pool_release(pool, a);
    db *b = db_pool_acquire(pool, &e);
    cr_assert_eq(a, b, "the open connection is reused");

    /* a second caller waits while the only connection is out */
    struct waiter w = {pool, NULL, 0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, waiter_run, &w), 0);
    usleep(150 * 1000);
    cr_assert_eq(w.done, 0);
    /* releasing mid-transaction rolls it back before the next user */
    cr_assert_eq(db_begin(b, true), DB_OK);
    cr_assert_eq(insert(b, 9, "x", DB_NULLP, NULL), DB_OK);
    db_pool_release(pool, b);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(w.got, a);
    cr_assert_eq(count_rows(w.got), 2);
    db_pool_release(pool, w.got);
    db_pool_free(pool);
    err_clear(&e);
}

/* A migration that fails leaves nothing behind, the good ones before it included. */
static void body_migration_failure(void)
{
    db_migration bad[3] = {T.migs[0], {2, "INSERT INTO no_such_table_eskit VALUES (1)"}, {0, NULL}};
    db_spec spec = T.spec;
    spec.pg_migrations = bad;
    spec.sqlite_migrations = bad;
    err e = ERR_INIT;
    db *d = db_open(T.url, &spec, &e);
    cr_assert_null(d);
    cr_assert_eq(e.code, ERR_INTERNAL, "%s", e.message);
    cr_assert(strstr(e.message, "migration 2"), "%s", e.message);
    err_clear(&e);

    d = open_ok(); /* migration 1 was rolled back: it applies again, cleanly */
    cr_assert_eq(count_rows(d), 2);
    db_close(d);
}

/* ---- SQLite -------------------------------------------------------------------- */

TestSuite(db_sqlite, .init = setup_sqlite, .fini = teardown, .timeout = 30);

Test(db_sqlite, migrations_once) { body_migrations_once(); }
Test(db_sqlite, params_and_results) { body_params_and_results(); }
Test(db_sqlite, constraint) { body_constraint(); }
Test(db_sqlite, rollback) { body_rollback(); }
Test(db_sqlite, commit_persists) { body_commit_persists(); }
Test(db_sqlite, pipeline) { body_pipeline(); }
Test(db_sqlite, param_order) { body_param_order(); }
Test(db_sqlite, pool) { body_pool(); }
Test(db_sqlite, named) { body_named(); }
Test(db_sqlite, migration_failure) { body_migration_failure(); }

Test(db_sqlite, listen_unsupported)
{
    db *d = open_ok();
    cr_assert_eq(db_listen(d, "c"), DB_ERR_UNSUPPORTED);
    cr_assert_eq(db_wait_notify(d, 10, NULL), -1);
    cr_assert(db_healthy(d));
    db_close(d);
}

Test(db_sqlite, bad_statement_is_other)
{
    db_stmt stmts[1] = {{"SELECT * FROM no_such_table_eskit", NULL}};
    db_spec spec = {"bad", stmts, 1, T.migs, T.migs};
    err e = ERR_INIT;
    db *d = db_open(T.url, &spec, &e);
    cr_assert_not_null(d, "%s", e.message); /* SQLite prepares on first use */
    cr_assert_eq(db_exec(d, 0, NULL, 0, NULL, &e), DB_ERR_OTHER);
    cr_assert_eq(e.code, ERR_INTERNAL);
    cr_assert(strstr(e.message, "no_such_table_eskit"), "%s", e.message);
    cr_assert(db_healthy(d));
    err_clear(&e);
    db_close(d);
}

Test(db_sqlite, unused_and_missing_params)
{
    db *d = open_ok();
    /* $3 not given: it binds NULL; extra parameters the text does not use are skipped */
    db_param p[2] = {DB_INT(7), DB_TEXT("seven")};
    cr_assert_eq(db_exec(d, S_INSERT, p, 2, NULL, NULL), DB_OK);
    db_param q[4] = {DB_INT(8), DB_TEXT("eight"), DB_INT(1), DB_INT(99)};
    cr_assert_eq(db_exec(d, S_INSERT, q, 4, NULL, NULL), DB_OK);
    db_res *r = NULL;
    cr_assert_eq(db_exec(d, S_SELECT, NULL, 0, &r, NULL), DB_OK);
    cr_assert_eq(db_res_rows(r), 2);
    cr_assert(db_res_null(r, 0, 2));
    cr_assert_eq(db_res_int(r, 1, 2), 1);
    db_res_free(r);
    /* bindings are cleared between runs */
    cr_assert_eq(db_exec(d, S_INSERT, p, 2, NULL, NULL), DB_ERR_CONSTRAINT);
    db_close(d);
}

Test(db_sqlite, two_services_one_file)
{
    /* migrations are recorded per service: another spec on the same file
     * applies its own version 1 and 2 */
    db *d = open_ok();
    char name2[64], table2[64];
    fmt(name2, sizeof name2, "%s", "other_service");
    fmt(table2, sizeof table2, "%s", "t2");
    char m1[128], m2[128];
    fmt(m1, sizeof m1, "CREATE TABLE %s (x INTEGER)", table2);
    fmt(m2, sizeof m2, "INSERT INTO %s VALUES (1)", table2);
    db_migration migs[3] = {{1, m1}, {2, m2}, {0, NULL}};
    db_stmt stmts[1] = {{"SELECT count(*) FROM t2", NULL}};
    db_spec spec = {name2, stmts, 1, migs, migs};
    err e = ERR_INIT;
    db *d2 = db_open(T.url, &spec, &e);
    cr_assert_not_null(d2, "%s", e.message);
    db_res *r = NULL;
    cr_assert_eq(db_exec(d2, 0, NULL, 0, &r, NULL), DB_OK);
    cr_assert_eq(db_res_int(r, 0, 0), 1);
    db_res_free(r);
    db_close(d2);
    db_close(d);
}

Test(db_sqlite, unwritable_path_is_unavailable)
{
    char url[512];
    /* a file where a folder should be */
    fmt(url, sizeof url, "sqlite:%s/file", T.dir);
    FILE *f = fopen(url + 7, "w");
    cr_assert_not_null(f);
    fclose(f);
    fmt(url, sizeof url, "sqlite:%s/file/x.db", T.dir);
    err e = ERR_INIT;
    cr_assert_null(db_open(url, &T.spec, &e));
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%s", e.message);
    err_clear(&e);
}

/* ---- independent of the back end --------------------------------------------------- */

Test(db, bad_urls)
{
    static const db_spec spec = {"x", NULL, 0, NULL, NULL};
    const char *bad[] = {"mysql://x", "", "sqlite:", "postgres:/x", "file.db", NULL};
    for (int i = 0; bad[i]; i++) {
        err e = ERR_INIT;
        cr_assert_null(db_open(bad[i], &spec, &e), "%s", bad[i]);
        cr_assert_eq(e.code, ERR_INVALID_ARGUMENT, "%s: %s", bad[i], e.message);
        cr_assert_not(db_url_valid(bad[i]), "%s", bad[i]);
        cr_assert_null(db_pool_new(bad[i], &spec, 2));
        err_clear(&e);
    }
    cr_assert_null(db_open(NULL, &spec, NULL));
    cr_assert_not(db_url_valid(NULL));
    /* a malformed postgres URL is refused by libpq's parser */
    err e = ERR_INIT;
    cr_assert_null(db_open("postgresql://h:notaport:x/db?nosuchoption=1", &spec, &e));
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT, "%s", e.message);
    err_clear(&e);
    cr_assert(db_url_valid("sqlite:data/x.db"));
    cr_assert(db_url_valid("postgres://u@h/db"));
    cr_assert(db_url_valid("postgresql://u@h:5432/db?sslmode=disable"));
}

Test(db, pg_unreachable_is_unavailable_and_fast, .timeout = 20)
{
    static const db_spec spec = {"x", NULL, 0, NULL, NULL};
    /* port 1: nothing listens there */
    const char *url = "postgresql://postgres@127.0.0.1:1/postgres";
    err e = ERR_INIT;
    int64_t t0 = now_ms();
    cr_assert_null(db_open(url, &spec, &e));
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%s", e.message);
    cr_assert(strncmp(e.message, "database unavailable: ", 22) == 0, "%s", e.message);
    cr_assert_null(strchr(e.message, '\n'));
    cr_assert_lt(now_ms() - t0, 4000);
    err_clear(&e);

    /* the pool reports it at once, and again on the next try (no stuck slot) */
    db_pool *pool = db_pool_new(url, &spec, 1);
    cr_assert_not_null(pool);
    for (int i = 0; i < 2; i++) {
        t0 = now_ms();
        cr_assert_null(db_pool_acquire(pool, &e));
        cr_assert_eq(e.code, ERR_UNAVAILABLE);
        cr_assert_lt(now_ms() - t0, 4000);
        err_clear(&e);
    }
    cr_assert_null(db_pool_acquire(pool, NULL)); /* e may be NULL */
    db_pool_free(pool);
}

Test(db, pg_silent_server_times_out, .timeout = 20)
{
    /* a server that accepts TCP connections and never answers: the
     * connect_timeout (3 s unless the URL sets one) bounds db_open */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 8), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);

    static const db_spec spec = {"x", NULL, 0, NULL, NULL};
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres?connect_timeout=0",
             ntohs(sa.sin_port));
    err e = ERR_INIT;
    int64_t t0 = now_ms();
    cr_assert_null(db_open(url, &spec, &e)); /* 0 ("for ever") is not honoured */
    int64_t took = now_ms() - t0;
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%s", e.message);
    cr_assert(took >= 1500 && took < 4500, "took %lld ms", (long long)took);
    err_clear(&e);
    close(fd);
}

Test(db, result_builder)
{
    db_res *r = db_res_new(3);
    cr_assert_not_null(r);
    for (int i = 0; i < 5000; i++) { /* forces the arena and the index to grow */
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        const char *vals[3] = {num, (i % 3) ? "abc" : NULL, "x\0y"};
        size_t lens[3] = {strlen(num), 3, 3};
        cr_assert_eq(db_res_add_row(r, vals, lens), 0);
    }
    cr_assert_eq(db_res_rows(r), 5000);
    cr_assert_eq(db_res_cols(r), 3);
    cr_assert_eq(db_res_int(r, 4321, 0), 4321);
    cr_assert(db_res_null(r, 4320, 1));
    cr_assert_str_eq(db_res_text(r, 4321, 1), "abc");
    cr_assert_eq(db_res_int(r, 4321, 1), 0); /* not a number */
    cr_assert_eq(memcmp(db_res_text(r, 4999, 2), "x\0y", 4), 0);
    db_res_free(r);

    r = db_res_new(0); /* a statement without columns */
    cr_assert_eq(db_res_add_row(r, NULL, NULL), 0);
    cr_assert_eq(db_res_rows(r), 1);
    db_res_free(r);
    db_res_free(NULL);
    cr_assert_eq(db_res_rows(NULL), 0);
}

/* ---- PostgreSQL (ESKIT_TEST_PG_URL) ------------------------------------------------- */

TestSuite(db_pg, .init = setup_pg, .fini = teardown, .timeout = 60);

Test(db_pg, migrations_once) { NEED_PG(); body_migrations_once(); }
Test(db_pg, params_and_results) { NEED_PG(); body_params_and_results(); }
Test(db_pg, constraint) { NEED_PG(); body_constraint(); }
Test(db_pg, rollback) { NEED_PG(); body_rollback(); }
Test(db_pg, commit_persists) { NEED_PG(); body_commit_persists(); }
Test(db_pg, pipeline) { NEED_PG(); body_pipeline(); }
Test(db_pg, param_order) { NEED_PG(); body_param_order(); }
Test(db_pg, pool) { NEED_PG(); body_pool(); }
Test(db_pg, named) { NEED_PG(); body_named(); }
Test(db_pg, migration_failure) { NEED_PG(); body_migration_failure(); }

Test(db_pg, listen_notify)
{
    NEED_PG();
    db *a = open_ok();
    db *b = open_ok();
    char channel[64];
    fmt(channel, sizeof channel, "eskit test \"%s\"", T.table); /* needs quoting */
    cr_assert_eq(db_listen(a, channel), DB_OK);

    const char *ch = channel;
    db_param p[2] = {DB_TEXT(ch), DB_TEXT("x")};
    db_param p41[2] = {DB_TEXT(ch), DB_TEXT("41")}, p7[2] = {DB_TEXT(ch), DB_TEXT("7")};
    /* three in one transaction: they arrive together, at its commit; the
     * largest integer payload is reported */
    cr_assert_eq(db_begin(b, true), DB_OK);
    cr_assert_eq(db_exec(b, S_NOTIFY, p41, 2, NULL, NULL), DB_OK);
    cr_assert_eq(db_exec(b, S_NOTIFY, p, 2, NULL, NULL), DB_OK);
    cr_assert_eq(db_exec(b, S_NOTIFY, p7, 2, NULL, NULL), DB_OK);
    cr_assert_eq(db_commit(b), DB_OK);
    int64_t top = 3;
    cr_assert_eq(db_wait_notify(a, 5000, &top), 1);
    cr_assert_eq(top, 41);

    /* all were consumed: nothing more arrives */
    int64_t t0 = now_ms();
    cr_assert_eq(db_wait_notify(a, 300, NULL), 0);
    cr_assert_geq(now_ms() - t0, 250);

    /* one that arrives while the listener is busy running statements */
    cr_assert_eq(db_exec(b, S_NOTIFY, p, 2, NULL, NULL), DB_OK);
    usleep(100 * 1000);
    cr_assert_eq(count_rows(a), 2);
    cr_assert_eq(db_wait_notify(a, 0, NULL), 1);
    cr_assert(db_healthy(a));
    db_close(b);
    db_close(a);
}

Test(db_pg, commit_after_failed_statement)
{
    NEED_PG();
    db *d = open_ok();
    cr_assert_eq(db_begin(d, true), DB_OK);
    cr_assert_eq(insert(d, 1, "a", DB_NULLP, NULL), DB_OK);
    cr_assert_eq(insert(d, 1, "b", DB_NULLP, NULL), DB_ERR_CONSTRAINT);
    /* PostgreSQL has aborted the transaction: COMMIT must not pretend */
    cr_assert_neq(db_commit(d), DB_OK);
    cr_assert(db_healthy(d));
    cr_assert_eq(count_rows(d), 2);
    db_close(d);
}

Test(db_pg, terminated_connection)
{
    NEED_PG();
    db_pool *pool = db_pool_new(T.url, &T.spec, 1);
    cr_assert_not_null(pool);
    err e = ERR_INIT;
    db *a = db_pool_acquire(pool, &e);
    cr_assert_not_null(a, "%s", e.message);
    db_res *r = NULL;
    cr_assert_eq(db_exec(a, S_PID, NULL, 0, &r, NULL), DB_OK);
    db_param pid = DB_INT(db_res_int(r, 0, 0));
    db_res_free(r);

    db *killer = open_ok();
    cr_assert_eq(db_exec(killer, S_KILL, &pid, 1, NULL, NULL), DB_OK);
    db_close(killer);
    usleep(100 * 1000);

    cr_assert_eq(db_exec(a, S_COUNT, NULL, 0, NULL, &e), DB_ERR_UNAVAILABLE);
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%s", e.message);
    cr_assert_not(db_healthy(a));
    db_pool_release(pool, a); /* closed, not kept */

    db *b = db_pool_acquire(pool, &e); /* reconnects */
    cr_assert_not_null(b, "%s", e.message);
    cr_assert(db_healthy(b));
    cr_assert_eq(count_rows(b), 2);
    db_pool_release(pool, b);
    db_pool_free(pool);
    err_clear(&e);
}

Test(db_pg, idle_connection_found_broken_before_use)
{
    NEED_PG();
    db_pool *pool = db_pool_new(T.url, &T.spec, 1);
    cr_assert_not_null(pool);
    err e = ERR_INIT;
    db *a = db_pool_acquire(pool, &e);
    cr_assert_not_null(a, "%s", e.message);
    db_res *r = NULL;
    cr_assert_eq(db_exec(a, S_PID, NULL, 0, &r, NULL), DB_OK);
    db_param pid = DB_INT(db_res_int(r, 0, 0));
    db_res_free(r);
    db_pool_release(pool, a); /* idle in the pool when its server goes */

    db *killer = open_ok();
    cr_assert_eq(db_exec(killer, S_KILL, &pid, 1, NULL, NULL), DB_OK);
    db_close(killer);
    usleep(200 * 1000);

    /* the pool hands out a working connection: the dead one was seen */
    cr_assert_null(db_pool_try_acquire(pool));
    db *b = db_pool_acquire(pool, &e);
    cr_assert_not_null(b, "%s", e.message);
    cr_assert_eq(db_exec(b, S_COUNT, NULL, 0, NULL, &e), DB_OK, "%s", e.message);
    db_pool_release(pool, b);
    db_pool_free(pool);
    err_clear(&e);
}

Test(db_pg, read_only_server_is_unavailable)
{
    NEED_PG();
    db *d = open_ok();
    cr_assert_eq(db_exec(d, S_READ_ONLY, NULL, 0, NULL, NULL), DB_OK);
    err e = ERR_INIT;
    /* a write refused as read-only (25006): another connection may find
     * the primary, this one will not */
    cr_assert_eq(insert(d, 5, "ro", DB_NULLP, &e), DB_ERR_UNAVAILABLE);
    cr_assert_eq(e.code, ERR_UNAVAILABLE, "%s", e.message);
    cr_assert_not(db_healthy(d));
    db_close(d);
    err_clear(&e);
}

Test(db_pg, reads_connection_bounds_statements)
{
    NEED_PG();
    db_close(open_ok()); /* the table exists */
    /* reads only: no migrations (one that would fail is not run) */
    db_migration bad[2] = {{1, "INSERT INTO no_such_table_eskit VALUES (1)"}, {0, NULL}};
    db_spec spec = T.spec;
    spec.name = "eskit-reads-test";
    spec.pg_migrations = bad;
    db_opts o = {.reads = true, .timeout_ms = 100};
    err e = ERR_INIT;
    db *d = db_open_opts(T.url, &spec, &o, &e);
    cr_assert_not_null(d, "%s", e.message);
    cr_assert_eq(count_rows(d), 2);
    /* a statement with no answer in time fails, and the connection goes */
    int64_t t0 = now_ms();
    cr_assert_eq(db_exec(d, S_SLEEP, NULL, 0, NULL, &e), DB_ERR_UNAVAILABLE);
    cr_assert_lt(now_ms() - t0, 400);
    cr_assert(strstr(e.message, "no answer within 100 ms"), "%s", e.message);
    cr_assert_not(db_healthy(d));
    db_close(d);
    err_clear(&e);

    /* the same in a pipeline */
    d = db_open_opts(T.url, &spec, &o, &e);
    cr_assert_not_null(d, "%s", e.message);
    db_res *r1 = NULL, *r2 = NULL;
    db_step steps[] = {{S_COUNT, NULL, 0, &r1}, {S_SLEEP, NULL, 0, &r2}};
    t0 = now_ms();
    cr_assert_eq(db_pipeline(d, steps, 2, &e), DB_ERR_UNAVAILABLE);
    cr_assert_lt(now_ms() - t0, 400);
    cr_assert_not(db_healthy(d));
    db_res_free(r1);
    db_res_free(r2);
    db_close(d);
    err_clear(&e);
}

Test(db_pg, bad_statement_fails_open)
{
    NEED_PG();
    db *d = open_ok(); /* creates the table, so only the statement is wrong */
    db_close(d);
    db_stmt stmts[2] = {{T.text[S_COUNT], NULL}, {"SELECT * FROM no_such_table_eskit", NULL}};
    db_spec spec = T.spec;
    spec.stmts = stmts;
    spec.nstmts = 2;
    err e = ERR_INIT;
    cr_assert_null(db_open(T.url, &spec, &e));
    cr_assert_eq(e.code, ERR_INTERNAL, "%s", e.message);
    cr_assert(strstr(e.message, "no_such_table_eskit"), "%s", e.message);
    err_clear(&e);
}

Test(db_pg, url_connect_timeout_kept)
{
    NEED_PG();
    /* a URL with its own settings still works (and its timeout is kept) */
    char url[600];
    fmt(url, sizeof url, strchr(T.url, '?') ? "%s&connect_timeout=5" : "%s?connect_timeout=5",
        T.url);
    err e = ERR_INIT;
    db *d = db_open(url, &T.spec, &e);
    cr_assert_not_null(d, "%s", e.message);
    db_close(d);
}
