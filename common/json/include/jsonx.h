/*
 * jsonx.h - jansson helpers: parsing request bodies with SPEC §2 errors,
 * parsing what eskit itself stored or answered, and reading typed members
 * whose error messages name the field.
 *
 * Every getter returns true on success. On failure it fills `e` with
 * invalid_argument and a message naming `field` (the dotted path the client
 * sees, e.g. "originator.version").
 */
#ifndef ESKIT_JSONX_H
#define ESKIT_JSONX_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* Parses one JSON text (UTF-8 checked, nesting depth bounded, integers
 * beyond int64 refused). Returns a new reference, or NULL and e set (400). */
json_t *jsonx_parse(const char *data, size_t len, err *e) WUR;

/*
 * Parses JSON that an eskit service wrote: an event store's answer, stored
 * payload text, a cached document. Every reader of event-store output uses
 * this, never jsonx_parse, because such text may hold what a request may not:
 *  - integers beyond int64: PostgreSQL's jsonb spells the float 1e20 as
 *    100000000000000000000. They become reals (the nearest double). Only
 *    when the plain parse fails on such a number is the text rewritten (each
 *    integer outside int64 gets an exponent, "e0") and parsed again, so text
 *    without one costs one parse, as before;
 *  - "\u0000" inside strings;
 *  - nesting up to jansson's JSON_PARSER_MAX_DEPTH (2048; the event store
 *    takes bodies of up to 900 levels, and wraps them in a few of its own).
 * Returns a new reference, or NULL with e set (internal; e may be NULL).
 */
json_t *jsonx_parse_stored(const char *data, size_t len, err *e) WUR;

/* The deepest nesting of arrays and objects in a valid JSON text (0 for a
 * scalar; "[[1]]" is 2). */
int jsonx_depth(const char *text, size_t len);

/* -1, 0, 1 as a < b, a == b, a > b, for two JSON numbers (exact for int64
 * against double where long double holds both: x86-64, aarch64). */
int jsonx_num_cmp(const json_t *a, const json_t *b);

/* JSON equality where numbers compare by value (1 == 1.0, 100 == 1e2; exact
 * for int64 against double where long double holds both) and object members
 * in any order. */
bool jsonx_equal(const json_t *a, const json_t *b);

/* Compact serialisation; the caller frees the string. NULL on OOM. */
char *jsonx_dump(const json_t *v);

/* `obj` may be NULL (then the member is absent). `*present` (may be NULL)
 * says whether the member was there and not null. */
bool jsonx_get_int(const json_t *obj, const char *key, const char *field, bool required,
                   int64_t min, int64_t max, int64_t *out, bool *present, err *e) WUR;
/* Borrowed string (lives as long as obj). */
bool jsonx_get_string(const json_t *obj, const char *key, const char *field, bool required,
                      const char **out, err *e) WUR;
bool jsonx_get_bool(const json_t *obj, const char *key, const char *field, bool required,
                    bool *out, err *e) WUR;
/* Borrowed object member (must be a JSON object when present). */
bool jsonx_get_object(const json_t *obj, const char *key, const char *field, bool required,
                      json_t **out, err *e) WUR;

#endif
