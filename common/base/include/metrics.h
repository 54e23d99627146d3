/*
 * metrics.h - a Prometheus registry: counters, gauges and histograms with
 * labels, rendered in text exposition format 0.0.4, plus the standard
 * process_* metrics (read from /proc at render time).
 *
 * Families are created at start-up; series (one per set of label values) are
 * created on first use. All calls are thread-safe.
 */
#ifndef ESKIT_METRICS_H
#define ESKIT_METRICS_H

#include <stddef.h>

typedef struct metrics metrics;
typedef struct metrics_family metrics_family;

/* Returns a new registry (process_* metrics included), or NULL on OOM. */
metrics *metrics_new(void);
void metrics_free(metrics *m);

/*
 * Declare a family. `labels` is a comma-separated list of label names
 * ("method,route,code") or NULL for none. The registry owns the family.
 * Returns NULL on OOM or a bad name.
 */
metrics_family *metrics_counter(metrics *m, const char *name, const char *help,
                                const char *labels);
metrics_family *metrics_gauge(metrics *m, const char *name, const char *help,
                              const char *labels);
/* `buckets`: ascending upper bounds, without +Inf; NULL for the default
 * latency buckets (0.0005 s … 10 s). */
metrics_family *metrics_histogram(metrics *m, const char *name, const char *help,
                                  const char *labels, const double *buckets, size_t nbuckets);

/* `values`: one string per label, in declaration order (NULL when no labels). */
void metrics_add(metrics_family *f, const char *const *values, double v);     /* counter, gauge */
void metrics_set(metrics_family *f, const char *const *values, double v);     /* gauge */
void metrics_observe(metrics_family *f, const char *const *values, double v); /* histogram */

/* A callback run at the start of every render, to set gauges computed on
 * demand (lag, offsets). At most 8 per registry. */
typedef void (*metrics_collect_fn)(void *ctx);
void metrics_on_render(metrics *m, metrics_collect_fn fn, void *ctx);

/* Renders every family. Returns a NUL-terminated string the caller frees, or
 * NULL on OOM. */
char *metrics_render(metrics *m, size_t *len);

#endif
