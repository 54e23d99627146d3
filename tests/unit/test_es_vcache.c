/*
 * test_es_vcache.c - the event store committer's memory of stream versions
 * (services/event-store/es_vcache.c, linked with the event store's modules):
 * unknown ids read 0, the last put wins, a full table
 * forgets everything at once and keeps working, and clear empties it.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "es_vcache.h"

Test(es_vcache, unknown_ids_read_zero)
{
    es_vcache *vc = es_vcache_new(8);
    cr_assert_not_null(vc);
    cr_expect_eq(es_vcache_get(vc, "a"), 0);
    cr_expect_eq(es_vcache_get(vc, ""), 0);
    es_vcache_free(vc);
}

Test(es_vcache, last_put_wins)
{
    es_vcache *vc = es_vcache_new(8);
    cr_assert_not_null(vc);
    es_vcache_put(vc, "a", 1);
    es_vcache_put(vc, "b", 7);
    es_vcache_put(vc, "a", 3);
    cr_expect_eq(es_vcache_get(vc, "a"), 3);
    cr_expect_eq(es_vcache_get(vc, "b"), 7);
    cr_expect_eq(es_vcache_get(vc, "c"), 0);
    es_vcache_free(vc);
}

Test(es_vcache, a_full_table_starts_again)
{
    es_vcache *vc = es_vcache_new(16);
    cr_assert_not_null(vc);
    char id[32];
    /* Far more ids than it holds: it must stay correct for what it keeps
     * and never answer a version that was not put for that id. */
    for (int i = 1; i <= 1000; i++) {
        snprintf(id, sizeof id, "s-%d", i);
        es_vcache_put(vc, id, i);
        cr_assert_eq(es_vcache_get(vc, id), i);
    }
    int kept = 0;
    for (int i = 1; i <= 1000; i++) {
        snprintf(id, sizeof id, "s-%d", i);
        int64_t v = es_vcache_get(vc, id);
        cr_assert(v == 0 || v == i, "s-%d read %lld", i, (long long)v);
        kept += v != 0;
    }
    cr_expect_gt(kept, 0);
    cr_expect_leq(kept, 16);
    es_vcache_free(vc);
}

Test(es_vcache, clear_forgets)
{
    es_vcache *vc = es_vcache_new(4);
    cr_assert_not_null(vc);
    es_vcache_put(vc, "a", 2);
    es_vcache_clear(vc);
    cr_expect_eq(es_vcache_get(vc, "a"), 0);
    es_vcache_put(vc, "a", 5);
    cr_expect_eq(es_vcache_get(vc, "a"), 5);
    es_vcache_free(vc);
}
