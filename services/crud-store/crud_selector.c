/*
 * crud_selector.c - compile and evaluate _find selectors, and the sort
 * order across JSON types (see crud_selector.h).
 *
 * A compiled selector is a tree: AND and OR nodes over conditions, each
 * condition one operator on one path (split into member names once). An
 * operator object with several operators is an AND of conditions on the
 * same path; the top-level object is an AND of its members.
 */
#include "crud_selector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

typedef enum sel_op {
    SEL_EQ, SEL_NE, SEL_GT, SEL_GTE, SEL_LT, SEL_LTE, SEL_IN, SEL_NIN, SEL_EXISTS
} sel_op;

typedef enum sel_kind { SEL_AND, SEL_OR, SEL_COND } sel_kind;

typedef struct sel_node {
    sel_kind kind;
    /* AND / OR */
    struct sel_node **kids;
    size_t nkids;
    /* COND */
    char *path;   /* dotted, owned */
    char **segs;  /* member names, owned (one allocation: segs[0] .. ) */
    size_t nsegs;
    sel_op op;
    json_t *arg;  /* owned reference */
} sel_node;

struct crud_selector {
    sel_node *root;
};

static const struct {
    const char *name;
    sel_op op;
} sel_ops[] = {
    {"$eq", SEL_EQ},   {"$ne", SEL_NE}, {"$gt", SEL_GT},   {"$gte", SEL_GTE}, {"$lt", SEL_LT},
    {"$lte", SEL_LTE}, {"$in", SEL_IN}, {"$nin", SEL_NIN}, {"$exists", SEL_EXISTS},
};

static void sel_node_free(sel_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        sel_node_free(n->kids[i]);
    free(n->kids);
    free(n->path);
    if (n->segs)
        free(n->segs[0]);
    free(n->segs);
    json_decref(n->arg);
    free(n);
}

void crud_selector_free(crud_selector *s)
{
    if (!s)
        return;
    sel_node_free(s->root);
    free(s);
}

/* --- paths --------------------------------------------------------------- */

bool crud_selector_path_ok(const char *path)
{
    size_t len = path ? strlen(path) : 0;
    if (len == 0 || len > CRUD_SELECTOR_PATH_MAX || path[0] == '.' || path[len - 1] == '.' ||
        strstr(path, "..") || path[0] == '$')
        return false;
    return true;
}

const json_t *crud_selector_get(const json_t *doc, const char *path)
{
    const json_t *v = doc;
    const char *p = path;
    while (v) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!json_is_object(v))
            return NULL;
        v = json_object_getn(v, p, len);
        if (!dot)
            return v;
        p = dot + 1;
    }
    return NULL;
}

/* Splits path into n->segs. False on OOM. */
static bool sel_split(sel_node *n, const char *path)
{
    size_t count = 1;
    for (const char *c = path; *c; c++)
        count += *c == '.';
    n->path = strdup(path);
    char *copy = strdup(path);
    n->segs = calloc(count, sizeof *n->segs);
    if (!n->path || !copy || !n->segs) {
        free(copy);
        return false;
    }
    n->nsegs = count;
    char *s = copy;
    for (size_t i = 0; i < count; i++) {
        n->segs[i] = s;
        char *dot = strchr(s, '.');
        if (dot) {
            *dot = '\0';
            s = dot + 1;
        }
    }
    return true;
}

static const json_t *sel_lookup(const sel_node *n, const json_t *doc)
{
    const json_t *v = doc;
    for (size_t i = 0; i < n->nsegs && v; i++) {
        if (!json_is_object(v))
            return NULL;
        v = json_object_get(v, n->segs[i]);
    }
    return v;
}

/* --- compile ------------------------------------------------------------- */

static void sel_error(err *e, const char *path, const char *fmt, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, what ? what : "");
    err_set_details(e, ERR_INVALID_ARGUMENT, json_pack("{s:s}", "path", path),
                    "selector.%s: %s", path, msg);
}

static bool sel_scalar(const json_t *v)
{
    return v && !json_is_object(v) && !json_is_array(v);
}

static sel_node *sel_new(sel_kind kind)
{
    sel_node *n = calloc(1, sizeof *n);
    if (n)
        n->kind = kind;
    return n;
}

static bool sel_add(sel_node *parent, sel_node *kid)
{
    sel_node **k = realloc(parent->kids, (parent->nkids + 1) * sizeof *k);
    if (!k)
        return false;
    parent->kids = k;
    k[parent->nkids++] = kid;
    return true;
}

static sel_node *sel_compile_object(const json_t *sel, const char *where, int depth, err *e);

/* One condition node for path/op/arg, or NULL on OOM (e set). */
static sel_node *sel_cond(const char *path, sel_op op, const json_t *arg, err *e)
{
    sel_node *n = sel_new(SEL_COND);
    if (!n || !sel_split(n, path)) {
        sel_node_free(n);
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    n->op = op;
    n->arg = json_deep_copy(arg);
    if (!n->arg) {
        sel_node_free(n);
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return n;
}

/* Adds a condition node to `and`; false with e set on OOM. */
static bool sel_add_cond(sel_node *and, const char *path, sel_op op, const json_t *arg, err *e)
{
    sel_node *n = sel_cond(path, op, arg, e);
    if (!n)
        return false;
    if (!sel_add(and, n)) {
        sel_node_free(n);
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    return true;
}

/* True when the object is an operator object: any member starts with '$'. */
static bool sel_is_ops(const json_t *cond)
{
    const char *k;
    json_t *v;
    if (!json_is_object(cond))
        return false;
    json_object_foreach((json_t *)cond, k, v) {
        if (k[0] == '$')
            return true;
    }
    return false;
}

/* The conditions of `path` into `and`. */
static bool sel_compile_field(sel_node *and, const char *path, const json_t *cond, err *e)
{
    if (!crud_selector_path_ok(path)) {
        sel_error(e, path[0] ? path : "(empty)", "%s",
                  "a path is member names joined by '.', none empty");
        return false;
    }
    if (!sel_is_ops(cond))
        return sel_add_cond(and, path, SEL_EQ, cond, e);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)cond, k, v) {
        size_t i = 0;
        for (; i < sizeof sel_ops / sizeof sel_ops[0]; i++) {
            if (strcmp(sel_ops[i].name, k) == 0)
                break;
        }
        if (i == sizeof sel_ops / sizeof sel_ops[0]) {
            sel_error(e, path,
                      k[0] == '$' ? "unknown operator %s"
                                  : "%s: an operator object cannot also hold members",
                      k);
            return false;
        }
        sel_op op = sel_ops[i].op;
        if (op == SEL_IN || op == SEL_NIN) {
            if (!json_is_array(v)) {
                sel_error(e, path, "%s takes an array of scalars", k);
                return false;
            }
            for (size_t j = 0; j < json_array_size(v); j++) {
                if (!sel_scalar(json_array_get(v, j))) {
                    sel_error(e, path, "%s takes an array of scalars", k);
                    return false;
                }
            }
        } else if (op == SEL_EXISTS) {
            if (!json_is_boolean(v)) {
                sel_error(e, path, "%s takes true or false", k);
                return false;
            }
        } else if (!sel_scalar(v)) {
            sel_error(e, path, "%s takes a scalar (not an object or an array)", k);
            return false;
        }
        if (!sel_add_cond(and, path, op, v, e))
            return false;
    }
    return true;
}

/* "$and" / "$or": a non-empty array of selectors. */
static bool sel_compile_logic(sel_node *and, const char *key, const json_t *arr,
                              const char *where, int depth, err *e)
{
    char at[CRUD_SELECTOR_PATH_MAX + 64];
    snprintf(at, sizeof at, "%s%s%s", where, where[0] ? "." : "", key);
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        sel_error(e, at, "%s", "takes a non-empty array of selectors");
        return false;
    }
    if (depth >= CRUD_SELECTOR_DEPTH) {
        sel_error(e, at, "%s", "nested too deep");
        return false;
    }
    sel_node *n = sel_new(key[1] == 'a' ? SEL_AND : SEL_OR);
    if (!n || !sel_add(and, n)) {
        sel_node_free(n);
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char item[sizeof at + 24];
        snprintf(item, sizeof item, "%s[%zu]", at, i);
        const json_t *s = json_array_get(arr, i);
        if (!json_is_object(s)) {
            sel_error(e, item, "%s", "must be a selector (an object)");
            return false;
        }
        sel_node *kid = sel_compile_object(s, item, depth + 1, e);
        if (!kid)
            return false;
        if (!sel_add(n, kid)) {
            sel_node_free(kid);
            err_set(e, ERR_INTERNAL, "out of memory");
            return false;
        }
    }
    return true;
}

static sel_node *sel_compile_object(const json_t *sel, const char *where, int depth, err *e)
{
    sel_node *and = sel_new(SEL_AND);
    const char *k;
    json_t *v;
    if (!and) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    json_object_foreach((json_t *)sel, k, v) {
        bool ok;
        if (strcmp(k, "$and") == 0 || strcmp(k, "$or") == 0)
            ok = sel_compile_logic(and, k, v, where, depth, e);
        else if (k[0] == '$') {
            sel_error(e, k, "%s", "unknown operator at the level of members (only $and, $or)");
            ok = false;
        } else
            ok = sel_compile_field(and, k, v, e);
        if (!ok) {
            sel_node_free(and);
            return NULL;
        }
    }
    return and;
}

crud_selector *crud_selector_compile(const json_t *sel, err *e)
{
    if (!json_is_object(sel)) {
        err_set_details(e, ERR_INVALID_ARGUMENT, json_pack("{s:s}", "path", ""),
                        "selector: must be an object");
        return NULL;
    }
    crud_selector *s = calloc(1, sizeof *s);
    if (!s) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->root = sel_compile_object(sel, "", 0, e);
    if (!s->root) {
        free(s);
        return NULL;
    }
    return s;
}

/* --- evaluate ------------------------------------------------------------ */

/* The rank of a value in the order across types. */
static int sel_rank(const json_t *v)
{
    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_NULL: return 1;
    case JSON_FALSE: return 2;
    case JSON_TRUE: return 3;
    case JSON_INTEGER:
    case JSON_REAL: return 4;
    case JSON_STRING: return 5;
    case JSON_ARRAY: return 6;
    case JSON_OBJECT: return 7;
    }
    return 7;
}

static int sel_cmp_strings(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
    if (c)
        return c < 0 ? -1 : 1;
    return la < lb ? -1 : la > lb;
}

static int sel_cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Objects: by their members in the order of their names (name, then value),
 * then the one with fewer members first. */
static int sel_cmp_objects(const json_t *a, const json_t *b)
{
    size_t na = json_object_size(a), nb = json_object_size(b);
    const char **ka = calloc(na + 1, sizeof *ka), **kb = calloc(nb + 1, sizeof *kb);
    int c = 0;
    if (!ka || !kb)
        goto done;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) ka[i++] = k;
    i = 0;
    json_object_foreach((json_t *)b, k, v) kb[i++] = k;
    qsort(ka, na, sizeof *ka, sel_cmp_keys);
    qsort(kb, nb, sizeof *kb, sel_cmp_keys);
    for (i = 0; i < na && i < nb && c == 0; i++) {
        c = strcmp(ka[i], kb[i]);
        c = c < 0 ? -1 : c > 0;
        if (c == 0)
            c = crud_selector_compare(json_object_get(a, ka[i]), json_object_get(b, kb[i]));
    }
    if (c == 0)
        c = na < nb ? -1 : na > nb;
done:
    free(ka);
    free(kb);
    return c;
}

int crud_selector_compare(const json_t *a, const json_t *b)
{
    int ra = sel_rank(a), rb = sel_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (ra) {
    case 4: return jsonx_num_cmp(a, b);
    case 5: return sel_cmp_strings(a, b);
    case 6: {
        size_t na = json_array_size(a), nb = json_array_size(b);
        for (size_t i = 0; i < na && i < nb; i++) {
            int c = crud_selector_compare(json_array_get(a, i), json_array_get(b, i));
            if (c)
                return c;
        }
        return na < nb ? -1 : na > nb;
    }
    case 7: return sel_cmp_objects(a, b);
    default: return 0;
    }
}

/* The JSON type of a range: numbers, strings, booleans, null. */
static bool sel_same_type(const json_t *a, const json_t *b)
{
    if (json_is_number(a))
        return json_is_number(b);
    if (json_is_boolean(a))
        return json_is_boolean(b);
    return json_typeof(a) == json_typeof(b);
}

static bool sel_in(const json_t *v, const json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (jsonx_equal(v, json_array_get(arr, i)))
            return true;
    }
    return false;
}

static bool sel_eval(const sel_node *n, const json_t *doc)
{
    switch (n->kind) {
    case SEL_AND:
        for (size_t i = 0; i < n->nkids; i++) {
            if (!sel_eval(n->kids[i], doc))
                return false;
        }
        return true;
    case SEL_OR:
        for (size_t i = 0; i < n->nkids; i++) {
            if (sel_eval(n->kids[i], doc))
                return true;
        }
        return false;
    case SEL_COND:
        break;
    }
    const json_t *v = sel_lookup(n, doc);
    switch (n->op) {
    case SEL_EQ: return v && jsonx_equal(v, n->arg);
    case SEL_NE: return !v || !jsonx_equal(v, n->arg);
    case SEL_IN: return v && sel_in(v, n->arg);
    case SEL_NIN: return !v || !sel_in(v, n->arg);
    case SEL_EXISTS: return (v != NULL) == json_is_true(n->arg);
    default: break;
    }
    if (!v || !sel_same_type(v, n->arg))
        return false;
    int c = crud_selector_compare(v, n->arg);
    switch (n->op) {
    case SEL_GT: return c > 0;
    case SEL_GTE: return c >= 0;
    case SEL_LT: return c < 0;
    case SEL_LTE: return c <= 0;
    default: return false;
    }
}

bool crud_selector_match(const crud_selector *s, const json_t *doc)
{
    return sel_eval(s->root, doc);
}

bool crud_selector_bounds(const crud_selector *s, const char *path, const json_t **eq,
                          const json_t **lo, bool *lo_incl, const json_t **hi, bool *hi_incl)
{
    bool found = false;
    *eq = *lo = *hi = NULL;
    *lo_incl = *hi_incl = false;
    const sel_node *root = s->root;
    for (size_t i = 0; i < root->nkids; i++) {
        const sel_node *n = root->kids[i];
        if (n->kind != SEL_COND || strcmp(n->path, path) != 0)
            continue;
        switch (n->op) {
        case SEL_EQ:
            if (sel_scalar(n->arg)) {
                *eq = n->arg;
                found = true;
            }
            break;
        case SEL_GT:
        case SEL_GTE:
            if (!*lo) {
                *lo = n->arg;
                *lo_incl = n->op == SEL_GTE;
                found = true;
            }
            break;
        case SEL_LT:
        case SEL_LTE:
            if (!*hi) {
                *hi = n->arg;
                *hi_incl = n->op == SEL_LTE;
                found = true;
            }
            break;
        default:
            break;
        }
    }
    return found;
}

/* --- sort ---------------------------------------------------------------- */

void crud_sort_free(crud_sort_key *keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        free(keys[i].path);
    free(keys);
}

bool crud_sort_parse(const json_t *sort, crud_sort_key **keys, size_t *n, err *e)
{
    crud_sort_key *out = NULL;
    size_t count = 0;
    *keys = NULL;
    *n = 0;
    if (!sort || json_is_null(sort))
        return true;
    if (!json_is_array(sort) || json_array_size(sort) > CRUD_SELECTOR_SORT_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "sort must be an array of at most %d {\"path\": \"asc\" | \"desc\"}",
                CRUD_SELECTOR_SORT_MAX);
        return false;
    }
    out = calloc(json_array_size(sort) + 1, sizeof *out);
    if (!out) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < json_array_size(sort); i++) {
        const json_t *k = json_array_get(sort, i);
        const char *path = NULL, *dir = "asc";
        if (json_is_string(k)) {
            path = json_string_value(k);
        } else if (json_is_object(k) && json_object_size(k) == 1) {
            void *it = json_object_iter((json_t *)k);
            path = json_object_iter_key(it);
            dir = json_string_value(json_object_iter_value(it));
        }
        if (!path || !crud_selector_path_ok(path) || !dir ||
            (strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0)) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "sort[%zu] must be {\"path\": \"asc\" | \"desc\"} with a path of member "
                    "names joined by '.'", i);
            crud_sort_free(out, count);
            return false;
        }
        out[count].path = strdup(path);
        out[count].desc = strcmp(dir, "desc") == 0;
        if (!out[count].path) {
            crud_sort_free(out, count);
            err_set(e, ERR_INTERNAL, "out of memory");
            return false;
        }
        count++;
    }
    *keys = out;
    *n = count;
    return true;
}
