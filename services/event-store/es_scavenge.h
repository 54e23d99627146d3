/*
 * es_scavenge.h - the scavenger: a thread that deletes from storage what
 * the streams' retention settings (SPEC §3) no longer keep.
 *
 * Reads apply the settings at once (es_store.c); the scavenger catches the
 * storage up, every `interval_s` seconds or when poked: for each stream with
 * settings, it deletes the events below its first readable version, with
 * their log entries (one table holds both), in transactions of a bounded
 * number of rows with a pause between them, so that appends never wait long
 * for it; then the stream's snapshots below that version. Deleting only
 * makes gaps in the log: it takes no log lock and never deletes the newest
 * log entry (its id is the head, which must never go back). On SQLite it
 * then checkpoints the WAL (after a round that deleted, and when poked after
 * an erasure), so that the deleted bytes (zeroed in the database file by
 * secure_delete) leave the -wal file too; a checkpoint that readers kept
 * from finishing is tried again at the next round.
 */
#ifndef ES_SCAVENGE_H
#define ES_SCAVENGE_H

#include <stdbool.h>

#include "err.h"
#include "metrics.h"

typedef struct es_scavenger es_scavenger;

/* Starts the thread on its own connection to `url` (opened, and reopened
 * after a failure, by the thread). `deleted` (may be NULL) counts the events
 * it deletes. NULL on failure to start. */
es_scavenger *es_scavenger_start(const char *url, int interval_s, metrics_family *deleted) WUR;
/* Wakes it for a round now; `checkpoint`: the WAL needs a checkpoint even
 * if the round deletes nothing. NULL is ignored. */
void es_scavenger_poke(es_scavenger *sc, bool checkpoint);
/* Stops the thread (a round under way ends after its current batch) and
 * frees. NULL is ignored. */
void es_scavenger_stop(es_scavenger *sc);

#endif
