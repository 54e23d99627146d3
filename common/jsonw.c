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
    static const char hex[] = "0123456789abcdef";
    if (buf_append(b, "\"", 1))
        return -1;
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != 0 && c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (p > run && buf_append(b, run, (size_t)(p - run)))
            return -1;
        if (c == 0)
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
