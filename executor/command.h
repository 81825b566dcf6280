/* SPDX-License-Identifier: Apache-2.0 */
/* Turning a TaskInfo into what to exec: the argv (shell or argv form, or the
 * command Marathon hid in the executor's own command line) and the task's
 * environment (the executor's, minus its secrets, plus the task's). */
#pragma once

#include "error.h"
#include "mesos.h"

/* Limits on what a task's environment may grow to. */
#define COMMAND_ENV_MAX_VARS  4096
#define COMMAND_ENV_MAX_BYTES (1024u * 1024)

typedef struct Command {
        char **argv;      /* NULL-terminated */
        char **envp;      /* NULL-terminated */
        const char *user; /* points into the TaskInfo, or NULL */
} Command;

/* Marathon starts a custom executor as `chmod ug+rx '<path>' && exec '<path>' <cmd>`:
 * returns the <cmd> part of such a line (a pointer into it), or NULL when the
 * line does not have that shape. */
const char *command_strip_marathon_wrapper(const char *line);

/* Builds the command for task. fallback_argv are the executor's positional
 * arguments (Marathon's <cmd> after the shell split it). environ_ is the
 * executor's environment. */
int command_build(const TaskInfo *task, char *const *fallback_argv, int fallback_argc, char *const *environ_,
                  Command *ret, PacerError *err);
void command_done(Command *c);

/* The task's host ports in port-definition order: DiscoveryInfo.ports when
 * present, else PORT0..PORTn of the environment (Marathon's custom-executor
 * launch), else the "ports" resource ranges in order. Returns the count. */
size_t command_ports(const TaskInfo *task, char *const *environ_, uint32_t *ret, size_t max);
