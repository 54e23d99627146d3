/*
 * es_group.h - one group transaction of the committer (es_append.c): the
 * appends of many requests checked, numbered and written together.
 *
 * Two paths write a group. The one-statement path decides versions from the
 * committer's memory (es_vcache.h) and sends everything at once; the
 * statement checks that memory under the log lock and writes only when it
 * holds, else it returns the true versions and the group is tried once more.
 * The general path (two round trips) reads the head and the versions under
 * the lock, then writes: for a back end without the statement (SQLite), a
 * stream that moved again between the two tries, or a group holding event
 * ids that are stored already.
 *
 * Idempotent appends (SPEC §3) are decided here too, under the log lock: a
 * job whose events all carry ids that are stored already, with the same
 * content, is a retry and is answered with the stored events; a job whose
 * ids are partly stored, or stored with other content, is a conflict naming
 * the id. A job that repeats the ids of an earlier job of the same group is
 * judged against that job's events in the same way.
 */
#ifndef ES_GROUP_H
#define ES_GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "err.h"
#include "es_event.h"
#include "es_vcache.h"
#include "metrics.h"

typedef struct es_gjob {
    es_event *events; /* versions, log ids and recorded_at filled when ok */
    size_t n;
    err e;            /* why the job failed, when it failed alone (a conflict) */
    bool ok;
    bool replayed;    /* ok, and every event was stored already: a retry that
                         wrote nothing and whose events are the stored ones */
} es_gjob;

typedef struct es_group_ctx {
    db *conn;
    es_vcache *vc;  /* remembered versions; updated after each commit */
    bool one_stmt;  /* try the one-statement path; cleared when the back end lacks it */
    metrics_family *m_groups; /* committed groups by path, or NULL */
    bool unknown;   /* after a failed run: the connection was lost while the
                       commit was under way, so it may have been written */
} es_group_ctx;

/*
 * Runs jobs[0..n) as one transaction. Returns DB_OK when the transaction
 * committed (or had nothing to write); jobs are then marked ok or failed
 * individually. Any other status: no job is marked ok, and nothing was
 * written unless g->unknown says the commit's outcome is unknown.
 */
db_status es_group_run(es_group_ctx *g, es_gjob **jobs, size_t n);

#endif
