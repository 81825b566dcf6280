/* SPDX-License-Identifier: Apache-2.0 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "macro.h"
#include "term.h"

/* Deployment ids listed in a 409 message. */
#define API_LOCK_IDS_MAX 4

static const char *const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

static char *escape(const char *s, bool keep_slash)
{
        Buf b = BUF_INIT(strlen(s) * 3 + 1);

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                int r = strchr(unreserved, c) || (keep_slash && c == '/') ? buf_putc(&b, (char)c)
                                                                          : buf_printf(&b, "%%%02X", c);
                if (r < 0) {
                        buf_done(&b);
                        return NULL;
                }
        }
        return buf_steal(&b, NULL);
}

char *api_escape(const char *s)
{
        return escape(s, false);
}

char *api_app_id(const char *id)
{
        size_t len = strlen(id);
        char *s;

        /* one trailing slash is dropped, as the scheduler does */
        if (len > 1 && id[len - 1] == '/')
                len--;
        if (asprintf(&s, "%s%.*s", id[0] == '/' ? "" : "/", (int)len, id) < 0)
                return NULL;
        return s;
}

char *api_app_path(const char *prefix, const char *app_id, const char *suffix)
{
        _cleanup_free_ char *id = api_app_id(app_id), *e = NULL;
        char *s;

        if (!id)
                return NULL;
        e = escape(id, true);
        if (!e || asprintf(&s, "%s%s%s", prefix, e, strempty(suffix)) < 0)
                return NULL;
        return s;
}

const char *api_str(const json_t *obj, const char *key)
{
        return json_string_value(json_object_get(obj, key));
}

int64_t api_int(const json_t *obj, const char *key, int64_t def)
{
        json_t *v = json_object_get(obj, key);

        if (json_is_integer(v))
                return json_integer_value(v);
        if (json_is_real(v))
                return (int64_t)json_real_value(v);
        return def;
}

double api_num(const json_t *obj, const char *key, double def)
{
        json_t *v = json_object_get(obj, key);

        return json_is_number(v) ? json_number_value(v) : def;
}

const char *api_deployment_id(const json_t *obj)
{
        const char *id = api_str(obj, "deploymentId");

        if (!id)
                id = api_str(obj, "id");
        if (!id)
                id = api_str(json_object_get(obj, "plan"), "id");
        return id;
}

int api_report_transport(Ctl *ctl, int r)
{
        if (r == -EINTR)
                return -EINTR;
        term_error("cannot reach pacer-scheduler at %s: %s — is it running? (set --url or PACER_URL%s)",
                   client_base_url(ctl->client), client_error(ctl->client),
                   r == -ETIMEDOUT ? ", or a longer --timeout" : "");
        return -EHOSTUNREACH;
}

int api_send(Ctl *ctl, const char *method, const char *path, const char *body, Reply *ret)
{
        int r;

        r = client_call(ctl->client, method, path, body, body ? strlen(body) : 0, ret);
        if (r < 0)
                return api_report_transport(ctl, r);
        return 0;
}

void api_reply_message(const Reply *reply, Buf *out)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *m;
        size_t len;

        (void)json_parse(buf_str(&reply->body), reply->body.len, NULL, &j, NULL);
        m = api_str(j, "message");
        if (!m && !j)
                m = buf_str(&reply->body);
        if (!m)
                return;
        /* a text body usually ends in a newline */
        len = strlen(m);
        while (len > 0 && strchr(" \t\r\n", m[len - 1]))
                len--;
        {
                _cleanup_free_ char *text = strndup(m, MIN(len, (size_t)API_MESSAGE_MAX + 1));
                if (text)
                        (void)term_sanitize(out, text, API_MESSAGE_MAX);
        }
}

static void report_invalid(const Reply *reply, const json_t *j, const char *what, const char *msg)
{
        json_t *details = json_object_get(j, "details");
        size_t i, shown = 0, total = 0;

        term_error("%s: refused as invalid (%ld%s%s)%s", what, reply->status, *msg ? ": " : "", msg,
                   json_array_size(details) > 0 ? ":" : "");
        for (i = 0; i < json_array_size(details); i++) {
                json_t *d = json_array_get(details, i);
                Buf path = BUF_INIT(API_MESSAGE_MAX + 8);
                json_t *errors = json_object_get(d, "errors");
                size_t k;

                (void)term_sanitize(&path, strempty(api_str(d, "path")), API_MESSAGE_MAX);
                for (k = 0; k < json_array_size(errors); k++) {
                        json_t *e = json_array_get(errors, k);
                        Buf text = BUF_INIT(API_MESSAGE_MAX + 8);

                        total++;
                        if (shown >= API_DETAILS_MAX)
                                continue;
                        (void)term_sanitize(&text, json_is_string(e) ? json_string_value(e) : "?",
                                            API_MESSAGE_MAX);
                        fprintf(stderr, "  %s: %s\n", path.len ? buf_str(&path) : "/", buf_str(&text));
                        buf_done(&text);
                        shown++;
                }
                buf_done(&path);
        }
        if (total > shown)
                fprintf(stderr, "  ... and %zu more\n", total - shown);
}

static void report_locked(const json_t *j, const ApiTarget *t, const char *msg)
{
        json_t *deps = json_object_get(j, "deployments");
        Buf ids = BUF_INIT(API_MESSAGE_MAX + 8);
        size_t i;

        for (i = 0; i < json_array_size(deps); i++) {
                json_t *d = json_array_get(deps, i);
                const char *id = api_str(d, "id");
                if (!id || i >= API_LOCK_IDS_MAX)
                        continue;
                if (ids.len > 0)
                        (void)buf_puts(&ids, ", ");
                (void)term_sanitize(&ids, id, API_MESSAGE_MAX / API_LOCK_IDS_MAX);
        }
        if (json_array_size(deps) > API_LOCK_IDS_MAX)
                (void)buf_printf(&ids, " and %zu more", json_array_size(deps) - API_LOCK_IDS_MAX);
        if (ids.len > 0)
                term_error("%s%s is locked by deployment %s — wait for it to finish (see `pacerctl "
                           "deployments`)%s",
                           t && t->app ? "app " : "", t && t->app ? t->app : "the app", buf_str(&ids),
                           t && t->force_hint ? " or pass --force to override it" : "");
        else
                term_error("conflict: %s%s", *msg ? msg : "the scheduler refused the change (409)",
                           t && t->force_hint ? " (--force overrides a deployment lock)" : "");
        buf_done(&ids);
}

int api_report_status(Ctl *ctl, const char *method, const char *path, const Reply *reply, const ApiTarget *t)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        Buf msg = BUF_INIT(API_MESSAGE_MAX + 8);
        const char *url = client_base_url(ctl->client);
        const char *m;
        int r;

        (void)json_parse(buf_str(&reply->body), reply->body.len, NULL, &j, NULL);
        api_reply_message(reply, &msg);
        m = buf_str(&msg);

        switch (reply->status) {
        case 400:
        case 413:
        case 422:
                report_invalid(reply, j, t && t->file ? t->file : "the request", m);
                r = -EINVAL;
                break;
        case 401:
                if (client_has_token(ctl->client))
                        term_error(
                                "pacer-scheduler at %s did not accept the token (401%s%s) — check --token or "
                                "PACER_TOKEN",
                                url, *m ? ": " : "", m);
                else
                        term_error("pacer-scheduler at %s wants a token (401%s%s) — pass --token or set "
                                   "PACER_TOKEN",
                                   url, *m ? ": " : "", m);
                r = -EACCES;
                break;
        case 403:
                term_error("not allowed to %s %s (403%s%s) — use a token that may (--token or PACER_TOKEN)",
                           method, path, *m ? ": " : "", m);
                r = -EACCES;
                break;
        case 404:
                if (t && t->deployment && t->app)
                        term_error("no deployment %s with app %s%s%s (see `pacerctl deployments`)",
                                   t->deployment, t->app, *m ? ": " : "", m);
                else if (t && t->deployment)
                        term_error("no deployment %s (see `pacerctl deployments`)", t->deployment);
                else if (t && t->app)
                        term_error("no app %s (see `pacerctl apps`)", t->app);
                else
                        term_error("%s %s: not found (404%s%s) — is %s a pacer-scheduler?", method, path,
                                   *m ? ": " : "", m, url);
                r = -ENOENT;
                break;
        case 409:
                report_locked(j, t, m);
                r = -EBUSY;
                break;
        default:
                term_error("pacer-scheduler at %s failed %s %s (%ld%s%s)", url, method, path, reply->status,
                           *m ? ": " : "", m);
                r = -EIO;
                break;
        }
        buf_done(&msg);
        return r;
}

int api_parse(Ctl *ctl, const char *method, const char *path, const Reply *reply, json_t **ret)
{
        JsonLimits limits = { .body_max = CLIENT_BODY_MAX };
        PacerError err = { "" };
        int r;

        r = json_parse(buf_str(&reply->body), reply->body.len, &limits, ret, &err);
        if (r < 0) {
                term_error("pacer-scheduler answered %s %s with invalid JSON: %s", method, path, err.msg);
                return -EBADMSG;
        }
        return 0;
}

int api_call(Ctl *ctl, const char *method, const char *path, const char *body, const ApiTarget *t,
             Reply *ret_reply, json_t **ret_json)
{
        Reply reply = {};
        json_t *j = NULL;
        int r;

        r = api_send(ctl, method, path, body, &reply);
        if (r < 0)
                return r;
        if (reply.status < 200 || reply.status > 299) {
                r = api_report_status(ctl, method, path, &reply, t);
                client_reply_done(&reply);
                return r;
        }
        if (ret_json) {
                r = api_parse(ctl, method, path, &reply, &j);
                if (r < 0) {
                        client_reply_done(&reply);
                        return r;
                }
                *ret_json = j;
        }
        if (ret_reply)
                *ret_reply = reply;
        else
                client_reply_done(&reply);
        return 0;
}

void api_print_raw(Ctl *ctl, const Reply *reply)
{
        if (reply->body.len == 0) {
                fputs("{}\n", ctl->out);
                return;
        }
        fwrite(buf_str(&reply->body), 1, reply->body.len, ctl->out);
        if (reply->body.data[reply->body.len - 1] != '\n')
                fputc('\n', ctl->out);
}
