/*
 * http_guard.c - the header deadline of the HTTP server (http_internal.h).
 *
 * MHD's own connection timeout counts idleness, and starts again with every
 * byte, so a client that sends a partial request and then a byte every few
 * seconds holds its connection for ever (slowloris). The guard keeps every
 * open connection in a list with the moment it began waiting for the
 * headers of its next request (when it was accepted, or when its previous
 * request completed); a sweeper thread shuts down, once a second, the
 * connections that waited longer than the deadline. MHD then sees the
 * socket end and closes the connection as it closes any other, and tells
 * http_guard_close(), which takes it out of the list.
 *
 * MHD reports a connection closed (MHD_CONNECTION_NOTIFY_CLOSED) before it
 * closes its socket, and the list is changed and swept under one mutex: the
 * sweeper's shutdown() therefore only ever reaches a socket that is still
 * the connection's own, never a reused descriptor.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "http_internal.h"
#include "log.h"
#include "timefmt.h"

struct http_gconn {
    http_gconn *prev, *next; /* under the guard's mutex */
    int fd;
    bool cut; /* shut down by the sweeper (its mutex) */
    /* set by the connection's own thread without the mutex: since first */
    _Atomic int64_t since_ms; /* when it began waiting for a request's headers */
    atomic_bool in_request;   /* headers read, request not yet completed */
};

static int64_t http_guard_now_ms(void)
{
    return (int64_t)(timefmt_mono() * 1000.0);
}

struct http_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_gconn head; /* sentinel of the circular list */
    int64_t timeout_ms; /* the header deadline */
    bool stopping;
    pthread_t sweeper;
    metrics_family *m_cut; /* eskit_http_header_timeouts_total */
};

static void *http_guard_main(void *arg)
{
    http_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        (void)pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->stopping)
            break;
        int64_t now = http_guard_now_ms();
        int cut = 0;
        for (http_gconn *c = g->head.next; c != &g->head; c = c->next) {
            if (c->cut || atomic_load(&c->in_request) ||
                now - atomic_load(&c->since_ms) <= g->timeout_ms)
                continue;
            c->cut = true;
            (void)shutdown(c->fd, SHUT_RDWR);
            cut++;
        }
        if (cut) {
            metrics_add(g->m_cut, NULL, cut);
            log_info("http: closed %d connections that sent no complete request headers "
                     "within %lld ms",
                     cut, (long long)g->timeout_ms);
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

http_guard *http_guard_new(double timeout_s, metrics *m)
{
    http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->head.next = g->head.prev = &g->head;
    g->timeout_ms = (int64_t)(timeout_s * 1000.0);
    g->m_cut = metrics_counter(m, "eskit_http_header_timeouts_total",
                               "Connections closed because a request's headers did not "
                               "arrive in full within ESKIT_HTTP_HEADER_TIMEOUT_SECONDS.",
                               NULL);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (!g->m_cut || pthread_create(&g->sweeper, NULL, http_guard_main, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void http_guard_free(http_guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->sweeper, NULL);
    /* MHD_stop_daemon has closed every connection (and told us) by now */
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

http_gconn *http_guard_open(http_guard *g, int fd)
{
    http_gconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    atomic_store(&c->since_ms, http_guard_now_ms());
    pthread_mutex_lock(&g->mu);
    c->next = g->head.next;
    c->prev = &g->head;
    g->head.next->prev = c;
    g->head.next = c;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void http_guard_close(http_guard *g, http_gconn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void http_guard_request(http_gconn *c, bool in_request)
{
    if (!c)
        return;
    atomic_store(&c->since_ms, http_guard_now_ms());
    atomic_store(&c->in_request, in_request);
}
