/*
 * crud_selector.h - the selector language of _find (SPEC §4), compiled once
 * per query and evaluated in C over the stored JSON, so that every back end
 * of the query index gives the same answers (SQL only narrows candidates).
 *
 * A selector is an object of path: condition members, all of which must
 * hold, plus "$and" / "$or" arrays of selectors. A path is member names
 * joined by '.'; a condition is a JSON value (JSON equality) or an object of
 * operators ($eq $ne $gt $gte $lt $lte $in $nin $exists). Ranges match only
 * values of the argument's JSON type; a missing member matches only $ne,
 * $nin and $exists: false.
 *
 * Also here: the order of sort (missing < null < false < true < numbers <
 * strings < arrays < objects) and the parsing of a sort specification.
 * Everything is pure: no I/O, no global state.
 */
#ifndef CRUD_SELECTOR_H
#define CRUD_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

typedef struct crud_selector crud_selector;

/* Nesting of $and / $or allowed, and the longest path, in bytes. */
#define CRUD_SELECTOR_DEPTH 32
#define CRUD_SELECTOR_PATH_MAX 1024
#define CRUD_SELECTOR_SORT_MAX 8

/* Compiles `sel` (borrowed; values are copied). NULL with e set: 400
 * invalid_argument naming the path ("selector.<path>: ..."), with
 * details.path. The caller frees the result with crud_selector_free. */
crud_selector *crud_selector_compile(const json_t *sel, err *e) WUR;
void crud_selector_free(crud_selector *s);

/* True when document `doc` (an object) matches. */
bool crud_selector_match(const crud_selector *s, const json_t *doc);

/* The member at dotted `path` of doc, or NULL when missing (borrowed). */
const json_t *crud_selector_get(const json_t *doc, const char *path);

/* True when `path` is a valid path: non-empty member names joined by '.'. */
bool crud_selector_path_ok(const char *path);

/* The sort order across JSON types; a or b NULL means missing. -1, 0, 1. */
int crud_selector_compare(const json_t *a, const json_t *b);

/* One key of a sort specification. */
typedef struct crud_sort_key {
    char *path; /* owned */
    bool desc;
} crud_sort_key;

/* Parses a sort specification: an array of {"path": "asc" | "desc"} (or of
 * bare paths, ascending), at most CRUD_SELECTOR_SORT_MAX. NULL `sort` is no
 * sort (*n = 0). False with e set (400 naming sort[i]). */
bool crud_sort_parse(const json_t *sort, crud_sort_key **keys, size_t *n, err *e) WUR;
void crud_sort_free(crud_sort_key *keys, size_t n);

/* A range or equality the selector requires of `path` at its top level
 * (not under $or), for the planner of declared indexes: true when found.
 * *eq is the value it must equal, or NULL; *lo / *hi the bounds of a range
 * (NULL: open), *lo_incl / *hi_incl whether they are included. Borrowed. */
bool crud_selector_bounds(const crud_selector *s, const char *path, const json_t **eq,
                          const json_t **lo, bool *lo_incl, const json_t **hi, bool *hi_incl);

#endif
