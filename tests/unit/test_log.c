/*
 * test_log.c - text and JSON log lines on stderr: layout, timestamps, level
 * filter, escaping (one event, one line), the access log, and whole lines
 * from concurrent threads.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int capture_fd = -1;
static int saved_fd = -1;

/* Sends fd 2 to an unlinked temp file until capture_end(). */
static void capture_begin(void)
{
    char path[] = "/tmp/test_log_XXXXXX";
    capture_fd = mkstemp(path);
    cr_assert_geq(capture_fd, 0);
    unlink(path);
    saved_fd = dup(2);
    cr_assert_geq(saved_fd, 0);
    cr_assert_geq(dup2(capture_fd, 2), 0);
}

/* Restores fd 2; returns what was written (caller frees). */
static char *capture_end(void)
{
    cr_assert_geq(dup2(saved_fd, 2), 0);
    close(saved_fd);
    off_t size = lseek(capture_fd, 0, SEEK_END);
    cr_assert_geq(size, 0);
    char *text = calloc(1, (size_t)size + 1);
    cr_assert_not_null(text);
    cr_assert_eq(pread(capture_fd, text, (size_t)size, 0), size);
    close(capture_fd);
    return text;
}

/* Splits text into its lines (each ending in '\n'); returns the count. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    char *p = text;
    char *nl;
    while ((nl = strchr(p, '\n')) != NULL) {
        *nl = '\0';
        cr_assert_lt(n, max);
        lines[n++] = p;
        p = nl + 1;
    }
    cr_assert_eq(*p, '\0', "last line not terminated");
    return n;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ" and that it is within a minute of now. */
static void check_timestamp(const char *ts)
{
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd')
            cr_assert(ts[i] >= '0' && ts[i] <= '9', "bad timestamp %s", ts);
        else
            cr_assert_eq(ts[i], pat[i], "bad timestamp %s", ts);
    }
    struct tm tm = {0};
    char *end = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert_not_null(end);
    time_t t = timegm(&tm);
    /* time() reads a coarse clock that may trail CLOCK_REALTIME a little. */
    time_t now = time(NULL);
    cr_assert(t <= now + 1 && t > now - 60, "timestamp %s is not now", ts);
}

Test(log, text_lines)
{
    log_init("event-store", false, LOG_INFO);
    capture_begin();
    log_info("hello %d", 42);
    log_debug("hidden %s", "debug");
    log_warn("disk at %d%%", 93);
    log_error("two\nlines\tand \x01 control");
    log_request("GET", "/v1/events", 200, 0.0012, 345);
    log_request("POST", "/v1/x\nFAKE INFO line", 409, 1.5, 0);
    char *text = capture_end();

    char *lines[16];
    size_t n = split_lines(text, lines, 16);
    cr_assert_eq(n, 5, "got:\n%s", text);
    for (size_t i = 0; i < n; i++) {
        check_timestamp(lines[i]);
        cr_assert_eq(lines[i][24], ' ');
    }
    cr_assert_str_eq(lines[0] + 25, "INFO event-store: hello 42");
    cr_assert_str_eq(lines[1] + 25, "WARN event-store: disk at 93%");
    cr_assert_str_eq(lines[2] + 25, "ERROR event-store: two\\nlines\\tand \\x01 control");
    cr_assert_str_eq(lines[3] + 25, "INFO event-store: GET /v1/events 200 0.0012s 345B");
    cr_assert_str_eq(lines[4] + 25, "INFO event-store: POST /v1/x\\nFAKE INFO line 409 1.5s 0B");
    free(text);
}

Test(log, level_filter)
{
    log_init("crud-store", false, LOG_ERROR);
    capture_begin();
    log_debug("no");
    log_info("no");
    log_warn("no");
    log_request("GET", "/healthz", 200, 0.001, 15); /* access lines are INFO */
    log_error("yes");
    char *text = capture_end();
    char *lines[4];
    cr_assert_eq(split_lines(text, lines, 4), 1, "got:\n%s", text);
    cr_assert_str_eq(lines[0] + 25, "ERROR crud-store: yes");
    free(text);

    log_init("crud-store", false, LOG_DEBUG);
    capture_begin();
    log_debug("now %s", "shown");
    text = capture_end();
    cr_assert_str_eq(text + 25, "DEBUG crud-store: now shown\n");
    free(text);
}

/* Parses a JSON line and checks ts, level and service. Caller decrefs. */
static json_t *parse_line(const char *line, const char *level, const char *service)
{
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    cr_assert_not_null(o, "not JSON (%s): %s", jerr.text, line);
    cr_assert(json_is_object(o));
    cr_assert_str_eq(json_string_value(json_object_get(o, "level")), level);
    cr_assert_str_eq(json_string_value(json_object_get(o, "service")), service);
    const char *ts = json_string_value(json_object_get(o, "ts"));
    cr_assert_not_null(ts);
    cr_assert_eq(strlen(ts), 24);
    check_timestamp(ts);
    return o;
}

Test(log, json_lines)
{
    log_init("event-store", true, LOG_INFO);
    capture_begin();
    log_info("hello \"%s\" \\ %d", "world", 7);
    log_debug("hidden");
    log_warn("multi\nline\x02");
    log_error("bad utf-8: \xff\xfe ok: \xc3\xa9");
    log_request("GET", "/v1/events?x=\"1\"", 200, 0.0012, 345);
    char *text = capture_end();

    char *lines[8];
    size_t n = split_lines(text, lines, 8);
    cr_assert_eq(n, 4, "got:\n%s", text);

    json_t *o = parse_line(lines[0], "info", "event-store");
    cr_assert_str_eq(json_string_value(json_object_get(o, "msg")), "hello \"world\" \\ 7");
    cr_assert_eq(json_object_size(o), 4);
    json_decref(o);

    o = parse_line(lines[1], "warn", "event-store");
    cr_assert_str_eq(json_string_value(json_object_get(o, "msg")), "multi\nline\x02");
    json_decref(o);

    o = parse_line(lines[2], "error", "event-store");
    cr_assert_str_eq(json_string_value(json_object_get(o, "msg")),
                     "bad utf-8: \xef\xbf\xbd\xef\xbf\xbd ok: \xc3\xa9");
    json_decref(o);

    o = parse_line(lines[3], "info", "event-store");
    cr_assert_str_eq(json_string_value(json_object_get(o, "method")), "GET");
    cr_assert_str_eq(json_string_value(json_object_get(o, "path")), "/v1/events?x=\"1\"");
    cr_assert(json_is_integer(json_object_get(o, "status")));
    cr_assert_eq(json_integer_value(json_object_get(o, "status")), 200);
    cr_assert(json_is_number(json_object_get(o, "duration_s")));
    cr_assert_float_eq(json_number_value(json_object_get(o, "duration_s")), 0.0012, 1e-9);
    cr_assert(json_is_integer(json_object_get(o, "bytes")));
    cr_assert_eq(json_integer_value(json_object_get(o, "bytes")), 345);
    cr_assert_null(json_object_get(o, "msg"));
    json_decref(o);
    free(text);
}

Test(log, long_message_is_cut)
{
    log_init("s", true, LOG_INFO);
    size_t len = 20000;
    char *big = malloc(len + 1);
    cr_assert_not_null(big);
    memset(big, 'a', len);
    big[len] = '\0';
    capture_begin();
    log_info("%s", big);
    char *text = capture_end();
    json_t *o = parse_line(text, "info", "s");
    const char *msg = json_string_value(json_object_get(o, "msg"));
    cr_assert_lt(strlen(msg), len);
    cr_assert_gt(strlen(msg), 1000);
    cr_assert_str_eq(msg + strlen(msg) - 3, "...");
    json_decref(o);
    free(text);
    free(big);
}

#define THREADS 4
#define LINES 500

static void *writer(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < LINES; i++)
        log_info("thread %ld line %d %s", id, i,
                 "padding padding padding padding padding padding padding padding");
    return NULL;
}

Test(log, concurrent_lines_stay_whole, .timeout = 30)
{
    log_init("event-store", true, LOG_INFO);
    capture_begin();
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, writer, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *text = capture_end();
    static char *lines[THREADS * LINES + 1];
    size_t n = split_lines(text, lines, THREADS * LINES + 1);
    cr_assert_eq(n, THREADS * LINES);
    int seen[THREADS] = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loads(lines[i], 0, NULL);
        cr_assert_not_null(o, "broken line: %s", lines[i]);
        long id = -1;
        int k = -1;
        cr_assert_eq(sscanf(json_string_value(json_object_get(o, "msg")), "thread %ld line %d",
                            &id, &k),
                     2);
        cr_assert(id >= 0 && id < THREADS);
        cr_assert_eq(k, seen[id], "thread %ld out of order", id);
        seen[id]++;
        json_decref(o);
    }
    free(text);
}
