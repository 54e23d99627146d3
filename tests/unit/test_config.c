/*
 * test_config.c - the typed config table: defaults, environment overrides,
 * integer and choice validation with their error lines, --help, unknown
 * arguments.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const char *listen_addr;
static const char *token;
static const char *format;
static int64_t max_body;

static const config_var vars[] = {
    {"T_LISTEN", CONFIG_STRING, "127.0.0.1:8080", "HOST:PORT to listen on", 0, 0, NULL,
     &listen_addr},
    {"T_TOKEN", CONFIG_STRING, NULL, "bearer token", 0, 0, NULL, &token},
    {"T_FORMAT", CONFIG_STRING, "text", "log format", 0, 0, "text|json", &format},
    {"T_MAX_BODY", CONFIG_INT, "1048576", "largest request body", 1, 1073741824, NULL,
     &max_body},
};
#define NVARS (sizeof vars / sizeof *vars)

static char *argv_none[] = {"prog", NULL};

static void clear_env(void)
{
    unsetenv("T_LISTEN");
    unsetenv("T_TOKEN");
    unsetenv("T_FORMAT");
    unsetenv("T_MAX_BODY");
}

/* Runs config_load with fd `fd` (1 or 2) sent to a temp file; returns the
 * result and the captured text in *out (caller frees). */
static int load_capture(int fd, int argc, char **argv, char **out)
{
    char path[] = "/tmp/test_config_XXXXXX";
    int tmp = mkstemp(path);
    cr_assert_geq(tmp, 0);
    unlink(path);
    fflush(stdout);
    fflush(stderr);
    int saved = dup(fd);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(tmp, fd), 0);
    int rc = config_load("prog", "A test service.", vars, NVARS, argc, argv);
    fflush(stdout);
    fflush(stderr);
    cr_assert_geq(dup2(saved, fd), 0);
    close(saved);
    off_t size = lseek(tmp, 0, SEEK_END);
    cr_assert_geq(size, 0);
    *out = calloc(1, (size_t)size + 1);
    cr_assert_not_null(*out);
    cr_assert_eq(pread(tmp, *out, (size_t)size, 0), size);
    close(tmp);
    return rc;
}

/* Expects a -1 from the environment as set, with an error line naming
 * the variable and the value. */
static void expect_error(const char *name, const char *value, const char *why)
{
    char *err = NULL;
    int rc = load_capture(2, 1, argv_none, &err);
    cr_assert_eq(rc, -1, "%s=%s accepted", name, value);
    cr_assert_not_null(strstr(err, name), "error does not name the variable: %s", err);
    cr_assert_not_null(strstr(err, value), "error does not show the value: %s", err);
    cr_assert_not_null(strstr(err, why), "error does not say '%s': %s", why, err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    free(err);
}

Test(config, defaults)
{
    clear_env();
    token = "stale";
    cr_assert_eq(config_load("prog", "about", vars, NVARS, 1, argv_none), 0);
    cr_assert_str_eq(listen_addr, "127.0.0.1:8080");
    cr_assert_null(token);
    cr_assert_str_eq(format, "text");
    cr_assert_eq(max_body, 1048576);
}

Test(config, environment_overrides)
{
    clear_env();
    setenv("T_LISTEN", "0.0.0.0:9000", 1);
    setenv("T_TOKEN", "s3cret", 1);
    setenv("T_FORMAT", "json", 1);
    setenv("T_MAX_BODY", "1073741824", 1);
    cr_assert_eq(config_load("prog", "about", vars, NVARS, 1, argv_none), 0);
    cr_assert_str_eq(listen_addr, "0.0.0.0:9000");
    cr_assert_str_eq(token, "s3cret");
    cr_assert_str_eq(format, "json");
    cr_assert_eq(max_body, 1073741824);
    setenv("T_MAX_BODY", "1", 1);
    setenv("T_TOKEN", "", 1); /* empty counts as unset */
    cr_assert_eq(config_load("prog", "about", vars, NVARS, 1, argv_none), 0);
    cr_assert_eq(max_body, 1);
    cr_assert_null(token);
}

Test(config, bad_ints)
{
    const char *bad[] = {"abc", "12abc", "1.5", " 12", "12 ", "0x10", "+", "-",
                         "99999999999999999999", "-99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        clear_env();
        setenv("T_MAX_BODY", bad[i], 1);
        expect_error("T_MAX_BODY", bad[i], "integer");
    }
}

Test(config, out_of_range)
{
    const char *bad[] = {"0", "-1", "1073741825", "9223372036854775807"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        clear_env();
        setenv("T_MAX_BODY", bad[i], 1);
        expect_error("T_MAX_BODY", bad[i], "range");
    }
}

Test(config, full_int64_range)
{
    static int64_t v;
    static const config_var wide[] = {
        {"T_WIDE", CONFIG_INT, "0", "any", INT64_MIN, INT64_MAX, NULL, &v},
    };
    setenv("T_WIDE", "-9223372036854775808", 1);
    cr_assert_eq(config_load("prog", NULL, wide, 1, 1, argv_none), 0);
    cr_assert_eq(v, INT64_MIN);
    setenv("T_WIDE", "+9223372036854775807", 1);
    cr_assert_eq(config_load("prog", NULL, wide, 1, 1, argv_none), 0);
    cr_assert_eq(v, INT64_MAX);
}

Test(config, bad_choice)
{
    const char *bad[] = {"xml", "tex", "textjson", "text|json", "JSON"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        clear_env();
        setenv("T_FORMAT", bad[i], 1);
        expect_error("T_FORMAT", bad[i], "text|json");
    }
}

Test(config, help)
{
    clear_env();
    char *args[] = {"prog", "--help", NULL};
    char *out = NULL;
    cr_assert_eq(load_capture(1, 2, args, &out), 1);
    cr_assert_not_null(strstr(out, "prog"));
    cr_assert_not_null(strstr(out, "A test service."));
    for (size_t i = 0; i < NVARS; i++) {
        cr_assert_not_null(strstr(out, vars[i].name), "%s missing: %s", vars[i].name, out);
        cr_assert_not_null(strstr(out, vars[i].help));
    }
    cr_assert_not_null(strstr(out, "127.0.0.1:8080"));
    cr_assert_not_null(strstr(out, "1048576"));
    cr_assert_not_null(strstr(out, "1 to 1073741824"));
    cr_assert_not_null(strstr(out, "text|json"));
    free(out);

    char *args_h[] = {"prog", "-h", NULL};
    cr_assert_eq(load_capture(1, 2, args_h, &out), 1);
    cr_assert_not_null(strstr(out, "T_MAX_BODY"));
    free(out);
}

Test(config, help_wins_over_bad_environment)
{
    clear_env();
    setenv("T_MAX_BODY", "junk", 1);
    char *args[] = {"prog", "--help", NULL};
    char *out = NULL;
    cr_assert_eq(load_capture(1, 2, args, &out), 1);
    free(out);
}

Test(config, unknown_argument)
{
    clear_env();
    char *args[] = {"prog", "--port=80", NULL};
    char *err = NULL;
    cr_assert_eq(load_capture(2, 2, args, &err), -1);
    cr_assert_not_null(strstr(err, "--port=80"), "%s", err);
    free(err);
}
