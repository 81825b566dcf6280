/* SPDX-License-Identifier: Apache-2.0 */
/* An asynchronous HTTP client: libcurl's multi interface driven by a libev
 * loop. No threads, no blocking calls on the loop. Each request has its own
 * deadline; connections are kept alive and reused; a response body can be
 * streamed to a callback (RecordIO event streams, SSE) or collected, capped.
 * Redirects are not followed (callers handle 307 themselves) and proxy
 * settings from the environment are ignored: the peers are cluster services.
 * (Only http:// and https:// URLs; a host name, unlike an IP address, is
 * resolved by libcurl's own resolver, which may use a short-lived thread.)
 *
 * Callback contract (as libuv's): when http_request_start() succeeds, on_done
 * fires exactly once for that request — on completion, failure, deadline or
 * cancel. When http_request_start() fails, no callback ever fires. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"

struct ev_loop;

typedef struct HttpClient HttpClient;
typedef struct HttpRequest HttpRequest;

/* Default cap on a collected response body. */
#define HTTP_BODY_MAX_DEFAULT (1024u * 1024)
/* Cap on the response headers kept per request (all of them together). */
#define HTTP_HEADERS_MAX (16u * 1024)

typedef struct HttpResponse {
        long status; /* HTTP status; 0 when no response arrived */
        Buf body;    /* collected body; for streamed 2xx responses it stays empty */
        Buf headers; /* raw "Name: value\r\n" lines of the final response */
} HttpResponse;

/* result: 0 when a complete HTTP response arrived (whatever its status), else
 * a negative errno: -ETIMEDOUT (deadline or idle timeout), -ECONNREFUSED,
 * -ECONNRESET (dropped mid-response), -EMSGSIZE (body or headers over their
 * cap), -ECANCELED (http_request_cancel() or http_client_free()), a value
 * returned by on_data, -ENOMEM, or -EIO for anything else.
 * http_request_error() has the text. The request is freed right after
 * on_done returns. */
typedef void (*http_done_fn)(HttpRequest *req, int result, const HttpResponse *resp, void *userdata);

/* Streaming: called with body bytes of a 2xx response as they arrive (never for
 * other statuses, whose bodies are collected so the error text is available).
 * Return < 0 to abort the request; on_done then fires with that value. */
typedef int (*http_data_fn)(HttpRequest *req, const void *data, size_t len, void *userdata);

/* Called once when the status line and headers of the final response are in,
 * before any on_data. Optional. */
typedef void (*http_headers_fn)(HttpRequest *req, const HttpResponse *resp, void *userdata);

typedef struct HttpRequestOptions {
        const char *method;         /* "GET" (default), "POST", "PUT", "DELETE", ... */
        const char *url;            /* required */
        const char *const *headers; /* NULL-terminated "Name: value" strings, may be NULL;
                                     * "Name:" drops a header libcurl would add */
        const void *body;           /* request body, copied; may be NULL. Without a
                                     * Content-Type header none is sent */
        size_t body_len;
        int64_t timeout_ns;         /* whole-request deadline; 0 = none (long-lived streams) */
        int64_t connect_timeout_ns; /* 0 = libcurl's default */
        int64_t idle_timeout_ns;    /* abort (-ETIMEDOUT) when no byte arrives for this long,
                                     * counted from the start; 0 = off */
        size_t max_body;            /* cap on a collected body; 0 = HTTP_BODY_MAX_DEFAULT */
        bool tcp_keepalive;         /* enable TCP keepalive probes (detects dead peers) */
        bool fresh_connection;      /* do not reuse a kept-alive connection */
        bool tls_no_verify;         /* https: accept any certificate (health checks of local tasks) */
        const char *unix_socket;    /* connect through this Unix socket path, optional */
        http_headers_fn on_headers;
        http_data_fn on_data; /* NULL = collect the body into resp->body */
        http_done_fn on_done; /* required */
        void *userdata;
} HttpRequestOptions;

HttpClient *http_client_new(struct ev_loop *loop);
/* Cancels every pending request (each on_done fires with -ECANCELED) and
 * frees the client. Accepts NULL; returns NULL. Must not be called from
 * inside one of this client's callbacks. */
HttpClient *http_client_free(HttpClient *c);

/* Starts a request. On success *ret_req (if given) is a handle valid until
 * on_done returns. Returns -EINVAL for bad options (no url or on_done, a
 * scheme other than http/https, a method that is not a token, a header with
 * CR/LF or without ':', a negative timeout), -ENOMEM, or -ECANCELED while
 * http_client_free() runs. Safe to call from any callback. */
int http_request_start(HttpClient *c, const HttpRequestOptions *o, HttpRequest **ret_req);
/* Aborts a pending request: on_done fires with -ECANCELED before this returns.
 * Safe to call from any callback, including the request's own on_data. */
void http_request_cancel(HttpRequest *r);
/* Human-readable cause of the failure, e.g. "connect to 127.0.0.1:5051 failed:
 * Connection refused"; "" when the request succeeded. Valid in on_done. */
const char *http_request_error(const HttpRequest *r);

/* The value of a response header (case-insensitive name), copied into buf
 * (NUL-terminated, trimmed, cut to size - 1 bytes). The first one wins when
 * the header repeats. Returns buf, or NULL when absent. */
const char *http_response_header(const HttpResponse *resp, const char *name, char *buf, size_t size);

/* Number of requests in flight (for tests and metrics). */
size_t http_client_pending(const HttpClient *c);
/* The address r is connected to (known once its headers are in): -ENOTCONN
 * before, -EAFNOSUPPORT for a Unix socket. */
int http_request_peer(HttpRequest *r, struct sockaddr_storage *ret_addr, socklen_t *ret_len);
