/*
 * http_params.c - typed query parameters for handlers (declared in
 * http_server.h): integers and booleans with the errors of SPEC §2, which
 * name the parameter and refuse out-of-range values instead of clamping them.
 * Built only on the public request API.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"

bool http_req_query_int(const http_req *r, const char *name, int64_t def, int64_t min,
                        int64_t max, int64_t *out, err *e)
{
    const char *v = http_req_query(r, name);
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

bool http_req_query_bool(const http_req *r, const char *name, bool def, bool *out, err *e)
{
    const char *v = http_req_query(r, name);
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
