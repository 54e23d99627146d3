/*
 * validate.c - the syntax of SPEC §2: ids, entity types, event types and the
 * log selectors of GET /v1/logs. Handlers call these before anything touches
 * storage, so every malformed name is refused with 400 in one consistent way.
 * Also UTF-8 text, for what the HTTP server takes from a request line.
 * Pure functions over bytes; no locale, no allocation.
 */
#include "validate.h"

#include <string.h>

static bool validate_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A character of an entity-type segment or an event name: A-Z a-z 0-9 _ - */
static bool validate_name_char(char c)
{
    return validate_alnum(c) || c == '_' || c == '-';
}

bool validate_id(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (n >= VALIDATE_ID_MAX)
            return false;
        if (!validate_alnum(c) && c != '.' && c != '_' && c != ':' && c != '@' && c != '-')
            return false;
    }
    return n > 0;
}

bool validate_uuid(const char *s, char out[VALIDATE_UUID_LEN])
{
    if (s == NULL)
        return false;
    for (size_t i = 0; i < VALIDATE_UUID_LEN - 1; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false; /* also the NUL of a short string */
        }
        out[i] = c;
    }
    if (s[VALIDATE_UUID_LEN - 1] != '\0')
        return false;
    out[VALIDATE_UUID_LEN - 1] = '\0';
    return true;
}

/* Checks the first `len` bytes of s as one or more non-empty segments joined
 * by single dots. Sets *last_dot to the index of the last dot, or -1. */
static bool validate_segments(const char *s, size_t len, long *last_dot)
{
    if (len == 0 || len > VALIDATE_TYPE_MAX)
        return false;
    size_t seg = 0; /* length of the current segment */
    *last_dot = -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (seg == 0)
                return false; /* leading dot or ".." */
            seg = 0;
            *last_dot = (long)i;
        } else if (validate_name_char(c)) {
            seg++;
        } else {
            return false;
        }
    }
    return seg > 0; /* no trailing dot */
}

bool validate_entity_type(const char *s)
{
    long last_dot;
    return s != NULL && validate_segments(s, strlen(s), &last_dot);
}

bool validate_event_type(const char *s, size_t *entity_len)
{
    long last_dot;
    if (s == NULL || !validate_segments(s, strlen(s), &last_dot) || last_dot < 0)
        return false; /* an event type needs an entity type and an event name */
    if (entity_len)
        *entity_len = (size_t)last_dot;
    return true;
}

/* One event name: a single segment of A-Z a-z 0-9 _ - */
static bool validate_event_name(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!validate_name_char(s[i]))
            return false;
    return true;
}

bool validate_selector(const char *s, log_selector *out)
{
    if (s == NULL)
        return false;
    size_t len = strlen(s);
    /* A selector never needs to be longer than the event types it matches. */
    if (len == 0 || len > VALIDATE_TYPE_MAX)
        return false;
    if (strcmp(s, "*") == 0) {
        out->entity[0] = '\0';
        out->event[0] = '\0';
        return true;
    }
    const char *dot = strrchr(s, '.');
    if (dot == NULL)
        return false;
    size_t left_len = (size_t)(dot - s);
    const char *right = dot + 1;
    size_t right_len = len - left_len - 1;

    long last_dot;
    bool left_any = left_len == 1 && s[0] == '*';
    bool right_any = right_len == 1 && right[0] == '*';
    if (!left_any && !validate_segments(s, left_len, &last_dot))
        return false;
    if (!right_any && !validate_event_name(right, right_len))
        return false;

    /* Both sides are shorter than len <= VALIDATE_TYPE_MAX: they fit. */
    if (left_any) {
        out->entity[0] = '\0';
    } else {
        memcpy(out->entity, s, left_len);
        out->entity[left_len] = '\0';
    }
    if (right_any) {
        out->event[0] = '\0';
    } else {
        memcpy(out->event, right, right_len);
        out->event[right_len] = '\0';
    }
    return true;
}

size_t validate_utf8_char(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    unsigned cp;
    if (u[0] < 0x80)
        return 1;
    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        len = 2;
        cp = u[0] & 0x1fu;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        len = 3;
        cp = u[0] & 0x0fu;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        len = 4;
        cp = u[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool validate_utf8_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = s[i] == '\0' ? 0 : validate_utf8_char(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}
