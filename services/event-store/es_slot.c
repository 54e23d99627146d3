/*
 * es_slot.c - the open-addressing tables of a group transaction (es_slot.h).
 */
#include "es_slot.h"

#include <string.h>

#include "strhash.h"

void *es_slot(void *slots, size_t size, size_t cap, const char *id, bool add)
{
    size_t i = (size_t)strhash(id) & (cap - 1);
    for (;;) {
        const char **key = (const char **)((char *)slots + i * size);
        if (!*key) {
            if (add)
                *key = id;
            return add ? key : NULL;
        }
        if (strcmp(*key, id) == 0)
            return key;
        i = (i + 1) & (cap - 1);
    }
}
