/*
 * fuzz_timefmt.c - libFuzzer target for timestamps (common/base/timefmt.c): the
 * bytes are a timestamp as a client sends it (occurred_on, or a consumer
 * offset's time), cut at the first NUL.
 *
 * Checks: what timefmt_parse accepts is RFC 3339 as glibc's timegm()
 * counts it (a differential check of the calendar arithmetic and the
 * offset), and its normalised form timefmt_format() is the strict
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" that parses back to the same instant: the
 * services write that text out, so it must be one they read in. The first
 * 8 bytes, as a count of milliseconds, also go through timefmt_format,
 * which must stay within TIMEFMT_LEN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzzlib.h"
#include "timefmt.h"

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" exactly. */
static bool strict_shape(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    return true;
}

/* The instant of a string timefmt_parse accepted, by glibc (whole
 * seconds, a leap second counted as :59 as timefmt does). */
static bool glibc_ms(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return false;
    const char *p = s + n;
    int frac = 0, digits = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
    for (; digits < 3; digits++)
        frac *= 10;
    int sign = 0;
    if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return false;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec == 60 ? 59 : sec;
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - (int64_t)sign * (oh * 3600 + om * 60)) * 1000 + frac;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[TIMEFMT_LEN], again[TIMEFMT_LEN];
    if (size >= 8) {
        int64_t raw;
        memcpy(&raw, data, sizeof raw);
        memset(out, 0, sizeof out);
        timefmt_format(raw, out);
        if (strnlen(out, sizeof out) >= sizeof out)
            fuzzlib_fail("timefmt_format overflows TIMEFMT_LEN");
    }
    char *s = fuzzlib_cstr(data, size);
    int64_t ms = 0, ms2 = 0, ref = 0;
    if (timefmt_parse(s, &ms)) {
        if (!glibc_ms(s, &ref) || ref != ms)
            fuzzlib_fail("timefmt_parse('%s') = %lld, glibc says %lld", s, (long long)ms,
                         (long long)ref);
        timefmt_format(ms, out);
        if (!strict_shape(out))
            fuzzlib_fail("'%s' is normalised to '%s', not YYYY-MM-DDTHH:MM:SS.mmmZ", s, out);
        if (!timefmt_parse(out, &ms2) || ms2 != ms)
            fuzzlib_fail("'%s' is normalised to '%s', which does not parse back", s, out);
        timefmt_format(ms2, again);
        if (strcmp(out, again) != 0)
            fuzzlib_fail("the normal form of '%s' is not stable", s);
    }
    free(s);
    return 0;
}
