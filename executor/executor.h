/* SPDX-License-Identifier: Apache-2.0 */
/* pacer-executor's lifecycle: one task from LAUNCH to its acknowledged
 * terminal update. It ties the agent link (Mesos executor API), the task
 * process, the health checks and the Consul registrar together, and owns the
 * order of things: registered before healthy, deregistered before stopped. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "log.h"
#include "sandbox.h"

struct ev_loop;

typedef struct ExecutorConfig {
        /* from the agent (MESOS_* environment) */
        char *framework_id;
        char *executor_id;
        char *agent_endpoint;
        char *agent_id;
        char *directory; /* MESOS_DIRECTORY: the sandbox on the host */
        char *sandbox;   /* MESOS_SANDBOX: the sandbox as the task sees it */
        char *auth_token;
        char *domain_socket;
        bool checkpoint;
        int64_t recovery_timeout_ns;
        int64_t backoff_max_ns;
        int64_t shutdown_grace_ns;

        /* from flags, with environment fallbacks */
        int64_t kill_grace_ns;     /* when neither KILL nor TaskInfo has a kill policy */
        int64_t ack_wait_ns;       /* bound on waiting for the terminal update's acknowledgement */
        int64_t call_timeout_ns;   /* deadline of one call to the agent */
        uint64_t output_max_bytes; /* cap of stdout/stderr in the sandbox, per file */
        char *user;                /* run tasks as this user unless CommandInfo.user says otherwise */
        /* --seccomp-profile, --seccomp-log, --capabilities (docs/sandbox.md) */
        SandboxOptions sandbox_options;

        /* Consul registration (docs/consul.md); consul_address NULL = disabled */
        const char *consul_address;
        const char *consul_token;
        const char *consul_tag;      /* added to every service; "" = none */
        const char *service_address; /* the address registered; NULL = $HOST, else the agent's hostname */
        int64_t consul_ttl_ns;       /* TTL of the check the executor feeds */
        int64_t consul_deregister_after_ns;
        int64_t consul_timeout_ns;            /* deadline of one Consul call */
        int64_t consul_deregister_timeout_ns; /* bound on deregister + confirm when stopping */
        int64_t drain_delay_ns; /* between deregistration and SIGTERM; label pacer.drain overrides */

        /* the task's command when started by Marathon as a custom executor:
         * the words after the executor's path (see docs/marathon.md) */
        char **command_argv;
        int command_argc;
} ExecutorConfig;

#define EXECUTOR_KILL_GRACE_DEFAULT_NS           (3LL * 1000000000LL)
#define EXECUTOR_ACK_WAIT_DEFAULT_NS             (10LL * 1000000000LL)
#define EXECUTOR_CALL_TIMEOUT_DEFAULT_NS         (5LL * 1000000000LL)
#define EXECUTOR_CONSUL_TTL_DEFAULT_NS           (10LL * 1000000000LL)
#define EXECUTOR_CONSUL_DEREG_AFTER_DEFAULT_NS   (60LL * 1000000000LL)
#define EXECUTOR_CONSUL_TIMEOUT_DEFAULT_NS       (2LL * 1000000000LL)
#define EXECUTOR_CONSUL_DEREG_TIMEOUT_DEFAULT_NS (5LL * 1000000000LL)
/* Label of a task naming its own drain delay (a duration). */
#define EXECUTOR_DRAIN_LABEL "pacer.drain"

/* Reads the MESOS_* variables; a missing or malformed one is an error naming it. */
int executor_config_from_env(ExecutorConfig *c, PacerError *err);
void executor_config_done(ExecutorConfig *c);

typedef struct Executor Executor;

int executor_new(struct ev_loop *loop, const ExecutorConfig *cfg, Executor **ret);
Executor *executor_free(Executor *e);
/* Subscribes and runs until the task is done; returns the process exit code. */
int executor_run(Executor *e);
/* As SHUTDOWN: stop the task gracefully and exit (SIGTERM/SIGINT to the executor). */
void executor_shutdown(Executor *e, const char *why);
