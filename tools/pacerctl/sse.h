/* SPDX-License-Identifier: Apache-2.0 */
/* A Server-Sent Events parser (the WHATWG "event stream" format, as
 * GET /v2/events serves it): bytes in, whole events out. Lines may end in
 * LF, CR LF or CR and may be split anywhere between feeds; every buffer is
 * capped, and an event past the cap is reported as oversized instead of
 * growing memory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Longest event type and event id kept. */
#define SSE_TYPE_MAX 128
#define SSE_ID_MAX   256

typedef struct SseEvent {
        const char *type; /* "message" when the event named none */
        const char *data; /* the data lines joined by "\n"; "" when oversized */
        size_t data_len;
        const char *id; /* the last event id seen so far ("" for none) */
        bool oversized; /* a line or the data went past the cap: data was dropped */
} SseEvent;

/* Return < 0 to stop: sse_parser_feed() returns that value at once. */
typedef int (*sse_event_fn)(const SseEvent *e, void *userdata);

typedef struct SseParser {
        size_t event_max;
        Buf line;
        Buf data;
        char type[SSE_TYPE_MAX + 1];
        char id[SSE_ID_MAX + 1];
        long retry_ms;     /* the last "retry:" value, -1 when none */
        bool skip_lf;      /* the previous chunk ended in CR */
        bool line_dropped; /* the current line went past the cap */
        bool oversized;    /* the current event lost data */
        bool bom_checked;
} SseParser;

/* event_max caps one line and the data of one event (bytes). */
void sse_parser_init(SseParser *p, size_t event_max);
void sse_parser_done(SseParser *p);
/* Forgets a partial event and line (a new connection), keeping the last id. */
void sse_parser_reset(SseParser *p);
/* Parses data[0..len), calling on_event for each complete event. Returns 0,
 * or what on_event returned when it was negative, or -ENOMEM. */
int sse_parser_feed(SseParser *p, const char *data, size_t len, sse_event_fn on_event, void *userdata);
/* The last event id seen ("" for none). */
const char *sse_parser_last_id(const SseParser *p);
