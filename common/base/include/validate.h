/*
 * validate.h - the syntactic rules of SPEC §2: ids, entity types, event
 * types, log selectors and UTF-8 text. Pure functions, no allocation.
 */
#ifndef ESKIT_VALIDATE_H
#define ESKIT_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#define VALIDATE_ID_MAX 128
#define VALIDATE_TYPE_MAX 200

/* 1-128 characters of A-Z a-z 0-9 . _ : @ - */
bool validate_id(const char *s);
/* One or more segments of A-Z a-z 0-9 _ - joined by '.', at most 200 chars. */
bool validate_entity_type(const char *s);
/* An entity type, '.', an event name; on success *entity_len is the length
 * of the entity type (the event name starts at s + *entity_len + 1). */
bool validate_event_type(const char *s, size_t *entity_len);

/* A UUID in canonical text form (8-4-4-4-12 hex digits, either case). On
 * success `out` gets it in lowercase, NUL-terminated. */
#define VALIDATE_UUID_LEN 37 /* 36 characters and the NUL */
bool validate_uuid(const char *s, char out[VALIDATE_UUID_LEN]);

/* A log selector: "*", or ENTITY.EVENT where either side may be "*". */
typedef struct log_selector {
    char entity[VALIDATE_TYPE_MAX + 1]; /* "" = any */
    char event[VALIDATE_TYPE_MAX + 1];  /* "" = any */
} log_selector;

bool validate_selector(const char *s, log_selector *out);

/* The length (1 to 4) of the valid UTF-8 sequence that starts s[0..n), or 0
 * when it is invalid or cut short (overlong forms, surrogates and code
 * points above U+10FFFF are invalid). n must be at least 1. */
size_t validate_utf8_char(const char *s, size_t n);
/* s[0..len) is UTF-8 text: valid sequences only, and no NUL byte (which a C
 * string would silently end at). */
bool validate_utf8_text(const char *s, size_t len);

#endif
