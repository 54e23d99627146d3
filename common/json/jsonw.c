/*
 * jsonw.c - JSON string escaping onto a buf (see jsonw.h). Input is UTF-8
 * that came from the database or a validated request, so only the JSON
 * escapes are needed; bytes >= 0x80 are copied as they are.
 */
#include "jsonw.h"

#include <stdio.h>
#include <string.h>

int jsonw_string(buf *b, const char *s)
{
    return jsonw_stringn(b, s, strlen(s));
}

int jsonw_stringn(buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_append(b, "\"", 1))
        return -1;
    const char *run = s, *end = s + len;
    for (const char *p = s;; p++) {
        unsigned char c = p < end ? (unsigned char)*p : 0;
        if (p < end && c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (p > run && buf_append(b, run, (size_t)(p - run)))
            return -1;
        if (p == end)
            break;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (buf_append(b, esc, n))
            return -1;
        run = p + 1;
    }
    return buf_append(b, "\"", 1);
}

static int jsonw_sink(const char *data, size_t size, void *ctx)
{
    return buf_append(ctx, data, size);
}

int jsonw_value(buf *b, const json_t *v)
{
    return json_dump_callback(v, jsonw_sink, b, JSON_COMPACT | JSON_ENCODE_ANY);
}
