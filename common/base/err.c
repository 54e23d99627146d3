/*
 * err.c - the error codes of SPEC §2 and the err struct that carries them
 * from where a failure happens to the one place that renders it.
 *
 * A message is always UTF-8: it may quote what a client sent (a query value,
 * a header) or be cut inside a character, so each byte that does not start
 * a valid UTF-8 sequence is replaced by '?', and the message can always be
 * rendered as a JSON string.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

static const struct {
    const char *name;
    int status;
} err_table[] = {
    [ERR_NONE] = {"ok", 200},
    [ERR_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [ERR_UNAUTHENTICATED] = {"unauthenticated", 401},
    [ERR_NOT_FOUND] = {"not_found", 404},
    [ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [ERR_CONFLICT] = {"conflict", 409},
    [ERR_PAYLOAD_TOO_LARGE] = {"payload_too_large", 413},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415},
    [ERR_GONE] = {"gone", 410},
    [ERR_UNPROCESSABLE] = {"unprocessable", 422},
    [ERR_INTERNAL] = {"internal", 500},
    [ERR_UNAVAILABLE] = {"unavailable", 503},
};

static void err_vset(err *e, err_code code, json_t *details, const char *fmt, va_list ap)
{
    if (e->details)
        json_decref(e->details);
    e->code = code;
    e->details = details;
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    size_t len = strlen(e->message);
    for (size_t i = 0; i < len;) {
        size_t k = validate_utf8_char(e->message + i, len - i);
        if (k == 0)
            e->message[i++] = '?';
        else
            i += k;
    }
}

void err_set(err *e, err_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, NULL, fmt, ap);
    va_end(ap);
}

void err_set_details(err *e, err_code code, json_t *details, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(e, code, details, fmt, ap);
    va_end(ap);
}

void err_clear(err *e)
{
    if (e->details)
        json_decref(e->details);
    e->details = NULL;
    e->code = ERR_NONE;
    e->message[0] = '\0';
}

void err_move(err *dst, err *src)
{
    err_clear(dst);
    *dst = *src;
    src->details = NULL;
    src->code = ERR_NONE;
    src->message[0] = '\0';
}

const char *err_code_name(err_code code)
{
    if ((unsigned)code >= sizeof err_table / sizeof err_table[0])
        return "internal";
    return err_table[code].name;
}

int err_code_status(err_code code)
{
    if ((unsigned)code >= sizeof err_table / sizeof err_table[0])
        return 500;
    return err_table[code].status;
}
