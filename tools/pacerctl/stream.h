/* SPDX-License-Identifier: Apache-2.0 */
/* Following GET /v2/events: an SSE connection that survives drops. When the
 * connection ends or breaks after it was established, it is opened again
 * after a growing delay with Last-Event-ID set to the last event seen, so the
 * server replays what was missed. A first connection that fails, and a
 * refusal (4xx) later, end the stream for good: the caller says why. */
#pragma once

#include <stdbool.h>

#include "client.h"
#include "sse.h"

/* One event of the stream, with its data, is at most this large. The server
 * promises 4 KiB; the rest is margin for other servers. */
#define STREAM_EVENT_MAX (64u * 1024)
/* Reconnection delays: the first, and the cap of its doubling. */
#define STREAM_RETRY_MIN_NS (250LL * 1000 * 1000)
#define STREAM_RETRY_MAX_NS (5LL * 1000 * 1000 * 1000)
/* The error body of a refused connection kept for the message. */
#define STREAM_ERROR_BODY_MAX (64u * 1024)

typedef struct Stream Stream;

/* Called for each event; a negative return ends the stream (the value is
 * what stream_result() returns then). */
typedef int (*stream_event_fn)(Stream *s, const SseEvent *e, void *userdata);

typedef struct StreamOptions {
        const char *path;          /* "/v2/events?..." */
        const char *last_event_id; /* resume after this event; optional */
        bool report;               /* say on stderr when the stream is lost and when it resumes */
        stream_event_fn on_event;
        void *userdata;
} StreamOptions;

/* Starts connecting; the loop (client_wait()) does the rest. */
int stream_start(Client *c, const StreamOptions *o, Stream **ret);
/* Stops following (no callback fires from inside) and frees. */
Stream *stream_free(Stream *s);

/* Turns the loop until the first connection is established (0) or failed
 * (-errno, see stream_result()), timeout_ns passed (-ETIME; 0 = no limit),
 * or a signal arrived (-EINTR). */
int stream_wait_connected(Stream *s, int64_t timeout_ns);
bool stream_connected(const Stream *s);
/* True once the stream ended for good; stream_result() says why. */
bool stream_ended(const Stream *s);
/* Points at the flag that turns true when the stream ends, for client_wait(). */
const bool *stream_ended_flag(const Stream *s);
/* Why it ended: what on_event returned; a transport error (client_error() has
 * the text); or -EPROTO for an HTTP refusal, with *ret_reply (if given) the
 * server's answer (borrowed). */
int stream_result(const Stream *s, const Reply **ret_reply);
const char *stream_last_id(const Stream *s);
