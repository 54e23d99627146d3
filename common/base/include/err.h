/*
 * err.h - the error model shared by every module and service.
 *
 * A function that can fail takes an `err *` and, on failure, fills it with one
 * of the codes of SPEC §2 and a human message. Handlers hand the same struct to
 * http_reply_err(), so an error is described once, where it happens, and
 * rendered once, in common/http_server.c.
 */
#ifndef ESKIT_ERR_H
#define ESKIT_ERR_H

#include <jansson.h>

#define WUR __attribute__((warn_unused_result))

typedef enum err_code {
    ERR_NONE = 0,
    ERR_INVALID_ARGUMENT,       /* 400 */
    ERR_UNAUTHENTICATED,        /* 401 */
    ERR_NOT_FOUND,              /* 404 */
    ERR_METHOD_NOT_ALLOWED,     /* 405 */
    ERR_CONFLICT,               /* 409 */
    ERR_PAYLOAD_TOO_LARGE,      /* 413 */
    ERR_UNSUPPORTED_MEDIA_TYPE, /* 415 */
    ERR_GONE,                   /* 410 */
    ERR_UNPROCESSABLE,          /* 422 */
    ERR_INTERNAL,               /* 500 */
    ERR_UNAVAILABLE             /* 503 */
} err_code;

typedef struct err {
    err_code code;
    char message[512];
    json_t *details; /* owned: NULL or an object, freed by err_clear() */
} err;

#define ERR_INIT {ERR_NONE, {0}, NULL}

/* Sets code and message (printf format; bytes that are not UTF-8 become
 * '?'). Any previous details are freed. */
void err_set(err *e, err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like err_set, and takes ownership of `details` (an object, may be NULL). */
void err_set_details(err *e, err_code code, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Frees details and resets to ERR_NONE. Safe on a cleared err. */
void err_clear(err *e);

/* Moves src into dst (dst is cleared first); src is left cleared. */
void err_move(err *dst, err *src);

const char *err_code_name(err_code code); /* "invalid_argument", ... */
int err_code_status(err_code code);       /* 400, ... */

#endif
