/* SPDX-License-Identifier: Apache-2.0 */
/* pacer-probe: the smallest executor that speaks the Mesos v1 executor API the
 * way pacer-executor must (protobuf, RecordIO over a chunked stream, UPDATEs
 * on a second connection). It proves the integration-test harness and its
 * fake agent without the real executor: one stdout line per event, TASK_RUNNING
 * for every LAUNCH, "ack <task>" per ACKNOWLEDGED, exit 0 on SHUTDOWN.
 *
 * Exit codes: 0 after SHUTDOWN, 1 when the subscription fails or ends without
 * one, 2 for a missing environment variable. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "duration.h"
#include "http_client.h"
#include "log.h"
#include "macro.h"
#include "mesos.h"
#include "recordio.h"

#define PROBE_URL_MAX            512
#define PROBE_HEADER_MAX         128
#define PROBE_CONNECT_TIMEOUT_NS (5 * NSEC_PER_SEC)
#define PROBE_CALL_TIMEOUT_NS    (10 * NSEC_PER_SEC)
/* A whole executor-API event (a TaskInfo with its environment) is a few KiB. */
#define PROBE_EVENT_MAX (1024u * 1024)
/* An abort code of our own, so on_done can tell SHUTDOWN from a failure. */
#define PROBE_SHUTDOWN (-ECANCELED)

typedef Mesos__V1__Executor__Call Call;
typedef Mesos__V1__Executor__Event Event;

typedef struct Probe {
        struct ev_loop *loop;
        HttpClient *http;
        char url[PROBE_URL_MAX];
        const char *framework_id;
        const char *executor_id;
        RecordioDecoder decoder;
        bool shutdown;
        bool stopping; /* tearing down: cancelled requests are not failures */
        int exit_code;
} Probe;

static const char *event_type_name(int type)
{
        const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&mesos__v1__executor__event__type__descriptor, type);
        return v ? v->name : "UNKNOWN";
}

static void fail(Probe *p, int code)
{
        if (p->stopping)
                return;
        if (p->exit_code == 0)
                p->exit_code = code;
        ev_break(p->loop, EVBREAK_ALL);
}

/* The call's framework and executor ids point into p, so the call owns no memory. */
static int post_call(Probe *p, Call *call, const HttpRequestOptions *proto)
{
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        static const char *const headers[] = { "Content-Type: application/x-protobuf",
                                               "Accept: application/x-protobuf", NULL };
        Buf body = BUF_INIT(MESOS_MESSAGE_MAX);
        HttpRequestOptions o = *proto;
        int r;

        fid.value = (char *)p->framework_id;
        eid.value = (char *)p->executor_id;
        call->framework_id = &fid;
        call->executor_id = &eid;
        r = mesos_pack(&call->base, &body);
        if (r >= 0) {
                o.method = "POST";
                o.url = p->url;
                o.headers = headers;
                o.body = body.data;
                o.body_len = body.len;
                o.connect_timeout_ns = PROBE_CONNECT_TIMEOUT_NS;
                o.userdata = p;
                r = http_request_start(p->http, &o, NULL); /* copies the body */
        }
        buf_done(&body);
        return r;
}

static void on_update_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Probe *p = userdata;

        if (result < 0) {
                log_error_errno(result, "UPDATE failed: %s", http_request_error(req));
                fail(p, EXIT_FAILURE);
        } else if (resp->status != 202) {
                log_error("UPDATE answered %ld: %s", resp->status, buf_str(&resp->body));
                fail(p, EXIT_FAILURE);
        }
}

static int send_running(Probe *p, const char *task_id)
{
        Mesos__V1__TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__ExecutorID eid = MESOS__V1__EXECUTOR_ID__INIT;
        TaskStatus status = MESOS__V1__TASK_STATUS__INIT;
        Mesos__V1__Executor__Call__Update update = MESOS__V1__EXECUTOR__CALL__UPDATE__INIT;
        Call call = MESOS__V1__EXECUTOR__CALL__INIT;
        uint8_t uuid[MESOS_UUID_SIZE];

        mesos_uuid_generate(uuid);
        tid.value = (char *)task_id;
        eid.value = (char *)p->executor_id;
        status.task_id = &tid;
        status.state = TASK_STATE(TASK_RUNNING);
        /* Unset, the source reads as SOURCE_MASTER and the agent rejects the update. */
        status.has_source = true;
        status.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
        status.has_uuid = true;
        status.uuid = (ProtobufCBinaryData){ .len = sizeof(uuid), .data = uuid };
        status.has_timestamp = true;
        status.timestamp = mesos_now();
        status.executor_id = &eid;
        update.status = &status;
        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__UPDATE;
        call.update = &update;

        return post_call(
                p, &call,
                &(HttpRequestOptions){ .timeout_ns = PROBE_CALL_TIMEOUT_NS, .on_done = on_update_done });
}

static int handle_event(Probe *p, const Event *ev)
{
        const char *task = NULL;

        if (ev->type == MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH && ev->launch && ev->launch->task)
                task = ev->launch->task->task_id ? ev->launch->task->task_id->value : NULL;
        else if (ev->type == MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED && ev->acknowledged)
                task = ev->acknowledged->task_id ? ev->acknowledged->task_id->value : NULL;
        else if (ev->type == MESOS__V1__EXECUTOR__EVENT__TYPE__KILL && ev->kill)
                task = ev->kill->task_id ? ev->kill->task_id->value : NULL;

        if (task)
                printf("event %s task=%s\n", event_type_name(ev->type), task);
        else
                printf("event %s\n", event_type_name(ev->type));

        switch (ev->type) {
        case MESOS__V1__EXECUTOR__EVENT__TYPE__LAUNCH:
                if (!task)
                        return log_error_errno(-EBADMSG, "LAUNCH without a task id");
                return send_running(p, task);
        case MESOS__V1__EXECUTOR__EVENT__TYPE__ACKNOWLEDGED:
                printf("ack %s\n", strna(task));
                break;
        case MESOS__V1__EXECUTOR__EVENT__TYPE__SHUTDOWN:
                p->shutdown = true;
                return PROBE_SHUTDOWN;
        default:
                break;
        }
        return 0;
}

static int on_record(const uint8_t *data, size_t len, void *userdata)
{
        Probe *p = userdata;
        Event *ev = mesos__v1__executor__event__unpack(NULL, len, data);
        int r;

        if (!ev)
                return log_error_errno(-EBADMSG, "a record of %zu bytes is not a mesos.v1.executor.Event",
                                       len);
        r = handle_event(p, ev);
        fflush(stdout);
        mesos__v1__executor__event__free_unpacked(ev, NULL);
        return r;
}

static int on_stream_data(HttpRequest *req, const void *data, size_t len, void *userdata)
{
        Probe *p = userdata;
        int r = recordio_feed(&p->decoder, data, len, on_record, p);

        if (r == -EBADMSG && p->decoder.state == RECORDIO_FAILED)
                log_error("malformed RecordIO event stream: %s", recordio_error(&p->decoder));
        return r;
}

static void on_stream_headers(HttpRequest *req, const HttpResponse *resp, void *userdata)
{
        char buf[PROBE_HEADER_MAX];
        const char *type = http_response_header(resp, "Content-Type", buf, sizeof(buf));

        if (resp->status == 200 && !streq(strempty(type), "application/x-protobuf"))
                log_warn("SUBSCRIBE answered with Content-Type '%s'", strna(type));
}

static void on_stream_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata)
{
        Probe *p = userdata;

        if (result == PROBE_SHUTDOWN && p->shutdown) {
                ev_break(p->loop, EVBREAK_ALL);
                return;
        }
        if (result < 0)
                log_error_errno(result, "subscription failed: %s", http_request_error(req));
        else if (resp->status != 200)
                log_error("SUBSCRIBE answered %ld: %s", resp->status, buf_str(&resp->body));
        else
                log_error("the agent ended the subscription stream");
        fail(p, EXIT_FAILURE);
}

static int subscribe(Probe *p)
{
        /* Always present, even empty: an absent `subscribe` makes the agent answer 400. */
        Mesos__V1__Executor__Call__Subscribe sub = MESOS__V1__EXECUTOR__CALL__SUBSCRIBE__INIT;
        Call call = MESOS__V1__EXECUTOR__CALL__INIT;

        call.has_type = true;
        call.type = MESOS__V1__EXECUTOR__CALL__TYPE__SUBSCRIBE;
        call.subscribe = &sub;
        return post_call(p, &call,
                         &(HttpRequestOptions){ .tcp_keepalive = true,
                                                .fresh_connection = true,
                                                .on_headers = on_stream_headers,
                                                .on_data = on_stream_data,
                                                .on_done = on_stream_done });
}

static const char *need_env(const char *name)
{
        const char *v = getenv(name);

        if (!v || !*v)
                log_error("%s is not set", name);
        return v && *v ? v : NULL;
}

int main(void)
{
        Probe p = { .loop = ev_default_loop(0) };
        const char *endpoint;
        int r;

        log_set_program("pacer-probe");
        endpoint = need_env("MESOS_AGENT_ENDPOINT");
        p.framework_id = need_env("MESOS_FRAMEWORK_ID");
        p.executor_id = need_env("MESOS_EXECUTOR_ID");
        if (!endpoint || !p.framework_id || !p.executor_id)
                return 2;
        if ((size_t)snprintf(p.url, sizeof(p.url), "http://%s/api/v1/executor", endpoint) >= sizeof(p.url)) {
                log_error("MESOS_AGENT_ENDPOINT is too long");
                return 2;
        }

        recordio_decoder_init(&p.decoder, PROBE_EVENT_MAX);
        p.http = http_client_new(p.loop);
        if (!p.http) {
                log_error_errno(-ENOMEM, "cannot create the HTTP client");
                return EXIT_FAILURE;
        }
        r = subscribe(&p);
        if (r < 0) {
                log_error_errno(r, "cannot start SUBSCRIBE");
                p.exit_code = EXIT_FAILURE;
        } else
                ev_run(p.loop, 0);

        p.stopping = true;
        p.http = http_client_free(p.http);
        recordio_decoder_done(&p.decoder);
        fflush(stdout);
        return p.exit_code;
}
