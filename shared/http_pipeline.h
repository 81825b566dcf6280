/* SPDX-License-Identifier: Apache-2.0 */
/* Pipelined HTTP/1.1 requests to one server over a few persistent plain-HTTP
 * connections, on a libev loop. For floods of small calls (a Mesos scheduler
 * acknowledges every status update with its own POST): requests are written
 * back to back without waiting for the answers, which come in order on each
 * connection (RFC 9112 9.3.2), so thousands of calls cost a few writes and
 * reads instead of a request/response round trip and a libcurl transfer each.
 *
 * Only for a server known to answer pipelined requests in order, and only for
 * requests that may be retried or are idempotent: when a connection breaks,
 * every request in flight on it fails, processed or not.
 *
 * Callback contract: when http_pipeline_post() succeeds, the callback fires
 * exactly once — with the response, or a negative errno: -ECONNREFUSED,
 * -ECONNRESET (the connection broke or closed before the answer), -ETIMEDOUT,
 * -EBADMSG (a response that is not HTTP/1.x), -EMSGSIZE (headers or body over
 * their caps), -ECANCELED (http_pipeline_free()). A callback must not free the
 * pipeline. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ev_loop;

typedef struct HttpPipeline HttpPipeline;

/* Cap on one response's status line and headers together. */
#define HTTP_PIPELINE_HEAD_MAX (16u * 1024)

/* result 0: status and body (NUL-terminated, body_len bytes, at most
 * max_body) are the response's; else status is 0 and body "". */
typedef void (*http_pipeline_done_fn)(int result, long status, const char *body, size_t body_len,
                                      void *userdata);

typedef struct HttpPipelineOptions {
        struct sockaddr_storage addr; /* the server (IPv4 or IPv6) */
        socklen_t addr_len;
        const char *host;   /* the Host header ("host:port") */
        const char *path;   /* the request target of every request ("/api/v1/scheduler") */
        size_t connections; /* opened as needed, at most this many */
        size_t depth;       /* requests in flight on one connection */
        int64_t timeout_ns; /* an answer must come this soon after its request was queued */
        size_t max_body;    /* cap on a response body */
} HttpPipelineOptions;

int http_pipeline_new(struct ev_loop *loop, const HttpPipelineOptions *o, HttpPipeline **ret);
/* Fails every request in flight (-ECANCELED), closes the connections. */
HttpPipeline *http_pipeline_free(HttpPipeline *p);

/* Room for one more request (connections x depth in flight at most). */
bool http_pipeline_can_post(const HttpPipeline *p);
/* Queues a POST with headers (NULL-terminated "Name: value" lines, may be NULL)
 * and body. -EAGAIN when there is no room, -EINVAL for a header with a CR or
 * LF. */
int http_pipeline_post(HttpPipeline *p, const char *const *headers, const void *body, size_t len,
                       http_pipeline_done_fn cb, void *userdata);
size_t http_pipeline_in_flight(const HttpPipeline *p);
/* Connections opened so far (context for benchmarks and tests). */
uint64_t http_pipeline_connects(const HttpPipeline *p);
