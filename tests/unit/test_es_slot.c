/*
 * test_es_slot.c - the open-addressing tables of a group transaction
 * (services/event-store/es_slot.c, linked with the event store's modules):
 * what a lookup finds and adds, keys compared by content and borrowed,
 * collisions probed in order and around the end of the table, and a table
 * filled up to its last free slot.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "es_slot.h"
#include "strhash.h"

typedef struct tslot {
    const char *id; /* the key: first member */
    int value;
    char pad[13];   /* slots need not be a pointer's size */
} tslot;

#define CAP 16

static size_t home(const char *id) { return (size_t)strhash(id) & (CAP - 1); }

static tslot *get(tslot *t, const char *id, bool add)
{
    return es_slot(t, sizeof *t, CAP, id, add);
}

/* Writes into out (of len bytes) an id "k<n>" whose home slot is `want`,
 * other than `not`; n counts up from *from. */
static void id_at(size_t want, const char *not, char *out, size_t len, int *from)
{
    for (;; (*from)++) {
        snprintf(out, len, "k%d", *from);
        if (home(out) == want && (!not || strcmp(out, not) != 0)) {
            (*from)++;
            return;
        }
    }
}

Test(es_slot, lookup_add_and_find)
{
    tslot t[CAP] = {{0}};
    cr_expect_null(get(t, "u1", false));
    tslot *s = get(t, "u1", true);
    cr_assert_not_null(s);
    cr_expect_str_eq(s->id, "u1");
    cr_expect_eq(s->value, 0);
    cr_expect_eq(s, &t[home("u1")]); /* no collision: its home slot */
    s->value = 7;
    cr_expect_eq(get(t, "u1", false), s);
    cr_expect_eq(get(t, "u1", true), s); /* adding again finds it */
    cr_expect_eq(get(t, "u1", false)->value, 7);
    cr_expect_null(get(t, "u2", false));
    /* the empty id is an id like any other */
    tslot *e = get(t, "", true);
    cr_assert_not_null(e);
    cr_expect_neq(e, s);
    cr_expect_eq(get(t, "", false), e);
}

Test(es_slot, keys_are_compared_by_content_and_borrowed)
{
    tslot t[CAP] = {{0}};
    char first[] = "stream-1", second[] = "stream-1";
    tslot *s = get(t, first, true);
    cr_assert_not_null(s);
    cr_expect_eq(s->id, first); /* the pointer given, not a copy */
    cr_expect_eq(get(t, second, false), s);
    cr_expect_eq(get(t, second, true), s);
    cr_expect_eq(s->id, first); /* not replaced by a later add */
    cr_expect_null(get(t, "stream-2", false));
    cr_expect_null(get(t, "stream-", false));
    cr_expect_null(get(t, "stream-10", false));
}

Test(es_slot, collisions_probe_the_next_slots)
{
    tslot t[CAP] = {{0}};
    char a[16], b[16], c[16], d[16];
    int n = 0;
    id_at(5, NULL, a, sizeof a, &n);
    id_at(5, a, b, sizeof b, &n);
    id_at(5, b, c, sizeof c, &n);
    id_at(6, NULL, d, sizeof d, &n);
    tslot *sa = get(t, a, true), *sb = get(t, b, true);
    cr_expect_eq(sa, &t[5]);
    cr_expect_eq(sb, &t[6]);
    /* d's home is taken by b: it goes on to the next free slot */
    tslot *sd = get(t, d, true);
    cr_expect_eq(sd, &t[7]);
    cr_expect_eq(get(t, a, false), sa);
    cr_expect_eq(get(t, b, false), sb);
    cr_expect_eq(get(t, d, false), sd);
    /* a colliding id never added is looked for up to the first free slot */
    cr_expect_null(get(t, c, false));
    tslot *sc = get(t, c, true);
    cr_expect_eq(sc, &t[8]);
    cr_expect_eq(get(t, c, false), sc);
}

Test(es_slot, probing_wraps_around_the_end)
{
    tslot t[CAP] = {{0}};
    char a[16], b[16];
    int n = 0;
    id_at(CAP - 1, NULL, a, sizeof a, &n);
    id_at(CAP - 1, a, b, sizeof b, &n);
    cr_expect_eq(get(t, a, true), &t[CAP - 1]);
    cr_expect_eq(get(t, b, true), &t[0]);
    cr_expect_eq(get(t, b, false), &t[0]);
    cr_expect_str_eq(t[0].id, b);
}

Test(es_slot, full_but_one)
{
    tslot t[CAP] = {{0}};
    char ids[CAP - 1][16];
    for (int i = 0; i < CAP - 1; i++) {
        snprintf(ids[i], sizeof ids[i], "id-%d", i);
        tslot *s = get(t, ids[i], true);
        cr_assert_not_null(s);
        s->value = i + 1;
    }
    for (int i = 0; i < CAP - 1; i++) {
        tslot *s = get(t, ids[i], false);
        cr_assert_not_null(s, "%s lost", ids[i]);
        cr_expect_eq(s->value, i + 1);
    }
    /* with one slot left free, a missing id ends at it */
    cr_expect_null(get(t, "missing", false));
    size_t used = 0;
    for (int i = 0; i < CAP; i++)
        used += t[i].id != NULL;
    cr_expect_eq(used, CAP - 1);
}
