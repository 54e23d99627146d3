/*
 * log.h - one line per event on stderr, as text or as JSON (ESKIT_LOG_FORMAT).
 *
 * The level is checked before anything is formatted. Thread-safe: each line
 * is written with a single write(2).
 */
#ifndef ESKIT_LOG_H
#define ESKIT_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* service: a short name put on every line ("event-store"). json: JSON lines. */
void log_init(const char *service, bool json, log_level min_level);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* The access log: one line per finished HTTP request. */
void log_request(const char *method, const char *path, int status, double seconds,
                 size_t bytes_out);

#endif
