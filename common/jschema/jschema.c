/*
 * jschema.c - compiling a JSON Schema draft-07 document (see jschema.h).
 *
 * Compiling walks the schema once, through every keyword whose value holds
 * subschemas, checks the value of each keyword it knows, and makes a
 * jschema_node per (sub)schema with what validation needs ready to use:
 * type bits, limits as integers, compiled regexes, child nodes. `$id`s met on
 * the way are recorded with the base URI they resolve to; jschema_link()
 * (jschema_ref.c) then points each `$ref` at its node.
 */
#include "jschema_int.h"

#include <stdlib.h>
#include <string.h>

/* The base URI of a schema without `$id`: relative references resolve
 * against it to URIs that nothing in the document can name. */
#define JSCHEMA_DEFAULT_BASE "urn:eskit:jschema"

/* jansson's iterators take a non-const object; iterating does not modify it. */
#define JSCHEMA_MUT(v) ((json_t *)(v))

typedef struct jschema_cc { /* the state of one compile walk */
    jschema *s;
    err *e;
    buf where; /* JSON Pointer of the current subschema within its document */
    int depth;
} jschema_cc;

static jschema_node *jschema_cc_schema(jschema_cc *cc, const json_t *v, const char *base);

/* --- errors and the where-pointer ---------------------------------------------- */

static const char *jschema_cc_where(const jschema_cc *cc)
{
    return cc->where.len ? cc->where.data : "";
}

/* Sets e: the value of `keyword` (NULL: the schema itself) is wrong. */
static int jschema_cc_bad(jschema_cc *cc, const char *keyword, const char *msg)
{
    if (keyword)
        err_set(cc->e, ERR_INVALID_ARGUMENT, "invalid JSON Schema at \"%s/%s\": %s",
                jschema_cc_where(cc), keyword, msg);
    else
        err_set(cc->e, ERR_INVALID_ARGUMENT, "invalid JSON Schema at \"%s\": %s",
                jschema_cc_where(cc), msg);
    return -1;
}

static int jschema_cc_oom(jschema_cc *cc)
{
    err_set(cc->e, ERR_INTERNAL, "out of memory compiling a JSON Schema");
    return -1;
}

/* Appends "/" + the escaped segment; returns the length to pop back to, or
 * (size_t)-1 on OOM (e set). */
static size_t jschema_cc_push(jschema_cc *cc, const char *seg, size_t len)
{
    size_t mark = cc->where.len;
    int rc = buf_puts(&cc->where, "/");
    for (size_t i = 0; i < len && rc == 0; i++)
        rc = seg[i] == '~'   ? buf_puts(&cc->where, "~0")
             : seg[i] == '/' ? buf_puts(&cc->where, "~1")
                             : buf_append(&cc->where, seg + i, 1);
    if (rc) {
        jschema_cc_oom(cc);
        return (size_t)-1;
    }
    return mark;
}

static size_t jschema_cc_push_index(jschema_cc *cc, size_t i)
{
    size_t mark = cc->where.len;
    if (buf_printf(&cc->where, "/%zu", i)) {
        jschema_cc_oom(cc);
        return (size_t)-1;
    }
    return mark;
}

static void jschema_cc_pop(jschema_cc *cc, size_t mark)
{
    cc->where.len = mark;
    if (cc->where.data)
        cc->where.data[mark] = '\0';
}

/* --- keyword values ------------------------------------------------------------ */

/* Compiles `v`, the subschema at <where>/keyword, or <where>/keyword/sub when
 * `sub` (a member name of sub_len bytes) is non-NULL. NULL and e on error. */
static jschema_node *jschema_cc_child(jschema_cc *cc, const json_t *v, const char *keyword,
                                      const char *sub, size_t sub_len, const char *base)
{
    size_t mark = jschema_cc_push(cc, keyword, strlen(keyword));
    if (mark == (size_t)-1)
        return NULL;
    if (sub && jschema_cc_push(cc, sub, sub_len) == (size_t)-1)
        return NULL;
    jschema_node *n = jschema_cc_schema(cc, v, base);
    jschema_cc_pop(cc, mark);
    return n;
}

/* Optional single subschema. Returns 0 (out NULL when absent), -1 and e. */
static int jschema_cc_opt_schema(jschema_cc *cc, const json_t *obj, const char *keyword,
                                 const char *base, jschema_node **out)
{
    const json_t *v = json_object_get(obj, keyword);
    *out = NULL;
    if (!v)
        return 0;
    *out = jschema_cc_child(cc, v, keyword, NULL, 0, base);
    return *out ? 0 : -1;
}

/* A non-empty array of subschemas (allOf, anyOf, oneOf, items). */
static int jschema_cc_schema_list(jschema_cc *cc, const json_t *v, const char *keyword,
                                  const char *base, jschema_list *out)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return jschema_cc_bad(cc, keyword, "must be a non-empty array of schemas");
    out->v = calloc(json_array_size(v), sizeof *out->v);
    if (!out->v)
        return jschema_cc_oom(cc);
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t mark = jschema_cc_push(cc, keyword, strlen(keyword));
        if (mark == (size_t)-1 || jschema_cc_push_index(cc, i) == (size_t)-1)
            return -1;
        out->v[i] = jschema_cc_schema(cc, json_array_get(v, i), base);
        jschema_cc_pop(cc, mark);
        if (!out->v[i])
            return -1;
        out->n++;
    }
    return 0;
}

static int jschema_cc_opt_list(jschema_cc *cc, const json_t *obj, const char *keyword,
                               const char *base, jschema_list *out)
{
    const json_t *v = json_object_get(obj, keyword);
    return v ? jschema_cc_schema_list(cc, v, keyword, base, out) : 0;
}

/* A non-negative integer (1.0 counts), clamped to INT64_MAX; -1 when absent. */
static int jschema_cc_count(jschema_cc *cc, const json_t *obj, const char *keyword, int64_t *out)
{
    const json_t *v = json_object_get(obj, keyword);
    *out = -1;
    if (!v)
        return 0;
    if (!jschema_is_int(v) || json_number_value(v) < 0)
        return jschema_cc_bad(cc, keyword, "must be a non-negative integer");
    if (json_is_integer(v))
        *out = json_integer_value(v);
    else
        *out = json_real_value(v) >= 9.2e18 ? INT64_MAX : (int64_t)json_real_value(v);
    return 0;
}

static int jschema_cc_number(jschema_cc *cc, const json_t *obj, const char *keyword,
                             const json_t **out)
{
    *out = json_object_get(obj, keyword);
    if (*out && !json_is_number(*out))
        return jschema_cc_bad(cc, keyword, "must be a number");
    return 0;
}

/* Compiles a regex with the options closest to ECMA-262. */
static int jschema_cc_regex(jschema_cc *cc, const char *keyword, const char *pat, size_t len,
                            pcre2_code **out)
{
    int code = 0;
    PCRE2_SIZE off = 0;
    *out = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY,
                         &code, &off, NULL);
    if (*out)
        return 0;
    if (code == PCRE2_ERROR_NOMEMORY)
        return jschema_cc_oom(cc);
    PCRE2_UCHAR msg[160];
    if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
        msg[0] = '\0';
    err_set(cc->e, ERR_INVALID_ARGUMENT,
            "invalid JSON Schema at \"%s/%s\": invalid regular expression \"%s\": %s at offset %zu",
            jschema_cc_where(cc), keyword, pat, (const char *)msg, (size_t)off);
    return -1;
}

/* An array of unique strings (required, dependencies). */
static bool jschema_cc_is_name_list(const json_t *v)
{
    if (!json_is_array(v))
        return false;
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (!json_is_string(json_array_get(v, i)))
            return false;
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(v, i), json_array_get(v, j)))
                return false;
    }
    return true;
}

static const struct {
    const char *name;
    unsigned bit;
} jschema_types[] = {
    {"null", JSCHEMA_T_NULL},       {"boolean", JSCHEMA_T_BOOLEAN}, {"object", JSCHEMA_T_OBJECT},
    {"array", JSCHEMA_T_ARRAY},     {"number", JSCHEMA_T_NUMBER},   {"string", JSCHEMA_T_STRING},
    {"integer", JSCHEMA_T_INTEGER},
};

static unsigned jschema_type_bit(const json_t *v)
{
    for (size_t i = 0; i < sizeof jschema_types / sizeof jschema_types[0]; i++)
        if (json_is_string(v) && strcmp(json_string_value(v), jschema_types[i].name) == 0)
            return jschema_types[i].bit;
    return 0;
}

const char *jschema_type_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof jschema_types / sizeof jschema_types[0]; i++)
        if (jschema_types[i].bit == bit)
            return jschema_types[i].name;
    return "?";
}

static int jschema_cc_types(jschema_cc *cc, const json_t *obj, unsigned *out)
{
    const json_t *v = json_object_get(obj, "type");
    static const char msg[] = "must be a type name (null, boolean, object, array, number, string, "
                              "integer) or a non-empty array of distinct type names";
    *out = 0;
    if (!v)
        return 0;
    if (json_is_string(v)) {
        *out = jschema_type_bit(v);
        return *out ? 0 : jschema_cc_bad(cc, "type", msg);
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return jschema_cc_bad(cc, "type", msg);
    for (size_t i = 0; i < json_array_size(v); i++) {
        unsigned bit = jschema_type_bit(json_array_get(v, i));
        if (!bit || (*out & bit))
            return jschema_cc_bad(cc, "type", msg);
        *out |= bit;
    }
    return 0;
}

/* properties, patternProperties, definitions: an object of schemas. */
static int jschema_cc_schema_map(jschema_cc *cc, jschema_node *n, const json_t *obj,
                                 const char *keyword, const char *base)
{
    const json_t *v = json_object_get(obj, keyword);
    const char *key = NULL;
    size_t key_len = 0;
    json_t *sub = NULL;
    bool props = strcmp(keyword, "properties") == 0;
    bool pprops = strcmp(keyword, "patternProperties") == 0;

    if (!v)
        return 0;
    if (!json_is_object(v))
        return jschema_cc_bad(cc, keyword, "must be an object whose values are schemas");
    if (props && !(n->props = calloc(json_object_size(v) + 1, sizeof *n->props)))
        return jschema_cc_oom(cc);
    if (pprops && !(n->pprops = calloc(json_object_size(v) + 1, sizeof *n->pprops)))
        return jschema_cc_oom(cc);
    json_object_keylen_foreach (JSCHEMA_MUT(v), key, key_len, sub) {
        jschema_node *child = jschema_cc_child(cc, sub, keyword, key, key_len, base);
        if (!child)
            return -1;
        if (props) {
            n->props[n->n_props++] = (jschema_prop){key, key_len, child};
        } else if (pprops) {
            jschema_pprop *p = &n->pprops[n->n_pprops];
            *p = (jschema_pprop){key, NULL, child};
            if (jschema_cc_regex(cc, keyword, key, key_len, &p->re))
                return -1;
            n->n_pprops++;
        }
    }
    return 0;
}

static int jschema_cc_dependencies(jschema_cc *cc, jschema_node *n, const json_t *obj,
                                   const char *base)
{
    const json_t *v = json_object_get(obj, "dependencies");
    const char *key = NULL;
    size_t key_len = 0;
    json_t *dep = NULL;

    if (!v)
        return 0;
    if (!json_is_object(v))
        return jschema_cc_bad(cc, "dependencies", "must be an object");
    if (!(n->deps = calloc(json_object_size(v) + 1, sizeof *n->deps)))
        return jschema_cc_oom(cc);
    json_object_keylen_foreach (JSCHEMA_MUT(v), key, key_len, dep) {
        jschema_dep *d = &n->deps[n->n_deps++];
        *d = (jschema_dep){key, key_len, NULL, NULL};
        if (json_is_array(dep)) {
            if (!jschema_cc_is_name_list(dep))
                return jschema_cc_bad(
                    cc, "dependencies",
                    "each value must be a schema or an array of distinct strings");
            d->names = dep;
        } else if (!(d->node = jschema_cc_child(cc, dep, "dependencies", key, key_len, base))) {
            return -1;
        }
    }
    return 0;
}

/* Annotations: not used, but their values must have the right types. */
static int jschema_cc_annotations(jschema_cc *cc, const json_t *obj)
{
    static const char *const strings[] = {"$schema",        "$comment", "title",
                                          "description",    "format",   "contentMediaType",
                                          "contentEncoding"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const json_t *v = json_object_get(obj, strings[i]);
        if (v && !json_is_string(v))
            return jschema_cc_bad(cc, strings[i], "must be a string");
    }
    const json_t *v = json_object_get(obj, "readOnly");
    if (v && !json_is_boolean(v))
        return jschema_cc_bad(cc, "readOnly", "must be a boolean");
    v = json_object_get(obj, "writeOnly");
    if (v && !json_is_boolean(v))
        return jschema_cc_bad(cc, "writeOnly", "must be a boolean");
    v = json_object_get(obj, "examples");
    if (v && !json_is_array(v))
        return jschema_cc_bad(cc, "examples", "must be an array");
    return 0;
}

static int jschema_cc_keywords(jschema_cc *cc, jschema_node *n, const json_t *obj, const char *base)
{
    const json_t *v = NULL;

    if (jschema_cc_annotations(cc, obj) || jschema_cc_types(cc, obj, &n->types))
        return -1;
    if ((n->enum_values = json_object_get(obj, "enum")) && !json_is_array(n->enum_values))
        return jschema_cc_bad(cc, "enum", "must be an array");
    n->const_value = json_object_get(obj, "const");

    if (jschema_cc_number(cc, obj, "multipleOf", &n->multiple_of) ||
        jschema_cc_number(cc, obj, "maximum", &n->maximum) ||
        jschema_cc_number(cc, obj, "exclusiveMaximum", &n->exclusive_maximum) ||
        jschema_cc_number(cc, obj, "minimum", &n->minimum) ||
        jschema_cc_number(cc, obj, "exclusiveMinimum", &n->exclusive_minimum))
        return -1;
    if (n->multiple_of && !(json_number_value(n->multiple_of) > 0))
        return jschema_cc_bad(cc, "multipleOf", "must be a number greater than 0");

    if (jschema_cc_count(cc, obj, "maxLength", &n->max_length) ||
        jschema_cc_count(cc, obj, "minLength", &n->min_length) ||
        jschema_cc_count(cc, obj, "maxItems", &n->max_items) ||
        jschema_cc_count(cc, obj, "minItems", &n->min_items) ||
        jschema_cc_count(cc, obj, "maxProperties", &n->max_props) ||
        jschema_cc_count(cc, obj, "minProperties", &n->min_props))
        return -1;

    if ((v = json_object_get(obj, "pattern"))) {
        if (!json_is_string(v))
            return jschema_cc_bad(cc, "pattern", "must be a string (a regular expression)");
        n->pattern = json_string_value(v);
        if (jschema_cc_regex(cc, "pattern", n->pattern, json_string_length(v), &n->pattern_re))
            return -1;
    }

    if ((v = json_object_get(obj, "items")) && json_is_array(v)) {
        if (jschema_cc_schema_list(cc, v, "items", base, &n->items_tuple))
            return -1;
    } else if (jschema_cc_opt_schema(cc, obj, "items", base, &n->items)) {
        return -1;
    }
    if ((v = json_object_get(obj, "uniqueItems"))) {
        if (!json_is_boolean(v))
            return jschema_cc_bad(cc, "uniqueItems", "must be a boolean");
        n->unique_items = json_is_true(v);
    }
    if ((n->required = json_object_get(obj, "required")) && !jschema_cc_is_name_list(n->required))
        return jschema_cc_bad(cc, "required", "must be an array of distinct strings");

    if (jschema_cc_opt_schema(cc, obj, "additionalItems", base, &n->additional_items) ||
        jschema_cc_opt_schema(cc, obj, "contains", base, &n->contains) ||
        jschema_cc_opt_schema(cc, obj, "additionalProperties", base, &n->additional_props) ||
        jschema_cc_opt_schema(cc, obj, "propertyNames", base, &n->property_names) ||
        jschema_cc_opt_schema(cc, obj, "if", base, &n->if_) ||
        jschema_cc_opt_schema(cc, obj, "then", base, &n->then_) ||
        jschema_cc_opt_schema(cc, obj, "else", base, &n->else_) ||
        jschema_cc_opt_schema(cc, obj, "not", base, &n->not_) ||
        jschema_cc_schema_map(cc, n, obj, "properties", base) ||
        jschema_cc_schema_map(cc, n, obj, "patternProperties", base) ||
        jschema_cc_schema_map(cc, n, obj, "definitions", base) ||
        jschema_cc_dependencies(cc, n, obj, base) ||
        jschema_cc_opt_list(cc, obj, "allOf", base, &n->all_of) ||
        jschema_cc_opt_list(cc, obj, "anyOf", base, &n->any_of) ||
        jschema_cc_opt_list(cc, obj, "oneOf", base, &n->one_of))
        return -1;
    return 0;
}

/* `$id`: registers the schema under the URI it names and returns the base URI
 * for its subschemas in *child_base (a new string, or NULL: `base` stays). */
static int jschema_cc_id(jschema_cc *cc, const json_t *obj, const char *base, char **child_base)
{
    const json_t *id = json_object_get(obj, "$id");
    char *uri = NULL;
    *child_base = NULL;
    if (!id)
        return 0;
    if (!json_is_string(id))
        return jschema_cc_bad(cc, "$id", "must be a string (a URI reference)");
    if (!(uri = jschema_uri_resolve(base, json_string_value(id))))
        return jschema_cc_oom(cc);
    char *hash = strchr(uri, '#');
    if (hash && hash[1] && jschema_register(cc->s, uri, obj)) /* a plain-name anchor */
        goto oom;
    if (hash)
        *hash = '\0';
    if (json_string_value(id)[0] != '#' && jschema_register(cc->s, uri, obj))
        goto oom;
    *child_base = uri;
    return 0;

oom:
    free(uri);
    return jschema_cc_oom(cc);
}

static jschema_node *jschema_cc_schema(jschema_cc *cc, const json_t *v, const char *base)
{
    jschema_node *n = jschema_find(cc->s, v);
    char *child_base = NULL;

    if (n)
        return n; /* already compiled: shared, or reached by a $ref first */
    if (cc->depth >= JSCHEMA_MAX_NESTING) {
        jschema_cc_bad(cc, NULL, "schemas nested too deeply (more than 512 levels)");
        return NULL;
    }
    if (!json_is_object(v) && !json_is_boolean(v)) {
        jschema_cc_bad(cc, NULL, "a schema must be an object or a boolean");
        return NULL;
    }
    if (!(n = jschema_node_new(cc->s, v))) {
        jschema_cc_oom(cc);
        return NULL;
    }
    if (json_is_boolean(v)) {
        n->boolean = json_is_true(v);
        return n;
    }

    cc->depth++;
    const json_t *ref = json_object_get(v, "$ref");
    if (ref) {
        /* draft-07: the keywords beside "$ref" are ignored, "$id" included,
         * so the reference resolves against the enclosing base URI. */
        if (!json_is_string(ref)) {
            jschema_cc_bad(cc, "$ref", "must be a string (a URI reference)");
            goto fail;
        }
        if (!(n->ref_uri = jschema_uri_resolve(base, json_string_value(ref)))) {
            jschema_cc_oom(cc);
            goto fail;
        }
    }
    if (jschema_cc_id(cc, v, base, &child_base) ||
        jschema_cc_keywords(cc, n, v, child_base ? child_base : base))
        goto fail;
    free(child_base);
    cc->depth--;
    return n;

fail:
    free(child_base);
    cc->depth--;
    return NULL; /* n stays in cc->s->nodes and is freed with it */
}

jschema_node *jschema_build(jschema *s, const json_t *v, const char *base, const char *where,
                            err *e)
{
    jschema_cc cc = {s, e, {0}, 0};
    jschema_node *n = NULL;

    buf_init(&cc.where, 1 << 16);
    if (buf_puts(&cc.where, where)) {
        jschema_cc_oom(&cc);
        goto done;
    }
    n = jschema_cc_schema(&cc, v, base);
done:
    buf_free(&cc.where);
    return n;
}

jschema *jschema_compile(const json_t *schema, err *e)
{
    jschema *s = calloc(1, sizeof *s);
    if (!s)
        goto oom;
    if (!schema) {
        err_set(e, ERR_INVALID_ARGUMENT, "invalid JSON Schema: no schema");
        goto fail;
    }
    if (!(s->doc = json_deep_copy(schema)) || jschema_register(s, JSCHEMA_DEFAULT_BASE, s->doc))
        goto oom;
    if (!(s->root = jschema_build(s, s->doc, JSCHEMA_DEFAULT_BASE, "", e)))
        goto fail;
    if (jschema_link(s, e))
        goto fail;
    return s;

oom:
    err_set(e, ERR_INTERNAL, "out of memory compiling a JSON Schema");
fail:
    jschema_free(s);
    return NULL;
}

void jschema_free(jschema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_nodes; i++)
        jschema_node_free(s->nodes[i]);
    free(s->nodes);
    free(s->map);
    for (size_t i = 0; i < s->n_res; i++)
        free(s->res[i].uri);
    free(s->res);
    json_decref(s->doc);
    json_decref(s->meta);
    free(s);
}
