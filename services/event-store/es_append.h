/*
 * es_append.h - the write path: one committer thread that gathers the
 * appends of all request threads into group transactions.
 *
 * A request thread hands its validated events to es_append() and sleeps
 * until their transaction committed (or failed). The committer takes every
 * waiting append and runs them as one transaction (es_group.h): it takes the
 * log lock, checks each append's expected versions, assigns versions and log
 * ids, writes all events and streams, and commits once: the lock and the
 * fsync are paid once per group, not once per request.
 */
#ifndef ES_APPEND_H
#define ES_APPEND_H

#include "db.h"
#include "err.h"
#include "es_event.h"
#include "metrics.h"
#include "watch.h"

typedef struct es_committer es_committer;

/* Starts the thread. The connection opens lazily (and reopens after a
 * failure). `w` is bumped after every commit; `groups` (a counter labelled
 * "path", or NULL) counts the committed groups. NULL on OOM. */
es_committer *es_committer_start(const char *url, watch *w, metrics_family *groups) WUR;
/* Finishes the appends already queued, then stops the thread and frees. */
void es_committer_stop(es_committer *c);

/* Appends events atomically. On success, each event's version and log_id
 * are filled. On failure e is set: conflict (with details.current_version),
 * unavailable, or internal; nothing was written. */
bool es_append(es_committer *c, es_event *events, size_t n, err *e) WUR;

#endif
