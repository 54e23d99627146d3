/*
 * es_reads.h - where the event store's reads run (SPEC §8, "Reading from
 * standbys"): stream reads, log reads, long polls, SSE and stream listings
 * go to the hot standbys of ESKIT_DATABASE_READ_URL when it is set, else to
 * the primary's pool. Writes (and snapshots) always use the primary.
 *
 * Two promises hold whatever the standbys do:
 *
 * - Read-your-writes: a read shows at least every log entry this process
 *   had acknowledged when it began (es_reads_floor). A standby connection
 *   that has not replayed that far is waited for, up to ES_READS_WAIT_MS,
 *   polling its head; past that, the read runs on the primary.
 * - No read fails for a standby's sake: a standby whose statement fails,
 *   whose connection breaks, or which does not answer within
 *   ES_READS_TIMEOUT_MS (paused, its machine gone), or which lags past the
 *   wait, is left: reads go to the primary until a prober thread finds it
 *   well (and caught up) again.
 *
 * The log guarantee needs nothing more: log ids are taken under the log
 * lock and commit in id order, so a standby, replaying commits in order,
 * shows a prefix of the log at every moment.
 *
 * A read takes an es_rconn, runs, and hands what it saw to es_reads_after()
 * (log reads and batches of stream reads learn the head in the same round
 * trip); a read that learns no head calls es_reads_ensure() first.
 */
#ifndef ES_READS_H
#define ES_READS_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "metrics.h"

#define ES_READS_WAIT_MS 1000    /* a read waits this long for a standby to replay */
#define ES_READS_TIMEOUT_MS 2000 /* a standby statement with no answer by then fails */

typedef struct es_reads es_reads;

/* A connection a read runs on, and where it came from. */
typedef struct es_rconn {
    db *d;        /* NULL once handed back */
    bool standby; /* from the read pool (ESKIT_DATABASE_READ_URL) */
} es_rconn;

/* What a read does next (es_reads_after, es_reads_ensure). */
typedef enum es_next {
    ES_KEEP,   /* keep the outcome (or, from ensure: run the read on c) */
    ES_AGAIN,  /* run the read again on c: it has caught up, or is the primary now */
    ES_LATER,  /* (without waiting only) c was handed back: run the read where
                * it may wait */
    ES_FAILED, /* c was handed back and e says why (no primary either) */
} es_next;

/* `primary` is the pool of ESKIT_DATABASE_URL, which must outlive the
 * result; `read_url` NULL (every read on the primary) or a PostgreSQL URL
 * of hot standbys, for a pool of `size`. `m` gets
 * eskit_db_reads_total{on} and eskit_standby_fallbacks_total{reason}.
 * NULL on failure. */
es_reads *es_reads_new(db_pool *primary, const char *read_url, int size, metrics *m) WUR;
void es_reads_free(es_reads *rs);

/* The committer, before it answers: log entries up to `log_id` are
 * acknowledged (raises the floor, and the known head). */
void es_reads_acked(es_reads *rs, int64_t log_id);
/* The listener: the log is known to reach `log_id` (a commit notified by
 * another replica, or the head read after reconnecting). */
void es_reads_known(es_reads *rs, int64_t log_id);
/* The highest log id this process acknowledged: what a read beginning now
 * must show. */
int64_t es_reads_floor(es_reads *rs);
/* The highest log id this process knows to exist: what a reader about to
 * wait for more must have seen (else it would sleep through it). */
int64_t es_reads_known_head(es_reads *rs);

/* The log head as reads see it now (a standby's, when there is one): for
 * the listener while it has no primary to listen to. False when it cannot
 * be read. */
bool es_reads_head(es_reads *rs, int64_t *head) WUR;

/* A connection for a read: a standby's unless there is none that is well,
 * else the primary's. With `wait` it may block for one; without, it takes
 * only an open, free one. 1 with c filled, 0 (without wait) when none is
 * free now, -1 with e set (unavailable). */
int es_reads_get(es_reads *rs, bool wait, es_rconn *c, err *e) WUR;
/* Hands c back (nothing when c->d is NULL). */
void es_reads_put(es_reads *rs, es_rconn *c);

/*
 * After a read ran on c: `ok` whether it succeeded (else e says why),
 * `head` the highest log id it could see (when ok), `floor` what it must
 * show. ES_KEEP: the outcome stands (a success showing floor, or a failure
 * on the primary, e as it was). ES_AGAIN: c waited for its standby to
 * replay that far, or was moved to the primary; e is cleared: run again.
 * ES_LATER (only without `wait`, which never blocks): c was handed back.
 * ES_FAILED: c was handed back, e set.
 */
es_next es_reads_after(es_reads *rs, es_rconn *c, bool ok, int64_t head, int64_t floor,
                       bool wait, err *e) WUR;

/* Before a read that learns no head: makes c show at least `floor` (asking
 * its standby for its head when it may not). ES_KEEP: run the read on c;
 * ES_LATER and ES_FAILED as above. */
es_next es_reads_ensure(es_reads *rs, es_rconn *c, int64_t floor, bool wait, err *e) WUR;

#endif
