/*
 * es_slot.h - the open-addressing tables of a group transaction
 * (es_group.c): the streams a group touches and its event ids, each a table
 * of structs keyed by a borrowed id string, looked up by the id's hash
 * (strhash.h) with linear probing. Nothing is ever removed; the caller
 * sizes a table so that a free slot is always left.
 */
#ifndef ES_SLOT_H
#define ES_SLOT_H

#include <stdbool.h>
#include <stddef.h>

/* The slot of `id` in an open-addressing table of `cap` (a power of two)
 * slots of `size` bytes, each a struct whose first member is its key
 * (`const char *id`, NULL when free): the slot holding it, else, with
 * `add`, a free one now keyed by it (the caller sized the table so that one
 * is left), else NULL. */
void *es_slot(void *slots, size_t size, size_t cap, const char *id, bool add);

#endif
