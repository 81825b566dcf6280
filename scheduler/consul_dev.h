/* SPDX-License-Identifier: Apache-2.0 */
/* Local mode's Consul: when no agent is configured, a `consul agent -dev` on
 * loopback, started before the event loop and stopped with the scheduler, so
 * the quick start shows registration working on one machine. Also a quick
 * reachability probe of a configured agent. Both block briefly and run only
 * before the loop starts. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

typedef struct ConsulDev {
        pid_t pid;
        char address[64]; /* 127.0.0.1:<http port> */
} ConsulDev;

/* The consul binary: the given path, else "consul" on PATH; NULL when none. */
char *consul_dev_find(const char *given);
/* Starts the dev agent (logs to <data_dir>/consul.log) and waits for its leader. */
int consul_dev_start(const char *binary, const char *data_dir, int64_t timeout_ns, ConsulDev *ret,
                     PacerError *err);
/* Stops it by pid (SIGTERM, then SIGKILL) and reaps it. */
void consul_dev_stop(ConsulDev *c);
/* True when GET /v1/status/leader on address answers 200 with a leader. */
bool consul_dev_reachable(const char *address, int64_t timeout_ns);
