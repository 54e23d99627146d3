/*
 * crud_body.c - the requests of the /v1/entities writes, checked before
 * anything reads a document (see crud_body.h). Nothing here knows about
 * HTTP, events or the cache.
 */
#include "crud_body.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonx.h"
#include "validate.h"

bool crud_body_if_match(const char *h, int64_t *version, bool *present, err *e)
{
    char digits[24];
    size_t n = 0;
    *present = false;
    *version = 0;
    if (!h)
        return true;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len == 1 && h[0] == '*')
        return true;
    if (len >= 2 && h[0] == 'W' && h[1] == '/') {
        h += 2;
        len -= 2;
    }
    if (len >= 2 && h[0] == '"' && h[len - 1] == '"') {
        h++;
        len -= 2;
    }
    for (; n < len; n++) {
        if (n >= sizeof digits - 1 || h[n] < '0' || h[n] > '9')
            goto bad;
        digits[n] = h[n];
    }
    digits[n] = '\0';
    if (n == 0)
        goto bad;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(digits, &end, 10);
    if (errno || *end || v < 1)
        goto bad;
    *version = v;
    *present = true;
    return true;
bad:
    err_set(e, ERR_INVALID_ARGUMENT, "If-Match must be a version such as \"3\"");
    return false;
}

/* The body, which must be a JSON object of the given shape. */
static bool crud_body_object(const json_t *body, const char *shape, err *e)
{
    if (json_is_object(body))
        return true;
    err_set(e, ERR_INVALID_ARGUMENT, "the body must be a JSON object: %s", shape);
    return false;
}

bool crud_body_create(const json_t *body, json_t **payload, const char **id, err *e)
{
    json_t *orig = NULL;
    *payload = NULL;
    *id = NULL;
    if (!crud_body_object(body, "{\"payload\": {...}}", e) ||
        !jsonx_get_object(body, "payload", "payload", true, payload, e) ||
        !jsonx_get_object(body, "originator", "originator", false, &orig, e) ||
        !jsonx_get_string(orig, "id", "originator.id", false, id, e))
        return false;
    if (*id && !validate_id(*id)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "originator.id must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ -");
        return false;
    }
    return true;
}

bool crud_body_put(const json_t *body, const char *path_id, const char *if_match,
                   json_t **payload, int64_t *version, err *e)
{
    json_t *orig = NULL;
    const char *oid = NULL;
    int64_t hversion = 0;
    bool has_body_version = false, has_header = false;
    *payload = NULL;
    *version = 0;
    if (!crud_body_object(body, "{\"originator\": {\"version\": N}, \"payload\": {...}}", e) ||
        !jsonx_get_object(body, "originator", "originator", false, &orig, e) ||
        !jsonx_get_int(orig, "version", "originator.version", false, 1, INT64_MAX, version,
                       &has_body_version, e) ||
        !jsonx_get_string(orig, "id", "originator.id", false, &oid, e) ||
        !jsonx_get_object(body, "payload", "payload", true, payload, e) ||
        !crud_body_if_match(if_match, &hversion, &has_header, e))
        return false;
    if (oid && strcmp(oid, path_id) != 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "originator.id must be the id of the path");
        return false;
    }
    if (has_header && has_body_version && hversion != *version) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "originator.version and If-Match name different versions");
        return false;
    }
    if (!has_body_version && !has_header) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "originator.version is required (the version read), or an If-Match header");
        return false;
    }
    if (!has_body_version)
        *version = hversion;
    return true;
}
