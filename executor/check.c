/* SPDX-License-Identifier: Apache-2.0 */
#include "check.h"

#include <arpa/inet.h>
#include <ev.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "command.h"
#include "http_client.h"
#include "macro.h"
#include "task.h"

/* Error messages quote at most this much of a user's value. */
#define QUOTE_MAX 48
/* A body is never needed: a non-2xx one is collected up to this before the
 * status decides (the request is cancelled as soon as the headers are in). */
#define CHECK_HTTP_BODY_MAX 256

static const char *const check_type_names[_CHECK_TYPE_MAX] = {
        [CHECK_TYPE_HTTP] = "http",
        [CHECK_TYPE_HTTPS] = "https",
        [CHECK_TYPE_TCP] = "tcp",
        [CHECK_TYPE_COMMAND] = "command",
};

static const char *const check_role_names[_CHECK_ROLE_MAX] = {
        [CHECK_ROLE_BOTH] = "both",
        [CHECK_ROLE_LIVENESS] = "liveness",
        [CHECK_ROLE_READINESS] = "readiness",
};

const char *check_type_to_string(CheckType t)
{
        return t >= 0 && t < _CHECK_TYPE_MAX ? check_type_names[t] : NULL;
}

CheckType check_type_from_string(const char *s)
{
        for (int i = 0; s && i < _CHECK_TYPE_MAX; i++)
                if (streq(s, check_type_names[i]))
                        return (CheckType)i;
        return _CHECK_TYPE_INVALID;
}

const char *check_role_to_string(CheckRole r)
{
        return r >= 0 && r < _CHECK_ROLE_MAX ? check_role_names[r] : NULL;
}

CheckRole check_role_from_string(const char *s)
{
        for (int i = 0; s && i < _CHECK_ROLE_MAX; i++)
                if (streq(s, check_role_names[i]))
                        return (CheckRole)i;
        return _CHECK_ROLE_INVALID;
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static double ns_to_ev(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

/* Quotes a user's value for an error message: printable ASCII kept, the rest
 * as \xNN, cut with "..." past QUOTE_MAX. */
static const char *quote(const char *s, size_t len, char out[static QUOTE_MAX + 8])
{
        size_t n = 0, i = 0;

        for (; i < len && n < QUOTE_MAX; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
                        out[n++] = (char)c;
                else
                        n += (size_t)snprintf(out + n, 5, "\\x%02x", c);
        }
        if (i < len) {
                memcpy(out + n, "...", 3);
                n += 3;
        }
        out[n] = 0;
        return out;
}

static const char *quote_str(const char *s, char out[static QUOTE_MAX + 8])
{
        /* one past the quoted length is enough to know it was cut */
        return quote(s, strnlen(s, QUOTE_MAX + 1), out);
}

/* ---- specs ---- */

static void strv_free(char **v)
{
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

void check_spec_done(CheckSpec *s)
{
        if (!s)
                return;
        free(s->path);
        free(s->statuses);
        strv_free(s->argv);
        strv_free(s->envp);
        free(s->cwd);
        *s = (CheckSpec){ 0 };
}

CheckSpec *check_specs_free(CheckSpec *specs, size_t n)
{
        for (size_t i = 0; specs && i < n; i++)
                check_spec_done(&specs[i]);
        free(specs);
        return NULL;
}

static int validate_port(const char *field, uint32_t port, PacerError *err)
{
        if (port == 0)
                return pacer_error_set(err, EINVAL, "%s: required (the port the task listens on)", field);
        if (port > UINT16_MAX)
                return pacer_error_set(err, ERANGE, "%s %u out of range (1-65535)", field, port);
        return 0;
}

/* The path goes into the request line as it is: it has to be a valid one. */
static int validate_path(const char *field, const char *path, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        size_t len = strnlen(path, CHECK_PATH_MAX + 1);

        if (len > CHECK_PATH_MAX)
                return pacer_error_set(err, E2BIG, "%s \"%s\": longer than %d bytes", field,
                                       quote_str(path, q), CHECK_PATH_MAX);
        if (path[0] != '/')
                return pacer_error_set(err, EINVAL, "%s \"%s\": must start with '/'", field,
                                       quote_str(path, q));
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)path[i];
                if (c <= 0x20 || c == 0x7f)
                        return pacer_error_set(err, EINVAL,
                                               "%s \"%s\": must not contain spaces or control characters "
                                               "(percent-encode them)",
                                               field, quote_str(path, q));
                if (c >= 0x80)
                        return pacer_error_set(err, EINVAL,
                                               "%s \"%s\": must be ASCII (percent-encode other bytes)",
                                               field, quote_str(path, q));
        }
        return 0;
}

static int validate_protocol(const char *field, bool has, int protocol, bool *ret_ipv6, PacerError *err)
{
        if (!has || protocol == MESOS__V1__NETWORK_INFO__PROTOCOL__IPv4) {
                *ret_ipv6 = false;
                return 0;
        }
        if (protocol == MESOS__V1__NETWORK_INFO__PROTOCOL__IPv6) {
                *ret_ipv6 = true;
                return 0;
        }
        return pacer_error_set(err, EINVAL, "%s %d: must be IPv4 (1) or IPv6 (2)", field, protocol);
}

static int seconds_to_ns(const char *field, bool has, double v, int64_t def, int64_t *ret, PacerError *err)
{
        if (!has) {
                *ret = def;
                return 0;
        }
        if (!isfinite(v))
                return pacer_error_set(err, EINVAL, "%s %g: not a finite number", field, v);
        if (v < 0)
                return pacer_error_set(err, EINVAL, "%s %g: must not be negative", field, v);
        if (v * (double)NSEC_PER_SEC > (double)CHECK_DURATION_MAX_NS)
                return pacer_error_set(err, ERANGE, "%s %g: too large (at most %lld seconds)", field, v,
                                       (long long)(CHECK_DURATION_MAX_NS / NSEC_PER_SEC));
        *ret = llround(v * (double)NSEC_PER_SEC);
        return 0;
}

static char **strv_dup(char *const *v)
{
        size_t n = 0;
        char **copy;

        while (v && v[n])
                n++;
        copy = calloc(n + 1, sizeof(char *));
        if (!copy)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(copy[i] = strdup(v[i]))) {
                        strv_free(copy);
                        return NULL;
                }
        return copy;
}

static char **shell_argv(const char *line)
{
        char **argv = calloc(4, sizeof(char *));

        if (!argv)
                return NULL;
        argv[0] = strdup("/bin/sh");
        argv[1] = strdup("-c");
        argv[2] = strdup(line);
        if (!argv[0] || !argv[1] || !argv[2]) {
                strv_free(argv);
                return NULL;
        }
        return argv;
}

/* The command's own variables override the task's, as Mesos merges them. */
static int merge_env(char *const *task_env, const Environment *overlay, char ***ret, PacerError *err)
{
        size_t n = 0, n_task = 0, bytes = 0;
        char **env;

        while (task_env && task_env[n_task])
                n_task++;
        if (overlay && overlay->n_variables > COMMAND_ENV_MAX_VARS)
                return pacer_error_set(err, E2BIG,
                                       "health_check.command.environment: more than %d variables",
                                       COMMAND_ENV_MAX_VARS);
        for (size_t i = 0; overlay && i < overlay->n_variables; i++) {
                const Mesos__V1__Environment__Variable *v = overlay->variables[i];
                if (!v->name || !*v->name || strchr(v->name, '='))
                        return pacer_error_set(
                                err, EINVAL,
                                "health_check.command.environment.variables[%zu].name: must be "
                                "non-empty and contain no '='",
                                i);
                if (v->has_type && v->type == MESOS__V1__ENVIRONMENT__VARIABLE__TYPE__SECRET)
                        return pacer_error_set(
                                err, ENOTSUP,
                                "health_check.command.environment.variables[%zu] (%.64s): secrets "
                                "are not supported",
                                i, v->name);
                bytes += strlen(v->name) + strlen(strempty(v->value)) + 2;
                if (bytes > COMMAND_ENV_MAX_BYTES)
                        return pacer_error_set(err, E2BIG,
                                               "health_check.command.environment: more than %u bytes",
                                               COMMAND_ENV_MAX_BYTES);
        }

        env = calloc(n_task + (overlay ? overlay->n_variables : 0) + 1, sizeof(char *));
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; i < n_task; i++) {
                bool replaced = false;
                for (size_t j = 0; overlay && j < overlay->n_variables && !replaced; j++) {
                        size_t l = strlen(overlay->variables[j]->name);
                        replaced =
                                strneq(task_env[i], overlay->variables[j]->name, l) && task_env[i][l] == '=';
                }
                if (replaced)
                        continue;
                if (!(env[n++] = strdup(task_env[i]))) {
                        strv_free(env);
                        return -ENOMEM;
                }
        }
        for (size_t j = 0; overlay && j < overlay->n_variables; j++) {
                const Mesos__V1__Environment__Variable *v = overlay->variables[j];
                bool dup = false;
                /* a name given twice: the last one wins */
                for (size_t k = j + 1; k < overlay->n_variables && !dup; k++)
                        dup = streq(v->name, overlay->variables[k]->name);
                if (dup)
                        continue;
                if (asprintf(&env[n], "%s=%s", v->name, strempty(v->value)) < 0) {
                        env[n] = NULL;
                        strv_free(env);
                        return -ENOMEM;
                }
                n++;
        }
        *ret = env;
        return 0;
}

/* What every command check takes from its task. */
static int spec_set_task_context(CheckSpec *s, const CheckTaskContext *ctx)
{
        if (ctx && ctx->cwd && !(s->cwd = strdup(ctx->cwd)))
                return -ENOMEM;
        s->sandbox = ctx ? ctx->sandbox : NULL;
        return 0;
}

static int spec_from_command(CheckSpec *s, const CommandInfo *cmd, const CheckTaskContext *ctx,
                             PacerError *err)
{
        const char *f = "health_check.command";
        int r;

        if (!cmd)
                return pacer_error_set(err, EINVAL, "%s: required for type COMMAND", f);
        if (!cmd->has_shell || cmd->shell) {
                if (!cmd->value || !*cmd->value)
                        return pacer_error_set(err, EINVAL, "%s.value: required (the shell command to run)",
                                               f);
                if (strnlen(cmd->value, CHECK_COMMAND_MAX + 1) > CHECK_COMMAND_MAX)
                        return pacer_error_set(err, E2BIG, "%s.value: longer than %u bytes", f,
                                               CHECK_COMMAND_MAX);
                s->argv = shell_argv(cmd->value);
                if (!s->argv)
                        return -ENOMEM;
        } else {
                size_t n = cmd->n_arguments, total = 0;
                if (!cmd->value || !*cmd->value)
                        return pacer_error_set(err, EINVAL,
                                               "%s.value: required (the program to run, as shell is false)",
                                               f);
                if (n > CHECK_ARGS_MAX)
                        return pacer_error_set(err, E2BIG, "%s.arguments: more than %d entries", f,
                                               CHECK_ARGS_MAX);
                for (size_t i = 0; i < n; i++) {
                        if (!cmd->arguments[i])
                                return pacer_error_set(err, EINVAL, "%s.arguments[%zu]: missing", f, i);
                        total += strnlen(cmd->arguments[i], CHECK_COMMAND_MAX + 1) + 1;
                        if (total > CHECK_COMMAND_MAX)
                                return pacer_error_set(err, E2BIG,
                                                       "%s.arguments: longer than %u bytes together", f,
                                                       CHECK_COMMAND_MAX);
                }
                if (strnlen(cmd->value, CHECK_COMMAND_MAX + 1) > CHECK_COMMAND_MAX)
                        return pacer_error_set(err, E2BIG, "%s.value: longer than %u bytes", f,
                                               CHECK_COMMAND_MAX);
                /* as Mesos: value is what is executed, arguments are the whole argv */
                s->argv = n > 0 ? strv_dup(cmd->arguments) : strv_dup((char *const[]){ cmd->value, NULL });
                if (!s->argv)
                        return -ENOMEM;
                if (n > 0) {
                        char *prog = strdup(cmd->value);
                        if (!prog)
                                return -ENOMEM;
                        /* the program runs; argv[0] is only what it sees as its name */
                        free(s->argv[0]);
                        s->argv[0] = prog;
                }
        }
        r = merge_env(ctx ? ctx->envp : NULL, cmd->environment, &s->envp, err);
        if (r < 0)
                return r;
        return spec_set_task_context(s, ctx);
}

static int spec_from_http(CheckSpec *s, const Mesos__V1__HealthCheck__HTTPCheckInfo *http, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        int r;

        if (!http)
                return pacer_error_set(err, EINVAL, "health_check.http: required for type HTTP");
        if (!http->scheme || streq(http->scheme, "http"))
                s->type = CHECK_TYPE_HTTP;
        else if (streq(http->scheme, "https"))
                s->type = CHECK_TYPE_HTTPS;
        else
                return pacer_error_set(err, EINVAL, "health_check.http.scheme \"%s\": must be http or https",
                                       quote_str(http->scheme, q));
        r = validate_port("health_check.http.port", http->port, err);
        if (r < 0)
                return r;
        s->port = (uint16_t)http->port;
        if (http->path) {
                r = validate_path("health_check.http.path", http->path, err);
                if (r < 0)
                        return r;
        }
        r = validate_protocol("health_check.http.protocol", http->has_protocol, (int)http->protocol,
                              &s->ipv6, err);
        if (r < 0)
                return r;
        if (http->n_statuses > CHECK_STATUSES_MAX)
                return pacer_error_set(err, E2BIG, "health_check.http.statuses: more than %d entries",
                                       CHECK_STATUSES_MAX);
        for (size_t i = 0; i < http->n_statuses; i++)
                if (http->statuses[i] < 100 || http->statuses[i] > 599)
                        return pacer_error_set(
                                err, EINVAL,
                                "health_check.http.statuses[%zu] %u: not an HTTP status (100-599)", i,
                                http->statuses[i]);
        s->path = strdup(http->path ? http->path : "/");
        if (!s->path)
                return -ENOMEM;
        if (http->n_statuses > 0) {
                s->statuses = malloc(http->n_statuses * sizeof(uint32_t));
                if (!s->statuses)
                        return -ENOMEM;
                memcpy(s->statuses, http->statuses, http->n_statuses * sizeof(uint32_t));
                s->n_statuses = http->n_statuses;
        }
        return 0;
}

static int spec_from_tcp(CheckSpec *s, const Mesos__V1__HealthCheck__TCPCheckInfo *tcp, PacerError *err)
{
        int r;

        if (!tcp)
                return pacer_error_set(err, EINVAL, "health_check.tcp: required for type TCP");
        r = validate_port("health_check.tcp.port", tcp->port, err);
        if (r < 0)
                return r;
        s->type = CHECK_TYPE_TCP;
        s->port = (uint16_t)tcp->port;
        return validate_protocol("health_check.tcp.protocol", tcp->has_protocol, (int)tcp->protocol,
                                 &s->ipv6, err);
}

static int spec_from_health_check(const HealthCheck *hc, const CheckTaskContext *ctx, CheckSpec *s,
                                  PacerError *err)
{
        int r;

        snprintf(s->name, sizeof(s->name), "%s", CHECK_NAME_TASKINFO);
        s->role = CHECK_ROLE_BOTH;
        if ((r = seconds_to_ns("health_check.delay_seconds", hc->has_delay_seconds, hc->delay_seconds,
                               CHECK_DEFAULT_DELAY_NS, &s->delay_ns, err)) < 0 ||
            (r = seconds_to_ns("health_check.interval_seconds", hc->has_interval_seconds,
                               hc->interval_seconds, CHECK_DEFAULT_INTERVAL_NS, &s->interval_ns, err)) < 0 ||
            (r = seconds_to_ns("health_check.timeout_seconds", hc->has_timeout_seconds, hc->timeout_seconds,
                               CHECK_DEFAULT_TIMEOUT_NS, &s->timeout_ns, err)) < 0 ||
            (r = seconds_to_ns("health_check.grace_period_seconds", hc->has_grace_period_seconds,
                               hc->grace_period_seconds, CHECK_DEFAULT_GRACE_NS, &s->grace_ns, err)) < 0)
                return r;
        s->interval_ns = MAX(s->interval_ns, CHECK_INTERVAL_MIN_NS);
        /* Mesos kills once the count reaches the limit: a limit of 0 is reached by the first failure */
        s->max_failures =
                hc->has_consecutive_failures ? MAX(hc->consecutive_failures, 1u) : CHECK_DEFAULT_FAILURES;

        if (!hc->has_type)
                return pacer_error_set(err, EINVAL, "health_check.type: required (COMMAND, HTTP or TCP)");
        switch (hc->type) {
        case MESOS__V1__HEALTH_CHECK__TYPE__HTTP:
                return spec_from_http(s, hc->http, err);
        case MESOS__V1__HEALTH_CHECK__TYPE__TCP:
                return spec_from_tcp(s, hc->tcp, err);
        case MESOS__V1__HEALTH_CHECK__TYPE__COMMAND:
                s->type = CHECK_TYPE_COMMAND;
                return spec_from_command(s, hc->command, ctx, err);
        case MESOS__V1__HEALTH_CHECK__TYPE__UNKNOWN:
                return pacer_error_set(err, EINVAL,
                                       "health_check.type UNKNOWN: must be COMMAND, HTTP or TCP");
        default:
                return pacer_error_set(err, EINVAL,
                                       "health_check.type %d: unknown type (must be COMMAND, HTTP or TCP)",
                                       (int)hc->type);
        }
}

int check_spec_from_health_check(const HealthCheck *hc, const CheckTaskContext *ctx, CheckSpec *ret,
                                 PacerError *err)
{
        CheckSpec s = { 0 };
        int r;

        if (!hc)
                return pacer_error_set(err, EINVAL, "health_check: missing");
        r = spec_from_health_check(hc, ctx, &s, err);
        if (r < 0) {
                check_spec_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

/* ---- label checks ---- */

/* The keys of a label value, in the order of the keyword table. */
enum {
        LKEY_TYPE,
        LKEY_PORT,
        LKEY_PORT_INDEX,
        LKEY_PATH,
        LKEY_COMMAND,
        LKEY_INTERVAL,
        LKEY_TIMEOUT,
        LKEY_DELAY,
        LKEY_GRACE,
        LKEY_FAILURES,
        LKEY_ROLE,
};

typedef struct LabelDraft {
        const char *key; /* the whole label key, for messages */
        const CheckTaskContext *ctx;
        CheckSpec *spec;
        unsigned seen; /* bit per LKEY_* */
        uint32_t port_index;
        const char *command;
} LabelDraft;

typedef int (*label_key_fn)(LabelDraft *d, const char *name, const char *v, PacerError *err);

/* A decimal number without sign or spaces; -ERANGE above max. */
static int parse_uint(const char *s, uint32_t max, uint32_t *ret)
{
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(*p - '0');
                if (v > max)
                        return -ERANGE;
        }
        *ret = (uint32_t)v;
        return 0;
}

static int label_type(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        CheckType t = check_type_from_string(v);

        if (t < 0)
                return pacer_error_set(err, EINVAL,
                                       "label %s: type \"%s\": must be http, https, tcp or command", d->key,
                                       quote_str(v, q));
        d->spec->type = t;
        return 0;
}

static int label_port(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        uint32_t port;
        int r = parse_uint(v, UINT16_MAX, &port);

        if (r == -ERANGE || (r == 0 && port == 0))
                return pacer_error_set(err, ERANGE, "label %s: port %s out of range (1-65535)", d->key,
                                       quote_str(v, q));
        if (r < 0)
                return pacer_error_set(err, EINVAL, "label %s: port \"%s\": not a number", d->key,
                                       quote_str(v, q));
        d->spec->port = (uint16_t)port;
        return 0;
}

static int label_port_index(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        size_t n = d->ctx ? d->ctx->n_ports : 0;
        int r = parse_uint(v, UINT32_MAX, &d->port_index);

        if (r == -EINVAL)
                return pacer_error_set(err, EINVAL, "label %s: port-index \"%s\": not a number", d->key,
                                       quote_str(v, q));
        if (r < 0 || d->port_index >= n)
                return pacer_error_set(err, ERANGE,
                                       "label %s: port-index=%s out of range: the task has %zu port%s",
                                       d->key, quote_str(v, q), n, n == 1 ? "" : "s");
        return 0;
}

static int label_path(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        char field[sizeof("label : path") + CHECK_NAME_MAX + STRLEN(CHECK_LABEL_PREFIX)];
        int r;

        snprintf(field, sizeof(field), "label %s: path", d->key);
        r = validate_path(field, v, err);
        if (r < 0)
                return r;
        free(d->spec->path);
        d->spec->path = strdup(v);
        return d->spec->path ? 0 : -ENOMEM;
}

static int label_command(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        d->command = v;
        return 0;
}

static int label_duration(LabelDraft *d, const char *name, const char *v, int64_t *ret, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        PacerError e;
        int64_t ns;
        int r = duration_parse(v, &ns, &e);

        if (r < 0)
                return pacer_error_set(err, r, "label %s: %s: %s", d->key, name, e.msg);
        if (ns > CHECK_DURATION_MAX_NS)
                return pacer_error_set(err, ERANGE, "label %s: %s \"%s\": too large (at most %lld days)",
                                       d->key, name, quote_str(v, q),
                                       (long long)(CHECK_DURATION_MAX_NS / (86400 * NSEC_PER_SEC)));
        *ret = ns;
        return 0;
}

static int label_interval(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        return label_duration(d, name, v, &d->spec->interval_ns, err);
}

static int label_timeout(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        return label_duration(d, name, v, &d->spec->timeout_ns, err);
}

static int label_delay(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        return label_duration(d, name, v, &d->spec->delay_ns, err);
}

static int label_grace(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        return label_duration(d, name, v, &d->spec->grace_ns, err);
}

static int label_failures(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        uint32_t n;

        if (parse_uint(v, CHECK_FAILURES_MAX, &n) < 0 || n == 0)
                return pacer_error_set(err, EINVAL,
                                       "label %s: failures \"%s\": must be a number from 1 to %d", d->key,
                                       quote_str(v, q), CHECK_FAILURES_MAX);
        d->spec->max_failures = n;
        return 0;
}

static int label_role(LabelDraft *d, const char *name, const char *v, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        CheckRole role = check_role_from_string(v);

        if (role < 0)
                return pacer_error_set(err, EINVAL,
                                       "label %s: role \"%s\": must be liveness, readiness or both", d->key,
                                       quote_str(v, q));
        d->spec->role = role;
        return 0;
}

static const struct {
        const char *name;
        label_key_fn parse;
} label_keys[] = {
        [LKEY_TYPE] = { "type", label_type },
        [LKEY_PORT] = { "port", label_port },
        [LKEY_PORT_INDEX] = { "port-index", label_port_index },
        [LKEY_PATH] = { "path", label_path },
        [LKEY_COMMAND] = { "command", label_command },
        [LKEY_INTERVAL] = { "interval", label_interval },
        [LKEY_TIMEOUT] = { "timeout", label_timeout },
        [LKEY_DELAY] = { "delay", label_delay },
        [LKEY_GRACE] = { "grace", label_grace },
        [LKEY_FAILURES] = { "failures", label_failures },
        [LKEY_ROLE] = { "role", label_role },
};

#define SEEN(k) (1u << (k))

static bool label_name_valid(const char *name)
{
        size_t n = strnlen(name, CHECK_NAME_MAX + 1);

        if (n == 0 || n > CHECK_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
                      name[i] == '-'))
                        return false;
        return true;
}

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = 0;
        return s;
}

/* Splits the value into key=value items and hands each to its keyword. */
static int label_parse_items(LabelDraft *d, char *buf, PacerError *err)
{
        char q[QUOTE_MAX + 8];
        char *p = buf;

        for (;;) {
                char *item = p, *comma = strchr(p, ','), *eq, *k, *v;
                size_t i;
                int r;

                if (comma)
                        *comma = 0;
                eq = strchr(item, '=');
                if (!eq) {
                        if (!*trim(item))
                                return pacer_error_set(err, EINVAL,
                                                       "label %s: empty item at offset %zu (a stray comma?)",
                                                       d->key, (size_t)(item - buf));
                        return pacer_error_set(err, EINVAL, "label %s: \"%s\" is not key=value", d->key,
                                               quote_str(trim(item), q));
                }
                *eq = 0;
                k = trim(item);
                for (i = 0; i < ELEMENTSOF(label_keys); i++)
                        if (streq(k, label_keys[i].name))
                                break;
                if (i == ELEMENTSOF(label_keys))
                        return pacer_error_set(
                                err, EINVAL,
                                "label %s: unknown key \"%s\" (known: type, port, port-index, path, "
                                "interval, timeout, delay, grace, failures, role, command)",
                                d->key, quote_str(k, q));
                if (d->seen & SEEN(i))
                        return pacer_error_set(err, EINVAL, "label %s: key %s given twice", d->key, k);
                d->seen |= SEEN(i);
                if (i == LKEY_COMMAND) {
                        /* the command takes the rest of the value, commas included */
                        if (comma)
                                *comma = ',';
                        v = eq + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        return label_keys[i].parse(d, k, v, err);
                }
                v = trim(eq + 1);
                r = label_keys[i].parse(d, k, v, err);
                if (r < 0)
                        return r;
                if (!comma)
                        return 0;
                p = comma + 1;
        }
}

/* Rules about combinations of keys, once all are known. */
static int label_finish(LabelDraft *d, PacerError *err)
{
        CheckSpec *s = d->spec;
        char a[32], b[32];
        bool net;

        if (!(d->seen & SEEN(LKEY_TYPE)))
                return pacer_error_set(err, EINVAL,
                                       "label %s: type= is required (http, https, tcp or command)", d->key);
        net = s->type != CHECK_TYPE_COMMAND;
        if (net) {
                if ((d->seen & SEEN(LKEY_PORT)) && (d->seen & SEEN(LKEY_PORT_INDEX)))
                        return pacer_error_set(err, EINVAL, "label %s: give port= or port-index=, not both",
                                               d->key);
                if (!(d->seen & SEEN(LKEY_PORT))) {
                        /* as Marathon: without either, the task's first port */
                        size_t n = d->ctx ? d->ctx->n_ports : 0;
                        if (d->port_index >= n)
                                return pacer_error_set(
                                        err, EINVAL,
                                        "label %s: no port= or port-index= given and the task has "
                                        "no ports",
                                        d->key);
                        if (d->ctx->ports[d->port_index] == 0 || d->ctx->ports[d->port_index] > UINT16_MAX)
                                return pacer_error_set(err, ERANGE,
                                                       "label %s: the task's port %u is out of range",
                                                       d->key, d->ctx->ports[d->port_index]);
                        s->port = (uint16_t)d->ctx->ports[d->port_index];
                }
                if (d->seen & SEEN(LKEY_COMMAND))
                        return pacer_error_set(err, EINVAL, "label %s: command= is only for type=command",
                                               d->key);
                if (s->type == CHECK_TYPE_TCP && (d->seen & SEEN(LKEY_PATH)))
                        return pacer_error_set(err, EINVAL,
                                               "label %s: path= is only for http and https checks", d->key);
                if (s->type != CHECK_TYPE_TCP && !s->path && !(s->path = strdup("/")))
                        return -ENOMEM;
        } else {
                if (d->seen & (SEEN(LKEY_PORT) | SEEN(LKEY_PORT_INDEX) | SEEN(LKEY_PATH)))
                        return pacer_error_set(
                                err, EINVAL,
                                "label %s: port=, port-index= and path= are not for command checks", d->key);
                if (!(d->seen & SEEN(LKEY_COMMAND)))
                        return pacer_error_set(err, EINVAL,
                                               "label %s: command= is required for type=command", d->key);
                if (!*d->command)
                        return pacer_error_set(err, EINVAL, "label %s: command= is empty", d->key);
        }

        if (!(d->seen & SEEN(LKEY_TIMEOUT)))
                s->timeout_ns = MIN(CHECK_DEFAULT_TIMEOUT_NS, s->interval_ns);
        if (s->interval_ns < CHECK_INTERVAL_MIN_NS)
                return pacer_error_set(err, EINVAL, "label %s: interval %s is below the minimum of %s",
                                       d->key, duration_format_go(s->interval_ns, a, sizeof(a)),
                                       duration_format_go(CHECK_INTERVAL_MIN_NS, b, sizeof(b)));
        if (s->timeout_ns == 0)
                return pacer_error_set(err, EINVAL, "label %s: timeout must be greater than 0", d->key);
        if (s->timeout_ns > s->interval_ns)
                return pacer_error_set(
                        err, EINVAL,
                        "label %s: timeout %s is longer than the interval %s (a label check must "
                        "end within its interval)",
                        d->key, duration_format_go(s->timeout_ns, a, sizeof(a)),
                        duration_format_go(s->interval_ns, b, sizeof(b)));
        return 0;
}

static int spec_from_label(const char *key, const char *value, const CheckTaskContext *ctx, CheckSpec *s,
                           PacerError *err)
{
        char q[QUOTE_MAX + 8], buf[CHECK_LABEL_VALUE_MAX + 1];
        LabelDraft d = { .key = key, .ctx = ctx, .spec = s };
        const char *name;
        size_t len;
        int r;

        if (!key || !strneq(key, CHECK_LABEL_PREFIX, STRLEN(CHECK_LABEL_PREFIX)))
                return pacer_error_set(err, EINVAL, "label \"%s\": not a %s<name> label",
                                       quote_str(strempty(key), q), CHECK_LABEL_PREFIX);
        name = key + STRLEN(CHECK_LABEL_PREFIX);
        if (!label_name_valid(name))
                return pacer_error_set(
                        err, EINVAL,
                        "label \"%s\": the check name must be 1-%d characters of a-z, 0-9 and '-'",
                        quote_str(key, q), CHECK_NAME_MAX);
        /* from here on the key is known to be short and printable */
        len = value ? strnlen(value, CHECK_LABEL_VALUE_MAX + 1) : 0;
        if (len > CHECK_LABEL_VALUE_MAX)
                return pacer_error_set(err, E2BIG, "label %s: value over the limit of %d bytes", key,
                                       CHECK_LABEL_VALUE_MAX);
        if (len == 0)
                return pacer_error_set(
                        err, EINVAL,
                        "label %s: empty value (expected e.g. type=http,port-index=0,path=/health)", key);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                        return pacer_error_set(err, EINVAL, "label %s: control character at offset %zu", key,
                                               i);
        memcpy(buf, value, len + 1);

        snprintf(s->name, sizeof(s->name), "%s", name);
        s->role = CHECK_ROLE_BOTH;
        s->delay_ns = CHECK_DEFAULT_DELAY_NS;
        s->interval_ns = CHECK_DEFAULT_INTERVAL_NS;
        s->grace_ns = CHECK_DEFAULT_GRACE_NS;
        s->max_failures = CHECK_DEFAULT_FAILURES;
        r = label_parse_items(&d, buf, err);
        if (r < 0)
                return r;
        r = label_finish(&d, err);
        if (r < 0)
                return r;
        if (s->type == CHECK_TYPE_COMMAND) {
                s->argv = shell_argv(d.command);
                if (!s->argv)
                        return -ENOMEM;
                s->envp = strv_dup(ctx ? ctx->envp : NULL);
                if (!s->envp)
                        return -ENOMEM;
                return spec_set_task_context(s, ctx);
        }
        return 0;
}

int check_spec_from_label(const char *key, const char *value, const CheckTaskContext *ctx, CheckSpec *ret,
                          PacerError *err)
{
        CheckSpec s = { 0 };
        int r = spec_from_label(key, value, ctx, &s, err);

        if (r < 0) {
                check_spec_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

static bool is_check_label(const Label *l)
{
        return l && l->key && strneq(l->key, CHECK_LABEL_PREFIX, STRLEN(CHECK_LABEL_PREFIX));
}

/* Fills specs (room for every check) and counts in *n what needs freeing, even on failure. */
static int fill_specs(const TaskInfo *task, const CheckTaskContext *ctx, CheckSpec *specs, size_t *n,
                      PacerError *err)
{
        const Labels *labels = task->labels;
        int r;

        if (task->health_check) {
                r = check_spec_from_health_check(task->health_check, ctx, &specs[*n], err);
                if (r < 0)
                        return r;
                (*n)++;
        }
        for (size_t i = 0; labels && i < labels->n_labels; i++) {
                const Label *l = labels->labels[i];
                if (!is_check_label(l))
                        continue;
                r = check_spec_from_label(l->key, l->value, ctx, &specs[*n], err);
                if (r < 0)
                        return r;
                (*n)++;
                for (size_t j = 0; j + 1 < *n; j++)
                        if (streq(specs[j].name, specs[*n - 1].name))
                                return pacer_error_set(err, EINVAL, "label %s: defined more than once",
                                                       l->key);
        }
        return 0;
}

int check_specs_from_task(const TaskInfo *task, const CheckTaskContext *ctx, CheckSpec **ret_specs,
                          size_t *ret_n, PacerError *err)
{
        const Labels *labels = task->labels;
        CheckSpec *specs;
        size_t total = task->health_check ? 1 : 0, n = 0;
        int r;

        /* counted before anything is parsed: a flood of labels costs nothing */
        for (size_t i = 0; labels && i < labels->n_labels; i++)
                total += is_check_label(labels->labels[i]);
        if (total > CHECKS_MAX)
                return pacer_error_set(
                        err, E2BIG,
                        "%zu checks: at most %d per task (TaskInfo.health_check and %s* labels "
                        "together)",
                        total, CHECKS_MAX, CHECK_LABEL_PREFIX);
        if (total == 0) {
                *ret_specs = NULL;
                *ret_n = 0;
                return 0;
        }
        specs = calloc(total, sizeof(CheckSpec));
        if (!specs)
                return -ENOMEM;
        r = fill_specs(task, ctx, specs, &n, err);
        if (r < 0) {
                check_specs_free(specs, n);
                return r;
        }
        *ret_specs = specs;
        *ret_n = n;
        return 0;
}

/* ---- policy ---- */

void check_policy_init(CheckPolicy *p, int64_t grace_ns, uint32_t max_failures, int64_t now)
{
        *p = (CheckPolicy){
                .grace_ns = grace_ns,
                .max_failures = MAX(max_failures, 1u),
                .started_ns = now,
                .health = HEALTH_UNKNOWN,
        };
}

void check_policy_feed(CheckPolicy *p, bool passed, int64_t now, CheckVerdict *ret)
{
        Health before = p->health;
        CheckVerdict v = { 0 };

        if (passed) {
                p->seen_success = true;
                p->consecutive_failures = 0;
                p->health = HEALTH_HEALTHY;
        } else if (!p->seen_success && now - p->started_ns < p->grace_ns) {
                /* a task still starting up: not held against it */
                v.ignored = true;
        } else {
                if (p->consecutive_failures < UINT32_MAX)
                        p->consecutive_failures++;
                p->health = HEALTH_UNHEALTHY;
        }
        v.health = p->health;
        v.consecutive_failures = p->consecutive_failures;
        v.changed = p->health != before;
        v.limit_reached = p->consecutive_failures >= p->max_failures;
        *ret = v;
}

/* ---- the checker ---- */

struct Checker {
        struct ev_loop *loop;
        HttpClient *http;
        const CheckSpec *spec;
        check_result_fn cb;
        void *userdata;
        char *url;
        CheckPolicy policy;
        ev_timer next;     /* the delay, then the interval */
        ev_timer deadline; /* the probe's timeout; also defers a failed command start */
        int64_t probe_start_ns;
        bool probing;
        bool timed_out;
        /* HTTP */
        HttpRequest *req;
        long http_status;
        /* TCP */
        ev_io conn;
        int fd;
        /* COMMAND */
        TaskProcess *proc;
        bool spawn_failed;
        char spawn_error[CHECK_OUTPUT_MAX];
};

const CheckSpec *checker_spec(const Checker *c)
{
        return c->spec;
}

Health checker_health(const Checker *c)
{
        return c->policy.health;
}

static void schedule(Checker *c, int64_t after_ns)
{
        /* counted from now, not from when this loop iteration began */
        ev_now_update(c->loop);
        ev_timer_stop(c->loop, &c->next);
        ev_timer_set(&c->next, ns_to_ev(after_ns), 0.);
        ev_timer_start(c->loop, &c->next);
}

static void arm_deadline(Checker *c, int64_t after_ns)
{
        ev_timer_stop(c->loop, &c->deadline);
        ev_timer_set(&c->deadline, ns_to_ev(after_ns), 0.);
        ev_timer_start(c->loop, &c->deadline);
}

/* Ends the probe: policy, next probe, then the callback — last, as it may free c. */
_printf_(3, 4) static void finish(Checker *c, bool passed, const char *fmt, ...)
{
        CheckResult r = { .passed = passed };
        int64_t now = now_ns();
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r.output, sizeof(r.output), fmt, ap);
        va_end(ap);
        r.latency_ns = now - c->probe_start_ns;
        c->probing = false;
        ev_timer_stop(c->loop, &c->deadline);
        check_policy_feed(&c->policy, passed, now, &r.verdict);
        schedule(c, c->spec->interval_ns);
        c->cb(c, &r, c->userdata);
}

static void finish_timed_out(Checker *c)
{
        char d[32];

        finish(c, false, "timed out after %s", duration_format_go(c->spec->timeout_ns, d, sizeof(d)));
}

/* HTTP */

static bool http_status_passes(const CheckSpec *s, long status)
{
        if (s->n_statuses == 0)
                return status >= 200 && status < 400;
        for (size_t i = 0; i < s->n_statuses; i++)
                if (status == (long)s->statuses[i])
                        return true;
        return false;
}

static void on_http_headers(HttpRequest *req, const HttpResponse *resp, void *userdata)
{
        Checker *c = userdata;

        /* the status is the answer: the body would only cost time */
        c->http_status = resp->status;
        http_request_cancel(req);
}

static int on_http_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        return 0;
}

static void on_http_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Checker *c = userdata;
        const char *e;
        long status;
        size_t skip;

        if (c->req != req)
                return; /* cancelled by checker_stop() */
        c->req = NULL;
        status = c->http_status > 0 ? c->http_status : resp ? resp->status : 0;
        if (status > 0 && (result == 0 || result == -ECANCELED || result == -EMSGSIZE)) {
                finish(c, http_status_passes(c->spec, status), "HTTP %ld", status);
                return;
        }
        if (result == -ETIMEDOUT) {
                finish_timed_out(c);
                return;
        }
        if (result == -ECONNREFUSED) {
                finish(c, false, "connect: %s", strerror(ECONNREFUSED));
                return;
        }
        /* "GET <url>: <detail>": the URL is the check's own, the detail is the news */
        e = http_request_error(req);
        skip = STRLEN("GET ") + strlen(c->url) + STRLEN(": ");
        if (strneq(e, "GET ", STRLEN("GET ")) && strlen(e) > skip &&
            strneq(e + STRLEN("GET "), c->url, strlen(c->url)))
                e += skip;
        finish(c, false, "%s", *e ? e : strerror(-result));
}

static void probe_http(Checker *c)
{
        int r;

        c->http_status = 0;
        r = http_request_start(c->http,
                               &(HttpRequestOptions){
                                       .url = c->url,
                                       .timeout_ns = c->spec->timeout_ns,
                                       .max_body = CHECK_HTTP_BODY_MAX,
                                       /* a check tests that the task accepts connections, as Mesos's
                                        * curl does each time; a kept-alive one would hide that */
                                       .fresh_connection = true,
                                       /* as Mesos's checker does (curl -k): the task's certificate names
                                        * its service, not 127.0.0.1, and is often self-signed */
                                       .tls_no_verify = true,
                                       .on_headers = on_http_headers,
                                       .on_data = on_http_data,
                                       .on_done = on_http_done,
                                       .userdata = c,
                               },
                               &c->req);
        if (r < 0) {
                c->req = NULL;
                finish(c, false, "cannot start the request: %s", strerror(-r));
        }
}

/* TCP */

static void tcp_close(Checker *c)
{
        if (c->fd < 0)
                return;
        ev_io_stop(c->loop, &c->conn);
        c->fd = safe_close(c->fd);
}

static void on_tcp_writable(struct ev_loop *loop, ev_io *w, int revents)
{
        Checker *c = w->data;
        int error = 0;
        socklen_t len = sizeof(error);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        tcp_close(c);
        if (error == 0)
                finish(c, true, "connected");
        else
                finish(c, false, "connect: %s", strerror(error));
}

static void probe_tcp(Checker *c)
{
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } addr = { 0 };
        socklen_t len;
        int fd;

        if (c->spec->ipv6) {
                addr.in6 = (struct sockaddr_in6){ .sin6_family = AF_INET6,
                                                  .sin6_port = htons(c->spec->port),
                                                  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
                len = sizeof(addr.in6);
        } else {
                addr.in = (struct sockaddr_in){ .sin_family = AF_INET,
                                                .sin_port = htons(c->spec->port),
                                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                len = sizeof(addr.in);
        }
        fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                finish(c, false, "socket: %s", strerror(errno));
                return;
        }
        if (connect(fd, &addr.sa, len) == 0) {
                close(fd);
                finish(c, true, "connected");
                return;
        }
        if (errno != EINPROGRESS) {
                int e = errno;
                close(fd);
                finish(c, false, "connect: %s", strerror(e));
                return;
        }
        c->fd = fd;
        ev_io_set(&c->conn, fd, EV_WRITE);
        ev_io_start(c->loop, &c->conn);
        if (c->spec->timeout_ns > 0)
                arm_deadline(c, c->spec->timeout_ns);
}

/* COMMAND */

static void on_command_started(TaskProcess *p, int error, const char *what, void *userdata)
{
        Checker *c = userdata;

        if (error == 0)
                return;
        /* this can run inside the process's own child watcher, which goes on
         * using it: finish (and free it) from the loop instead */
        snprintf(c->spawn_error, sizeof(c->spawn_error), "cannot run the command: %s failed: %s", what,
                 strerror(-error));
        c->spawn_failed = true;
        arm_deadline(c, 0);
}

static void on_command_exited(TaskProcess *p, int wstatus, void *userdata)
{
        Checker *c = userdata;
        char how[64];

        /* the last thing the process's watcher does is call us: freeing it is safe */
        c->proc = task_process_free(c->proc);
        if (c->timed_out)
                finish_timed_out(c);
        else if (WIFEXITED(wstatus))
                finish(c, WEXITSTATUS(wstatus) == 0, "exit status %d", WEXITSTATUS(wstatus));
        else
                finish(c, false, "%s", task_describe_wstatus(wstatus, how, sizeof(how)));
}

static void probe_command(Checker *c)
{
        static const TaskProcessCallbacks callbacks = {
                .started = on_command_started,
                .exited = on_command_exited,
        };
        const CheckSpec *s = c->spec;
        PacerError err;
        int r;

        c->spawn_failed = false;
        r = task_process_spawn(c->loop,
                               &(TaskSpawnOptions){
                                       .argv = s->argv,
                                       .envp = s->envp,
                                       .cwd = s->cwd,
                                       .sandbox = s->sandbox,
                               },
                               &callbacks, c, &c->proc, &err);
        if (r < 0) {
                finish(c, false, "%s", err.msg);
                return;
        }
        if (s->timeout_ns > 0)
                arm_deadline(c, s->timeout_ns);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
        Checker *c = w->data;

        if (!c->probing)
                return;
        switch (c->spec->type) {
        case CHECK_TYPE_TCP:
                tcp_close(c);
                finish_timed_out(c);
                break;
        case CHECK_TYPE_COMMAND:
                if (c->spawn_failed) {
                        c->proc = task_process_free(c->proc);
                        finish(c, false, "%s", c->spawn_error);
                        break;
                }
                /* the whole group; the result follows when the leader is reaped */
                c->timed_out = true;
                task_process_signal(c->proc, SIGKILL);
                break;
        default:
                break;
        }
}

static void on_next(struct ev_loop *loop, ev_timer *w, int revents)
{
        Checker *c = w->data;

        c->probing = true;
        c->timed_out = false;
        c->probe_start_ns = now_ns();
        switch (c->spec->type) {
        case CHECK_TYPE_HTTP:
        case CHECK_TYPE_HTTPS:
                probe_http(c);
                break;
        case CHECK_TYPE_TCP:
                probe_tcp(c);
                break;
        case CHECK_TYPE_COMMAND:
                probe_command(c);
                break;
        default:
                finish(c, false, "unknown check type");
        }
}

int checker_new(struct ev_loop *loop, HttpClient *http, const CheckSpec *spec, check_result_fn cb,
                void *userdata, Checker **ret)
{
        _cleanup_free_ Checker *c = NULL;

        if (!loop || !spec || !cb || spec->type < 0 || spec->type >= _CHECK_TYPE_MAX)
                return -EINVAL;
        if ((spec->type == CHECK_TYPE_HTTP || spec->type == CHECK_TYPE_HTTPS) && (!http || !spec->path))
                return -EINVAL;
        if (spec->type == CHECK_TYPE_COMMAND && (!spec->argv || !spec->argv[0]))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Checker){ .loop = loop, .http = http, .spec = spec, .cb = cb, .userdata = userdata, .fd = -1 };
        if (spec->type == CHECK_TYPE_HTTP || spec->type == CHECK_TYPE_HTTPS) {
                if (asprintf(&c->url, "%s://%s:%u%s", check_type_to_string(spec->type),
                             spec->ipv6 ? "[::1]" : "127.0.0.1", spec->port, spec->path) < 0) {
                        c->url = NULL;
                        return -ENOMEM;
                }
        }
        ev_timer_init(&c->next, on_next, 0., 0.);
        c->next.data = c;
        ev_timer_init(&c->deadline, on_deadline, 0., 0.);
        c->deadline.data = c;
        ev_io_init(&c->conn, on_tcp_writable, -1, EV_WRITE);
        c->conn.data = c;
        check_policy_init(&c->policy, spec->grace_ns, spec->max_failures, now_ns());
        *ret = TAKE_PTR(c);
        return 0;
}

void checker_start(Checker *c)
{
        if (!c)
                return;
        checker_stop(c);
        check_policy_init(&c->policy, c->spec->grace_ns, c->spec->max_failures, now_ns());
        /* even a zero delay goes through the loop: no callback from inside this call */
        schedule(c, c->spec->delay_ns);
}

void checker_stop(Checker *c)
{
        HttpRequest *req;

        if (!c)
                return;
        ev_timer_stop(c->loop, &c->next);
        ev_timer_stop(c->loop, &c->deadline);
        req = TAKE_PTR(c->req);
        if (req)
                http_request_cancel(req); /* on_done sees c->req cleared and stays quiet */
        tcp_close(c);
        c->proc = task_process_free(c->proc);
        c->probing = false;
        c->spawn_failed = false;
}

Checker *checker_free(Checker *c)
{
        if (!c)
                return NULL;
        checker_stop(c);
        free(c->url);
        free(c);
        return NULL;
}
