/*
 * test_metrics.c - the Prometheus registry: exposition lines, escaping,
 * cumulative histograms, process_* metrics, callbacks, threads, and a full
 * render checked by `promtool check metrics`.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* Whether `line` is a whole line of `text`. */
static int has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            return 1;
    return 0;
}

/* The value of the first sample line starting with `prefix` + " ". */
static double sample_value(const char *text, const char *prefix)
{
    size_t len = strlen(prefix);
    for (const char *p = text; (p = strstr(p, prefix)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    cr_assert_fail("no sample %s in:\n%s", prefix, text);
    return 0;
}

static char *render(metrics *m)
{
    size_t len = 0;
    char *text = metrics_render(m, &len);
    cr_assert_not_null(text);
    cr_assert_eq(len, strlen(text));
    return text;
}

Test(metrics, promtool_accepts_full_render)
{
    metrics *m = metrics_new();
    cr_assert_not_null(m);
    metrics_family *req = metrics_counter(m, "eskit_http_requests_total",
                                          "HTTP requests by method, route and code.",
                                          "method,route,code");
    metrics_family *esc = metrics_counter(m, "eskit_escape_total", "Help with \\ and\nnewline.",
                                          "v");
    metrics_family *lag = metrics_gauge(m, "eskit_consumer_lag", "Log entries behind.", "consumer");
    metrics_family *dur = metrics_histogram(m, "eskit_http_request_duration_seconds",
                                            "Request latency.", "route", NULL, 0);
    metrics_family *plain = metrics_histogram(m, "eskit_batch_size", "Events per batch.", NULL,
                                              (const double[]){1, 10, 100}, 3);
    metrics_family *empty = metrics_gauge(m, "eskit_never_set", "A family with no series.", "x");
    cr_assert(req && esc && lag && dur && plain && empty);

    metrics_add(req, (const char *[]){"GET", "/v1/events", "200"}, 1);
    metrics_add(req, (const char *[]){"GET", "/v1/events", "200"}, 2);
    metrics_add(req, (const char *[]){"POST", "/v1/events", "409"}, 1);
    metrics_add(esc, (const char *[]){"a\"b\\c\nd"}, 1);
    metrics_set(lag, (const char *[]){"metrics-consumer"}, 17);
    metrics_set(lag, (const char *[]){"other"}, 0.25);
    metrics_observe(dur, (const char *[]){"/v1/events"}, 0.0012);
    metrics_observe(dur, (const char *[]){"/v1/events"}, 0.3);
    metrics_observe(plain, NULL, 5);

    char *text = render(m);
    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);

    char cmd[256];
    int n = snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    cr_assert(n > 0 && (size_t)n < sizeof cmd);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[4096];
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int status = pclose(p);
    unlink(path);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "promtool failed (status %d): %s\n--- render:\n%s", status, out, text);

    cr_assert(has_line(text, "# HELP eskit_http_requests_total HTTP requests by method, route and code."));
    cr_assert(has_line(text, "# TYPE eskit_http_requests_total counter"));
    cr_assert(has_line(text, "eskit_http_requests_total{method=\"GET\",route=\"/v1/events\",code=\"200\"} 3"));
    cr_assert(has_line(text, "eskit_http_requests_total{method=\"POST\",route=\"/v1/events\",code=\"409\"} 1"));
    cr_assert(has_line(text, "# HELP eskit_escape_total Help with \\\\ and\\nnewline."));
    cr_assert(has_line(text, "eskit_escape_total{v=\"a\\\"b\\\\c\\nd\"} 1"), "%s", text);
    cr_assert(has_line(text, "# TYPE eskit_consumer_lag gauge"));
    cr_assert(has_line(text, "eskit_consumer_lag{consumer=\"metrics-consumer\"} 17"));
    cr_assert(has_line(text, "eskit_consumer_lag{consumer=\"other\"} 0.25"));
    cr_assert(has_line(text, "# TYPE eskit_http_request_duration_seconds histogram"));
    cr_assert(has_line(text, "eskit_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"0.0005\"} 0"));
    cr_assert(has_line(text, "eskit_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"0.0025\"} 1"));
    cr_assert(has_line(text, "eskit_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"0.5\"} 2"));
    cr_assert(has_line(text, "eskit_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"10\"} 2"));
    cr_assert(has_line(text, "eskit_http_request_duration_seconds_bucket{route=\"/v1/events\",le=\"+Inf\"} 2"));
    cr_assert_eq(sample_value(text, "eskit_http_request_duration_seconds_sum{route=\"/v1/events\"}"),
                 0.0012 + 0.3, "the sum reads back exactly");
    cr_assert(has_line(text, "eskit_http_request_duration_seconds_count{route=\"/v1/events\"} 2"));
    cr_assert(has_line(text, "eskit_batch_size_bucket{le=\"1\"} 0"));
    cr_assert(has_line(text, "eskit_batch_size_bucket{le=\"10\"} 1"));
    cr_assert(has_line(text, "eskit_batch_size_bucket{le=\"+Inf\"} 1"));
    cr_assert(has_line(text, "eskit_batch_size_sum 5"));
    cr_assert(has_line(text, "# TYPE eskit_never_set gauge"));
    cr_assert_null(strstr(text, "eskit_never_set{"));
    /* Families render in declaration order, process metrics after them. */
    const char *a = strstr(text, "# TYPE eskit_http_requests_total");
    const char *b = strstr(text, "# TYPE eskit_escape_total");
    const char *c = strstr(text, "# TYPE eskit_never_set");
    const char *d = strstr(text, "# TYPE process_");
    cr_assert(a && b && c && d && a < b && b < c && c < d);
    free(text);
    metrics_free(m);
}

Test(metrics, histogram_is_cumulative)
{
    metrics *m = metrics_new();
    metrics_family *h = metrics_histogram(m, "h_seconds", "h", "k", (const double[]){1, 2, 5}, 3);
    cr_assert_not_null(h);
    const char *k[] = {"x"};
    double obs[] = {0.5, 1, 1.5, 3, 10};
    for (size_t i = 0; i < 5; i++)
        metrics_observe(h, k, obs[i]);
    char *text = render(m);
    cr_assert(has_line(text, "h_seconds_bucket{k=\"x\",le=\"1\"} 2"), "%s", text);
    cr_assert(has_line(text, "h_seconds_bucket{k=\"x\",le=\"2\"} 3"));
    cr_assert(has_line(text, "h_seconds_bucket{k=\"x\",le=\"5\"} 4"));
    cr_assert(has_line(text, "h_seconds_bucket{k=\"x\",le=\"+Inf\"} 5"));
    cr_assert(has_line(text, "h_seconds_sum{k=\"x\"} 16"));
    cr_assert(has_line(text, "h_seconds_count{k=\"x\"} 5"));
    free(text);
    metrics_free(m);
}

Test(metrics, number_formats)
{
    metrics *m = metrics_new();
    metrics_family *g = metrics_gauge(m, "g", "g", "k");
    metrics_family *c = metrics_counter(m, "c_total", "c", NULL);
    cr_assert(g && c);
    metrics_set(g, (const char *[]){"int"}, 42);
    metrics_set(g, (const char *[]){"neg"}, -7);
    metrics_set(g, (const char *[]){"frac"}, 0.001);
    metrics_set(g, (const char *[]){"third"}, 1.0 / 3);
    metrics_set(g, (const char *[]){"inf"}, 1.0 / 0.0);
    metrics_set(g, (const char *[]){"big"}, 1e20);
    metrics_add(g, (const char *[]){"int"}, 1); /* gauges go both ways */
    metrics_add(g, (const char *[]){"neg"}, -1);
    metrics_add(c, NULL, -5); /* ignored: counters only go up */
    metrics_set(c, NULL, 9);  /* ignored: not a gauge */
    char *text = render(m);
    cr_assert(has_line(text, "g{k=\"int\"} 43"), "%s", text);
    cr_assert(has_line(text, "g{k=\"neg\"} -8"));
    cr_assert(has_line(text, "g{k=\"frac\"} 0.001"));
    cr_assert(has_line(text, "g{k=\"inf\"} +Inf"));
    cr_assert(has_line(text, "g{k=\"big\"} 1e+20"));
    cr_assert_eq(sample_value(text, "g{k=\"third\"}"), 1.0 / 3);
    cr_assert(has_line(text, "c_total 0"), "a label-less series shows from the start");
    free(text);
    metrics_free(m);
}

Test(metrics, rejects_bad_declarations)
{
    metrics *m = metrics_new();
    cr_assert_null(metrics_counter(m, "1abc", "h", NULL));
    cr_assert_null(metrics_counter(m, "a-b", "h", NULL));
    cr_assert_null(metrics_counter(m, "", "h", NULL));
    cr_assert_null(metrics_counter(m, "ok_total", "h", "bad-label"));
    cr_assert_null(metrics_counter(m, "ok_total", "h", "a,,b"));
    cr_assert_null(metrics_counter(m, "ok_total", "h", "a,a"));
    cr_assert_null(metrics_counter(m, "ok_total", "h", "__x"));
    cr_assert_null(metrics_histogram(m, "h", "h", "le", NULL, 0));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, (const double[]){1, 1}, 2));
    cr_assert_null(metrics_histogram(m, "h", "h", NULL, (const double[]){2, 1}, 2));
    cr_assert_null(metrics_gauge(m, "process_open_fds", "h", NULL));
    cr_assert_not_null(metrics_counter(m, "ok_total", "h", "a,b"));
    cr_assert_null(metrics_gauge(m, "ok_total", "h", NULL), "duplicate name");
    /* Updates through a failed declaration are harmless. */
    metrics_add(NULL, NULL, 1);
    metrics_observe(NULL, NULL, 1);
    metrics_free(m);
}

Test(metrics, process_metrics)
{
    metrics *m = metrics_new();
    char *text = render(m);
    cr_assert(has_line(text, "# TYPE process_cpu_seconds_total counter"), "%s", text);
    cr_assert(has_line(text, "# TYPE process_resident_memory_bytes gauge"));
    cr_assert(has_line(text, "# TYPE process_virtual_memory_bytes gauge"));
    cr_assert(has_line(text, "# TYPE process_start_time_seconds gauge"));
    cr_assert(has_line(text, "# TYPE process_open_fds gauge"));
    cr_assert(has_line(text, "# TYPE process_max_fds gauge"));
    cr_assert_gt(sample_value(text, "process_resident_memory_bytes"), 100000);
    cr_assert_geq(sample_value(text, "process_virtual_memory_bytes"),
                  sample_value(text, "process_resident_memory_bytes"));
    cr_assert_geq(sample_value(text, "process_cpu_seconds_total"), 0);
    double start = sample_value(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    cr_assert(start > now - 600 && start < now + 2, "start %f now %f", start, now);
    double fds = sample_value(text, "process_open_fds");
    cr_assert_geq(fds, 3);
    free(text);

    /* Opening a descriptor shows at the next render. */
    int extra = dup(0);
    cr_assert_geq(extra, 0);
    text = render(m);
    cr_assert_eq(sample_value(text, "process_open_fds"), fds + 1);
    free(text);
    close(extra);
    metrics_free(m);
}

struct collect_ctx {
    metrics_family *g;
    int calls;
};

static void collect(void *arg)
{
    struct collect_ctx *c = arg;
    c->calls++;
    /* Runs outside the registry lock: setting a gauge must not deadlock. */
    metrics_set(c->g, (const char *[]){"c"}, c->calls * 10);
}

Test(metrics, on_render_callbacks, .timeout = 10)
{
    metrics *m = metrics_new();
    struct collect_ctx c = {metrics_gauge(m, "eskit_lag", "lag", "consumer"), 0};
    cr_assert_not_null(c.g);
    metrics_on_render(m, collect, &c);
    char *text = render(m);
    cr_assert(has_line(text, "eskit_lag{consumer=\"c\"} 10"), "%s", text);
    free(text);
    text = render(m);
    cr_assert(has_line(text, "eskit_lag{consumer=\"c\"} 20"));
    cr_assert_eq(c.calls, 2);
    free(text);
    metrics_free(m);
}

#define THREADS 4
#define ROUNDS 20000

static void *hammer(void *arg)
{
    metrics_family **f = arg;
    for (int i = 0; i < ROUNDS; i++) {
        metrics_add(f[0], (const char *[]){i % 2 ? "odd" : "even"}, 1);
        metrics_observe(f[1], NULL, (double)(i % 3));
    }
    return NULL;
}

Test(metrics, thread_safe, .timeout = 30)
{
    metrics *m = metrics_new();
    metrics_family *f[2] = {metrics_counter(m, "t_total", "t", "k"),
                            metrics_histogram(m, "t_h", "t", NULL, (const double[]){0, 1}, 2)};
    cr_assert(f[0] && f[1]);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer, f), 0);
    for (int i = 0; i < THREADS; i++) {
        char *text = render(m); /* renders while others write */
        free(text);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *text = render(m);
    cr_assert_eq(sample_value(text, "t_total{k=\"even\"}"), THREADS * ROUNDS / 2);
    cr_assert_eq(sample_value(text, "t_total{k=\"odd\"}"), THREADS * ROUNDS / 2);
    cr_assert_eq(sample_value(text, "t_h_count"), THREADS * ROUNDS);
    double zero = sample_value(text, "t_h_bucket{le=\"0\"}");
    cr_assert(zero > THREADS * ROUNDS / 3 - THREADS && zero < THREADS * ROUNDS / 3 + THREADS + 1);
    free(text);
    metrics_free(m);
}
