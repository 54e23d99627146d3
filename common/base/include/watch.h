/*
 * watch.h - a generation counter that threads can wait on: "wake me when
 * something changed since I looked". Writers bump it after a commit (or when
 * a database notification arrives); long polls and streams wait on it. No
 * sleep loops, no missed wake-ups: read the generation before looking at the
 * data, then wait for it to move.
 */
#ifndef ESKIT_WATCH_H
#define ESKIT_WATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct watch watch;

watch *watch_new(void); /* NULL on OOM */
void watch_free(watch *w);

uint64_t watch_gen(watch *w);
void watch_bump(watch *w);
/* Waits until the generation differs from `seen`, watch_stop() was called,
 * or the monotonic clock (timefmt_mono) reaches `deadline`. Returns false
 * once stopped. */
bool watch_wait(watch *w, uint64_t seen, double deadline);
/* Wakes every waiter for good: later waits return false at once. */
void watch_stop(watch *w);
bool watch_stopped(watch *w);

#endif
