/*
 * crud_sync.h - the CRUD store's read barrier. Before a read is answered
 * from the cache, the cache catches up with the event store's log to a head
 * that was read *after* the read began, so the answer includes every write
 * acknowledged before it, by this replica or any other (crud_cache.h says
 * how log entries make cache entries stale).
 *
 * Concurrent readers share one log read: the first to arrive reads the log
 * (GET /v1/logs from the cache's position), the others wait for the next
 * read that starts after they arrived. Under load one event-store call
 * serves many reads, instead of one call per read.
 *
 * A round also learns the log head: a request that takes a ticket when it
 * begins can ask, after any number of waits, for the head of a round that
 * began after that moment (the query index's read barrier catches up to it,
 * so a _find costs one shared log read, not one per barrier).
 */
#ifndef CRUD_SYNC_H
#define CRUD_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "crud_cache.h"
#include "err.h"
#include "http_client.h"
#include "metrics.h"

typedef struct crud_sync crud_sync;

/* Log entries read per catch-up; a cache further behind skips ahead (every
 * entry uncovered) instead of reading the whole backlog. */
#define CRUD_SYNC_PAGE 1000

/* `rounds` and `skips` (counters, may be NULL) count log reads and
 * skips. NULL on OOM. */
crud_sync *crud_sync_new(http_client *es, crud_cache *cache, metrics_family *rounds,
                         metrics_family *skips) WUR;
void crud_sync_free(crud_sync *s);

/* Returns once the cache has seen the log up to a head read after the call
 * began. False with e set (unavailable when the event store cannot be
 * reached) when the log read this caller waited for failed. */
bool crud_sync_wait(crud_sync *s, err *e) WUR;

/* A request's place among the rounds, taken when it begins. */
typedef uint64_t crud_sync_ticket;
crud_sync_ticket crud_sync_arrive(crud_sync *s);

/* Returns once a round that began after ticket t was taken has succeeded
 * (at once when one already has), and sets *head to the log head the newest
 * such round read: every write acknowledged before t is at or below it.
 * False with e set when the round this caller waited for failed. */
bool crud_sync_wait_since(crud_sync *s, crud_sync_ticket t, int64_t *head, err *e) WUR;

#endif
