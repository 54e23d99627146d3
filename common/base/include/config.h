/*
 * config.h - a typed configuration table per service, filled from ESKIT_*
 * environment variables and printed by --help.
 *
 * Each service declares a static array of config_var; config_load() fills
 * the targets from the environment (or the defaults), checks types, bounds and
 * choices, and prints one clear line for the first bad value.
 */
#ifndef ESKIT_CONFIG_H
#define ESKIT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CONFIG_STRING, CONFIG_INT } config_type;

typedef struct config_var {
    const char *name;    /* "ESKIT_LISTEN" */
    config_type type;
    const char *def;     /* default, as text; NULL = unset (a string target gets NULL) */
    const char *help;    /* one line for --help */
    int64_t min, max;    /* CONFIG_INT bounds (inclusive) */
    const char *choices; /* CONFIG_STRING: "text|json", or NULL for any value */
    void *target;        /* const char ** (CONFIG_STRING) or int64_t * (CONFIG_INT) */
} config_var;

/*
 * Reads every variable. Returns 0 when the service should run, 1 when --help
 * (or -h) was asked for and printed to stdout (exit 0), and -1 after printing
 * an error to stderr (exit 2). String targets point into the environment or
 * into the static defaults: nothing to free.
 */
int config_load(const char *prog, const char *about, const config_var *vars, size_t n,
                int argc, char **argv);

#endif
