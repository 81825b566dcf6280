/* SPDX-License-Identifier: Apache-2.0 */
#include "events.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "mesos.h"

#define APP_PREFIX_MAX 256
#define DROPPED_EVENT \
        "event: pacer_subscriber_dropped\ndata: {\"eventType\":\"pacer_subscriber_dropped\",\"reason\":\"too slow: its queue was full\"}\n\n"

typedef struct Stored {
        uint64_t id;
        char type[64];
        char app[APP_PREFIX_MAX]; /* the event's app id, for filters on replay */
        char *text;               /* formatted SSE frame */
        size_t len;
        char *pack; /* the msgpack map for /v1/stream, made when first needed */
        size_t pack_len;
} Stored;

typedef struct Subscriber {
        EventBus *bus;
        HttpdStream *stream;
        char types[EVENT_TYPES_MAX][64];
        size_t n_types;
        char app_prefix[APP_PREFIX_MAX];
        EventFormat format;
        struct Subscriber *prev, *next;
} Subscriber;

struct EventBus {
        Stored ring[EVENTS_REPLAY];
        size_t head; /* next slot */
        size_t count;
        uint64_t next_id;
        Subscriber *subs;
        size_t n_subs;
        size_t n_pack_subs; /* of them on /v1/stream: events are packed only while there are some */
        uint64_t dropped;
};

EventBus *event_bus_new(void)
{
        EventBus *b = calloc(1, sizeof(*b));
        if (b)
                b->next_id = 1;
        return b;
}

static void unlink_sub(EventBus *b, Subscriber *s)
{
        if (s->prev)
                s->prev->next = s->next;
        else
                b->subs = s->next;
        if (s->next)
                s->next->prev = s->prev;
        b->n_subs--;
        if (s->format == EVENT_FORMAT_MSGPACK)
                b->n_pack_subs--;
}

EventBus *event_bus_free(EventBus *b)
{
        if (!b)
                return NULL;
        while (b->subs) {
                Subscriber *s = b->subs;
                unlink_sub(b, s);
                httpd_stream_close(s->stream);
                free(s);
        }
        for (size_t i = 0; i < EVENTS_REPLAY; i++) {
                free(b->ring[i].text);
                free(b->ring[i].pack);
        }
        free(b);
        return NULL;
}

static bool wants(const Subscriber *s, const char *type, const char *app)
{
        bool ok = s->n_types == 0;
        for (size_t i = 0; i < s->n_types && !ok; i++)
                ok = streq(s->types[i], type);
        if (!ok)
                return false;
        return !*s->app_prefix || (app && strneq(app, s->app_prefix, strlen(s->app_prefix)));
}

static void drop_sub(EventBus *b, Subscriber *s)
{
        unlink_sub(b, s);
        httpd_stream_close(s->stream);
        free(s);
}

/* Packs the event's JSON, with its "id" added, as the stored msgpack map. */
static int stored_pack_json(Stored *st, json_t *j)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(EVENT_MAX * 2);
        int r;

        json_object_set_new(j, "id", json_integer((json_int_t)st->id));
        r = json_to_msgpack(j, &b);
        if (r < 0)
                return r;
        st->pack = TAKE_PTR(b.data);
        st->pack_len = b.len;
        return 0;
}

/* The stored event as one msgpack map, made from its SSE frame's JSON when a
 * /v1/stream subscriber first needs it (it was published while there was none). */
static int stored_pack(Stored *st)
{
        const char *data, *end;
        json_t *j;
        int r;

        if (st->pack)
                return 0;
        data = st->text ? strstr(st->text, "\ndata: ") : NULL;
        if (!data)
                return -EINVAL;
        data += STRLEN("\ndata: ");
        end = strchr(data, '\n');
        j = json_loadb(data, end ? (size_t)(end - data) : strlen(data), 0, NULL);
        if (!j)
                return -EINVAL;
        r = stored_pack_json(st, j);
        json_decref(j);
        return r;
}

/* The last event of a subscriber cut for being too slow, in its format. */
static const void *dropped_event(EventFormat f, size_t *ret_len)
{
        /* {"eventType": "pacer_subscriber_dropped", "reason": "too slow: its queue was full"} */
        static const char pack[] = "\x82"
                                   "\xa9"
                                   "eventType"
                                   "\xb8"
                                   "pacer_subscriber_dropped"
                                   "\xa6"
                                   "reason"
                                   "\xbc"
                                   "too slow: its queue was full";

        if (f == EVENT_FORMAT_MSGPACK) {
                *ret_len = sizeof(pack) - 1;
                return pack;
        }
        *ret_len = STRLEN(DROPPED_EVENT);
        return DROPPED_EVENT;
}

/* Writes one event in the subscriber's format; a subscriber whose queue is
 * full is cut with a final event. Returns false when the subscriber is gone
 * (freed). */
static bool deliver(EventBus *b, Subscriber *s, Stored *st)
{
        const void *data = st->text;
        size_t len = st->len, last_len;
        int r;

        if (s->format == EVENT_FORMAT_MSGPACK) {
                if (stored_pack(st) < 0) {
                        log_warn("event %" PRIu64 " (%s) cannot be packed for /v1/stream: skipped", st->id,
                                 st->type);
                        return true;
                }
                data = st->pack, len = st->pack_len;
        }
        r = httpd_stream_write(s->stream, data, len);
        if (r == -ENOBUFS) {
                b->dropped++;
                log_warn("event subscriber %s is too slow: cut (it can resume with Last-Event-ID)",
                         strna(httpd_request_remote(httpd_stream_request(s->stream))));
                const void *last = dropped_event(s->format, &last_len);
                httpd_stream_close_with(s->stream, last, last_len);
                s->stream = NULL;
                unlink_sub(b, s);
                free(s);
                return false;
        }
        if (r < 0) {
                drop_sub(b, s);
                return false;
        }
        return true;
}

void event_bus_publish(EventBus *b, const char *type, json_t *payload)
{
        char text[EVENT_MAX], ts[40];
        const char *app;
        char *data;
        Stored *st;
        int n;

        if (!payload)
                return;
        double now = mesos_now();
        time_t sec = (time_t)now;
        struct tm tm;
        gmtime_r(&sec, &tm);
        size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + tl, sizeof(ts) - tl, ".%03dZ", (int)((now - (double)sec) * 1000) % 1000);
        json_object_set_new(payload, "eventType", json_string(type));
        json_object_set_new(payload, "timestamp", json_string(ts));
        app = json_string_value(json_object_get(payload, "appId"));
        data = json_dumps(payload, JSON_COMPACT);
        if (!data) {
                json_decref(payload);
                return;
        }
        n = snprintf(text, sizeof(text), "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)b->next_id,
                     type, data);
        free(data);
        if (n < 0 || (size_t)n >= sizeof(text)) {
                /* events carry ids and deltas; one this big is a bug, not something to cut in half */
                log_warn("event %s over %d bytes dropped", type, EVENT_MAX);
                json_decref(payload);
                return;
        }
        st = &b->ring[b->head];
        free(st->text);
        free(st->pack);
        st->pack = NULL;
        st->pack_len = 0;
        st->text = strndup(text, (size_t)n);
        st->len = st->text ? (size_t)n : 0;
        st->id = b->next_id++;
        snprintf(st->type, sizeof(st->type), "%s", type);
        snprintf(st->app, sizeof(st->app), "%s", strempty(app));
        b->head = (b->head + 1) % EVENTS_REPLAY;
        if (b->count < EVENTS_REPLAY)
                b->count++;
        if (b->n_pack_subs > 0)
                (void)stored_pack_json(st, payload); /* else deliver() tries again from the text */
        for (Subscriber *s = b->subs, *next; s; s = next) {
                next = s->next;
                if (st->text && wants(s, type, app))
                        deliver(b, s, st);
        }
        json_decref(payload);
}

static void on_stream_closed(HttpdStream *stream, void *userdata)
{
        Subscriber *s = userdata;
        if (s->stream == stream) {
                s->stream = NULL;
                unlink_sub(s->bus, s);
                httpd_stream_close(stream);
                free(s);
        }
}

int event_bus_subscribe(EventBus *b, HttpdRequest *req, EventFormat format)
{
        const char *type, *app = httpd_request_query(req, "app_id"),
                          *last = httpd_request_header(req, "Last-Event-ID");

        if (!last)
                last = httpd_request_query(req, "last_event_id");
        Subscriber *s;
        int r;

        if (b->n_subs >= EVENT_SUBSCRIBERS_MAX)
                return httpd_respond_error(req, 503, "too many event subscribers (%d)",
                                           EVENT_SUBSCRIBERS_MAX);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->bus = b;
        s->format = format;
        for (size_t i = 0; (type = httpd_request_query_nth(req, "event_type", i)); i++) {
                if (s->n_types == EVENT_TYPES_MAX || strlen(type) >= sizeof(s->types[0])) {
                        free(s);
                        return httpd_respond_error(req, 400, "at most %d event_type filters of < 64 bytes",
                                                   EVENT_TYPES_MAX);
                }
                snprintf(s->types[s->n_types++], sizeof(s->types[0]), "%s", type);
        }
        if (app) {
                if (strlen(app) >= sizeof(s->app_prefix)) {
                        free(s);
                        return httpd_respond_error(req, 400, "app_id filter is too long");
                }
                snprintf(s->app_prefix, sizeof(s->app_prefix), "%s", app);
        }
        HttpdStreamOptions o = { .content_type = format == EVENT_FORMAT_MSGPACK ? EVENT_MSGPACK_CONTENT_TYPE
                                                                                : "text/event-stream",
                                 .on_close = on_stream_closed,
                                 .userdata = s };
        r = httpd_stream_start(req, 200, &o, &s->stream);
        if (r < 0) {
                free(s);
                return r == -EBUSY ? 0 : r;
        }
        s->next = b->subs;
        if (b->subs)
                b->subs->prev = s;
        b->subs = s;
        b->n_subs++;
        if (format == EVENT_FORMAT_MSGPACK)
                b->n_pack_subs++;
        /* replay what the subscriber missed, from the ring */
        if (last && *last) {
                char *end;
                unsigned long long since = strtoull(last, &end, 10);
                if (*end == 0) {
                        size_t start = (b->head + EVENTS_REPLAY - b->count) % EVENTS_REPLAY;
                        for (size_t k = 0; k < b->count; k++) {
                                Stored *st = &b->ring[(start + k) % EVENTS_REPLAY];
                                if (st->id > since && st->text && wants(s, st->type, st->app) &&
                                    !deliver(b, s, st))
                                        break;
                        }
                }
        }
        return 0;
}

size_t event_bus_subscribers(const EventBus *b)
{
        return b->n_subs;
}

uint64_t event_bus_last_id(const EventBus *b)
{
        return b->next_id - 1;
}

uint64_t event_bus_dropped(const EventBus *b)
{
        return b->dropped;
}
