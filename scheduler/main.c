/* SPDX-License-Identifier: Apache-2.0 */
/* pacer-scheduler: a Mesos framework with a Marathon-compatible REST API. A
 * thin front-end: flags in, everything else in libpacer-scheduler. */
#include <ev.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "api.h"
#include "consul_dev.h"
#include "duration.h"
#include "flags.h"
#include "http_client.h"
#include "log.h"
#include "master.h"
#include "scheduler.h"

#ifdef PACER_HAVE_LOCAL
#include "local.h"
#define HAVE_LOCAL 1
#endif

#define EXIT_CONFIG      2
#define EXECUTOR_ENV_MAX 8

static const char synopsis[] = "[FLAGS]";
static const char description[] =
        "A Mesos framework scheduler with a Marathon-compatible REST API. It places instances on offers,\n"
        "runs deployments step by step, and reads health and Consul registration from pacer-executor's\n"
        "status records: it never probes tasks itself. --master=local runs a one-machine cluster (the\n"
        "scheduler offers this host's resources and starts the executors). See docs/scheduler.md.";

static struct ev_loop *loop;
static bool stopping;

static void on_signal(struct ev_loop *l, ev_signal *w, int revents)
{
        log_info("received SIG%s: stopping", strna(sigabbrev_np(w->signum)));
        stopping = true;
        ev_break(l, EVBREAK_ALL);
}

/* The executor next to this binary (build tree or install), else the one on PATH. */
static const char *default_executor_path(const char *argv0, char *buf, size_t size)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        static const char *const candidates[] = { "/pacer-executor", "/../executor/pacer-executor" };

        if (n > 0) {
                self[n] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                                char real[PATH_MAX];
                                int k = snprintf(buf, size, "%.*s%s", (int)(size - 32), self, candidates[i]);
                                if (k < 0 || (size_t)k >= size)
                                        continue;
                                if (access(buf, X_OK) == 0 && realpath(buf, real)) {
                                        snprintf(buf, size, "%s", real);
                                        return buf;
                                }
                        }
                }
        }
        return "pacer-executor";
}

int main(int argc, char **argv)
{
        char exec_buf[PATH_MAX], hostname[256] = "localhost";
        const char *master = "local", *listen = "127.0.0.1:8080", *data_dir = "pacer-data", *name = "pacer";
        const char *user = NULL, *role = "*", *executor_path = NULL, *executor_uri = NULL, *consul = NULL;
        const char *http_credentials = NULL, *http_token_file = NULL;
        const char *consul_token = NULL, *store_sync = "normal", *executor_log_level = NULL;
        const char *consul_binary = NULL;
        const char *principal = NULL;
        int64_t failover_ns = 7LL * 24 * 3600 * NSEC_PER_SEC, step_deadline_ns = 10LL * 60 * NSEC_PER_SEC;
        int64_t crash_window_ns = 5LL * 60 * NSEC_PER_SEC, crash_failures = 5, store_max_pages = 0;
        int64_t unreachable_ns = 0, reconcile_ns = 15LL * 60 * NSEC_PER_SEC;
        int64_t local_port_begin = 31000, local_port_end = 32000;
        double executor_cpus = 0.01, executor_mem = 32, executor_disk = 0, local_cpus = 0, local_mem = 0;
        bool checkpoint = true, auto_rollback = false;
        LogLevel level = LOG_LEVEL_INFO;

        /* Large transient buffers (a burst of launches, a GET /v2/apps body) are mapped and given
         * back when freed. glibc otherwise raises this threshold each time such a buffer is freed,
         * until the next ones come from the heap, where they leave holes among the long-lived state
         * that are never returned: tens of MiB at 100,000 instances. */
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        const Flag flags[] = {
                { "master", FLAG_STRING, &master, "PACER_MASTER",
                  "Mesos master (host:port or http(s)://host:port), or \"local\" for a one-machine cluster.",
                  "ADDR", 0, 0 },
                { "http", FLAG_STRING, &listen, "PACER_HTTP", "Address of the REST API.", "ADDR:PORT", 0,
                  0 },
                { "http-credentials", FLAG_STRING, &http_credentials, "PACER_HTTP_CREDENTIALS",
                  "HTTP basic credentials the REST API asks for (full access; Marathon's --http_credentials).",
                  "USER:PASSWORD", 0, 0 },
                { "http-token-file", FLAG_STRING, &http_token_file, "PACER_HTTP_TOKEN_FILE",
                  "File of bearer tokens the REST API accepts, one per line: TOKEN [read|write].", "FILE", 0,
                  0 },
                { "data-dir", FLAG_STRING, &data_dir, "PACER_DATA_DIR",
                  "Directory of the state store (SQLite) and, in local mode, of the sandboxes.", "DIR", 0,
                  0 },
                { "framework-name", FLAG_STRING, &name, "PACER_FRAMEWORK_NAME", "Mesos framework name.",
                  "NAME", 0, 0 },
                { "user", FLAG_STRING, &user, "PACER_USER",
                  "User tasks run as by default (FrameworkInfo.user); default: the current user.", "USER", 0,
                  0 },
                { "role", FLAG_STRING, &role, "PACER_ROLE", "Mesos role to receive offers for.", "ROLE", 0,
                  0 },
                { "principal", FLAG_STRING, &principal, "PACER_PRINCIPAL", "Mesos principal.", "NAME", 0,
                  0 },
                { "failover-timeout", FLAG_DURATION, &failover_ns, "PACER_FAILOVER_TIMEOUT",
                  "How long the master keeps this framework's tasks while it is away.", NULL, 0,
                  365LL * 24 * 3600 * NSEC_PER_SEC },
                { "checkpoint", FLAG_BOOL, &checkpoint, "PACER_CHECKPOINT",
                  "Ask agents to checkpoint tasks (they survive agent restarts).", NULL, 0, 0 },
                { "executor-path", FLAG_STRING, &executor_path, "PACER_EXECUTOR_PATH",
                  "Path of pacer-executor on the agents (default: next to this binary, else on PATH).",
                  "PATH", 0, 0 },
                { "executor-uri", FLAG_STRING, &executor_uri, "PACER_EXECUTOR_URI",
                  "URI the agents fetch pacer-executor from (instead of --executor-path).", "URI", 0, 0 },
                { "executor-cpus", FLAG_DOUBLE, &executor_cpus, "PACER_EXECUTOR_CPUS",
                  "CPUs reserved for each executor.", NULL, 0, 0 },
                { "executor-mem", FLAG_DOUBLE, &executor_mem, "PACER_EXECUTOR_MEM",
                  "Memory (MB) reserved for each executor (Mesos warns below 32).", NULL, 0, 0 },
                { "executor-log-level", FLAG_STRING, &executor_log_level, "PACER_EXECUTOR_LOG_LEVEL",
                  "Log level passed to the executors.", "LEVEL", 0, 0 },
                { "consul", FLAG_STRING, &consul, "CONSUL_HTTP_ADDR",
                  "Consul agent address the executors register tasks in (on each agent: usually "
                  "127.0.0.1:8500). Unset: registration off.",
                  "ADDR", 0, 0 },
                { "consul-binary", FLAG_STRING, &consul_binary, "PACER_CONSUL_BINARY",
                  "Local mode without --consul: the consul binary to run a dev agent with (default: consul "
                  "on PATH; none found = registration off).",
                  "PATH", 0, 0 },
                { "consul-token", FLAG_STRING, &consul_token, "CONSUL_HTTP_TOKEN",
                  "ACL token passed to the executors for Consul.", "TOKEN", 0, 0 },
                { "step-deadline", FLAG_DURATION, &step_deadline_ns, "PACER_STEP_DEADLINE",
                  "Deadline of one app's deployment step (label pacer.deployment.deadline overrides); 0 = none.",
                  NULL, 0, 30LL * 24 * 3600 * NSEC_PER_SEC },
                { "unreachable-expunge-after", FLAG_DURATION, &unreachable_ns,
                  "PACER_UNREACHABLE_EXPUNGE_AFTER",
                  "How long an instance may stay TASK_UNREACHABLE (its agent partitioned) before it is "
                  "replaced; it is killed if it comes back. 0 = at once, as Marathon's default "
                  "unreachableStrategy.",
                  NULL, 0, 7LL * 24 * 3600 * NSEC_PER_SEC },
                { "reconcile-interval", FLAG_DURATION, &reconcile_ns, "PACER_RECONCILE_INTERVAL",
                  "How often to ask the master for every task it runs for this framework (implicit "
                  "reconciliation: tasks it has that Pacer does not know are killed).",
                  NULL, NSEC_PER_SEC, 7LL * 24 * 3600 * NSEC_PER_SEC },
                { "auto-rollback", FLAG_BOOL, &auto_rollback, "PACER_AUTO_ROLLBACK",
                  "Roll a failed deployment step back to the app's previous version.", NULL, 0, 0 },
                { "crash-loop-failures", FLAG_INT64, &crash_failures, "PACER_CRASH_LOOP_FAILURES",
                  "Failures of a new version within --crash-loop-window that stop its step; 0 = off.", NULL,
                  0, 16 },
                { "crash-loop-window", FLAG_DURATION, &crash_window_ns, "PACER_CRASH_LOOP_WINDOW",
                  "Window of --crash-loop-failures.", NULL, NSEC_PER_SEC, 24LL * 3600 * NSEC_PER_SEC },
                { "store-sync", FLAG_STRING, &store_sync, "PACER_STORE_SYNC",
                  "normal (a power loss may lose the last commits) or full (fsync every commit).", "MODE", 0,
                  0 },
                { "store-max-pages", FLAG_INT64, &store_max_pages, "PACER_STORE_MAX_PAGES",
                  "Test hook: cap the store's size in pages to simulate a full disk.", NULL, 0, INT32_MAX },
                { "local-cpus", FLAG_DOUBLE, &local_cpus, "PACER_LOCAL_CPUS",
                  "Local mode: CPUs to offer (default: this host's).", NULL, 0, 0 },
                { "local-mem", FLAG_DOUBLE, &local_mem, "PACER_LOCAL_MEM",
                  "Local mode: memory (MB) to offer (default: 80% of this host's).", NULL, 0, 0 },
                { "local-port-begin", FLAG_INT64, &local_port_begin, "PACER_LOCAL_PORT_BEGIN",
                  "Local mode: first host port to offer.", NULL, 1, 65535 },
                { "local-port-end", FLAG_INT64, &local_port_end, "PACER_LOCAL_PORT_END",
                  "Local mode: last host port to offer.", NULL, 1, 65535 },
                { "log-level", FLAG_LOG_LEVEL, &level, "PACER_LOG_LEVEL", "Log verbosity.", NULL, 0, 0 },
        };
        PacerError err = { "" };
        int first = argc, r;

        log_set_program("pacer-scheduler");
        r = flags_parse(flags, ELEMENTSOF(flags), argc, argv, &first, &err);
        if (r == FLAGS_HELP) {
                flags_print_help(stdout, "pacer-scheduler", synopsis, description, flags, ELEMENTSOF(flags));
                return 0;
        }
        if (r == FLAGS_VERSION) {
                printf("pacer-scheduler %s\n", PACER_VERSION);
                return 0;
        }
        if (r < 0) {
                log_error("%s", err.msg);
                return EXIT_CONFIG;
        }
        if (first < argc) {
                log_error("unexpected argument '%s' (see --help)", argv[first]);
                return EXIT_CONFIG;
        }
        log_set_level(level);
        StoreSync sync = store_sync_from_string(store_sync);
        if (sync < 0) {
                log_error("--store-sync=%s: expected normal or full", store_sync);
                return EXIT_CONFIG;
        }
        if (!user) {
                struct passwd *pw = getpwuid(geteuid());
                user = pw ? pw->pw_name : "root";
        }
        gethostname(hostname, sizeof(hostname) - 1);
        if (!executor_path)
                executor_path = default_executor_path(argv[0], exec_buf, sizeof(exec_buf));
        bool local = streq(master, "local");

        /* Consul: the one configured, else (local mode) a dev agent of our own, else none, loudly */
        ConsulDev dev = { 0 };
        char consul_state[160] = "";
        if (consul && *consul) {
                if (!consul_dev_reachable(consul, 2 * NSEC_PER_SEC))
                        log_warn(
                                "Consul at %s does not answer (yet): executors will retry their registrations",
                                consul);
                snprintf(consul_state, sizeof(consul_state), "the configured agent");
        } else if (local) {
                _cleanup_free_ char *bin = consul_dev_find(consul_binary);
                if (bin && consul_dev_start(bin, data_dir, 20 * NSEC_PER_SEC, &dev, &err) >= 0) {
                        consul = dev.address;
                        log_info("started a Consul dev agent (%s) on %s for local mode", bin, dev.address);
                        snprintf(consul_state, sizeof(consul_state), "a dev agent started by the scheduler");
                } else if (bin)
                        log_error("cannot start a Consul dev agent: %s", err.msg);
                else if (consul_binary)
                        log_error("--consul-binary=%s is not an executable", consul_binary);
        }

        /* what the executors get in their environment */
        char consul_env[600], token_env[400], level_env[64];
        const char *executor_env[EXECUTOR_ENV_MAX + 1] = { NULL };
        size_t ne = 0;
        if (consul && *consul) {
                snprintf(consul_env, sizeof(consul_env), "CONSUL_HTTP_ADDR=%s", consul);
                executor_env[ne++] = consul_env;
        }
        if (consul_token && *consul_token) {
                snprintf(token_env, sizeof(token_env), "CONSUL_HTTP_TOKEN=%s", consul_token);
                executor_env[ne++] = token_env;
        }
        if (executor_log_level) {
                snprintf(level_env, sizeof(level_env), "PACER_LOG_LEVEL=%s", executor_log_level);
                executor_env[ne++] = level_env;
        }
        char consul_desc[900];
        if (consul && *consul)
                snprintf(consul_desc, sizeof(consul_desc),
                         "registration enabled: executors register in %s (%s)", consul, consul_state);
        else
                snprintf(consul_desc, sizeof(consul_desc),
                         "registration DISABLED: no Consul configured (--consul or CONSUL_HTTP_ADDR)");

        const char *roles[1] = { role };
        SchedulerConfig cfg = {
                .master = { .master = master,
                            .user = user,
                            .name = name,
                            .roles = roles,
                            .n_roles = 1,
                            .failover_timeout_s = (double)failover_ns / 1e9,
                            .checkpoint = checkpoint,
                            .principal = principal },
                .data_dir = data_dir,
                .store_sync = sync,
                .store_max_pages = (uint32_t)store_max_pages,
                .launch = { .executor_path = executor_path,
                            .executor_uri = executor_uri,
                            .executor_env = executor_env,
                            .executor_cpus = executor_cpus,
                            .executor_mem = executor_mem,
                            .executor_disk = executor_disk },
                .refuse_seconds = 5,
                .idle_refuse_seconds = 120,
                .step_deadline_ns = step_deadline_ns,
                .auto_rollback = auto_rollback,
                .crash_loop_failures = (uint32_t)crash_failures,
                .crash_loop_window_ns = crash_window_ns,
                .unreachable_expunge_ns = unreachable_ns,
                .reconcile_interval_s = (double)reconcile_ns / NSEC_PER_SEC,
                .consul_description = consul_desc,
        };

        signal(SIGPIPE, SIG_IGN);
        loop = ev_default_loop(EVFLAG_AUTO);
        Scheduler *s = NULL;
        Api *api = NULL;
        Master *m = NULL;
        HttpClient *http = http_client_new(loop);
        if (!http) {
                log_error("cannot create the HTTP client");
                r = -ENOMEM;
                goto out;
        }
        r = scheduler_new(loop, &cfg, &s, &err);
        if (r < 0) {
                log_error("cannot open the state in %s: %s", data_dir, err.msg);
                goto out;
        }
        ApiOptions ao = { .listen = listen,
                          .mode = local ? "local" : "mesos",
                          .http_credentials = http_credentials,
                          .http_token_file = http_token_file };
        r = api_new(loop, s, &ao, &api, &err);
        if (r < 0) {
                log_error("cannot serve the REST API on %s: %s", listen, err.msg);
                goto out;
        }
        if (local) {
#ifdef HAVE_LOCAL
                LocalOptions lo = { .data_dir = data_dir,
                                    .cpus = local_cpus,
                                    .mem = local_mem,
                                    .port_begin = (uint32_t)local_port_begin,
                                    .port_end = (uint32_t)local_port_end,
                                    /* executors of a scheduler that died stop on their own instead of
                                     * waiting 15 minutes for an agent that will not come back */
                                    .checkpoint = false };
                r = master_local_new(loop, http, &lo, scheduler_master_callbacks(), s, &m, &err);
#else
                r = pacer_error_set(&err, ENOTSUP, "local mode is not built in");
#endif
        } else {
                MasterOptions mo = cfg.master;
                r = master_mesos_new(loop, http, &mo, scheduler_master_callbacks(), s, &m, &err);
        }
        if (r < 0) {
                log_error("%s", err.msg);
                goto out;
        }
        log_info("pacer-scheduler %s: REST API on http://%s (port %d), master %s, store %s, executor %s",
                 PACER_VERSION, listen, api_port(api), master, data_dir, executor_path);
        if (!consul || !*consul)
                log_warn(
                        "Consul registration is DISABLED: executors will not register tasks; set --consul or "
                        "CONSUL_HTTP_ADDR");
        r = scheduler_start(s, m);
        if (r < 0) {
                log_error_errno(r, "cannot start: %m");
                goto out;
        }

        ev_signal sigterm, sigint;
        ev_signal_init(&sigterm, on_signal, SIGTERM);
        ev_signal_init(&sigint, on_signal, SIGINT);
        ev_signal_start(loop, &sigterm);
        ev_signal_start(loop, &sigint);
        ev_run(loop, 0);
        ev_signal_stop(loop, &sigterm);
        ev_signal_stop(loop, &sigint);
        r = 0;
        if (!stopping && scheduler_fatal(s)) {
                log_error("stopping: %s. Start pacer-scheduler again to register a new framework; its "
                          "apps are kept and relaunched",
                          scheduler_fatal(s));
                r = -ECANCELED;
        }
out:
#ifdef HAVE_LOCAL
        if (m && local)
                master_local_shutdown(m, 10LL * NSEC_PER_SEC);
#endif
        api = api_free(api);
        s = scheduler_free(s);
        master_free(m);
        http_client_free(http);
        consul_dev_stop(&dev);
        (void)stopping;
        return r < 0 ? 1 : 0;
}
