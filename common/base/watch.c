/*
 * watch.c - the wake-up counter of watch.h: a mutex, a condition variable on
 * the monotonic clock, and a 64-bit generation.
 */
#include "watch.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "timefmt.h"

struct watch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t gen;
    bool stopped;
};

watch *watch_new(void)
{
    watch *w = calloc(1, sizeof *w);
    pthread_condattr_t attr;
    if (!w)
        return NULL;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    return w;
}

void watch_free(watch *w)
{
    if (!w)
        return;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

uint64_t watch_gen(watch *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t g = w->gen;
    pthread_mutex_unlock(&w->mu);
    return g;
}

void watch_bump(watch *w)
{
    pthread_mutex_lock(&w->mu);
    w->gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool watch_wait(watch *w, uint64_t seen, double deadline)
{
    struct timespec ts;
    double whole = floor(deadline);
    ts.tv_sec = (time_t)whole;
    ts.tv_nsec = (long)((deadline - whole) * 1e9);
    pthread_mutex_lock(&w->mu);
    while (!w->stopped && w->gen == seen) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break; /* time-out */
    }
    bool alive = !w->stopped;
    pthread_mutex_unlock(&w->mu);
    return alive;
}

void watch_stop(watch *w)
{
    pthread_mutex_lock(&w->mu);
    w->stopped = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

bool watch_stopped(watch *w)
{
    pthread_mutex_lock(&w->mu);
    bool s = w->stopped;
    pthread_mutex_unlock(&w->mu);
    return s;
}
