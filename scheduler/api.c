/* SPDX-License-Identifier: Apache-2.0 */
#include "api.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "httpd.h"
#include "json.h"
#include "log.h"

#define API_APPS_BODY_MAX (1024u * 1024)
#define API_BATCH_MAX     1000 /* apps in one PUT /v2/apps */
#define API_QUEUE_MAX     10000
#define LIST_BUF_MAX      (256u * 1024 * 1024) /* GET /v2/apps with 10,000 apps is tens of MiB */

struct Api {
        Scheduler *s;
        HttpdServer *httpd;
        EventBus *events;
        Auth *auth; /* NULL: the API is open */
        char mode[16];
};

/* What a route needs (HttpdRoute.action): reading, changing state, or nothing (/ping, for load
 * balancers' probes). */
enum {
        ACCESS_READ,
        ACCESS_WRITE,
        ACCESS_OPEN,
};

static void iso_time(double t, char *buf, size_t size)
{
        time_t sec = (time_t)t;
        struct tm tm;
        if (t <= 0) {
                snprintf(buf, size, "%s", "");
                return;
        }
        gmtime_r(&sec, &tm);
        size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%03dZ", (int)((t - (double)sec) * 1000) % 1000);
}

/* ---- JSON for apps and tasks ---- */

static void app_counts(const App *app, uint32_t *running, uint32_t *staged, uint32_t *healthy,
                       uint32_t *unhealthy, uint32_t *registered)
{
        *running = *staged = *healthy = *unhealthy = *registered = 0;
        for (const Instance *i = app->instances; i; i = i->next) {
                if (i->state == TASK_STATE(TASK_STAGING) || i->state == TASK_STATE(TASK_STARTING))
                        (*staged)++;
                if (i->state != TASK_STATE(TASK_RUNNING))
                        continue; /* health and registration count for running tasks only */
                (*running)++;
                if (i->health == HEALTH_HEALTHY)
                        (*healthy)++;
                else if (i->health == HEALTH_UNHEALTHY)
                        (*unhealthy)++;
                if (i->registration == REGISTRATION_REGISTERED)
                        (*registered)++;
        }
}

/* The canonical definition with the runtime fields spliced in: no re-serialisation of the spec. */
static int app_json_append(Buf *out, const App *app)
{
        const AppSpec *spec = app->current->spec;
        uint32_t running, staged, healthy, unhealthy, registered;
        char when[40];
        int r;

        if (spec->json_len < 2)
                return -EINVAL;
        app_counts(app, &running, &staged, &healthy, &unhealthy, &registered);
        r = buf_append(out, spec->json, spec->json_len - 1); /* without the closing brace */
        if (r >= 0)
                r = buf_printf(
                        out,
                        ",\"tasksRunning\":%u,\"tasksStaged\":%u,\"tasksHealthy\":%u,\"tasksUnhealthy\":%u,"
                        "\"tasksRegistered\":%u,\"deployments\":[",
                        running, staged, healthy, unhealthy, registered);
        if (r >= 0 && app->deployment)
                r = buf_printf(out, "{\"id\":\"%s\"}", app->deployment->id);
        if (r >= 0)
                r = buf_printf(out, "],\"pacer\":{\"crashLoop\":%s", app->crash_loop ? "true" : "false");
        if (r >= 0 && app->last_failure) {
                _cleanup_(json_decrefp) json_t *text = json_string(app->last_failure);
                _cleanup_free_ char *msg = text ? json_dumps(text, JSON_ENCODE_ANY) : NULL;
                iso_time(app->last_failure_at, when, sizeof(when));
                if (msg)
                        r = buf_printf(out, ",\"lastFailure\":%s,\"lastFailureAt\":\"%s\"", msg, when);
        }
        if (r >= 0)
                r = buf_puts(out, "}}");
        return r;
}

static json_t *task_json(const Instance *i)
{
        char staged[40], started[40];
        json_t *ports = json_array(), *checks = json_array(), *j;
        const AppSpec *spec = i->version ? i->version->spec : NULL;

        for (size_t p = 0; ports && p < i->n_ports; p++)
                json_array_append_new(ports, json_integer(i->ports[p]));
        if (spec && spec->n_checks > 0 && i->state == TASK_STATE(TASK_RUNNING) &&
            i->health != HEALTH_UNKNOWN)
                json_array_append_new(checks,
                                      json_pack("{s:b, s:i, s:s?, s:s}", "alive",
                                                i->health == HEALTH_HEALTHY, "consecutiveFailures",
                                                (json_int_t)i->consecutive_failures, "lastFailureCause",
                                                i->health == HEALTH_UNHEALTHY ? i->last_message : NULL,
                                                "taskId", i->task_id));
        iso_time(i->staged_at, staged, sizeof(staged));
        iso_time(i->started_at, started, sizeof(started));
        j = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s?, s:s, s:o, s:{s:s, s:s?}}", "id", i->task_id,
                      "appId", i->app ? i->app->id : "", "host", i->agent ? i->agent->hostname : "", "ports",
                      ports, "slaveId", i->agent ? i->agent->id : "", "state",
                      task_state_to_string(i->state), "stagedAt", staged, "startedAt",
                      i->started_at > 0 ? started : NULL, "version", spec ? spec->version : "",
                      "healthCheckResults", checks, "registration", "state",
                      strna(registration_state_to_string(i->registration)), "lastError", i->last_message);
        return j;
}

static json_t *app_tasks_json(const App *app)
{
        json_t *arr = json_array();
        for (const Instance *i = app->instances; arr && i; i = i->next)
                json_array_append_new(arr, task_json(i));
        return arr;
}

/* ---- request helpers ---- */

static int respond_result(HttpdRequest *req, const SchedulerResult *res)
{
        unsigned status = res->kind == SCHED_ERR_NOT_FOUND  ? 404
                          : res->kind == SCHED_ERR_CONFLICT ? 409
                          : res->kind == SCHED_ERR_EXISTS   ? 409
                          : res->kind == SCHED_ERR_STORE    ? 503
                          : res->kind == SCHED_ERR_INVALID  ? 422
                                                            : 500;
        if (res->kind == SCHED_ERR_CONFLICT && res->n_conflicts > 0) {
                json_t *deps = json_array();
                for (size_t i = 0; deps && i < res->n_conflicts; i++)
                        json_array_append_new(deps, json_pack("{s:s}", "id", res->conflicts[i]));
                _cleanup_(json_decrefp) json_t *j =
                        json_pack("{s:s, s:o}", "message", res->message, "deployments", deps);
                return httpd_respond_json(req, status, j);
        }
        return httpd_respond_error(req, status, "%s", res->message);
}

static int respond_errors(HttpdRequest *req, const JsonErrors *errs)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(1024 * 1024);
        if (json_errors_render(errs, &b) < 0)
                return httpd_respond_error(req, 422, "Object is not valid");
        return httpd_respond_buf(req, 422, "application/json", b.data, b.len);
}

/* Parses the body; answers 400 itself and returns -EINVAL when it is not JSON. */
static int parse_body(HttpdRequest *req, json_t **ret)
{
        PacerError err = { "" };
        size_t len;
        const char *body = httpd_request_body(req, &len);

        if (!body || len == 0) {
                httpd_respond_error(req, 400, "the request has no body: send the JSON document");
                return -EINVAL;
        }
        if (json_parse(body, len, NULL, ret, &err) < 0) {
                _cleanup_(json_decrefp) json_t *j =
                        json_pack("{s:s, s:[{s:s, s:[s]}]}", "message", "Invalid JSON", "details", "path",
                                  "/", "errors", err.msg);
                httpd_respond_json(req, 400, j);
                return -EINVAL;
        }
        return 0;
}

static bool query_flag(HttpdRequest *req, const char *name)
{
        bool v = false;
        return httpd_request_query_bool(req, name, &v) >= 0 && v;
}

/* "{version, deploymentId}" as Marathon answers changes. */
static int respond_change(HttpdRequest *req, unsigned status, const SchedulerResult *res)
{
        char version[40];

        if (!*res->deployment_id) {
                iso_time(mesos_now(), version, sizeof(version));
                _cleanup_(json_decrefp) json_t *j =
                        json_pack("{s:s, s:n}", "version", version, "deploymentId");
                return httpd_respond_json(req, status, j);
        }
        httpd_request_add_header(req, "Marathon-Deployment-Id", res->deployment_id);
        _cleanup_(json_decrefp) json_t *j =
                json_pack("{s:s, s:s}", "version", res->version, "deploymentId", res->deployment_id);
        return httpd_respond_json(req, status, j);
}

static char *normalize_id(HttpdRequest *req, const char *raw)
{
        PacerError err = { "" };
        char *id = NULL;

        if (app_id_normalize(raw, NULL, &id, &err) < 0) {
                _cleanup_(json_decrefp) json_t *j =
                        json_pack("{s:s, s:[{s:s, s:[s]}]}", "message", "Object is not valid", "details",
                                  "path", "/id", "errors", err.msg);
                httpd_respond_json(req, 422, j);
                return NULL;
        }
        return id;
}

/* ---- apps ---- */

static bool label_selected(const App *app, const char *sel)
{
        const AppSpec *spec = app->current->spec;
        const char *op = strstr(sel, "==");
        bool neg = false;
        size_t klen;

        if (!op && (op = strstr(sel, "!=")))
                neg = true;
        klen = op ? (size_t)(op - sel) : strlen(sel);
        for (size_t i = 0; i < spec->n_labels; i++) {
                if (strlen(spec->labels[i].key) != klen || !strneq(spec->labels[i].key, sel, klen))
                        continue;
                if (!op)
                        return true;
                return streq(spec->labels[i].value, op + 2) != neg;
        }
        return op && neg;
}

static int handle_apps_list(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        State *st = scheduler_state(a->s);
        const char *prefix = httpd_request_query(req, "id"), *label = httpd_request_query(req, "label");
        Buf b = BUF_INIT(LIST_BUF_MAX);
        bool first = true;
        const char *k;
        void *v;
        size_t it = 0;
        int r = buf_puts(&b, "{\"apps\":[");

        while (r >= 0 && hashmap_next(&st->apps, &it, &k, &v)) {
                App *app = v;
                if (prefix && !strneq(app->id, prefix, strlen(prefix)))
                        continue;
                if (label && !label_selected(app, label))
                        continue;
                if (!first)
                        r = buf_putc(&b, ',');
                first = false;
                if (r >= 0)
                        r = app_json_append(&b, app);
        }
        if (r >= 0)
                r = buf_puts(&b, "]}");
        if (r < 0) {
                buf_done(&b);
                return httpd_respond_error(req, 500, "cannot render the app list: %s", strerror(-r));
        }
        size_t len;
        char *data = buf_steal(&b, &len);
        return httpd_respond_take(req, 200, "application/json", data, len);
}

static int handle_app_get(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_free_ char *id = normalize_id(req, httpd_request_param(req, "id"));
        _cleanup_(buf_done) Buf b = BUF_INIT(4 * 1024 * 1024);
        App *app;

        if (!id)
                return 0;
        app = state_app(scheduler_state(a->s), id);
        if (!app)
                return httpd_respond_error(req, 404, "App '%s' does not exist", id);
        if (buf_puts(&b, "{\"app\":") < 0 || app_json_append(&b, app) < 0 || buf_putc(&b, '}') < 0)
                return httpd_respond_error(req, 500, "cannot render the app");
        return httpd_respond_buf(req, 200, "application/json", b.data, b.len);
}

static int handle_apps_create(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonErrors errs = { 0 };
        SchedulerResult res;
        Deployment *d = NULL;
        AppSpec *spec = NULL;
        App *app;

        if (parse_body(req, &j) < 0)
                return 0;
        if (!json_is_object(j))
                return httpd_respond_error(req, 422,
                                           "expected one app object (use PUT /v2/apps for a batch)");
        if (app_spec_from_json(j, NULL, &spec, &errs) < 0)
                return respond_errors(req, &errs);
        if (state_app(scheduler_state(a->s), spec->id)) {
                httpd_respond_error(req, 409, "An app with id [%s] already exists.", spec->id);
                app_spec_free(spec);
                return 0;
        }
        AppChange c = { .spec = spec };
        if (scheduler_apply(a->s, &c, 1, false, &d, &res) < 0) {
                app_spec_free(c.spec);
                return respond_result(req, &res);
        }
        app = state_app(scheduler_state(a->s), spec->id);
        _cleanup_(buf_done) Buf b = BUF_INIT(4 * 1024 * 1024);
        char location[APP_ID_MAX + 16];
        snprintf(location, sizeof(location), "/v2/apps%s", spec->id);
        httpd_request_add_header(req, "Location", location);
        if (*res.deployment_id)
                httpd_request_add_header(req, "Marathon-Deployment-Id", res.deployment_id);
        if (!app || app_json_append(&b, app) < 0)
                return respond_change(req, 201, &res);
        return httpd_respond_buf(req, 201, "application/json", b.data, b.len);
}

/* A definition for an update: merged into the current one (PATCH, and PUT
 * unless partialUpdate=false), or taken whole. */
static int build_update(Api *a, const json_t *j, const char *id, bool merge, const JsonPath *at,
                        AppSpec **ret, JsonErrors *errs)
{
        App *app = state_app(scheduler_state(a->s), id);
        _cleanup_(json_decrefp) json_t *copy = json_deep_copy(j);

        if (!copy)
                return -ENOMEM;
        if (!json_object_get(copy, "id"))
                json_object_set_new(copy, "id", json_string(id));
        if (app && merge)
                return app_spec_merge(app->current->spec, copy, at, ret, errs);
        return app_spec_from_json(copy, at, ret, errs);
}

static int handle_app_update(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_free_ char *id = normalize_id(req, httpd_request_param(req, "id"));
        _cleanup_(json_decrefp) json_t *j = NULL;
        bool patch = streq(httpd_request_method(req), "PATCH");
        bool partial = true, existed;
        JsonErrors errs = { 0 };
        SchedulerResult res;
        Deployment *d = NULL;
        AppSpec *spec = NULL;

        if (!id || parse_body(req, &j) < 0)
                return 0;
        if (!json_is_object(j))
                return httpd_respond_error(req, 422, "expected an app object");
        if (!patch)
                httpd_request_query_bool(req, "partialUpdate", &partial);
        existed = state_app(scheduler_state(a->s), id) != NULL;
        if (patch && !existed)
                return httpd_respond_error(req, 404, "App '%s' does not exist", id);
        if (build_update(a, j, id, patch || partial, NULL, &spec, &errs) < 0)
                return respond_errors(req, &errs);
        if (!streq(spec->id, id)) {
                app_spec_free(spec);
                return httpd_respond_error(req, 422, "the id in the body (%s) differs from the URL's (%s)",
                                           spec->id, id);
        }
        AppChange c = { .spec = spec };
        if (scheduler_apply(a->s, &c, 1, query_flag(req, "force"), &d, &res) < 0) {
                app_spec_free(c.spec);
                return respond_result(req, &res);
        }
        return respond_change(req, existed ? 200 : 201, &res);
}

static int handle_apps_batch(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonErrors errs = { 0 };
        SchedulerResult res;
        Deployment *d = NULL;
        size_t n;

        if (parse_body(req, &j) < 0)
                return 0;
        if (!json_is_array(j))
                return httpd_respond_error(req, 422, "PUT /v2/apps takes an array of apps");
        n = json_array_size(j);
        if (n == 0 || n > API_BATCH_MAX)
                return httpd_respond_error(req, 422, "a batch holds 1 to %d apps, not %zu", API_BATCH_MAX,
                                           n);
        _cleanup_free_ AppChange *changes = calloc(n, sizeof(*changes));
        if (!changes)
                return httpd_respond_error(req, 500, "out of memory");
        for (size_t i = 0; i < n; i++) {
                json_t *item = json_array_get(j, i);
                JsonPath at = JSON_PATH_INDEX(NULL, i);
                const char *raw = json_string_value(json_object_get(item, "id"));
                _cleanup_free_ char *id = NULL;
                PacerError err;
                if (!json_is_object(item) || !raw) {
                        json_errors_add(&errs, &at, "id", "is required");
                        continue;
                }
                if (app_id_normalize(raw, NULL, &id, &err) < 0) {
                        json_errors_add(&errs, &at, "id", "%s", err.msg);
                        continue;
                }
                build_update(a, item, id, true, &at, &changes[i].spec, &errs);
        }
        if (json_errors_count(&errs) > 0) {
                for (size_t i = 0; i < n; i++)
                        app_spec_free(changes[i].spec);
                return respond_errors(req, &errs);
        }
        if (scheduler_apply(a->s, changes, n, query_flag(req, "force"), &d, &res) < 0) {
                for (size_t i = 0; i < n; i++)
                        app_spec_free(changes[i].spec);
                return respond_result(req, &res);
        }
        return respond_change(req, 200, &res);
}

static int handle_app_delete(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_free_ char *id = normalize_id(req, httpd_request_param(req, "id"));
        SchedulerResult res;
        Deployment *d = NULL;

        if (!id)
                return 0;
        AppChange c = { .app_id = id };
        if (scheduler_apply(a->s, &c, 1, query_flag(req, "force"), &d, &res) < 0)
                return respond_result(req, &res);
        return respond_change(req, 200, &res);
}

static int handle_app_restart(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_free_ char *id = normalize_id(req, httpd_request_param(req, "id"));
        SchedulerResult res;
        Deployment *d = NULL;

        if (!id)
                return 0;
        AppChange c = { .app_id = id, .restart = true };
        if (scheduler_apply(a->s, &c, 1, query_flag(req, "force"), &d, &res) < 0) {
                app_spec_free(c.spec);
                return respond_result(req, &res);
        }
        return respond_change(req, 200, &res);
}

static int handle_app_tasks(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_free_ char *id = normalize_id(req, httpd_request_param(req, "id"));
        App *app;

        if (!id)
                return 0;
        app = state_app(scheduler_state(a->s), id);
        if (!app)
                return httpd_respond_error(req, 404, "App '%s' does not exist", id);
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:o}", "tasks", app_tasks_json(app));
        return httpd_respond_json(req, 200, j);
}

/* ---- tasks ---- */

static int handle_tasks(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        State *st = scheduler_state(a->s);
        const char *status = httpd_request_query(req, "status");
        json_t *arr = json_array();
        const char *k;
        void *v;
        size_t it = 0;

        while (arr && hashmap_next(&st->instances, &it, &k, &v)) {
                Instance *i = v;
                if (status && streq(status, "running") && i->state != TASK_STATE(TASK_RUNNING))
                        continue;
                if (status && streq(status, "staging") && i->state != TASK_STATE(TASK_STAGING))
                        continue;
                json_array_append_new(arr, task_json(i));
        }
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:o}", "tasks", arr);
        return httpd_respond_json(req, 200, j);
}

static int handle_tasks_delete(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_(json_decrefp) json_t *j = NULL;
        SchedulerResult res;
        Deployment *d = NULL;
        json_t *ids;

        if (parse_body(req, &j) < 0)
                return 0;
        ids = json_object_get(j, "ids");
        if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 10000)
                return httpd_respond_error(req, 422,
                                           "expected {\"ids\": [\"<task id>\", ...]} (1 to 10000 ids)");
        size_t n = json_array_size(ids);
        _cleanup_free_ char **list = calloc(n, sizeof(char *));
        if (!list)
                return httpd_respond_error(req, 500, "out of memory");
        for (size_t i = 0; i < n; i++) {
                list[i] = (char *)json_string_value(json_array_get(ids, i));
                if (!list[i])
                        return httpd_respond_error(req, 422, "ids[%zu] is not a string", i);
        }
        if (scheduler_kill_tasks(a->s, list, n, query_flag(req, "scale"), query_flag(req, "force"), &d,
                                 &res) < 0)
                return respond_result(req, &res);
        if (*res.deployment_id) /* scale=true: the deployment, even when it is already over */
                return respond_change(req, 200, &res);
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
                Instance *inst = state_instance(scheduler_state(a->s), list[i]);
                if (inst)
                        json_array_append_new(arr, task_json(inst));
        }
        _cleanup_(json_decrefp) json_t *out = json_pack("{s:o}", "tasks", arr);
        return httpd_respond_json(req, 200, out);
}

/* ---- deployments ---- */

static int handle_deployments(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        json_t *arr = json_array();

        for (Deployment *d = scheduler_deployments(a->s); arr && d; d = d->next)
                if (!d->finished)
                        json_array_append_new(arr, deployment_to_json(d, scheduler_state(a->s)));
        _cleanup_(json_decrefp) json_t *j = arr;
        return httpd_respond_json(req, 200, j);
}

static int handle_deployment_delete(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        bool force = query_flag(req, "force");
        SchedulerResult res;
        Deployment *d = NULL;

        if (scheduler_cancel_deployment(a->s, httpd_request_param(req, "id"), force, &d, &res) < 0)
                return respond_result(req, &res);
        if (force)
                return httpd_respond_buf(req, 202, "application/json", "{}", 2);
        return respond_change(req, 200, &res);
}

static int handle_deployment_app(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *app_id = normalize_id(req, httpd_request_param(req, "app"));
        const char *dep_id = httpd_request_param(req, "id"), *action;
        SchedulerResult res;
        StepCommand cmd;

        if (!app_id || parse_body(req, &j) < 0)
                return 0;
        action = json_string_value(json_object_get(j, "action"));
        cmd = step_command_from_string(action);
        if (cmd < 0)
                return httpd_respond_error(req, 422,
                                           "action must be \"stop\", \"rollback\" or \"retry\", not %s",
                                           action ? action : "missing");
        if (scheduler_step_command(a->s, dep_id, app_id, cmd, &res) < 0)
                return respond_result(req, &res);
        Deployment *d = scheduler_deployment(a->s, dep_id);
        DeploymentStep *st = d ? deployment_step(d, app_id) : NULL;
        _cleanup_(json_decrefp) json_t *out =
                json_pack("{s:s, s:s, s:s}", "deploymentId", dep_id, "appId", app_id, "state",
                          st ? step_state_to_string(st->state) : "finished");
        return httpd_respond_json(req, 200, out);
}

/* ---- queue, info, leader, ping, metrics, events ---- */

static int handle_queue(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        static const char *const reject_names[] = {
                "InvalidOffer",     "InvalidRequest",    "InsufficientCpus",      "InsufficientMemory",
                "InsufficientDisk", "InsufficientPorts", "UnfulfilledConstraint",
        };
        _cleanup_free_ QueueEntry *q = calloc(API_QUEUE_MAX, sizeof(*q));
        size_t n;
        json_t *arr = json_array();

        if (!q || !arr) {
                json_decref(arr);
                return httpd_respond_error(req, 500, "out of memory");
        }
        n = scheduler_queue(a->s, q, API_QUEUE_MAX);
        for (size_t i = 0; i < n; i++) {
                json_t *summary = json_array(), *reasons = json_array();
                for (size_t r = 0; r < ELEMENTSOF(reject_names); r++)
                        json_array_append_new(summary,
                                              json_pack("{s:s, s:i, s:i}", "reason", reject_names[r],
                                                        "declined", (json_int_t)q[i].rejects[r], "processed",
                                                        (json_int_t)q[i].processed));
                for (size_t r = 0; r < q[i].n_reasons; r++)
                        json_array_append_new(reasons, json_string(q[i].reasons[r]));
                json_array_append_new(arr, json_pack("{s:{s:s}, s:i, s:{s:f, s:b}, s:{s:i, s:i, s:o}, s:o}",
                                                     "app", "id", q[i].app->id, "count",
                                                     (json_int_t)q[i].count, "delay", "timeLeftSeconds",
                                                     q[i].delay_left_s, "overdue", q[i].delay_left_s <= 0,
                                                     "processedOffersSummary", "processedOffersCount",
                                                     (json_int_t)q[i].processed, "unusedOffersCount",
                                                     (json_int_t)q[i].unused, "rejectSummaryLastOffers",
                                                     summary, "lastUnusedOfferReasons", reasons));
        }
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:o}", "queue", arr);
        return httpd_respond_json(req, 200, j);
}

static int handle_info(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        const SchedulerConfig *cfg = scheduler_config(a->s);
        const State *st = scheduler_state(a->s);
        _cleanup_(json_decrefp) json_t *j = json_pack(
                "{s:s, s:s, s:s?, s:s, s:b, s:{s:s, s:s, s:f, s:b, s:s}, s:{s:s, s:s, s:s, s:b}}", "name",
                "pacer", "version", PACER_VERSION, "frameworkId", st->framework_id, "leader",
                strempty(scheduler_leader(a->s)), "elected", true, "marathon_config", "master",
                strempty(cfg->master.master), "mesos_role", cfg->master.n_roles ? cfg->master.roles[0] : "*",
                "failover_timeout", cfg->master.failover_timeout_s, "checkpoint", cfg->master.checkpoint,
                "framework_name", strempty(cfg->master.name), "pacer", "mode", a->mode, "consul",
                strempty(cfg->consul_description), "store", strempty(cfg->data_dir), "connected",
                scheduler_connected(a->s));
        return httpd_respond_json(req, 200, j);
}

static int handle_leader(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s}", "leader", strempty(scheduler_leader(a->s)));
        return httpd_respond_json(req, 200, j);
}

static int handle_ping(HttpdRequest *req, void *userdata)
{
        return httpd_respond_buf(req, 200, "text/plain", "pong\n", 5);
}

static int handle_metrics(HttpdRequest *req, void *userdata)
{
        Api *a = userdata;
        _cleanup_(buf_done) Buf b = BUF_INIT(16 * 1024 * 1024);

        if (metrics_render(scheduler_metrics(a->s), &b) < 0)
                return httpd_respond_error(req, 500, "cannot render the metrics");
        return httpd_respond_buf(req, 200, METRICS_CONTENT_TYPE, b.data, b.len);
}

static int subscribe(Api *a, HttpdRequest *req, EventFormat format)
{
        int r = event_bus_subscribe(a->events, req, format);
        return r < 0 ? httpd_respond_error(req, 500, "cannot open the event stream: %s", strerror(-r)) : 0;
}

static int handle_events(HttpdRequest *req, void *userdata)
{
        return subscribe(userdata, req, EVENT_FORMAT_SSE);
}

static int handle_stream(HttpdRequest *req, void *userdata)
{
        return subscribe(userdata, req, EVENT_FORMAT_MSGPACK);
}

static void on_scheduler_event(const char *type, json_t *payload, void *userdata)
{
        Api *a = userdata;
        event_bus_publish(a->events, type, json_incref(payload));
}

static const HttpdRoute routes[] = {
        { "GET", "/v2/apps", handle_apps_list, 0, ACCESS_READ },
        { "POST", "/v2/apps", handle_apps_create, API_APPS_BODY_MAX, ACCESS_WRITE },
        { "PUT", "/v2/apps", handle_apps_batch, API_APPS_BODY_MAX, ACCESS_WRITE },
        { "GET", "/v2/apps/{id*}", handle_app_get, 0, ACCESS_READ },
        { "PUT", "/v2/apps/{id*}", handle_app_update, API_APPS_BODY_MAX, ACCESS_WRITE },
        { "PATCH", "/v2/apps/{id*}", handle_app_update, API_APPS_BODY_MAX, ACCESS_WRITE },
        { "DELETE", "/v2/apps/{id*}", handle_app_delete, 0, ACCESS_WRITE },
        { "POST", "/v2/apps/{id*}/restart", handle_app_restart, 0, ACCESS_WRITE },
        { "GET", "/v2/apps/{id*}/tasks", handle_app_tasks, 0, ACCESS_READ },
        { "GET", "/v2/tasks", handle_tasks, 0, ACCESS_READ },
        { "POST", "/v2/tasks/delete", handle_tasks_delete, 0, ACCESS_WRITE },
        { "GET", "/v2/deployments", handle_deployments, 0, ACCESS_READ },
        { "DELETE", "/v2/deployments/{id}", handle_deployment_delete, 0, ACCESS_WRITE },
        { "POST", "/v2/deployments/{id}/apps/{app*}", handle_deployment_app, 0, ACCESS_WRITE },
        { "GET", "/v2/queue", handle_queue, 0, ACCESS_READ },
        { "GET", "/v2/info", handle_info, 0, ACCESS_READ },
        { "GET", "/v2/leader", handle_leader, 0, ACCESS_READ },
        { "GET", "/v2/events", handle_events, 0, ACCESS_READ },
        { "GET", "/v1/stream", handle_stream, 0, ACCESS_READ },
        { "GET", "/ping", handle_ping, 0, ACCESS_OPEN },
        { "GET", "/metrics", handle_metrics, 0, ACCESS_READ },
};

/* One check per request, before its body is read (docs/rest-api.md, "Authentication"). */
static int api_auth(HttpdRequest *req, const HttpdRoute *route, void *userdata)
{
        Api *a = userdata;
        char who[AUTH_PRINCIPAL_MAX];
        int k;

        if (route->action == ACCESS_OPEN)
                return 0;
        k = auth_check(a->auth, httpd_request_header(req, "Authorization"),
                       route->action == ACCESS_WRITE ? AUTH_WRITE : AUTH_READ, who);
        if (k == 401) {
                (void)httpd_request_add_header(req, "WWW-Authenticate", auth_challenge(a->auth));
                (void)httpd_respond_error(
                        req, 401,
                        "authentication required: send the scheduler's credentials or one of its "
                        "tokens (pacerctl: --token or PACER_TOKEN, or user:password@ in --url)");
        } else if (k == 403)
                (void)httpd_respond_error(req, 403, "%s may only read: %s %s changes state", who,
                                          httpd_request_method(req), httpd_request_path(req));
        return k;
}

static bool loopback(const char *listen)
{
        return !listen || strneq(listen, "127.", 4) || strneq(listen, "[::1]", 5) ||
               strneq(listen, "localhost:", 10);
}

int api_new(struct ev_loop *loop, Scheduler *s, const ApiOptions *o, Api **ret, PacerError *err)
{
        Api *a = calloc(1, sizeof(*a));
        int r;

        if (!a)
                return -ENOMEM;
        r = auth_new(o->http_credentials, o->http_token_file, &a->auth, err);
        if (r < 0) {
                free(a);
                return r;
        }
        if (!a->auth && !loopback(o->listen))
                log_warn("the REST API on %s is open to anyone who can reach it: give --http-token-file or "
                         "--http-credentials",
                         o->listen);
        a->s = s;
        snprintf(a->mode, sizeof(a->mode), "%s", strempty(o->mode));
        a->events = event_bus_new();
        if (!a->events) {
                auth_free(a->auth);
                free(a);
                return -ENOMEM;
        }
        HttpdOptions ho = {
                .listen = o->listen,
                .routes = routes,
                .n_routes = ELEMENTSOF(routes),
                .auth = a->auth ? api_auth : NULL,
                .userdata = a,
        };
        r = httpd_new(loop, &ho, &a->httpd, err);
        if (r < 0) {
                event_bus_free(a->events);
                auth_free(a->auth);
                free(a);
                return r;
        }
        scheduler_set_event_sink(s, on_scheduler_event, a);
        *ret = a;
        return 0;
}

int api_port(const Api *a)
{
        return httpd_port(a->httpd);
}

Api *api_free(Api *a)
{
        if (!a)
                return NULL;
        event_bus_free(a->events);
        httpd_free(a->httpd);
        auth_free(a->auth);
        free(a);
        return NULL;
}
