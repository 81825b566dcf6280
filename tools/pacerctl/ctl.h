/* SPDX-License-Identifier: Apache-2.0 */
/* Types every pacerctl module shares: the run context of one command and its
 * parsed arguments, and the exit codes scripts rely on. The logic lives in the
 * modules of tools/pacerctl/; tools/pacerctl.c only parses the global flags. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Client Client;

/* Exit codes (documented in docs/pacerctl.md): what a script can branch on. */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,        /* the scheduler refused, or the deployment failed */
        CTL_EXIT_USAGE = 2,         /* bad arguments, or an invalid definition (400/413/422) */
        CTL_EXIT_UNREACHABLE = 3,   /* no answer from pacer-scheduler */
        CTL_EXIT_INTERRUPTED = 130, /* SIGINT/SIGTERM while waiting: 128 + SIGINT */
};

/* Event types a --type filter may name (docs/rest-api.md, "Events"). */
#define CTL_EVENT_TYPES_MAX 16

typedef struct Ctl {
        Client *client;
        bool json;         /* --json: stdout carries only the server's JSON */
        FILE *out;         /* results */
        bool out_color;    /* colours on out */
        FILE *progress;    /* deployment progress: stdout, or stderr with --json */
        bool progress_tty; /* redraw one status line instead of one line per change */
        bool progress_color;
} Ctl;

/* A command's arguments after its flags were parsed. */
typedef struct CmdArgs {
        const char *command;
        char **argv; /* positional arguments after the command word */
        int argc;
        bool force;
        bool wait;
        int64_t wait_timeout_ns; /* 0 = wait as long as it takes */
        int64_t interval_ns;     /* polling period while waiting */
        const char *types[CTL_EVENT_TYPES_MAX];
        size_t n_types;
        const char *app_prefix;
        int64_t count; /* events: stop after this many, 0 = follow forever */
        const char *last_event_id;
} CmdArgs;
