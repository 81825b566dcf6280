/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line flags from a table: `--name=value`, `--name value`, booleans as
 * `--name`/`--no-name`, each with an optional environment variable as fallback,
 * and a generated --help. Precedence: command line, then environment, then the
 * target's initial value (the compiled default). */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Values (from argv or the environment) longer than this are refused. */
#define FLAGS_VALUE_MAX 4096
/* Longest flag name accepted in a table. */
#define FLAGS_NAME_MAX 64

/* Positive results of flags_parse(): main() prints help or version and exits 0. */
#define FLAGS_HELP    1
#define FLAGS_VERSION 2

typedef enum FlagType {
        FLAG_STRING,   /* const char **: points into argv or the environment, never allocated */
        FLAG_BOOL,     /* bool *: --x, --x=true|false|yes|no|on|off|1|0, --no-x */
        FLAG_INT64,    /* int64_t *: decimal, within [min, max] */
        FLAG_DOUBLE,   /* double *: finite */
        FLAG_DURATION, /* int64_t * nanoseconds: "5secs", "1m30s" (shared/duration.h), within [min, max] */
        FLAG_SIZE, /* uint64_t * bytes: "512", "64K", "10MiB", "2G" (powers of 1024), within [min, max] */
        FLAG_LOG_LEVEL, /* LogLevel *: error, warn, info, debug */
        _FLAG_TYPE_MAX,
        _FLAG_TYPE_INVALID = -EINVAL,
} FlagType;

typedef struct Flag {
        const char *name; /* without the dashes: "consul-addr" */
        FlagType type;
        void *target;        /* its initial value is the default shown by --help */
        const char *env;     /* fallback variable, optional: "PACER_CONSUL_ADDR" */
        const char *help;    /* one sentence */
        const char *metavar; /* optional; defaults by type: VALUE, INT, NUMBER, DURATION, SIZE, LEVEL */
        int64_t min, max;    /* INT64, DURATION, SIZE: accepted range when min < max */
} Flag;

/* Parses argv[1..] until the first argument that is not a flag ("-" counts as
 * one) or just past "--"; *ret_first_positional is that argument's index (argc
 * when there is none). Later flags win over earlier ones. An empty environment
 * variable counts as unset. Targets are written only when everything parsed,
 * so on error they keep their defaults.
 *
 * Returns 0; FLAGS_HELP for -h/--help or FLAGS_VERSION for --version (nothing
 * else is applied, *ret_first_positional is not set); or -EINVAL with err
 * naming the flag or variable, the value and what was expected. */
int flags_parse(const Flag *flags, size_t n, int argc, char **argv, int *ret_first_positional,
                PacerError *err);

/* Writes "Usage: <program> <synopsis>", the description and one entry per flag
 * with its metavar, help, environment variable and current value as default. */
void flags_print_help(FILE *f, const char *program, const char *synopsis, const char *description,
                      const Flag *flags, size_t n);
