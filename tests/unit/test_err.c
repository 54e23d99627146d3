/*
 * test_err.c - the error struct (common/err.c): a message is always UTF-8,
 * whatever it quotes, so that it can be rendered as a JSON string.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "err.h"

Test(err, message_keeps_utf8)
{
    err e = ERR_INIT;
    err_set(&e, ERR_INVALID_ARGUMENT, "caf\xc3\xa9 %s", "\xe2\x82\xac");
    cr_assert_str_eq(e.message, "caf\xc3\xa9 \xe2\x82\xac");
    cr_assert_eq(e.code, ERR_INVALID_ARGUMENT);
    err_clear(&e);
}

Test(err, bytes_that_are_not_utf8_become_question_marks)
{
    err e = ERR_INIT;
    err_set(&e, ERR_INVALID_ARGUMENT, "Last-Event-ID must be a log id, got '%s'", "5\xff\xc3x");
    cr_assert_str_eq(e.message, "Last-Event-ID must be a log id, got '5??x'");
    err_set_details(&e, ERR_CONFLICT, NULL, "%s", "\xed\xa0\x80x");  /* a surrogate */
    cr_assert_str_eq(e.message, "???x");
    err_clear(&e);
}

Test(err, a_message_cut_inside_a_character_stays_utf8)
{
    err e = ERR_INIT;
    char longer[sizeof e.message + 8];
    memset(longer, 'a', sizeof longer);
    /* a 2-byte character across the end of the message buffer */
    longer[sizeof e.message - 2] = '\xc3';
    longer[sizeof e.message - 1] = '\xa9';
    longer[sizeof longer - 1] = '\0';
    err_set(&e, ERR_INTERNAL, "%s", longer);
    size_t n = strlen(e.message);
    cr_assert_eq(n, sizeof e.message - 1);
    cr_assert_eq(e.message[n - 1], '?');
    err_clear(&e);
}
