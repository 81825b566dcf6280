/* SPDX-License-Identifier: Apache-2.0 */
#include "stream.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "macro.h"
#include "term.h"

/* Headers of one connection: Accept, Cache-Control, Last-Event-ID, Authorization, NULL. */
#define STREAM_HEADERS_MAX        6
#define STREAM_LAST_ID_HEADER_MAX (SSE_ID_MAX + 32)

struct Stream {
        Client *client;
        HttpRequest *req;
        ev_timer retry;
        SseParser parser;
        char *path;
        stream_event_fn on_event;
        void *userdata;
        int64_t delay_ns;
        int result;
        Reply failure;
        bool report;
        bool ever_connected;
        bool connected;
        bool attempt_done; /* the first attempt is decided */
        bool lost;         /* lost after having been connected; not yet back */
        bool ended;
        bool freeing;
};

static int stream_connect(Stream *s);

static void stream_end(Stream *s, int result)
{
        s->ended = true;
        s->result = result;
        s->attempt_done = true;
        ev_timer_stop(client_loop(s->client), &s->retry);
}

static int on_sse_event(const SseEvent *e, void *userdata)
{
        Stream *s = userdata;

        return s->on_event(s, e, s->userdata);
}

static void on_stream_headers(HttpRequest *req, const HttpResponse *resp, void *userdata)
{
        Stream *s = userdata;

        if (resp->status < 200 || resp->status > 299)
                return;
        s->connected = true;
        s->attempt_done = true;
        s->delay_ns = STREAM_RETRY_MIN_NS;
        if (s->lost && s->report) {
                if (*sse_parser_last_id(&s->parser))
                        term_error("event stream resumed after event %s", sse_parser_last_id(&s->parser));
                else
                        term_error("event stream resumed");
        }
        s->lost = false;
        s->ever_connected = true;
}

static int on_stream_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        Stream *s = userdata;

        return sse_parser_feed(&s->parser, data, len, on_sse_event, s);
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        Stream *s = w->data;
        int r = stream_connect(s);

        if (r < 0)
                stream_end(s, r);
}

static void schedule_retry(Stream *s, const char *why)
{
        int64_t delay = s->delay_ns;

        if (s->parser.retry_ms >= 0)
                delay = MAX(delay, (int64_t)s->parser.retry_ms * NSEC_PER_MSEC);
        if (!s->lost && s->report)
                term_error("event stream lost (%s); reconnecting", why);
        s->lost = true;
        s->delay_ns = MIN(s->delay_ns * 2, STREAM_RETRY_MAX_NS);
        ev_timer_set(&s->retry, duration_to_seconds(delay), 0.);
        ev_timer_start(client_loop(s->client), &s->retry);
}

static void on_stream_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Stream *s = userdata;
        bool was_connected = s->connected;
        char why[128];

        s->req = NULL;
        s->connected = false;
        if (s->freeing || s->ended)
                return;
        if (result < 0 && result != -ECONNRESET && result != -ETIMEDOUT && result != -ECONNREFUSED &&
            result != -EIO && result != -EMSGSIZE) {
                /* on_event stopped it, or it was cancelled */
                stream_end(s, result);
                return;
        }
        if (result == 0 && (resp->status < 200 || resp->status > 299)) {
                client_reply_done(&s->failure);
                s->failure.status = resp->status;
                buf_init(&s->failure.body, STREAM_ERROR_BODY_MAX);
                buf_init(&s->failure.headers, HTTP_HEADERS_MAX);
                (void)buf_append(&s->failure.body, buf_str(&resp->body), resp->body.len);
                (void)buf_append(&s->failure.headers, buf_str(&resp->headers), resp->headers.len);
                /* refusals are final, except those that say "later" */
                if (!s->ever_connected || (resp->status >= 400 && resp->status < 500 &&
                                           resp->status != 408 && resp->status != 429)) {
                        stream_end(s, -EPROTO);
                        return;
                }
                snprintf(why, sizeof(why), "HTTP %ld", resp->status);
        } else if (result < 0) {
                client_set_error(s->client, result, http_request_error(req));
                if (!s->ever_connected) {
                        stream_end(s, result);
                        return;
                }
                snprintf(why, sizeof(why), "%s", client_error(s->client));
        } else {
                snprintf(why, sizeof(why), "the server closed it");
        }
        if (!was_connected && !s->ever_connected) {
                stream_end(s, -ECONNRESET);
                return;
        }
        schedule_retry(s, why);
}

static int stream_connect(Stream *s)
{
        static const char *const base[] = { "Accept: text/event-stream", "Cache-Control: no-cache", NULL };
        char last_id[STREAM_LAST_ID_HEADER_MAX];
        const char *extra[4] = { base[0], base[1], NULL, NULL };
        const char *headers[STREAM_HEADERS_MAX];
        _cleanup_free_ char *url = client_url(s->client, s->path);
        HttpRequestOptions o;
        int r;

        if (!url)
                return -ENOMEM;
        if (*sse_parser_last_id(&s->parser)) {
                snprintf(last_id, sizeof(last_id), "Last-Event-ID: %s", sse_parser_last_id(&s->parser));
                extra[2] = last_id;
        }
        r = client_headers(s->client, extra, ELEMENTSOF(headers), headers);
        if (r < 0)
                return r;
        sse_parser_reset(&s->parser);
        o = (HttpRequestOptions){
                .url = url,
                .headers = headers,
                .connect_timeout_ns = client_timeout(s->client),
                .max_body = STREAM_ERROR_BODY_MAX,
                .tcp_keepalive = true,
                .fresh_connection = true,
                .on_headers = on_stream_headers,
                .on_data = on_stream_data,
                .on_done = on_stream_done,
                .userdata = s,
        };
        r = http_request_start(client_http(s->client), &o, &s->req);
        if (r < 0)
                client_set_error(s->client, r, "cannot start the request");
        return r;
}

/* An id from the user becomes a header: it must not be able to add another one. */
static bool id_is_valid(const char *id)
{
        size_t len = strlen(id);

        if (len > SSE_ID_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
                        return false;
        return true;
}

int stream_start(Client *c, const StreamOptions *o, Stream **ret)
{
        Stream *s;
        int r;

        if (o->last_event_id && !id_is_valid(o->last_event_id))
                return -EINVAL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->client = c;
        s->on_event = o->on_event;
        s->userdata = o->userdata;
        s->report = o->report;
        s->delay_ns = STREAM_RETRY_MIN_NS;
        sse_parser_init(&s->parser, STREAM_EVENT_MAX);
        if (o->last_event_id)
                snprintf(s->parser.id, sizeof(s->parser.id), "%s", o->last_event_id);
        ev_timer_init(&s->retry, on_retry_timer, 0., 0.);
        s->retry.data = s;
        s->path = strdup(o->path);
        if (!s->path) {
                stream_free(s);
                return -ENOMEM;
        }
        r = stream_connect(s);
        if (r < 0) {
                stream_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

Stream *stream_free(Stream *s)
{
        if (!s)
                return NULL;
        s->freeing = true;
        ev_timer_stop(client_loop(s->client), &s->retry);
        if (s->req)
                http_request_cancel(s->req);
        sse_parser_done(&s->parser);
        client_reply_done(&s->failure);
        free(s->path);
        free(s);
        return NULL;
}

int stream_wait_connected(Stream *s, int64_t timeout_ns)
{
        int r = client_wait(s->client, &s->attempt_done, timeout_ns);

        if (r < 0)
                return r;
        return s->connected ? 0 : s->ended ? s->result : -ECONNRESET;
}

bool stream_connected(const Stream *s)
{
        return s->connected;
}

bool stream_ended(const Stream *s)
{
        return s->ended;
}

const bool *stream_ended_flag(const Stream *s)
{
        return &s->ended;
}

int stream_result(const Stream *s, const Reply **ret_reply)
{
        if (ret_reply)
                *ret_reply = &s->failure;
        return s->result;
}

const char *stream_last_id(const Stream *s)
{
        return sse_parser_last_id(&s->parser);
}
