/*
 * fuzzlib.h - what the libFuzzer targets of fuzz/ share: turning the
 * fuzzer's bytes into the inputs a service sees (a request body parsed as
 * the HTTP server parses it, a header or query value), and the checks every
 * target makes on what the code under test answers. A failed check prints
 * what was wrong and aborts, which libFuzzer reports as a crash.
 */
#ifndef FUZZLIB_H
#define FUZZLIB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Makes jansson's hash order repeatable (call from LLVMFuzzerInitialize or
 * the first run; idempotent). */
void fuzzlib_init(void);

/* Prints "fuzz check failed: ..." and aborts. */
void fuzzlib_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A NUL-terminated malloc'd copy of data (as a header or query value
 * arrives: cut at the first NUL byte). Never NULL (aborts on OOM). */
char *fuzzlib_cstr(const uint8_t *data, size_t size);

/* True when s[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
bool fuzzlib_utf8(const char *s, size_t n);

/* A failed call's err must be what a handler can answer: the expected code
 * (or any 4xx when want is ERR_NONE), a message that is not empty, and a
 * SPEC §2 error body that renders (as http_reply_err builds it). Aborts
 * otherwise. */
void fuzzlib_check_err(const err *e, err_code want, const char *what);

/* A request body parsed as the HTTP server parses it (http_body_parse, the
 * default nesting limit): a new reference, or NULL with e checked as a 400. */
json_t *fuzzlib_body(const uint8_t *data, size_t size);

/* Compact JSON text of v (malloc'd), never NULL (aborts). */
char *fuzzlib_dump(const json_t *v);

/* Aborts unless text[0..len) is one valid JSON text; returns it parsed. */
json_t *fuzzlib_reparse(const char *text, size_t len, const char *what);

/* Aborts unless a and b are equal JSON values (jansson's json_equal), or
 * both NULL (absent). */
void fuzzlib_expect_equal(const json_t *a, const json_t *b, const char *what);

/* A copy of v without the null members of its objects, through objects
 * only (a merge patch replaces an array whole, so arrays keep theirs). */
json_t *fuzzlib_strip_nulls(const json_t *v);

#endif
