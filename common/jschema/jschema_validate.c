/*
 * jschema_validate.c - validating an instance against a compiled schema
 * (see jschema.h; the nodes are described in jschema_int.h).
 *
 * One recursive walk over the nodes and the instance together. The context
 * carries the JSON Pointer of the current place in the instance and the
 * array errors go to. Subschemas whose failure is not itself an error (the
 * branches of anyOf / oneOf, not, if, contains, propertyNames) run "quietly",
 * with no error array: they then stop at the first failure.
 */
#include "jschema_int.h"
#include "jsonx.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define JSCHEMA_MAX_ERRORS 100

typedef struct jschema_vc {
    json_t *errors; /* NULL while evaluating quietly */
    buf path;       /* JSON Pointer into the instance */
    pcre2_match_data *md;
    int depth;
    bool oom;
    bool too_deep;
} jschema_vc;

static bool jschema_v_node(jschema_vc *vc, const jschema_node *n, const json_t *x);

/* Validation stops at once when quiet, after an OOM or past the depth limit. */
#define V_STOP(vc) (!(vc)->errors || (vc)->oom || (vc)->too_deep)
/* A failed check: report it and go on (or stop, see V_STOP). */
#define V_FAIL(...)                                                                                \
    do {                                                                                           \
        ok = false;                                                                                \
        jschema_v_error(vc, __VA_ARGS__);                                                          \
        if (V_STOP(vc))                                                                            \
            return false;                                                                          \
    } while (0)
/* A failed subschema: it reported its own errors. */
#define V_SUB(call)                                                                                \
    do {                                                                                           \
        if (!(call)) {                                                                             \
            ok = false;                                                                            \
            if (V_STOP(vc))                                                                        \
                return false;                                                                      \
        }                                                                                          \
    } while (0)

/* --- equality and numbers -------------------------------------------------------- */

bool jschema_is_int(const json_t *v)
{
    if (json_is_integer(v))
        return true;
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    return isfinite(d) && floor(d) == d;
}

/* --- errors and the instance path ------------------------------------------------ */

static void jschema_v_error(jschema_vc *vc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void jschema_v_error(jschema_vc *vc, const char *fmt, ...)
{
    va_list ap;
    json_t *msg = NULL, *item = NULL;

    if (!vc->errors || json_array_size(vc->errors) >= JSCHEMA_MAX_ERRORS)
        return;
    va_start(ap, fmt);
    msg = json_vsprintf(fmt, ap);
    va_end(ap);
    item = msg ? json_pack("{s:s, s:o}", "path", vc->path.len ? vc->path.data : "", "message", msg)
               : NULL; /* "o" takes msg, even on failure */
    if (!item || json_array_append_new(vc->errors, item))
        vc->oom = true;
}

/* A number as the schema wrote it, for messages; the caller frees it. */
static char *jschema_v_num(const json_t *v)
{
    return json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

static size_t jschema_v_push_key(jschema_vc *vc, const char *key, size_t len)
{
    size_t mark = vc->path.len;
    int rc = buf_puts(&vc->path, "/");
    for (size_t i = 0; i < len && rc == 0; i++)
        rc = key[i] == '~'   ? buf_puts(&vc->path, "~0")
             : key[i] == '/' ? buf_puts(&vc->path, "~1")
                             : buf_append(&vc->path, key + i, 1);
    if (rc)
        vc->oom = true;
    return mark;
}

static size_t jschema_v_push_index(jschema_vc *vc, size_t i)
{
    size_t mark = vc->path.len;
    if (buf_printf(&vc->path, "/%zu", i))
        vc->oom = true;
    return mark;
}

static void jschema_v_pop(jschema_vc *vc, size_t mark)
{
    vc->path.len = mark;
    if (vc->path.data)
        vc->path.data[mark] = '\0';
}

/* Runs n on x without reporting errors; returns whether x is valid. */
static bool jschema_v_quiet(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    json_t *saved = vc->errors;
    vc->errors = NULL;
    bool ok = jschema_v_node(vc, n, x);
    vc->errors = saved;
    return ok;
}

/* n on a member or item already pushed on the path; `refused` is the message
 * when n is the schema false (additionalProperties: false, ...). */
static bool jschema_v_child(jschema_vc *vc, const jschema_node *n, const json_t *x,
                            const char *refused)
{
    if (n->boolean == 0) {
        jschema_v_error(vc, "%s", refused);
        return false;
    }
    return jschema_v_node(vc, n, x);
}

/* --- keywords by instance type ----------------------------------------------------- */

static bool jschema_v_type_ok(unsigned types, const json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_NULL:
        return types & JSCHEMA_T_NULL;
    case JSON_TRUE:
    case JSON_FALSE:
        return types & JSCHEMA_T_BOOLEAN;
    case JSON_OBJECT:
        return types & JSCHEMA_T_OBJECT;
    case JSON_ARRAY:
        return types & JSCHEMA_T_ARRAY;
    case JSON_STRING:
        return types & JSCHEMA_T_STRING;
    default:
        return (types & JSCHEMA_T_NUMBER) || ((types & JSCHEMA_T_INTEGER) && jschema_is_int(x));
    }
}

static bool jschema_v_type(jschema_vc *vc, unsigned types)
{
    buf names;
    buf_init(&names, 256);
    for (unsigned bit = 1; bit <= JSCHEMA_T_INTEGER; bit <<= 1)
        if ((types & bit) &&
            ((names.len && buf_puts(&names, " or ")) || buf_puts(&names, jschema_type_name(bit))))
            vc->oom = true;
    jschema_v_error(vc, "must be of type %s", names.len ? names.data : "?");
    buf_free(&names);
    return false;
}

/* One bound: fails when cmp(x, limit) is one of the refused outcomes. */
static bool jschema_v_bound(jschema_vc *vc, const json_t *x, const json_t *limit, int refuse_a,
                            int refuse_b, const char *op)
{
    int c = jsonx_num_cmp(x, limit);
    if (c != refuse_a && c != refuse_b)
        return true;
    char *num = jschema_v_num(limit);
    jschema_v_error(vc, "must be %s %s", op, num ? num : "the limit");
    free(num);
    return false;
}

static bool jschema_v_multiple_of(const json_t *x, const json_t *m)
{
    if (json_is_integer(x) && json_is_integer(m))
        return json_integer_value(x) % json_integer_value(m) == 0; /* m > 0 (compile) */
    double q = json_number_value(x) / json_number_value(m);
    return isfinite(q) && fabs(q - nearbyint(q)) < 1e-9;
}

static bool jschema_v_number(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    bool ok = true;
    if (n->maximum)
        V_SUB(jschema_v_bound(vc, x, n->maximum, 1, 1, "<="));
    if (n->exclusive_maximum)
        V_SUB(jschema_v_bound(vc, x, n->exclusive_maximum, 1, 0, "<"));
    if (n->minimum)
        V_SUB(jschema_v_bound(vc, x, n->minimum, -1, -1, ">="));
    if (n->exclusive_minimum)
        V_SUB(jschema_v_bound(vc, x, n->exclusive_minimum, -1, 0, ">"));
    if (n->multiple_of && !jschema_v_multiple_of(x, n->multiple_of)) {
        char *num = jschema_v_num(n->multiple_of);
        ok = false;
        jschema_v_error(vc, "must be a multiple of %s", num ? num : "the divisor");
        free(num);
        if (V_STOP(vc))
            return false;
    }
    return ok;
}

static bool jschema_v_string(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    const char *s = json_string_value(x);
    size_t len = json_string_length(x);
    bool ok = true;

    if (n->max_length >= 0 || n->min_length >= 0) {
        int64_t chars = 0; /* code points: bytes that do not continue a sequence */
        for (size_t i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xC0) != 0x80;
        if (n->max_length >= 0 && chars > n->max_length)
            V_FAIL("must be at most %lld characters long", (long long)n->max_length);
        if (n->min_length >= 0 && chars < n->min_length)
            V_FAIL("must be at least %lld characters long", (long long)n->min_length);
    }
    if (n->pattern_re && pcre2_match(n->pattern_re, (PCRE2_SPTR)s, len, 0, 0, vc->md, NULL) < 0)
        V_FAIL("must match the pattern \"%s\"", n->pattern);
    return ok;
}

static bool jschema_v_array(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    size_t size = json_array_size(x);
    bool ok = true;

    if (n->max_items >= 0 && (int64_t)size > n->max_items)
        V_FAIL("must have at most %lld items", (long long)n->max_items);
    if (n->min_items >= 0 && (int64_t)size < n->min_items)
        V_FAIL("must have at least %lld items", (long long)n->min_items);
    if (n->unique_items) {
        size_t dup = 0, first = 0;
        for (size_t i = 1; i < size && !dup; i++)
            for (size_t j = 0; j < i && !dup; j++)
                if (jsonx_equal(json_array_get(x, i), json_array_get(x, j))) {
                    dup = i;
                    first = j;
                }
        if (dup)
            V_FAIL("must not contain duplicates (items %zu and %zu are equal)", first, dup);
    }

    for (size_t i = 0; i < size; i++) {
        const jschema_node *sub = n->items;
        if (n->items_tuple.n)
            sub = i < n->items_tuple.n ? n->items_tuple.v[i] : n->additional_items;
        if (!sub)
            continue;
        size_t mark = jschema_v_push_index(vc, i);
        bool good = jschema_v_child(vc, sub, json_array_get(x, i),
                                    i >= n->items_tuple.n && n->items_tuple.n
                                        ? "is not allowed (no additional items)"
                                        : "is not allowed here");
        jschema_v_pop(vc, mark);
        V_SUB(good);
    }

    if (n->contains) {
        bool found = false;
        for (size_t i = 0; i < size && !found; i++)
            found = jschema_v_quiet(vc, n->contains, json_array_get(x, i));
        if (!found)
            V_FAIL("must contain an item that matches \"contains\"");
    }
    return ok;
}

static bool jschema_v_has(const json_t *obj, const char *key, size_t len)
{
    return json_object_getn(obj, key, len) != NULL;
}

static bool jschema_v_object(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    const char *key = NULL;
    size_t key_len = 0, mark = 0;
    json_t *val = NULL;
    bool ok = true;
    int64_t size = (int64_t)json_object_size(x);

    if (n->max_props >= 0 && size > n->max_props)
        V_FAIL("must have at most %lld properties", (long long)n->max_props);
    if (n->min_props >= 0 && size < n->min_props)
        V_FAIL("must have at least %lld properties", (long long)n->min_props);

    for (size_t i = 0; i < json_array_size(n->required); i++) {
        const json_t *name = json_array_get(n->required, i);
        if (jschema_v_has(x, json_string_value(name), json_string_length(name)))
            continue;
        mark = jschema_v_push_key(vc, json_string_value(name), json_string_length(name));
        jschema_v_error(vc, "is required");
        jschema_v_pop(vc, mark);
        ok = false;
        if (V_STOP(vc))
            return false;
    }

    for (size_t d = 0; d < n->n_deps; d++) {
        const jschema_dep *dep = &n->deps[d];
        if (!jschema_v_has(x, dep->key, dep->len))
            continue;
        if (dep->node) {
            V_SUB(jschema_v_node(vc, dep->node, x));
            continue;
        }
        for (size_t i = 0; i < json_array_size(dep->names); i++) {
            const json_t *name = json_array_get(dep->names, i);
            if (jschema_v_has(x, json_string_value(name), json_string_length(name)))
                continue;
            mark = jschema_v_push_key(vc, json_string_value(name), json_string_length(name));
            jschema_v_error(vc, "is required when \"%s\" is present", dep->key);
            jschema_v_pop(vc, mark);
            ok = false;
            if (V_STOP(vc))
                return false;
        }
    }

    json_object_keylen_foreach ((json_t *)x, key, key_len, val) {
        bool matched = false, good = true;
        mark = jschema_v_push_key(vc, key, key_len);
        for (size_t i = 0; i < n->n_props && good; i++)
            if (n->props[i].len == key_len && memcmp(n->props[i].key, key, key_len) == 0) {
                matched = true;
                good = jschema_v_child(vc, n->props[i].node, val, "is not allowed here");
            }
        for (size_t i = 0; i < n->n_pprops && (good || !V_STOP(vc)); i++)
            if (pcre2_match(n->pprops[i].re, (PCRE2_SPTR)key, key_len, 0, 0, vc->md, NULL) >= 0) {
                matched = true;
                good = jschema_v_child(vc, n->pprops[i].node, val, "is not allowed here") && good;
            }
        if (!matched && n->additional_props && (good || !V_STOP(vc)))
            good = jschema_v_child(vc, n->additional_props, val,
                                   "is not allowed (no additional properties)") &&
                   good;
        if (n->property_names && (good || !V_STOP(vc))) {
            json_t *name = json_stringn_nocheck(key, key_len);
            if (!name)
                vc->oom = true;
            else if (!jschema_v_quiet(vc, n->property_names, name)) {
                good = false;
                jschema_v_error(vc, "is not a valid property name (propertyNames)");
            }
            json_decref(name);
        }
        jschema_v_pop(vc, mark);
        V_SUB(good);
    }
    return ok;
}

/* --- applicators and the node ------------------------------------------------------ */

static bool jschema_v_applicators(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    bool ok = true;

    for (size_t i = 0; i < n->all_of.n; i++)
        V_SUB(jschema_v_node(vc, n->all_of.v[i], x));
    if (n->any_of.n) {
        bool any = false;
        for (size_t i = 0; i < n->any_of.n && !any; i++)
            any = jschema_v_quiet(vc, n->any_of.v[i], x);
        if (!any)
            V_FAIL("must match at least one schema of \"anyOf\"");
    }
    if (n->one_of.n) {
        size_t matches = 0;
        for (size_t i = 0; i < n->one_of.n && matches < 2; i++)
            matches += jschema_v_quiet(vc, n->one_of.v[i], x);
        if (matches == 0)
            V_FAIL("must match exactly one schema of \"oneOf\" (matches none)");
        if (matches > 1)
            V_FAIL("must match exactly one schema of \"oneOf\" (matches several)");
    }
    if (n->not_ && jschema_v_quiet(vc, n->not_, x))
        V_FAIL("must not match the schema of \"not\"");
    if (n->if_) {
        const jschema_node *branch = jschema_v_quiet(vc, n->if_, x) ? n->then_ : n->else_;
        if (branch)
            V_SUB(jschema_v_node(vc, branch, x));
    }
    return ok;
}

static bool jschema_v_keywords(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    bool ok = true;

    if (n->types && !jschema_v_type_ok(n->types, x))
        V_SUB(jschema_v_type(vc, n->types));
    if (n->enum_values) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(n->enum_values) && !found; i++)
            found = jsonx_equal(x, json_array_get(n->enum_values, i));
        if (!found)
            V_FAIL("must be one of the values of \"enum\"");
    }
    if (n->const_value && !jsonx_equal(x, n->const_value))
        V_FAIL("must be equal to the value of \"const\"");

    switch (json_typeof(x)) {
    case JSON_INTEGER:
    case JSON_REAL:
        V_SUB(jschema_v_number(vc, n, x));
        break;
    case JSON_STRING:
        V_SUB(jschema_v_string(vc, n, x));
        break;
    case JSON_ARRAY:
        V_SUB(jschema_v_array(vc, n, x));
        break;
    case JSON_OBJECT:
        V_SUB(jschema_v_object(vc, n, x));
        break;
    default:
        break;
    }
    V_SUB(jschema_v_applicators(vc, n, x));
    return ok;
}

static bool jschema_v_node(jschema_vc *vc, const jschema_node *n, const json_t *x)
{
    bool ok = false;
    if (n->boolean >= 0) {
        if (!n->boolean)
            jschema_v_error(vc, "is not allowed here (the schema is false)");
        return n->boolean;
    }
    if (vc->depth >= JSCHEMA_MAX_VALIDATE_DEPTH) {
        vc->too_deep = true;
        return false;
    }
    vc->depth++;
    /* draft-07: beside "$ref", every other keyword is ignored. */
    ok = n->ref ? jschema_v_node(vc, n->ref, x) : jschema_v_keywords(vc, n, x);
    vc->depth--;
    return ok;
}

bool jschema_validate(const jschema *s, const json_t *instance, json_t **errors)
{
    jschema_vc vc = {0};
    bool ok = false;

    if (errors)
        *errors = NULL;
    /* The path repeats the instance's keys (a '~' or '/' escaped as two
     * characters): a cap of 1 MiB made a long key an "out of memory", so
     * it only guards against runaway growth. */
    buf_init(&vc.path, (size_t)1 << 30);
    if (!(vc.md = pcre2_match_data_create(1, NULL)))
        goto done;
    if (errors && !(vc.errors = json_array())) /* without, run quietly */
        goto done;
    ok = jschema_v_node(&vc, s->root, instance);
    if (vc.too_deep) {
        ok = false;
        jschema_v_pop(&vc, 0);
        jschema_v_error(&vc, "the instance nests too deeply for this schema (more than %d levels)",
                        JSCHEMA_MAX_VALIDATE_DEPTH);
    }
    if (!ok && !vc.oom && json_array_size(vc.errors) == 0)
        jschema_v_error(&vc, "is not valid");
    if (vc.oom)
        ok = false;
    else if (!ok && errors) {
        *errors = vc.errors;
        vc.errors = NULL;
    }
done:
    json_decref(vc.errors);
    pcre2_match_data_free(vc.md);
    buf_free(&vc.path);
    return ok;
}
