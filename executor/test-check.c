/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for health checks: specs from Mesos HealthCheck messages and from
 * pacer.check.* labels (defaults and every validation error), the Mesos
 * policy as pure logic, and real probes on a libev loop against an in-test
 * libmicrohttpd server (its own thread), TCP sockets and commands. Every wait
 * runs the loop until a callback fires, bounded by a safety timer. */
#include <arpa/inet.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "check.h"
#include "http_client.h"
#include "macro.h"

/* A wait that takes longer than this fails the test instead of hanging it. */
#define WAIT_MAX_S        10.0
#define FAST_INTERVAL_NS  (20 * NSEC_PER_MSEC)
#define SHORT_TIMEOUT_NS  (200 * NSEC_PER_MSEC)
#define PROBE_RESULTS_MAX 8
#define SERVER_HUNG_MAX   16
#define BIG_LABEL_SIZE    (100u * 1024)

#define assert_contains(haystack, needle)                                                 \
        do {                                                                              \
                if (!strstr((haystack), (needle)))                                        \
                        fail_msg("\"%s\" does not contain \"%s\"", (haystack), (needle)); \
        } while (0)

static const uint32_t two_ports[] = { 8080, 9090 };

static int64_t mono_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* ---- specs from HealthCheck ---- */

typedef struct HcFixture {
        HealthCheck hc;
        Mesos__V1__HealthCheck__HTTPCheckInfo http;
        Mesos__V1__HealthCheck__TCPCheckInfo tcp;
        CommandInfo cmd;
        Environment env;
        Mesos__V1__Environment__Variable vars[2];
        Mesos__V1__Environment__Variable *var_ptrs[2];
        uint32_t statuses[CHECK_STATUSES_MAX + 1];
        char *args[CHECK_ARGS_MAX + 1];
} HcFixture;

static void hc_http(HcFixture *f, uint32_t port)
{
        *f = (HcFixture){ .hc = MESOS__V1__HEALTH_CHECK__INIT,
                          .http = MESOS__V1__HEALTH_CHECK__HTTPCHECK_INFO__INIT,
                          .tcp = MESOS__V1__HEALTH_CHECK__TCPCHECK_INFO__INIT,
                          .cmd = MESOS__V1__COMMAND_INFO__INIT,
                          .env = MESOS__V1__ENVIRONMENT__INIT };
        for (size_t i = 0; i < ELEMENTSOF(f->vars); i++) {
                f->vars[i] = (Mesos__V1__Environment__Variable)MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
                f->var_ptrs[i] = &f->vars[i];
        }
        f->hc.has_type = true;
        f->hc.type = MESOS__V1__HEALTH_CHECK__TYPE__HTTP;
        f->hc.http = &f->http;
        f->http.port = port;
}

static void hc_tcp(HcFixture *f, uint32_t port)
{
        hc_http(f, 0);
        f->hc.type = MESOS__V1__HEALTH_CHECK__TYPE__TCP;
        f->hc.http = NULL;
        f->hc.tcp = &f->tcp;
        f->tcp.port = port;
}

static void hc_command(HcFixture *f, const char *line)
{
        hc_http(f, 0);
        f->hc.type = MESOS__V1__HEALTH_CHECK__TYPE__COMMAND;
        f->hc.http = NULL;
        f->hc.command = &f->cmd;
        f->cmd.value = (char *)line;
}

static void hc_set_timing(HcFixture *f, double delay, double interval, double timeout, double grace,
                          uint32_t failures)
{
        f->hc.has_delay_seconds = f->hc.has_interval_seconds = f->hc.has_timeout_seconds = true;
        f->hc.has_grace_period_seconds = f->hc.has_consecutive_failures = true;
        f->hc.delay_seconds = delay;
        f->hc.interval_seconds = interval;
        f->hc.timeout_seconds = timeout;
        f->hc.grace_period_seconds = grace;
        f->hc.consecutive_failures = failures;
}

static void assert_hc_error(const HcFixture *f, const char *want)
{
        CheckSpec s = { .name = "untouched" };
        PacerError err = { { 0 } };
        int r = check_spec_from_health_check(&f->hc, NULL, &s, &err);

        if (r >= 0) {
                check_spec_done(&s);
                fail_msg("accepted, wanted error \"%s\"", want);
        }
        assert_contains(err.msg, want);
        /* ret_* untouched on failure */
        assert_string_equal(s.name, "untouched");
}

static void test_hc_defaults(void **state)
{
        HcFixture f;
        CheckSpec s;
        PacerError err;

        hc_http(&f, 8080);
        /* has_* false: the values in the fields must not matter */
        f.hc.delay_seconds = 99;
        f.hc.timeout_seconds = 99;
        f.hc.consecutive_failures = 99;
        assert_int_equal(check_spec_from_health_check(&f.hc, NULL, &s, &err), 0);
        assert_string_equal(s.name, CHECK_NAME_TASKINFO);
        assert_int_equal(s.type, CHECK_TYPE_HTTP);
        assert_int_equal(s.role, CHECK_ROLE_BOTH);
        assert_int_equal(s.port, 8080);
        assert_string_equal(s.path, "/");
        assert_false(s.ipv6);
        assert_int_equal(s.n_statuses, 0);
        assert_true(s.delay_ns == 15 * NSEC_PER_SEC);
        assert_true(s.interval_ns == 10 * NSEC_PER_SEC);
        /* Mesos's own defaults have timeout > interval: accepted */
        assert_true(s.timeout_ns == 20 * NSEC_PER_SEC);
        assert_true(s.grace_ns == 10 * NSEC_PER_SEC);
        assert_int_equal(s.max_failures, 3);
        assert_null(s.argv);
        check_spec_done(&s);
}

static void test_hc_explicit(void **state)
{
        HcFixture f;
        CheckSpec s;
        PacerError err;

        hc_http(&f, 443);
        hc_set_timing(&f, 0.5, 0, 0, 300, 0);
        f.http.scheme = "https";
        f.http.path = "/health?x=1%20y";
        f.http.has_protocol = true;
        f.http.protocol = MESOS__V1__NETWORK_INFO__PROTOCOL__IPv6;
        f.statuses[0] = 200;
        f.statuses[1] = 204;
        f.http.statuses = f.statuses;
        f.http.n_statuses = 2;
        assert_int_equal(check_spec_from_health_check(&f.hc, NULL, &s, &err), 0);
        assert_int_equal(s.type, CHECK_TYPE_HTTPS);
        assert_true(s.ipv6);
        assert_string_equal(s.path, "/health?x=1%20y");
        assert_int_equal(s.n_statuses, 2);
        assert_int_equal(s.statuses[1], 204);
        assert_true(s.delay_ns == 500 * NSEC_PER_MSEC);
        /* interval 0 is accepted, but never spins the loop */
        assert_true(s.interval_ns == CHECK_INTERVAL_MIN_NS);
        /* 0 = no timeout */
        assert_true(s.timeout_ns == 0);
        assert_true(s.grace_ns == 300 * NSEC_PER_SEC);
        /* a limit of 0 is reached by the first counted failure, like 1 */
        assert_int_equal(s.max_failures, 1);
        check_spec_done(&s);

        /* the statuses are copied, not borrowed */
        hc_http(&f, 80);
        f.statuses[0] = 503;
        f.http.statuses = f.statuses;
        f.http.n_statuses = 1;
        assert_int_equal(check_spec_from_health_check(&f.hc, NULL, &s, &err), 0);
        f.statuses[0] = 200;
        assert_int_equal(s.statuses[0], 503);
        check_spec_done(&s);
}

static void test_hc_tcp(void **state)
{
        HcFixture f;
        CheckSpec s;
        PacerError err;

        hc_tcp(&f, 6379);
        f.tcp.has_protocol = true;
        f.tcp.protocol = MESOS__V1__NETWORK_INFO__PROTOCOL__IPv6;
        assert_int_equal(check_spec_from_health_check(&f.hc, NULL, &s, &err), 0);
        assert_int_equal(s.type, CHECK_TYPE_TCP);
        assert_int_equal(s.port, 6379);
        assert_true(s.ipv6);
        assert_null(s.path);
        check_spec_done(&s);
}

static void test_hc_command(void **state)
{
        char *task_env[] = { "PATH=/usr/bin:/bin", "FOO=task", "KEEP=1", NULL };
        SandboxPlan plan;
        CheckTaskContext ctx = { .envp = task_env, .sandbox = &plan, .cwd = "/tmp" };
        HcFixture f;
        CheckSpec s;
        PacerError err;

        sandbox_plan_init(&plan);
        hc_command(&f, "curl -f localhost || exit 1");
        f.vars[0].name = "FOO";
        f.vars[0].value = "check";
        f.vars[1].name = "NEW";
        f.vars[1].value = NULL; /* an unset value is an empty one */
        f.env.variables = f.var_ptrs;
        f.env.n_variables = 2;
        f.cmd.environment = &f.env;
        assert_int_equal(check_spec_from_health_check(&f.hc, &ctx, &s, &err), 0);
        assert_int_equal(s.type, CHECK_TYPE_COMMAND);
        assert_string_equal(s.argv[0], "/bin/sh");
        assert_string_equal(s.argv[1], "-c");
        assert_string_equal(s.argv[2], "curl -f localhost || exit 1");
        assert_null(s.argv[3]);
        assert_string_equal(s.envp[0], "PATH=/usr/bin:/bin");
        assert_string_equal(s.envp[1], "KEEP=1");
        assert_string_equal(s.envp[2], "FOO=check");
        assert_string_equal(s.envp[3], "NEW=");
        assert_null(s.envp[4]);
        assert_string_equal(s.cwd, "/tmp");
        /* borrowed: the plan may hold a seccomp filter */
        assert_ptr_equal(s.sandbox, &plan);
        check_spec_done(&s);

        /* argv form: value is the program, arguments the whole argv */
        hc_command(&f, "/bin/echo");
        f.cmd.has_shell = true;
        f.cmd.shell = false;
        f.args[0] = "echo";
        f.args[1] = "a b";
        f.cmd.arguments = f.args;
        f.cmd.n_arguments = 2;
        assert_int_equal(check_spec_from_health_check(&f.hc, NULL, &s, &err), 0);
        assert_string_equal(s.argv[0], "/bin/echo");
        assert_string_equal(s.argv[1], "a b");
        assert_null(s.argv[2]);
        assert_non_null(s.envp);
        assert_null(s.envp[0]);
        assert_null(s.sandbox);
        assert_null(s.cwd);
        check_spec_done(&s);

        f.cmd.n_arguments = 0;
        assert_int_equal(check_spec_from_health_check(&f.hc, NULL, &s, &err), 0);
        assert_string_equal(s.argv[0], "/bin/echo");
        assert_null(s.argv[1]);
        check_spec_done(&s);
        sandbox_plan_done(&plan);
}

static void test_hc_errors(void **state)
{
        _cleanup_free_ char *long_path = malloc(CHECK_PATH_MAX + 2);
        _cleanup_free_ char *long_cmd = malloc(CHECK_COMMAND_MAX + 2);
        HcFixture f;

        assert_non_null(long_path);
        assert_non_null(long_cmd);
        assert_int_equal(check_spec_from_health_check(NULL, NULL, &(CheckSpec){ 0 }, NULL), -EINVAL);

        hc_http(&f, 80);
        f.hc.has_type = false;
        assert_hc_error(&f, "health_check.type: required");
        hc_http(&f, 80);
        f.hc.type = MESOS__V1__HEALTH_CHECK__TYPE__UNKNOWN;
        assert_hc_error(&f, "health_check.type UNKNOWN: must be COMMAND, HTTP or TCP");
        hc_http(&f, 80);
        f.hc.type = (Mesos__V1__HealthCheck__Type)7;
        assert_hc_error(&f, "health_check.type 7: unknown type");

        /* HTTP */
        hc_http(&f, 80);
        f.hc.http = NULL;
        assert_hc_error(&f, "health_check.http: required for type HTTP");
        hc_http(&f, 80);
        f.http.scheme = "ftp";
        assert_hc_error(&f, "health_check.http.scheme \"ftp\": must be http or https");
        hc_http(&f, 80);
        f.http.scheme = "HTTP";
        assert_hc_error(&f, "health_check.http.scheme \"HTTP\"");
        hc_http(&f, 0);
        assert_hc_error(&f, "health_check.http.port: required");
        hc_http(&f, 70000);
        assert_hc_error(&f, "health_check.http.port 70000 out of range");
        hc_http(&f, 80);
        f.http.path = "health";
        assert_hc_error(&f, "health_check.http.path \"health\": must start with '/'");
        f.http.path = "";
        assert_hc_error(&f, "health_check.http.path \"\": must start with '/'");
        f.http.path = "/a b";
        assert_hc_error(&f, "health_check.http.path \"/a b\": must not contain spaces or control characters "
                            "(percent-encode them)");
        f.http.path = "/a\r\nX-Injected: 1";
        assert_hc_error(&f, "health_check.http.path \"/a\\x0d\\x0aX-Injected: 1\": must not contain spaces");
        f.http.path = "/a\tb";
        assert_hc_error(&f, "must not contain spaces or control characters");
        f.http.path = "/\x7f";
        assert_hc_error(&f, "must not contain spaces or control characters");
        f.http.path = "/caf\xc3\xa9";
        assert_hc_error(&f, "health_check.http.path \"/caf\\xc3\\xa9\": must be ASCII (percent-encode");
        f.http.path = "/\xff\xfe";
        assert_hc_error(&f, "must be ASCII");
        long_path[0] = '/';
        memset(long_path + 1, 'a', CHECK_PATH_MAX);
        long_path[CHECK_PATH_MAX + 1] = 0;
        f.http.path = long_path;
        assert_hc_error(&f, "longer than 1024 bytes");
        /* the quoted value is cut short */
        assert_hc_error(&f, "aaa...\"");
        hc_http(&f, 80);
        f.http.has_protocol = true;
        f.http.protocol = (Mesos__V1__NetworkInfo__Protocol)3;
        assert_hc_error(&f, "health_check.http.protocol 3: must be IPv4 (1) or IPv6 (2)");
        hc_http(&f, 80);
        f.statuses[0] = 200;
        f.statuses[1] = 700;
        f.http.statuses = f.statuses;
        f.http.n_statuses = 2;
        assert_hc_error(&f, "health_check.http.statuses[1] 700: not an HTTP status (100-599)");
        f.statuses[1] = 99;
        assert_hc_error(&f, "health_check.http.statuses[1] 99");
        for (size_t i = 0; i < ELEMENTSOF(f.statuses); i++)
                f.statuses[i] = 200;
        f.http.n_statuses = CHECK_STATUSES_MAX + 1;
        assert_hc_error(&f, "health_check.http.statuses: more than 32 entries");

        /* TCP */
        hc_tcp(&f, 80);
        f.hc.tcp = NULL;
        assert_hc_error(&f, "health_check.tcp: required for type TCP");
        hc_tcp(&f, 0);
        assert_hc_error(&f, "health_check.tcp.port: required");
        hc_tcp(&f, 65536);
        assert_hc_error(&f, "health_check.tcp.port 65536 out of range");
        hc_tcp(&f, 80);
        f.tcp.has_protocol = true;
        f.tcp.protocol = (Mesos__V1__NetworkInfo__Protocol)0;
        assert_hc_error(&f, "health_check.tcp.protocol 0");

        /* COMMAND */
        hc_command(&f, "true");
        f.hc.command = NULL;
        assert_hc_error(&f, "health_check.command: required for type COMMAND");
        hc_command(&f, NULL);
        assert_hc_error(&f, "health_check.command.value: required");
        hc_command(&f, "");
        assert_hc_error(&f, "health_check.command.value: required");
        memset(long_cmd, 'x', CHECK_COMMAND_MAX + 1);
        long_cmd[CHECK_COMMAND_MAX + 1] = 0;
        hc_command(&f, long_cmd);
        assert_hc_error(&f, "health_check.command.value: longer than");
        hc_command(&f, NULL);
        f.cmd.has_shell = true;
        f.cmd.shell = false;
        assert_hc_error(&f, "health_check.command.value: required (the program to run, as shell is false)");
        hc_command(&f, "/bin/true");
        f.cmd.has_shell = true;
        f.cmd.shell = false;
        for (size_t i = 0; i < ELEMENTSOF(f.args); i++)
                f.args[i] = "x";
        f.cmd.arguments = f.args;
        f.cmd.n_arguments = CHECK_ARGS_MAX + 1;
        assert_hc_error(&f, "health_check.command.arguments: more than 256 entries");
        f.cmd.n_arguments = 2;
        f.args[1] = NULL;
        assert_hc_error(&f, "health_check.command.arguments[1]: missing");
        hc_command(&f, "true");
        f.vars[0].name = "TOKEN";
        f.vars[0].has_type = true;
        f.vars[0].type = MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__SECRET;
        f.env.variables = f.var_ptrs;
        f.env.n_variables = 1;
        f.cmd.environment = &f.env;
        assert_hc_error(&f,
                        "health_check.command.environment.variables[0] (TOKEN): secrets are not supported");
        f.vars[0].has_type = false;
        f.vars[0].name = "A=B";
        assert_hc_error(&f, "health_check.command.environment.variables[0].name: must be non-empty");
        f.vars[0].name = "";
        assert_hc_error(&f, "health_check.command.environment.variables[0].name");

        /* durations */
        hc_http(&f, 80);
        hc_set_timing(&f, -1, 10, 20, 10, 3);
        assert_hc_error(&f, "health_check.delay_seconds -1: must not be negative");
        hc_set_timing(&f, 1, NAN, 20, 10, 3);
        assert_hc_error(&f, "health_check.interval_seconds nan: not a finite number");
        hc_set_timing(&f, 1, 10, INFINITY, 10, 3);
        assert_hc_error(&f, "health_check.timeout_seconds inf: not a finite number");
        hc_set_timing(&f, 1, 10, -0.5, 10, 3);
        assert_hc_error(&f, "health_check.timeout_seconds -0.5: must not be negative");
        hc_set_timing(&f, 1, 10, 20, 1e12, 3);
        assert_hc_error(&f, "health_check.grace_period_seconds 1e+12: too large");
        hc_set_timing(&f, 1, 10, 20, -3, 3);
        assert_hc_error(&f, "health_check.grace_period_seconds -3");
}

/* ---- specs from labels ---- */

static void test_label_full(void **state)
{
        CheckTaskContext ctx = { .ports = two_ports, .n_ports = 2 };
        CheckSpec s;
        PacerError err;

        assert_int_equal(
                check_spec_from_label("pacer.check.web-1",
                                      "type=http,port-index=1,path=/health?deep=1,interval=5s,timeout="
                                      "2secs,delay=100ms,grace=1m30s,failures=5,role=readiness",
                                      &ctx, &s, &err),
                0);
        assert_string_equal(s.name, "web-1");
        assert_int_equal(s.type, CHECK_TYPE_HTTP);
        assert_int_equal(s.role, CHECK_ROLE_READINESS);
        assert_int_equal(s.port, 9090);
        assert_string_equal(s.path, "/health?deep=1");
        assert_true(s.interval_ns == 5 * NSEC_PER_SEC);
        assert_true(s.timeout_ns == 2 * NSEC_PER_SEC);
        assert_true(s.delay_ns == 100 * NSEC_PER_MSEC);
        assert_true(s.grace_ns == 90 * NSEC_PER_SEC);
        assert_int_equal(s.max_failures, 5);
        assert_false(s.ipv6);
        check_spec_done(&s);

        /* spaces around keys and values; port= instead of an index; timeout = interval is fine */
        assert_int_equal(check_spec_from_label("pacer.check.tls",
                                               " type = https , port = 8443 , interval=3s, "
                                               "timeout=3s ,role=liveness",
                                               &ctx, &s, &err),
                         0);
        assert_int_equal(s.type, CHECK_TYPE_HTTPS);
        assert_int_equal(s.port, 8443);
        assert_string_equal(s.path, "/");
        assert_int_equal(s.role, CHECK_ROLE_LIVENESS);
        assert_true(check_role_kills(s.role));
        assert_false(check_role_gates_readiness(s.role));
        check_spec_done(&s);
}

static void test_label_defaults(void **state)
{
        CheckTaskContext ctx = { .ports = two_ports, .n_ports = 2 };
        CheckSpec s;
        PacerError err;

        assert_int_equal(check_spec_from_label("pacer.check.db", "type=tcp", &ctx, &s, &err), 0);
        assert_int_equal(s.type, CHECK_TYPE_TCP);
        assert_int_equal(s.role, CHECK_ROLE_BOTH);
        /* as Marathon: the first port */
        assert_int_equal(s.port, 8080);
        assert_null(s.path);
        assert_true(s.delay_ns == CHECK_DEFAULT_DELAY_NS);
        assert_true(s.interval_ns == CHECK_DEFAULT_INTERVAL_NS);
        /* label checks end within their interval */
        assert_true(s.timeout_ns == CHECK_DEFAULT_INTERVAL_NS);
        assert_true(s.grace_ns == CHECK_DEFAULT_GRACE_NS);
        assert_int_equal(s.max_failures, CHECK_DEFAULT_FAILURES);
        check_spec_done(&s);

        /* a short interval brings the default timeout down with it */
        assert_int_equal(check_spec_from_label("pacer.check.db", "type=tcp,interval=2s", &ctx, &s, &err), 0);
        assert_true(s.timeout_ns == 2 * NSEC_PER_SEC);
        check_spec_done(&s);
        assert_int_equal(check_spec_from_label("pacer.check.db", "type=tcp,interval=1m", &ctx, &s, &err), 0);
        assert_true(s.timeout_ns == CHECK_DEFAULT_TIMEOUT_NS);
        check_spec_done(&s);
}

static void test_label_command(void **state)
{
        char *task_env[] = { "PATH=/bin", "APP=1", NULL };
        SandboxPlan plan;
        CheckTaskContext ctx = { .envp = task_env, .sandbox = &plan, .cwd = "/srv" };
        CheckSpec s;
        PacerError err;

        sandbox_plan_init(&plan);
        /* the command is last and keeps its commas, '=' and spaces */
        assert_int_equal(
                check_spec_from_label("pacer.check.script",
                                      "type=command,timeout=1s,role=liveness,command= test \"$A\" = b, "
                                      "echo x=1,,y ",
                                      &ctx, &s, &err),
                0);
        assert_int_equal(s.type, CHECK_TYPE_COMMAND);
        assert_string_equal(s.argv[0], "/bin/sh");
        assert_string_equal(s.argv[1], "-c");
        assert_string_equal(s.argv[2], "test \"$A\" = b, echo x=1,,y ");
        assert_string_equal(s.envp[0], "PATH=/bin");
        assert_string_equal(s.envp[1], "APP=1");
        assert_null(s.envp[2]);
        assert_string_equal(s.cwd, "/srv");
        assert_ptr_equal(s.sandbox, &plan);
        assert_int_equal(s.port, 0);
        /* copies: the task's data can go */
        assert_ptr_not_equal(s.envp[0], task_env[0]);
        check_spec_done(&s);

        /* a command check needs no ports */
        assert_int_equal(check_spec_from_label("pacer.check.c", "command=true,type=command", NULL, &s, &err),
                         -EINVAL);
        assert_contains(err.msg, "type= is required");
        assert_int_equal(check_spec_from_label("pacer.check.c", "type=command,command=true", NULL, &s, &err),
                         0);
        assert_string_equal(s.argv[2], "true");
        assert_null(s.envp[0]);
        assert_null(s.sandbox);
        check_spec_done(&s);
        sandbox_plan_done(&plan);
}

typedef struct LabelCase {
        const char *key;
        const char *value;
        size_t n_ports;
        const char *want;
} LabelCase;

static void test_label_errors(void **state)
{
        static const LabelCase cases[] = {
                { "pacer.check.Web", "type=tcp", 2,
                  "label \"pacer.check.Web\": the check name must be 1-32" },
                { "pacer.check.", "type=tcp", 2, "label \"pacer.check.\": the check name" },
                { "pacer.check.a_b", "type=tcp", 2, "the check name must be" },
                { "pacer.check.a.b", "type=tcp", 2, "the check name must be" },
                { "pacer.check.abcdefghijklmnopqrstuvwxyz0123456", "type=tcp", 2, "the check name must be" },
                { "pacer.check.x\n", "type=tcp", 2, "label \"pacer.check.x\\x0a\": the check name" },
                { "consul", "type=tcp", 2, "not a pacer.check.<name> label" },
                { "pacer.check.w", "", 2, "label pacer.check.w: empty value" },
                { "pacer.check.w", NULL, 2, "label pacer.check.w: empty value" },
                { "pacer.check.w", "type=tcp,\ninterval=1s", 2,
                  "label pacer.check.w: control character at offset 9" },
                { "pacer.check.w", "type=tcp,bogus=1", 2,
                  "label pacer.check.w: unknown key \"bogus\" (known: type, port" },
                { "pacer.check.w", "type=tcp,Type=tcp", 2, "unknown key \"Type\"" },
                { "pacer.check.w", "type=tcp,port-index", 2,
                  "label pacer.check.w: \"port-index\" is not key=value" },
                { "pacer.check.w", "type=tcp,,port=1", 2, "label pacer.check.w: empty item at offset 9" },
                { "pacer.check.w", "type=tcp,", 2, "empty item at offset 9" },
                { "pacer.check.w", ",type=tcp", 2, "empty item at offset 0" },
                { "pacer.check.w", "type=tcp,type=http", 2, "label pacer.check.w: key type given twice" },
                { "pacer.check.w", "type=udp", 2,
                  "label pacer.check.w: type \"udp\": must be http, https, tcp or command" },
                { "pacer.check.w", "type=", 2, "type \"\": must be" },
                { "pacer.check.w", "port=80", 2, "label pacer.check.w: type= is required" },
                { "pacer.check.w", "type=tcp,port=0", 2,
                  "label pacer.check.w: port 0 out of range (1-65535)" },
                { "pacer.check.w", "type=tcp,port=70000", 2, "port 70000 out of range" },
                { "pacer.check.w", "type=tcp,port=99999999999999999999", 2, "out of range" },
                { "pacer.check.w", "type=tcp,port=8o", 2, "label pacer.check.w: port \"8o\": not a number" },
                { "pacer.check.w", "type=tcp,port=-1", 2, "not a number" },
                { "pacer.check.w", "type=tcp,port=+80", 2, "not a number" },
                { "pacer.check.w", "type=tcp,port=80,port-index=0", 2,
                  "give port= or port-index=, not both" },
                { "pacer.check.w", "type=tcp,port-index=2", 2,
                  "label pacer.check.w: port-index=2 out of range: the task has 2 ports" },
                { "pacer.check.w", "type=tcp,port-index=0", 0,
                  "port-index=0 out of range: the task has 0 ports" },
                { "pacer.check.w", "type=tcp,port-index=1", 1, "the task has 1 port" },
                { "pacer.check.w", "type=tcp,port-index=4294967296", 2,
                  "out of range: the task has 2 ports" },
                { "pacer.check.w", "type=tcp,port-index=x", 2, "port-index \"x\": not a number" },
                { "pacer.check.w", "type=http", 0,
                  "no port= or port-index= given and the task has no ports" },
                { "pacer.check.w", "type=http,port=80,path=health", 2,
                  "label pacer.check.w: path \"health\": must start with '/'" },
                { "pacer.check.w", "type=http,port=80,path=/a b", 2,
                  "label pacer.check.w: path \"/a b\": must not contain spaces or control characters" },
                { "pacer.check.w", "type=tcp,path=/x", 2, "path= is only for http and https checks" },
                { "pacer.check.w", "type=http,command=true", 2, "command= is only for type=command" },
                { "pacer.check.w", "type=command", 2, "command= is required for type=command" },
                { "pacer.check.w", "type=command,command=", 2, "command= is empty" },
                { "pacer.check.w", "type=command,port=80,command=true", 2,
                  "port=, port-index= and path= are not for command checks" },
                { "pacer.check.w", "type=command,path=/,command=true", 2, "are not for command checks" },
                { "pacer.check.w", "type=tcp,interval=5", 2,
                  "label pacer.check.w: interval: invalid duration" },
                { "pacer.check.w", "type=tcp,interval=-1s", 2, "interval: invalid duration '-1s'" },
                { "pacer.check.w", "type=tcp,delay=abc", 2, "delay: invalid duration" },
                { "pacer.check.w", "type=tcp,grace=1year", 2, "grace: invalid duration" },
                { "pacer.check.w", "type=tcp,grace=400days", 2, "grace \"400days\": too large" },
                { "pacer.check.w", "type=tcp,timeout=", 2, "timeout: empty duration" },
                { "pacer.check.w", "type=tcp,timeout=0s", 2,
                  "label pacer.check.w: timeout must be greater than 0" },
                { "pacer.check.w", "type=tcp,interval=10s,timeout=20s", 2,
                  "label pacer.check.w: timeout 20s is longer than the interval 10s" },
                { "pacer.check.w", "type=tcp,interval=2s,timeout=2001ms", 2,
                  "timeout 2.001s is longer than" },
                { "pacer.check.w", "type=tcp,interval=1ms", 2, "interval 1ms is below the minimum of 10ms" },
                { "pacer.check.w", "type=tcp,interval=0", 2, "interval 0s is below the minimum" },
                { "pacer.check.w", "type=tcp,failures=0", 2,
                  "label pacer.check.w: failures \"0\": must be a number from 1 to 1000" },
                { "pacer.check.w", "type=tcp,failures=1001", 2, "failures \"1001\"" },
                { "pacer.check.w", "type=tcp,failures=three", 2, "failures \"three\"" },
                { "pacer.check.w", "type=tcp,role=startup", 2,
                  "label pacer.check.w: role \"startup\": must be liveness, readiness or both" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                CheckTaskContext ctx = { .ports = two_ports, .n_ports = cases[i].n_ports };
                CheckSpec s = { .name = "untouched" };
                PacerError err = { { 0 } };
                int r = check_spec_from_label(cases[i].key, cases[i].value, &ctx, &s, &err);

                if (r >= 0) {
                        check_spec_done(&s);
                        fail_msg("case %zu (%s) accepted, wanted \"%s\"", i, cases[i].value, cases[i].want);
                }
                if (!strstr(err.msg, cases[i].want))
                        fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err.msg, cases[i].want);
                assert_string_equal(s.name, "untouched");
        }
}

static void test_label_oversized(void **state)
{
        CheckTaskContext ctx = { .ports = two_ports, .n_ports = 2 };
        _cleanup_free_ char *big = malloc(BIG_LABEL_SIZE + 1);
        char at_limit[CHECK_LABEL_VALUE_MAX + 1];
        CheckSpec s;
        PacerError err;
        size_t n;

        /* 100 KB that would parse fine if it were looked at: refused on its size alone */
        assert_non_null(big);
        n = (size_t)snprintf(big, BIG_LABEL_SIZE, "type=command,command=");
        memset(big + n, 'x', BIG_LABEL_SIZE - n);
        big[BIG_LABEL_SIZE] = 0;
        assert_int_equal(check_spec_from_label("pacer.check.big", big, &ctx, &s, &err), -E2BIG);
        assert_string_equal(err.msg, "label pacer.check.big: value over the limit of 4096 bytes");

        /* exactly at the limit is fine */
        n = (size_t)snprintf(at_limit, sizeof(at_limit), "type=command,command=");
        memset(at_limit + n, 'y', CHECK_LABEL_VALUE_MAX - n);
        at_limit[CHECK_LABEL_VALUE_MAX] = 0;
        assert_int_equal(check_spec_from_label("pacer.check.big", at_limit, &ctx, &s, &err), 0);
        assert_int_equal(strlen(s.argv[2]), CHECK_LABEL_VALUE_MAX - n);
        check_spec_done(&s);
        at_limit[CHECK_LABEL_VALUE_MAX - 1] = 0;
        at_limit[CHECK_LABEL_VALUE_MAX - 2] = '\xff'; /* non-ASCII bytes are fine in a command */
        assert_int_equal(check_spec_from_label("pacer.check.big", at_limit, &ctx, &s, &err), 0);
        check_spec_done(&s);
}

static void test_type_role_strings(void **state)
{
        for (int t = 0; t < _CHECK_TYPE_MAX; t++)
                assert_int_equal(check_type_from_string(check_type_to_string((CheckType)t)), t);
        for (int r = 0; r < _CHECK_ROLE_MAX; r++)
                assert_int_equal(check_role_from_string(check_role_to_string((CheckRole)r)), r);
        assert_int_equal(check_type_from_string("HTTP"), _CHECK_TYPE_INVALID);
        assert_int_equal(check_role_from_string(NULL), _CHECK_ROLE_INVALID);
        assert_null(check_type_to_string(_CHECK_TYPE_MAX));
        assert_null(check_role_to_string(_CHECK_ROLE_INVALID));
        assert_true(check_role_gates_readiness(CHECK_ROLE_BOTH) && check_role_kills(CHECK_ROLE_BOTH));
        assert_true(check_role_gates_readiness(CHECK_ROLE_READINESS) &&
                    !check_role_kills(CHECK_ROLE_READINESS));
}

/* ---- all checks of a task ---- */

typedef struct TaskFixture {
        TaskInfo task;
        Labels labels;
        Label label[CHECKS_MAX + 4];
        Label *label_ptrs[CHECKS_MAX + 4];
        char keys[CHECKS_MAX + 4][48];
        HcFixture hc;
} TaskFixture;

static void task_init(TaskFixture *f)
{
        *f = (TaskFixture){ .task = MESOS__V1__TASK_INFO__INIT, .labels = MESOS__V1__LABELS__INIT };
        f->task.labels = &f->labels;
        f->labels.labels = f->label_ptrs;
}

static void task_add_label(TaskFixture *f, const char *key, const char *value)
{
        size_t i = f->labels.n_labels++;

        assert_true(i < ELEMENTSOF(f->label));
        snprintf(f->keys[i], sizeof(f->keys[i]), "%s", key);
        f->label[i] = (Label)MESOS__V1__LABEL__INIT;
        f->label[i].key = f->keys[i];
        f->label[i].value = (char *)value;
        f->label_ptrs[i] = &f->label[i];
}

static void test_task_specs(void **state)
{
        CheckTaskContext ctx = { .ports = two_ports, .n_ports = 2 };
        TaskFixture f;
        CheckSpec *specs = NULL;
        size_t n = 99;
        PacerError err;

        task_init(&f);
        /* none at all */
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), 0);
        assert_null(specs);
        assert_int_equal(n, 0);

        hc_tcp(&f.hc, 5432);
        f.task.health_check = &f.hc.hc;
        task_add_label(&f, "consul", "web");
        task_add_label(&f, "pacer.check.ready", "type=http,port-index=1,path=/ready,role=readiness");
        task_add_label(&f, "pacer.checks", "not ours");
        task_add_label(&f, "pacer.check.alive", "type=command,command=true,role=liveness");
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_string_equal(specs[0].name, CHECK_NAME_TASKINFO);
        assert_int_equal(specs[0].type, CHECK_TYPE_TCP);
        assert_int_equal(specs[0].role, CHECK_ROLE_BOTH);
        assert_string_equal(specs[1].name, "ready");
        assert_int_equal(specs[1].port, 9090);
        assert_int_equal(specs[1].role, CHECK_ROLE_READINESS);
        assert_string_equal(specs[2].name, "alive");
        assert_int_equal(specs[2].type, CHECK_TYPE_COMMAND);
        specs = check_specs_free(specs, n);
        assert_null(specs);
        assert_null(check_specs_free(NULL, 0));
}

static void test_task_limits_and_errors(void **state)
{
        CheckTaskContext ctx = { .ports = two_ports, .n_ports = 2 };
        TaskFixture f;
        CheckSpec *specs = NULL;
        size_t n = 99;
        PacerError err;
        char key[48];

        /* 8 labels are fine, 9 are not */
        task_init(&f);
        for (int i = 0; i < CHECKS_MAX; i++) {
                snprintf(key, sizeof(key), "pacer.check.c%d", i);
                task_add_label(&f, key, "type=tcp");
        }
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), 0);
        assert_int_equal(n, CHECKS_MAX);
        specs = check_specs_free(specs, n);
        task_add_label(&f, "pacer.check.c9", "type=tcp");
        n = 99;
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), -E2BIG);
        assert_string_equal(err.msg,
                            "9 checks: at most 8 per task (TaskInfo.health_check and pacer.check.* labels "
                            "together)");
        assert_null(specs);
        assert_int_equal(n, 99);

        /* the TaskInfo's check counts too; the count comes before any parsing */
        task_init(&f);
        hc_tcp(&f.hc, 80);
        f.task.health_check = &f.hc.hc;
        for (int i = 0; i < CHECKS_MAX; i++) {
                snprintf(key, sizeof(key), "pacer.check.c%d", i);
                task_add_label(&f, key, "garbage");
        }
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), -E2BIG);
        assert_contains(err.msg, "9 checks: at most 8");

        /* one bad check fails the whole set (and frees what was built) */
        task_init(&f);
        hc_tcp(&f.hc, 80);
        f.task.health_check = &f.hc.hc;
        task_add_label(&f, "pacer.check.ok", "type=tcp");
        task_add_label(&f, "pacer.check.bad", "type=tcp,port-index=7");
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), -ERANGE);
        assert_string_equal(err.msg,
                            "label pacer.check.bad: port-index=7 out of range: the task has 2 ports");

        task_init(&f);
        hc_tcp(&f.hc, 70000);
        f.task.health_check = &f.hc.hc;
        task_add_label(&f, "pacer.check.ok", "type=tcp");
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), -ERANGE);
        assert_contains(err.msg, "health_check.tcp.port 70000 out of range");

        /* the same name twice */
        task_init(&f);
        task_add_label(&f, "pacer.check.web", "type=tcp");
        task_add_label(&f, "pacer.check.other", "type=tcp");
        task_add_label(&f, "pacer.check.web", "type=tcp,port=81");
        assert_int_equal(check_specs_from_task(&f.task, &ctx, &specs, &n, &err), -EINVAL);
        assert_string_equal(err.msg, "label pacer.check.web: defined more than once");
        assert_int_equal(n, 99);
}

/* ---- the policy ---- */

#define S(x) ((int64_t)(x)*NSEC_PER_SEC)

static CheckVerdict feed(CheckPolicy *p, bool passed, int64_t at)
{
        CheckVerdict v;

        check_policy_feed(p, passed, at, &v);
        return v;
}

static void test_policy_grace(void **state)
{
        CheckPolicy p;
        CheckVerdict v;

        check_policy_init(&p, S(10), 3, S(100));
        /* failures inside the grace period before any success: ignored */
        v = feed(&p, false, S(101));
        assert_true(v.ignored);
        assert_int_equal(v.health, HEALTH_UNKNOWN);
        assert_int_equal(v.consecutive_failures, 0);
        assert_false(v.changed);
        assert_false(v.limit_reached);
        for (int i = 0; i < 5; i++)
                assert_true(feed(&p, false, S(109)).ignored);
        assert_int_equal(p.health, HEALTH_UNKNOWN);

        /* the first success ends the grace period early */
        v = feed(&p, true, S(105));
        assert_false(v.ignored);
        assert_int_equal(v.health, HEALTH_HEALTHY);
        assert_true(v.changed);
        v = feed(&p, false, S(106));
        assert_false(v.ignored);
        assert_int_equal(v.health, HEALTH_UNHEALTHY);
        assert_int_equal(v.consecutive_failures, 1);
        assert_true(v.changed);

        /* past the grace period without a success, failures count */
        check_policy_init(&p, S(10), 3, S(100));
        assert_true(feed(&p, false, S(109)).ignored);
        v = feed(&p, false, S(110));
        assert_false(v.ignored);
        assert_int_equal(v.health, HEALTH_UNHEALTHY);
        assert_int_equal(v.consecutive_failures, 1);
        assert_true(v.changed);

        /* no grace: the first failure counts */
        check_policy_init(&p, 0, 3, S(100));
        v = feed(&p, false, S(100));
        assert_false(v.ignored);
        assert_int_equal(v.consecutive_failures, 1);
}

static void test_policy_consecutive(void **state)
{
        CheckPolicy p;
        CheckVerdict v;

        check_policy_init(&p, 0, 3, 0);
        v = feed(&p, true, S(1));
        assert_true(v.changed);
        assert_int_equal(v.health, HEALTH_HEALTHY);
        v = feed(&p, true, S(2));
        assert_false(v.changed);

        v = feed(&p, false, S(3));
        assert_true(v.changed);
        assert_int_equal(v.consecutive_failures, 1);
        assert_false(v.limit_reached);
        v = feed(&p, false, S(4));
        assert_false(v.changed);
        assert_int_equal(v.health, HEALTH_UNHEALTHY);
        assert_int_equal(v.consecutive_failures, 2);
        assert_false(v.limit_reached);

        /* a success resets the count */
        v = feed(&p, true, S(5));
        assert_true(v.changed);
        assert_int_equal(v.consecutive_failures, 0);
        assert_false(v.limit_reached);
        for (int i = 1; i <= 2; i++) {
                v = feed(&p, false, S(5 + i));
                assert_int_equal(v.consecutive_failures, i);
                assert_false(v.limit_reached);
        }
        v = feed(&p, false, S(8));
        assert_int_equal(v.consecutive_failures, 3);
        assert_true(v.limit_reached);
        assert_false(v.changed);
        /* it stays reached while failures go on */
        v = feed(&p, false, S(9));
        assert_int_equal(v.consecutive_failures, 4);
        assert_true(v.limit_reached);
        v = feed(&p, true, S(10));
        assert_false(v.limit_reached);
        assert_int_equal(v.health, HEALTH_HEALTHY);

        /* a limit of 1: the first counted failure; 0 behaves the same */
        check_policy_init(&p, 0, 1, 0);
        assert_true(feed(&p, false, 0).limit_reached);
        check_policy_init(&p, 0, 0, 0);
        assert_int_equal(p.max_failures, 1);
        assert_false(feed(&p, true, 0).limit_reached);
        assert_true(feed(&p, false, 0).limit_reached);
}

/* ---- probes: the test server ---- */

typedef struct Server {
        struct MHD_Daemon *daemon;
        uint16_t port;
        pthread_mutex_t lock;
        struct MHD_Connection *hung[SERVER_HUNG_MAX];
        size_t n_hung;
        int notify[2]; /* a byte per hung request, read by the test's loop */
        bool stopping;
} Server;

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, const char *s,
                                  const char *location)
{
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(s), (void *)s, MHD_RESPMEM_MUST_COPY);
        enum MHD_Result r;

        if (!resp)
                return MHD_NO;
        if (location)
                MHD_add_response_header(resp, "Location", location);
        r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result server_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls)
{
        Server *srv = cls;

        if (!*con_cls) {
                *con_cls = srv;
                return MHD_YES;
        }
        if (streq(url, "/ok"))
                return queue_text(conn, 200, "ok", NULL);
        if (streq(url, "/redirect"))
                return queue_text(conn, 302, "elsewhere", "/ok");
        if (streq(url, "/fail"))
                return queue_text(conn, 503, "down", NULL);
        if (streq(url, "/hang")) {
                bool ok;
                pthread_mutex_lock(&srv->lock);
                /* a request resumed by server_stop() comes back here: let it go */
                ok = !srv->stopping && srv->n_hung < SERVER_HUNG_MAX;
                if (ok) {
                        MHD_suspend_connection(conn);
                        srv->hung[srv->n_hung++] = conn;
                }
                pthread_mutex_unlock(&srv->lock);
                if (ok)
                        (void)!write(srv->notify[1], "H", 1);
                return ok ? MHD_YES : MHD_NO;
        }
        return queue_text(conn, 404, "no such path", NULL);
}

/* cert and key: PEM text for a TLS server, NULL for plain HTTP. */
static void server_start_with(Server *srv, const char *cert, const char *key)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME;

        *srv = (Server){ 0 };
        assert_int_equal(pthread_mutex_init(&srv->lock, NULL), 0);
        assert_int_equal(pipe2(srv->notify, O_NONBLOCK | O_CLOEXEC), 0);
        if (cert)
                srv->daemon = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, server_handler, srv,
                                               MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_CERT, cert,
                                               MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_END);
        else
                srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, server_handler, srv,
                                               MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
        assert_non_null(srv->daemon);
        info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
        assert_non_null(info);
        srv->port = info->port;
}

static void server_start(Server *srv)
{
        server_start_with(srv, NULL, NULL);
}

static void server_stop(Server *srv)
{
        struct MHD_Connection *resume[SERVER_HUNG_MAX];
        size_t n;

        pthread_mutex_lock(&srv->lock);
        srv->stopping = true;
        n = srv->n_hung;
        memcpy(resume, srv->hung, n * sizeof(resume[0]));
        srv->n_hung = 0;
        pthread_mutex_unlock(&srv->lock);
        /* MHD will not stop with suspended connections */
        for (size_t i = 0; i < n; i++)
                MHD_resume_connection(resume[i]);
        MHD_stop_daemon(srv->daemon);
        close(srv->notify[0]);
        close(srv->notify[1]);
        pthread_mutex_destroy(&srv->lock);
}

/* A port nothing listens on: bound, then closed. */
static uint16_t closed_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

/* ---- probes: fixture ---- */

typedef struct Fixture {
        Server srv;
        struct ev_loop *loop;
        HttpClient *http;
        char dir[64];
} Fixture;

static int setup(void **state)
{
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        server_start(&f->srv);
        f->loop = ev_default_loop(0);
        assert_non_null(f->loop);
        f->http = http_client_new(f->loop);
        assert_non_null(f->http);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-check-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        Fixture *f = *state;
        char path[128];

        assert_int_equal(http_client_pending(f->http), 0);
        f->http = http_client_free(f->http);
        server_stop(&f->srv);
        snprintf(path, sizeof(path), "%s/pid", f->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/fifo", f->dir);
        unlink(path);
        rmdir(f->dir);
        free(f);
        return 0;
}

/* What one checker reported. */
typedef struct Probe {
        Checker *checker;
        CheckResult results[PROBE_RESULTS_MAX];
        int64_t at_ns[PROBE_RESULTS_MAX]; /* when each callback ran */
        unsigned n;
        unsigned stop_after; /* checker_stop() from the callback at this count; 0 = never */
        unsigned free_after; /* checker_free() from the callback at this count */
} Probe;

static void on_result(Checker *c, const CheckResult *r, void *userdata)
{
        Probe *p = userdata;

        assert_ptr_equal(c, p->checker);
        if (p->n < PROBE_RESULTS_MAX) {
                p->results[p->n] = *r;
                p->at_ns[p->n] = mono_ns();
        }
        p->n++;
        if (p->free_after && p->n == p->free_after)
                p->checker = checker_free(c);
        else if (p->n == p->stop_after || p->n == PROBE_RESULTS_MAX)
                checker_stop(c);
}

static void on_safety(struct ev_loop *loop, ev_timer *w, int revents)
{
        *(bool *)w->data = true;
}

/* Runs the loop until *counter reaches want; fails after WAIT_MAX_S. */
static void wait_for(Fixture *f, const unsigned *counter, unsigned want)
{
        bool expired = false;
        ev_timer safety;

        ev_timer_init(&safety, on_safety, WAIT_MAX_S, 0.);
        safety.data = &expired;
        ev_timer_start(f->loop, &safety);
        while (*counter < want && !expired)
                ev_run(f->loop, EVRUN_ONCE);
        ev_timer_stop(f->loop, &safety);
        if (expired)
                fail_msg("no result after %.0fs (have %u of %u)", WAIT_MAX_S, *counter, want);
}

/* Runs the loop for a while, for asserting that nothing happens. */
static void run_for(Fixture *f, int64_t ns)
{
        bool expired = false;
        ev_timer t;

        ev_timer_init(&t, on_safety, (double)ns / (double)NSEC_PER_SEC, 0.);
        t.data = &expired;
        ev_timer_start(f->loop, &t);
        while (!expired)
                ev_run(f->loop, EVRUN_ONCE);
}

/* A fast spec: no delay, no grace, a short interval and timeout. */
static CheckSpec fast_spec(CheckType type, uint16_t port, const char *path)
{
        return (CheckSpec){
                .name = "t",
                .type = type,
                .port = port,
                .path = (char *)path,
                .interval_ns = FAST_INTERVAL_NS,
                .timeout_ns = SHORT_TIMEOUT_NS,
                .max_failures = 3,
        };
}

static void run_probes(Fixture *f, const CheckSpec *spec, Probe *p, unsigned n)
{
        p->stop_after = n;
        assert_int_equal(checker_new(f->loop, f->http, spec, on_result, p, &p->checker), 0);
        checker_start(p->checker);
        /* never from inside checker_start(), even with no delay */
        assert_int_equal(p->n, 0);
        wait_for(f, &p->n, n);
        assert_int_equal(p->n, n);
        p->checker = checker_free(p->checker);
}

/* ---- probes: HTTP ---- */

static void test_http_ok_and_redirect(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, f->srv.port, "/ok");
        Probe p = { 0 };

        run_probes(f, &spec, &p, 2);
        for (unsigned i = 0; i < 2; i++) {
                assert_true(p.results[i].passed);
                assert_string_equal(p.results[i].output, "HTTP 200");
                assert_true(p.results[i].latency_ns > 0);
                assert_int_equal(p.results[i].verdict.health, HEALTH_HEALTHY);
        }
        assert_true(p.results[0].verdict.changed);
        assert_false(p.results[1].verdict.changed);
        /* the next probe starts an interval after the previous one ended */
        assert_true(p.at_ns[1] - p.results[1].latency_ns - p.at_ns[0] >= FAST_INTERVAL_NS - NSEC_PER_MSEC);

        /* redirects are not followed: a 3xx passes */
        p = (Probe){ 0 };
        spec.path = "/redirect";
        run_probes(f, &spec, &p, 1);
        assert_true(p.results[0].passed);
        assert_string_equal(p.results[0].output, "HTTP 302");
}

static void test_http_failures(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, f->srv.port, "/fail");
        Probe p = { 0 };

        run_probes(f, &spec, &p, 3);
        for (unsigned i = 0; i < 3; i++) {
                assert_false(p.results[i].passed);
                assert_string_equal(p.results[i].output, "HTTP 503");
                assert_int_equal(p.results[i].verdict.consecutive_failures, i + 1);
                assert_int_equal(p.results[i].verdict.health, HEALTH_UNHEALTHY);
                assert_false(p.results[i].verdict.ignored);
        }
        assert_true(p.results[0].verdict.changed);
        assert_false(p.results[1].verdict.changed);
        assert_false(p.results[1].verdict.limit_reached);
        assert_true(p.results[2].verdict.limit_reached);

        /* a 404 fails too */
        p = (Probe){ 0 };
        spec.path = "/missing";
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "HTTP 404");

        /* with a grace period, the same failures are ignored */
        p = (Probe){ 0 };
        spec.path = "/fail";
        spec.grace_ns = 60 * NSEC_PER_SEC;
        run_probes(f, &spec, &p, 2);
        assert_true(p.results[1].verdict.ignored);
        assert_int_equal(p.results[1].verdict.health, HEALTH_UNKNOWN);
        assert_int_equal(p.results[1].verdict.consecutive_failures, 0);
}

static void test_http_statuses(void **state)
{
        Fixture *f = *state;
        HcFixture hc;
        CheckSpec spec;
        PacerError err;
        Probe p = { 0 };

        /* built the way the executor builds it: from a HealthCheck */
        hc_http(&hc, f->srv.port);
        hc_set_timing(&hc, 0, 0.02, 1, 0, 3);
        hc.http.path = "/fail";
        hc.statuses[0] = 503;
        hc.http.statuses = hc.statuses;
        hc.http.n_statuses = 1;
        assert_int_equal(check_spec_from_health_check(&hc.hc, NULL, &spec, &err), 0);
        run_probes(f, &spec, &p, 1);
        assert_true(p.results[0].passed);
        assert_string_equal(p.results[0].output, "HTTP 503");
        check_spec_done(&spec);

        /* exactly those: a 200 is now a failure */
        hc.http.path = "/ok";
        assert_int_equal(check_spec_from_health_check(&hc.hc, NULL, &spec, &err), 0);
        p = (Probe){ 0 };
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "HTTP 200");
        check_spec_done(&spec);
}

/* A self-signed certificate for 127.0.0.1 made by the openssl tool into dir: its PEM texts. */
static void make_certificate(const char *dir, char **cert, char **key)
{
        char cmd[512], path[128];
        FILE *fp;

        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=pacer-test -keyout %s/key.pem "
                 "-out %s/cert.pem >/dev/null 2>&1",
                 dir, dir);
        assert_int_equal(system(cmd), 0);
        for (int k = 0; k < 2; k++) {
                char **out = k ? key : cert;
                long n;
                snprintf(path, sizeof(path), "%s/%s.pem", dir, k ? "key" : "cert");
                fp = fopen(path, "re");
                assert_non_null(fp);
                fseek(fp, 0, SEEK_END);
                n = ftell(fp);
                rewind(fp);
                *out = calloc(1, (size_t)n + 1);
                assert_non_null(*out);
                assert_int_equal(fread(*out, 1, (size_t)n, fp), (size_t)n);
                fclose(fp);
                unlink(path);
        }
}

/* HTTPS checks speak TLS and do not verify the task's certificate (as Mesos's curl -k): a
 * self-signed one passes; the same server probed over plain HTTP fails, and so does an HTTPS
 * probe of a plain HTTP server. */
static void test_https_unverified_certificate(void **state)
{
        Fixture *f = *state;
        _cleanup_free_ char *cert = NULL, *key = NULL;
        Server tls;
        Probe p = { 0 };
        CheckSpec spec;

        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                skip(); /* libmicrohttpd without TLS: nothing to probe */
        make_certificate(f->dir, &cert, &key);
        server_start_with(&tls, cert, key);

        spec = fast_spec(CHECK_TYPE_HTTPS, tls.port, "/ok");
        run_probes(f, &spec, &p, 1);
        assert_true(p.results[0].passed);
        assert_string_equal(p.results[0].output, "HTTP 200");

        p = (Probe){ 0 };
        spec = fast_spec(CHECK_TYPE_HTTP, tls.port, "/ok");
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);

        p = (Probe){ 0 };
        spec = fast_spec(CHECK_TYPE_HTTPS, f->srv.port, "/ok");
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        server_stop(&tls);
}

static void test_http_timeout(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, f->srv.port, "/hang");
        Probe p = { 0 };

        /* timeout > interval works (Mesos allows it): probes never overlap */
        run_probes(f, &spec, &p, 2);
        for (unsigned i = 0; i < 2; i++) {
                assert_false(p.results[i].passed);
                assert_string_equal(p.results[i].output, "timed out after 200ms");
                assert_true(p.results[i].latency_ns >= SHORT_TIMEOUT_NS - NSEC_PER_MSEC);
        }
        assert_true(p.at_ns[1] - p.at_ns[0] >= SHORT_TIMEOUT_NS + FAST_INTERVAL_NS - NSEC_PER_MSEC);
}

static void test_http_refused(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, closed_port(), "/ok");
        Probe p = { 0 };

        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "connect: Connection refused");
}

static void test_http_free_in_callback(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, f->srv.port, "/ok");
        Probe p = { .free_after = 1 };

        assert_int_equal(checker_new(f->loop, f->http, &spec, on_result, &p, &p.checker), 0);
        checker_start(p.checker);
        wait_for(f, &p.n, 1);
        assert_null(p.checker);
        run_for(f, 3 * FAST_INTERVAL_NS);
        assert_int_equal(p.n, 1);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
        unsigned *count = w->data;
        char b[64];
        ssize_t n = read(w->fd, b, sizeof(b) - 1);

        if (n > 0) {
                b[n] = 0;
                /* the first number in what was read, if any, is a pid */
                if (!*count)
                        *count = (unsigned)MAX(strtol(b, NULL, 10), 1L);
        }
}

static void test_stop_in_flight(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, f->srv.port, "/hang");
        Probe p = { 0 };
        unsigned hung = 0;
        ev_io w;

        spec.timeout_ns = NSEC_PER_SEC;
        ev_io_init(&w, on_readable, f->srv.notify[0], EV_READ);
        w.data = &hung;
        ev_io_start(f->loop, &w);
        assert_int_equal(checker_new(f->loop, f->http, &spec, on_result, &p, &p.checker), 0);
        checker_start(p.checker);
        /* until the server holds the request */
        wait_for(f, &hung, 1);
        ev_io_stop(f->loop, &w);
        assert_int_equal(http_client_pending(f->http), 1);
        checker_stop(p.checker);
        assert_int_equal(http_client_pending(f->http), 0);
        run_for(f, 3 * FAST_INTERVAL_NS);
        assert_int_equal(p.n, 0);

        /* it starts again afresh */
        checker_start(p.checker);
        wait_for(f, &p.n, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "timed out after 1s");
        p.checker = checker_free(p.checker);
}

static void test_delay(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, f->srv.port, "/ok");
        Probe p = { 0 };
        int64_t t0;

        spec.delay_ns = 150 * NSEC_PER_MSEC;
        t0 = mono_ns();
        run_probes(f, &spec, &p, 1);
        assert_true(p.at_ns[0] - p.results[0].latency_ns - t0 >= spec.delay_ns - NSEC_PER_MSEC);
}

static void test_checker_new_errors(void **state)
{
        Fixture *f = *state;
        CheckSpec spec = fast_spec(CHECK_TYPE_HTTP, 80, "/");
        Checker *c = NULL;

        assert_int_equal(checker_new(f->loop, NULL, &spec, on_result, NULL, &c), -EINVAL);
        assert_int_equal(checker_new(f->loop, f->http, &spec, NULL, NULL, &c), -EINVAL);
        assert_int_equal(checker_new(NULL, f->http, &spec, on_result, NULL, &c), -EINVAL);
        spec.path = NULL;
        assert_int_equal(checker_new(f->loop, f->http, &spec, on_result, NULL, &c), -EINVAL);
        spec = fast_spec(CHECK_TYPE_COMMAND, 0, NULL);
        assert_int_equal(checker_new(f->loop, NULL, &spec, on_result, NULL, &c), -EINVAL);
        spec.type = _CHECK_TYPE_MAX;
        assert_int_equal(checker_new(f->loop, NULL, &spec, on_result, NULL, &c), -EINVAL);
        assert_null(c);
        /* a TCP check needs no HTTP client */
        spec = fast_spec(CHECK_TYPE_TCP, 80, NULL);
        assert_int_equal(checker_new(f->loop, NULL, &spec, on_result, NULL, &c), 0);
        assert_ptr_equal(checker_spec(c), &spec);
        assert_int_equal(checker_health(c), HEALTH_UNKNOWN);
        assert_null(checker_free(c));
        assert_null(checker_free(NULL));
        checker_stop(NULL);
        checker_start(NULL);
}

/* ---- probes: TCP ---- */

static int listen_on(int family, uint16_t *ret_port)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } a = { 0 };
        socklen_t len;
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -1;
        if (family == AF_INET6) {
                a.in6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
                len = sizeof(a.in6);
        } else {
                a.in = (struct sockaddr_in){ .sin_family = AF_INET,
                                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                len = sizeof(a.in);
        }
        if (bind(fd, &a.sa, len) < 0 || listen(fd, 16) < 0 || getsockname(fd, &a.sa, &len) < 0) {
                close(fd);
                return -1;
        }
        *ret_port = ntohs(family == AF_INET6 ? a.in6.sin6_port : a.in.sin_port);
        return fd;
}

static void test_tcp(void **state)
{
        Fixture *f = *state;
        uint16_t port;
        _cleanup_close_ int fd = listen_on(AF_INET, &port);
        CheckSpec spec = fast_spec(CHECK_TYPE_TCP, port, NULL);
        Probe p = { 0 };

        assert_true(fd >= 0);
        run_probes(f, &spec, &p, 2);
        assert_true(p.results[0].passed);
        assert_true(p.results[1].passed);
        assert_string_equal(p.results[0].output, "connected");
        assert_int_equal(p.results[0].verdict.health, HEALTH_HEALTHY);

        p = (Probe){ 0 };
        spec.port = closed_port();
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "connect: Connection refused");
        assert_int_equal(p.results[0].verdict.health, HEALTH_UNHEALTHY);
}

static void test_tcp_ipv6(void **state)
{
        Fixture *f = *state;
        uint16_t port;
        _cleanup_close_ int fd = listen_on(AF_INET6, &port);
        CheckSpec spec;
        Probe p = { 0 };

        if (fd < 0)
                skip(); /* no IPv6 loopback here */
        spec = fast_spec(CHECK_TYPE_TCP, port, NULL);
        spec.ipv6 = true;
        run_probes(f, &spec, &p, 1);
        assert_true(p.results[0].passed);
        /* the same port on 127.0.0.1 is a different socket */
        p = (Probe){ 0 };
        spec.ipv6 = false;
        run_probes(f, &spec, &p, 1);
        if (p.results[0].passed)
                skip(); /* something else holds that IPv4 port */
        assert_string_equal(p.results[0].output, "connect: Connection refused");
}

/* ---- probes: COMMAND ---- */

static CheckSpec command_spec(Fixture *f, char **argv, char **envp)
{
        CheckSpec s = fast_spec(CHECK_TYPE_COMMAND, 0, NULL);

        s.argv = argv;
        s.envp = envp;
        s.cwd = f->dir;
        return s;
}

static void test_command_exit_status(void **state)
{
        Fixture *f = *state;
        char *env[] = { "PATH=/usr/bin:/bin", "WANT=yes", NULL };
        char *yes[] = { "/bin/sh", "-c", "true", NULL };
        char *no[] = { "/bin/sh", "-c", "false", NULL };
        char *seven[] = { "/bin/sh", "-c", "exit 7", NULL };
        char *env_test[] = { "/bin/sh", "-c", "test \"$WANT\" = yes && test \"$(pwd)\" = \"$DIR\"", NULL };
        char dir_env[96];
        char *env2[] = { "PATH=/usr/bin:/bin", "WANT=yes", dir_env, NULL };
        CheckSpec spec = command_spec(f, yes, env);
        Probe p = { 0 };

        run_probes(f, &spec, &p, 2);
        assert_true(p.results[0].passed);
        assert_string_equal(p.results[0].output, "exit status 0");
        assert_int_equal(p.results[1].verdict.health, HEALTH_HEALTHY);

        p = (Probe){ 0 };
        spec.argv = no;
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "exit status 1");

        p = (Probe){ 0 };
        spec.argv = seven;
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "exit status 7");

        /* the task's environment, in the task's directory */
        snprintf(dir_env, sizeof(dir_env), "DIR=%s", f->dir);
        p = (Probe){ 0 };
        spec.argv = env_test;
        spec.envp = env2;
        run_probes(f, &spec, &p, 1);
        assert_true(p.results[0].passed);
}

static pid_t read_pid(const char *dir)
{
        char path[128], buf[32] = { 0 };
        _cleanup_close_ int fd = -1;

        snprintf(path, sizeof(path), "%s/pid", dir);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
        return (pid_t)strtol(buf, NULL, 10);
}

static void test_command_timeout_kills_group(void **state)
{
        Fixture *f = *state;
        char *env[] = { "PATH=/usr/bin:/bin", NULL };
        /* the shell notes its pid (the group's id), then becomes sleep */
        char *hang[] = { "/bin/sh", "-c", "echo $$ > pid && exec sleep 10", NULL };
        CheckSpec spec = command_spec(f, hang, env);
        Probe p = { 0 };
        pid_t pgid;

        spec.timeout_ns = 300 * NSEC_PER_MSEC;
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_string_equal(p.results[0].output, "timed out after 300ms");
        assert_true(p.results[0].latency_ns >= spec.timeout_ns - NSEC_PER_MSEC);
        assert_true(p.results[0].latency_ns < 5 * NSEC_PER_SEC);
        pgid = read_pid(f->dir);
        assert_true(pgid > 1);
        assert_int_equal(kill(-pgid, 0), -1);
        assert_int_equal(errno, ESRCH);
}

static void test_command_cannot_run(void **state)
{
        Fixture *f = *state;
        char *env[] = { "PATH=/usr/bin:/bin", NULL };
        char *missing_abs[] = { "/nonexistent/check-program", NULL };
        char *missing_name[] = { "no-such-check-program", NULL };
        CheckSpec spec = command_spec(f, missing_abs, env);
        Probe p = { 0 };

        /* exec fails in the child */
        run_probes(f, &spec, &p, 2);
        assert_false(p.results[0].passed);
        assert_string_equal(
                p.results[0].output,
                "cannot run the command: exec /nonexistent/check-program failed: No such file or "
                "directory");
        assert_false(p.results[1].passed);

        /* not found before fork */
        p = (Probe){ 0 };
        spec.argv = missing_name;
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_contains(p.results[0].output, "command 'no-such-check-program' not found in PATH");

        /* a working directory that does not exist */
        p = (Probe){ 0 };
        spec.argv = (char *[]){ "/bin/true", NULL };
        spec.cwd = "/nonexistent-dir";
        run_probes(f, &spec, &p, 1);
        assert_false(p.results[0].passed);
        assert_contains(p.results[0].output, "chdir to the sandbox failed");
}

static void test_command_free_in_callback(void **state)
{
        Fixture *f = *state;
        char *env[] = { "PATH=/usr/bin:/bin", NULL };
        char *no[] = { "/bin/false", NULL };
        CheckSpec spec = command_spec(f, no, env);
        Probe p = { .free_after = 1 };

        assert_int_equal(checker_new(f->loop, NULL, &spec, on_result, &p, &p.checker), 0);
        checker_start(p.checker);
        wait_for(f, &p.n, 1);
        assert_null(p.checker);
        assert_false(p.results[0].passed);
        run_for(f, 3 * FAST_INTERVAL_NS);
        assert_int_equal(p.n, 1);
}

static void on_child_gone(struct ev_loop *loop, ev_child *w, int revents)
{
        ev_child_stop(loop, w);
        *(unsigned *)w->data = 1;
}

static void test_command_stop_in_flight(void **state)
{
        Fixture *f = *state;
        char *env[] = { "PATH=/usr/bin:/bin", NULL };
        /* the pid goes through a FIFO the test's loop watches */
        char *hang[] = { "/bin/sh", "-c", "echo $$ > fifo && exec sleep 10", NULL };
        char path[128];
        CheckSpec spec = command_spec(f, hang, env);
        Probe p = { 0 };
        unsigned pid = 0, gone = 0;
        _cleanup_close_ int fd = -1;
        ev_io w;
        ev_child child;

        spec.timeout_ns = 5 * NSEC_PER_SEC;
        snprintf(path, sizeof(path), "%s/fifo", f->dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(fd >= 0);
        ev_io_init(&w, on_readable, fd, EV_READ);
        w.data = &pid;
        ev_io_start(f->loop, &w);
        assert_int_equal(checker_new(f->loop, NULL, &spec, on_result, &p, &p.checker), 0);
        checker_start(p.checker);
        wait_for(f, &pid, 1);
        ev_io_stop(f->loop, &w);
        assert_true(pid > 1);
        /* learns when the process is reaped, whoever's watcher reaps it */
        ev_child_init(&child, on_child_gone, (int)pid, 0);
        child.data = &gone;
        ev_child_start(f->loop, &child);

        checker_stop(p.checker);
        wait_for(f, &gone, 1);
        assert_int_equal(kill(-(pid_t)pid, 0), -1);
        assert_int_equal(errno, ESRCH);
        run_for(f, 3 * FAST_INTERVAL_NS);
        assert_int_equal(p.n, 0);
        p.checker = checker_free(p.checker);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hc_defaults),
                cmocka_unit_test(test_hc_explicit),
                cmocka_unit_test(test_hc_tcp),
                cmocka_unit_test(test_hc_command),
                cmocka_unit_test(test_hc_errors),
                cmocka_unit_test(test_label_full),
                cmocka_unit_test(test_label_defaults),
                cmocka_unit_test(test_label_command),
                cmocka_unit_test(test_label_errors),
                cmocka_unit_test(test_label_oversized),
                cmocka_unit_test(test_type_role_strings),
                cmocka_unit_test(test_task_specs),
                cmocka_unit_test(test_task_limits_and_errors),
                cmocka_unit_test(test_policy_grace),
                cmocka_unit_test(test_policy_consecutive),
                cmocka_unit_test_setup_teardown(test_http_ok_and_redirect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_statuses, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_https_unverified_certificate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_http_free_in_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_in_flight, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
                cmocka_unit_test_setup_teardown(test_checker_new_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp_ipv6, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_exit_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_timeout_kills_group, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_cannot_run, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_free_in_callback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_stop_in_flight, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
