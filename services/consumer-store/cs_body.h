/*
 * cs_body.h - the body of PUT /v1/consumers/{id}, checked without HTTP (a
 * pure function: the handler calls it, and so does the fuzz target
 * fuzz/fuzz_consumer_offset.c).
 */
#ifndef CS_BODY_H
#define CS_BODY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* {"offset": N} or {"offset": N, "expected_offset": M}, N and M integers
 * >= 0: *offset, and *has_expected with *expected. False with e set (400
 * naming the field). */
bool cs_body_offsets(const json_t *body, int64_t *offset, int64_t *expected, bool *has_expected,
                     err *e) WUR;

#endif
