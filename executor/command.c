/* SPDX-License-Identifier: Apache-2.0 */
#include "command.h"

#include <stdio.h>
#include <string.h>

#include "macro.h"

/* A command line longer than this is refused: the kernel's own limit per
 * argument is 128 KiB, and nothing legitimate comes close. */
#define COMMAND_LINE_MAX (64u * 1024)

#define MARATHON_PREFIX "chmod ug+rx '"

/* Variables of the executor that the task must not inherit: its credentials
 * and its own configuration. */
static bool env_private(const char *entry)
{
        static const char *const names[] = {
                "MESOS_EXECUTOR_AUTHENTICATION_TOKEN",
                "CONSUL_HTTP_TOKEN",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                size_t l = strlen(names[i]);
                if (strneq(entry, names[i], l) && entry[l] == '=')
                        return true;
        }
        return strneq(entry, "PACER_", STRLEN("PACER_"));
}

const char *command_strip_marathon_wrapper(const char *line)
{
        const char *path, *q, *rest;
        size_t plen;

        if (!line || !strneq(line, MARATHON_PREFIX, STRLEN(MARATHON_PREFIX)))
                return NULL;
        path = line + STRLEN(MARATHON_PREFIX);
        q = strchr(path, '\'');
        if (!q)
                return NULL;
        plen = (size_t)(q - path);
        rest = q + 1;
        if (!strneq(rest, " && exec '", STRLEN(" && exec '")))
                return NULL;
        rest += STRLEN(" && exec '");
        if (!strneq(rest, path, plen) || rest[plen] != '\'')
                return NULL;
        rest += plen + 1;
        /* Marathon puts one space before <cmd>, even when <cmd> is empty */
        if (*rest == ' ')
                rest++;
        else if (*rest)
                return NULL;
        return rest;
}

static bool blank(const char *s)
{
        for (; *s; s++)
                if (*s != ' ' && *s != '\t' && *s != '\n')
                        return false;
        return true;
}

static char **strv_new(size_t n)
{
        return calloc(n + 1, sizeof(char *));
}

static void strv_free(char **v)
{
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

static int build_argv(const TaskInfo *task, char *const *fallback_argv, int fallback_argc, char ***ret,
                      PacerError *err)
{
        const CommandInfo *c = task->command;
        const char *shell_line = NULL;
        char **argv = NULL;

        if (c) {
                if (c->shell) {
                        if (!c->value || blank(c->value))
                                return pacer_error_set(
                                        err, EINVAL, "TaskInfo.command has shell=true but no value to run");
                        shell_line = c->value;
                } else {
                        size_t n = c->n_arguments;
                        if (!c->value || !*c->value)
                                return pacer_error_set(err, EINVAL,
                                                       "TaskInfo.command has shell=false but no value (the "
                                                       "program to execute)");
                        if (strlen(c->value) > COMMAND_LINE_MAX)
                                return pacer_error_set(err, E2BIG,
                                                       "TaskInfo.command.value is longer than %u bytes",
                                                       COMMAND_LINE_MAX);
                        argv = strv_new(n ? n : 1);
                        if (!argv)
                                return -ENOMEM;
                        if (n == 0)
                                argv[0] = strdup(c->value);
                        for (size_t i = 0; i < n; i++) {
                                if (!c->arguments[i] || strlen(c->arguments[i]) > COMMAND_LINE_MAX) {
                                        strv_free(argv);
                                        return pacer_error_set(
                                                err, E2BIG,
                                                "TaskInfo.command.arguments[%zu] is missing or "
                                                "longer than %u bytes",
                                                i, COMMAND_LINE_MAX);
                                }
                                argv[i] = strdup(c->arguments[i]);
                        }
                        /* execve's program is the value; argv[0] is what the task sees */
                        if (n > 0) {
                                free(argv[0]);
                                argv[0] = strdup(c->value);
                        }
                        for (size_t i = 0; i < (n ? n : 1); i++)
                                if (!argv[i]) {
                                        strv_free(argv);
                                        return -ENOMEM;
                                }
                        *ret = argv;
                        return 0;
                }
        } else if (task->executor && task->executor->command && task->executor->command->value) {
                /* Marathon: the app's cmd is inside the executor's own command line */
                const char *rest = command_strip_marathon_wrapper(task->executor->command->value);
                if (rest && !blank(rest))
                        shell_line = rest;
        }

        if (!shell_line) {
                if (fallback_argc <= 0)
                        return pacer_error_set(
                                err, EINVAL,
                                "the task has no command: TaskInfo.command is unset and the "
                                "executor was started without one (Marathon apps need `cmd`)");
                argv = strv_new((size_t)fallback_argc);
                if (!argv)
                        return -ENOMEM;
                for (int i = 0; i < fallback_argc; i++)
                        if (!(argv[i] = strdup(fallback_argv[i]))) {
                                strv_free(argv);
                                return -ENOMEM;
                        }
                *ret = argv;
                return 0;
        }

        if (strlen(shell_line) > COMMAND_LINE_MAX)
                return pacer_error_set(err, E2BIG, "the task's command line is longer than %u bytes",
                                       COMMAND_LINE_MAX);
        argv = strv_new(3);
        if (!argv)
                return -ENOMEM;
        argv[0] = strdup("/bin/sh");
        argv[1] = strdup("-c");
        argv[2] = strdup(shell_line);
        if (!argv[0] || !argv[1] || !argv[2]) {
                strv_free(argv);
                return -ENOMEM;
        }
        *ret = argv;
        return 0;
}

/* Adds or replaces NAME=value in env (n entries used, capacity cap). */
static int env_set(char **env, size_t *n, size_t cap, const char *name, const char *value)
{
        size_t l = strlen(name);
        char *entry;

        if (asprintf(&entry, "%s=%s", name, value) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < *n; i++)
                if (strneq(env[i], name, l) && env[i][l] == '=') {
                        free(env[i]);
                        env[i] = entry;
                        return 0;
                }
        if (*n >= cap) {
                free(entry);
                return -E2BIG;
        }
        env[(*n)++] = entry;
        return 0;
}

static int build_env(const TaskInfo *task, char *const *environ_, char ***ret, PacerError *err)
{
        const Environment *te = task->command ? task->command->environment : NULL;
        size_t cap = COMMAND_ENV_MAX_VARS, n = 0, bytes = 0;
        char **env = strv_new(cap);
        int r;

        if (!env)
                return -ENOMEM;
        for (char *const *p = environ_; p && *p; p++) {
                if (env_private(*p))
                        continue;
                if (n >= cap) {
                        strv_free(env);
                        return pacer_error_set(err, E2BIG,
                                               "the executor's environment has more than %d variables",
                                               COMMAND_ENV_MAX_VARS);
                }
                if (!(env[n++] = strdup(*p))) {
                        strv_free(env);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; te && i < te->n_variables; i++) {
                const Mesos__V1__Environment__Variable *v = te->variables[i];
                if (!v->name || !*v->name || strchr(v->name, '=')) {
                        strv_free(env);
                        return pacer_error_set(
                                err, EINVAL,
                                "TaskInfo.command.environment.variables[%zu]: invalid name '%.64s' "
                                "(must be non-empty and contain no '=')",
                                i, strempty(v->name));
                }
                if (v->has_type && v->type == MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__SECRET) {
                        strv_free(env);
                        return pacer_error_set(
                                err, ENOTSUP,
                                "environment variable %.64s is a secret: pacer-executor does not "
                                "resolve secrets; pass the value or let the agent inject it",
                                v->name);
                }
                r = env_set(env, &n, cap, v->name, strempty(v->value));
                if (r < 0) {
                        strv_free(env);
                        return pacer_error_set(err, r, "the task's environment has more than %d variables",
                                               COMMAND_ENV_MAX_VARS);
                }
        }
        if (task->task_id && task->task_id->value &&
            env_set(env, &n, cap, "MESOS_TASK_ID", task->task_id->value) < 0) {
                strv_free(env);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                bytes += strlen(env[i]) + 1;
        if (bytes > COMMAND_ENV_MAX_BYTES) {
                strv_free(env);
                return pacer_error_set(err, E2BIG,
                                       "the task's environment is %zu bytes, more than the %u allowed",
                                       bytes, COMMAND_ENV_MAX_BYTES);
        }
        *ret = env;
        return 0;
}

int command_build(const TaskInfo *task, char *const *fallback_argv, int fallback_argc, char *const *environ_,
                  Command *ret, PacerError *err)
{
        Command c = { 0 };
        int r;

        r = build_argv(task, fallback_argv, fallback_argc, &c.argv, err);
        if (r < 0)
                return r;
        r = build_env(task, environ_, &c.envp, err);
        if (r < 0) {
                strv_free(c.argv);
                return r;
        }
        if (task->command && task->command->user && *task->command->user)
                c.user = task->command->user;
        *ret = c;
        return 0;
}

void command_done(Command *c)
{
        strv_free(c->argv);
        strv_free(c->envp);
        *c = (Command){ 0 };
}

static const char *env_get(char *const *env, const char *name)
{
        size_t l = strlen(name);
        for (; env && *env; env++)
                if (strneq(*env, name, l) && (*env)[l] == '=')
                        return *env + l + 1;
        return NULL;
}

static bool parse_port(const char *s, uint32_t *ret)
{
        char *end;
        unsigned long v;

        if (!s || !*s)
                return false;
        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v == 0 || v > 65535)
                return false;
        *ret = (uint32_t)v;
        return true;
}

size_t command_ports(const TaskInfo *task, char *const *environ_, uint32_t *ret, size_t max)
{
        size_t n = 0;

        if (task->discovery && task->discovery->ports && task->discovery->ports->n_ports > 0) {
                for (size_t i = 0; i < task->discovery->ports->n_ports && n < max; i++)
                        ret[n++] = task->discovery->ports->ports[i]->number;
                return n;
        }
        for (; n < max; n++) {
                char name[32];
                snprintf(name, sizeof(name), "PORT%zu", n);
                if (!parse_port(env_get(environ_, name), &ret[n]))
                        break;
        }
        if (n > 0)
                return n;
        for (size_t i = 0; i < task->n_resources; i++) {
                const Resource *r = task->resources[i];
                if (!r->name || !streq(r->name, "ports") || !r->ranges)
                        continue;
                for (size_t j = 0; j < r->ranges->n_range; j++)
                        for (uint64_t p = r->ranges->range[j]->begin;
                             p <= r->ranges->range[j]->end && p <= 65535 && n < max; p++)
                                ret[n++] = (uint32_t)p;
        }
        return n;
}
