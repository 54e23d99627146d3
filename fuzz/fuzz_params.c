/*
 * fuzz_params.c - libFuzzer target for what a request carries besides its
 * body (common/http/http_params.c, common/http/http_route.c): query values read as
 * integers and booleans (from_id, limit, version, skip_payload, ...), the
 * Content-Type check, and the route table matching a decoded path. The
 * first byte picks which, and the parameter's bounds; the rest is the
 * value (cut at the first NUL, as libmicrohttpd hands it over).
 *
 * Checks: http_param_int accepts exactly an optional sign and decimal
 * digits whose value fits int64 and the bounds (compared with a plain
 * re-implementation), http_param_bool exactly true/false/1/0, and every
 * refusal is a 400 naming the parameter whose error body renders; the
 * media-type check ignores the case of the type; a path matched to a route
 * agrees with its pattern segment by segment, literals as sent and each
 * parameter its segment percent-decoded (a plain re-implementation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzlib.h"
#include "http_route.h"
#include "http_server.h"

static void handler(http_req *r) { (void)r; }

/* The patterns of the four services and the built-in routes. */
static const http_route routes[] = {
    {"GET", "/v1/consumers", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/consumers/{consumer_id}", handler, HTTP_RUN_WORKER},
    {"PUT", "/v1/consumers/{consumer_id}", handler, HTTP_RUN_WORKER},
    {"DELETE", "/v1/consumers/{consumer_id}", handler, HTTP_RUN_WORKER},
    {"POST", "/v1/entities/{entity_type}", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}/{id}", handler, HTTP_RUN_WORKER},
    {"PATCH", "/v1/entities/{entity_type}/{id}", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}/{id}/history", handler, HTTP_RUN_WORKER},
    {"POST", "/v1/types", handler, HTTP_RUN_WORKER},
    {"PUT", "/v1/types/{entity_type}", handler, HTTP_RUN_WORKER},
    {"POST", "/v1/events", handler, HTTP_RUN_LOOP},
    {"GET", "/v1/events/{originator_id}", handler, HTTP_RUN_QUICK},
    {"GET", "/v1/logs", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/logs/stream", handler, HTTP_RUN_WORKER},
    {"PUT", "/v1/snapshots/{originator_id}", handler, HTTP_RUN_WORKER},
};
static const http_route builtin[] = {
    {"GET", "/healthz", handler, HTTP_RUN_LOOP},
    {"GET", "/metrics", handler, HTTP_RUN_WORKER},
};
static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};

/* Bounds the services use. */
static const struct {
    int64_t def, min, max;
} bounds[] = {
    {1, 0, INT64_MAX}, {20, 1, 1000}, {0, 0, 60}, {0, 1, INT64_MAX}, {10, 1, 100},
    {INT64_MAX, 1, INT64_MAX}, {-5, INT64_MIN, -1}, {0, INT64_MIN, INT64_MAX},
};

static void check_int(const char *v, unsigned pick)
{
    unsigned b = pick % (sizeof bounds / sizeof bounds[0]);
    err e = ERR_INIT;
    int64_t out = 12345;
    bool ok = http_param_int("limit", v, bounds[b].def, bounds[b].min, bounds[b].max, &out, &e);
    /* the rule, the plain way */
    const char *p = v + (*v == '+' || *v == '-');
    bool want = *p && strspn(p, "0123456789") == strlen(p);
    long long ll = 0;
    if (want) {
        errno = 0;
        ll = strtoll(v, NULL, 10);
        want = errno == 0 && ll >= bounds[b].min && ll <= bounds[b].max;
    }
    if (ok != want)
        fuzzlib_fail("http_param_int('%s', [%lld, %lld]) = %d", v, (long long)bounds[b].min,
                     (long long)bounds[b].max, ok);
    if (ok && out != ll)
        fuzzlib_fail("http_param_int('%s') = %lld", v, (long long)out);
    if (!ok) {
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "http_param_int");
        if (strncmp(e.message, "limit ", 6) != 0)
            fuzzlib_fail("the message does not name the parameter: %s", e.message);
    }
    err_clear(&e);
    ok = http_param_int("limit", NULL, bounds[b].def, bounds[b].min, bounds[b].max, &out, &e);
    if (!ok || out != bounds[b].def)
        fuzzlib_fail("an absent parameter does not give its default");
}

static void check_bool(const char *v)
{
    err e = ERR_INIT;
    bool out = false;
    bool ok = http_param_bool("skip_payload", v, false, &out, &e);
    bool t = !strcmp(v, "true") || !strcmp(v, "1"), f = !strcmp(v, "false") || !strcmp(v, "0");
    if (ok != (t || f) || (ok && out != t))
        fuzzlib_fail("http_param_bool('%s') = %d, %d", v, ok, out);
    if (!ok)
        fuzzlib_check_err(&e, ERR_INVALID_ARGUMENT, "http_param_bool");
    err_clear(&e);
}

static void check_media_type(const char *v)
{
    bool json = http_media_type_is_json(v);
    char *upper = strdup(v);
    if (!upper)
        fuzzlib_fail("out of memory");
    size_t type_len = strcspn(upper, ";");
    for (size_t i = 0; i < type_len; i++)
        if (upper[i] >= 'a' && upper[i] <= 'z')
            upper[i] = (char)(upper[i] - 32);
    if (http_media_type_is_json(upper) != json)
        fuzzlib_fail("Content-Type '%s' and '%s' are judged apart", v, upper);
    free(upper);
    if (!json) { /* http_req_json's answer */
        err e = ERR_INIT;
        err_set(&e, ERR_UNSUPPORTED_MEDIA_TYPE,
                "Content-Type %s is not JSON; send application/json", v);
        fuzzlib_check_err(&e, ERR_UNSUPPORTED_MEDIA_TYPE, "Content-Type");
        err_clear(&e);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static void check_route(const char *path, unsigned pick)
{
    static http_router *router;
    if (!router)
        router = http_router_new(routes, sizeof routes / sizeof routes[0], builtin,
                                 sizeof builtin / sizeof builtin[0]);
    http_match m = {0};
    const http_route *rt = NULL;
    char allow[128];
    const char *method = methods[pick % (sizeof methods / sizeof methods[0])];
    http_route_result res = http_router_find(router, method, path, &m, &rt, allow, sizeof allow);
    if (res == HTTP_ROUTE_FOUND) {
        /* segment by segment: literals as sent, parameters decoded */
        const char *pp = rt->pattern, *up = path;
        int k = 0;
        while (*pp) {
            if (*pp != '/' || *up != '/')
                fuzzlib_fail("path '%s' matched %s", path, rt->pattern);
            pp++, up++;
            size_t pl = strcspn(pp, "/"), ul = strcspn(up, "/");
            if (*pp == '{') {
                char want[4096];
                size_t wl = 0;
                if (ul == 0 || k >= m.nparams)
                    fuzzlib_fail("path '%s': parameter %d of %s", path, k, rt->pattern);
                for (size_t i = 0; i < ul && wl < sizeof want; i++) {
                    int hi = up[i] == '%' && i + 2 < ul ? hexval(up[i + 1]) : -1;
                    int lo = hi >= 0 ? hexval(up[i + 2]) : -1;
                    if (lo >= 0) {
                        want[wl++] = (char)(hi * 16 + lo);
                        i += 2;
                    } else {
                        want[wl++] = up[i];
                    }
                }
                if (wl < sizeof want &&
                    (m.value_lens[k] != wl || memcmp(m.values[k], want, wl) != 0 ||
                     m.values[k][wl] != '\0'))
                    fuzzlib_fail("path '%s': parameter %d is not its segment decoded", path, k);
                k++;
            } else if (pl != ul || strncmp(pp, up, pl) != 0) {
                fuzzlib_fail("path '%s' matched %s", path, rt->pattern);
            }
            pp += pl;
            up += ul;
        }
        if (*up || k != m.nparams)
            fuzzlib_fail("path '%s' matched %s with %d parameters", path, rt->pattern, m.nparams);
    } else if (res == HTTP_ROUTE_BAD_METHOD && !allow[0]) {
        fuzzlib_fail("405 for '%s' without an Allow list", path);
    }
    http_match_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *v = fuzzlib_cstr(data + 1, size - 1);
    switch (data[0] & 3) {
    case 0: check_int(v, data[0] >> 2); break;
    case 1: check_bool(v); break;
    case 2: check_media_type(v); break;
    default: check_route(v, data[0] >> 2); break;
    }
    free(v);
    return 0;
}
