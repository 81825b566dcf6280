/* SPDX-License-Identifier: Apache-2.0 */
/* The event bus behind /v2/events: small events (ids and deltas, ≤ 4 KiB),
 * formatted once as Server-Sent Events and fanned out to subscribers whose
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

EventBus *event_bus_new(void);
EventBus *event_bus_free(EventBus *b);

/* Publishes (takes the payload reference). "eventType" and "timestamp" are added. */
void event_bus_publish(EventBus *b, const char *type, json_t *payload);

/* Serves GET /v2/events on req: filters from ?event_type= (repeatable) and
 * ?app_id=<prefix>, replay from Last-Event-ID. */
int event_bus_subscribe(EventBus *b, HttpdRequest *req);

size_t event_bus_subscribers(const EventBus *b);
uint64_t event_bus_last_id(const EventBus *b);
uint64_t event_bus_dropped(const EventBus *b);
