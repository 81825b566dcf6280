/* SPDX-License-Identifier: Apache-2.0 */
#include "client.h"

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duration.h"
#include "macro.h"

/* Room for the texts client_error() returns. */
#define CLIENT_ERROR_MAX 512
/* Headers client_call() sends besides the caller's. */
#define CLIENT_HEADERS_MAX 8

struct Client {
        struct ev_loop *loop;
        HttpClient *http;
        ev_signal sigint, sigterm;
        char *base_url;
        char *auth_header; /* "Authorization: Bearer ...", or NULL */
        int64_t timeout_ns;
        bool interrupted;
        char error[CLIENT_ERROR_MAX];
};

typedef struct Call {
        Client *client;
        Reply *reply;
        int result;
        bool done;
} Call;

static bool has_control_or_space(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || (unsigned char)*s == 0x7f)
                        return true;
        return false;
}

static int normalize_url(const char *url, char **ret, PacerError *err)
{
        _cleanup_free_ char *u = NULL;
        const char *host;
        size_t len;

        if (!url || !*url)
                return pacer_error_set(err, EINVAL, "--url is empty (expected http://host:port)");
        if (strlen(url) > CLIENT_URL_MAX)
                return pacer_error_set(err, EINVAL, "--url is longer than %d bytes", CLIENT_URL_MAX);
        if (has_control_or_space(url))
                return pacer_error_set(err, EINVAL, "--url must not contain spaces or control characters");
        if (!strstr(url, "://")) {
                if (asprintf(&u, "http://%s", url) < 0)
                        return pacer_error_set(err, ENOMEM, "out of memory");
        } else {
                u = strdup(url);
                if (!u)
                        return pacer_error_set(err, ENOMEM, "out of memory");
        }
        if (strncasecmp(u, "http://", STRLEN("http://")) == 0)
                host = u + STRLEN("http://");
        else if (strncasecmp(u, "https://", STRLEN("https://")) == 0)
                host = u + STRLEN("https://");
        else
                return pacer_error_set(err, EINVAL, "--url '%.*s' is not an http:// or https:// URL", 64,
                                       url);
        if (*host == 0 || *host == '/')
                return pacer_error_set(err, EINVAL, "--url '%.*s' names no host", 64, url);
        if (strpbrk(u, "?#"))
                return pacer_error_set(err, EINVAL, "--url '%.*s' must not have a query or fragment", 64,
                                       url);
        len = strlen(u);
        while (len > 0 && u[len - 1] == '/')
                u[--len] = 0;
        *ret = TAKE_PTR(u);
        return 0;
}

static int check_token(const char *token, PacerError *err)
{
        size_t len = strlen(token);

        if (len > CLIENT_TOKEN_MAX)
                return pacer_error_set(err, EINVAL, "--token is longer than %d bytes", CLIENT_TOKEN_MAX);
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f)
                        return pacer_error_set(err, EINVAL,
                                               "--token must be printable ASCII without spaces (byte %zu "
                                               "is 0x%02x)",
                                               i, (unsigned char)token[i]);
        return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
        Client *c = w->data;

        c->interrupted = true;
}

int client_new(const ClientOptions *o, Client **ret, PacerError *err)
{
        Client *c;
        int r;

        if (o->timeout_ns <= 0)
                return pacer_error_set(err, EINVAL, "--timeout must be positive");
        if (o->token && *o->token) {
                r = check_token(o->token, err);
                if (r < 0)
                        return r;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return pacer_error_set(err, ENOMEM, "out of memory");
        r = normalize_url(o->url, &c->base_url, err);
        if (r < 0) {
                free(c);
                return r;
        }
        if (o->token && *o->token && asprintf(&c->auth_header, "Authorization: Bearer %s", o->token) < 0) {
                c->auth_header = NULL;
                client_free(c);
                return pacer_error_set(err, ENOMEM, "out of memory");
        }
        c->timeout_ns = o->timeout_ns;
        c->loop = ev_default_loop(EVFLAG_AUTO);
        if (!c->loop) {
                client_free(c);
                return pacer_error_set(err, EIO, "cannot create an event loop");
        }
        c->http = http_client_new(c->loop);
        if (!c->http) {
                client_free(c);
                return pacer_error_set(err, ENOMEM, "cannot create the HTTP client");
        }
        ev_signal_init(&c->sigint, on_signal, SIGINT);
        ev_signal_init(&c->sigterm, on_signal, SIGTERM);
        c->sigint.data = c->sigterm.data = c;
        ev_signal_start(c->loop, &c->sigint);
        ev_signal_start(c->loop, &c->sigterm);
        /* the signal watchers alone must not keep a wait going */
        ev_unref(c->loop);
        ev_unref(c->loop);
        *ret = c;
        return 0;
}

Client *client_free(Client *c)
{
        if (!c)
                return NULL;
        http_client_free(c->http);
        if (c->loop) {
                if (ev_is_active(&c->sigint)) {
                        ev_ref(c->loop);
                        ev_signal_stop(c->loop, &c->sigint);
                }
                if (ev_is_active(&c->sigterm)) {
                        ev_ref(c->loop);
                        ev_signal_stop(c->loop, &c->sigterm);
                }
        }
        free(c->base_url);
        free(c->auth_header);
        free(c);
        return NULL;
}

struct ev_loop *client_loop(Client *c)
{
        return c->loop;
}

HttpClient *client_http(Client *c)
{
        return c->http;
}

const char *client_base_url(const Client *c)
{
        return c->base_url;
}

bool client_has_token(const Client *c)
{
        return c->auth_header != NULL;
}

int64_t client_timeout(const Client *c)
{
        return c->timeout_ns;
}

char *client_url(const Client *c, const char *path)
{
        char *u;

        if (asprintf(&u, "%s%s", c->base_url, path) < 0)
                return NULL;
        return u;
}

int client_headers(const Client *c, const char *const *extra, size_t n, const char **ret_headers)
{
        size_t k = 0, want = (c->auth_header ? 1 : 0) + 1;

        for (const char *const *e = extra; e && *e; e++)
                want++;
        if (want > n)
                return -E2BIG;
        if (c->auth_header)
                ret_headers[k++] = c->auth_header;
        for (; extra && *extra; extra++)
                ret_headers[k++] = *extra;
        ret_headers[k] = NULL;
        return 0;
}

void client_set_error(Client *c, int result, const char *detail)
{
        char timeout[32];
        const char *p;

        switch (result) {
        case -ETIMEDOUT:
                snprintf(c->error, sizeof(c->error), "no answer within %s",
                         duration_format_go(c->timeout_ns, timeout, sizeof(timeout)));
                return;
        case -EINTR:
        case -ECANCELED:
                snprintf(c->error, sizeof(c->error), "interrupted");
                return;
        default:
                break;
        }
        detail = strempty(detail);
        if (result == -EREMOTEIO) {
                /* an answer, not a transport failure: the caller wrote the text */
                snprintf(c->error, sizeof(c->error), "%s", detail);
                return;
        }
        /* http_client's texts read "METHOD URL: what happened": the URL is said elsewhere */
        p = strchr(detail, ' ');
        if (p && (p = strstr(p, ": ")))
                detail = p + 2;
        if (result == -ECONNREFUSED) {
                /* "Failed to connect to 127.0.0.1 port 1 after 0 ms: Connection refused" */
                const char *last = strrchr(detail, ':');
                if (strstr(detail, strerror(ECONNREFUSED)))
                        detail = strerror(ECONNREFUSED);
                else if (last && last[1] == ' ')
                        detail = last + 2;
        }
        if (!*detail)
                detail = strerror(-result);
        snprintf(c->error, sizeof(c->error), "%s", detail);
}

const char *client_error(const Client *c)
{
        return c->error;
}

static int copy_buf(Buf *to, const Buf *from, size_t max)
{
        buf_init(to, max);
        return buf_append(to, buf_str(from), from->len);
}

static void on_call_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Call *call = userdata;

        call->done = true;
        call->result = result;
        if (result < 0) {
                client_set_error(call->client, call->client->interrupted ? -EINTR : result,
                                 http_request_error(req));
                return;
        }
        call->reply->status = resp->status;
        if (copy_buf(&call->reply->body, &resp->body, CLIENT_BODY_MAX) < 0 ||
            copy_buf(&call->reply->headers, &resp->headers, HTTP_HEADERS_MAX) < 0) {
                client_reply_done(call->reply);
                call->result = -ENOMEM;
                client_set_error(call->client, -ENOMEM, "out of memory");
        }
}

int client_call(Client *c, const char *method, const char *path, const char *body, size_t body_len,
                Reply *ret)
{
        static const char *const json_body[] = { "Accept: application/json",
                                                 "Content-Type: application/json", NULL };
        static const char *const json_accept[] = { "Accept: application/json", NULL };
        const char *headers[CLIENT_HEADERS_MAX];
        _cleanup_free_ char *url = NULL;
        Reply reply = {};
        Call call = { .client = c, .reply = &reply };
        HttpRequest *req = NULL;
        HttpRequestOptions o;
        int r;

        if (c->interrupted) {
                client_set_error(c, -EINTR, NULL);
                return -EINTR;
        }
        url = client_url(c, path);
        if (!url)
                return -ENOMEM;
        r = client_headers(c, body ? json_body : json_accept, ELEMENTSOF(headers), headers);
        if (r < 0)
                return r;
        o = (HttpRequestOptions){
                .method = method,
                .url = url,
                .headers = headers,
                .body = body,
                .body_len = body ? body_len : 0,
                .timeout_ns = c->timeout_ns,
                .connect_timeout_ns = c->timeout_ns,
                .max_body = CLIENT_BODY_MAX,
                .on_done = on_call_done,
                .userdata = &call,
        };
        r = http_request_start(c->http, &o, &req);
        if (r < 0) {
                snprintf(c->error, sizeof(c->error), "cannot start the request: %s", strerror(-r));
                return r;
        }
        while (!call.done) {
                if (c->interrupted)
                        http_request_cancel(req); /* on_done runs inside */
                else
                        ev_run(c->loop, EVRUN_ONCE);
        }
        if (call.result < 0)
                return c->interrupted ? -EINTR : call.result;
        *ret = reply;
        return 0;
}

bool client_interrupted(const Client *c)
{
        return c->interrupted;
}

static void on_wait_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        *(bool *)w->data = true;
}

int client_wait(Client *c, const bool *flag, int64_t timeout_ns)
{
        bool expired = false;
        ev_timer timer;
        int r = 0;

        ev_timer_init(&timer, on_wait_timer, duration_to_seconds(timeout_ns), 0.);
        timer.data = &expired;
        if (timeout_ns > 0)
                ev_timer_start(c->loop, &timer);
        while (!*flag) {
                if (c->interrupted) {
                        r = -EINTR;
                        break;
                }
                if (expired) {
                        r = -ETIME;
                        break;
                }
                /* nothing left that could set the flag */
                if (!ev_run(c->loop, EVRUN_ONCE) && !*flag) {
                        r = -EDEADLK;
                        break;
                }
        }
        ev_timer_stop(c->loop, &timer);
        return r;
}

void client_reply_done(Reply *r)
{
        if (!r)
                return;
        buf_done(&r->body);
        buf_done(&r->headers);
        r->status = 0;
}

const char *client_reply_header(const Reply *r, const char *name, char *buf, size_t size)
{
        HttpResponse resp = { .status = r->status, .headers = r->headers };

        return http_response_header(&resp, name, buf, size);
}
