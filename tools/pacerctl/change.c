/* SPDX-License-Identifier: Apache-2.0 */
#include "change.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "client.h"
#include "json.h"
#include "macro.h"
#include "term.h"
#include "watch.h"

/* Longest deployment id echoed back in a message. */
#define CHANGE_ID_MAX 128
/* Apps named in the "deployment ... started" line, and its length. */
#define CHANGE_APPS_NAMED_MAX 4
#define CHANGE_LINE_MAX       4096

typedef struct Change {
        const char *method;
        const char *path;
        const char *body;
        ApiTarget target;
        char *const *apps; /* what it changes, absolute ids */
        size_t n_apps;
        const char *what; /* "scale /web to 3", for the first progress line */
        bool deleting;
        /* deploy: an app that already exists is replaced instead (POST → PUT) */
        const char *replace_path;
} Change;

static void free_strv(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

/* The answer named no deployment, or a deployment id: from the
 * Marathon-Deployment-Id header, a "deploymentId", or the app's "deployments". */
static const char *deployment_of(const Reply *reply, const json_t *j, char *buf, size_t size)
{
        const char *id = client_reply_header(reply, "Marathon-Deployment-Id", buf, size);

        if (id && *id)
                return id;
        id = api_str(j, "deploymentId");
        if (!id)
                id = api_str(json_array_get(json_object_get(j, "deployments"), 0), "id");
        return id;
}

/* POST /v2/apps answers 409 without a lock ("deployments") when the app exists. */
static bool app_exists_conflict(const Reply *reply)
{
        _cleanup_(json_decrefp) json_t *j = NULL;

        if (reply->status != 409)
                return false;
        if (json_parse(buf_str(&reply->body), reply->body.len, NULL, &j, NULL) < 0)
                return true;
        return !json_object_get(j, "deployments");
}

static int send_change(Ctl *ctl, const Change *c, Reply *ret)
{
        const char *path = c->path, *method = c->method;
        Reply reply = {};
        int r;

        r = api_send(ctl, method, path, c->body, &reply);
        if (r < 0)
                return r;
        if (c->replace_path && app_exists_conflict(&reply)) {
                client_reply_done(&reply);
                method = "PUT";
                path = c->replace_path;
                r = api_send(ctl, method, path, c->body, &reply);
                if (r < 0)
                        return r;
        }
        if (reply.status < 200 || reply.status > 299) {
                r = api_report_status(ctl, method, path, &reply, &c->target);
                client_reply_done(&reply);
                return r;
        }
        *ret = reply;
        return 0;
}

static void print_started(Ctl *ctl, const Change *c, const char *id)
{
        Buf b = BUF_INIT(CHANGE_LINE_MAX), safe = BUF_INIT(CHANGE_LINE_MAX * 4);

        (void)buf_printf(&b, "deployment %s started: %s", id, c->what);
        for (size_t i = 0; !c->what[0] && i < c->n_apps && i < CHANGE_APPS_NAMED_MAX; i++)
                (void)buf_printf(&b, "%s%s", i ? ", " : "", c->apps[i]);
        if (!c->what[0] && c->n_apps > CHANGE_APPS_NAMED_MAX)
                (void)buf_printf(&b, " and %zu more", c->n_apps - CHANGE_APPS_NAMED_MAX);
        (void)term_sanitize(&safe, buf_str(&b), 0);
        fprintf(ctl->progress, "%s\n", buf_str(&safe));
        fflush(ctl->progress);
        buf_done(&b);
        buf_done(&safe);
}

static int apply(Ctl *ctl, const CmdArgs *a, const Change *c)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        char buf[CHANGE_ID_MAX + 1];
        Watch *w = NULL;
        Reply reply = {};
        const char *id;
        int r;

        if (a->wait) {
                WatchOptions o = { .interval_ns = a->interval_ns,
                                   .timeout_ns = a->wait_timeout_ns,
                                   .deleting = c->deleting };
                r = watch_new(ctl, &o, &w);
                if (r < 0)
                        return r;
        }
        r = send_change(ctl, c, &reply);
        if (r < 0) {
                watch_free(w);
                return r;
        }
        if (reply.body.len > 0)
                (void)json_parse(buf_str(&reply.body), reply.body.len,
                                 &(JsonLimits){ .body_max = CLIENT_BODY_MAX }, &j, NULL);
        if (ctl->json)
                api_print_raw(ctl, &reply);
        id = deployment_of(&reply, j, buf, sizeof(buf));
        if (!id || !*id) {
                if (!ctl->json)
                        fprintf(ctl->out, "nothing to deploy: the apps already look like this\n");
                r = 0;
        } else if (!a->wait) {
                Buf safe = BUF_INIT(CHANGE_ID_MAX * 4);
                if (!ctl->json && term_sanitize(&safe, id, CHANGE_ID_MAX) >= 0)
                        fprintf(ctl->out, "%s\n", buf_str(&safe));
                buf_done(&safe);
                r = 0;
        } else {
                fflush(ctl->out);
                print_started(ctl, c, id);
                r = watch_run(w, id, c->apps, c->n_apps);
        }
        client_reply_done(&reply);
        watch_free(w);
        return r;
}

/* deploy ---------------------------------------------------------------------------------------------- */

static int read_file(const char *name, char **ret, size_t *ret_len)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(CHANGE_FILE_MAX);
        FILE *f = streq(name, "-") ? stdin : fopen(name, "re");
        char chunk[65536];
        size_t n;
        int r = 0;

        /* a file that cannot be read is a usage error, like a bad argument */
        if (!f) {
                term_error("cannot read %s: %s", name, strerror(errno));
                return -EINVAL;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
                r = buf_append(&b, chunk, n);
                if (r < 0)
                        break;
        }
        if (r >= 0 && ferror(f)) {
                r = -EINVAL;
                term_error("cannot read %s: %s", name, strerror(errno));
        } else if (r == -EMSGSIZE) {
                r = -EINVAL;
                term_error("%s is larger than %u bytes, the most the scheduler accepts in a request", name,
                           CHANGE_FILE_MAX);
        } else if (r < 0) {
                term_error("cannot read %s: %s", name, strerror(-r));
        }
        if (f != stdin)
                fclose(f);
        if (r < 0)
                return r;
        *ret = buf_steal(&b, ret_len);
        return 0;
}

/* Checks what the client must know (the shape, the ids); the scheduler checks the rest. */
static int definition_apps(const char *name, const json_t *j, char ***ret, size_t *ret_n)
{
        size_t n = json_is_array(j) ? json_array_size(j) : 1;
        char **apps;

        if (!json_is_object(j) && !json_is_array(j)) {
                term_error("%s: expected an app object or an array of apps, got %s", name,
                           json_type_name(j));
                return -EINVAL;
        }
        if (json_is_array(j) && n == 0) {
                term_error("%s: the array holds no apps", name);
                return -EINVAL;
        }
        apps = calloc(n, sizeof(char *));
        if (!apps)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const json_t *item = json_is_array(j) ? json_array_get(j, i) : j;
                const char *id = api_str(item, "id");

                if (!json_is_object(item)) {
                        term_error("%s: item %zu of the array is %s %s, expected an app object", name, i,
                                   json_is_array(item) || json_is_object(item) ? "an" : "a",
                                   json_type_name(item));
                        free_strv(apps, n);
                        return -EINVAL;
                }
                /* without an id the scheduler's 422 says so, with the path */
                apps[i] = api_app_id(id ? id : "");
                if (!apps[i]) {
                        free_strv(apps, n);
                        return -ENOMEM;
                }
        }
        *ret = apps;
        *ret_n = n;
        return 0;
}

int change_deploy(Ctl *ctl, const CmdArgs *a)
{
        const char *file = a->argv[0], *name = streq(file, "-") ? "stdin" : file;
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *text = NULL, *replace = NULL, *path = NULL;
        PacerError err = { "" };
        char **apps = NULL;
        size_t len, n = 0;
        int r;

        r = read_file(file, &text, &len);
        if (r < 0)
                return r;
        r = json_parse(text, len, NULL, &j, &err);
        if (r < 0) {
                term_error("%s: %s", name, err.msg);
                return r == -ENOMEM ? r : -EINVAL;
        }
        r = definition_apps(name, j, &apps, &n);
        if (r < 0)
                return r;
        if (json_is_object(j)) {
                replace =
                        api_app_path("/v2/apps", apps[0],
                                     a->force ? "?partialUpdate=false&force=true" : "?partialUpdate=false");
                if (!replace) {
                        free_strv(apps, n);
                        return -ENOMEM;
                }
        } else if (a->force)
                path = strdup("/v2/apps?force=true");
        r = apply(ctl, a,
                  &(Change){ .method = json_is_object(j) ? "POST" : "PUT",
                             .path = path ? path : "/v2/apps",
                             .body = text,
                             .target = { .app = n == 1 ? apps[0] : NULL, .file = name, .force_hint = true },
                             .apps = apps,
                             .n_apps = n,
                             .what = "",
                             .replace_path = replace });
        free_strv(apps, n);
        return r;
}

/* scale, restart, delete ------------------------------------------------------------------------------ */

static int parse_instances(const char *s, int64_t *ret)
{
        int64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                v = v * 10 + (*p - '0');
                if (v > CHANGE_INSTANCES_MAX)
                        return -ERANGE;
        }
        *ret = v;
        return 0;
}

/* One app, one request, waited for. */
static int change_one(Ctl *ctl, const CmdArgs *a, const char *method, const char *suffix, const char *body,
                      const char *verb, const char *detail, bool deleting)
{
        _cleanup_free_ char *id = api_app_id(a->argv[0]), *path = NULL, *what = NULL, *full = NULL;
        char *apps[1];

        if (!id || asprintf(&full, "%s%s", strempty(suffix), a->force ? "?force=true" : "") < 0)
                return -ENOMEM;
        path = api_app_path("/v2/apps", id, full);
        if (!path || asprintf(&what, "%s %s%s", verb, id, strempty(detail)) < 0)
                return -ENOMEM;
        apps[0] = id;
        return apply(ctl, a,
                     &(Change){ .method = method,
                                .path = path,
                                .body = body,
                                .target = { .app = id, .force_hint = true },
                                .apps = apps,
                                .n_apps = 1,
                                .what = what,
                                .deleting = deleting });
}

int change_scale(Ctl *ctl, const CmdArgs *a)
{
        char body[64], detail[64];
        int64_t n;
        int r;

        r = parse_instances(a->argv[1], &n);
        if (r < 0) {
                term_error("scale: the instance count must be a whole number from 0 to %d, not '%.32s'",
                           CHANGE_INSTANCES_MAX, a->argv[1]);
                return -EINVAL;
        }
        snprintf(body, sizeof(body), "{\"instances\":%lld}", (long long)n);
        snprintf(detail, sizeof(detail), " to %lld", (long long)n);
        return change_one(ctl, a, "PATCH", NULL, body, "scale", detail, false);
}

int change_restart(Ctl *ctl, const CmdArgs *a)
{
        return change_one(ctl, a, "POST", "/restart", NULL, "restart", NULL, false);
}

int change_delete(Ctl *ctl, const CmdArgs *a)
{
        return change_one(ctl, a, "DELETE", NULL, NULL, "delete", NULL, true);
}

/* deployment stop|rollback|retry ------------------------------------------------------------------------ */

static const char *const step_actions[] = { "stop", "rollback", "retry" };

static void print_safe(FILE *f, const char *fmt_prefix, const char *s)
{
        Buf b = BUF_INIT(4096);

        (void)term_sanitize(&b, strempty(s), 1024);
        fprintf(f, "%s%s", fmt_prefix, buf_str(&b));
        buf_done(&b);
}

static int deployment_app_action(Ctl *ctl, const char *action, const char *dep, const char *app_arg)
{
        _cleanup_free_ char *app = api_app_id(app_arg), *dep_e = api_escape(dep), *prefix = NULL,
                            *path = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        char body[64];
        Reply reply = {};
        int r;

        if (!app || !dep_e || asprintf(&prefix, "/v2/deployments/%s/apps", dep_e) < 0)
                return -ENOMEM;
        path = api_app_path(prefix, app, NULL);
        if (!path)
                return -ENOMEM;
        snprintf(body, sizeof(body), "{\"action\":\"%s\"}", action);
        r = api_call(ctl, "POST", path, body, &(ApiTarget){ .app = app, .deployment = dep }, &reply,
                     ctl->json ? NULL : &j);
        if (r < 0)
                return r;
        if (ctl->json)
                api_print_raw(ctl, &reply);
        else {
                print_safe(ctl->out, "deployment ", dep);
                print_safe(ctl->out, ", app ", app);
                print_safe(ctl->out, ": ", action);
                print_safe(ctl->out, " accepted; the step is now ", api_str(j, "state"));
                fputc('\n', ctl->out);
        }
        client_reply_done(&reply);
        return 0;
}

static int deployment_whole_action(Ctl *ctl, const char *action, const char *dep)
{
        _cleanup_free_ char *dep_e = api_escape(dep), *path = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        bool stop = streq(action, "stop");
        Reply reply = {};
        int r;

        if (!dep_e || asprintf(&path, "/v2/deployments/%s%s", dep_e, stop ? "?force=true" : "") < 0)
                return -ENOMEM;
        r = api_call(ctl, "DELETE", path, NULL, &(ApiTarget){ .deployment = dep }, &reply, NULL);
        if (r < 0)
                return r;
        if (reply.body.len > 0)
                (void)json_parse(buf_str(&reply.body), reply.body.len, NULL, &j, NULL);
        if (ctl->json)
                api_print_raw(ctl, &reply);
        else if (stop) {
                print_safe(ctl->out, "stopped deployment ", dep);
                fputc('\n', ctl->out);
        } else {
                const char *by = api_str(j, "deploymentId");
                print_safe(ctl->out, "rolling back deployment ", dep);
                if (by &&
                    !streq(by, dep)) /* Marathon starts a new deployment; pacer-scheduler turns this one */
                        print_safe(ctl->out, " with deployment ", by);
                else
                        fputs(" in place: its steps now return to the previous versions", ctl->out);
                fputc('\n', ctl->out);
        }
        client_reply_done(&reply);
        return 0;
}

int change_deployment(Ctl *ctl, const CmdArgs *a)
{
        const char *action = a->argv[0];
        bool known = false;

        for (size_t i = 0; i < ELEMENTSOF(step_actions); i++)
                known = known || streq(action, step_actions[i]);
        if (!known) {
                term_error("deployment: unknown action '%.32s': expected stop, rollback or retry", action);
                return -EINVAL;
        }
        if (a->argc < 2) {
                term_error("deployment %s: which deployment? (see `pacerctl deployments`)", action);
                return -EINVAL;
        }
        if (a->argc > 2)
                return deployment_app_action(ctl, action, a->argv[1], a->argv[2]);
        if (streq(action, "retry")) {
                term_error("retry needs an app id: pacerctl deployment retry %.64s <app id>", a->argv[1]);
                return -EINVAL;
        }
        return deployment_whole_action(ctl, action, a->argv[1]);
}
