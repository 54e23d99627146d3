/*
 * uuid4.h - random (version 4) UUIDs from libuuid.
 */
#ifndef ESKIT_UUID4_H
#define ESKIT_UUID4_H

#define UUID4_LEN 37 /* 36 characters and the NUL */

void uuid4_generate(char out[UUID4_LEN]);

#endif
