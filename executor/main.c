/* SPDX-License-Identifier: Apache-2.0 */
/* pacer-executor: a Mesos executor for one task. A thin front-end: flags and
 * environment in, everything else in libpacer-executor. */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>

#include "duration.h"
#include "executor.h"
#include "flags.h"
#include "guard.h"
#include "log.h"
#include "sandbox.h"
#include "spawner.h"

#define EXIT_CONFIG 2

static const char synopsis[] = "[FLAGS] [--] [COMMAND [ARG]...]";
static const char description[] =
        "Runs one Mesos task: started by a Mesos agent, it subscribes to the agent's executor API\n"
        "(MESOS_* environment), runs the task in its own process group, reports its status and\n"
        "stops it cleanly. COMMAND is the task's command when the TaskInfo has none (Marathon's\n"
        "custom-executor launch). See docs/executor.md.";

int main(int argc, char **argv)
{
        ExecutorConfig cfg = {
                .kill_grace_ns = EXECUTOR_KILL_GRACE_DEFAULT_NS,
                .ack_wait_ns = EXECUTOR_ACK_WAIT_DEFAULT_NS,
                .call_timeout_ns = EXECUTOR_CALL_TIMEOUT_DEFAULT_NS,
                .output_max_bytes = 10u * 1024 * 1024,
                .consul_ttl_ns = EXECUTOR_CONSUL_TTL_DEFAULT_NS,
                .consul_deregister_after_ns = EXECUTOR_CONSUL_DEREG_AFTER_DEFAULT_NS,
                .consul_timeout_ns = EXECUTOR_CONSUL_TIMEOUT_DEFAULT_NS,
                .consul_deregister_timeout_ns = EXECUTOR_CONSUL_DEREG_TIMEOUT_DEFAULT_NS,
                .consul_tag = "pacer",
                .sandbox_options = { .seccomp_profile = "default",
                                     .seccomp_log = "off",
                                     .capabilities = SANDBOX_ROOT_CAPABILITIES_DEFAULT },
        };
        bool harden = true;
        const char *consul = NULL;
        const char *user = NULL;
        LogLevel level = LOG_LEVEL_INFO;
        const Flag flags[] = {
                { "kill-grace-period", FLAG_DURATION, &cfg.kill_grace_ns, "PACER_KILL_GRACE_PERIOD",
                  "Time between SIGTERM and SIGKILL when neither KILL nor the TaskInfo has a kill policy.",
                  NULL, 0, 3600 * NSEC_PER_SEC },
                { "ack-wait", FLAG_DURATION, &cfg.ack_wait_ns, "PACER_ACK_WAIT",
                  "How long to wait for the agent to acknowledge the terminal update before exiting.", NULL,
                  0, 600 * NSEC_PER_SEC },
                { "agent-call-timeout", FLAG_DURATION, &cfg.call_timeout_ns, "PACER_AGENT_CALL_TIMEOUT",
                  "Deadline of one UPDATE or MESSAGE call to the agent.", NULL, 100 * NSEC_PER_MSEC,
                  600 * NSEC_PER_SEC },
                { "output-max", FLAG_SIZE, &cfg.output_max_bytes, "PACER_OUTPUT_MAX",
                  "Cap of the task's stdout and stderr files in the sandbox; one rotated copy is kept.",
                  NULL, 4096, (int64_t)1 << 40 },
                { "user", FLAG_STRING, &user, "PACER_TASK_USER",
                  "Run tasks as this user when CommandInfo.user is not set (needs root).", "USER", 0, 0 },
                { "consul", FLAG_STRING, &consul, "CONSUL_HTTP_ADDR",
                  "Consul agent to register tasks in (host:port or URL); unset or \"off\" disables "
                  "registration.",
                  "ADDR", 0, 0 },
                { "consul-token", FLAG_STRING, &cfg.consul_token, "CONSUL_HTTP_TOKEN",
                  "ACL token for Consul (sent as X-Consul-Token; never passed to the task).", "TOKEN", 0,
                  0 },
                { "consul-tag", FLAG_STRING, &cfg.consul_tag, "PACER_CONSUL_TAG",
                  "Tag added to every service Pacer registers; empty for none.", "TAG", 0, 0 },
                { "consul-ttl", FLAG_DURATION, &cfg.consul_ttl_ns, "PACER_CONSUL_TTL",
                  "TTL of the Consul check the executor feeds from its probes: an executor that dies leaves "
                  "a critical entry after this long.",
                  NULL, NSEC_PER_SEC, 3600 * NSEC_PER_SEC },
                { "consul-deregister-after", FLAG_DURATION, &cfg.consul_deregister_after_ns,
                  "PACER_CONSUL_DEREGISTER_AFTER",
                  "Consul removes an entry critical for this long (DeregisterCriticalServiceAfter; at least "
                  "1m).",
                  NULL, NSEC_PER_SEC, 7 * 24 * 3600 * NSEC_PER_SEC },
                { "consul-timeout", FLAG_DURATION, &cfg.consul_timeout_ns, "PACER_CONSUL_TIMEOUT",
                  "Deadline of one call to Consul.", NULL, 10 * NSEC_PER_MSEC, 600 * NSEC_PER_SEC },
                { "consul-deregister-timeout", FLAG_DURATION, &cfg.consul_deregister_timeout_ns,
                  "PACER_CONSUL_DEREGISTER_TIMEOUT",
                  "Bound on deregistering (and confirming) before the task is signalled.", NULL,
                  10 * NSEC_PER_MSEC, 600 * NSEC_PER_SEC },
                { "drain-delay", FLAG_DURATION, &cfg.drain_delay_ns, "PACER_DRAIN_DELAY",
                  "Wait between deregistration and SIGTERM so in-flight requests finish (label pacer.drain "
                  "overrides).",
                  NULL, 0, 3600 * NSEC_PER_SEC },
                { "service-address", FLAG_STRING, &cfg.service_address, "PACER_SERVICE_ADDRESS",
                  "Address registered for the task's services (default: $HOST, else the agent's hostname).",
                  "ADDR", 0, 0 },
                { "seccomp-profile", FLAG_STRING, &cfg.sandbox_options.seccomp_profile,
                  "PACER_SECCOMP_PROFILE",
                  "Seccomp profile of tasks without a pacer.sandbox.seccomp label: default, strict or "
                  "unconfined (docs/sandbox.md).",
                  "PROFILE", 0, 0 },
                { "seccomp-log", FLAG_STRING, &cfg.sandbox_options.seccomp_log, "PACER_SECCOMP_LOG",
                  "What the kernel logs of a task's seccomp filter: off, denied, or complain (log instead of "
                  "denying).",
                  "MODE", 0, 0 },
                { "capabilities", FLAG_STRING, &cfg.sandbox_options.capabilities, "PACER_CAPABILITIES",
                  "Capabilities a task running as root keeps (comma list, or none); other tasks keep none "
                  "unless labelled.",
                  "CAPS", 0, 0 },
                { "harden", FLAG_BOOL, &harden, "PACER_HARDEN",
                  "Give the executor itself no_new_privs and seccomp filters at start-up: the floor, which "
                  "tasks inherit, and an allow-list of its own calls, which they do not.",
                  NULL, 0, 0 },
                { "log-level", FLAG_LOG_LEVEL, &level, "PACER_LOG_LEVEL", "Log verbosity.", NULL, 0, 0 },
        };
        PacerError err = { "" };
        Executor *e = NULL;
        int first = argc, r;

        log_set_program("pacer-executor");
        r = flags_parse(flags, ELEMENTSOF(flags), argc, argv, &first, &err);
        if (r == FLAGS_HELP) {
                flags_print_help(stdout, "pacer-executor", synopsis, description, flags, ELEMENTSOF(flags));
                return 0;
        }
        if (r == FLAGS_VERSION) {
                printf("pacer-executor %s\n", PACER_VERSION);
                return 0;
        }
        if (r < 0) {
                log_error("%s", err.msg);
                return EXIT_CONFIG;
        }
        log_set_level(level);
        r = sandbox_options_check(&cfg.sandbox_options, &err);
        if (r < 0) {
                log_error("%s", err.msg);
                return EXIT_CONFIG;
        }
        cfg.user = (char *)user;
        cfg.consul_address = consul && *consul && !streq(consul, "off") ? consul : NULL;
        cfg.command_argv = argv + first;
        cfg.command_argc = argc - first;

        r = executor_config_from_env(&cfg, &err);
        if (r < 0) {
                log_error("%s", err.msg);
                executor_config_done(&cfg);
                return EXIT_CONFIG;
        }

        /* Before anything else allocates: the guard is a copy of this process. */
        r = guard_start();
        if (r < 0)
                log_warn_errno(
                        r, "cannot start the guard process (%m): a crash of the executor could leave the "
                           "task running");
        /* orphans of the task's tree come back to us, to be reaped and killed with the group */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                log_warn_errno(errno, "cannot become a child subreaper: %m");
        signal(SIGPIPE, SIG_IGN);
        /* before the executor parses anything from the network */
        if (harden) {
                r = sandbox_harden_floor(&err);
                /* the spawner inherits the floor, and so does every process it starts */
                if (r >= 0 && (r = spawner_start()) < 0) {
                        log_warn_errno(r, "cannot start the spawner (%m): the executor runs under the floor "
                                          "only, without its own allow-list");
                        r = 0;
                } else if (r >= 0)
                        r = sandbox_harden_executor(&err);
                if (r < 0) {
                        log_error("%s (--no-harden runs without)", err.msg);
                        spawner_stop();
                        guard_stop();
                        executor_config_done(&cfg);
                        return 1;
                }
        }

        struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
        if (!loop) {
                log_error("cannot initialise the event loop");
                return 1;
        }
        r = executor_new(loop, &cfg, &e);
        if (r < 0) {
                log_error_errno(r, "cannot start: %m");
                executor_config_done(&cfg);
                return 1;
        }
        log_info("pacer-executor %s for executor %s of framework %s, agent %s (checkpoint %s)",
                 PACER_VERSION, cfg.executor_id, cfg.framework_id, cfg.agent_endpoint,
                 cfg.checkpoint ? "on" : "off");
        r = executor_run(e);
        executor_free(e);
        spawner_stop();
        guard_stop();
        executor_config_done(&cfg);
        ev_loop_destroy(loop);
        return r;
}
