/*
 * test_validate.c - the SPEC §2 syntax of ids, entity types, event types and
 * log selectors (common/base/validate.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "validate.h"

static char *repeat(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
    return out;
}

/* --- ids ---------------------------------------------------------------------- */

Test(validate, id_lengths)
{
    char s[300];
    cr_assert_not(validate_id(""));
    cr_assert_not(validate_id(NULL));
    cr_assert(validate_id("a"));
    cr_assert(validate_id(repeat(s, 'a', 128)));
    cr_assert_not(validate_id(repeat(s, 'a', 129)));
    cr_assert_not(validate_id(repeat(s, 'a', 299)));
}

Test(validate, id_every_allowed_character)
{
    const char *allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-";
    cr_assert(validate_id(allowed));
    cr_assert(validate_id("7c9e6679-7425-40de-944b-e07fc1f90ae7"));
    cr_assert(validate_id("user@example.com"));
    cr_assert(validate_id("urn:acme:42"));
    cr_assert(validate_id("."));
    cr_assert(validate_id(".."));
    cr_assert(validate_id("-"));
    for (int c = 1; c < 256; c++) {
        char s[4] = {'a', (char)c, 'b', '\0'};
        bool want = strchr(allowed, c) != NULL;
        cr_assert_eq(validate_id(s), want, "character 0x%02x", c);
    }
}

Test(validate, id_forbidden)
{
    const char *bad[] = {"a b", "a/b", "a?b", "a#b", "a%20b", "a+b", "a*b", "\xc3\xa9",
                         "a\tb", "a\nb", "a,b", "a\"b", "a\\b", "(a)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(validate_id(bad[i]), "%s", bad[i]);
}

/* --- entity types ------------------------------------------------------------- */

Test(validate, entity_type)
{
    const char *good[] = {"User", "com.acme.billing.Invoice", "a", "a.b", "A_b-C.d_9",
                          "_", "-", "1.2.3", "x-y.z_w"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert(validate_entity_type(good[i]), "%s", good[i]);
    const char *bad[] = {"", ".", "..", ".User", "User.", "a..b", "Us er", "User*", "*",
                         "a.*", "a:b", "a@b", "a/b", "Usér", "a.b.", "a. b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(validate_entity_type(bad[i]), "%s", bad[i]);
    cr_assert_not(validate_entity_type(NULL));
}

Test(validate, entity_type_every_character)
{
    const char *allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    cr_assert(validate_entity_type(allowed));
    for (int c = 1; c < 256; c++) {
        char s[4] = {'a', (char)c, 'b', '\0'};
        bool want = c == '.' || strchr(allowed, c) != NULL;
        cr_assert_eq(validate_entity_type(s), want, "character 0x%02x", c);
    }
}

Test(validate, entity_type_length)
{
    char s[300];
    cr_assert(validate_entity_type(repeat(s, 'a', 200)));
    cr_assert_not(validate_entity_type(repeat(s, 'a', 201)));
    repeat(s, 'a', 200);
    s[100] = '.';
    cr_assert(validate_entity_type(s));
}

/* --- event types -------------------------------------------------------------- */

Test(validate, event_type)
{
    size_t n = 999;
    cr_assert(validate_event_type("User.Created", &n));
    cr_assert_eq(n, 4);
    cr_assert(validate_event_type("com.acme.billing.Invoice.Paid", &n));
    cr_assert_eq(n, strlen("com.acme.billing.Invoice"));
    cr_assert(validate_event_type("a.b", &n));
    cr_assert_eq(n, 1);
    cr_assert(validate_event_type("a.b", NULL));

    const char *bad[] = {"", "User", "User.", ".Created", "User..Created", "User.Cre ated",
                         "User.*", "*.Created", "User.Created.", "a.b:c", "."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 999;
        cr_assert_not(validate_event_type(bad[i], &n), "%s", bad[i]);
        cr_assert_eq(n, 999, "entity_len touched on failure: %s", bad[i]);
    }
    cr_assert_not(validate_event_type(NULL, &n));
}

Test(validate, event_type_length)
{
    char s[300];
    repeat(s, 'a', 200);
    s[150] = '.';
    size_t n = 0;
    cr_assert(validate_event_type(s, &n));
    cr_assert_eq(n, 150);
    repeat(s, 'a', 201);
    s[150] = '.';
    cr_assert_not(validate_event_type(s, &n));
}

/* --- selectors ---------------------------------------------------------------- */

Test(validate, selector_valid)
{
    static const struct {
        const char *in, *entity, *event;
    } cases[] = {
        {"*", "", ""},
        {"*.*", "", ""},
        {"User.*", "User", ""},
        {"*.Created", "", "Created"},
        {"User.Created", "User", "Created"},
        {"com.acme.User.Updated", "com.acme.User", "Updated"},
        {"com.acme.User.*", "com.acme.User", ""},
        {"a.b", "a", "b"},
        {"A_b-1.x_Y-2", "A_b-1", "x_Y-2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        log_selector sel;
        memset(&sel, 'x', sizeof sel);
        cr_assert(validate_selector(cases[i].in, &sel), "%s", cases[i].in);
        cr_assert_str_eq(sel.entity, cases[i].entity, "%s", cases[i].in);
        cr_assert_str_eq(sel.event, cases[i].event, "%s", cases[i].in);
    }
}

Test(validate, selector_invalid)
{
    const char *bad[] = {
        "",          "User",         "Created",      ".",           "*.",
        ".*",        "User.",        ".Created",     "**",          "**.Created",
        "User.**",   "Us*er.Created", "User.Cr*ated", "*.*.*",       "a.*.Created",
        "*.a.b",     "User..Created", "User .Created", "User. Created", "User.Created ",
        "User/x.Created", "User.Created:x", "*User.Created", "User*.Created", "*.Created*",
        "\xc3\xa9.Created",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_selector sel;
        cr_assert_not(validate_selector(bad[i], &sel), "%s", bad[i]);
    }
    log_selector sel;
    cr_assert_not(validate_selector(NULL, &sel));
}

Test(validate, selector_length)
{
    char s[300];
    log_selector sel;
    /* 198 + ".*" = 200 */
    repeat(s, 'a', 198);
    memcpy(s + 198, ".*", 3);
    cr_assert(validate_selector(s, &sel));
    cr_assert_eq(strlen(sel.entity), 198);
    cr_assert_str_eq(sel.event, "");
    /* "*." + 198 = 200 */
    s[0] = '*';
    s[1] = '.';
    repeat(s + 2, 'b', 198);
    cr_assert(validate_selector(s, &sel));
    cr_assert_str_eq(sel.entity, "");
    cr_assert_eq(strlen(sel.event), 198);
    /* 201 characters */
    repeat(s, 'a', 199);
    memcpy(s + 199, ".*", 3);
    cr_assert_not(validate_selector(s, &sel));
}

/* --- UTF-8 text (query values and path segments after decoding) ---------------- */

Test(validate, utf8_text_valid)
{
    cr_assert(validate_utf8_text("", 0));
    cr_assert(validate_utf8_text("plain", 5));
    cr_assert(validate_utf8_text("caf\xc3\xa9", 5));                 /* U+00E9 */
    cr_assert(validate_utf8_text("\xe2\x82\xac", 3));                /* U+20AC */
    cr_assert(validate_utf8_text("\xf0\x9f\x98\x80", 4));            /* U+1F600 */
    cr_assert(validate_utf8_text("\xf4\x8f\xbf\xbf", 4));            /* U+10FFFF */
    cr_assert(validate_utf8_text("\xed\x9f\xbf", 3));                /* U+D7FF */
    cr_assert_eq(validate_utf8_char("\xc3\xa9x", 3), 2);
    cr_assert_eq(validate_utf8_char("a", 1), 1);
}

Test(validate, utf8_text_invalid)
{
    cr_assert_not(validate_utf8_text("\xff", 1));
    cr_assert_not(validate_utf8_text("\x80", 1));                    /* lone continuation */
    cr_assert_not(validate_utf8_text("ab\xc3", 3));                  /* cut short */
    cr_assert_not(validate_utf8_text("\xc3\xa9", 1));                /* cut by the length */
    cr_assert_not(validate_utf8_text("\xc0\xaf", 2));                /* overlong '/' */
    cr_assert_not(validate_utf8_text("\xe0\x80\xaf", 3));            /* overlong */
    cr_assert_not(validate_utf8_text("\xed\xa0\x80", 3));            /* surrogate */
    cr_assert_not(validate_utf8_text("\xf4\x90\x80\x80", 4));        /* above U+10FFFF */
    cr_assert_not(validate_utf8_text("\xc3(", 2));
    cr_assert_not(validate_utf8_text("d1\0zz", 5));                  /* a NUL inside */
    cr_assert_not(validate_utf8_text("\0", 1));
    cr_assert_eq(validate_utf8_char("\xc3", 1), 0);
}
