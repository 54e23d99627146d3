/*
 * test_crud_cache.c - the CRUD store's document cache
 * (services/crud-store/crud_cache.c, linked with the CRUD store's modules):
 * newest version wins, LRU eviction by entries and by
 * bytes, copies in and out, concurrent use, and freshness as the log moves:
 * marks, coverage, seen versions and skips.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crud_cache.h"

static int64_t get_version(crud_cache *c, const char *id)
{
    crud_cache_entry e;
    if (!crud_cache_get(c, id, &e))
        return -1;
    free(e.text);
    return e.version;
}

Test(crud_cache, newest_version_wins)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    cr_assert_not_null(c);
    crud_cache_entry e;
    cr_assert_not(crud_cache_get(c, "a", &e));

    crud_cache_put(c, "a", "Doc", 3, CRUD_CACHE_EXISTS, "{\"v\":3}", 7, NULL);
    crud_cache_put(c, "a", "Doc", 2, CRUD_CACHE_EXISTS, "{\"v\":2}", 7, NULL); /* older: ignored */
    crud_cache_put(c, "a", "Doc", 3, CRUD_CACHE_EXISTS, "{\"v\":9}", 7, NULL); /* same: ignored */
    cr_assert(crud_cache_get(c, "a", &e));
    cr_assert_eq(e.version, 3);
    cr_assert_str_eq(e.text, "{\"v\":3}");
    cr_assert_eq(e.len, 7);
    cr_assert_eq(e.flags, CRUD_CACHE_EXISTS);
    e.text[0] = 'X'; /* a copy: the cache is not changed */
    free(e.text);

    crud_cache_put(c, "a", "Doc", 4, CRUD_CACHE_EXISTS | CRUD_CACHE_DELETED, "{}", 2, NULL);
    cr_assert(crud_cache_get(c, "a", &e));
    cr_assert_eq(e.version, 4);
    cr_assert_str_eq(e.text, "{}");
    cr_assert_eq(e.flags, CRUD_CACHE_EXISTS | CRUD_CACHE_DELETED);
    free(e.text);

    size_t n = 0, bytes = 0;
    crud_cache_stats(c, &n, &bytes);
    cr_assert_eq(n, 1);
    cr_assert_gt(bytes, 0);
    crud_cache_free(c);
}

Test(crud_cache, evicts_least_recently_used_entries)
{
    crud_cache *c = crud_cache_new(3, 1 << 20);
    crud_cache_put(c, "a", "Doc", 1, 0, "1", 1, NULL);
    crud_cache_put(c, "b", "Doc", 1, 0, "1", 1, NULL);
    crud_cache_put(c, "c", "Doc", 1, 0, "1", 1, NULL);
    cr_assert_eq(get_version(c, "a"), 1); /* a is now the most recent */
    crud_cache_put(c, "d", "Doc", 1, 0, "1", 1, NULL); /* evicts b */
    cr_assert_eq(get_version(c, "b"), -1);
    cr_assert_eq(get_version(c, "a"), 1);
    cr_assert_eq(get_version(c, "c"), 1);
    cr_assert_eq(get_version(c, "d"), 1);
    size_t n = 0, bytes = 0;
    crud_cache_stats(c, &n, &bytes);
    cr_assert_eq(n, 3);
    crud_cache_free(c);
}

Test(crud_cache, bounded_by_bytes)
{
    enum { CAP = 64 * 1024 };
    crud_cache *c = crud_cache_new(100000, CAP);
    char *doc = malloc(4000);
    cr_assert_not_null(doc);
    memset(doc, 'x', 4000);
    char id[32];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "d%d", i);
        crud_cache_put(c, id, "Doc", 1, 0, doc, 4000, NULL);
    }
    size_t n = 0, bytes = 0;
    crud_cache_stats(c, &n, &bytes);
    cr_assert_leq(bytes, CAP);
    cr_assert_gt(n, 5);
    cr_assert_eq(get_version(c, "d199"), 1);
    cr_assert_eq(get_version(c, "d0"), -1);

    /* a document larger than a quarter of the cap is not cached at all */
    char *big = malloc(CAP / 2);
    cr_assert_not_null(big);
    memset(big, 'y', CAP / 2);
    crud_cache_put(c, "big", "Doc", 1, 0, big, CAP / 2, NULL);
    cr_assert_eq(get_version(c, "big"), -1);
    cr_assert_eq(get_version(c, "d199"), 1);
    free(big);
    free(doc);
    crud_cache_free(c);
}

static void *hammer(void *arg)
{
    crud_cache *c = arg;
    char id[32], text[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "k%d", i % 97);
        int len = snprintf(text, sizeof text, "{\"i\":%d}", i);
        crud_cache_put(c, id, "Doc", i, CRUD_CACHE_EXISTS, text, (size_t)len, NULL);
        crud_cache_entry e;
        if (crud_cache_get(c, id, &e)) {
            cr_assert_eq(e.len, strlen(e.text));
            free(e.text);
        }
    }
    return NULL;
}

Test(crud_cache, concurrent_use)
{
    crud_cache *c = crud_cache_new(50, 1 << 20);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, c), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    size_t n = 0, bytes = 0;
    crud_cache_stats(c, &n, &bytes);
    cr_assert_leq(n, 50);
    crud_cache_free(c);
}

static bool fresh(crud_cache *c, const char *id, int64_t *version)
{
    crud_cache_entry e;
    if (!crud_cache_get(c, id, &e))
        return false;
    free(e.text);
    *version = e.version;
    return e.fresh;
}

Test(crud_cache, entries_stay_fresh_until_the_log_shows_a_later_version)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    int64_t v = 0;
    crud_cache_mark m = crud_cache_mark_now(c);
    crud_cache_put(c, "a", "Doc", 2, CRUD_CACHE_EXISTS, "{}", 2, &m);
    cr_assert(crud_cache_covered(c, "a"));
    cr_assert(fresh(c, "a", &v));
    cr_assert_eq(v, 2);

    /* the log shows entries of other streams, then version 2 of a itself */
    crud_cache_seen s1[] = {{"b", 7}, {"a", 2}};
    crud_cache_advance(c, 0, s1, 2, 10);
    cr_assert(fresh(c, "a", &v));
    cr_assert_eq(crud_cache_mark_now(c).position, 10);

    /* another replica wrote version 3 */
    crud_cache_seen s2[] = {{"a", 3}};
    crud_cache_advance(c, 10, s2, 1, 11);
    cr_assert_not(fresh(c, "a", &v));
    cr_assert(crud_cache_covered(c, "a"));

    /* reading version 3 from the event store (any mark) makes it fresh again */
    crud_cache_put(c, "a", "Doc", 3, CRUD_CACHE_EXISTS, "{\"x\":1}", 7, NULL);
    cr_assert(fresh(c, "a", &v));
    cr_assert_eq(v, 3);
    crud_cache_free(c);
}

Test(crud_cache, a_put_after_the_log_moved_is_not_covered)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    int64_t v = 0;
    crud_cache_mark m = crud_cache_mark_now(c);
    /* while the event store was asked, the log moved (maybe past a) */
    crud_cache_seen s[] = {{"a", 4}};
    crud_cache_advance(c, 0, s, 1, 5);
    crud_cache_put(c, "a", "Doc", 3, CRUD_CACHE_EXISTS, "{}", 2, &m);
    cr_assert_not(crud_cache_covered(c, "a"));
    cr_assert_not(fresh(c, "a", &v));
    /* without a mark, never covered */
    crud_cache_put(c, "b", "Doc", 1, CRUD_CACHE_EXISTS, "{}", 2, NULL);
    cr_assert_not(crud_cache_covered(c, "b"));
    /* a later confirmation with a current mark covers the same version */
    m = crud_cache_mark_now(c);
    crud_cache_confirm(c, "a", 2, &m); /* another version: nothing */
    cr_assert_not(crud_cache_covered(c, "a"));
    crud_cache_confirm(c, "a", 3, &m);
    cr_assert(crud_cache_covered(c, "a"));
    crud_cache_put(c, "b", "Doc", 1, CRUD_CACHE_EXISTS, "{}", 2, &m);
    cr_assert(fresh(c, "b", &v));
    crud_cache_free(c);
}

Test(crud_cache, skipping_the_log_uncovers_everything)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    int64_t v = 0;
    crud_cache_mark m = crud_cache_mark_now(c);
    crud_cache_put(c, "a", "Doc", 1, CRUD_CACHE_EXISTS, "{}", 2, &m);
    crud_cache_put(c, "b", "Doc", 1, CRUD_CACHE_EXISTS, "{}", 2, &m);
    cr_assert(fresh(c, "a", &v) && fresh(c, "b", &v));
    crud_cache_skip_to(c, 5000);
    cr_assert_not(fresh(c, "a", &v));
    cr_assert_not(crud_cache_covered(c, "b"));
    cr_assert_eq(crud_cache_mark_now(c).position, 5000);
    /* a mark from before the skip no longer covers */
    crud_cache_confirm(c, "a", 1, &m);
    cr_assert_not(crud_cache_covered(c, "a"));
    /* an advance from a position the cache is not at is a skip */
    m = crud_cache_mark_now(c);
    crud_cache_confirm(c, "a", 1, &m);
    cr_assert(fresh(c, "a", &v));
    crud_cache_advance(c, 4000, NULL, 0, 5001);
    cr_assert_not(fresh(c, "a", &v));
    crud_cache_free(c);
}

Test(crud_cache, type_and_missing_streams)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    crud_cache_mark m = crud_cache_mark_now(c);
    crud_cache_put(c, "gone", "", 0, 0, "null", 4, &m);
    crud_cache_entry e;
    cr_assert(crud_cache_get(c, "gone", &e));
    cr_assert(e.fresh);
    cr_assert_str_eq(e.type, "");
    cr_assert_eq(e.version, 0);
    free(e.text);
    /* its creation shows in the log: no longer fresh */
    crud_cache_seen s[] = {{"gone", 1}};
    crud_cache_advance(c, 0, s, 1, 1);
    cr_assert(crud_cache_get(c, "gone", &e));
    cr_assert_not(e.fresh);
    free(e.text);
    crud_cache_put(c, "gone", "User", 1, CRUD_CACHE_EXISTS, "{}", 2, NULL);
    cr_assert(crud_cache_get(c, "gone", &e));
    cr_assert(e.fresh);
    cr_assert_str_eq(e.type, "User");
    free(e.text);
    crud_cache_free(c);
}

Test(crud_cache, reset_forgets_everything)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    crud_cache_put(c, "a", "Doc", 3, CRUD_CACHE_EXISTS, "{}", 2, NULL);
    crud_cache_reset(c, 2);
    cr_assert_eq(get_version(c, "a"), -1);
    size_t n = 1, bytes = 1;
    crud_cache_stats(c, &n, &bytes);
    cr_assert_eq(n, 0);
    cr_assert_eq(bytes, 0);
    cr_assert_eq(crud_cache_mark_now(c).position, 2);
    crud_cache_free(c);
}

Test(crud_cache, forget_drops_the_entry_and_its_bytes)
{
    crud_cache *c = crud_cache_new(16, 1 << 20);
    cr_assert_not_null(c);
    crud_cache_put(c, "gone", "Doc", 3, CRUD_CACHE_EXISTS, "{\"secret\":1}", 12, NULL);
    crud_cache_put(c, "kept", "Doc", 1, CRUD_CACHE_EXISTS, "{}", 2, NULL);
    size_t n = 0, bytes_before = 0, bytes_after = 0;
    crud_cache_stats(c, &n, &bytes_before);
    cr_assert_eq(n, 2);

    crud_cache_forget(c, "gone");
    cr_assert_eq(get_version(c, "gone"), -1);
    cr_assert_eq(get_version(c, "kept"), 1);
    crud_cache_stats(c, &n, &bytes_after);
    cr_assert_eq(n, 1);
    cr_assert_lt(bytes_after, bytes_before);

    crud_cache_forget(c, "gone");    /* absent: nothing happens */
    crud_cache_forget(c, "never");
    crud_cache_stats(c, &n, &bytes_after);
    cr_assert_eq(n, 1);
    /* an entry can come back later (a put after the forget) */
    crud_cache_put(c, "gone", "Doc", 4, CRUD_CACHE_EXISTS, "{}", 2, NULL);
    cr_assert_eq(get_version(c, "gone"), 4);
    crud_cache_free(c);
}
