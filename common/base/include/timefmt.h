/*
 * timefmt.h - clocks and RFC 3339 timestamps (UTC, milliseconds).
 */
#ifndef ESKIT_TIMEFMT_H
#define ESKIT_TIMEFMT_H

#include <stdbool.h>
#include <stdint.h>

#define TIMEFMT_LEN 32

int64_t timefmt_now_ms(void);   /* wall clock, ms since the epoch */
double timefmt_mono(void);      /* monotonic seconds, for durations */

/* Writes "2026-11-22T14:33:00.123Z" into out (at least TIMEFMT_LEN bytes). */
void timefmt_format(int64_t ms, char *out);

/* Parses any RFC 3339 date-time (offset or Z, optional fraction; sub-ms
 * digits are truncated). Returns false when malformed or out of range,
 * also when normalising the offset to UTC leaves years 0000..9999. */
bool timefmt_parse(const char *s, int64_t *ms);

#endif
