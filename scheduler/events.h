/* SPDX-License-Identifier: Apache-2.0 */
/* The event bus behind /v2/events and /v1/stream: small events (ids and
 * deltas, ≤ 4 KiB), formatted once as Server-Sent Events (and, while there are
 * /v1/stream subscribers, once as msgpack) and fanned out to subscribers whose
 * filters (event types, app id prefix) are applied here, on the server. Each
 * subscriber has a bounded queue; one too slow is cut with a final event and
 * can resume from the replay ring with Last-Event-ID. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "httpd.h"

#define EVENT_MAX             4096 /* bytes of one formatted event */
#define EVENTS_REPLAY         4096 /* events kept for Last-Event-ID */
#define EVENT_TYPES_MAX       16   /* event_type filters per subscriber */
#define EVENT_SUBSCRIBERS_MAX 1024

typedef struct EventBus EventBus;

typedef enum EventFormat {
        EVENT_FORMAT_SSE,     /* GET /v2/events: Server-Sent Events, JSON data */
        EVENT_FORMAT_MSGPACK, /* GET /v1/stream: one msgpack map per event, back to back */
} EventFormat;

#define EVENT_MSGPACK_CONTENT_TYPE "application/x-msgpack"

EventBus *event_bus_new(void);
EventBus *event_bus_free(EventBus *b);

/* Publishes (takes the payload reference). "eventType" and "timestamp" are added. */
void event_bus_publish(EventBus *b, const char *type, json_t *payload);

/* Serves GET /v2/events or GET /v1/stream on req: filters from ?event_type=
 * (repeatable) and ?app_id=<prefix>, replay from the Last-Event-ID header or
 * ?last_event_id=. In msgpack, each event is the SSE frame's JSON data as a
 * map, with its "id" in it. */
int event_bus_subscribe(EventBus *b, HttpdRequest *req, EventFormat format);

size_t event_bus_subscribers(const EventBus *b);
uint64_t event_bus_last_id(const EventBus *b);
uint64_t event_bus_dropped(const EventBus *b);
