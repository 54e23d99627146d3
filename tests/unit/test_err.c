/*
 * test_err.c - the error struct (common/base/err.c): a message is always UTF-8,
 * whatever it quotes, so that it can be rendered as a JSON string.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "http_server.h"

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

/* What http_reply_err builds; NULL when the message is not UTF-8. */
static json_t *error_body(const err *e)
{
    return json_pack("{s:{s:s, s:s, s:o}}", "error", "code", err_code_name(e->code), "message",
                     e->message, "details", json_object());
}

/* Found by fuzz/fuzz_selector: a quoted value cut by a precision
 * ("got '%.100s'") in the middle of a character made the error body fail
 * to render (a 500 instead of the 400). */
Test(err, a_value_cut_by_a_precision_renders)
{
    char sel[130] = "a";
    for (int i = 0; i < 60; i++)
        memcpy(sel + 1 + 2 * i, "\xc3\xa9", 3);
    err e = ERR_INIT;
    err_set(&e, ERR_INVALID_ARGUMENT, "selector must be ..., got '%.100s'", sel);
    json_t *body = error_body(&e);
    cr_assert_not_null(body, "%s", e.message);
    json_decref(body);
    err_clear(&e);
}

/* Found by fuzz/fuzz_params: the pure query readers quote the value. */
Test(err, query_values_that_are_not_utf8_get_a_400_that_renders)
{
    err e = ERR_INIT;
    int64_t v = 0;
    bool b = false;
    cr_assert_not(http_param_int("from_id", "\xff", 1, 0, INT64_MAX, &v, &e));
    cr_expect_eq(e.code, ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(e.message, "from_id must be an integer, got '?'");
    json_t *body = error_body(&e);
    cr_expect_not_null(body);
    json_decref(body);
    cr_assert_not(http_param_bool("skip_payload", "\x80", false, &b, &e));
    cr_expect_str_eq(e.message, "skip_payload must be true or false, got '?'");
    err_clear(&e);
}
