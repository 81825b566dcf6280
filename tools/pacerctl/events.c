/* SPDX-License-Identifier: Apache-2.0 */
#include "events.h"

#include <errno.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "duration.h"
#include "json.h"
#include "macro.h"
#include "stream.h"
#include "term.h"

#define EVENTS_TYPE_NAME_MAX 64
/* Timestamps past this (the year 2286) are not seconds since the epoch. */
#define EVENTS_EPOCH_MAX 1e10
/* The query of GET /v2/events: the filters, escaped. */
#define EVENTS_QUERY_MAX (CTL_EVENT_TYPES_MAX * (EVENTS_TYPE_NAME_MAX + 16) + 3 * 1024)
/* What on_event returns to stop following (--count reached, stdout closed). */
#define EVENTS_STOP (-ECANCELED)

static const char *const known_types[] = {
        "status_update_event",      "deployment_info",          "deployment_success",
        "deployment_failed",        "deployment_step_success",  "deployment_step_failure",
        "api_post_event",           "app_terminated_event",     "instance_health_changed_event",
        "pacer_registration_event", "pacer_subscriber_dropped", "subscribe_event",
        "instance_expunged_event",
};

typedef struct Follow {
        Ctl *ctl;
        const CmdArgs *args;
        const char *app_prefix; /* normalised: "/prod" */
        int64_t printed;
        bool write_failed;
} Follow;

bool events_type_known(const char *type)
{
        for (size_t i = 0; i < ELEMENTSOF(known_types); i++)
                if (streq(known_types[i], type))
                        return true;
        return false;
}

bool events_type_valid(const char *type)
{
        size_t len = strlen(type);

        return len > 0 && len <= EVENTS_TYPE_NAME_MAX &&
               strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

/* A string that reads unambiguously without quotes. */
static bool plain_string(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' || *s == 0x7f)
                        return false;
        return true;
}

static int format_value(const json_t *v, Buf *out)
{
        _cleanup_free_ char *text = NULL;

        if (json_is_string(v) && plain_string(json_string_value(v)))
                return term_sanitize(out, json_string_value(v), EVENTS_VALUE_MAX);
        text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        if (!text)
                return -ENOMEM;
        return term_sanitize(out, text, EVENTS_VALUE_MAX);
}

static int format_time(const struct timespec *ts, Buf *out)
{
        struct tm tm;
        char buf[64];

        if (!gmtime_r(&ts->tv_sec, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return buf_puts(out, "?");
        return buf_printf(out, "%s.%03ldZ", buf, ts->tv_nsec / 1000000);
}

/* The event's "timestamp": seconds since the epoch ("1732560000.123", as
 * pacer-scheduler writes it) read as UTC; any other text as it is; none: now. */
static int format_timestamp(const char *text, Buf *out)
{
        struct timespec ts;
        char *end;
        double v;

        if (!text) {
                clock_gettime(CLOCK_REALTIME, &ts);
                return format_time(&ts, out);
        }
        errno = 0;
        v = strtod(text, &end);
        if (end != text && *end == 0 && errno == 0 && v >= 0 && v < EVENTS_EPOCH_MAX) {
                ts.tv_sec = (time_t)v;
                ts.tv_nsec = (long)((v - (double)ts.tv_sec) * 1e9);
                return format_time(&ts, out);
        }
        return term_sanitize(out, text, EVENTS_VALUE_MAX);
}

int events_format(const char *type, const json_t *data, bool with_time, Buf *out)
{
        const char *key, *ts = api_str(data, "timestamp");
        json_t *v;
        int r = 0;

        if (with_time) {
                r = format_timestamp(ts, out);
                if (r >= 0)
                        r = buf_putc(out, ' ');
        }
        if (r >= 0)
                r = term_sanitize(out, type, EVENTS_VALUE_MAX);
        for (void *it = json_object_iter((json_t *)data); it;
             it = json_object_iter_next((json_t *)data, it)) {
                key = json_object_iter_key(it);
                v = json_object_iter_value(it);
                if (r < 0)
                        break;
                /* nulls and empty strings ("reason": "" of a step that succeeded) say nothing */
                if (streq(key, "eventType") || streq(key, "timestamp") || json_is_null(v) ||
                    (json_is_string(v) && json_string_length(v) == 0))
                        continue;
                r = buf_putc(out, ' ');
                if (r >= 0)
                        r = term_sanitize(out, key, EVENTS_VALUE_MAX);
                if (r >= 0)
                        r = buf_putc(out, '=');
                if (r >= 0)
                        r = format_value(v, out);
        }
        if (r == -EMSGSIZE) {
                /* the line is long enough to be useful as it is */
                if (out->len + 3 > out->max)
                        out->len = out->max - 3;
                out->data[out->len] = 0;
                r = buf_puts(out, "...");
        }
        return r;
}

static bool type_wanted(const CmdArgs *a, const char *type)
{
        if (a->n_types == 0)
                return true;
        for (size_t i = 0; i < a->n_types; i++)
                if (streq(a->types[i], type))
                        return true;
        return false;
}

static int print_event(Follow *f, const char *type, const json_t *data)
{
        Ctl *ctl = f->ctl;
        int r = 0;

        if (ctl->json) {
                _cleanup_free_ char *text = json_dumps_compact(data);
                if (!text)
                        return -ENOMEM;
                fprintf(ctl->out, "%s\n", text);
        } else {
                Buf line = BUF_INIT(EVENTS_LINE_MAX);
                r = events_format(type, data, true, &line);
                if (r >= 0)
                        fprintf(ctl->out, "%s\n", buf_str(&line));
                buf_done(&line);
        }
        if (fflush(ctl->out) != 0 || ferror(ctl->out)) {
                /* `pacerctl events | head` closing the pipe ends the command, quietly:
                 * what could not be written is dropped */
                __fpurge(ctl->out);
                clearerr(ctl->out);
                f->write_failed = true;
                return EVENTS_STOP;
        }
        return r;
}

static int on_event(Stream *s, const SseEvent *e, void *userdata)
{
        _cleanup_(json_decrefp) json_t *data = NULL;
        Follow *f = userdata;
        const CmdArgs *a = f->args;
        const char *type = e->type, *app;
        PacerError err = { "" };
        int r;

        if (e->oversized) {
                term_error("skipped event %s (%s): larger than %u bytes", *e->id ? e->id : "without id",
                           type, STREAM_EVENT_MAX);
                return 0;
        }
        r = json_parse(e->data, e->data_len, NULL, &data, &err);
        if (r < 0 || !json_is_object(data)) {
                term_error("skipped event %s (%s): its data is not a JSON object%s%s", *e->id ? e->id : "",
                           type, r < 0 ? ": " : "", r < 0 ? err.msg : "");
                return 0;
        }
        if (streq(type, "message") && api_str(data, "eventType"))
                type = api_str(data, "eventType");
        if (streq(type, "pacer_subscriber_dropped")) {
                /* the server cut us as too slow; the stream resumes from the last event */
                term_error("pacer-scheduler dropped this subscriber (too slow); resuming after event %s",
                           *e->id ? e->id : "(none)");
                return 0;
        }
        if (!type_wanted(a, type))
                return 0;
        app = api_str(data, "appId");
        if (f->app_prefix && app && !strneq(app, f->app_prefix, strlen(f->app_prefix)))
                return 0;
        r = print_event(f, type, data);
        if (r < 0)
                return r;
        f->printed++;
        if (a->count > 0 && f->printed >= a->count)
                return EVENTS_STOP;
        return 0;
}

static int build_path(const CmdArgs *a, const char *app_prefix, char **ret)
{
        Buf b = BUF_INIT(EVENTS_QUERY_MAX);
        char sep = '?';
        int r = buf_puts(&b, "/v2/events");

        for (size_t i = 0; r >= 0 && i < a->n_types; i++) {
                r = buf_printf(&b, "%cevent_type=%s", sep, a->types[i]); /* [a-z0-9_] only */
                sep = '&';
        }
        if (r >= 0 && app_prefix) {
                _cleanup_free_ char *e = api_escape(app_prefix);
                r = e ? buf_printf(&b, "%capp_id=%s", sep, e) : -ENOMEM;
        }
        if (r < 0) {
                buf_done(&b);
                return r;
        }
        *ret = buf_steal(&b, NULL);
        return 0;
}

static int report_end(Ctl *ctl, Stream *s, const char *path)
{
        const Reply *reply;
        int r = stream_result(s, &reply);

        if (r == -EPROTO)
                return api_report_status(ctl, "GET", path, reply, NULL);
        return api_report_transport(ctl, r);
}

int events_follow(Ctl *ctl, const CmdArgs *a)
{
        _cleanup_free_ char *path = NULL, *prefix = NULL;
        Follow f = { .ctl = ctl, .args = a };
        Stream *s = NULL;
        int r;

        for (size_t i = 0; i < a->n_types; i++) {
                if (!events_type_valid(a->types[i])) {
                        term_error("events: --type=%.64s is not an event type name (lower case, digits and "
                                   "'_')",
                                   a->types[i]);
                        return -EINVAL;
                }
                if (!events_type_known(a->types[i]))
                        term_error("events: warning: %s is not a documented event type; following it anyway",
                                   a->types[i]);
        }
        if (a->app_prefix) {
                prefix = api_app_id(a->app_prefix);
                if (!prefix)
                        return -ENOMEM;
        }
        f.app_prefix = prefix;
        r = build_path(a, prefix, &path);
        if (r < 0)
                return r;
        r = stream_start(ctl->client,
                         &(StreamOptions){ .path = path,
                                           .last_event_id = a->last_event_id,
                                           .report = true,
                                           .on_event = on_event,
                                           .userdata = &f },
                         &s);
        if (r == -EINVAL) {
                term_error("events: --last-event-id must be at most %d printable characters", SSE_ID_MAX);
                return r;
        }
        if (r < 0) {
                client_set_error(ctl->client, r, NULL);
                return api_report_transport(ctl, r);
        }
        r = stream_wait_connected(s, 0);
        if (r == -EINTR)
                r = 0;
        else if (r < 0 && r != EVENTS_STOP)
                r = report_end(ctl, s, path);
        else {
                r = client_wait(ctl->client, stream_ended_flag(s), 0);
                if (r == -EINTR)
                        r = 0; /* Ctrl-C is how following ends */
                else if (stream_ended(s) && stream_result(s, NULL) != EVENTS_STOP)
                        r = report_end(ctl, s, path);
                else
                        r = 0;
        }
        stream_free(s);
        return r;
}
