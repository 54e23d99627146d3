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

Test(uuid4, from_name_is_version_5_and_stable)
{
    char a[UUID4_LEN], b[UUID4_LEN], c[UUID4_LEN], v[VALIDATE_UUID_LEN];
    uuid4_from_name(a, "key:k1", 6);
    uuid4_from_name(b, "key:k1", 6);
    uuid4_from_name(c, "key:k2", 6);
    cr_assert_str_eq(a, b);
    cr_assert_str_neq(a, c);
    cr_assert_eq(a[14], '5', "version nibble: %s", a);
    cr_assert(strchr("89ab", a[19]) != NULL, "variant nibble: %s", a);
    cr_assert(validate_uuid(a, v), "%s", a);
    cr_assert_str_eq(v, a);
    /* the namespace is fixed: this value may never change (derived ids) */
    uuid4_from_name(a, "", 0);
    uuid4_from_name(b, "", 0);
    cr_assert_str_eq(a, b);
}

Test(validate, uuid_forms)
{
    char v[VALIDATE_UUID_LEN];
    cr_assert(validate_uuid("0B7D3C1E-4F2A-4C8E-9B1D-5E6F7A8B9C0D", v));
    cr_assert_str_eq(v, "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d");
    cr_assert(!validate_uuid("0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0", v));
    cr_assert(!validate_uuid("0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0dd", v));
    cr_assert(!validate_uuid("0b7d3c1e4f2a-4c8e-9b1d-5e6f7a8b9c0d-", v));
    cr_assert(!validate_uuid("0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0g", v));
    cr_assert(!validate_uuid("", v));
    cr_assert(!validate_uuid(NULL, v));
}
