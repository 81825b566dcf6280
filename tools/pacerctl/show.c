/* SPDX-License-Identifier: Apache-2.0 */
#include "show.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "client.h"
#include "duration.h"
#include "json.h"
#include "macro.h"
#include "table.h"
#include "term.h"

/* Room for one rendered list cell (ids, ports) before the table caps it. */
#define SHOW_CELL_MAX 1024
/* Width of the key column of `app` and `info`. */
#define SHOW_KEY_WIDTH 14

static const char *or_dash(const char *s)
{
        return s && *s ? s : NULL;
}

/* "KEY  value" with the value sanitized. */
static void print_kv(Ctl *ctl, const char *key, const char *value)
{
        Buf b = BUF_INIT(SHOW_CELL_MAX * 4);

        if (term_sanitize(&b, value && *value ? value : "-", SHOW_CELL_MAX * 4 - 8) < 0)
                buf_reset(&b);
        fprintf(ctl->out, "%-*s %s\n", SHOW_KEY_WIDTH, key, buf_str(&b));
        buf_done(&b);
}

static void print_kvf(Ctl *ctl, const char *key, const char *fmt, ...) _printf_(3, 4);
static void print_kvf(Ctl *ctl, const char *key, const char *fmt, ...)
{
        char text[SHOW_CELL_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        print_kv(ctl, key, text);
}

static void format_number(double v, char *buf, size_t size)
{
        snprintf(buf, size, "%.15g", v);
}

/* The string members `key` of an array of objects (or the strings of an
 * array when key is NULL), joined by ", ". */
static void join(const json_t *arr, const char *key, Buf *out)
{
        size_t i;

        for (i = 0; i < json_array_size(arr); i++) {
                json_t *v = json_array_get(arr, i);
                const char *s = key ? api_str(v, key) : json_string_value(v);
                char num[32];

                if (!s && json_is_integer(v)) {
                        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
                        s = num;
                }
                if (!s)
                        continue;
                if (out->len > 0 && buf_puts(out, ", ") < 0)
                        return;
                if (buf_puts(out, s) < 0)
                        return;
        }
}

static int list_request(Ctl *ctl, const char *path, const ApiTarget *t, const char *member,
                        json_t **ret_root, json_t **ret_list)
{
        json_t *j = NULL, *list;
        Reply reply = {};
        int r;

        r = api_call(ctl, "GET", path, NULL, t, &reply, ctl->json ? NULL : &j);
        if (r < 0)
                return r;
        if (ctl->json) {
                api_print_raw(ctl, &reply);
                client_reply_done(&reply);
                *ret_root = NULL;
                *ret_list = NULL;
                return 0;
        }
        client_reply_done(&reply);
        list = member ? json_object_get(j, member) : j;
        if (!json_is_array(list)) {
                term_error("pacer-scheduler answered GET %s without %s%s%s list", path,
                           member ? "an \"" : "a", member ? member : "", member ? "\"" : "");
                json_decref(j);
                return -EBADMSG;
        }
        *ret_root = j;
        *ret_list = list;
        return 0;
}

/* apps ------------------------------------------------------------------------------------------------ */

static void app_instances(const json_t *app, char *buf, size_t size)
{
        json_t *reg = json_object_get(app, "tasksRegistered");
        char registered[24] = "-";

        if (json_is_integer(reg))
                snprintf(registered, sizeof(registered), "%lld", (long long)json_integer_value(reg));
        snprintf(buf, size, "%lld/%lld/%s/%lld", (long long)api_int(app, "tasksRunning", 0),
                 (long long)api_int(app, "tasksHealthy", 0), registered,
                 (long long)api_int(app, "instances", 0));
}

static bool app_crash_loop(const json_t *app)
{
        return json_is_true(json_object_get(json_object_get(app, "pacer"), "crashLoop"));
}

int show_apps(Ctl *ctl, const CmdArgs *a)
{
        static const char *const headers[] = { "ID", "INSTANCES", "CPUS", "MEM", "VERSION", "DEPLOYMENTS" };
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_free_ char *path = NULL;
        Table *t = NULL;
        json_t *apps;
        size_t i;
        int r;

        if (a->argc > 0) {
                _cleanup_free_ char *id = api_app_id(a->argv[0]), *e = id ? api_escape(id) : NULL;
                if (!e || asprintf(&path, "/v2/apps?id=%s", e) < 0)
                        return -ENOMEM;
        }
        r = list_request(ctl, path ? path : "/v2/apps", NULL, "apps", &root, &apps);
        if (r < 0 || ctl->json)
                return r;
        if (json_array_size(apps) == 0) {
                fprintf(ctl->out, "no apps%s\n", a->argc > 0 ? " with that id prefix" : "");
                return 0;
        }
        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return -ENOMEM;
        for (i = 0; i < json_array_size(apps); i++) {
                json_t *app = json_array_get(apps, i);
                char instances[96], cpus[32], mem[32];
                Buf deps = BUF_INIT(SHOW_CELL_MAX);

                app_instances(app, instances, sizeof(instances));
                format_number(api_num(app, "cpus", 0), cpus, sizeof(cpus));
                format_number(api_num(app, "mem", 0), mem, sizeof(mem));
                join(json_object_get(app, "deployments"), "id", &deps);
                r = table_add_row(t, (const char *const[]){ api_str(app, "id"), instances, cpus, mem,
                                                            or_dash(api_str(app, "version")),
                                                            or_dash(deps.data) });
                buf_done(&deps);
                if (r < 0)
                        break;
                if (app_crash_loop(app))
                        table_color_cell(t, 0, TERM_COLOR_RED);
                else if (json_array_size(json_object_get(app, "deployments")) > 0)
                        table_color_cell(t, 5, TERM_COLOR_YELLOW);
        }
        if (r >= 0)
                table_print(t, ctl->out, ctl->out_color);
        table_free(t);
        return r;
}

/* tasks ----------------------------------------------------------------------------------------------- */

/* "TASK_RUNNING" → "running". */
static void task_state(const char *state, char *buf, size_t size)
{
        if (!state) {
                snprintf(buf, size, "-");
                return;
        }
        if (strneq(state, "TASK_", STRLEN("TASK_")))
                state += STRLEN("TASK_");
        snprintf(buf, size, "%s", state);
        for (char *p = buf; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
}

static TermColor state_color(const char *state)
{
        static const char *const bad[] = { "failed", "lost",        "error",  "dropped",
                                           "gone",   "unreachable", "stopped" };

        if (streq(state, "running") || streq(state, "succeeded") || streq(state, "yes") ||
            streq(state, "registered"))
                return TERM_COLOR_GREEN;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (streq(state, bad[i]))
                        return TERM_COLOR_RED;
        if (streq(state, "no"))
                return TERM_COLOR_RED;
        return TERM_COLOR_NONE;
}

static const char *task_healthy(const json_t *task)
{
        json_t *results = json_object_get(task, "healthCheckResults");
        size_t i;

        if (json_array_size(results) == 0)
                return NULL;
        for (i = 0; i < json_array_size(results); i++)
                if (!json_is_true(json_object_get(json_array_get(results, i), "alive")))
                        return "no";
        return "yes";
}

static int print_tasks(Ctl *ctl, const json_t *tasks)
{
        static const char *const headers[] = {
                "ID", "APP", "HOST", "PORTS", "STATE", "HEALTHY", "REGISTERED"
        };
        Table *t;

        size_t i;
        int r = 0;

        if (json_array_size(tasks) == 0) {
                fprintf(ctl->out, "no tasks\n");
                return 0;
        }
        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return -ENOMEM;
        for (i = 0; i < json_array_size(tasks); i++) {
                json_t *task = json_array_get(tasks, i);
                const char *healthy = task_healthy(task);
                const char *registered = api_str(json_object_get(task, "registration"), "state");
                Buf ports = BUF_INIT(SHOW_CELL_MAX);
                char state[64];

                task_state(api_str(task, "state"), state, sizeof(state));
                join(json_object_get(task, "ports"), NULL, &ports);
                r = table_add_row(t,
                                  (const char *const[]){ api_str(task, "id"), api_str(task, "appId"),
                                                         or_dash(api_str(task, "host")), or_dash(ports.data),
                                                         state, healthy, or_dash(registered) });
                buf_done(&ports);
                if (r < 0)
                        break;
                table_color_cell(t, 4, state_color(state));
                if (healthy)
                        table_color_cell(t, 5, state_color(healthy));
                if (registered)
                        table_color_cell(t, 6, state_color(registered));
        }
        if (r >= 0)
                table_print(t, ctl->out, ctl->out_color);
        table_free(t);
        return r;
}

int show_tasks(Ctl *ctl, const CmdArgs *a)
{
        _cleanup_(json_decrefp) json_t *root = NULL;
        _cleanup_free_ char *path = NULL, *id = NULL;
        json_t *tasks;
        int r;

        if (a->argc > 0) {
                id = api_app_id(a->argv[0]);
                path = id ? api_app_path("/v2/apps", id, "/tasks") : NULL;
                if (!path)
                        return -ENOMEM;
        }
        r = list_request(ctl, path ? path : "/v2/tasks", &(ApiTarget){ .app = id }, "tasks", &root, &tasks);
        if (r < 0 || ctl->json)
                return r;
        return print_tasks(ctl, tasks);
}

/* app ------------------------------------------------------------------------------------------------- */

static void print_health_checks(Ctl *ctl, const json_t *checks)
{
        Buf b = BUF_INIT(SHOW_CELL_MAX);

        size_t i;

        for (i = 0; i < json_array_size(checks); i++) {
                json_t *hc = json_array_get(checks, i);
                const char *protocol = api_str(hc, "protocol"), *path = api_str(hc, "path");
                const char *command = api_str(json_object_get(hc, "command"), "value");

                if (b.len > 0)
                        (void)buf_puts(&b, ", ");
                (void)buf_printf(&b, "%s", protocol ? protocol : "HTTP");
                if (path)
                        (void)buf_printf(&b, " %s", path);
                if (command)
                        (void)buf_printf(&b, " %s", command);
                if (json_object_get(hc, "portIndex"))
                        (void)buf_printf(&b, " on port index %lld", (long long)api_int(hc, "portIndex", 0));
                if (json_object_get(hc, "intervalSeconds"))
                        (void)buf_printf(&b, " every %llds", (long long)api_int(hc, "intervalSeconds", 0));
        }
        print_kv(ctl, "HEALTH CHECKS", b.len ? buf_str(&b) : "none");
        buf_done(&b);
}

static void print_app(Ctl *ctl, const json_t *app)
{
        json_t *args = json_object_get(app, "args"), *labels = json_object_get(app, "labels");
        json_t *ports = json_object_get(app, "portDefinitions"),
               *constraints = json_object_get(app, "constraints");
        json_t *pacer = json_object_get(app, "pacer");
        Buf b = BUF_INIT(SHOW_CELL_MAX);
        char num[32];
        size_t i;

        print_kv(ctl, "ID", api_str(app, "id"));
        if (api_str(app, "cmd"))
                print_kv(ctl, "COMMAND", api_str(app, "cmd"));
        else {
                for (i = 0; i < json_array_size(args); i++) {
                        if (b.len > 0)
                                (void)buf_putc(&b, ' ');
                        (void)buf_puts(&b, strempty(json_string_value(json_array_get(args, i))));
                }
                print_kv(ctl, "ARGS", buf_str(&b));
                buf_reset(&b);
        }
        print_kvf(ctl, "INSTANCES",
                  "%lld desired: %lld running, %lld healthy, %lld registered, %lld staged, %lld unhealthy",
                  (long long)api_int(app, "instances", 0), (long long)api_int(app, "tasksRunning", 0),
                  (long long)api_int(app, "tasksHealthy", 0), (long long)api_int(app, "tasksRegistered", 0),
                  (long long)api_int(app, "tasksStaged", 0), (long long)api_int(app, "tasksUnhealthy", 0));
        format_number(api_num(app, "cpus", 0), num, sizeof(num));
        print_kv(ctl, "CPUS", num);
        format_number(api_num(app, "mem", 0), num, sizeof(num));
        print_kvf(ctl, "MEM", "%s MB", num);
        format_number(api_num(app, "disk", 0), num, sizeof(num));
        print_kvf(ctl, "DISK", "%s MB", num);
        for (i = 0; i < json_array_size(ports); i++) {
                json_t *pd = json_array_get(ports, i);

                if (b.len > 0)
                        (void)buf_puts(&b, ", ");
                (void)buf_printf(&b, "%lld", (long long)api_int(pd, "port", 0));
                if (api_str(pd, "name"))
                        (void)buf_printf(&b, " (%s)", api_str(pd, "name"));
        }
        print_kv(ctl, "PORTS", b.len ? buf_str(&b) : "none");
        buf_reset(&b);
        print_health_checks(ctl, json_object_get(app, "healthChecks"));
        for (i = 0; i < json_array_size(constraints); i++) {
                json_t *c = json_array_get(constraints, i);

                if (b.len > 0)
                        (void)buf_puts(&b, ", ");
                for (size_t k = 0; k < json_array_size(c); k++)
                        (void)buf_printf(&b, "%s%s", k ? ":" : "",
                                         strempty(json_string_value(json_array_get(c, k))));
        }
        print_kv(ctl, "CONSTRAINTS", b.len ? buf_str(&b) : "none");
        buf_reset(&b);
        for (void *it = json_object_iter(labels); it; it = json_object_iter_next(labels, it)) {
                const char *key = json_object_iter_key(it);
                json_t *v = json_object_iter_value(it);

                if (b.len > 0)
                        (void)buf_puts(&b, ", ");
                (void)buf_printf(&b, "%s=%s", key, strempty(json_string_value(v)));
        }
        print_kv(ctl, "LABELS", b.len ? buf_str(&b) : "none");
        buf_reset(&b);
        print_kv(ctl, "VERSION", api_str(app, "version"));
        join(json_object_get(app, "deployments"), "id", &b);
        print_kv(ctl, "DEPLOYMENTS", b.len ? buf_str(&b) : "none");
        buf_reset(&b);
        if (api_str(pacer, "lastFailure"))
                print_kvf(ctl, "LAST FAILURE", "%s%s%s", api_str(pacer, "lastFailure"),
                          api_str(pacer, "lastFailureAt") ? " at " : "",
                          strempty(api_str(pacer, "lastFailureAt")));
        if (app_crash_loop(app))
                print_kv(ctl, "CRASH LOOP",
                         "yes: launches stopped (fix the app, then deploy or `pacerctl deployment retry`)");
        buf_done(&b);
}

int show_app(Ctl *ctl, const CmdArgs *a)
{
        _cleanup_(json_decrefp) json_t *j = NULL, *tasks = NULL;
        _cleanup_free_ char *id = api_app_id(a->argv[0]), *path = NULL, *tasks_path = NULL;
        ApiTarget t = { .app = id };
        json_t *app, *list;
        Reply reply = {};
        int r;

        if (!id)
                return -ENOMEM;
        path = api_app_path("/v2/apps", id, NULL);
        tasks_path = api_app_path("/v2/apps", id, "/tasks");
        if (!path || !tasks_path)
                return -ENOMEM;
        r = api_call(ctl, "GET", path, NULL, &t, &reply, ctl->json ? NULL : &j);
        if (r < 0)
                return r;
        if (ctl->json) {
                api_print_raw(ctl, &reply);
                client_reply_done(&reply);
                return 0;
        }
        client_reply_done(&reply);
        app = json_object_get(j, "app");
        if (!json_is_object(app)) {
                term_error("pacer-scheduler answered GET %s without an \"app\" object", path);
                return -EBADMSG;
        }
        print_app(ctl, app);
        r = api_call(ctl, "GET", tasks_path, NULL, &t, NULL, &tasks);
        if (r < 0)
                return r;
        list = json_object_get(tasks, "tasks");
        fputc('\n', ctl->out);
        return print_tasks(ctl, list);
}

/* deployments ----------------------------------------------------------------------------------------- */

/* "ScaleApplication" → "scale". */
static void step_action(const char *action, bool rollback, char *buf, size_t size)
{
        size_t len;

        snprintf(buf, size, "%s", action ? action : "-");
        len = strlen(buf);
        if (len > STRLEN("Application") && streq(buf + len - STRLEN("Application"), "Application"))
                buf[len - STRLEN("Application")] = 0;
        for (char *p = buf; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        if (rollback && strlen(buf) + STRLEN(" (rollback)") < size)
                strcat(buf, " (rollback)");
}

static int add_deployment(Table *t, const json_t *d)
{
        json_t *apps = json_object_get(d, "apps"), *affected = json_object_get(d, "affectedApps");
        char step[48];
        size_t i;
        int r = 0;

        snprintf(step, sizeof(step), "%lld/%lld", (long long)api_int(d, "currentStep", 0),
                 (long long)api_int(d, "totalSteps", 0));
        if (json_array_size(apps) > 0) {
                for (i = 0; i < json_array_size(apps); i++) {
                        json_t *v = json_array_get(apps, i);
                        char action[64];
                        const char *state = api_str(v, "state");

                        step_action(api_str(v, "action"), json_is_true(json_object_get(v, "rollback")),
                                    action, sizeof(action));
                        r = table_add_row(t, (const char *const[]){ i == 0 ? api_str(d, "id") : "",
                                                                    i == 0 ? step : "", api_str(v, "appId"),
                                                                    action, state,
                                                                    or_dash(api_str(v, "reason")) });
                        if (r < 0)
                                return r;
                        if (state)
                                table_color_cell(t, 4, state_color(state));
                }
                return 0;
        }
        /* a Marathon-shaped answer without Pacer's per-app states */
        for (i = 0; i < json_array_size(affected); i++) {
                json_t *v = json_array_get(affected, i);
                r = table_add_row(t,
                                  (const char *const[]){ i == 0 ? api_str(d, "id") : "", i == 0 ? step : "",
                                                         json_string_value(v), NULL, NULL, NULL });
                if (r < 0)
                        return r;
        }
        if (json_array_size(affected) == 0)
                r = table_add_row(t,
                                  (const char *const[]){ api_str(d, "id"), step, NULL, NULL, NULL, NULL });
        return r;
}

int show_deployments(Ctl *ctl, const CmdArgs *a)
{
        static const char *const headers[] = { "ID", "STEP", "APP", "ACTION", "STATE", "REASON" };
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_t *list;
        Table *t;
        size_t i;
        int r;

        r = list_request(ctl, "/v2/deployments", NULL, NULL, &root, &list);
        if (r < 0 || ctl->json)
                return r;
        if (json_array_size(list) == 0) {
                fprintf(ctl->out, "no deployments\n");
                return 0;
        }
        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return -ENOMEM;
        for (i = 0; i < json_array_size(list); i++) {
                json_t *d = json_array_get(list, i);
                r = add_deployment(t, d);
                if (r < 0)
                        break;
        }
        if (r >= 0)
                table_print(t, ctl->out, ctl->out_color);
        table_free(t);
        return r;
}

/* info, ping ------------------------------------------------------------------------------------------ */

int show_info(Ctl *ctl, const CmdArgs *a)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        json_t *mc, *pacer;
        Reply reply = {};
        int r;

        r = api_call(ctl, "GET", "/v2/info", NULL, NULL, &reply, ctl->json ? NULL : &j);
        if (r < 0)
                return r;
        if (ctl->json) {
                api_print_raw(ctl, &reply);
                client_reply_done(&reply);
                return 0;
        }
        client_reply_done(&reply);
        mc = json_object_get(j, "marathon_config");
        pacer = json_object_get(j, "pacer");
        print_kv(ctl, "URL", client_base_url(ctl->client));
        print_kvf(ctl, "NAME", "%s %s", strna(api_str(j, "name")), strempty(api_str(j, "version")));
        print_kv(ctl, "LEADER", api_str(j, "leader"));
        print_kv(ctl, "FRAMEWORK ID", api_str(j, "frameworkId"));
        print_kv(ctl, "MASTER", api_str(mc, "master"));
        print_kv(ctl, "MODE", api_str(pacer, "mode"));
        print_kv(ctl, "STORE", api_str(pacer, "store"));
        print_kv(ctl, "CONSUL", api_str(pacer, "consul"));
        if (json_is_boolean(json_object_get(pacer, "connected")))
                print_kv(ctl, "CONNECTED", json_is_true(json_object_get(pacer, "connected")) ? "yes" : "no");
        return 0;
}

int show_ping(Ctl *ctl, const CmdArgs *a)
{
        struct timespec t0, t1;
        Reply reply = {};
        Buf answer = BUF_INIT(SHOW_CELL_MAX);
        double ms;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = api_call(ctl, "GET", "/ping", NULL, NULL, &reply, NULL);
        if (r < 0)
                return r;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        while (reply.body.len > 0 && strchr("\r\n ", reply.body.data[reply.body.len - 1]))
                reply.body.data[--reply.body.len] = 0;
        (void)term_sanitize(&answer, buf_str(&reply.body), SHOW_CELL_MAX - 8);
        if (ctl->json) {
                _cleanup_(json_decrefp) json_t *j =
                        json_pack("{s:s, s:s, s:f}", "url", client_base_url(ctl->client), "answer",
                                  buf_str(&answer), "ms", ms);
                _cleanup_free_ char *text = j ? json_dumps_compact(j) : NULL;
                if (!text)
                        r = -ENOMEM;
                else
                        fprintf(ctl->out, "%s\n", text);
        } else
                fprintf(ctl->out, "%s from %s in %.1f ms\n",
                        answer.len ? buf_str(&answer) : "(empty answer)", client_base_url(ctl->client), ms);
        buf_done(&answer);
        client_reply_done(&reply);
        return r;
}
