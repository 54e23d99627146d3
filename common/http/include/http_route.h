/*
 * http_route.h - the route table of the HTTP server: patterns with {params},
 * matched segment by segment against the path as the client sent it, each
 * segment percent-decoded on its own (private to common/http_server.c and
 * its tests).
 */
#ifndef ESKIT_HTTP_ROUTE_H
#define ESKIT_HTTP_ROUTE_H

#include <stddef.h>

#include "http_server.h"

#define HTTP_MAX_PARAMS 4

typedef struct http_match {
    const http_route *route; /* NULL when nothing matched */
    int nparams;
    const char *names[HTTP_MAX_PARAMS]; /* point into the pattern */
    size_t name_lens[HTTP_MAX_PARAMS];
    char *values[HTTP_MAX_PARAMS];      /* owned, decoded, NUL-terminated */
    size_t value_lens[HTTP_MAX_PARAMS]; /* decoded bytes: more than strlen when a
                                         * %00 was decoded inside */
} http_match;

typedef enum {
    HTTP_ROUTE_FOUND,
    HTTP_ROUTE_NOT_FOUND,
    HTTP_ROUTE_BAD_METHOD /* the path exists, the method does not: see allow */
} http_route_result;

typedef struct http_router http_router;

/* The router keeps pointers into both tables: they must outlive it. */
http_router *http_router_new(const http_route *routes, size_t n, const http_route *builtin,
                             size_t nbuiltin);
void http_router_free(http_router *r);

/* Finds the route for method + path (the request target up to its '?',
 * still percent-encoded). HEAD is served by GET routes. On
 * HTTP_ROUTE_BAD_METHOD, `allow` receives "GET, PUT". The match must be freed
 * with http_match_free() whatever the result. */
http_route_result http_router_find(const http_router *r, const char *method, const char *path,
                                   http_match *m, const http_route **route, char *allow,
                                   size_t allow_len);
const char *http_match_param(const http_match *m, const char *name);
/* The index of the first parameter whose decoded value is not UTF-8 text
 * (a NUL byte inside, or bytes that are not UTF-8), or -1. */
int http_match_bad_param(const http_match *m);
void http_match_free(http_match *m);

#endif
