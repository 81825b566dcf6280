/* SPDX-License-Identifier: Apache-2.0 */
/* pacerctl: the command-line client of pacer-scheduler's REST API. A thin
 * front-end: the global flags are parsed here up to the command word; the
 * commands live in tools/pacerctl/ (see docs/pacerctl.md). */
#include <stdio.h>

#include "cli.h"
#include "ctl.h"
#include "flags.h"
#include "log.h"
#include "macro.h"

int main(int argc, char **argv)
{
        CliGlobals g = CLI_GLOBALS_DEFAULT;
        Flag flags[CLI_GLOBAL_FLAGS_MAX];
        PacerError err = { "" };
        size_t n = cli_global_flags(&g, true, flags);
        int first = argc, r;

        log_set_program("pacerctl");
        r = flags_parse(flags, n, argc, argv, &first, &err);
        if (r == FLAGS_HELP) {
                cli_print_help(stdout, flags, n);
                return CTL_EXIT_OK;
        }
        if (r == FLAGS_VERSION) {
                printf("pacerctl %s\n", PACER_VERSION);
                return CTL_EXIT_OK;
        }
        if (r < 0) {
                fprintf(stderr, "pacerctl: %s\n", err.msg);
                return CTL_EXIT_USAGE;
        }
        if (first >= argc) {
                fprintf(stderr, "pacerctl: no command given (see `pacerctl --help`)\n");
                return CTL_EXIT_USAGE;
        }
        return cli_run(&g, argc - first, argv + first);
}
