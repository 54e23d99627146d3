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

void uuid4_from_name(char out[UUID4_LEN], const char *name, size_t len)
{
    /* eskit's namespace: a random UUID chosen once; never change it, or
     * every derived id changes with it */
    static const uuid_t ns = {0x5b, 0x3e, 0x6f, 0x0a, 0x91, 0x2c, 0x4d, 0x17,
                              0xa8, 0x44, 0x0e, 0x6b, 0xd2, 0x59, 0x73, 0xc1};
    uuid_t u;
    uuid_generate_sha1(u, ns, name, len);
    uuid_unparse_lower(u, out);
}
