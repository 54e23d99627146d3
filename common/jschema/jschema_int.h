/*
 * jschema_int.h - the inside of a compiled JSON Schema, shared by the three
 * files of the jschema module and by nothing else:
 *
 *   jschema.c           compile: walks the schema, checks each keyword and
 *                       turns every (sub)schema into a jschema_node;
 *   jschema_ref.c       the node table, and `$id` / `$ref`: URI resolution
 *                       (RFC 3986), the table of identified schemas, JSON
 *                       Pointers, the built-in meta-schema, and the check
 *                       against `$ref` loops;
 *   jschema_validate.c  validation of an instance against the nodes.
 *
 * Nodes borrow every json_t * from the documents the jschema owns (its copy
 * of the schema and, when referenced, the meta-schema), which never change
 * after compile.
 */
#ifndef ESKIT_JSCHEMA_INT_H
#define ESKIT_JSCHEMA_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "jschema.h"

/* Schema nesting (compile) and validation recursion are bounded so that a
 * hostile schema or instance gets an error, never a stack overflow. */
#define JSCHEMA_MAX_NESTING 512
#define JSCHEMA_MAX_VALIDATE_DEPTH 1024

/* Bits of jschema_node.types. */
enum {
    JSCHEMA_T_NULL = 1 << 0,
    JSCHEMA_T_BOOLEAN = 1 << 1,
    JSCHEMA_T_OBJECT = 1 << 2,
    JSCHEMA_T_ARRAY = 1 << 3,
    JSCHEMA_T_NUMBER = 1 << 4,
    JSCHEMA_T_STRING = 1 << 5,
    JSCHEMA_T_INTEGER = 1 << 6,
};

typedef struct jschema_node jschema_node;

typedef struct jschema_prop { /* properties */
    const char *key;
    size_t len;
    jschema_node *node;
} jschema_prop;

typedef struct jschema_pprop { /* patternProperties */
    const char *pattern;
    pcre2_code *re;
    jschema_node *node;
} jschema_pprop;

typedef struct jschema_dep { /* dependencies: `names` (array form) or `node` */
    const char *key;
    size_t len;
    const json_t *names;
    jschema_node *node;
} jschema_dep;

typedef struct jschema_list {
    jschema_node **v;
    size_t n;
} jschema_list;

struct jschema_node {
    const json_t *src;
    int boolean;       /* -1: an object schema; 0 / 1: the schema false / true */
    char *ref_uri;     /* `$ref` resolved against the base URI (owned), or NULL */
    jschema_node *ref; /* its target once resolved; siblings are then ignored */
    unsigned types;    /* JSCHEMA_T_* bits; 0 when "type" is absent */
    const json_t *enum_values;
    const json_t *const_value; /* NULL when absent ("const": null is json_null()) */
    const json_t *multiple_of, *maximum, *exclusive_maximum, *minimum, *exclusive_minimum;
    int64_t max_length, min_length, max_items, min_items, max_props, min_props; /* -1: absent */
    const char *pattern;
    pcre2_code *pattern_re;
    jschema_node *items;      /* "items" as one schema */
    jschema_list items_tuple; /* "items" as an array of schemas */
    jschema_node *additional_items;
    bool unique_items;
    jschema_node *contains;
    const json_t *required;
    jschema_prop *props;
    size_t n_props;
    jschema_pprop *pprops;
    size_t n_pprops;
    jschema_node *additional_props;
    jschema_dep *deps;
    size_t n_deps;
    jschema_node *property_names;
    jschema_node *if_, *then_, *else_, *not_;
    jschema_list all_of, any_of, one_of;
    int mark; /* for the loop check: 0 unseen, 1 on the path, 2 done */
};

/* A schema identified by `$id`: a resource (uri without fragment) or a
 * plain-name anchor ("uri#name"). */
typedef struct jschema_res {
    char *uri;
    const json_t *schema;
} jschema_res;

struct jschema {
    json_t *doc;  /* our copy of the schema */
    json_t *meta; /* the draft-07 meta-schema, parsed when referenced */
    jschema_node *root;
    jschema_node **nodes; /* every node, in creation order (owned) */
    size_t n_nodes, cap_nodes;
    struct jschema_slot {
        const json_t *key;
        jschema_node *node;
    } * map; /* open addressing: src -> node */
    size_t map_cap;
    jschema_res *res;
    size_t n_res, cap_res;
};

/* --- jschema.c ----------------------------------------------------------------- */

/* Builds (or finds, when already built) the node of the schema `v`, whose
 * base URI is `base`. `where` names it in error messages. Returns NULL with
 * `e` set on error. The node belongs to `s`. */
jschema_node *jschema_build(jschema *s, const json_t *v, const char *base, const char *where,
                            err *e) WUR;

/* "string", "integer", ... for one JSCHEMA_T_* bit. */
const char *jschema_type_name(unsigned bit);

/* --- jschema_ref.c ------------------------------------------------------------- */

/* The node already built for `v`, or NULL. */
jschema_node *jschema_find(const jschema *s, const json_t *v);

/* A new node for `v` (limits unset, not a boolean schema), recorded in s
 * (which frees it). NULL on OOM. */
jschema_node *jschema_node_new(jschema *s, const json_t *v) WUR;

/* Frees a node and what it owns (regexes, arrays). */
void jschema_node_free(jschema_node *n);

/* RFC 3986 §5.2: `ref` resolved against the absolute URI `base`. Returns a new
 * string (the caller frees it), NULL on OOM. */
char *jschema_uri_resolve(const char *base, const char *ref) WUR;

/* Records that `uri` identifies `schema` (the first record of a uri wins).
 * Returns 0, -1 on OOM. */
int jschema_register(jschema *s, const char *uri, const json_t *schema) WUR;

/* Resolves the `$ref` of every node (building the targets that are not
 * schemas of a known keyword, and the meta-schema when referenced), then
 * refuses loops of `$ref` / allOf / anyOf / oneOf / not / if / then / else /
 * dependencies that never move into the instance. Returns 0, or -1 and e. */
int jschema_link(jschema *s, err *e) WUR;

/* --- jschema_validate.c -------------------------------------------------------- */

/* True for integers and for reals with an integral value (1.0). */
bool jschema_is_int(const json_t *v);

#endif
