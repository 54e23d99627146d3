/*
 * uuid4.h - UUIDs from libuuid: random ones (version 4) and name-based ones
 * (version 5: SHA-1 of a name in eskit's own namespace), in lower case.
 */
#ifndef ESKIT_UUID4_H
#define ESKIT_UUID4_H

#include <stddef.h>

#define UUID4_LEN 37 /* 36 characters and the NUL */

void uuid4_generate(char out[UUID4_LEN]);

/* The version-5 UUID of name[0..len) in eskit's namespace: the same name
 * always gives the same UUID, in every process (derived ids and event ids). */
void uuid4_from_name(char out[UUID4_LEN], const char *name, size_t len);

#endif
