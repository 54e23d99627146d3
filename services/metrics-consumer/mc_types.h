/*
 * mc_types.h - which entity types are registered in the CRUD store
 * (GET {crud}/v1/types/{entity_type}: 200 yes, 404 no), cached so that the
 * CRUD store is asked once per type and TTL, not once per event.
 */
#ifndef MC_TYPES_H
#define MC_TYPES_H

#include <stdbool.h>

typedef struct mc_types mc_types;

/* NULL on OOM or a URL that is not http(s)://. token may be NULL. */
mc_types *mc_types_new(const char *crud_url, const char *token);
void mc_types_free(mc_types *t);

/*
 * Whether entity_type is registered: from the cache, or one lookup. When the
 * CRUD store cannot answer, a type not known as registered counts as not
 * registered and is asked again a few seconds later (so its events seen
 * meanwhile are not counted in eskit_crud_events_total). Thread-safe.
 */
bool mc_types_registered(mc_types *t, const char *entity_type);

#endif
