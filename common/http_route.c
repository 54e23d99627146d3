/*
 * http_route.c - matching a request path against the route table.
 *
 * Patterns are literal segments and {name} segments; a {name} matches one
 * non-empty segment. Tables are small (tens of routes), so a linear scan is
 * both the simplest and the fastest structure.
 */
#include "http_route.h"

#include <stdlib.h>
#include <string.h>

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
            char *v = strndup(u, ul);
            if (!v)
                goto fail;
            m->names[m->nparams] = p + 1;
            m->name_lens[m->nparams] = pl - 2;
            m->values[m->nparams++] = v;
        } else if (pl != ul || strncmp(p, u, pl) != 0) {
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
