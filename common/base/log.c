/*
 * log.c - the process log and the access log, one line per event on stderr.
 *
 * log_init() is called once by main() before any thread starts; it picks the
 * service name, the format (text or JSON lines, from ESKIT_LOG_FORMAT) and the
 * lowest level written. log_msg() checks the level before formatting, builds
 * the whole line in memory and hands it to a single write(2), so lines from
 * concurrent threads never interleave. Text lines escape control characters
 * and JSON lines are valid UTF-8 JSON whatever the message holds, so a client
 * cannot forge log lines through a request path.
 *
 *   2026-11-22T14:33:00.123Z INFO event-store: message
 *   {"ts":"2026-11-22T14:33:00.123Z","level":"info","service":"event-store","msg":"message"}
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define LOG_MSG_MAX 8192           /* longer messages are cut, with "..." */
#define LOG_LINE_MAX (64 * 1024)   /* an escaped message grows at most 6 times */

static struct {
    char service[64];
    bool json;
    log_level min;
} log_state = {"eskit", false, LOG_INFO};

void log_init(const char *service, bool json, log_level min_level)
{
    size_t len = service ? strlen(service) : 0;
    if (len >= sizeof log_state.service)
        len = sizeof log_state.service - 1;
    if (len)
        memcpy(log_state.service, service, len);
    log_state.service[len] = '\0';
    log_state.json = json;
    log_state.min = min_level;
}

static const char *log_level_name(log_level level, bool json)
{
    static const char *const upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    static const char *const lower[] = {"debug", "info", "warn", "error"};
    if ((unsigned)level > LOG_ERROR)
        level = LOG_ERROR;
    return json ? lower[level] : upper[level];
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t log_utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/*
 * Appends s, escaped. JSON: a string body (quotes not included), control
 * characters as \uXXXX or \n-style, invalid UTF-8 as U+FFFD. Text: control
 * characters as \n, \r, \t or \xNN, so the line stays one line; other bytes
 * are copied.
 */
static int log_put_escaped(buf *b, const char *s, bool json)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        int rc;
        if (c == '\n')
            rc = buf_puts(b, "\\n");
        else if (c == '\r')
            rc = buf_puts(b, "\\r");
        else if (c == '\t')
            rc = buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            rc = json ? buf_printf(b, "\\u%04x", c) : buf_printf(b, "\\x%02x", c);
        else if (json && (c == '"' || c == '\\'))
            rc = buf_printf(b, "\\%c", c);
        else if (json && c >= 0x80) {
            size_t n = log_utf8_len(p);
            if (n == 0) {
                rc = buf_puts(b, "\\ufffd");
                n = 1;
            } else {
                rc = buf_append(b, p, n);
            }
            if (rc)
                return -1;
            p += n;
            continue;
        } else
            rc = buf_append(b, p, 1);
        if (rc)
            return -1;
        p++;
    }
    return 0;
}

/* Appends the current UTC time as 2026-11-22T14:33:00.123Z. */
static int log_put_time(buf *b)
{
    struct timespec ts;
    struct tm tm;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
        return buf_puts(b, "1970-01-01T00:00:00.000Z");
    return buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      ts.tv_nsec / 1000000);
}

/* Starts a line: the timestamp, level and service, in either format. */
static int log_put_head(buf *b, log_level level)
{
    if (log_state.json) {
        if (buf_puts(b, "{\"ts\":\"") || log_put_time(b) ||
            buf_printf(b, "\",\"level\":\"%s\",\"service\":\"", log_level_name(level, true)) ||
            log_put_escaped(b, log_state.service, true) || buf_puts(b, "\""))
            return -1;
        return 0;
    }
    if (log_put_time(b) || buf_printf(b, " %s ", log_level_name(level, false)) ||
        log_put_escaped(b, log_state.service, false) || buf_puts(b, ": "))
        return -1;
    return 0;
}

/* Writes the line with one write(2), retrying only what was not taken. */
static void log_write(const buf *b)
{
    const char *p = b->data;
    size_t left = b->len;
    while (left > 0) {
        ssize_t n = write(STDERR_FILENO, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere to report it */
        p += n;
        left -= (size_t)n;
    }
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (level < log_state.min)
        return;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);

    buf b;
    buf_init(&b, LOG_LINE_MAX);
    int rc = log_put_head(&b, level);
    if (!rc && log_state.json)
        rc = buf_puts(&b, ",\"msg\":\"") || log_put_escaped(&b, msg, true) ||
             buf_puts(&b, "\"}\n");
    else if (!rc)
        rc = log_put_escaped(&b, msg, false) || buf_puts(&b, "\n");
    if (!rc)
        log_write(&b);
    buf_free(&b);
}

void log_request(const char *method, const char *path, int status, double seconds,
                 size_t bytes_out)
{
    if (LOG_INFO < log_state.min)
        return;
    if (!(seconds >= 0)) /* negative or NaN */
        seconds = 0;
    /* Seconds with microseconds, trailing zeros cut: 0.0012, 1.5, 3.0 */
    char dur[48];
    int n = snprintf(dur, sizeof dur, "%.6f", seconds);
    if (n < 0 || (size_t)n >= sizeof dur)
        return;
    while (n > 2 && dur[n - 1] == '0' && dur[n - 2] != '.')
        dur[--n] = '\0';

    buf b;
    buf_init(&b, LOG_LINE_MAX);
    int rc = log_put_head(&b, LOG_INFO);
    bool json = log_state.json;
    if (!rc && json)
        rc = buf_puts(&b, ",\"method\":\"") || log_put_escaped(&b, method ? method : "", true) ||
             buf_puts(&b, "\",\"path\":\"") || log_put_escaped(&b, path ? path : "", true) ||
             buf_printf(&b, "\",\"status\":%d,\"duration_s\":%s,\"bytes\":%zu}\n", status, dur,
                        bytes_out);
    else if (!rc)
        rc = log_put_escaped(&b, method ? method : "", false) || buf_puts(&b, " ") ||
             log_put_escaped(&b, path ? path : "", false) ||
             buf_printf(&b, " %d %ss %zuB\n", status, dur, bytes_out);
    if (!rc)
        log_write(&b);
    buf_free(&b);
}
