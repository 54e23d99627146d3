/*
 * jschema_ref.c - the tables of a compiled schema (its nodes by json_t *, its
 * schemas by `$id`) and `$ref` linking, for the jschema module (see
 * jschema_int.h).
 *
 * Each `$ref` was resolved at compile time against its base URI (RFC 3986
 * §5.2, below) into an absolute URI. Linking finds what it names: a schema
 * recorded under the URI without its fragment, then the fragment as a JSON
 * Pointer (RFC 6901, percent-decoded) into that schema; or, for a plain-name
 * fragment, a schema whose `$id` was "#name". The draft-07 meta-schema is
 * built in; any other URI is a remote document, which we refuse.
 *
 * Linking ends with a depth-first walk over the edges that validate the SAME
 * instance ($ref, allOf, anyOf, oneOf, not, if, then, else, dependencies): a
 * cycle there means validation could recurse forever, so it is refused.
 */
#include "jschema_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define JSCHEMA_META_URI "http://json-schema.org/draft-07/schema"
#define JSCHEMA_META_URI_TLS "https://json-schema.org/draft-07/schema"

/* The draft-07 meta-schema, http://json-schema.org/draft-07/schema#. */
static const char jschema_meta_text[] =
    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"$id\":\"http://json-schema.org/"
    "draft-07/schema#\",\"title\":\"Core schema meta-schema\",\"definitions\":{\"schemaArray\":"
    "{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#\"}},\"nonNegativeInteger\":"
    "{\"type\":\"integer\",\"minimum\":0},\"nonNegativeIntegerDefault0\":{\"allOf\":[{\"$ref\":"
    "\"#/definitions/nonNegativeInteger\"},{\"default\":0}]},\"simpleTypes\":{\"enum\":"
    "[\"array\",\"boolean\",\"integer\",\"null\",\"number\",\"object\",\"string\"]},"
    "\"stringArray\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"uniqueItems\":true,"
    "\"default\":[]}},\"type\":[\"object\",\"boolean\"],\"properties\":{\"$id\":{\"type\":"
    "\"string\",\"format\":\"uri-reference\"},\"$schema\":{\"type\":\"string\",\"format\":"
    "\"uri\"},\"$ref\":{\"type\":\"string\",\"format\":\"uri-reference\"},\"$comment\":{\"type\":"
    "\"string\"},\"title\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"},"
    "\"default\":true,\"readOnly\":{\"type\":\"boolean\",\"default\":false},\"examples\":"
    "{\"type\":\"array\",\"items\":true},\"multipleOf\":{\"type\":\"number\","
    "\"exclusiveMinimum\":0},\"maximum\":{\"type\":\"number\"},\"exclusiveMaximum\":{\"type\":"
    "\"number\"},\"minimum\":{\"type\":\"number\"},\"exclusiveMinimum\":{\"type\":\"number\"},"
    "\"maxLength\":{\"$ref\":\"#/definitions/nonNegativeInteger\"},\"minLength\":{\"$ref\":"
    "\"#/definitions/nonNegativeIntegerDefault0\"},\"pattern\":{\"type\":\"string\","
    "\"format\":\"regex\"},\"additionalItems\":{\"$ref\":\"#\"},\"items\":{\"anyOf\":[{\"$ref\":"
    "\"#\"},{\"$ref\":\"#/definitions/schemaArray\"}],\"default\":true},\"maxItems\":{\"$ref\":"
    "\"#/definitions/nonNegativeInteger\"},\"minItems\":{\"$ref\":"
    "\"#/definitions/nonNegativeIntegerDefault0\"},\"uniqueItems\":{\"type\":\"boolean\","
    "\"default\":false},\"contains\":{\"$ref\":\"#\"},\"maxProperties\":{\"$ref\":"
    "\"#/definitions/nonNegativeInteger\"},\"minProperties\":{\"$ref\":"
    "\"#/definitions/nonNegativeIntegerDefault0\"},\"required\":{\"$ref\":"
    "\"#/definitions/stringArray\"},\"additionalProperties\":{\"$ref\":\"#\"},\"definitions\":"
    "{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},\"default\":{}},"
    "\"properties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},\"default\":"
    "{}},\"patternProperties\":{\"type\":\"object\",\"additionalProperties\":{\"$ref\":\"#\"},"
    "\"propertyNames\":{\"format\":\"regex\"},\"default\":{}},\"dependencies\":{\"type\":"
    "\"object\",\"additionalProperties\":{\"anyOf\":[{\"$ref\":\"#\"},{\"$ref\":"
    "\"#/definitions/stringArray\"}]}},\"propertyNames\":{\"$ref\":\"#\"},\"const\":true,"
    "\"enum\":{\"type\":\"array\",\"items\":true},\"type\":{\"anyOf\":[{\"$ref\":"
    "\"#/definitions/simpleTypes\"},{\"type\":\"array\",\"items\":{\"$ref\":"
    "\"#/definitions/simpleTypes\"},\"minItems\":1,\"uniqueItems\":true}]},\"format\":{\"type\":"
    "\"string\"},\"contentMediaType\":{\"type\":\"string\"},\"contentEncoding\":{\"type\":"
    "\"string\"},\"if\":{\"$ref\":\"#\"},\"then\":{\"$ref\":\"#\"},\"else\":{\"$ref\":\"#\"},"
    "\"allOf\":{\"$ref\":\"#/definitions/schemaArray\"},\"anyOf\":{\"$ref\":"
    "\"#/definitions/schemaArray\"},\"oneOf\":{\"$ref\":\"#/definitions/schemaArray\"},\"not\":"
    "{\"$ref\":\"#\"}},\"default\":true}";

/* --- RFC 3986 reference resolution --------------------------------------------- */

typedef struct jschema_part {
    const char *p;
    size_t len;
    bool has;
} jschema_part;

typedef struct jschema_uri {
    jschema_part scheme, auth, path, query, frag;
} jschema_uri;

static void jschema_uri_parse(const char *u, jschema_uri *out)
{
    memset(out, 0, sizeof *out);
    const char *p = u;
    if (isalpha((unsigned char)*p)) {
        const char *q = p + 1;
        while (isalnum((unsigned char)*q) || *q == '+' || *q == '-' || *q == '.')
            q++;
        if (*q == ':') {
            out->scheme = (jschema_part){p, (size_t)(q - p), true};
            p = q + 1;
        }
    }
    if (p[0] == '/' && p[1] == '/') {
        size_t n = strcspn(p + 2, "/?#");
        out->auth = (jschema_part){p + 2, n, true};
        p += 2 + n;
    }
    size_t n = strcspn(p, "?#");
    out->path = (jschema_part){p, n, true};
    p += n;
    if (*p == '?') {
        n = strcspn(p + 1, "#");
        out->query = (jschema_part){p + 1, n, true};
        p += 1 + n;
    }
    if (*p == '#')
        out->frag = (jschema_part){p + 1, strlen(p + 1), true};
}

/* Drops the last segment (and its '/') of the output path. */
static void jschema_drop_segment(buf *out)
{
    size_t i = out->len;
    while (i > 0 && out->data[i - 1] != '/')
        i--;
    out->len = i ? i - 1 : 0;
    if (out->data)
        out->data[out->len] = '\0';
}

/* RFC 3986 §5.2.4 remove_dot_segments, appending to `out`. */
static int jschema_remove_dots(const char *path, size_t len, buf *out)
{
    char *in = strndup(path, len);
    char *p = in;
    int rc = 0;
    if (!in)
        return -1;
    size_t start = out->len;
    while (*p && rc == 0) {
        if (strncmp(p, "../", 3) == 0) {
            p += 3;
        } else if (strncmp(p, "./", 2) == 0) {
            p += 2;
        } else if (strncmp(p, "/./", 3) == 0) {
            p += 2; /* "/./x" -> "/x" */
        } else if (strcmp(p, "/.") == 0) {
            p += 1; /* "/." -> "/" */
            *p = '/';
        } else if (strncmp(p, "/../", 4) == 0 || strcmp(p, "/..") == 0) {
            /* "/../x" -> "/x", "/.." -> "/", dropping a segment of out */
            if (p[3] == '/') {
                p += 3;
            } else {
                p += 2;
                *p = '/';
            }
            if (out->len > start)
                jschema_drop_segment(out);
        } else if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0) {
            break;
        } else {
            size_t n = 1 + strcspn(p + 1, "/");
            if (*p != '/')
                n = strcspn(p, "/");
            rc = buf_append(out, p, n);
            p += n;
        }
    }
    free(in);
    return rc;
}

static int jschema_put(buf *b, const char *lead, jschema_part part)
{
    if (!part.has)
        return 0;
    return buf_puts(b, lead) || buf_append(b, part.p, part.len) ? -1 : 0;
}

char *jschema_uri_resolve(const char *base, const char *ref)
{
    jschema_uri b, r;
    jschema_part auth, query;
    buf out, merged;
    int rc = 0;

    jschema_uri_parse(base, &b);
    jschema_uri_parse(ref, &r);
    buf_init(&out, 1 << 16);
    buf_init(&merged, 1 << 16);

    if (r.scheme.has) {
        rc = jschema_put(&out, "", r.scheme) || buf_puts(&out, ":") ||
             jschema_put(&out, "//", r.auth) || jschema_remove_dots(r.path.p, r.path.len, &out) ||
             jschema_put(&out, "?", r.query);
        goto frag;
    }
    rc = jschema_put(&out, "", b.scheme) || (b.scheme.has && buf_puts(&out, ":"));
    if (r.auth.has) {
        auth = r.auth;
        query = r.query;
        rc = rc || jschema_put(&out, "//", auth) || jschema_remove_dots(r.path.p, r.path.len, &out);
    } else {
        rc = rc || jschema_put(&out, "//", b.auth);
        if (r.path.len == 0) {
            query = r.query.has ? r.query : b.query;
            rc = rc || buf_append(&out, b.path.p, b.path.len);
        } else {
            query = r.query;
            if (r.path.p[0] == '/') {
                rc = rc || jschema_remove_dots(r.path.p, r.path.len, &out);
            } else {
                /* merge: the base path up to its last '/', then the reference */
                size_t keep = b.path.len;
                while (keep > 0 && b.path.p[keep - 1] != '/')
                    keep--;
                if (b.auth.has && b.path.len == 0)
                    rc = rc || buf_puts(&merged, "/");
                else
                    rc = rc || buf_append(&merged, b.path.p, keep);
                rc = rc || buf_append(&merged, r.path.p, r.path.len) ||
                     jschema_remove_dots(merged.data, merged.len, &out);
            }
        }
    }
    rc = rc || jschema_put(&out, "?", query);
frag:
    rc = rc || jschema_put(&out, "#", r.frag);
    buf_free(&merged);
    if (rc) {
        buf_free(&out);
        return NULL;
    }
    return buf_take(&out, NULL);
}

/* --- the src -> node table ----------------------------------------------------- */

static size_t jschema_hash(const json_t *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 29;
    x *= 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 32) & (cap - 1);
}

jschema_node *jschema_find(const jschema *s, const json_t *v)
{
    if (!s->map)
        return NULL;
    for (size_t i = jschema_hash(v, s->map_cap); s->map[i].key; i = (i + 1) & (s->map_cap - 1))
        if (s->map[i].key == v)
            return s->map[i].node;
    return NULL;
}

static void jschema_map_put(jschema *s, jschema_node *n)
{
    size_t i = jschema_hash(n->src, s->map_cap);
    while (s->map[i].key)
        i = (i + 1) & (s->map_cap - 1);
    s->map[i].key = n->src;
    s->map[i].node = n;
}

jschema_node *jschema_node_new(jschema *s, const json_t *v)
{
    if (s->n_nodes == s->cap_nodes) {
        size_t cap = s->cap_nodes ? s->cap_nodes * 2 : 32;
        jschema_node **nodes = realloc(s->nodes, cap * sizeof *nodes);
        if (!nodes)
            return NULL;
        s->nodes = nodes;
        s->cap_nodes = cap;
    }
    if ((s->n_nodes + 1) * 2 > s->map_cap) {
        size_t cap = s->map_cap ? s->map_cap * 2 : 64;
        struct jschema_slot *map = calloc(cap, sizeof *map);
        if (!map)
            return NULL;
        struct jschema_slot *old = s->map;
        s->map = map;
        s->map_cap = cap;
        for (size_t i = 0; i < s->n_nodes; i++)
            jschema_map_put(s, s->nodes[i]);
        free(old);
    }
    jschema_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->src = v;
    n->boolean = -1;
    n->max_length = n->min_length = n->max_items = n->min_items = -1;
    n->max_props = n->min_props = -1;
    s->nodes[s->n_nodes++] = n;
    jschema_map_put(s, n);
    return n;
}

void jschema_node_free(jschema_node *n)
{
    free(n->ref_uri);
    pcre2_code_free(n->pattern_re);
    free(n->items_tuple.v);
    free(n->props);
    for (size_t i = 0; i < n->n_pprops; i++)
        pcre2_code_free(n->pprops[i].re);
    free(n->pprops);
    free(n->deps);
    free(n->all_of.v);
    free(n->any_of.v);
    free(n->one_of.v);
    free(n);
}

/* --- the table of identified schemas ------------------------------------------- */

static const json_t *jschema_lookup(const jschema *s, const char *uri, size_t len)
{
    for (size_t i = 0; i < s->n_res; i++)
        if (strlen(s->res[i].uri) == len && memcmp(s->res[i].uri, uri, len) == 0)
            return s->res[i].schema;
    return NULL;
}

int jschema_register(jschema *s, const char *uri, const json_t *schema)
{
    if (jschema_lookup(s, uri, strlen(uri)))
        return 0;
    if (s->n_res == s->cap_res) {
        size_t cap = s->cap_res ? s->cap_res * 2 : 8;
        jschema_res *res = realloc(s->res, cap * sizeof *res);
        if (!res)
            return -1;
        s->res = res;
        s->cap_res = cap;
    }
    char *copy = strdup(uri);
    if (!copy)
        return -1;
    s->res[s->n_res++] = (jschema_res){copy, schema};
    return 0;
}

/* --- JSON Pointer (RFC 6901) ---------------------------------------------------- */

static int jschema_hexval(char c)
{
    return isdigit((unsigned char)c)    ? c - '0'
           : isxdigit((unsigned char)c) ? (tolower((unsigned char)c) - 'a' + 10)
                                        : -1;
}

/* The value at pointer `ptr` (a URI fragment, percent-encoded) in `doc`;
 * NULL when there is none. *oom is set on OOM. */
static const json_t *jschema_pointer(const json_t *doc, const char *ptr, bool *oom)
{
    size_t len = strlen(ptr), n = 0;
    char *tok = malloc(len + 1);
    const json_t *cur = doc;
    if (!tok) {
        *oom = true;
        return NULL;
    }
    const char *p = ptr;
    while (cur && *p == '/') {
        p++;
        n = 0;
        while (*p && *p != '/') {
            int hi, lo;
            char c = *p++;
            if (c == '%' && (hi = jschema_hexval(p[0])) >= 0 && (lo = jschema_hexval(p[1])) >= 0) {
                c = (char)(hi * 16 + lo);
                p += 2;
            }
            tok[n++] = c;
        }
        /* ~1 -> '/', ~0 -> '~' (after percent-decoding) */
        size_t w = 0;
        for (size_t i = 0; i < n; i++, w++) {
            if (tok[i] == '~' && i + 1 < n && (tok[i + 1] == '0' || tok[i + 1] == '1'))
                tok[w] = tok[++i] == '0' ? '~' : '/';
            else
                tok[w] = tok[i];
        }
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, w);
        } else if (json_is_array(cur)) {
            size_t idx = 0;
            bool ok = w > 0 && (w == 1 || tok[0] != '0');
            for (size_t i = 0; i < w && ok; i++) {
                ok = isdigit((unsigned char)tok[i]) && idx < ((size_t)-1) / 10;
                idx = idx * 10 + (size_t)(tok[i] - '0');
            }
            cur = ok ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
    }
    free(tok);
    return *p ? NULL : cur;
}

/* --- linking --------------------------------------------------------------------- */

static const char *jschema_ref_text(const jschema_node *n)
{
    return json_string_value(json_object_get(n->src, "$ref"));
}

/* Parses and compiles the built-in meta-schema, once. */
static int jschema_load_meta(jschema *s, err *e)
{
    if (s->meta)
        return 0;
    if (!(s->meta = json_loads(jschema_meta_text, 0, NULL))) {
        err_set(e, ERR_INTERNAL, "out of memory loading the draft-07 meta-schema");
        return -1;
    }
    return jschema_build(s, s->meta, JSCHEMA_META_URI, "", e) ? 0 : -1;
}

static int jschema_link_one(jschema *s, jschema_node *n, err *e)
{
    const char *uri = n->ref_uri;
    const char *hash = strchr(uri, '#');
    size_t len = hash ? (size_t)(hash - uri) : strlen(uri);
    const char *frag = hash ? hash + 1 : "";
    const json_t *target = NULL;
    char *doc_uri = strndup(uri, len);
    int rc = -1;
    bool oom = false;

    if (!doc_uri) {
        err_set(e, ERR_INTERNAL, "out of memory resolving $ref");
        return -1;
    }
    const json_t *doc = jschema_lookup(s, doc_uri, len);
    if (!doc &&
        (strcmp(doc_uri, JSCHEMA_META_URI) == 0 || strcmp(doc_uri, JSCHEMA_META_URI_TLS) == 0)) {
        if (jschema_load_meta(s, e))
            goto done;
        doc = jschema_lookup(s, JSCHEMA_META_URI, strlen(JSCHEMA_META_URI));
    }
    if (frag[0] == '\0' || frag[0] == '/')
        target = doc ? jschema_pointer(doc, frag, &oom) : NULL;
    else
        target = jschema_lookup(s, uri, strlen(uri)); /* "#name" */
    if (oom) {
        err_set(e, ERR_INTERNAL, "out of memory resolving $ref");
        goto done;
    }
    if (!target && !doc) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "invalid JSON Schema: $ref \"%s\" refers to a document outside the schema "
                "(%s); remote references are not supported",
                jschema_ref_text(n), doc_uri);
        goto done;
    }
    if (!target) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "invalid JSON Schema: $ref \"%s\" does not resolve to a location in the schema",
                jschema_ref_text(n));
        goto done;
    }
    if (!(n->ref = jschema_build(s, target, doc_uri, frag, e)))
        goto done;
    rc = 0;
done:
    free(doc_uri);
    return rc;
}

/* Depth-first walk over the same-instance edges; see the top of the file. */
static int jschema_walk(jschema_node *n, const jschema_node *from, int depth, err *e);

static int jschema_walk_list(const jschema_list *l, const jschema_node *from, int depth, err *e)
{
    for (size_t i = 0; i < l->n; i++)
        if (jschema_walk(l->v[i], from, depth, e))
            return -1;
    return 0;
}

static int jschema_walk(jschema_node *n, const jschema_node *from, int depth, err *e)
{
    if (!n || n->mark == 2)
        return 0;
    if (n->mark == 1) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "invalid JSON Schema: $ref \"%s\" makes a loop that never moves into the "
                "instance (validation would not end)",
                from && from->ref ? jschema_ref_text(from) : "?");
        return -1;
    }
    if (depth > JSCHEMA_MAX_NESTING) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "invalid JSON Schema: chains of $ref / allOf / anyOf / oneOf nested deeper "
                "than %d",
                JSCHEMA_MAX_NESTING);
        return -1;
    }
    n->mark = 1;
    if (n->ref) {
        if (jschema_walk(n->ref, n, depth + 1, e))
            return -1;
    } else {
        if (jschema_walk_list(&n->all_of, from, depth + 1, e) ||
            jschema_walk_list(&n->any_of, from, depth + 1, e) ||
            jschema_walk_list(&n->one_of, from, depth + 1, e) ||
            jschema_walk(n->not_, from, depth + 1, e) || jschema_walk(n->if_, from, depth + 1, e) ||
            jschema_walk(n->then_, from, depth + 1, e) ||
            jschema_walk(n->else_, from, depth + 1, e))
            return -1;
        for (size_t i = 0; i < n->n_deps; i++)
            if (jschema_walk(n->deps[i].node, from, depth + 1, e))
                return -1;
    }
    n->mark = 2;
    return 0;
}

int jschema_link(jschema *s, err *e)
{
    /* Linking may build nodes (targets outside the known keywords, the
     * meta-schema), which get appended and linked in the same loop. */
    for (size_t i = 0; i < s->n_nodes; i++)
        if (s->nodes[i]->ref_uri && !s->nodes[i]->ref && jschema_link_one(s, s->nodes[i], e))
            return -1;
    for (size_t i = 0; i < s->n_nodes; i++)
        if (jschema_walk(s->nodes[i], NULL, 0, e))
            return -1;
    return 0;
}
