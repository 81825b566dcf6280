/* SPDX-License-Identifier: Apache-2.0 */
/* Local mode: resource bookkeeping, validation and the executor environment
 * without processes; then the local master on a loop with a tiny scheduler:
 * offers, filters, ACCEPT validation, reconciliation and the executor API's
 * HTTP checks; and end to end with the real pacer-executor running `sleep`. */
#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "duration.h"
#include "http_client.h"
#include "json.h"
#include "local.h"
#include "proc.h"
#include "recordio.h"

#ifndef PACER_EXECUTOR
#define PACER_EXECUTOR "pacer-executor"
#endif

#define PORT_BEGIN 41000u
#define PORT_END   41009u

/* ---- pure: resources ---- */

static Mesos__V1__Value__Scalar scalars[16];
static Mesos__V1__Value__Range ranges_[16], *rangep[16];
static Mesos__V1__Value__Ranges rangesets[4];
static Resource resbuf[16], *resv[16];

static Resource *scalar_res(size_t i, const char *name, double v)
{
        mesos__v1__resource__init(&resbuf[i]);
        mesos__v1__value__scalar__init(&scalars[i]);
        scalars[i].value = v;
        resbuf[i].name = (char *)name;
        resbuf[i].type = MESOS__V1__VALUE__TYPE__SCALAR;
        resbuf[i].scalar = &scalars[i];
        resv[i] = &resbuf[i];
        return &resbuf[i];
}

/* ports resource i with ranges given as begin,end pairs starting at range slot r0 */
static Resource *ports_res(size_t i, size_t set, size_t r0, size_t n, const uint64_t *be)
{
        mesos__v1__resource__init(&resbuf[i]);
        mesos__v1__value__ranges__init(&rangesets[set]);
        for (size_t k = 0; k < n; k++) {
                mesos__v1__value__range__init(&ranges_[r0 + k]);
                ranges_[r0 + k].begin = be[2 * k];
                ranges_[r0 + k].end = be[2 * k + 1];
                rangep[r0 + k] = &ranges_[r0 + k];
        }
        rangesets[set].n_range = n;
        rangesets[set].range = &rangep[r0];
        resbuf[i].name = "ports";
        resbuf[i].type = MESOS__V1__VALUE__TYPE__RANGES;
        resbuf[i].ranges = &rangesets[set];
        resv[i] = &resbuf[i];
        return &resbuf[i];
}

static void test_usage_parse(void **state)
{
        LocalUsage u = { 0 };
        PacerError err = { "" };
        uint64_t be[] = { 31005, 31007, 31000, 31001, 31002, 31002 };

        scalar_res(0, "cpus", 0.25);
        scalar_res(1, "mem", 64);
        scalar_res(2, "cpus", 0.0005); /* rounds to 0.001 */
        scalar_res(3, "disk", 10);
        ports_res(4, 0, 0, 3, be);
        assert_int_equal(local_usage_from_resources(resv, 5, &u, &err), 0);
        assert_int_equal(u.cpus, 251);
        assert_int_equal(u.mem, 64000);
        assert_int_equal(u.disk, 10000);
        /* sorted and merged: 31000-31002 and 31005-31007 */
        assert_int_equal(u.n_ports, 2);
        assert_int_equal(u.ports[0].begin, 31000);
        assert_int_equal(u.ports[0].end, 31002);
        assert_int_equal(u.ports[1].begin, 31005);
        assert_int_equal(u.ports[1].end, 31007);
        local_usage_done(&u);
        assert_null(u.ports);
}

static void expect_usage_error(size_t n, const char *needle)
{
        LocalUsage u = { 0 };
        PacerError err = { "" };

        assert_true(local_usage_from_resources(resv, n, &u, &err) < 0);
        if (!strstr(err.msg, needle))
                fail_msg("error '%s' does not mention '%s'", err.msg, needle);
        assert_null(u.ports);
}

static void test_usage_parse_errors(void **state)
{
        Mesos__V1__Resource__AllocationInfo ai = MESOS__V1__RESOURCE__ALLOCATION_INFO__INIT;
        uint64_t reversed[] = { 31010, 31000 }, zero[] = { 0, 5 }, big[] = { 65000, 70000 };

        scalar_res(0, "gpus", 1);
        expect_usage_error(1, "gpus is not offered");
        scalar_res(0, "cpus", -1);
        expect_usage_error(1, "invalid amount");
        scalar_res(0, "mem", NAN);
        expect_usage_error(1, "invalid amount");
        scalar_res(0, "mem", INFINITY);
        expect_usage_error(1, "invalid amount");
        scalar_res(0, "cpus", 1);
        resbuf[0].type = MESOS__V1__VALUE__TYPE__RANGES;
        expect_usage_error(1, "expected a SCALAR");
        scalar_res(0, "ports", 1);
        expect_usage_error(1, "expected RANGES");
        ports_res(0, 0, 0, 1, reversed);
        expect_usage_error(1, "invalid range [31010-31000]");
        ports_res(0, 0, 0, 1, zero);
        expect_usage_error(1, "invalid range");
        ports_res(0, 0, 0, 1, big);
        expect_usage_error(1, "invalid range");
        scalar_res(0, "cpus", 1);
        resbuf[0].n_reservations = 1;
        expect_usage_error(1, "reserved");
        scalar_res(0, "cpus", 1);
        ai.role = "prod";
        resbuf[0].allocation_info = &ai;
        expect_usage_error(1, "allocated to role prod");
        scalar_res(0, "cpus", 1);
        resbuf[0].name = NULL;
        expect_usage_error(1, "has no name");
        /* too many entries */
        for (size_t i = 0; i < 16; i++)
                scalar_res(i, "cpus", 1);
        Resource *many[LOCAL_RESOURCES_MAX + 1];
        for (size_t i = 0; i <= LOCAL_RESOURCES_MAX; i++)
                many[i] = &resbuf[0];
        LocalUsage u = { 0 };
        PacerError err = { "" };
        assert_int_equal(local_usage_from_resources(many, LOCAL_RESOURCES_MAX + 1, &u, &err), -E2BIG);
        /* an allocation to "*" is fine */
        ai.role = "*";
        resbuf[0].allocation_info = &ai;
        assert_int_equal(local_usage_from_resources(resv, 1, &u, &err), 0);
        local_usage_done(&u);
}

static LocalUsage usage(int64_t cpus, int64_t mem, int64_t disk, size_t n, const LocalRange *r)
{
        LocalUsage u = { .cpus = cpus, .mem = mem, .disk = disk };
        if (n) {
                u.ports = calloc(n, sizeof(*u.ports));
                assert_non_null(u.ports);
                memcpy(u.ports, r, n * sizeof(*r));
                u.n_ports = n;
        }
        return u;
}

static void test_pool(void **state)
{
        LocalPool *p = malloc(sizeof(*p));
        PacerError err = { "" };
        LocalUsage f = { 0 };
        LocalRange a_ports[] = { { 31000, 31001 } }, b_ports[] = { { 31001, 31001 } },
                   c_ports[] = { { 30999, 30999 } };
        LocalUsage a = usage(1500, 512000, 0, 1, a_ports), b = usage(100, 0, 0, 1, b_ports);
        LocalUsage c = usage(0, 0, 0, 1, c_ports), big = usage(600, 0, 0, 0, NULL);

        assert_non_null(p);
        local_pool_init(p, 2, 1024, 100, 31000, 31004);
        assert_int_equal(local_pool_take(p, &a, &err), 0);
        /* port 31001 is taken */
        assert_int_equal(local_pool_take(p, &b, &err), -ENOSPC);
        assert_non_null(strstr(err.msg, "port 31001 is in use"));
        /* outside the range */
        assert_int_equal(local_pool_check(p, &c, &err), -ENOSPC);
        assert_non_null(strstr(err.msg, "port 30999 is not offered"));
        /* 0.5 CPU left */
        assert_int_equal(local_pool_check(p, &big, &err), -ENOSPC);
        assert_non_null(strstr(err.msg, "cpus: 0.600 wanted, 0.500 available"));
        /* a failed take changes nothing */
        assert_int_equal(p->used_cpus, 1500);

        assert_int_equal(local_pool_free(p, &f), 0);
        assert_int_equal(f.cpus, 500);
        assert_int_equal(f.mem, 512000);
        assert_int_equal(f.disk, 100000);
        assert_int_equal(f.n_ports, 1);
        assert_int_equal(f.ports[0].begin, 31002);
        assert_int_equal(f.ports[0].end, 31004);
        local_usage_done(&f);

        /* a hole in the middle */
        LocalRange mid[] = { { 31003, 31003 } };
        LocalUsage m = usage(0, 0, 0, 1, mid);
        local_pool_release(p, &a);
        assert_int_equal(local_pool_take(p, &m, &err), 0);
        assert_int_equal(local_pool_free(p, &f), 0);
        assert_int_equal(f.cpus, 2000);
        assert_int_equal(f.n_ports, 2);
        assert_int_equal(f.ports[0].begin, 31000);
        assert_int_equal(f.ports[0].end, 31002);
        assert_int_equal(f.ports[1].begin, 31004);
        assert_int_equal(f.ports[1].end, 31004);

        /* a pool made of exactly what an offer holds */
        local_pool_init_usage(p, &f);
        assert_int_equal(local_pool_take(p, &b, &err), 0);        /* 31001 was offered */
        assert_int_equal(local_pool_check(p, &m, &err), -ENOSPC); /* 31003 was not */
        assert_non_null(strstr(err.msg, "31003"));
        LocalUsage rest = { 0 };
        assert_int_equal(local_pool_free(p, &rest), 0);
        assert_int_equal(rest.cpus, 1900);
        assert_int_equal(rest.n_ports, 3); /* 31000, 31002, 31004 */

        /* a pool offering the full port range does not wrap around */
        local_pool_init(p, 1, 1, 1, 65530, 65535);
        LocalUsage all = { 0 };
        assert_int_equal(local_pool_free(p, &all), 0);
        assert_int_equal(all.n_ports, 1);
        assert_int_equal(all.ports[0].end, 65535);

        local_usage_done(&all);
        local_usage_done(&rest);
        local_usage_done(&f);
        local_usage_done(&a);
        local_usage_done(&b);
        local_usage_done(&c);
        local_usage_done(&m);
        free(p);
}

static void test_usage_subset_add(void **state)
{
        LocalRange r1[] = { { 10, 20 }, { 30, 40 } }, r2[] = { { 12, 15 }, { 40, 40 } },
                   r3[] = { { 19, 31 } };
        LocalUsage a = usage(1000, 10, 0, 2, r1), b = usage(500, 10, 0, 2, r2), c = usage(0, 0, 0, 1, r3);

        assert_true(local_usage_subset(&b, &a));
        assert_false(local_usage_subset(&a, &b));
        assert_false(local_usage_subset(&c, &a)); /* 21-29 are not in a */
        b.mem = 11;
        assert_false(local_usage_subset(&b, &a));
        assert_int_equal(local_usage_add(&a, &c), 0);
        assert_int_equal(a.n_ports, 1); /* 10-40, merged */
        assert_int_equal(a.ports[0].begin, 10);
        assert_int_equal(a.ports[0].end, 40);
        assert_true(local_usage_subset(&c, &a));
        assert_false(local_usage_empty(&c));
        LocalUsage z = { 0 };
        assert_true(local_usage_empty(&z));
        local_usage_done(&a);
        local_usage_done(&b);
        local_usage_done(&c);
}

/* ---- pure: validation ---- */

static void test_id_check(void **state)
{
        PacerError err = { "" };
        char longid[LOCAL_ID_MAX + 2];

        assert_int_equal(local_id_check("Task ID", "web.1-abc_x", &err), 0);
        assert_true(local_id_check("Task ID", "", &err) < 0);
        assert_non_null(strstr(err.msg, "Task ID must not be empty"));
        assert_true(local_id_check("Task ID", NULL, &err) < 0);
        assert_true(local_id_check("Task ID", ".", &err) < 0);
        assert_true(local_id_check("Task ID", "..", &err) < 0);
        assert_true(local_id_check("Executor ID", "a/b", &err) < 0);
        assert_non_null(strstr(err.msg, "contains '/'"));
        assert_true(local_id_check("Executor ID", "a\\b", &err) < 0);
        assert_true(local_id_check("Executor ID", "a\nb", &err) < 0);
        assert_non_null(strstr(err.msg, "control characters"));
        memset(longid, 'x', sizeof(longid) - 1);
        longid[sizeof(longid) - 1] = 0;
        assert_true(local_id_check("Task ID", longid, &err) < 0);
        longid[LOCAL_ID_MAX] = 0;
        assert_int_equal(local_id_check("Task ID", longid, &err), 0);
}

/* A TaskInfo run by a custom executor, all in one struct. */
typedef struct TestTask {
        TaskInfo ti;
        ExecutorInfo ei;
        CommandInfo cmd;
        Environment env;
        Mesos__V1__Environment__Variable vars[4], *varp[4];
        Mesos__V1__TaskID tid;
        Mesos__V1__AgentID aid;
        Mesos__V1__ExecutorID eid;
        Resource res[3], *resp[3];
        Mesos__V1__Value__Scalar sc[3];
        Resource eres[2], *eresp[2];
        Mesos__V1__Value__Scalar esc[2];
        Mesos__V1__DurationInfo grace;
        char *args[16];
        char exec_id[128];
} TestTask;

static void tt_scalar(Resource *r, Mesos__V1__Value__Scalar *s, const char *name, double v)
{
        mesos__v1__resource__init(r);
        mesos__v1__value__scalar__init(s);
        s->value = v;
        r->name = (char *)name;
        r->type = MESOS__V1__VALUE__TYPE__SCALAR;
        r->scalar = s;
}

/* program and args: the executor's command (shell=false, args = argv incl. argv[0]). */
static void tt_init(TestTask *t, const char *task_id, const char *agent_id, const char *const *argv)
{
        memset(t, 0, sizeof(*t));
        mesos__v1__task_info__init(&t->ti);
        mesos__v1__executor_info__init(&t->ei);
        mesos__v1__command_info__init(&t->cmd);
        mesos__v1__environment__init(&t->env);
        mesos__v1__task_id__init(&t->tid);
        mesos__v1__agent_id__init(&t->aid);
        mesos__v1__executor_id__init(&t->eid);
        mesos__v1__duration_info__init(&t->grace);
        t->tid.value = (char *)task_id;
        t->aid.value = (char *)agent_id;
        snprintf(t->exec_id, sizeof(t->exec_id), "pacer.%s", task_id);
        t->eid.value = t->exec_id;
        t->ti.name = "test";
        t->ti.task_id = &t->tid;
        t->ti.agent_id = &t->aid;
        tt_scalar(&t->res[0], &t->sc[0], "cpus", 0.1);
        tt_scalar(&t->res[1], &t->sc[1], "mem", 32);
        t->resp[0] = &t->res[0];
        t->resp[1] = &t->res[1];
        t->ti.resources = t->resp;
        t->ti.n_resources = 2;
        tt_scalar(&t->eres[0], &t->esc[0], "cpus", 0.01);
        tt_scalar(&t->eres[1], &t->esc[1], "mem", 16);
        t->eresp[0] = &t->eres[0];
        t->eresp[1] = &t->eres[1];
        t->ei.resources = t->eresp;
        t->ei.n_resources = 2;
        t->ei.executor_id = &t->eid;
        t->ei.has_type = true;
        t->ei.type = MESOS__V1__EXECUTOR_INFO__TYPE__CUSTOM;
        t->cmd.has_shell = true;
        t->cmd.shell = false;
        t->cmd.value = (char *)argv[0];
        while (argv[t->cmd.n_arguments] && t->cmd.n_arguments < ELEMENTSOF(t->args) - 1) {
                t->args[t->cmd.n_arguments] = (char *)argv[t->cmd.n_arguments];
                t->cmd.n_arguments++;
        }
        t->cmd.arguments = t->args;
        t->cmd.environment = &t->env;
        t->env.variables = t->varp;
        t->ei.command = &t->cmd;
        t->ti.executor = &t->ei;
}

static void tt_env(TestTask *t, const char *name, const char *value)
{
        size_t i = t->env.n_variables++;
        mesos__v1__environment__variable__init(&t->vars[i]);
        t->vars[i].name = (char *)name;
        t->vars[i].value = (char *)value;
        t->varp[i] = &t->vars[i];
}

static void expect_task_error(TestTask *t, const char *needle)
{
        PacerError err = { "" };

        assert_true(local_task_check(&t->ti, "F1", "A1", &err) < 0);
        if (!strstr(err.msg, needle))
                fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_task_check(void **state)
{
        static const char *const argv[] = { "/bin/true", NULL };
        PacerError err = { "" };
        CommandInfo tc = MESOS__V1__COMMAND_INFO__INIT;
        Mesos__V1__FrameworkID other = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__CommandInfo__URI uri = MESOS__V1__COMMAND_INFO__URI__INIT, *urip = &uri;
        TestTask t;

        tt_init(&t, "T1", "A1", argv);
        assert_int_equal(local_task_check(&t.ti, "F1", "A1", &err), 0);

        /* a command-only task needs the Mesos command executor */
        tt_init(&t, "T1", "A1", argv);
        tc.value = "sleep 1";
        t.ti.command = &tc;
        t.ti.executor = NULL;
        expect_task_error(&t, "custom executor");
        t.ti.executor = &t.ei;
        expect_task_error(&t, "not both");

        tt_init(&t, "T1", "A2", argv);
        expect_task_error(&t, "Task uses agent 'A2'");
        tt_init(&t, "a/b", "A1", argv);
        expect_task_error(&t, "Task ID 'a/b' contains '/'");
        tt_init(&t, "T1", "A1", argv);
        t.ti.n_resources = 0;
        expect_task_error(&t, "Task uses no resources");
        tt_init(&t, "T1", "A1", argv);
        t.ti.name = NULL;
        expect_task_error(&t, "no name");
        tt_init(&t, "T1", "A1", argv);
        t.cmd.value = NULL;
        expect_task_error(&t, "command.value is required");
        tt_init(&t, "T1", "A1", argv);
        t.ei.type = MESOS__V1__EXECUTOR_INFO__TYPE__DEFAULT;
        expect_task_error(&t, "DEFAULT executor");
        tt_init(&t, "T1", "A1", argv);
        other.value = "F2";
        t.ei.framework_id = &other;
        expect_task_error(&t, "framework ID 'F2'");
        tt_init(&t, "T1", "A1", argv);
        tt_env(&t, "A=B", "x");
        expect_task_error(&t, "invalid variable name");
        tt_init(&t, "T1", "A1", argv);
        tt_env(&t, "TOKEN", NULL);
        t.vars[0].has_type = true;
        t.vars[0].type = MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__SECRET;
        expect_task_error(&t, "secret");
        tt_init(&t, "T1", "A1", argv);
        tt_env(&t, "X", NULL);
        expect_task_error(&t, "X has no value");
        tt_init(&t, "T1", "A1", argv);
        uri.value = "http://example.invalid/pacer-executor";
        t.cmd.uris = &urip;
        t.cmd.n_uris = 1;
        expect_task_error(&t, "fetches only local files");
        uri.value = "file:///opt/app.tar.gz";
        expect_task_error(&t, "does not extract archives");
        uri.has_extract = true;
        uri.extract = false;
        assert_int_equal(local_task_check(&t.ti, "F1", "A1", &err), 0);
        uri.output_file = "../x";
        expect_task_error(&t, "output_file");
        tt_init(&t, "T1", "A1", argv);
        t.grace.nanoseconds = -1;
        t.ei.shutdown_grace_period = &t.grace;
        expect_task_error(&t, "shutdown_grace_period");
}

static void test_accepts(void **state)
{
        const char *pb = "application/x-protobuf";

        assert_true(local_accepts(NULL, pb));
        assert_true(local_accepts(pb, pb));
        assert_true(local_accepts("*/*", pb));
        assert_true(local_accepts("application/*", pb));
        assert_true(local_accepts("application/json, application/x-protobuf;q=0.5", pb));
        assert_true(local_accepts("APPLICATION/X-PROTOBUF", pb));
        assert_false(local_accepts("application/json", pb));
        assert_false(local_accepts("text/*", pb));
        /* the most specific range decides */
        assert_false(local_accepts("*/*, application/x-protobuf;q=0", pb));
        assert_true(local_accepts("application/x-protobuf, */*;q=0", pb));
        assert_false(local_accepts("application/*;q=0", pb));
        assert_false(local_accepts("", pb));
}

static const char *env_get(char **env, const char *name)
{
        size_t n = strlen(name);
        for (size_t i = 0; env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

static void test_environment(void **state)
{
        static const char *const argv[] = { "/bin/true", NULL };
        LocalExecutorContext c = {
                .framework_id = "F1",
                .executor_id = "pacer.T1",
                .agent_id = "local-host",
                .sandbox = "/data/local/sandboxes/F1/pacer.T1",
                .endpoint = "127.0.0.1:5051",
                .checkpoint = false,
                .shutdown_grace_ns = 5 * NSEC_PER_SEC,
        };
        PacerError err = { "" };
        char **env = NULL;
        TestTask t;
        char *saved = getenv("ASAN_OPTIONS") ? strdup(getenv("ASAN_OPTIONS")) : NULL;

        setenv("ASAN_OPTIONS", "test=1", 1);
        setenv("PACER_SECRET_OF_THE_SCHEDULER", "x", 1);
        tt_init(&t, "T1", "A1", argv);
        tt_env(&t, "PORT0", "31000");
        tt_env(&t, "MESOS_SANDBOX", "/overridden");
        assert_int_equal(local_executor_environment(&t.ei, &c, &env, &err), 0);
        assert_string_equal(env_get(env, "PATH"),
                            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        assert_string_equal(env_get(env, "ASAN_OPTIONS"), "test=1");
        assert_null(env_get(env, "PACER_SECRET_OF_THE_SCHEDULER")); /* not inherited */
        assert_null(env_get(env, "HOME"));
        assert_string_equal(env_get(env, "MESOS_FRAMEWORK_ID"), "F1");
        assert_string_equal(env_get(env, "MESOS_EXECUTOR_ID"), "pacer.T1");
        assert_string_equal(env_get(env, "MESOS_DIRECTORY"), c.sandbox);
        assert_string_equal(env_get(env, "MESOS_SANDBOX"), "/overridden"); /* the framework's win */
        assert_string_equal(env_get(env, "MESOS_AGENT_ENDPOINT"), "127.0.0.1:5051");
        assert_string_equal(env_get(env, "MESOS_SLAVE_ID"), "local-host");
        assert_string_equal(env_get(env, "MESOS_SLAVE_PID"), "slave(1)@127.0.0.1:5051");
        assert_string_equal(env_get(env, "MESOS_CHECKPOINT"), "0");
        assert_string_equal(env_get(env, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"), "5secs");
        assert_string_equal(env_get(env, "LIBPROCESS_PORT"), "0");
        assert_string_equal(env_get(env, "PORT0"), "31000");
        assert_null(env_get(env, "MESOS_RECOVERY_TIMEOUT"));
        assert_null(env_get(env, "MESOS_SUBSCRIPTION_BACKOFF_MAX"));
        /* each variable once */
        size_t n_path = 0;
        for (size_t i = 0; env[i]; i++)
                n_path += strncmp(env[i], "MESOS_SANDBOX=", 14) == 0;
        assert_int_equal(n_path, 1);
        env = local_strv_free(env);

        /* checkpointing adds the recovery settings; ExecutorInfo's grace wins; PATH can be given */
        c.checkpoint = true;
        t.grace.nanoseconds = 1500 * NSEC_PER_MSEC;
        t.ei.shutdown_grace_period = &t.grace;
        tt_env(&t, "PATH", "/opt/bin");
        assert_int_equal(local_executor_environment(&t.ei, &c, &env, &err), 0);
        assert_string_equal(env_get(env, "MESOS_CHECKPOINT"), "1");
        assert_string_equal(env_get(env, "MESOS_RECOVERY_TIMEOUT"), "15mins");
        assert_string_equal(env_get(env, "MESOS_SUBSCRIPTION_BACKOFF_MAX"), "2secs");
        assert_string_equal(env_get(env, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"), "1500ms");
        assert_string_equal(env_get(env, "PATH"), "/opt/bin");
        env = local_strv_free(env);

        /* a bad variable is an error */
        tt_env(&t, "", "x");
        assert_true(local_executor_environment(&t.ei, &c, &env, &err) < 0);
        assert_null(env);

        unsetenv("PACER_SECRET_OF_THE_SCHEDULER");
        if (saved)
                setenv("ASAN_OPTIONS", saved, 1);
        else
                unsetenv("ASAN_OPTIONS");
        free(saved);
}

static void test_proc_parsers(void **state)
{
        double mb;

        /* /proc/<pid>/stat: shared/test-proc.c */
        assert_int_equal(local_meminfo_total_mb("MemTotal:        2048000 kB\nMemFree: 1 kB\n", &mb), 0);
        assert_true(fabs(mb - 2000.0) < 0.001);
        assert_int_equal(local_meminfo_total_mb("XMemTotal: 5 kB\n", &mb), -EBADMSG);
        assert_int_equal(local_meminfo_total_mb("MemFree: 5 kB\n", &mb), -EBADMSG);
}

/* ---- a tiny scheduler on the loop ---- */

#define EVENTS_MAX 256

typedef struct Sched {
        struct ev_loop *loop;
        Master *m;
        char dir[64];
        int subscribed;
        bool in_call; /* inside a call into the master: callbacks must not come now */
        bool reentered;
        char framework_id[128];
        Mesos__V1__Scheduler__Event *events[EVENTS_MAX];
        size_t n_events;
        bool auto_ack;
        TaskInfo *launch; /* accept the next offer with this task */
        bool launched;
        double refuse;
} Sched;

static void on_subscribed(const char *framework_id, void *userdata)
{
        Sched *s = userdata;
        if (s->in_call)
                s->reentered = true;
        s->subscribed++;
        snprintf(s->framework_id, sizeof(s->framework_id), "%s", framework_id);
}

static void on_event(const Mesos__V1__Scheduler__Event *ev, void *userdata)
{
        Sched *s = userdata;
        Buf b = BUF_INIT(MESOS_MESSAGE_MAX);

        if (s->in_call)
                s->reentered = true;
        assert_int_equal(mesos_pack(&ev->base, &b), 0);
        assert_true(s->n_events < EVENTS_MAX);
        s->events[s->n_events++] = mesos__v1__scheduler__event__unpack(NULL, b.len, (const uint8_t *)b.data);
        buf_done(&b);
        if (ev->type == MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE && s->auto_ack) {
                const TaskStatus *st = ev->update->status;
                if (st->has_uuid)
                        assert_int_equal(s->m->ops->acknowledge(s->m, st->agent_id->value,
                                                                st->task_id->value, st->uuid.data,
                                                                st->uuid.len),
                                         0);
        }
        if (ev->type == MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS && s->launch && !s->launched) {
                s->launch->agent_id->value = ev->offers->offers[0]->agent_id->value;
                s->launched = true;
                assert_int_equal(
                        s->m->ops->accept(s->m, ev->offers->offers[0]->id->value, &s->launch, 1, s->refuse),
                        0);
        }
}

static const MasterCallbacks sched_callbacks = { .subscribed = on_subscribed, .event = on_event };

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
        *(bool *)w->data = true;
}

typedef bool (*pred_fn)(Sched *s, const void *arg);

/* Runs the loop until pred holds or timeout_s passed. */
static bool run_until(Sched *s, pred_fn pred, const void *arg, double timeout_s)
{
        bool expired = false;
        ev_timer t;

        ev_now_update(s->loop);
        ev_timer_init(&t, on_deadline, timeout_s, 0.);
        t.data = &expired;
        ev_timer_start(s->loop, &t);
        while (!(pred && pred(s, arg)) && !expired)
                ev_run(s->loop, EVRUN_ONCE);
        ev_timer_stop(s->loop, &t);
        return pred ? pred(s, arg) : true;
}

static bool p_subscribed(Sched *s, const void *arg)
{
        return s->subscribed > 0;
}

static size_t count_type(Sched *s, Mesos__V1__Scheduler__Event__Type type)
{
        size_t n = 0;
        for (size_t i = 0; i < s->n_events; i++)
                n += s->events[i]->type == type;
        return n;
}

static bool p_offers(Sched *s, const void *arg)
{
        return count_type(s, MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS) >= *(const size_t *)arg;
}

/* The update of task in state, or NULL. */
static const TaskStatus *find_update(Sched *s, const char *task, TaskState state)
{
        for (size_t i = 0; i < s->n_events; i++) {
                const Mesos__V1__Scheduler__Event *ev = s->events[i];
                if (ev->type == MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE &&
                    strcmp(ev->update->status->task_id->value, task) == 0 &&
                    ev->update->status->state == state)
                        return ev->update->status;
        }
        return NULL;
}

typedef struct UpdateWant {
        const char *task;
        TaskState state;
} UpdateWant;

static bool p_update(Sched *s, const void *arg)
{
        const UpdateWant *w = arg;
        return find_update(s, w->task, w->state) != NULL;
}

static const Mesos__V1__Scheduler__Event *find_event(Sched *s, Mesos__V1__Scheduler__Event__Type type)
{
        for (size_t i = 0; i < s->n_events; i++)
                if (s->events[i]->type == type)
                        return s->events[i];
        return NULL;
}

static bool p_failure(Sched *s, const void *arg)
{
        return find_event(s, MESOS__V1__SCHEDULER__EVENT__TYPE__FAILURE) != NULL;
}

static const Mesos__V1__Offer *last_offer(Sched *s)
{
        for (size_t i = s->n_events; i > 0; i--)
                if (s->events[i - 1]->type == MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS)
                        return s->events[i - 1]->offers->offers[0];
        return NULL;
}

static void clear_events(Sched *s)
{
        for (size_t i = 0; i < s->n_events; i++)
                mesos__v1__scheduler__event__free_unpacked(s->events[i], NULL);
        s->n_events = 0;
}

static Sched *current; /* for the teardown of a test that failed half-way */

static void sched_init(Sched *s, bool checkpoint)
{
        memset(s, 0, sizeof(*s));
        current = s;
        s->loop = ev_default_loop(0);
        s->refuse = 5;
        snprintf(s->dir, sizeof(s->dir), "%s/pacer-test-local-XXXXXX",
                 getenv("TMPDIR") && strlen(getenv("TMPDIR")) < 32 ? getenv("TMPDIR") : "/tmp");
        assert_non_null(mkdtemp(s->dir));
        (void)checkpoint;
}

static void sched_new(Sched *s, bool checkpoint)
{
        LocalOptions o = {
                .data_dir = s->dir,
                .cpus = 2,
                .mem = 1024,
                .disk = 2048,
                .port_begin = PORT_BEGIN,
                .port_end = PORT_END,
                .hostname = "testhost",
                .offer_interval_s = 0.05,
                .checkpoint = checkpoint,
        };
        PacerError err = { "" };

        if (master_local_new(s->loop, NULL, &o, &sched_callbacks, s, &s->m, &err) < 0)
                fail_msg("master_local_new: %s", err.msg);
}

static void sched_start(Sched *s)
{
        s->in_call = true;
        assert_int_equal(s->m->ops->start(s->m, NULL), 0);
        s->in_call = false;
        assert_int_equal(s->subscribed, 0); /* from the loop, never inside start() */
        assert_false(s->m->ops->subscribed(s->m));
        assert_true(run_until(s, p_subscribed, NULL, 5));
        assert_true(s->m->ops->subscribed(s->m));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void sched_cleanup(Sched *s)
{
        if (s->m)
                (void)master_local_shutdown(s->m, NSEC_PER_SEC);
        s->m = master_free(s->m);
        clear_events(s);
        nftw(s->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        current = NULL;
}

static void sched_done(Sched *s)
{
        bool reentered = s->reentered;

        sched_cleanup(s);
        assert_false(reentered);
}

static int teardown(void **state)
{
        if (current)
                sched_cleanup(current);
        return 0;
}

static const Resource *offer_resource(const Mesos__V1__Offer *o, const char *name)
{
        for (size_t i = 0; i < o->n_resources; i++)
                if (strcmp(o->resources[i]->name, name) == 0)
                        return o->resources[i];
        return NULL;
}

/* ---- the master without executor processes ---- */

static void test_master_offers(void **state)
{
        size_t one = 1, two = 2;
        Sched s;
        const Mesos__V1__Offer *o;
        const Resource *r;

        sched_init(&s, false);
        sched_new(&s, false);
        assert_string_equal(s.m->ops->leader(s.m), "local");
        assert_true(master_local_port(s.m) > 0);
        /* nothing happens before the framework subscribes */
        assert_int_equal(s.m->ops->revive(s.m), -ENOTCONN);
        sched_start(&s);
        assert_true(strlen(s.framework_id) > 10);
        assert_true(run_until(&s, p_offers, &one, 5));
        o = last_offer(&s);
        assert_string_equal(o->agent_id->value, "local-testhost");
        assert_string_equal(o->hostname, "testhost");
        assert_string_equal(o->framework_id->value, s.framework_id);
        assert_int_equal(o->n_attributes, 0);
        r = offer_resource(o, "cpus");
        assert_non_null(r);
        assert_int_equal(r->type, MESOS__V1__VALUE__TYPE__SCALAR);
        assert_true(fabs(r->scalar->value - 2.0) < 1e-9);
        assert_string_equal(r->allocation_info->role, "*");
        assert_true(fabs(offer_resource(o, "mem")->scalar->value - 1024.0) < 1e-9);
        assert_true(fabs(offer_resource(o, "disk")->scalar->value - 2048.0) < 1e-9);
        r = offer_resource(o, "ports");
        assert_int_equal(r->type, MESOS__V1__VALUE__TYPE__RANGES);
        assert_int_equal(r->ranges->n_range, 1);
        assert_int_equal(r->ranges->range[0]->begin, PORT_BEGIN);
        assert_int_equal(r->ranges->range[0]->end, PORT_END);
        /* everything is in the outstanding offer: no second one */
        assert_false(run_until(&s, p_offers, &two, 0.3));

        /* declined with a long filter: not offered again, until REVIVE */
        char *ids[] = { o->id->value };
        assert_int_equal(s.m->ops->decline(s.m, ids, 1, 1000), 0);
        assert_false(run_until(&s, p_offers, &two, 0.3));
        assert_int_equal(s.m->ops->revive(s.m), 0);
        assert_true(run_until(&s, p_offers, &two, 5));

        /* declined with refuse 0: offered again at the next turn */
        size_t three = 3, four = 4;
        ids[0] = last_offer(&s)->id->value;
        assert_int_equal(s.m->ops->decline(s.m, ids, 1, 0), 0);
        assert_true(run_until(&s, p_offers, &three, 5));

        /* suppressed: no offers even when free */
        assert_int_equal(s.m->ops->suppress(s.m), 0);
        ids[0] = last_offer(&s)->id->value;
        assert_int_equal(s.m->ops->decline(s.m, ids, 1, 0), 0);
        assert_false(run_until(&s, p_offers, &four, 0.3));
        assert_int_equal(s.m->ops->revive(s.m), 0);
        assert_true(run_until(&s, p_offers, &four, 5));
        /* a declined offer id is void */
        assert_int_equal(s.m->ops->decline(s.m, ids, 1, 0), 0);
        sched_done(&s);
}

static bool p_n_updates(Sched *s, const void *arg)
{
        return count_type(s, MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE) >= *(const size_t *)arg;
}

static const TaskStatus *expect_update(Sched *s, const char *task, TaskState state, const char *needle)
{
        UpdateWant w = { task, state };
        const TaskStatus *st;

        if (!run_until(s, p_update, &w, 10))
                fail_msg("no %s update for %s", task_state_to_string(state), task);
        st = find_update(s, task, state);
        if (needle && (!st->message || !strstr(st->message, needle)))
                fail_msg("%s of %s: message '%s' does not mention '%s'", task_state_to_string(state), task,
                         strna(st->message), needle);
        return st;
}

static void test_master_accept_validation(void **state)
{
        static const char *const argv[] = { "/bin/true", NULL };
        size_t one = 1, two = 2, five = 5;
        TestTask a, b, c, d, e;
        CommandInfo tc = MESOS__V1__COMMAND_INFO__INIT;
        TaskInfo *tasks[5];
        const TaskStatus *st;
        Sched s;
        char offer_id[128];

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        assert_true(run_until(&s, p_offers, &one, 5));
        snprintf(offer_id, sizeof(offer_id), "%s", last_offer(&s)->id->value);

        tt_init(&a, "cmd-only", "local-testhost", argv);
        tc.value = "sleep 1";
        a.ti.command = &tc;
        a.ti.executor = NULL;
        tt_init(&b, "too-big", "local-testhost", argv);
        b.sc[0].value = 3; /* cpus: 2 offered */
        tt_init(&c, "wrong-agent", "elsewhere", argv);
        tt_init(&d, "bad-port", "local-testhost", argv);
        uint64_t p[] = { 40000, 40000 };
        d.resp[2] = ports_res(0, 0, 0, 1, p);
        d.ti.n_resources = 3;
        tt_init(&e, "bad-id/x", "local-testhost", argv);
        tasks[0] = &a.ti;
        tasks[1] = &b.ti;
        tasks[2] = &c.ti;
        tasks[3] = &d.ti;
        tasks[4] = &e.ti;
        s.in_call = true;
        assert_int_equal(s.m->ops->accept(s.m, offer_id, tasks, 5, 1000), 0);
        s.in_call = false;
        assert_true(run_until(&s, p_n_updates, &five, 5));
        st = expect_update(&s, "cmd-only", TASK_STATE(TASK_ERROR), "custom executor");
        assert_false(st->has_uuid); /* the master's own updates are never acknowledged */
        assert_int_equal(st->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_MASTER);
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID);
        assert_string_equal(st->agent_id->value, "local-testhost");
        expect_update(&s, "too-big", TASK_STATE(TASK_ERROR), "cpus: 3.010 wanted, 2.000 available");
        expect_update(&s, "wrong-agent", TASK_STATE(TASK_ERROR), "agent 'elsewhere'");
        expect_update(&s, "bad-port", TASK_STATE(TASK_ERROR), "port 40000 is not offered");
        expect_update(&s, "bad-id/x", TASK_STATE(TASK_ERROR), "contains '/'");

        /* the offer is used up: accepting it again drops the tasks */
        clear_events(&s);
        tasks[0] = &b.ti;
        assert_int_equal(s.m->ops->accept(s.m, offer_id, tasks, 1, 5), 0);
        st = expect_update(&s, "too-big", TASK_STATE(TASK_DROPPED), "no longer valid");
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_INVALID_OFFERS);
        assert_false(st->has_uuid);
        /* the unused resources were declined for 1000 s: no new offer until REVIVE */
        assert_false(run_until(&s, p_offers, &one, 0.3));
        assert_int_equal(s.m->ops->revive(s.m), 0);
        assert_true(run_until(&s, p_offers, &one, 5));
        assert_true(fabs(offer_resource(last_offer(&s), "cpus")->scalar->value - 2.0) < 1e-9);

        /* reconciliation: unknown tasks, this agent's or nobody's */
        char *ids[] = { "nope", "nope2" }, *agents[] = { "local-testhost", NULL };
        clear_events(&s);
        assert_int_equal(s.m->ops->reconcile(s.m, ids, agents, 2), 0);
        st = expect_update(&s, "nope", TASK_STATE(TASK_GONE), "unknown to the agent");
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION);
        assert_false(st->has_uuid);
        expect_update(&s, "nope2", TASK_STATE(TASK_UNKNOWN), "unknown");
        /* implicit with no tasks: nothing */
        clear_events(&s);
        assert_int_equal(s.m->ops->reconcile(s.m, NULL, NULL, 0), 0);
        assert_false(run_until(&s, p_n_updates, &one, 0.2));
        /* killing an unknown task answers by reconciliation */
        assert_int_equal(s.m->ops->kill(s.m, "ghost", "local-testhost", -1), 0);
        expect_update(&s, "ghost", TASK_STATE(TASK_GONE), NULL);
        /* acknowledging nothing */
        uint8_t uuid[16] = { 0 };
        assert_int_equal(s.m->ops->acknowledge(s.m, "local-testhost", "ghost", uuid, 16), -ENOENT);
        assert_int_equal(s.m->ops->acknowledge(s.m, "other", "ghost", uuid, 16), -EINVAL);
        (void)two;
        sched_done(&s);
}

/* ---- the executor API over HTTP ---- */

typedef struct HttpResult {
        bool done;
        long status;
        char body[512];
} HttpResult;

static void on_http_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        HttpResult *r = userdata;
        r->done = true;
        r->status = result == 0 ? resp->status : -1;
        snprintf(r->body, sizeof(r->body), "%s", buf_str(&resp->body));
}

static bool p_http(Sched *s, const void *arg)
{
        return ((const HttpResult *)arg)->done;
}

static long post(Sched *s, HttpClient *http, const char *method, const char *content_type, const void *body,
                 size_t len, char *ret_body, size_t size)
{
        char url[128], ct[128];
        const char *headers[3] = { NULL };
        HttpResult r = { 0 };

        snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/executor", master_local_port(s->m));
        if (content_type) {
                snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
                headers[0] = ct;
        } else
                headers[0] = "Content-Type:"; /* none at all */
        HttpRequestOptions o = {
                .method = method,
                .url = url,
                .headers = headers,
                .body = body,
                .body_len = len,
                .timeout_ns = 5 * NSEC_PER_SEC,
                .on_done = on_http_done,
                .userdata = &r,
        };
        assert_int_equal(http_request_start(http, &o, NULL), 0);
        assert_true(run_until(s, p_http, &r, 10));
        if (ret_body)
                snprintf(ret_body, size, "%s", r.body);
        return r.status;
}

static size_t pack_call(Mesos__V1__Executor__Call *c, uint8_t *buf, size_t size)
{
        assert_true(mesos__v1__executor__call__get_packed_size(c) <= size);
        return mesos__v1__executor__call__pack(c, buf);
}

/* An UPDATE call of executor eid, framework fid. */
static size_t update_call(const char *fid, const char *eid, size_t uuid_len, int source, uint8_t *buf,
                          size_t size)
{
        Mesos__V1__Executor__Call c = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call__Update u = MESOS__V1__EXECUTOR__CALL__UPDATE__INIT;
        Mesos__V1__FrameworkID f = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID e = MESOS__V1__EXECUTOR_ID__INIT;
        Mesos__V1__TaskID t = MESOS__V1__TASK_ID__INIT;
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        uint8_t uuid[64] = { 1, 2, 3 };

        f.value = (char *)fid;
        e.value = (char *)eid;
        t.value = "T";
        st.task_id = &t;
        st.state = TASK_STATE(TASK_RUNNING);
        st.has_uuid = true;
        st.uuid.data = uuid;
        st.uuid.len = uuid_len;
        if (source >= 0) {
                st.has_source = true;
                st.source = source;
        }
        u.status = &st;
        c.framework_id = &f;
        c.executor_id = &e;
        c.has_type = true;
        c.type = MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE;
        c.update = &u;
        return pack_call(&c, buf, size);
}

static void test_executor_api_http(void **state)
{
        HttpClient *http;
        uint8_t buf[1024];
        char body[512];
        size_t len;
        Sched s;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        http = http_client_new(s.loop);
        assert_non_null(http);

        len = update_call(s.framework_id, "E", 16, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR, buf,
                          sizeof(buf));
        assert_int_equal(post(&s, http, "POST", NULL, buf, len, body, sizeof(body)), 400);
        assert_non_null(strstr(body, "Content-Type"));
        assert_int_equal(post(&s, http, "POST", "application/json", "{}", 2, body, sizeof(body)), 415);
        assert_non_null(strstr(body, "application/x-protobuf"));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf; charset=utf-8", buf, len, body,
                              sizeof(body)),
                         415);
        assert_int_equal(
                post(&s, http, "POST", "application/x-protobuf", "\xff\xff\xff", 3, body, sizeof(body)),
                400);
        assert_non_null(strstr(body, "Failed to parse body"));
        /* the agent's validation */
        len = update_call(s.framework_id, "E", 37, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR, buf,
                          sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, body, sizeof(body)),
                         400);
        assert_non_null(strstr(body, "expected 16 bytes, got 37"));
        len = update_call(s.framework_id, "E", 16, -1, buf, sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, body, sizeof(body)),
                         400);
        assert_non_null(strstr(body, "SOURCE_EXECUTOR"));
        len = update_call("F-other", "E", 16, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR, buf,
                          sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, body, sizeof(body)),
                         400);
        assert_non_null(strstr(body, "Framework cannot be found"));
        len = update_call(s.framework_id, "E", 16, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR, buf,
                          sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, body, sizeof(body)),
                         400);
        assert_non_null(strstr(body, "Executor cannot be found"));
        assert_int_equal(post(&s, http, "GET", NULL, NULL, 0, body, sizeof(body)), 405);

        http_client_free(http);
        sched_done(&s);
}

/* A hand-driven executor: the SUBSCRIBE stream, re-subscribing, resent updates. */
typedef struct ExecStream {
        RecordioDecoder dec;
        Mesos__V1__Executor__Event *events[32];
        size_t n;
        bool done;
        int result;
        long status;
        char ctype[64];
        HttpRequest *req;
} ExecStream;

static int on_exec_record(const uint8_t *data, size_t len, void *userdata)
{
        ExecStream *es = userdata;
        Mesos__V1__Executor__Event *ev = mesos__v1__executor__event__unpack(NULL, len, data);

        assert_non_null(ev);
        assert_true(es->n < ELEMENTSOF(es->events));
        es->events[es->n++] = ev;
        return 0;
}

static int on_exec_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        ExecStream *es = userdata;
        return recordio_feed(&es->dec, data, len, on_exec_record, es);
}

static void on_exec_headers(HttpRequest *req, const HttpResponse *resp, void *userdata)
{
        ExecStream *es = userdata;
        es->status = resp->status;
        http_response_header(resp, "Content-Type", es->ctype, sizeof(es->ctype));
}

static void on_exec_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        ExecStream *es = userdata;
        es->done = true;
        es->result = result;
        es->status = resp->status;
        es->req = NULL;
}

static void exec_stream_done(ExecStream *es)
{
        for (size_t i = 0; i < es->n; i++)
                mesos__v1__executor__event__free_unpacked(es->events[i], NULL);
        recordio_decoder_done(&es->dec);
}

static void subscribe(Sched *s, HttpClient *http, ExecStream *es, const char *accept, const char *eid,
                      TaskStatus *resend, TaskInfo *unacked_task)
{
        Mesos__V1__Executor__Call c = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call__Subscribe sub = MESOS__V1__EXECUTOR__CALL__SUBSCRIBE__INIT;
        Mesos__V1__Executor__Call__Update up = MESOS__V1__EXECUTOR__CALL__UPDATE__INIT, *upp = &up;
        Mesos__V1__FrameworkID f = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID e = MESOS__V1__EXECUTOR_ID__INIT;
        uint8_t buf[4096];
        char url[128], acc[128];
        const char *headers[] = { "Content-Type: application/x-protobuf", acc, NULL };
        size_t len;

        memset(es, 0, sizeof(*es));
        recordio_decoder_init(&es->dec, 1u << 20);
        f.value = s->framework_id;
        e.value = (char *)eid;
        c.framework_id = &f;
        c.executor_id = &e;
        c.has_type = true;
        c.type = MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE;
        c.subscribe = &sub;
        if (resend) {
                up.status = resend;
                sub.unacknowledged_updates = &upp;
                sub.n_unacknowledged_updates = 1;
        }
        if (unacked_task) {
                sub.unacknowledged_tasks = &unacked_task;
                sub.n_unacknowledged_tasks = 1;
        }
        len = pack_call(&c, buf, sizeof(buf));
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/executor", master_local_port(s->m));
        snprintf(acc, sizeof(acc), "Accept: %s", accept);
        HttpRequestOptions o = {
                .method = "POST",
                .url = url,
                .headers = headers,
                .body = buf,
                .body_len = len,
                .fresh_connection = true,
                .on_headers = on_exec_headers,
                .on_data = on_exec_data,
                .on_done = on_exec_done,
                .userdata = es,
        };
        assert_int_equal(http_request_start(http, &o, &es->req), 0);
}

typedef struct StreamWant {
        ExecStream *es;
        size_t n;
} StreamWant;

static bool p_stream(Sched *s, const void *arg)
{
        const StreamWant *w = arg;
        return w->es->n >= w->n || w->es->done;
}

static bool p_stream_done(Sched *s, const void *arg)
{
        return ((const ExecStream *)arg)->done;
}

static void test_executor_api_subscribe(void **state)
{
        static const char *const argv[] = { "/bin/sleep", "30", NULL };
        uint8_t u1[16] = { 0x11, 1 }, u2[16] = { 0x22, 2 };
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        ExecStream a, b, j;
        HttpClient *http;
        size_t one = 1;
        TestTask t;
        Sched s;
        const Mesos__V1__Executor__Event *ev;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        tt_init(&t, "manual", "?", argv);
        t.grace.nanoseconds = 300 * NSEC_PER_MSEC;
        t.ei.shutdown_grace_period = &t.grace;
        s.launch = &t.ti;
        s.auto_ack = true;
        assert_true(run_until(&s, p_offers, &one, 5));
        http = http_client_new(s.loop);

        /* an Accept without protobuf: 406 */
        subscribe(&s, http, &j, "application/json", "pacer.manual", NULL, NULL);
        assert_true(run_until(&s, p_stream_done, &j, 5));
        assert_int_equal(j.status, 406);
        exec_stream_done(&j);

        /* SUBSCRIBE carrying an update the "agent" has not seen */
        tid.value = "manual";
        st.task_id = &tid;
        st.state = TASK_STATE(TASK_RUNNING);
        st.has_source = true;
        st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
        st.has_uuid = true;
        st.uuid.data = u1;
        st.uuid.len = 16;
        subscribe(&s, http, &a, "application/x-protobuf", "pacer.manual", &st, NULL);
        assert_true(run_until(&s, p_stream, &(StreamWant){ &a, 3 }, 5));
        assert_int_equal(a.status, 200);
        assert_string_equal(a.ctype, "application/x-protobuf");
        ev = a.events[0];
        assert_int_equal(ev->type, MESOS__V1__EXECUTOR__EVENT__TYPE__SUBSCRIBED);
        assert_string_equal(ev->subscribed->executor_info->executor_id->value, "pacer.manual");
        assert_string_equal(ev->subscribed->executor_info->framework_id->value, s.framework_id);
        assert_string_equal(ev->subscribed->framework_info->id->value, s.framework_id);
        bool killing = false;
        for (size_t i = 0; i < ev->subscribed->framework_info->n_capabilities; i++)
                killing |= ev->subscribed->framework_info->capabilities[i]->type ==
                           MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE;
        assert_true(killing);
        assert_string_equal(ev->subscribed->agent_info->hostname, "testhost");
        assert_string_equal(ev->subscribed->agent_info->id->value, "local-testhost");
        assert_true(ev->subscribed->container_id && strlen(ev->subscribed->container_id->value) > 0);
        assert_int_equal(a.events[1]->type, MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH);
        assert_string_equal(a.events[1]->launch->task->task_id->value, "manual");
        assert_int_equal(a.events[2]->type, MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED);
        assert_memory_equal(a.events[2]->acknowledged->uuid.data, u1, 16);
        /* forwarded to the scheduler with the agent's id and the same uuid */
        const TaskStatus *fw = expect_update(&s, "manual", TASK_STATE(TASK_RUNNING), NULL);
        assert_memory_equal(fw->uuid.data, u1, 16);
        assert_string_equal(fw->agent_id->value, "local-testhost");

        /* subscribing again closes the first stream; the resent update is acknowledged, not forwarded
         * twice; the delivered task is not launched again */
        size_t updates = count_type(&s, MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE);
        subscribe(&s, http, &b, "application/x-protobuf", "pacer.manual", &st, a.events[1]->launch->task);
        assert_true(run_until(&s, p_stream, &(StreamWant){ &b, 2 }, 5));
        assert_true(run_until(&s, p_stream_done, &a, 5));
        assert_int_equal(a.result, 0);
        assert_int_equal(b.events[0]->type, MESOS__V1__EXECUTOR__EVENT__TYPE__SUBSCRIBED);
        assert_int_equal(b.events[1]->type, MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED);
        assert_memory_equal(b.events[1]->acknowledged->uuid.data, u1, 16);

        /* an UPDATE call: 202, acknowledged on the stream, forwarded */
        Mesos__V1__Executor__Call c = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call__Update up = MESOS__V1__EXECUTOR__CALL__UPDATE__INIT;
        Mesos__V1__FrameworkID f = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID e = MESOS__V1__EXECUTOR_ID__INIT;
        uint8_t buf[1024];
        f.value = s.framework_id;
        e.value = "pacer.manual";
        st.state = TASK_STATE(TASK_FINISHED);
        st.uuid.data = u2;
        up.status = &st;
        c.framework_id = &f;
        c.executor_id = &e;
        c.has_type = true;
        c.type = MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE;
        c.update = &up;
        size_t len = pack_call(&c, buf, sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, NULL, 0), 202);
        assert_true(run_until(&s, p_stream, &(StreamWant){ &b, 3 }, 5));
        assert_int_equal(b.events[2]->type, MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED);
        assert_memory_equal(b.events[2]->acknowledged->uuid.data, u2, 16);
        expect_update(&s, "manual", TASK_STATE(TASK_FINISHED), NULL);
        assert_int_equal(count_type(&s, MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE), updates + 1);
        /* STAGING from an executor is refused */
        st.state = TASK_STATE(TASK_STAGING);
        len = pack_call(&c, buf, sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, NULL, 0), 400);

        /* stopping: SHUTDOWN on the stream; `sleep` does not listen and is killed after the grace period */
        assert_int_equal(master_local_shutdown(s.m, 5 * NSEC_PER_SEC), 0);
        assert_true(run_until(&s, p_stream_done, &b, 5));
        assert_int_equal(b.events[b.n - 1]->type, MESOS__V1__EXECUTOR__EVENT__TYPE__SHUTDOWN);
        http_client_free(http);
        exec_stream_done(&a);
        exec_stream_done(&b);
        sched_done(&s);
}

/* ---- processes ---- */

typedef struct StateExecutor {
        pid_t pid;
        char sandbox[512];
} StateExecutor;

/* The executors listed in <dir>/local/executors.json. */
static size_t read_state(Sched *s, StateExecutor *ret, size_t max)
{
        char path[256];
        json_error_t jerr;
        json_t *root, *arr, *x;
        size_t i, n = 0;

        snprintf(path, sizeof(path), "%s/local/executors.json", s->dir);
        root = json_load_file(path, 0, &jerr);
        assert_non_null(root);
        arr = json_object_get(root, "executors");
        assert_true(json_is_array(arr));
        json_array_foreach(arr, i, x)
        {
                if (n == max)
                        break;
                ret[n].pid = (pid_t)json_integer_value(json_object_get(x, "pid"));
                snprintf(ret[n].sandbox, sizeof(ret[n].sandbox), "%s",
                         json_string_value(json_object_get(x, "sandbox")));
                n++;
        }
        json_decref(root);
        return n;
}

/* Processes in session sid (an executor's own session holds its tasks). */
static size_t session_members(pid_t sid, pid_t *ret, size_t max)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                ProcStat st;
                char *end;
                long pid = strtol(de->d_name, &end, 10);

                if (*end || pid <= 0)
                        continue;
                if (proc_stat_read((pid_t)pid, &st) == 0 && st.session == sid && st.state != 'Z' && n < max)
                        ret[n++] = (pid_t)pid;
        }
        closedir(d);
        return n;
}

static bool alive(pid_t pid)
{
        char path[64], buf[1024];
        int fd;
        ssize_t len;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
                return false;
        buf[len] = 0;
        /* a zombie is gone for our purposes */
        const char *p = strrchr(buf, ')');
        return p && p[1] == ' ' && p[2] != 'Z';
}

/* Waits, by pidfd, for a process that is not our child to end. */
static bool wait_pid_gone(pid_t pid, int timeout_ms)
{
        int fd = (int)pidfd_open(pid, 0);
        struct pollfd p;
        bool gone;

        if (fd < 0)
                return true;
        p = (struct pollfd){ .fd = fd, .events = POLLIN };
        gone = poll(&p, 1, timeout_ms) == 1 || !alive(pid);
        close(fd);
        return gone;
}

static const char *const sleep_argv[] = { PACER_EXECUTOR, "--", "sleep", "30", NULL };

static void start_sleep_task(Sched *s, TestTask *t, const char *task_id)
{
        size_t one = 1;

        tt_init(t, task_id, "?", sleep_argv);
        tt_env(t, "PACER_LOG_LEVEL", "debug");
        s->launch = &t->ti;
        s->auto_ack = true;
        assert_true(run_until(s, p_offers, &one, 5));
        assert_true(s->launched);
}

static pid_t sleep_pid(pid_t executor)
{
        pid_t members[16];
        size_t n = session_members(executor, members, 16);

        for (size_t i = 0; i < n; i++) {
                char path[64], comm[64] = "";
                int fd;
                snprintf(path, sizeof(path), "/proc/%d/comm", (int)members[i]);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                ssize_t len = read(fd, comm, sizeof(comm) - 1);
                close(fd);
                if (len > 0 && strncmp(comm, "sleep", 5) == 0)
                        return members[i];
        }
        return 0;
}

static void assert_running(Sched *s, const char *task, pid_t *ret_executor, pid_t *ret_sleep)
{
        const TaskStatus *st;
        StateExecutor se[4];

        st = expect_update(s, task, TASK_STATE(TASK_STARTING), NULL);
        assert_true(st->has_uuid);
        assert_int_equal(st->uuid.len, 16);
        assert_int_equal(st->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR);
        assert_string_equal(st->agent_id->value, "local-testhost");
        st = expect_update(s, task, TASK_STATE(TASK_RUNNING), NULL);
        assert_true(st->has_uuid);
        assert_string_equal(st->agent_id->value, "local-testhost");
        assert_int_equal(read_state(s, se, 4), 1);
        *ret_executor = se[0].pid;
        assert_true(alive(*ret_executor));
        *ret_sleep = sleep_pid(*ret_executor);
        assert_true(*ret_sleep > 0);
        /* the sandbox: the executor's own log, and the task's output files */
        char path[600];
        struct stat stt;
        assert_non_null(strstr(se[0].sandbox, "/local/sandboxes/"));
        snprintf(path, sizeof(path), "%s/executor.log", se[0].sandbox);
        assert_int_equal(stat(path, &stt), 0);
        assert_true(stt.st_size > 0);
}

static void assert_nothing_left(pid_t executor, pid_t sleeper)
{
        pid_t members[16];
        size_t n;

        assert_false(alive(executor));
        /* killed processes whose parent was the executor are reaped by init: wait for that */
        assert_true(wait_pid_gone(sleeper, 5000));
        n = session_members(executor, members, 16);
        for (size_t i = 0; i < n; i++)
                assert_true(wait_pid_gone(members[i], 5000));
        assert_int_equal(session_members(executor, members, 16), 0);
}

static void test_executor_kill(void **state)
{
        TestTask t;
        Sched s;
        pid_t exec_pid, sleeper;
        const TaskStatus *st;
        const Mesos__V1__Scheduler__Event *f;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        start_sleep_task(&s, &t, "sleeper-1");
        assert_running(&s, "sleeper-1", &exec_pid, &sleeper);

        /* implicit reconciliation knows the task */
        size_t before = s.n_events;
        assert_int_equal(s.m->ops->reconcile(s.m, NULL, NULL, 0), 0);
        assert_true(run_until(&s, p_n_updates,
                              &(size_t){ count_type(&s, MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE) + 1 },
                              5));
        st = s.events[s.n_events - 1]->update->status;
        assert_true(s.n_events > before);
        assert_string_equal(st->task_id->value, "sleeper-1");
        assert_int_equal(st->state, TASK_STATE(TASK_RUNNING));
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION);
        assert_false(st->has_uuid);

        assert_int_equal(s.m->ops->kill(s.m, "sleeper-1", "local-testhost", 2 * NSEC_PER_SEC), 0);
        expect_update(&s, "sleeper-1", TASK_STATE(TASK_KILLING), NULL);
        st = expect_update(&s, "sleeper-1", TASK_STATE(TASK_KILLED), NULL);
        assert_true(st->has_uuid);
        /* acknowledged to the executor at once, it exits: FAILURE, as Mesos reports every executor's end */
        assert_true(run_until(&s, p_failure, NULL, 10));
        f = find_event(&s, MESOS__V1__SCHEDULER__EVENT__TYPE__FAILURE);
        assert_string_equal(f->failure->executor_id->value, "pacer.sleeper-1");
        assert_true(f->failure->has_status);
        assert_true(WIFEXITED(f->failure->status));
        assert_int_equal(WEXITSTATUS(f->failure->status), 0);
        /* no TASK_FAILED: the task had ended */
        assert_null(find_update(&s, "sleeper-1", TASK_STATE(TASK_FAILED)));
        assert_nothing_left(exec_pid, sleeper);
        assert_int_equal(master_local_shutdown(s.m, NSEC_PER_SEC), 0);
        StateExecutor se[2];
        assert_int_equal(read_state(&s, se, 2), 0);
        /* the task was acknowledged to the end: the master forgot it */
        clear_events(&s);
        char *ids[] = { "sleeper-1" }, *agents[] = { "local-testhost" };
        s.m->ops->reconcile(s.m, ids, agents, 1);
        expect_update(&s, "sleeper-1", TASK_STATE(TASK_GONE), NULL);
        sched_done(&s);
}

static void test_executor_shutdown(void **state)
{
        TestTask t;
        Sched s;
        pid_t exec_pid, sleeper;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        start_sleep_task(&s, &t, "sleeper-2");
        assert_running(&s, "sleeper-2", &exec_pid, &sleeper);
        /* SHUTDOWN: the executor kills its task, reports it and exits, all within the timeout */
        assert_int_equal(master_local_shutdown(s.m, 10 * NSEC_PER_SEC), 0);
        expect_update(&s, "sleeper-2", TASK_STATE(TASK_KILLED), NULL);
        assert_nothing_left(exec_pid, sleeper);
        /* no offers while shutting down */
        size_t n = count_type(&s, MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS) + 1;
        assert_false(run_until(&s, p_offers, &n, 0.3));
        sched_done(&s);
}

/* An offer of all the host's cpus (the test master's 2) among the events from index *arg on. */
static bool p_all_cpus_offered(Sched *s, const void *arg)
{
        for (size_t i = *(const size_t *)arg; i < s->n_events; i++) {
                const Mesos__V1__Scheduler__Event *ev = s->events[i];
                if (ev->type != MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS)
                        continue;
                for (size_t k = 0; k < ev->offers->n_offers; k++) {
                        const Resource *cpus = offer_resource(ev->offers->offers[k], "cpus");
                        if (cpus && fabs(cpus->scalar->value - 2.0) < 1e-9)
                                return true;
                }
        }
        return false;
}

static void test_executor_crash(void **state)
{
        TestTask t;
        Sched s;
        pid_t exec_pid, sleeper;
        const TaskStatus *st;
        const Mesos__V1__Scheduler__Event *f;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        start_sleep_task(&s, &t, "sleeper-3");
        assert_running(&s, "sleeper-3", &exec_pid, &sleeper);
        size_t since_kill = s.n_events;
        assert_int_equal(kill(exec_pid, SIGKILL), 0);
        st = expect_update(&s, "sleeper-3", TASK_STATE(TASK_FAILED), "Executor terminated");
        assert_int_equal(st->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_AGENT);
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_EXECUTOR_TERMINATED);
        assert_true(st->has_uuid); /* the agent's updates are acknowledged like the executor's */
        assert_true(run_until(&s, p_failure, NULL, 10));
        f = find_event(&s, MESOS__V1__SCHEDULER__EVENT__TYPE__FAILURE);
        assert_true(WIFSIGNALED(f->failure->status));
        assert_int_equal(WTERMSIG(f->failure->status), SIGKILL);
        /* the task went with its executor */
        assert_true(wait_pid_gone(sleeper, 5000));
        assert_nothing_left(exec_pid, sleeper);
        /* its resources are free again: an offer since the kill has all the cpus (it may have come
         * with the failure already; the test's scheduler declines it for 5 s) */
        assert_true(run_until(&s, p_all_cpus_offered, &since_kill, 5));
        assert_int_equal(master_local_shutdown(s.m, NSEC_PER_SEC), 0);
        sched_done(&s);
}

/* An "executor" that never subscribes: the agent's answers without one. */
static void test_executor_never_subscribes(void **state)
{
        static const char *const argv[] = { "/bin/sleep", "30", NULL };
        HttpClient *http;
        TestTask t;
        Sched s;
        uint8_t buf[1024];
        char body[512];
        size_t len, one = 1;
        StateExecutor se[2];
        const TaskStatus *st;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        tt_init(&t, "lazy", "?", argv);
        t.grace.nanoseconds = 300 * NSEC_PER_MSEC;
        t.ei.shutdown_grace_period = &t.grace;
        s.launch = &t.ti;
        s.auto_ack = true;
        assert_true(run_until(&s, p_offers, &one, 5));
        assert_int_equal(read_state(&s, se, 2), 1);
        assert_true(alive(se[0].pid));

        /* calls other than SUBSCRIBE before it subscribed: 403 */
        http = http_client_new(s.loop);
        len = update_call(s.framework_id, "pacer.lazy", 16, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR,
                          buf, sizeof(buf));
        assert_int_equal(post(&s, http, "POST", "application/x-protobuf", buf, len, body, sizeof(body)),
                         403);
        assert_non_null(strstr(body, "Executor is not subscribed"));
        http_client_free(http);

        /* killed before delivery: the agent answers TASK_KILLED and shuts the executor down */
        assert_int_equal(s.m->ops->kill(s.m, "lazy", NULL, -1), 0);
        st = expect_update(&s, "lazy", TASK_STATE(TASK_KILLED), "before delivery");
        assert_int_equal(st->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_AGENT);
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_TASK_KILLED_DURING_LAUNCH);
        assert_true(st->has_uuid);
        /* it never subscribes to be told: killed when its grace period is over */
        assert_true(run_until(&s, p_failure, NULL, 5));
        assert_false(alive(se[0].pid));
        assert_int_equal(master_local_shutdown(s.m, NSEC_PER_SEC), 0);
        sched_done(&s);
}

static void test_launch_failure(void **state)
{
        static const char *const argv[] = { "/nonexistent/pacer-executor", NULL };
        TestTask t;
        Sched s;
        const TaskStatus *st;

        sched_init(&s, false);
        sched_new(&s, false);
        sched_start(&s);
        tt_init(&t, "broken", "?", argv);
        s.launch = &t.ti;
        s.auto_ack = true;
        st = expect_update(&s, "broken", TASK_STATE(TASK_FAILED), "No such file or directory");
        assert_int_equal(st->source, MESOS__V1__TASK_STATUS__SOURCE__SOURCE_AGENT);
        assert_int_equal(st->reason, MESOS__V1__TASK_STATUS__REASON__REASON_CONTAINER_LAUNCH_FAILED);
        assert_true(st->has_uuid);
        /* acknowledged, so forgotten */
        clear_events(&s);
        char *ids[] = { "broken" }, *agents[] = { "local-testhost" };
        s.m->ops->reconcile(s.m, ids, agents, 1);
        expect_update(&s, "broken", TASK_STATE(TASK_GONE), NULL);
        sched_done(&s);
}

/* The scheduler dies (SIGKILL) with an executor running; the next start kills it. */
static void test_restart_kills_leftovers(void **state)
{
        Sched s;
        int pfd[2];
        pid_t child, pids[2] = { 0, 0 };
        int exec_fd, sleep_fd;

        sched_init(&s, true);
        assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                /* the first scheduler: launch, report the pids, wait to be killed */
                TestTask t;
                pid_t exec_pid = 0, sleeper = 0;
                UpdateWant w = { "survivor", TASK_STATE(TASK_RUNNING) };
                StateExecutor se[2];

                ev_loop_fork(EV_DEFAULT);
                sched_new(&s, true);
                s.in_call = true;
                s.m->ops->start(s.m, NULL);
                s.in_call = false;
                run_until(&s, p_subscribed, NULL, 5);
                tt_init(&t, "survivor", "?", sleep_argv);
                s.launch = &t.ti;
                s.auto_ack = true;
                if (run_until(&s, p_update, &w, 15) && read_state(&s, se, 2) == 1) {
                        exec_pid = se[0].pid;
                        sleeper = sleep_pid(exec_pid);
                }
                pid_t out[2] = { exec_pid, sleeper };
                (void)!write(pfd[1], out, sizeof(out));
                for (;;)
                        pause();
        }
        close(pfd[1]);
        assert_int_equal(read(pfd[0], pids, sizeof(pids)), (ssize_t)sizeof(pids));
        close(pfd[0]);
        assert_true(pids[0] > 0 && pids[1] > 0);
        assert_int_equal(kill(child, SIGKILL), 0);
        assert_int_equal(waitpid(child, NULL, 0), child);
        /* checkpointing: the executor waits for its agent to come back, and its task runs on */
        exec_fd = (int)pidfd_open(pids[0], 0);
        sleep_fd = (int)pidfd_open(pids[1], 0);
        assert_true(exec_fd >= 0 && sleep_fd >= 0);
        assert_true(alive(pids[0]));
        assert_true(alive(pids[1]));

        /* the second scheduler finds it and kills it, task and all */
        sched_new(&s, true);
        assert_true(wait_pid_gone(pids[0], 5000));
        assert_true(wait_pid_gone(pids[1], 5000));
        close(exec_fd);
        close(sleep_fd);
        StateExecutor se[2];
        assert_int_equal(read_state(&s, se, 2), 0);
        sched_start(&s);
        char *ids[] = { "survivor" }, *agents[] = { NULL };
        assert_int_equal(s.m->ops->reconcile(s.m, ids, agents, 1), 0);
        const TaskStatus *st = expect_update(&s, "survivor", TASK_STATE(TASK_GONE), "left over");
        assert_false(st->has_uuid);
        sched_done(&s);
}

/* executor.log is kept bounded: past the cap its content moves to executor.log.1 (replacing an
 * older one) and the writer, appending, goes on at the start of the file. */
static void test_log_rotate(void **state)
{
        char dir[] = "/tmp/test-local-log-XXXXXX", path[64], old[72], buf[64] = "";
        int fd, in;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/executor.log", dir);
        snprintf(old, sizeof(old), "%s.1", path);
        assert_int_equal(local_log_rotate(path, 10), 0); /* absent */
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "0123456789", 10), 10);
        assert_int_equal(local_log_rotate(path, 10), 0); /* at the cap: kept */
        assert_int_equal(write(fd, "abc", 3), 3);
        assert_int_equal(local_log_rotate(path, 10), 1);
        in = open(old, O_RDONLY | O_CLOEXEC);
        assert_true(in >= 0);
        assert_int_equal(read(in, buf, sizeof(buf) - 1), 13);
        assert_string_equal(buf, "0123456789abc");
        close(in);
        /* the writer goes on at the start */
        assert_int_equal(write(fd, "next", 4), 4);
        in = open(path, O_RDONLY | O_CLOEXEC);
        memset(buf, 0, sizeof(buf));
        assert_int_equal(read(in, buf, sizeof(buf) - 1), 4);
        assert_string_equal(buf, "next");
        close(in);
        /* rotated again: the older copy is replaced, not appended to */
        assert_int_equal(write(fd, "0123456789", 10), 10);
        assert_int_equal(local_log_rotate(path, 10), 1);
        in = open(old, O_RDONLY | O_CLOEXEC);
        memset(buf, 0, sizeof(buf));
        assert_int_equal(read(in, buf, sizeof(buf) - 1), 14);
        close(in);
        close(fd);
        unlink(old);
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_usage_parse),
                cmocka_unit_test(test_log_rotate),
                cmocka_unit_test(test_usage_parse_errors),
                cmocka_unit_test(test_pool),
                cmocka_unit_test(test_usage_subset_add),
                cmocka_unit_test(test_id_check),
                cmocka_unit_test(test_task_check),
                cmocka_unit_test(test_accepts),
                cmocka_unit_test(test_environment),
                cmocka_unit_test(test_proc_parsers),
                cmocka_unit_test_teardown(test_master_offers, teardown),
                cmocka_unit_test_teardown(test_master_accept_validation, teardown),
                cmocka_unit_test_teardown(test_executor_api_http, teardown),
                cmocka_unit_test_teardown(test_executor_api_subscribe, teardown),
                cmocka_unit_test_teardown(test_launch_failure, teardown),
                cmocka_unit_test_teardown(test_executor_never_subscribes, teardown),
                cmocka_unit_test_teardown(test_executor_kill, teardown),
                cmocka_unit_test_teardown(test_executor_shutdown, teardown),
                cmocka_unit_test_teardown(test_executor_crash, teardown),
                cmocka_unit_test_teardown(test_restart_kills_leftovers, teardown),
        };

        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
