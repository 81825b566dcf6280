/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler's HTTP server: libmicrohttpd in external epoll mode, driven by the libev loop (no
 * threads), a { method, pattern, handler } routing table, request bodies collected under a cap,
 * responses given at once or later from the loop, and bounded streams for SSE.
 *
 * Patterns: segments separated by '/'. A literal segment matches itself; `{name}` matches one
 * non-empty segment; `{name*}` matches one or more segments, slashes kept (app ids contain
 * slashes), and may be followed by more segments that then match the end of the path:
 * `/v2/apps/{id*}/restart`. A bare `*` segment is the same, read back as param "*". Captures
 * are percent-decoded (and must be UTF-8 without NUL); a trailing '/' on the request path is
 * ignored. When several patterns match, a route of the request's method wins, then the one with
 * the most literal segments, then the most `{name}` captures, then the first in the table. A
 * path that matches only routes of other methods gets 405 with an Allow header; a path that
 * matches none, 404. HEAD is served by a GET route unless a HEAD route exists.
 *
 * Callback contract: handlers and callbacks run on the loop and each callback fires at most
 * once; none fires from inside an httpd_* call of its owner, except httpd_free(). */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "macro.h"

struct ev_loop;

typedef struct HttpdServer HttpdServer;
typedef struct HttpdRequest HttpdRequest;
typedef struct HttpdStream HttpdStream;

/* Connections served at once; the next ones get 503 (see HTTPD_CONNECTIONS_GRACE). */
#define HTTPD_MAX_CONNECTIONS_DEFAULT 1024u
/* Connections accepted past max_connections only to be told 503; beyond these, libmicrohttpd
 * stops accepting and new connections wait in the kernel's listen backlog until one closes. */
#define HTTPD_CONNECTIONS_GRACE 16u
/* A connection with no traffic for this long is closed (idle keep-alive, stalled upload or a
 * client that stopped reading). Parked requests and idle streams are exempt. */
#define HTTPD_IDLE_TIMEOUT_S_DEFAULT 60u
/* Memory per connection for parsing the request line and headers: a request head that does not
 * fit gets 431 (414 when the request line alone is too long). */
#define HTTPD_HEADER_MAX_DEFAULT (32u * 1024)
#define HTTPD_HEADER_MAX_MIN     (4u * 1024)
/* Request body cap, unless the route sets its own. */
#define HTTPD_BODY_MAX_DEFAULT (1024u * 1024)
/* Open streams at once; the next httpd_stream_start() answers 503. */
#define HTTPD_MAX_STREAMS_DEFAULT 256u
/* Bytes queued per stream before httpd_stream_write() refuses with -ENOBUFS. */
#define HTTPD_STREAM_BUFFER_MAX_DEFAULT (256u * 1024)
/* Final data httpd_stream_close_with() may queue past the cap (a last "you were cut" event). */
#define HTTPD_STREAM_FINAL_MAX 4096u
/* Path segments in a request; more get 414. */
#define HTTPD_PATH_SEGMENTS_MAX 64u
/* Query parameters in a request; more get 400. */
#define HTTPD_QUERY_PARAMS_MAX 64u
/* Captures in one pattern, and the length of a capture's name. */
#define HTTPD_PARAMS_MAX     8u
#define HTTPD_PARAM_NAME_MAX 32u
/* Extra response headers per request (httpd_request_add_header()). */
#define HTTPD_EXTRA_HEADERS_MAX 16u
/* An error message (httpd_respond_error()) is cut to this many bytes. */
#define HTTPD_ERROR_MESSAGE_MAX 1024u

/* What a handler returns. */
enum {
        HTTPD_DONE = 0,    /* it responded (or started a stream) */
        HTTPD_PENDING = 1, /* it took a reference (httpd_request_ref()) and responds later */
};
/* A negative errno from a handler that did not respond becomes a 500. */
typedef int (*httpd_handler_fn)(HttpdRequest *req, void *userdata);

typedef struct HttpdRoute {
        const char *method; /* "GET", "POST", ... (case-sensitive, as HTTP methods are) */
        const char *pattern;
        httpd_handler_fn handler;
        size_t body_max; /* request body cap; 0 = the server's body_max */
        int action;      /* opaque to httpd: what the auth callback checks (read, write, ...) */
} HttpdRoute;

/* A table entry: HTTPD_ROUTE("GET", "/v2/apps/{id*}", get_app, .action = ACTION_READ). */
#define HTTPD_ROUTE(method_, pattern_, handler_, ...)                                          \
        {                                                                                      \
                .method = (method_), .pattern = (pattern_), .handler = (handler_), __VA_ARGS__ \
        }

/* Called once per routed request, when the headers are in and before the body is read. Returns
 * 0 to let the request through, 401 or 403 (any 4xx) to refuse it — the server answers
 * {"message": ...} unless the callback responded itself (e.g. with a WWW-Authenticate header) —
 * or a negative errno for a 500. It may attach the principal with httpd_request_set_context(). */
typedef int (*httpd_auth_fn)(HttpdRequest *req, const HttpdRoute *route, void *userdata);

typedef struct HttpdOptions {
        const char *listen;       /* "127.0.0.1:8080", "[::1]:0", "0.0.0.0:8080"; port 0 = any free
                                   * port (see httpd_port()); NULL = "127.0.0.1:0" */
        unsigned max_connections; /* 0 = HTTPD_MAX_CONNECTIONS_DEFAULT */
        unsigned idle_timeout_s;  /* 0 = HTTPD_IDLE_TIMEOUT_S_DEFAULT */
        size_t header_max;        /* 0 = HTTPD_HEADER_MAX_DEFAULT; at least HTTPD_HEADER_MAX_MIN */
        size_t body_max;          /* 0 = HTTPD_BODY_MAX_DEFAULT */
        unsigned max_streams;     /* 0 = HTTPD_MAX_STREAMS_DEFAULT */
        size_t stream_buffer_max; /* 0 = HTTPD_STREAM_BUFFER_MAX_DEFAULT */
        const HttpdRoute *routes; /* must outlive the server and every request it made */
        size_t n_routes;
        httpd_auth_fn auth; /* optional */
        void *userdata;     /* for handlers and auth */
} HttpdOptions;

/* Limits, for stats and logs: each hit answers the client with the status noted and is logged
 * once at warning level (later hits of the same limit at debug level). */
typedef enum HttpdLimit {
        HTTPD_LIMIT_CONNECTIONS,   /* 503; past the grace, not accepted until one closes */
        HTTPD_LIMIT_BODY,          /* 413 */
        HTTPD_LIMIT_HEADER,        /* 431 or 414, sent by libmicrohttpd */
        HTTPD_LIMIT_PATH,          /* 414 (segments) or 400 (query parameters) */
        HTTPD_LIMIT_STREAMS,       /* 503 */
        HTTPD_LIMIT_STREAM_BUFFER, /* -ENOBUFS to the stream's owner */
        _HTTPD_LIMIT_MAX,
        _HTTPD_LIMIT_INVALID = -EINVAL,
} HttpdLimit;

const char *httpd_limit_to_string(HttpdLimit l);

typedef struct HttpdStats {
        uint64_t connections_accepted;
        unsigned connections_open;
        uint64_t requests;         /* finished, whatever the outcome */
        unsigned requests_pending; /* parked, waiting for a late response */
        unsigned streams_open;
        uint64_t handler_calls;
        uint64_t body_bytes; /* request body bytes received and kept or dropped */
        uint64_t limit_hits[_HTTPD_LIMIT_MAX];
} HttpdStats;

/* Validates the routes (err names the bad pattern), binds and starts serving on loop. Returns
 * -EINVAL (bad options or route), -EADDRINUSE/-EACCES or -EIO when it cannot listen, -ENOMEM. */
int httpd_new(struct ev_loop *loop, const HttpdOptions *o, HttpdServer **ret, PacerError *err);
/* Stops listening and closes every connection: pending requests get their cancel callback and
 * open streams their close callback. Requests and streams the owner still holds stay valid
 * (every call on them is then a no-op or fails with -ECANCELED/-EPIPE) until released.
 * Accepts NULL; returns NULL. Must not be called from a handler or callback of this server. */
HttpdServer *httpd_free(HttpdServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpdServer *, httpd_free);
/* The port actually bound (useful with port 0). */
uint16_t httpd_port(const HttpdServer *s);
void httpd_get_stats(const HttpdServer *s, HttpdStats *ret);

/* ---- requests ---- */

HttpdRequest *httpd_request_ref(HttpdRequest *r);
/* Accepts NULL; returns NULL. */
HttpdRequest *httpd_request_unref(HttpdRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpdRequest *, httpd_request_unref);

const char *httpd_request_method(const HttpdRequest *r);
/* The path as sent (still percent-encoded, without the query). */
const char *httpd_request_path(const HttpdRequest *r);
/* A decoded capture of the route's pattern by name (a bare `*` as "*"), or NULL. */
const char *httpd_request_param(const HttpdRequest *r, const char *name);
/* Query parameters, decoded ('+' is a space); "" for a key without '='. The first value of key,
 * its n-th value (keys may repeat), or NULL. */
const char *httpd_request_query(const HttpdRequest *r, const char *key);
const char *httpd_request_query_nth(const HttpdRequest *r, const char *key, size_t n);
size_t httpd_request_query_count(const HttpdRequest *r);
/* The i-th parameter in request order; -ERANGE past the end. */
int httpd_request_query_at(const HttpdRequest *r, size_t i, const char **ret_key, const char **ret_value);
/* A boolean parameter: "true"/"false", or present without a value (= true). Returns 1 and sets
 * *ret when present and valid, 0 when absent, -EINVAL otherwise. */
int httpd_request_query_bool(const HttpdRequest *r, const char *key, bool *ret);
/* A request header (case-insensitive name; the first when repeated), or NULL. Only while the
 * connection lasts: NULL after the client went away. */
const char *httpd_request_header(const HttpdRequest *r, const char *name);
/* The body, NUL-terminated (never NULL; "" when there was none). */
const char *httpd_request_body(const HttpdRequest *r, size_t *ret_len);
/* The client's address as "IP:port" or "[IPv6]:port". */
const char *httpd_request_remote(const HttpdRequest *r);
const HttpdRoute *httpd_request_route(const HttpdRequest *r);
/* Something the auth callback attaches for the handler (the principal); freed with free_fn
 * (may be NULL) when the request is freed or the context replaced. */
void httpd_request_set_context(HttpdRequest *r, void *context, void (*free_fn)(void *));
void *httpd_request_context(const HttpdRequest *r);

/* Fires once if the request ends before a response was given: the client disconnected (or
 * half-closed its side) while the request was pending, or the server is being freed. A respond
 * call after that returns -ECANCELED and does nothing. The owner still releases its reference. */
typedef void (*httpd_cancel_fn)(HttpdRequest *r, void *userdata);
void httpd_request_on_cancel(HttpdRequest *r, httpd_cancel_fn fn, void *userdata);
/* True once the request can no longer be answered. */
bool httpd_request_cancelled(const HttpdRequest *r);

/* A header for the response about to be given (Location, Cache-Control, ...). -EINVAL for a
 * name that is not a token or a value with control characters, -E2BIG past
 * HTTPD_EXTRA_HEADERS_MAX, -EALREADY once responded. */
int httpd_request_add_header(HttpdRequest *r, const char *name, const char *value);

/* Responses. Each returns 0, -EALREADY when the request already has a response, -ECANCELED when
 * it can no longer be answered (nothing is sent, nothing leaks), -EINVAL (status outside
 * 100..599) or -ENOMEM. Callable from the handler or later from the loop. */
int httpd_respond_buf(HttpdRequest *r, unsigned status, const char *content_type, const void *data,
                      size_t len);
/* Takes ownership of data (malloc'ed) whatever the outcome. */
int httpd_respond_take(HttpdRequest *r, unsigned status, const char *content_type, char *data, size_t len);
/* Compact JSON, application/json; j is borrowed. */
int httpd_respond_json(HttpdRequest *r, unsigned status, const json_t *j);
/* text/plain; charset=utf-8 */
int httpd_respond_text(HttpdRequest *r, unsigned status, const char *text);
/* Marathon's error shape {"message": "..."}; the message is cut to HTTPD_ERROR_MESSAGE_MAX and
 * invalid UTF-8 in it replaced by '?'. */
int httpd_respond_error(HttpdRequest *r, unsigned status, const char *fmt, ...) _printf_(3, 4);

/* ---- streams ---- */

/* Fires once when the client goes away (or the server is freed) before the owner closed the
 * stream. The owner then calls httpd_stream_close() to release it. */
typedef void (*httpd_stream_close_fn)(HttpdStream *s, void *userdata);

typedef struct HttpdStreamOptions {
        const char *content_type; /* e.g. "text/event-stream" (required) */
        size_t buffer_max;        /* 0 = the server's stream_buffer_max */
        httpd_stream_close_fn on_close;
        void *userdata;
} HttpdStreamOptions;

/* Answers the request with `status` and a body sent as it is written (chunked). The connection
 * costs nothing while there is nothing to send. The caller owns the returned stream and must
 * release it with httpd_stream_close(). Returns -EBUSY after answering 503 when max_streams are
 * open, or what httpd_respond_buf() returns. */
int httpd_stream_start(HttpdRequest *r, unsigned status, const HttpdStreamOptions *o, HttpdStream **ret);
/* Queues data (copied). -ENOBUFS when the queue would pass buffer_max (nothing queued: the
 * client reads too slowly — cut it), -EPIPE when the client is gone, -ENOMEM. */
int httpd_stream_write(HttpdStream *s, const void *data, size_t len);
/* Bytes queued and not yet handed to the connection. */
size_t httpd_stream_queued(const HttpdStream *s);
/* The request the stream answers (for its headers while the client is there, its params). */
HttpdRequest *httpd_stream_request(const HttpdStream *s);
/* Ends the stream once the queue is sent and releases the caller's handle; no callback fires
 * after this. Accepts NULL; returns NULL. */
HttpdStream *httpd_stream_close(HttpdStream *s);
/* The same, queueing final data first even past buffer_max (at most HTTPD_STREAM_FINAL_MAX
 * bytes; longer final data is dropped whole). */
HttpdStream *httpd_stream_close_with(HttpdStream *s, const void *data, size_t len);
