/* SPDX-License-Identifier: Apache-2.0 */
#include "master_link.h"

#include <ev.h>
#include <stdio.h>
#include <sys/random.h>

#include "duration.h"
#include "http_pipeline.h"
#include "log.h"
#include "recordio.h"

#define CONTENT_TYPE_PROTOBUF "application/x-protobuf"
#define URL_MAX               512
#define BACKOFF_INITIAL_NS    (100 * NSEC_PER_MSEC)
#define BACKOFF_MAX_DEFAULT   (15 * NSEC_PER_SEC)
#define CALL_TIMEOUT_DEFAULT  (10 * NSEC_PER_SEC)
#define HEARTBEAT_MISSES      5
/* Before SUBSCRIBED tells the interval, assume the master's own (15 s). */
#define HEARTBEAT_DEFAULT_S 15.0
/* An OFFERS event with hundreds of offers is a few MiB at most. */
#define MASTER_EVENT_MAX (64u * 1024 * 1024)
#define ERROR_BODY_MAX   (16u * 1024)
/* Calls on the wire at once. The rest wait in the link's queue as packed
 * bodies of ~100 bytes: one HTTP request each (Mesos has no batch call), on a
 * few kept-alive connections, instead of a libcurl transfer and a new
 * connection each — 100,000 acknowledgements in flight exhausted the
 * loopback's ports. */
#define CALLS_IN_FLIGHT_MAX 16
/* Over plain HTTP the calls are pipelined instead (shared/http_pipeline.h): a
 * few connections to the address the event stream reached, many calls on the
 * wire on each. The master (libprocess) answers pipelined requests in order. */
#define PIPE_CONNECTIONS 4
#define PIPE_DEPTH       256

typedef enum LinkState {
        LINK_IDLE,
        LINK_SUBSCRIBING,
        LINK_SUBSCRIBED,
        LINK_CLOSED,
} LinkState;

struct MasterLink {
        struct ev_loop *loop;
        HttpClient *http;
        MasterLinkConfig cfg;
        MasterLinkCallbacks cb;
        void *userdata;

        char url[URL_MAX];         /* the master talked to now */
        char initial_url[URL_MAX]; /* the configured one, to fall back to */
        char *framework_id;
        char stream_id[MASTER_STREAM_ID_MAX + 1];
        char stream_header[MASTER_STREAM_ID_MAX + 32];
        char location[URL_MAX]; /* of a 307 */
        const char *sub_headers[4];
        const char *call_headers[5];

        LinkState state;
        HttpRequest *stream;
        RecordioDecoder decoder;
        double heartbeat_s;
        int64_t backoff_ns;
        ev_timer reconnect_timer;
        ev_timer watchdog;
        struct CallCtx *calls; /* in flight, so freeing the link can detach them */
        size_t n_in_flight;
        HttpPipeline *pipe;      /* the calls' connections while subscribed over http:// */
        HttpPipeline *pipe_dead; /* one given up inside its own callback, freed on the next turn */
        ev_timer pipe_reaper;
        struct sockaddr_storage peer; /* where the event stream is connected */
        socklen_t peer_len;
        /* waiting to be sent, in order; control calls (offers, kills...) before acknowledgements */
        struct CallCtx *urgent_head, *urgent_tail, *bulk_head, *bulk_tail;
        size_t n_queued;
        size_t n_filtering;   /* DECLINE, SUPPRESS, ACCEPT calls queued or in flight */
        bool revive_deferred; /* a REVIVE waits for the calls in flight that it must follow */

        MasterLinkStats stats;
};

typedef struct CallCtx {
        MasterLink *link; /* NULL once the link is gone */
        master_call_fn cb;
        void *userdata;
        int type;
        struct CallCtx *prev, *next; /* in flight: l->calls; queued: next only */
        size_t len;
        uint8_t body[]; /* the packed Call, until it is sent */
} CallCtx;

static void link_connect(MasterLink *l);
static int send_revive(MasterLink *l);
static void queue_fail(MasterLink *l, int r, const char *why);
static void pipe_retire(MasterLink *l);
static void pipe_start(MasterLink *l);

static double ns_to_ev(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

/* "host:port", "http://host:port[/...]" → "http://host:port/api/v1/scheduler". */
static int build_url(const char *master, char *out, size_t size)
{
        const char *scheme = "http://", *hostport = master, *end;
        int n;

        if (!master || !*master)
                return -EINVAL;
        if (strneq(master, "http://", 7))
                hostport = master + 7;
        else if (strneq(master, "https://", 8)) {
                scheme = "https://";
                hostport = master + 8;
        } else if (strneq(master, "//", 2))
                hostport = master + 2;
        end = strchrnul(hostport, '/');
        if (end == hostport)
                return -EINVAL;
        for (const char *p = hostport; p < end; p++)
                if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#')
                        return -EINVAL;
        n = snprintf(out, size, "%s%.*s/api/v1/scheduler", scheme, (int)(end - hostport), hostport);
        return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static int64_t jitter(int64_t ns)
{
        uint32_t r = 0;
        (void)getrandom(&r, sizeof(r), GRND_NONBLOCK);
        return ns / 2 + (int64_t)((double)(ns / 2) * ((double)r / (double)UINT32_MAX));
}

static void set_stream_id(MasterLink *l, const char *id)
{
        snprintf(l->stream_id, sizeof(l->stream_id), "%s", strempty(id));
        snprintf(l->stream_header, sizeof(l->stream_header), "Mesos-Stream-Id: %s", l->stream_id);
}

static void link_schedule_reconnect(MasterLink *l, const char *why, bool immediately)
{
        bool was_subscribed = l->state == LINK_SUBSCRIBED;

        if (l->state == LINK_CLOSED)
                return;
        l->state = LINK_IDLE;
        l->stream = NULL;
        ev_timer_stop(l->loop, &l->watchdog);
        set_stream_id(l, "");
        l->peer_len = 0;
        pipe_retire(l);
        /* calls not sent belong to the subscription that ended (its stream id) */
        queue_fail(l, -ENOTCONN, "disconnected from the master before the call was sent");
        if (was_subscribed) {
                log_warn("disconnected from the Mesos master at %s: %s", l->url, why);
                if (l->cb.disconnected)
                        l->cb.disconnected(why, l->userdata);
        } else
                log_info("SUBSCRIBE to %s failed: %s; retrying", l->url, why);
        if (l->state == LINK_CLOSED)
                return;
        if (immediately) {
                ev_timer_set(&l->reconnect_timer, 0., 0.);
        } else {
                l->backoff_ns =
                        l->backoff_ns ? MIN(l->backoff_ns * 2, l->cfg.backoff_max_ns) : BACKOFF_INITIAL_NS;
                ev_timer_set(&l->reconnect_timer, ns_to_ev(jitter(l->backoff_ns)), 0.);
                /* after trouble, a redirect target may be gone: go back to the configured master */
                if (l->backoff_ns >= l->cfg.backoff_max_ns)
                        snprintf(l->url, sizeof(l->url), "%s", l->initial_url);
        }
        ev_timer_start(l->loop, &l->reconnect_timer);
}

static void arm_watchdog(MasterLink *l)
{
        double misses = (double)(l->cfg.heartbeat_misses ? l->cfg.heartbeat_misses : HEARTBEAT_MISSES);
        ev_timer_stop(l->loop, &l->watchdog);
        ev_timer_set(&l->watchdog, l->heartbeat_s * (misses + 1.), 0.);
        ev_timer_start(l->loop, &l->watchdog);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
        MasterLink *l = w->data;
        char why[128];

        l->stats.heartbeat_timeouts++;
        snprintf(why, sizeof(why), "no heartbeat from the master for %.0fs",
                 w->repeat ? w->repeat : l->heartbeat_s);
        if (l->stream) {
                HttpRequest *s = l->stream;
                l->stream = NULL;
                l->state = LINK_SUBSCRIBED; /* so the reconnect below reports the disconnection */
                http_request_cancel(s);
        }
        link_schedule_reconnect(l, why, false);
}

static int on_record(const uint8_t *data, size_t len, void *userdata)
{
        MasterLink *l = userdata;
        Mesos__V1__Scheduler__Event *ev = mesos__v1__scheduler__event__unpack(NULL, len, data);

        if (!ev) {
                log_error("malformed protobuf event (%zu bytes) from the master at stream offset %llu: "
                          "re-subscribing",
                          len, (unsigned long long)l->decoder.offset);
                return -EBADMSG;
        }
        l->stats.events++;
        arm_watchdog(l); /* any event proves the stream alive */
        if (!ev->has_type) {
                mesos__v1__scheduler__event__free_unpacked(ev, NULL);
                return 0;
        }
        switch (ev->type) {
        case MESOS__V1__SCHEDULER__EVENT__TYPE__SUBSCRIBED:
                if (!ev->subscribed || !ev->subscribed->framework_id ||
                    !ev->subscribed->framework_id->value) {
                        mesos__v1__scheduler__event__free_unpacked(ev, NULL);
                        return -EBADMSG;
                }
                free(l->framework_id);
                l->framework_id = strdup(ev->subscribed->framework_id->value);
                l->heartbeat_s = ev->subscribed->has_heartbeat_interval_seconds &&
                                                 ev->subscribed->heartbeat_interval_seconds > 0
                                         ? ev->subscribed->heartbeat_interval_seconds
                                         : HEARTBEAT_DEFAULT_S;
                l->state = LINK_SUBSCRIBED;
                l->backoff_ns = 0;
                l->stats.subscribes++;
                arm_watchdog(l);
                pipe_start(l);
                log_info("subscribed to the Mesos master at %s as framework %s (heartbeat every %.0fs)",
                         l->url, l->framework_id, l->heartbeat_s);
                if (l->cb.subscribed)
                        l->cb.subscribed(l->framework_id, l->heartbeat_s, l->userdata);
                break;
        case MESOS__V1__SCHEDULER__EVENT__TYPE__HEARTBEAT:
                break;
        default:
                if (l->cb.event)
                        l->cb.event(ev, l->userdata);
                break;
        }
        mesos__v1__scheduler__event__free_unpacked(ev, NULL);
        return l->state == LINK_CLOSED ? -ECANCELED : 0;
}

static void on_stream_headers(HttpRequest *req, const HttpResponse *resp, void *userdata)
{
        MasterLink *l = userdata;
        char buf[URL_MAX];

        if (resp->status == 200) {
                set_stream_id(l, http_response_header(resp, "Mesos-Stream-Id", buf, sizeof(buf)));
                if (http_request_peer(req, &l->peer, &l->peer_len) < 0)
                        l->peer_len = 0;
        } else if (resp->status == 307) {
                const char *loc = http_response_header(resp, "Location", buf, sizeof(buf));
                snprintf(l->location, sizeof(l->location), "%s", strempty(loc));
        }
}

static int on_stream_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        MasterLink *l = userdata;
        int r = recordio_feed(&l->decoder, data, len, on_record, l);

        if (r == -EBADMSG && recordio_error(&l->decoder))
                log_error("bad event stream from the master: %s: re-subscribing",
                          recordio_error(&l->decoder));
        return r;
}

static void follow_redirect(MasterLink *l)
{
        char url[URL_MAX];

        /* the leader's address comes protocol-relative: //host:port/api/v1/scheduler */
        if (*l->location && build_url(l->location, url, sizeof(url)) >= 0) {
                l->stats.redirects++;
                log_info("master %s is not the leader; following the redirect to %s", l->url, url);
                snprintf(l->url, sizeof(l->url), "%s", url);
        }
        l->location[0] = 0;
}

static void on_stream_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        MasterLink *l = userdata;
        char why[512];

        l->stream = NULL;
        if (l->state == LINK_CLOSED)
                return;
        if (result == 0 && resp->status == 307) {
                follow_redirect(l);
                link_schedule_reconnect(l, "redirected to the leading master", true);
                return;
        }
        if (result == 0 && resp->status != 200)
                snprintf(why, sizeof(why), "master answered SUBSCRIBE with HTTP %ld: %.300s", resp->status,
                         buf_str(&resp->body));
        else if (result == 0)
                snprintf(why, sizeof(why), "the master closed the event stream");
        else if (result == -EBADMSG)
                snprintf(why, sizeof(why), "malformed event stream");
        else
                snprintf(why, sizeof(why), "%s", http_request_error(req));
        link_schedule_reconnect(l, why, false);
}

static int build_subscribe(MasterLink *l, Buf *out)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Subscribe sub = MESOS__V1__SCHEDULER__CALL__SUBSCRIBE__INIT;
        FrameworkInfo fi = MESOS__V1__FRAMEWORK_INFO__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__FrameworkInfo__Capability caps[3];
        Mesos__V1__FrameworkInfo__Capability *capp[3];
        static const int cap_types[3] = {
                MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__TASK_KILLING_STATE,
                MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__PARTITION_AWARE,
                MESOS__V1__FRAMEWORK_INFO__CAPABILITY__TYPE__MULTI_ROLE,
        };
        char *default_role[1] = { "*" };

        for (size_t i = 0; i < ELEMENTSOF(caps); i++) {
                mesos__v1__framework_info__capability__init(&caps[i]);
                caps[i].has_type = true;
                caps[i].type = cap_types[i];
                capp[i] = &caps[i];
        }
        fi.user = (char *)l->cfg.user;
        fi.name = (char *)l->cfg.name;
        fi.principal = (char *)l->cfg.principal;
        fi.hostname = (char *)l->cfg.hostname;
        fi.webui_url = (char *)l->cfg.webui_url;
        fi.has_failover_timeout = true;
        fi.failover_timeout = l->cfg.failover_timeout_s;
        fi.has_checkpoint = true;
        fi.checkpoint = l->cfg.checkpoint;
        fi.n_capabilities = ELEMENTSOF(caps);
        fi.capabilities = capp;
        if (l->cfg.n_roles > 0) {
                fi.n_roles = l->cfg.n_roles;
                fi.roles = (char **)l->cfg.roles;
        } else {
                fi.n_roles = 1;
                fi.roles = default_role;
        }
        if (l->framework_id) {
                /* both or neither: the master rejects a mismatch */
                fid.value = l->framework_id;
                fi.id = &fid;
                call.framework_id = &fid;
        }
        sub.framework_info = &fi;
        call.has_type = true;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__SUBSCRIBE;
        call.subscribe = &sub;
        return mesos_pack(&call.base, out);
}

static void link_connect(MasterLink *l)
{
        _cleanup_(buf_done) Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        int r;

        l->revive_deferred = false;
        r = build_subscribe(l, &body);
        if (r < 0) {
                log_error_errno(r, "cannot build the SUBSCRIBE call: %m");
                return;
        }
        HttpRequestOptions o = {
                .method = "POST",
                .url = l->url,
                .headers = l->sub_headers,
                .body = body.data,
                .body_len = body.len,
                .tcp_keepalive = true,
                .fresh_connection = true,
                .connect_timeout_ns = 5 * NSEC_PER_SEC,
                .max_body = ERROR_BODY_MAX,
                .on_headers = on_stream_headers,
                .on_data = on_stream_data,
                .on_done = on_stream_done,
                .userdata = l,
        };
        recordio_decoder_reset(&l->decoder);
        l->location[0] = 0;
        l->state = LINK_SUBSCRIBING;
        /* until SUBSCRIBED arrives, the watchdog guards against a master that accepts and says nothing */
        l->heartbeat_s = HEARTBEAT_DEFAULT_S;
        arm_watchdog(l);
        r = http_request_start(l->http, &o, &l->stream);
        if (r < 0) {
                l->stream = NULL;
                link_schedule_reconnect(l, "cannot start the SUBSCRIBE request", false);
        }
}

static void on_reconnect_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        link_connect(w->data);
}

/* ---- calls ---- */

static const char *call_name(int type)
{
        const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&mesos__v1__scheduler__call__type__descriptor, type);
        return v ? v->name : "UNKNOWN";
}

/* Calls whose effect a REVIVE undoes (filters, suppression). Calls travel on
 * parallel connections: one still in flight could reach the master after a
 * REVIVE sent now and leave the framework filtered or suppressed there. */
static bool call_filters(int type)
{
        return type == MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE ||
               type == MESOS__V1__SCHEDULER__CALL__TYPE__SUPPRESS ||
               type == MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT;
}

static bool filtering_calls_in_flight(const MasterLink *l)
{
        return l->n_filtering > 0;
}

static void call_dispatch(MasterLink *l);

/* A call has its answer (status) or failed (result < 0, transport_error says how). */
static void call_finished(CallCtx *ctx, int result, long status, const char *body,
                          const char *transport_error)
{
        MasterLink *l = ctx->link;
        char err[512] = "";
        int r = 0;

        if (result < 0) {
                r = result;
                snprintf(err, sizeof(err), "%s", transport_error);
        } else if (status != 202 && status != 200) {
                r = status == 307 ? -EAGAIN : status == 403 ? -ENOTCONN : -EIO;
                snprintf(err, sizeof(err), "%s answered with HTTP %ld: %.300s", call_name(ctx->type), status,
                         body);
        }
        if (r < 0 && l) {
                l->stats.call_failures++;
                if (result != -ECANCELED)
                        log_warn("%s call failed: %s", call_name(ctx->type), err);
                /* not the leader anymore, or the master lost our subscription: start over */
                if ((r == -EAGAIN || r == -ENOTCONN) && l->state == LINK_SUBSCRIBED && l->stream) {
                        HttpRequest *s = l->stream;
                        l->stream = NULL;
                        http_request_cancel(s);
                        link_schedule_reconnect(l, err, true);
                }
        }
        if (l) {
                if (ctx->prev)
                        ctx->prev->next = ctx->next;
                else
                        l->calls = ctx->next;
                if (ctx->next)
                        ctx->next->prev = ctx->prev;
                l->n_in_flight--;
                if (call_filters(ctx->type))
                        l->n_filtering--;
        }
        if (ctx->cb && l)
                ctx->cb(r, err, ctx->userdata);
        if (l && l->revive_deferred && !filtering_calls_in_flight(l)) {
                int k = 0;
                l->revive_deferred = false;
                /* not subscribed: the next subscription starts over anyway */
                if (l->state == LINK_SUBSCRIBED && (k = send_revive(l)) < 0)
                        log_warn_errno(k, "cannot send the deferred REVIVE: %m");
        }
        free(ctx);
        if (l)
                call_dispatch(l);
}

static void on_call_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        call_finished(userdata, result, resp ? resp->status : 0, resp ? buf_str(&resp->body) : "",
                      result < 0 ? http_request_error(req) : "");
}

static void on_pipe_call_done(int result, long status, const char *body, size_t len, void *userdata)
{
        char why[128] = "";

        if (result < 0)
                snprintf(why, sizeof(why), "%s",
                         result == -ETIMEDOUT ? "no answer in time" : strerror(-result));
        call_finished(userdata, result, status, body, why);
}

static void on_pipe_reaper(struct ev_loop *loop, ev_timer *w, int revents)
{
        MasterLink *l = w->data;

        l->pipe_dead = http_pipeline_free(l->pipe_dead);
}

/* Gives the pipeline up: its calls in flight fail (-ECANCELED). Not here when
 * called from inside one of its callbacks (a 307 to a call, say): then on the
 * next loop turn, and its calls stay in flight until then. */
static void pipe_retire(MasterLink *l)
{
        if (!l->pipe)
                return;
        if (l->pipe_dead) /* two in one turn: the older one goes now, outside any callback of it */
                http_pipeline_free(l->pipe_dead);
        l->pipe_dead = TAKE_PTR(l->pipe);
        ev_timer_set(&l->pipe_reaper, 0., 0.);
        ev_timer_start(l->loop, &l->pipe_reaper);
}

static void pipe_start(MasterLink *l)
{
        char host[URL_MAX];
        const char *h, *path;
        int r;

        pipe_retire(l);
        if (l->peer_len == 0 || !strneq(l->url, "http://", 7))
                return; /* https or an unknown address: the calls go through libcurl */
        h = l->url + 7;
        path = strchr(h, '/');
        snprintf(host, sizeof(host), "%.*s", (int)(path ? (size_t)(path - h) : strlen(h)), h);
        HttpPipelineOptions o = {
                .addr = l->peer,
                .addr_len = l->peer_len,
                .host = host,
                .path = path ? path : "/",
                .connections = PIPE_CONNECTIONS,
                .depth = PIPE_DEPTH,
                .timeout_ns = l->cfg.call_timeout_ns,
                .max_body = ERROR_BODY_MAX,
        };
        r = http_pipeline_new(l->loop, &o, &l->pipe);
        if (r < 0)
                log_warn_errno(r, "cannot pipeline the calls to the master (%m): one request at a time");
        else
                log_info(
                        "calls to the master pipelined: up to %d connections to %s, %d calls in flight on each",
                        PIPE_CONNECTIONS, host, PIPE_DEPTH);
}

static CallCtx *queue_pop(MasterLink *l)
{
        CallCtx **head = l->urgent_head ? &l->urgent_head : &l->bulk_head;
        CallCtx **tail = l->urgent_head ? &l->urgent_tail : &l->bulk_tail;
        CallCtx *c = *head;

        if (!c)
                return NULL;
        *head = c->next;
        if (!*head)
                *tail = NULL;
        c->next = NULL;
        l->n_queued--;
        return c;
}

/* Fails every queued call (it was never sent) with r. */
static void queue_fail(MasterLink *l, int r, const char *why)
{
        CallCtx *c;

        while ((c = queue_pop(l))) {
                if (call_filters(c->type))
                        l->n_filtering--;
                if (c->cb)
                        c->cb(r, why, c->userdata);
                free(c);
        }
}

/* Sends queued calls while fewer than CALLS_IN_FLIGHT_MAX are on the wire. */
static void call_dispatch(MasterLink *l)
{
        CallCtx *c;

        while (l->pipe && l->state == LINK_SUBSCRIBED && http_pipeline_can_post(l->pipe) &&
               (c = queue_pop(l))) {
                int r = http_pipeline_post(l->pipe, l->call_headers, c->body, c->len, on_pipe_call_done, c);
                if (r < 0) {
                        l->stats.call_failures++;
                        log_warn_errno(r, "%s call failed: cannot send it: %m", call_name(c->type));
                        if (call_filters(c->type))
                                l->n_filtering--;
                        if (c->cb)
                                c->cb(r, "cannot send the call", c->userdata);
                        free(c);
                        continue;
                }
                c->next = l->calls;
                if (l->calls)
                        l->calls->prev = c;
                l->calls = c;
                l->n_in_flight++;
                l->stats.calls++;
        }
        while (!l->pipe && l->n_in_flight < CALLS_IN_FLIGHT_MAX && l->state == LINK_SUBSCRIBED &&
               (c = queue_pop(l))) {
                HttpRequestOptions o = {
                        .method = "POST",
                        .url = l->url,
                        .headers = l->call_headers,
                        .body = c->body,
                        .body_len = c->len,
                        .timeout_ns = l->cfg.call_timeout_ns,
                        .max_body = ERROR_BODY_MAX,
                        .on_done = on_call_done,
                        .userdata = c,
                };
                int r = http_request_start(l->http, &o, NULL);
                if (r < 0) {
                        l->stats.call_failures++;
                        log_warn_errno(r, "%s call failed: cannot start the request: %m",
                                       call_name(c->type));
                        if (call_filters(c->type))
                                l->n_filtering--;
                        if (c->cb)
                                c->cb(r, "cannot start the request", c->userdata);
                        free(c);
                        continue;
                }
                c->next = l->calls;
                if (l->calls)
                        l->calls->prev = c;
                l->calls = c;
                l->n_in_flight++;
                l->stats.calls++;
        }
}

int master_link_call(MasterLink *l, Mesos__V1__Scheduler__Call *call, master_call_fn cb, void *userdata)
{
        _cleanup_(buf_done) Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        CallCtx *ctx;
        int r;

        if (l->state != LINK_SUBSCRIBED || !l->framework_id)
                return -ENOTCONN;
        if (!call->framework_id) {
                fid.value = l->framework_id;
                call->framework_id = &fid;
        }
        call->has_type = true;
        r = mesos_pack(&call->base, &body);
        if (call->framework_id == &fid)
                call->framework_id = NULL;
        if (r < 0)
                return r;
        ctx = malloc(sizeof(*ctx) + body.len);
        if (!ctx)
                return -ENOMEM;
        *ctx = (CallCtx){ .link = l, .cb = cb, .userdata = userdata, .type = call->type, .len = body.len };
        memcpy(ctx->body, body.data, body.len);
        if (call_filters(ctx->type))
                l->n_filtering++;
        /* acknowledgements come in floods; they must not hold back a launch or a kill */
        if (ctx->type == MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE) {
                if (l->bulk_tail)
                        l->bulk_tail->next = ctx;
                else
                        l->bulk_head = ctx;
                l->bulk_tail = ctx;
        } else {
                if (l->urgent_tail)
                        l->urgent_tail->next = ctx;
                else
                        l->urgent_head = ctx;
                l->urgent_tail = ctx;
        }
        l->n_queued++;
        call_dispatch(l);
        return 0;
}

size_t master_link_calls_queued(const MasterLink *l)
{
        return l->n_queued;
}

static void id_init(Mesos__V1__TaskID *t, const char *v)
{
        mesos__v1__task_id__init(t);
        t->value = (char *)v;
}

int master_link_accept(MasterLink *l, const char *offer_id, TaskInfo *const *tasks, size_t n,
                       double refuse_seconds)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Accept acc = MESOS__V1__SCHEDULER__CALL__ACCEPT__INIT;
        Mesos__V1__Offer__Operation op = MESOS__V1__OFFER__OPERATION__INIT;
        Mesos__V1__Offer__Operation__Launch launch = MESOS__V1__OFFER__OPERATION__LAUNCH__INIT;
        Mesos__V1__Offer__Operation *ops[1] = { &op };
        Mesos__V1__OfferID oid = MESOS__V1__OFFER_ID__INIT;
        Mesos__V1__OfferID *oids[1] = { &oid };
        Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;

        oid.value = (char *)offer_id;
        acc.n_offer_ids = 1;
        acc.offer_ids = oids;
        if (n > 0) {
                launch.n_task_infos = n;
                launch.task_infos = (TaskInfo **)tasks;
                op.has_type = true;
                op.type = MESOS__V1__OFFER__OPERATION__TYPE__LAUNCH;
                op.launch = &launch;
                acc.n_operations = 1;
                acc.operations = ops;
        }
        filters.has_refuse_seconds = true;
        filters.refuse_seconds = refuse_seconds;
        acc.filters = &filters;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT;
        call.accept = &acc;
        return master_link_call(l, &call, NULL, NULL);
}

int master_link_acknowledge(MasterLink *l, const char *agent_id, const char *task_id, const uint8_t *uuid,
                            size_t uuid_len)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Acknowledge ack = MESOS__V1__SCHEDULER__CALL__ACKNOWLEDGE__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__TaskID tid;

        id_init(&tid, task_id);
        aid.value = (char *)agent_id;
        ack.agent_id = &aid;
        ack.task_id = &tid;
        ack.uuid.data = (uint8_t *)uuid;
        ack.uuid.len = uuid_len;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE;
        call.acknowledge = &ack;
        return master_link_call(l, &call, NULL, NULL);
}

int master_link_decline(MasterLink *l, char *const *offer_ids, size_t n, double refuse_seconds)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Decline dec = MESOS__V1__SCHEDULER__CALL__DECLINE__INIT;
        Mesos__V1__Filters filters = MESOS__V1__FILTERS__INIT;
        _cleanup_free_ Mesos__V1__OfferID *ids = calloc(n ? n : 1, sizeof(*ids));
        _cleanup_free_ Mesos__V1__OfferID **idp = calloc(n ? n : 1, sizeof(*idp));

        if (!ids || !idp)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                mesos__v1__offer_id__init(&ids[i]);
                ids[i].value = offer_ids[i];
                idp[i] = &ids[i];
        }
        dec.n_offer_ids = n;
        dec.offer_ids = idp;
        filters.has_refuse_seconds = true;
        filters.refuse_seconds = refuse_seconds;
        dec.filters = &filters;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE;
        call.decline = &dec;
        return master_link_call(l, &call, NULL, NULL);
}

int master_link_kill(MasterLink *l, const char *task_id, const char *agent_id, int64_t grace_ns)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Kill kill = MESOS__V1__SCHEDULER__CALL__KILL__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;
        Mesos__V1__KillPolicy kp = MESOS__V1__KILL_POLICY__INIT;
        Mesos__V1__DurationInfo d = MESOS__V1__DURATION_INFO__INIT;
        Mesos__V1__TaskID tid;

        id_init(&tid, task_id);
        kill.task_id = &tid;
        if (agent_id) {
                aid.value = (char *)agent_id;
                kill.agent_id = &aid;
        }
        if (grace_ns >= 0) {
                d.nanoseconds = grace_ns;
                kp.grace_period = &d;
                kill.kill_policy = &kp;
        }
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__KILL;
        call.kill = &kill;
        return master_link_call(l, &call, NULL, NULL);
}

int master_link_reconcile(MasterLink *l, char *const *task_ids, char *const *agent_ids, size_t n)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Reconcile rec = MESOS__V1__SCHEDULER__CALL__RECONCILE__INIT;
        _cleanup_free_ Mesos__V1__Scheduler__Call__Reconcile__Task *tasks =
                calloc(n ? n : 1, sizeof(*tasks));
        _cleanup_free_ Mesos__V1__Scheduler__Call__Reconcile__Task **tp = calloc(n ? n : 1, sizeof(*tp));
        _cleanup_free_ Mesos__V1__TaskID *tids = calloc(n ? n : 1, sizeof(*tids));
        _cleanup_free_ Mesos__V1__AgentID *aids = calloc(n ? n : 1, sizeof(*aids));

        if (!tasks || !tp || !tids || !aids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                mesos__v1__scheduler__call__reconcile__task__init(&tasks[i]);
                id_init(&tids[i], task_ids[i]);
                tasks[i].task_id = &tids[i];
                if (agent_ids && agent_ids[i]) {
                        mesos__v1__agent_id__init(&aids[i]);
                        aids[i].value = agent_ids[i];
                        tasks[i].agent_id = &aids[i];
                }
                tp[i] = &tasks[i];
        }
        rec.n_tasks = n;
        rec.tasks = tp;
        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE;
        call.reconcile = &rec;
        return master_link_call(l, &call, NULL, NULL);
}

static int send_revive(MasterLink *l)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Revive rev = MESOS__V1__SCHEDULER__CALL__REVIVE__INIT;

        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__REVIVE;
        call.revive = &rev;
        return master_link_call(l, &call, NULL, NULL);
}

/* Sent once the DECLINEs, SUPPRESSes and ACCEPTs in flight are answered, so it
 * comes after them at the master too. */
int master_link_revive(MasterLink *l)
{
        if (l->state != LINK_SUBSCRIBED || !l->framework_id)
                return -ENOTCONN;
        if (filtering_calls_in_flight(l)) {
                l->revive_deferred = true;
                return 0;
        }
        return send_revive(l);
}

int master_link_suppress(MasterLink *l)
{
        Mesos__V1__Scheduler__Call call = MESOS__V1__SCHEDULER__CALL__INIT;
        Mesos__V1__Scheduler__Call__Suppress sup = MESOS__V1__SCHEDULER__CALL__SUPPRESS__INIT;

        l->revive_deferred = false; /* the latest wish wins */

        call.type = MESOS__V1__SCHEDULER__CALL__TYPE__SUPPRESS;
        call.suppress = &sup;
        return master_link_call(l, &call, NULL, NULL);
}

/* ---- lifetime ---- */

int master_link_new(struct ev_loop *loop, HttpClient *http, const MasterLinkConfig *cfg,
                    const MasterLinkCallbacks *cb, void *userdata, MasterLink **ret, PacerError *err)
{
        _cleanup_free_ MasterLink *l = calloc(1, sizeof(*l));
        size_t h = 0;

        if (!l)
                return -ENOMEM;
        if (!cfg->user || !*cfg->user || !cfg->name || !*cfg->name)
                return pacer_error_set(err, EINVAL, "the framework needs a user and a name");
        if (build_url(cfg->master, l->url, sizeof(l->url)) < 0)
                return pacer_error_set(err, EINVAL,
                                       "--master=%.200s: expected host:port or http(s)://host:port",
                                       strempty(cfg->master));
        snprintf(l->initial_url, sizeof(l->initial_url), "%s", l->url);
        l->loop = loop;
        l->http = http;
        l->cfg = *cfg;
        if (l->cfg.backoff_max_ns <= 0)
                l->cfg.backoff_max_ns = BACKOFF_MAX_DEFAULT;
        if (l->cfg.call_timeout_ns <= 0)
                l->cfg.call_timeout_ns = CALL_TIMEOUT_DEFAULT;
        l->cb = *cb;
        l->userdata = userdata;
        set_stream_id(l, "");

        l->sub_headers[h++] = "Content-Type: " CONTENT_TYPE_PROTOBUF;
        l->sub_headers[h++] = "Accept: " CONTENT_TYPE_PROTOBUF;
        if (cfg->auth_header)
                l->sub_headers[h++] = cfg->auth_header;
        l->sub_headers[h] = NULL;
        h = 0;
        l->call_headers[h++] = "Content-Type: " CONTENT_TYPE_PROTOBUF;
        l->call_headers[h++] = "Accept: " CONTENT_TYPE_PROTOBUF;
        l->call_headers[h++] = l->stream_header;
        if (cfg->auth_header)
                l->call_headers[h++] = cfg->auth_header;
        l->call_headers[h] = NULL;

        recordio_decoder_init(&l->decoder, MASTER_EVENT_MAX);
        ev_timer_init(&l->reconnect_timer, on_reconnect_timer, 0., 0.);
        l->reconnect_timer.data = l;
        ev_timer_init(&l->watchdog, on_watchdog, 0., 0.);
        l->watchdog.data = l;
        ev_timer_init(&l->pipe_reaper, on_pipe_reaper, 0., 0.);
        l->pipe_reaper.data = l;
        *ret = TAKE_PTR(l);
        return 0;
}

int master_link_start(MasterLink *l, const char *framework_id)
{
        free(l->framework_id);
        l->framework_id = framework_id && *framework_id ? strdup(framework_id) : NULL;
        link_connect(l);
        return 0;
}

bool master_link_is_subscribed(const MasterLink *l)
{
        return l && l->state == LINK_SUBSCRIBED;
}

const char *master_link_framework_id(const MasterLink *l)
{
        return l->framework_id;
}

const char *master_link_url(const MasterLink *l)
{
        return l->url;
}

const MasterLinkStats *master_link_stats(const MasterLink *l)
{
        return &l->stats;
}

MasterLink *master_link_free(MasterLink *l)
{
        if (!l)
                return NULL;
        l->state = LINK_CLOSED;
        for (CallCtx *c = l->calls; c; c = c->next)
                c->link = NULL; /* their completions still come, from the HTTP client, and find no link */
        for (CallCtx *c; (c = queue_pop(l));)
                free(c); /* never sent; nobody is told, as for the calls in flight */
        /* the calls in flight are detached above: their -ECANCELED reaches nobody */
        http_pipeline_free(l->pipe);
        http_pipeline_free(l->pipe_dead);
        ev_timer_stop(l->loop, &l->pipe_reaper);
        if (l->stream)
                http_request_cancel(l->stream);
        ev_timer_stop(l->loop, &l->reconnect_timer);
        ev_timer_stop(l->loop, &l->watchdog);
        recordio_decoder_done(&l->decoder);
        free(l->framework_id);
        free(l);
        return NULL;
}
