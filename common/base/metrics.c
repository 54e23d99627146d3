/*
 * metrics.c - the Prometheus registry behind every service's GET /metrics.
 *
 * A registry holds families (counter, gauge, histogram) in declaration order;
 * each family holds its series, one per set of label values, created on first
 * use with copies of the values. One mutex per registry guards everything; the
 * on-render callbacks run before the lock is taken, so they may set gauges.
 * metrics_render() writes text exposition format 0.0.4 (checked by
 * `promtool check metrics` in tests/unit/test_metrics.c) and appends the
 * standard process_* metrics, read from /proc/self at that moment.
 */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "buf.h"
#include "strhash.h"

#define METRICS_MAX_COLLECTORS 8
#define METRICS_MAX_LABELS 16
#define METRICS_RENDER_MAX ((size_t)64 << 20)

typedef enum { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM } metrics_type;

typedef struct metrics_series {
    struct metrics_series *next;
    uint64_t hash;   /* of the label values, to skip most string compares */
    char **values;   /* nlabels copies */
    double value;    /* counter, gauge */
    uint64_t *counts; /* histogram: per bucket, not cumulative; nbuckets */
    uint64_t count;
    double sum;
} metrics_series;

struct metrics_family {
    metrics *reg;
    metrics_type type;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *buckets;
    size_t nbuckets;
    metrics_series *series; /* newest first; rendered in creation order */
    size_t nseries;
    metrics_family *next;
};

struct metrics {
    pthread_mutex_t lock;
    metrics_family *first, *last;
    struct {
        metrics_collect_fn fn;
        void *ctx;
    } collectors[METRICS_MAX_COLLECTORS];
    size_t ncollectors;
};

static const double metrics_default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* The names the registry renders itself. */
static const char *const metrics_reserved[] = {
    "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total",
    "process_start_time_seconds",    "process_open_fds",             "process_max_fds",
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void metrics_series_free(metrics_series *s, size_t nlabels)
{
    if (!s)
        return;
    if (s->values)
        for (size_t i = 0; i < nlabels; i++)
            free(s->values[i]);
    free(s->values);
    free(s->counts);
    free(s);
}

static void metrics_family_free(metrics_family *f)
{
    if (!f)
        return;
    metrics_series *s = f->series;
    while (s) {
        metrics_series *next = s->next;
        metrics_series_free(s, f->nlabels);
        s = next;
    }
    if (f->labels)
        for (size_t i = 0; i < f->nlabels; i++)
            free(f->labels[i]);
    free(f->labels);
    free(f->buckets);
    free(f->name);
    free(f->help);
    free(f);
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    metrics_family *f = m->first;
    while (f) {
        metrics_family *next = f->next;
        metrics_family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; no ':' for label names. */
static int metrics_valid_name(const char *s, size_t len, int colon)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

/* Splits "a,b,c" into f->labels. Returns 0, or -1 on OOM or a bad name. */
static int metrics_parse_labels(metrics_family *f, const char *labels)
{
    if (!labels || !*labels)
        return 0;
    f->labels = calloc(METRICS_MAX_LABELS, sizeof *f->labels);
    if (!f->labels)
        return -1;
    const char *p = labels;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (f->nlabels == METRICS_MAX_LABELS || !metrics_valid_name(p, len, 0))
            return -1;
        if (len >= 2 && p[0] == '_' && p[1] == '_')
            return -1; /* reserved by Prometheus */
        if (f->type == METRICS_HISTOGRAM && len == 2 && memcmp(p, "le", 2) == 0)
            return -1;
        for (size_t i = 0; i < f->nlabels; i++)
            if (strlen(f->labels[i]) == len && memcmp(f->labels[i], p, len) == 0)
                return -1;
        f->labels[f->nlabels] = strndup(p, len);
        if (!f->labels[f->nlabels])
            return -1;
        f->nlabels++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int metrics_name_taken(metrics *m, const char *name)
{
    for (size_t i = 0; i < sizeof metrics_reserved / sizeof *metrics_reserved; i++)
        if (strcmp(metrics_reserved[i], name) == 0)
            return 1;
    for (metrics_family *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return 1;
    return 0;
}

static metrics_series *metrics_series_get(metrics_family *f, const char *const *values);

/* Builds and links a family. Returns NULL on OOM or a bad name / labels /
 * buckets; nothing is registered then. */
static metrics_family *metrics_declare(metrics *m, metrics_type type, const char *name,
                                       const char *help, const char *labels,
                                       const double *buckets, size_t nbuckets)
{
    metrics_family *f = NULL;
    if (!m || !name || !metrics_valid_name(name, strlen(name), 1))
        return NULL;
    f = calloc(1, sizeof *f);
    if (!f)
        goto fail;
    f->reg = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto fail;
    if (metrics_parse_labels(f, labels))
        goto fail;
    if (type == METRICS_HISTOGRAM) {
        if (!buckets) {
            buckets = metrics_default_buckets;
            nbuckets = sizeof metrics_default_buckets / sizeof *metrics_default_buckets;
        }
        if (nbuckets == 0)
            goto fail;
        for (size_t i = 0; i < nbuckets; i++)
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
                goto fail;
        f->buckets = malloc(nbuckets * sizeof *f->buckets);
        if (!f->buckets)
            goto fail;
        memcpy(f->buckets, buckets, nbuckets * sizeof *f->buckets);
        f->nbuckets = nbuckets;
    }

    pthread_mutex_lock(&m->lock);
    if (metrics_name_taken(m, name)) {
        pthread_mutex_unlock(&m->lock);
        goto fail;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    /* A family without labels has exactly one series: show it from the start. */
    if (f->nlabels == 0)
        (void)metrics_series_get(f, NULL);
    pthread_mutex_unlock(&m->lock);
    return f;

fail:
    metrics_family_free(f);
    return NULL;
}

metrics_family *metrics_counter(metrics *m, const char *name, const char *help,
                                const char *labels)
{
    return metrics_declare(m, METRICS_COUNTER, name, help, labels, NULL, 0);
}

metrics_family *metrics_gauge(metrics *m, const char *name, const char *help,
                              const char *labels)
{
    return metrics_declare(m, METRICS_GAUGE, name, help, labels, NULL, 0);
}

metrics_family *metrics_histogram(metrics *m, const char *name, const char *help,
                                  const char *labels, const double *buckets, size_t nbuckets)
{
    return metrics_declare(m, METRICS_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

/* A missing value (NULL array or NULL entry) counts as "". */
static const char *metrics_value_at(const char *const *values, size_t i)
{
    return values && values[i] ? values[i] : "";
}

static uint64_t metrics_hash(const metrics_family *f, const char *const *values)
{
    uint64_t h = STRHASH_INIT;
    for (size_t i = 0; i < f->nlabels; i++) {
        h = strhash_more(h, metrics_value_at(values, i));
        h = strhash_byte(h, 0xff); /* separator: ("ab","") != ("a","b") */
    }
    return h;
}

/* Finds or creates the series for `values`. Called with the lock held.
 * Returns NULL on OOM (the update is then dropped). */
static metrics_series *metrics_series_get(metrics_family *f, const char *const *values)
{
    uint64_t h = metrics_hash(f, values);
    for (metrics_series *s = f->series; s; s = s->next) {
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], metrics_value_at(values, i)) == 0)
            i++;
        if (i == f->nlabels)
            return s;
    }
    metrics_series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hash = h;
    if (f->nlabels) {
        s->values = calloc(f->nlabels, sizeof *s->values);
        if (!s->values)
            goto fail;
        for (size_t i = 0; i < f->nlabels; i++) {
            s->values[i] = strdup(metrics_value_at(values, i));
            if (!s->values[i])
                goto fail;
        }
    }
    if (f->type == METRICS_HISTOGRAM) {
        s->counts = calloc(f->nbuckets, sizeof *s->counts);
        if (!s->counts)
            goto fail;
    }
    s->next = f->series;
    f->series = s;
    f->nseries++;
    return s;

fail:
    metrics_series_free(s, f->nlabels);
    return NULL;
}

void metrics_add(metrics_family *f, const char *const *values, double v)
{
    if (!f || f->type == METRICS_HISTOGRAM || isnan(v))
        return;
    if (f->type == METRICS_COUNTER && v < 0)
        return; /* counters only go up */
    pthread_mutex_lock(&f->reg->lock);
    metrics_series *s = metrics_series_get(f, values);
    if (s)
        s->value += v;
    pthread_mutex_unlock(&f->reg->lock);
}

void metrics_set(metrics_family *f, const char *const *values, double v)
{
    if (!f || f->type != METRICS_GAUGE)
        return;
    pthread_mutex_lock(&f->reg->lock);
    metrics_series *s = metrics_series_get(f, values);
    if (s)
        s->value = v;
    pthread_mutex_unlock(&f->reg->lock);
}

void metrics_observe(metrics_family *f, const char *const *values, double v)
{
    if (!f || f->type != METRICS_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&f->reg->lock);
    metrics_series *s = metrics_series_get(f, values);
    if (s) {
        size_t i = 0;
        while (i < f->nbuckets && v > f->buckets[i])
            i++;
        if (i < f->nbuckets)
            s->counts[i]++;
        s->count++;
        s->sum += v;
    }
    pthread_mutex_unlock(&f->reg->lock);
}

void metrics_on_render(metrics *m, metrics_collect_fn fn, void *ctx)
{
    if (!m || !fn)
        return;
    pthread_mutex_lock(&m->lock);
    if (m->ncollectors < METRICS_MAX_COLLECTORS) {
        m->collectors[m->ncollectors].fn = fn;
        m->collectors[m->ncollectors].ctx = ctx;
        m->ncollectors++;
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- rendering ------------------------------------------------------------ */

/* A sample value: integral values without decimals ("42"), others with the
 * shortest %.Ng that reads back exactly, "+Inf", "-Inf", "NaN". */
static int metrics_put_number(buf *b, double v)
{
    if (isnan(v))
        return buf_puts(b, "NaN");
    if (isinf(v))
        return buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (v == trunc(v) && fabs(v) < 1e15)
        return buf_printf(b, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    char tmp[40];
    for (int prec = 15; prec < 17; prec++) {
        int n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (n > 0 && (size_t)n < sizeof tmp && strtod(tmp, NULL) == v)
            return buf_puts(b, tmp);
    }
    return buf_printf(b, "%.17g", v);
}

/* HELP text escapes \ and newline; label values also escape ". */
static int metrics_put_escaped(buf *b, const char *s, int quote)
{
    for (const char *p = s; *p; p++) {
        const char *rep = NULL;
        if (*p == '\\')
            rep = "\\\\";
        else if (*p == '\n')
            rep = "\\n";
        else if (quote && *p == '"')
            rep = "\\\"";
        if (rep ? buf_puts(b, rep) : buf_append(b, p, 1))
            return -1;
    }
    return 0;
}

static int metrics_put_header(buf *b, const char *name, const char *help, const char *type)
{
    if (buf_printf(b, "# HELP %s ", name) || metrics_put_escaped(b, help, 0) ||
        buf_printf(b, "\n# TYPE %s %s\n", name, type))
        return -1;
    return 0;
}

/* name{l1="v1",...[,le="x"]} value\n. `le` may be NULL. */
static int metrics_put_sample(buf *b, const metrics_family *f, const char *suffix,
                              const metrics_series *s, const char *le, double v)
{
    if (buf_puts(b, f->name) || buf_puts(b, suffix))
        return -1;
    if (f->nlabels || le) {
        if (buf_puts(b, "{"))
            return -1;
        for (size_t i = 0; i < f->nlabels; i++)
            if (buf_printf(b, "%s%s=\"", i ? "," : "", f->labels[i]) ||
                metrics_put_escaped(b, s->values[i], 1) || buf_puts(b, "\""))
                return -1;
        if (le && buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le))
            return -1;
        if (buf_puts(b, "}"))
            return -1;
    }
    if (buf_puts(b, " ") || metrics_put_number(b, v) || buf_puts(b, "\n"))
        return -1;
    return 0;
}

static int metrics_put_series(buf *b, const metrics_family *f, const metrics_series *s)
{
    if (f->type != METRICS_HISTOGRAM)
        return metrics_put_sample(b, f, "", s, NULL, s->value);
    uint64_t cum = 0;
    for (size_t i = 0; i < f->nbuckets; i++) {
        buf le;
        buf_init(&le, 64);
        cum += s->counts[i];
        int rc = metrics_put_number(&le, f->buckets[i]);
        if (!rc)
            rc = metrics_put_sample(b, f, "_bucket", s, le.data, (double)cum);
        buf_free(&le);
        if (rc)
            return -1;
    }
    if (metrics_put_sample(b, f, "_bucket", s, "+Inf", (double)s->count) ||
        metrics_put_sample(b, f, "_sum", s, NULL, s->sum) ||
        metrics_put_sample(b, f, "_count", s, NULL, (double)s->count))
        return -1;
    return 0;
}

static int metrics_put_family(buf *b, const metrics_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    if (metrics_put_header(b, f->name, f->help, type_names[f->type]))
        return -1;
    /* The list is newest first: walk it backwards for creation order. */
    const metrics_series **order = NULL;
    if (f->nseries) {
        order = malloc(f->nseries * sizeof *order);
        if (!order)
            return -1;
    }
    size_t n = 0;
    for (const metrics_series *s = f->series; s; s = s->next)
        order[n++] = s;
    int rc = 0;
    while (n > 0 && rc == 0)
        rc = metrics_put_series(b, f, order[--n]);
    free(order);
    return rc;
}

/* Reads a small /proc file into dst (NUL-terminated). Returns 0 or -1. */
static int metrics_read_proc(const char *path, char *dst, size_t size)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    size_t n = fread(dst, 1, size - 1, fp);
    int bad = ferror(fp);
    fclose(fp);
    if (bad)
        return -1;
    dst[n] = '\0';
    return 0;
}

static int metrics_put_process_value(buf *b, const char *name, const char *help,
                                      const char *type, double v)
{
    if (metrics_put_header(b, name, help, type) || buf_printf(b, "%s ", name) ||
        metrics_put_number(b, v) || buf_puts(b, "\n"))
        return -1;
    return 0;
}

/* The standard process_* metrics. A value /proc cannot give is left out. */
static int metrics_put_process(buf *b)
{
    char stat[4096], pstat[16384];
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tck > 0 && page > 0 && metrics_read_proc("/proc/self/stat", stat, sizeof stat) == 0) {
        /* Fields after "(comm)": state is field 3; utime 14, stime 15,
         * starttime 22, vsize 23, rss 24. comm may hold spaces and ')'. */
        const char *p = strrchr(stat, ')');
        unsigned long long fld[22] = {0};
        int nf = 0;
        if (p) {
            p++;
            while (nf < 22) {
                while (*p == ' ')
                    p++;
                if (!*p)
                    break;
                char *end = NULL;
                fld[nf++] = strtoull(p, &end, 10); /* the state letter gives 0 */
                while (*end && *end != ' ')
                    end++;
                p = end;
            }
        }
        if (nf == 22) {
            double cpu = (double)(fld[11] + fld[12]) / (double)tck;
            if (metrics_put_process_value(b, "process_cpu_seconds_total",
                                          "Total user and system CPU time spent in seconds.",
                                          "counter", cpu) ||
                metrics_put_process_value(b, "process_virtual_memory_bytes",
                                          "Virtual memory size in bytes.", "gauge",
                                          (double)fld[20]) ||
                metrics_put_process_value(b, "process_resident_memory_bytes",
                                          "Resident memory size in bytes.", "gauge",
                                          (double)fld[21] * (double)page))
                return -1;
            const char *bt = NULL;
            if (metrics_read_proc("/proc/stat", pstat, sizeof pstat) == 0)
                bt = strstr(pstat, "\nbtime ");
            if (bt) {
                double start = (double)strtoull(bt + 7, NULL, 10) + (double)fld[19] / (double)tck;
                if (metrics_put_process_value(
                        b, "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.", "gauge", start))
                    return -1;
            }
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long nfd = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                nfd++;
        closedir(d);
        nfd--; /* the directory's own descriptor */
        if (metrics_put_process_value(b, "process_open_fds", "Number of open file descriptors.",
                                      "gauge", (double)(nfd > 0 ? nfd : 0)))
            return -1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        if (metrics_put_process_value(b, "process_max_fds",
                                      "Maximum number of open file descriptors.", "gauge",
                                      (double)rl.rlim_cur))
            return -1;
    }
    return 0;
}

char *metrics_render(metrics *m, size_t *len)
{
    buf b;
    buf_init(&b, METRICS_RENDER_MAX);
    if (!m)
        return NULL;

    /* Copy the callbacks, then run them without the lock: they set gauges. */
    metrics_collect_fn fns[METRICS_MAX_COLLECTORS];
    void *ctxs[METRICS_MAX_COLLECTORS];
    pthread_mutex_lock(&m->lock);
    size_t nc = m->ncollectors;
    for (size_t i = 0; i < nc; i++) {
        fns[i] = m->collectors[i].fn;
        ctxs[i] = m->collectors[i].ctx;
    }
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < nc; i++)
        fns[i](ctxs[i]);

    pthread_mutex_lock(&m->lock);
    int rc = 0;
    for (const metrics_family *f = m->first; f && rc == 0; f = f->next)
        rc = metrics_put_family(&b, f);
    pthread_mutex_unlock(&m->lock);
    if (rc || metrics_put_process(&b))
        goto fail;
    return buf_take(&b, len);

fail:
    buf_free(&b);
    return NULL;
}
