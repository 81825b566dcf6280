/* SPDX-License-Identifier: Apache-2.0 */
/* pacerctl's command line: the global flags (tools/pacerctl.c parses them up
 * to the command word), the table of commands with their own flags and
 * --help, the run context, and the mapping of results to exit codes. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "duration.h"
#include "flags.h"

#define CLI_URL_DEFAULT        "http://127.0.0.1:8080"
#define CLI_TIMEOUT_DEFAULT_NS (10 * NSEC_PER_SEC)
#define CLI_GLOBAL_FLAGS_MAX   4

typedef struct CliGlobals {
        const char *url;
        const char *token;
        bool json;
        int64_t timeout_ns;
} CliGlobals;

#define CLI_GLOBALS_DEFAULT ((CliGlobals){ .url = CLI_URL_DEFAULT, .timeout_ns = CLI_TIMEOUT_DEFAULT_NS })

/* Fills ret_flags[] with the global flags writing to g, with their
 * environment variables when with_env; returns how many. */
size_t cli_global_flags(CliGlobals *g, bool with_env, Flag ret_flags[static CLI_GLOBAL_FLAGS_MAX]);
/* `pacerctl --help`: usage, the commands, the global flags, the exit codes. */
void cli_print_help(FILE *f, const Flag *flags, size_t n);
/* Runs the command argv[0] (its flags may come before, between or after its
 * arguments); returns the process's exit code. */
int cli_run(CliGlobals *g, int argc, char **argv);
/* 0 → 0; -EINVAL → 2 (usage, invalid definition); -EHOSTUNREACH → 3;
 * -EINTR → 130; any other failure → 1. */
int cli_exit_code(int r);
