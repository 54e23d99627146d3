/*
 * es_append.h - the write path: one committer thread that gathers the
 * appends of all requests into group transactions.
 *
 * A request hands its validated events to es_append_submit() and is woken
 * when their transaction committed (or failed). The committer takes every
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
#include "db_reads.h"
#include "metrics.h"
#include "watch.h"

typedef struct es_committer es_committer;

/* Starts the thread. The connection opens lazily (and reopens after a
 * failure: a lost primary is looked for again every ES_RECONNECT_PAUSE).
 * `w` is bumped after every commit, and `reads` learns the highest log id
 * acknowledged (db_reads_acked) before any request is answered; `groups` (a
 * counter labelled "path", or NULL) counts the committed groups. NULL on
 * OOM. */
es_committer *es_committer_start(const char *url, watch *w, db_reads *reads,
                                 metrics_family *groups) WUR;
/* Finishes the appends already queued, then stops the thread and frees. */
void es_committer_stop(es_committer *c);

/*
 * Queues an atomic append of events[0..n) and returns at once: no thread
 * waits for the commit. `wake(ctx)` is called once, from the committer
 * thread, when the outcome is known; es_append_finish() then gives it. The
 * events must stay valid until then. NULL with e set when the append cannot
 * be queued (the service is stopping, out of memory); wake is not called.
 */
typedef struct es_append_job es_append_job;
es_append_job *es_append_submit(es_committer *c, es_event *events, size_t n,
                                void (*wake)(void *ctx), void *ctx, err *e) WUR;
/* The outcome of a woken job, which it frees. On success each event's
 * version, log_id and recorded_at are filled, and *replayed says whether the
 * append was a retry of stored events (nothing written; the events are the
 * stored ones). On failure e is set: conflict (with details.current_version
 * or details.event_id), unavailable, or internal; nothing was written. */
bool es_append_finish(es_append_job *j, bool *replayed, err *e) WUR;

#endif
