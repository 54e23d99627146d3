/*
 * test_http_route.c - matching request paths against a route table
 * (common/http_route.c): each segment of the path as sent is decoded on its
 * own, and a decoded value keeps its whole length.
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
