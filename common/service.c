/*
 * service.c - the start-up and shutdown steps shared by every service's
 * main() (see service.h). Signals are taken synchronously with sigwait() in
 * the main thread, so no code runs in a signal handler.
 */
#include "service.h"

#include <signal.h>
#include <string.h>

#include "log.h"

void service_log_init(const char *service, const service_common *c)
{
    log_level lvl = LOG_INFO;
    if (c->log_level && !strcmp(c->log_level, "debug"))
        lvl = LOG_DEBUG;
    else if (c->log_level && !strcmp(c->log_level, "warn"))
        lvl = LOG_WARN;
    else if (c->log_level && !strcmp(c->log_level, "error"))
        lvl = LOG_ERROR;
    log_init(service, c->log_format && !strcmp(c->log_format, "json"), lvl);
}

void service_signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int service_signals_wait(void)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}
