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
        };
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
        cfg.user = (char *)user;
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
        guard_stop();
        executor_config_done(&cfg);
        ev_loop_destroy(loop);
        return r;
}
