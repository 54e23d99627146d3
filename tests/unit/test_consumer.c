/*
 * test_consumer.c - the log-reading loop (common/consumer/consumer.c) against a fake
 * event store and consumer store served by common/http/include/http_server.h from this
 * process: resume from the stored offset, narrow selectors, compare-and-set
 * conflicts, failing upstreams with back-off, redelivery after a failed
 * callback, readiness, prompt stops, pages over the body cap (the page
 * shrinks and grows back), reads without payloads, and a consumer that
 * cannot advance (lag follows the head, stuck after stuck_after_s, then
 * recovery).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consumer.h"
#include "http_server.h"
#include "log.h"
#include "timefmt.h"

/* ---- the fake upstreams: one server answers for both ---------------------- */

#define LOG_MAX 1000

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t head;          /* entries 1..head exist */
    bool stored;           /* whether the consumer is stored */
    int64_t offset;        /* its stored offset */
    int64_t max_offset;    /* highest offset ever stored */
    bool decreased;        /* a PUT made the stored offset go down */
    int put_fail;          /* answer the next N PUTs with 503 */
    int put_conflict_jump; /* on the next PUT: store this offset first (another instance) */
    bool narrow;           /* odd ids do not match: results skip them */
    bool logs_fail;        /* answer /v1/logs with 500 */
    int puts, gets, logs;  /* calls seen */
    char last_auth[64];
    int pad;               /* bytes of payload per entry (0: no payload) */
    int64_t pad_id;        /* only this entry gets the padding (0: every entry) */
    int sizes[64];         /* the `size` of the first reads asking from a backlog */
    int nsizes;
    int skip_payload;      /* reads with skip_payload=true */
    int probes;            /* reads past the head with size=1 (head probes) */
} fake;

static void fake_consumer_get(http_req *r)
{
    pthread_mutex_lock(&fake_mu);
    fake.gets++;
    bool stored = fake.stored;
    int64_t off = fake.offset;
    pthread_mutex_unlock(&fake_mu);
    if (!stored) {
        http_reply_error(r, ERR_NOT_FOUND, "no consumer");
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s, s:I, s:s}", "consumer_id", http_req_param(r, "id"),
                                      "offset", (json_int_t)off, "updated_at", "x"));
}

static void fake_consumer_put(http_req *r)
{
    err e = ERR_INIT;
    json_t *body = http_req_json(r, &e);
    if (!body) {
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    json_int_t off = json_integer_value(json_object_get(body, "offset"));
    json_t *exp = json_object_get(body, "expected_offset");
    pthread_mutex_lock(&fake_mu);
    fake.puts++;
    const char *auth = http_req_header(r, "Authorization");
    snprintf(fake.last_auth, sizeof fake.last_auth, "%s", auth ? auth : "");
    if (fake.put_fail > 0) {
        fake.put_fail--;
        pthread_mutex_unlock(&fake_mu);
        http_reply_error(r, ERR_UNAVAILABLE, "database down");
        return;
    }
    if (fake.put_conflict_jump > 0) {
        fake.offset = fake.put_conflict_jump;
        fake.stored = true;
        if (fake.offset > fake.max_offset)
            fake.max_offset = fake.offset;
        fake.put_conflict_jump = 0;
    }
    int64_t cur = fake.stored ? fake.offset : 0;
    if (exp && json_integer_value(exp) != cur) {
        pthread_mutex_unlock(&fake_mu);
        http_reply_error(r, ERR_CONFLICT, "offset is %lld", (long long)cur);
        return;
    }
    if (off < fake.offset)
        fake.decreased = true;
    fake.offset = off;
    fake.stored = true;
    if (off > fake.max_offset)
        fake.max_offset = off;
    pthread_mutex_unlock(&fake_mu);
    http_reply_json(r, 200, json_pack("{s:s, s:I, s:s}", "consumer_id", http_req_param(r, "id"),
                                      "offset", off, "updated_at", "x"));
}

static void fake_logs(http_req *r)
{
    err e = ERR_INIT;
    int64_t from = 0, size = 0, wait = 0;
    if (!http_req_query_int(r, "from_id", 1, 0, INT64_MAX, &from, &e) ||
        !http_req_query_int(r, "size", 20, 1, 1000, &size, &e) ||
        !http_req_query_int(r, "wait", 0, 0, 60, &wait, &e)) {
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    if (from == 0)
        from = 1;
    bool skip = false;
    if (!http_req_query_bool(r, "skip_payload", false, &skip, &e)) {
        http_reply_err(r, &e);
        err_clear(&e);
        return;
    }
    pthread_mutex_lock(&fake_mu);
    fake.skip_payload += skip;
    if (from <= fake.head && fake.nsizes < 64)
        fake.sizes[fake.nsizes++] = (int)size;
    if (from > fake.head && size == 1 && wait == 0)
        fake.probes++;
    int pad = fake.pad;
    int64_t pad_id = fake.pad_id;
    pthread_mutex_unlock(&fake_mu);
    double deadline = timefmt_mono() + (double)wait;
    for (;;) {
        pthread_mutex_lock(&fake_mu);
        fake.logs++;
        if (fake.logs_fail) {
            pthread_mutex_unlock(&fake_mu);
            http_reply_error(r, ERR_INTERNAL, "boom");
            return;
        }
        int64_t head = fake.head;
        bool narrow = fake.narrow;
        pthread_mutex_unlock(&fake_mu);
        if (head >= from || timefmt_mono() >= deadline) {
            json_t *results = json_array();
            int64_t id = from;
            for (; id <= head && id < from + size; id++) {
                if (narrow && id % 2 == 1)
                    continue;
                char type[32];
                snprintf(type, sizeof type, "T%lld.Created", (long long)(id % 3));
                json_t *entry = json_pack("{s:I, s:{s:s}}", "id", (json_int_t)id, "event",
                                          "event_type", type);
                if (pad > 0 && !skip && (pad_id == 0 || pad_id == id)) {
                    char *fill = malloc((size_t)pad + 1);
                    memset(fill, 'x', (size_t)pad);
                    fill[pad] = '\0';
                    json_object_set_new(json_object_get(entry, "event"), "payload",
                                        json_pack("{s:s, s:f}", "fill", fill, "big", 1e20));
                    free(fill);
                }
                json_array_append_new(results, entry);
            }
            http_reply_json(r, 200, json_pack("{s:o, s:I, s:I}", "results", results,
                                              "next_from_id", (json_int_t)id, "head_id",
                                              (json_int_t)head));
            return;
        }
        usleep(20 * 1000);
    }
}

static void fake_readyz_v1(http_req *r) { http_reply_json(r, 200, json_object()); }

static const http_route fake_routes[] = {
    {"GET", "/v1/consumers/{id}", fake_consumer_get, HTTP_RUN_WORKER},
    {"PUT", "/v1/consumers/{id}", fake_consumer_put, HTTP_RUN_WORKER},
    {"GET", "/v1/logs", fake_logs, HTTP_RUN_WORKER},
    {"GET", "/v1/unused", fake_readyz_v1, HTTP_RUN_WORKER},
};

static http_server *srv;
static metrics *srv_metrics;
static char srv_url[64];

static void setup(void)
{
    err e = ERR_INIT;
    log_init("test", false, LOG_ERROR);
    memset(&fake, 0, sizeof fake);
    srv_metrics = metrics_new();
    cr_assert_not_null(srv_metrics);
    http_server_config cfg = {
        .service = "fake",
        .listen = "127.0.0.1:0",
        .api_token = "tok",
        .max_body = 1 << 20,
        .routes = fake_routes,
        .nroutes = sizeof fake_routes / sizeof fake_routes[0],
        .metrics = srv_metrics,
    };
    srv = http_server_start(&cfg, &e);
    cr_assert_not_null(srv, "%s", e.message);
    snprintf(srv_url, sizeof srv_url, "http://127.0.0.1:%d", http_server_port(srv));
}

static void teardown(void)
{
    http_server_stop(srv, 2000);
    metrics_free(srv_metrics);
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the consuming side ---------------------------------------------------- */

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int count[LOG_MAX + 1]; /* deliveries per id */
    int64_t last_id;
    int64_t last_head;
    int batches;
    int fail_next; /* fail the next N batches */
    int errors[2]; /* on_error calls per upstream */
} seen;

static bool on_batch(void *ctx, const json_t *entries, int64_t head_id, err *e)
{
    pthread_mutex_lock(&seen_mu);
    if (seen.fail_next > 0) {
        seen.fail_next--;
        pthread_mutex_unlock(&seen_mu);
        err_set(e, ERR_INTERNAL, "callback says no");
        return false;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry) {
        json_int_t id = json_integer_value(json_object_get(entry, "id"));
        if (id >= 1 && id <= LOG_MAX)
            seen.count[id]++;
        seen.last_id = id;
    }
    seen.last_head = head_id;
    seen.batches++;
    pthread_mutex_unlock(&seen_mu);
    return true;
}

static void on_error(void *ctx, consumer_upstream where, const err *e)
{
    pthread_mutex_lock(&seen_mu);
    seen.errors[where]++;
    pthread_mutex_unlock(&seen_mu);
}

static consumer *make(const char *es_url, const char *cs_url, int batch, int wait)
{
    err e = ERR_INIT;
    memset(&seen, 0, sizeof seen);
    consumer_config cfg = {
        .event_store_url = es_url,
        .consumer_store_url = cs_url,
        .token = "tok",
        .name = "unit-consumer",
        .batch_size = batch,
        .wait_s = wait,
        .timeout_ms = 2000,
        .on_batch = on_batch,
        .on_error = on_error,
    };
    consumer *c = consumer_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.message);
    cr_assert(consumer_start(c, &e), "%s", e.message);
    return c;
}

/* Waits until the stored offset is `want` (true) or 10 s pass. */
static bool wait_stored(int64_t want)
{
    double until = timefmt_mono() + 10;
    while (timefmt_mono() < until) {
        pthread_mutex_lock(&fake_mu);
        bool done = fake.stored && fake.offset == want;
        pthread_mutex_unlock(&fake_mu);
        if (done)
            return true;
        usleep(10 * 1000);
    }
    return false;
}

static void set_head(int64_t head)
{
    pthread_mutex_lock(&fake_mu);
    fake.head = head;
    pthread_mutex_unlock(&fake_mu);
}

/* Waits up to 10 s for the consumer's state to satisfy `cond`. */
#define WAIT_STATE(c, st, cond)                                                     \
    do {                                                                            \
        double until_ = timefmt_mono() + 10;                                        \
        do {                                                                        \
            consumer_state_get((c), &(st));                                         \
            if (cond)                                                               \
                break;                                                              \
            usleep(10 * 1000);                                                      \
        } while (timefmt_mono() < until_);                                          \
        cr_assert(cond, "timed out waiting for " #cond);                            \
    } while (0)

Test(consumer, reads_everything_from_zero_once_and_saves)
{
    set_head(57);
    consumer *c = make(srv_url, srv_url, 10, 1);
    cr_assert(wait_stored(57));
    set_head(60); /* a live entry reaches the waiting reader */
    cr_assert(wait_stored(60));
    consumer_state st;
    /* the consumer store has the offset before the consumer's state says so */
    WAIT_STATE(c, st, st.offset == 60);
    cr_assert_eq(st.offset, 60);
    cr_assert_eq(st.head_id, 60);
    cr_assert_eq(st.errors, 0);
    cr_assert_eq(st.event_store, CONSUMER_HEALTH_UP);
    cr_assert_eq(st.consumer_store, CONSUMER_HEALTH_UP);
    consumer_free(c);
    for (int id = 1; id <= 60; id++)
        cr_assert_eq(seen.count[id], 1, "id %d delivered %d times", id, seen.count[id]);
    cr_assert_geq(seen.batches, 7);
    cr_assert_str_eq(fake.last_auth, "Bearer tok");
    cr_assert_not(fake.decreased);
}

Test(consumer, resumes_after_the_stored_offset)
{
    set_head(20);
    fake.stored = true;
    fake.offset = 12;
    consumer *c = make(srv_url, srv_url, 100, 1);
    cr_assert(wait_stored(20));
    consumer_free(c);
    for (int id = 1; id <= 12; id++)
        cr_assert_eq(seen.count[id], 0, "id %d", id);
    for (int id = 13; id <= 20; id++)
        cr_assert_eq(seen.count[id], 1, "id %d", id);
}

Test(consumer, narrow_selector_still_moves_the_offset)
{
    set_head(1); /* id 1 is odd: nothing matches, but the scan moves on */
    fake.narrow = true;
    consumer *c = make(srv_url, srv_url, 100, 1);
    cr_assert(wait_stored(1));
    cr_assert_eq(seen.batches, 0);
    set_head(9);
    cr_assert(wait_stored(9));
    consumer_free(c);
    for (int id = 1; id <= 9; id++)
        cr_assert_eq(seen.count[id], id % 2 == 0 ? 1 : 0, "id %d", id);
}

Test(consumer, conflict_reads_the_offset_again)
{
    set_head(10);
    pthread_mutex_lock(&fake_mu);
    fake.put_conflict_jump = 30; /* another instance got to 30 first */
    pthread_mutex_unlock(&fake_mu);
    consumer *c = make(srv_url, srv_url, 10, 1);
    double until = timefmt_mono() + 5;
    while (timefmt_mono() < until) {
        pthread_mutex_lock(&fake_mu);
        int puts = fake.puts;
        pthread_mutex_unlock(&fake_mu);
        if (puts >= 1)
            break;
        usleep(10 * 1000);
    }
    set_head(35);
    cr_assert(wait_stored(35));
    consumer_state st;
    consumer_state_get(c, &st);
    consumer_free(c);
    cr_assert_eq(st.errors, 0, "a conflict is not an error");
    cr_assert_not(fake.decreased);
    cr_assert_geq(fake.gets, 2, "the offset was read again");
    for (int id = 11; id <= 30; id++)
        cr_assert_eq(seen.count[id], 0, "id %d is another instance's", id);
    for (int id = 31; id <= 35; id++)
        cr_assert_eq(seen.count[id], 1, "id %d", id);
}

Test(consumer, failed_saves_are_retried_without_rereading)
{
    set_head(5);
    fake.put_fail = 3;
    consumer *c = make(srv_url, srv_url, 100, 1);
    cr_assert(wait_stored(5));
    consumer_state st;
    consumer_state_get(c, &st);
    consumer_free(c);
    cr_assert_eq(st.errors, 3);
    cr_assert_eq(seen.errors[CONSUMER_CONSUMER_STORE], 3);
    cr_assert_eq(st.consumer_store, CONSUMER_HEALTH_UP);
    for (int id = 1; id <= 5; id++)
        cr_assert_eq(seen.count[id], 1, "id %d", id);
}

Test(consumer, failed_callback_redelivers_the_batch)
{
    set_head(4);
    consumer *c = make(srv_url, srv_url, 100, 1);
    pthread_mutex_lock(&seen_mu);
    seen.fail_next = 2;
    pthread_mutex_unlock(&seen_mu);
    cr_assert(wait_stored(4));
    consumer_state st;
    consumer_state_get(c, &st);
    consumer_free(c);
    cr_assert_eq(st.errors, 2);
    for (int id = 1; id <= 4; id++)
        cr_assert_eq(seen.count[id], 1, "id %d", id);
}

Test(consumer, event_store_errors_back_off_and_recover)
{
    set_head(3);
    fake.logs_fail = true;
    consumer *c = make(srv_url, srv_url, 100, 1);
    usleep(1000 * 1000);
    consumer_state st;
    consumer_state_get(c, &st);
    /* 100 + 200 + 400 ms of back-off in a second: a handful, not hundreds */
    cr_assert_geq(st.errors, 2);
    cr_assert_leq(st.errors, 6);
    cr_assert_eq(st.event_store, CONSUMER_HEALTH_DOWN);
    err e = ERR_INIT;
    cr_assert_not(consumer_ready(c, &e));
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    err_clear(&e);
    pthread_mutex_lock(&fake_mu);
    fake.logs_fail = false;
    pthread_mutex_unlock(&fake_mu);
    cr_assert(wait_stored(3));
    consumer_state_get(c, &st);
    cr_assert_eq(st.event_store, CONSUMER_HEALTH_UP);
    cr_assert(consumer_ready(c, &e), "%s", e.message);
    consumer_free(c);
}

Test(consumer, unreachable_upstream_and_prompt_stop)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t sl = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", ntohs(sa.sin_port));

    consumer *c = make(srv_url, dead, 100, 1); /* the consumer store is down */
    usleep(700 * 1000);
    consumer_state st;
    consumer_state_get(c, &st);
    cr_assert_geq(st.errors, 2);
    cr_assert_eq(st.offset, -1);
    cr_assert_eq(st.consumer_store, CONSUMER_HEALTH_DOWN);
    cr_assert_eq(st.event_store, CONSUMER_HEALTH_UNKNOWN);
    err e = ERR_INIT;
    cr_assert_not(consumer_ready(c, &e));
    cr_assert(strstr(e.message, "consumer store"), "%s", e.message);
    err_clear(&e);
    double t0 = timefmt_mono();
    consumer_free(c);
    cr_assert_lt(timefmt_mono() - t0, 0.5, "stopping during back-off is prompt");
}

Test(consumer, stop_during_a_long_poll)
{
    set_head(0);
    consumer *c = make(srv_url, srv_url, 100, 2);
    usleep(300 * 1000); /* now waiting in the long poll */
    double t0 = timefmt_mono();
    consumer_free(c);
    cr_assert_lt(timefmt_mono() - t0, 2.5, "at most the poll's wait");
}

Test(consumer, run_in_the_callers_thread)
{
    err e = ERR_INIT;
    set_head(3);
    consumer_config cfg = {
        .event_store_url = srv_url,
        .consumer_store_url = srv_url,
        .token = "tok",
        .name = "unit-consumer",
        .wait_s = 1,
        .on_batch = on_batch,
    };
    consumer *c = consumer_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.message);
    consumer_stop(c); /* stopped before it runs: returns at once */
    consumer_run(c);
    consumer_free(c);
}

Test(consumer, bad_configuration)
{
    err e = ERR_INIT;
    consumer_config cfg = {
        .event_store_url = srv_url,
        .consumer_store_url = srv_url,
        .name = "bad name",
        .on_batch = on_batch,
    };
    cr_assert_null(consumer_new(&cfg, &e));
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT);
    err_clear(&e);
    cfg.name = "ok";
    cfg.batch_size = 1001;
    cr_assert_null(consumer_new(&cfg, &e));
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT);
    err_clear(&e);
    cfg.batch_size = 0;
    cfg.event_store_url = "localhost:8080";
    cr_assert_null(consumer_new(&cfg, &e));
    cr_assert(strstr(e.message, "event store"), "%s", e.message);
    err_clear(&e);
    cfg.event_store_url = srv_url;
    cfg.on_batch = NULL;
    cr_assert_null(consumer_new(&cfg, &e));
    err_clear(&e);
}

/* Review regression: a stored offset of INT64_MAX (the consumer store
 * accepts it) made the next read ask for from_id = offset + 1, a signed
 * overflow (UB; a refused negative from_id in practice) and a failure loop. */
Test(consumer, offset_at_int64_max_does_not_overflow)
{
    set_head(5);
    fake.stored = true;
    fake.offset = INT64_MAX;
    consumer *c = make(srv_url, srv_url, 10, 1);
    usleep(1500 * 1000);
    consumer_state st;
    consumer_state_get(c, &st);
    consumer_free(c);
    cr_assert_eq(st.offset, INT64_MAX);
    cr_assert_eq(st.errors, 0, "%d errors", (int)st.errors);
}

/* ---- pages over the cap, reads without payloads, stuck consumers ---------- */

/* Like make(), with the newer knobs; the callback fails `fail` times first. */
static consumer *make_opts(int batch, size_t max_page, bool skip, int stuck_s, int fail)
{
    err e = ERR_INIT;
    memset(&seen, 0, sizeof seen);
    seen.fail_next = fail;
    consumer_config cfg = {
        .event_store_url = srv_url,
        .consumer_store_url = srv_url,
        .token = "tok",
        .name = "unit-consumer",
        .batch_size = batch,
        .wait_s = 1,
        .timeout_ms = 2000,
        .skip_payload = skip,
        .max_page_bytes = max_page,
        .stuck_after_s = stuck_s,
        .on_batch = on_batch,
        .on_error = on_error,
    };
    consumer *c = consumer_new(&cfg, &e);
    cr_assert_not_null(c, "%s", e.message);
    cr_assert(consumer_start(c, &e), "%s", e.message);
    return c;
}

static void set_fake(int *field, int value)
{
    pthread_mutex_lock(&fake_mu);
    *field = value;
    pthread_mutex_unlock(&fake_mu);
}

static void set_fail_next(int n)
{
    pthread_mutex_lock(&seen_mu);
    seen.fail_next = n;
    pthread_mutex_unlock(&seen_mu);
}


/* Issue 12: a log page over the client's cap (70 events of 1 MB against
 * 64 MiB) stalled the consumer for good, with lag 0. Here the cap is 64 KiB
 * and entries are 4 KB: 100 a page is too large, 12 fit. */
Test(consumer, pages_over_the_cap_shrink_and_grow_back)
{
    set_head(100);
    fake.pad = 4000;
    consumer *c = make_opts(100, 64 * 1024, false, 0, 0);
    cr_assert(wait_stored(100));
    consumer_state st;
    WAIT_STATE(c, st, st.offset == 100);
    cr_assert_eq(st.errors, 0, "a page too large is no failure: %s", st.last_error);
    cr_assert_eq(st.page_size, 12);
    cr_assert_eq(st.lag, 0);
    pthread_mutex_lock(&fake_mu);
    int want[] = {100, 50, 25, 12, 12};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_eq(fake.sizes[i], want[i], "read %zu asked %d", i, fake.sizes[i]);
    fake.pad = 0; /* small entries again: full pages well under the cap */
    fake.nsizes = 0;
    fake.head = 400;
    cr_assert_eq(fake.skip_payload, 0);
    pthread_mutex_unlock(&fake_mu);
    cr_assert(wait_stored(400));
    WAIT_STATE(c, st, st.page_size == 100);
    consumer_free(c);
    cr_assert_eq(fake.sizes[0], 12);
    cr_assert_eq(fake.sizes[1], 24);
    cr_assert_eq(fake.sizes[2], 48);
    cr_assert_eq(fake.sizes[3], 96);
    for (int id = 1; id <= 400; id++)
        cr_assert_eq(seen.count[id], 1, "id %d delivered %d times", id, seen.count[id]);
}

/* One entry over the cap cannot be passed: that is a failure, counted and
 * said (which entry, why), and the consumer turns stuck; it goes on once the
 * entry fits. */
Test(consumer, an_entry_over_the_cap_alone_fails_and_says_which)
{
    set_head(10);
    fake.pad = 100000;
    fake.pad_id = 5;
    consumer *c = make_opts(10, 64 * 1024, false, 1, 0);
    consumer_state st;
    WAIT_STATE(c, st, st.errors >= 2);
    cr_assert_eq(st.offset, 4);
    cr_assert_eq(st.page_size, 1);
    cr_assert(strstr(st.last_error, "log entry 5 alone is larger than the 65536-byte cap"),
              "%s", st.last_error);
    cr_assert_eq(st.head_id, 10, "the head is learned while the entry fails");
    cr_assert_eq(st.lag, 6);
    cr_assert_eq(seen.count[5], 0);
    WAIT_STATE(c, st, st.stuck);
    err e = ERR_INIT;
    cr_assert_not(consumer_ready(c, &e));
    cr_assert(strstr(e.message, "stuck: 6 entries behind the log head 10 (offset 4)"), "%s",
              e.message);
    cr_assert(strstr(e.message, "log entry 5 alone"), "%s", e.message);
    err_clear(&e);

    set_fake(&fake.pad, 0);
    cr_assert(wait_stored(10));
    WAIT_STATE(c, st, !st.stuck && st.lag == 0 && st.last_error[0] == '\0');
    cr_assert(consumer_ready(c, &e), "%s", e.message);
    consumer_free(c);
    for (int id = 1; id <= 10; id++)
        cr_assert_eq(seen.count[id], 1, "id %d delivered %d times", id, seen.count[id]);
}

Test(consumer, skip_payload_reads_without_payloads)
{
    set_head(3);
    fake.pad = 100000; /* over the cap, unless left out */
    consumer *c = make_opts(10, 64 * 1024, true, 0, 0);
    cr_assert(wait_stored(3));
    consumer_state st;
    WAIT_STATE(c, st, st.offset == 3);
    consumer_free(c);
    cr_assert_eq(st.errors, 0, "%s", st.last_error);
    cr_assert_eq(st.page_size, 10);
    cr_assert_geq(fake.skip_payload, 1);
}

/* SPEC §6: a consumer whose batches keep failing (both upstreams answer
 * fine) is behind; its lag follows the head, errors count, and after
 * stuck_after_s it is stuck and not ready, saying why; then it recovers. */
Test(consumer, a_consumer_that_cannot_advance_says_so)
{
    set_head(5);
    consumer *c = make_opts(100, 0, false, 2, 1000000);
    consumer_state st;
    WAIT_STATE(c, st, st.errors >= 1);
    cr_assert_eq(st.lag, 5);
    cr_assert_not(st.stuck);
    err e = ERR_INIT;
    cr_assert(consumer_ready(c, &e), "not stuck yet: %s", e.message);
    cr_assert(strstr(st.last_error, "handling log entries 1 to 5: callback says no"), "%s",
              st.last_error);
    set_head(9); /* the failing re-reads learn the new head */
    WAIT_STATE(c, st, st.head_id == 9 && st.lag == 9);
    WAIT_STATE(c, st, st.stuck);
    cr_assert_geq(st.progress_age_s, 2.0);
    uint64_t errors = st.errors;
    cr_assert_not(consumer_ready(c, &e));
    cr_assert_eq(e.code, ERR_UNAVAILABLE);
    cr_assert(strstr(e.message, "consumer unit-consumer is stuck: 9 entries behind the log "
                                "head 9 (offset 0) and has not advanced for"), "%s", e.message);
    cr_assert(strstr(e.message, "callback says no"), "%s", e.message);
    err_clear(&e);
    cr_assert(consumer_stuck(c, NULL));
    WAIT_STATE(c, st, st.errors > errors);

    set_fail_next(0);
    cr_assert(wait_stored(9));
    WAIT_STATE(c, st, !st.stuck && st.lag == 0);
    cr_assert(consumer_ready(c, &e), "%s", e.message);
    cr_assert_not(consumer_stuck(c, &e));
    consumer_free(c);
}

/* The consumer store refuses the saves: the loop retries only the save, so
 * it does not read the log; head probes keep the lag following the head. */
Test(consumer, failing_saves_still_follow_the_head)
{
    set_head(5);
    fake.put_fail = 1000000;
    consumer *c = make_opts(100, 0, false, 1, 0);
    consumer_state st;
    WAIT_STATE(c, st, st.errors >= 2);
    cr_assert_eq(st.lag, 5);
    set_head(20);
    WAIT_STATE(c, st, st.head_id == 20 && st.lag == 20);
    cr_assert_geq(fake.probes, 1);
    WAIT_STATE(c, st, st.stuck);
    err e = ERR_INIT;
    cr_assert_not(consumer_ready(c, &e));
    cr_assert(strstr(e.message, "stuck: 20 entries behind"), "%s", e.message);
    cr_assert(strstr(e.message, "saving offset 5 (stored: 0): the consumer store answered 503"),
              "%s", e.message);
    err_clear(&e);
    set_fake(&fake.put_fail, 0);
    cr_assert(wait_stored(20));
    WAIT_STATE(c, st, !st.stuck && st.lag == 0);
    consumer_free(c);
    for (int id = 1; id <= 20; id++)
        cr_assert_eq(seen.count[id], 1, "id %d delivered %d times", id, seen.count[id]);
}
