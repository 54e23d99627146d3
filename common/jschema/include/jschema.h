/*
 * jschema.h - a JSON Schema draft-07 validator on jansson values.
 *
 * The CRUD store keeps a JSON Schema per entity type; it compiles it when the
 * type is registered (refusing schemas that are not valid draft-07) and
 * validates each created or updated document against it, answering 400 with
 * the list of errors this module produces.
 *
 * Every keyword of the official JSON-Schema-Test-Suite draft7 tests is
 * supported, boolean schemas and `$ref` within the document included (JSON
 * Pointer fragments, `$id`-identified subschemas, plain-name `#anchor` ids).
 * The draft-07 meta-schema (http://json-schema.org/draft-07/schema#) is built
 * in and may be referenced; any other `$ref` to a document outside the schema
 * is refused at compile time. `format` is an annotation only. `pattern` and
 * `patternProperties` use PCRE2 (UTF mode), close to ECMA-262 for the usual
 * patterns.
 *
 * A compiled schema is immutable: jschema_validate() may run on it from
 * several threads at once.
 */
#ifndef ESKIT_JSCHEMA_H
#define ESKIT_JSCHEMA_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

typedef struct jschema jschema;

/* Compiles a draft-07 schema (an object or a boolean). The schema is checked
 * first: keyword values of the right types (e.g. "type" a known type name or
 * a non-empty array of unique ones, "minLength" a non-negative integer,
 * "required" an array of unique strings), every regex compiles, every `$ref`
 * resolves within the document, and no `$ref` loop can make validation spin
 * without moving into the instance.
 * Returns a new compiled schema that the caller frees with jschema_free(), or
 * NULL with `e` set: invalid_argument with a message naming the place in the
 * schema (a JSON Pointer), or internal on OOM. The schema is copied: the
 * caller keeps ownership of `schema` and may change it afterwards. */
jschema *jschema_compile(const json_t *schema, err *e) WUR;

/* Validates `instance`. Returns true when it is valid. When it is not and
 * `errors` is non-NULL, *errors receives a new JSON array (the caller
 * decrefs) of {"path": "<JSON Pointer into the instance>", "message": "..."},
 * e.g. {"path": "/items/1", "message": "must be of type string"}; the root is
 * "". A missing required property is reported at the path it would have
 * ("/email"). On OOM the result is false and *errors is NULL. A valid
 * instance leaves *errors NULL. */
bool jschema_validate(const jschema *s, const json_t *instance, json_t **errors);

/* Frees a compiled schema. NULL is allowed. */
void jschema_free(jschema *s);

#endif
