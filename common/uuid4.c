/*
 * uuid4.c - random (version 4) UUIDs, the ids the services mint themselves
 * (e.g. for CRUD entities created without a client-chosen id). libuuid reads
 * the kernel's random source and sets the version and variant bits; we only
 * render the result in lower case, the form used everywhere in the API.
 */
#include "uuid4.h"

#include <uuid/uuid.h>

void uuid4_generate(char out[UUID4_LEN])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}
