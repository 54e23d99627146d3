/*
 * test_es_group.c - the committer's group transaction
 * (services/event-store/es_group.c, linked with the event store's modules):
 * the version, conflict and idempotent-append decisions of es_group_run.
 *
 * Its decisions rest on what it reads under the log lock (the versions of
 * the streams, the stored events of the group's ids), so every case runs
 * against a real back end with the event store's schema: SQLite in a fresh
 * temporary folder (the general path) and, when ESKIT_TEST_PG_URL names a
 * PostgreSQL database, PostgreSQL in a schema of its own per test (the
 * one-statement path first, the general one when it must). Without
 * ESKIT_TEST_PG_URL the PostgreSQL cases are skipped; `make unit` sets it.
 *
 * What is checked: versions and log ids assigned in job order without gaps,
 * a stream touched twice in one job and by several jobs of one group,
 * expected-version conflicts that refuse a whole job and nothing else,
 * retries (stored or earlier in the group) answered with the stored events,
 * event ids stored with other content or only in part, the streams table
 * (entity type kept, log ids of creation and last update), remembered
 * versions that are wrong in either direction, empty or all-refused groups
 * that write nothing, and appends to an erased stream (410, also from a
 * committer that still remembers its version).
 */
#include <criterion/criterion.h>

#include <ftw.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es_event.h"
#include "es_group.h"
#include "es_store.h"
#include "es_vcache.h"
#include "metrics.h"

#define UUID_A "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d"
#define UUID_B "1c8e4d2f-5a3b-4d9f-8c2e-6f7a8b9c0d1e"
#define UUID_C "2d9f5e3a-6b4c-4e0a-9d3f-7a8b9c0d1e2f"

#define MAX_JOBS 64

/* One test's back end, committer and jobs. */
static struct {
    bool ready, pg;
    char dir[128];     /* SQLite: the temporary folder */
    char base[512];    /* PostgreSQL: ESKIT_TEST_PG_URL */
    char schema[64];   /* PostgreSQL: this test's schema */
    char url[768];
    db *d;
    es_group_ctx g;
    metrics *m;     /* T.g's groups by path */
    es_gjob *jobs[MAX_JOBS];
    json_t *bodies[MAX_JOBS];
    size_t njobs;
} T;

static db *open_db(void)
{
    err e = ERR_INIT;
    db *d = db_open(T.url, &es_db_spec, &e);
    cr_assert_not_null(d, "db_open(%s): %s", T.url, e.message);
    err_clear(&e);
    return d;
}

/* A committer of its own (its own connection and memory of versions). */
static es_group_ctx new_ctx(void)
{
    es_group_ctx g = {.conn = open_db(), .vc = es_vcache_new(1024), .one_stmt = true};
    cr_assert_not_null(g.vc);
    return g;
}

static void free_ctx(es_group_ctx *g)
{
    db_close(g->conn);
    es_vcache_free(g->vc);
}

static void start(void)
{
    T.d = open_db();
    T.g = new_ctx();
    T.m = metrics_new();
    cr_assert_not_null(T.m);
    T.g.m_groups = metrics_counter(T.m, "test_groups_total", "groups by path", "path");
    cr_assert_not_null(T.g.m_groups);
    T.ready = true;
}

/* The groups that T.g wrote by `path` (one_statement, retried, general). */
static int groups(const char *path)
{
    char *text = metrics_render(T.m, NULL);
    cr_assert_not_null(text);
    char key[96];
    snprintf(key, sizeof key, "test_groups_total{path=\"%s\"} ", path);
    const char *at = strstr(text, key);
    int n = at ? (int)strtol(at + strlen(key), NULL, 10) : 0;
    free(text);
    return n;
}

static void setup_sqlite(void)
{
    snprintf(T.dir, sizeof T.dir, "%s", "/tmp/eskit-test-es-group-XXXXXX");
    cr_assert_not_null(mkdtemp(T.dir));
    snprintf(T.url, sizeof T.url, "sqlite:%s/es.db", T.dir);
    start();
}

/* Runs one statement on PostgreSQL outside the service's spec. */
static void pg_exec(const char *sql)
{
    PGconn *c = PQconnectdb(T.base);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning")); /* no NOTICE of the drops */
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void setup_pg(void)
{
    const char *url = getenv("ESKIT_TEST_PG_URL");
    if (!url || !*url)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(T.base, sizeof T.base, "%s", url);
    snprintf(T.schema, sizeof T.schema, "es_group_%ld_%ld", (long)getpid(), (long)ts.tv_nsec);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", T.schema);
    pg_exec(sql);
    T.pg = true;
    snprintf(T.url, sizeof T.url, "%s%coptions=-csearch_path%%3D%s", url,
             strchr(url, '?') ? '&' : '?', T.schema);
    start();
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
    for (size_t i = 0; i < T.njobs; i++) {
        err_clear(&T.jobs[i]->e);
        free(T.jobs[i]->events);
        free(T.jobs[i]);
        json_decref(T.bodies[i]);
    }
    if (!T.ready)
        return;
    free_ctx(&T.g);
    metrics_free(T.m);
    db_close(T.d);
    if (T.pg) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", T.schema);
        pg_exec(sql);
    } else {
        nftw(T.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* A job of the events in `text` (one event or {"events": [...]}, as POST
 * /v1/events takes them); freed by teardown. */
static es_gjob *job(const char *text)
{
    json_error_t je;
    json_t *body = json_loads(text, 0, &je);
    cr_assert_not_null(body, "bad test JSON: %s (%s)", text, je.text);
    size_t n = 0;
    bool batch;
    err e = ERR_INIT;
    es_event *evs = es_event_parse_request(body, &n, &batch, &e);
    cr_assert_not_null(evs, "%s: %s", text, e.message);
    es_gjob *j = calloc(1, sizeof *j);
    cr_assert_not_null(j);
    cr_assert_lt(T.njobs, MAX_JOBS);
    j->events = evs;
    j->n = n;
    T.jobs[T.njobs] = j;
    T.bodies[T.njobs++] = body;
    return j;
}

/* One event of stream `id` (version 0: none given; event_id NULL: none). */
static es_gjob *ev(const char *id, int64_t version, const char *type, const char *payload,
                   const char *event_id)
{
    char text[1024], ver[48] = "", eid[80] = "";
    if (version)
        snprintf(ver, sizeof ver, ",\"version\":%lld", (long long)version);
    if (event_id)
        snprintf(eid, sizeof eid, ",\"event_id\":\"%s\"", event_id);
    snprintf(text, sizeof text,
             "{\"originator\":{\"id\":\"%s\"%s},\"event_type\":\"%s\",\"payload\":%s%s}", id,
             ver, type, payload, eid);
    return job(text);
}

/* Runs the jobs as one group on ctx g; asserts that it committed. */
static void run_on(es_group_ctx *g, size_t n, ...)
{
    es_gjob *jobs[MAX_JOBS];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        jobs[i] = va_arg(ap, es_gjob *);
    va_end(ap);
    db_status st = es_group_run(g, jobs, n);
    cr_assert_eq(st, DB_OK, "es_group_run: status %d", (int)st);
    cr_expect_not(g->unknown);
}

#define run(...) run_on(&T.g, __VA_ARGS__)

static int64_t head(void)
{
    int64_t h = -1;
    err e = ERR_INIT;
    cr_assert(es_store_head(T.d, &h, &e), "%s", e.message);
    return h;
}

/* The row of es_streams as JSON (the caller decrefs), or NULL. */
static json_t *stream(const char *id)
{
    err e = ERR_INIT;
    json_t *s = es_store_get_stream(T.d, id, &e);
    if (!s)
        cr_assert_eq(e.code, ERR_NOT_FOUND, "%s", e.message);
    err_clear(&e);
    return s;
}

static void expect_stream(const char *id, int64_t version, const char *entity_type,
                          const char *last_event_type, int64_t created, int64_t updated)
{
    json_t *s = stream(id);
    cr_assert_not_null(s, "stream %s is missing", id);
    cr_expect_eq(json_integer_value(json_object_get(s, "version")), version, "%s", id);
    cr_expect_str_eq(json_string_value(json_object_get(s, "entity_type")), entity_type);
    cr_expect_str_eq(json_string_value(json_object_get(s, "last_event_type")), last_event_type);
    cr_expect_eq(json_integer_value(json_object_get(s, "created_log_id")), created, "%s", id);
    cr_expect_eq(json_integer_value(json_object_get(s, "updated_log_id")), updated, "%s", id);
    json_decref(s);
}

/* The number of stored events of stream `id`. */
static size_t stored_events(const char *id)
{
    db_param p[] = {DB_TEXT(id), DB_INT(1), DB_INT(INT64_MAX), DB_INT(100000)};
    db_res *r = NULL;
    err e = ERR_INIT;
    cr_assert_eq(db_exec(T.d, ES_READ_STREAM, p, 4, &r, &e), DB_OK, "%s", e.message);
    size_t n = db_res_rows(r);
    db_res_free(r);
    return n;
}

static void expect_ok(const es_gjob *j, bool replayed)
{
    cr_expect(j->ok, "job refused: %s", j->e.message);
    cr_expect_eq(j->e.code, ERR_NONE);
    cr_expect_eq(j->replayed, replayed);
}

/* The job was refused as a version conflict with the stream at `current`. */
static void expect_version_conflict(const es_gjob *j, int64_t current)
{
    cr_expect_not(j->ok);
    cr_expect_not(j->replayed);
    cr_expect_eq(j->e.code, ERR_CONFLICT, "code %d: %s", j->e.code, j->e.message);
    json_t *cv = json_object_get(j->e.details, "current_version");
    cr_expect(json_is_integer(cv), "no details.current_version: %s", j->e.message);
    cr_expect_eq(json_integer_value(cv), current, "%s", j->e.message);
}

/* The job was refused for event id `id`; `other`: stored with other content
 * (else: stored while other events of the job are not). */
static void expect_id_conflict(const es_gjob *j, const char *id, bool other)
{
    cr_expect_not(j->ok);
    cr_expect_not(j->replayed);
    cr_expect_eq(j->e.code, ERR_CONFLICT, "code %d: %s", j->e.code, j->e.message);
    cr_expect_str_eq(json_string_value(json_object_get(j->e.details, "event_id")), id);
    cr_expect(strstr(j->e.message, other ? "stored already with other content"
                                         : "other events of this append are not") != NULL,
              "%s", j->e.message);
}

static void expect_event(const es_gjob *j, size_t i, int64_t version, int64_t log_id)
{
    cr_assert_lt(i, j->n);
    cr_expect_eq(j->events[i].version, version, "event %zu: version %lld, want %lld", i,
                 (long long)j->events[i].version, (long long)version);
    cr_expect_eq(j->events[i].log_id, log_id, "event %zu: log id %lld, want %lld", i,
                 (long long)j->events[i].log_id, (long long)log_id);
}

/* Each scenario runs on both back ends. */
#define BOTH(name)                                                                         \
    static void name(void);                                                                \
    Test(es_group_sqlite, name, .init = setup_sqlite, .fini = teardown) { name(); }        \
    Test(es_group_pg, name, .init = setup_pg, .fini = teardown)                            \
    {                                                                                      \
        if (!T.ready)                                                                      \
            cr_skip_test("ESKIT_TEST_PG_URL is not set: PostgreSQL case not run");         \
        name();                                                                            \
    }                                                                                      \
    static void name(void)

BOTH(versions_and_log_ids_in_job_order)
{
    es_gjob *a = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
                     "\"payload\":{}},{\"originator\":{\"id\":\"u1\"},\"event_type\":"
                     "\"User.Renamed\",\"payload\":{}}]}");
    es_gjob *b = ev("u2", 1, "User.Created", "{}", NULL);
    es_gjob *c = ev("u1", 3, "User.Renamed", "{}", NULL); /* follows a in the same group */
    run(3, a, b, c);
    expect_ok(a, false);
    expect_ok(b, false);
    expect_ok(c, false);
    expect_event(a, 0, 1, 1);
    expect_event(a, 1, 2, 2);
    expect_event(b, 0, 1, 3);
    expect_event(c, 0, 3, 4);
    /* every event of the group is recorded at the same moment */
    cr_expect_eq(a->events[0].recorded_at, c->events[0].recorded_at);
    cr_expect_gt(a->events[0].recorded_at, 0);
    cr_expect_eq(head(), 4);
    expect_stream("u1", 3, "User", "User.Renamed", 1, 4);
    expect_stream("u2", 1, "User", "User.Created", 3, 3);

    /* the next group numbers on from the head, its recorded_at never earlier */
    es_gjob *d = ev("u2", 0, "User.Renamed", "{}", NULL);
    run(1, d);
    expect_ok(d, false);
    expect_event(d, 0, 2, 5);
    cr_expect_geq(d->events[0].recorded_at, a->events[0].recorded_at);
    expect_stream("u2", 2, "User", "User.Renamed", 3, 5);
}

BOTH(expected_version_conflict_refuses_that_job_only)
{
    run(1, ev("u1", 1, "User.Created", "{}", NULL));
    es_gjob *x = ev("u1", 1, "User.Created", "{\"again\":1}", NULL);
    es_gjob *y = ev("u1", 2, "User.Renamed", "{}", NULL);
    es_gjob *z = ev("u1", 5, "User.Renamed", "{}", NULL); /* a gap */
    run(3, x, y, z);
    expect_version_conflict(x, 1);
    cr_expect(strstr(x->e.message, "stream u1 is at version 1; version 1 cannot follow it"),
              "%s", x->e.message);
    expect_ok(y, false);
    expect_event(y, 0, 2, 2); /* the refused job took no log id */
    expect_version_conflict(z, 2); /* judged after y */
    cr_expect_eq(head(), 2);
    cr_expect_eq(stored_events("u1"), 2);
    expect_stream("u1", 2, "User", "User.Renamed", 1, 2);
}

BOTH(a_new_stream_is_at_version_zero)
{
    es_gjob *x = ev("n1", 2, "User.Created", "{}", NULL); /* version 1 is missing */
    es_gjob *y = ev("n1", 1, "User.Created", "{}", NULL);
    es_gjob *z = ev("n1", 1, "User.Created", "{}", NULL); /* loses to y */
    run(3, x, y, z);
    expect_version_conflict(x, 0);
    expect_ok(y, false);
    expect_event(y, 0, 1, 1);
    expect_version_conflict(z, 1);
    cr_expect_eq(stored_events("n1"), 1);
}

BOTH(a_job_is_all_or_nothing)
{
    run(1, ev("u2", 0, "User.Created", "{}", NULL));
    /* u1 would be fine, u2 is not at version 4: nothing of the job is written */
    es_gjob *x = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
                     "\"payload\":{}},{\"originator\":{\"id\":\"u2\",\"version\":5},"
                     "\"event_type\":\"User.Renamed\",\"payload\":{}}]}");
    es_gjob *y = ev("u3", 0, "User.Created", "{}", NULL);
    run(2, x, y);
    expect_version_conflict(x, 1);
    expect_ok(y, false);
    expect_event(y, 0, 1, 2);
    cr_expect_null(stream("u1"));
    cr_expect_eq(stored_events("u1"), 0);
    cr_expect_eq(head(), 2);
}

BOTH(same_stream_twice_in_a_job)
{
    run(1, job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
               "\"payload\":{}},{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.A\","
               "\"payload\":{}},{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.B\","
               "\"payload\":{}}]}"));
    /* the version on the second event of the stream only: the first is at 4 */
    es_gjob *x = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.C\","
                     "\"payload\":{}},{\"originator\":{\"id\":\"u2\"},\"event_type\":"
                     "\"User.Created\",\"payload\":{}},{\"originator\":{\"id\":\"u1\","
                     "\"version\":5},\"event_type\":\"User.D\",\"payload\":{}}]}");
    run(1, x);
    expect_ok(x, false);
    expect_event(x, 0, 4, 4);
    expect_event(x, 1, 1, 5);
    expect_event(x, 2, 5, 6);
    expect_stream("u1", 5, "User", "User.D", 1, 6);
    /* the same shape one version off: the first event would need version 5 */
    es_gjob *y = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.E\","
                     "\"payload\":{}},{\"originator\":{\"id\":\"u1\",\"version\":5},"
                     "\"event_type\":\"User.F\",\"payload\":{}}]}");
    run(1, y);
    expect_version_conflict(y, 5);
    cr_expect(strstr(y->e.message, "version 4 cannot follow it"), "%s", y->e.message);
    cr_expect_eq(stored_events("u1"), 5);
}

BOTH(the_entity_type_is_kept)
{
    run(1, ev("o1", 0, "Shop.Order.Placed", "{}", NULL));
    expect_stream("o1", 1, "Shop.Order", "Shop.Order.Placed", 1, 1);
    /* an event of another entity type on an existing stream does not change it */
    run(1, ev("o1", 0, "Audit.Checked", "{}", NULL));
    expect_stream("o1", 2, "Shop.Order", "Audit.Checked", 1, 2);
}

BOTH(a_retry_of_stored_events_is_answered_with_them)
{
    es_gjob *x = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
                     "\"payload\":{\"a\":1,\"b\":[true,null]},\"metadata\":{\"m\":\"x\"},"
                     "\"event_id\":\"" UUID_A "\"},{\"originator\":{\"id\":\"u1\"},"
                     "\"event_type\":\"User.Renamed\",\"payload\":\"n\",\"event_id\":\"" UUID_B
                     "\"}]}");
    run(1, x);
    expect_ok(x, false);
    run(1, ev("u1", 0, "User.Renamed", "{}", NULL)); /* the stream moves on */
    /* the same events again, members in another order, the version given */
    es_gjob *r = job("{\"events\":[{\"originator\":{\"id\":\"u1\",\"version\":1},\"event_type\":"
                     "\"User.Created\",\"payload\":{\"b\":[true,null],\"a\":1},\"metadata\":"
                     "{\"m\":\"x\"},\"event_id\":\"" UUID_A "\",\"occurred_on\":"
                     "\"2001-01-01T00:00:00Z\"},{\"originator\":{\"id\":\"u1\"},"
                     "\"event_type\":\"User.Renamed\",\"payload\":\"n\",\"event_id\":\""
                     "1C8E4D2F-5A3B-4D9F-8C2E-6F7A8B9C0D1E\"}]}");
    es_gjob *y = ev("u9", 0, "User.Created", "{}", NULL);
    run(2, r, y);
    expect_ok(r, true);
    /* answered with the stored events: their versions, log ids and times */
    expect_event(r, 0, 1, 1);
    expect_event(r, 1, 2, 2);
    cr_expect_eq(r->events[0].occurred_on, x->events[0].occurred_on);
    cr_expect_eq(r->events[0].recorded_at, x->events[0].recorded_at);
    cr_expect_eq(r->events[1].recorded_at, x->events[1].recorded_at);
    /* nothing of it written; the other job of the group is */
    expect_ok(y, false);
    expect_event(y, 0, 1, 4);
    cr_expect_eq(head(), 4);
    cr_expect_eq(stored_events("u1"), 3);
    /* a stored event id leaves a group to the general path */
    cr_expect_eq(groups("one_statement"), T.pg ? 2 : 0);
    cr_expect_eq(groups("general"), T.pg ? 1 : 3);
}

BOTH(numbers_are_compared_as_a_reader_parses_them)
{
    /* PostgreSQL stores 1e20 as a 21-digit integer */
    es_gjob *x = ev("u1", 0, "User.Created", "{\"big\":1e20,\"f\":0.5}", UUID_A);
    run(1, x);
    expect_ok(x, false);
    es_gjob *r = ev("u1", 0, "User.Created", "{\"big\":1e20,\"f\":0.5}", UUID_A);
    run(1, r);
    expect_ok(r, true);
    expect_event(r, 0, 1, 1);
    cr_expect_eq(head(), 1);
}

BOTH(stored_with_other_content_is_a_conflict)
{
    run(1, job("{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\",\"payload\":"
               "{\"a\":1},\"metadata\":{\"m\":1},\"event_id\":\"" UUID_A "\"}"));
    const char *others[] = {
        /* another payload, stream, event type, metadata, none, a version not its own */
        "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\",\"payload\":{\"a\":2},"
        "\"metadata\":{\"m\":1},\"event_id\":\"" UUID_A "\"}",
        "{\"originator\":{\"id\":\"u2\"},\"event_type\":\"User.Created\",\"payload\":{\"a\":1},"
        "\"metadata\":{\"m\":1},\"event_id\":\"" UUID_A "\"}",
        "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Renamed\",\"payload\":{\"a\":1},"
        "\"metadata\":{\"m\":1},\"event_id\":\"" UUID_A "\"}",
        "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\",\"payload\":{\"a\":1},"
        "\"metadata\":{\"m\":2},\"event_id\":\"" UUID_A "\"}",
        "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\",\"payload\":{\"a\":1},"
        "\"event_id\":\"" UUID_A "\"}",
        "{\"originator\":{\"id\":\"u1\",\"version\":2},\"event_type\":\"User.Created\","
        "\"payload\":{\"a\":1},\"metadata\":{\"m\":1},\"event_id\":\"" UUID_A "\"}",
        "{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\",\"payload\":{\"a\":1.5},"
        "\"metadata\":{\"m\":1},\"event_id\":\"" UUID_A "\"}",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        es_gjob *x = job(others[i]);
        run(1, x);
        expect_id_conflict(x, UUID_A, true);
    }
    cr_expect_eq(head(), 1);
    cr_expect_null(stream("u2"));
}

BOTH(partly_stored_is_a_conflict)
{
    run(1, ev("u1", 0, "User.Created", "{}", UUID_A));
    /* one id stored (with the same content), one not */
    es_gjob *x = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
                     "\"payload\":{},\"event_id\":\"" UUID_A "\"},{\"originator\":{\"id\":\"u1\"},"
                     "\"event_type\":\"User.Renamed\",\"payload\":{},\"event_id\":\"" UUID_B
                     "\"}]}");
    /* one stored, one without an id */
    es_gjob *y = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Renamed\","
                     "\"payload\":{}},{\"originator\":{\"id\":\"u1\"},\"event_type\":"
                     "\"User.Created\",\"payload\":{},\"event_id\":\"" UUID_A "\"}]}");
    /* other content wins over "partly": the id named is the one that differs */
    es_gjob *z = job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
                     "\"payload\":{\"x\":1},\"event_id\":\"" UUID_A "\"},{\"originator\":{\"id\":\"u1\"},"
                     "\"event_type\":\"User.Renamed\",\"payload\":{},\"event_id\":\"" UUID_C
                     "\"}]}");
    run(3, x, y, z);
    expect_id_conflict(x, UUID_A, false);
    expect_id_conflict(y, UUID_A, false);
    expect_id_conflict(z, UUID_A, true);
    cr_expect_eq(head(), 1);
    cr_expect_eq(stored_events("u1"), 1);
}

BOTH(a_repeated_id_in_one_group_is_judged_against_the_earlier_job)
{
    es_gjob *x = ev("u1", 0, "User.Created", "{\"a\":1}", UUID_A);
    es_gjob *y = ev("u1", 0, "User.Created", "{\"a\":1}", UUID_A);   /* a retry of x */
    es_gjob *z = ev("u1", 0, "User.Created", "{\"a\":2}", UUID_A);   /* other content */
    es_gjob *w = ev("u1", 1, "User.Created", "{\"a\":1}", UUID_A);   /* x's own version */
    es_gjob *v = ev("u1", 2, "User.Created", "{\"a\":1}", UUID_A);   /* not x's version */
    run(5, x, y, z, w, v);
    expect_ok(x, false);
    expect_event(x, 0, 1, 1);
    expect_ok(y, true);
    expect_event(y, 0, 1, 1);
    cr_expect_eq(y->events[0].recorded_at, x->events[0].recorded_at);
    cr_expect_eq(y->events[0].occurred_on, x->events[0].occurred_on);
    cr_expect_null(y->events[0].same_as); /* resolved once the group committed */
    expect_id_conflict(z, UUID_A, true);
    expect_ok(w, true);
    expect_event(w, 0, 1, 1);
    expect_id_conflict(v, UUID_A, true);
    cr_expect_eq(head(), 1);
    cr_expect_eq(stored_events("u1"), 1);
}

BOTH(a_refused_job_makes_its_ids_known_to_none)
{
    run(1, ev("u1", 0, "User.Created", "{}", NULL));
    es_gjob *x = ev("u1", 7, "User.Renamed", "{}", UUID_A); /* refused: a version conflict */
    es_gjob *y = ev("u1", 0, "User.Renamed", "{\"other\":1}", UUID_A);
    run(2, x, y);
    expect_version_conflict(x, 1);
    /* x wrote nothing, so y is no retry and no conflict: an ordinary append */
    expect_ok(y, false);
    expect_event(y, 0, 2, 2);
}

BOTH(empty_and_refused_groups_write_nothing)
{
    db_status st = es_group_run(&T.g, NULL, 0);
    cr_expect_eq(st, DB_OK);
    cr_expect_eq(head(), 0);
    run(1, ev("u1", 0, "User.Created", "{}", NULL));
    es_gjob *x = ev("u1", 1, "User.Created", "{}", NULL);
    es_gjob *y = ev("u2", 3, "User.Created", "{}", NULL);
    run(2, x, y);
    expect_version_conflict(x, 1);
    expect_version_conflict(y, 0);
    cr_expect_eq(head(), 1);
    cr_expect_null(stream("u2"));
    /* a group of retries only writes nothing either */
    es_gjob *a = ev("u3", 0, "User.Created", "{}", UUID_A);
    run(1, a);
    es_gjob *b = ev("u3", 0, "User.Created", "{}", UUID_A);
    run(1, b);
    expect_ok(b, true);
    expect_event(b, 0, 1, 2);
    cr_expect_eq(head(), 2);
}

BOTH(a_stale_memory_of_versions_is_corrected)
{
    /* another committer (another replica) writes u1 up to version 3 */
    es_group_ctx other = new_ctx();
    run_on(&other, 1, ev("u1", 0, "User.Created", "{}", NULL));
    run_on(&other, 1, ev("u1", 0, "User.Renamed", "{}", NULL));
    run_on(&other, 1, ev("u1", 0, "User.Renamed", "{}", NULL));
    free_ctx(&other);
    /* this committer remembers nothing of u1 (so version 0) */
    es_gjob *x = ev("u1", 0, "User.Renamed", "{}", NULL);
    es_gjob *y = ev("u1", 1, "User.Created", "{}", NULL); /* right by memory, wrong in fact */
    run(2, x, y);
    expect_ok(x, false);
    expect_event(x, 0, 4, 4);
    expect_version_conflict(y, 4);
    cr_expect_eq(es_vcache_get(T.g.vc, "u1"), 4);
    expect_stream("u1", 4, "User", "User.Renamed", 1, 4);
    /* only PostgreSQL has the one-statement path: its first try found u1
     * moved, the second (from the versions it returned) wrote */
    cr_expect_eq(T.g.one_stmt, T.pg);
    cr_expect_eq(groups("one_statement"), 0);
    cr_expect_eq(groups("retried"), T.pg ? 1 : 0);
    cr_expect_eq(groups("general"), T.pg ? 0 : 1);
}

BOTH(a_memory_ahead_of_the_store_is_corrected)
{
    run(1, ev("u1", 0, "User.Created", "{}", NULL));
    /* memory says version 5 (wrong: the store is at 1) */
    es_vcache_put(T.g.vc, "u1", 5);
    es_gjob *x = ev("u1", 6, "User.Renamed", "{}", NULL); /* right by memory only */
    es_gjob *y = ev("u1", 2, "User.Renamed", "{}", NULL); /* right in fact */
    run(2, x, y);
    expect_version_conflict(x, 1);
    expect_ok(y, false);
    expect_event(y, 0, 2, 2);
    cr_expect_eq(es_vcache_get(T.g.vc, "u1"), 2);
    cr_expect_eq(stored_events("u1"), 2);
    cr_expect_eq(groups("retried"), T.pg ? 1 : 0);
}

BOTH(many_jobs_many_streams)
{
    /* 40 jobs over 7 streams, each appending without a version: versions
     * per stream count up in job order, log ids count up without a gap */
    es_gjob *jobs[40];
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i % 7);
        jobs[i] = ev(id, 0, "T.E", "{}", NULL);
    }
    db_status st = es_group_run(&T.g, jobs, 40);
    cr_assert_eq(st, DB_OK);
    for (int i = 0; i < 40; i++) {
        expect_ok(jobs[i], false);
        expect_event(jobs[i], 0, i / 7 + 1, i + 1);
    }
    cr_expect_eq(head(), 40);
    cr_expect_eq(groups(T.pg ? "one_statement" : "general"), 1);
    for (int k = 0; k < 7; k++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", k);
        int n = 40 / 7 + (k < 40 % 7);
        expect_stream(id, n, "T", "T.E", k + 1, k + 1 + 7 * (n - 1));
    }
}

/* The job was refused because a stream it touches was erased. */
static void expect_gone(const es_gjob *j)
{
    cr_expect_not(j->ok);
    cr_expect_not(j->replayed);
    cr_expect_eq(j->e.code, ERR_GONE, "code %d: %s", j->e.code, j->e.message);
    cr_expect(strstr(j->e.message, "was erased") != NULL, "%s", j->e.message);
}

BOTH(an_erased_stream_takes_no_append)
{
    run(1, job("{\"events\":[{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.Created\","
               "\"payload\":{}},{\"originator\":{\"id\":\"u1\"},\"event_type\":\"User.A\","
               "\"payload\":{}}]}"));
    /* erased behind the committer's back: it still remembers version 2 */
    err e = ERR_INIT;
    int64_t erased_at = 0;
    cr_assert(es_store_erase(T.d, "u1", 2, &erased_at, &e), "%s", e.message);
    cr_expect_eq(erased_at, 3);
    es_gjob *a = ev("u1", 0, "User.B", "{}", NULL);
    es_gjob *b = ev("u1", 3, "User.B", "{}", NULL);  /* what it believes comes next */
    es_gjob *c = ev("u1", 4, "User.B", "{}", NULL);  /* after the Erased entry */
    es_gjob *d = job("{\"events\":[{\"originator\":{\"id\":\"u2\"},\"event_type\":"
                     "\"User.Created\",\"payload\":{}},{\"originator\":{\"id\":\"u1\"},"
                     "\"event_type\":\"User.B\",\"payload\":{}}]}");
    es_gjob *f = ev("u3", 0, "User.Created", "{}", NULL);
    run(5, a, b, c, d, f);
    expect_gone(a);
    expect_gone(b);
    expect_gone(c);
    expect_gone(d); /* the batch writes nothing, u2 included */
    expect_ok(f, false);
    expect_event(f, 0, 1, 4);
    cr_expect_null(stream("u2"));
    cr_expect_eq(head(), 4);
    cr_expect_eq(stored_events("u1"), 1); /* the Erased entry alone */

    /* another committer, which never saw the stream, decides the same */
    es_group_ctx other = new_ctx();
    es_gjob *g = ev("u1", 0, "User.B", "{}", NULL);
    run_on(&other, 1, g);
    expect_gone(g);
    free_ctx(&other);
    cr_expect_eq(head(), 4);

    /* and a second erasure is gone too */
    cr_expect_not(es_store_erase(T.d, "u1", -1, &erased_at, &e));
    cr_expect_eq(e.code, ERR_GONE, "%s", e.message);
    err_clear(&e);
}
