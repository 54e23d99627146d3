/*
 * es_vcache.h - the committer's memory of stream versions.
 *
 * After each commit the committer knows the version of every stream it
 * wrote. With that memory it can decide a group's versions before it talks
 * to the database, and send the whole group in one statement that checks
 * the remembered versions under the log lock (es_group.c). The memory is
 * only a guess: a wrong or missing entry costs the general path, never a
 * wrong answer. It belongs to the committer thread (no locking).
 */
#ifndef ES_VCACHE_H
#define ES_VCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct es_vcache es_vcache;

/* A cache of at most `cap` streams (rounded up to a power of two); when it
 * fills, it forgets everything and starts again. NULL on OOM. */
es_vcache *es_vcache_new(size_t cap) WUR;
void es_vcache_free(es_vcache *vc);
/* The remembered version of stream `id`, or 0 when none is remembered. */
int64_t es_vcache_get(const es_vcache *vc, const char *id);
/* Remembers a version (0: none, the same as forgotten). Out of memory just
 * forgets. */
void es_vcache_put(es_vcache *vc, const char *id, int64_t version);
/* Forgets everything. */
void es_vcache_clear(es_vcache *vc);

#endif
