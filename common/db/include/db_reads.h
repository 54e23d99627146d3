/*
 * db_reads.h - where a service's reads run (SPEC §8, "Reading from
 * standbys"): on the hot standbys of ESKIT_DATABASE_READ_URL when it is set,
 * else on the primary's pool; writes always use the primary. The event
 * store sends stream reads, log reads, long polls, SSE and stream listings
 * here, the CRUD store the reads of its query index.
 *
 * The "head" is a number that only grows on the primary and that a standby
 * shows as far as it has replayed: the log head for the event store, the
 * query index's log offset for the CRUD store. The caller gives the
 * statement that reads it (db_reads_head_fn).
 *
 * Two promises hold whatever the standbys do:
 *
 * - Read-your-writes: a read shows at least the head this process had
 *   acknowledged when it began (db_reads_floor). A standby connection
 *   that has not replayed that far is waited for, up to DB_READS_WAIT_MS,
 *   polling its head; past that, the read runs on the primary.
 * - No read fails for a standby's sake: a standby whose statement fails,
 *   whose connection breaks, or which does not answer within
 *   DB_READS_TIMEOUT_MS (paused, its machine gone), or which lags past the
 *   wait, is left: reads go to the primary until a prober thread finds it
 *   well (and caught up) again.
 *
 * The event store's log guarantee needs nothing more: log ids are taken
 * under the log lock and commit in id order, so a standby, replaying
 * commits in order, shows a prefix of the log at every moment.
 *
 * A read takes a db_rconn, runs, and hands what it saw to db_reads_after()
 * (the event store's log reads and batches of stream reads learn the head
 * in the same round trip); a read that learns no head calls
 * db_reads_ensure() first.
 */
#ifndef DB_READS_H
#define DB_READS_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "metrics.h"

#define DB_READS_WAIT_MS 1000    /* a read waits this long for a standby to replay */
#define DB_READS_TIMEOUT_MS 2000 /* a standby statement with no answer by then fails */

typedef struct db_reads db_reads;

/* A connection a read runs on, and where it came from. */
typedef struct db_rconn {
    db *d;        /* NULL once handed back */
    bool standby; /* from the read pool (ESKIT_DATABASE_READ_URL) */
} db_rconn;

/* What a read does next (db_reads_after, db_reads_ensure). */
typedef enum db_reads_next {
    DB_READS_KEEP,   /* keep the outcome (or, from ensure: run the read on c) */
    DB_READS_AGAIN,  /* run the read again on c: it caught up, or is the primary now */
    DB_READS_LATER,  /* (without waiting only) c was handed back: run the read
                      * where it may wait */
    DB_READS_FAILED, /* c was handed back and e says why (no primary either) */
} db_reads_next;

/* Reads the head on d into *head; false with e set. */
typedef bool (*db_reads_head_fn)(db *d, int64_t *head, err *e);

/* `primary` is the pool of ESKIT_DATABASE_URL and `spec` its statements
 * (both must outlive the result); `read_url` NULL (every read on the
 * primary) or a PostgreSQL URL of hot standbys, for a pool of `size`;
 * `head` reads the head. `m` gets eskit_db_reads_total{on} and
 * eskit_standby_fallbacks_total{reason}. NULL on failure. */
db_reads *db_reads_new(db_pool *primary, const db_spec *spec, db_reads_head_fn head,
                       const char *read_url, int size, metrics *m) WUR;
void db_reads_free(db_reads *rs);

/* Before a write is answered: the head it reached, `log_id`, is
 * acknowledged (raises the floor, and the known head). */
void db_reads_acked(db_reads *rs, int64_t log_id);
/* The head is known to reach `log_id` (the event store's listener: a commit
 * notified by another replica, or the head read after reconnecting). */
void db_reads_known(db_reads *rs, int64_t log_id);
/* The highest head this process acknowledged: what a read beginning now
 * must show. */
int64_t db_reads_floor(db_reads *rs);
/* The highest head this process knows to exist: what a reader about to
 * wait for more must have seen (else it would sleep through it). */
int64_t db_reads_known_head(db_reads *rs);

/* The head as reads see it now (a standby's, when there is one): for
 * the listener while it has no primary to listen to. False when it cannot
 * be read. */
bool db_reads_head(db_reads *rs, int64_t *head) WUR;

/* A connection for a read: a standby's unless there is none that is well,
 * else the primary's. With `wait` it may block for one; without, it takes
 * only an open, free one. 1 with c filled, 0 (without wait) when none is
 * free now, -1 with e set (unavailable). */
int db_reads_get(db_reads *rs, bool wait, db_rconn *c, err *e) WUR;
/* Hands c back (nothing when c->d is NULL). */
void db_reads_put(db_reads *rs, db_rconn *c);

/* The `head` of db_reads_after for a read that learns none (it made sure of
 * its floor with db_reads_ensure first, and passes floor 0). */
#define DB_READS_NO_HEAD INT64_MAX

/*
 * After a read ran on c: `ok` whether it succeeded (else e says why),
 * `head` the head it could see (when ok; DB_READS_NO_HEAD), `floor` what
 * it must show. DB_READS_KEEP: the outcome stands (a success showing floor, or a
 * failure on the primary, e as it was). DB_READS_AGAIN: c waited for its
 * standby to replay that far, or was moved to the primary; e is cleared:
 * run again. DB_READS_LATER (only without `wait`, which never blocks): c
 * was handed back. DB_READS_FAILED: c was handed back, e set.
 */
db_reads_next db_reads_after(db_reads *rs, db_rconn *c, bool ok, int64_t head,
                             int64_t floor, bool wait, err *e) WUR;

/* Before a read that learns no head: makes c show at least `floor` (asking
 * its standby for its head when it may not). DB_READS_KEEP: run the read on
 * c; DB_READS_LATER and DB_READS_FAILED as above. */
db_reads_next db_reads_ensure(db_reads *rs, db_rconn *c, int64_t floor, bool wait, err *e) WUR;

#endif
