/*
 * test_http_route.c - matching request paths against a route table
 * (common/http/http_route.c): each segment of the path as sent is decoded on its
 * own, and a decoded value keeps its whole length; trailing and doubled
 * slashes, empty and extra segments are not found; a path that exists
 * without the method is 405 with an Allow list (HEAD with GET, the built-in
 * table's methods too, each once, cut short rather than overflowing); the
 * first matching route wins, built-in routes before the service's.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "http_route.h"

static void handler(http_req *r) { (void)r; }

static const http_route routes[] = {
    {"GET", "/v1/events/{originator_id}", handler, HTTP_RUN_WORKER},
    {"POST", "/v1/events", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/entities/{entity_type}/{id}", handler, HTTP_RUN_WORKER},
    {"PATCH", "/v1/entities/{entity_type}/{id}", handler, HTTP_RUN_WORKER},
};

static http_router *router;

static void setup(void)
{
    router = http_router_new(routes, sizeof routes / sizeof routes[0], NULL, 0);
    cr_assert_not_null(router);
}

static void teardown(void) { http_router_free(router); }

/* Finds method + path; returns the result, the match in *m. */
static http_route_result find(const char *method, const char *path, http_match *m)
{
    const http_route *rt = NULL;
    char allow[64];
    memset(m, 0, sizeof *m);
    return http_router_find(router, method, path, m, &rt, allow, sizeof allow);
}

TestSuite(http_route, .init = setup, .fini = teardown);

Test(http_route, plain_and_decoded_values)
{
    http_match m;
    cr_assert_eq(find("GET", "/v1/events/d1", &m), HTTP_ROUTE_FOUND);
    cr_assert_str_eq(http_match_param(&m, "originator_id"), "d1");
    cr_assert_eq(m.value_lens[0], 2);
    cr_assert_eq(http_match_bad_param(&m), -1);
    http_match_free(&m);
    cr_assert_eq(find("GET", "/v1/events/a%3Ab%40c", &m), HTTP_ROUTE_FOUND);
    cr_assert_str_eq(http_match_param(&m, "originator_id"), "a:b@c");
    http_match_free(&m);
    /* a '%' without two hex digits stays as it is */
    cr_assert_eq(find("GET", "/v1/events/a%zz%4", &m), HTTP_ROUTE_FOUND);
    cr_assert_str_eq(http_match_param(&m, "originator_id"), "a%zz%4");
    http_match_free(&m);
}

Test(http_route, nul_stays_inside_the_value)
{
    http_match m;
    cr_assert_eq(find("PATCH", "/v1/entities/User/d1%00zz", &m), HTTP_ROUTE_FOUND);
    cr_assert_eq(m.value_lens[1], 5);
    cr_assert_eq(memcmp(http_match_param(&m, "id"), "d1\0zz", 5), 0);
    cr_assert_eq(http_match_bad_param(&m), 1);
    http_match_free(&m);
    /* in a literal position it is a parameter of the longer route, not the
     * collection */
    cr_assert_eq(find("GET", "/v1/entities/User%00x/d1", &m), HTTP_ROUTE_FOUND);
    cr_assert_eq(m.route, &routes[3]);
    cr_assert_eq(http_match_bad_param(&m), 0);
    http_match_free(&m);
    cr_assert_eq(find("POST", "/v1/events%00", &m), HTTP_ROUTE_NOT_FOUND);
    http_match_free(&m);
}

Test(http_route, encoded_slash_does_not_split)
{
    http_match m;
    cr_assert_eq(find("GET", "/v1/entities/User%2Fd1", &m), HTTP_ROUTE_FOUND);
    cr_assert_eq(m.route, &routes[2]);
    cr_assert_str_eq(http_match_param(&m, "entity_type"), "User/d1");
    http_match_free(&m);
}

Test(http_route, literal_segments_match_decoded)
{
    http_match m;
    cr_assert_eq(find("POST", "/v1/%65vents", &m), HTTP_ROUTE_FOUND);
    http_match_free(&m);
    cr_assert_eq(find("GET", "/v1/events", &m), HTTP_ROUTE_BAD_METHOD);
    http_match_free(&m);
}

Test(http_route, invalid_utf8_is_a_bad_param)
{
    http_match m;
    cr_assert_eq(find("GET", "/v1/events/d%ff", &m), HTTP_ROUTE_FOUND);
    cr_assert_eq(http_match_bad_param(&m), 0);
    http_match_free(&m);
    cr_assert_eq(find("GET", "/v1/events/caf%C3%A9", &m), HTTP_ROUTE_FOUND);
    cr_assert_eq(http_match_bad_param(&m), -1);
    http_match_free(&m);
}

/* find() with the Allow list copied out. */
static http_route_result find_allow(const http_router *rt, const char *method, const char *path,
                                    http_match *m, const http_route **route, char *allow,
                                    size_t len)
{
    memset(m, 0, sizeof *m);
    *route = NULL;
    return http_router_find(rt, method, path, m, route, allow, len);
}

static void not_found(const char *method, const char *path)
{
    http_match m;
    cr_expect_eq(find(method, path, &m), HTTP_ROUTE_NOT_FOUND, "%s %s", method, path);
    cr_expect_eq(m.nparams, 0, "%s %s left parameters", method, path);
    cr_expect_null(m.route);
    http_match_free(&m);
}

Test(http_route, slashes_and_segments_must_line_up)
{
    not_found("GET", "/v1/events/");      /* a {param} matches no empty segment */
    not_found("GET", "/v1/events/d1/");   /* trailing slash */
    not_found("POST", "/v1/events/");
    not_found("GET", "/v1/events//d1");
    not_found("GET", "/v1//events/d1");
    not_found("GET", "//v1/events/d1");
    not_found("GET", "/v1/events/d1/x");  /* a segment more than any pattern */
    not_found("GET", "/v1/entities/User/d1/x");
    not_found("GET", "/v1");
    not_found("GET", "/");
    not_found("GET", "");
    not_found("GET", "v1/events/d1");     /* no leading slash */
}

Test(http_route, literals_are_exact)
{
    not_found("POST", "/v1/eventsX");
    not_found("POST", "/v1/event");
    not_found("POST", "/V1/events");      /* case matters */
    not_found("POST", "/v1/Events");
    not_found("POST", "/v1/events%2F");   /* an encoded '/' is part of the segment */
    not_found("POST", "/v1%2Fevents");
    http_match m;
    /* lowercase and uppercase hex both decode */
    cr_expect_eq(find("POST", "/v1/%65%76ents", &m), HTTP_ROUTE_FOUND);
    http_match_free(&m);
    cr_expect_eq(find("POST", "/%76%31/events", &m), HTTP_ROUTE_FOUND);
    http_match_free(&m);
    cr_expect_eq(find("POST", "/v1/%45vents", &m), HTTP_ROUTE_NOT_FOUND); /* %45 is 'E' */
    http_match_free(&m);
}

Test(http_route, percent_decoding_of_values)
{
    static const struct {
        const char *path, *value;
        size_t len;
    } cases[] = {
        {"/v1/events/%2f", "/", 1},          /* lowercase hex */
        {"/v1/events/a%2Fb%2fc", "a/b/c", 5},
        {"/v1/events/%", "%", 1},            /* a lone '%' stays */
        {"/v1/events/a%4", "a%4", 3},        /* one hex digit at the end */
        {"/v1/events/%%41", "%A", 2},        /* the second '%' starts the escape */
        {"/v1/events/%41%", "A%", 2},
        {"/v1/events/%g1", "%g1", 3},
        {"/v1/events/a+b", "a+b", 3},        /* '+' is not a space in a path */
        {"/v1/events/%20", " ", 1},
        {"/v1/events/%252F", "%2F", 3},      /* decoded once, not twice */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_match m;
        cr_expect_eq(find("GET", cases[i].path, &m), HTTP_ROUTE_FOUND, "%s", cases[i].path);
        cr_expect_str_eq(http_match_param(&m, "originator_id"), cases[i].value, "%s",
                         cases[i].path);
        cr_expect_eq(m.value_lens[0], cases[i].len, "%s", cases[i].path);
        http_match_free(&m);
    }
}

Test(http_route, params_by_exact_name)
{
    http_match m;
    cr_assert_eq(find("GET", "/v1/entities/User/d1", &m), HTTP_ROUTE_FOUND);
    cr_expect_eq(m.route, &routes[3]);
    cr_expect_eq(m.nparams, 2);
    cr_expect_str_eq(http_match_param(&m, "entity_type"), "User");
    cr_expect_str_eq(http_match_param(&m, "id"), "d1");
    cr_expect_null(http_match_param(&m, "i"));
    cr_expect_null(http_match_param(&m, "idx"));
    cr_expect_null(http_match_param(&m, "entity"));
    cr_expect_null(http_match_param(&m, "originator_id"));
    http_match_free(&m);
    cr_expect_eq(m.nparams, 0);
    /* freeing twice is harmless */
    http_match_free(&m);
}

Test(http_route, bad_method_lists_allow)
{
    const http_route *rt;
    char allow[64];
    http_match m;
    cr_expect_eq(find_allow(router, "DELETE", "/v1/entities/User/d1", &m, &rt, allow,
                            sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "GET, HEAD, PATCH");
    cr_expect_eq(m.nparams, 0); /* no parameters are left from the routes tried */
    cr_expect_null(rt);
    http_match_free(&m);
    cr_expect_eq(find_allow(router, "GET", "/v1/events", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "POST");
    http_match_free(&m);
    /* HEAD is served by GET, so it is refused where GET is */
    cr_expect_eq(find_allow(router, "HEAD", "/v1/events", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "POST");
    http_match_free(&m);
    /* methods are case-sensitive */
    cr_expect_eq(find_allow(router, "get", "/v1/events/d1", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "GET, HEAD");
    http_match_free(&m);
    /* a path that does not exist is 404 whatever the method, with no Allow */
    cr_expect_eq(find_allow(router, "DELETE", "/v2/x", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_NOT_FOUND);
    cr_expect_str_eq(allow, "");
    http_match_free(&m);
}

Test(http_route, head_is_served_by_get)
{
    const http_route *rt;
    char allow[64];
    http_match m;
    cr_assert_eq(find_allow(router, "HEAD", "/v1/entities/User/d1", &m, &rt, allow,
                            sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &routes[3]);
    cr_expect_eq(m.route, &routes[3]);
    cr_expect_str_eq(http_match_param(&m, "id"), "d1");
    http_match_free(&m);
}

Test(http_route, allow_is_cut_short_not_overflowed)
{
    const http_route *rt;
    char allow[12];
    http_match m;
    memset(allow, 'x', sizeof allow);
    /* "GET, HEAD" fits in 12 with its NUL, ", PATCH" does not and is left out */
    cr_expect_eq(find_allow(router, "DELETE", "/v1/entities/User/d1", &m, &rt, allow,
                            sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "GET, HEAD");
    http_match_free(&m);
    char tiny[3];
    cr_expect_eq(find_allow(router, "DELETE", "/v1/entities/User/d1", &m, &rt, tiny,
                            sizeof tiny),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(tiny, "");
    http_match_free(&m);
}

/* A service's table behind a built-in one (as http_server.c builds it). */
static const http_route builtin[] = {
    {"GET", "/healthz", handler, HTTP_RUN_LOOP},
    {"GET", "/metrics", handler, HTTP_RUN_LOOP},
};

static const http_route svc[] = {
    {"GET", "/healthz", handler, HTTP_RUN_WORKER},   /* shadowed by the built-in one */
    {"POST", "/healthz", handler, HTTP_RUN_WORKER},
    {"PUT", "/v1/types/{type}", handler, HTTP_RUN_WORKER},
    {"GET", "/v1/types/{type}", handler, HTTP_RUN_WORKER},
    {"PUT", "/v1/types/{type}", handler, HTTP_RUN_WORKER}, /* a duplicate: never reached */
    {"POST", "/v1/entities/{type}/_find", handler, HTTP_RUN_WORKER},
    {"POST", "/v1/entities/{type}/{id}", handler, HTTP_RUN_WORKER},
    {"GET", "/{a}/{b}/{c}/{d}/{e}", handler, HTTP_RUN_WORKER}, /* more than HTTP_MAX_PARAMS */
    {"GET", "/{a}/{b}/{c}/{d}", handler, HTTP_RUN_WORKER},
};

Test(http_route, first_match_wins_builtin_first)
{
    http_router *r = http_router_new(svc, sizeof svc / sizeof svc[0], builtin,
                                     sizeof builtin / sizeof builtin[0]);
    cr_assert_not_null(r);
    const http_route *rt;
    char allow[64];
    http_match m;
    cr_expect_eq(find_allow(r, "GET", "/healthz", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &builtin[0]);
    http_match_free(&m);
    cr_expect_eq(find_allow(r, "POST", "/healthz", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &svc[1]);
    http_match_free(&m);
    /* the Allow list spans both tables and names each method once */
    cr_expect_eq(find_allow(r, "DELETE", "/healthz", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "GET, HEAD, POST");
    http_match_free(&m);
    cr_expect_eq(find_allow(r, "DELETE", "/v1/types/T", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_BAD_METHOD);
    cr_expect_str_eq(allow, "PUT, GET, HEAD");
    http_match_free(&m);
    cr_expect_eq(find_allow(r, "PUT", "/v1/types/T", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &svc[2]);
    http_match_free(&m);
    /* a literal route listed first takes its path from the {param} after it */
    cr_expect_eq(find_allow(r, "POST", "/v1/entities/User/_find", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &svc[5]);
    cr_expect_eq(m.nparams, 1);
    http_match_free(&m);
    cr_expect_eq(find_allow(r, "POST", "/v1/entities/User/_fin", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &svc[6]);
    cr_expect_str_eq(http_match_param(&m, "id"), "_fin");
    http_match_free(&m);
    http_router_free(r);
}

Test(http_route, at_most_max_params)
{
    http_router *r = http_router_new(svc, sizeof svc / sizeof svc[0], NULL, 0);
    cr_assert_not_null(r);
    const http_route *rt;
    char allow[64];
    http_match m;
    /* five parameters never match; the path is not found */
    cr_expect_eq(find_allow(r, "GET", "/1/2/3/4/5", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_NOT_FOUND);
    cr_expect_eq(m.nparams, 0);
    http_match_free(&m);
    cr_expect_eq(find_allow(r, "GET", "/1/2/3/%34", &m, &rt, allow, sizeof allow),
                 HTTP_ROUTE_FOUND);
    cr_expect_eq(rt, &svc[8]);
    cr_expect_eq(m.nparams, HTTP_MAX_PARAMS);
    cr_expect_str_eq(http_match_param(&m, "a"), "1");
    cr_expect_str_eq(http_match_param(&m, "d"), "4");
    http_match_free(&m);
    http_router_free(r);
}
