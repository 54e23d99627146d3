/*
 * timefmt.c - clocks and the one timestamp format of SPEC §2.
 *
 * Every timestamp the services store or return is an int64 count of
 * milliseconds since the Unix epoch; this module turns it into the RFC 3339
 * text clients see ("2026-11-22T14:33:00.123Z", always UTC, always three
 * fraction digits) and parses any RFC 3339 date-time a client sends back into
 * that count, normalising its offset (a time that the offset moves out of
 * years 0000..9999 is refused: it has no such text). Parsing is strict and
 * does its own calendar arithmetic, so it neither depends on the process
 * time zone nor on the range of time_t.
 */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TIMEFMT_MS_PER_DAY 86400000LL

int64_t timefmt_now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0; /* cannot happen with a valid clock id */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double timefmt_mono(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0.0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Floor division and its non-negative remainder, for times before 1970. */
static int64_t timefmt_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void timefmt_format(int64_t ms, char *out)
{
    /* Floor division without multiplying back (INT64_MIN would overflow). */
    int64_t secs = ms / 1000;
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        secs--;
        frac += 1000; /* 0..999 */
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        /* Only reachable with a 32-bit time_t; keep the output well formed. */
        memcpy(out, "1970-01-01T00:00:00.000Z", sizeof "1970-01-01T00:00:00.000Z");
        return;
    }
    int n = snprintf(out, TIMEFMT_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, frac);
    if (n < 0 || n >= TIMEFMT_LEN) /* cannot happen: the widest year is 10 chars */
        memcpy(out, "1970-01-01T00:00:00.000Z", sizeof "1970-01-01T00:00:00.000Z");
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil). */
static int64_t timefmt_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = timefmt_floordiv(y, 400);
    int64_t yoe = y - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

static int timefmt_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* Reads exactly n ASCII digits at *p into *out and advances *p. */
static bool timefmt_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool timefmt_expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

bool timefmt_parse(const char *s, int64_t *ms)
{
    if (s == NULL)
        return false;
    const char *p = s;
    int year, mon, day, hour, min, sec, off_h = 0, off_m = 0, frac_ms = 0, sign = 0;

    /* full-date "YYYY-MM-DD" */
    if (!timefmt_digits(&p, 4, &year) || !timefmt_expect(&p, '-') ||
        !timefmt_digits(&p, 2, &mon) || !timefmt_expect(&p, '-') ||
        !timefmt_digits(&p, 2, &day))
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > timefmt_days_in_month(year, mon))
        return false;

    if (*p != 'T' && *p != 't')
        return false;
    p++;

    /* partial-time "HH:MM:SS[.frac]" */
    if (!timefmt_digits(&p, 2, &hour) || !timefmt_expect(&p, ':') ||
        !timefmt_digits(&p, 2, &min) || !timefmt_expect(&p, ':') ||
        !timefmt_digits(&p, 2, &sec))
        return false;
    if (hour > 23 || min > 59 || sec > 60)
        return false;
    if (sec == 60) /* a leap second: kept in order, just before the next second */
        sec = 59;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false; /* at least one digit */
        /* RFC 3339 allows any number of digits; we keep milliseconds and
         * truncate the rest. */
        int ndigits = 0;
        for (; *p >= '0' && *p <= '9'; p++, ndigits++)
            if (ndigits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
        for (; ndigits < 3; ndigits++)
            frac_ms *= 10;
    }

    /* time-offset "Z" / "+HH:MM" / "-HH:MM" */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (!timefmt_digits(&p, 2, &off_h) || !timefmt_expect(&p, ':') ||
            !timefmt_digits(&p, 2, &off_m))
            return false;
        if (off_h > 23 || off_m > 59)
            return false;
    } else {
        return false;
    }
    if (*p != '\0')
        return false;

    int64_t days = timefmt_days_from_civil(year, mon, day);
    int64_t local = days * TIMEFMT_MS_PER_DAY +
                    ((int64_t)hour * 3600 + min * 60 + sec) * 1000 + frac_ms;
    int64_t offset = (int64_t)sign * ((int64_t)off_h * 3600 + off_m * 60) * 1000;
    /* Normalised to UTC, the year must still have four digits (an offset
     * can push 9999-12-31 into year 10000, or 0000-01-01 into year -1). */
    int64_t utc = local - offset;
    if (utc < timefmt_days_from_civil(0, 1, 1) * TIMEFMT_MS_PER_DAY ||
        utc >= timefmt_days_from_civil(10000, 1, 1) * TIMEFMT_MS_PER_DAY)
        return false;
    *ms = utc;
    return true;
}
