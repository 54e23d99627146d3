/*
 * http_params.c - what handlers read from a request besides its path
 * (declared in http_server.h): the JSON body, checked for its media type,
 * its syntax and its nesting (400 and 415 of SPEC §2), and typed query
 * parameters, integers and booleans whose errors name the parameter and
 * refuse out-of-range values instead of clamping them. Before any handler
 * runs, the server checks here that the request's length is unambiguous and
 * that every path and query parameter is UTF-8 text once decoded
 * (http_internal.h).
 *
 * Each reader has a pure form on plain values (http_body_parse,
 * http_param_int, ...), which the request helpers call and the fuzz targets
 * in fuzz/ drive without a server.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "jsonx.h"
#include "validate.h"

/* Media types that are clearly not JSON get 415; anything else (none,
 * application/json, text/plain, curl's form default ...) is read as JSON. */
bool http_media_type_is_json(const char *ct)
{
    static const char *const prefixes[] = {"multipart/", "image/", "audio/", "video/",
                                           "font/",      "model/", "message/"};
    static const char *const exact[] = {
        "text/html",         "text/csv",           "text/css",
        "text/javascript",   "text/yaml",          "application/pdf",
        "application/zip",   "application/gzip",   "application/x-protobuf",
        "application/protobuf", "application/grpc", "application/yaml",
        "application/x-yaml", "application/msgpack", "application/x-msgpack",
        "application/cbor",  "application/x-tar",  "application/javascript"};
    if (!ct)
        return true;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (n == 0)
        return true;
    char type[128];
    if (n >= sizeof type)
        return false;
    for (size_t i = 0; i < n; i++)
        type[i] = (char)(ct[i] >= 'A' && ct[i] <= 'Z' ? ct[i] + 32 : ct[i]);
    type[n] = '\0';
    if (strstr(type, "xml"))
        return false;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(type, prefixes[i], strlen(prefixes[i])) == 0)
            return false;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(type, exact[i]) == 0)
            return false;
    return true;
}

json_t *http_body_parse(const char *text, size_t len, int max_depth, err *e)
{
    int max = max_depth > 0 ? max_depth : HTTP_MAX_DEPTH;
    json_t *v = jsonx_parse(text ? text : "", text ? len : 0, e);
    int depth = v ? jsonx_depth(text, len) : 0;
    if (depth > max) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "request body nests arrays and objects %d levels deep; at most %d are allowed",
                depth, max);
        json_decref(v);
        v = NULL;
    }
    return v;
}

json_t *http_req_json(http_req *r, err *e)
{
    if (r->json)
        return r->json;
    const char *ct = http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!http_media_type_is_json(ct)) {
        err_set(e, ERR_UNSUPPORTED_MEDIA_TYPE,
                "Content-Type %s is not JSON; send application/json", ct);
        return NULL;
    }
    r->json = http_body_parse(r->body.data, r->body.len, r->srv->cfg.max_depth, e);
    return r->json;
}

bool http_req_query_int(const http_req *r, const char *name, int64_t def, int64_t min,
                        int64_t max, int64_t *out, err *e)
{
    return http_param_int(name, http_req_query(r, name), def, min, max, out, e);
}

bool http_req_query_bool(const http_req *r, const char *name, bool def, bool *out, err *e)
{
    return http_param_bool(name, http_req_query(r, name), def, out, e);
}

bool http_param_int(const char *name, const char *v, int64_t def, int64_t min, int64_t max,
                    int64_t *out, err *e)
{
    if (!v) {
        *out = def;
        return true;
    }
    const char *p = v;
    if (*p == '-' || *p == '+')
        p++;
    bool digits = *p != '\0';
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            digits = false;
    int64_t val = 0;
    if (digits) {
        char *end = NULL;
        errno = 0;
        long long ll = strtoll(v, &end, 10);
        if (errno == ERANGE || *end)
            digits = false;
        val = ll;
    }
    if (!digits) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be an integer, got '%.64s'", name, v);
        return false;
    }
    if (val < min || val > max) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be between %lld and %lld, got %lld", name,
                (long long)min, (long long)max, (long long)val);
        return false;
    }
    *out = val;
    return true;
}

bool http_param_bool(const char *name, const char *v, bool def, bool *out, err *e)
{
    if (!v) {
        *out = def;
    } else if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *out = true;
    } else if (!strcmp(v, "false") || !strcmp(v, "0")) {
        *out = false;
    } else {
        err_set(e, ERR_INVALID_ARGUMENT, "%s must be true or false, got '%.64s'", name, v);
        return false;
    }
    return true;
}

/* The first query parameter that is not UTF-8 text (MHD has decoded it;
 * a NUL byte inside would end its C string early). */
typedef struct http_bad_query {
    bool bad_name;    /* a parameter's name is not UTF-8 text */
    const char *name; /* else, the name of one whose value is not; NULL: all fine */
    size_t name_len;
} http_bad_query;

static enum MHD_Result http_query_check(void *cls, enum MHD_ValueKind kind, const char *key,
                                        size_t key_size, const char *value,
                                        size_t value_size)
{
    http_bad_query *b = cls;
    (void)kind;
    if (!validate_utf8_text(key, key_size)) {
        b->bad_name = true;
        return MHD_NO;
    }
    if (value && !validate_utf8_text(value, value_size)) {
        b->name = key;
        b->name_len = key_size;
        return MHD_NO;
    }
    return MHD_YES;
}

bool http_req_params_are_text(http_req *r)
{
    int i = http_match_bad_param(&r->match);
    if (i >= 0) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "%.*s must be UTF-8 text without NUL bytes (%%00); the path "
                         "segment is not", (int)r->match.name_lens[i], r->match.names[i]);
        return false;
    }
    http_bad_query b = {0};
    MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, http_query_check, &b);
    if (b.bad_name) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "a query parameter's name is not UTF-8 text without NUL bytes (%%00)");
        return false;
    }
    if (b.name) {
        http_reply_error(r, ERR_INVALID_ARGUMENT,
                         "query parameter %.*s must be UTF-8 text without NUL bytes (%%00)",
                         b.name_len > 64 ? 64 : (int)b.name_len, b.name);
        return false;
    }
    return true;
}

/* What the framing headers of a request say (see http_req_framing_error). */
typedef struct http_framing {
    const char *length; /* the first Content-Length */
    size_t length_len;
    bool lengths_differ;   /* a later Content-Length says something else */
    bool transfer_encoding; /* a Transfer-Encoding header too */
} http_framing;

static enum MHD_Result http_framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                           size_t key_size, const char *value,
                                           size_t value_size)
{
    http_framing *f = cls;
    (void)kind;
    if (key_size == strlen(MHD_HTTP_HEADER_TRANSFER_ENCODING) &&
        strncasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING, key_size) == 0)
        f->transfer_encoding = true;
    if (key_size != strlen(MHD_HTTP_HEADER_CONTENT_LENGTH) ||
        strncasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH, key_size) != 0)
        return MHD_YES;
    if (!value)
        value_size = 0;
    if (!f->length) {
        f->length = value ? value : "";
        f->length_len = value_size;
    } else if (value_size != f->length_len || memcmp(value, f->length, value_size) != 0) {
        f->lengths_differ = true;
    }
    return MHD_YES;
}

const char *http_req_framing_error(struct MHD_Connection *conn)
{
    http_framing f = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, http_framing_header, &f);
    if (f.lengths_differ)
        return "the request has two Content-Length headers that differ; send one";
    if (f.length && f.transfer_encoding)
        return "the request has both Content-Length and Transfer-Encoding; send one";
    return NULL;
}
