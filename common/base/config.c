/*
 * config.c - fills a service's typed config table (config.h) from ESKIT_*
 * environment variables, and prints it as --help.
 *
 * main() calls config_load() first thing: it looks at argv only for --help/-h,
 * then reads every variable (or its default), checks integers (full decimal
 * int64 within [min, max]) and choices ("text|json"), and stores the result in
 * the variable's target. The first bad value is reported on stderr in one line
 * that names the variable and the value. An empty variable counts as unset.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses a whole decimal int64: optional sign, digits, nothing else.
 * Returns 0, or -1 (not a number or beyond int64). */
static int config_parse_int(const char *s, int64_t *out)
{
    const char *d = s;
    if (*d == '+' || *d == '-')
        d++;
    if (*d < '0' || *d > '9') /* also refuses "", " 1" and "+" */
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Whether `value` is one of the '|'-separated `choices`. */
static int config_is_choice(const char *choices, const char *value)
{
    size_t vlen = strlen(value);
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && memcmp(p, value, len) == 0)
            return 1;
        if (!bar)
            return 0;
        p = bar + 1;
    }
}

static void config_usage(const char *prog, const char *about, const config_var *vars, size_t n)
{
    printf("Usage: %s [--help]\n\n", prog);
    if (about && *about)
        printf("%s\n\n", about);
    printf("Configuration, from the environment:\n");
    for (size_t i = 0; i < n; i++) {
        const config_var *v = &vars[i];
        printf("  %s\n      %s\n", v->name, v->help ? v->help : "");
        if (v->def)
            printf("      default: %s\n", v->def);
        else
            printf("      default: unset\n");
        if (v->type == CONFIG_INT)
            printf("      range: %" PRId64 " to %" PRId64 "\n", v->min, v->max);
        else if (v->choices)
            printf("      one of: %s\n", v->choices);
    }
    fflush(stdout);
}

/* Checks one value and stores it. Returns 0, or -1 after printing the error. */
static int config_set(const char *prog, const config_var *v, const char *value, int from_env)
{
    const char *origin = from_env ? "" : " (the default)";
    if (v->type == CONFIG_INT) {
        int64_t x = 0;
        if (config_parse_int(value, &x)) {
            fprintf(stderr, "%s: %s='%s'%s is not a 64-bit decimal integer\n", prog, v->name,
                    value, origin);
            return -1;
        }
        if (x < v->min || x > v->max) {
            fprintf(stderr, "%s: %s='%s'%s is out of range (%" PRId64 " to %" PRId64 ")\n",
                    prog, v->name, value, origin, v->min, v->max);
            return -1;
        }
        if (v->target)
            *(int64_t *)v->target = x;
        return 0;
    }
    if (v->choices && !config_is_choice(v->choices, value)) {
        fprintf(stderr, "%s: %s='%s'%s must be one of %s\n", prog, v->name, value, origin,
                v->choices);
        return -1;
    }
    if (v->target)
        *(const char **)v->target = value;
    return 0;
}

int config_load(const char *prog, const char *about, const config_var *vars, size_t n,
                int argc, char **argv)
{
    if (!prog)
        prog = (argc > 0 && argv && argv[0]) ? argv[0] : "eskit";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            config_usage(prog, about, vars, n);
            return 1;
        }
        fprintf(stderr, "%s: unknown argument '%s' (configuration is by environment; see --help)\n",
                prog, argv[i]);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const config_var *v = &vars[i];
        const char *value = getenv(v->name);
        int from_env = value && *value;
        if (!from_env)
            value = v->def;
        if (!value) {
            /* Unset with no default: a string becomes NULL, an int keeps
             * whatever the caller put in its target. */
            if (v->type == CONFIG_STRING && v->target)
                *(const char **)v->target = NULL;
            continue;
        }
        if (config_set(prog, v, value, from_env))
            return -1;
    }
    return 0;
}
