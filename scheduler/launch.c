/* SPDX-License-Identifier: Apache-2.0 */
#include "launch.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"

/* The executor needs room for deregistration and the drain on top of the task's grace. */
#define EXECUTOR_GRACE_EXTRA_NS (5 * NSEC_PER_SEC)
#define EXECUTOR_GRACE_MIN_NS   (5 * NSEC_PER_SEC)

#define NEW(a, type, init)                                 \
        ({                                                 \
                type *_p = arena_alloc((a), sizeof(type)); \
                if (_p)                                    \
                        init(_p);                          \
                _p;                                        \
        })

int launch_task_name(const char *app_id, char *buf, size_t size)
{
        const char *end = app_id + strlen(app_id);
        size_t n = 0;

        /* segments reversed and joined by '.': /prod/web → web.prod */
        while (end > app_id) {
                const char *seg = end;
                while (seg > app_id && seg[-1] != '/')
                        seg--;
                size_t l = (size_t)(end - seg);
                if (l > 0) {
                        if (n + l + 2 > size)
                                return -ENAMETOOLONG;
                        if (n > 0)
                                buf[n++] = '.';
                        memcpy(buf + n, seg, l);
                        n += l;
                }
                end = seg > app_id ? seg - 1 : app_id;
        }
        if (size == 0)
                return -ENAMETOOLONG;
        buf[n] = 0;
        return 0;
}

/* ---- environment ---- */

typedef struct EnvBuilder {
        Arena *arena;
        Mesos__V1__Environment__Variable **vars;
        size_t n, cap;
} EnvBuilder;

static int env_add(EnvBuilder *e, const char *name, const char *value)
{
        Mesos__V1__Environment__Variable *v;

        for (size_t i = 0; i < e->n; i++)
                if (streq(e->vars[i]->name, name)) {
                        e->vars[i]->value = arena_printf(e->arena, "%s", value);
                        return e->vars[i]->value ? 0 : -ENOMEM;
                }
        if (e->n == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 32;
                Mesos__V1__Environment__Variable **vars = arena_alloc(e->arena, cap * sizeof(*vars));
                if (!vars)
                        return -ENOMEM;
                if (e->n)
                        memcpy(vars, e->vars, e->n * sizeof(*vars));
                e->vars = vars;
                e->cap = cap;
        }
        v = NEW(e->arena, Mesos__V1__Environment__Variable, mesos__v1__environment__variable__init);
        if (!v || !(v->name = arena_printf(e->arena, "%s", name)) ||
            !(v->value = arena_printf(e->arena, "%s", value)))
                return -ENOMEM;
        e->vars[e->n++] = v;
        return 0;
}

/* MARATHON_APP_LABEL_<NAME>: upper case, runs outside [A-Za-z0-9_] become '_'. */
static void label_env_name(const char *key, char *out, size_t size)
{
        size_t n = snprintf(out, size, "MARATHON_APP_LABEL_");
        bool under = false;

        for (const char *p = key; *p && n + 1 < size; p++) {
                unsigned char c = (unsigned char)*p;
                if (isalnum(c) || c == '_') {
                        out[n++] = (char)toupper(c);
                        under = false;
                } else if (!under) {
                        out[n++] = '_';
                        under = true;
                }
        }
        out[n] = 0;
}

static int build_env(EnvBuilder *e, const Instance *i, const AppSpec *spec, const char *hostname,
                     const uint32_t *ports, size_t n_ports)
{
        char buf[64], name[300];
        _cleanup_(buf_done) Buf portlist = BUF_INIT(4096), labels = BUF_INIT(64 * 1024);
        int r = 0;

        r |= env_add(e, "MESOS_TASK_ID", i->task_id);
        r |= env_add(e, "MARATHON_APP_ID", spec->id);
        r |= env_add(e, "MARATHON_APP_VERSION", spec->version);
        snprintf(buf, sizeof(buf), "%g", spec->cpus);
        r |= env_add(e, "MARATHON_APP_RESOURCE_CPUS", buf);
        snprintf(buf, sizeof(buf), "%g", spec->mem);
        r |= env_add(e, "MARATHON_APP_RESOURCE_MEM", buf);
        snprintf(buf, sizeof(buf), "%g", spec->disk);
        r |= env_add(e, "MARATHON_APP_RESOURCE_DISK", buf);
        r |= env_add(e, "MARATHON_APP_RESOURCE_GPUS", "0");
        if (hostname)
                r |= env_add(e, "HOST", hostname);
        for (size_t p = 0; p < n_ports; p++) {
                snprintf(buf, sizeof(buf), "%u", ports[p]);
                snprintf(name, sizeof(name), "PORT%zu", p);
                r |= env_add(e, name, buf);
                if (p < spec->n_ports && spec->ports[p].port) {
                        snprintf(name, sizeof(name), "PORT_%u", spec->ports[p].port);
                        r |= env_add(e, name, buf);
                }
                if (p < spec->n_ports && spec->ports[p].name) {
                        size_t k = snprintf(name, sizeof(name), "PORT_");
                        for (const char *c = spec->ports[p].name; *c && k + 1 < sizeof(name); c++)
                                name[k++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
                        name[k] = 0;
                        r |= env_add(e, name, buf);
                }
                if (p == 0)
                        r |= env_add(e, "PORT", buf);
                r |= buf_printf(&portlist, "%s%u", p ? "," : "", ports[p]);
        }
        if (n_ports)
                r |= env_add(e, "PORTS", buf_str(&portlist));
        for (size_t l = 0; l < spec->n_labels; l++) {
                label_env_name(spec->labels[l].key, name, sizeof(name));
                if (strlen(spec->labels[l].value) > 512)
                        continue; /* Marathon skips over-long labels too */
                r |= env_add(e, name, spec->labels[l].value);
                r |= buf_printf(&labels, "%s%s", l ? " " : "", spec->labels[l].key);
        }
        if (spec->n_labels)
                r |= env_add(e, "MARATHON_APP_LABELS", buf_str(&labels));
        /* the app's own env wins over what Marathon would set */
        for (size_t v = 0; v < spec->n_env; v++)
                r |= env_add(e, spec->env[v].key, spec->env[v].value);
        return r ? -ENOMEM : 0;
}

/* ---- health checks ---- */

static uint32_t check_port(const AppHealthCheck *c, const uint32_t *ports, size_t n_ports)
{
        if (c->port_index >= 0)
                return (size_t)c->port_index < n_ports ? ports[c->port_index] : 0;
        return c->port;
}

static HealthCheck *mesos_check(Arena *a, const AppHealthCheck *c, const uint32_t *ports, size_t n_ports)
{
        HealthCheck *hc = NEW(a, HealthCheck, mesos__v1__health_check__init);

        if (!hc)
                return NULL;
        hc->has_delay_seconds = hc->has_interval_seconds = hc->has_timeout_seconds = true;
        hc->has_grace_period_seconds = hc->has_consecutive_failures = true;
        hc->delay_seconds = c->delay_seconds;
        hc->interval_seconds = c->interval_seconds;
        hc->timeout_seconds = c->timeout_seconds;
        hc->grace_period_seconds = c->grace_period_seconds;
        hc->consecutive_failures = c->max_consecutive_failures;
        hc->has_type = true;
        switch (c->protocol) {
        case CHECK_PROTOCOL_HTTP:
        case CHECK_PROTOCOL_HTTPS: {
                Mesos__V1__HealthCheck__HTTPCheckInfo *h =
                        NEW(a, Mesos__V1__HealthCheck__HTTPCheckInfo,
                            mesos__v1__health_check__httpcheck_info__init);
                if (!h)
                        return NULL;
                hc->type = MESOS__V1__HEALTH_CHECK__TYPE__HTTP;
                h->port = check_port(c, ports, n_ports);
                h->path = c->path;
                h->scheme = c->protocol == CHECK_PROTOCOL_HTTPS ? "https" : "http";
                if (c->ipv6) {
                        h->has_protocol = true;
                        h->protocol = MESOS__V1__NETWORK_INFO__PROTOCOL__IPv6;
                }
                hc->http = h;
                break;
        }
        case CHECK_PROTOCOL_TCP: {
                Mesos__V1__HealthCheck__TCPCheckInfo *t = NEW(a, Mesos__V1__HealthCheck__TCPCheckInfo,
                                                              mesos__v1__health_check__tcpcheck_info__init);
                if (!t)
                        return NULL;
                hc->type = MESOS__V1__HEALTH_CHECK__TYPE__TCP;
                t->port = check_port(c, ports, n_ports);
                if (c->ipv6) {
                        t->has_protocol = true;
                        t->protocol = MESOS__V1__NETWORK_INFO__PROTOCOL__IPv6;
                }
                hc->tcp = t;
                break;
        }
        default: {
                CommandInfo *ci = NEW(a, CommandInfo, mesos__v1__command_info__init);
                if (!ci)
                        return NULL;
                hc->type = MESOS__V1__HEALTH_CHECK__TYPE__COMMAND;
                ci->value = c->command;
                hc->command = ci;
                break;
        }
        }
        return hc;
}

/* Checks beyond the first travel as executor labels (docs/checks.md). A
 * Marathon check with maxConsecutiveFailures 0 never kills: readiness role. */
static char *label_check(Arena *a, const AppHealthCheck *c, const uint32_t *ports, size_t n_ports)
{
        static const char *const types[] = {
                [CHECK_PROTOCOL_HTTP] = "http",
                [CHECK_PROTOCOL_HTTPS] = "https",
                [CHECK_PROTOCOL_TCP] = "tcp",
                [CHECK_PROTOCOL_COMMAND] = "command",
        };
        char failures[32] = "";

        if (c->max_consecutive_failures)
                snprintf(failures, sizeof(failures), ",failures=%u", c->max_consecutive_failures);
        if (c->protocol == CHECK_PROTOCOL_COMMAND)
                return arena_printf(
                        a, "type=command,interval=%us,timeout=%us,grace=%us,delay=%us%s,role=%s,command=%s",
                        c->interval_seconds, c->timeout_seconds, c->grace_period_seconds, c->delay_seconds,
                        failures, c->max_consecutive_failures ? "both" : "readiness", c->command);
        return arena_printf(a, "type=%s,port=%u,interval=%us,timeout=%us,grace=%us,delay=%us%s,role=%s%s%s",
                            types[c->protocol], check_port(c, ports, n_ports), c->interval_seconds,
                            c->timeout_seconds, c->grace_period_seconds, c->delay_seconds, failures,
                            c->max_consecutive_failures ? "both" : "readiness", c->path ? ",path=" : "",
                            c->path ? c->path : "");
}

static Label *label_new(Arena *a, const char *k, const char *v)
{
        Label *l = NEW(a, Label, mesos__v1__label__init);
        if (l) {
                l->key = (char *)k;
                l->value = (char *)v;
        }
        return l;
}

static Labels *labels_from(Arena *a, const KeyValue *kv, size_t n, size_t extra)
{
        Labels *ls = NEW(a, Labels, mesos__v1__labels__init);

        if (!ls)
                return NULL;
        ls->labels = arena_alloc(a, (n + extra + 1) * sizeof(Label *));
        if (!ls->labels)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(ls->labels[ls->n_labels++] = label_new(a, kv[i].key, kv[i].value)))
                        return NULL;
        return ls;
}

/* ---- the TaskInfo ---- */

int launch_task_info(Arena *a, const LaunchOptions *o, const Instance *i, const char *agent_id,
                     const char *hostname, const uint32_t *ports, size_t n_ports, Resource *const *task_res,
                     size_t n_task_res, Resource *const *exec_res, size_t n_exec_res, TaskInfo **ret)
{
        const AppSpec *spec = i->version->spec;
        TaskInfo *t = NEW(a, TaskInfo, mesos__v1__task_info__init);
        EnvBuilder env = { .arena = a };
        char name[APP_ID_MAX + 1];
        int r;

        if (!t)
                return -ENOMEM;
        r = launch_task_name(spec->id, name, sizeof(name));
        if (r < 0)
                return r;
        t->name = arena_printf(a, "%s", name);
        t->task_id = NEW(a, TaskID, mesos__v1__task_id__init);
        t->agent_id = NEW(a, Mesos__V1__AgentID, mesos__v1__agent_id__init);
        if (!t->name || !t->task_id || !t->agent_id)
                return -ENOMEM;
        t->task_id->value = i->task_id;
        t->agent_id->value = (char *)agent_id;
        t->resources = (Resource **)task_res;
        t->n_resources = n_task_res;

        /* The task's command rides on the executor's command line after "--" and its
         * environment in the executor's: Mesos forbids TaskInfo.command together with an
         * ExecutorInfo, and pacer-executor takes the words after its flags as the task
         * (docs/executor.md), without a second round of shell splitting. */
        r = build_env(&env, i, spec, hostname, ports, n_ports);
        if (r < 0)
                return r;

        /* labels, extra checks as labels */
        t->labels = labels_from(a, spec->labels, spec->n_labels, spec->n_checks);
        if (!t->labels)
                return -ENOMEM;
        for (size_t c = 0; c < spec->n_checks; c++) {
                const AppHealthCheck *hc = &spec->checks[c];
                if (c == 0 && hc->max_consecutive_failures > 0) {
                        if (!(t->health_check = mesos_check(a, hc, ports, n_ports)))
                                return -ENOMEM;
                        continue;
                }
                char *k = arena_printf(a, "pacer.check.hc%zu", c), *v = label_check(a, hc, ports, n_ports);
                Label *l = k && v ? label_new(a, k, v) : NULL;
                if (!l)
                        return -ENOMEM;
                t->labels->labels[t->labels->n_labels++] = l;
        }

        /* ports, as Marathon publishes them */
        if (n_ports > 0) {
                Mesos__V1__DiscoveryInfo *d =
                        NEW(a, Mesos__V1__DiscoveryInfo, mesos__v1__discovery_info__init);
                Mesos__V1__Ports *ps = NEW(a, Mesos__V1__Ports, mesos__v1__ports__init);
                if (!d || !ps || !(ps->ports = arena_alloc(a, n_ports * sizeof(Mesos__V1__Port *))))
                        return -ENOMEM;
                d->visibility = MESOS__V1__DISCOVERY_INFO__VISIBILITY__FRAMEWORK;
                d->name = t->name;
                for (size_t p = 0; p < n_ports; p++) {
                        Mesos__V1__Port *port = NEW(a, Mesos__V1__Port, mesos__v1__port__init);
                        if (!port)
                                return -ENOMEM;
                        port->number = ports[p];
                        if (p < spec->n_ports) {
                                port->name = spec->ports[p].name;
                                port->protocol =
                                        (char *)app_port_protocol_to_string(spec->ports[p].protocol);
                                if (spec->ports[p].n_labels &&
                                    !(port->labels = labels_from(a, spec->ports[p].labels,
                                                                 spec->ports[p].n_labels, 0)))
                                        return -ENOMEM;
                        }
                        ps->ports[ps->n_ports++] = port;
                }
                d->ports = ps;
                t->discovery = d;
        }

        if (spec->task_kill_grace_seconds >= 0) {
                Mesos__V1__KillPolicy *kp = NEW(a, Mesos__V1__KillPolicy, mesos__v1__kill_policy__init);
                Mesos__V1__DurationInfo *di =
                        NEW(a, Mesos__V1__DurationInfo, mesos__v1__duration_info__init);
                if (!kp || !di)
                        return -ENOMEM;
                di->nanoseconds = spec->task_kill_grace_seconds * NSEC_PER_SEC;
                kp->grace_period = di;
                t->kill_policy = kp;
        }

        /* the executor: one per task, as Marathon does for custom executors */
        ExecutorInfo *ei = NEW(a, ExecutorInfo, mesos__v1__executor_info__init);
        CommandInfo *ec = NEW(a, CommandInfo, mesos__v1__command_info__init);
        Environment *ee = NEW(a, Environment, mesos__v1__environment__init);
        Mesos__V1__DurationInfo *grace = NEW(a, Mesos__V1__DurationInfo, mesos__v1__duration_info__init);
        if (!ei || !ec || !ee || !grace)
                return -ENOMEM;
        ei->executor_id = NEW(a, Mesos__V1__ExecutorID, mesos__v1__executor_id__init);
        if (!ei->executor_id || !(ei->executor_id->value = arena_printf(a, "pacer.%s", i->task_id)))
                return -ENOMEM;
        ei->has_type = true;
        ei->type = MESOS__V1__EXECUTOR_INFO__TYPE__CUSTOM;
        ei->name = "pacer-executor";
        ei->resources = (Resource **)exec_res;
        ei->n_resources = n_exec_res;
        const char *path = o->executor_path ? o->executor_path : "pacer-executor";
        bool own = spec->executor && *spec->executor; /* the app names its pacer-executor */
        if (own)
                path = spec->executor;
        else if (o->executor_uri) {
                Mesos__V1__CommandInfo__URI *u =
                        NEW(a, Mesos__V1__CommandInfo__URI, mesos__v1__command_info__uri__init);
                const char *base = strrchr(o->executor_uri, '/');
                if (!u || !(ec->uris = arena_alloc(a, sizeof(*ec->uris))))
                        return -ENOMEM;
                u->value = (char *)o->executor_uri;
                u->has_executable = u->has_extract = true;
                u->executable = true;
                u->extract = false;
                ec->uris[0] = u;
                ec->n_uris = 1;
                path = arena_printf(a, "./%s", base ? base + 1 : o->executor_uri);
                if (!path)
                        return -ENOMEM;
        }
        size_t n_args = 0;
        while (o->executor_args && o->executor_args[n_args])
                n_args++;
        ec->has_shell = true;
        ec->shell = false;
        ec->value = (char *)path;
        ec->user = spec->user;
        ec->arguments = arena_alloc(a, (n_args + 5 + spec->n_args) * sizeof(char *));
        if (!ec->arguments)
                return -ENOMEM;
        ec->arguments[ec->n_arguments++] = (char *)path;
        for (size_t k = 0; k < n_args; k++)
                ec->arguments[ec->n_arguments++] = (char *)o->executor_args[k];
        ec->arguments[ec->n_arguments++] = "--";
        if (spec->cmd) {
                ec->arguments[ec->n_arguments++] = "/bin/sh";
                ec->arguments[ec->n_arguments++] = "-c";
                ec->arguments[ec->n_arguments++] = spec->cmd;
        } else
                for (size_t k = 0; k < spec->n_args; k++)
                        ec->arguments[ec->n_arguments++] = spec->args[k];
        /* the executor's own settings first; the task's variables win where names collide */
        EnvBuilder xenv = { .arena = a };
        for (size_t k = 0; o->executor_env && o->executor_env[k]; k++) {
                const char *eq = strchr(o->executor_env[k], '=');
                char *n2 = eq ? arena_printf(a, "%.*s", (int)(eq - o->executor_env[k]), o->executor_env[k])
                              : NULL;
                if (!n2 || env_add(&xenv, n2, eq + 1) < 0)
                        return -ENOMEM;
        }
        for (size_t k = 0; k < env.n; k++)
                if (env_add(&xenv, env.vars[k]->name, env.vars[k]->value) < 0)
                        return -ENOMEM;
        ee->variables = xenv.vars;
        ee->n_variables = xenv.n;
        ec->environment = ee;
        ei->command = ec;
        grace->nanoseconds =
                MAX(EXECUTOR_GRACE_MIN_NS,
                    (spec->task_kill_grace_seconds >= 0 ? spec->task_kill_grace_seconds * NSEC_PER_SEC
                                                        : 3 * NSEC_PER_SEC) +
                            EXECUTOR_GRACE_EXTRA_NS);
        ei->shutdown_grace_period = grace;
        t->executor = ei;
        *ret = t;
        return 0;
}
