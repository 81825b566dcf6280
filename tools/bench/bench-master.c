/* SPDX-License-Identifier: Apache-2.0 */
/* bench-master: a Mesos master double fast enough to load pacer-scheduler
 * (bench_scheduler.py). It serves the v1 scheduler API on one epoll loop:
 * SUBSCRIBE gets a chunked RecordIO stream (SUBSCRIBED, HEARTBEAT, then
 * whatever this program pushes), every other call 202 and is counted. Offers
 * come in rounds, one per agent; an ACCEPT's launches are answered at once
 * with TASK_RUNNING carrying a status record (healthy, registered);
 * reconciliation is answered from the tasks it launched. It is a measuring
 * instrument, not a model of Mesos: no filters, no resource accounting beyond
 * host ports, no retries of unacknowledged updates.
 *
 * The driver talks to it line by line. Commands on stdin:
 *   prepare N [noack]  encode N status updates (TASK_RUNNING, health flipped) over the known
 *               tasks; noack: without uuids (never acknowledged) and one with a uuid behind them
 *   send [W]    push the prepared updates, at most W unacknowledged at a time (default: all at
 *               once); "updates-acked" follows when all are acknowledged
 *   rate R      later sends push at most R updates per second, evenly (0: no limit, the default)
 *   hold        send no more offer rounds (the round out stays out)
 *   release     offers again: a round now, as if the scheduler had revived
 *   stats       print the counters
 *   quit
 * Lines on stdout, times in CLOCK_MONOTONIC nanoseconds:
 *   listening PORT
 *   subscribed t=NS tasks=N
 *   reconciled t=NS explicit=N implicit=N     every task was answered; a fence update follows
 *   recovered t=NS                            the fence was acknowledged: all answers were processed
 *   prepared n=N bytes=N
 *   sending n=N window=W t0=NS                the burst starts
 *   updates-acked n=N t0=NS t1=NS             from the first byte queued to the last acknowledgement
 *   stats key=value...
 *   stream-closed t=NS */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-util.h"
#include "buf.h"
#include "macro.h"
#include "mesos.h"
#include "recordio.h"
#include "status_record.h"

#define AGENTS_DEFAULT   100
#define AGENTS_MAX       1000
#define TASKS_MAX        (4u * 1024 * 1024)
#define REQUEST_MAX      (64u * 1024 * 1024) /* an ACCEPT launching thousands of tasks */
#define HEADERS_MAX      (16u * 1024)
#define STREAM_MAX       (1024u * 1024 * 1024) /* events queued for a slow reader */
#define CHUNK_MAX        (1024u * 1024)        /* bytes of events in one HTTP chunk */
#define COMMAND_MAX      256
#define EVENTS_PER_WAIT  256
#define READ_SIZE        (256u * 1024)
#define HEARTBEAT_S      15
#define CALL_TYPES_MAX   32
#define PORT_FIRST       31000
#define PORT_LAST        60999
#define ID_MAX           256
#define SERVICE_ID       "bench-service"
#define EVENT_TASK_SLACK 64

/* What the resources in every offer amount to: more than the scheduler can use in a round. */
#define OFFER_CPUS 100000.0
#define OFFER_MEM  1e8 /* MB; placement refuses amounts over 1e9 */
#define OFFER_DISK 1e8

typedef struct Conn {
        int fd;
        Buf in;
        size_t in_done; /* bytes of in already handled */
        bool continued; /* "100 Continue" sent for the request being read */
        Buf out;
        size_t out_sent;
        bool stream; /* answers SUBSCRIBE: events go here */
        bool writable_wait;
        bool closed;       /* freed after the current batch of epoll events */
        struct Conn *next; /* in the list of closed ones */
} Conn;

typedef struct Task {
        char *id;
        uint16_t agent;
        bool healthy;
} Task;

typedef struct Agent {
        char id[32];
        char hostname[32];
        char rack[16];
        uint64_t next_port;
} Agent;

typedef struct Master {
        int epfd, listen_fd;
        bool listen_paused;
        Conn *stream;
        Conn *closed; /* closed during this batch of events: later events may still name them */
        char framework_id[64];
        Agent agents[AGENTS_MAX];
        unsigned n_agents;
        Task *tasks;
        size_t n_tasks, cap_tasks;
        uint8_t record_healthy[STATUS_RECORD_MAX], record_unhealthy[STATUS_RECORD_MAX];
        size_t record_healthy_len, record_unhealthy_len;

        /* offer rounds */
        uint64_t round;
        unsigned round_outstanding;
        uint64_t round_launches;
        bool suppressed, revive_pending;
        bool held; /* the driver holds offers back ("hold"/"release") */

        /* recovery after a SUBSCRIBE: every task answered, then a fence update */
        bool recovering, implicit_seen, fence_sent;
        uint64_t explicit_answered, implicit_answered;
        uint8_t fence_uuid[MESOS_UUID_SIZE];

        /* the update burst */
        Buf prepared;
        size_t *prepared_end;                /* where each prepared update ends in prepared */
        uint64_t prepared_n;                 /* records */
        uint64_t prepared_updates;           /* of them the burst's updates (the rest: a fence) */
        uint64_t prepared_acks;              /* acknowledgements that end the burst */
        uint64_t burst_pushed, burst_window; /* window 0: everything at once */
        uint64_t rate, burst_rate;           /* updates per second; 0: no limit */
        uint64_t burst_n, burst_updates, burst_acks, burst_acks_base;
        int64_t burst_t0;
        bool burst_running;

        int64_t last_heartbeat;
        uint64_t calls[CALL_TYPES_MAX];
        uint64_t acks, launches, updates_sent, rounds, subscribes, conns, conns_max, bad_requests;
        uint64_t accept_failures;
        bool quit;
} Master;

static Master M;

/* Marks for epoll's data pointer that are not connections. */
static char listen_mark, stdin_mark;

static void emitf(const char *fmt, ...) _printf_(1, 2);
static void emitf(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
}

static _noreturn_ void die(const char *what, int r)
{
        fprintf(stderr, "bench-master: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

/* ---- connections ---- */

static void conn_arm(Conn *c, bool want_write)
{
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (want_write ? EPOLLOUT : 0),
                                  .data.ptr = c };

        if (c->closed || c->writable_wait == want_write)
                return;
        c->writable_wait = want_write;
        if (epoll_ctl(M.epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                die("epoll_ctl", errno);
}

static void listen_pause(bool pause);

static void conn_close(Conn *c)
{
        if (c->closed)
                return;
        if (c == M.stream) {
                M.stream = NULL;
                M.recovering = false;
                emitf("stream-closed t=%" PRId64, bench_now_ns());
        }
        epoll_ctl(M.epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->closed = true;
        c->next = M.closed;
        M.closed = c;
        M.conns--;
        listen_pause(false);
}

static void free_closed(void)
{
        while (M.closed) {
                Conn *c = M.closed;
                M.closed = c->next;
                buf_done(&c->in);
                buf_done(&c->out);
                free(c);
        }
}

/* Writes what is queued; false when the connection died. */
static bool conn_flush(Conn *c)
{
        while (c->out_sent < c->out.len) {
                ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        conn_arm(c, true);
                        return true;
                }
                if (n < 0)
                        return false;
                c->out_sent += (size_t)n;
        }
        buf_reset(&c->out);
        c->out_sent = 0;
        conn_arm(c, false);
        return true;
}

static void conn_queue(Conn *c, const void *data, size_t len)
{
        if (buf_append(&c->out, data, len) < 0)
                die("output buffer", ENOBUFS);
}

/* ---- events ---- */

static void event_pack(const Mesos__V1__Scheduler__Event *ev, Buf *out)
{
        size_t len = protobuf_c_message_get_packed_size(&ev->base);
        _cleanup_free_ uint8_t *data = malloc(len ? len : 1);
        char hdr[RECORDIO_HEADER_DIGITS_MAX + 2];
        int n;

        if (!data)
                die("event", ENOMEM);
        protobuf_c_message_pack(&ev->base, data);
        n = snprintf(hdr, sizeof(hdr), "%zu\n", len);
        if (buf_append(out, hdr, (size_t)n) < 0 || buf_append(out, data, len) < 0)
                die("event buffer", ENOBUFS);
}

/* Queues records (RecordIO-framed events) on the stream as HTTP chunks. */
static void stream_push(const Buf *records)
{
        char hdr[32];

        if (!M.stream || records->len == 0)
                return;
        for (size_t off = 0; off < records->len; off += CHUNK_MAX) {
                size_t n = MIN((size_t)CHUNK_MAX, records->len - off);
                int k = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
                conn_queue(M.stream, hdr, (size_t)k);
                conn_queue(M.stream, records->data + off, n);
                conn_queue(M.stream, "\r\n", 2);
        }
        if (!conn_flush(M.stream))
                conn_close(M.stream);
}

/* A status update of one task: from its executor with a status record (health 0 or 1; uuid NULL
 * leaves it without one, so it is never acknowledged), or with health < 0 the master's answer to
 * a reconciliation. */
static void update_pack(const Task *t, TaskState state, const uint8_t *uuid, int health, Buf *out)
{
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Update up = MESOS__V1__SCHEDULER__EVENT__UPDATE__INIT;
        TaskStatus st = MESOS__V1__TASK_STATUS__INIT;
        TaskID tid = MESOS__V1__TASK_ID__INIT;
        Mesos__V1__AgentID aid = MESOS__V1__AGENT_ID__INIT;

        tid.value = t->id;
        aid.value = M.agents[t->agent].id;
        st.task_id = &tid;
        st.agent_id = &aid;
        st.state = state;
        st.has_timestamp = true;
        st.timestamp = mesos_now();
        st.has_source = true;
        if (health >= 0) {
                bool healthy = health > 0;
                st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_EXECUTOR;
                st.has_uuid = uuid != NULL;
                st.uuid.data = (uint8_t *)uuid;
                st.uuid.len = uuid ? MESOS_UUID_SIZE : 0;
                st.has_healthy = true;
                st.healthy = healthy;
                st.has_data = true;
                st.data.data = healthy ? M.record_healthy : M.record_unhealthy;
                st.data.len = healthy ? M.record_healthy_len : M.record_unhealthy_len;
        } else {
                st.source = MESOS__V1__TASK_STATUS__SOURCE__SOURCE_MASTER;
                st.has_reason = true;
                st.reason = MESOS__V1__TASK_STATUS__REASON__REASON_RECONCILIATION;
                st.message = "Reconciliation: Latest task state";
        }
        up.status = &st;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__UPDATE;
        ev.update = &up;
        event_pack(&ev, out);
}

static void heartbeat(void)
{
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        _cleanup_(buf_done) Buf b = BUF_INIT(CHUNK_MAX);

        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__HEARTBEAT;
        event_pack(&ev, &b);
        stream_push(&b);
        M.last_heartbeat = bench_now_ns();
}

/* The parts of one agent's offer, which protobuf-c packs from pointers. */
typedef struct OfferParts {
        Mesos__V1__Offer offer;
        Mesos__V1__OfferID id;
        Mesos__V1__AgentID agent_id;
        char id_text[32];
        Mesos__V1__Resource ports;
        Mesos__V1__Value__Ranges ranges;
        Mesos__V1__Value__Range range;
        Mesos__V1__Value__Range *rangep;
        Mesos__V1__Resource *resources[4];
        Mesos__V1__Value__Text rack;
        Mesos__V1__Attribute attr;
        Mesos__V1__Attribute *attrp;
} OfferParts;

/* One offer per agent, all the host ports it has not handed out yet. */
static void offer_round(void)
{
        static const char *const names[3] = { "cpus", "mem", "disk" };
        static const double amounts[3] = { OFFER_CPUS, OFFER_MEM, OFFER_DISK };
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Offers offers = MESOS__V1__SCHEDULER__EVENT__OFFERS__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        Mesos__V1__Resource scalar_res[3];
        Mesos__V1__Value__Scalar scalars[3];
        _cleanup_free_ OfferParts *parts = NULL;
        _cleanup_free_ Mesos__V1__Offer **op = NULL;
        _cleanup_(buf_done) Buf b = BUF_INIT(STREAM_MAX);

        if (!M.stream)
                return;
        parts = calloc(M.n_agents, sizeof(*parts));
        op = calloc(M.n_agents, sizeof(*op));
        if (!parts || !op)
                die("offers", ENOMEM);
        M.round++;
        M.rounds++;
        M.round_launches = 0;
        M.revive_pending = false;
        fid.value = M.framework_id;
        for (size_t r = 0; r < 3; r++) {
                mesos__v1__resource__init(&scalar_res[r]);
                mesos__v1__value__scalar__init(&scalars[r]);
                scalars[r].value = amounts[r];
                scalar_res[r].name = (char *)names[r];
                scalar_res[r].type = MESOS__V1__VALUE__TYPE__SCALAR;
                scalar_res[r].scalar = &scalars[r];
        }
        for (unsigned a = 0; a < M.n_agents; a++) {
                Agent *ag = &M.agents[a];
                OfferParts *p = &parts[a];
                mesos__v1__offer__init(&p->offer);
                mesos__v1__offer_id__init(&p->id);
                mesos__v1__agent_id__init(&p->agent_id);
                snprintf(p->id_text, sizeof(p->id_text), "o%" PRIu64 "-%u", M.round, a);
                p->id.value = p->id_text;
                p->agent_id.value = ag->id;
                for (size_t r = 0; r < 3; r++)
                        p->resources[r] = &scalar_res[r];
                mesos__v1__resource__init(&p->ports);
                mesos__v1__value__ranges__init(&p->ranges);
                mesos__v1__value__range__init(&p->range);
                p->range.begin = ag->next_port;
                p->range.end = PORT_LAST;
                p->rangep = &p->range;
                p->ranges.n_range = 1;
                p->ranges.range = &p->rangep;
                p->ports.name = "ports";
                p->ports.type = MESOS__V1__VALUE__TYPE__RANGES;
                p->ports.ranges = &p->ranges;
                p->resources[3] = &p->ports;
                mesos__v1__value__text__init(&p->rack);
                mesos__v1__attribute__init(&p->attr);
                p->rack.value = ag->rack;
                p->attr.name = "rack";
                p->attr.type = MESOS__V1__VALUE__TYPE__TEXT;
                p->attr.text = &p->rack;
                p->attrp = &p->attr;
                p->offer.id = &p->id;
                p->offer.agent_id = &p->agent_id;
                p->offer.framework_id = &fid;
                p->offer.hostname = ag->hostname;
                p->offer.n_resources = ag->next_port <= PORT_LAST ? 4 : 3;
                p->offer.resources = p->resources;
                p->offer.n_attributes = 1;
                p->offer.attributes = &p->attrp;
                op[a] = &p->offer;
        }
        offers.n_offers = M.n_agents;
        offers.offers = op;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS;
        ev.offers = &offers;
        event_pack(&ev, &b);
        M.round_outstanding = M.n_agents;
        stream_push(&b);
}

/* ---- calls ---- */

static void respond(Conn *c, const char *status)
{
        char head[128];
        int n = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n", status);
        conn_queue(c, head, (size_t)n);
}

static void subscribe(Conn *c, const Mesos__V1__Scheduler__Call *call)
{
        Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
        Mesos__V1__Scheduler__Event__Subscribed sub = MESOS__V1__SCHEDULER__EVENT__SUBSCRIBED__INIT;
        Mesos__V1__FrameworkID fid = MESOS__V1__FRAMEWORK_ID__INIT;
        _cleanup_(buf_done) Buf b = BUF_INIT(CHUNK_MAX);
        const FrameworkInfo *fi = call->subscribe ? call->subscribe->framework_info : NULL;
        uint8_t u[MESOS_UUID_SIZE];
        char stream_id[40], head[256];
        int n;

        if (!fi) {
                M.bad_requests++;
                respond(c, "400 Bad Request");
                return;
        }
        if (fi->id && fi->id->value && *fi->id->value)
                snprintf(M.framework_id, sizeof(M.framework_id), "%s", fi->id->value);
        else if (!*M.framework_id)
                snprintf(M.framework_id, sizeof(M.framework_id), "bench-framework-0001");
        if (M.stream)
                conn_close(M.stream); /* failed over */
        mesos_uuid_generate(u);
        mesos_uuid_format(u, stream_id);
        n = snprintf(
                head, sizeof(head),
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n"
                "Mesos-Stream-Id: %s\r\n\r\n",
                stream_id);
        conn_queue(c, head, (size_t)n);
        c->stream = true;
        M.stream = c;
        M.subscribes++;

        fid.value = M.framework_id;
        sub.framework_id = &fid;
        sub.has_heartbeat_interval_seconds = true;
        sub.heartbeat_interval_seconds = HEARTBEAT_S;
        ev.has_type = true;
        ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__SUBSCRIBED;
        ev.subscribed = &sub;
        event_pack(&ev, &b);
        stream_push(&b);
        heartbeat();

        M.recovering = M.n_tasks > 0;
        M.implicit_seen = M.fence_sent = false;
        M.explicit_answered = M.implicit_answered = 0;
        M.suppressed = false;
        emitf("subscribed t=%" PRId64 " tasks=%zu", bench_now_ns(), M.n_tasks);
        offer_round();
}

static int agent_index(const char *id)
{
        unsigned a;

        if (!id || sscanf(id, "bench-agent-%u", &a) != 1 || a >= M.n_agents)
                return -EINVAL;
        return (int)a;
}

static void offer_answered(const Mesos__V1__OfferID *id)
{
        uint64_t round;
        unsigned a;

        if (id && id->value && sscanf(id->value, "o%" SCNu64 "-%u", &round, &a) == 2 && round == M.round &&
            M.round_outstanding > 0)
                M.round_outstanding--;
}

/* Offers of the round all answered: the next comes at once while the scheduler launches, or
 * when it asks for more with REVIVE. */
static void maybe_next_round(void)
{
        if (M.round_outstanding > 0 || M.suppressed || M.held)
                return;
        if (M.round_launches > 0 || M.revive_pending)
                offer_round();
}

static void accept_call(const Mesos__V1__Scheduler__Call__Accept *acc)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(STREAM_MAX);

        for (size_t i = 0; i < acc->n_offer_ids; i++)
                offer_answered(acc->offer_ids[i]);
        for (size_t o = 0; o < acc->n_operations; o++) {
                const Mesos__V1__Offer__Operation *op = acc->operations[o];
                if (!op->launch)
                        continue;
                for (size_t t = 0; t < op->launch->n_task_infos; t++) {
                        const TaskInfo *ti = op->launch->task_infos[t];
                        int a = agent_index(ti->agent_id ? ti->agent_id->value : NULL);
                        uint8_t u[MESOS_UUID_SIZE];
                        if (a < 0 || !ti->task_id || !ti->task_id->value || M.n_tasks >= TASKS_MAX) {
                                M.bad_requests++;
                                continue;
                        }
                        for (size_t r = 0; r < ti->n_resources; r++) {
                                const Mesos__V1__Resource *res = ti->resources[r];
                                if (!res->name || !streq(res->name, "ports") || !res->ranges)
                                        continue;
                                for (size_t k = 0; k < res->ranges->n_range; k++)
                                        M.agents[a].next_port =
                                                MAX(M.agents[a].next_port, res->ranges->range[k]->end + 1);
                        }
                        if (M.n_tasks == M.cap_tasks) {
                                size_t cap = M.cap_tasks ? M.cap_tasks * 2 : 1024;
                                Task *n = realloc(M.tasks, cap * sizeof(*n));
                                if (!n)
                                        die("tasks", ENOMEM);
                                M.tasks = n;
                                M.cap_tasks = cap;
                        }
                        Task *task = &M.tasks[M.n_tasks++];
                        task->id = strdup(ti->task_id->value);
                        if (!task->id)
                                die("tasks", ENOMEM);
                        task->agent = (uint16_t)a;
                        task->healthy = true;
                        mesos_uuid_generate(u);
                        update_pack(task, TASK_STATE(TASK_RUNNING), u, 1, &b);
                        M.launches++;
                        M.round_launches++;
                        M.updates_sent++;
                }
        }
        stream_push(&b);
}

static void check_reconciled(void)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(CHUNK_MAX);

        if (!M.recovering || M.fence_sent || !M.implicit_seen || M.explicit_answered < M.n_tasks)
                return;
        emitf("reconciled t=%" PRId64 " explicit=%" PRIu64 " implicit=%" PRIu64, bench_now_ns(),
              M.explicit_answered, M.implicit_answered);
        /* an update with a uuid behind every answer: its acknowledgement proves they were processed */
        mesos_uuid_generate(M.fence_uuid);
        update_pack(&M.tasks[0], TASK_STATE(TASK_RUNNING), M.fence_uuid, M.tasks[0].healthy, &b);
        M.fence_sent = true;
        stream_push(&b);
}

static void reconcile_call(const Mesos__V1__Scheduler__Call__Reconcile *rec)
{
        _cleanup_(buf_done) Buf b = BUF_INIT(STREAM_MAX);

        if (rec->n_tasks == 0) {
                /* implicit: every task this master knows */
                for (size_t t = 0; t < M.n_tasks; t++)
                        update_pack(&M.tasks[t], TASK_STATE(TASK_RUNNING), NULL, -1, &b);
                M.implicit_seen = true;
                M.implicit_answered += M.n_tasks;
                M.updates_sent += M.n_tasks;
        } else {
                for (size_t k = 0; k < rec->n_tasks; k++) {
                        const Mesos__V1__Scheduler__Call__Reconcile__Task *rt = rec->tasks[k];
                        int a = agent_index(rt->agent_id ? rt->agent_id->value : NULL);
                        if (!rt->task_id || !rt->task_id->value)
                                continue;
                        Task t = { .id = rt->task_id->value, .agent = (uint16_t)(a < 0 ? 0 : a) };
                        update_pack(&t, TASK_STATE(TASK_RUNNING), NULL, -1, &b);
                }
                M.explicit_answered += rec->n_tasks;
                M.updates_sent += rec->n_tasks;
        }
        stream_push(&b);
        check_reconciled();
}

static void push_window(void);

static void acknowledge_call(const Mesos__V1__Scheduler__Call__Acknowledge *ack)
{
        M.acks++;
        if (M.fence_sent && ack->uuid.len == MESOS_UUID_SIZE &&
            memcmp(ack->uuid.data, M.fence_uuid, MESOS_UUID_SIZE) == 0) {
                M.fence_sent = false;
                M.recovering = false;
                emitf("recovered t=%" PRId64, bench_now_ns());
        }
        if (M.burst_running)
                push_window();
        if (M.burst_running && M.acks - M.burst_acks_base >= M.burst_acks) {
                M.burst_running = false;
                emitf("updates-acked n=%" PRIu64 " t0=%" PRId64 " t1=%" PRId64, M.burst_updates, M.burst_t0,
                      bench_now_ns());
        }
}

static void handle_call(Conn *c, const uint8_t *body, size_t len)
{
        Mesos__V1__Scheduler__Call *call = mesos__v1__scheduler__call__unpack(NULL, len, body);

        if (!call || !call->has_type) {
                M.bad_requests++;
                respond(c, "400 Bad Request");
                if (call)
                        mesos__v1__scheduler__call__free_unpacked(call, NULL);
                return;
        }
        if ((unsigned)call->type < CALL_TYPES_MAX)
                M.calls[call->type]++;
        if (call->type == MESOS__V1__SCHEDULER__CALL__TYPE__SUBSCRIBE) {
                subscribe(c, call);
                mesos__v1__scheduler__call__free_unpacked(call, NULL);
                return;
        }
        /* answered before its effects are queued on the stream, as the master does */
        respond(c, "202 Accepted");
        switch (call->type) {
        case MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT:
                if (call->accept)
                        accept_call(call->accept);
                maybe_next_round();
                break;
        case MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE:
                for (size_t i = 0; call->decline && i < call->decline->n_offer_ids; i++)
                        offer_answered(call->decline->offer_ids[i]);
                maybe_next_round();
                break;
        case MESOS__V1__SCHEDULER__CALL__TYPE__ACKNOWLEDGE:
                if (call->acknowledge)
                        acknowledge_call(call->acknowledge);
                break;
        case MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE:
                if (call->reconcile)
                        reconcile_call(call->reconcile);
                break;
        case MESOS__V1__SCHEDULER__CALL__TYPE__SUPPRESS:
                M.suppressed = true;
                break;
        case MESOS__V1__SCHEDULER__CALL__TYPE__REVIVE:
                M.suppressed = false;
                M.revive_pending = true;
                maybe_next_round();
                break;
        default:
                break; /* KILL, TEARDOWN, ...: counted */
        }
        mesos__v1__scheduler__call__free_unpacked(call, NULL);
}

/* The value of a header in the block [p, end), or NULL. */
static const char *header_value(const char *p, const char *end, const char *name, size_t *ret_len)
{
        size_t nl = strlen(name);

        while (p < end) {
                const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        eol = end;
                if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
                        const char *v = p + nl + 1;
                        while (v < eol && (*v == ' ' || *v == '\t'))
                                v++;
                        *ret_len = (size_t)(eol - v);
                        return v;
                }
                p = eol + 2;
        }
        return NULL;
}

/* Handles every complete request in c->in; false when the connection must close. */
static bool conn_process(Conn *c)
{
        for (;;) {
                const char *start = c->in.data + c->in_done, *end = c->in.data + c->in.len;
                const char *hend = memmem(start, (size_t)(end - start), "\r\n\r\n", 4);
                const char *v;
                size_t vl, clen = 0, hlen;

                if (!hend) {
                        if ((size_t)(end - start) > HEADERS_MAX)
                                return false;
                        break;
                }
                hlen = (size_t)(hend - start) + 4;
                v = header_value(start, hend, "Content-Length", &vl);
                if (v) {
                        char num[24];
                        long n;
                        snprintf(num, sizeof(num), "%.*s", (int)MIN(vl, sizeof(num) - 1), v);
                        if (bench_parse_number(num, 0, REQUEST_MAX, &n) < 0)
                                return false;
                        clen = (size_t)n;
                }
                if (header_value(start, hend, "Transfer-Encoding", &vl))
                        return false; /* libcurl sends bodies of known size with a length */
                if ((size_t)(end - start) < hlen + clen) {
                        if (!c->continued && header_value(start, hend, "Expect", &vl)) {
                                conn_queue(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                                c->continued = true;
                        }
                        break;
                }
                c->continued = false;
                if (!strneq(start, "POST ", 5)) {
                        respond(c, "405 Method Not Allowed");
                        M.bad_requests++;
                } else
                        handle_call(c, (const uint8_t *)start + hlen, clen);
                c->in_done += hlen + clen;
                if (c->stream)
                        break; /* nothing more comes on a stream's connection */
        }
        if (c->in_done > 0) {
                buf_consume(&c->in, c->in_done);
                c->in_done = 0;
        }
        return conn_flush(c);
}

static void conn_readable(Conn *c)
{
        for (;;) {
                if (buf_reserve(&c->in, READ_SIZE) < 0) {
                        conn_close(c);
                        return;
                }
                ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        conn_close(c);
                        return;
                }
                c->in.len += (size_t)n;
                c->in.data[c->in.len] = 0;
                if (c->in.len - c->in_done >= READ_SIZE)
                        break; /* handle what is here, come back for the rest */
        }
        if (!conn_process(c))
                conn_close(c);
}

static void listen_pause(bool pause)
{
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &listen_mark };

        if (M.listen_paused == pause)
                return;
        M.listen_paused = pause;
        if (epoll_ctl(M.epfd, pause ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, M.listen_fd, &ev) < 0)
                die("epoll_ctl listen", errno);
}

static void accept_conns(void)
{
        for (;;) {
                int one = 1, fd = accept4(M.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        /* out of descriptors: the backlog waits until a connection closes */
                        if (errno == EMFILE || errno == ENFILE) {
                                M.accept_failures++;
                                listen_pause(true);
                        }
                        return;
                }
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                Conn *c = calloc(1, sizeof(*c));
                if (!c)
                        die("connection", ENOMEM);
                c->fd = fd;
                buf_init(&c->in, REQUEST_MAX);
                buf_init(&c->out, STREAM_MAX);
                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
                if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        die("epoll_ctl", errno);
                M.conns++;
                M.conns_max = MAX(M.conns_max, M.conns);
        }
}

/* ---- commands ---- */

/* n updates, each with a uuid; with noack without one, plus one with a uuid behind them whose
 * acknowledgement says they were all processed. */
static void prepare(uint64_t n, bool noack)
{
        uint8_t u[MESOS_UUID_SIZE];

        buf_done(&M.prepared);
        buf_init(&M.prepared, STREAM_MAX);
        free(M.prepared_end);
        M.prepared_end = calloc(n + 2, sizeof(*M.prepared_end));
        if (!M.prepared_end)
                die("prepare", ENOMEM);
        M.prepared_n = M.prepared_updates = M.prepared_acks = 0;
        if (M.n_tasks == 0) {
                emitf("prepared n=0 bytes=0");
                return;
        }
        for (uint64_t k = 0; k < n; k++) {
                Task *t = &M.tasks[k % M.n_tasks];
                t->healthy = !t->healthy;
                mesos_uuid_generate(u);
                update_pack(t, TASK_STATE(TASK_RUNNING), noack ? NULL : u, t->healthy, &M.prepared);
                M.prepared_end[k] = M.prepared.len;
        }
        M.prepared_n = M.prepared_updates = n;
        M.prepared_acks = noack ? 1 : n;
        if (noack) {
                mesos_uuid_generate(u);
                update_pack(&M.tasks[0], TASK_STATE(TASK_RUNNING), u, M.tasks[0].healthy, &M.prepared);
                M.prepared_end[M.prepared_n++] = M.prepared.len;
        }
        emitf("prepared n=%" PRIu64 " bytes=%zu", n, M.prepared.len);
}

/* Pushes prepared updates while fewer than the window are unacknowledged. */
static void push_window(void)
{
        uint64_t acked = M.acks - M.burst_acks_base, upto = M.burst_n;
        Buf slice;

        if (M.burst_pushed >= M.burst_n)
                return;
        if (M.burst_window > 0) {
                uint64_t free_slots =
                        M.burst_window - MIN(M.burst_window, M.burst_pushed - MIN(acked, M.burst_pushed));
                /* in slices of an eighth of the window, not one record per acknowledgement */
                if (free_slots < MAX(M.burst_window / 8, 1u))
                        return;
                upto = MIN(M.burst_n, M.burst_pushed + free_slots);
        }
        if (M.burst_rate > 0) {
                uint64_t due = (uint64_t)(bench_now_ns() - M.burst_t0) * M.burst_rate / 1000000000u + 1;
                upto = MIN(upto, due);
                if (upto <= M.burst_pushed)
                        return;
        }
        size_t from = M.burst_pushed ? M.prepared_end[M.burst_pushed - 1] : 0;
        slice = (Buf){ .data = M.prepared.data + from, .len = M.prepared_end[upto - 1] - from };
        M.burst_pushed = upto;
        stream_push(&slice);
}

static void send_prepared(uint64_t window)
{
        if (!M.stream || M.prepared_n == 0) {
                emitf("updates-acked n=0 t0=0 t1=0");
                return;
        }
        M.burst_n = M.prepared_n;
        M.burst_updates = M.prepared_updates;
        M.burst_acks = M.prepared_acks;
        M.burst_pushed = 0;
        M.burst_window = window;
        M.burst_rate = M.rate;
        M.burst_acks_base = M.acks;
        M.conns_max = M.conns; /* from here on: the connections this burst makes the scheduler open */
        M.burst_running = true;
        M.burst_t0 = bench_now_ns();
        M.updates_sent += M.prepared_n;
        if (M.burst_acks < M.burst_n)
                window = 0; /* nothing to pace on */
        emitf("sending n=%" PRIu64 " window=%" PRIu64 " t0=%" PRId64, M.burst_updates, window, M.burst_t0);
        push_window();
}

static void print_stats(void)
{
        emitf("stats subscribes=%" PRIu64 " tasks=%zu launches=%" PRIu64 " updates_sent=%" PRIu64
              " acks=%" PRIu64 " rounds=%" PRIu64 " accepts=%" PRIu64 " declines=%" PRIu64
              " reconciles=%" PRIu64 " kills=%" PRIu64 " revives=%" PRIu64 " suppresses=%" PRIu64
              " conns=%" PRIu64 " conns_max=%" PRIu64 " accept_failures=%" PRIu64 " bad_requests=%" PRIu64
              " stream_queued=%zu",
              M.subscribes, M.n_tasks, M.launches, M.updates_sent, M.acks, M.rounds,
              M.calls[MESOS__V1__SCHEDULER__CALL__TYPE__ACCEPT],
              M.calls[MESOS__V1__SCHEDULER__CALL__TYPE__DECLINE],
              M.calls[MESOS__V1__SCHEDULER__CALL__TYPE__RECONCILE],
              M.calls[MESOS__V1__SCHEDULER__CALL__TYPE__KILL],
              M.calls[MESOS__V1__SCHEDULER__CALL__TYPE__REVIVE],
              M.calls[MESOS__V1__SCHEDULER__CALL__TYPE__SUPPRESS], M.conns, M.conns_max, M.accept_failures,
              M.bad_requests, M.stream ? M.stream->out.len - M.stream->out_sent : 0);
}

static void command(const char *line)
{
        char word[32], flag[32] = "";
        unsigned long long n = 0;

        if (sscanf(line, "%31s %llu %31s", word, &n, flag) < 1)
                return;
        if (streq(word, "prepare"))
                prepare(MIN(n, (unsigned long long)TASKS_MAX * 4), streq(flag, "noack"));
        else if (streq(word, "send"))
                send_prepared(n);
        else if (streq(word, "rate"))
                M.rate = n;
        else if (streq(word, "hold"))
                M.held = true;
        else if (streq(word, "release")) {
                M.held = false;
                M.revive_pending = true;
                maybe_next_round();
        } else if (streq(word, "stats"))
                print_stats();
        else if (streq(word, "quit"))
                M.quit = true;
        else
                fprintf(stderr, "bench-master: unknown command '%s'\n", word);
}

static void read_commands(void)
{
        static char line[COMMAND_MAX];
        static size_t len;

        for (;;) {
                ssize_t n = read(STDIN_FILENO, line + len, sizeof(line) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        M.quit = true; /* the driver is gone */
                        return;
                }
                len += (size_t)n;
                line[len] = 0;
                char *nl;
                while ((nl = strchr(line, '\n'))) {
                        *nl = 0;
                        command(line);
                        len -= (size_t)(nl + 1 - line);
                        memmove(line, nl + 1, len + 1);
                }
                if (len == sizeof(line) - 1)
                        len = 0; /* an over-long line: dropped */
        }
}

/* ---- main ---- */

static int listen_on(long port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        socklen_t sl = sizeof(sa);
        int one = 1;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0)
                die("socket", errno);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
                die("listen", errno);
        emitf("listening %u", ntohs(sa.sin_port));
        return fd;
}

static void make_records(void)
{
        StatusRecord rec;

        status_record_init(&rec);
        rec.registered = true;
        rec.registration = REGISTRATION_REGISTERED;
        snprintf(rec.service_id, sizeof(rec.service_id), "%s", SERVICE_ID);
        rec.check_latency_us = 250;
        rec.registered_at_ms = 1;
        rec.healthy = HEALTH_HEALTHY;
        if (status_record_encode(&rec, M.record_healthy, sizeof(M.record_healthy), &M.record_healthy_len) <
            0)
                die("status record", EINVAL);
        rec.healthy = HEALTH_UNHEALTHY;
        rec.consecutive_failures = 1;
        snprintf(rec.last_error, sizeof(rec.last_error), "HTTP 503 from /health");
        if (status_record_encode(&rec, M.record_unhealthy, sizeof(M.record_unhealthy),
                                 &M.record_unhealthy_len) < 0)
                die("status record", EINVAL);
}

static void usage(void)
{
        fprintf(stderr, "usage: bench-master [--port N] [--agents N]\n");
        exit(2);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = { { "port", required_argument, NULL, 'p' },
                                              { "agents", required_argument, NULL, 'a' },
                                              {} };
        struct epoll_event evs[EVENTS_PER_WAIT], ev;
        long port = 0, agents = AGENTS_DEFAULT;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 'p' && bench_parse_number(optarg, 0, 65535, &port) >= 0)
                        continue;
                if (c == 'a' && bench_parse_number(optarg, 1, AGENTS_MAX, &agents) >= 0)
                        continue;
                usage();
        }
        if (optind < argc)
                usage();
        signal(SIGPIPE, SIG_IGN);
        /* every call may come on a connection of its own */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        M.n_agents = (unsigned)agents;
        for (unsigned a = 0; a < M.n_agents; a++) {
                snprintf(M.agents[a].id, sizeof(M.agents[a].id), "bench-agent-%03u", a);
                snprintf(M.agents[a].hostname, sizeof(M.agents[a].hostname), "bench-host-%03u", a);
                snprintf(M.agents[a].rack, sizeof(M.agents[a].rack), "r%u", a % 10);
                M.agents[a].next_port = PORT_FIRST;
        }
        make_records();
        buf_init(&M.prepared, STREAM_MAX);
        M.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (M.epfd < 0)
                die("epoll_create1", errno);
        M.listen_fd = listen_on(port);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &listen_mark };
        if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, M.listen_fd, &ev) < 0)
                die("epoll_ctl", errno);
        if (fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK) < 0)
                die("stdin", errno);
        ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &stdin_mark };
        if (epoll_ctl(M.epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0)
                die("epoll_ctl stdin", errno);
        M.last_heartbeat = bench_now_ns();

        while (!M.quit) {
                bool pacing = M.burst_rate > 0 && M.burst_pushed < M.burst_n;
                int n = epoll_wait(M.epfd, evs, EVENTS_PER_WAIT, pacing ? 1 : 1000);
                if (n < 0 && errno != EINTR)
                        die("epoll_wait", errno);
                for (int i = 0; i < n; i++) {
                        void *p = evs[i].data.ptr;
                        if (p == &listen_mark) {
                                accept_conns();
                                continue;
                        }
                        if (p == &stdin_mark) {
                                read_commands();
                                continue;
                        }
                        Conn *conn = p;
                        if (conn->closed)
                                continue;
                        if (evs[i].events & EPOLLOUT) {
                                if (!conn_flush(conn)) {
                                        conn_close(conn);
                                        continue;
                                }
                        }
                        if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                                conn_readable(conn);
                }
                free_closed();
                if (pacing && M.stream)
                        push_window();
                if (M.stream && bench_now_ns() - M.last_heartbeat > (int64_t)HEARTBEAT_S * 1000000000)
                        heartbeat();
        }
        return 0;
}
