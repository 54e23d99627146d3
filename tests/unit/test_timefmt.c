/*
 * test_timefmt.c - RFC 3339 formatting and parsing (common/base/timefmt.c).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

/* 2026-11-22T14:33:00.123Z, computed independently:
 * days 1970-01-01..2026-11-22 = 20779. */
#define T_2026 (20779LL * 86400000LL + (14 * 3600 + 33 * 60) * 1000LL + 123)

static int64_t parse_ok(const char *s)
{
    int64_t ms = -42;
    cr_assert(timefmt_parse(s, &ms), "should parse: %s", s);
    return ms;
}

static void parse_bad(const char *s)
{
    int64_t ms = -42;
    cr_assert_not(timefmt_parse(s, &ms), "should reject: %s", s);
    cr_assert_eq(ms, -42, "output touched on failure: %s", s);
}

static void fmt_is(int64_t ms, const char *want)
{
    char out[TIMEFMT_LEN];
    memset(out, 'x', sizeof out);
    timefmt_format(ms, out);
    cr_assert_str_eq(out, want, "format(%lld)", (long long)ms);
}

Test(timefmt, format_epoch_and_known)
{
    fmt_is(0, "1970-01-01T00:00:00.000Z");
    fmt_is(1, "1970-01-01T00:00:00.001Z");
    fmt_is(999, "1970-01-01T00:00:00.999Z");
    fmt_is(T_2026, "2026-11-22T14:33:00.123Z");
    fmt_is(951782400000LL, "2000-02-29T00:00:00.000Z");
    fmt_is(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

Test(timefmt, format_negative_uses_floor)
{
    fmt_is(-1, "1969-12-31T23:59:59.999Z");
    fmt_is(-999, "1969-12-31T23:59:59.001Z");
    fmt_is(-1000, "1969-12-31T23:59:59.000Z");
    fmt_is(-1001, "1969-12-31T23:59:58.999Z");
    fmt_is(-86400000LL, "1969-12-31T00:00:00.000Z");
    fmt_is(-62135596800000LL, "0001-01-01T00:00:00.000Z");
    fmt_is(-62167219200000LL, "0000-01-01T00:00:00.000Z");
}

Test(timefmt, format_extremes_stay_within_buffer)
{
    char out[TIMEFMT_LEN];
    timefmt_format(INT64_MAX, out);
    cr_assert_lt(strlen(out), TIMEFMT_LEN);
    cr_assert_eq(out[strlen(out) - 1], 'Z');
    timefmt_format(INT64_MIN, out);
    cr_assert_lt(strlen(out), TIMEFMT_LEN);
    cr_assert_eq(out[strlen(out) - 1], 'Z');
}

Test(timefmt, parse_basic)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.000Z"), 0);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.123Z"), T_2026);
    cr_assert_eq(parse_ok("2026-11-22t14:33:00.123z"), T_2026);
    cr_assert_eq(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    cr_assert_eq(parse_ok("9999-12-31T23:59:59.999Z"), 253402300799999LL);
    cr_assert_eq(parse_ok("0000-01-01T00:00:00Z"), -62167219200000LL);
}

Test(timefmt, parse_offsets_normalised)
{
    cr_assert_eq(parse_ok("2026-11-22T16:33:00.123+02:00"), T_2026);
    cr_assert_eq(parse_ok("2026-11-22T12:03:00.123-02:30"), T_2026);
    cr_assert_eq(parse_ok("2026-11-23T04:33:00.123+14:00"), T_2026);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.123+00:00"), T_2026);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.123-00:00"), T_2026);
    cr_assert_eq(parse_ok("2026-11-22T00:00:00+23:59"),
                 T_2026 - 123 - (14 * 3600 + 33 * 60) * 1000LL - (23 * 3600 + 59 * 60) * 1000LL);
    /* crossing the epoch and a year boundary */
    cr_assert_eq(parse_ok("1970-01-01T01:00:00+01:00"), 0);
    cr_assert_eq(parse_ok("1969-12-31T23:00:00-01:00"), 0);
}

/* A timestamp whose offset moves it out of years 0000..9999 cannot be
 * written back as RFC 3339 with a 4-digit year: refused, while the edges
 * that stay inside are kept and format back as they were normalised. */
Test(timefmt, parse_refuses_offsets_leaving_years_0000_to_9999)
{
    parse_bad("9999-12-31T23:30:00-01:00");
    parse_bad("9999-12-31T23:59:59.999-00:01");
    parse_bad("0000-01-01T00:30:00+01:00");
    parse_bad("0000-01-01T00:00:00.000+00:01");
    char out[TIMEFMT_LEN];
    timefmt_format(parse_ok("9999-12-31T23:59:59.999Z"), out);
    cr_assert_str_eq(out, "9999-12-31T23:59:59.999Z");
    timefmt_format(parse_ok("9999-12-31T22:59:59.999-01:00"), out);
    cr_assert_str_eq(out, "9999-12-31T23:59:59.999Z");
    timefmt_format(parse_ok("0000-01-01T00:00:00.000Z"), out);
    cr_assert_str_eq(out, "0000-01-01T00:00:00.000Z");
    timefmt_format(parse_ok("0000-01-01T01:00:00+01:00"), out);
    cr_assert_str_eq(out, "0000-01-01T00:00:00.000Z");
}

Test(timefmt, parse_fraction_lengths_and_truncation)
{
    int64_t base = parse_ok("2026-11-22T14:33:00Z");
    cr_assert_eq(base, T_2026 - 123);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.1Z"), base + 100);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.12Z"), base + 120);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.123Z"), base + 123);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.1239Z"), base + 123);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.123999Z"), base + 123);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.999999999Z"), base + 999);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.000000001Z"), base);
    cr_assert_eq(parse_ok("2026-11-22T14:33:00.05+01:00"), base - 3600000 + 50);
}

Test(timefmt, parse_leap_years)
{
    parse_ok("2024-02-29T00:00:00Z");
    parse_ok("2000-02-29T00:00:00Z");
    parse_ok("1600-02-29T00:00:00Z");
    parse_ok("0000-02-29T00:00:00Z");
    parse_bad("2023-02-29T00:00:00Z");
    parse_bad("1900-02-29T00:00:00Z");
    parse_bad("2100-02-29T00:00:00Z");
    parse_bad("2024-02-30T00:00:00Z");
    cr_assert_eq(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-29T00:00:00Z"),
                 86400000LL);
}

Test(timefmt, parse_month_lengths)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; m++) {
        char s[64];
        int n = snprintf(s, sizeof s, "2023-%02d-%02dT00:00:00Z", m, days[m - 1]);
        cr_assert(n > 0 && (size_t)n < sizeof s);
        parse_ok(s);
        n = snprintf(s, sizeof s, "2023-%02d-%02dT00:00:00Z", m, days[m - 1] + 1);
        cr_assert(n > 0 && (size_t)n < sizeof s);
        parse_bad(s);
    }
}

Test(timefmt, parse_leap_second_clamped)
{
    cr_assert_eq(parse_ok("2016-12-31T23:59:60Z"), parse_ok("2016-12-31T23:59:59Z"));
    cr_assert_eq(parse_ok("2016-12-31T23:59:60.500Z"), parse_ok("2016-12-31T23:59:59.500Z"));
    parse_bad("2016-12-31T23:59:61Z");
}

Test(timefmt, parse_pre_1970_round_trip)
{
    const char *cases[] = {
        "1969-12-31T23:59:59.999Z", "1969-07-20T20:17:40.000Z", "1900-01-01T00:00:00.000Z",
        "1600-02-29T12:34:56.789Z", "0001-01-01T00:00:00.000Z", "0000-01-01T00:00:00.001Z",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = parse_ok(cases[i]);
        cr_assert_lt(ms, 0);
        char out[TIMEFMT_LEN];
        timefmt_format(ms, out);
        cr_assert_str_eq(out, cases[i]);
    }
}

Test(timefmt, round_trip_sweep)
{
    /* every ~10 days (plus odd seconds and milliseconds) across 0000..9999 */
    int64_t lo = -62167219200000LL, hi = 253402300799999LL;
    for (int64_t ms = lo; ms <= hi; ms += 864000000LL + 3723007) {
        char out[TIMEFMT_LEN];
        timefmt_format(ms, out);
        int64_t back = 0;
        if (!timefmt_parse(out, &back) || back != ms)
            cr_assert_fail("round trip of %lld: %s -> %lld", (long long)ms, out,
                           (long long)back);
    }
}

Test(timefmt, parse_rejects_malformed)
{
    const char *bad[] = {
        "",
        "2026",
        "2026-11-22",
        "2026-11-22T14:33:00",           /* no offset */
        "2026-11-22 14:33:00Z",          /* space separator */
        "2026-11-22X14:33:00Z",
        "2026-11-22T14:33Z",             /* no seconds */
        "2026-11-22T14:33:00.Z",         /* empty fraction */
        "2026-11-22T14:33:00,123Z",      /* comma fraction */
        "2026-11-22T14:33:00.123ZZ",     /* trailing junk */
        "2026-11-22T14:33:00.123Z ",
        " 2026-11-22T14:33:00.123Z",
        "2026-11-22T14:33:00+02",        /* short offset */
        "2026-11-22T14:33:00+0200",
        "2026-11-22T14:33:00+2:00",
        "2026-11-22T14:33:00+24:00",
        "2026-11-22T14:33:00+02:60",
        "2026-11-22T14:33:00+02:00junk",
        "26-11-22T14:33:00Z",
        "+2026-11-22T14:33:00Z",
        "12026-11-22T14:33:00Z",
        "2026-1-22T14:33:00Z",
        "2026-11-2T14:33:00Z",
        "2026-00-22T14:33:00Z",
        "2026-13-22T14:33:00Z",
        "2026-11-00T14:33:00Z",
        "2026-11-31T14:33:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T14:60:00Z",
        "2026-11-22T14:33:99Z",
        "2026-11-22T1a:33:00Z",
        "2026-11-22T14:33:00.12a3Z",
        "2026-11-22T14:33:00UTC",
        "2026-11-22T14:33:00.123Z\n",
        "２026-11-22T14:33:00Z",          /* non-ASCII digit */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i]);
    int64_t ms = -42;
    cr_assert_not(timefmt_parse(NULL, &ms));
}

Test(timefmt, clocks)
{
    int64_t now = timefmt_now_ms();
    /* after 2020-01-01 and before 2100-01-01 */
    cr_assert_gt(now, 1577836800000LL);
    cr_assert_lt(now, 4102444800000LL);
    double a = timefmt_mono();
    double b = timefmt_mono();
    cr_assert_geq(b, a);
    cr_assert_gt(a, 0.0);
}
