/*
 * http_route.c - matching a request path against the route table.
 *
 * Patterns are literal segments and {name} segments; a {name} matches one
 * non-empty segment. The path is the request target as the client sent it
 * (still percent-encoded): it is split at its '/' first, and each segment is
 * decoded on its own, so that an encoded '/' (%2F) stays inside its segment
 * and an encoded NUL (%00) stays inside the value, whose length is kept; the
 * server refuses such a value whole (http_match_bad_param) instead of seeing
 * a C string cut short. Tables are small (tens of routes), so a linear scan
 * is both the simplest and the fastest structure.
 */
#include "http_route.h"

#include <stdlib.h>
#include <string.h>

#include "validate.h"

struct http_router {
    const http_route *tables[2];
    size_t sizes[2];
};

http_router *http_router_new(const http_route *routes, size_t n, const http_route *builtin,
                             size_t nbuiltin)
{
    http_router *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->tables[0] = builtin;
    r->sizes[0] = nbuiltin;
    r->tables[1] = routes;
    r->sizes[1] = n;
    return r;
}

void http_router_free(http_router *r) { free(r); }

void http_match_free(http_match *m)
{
    for (int i = 0; i < m->nparams; i++)
        free(m->values[i]);
    m->nparams = 0;
}

static int http_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The segment u[0..ul) with its %XX escapes decoded, as a new string of
 * *len bytes (plus a terminating NUL; *len counts any NUL decoded inside).
 * A '%' not followed by two hex digits stays as it is. NULL on OOM. */
static char *http_route_decode(const char *u, size_t ul, size_t *len)
{
    char *out = malloc(ul + 1);
    size_t n = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < ul; i++) {
        int hi = u[i] == '%' && i + 2 < ul ? http_hex(u[i + 1]) : -1;
        int lo = hi >= 0 ? http_hex(u[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = u[i];
        }
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* Whether the path segment u[0..ul), decoded, is the literal segment
 * p[0..pl). Out of memory, it is not (the request gets a 404). */
static bool http_route_literal(const char *p, size_t pl, const char *u, size_t ul)
{
    if (!memchr(u, '%', ul)) /* the usual case: nothing to decode */
        return pl == ul && strncmp(p, u, pl) == 0;
    size_t dl = 0;
    char *d = http_route_decode(u, ul, &dl);
    if (!d)
        return false;
    bool same = dl == pl && memcmp(d, p, pl) == 0;
    free(d);
    return same;
}

/* Matches path against pattern; fills m's params on success. */
static bool http_route_match(const char *pattern, const char *path, http_match *m)
{
    const char *p = pattern, *u = path;
    http_match_free(m);
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            goto fail;
        p++;
        u++;
        size_t pl = strcspn(p, "/"), ul = strcspn(u, "/");
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (ul == 0 || m->nparams >= HTTP_MAX_PARAMS)
                goto fail;
            size_t vl = 0;
            char *v = http_route_decode(u, ul, &vl);
            if (!v)
                goto fail;
            m->names[m->nparams] = p + 1;
            m->name_lens[m->nparams] = pl - 2;
            m->value_lens[m->nparams] = vl;
            m->values[m->nparams++] = v;
        } else if (!http_route_literal(p, pl, u, ul)) {
            goto fail;
        }
        p += pl;
        u += ul;
    }
    if (*p == '\0' && *u == '\0')
        return true;
fail:
    http_match_free(m);
    return false;
}

static void http_allow_add(char *allow, size_t len, const char *method)
{
    if (strstr(allow, method))
        return;
    size_t used = strlen(allow);
    int n = snprintf(allow + used, len - used, "%s%s", used ? ", " : "", method);
    if (n < 0 || (size_t)n >= len - used)
        allow[used] = '\0';
}

http_route_result http_router_find(const http_router *r, const char *method, const char *path,
                                   http_match *m, const http_route **route, char *allow,
                                   size_t allow_len)
{
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool path_found = false;
    allow[0] = '\0';
    m->route = NULL;
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < r->sizes[t]; i++) {
            const http_route *rt = &r->tables[t][i];
            if (!http_route_match(rt->pattern, path, m))
                continue;
            if (strcmp(rt->method, want) == 0) {
                m->route = rt;
                *route = rt;
                return HTTP_ROUTE_FOUND;
            }
            path_found = true;
            http_allow_add(allow, allow_len, rt->method);
            if (strcmp(rt->method, "GET") == 0)
                http_allow_add(allow, allow_len, "HEAD");
            http_match_free(m);
        }
    }
    return path_found ? HTTP_ROUTE_BAD_METHOD : HTTP_ROUTE_NOT_FOUND;
}

const char *http_match_param(const http_match *m, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < m->nparams; i++)
        if (m->name_lens[i] == n && strncmp(m->names[i], name, n) == 0)
            return m->values[i];
    return NULL;
}

int http_match_bad_param(const http_match *m)
{
    for (int i = 0; i < m->nparams; i++)
        if (!validate_utf8_text(m->values[i], m->value_lens[i]))
            return i;
    return -1;
}
