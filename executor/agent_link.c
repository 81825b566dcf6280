/* SPDX-License-Identifier: Apache-2.0 */
#include "agent_link.h"

#include <ev.h>
#include <stdio.h>
#include <sys/random.h>

#include "duration.h"
#include "log.h"
#include "recordio.h"
#include "updates.h"

#define CONTENT_TYPE_PROTOBUF "application/x-protobuf"
/* First reconnect delay; doubles up to MESOS_SUBSCRIPTION_BACKOFF_MAX. */
#define BACKOFF_INITIAL_NS (50 * NSEC_PER_MSEC)
/* Delay before retrying an UPDATE the agent could not take (503, connection error). */
#define UPDATE_RETRY_NS (500 * NSEC_PER_MSEC)
/* One executor event is a few KiB; a LAUNCH with a big environment stays far below. */
#define AGENT_EVENT_MAX (4u * 1024 * 1024)
/* Cap on the error text the agent sends with a refusal. */
#define AGENT_ERROR_BODY_MAX (16u * 1024)
#define URL_MAX              512

typedef enum LinkState {
        LINK_IDLE,        /* waiting for the backoff timer */
        LINK_SUBSCRIBING, /* SUBSCRIBE sent, no SUBSCRIBED yet */
        LINK_SUBSCRIBED,
        LINK_LOST, /* gave up */
} LinkState;

struct AgentLink {
        struct ev_loop *loop;
        HttpClient *http;
        AgentLinkConfig cfg;
        AgentLinkCallbacks cb;
        void *userdata;

        char url[URL_MAX];
        char auth_header[1024];
        const char *headers[5];

        LinkState state;
        HttpRequest *stream;
        RecordioDecoder decoder;
        uint64_t subscribe_seq; /* newest update carried by the SUBSCRIBE in flight */
        bool ever_subscribed;

        ev_timer reconnect_timer;
        ev_timer recovery_timer; /* armed while there is no subscription */
        int64_t backoff_ns;

        UpdateQueue queue;
        HttpRequest *update_req;                /* the one UPDATE in flight */
        uint8_t inflight_uuid[MESOS_UUID_SIZE]; /* identifies it: the entry may be acked or dropped meanwhile
                                                 */
        ev_timer update_retry_timer;
        int64_t first_subscribe_limit_ns;

        AgentLinkStats stats;
};

static void link_connect(AgentLink *l);
static void link_pump_updates(AgentLink *l);

static double ns_to_ev(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

/* Builds "http://host:port/api/v1/executor"; IPv6 endpoints come without brackets. */
static int build_url(const char *endpoint, char *out, size_t size)
{
        const char *colon = strrchr(endpoint, ':');
        int n;

        if (!colon || colon == endpoint || !colon[1])
                return -EINVAL;
        for (const char *p = colon + 1; *p; p++)
                if (*p < '0' || *p > '9')
                        return -EINVAL;
        if (memchr(endpoint, ':', (size_t)(colon - endpoint)))
                n = snprintf(out, size, "http://[%.*s]%s/api/v1/executor", (int)(colon - endpoint), endpoint,
                             colon);
        else
                n = snprintf(out, size, "http://%s/api/v1/executor", endpoint);
        return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static void link_give_up(AgentLink *l, const char *why)
{
        if (l->state == LINK_LOST)
                return;
        l->state = LINK_LOST;
        ev_timer_stop(l->loop, &l->reconnect_timer);
        ev_timer_stop(l->loop, &l->recovery_timer);
        ev_timer_stop(l->loop, &l->update_retry_timer);
        log_error("giving up on the agent at %s: %s", l->cfg.endpoint, why);
        if (l->cb.lost)
                l->cb.lost(why, l->userdata);
}

static int64_t jitter(int64_t ns)
{
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
                r = (uint32_t)ns;
        /* uniformly in [0, ns], as Mesos's own executor library: spreads the reconnects of many
         * executors after an agent restart and leaves margin in its re-registration window */
        return (int64_t)((double)ns * ((double)r / (double)UINT32_MAX));
}

/* The stream is gone (or never came up): reconnect later, or give up. */
static void link_schedule_reconnect(AgentLink *l, const char *why)
{
        bool was_subscribed = l->state == LINK_SUBSCRIBED;

        if (l->state == LINK_LOST)
                return;
        l->state = LINK_IDLE;
        l->stream = NULL;

        if (was_subscribed) {
                log_warn("disconnected from the agent at %s: %s", l->cfg.endpoint, why);
                if (l->cb.disconnected)
                        l->cb.disconnected(why, l->userdata);
                if (l->state == LINK_LOST)
                        return;
                if (!l->cfg.checkpoint) {
                        link_give_up(l, "connection to the agent lost and framework checkpointing is off "
                                        "(MESOS_CHECKPOINT=0): the agent cannot recover this executor");
                        return;
                }
                ev_timer_set(&l->recovery_timer, ns_to_ev(l->cfg.recovery_timeout_ns), 0.);
                ev_timer_start(l->loop, &l->recovery_timer);
        } else
                log_info("SUBSCRIBE to %s failed: %s; retrying", l->cfg.endpoint, why);

        l->backoff_ns = l->backoff_ns ? MIN(l->backoff_ns * 2, l->cfg.backoff_max_ns) : BACKOFF_INITIAL_NS;
        l->backoff_ns = MIN(l->backoff_ns, l->cfg.backoff_max_ns);
        ev_timer_set(&l->reconnect_timer, ns_to_ev(jitter(l->backoff_ns)), 0.);
        ev_timer_start(l->loop, &l->reconnect_timer);
}

static void on_subscribed(AgentLink *l)
{
        l->state = LINK_SUBSCRIBED;
        l->ever_subscribed = true;
        l->backoff_ns = 0;
        l->stats.subscribes++;
        ev_timer_stop(l->loop, &l->recovery_timer);
        /* the SUBSCRIBE carried these: the agent re-injects them itself */
        update_queue_mark_sent_upto(&l->queue, l->subscribe_seq);
        log_info("subscribed to the agent at %s (%zu unacknowledged updates carried)", l->cfg.endpoint,
                 l->queue.count);
}

static void handle_ack(AgentLink *l, const Mesos__V1__Executor__Event__Acknowledged *a)
{
        TaskState state;
        char uuid[40] = "?";
        const char *task_id = a->task_id && a->task_id->value ? a->task_id->value : NULL;

        if (a->uuid.len == MESOS_UUID_SIZE)
                mesos_uuid_format(a->uuid.data, uuid);
        if (update_queue_ack(&l->queue, task_id, a->uuid.data, a->uuid.len, &state) <= 0) {
                log_warn_s(strna(task_id), "ACKNOWLEDGED for an unknown update uuid=%s: ignored", uuid);
                return;
        }
        l->stats.updates_acked++;
        log_debug_s(task_id, "agent acknowledged %s uuid=%s", task_state_to_string(state), uuid);
        if (l->cb.acknowledged)
                l->cb.acknowledged(task_id, state, l->userdata);
}

static int on_record(const uint8_t *data, size_t len, void *userdata)
{
        AgentLink *l = userdata;
        Mesos__V1__Executor__Event *ev;

        ev = mesos__v1__executor__event__unpack(NULL, len, data);
        if (!ev) {
                l->stats.bad_frames++;
                log_error("malformed protobuf event (%zu bytes) from the agent at stream offset %llu: "
                          "dropping the connection to resubscribe",
                          len, (unsigned long long)l->decoder.offset);
                return -EBADMSG;
        }
        l->stats.events++;
        if (!ev->has_type) {
                log_warn("event without a type from the agent: ignored");
                mesos__v1__executor__event__free_unpacked(ev, NULL);
                return 0;
        }
        switch (ev->type) {
        case MESOS__V1__EXECUTOR__EVENT__TYPE__SUBSCRIBED:
                if (!ev->subscribed) {
                        log_error("SUBSCRIBED event without its payload: resubscribing");
                        mesos__v1__executor__event__free_unpacked(ev, NULL);
                        return -EBADMSG;
                }
                on_subscribed(l);
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED:
                if (ev->acknowledged)
                        handle_ack(l, ev->acknowledged);
                else
                        log_warn("ACKNOWLEDGED event without its payload: ignored");
                mesos__v1__executor__event__free_unpacked(ev, NULL);
                link_pump_updates(l);
                return 0;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__HEARTBEAT:
                log_debug("heartbeat from the agent");
                mesos__v1__executor__event__free_unpacked(ev, NULL);
                return 0;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH:
        case MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH_GROUP:
        case MESOS__V1__EXECUTOR__EVENT__TYPE__KILL:
        case MESOS__V1__EXECUTOR__EVENT__TYPE__MESSAGE:
        case MESOS__V1__EXECUTOR__EVENT__TYPE__SHUTDOWN:
        case MESOS__V1__EXECUTOR__EVENT__TYPE__ERROR:
                break;
        default:
                log_warn("unknown event type %d from the agent: ignored", (int)ev->type);
                mesos__v1__executor__event__free_unpacked(ev, NULL);
                return 0;
        }
        if (l->cb.event)
                l->cb.event(ev, l->userdata);
        mesos__v1__executor__event__free_unpacked(ev, NULL);
        if (l->state == LINK_SUBSCRIBED)
                link_pump_updates(l);
        return l->state == LINK_LOST ? -ECANCELED : 0;
}

static int on_stream_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        AgentLink *l = userdata;
        int r = recordio_feed(&l->decoder, data, len, on_record, l);

        if (r == -EBADMSG && recordio_error(&l->decoder))
                log_error("bad event stream from the agent: %s: dropping the connection to resubscribe",
                          recordio_error(&l->decoder));
        return r;
}

static void on_stream_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        AgentLink *l = userdata;
        char why[512];

        l->stream = NULL;
        if (l->state == LINK_LOST)
                return;
        if (result == 0 && resp->status != 200) {
                /* the agent answered but refused: 503 while it recovers, 4xx when it will never take us;
                 * except 404, which a restarting agent answers until its HTTP routes exist */
                snprintf(why, sizeof(why), "agent answered SUBSCRIBE with HTTP %ld: %.300s", resp->status,
                         buf_str(&resp->body));
                if (resp->status >= 400 && resp->status < 500 && resp->status != 404 &&
                    resp->status != 408 && resp->status != 429) {
                        link_give_up(l, why);
                        return;
                }
        } else if (result == 0)
                snprintf(why, sizeof(why), "the agent closed the event stream");
        else if (result == -EBADMSG)
                snprintf(why, sizeof(why), "malformed event stream");
        else
                snprintf(why, sizeof(why), "%s", http_request_error(req));
        link_schedule_reconnect(l, why);
}

static void link_connect(AgentLink *l)
{
        _cleanup_(buf_done) Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        HttpRequestOptions o = {
                .method = "POST",
                .url = l->url,
                .headers = l->headers,
                .tcp_keepalive = true,
                .fresh_connection = true,
                .connect_timeout_ns = 5 * NSEC_PER_SEC,
                .unix_socket = l->cfg.unix_socket,
                .max_body = AGENT_ERROR_BODY_MAX,
                .on_data = on_stream_data,
                .on_done = on_stream_done,
                .userdata = l,
        };
        int r;

        r = update_queue_build_subscribe(&l->queue, l->cfg.framework_id, l->cfg.executor_id, &body,
                                         &l->subscribe_seq);
        if (r < 0) {
                link_give_up(l, "cannot build the SUBSCRIBE call");
                return;
        }
        o.body = body.data;
        o.body_len = body.len;
        recordio_decoder_reset(&l->decoder);
        l->state = LINK_SUBSCRIBING;
        r = http_request_start(l->http, &o, &l->stream);
        if (r < 0) {
                l->stream = NULL;
                link_schedule_reconnect(l, "cannot start the SUBSCRIBE request");
        }
}

static void on_reconnect_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        AgentLink *l = w->data;
        link_connect(l);
}

static void on_recovery_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        AgentLink *l = w->data;
        char why[160], d[32];

        if (l->ever_subscribed)
                snprintf(why, sizeof(why), "the agent did not come back within the recovery timeout (%s)",
                         duration_format_mesos(l->cfg.recovery_timeout_ns, d, sizeof(d)));
        else
                snprintf(why, sizeof(why), "could not subscribe to the agent within %s",
                         duration_format_mesos(l->first_subscribe_limit_ns, d, sizeof(d)));
        if (l->stream)
                http_request_cancel(l->stream);
        link_give_up(l, why);
}

/* ---- status updates ---- */

static void on_update_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        AgentLink *l = userdata;
        PendingUpdate *u = update_queue_find(&l->queue, l->inflight_uuid);

        l->update_req = NULL;
        if (l->state == LINK_LOST)
                return;
        if (!u) { /* acknowledged (or dropped) before its 202 arrived */
                link_pump_updates(l);
                return;
        }
        if (result == 0 && resp->status == 202) {
                u->sent = true;
                l->stats.updates_sent++;
                link_pump_updates(l);
                return;
        }
        if (result == 0 && resp->status >= 400 && resp->status < 500 && resp->status != 403 &&
            resp->status != 404) {
                /* the agent will never take this update; resending it would only break the next SUBSCRIBE
                 * (404 is a restarting agent without its routes yet: transient) */
                log_error_s(u->task_id, "agent rejected the %s update with HTTP %ld: %.300s: dropping it",
                            task_state_to_string(u->state), resp->status, buf_str(&resp->body));
                TaskState st;
                update_queue_ack(&l->queue, u->task_id, u->uuid, MESOS_UUID_SIZE, &st);
                link_pump_updates(l);
                return;
        }
        if (result == 0)
                log_warn_s(u->task_id, "agent answered the %s update with HTTP %ld: retrying",
                           task_state_to_string(u->state), resp->status);
        else if (result != -ECANCELED)
                log_warn_s(u->task_id, "sending the %s update failed: %s: retrying",
                           task_state_to_string(u->state), http_request_error(req));
        if (result != -ECANCELED && l->state == LINK_SUBSCRIBED) {
                ev_timer_set(&l->update_retry_timer, ns_to_ev(UPDATE_RETRY_NS), 0.);
                ev_timer_start(l->loop, &l->update_retry_timer);
        }
}

static void link_pump_updates(AgentLink *l)
{
        Mesos__V1__Executor__Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call__Update update = MESOS__V1__EXECUTOR__CALL__UPDATE__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        _cleanup_(buf_done) Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        PendingUpdate *u;
        int r;

        if (l->state != LINK_SUBSCRIBED || l->update_req || ev_is_active(&l->update_retry_timer))
                return;
        u = update_queue_next_unsent(&l->queue);
        if (!u)
                return;

        update.status = mesos__v1__task_status__unpack(NULL, u->packed_len, u->packed);
        if (!update.status)
                return;
        fid.value = (char *)l->cfg.framework_id;
        eid.value = (char *)l->cfg.executor_id;
        call.framework_id = &fid;
        call.executor_id = &eid;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE;
        call.update = &update;
        r = mesos_pack(&call.base, &body);
        mesos__v1__task_status__free_unpacked(update.status, NULL);
        if (r < 0)
                return;

        HttpRequestOptions o = {
                .method = "POST",
                .url = l->url,
                .headers = l->headers,
                .body = body.data,
                .body_len = body.len,
                .timeout_ns = l->cfg.call_timeout_ns,
                .unix_socket = l->cfg.unix_socket,
                .max_body = AGENT_ERROR_BODY_MAX,
                .on_done = on_update_done,
                .userdata = l,
        };
        memcpy(l->inflight_uuid, u->uuid, MESOS_UUID_SIZE);
        r = http_request_start(l->http, &o, &l->update_req);
        if (r < 0) {
                l->update_req = NULL;
                ev_timer_set(&l->update_retry_timer, ns_to_ev(UPDATE_RETRY_NS), 0.);
                ev_timer_start(l->loop, &l->update_retry_timer);
        }
}

static void on_update_retry_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
        link_pump_updates(w->data);
}

int agent_link_send_status(AgentLink *l, TaskStatus *status)
{
        static Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        uint8_t uuid[MESOS_UUID_SIZE];
        int r;

        if (l->state == LINK_LOST)
                return -ENOTCONN;
        mesos_uuid_generate(uuid);
        eid.value = (char *)l->cfg.executor_id;
        status->has_uuid = true;
        status->uuid.data = uuid;
        status->uuid.len = sizeof(uuid);
        status->has_timestamp = true;
        status->timestamp = mesos_now();
        status->has_source = true;
        status->source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
        status->executor_id = &eid;

        r = update_queue_push(&l->queue, status, NULL);
        status->executor_id = NULL;
        status->uuid.data = NULL;
        status->has_uuid = false;
        if (r < 0)
                return r;
        link_pump_updates(l);
        return 0;
}

int agent_link_track_task(AgentLink *l, const TaskInfo *task)
{
        return update_queue_track_task(&l->queue, task);
}

bool agent_link_has_unacked(const AgentLink *l, const char *task_id)
{
        return update_queue_has_unacked(&l->queue, task_id);
}

static void on_message_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        if (result < 0 || resp->status != 202)
                log_warn("MESSAGE call failed: %s (HTTP %ld)",
                         result < 0 ? http_request_error(req) : "refused", resp->status);
}

int agent_link_send_message(AgentLink *l, const void *data, size_t len)
{
        Mesos__V1__Executor__Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        Mesos__V1__Executor__Call__Message msg = MESOS__V1__EXECUTOR__CALL__MESSAGE__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        _cleanup_(buf_done) Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        int r;

        if (l->state != LINK_SUBSCRIBED)
                return -ENOTCONN;
        fid.value = (char *)l->cfg.framework_id;
        eid.value = (char *)l->cfg.executor_id;
        call.framework_id = &fid;
        call.executor_id = &eid;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__MESSAGE;
        msg.data.data = (uint8_t *)data;
        msg.data.len = len;
        call.message = &msg;
        r = mesos_pack(&call.base, &body);
        if (r < 0)
                return r;
        HttpRequestOptions o = {
                .method = "POST",
                .url = l->url,
                .headers = l->headers,
                .body = body.data,
                .body_len = body.len,
                .timeout_ns = l->cfg.call_timeout_ns,
                .unix_socket = l->cfg.unix_socket,
                .max_body = AGENT_ERROR_BODY_MAX,
                .on_done = on_message_done,
        };
        return http_request_start(l->http, &o, NULL);
}

/* ---- lifetime ---- */

int agent_link_new(struct ev_loop *loop, HttpClient *http, const AgentLinkConfig *cfg,
                   const AgentLinkCallbacks *cb, void *userdata, AgentLink **ret)
{
        _cleanup_free_ AgentLink *l = NULL;
        size_t h = 0;
        int r;

        if (!cfg->endpoint || !cfg->framework_id || !cfg->executor_id)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = build_url(cfg->endpoint, l->url, sizeof(l->url));
        if (r < 0)
                return r;
        l->loop = loop;
        l->http = http;
        l->cfg = *cfg;
        if (l->cfg.backoff_max_ns <= 0)
                l->cfg.backoff_max_ns = 2 * NSEC_PER_SEC;
        if (l->cfg.recovery_timeout_ns <= 0)
                l->cfg.recovery_timeout_ns = 15 * 60 * NSEC_PER_SEC;
        if (l->cfg.register_timeout_ns <= 0)
                l->cfg.register_timeout_ns = 60 * NSEC_PER_SEC;
        if (l->cfg.call_timeout_ns <= 0)
                l->cfg.call_timeout_ns = 10 * NSEC_PER_SEC;
        l->cb = *cb;
        l->userdata = userdata;

        l->headers[h++] = "Content-Type: " CONTENT_TYPE_PROTOBUF;
        l->headers[h++] = "Accept: " CONTENT_TYPE_PROTOBUF;
        if (cfg->auth_token && *cfg->auth_token) {
                r = snprintf(l->auth_header, sizeof(l->auth_header), "Authorization: Bearer %s",
                             cfg->auth_token);
                if (r < 0 || (size_t)r >= sizeof(l->auth_header))
                        return -ENAMETOOLONG;
                l->headers[h++] = l->auth_header;
        }
        l->headers[h] = NULL;

        recordio_decoder_init(&l->decoder, AGENT_EVENT_MAX);
        update_queue_init(&l->queue);
        ev_timer_init(&l->reconnect_timer, on_reconnect_timer, 0., 0.);
        l->reconnect_timer.data = l;
        ev_timer_init(&l->recovery_timer, on_recovery_timer, 0., 0.);
        l->recovery_timer.data = l;
        ev_timer_init(&l->update_retry_timer, on_update_retry_timer, 0., 0.);
        l->update_retry_timer.data = l;
        *ret = TAKE_PTR(l);
        return 0;
}

int agent_link_start(AgentLink *l)
{
        /* bound the first subscription like a reconnection: the agent may not be up yet */
        l->first_subscribe_limit_ns =
                l->cfg.checkpoint ? l->cfg.recovery_timeout_ns : l->cfg.register_timeout_ns;
        ev_timer_set(&l->recovery_timer, ns_to_ev(l->first_subscribe_limit_ns), 0.);
        ev_timer_start(l->loop, &l->recovery_timer);
        link_connect(l);
        return 0;
}

bool agent_link_is_subscribed(const AgentLink *l)
{
        return l->state == LINK_SUBSCRIBED;
}

const AgentLinkStats *agent_link_stats(const AgentLink *l)
{
        return &l->stats;
}

AgentLink *agent_link_free(AgentLink *l)
{
        if (!l)
                return NULL;
        l->state = LINK_LOST; /* callbacks of the cancelled requests below must not act */
        if (l->stream)
                http_request_cancel(l->stream);
        if (l->update_req)
                http_request_cancel(l->update_req);
        ev_timer_stop(l->loop, &l->reconnect_timer);
        ev_timer_stop(l->loop, &l->recovery_timer);
        ev_timer_stop(l->loop, &l->update_retry_timer);
        recordio_decoder_done(&l->decoder);
        update_queue_done(&l->queue);
        free(l);
        return NULL;
}
