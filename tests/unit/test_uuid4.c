/*
 * test_uuid4.c - version 4 UUIDs (common/uuid4.c).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "uuid4.h"
#include "validate.h"

static void check_shape(const char *u)
{
    cr_assert_eq(strlen(u), 36, "%s", u);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            cr_assert_eq(u[i], '-', "%s", u);
        } else {
            cr_assert((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'),
                      "not lower hex at %d: %s", i, u);
        }
    }
    cr_assert_eq(u[14], '4', "version nibble: %s", u);
    cr_assert(strchr("89ab", u[19]) != NULL, "variant nibble: %s", u);
    cr_assert(validate_id(u), "a uuid is a valid id: %s", u);
}

static int cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

Test(uuid4, shape_and_uniqueness)
{
    enum { N = 1000 };
    char (*ids)[UUID4_LEN] = calloc(N, UUID4_LEN);
    cr_assert_not_null(ids);
    for (int i = 0; i < N; i++) {
        uuid4_generate(ids[i]);
        check_shape(ids[i]);
    }
    qsort(ids, N, UUID4_LEN, cmp);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate %s", ids[i]);
    free(ids);
}
