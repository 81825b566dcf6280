/* SPDX-License-Identifier: Apache-2.0 */
#include "watch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "client.h"
#include "duration.h"
#include "events.h"
#include "json.h"
#include "macro.h"
#include "stream.h"
#include "term.h"

/* What a waiting pacerctl subscribes to: everything a deployment produces. */
#define WATCH_EVENTS_PATH                                                               \
        "/v2/events?event_type=deployment_success&event_type=deployment_failed"         \
        "&event_type=deployment_step_success&event_type=deployment_step_failure"        \
        "&event_type=deployment_info&event_type=status_update_event"                    \
        "&event_type=instance_health_changed_event&event_type=pacer_registration_event" \
        "&event_type=app_terminated_event"
/* Events that arrive while the change is being sent, before its deployment
 * id is known, are kept until then (a deployment of one app makes a few). */
#define WATCH_EARLY_EVENTS_MAX 256
/* Apps taken from the deployment's own list. */
#define WATCH_APPS_MAX        4096
#define WATCH_STATE_MAX       32
#define WATCH_REASON_MAX      256
#define WATCH_LINE_MAX        4096
#define WATCH_STATUS_SHORT_ID 8

typedef struct WatchApp {
        char *id;
        char state[WATCH_STATE_MAX]; /* of its step: waiting, running, succeeded, failed, stopped */
        char reason[WATCH_REASON_MAX];
        /* an event ended the step: a poll answered before it must not undo that
         * (a retry, announced by deployment_info, may) */
        bool final_by_event;
        bool counted; /* the counts are from GET /v2/apps/{id} */
        bool gone;    /* that answered 404 */
        int64_t instances, running, healthy, registered;
        bool has_checks, has_registered;
        char *shown; /* the summary last printed (one line per change) */
} WatchApp;

typedef struct EarlyEvent {
        char *type;
        json_t *data;
} EarlyEvent;

typedef enum StepClass {
        STEP_CLASS_PENDING,
        STEP_CLASS_DONE,
        STEP_CLASS_BAD,
} StepClass;

struct Watch {
        Ctl *ctl;
        WatchOptions o;
        Stream *stream;
        char *id;    /* as the server wrote it, for comparisons */
        char *label; /* sanitized, for messages */
        WatchApp *apps;
        size_t n_apps;
        bool apps_from_server;
        EarlyEvent early[WATCH_EARLY_EVENTS_MAX];
        size_t n_early;
        bool decided, failed;
        bool ended;                    /* an event said the deployment is over */
        char reason[WATCH_REASON_MAX]; /* why it failed, when the failure is not one app's */
        bool listed;                   /* in the last GET /v2/deployments */
        int64_t gone_since_ns;
        int64_t start_ns;
        int64_t unreachable_since_ns;
        char *status; /* the redrawn terminal line */
};

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static double elapsed_s(const Watch *w)
{
        return duration_to_seconds(now_ns() - w->start_ns);
}

static StepClass step_class(const char *state)
{
        if (strcasecmp(state, "succeeded") == 0)
                return STEP_CLASS_DONE;
        if (strcasecmp(state, "failed") == 0 || strcasecmp(state, "stopped") == 0 ||
            strcasecmp(state, "rolled back") == 0)
                return STEP_CLASS_BAD;
        return STEP_CLASS_PENDING;
}

static void copy_text(char *to, size_t size, const char *from)
{
        Buf b = BUF_INIT(size);

        if (term_sanitize(&b, strempty(from), size - 4) < 0)
                buf_reset(&b);
        snprintf(to, size, "%s", buf_str(&b));
        buf_done(&b);
}

static WatchApp *app_find(Watch *w, const char *id)
{
        for (size_t i = 0; i < w->n_apps; i++)
                if (streq(w->apps[i].id, id))
                        return &w->apps[i];
        return NULL;
}

static WatchApp *app_add(Watch *w, const char *id)
{
        WatchApp *a = app_find(w, id), *more;

        if (a)
                return a;
        if (w->n_apps >= WATCH_APPS_MAX)
                return NULL;
        more = reallocarray(w->apps, w->n_apps + 1, sizeof(WatchApp));
        if (!more)
                return NULL;
        w->apps = more;
        a = &w->apps[w->n_apps];
        *a = (WatchApp){ .id = strdup(id) };
        if (!a->id)
                return NULL;
        w->n_apps++;
        return a;
}

static void apps_clear(Watch *w)
{
        for (size_t i = 0; i < w->n_apps; i++) {
                free(w->apps[i].id);
                free(w->apps[i].shown);
        }
        free(w->apps);
        w->apps = NULL;
        w->n_apps = 0;
}

/* Progress output ------------------------------------------------------------------------------------ */

static void status_clear(Watch *w)
{
        if (w->ctl->progress_tty && w->status)
                fputs("\r\033[K", w->ctl->progress);
}

static void status_redraw(Watch *w)
{
        if (w->ctl->progress_tty && w->status) {
                fprintf(w->ctl->progress, "\r\033[K%s", w->status);
                fflush(w->ctl->progress);
        }
}

/* A line that stays: an event, a lost connection. */
static void note(Watch *w, const char *text)
{
        status_clear(w);
        fprintf(w->ctl->progress, "[%6.1fs] %s\n", elapsed_s(w), text);
        status_redraw(w);
        fflush(w->ctl->progress);
}

static void app_summary(const Watch *w, const WatchApp *a, Buf *out)
{
        (void)term_sanitize(out, a->id, 0);
        if (a->state[0]) {
                (void)buf_printf(out, " %s", a->state);
                if (a->reason[0])
                        (void)buf_printf(out, " (%s)", a->reason);
        }
        if (!a->counted)
                return;
        if (a->gone) {
                (void)buf_puts(out, w->o.deleting ? ", gone" : ", no such app");
                return;
        }
        if (w->o.deleting) {
                (void)buf_printf(out, ", %lld running", (long long)a->running);
                return;
        }
        (void)buf_printf(out, ", %lld/%lld running", (long long)a->running, (long long)a->instances);
        if (a->has_checks)
                (void)buf_printf(out, ", %lld healthy", (long long)a->healthy);
        if (a->has_registered)
                (void)buf_printf(out, ", %lld registered", (long long)a->registered);
}

/* On a pipe: a line for each app whose summary changed. */
static void render_lines(Watch *w)
{
        for (size_t i = 0; i < w->n_apps; i++) {
                Buf line = BUF_INIT(WATCH_LINE_MAX);
                WatchApp *a = &w->apps[i];

                app_summary(w, a, &line);
                if (!a->shown || !streq(a->shown, buf_str(&line))) {
                        note(w, buf_str(&line));
                        free(a->shown);
                        a->shown = buf_steal(&line, NULL);
                }
                buf_done(&line);
        }
}

/* On a terminal: one status line, redrawn in place. */
static void render_status(Watch *w)
{
        Buf line = BUF_INIT(WATCH_LINE_MAX);
        unsigned width = term_width(w->ctl->progress);
        size_t chars = 0;

        (void)buf_printf(&line, "deployment %.*s [%.0fs]:", WATCH_STATUS_SHORT_ID, w->label, elapsed_s(w));
        for (size_t i = 0; i < w->n_apps; i++) {
                (void)buf_puts(&line, i ? "; " : " ");
                app_summary(w, &w->apps[i], &line);
        }
        /* one terminal row, or the carriage return no longer goes back to its start */
        for (size_t i = 0; i < line.len; i++)
                if (((unsigned char)line.data[i] & 0xc0) != 0x80 && ++chars == width) {
                        line.len = i;
                        line.data[i] = 0;
                        break;
                }
        free(w->status);
        w->status = buf_steal(&line, NULL);
        status_redraw(w);
}

static void render(Watch *w)
{
        if (w->ctl->progress_tty)
                render_status(w);
        else
                render_lines(w);
}

/* Events -------------------------------------------------------------------------------------------- */

static bool is_deployment_event(const char *type)
{
        return strneq(type, "deployment_", STRLEN("deployment_"));
}

static void handle_event(Watch *w, const char *type, const json_t *data)
{
        const char *dep = api_deployment_id(data), *app_id = api_str(data, "appId");
        Buf line = BUF_INIT(WATCH_LINE_MAX);
        WatchApp *a = NULL;

        if (is_deployment_event(type)) {
                if (!dep || !streq(dep, w->id))
                        return;
                if (app_id)
                        a = app_add(w, app_id);
        } else {
                if (!app_id || !(a = app_find(w, app_id)))
                        return;
        }
        if (streq(type, "deployment_success")) {
                w->decided = w->ended = true;
                w->failed = false;
        } else if (streq(type, "deployment_failed")) {
                w->decided = w->ended = true;
                w->failed = true;
                copy_text(w->reason, sizeof(w->reason), api_str(data, "reason"));
        } else if (a && (streq(type, "deployment_step_success") || streq(type, "deployment_step_failure"))) {
                const char *state = api_str(data, "state");
                copy_text(a->state, sizeof(a->state),
                          state                                    ? state
                          : streq(type, "deployment_step_success") ? "succeeded"
                                                                   : "failed");
                copy_text(a->reason, sizeof(a->reason), api_str(data, "reason"));
                a->final_by_event = step_class(a->state) != STEP_CLASS_PENDING;
        } else if (a && streq(type, "deployment_info")) {
                a->final_by_event = false;
        }
        if (events_format(type, data, false, &line) >= 0)
                note(w, buf_str(&line));
        buf_done(&line);
}

static int on_event(Stream *s, const SseEvent *e, void *userdata)
{
        _cleanup_(json_decrefp) json_t *data = NULL;
        Watch *w = userdata;
        const char *type = e->type;

        if (e->oversized || json_parse(e->data, e->data_len, NULL, &data, NULL) < 0 || !json_is_object(data))
                return 0; /* polling still sees what it said */
        if (streq(type, "message") && api_str(data, "eventType"))
                type = api_str(data, "eventType");
        if (!w->id) {
                if (w->n_early < WATCH_EARLY_EVENTS_MAX) {
                        char *t = strdup(type);
                        if (t) {
                                w->early[w->n_early++] =
                                        (EarlyEvent){ .type = t, .data = json_incref(data) };
                        }
                }
                return 0;
        }
        handle_event(w, type, data);
        return 0;
}

/* Polling ------------------------------------------------------------------------------------------- */

/* The server's ids are the resolved ones: they replace those from the
 * command line, keeping what events said about the apps in both. */
static void take_affected(Watch *w, const json_t *affected)
{
        WatchApp *old = w->apps;
        size_t n_old = w->n_apps;

        w->apps = NULL;
        w->n_apps = 0;
        for (size_t i = 0; i < json_array_size(affected); i++) {
                const char *id = json_string_value(json_array_get(affected, i));
                WatchApp *more;

                if (!id || app_find(w, id))
                        continue;
                for (size_t k = 0; k < n_old; k++) {
                        if (!old[k].id || !streq(old[k].id, id))
                                continue;
                        more = reallocarray(w->apps, w->n_apps + 1, sizeof(WatchApp));
                        if (more) {
                                w->apps = more;
                                w->apps[w->n_apps++] = old[k];
                                old[k] = (WatchApp){};
                        }
                        break;
                }
                if (!app_find(w, id) && !app_add(w, id))
                        break;
        }
        for (size_t k = 0; k < n_old; k++) {
                free(old[k].id);
                free(old[k].shown);
        }
        free(old);
        w->apps_from_server = true;
}

static void take_deployment(Watch *w, const json_t *d)
{
        json_t *affected = json_object_get(d, "affectedApps"), *apps = json_object_get(d, "apps");
        bool all_final = json_array_size(apps) > 0, any_bad = false;
        size_t i;

        if (!w->apps_from_server && json_array_size(affected) > 0)
                take_affected(w, affected);
        for (i = 0; i < json_array_size(apps); i++) {
                json_t *v = json_array_get(apps, i);
                const char *id = api_str(v, "appId"), *state = api_str(v, "state");
                WatchApp *a = id ? app_add(w, id) : NULL;

                /* back at its previous version: not what was deployed */
                if (state && step_class(state) == STEP_CLASS_DONE &&
                    json_is_true(json_object_get(v, "rollback")))
                        state = "rolled back";

                if (!state) {
                        all_final = false;
                        continue;
                }
                if (a && a->final_by_event && step_class(state) == STEP_CLASS_PENDING) {
                        all_final = false;
                        continue;
                }
                if (a) {
                        copy_text(a->state, sizeof(a->state), state);
                        copy_text(a->reason, sizeof(a->reason), api_str(v, "reason"));
                }
                switch (step_class(state)) {
                case STEP_CLASS_PENDING:
                        all_final = false;
                        break;
                case STEP_CLASS_BAD:
                        any_bad = true;
                        break;
                default:
                        break;
                }
        }
        if (all_final) {
                w->decided = true;
                w->failed = any_bad;
        }
}

/* 0, or a transport error (-errno) for the caller's patience, or a reported failure. */
static int poll_deployments(Watch *w, bool *ret_reported)
{
        _cleanup_(json_decrefp) json_t *list = NULL;
        Reply reply = {};
        size_t i;
        int r;

        r = client_call(w->ctl->client, "GET", "/v2/deployments", NULL, 0, &reply);
        if (r < 0)
                return r;
        if (reply.status >= 500) {
                /* a scheduler restarting or electing a leader: as passing as a refused connection */
                Buf msg = BUF_INIT(API_MESSAGE_MAX + 8);
                char text[API_MESSAGE_MAX + 32];
                api_reply_message(&reply, &msg);
                snprintf(text, sizeof(text), "%ld%s%s", reply.status, msg.len ? ": " : "", buf_str(&msg));
                client_set_error(w->ctl->client, -EREMOTEIO, text);
                buf_done(&msg);
                client_reply_done(&reply);
                return -EREMOTEIO;
        }
        if (w->decided) {
                /* an event decided while the answer was on its way: it is older than that */
                client_reply_done(&reply);
                return 0;
        }
        *ret_reported = true;
        if (reply.status < 200 || reply.status > 299)
                r = api_report_status(w->ctl, "GET", "/v2/deployments", &reply, NULL);
        else
                r = api_parse(w->ctl, "GET", "/v2/deployments", &reply, &list);
        client_reply_done(&reply);
        if (r < 0)
                return r;
        *ret_reported = false;
        w->listed = false;
        for (i = 0; i < json_array_size(list); i++) {
                json_t *d = json_array_get(list, i);
                const char *id = api_str(d, "id");
                if (id && streq(id, w->id)) {
                        w->listed = true;
                        take_deployment(w, d);
                        break;
                }
        }
        return 0;
}

static int poll_app(Watch *w, WatchApp *a)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_free_ char *path = api_app_path("/v2/apps", a->id, NULL);
        Reply reply = {};
        json_t *app;
        int r;

        if (!path)
                return -ENOMEM;
        r = client_call(w->ctl->client, "GET", path, NULL, 0, &reply);
        if (r < 0)
                return r;
        if (reply.status == 404) {
                a->counted = a->gone = true;
        } else if (reply.status >= 200 && reply.status <= 299 &&
                   json_parse(buf_str(&reply.body), reply.body.len,
                              &(JsonLimits){ .body_max = CLIENT_BODY_MAX }, &j, NULL) >= 0 &&
                   json_is_object(app = json_object_get(j, "app"))) {
                a->counted = true;
                a->gone = false;
                a->instances = api_int(app, "instances", 0);
                a->running = api_int(app, "tasksRunning", 0);
                a->healthy = api_int(app, "tasksHealthy", 0);
                a->registered = api_int(app, "tasksRegistered", 0);
                a->has_registered = json_object_get(app, "tasksRegistered") != NULL;
                a->has_checks = json_array_size(json_object_get(app, "healthChecks")) > 0;
        }
        /* other answers leave the counts as they were: the deployment list decides */
        client_reply_done(&reply);
        return 0;
}

static bool app_ready(const Watch *w, const WatchApp *a)
{
        if (!a->counted)
                return true; /* not polled (a large batch): its step state decides */
        if (w->o.deleting)
                return a->gone;
        if (a->gone)
                return false;
        return (a->has_checks ? a->healthy : a->running) >= a->instances;
}

static void decide_unlisted(Watch *w)
{
        bool all_ready = true;
        int64_t now = now_ns();

        for (size_t i = 0; i < w->n_apps; i++) {
                if (step_class(w->apps[i].state) == STEP_CLASS_BAD) {
                        w->decided = w->failed = true;
                        return;
                }
                if (!app_ready(w, &w->apps[i]))
                        all_ready = false;
        }
        if (all_ready) {
                w->decided = true;
                w->failed = false;
                return;
        }
        if (w->gone_since_ns == 0) {
                w->gone_since_ns = now;
                return;
        }
        if (now - w->gone_since_ns >= WATCH_GONE_GRACE_NS) {
                w->decided = w->failed = true;
                snprintf(w->reason, sizeof(w->reason),
                         "it is no longer running, but its apps are not %s (see `pacerctl apps`)",
                         w->o.deleting ? "gone" : "running and healthy");
        }
}

static int poll_once(Watch *w)
{
        bool reported = false;
        size_t polled = 0;
        int r;

        r = poll_deployments(w, &reported);
        for (size_t i = 0; r >= 0 && i < w->n_apps && polled < WATCH_APPS_POLLED_MAX; i++, polled++)
                r = poll_app(w, &w->apps[i]);
        if (r < 0 && (reported || r == -EINTR || r == -ENOMEM))
                return r;
        if (r < 0) {
                int64_t now = now_ns();
                if (w->unreachable_since_ns == 0) {
                        char text[WATCH_LINE_MAX];
                        w->unreachable_since_ns = now;
                        snprintf(text, sizeof(text), "lost contact with pacer-scheduler (%s); still waiting",
                                 client_error(w->ctl->client));
                        note(w, text);
                } else if (now - w->unreachable_since_ns >= WATCH_UNREACHABLE_MAX_NS) {
                        status_clear(w);
                        if (r != -EREMOTEIO)
                                return api_report_transport(w->ctl, r);
                        term_error("pacer-scheduler at %s kept failing GET /v2/deployments (%s)",
                                   client_base_url(w->ctl->client), client_error(w->ctl->client));
                        return -EIO;
                }
                return 0;
        }
        if (w->unreachable_since_ns != 0) {
                w->unreachable_since_ns = 0;
                note(w, "contact with pacer-scheduler regained");
        }
        if (w->listed)
                w->gone_since_ns = 0;
        else if (!w->decided)
                decide_unlisted(w);
        return 0;
}

/* Outcome ------------------------------------------------------------------------------------------- */

static int report_outcome(Watch *w)
{
        Ctl *ctl = w->ctl;
        bool any_step = false;

        status_clear(w);
        if (!w->failed) {
                bool color = ctl->progress_color;
                fprintf(ctl->progress, "%sdeployment %s finished%s in %.1fs\n",
                        color ? term_color_on(TERM_COLOR_GREEN) : "", w->label,
                        color ? term_color_off() : "", elapsed_s(w));
                fflush(ctl->progress);
                return 0;
        }
        term_error("deployment %s failed after %.1fs%s%s", w->label, elapsed_s(w), w->reason[0] ? ": " : "",
                   w->reason);
        for (size_t i = 0; i < w->n_apps; i++) {
                const WatchApp *a = &w->apps[i];
                Buf id = BUF_INIT(WATCH_LINE_MAX);

                if (step_class(a->state) != STEP_CLASS_BAD)
                        continue;
                (void)term_sanitize(&id, a->id, 0);
                if (strneq(a->reason, a->state, strlen(a->state))) /* "rolled back: deadline..." */
                        fprintf(stderr, "  %s %s\n", buf_str(&id), a->reason);
                else
                        fprintf(stderr, "  %s %s%s%s\n", buf_str(&id), a->state, a->reason[0] ? ": " : "",
                                a->reason);
                buf_done(&id);
                any_step = true;
        }
        if (any_step && w->listed && !w->ended)
                fprintf(stderr, "  (`pacerctl deployment retry|rollback %s <app>` acts on one app)\n",
                        w->label);
        return -EIO;
}

/* API --------------------------------------------------------------------------------------------------- */

int watch_new(Ctl *ctl, const WatchOptions *o, Watch **ret)
{
        Watch *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return -ENOMEM;
        w->ctl = ctl;
        w->o = *o;
        if (w->o.interval_ns <= 0)
                w->o.interval_ns = WATCH_INTERVAL_DEFAULT_NS;
        r = stream_start(ctl->client,
                         &(StreamOptions){ .path = WATCH_EVENTS_PATH, .on_event = on_event, .userdata = w },
                         &w->stream);
        if (r == -ENOMEM) {
                free(w);
                return r;
        }
        /* subscribed before the change is sent, so its first events are not missed; a stream
         * that does not come up in time is left to connect on its own (polling covers it) */
        if (w->stream && stream_wait_connected(w->stream, client_timeout(ctl->client)) < 0 &&
            stream_ended(w->stream))
                w->stream = stream_free(w->stream);
        *ret = w;
        return 0;
}

Watch *watch_free(Watch *w)
{
        if (!w)
                return NULL;
        stream_free(w->stream);
        for (size_t i = 0; i < w->n_early; i++) {
                free(w->early[i].type);
                json_decref(w->early[i].data);
        }
        apps_clear(w);
        free(w->id);
        free(w->label);
        free(w->status);
        free(w);
        return NULL;
}

int watch_run(Watch *w, const char *deployment_id, char *const *apps, size_t n_apps)
{
        Buf label = BUF_INIT(WATCH_LINE_MAX);
        Ctl *ctl = w->ctl;
        int r;

        w->id = strdup(deployment_id);
        if (!w->id || term_sanitize(&label, deployment_id, WATCH_REASON_MAX) < 0) {
                buf_done(&label);
                return -ENOMEM;
        }
        w->label = buf_steal(&label, NULL);
        for (size_t i = 0; i < n_apps; i++)
                if (!app_add(w, apps[i]) && w->n_apps < WATCH_APPS_MAX)
                        return -ENOMEM;
        w->start_ns = now_ns();
        for (size_t i = 0; i < w->n_early; i++)
                handle_event(w, w->early[i].type, w->early[i].data);

        for (;;) {
                int64_t wait_ns = w->o.interval_ns;

                if (!w->decided) {
                        r = poll_once(w);
                        if (r < 0) {
                                if (r == -EINTR)
                                        break;
                                status_clear(w);
                                return r;
                        }
                }
                if (w->decided)
                        /* decided by an event: show the counts it ended with (best effort) */
                        for (size_t i = 0; i < w->n_apps && i < WATCH_APPS_POLLED_MAX; i++)
                                if (poll_app(w, &w->apps[i]) < 0)
                                        break;
                render(w);
                if (w->decided)
                        return report_outcome(w);
                if (w->o.timeout_ns > 0) {
                        int64_t left = w->o.timeout_ns - (now_ns() - w->start_ns);
                        char d[32];
                        if (left <= 0) {
                                status_clear(w);
                                term_error(
                                        "deployment %s is still running after %s; it goes on (see `pacerctl "
                                        "deployments`, `pacerctl deployment stop %s`)",
                                        w->label, duration_format_go(w->o.timeout_ns, d, sizeof(d)),
                                        w->label);
                                return -ETIME;
                        }
                        wait_ns = MIN(wait_ns, left);
                }
                r = client_wait(ctl->client, &w->decided, wait_ns);
                if (r == -EINTR)
                        break;
        }
        status_clear(w);
        term_error("stopped waiting; deployment %s goes on (see `pacerctl deployments`)", w->label);
        return -EINTR;
}
