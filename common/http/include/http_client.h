/*
 * http_client.h - calling another eskit service over HTTP/JSON (libcurl).
 *
 * A client is bound to one base URL ("http://127.0.0.1:8080") and an
 * optional bearer token, and keeps a small stack of curl handles so that
 * connections are kept alive and reused across requests and threads. All
 * calls are thread-safe.
 */
#ifndef ESKIT_HTTP_CLIENT_H
#define ESKIT_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"
#include "err.h"

typedef struct http_client http_client;

/* The largest answer body a call accepts unless it says otherwise. */
#define HTTP_CLIENT_BODY_MAX ((size_t)64 << 20)

/* timeout_ms: the default total time of a call (connect included). Returns
 * NULL on OOM or a base URL that is not http(s)://. */
http_client *http_client_new(const char *base_url, const char *token, int timeout_ms) WUR;
void http_client_free(http_client *c);

typedef struct http_call {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* path and query, already escaped: "/v1/logs?from_id=3" */
    const json_t *body;   /* sent as application/json when not NULL */
    const char *if_match; /* an If-Match header value, or NULL */
    int timeout_ms;       /* 0: the client's default */
    size_t max_body;      /* largest answer body accepted; 0: HTTP_CLIENT_BODY_MAX */
} http_call;

typedef struct http_resp {
    long status;
    json_t *json;  /* the parsed body (NULL when empty or not JSON); owned. Parsed
                    * with jsonx_parse_stored(): integers past int64 are reals */
    char *body;    /* the raw body, NUL-terminated; owned */
    size_t len;
    char etag[64]; /* the ETag header, "" when absent */
} http_resp;

/*
 * Performs a call. Returns true when the server answered (any status: look
 * at out->status); out must then be freed with http_resp_free(). Returns
 * false (out is left empty) with e = unavailable when the server cannot be
 * reached or the call timed out, payload_too_large when the answer's body
 * is over the call's max_body (the transfer stops there), internal on OOM.
 */
bool http_client_do(http_client *c, const http_call *call, http_resp *out, err *e) WUR;
void http_resp_free(http_resp *r);

/* Appends s percent-encoded (for a path segment or a query value). */
int http_client_escape(buf *b, const char *s) WUR;

#endif
