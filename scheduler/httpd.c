/* SPDX-License-Identifier: Apache-2.0 */
#include "httpd.h"

#include <arpa/inet.h>
#include <ev.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "buf.h"
#include "duration.h"
#include "json.h"
#include "log.h"

#define LOG_SUBJECT    "http"
#define LISTEN_DEFAULT "127.0.0.1:0"
/* Preferred size of one hand-over from a stream's queue to the connection. */
#define STREAM_BLOCK_SIZE (8u * 1024)
/* "[IPv6]:port" */
#define REMOTE_MAX (INET6_ADDRSTRLEN + 8)
/* How much of a path goes into a log line. */
#define LOG_PATH_MAX 256
#define METHOD_MAX   32u
/* Room for the Allow header: every method of the matching routes. */
#define ALLOW_MAX 256u
/* A message from libmicrohttpd, as kept while starting (to explain a failure to listen). */
#define MHD_MESSAGE_MAX 256u

typedef enum SegKind {
        SEG_LITERAL,
        SEG_PARAM,
        SEG_REST,
} SegKind;

typedef struct Seg {
        SegKind kind;
        char *text; /* the literal, or the capture's name */
} Seg;

typedef struct CompiledRoute {
        const HttpdRoute *route;
        Seg *segs;
        size_t n_segs;
        size_t rest; /* index of the SEG_REST segment; n_segs when there is none */
        unsigned n_literal, n_param;
} CompiledRoute;

typedef struct Capture {
        char name[HTTPD_PARAM_NAME_MAX];
        char *value;
} Capture;

typedef struct QueryPair {
        char *key, *value;
} QueryPair;

typedef struct ExtraHeader {
        char *name, *value;
} ExtraHeader;

typedef enum Phase {
        PHASE_NEW,     /* libmicrohttpd has not shown us the headers yet */
        PHASE_BODY,    /* reading the body (or dropping it, when the answer is already known) */
        PHASE_PENDING, /* the handler answers later; the connection is parked */
        PHASE_QUEUED,  /* the response is with libmicrohttpd */
        PHASE_DONE,    /* the connection is finished with the request */
} Phase;

struct HttpdRequest {
        unsigned n_ref;
        HttpdServer *server;         /* NULL once the request is finished */
        struct MHD_Connection *conn; /* NULL once the request is finished */
        HttpdRequest *prev, *next;   /* in server->requests while unfinished */
        Phase phase;

        char *method;
        char *target; /* request target as sent */
        char *path;   /* its path part, still encoded */
        char remote[REMOTE_MAX];
        const HttpdRoute *route;
        Capture params[HTTPD_PARAMS_MAX];
        size_t n_params;
        QueryPair *query;
        size_t n_query;
        Buf body;
        bool has_body;

        ExtraHeader headers[HTTPD_EXTRA_HEADERS_MAX];
        size_t n_headers;
        struct MHD_Response *response; /* built and not yet queued */
        unsigned status;
        bool responded;
        bool in_handler;
        bool suspended;
        bool cancelled; /* can no longer be answered */
        ev_io watch;    /* while parked: notices the client leaving */
        bool watching;
        httpd_cancel_fn on_cancel;
        void *cancel_userdata;
        HttpdStream *stream;
        uint64_t bytes; /* response body bytes handed to the connection */
        int64_t start_ns;

        void *context;
        void (*context_free)(void *);
};

struct HttpdStream {
        unsigned n_ref;    /* the owner's and the response's */
        HttpdRequest *req; /* referenced */
        Buf buf;           /* queued bytes start at head */
        size_t head;
        size_t buffer_max;
        bool counted;      /* in stats.streams_open */
        bool owner_closed; /* end once drained; no callback any more */
        bool gone;         /* nothing more can be sent */
        httpd_stream_close_fn on_close;
        void *userdata;
};

struct HttpdServer {
        struct ev_loop *loop;
        struct MHD_Daemon *mhd;
        ev_io io; /* libmicrohttpd's epoll fd */
        ev_timer timer;
        bool in_run, kick, stopping, starting;
        uint16_t port;

        CompiledRoute *routes;
        size_t n_routes;
        unsigned max_connections, idle_timeout_s, max_streams;
        size_t header_max, body_max, stream_buffer_max;
        httpd_auth_fn auth;
        void *userdata;

        HttpdRequest *requests;
        HttpdStats stats;
        char mhd_message[MHD_MESSAGE_MAX];
};

/* The socket context of a connection accepted past max_connections: its requests get 503. */
static char over_limit_marker;

static const char *const limit_table[_HTTPD_LIMIT_MAX] = {
        [HTTPD_LIMIT_CONNECTIONS] = "connections", [HTTPD_LIMIT_BODY] = "body",
        [HTTPD_LIMIT_HEADER] = "header",           [HTTPD_LIMIT_PATH] = "path",
        [HTTPD_LIMIT_STREAMS] = "streams",         [HTTPD_LIMIT_STREAM_BUFFER] = "stream-buffer",
};

const char *httpd_limit_to_string(HttpdLimit l)
{
        return l >= 0 && l < _HTTPD_LIMIT_MAX ? limit_table[l] : NULL;
}

static int64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* A flood of clients over a limit must not flood the log: the first hit is a warning. */
static void limit_hit(HttpdServer *s, HttpdLimit l, const char *fmt, ...) _printf_(3, 4);
static void limit_hit(HttpdServer *s, HttpdLimit l, const char *fmt, ...)
{
        char msg[256];
        va_list ap;

        if (!s)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (s->stats.limit_hits[l]++ == 0)
                log_warn_s(LOG_SUBJECT, "limit %s reached: %s (further hits are logged at debug level)",
                           httpd_limit_to_string(l), msg);
        else
                log_debug_s(LOG_SUBJECT, "limit %s reached: %s", httpd_limit_to_string(l), msg);
}

/* ---- driving libmicrohttpd from the loop ---- */

static void server_arm(HttpdServer *s)
{
        MHD_UNSIGNED_LONG_LONG ms = 0;

        ev_timer_stop(s->loop, &s->timer);
        if (!s->kick && MHD_get_timeout(s->mhd, &ms) != MHD_YES)
                return;
        ev_timer_set(&s->timer, (double)ms / 1000.0, 0.);
        ev_timer_start(s->loop, &s->timer);
}

static void server_run(HttpdServer *s)
{
        s->in_run = true;
        s->kick = false;
        MHD_run(s->mhd);
        s->in_run = false;
        server_arm(s);
}

/* A connection was resumed: libmicrohttpd must run soon, but never re-entrantly. */
static void server_kick(HttpdServer *s)
{
        if (!s || s->stopping)
                return;
        s->kick = true;
        if (!s->in_run)
                server_arm(s);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
        server_run(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        server_run(w->data);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) _printf_(2, 0);
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        static const char code_marker[] = "HTTP response code is ";
        HttpdServer *s = cls;
        char msg[512];
        const char *p;
        unsigned code;
        size_t n;

        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = 0;
        if (s->starting)
                snprintf(s->mhd_message, sizeof(s->mhd_message), "%s", msg);

        p = strstr(msg, code_marker);
        if (p && sscanf(p + sizeof(code_marker) - 1, "%u", &code) == 1 &&
            (code == MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE || code == MHD_HTTP_URI_TOO_LONG))
                limit_hit(s, HTTPD_LIMIT_HEADER, "request head over %zu bytes, answered %u", s->header_max,
                          code);
        else if (strstr(msg, "connection limit"))
                limit_hit(s, HTTPD_LIMIT_CONNECTIONS, "more than %u connections, refused at accept",
                          s->max_connections + HTTPD_CONNECTIONS_GRACE);
        else
                log_debug_s(LOG_SUBJECT, "libmicrohttpd: %s", msg);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
        HttpdServer *s = cls;

        if (code == MHD_CONNECTION_NOTIFY_STARTED) {
                s->stats.connections_accepted++;
                s->stats.connections_open++;
                if (s->stats.connections_open > s->max_connections)
                        *socket_context = &over_limit_marker;
        } else if (s->stats.connections_open > 0) {
                /* At its limit libmicrohttpd stops watching the listening socket and watches it
                 * again only on its next run: make sure there is one, or the backlog waits for the
                 * next timeout. */
                if (s->stats.connections_open >= s->max_connections + HTTPD_CONNECTIONS_GRACE)
                        server_kick(s);
                s->stats.connections_open--;
        }
}

/* ---- requests: lifetime ---- */

HttpdRequest *httpd_request_ref(HttpdRequest *r)
{
        if (r)
                r->n_ref++;
        return r;
}

HttpdRequest *httpd_request_unref(HttpdRequest *r)
{
        if (!r || --r->n_ref > 0)
                return NULL;

        free(r->method);
        free(r->target);
        free(r->path);
        for (size_t i = 0; i < r->n_params; i++)
                free(r->params[i].value);
        for (size_t i = 0; i < r->n_query; i++) {
                free(r->query[i].key);
                free(r->query[i].value);
        }
        free(r->query);
        for (size_t i = 0; i < r->n_headers; i++) {
                free(r->headers[i].name);
                free(r->headers[i].value);
        }
        buf_done(&r->body);
        if (r->context_free)
                r->context_free(r->context);
        free(r);
        return NULL;
}

static void request_set_phase(HttpdRequest *r, Phase p)
{
        if (r->phase == PHASE_PENDING && p != PHASE_PENDING && r->server &&
            r->server->stats.requests_pending > 0)
                r->server->stats.requests_pending--;
        if (p == PHASE_PENDING && r->phase != PHASE_PENDING && r->server)
                r->server->stats.requests_pending++;
        r->phase = p;
}

static void request_watch_stop(HttpdRequest *r)
{
        if (r->watching && r->server)
                ev_io_stop(r->server->loop, &r->watch);
        r->watching = false;
}

static void on_watch(struct ev_loop *loop, ev_io *w, int revents);

/* A parked connection is out of libmicrohttpd's sight, so a client that leaves would go unnoticed
 * until the answer is ready — forever for an idle stream. */
static void request_park(HttpdRequest *r)
{
        const union MHD_ConnectionInfo *ci;

        MHD_suspend_connection(r->conn);
        r->suspended = true;
        ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) {
                ev_io_init(&r->watch, on_watch, ci->connect_fd, EV_READ);
                r->watch.data = r;
                ev_io_start(r->server->loop, &r->watch);
                r->watching = true;
        }
}

static void request_wake(HttpdRequest *r)
{
        if (!r->suspended)
                return;
        request_watch_stop(r);
        r->suspended = false;
        MHD_resume_connection(r->conn);
        server_kick(r->server);
}

static void stream_finish(HttpdStream *st);

/* The request can no longer be answered (or is answered and over): tell its owner once. */
static void request_end(HttpdRequest *r)
{
        httpd_cancel_fn fn;

        if (r->cancelled)
                return;
        r->cancelled = true;
        if (r->stream) {
                stream_finish(r->stream);
        } else if (!r->responded && r->on_cancel) {
                fn = TAKE_PTR(r->on_cancel);
                fn(r, r->cancel_userdata);
        }
}

static void on_watch(struct ev_loop *loop, ev_io *w, int revents)
{
        HttpdRequest *r = w->data;
        _cleanup_(httpd_request_unrefp) HttpdRequest *ref = NULL;
        ssize_t n;
        char c;

        n = recv(w->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) {
                /* A pipelined request: the socket stays readable, so stop looking; a disconnect
                 * shows once the connection is resumed. */
                request_watch_stop(r);
                return;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;

        ref = httpd_request_ref(r);
        log_debug_s(LOG_SUBJECT, "%s %.*s: client %s left before the response", strna(r->method),
                    LOG_PATH_MAX, strna(r->path), r->remote);
        request_end(r);
        /* libmicrohttpd closes the connection once it runs it again. */
        request_wake(r);
}

static void request_unlink(HttpdRequest *r)
{
        HttpdServer *s = r->server;

        if (r->prev)
                r->prev->next = r->next;
        else if (s && s->requests == r)
                s->requests = r->next;
        if (r->next)
                r->next->prev = r->prev;
        r->prev = r->next = NULL;
}

static void request_format_remote(HttpdRequest *r)
{
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char ip[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;

                inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
                port = ntohs(in->sin_port);
                snprintf(r->remote, sizeof(r->remote), "%s:%u", ip, port);
        } else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ci->client_addr;

                inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
                port = ntohs(in6->sin6_port);
                snprintf(r->remote, sizeof(r->remote), "[%s]:%u", ip, port);
        } else {
                snprintf(r->remote, sizeof(r->remote), "?");
        }
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
        HttpdServer *s = cls;
        HttpdRequest *r;

        r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->target = strdup(uri);
        if (!r->target) {
                free(r);
                return NULL;
        }
        r->n_ref = 1;
        r->server = s;
        r->conn = c;
        r->start_ns = now_ns();
        request_format_remote(r);
        buf_init(&r->body, s->body_max);
        r->next = s->requests;
        if (s->requests)
                s->requests->prev = r;
        s->requests = r;
        return r;
}

static const char *termination_to_string(enum MHD_RequestTerminationCode toe)
{
        switch (toe) {
        case MHD_REQUEST_TERMINATED_COMPLETED_OK:
                return "completed";
        case MHD_REQUEST_TERMINATED_WITH_ERROR:
                return "error";
        case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
                return "timeout";
        case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
                return "shutdown";
        case MHD_REQUEST_TERMINATED_READ_ERROR:
                return "read-error";
        case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
                return "client-abort";
        default:
                return "unknown";
        }
}

static void request_finish(HttpdRequest *r, enum MHD_RequestTerminationCode toe)
{
        HttpdServer *s = r->server;
        char status[16] = "-";

        request_watch_stop(r);
        r->suspended = false;
        request_end(r);
        if (r->response)
                MHD_destroy_response(TAKE_PTR(r->response));

        if (r->status > 0)
                snprintf(status, sizeof(status), "%u", r->status);
        log_debug_s(LOG_SUBJECT, "%s %.*s status=%s bytes=%" PRIu64 " us=%" PRId64 " remote=%s%s%s",
                    r->method ?: "-", LOG_PATH_MAX, r->path ?: r->target, status, r->bytes,
                    (int64_t)((now_ns() - r->start_ns) / NSEC_PER_USEC), r->remote,
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " ended=",
                    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : termination_to_string(toe));

        if (s)
                s->stats.requests++;
        request_set_phase(r, PHASE_DONE);
        request_unlink(r);
        r->conn = NULL;
        r->server = NULL;
        httpd_request_unref(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        HttpdRequest *r = *con_cls;

        *con_cls = NULL;
        if (r)
                request_finish(r, toe);
}

/* ---- requests: accessors ---- */

const char *httpd_request_method(const HttpdRequest *r)
{
        return r ? strempty(r->method) : NULL;
}

const char *httpd_request_path(const HttpdRequest *r)
{
        return r ? strempty(r->path) : NULL;
}

const char *httpd_request_param(const HttpdRequest *r, const char *name)
{
        if (!r || !name)
                return NULL;
        for (size_t i = 0; i < r->n_params; i++)
                if (streq(r->params[i].name, name))
                        return r->params[i].value;
        return NULL;
}

const char *httpd_request_query_nth(const HttpdRequest *r, const char *key, size_t n)
{
        if (!r || !key)
                return NULL;
        for (size_t i = 0; i < r->n_query; i++)
                if (streq(r->query[i].key, key) && n-- == 0)
                        return r->query[i].value;
        return NULL;
}

const char *httpd_request_query(const HttpdRequest *r, const char *key)
{
        return httpd_request_query_nth(r, key, 0);
}

size_t httpd_request_query_count(const HttpdRequest *r)
{
        return r ? r->n_query : 0;
}

int httpd_request_query_at(const HttpdRequest *r, size_t i, const char **ret_key, const char **ret_value)
{
        if (!r || i >= r->n_query)
                return -ERANGE;
        if (ret_key)
                *ret_key = r->query[i].key;
        if (ret_value)
                *ret_value = r->query[i].value;
        return 0;
}

int httpd_request_query_bool(const HttpdRequest *r, const char *key, bool *ret)
{
        const char *v = httpd_request_query(r, key);

        if (!v)
                return 0;
        if (streq(v, "") || streq(v, "true"))
                *ret = true;
        else if (streq(v, "false"))
                *ret = false;
        else
                return -EINVAL;
        return 1;
}

const char *httpd_request_header(const HttpdRequest *r, const char *name)
{
        if (!r || !name || !r->conn || r->cancelled)
                return NULL;
        return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *httpd_request_body(const HttpdRequest *r, size_t *ret_len)
{
        if (ret_len)
                *ret_len = r ? r->body.len : 0;
        return r ? buf_str(&r->body) : "";
}

const char *httpd_request_remote(const HttpdRequest *r)
{
        return r ? r->remote : NULL;
}

const HttpdRoute *httpd_request_route(const HttpdRequest *r)
{
        return r ? r->route : NULL;
}

void httpd_request_set_context(HttpdRequest *r, void *context, void (*free_fn)(void *))
{
        if (!r)
                return;
        if (r->context_free)
                r->context_free(r->context);
        r->context = context;
        r->context_free = free_fn;
}

void *httpd_request_context(const HttpdRequest *r)
{
        return r ? r->context : NULL;
}

void httpd_request_on_cancel(HttpdRequest *r, httpd_cancel_fn fn, void *userdata)
{
        if (!r)
                return;
        r->on_cancel = fn;
        r->cancel_userdata = userdata;
}

bool httpd_request_cancelled(const HttpdRequest *r)
{
        return !r || r->cancelled;
}

/* RFC 9110 tchar */
static bool is_token(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", *s)))
                        return false;
        return true;
}

int httpd_request_add_header(HttpdRequest *r, const char *name, const char *value)
{
        ExtraHeader *h;

        if (!r || !is_token(name) || !value)
                return -EINVAL;
        for (const char *p = value; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                        return -EINVAL;
        if (r->responded)
                return -EALREADY;
        if (r->n_headers >= HTTPD_EXTRA_HEADERS_MAX)
                return -E2BIG;
        h = &r->headers[r->n_headers];
        h->name = strdup(name);
        h->value = strdup(value);
        if (!h->name || !h->value) {
                free(h->name);
                free(h->value);
                *h = (ExtraHeader){};
                return -ENOMEM;
        }
        r->n_headers++;
        return 0;
}

/* ---- responses ---- */

static int respond_check(HttpdRequest *r, unsigned status)
{
        if (!r || status < 100 || status > 599)
                return -EINVAL;
        if (r->responded)
                return -EALREADY;
        if (r->cancelled || !r->conn || !r->server)
                return -ECANCELED;
        return 0;
}

/* Takes resp whatever the outcome. */
static int response_set(HttpdRequest *r, unsigned status, const char *content_type,
                        struct MHD_Response *resp)
{
        if (content_type &&
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES)
                goto fail;
        for (size_t i = 0; i < r->n_headers; i++)
                if (MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value) != MHD_YES)
                        goto fail;

        r->response = resp;
        r->status = status;
        r->responded = true;
        /* An answer given later from the loop: the access handler queues it once resumed. */
        if (r->phase == PHASE_PENDING)
                request_wake(r);
        return 0;

fail:
        MHD_destroy_response(resp);
        return -ENOMEM;
}

int httpd_respond_take(HttpdRequest *r, unsigned status, const char *content_type, char *data, size_t len)
{
        _cleanup_free_ char *d = data;
        struct MHD_Response *resp;
        int k;

        k = respond_check(r, status);
        if (k < 0)
                return k;
        if (!d && len > 0)
                return -EINVAL;
        resp = MHD_create_response_from_buffer(len, d, MHD_RESPMEM_MUST_FREE);
        if (!resp)
                return -ENOMEM;
        TAKE_PTR(d);
        k = response_set(r, status, content_type, resp);
        if (k >= 0)
                r->bytes = len;
        return k;
}

int httpd_respond_buf(HttpdRequest *r, unsigned status, const char *content_type, const void *data,
                      size_t len)
{
        char *copy;
        int k;

        k = respond_check(r, status);
        if (k < 0)
                return k;
        if (!data && len > 0)
                return -EINVAL;
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, data, len);
        return httpd_respond_take(r, status, content_type, copy, len);
}

int httpd_respond_json(HttpdRequest *r, unsigned status, const json_t *j)
{
        char *s;
        int k;

        k = respond_check(r, status);
        if (k < 0)
                return k;
        if (!j)
                return -EINVAL;
        s = json_dumps_compact(j);
        if (!s)
                return -ENOMEM;
        return httpd_respond_take(r, status, "application/json", s, strlen(s));
}

int httpd_respond_text(HttpdRequest *r, unsigned status, const char *text)
{
        text = strempty(text);
        return httpd_respond_buf(r, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Messages often quote what the client sent; JSON needs UTF-8. */
static void utf8_sanitize(char *s)
{
        size_t len = strlen(s), off = 0, bad;

        while (off < len && !json_utf8_valid(s + off, len - off, &bad)) {
                s[off + bad] = '?';
                off += bad + 1;
        }
}

static json_t *error_body(const char *fmt, va_list ap) _printf_(1, 0);
static json_t *error_body(const char *fmt, va_list ap)
{
        char msg[HTTPD_ERROR_MESSAGE_MAX + 1];

        vsnprintf(msg, sizeof(msg), fmt, ap);
        utf8_sanitize(msg);
        return json_pack("{s:s}", "message", msg);
}

int httpd_respond_error(HttpdRequest *r, unsigned status, const char *fmt, ...)
{
        json_t *j;
        va_list ap;
        int k;

        k = respond_check(r, status);
        if (k < 0)
                return k;
        va_start(ap, fmt);
        j = error_body(fmt, ap);
        va_end(ap);
        if (!j)
                return -ENOMEM;
        k = httpd_respond_json(r, status, j);
        json_decref(j);
        return k;
}

/* libmicrohttpd cannot queue a response in the middle of an upload, so a chunked body that passes
 * its cap is refused by writing the answer straight to the socket before the connection is
 * dropped. The answer is small and the socket has sent nothing else: it fits the send buffer. */
static void respond_raw_and_close(HttpdRequest *r, unsigned status, const char *fmt, ...) _printf_(3, 4);
static void respond_raw_and_close(HttpdRequest *r, unsigned status, const char *fmt, ...)
{
        const union MHD_ConnectionInfo *ci;
        _cleanup_free_ char *body = NULL;
        char head[256];
        json_t *j;
        va_list ap;
        int n;

        va_start(ap, fmt);
        j = error_body(fmt, ap);
        va_end(ap);
        body = j ? json_dumps_compact(j) : NULL;
        json_decref(j);
        ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!body || !ci)
                return;
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, MHD_get_reason_phrase_for(status), strlen(body));
        struct iovec iov[2] = {
                { .iov_base = head, .iov_len = (size_t)n },
                { .iov_base = body, .iov_len = strlen(body) },
        };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = ELEMENTSOF(iov) };
        if (sendmsg(ci->connect_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
                r->status = status;
                r->bytes = strlen(body);
        }
        r->responded = true;
}

/* ---- routing ---- */

static CompiledRoute *routes_free(CompiledRoute *routes, size_t n)
{
        for (size_t i = 0; routes && i < n; i++) {
                for (size_t j = 0; j < routes[i].n_segs; j++)
                        free(routes[i].segs[j].text);
                free(routes[i].segs);
        }
        free(routes);
        return NULL;
}

static bool is_param_name(const char *s, size_t len)
{
        if (len == 0 || len >= HTTPD_PARAM_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

static int route_compile(const HttpdRoute *rt, size_t index, CompiledRoute *cr, PacerError *err)
{
        const char *pattern = rt->pattern, *p;
        unsigned n_captures = 0;

        *cr = (CompiledRoute){ .route = rt };
        if (!is_token(rt->method) || strlen(rt->method) >= METHOD_MAX)
                return pacer_error_set(err, EINVAL, "route %zu: method \"%s\" is not an HTTP method", index,
                                       strna(rt->method));
        if (!rt->handler)
                return pacer_error_set(err, EINVAL, "route %zu (%s %s): no handler", index, rt->method,
                                       strna(pattern));
        if (!pattern || pattern[0] != '/')
                return pacer_error_set(err, EINVAL, "route %zu (%s %s): pattern must start with '/'", index,
                                       rt->method, strna(pattern));

        cr->segs = calloc(HTTPD_PATH_SEGMENTS_MAX, sizeof(Seg));
        if (!cr->segs)
                return -ENOMEM;
        p = pattern + 1;
        while (*p) {
                const char *end = strchrnul(p, '/');
                size_t len = (size_t)(end - p);
                Seg *seg;

                if (len == 0)
                        return pacer_error_set(err, EINVAL, "route %zu (%s %s): empty segment at byte %zu",
                                               index, rt->method, pattern, (size_t)(p - pattern));
                if (cr->n_segs >= HTTPD_PATH_SEGMENTS_MAX)
                        return pacer_error_set(err, EINVAL, "route %zu (%s %s): more than %u segments",
                                               index, rt->method, pattern, HTTPD_PATH_SEGMENTS_MAX);
                seg = &cr->segs[cr->n_segs];
                if (len == 1 && p[0] == '*') {
                        seg->kind = SEG_REST;
                        seg->text = strdup("*");
                } else if (p[0] == '{') {
                        bool rest = len >= 3 && p[len - 2] == '*';
                        size_t name_len = len - 2 - rest;

                        if (p[len - 1] != '}' || !is_param_name(p + 1, name_len))
                                return pacer_error_set(
                                        err, EINVAL,
                                        "route %zu (%s %s): bad capture \"%.*s\" at byte %zu (want "
                                        "{name} or {name*}, name of [A-Za-z0-9_], under %u bytes)",
                                        index, rt->method, pattern, (int)len, p, (size_t)(p - pattern),
                                        HTTPD_PARAM_NAME_MAX);
                        seg->kind = rest ? SEG_REST : SEG_PARAM;
                        seg->text = strndup(p + 1, name_len);
                } else {
                        size_t bad = strcspn(p, "{}*%?#");

                        if (bad < len)
                                return pacer_error_set(
                                        err, EINVAL,
                                        "route %zu (%s %s): '%c' at byte %zu in a literal segment", index,
                                        rt->method, pattern, p[bad], (size_t)(p - pattern) + bad);
                        seg->kind = SEG_LITERAL;
                        seg->text = strndup(p, len);
                        cr->n_literal++;
                }
                if (!seg->text)
                        return -ENOMEM;
                cr->n_segs++;
                if (seg->kind != SEG_LITERAL) {
                        for (size_t j = 0; j + 1 < cr->n_segs; j++)
                                if (cr->segs[j].kind != SEG_LITERAL && streq(cr->segs[j].text, seg->text))
                                        return pacer_error_set(
                                                err, EINVAL,
                                                "route %zu (%s %s): capture \"%s\" appears twice", index,
                                                rt->method, pattern, seg->text);
                        if (++n_captures > HTTPD_PARAMS_MAX)
                                return pacer_error_set(err, EINVAL,
                                                       "route %zu (%s %s): more than %u captures", index,
                                                       rt->method, pattern, HTTPD_PARAMS_MAX);
                }
                if (seg->kind == SEG_PARAM)
                        cr->n_param++;
                p = *end ? end + 1 : end;
                if (*end && !*p)
                        return pacer_error_set(err, EINVAL, "route %zu (%s %s): trailing '/'", index,
                                               rt->method, pattern);
        }

        cr->rest = cr->n_segs;
        for (size_t j = 0; j < cr->n_segs; j++)
                if (cr->segs[j].kind == SEG_REST) {
                        if (cr->rest != cr->n_segs)
                                return pacer_error_set(
                                        err, EINVAL,
                                        "route %zu (%s %s): more than one multi-segment capture", index,
                                        rt->method, pattern);
                        cr->rest = j;
                }
        return 0;
}

static bool seg_match(const Seg *pat, const char *seg)
{
        return pat->kind == SEG_LITERAL ? streq(pat->text, seg) : *seg != 0;
}

static int capture(HttpdRequest *r, const char *name, char *value)
{
        Capture *c;

        if (!value)
                return -ENOMEM;
        if (r->n_params >= HTTPD_PARAMS_MAX) {
                free(value);
                return -E2BIG;
        }
        c = &r->params[r->n_params++];
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->value = value;
        return 0;
}

/* Matches the decoded segments against cr; with r, also records the captures. */
static int route_match(const CompiledRoute *cr, char *const *segs, size_t n, HttpdRequest *r)
{
        size_t k = cr->rest, suffix, rest_end;
        int q;

        if (k == cr->n_segs) {
                if (n != cr->n_segs)
                        return 0;
                suffix = 0;
                rest_end = n;
        } else {
                suffix = cr->n_segs - k - 1;
                if (n < k + 1 + suffix)
                        return 0;
                rest_end = n - suffix;
        }
        for (size_t i = 0; i < k; i++)
                if (!seg_match(&cr->segs[i], segs[i]))
                        return 0;
        for (size_t i = 0; i < suffix; i++)
                if (!seg_match(&cr->segs[k + 1 + i], segs[rest_end + i]))
                        return 0;
        if (k < cr->n_segs) {
                size_t len = 0;

                for (size_t i = k; i < rest_end; i++)
                        len += strlen(segs[i]) + 1;
                if (len <= rest_end - k) /* only empty segments */
                        return 0;
        }
        if (!r)
                return 1;

        for (size_t i = 0; i < cr->n_segs; i++) {
                const Seg *pat = &cr->segs[i];
                size_t at = i < k ? i : i == k ? k : rest_end + (i - k - 1);

                if (pat->kind == SEG_PARAM) {
                        q = capture(r, pat->text, strdup(segs[at]));
                } else if (pat->kind == SEG_REST) {
                        _cleanup_(buf_done) Buf joined = BUF_INIT(SIZE_MAX);

                        for (size_t j = k; j < rest_end; j++)
                                if ((j > k && buf_putc(&joined, '/') < 0) || buf_puts(&joined, segs[j]) < 0)
                                        return -ENOMEM;
                        q = capture(r, pat->text, buf_steal(&joined, NULL));
                } else {
                        continue;
                }
                if (q < 0)
                        return q;
        }
        return 1;
}

static int unhex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

/* Decodes %XX (and '+' as a space when plus) from s[0..len) into out, which has room for len + 1.
 * Rejects a bad escape and a decoded NUL (*ret_bad: offset in s). */
static int pct_decode(const char *s, size_t len, bool plus, char *out, size_t *ret_bad)
{
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                int hi, lo;

                if (s[i] != '%') {
                        out[o++] = plus && s[i] == '+' ? ' ' : s[i];
                        continue;
                }
                hi = i + 2 < len ? unhex(s[i + 1]) : -EINVAL;
                lo = hi >= 0 ? unhex(s[i + 2]) : -EINVAL;
                if (lo < 0 || (hi | lo) == 0) {
                        *ret_bad = i;
                        return -EINVAL;
                }
                out[o++] = (char)(hi << 4 | lo);
                i += 2;
        }
        out[o] = 0;
        return 0;
}

static char *decode_dup(const char *s, size_t len, bool plus, size_t *ret_bad)
{
        _cleanup_free_ char *out = malloc(len + 1);

        if (!out)
                return NULL;
        if (pct_decode(s, len, plus, out, ret_bad) < 0)
                return NULL;
        return TAKE_PTR(out);
}

static int request_parse_query(HttpdRequest *r, const char *q)
{
        HttpdServer *s = r->server;

        while (*q) {
                const char *amp = strchrnul(q, '&'), *eq;
                size_t bad = SIZE_MAX;
                QueryPair *pair;

                if (amp == q) {
                        q++;
                        continue;
                }
                if (r->n_query >= HTTPD_QUERY_PARAMS_MAX) {
                        limit_hit(s, HTTPD_LIMIT_PATH, "more than %u query parameters from %s",
                                  HTTPD_QUERY_PARAMS_MAX, r->remote);
                        return httpd_respond_error(r, MHD_HTTP_BAD_REQUEST, "more than %u query parameters",
                                                   HTTPD_QUERY_PARAMS_MAX);
                }
                if (!r->query) {
                        r->query = calloc(HTTPD_QUERY_PARAMS_MAX, sizeof(QueryPair));
                        if (!r->query)
                                return -ENOMEM;
                }
                eq = memchr(q, '=', (size_t)(amp - q));
                pair = &r->query[r->n_query];
                pair->key = decode_dup(q, (size_t)((eq ?: amp) - q), true, &bad);
                if (pair->key)
                        pair->value =
                                eq ? decode_dup(eq + 1, (size_t)(amp - eq - 1), true, &bad) : strdup("");
                if (!pair->key || !pair->value) {
                        free(pair->key);
                        pair->key = NULL;
                        if (bad == SIZE_MAX)
                                return -ENOMEM;
                        return httpd_respond_error(r, MHD_HTTP_BAD_REQUEST,
                                                   "query parameter %zu: invalid percent-encoding",
                                                   r->n_query + 1);
                }
                r->n_query++;
                if (!json_utf8_valid(pair->key, strlen(pair->key), NULL) ||
                    !json_utf8_valid(pair->value, strlen(pair->value), NULL))
                        return httpd_respond_error(r, MHD_HTTP_BAD_REQUEST,
                                                   "query parameter %zu is not valid UTF-8", r->n_query);
                q = *amp ? amp + 1 : amp;
        }
        return 0;
}

static int request_route(HttpdRequest *r, char *const *segs, size_t n)
{
        HttpdServer *s = r->server;
        const CompiledRoute *best = NULL;
        unsigned best_score = 0;
        bool any = false;

        for (int pass = 0; pass < 2 && !best; pass++) {
                /* HEAD falls back to GET; a route for HEAD itself wins in the first pass. */
                const char *want = pass == 0 ? r->method : "GET";

                if (pass == 1 && !streq(r->method, "HEAD"))
                        break;
                for (size_t i = 0; i < s->n_routes; i++) {
                        const CompiledRoute *cr = &s->routes[i];
                        unsigned score = cr->n_literal << 8 | cr->n_param;

                        if (route_match(cr, segs, n, NULL) <= 0)
                                continue;
                        any = true;
                        if (streq(cr->route->method, want) && (!best || score > best_score)) {
                                best = cr;
                                best_score = score;
                        }
                }
        }

        if (!best && !any)
                return httpd_respond_error(r, MHD_HTTP_NOT_FOUND, "no route for %s %.*s", r->method,
                                           LOG_PATH_MAX, r->path);
        if (!best) {
                _cleanup_(buf_done) Buf allow = BUF_INIT(ALLOW_MAX);
                bool get = false, head = false;
                int k;

                for (size_t i = 0; i < s->n_routes; i++) {
                        const char *m = s->routes[i].route->method;
                        bool seen = false;

                        if (route_match(&s->routes[i], segs, n, NULL) <= 0)
                                continue;
                        for (size_t j = 0; j < i && !seen; j++)
                                seen = streq(s->routes[j].route->method, m) &&
                                       route_match(&s->routes[j], segs, n, NULL) > 0;
                        if (seen)
                                continue;
                        get = get || streq(m, "GET");
                        head = head || streq(m, "HEAD");
                        (void)buf_printf(&allow, "%s%s", allow.len ? ", " : "", m);
                }
                if (get && !head)
                        (void)buf_puts(&allow, ", HEAD");
                k = httpd_request_add_header(r, MHD_HTTP_HEADER_ALLOW, buf_str(&allow));
                if (k < 0)
                        return k;
                return httpd_respond_error(r, MHD_HTTP_METHOD_NOT_ALLOWED,
                                           "method %s not allowed for %.*s (allowed: %s)", r->method,
                                           LOG_PATH_MAX, r->path, buf_str(&allow));
        }

        r->route = best->route;
        return route_match(best, segs, n, r);
}

/* Splits and decodes the path, parses the query, finds the route. Answers the client itself when
 * the target is bad or nothing matches; < 0 only for a server failure. */
static int request_parse_and_route(HttpdRequest *r)
{
        HttpdServer *s = r->server;
        _cleanup_free_ char *decoded = NULL;
        char *segs[HTTPD_PATH_SEGMENTS_MAX];
        const char *t = r->target, *q;
        size_t plen, n = 0, o = 0, start;
        int k;

        if (t[0] != '/')
                return httpd_respond_error(r, MHD_HTTP_BAD_REQUEST,
                                           "request target must be a path starting with '/'");
        q = strchr(t, '?');
        plen = q ? (size_t)(q - t) : strlen(t);
        r->path = strndup(t, plen);
        decoded = malloc(plen + 1);
        if (!r->path || !decoded)
                return -ENOMEM;

        /* "/a/b/" is "/a/b"; "/" has no segments. */
        if (plen > 1 && t[plen - 1] == '/')
                plen--;
        start = 1;
        while (plen > 1 && start <= plen) {
                const char *seg = t + start, *end = memchr(seg, '/', plen - start) ?: t + plen;
                size_t len = (size_t)(end - seg), bad;

                if (n >= HTTPD_PATH_SEGMENTS_MAX) {
                        limit_hit(s, HTTPD_LIMIT_PATH, "path with more than %u segments from %s",
                                  HTTPD_PATH_SEGMENTS_MAX, r->remote);
                        return httpd_respond_error(r, MHD_HTTP_URI_TOO_LONG,
                                                   "path has more than %u segments",
                                                   HTTPD_PATH_SEGMENTS_MAX);
                }
                if (pct_decode(seg, len, false, decoded + o, &bad) < 0)
                        return httpd_respond_error(r, MHD_HTTP_BAD_REQUEST,
                                                   "invalid percent-encoding in the path at byte %zu",
                                                   start + bad);
                if (!json_utf8_valid(decoded + o, strlen(decoded + o), NULL))
                        return httpd_respond_error(r, MHD_HTTP_BAD_REQUEST,
                                                   "path segment %zu is not valid UTF-8", n + 1);
                segs[n++] = decoded + o;
                o += strlen(decoded + o) + 1;
                start += len + 1;
        }

        if (q) {
                k = request_parse_query(r, q + 1);
                if (k < 0 || r->responded)
                        return k;
        }
        return request_route(r, segs, n);
}

/* ---- the access handler ---- */

static enum MHD_Result request_queue(HttpdRequest *r)
{
        struct MHD_Response *resp = TAKE_PTR(r->response);
        enum MHD_Result q;

        request_set_phase(r, PHASE_QUEUED);
        if (!resp)
                return MHD_NO;
        q = MHD_queue_response(r->conn, r->status, resp);
        MHD_destroy_response(resp);
        return q;
}

/* A failure of ours or of a handler: logged here, and the client gets a 500. */
static void request_answer_failure(HttpdRequest *r, int error, const char *why)
{
        log_error_errno_s(LOG_SUBJECT, error, "%s %.*s: %s: %m", r->method, LOG_PATH_MAX, strna(r->path),
                          why);
        (void)httpd_respond_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal server error: %s",
                                  strerror(-error));
}

static enum MHD_Result request_begin(HttpdRequest *r, const char *method)
{
        HttpdServer *s = r->server;
        const union MHD_ConnectionInfo *ci;
        const char *te, *cl;
        uint64_t length = 0;
        size_t body_max;
        bool chunked, too_large = false;
        int k;

        r->method = strdup(method);
        if (!r->method)
                return MHD_NO;
        request_set_phase(r, PHASE_BODY);

        te = httpd_request_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
        cl = httpd_request_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        chunked = te && strcasestr(te, "chunked");
        if (cl)
                length = strtoull(cl, NULL, 10);
        r->has_body = chunked || length > 0;

        ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context == &over_limit_marker) {
                limit_hit(s, HTTPD_LIMIT_CONNECTIONS, "more than %u connections, answering 503",
                          s->max_connections);
                (void)httpd_request_add_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
                (void)httpd_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                          "too many connections (limit %u), try again later",
                                          s->max_connections);
                return request_queue(r);
        }

        k = request_parse_and_route(r);
        if (k < 0)
                request_answer_failure(r, k, "cannot route the request");

        body_max = r->route && r->route->body_max > 0 ? r->route->body_max : s->body_max;
        r->body.max = body_max;
        if (!chunked && length > body_max) {
                too_large = true;
                if (!r->responded) {
                        limit_hit(s, HTTPD_LIMIT_BODY, "%s %.*s from %s: body of %" PRIu64 " bytes, cap %zu",
                                  r->method, LOG_PATH_MAX, r->path, r->remote, length, body_max);
                        (void)httpd_respond_error(r, MHD_HTTP_CONTENT_TOO_LARGE,
                                                  "request body of %" PRIu64
                                                  " bytes is over the limit of %zu bytes",
                                                  length, body_max);
                }
        }

        if (!r->responded && r->route && s->auth) {
                r->in_handler = true;
                k = s->auth(r, r->route, s->userdata);
                r->in_handler = false;
                if (k < 0 && !r->responded)
                        request_answer_failure(r, k, "authorization failed");
                else if (k > 0 && !r->responded)
                        (void)httpd_respond_error(r, k >= 400 && k < 500 ? (unsigned)k : MHD_HTTP_FORBIDDEN,
                                                  k == MHD_HTTP_UNAUTHORIZED ? "authentication required"
                                                                             : "not authorized");
        }

        /* A known answer waits for a small body to be dropped, so the connection stays usable; a body
         * too large, or of unknown length, is not read at all. */
        if (r->responded && (!r->has_body || chunked || too_large))
                return request_queue(r);
        return r->responded || r->route ? MHD_YES : MHD_NO;
}

static enum MHD_Result request_upload(HttpdRequest *r, const char *data, size_t *size)
{
        HttpdServer *s = r->server;
        size_t n = *size;
        int k;

        *size = 0;
        s->stats.body_bytes += n;
        if (r->responded)
                return MHD_YES;
        k = buf_append(&r->body, data, n);
        if (k == -EMSGSIZE) {
                limit_hit(s, HTTPD_LIMIT_BODY, "%s %.*s from %s: chunked body over %zu bytes", r->method,
                          LOG_PATH_MAX, r->path, r->remote, r->body.max);
                respond_raw_and_close(r, MHD_HTTP_CONTENT_TOO_LARGE,
                                      "request body is over the limit of %zu bytes", r->body.max);
                return MHD_NO;
        }
        return k < 0 ? MHD_NO : MHD_YES;
}

static enum MHD_Result request_dispatch(HttpdRequest *r)
{
        HttpdServer *s = r->server;
        int k;

        if (r->responded)
                return request_queue(r);
        if (!r->route)
                return MHD_NO;

        s->stats.handler_calls++;
        r->in_handler = true;
        k = r->route->handler(r, s->userdata);
        r->in_handler = false;

        if (!r->responded) {
                if (k == HTTPD_PENDING && r->n_ref > 1) {
                        request_set_phase(r, PHASE_PENDING);
                        request_park(r);
                        return MHD_YES;
                }
                if (k == HTTPD_PENDING)
                        request_answer_failure(r, -EPROTO,
                                               "handler returned pending without keeping a reference");
                else if (k >= 0)
                        request_answer_failure(r, -EPROTO, "handler returned without a response");
                else
                        request_answer_failure(r, k, "handler failed");
        }
        return request_queue(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
        HttpdRequest *r = *con_cls;

        if (!r)
                return MHD_NO;
        switch (r->phase) {
        case PHASE_NEW:
                return request_begin(r, method);
        case PHASE_BODY:
                if (*upload_data_size > 0)
                        return request_upload(r, upload_data, upload_data_size);
                return request_dispatch(r);
        case PHASE_PENDING:
                /* Resumed: either the answer is there or the client left. */
                if (r->cancelled || !r->responded)
                        return MHD_NO;
                return request_queue(r);
        default:
                return MHD_NO;
        }
}

/* ---- streams ---- */

static HttpdStream *stream_unref(HttpdStream *st)
{
        if (!st || --st->n_ref > 0)
                return NULL;
        if (st->req->stream == st)
                st->req->stream = NULL;
        httpd_request_unref(st->req);
        buf_done(&st->buf);
        free(st);
        return NULL;
}

/* Nothing more can be sent: the response is over or the client left. */
static void stream_finish(HttpdStream *st)
{
        HttpdServer *s = st->req->server;

        if (st->gone)
                return;
        st->gone = true;
        if (st->counted && s && s->stats.streams_open > 0)
                s->stats.streams_open--;
        st->counted = false;
        if (!st->owner_closed && st->on_close) {
                st->n_ref++;
                st->on_close(st, st->userdata);
                stream_unref(st);
        }
}

static void stream_response_free(void *cls)
{
        HttpdStream *st = cls;

        stream_finish(st);
        stream_unref(st);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
        HttpdStream *st = cls;
        HttpdRequest *r = st->req;
        size_t queued = st->buf.len - st->head, n;

        if (st->gone || r->cancelled || !r->conn)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (queued > 0) {
                n = MIN(queued, max);
                memcpy(out, st->buf.data + st->head, n);
                st->head += n;
                if (st->head == st->buf.len) {
                        /* Idle streams hold no memory. */
                        buf_done(&st->buf);
                        st->head = 0;
                }
                r->bytes += n;
                return (ssize_t)n;
        }
        if (st->owner_closed)
                return MHD_CONTENT_READER_END_OF_STREAM;
        /* Nothing to send: park the connection rather than have libmicrohttpd ask again at once. */
        request_park(r);
        return 0;
}

int httpd_stream_start(HttpdRequest *r, unsigned status, const HttpdStreamOptions *o, HttpdStream **ret)
{
        struct MHD_Response *resp;
        HttpdServer *s;
        HttpdStream *st;
        int k;

        if (!o || !o->content_type || !ret)
                return -EINVAL;
        k = respond_check(r, status);
        if (k < 0)
                return k;
        s = r->server;
        if (s->stats.streams_open >= s->max_streams) {
                limit_hit(s, HTTPD_LIMIT_STREAMS, "%s %.*s from %s: %u streams open", r->method,
                          LOG_PATH_MAX, r->path, r->remote, s->stats.streams_open);
                (void)httpd_respond_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                                          "too many open streams (limit %u), try again later",
                                          s->max_streams);
                return -EBUSY;
        }

        st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->n_ref = 2;
        st->req = httpd_request_ref(r);
        st->buffer_max = o->buffer_max > 0 ? o->buffer_max : s->stream_buffer_max;
        buf_init(&st->buf, st->buffer_max + HTTPD_STREAM_FINAL_MAX);
        st->on_close = o->on_close;
        st->userdata = o->userdata;
        r->stream = st;

        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK_SIZE, stream_read, st,
                                                 stream_response_free);
        if (!resp) {
                r->stream = NULL;
                st->n_ref = 1;
                stream_unref(st);
                return -ENOMEM;
        }
        st->counted = true;
        s->stats.streams_open++;
        /* Should the response be dropped right away, the owner hears nothing: it gets the error. */
        st->owner_closed = true;
        k = response_set(r, status, o->content_type, resp);
        if (k < 0) {
                stream_unref(st);
                return k;
        }
        st->owner_closed = false;
        *ret = st;
        return 0;
}

static void stream_wake(HttpdStream *st)
{
        if (st->req->suspended && st->req->phase == PHASE_QUEUED)
                request_wake(st->req);
}

/* Moves the queued bytes to the front when the free space is behind them. */
static void stream_compact(HttpdStream *st, size_t want)
{
        if (st->head > 0 && st->buf.len + want > st->buf.max) {
                buf_consume(&st->buf, st->head);
                st->head = 0;
        }
}

int httpd_stream_write(HttpdStream *st, const void *data, size_t len)
{
        size_t queued;
        int k;

        if (!st || (!data && len > 0))
                return -EINVAL;
        if (st->gone || st->owner_closed || st->req->cancelled)
                return -EPIPE;
        if (len == 0)
                return 0;
        queued = st->buf.len - st->head;
        if (queued >= st->buffer_max || len > st->buffer_max - queued) {
                limit_hit(st->req->server, HTTPD_LIMIT_STREAM_BUFFER,
                          "stream %.*s to %s: %zu bytes queued, cap %zu", LOG_PATH_MAX, st->req->path,
                          st->req->remote, queued, st->buffer_max);
                return -ENOBUFS;
        }
        stream_compact(st, len);
        k = buf_append(&st->buf, data, len);
        if (k < 0)
                return k;
        stream_wake(st);
        return 0;
}

size_t httpd_stream_queued(const HttpdStream *st)
{
        return st ? st->buf.len - st->head : 0;
}

HttpdRequest *httpd_stream_request(const HttpdStream *st)
{
        return st ? st->req : NULL;
}

HttpdStream *httpd_stream_close_with(HttpdStream *st, const void *data, size_t len)
{
        if (!st || st->owner_closed)
                return NULL;
        if (!st->gone && data && len > 0 && len <= HTTPD_STREAM_FINAL_MAX) {
                stream_compact(st, len);
                (void)buf_append(&st->buf, data, len);
        }
        st->owner_closed = true;
        if (!st->gone)
                stream_wake(st);
        return stream_unref(st);
}

HttpdStream *httpd_stream_close(HttpdStream *st)
{
        return httpd_stream_close_with(st, NULL, 0);
}

/* ---- the server ---- */

static int listen_parse(const char *s, struct sockaddr_storage *ret, PacerError *err)
{
        char host[INET6_ADDRSTRLEN + 2];
        const char *colon, *h = s;
        size_t hlen;
        char *end;
        unsigned long port;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');

                if (!close || close[1] != ':')
                        return pacer_error_set(err, EINVAL, "listen address \"%s\": want [IPv6]:port", s);
                h = s + 1;
                hlen = (size_t)(close - h);
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return pacer_error_set(err, EINVAL, "listen address \"%s\": want IP:port", s);
                hlen = (size_t)(colon - s);
        }
        if (hlen == 0 || hlen >= sizeof(host))
                return pacer_error_set(err, EINVAL, "listen address \"%s\": bad IP address", s);
        memcpy(host, h, hlen);
        host[hlen] = 0;
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || errno || port > UINT16_MAX || colon[1] == '-' || colon[1] == '+')
                return pacer_error_set(err, EINVAL, "listen address \"%s\": bad port \"%s\"", s, colon + 1);

        *ret = (struct sockaddr_storage){};
        if (s[0] == '[') {
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ret;

                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
                        return pacer_error_set(err, EINVAL,
                                               "listen address \"%s\": \"%s\" is not an IPv6 address", s,
                                               host);
        } else {
                struct sockaddr_in *in = (struct sockaddr_in *)ret;

                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t)port);
                if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
                        return pacer_error_set(
                                err, EINVAL,
                                "listen address \"%s\": \"%s\" is not an IPv4 address (names are "
                                "not resolved)",
                                s, host);
        }
        return 0;
}

int httpd_new(struct ev_loop *loop, const HttpdOptions *o, HttpdServer **ret, PacerError *err)
{
        _cleanup_(httpd_freep) HttpdServer *s = NULL;
        const union MHD_DaemonInfo *info;
        struct sockaddr_storage addr;
        const char *listen;
        unsigned flags;
        int k;

        if (!loop || !o || !ret || (o->n_routes > 0 && !o->routes))
                return pacer_error_set(err, EINVAL, "httpd: missing loop, options or routes");
        if (o->header_max > 0 && o->header_max < HTTPD_HEADER_MAX_MIN)
                return pacer_error_set(err, EINVAL, "httpd: header_max %zu is under the minimum of %u bytes",
                                       o->header_max, HTTPD_HEADER_MAX_MIN);
        listen = o->listen ?: LISTEN_DEFAULT;
        k = listen_parse(listen, &addr, err);
        if (k < 0)
                return k;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        s->max_connections = o->max_connections ?: HTTPD_MAX_CONNECTIONS_DEFAULT;
        s->idle_timeout_s = o->idle_timeout_s ?: HTTPD_IDLE_TIMEOUT_S_DEFAULT;
        s->header_max = o->header_max ?: HTTPD_HEADER_MAX_DEFAULT;
        s->body_max = o->body_max ?: HTTPD_BODY_MAX_DEFAULT;
        s->max_streams = o->max_streams ?: HTTPD_MAX_STREAMS_DEFAULT;
        s->stream_buffer_max = o->stream_buffer_max ?: HTTPD_STREAM_BUFFER_MAX_DEFAULT;
        s->auth = o->auth;
        s->userdata = o->userdata;

        s->routes = calloc(o->n_routes ?: 1, sizeof(CompiledRoute));
        if (!s->routes)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_routes; i++) {
                k = route_compile(&o->routes[i], i, &s->routes[s->n_routes], err);
                s->n_routes++;
                if (k < 0)
                        return k == -ENOMEM ? pacer_error_set(err, ENOMEM, "httpd: out of memory") : k;
        }

        /* No polling thread: the loop watches libmicrohttpd's epoll fd and its timeout. Suspend and
         * resume come with an inter-thread channel (MHD_ALLOW_SUSPEND_RESUME includes MHD_USE_ITC)
         * that makes the epoll fd readable on resume; in external mode a resumed connection is only
         * served by a later MHD_run(), which server_kick() schedules. */
        flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        if (addr.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        s->starting = true;
        errno = 0;
        s->mhd = MHD_start_daemon(
                flags, 0, NULL, NULL, on_access, s,
                /* first, so that every message goes to our log */
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                MHD_OPTION_CONNECTION_LIMIT, s->max_connections + HTTPD_CONNECTIONS_GRACE,
                MHD_OPTION_CONNECTION_TIMEOUT, s->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                s->header_max, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_END);
        s->starting = false;
        if (!s->mhd) {
                int e = errno == EADDRINUSE || errno == EACCES || errno == EADDRNOTAVAIL ? errno : EIO;

                return pacer_error_set(err, e, "httpd: cannot listen on %s: %s", listen,
                                       s->mhd_message[0] ? s->mhd_message : strerror(e));
        }

        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : 0;
        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return pacer_error_set(err, EIO, "httpd: libmicrohttpd has no epoll fd");
        ev_io_init(&s->io, on_io, info->epoll_fd, EV_READ);
        s->io.data = s;
        ev_io_start(loop, &s->io);
        ev_init(&s->timer, on_timer);
        s->timer.data = s;
        server_arm(s);

        log_info_s(LOG_SUBJECT, "listening on %s (port %u)", listen, s->port);
        *ret = TAKE_PTR(s);
        return 0;
}

HttpdServer *httpd_free(HttpdServer *s)
{
        HttpdRequest *r;

        if (!s)
                return NULL;
        s->stopping = true;
        if (s->mhd) {
                /* libmicrohttpd must not be stopped with parked connections. */
                for (r = s->requests; r; r = r->next)
                        if (r->suspended) {
                                request_watch_stop(r);
                                r->suspended = false;
                                MHD_resume_connection(r->conn);
                        }
                /* Finishes every request: cancel and close callbacks fire. */
                MHD_stop_daemon(s->mhd);
                s->mhd = NULL;
        }
        while ((r = s->requests))
                request_finish(r, MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN);
        ev_io_stop(s->loop, &s->io);
        ev_timer_stop(s->loop, &s->timer);
        routes_free(s->routes, s->n_routes);
        free(s);
        return NULL;
}

uint16_t httpd_port(const HttpdServer *s)
{
        return s ? s->port : 0;
}

void httpd_get_stats(const HttpdServer *s, HttpdStats *ret)
{
        *ret = s ? s->stats : (HttpdStats){};
}
