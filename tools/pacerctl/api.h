/* SPDX-License-Identifier: Apache-2.0 */
/* Requests to the REST API (docs/rest-api.md) and the one place where their
 * failures become messages: unreachable, 401/403, 404, 409, 422 with every
 * error and its path, 5xx. Each message says what to do next. Functions
 * return a negative errno that cli_exit_code() maps to the exit code:
 * -EHOSTUNREACH no answer, -EINVAL refused as invalid, -EINTR interrupted,
 * anything else a failure. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "client.h"
#include "ctl.h"

/* Server texts quoted in a message are cut to this many bytes. */
#define API_MESSAGE_MAX 512
/* Errors of a 422 answer printed (the scheduler sends at most 32 paths). */
#define API_DETAILS_MAX 64

/* What a request is about, for the messages. */
typedef struct ApiTarget {
        const char *app;        /* 404 → "no app /x" */
        const char *deployment; /* 404 → "no deployment x" */
        const char *file;       /* 422 → errors in this file */
        bool force_hint;        /* 409 → "pass --force" (the command has it) */
} ApiTarget;

/* Sends a request (body: JSON text, or NULL). 0 for any HTTP answer; a
 * transport failure is reported ("cannot reach pacer-scheduler at ...") and
 * returned as -EHOSTUNREACH (or -EINTR). */
int api_send(Ctl *ctl, const char *method, const char *path, const char *body, Reply *ret);
/* Reports a transport failure (r < 0 from client_call()) and maps it. */
int api_report_transport(Ctl *ctl, int r);
/* Reports a non-2xx answer and returns its class: -EINVAL for 400/413/422,
 * -EACCES, -ENOENT, -EBUSY (409) or -EIO. */
int api_report_status(Ctl *ctl, const char *method, const char *path, const Reply *reply,
                      const ApiTarget *t);
/* The server's explanation of an answer: the "message" of a JSON body, or
 * the text; sanitized, without trailing blanks, cut to API_MESSAGE_MAX. */
void api_reply_message(const Reply *reply, Buf *out);
/* Parses a 2xx answer's body; invalid JSON is reported (-EBADMSG). */
int api_parse(Ctl *ctl, const char *method, const char *path, const Reply *reply, json_t **ret);
/* api_send() + api_report_status() for non-2xx + api_parse() when ret_json
 * is given. ret_reply (optional) keeps the raw answer. */
int api_call(Ctl *ctl, const char *method, const char *path, const char *body, const ApiTarget *t,
             Reply *ret_reply, json_t **ret_json);

/* "/prod/web" from "prod/web", "/prod/web/" or "/prod/web" (ids are absolute
 * paths; the server resolves the rest). */
char *api_app_id(const char *id);
/* prefix + the percent-encoded id (slashes kept) + suffix, e.g.
 * ("/v2/apps", "/prod/web", "/restart") → "/v2/apps/prod/web/restart". */
char *api_app_path(const char *prefix, const char *app_id, const char *suffix);
/* Percent-encodes everything but unreserved characters (RFC 3986). */
char *api_escape(const char *s);

/* Writes the raw body of a 2xx answer to ctl->out, ending in a newline, for --json. */
void api_print_raw(Ctl *ctl, const Reply *reply);

/* Typed reads of server JSON with defaults: a missing or mistyped member
 * reads as the default, so a scheduler a version ahead still lists. */
const char *api_str(const json_t *obj, const char *key);
int64_t api_int(const json_t *obj, const char *key, int64_t def);
double api_num(const json_t *obj, const char *key, double def);
/* The deployment id in an event or a change answer: "deploymentId", "id" or "plan.id". */
const char *api_deployment_id(const json_t *obj);
