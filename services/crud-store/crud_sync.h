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

#endif
