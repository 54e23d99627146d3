/*
 * es_read.h - the read path of GET /v1/events/{id}: a few reader threads
 * that gather the stream reads of all requests into batches.
 *
 * A request hands its read to es_read_submit() and is woken when the answer
 * is rendered. A free reader takes every waiting read (up to a cap) and runs
 * them on one pooled connection as one pipeline (db_pipeline: one round trip
 * to PostgreSQL for the whole batch, one by one on SQLite), so the database
 * wakes once per batch instead of once per read, as the committer does for
 * appends. Two kinds of read skip the batches: a read that finds no other
 * under way runs at once where it is (es_read_now: alone, it has no batch
 * to join and no thread to wake), and a long one (es_read_big) runs alone
 * on a thread that may wait (es_read_wait), so that it holds up no short
 * read queued after it.
 */
#ifndef ES_READ_H
#define ES_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "db_reads.h"
#include "es_store.h"

typedef struct es_reader es_reader;

/* One stream read. The caller fills q's query and the wake-up, and owns
 * the job; the reader fills q.out, q.e, q.ok and q.last (es_store.h). */
typedef struct es_read_job {
    es_stream_read q; /* q.id must stay valid until woken */
    void (*wake)(void *ctx);
    void *ctx;
    struct es_read_job *next; /* the reader's */
} es_read_job;

/* Starts `threads` readers taking connections from `reads` (which must
 * outlive them). NULL on failure. */
es_reader *es_reader_start(db_reads *reads, int threads) WUR;
/* Finishes the reads already queued, then stops the threads and frees. */
void es_reader_stop(es_reader *rd);

/* Queues the read and returns at once; `wake(ctx)` is called once, from a
 * reader thread, when j->q.ok / j->q.out / j->q.e are set. False with e set
 * when it cannot be queued (the service is stopping); wake is not called.
 * j->q.out is set up here; the caller frees it after the wake (and after
 * es_read_now and es_read_wait too). */
bool es_read_submit(es_reader *rd, es_read_job *j, err *e) WUR;

/* When no other read is queued or running (as far as a quick look tells)
 * and a pooled connection is open and free: runs q here and now and returns
 * true. Otherwise false at once (also when it would have to wait for a
 * standby to replay): queue it. */
bool es_read_now(es_reader *rd, es_stream_read *q) WUR;

/* True when a recent read of the stream says that q asks for many events
 * (a stream not read lately counts as short). */
bool es_read_big(es_reader *rd, const es_stream_read *q);

/* Runs q here and now, waiting for a pooled connection if need be: for a
 * thread that may wait. */
void es_read_wait(es_reader *rd, es_stream_read *q);

#endif
