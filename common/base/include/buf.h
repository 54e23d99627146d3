/*
 * buf.h - a growable byte buffer with a hard size cap.
 *
 * Every append is checked: it returns 0, or -1 when memory runs out or the
 * cap would be passed (the buffer is then unchanged). The contents are always
 * NUL-terminated. buf_take() hands the bytes over to the caller.
 */
#ifndef ESKIT_BUF_H
#define ESKIT_BUF_H

#include <stddef.h>

#include "err.h"

typedef struct buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* the cap on len */
} buf;

void buf_init(buf *b, size_t max);
int buf_append(buf *b, const void *data, size_t len) WUR;
int buf_puts(buf *b, const char *s) WUR;
int buf_printf(buf *b, const char *fmt, ...) WUR __attribute__((format(printf, 2, 3)));
/* Returns the NUL-terminated contents (never NULL: "" when empty); the caller
 * frees it. The buffer is left empty and reusable. */
char *buf_take(buf *b, size_t *len);
void buf_reset(buf *b); /* empties, keeps the memory */
void buf_free(buf *b);

#endif
