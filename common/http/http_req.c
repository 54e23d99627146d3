/*
 * http_req.c - what a handler reads of its request (method, path, path and
 * query parameters, headers, whether the client is still there) and how it
 * answers (JSON, an error body of SPEC §2, empty, or a stream). The
 * response is built here and queued by http_server.c once the handler
 * returns.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "jsonx.h"

/* ------------------------------------------------------------------------ */
/* reading the request                                                      */

void *http_req_app(const http_req *r) { return r->srv->cfg.app; }
const char *http_req_method(const http_req *r) { return r->method; }
const char *http_req_path(const http_req *r) { return r->path; }

const char *http_req_param(const http_req *r, const char *name)
{
    return http_match_param(&r->match, name);
}

const char *http_req_query(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

bool http_req_client_gone(const http_req *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

const char *http_req_header(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* ------------------------------------------------------------------------ */
/* responses                                                                */

void http_reply_header(http_req *r, const char *name, const char *value)
{
    if (r->resp) {
        MHD_add_response_header(r->resp, name, value);
        return;
    }
    if (r->nheaders >= HTTP_MAX_HEADERS)
        return;
    r->headers[r->nheaders][0] = strdup(name);
    r->headers[r->nheaders][1] = strdup(value);
    r->nheaders++;
}

void http_set_response(http_req *r, int status, char *data, size_t len,
                              const char *content_type)
{
    if (r->resp) { /* a second reply is a bug in the handler: keep the first */
        free(data);
        return;
    }
    r->resp = MHD_create_response_from_buffer(len, data ? data : (void *)"",
                                              data ? MHD_RESPMEM_MUST_FREE
                                                   : MHD_RESPMEM_PERSISTENT);
    if (!r->resp) {
        free(data);
        return;
    }
    r->status = status;
    r->bytes_out = len;
    if (content_type)
        MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(r->resp, r->headers[i][0], r->headers[i][1]);
}

void http_reply_json(http_req *r, int status, json_t *body)
{
    char *text = body ? jsonx_dump(body) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"details\":{}}}";
        http_set_response(r, 500, strdup(oom), sizeof oom - 1, "application/json");
        return;
    }
    size_t len = strlen(text);
    /* a trailing newline makes curl output readable */
    char *p = realloc(text, len + 2);
    if (p) {
        p[len++] = '\n';
        p[len] = '\0';
        text = p;
    }
    http_set_response(r, status, text, len, "application/json");
}

void http_reply_json_text(http_req *r, int status, char *text, size_t len)
{
    http_set_response(r, status, text, len, "application/json");
}

void http_reply_err(http_req *r, const err *e)
{
    err_code code = e->code == ERR_NONE ? ERR_INTERNAL : e->code;
    json_t *details = e->details ? json_incref(e->details) : json_object();
    json_t *body = json_pack("{s:{s:s, s:s, s:o}}", "error", "code", err_code_name(code),
                             "message", e->message[0] ? e->message : err_code_name(code),
                             "details", details);
    if (code == ERR_UNAUTHENTICATED)
        http_reply_header(r, "WWW-Authenticate", "Bearer");
    http_reply_json(r, err_code_status(code), body);
}

void http_reply_result(http_req *r, int status, json_t *body, err *e)
{
    if (body)
        http_reply_json(r, status, body);
    else
        http_reply_err(r, e);
    err_clear(e);
}

void http_reply_error(http_req *r, err_code code, const char *fmt, ...)
{
    err e = ERR_INIT;
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof e.message];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_set(&e, code, "%s", msg);
    http_reply_err(r, &e);
    err_clear(&e);
}

void http_reply_empty(http_req *r, int status)
{
    http_set_response(r, status, NULL, 0, NULL);
}

void http_reply_stream(http_req *r, int status, const char *content_type,
                       http_stream_fill fill, void *ctx, void (*done)(void *ctx))
{
    if (r->resp) {
        if (done)
            done(ctx);
        return;
    }
    r->resp = http_stream_response(r, fill, ctx, done);
    if (!r->resp) {
        if (done)
            done(ctx);
        return;
    }
    r->status = status;
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r->resp, "X-Accel-Buffering", "no");
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(r->resp, r->headers[i][0], r->headers[i][1]);
}

