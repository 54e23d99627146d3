/*
 * http_client.c - calls to other eskit services over HTTP/JSON, on libcurl
 * easy handles (see http_client.h).
 *
 * A client keeps the handles it has finished with on a small stack guarded
 * by a mutex. A call pops one (or makes one), resets its options, performs
 * the request and pushes it back: the handle's connection cache stays, so
 * consecutive calls reuse the kept-alive connection, whatever thread makes
 * them. A handle is only ever used by one thread at a time.
 *
 * Transport failures (refused, reset, DNS, time-out) are reported as
 * `unavailable`: the caller retries later. Any HTTP answer, 5xx included, is
 * a success of the transport: the caller looks at the status.
 */
#include "http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"

#define HTTP_CLIENT_IDLE_MAX 16                   /* handles kept for reuse */
#define HTTP_CLIENT_CONNECT_MS 2000L              /* connect time-out */

struct http_client {
    char *base;          /* "http://host:port", without a trailing '/'; owned */
    char *auth;          /* "Authorization: Bearer ..." or NULL; owned */
    int timeout_ms;      /* the default total time of a call */
    pthread_mutex_t mu;  /* guards idle and nidle */
    CURL *idle[HTTP_CLIENT_IDLE_MAX];
    size_t nidle;
};

static pthread_once_t http_client_once = PTHREAD_ONCE_INIT;
static CURLcode http_client_init_rc = CURLE_FAILED_INIT;

static void http_client_global_init(void)
{
    http_client_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

http_client *http_client_new(const char *base_url, const char *token, int timeout_ms)
{
    http_client *c = NULL;
    size_t len;

    pthread_once(&http_client_once, http_client_global_init);
    if (http_client_init_rc != CURLE_OK || !base_url)
        return NULL;
    if (strncasecmp(base_url, "http://", 7) != 0 && strncasecmp(base_url, "https://", 8) != 0)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    len = strlen(base_url);
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    c->base = strndup(base_url, len);
    if (!c->base)
        goto fail;
    if (token && *token) {
        buf b;
        buf_init(&b, 8192);
        if (buf_printf(&b, "Authorization: Bearer %s", token)) {
            buf_free(&b);
            goto fail;
        }
        c->auth = buf_take(&b, NULL);
        if (!c->auth)
            goto fail;
    }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    pthread_mutex_init(&c->mu, NULL);
    return c;
fail:
    free(c->base);
    free(c);
    return NULL;
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    pthread_mutex_destroy(&c->mu);
    free(c->auth);
    free(c->base);
    free(c);
}

/* A handle from the stack, reset, or a new one. NULL on OOM. */
static CURL *http_client_acquire(http_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->nidle > 0)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    if (h) {
        curl_easy_reset(h); /* options only: connections and caches stay */
        return h;
    }
    return curl_easy_init();
}

/* Puts a handle back on the stack (or frees it when the stack is full). */
static void http_client_release(http_client *c, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->nidle < HTTP_CLIENT_IDLE_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* What the callbacks of one call write into. */
typedef struct http_client_sink {
    buf body;
    bool too_large;
    char etag[64];
} http_client_sink;

static size_t http_client_on_body(char *data, size_t size, size_t n, void *ctx)
{
    http_client_sink *s = ctx;
    size_t len = size * n;
    if (buf_append(&s->body, data, len)) {
        s->too_large = true;
        return 0; /* aborts the transfer */
    }
    return len;
}

static size_t http_client_on_header(char *data, size_t size, size_t n, void *ctx)
{
    http_client_sink *s = ctx;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        s->etag[0] = '\0'; /* a new response (after a 100 Continue, say) */
    } else if (len > 5 && strncasecmp(data, "ETag:", 5) == 0) {
        const char *v = data + 5, *end = data + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && isspace((unsigned char)end[-1]))
            end--;
        size_t vl = (size_t)(end - v);
        if (vl < sizeof s->etag) {
            memcpy(s->etag, v, vl);
            s->etag[vl] = '\0';
        }
    }
    return len;
}

/* Appends one header line to the list; false on OOM (the list is kept). */
static bool http_client_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return false;
    *list = l;
    return true;
}

bool http_client_do(http_client *c, const http_call *call, http_resp *out, err *e)
{
    CURL *h = NULL;
    struct curl_slist *headers = NULL;
    char *body = NULL;
    char *url = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    http_client_sink sink = {.too_large = false};
    buf tmp;
    bool ok = false;
    CURLcode rc = CURLE_OK;

    memset(out, 0, sizeof *out);
    size_t max_body = call->max_body > 0 ? call->max_body : HTTP_CLIENT_BODY_MAX;
    buf_init(&sink.body, max_body);
    buf_init(&tmp, 16384);

    const char *method = call->method ? call->method : "GET";
    long timeout = call->timeout_ms > 0 ? call->timeout_ms : c->timeout_ms;
    long connect = timeout < HTTP_CLIENT_CONNECT_MS ? timeout : HTTP_CLIENT_CONNECT_MS;

    if (buf_puts(&tmp, c->base) || buf_puts(&tmp, call->path ? call->path : "/")) {
        err_set(e, ERR_INTERNAL, "request URL too long");
        goto done;
    }
    url = buf_take(&tmp, NULL);
    if (call->body) {
        body = json_dumps(call->body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!body) {
            err_set(e, ERR_INTERNAL, "out of memory encoding a request body");
            goto done;
        }
    }
    if (!url || !(h = http_client_acquire(c)))
        goto oom;

    if (!http_client_header(&headers, "Accept: application/json") ||
        !http_client_header(&headers, "Expect:") ||
        (body && !http_client_header(&headers, "Content-Type: application/json")) ||
        (c->auth && !http_client_header(&headers, c->auth)))
        goto oom;
    if (call->if_match) {
        if (buf_printf(&tmp, "If-Match: %s", call->if_match)) {
            err_set(e, ERR_INTERNAL, "If-Match header too long");
            goto done;
        }
        bool added = http_client_header(&headers, tmp.data);
        buf_free(&tmp);
        if (!added)
            goto oom;
    }

    /* Options: the first failure (OOM, an option this libcurl lacks) stops. */
#define HC_SET(opt, val)                          \
    do {                                          \
        if (rc == CURLE_OK)                       \
            rc = curl_easy_setopt(h, opt, (val)); \
    } while (0)
    HC_SET(CURLOPT_URL, url);
    HC_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    HC_SET(CURLOPT_NOSIGNAL, 1L);
    HC_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    HC_SET(CURLOPT_TCP_NODELAY, 1L);
    HC_SET(CURLOPT_TIMEOUT_MS, timeout);
    HC_SET(CURLOPT_CONNECTTIMEOUT_MS, connect);
    HC_SET(CURLOPT_ERRORBUFFER, errbuf);
    HC_SET(CURLOPT_HTTPHEADER, headers);
    HC_SET(CURLOPT_WRITEFUNCTION, http_client_on_body);
    HC_SET(CURLOPT_WRITEDATA, &sink);
    HC_SET(CURLOPT_HEADERFUNCTION, http_client_on_header);
    HC_SET(CURLOPT_HEADERDATA, &sink);
    if (strcmp(method, "GET") == 0) {
        HC_SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        HC_SET(CURLOPT_NOBODY, 1L);
    } else {
        if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            HC_SET(CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
            HC_SET(CURLOPT_POSTFIELDS, body ? body : "");
        }
        HC_SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef HC_SET
    if (rc != CURLE_OK) {
        err_set(e, ERR_INTERNAL, "cannot set up a call to %s: %s", c->base,
                curl_easy_strerror(rc));
        goto done;
    }
    rc = curl_easy_perform(h);
    if (sink.too_large) {
        err_set(e, ERR_PAYLOAD_TOO_LARGE, "%s answered with a body larger than %zu bytes",
                c->base, max_body);
        goto done;
    }
    if (rc == CURLE_OUT_OF_MEMORY)
        goto oom;
    if (rc != CURLE_OK) {
        err_set(e, ERR_UNAVAILABLE, "%s unreachable: %s", c->base,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
        goto done;
    }

    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    memcpy(out->etag, sink.etag, sizeof out->etag);
    out->body = buf_take(&sink.body, &out->len);
    if (!out->body)
        goto oom;
    /* An eskit service's answer: the reader-side parse, which takes what
     * PostgreSQL may spell in stored payloads (integers past int64). */
    if (out->len > 0)
        out->json = jsonx_parse_stored(out->body, out->len, NULL);
    ok = true;
    goto done;
oom:
    err_set(e, ERR_INTERNAL, "out of memory calling %s", c->base);
done:
    if (!ok)
        http_resp_free(out);
    http_client_release(c, h);
    curl_slist_free_all(headers);
    free(body);
    free(url);
    buf_free(&tmp);
    buf_free(&sink.body);
    return ok;
}

void http_resp_free(http_resp *r)
{
    if (!r)
        return;
    json_decref(r->json);
    free(r->body);
    memset(r, 0, sizeof *r);
}

int http_client_escape(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            if (buf_append(b, p, 1))
                return -1;
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            if (buf_append(b, enc, 3))
                return -1;
        }
    }
    return 0;
}
