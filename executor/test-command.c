/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for command: the three ways a task's command arrives (TaskInfo.command
 * in shell or argv form, Marathon's wrapped executor command line, the
 * executor's own arguments), and the task's environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "command.h"

static Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;

static void init_task(TaskInfo *t)
{
        mesos__v1__task_info__init(t);
        tid.value = "T1";
        t->task_id = &tid;
        t->name = "t";
}

static void test_marathon_wrapper(void **state)
{
        assert_string_equal(
                command_strip_marathon_wrapper("chmod ug+rx '/x/pacer-executor' && exec '/x/pacer-executor' "
                                               "python3 -m http.server $PORT0"),
                "python3 -m http.server $PORT0");
        /* empty cmd: Marathon still writes the space */
        assert_string_equal(command_strip_marathon_wrapper("chmod ug+rx '/e' && exec '/e' "), "");
        assert_string_equal(command_strip_marathon_wrapper("chmod ug+rx '/e' && exec '/e'"), "");
        /* the two paths must match */
        assert_null(command_strip_marathon_wrapper("chmod ug+rx '/a' && exec '/b' cmd"));
        assert_null(command_strip_marathon_wrapper("/usr/bin/pacer-executor"));
        assert_null(command_strip_marathon_wrapper("chmod ug+rx '/a"));
        assert_null(command_strip_marathon_wrapper("chmod ug+rx '/a' && exec '/a'x"));
        assert_null(command_strip_marathon_wrapper(NULL));
}

static void test_shell_form(void **state)
{
        TaskInfo t;
        CommandInfo c = MESOS__V1__COMMAND_INFO__INIT;
        Command cmd;
        char *env[] = { "PATH=/bin",
                        "MESOS_EXECUTOR_AUTHENTICATION_TOKEN=secret",
                        "CONSUL_HTTP_TOKEN=tok",
                        "PACER_LOG_LEVEL=debug",
                        "KEEP=1",
                        NULL };

        init_task(&t);
        c.value = "echo hi && sleep 1";
        t.command = &c;
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, NULL), 0);
        assert_string_equal(cmd.argv[0], "/bin/sh");
        assert_string_equal(cmd.argv[1], "-c");
        assert_string_equal(cmd.argv[2], "echo hi && sleep 1");
        assert_null(cmd.argv[3]);
        /* the executor's secrets and own configuration stay behind */
        bool keep = false, task_id = false;
        for (char **p = cmd.envp; *p; p++) {
                assert_null(strstr(*p, "secret"));
                assert_null(strstr(*p, "CONSUL_HTTP_TOKEN"));
                assert_null(strstr(*p, "PACER_"));
                keep |= streq(*p, "KEEP=1");
                task_id |= streq(*p, "MESOS_TASK_ID=T1");
        }
        assert_true(keep);
        assert_true(task_id);
        command_done(&cmd);
}

static void test_argv_form_and_env_overlay(void **state)
{
        TaskInfo t;
        CommandInfo c = MESOS__V1__COMMAND_INFO__INIT;
        Environment e = MESOS__V1__ENVIRONMENT__INIT;
        Mesos__V1__Environment__Variable v1 = MESOS__V1__ENVIRONMENT__VARIABLE__INIT,
                                         v2 = MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
        Mesos__V1__Environment__Variable *vars[] = { &v1, &v2 };
        char *args[] = { "srv", "--port", "80" };
        char *env[] = { "A=old", NULL };
        Command cmd;

        init_task(&t);
        c.has_shell = true;
        c.shell = false;
        c.value = "/usr/bin/srv";
        c.arguments = args;
        c.n_arguments = 3;
        v1.name = "A";
        v1.value = "new";
        v2.name = "B";
        v2.value = "line1\nline2";
        e.variables = vars;
        e.n_variables = 2;
        c.environment = &e;
        c.user = "nobody";
        t.command = &c;
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, NULL), 0);
        assert_string_equal(cmd.argv[0], "/usr/bin/srv");
        assert_string_equal(cmd.argv[1], "--port");
        assert_string_equal(cmd.argv[2], "80");
        assert_null(cmd.argv[3]);
        assert_string_equal(cmd.envp[0], "A=new");
        assert_string_equal(cmd.envp[1], "B=line1\nline2");
        assert_string_equal(cmd.user, "nobody");
        command_done(&cmd);
}

static void test_marathon_task(void **state)
{
        TaskInfo t;
        ExecutorInfo ei = MESOS__V1__EXECUTOR_INFO__INIT;
        CommandInfo ec = MESOS__V1__COMMAND_INFO__INIT;
        char *env[] = { "PORT0=31000", NULL };
        char *fallback[] = { "python3", "-m", "http.server", "31000" };
        Command cmd;

        init_task(&t);
        ec.value =
                "chmod ug+rx '/opt/pacer-executor' && exec '/opt/pacer-executor' python3 -m http.server $PORT0 "
                "| tee log";
        ei.command = &ec;
        t.executor = &ei;
        /* the unsplit line wins over the shell-split words: pipes and && survive */
        assert_int_equal(command_build(&t, fallback, 4, env, &cmd, NULL), 0);
        assert_string_equal(cmd.argv[0], "/bin/sh");
        assert_string_equal(cmd.argv[2], "python3 -m http.server $PORT0 | tee log");
        command_done(&cmd);

        /* no recognisable wrapper: the executor's own arguments */
        ec.value = "/opt/pacer-executor python3 -m http.server";
        assert_int_equal(command_build(&t, fallback, 4, env, &cmd, NULL), 0);
        assert_string_equal(cmd.argv[0], "python3");
        assert_string_equal(cmd.argv[3], "31000");
        assert_null(cmd.argv[4]);
        command_done(&cmd);
}

static void test_errors(void **state)
{
        TaskInfo t;
        CommandInfo c = MESOS__V1__COMMAND_INFO__INIT;
        Environment e = MESOS__V1__ENVIRONMENT__INIT;
        Mesos__V1__Environment__Variable v = MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
        Mesos__V1__Environment__Variable *vars[] = { &v };
        char *env[] = { NULL };
        PacerError err = { "" };
        Command cmd;

        init_task(&t);
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "no command"));

        t.command = &c;
        c.value = "   ";
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "shell=true"));

        c.value = "true";
        e.variables = vars;
        e.n_variables = 1;
        c.environment = &e;
        v.name = "A=B";
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "invalid name"));
        v.name = "S";
        v.has_type = true;
        v.type = MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__SECRET;
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, &err), -ENOTSUP);
        assert_non_null(strstr(err.msg, "secret"));

        /* a command line over the cap */
        v.has_type = false;
        e.n_variables = 0;
        char *big = malloc(70 * 1024);
        memset(big, 'x', 70 * 1024 - 1);
        big[70 * 1024 - 1] = 0;
        c.value = big;
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, &err), -E2BIG);
        free(big);
}

static void test_env_caps(void **state)
{
        TaskInfo t;
        CommandInfo c = MESOS__V1__COMMAND_INFO__INIT;
        Environment e = MESOS__V1__ENVIRONMENT__INIT;
        Mesos__V1__Environment__Variable v = MESOS__V1__ENVIRONMENT__VARIABLE__INIT;
        Mesos__V1__Environment__Variable *vars[] = { &v };
        char *env[] = { NULL };
        PacerError err = { "" };
        Command cmd;

        init_task(&t);
        c.value = "true";
        t.command = &c;
        e.variables = vars;
        e.n_variables = 1;
        c.environment = &e;
        v.name = "BIG";
        char *big = malloc(COMMAND_ENV_MAX_BYTES + 10);
        memset(big, 'x', COMMAND_ENV_MAX_BYTES + 9);
        big[COMMAND_ENV_MAX_BYTES + 9] = 0;
        v.value = big;
        assert_int_equal(command_build(&t, NULL, 0, env, &cmd, &err), -E2BIG);
        assert_non_null(strstr(err.msg, "bytes"));
        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_marathon_wrapper),
                cmocka_unit_test(test_shell_form),
                cmocka_unit_test(test_argv_form_and_env_overlay),
                cmocka_unit_test(test_marathon_task),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_env_caps),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
