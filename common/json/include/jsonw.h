/*
 * jsonw.h - writing JSON text straight into a buf, for hot read paths that
 * splice stored JSON (payloads) into a response without parsing it again.
 */
#ifndef ESKIT_JSONW_H
#define ESKIT_JSONW_H

#include "buf.h"

#include <jansson.h>

/* Appends s as a JSON string literal (quoted, escaped). 0, or -1 when full. */
int jsonw_string(buf *b, const char *s) WUR;
/* The same for the first n bytes of s. */
int jsonw_stringn(buf *b, const char *s, size_t n) WUR;
/* Appends any JSON value in compact form, without an intermediate copy. */
int jsonw_value(buf *b, const json_t *v) WUR;

#endif
