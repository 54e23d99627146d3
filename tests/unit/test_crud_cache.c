/*
 * test_crud_cache.c - the CRUD store's document cache
 * (services/crud-store/crud_cache.c, compiled in here: service modules are
 * not part of libeskit): newest version wins, LRU eviction by entries and by
 * bytes, copies in and out, and concurrent use.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/crud-store/crud_cache.c"

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

    crud_cache_put(c, "a", 3, CRUD_CACHE_EXISTS, "{\"v\":3}", 7);
    crud_cache_put(c, "a", 2, CRUD_CACHE_EXISTS, "{\"v\":2}", 7); /* older: ignored */
    crud_cache_put(c, "a", 3, CRUD_CACHE_EXISTS, "{\"v\":9}", 7); /* same: ignored */
    cr_assert(crud_cache_get(c, "a", &e));
    cr_assert_eq(e.version, 3);
    cr_assert_str_eq(e.text, "{\"v\":3}");
    cr_assert_eq(e.len, 7);
    cr_assert_eq(e.flags, CRUD_CACHE_EXISTS);
    e.text[0] = 'X'; /* a copy: the cache is not changed */
    free(e.text);

    crud_cache_put(c, "a", 4, CRUD_CACHE_EXISTS | CRUD_CACHE_DELETED, "{}", 2);
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
    crud_cache_put(c, "a", 1, 0, "1", 1);
    crud_cache_put(c, "b", 1, 0, "1", 1);
    crud_cache_put(c, "c", 1, 0, "1", 1);
    cr_assert_eq(get_version(c, "a"), 1); /* a is now the most recent */
    crud_cache_put(c, "d", 1, 0, "1", 1); /* evicts b */
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
        crud_cache_put(c, id, 1, 0, doc, 4000);
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
    crud_cache_put(c, "big", 1, 0, big, CAP / 2);
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
        crud_cache_put(c, id, i, CRUD_CACHE_EXISTS, text, (size_t)len);
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
